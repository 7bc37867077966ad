"""The Jira issue's text, and the SNS message's plain lines: pure functions, no network (see `jira` for that)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .finding import Finding
from .policy import Decision, DecisionCode, Outcome

LABEL = "guardduty-responder"
_PRIORITIES = {"CRITICAL": "Highest", "HIGH": "High", "MEDIUM": "Medium", "LOW": "Low"}
# Every priority an issue may be filed with: the project's priority scheme must hold them all.
PRIORITY_NAMES = tuple(_PRIORITIES.values())
# Control characters, zero-width and bidirectional marks and overrides (the Arabic letter mark too), the BOM.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
# Characters with a meaning in Jira wiki markup; a backslash makes each one literal. A hyphen
# inside a word ("dry-run", "i-0abc", a date) cannot open strike-through, a list or a rule: kept.
_MARKUP = re.compile(r"([{}\[\]|*_+^~?#!@`]|(?<![A-Za-z0-9])-|-(?![A-Za-z0-9]))")
# A backslash itself cannot be escaped by another: Jira renders two as a forced line break. Its
# character reference shows one backslash and means nothing else.
_BACKSLASH = "&#92;"
# Link schemes Jira would turn into links, wherever they stand (even glued to a word).
_SCHEME = re.compile(r"(?i)(://|\b(?:mailto|javascript|vbscript|file|news|irc|ftp):|(?<=[a-z])(?:mailto|javascript):)")
# A dot inside a host name or an address: mail clients, phones and chat make links of bare ones.
_HOST_DOT = re.compile(r"(?<=[A-Za-z0-9])\.(?=[A-Za-z0-9])")
_MAX_VALUE = 500


class TicketingError(RuntimeError):
    """Jira could not be reached, refused the request, answered what cannot be used, or the secret is unusable."""


@dataclass(frozen=True)
class TicketText:
    summary: str
    description: str
    priority: str
    labels: tuple[str, ...]


@dataclass(frozen=True)
class ApprovalAsk:
    """How a finding that waits for a person is approved or rejected, and what happens if nobody decides."""

    finding_id: str
    timeout_minutes: int = 0
    on_timeout: str = "report"
    # The Jira status that approves the issue ("" when approving through Jira is off).
    jira_status: str = ""

    def commands(self) -> tuple[str, str]:
        return (
            f"guardduty-responder approve {self.finding_id} --by NAME",
            f"guardduty-responder reject {self.finding_id} --by NAME --reason TEXT",
        )

    def timeout_line(self) -> str:
        if not self.timeout_minutes:
            return "No timeout: it waits until someone decides."
        then = "isolated" if self.on_timeout == "isolate" else "reported, nothing changed"
        return f"Without a decision within {self.timeout_minutes} minutes it is {then}."


def subject_of(finding: Finding) -> str:
    """What a finding is about, in a few words: its instance, or the instances of its group."""
    if finding.instance_id or not finding.group_instances:
        return finding.instance_id
    return f"{len(finding.group_instances)} instance(s)"


def finding_label(finding_id: str) -> str:
    return f"guardduty-finding-{finding_id}"


# What the responder writes itself (a bucket name, then validated ids): nothing in it can close a {noformat} block.
_MANIFEST_URI = re.compile(r"s3://[a-z0-9.-]{3,63}/[A-Za-z0-9._/-]{1,1024}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
# S3 version ids: letters, digits and a few marks (empty on a bucket without versioning).
_VERSION = re.compile(r"[A-Za-z0-9._+=-]{0,1024}")


def untrusted(value: object, limit: int = _MAX_VALUE) -> str:
    """Make a value from the finding inert in Jira wiki markup.

    Control and bidirectional characters go, URL schemes are defanged (`http://` becomes
    `http[:]//`, so Jira makes no link of it), markup characters are escaped, and the length is bounded.
    """
    text = unicodedata.normalize("NFKC", str(value))
    text = _CONTROL.sub(" ", text)
    cut = len(text) > limit
    text = _defang_schemes(text[:limit])
    escaped = _BACKSLASH.join(_MARKUP.sub(r"\\\1", part) for part in text.split("\\"))
    return escaped + (" (truncated)" if cut else "")


def plain(value: object, limit: int) -> str:
    """A single line of plain text (Jira's summary field is not rendered as markup)."""
    text = " ".join(_CONTROL.sub(" ", unicodedata.normalize("NFKC", str(value))).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def defanged(value: object, limit: int) -> str:
    """A single line of plain text no reader makes a link of (the SNS message: e-mail, SMS, chat).

    As `plain`, and URL schemes defanged as in Jira (`http[:]//`), and every dot between two letters
    or digits too, so that neither a bare host name nor an address is one (`evil[.]example`).
    """
    return plain(_HOST_DOT.sub("[.]", _defang_schemes(plain(str(value)[: 4 * limit], 4 * limit))), limit)


def _defang_schemes(text: str) -> str:
    return _SCHEME.sub(lambda match: match.group(1).replace(":", "[:]", 1), text)


def ticket_text(
    finding: Finding,
    decision: Decision,
    *,
    outcome: Outcome,
    actions: Sequence[str],
    snapshot_ids: Sequence[str],
    original_groups: Mapping[str, Sequence[str]],
    failures: Sequence[str] = (),
    approval: ApprovalAsk | None = None,
    group_lines: Sequence[str] = (),
    still_open: Sequence[str] = (),
    evidence_manifest: Mapping[str, str] | None = None,
) -> TicketText:
    isolated = outcome is Outcome.ISOLATED
    breaker = outcome is Outcome.BREAKER_OPEN
    summary = plain(
        f"[GuardDuty {finding.severity_label}] {outcome.verb} {subject_of(finding)}: {finding.finding_type}", 250
    )
    lines = [
        *_finding_section(finding),
        "",
        "h2. Decision",
        f"{decision.action.value}: {untrusted(decision.reason, 1000)}",
        "",
        "h2. Actions taken",
        *([f"* {untrusted(action, 1000)}" for action in actions] or ["* none"]),
    ]
    if failures:
        lines += ["", "h2. Not done (retried automatically)", *(f"* {untrusted(f, 1000)}" for f in failures)]
    if group_lines:
        lines += ["", *group_lines]
    lines += _evidence_lines(snapshot_ids, evidence_manifest)
    if still_open and isolated:
        lines += ["", "h2. What stays open", *(f"* {untrusted(path, 400)}" for path in still_open)]
    if original_groups and isolated:
        lines += ["", "h2. Security groups before isolation"]
        lines += [f"* {eni}: {', '.join(groups) or 'none'}" for eni, groups in sorted(original_groups.items())]
    if approval is not None:
        lines += ["", *_approval_lines(approval)]
    lines += ["", "h2. How to release", _how_to_release(finding, isolated)]
    if breaker:
        lines += ["", "h2. Circuit breaker", _BREAKER_NOTE.format(account=finding.account_id)]
    return TicketText(
        summary=summary,
        description="\n".join(lines),
        # A tripped breaker may be a flood of false positives or a real outbreak: either way, now.
        priority=_PRIORITIES["CRITICAL"] if breaker else _PRIORITIES[finding.severity_label],
        labels=(LABEL, "guardduty", finding_label(finding.finding_id)) + ((BREAKER_LABEL,) if breaker else ()),
    )


def _evidence_lines(snapshot_ids: Sequence[str], manifest: Mapping[str, str] | None) -> list[str]:
    """The snapshots; the manifest's URI and hash, preformatted so that both can be copied as they are."""
    lines = ["", "h2. Snapshots", *(f"* {snapshot}" for snapshot in snapshot_ids)] if snapshot_ids else []
    return lines + (["", *evidence_lines(manifest)] if manifest else [])


def evidence_lines(manifest: Mapping[str, str]) -> list[str]:
    """The Evidence section: the manifest's URI, version and hash, preformatted so that each can be copied."""
    uri, sha256 = str(manifest.get("uri", "")), str(manifest.get("sha256", ""))
    version = str(manifest.get("version_id", ""))
    if not (_MANIFEST_URI.fullmatch(uri) and _SHA256.fullmatch(sha256) and _VERSION.fullmatch(version)):
        found = f"{untrusted(uri, 1100)} version {untrusted(version, 1024)} (SHA-256 {untrusted(sha256, 64)})"
        return ["h2. Evidence", f"* Manifest: {found}"]
    return [
        "h2. Evidence",
        "The incident's evidence, and its manifest of SHA-256 hashes, in the evidence bucket (S3 Object Lock):",
        "{noformat}",
        f"manifest: {uri}",
        *([f"version:  {version}"] if version else []),
        f"SHA-256:  {sha256}",
        "{noformat}",
    ]


def _approval_lines(approval: ApprovalAsk) -> list[str]:
    approve, reject = approval.commands()
    lines = [
        "h2. Approval needed",
        "Nothing has been changed on the instance. Containment (above, under Actions taken) runs only once approved.",
        f"* To isolate: {{{{{untrusted(approve)}}}}}",
        f"* To leave it as it is: {{{{{untrusted(reject)}}}}}",
    ]
    if approval.jira_status:
        lines.append(f"* Or move this issue to the status *{untrusted(approval.jira_status, 100)}*: that approves it.")
    lines.append(approval.timeout_line())
    return lines


def approved_comment_text(
    finding: Finding,
    decision: Decision,
    *,
    outcome: Outcome,
    actions: Sequence[str] = (),
    failures: Sequence[str] = (),
) -> str:
    """The comment on a finding's issue once the isolation it asked approval for has run (or was held back)."""
    lines = [
        f"*{outcome.verb}* {finding.instance_id} after approval:",
        f"*Decision:* {untrusted(decision.reason, 1000)}",
        *(f"* {untrusted(action, 1000)}" for action in actions),
    ]
    if failures:
        lines += ["*Not done (retried automatically):*", *(f"* {untrusted(failure, 1000)}" for failure in failures)]
    if outcome is Outcome.ISOLATED:
        lines.append(_how_to_release(finding, True))
    return "\n".join(lines)


BREAKER_LABEL = str(DecisionCode.CIRCUIT_BREAKER)
_BREAKER_NOTE = (
    "More instances of account {account} were to be isolated this hour than the limit allows: a flood of false "
    "positives, or an outbreak. This instance was left running and connected. The breaker closes at the start of "
    "the next hour (UTC); isolate by hand now if the finding is real."
)


def _finding_section(finding: Finding) -> list[str]:
    return [
        "h2. GuardDuty finding",
        f"*Type:* {untrusted(finding.finding_type)}",
        f"*Title:* {untrusted(finding.title)}",
        f"*Severity:* {finding.severity:g} ({finding.severity_label})",
        f"*Account / region:* {finding.account_id} / {finding.region}",
        f"*Instance:* {subject_of(finding) or 'none named'}",
        *_credentials_lines(finding),
        f"*Finding id:* {finding.finding_id}",
        f"*Seen:* {finding.count} time(s), updated {untrusted(finding.updated_at, 40)}",
        *_activity_lines(finding),
        # Untrusted text never starts a line: Jira's block markup (h1., bq., lists) only works there.
        f"*Description:* {untrusted(finding.description, 2000)}",
        *_process_lines(finding),
        *_file_lines(finding),
    ]


def _activity_lines(finding: Finding) -> list[str]:
    """What GuardDuty saw, and its own label for the instance's part (shown, never the reason on its own)."""
    activity = finding.activity
    lines = [f"*Resource:* {untrusted(finding.resource_type, 40)}"]
    if activity.action_type:
        seen = " ".join(part for part in (activity.action_type, activity.direction, activity.remote) if part)
        lines.append(f"*Activity:* {untrusted(seen, 300)}")
    if finding.resource_role:
        lines.append(f"*GuardDuty's resource role:* {untrusted(finding.resource_role, 20)}")
    return lines


def _process_lines(finding: Finding) -> list[str]:
    process = finding.process
    if process is None:
        return []
    lines = [
        "",
        "h2. Process (Runtime Monitoring)",
        f"*Name:* {untrusted(process.name, 200)}, pid {untrusted(process.pid, 20)}, user {untrusted(process.user, 64)}",
        f"*Executable:* {untrusted(process.executable_path, 400)}",
        f"*SHA-256:* {untrusted(process.executable_sha256, 64)}",
    ]
    lines += [f"* parent: {untrusted(parent, 500)}" for parent in process.lineage]
    return lines


def _file_lines(finding: Finding) -> list[str]:
    if not finding.detected_files:
        return []
    lines = ["", "h2. Malicious files (Malware Protection for EC2)"]
    lines += [
        f"* {untrusted(file.threat, 200)}: {untrusted(file.path, 400)} (SHA-256 {untrusted(file.sha256, 64)})"
        for file in finding.detected_files
    ]
    return lines


def _how_to_release(finding: Finding, isolated: bool) -> str:
    if not isolated:
        return "Nothing was changed on the instance; nothing to release."
    return (
        f"After the investigation: {{{{guardduty-responder release {finding.instance_id}}}}} "
        "restores every network interface to the groups above, the instance profile, the metadata options and the "
        "connection-tracking timeouts, and stops further action on this finding. The instance's older credentials "
        "stay revoked unless --restore-credentials is given; --return-to-service also takes it out of Auto Scaling "
        "standby and registers it in its target groups again."
    )


def _credentials_lines(finding: Finding) -> list[str]:
    """The stolen credentials a credential finding names, for an issue or a comment (none otherwise)."""
    if finding.credentials is None:
        return []
    return [
        f"*Credentials:* role {untrusted(finding.credentials.role_name, 64)}, "
        f"access key {untrusted(finding.credentials.access_key_id, 128)}"
    ]


def comment_text(
    finding: Finding, decision: Decision, *, actions: Sequence[str] = (), failures: Sequence[str] = ()
) -> str:
    lines = [
        f"Another GuardDuty finding on {finding.instance_id}, which is already isolated:",
        f"*Type:* {untrusted(finding.finding_type)}",
        f"*Title:* {untrusted(finding.title)}",
        f"*Severity:* {finding.severity:g} ({finding.severity_label})",
        f"*Finding id:* {finding.finding_id}",
        f"*Decision:* {untrusted(decision.reason)}",
    ]
    lines += _credentials_lines(finding)
    lines += [f"* {untrusted(action, 1000)}" for action in actions]
    if failures:
        lines += ["*Not done (retried automatically):*", *(f"* {untrusted(failure, 1000)}" for failure in failures)]
    return "\n".join(lines)
