"""Failure semantics (README, "Failure semantics"): containment failing fails at once; later steps never block it."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from guardduty_responder import handler
from guardduty_responder.isolation import ContainmentError
from guardduty_responder.responder import IncompleteResponseError
from guardduty_responder.ticketing import finding_label

from conftest import Stack


def assert_contained_and_preserved(stack: Stack, instance_id: str) -> None:
    isolation = stack.responder_groups()["isolation"]["GroupId"]
    assert all(groups == [isolation] for groups in stack.groups_of(instance_id).values())
    assert len(stack.snapshots_of(instance_id)) == 2


@pytest.mark.parametrize(
    "break_jira",
    [
        pytest.param(lambda jira: jira.fail(503, times=10), id="503"),
        pytest.param(
            lambda jira: jira.fail(429, times=10, headers={"Retry-After": "3600"}), id="429-retry-after-an-hour"
        ),
        pytest.param(lambda jira: jira.hang(4, times=10), id="hanging-connection"),
    ],
)
def test_jira_down_never_blocks_containment_and_the_next_delivery_files_once(stack: Stack, break_jira: Any) -> None:
    instance_id = stack.launch(enis=2)
    event = stack.event("backdoor_cc_dns", instance_id)
    break_jira(stack.jira)

    started = time.monotonic()
    with pytest.raises(IncompleteResponseError, match="ticket"):
        stack.invoke(event)
    elapsed = time.monotonic() - started

    assert elapsed < 8, "the Jira call was not bounded"
    assert_contained_and_preserved(stack, instance_id)
    messages = stack.messages()
    assert len(messages) == 1 and "Still to do" in messages[0]["Message"]
    record = stack.record(event["detail"]["id"])
    assert record["steps"]["ticket"]["status"] == "failed" and record["completed"] is False
    assert stack.jira.issues == {}

    stack.jira.heal()
    summary = stack.invoke(event)
    stack.invoke(event)

    assert len(stack.jira.issues_labelled(finding_label(event["detail"]["id"]))) == 1
    assert summary["jira_key"] == next(iter(stack.jira.issues))
    assert len(stack.snapshots_of(instance_id)) == 2
    assert stack.messages() == []
    assert stack.record(event["detail"]["id"])["completed"] is True


def test_an_issue_filed_by_a_request_whose_answer_was_lost_is_found_not_refiled(stack: Stack) -> None:
    instance_id = stack.launch()
    event = stack.event("tor_client", instance_id)
    stack.jira.hang(3.5, times=1, only=r"/issue$")  # Jira files the issue, but only after the client gave up waiting

    with pytest.raises(IncompleteResponseError):
        stack.invoke(event)
    deadline = time.monotonic() + 5
    while not stack.jira.issues and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(stack.jira.issues) == 1

    stack.invoke(event)

    assert len(stack.jira.issues) == 1
    assert stack.record(event["detail"]["id"])["jira_key"] == next(iter(stack.jira.issues))


def test_sns_down_is_recorded_and_the_retry_sends_exactly_one_message(stack: Stack) -> None:
    instance_id = stack.launch()
    event = stack.event("tor_client", instance_id)
    stack.sns.delete_topic(TopicArn=stack.topic_arn)

    with pytest.raises(IncompleteResponseError, match="notify"):
        stack.invoke(event)

    assert_contained_and_preserved(stack, instance_id)
    assert len(stack.jira.issues) == 1
    stack.sns.create_topic(Name="guardduty-responder")
    queue_arn = stack.sqs.get_queue_attributes(QueueUrl=stack.queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    stack.sns.subscribe(TopicArn=stack.topic_arn, Protocol="sqs", Endpoint=queue_arn)

    stack.invoke(event)
    stack.invoke(event)

    assert len(stack.messages()) == 1
    assert len(stack.jira.issues) == 1


def test_a_failed_snapshot_does_not_stop_the_ticket_or_the_message(stack: Stack) -> None:
    instance_id = stack.launch()
    event = stack.event("tor_client", instance_id)
    ec2 = handler.get_responder().clients.ec2
    failing = {"on": True}

    def throttle(**_: Any) -> None:
        if failing["on"]:
            raise ClientError({"Error": {"Code": "RequestLimitExceeded", "Message": "slow down"}}, "CreateSnapshots")

    ec2.meta.events.register("before-call.ec2.CreateSnapshots", throttle)

    with pytest.raises(IncompleteResponseError, match="snapshots"):
        stack.invoke(event)

    assert stack.snapshots_of(instance_id) == []
    assert len(stack.jira.issues) == 1 and len(stack.messages()) == 1
    failing["on"] = False
    stack.invoke(event)
    assert len(stack.snapshots_of(instance_id)) == 2
    assert len(stack.jira.issues) == 1 and stack.messages() == []


def test_containment_failure_fails_the_invocation_before_anything_else(stack: Stack) -> None:
    instance_id = stack.launch(enis=2)
    before = stack.groups_of(instance_id)
    event = stack.event("tor_client", instance_id)
    ec2 = handler.get_responder().clients.ec2
    failing = {"on": True}

    def refuse(**_: Any) -> None:
        if failing["on"]:
            raise ClientError(
                {"Error": {"Code": "UnauthorizedOperation", "Message": "no"}}, "ModifyNetworkInterfaceAttribute"
            )

    ec2.meta.events.register("before-call.ec2.ModifyNetworkInterfaceAttribute", refuse)

    with pytest.raises(ContainmentError):
        stack.invoke(event)

    assert stack.groups_of(instance_id) == before
    assert stack.snapshots_of(instance_id) == [] and stack.jira.issues == {} and stack.messages() == []
    record = stack.record(event["detail"]["id"])
    assert record["steps"]["contain"]["status"] == "failed"
    assert {eni: sorted(groups) for eni, groups in record["original_groups"].items()} == before

    failing["on"] = False
    summary = stack.invoke(event)

    assert summary["isolated"] is True
    assert_contained_and_preserved(stack, instance_id)
    assert len(stack.jira.issues) == 1 and len(stack.messages()) == 1


def test_a_retry_after_a_half_done_containment_keeps_the_true_original_groups(stack: Stack) -> None:
    instance_id = stack.launch(enis=2)
    before = stack.groups_of(instance_id)
    event = stack.event("tor_client", instance_id)
    ec2 = handler.get_responder().clients.ec2
    moves = {"count": 0, "failing": True}

    def fail_after_first_move(**_: Any) -> None:
        moves["count"] += 1
        if moves["count"] > 1 and moves["failing"]:
            raise ClientError(
                {"Error": {"Code": "RequestLimitExceeded", "Message": "slow"}}, "ModifyNetworkInterfaceAttribute"
            )

    ec2.meta.events.register("before-call.ec2.ModifyNetworkInterfaceAttribute", fail_after_first_move)
    with pytest.raises(ContainmentError):
        stack.invoke(event)
    assert stack.groups_of(instance_id) != before  # one ENI is part-way

    moves["failing"] = False
    stack.invoke(event)
    handler.get_responder().release(instance_id, released_by="analyst")

    assert stack.groups_of(instance_id) == before


def test_an_instance_that_does_not_exist_is_announced_and_the_invocation_fails_with_the_reason(stack: Stack) -> None:
    event = stack.event("tor_client")  # names an instance this account does not have

    with pytest.raises(IncompleteResponseError, match="does not exist"):
        stack.invoke(event)

    record = stack.record(event["detail"]["id"])
    assert record["steps"]["contain"]["status"] == "failed"  # recorded, not lost
    messages = stack.messages()
    assert len(messages) == 1 and "NOT CONTAINED" in messages[0]["Subject"]
    issue = next(iter(stack.jira.issues.values()))
    assert "NOT CONTAINED" in issue["fields"]["summary"] and "does not exist" in issue["fields"]["description"]

    with pytest.raises(IncompleteResponseError):
        stack.invoke(event)  # the retry fails again, for the dead-letter queue, without repeating itself
    assert stack.messages() == [] and len(stack.jira.issues) == 1


def test_a_dry_run_finding_about_a_missing_instance_is_still_recorded_and_notified(stack: Stack) -> None:
    stack.configure(DRY_RUN="true")
    event = stack.event("tor_client")

    summary = stack.invoke(event)

    assert summary["decision"] == "dry-run" and summary["isolated"] is False
    assert len(stack.messages()) == 1 and len(stack.jira.issues) == 1


def test_a_failed_isolation_move_never_leaves_an_eni_open_to_the_world(stack: Stack) -> None:
    instance_id = stack.launch(enis=2)
    before = stack.groups_of(instance_id)
    event = stack.event("tor_client", instance_id)
    responder = handler.get_responder()
    failing = {"on": True}

    def refuse_the_isolation_group(params: dict[str, Any], **_: Any) -> None:
        groups = responder.groups.groups_for(stack.vpc_id)
        if failing["on"] and params.get("Groups") == [groups.isolation_id]:
            raise ClientError(
                {"Error": {"Code": "UnauthorizedOperation", "Message": "no"}}, "ModifyNetworkInterfaceAttribute"
            )

    responder.clients.ec2.meta.events.register(
        "before-parameter-build.ec2.ModifyNetworkInterfaceAttribute", refuse_the_isolation_group
    )

    with pytest.raises(ContainmentError):
        stack.invoke(event)

    untracking = stack.responder_groups()["untracking"]["GroupId"]
    assert all(untracking not in groups for groups in stack.groups_of(instance_id).values())
    assert stack.groups_of(instance_id) == before  # back where they were, not open to the world
    assert stack.record(f"instance#{instance_id}") is not None  # release knows what to restore

    failing["on"] = False
    assert stack.invoke(event)["isolated"] is True
