"""The Jira issue: its text (pure) and the adapter that files it through atlassian-python-api.

`atlassian` is imported only when an issue is about to be filed: the import costs about a third
of a second and containment must never wait for it.

`requests`' timeout bounds each read, not a request: a Jira that answers a byte at a time would
hold the caller as long as it likes. So the Jira work of a step runs on a thread of its own, which
the step waits for up to a deadline (`JiraTicketing.bounded`).
"""

from __future__ import annotations

import contextvars
import ipaddress
import json
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlparse

from .finding import Finding
from .policy import Decision, DecisionCode, Outcome

PERMISSIONS = ("secretsmanager:GetSecretValue",)

LABEL = "guardduty-responder"
_PRIORITIES = {"CRITICAL": "Highest", "HIGH": "High", "MEDIUM": "Medium", "LOW": "Low"}
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
    """Jira could not be reached, refused the request, or the credentials are unusable."""


T = TypeVar("T")


@dataclass
class _Attempt:
    """One bounded piece of Jira work, run on its own thread: its outcome, and whether its caller gave up on it."""

    ends: float
    done: threading.Event = field(default_factory=threading.Event)
    given_up: threading.Event = field(default_factory=threading.Event)
    value: Any = None
    error: BaseException | None = None

    def run(self, work: Callable[[], Any]) -> None:
        try:
            self.value = work()
        except BaseException as error:  # handed to the caller, who raises it
            self.error = error
        finally:
            self.done.set()

    def wait(self, until: float) -> bool:
        """Whether the work is done by `until` (a time.monotonic() value)."""
        return self.done.wait(max(0.0, until - time.monotonic()))

    @property
    def over(self) -> bool:
        return self.given_up.is_set() or time.monotonic() >= self.ends


# The attempt whose thread is running: its requests stop once the caller has given up on it.
_ATTEMPT: contextvars.ContextVar[_Attempt | None] = contextvars.ContextVar("jira_attempt", default=None)


@dataclass(frozen=True)
class TicketText:
    summary: str
    description: str
    priority: str
    labels: tuple[str, ...]


def finding_label(finding_id: str) -> str:
    return f"guardduty-finding-{finding_id}"


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
) -> TicketText:
    isolated = outcome is Outcome.ISOLATED
    breaker = outcome is Outcome.BREAKER_OPEN
    summary = plain(
        f"[GuardDuty {finding.severity_label}] {outcome.verb} {finding.instance_id}: {finding.finding_type}", 250
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
        lines += [
            "",
            "h2. Not done (retried automatically)",
            *(f"* {untrusted(failure, 1000)}" for failure in failures),
        ]
    if snapshot_ids:
        lines += ["", "h2. Snapshots", *(f"* {snapshot}" for snapshot in snapshot_ids)]
    if original_groups and isolated:
        lines += ["", "h2. Security groups before isolation"]
        lines += [f"* {eni}: {', '.join(groups) or 'none'}" for eni, groups in sorted(original_groups.items())]
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
        f"*Instance:* {finding.instance_id}",
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
        "restores every network interface to the groups above and stops further action on this finding."
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


def check_jira_url(url: object) -> str:
    """The secret's Jira URL, if the API token may be sent to it: https://, or plain http:// to a loopback address.

    The token goes with every request, and over plain HTTP anyone on the path reads it. The local
    stand-ins listen on 127.0.0.1: a loopback address (127.0.0.0/8, ::1, localhost) never leaves the machine.
    """
    parsed = urlparse(url) if isinstance(url, str) else None
    if parsed is None or parsed.scheme not in ("https", "http") or not parsed.hostname:
        raise TicketingError("the Jira secret has no usable 'url' (https://your-jira.example.com)")
    if parsed.scheme == "http" and not _loopback(parsed.hostname):
        raise TicketingError(
            f"the Jira secret's url must be https:// (plain http:// only to a loopback address: 127.0.0.0/8, ::1, "
            f"localhost), not http://{parsed.hostname}"
        )
    return str(url)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class JiraTicketing:
    """Files issues and comments. Credentials come from Secrets Manager and are cached while warm."""

    def __init__(
        self,
        secrets: Any,
        *,
        secret_arn: str,
        project_key: str,
        issue_type: str,
        timeout_seconds: int,
    ) -> None:
        self._secrets = secrets
        self._secret_arn = secret_arn
        self._project_key = project_key
        self._issue_type = issue_type
        self._timeout = timeout_seconds
        self._client: Any = None
        self._lock = threading.Lock()
        # Work given up on while still waiting for Jira, by key: a later call for the same key waits for it.
        # A lock of its own: a thread holding the client's lock (reading the secret) must not hold up the caller.
        self._unfinished: dict[str, _Attempt] = {}
        self._unfinished_lock = threading.Lock()

    def bounded(self, seconds: float, work: Callable[[], T], *, key: str | None = None) -> T:
        """The result of `work` (requests through this adapter), waited for `seconds` at most in all.

        Past the deadline a TicketingError is raised at once. The work's thread may still be waiting
        for the answer to a request it sent, but it sends no further one. A later call with the same
        `key` in this container first waits for that thread, and takes its result if it succeeded:
        an issue it filed late is not filed again.
        """
        attempt = _Attempt(time.monotonic() + seconds)
        earlier = self._take_unfinished(key)
        if earlier is not None:
            if not earlier.wait(attempt.ends):
                self._keep_unfinished(key, earlier)
                raise TicketingError(
                    f"Jira did not answer within {seconds:g} s: an earlier request is still unanswered"
                )
            if earlier.error is None:
                return earlier.value
        context = contextvars.copy_context()
        context.run(_ATTEMPT.set, attempt)
        threading.Thread(target=context.run, args=(attempt.run, work), name="jira", daemon=True).start()
        if not attempt.wait(attempt.ends):
            attempt.given_up.set()
            self._keep_unfinished(key, attempt)
            raise TicketingError(f"Jira did not answer within {seconds:g} s (JIRA_TIMEOUT_SECONDS)")
        if attempt.error is not None:
            raise attempt.error
        return attempt.value

    def _take_unfinished(self, key: str | None) -> _Attempt | None:
        with self._unfinished_lock:
            return self._unfinished.pop(key, None) if key is not None else None

    def _keep_unfinished(self, key: str | None, attempt: _Attempt) -> None:
        if key is not None:
            with self._unfinished_lock:
                self._unfinished[key] = attempt

    def find_issue(self, label: str) -> str | None:
        """The key of an issue carrying `label`, so a retry after a crash never files a second one."""
        jql = f'project = "{self._project_key}" AND labels = "{label}" ORDER BY created ASC'
        result = self._call("search", lambda jira: jira.jql(jql, fields=["key"], limit=1))
        issues = (result or {}).get("issues") or []
        return issues[0]["key"] if issues else None

    def create_issue(self, text: TicketText) -> str:
        fields = {
            "project": {"key": self._project_key},
            "issuetype": {"name": self._issue_type},
            "summary": text.summary,
            "description": text.description,
            "priority": {"name": text.priority},
            "labels": list(text.labels),
        }
        created = self._call("create issue", lambda jira: jira.issue_create(fields=fields))
        if not isinstance(created, dict) or not created.get("key"):
            raise TicketingError(f"Jira answered the issue creation without a key: {str(created)[:200]}")
        return created["key"]

    def add_comment(self, issue_key: str, body: str) -> None:
        self._call("comment", lambda jira: jira.issue_add_comment(issue_key, body))

    def _call(self, what: str, request: Any) -> Any:
        import requests

        jira = self._jira()
        attempt = _ATTEMPT.get()
        if attempt is not None and attempt.over:
            # The step stopped waiting: a request now could file what its retry files again.
            raise TicketingError(f"Jira {what} not sent: the step gave up waiting for Jira")
        try:
            return request(jira)
        except requests.HTTPError as error:
            status = error.response.status_code if error.response is not None else "?"
            raise TicketingError(f"Jira {what} failed with HTTP {status}") from None
        except requests.RequestException as error:
            raise TicketingError(f"Jira {what} failed: {type(error).__name__}") from None
        except ValueError as error:
            raise TicketingError(f"Jira {what} failed: {error}"[:300]) from None

    def _jira(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _connect(self) -> Any:
        try:
            raw = self._secrets.get_secret_value(SecretId=self._secret_arn)["SecretString"]
            secret = json.loads(raw)
        except (KeyError, ValueError) as error:
            raise TicketingError(
                f"the Jira secret is not JSON with url and credentials ({type(error).__name__})"
            ) from None
        url = check_jira_url(secret.get("url") if isinstance(secret, dict) else None)

        try:
            from atlassian import Jira  # deferred: see the module docstring
        except (ImportError, SyntaxError) as error:
            # A broken layer must cost the ticket, not the notification that follows it.
            raise TicketingError(f"the Jira library cannot be loaded: {type(error).__name__}: {error}") from None

        # Bounded: the library's defaults can sleep up to 1800 s on a 429 and wait 75 s per request.
        options: dict[str, Any] = {
            "url": url,
            "timeout": self._timeout,
            "backoff_and_retry": False,
            "retry_with_header": False,
            "max_backoff_seconds": 0,
            "max_backoff_retries": 0,
        }
        if secret.get("token"):
            return Jira(token=secret["token"], cloud=False, **options)
        if secret.get("username") and secret.get("api_token"):
            cloud = (urlparse(url).hostname or "").endswith(".atlassian.net")
            return Jira(username=secret["username"], password=secret["api_token"], cloud=cloud, **options)
        raise TicketingError("the Jira secret holds neither 'token' nor 'username' and 'api_token'")
