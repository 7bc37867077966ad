"""The IAM actions each module declares are the ones the code really calls (Cloud Custodian's habit).

The Terraform tests check that the role grants exactly the declared set; this checks the declarations
against the calls made in the flows that use every one of them.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from guardduty_responder import handler
from guardduty_responder.clients import AwsClients
from guardduty_responder.identity import revocation_name, revocation_policy
from guardduty_responder.isolation import GroupDirectory
from guardduty_responder.ledger import Ledger
from guardduty_responder.responder import IncompleteResponseError
from guardduty_responder_tools.embedded import create_network
from guardduty_responder_tools.permissions import iam_actions_of, required_actions
from test_accounts import EXTERNAL_ID, MEMBER, ROLE_NAME, admin_session, member_event
from test_credentials import EC2_TRUST, launch_with_role, stolen
from test_snapshot_lock import answer_lock_snapshot

from conftest import REGION, TABLE, Network, Stack


def record_actions(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Every action called through any client the responder builds, at home or in a member account."""
    called: set[str] = set()
    build = AwsClients._client

    def recording(self: AwsClients, service: str) -> Any:
        known = service in self._clients
        client = build(self, service)
        if not known:
            prefix = client.meta.service_model.signing_name
            client.meta.events.register(
                "before-parameter-build", lambda model, **_: called.add(f"{prefix}:{model.name}")
            )
            if service == "ec2":
                answer_lock_snapshot(client)  # moto has no LockSnapshot
        return client

    monkeypatch.setattr(AwsClients, "_client", recording)
    return called


def test_every_call_is_declared_and_every_declared_action_is_called(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    called = record_actions(monkeypatch)
    # Every option on, as Terraform configures it: credential findings contained, member accounts reachable.
    stack.configure(
        CREDENTIAL_FINDINGS="contain",
        DISABLE_INSTANCE_METADATA="true",
        SNAPSHOT_LOCK_DAYS="30",
        MALWARE_SCAN="true",
        MEMBER_ROLE_NAME=ROLE_NAME,
        MEMBER_ROLE_EXTERNAL_ID=EXTERNAL_ID,
        RESPONDER_ACCOUNT_ID="123456789012",
    )
    responder = handler.get_responder()
    autoscaling = boto3.client("autoscaling", region_name=REGION)
    elbv2 = boto3.client("elbv2", region_name=REGION)
    stack.ec2.create_launch_template(LaunchTemplateName="web", LaunchTemplateData={"ImageId": "ami-12c6146b"})
    target_group = elbv2.create_target_group(Name="web", Protocol="HTTP", Port=80, VpcId=stack.vpc_id)["TargetGroups"][
        0
    ]
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="web",
        LaunchTemplate={"LaunchTemplateName": "web"},
        MinSize=0,
        MaxSize=3,
        DesiredCapacity=2,
        VPCZoneIdentifier=stack.subnet_id,
        TargetGroupARNs=[target_group["TargetGroupArn"]],
    )
    in_group, in_standby = [
        i["InstanceId"] for i in autoscaling.describe_auto_scaling_instances()["AutoScalingInstances"]
    ]
    standalone = stack.launch(enis=2)
    refusing = {"on": True}

    def refuse_standby(**_: Any) -> None:
        if refusing["on"]:
            raise ClientError({"Error": {"Code": "ValidationError", "Message": "below minimum"}}, "EnterStandby")

    responder.clients.autoscaling.meta.events.register("before-call.autoscaling.EnterStandby", refuse_standby)
    stack.invoke(stack.event("tor_client", in_group))  # standby refused: detached instead
    refusing["on"] = False
    iam = boto3.client("iam", region_name=REGION)
    iam.create_role(RoleName="web-role", AssumeRolePolicyDocument=json.dumps(EC2_TRUST))
    profile = iam.create_instance_profile(InstanceProfileName="web-role")["InstanceProfile"]["Arn"]
    iam.add_role_to_instance_profile(InstanceProfileName="web-role", RoleName="web-role")
    stack.ec2.associate_iam_instance_profile(IamInstanceProfile={"Arn": profile}, InstanceId=in_standby)
    stack.invoke(stack.event("tor_client", in_standby, finding_id="e" * 32))
    # Release, with everything: the profile, metadata, timeouts, the revocation and service put back.
    for instance in (in_group, in_standby):
        responder.release(instance, released_by="analyst", restore_credentials=True, return_to_service=True)
    # Rules changed by hand on both groups make the responder put them back: every group call is used.
    untracking = stack.responder_groups()["untracking"]["GroupId"]
    stack.ec2.revoke_security_group_egress(
        GroupId=untracking, IpPermissions=[{"IpProtocol": "-1", "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}]
    )
    isolation = stack.responder_groups()["isolation"]["GroupId"]
    stack.ec2.authorize_security_group_ingress(
        GroupId=isolation,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}],
    )
    stack.ec2.authorize_security_group_egress(
        GroupId=isolation,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}],
    )
    responder.groups.forget(stack.vpc_id)
    failing = {"on": True}

    def throttle_once(**_: Any) -> None:
        if failing["on"]:
            failing["on"] = False
            raise ClientError({"Error": {"Code": "RequestLimitExceeded", "Message": "slow"}}, "CreateSnapshots")

    responder.clients.ec2.meta.events.register("before-call.ec2.CreateSnapshots", throttle_once)
    with pytest.raises(IncompleteResponseError):
        stack.invoke(stack.event("backdoor_cc_dns", standalone))
    manifest_refused = {"on": True}

    def refuse_the_manifest_once(params: dict[str, Any], **_: Any) -> None:
        if manifest_refused["on"] and params["Key"].endswith("manifest.json"):
            manifest_refused["on"] = False
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "slow"}}, "PutObject")

    responder.clients.s3.meta.events.register("before-parameter-build.s3.PutObject", refuse_the_manifest_once)
    with pytest.raises(IncompleteResponseError):
        stack.invoke(stack.event("backdoor_cc_dns", standalone))  # the retry looks for snapshots first
    stack.invoke(stack.event("backdoor_cc_dns", standalone))  # the evidence written before is read back
    responder.release(standalone, released_by="analyst")
    responder.sweep()  # the schedule's sweep: unfinished findings through their index
    with_role = launch_with_role(stack)
    old = revocation_policy(f"arn:aws:ec2:{REGION}:123456789012:instance/i-0aaaaaaaaaaaaaaaa", "2020-01-01T00:00:00Z")
    iam.put_role_policy(
        RoleName="analytics-etl-role", PolicyName=revocation_name("i-0aaaaaaaaaaaaaaaa"), PolicyDocument=json.dumps(old)
    )
    stack.invoke(stolen(with_role))  # an expired revocation on the role is deleted first
    stack.configure(CREDENTIAL_REVOCATION="role")  # every older session of the stolen role
    whole_role = stolen(launch_with_role(stack, "batch-role"), "batch-role")
    whole_role["detail"]["id"] = "c" * 32
    stack.invoke(whole_role)
    responder = handler.get_responder()
    member_ec2 = admin_session(MEMBER).client("ec2")
    vpc_id, subnet_id = create_network(member_ec2, REGION)
    web = member_ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc_id)["GroupId"]
    member = Network(member_ec2, vpc_id, subnet_id, (web,))
    in_member = member_event(stack, "ssh_bruteforce", stack.launch(network=member), member)
    record_groups = responder.ledger.record_groups

    def a_concurrent_lookup_records_first(account_id: str, vpc: str, groups: Any, *, replacing: Any) -> Any:
        if replacing is None and vpc == vpc_id:
            GroupDirectory(member_ec2, Ledger(stack.dynamodb, TABLE, 30), account_id).groups_for(vpc)
        return record_groups(account_id, vpc, groups, replacing=replacing)

    # The responder's own new groups lose to those recorded first, and are deleted.
    monkeypatch.setattr(responder.ledger, "record_groups", a_concurrent_lookup_records_first)
    assert stack.invoke(in_member)["isolated"]
    forged = stack.event("tor_client", standalone, finding_id="f" * 32)
    stack.guardduty.forget(forged["detail"]["id"])
    stack.invoke(forged, raised_by_guardduty=False)  # GuardDuty has no such finding: the claim is withdrawn

    authorised = iam_actions_of(called)
    assert authorised - required_actions() == set(), "calls no module declares"
    assert required_actions() - authorised == set(), "declared actions no flow calls"
