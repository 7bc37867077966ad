"""Shared fixtures: an embedded AWS (moto, in-process), the Jira and GuardDuty stand-ins, and finding events."""

from __future__ import annotations

import copy
import json
import pathlib
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from guardduty_responder import handler
from guardduty_responder.clients import AwsClients
from guardduty_responder.config import Settings
from guardduty_responder.isolation import GroupDirectory
from guardduty_responder.ledger import Ledger
from guardduty_responder.responder import Responder
from guardduty_responder_tools.embedded import create_network, create_responder_resources, drain_messages
from guardduty_responder_tools.guardduty_standin import GuardDutyStandIn
from guardduty_responder_tools.jira_standin import CLOUD, DATACENTER, REMOVED_SEARCH, JiraStandIn
from jira_openapi import CLOUD_GATEWAY, Contract, ContractError

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "events"
ACCOUNT = "123456789012"
REGION = "us-east-1"
TABLE = "guardduty-responder-test"
ISOLATING_FIXTURES = [
    "backdoor_cc_dns",
    "ssh_bruteforce",
    "bitcoin_tool_dns",
    "tor_client",
]
# Implicated at medium severity (a port scan it ran, severity 5): it waits for a person's approval.
APPROVAL_FIXTURES = ["recon_portscan"]
# The instance was only on the receiving end (a port probe): reported, never isolated.
REPORTED_FIXTURES = ["port_probe_target"]
SAMPLE_FIXTURES = ["sample_trojan_dns", "sample_flat_flag"]
NOT_ISOLATING_FIXTURES = REPORTED_FIXTURES + SAMPLE_FIXTURES


def load_event(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fake credentials, one region, and nothing that could reach a real account."""
    for key in (
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_SESSION_TOKEN",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
    ):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    handler.reset()
    yield
    handler.reset()


# The files that take minutes (terraform apply on a moto server, each waiting out the provider's own consistency
# checks), first: with `--dist loadfile --no-loadscope-reorder` (make test) each starts on a worker of its own at once,
# and the many short files fill the workers around them, instead of one long file running alone at the end.
LONG_FILES = ("test_composition.py", "test_deploy.py", "test_terraform.py", "test_archives.py", "test_policies.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONG_FILES.index(name) if name in LONG_FILES else len(LONG_FILES)

    items.sort(key=rank)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked `both_jira_deployments` run once against Jira Cloud and once against Jira Data Center."""
    if "jira_deployment" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_jira_deployments"):
        metafunc.parametrize("jira_deployment", [CLOUD, DATACENTER])


@pytest.fixture
def jira_deployment() -> str:
    """Jira Cloud, unless the test is marked to run in both deployments."""
    return CLOUD


@pytest.fixture
def jira(jira_deployment: str) -> Iterator[JiraStandIn]:
    """The Jira stand-in; after the test, every request it got and every answer it gave are checked against
    Atlassian's published API for its deployment (answers a test asked to be wrong excepted)."""
    standin = JiraStandIn(deployment=jira_deployment).start()
    yield standin
    standin.stop()
    problems = off_contract(standin)
    assert not problems, "Jira exchanges outside Atlassian's API:\n" + "\n".join(problems)


def off_contract(standin: JiraStandIn) -> list[str]:
    contract = Contract(standin.deployment)
    problems = []
    for exchange in standin.exchanges:
        asked = f"{exchange.method} {exchange.path}"
        if standin.deployment == CLOUD and REMOVED_SEARCH.match(CLOUD_GATEWAY.sub("", exchange.path)):
            problems.append(f"{asked}: a search Jira Cloud has removed")
        try:
            contract.check_request(exchange.method, exchange.path, exchange.query, exchange.body)
        except ContractError as error:
            problems.append(f"{asked}: request: {error}")
        if exchange.deliberate or exchange.status is None:
            continue
        try:
            contract.check_answer(exchange.method, exchange.path, exchange.status, exchange.answer)
        except ContractError as error:
            problems.append(f"{asked}: answer {exchange.status}: {error}")
    return problems


@pytest.fixture
def guardduty(monkeypatch: pytest.MonkeyPatch) -> Iterator[GuardDutyStandIn]:
    """GuardDuty's findings API on 127.0.0.1, reached through botocore's per-service endpoint setting."""
    standin = GuardDutyStandIn().start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_GUARDDUTY", standin.url)
    yield standin
    standin.stop()


class LambdaContext:
    aws_request_id = "test-request"

    def __init__(self, remaining_seconds: float = 60.0) -> None:
        self.remaining_seconds = remaining_seconds

    def get_remaining_time_in_millis(self) -> int:
        return int(self.remaining_seconds * 1000)


@dataclass(frozen=True)
class Network:
    """Where test instances are launched: an account's EC2 client, a VPC, a subnet, the instance groups."""

    ec2: Any
    vpc_id: str
    subnet_id: str
    groups: tuple[str, ...]


class Stack:
    """A small AWS estate in moto plus the responder's own resources, and helpers to drive it."""

    def __init__(self, jira: JiraStandIn, guardduty: GuardDutyStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
        self.jira = jira
        self.guardduty = guardduty
        self.ec2 = boto3.client("ec2", region_name=REGION)
        self.dynamodb = boto3.client("dynamodb", region_name=REGION)
        self.sns = boto3.client("sns", region_name=REGION)
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.jira_token = "jira-token-" + uuid.uuid4().hex
        resources = create_responder_resources(
            lambda service: boto3.client(service, region_name=REGION),
            table_name=TABLE,
            jira_secret=jira.secret_for(self.jira_token),
        )
        self.topic_arn, self.queue_url, secret_arn = resources.topic_arn, resources.queue_url, resources.secret_arn
        self.evidence_bucket = resources.evidence_bucket
        self.vpc_id, self.subnet_id = create_network(self.ec2, REGION)
        self.app_group = self.ec2.create_security_group(GroupName="app", Description="app", VpcId=self.vpc_id)[
            "GroupId"
        ]
        self.ssh_group = self.ec2.create_security_group(GroupName="ssh", Description="ssh", VpcId=self.vpc_id)[
            "GroupId"
        ]
        self.env = {
            "RESPONDER_TABLE": TABLE,
            "RESPONDER_TOPIC_ARN": self.topic_arn,
            "JIRA_SECRET_ARN": secret_arn,
            "JIRA_PROJECT_KEY": "SEC",
            "JIRA_ISSUE_TYPE": "Task",
            "DRY_RUN": "false",
            "EXEMPT_TAG_KEY": "guardduty-responder:exempt",
            "MAX_ISOLATIONS_PER_HOUR": "50",
            # As Terraform sets it.
            "RESPONDER_ACCOUNT_ID": ACCOUNT,
            "JIRA_TIMEOUT_SECONDS": "2",
            "EVIDENCE_BUCKET": self.evidence_bucket,
        }
        self._monkeypatch = monkeypatch
        self.configure()

    # -- configuration and invocation ---------------------------------------------------------------

    def configure(self, **overrides: str) -> None:
        self.env.update(overrides)
        for key, value in self.env.items():
            self._monkeypatch.setenv(key, value)
        handler.reset()

    def settings(self) -> Settings:
        return Settings.from_environ(self.env)

    def jira_secret(self) -> dict[str, Any]:
        arn = self.settings().jira_secret_arn
        secrets = boto3.client("secretsmanager", region_name=REGION)
        return json.loads(secrets.get_secret_value(SecretId=arn)["SecretString"])  # type: ignore[no-any-return]

    def put_jira_secret(self, secret: dict[str, Any]) -> None:
        """A new value of the Jira secret, as an operator's rotation writes it (warm containers keep the old one)."""
        secrets = boto3.client("secretsmanager", region_name=REGION)
        secrets.put_secret_value(SecretId=self.settings().jira_secret_arn, SecretString=json.dumps(secret))

    def responder(self, clients: AwsClients | None = None) -> Responder:
        return Responder(self.settings(), clients or AwsClients(region=REGION))

    def invoke(
        self, event: dict[str, Any], remaining_seconds: float = 60.0, *, raised_by_guardduty: bool = True
    ) -> dict[str, Any]:
        """Deliver the event to the handler; GuardDuty holds its finding unless `raised_by_guardduty` is False."""
        detail = event.get("detail")
        known = isinstance(detail, dict) and detail.get("id") in self.guardduty.findings
        if raised_by_guardduty and isinstance(detail, dict) and isinstance(detail.get("id"), str) and not known:
            self.guardduty.add(detail)
        return handler.lambda_handler(copy.deepcopy(event), LambdaContext(remaining_seconds))

    # -- the estate -----------------------------------------------------------------------------------

    def launch(
        self,
        *,
        enis: int = 1,
        ipv6: bool = False,
        tags: dict[str, str] | None = None,
        network: Network | None = None,
    ) -> str:
        """An instance in the stack's own network, or in `network` (another account's)."""
        net = network or Network(self.ec2, self.vpc_id, self.subnet_id, (self.app_group, self.ssh_group))
        groups = list(net.groups)
        primary: dict[str, Any] = {"DeviceIndex": 0, "SubnetId": net.subnet_id, "Groups": groups}
        if ipv6:
            primary["Ipv6AddressCount"] = 1
        instance = net.ec2.run_instances(
            ImageId="ami-12c6146b",
            MinCount=1,
            MaxCount=1,
            InstanceType="t3.micro",
            NetworkInterfaces=[primary],
            BlockDeviceMappings=[
                {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8, "DeleteOnTermination": True}},
                {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 4, "DeleteOnTermination": True}},
            ],
            TagSpecifications=[
                {
                    "ResourceType": "instance",
                    "Tags": [{"Key": k, "Value": v} for k, v in (tags or {"Name": "web"}).items()],
                }
            ],
        )["Instances"][0]
        instance_id = instance["InstanceId"]
        for index in range(1, enis):
            extra: dict[str, Any] = {"SubnetId": net.subnet_id, "Groups": [groups[0]]}
            if ipv6:
                extra["Ipv6AddressCount"] = 1
            eni = net.ec2.create_network_interface(**extra)["NetworkInterface"]["NetworkInterfaceId"]
            net.ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=instance_id, DeviceIndex=index)
        return instance_id

    def describe(self, instance_id: str, ec2: Any = None) -> dict[str, Any]:
        return (ec2 or self.ec2).describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]

    def groups_of(self, instance_id: str, ec2: Any = None) -> dict[str, list[str]]:
        return {
            eni["NetworkInterfaceId"]: sorted(group["GroupId"] for group in eni["Groups"])
            for eni in self.describe(instance_id, ec2)["NetworkInterfaces"]
        }

    def responder_groups(self, ec2: Any = None) -> dict[str, dict[str, Any]]:
        groups = (ec2 or self.ec2).describe_security_groups(
            Filters=[{"Name": "tag-key", "Values": ["guardduty-responder:role"]}]
        )["SecurityGroups"]
        return {
            {tag["Key"]: tag["Value"] for tag in group["Tags"]}["guardduty-responder:role"]: group for group in groups
        }

    def isolated(self, instance_id: str, ec2: Any = None) -> bool:
        """Every network interface of the instance on the isolation group, and on nothing else."""
        groups = self.responder_groups(ec2)
        return "isolation" in groups and all(
            found == [groups["isolation"]["GroupId"]] for found in self.groups_of(instance_id, ec2).values()
        )

    def snapshots_of(self, instance_id: str, ec2: Any = None) -> list[dict[str, Any]]:
        return (ec2 or self.ec2).describe_snapshots(
            OwnerIds=["self"], Filters=[{"Name": "tag:guardduty-responder:instance-id", "Values": [instance_id]}]
        )["Snapshots"]

    def event(
        self,
        fixture: str | dict[str, Any],
        instance_id: str | None = None,
        *,
        finding_id: str | None = None,
        count: int | None = None,
        ec2: Any = None,
    ) -> dict[str, Any]:
        """A fixture event (by name, or an event itself) re-pointed at an instance of this stack, with
        GuardDuty's view of its ENIs.

        GuardDuty holds the finding from now on (its stand-in serves this very `detail`), as it would
        after raising it.
        """
        event = load_event(fixture) if isinstance(fixture, str) else copy.deepcopy(fixture)
        detail = event["detail"]
        if finding_id is not None:
            detail["id"] = finding_id
        if count is not None:
            detail["service"]["count"] = count
        keys = detail["resource"].get("accessKeyDetails")
        if instance_id is not None and keys is not None:
            keys["principalId"] = keys["principalId"].split(":", 1)[0] + ":" + instance_id
        if instance_id is not None and "instanceDetails" in detail["resource"]:
            details = detail["resource"]["instanceDetails"]
            details["instanceId"] = instance_id
            described = self.describe(instance_id, ec2)
            details["networkInterfaces"] = [
                {
                    "networkInterfaceId": eni["NetworkInterfaceId"],
                    "vpcId": eni["VpcId"],
                    "subnetId": eni["SubnetId"],
                    "privateIpAddress": eni.get("PrivateIpAddress"),
                    "securityGroups": [{"groupId": g["GroupId"], "groupName": g["GroupName"]} for g in eni["Groups"]],
                }
                for eni in described["NetworkInterfaces"]
            ]
            details["tags"] = [{"key": t["Key"], "value": t["Value"]} for t in described.get("Tags", [])]
        self.guardduty.add(detail)
        return event

    # -- what came out ------------------------------------------------------------------------------

    def messages(self) -> list[dict[str, Any]]:
        """Every SNS notification delivered so far (drains the subscription queue)."""
        return drain_messages(self.sqs, self.queue_url)

    def record(self, pk: str) -> dict[str, Any] | None:
        from boto3.dynamodb.types import TypeDeserializer

        item = self.dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": pk}}).get("Item")
        return {k: TypeDeserializer().deserialize(v) for k, v in item.items()} if item else None


def group_directory(ec2: Any = None) -> GroupDirectory:
    """A cold container's view of the containment groups of the stack's account, recorded in its ledger."""
    ledger = Ledger(boto3.client("dynamodb", region_name=REGION), TABLE, 30)
    return GroupDirectory(ec2 or boto3.client("ec2", region_name=REGION), ledger, ACCOUNT)


@pytest.fixture(autouse=True)
def moto_answers_one_request_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """AWS's per-request atomicity for moto, whose in-process backends do not lock between threads.

    DynamoDB evaluates a condition and applies the write as one step, and EC2 never shows a request
    another one half done; moto, called from several threads at once (the responder's parallel
    steps, concurrent invocations), can interleave inside its own code, check-then-write or
    iterate a dict another thread is changing. Serialising the requests it answers makes the
    tests test the responder, not moto's thread safety.
    """
    from moto.core.botocore_stubber import BotocoreStubber

    lock = threading.RLock()
    answer = BotocoreStubber.process_request

    def one_at_a_time(self: Any, request: Any) -> Any:
        with lock:
            return answer(self, request)

    monkeypatch.setattr(BotocoreStubber, "process_request", one_at_a_time)


@pytest.fixture
def stack(jira: JiraStandIn, guardduty: GuardDutyStandIn, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with mock_aws():
        yield Stack(jira, guardduty, monkeypatch)
