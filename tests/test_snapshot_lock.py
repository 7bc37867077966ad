"""Locked evidence snapshots (README, "What happens to a finding"): each snapshot locked in governance mode as soon as it is taken.

moto has no LockSnapshot: the request is checked with botocore's Stubber, and in the whole flow a hook answers
for EC2 and keeps the requests made.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from guardduty_responder import evidence, handler
from guardduty_responder.responder import IncompleteResponseError

from conftest import REGION, Stack


def test_each_snapshot_is_locked_in_governance_mode_for_the_days_configured() -> None:
    ec2 = boto3.client("ec2", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(ec2) as stubber:
        for snapshot in ("snap-0a1b2c3d4e5f60718", "snap-0f1e2d3c4b5a69788"):
            stubber.add_response(
                "lock_snapshot",
                {"SnapshotId": snapshot, "LockState": "governance", "LockDuration": 30},
                {"SnapshotId": snapshot, "LockMode": "governance", "LockDuration": 30},
            )

        detail, values = evidence.lock_snapshots(ec2, ["snap-0a1b2c3d4e5f60718", "snap-0f1e2d3c4b5a69788"], 30)

        stubber.assert_no_pending_responses()
    assert detail == "2 snapshot(s) locked in governance mode for 30 day(s)"
    assert values == {"snapshot_lock": {"mode": "governance", "days": 30}}


def answer_lock_snapshot(ec2: Any) -> None:
    """EC2's answer to LockSnapshot, which moto lacks, on this client."""

    def respond(params: dict[str, Any], **_: Any) -> Any:
        # The serialised request: EC2's query protocol keeps the parameters in the body.
        answer = AWSResponse(url="", status_code=200, headers={}, raw=None)
        return (answer, {"SnapshotId": params["body"]["SnapshotId"], "LockState": "governance"})

    ec2.meta.events.register("before-call.ec2.LockSnapshot", respond)


def answer_lock_requests(stack: Stack, *, refuse: int = 0) -> list[dict[str, Any]]:
    """LockSnapshot answered for the responder: the requests made (the first `refuse` refused)."""
    seen: list[dict[str, Any]] = []

    def answer(params: dict[str, Any], **_: Any) -> Any:
        seen.append(dict(params))
        if len(seen) <= refuse:
            raise ClientError({"Error": {"Code": "RequestLimitExceeded", "Message": "slow"}}, "LockSnapshot")
        return None

    ec2 = handler.get_responder().clients.ec2
    ec2.meta.events.register("provide-client-params.ec2.LockSnapshot", answer)
    answer_lock_snapshot(ec2)
    return seen


def test_the_flow_locks_the_snapshots_it_took(stack: Stack) -> None:
    stack.configure(SNAPSHOT_LOCK_DAYS="30")
    instance_id = stack.launch()
    seen = answer_lock_requests(stack)

    summary = stack.invoke(stack.event("backdoor_cc_dns", instance_id))

    assert sorted(request["SnapshotId"] for request in seen) == sorted(summary["snapshot_ids"])
    assert all((r["LockMode"], r["LockDuration"]) == ("governance", 30) for r in seen) and len(seen) == 2
    record = stack.record(summary["finding_id"])
    assert record["steps"]["lock_snapshots"]["status"] == "done"
    assert record["snapshot_lock"] == {"mode": "governance", "days": 30}


def test_without_a_lock_duration_nothing_is_locked(stack: Stack) -> None:
    instance_id = stack.launch()
    seen = answer_lock_requests(stack)

    summary = stack.invoke(stack.event("backdoor_cc_dns", instance_id))

    assert seen == [] and "lock_snapshots" not in summary["steps"]


def test_a_failed_lock_is_retried_on_its_own(stack: Stack) -> None:
    stack.configure(SNAPSHOT_LOCK_DAYS="7")
    instance_id = stack.launch()
    seen = answer_lock_requests(stack, refuse=1)
    event = stack.event("backdoor_cc_dns", instance_id)

    with pytest.raises(IncompleteResponseError, match="lock_snapshots"):
        stack.invoke(event)
    stack.invoke(event)

    record = stack.record(event["detail"]["id"])
    assert record["steps"]["lock_snapshots"]["status"] == "done"
    assert len(stack.snapshots_of(instance_id)) == 2, "the retry locks the snapshots taken, it takes no others"
    assert {r["SnapshotId"] for r in seen[1:]} == set(record["snapshot_ids"])
