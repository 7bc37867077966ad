"""A GuardDuty stand-in on 127.0.0.1: the calls the responder makes, `ListDetectors`, `GetFindings`,
`StartMalwareScan` and `DescribeMalwareScans`, and those `guardduty-responder doctor` makes, `GetDetector` and
`GetMembers`.

moto has no GuardDuty findings API. botocore reaches this server through its per-service endpoint
setting (`AWS_ENDPOINT_URL_GUARDDUTY`), so the responder's own client, unchanged, asks it. It holds
one detector (none when `detector_id` is empty), its status, its member accounts and their
relationship status, and the findings it is given (the `detail` of EventBridge events, kept by
reference so that a test may still change one), and answers them as the API does: in the finding's
JSON names, with `service.additionalInfo` as the API model spells it (`value`, a JSON string, and
`type`). On-demand malware scans it starts stay RUNNING until a test settles them (`finish_scan`); a
scan of an instance started less than an hour after the last one is refused, as GuardDuty documents. It
can be told to fail for a number of requests.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from .loopback import LoopbackServer, answer_json, read_json

DETECTOR_ID = "5cc4f1a9e2b84d7f9a3e6b1d8c2f0a47"
_GET_FINDINGS = re.compile(r"^/detector/([^/]+)/findings/get/?$")
_GET_MEMBERS = re.compile(r"^/detector/([^/]+)/member/get/?$")
_GET_DETECTOR = re.compile(r"^/detector/([^/]+)/?$")
_DESCRIBE_SCANS = re.compile(r"^/detector/([^/]+)/malware-scans/?$")
# GuardDuty scans one resource on demand at most once an hour (its user guide, on-demand malware scan).
RESCAN_SECONDS = 3600
_NOT_OWNED = {
    "message": "The request is rejected because the input detectorId is not owned by this account.",
    "__type": "BadRequestException",
}


@dataclass
class GuardDutyStandIn:
    detector_id: str = DETECTOR_ID
    # GetDetector's status: ENABLED or DISABLED.
    status: str = "ENABLED"
    # Member accounts of this (administrator's) detector and their relationship status, e.g. "Enabled".
    members: dict[str, str] = field(default_factory=dict)
    findings: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    # On-demand malware scans by id, as DescribeMalwareScans returns each (the API's JSON names).
    scans: dict[str, dict[str, Any]] = field(default_factory=dict)
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

    def finish_scan(self, scan_id: str, status: str, result: str | None = None, reason: str = "") -> None:
        """Settle a scan: COMPLETED with CLEAN or INFECTED, or FAILED or SKIPPED with a reason."""
        with self._lock:
            scan = self.scans[scan_id]
            scan["scanStatus"] = status
            scan["scanEndTime"] = time.time()
            if result is not None:
                scan["scanResultDetails"] = {"scanResult": result}
            if reason:
                scan["failureReason"] = reason

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
        operation, detector = _operation(method, path)
        with self._lock:
            self.requests.append((operation, path))
            fault = self._faults.pop(0) if self._faults else None
        if fault is not None:
            _answer(request, fault, {"message": "stand-in fault", "__type": "InternalServerErrorException"})
        elif operation == "ListDetectors":
            _answer(request, 200, {"detectorIds": [self.detector_id] if self.detector_id else []})
        elif operation == "StartMalwareScan":
            _answer(request, *self._start_scan(str(body.get("resourceArn", ""))))
        elif operation == "?":
            _answer(request, 404, {"message": f"no route for {method} {path}", "__type": "BadRequestException"})
        elif not self.detector_id or detector != self.detector_id:
            _answer(request, 400, _NOT_OWNED)
        elif operation == "GetFindings":
            _answer(request, 200, {"findings": self._found(body.get("findingIds") or [])})
        elif operation == "DescribeMalwareScans":
            _answer(request, 200, {"scans": self._scans(body)})
        elif operation == "GetDetector":
            _answer(request, 200, {"status": self.status, "findingPublishingFrequency": "SIX_HOURS"})
        else:
            _answer(request, 200, self._members(body.get("accountIds") or []))

    def _start_scan(self, resource_arn: str) -> tuple[int, dict[str, Any]]:
        if not re.fullmatch(r"arn:aws[a-z-]*:ec2:[a-z0-9-]+:\d{12}:instance/i-[0-9a-f]+", resource_arn):
            return 400, {
                "message": f"The request is rejected: invalid resourceArn {resource_arn}",
                "__type": "BadRequestException",
            }
        now = time.time()
        with self._lock:
            recent = [s for s in self.scans.values() if s["resourceDetails"]["instanceArn"] == resource_arn]
            if any(now - scan["scanStartTime"] < RESCAN_SECONDS for scan in recent):
                return 400, {
                    "message": "The request is rejected because a scan of this resource started less than an hour ago.",
                    "__type": "BadRequestException",
                }
            scan_id = uuid.uuid4().hex
            self.scans[scan_id] = {
                "detectorId": self.detector_id,
                "scanId": scan_id,
                "scanStatus": "RUNNING",
                "scanStartTime": now,
                "resourceDetails": {"instanceArn": resource_arn},
                "accountId": resource_arn.split(":")[4],
                "scanType": "ON_DEMAND",
            }
        return 200, {"scanId": scan_id}

    def _scans(self, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The scans one criterion selects (SCAN_ID or EC2_INSTANCE_ARN equal to a value), newest first."""
        criteria = (body.get("filterCriteria") or {}).get("filterCriterion") or []
        with self._lock:
            scans = [copy.deepcopy(scan) for scan in self.scans.values()]
        for criterion in criteria:
            wanted = (criterion.get("filterCondition") or {}).get("equalsValue")
            field_of = {
                "SCAN_ID": lambda s: s["scanId"],
                "EC2_INSTANCE_ARN": lambda s: s["resourceDetails"]["instanceArn"],
            }
            read = field_of.get(str(criterion.get("criterionKey")))
            scans = [scan for scan in scans if read is not None and read(scan) == wanted]
        return sorted(scans, key=lambda scan: scan["scanStartTime"], reverse=True)[: int(body.get("maxResults") or 50)]

    def _members(self, account_ids: list[str]) -> dict[str, Any]:
        with self._lock:
            known = {account: self.members[account] for account in account_ids if account in self.members}
        return {
            "members": [
                {
                    "accountId": account,
                    "detectorId": self.detector_id,
                    "masterId": "",
                    "email": f"security+{account}@example.com",
                    "relationshipStatus": status,
                    "updatedAt": "2026-01-01T00:00:00.000Z",
                }
                for account, status in known.items()
            ],
            "unprocessedAccounts": [
                {
                    "accountId": account,
                    "result": "The request is rejected because the given account ID is not a member.",
                }
                for account in account_ids
                if account not in known
            ],
        }

    def _found(self, finding_ids: list[str]) -> list[dict[str, Any]]:
        with self._lock:
            held = [self.findings[finding_id] for finding_id in finding_ids if finding_id in self.findings]
        return [as_api_finding(detail) for detail in held]


def _operation(method: str, path: str) -> tuple[str, str]:
    """The GuardDuty operation a request names, and the detector id in its path ("?" when none matches)."""
    if method == "GET" and path.rstrip("/") == "/detector":
        return "ListDetectors", ""
    if method == "POST" and path.rstrip("/") == "/malware-scan/start":
        return "StartMalwareScan", ""
    match = _DESCRIBE_SCANS.match(path)
    if match is not None and method == "POST":
        return "DescribeMalwareScans", match.group(1)
    for name, route, verb in (
        ("GetFindings", _GET_FINDINGS, "POST"),
        ("GetMembers", _GET_MEMBERS, "POST"),
        ("GetDetector", _GET_DETECTOR, "GET"),
    ):
        match = route.match(path)
        if match is not None and method == verb:
            return name, match.group(1)
    return "?", ""


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
