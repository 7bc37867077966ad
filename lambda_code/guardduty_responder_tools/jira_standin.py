"""A Jira stand-in on 127.0.0.1 serving the REST endpoints atlassian-python-api calls (demo and tests).

It keeps issues and comments in memory, answers JQL searches on `labels = "..."`, and can be told
to fail (an HTTP status, optionally with Retry-After), to hang, or to trickle its answer a byte at a
time, for a number of requests.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

from .loopback import LoopbackServer, answer_json, read_json

_ISSUE = re.compile(r"^/rest/api/(?:2|3|latest)/issue/?$")
_COMMENT = re.compile(r"^/rest/api/(?:2|3|latest)/issue/([A-Z][A-Z0-9_]*-\d+)/comment/?$")
_GET_ISSUE = re.compile(r"^/rest/api/(?:2|3|latest)/issue/([A-Z][A-Z0-9_]*-\d+)/?$")
_SEARCH = re.compile(r"^/rest/api/(?:(?:2|latest)/search|3/search/jql)/?$")
_LABEL = re.compile(r'labels\s*=\s*"([^"]+)"')
_PROJECT = re.compile(r'project\s*=\s*"([^"]+)"')


@dataclass
class Fault:
    status: int | None = None
    hang_seconds: float = 0.0
    # Seconds between the bytes of the answer (the request itself is carried out first).
    trickle_seconds: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    remaining: int = 1


@dataclass
class JiraStandIn:
    issues: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""
    # Seconds added to every request, to stand in for a remote Jira's round trip (the benchmark's).
    latency_seconds: float = 0.0
    # Answers being trickled right now.
    trickling: int = 0
    # Raised by heal() and stop(): an answer being trickled is cut off, its connection closed.
    _generation: int = 0
    _server: LoopbackServer | None = None

    # -- test controls ----------------------------------------------------------------------------

    def fail(self, status: int, times: int = 1, headers: dict[str, str] | None = None) -> None:
        with self.lock:
            self.faults.append(Fault(status=status, headers=headers or {}, remaining=times))

    def hang(self, seconds: float, times: int = 1) -> None:
        with self.lock:
            self.faults.append(Fault(hang_seconds=seconds, remaining=times))

    def trickle(self, seconds_per_byte: float, times: int = 1) -> None:
        """Carry out the next `times` requests, then send each answer a byte every `seconds_per_byte`.

        Every read of the client gets something before its timeout, so a per-read timeout never
        ends the wait: only a deadline on the whole call does.
        """
        with self.lock:
            self.faults.append(Fault(trickle_seconds=seconds_per_byte, remaining=times))

    def heal(self) -> None:
        with self.lock:
            self.faults.clear()
            self._generation += 1

    def issues_labelled(self, label: str) -> list[dict[str, Any]]:
        with self.lock:
            return [issue for issue in self.issues.values() if label in issue["fields"].get("labels", [])]

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
        if self.latency_seconds:
            time.sleep(self.latency_seconds)
        with self.lock:
            self.requests.append((method, parsed.path, request.headers.get("Authorization")))
            fault = self.faults[0] if self.faults else None
            if fault is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self.faults.pop(0)
        if fault is not None:
            if fault.hang_seconds:
                time.sleep(fault.hang_seconds)
            if fault.status is not None:
                self._answer(request, fault.status, {"errorMessages": ["stand-in fault"]}, fault.headers)
                return
        if request.headers.get("Authorization") is None:
            self._answer(request, 401, {"errorMessages": ["no credentials"]})
            return
        status, payload = self._route(method, parsed.path, parse_qs(parsed.query), body)
        if fault is not None and fault.trickle_seconds:
            self._trickle(request, status, payload, fault.trickle_seconds)
            return
        self._answer(request, status, payload)

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

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        with self.lock:
            if method == "GET" and _SEARCH.match(path):
                jql = query.get("jql", [""])[0]
                labels = _LABEL.findall(jql)
                project = _PROJECT.search(jql)
                found = [
                    {"id": issue["id"], "key": key}
                    for key, issue in sorted(self.issues.items(), key=lambda item: int(item[1]["id"]))
                    if all(label in issue["fields"].get("labels", []) for label in labels)
                    and (project is None or key.startswith(project.group(1) + "-"))
                ]
                limit = int(query.get("maxResults", ["50"])[0])
                return 200, {"startAt": 0, "maxResults": limit, "total": len(found), "issues": found[:limit]}
            if method == "POST" and _ISSUE.match(path):
                fields = (body or {}).get("fields") or {}
                missing = [name for name in ("project", "summary", "issuetype") if name not in fields]
                if missing:
                    return 400, {"errorMessages": [], "errors": {name: "required" for name in missing}}
                number = len(self.issues) + 1
                key = f"{fields['project']['key']}-{number}"
                self.issues[key] = {"id": str(10000 + number), "key": key, "fields": fields, "comments": []}
                return 201, {"id": str(10000 + number), "key": key, "self": f"{self.url}/rest/api/2/issue/{key}"}
            match = _COMMENT.match(path)
            if method == "POST" and match:
                issue = self.issues.get(match.group(1))
                if issue is None:
                    return 404, {"errorMessages": ["Issue does not exist"]}
                issue["comments"].append((body or {}).get("body", ""))
                return 201, {"id": str(len(issue["comments"])), "body": (body or {}).get("body", "")}
            match = _GET_ISSUE.match(path)
            if method == "GET" and match and match.group(1) in self.issues:
                return 200, self.issues[match.group(1)]
            return 404, {"errorMessages": [f"no route for {method} {path}"]}

    @staticmethod
    def _answer(
        request: BaseHTTPRequestHandler, status: int, payload: Any, headers: dict[str, str] | None = None
    ) -> None:
        answer_json(request, status, payload, headers, content_type="application/json;charset=UTF-8")
