"""What GuardDuty saw, read from a finding's `service` part: the activity, the process, the malicious files.

Pure code. These values decide nothing on their own except the activity's kind and direction (see
`finding_types`); everything else is shown to people, so it is kept as bounded strings and escaped
where it is rendered. A shape GuardDuty did not document, or an odd value in one (an epoch number
where a string is usual, a missing block), is read as "not reported" rather than rejected.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_ACTION_TYPE = re.compile(r"^[A-Z][A-Z_]{2,40}$")
_DIRECTIONS = ("INBOUND", "OUTBOUND", "UNKNOWN")
_MAX_TEXT = 512
_MAX_ITEMS = 20


@dataclass(frozen=True)
class Activity:
    """The traffic or call GuardDuty reports (`service.action`); empty when it reports none (a process, a file)."""

    action_type: str = ""
    # INBOUND, OUTBOUND or UNKNOWN, for NETWORK_CONNECTION only.
    direction: str = ""
    # The other end, for people: a domain, an address and port, the probing addresses.
    remote: str = ""
    local_ports: tuple[str, ...] = ()


@dataclass(frozen=True)
class Process:
    """The process Runtime Monitoring saw (`service.runtimeDetails.process`)."""

    name: str
    executable_path: str
    executable_sha256: str
    pid: str
    user: str
    # Its parents, nearest first: "name (path, pid N)".
    lineage: tuple[str, ...] = ()


@dataclass(frozen=True)
class DetectedFile:
    """A file Malware Protection for EC2 found (`service.ebsVolumeScanDetails`), with its threat."""

    threat: str
    path: str
    sha256: str
    volume: str


def activity_of(service: Mapping[str, Any]) -> Activity:
    action = service.get("action")
    if not isinstance(action, Mapping):
        return Activity()
    action_type = action.get("actionType")
    if not (isinstance(action_type, str) and _ACTION_TYPE.fullmatch(action_type)):
        return Activity()
    if action_type == "NETWORK_CONNECTION":
        return _connection(_part(action, "networkConnectionAction"))
    if action_type == "DNS_REQUEST":
        return Activity(action_type, remote=text(_part(action, "dnsRequestAction").get("domain")))
    if action_type == "PORT_PROBE":
        return _port_probe(_part(action, "portProbeAction"))
    if action_type == "AWS_API_CALL":
        call = _part(action, "awsApiCallAction")
        caller = text(_part(call, "remoteIpDetails").get("ipAddressV4"))
        account = text(_part(call, "remoteAccountDetails").get("accountId"))
        return Activity(action_type, remote=caller or (f"account {account}" if account else ""))
    return Activity(action_type)


def _connection(connection: Mapping[str, Any]) -> Activity:
    direction = connection.get("connectionDirection")
    address = text(_part(connection, "remoteIpDetails").get("ipAddressV4"))
    port = text(_part(connection, "remotePortDetails").get("port"))
    local_port = text(_part(connection, "localPortDetails").get("port"))
    return Activity(
        "NETWORK_CONNECTION",
        direction=direction if direction in _DIRECTIONS else "UNKNOWN",
        remote=f"{address}:{port}" if address and port else address,
        local_ports=(local_port,) if local_port else (),
    )


def _port_probe(probe: Mapping[str, Any]) -> Activity:
    details = [item for item in _list(probe.get("portProbeDetails")) if isinstance(item, Mapping)]
    callers = sorted({text(_part(d, "remoteIpDetails").get("ipAddressV4")) for d in details} - {""})
    ports = sorted({text(_part(d, "localPortDetails").get("port")) for d in details} - {""})
    return Activity("PORT_PROBE", remote=", ".join(callers[:5]), local_ports=tuple(ports[:10]))


def process_of(service: Mapping[str, Any]) -> Process | None:
    process = _part(_part(service, "runtimeDetails"), "process")
    if not process:
        return None
    lineage = [
        f"{text(parent.get('name'))} ({text(parent.get('executablePath'))}, pid {text(parent.get('pid'))})"
        for parent in _list(process.get("lineage"))[:_MAX_ITEMS]
        if isinstance(parent, Mapping)
    ]
    return Process(
        name=text(process.get("name")),
        executable_path=text(process.get("executablePath")),
        executable_sha256=text(process.get("executableSha256")),
        pid=text(process.get("pid")),
        user=text(process.get("user")),
        lineage=tuple(lineage),
    )


def detected_files(service: Mapping[str, Any]) -> tuple[DetectedFile, ...]:
    detections = _part(_part(_part(service, "ebsVolumeScanDetails"), "scanDetections"), "threatDetectedByName")
    found: list[DetectedFile] = []
    for threat in _list(detections.get("threatNames")):
        if not isinstance(threat, Mapping):
            continue
        for file in _list(threat.get("filePaths")):
            if isinstance(file, Mapping) and len(found) < _MAX_ITEMS:
                found.append(
                    DetectedFile(
                        threat=text(threat.get("name")),
                        path=text(file.get("filePath") or file.get("fileName")),
                        sha256=text(file.get("hash")),
                        volume=text(file.get("volumeArn")),
                    )
                )
    return tuple(found)


def is_sample(additional_info: Any) -> bool:
    """GuardDuty marks sample findings with `sample: true`, flat or inside the `value` JSON string."""
    if not isinstance(additional_info, Mapping):
        return False
    if _truthy(additional_info.get("sample")):
        return True
    value = additional_info.get("value")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):  # not JSON, or nested past what the parser follows
            return False
    return isinstance(value, Mapping) and _truthy(value.get("sample"))


def text(value: Any, limit: int = _MAX_TEXT) -> str:
    """Any JSON scalar as a bounded string for people; objects and lists are not shown this way."""
    if value is None or isinstance(value, Mapping | list):
        return ""
    shown = value if isinstance(value, str) else json.dumps(value)
    return shown[:limit]


def _part(parent: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = parent.get(key)
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")
