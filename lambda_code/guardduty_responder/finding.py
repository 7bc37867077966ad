"""The GuardDuty finding model and its parser. Pure code: no AWS calls.

Every field the responder acts on is checked here, so that nothing later has to trust the event.
Values that are only displayed (title, tags, description) are kept as strings and escaped at the
point where they are rendered.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_FINDING_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_INSTANCE_ID = re.compile(r"^i-[0-9a-f]{8,17}$")
_ENI_ID = re.compile(r"^eni-[0-9a-f]{8,17}$")
_GROUP_ID = re.compile(r"^sg-[0-9a-f]{8,17}$")
_VPC_ID = re.compile(r"^vpc-[0-9a-f]{8,17}$")
_ACCOUNT_ID = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_FINDING_TYPE = re.compile(r"^[A-Za-z0-9:/.!&_-]{3,128}$")
_ACCESS_KEY_ID = re.compile(r"^[A-Z0-9]{16,128}$")
# An instance role's session: the role's unique id, then the instance id as the session name.
_INSTANCE_SESSION = re.compile(r"^[A-Z0-9]{16,128}:(i-[0-9a-f]{8,17})$")
_ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")
CREDENTIAL_EXFILTRATION = "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration"
_MAX_DISPLAY = 2048


class MalformedFindingError(ValueError):
    """The event is not a GuardDuty EC2 finding the responder can act on; `field` names the culprit."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"malformed GuardDuty event: {field} {problem}")
        self.field = field
        self.problem = problem


@dataclass(frozen=True)
class ReportedInterface:
    """A network interface as GuardDuty saw it when it wrote the finding."""

    eni_id: str
    vpc_id: str
    group_ids: tuple[str, ...]


@dataclass(frozen=True)
class ExfiltratedCredentials:
    """The instance role credentials a credential-exfiltration finding is about."""

    access_key_id: str
    principal_id: str
    role_name: str


@dataclass(frozen=True)
class Finding:
    finding_id: str
    finding_arn: str
    finding_type: str
    title: str
    description: str
    severity: float
    account_id: str
    region: str
    instance_id: str
    resource_role: str | None
    is_sample: bool
    count: int
    created_at: str
    updated_at: str
    event_id: str | None
    interfaces: tuple[ReportedInterface, ...]
    tags: tuple[tuple[str, str], ...]
    # Set for InstanceCredentialExfiltration findings: the instance is named by the key's session.
    credentials: ExfiltratedCredentials | None = None

    @property
    def severity_label(self) -> str:
        return severity_label(self.severity)

    def tag(self, key: str) -> str | None:
        return next((value for k, value in self.tags if k == key), None)


def severity_label(severity: float) -> str:
    """GuardDuty's documented bands: 9.0-10.0 critical, 7.0-8.9 high, 4.0-6.9 medium, 1.0-3.9 low."""
    if severity >= 9:
        return "CRITICAL"
    if severity >= 7:
        return "HIGH"
    if severity >= 4:
        return "MEDIUM"
    return "LOW"


def parse_finding(event: Any) -> Finding:
    """Turn an EventBridge "GuardDuty Finding" event into a Finding, or raise MalformedFindingError."""
    if not isinstance(event, Mapping):
        raise MalformedFindingError("event", f"must be a JSON object, got {type(event).__name__}")
    detail = _mapping(event, "detail", "detail")
    finding_type = _string(detail, "type", "detail.type", _FINDING_TYPE)
    instance, instance_id, credentials = _resource(detail, finding_type)
    service, count, role = _service(detail)
    event_id = event.get("id")
    return Finding(
        finding_id=_string(detail, "id", "detail.id", _FINDING_ID),
        finding_arn=_display(detail.get("arn", "")),
        finding_type=finding_type,
        title=_display(detail.get("title", "")),
        description=_display(detail.get("description", "")),
        severity=_severity(detail.get("severity")),
        account_id=_string(detail, "accountId", "detail.accountId", _ACCOUNT_ID),
        region=_string(detail, "region", "detail.region", _REGION),
        instance_id=instance_id,
        resource_role=role,
        is_sample=_is_sample(service.get("additionalInfo")),
        count=count,
        created_at=_display(detail.get("createdAt", "")),
        updated_at=_display(detail.get("updatedAt", "")),
        event_id=event_id if isinstance(event_id, str) else None,
        interfaces=_interfaces(instance.get("networkInterfaces", [])),
        tags=_tags(instance.get("tags", [])),
        credentials=credentials,
    )


def _resource(
    detail: Mapping[str, Any], finding_type: str
) -> tuple[Mapping[str, Any], str, ExfiltratedCredentials | None]:
    """The instance's details as GuardDuty reported them, its id, and the credentials a credential finding names."""
    resource = _mapping(detail, "resource", "detail.resource")
    resource_type = _string(resource, "resourceType", "detail.resource.resourceType")
    if resource_type == "Instance":
        instance = _mapping(resource, "instanceDetails", "detail.resource.instanceDetails")
        instance_id = _string(instance, "instanceId", "detail.resource.instanceDetails.instanceId", _INSTANCE_ID)
        return instance, instance_id, None
    if resource_type == "AccessKey" and finding_type.startswith(CREDENTIAL_EXFILTRATION):
        details = _mapping(resource, "accessKeyDetails", "detail.resource.accessKeyDetails")
        credentials, instance_id = _exfiltrated(details)
        return {}, instance_id, credentials
    raise MalformedFindingError(
        "detail.resource.resourceType",
        f"is {resource_type!r}: expected 'Instance', or 'AccessKey' with a {CREDENTIAL_EXFILTRATION}.* type",
    )


def _service(detail: Mapping[str, Any]) -> tuple[Mapping[str, Any], int, str | None]:
    """GuardDuty's own part of the finding, the times it saw the activity, and the instance's role in it."""
    service = detail.get("service", {})
    if not isinstance(service, Mapping):
        raise MalformedFindingError("detail.service", "must be an object")
    count = service.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise MalformedFindingError("detail.service.count", f"must be a positive whole number, got {count!r}")
    role = service.get("resourceRole")
    if role is not None and role not in ("ACTOR", "TARGET"):
        raise MalformedFindingError("detail.service.resourceRole", f"is {role!r}, expected 'ACTOR' or 'TARGET'")
    return service, count, role


def _exfiltrated(details: Mapping[str, Any]) -> tuple[ExfiltratedCredentials, str]:
    """The credentials and the instance they were issued to: its id is the role session's name."""
    path = "detail.resource.accessKeyDetails"
    user_type = details.get("userType")
    if user_type != "AssumedRole":
        raise MalformedFindingError(f"{path}.userType", f"is {str(user_type)[:40]!r}, expected 'AssumedRole'")
    principal_id = _string(details, "principalId", f"{path}.principalId")
    session = _INSTANCE_SESSION.fullmatch(principal_id)
    if session is None:
        raise MalformedFindingError(
            f"{path}.principalId", f"is {principal_id[:80]!r}, expected '<role id>:<instance id>' of an instance role"
        )
    credentials = ExfiltratedCredentials(
        access_key_id=_string(details, "accessKeyId", f"{path}.accessKeyId", _ACCESS_KEY_ID),
        principal_id=principal_id,
        role_name=_string(details, "userName", f"{path}.userName", _ROLE_NAME),
    )
    return credentials, session.group(1)


def _mapping(parent: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    value = parent.get(key)
    if value is None:
        raise MalformedFindingError(path, "is missing")
    if not isinstance(value, Mapping):
        raise MalformedFindingError(path, f"must be an object, got {type(value).__name__}")
    return value


def _string(parent: Mapping[str, Any], key: str, path: str, pattern: re.Pattern[str] | None = None) -> str:
    value = parent.get(key)
    if value is None:
        raise MalformedFindingError(path, "is missing")
    if not isinstance(value, str):
        raise MalformedFindingError(path, f"must be a string, got {type(value).__name__}")
    if pattern is not None and not pattern.fullmatch(value):
        raise MalformedFindingError(path, f"has an unexpected format: {value[:80]!r}")
    return value


def _severity(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MalformedFindingError("detail.severity", f"must be a number, got {value!r}"[:120])
    if not 0 <= value <= 10:
        raise MalformedFindingError("detail.severity", f"must be between 0 and 10, got {value!r}")
    return float(value)


def _display(value: Any) -> str:
    """A value kept only to show people: any JSON scalar becomes a bounded string."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value)
    return text[:_MAX_DISPLAY]


def _is_sample(additional_info: Any) -> bool:
    """GuardDuty marks sample findings with `sample: true`, flat or inside the `value` JSON string."""
    if not isinstance(additional_info, Mapping):
        return False
    if _truthy(additional_info.get("sample")):
        return True
    value = additional_info.get("value")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return False
    return isinstance(value, Mapping) and _truthy(value.get("sample"))


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _interfaces(raw: Any) -> tuple[ReportedInterface, ...]:
    """The interfaces GuardDuty reported, kept only where every id is well formed.

    This is a hint (the live instance is authoritative), and GuardDuty's own sample findings carry
    placeholders such as "GeneratedFindingVPCId" here, so a bad entry is dropped, not rejected.
    """
    if not isinstance(raw, list):
        return ()
    interfaces = []
    for item in raw:
        if not isinstance(item, Mapping):
            continue
        eni_id, vpc_id, groups = item.get("networkInterfaceId"), item.get("vpcId"), item.get("securityGroups")
        if not (isinstance(eni_id, str) and _ENI_ID.fullmatch(eni_id)):
            continue
        if not (isinstance(vpc_id, str) and _VPC_ID.fullmatch(vpc_id)) or not isinstance(groups, list):
            continue
        group_ids = [group.get("groupId") for group in groups if isinstance(group, Mapping)]
        valid = [g for g in group_ids if isinstance(g, str) and _GROUP_ID.fullmatch(g)]
        if len(valid) != len(groups):
            continue
        interfaces.append(ReportedInterface(eni_id=eni_id, vpc_id=vpc_id, group_ids=tuple(valid)))
    return tuple(interfaces)


def _tags(raw: Any) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise MalformedFindingError("detail.resource.instanceDetails.tags", "must be a list")
    tags = []
    for index, item in enumerate(raw):
        if not isinstance(item, Mapping) or not isinstance(item.get("key"), str):
            raise MalformedFindingError(f"detail.resource.instanceDetails.tags[{index}]", "must have a string key")
        tags.append((item["key"][:128], _display(item.get("value"))[:256]))
    return tuple(tags)
