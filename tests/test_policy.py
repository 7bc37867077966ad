"""Decisions (README, "What happens to a finding"): pure code, every outcome with its reason."""

from __future__ import annotations

import pytest

from guardduty_responder.finding import parse_finding
from guardduty_responder.policy import Action, decide
from guardduty_responder.rules import default_rules

from conftest import Stack, load_event

EXEMPT = "guardduty-responder:exempt"


@pytest.mark.parametrize(
    "fixture,kwargs,action,code",
    [
        ("tor_client", {}, Action.ISOLATE, "isolate"),
        ("sample_trojan_dns", {}, Action.RECORD, "sample"),
        ("sample_flat_flag", {"dry_run": True}, Action.RECORD, "sample"),
        ("port_probe_target", {}, Action.REPORT, "report"),
        ("tor_client", {"instance_tags": {EXEMPT: "true"}}, Action.HOLD, "exempt"),
        ("tor_client", {"instance_tags": {EXEMPT: "TRUE "}}, Action.HOLD, "exempt"),
        ("tor_client", {"instance_tags": {EXEMPT: "false"}}, Action.ISOLATE, "isolate"),
        ("tor_client", {"dry_run": True}, Action.HOLD, "dry-run"),
        ("tor_client", {"breaker_open": True}, Action.HOLD, "circuit-breaker"),
    ],
)
def test_decisions_and_their_reasons(fixture: str, kwargs: dict, action: Action, code: str) -> None:
    finding = parse_finding(load_event(fixture))
    options = {"rules": default_rules(), "dry_run": False, "exempt_tag_key": EXEMPT, **kwargs}

    decision = decide(finding, **options)

    assert (decision.action, decision.code) == (action, code)
    assert decision.reason
    assert decision.opens_ticket == (action in (Action.ISOLATE, Action.HOLD, Action.REPORT))


def test_live_tags_win_over_the_tags_in_the_finding() -> None:
    event = load_event("tor_client")
    event["detail"]["resource"]["instanceDetails"]["tags"].append({"key": EXEMPT, "value": "true"})
    finding = parse_finding(event)

    rules = default_rules()
    assert decide(finding, rules=rules, dry_run=False, exempt_tag_key=EXEMPT).code == "exempt"
    assert decide(finding, rules=rules, dry_run=False, exempt_tag_key=EXEMPT, instance_tags={}).code == "isolate"


def test_an_exempt_instance_is_ticketed_and_notified_but_not_touched(stack: Stack) -> None:
    instance_id = stack.launch(tags={"Name": "bastion", EXEMPT: "true"})
    before = stack.groups_of(instance_id)
    event = stack.event("ssh_bruteforce", instance_id)

    summary = stack.invoke(event)

    assert (summary["action"], summary["decision"]) == ("hold", "exempt")
    assert stack.groups_of(instance_id) == before and stack.snapshots_of(instance_id) == []
    assert len(stack.jira.issues) == 1
    issue = next(iter(stack.jira.issues.values()))
    assert "exemption tag" in issue["fields"]["description"]
    message = stack.messages()[0]
    assert message["MessageAttributes"]["action"]["Value"] == "hold" and "REVIEW" in message["Subject"]
    reason = stack.record(event["detail"]["id"])["reason"]
    assert reason.startswith('rule "isolate-implicated"') and "carries the exemption tag" in reason


def test_dry_run_reads_and_reports_but_changes_nothing(stack: Stack) -> None:
    stack.configure(DRY_RUN="true")
    instance_id = stack.launch(enis=2)
    before = stack.groups_of(instance_id)
    described_before = stack.describe(instance_id)

    summary = stack.invoke(stack.event("backdoor_cc_dns", instance_id))

    assert summary["decision"] == "dry-run" and summary["isolated"] is False
    assert stack.groups_of(instance_id) == before
    assert stack.responder_groups() == {}
    assert stack.snapshots_of(instance_id) == []
    assert stack.describe(instance_id)["Tags"] == described_before["Tags"]
    issue = next(iter(stack.jira.issues.values()))
    assert all(eni in issue["fields"]["description"] for eni in before)
    assert "dry" in stack.messages()[0]["Message"].lower()
