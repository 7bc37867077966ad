"""One incident per isolated instance: other findings join it, and a release is final (README, "The ledger")."""

from __future__ import annotations

import pytest

from guardduty_responder import handler
from guardduty_responder.responder import ReleaseError

from conftest import TABLE, Stack


def test_a_different_finding_on_an_isolated_instance_becomes_a_comment(stack: Stack) -> None:
    instance_id = stack.launch(enis=2)
    first = stack.event("backdoor_cc_dns", instance_id)
    second = stack.event("tor_client", instance_id)
    stack.invoke(first)

    summary = stack.invoke(second)

    assert len(stack.jira.issues) == 1
    issue = next(iter(stack.jira.issues.values()))
    assert summary["jira_key"] == issue["key"]
    assert len(issue["comments"]) == 1 and second["detail"]["id"] in issue["comments"][0]
    assert len(stack.snapshots_of(instance_id)) == 2  # evidence was taken for the incident already
    assert len(stack.messages()) == 2  # one message per distinct finding
    incident = stack.record(f"instance#{instance_id}")
    assert incident["findings"] == {first["detail"]["id"], second["detail"]["id"]}
    assert stack.record(second["detail"]["id"])["incident_role"] == "secondary"


def test_release_restores_every_eni_and_comments_on_the_issue(stack: Stack) -> None:
    instance_id = stack.launch(enis=2)
    before = stack.groups_of(instance_id)
    stack.invoke(stack.event("tor_client", instance_id))

    result = handler.get_responder().release(instance_id, released_by="analyst@example.com")

    assert stack.groups_of(instance_id) == before
    assert result["jira_comment"] == "done"
    issue = next(iter(stack.jira.issues.values()))
    assert "Released by analyst@example.com" in issue["comments"][-1]
    incident = stack.record(f"instance#{instance_id}")
    assert incident["state"] == "released" and incident["expires_at"] > 0


def test_an_isolated_instance_never_expires_from_the_ledger(stack: Stack) -> None:
    instance_id = stack.launch()

    stack.invoke(stack.event("tor_client", instance_id))

    assert "expires_at" not in stack.record(f"instance#{instance_id}")


def test_a_released_instance_stays_released_when_its_finding_is_updated(stack: Stack) -> None:
    instance_id = stack.launch(enis=2)
    before = stack.groups_of(instance_id)
    stack.invoke(stack.event("tor_client", instance_id, count=1))
    handler.get_responder().release(instance_id, released_by="analyst@example.com")
    stack.messages()

    summary = stack.invoke(stack.event("tor_client", instance_id, count=5))

    assert summary["outcome"] == "released: left alone"
    assert stack.groups_of(instance_id) == before
    assert len(stack.jira.issues) == 1
    assert stack.messages() == []
    finding = stack.record(stack.event("tor_client")["detail"]["id"])
    assert finding["status"] == "released" and finding["service_count"] == 5


def test_release_refuses_an_instance_the_responder_did_not_isolate(stack: Stack) -> None:
    instance_id = stack.launch()

    with pytest.raises(ReleaseError, match="not isolated"):
        handler.get_responder().release(instance_id, released_by="analyst@example.com")


def test_release_happens_once(stack: Stack) -> None:
    instance_id = stack.launch()
    stack.invoke(stack.event("tor_client", instance_id))
    handler.get_responder().release(instance_id, released_by="a")

    with pytest.raises(ReleaseError):
        handler.get_responder().release(instance_id, released_by="b")


def test_a_held_finding_about_an_isolated_instance_is_a_comment_too(stack: Stack) -> None:
    instance_id = stack.launch()
    stack.invoke(stack.event("tor_client", instance_id))
    stack.configure(DRY_RUN="true")

    summary = stack.invoke(stack.event("backdoor_cc_dns", instance_id))

    assert summary["decision"] == "dry-run"
    assert len(stack.jira.issues) == 1
    issue = next(iter(stack.jira.issues.values()))
    assert summary["jira_key"] == issue["key"] and len(issue["comments"]) == 1


def test_the_findings_of_an_isolated_incident_do_not_expire_until_it_is_released(stack: Stack) -> None:
    instance_id = stack.launch()
    first, second = stack.event("backdoor_cc_dns", instance_id), stack.event("tor_client", instance_id)
    stack.invoke(first)
    stack.invoke(second)

    assert "expires_at" not in stack.record(first["detail"]["id"])
    assert "expires_at" not in stack.record(second["detail"]["id"])
    handler.get_responder().release(instance_id, released_by="analyst@example.com")
    assert stack.record(first["detail"]["id"])["expires_at"] > 0
    assert stack.record(second["detail"]["id"])["expires_at"] > 0


def test_a_finding_that_isolates_nothing_still_expires(stack: Stack) -> None:
    stack.configure(DRY_RUN="true")
    event = stack.event("backdoor_cc_dns", stack.launch())

    stack.invoke(event)

    assert stack.record(event["detail"]["id"])["expires_at"] > 0


def test_release_tolerates_a_finding_item_that_is_gone(stack: Stack) -> None:
    instance_id = stack.launch()
    before = stack.groups_of(instance_id)
    event = stack.event("backdoor_cc_dns", instance_id)
    stack.invoke(event)
    stack.dynamodb.delete_item(TableName=TABLE, Key={"pk": {"S": event["detail"]["id"]}})

    result = handler.get_responder().release(instance_id, released_by="analyst@example.com")

    assert result["released"] is True and stack.groups_of(instance_id) == before
    assert stack.record(event["detail"]["id"]) is None  # not recreated as a husk


def test_a_finding_whose_item_is_gone_goes_to_its_incident_not_a_second_issue(stack: Stack) -> None:
    instance_id = stack.launch()
    event = stack.event("backdoor_cc_dns", instance_id)
    stack.invoke(event)
    snapshots = stack.snapshots_of(instance_id)
    stack.dynamodb.delete_item(TableName=TABLE, Key={"pk": {"S": event["detail"]["id"]}})
    update = stack.event(event, instance_id, count=event["detail"]["service"]["count"] + 1)

    stack.invoke(update)

    assert len(stack.jira.issues) == 1
    assert snapshots and stack.snapshots_of(instance_id) == snapshots
    assert stack.isolated(instance_id)
