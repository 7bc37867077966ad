"""No finding lost to a lease (README, "Failure semantics"): every way out of an invocation lets go of the
finding, and a scheduled sweep resumes every unfinished finding whose lease has run out, loudly once it has
waited past a bound.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from guardduty_responder import handler
from guardduty_responder.finding import parse_finding
from guardduty_responder.ledger import Ledger
from guardduty_responder.responder import FindingInProgressError, Responder
from guardduty_responder_tools.cli import main as cli_main

from conftest import REGION, TABLE, Stack

SCHEDULED_EVENT = {
    "version": "0",
    "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2026-11-29T21:00:00Z",
    "region": REGION,
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/guardduty-responder-sweep"],
    "detail": {},
}


def die_after_claim(stack: Stack, event: dict[str, Any], *, lease_left: float = -1.0) -> str:
    """What an invocation that timed out (or was killed) right after its claim leaves: the claim and its lease.

    The claim is written by the responder's own code; the lease is then set as it would be at the moment
    the sweep runs (run out, by default).
    """
    stack.guardduty.add(event["detail"])
    responder = handler.get_responder()
    finding = parse_finding(event)
    responder.ledger.claim_finding(
        finding,
        now=time.time(),
        lease_seconds=lease_left,
        decision="isolate",
        original_groups={eni.eni_id: eni.group_ids for eni in finding.interfaces},
    )
    return finding.finding_id


def test_an_unexpected_exception_lets_go_of_the_finding(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    event = stack.event("backdoor_cc_dns", stack.launch())

    def broken(*_: Any, **__: Any) -> None:
        raise KeyError("a fault no step expects")

    monkeypatch.setattr(Responder, "_preserve_evidence", broken)
    with pytest.raises(KeyError):
        stack.invoke(event)

    assert float(stack.record(event["detail"]["id"])["lease_until"]) == 0


def test_a_delivery_meeting_an_unexpired_lease_fails_so_lambda_retries(stack: Stack) -> None:
    event = stack.event("backdoor_cc_dns", stack.launch())
    die_after_claim(stack, event, lease_left=600.0)

    with pytest.raises(FindingInProgressError):
        stack.invoke(event)


def test_the_sweep_resumes_a_finding_whose_lease_ran_out(stack: Stack) -> None:
    instance_id = stack.launch()
    finding_id = die_after_claim(stack, stack.event("backdoor_cc_dns", instance_id))

    summary = handler.lambda_handler(SCHEDULED_EVENT, None)

    assert summary["resumed"] == [finding_id] and summary["failed"] == []
    assert stack.guardduty.calls("GetFindings") == 1  # the sweep's one lookup confirms what it resumes
    assert stack.isolated(instance_id)
    assert len(stack.jira.issues) == 1 and len(stack.messages()) == 1
    record = stack.record(finding_id)
    assert record["completed"] is True and "unfinished" not in record


def test_the_sweep_leaves_a_finding_whose_lease_still_runs(stack: Stack) -> None:
    instance_id = stack.launch()
    die_after_claim(stack, stack.event("backdoor_cc_dns", instance_id), lease_left=600.0)

    summary = handler.lambda_handler(SCHEDULED_EVENT, None)

    assert summary["resumed"] == [] and not stack.isolated(instance_id) and stack.jira.issues == {}


def test_a_finished_finding_is_not_swept(stack: Stack) -> None:
    event = stack.event("backdoor_cc_dns", stack.launch())
    stack.invoke(event)
    assert "unfinished" not in stack.record(event["detail"]["id"])

    summary = handler.lambda_handler(SCHEDULED_EVENT, None)

    assert summary["resumed"] == [] and len(stack.jira.issues) == 1 and len(stack.messages()) == 1


def test_the_sweep_reads_the_ledger_through_its_index_not_a_scan(stack: Stack) -> None:
    die_after_claim(stack, stack.event("backdoor_cc_dns", stack.launch()))
    calls: list[str] = []
    handler.get_responder().clients.dynamodb.meta.events.register(
        "before-call.dynamodb", lambda model, **_: calls.append(model.name)
    )

    handler.lambda_handler(SCHEDULED_EVENT, None)

    assert "Query" in calls and "Scan" not in calls


def test_a_finding_still_unfinished_past_the_bound_is_logged_for_its_alarm(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    stack.configure(UNFINISHED_ALARM_MINUTES="30")
    instance_id = stack.launch()
    finding_id = die_after_claim(stack, stack.event("backdoor_cc_dns", instance_id))
    Ledger(stack.dynamodb, TABLE, 30).record(finding_id, values={"first_seen": "2026-01-01T00:00:00Z"})
    stack.jira.fail(503, times=10)  # it cannot finish in this sweep either

    with caplog.at_level(logging.ERROR):
        summary = handler.lambda_handler(SCHEDULED_EVENT, None)

    assert summary["failed"] == [finding_id] and stack.isolated(instance_id)
    late = [r for r in caplog.records if r.getMessage() == "finding left unfinished"]
    assert [r.finding_id for r in late] == [finding_id]  # type: ignore[attr-defined]


def test_a_recent_unfinished_finding_raises_no_alarm_line(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    die_after_claim(stack, stack.event("backdoor_cc_dns", stack.launch()))
    stack.jira.fail(503, times=10)

    with caplog.at_level(logging.ERROR):
        handler.lambda_handler(SCHEDULED_EVENT, None)

    assert not [r for r in caplog.records if r.getMessage() == "finding left unfinished"]


def test_a_finding_guardduty_no_longer_holds_is_reported_not_announced(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    finding_id = die_after_claim(stack, stack.event("backdoor_cc_dns", stack.launch()))
    stack.guardduty.forget(finding_id)

    with caplog.at_level(logging.WARNING):
        summary = handler.lambda_handler(SCHEDULED_EVENT, None)

    assert summary["missing"] == [finding_id] and stack.messages() == []
    assert any(r.getMessage() == "GuardDuty no longer holds an unfinished finding" for r in caplog.records)


def test_the_command_line_sweep_runs_the_same_code(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    instance_id = stack.launch()
    finding_id = die_after_claim(stack, stack.event("backdoor_cc_dns", instance_id))

    code = cli_main(["sweep", "--region", REGION, "--output", "json"])

    assert code == 0 and stack.isolated(instance_id)
    assert finding_id in capsys.readouterr().out
