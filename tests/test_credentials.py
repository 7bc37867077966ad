"""Credential findings: InstanceCredentialExfiltration names an access key; the instance is its session name."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest

from guardduty_responder import handler
from guardduty_responder.credentials import REVOKE_POLICY_NAME
from guardduty_responder.finding import MalformedFindingError, parse_finding
from guardduty_responder.identity import revocation_name

from conftest import REGION, Stack, load_event

ROLE = "analytics-etl-role"


EC2_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def credential_event(instance_id: str, role_name: str = ROLE, role_id: str = "AROAV2N8C5Q1ZEXAMPLE1") -> dict[str, Any]:
    """The finding GuardDuty writes when a session of `role_name` on `instance_id` is used elsewhere."""
    event = load_event("instance_credential_exfiltration")
    details = event["detail"]["resource"]["accessKeyDetails"]
    details["principalId"] = f"{role_id}:{instance_id}"
    details["userName"] = role_name
    return event


def stolen(instance_id: str, role_name: str = ROLE) -> dict[str, Any]:
    """The same, for a role of the embedded AWS (inside a stack): its real unique id in the principal."""
    return credential_event(instance_id, role_name, stack_iam().get_role(RoleName=role_name)["Role"]["RoleId"])


def launch_with_role(stack: Stack, role_name: str = ROLE) -> str:
    iam = stack_iam()
    iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(EC2_TRUST))
    profile = iam.create_instance_profile(InstanceProfileName=role_name)["InstanceProfile"]
    iam.add_role_to_instance_profile(InstanceProfileName=role_name, RoleName=role_name)
    instance_id = stack.launch()
    stack.ec2.associate_iam_instance_profile(IamInstanceProfile={"Arn": profile["Arn"]}, InstanceId=instance_id)
    return instance_id


def stack_iam() -> Any:
    return boto3.client("iam", region_name=REGION)


def associated_profiles(stack: Stack, instance_id: str) -> list[str]:
    associations = stack.ec2.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [instance_id]}]
    )["IamInstanceProfileAssociations"]
    return [a["IamInstanceProfile"]["Arn"] for a in associations if a["State"] == "associated"]


def test_the_instance_is_the_session_name_at_the_end_of_the_principal_id() -> None:
    finding = parse_finding(credential_event("i-0a1b2c3d4e5f60718"))

    assert finding.instance_id == "i-0a1b2c3d4e5f60718"
    assert finding.credentials is not None and finding.credentials.role_name == ROLE
    assert finding.credentials.access_key_id == "ASIAV2N8C5Q1Z9XJ3TL7"
    assert finding.interfaces == () and finding.tags == ()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            lambda d: d["resource"]["accessKeyDetails"].update(principalId="AIDAV2N8C5Q1ZEXAMPLE1"),
            "accessKeyDetails.principalId",
        ),
        (
            lambda d: d["resource"]["accessKeyDetails"].update(principalId="AROAV2N8C5Q1ZEXAMPLE1:alice"),
            "accessKeyDetails.principalId",
        ),
        (lambda d: d["resource"]["accessKeyDetails"].update(userType="IAMUser"), "accessKeyDetails.userType"),
        (lambda d: d["resource"]["accessKeyDetails"].update(userName="bad name!"), "accessKeyDetails.userName"),
        (lambda d: d["resource"].pop("accessKeyDetails"), "detail.resource.accessKeyDetails"),
        (lambda d: d.update(type="Recon:IAMUser/UserPermissions"), "detail.resource.resourceType"),
    ],
)
def test_a_bad_credential_finding_is_rejected_naming_the_field(change: Any, field: str) -> None:
    event = credential_event("i-0a1b2c3d4e5f60718")
    change(event["detail"])

    with pytest.raises(MalformedFindingError) as error:
        parse_finding(event)

    assert field in error.value.field


def test_by_default_a_credential_finding_is_reported_not_acted_on(stack: Stack) -> None:
    instance_id = launch_with_role(stack)

    summary = stack.invoke(stolen(instance_id))

    assert (summary["decision"], summary["rule"], summary["isolated"]) == ("report", "instance-credentials", False)
    assert associated_profiles(stack, instance_id) and not stack.isolated(instance_id)
    assert stack_iam().list_role_policies(RoleName=ROLE)["PolicyNames"] == []
    (issue,) = stack.jira.issues.values()
    assert f"role {ROLE}, access key ASIAV2N8C5Q1Z9XJ3TL7" in issue["fields"]["description"]
    (message,) = stack.messages()
    assert "REPORT" in message["Subject"] and f"Credentials: role {ROLE}" in message["Message"]


# credential_revocation = "role": every session of the stolen role issued before now, where nothing else uses it.
WHOLE_ROLE = {"CREDENTIAL_FINDINGS": "contain", "CREDENTIAL_REVOCATION": "role"}


def test_contain_revokes_this_instance_s_credentials_by_default(stack: Stack) -> None:
    stack.configure(CREDENTIAL_FINDINGS="contain")
    instance_id = launch_with_role(stack)

    summary = stack.invoke(stolen(instance_id))

    assert summary["isolated"] is True and associated_profiles(stack, instance_id) == []
    assert stack_iam().list_role_policies(RoleName=ROLE)["PolicyNames"] == [revocation_name(instance_id)]
    document = stack_iam().get_role_policy(RoleName=ROLE, PolicyName=revocation_name(instance_id))["PolicyDocument"]
    (statement,) = (json.loads(document) if isinstance(document, str) else document)["Statement"]
    assert statement["Condition"]["ArnEquals"] == {
        "ec2:SourceInstanceARN": f"arn:aws:ec2:{REGION}:123456789012:instance/{instance_id}"
    }


def test_contain_whole_role_isolates_removes_the_profile_and_revokes_older_sessions(stack: Stack) -> None:
    stack.configure(**WHOLE_ROLE)
    instance_id = launch_with_role(stack)
    before = time.time()

    summary = stack.invoke(stolen(instance_id))

    assert (summary["decision"], summary["rule"], summary["isolated"]) == ("isolate", "instance-credentials", True)
    assert stack.isolated(instance_id)
    assert associated_profiles(stack, instance_id) == []
    policy = stack_iam().get_role_policy(RoleName=ROLE, PolicyName=REVOKE_POLICY_NAME)["PolicyDocument"]
    policy = json.loads(policy) if isinstance(policy, str) else policy
    (statement,) = policy["Statement"]
    cutoff = statement["Condition"]["DateLessThan"]["aws:TokenIssueTime"]
    assert statement["Effect"] == "Deny" and statement["Action"] == ["*"] and statement["Resource"] == ["*"]
    after = time.time()
    assert time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(before - 1)) <= cutoff
    assert cutoff <= time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(after + 1)), (
        "a cutoff beyond the next second would lock the role out"
    )
    record = stack.record(summary["finding_id"])
    assert record["steps"]["instance_profile"]["status"] == "done"
    assert record["steps"]["revoke_sessions"]["status"] == "done"
    assert record["removed_instance_profiles"] == [f"arn:aws:iam::123456789012:instance-profile/{ROLE}"]
    assert record["sessions_revoked_before"] == cutoff and record["revoked_role"] == ROLE
    assert record["access_key_id"] == "ASIAV2N8C5Q1Z9XJ3TL7"


@pytest.mark.parametrize("revocation", ["instance", "role"])
def test_contain_never_revokes_the_sessions_of_the_responders_own_member_role(stack: Stack, revocation: str) -> None:
    stack.configure(
        CREDENTIAL_FINDINGS="contain",
        CREDENTIAL_REVOCATION=revocation,
        MEMBER_ROLE_NAME="gd-member",
        MEMBER_ROLE_EXTERNAL_ID="x-123",
    )
    instance_id = launch_with_role(stack, "gd-member")

    summary = stack.invoke(stolen(instance_id, "gd-member"))

    assert summary["isolated"] is True and stack.isolated(instance_id)
    assert stack_iam().list_role_policies(RoleName="gd-member")["PolicyNames"] == []
    step = stack.record(summary["finding_id"])["steps"]["revoke_sessions"]
    assert step["status"] == "skipped" and "gd-member is protected" in step["detail"]


def test_a_role_other_than_the_stolen_one_never_loses_every_session(stack: Stack) -> None:
    stack.configure(**WHOLE_ROLE)
    instance_id = launch_with_role(stack)
    stack_iam().create_role(
        RoleName="admin", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []})
    )

    event = stolen(instance_id)
    event["detail"]["resource"]["accessKeyDetails"]["userName"] = "admin"  # a name that is not the stolen role's

    summary = stack.invoke(event)

    # At most this instance's credentials, never every session of a role the finding merely names.
    assert REVOKE_POLICY_NAME not in stack_iam().list_role_policies(RoleName="admin")["PolicyNames"]
    assert REVOKE_POLICY_NAME not in stack_iam().list_role_policies(RoleName=ROLE)["PolicyNames"]
    step = stack.record(summary["finding_id"])["steps"]["revoke_sessions"]
    assert "role admin is not the role" in step["detail"] and "revoke by hand" in step["detail"]
    assert f"credentials of {instance_id} issued before" in step["detail"]


def test_a_role_other_instances_share_gets_this_instance_s_revocation_only(stack: Stack) -> None:
    stack.configure(**WHOLE_ROLE)
    instance_id = launch_with_role(stack)
    other = stack.launch()
    profile = stack_iam().get_instance_profile(InstanceProfileName=ROLE)["InstanceProfile"]["Arn"]
    stack.ec2.associate_iam_instance_profile(IamInstanceProfile={"Arn": profile}, InstanceId=other)

    summary = stack.invoke(stolen(instance_id))

    assert stack.isolated(instance_id) and associated_profiles(stack, instance_id) == []
    assert associated_profiles(stack, other) == [profile]
    # Not every session of the role: this instance's credentials, as without the option.
    assert stack_iam().list_role_policies(RoleName=ROLE)["PolicyNames"] == [revocation_name(instance_id)]
    step = stack.record(summary["finding_id"])["steps"]["revoke_sessions"]
    assert step["status"] == "done" and f"also used by 1 other instance(s) ({other})" in step["detail"]
    assert f"credentials of {instance_id} issued before" in step["detail"]


def test_a_credential_finding_on_an_instance_isolated_already_still_revokes(stack: Stack) -> None:
    stack.configure(CREDENTIAL_FINDINGS="contain")
    instance_id = launch_with_role(stack)
    stack.invoke(stack.event("backdoor_cc_dns", instance_id))  # isolated first for another finding

    policy = revocation_name(instance_id)
    first = stack_iam().get_role_policy(RoleName=ROLE, PolicyName=policy)["PolicyDocument"]
    time.sleep(1.1)

    summary = stack.invoke(stolen(instance_id))

    assert summary["isolated"] is True
    assert associated_profiles(stack, instance_id) == []
    assert stack_iam().list_role_policies(RoleName=ROLE)["PolicyNames"] == [policy]
    assert stack_iam().get_role_policy(RoleName=ROLE, PolicyName=policy)["PolicyDocument"] != first, "a later cutoff"
    assert stack.record(summary["finding_id"])["incident_role"] == "secondary"


def test_ignore_records_only(stack: Stack) -> None:
    stack.configure(CREDENTIAL_FINDINGS="ignore")
    instance_id = launch_with_role(stack)

    summary = stack.invoke(stolen(instance_id))

    assert summary["decision"] == "ignore" and summary["jira_key"] is None
    assert stack.jira.issues == {} and stack.messages() == []
    assert handler.get_responder().ledger.get_finding(summary["finding_id"]).decision == "ignore"


def test_a_role_others_may_assume_is_not_revoked(stack: Stack) -> None:
    stack.configure(**WHOLE_ROLE)
    instance_id = launch_with_role(stack)
    shared_trust = {
        **EC2_TRUST,
        "Statement": [
            *EC2_TRUST["Statement"],
            {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"},
        ],
    }
    stack_iam().update_assume_role_policy(RoleName=ROLE, PolicyDocument=json.dumps(shared_trust))

    summary = stack.invoke(stolen(instance_id))

    assert stack_iam().list_role_policies(RoleName=ROLE)["PolicyNames"] == [revocation_name(instance_id)]
    step = stack.record(summary["finding_id"])["steps"]["revoke_sessions"]
    assert step["status"] == "done" and "ecs-tasks.amazonaws.com" in step["detail"]


def test_a_second_credential_finding_after_the_profile_is_gone_still_revokes(stack: Stack) -> None:
    stack.configure(**WHOLE_ROLE)
    instance_id = launch_with_role(stack)
    inside = stolen(instance_id)
    inside["detail"]["id"] = "4f0b2d8c6e1a4b3d9f7c5e2a1b0d8c6e"
    inside["detail"]["type"] = "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.InsideAWS"
    stack.invoke(inside)  # removes the profile and revokes
    stack_iam().delete_role_policy(RoleName=ROLE, PolicyName=REVOKE_POLICY_NAME)

    summary = stack.invoke(stolen(instance_id))  # the OutsideAWS finding: no profile left to read

    assert stack_iam().list_role_policies(RoleName=ROLE)["PolicyNames"] == [REVOKE_POLICY_NAME]
    record = stack.record(summary["finding_id"])
    assert record["steps"]["instance_profile"]["detail"] == "no instance profile associated"
    assert record["steps"]["revoke_sessions"]["status"] == "done"
    (issue,) = stack.jira.issues.values()
    assert any(f"sessions of role {ROLE} issued before" in comment for comment in issue["comments"]), issue["comments"]
