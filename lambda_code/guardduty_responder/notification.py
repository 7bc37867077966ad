"""The SNS message: its text (pure) and its publication.

Every value from the finding is defanged (`ticketing.defanged`): mail clients, phones and chat
make links of URLs, bare host names and addresses, and the message must carry none an attacker chose.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .finding import Finding
from .finding_types import documented
from .policy import Decision, Outcome, outcome_line
from .ticketing import ApprovalAsk, defanged, subject_of

PERMISSIONS = ("sns:Publish",)

_SUBJECT_LIMIT = 99  # SNS allows 100; a margin keeps every client's truncation out of play
# What the message says without a Jira key: whether an issue is due (Jira was slow or down) or not.
_NO_KEY = {True: "still to come (filed by the automatic retry)", False: "none"}


@dataclass(frozen=True)
class Notification:
    subject: str
    body: str
    attributes: dict[str, dict[str, str]]


def notification_text(
    finding: Finding,
    decision: Decision,
    *,
    outcome: Outcome,
    actions: Sequence[str],
    jira_key: str | None,
    failures: Sequence[str] = (),
    approval: ApprovalAsk | None = None,
    extra_lines: Sequence[str] = (),
) -> Notification:
    headline = outcome.headline
    # A type GuardDuty documents is shown as it is (some end in `.Reputation`); any other is defanged.
    shown_type = finding.finding_type if documented(finding.finding_type) else defanged(finding.finding_type, 128)
    subject = _ascii(f"GuardDuty {finding.severity_label}: {headline} {subject_of(finding)} {shown_type}")
    lines = [
        f"{headline}: {subject_of(finding) or 'no instance named'}",
        f"{shown_type} (severity {finding.severity:g} {finding.severity_label})",
        defanged(finding.title, 200),
        f"Account {defanged(finding.account_id, 40)}, {defanged(finding.region, 40)}",
        *_credentials_lines(finding),
        "",
        f"Why: {defanged(decision.reason, 190)}",
        f"Outcome: {outcome_line(decision, outcome)}",
    ]
    lines += [f"- {defanged(action, 200)}" for action in actions]
    if failures:
        lines += ["Still to do (retried automatically):", *(f"- {defanged(failure, 200)}" for failure in failures)]
    lines += list(extra_lines)
    if approval is not None:
        approve, reject = approval.commands()
        lines += ["", f"Approve: {approve}", f"Reject: {reject}"]
        if approval.jira_status:
            lines.append(f"Or move the Jira issue to {defanged(approval.jira_status, 60)}")
        lines.append(approval.timeout_line())
    lines += ["", f"Jira: {jira_key or _NO_KEY[decision.opens_ticket]}", f"Finding: {finding.finding_id}"]
    return Notification(
        subject=subject[:_SUBJECT_LIMIT],
        body="\n".join(lines),
        attributes={
            "severity": {"DataType": "String", "StringValue": finding.severity_label},
            "severity_score": {"DataType": "Number", "StringValue": f"{finding.severity:g}"},
            "finding_type": {"DataType": "String", "StringValue": finding.finding_type},
            "action": {"DataType": "String", "StringValue": decision.action.value},
        },
    )


def _credentials_lines(finding: Finding) -> list[str]:
    stolen = finding.credentials
    if stolen is None:
        return []
    return [f"Credentials: role {defanged(stolen.role_name, 64)}, access key {defanged(stolen.access_key_id, 128)}"]


def _ascii(text: str) -> str:
    """SNS subjects must be printable ASCII on one line."""
    return "".join(c if " " <= c <= "~" else "?" for c in text)


def publish(sns: Any, topic_arn: str, notification: Notification) -> str:
    response = sns.publish(
        TopicArn=topic_arn,
        Subject=notification.subject,
        Message=notification.body,
        MessageAttributes=notification.attributes,
    )
    return response["MessageId"]
