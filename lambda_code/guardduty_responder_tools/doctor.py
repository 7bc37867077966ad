"""`guardduty-responder doctor`: is the deployment ready for its first finding?

For the home account and each member account named, in each region named, it checks what a finding
needs on its way: the function, its findings rule and its sweep schedule; GuardDuty enabled, and a
member's findings reaching the administrator; the ledger; the member role assumable with the external
id; the containment groups of every VPC; the EBS default encryption key. Once for the deployment: the
Jira project, the topic's confirmed subscriptions and the evidence bucket. Each check is PASS, WARN or
FAIL with the remedy; nothing is changed but one small probe object in the evidence bucket.

AWS libraries are imported when the command runs, not when the command line builds its parser.
"""

from __future__ import annotations

import argparse
import datetime
import fnmatch
import functools
import json
import os
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

PASS, WARN, FAIL = "PASS", "WARN", "FAIL"
DEFAULT_NAME_PREFIX = "guardduty-responder"
FINDING_SOURCE = "aws.guardduty"
FINDING_DETAIL_TYPE = "GuardDuty Finding"
PROBE_PREFIX = "doctor/"
# The region shown for what has none: IAM roles, and the evidence bucket (S3's names are global).
GLOBAL = "-"
_ACCOUNT_ID = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
# AWS understood the request and refused it to these credentials.
_REFUSED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError"})
# Subscriptions that deliver nothing yet.
_UNCONFIRMED = frozenset({"PendingConfirmation", "Deleted"})

Command = Callable[[str, str, str, Callable[[argparse.Namespace], int]], argparse.ArgumentParser]
Outcome = tuple[str, str]


@dataclass(frozen=True)
class Check:
    """One thing checked, where, its result (PASS, WARN, FAIL) and what was found or what to do."""

    check: str
    account: str
    region: str
    result: str
    detail: str


@dataclass(frozen=True)
class Place:
    """An account the responder acts in, through the credentials that act there."""

    account_id: str
    session: Any
    # Who those credentials are, for the remedies: you at home, the member role elsewhere.
    who: str
    member: bool


@dataclass(frozen=True)
class Deployment:
    """What `doctor` checks: the deployment's settings, names and the places it acts in."""

    session: Any
    settings: Any
    name_prefix: str
    home_account: str
    regions: tuple[str, ...]
    evidence_bucket: str
    _clients: dict[tuple[str, str, int], Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def home_region(self) -> str:
        return str(self.session.region_name)

    def client(self, service: str, region: str, session: Any = None) -> Any:
        """A client of `session` (default: yours) in `region`, with bounded timeouts and retries; made once."""
        from botocore.config import Config

        session = session or self.session
        key = (service, region, id(session))
        if key not in self._clients:
            config = Config(connect_timeout=5, read_timeout=15, retries={"max_attempts": 3, "mode": "standard"})
            self._clients[key] = session.client(service, region_name=region, config=config)
        return self._clients[key]

    def partition(self, region: str) -> str:
        return str(self.session.get_partition_for_region(region))

    def function_arn(self, region: str) -> str:
        return f"arn:{self.partition(region)}:lambda:{region}:{self.home_account}:function:{self.name_prefix}"


# -- the command -------------------------------------------------------------------------------------------------


def register(command: Command) -> None:
    """Add `doctor` to the command line through its `command(name, summary, description, run)` helper."""
    doctor = command(
        "doctor",
        "check that the deployment is ready for its first finding: PASS, WARN or FAIL with the remedy",
        "For the home account and each --account, in each region (--regions, else --region or the\n"
        "profile's), check what a finding needs: the function deployed and not throttled, its findings\n"
        "rule (enabled, matching GuardDuty findings, targeting the function, allowed to invoke it) and its\n"
        "sweep schedule; GuardDuty's detector enabled and a member account's findings reaching it; the\n"
        "ledger (RESPONDER_TABLE); the member role assumable with the external id; the containment groups\n"
        "of every VPC (WARN when they are still to create); the EBS default encryption key. Once: the Jira\n"
        "project (as check-jira), confirmed subscriptions on the topic, and the evidence bucket\n"
        "(EVIDENCE_BUCKET: Object Lock with a default retention, writable). Each check is PASS, WARN or\n"
        "FAIL with the remedy; exit 1 on any FAIL. It changes nothing but one small probe object under\n"
        f"{PROBE_PREFIX} in the evidence bucket, kept as long as the bucket's retention.\n\n"
        "Member accounts are reached through the member role, assumed with your credentials: run it as a\n"
        "role the member role trusts. --local does not apply: it checks a deployment.",
        run,
    )
    doctor.add_argument(
        "--account",
        action="append",
        metavar="ACCOUNT_ID",
        help="a member account to check through the member role (repeatable; default: the home account only)",
    )
    doctor.add_argument(
        "--regions",
        action="append",
        metavar="NAME",
        help="a region to check (repeatable; default: the one --region or the profile names)",
    )
    doctor.add_argument(
        "--name-prefix",
        default=DEFAULT_NAME_PREFIX,
        metavar="PREFIX",
        help=f"the deployment's name_prefix, naming its function and rules (default: {DEFAULT_NAME_PREFIX})",
    )


def run(args: argparse.Namespace) -> int:
    from . import cli

    if args.local:
        raise cli.UsageError("--local does not apply to doctor: it checks a deployment in an AWS account")
    members = _member_accounts(args.account or [], cli.UsageError)
    session = cli._session(args)
    settings = cli._settings()
    regions = tuple(dict.fromkeys(args.regions or [session.region_name]))
    wrong = [region for region in regions if not _REGION.fullmatch(region)]
    if wrong:
        raise cli.UsageError(f"not a region: {', '.join(wrong)}")
    home = settings.responder_account_id or _caller_account(session, cli.OperationFailed)
    deployment = Deployment(
        session=session,
        settings=settings,
        name_prefix=args.name_prefix,
        home_account=home,
        regions=regions,
        evidence_bucket=os.environ.get("EVIDENCE_BUCKET", "").strip(),
    )
    checks = run_checks(deployment, [member for member in members if member != home])
    if args.output == "json":
        cli._print_json([asdict(check) for check in checks])
    else:
        print(render(checks))
    return cli.EXIT_FAILED if any(check.result == FAIL for check in checks) else cli.EXIT_OK


def _member_accounts(accounts: Sequence[str], usage_error: type[Exception]) -> list[str]:
    wrong = [account for account in accounts if not _ACCOUNT_ID.fullmatch(account)]
    if wrong:
        raise usage_error(f"not a 12-digit account id: {', '.join(wrong)}")
    return list(dict.fromkeys(accounts))


def _caller_account(session: Any, failed: type[Exception]) -> str:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return str(session.client("sts").get_caller_identity()["Account"])
    except (ClientError, BotoCoreError) as error:
        raise failed(f"asking STS who you are failed: {error}") from error


def render(checks: Sequence[Check]) -> str:
    from .terminal import table

    rows = [[check.check, check.account, check.region, check.result, check.detail] for check in checks]
    counts = ", ".join(f"{sum(check.result == result for check in checks)} {result}" for result in (PASS, WARN, FAIL))
    listed = table(["check", "account", "region", "result", "detail / remedy"], rows, max_widths=[24, 12, 14, 6, 80])
    return f"{listed}\n{counts}"


def run_checks(deployment: Deployment, member_accounts: Sequence[str]) -> list[Check]:
    """Every check, in order: the deployment's own once, then each region's, then each account's there."""
    home = Place(deployment.home_account, deployment.session, "your credentials", member=False)
    checks = [*_jira_checks(deployment), _notifications(deployment), _evidence(deployment)]
    places = [home]
    for account in member_accounts:
        check, place = _member_role(deployment, account)
        checks.append(check)
        if place is not None:
            places.append(place)
    for region in deployment.regions:
        checks += _region_checks(deployment, region, member_accounts)
        for place in places:
            checks += _place_checks(deployment, place, region)
    return checks


def _region_checks(deployment: Deployment, region: str, member_accounts: Sequence[str]) -> list[Check]:
    home = deployment.home_account
    lam, events = deployment.client("lambda", region), deployment.client("events", region)
    function_arn = deployment.function_arn(region)
    findings_rule, sweep_rule = f"{deployment.name_prefix}-findings", f"{deployment.name_prefix}-sweep"
    checks = [
        _guarded("function", home, region, lambda: _function(lam, deployment.name_prefix, region)),
        _guarded(
            "findings rule", home, region, lambda: _rule(events, lam, findings_rule, function_arn, schedule=False)
        ),
        _guarded("sweep schedule", home, region, lambda: _rule(events, lam, sweep_rule, function_arn, schedule=True)),
        _guarded("ledger", home, region, lambda: _ledger(deployment.client("dynamodb", region), deployment, region)),
    ]
    guardduty = deployment.client("guardduty", region)
    detector: list[str] = []
    checks.append(_guarded("GuardDuty", home, region, lambda: _detector(guardduty, deployment, region, detector)))
    for account in member_accounts:
        checks.append(
            _guarded("GuardDuty member", account, region, functools.partial(_member, guardduty, detector, account))
        )
    return checks


def _place_checks(deployment: Deployment, place: Place, region: str) -> list[Check]:
    ec2 = deployment.client("ec2", region, place.session)
    return [
        _guarded("containment groups", place.account_id, region, lambda: _groups(deployment, place, ec2, region)),
        _guarded(
            "EBS default encryption",
            place.account_id,
            region,
            lambda: _ebs_encryption(ec2, deployment.client("kms", region, place.session), place, region),
        ),
    ]


# -- shared pieces -----------------------------------------------------------------------------------------------


def _guarded(name: str, account: str, region: str, check: Callable[[], Outcome]) -> Check:
    """The check's outcome; an AWS refusal of a read is a WARN (not checked), any other AWS error a FAIL."""
    from botocore.exceptions import BotoCoreError, ClientError

    from guardduty_responder.aws_errors import describe_error, error_code
    from guardduty_responder.ledger import LedgerError

    try:
        result, detail = check()
    except LedgerError as error:
        return Check(name, account, region, FAIL, f"{error}: see the ledger check")
    except ClientError as error:
        if error_code(error) in _REFUSED:
            return Check(
                name,
                account,
                region,
                WARN,
                f"not checked: {describe_error(error)} (run doctor with credentials that may read it)",
            )
        return Check(name, account, region, FAIL, f"{describe_error(error)}")
    except BotoCoreError as error:
        return Check(name, account, region, FAIL, f"AWS could not be asked: {describe_error(error)}")
    return Check(name, account, region, result, detail)


def _answer(call: Callable[[], Any], *expected: str) -> tuple[Any, str]:
    """AWS's answer, or None and the error code when AWS answers one of the `expected` errors (others are raised)."""
    from botocore.exceptions import ClientError

    from guardduty_responder.aws_errors import error_code

    try:
        return call(), ""
    except ClientError as error:
        if error_code(error) in expected:
            return None, error_code(error)
        raise


# -- the deployment in a region ----------------------------------------------------------------------------------


def _function(lam: Any, name: str, region: str) -> Outcome:
    found, _ = _answer(lambda: lam.get_function(FunctionName=name), "ResourceNotFoundException")
    if found is None:
        return FAIL, (
            f"no function {name} in {region}: deploy the responder there (`terraform apply` in {region}), or pass "
            "--name-prefix with the deployment's name_prefix"
        )
    configuration = found["Configuration"]
    state, update = configuration.get("State", "Active"), configuration.get("LastUpdateStatus", "Successful")
    if state == "Failed" or update == "Failed":
        reason = configuration.get("StateReason") or configuration.get("LastUpdateStatusReason") or "no reason given"
        return FAIL, f"{name} is {state}, last update {update}: {reason}; fix that and `terraform apply` again"
    reserved = lam.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions")
    if reserved == 0:
        return FAIL, (
            f"{name} is throttled (reserved concurrency 0): no finding runs. `aws lambda delete-function-concurrency "
            f"--function-name {name} --region {region}`, or set reserved_concurrency to null or more than 0 and "
            "`terraform apply`"
        )
    if state != "Active" or update != "Successful":
        return WARN, f"{name} is {state}, last update {update}: run doctor again in a minute"
    return PASS, f"{name}: {configuration.get('Runtime', '')}, Active" + (
        f", reserved concurrency {reserved}" if reserved else ""
    )


def _rule(events: Any, lam: Any, rule_name: str, function_arn: str, *, schedule: bool) -> Outcome:
    region = function_arn.split(":")[3]
    rule, _ = _answer(lambda: events.describe_rule(Name=rule_name), "ResourceNotFoundException")
    if rule is None:
        return FAIL, f"no EventBridge rule {rule_name} in {region}: `terraform apply` there, or pass --name-prefix"
    if rule.get("State") != "ENABLED":
        return FAIL, (
            f"{rule_name} is {rule.get('State')}: `aws events enable-rule --name {rule_name} --region {region}`"
        )
    problem = _schedule_problem(rule) if schedule else _pattern_problem(rule)
    if problem:
        return FAIL, f"{rule_name} {problem}: `terraform apply` puts the deployment's back"
    targets = events.list_targets_by_rule(Rule=rule_name)["Targets"]
    if not any(_is_function(target["Arn"], function_arn) for target in targets):
        return FAIL, f"{rule_name} does not target {function_arn}: `terraform apply` puts its target back"
    if not _may_invoke(lam, function_arn, rule["Arn"]):
        return FAIL, (
            f"{function_arn.rsplit(':', 1)[1]}'s resource policy does not let {rule_name} invoke it "
            "(events.amazonaws.com from the rule's ARN): `terraform apply` puts the permission back"
        )
    what = rule.get("ScheduleExpression") if schedule else f"{FINDING_DETAIL_TYPE} events from {FINDING_SOURCE}"
    return PASS, f"{rule_name}: ENABLED, {what} -> the function"


def _pattern_problem(rule: dict[str, Any]) -> str:
    try:
        pattern = json.loads(rule.get("EventPattern") or "{}")
    except json.JSONDecodeError:
        return "has a pattern that is not JSON"
    if not isinstance(pattern, dict):
        return "has a pattern that is not an object"
    if FINDING_SOURCE not in (pattern.get("source") or []):
        return f"does not match source {FINDING_SOURCE}"
    if FINDING_DETAIL_TYPE not in (pattern.get("detail-type") or []):
        return f'does not match detail-type "{FINDING_DETAIL_TYPE}"'
    return ""


def _schedule_problem(rule: dict[str, Any]) -> str:
    return "" if rule.get("ScheduleExpression") else "has no schedule"


def _is_function(target_arn: str, function_arn: str) -> bool:
    """The function itself, or one of its versions or aliases."""
    return target_arn == function_arn or target_arn.startswith(function_arn + ":")


def _may_invoke(lam: Any, function_arn: str, rule_arn: str) -> bool:
    answer, _ = _answer(lambda: lam.get_policy(FunctionName=function_arn), "ResourceNotFoundException")
    for statement in _statements(answer["Policy"] if answer else None):
        principal = statement.get("Principal")
        service = principal.get("Service") if isinstance(principal, dict) else principal
        source = [value.get("AWS:SourceArn") for value in statement.get("Condition", {}).values()]
        if statement.get("Effect") == "Allow" and service == "events.amazonaws.com" and rule_arn in source:
            return True
    return False


def _ledger(dynamodb: Any, deployment: Deployment, region: str) -> Outcome:
    table_name = deployment.settings.table_name
    answer, _ = _answer(lambda: dynamodb.describe_table(TableName=table_name), "ResourceNotFoundException")
    if answer is None:
        return FAIL, (
            f"no table {table_name} in {region}: `terraform apply` there, or export RESPONDER_TABLE as "
            "`terraform output` names it"
        )
    table = answer["Table"]
    keys = [(key["AttributeName"], key["KeyType"]) for key in table.get("KeySchema", [])]
    if keys != [("pk", "HASH")]:
        return FAIL, f"{table_name} is not the responder's ledger (key {keys}, not pk): check RESPONDER_TABLE"
    if table.get("TableStatus") != "ACTIVE":
        return WARN, f"{table_name} is {table.get('TableStatus')}: run doctor again in a minute"
    return PASS, f"{table_name}: ACTIVE, key pk"


def _detector(guardduty: Any, deployment: Deployment, region: str, found: list[str]) -> Outcome:
    """The region's detector, enabled; its id is kept in `found` for the member checks."""
    configured = deployment.settings.guardduty_detector_id if region == deployment.home_region else ""
    detectors = [configured] if configured else guardduty.list_detectors().get("DetectorIds", [])
    if not detectors:
        return FAIL, (
            f"GuardDuty is not enabled in {region}: no finding is raised. Enable it (`aws guardduty create-detector "
            f"--enable --region {region}`, or the organisation's GuardDuty administrator)"
        )
    if len(detectors) > 1:
        return FAIL, f"{len(detectors)} detectors in {region}: set guardduty_detector_id (Terraform) to the one to use"
    detector = detectors[0]
    answer, code = _answer(lambda: guardduty.get_detector(DetectorId=detector), "BadRequestException")
    if answer is None:
        return FAIL, f"detector {detector} is not this account's ({code}): set guardduty_detector_id to {region}'s"
    found.append(detector)
    if answer.get("Status") != "ENABLED":
        return FAIL, (
            f"detector {detector} is {answer.get('Status')}: no finding is raised. `aws guardduty update-detector "
            f"--detector-id {detector} --enable --region {region}`"
        )
    every = answer.get("FindingPublishingFrequency", "")
    return PASS, f"detector {detector}: ENABLED; new findings go to EventBridge at once, updates every {every}"


def _member(guardduty: Any, detector: list[str], account: str) -> Outcome:
    if not detector:
        return FAIL, "no enabled detector here to receive this account's findings: see the GuardDuty check"
    answer = guardduty.get_members(DetectorId=detector[0], AccountIds=[account])
    status = next((m.get("RelationshipStatus") for m in answer.get("Members", []) if m["AccountId"] == account), None)
    if status == "Enabled":
        return PASS, f"a GuardDuty member of detector {detector[0]}: its findings reach this region's bus"
    state = f"a member in state {status}" if status else "not a member of this administrator's detector"
    return FAIL, (
        f"{state}: its findings never reach the responder. Enable it as a GuardDuty member (the organisation's "
        "auto-enable, or `aws guardduty create-members` and the account accepting)"
    )


# -- each account in a region ------------------------------------------------------------------------------------


def _groups(deployment: Deployment, place: Place, ec2: Any, region: str) -> Outcome:
    """Each VPC's containment groups, recorded in the ledger and present; missing ones are creatable (WARN) or not."""
    from guardduty_responder.ledger import Ledger

    ledger = Ledger(deployment.client("dynamodb", region), deployment.settings.table_name, retention_days=1)
    pages = ec2.get_paginator("describe_security_groups").paginate(
        Filters=[{"Name": "group-name", "Values": ["default"]}]
    )
    # Every VPC has its default group: read this way, the member role needs no ec2:DescribeVpcs.
    vpcs = sorted({group["VpcId"] for page in pages for group in page["SecurityGroups"] if group.get("VpcId")})
    recorded = {vpc: ledger.recorded_groups(place.account_id, vpc) for vpc in vpcs}
    ids = sorted(i for groups in recorded.values() if groups for i in (groups.untracking_id, groups.isolation_id))
    present = _existing_groups(ec2, ids)
    lacking = [
        vpc
        for vpc, groups in recorded.items()
        if groups is None or not {groups.untracking_id, groups.isolation_id} <= present
    ]
    if not lacking:
        return PASS, f"{len(vpcs)} VPC(s), each with its two containment groups recorded and present"
    return _lacking_groups(ec2, place, region, lacking, len(vpcs))


def _existing_groups(ec2: Any, group_ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(group_ids), 200):
        chunk = list(group_ids[start : start + 200])
        response = ec2.describe_security_groups(Filters=[{"Name": "group-id", "Values": chunk}])
        found |= {group["GroupId"] for group in response["SecurityGroups"]}
    return found


def _lacking_groups(ec2: Any, place: Place, region: str, lacking: Sequence[str], total: int) -> Outcome:
    """VPCs without their groups: creating one is tried with DryRun, by the credentials that would create it."""
    _, code = _answer(
        lambda: ec2.create_security_group(
            GroupName="guardduty-responder-doctor", Description="dry run", VpcId=lacking[0], DryRun=True
        ),
        "DryRunOperation",
        *_REFUSED,
    )
    listed = f"{len(lacking)} of {total} VPC(s) lack their containment groups ({', '.join(lacking[:5])}" + (
        ", ...)" if len(lacking) > 5 else ")"
    )
    if place.member and code in _REFUSED:
        return FAIL, (
            f"{listed}, and the member role may not create them ({code}): the first containment there fails. "
            f"Apply modules/member-role in {place.account_id} (it grants ec2:CreateSecurityGroup)"
        )
    if place.member:
        return WARN, f"{listed}: the first containment there creates them first (a few calls more)"
    refused = f"; your credentials may not create them ({code}): run it as a role that may" if code in _REFUSED else ""
    return WARN, f"{listed}: run `guardduty-responder prepare --region {region}`{refused}"


def _ebs_encryption(ec2: Any, kms: Any, place: Place, region: str) -> Outcome:
    setting, code = _answer(ec2.get_ebs_encryption_by_default, *_REFUSED)
    if setting is None:
        return WARN, (
            f"not checked: {place.who} may not read it ({code}); grant ec2:GetEbsEncryptionByDefault, "
            "ec2:GetEbsDefaultKmsKeyId and kms:DescribeKey"
        )
    if not setting.get("EbsEncryptionByDefault"):
        return PASS, "off: each snapshot is encrypted (or not) as its volume is"
    key_id = ec2.get_ebs_default_kms_key_id().get("KmsKeyId") or "alias/aws/ebs"
    answer, code = _answer(lambda: kms.describe_key(KeyId=key_id), "NotFoundException", *_REFUSED)
    if code in _REFUSED:
        return WARN, f"on, with key {key_id}; not checked: {place.who} may not kms:DescribeKey it ({code})"
    if answer is None and key_id.startswith("alias/aws/"):
        return PASS, f"on, with the AWS managed key {key_id} (made on first use)"
    state = answer["KeyMetadata"]["KeyState"] if answer else "missing"
    if state != "Enabled":
        return FAIL, (
            f"on, with key {key_id}, which is {state}: new volumes and their snapshots fail. `aws kms enable-key "
            f"--key-id {key_id}` (or cancel-key-deletion), or `aws ec2 reset-ebs-default-kms-key-id --region {region}`"
        )
    return PASS, f"on, with key {key_id}: Enabled"


# -- the member role ---------------------------------------------------------------------------------------------


def _member_role(deployment: Deployment, account: str) -> tuple[Check, Place | None]:
    settings = deployment.settings
    if not settings.member_role_name:
        detail = (
            "this deployment acts only in its own account: set member_role_name and member_role_external_id "
            f"(Terraform), and apply modules/member-role in {account}"
        )
        return Check("member role", account, GLOBAL, FAIL, detail), None
    partition = deployment.partition(deployment.home_region)
    role_arn = f"arn:{partition}:iam::{account}:role{settings.member_role_path}{settings.member_role_name}"
    session: list[Any] = []
    check = _guarded("member role", account, GLOBAL, lambda: _assume(deployment, role_arn, session))
    if check.result == FAIL or not session:
        return check, None
    return check, Place(account, session[0], f"the member role {role_arn}", member=True)


def _assume(deployment: Deployment, role_arn: str, assumed: list[Any]) -> Outcome:
    """Assume the member role with the external id, then read the role itself: AWS refuses AssumeRole for a role
    that does not exist, and the read tells a deleted role apart where AssumeRole does not check (moto)."""
    import boto3

    settings, account = deployment.settings, role_arn.split(":")[4]
    module = (
        f"apply modules/member-role in {account} (role_name = {settings.member_role_name}, role_path = "
        f"{settings.member_role_path}, external_id = MEMBER_ROLE_EXTERNAL_ID, this deployment's role in "
        "responder_role_arns)"
    )
    sts = deployment.client("sts", deployment.home_region)
    answer, code = _answer(
        lambda: sts.assume_role(
            RoleArn=role_arn, RoleSessionName="guardduty-responder-doctor", ExternalId=settings.member_role_external_id
        ),
        *_REFUSED,
    )
    if answer is None:
        return FAIL, (
            f"assuming {role_arn} with the external id was refused ({code}): the role is missing, does not trust "
            f"your credentials (doctor assumes it as you), or asks for another external id. Remedy: {module}"
        )
    issued = answer["Credentials"]
    session = boto3.Session(
        aws_access_key_id=issued["AccessKeyId"],
        aws_secret_access_key=issued["SecretAccessKey"],
        aws_session_token=issued["SessionToken"],
        region_name=deployment.home_region,
    )
    iam = deployment.client("iam", deployment.home_region, session)
    role, code = _answer(lambda: iam.get_role(RoleName=settings.member_role_name), "NoSuchEntity", *_REFUSED)
    if code == "NoSuchEntity":
        return FAIL, f"{role_arn} does not exist (deleted?): {module}"
    if role is None:
        return _acts_as_the_role(deployment, session, role_arn, module, assumed)
    assumed.append(session)
    trust = role["Role"].get("AssumeRolePolicyDocument")
    if not _asks_for(trust, settings.member_role_external_id):
        return FAIL, (
            f"{role_arn}'s trust policy does not ask for this deployment's external id: set member_role_external_id "
            "to the external_id the member role was applied with, or apply modules/member-role with this one"
        )
    untrusted = [arn for arn in _function_roles(deployment) if not _admits(trust, arn)]
    if untrusted:
        return FAIL, (
            f"{role_arn} does not trust the function's role {', '.join(untrusted)}: the first containment in {account} "
            f"fails. Add it to responder_role_arns of modules/member-role in {account}, and apply"
        )
    return PASS, f"assumed {role_arn} with the external id, which its trust policy asks for"


def _acts_as_the_role(deployment: Deployment, session: Any, role_arn: str, module: str, assumed: list[Any]) -> Outcome:
    """The role's own trust policy cannot be read (the member role is not allowed iam:GetRole): a read the role is
    granted tells whether its credentials act."""
    ec2 = deployment.client("ec2", deployment.home_region, session)
    described, code = _answer(lambda: ec2.describe_security_groups(MaxResults=5), *_REFUSED)
    if described is None:
        refused = f"{role_arn} was assumed, but its credentials are refused ({code}): deleted, or its policy gone"
        return FAIL, f"{refused}: {module}"
    assumed.append(session)
    return PASS, f"assumed {role_arn} with the external id, and it reads the account (its trust policy not read)"


def _statements(policy: Any) -> list[Any]:
    """A policy's statements, as a list, from the document as IAM or Lambda returns it (parsed, JSON or
    URL-encoded JSON); none from a document that cannot be read."""
    from guardduty_responder.identity import policy_document

    statements = (policy_document(policy) or {}).get("Statement", [])
    return list(statements) if isinstance(statements, list) else [statements]


def _listed(value: Any) -> list[Any]:
    """A policy element that is one value or a list of them, as a list."""
    return [value] if isinstance(value, str) else list(value)


def _function_roles(deployment: Deployment) -> list[str]:
    """The role of the deployment's function in each region checked (where it is deployed and readable)."""

    def role_in(region: str) -> str:
        lam = deployment.client("lambda", region)
        found, _ = _answer(
            lambda: lam.get_function_configuration(FunctionName=deployment.name_prefix),
            "ResourceNotFoundException",
            *_REFUSED,
        )
        return str((found or {}).get("Role") or "")

    return [role for role in map(role_in, deployment.regions) if role]


def _admits(trust: Any, role_arn: str) -> bool:
    """Whether an Allow statement of the trust policy names the role, or its account with a PrincipalArn pattern the
    role matches (modules/member-role writes one or the other)."""
    account_root = f"{role_arn.split(':role/')[0]}:root"
    for statement in _statements(trust):
        principal = (statement.get("Principal") or {}).get("AWS", []) if statement.get("Effect") == "Allow" else []
        named = _listed(principal)
        if role_arn in named:
            return True
        condition = statement.get("Condition") or {}
        like = _listed(condition.get("ArnLike", {}).get("aws:PrincipalArn", []))
        unlike = _listed(condition.get("ArnNotLike", {}).get("aws:PrincipalArn", []))
        matched = any(fnmatch.fnmatchcase(role_arn, p) for p in like)
        if account_root in named and matched and not any(fnmatch.fnmatchcase(role_arn, p) for p in unlike):
            return True
    return False


def _asks_for(trust: Any, external_id: str) -> bool:
    """Whether every statement letting a principal assume the role requires this external id."""
    allowing = [statement for statement in _statements(trust) if statement.get("Effect") == "Allow"]
    return bool(allowing) and all(
        s.get("Condition", {}).get("StringEquals", {}).get("sts:ExternalId") == external_id for s in allowing
    )


# -- once for the deployment -------------------------------------------------------------------------------------


def _jira_checks(deployment: Deployment) -> list[Check]:
    """check-jira's checks, each a row."""
    from guardduty_responder.jira import JiraTicketing
    from guardduty_responder.ticketing import PRIORITY_NAMES

    settings = deployment.settings
    region = settings.jira_secret_arn.split(":")[3]
    ticketing = JiraTicketing(
        deployment.client("secretsmanager", region),
        secret_arn=settings.jira_secret_arn,
        project_key=settings.jira_project_key,
        issue_type=settings.jira_issue_type,
        timeout_seconds=settings.jira_timeout_seconds,
    )
    return [
        Check(f"Jira: {check.name}", deployment.home_account, region, PASS if check.ok else FAIL, check.detail)
        for check in ticketing.check_project(PRIORITY_NAMES)
    ]


def _notifications(deployment: Deployment) -> Check:
    topic_arn = deployment.settings.topic_arn
    region = topic_arn.split(":")[3]
    sns = deployment.client("sns", region)
    return _guarded("notifications", deployment.home_account, region, lambda: _subscriptions(sns, topic_arn))


def _subscriptions(sns: Any, topic_arn: str) -> Outcome:
    _, code = _answer(lambda: sns.get_topic_attributes(TopicArn=topic_arn), "NotFound", "NotFoundException")
    if code:
        return (
            FAIL,
            f"no topic {topic_arn}: `terraform apply`, or export RESPONDER_TOPIC_ARN as `terraform output` names it",
        )
    pages = sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn)
    return subscription_outcome([s for page in pages for s in page["Subscriptions"]])


def subscription_outcome(subscriptions: Sequence[dict[str, Any]]) -> Outcome:
    """PASS when someone receives the messages; a subscription awaiting confirmation receives nothing."""
    confirmed = [s for s in subscriptions if s.get("SubscriptionArn") not in _UNCONFIRMED]
    pending = [str(s.get("Endpoint", "?")) for s in subscriptions if s.get("SubscriptionArn") == "PendingConfirmation"]
    confirm = (
        f"{len(pending)} await confirmation ({', '.join(pending[:3])}): open the message from AWS Notifications "
        "and follow Confirm subscription"
    )
    if not confirmed and pending:
        return FAIL, f"no confirmed subscription: nobody is told of an isolation. {confirm}"
    if not confirmed:
        return FAIL, (
            "no subscription: nobody is told of an isolation. Set notification_emails (or notification_subscriptions)"
            " and `terraform apply`, then confirm the email"
        )
    protocols = ", ".join(sorted({str(s.get("Protocol")) for s in confirmed}))
    if pending:
        return WARN, f"{len(confirmed)} confirmed ({protocols}); {confirm}"
    return PASS, f"{len(confirmed)} confirmed subscription(s) ({protocols})"


def _evidence(deployment: Deployment) -> Check:
    bucket = deployment.evidence_bucket
    if not bucket:
        detail = (
            "EVIDENCE_BUCKET is not set: evidence is kept only in the snapshots and the ledger. Export it as the "
            "deployment's evidence bucket (`terraform output`), or give the deployment one"
        )
        return Check("evidence bucket", deployment.home_account, GLOBAL, WARN, detail)
    s3 = deployment.client("s3", deployment.home_region)
    lam = deployment.client("lambda", deployment.home_region)
    check = _guarded("evidence bucket", deployment.home_account, GLOBAL, lambda: _bucket(s3, bucket))
    if check.result != PASS:
        return check
    return _guarded("evidence bucket", deployment.home_account, GLOBAL, lambda: _bucket_key(s3, lam, deployment, check))


def _bucket_key(s3: Any, lam: Any, deployment: Deployment, locked: Check) -> Outcome:
    """The function's role may use its deployment's key only: a bucket encrypting with another refuses its writes."""
    bucket = deployment.evidence_bucket
    rules, _ = _answer(
        lambda: s3.get_bucket_encryption(Bucket=bucket), "ServerSideEncryptionConfigurationNotFoundError"
    )
    defaults = [
        rule.get("ApplyServerSideEncryptionByDefault", {})
        for rule in ((rules or {}).get("ServerSideEncryptionConfiguration") or {}).get("Rules", [])
    ]
    key = next(
        (str(d.get("KMSMasterKeyID", "")) for d in defaults if d.get("SSEAlgorithm", "").startswith("aws:kms")), ""
    )
    if not key:
        return PASS, locked.detail
    function, _ = _answer(lambda: lam.get_function_configuration(FunctionName=deployment.name_prefix), *_REFUSED)
    own = str((function or {}).get("KMSKeyArn", ""))
    if own and key not in (own, own.rsplit("/", 1)[-1]):
        return WARN, (
            f"{bucket} encrypts with {key}, the function's role may use {own} only: its evidence writes are refused. "
            "Encrypt the bucket with the deployment's key (Terraform's kms_key_arn output), or grant the role "
            f"kms:GenerateDataKey on {key}"
        )
    return PASS, locked.detail


def _bucket(s3: Any, bucket: str) -> Outcome:
    lock_command = (
        f"`aws s3api put-object-lock-configuration --bucket {bucket} --object-lock-configuration "
        '\'{"ObjectLockEnabled":"Enabled","Rule":{"DefaultRetention":{"Mode":"GOVERNANCE","Days":365}}}\'`'
    )
    answer, code = _answer(
        lambda: s3.get_object_lock_configuration(Bucket=bucket), "NoSuchBucket", "ObjectLockConfigurationNotFoundError"
    )
    if code == "NoSuchBucket":
        return FAIL, f"bucket {bucket} does not exist: `terraform apply`, or export EVIDENCE_BUCKET as it names it"
    configuration = (answer or {}).get("ObjectLockConfiguration", {})
    if configuration.get("ObjectLockEnabled") != "Enabled":
        return (
            FAIL,
            f"Object Lock is not enabled on {bucket}: its evidence can be deleted. Turn versioning on, then "
            + lock_command,
        )
    retention = configuration.get("Rule", {}).get("DefaultRetention")
    if not retention:
        return FAIL, f"{bucket} has no default retention: evidence is written unlocked. {lock_command}"
    key = f"{PROBE_PREFIX}{datetime.datetime.now(datetime.UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}.txt"
    _, code = _answer(
        lambda: s3.put_object(
            Bucket=bucket, Key=key, Body=b"guardduty-responder doctor: write probe\n", ChecksumAlgorithm="SHA256"
        ),
        *_REFUSED,
    )
    if code:
        return FAIL, (
            f"writing {key} to {bucket} was refused ({code}): doctor writes as you, under {PROBE_PREFIX}; give "
            f"yourself s3:PutObject on {bucket}/{PROBE_PREFIX}* (the function's role has it on {bucket}/incidents/* "
            "only: Terraform's StoreEvidence)"
        )
    kept = f"{retention['Days']} day(s)" if retention.get("Days") else f"{retention.get('Years')} year(s)"
    return PASS, f"{bucket}: Object Lock, {retention.get('Mode')} for {kept} by default; wrote {key}"
