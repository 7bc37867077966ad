"""The whole flow through the Lambda entry point, per finding type (README, "What happens to a finding")."""

from __future__ import annotations

import pytest

from guardduty_responder.ticketing import finding_label

from conftest import ISOLATING_FIXTURES, REPORTED_FIXTURES, SAMPLE_FIXTURES, Stack, load_event


@pytest.mark.parametrize("fixture", ISOLATING_FIXTURES)
def test_an_actor_finding_isolates_preserves_tickets_and_notifies(stack: Stack, fixture: str) -> None:
    instance_id = stack.launch(enis=1)
    event = stack.event(fixture, instance_id)
    finding_id = event["detail"]["id"]

    summary = stack.invoke(event)

    groups = stack.responder_groups()
    assert summary["isolated"] is True
    assert list(stack.groups_of(instance_id).values()) == [[groups["isolation"]["GroupId"]]]
    snapshots = stack.snapshots_of(instance_id)
    assert len(snapshots) == 2
    for snapshot in snapshots:
        tags = {tag["Key"]: tag["Value"] for tag in snapshot["Tags"]}
        assert tags["guardduty-responder:finding-id"] == finding_id
        assert tags["guardduty-responder:finding-type"] == event["detail"]["type"]
        assert tags["guardduty-responder:instance-id"] == instance_id
        assert tags["guardduty-responder:volume-id"] == snapshot["VolumeId"]
        assert tags["guardduty-responder:taken-at"].endswith("Z")
    issues = stack.jira.issues_labelled(finding_label(finding_id))
    assert len(issues) == 1 and summary["jira_key"] == issues[0]["key"]
    messages = stack.messages()
    assert len(messages) == 1
    assert messages[0]["MessageAttributes"]["action"]["Value"] == "isolate"
    record = stack.record(finding_id)
    assert record["completed"] is True
    assert record["jira_key"] == issues[0]["key"]
    assert sorted(record["snapshot_ids"]) == sorted(s["SnapshotId"] for s in snapshots)
    assert set(record["steps"]) >= {
        "contain",
        "snapshots",
        "protect",
        "autoscaling",
        "load_balancers",
        "ticket",
        "notify",
    }
    assert all(step["status"] in ("done", "skipped") for step in record["steps"].values())


@pytest.mark.parametrize("fixture", SAMPLE_FIXTURES)
def test_samples_are_recorded_and_notified_only(stack: Stack, fixture: str) -> None:
    instance_id = stack.launch(enis=1)
    before = stack.groups_of(instance_id)
    event = load_event(fixture)

    summary = stack.invoke(event)

    assert summary["isolated"] is False
    assert summary["action"] == "record"
    assert stack.groups_of(instance_id) == before
    assert stack.responder_groups() == {}
    assert stack.jira.issues == {}
    messages = stack.messages()
    assert len(messages) == 1 and messages[0]["MessageAttributes"]["action"]["Value"] == "record"
    assert stack.record(event["detail"]["id"])["decision"] == "sample"


@pytest.mark.parametrize("fixture", REPORTED_FIXTURES)
def test_a_finding_where_the_instance_is_only_attacked_is_reported_not_isolated(stack: Stack, fixture: str) -> None:
    instance_id = stack.launch(enis=1)
    before = stack.groups_of(instance_id)
    event = stack.event(fixture, instance_id)

    summary = stack.invoke(event)

    assert (summary["action"], summary["rule"], summary["isolated"]) == ("report", "report-attacked", False)
    assert stack.groups_of(instance_id) == before and stack.responder_groups() == {}
    assert stack.snapshots_of(instance_id) == []
    (issue,) = stack.jira.issues.values()
    assert issue["fields"]["summary"].startswith("[GuardDuty LOW] Report ")
    assert "report-attacked" in issue["fields"]["description"]
    (message,) = stack.messages()
    assert message["MessageAttributes"]["action"]["Value"] == "report" and "REPORT" in message["Subject"]
