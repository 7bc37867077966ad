"""Release checks where it sends the interfaces (README, "The ledger", "Command line").

The groups a release restores come from the ledger. Whatever they say, release never puts an
interface on one of the responder's own groups (recorded in the ledger, now or before, or tagged as
the responder's), on a group of another VPC than the interface's, or on a group that no longer
exists; and when any interface is refused, none is moved.
"""

from __future__ import annotations

from typing import Any

import pytest

from guardduty_responder import handler
from guardduty_responder.ledger import groups_key
from guardduty_responder.responder import ReleaseError
from guardduty_responder_tools import cli

from conftest import ACCOUNT, Stack


def isolate(stack: Stack, enis: int = 2) -> tuple[str, list[str]]:
    """An instance isolated by the responder, and its interfaces in device order."""
    instance_id = stack.launch(enis=enis)
    stack.invoke(stack.event("tor_client", instance_id))
    assert stack.isolated(instance_id)
    interfaces = sorted(
        stack.describe(instance_id)["NetworkInterfaces"], key=lambda eni: eni["Attachment"]["DeviceIndex"]
    )
    return instance_id, [eni["NetworkInterfaceId"] for eni in interfaces]


def save_groups(stack: Stack, instance_id: str, eni: str, groups: list[str]) -> None:
    """What the incident says to restore `eni` onto, as someone able to write the ledger could make it say."""
    stack.dynamodb.update_item(
        TableName="guardduty-responder-test",
        Key={"pk": {"S": f"instance#{instance_id}"}},
        UpdateExpression="SET original_groups.#eni = :groups",
        ExpressionAttributeNames={"#eni": eni},
        ExpressionAttributeValues={":groups": {"L": [{"S": group} for group in groups]}},
    )


def assert_nothing_moved(stack: Stack, instance_id: str) -> None:
    isolation = stack.record(groups_key(ACCOUNT, stack.vpc_id))["isolation_id"]
    assert all(groups == [isolation] for groups in stack.groups_of(instance_id).values()), "nothing may move"
    assert stack.record(f"instance#{instance_id}")["state"] == "isolated"
    assert stack.record(stack.event("tor_client")["detail"]["id"])["status"] == "open"


def release(instance_id: str) -> dict[str, Any]:
    return handler.get_responder().release(instance_id, released_by="analyst@example.com")


@pytest.mark.parametrize("role", ["isolation", "untracking"])
def test_release_refuses_to_put_an_interface_on_the_responder_s_groups(stack: Stack, role: str) -> None:
    instance_id, (first, second) = isolate(stack)
    group = stack.responder_groups()[role]["GroupId"]
    save_groups(stack, instance_id, second, [stack.app_group, group])

    with pytest.raises(ReleaseError) as refused:
        release(instance_id)

    assert second in str(refused.value) and group in str(refused.value) and first not in str(refused.value)
    assert_nothing_moved(stack, instance_id)


def test_release_refuses_a_group_the_responder_recorded_before_replacing_it(stack: Stack) -> None:
    instance_id, (first, _) = isolate(stack)
    former = stack.ec2.create_security_group(GroupName="former", Description="old isolation", VpcId=stack.vpc_id)
    stack.dynamodb.update_item(
        TableName="guardduty-responder-test",
        Key={"pk": {"S": groups_key(ACCOUNT, stack.vpc_id)}},
        UpdateExpression="ADD every_id :id",
        ExpressionAttributeValues={":id": {"SS": [former["GroupId"]]}},
    )
    save_groups(stack, instance_id, first, [former["GroupId"]])

    with pytest.raises(ReleaseError, match=f"{first}.*{former['GroupId']}"):
        release(instance_id)

    assert_nothing_moved(stack, instance_id)


def test_release_refuses_a_group_tagged_as_the_responder_s(stack: Stack) -> None:
    instance_id, (first, _) = isolate(stack)
    tagged = stack.ec2.create_security_group(
        GroupName="looks-like-ours",
        Description="tagged",
        VpcId=stack.vpc_id,
        TagSpecifications=[
            {"ResourceType": "security-group", "Tags": [{"Key": "guardduty-responder:role", "Value": "isolation"}]}
        ],
    )["GroupId"]
    save_groups(stack, instance_id, first, [tagged])

    with pytest.raises(ReleaseError, match=f"{first}.*{tagged}"):
        release(instance_id)

    assert_nothing_moved(stack, instance_id)


def test_release_refuses_a_group_of_another_vpc(stack: Stack) -> None:
    instance_id, (first, _) = isolate(stack)
    other_vpc = stack.ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    elsewhere = stack.ec2.create_security_group(GroupName="elsewhere", Description="other VPC", VpcId=other_vpc)
    save_groups(stack, instance_id, first, [elsewhere["GroupId"]])

    with pytest.raises(ReleaseError) as refused:
        release(instance_id)

    assert first in str(refused.value) and elsewhere["GroupId"] in str(refused.value)
    assert other_vpc in str(refused.value) and stack.vpc_id in str(refused.value)
    assert_nothing_moved(stack, instance_id)


def test_release_refuses_a_saved_group_that_no_longer_exists(stack: Stack) -> None:
    temporary = stack.ec2.create_security_group(GroupName="temporary", Description="gone", VpcId=stack.vpc_id)
    instance_id, (first, _) = isolate(stack)
    save_groups(stack, instance_id, first, [temporary["GroupId"]])
    stack.ec2.delete_security_group(GroupId=temporary["GroupId"])

    with pytest.raises(ReleaseError, match=f"{first}.*{temporary['GroupId']}.*no longer exists"):
        release(instance_id)

    assert_nothing_moved(stack, instance_id)


def test_release_still_restores_interfaces_onto_their_own_groups(stack: Stack) -> None:
    instance_id = stack.launch(enis=2)
    before = stack.groups_of(instance_id)
    stack.invoke(stack.event("tor_client", instance_id))

    assert release(instance_id)["released"] is True

    assert stack.groups_of(instance_id) == before


def test_the_command_line_release_refuses_and_names_the_interface_and_group(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    instance_id, (_, second) = isolate(stack)
    isolation = stack.responder_groups()["isolation"]["GroupId"]
    save_groups(stack, instance_id, second, [isolation])
    capsys.readouterr()

    assert cli.main(["release", instance_id]) == cli.EXIT_FAILED

    error = capsys.readouterr().err
    assert error.startswith("guardduty-responder release: failed: release refused:")
    assert second in error and isolation in error and "Traceback" not in error
    assert_nothing_moved(stack, instance_id)
