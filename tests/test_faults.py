"""Faults on the way (README, "Failure semantics"): AWS throttling and a short deadline.

Each case ends with containment done or the invocation failed for retry, the state recorded, and a
later delivery finishing the job: one isolation, one set of snapshots, one issue, one message.
Jira down, SNS down and a refused CreateSnapshots are in test_failures.py.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.retries.standard import ExponentialBackoff

from guardduty_responder import handler
from guardduty_responder.clients import TOTAL_ATTEMPTS
from guardduty_responder.isolation import ContainmentError
from guardduty_responder.ledger import LedgerError
from guardduty_responder.responder import FindingInProgressError, IncompleteResponseError
from guardduty_responder.ticketing import finding_label

from conftest import Stack

_EC2_THROTTLED = (
    b'<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>RequestLimitExceeded</Code>'
    b"<Message>Request limit exceeded.</Message></Error></Errors><RequestID>throttled</RequestID></Response>"
)
_DYNAMODB_THROTTLED = json.dumps(
    {"__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException", "message": "Rate exceeded"}
).encode()


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data


class Throttle:
    """Answers the first `times` HTTP attempts of one operation with AWS's throttling error.

    It answers at `before-send`, as AWS would on the wire, so botocore's own retry mode sees a
    throttled response and retries it, as it does in Lambda.
    """

    def __init__(
        self, client: Any, operation: str, times: int, *, sparing: bytes | tuple[bytes, ...] | None = None
    ) -> None:
        self.times = times
        self._sparing = (sparing,) if isinstance(sparing, bytes) else sparing
        self.attempts = 0
        self.throttled = 0
        self._lock = threading.Lock()
        service = client.meta.service_model.service_id.hyphenize()
        self._body = _EC2_THROTTLED if service == "ec2" else _DYNAMODB_THROTTLED
        self._content_type = "text/xml" if service == "ec2" else "application/x-amz-json-1.0"
        # First, so it answers before moto does.
        client.meta.events.register_first(f"before-send.{service}.{operation}", self._answer)

    def heal(self) -> None:
        self.times = 0

    def _answer(self, request: Any, **_: Any) -> AWSResponse | None:
        if self._sparing is not None and any(spared in (request.body or b"") for spared in self._sparing):
            return None
        with self._lock:
            self.attempts += 1
            if self.throttled >= self.times:
                return None
            self.throttled += 1
        answered_at = request.url
        # botocore hands every before-send handler the request, moto's too; pointed elsewhere, moto
        # leaves it alone, so a throttled request is not carried out, as on AWS.
        request.url = "https://throttled.invalid/"
        return AWSResponse(answered_at, 400, {"Content-Type": self._content_type}, _Body(self._body))


# Every attempt botocore's standard mode makes on the responder's clients, the first one included.
ATTEMPTS = TOTAL_ATTEMPTS


@pytest.fixture(autouse=True)
def no_backoff_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    # botocore's jittered backoff would add seconds per test; whether it retries is what is tested here.
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0)


def assert_done_once(stack: Stack, instance_id: str, finding_id: str) -> None:
    isolation = stack.responder_groups()["isolation"]["GroupId"]
    assert all(groups == [isolation] for groups in stack.groups_of(instance_id).values())
    assert len(stack.snapshots_of(instance_id)) == 2
    assert len(stack.jira.issues_labelled(finding_label(finding_id))) == 1
    assert len(stack.jira.issues) == 1
    assert stack.record(finding_id)["completed"] is True


# -- EC2 throttling on the group moves ------------------------------------------------------------


def test_throttled_group_moves_are_retried_by_botocore_and_contain(stack: Stack) -> None:
    instance_id = stack.launch(enis=2)
    event = stack.event("backdoor_cc_dns", instance_id)
    # Four throttled attempts cannot exhaust any one call, whichever ENI they hit.
    throttle = Throttle(handler.get_responder().clients.ec2, "ModifyNetworkInterfaceAttribute", times=ATTEMPTS - 1)

    summary = stack.invoke(event)

    assert summary["isolated"] is True
    # Then 2 ENIs x 2 moves, and each ENI's connection-tracking timeouts after containment.
    assert throttle.throttled == ATTEMPTS - 1 and throttle.attempts == ATTEMPTS - 1 + 4 + 2
    assert len(stack.messages()) == 1
    assert_done_once(stack, instance_id, event["detail"]["id"])
    assert stack.invoke(event)["outcome"] == "already handled"
    assert stack.messages() == [] and len(stack.snapshots_of(instance_id)) == 2


def test_group_moves_throttled_past_the_retries_fail_the_invocation_and_the_next_delivery_contains(
    stack: Stack,
) -> None:
    instance_id = stack.launch(enis=2)
    before = stack.groups_of(instance_id)
    event = stack.event("backdoor_cc_dns", instance_id)
    throttle = Throttle(handler.get_responder().clients.ec2, "ModifyNetworkInterfaceAttribute", times=1000)

    with pytest.raises(ContainmentError, match="RequestLimitExceeded"):
        stack.invoke(event)

    assert throttle.attempts == 2 * ATTEMPTS  # each ENI's first move, retried until botocore gave up
    assert stack.groups_of(instance_id) == before
    assert stack.snapshots_of(instance_id) == [] and stack.jira.issues == {} and stack.messages() == []
    record = stack.record(event["detail"]["id"])
    assert record["steps"]["contain"]["status"] == "failed"
    assert record["lease_until"] == 0  # the retry may take over at once

    throttle.heal()
    summary = stack.invoke(event)

    assert summary["isolated"] is True and summary["repeat"] is False
    assert len(stack.messages()) == 1
    assert_done_once(stack, instance_id, event["detail"]["id"])


# -- DynamoDB throttling ------------------------------------------------------------------------------


def test_a_throttled_claim_fails_the_invocation_before_anything_changes(stack: Stack) -> None:
    instance_id = stack.launch(enis=2)
    before = stack.groups_of(instance_id)
    event = stack.event("tor_client", instance_id)
    responder = handler.get_responder()
    # An isolating finding is claimed and counted by the circuit breaker in one transaction.
    throttle = Throttle(responder.clients.dynamodb, "TransactWriteItems", times=1000)
    ec2_calls: list[str] = []
    responder.clients.ec2.meta.events.register("before-call", lambda model, **_: ec2_calls.append(model.name))

    with pytest.raises(LedgerError, match="ProvisionedThroughputExceededException"):
        stack.invoke(event)

    assert throttle.attempts == ATTEMPTS
    assert ec2_calls == ["DescribeInstances"]  # the look issued with the claim, and nothing after it
    assert stack.record(event["detail"]["id"]) is None
    assert stack.groups_of(instance_id) == before
    assert stack.snapshots_of(instance_id) == [] and stack.jira.issues == {} and stack.messages() == []

    throttle.heal()
    stack.invoke(event)
    stack.invoke(event)

    assert len(stack.messages()) == 1
    assert_done_once(stack, instance_id, event["detail"]["id"])


def test_a_throttled_record_after_containment_fails_the_invocation_and_the_retry_finishes_once(stack: Stack) -> None:
    instance_id = stack.launch(enis=2)
    event = stack.event("tor_client", instance_id)
    # One record write throttled through all its attempts (the circuit breaker's count and the instance's
    # lock, updates too, are left alone); DynamoDB recovers after that.
    Throttle(handler.get_responder().clients.dynamodb, "UpdateItem", times=ATTEMPTS, sparing=(b"breaker#", b"lock#"))

    with pytest.raises(LedgerError, match="ProvisionedThroughputExceededException"):
        stack.invoke(event)

    isolation = stack.responder_groups()["isolation"]["GroupId"]
    assert all(groups == [isolation] for groups in stack.groups_of(instance_id).values())  # contained all the same
    assert len(stack.snapshots_of(instance_id)) == 2
    assert stack.jira.issues == {} and stack.messages() == []
    record = stack.record(event["detail"]["id"])
    assert not record.get("completed")
    assert record["lease_until"] == 0  # let go, so the retry need not wait for the lease to run out

    summary = stack.invoke(event)

    assert summary["repeat"] is False and summary["isolated"] is True
    assert len(stack.messages()) == 1
    assert_done_once(stack, instance_id, event["detail"]["id"])
    assert stack.invoke(event)["outcome"] == "already handled"
    assert stack.messages() == []


def test_when_dynamodb_stays_throttled_a_delivery_after_the_lease_runs_out_finishes(stack: Stack) -> None:
    instance_id = stack.launch()
    event = stack.event("tor_client", instance_id)
    responder = handler.get_responder()
    throttle = Throttle(responder.clients.dynamodb, "UpdateItem", times=1000)

    with pytest.raises(LedgerError):
        stack.invoke(event, remaining_seconds=60)
    throttle.heal()

    # Inside the lease the first invocation might still be working: a delivery leaves it alone.
    with pytest.raises(FindingInProgressError):
        stack.invoke(event)
    responder.clock = lambda: time.time() + 70  # the lease was the 60 s left plus 5
    summary = stack.invoke(event)

    assert summary["repeat"] is False and summary["isolated"] is True
    assert len(stack.messages()) == 1
    assert_done_once(stack, instance_id, event["detail"]["id"])


# -- a short deadline ---------------------------------------------------------------------------------------


def test_too_little_time_left_defers_jira_and_the_retry_files_the_issue(stack: Stack) -> None:
    instance_id = stack.launch(enis=2)
    event = stack.event("ssh_bruteforce", instance_id)
    # Jira may take JIRA_TIMEOUT_SECONDS=40 in all, plus 3 s for the message and the record: more than
    # the 30 s left, while the move's own budget (4 s) leaves a wide margin for a slow machine.
    stack.configure(JIRA_TIMEOUT_SECONDS="40")
    with pytest.raises(IncompleteResponseError, match="ticket: deferred"):
        stack.invoke(event, remaining_seconds=30)

    isolation = stack.responder_groups()["isolation"]["GroupId"]
    assert all(groups == [isolation] for groups in stack.groups_of(instance_id).values())
    assert len(stack.snapshots_of(instance_id)) == 2
    assert stack.jira.requests == []  # not even started
    record = stack.record(event["detail"]["id"])
    assert record["steps"]["ticket"]["status"] == "deferred" and record["completed"] is False
    messages = stack.messages()
    assert len(messages) == 1 and "Still to do" in messages[0]["Message"] and "deferred" in messages[0]["Message"]

    summary = stack.invoke(event, remaining_seconds=60)

    assert summary["jira_key"] == next(iter(stack.jira.issues))
    assert stack.messages() == []
    assert_done_once(stack, instance_id, event["detail"]["id"])


def test_enough_time_left_files_the_issue_in_the_same_invocation(stack: Stack) -> None:
    instance_id = stack.launch()
    event = stack.event("ssh_bruteforce", instance_id)

    # 5 s are needed (JIRA_TIMEOUT_SECONDS=2, then 3 s) once containment and evidence are done, which take a
    # second or two on moto: 30 s leave room for a slow machine.
    summary = stack.invoke(event, remaining_seconds=30)

    assert summary["jira_key"] is not None
    assert stack.record(event["detail"]["id"])["steps"]["ticket"]["status"] == "done"
