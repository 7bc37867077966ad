"""`guardduty-responder doctor` (README, "Command line"): every check passes on a ready deployment, and each fault
fails (or warns) the check that finds it, naming the remedy.

The ready deployment is built in moto as Terraform builds it: the function (an archive it never runs), its
findings rule and sweep schedule with their targets and invoke permissions, the ledger, the topic with a confirmed
subscription, the Jira secret, an Object Lock evidence bucket, the containment groups of every VPC, and a member
account with its role and GuardDuty membership (the GuardDuty stand-in). moto has no GetEbsDefaultKmsKeyId: the
test that needs it answers it from what moto's ModifyEbsDefaultKmsKeyId stored.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto.core.responses import ActionResult
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.responses.elastic_block_store import ElasticBlockStore
from moto.ec2.responses.security_groups import SecurityGroups
from moto.ec2.responses.settings import Settings as EbsSettings
from moto.iam.responses import IamResponse

from guardduty_responder.isolation import GroupDirectory
from guardduty_responder.ledger import Ledger
from guardduty_responder_tools import cli, doctor
from guardduty_responder_tools.embedded import create_network
from test_accounts import EXTERNAL_ID, MEMBER, ROLE_NAME, admin_session, create_member_role

from conftest import ACCOUNT, REGION, TABLE, Stack

PREFIX = "guardduty-responder"
BUCKET = "guardduty-responder-doctor-evidence"
FUNCTION_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
# As modules/responder writes it, cut to what doctor reads.
FINDINGS_PATTERN = {
    "source": ["aws.guardduty"],
    "detail-type": ["GuardDuty Finding"],
    "detail": {"severity": [{"numeric": [">=", 4]}], "resource": {"resourceType": ["Instance"]}},
}
EVERY_CHECK = {
    "Jira: secret and deployment",
    "Jira: search",
    "Jira: issue type Task",
    "notifications",
    "evidence bucket",
    "member role",
    "function",
    "findings rule",
    "sweep schedule",
    "ledger",
    "GuardDuty",
    "GuardDuty member",
    "containment groups",
    "EBS default encryption",
}


def archive() -> bytes:
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as zipped:
        zipped.writestr("guardduty_responder/handler.py", "def lambda_handler(event, context):\n    return {}\n")
    return data.getvalue()


def prepare_groups(ec2: Any, account: str) -> None:
    """The containment groups of every VPC of the account, recorded in the home ledger (as `prepare` does)."""
    directory = GroupDirectory(ec2, Ledger(boto3.client("dynamodb", region_name=REGION), TABLE, 30), account)
    for vpc in ec2.describe_vpcs()["Vpcs"]:
        directory.groups_for(vpc["VpcId"])


@dataclass
class Deployment:
    """The ready deployment's handles a fault needs."""

    stack: Stack
    lam: Any
    events: Any
    s3: Any
    member: boto3.Session


@pytest.fixture
def ready(stack: Stack) -> Deployment:
    iam, lam = boto3.client("iam", region_name=REGION), boto3.client("lambda", region_name=REGION)
    events = boto3.client("events", region_name=REGION)
    role = iam.create_role(RoleName=f"{PREFIX}-{REGION}", AssumeRolePolicyDocument=json.dumps(FUNCTION_TRUST))
    function_arn = lam.create_function(
        FunctionName=PREFIX,
        Runtime="python3.13",
        Role=role["Role"]["Arn"],
        Handler="guardduty_responder.handler.lambda_handler",
        Code={"ZipFile": archive()},
    )["FunctionArn"]
    for name, schedule, statement in (
        (f"{PREFIX}-findings", {"EventPattern": json.dumps(FINDINGS_PATTERN)}, "AllowGuardDutyFindingRule"),
        (f"{PREFIX}-sweep", {"ScheduleExpression": "rate(1 minute)"}, "AllowSweepSchedule"),
    ):
        rule_arn = events.put_rule(Name=name, **schedule)["RuleArn"]
        events.put_targets(Rule=name, Targets=[{"Id": "responder", "Arn": function_arn}])
        lam.add_permission(
            FunctionName=PREFIX,
            StatementId=statement,
            Action="lambda:InvokeFunction",
            Principal="events.amazonaws.com",
            SourceArn=rule_arn,
        )
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(
        Bucket=BUCKET,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 365}},
        },
    )
    member = admin_session(MEMBER)
    create_member_role(member.client("iam"))
    create_network(member.client("ec2"), REGION)
    stack.guardduty.members[MEMBER] = "Enabled"
    prepare_groups(stack.ec2, ACCOUNT)
    prepare_groups(member.client("ec2"), MEMBER)
    stack.configure(MEMBER_ROLE_NAME=ROLE_NAME, MEMBER_ROLE_EXTERNAL_ID=EXTERNAL_ID, EVIDENCE_BUCKET=BUCKET)
    return Deployment(stack, lam, events, s3, member)


def run_doctor(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, list[dict[str, str]]]:
    code = cli.main(["--output", "json", "doctor", "--account", MEMBER, *extra])
    return code, json.loads(capsys.readouterr().out)


def test_a_ready_deployment_passes_every_check(ready: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    code, checks = run_doctor(capsys)

    assert [check for check in checks if check["result"] != "PASS"] == []
    assert code == cli.EXIT_OK
    assert {check["check"] for check in checks} >= EVERY_CHECK
    where = {(check["check"], check["account"]) for check in checks}
    for each_account in ("member role", "containment groups", "EBS default encryption", "GuardDuty member"):
        assert (each_account, MEMBER) in where, each_account
    assert ("containment groups", ACCOUNT) in where
    assert all(set(check) == {"check", "account", "region", "result", "detail"} for check in checks)
    probes = ready.s3.list_objects_v2(Bucket=BUCKET, Prefix="doctor/")["Contents"]
    assert len(probes) == 1, "one small write probe, and nothing else changed"


def test_the_table_shows_each_check_and_the_count(ready: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["doctor", "--account", MEMBER]) == cli.EXIT_OK

    printed = capsys.readouterr().out
    assert "| member role" in printed and "assumed arn:aws:iam::210987654321:role/" in printed
    assert printed.rstrip().endswith("PASS, 0 WARN, 0 FAIL")


def delete_member_role(ready: Deployment) -> None:
    ready.member.client("iam").delete_role(RoleName=ROLE_NAME)


def trust_another_role(ready: Deployment) -> None:
    delete_member_role(ready)
    create_member_role(ready.member.client("iam"), trusted=f"arn:aws:iam::{ACCOUNT}:role/someone-else")


def delete_member_role_as_iam_answers(ready: Deployment, monkeypatch: pytest.MonkeyPatch) -> None:
    """The member role deleted where doctor may not read it (no iam:GetRole): IAM then refuses what the credentials
    issued for it ask (moto, which neither refuses AssumeRole nor evaluates the role, is made to)."""
    delete_member_role(ready)
    for responses, action in ((IamResponse, "get_role"), (SecurityGroups, "describe_security_groups")):
        answer = getattr(responses, action)

        def refuse_the_member(self: Any, answer: Any = answer) -> Any:
            if self.current_account == MEMBER:
                raise EC2ClientError("UnauthorizedOperation", "You are not authorized to perform this operation.")
            return answer(self)

        monkeypatch.setattr(responses, action, refuse_the_member)


def throttle_function(ready: Deployment) -> None:
    ready.lam.put_function_concurrency(FunctionName=PREFIX, ReservedConcurrentExecutions=0)


def forbid_member_group_creation(ready: Deployment, monkeypatch: pytest.MonkeyPatch) -> None:
    """A VPC of the member account without groups, and the member role refused CreateSecurityGroup (as IAM would)."""
    create_network(ready.member.client("ec2"), REGION)

    def refuse(self: Any) -> Any:
        raise EC2ClientError("UnauthorizedOperation", "You are not authorized to perform this operation.")

    monkeypatch.setattr(SecurityGroups, "create_security_group", refuse)


def disable_the_default_ebs_key(ready: Deployment, monkeypatch: pytest.MonkeyPatch) -> None:
    ec2, kms = ready.stack.ec2, boto3.client("kms", region_name=REGION)
    key_id = kms.create_key(Description="ebs default")["KeyMetadata"]["KeyId"]
    ec2.enable_ebs_encryption_by_default()
    ec2.modify_ebs_default_kms_key_id(KmsKeyId=key_id)
    kms.disable_key(KeyId=key_id)

    def answer(self: Any) -> ActionResult:
        return ActionResult({"KmsKeyId": self.ec2_backend.default_kms_key_id})

    monkeypatch.setattr(ElasticBlockStore, "get_ebs_default_kms_key_id", answer, raising=False)


def forbid_member_ebs_reads(ready: Deployment, monkeypatch: pytest.MonkeyPatch) -> None:
    """The member role without ec2:GetEbsEncryptionByDefault, as modules/member-role grants it today."""
    answer = EbsSettings.get_ebs_encryption_by_default

    def refuse_the_member(self: Any) -> Any:
        if self.current_account == MEMBER:
            raise EC2ClientError("UnauthorizedOperation", "You are not authorized to perform this operation.")
        return answer(self)

    monkeypatch.setattr(EbsSettings, "get_ebs_encryption_by_default", refuse_the_member)


def delete_sweep_schedule(ready: Deployment) -> None:
    ready.events.remove_targets(Rule=f"{PREFIX}-sweep", Ids=["responder"])
    ready.events.delete_rule(Name=f"{PREFIX}-sweep")


def delete_ledger(ready: Deployment) -> None:
    ready.stack.dynamodb.delete_table(TableName=TABLE)


def add_vpc(ready: Deployment) -> None:
    create_network(ready.stack.ec2, REGION)


def unsubscribe_everyone(ready: Deployment) -> None:
    sns = ready.stack.sns
    for subscription in sns.list_subscriptions_by_topic(TopicArn=ready.stack.topic_arn)["Subscriptions"]:
        sns.unsubscribe(SubscriptionArn=subscription["SubscriptionArn"])


def bucket_encrypted_with_another_key(ready: Deployment) -> None:
    kms = boto3.client("kms", region_name=REGION)
    own, other = (kms.create_key(Description=name)["KeyMetadata"]["Arn"] for name in ("deployment", "other"))
    # The function's key, as Terraform sets it (moto's UpdateFunctionConfiguration does not keep KMSKeyArn).
    from moto.awslambda.models import lambda_backends

    lambda_backends[ACCOUNT][REGION].get_function(PREFIX).kms_key_arn = own
    ready.s3.put_bucket_encryption(
        Bucket=BUCKET,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": other}}]
        },
    )


def bucket_without(ready: Deployment, *, lock: bool) -> None:
    ready.s3.create_bucket(Bucket="evidence-elsewhere", ObjectLockEnabledForBucket=lock)
    ready.stack.configure(EVIDENCE_BUCKET="evidence-elsewhere")


Fault = Callable[[Deployment, pytest.MonkeyPatch], None]
FAULTS: list[tuple[str, Fault, str, str, str, str]] = [
    (
        "member role deleted",
        lambda ready, _: delete_member_role(ready),
        "member role",
        MEMBER,
        "FAIL",
        f"arn:aws:iam::{MEMBER}:role/{ROLE_NAME} does not exist (deleted?): apply modules/member-role in {MEMBER}",
    ),
    (
        "member role trusting another deployment's role",
        lambda ready, _: trust_another_role(ready),
        "member role",
        MEMBER,
        "FAIL",
        f"does not trust the function's role arn:aws:iam::{ACCOUNT}:role/{PREFIX}-{REGION}: the first containment in "
        f"{MEMBER} fails. Add it to responder_role_arns of modules/member-role in {MEMBER}",
    ),
    (
        "member role deleted, and not readable",
        delete_member_role_as_iam_answers,
        "member role",
        MEMBER,
        "FAIL",
        f"arn:aws:iam::{MEMBER}:role/{ROLE_NAME} was assumed, but its credentials are refused (UnauthorizedOperation): "
        f"deleted, or its policy gone: apply modules/member-role in {MEMBER}",
    ),
    (
        "member role asks for another external id",
        lambda ready, _: ready.stack.configure(MEMBER_ROLE_EXTERNAL_ID="gd-responder-other"),
        "member role",
        MEMBER,
        "FAIL",
        "set member_role_external_id to the external_id the member role was applied with",
    ),
    (
        "no member role configured",
        lambda ready, _: ready.stack.configure(MEMBER_ROLE_NAME=""),
        "member role",
        MEMBER,
        "FAIL",
        "set member_role_name and member_role_external_id",
    ),
    (
        "function deleted",
        lambda ready, _: ready.lam.delete_function(FunctionName=PREFIX),
        "function",
        ACCOUNT,
        "FAIL",
        "deploy the responder there (`terraform apply` in us-east-1)",
    ),
    (
        "function throttled",
        lambda ready, _: throttle_function(ready),
        "function",
        ACCOUNT,
        "FAIL",
        "`aws lambda delete-function-concurrency --function-name guardduty-responder --region us-east-1`",
    ),
    (
        "findings rule disabled",
        lambda ready, _: ready.events.disable_rule(Name=f"{PREFIX}-findings"),
        "findings rule",
        ACCOUNT,
        "FAIL",
        "`aws events enable-rule --name guardduty-responder-findings --region us-east-1`",
    ),
    (
        "findings rule matching something else",
        lambda ready, _: ready.events.put_rule(
            Name=f"{PREFIX}-findings", EventPattern=json.dumps({"source": ["aws.securityhub"]})
        ),
        "findings rule",
        ACCOUNT,
        "FAIL",
        "does not match source aws.guardduty: `terraform apply`",
    ),
    (
        "findings rule without its target",
        lambda ready, _: ready.events.remove_targets(Rule=f"{PREFIX}-findings", Ids=["responder"]),
        "findings rule",
        ACCOUNT,
        "FAIL",
        "does not target arn:aws:lambda:us-east-1:123456789012:function:guardduty-responder: `terraform apply`",
    ),
    (
        "findings rule not allowed to invoke",
        lambda ready, _: ready.lam.remove_permission(FunctionName=PREFIX, StatementId="AllowGuardDutyFindingRule"),
        "findings rule",
        ACCOUNT,
        "FAIL",
        "does not let guardduty-responder-findings invoke it",
    ),
    (
        "sweep schedule deleted",
        lambda ready, _: delete_sweep_schedule(ready),
        "sweep schedule",
        ACCOUNT,
        "FAIL",
        "no EventBridge rule guardduty-responder-sweep in us-east-1: `terraform apply` there",
    ),
    (
        "ledger deleted",
        lambda ready, _: delete_ledger(ready),
        "ledger",
        ACCOUNT,
        "FAIL",
        f"no table {TABLE} in us-east-1: `terraform apply` there, or export RESPONDER_TABLE",
    ),
    (
        "GuardDuty disabled",
        lambda ready, _: setattr(ready.stack.guardduty, "status", "DISABLED"),
        "GuardDuty",
        ACCOUNT,
        "FAIL",
        "`aws guardduty update-detector --detector-id 5cc4f1a9e2b84d7f9a3e6b1d8c2f0a47 --enable --region us-east-1`",
    ),
    (
        "no GuardDuty detector",
        lambda ready, _: setattr(ready.stack.guardduty, "detector_id", ""),
        "GuardDuty",
        ACCOUNT,
        "FAIL",
        "GuardDuty is not enabled in us-east-1: no finding is raised. Enable it (`aws guardduty create-detector",
    ),
    (
        "member left GuardDuty",
        lambda ready, _: ready.stack.guardduty.members.update({MEMBER: "Removed"}),
        "GuardDuty member",
        MEMBER,
        "FAIL",
        "a member in state Removed: its findings never reach the responder. Enable it as a GuardDuty member",
    ),
    (
        "a new VPC without groups",
        lambda ready, _: add_vpc(ready),
        "containment groups",
        ACCOUNT,
        "WARN",
        "1 of 3 VPC(s) lack their containment groups (vpc-",
    ),
    (
        "member role may not create groups",
        forbid_member_group_creation,
        "containment groups",
        MEMBER,
        "FAIL",
        "the member role may not create them (UnauthorizedOperation): the first containment there fails. Apply "
        "modules/member-role",
    ),
    (
        "EBS default key disabled",
        disable_the_default_ebs_key,
        "EBS default encryption",
        ACCOUNT,
        "FAIL",
        "which is Disabled: new volumes and their snapshots fail. `aws kms enable-key --key-id",
    ),
    (
        "member role may not read the EBS setting",
        forbid_member_ebs_reads,
        "EBS default encryption",
        MEMBER,
        "WARN",
        f"not checked: the member role arn:aws:iam::{MEMBER}:role/{ROLE_NAME} may not read it (UnauthorizedOperation); "
        "grant ec2:GetEbsEncryptionByDefault, ec2:GetEbsDefaultKmsKeyId and kms:DescribeKey",
    ),
    (
        "Jira project without the issue type",
        lambda ready, _: setattr(ready.stack.jira.projects["SEC"], "issue_types", {"Bug": "10004"}),
        "Jira: issue type Task",
        ACCOUNT,
        "FAIL",
        "Task",
    ),
    (
        "nobody subscribed",
        lambda ready, _: unsubscribe_everyone(ready),
        "notifications",
        ACCOUNT,
        "FAIL",
        "no subscription: nobody is told of an isolation. Set notification_emails",
    ),
    (
        "evidence bucket encrypted with a key the function may not use",
        lambda ready, _: bucket_encrypted_with_another_key(ready),
        "evidence bucket",
        ACCOUNT,
        "WARN",
        "its evidence writes are refused. Encrypt the bucket with the deployment's key",
    ),
    (
        "evidence bucket missing",
        lambda ready, _: ready.stack.configure(EVIDENCE_BUCKET="no-such-evidence-bucket"),
        "evidence bucket",
        ACCOUNT,
        "FAIL",
        "bucket no-such-evidence-bucket does not exist: `terraform apply`",
    ),
    (
        "evidence bucket without Object Lock",
        lambda ready, _: bucket_without(ready, lock=False),
        "evidence bucket",
        ACCOUNT,
        "FAIL",
        "Object Lock is not enabled on evidence-elsewhere: its evidence can be deleted. Turn versioning on, then "
        "`aws s3api put-object-lock-configuration --bucket evidence-elsewhere",
    ),
    (
        "evidence bucket without default retention",
        lambda ready, _: bucket_without(ready, lock=True),
        "evidence bucket",
        ACCOUNT,
        "FAIL",
        "evidence-elsewhere has no default retention: evidence is written unlocked. `aws s3api "
        "put-object-lock-configuration",
    ),
    (
        "no evidence bucket",
        lambda ready, _: ready.stack.configure(EVIDENCE_BUCKET=""),
        "evidence bucket",
        ACCOUNT,
        "WARN",
        "EVIDENCE_BUCKET is not set: evidence is kept only in the snapshots and the ledger",
    ),
]


@pytest.mark.parametrize(
    ("inject", "name", "account", "result", "remedy"),
    [fault[1:] for fault in FAULTS],
    ids=[fault[0] for fault in FAULTS],
)
def test_each_fault_fails_or_warns_its_check_naming_the_remedy(
    ready: Deployment,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    inject: Fault,
    name: str,
    account: str,
    result: str,
    remedy: str,
) -> None:
    inject(ready, monkeypatch)

    code, checks = run_doctor(capsys)

    found = [check for check in checks if check["check"] == name and check["account"] == account]
    assert found and found[0]["result"] == result, found
    assert remedy in found[0]["detail"]
    assert code == (cli.EXIT_FAILED if result == "FAIL" else cli.EXIT_OK)
    if result == "WARN":
        assert [check for check in checks if check["result"] != "PASS"] == found


def test_a_region_without_the_deployment_fails_there_and_names_it(
    ready: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    code, checks = run_doctor(capsys, "--regions", REGION, "--regions", "eu-west-1")

    assert code == cli.EXIT_FAILED
    failed = {(check["check"], check["region"]) for check in checks if check["result"] == "FAIL"}
    assert {("function", "eu-west-1"), ("findings rule", "eu-west-1"), ("ledger", "eu-west-1")} <= failed
    assert not [check for check in checks if check["region"] == REGION and check["result"] != "PASS"]


def test_a_subscription_awaiting_confirmation_tells_no_one() -> None:
    # moto confirms every subscription at once; AWS answers PendingConfirmation until the email is confirmed.
    pending = {"SubscriptionArn": "PendingConfirmation", "Protocol": "email", "Endpoint": "soc@example.com"}
    confirmed = {"SubscriptionArn": "arn:aws:sns:us-east-1:123456789012:t:1", "Protocol": "email", "Endpoint": "x"}

    assert doctor.subscription_outcome([pending])[0] == "FAIL"
    assert "soc@example.com" in doctor.subscription_outcome([pending])[1]
    assert "Confirm subscription" in doctor.subscription_outcome([pending])[1]
    assert doctor.subscription_outcome([confirmed, pending])[0] == "WARN"
    assert doctor.subscription_outcome([confirmed]) == ("PASS", "1 confirmed subscription(s) (email)")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--local", "doctor"], "--local does not apply to doctor"),
        (["doctor", "--account", "12345"], "not a 12-digit account id: 12345"),
    ],
    ids=["local", "bad account"],
)
def test_doctor_refuses_what_it_cannot_check(
    stack: Stack, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == cli.EXIT_USAGE
    assert message in capsys.readouterr().err
