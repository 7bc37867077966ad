"""An embedded AWS for the demo and `--local`: moto in this process, the Jira and GuardDuty stand-ins on 127.0.0.1.

It creates what Terraform would (the ledger table, the topic, the Jira secret) and sets the same
environment variables the Lambda function gets, so the code under it is the code that runs in AWS.
Nothing leaves the machine: the credentials are fake, every AWS call is answered by moto except
GuardDuty's findings API, which moto lacks and a local stand-in answers, and Jira is a local HTTP
server. Everything is discarded when the context ends; the environment is restored.
"""

from __future__ import annotations

import copy
import json
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import boto3

from .guardduty_standin import GuardDutyStandIn
from .jira_standin import JiraStandIn

INSTALL_HINT = "pip install -e '.[local]' (from the repository root), or run `make demo`"
ACCOUNT_ID = "123456789012"  # the account moto answers as
TABLE_NAME = "guardduty-responder"
JIRA_PROJECT = "SEC"
AMI_ID = "ami-12c6146b"

# What must not leak from the person's shell into the embedded run: a profile, an endpoint or a
# proxy would send the calls somewhere real.
_CLEARED = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_REGION",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)


@dataclass(frozen=True)
class ResponderResources:
    topic_arn: str
    queue_url: str  # a queue subscribed to the topic, standing in for the people's inboxes
    secret_arn: str
    evidence_bucket: str


# The evidence bucket as the Terraform module makes it: Object Lock in governance mode, versioned.
EVIDENCE_BUCKET = "guardduty-responder-evidence"
EVIDENCE_RETENTION_DAYS = 365


def create_responder_resources(
    client: Callable[[str], Any], *, table_name: str, jira_secret: Mapping[str, str]
) -> ResponderResources:
    """What the Terraform module creates, in the account `client` reaches: ledger, topic, Jira secret, evidence
    bucket."""
    client("dynamodb").create_table(
        TableName=table_name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "unfinished", "AttributeType": "S"},
            {"AttributeName": "lease_until", "AttributeType": "N"},
        ],
        # As main.tf creates it: the sparse index the sweep queries.
        GlobalSecondaryIndexes=[
            {
                "IndexName": "unfinished",
                "KeySchema": [
                    {"AttributeName": "unfinished", "KeyType": "HASH"},
                    {"AttributeName": "lease_until", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["first_seen"]},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    sns, sqs = client("sns"), client("sqs")
    topic_arn = sns.create_topic(Name="guardduty-responder")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="guardduty-responder-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    secret_arn = client("secretsmanager").create_secret(
        Name="guardduty-responder/jira",
        SecretString=json.dumps(dict(jira_secret)),
    )["ARN"]
    s3 = client("s3")
    s3.create_bucket(Bucket=EVIDENCE_BUCKET, ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(
        Bucket=EVIDENCE_BUCKET,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": EVIDENCE_RETENTION_DAYS}},
        },
    )
    return ResponderResources(
        topic_arn=topic_arn, queue_url=queue_url, secret_arn=secret_arn, evidence_bucket=EVIDENCE_BUCKET
    )


def drain_messages(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Every SNS notification delivered to the inbox queue so far, removed from it."""
    received: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            return received
        for message in batch:
            received.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def create_network(ec2: Any, region: str) -> tuple[str, str]:
    """A VPC with IPv6 and one dual-stack subnet; returns (vpc id, subnet id)."""
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16", AmazonProvidedIpv6CidrBlock=True)["Vpc"]["VpcId"]
    ipv6_block = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]["Ipv6CidrBlockAssociationSet"][0]["Ipv6CidrBlock"]
    subnet_id = ec2.create_subnet(
        VpcId=vpc_id,
        CidrBlock="10.0.1.0/24",
        Ipv6CidrBlock=ipv6_block.replace("/56", "/64"),
        AvailabilityZone=f"{region}a",
    )["Subnet"]["SubnetId"]
    return vpc_id, subnet_id


class EmbeddedAwsUnavailable(RuntimeError):
    """moto (the optional `local` extra) is not installed."""


class EmbeddedAws:
    """moto in-process plus the responder's own resources; use as a context manager."""

    def __init__(self, region: str = "us-east-1", *, jira_timeout_seconds: int = 5) -> None:
        self.region = region
        self._jira_timeout_seconds = jira_timeout_seconds
        self._saved_environ: dict[str, str | None] = {}
        self._mock: Any = None
        self._unserialised: Any = None
        self._clients: dict[str, Any] = {}
        self.jira = JiraStandIn()
        self.guardduty = GuardDutyStandIn()
        self.table_name = TABLE_NAME
        self.topic_arn = ""
        self.queue_url = ""
        self.secret_arn = ""

    # -- lifecycle ----------------------------------------------------------------------------------

    def __enter__(self) -> EmbeddedAws:
        try:
            from moto import mock_aws
        except ImportError as error:
            raise EmbeddedAwsUnavailable(f"the embedded AWS needs moto: {INSTALL_HINT}") from error
        self._set_environ(
            {
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": self.region,
                "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "AWS_EC2_METADATA_DISABLED": "true",
                "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost",
            },
            cleared=_CLEARED,
        )
        self._mock = mock_aws()
        self._mock.start()
        self._one_request_at_a_time()
        try:
            self.jira.start()
            self.guardduty.start()
            # botocore's per-service endpoint: the responder's own GuardDuty client asks the stand-in.
            self._set_environ({"AWS_ENDPOINT_URL_GUARDDUTY": self.guardduty.url})
            self._create_responder_resources()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _one_request_at_a_time(self) -> None:
        """AWS answers each request whole; moto's in-process backends do not lock between threads, and the
        responder calls from several at once (a group's instances, an instance's interfaces): its answers are
        serialised while this embedded AWS runs."""
        from moto.core.botocore_stubber import BotocoreStubber

        answer = BotocoreStubber.process_request
        lock = threading.RLock()

        def one_at_a_time(stubber: Any, request: Any) -> Any:
            with lock:
                return answer(stubber, request)

        self._unserialised = answer
        BotocoreStubber.process_request = one_at_a_time  # type: ignore[method-assign,assignment]

    def __exit__(self, *exc_info: object) -> None:
        self.jira.stop()
        self.guardduty.stop()
        if self._unserialised is not None:
            from moto.core.botocore_stubber import BotocoreStubber

            BotocoreStubber.process_request = self._unserialised  # type: ignore[method-assign]
            self._unserialised = None
        if self._mock is not None:
            self._mock.stop()
            self._mock = None
        self._clients.clear()
        self._restore_environ()

    def _set_environ(self, values: Mapping[str, str], cleared: tuple[str, ...] = ()) -> None:
        for key in (*values, *cleared):
            self._saved_environ.setdefault(key, os.environ.get(key))
        for key in cleared:
            os.environ.pop(key, None)
        os.environ.update(values)

    def _restore_environ(self) -> None:
        for key, value in self._saved_environ.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_environ.clear()

    def _create_responder_resources(self) -> None:
        """What the Terraform module creates: the ledger, the topic, the Jira secret, the evidence bucket."""
        resources = create_responder_resources(
            self.client, table_name=self.table_name, jira_secret=self.jira.secret_for("local-stand-in-token")
        )
        self.topic_arn, self.queue_url, self.secret_arn = resources.topic_arn, resources.queue_url, resources.secret_arn
        self._set_environ(
            {
                "RESPONDER_TABLE": self.table_name,
                "RESPONDER_TOPIC_ARN": self.topic_arn,
                "JIRA_SECRET_ARN": self.secret_arn,
                "JIRA_PROJECT_KEY": JIRA_PROJECT,
                "JIRA_ISSUE_TYPE": "Task",
                "DRY_RUN": "false",
                "EXEMPT_TAG_KEY": "guardduty-responder:exempt",
                "ISOLATION_PAUSE_SECONDS": "0",
                "JIRA_TIMEOUT_SECONDS": str(self._jira_timeout_seconds),
                "GUARDDUTY_DETECTOR_ID": self.guardduty.detector_id,
                "EVIDENCE_BUCKET": resources.evidence_bucket,
            }
        )

    # -- clients and what came out ------------------------------------------------------------------

    def client(self, service: str) -> Any:
        """One client per service, kept: creating a boto3 client costs tens of milliseconds."""
        if service not in self._clients:
            # Any service moto serves; the stubs type only literal names.
            self._clients[service] = boto3.client(service, region_name=self.region)  # type: ignore[call-overload]
        return self._clients[service]

    @property
    def ec2(self) -> Any:
        return self.client("ec2")

    @property
    def dynamodb(self) -> Any:
        return self.client("dynamodb")

    @property
    def sns(self) -> Any:
        return self.client("sns")

    def messages(self) -> list[dict[str, Any]]:
        """The SNS notifications delivered since the last call (subject, body, attributes)."""
        return drain_messages(self.client("sqs"), self.queue_url)

    # -- the estate ---------------------------------------------------------------------------------

    def create_network(self, name: str = "production") -> tuple[str, str]:
        """A VPC with IPv6 and one subnet; returns (vpc id, subnet id)."""
        vpc_id, subnet_id = create_network(self.ec2, self.region)
        self.ec2.create_tags(Resources=[vpc_id], Tags=[{"Key": "Name", "Value": name}])
        return vpc_id, subnet_id

    def security_group(self, vpc_id: str, name: str, description: str) -> str:
        return self.ec2.create_security_group(GroupName=name, Description=description, VpcId=vpc_id)["GroupId"]

    def launch(
        self,
        subnet_id: str,
        *,
        name: str,
        groups_per_eni: list[list[str]],
        tags: Mapping[str, str] | None = None,
    ) -> str:
        """An instance with one ENI per entry of `groups_per_eni` (each on its groups) and two EBS volumes."""
        all_tags = {"Name": name, **(tags or {})}
        # The groups go on the interface, not in SecurityGroupIds: moto would otherwise report a
        # later swap of groups as the union of the old and the new.
        instance_id = self.ec2.run_instances(
            ImageId=AMI_ID,
            MinCount=1,
            MaxCount=1,
            InstanceType="t3.small",
            NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": subnet_id, "Groups": groups_per_eni[0]}],
            BlockDeviceMappings=[
                {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8, "DeleteOnTermination": True}},
                {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 20, "DeleteOnTermination": True}},
            ],
            TagSpecifications=[
                {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in all_tags.items()]}
            ],
        )["Instances"][0]["InstanceId"]
        for index, groups in enumerate(groups_per_eni[1:], start=1):
            eni_id = self.ec2.create_network_interface(SubnetId=subnet_id, Groups=groups)["NetworkInterface"][
                "NetworkInterfaceId"
            ]
            self.ec2.attach_network_interface(NetworkInterfaceId=eni_id, InstanceId=instance_id, DeviceIndex=index)
        return instance_id

    def describe(self, instance_id: str) -> dict[str, Any]:
        return self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def point_event_at(event: Mapping[str, Any], instance: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the event about `instance` (a DescribeInstances entry), as GuardDuty would report it.

    The instance id, its network interfaces with their groups and its tags are replaced (for a
    credential finding, the role session's name, which is the instance id); the rest of the finding
    (type, severity, role, sample flag, ids) is kept.
    """
    pointed = copy.deepcopy(dict(event))
    resource = pointed["detail"]["resource"]
    keys = resource.get("accessKeyDetails")
    if isinstance(keys, dict) and isinstance(keys.get("principalId"), str) and ":" in keys["principalId"]:
        keys["principalId"] = keys["principalId"].split(":", 1)[0] + ":" + instance["InstanceId"]
    details = resource.get("instanceDetails")
    if not isinstance(details, dict):
        return pointed
    details["instanceId"] = instance["InstanceId"]
    details["networkInterfaces"] = [
        {
            "networkInterfaceId": eni["NetworkInterfaceId"],
            "vpcId": eni["VpcId"],
            "subnetId": eni["SubnetId"],
            "privateIpAddress": eni.get("PrivateIpAddress"),
            "securityGroups": [
                {"groupId": group["GroupId"], "groupName": group["GroupName"]} for group in eni["Groups"]
            ],
        }
        for eni in sorted(instance["NetworkInterfaces"], key=lambda eni: eni["Attachment"]["DeviceIndex"])
    ]
    details["tags"] = [{"key": tag["Key"], "value": tag["Value"]} for tag in instance.get("Tags", [])]
    return pointed
