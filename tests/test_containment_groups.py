"""Only groups the responder created are ever used or changed, whatever their tags say (README,
"How containment works, and its limits").

The ledger records the two groups of each account and VPC as the responder creates them. A group
that merely carries the responder's tag (anyone allowed to tag a security group can put it on a
production group) is never used, never has its rules rewritten, and is named in the containment
step so people hear of it; a group that merely carries the responder's group name cannot stop it
from creating its own.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from guardduty_responder import handler
from guardduty_responder.ledger import groups_key

from conftest import ACCOUNT, Stack, group_directory

PRODUCTION_RULE = {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}


def production_group(stack: Stack, name: str, **tags: str) -> str:
    """A group other instances rely on, with one rule, carrying `tags`."""
    group = stack.ec2.create_security_group(GroupName=name, Description="production", VpcId=stack.vpc_id)["GroupId"]
    stack.ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[PRODUCTION_RULE])
    if tags:
        stack.ec2.create_tags(Resources=[group], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    return group


def rules_of(stack: Stack, group_id: str) -> tuple[list[Any], list[Any]]:
    group = stack.ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    return group["IpPermissions"], group["IpPermissionsEgress"]


def recorded(stack: Stack) -> dict[str, Any] | None:
    return stack.record(groups_key(ACCOUNT, stack.vpc_id))


@pytest.mark.parametrize("role", ["untracking", "isolation"])
def test_a_group_merely_tagged_as_a_containment_group_is_never_used_or_rewritten(stack: Stack, role: str) -> None:
    shared = production_group(stack, "shared-prod", **{"guardduty-responder:role": role})
    before = rules_of(stack, shared)
    victim = stack.launch()

    summary = stack.invoke(stack.event("tor_client", victim))

    assert summary["isolated"] is True
    assert rules_of(stack, shared) == before
    assert shared not in sum(stack.groups_of(victim).values(), [])
    assert shared not in (recorded(stack) or {}).get("every_id", set())


def test_a_tagged_group_the_responder_did_not_create_is_named_in_the_issue_and_the_message(stack: Stack) -> None:
    shared = production_group(stack, "shared-prod", **{"guardduty-responder:role": "untracking"})
    victim = stack.launch()

    stack.invoke(stack.event("tor_client", victim))

    (issue,) = stack.jira.issues.values()
    assert shared in issue["fields"]["description"]
    (message,) = stack.messages()
    assert shared in message["Message"]


def test_groups_named_like_the_responder_s_cannot_stop_it_creating_its_own(stack: Stack) -> None:
    squatters = [
        production_group(stack, f"guardduty-responder-{role}", **{"guardduty-responder:role": role})
        for role in ("isolation", "untracking")
    ]
    before = [rules_of(stack, squatter) for squatter in squatters]
    victim = stack.launch()

    assert stack.invoke(stack.event("tor_client", victim))["isolated"] is True

    record = recorded(stack)
    assert record is not None
    (isolation,) = set(sum(stack.groups_of(victim).values(), []))
    assert isolation == record["isolation_id"] and isolation not in squatters
    assert rules_of(stack, isolation) == ([], [])
    assert [rules_of(stack, squatter) for squatter in squatters] == before


def test_the_groups_are_recorded_per_account_and_vpc_and_found_again_by_a_cold_container(stack: Stack) -> None:
    first, second = stack.launch(), stack.launch()
    stack.invoke(stack.event("tor_client", first))
    record = recorded(stack)
    assert record is not None
    assert {record["untracking_id"], record["isolation_id"]} == record["every_id"]

    handler.reset()  # a cold container finds them in the ledger
    stack.invoke(stack.event("backdoor_cc_dns", second))

    assert recorded(stack) == record
    assert set(sum(stack.groups_of(second).values(), [])) == {record["isolation_id"]}


def test_a_recorded_group_that_lost_its_tag_is_still_the_responder_s(stack: Stack) -> None:
    groups = group_directory().groups_for(stack.vpc_id)
    stack.ec2.delete_tags(Resources=[groups.isolation_id], Tags=[{"Key": "guardduty-responder:role"}])

    assert group_directory().groups_for(stack.vpc_id) == groups


def test_a_recorded_group_deleted_by_hand_is_created_again_and_recorded(stack: Stack) -> None:
    groups = group_directory().groups_for(stack.vpc_id)
    stack.ec2.delete_security_group(GroupId=groups.isolation_id)

    again = group_directory().groups_for(stack.vpc_id)

    assert again.untracking_id == groups.untracking_id and again.isolation_id != groups.isolation_id
    record = recorded(stack)
    assert record is not None and record["isolation_id"] == again.isolation_id
    assert groups.isolation_id in record["every_id"]  # release still knows it was the responder's
    assert rules_of(stack, again.isolation_id) == ([], [])


def test_concurrent_cold_containers_share_one_recorded_pair_and_leave_no_other_group(stack: Stack) -> None:
    results: list[Any] = []
    start = threading.Barrier(6)

    def cold_container() -> None:
        start.wait()
        results.append(group_directory().groups_for(stack.vpc_id))

    threads = [threading.Thread(target=cold_container) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len({(groups.untracking_id, groups.isolation_id) for groups in results}) == 1
    record = recorded(stack)
    assert record is not None and (record["untracking_id"], record["isolation_id"]) == (
        results[0].untracking_id,
        results[0].isolation_id,
    )
    tagged = stack.ec2.describe_security_groups(
        Filters=[
            {"Name": "vpc-id", "Values": [stack.vpc_id]},
            {"Name": "tag-key", "Values": ["guardduty-responder:role"]},
        ]
    )["SecurityGroups"]
    assert {group["GroupId"] for group in tagged} == record["every_id"]
