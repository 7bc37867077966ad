"""One instance, one response at a time (README, "Failure semantics"): findings about one instance that
arrive together are serialised by a lock on the instance, the instance is described again under the
lock, and no incident is recorded whose saved groups miss one of its interfaces.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from guardduty_responder import handler
from guardduty_responder.finding import parse_finding
from guardduty_responder.ledger import Ledger, LedgerError
from guardduty_responder.responder import FindingInProgressError

from conftest import TABLE, Stack


def moves_of(responder: Any) -> list[tuple[str, tuple[str, ...]]]:
    """Every interface move the responder's EC2 client makes: (ENI, groups), in order."""
    moves: list[tuple[str, tuple[str, ...]]] = []

    def seen(params: dict[str, Any], **_: Any) -> None:
        if "Groups" in params:  # not the connection-tracking timeouts
            moves.append((params["NetworkInterfaceId"], tuple(params.get("Groups", ()))))

    responder.clients.ec2.meta.events.register("provide-client-params.ec2.ModifyNetworkInterfaceAttribute", seen)
    return moves


def test_a_second_finding_arriving_mid_isolation_waits_and_never_reopens_an_interface(stack: Stack) -> None:
    instance_id = stack.launch(enis=2)
    before = stack.groups_of(instance_id)
    first, second = stack.event("backdoor_cc_dns", instance_id), stack.event("tor_client", instance_id)
    other_container = stack.responder()  # the second finding reaches another, cold container
    responder = handler.get_responder()
    other_moves = moves_of(other_container)
    outcome: dict[str, Any] = {}

    def second_arrives(**_: Any) -> None:
        # Once, just before the first finding's first move: the second finding is delivered in full.
        if outcome:
            return
        outcome["started"] = True
        try:
            outcome["summary"] = other_container.respond(second, remaining_seconds=60)
        except FindingInProgressError as error:
            outcome["error"] = error

    responder.clients.ec2.meta.events.register("before-call.ec2.ModifyNetworkInterfaceAttribute", second_arrives)

    stack.invoke(first)
    waited = "error" in outcome
    if waited:
        outcome["summary"] = stack.invoke(second)  # Lambda's retry

    assert waited, "the second finding must wait until the first is done with the instance"
    assert other_moves == []  # it never moved an interface the first was moving
    incident = stack.record(f"instance#{instance_id}")
    assert incident["finding_id"] == first["detail"]["id"]
    assert {eni: sorted(groups) for eni, groups in incident["original_groups"].items()} == {
        eni: sorted(groups) for eni, groups in before.items()
    }
    assert stack.isolated(instance_id)
    assert len(stack.jira.issues) == 1 and outcome["summary"]["jira_key"] == next(iter(stack.jira.issues))


def test_a_retried_finding_describes_the_instance_again_under_the_lock(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance_id = stack.launch()
    event = stack.event("backdoor_cc_dns", instance_id)
    stack.guardduty.add(event["detail"])
    finding = parse_finding(event)
    ledger = Ledger(stack.dynamodb, TABLE, 30)
    # An earlier invocation claimed the finding, then died: its lease has run out.
    ledger.claim_finding(finding, now=time.time(), lease_seconds=-1, decision="isolate", original_groups={})
    calls: list[str] = []
    responder = handler.get_responder()
    responder.clients.ec2.meta.events.register("before-call.ec2", lambda model, **_: calls.append(model.name))
    lock = Ledger.lock_instance

    def locking(self: Ledger, instance: str, **kwargs: Any) -> bool:
        calls.append(f"lock {instance}")
        return lock(self, instance, **kwargs)

    monkeypatch.setattr(Ledger, "lock_instance", locking)

    stack.invoke(event)

    locked = calls.index(f"lock {instance_id}")
    assert "DescribeInstances" in calls[locked : calls.index("ModifyNetworkInterfaceAttribute")]
    assert stack.isolated(instance_id)


def test_an_instance_locked_by_another_response_fails_the_delivery_for_a_retry(stack: Stack) -> None:
    instance_id = stack.launch()
    ledger = Ledger(stack.dynamodb, TABLE, 30)
    assert ledger.lock_instance(instance_id, holder="another-finding", now=time.time(), lease_seconds=600)

    with pytest.raises(FindingInProgressError, match=instance_id):
        stack.invoke(stack.event("backdoor_cc_dns", instance_id))

    assert not stack.isolated(instance_id)
    assert float(stack.record(f"lock#{instance_id}")["lease_until"]) > time.time()  # still the other's


def test_a_forged_delivery_leaves_no_lock_behind(stack: Stack) -> None:
    instance_id = stack.launch()
    forged = stack.event("backdoor_cc_dns", instance_id, finding_id=uuid.uuid4().hex)
    stack.guardduty.forget(forged["detail"]["id"])  # GuardDuty never raised it

    assert stack.invoke(forged, raised_by_guardduty=False)["outcome"] == "unconfirmed"

    assert stack.record(f"lock#{instance_id}") is None


def test_an_incident_missing_an_interfaces_saved_groups_is_never_recorded(stack: Stack) -> None:
    instance_id = stack.launch(enis=2)
    eni_ids = list(stack.groups_of(instance_id))
    finding = parse_finding(stack.event("backdoor_cc_dns", instance_id))
    ledger = Ledger(stack.dynamodb, TABLE, 30)

    with pytest.raises(LedgerError, match=eni_ids[1]):
        ledger.claim_incident(
            instance_id=instance_id,
            finding=finding,
            original_groups={eni_ids[0]: ["sg-0123456789abcdef0"]},
            interfaces=eni_ids,
            now=time.time(),
        )

    assert stack.record(f"instance#{instance_id}") is None


def test_the_lock_is_let_go_once_the_instance_is_contained(stack: Stack) -> None:
    instance_id = stack.launch()

    stack.invoke(stack.event("backdoor_cc_dns", instance_id))

    assert float(stack.record(f"lock#{instance_id}")["lease_until"]) == 0
