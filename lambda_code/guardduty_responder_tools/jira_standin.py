"""A Jira stand-in on 127.0.0.1 that plays Jira Cloud or Jira Data Center (demo and tests).

Each deployment answers only what that deployment answers:

- Cloud: the removed searches (`/rest/api/2/search`, `/rest/api/3/search`) answer 410 with
  Atlassian's error body; `GET /rest/api/3/search/jql` pages with `nextPageToken` and returns only
  the fields asked for; every path is also served under `/ex/jira/{cloudId}` (Atlassian's API
  gateway, which scoped tokens use); Basic authentication only.
- Data Center: `GET /rest/api/2/search` with `startAt`, `maxResults` and `total`; no
  `/rest/api/3/search/jql`; Bearer personal access tokens or Basic.

Both keep issues and comments in memory, check a create against the project's create screen, issue
types and priority scheme (answering Jira's error shape, `errorMessages` and `errors`), serve
`serverInfo` and the create metadata, and refuse comments past a per-issue limit with 413. Search
can lag behind creation (`index_delay_seconds`), as Jira Cloud's does. Tests can make it fail (an
HTTP status, optionally with Retry-After), hang, trickle its answer a byte at a time, carry out a
request and lose the answer, or answer 200 with something malformed, for a number of requests.
Every exchange is kept, so tests can check each request and answer against Atlassian's API.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

from .loopback import LoopbackServer, answer_json, read_json

CLOUD = "cloud"
DATACENTER = "datacenter"
CLOUD_ID = "5b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d"

_KEY = r"([A-Z][A-Z0-9_]*-\d+)"
_ISSUE = re.compile(r"^/rest/api/2/issue/?$")
_COMMENT = re.compile(rf"^/rest/api/2/issue/{_KEY}/comment/?$")
_GET_ISSUE = re.compile(rf"^/rest/api/2/issue/{_KEY}/?$")
_CLOUD_SEARCH = re.compile(r"^/rest/api/3/search/jql/?$")
REMOVED_SEARCH = re.compile(r"^/rest/api/(?:2|3|latest)/search/?$")
_DC_SEARCH = re.compile(r"^/rest/api/2/search/?$")
_SERVER_INFO = re.compile(r"^/rest/api/2/serverInfo/?$")
_ISSUE_TYPES = re.compile(r"^/rest/api/2/issue/createmeta/([^/]+)/issuetypes/?$")
_TYPE_FIELDS = re.compile(r"^/rest/api/2/issue/createmeta/([^/]+)/issuetypes/([^/]+)/?$")
_GATEWAY = re.compile(r"^/ex/jira/([^/]+)(/.*)$")
_LABEL = re.compile(r'labels\s*=\s*"([^"]+)"')
_PROJECT = re.compile(r'project\s*=\s*"([^"]+)"')
_KEYS = re.compile(r"key\s+in\s*\(([^)]*)\)")
_STATUS = re.compile(r'status\s*=\s*"([^"]+)"')
# The status of a new issue, as a fresh Jira project's workflow names it.
FIRST_STATUS = "To Do"

# Atlassian's answer to the searches Jira Cloud removed (its developer changelog, CHANGE-2046).
REMOVED_SEARCH_ANSWER = {
    "errorMessages": [
        "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
        "A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"
    ],
    "errors": {},
}
# A sign-in page, as a proxy or an expired single sign-on session answers with 200.
SIGN_IN_PAGE = "<!DOCTYPE html><html><head><title>Log in - Jira</title></head><body>Log in</body></html>"
MALFORMED = ("html", "list", "no-key")
_UNAUTHENTICATED = "You are not authenticated. Authentication required to perform this operation."
PRIORITIES = ("Highest", "High", "Medium", "Low", "Lowest")
SCREEN = ("summary", "issuetype", "project", "description", "priority", "labels", "reporter", "assignee")


@dataclass
class Fault:
    status: int | None = None
    hang_seconds: float = 0.0
    # Seconds between the bytes of the answer (the request itself is carried out first).
    trickle_seconds: float = 0.0
    # Carry the request out, then close the connection without an answer.
    lose: bool = False
    # Close the connection without an answer and without carrying the request out.
    drop: bool = False
    # Answer 200 with something that is not what the endpoint answers (one of MALFORMED).
    malformed: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # The answer's body with `status` (None: Jira's error shape naming the fault).
    body: Any = None
    remaining: int = 1
    # Only requests whose path this matches (re.search) meet the fault; None: every request.
    only: str | None = None

    def meets(self, path: str) -> bool:
        return self.only is None or re.search(self.only, path) is not None


@dataclass
class Project:
    """A project's create metadata: issue types (name to id), the fields on its create screen, its priorities."""

    issue_types: dict[str, str] = field(default_factory=lambda: {"Task": "10002", "Bug": "10004"})
    screen: tuple[str, ...] = SCREEN
    priorities: tuple[str, ...] = PRIORITIES


@dataclass(frozen=True)
class Exchange:
    """One request and the answer the stand-in gave; `deliberate` when a test asked for that answer."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    status: int | None
    answer: Any
    deliberate: bool


@dataclass
class JiraStandIn:
    deployment: str = CLOUD
    issues: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    projects: dict[str, Project] = field(default_factory=lambda: {"SEC": Project()})
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""
    # The Authorization header every request must carry (None: any credentials of the deployment's kinds).
    authorization: str | None = None
    # Seconds after its creation before an issue shows in search results (Jira Cloud's index lags).
    index_delay_seconds: float = 0.0
    comment_limit: int = 5000
    # Seconds added to every request, to stand in for a remote Jira's round trip (the benchmark's).
    latency_seconds: float = 0.0
    # Answers being trickled right now.
    trickling: int = 0
    # Raised by heal() and stop(): an answer being trickled is cut off, its connection closed.
    _generation: int = 0
    _server: LoopbackServer | None = None

    def __post_init__(self) -> None:
        if self.deployment not in (CLOUD, DATACENTER):
            raise ValueError(f"deployment must be {CLOUD!r} or {DATACENTER!r}, not {self.deployment!r}")

    # -- test controls ----------------------------------------------------------------------------

    # Each control takes `only`, a regular expression: then only requests whose path it matches meet the fault.

    def fail(
        self,
        status: int,
        times: int = 1,
        headers: dict[str, str] | None = None,
        only: str | None = None,
        body: Any = None,
    ) -> None:
        """Answer the next `times` requests with `status` (and `body`, else Jira's error shape), doing nothing."""
        self._add(Fault(status=status, headers=headers or {}, body=body, remaining=times, only=only))

    def hang(self, seconds: float, times: int = 1, only: str | None = None) -> None:
        self._add(Fault(hang_seconds=seconds, remaining=times, only=only))

    def trickle(self, seconds_per_byte: float, times: int = 1, only: str | None = None) -> None:
        """Carry out the next `times` requests, then send each answer a byte every `seconds_per_byte`.

        Every read of the client gets something before its timeout, so a per-read timeout never
        ends the wait: only a deadline on the whole call does.
        """
        self._add(Fault(trickle_seconds=seconds_per_byte, remaining=times, only=only))

    def lose_answers(self, times: int = 1, only: str | None = None) -> None:
        """Carry out the next `times` requests, then close each connection without answering."""
        self._add(Fault(lose=True, remaining=times, only=only))

    def drop_requests(self, times: int = 1, only: str | None = None) -> None:
        """Close the next `times` connections without answering and without carrying their requests out."""
        self._add(Fault(drop=True, remaining=times, only=only))

    def malform(self, kind: str, times: int = 1, only: str | None = None) -> None:
        """Answer the next `times` requests with 200 and `kind`: a sign-in page, a JSON list, or no issue key."""
        if kind not in MALFORMED:
            raise ValueError(f"kind must be one of {MALFORMED}, not {kind!r}")
        self._add(Fault(malformed=kind, remaining=times, only=only))

    def heal(self) -> None:
        with self.lock:
            self.faults.clear()
            self._generation += 1

    def catch_up(self) -> None:
        """The search index catches up: every issue shows in search results from now on."""
        with self.lock:
            for issue in self.issues.values():
                issue["searchable_at"] = 0.0

    def use_credentials(self, *, username: str | None = None, token: str) -> None:
        """Accept only these credentials: Basic with `username`, else a Bearer token."""
        if username is None:
            self.authorization = f"Bearer {token}"
        else:
            self.authorization = "Basic " + base64.b64encode(f"{username}:{token}".encode()).decode()

    def secret_for(self, token: str, *, username: str = "responder@example.com") -> dict[str, str]:
        """The Jira secret a team of this deployment would store, made the only credentials accepted.

        Cloud: the account's e-mail and an API token (Basic). Data Center: a personal access token
        (Bearer). Neither says which deployment it is: the responder asks `serverInfo`.
        """
        if self.deployment == CLOUD:
            self.use_credentials(username=username, token=token)
            return {"url": self.url, "username": username, "api_token": token}
        self.use_credentials(token=token)
        return {"url": self.url, "token": token}

    def issues_labelled(self, label: str) -> list[dict[str, Any]]:
        with self.lock:
            return [issue for issue in self.issues.values() if label in issue["fields"].get("labels", [])]

    def _add(self, fault: Fault) -> None:
        with self.lock:
            self.faults.append(fault)

    # -- server -------------------------------------------------------------------------------------

    def start(self) -> JiraStandIn:
        self._server = LoopbackServer(self._serve)
        self.url = self._server.url
        return self

    def stop(self) -> None:
        self.heal()
        if self._server is not None:
            self._server.stop()

    def _serve(self, request: BaseHTTPRequestHandler, method: str) -> None:
        body = read_json(request)
        parsed = urlparse(request.path)
        query = parse_qs(parsed.query)
        if self.latency_seconds:
            time.sleep(self.latency_seconds)
        with self.lock:
            self.requests.append((method, parsed.path, request.headers.get("Authorization")))
            fault = self._next_fault(parsed.path)
        if fault is not None and fault.hang_seconds:
            time.sleep(fault.hang_seconds)
        if fault is not None and fault.status is not None:
            answer = (
                fault.body
                if fault.body is not None
                else {"errorMessages": [f"stand-in fault {fault.status}"], "errors": {}}
            )
            self._reply(request, (method, parsed.path, query, body), fault.status, answer, fault.headers, True)
            return
        if fault is not None and fault.drop:
            self._hang_up(request, (method, parsed.path, query, body))
            return
        status, payload = self._handle(method, parsed.path, query, body, request.headers.get("Authorization"))
        if fault is not None and fault.lose:
            self._hang_up(request, (method, parsed.path, query, body))
            return
        if fault is not None and fault.malformed is not None:
            self._malformed(request, (method, parsed.path, query, body), fault.malformed)
            return
        if fault is not None and fault.trickle_seconds:
            self._record(method, parsed.path, query, body, status, payload, False)
            self._trickle(request, status, payload, fault.trickle_seconds)
            return
        self._reply(request, (method, parsed.path, query, body), status, payload, {}, False)

    def _hang_up(self, request: BaseHTTPRequestHandler, asked: tuple[str, str, dict[str, list[str]], Any]) -> None:
        self._record(*asked, None, None, True)
        request.close_connection = True
        request.connection.shutdown(socket.SHUT_RDWR)

    def _next_fault(self, path: str) -> Fault | None:
        fault = next((fault for fault in self.faults if fault.meets(path)), None)
        if fault is not None:
            fault.remaining -= 1
            if fault.remaining <= 0:
                self.faults.remove(fault)
        return fault

    def _handle(
        self, method: str, path: str, query: dict[str, list[str]], body: Any, authorization: str | None
    ) -> tuple[int, Any]:
        gateway = _GATEWAY.match(path)
        if gateway is not None:
            if self.deployment != CLOUD or gateway.group(1) != CLOUD_ID:
                return 404, {"errorMessages": ["Not Found"], "errors": {}}
            path = gateway.group(2)
        refused = self._refuse_credentials(authorization)
        if refused is not None:
            return refused
        with self.lock:
            return self._route(method, path, query, body)

    def _refuse_credentials(self, authorization: str | None) -> tuple[int, Any] | None:
        scheme = (authorization or "").split(" ", 1)[0]
        kinds = ("Basic",) if self.deployment == CLOUD else ("Basic", "Bearer")
        if scheme not in kinds or (self.authorization is not None and authorization != self.authorization):
            return 401, {"errorMessages": [_UNAUTHENTICATED], "errors": {}}
        return None

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        if self.deployment == CLOUD and REMOVED_SEARCH.match(path):
            return 410, REMOVED_SEARCH_ANSWER
        search = (_CLOUD_SEARCH, self._cloud_search) if self.deployment == CLOUD else (_DC_SEARCH, self._dc_search)
        routes: list[tuple[str, re.Pattern[str], Any]] = [
            ("GET", _SERVER_INFO, lambda: (200, self._server_info())),
            ("GET", search[0], lambda: search[1](query)),
            ("POST", _ISSUE, lambda: self._create((body or {}).get("fields") if isinstance(body, dict) else None)),
            ("POST", _COMMENT, lambda key: self._comment(key, body)),
            ("GET", _GET_ISSUE, self._get_issue),
            ("GET", _ISSUE_TYPES, lambda project: self._issue_types(project, query)),
            ("GET", _TYPE_FIELDS, lambda project, type_id: self._type_fields(project, type_id, query)),
        ]
        for route_method, pattern, answer in routes:
            match = pattern.match(path)
            if method == route_method and match:
                return answer(*match.groups())
        return 404, {"errorMessages": [f"no route for {method} {path}"], "errors": {}}

    # -- endpoints ----------------------------------------------------------------------------------

    def _server_info(self) -> dict[str, Any]:
        cloud = self.deployment == CLOUD
        return {
            "baseUrl": self.url,
            "version": "1001.0.0-SNAPSHOT" if cloud else "10.3.2",
            "versionNumbers": [1001, 0, 0] if cloud else [10, 3, 2],
            "deploymentType": "Cloud" if cloud else "Server",
            "buildNumber": 100289 if cloud else 10030002,
            "buildDate": "2026-11-20T00:00:00.000+0000",
            "serverTime": "2026-11-29T12:00:00.000+0000",
            "scmInfo": "0123456789abcdef0123456789abcdef01234567",
            "serverTitle": "Jira",
        }

    def transition(self, key: str, status: str, *, by: str) -> None:
        """A person moves the issue to `status` (as Jira's UI does): its status and changelog change."""
        issue = self.issues[key]
        author: dict[str, Any] = {"displayName": by, "active": True}
        author.update({"accountId": f"5b10ac8d82e05b22cc7d{len(by):04d}"} if self.deployment == CLOUD else {"name": by})
        issue["histories"].append(
            {
                "id": str(len(issue["histories"]) + 1),
                "author": author,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
                + f".{int(time.time() * 1000) % 1000:03d}+0000",
                "items": [{"field": "status", "fieldtype": "jira", "fromString": issue["status"], "toString": status}],
            }
        )
        issue["status"] = status

    def _matching(self, jql: str) -> list[dict[str, Any]]:
        labels = _LABEL.findall(jql)
        project = _PROJECT.search(jql)
        keys = _KEYS.search(jql)
        status = _STATUS.search(jql)
        now = time.monotonic()
        return [
            issue
            for issue in sorted(self.issues.values(), key=lambda item: int(item["id"]))
            if all(label in issue["fields"].get("labels", []) for label in labels)
            and (project is None or issue["key"].startswith(project.group(1) + "-"))
            and (keys is None or issue["key"] in {key.strip() for key in keys.group(1).split(",")})
            and (status is None or issue["status"] == status.group(1))
            and issue["searchable_at"] <= now
        ]

    def _found(self, issue: dict[str, Any], fields: list[str], expand: str = "") -> dict[str, Any]:
        found: dict[str, Any] = {"id": issue["id"], "key": issue["key"], "self": self._self(issue["id"])}
        shown = {**issue["fields"], "status": {"name": issue["status"]}}
        chosen = {name: shown[name] for name in fields if name in shown}
        if chosen or self.deployment == DATACENTER:
            found["fields"] = chosen
        if "changelog" in expand.split(","):
            histories = issue["histories"]
            found["changelog"] = {
                "startAt": 0,
                "maxResults": len(histories),
                "total": len(histories),
                "histories": histories,
            }
        return found

    def _cloud_search(self, query: dict[str, list[str]]) -> tuple[int, Any]:
        fields = _fields(query, default=["id"])
        limit = int(query.get("maxResults", ["50"])[0])
        start = int(query.get("nextPageToken", ["0"])[0] or 0)
        found = self._matching(query.get("jql", [""])[0])
        page = found[start : start + limit]
        expand = query.get("expand", [""])[0]
        answer: dict[str, Any] = {"issues": [self._found(issue, fields, expand) for issue in page]}
        if start + limit < len(found):
            answer["nextPageToken"] = str(start + limit)
        answer["isLast"] = start + limit >= len(found)
        return 200, answer

    def _dc_search(self, query: dict[str, list[str]]) -> tuple[int, Any]:
        fields = _fields(query, default=["summary"])
        limit = int(query.get("maxResults", ["50"])[0])
        start = int(query.get("startAt", ["0"])[0])
        found = self._matching(query.get("jql", [""])[0])
        expand = query.get("expand", [""])[0]
        issues = [self._found(issue, fields, expand) for issue in found[start : start + limit]]
        return 200, {
            "expand": "schema,names",
            "startAt": start,
            "maxResults": limit,
            "total": len(found),
            "issues": issues,
        }

    def _get_issue(self, key: str) -> tuple[int, Any]:
        issue = self.issues.get(key)
        if issue is None:
            return 404, {
                "errorMessages": ["Issue does not exist or you do not have permission to see it."],
                "errors": {},
            }
        return 200, {"id": issue["id"], "key": key, "self": self._self(issue["id"]), "fields": issue["fields"]}

    def _create(self, fields: Any) -> tuple[int, Any]:
        problems = self._invalid(fields)
        if problems:
            return 400, {"errorMessages": [], "errors": problems}
        assert isinstance(fields, dict)
        project = fields["project"]["key"]
        number = len(self.issues) + 1
        key, issue_id = f"{project}-{number}", str(10000 + number)
        self.issues[key] = {
            "id": issue_id,
            "key": key,
            "fields": fields,
            "comments": [],
            "status": FIRST_STATUS,
            "histories": [],
            "searchable_at": time.monotonic() + self.index_delay_seconds,
        }
        return 201, {"id": issue_id, "key": key, "self": self._self(issue_id)}

    def _invalid(self, fields: Any) -> dict[str, str]:
        """Jira's `errors` for a create: by field, the reason it refuses it."""
        if not isinstance(fields, dict):
            return {"fields": "The request has no fields."}
        project = self.projects.get(str((fields.get("project") or {}).get("key")))
        if project is None:
            return {"project": "valid project is required"}
        issue_type = fields.get("issuetype") or {}
        if (
            issue_type.get("name") not in project.issue_types
            and issue_type.get("id") not in project.issue_types.values()
        ):
            return {"issuetype": "Specify a valid issue type"}
        problems = {
            name: f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
            for name in fields
            if name not in project.screen
        }
        summary = fields.get("summary")
        if not isinstance(summary, str) or not summary.strip():
            problems["summary"] = "You must specify a summary of the issue."
        elif len(summary) > 255:
            problems["summary"] = "Summary must be less than 255 characters."
        priority = fields.get("priority")
        if "priority" not in problems and priority is not None and priority.get("name") not in project.priorities:
            problems["priority"] = "The priority selected is invalid."
        for label in fields.get("labels") or []:
            if " " in label or len(label) > 255:
                problems["labels"] = f"The label '{label}' contains spaces which is invalid."
        return problems

    def _comment(self, key: str, body: Any) -> tuple[int, Any]:
        issue = self.issues.get(key)
        if issue is None:
            return 404, {
                "errorMessages": ["Issue does not exist or you do not have permission to see it."],
                "errors": {},
            }
        if len(issue["comments"]) >= self.comment_limit:
            return 413, {
                "errorMessages": [f"This issue has reached the limit of {self.comment_limit} comments."],
                "errors": {},
            }
        text = (body or {}).get("body", "") if isinstance(body, dict) else ""
        issue["comments"].append(text)
        comment_id = str(len(issue["comments"]))
        return 201, {
            "id": comment_id,
            "self": f"{self._self(issue['id'])}/comment/{comment_id}",
            "body": text,
            "created": "2026-11-29T12:00:00.000+0000",
            "updated": "2026-11-29T12:00:00.000+0000",
        }

    def _issue_types(self, project_key: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        project = self.projects.get(project_key)
        if project is None:
            return 404, {"errorMessages": [f"No project could be found with key '{project_key}'."], "errors": {}}
        entries = [
            {
                "self": f"{self.url}/rest/api/2/issuetype/{type_id}",
                "id": type_id,
                "name": name,
                "subtask": False,
                "description": "",
            }
            for name, type_id in project.issue_types.items()
        ]
        return 200, self._metadata_page(entries, "issueTypes", query)

    def _type_fields(self, project_key: str, type_id: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        project = self.projects.get(project_key)
        if project is None or type_id not in project.issue_types.values():
            return 404, {"errorMessages": ["Issue type not found in the project."], "errors": {}}
        # Cloud's field metadata also carries `key`; Data Center's does not.
        entries = [_field_metadata(name, project, with_key=self.deployment == CLOUD) for name in project.screen]
        return 200, self._metadata_page(entries, "fields", query)

    def _metadata_page(self, entries: list[dict[str, Any]], name: str, query: dict[str, list[str]]) -> dict[str, Any]:
        start = int(query.get("startAt", ["0"])[0])
        limit = int(query.get("maxResults", ["50"])[0])
        page = entries[start : start + limit]
        if self.deployment == CLOUD:
            return {"maxResults": limit, "startAt": start, "total": len(entries), name: page}
        return {
            "maxResults": limit,
            "startAt": start,
            "total": len(entries),
            "isLast": start + limit >= len(entries),
            "values": page,
        }

    def _self(self, issue_id: str) -> str:
        return f"{self.url}/rest/api/2/issue/{issue_id}"

    # -- answering ------------------------------------------------------------------------------------

    def _record(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        body: Any,
        status: int | None,
        answer: Any,
        deliberate: bool,
    ) -> None:
        with self.lock:
            self.exchanges.append(Exchange(method, path, query, body, status, answer, deliberate))

    def _reply(
        self,
        request: BaseHTTPRequestHandler,
        asked: tuple[str, str, dict[str, list[str]], Any],
        status: int,
        payload: Any,
        headers: dict[str, str],
        deliberate: bool,
    ) -> None:
        self._record(*asked, status, payload, deliberate)
        answer_json(request, status, payload, headers, content_type="application/json;charset=UTF-8")

    def _malformed(
        self, request: BaseHTTPRequestHandler, asked: tuple[str, str, dict[str, list[str]], Any], kind: str
    ) -> None:
        if kind == "html":
            self._record(*asked, 200, SIGN_IN_PAGE, True)
            data = SIGN_IN_PAGE.encode()
            request.send_response(200)
            request.send_header("Content-Type", "text/html;charset=UTF-8")
            request.send_header("Content-Length", str(len(data)))
            request.end_headers()
            request.wfile.write(data)
            return
        payload: Any = [] if kind == "list" else {"id": "10001", "issues": [{"id": "10001", "fields": {}}]}
        status = 201 if asked[0] == "POST" else 200
        self._reply(request, asked, status, payload, {}, True)

    def _trickle(self, request: BaseHTTPRequestHandler, status: int, payload: Any, seconds_per_byte: float) -> None:
        body = json.dumps(payload).encode()
        answer = (
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nContent-Type: application/json;charset=UTF-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode() + body
        request.close_connection = True
        with self.lock:
            generation = self._generation
            self.trickling += 1
        try:
            for index in range(len(answer)):
                if self._generation != generation:
                    return  # cut off: the connection closes with the answer half sent
                request.wfile.write(answer[index : index + 1])
                time.sleep(seconds_per_byte)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up
        finally:
            with self.lock:
                self.trickling -= 1


def _fields(query: dict[str, list[str]], *, default: list[str]) -> list[str]:
    asked = [name for value in query.get("fields", []) for name in value.split(",") if name]
    return asked or default


def _field_metadata(name: str, project: Project, *, with_key: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "fieldId": name,
        "name": name.capitalize(),
        "required": name in ("summary", "issuetype", "project"),
        "hasDefaultValue": name == "priority",
        "operations": ["set"],
        "schema": {"type": "array" if name == "labels" else "string", "system": name},
    }
    if with_key:
        entry["key"] = name
    if name == "priority":
        entry["schema"] = {"type": "priority", "system": "priority"}
        entry["allowedValues"] = [
            {"self": f"/rest/api/2/priority/{index + 1}", "id": str(index + 1), "name": priority}
            for index, priority in enumerate(project.priorities)
        ]
    return entry
