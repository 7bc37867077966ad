"""Containment exactly as the README's "How containment works, and its limits": untracking group first, then the isolation group."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import boto3

from guardduty_responder import handler

from conftest import REGION, Stack, group_directory


def record_moves(stack: Stack) -> list[dict[str, Any]]:
    """Hook the deployed responder's EC2 client: every ENI move, in call order, as AWS received it."""
    calls: list[dict[str, Any]] = []
    lock = threading.Lock()

    def before_call(params: dict[str, Any], **_: Any) -> None:
        if "Groups" not in params:
            return  # the connection-tracking timeouts, after containment
        with lock:
            calls.append(
                {
                    "eni": params["NetworkInterfaceId"],
                    "groups": list(params["Groups"]),
                    "jira_imported": any(name == "atlassian" or name.startswith("atlassian.") for name in sys.modules),
                    "at": time.monotonic(),
                }
            )

    ec2 = handler.get_responder().clients.ec2
    ec2.meta.events.register("before-parameter-build.ec2.ModifyNetworkInterfaceAttribute", before_call)
    return calls


def forget_jira_library() -> None:
    for name in [name for name in sys.modules if name == "atlassian" or name.startswith("atlassian.")]:
        del sys.modules[name]


def all_traffic(rules: list[dict[str, Any]]) -> tuple[bool, bool]:
    everything = [rule for rule in rules if rule["IpProtocol"] == "-1"]
    v4 = any(r["CidrIp"] == "0.0.0.0/0" for rule in everything for r in rule.get("IpRanges", []))
    v6 = any(r["CidrIpv6"] == "::/0" for rule in everything for r in rule.get("Ipv6Ranges", []))
    return v4, v6


def test_every_eni_goes_untracking_then_isolation_before_jira_is_imported(stack: Stack) -> None:
    instance_id = stack.launch(enis=2, ipv6=True)
    before = stack.groups_of(instance_id)
    assert len(before) == 2
    calls = record_moves(stack)
    forget_jira_library()

    stack.invoke(stack.event("backdoor_cc_dns", instance_id))

    groups = stack.responder_groups()
    untracking, isolation = groups["untracking"], groups["isolation"]
    assert all_traffic(untracking["IpPermissions"]) == (True, True)
    assert all_traffic(untracking["IpPermissionsEgress"]) == (True, True)
    assert isolation["IpPermissions"] == [] and isolation["IpPermissionsEgress"] == []
    assert stack.groups_of(instance_id) == {eni: [isolation["GroupId"]] for eni in before}
    for eni in before:
        moves = [call["groups"] for call in calls if call["eni"] == eni]
        assert moves == [[untracking["GroupId"]], [isolation["GroupId"]]], eni
    assert len(calls) == 4
    assert not any(call["jira_imported"] for call in calls)
    assert "atlassian" in sys.modules  # imported afterwards, to file the issue


def test_the_original_groups_of_every_eni_are_recorded_for_release(stack: Stack) -> None:
    instance_id = stack.launch(enis=2)
    before = stack.groups_of(instance_id)
    event = stack.event("tor_client", instance_id)

    stack.invoke(event)

    record = stack.record(event["detail"]["id"])
    assert {eni: sorted(groups) for eni, groups in record["original_groups"].items()} == before
    incident = stack.record(f"instance#{instance_id}")
    assert {eni: sorted(groups) for eni, groups in incident["original_groups"].items()} == before
    assert incident["state"] == "isolated" and incident["finding_id"] == event["detail"]["id"]


def test_live_groups_win_over_the_stale_ones_in_the_finding(stack: Stack) -> None:
    instance_id = stack.launch(enis=1)
    event = stack.event("tor_client", instance_id)
    eni = next(iter(stack.groups_of(instance_id)))
    stack.ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Groups=[stack.ssh_group])

    stack.invoke(event)

    assert stack.record(event["detail"]["id"])["original_groups"] == {eni: [stack.ssh_group]}


def test_the_instance_and_its_interfaces_are_tagged_and_it_is_kept_for_evidence(stack: Stack) -> None:
    instance_id = stack.launch(enis=2)
    event = stack.event("bitcoin_tool_dns", instance_id)

    stack.invoke(event)

    ec2 = stack.ec2
    assert ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="disableApiTermination")[
        "DisableApiTermination"
    ]["Value"]
    assert (
        ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="instanceInitiatedShutdownBehavior")[
            "InstanceInitiatedShutdownBehavior"
        ]["Value"]
        == "stop"
    )
    described = stack.describe(instance_id)
    assert all(not mapping["Ebs"]["DeleteOnTermination"] for mapping in described["BlockDeviceMappings"])
    tags = {tag["Key"]: tag["Value"] for tag in described["Tags"]}
    assert tags["guardduty-responder:finding-id"] == event["detail"]["id"]
    assert described["State"]["Name"] == "running"
    # The release role of modules/member-role may move only the interfaces the responder tagged.
    interfaces = stack.ec2.describe_network_interfaces(
        NetworkInterfaceIds=[eni["NetworkInterfaceId"] for eni in described["NetworkInterfaces"]]
    )["NetworkInterfaces"]
    assert len(interfaces) == 2
    for interface in interfaces:
        assert {t["Key"]: t["Value"] for t in interface["TagSet"]}["guardduty-responder:finding-id"] == event["detail"][
            "id"
        ]


def test_groups_are_made_once_per_vpc_not_per_instance(stack: Stack) -> None:
    first, second = stack.launch(), stack.launch()

    stack.invoke(stack.event("tor_client", first))
    handler.reset()  # a cold container must find the groups by tag, not make new ones
    stack.invoke(stack.event("backdoor_cc_dns", second))

    groups = stack.ec2.describe_security_groups(
        Filters=[
            {"Name": "vpc-id", "Values": [stack.vpc_id]},
            {"Name": "tag-key", "Values": ["guardduty-responder:role"]},
        ]
    )["SecurityGroups"]
    assert len(groups) == 2


def test_a_rule_added_to_the_isolation_group_by_hand_is_removed_before_use(stack: Stack) -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    groups = group_directory(ec2).groups_for(stack.vpc_id)
    ec2.authorize_security_group_ingress(
        GroupId=groups.isolation_id,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )

    group_directory(ec2).groups_for(stack.vpc_id)

    assert stack.responder_groups()["isolation"]["IpPermissions"] == []


def test_the_pause_between_the_two_moves_is_a_setting(stack: Stack) -> None:
    stack.configure(ISOLATION_PAUSE_SECONDS="0.3")
    instance_id = stack.launch(enis=1)
    calls = record_moves(stack)

    stack.invoke(stack.event("tor_client", instance_id))

    assert len(calls) == 2
    assert calls[1]["at"] - calls[0]["at"] >= 0.3


def test_an_eni_already_on_the_isolation_group_is_never_reopened(stack: Stack) -> None:
    instance_id = stack.launch(enis=2)
    stack.invoke(stack.event("tor_client", instance_id))
    calls = record_moves(stack)

    stack.invoke(stack.event("backdoor_cc_dns", instance_id))

    assert calls == []
