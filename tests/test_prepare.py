"""`guardduty-responder prepare` (README, "Command line"): the containment groups made before the first incident."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from guardduty_responder import handler
from guardduty_responder.clients import AwsClients
from guardduty_responder.ledger import groups_key
from guardduty_responder_tools import cli
from test_accounts import MEMBER, member, member_event  # noqa: F401 (member is a fixture)

from conftest import ACCOUNT, Network, Stack

GROUP_MAKING = ("CreateSecurityGroup", "AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress", "CreateTags")


def calls_of(stack: Stack) -> list[tuple[str, dict[str, Any]]]:
    """Every EC2 call the responder makes, in order, with its parameters."""
    calls: list[tuple[str, dict[str, Any]]] = []
    handler.get_responder().clients.ec2.meta.events.register(
        "provide-client-params.ec2", lambda params, model, **_: calls.append((model.name, dict(params)))
    )
    return calls


def test_after_prepare_a_first_containment_makes_no_group_creating_call_before_it(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    assert stack.record(groups_key(ACCOUNT, stack.vpc_id)) is None, "a VPC the responder never saw"

    assert cli.main(["--output", "json", "prepare"]) == cli.EXIT_OK

    prepared = {vpc["vpc_id"]: vpc for vpc in json.loads(capsys.readouterr().out)["vpcs"]}
    assert prepared[stack.vpc_id]["state"] == "created"
    assert stack.record(groups_key(ACCOUNT, stack.vpc_id))["isolation_id"] == prepared[stack.vpc_id]["isolation"]
    instance_id = stack.launch()
    calls = calls_of(stack)

    stack.invoke(stack.event("backdoor_cc_dns", instance_id))

    moves = [
        i for i, (name, params) in enumerate(calls) if name == "ModifyNetworkInterfaceAttribute" and "Groups" in params
    ]
    before = [name for name, _ in calls[: moves[-1]]]
    assert not set(before) & set(GROUP_MAKING), before
    assert stack.isolated(instance_id)
    assert stack.responder_groups()["isolation"]["GroupId"] == prepared[stack.vpc_id]["isolation"]


def test_without_prepare_the_first_containment_creates_the_groups_first(stack: Stack) -> None:
    instance_id = stack.launch()
    calls = calls_of(stack)

    stack.invoke(stack.event("backdoor_cc_dns", instance_id))

    moves = [
        i for i, (name, params) in enumerate(calls) if name == "ModifyNetworkInterfaceAttribute" and "Groups" in params
    ]
    assert "CreateSecurityGroup" in [name for name, _ in calls[: moves[0]]], "what prepare saves"


def test_prepare_again_finds_the_recorded_groups_and_creates_none(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["--output", "json", "prepare", "--vpc", stack.vpc_id]) == cli.EXIT_OK
    first = json.loads(capsys.readouterr().out)["vpcs"]

    assert cli.main(["--output", "json", "prepare", "--vpc", stack.vpc_id]) == cli.EXIT_OK

    again = json.loads(capsys.readouterr().out)["vpcs"]
    assert [vpc["state"] for vpc in first] == ["created"] and [vpc["state"] for vpc in again] == ["recorded already"]
    assert again[0]["isolation"] == first[0]["isolation"]
    assert (
        len(
            stack.ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [stack.vpc_id]}])["SecurityGroups"]
        )
        == 5
    )


def test_prepare_names_a_vpc_that_does_not_exist_and_exits_1(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["prepare", "--vpc", "vpc-0123456789abcdef0"]) == cli.EXIT_FAILED

    assert "no such VPC in the accounts and regions given: vpc-0123456789abcdef0" in capsys.readouterr().err


def test_prepare_reaches_a_member_account_through_the_member_role(
    stack: Stack,
    member: Network,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["--output", "json", "prepare", "--account", MEMBER, "--vpc", member.vpc_id]) == cli.EXIT_OK

    (prepared,) = json.loads(capsys.readouterr().out)["vpcs"]
    assert (prepared["account"], prepared["vpc_id"], prepared["state"]) == (MEMBER, member.vpc_id, "created")
    assert stack.record(groups_key(MEMBER, member.vpc_id))["isolation_id"] == prepared["isolation"]
    made = member.ec2.describe_security_groups(GroupIds=[prepared["isolation"]])["SecurityGroups"]
    assert made[0]["VpcId"] == member.vpc_id
    instance_id = stack.launch(network=member)
    calls: list[str] = []
    member_estate = handler.get_responder().estates.for_account(MEMBER)
    member_estate.clients.ec2.meta.events.register(
        "provide-client-params.ec2", lambda model, **_: calls.append(model.name)
    )

    stack.invoke(member_event(stack, "backdoor_cc_dns", instance_id, member))

    assert stack.isolated(instance_id, member.ec2)
    assert not set(calls[: calls.index("ModifyNetworkInterfaceAttribute")]) & set(GROUP_MAKING), calls


def test_prepare_names_an_account_it_cannot_reach_and_exits_1(
    stack: Stack,
    member: Network,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # STS refusing the member role, as AWS does for a wrong external id (moto's AssumeRole checks none).
    refusal = ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized"}}, "AssumeRole")

    def refuse(**_: Any) -> None:
        raise refusal

    build = AwsClients._client

    def refusing(self: AwsClients, service: str) -> Any:
        client = build(self, service)
        if service == "sts":
            client.meta.events.register("before-call.sts.AssumeRole", refuse)
        return client

    monkeypatch.setattr(AwsClients, "_client", refusing)

    assert cli.main(["--output", "json", "prepare", "--account", MEMBER]) == cli.EXIT_FAILED

    (failed,) = json.loads(capsys.readouterr().out)["vpcs"]
    assert failed["account"] == MEMBER and failed["state"] == "failed"
    assert f"cannot act in account {MEMBER}" in failed["error"] and "AccessDenied" in failed["error"]
