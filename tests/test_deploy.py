"""End to end: `terraform apply` the root module against a local AWS (a moto server on 127.0.0.1),
then run the deployed function archive with the deployed environment and the deployed role's
credentials against an instance, and check that a second plan changes nothing and destroy leaves nothing.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.events.models import EventPattern, EventPatternParser

from guardduty_responder.ledger import Ledger
from guardduty_responder.ticketing import finding_label
from guardduty_responder_tools.guardduty_standin import GuardDutyStandIn
from guardduty_responder_tools.jira_standin import JiraStandIn
from python_support import find_python
from test_credentials import EC2_TRUST

from conftest import ISOLATING_FIXTURES, NOT_ISOLATING_FIXTURES, load_event
from local_aws import REGION, LocalAws
from terraform_support import ROOT, TerraformDir, require_terraform, running_under_ci

MEMBER = "210987654321"
MEMBER_ROLE = "guardduty-responder-member"
LAMBDA_PYTHON = "3.13"
EXTERNAL_ID = "deploy-test-external-id"
# A delegated administrator's deployment: member accounts are reached through MEMBER_ROLE.
VARIABLES = [
    "-var",
    "jira_project_key=SEC",
    "-var",
    "deletion_protection=false",
    "-var",
    "architecture=x86_64",
    "-var",
    f"member_role_name={MEMBER_ROLE}",
    "-var",
    f"member_role_external_id={EXTERNAL_ID}",
    "-var",
    "organization_id=o-a1b2c3d4e5",
    "-var",
    'notification_emails=["soc@example.com"]',
    "-var",
    'tags={"team"="security"}',
]


def lambda_python() -> str:
    """A Python 3.13 interpreter, the Lambda runtime's version: the layer is built for it."""
    search = find_python(LAMBDA_PYTHON)
    if search.found:
        return search.found
    reason = (
        f"no Python {LAMBDA_PYTHON} to run the deployed function as Lambda's python{LAMBDA_PYTHON} runtime would "
        f"(tried {'; '.join(search.tried)}); install it, e.g. `pyenv install {LAMBDA_PYTHON}` or `uv python install {LAMBDA_PYTHON}`"
    )
    if running_under_ci():
        pytest.fail(f"CI must run the deployed function: {reason}")
    pytest.skip(reason)


def lambda_runtime_packages(python: str, into: pathlib.Path) -> pathlib.Path:
    """What the python3.13 runtime provides besides the function and its layer: boto3."""
    target = into / "runtime"
    if not target.exists():
        subprocess.run(
            [
                python,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--target",
                str(target),
                f"boto3=={boto3.__version__}",
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return target


@pytest.fixture(scope="module")
def deployment() -> Iterator[tuple[LocalAws, TerraformDir, dict[str, Any]]]:
    require_terraform()
    aws = LocalAws()
    workdir = TerraformDir()
    try:
        workdir.init()
        workdir.run("apply", "-auto-approve", "-input=false", "-no-color", *VARIABLES, env=aws.env, timeout=600)
        outputs = {k: v["value"] for k, v in json.loads(workdir.run("output", "-json", env=aws.env).stdout).items()}
        yield aws, workdir, outputs
    finally:
        aws.stop()
        workdir.remove()


def test_the_deployed_rule_selects_guardduty_instance_findings(deployment: Any) -> None:
    aws, _, outputs = deployment
    raw = aws.client("events").describe_rule(Name=outputs["rule_name"])["EventPattern"]
    pattern = EventPattern(raw, EventPatternParser(raw).parse())

    def matches(event: dict[str, Any]) -> bool:
        return pattern.matches_event(event)

    for fixture in ISOLATING_FIXTURES + ["sample_trojan_dns", "sample_flat_flag"]:
        assert matches(load_event(fixture)), fixture
    low = load_event("port_probe_target")  # severity 2, below the default minimum of 4
    assert not matches(low)
    not_an_instance = load_event("tor_client")
    not_an_instance["detail"]["resource"]["resourceType"] = "AccessKey"
    assert not matches(not_an_instance)
    other_source = load_event("tor_client")
    other_source["source"] = "aws.securityhub"
    assert not matches(other_source)
    assert NOT_ISOLATING_FIXTURES  # the low-severity probe is the one filtered at the edge


def launch_instance(ec2: Any, prefix: str) -> tuple[str, str, str]:
    """An instance in a new VPC `<prefix>.0.0/16`, on one group of its own: (instance, subnet, group)."""
    vpc = ec2.create_vpc(CidrBlock=f"{prefix}.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=f"{prefix}.1.0/24")["Subnet"]["SubnetId"]
    app = ec2.create_security_group(GroupName="app", Description="app", VpcId=vpc)["GroupId"]
    instance_id = ec2.run_instances(
        ImageId="ami-12c6146b",
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.micro",
        NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": subnet, "Groups": [app]}],
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8}}],
    )["Instances"][0]["InstanceId"]
    return instance_id, subnet, app


def deployed_archives(
    aws: LocalAws, workdir: TerraformDir, outputs: dict[str, Any]
) -> tuple[pathlib.Path, pathlib.Path]:
    """The archive files whose hashes match what the function and its layer were deployed with."""
    function = aws.client("lambda").get_function(FunctionName=outputs["function_name"])["Configuration"]

    def by_hash(pattern: str, expected: str) -> pathlib.Path:
        for path in (workdir.path / ".build").glob(pattern):
            if base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode() == expected:
                return path
        raise AssertionError(f"no built archive matches the deployed {pattern}")

    *_, layer_name, layer_version = function["Layers"][0]["Arn"].split(":")
    layer = aws.client("lambda").get_layer_version(LayerName=layer_name, VersionNumber=int(layer_version))
    return by_hash("function-*.zip", function["CodeSha256"]), by_hash("layer-*.zip", layer["Content"]["CodeSha256"])


def test_the_deployed_function_contains_an_instance_with_the_deployed_role(deployment: Any) -> None:
    aws, workdir, outputs = deployment
    python = lambda_python()
    runtime = lambda_runtime_packages(python, workdir.path)
    ec2 = aws.client("ec2")
    jira = JiraStandIn().start()
    try:
        token = "deploy-test-token"
        aws.client("secretsmanager").put_secret_value(
            SecretId=outputs["jira_secret_arn"],
            SecretString=json.dumps({"url": jira.url, "username": "responder@example.com", "api_token": token}),
        )
        instance_id, subnet, app = launch_instance(ec2, "10.8")
        second = ec2.create_network_interface(SubnetId=subnet, Groups=[app])["NetworkInterface"]["NetworkInterfaceId"]
        ec2.attach_network_interface(NetworkInterfaceId=second, InstanceId=instance_id, DeviceIndex=1)
        sqs, sns = aws.client("sqs"), aws.client("sns")
        inbox = sqs.create_queue(QueueName="deploy-test-inbox")["QueueUrl"]
        inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=outputs["topic_arn"], Protocol="sqs", Endpoint=inbox_arn)

        function = aws.client("lambda").get_function(FunctionName=outputs["function_name"])["Configuration"]
        function_zip, layer_zip = deployed_archives(aws, workdir, outputs)
        event = load_event("backdoor_cc_dns")
        event["detail"]["resource"]["instanceDetails"]["instanceId"] = instance_id
        with as_deployed_role(aws, outputs) as credentials:
            result = run_deployed_function(aws, python, runtime, function, function_zip, layer_zip, event, credentials)

        assert result["summary"]["isolated"] is True, result
        assert result["package"].startswith(result["workdir"]), "the deployed archive, not the checkout, must run"
        isolation = ec2.describe_security_groups(
            Filters=[{"Name": "tag:guardduty-responder:role", "Values": ["isolation"]}]
        )["SecurityGroups"][0]["GroupId"]
        enis = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["NetworkInterfaces"]
        assert len(enis) == 2 and all([g["GroupId"] for g in eni["Groups"]] == [isolation] for eni in enis)
        snapshots = ec2.describe_snapshots(
            OwnerIds=["self"], Filters=[{"Name": "tag:guardduty-responder:instance-id", "Values": [instance_id]}]
        )["Snapshots"]
        assert len(snapshots) == 1
        assert len(jira.issues_labelled(finding_label(event["detail"]["id"]))) == 1
        messages = sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10, WaitTimeSeconds=2).get("Messages", [])
        assert len(messages) == 1 and instance_id in json.loads(messages[0]["Body"])["Subject"]
        assert token not in result["logs"]
        with unconditioned_bucket_policy(aws, outputs["evidence_bucket_name"]):
            manifest_uri = assert_the_evidence_matches_its_manifest(aws, outputs["evidence_bucket_name"], instance_id)
        (issue,) = jira.issues_labelled(finding_label(event["detail"]["id"]))
        assert f"manifest: {manifest_uri}" in issue["fields"]["description"]
    finally:
        jira.stop()


def assert_the_evidence_matches_its_manifest(aws: LocalAws, bucket: str, instance_id: str) -> str:
    """The bucket Terraform made is locked, and holds the instance's manifest with every object's hash."""
    s3 = aws.client("s3")
    lock = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    assert lock["ObjectLockEnabled"] == "Enabled"
    retention = lock["Rule"]["DefaultRetention"]
    assert (retention["Mode"], retention["Days"]) == ("GOVERNANCE", 365)
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="incidents/")["Contents"]
    (key,) = [
        item["Key"] for item in listed if f"/{instance_id}/" in item["Key"] and item["Key"].endswith("manifest.json")
    ]
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert len(manifest["objects"]) >= 6
    for entry in manifest["objects"]:
        body = s3.get_object(Bucket=bucket, Key=entry["key"])["Body"].read()
        assert hashlib.sha256(body).hexdigest() == entry["sha256"], entry["key"]
    return f"s3://{bucket}/{key}"


def test_the_deployed_function_takes_the_identity_and_release_gives_it_back(deployment: Any) -> None:
    """An instance with an instance profile, contained by the deployed function under the deployed role: the profile
    is gone and its role carries a deny scoped to the instance's ARN; the release command puts every item back."""
    aws, workdir, outputs = deployment
    python = lambda_python()
    runtime = lambda_runtime_packages(python, workdir.path)
    ec2, iam = aws.client("ec2"), aws.client("iam")
    jira = JiraStandIn().start()
    try:
        aws.client("secretsmanager").put_secret_value(
            SecretId=outputs["jira_secret_arn"],
            SecretString=json.dumps({"url": jira.url, "username": "responder@example.com", "api_token": "t0ken"}),
        )
        instance_id, _, app = launch_instance(ec2, "10.10")
        iam.create_role(RoleName="deploy-app-role", AssumeRolePolicyDocument=json.dumps(EC2_TRUST))
        profile = iam.create_instance_profile(InstanceProfileName="deploy-app")["InstanceProfile"]["Arn"]
        iam.add_role_to_instance_profile(InstanceProfileName="deploy-app", RoleName="deploy-app-role")
        ec2.associate_iam_instance_profile(IamInstanceProfile={"Arn": profile}, InstanceId=instance_id)
        function = aws.client("lambda").get_function(FunctionName=outputs["function_name"])["Configuration"]
        function_zip, layer_zip = deployed_archives(aws, workdir, outputs)
        event = load_event("backdoor_cc_dns")
        event["detail"]["id"] = "7d1c3e5a9b2f4d6e8a0c1b3d5f7e9a21"
        event["detail"]["resource"]["instanceDetails"]["instanceId"] = instance_id
        with as_deployed_role(aws, outputs) as credentials:
            result = run_deployed_function(aws, python, runtime, function, function_zip, layer_zip, event, credentials)

        assert result["summary"]["isolated"] is True, result
        steps = result["summary"]["steps"]
        assert [steps[s] for s in ("verify", "instance_profile", "revoke_sessions", "connection_tracking")] == [
            "done"
        ] * 4, steps
        assert profiles_of(ec2, instance_id) == []
        document = iam.get_role_policy(
            RoleName="deploy-app-role", PolicyName=f"guardduty-responder-revoke-{instance_id}"
        )
        policy = document["PolicyDocument"]
        (statement,) = (json.loads(policy) if isinstance(policy, str) else policy)["Statement"]
        account = aws.client("sts").get_caller_identity()["Account"]
        assert statement["Condition"]["ArnEquals"] == {
            "ec2:SourceInstanceARN": f"arn:aws:ec2:{REGION}:{account}:instance/{instance_id}"
        }

        released = subprocess.run(
            [sys.executable, "-m", "guardduty_responder_tools", "--output", "json", "release", instance_id]
            + ["--released-by", "deploy test", "--restore-credentials"],
            env={**os.environ, **aws.env, **function["Environment"]["Variables"]},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert released.returncode == 0, released.stdout[-3000:] + released.stderr[-3000:]
        items = [line.split(":", 1)[0] for line in json.loads(released.stdout)["restored"]]
        assert items == ["security groups", "instance profile", "connection tracking", "credentials"], items
        enis = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["NetworkInterfaces"]
        assert [[g["GroupId"] for g in eni["Groups"]] for eni in enis] == [[app]]
        assert profiles_of(ec2, instance_id) == [profile]
        assert iam.list_role_policies(RoleName="deploy-app-role")["PolicyNames"] == []
    finally:
        jira.stop()


def profiles_of(ec2: Any, instance_id: str) -> list[str]:
    associations = ec2.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [instance_id]}]
    )["IamInstanceProfileAssociations"]
    return [a["IamInstanceProfile"]["Arn"] for a in associations if a["State"] == "associated"]


def actions_only(policy: dict[str, Any]) -> dict[str, Any]:
    """The policy's Allow statements with every resource mapped to "*".

    moto matches IAM by action only and cannot match most resource ARNs (ARN scoping is checked by
    the plan tests); the Deny statements, each on one named role, would wrongly deny everywhere.
    """
    allowed = [
        {"Effect": "Allow", "Action": statement["Action"], "Resource": "*"}
        for statement in policy["Statement"]
        if statement["Effect"] == "Allow"
    ]
    actions = {action for statement in allowed for action in statement["Action"]}
    # IAM authorises a DynamoDB transaction by the actions of its parts; moto checks the API's own name.
    if {"dynamodb:PutItem", "dynamodb:UpdateItem"} <= actions:
        allowed.append({"Effect": "Allow", "Action": ["dynamodb:TransactWriteItems"], "Resource": "*"})
    return {"Version": "2012-10-17", "Statement": allowed}


@contextlib.contextmanager
def actions_enforced(iam: Any, role_name: str) -> Iterator[None]:
    """The role's deployed policy, as moto can check it, for the duration of the block."""
    deployed = iam.get_role_policy(RoleName=role_name, PolicyName="responder")["PolicyDocument"]
    iam.put_role_policy(RoleName=role_name, PolicyName="responder", PolicyDocument=json.dumps(actions_only(deployed)))
    try:
        yield
    finally:
        iam.put_role_policy(RoleName=role_name, PolicyName="responder", PolicyDocument=json.dumps(deployed))


@contextlib.contextmanager
def unconditioned_bucket_policy(aws: LocalAws, bucket: str) -> Iterator[None]:
    """The evidence bucket's policy without its conditioned statements for the duration of the block: moto evaluates
    a bucket policy on object requests but ignores conditions, so "deny unless over TLS" would deny everything (the
    plan tests check that statement)."""
    s3 = aws.client("s3")
    deployed = s3.get_bucket_policy(Bucket=bucket)["Policy"]
    statements = [statement for statement in json.loads(deployed)["Statement"] if "Condition" not in statement]
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": statements}))
    try:
        yield
    finally:
        s3.put_bucket_policy(Bucket=bucket, Policy=deployed)


def test_the_deployed_schedule_s_sweep_isolates_an_approved_finding_with_the_deployed_role(deployment: Any) -> None:
    aws, workdir, outputs = deployment
    python = lambda_python()
    runtime = lambda_runtime_packages(python, workdir.path)
    ec2 = aws.client("ec2")
    jira = JiraStandIn().start()
    try:
        aws.client("secretsmanager").put_secret_value(
            SecretId=outputs["jira_secret_arn"],
            SecretString=json.dumps({"url": jira.url, "username": "responder@example.com", "api_token": "t0ken"}),
        )
        instance_id, _, app = launch_instance(ec2, "10.9")
        function = aws.client("lambda").get_function(FunctionName=outputs["function_name"])["Configuration"]
        function_zip, layer_zip = deployed_archives(aws, workdir, outputs)
        event = load_event("recon_portscan")  # implicated at medium severity: approval needed
        event["detail"]["resource"]["instanceDetails"]["instanceId"] = instance_id
        finding_id = event["detail"]["id"]
        with as_deployed_role(aws, outputs) as credentials:
            waiting = run_deployed_function(aws, python, runtime, function, function_zip, layer_zip, event, credentials)
        assert waiting["summary"]["action"] == "approve", waiting
        Ledger(aws.client("dynamodb"), outputs["table_name"], 1).decide_approval(
            finding_id, state="approved", by="deploy test", how="command", now=time.time()
        )
        rule = aws.client("events").describe_rule(Name=outputs["sweep_rule_arn"].rsplit("/", 1)[-1])
        assert (rule["ScheduleExpression"], rule["State"]) == ("rate(1 minute)", "ENABLED")
        scheduled = {"source": "aws.events", "detail-type": "Scheduled Event", "id": "deploy-sweep", "detail": {}}
        with as_deployed_role(aws, outputs) as credentials:
            swept = run_deployed_function(
                aws, python, runtime, function, function_zip, layer_zip, scheduled, credentials, (event["detail"],)
            )
        assert swept["summary"]["approvals_approved"] == [finding_id], swept
        assert swept["summary"]["resumed"] == [finding_id], swept
        enis = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["NetworkInterfaces"]
        assert all([g["GroupId"] for g in eni["Groups"]] != [app] for eni in enis)
    finally:
        jira.stop()


@contextlib.contextmanager
def as_deployed_role(aws: LocalAws, outputs: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Credentials of the function's deployed role, with moto's IAM enforcement on inside the block."""
    iam = aws.client("iam")
    role_name = outputs["role_arn"].split("/")[-1]
    try:
        operator_arn = iam.get_user(UserName="deploy-test-operator")["User"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        operator_arn = iam.create_user(UserName="deploy-test-operator")["User"]["Arn"]
        iam.put_user_policy(
            UserName="deploy-test-operator",
            PolicyName="assume",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}],
                }
            ),
        )
    operator = iam.create_access_key(UserName="deploy-test-operator")["AccessKey"]
    # Lambda's service principal cannot assume the role here; the test's operator stands in for
    # it (moto also fails on a trust statement without an AWS principal, so it stands alone).
    deployed_trust = iam.get_role(RoleName=role_name)["Role"]["AssumeRolePolicyDocument"]
    operator_trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": operator_arn}, "Action": "sts:AssumeRole"}],
    }
    iam.update_assume_role_policy(RoleName=role_name, PolicyDocument=json.dumps(operator_trust))
    try:
        with actions_enforced(iam, role_name), unconditioned_bucket_policy(aws, outputs["evidence_bucket_name"]):
            aws.enforce_iam(True)
            try:
                yield aws.client(
                    "sts", aws_access_key_id=operator["AccessKeyId"], aws_secret_access_key=operator["SecretAccessKey"]
                ).assume_role(RoleArn=outputs["role_arn"], RoleSessionName="guardduty-responder")["Credentials"]
            finally:
                aws.enforce_iam(False)
    finally:
        iam.update_assume_role_policy(RoleName=role_name, PolicyDocument=json.dumps(deployed_trust))
        # IAM allows two keys a user: each use of the role makes its own and deletes it after.
        iam.delete_access_key(UserName="deploy-test-operator", AccessKeyId=operator["AccessKeyId"])


def member_credentials(aws: LocalAws) -> dict[str, str]:
    """An administrator's credentials in the member account (moto maps an assumed role's keys to its account)."""
    issued = aws.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{MEMBER}:role/OrganizationAccountAccessRole", RoleSessionName="deploy-test-setup"
    )["Credentials"]
    return {
        "aws_access_key_id": issued["AccessKeyId"],
        "aws_secret_access_key": issued["SecretAccessKey"],
        "aws_session_token": issued["SessionToken"],
    }


def environment_of(aws: LocalAws, credentials: dict[str, str]) -> dict[str, str]:
    """Terraform's environment for the local AWS with these credentials."""
    return {
        **aws.env,
        "AWS_ACCESS_KEY_ID": credentials["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": credentials["aws_secret_access_key"],
        "AWS_SESSION_TOKEN": credentials["aws_session_token"],
    }


def test_the_deployed_function_contains_a_member_account_instance_through_the_member_role(deployment: Any) -> None:
    aws, workdir, outputs = deployment
    trust = outputs["member_role_trust"]
    assert trust == {
        "responder_role_arn": outputs["role_arn"],
        "member_role_name": MEMBER_ROLE,
        "external_id": EXTERNAL_ID,
    }
    member = member_credentials(aws)
    # The member account applies modules/member-role with what the administrator's output names.
    (workdir.path / "member").mkdir(exist_ok=True)
    (workdir.path / "member" / "main.tf").write_text(
        'module "member" {\n'
        '  source              = "../modules/member-role"\n'
        f'  role_name           = "{trust["member_role_name"]}"\n'
        f'  external_id         = "{trust["external_id"]}"\n'
        f'  responder_role_arns = ["{trust["responder_role_arn"]}"]\n'
        f'  regions             = ["{REGION}"]\n'
        "}\n"
        'output "role_arn" {\n  value = module.member.role_arn\n}\n'
    )
    member_env = environment_of(aws, member)
    workdir.run("-chdir=member", "init", "-backend=false", "-input=false", "-no-color")
    workdir.run("-chdir=member", "apply", "-auto-approve", "-input=false", "-no-color", env=member_env, timeout=300)
    try:
        run_in_member_account(aws, workdir, outputs, member)
    finally:
        workdir.run(
            "-chdir=member", "destroy", "-auto-approve", "-input=false", "-no-color", env=member_env, timeout=300
        )
    assert aws.client("iam", **member).list_roles()["Roles"] == [], "destroy leaves no member role"


def run_in_member_account(
    aws: LocalAws, workdir: TerraformDir, outputs: dict[str, Any], member: dict[str, str]
) -> None:
    python = lambda_python()
    runtime = lambda_runtime_packages(python, workdir.path)
    role_arn = json.loads(workdir.run("-chdir=member", "output", "-json", env=environment_of(aws, member)).stdout)[
        "role_arn"
    ]["value"]
    assert role_arn == f"arn:aws:iam::{MEMBER}:role/{MEMBER_ROLE}"

    ec2 = aws.client("ec2", **member)
    instance_id, _, _ = launch_instance(ec2, "10.9")
    event = load_event("tor_client")
    event["account"] = event["detail"]["accountId"] = MEMBER
    event["detail"]["resource"]["instanceDetails"]["instanceId"] = instance_id
    function = aws.client("lambda").get_function(FunctionName=outputs["function_name"])["Configuration"]
    function_zip, layer_zip = deployed_archives(aws, workdir, outputs)
    jira = JiraStandIn().start()
    try:
        aws.client("secretsmanager").put_secret_value(
            SecretId=outputs["jira_secret_arn"],
            SecretString=json.dumps(
                {"url": jira.url, "username": "responder@example.com", "api_token": "deploy-test-token"}
            ),
        )
        # Both roles as deployed: the function's at home, the member role in the member account.
        with actions_enforced(aws.client("iam", **member), MEMBER_ROLE), as_deployed_role(aws, outputs) as credentials:
            result = run_deployed_function(aws, python, runtime, function, function_zip, layer_zip, event, credentials)
        assert result["summary"]["isolated"] is True, result
        assert len(jira.issues_labelled(finding_label(event["detail"]["id"]))) == 1
    finally:
        jira.stop()
    isolation = ec2.describe_security_groups(
        Filters=[{"Name": "tag:guardduty-responder:role", "Values": ["isolation"]}]
    )["SecurityGroups"][0]["GroupId"]
    enis = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["NetworkInterfaces"]
    assert [g["GroupId"] for g in enis[0]["Groups"]] == [isolation]
    assert (
        len(
            ec2.describe_snapshots(
                OwnerIds=["self"], Filters=[{"Name": "tag:guardduty-responder:instance-id", "Values": [instance_id]}]
            )["Snapshots"]
        )
        == 1
    )
    ledger = aws.client("dynamodb").get_item(TableName=outputs["table_name"], Key={"pk": {"S": event["detail"]["id"]}})[
        "Item"
    ]
    assert ledger["account_id"] == {"S": MEMBER}


def run_deployed_function(
    aws: LocalAws,
    python: str,
    runtime: pathlib.Path,
    function: dict[str, Any],
    function_zip: pathlib.Path,
    layer_zip: pathlib.Path,
    event: dict[str, Any],
    credentials: dict[str, Any],
    holds: tuple[dict[str, Any], ...] = (),
) -> dict[str, Any]:
    """Unpack the deployed archives as Lambda lays them out (/var/task, /opt/python) and invoke the handler
    with Python 3.13, the deployed environment and the role's credentials.

    moto has no GuardDuty findings API: a GuardDuty stand-in on 127.0.0.1 holds the finding (or, for a sweep,
    the findings in `holds`), and the function's GuardDuty client reaches it through botocore's per-service
    endpoint setting.
    """
    guardduty = GuardDutyStandIn().start()
    for detail in holds or (event["detail"],):
        guardduty.add(detail)
    try:
        return _run_unpacked(
            python,
            runtime,
            function,
            (function_zip, layer_zip),
            event,
            credentials,
            {"AWS_ENDPOINT_URL": aws.endpoint, "AWS_ENDPOINT_URL_GUARDDUTY": guardduty.url},
        )
    finally:
        guardduty.stop()


def _run_unpacked(
    python: str,
    runtime: pathlib.Path,
    function: dict[str, Any],
    archives: tuple[pathlib.Path, pathlib.Path],
    event: dict[str, Any],
    credentials: dict[str, Any],
    endpoints: dict[str, str],
) -> dict[str, Any]:
    function_zip, layer_zip = archives
    with tempfile.TemporaryDirectory(prefix="responder-lambda-") as root:
        task, opt = pathlib.Path(root, "task"), pathlib.Path(root, "opt")
        zipfile.ZipFile(function_zip).extractall(task)
        zipfile.ZipFile(layer_zip).extractall(opt)
        runner = (
            "import json, sys\n"
            "import guardduty_responder\n"
            "from guardduty_responder.handler import lambda_handler\n"
            "class Context:\n"
            "    aws_request_id = 'deploy-test'\n"
            "    def get_remaining_time_in_millis(self): return 60000\n"
            "summary = lambda_handler(json.load(sys.stdin), Context())\n"
            "print('RESULT ' + json.dumps({'summary': summary, 'package': guardduty_responder.__file__}))\n"
        )
        env = {
            "PATH": os.environ.get("PATH", ""),
            # Lambda's order: the function, then the layer, then the runtime's own boto3.
            "PYTHONPATH": os.pathsep.join([str(task), str(opt / "python"), str(runtime)]),
            **function["Environment"]["Variables"],
            **endpoints,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
            "AWS_SESSION_TOKEN": credentials["SessionToken"],
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        }
        completed = subprocess.run(
            [python, "-s", "-c", runner], input=json.dumps(event), env=env, capture_output=True, text=True, timeout=120
        )
        lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
        assert completed.returncode == 0 and lines, completed.stdout[-4000:] + completed.stderr[-4000:]
        return {**json.loads(lines[-1][len("RESULT ") :]), "workdir": root, "logs": completed.stdout + completed.stderr}


# What the Lambda service does with the role on the function's behalf: these requests carry no
# lambda:SourceFunctionArn.
RUNTIME_SIDS = {"WriteLogs", "WriteTraces", "SendFailedFindings", "UseTheKey"}


def deployed_role_statements(aws: LocalAws, outputs: dict[str, Any]) -> list[dict[str, Any]]:
    role_name = outputs["role_arn"].split("/")[-1]
    document = aws.client("iam").get_role_policy(RoleName=role_name, PolicyName="responder")["PolicyDocument"]
    return list(document["Statement"])


def actions_of(statement: dict[str, Any]) -> list[str]:
    return statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]


def test_the_role_may_do_what_the_code_calls_only_from_the_function(deployment: Any) -> None:
    aws, _, outputs = deployment
    statements = deployed_role_statements(aws, outputs)
    code_actions = {
        action
        for statement in statements
        if statement["Effect"] == "Allow" and statement["Sid"] not in RUNTIME_SIDS
        for action in actions_of(statement)
    }
    runtime_actions = {
        action for statement in statements if statement["Sid"] in RUNTIME_SIDS for action in actions_of(statement)
    }

    (guard,) = [statement for statement in statements if statement["Sid"] == "OnlyFromTheFunction"]

    assert guard["Effect"] == "Deny" and guard["Resource"] == "*"
    assert guard["Condition"] == {"ArnNotEquals": {"lambda:SourceFunctionArn": outputs["function_arn"]}}
    assert set(guard["Action"]) == code_actions, "every action the code calls, and nothing the runtime does for it"
    assert runtime_actions.isdisjoint(guard["Action"])
    assert len(code_actions) > 20


def test_the_instance_attributes_the_role_may_change_are_the_ones_the_code_changes(deployment: Any) -> None:
    aws, _, outputs = deployment
    statements = [
        statement
        for statement in deployed_role_statements(aws, outputs)
        if statement["Effect"] == "Allow" and "ec2:ModifyInstanceAttribute" in actions_of(statement)
    ]

    assert {statement["Sid"]: statement["Condition"] for statement in statements} == {
        "KeepTheInstance": {
            "StringEqualsIgnoreCase": {
                "ec2:Attribute": ["disableApiTermination", "instanceInitiatedShutdownBehavior", "blockDeviceMapping"]
            }
        },
        "KeepTheVolumes": {"Null": {"ec2:Attribute": "true"}},
    }
    assert all(actions_of(statement) == ["ec2:ModifyInstanceAttribute"] for statement in statements)
    account = outputs["role_arn"].split(":")[4]
    assert all(statement["Resource"] == f"arn:aws:ec2:*:{account}:instance/*" for statement in statements)
    # The ARNs name any region; one deny keeps every regional action to this one.
    (regions,) = [s for s in deployed_role_statements(aws, outputs) if s.get("Sid") == "OnlyInTheListedRegions"]
    assert regions["Effect"] == "Deny" and "ec2:ModifyInstanceAttribute" in actions_of(regions)
    assert regions["Condition"] == {"StringNotEquals": {"aws:RequestedRegion": [REGION]}}


def test_the_ledger_carries_its_resource_policy(deployment: Any) -> None:
    """moto stores a table's resource policy without evaluating it: this checks it was put, as Terraform rendered it
    (test_policies.py checks what it says)."""
    aws, _, outputs = deployment
    table_arn = aws.client("dynamodb").describe_table(TableName=outputs["table_name"])["Table"]["TableArn"]

    document = json.loads(aws.client("dynamodb").get_resource_policy(ResourceArn=table_arn)["Policy"])

    assert [statement["Sid"] for statement in document["Statement"]] == ["OnlyTheResponderAndItsOperatorsWrite"]


def test_lambda_holds_the_locked_archives(deployment: Any) -> None:
    aws, _, outputs = deployment
    lock = json.loads((ROOT / "lambda_code" / "archives.lock.json").read_text())
    function = aws.client("lambda").get_function(FunctionName=outputs["function_name"])["Configuration"]
    *_, layer_name, layer_version = function["Layers"][0]["Arn"].split(":")
    layer = aws.client("lambda").get_layer_version(LayerName=layer_name, VersionNumber=int(layer_version))

    assert function["CodeSha256"] == lock["function"]
    assert layer["Content"]["CodeSha256"] == lock["layer"]["x86_64"]


# The root module as it was before modules/responder: every resource at the root, the provider block beside them.
BEFORE_MODULES = (ROOT / "tests" / "fixtures" / "terraform" / "root-before-modules.tf.txt").read_text()
# Outputs the root did not have before.
NEW_OUTPUTS = {
    "alarm_arns",
    "approver_policy_json",
    "evidence_bucket_arn",
    "evidence_bucket_name",
    "failed_findings_queue_arn",
    "layer_arns",
    "log_group_arn",
    "log_group_name",
    "role_name",
    "sweep_rule_arn",
    "table_arn",
    "undelivered_findings_queue_arn",
}


def as_before_modules(state: dict[str, Any]) -> dict[str, Any]:
    """The deployment's state as the root before modules/responder would have written it: each resource at the
    address that root gives it (no module, and no count where it had none); data sources are read again."""
    uncounted = set(re.findall(r'^resource "(\w+)" "(\w+)" \{\n(?!  (?:count|for_each) )', BEFORE_MODULES, re.M))
    declared = set(re.findall(r'^resource "(\w+)" "(\w+)"', BEFORE_MODULES, re.M))
    resources = []
    for resource in state["resources"]:
        if resource["mode"] == "data" or (resource["type"], resource["name"]) not in declared:
            continue  # read again, or added since (the evidence bucket)
        assert resource.pop("module") == "module.responder", resource
        if (resource["type"], resource["name"]) in uncounted:
            resource.pop("each", None)
            for instance in resource["instances"]:
                assert instance.pop("index_key", 0) == 0, instance
        resources.append(resource)
    outputs = set(re.findall(r'^output "(\w+)"', BEFORE_MODULES, re.M))
    kept = {name: value for name, value in state["outputs"].items() if name in outputs}
    return {**state, "serial": state["serial"] + 1, "resources": resources, "outputs": kept}


def resource_changes(
    workdir: TerraformDir, aws: LocalAws, variables: list[str] = VARIABLES
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    workdir.init()
    workdir.run("plan", "-out=check.plan", "-input=false", "-no-color", *variables, env=aws.env, timeout=600)
    plan = json.loads(workdir.run("show", "-json", "check.plan", env=aws.env).stdout)
    return list(plan["resource_changes"]), dict(plan["output_changes"])


def changed_settings(change: dict[str, Any]) -> set[str]:
    """The settings a planned update changes, as dotted paths to the values that differ."""

    def leaves(value: Any, path: str) -> dict[str, Any]:
        if isinstance(value, dict):
            return {k: v for key, item in value.items() for k, v in leaves(item, f"{path}.{key}".lstrip(".")).items()}
        if isinstance(value, list) and len(value) == 1:
            return leaves(value[0], path)
        return {path: value}

    before, after = leaves(change["change"]["before"], ""), leaves(change["change"]["after"], "")
    unknown = leaves(change["change"].get("after_unknown") or {}, "")
    return {
        path for path in before.keys() | after.keys() if before.get(path) != after.get(path) and not unknown.get(path)
    }


def test_a_deployment_made_before_the_module_is_carried_over_by_the_moved_blocks(deployment: Any) -> None:
    """The deployment's state, rebuilt as the root before modules/responder had it, is what that root plans no change
    on; today's root, over that state, moves every resource and changes none."""
    aws, workdir, _ = deployment
    before = TerraformDir()
    try:
        for name in ("main.tf", "variables.tf", "outputs.tf"):
            (before.path / name).unlink()
        (before.path / "main.tf").write_text(BEFORE_MODULES)
        state = json.loads((workdir.path / "terraform.tfstate").read_text())
        converted = as_before_modules(state)
        (before.path / "terraform.tfstate").write_text(json.dumps(converted))

        changes, _ = resource_changes(before, aws)
        # What that root would undo of the product since: its default rules (no approvals), identity containment's
        # settings and IAM actions, the evidence bucket, its event pattern (no group findings) and its sweep interval.
        identity = {"CONTAIN_IDENTITY", "CREDENTIAL_REVOCATION", "DISABLE_INSTANCE_METADATA", "PROTECTED_ROLE_NAMES"}
        since = {"RESPONSE_RULES", "RESPONDER_ROLE_NAME", "EVIDENCE_BUCKET", *identity}
        assert {c["address"]: changed_settings(c) for c in changes if c["change"]["actions"] != ["no-op"]} == {
            "aws_lambda_function.this": {f"environment.variables.{name}" for name in since},
            "aws_iam_role_policy.this": {"policy"},
            "aws_cloudwatch_event_rule.this": {"event_pattern"},
            "aws_cloudwatch_event_rule.sweep": {"schedule_expression"},
            "aws_cloudwatch_event_target.sweep": {"retry_policy.maximum_event_age_in_seconds"},
        }

        for name in ("main.tf", "variables.tf", "outputs.tf"):
            (before.path / name).write_text((ROOT / name).read_text())
        changes, outputs = resource_changes(before, aws)
    finally:
        before.remove()

    # Today's root moves every resource and changes none; it creates what the module added since: the evidence bucket.
    created = {c["address"] for c in changes if c["change"]["actions"] == ["create"]}
    assert created and all(address.startswith("module.responder.aws_s3_bucket") for address in created), created
    changes = [c for c in changes if c["address"] not in created]
    assert [(c["address"], c["change"]["actions"]) for c in changes if c["change"]["actions"] != ["no-op"]] == []
    moved = {c["previous_address"]: c["address"] for c in changes if "previous_address" in c}
    assert moved["aws_lambda_function.this"] == "module.responder.aws_lambda_function.this"
    assert moved["aws_kms_key.this"] == "module.responder.aws_kms_key.this[0]"
    instances = sum(len(r["instances"]) for r in converted["resources"] if r["mode"] == "managed")
    assert len(moved) == len(changes) == instances, "every resource moves"
    # The outputs the module adds appear; every other output is the same.
    assert {name for name, change in outputs.items() if change["actions"] != ["no-op"]} == NEW_OUTPUTS


def test_a_second_plan_changes_nothing_and_destroy_leaves_nothing(deployment: Any) -> None:
    aws, workdir, outputs = deployment
    plan = workdir.run("plan", "-detailed-exitcode", "-input=false", "-no-color", *VARIABLES, env=aws.env, check=False)
    assert plan.returncode == 0, plan.stdout[-4000:]

    bucket = outputs["evidence_bucket_name"]
    s3 = aws.client("s3")
    versions = s3.list_object_versions(Bucket=bucket)["Versions"]
    assert versions, "the containments above stored their evidence"
    with pytest.raises(ClientError):  # the bucket policy refuses every delete
        s3.delete_object(Bucket=bucket, Key=versions[0]["Key"], VersionId=versions[0]["VersionId"])
    # The evidence outlives the deployment until a person removes it: the policy first, then each locked version.
    s3.delete_bucket_policy(Bucket=bucket)
    for version in versions:
        s3.delete_object(
            Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"], BypassGovernanceRetention=True
        )

    workdir.run("destroy", "-auto-approve", "-input=false", "-no-color", *VARIABLES, env=aws.env, timeout=600)

    assert aws.client("lambda").list_functions()["Functions"] == []
    assert aws.client("dynamodb").list_tables()["TableNames"] == []
    assert aws.client("events").list_rules()["Rules"] == []
    assert [q for q in aws.client("sqs").list_queues().get("QueueUrls", []) if "guardduty-responder" in q] == []
    assert aws.client("sns").list_topics()["Topics"] == []
    assert [r for r in aws.client("iam").list_roles()["Roles"] if r["RoleName"].startswith("guardduty-responder")] == []
    assert aws.client("cloudwatch").describe_alarms()["MetricAlarms"] == []
    assert aws.client("logs").describe_log_groups()["logGroups"] == []
    assert bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}
    state = json.loads(workdir.run("show", "-json", env=aws.env).stdout)
    assert not state.get("values", {}).get("root_module", {}).get("resources")
