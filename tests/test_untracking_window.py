"""The untracking group is open to the world: no way out of an invocation leaves an interface on it
(README, "How containment works, and its limits").

A failure of the move to the isolation group, of any kind (an AWS error, a read timeout, a refused
refresh of a member account's credentials), is retried, then rolled back to the interface's own
groups; what cannot be rolled back is logged at CRITICAL, which an alarm watches. A retry that no
longer isolates (the instance exempted since, dry run switched on) takes interfaces an earlier
attempt left on the untracking group back to their own groups. Too little time left in the
invocation moves nothing.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from guardduty_responder import handler
from guardduty_responder.accounts import AccountAccessError
from guardduty_responder.isolation import ContainmentError

from conftest import Stack
from terraform_support import ROOT

MAIN_TF = (ROOT / "modules" / "responder" / "main.tf").read_text()


class MoveFaults:
    """Fails chosen ModifyNetworkInterfaceAttribute requests before they reach AWS.

    `fail(groups)` says, for the groups a request moves an interface to, whether it fails and how:
    it returns the exception to raise, or None to let the request through.
    """

    def __init__(self, stack: Stack, fail: Callable[[list[str], int], BaseException | None]) -> None:
        self.stack = stack
        self.fail = fail
        self.requests: list[list[str]] = []
        handler.get_responder().clients.ec2.meta.events.register(
            "before-parameter-build.ec2.ModifyNetworkInterfaceAttribute", self._check
        )

    def _check(self, params: dict[str, Any], **_: Any) -> None:
        if "Groups" not in params:
            return  # the connection-tracking timeouts, after containment
        groups = list(params.get("Groups", []))
        self.requests.append(groups)
        error = self.fail(groups, sum(1 for seen in self.requests if seen == groups))
        if error is not None:
            raise error

    def to(self, role: str) -> list[list[str]]:
        group = self.stack.responder_groups()[role]["GroupId"]
        return [groups for groups in self.requests if groups == [group]]


def _isolation_group(stack: Stack) -> str | None:
    return stack.responder_groups().get("isolation", {}).get("GroupId")


def _timeout() -> ReadTimeoutError:
    return ReadTimeoutError(endpoint_url="https://ec2.us-east-1.amazonaws.com/")


def _throttled() -> ClientError:
    return ClientError({"Error": {"Code": "RequestLimitExceeded", "Message": "slow down"}}, "ModifyNetworkInterface")


def _untracking_enis(stack: Stack, instance_id: str) -> list[str]:
    untracking = stack.responder_groups()["untracking"]["GroupId"]
    return [eni for eni, groups in stack.groups_of(instance_id).items() if untracking in groups]


def test_a_read_timeout_on_the_isolation_move_is_retried_and_the_instance_ends_isolated(stack: Stack) -> None:
    instance = stack.launch(enis=2)
    handler.get_responder()
    faults = MoveFaults(stack, lambda groups, n: _timeout() if groups == [_isolation_group(stack)] and n == 1 else None)

    summary = stack.invoke(stack.event("backdoor_cc_dns", instance))

    assert summary["isolated"] is True
    assert stack.isolated(instance)
    assert len(faults.to("isolation")) == 3  # two interfaces, one of them twice


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(_timeout, id="read timeout"),
        pytest.param(_throttled, id="throttled past botocore's retries"),
        pytest.param(lambda: AccountAccessError("the member role refused to refresh its credentials"), id="refresh"),
    ],
)
def test_an_isolation_move_that_keeps_failing_is_rolled_back_to_the_interfaces_own_groups(
    stack: Stack, error: Callable[[], BaseException]
) -> None:
    instance = stack.launch(enis=2)
    before = stack.groups_of(instance)
    handler.get_responder()
    MoveFaults(stack, lambda groups, n: error() if groups == [_isolation_group(stack)] else None)

    with pytest.raises(ContainmentError, match="isolation"):
        stack.invoke(stack.event("backdoor_cc_dns", instance))

    assert stack.groups_of(instance) == before
    assert _untracking_enis(stack, instance) == []


def test_an_interface_that_cannot_be_rolled_back_is_logged_critical_with_its_id(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The JSON line CloudWatch Logs receives: the alarm's metric filter matches its level (test_terraform.py)."""
    # The JSON handler keeps the stdout it was configured with; a fresh one writes to this test's.
    monkeypatch.setattr(logging.getLogger("guardduty_responder"), "handlers", [])
    instance = stack.launch()
    handler.get_responder()
    untracking: list[str] = []

    def only_the_untracking_move(groups: list[str], n: int) -> BaseException | None:
        if not untracking:
            untracking.extend(g["GroupId"] for g in [stack.responder_groups()["untracking"]])
        return None if groups == untracking else _timeout()

    MoveFaults(stack, only_the_untracking_move)
    capsys.readouterr()

    with pytest.raises(ContainmentError):
        stack.invoke(stack.event("backdoor_cc_dns", instance))

    eni = _untracking_enis(stack, instance)
    assert len(eni) == 1
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    critical = [line for line in lines if line["level"] == "CRITICAL"]
    assert critical and critical[0]["eni"] == eni[0]
    assert "untracking group" in critical[0]["message"]
    # The alarm's metric filter (main.tf) selects that line.
    pattern = re.search(
        r'resource "aws_cloudwatch_log_metric_filter" "critical" \{.*?pattern\s*=\s*"(.*?)"\n', MAIN_TF, re.S
    )
    assert pattern is not None
    key, value = re.fullmatch(r'\{ \$\.(\w+) = \\"(\w+)\\" \}', pattern.group(1)).groups()  # type: ignore[union-attr]
    assert critical[0][key] == value


def test_too_little_time_left_moves_nothing_and_the_retry_isolates(stack: Stack) -> None:
    instance = stack.launch()
    before = stack.groups_of(instance)
    event = stack.event("backdoor_cc_dns", instance)
    handler.get_responder()
    faults = MoveFaults(stack, lambda groups, n: None)

    with pytest.raises(ContainmentError, match="time"):
        stack.invoke(event, remaining_seconds=3)

    assert faults.requests == []
    assert stack.groups_of(instance) == before
    assert stack.invoke(event)["isolated"] is True
    assert stack.isolated(instance)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param("exempt", id="exemption tag set since"),
        pytest.param("dry-run", id="dry run switched on since"),
    ],
)
def test_a_retry_that_no_longer_isolates_takes_interfaces_off_the_untracking_group(stack: Stack, change: str) -> None:
    """The first attempt leaves the interface on the untracking group (isolation move and roll-back both
    refused); the retry, deciding not to isolate, puts it back on its own groups."""
    instance = stack.launch()
    before = stack.groups_of(instance)
    event = stack.event("tor_client", instance)
    handler.get_responder()
    refusing = {"on": True}
    untracking: list[str] = []

    def only_the_untracking_move(groups: list[str], n: int) -> BaseException | None:
        if not untracking:
            untracking.append(stack.responder_groups()["untracking"]["GroupId"])
        return _throttled() if refusing["on"] and groups != untracking else None

    MoveFaults(stack, only_the_untracking_move)
    with pytest.raises(ContainmentError):
        stack.invoke(event)
    assert _untracking_enis(stack, instance), "precondition: left on the untracking group"

    refusing["on"] = False
    if change == "exempt":
        stack.ec2.create_tags(Resources=[instance], Tags=[{"Key": "guardduty-responder:exempt", "Value": "true"}])
    else:
        stack.configure(DRY_RUN="true")
    retried = stack.invoke(event)

    assert retried["isolated"] is False
    assert stack.groups_of(instance) == before


def test_an_unanswered_move_to_the_untracking_group_is_rolled_back_as_if_it_had_been_made(stack: Stack) -> None:
    """A timeout says nothing of whether EC2 made the move: the ENI is put back on its own groups."""
    instance = stack.launch()
    (eni, own), *_ = stack.groups_of(instance).items()
    handler.get_responder()
    untracking: list[str] = []

    def no_answer_to_the_untracking_move(groups: list[str], n: int) -> BaseException | None:
        if not untracking:
            untracking.append(stack.responder_groups()["untracking"]["GroupId"])
        return _timeout() if groups == untracking else None

    faults = MoveFaults(stack, no_answer_to_the_untracking_move)

    with pytest.raises(ContainmentError, match="untracking group failed"):
        stack.invoke(stack.event("backdoor_cc_dns", instance))

    assert sorted(faults.requests[-1]) == own
    assert stack.groups_of(instance) == {eni: own}
