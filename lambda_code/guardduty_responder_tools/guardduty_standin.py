"""A GuardDuty stand-in on 127.0.0.1: the two calls the responder makes, `ListDetectors` and `GetFindings`.

moto has no GuardDuty findings API. botocore reaches this server through its per-service endpoint
setting (`AWS_ENDPOINT_URL_GUARDDUTY`), so the responder's own client, unchanged, asks it. It holds
one detector and the findings it is given (the `detail` of EventBridge events, kept by reference so
that a test may still change one), and answers them as the API does: in the finding's JSON names,
with `service.additionalInfo` as the API model spells it (`value`, a JSON string, and `type`).
It can be told to fail for a number of requests.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from .loopback import LoopbackServer, answer_json, read_json

DETECTOR_ID = "5cc4f1a9e2b84d7f9a3e6b1d8c2f0a47"
_GET_FINDINGS = re.compile(r"^/detector/([^/]+)/findings/get/?$")


@dataclass
class GuardDutyStandIn:
    detector_id: str = DETECTOR_ID
    findings: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    url: str = ""
    _faults: list[int] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: LoopbackServer | None = None

    # -- what it holds ------------------------------------------------------------------------------

    def add(self, detail: Mapping[str, Any]) -> None:
        """Hold a finding (an event's `detail`) as GuardDuty would after raising it."""
        with self._lock:
            self.findings[str(detail["id"])] = detail

    def add_event(self, event: Mapping[str, Any]) -> None:
        self.add(event["detail"])

    def forget(self, finding_id: str) -> None:
        with self._lock:
            self.findings.pop(finding_id, None)

    def fail(self, status: int, times: int = 1) -> None:
        with self._lock:
            self._faults.extend([status] * times)

    def heal(self) -> None:
        with self._lock:
            self._faults.clear()

    def calls(self, operation: str) -> int:
        with self._lock:
            return sum(1 for name, _ in self.requests if name == operation)

    # -- server -------------------------------------------------------------------------------------

    def start(self) -> GuardDutyStandIn:
        self._server = LoopbackServer(self._serve)
        self.url = self._server.url
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def _serve(self, request: BaseHTTPRequestHandler, method: str) -> None:
        body = read_json(request, empty={})
        path = request.path.split("?", 1)[0]
        match = _GET_FINDINGS.match(path)
        operation = "GetFindings" if method == "POST" and match else "ListDetectors" if path == "/detector" else "?"
        with self._lock:
            self.requests.append((operation, path))
            fault = self._faults.pop(0) if self._faults else None
        if fault is not None:
            _answer(request, fault, {"message": "stand-in fault", "__type": "InternalServerErrorException"})
        elif operation == "ListDetectors":
            _answer(request, 200, {"detectorIds": [self.detector_id]})
        elif operation == "GetFindings" and match is not None and match.group(1) == self.detector_id:
            _answer(request, 200, {"findings": self._found(body.get("findingIds") or [])})
        elif operation == "GetFindings":
            _answer(
                request,
                400,
                {
                    "message": "The request is rejected because the input detectorId is not owned by this account.",
                    "__type": "BadRequestException",
                },
            )
        else:
            _answer(request, 404, {"message": f"no route for {method} {path}", "__type": "BadRequestException"})

    def _found(self, finding_ids: list[str]) -> list[dict[str, Any]]:
        with self._lock:
            held = [self.findings[finding_id] for finding_id in finding_ids if finding_id in self.findings]
        return [as_api_finding(detail) for detail in held]


def as_api_finding(detail: Mapping[str, Any]) -> dict[str, Any]:
    """A finding as GetFindings returns it: `additionalInfo` always as `value` (a JSON string) and `type`."""
    finding = copy.deepcopy(dict(detail))
    service = finding.get("service")
    info = service.get("additionalInfo") if isinstance(service, dict) else None
    if isinstance(info, dict) and "value" not in info:
        service["additionalInfo"] = {"value": json.dumps(info), "type": "default"}  # type: ignore[index]
    return finding


def _answer(request: BaseHTTPRequestHandler, status: int, payload: Any) -> None:
    errors = {"x-amzn-ErrorType": str(payload.get("__type", ""))} if status >= 400 else {}
    answer_json(request, status, payload, errors)
