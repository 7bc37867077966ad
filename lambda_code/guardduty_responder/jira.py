"""Jira, Cloud or Data Center, through atlassian-python-api: which Jira it is, its requests, and its answers.

Which Jira it is comes from the secret (`"deployment": "cloud"` or `"datacenter"`, or a `cloud_id`,
which means Cloud through Atlassian's API gateway); when the secret does not say, the first
connection asks Jira (`serverInfo`'s `deploymentType`) and the container keeps the answer. The host
name is never the test: Cloud sites have custom domains, and scoped tokens go through the gateway.

The two differ in one request the responder sends: the search. Cloud answers only
`GET /rest/api/3/search/jql` (its `/rest/api/2/search` is removed and answers 410); Data Center
answers only `GET /rest/api/2/search`. Issues, comments, `serverInfo` and the create metadata are
`/rest/api/2` in both.

Every answer is either used or a TicketingError naming what came back (Jira's own messages,
bounded, as plain text; never a secret). A 429 is waited for when its Retry-After fits the step's
budget; a 401 or 403 drops the cached connection, so the next attempt reads the secret again.

`atlassian` is imported only when Jira is first reached: the import costs about a third of a second
and containment must never wait for it. `requests`' timeout bounds each read, not a request: a Jira
that answers a byte at a time would hold the caller as long as it likes. So the Jira work of a step
runs on a thread of its own, which the step waits for up to a deadline (`JiraTicketing.bounded`).
"""

from __future__ import annotations

import base64
import contextvars
import datetime
import email.utils
import ipaddress
import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote, urlparse

from .steps import STEP_ERRORS, StepSkipped
from .ticketing import LABEL, TicketingError, TicketText, plain, untrusted

PERMISSIONS = ("secretsmanager:GetSecretValue",)

CLOUD = "cloud"
DATACENTER = "datacenter"
# Scoped API tokens and service accounts reach a Cloud site only through the gateway, by its cloud id.
GATEWAY = "https://api.atlassian.com"
_CLOUD_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
# The responder's issues in the approval status one sweep reads, newest change first.
_APPROVAL_SEARCH = 100
_ISSUE_KEY = re.compile(r"^[A-Z][A-Z0-9_]*-[1-9][0-9]*$")
# The one request that differs: Cloud removed /rest/api/2/search (410) and Data Center lacks search/jql.
_SEARCH_PATHS = {CLOUD: "rest/api/3/search/jql", DATACENTER: "rest/api/2/search"}
# What `serverInfo` says, in either deployment.
_DEPLOYMENT_TYPES = {"cloud": CLOUD, "server": DATACENTER, "datacenter": DATACENTER}
# A 429 is waited for at most this many times in one step, each within the step's budget.
_RATE_LIMIT_WAITS = 3
# Pages of create metadata read at most (50 entries a page): a project with more is not the responder's.
_METADATA_PAGES = 10
# The fields the responder sets when it files an issue, as the create metadata names them.
FIELDS_SET = ("summary", "description", "priority", "labels")

T = TypeVar("T")


class JiraRefused(TicketingError):
    """Jira answered with an error status: its reasons by field, and whether the request may have been carried out."""

    def __init__(self, message: str, status: int, errors: Mapping[str, str]) -> None:
        super().__init__(message)
        self.status = status
        self.errors = dict(errors)

    @property
    def nothing_done(self) -> bool:
        """Whether the answer says the request was not carried out: a 4xx, a 501 or a 503.

        Any other status may come after the work was done: a redirect after the create, a 500 from a
        listener that failed once the issue existed, a 502, 504 or a proxy's own 5xx from a proxy
        that gave up on a Jira still working.
        """
        return 400 <= self.status < 500 or self.status in (501, 503)


# -- the secret -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JiraSite:
    """Where the REST API is, which deployment the secret says it is (None: ask Jira), and the credentials."""

    api_url: str
    deployment: str | None
    username: str | None = field(repr=False)
    secret: str = field(repr=False)

    @property
    def bearer(self) -> bool:
        return self.username is None

    @classmethod
    def from_secret(cls, raw: object) -> JiraSite:
        """The site a secret names, or a TicketingError saying what is wrong with it (never its values)."""
        try:
            secret = json.loads(raw) if isinstance(raw, str) else None
        except ValueError:
            secret = None
        if not isinstance(secret, dict):
            raise TicketingError("the Jira secret is not a JSON object with url and credentials")
        deployment = _deployment_of(secret)
        if secret.get("cloud_id") is not None:
            return _gateway_site(secret, deployment)
        url = check_jira_url(secret.get("url"))
        if _text(secret, "token"):
            if deployment == CLOUD:
                raise TicketingError(
                    "the Jira secret's 'token' is a Data Center personal access token: Jira Cloud takes "
                    "'username' (the account's e-mail) and 'api_token', or a scoped token through 'cloud_id'"
                )
            return cls(url.rstrip("/"), deployment, None, _text(secret, "token"))
        if _text(secret, "username") and _text(secret, "api_token"):
            return cls(url.rstrip("/"), deployment, _text(secret, "username"), _text(secret, "api_token"))
        raise TicketingError("the Jira secret holds neither 'token' nor 'username' and 'api_token'")


def _deployment_of(secret: Mapping[str, Any]) -> str | None:
    deployment = secret.get("deployment")
    if deployment is None:
        return None
    if deployment not in (CLOUD, DATACENTER):
        raise TicketingError(
            f'the Jira secret\'s \'deployment\' must be "{CLOUD}" or "{DATACENTER}" (or left out, to ask Jira), '
            f"not {plain(json.dumps(deployment), 40)}"
        )
    return str(deployment)


def _gateway_site(secret: Mapping[str, Any], deployment: str | None) -> JiraSite:
    """A Cloud site reached through the gateway by its cloud id: scoped API tokens and service accounts."""
    cloud_id = secret["cloud_id"]
    if not isinstance(cloud_id, str) or not _CLOUD_ID.fullmatch(cloud_id):
        raise TicketingError("the Jira secret's 'cloud_id' is not a cloud id (letters, digits and hyphens)")
    if deployment == DATACENTER:
        raise TicketingError("the Jira secret has a 'cloud_id', which only Jira Cloud has, and says \"datacenter\"")
    if not (_text(secret, "username") and _text(secret, "api_token")):
        raise TicketingError(
            "the Jira secret's 'cloud_id' goes with 'username' (the account's e-mail) and 'api_token' "
            "(its scoped token)"
        )
    gateway = check_jira_url(secret.get("url", GATEWAY)).rstrip("/")
    return JiraSite(f"{gateway}/ex/jira/{cloud_id}", CLOUD, _text(secret, "username"), _text(secret, "api_token"))


def _text(secret: Mapping[str, Any], name: str) -> str:
    value = secret.get(name)
    return value if isinstance(value, str) else ""


def check_jira_url(url: object) -> str:
    """The secret's Jira URL, if the API token may be sent to it: https://, or plain http:// to a loopback address.

    The token goes with every request, and over plain HTTP anyone on the path reads it. The local
    stand-ins listen on 127.0.0.1: a loopback address (127.0.0.0/8, ::1, localhost) never leaves the machine.
    """
    parsed = urlparse(url) if isinstance(url, str) else None
    if parsed is None or parsed.scheme not in ("https", "http") or not parsed.hostname:
        raise TicketingError("the Jira secret has no usable 'url' (https://your-jira.example.com)")
    if parsed.username is not None or parsed.password is not None:
        raise TicketingError("the Jira secret's url must not hold credentials: put them in 'username' and 'api_token'")
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


# -- one bounded piece of work ------------------------------------------------------------------------


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
        except _STEP_OUTCOMES as error:  # handed to the caller, who raises it
            self.error = error
        except Exception as error:  # an answer read wrongly must cost the ticket, not the message
            self.error = TicketingError(f"Jira's answer could not be used: {type(error).__name__}: {error}"[:300])
        finally:
            self.done.set()

    def wait(self, until: float) -> bool:
        """Whether the work is done by `until` (a time.monotonic() value)."""
        return self.done.wait(max(0.0, until - time.monotonic()))

    @property
    def over(self) -> bool:
        return self.given_up.is_set() or time.monotonic() >= self.ends


# What a step makes of an error (a failure or a skip); anything else from the work is made a TicketingError.
_STEP_OUTCOMES: tuple[type[BaseException], ...] = (*STEP_ERRORS, StepSkipped)
# The attempt whose thread is running: its requests stop once the caller has given up on it.
_ATTEMPT: contextvars.ContextVar[_Attempt | None] = contextvars.ContextVar("jira_attempt", default=None)


@dataclass(frozen=True)
class _Connection:
    client: Any
    deployment: str
    # What must never appear in an error: the token, and the Authorization values made of it.
    secrets: tuple[str, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class ProjectCheck:
    """One thing checked about the Jira project, and the remedy when it fails."""

    name: str
    ok: bool
    detail: str


class JiraTicketing:
    """Files issues and comments. The secret is read from Secrets Manager and kept while the container is warm."""

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
        self._connection: _Connection | None = None
        # Re-entrant: a 401 to the first request, made while connecting, lets go of the connection.
        self._lock = threading.RLock()
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

    # -- the requests -----------------------------------------------------------------------------------

    def deployment(self) -> str:
        """`cloud` or `datacenter`: what the secret says, or else what Jira said when first asked."""
        return self._connect().deployment

    def find_issue(self, label: str) -> str | None:
        """The key of the oldest issue of the project carrying `label`, or None when the search shows none."""
        jql = f'project = "{self._project_key}" AND labels = "{label}" ORDER BY created ASC'
        answer = self._send(
            "search", "GET", _SEARCH_PATHS[self.deployment()], params={"jql": jql, "fields": "labels", "maxResults": 1}
        )
        issues = answer.get("issues") if isinstance(answer, dict) else None
        if not isinstance(issues, list):
            raise TicketingError(f"Jira answered the search without a list of issues: {_shape(answer)}")
        for issue in issues:
            key = _issue_key(issue, "search")
            fields = issue.get("fields")
            labels = fields.get("labels") if isinstance(fields, dict) else None
            # The query asked for the label: an issue whose labels did not come back is taken as a match.
            if not isinstance(labels, list) or label in labels:
                return key
        return None

    def moved_to_status(self, keys: Sequence[str], status: str) -> dict[str, tuple[str, float]]:
        """Of these issues, those now in `status`: who made the latest change to it, and when (epoch seconds), from
        the issue's changelog ("" and 0 when the changelog Jira returns does not show it).

        One search of the responder's issues in that status, newest change first: a key deleted or moved since
        cannot fail it, as a `key in (...)` query would.
        """
        wanted = {key for key in keys if _ISSUE_KEY.fullmatch(key)}
        if not wanted:
            return {}
        jql = f'project = "{self._project_key}" AND labels = "{LABEL}" AND status = "{status}" ORDER BY updated DESC'
        params = {"jql": jql, "fields": "status", "expand": "changelog", "maxResults": _APPROVAL_SEARCH}
        answer = self._send("search", "GET", _SEARCH_PATHS[self.deployment()], params=params)
        issues = answer.get("issues") if isinstance(answer, dict) else None
        if not isinstance(issues, list):
            raise TicketingError(f"Jira answered the search without a list of issues: {_shape(answer)}")
        moved = {}
        for issue in issues:
            key = _issue_key(issue, "search")
            if key in wanted:
                moved[key] = _mover(issue.get("changelog"), status)
        return moved

    def create_issue(self, text: TicketText, *, before_sending: Callable[[], None] = lambda: None) -> str:
        """The key of the issue filed. Should Jira refuse the priority alone, the issue is filed without one.

        `before_sending` runs once Jira is reached and right before the create is sent (the ledger's
        mark that an issue may exist).
        """
        fields: dict[str, Any] = {
            "project": {"key": self._project_key},
            "issuetype": {"name": self._issue_type},
            "summary": text.summary,
            "description": text.description,
            "priority": {"name": text.priority},
            "labels": list(text.labels),
        }
        created, refused_priority = self._create(fields, before_sending)
        if refused_priority is not None:
            note = f"\n\nPriority {text.priority} could not be set: {untrusted(refused_priority, 300)}"
            fields = {**{k: v for k, v in fields.items() if k != "priority"}, "description": text.description + note}
            created, _ = self._create(fields, before_sending)
        return _issue_key(created, "issue creation")

    def _create(self, fields: dict[str, Any], before_sending: Callable[[], None]) -> tuple[Any, str | None]:
        """Jira's answer to one create, or Jira's reason when it refused the priority alone."""
        try:
            answer = self._send(
                "create issue",
                "POST",
                "rest/api/2/issue",
                body={"fields": fields},
                expect=(200, 201),
                before=before_sending,
            )
            return answer, None
        except JiraRefused as refused:
            if refused.status != 400 or set(refused.errors) != {"priority"} or "priority" not in fields:
                raise
            return None, refused.errors["priority"]

    def add_comment(self, issue_key: str, body: str) -> None:
        if not _ISSUE_KEY.fullmatch(issue_key):
            raise TicketingError(f"not a Jira issue key: {plain(issue_key, 40)}")
        path = f"rest/api/2/issue/{quote(issue_key, safe='')}/comment"
        try:
            self._send("comment", "POST", path, body={"body": body}, expect=(200, 201))
        except JiraRefused as refused:
            if refused.status == 413:
                # Jira keeps no more comments on this issue: retrying would fail the same way for ever.
                raise StepSkipped(f"{issue_key} has reached Jira's limit of comments per issue: {refused}") from None
            raise

    def check_project(self, priorities: Iterable[str]) -> list[ProjectCheck]:
        """What an incident needs of the project, each checked, with its remedy when it fails.

        The secret and the deployment; the search this deployment answers; the issue type in the
        project's create metadata; the fields the responder sets on its create screen; and every
        priority it maps severities to among the priority field's allowed values.
        """
        checks = [self._check("secret and deployment", self._describe_connection)]
        if not checks[0].ok:
            return checks
        checks.append(self._check("search", self._try_search))
        type_check, type_id = self._find_issue_type()
        checks.append(type_check)
        if type_id is not None:
            checks += self._check_fields(type_id, tuple(priorities))
        return checks

    # -- checks -------------------------------------------------------------------------------------------

    @staticmethod
    def _check(name: str, check: Callable[[], str]) -> ProjectCheck:
        try:
            return ProjectCheck(name, True, check())
        except TicketingError as error:
            return ProjectCheck(name, False, str(error))

    def _describe_connection(self) -> str:
        connection = self._connect()
        kind = "Cloud" if connection.deployment == CLOUD else "Data Center"
        return f"Jira {kind} at {connection.client.url} (secret {self._secret_arn})"

    def _try_search(self) -> str:
        self.find_issue("guardduty-responder-check")
        return f"project {self._project_key} searched through /{_SEARCH_PATHS[self.deployment()]}"

    def _find_issue_type(self) -> tuple[ProjectCheck, str | None]:
        name = f"issue type {self._issue_type}"
        try:
            types = self._pages(self._create_metadata(), "issueTypes")
        except TicketingError as error:
            remedy = "check JIRA_PROJECT_KEY and that the account may create issues in the project"
            return ProjectCheck(name, False, f"{error}: {remedy}"), None
        names = [str(entry.get("name")) for entry in types]
        for entry in types:
            if entry.get("name") == self._issue_type and entry.get("id"):
                return ProjectCheck(name, True, f"in project {self._project_key}"), str(entry["id"])
        return ProjectCheck(
            name,
            False,
            f"project {self._project_key} has no issue type {self._issue_type!r} the account may create "
            f"(it has: {plain(', '.join(names) or 'none', 300)}): set jira_issue_type to one of them",
        ), None

    def _check_fields(self, type_id: str, priorities: tuple[str, ...]) -> list[ProjectCheck]:
        try:
            fields = {
                str(entry.get("fieldId") or entry.get("key")): entry
                for entry in self._pages(self._create_metadata(type_id), "fields")
            }
        except TicketingError as error:
            return [ProjectCheck("create screen", False, str(error))]
        screen = f"{self._project_key} / {self._issue_type}"
        checks = [
            ProjectCheck(f"field {name}", True, f"on the create screen of {screen}")
            if name in fields
            else ProjectCheck(
                f"field {name}",
                False,
                f"not on the create screen of {screen}: add it to the screen"
                + (" (without labels no retry can find the issue it filed)" if name == "labels" else ""),
            )
            for name in FIELDS_SET
        ]
        if "priority" in fields:
            values = fields["priority"].get("allowedValues")
            listed = values if isinstance(values, list) else []
            allowed = {str(value.get("name")) for value in listed if isinstance(value, dict)}
            missing = [name for name in priorities if name not in allowed]
            checks.append(
                ProjectCheck(
                    "priorities",
                    not missing,
                    f"{', '.join(priorities)} all in the project's priority scheme"
                    if not missing
                    else f"{', '.join(missing)} not in the project's priority scheme (it has: "
                    f"{plain(', '.join(sorted(allowed)) or 'none', 300)}): add them to the scheme; meanwhile "
                    "issues are filed without a priority",
                )
            )
        return checks

    def _create_metadata(self, *type_id: str) -> str:
        """The path of the project's issue types, or of one issue type's fields, each part quoted whole."""
        parts = (self._project_key, "issuetypes", *type_id)
        return "rest/api/2/issue/createmeta/" + "/".join(quote(part, safe="") for part in parts)

    def _pages(self, path: str, items: str) -> list[dict[str, Any]]:
        """Every entry of a paged create-metadata list (Cloud calls it `issueTypes`/`fields`, Data Center `values`)."""
        entries: list[dict[str, Any]] = []
        for _ in range(_METADATA_PAGES):
            page = self._send("create metadata", "GET", path, params={"startAt": len(entries), "maxResults": 50})
            found = page.get(items, page.get("values")) if isinstance(page, dict) else None
            if not isinstance(found, list):
                raise TicketingError(f"Jira answered the create metadata without a list: {_shape(page)}")
            entries += [entry for entry in found if isinstance(entry, dict)]
            total = page.get("total")
            if not found or page.get("isLast") is True or (isinstance(total, int) and len(entries) >= total):
                break
        return entries

    # -- sending and reading ----------------------------------------------------------------------------

    def _send(
        self,
        what: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        expect: tuple[int, ...] = (200,),
        before: Callable[[], None] | None = None,
    ) -> Any:
        """Jira's JSON answer to one request, waiting out a 429 when its Retry-After fits the step's budget.

        `before` runs right before each time the request is sent. Outside a bounded step (the
        project check) the budget is JIRA_TIMEOUT_SECONDS from now.
        """
        connection = self._connect()
        attempt = _ATTEMPT.get()
        ends = attempt.ends if attempt is not None else time.monotonic() + self._timeout
        for waits in range(_RATE_LIMIT_WAITS + 1):
            self._still_wanted(what)
            if before is not None:
                before()
            response = self._request(connection, what, method, path, params, body)
            if response.status_code != 429:
                return self._read(connection, what, response, expect)
            wait = _retry_after(response.headers.get("Retry-After"))
            after = f"Retry-After {wait:g} s" if wait is not None else "no Retry-After"
            if waits == _RATE_LIMIT_WAITS:
                raise JiraRefused(
                    f"Jira rate-limited the {what} {waits + 1} times in a row (HTTP 429, {after})", 429, {}
                )
            if wait is None or time.monotonic() + wait >= ends - 1.0:
                raise JiraRefused(
                    f"Jira rate-limited the {what} (HTTP 429, {after}), longer than the step's budget: "
                    "deferred to the next delivery",
                    429,
                    {},
                )
            time.sleep(wait)
        raise AssertionError("unreachable: the last pass returns or raises")

    @staticmethod
    def _still_wanted(what: str) -> None:
        attempt = _ATTEMPT.get()
        if attempt is not None and attempt.over:
            # The step stopped waiting: a request now could file what its retry files again.
            raise TicketingError(f"Jira {what} not sent: the step gave up waiting for Jira")

    def _request(self, connection: _Connection, what: str, method: str, path: str, params: Any, body: Any) -> Any:
        import requests

        self._still_wanted(what)
        try:
            return connection.client.request(
                method, path=path, params=params, data=body, advanced_mode=True, allow_redirects=False
            )
        except requests.RequestException as error:
            raise TicketingError(f"Jira {what} failed: {type(error).__name__}") from None

    def _read(self, connection: _Connection, what: str, response: Any, expect: tuple[int, ...]) -> Any:
        status = response.status_code
        if status in expect:
            try:
                return response.json()
            except ValueError:
                raise TicketingError(
                    f"Jira answered the {what} with HTTP {status} and no JSON: {_page(response, connection.secrets)}"
                ) from None
        messages, errors = _jira_errors(response, connection.secrets)
        if status in (401, 403):
            self._forget(connection)
            raise JiraRefused(
                f"Jira refused the {what} (HTTP {status}): {messages or 'no reason given'}; check the secret's "
                "credentials and the account's permissions (the next attempt reads the secret again)",
                status,
                errors,
            )
        hint = ""
        if status == 410 and connection.deployment == DATACENTER:
            hint = '; Jira Cloud answers 410 here: set "deployment": "cloud" in the Jira secret'
        reason = messages or _page(response, connection.secrets)
        raise JiraRefused(f"Jira refused the {what} (HTTP {status}): {reason}{hint}", status, errors)

    # -- the connection -----------------------------------------------------------------------------------

    def _connect(self) -> _Connection:
        with self._lock:
            if self._connection is not None:
                return self._connection
        # Opened outside the lock: a Jira slow to answer serverInfo holds up this attempt, not the next ones.
        opened = self._open()
        with self._lock:
            if self._connection is None:
                self._connection = opened
            return self._connection

    def _forget(self, connection: _Connection) -> None:
        with self._lock:
            if self._connection is connection:
                self._connection = None

    def _open(self) -> _Connection:
        try:
            raw = self._secrets.get_secret_value(SecretId=self._secret_arn)["SecretString"]
        except KeyError:
            raise TicketingError("the Jira secret has no string value") from None
        site = JiraSite.from_secret(raw)
        try:
            from atlassian import Jira  # deferred: see the module docstring
        except (ImportError, SyntaxError) as error:
            # A broken layer must cost the ticket, not the notification that follows it.
            raise TicketingError(f"the Jira library cannot be loaded: {type(error).__name__}: {error}") from None
        # Bounded: the library's defaults can sleep up to 1800 s on a 429 and wait 75 s per request.
        options: dict[str, Any] = {
            "url": site.api_url,
            "timeout": self._timeout,
            "backoff_and_retry": False,
            "retry_with_header": False,
            "max_backoff_seconds": 0,
            "max_backoff_retries": 0,
            "cloud": site.deployment == CLOUD,
        }
        if site.bearer:
            client = Jira(token=site.secret, **options)
        else:
            client = Jira(username=site.username, password=site.secret, **options)
        secrets = _secret_forms(site)
        deployment = site.deployment or self._ask_deployment(_Connection(client, "", secrets))
        return _Connection(client, deployment, secrets)

    def _ask_deployment(self, connection: _Connection) -> str:
        answer = self._read(
            connection,
            "server info",
            self._request(connection, "server info", "GET", "rest/api/2/serverInfo", None, None),
            (200,),
        )
        said = answer.get("deploymentType") if isinstance(answer, dict) else None
        deployment = _DEPLOYMENT_TYPES.get(str(said).lower()) if isinstance(said, str) else None
        if deployment is None:
            raise TicketingError(
                f"Jira's server info names no deployment type this responder knows ({_shape(said)}): "
                f'set "deployment": "{CLOUD}" or "{DATACENTER}" in the Jira secret'
            )
        return deployment


def _mover(changelog: Any, status: str) -> tuple[str, float]:
    """Who made the latest change of the issue's status to `status` (as Jira names them) and when; "", 0 if unshown."""
    histories = changelog.get("histories") if isinstance(changelog, dict) else None
    latest: tuple[str, float] = ("", 0.0)
    for history in histories if isinstance(histories, list) else []:
        if not isinstance(history, dict) or not isinstance(history.get("items"), list):
            continue
        to_status = any(
            isinstance(item, dict) and item.get("field") == "status" and item.get("toString") == status
            for item in history["items"]
        )
        when = _jira_time(history.get("created"))
        if to_status and when >= latest[1]:
            latest = (_person(history.get("author")), when)
    return latest


def _jira_time(value: Any) -> float:
    """A Jira timestamp (2026-11-29T12:00:00.000+0000) as epoch seconds; 0 when it is not one."""
    try:
        return datetime.datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
    except ValueError:
        return 0.0


def _person(author: Any) -> str:
    """A Jira user as a record names them: display name and account id (Cloud) or user name (Data Center)."""
    if not isinstance(author, dict):
        return ""
    name = str(author.get("displayName") or "")[:100]
    ident = str(author.get("accountId") or author.get("name") or "")[:128]
    return f"{name} ({ident})" if name and ident else name or ident


def _issue_key(answer: Any, what: str) -> str:
    key = answer.get("key") if isinstance(answer, dict) else None
    if not isinstance(key, str) or not _ISSUE_KEY.fullmatch(key):
        raise TicketingError(f"Jira answered the {what} without an issue key: {_shape(answer)}")
    return key


def _jira_errors(response: Any, secrets: tuple[str, ...]) -> tuple[str, dict[str, str]]:
    """Jira's own reasons (`errorMessages`, `errors`), as one bounded line of plain text, and the errors by field."""
    try:
        body = response.json()
    except ValueError:
        return "", {}
    if not isinstance(body, dict):
        return "", {}
    listed = body.get("errorMessages")
    messages = [str(message) for message in listed if isinstance(message, str)] if isinstance(listed, list) else []
    errors = body.get("errors")
    by_field = {str(name): str(reason) for name, reason in errors.items()} if isinstance(errors, dict) else {}
    messages += [f"{name}: {reason}" for name, reason in by_field.items()]
    text = plain(_redacted("; ".join(messages), secrets), 500)
    return text, {name: plain(_redacted(reason, secrets), 300) for name, reason in by_field.items()}


def _page(response: Any, secrets: tuple[str, ...]) -> str:
    """What a non-JSON answer was: its content type and the start of its text, bounded, as plain text."""
    kind = plain(response.headers.get("Content-Type") or "no content type", 60)
    start = plain(_redacted(response.text[:400], secrets)[:200], 80) if response.text else "empty"
    return f"{kind}, starting {start!r}"


def _secret_forms(site: JiraSite) -> tuple[str, ...]:
    """The token and every form of it an Authorization header carries, which an answer might echo."""
    forms = [site.secret]
    if site.username is not None:
        forms += [
            f"{site.username}:{site.secret}",
            base64.b64encode(f"{site.username}:{site.secret}".encode()).decode(),
        ]
    return tuple(form for form in forms if form)


def _redacted(text: str, secrets: tuple[str, ...]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "[redacted]")
    return text


def _shape(value: Any) -> str:
    """A JSON value as a bounded line of plain text, to name an unexpected answer."""
    try:
        text = json.dumps(value, default=str)
    except ValueError:
        text = repr(value)
    return plain(text, 160)


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (a number of seconds or an HTTP date), or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())
