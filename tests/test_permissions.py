"""The IAM actions each module declares are the ones the code really calls (Cloud Custodian's habit).

The Terraform tests check that the role grants exactly the declared set; this checks the declarations
against the calls made in the flows that use every one of them.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from guardduty_responder import handler
from guardduty_responder.clients import AwsClients
from guardduty_responder.isolation import GroupDirectory
from guardduty_responder.ledger import Ledger
from guardduty_responder.responder import IncompleteResponseError
from guardduty_responder_tools.embedded import create_network
from guardduty_responder_tools.permissions import iam_actions_of, required_actions
from test_accounts import EXTERNAL_ID, MEMBER, ROLE_NAME, admin_session, member_event
from test_credentials import launch_with_role, stolen

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
        MaxSize=2,
        DesiredCapacity=1,
        VPCZoneIdentifier=stack.subnet_id,
        TargetGroupARNs=[target_group["TargetGroupArn"]],
    )
    in_group = autoscaling.describe_auto_scaling_instances()["AutoScalingInstances"][0]["InstanceId"]
    standalone = stack.launch(enis=2)

    def refuse_standby(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "ValidationError", "Message": "below minimum"}}, "EnterStandby")

    responder.clients.autoscaling.meta.events.register("before-call.autoscaling.EnterStandby", refuse_standby)
    stack.invoke(stack.event("tor_client", in_group))  # standby refused: detached instead
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
    stack.invoke(stack.event("backdoor_cc_dns", standalone))  # the retry looks for snapshots first
    responder.release(standalone, released_by="analyst")
    responder.sweep()  # the schedule's sweep: unfinished findings through their index
    stack.invoke(stolen(launch_with_role(stack)))
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
