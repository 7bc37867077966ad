"""Exemptions the attacker cannot grant (README, "Exemptions", "Command line", "Threat model").

A person exempts an instance in the responder's own ledger (`guardduty-responder exempt`), with a
reason and an expiry; the responder honours a current ledger exemption exactly as the exemption tag
(recorded, ticketed and announced, nothing isolated), reading it at the same time as the claim. The
tag, which a compromised instance's own role may be able to write, can be turned off.
"""

from __future__ import annotations

import datetime
import json
import threading
import time
from typing import Any

import pytest

from guardduty_responder import handler
from guardduty_responder.finding import parse_finding
from guardduty_responder.ledger import Ledger
from guardduty_responder.policy import Action, Exemption, decide
from guardduty_responder.rules import default_rules
from guardduty_responder_tools import cli

from conftest import TABLE, Stack, load_event

EXEMPT_TAG = "guardduty-responder:exempt"
MOTO_CALLER = "arn:aws:sts::123456789012:user/moto"


def iso(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def in_(**delta: float) -> str:
    return iso(datetime.datetime.now(datetime.UTC) + datetime.timedelta(**delta))


def exempt(*argv: str) -> int:
    return cli.main(["exempt", *argv])


# -- the responder honours it ----------------------------------------------------------------------


def test_a_ledger_exemption_holds_an_isolation_as_the_tag_does(stack: Stack) -> None:
    instance_id = stack.launch()
    before = stack.groups_of(instance_id)
    until = in_(days=2)
    assert exempt(instance_id, "--reason", "patching the kernel, CHG-1234", "--until", until) == cli.EXIT_OK
    event = stack.event("tor_client", instance_id)

    summary = stack.invoke(event)

    assert (summary["action"], summary["decision"]) == ("hold", "exempt")
    assert stack.groups_of(instance_id) == before and stack.snapshots_of(instance_id) == []
    reason = stack.record(event["detail"]["id"])["reason"]
    assert reason.startswith('rule "isolate-implicated"') and "exempt in the responder's ledger" in reason
    assert until in reason and MOTO_CALLER in reason and "CHG-1234" in reason
    (issue,) = stack.jira.issues.values()
    assert "exempt in the responder" in issue["fields"]["description"]
    (message,) = stack.messages()
    assert message["MessageAttributes"]["action"]["Value"] == "hold" and "REVIEW" in message["Subject"]


def test_an_expired_ledger_exemption_holds_nothing(stack: Stack) -> None:
    instance_id = stack.launch()
    ledger = Ledger(stack.dynamodb, TABLE, 30)
    ledger.put_exemption(instance_id, reason="long over", until=time.time() - 60, by="analyst", now=time.time() - 3600)

    summary = stack.invoke(stack.event("tor_client", instance_id))

    assert summary["decision"] == "isolate" and stack.isolated(instance_id)


def test_a_removed_exemption_holds_nothing(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    instance_id = stack.launch()
    assert exempt(instance_id, "--reason", "load test", "--until", in_(hours=3)) == cli.EXIT_OK

    assert exempt(instance_id, "--remove") == cli.EXIT_OK

    assert stack.record(f"exempt#{instance_id}") is None
    assert stack.invoke(stack.event("tor_client", instance_id))["decision"] == "isolate"
    capsys.readouterr()
    assert exempt(instance_id, "--remove") == cli.EXIT_FAILED
    assert f"no exemption for {instance_id}" in capsys.readouterr().err


def test_the_exemption_is_read_while_the_claim_is_in_flight(stack: Stack) -> None:
    """Nothing is added in sequence before containment: the read runs beside the claim, not after it."""
    instance_id = stack.launch()
    event = stack.event("tor_client", instance_id)
    both_in_flight = threading.Barrier(2, timeout=5)
    met: list[str] = []

    def meet(name: str) -> Any:
        def wait(params: dict[str, Any], **_: Any) -> None:
            if name == "claim" or f"exempt#{instance_id}".encode() in params.get("body", b""):
                try:
                    both_in_flight.wait()
                    met.append(name)
                except threading.BrokenBarrierError:
                    met.append(f"{name} alone")

        return wait

    dynamodb = handler.get_responder().clients.dynamodb
    dynamodb.meta.events.register("before-call.dynamodb.TransactWriteItems", meet("claim"))
    dynamodb.meta.events.register("before-call.dynamodb.GetItem", meet("exemption"))

    assert stack.invoke(event)["isolated"] is True

    assert sorted(met) == ["claim", "exemption"]


def test_with_the_tag_exemption_turned_off_a_tagged_instance_is_isolated(stack: Stack) -> None:
    stack.configure(EXEMPT_TAG_KEY="")
    instance_id = stack.launch(tags={"Name": "web", EXEMPT_TAG: "true"})

    summary = stack.invoke(stack.event("tor_client", instance_id))

    assert summary["decision"] == "isolate" and stack.isolated(instance_id)


def test_the_decision_holds_for_a_ledger_exemption_and_says_whose() -> None:
    finding = parse_finding(load_event("tor_client"))
    exemption = Exemption(finding.instance_id, "change freeze", "2030-01-01T00:00:00Z", "arn:aws:iam::1:role/sec")

    decision = decide(finding, rules=default_rules(), dry_run=True, exempt_tag_key="", exemption=exemption)

    assert (decision.action, decision.code) == (Action.HOLD, "exempt")
    assert "2030-01-01T00:00:00Z" in decision.reason and "arn:aws:iam::1:role/sec" in decision.reason


# -- the command --------------------------------------------------------------------------------------


def test_exempt_records_who_why_and_until_and_expires_after_it(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    instance_id = stack.launch()
    until = in_(days=7)

    assert exempt(instance_id, "--reason", "forensics image", "--until", until, "--output", "json") == cli.EXIT_OK

    printed = json.loads(capsys.readouterr().out)
    item = stack.record(f"exempt#{instance_id}")
    assert item is not None and printed["instance_id"] == instance_id
    assert (item["reason"], item["until"], item["by"]) == ("forensics image", until, MOTO_CALLER)
    until_epoch = datetime.datetime.fromisoformat(until).timestamp()
    assert item["expires_at"] > until_epoch, "DynamoDB's TTL removes it only after it ran out"


@pytest.mark.parametrize(
    "argv,says",
    [
        (["--reason", "x", "--until", "2020-01-01T00:00:00Z"], "in the past"),
        (["--reason", "x", "--until", "+100d"], "ISO-8601"),
        (["--reason", "x", "--until", "2030-01-01T00:00:00"], "time zone"),
        (["--reason", "x", "--until", "<far>"], "90 days"),
        (["--reason", "   ", "--until", "<soon>"], "reason"),
        (["--until", "<soon>"], "--reason"),
        (["--reason", "x"], "--until"),
        (["--remove", "--reason", "x"], "--remove"),
    ],
    ids=["past", "not-iso", "no-zone", "too-far", "blank-reason", "no-reason", "no-until", "remove-with-reason"],
)
def test_exempt_refuses_what_it_cannot_honour_clearly(
    stack: Stack, argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    instance_id = stack.launch()
    argv = [{"<far>": in_(days=91), "<soon>": in_(hours=1)}.get(arg, arg) for arg in argv]

    assert exempt(instance_id, *argv) == cli.EXIT_USAGE

    assert says in capsys.readouterr().err
    assert stack.record(f"exempt#{instance_id}") is None


def test_status_lists_the_current_exemptions(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    current, expired = stack.launch(), stack.launch()
    until = in_(days=1)
    assert exempt(current, "--reason", "database migration", "--until", until) == cli.EXIT_OK
    Ledger(stack.dynamodb, TABLE, 30).put_exemption(
        expired, reason="over", until=time.time() - 1, by="analyst", now=time.time() - 60
    )
    capsys.readouterr()

    assert cli.main(["status", "--output", "json"]) == cli.EXIT_OK
    listed = json.loads(capsys.readouterr().out)
    assert [(item["instance_id"], item["until"], item["reason"]) for item in listed["exemptions"]] == [
        (current, until, "database migration")
    ]
    assert listed["findings"] == [] and listed["instances"] == []

    assert cli.main(["status"]) == cli.EXIT_OK
    table = capsys.readouterr().out
    assert "Exemptions (1)" in table and current in table and "database migration" in table and expired not in table


def test_exempt_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["exempt", "--help"]) == cli.EXIT_OK
    assert "--until" in capsys.readouterr().out
