"""The sweep's part in approvals: decisions read from Jira, timeouts applied, approved findings put back to be
contained, rejections and timed-out reports settled (a comment on the issue, a message).

A person approves or rejects by writing the finding's approval item (`guardduty-responder approve` or
`reject`, under their own credentials), or by moving the finding's Jira issue to the approval status. Only
the function acts: an approved finding is put back in the flow, which decides again (approved, it
isolates, under the circuit breaker and the exemptions as any isolation) with the function's own role.
An approval is honoured once, and only for a finding the function itself marked as awaiting approval.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from . import utc_timestamp
from .aws_errors import describe_error
from .jira import JiraTicketing
from .ledger import (
    APPROVED,
    REJECTED,
    TIMED_OUT,
    WAITING,
    ApprovalRecord,
    ApprovalRefused,
    Ledger,
)
from .notification import Notification, publish
from .steps import STEP_ERRORS
from .ticketing import defanged, untrusted

logger = logging.getLogger(__name__)

# Open approvals one sweep looks at, oldest first: far more than a team leaves undecided (the rest on the next sweep).
APPROVALS_PER_SWEEP = 1000
# Jira's clock and AWS's may differ by this much: a move to the status earlier than the approval's request by more
# is not an answer to it.
_CLOCK_SKEW_SECONDS = 300.0
COMMENT = "comment"
NOTIFY = "notify"


@dataclass(frozen=True)
class ApprovalSweep:
    """What one sweep did with the open approvals, by finding id."""

    approved: tuple[str, ...] = ()
    rejected: tuple[str, ...] = ()
    timed_out: tuple[str, ...] = ()
    waiting: tuple[str, ...] = ()
    # In a state the responder never writes (an approver's raw write): kept as void, never acted on.
    voided: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()

    def to_summary(self) -> dict[str, list[str]]:
        return {f"approvals_{name}": list(ids) for name, ids in vars(self).items()}


class ApprovalDesk:
    def __init__(
        self,
        ledger: Ledger,
        ticketing: JiraTicketing,
        *,
        sns: Callable[[], Any],
        topic_arn: str,
        clock: Callable[[], float],
        jira_status: str,
        jira_timeout_seconds: float,
    ) -> None:
        self.ledger = ledger
        self.ticketing = ticketing
        self._sns = sns
        self.topic_arn = topic_arn
        self.clock = clock
        self.jira_status = jira_status
        self.jira_timeout_seconds = jira_timeout_seconds

    def sweep(self) -> ApprovalSweep:
        """Act on every open approval: those approved are put back in the flow (the sweep then contains them)."""
        outcome: dict[str, list[str]] = {name: [] for name in vars(ApprovalSweep())}
        approvals = self.ledger.open_approvals(limit=APPROVALS_PER_SWEEP)
        if self.jira_status:
            approvals = self._decided_in_jira(approvals)
        for approval in approvals:
            try:
                outcome[self._act(self._after_timeout(approval))].append(approval.finding_id)
            except STEP_ERRORS as error:
                logger.error(
                    "acting on an approval failed",
                    extra={"finding_id": approval.finding_id, "error": describe_error(error)},
                )
                outcome["failed"].append(approval.finding_id)
        return ApprovalSweep(**{name: tuple(ids) for name, ids in outcome.items()})

    def _act(self, approval: ApprovalRecord) -> str:
        if approval.state == APPROVED:
            reopened = self.ledger.reopen_approved(approval, now=self.clock())
            logger.info(
                "approval honoured" if reopened else "approval not acted on yet", extra={"by": approval.decided_by}
            )
            return "approved" if reopened else "waiting"
        if approval.state in (REJECTED, TIMED_OUT):
            self._settle(approval)
            return "rejected" if approval.state == REJECTED else "timed_out"
        if approval.state != WAITING:
            logger.warning("an approval in an unknown state voided", extra={"state": approval.state[:40]})
            self.ledger.void_approval(approval, f"state {approval.state[:40]!r} is none the responder writes")
            return "voided"
        return "waiting"

    def _after_timeout(self, approval: ApprovalRecord) -> ApprovalRecord:
        """A waiting approval past its rule's timeout, decided as the rule says (isolate: approved by the timeout)."""
        if approval.state != WAITING or not approval.timeout_epoch or self.clock() < approval.timeout_epoch:
            return approval
        state = APPROVED if approval.on_timeout == "isolate" else TIMED_OUT
        try:
            return self.ledger.decide_approval(
                approval.finding_id,
                state=state,
                by=f"timeout after {approval.timeout_minutes} min",
                how="timeout",
                now=self.clock(),
                reason=f"no decision within {approval.timeout_minutes} minutes: {approval.on_timeout}",
            )
        except ApprovalRefused:
            # A person decided at this very moment: their decision stands.
            return self.ledger.get_approval(approval.finding_id) or approval

    def _decided_in_jira(self, approvals: Sequence[ApprovalRecord]) -> list[ApprovalRecord]:
        """Waiting approvals whose issue a person moved to the approval status, approved by that person."""
        keys = {
            approval.jira_key: approval for approval in approvals if approval.state == WAITING and approval.jira_key
        }
        if not keys:
            return list(approvals)
        try:
            moved = self.ticketing.bounded(
                self.jira_timeout_seconds, lambda: self.ticketing.moved_to_status(sorted(keys), self.jira_status)
            )
        except STEP_ERRORS as error:
            logger.warning("could not read approvals from Jira", extra={"error": describe_error(error)})
            return list(approvals)
        decided = {}
        for key, (mover, when) in moved.items():
            approval = keys.get(key)
            if approval is None:
                continue
            if not mover or when < approval.requested_epoch - _CLOCK_SKEW_SECONDS:
                # No one Jira names moved it there since the approval was asked for: not an approval.
                logger.warning("a Jira status change not taken as an approval", extra={"jira_key": key})
                continue
            try:
                decided[approval.finding_id] = self.ledger.decide_approval(
                    approval.finding_id,
                    state=APPROVED,
                    by=mover,
                    how="jira",
                    now=self.clock(),
                    reason=f"{key} moved to {self.jira_status}",
                )
            except ApprovalRefused:
                continue
        return [decided.get(approval.finding_id, approval) for approval in approvals]

    def _settle(self, approval: ApprovalRecord) -> None:
        """A rejection or a timed-out report: said on the issue and in a message, then closed."""
        rejected = approval.state == REJECTED
        what = (
            f"Rejected by {approval.decided_by}" + (f" ({approval.decided_arn})" if approval.decided_arn else "")
            if rejected
            else f"No decision within {approval.timeout_minutes} minutes (timed out)"
        )
        because = f": {approval.reason}" if rejected and approval.reason else ""
        sentence = f"{what} at {approval.decided_at}{because}. Nothing was changed on {approval.instance_id}."
        if COMMENT not in approval.settled_steps:
            if approval.jira_key:
                key = approval.jira_key
                self.ticketing.bounded(
                    self.jira_timeout_seconds, lambda: self.ticketing.add_comment(key, untrusted(sentence, 2000))
                )
            self.ledger.note_settled_step(approval.finding_id, COMMENT)
        if NOTIFY not in approval.settled_steps:
            publish(self._sns(), self.topic_arn, _settled_message(approval, sentence))
            self.ledger.note_settled_step(approval.finding_id, NOTIFY)
        self.ledger.settle_approval(approval, now=self.clock())
        logger.info("approval settled", extra={"state": approval.state, "finding_id": approval.finding_id})


def _settled_message(approval: ApprovalRecord, sentence: str) -> Notification:
    headline = "REJECTED, NOT ISOLATED" if approval.state == REJECTED else "APPROVAL TIMED OUT, NOT ISOLATED"
    subject = f"GuardDuty: {headline} {approval.instance_id}"
    body = "\n".join(
        [
            f"{headline}: {approval.instance_id}",
            defanged(sentence, 400),
            "",
            f"Jira: {approval.jira_key or 'none'}",
            f"Finding: {approval.finding_id}",
            f"At: {utc_timestamp()}",
        ]
    )
    return Notification(
        subject=subject[:99],
        body=body,
        attributes={"action": {"DataType": "String", "StringValue": "approval-" + approval.state}},
    )
