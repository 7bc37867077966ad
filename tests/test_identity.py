"""Containment beyond security groups (README, "Identity and what stays open").

Every isolation removes the instance profile and revokes the credentials delivered to this instance
before it (a deny statement on its role conditioned on `ec2:SourceInstanceARN` and
`aws:TokenIssueTime`), sets each interface's connection-tracking timeouts to their minimum,
optionally turns the metadata service off, verifies the result with one read, and records what
stays open. Release puts every item back.

moto stores IAM policies without evaluating their conditions, and ignores connection-tracking
attributes: the revocation is checked as the document written, and the timeouts as the requests made.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from guardduty_responder import handler, identity
from guardduty_responder.identity import MINIMUM_TRACKING, ROLE_INLINE_POLICY_LIMIT, revocation_name
from guardduty_responder.responder import IncompleteResponseError
from test_credentials import EC2_TRUST, ROLE, associated_profiles, launch_with_role, stack_iam, stolen

from conftest import ACCOUNT, REGION, Stack


def instance_arn(instance_id: str) -> str:
    return f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{instance_id}"


def revocation(instance_id: str, role: str = ROLE) -> dict[str, Any]:
    document = stack_iam().get_role_policy(RoleName=role, PolicyName=revocation_name(instance_id))["PolicyDocument"]
    return json.loads(document) if isinstance(document, str) else document  # type: ignore[no-any-return]


def share_profile(stack: Stack, role: str = ROLE) -> str:
    """Another instance holding the same role's profile."""
    other = stack.launch()
    profile = stack_iam().get_instance_profile(InstanceProfileName=role)["InstanceProfile"]["Arn"]
    stack.ec2.associate_iam_instance_profile(IamInstanceProfile={"Arn": profile}, InstanceId=other)
    return other


def record_requests(stack: Stack, operation: str) -> list[dict[str, Any]]:
    """Every request of `operation` the responder's EC2 client makes, as its parameters."""
    seen: list[dict[str, Any]] = []
    handler.get_responder().clients.ec2.meta.events.register(
        f"provide-client-params.ec2.{operation}", lambda params, **_: seen.append(dict(params))
    )
    return seen


def tracking_requests(seen: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    return {p["NetworkInterfaceId"]: p["ConnectionTrackingSpecification"] for p in seen if "Groups" not in p}


def test_isolation_removes_the_profile_and_revokes_this_instance_only(stack: Stack) -> None:
    instance_id = launch_with_role(stack)
    other = share_profile(stack)
    profile = associated_profiles(stack, other)
    before = time.time()

    summary = stack.invoke(stack.event("backdoor_cc_dns", instance_id))

    after = time.time()
    assert summary["isolated"] and stack.isolated(instance_id)
    assert associated_profiles(stack, instance_id) == []
    assert associated_profiles(stack, other) == profile, "the other instance keeps its role"
    (statement,) = revocation(instance_id)["Statement"]
    assert (statement["Effect"], statement["Action"], statement["Resource"]) == ("Deny", "*", "*")
    assert statement["Condition"]["ArnEquals"] == {"ec2:SourceInstanceARN": instance_arn(instance_id)}
    cutoff = statement["Condition"]["DateLessThan"]["aws:TokenIssueTime"]
    assert time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(before)) < cutoff
    assert cutoff <= time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(after + 1)), "no later than the next second"
    assert stack_iam().list_role_policies(RoleName=ROLE)["PolicyNames"] == [revocation_name(instance_id)]
    record = stack.record(summary["finding_id"])
    assert [record["steps"][s]["status"] for s in ("instance_profile", "revoke_sessions")] == ["done", "done"]
    assert record["revocations"] == [{"role": ROLE, "policy": revocation_name(instance_id), "before": cutoff}]
    (issue,) = stack.jira.issues.values()
    assert "instance\\_profile: instance profile removed" in issue["fields"]["description"]
    assert f"credentials of {instance_id} issued before {cutoff} revoked" in issue["fields"]["description"]
    (message,) = stack.messages()
    assert f"credentials of {instance_id} issued before" in message["Message"]


def test_identity_steps_run_right_after_containment_and_before_the_evidence(stack: Stack) -> None:
    instance_id = launch_with_role(stack)
    calls: list[str] = []
    clients = handler.get_responder().clients
    for client in (clients.ec2, clients.iam):
        client.meta.events.register("before-call", lambda model, **_: calls.append(model.name))

    stack.invoke(stack.event("backdoor_cc_dns", instance_id))

    last_move = max(i for i, name in enumerate(calls) if name == "ModifyNetworkInterfaceAttribute")
    assert calls.index("DisassociateIamInstanceProfile") < calls.index("PutRolePolicy") < calls.index("CreateSnapshots")
    assert calls.index("DescribeNetworkInterfaces") < calls.index("CreateSnapshots")
    assert calls.index("DisassociateIamInstanceProfile") < last_move or last_move < calls.index("CreateSnapshots")


def test_two_instances_of_one_role_each_get_their_own_revocation(stack: Stack) -> None:
    first = launch_with_role(stack)
    second = share_profile(stack)

    stack.invoke(stack.event("backdoor_cc_dns", first))
    stack.invoke(stack.event("tor_client", second))

    assert sorted(stack_iam().list_role_policies(RoleName=ROLE)["PolicyNames"]) == sorted(
        [revocation_name(first), revocation_name(second)]
    )
    for instance_id in (first, second):
        (statement,) = revocation(instance_id)["Statement"]
        assert statement["Condition"]["ArnEquals"]["ec2:SourceInstanceARN"] == instance_arn(instance_id)


def test_off_leaves_the_identity_of_an_instance_isolated_for_another_finding(stack: Stack) -> None:
    stack.configure(CONTAIN_IDENTITY="false")
    instance_id = launch_with_role(stack)

    summary = stack.invoke(stack.event("backdoor_cc_dns", instance_id))

    assert summary["isolated"] and associated_profiles(stack, instance_id) != []
    assert stack_iam().list_role_policies(RoleName=ROLE)["PolicyNames"] == []
    assert "instance_profile" not in summary["steps"] and "revoke_sessions" not in summary["steps"]


@pytest.mark.parametrize(
    ("role", "path", "settings", "why"),
    [
        ("responder-fn", "/", {"RESPONDER_ROLE_NAME": "responder-fn"}, "is protected"),
        ("payments-app", "/", {"PROTECTED_ROLE_NAMES": "billing,payments-*"}, "is protected"),
        ("AWSReservedSSO_Admin_0123", "/aws-reserved/sso.amazonaws.com/", {}, "is managed by AWS"),
    ],
    ids=["own", "listed", "reserved"],
)
def test_a_protected_role_is_never_written(
    stack: Stack, role: str, path: str, settings: dict[str, str], why: str
) -> None:
    stack.configure(**settings)
    iam = stack_iam()
    iam.create_role(RoleName=role, Path=path, AssumeRolePolicyDocument=json.dumps(EC2_TRUST))
    profile = iam.create_instance_profile(InstanceProfileName=role)["InstanceProfile"]
    iam.add_role_to_instance_profile(InstanceProfileName=role, RoleName=role)
    instance_id = stack.launch()
    stack.ec2.associate_iam_instance_profile(IamInstanceProfile={"Arn": profile["Arn"]}, InstanceId=instance_id)

    summary = stack.invoke(stack.event("backdoor_cc_dns", instance_id))

    assert summary["isolated"] and associated_profiles(stack, instance_id) == []
    assert iam.list_role_policies(RoleName=role)["PolicyNames"] == []
    step = stack.record(summary["finding_id"])["steps"]["revoke_sessions"]
    assert step["status"] == "skipped" and f"role {role} {why}" in step["detail"]


def test_an_instance_without_a_profile_has_nothing_to_revoke(stack: Stack) -> None:
    summary = stack.invoke(stack.event("backdoor_cc_dns", stack.launch()))

    record = stack.record(summary["finding_id"])
    assert record["steps"]["instance_profile"]["detail"] == "no instance profile associated"
    assert record["steps"]["revoke_sessions"]["status"] == "skipped"
    assert "the instance has no role" in record["steps"]["revoke_sessions"]["detail"]


def test_the_tracking_timeouts_go_to_their_minimum_on_every_interface(stack: Stack) -> None:
    instance_id = stack.launch(enis=2)
    seen = record_requests(stack, "ModifyNetworkInterfaceAttribute")

    summary = stack.invoke(stack.event("backdoor_cc_dns", instance_id))

    enis = set(stack.groups_of(instance_id))
    assert tracking_requests(seen) == dict.fromkeys(enis, MINIMUM_TRACKING)
    assert MINIMUM_TRACKING == {"TcpEstablishedTimeout": 60, "UdpStreamTimeout": 60, "UdpTimeout": 30}
    record = stack.record(summary["finding_id"])
    assert record["steps"]["connection_tracking"]["status"] == "done"
    assert record["tracking_before"] == dict.fromkeys(enis, identity.DEFAULT_TRACKING)
    assert any("60 seconds for TCP now" in line for line in record["still_open"])


def test_an_instance_type_without_configurable_tracking_is_recorded_not_failed(stack: Stack) -> None:
    instance_id = stack.launch()

    def refuse(params: dict[str, Any], **_: Any) -> None:
        if "ConnectionTrackingSpecification" in params:
            message = "The instance type t2.medium does not support configurable connection tracking"
            raise ClientError({"Error": {"Code": "InvalidParameterValue", "Message": message}}, "Modify")

    handler.get_responder().clients.ec2.meta.events.register(
        "before-parameter-build.ec2.ModifyNetworkInterfaceAttribute", refuse
    )

    summary = stack.invoke(stack.event("backdoor_cc_dns", instance_id))

    step = stack.record(summary["finding_id"])["steps"]["connection_tracking"]
    assert step["status"] == "done" and "does not support configurable connection tracking" in step["detail"]
    assert any("up to 5 days" in line for line in stack.record(summary["finding_id"])["still_open"])


def test_the_metadata_service_is_turned_off_when_configured(stack: Stack) -> None:
    stack.configure(DISABLE_INSTANCE_METADATA="true")
    instance_id = stack.launch()
    seen = record_requests(stack, "ModifyInstanceMetadataOptions")

    summary = stack.invoke(stack.event("backdoor_cc_dns", instance_id))

    assert seen == [{"InstanceId": instance_id, "HttpEndpoint": "disabled"}]
    record = stack.record(summary["finding_id"])
    assert record["steps"]["metadata"]["status"] == "done"
    assert record["metadata_before"]["HttpEndpoint"] == "enabled"
    assert not any("metadata service" in line for line in record["still_open"])


def test_by_default_the_metadata_service_is_left_on_and_said_to_stay_open(stack: Stack) -> None:
    instance_id = stack.launch()
    seen = record_requests(stack, "ModifyInstanceMetadataOptions")

    summary = stack.invoke(stack.event("backdoor_cc_dns", instance_id))

    assert seen == [] and "metadata" not in summary["steps"]
    still_open = stack.record(summary["finding_id"])["still_open"]
    assert any("metadata service" in line for line in still_open)
    assert any("DNS queries to the VPC's Amazon-provided resolver" in line for line in still_open)
    (issue,) = stack.jira.issues.values()
    assert "What stays open" in issue["fields"]["description"]
    assert "Route 53 Resolver DNS Firewall" in issue["fields"]["description"]


def test_containment_is_verified_by_one_read(stack: Stack) -> None:
    stack.configure(EVIDENCE_BUCKET="")  # the evidence it stores reads the interfaces again, later
    instance_id = stack.launch(enis=2)
    seen = record_requests(stack, "DescribeNetworkInterfaces")

    summary = stack.invoke(stack.event("backdoor_cc_dns", instance_id))

    assert seen == [{"Filters": [{"Name": "attachment.instance-id", "Values": [instance_id]}]}]
    step = stack.record(summary["finding_id"])["steps"]["verify"]
    assert step["status"] == "done"
    assert step["detail"].startswith("containment verified: 2 network interface(s) on the isolation group alone")


@pytest.mark.parametrize("fault", ["interface moved back", "rule added to the isolation group"])
def test_a_mismatch_is_an_alarmed_failure(
    stack: Stack, fault: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The JSON line CloudWatch Logs receives (the critical-log-lines alarm matches its level): a fresh handler
    # writes to this test's stdout.
    monkeypatch.setattr(logging.getLogger("guardduty_responder"), "handlers", [])
    instance_id = stack.launch(enis=2)
    app = stack.app_group

    def tamper(**_: Any) -> None:
        if fault == "interface moved back":
            eni = sorted(stack.groups_of(instance_id))[0]
            stack.ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Groups=[app])
        else:
            isolation = stack.responder_groups()["isolation"]["GroupId"]
            stack.ec2.authorize_security_group_egress(
                GroupId=isolation,
                IpPermissions=[
                    {"IpProtocol": "tcp", "FromPort": 53, "ToPort": 53, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
                ],
            )

    handler.get_responder().clients.ec2.meta.events.register("before-call.ec2.DescribeNetworkInterfaces", tamper)

    handler.get_responder()
    capsys.readouterr()
    with pytest.raises(IncompleteResponseError, match="containment not verified"):
        stack.invoke(stack.event("backdoor_cc_dns", instance_id))

    step = stack.record(stack.event("backdoor_cc_dns")["detail"]["id"])["steps"]["verify"]
    assert step["status"] == "failed"
    assert (f"is on {app}" if fault == "interface moved back" else "has rules") in step["error"]
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert any(line["level"] == "CRITICAL" and line["message"] == "containment not verified" for line in lines)


def test_the_revocations_of_many_instances_of_one_role_fit_iam_s_limit() -> None:
    """The README states how many instances of one role can be revoked at once: it must hold in any region."""
    regions = ["ap-southeast-5", "cn-northwest-1", "us-gov-west-1", "us-isob-east-1", "eu-isoe-west-1"]
    size = max(
        len(
            json.dumps(
                identity.revocation_policy(
                    identity.instance_arn(region, ACCOUNT, "i-0123456789abcdef0"), "2026-11-30T05:03:08Z"
                ),
                separators=(",", ":"),
            )
        )
        for region in regions
    )

    assert size <= 275, "the README's largest revocation"
    assert 37 * size <= ROLE_INLINE_POLICY_LIMIT, "the README's 37 isolated instances of one role fit"


def test_a_role_with_no_room_is_skipped_for_a_person(stack: Stack) -> None:
    instance_id = launch_with_role(stack)

    def role_full(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "LimitExceeded", "Message": "Maximum policy size"}}, "PutRolePolicy")

    handler.get_responder().clients.iam.meta.events.register("before-call.iam.PutRolePolicy", role_full)

    summary = stack.invoke(stack.event("backdoor_cc_dns", instance_id))

    step = stack.record(summary["finding_id"])["steps"]["revoke_sessions"]
    assert step["status"] == "skipped" and "revoke by hand" in step["detail"] and "10240 characters" in step["detail"]


# -- release ----------------------------------------------------------------------------------------


def isolate_in_service(stack: Stack) -> tuple[str, str, dict[str, list[str]]]:
    """An instance with a profile, in an Auto Scaling group and a target group, isolated with every option on."""
    stack.configure(DISABLE_INSTANCE_METADATA="true")
    iam, autoscaling, elbv2 = stack_iam(), boto3.client("autoscaling", REGION), boto3.client("elbv2", REGION)
    iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(EC2_TRUST))
    profile = iam.create_instance_profile(InstanceProfileName=ROLE)["InstanceProfile"]
    iam.add_role_to_instance_profile(InstanceProfileName=ROLE, RoleName=ROLE)
    group = elbv2.create_target_group(Name="web", Protocol="HTTP", Port=80, VpcId=stack.vpc_id)["TargetGroups"][0]
    stack.ec2.create_launch_template(LaunchTemplateName="web", LaunchTemplateData={"ImageId": "ami-12c6146b"})
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="web",
        LaunchTemplate={"LaunchTemplateName": "web"},
        MinSize=0,
        MaxSize=2,
        DesiredCapacity=1,
        VPCZoneIdentifier=stack.subnet_id,
    )
    instance_id = autoscaling.describe_auto_scaling_instances()["AutoScalingInstances"][0]["InstanceId"]
    elbv2.register_targets(TargetGroupArn=group["TargetGroupArn"], Targets=[{"Id": instance_id, "Port": 8080}])
    stack.ec2.associate_iam_instance_profile(IamInstanceProfile={"Arn": profile["Arn"]}, InstanceId=instance_id)
    before = stack.groups_of(instance_id)
    stack.invoke(stack.event("backdoor_cc_dns", instance_id))
    assert stack.isolated(instance_id) and associated_profiles(stack, instance_id) == []
    return instance_id, group["TargetGroupArn"], before


def test_release_restores_everything_containment_changed(stack: Stack) -> None:
    instance_id, target_group, groups = isolate_in_service(stack)
    metadata = record_requests(stack, "ModifyInstanceMetadataOptions")
    tracking = record_requests(stack, "ModifyNetworkInterfaceAttribute")

    result = handler.get_responder().release(
        instance_id, released_by="analyst", restore_credentials=True, return_to_service=True
    )

    assert stack.groups_of(instance_id) == groups
    assert associated_profiles(stack, instance_id) == [f"arn:aws:iam::{ACCOUNT}:instance-profile/{ROLE}"]
    assert metadata == [
        {
            "InstanceId": instance_id,
            **{k: v for k, v in stack.describe(instance_id)["MetadataOptions"].items() if k != "State"},
        }
    ]
    assert tracking_requests(tracking) == dict.fromkeys(groups, identity.DEFAULT_TRACKING)
    assert stack_iam().list_role_policies(RoleName=ROLE)["PolicyNames"] == []
    found = boto3.client("autoscaling", REGION).describe_auto_scaling_instances(InstanceIds=[instance_id])
    assert found["AutoScalingInstances"][0]["LifecycleState"] == "InService"
    health = boto3.client("elbv2", REGION).describe_target_health(TargetGroupArn=target_group)
    assert [(d["Target"]["Id"], d["Target"]["Port"]) for d in health["TargetHealthDescriptions"]] == [
        (instance_id, 8080)
    ]
    items = [line.split(":", 1)[0] for line in result["restored"]]
    assert items == [
        "security groups",
        "instance profile",
        "metadata service",
        "connection tracking",
        "credentials",
        "Auto Scaling",
        "target groups",
    ]
    assert result["failed"] == []
    restored = stack.record(f"instance#{instance_id}")["restored"]
    assert [entry["item"] for entry in restored] == items
    (issue,) = stack.jira.issues.values()
    comment = issue["comments"][-1]
    assert "Released by analyst" in comment and "instance profile" in comment and "revocation removed" in comment


def test_by_default_release_leaves_the_old_credentials_revoked_and_the_instance_out_of_service(stack: Stack) -> None:
    instance_id, target_group, _ = isolate_in_service(stack)

    result = handler.get_responder().release(instance_id, released_by="analyst")

    assert stack_iam().list_role_policies(RoleName=ROLE)["PolicyNames"] == [revocation_name(instance_id)]
    assert any(line.startswith("credentials: credentials issued before") for line in result["restored"])
    assert any("--return-to-service" in line for line in result["restored"])
    found = boto3.client("autoscaling", REGION).describe_auto_scaling_instances(InstanceIds=[instance_id])
    assert found["AutoScalingInstances"][0]["LifecycleState"] == "Standby"
    assert (
        boto3.client("elbv2", REGION).describe_target_health(TargetGroupArn=target_group)["TargetHealthDescriptions"]
        == []
    )
    assert associated_profiles(stack, instance_id) != [], "the profile is back whatever the options"


def test_a_credential_finding_gets_the_per_instance_revocation(stack: Stack) -> None:
    stack.configure(CREDENTIAL_FINDINGS="contain")
    instance_id = launch_with_role(stack)
    other = share_profile(stack)

    summary = stack.invoke(stolen(instance_id))

    assert summary["steps"]["revoke_sessions"] == "done"
    (statement,) = revocation(instance_id)["Statement"]
    assert statement["Condition"]["ArnEquals"]["ec2:SourceInstanceARN"] == instance_arn(instance_id)
    assert associated_profiles(stack, other) != [], "the role's other instance keeps working"


def test_release_never_deletes_a_policy_the_record_names_that_is_not_a_revocation(stack: Stack) -> None:
    instance_id = launch_with_role(stack)
    summary = stack.invoke(stack.event("backdoor_cc_dns", instance_id))
    app = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
    stack_iam().put_role_policy(RoleName=ROLE, PolicyName="app", PolicyDocument=json.dumps(app))
    # Someone able to write the ledger names another policy of the role as the revocation to remove.
    stack.dynamodb.update_item(
        TableName="guardduty-responder-test",
        Key={"pk": {"S": summary["finding_id"]}},
        UpdateExpression="SET revocations = :r",
        ExpressionAttributeValues={":r": {"L": [{"M": {"role": {"S": ROLE}, "policy": {"S": "app"}}}]}},
    )

    result = handler.get_responder().release(instance_id, released_by="analyst", restore_credentials=True)

    assert result["failed"] == [
        f"credentials: FAILED, RuntimeError: not this instance's revocation, left alone: app on role {ROLE}"
    ]
    assert "app" in stack_iam().list_role_policies(RoleName=ROLE)["PolicyNames"]
    assert revocation_name(instance_id) in stack_iam().list_role_policies(RoleName=ROLE)["PolicyNames"]


def set_on_record(stack: Stack, finding_id: str, name: str, value: dict[str, Any]) -> None:
    """What someone able to write the ledger could make the record say."""
    stack.dynamodb.update_item(
        TableName="guardduty-responder-test",
        Key={"pk": {"S": finding_id}},
        UpdateExpression="SET #n = :v",
        ExpressionAttributeNames={"#n": name},
        ExpressionAttributeValues={":v": value},
    )


def test_release_never_lifts_another_instance_s_revocation(stack: Stack) -> None:
    instance_id = launch_with_role(stack)
    other = share_profile(stack)
    summary = stack.invoke(stack.event("backdoor_cc_dns", instance_id))
    stack.invoke(stack.event("tor_client", other))
    entry = {"M": {"role": {"S": ROLE}, "policy": {"S": revocation_name(other)}}}
    set_on_record(stack, summary["finding_id"], "revocations", {"L": [entry]})

    result = handler.get_responder().release(instance_id, released_by="analyst", restore_credentials=True)

    assert result["failed"] and "not this instance's revocation" in result["failed"][0]
    assert revocation_name(other) in stack_iam().list_role_policies(RoleName=ROLE)["PolicyNames"]


def test_release_never_deletes_a_policy_named_like_the_revocation_but_saying_something_else(stack: Stack) -> None:
    instance_id = launch_with_role(stack)
    stack.invoke(stack.event("backdoor_cc_dns", instance_id))
    guardrail = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "s3:*", "Resource": "*"}]}
    stack_iam().put_role_policy(
        RoleName=ROLE, PolicyName=revocation_name(instance_id), PolicyDocument=json.dumps(guardrail)
    )

    result = handler.get_responder().release(instance_id, released_by="analyst", restore_credentials=True)

    assert "is not a revocation as the responder writes it" in result["failed"][0]
    assert stack_iam().list_role_policies(RoleName=ROLE)["PolicyNames"] == [revocation_name(instance_id)]


def test_release_gives_back_only_the_profile_the_instance_had(stack: Stack) -> None:
    instance_id = launch_with_role(stack)
    summary = stack.invoke(stack.event("backdoor_cc_dns", instance_id))
    iam = stack_iam()
    iam.create_role(RoleName="admin", AssumeRolePolicyDocument=json.dumps(EC2_TRUST))
    admin = iam.create_instance_profile(InstanceProfileName="admin")["InstanceProfile"]["Arn"]
    iam.add_role_to_instance_profile(InstanceProfileName="admin", RoleName="admin")
    set_on_record(stack, summary["finding_id"], "removed_instance_profiles", {"L": [{"S": admin}]})

    result = handler.get_responder().release(instance_id, released_by="analyst")

    assert result["failed"] and "not the profile the instance had" in result["failed"][0]
    assert associated_profiles(stack, instance_id) == []


def test_release_never_gives_back_a_profile_of_a_protected_role(stack: Stack) -> None:
    stack.configure(PROTECTED_ROLE_NAMES=ROLE)
    instance_id = launch_with_role(stack)
    stack.invoke(stack.event("backdoor_cc_dns", instance_id))

    result = handler.get_responder().release(instance_id, released_by="analyst")

    assert result["failed"] and f"holds role {ROLE} is protected" in result["failed"][0]
    assert associated_profiles(stack, instance_id) == []


def test_pruning_deletes_only_the_responder_s_own_expired_revocations(stack: Stack) -> None:
    instance_id = launch_with_role(stack)
    iam = stack_iam()
    expired = identity.revocation_policy(instance_arn("i-0aaaaaaaaaaaaaaaa"), "2026-01-01T00:00:00Z")
    look_alike = {**expired, "Statement": [{**expired["Statement"][0], "Action": "s3:*"}]}
    iam.put_role_policy(
        RoleName=ROLE, PolicyName=revocation_name("i-0aaaaaaaaaaaaaaaa"), PolicyDocument=json.dumps(expired)
    )
    iam.put_role_policy(
        RoleName=ROLE, PolicyName=revocation_name("i-0cccccccccccccccc"), PolicyDocument=json.dumps(look_alike)
    )

    stack.invoke(stack.event("backdoor_cc_dns", instance_id))

    assert sorted(iam.list_role_policies(RoleName=ROLE)["PolicyNames"]) == sorted(
        [revocation_name("i-0cccccccccccccccc"), revocation_name(instance_id)]
    )


def test_a_retry_after_the_profile_went_still_records_it_for_release(stack: Stack) -> None:
    instance_id = launch_with_role(stack)
    association = stack.ec2.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [instance_id]}]
    )["IamInstanceProfileAssociations"][0]

    def gone_before_the_step(**_: Any) -> None:
        stack.ec2.disassociate_iam_instance_profile(AssociationId=association["AssociationId"])

    handler.get_responder().clients.ec2.meta.events.register(
        "before-call.ec2.DescribeIamInstanceProfileAssociations", gone_before_the_step
    )

    summary = stack.invoke(stack.event("backdoor_cc_dns", instance_id))

    record = stack.record(summary["finding_id"])
    assert record["removed_instance_profiles"] == [f"arn:aws:iam::{ACCOUNT}:instance-profile/{ROLE}"]
    assert record["steps"]["revoke_sessions"]["status"] == "done"


@pytest.mark.parametrize(
    ("region", "partition"),
    [("eu-west-1", "aws"), ("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov"), ("us-isob-east-1", "aws-iso-b")],
)
def test_the_revoked_instance_arn_names_the_region_s_partition(region: str, partition: str) -> None:
    assert identity.instance_arn(region, ACCOUNT, "i-0123456789abcdef0") == (
        f"arn:{partition}:ec2:{region}:{ACCOUNT}:instance/i-0123456789abcdef0"
    )
