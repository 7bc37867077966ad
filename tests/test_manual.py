"""Containment a person starts (README, "Isolating by hand"): `guardduty-responder isolate` runs the response on an
instance the operator names, under their credentials, as a manual incident: no GuardDuty finding to confirm, no
rule, no approval; counted by the circuit breaker, never refused by it; released like any incident.
"""

from __future__ import annotations

import copy
import datetime
from typing import Any

import pytest

from guardduty_responder import handler
from guardduty_responder_tools import cli

from conftest import LambdaContext, Stack

SCHEDULED = {"source": "aws.events", "detail-type": "Scheduled Event", "id": "sweep", "detail": {}}
MOTO_CALLER = "arn:aws:sts::123456789012:user/moto"


def isolate(instance_id: str, *extra: str) -> int:
    return cli.main(["--output", "json", "isolate", instance_id, *extra])


def printed(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    import json

    out = capsys.readouterr().out
    return json.loads(out[out.index("{") :])  # type: ignore[no-any-return]


def test_a_person_isolates_an_instance_by_hand_and_releases_it(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    instance_id = stack.launch(enis=2)
    before = stack.groups_of(instance_id)
    capsys.readouterr()

    assert isolate(instance_id, "--reason", "beaconing seen by the EDR, INC-42", "--by", "Ana") == cli.EXIT_OK

    summary = printed(capsys)
    assert stack.isolated(instance_id) and len(stack.snapshots_of(instance_id)) == 2
    assert (summary["action"], summary["decision"]) == ("isolate", "manual")
    record = stack.record(summary["finding_id"])
    assert summary["finding_id"].startswith("manual-") and record["completed"] is True
    assert record["manual"]["by"] == "Ana" and record["manual"]["caller_arn"] == MOTO_CALLER
    assert "INC-42" in record["reason"] and "no GuardDuty finding" in record["reason"]
    # Nothing was asked of GuardDuty: there is no finding to confirm.
    assert stack.guardduty.calls("GetFindings") == 0
    (issue,) = stack.jira.issues.values()
    assert issue["key"] == summary["jira_key"] and "isolated by hand by Ana" in issue["fields"]["summary"] + issue[
        "fields"
    ]["description"].replace("\\", "")
    (message,) = stack.messages()
    assert "ISOLATED" in message["Subject"] and "INC-42" in message["Message"]

    assert cli.main(["release", instance_id, "--released-by", "Ana"]) == cli.EXIT_OK

    assert stack.groups_of(instance_id) == before
    assert stack.record(summary["finding_id"])["status"] == "released"


def test_a_manual_isolation_is_counted_by_the_breaker_and_never_refused_by_it(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.configure(MAX_ISOLATIONS_PER_HOUR="1")
    first, second = stack.launch(), stack.launch()
    stack.invoke(stack.event("tor_client", first))  # the hour's one place
    capsys.readouterr()

    assert isolate(second, "--reason", "confirmed compromise") == cli.EXIT_OK

    summary = printed(capsys)
    assert stack.isolated(second)
    hour = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H")
    counted = stack.record(f"breaker#123456789012#{hour}")["findings"]
    assert summary["finding_id"] in counted and len(counted) == 2


def test_a_manual_isolation_of_an_exempt_instance_is_refused_with_nothing_done(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    instance_id = stack.launch()
    before = stack.groups_of(instance_id)
    until = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert cli.main(["exempt", instance_id, "--reason", "kernel patching", "--until", until]) == cli.EXIT_OK
    capsys.readouterr()

    assert isolate(instance_id, "--reason", "x") == cli.EXIT_FAILED

    assert "exempt in the responder's ledger" in capsys.readouterr().err
    assert stack.groups_of(instance_id) == before and stack.jira.issues == {}


def test_an_unfinished_manual_isolation_is_finished_by_the_sweep(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    instance_id = stack.launch()
    stack.jira.fail(503, times=20)
    capsys.readouterr()

    assert isolate(instance_id, "--reason", "ransomware note found") == cli.EXIT_FAILED  # contained, ticket left

    assert stack.isolated(instance_id) and stack.jira.issues == {}
    stack.jira.heal()
    swept = handler.lambda_handler(copy.deepcopy(SCHEDULED), LambdaContext(60))

    (finding_id,) = swept["resumed"]
    assert finding_id.startswith("manual-") and swept["missing"] == []
    (issue,) = stack.jira.issues.values()
    assert "ransomware note found" in issue["fields"]["description"]
    assert stack.record(finding_id)["completed"] is True


def test_isolate_needs_a_reason_and_an_instance_id(stack: Stack) -> None:
    assert cli.main(["isolate", "i-0123456789abcdef0"]) == cli.EXIT_USAGE
    assert cli.main(["isolate", "web-1", "--reason", "x"]) == cli.EXIT_USAGE
    assert cli.main(["isolate", "i-0123456789abcdef0", "--reason", "   "]) == cli.EXIT_USAGE


def test_the_sweep_never_starts_a_manual_isolation_it_finds_in_the_ledger(stack: Stack) -> None:
    """Only a person's own command starts one; the sweep only finishes the steps after containment."""
    instance_id = stack.launch()
    before = stack.groups_of(instance_id)
    stack.dynamodb.put_item(
        TableName="guardduty-responder-test",
        Item={
            "pk": {"S": "manual-" + "ab" * 16},
            "kind": {"S": "finding"},
            "instance_id": {"S": instance_id},
            "unfinished": {"S": "finding"},
            "lease_until": {"N": "0"},
            "phase": {"S": "claimed"},
            "first_seen": {"S": "2026-11-30T00:00:00Z"},
            "manual": {
                "M": {
                    "instance_id": {"S": instance_id},
                    "account_id": {"S": "123456789012"},
                    "region": {"S": "us-east-1"},
                    "reason": {"S": "planted"},
                    "by": {"S": "nobody"},
                    "caller_arn": {"S": "arn:aws:iam::123456789012:user/nobody"},
                }
            },
        },
    )

    swept = handler.lambda_handler(copy.deepcopy(SCHEDULED), LambdaContext(60))

    assert swept["resumed"] == [] and stack.groups_of(instance_id) == before
    assert "unfinished" not in stack.record("manual-" + "ab" * 16)


def test_a_place_a_manual_isolation_holds_is_not_taken_back_as_a_finding_guardduty_does_not_know(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.configure(MAX_ISOLATIONS_PER_HOUR="1")
    by_hand, other = stack.launch(), stack.launch()
    assert isolate(by_hand, "--reason", "confirmed compromise") == cli.EXIT_OK  # the hour's one place

    summary = stack.invoke(stack.event("tor_client", other))

    assert (summary["decision"], stack.isolated(other)) == ("circuit-breaker", False)
