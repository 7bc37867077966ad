"""The flow's phases in the ledger (README, "Failure semantics"): a finding's item names the last phase it
completed, and a later delivery resumes at the next one, from what the record holds, without deriving
again what an earlier invocation decided and found.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from guardduty_responder import handler
from guardduty_responder.isolation import ContainmentError
from guardduty_responder.ledger import LedgerError
from guardduty_responder.responder import IncompleteResponseError

from conftest import TABLE, Stack


def ec2_calls() -> list[str]:
    """Every EC2 operation the warm container's responder makes from now on."""
    calls: list[str] = []
    handler.get_responder().clients.ec2.meta.events.register("before-call", lambda model, **_: calls.append(model.name))
    return calls


def refuse(stack: Stack, operation: str) -> dict[str, bool]:
    """Make `operation` fail on the responder's EC2 client until the returned switch is turned off."""
    failing = {"on": True}

    def answer(**_: Any) -> None:
        if failing["on"]:
            raise ClientError({"Error": {"Code": "RequestLimitExceeded", "Message": "slow down"}}, operation)

    handler.get_responder().clients.ec2.meta.events.register(f"before-call.ec2.{operation}", answer)
    return failing


def test_a_finished_finding_names_its_last_phase(stack: Stack) -> None:
    instance_id = stack.launch()
    event = stack.event("tor_client", instance_id)

    stack.invoke(event)

    record = stack.record(event["detail"]["id"])
    assert record["phase"] == "notified" and record["completed"] is True
    assert record["instance"]["instance_id"] == instance_id


def test_a_failed_evidence_step_leaves_the_finding_contained_and_the_retry_starts_at_evidence(stack: Stack) -> None:
    stack.configure(EVIDENCE_BUCKET="")  # the evidence stored in the bucket describes the instance once more
    instance_id = stack.launch(enis=2)
    event = stack.event("backdoor_cc_dns", instance_id)
    failing = refuse(stack, "CreateSnapshots")
    with pytest.raises(IncompleteResponseError, match="snapshots"):
        stack.invoke(event)
    assert stack.record(event["detail"]["id"])["phase"] == "contained"
    failing["on"] = False
    calls = ec2_calls()

    summary = stack.invoke(event)

    assert summary["isolated"] is True and len(stack.snapshots_of(instance_id)) == 2
    # Resumed after containment: the instance is not moved again, nor decided on again (the one
    # DescribeInstances is the look issued with every claim, its answer unused).
    assert calls.count("DescribeInstances") == 1 and "ModifyNetworkInterfaceAttribute" not in calls
    assert "CreateSnapshots" in calls
    record = stack.record(event["detail"]["id"])
    assert record["phase"] == "notified" and record["completed"] is True


def test_a_failed_ticket_leaves_the_finding_preserved_and_the_retry_touches_no_instance(stack: Stack) -> None:
    instance_id = stack.launch()
    event = stack.event("tor_client", instance_id)
    stack.jira.fail(503, times=10)
    with pytest.raises(IncompleteResponseError, match="ticket"):
        stack.invoke(event)
    assert stack.record(event["detail"]["id"])["phase"] == "preserved"
    stack.jira.heal()
    calls = ec2_calls()

    stack.invoke(event)

    assert calls == ["DescribeInstances"]  # the look issued with every claim: nothing is changed
    issue = next(iter(stack.jira.issues.values()))
    # The issue lists what the first invocation did, though this one only filed it.
    description = issue["fields"]["description"]
    assert "contain: 1 network interface(s) on isolation group" in description
    assert "snapshots: 2 snapshot(s)" in description


def test_a_failed_containment_leaves_the_finding_claimed_and_the_retry_looks_again(stack: Stack) -> None:
    instance_id = stack.launch()
    event = stack.event("tor_client", instance_id)
    failing = refuse(stack, "ModifyNetworkInterfaceAttribute")
    with pytest.raises(ContainmentError):
        stack.invoke(event)
    assert stack.record(event["detail"]["id"])["phase"] == "claimed"
    failing["on"] = False
    calls = ec2_calls()

    assert stack.invoke(event)["isolated"] is True

    assert calls[0] == "DescribeInstances" and "ModifyNetworkInterfaceAttribute" in calls


def test_the_retry_keeps_the_recorded_decision_whatever_the_live_tags_say_now(stack: Stack) -> None:
    instance_id = stack.launch()
    event = stack.event("tor_client", instance_id)
    failing = refuse(stack, "CreateSnapshots")
    with pytest.raises(IncompleteResponseError):
        stack.invoke(event)
    # Tagged exempt after it was isolated: the isolation stands, and its evidence is still taken.
    stack.ec2.create_tags(Resources=[instance_id], Tags=[{"Key": "guardduty-responder:exempt", "Value": "true"}])
    failing["on"] = False

    summary = stack.invoke(event)

    assert summary["decision"] == "isolate" and summary["isolated"] is True
    assert stack.isolated(instance_id) and len(stack.snapshots_of(instance_id)) == 2


# -- records written before the ledger named phases, and resumes that go wrong --------------------------------


def written_before_phases(stack: Stack, finding_id: str) -> None:
    """Make a finding's item what a version of the responder before recorded phases left: no phase, no instance."""
    stack.dynamodb.update_item(
        TableName=TABLE, Key={"pk": {"S": finding_id}}, UpdateExpression="REMOVE phase, instance"
    )


def test_a_record_from_before_phases_with_failed_snapshots_is_looked_at_again_and_its_evidence_taken(
    stack: Stack,
) -> None:
    instance_id = stack.launch()
    event = stack.event("tor_client", instance_id)
    failing = refuse(stack, "CreateSnapshots")
    with pytest.raises(IncompleteResponseError, match="snapshots"):
        stack.invoke(event)
    written_before_phases(stack, event["detail"]["id"])
    failing["on"] = False

    summary = stack.invoke(event)

    assert summary["isolated"] is True and len(stack.snapshots_of(instance_id)) == 2
    record = stack.record(event["detail"]["id"])
    assert record["steps"]["snapshots"]["status"] == "done" and record["phase"] == "notified"


def test_a_record_from_before_phases_held_by_the_breaker_stays_held(stack: Stack) -> None:
    stack.configure(MAX_ISOLATIONS_PER_HOUR="0")
    instance_id = stack.launch()
    event = stack.event("tor_client", instance_id)
    stack.jira.fail(503, times=10)
    with pytest.raises(IncompleteResponseError, match="ticket"):
        stack.invoke(event)
    written_before_phases(stack, event["detail"]["id"])
    stack.configure(MAX_ISOLATIONS_PER_HOUR="5")  # room again: the held finding must not take it
    stack.jira.heal()

    summary = stack.invoke(event)

    assert summary["decision"] == "circuit-breaker" and summary["isolated"] is False
    assert not stack.isolated(instance_id)
    issue = next(iter(stack.jira.issues.values()))["fields"]
    assert "CIRCUIT BREAKER OPEN" in issue["summary"] and "circuit-breaker" in issue["labels"]


def test_a_record_from_before_phases_of_a_further_finding_comments_on_the_incident(stack: Stack) -> None:
    instance_id = stack.launch()
    first, second = stack.event("backdoor_cc_dns", instance_id), stack.event("tor_client", instance_id)
    stack.invoke(first)
    stack.jira.fail(503, times=10)
    with pytest.raises(IncompleteResponseError, match="ticket"):
        stack.invoke(second)
    written_before_phases(stack, second["detail"]["id"])
    stack.jira.heal()

    stack.invoke(second)

    assert len(stack.jira.issues) == 1
    assert len(next(iter(stack.jira.issues.values()))["comments"]) == 1


def test_a_ledger_error_while_resuming_lets_go_of_the_finding_for_the_next_delivery(stack: Stack) -> None:
    instance_id = stack.launch()
    event = stack.event("tor_client", instance_id)
    stack.jira.fail(503, times=10)
    with pytest.raises(IncompleteResponseError, match="ticket"):
        stack.invoke(event)
    stack.jira.heal()
    failing = {"on": True}

    def throttle(params: dict[str, Any], **_: Any) -> None:
        if failing["on"] and b"instance#" in params["body"]:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "GetItem")

    handler.get_responder().clients.dynamodb.meta.events.register("before-call.dynamodb.GetItem", throttle)
    with pytest.raises(LedgerError):
        stack.invoke(event)  # reading the incident back fails
    failing["on"] = False

    summary = stack.invoke(event)

    assert summary["repeat"] is False and summary["jira_key"] is not None
    assert len(stack.jira.issues) == 1


def test_the_summary_of_a_resumed_finding_lists_the_steps_done_before_it(stack: Stack) -> None:
    instance_id = stack.launch()
    event = stack.event("tor_client", instance_id)
    stack.jira.fail(503, times=10)
    with pytest.raises(IncompleteResponseError):
        stack.invoke(event)
    stack.jira.heal()

    summary = stack.invoke(event)

    assert summary["steps"]["contain"] == "done" and summary["steps"]["snapshots"] == "done"
    assert summary["steps"]["ticket"] == "done" and summary["steps"]["notify"] == "done"
