"""Delegated administrator: findings of member accounts are acted on through their member role (README, "Across an AWS Organization")."""

from __future__ import annotations

import datetime
import json
import time
import uuid
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from guardduty_responder import handler
from guardduty_responder.accounts import AccountAccessError
from guardduty_responder.clients import AwsClients
from guardduty_responder.config import ConfigError, Settings
from guardduty_responder.ledger import breaker_key, breaker_window
from guardduty_responder.responder import IncompleteResponseError, Responder
from guardduty_responder_tools.embedded import create_network

from conftest import ACCOUNT, REGION, Network, Stack

MEMBER = "210987654321"
NO_ROLE = "333344445555"
ROLE_NAME = "guardduty-responder-member"
EXTERNAL_ID = "gd-responder-7f3a9c"
RESPONDER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/guardduty-responder-{REGION}"


def admin_session(account_id: str) -> boto3.Session:
    """Credentials in another moto account (moto maps an assumed role's keys to the role's account)."""
    issued = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole", RoleSessionName="test-setup"
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=issued["AccessKeyId"],
        aws_secret_access_key=issued["SecretAccessKey"],
        aws_session_token=issued["SessionToken"],
        region_name=REGION,
    )


def create_member_role(
    iam: Any, *, trusted: str = RESPONDER_ROLE, external_id: str = EXTERNAL_ID, name: str = ROLE_NAME
) -> None:
    """The member role as modules/member-role creates it: trusts only the responder's role, with the external id."""
    iam.create_role(
        RoleName=name,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": [trusted]},
                        "Action": "sts:AssumeRole",
                        "Condition": {"StringEquals": {"sts:ExternalId": external_id}},
                    }
                ],
            }
        ),
    )


def sts_checks_trust(responder: Any, caller: str = RESPONDER_ROLE) -> list[dict[str, Any]]:
    """Make AssumeRole refuse as AWS does when the role is missing or its trust does not match.

    moto's AssumeRole grants any role ARN, existing or not (its source says so); AWS answers
    AccessDenied unless the role exists, trusts the caller and the external id matches. The check
    reads the role from moto's IAM in the target account. Returns the AssumeRole calls seen.
    """
    calls: list[dict[str, Any]] = []

    def check(params: dict[str, Any], **_: Any) -> None:
        calls.append(dict(params))
        account, name = params["RoleArn"].split(":")[4], params["RoleArn"].split("/")[-1]
        refused = ClientError(
            {
                "Error": {
                    "Code": "AccessDenied",
                    "Message": f"User: {caller} is not authorized to perform: sts:AssumeRole on resource: {params['RoleArn']}",
                }
            },
            "AssumeRole",
        )
        try:
            role = admin_session(account).client("iam").get_role(RoleName=name)["Role"]
        except ClientError as error:
            raise refused from error
        trust = role["AssumeRolePolicyDocument"]
        trust = json.loads(trust) if isinstance(trust, str) else trust
        for statement in trust["Statement"]:
            principals = statement["Principal"]["AWS"]
            principals = principals if isinstance(principals, list) else [principals]
            wanted = statement.get("Condition", {}).get("StringEquals", {}).get("sts:ExternalId")
            if caller in principals and wanted == params.get("ExternalId"):
                return
        raise refused

    responder.clients.sts.meta.events.register("before-parameter-build.sts.AssumeRole", check)
    return calls


@pytest.fixture
def member(stack: Stack) -> Network:
    session = admin_session(MEMBER)
    create_member_role(session.client("iam"))
    ec2 = session.client("ec2")
    vpc_id, subnet_id = create_network(ec2, REGION)
    web = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc_id)["GroupId"]
    stack.configure(RESPONDER_ACCOUNT_ID=ACCOUNT, MEMBER_ROLE_NAME=ROLE_NAME, MEMBER_ROLE_EXTERNAL_ID=EXTERNAL_ID)
    return Network(ec2, vpc_id, subnet_id, (web,))


def member_event(
    stack: Stack, fixture: str, instance_id: str, network: Network, account: str = MEMBER, finding_id: str | None = None
) -> dict[str, Any]:
    event = stack.event(fixture, instance_id, ec2=network.ec2, finding_id=finding_id)
    event["account"] = event["detail"]["accountId"] = account
    return event


def test_a_member_account_instance_is_contained_through_the_assumed_role(stack: Stack, member: Network) -> None:
    instance_id = stack.launch(enis=2, network=member)
    responder = handler.get_responder()
    assumed = sts_checks_trust(responder)

    summary = stack.invoke(member_event(stack, "backdoor_cc_dns", instance_id, member))

    assert summary["isolated"] is True
    assert assumed == [
        {
            "RoleArn": f"arn:aws:iam::{MEMBER}:role/{ROLE_NAME}",
            "RoleSessionName": "guardduty-responder",
            "ExternalId": EXTERNAL_ID,
            "DurationSeconds": 3600,
        }
    ]
    # The groups, the moves and the snapshots are in the member account ...
    assert stack.isolated(instance_id, member.ec2)
    assert len(stack.snapshots_of(instance_id, member.ec2)) == 2
    assert stack.describe(instance_id, member.ec2)["Tags"]
    assert stack.responder_groups() == {}
    # ... the record, the issue and the message at home.
    record = stack.record(summary["finding_id"])
    assert record["account_id"] == MEMBER and record["steps"]["contain"]["status"] == "done"
    assert stack.record(f"instance#{instance_id}")["account_id"] == MEMBER
    assert len(stack.jira.issues) == 1
    (message,) = stack.messages()
    assert f"Account {MEMBER}" in message["Message"]


def test_a_second_finding_reuses_the_member_credentials_and_release_works_there(stack: Stack, member: Network) -> None:
    first, second = stack.launch(network=member), stack.launch(network=member)
    before = stack.groups_of(second, member.ec2)
    responder = handler.get_responder()
    assumed = sts_checks_trust(responder)

    stack.invoke(member_event(stack, "tor_client", first, member))
    stack.invoke(member_event(stack, "ssh_bruteforce", second, member))
    released = responder.release(second, released_by="analyst")

    assert len(assumed) == 1  # one assumption per account while the container is warm
    assert released["released"] is True
    assert stack.groups_of(second, member.ec2) == before


def test_a_finding_for_an_account_without_the_role_is_recorded_notified_and_failed(
    stack: Stack, member: Network
) -> None:
    elsewhere = admin_session(NO_ROLE).client("ec2")
    vpc_id, subnet_id = create_network(elsewhere, REGION)
    group = elsewhere.create_security_group(GroupName="web", Description="web", VpcId=vpc_id)["GroupId"]
    instance_id = stack.launch(network=Network(elsewhere, vpc_id, subnet_id, (group,)))
    sts_checks_trust(handler.get_responder())
    event = member_event(
        stack, "backdoor_cc_dns", instance_id, Network(elsewhere, vpc_id, subnet_id, (group,)), NO_ROLE
    )

    # The failed invocation is retried by Lambda, then goes to the failed-findings queue with this error.
    with pytest.raises(IncompleteResponseError) as failure:
        stack.invoke(event)

    reason = f"cannot act in account {NO_ROLE}: assuming arn:aws:iam::{NO_ROLE}:role/{ROLE_NAME} failed: AccessDenied"
    assert reason in str(failure.value)
    record = stack.record(event["detail"]["id"])
    assert record["steps"]["contain"]["status"] == "failed" and reason in record["steps"]["contain"]["error"]
    assert record["account_id"] == NO_ROLE and not record.get("completed")
    (message,) = stack.messages()
    assert "NOT CONTAINED" in message["Subject"] and reason in message["Message"]
    (issue,) = stack.jira.issues.values()
    assert "NOT CONTAINED" in issue["fields"]["summary"]
    assert stack.groups_of(instance_id, elsewhere) == {eni: [group] for eni in stack.groups_of(instance_id, elsewhere)}


def test_a_wrong_external_id_is_refused(stack: Stack, member: Network) -> None:
    stack.configure(MEMBER_ROLE_EXTERNAL_ID="not-the-agreed-id")
    instance_id = stack.launch(network=member)
    sts_checks_trust(handler.get_responder())

    with pytest.raises(IncompleteResponseError, match="AccessDenied"):
        stack.invoke(member_event(stack, "tor_client", instance_id, member))

    assert stack.responder_groups(member.ec2) == {}


def test_without_a_member_role_a_finding_of_another_account_is_not_acted_on(stack: Stack) -> None:
    stack.configure(RESPONDER_ACCOUNT_ID=ACCOUNT)
    instance_id = stack.launch()
    event = stack.event("tor_client", instance_id)
    event["detail"]["accountId"] = MEMBER

    with pytest.raises(
        IncompleteResponseError, match=f"from account {MEMBER}, but this responder acts only in its own account"
    ):
        stack.invoke(event)

    assert stack.responder_groups() == {}
    assert stack.record(event["detail"]["id"])["steps"]["contain"]["status"] == "failed"


def test_a_member_role_that_stops_working_is_reported_and_assumed_again(stack: Stack, member: Network) -> None:
    first, second = stack.launch(network=member), stack.launch(network=member)
    responder = handler.get_responder()
    assumed = sts_checks_trust(responder)
    stack.invoke(member_event(stack, "tor_client", first, member))
    cached = responder.estates.for_account(MEMBER)

    def refuse(**_: Any) -> None:  # the role was narrowed after it was assumed
        raise ClientError(
            {"Error": {"Code": "UnauthorizedOperation", "Message": "not authorized"}}, "DescribeInstances"
        )

    cached.clients.ec2.meta.events.register("before-call.ec2.DescribeInstances", refuse)
    event = member_event(stack, "ssh_bruteforce", second, member)

    with pytest.raises(
        IncompleteResponseError, match=f"cannot act in account {MEMBER} through .*UnauthorizedOperation"
    ):
        stack.invoke(event)
    assert "NOT CONTAINED" in stack.messages()[-1]["Subject"]
    retried = stack.invoke(event)  # the next delivery assumes the role afresh

    assert retried["isolated"] is True and len(assumed) == 2


def test_member_credentials_are_assumed_again_before_they_expire(stack: Stack, member: Network) -> None:
    first, second = stack.launch(network=member), stack.launch(network=member)
    responder = handler.get_responder()
    assumed = sts_checks_trust(responder)

    issued: list[datetime.datetime] = []

    def first_expires_soon(parsed: dict[str, Any], **_: Any) -> None:
        if not issued:  # five minutes left: inside botocore's mandatory refresh window (ten minutes)
            parsed["Credentials"]["Expiration"] = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=5)
        issued.append(parsed["Credentials"]["Expiration"])

    responder.clients.sts.meta.events.register("after-call.sts.AssumeRole", first_expires_soon)

    stack.invoke(member_event(stack, "tor_client", first, member))
    stack.invoke(member_event(stack, "ssh_bruteforce", second, member))

    # The credentials about to expire were replaced through AssumeRole once, then reused.
    assert len(assumed) == 2
    assert stack.isolated(second, member.ec2)


OPERATOR_ROLE = f"arn:aws:iam::{ACCOUNT}:role/incident-responders"


def test_a_person_releases_a_member_instance_through_the_narrow_release_role(stack: Stack, member: Network) -> None:
    instance_id = stack.launch(network=member)
    before = stack.groups_of(instance_id, member.ec2)
    sts_checks_trust(handler.get_responder())
    stack.invoke(member_event(stack, "tor_client", instance_id, member))
    create_member_role(admin_session(MEMBER).client("iam"), trusted=OPERATOR_ROLE, name=f"{ROLE_NAME}-release")
    operator = Responder(stack.settings().for_release(), AwsClients(region=REGION))  # what `release` builds
    assumed = sts_checks_trust(operator, caller=OPERATOR_ROLE)

    released = operator.release(instance_id, released_by="analyst")

    assert released["released"] is True and stack.groups_of(instance_id, member.ec2) == before
    assert [call["RoleArn"] for call in assumed] == [f"arn:aws:iam::{MEMBER}:role/{ROLE_NAME}-release"]


def test_without_a_release_role_a_person_is_refused_clearly(stack: Stack, member: Network) -> None:
    instance_id = stack.launch(network=member)
    sts_checks_trust(handler.get_responder())
    stack.invoke(member_event(stack, "tor_client", instance_id, member))
    operator = Responder(stack.settings().for_release(), AwsClients(region=REGION))
    sts_checks_trust(operator, caller=OPERATOR_ROLE)

    with pytest.raises(
        AccountAccessError, match=f"assuming arn:aws:iam::{MEMBER}:role/{ROLE_NAME}-release failed: AccessDenied"
    ):
        operator.release(instance_id, released_by="analyst")


def test_a_resume_in_an_account_the_responder_can_no_longer_reach_still_files_and_announces(
    stack: Stack, member: Network
) -> None:
    instance_id = stack.launch(network=member)
    event = member_event(stack, "tor_client", instance_id, member)
    responder = handler.get_responder()
    sts_checks_trust(responder)
    failing = {"on": True}

    def refuse_snapshots(**_: Any) -> None:
        if failing["on"]:
            raise ClientError({"Error": {"Code": "RequestLimitExceeded", "Message": "slow down"}}, "CreateSnapshots")

    responder.estates.for_account(MEMBER).clients.ec2.meta.events.register(
        "before-call.ec2.CreateSnapshots", refuse_snapshots
    )
    stack.jira.fail(503, times=10)
    with pytest.raises(IncompleteResponseError):
        stack.invoke(event)
    assert stack.record(event["detail"]["id"])["phase"] == "contained"
    # The member role goes away before the retry, which finds the estate afresh.
    admin_session(MEMBER).client("iam").delete_role(RoleName=ROLE_NAME)
    responder.estates.forget(MEMBER)
    stack.jira.heal()
    stack.messages()

    with pytest.raises(IncompleteResponseError, match="snapshots: AccountAccessError"):
        stack.invoke(event)

    assert len(stack.jira.issues) == 1
    record = stack.record(event["detail"]["id"])
    assert "cannot act in account" in record["steps"]["snapshots"]["error"]
    assert record["steps"]["ticket"]["status"] == "done"


def test_the_breaker_counts_each_account_apart(stack: Stack, member: Network) -> None:
    stack.configure(MAX_ISOLATIONS_PER_HOUR="1")
    at_home, held_at_home = stack.launch(), stack.launch()
    in_member = stack.launch(network=member)

    first = stack.invoke(stack.event("backdoor_cc_dns", at_home, finding_id=uuid.uuid4().hex))
    held = stack.invoke(stack.event("backdoor_cc_dns", held_at_home, finding_id=uuid.uuid4().hex))
    member_summary = stack.invoke(
        member_event(stack, "backdoor_cc_dns", in_member, member, finding_id=uuid.uuid4().hex)
    )

    assert first["isolated"] is True and held["decision"] == "circuit-breaker"
    assert member_summary["isolated"] is True and stack.isolated(in_member, member.ec2)
    window = breaker_window(time.time())
    assert stack.record(breaker_key(MEMBER, window))["findings"] == {member_summary["finding_id"]}
    assert stack.record(breaker_key(ACCOUNT, window))["findings"] == {first["finding_id"]}


def test_a_finding_of_another_account_is_not_acted_on_without_a_member_role(stack: Stack) -> None:
    stack.configure(RESPONDER_ACCOUNT_ID="")  # asked of STS, as outside Terraform
    event = stack.event("backdoor_cc_dns", stack.launch())
    event["account"] = event["detail"]["accountId"] = MEMBER

    with pytest.raises(IncompleteResponseError, match=f"acts only in its own account {ACCOUNT}"):
        stack.invoke(event)


def test_a_member_role_under_a_path_is_assumed_at_its_path(stack: Stack) -> None:
    """modules/member-role's role_path puts the role at role/<path>/<name>: the responder assumes that ARN."""
    session = admin_session(MEMBER)
    session.client("iam").create_role(
        RoleName=ROLE_NAME,
        Path="/security/",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )
    ec2 = session.client("ec2")
    vpc_id, subnet_id = create_network(ec2, REGION)
    web = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc_id)["GroupId"]
    network = Network(ec2, vpc_id, subnet_id, (web,))
    stack.configure(
        RESPONDER_ACCOUNT_ID=ACCOUNT,
        MEMBER_ROLE_NAME=ROLE_NAME,
        MEMBER_ROLE_PATH="/security/",
        MEMBER_ROLE_EXTERNAL_ID=EXTERNAL_ID,
    )
    instance_id = stack.launch(network=network)
    assumed: list[str] = []
    handler.get_responder().clients.sts.meta.events.register(
        "before-parameter-build.sts.AssumeRole", lambda params, **_: assumed.append(params["RoleArn"])
    )

    summary = stack.invoke(member_event(stack, "backdoor_cc_dns", instance_id, network))

    assert assumed == [f"arn:aws:iam::{MEMBER}:role/security/{ROLE_NAME}"]
    assert summary["isolated"] is True


def test_a_member_role_path_iam_would_refuse_is_a_configuration_error(stack: Stack) -> None:
    environment = {**stack.env, "MEMBER_ROLE_NAME": ROLE_NAME, "MEMBER_ROLE_EXTERNAL_ID": EXTERNAL_ID}

    with pytest.raises(ConfigError, match="MEMBER_ROLE_PATH='security' is not an IAM path"):
        Settings.from_environ({**environment, "MEMBER_ROLE_PATH": "security"})
