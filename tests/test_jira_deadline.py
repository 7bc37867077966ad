"""Jira cannot hold the message back (README, "Failure semantics"): the Jira step has a deadline of its own.

`requests`' timeout bounds each read, not a request: a Jira that sends its answer a byte at a time
keeps every read alive. The stand-in trickles its answer so; the tests assert on what happened in
which order and on counts, and on time only with bounds that are multiples of the Jira budget.
"""

from __future__ import annotations

import time

import pytest

from guardduty_responder import handler
from guardduty_responder.responder import IncompleteResponseError

from conftest import Stack

pytestmark = pytest.mark.both_jira_deployments


def wait_until_answered(stack: Stack, seconds: float = 60) -> None:
    """Until no answer is being trickled any more, and a moment for a client to act on the last one."""
    deadline = time.monotonic() + seconds
    while stack.jira.trickling and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stack.jira.trickling == 0
    time.sleep(0.5)


def issue_requests(stack: Stack) -> list[str]:
    return [path for method, path, _ in stack.jira.requests if method == "POST" and path.endswith("/issue")]


def test_a_jira_that_trickles_its_answer_cannot_hold_the_message_back(stack: Stack) -> None:
    budget = stack.settings().jira_timeout_seconds
    instance_id = stack.launch()
    event = stack.event("tor_client", instance_id)
    finding_id = event["detail"]["id"]
    # A byte every 0.1 s: no read comes near the read timeout, and the whole answer takes over 15 s.
    stack.jira.trickle(0.1, only=r"/issue$")

    started = time.monotonic()
    with pytest.raises(IncompleteResponseError, match="ticket"):
        stack.invoke(event)
    elapsed = time.monotonic() - started

    assert stack.jira.trickling == 1, "the invocation waited for Jira's whole answer"
    assert elapsed < 6 * budget
    assert stack.isolated(instance_id) and len(stack.snapshots_of(instance_id)) == 2
    messages = stack.messages()
    assert len(messages) == 1
    assert "Jira: still to come" in messages[0]["Message"]
    record = stack.record(finding_id)
    assert record["steps"]["ticket"]["status"] == "failed" and record["completed"] is False
    assert f"within {budget} s" in record["steps"]["ticket"]["error"]
    assert len(stack.jira.issues) == 1  # Jira filed it: its answer is what did not come in time

    # A retry in this container while that answer still trickles waits for it, and asks Jira nothing.
    asked = len(stack.jira.requests)
    with pytest.raises(IncompleteResponseError, match="still unanswered"):
        stack.invoke(event)
    assert len(stack.jira.requests) == asked and stack.jira.trickling == 1
    assert stack.messages() == []

    stack.jira.heal()  # the connection still trickling is cut off
    summary = stack.invoke(event)

    assert summary["jira_key"] == next(iter(stack.jira.issues))
    assert len(stack.jira.issues) == 1 and len(issue_requests(stack)) == 1
    assert stack.messages() == []
    assert stack.record(finding_id)["completed"] is True


def test_an_attempt_that_gave_up_sends_jira_nothing_more_so_the_retry_files_the_only_issue(stack: Stack) -> None:
    """The retry's search is trickled past the deadline: the attempt gives up while its search is
    still being answered. Its late answer (no issue yet) must not lead to a create of its own once
    the next retry, in another container, has filed the issue."""
    instance_id = stack.launch()
    event = stack.event("tor_client", instance_id)
    stack.jira.fail(503, only=r"/issue$")
    with pytest.raises(IncompleteResponseError, match="ticket"):
        stack.invoke(event)
    assert len(stack.messages()) == 1 and stack.jira.issues == {}
    refused = len(issue_requests(stack))

    # A byte every 0.05 s: the search's answer takes several seconds, well beyond the 2 s budget.
    stack.jira.trickle(0.05, only="search")
    with pytest.raises(IncompleteResponseError, match="ticket"):
        stack.invoke(event)
    assert stack.jira.trickling == 1

    handler.reset()  # the next retry lands on a container of its own
    summary = stack.invoke(event)
    wait_until_answered(stack)

    assert len(stack.jira.issues) == 1 and len(issue_requests(stack)) == refused + 1
    assert summary["jira_key"] == next(iter(stack.jira.issues))
    assert stack.messages() == []
    assert stack.record(event["detail"]["id"])["completed"] is True


def test_a_retry_in_the_same_container_takes_the_late_answer_without_asking_jira_again(stack: Stack) -> None:
    instance_id = stack.launch()
    event = stack.event("tor_client", instance_id)
    stack.jira.trickle(0.03, only=r"/issue$")  # the answer to the create takes several seconds, beyond the 2 s budget

    with pytest.raises(IncompleteResponseError, match="ticket"):
        stack.invoke(event)
    wait_until_answered(stack)
    asked = len(stack.jira.requests)
    summary = stack.invoke(event)

    assert len(stack.jira.requests) == asked
    assert summary["jira_key"] == next(iter(stack.jira.issues)) and len(stack.jira.issues) == 1
    assert stack.record(event["detail"]["id"])["completed"] is True
