"""The GuardDuty finding model and its parser. Pure code: no AWS calls.

Every field the responder acts on is checked here, so that nothing later has to trust the event.
Values that are only displayed (title, tags, description) are kept as strings and escaped at the
point where they are rendered.

The parser reads, in this order: whether the finding is about an EC2 instance at all (anything
else is refused); whether it is a GuardDuty sample (recorded and announced, never acted on, so
none of the checks that only matter for acting apply to it); then every field acting needs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .finding_details import Activity, DetectedFile, Process, activity_of, detected_files, is_sample, process_of, text

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
_EVENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
# GuardDuty counts in 32 bits; a bigger number is no count it sent.
_MAX_COUNT = 2**31 - 1
CREDENTIAL_EXFILTRATION = "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration"
INSTANCE = "Instance"
ACCESS_KEY = "AccessKey"
# Findings about a container or cluster that name the EC2 instance it runs on.
CONTAINER_HOSTS = ("Container", "ECSCluster", "EKSCluster")
# An Extended Threat Detection finding: a sequence of signals across resources, the instances among them.
ATTACK_SEQUENCE = "AttackSequence"
ATTACK_SEQUENCE_PREFIX = "AttackSequence:"
# The most instances one group finding is contained for (a group's breaker places are taken at once); a larger
# group is reported for a person.
MAX_GROUP_INSTANCES = 100
# Beyond this many, a sequence is not read further: no real group is that large.
_MAX_NAMED_INSTANCES = 5000
# An EC2 instance as a sequence names it: its id, or its ARN.
_SEQUENCE_INSTANCE = re.compile(r"^(?:arn:aws[a-z-]*:ec2:[a-z0-9-]*:\d{12}:instance/)?(i-[0-9a-f]{8,17})$")
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
    # Instance, AccessKey (credential findings), or a container or cluster on the instance.
    resource_type: str = INSTANCE
    activity: Activity = Activity()
    process: Process | None = None
    detected_files: tuple[DetectedFile, ...] = ()
    # The EventBridge envelope's source and region; None when the finding came without one.
    event_source: str | None = None
    event_region: str | None = None
    # Archived by a suppression rule: GuardDuty does not send it to EventBridge.
    archived: bool = False
    # An attack sequence (`AttackSequence:EC2/CompromisedInstanceGroup`): the EC2 instances of the finding's account
    # and region it names, sorted; `instance_id` is then empty.
    group_instances: tuple[str, ...] = ()
    # Instances the sequence names in another account or region: shown, never acted on from here.
    group_elsewhere: tuple[str, ...] = ()

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
    resource = _mapping(detail, "resource", "detail.resource")
    resource_type = _in_scope(resource, finding_type)
    service = detail.get("service", {})
    if not isinstance(service, Mapping):
        raise MalformedFindingError("detail.service", "must be an object")
    envelope = _envelope(event)
    if is_sample(service.get("additionalInfo")):
        return _sample(detail, finding_type, resource, resource_type, service, envelope)
    if resource_type == ATTACK_SEQUENCE:
        return _attack_sequence(detail, finding_type, service, envelope)
    instance, instance_id, credentials = _resource(resource, resource_type)
    count, role = _count_and_role(service)
    return Finding(
        severity=_severity(detail.get("severity")),
        account_id=_string(detail, "accountId", "detail.accountId", _ACCOUNT_ID),
        region=_string(detail, "region", "detail.region", _REGION),
        instance_id=instance_id,
        resource_role=role,
        is_sample=False,
        count=count,
        interfaces=_interfaces(instance.get("networkInterfaces", [])),
        tags=_tags(instance.get("tags", [])),
        credentials=credentials,
        **_shown(detail, finding_type, resource_type, service, envelope),
    )


def _in_scope(resource: Mapping[str, Any], finding_type: str) -> str:
    """The resource type, if the finding is about an EC2 instance; anything else is refused here."""
    resource_type = _string(resource, "resourceType", "detail.resource.resourceType")
    if resource_type in (INSTANCE, *CONTAINER_HOSTS):
        return resource_type
    if resource_type == ATTACK_SEQUENCE and finding_type.startswith(ATTACK_SEQUENCE_PREFIX):
        return resource_type
    if resource_type == ACCESS_KEY and finding_type.startswith(CREDENTIAL_EXFILTRATION):
        return resource_type
    raise MalformedFindingError(
        "detail.resource.resourceType",
        f"is {resource_type[:40]!r}: not an EC2 finding (expected 'Instance', a container or cluster on one, "
        f"'AccessKey' with a {CREDENTIAL_EXFILTRATION}.* type, or 'AttackSequence' with an {ATTACK_SEQUENCE_PREFIX}* "
        "type)",
    )


def _attack_sequence(
    detail: Mapping[str, Any], finding_type: str, service: Mapping[str, Any], envelope: Mapping[str, Any]
) -> Finding:
    """A group finding: the instances its detection sequence names (resources of type EC2_INSTANCE, and the
    instances of the groups it names: Auto Scaling group, launch template, image, VPC, instance profile, stack)."""
    count, role = _count_and_role(service)
    account_id = _string(detail, "accountId", "detail.accountId", _ACCOUNT_ID)
    region = _string(detail, "region", "detail.region", _REGION)
    here, elsewhere = _sequence_instances(service, account_id, region)
    if not here and not elsewhere:
        raise MalformedFindingError(
            "detail.service.detection.sequence.resources", "names no EC2 instance: nothing for this responder"
        )
    if len(here) > _MAX_NAMED_INSTANCES:
        raise MalformedFindingError(
            "detail.service.detection.sequence.resources", f"names {len(here)} instances, more than any group holds"
        )
    return Finding(
        severity=_severity(detail.get("severity")),
        account_id=account_id,
        region=region,
        instance_id="",
        resource_role=role,
        is_sample=False,
        count=count,
        interfaces=(),
        tags=(),
        group_instances=here,
        group_elsewhere=elsewhere,
        **_shown(detail, finding_type, ATTACK_SEQUENCE, service, envelope),
    )


def _sequence_instances(
    service: Mapping[str, Any], account_id: str, region: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The instances a sequence names in the finding's account and region, and those it names elsewhere."""
    detection = service.get("detection")
    sequence = detection.get("sequence") if isinstance(detection, Mapping) else None
    if not isinstance(sequence, Mapping):
        raise MalformedFindingError("detail.service.detection.sequence", "is missing: an attack sequence names it")
    resources = sequence.get("resources")
    if not isinstance(resources, list):
        raise MalformedFindingError("detail.service.detection.sequence.resources", "must be a list")
    here: set[str] = set()
    elsewhere: set[str] = set()
    for item in resources:
        if not isinstance(item, Mapping):
            continue
        found = set(_instances_of(item))
        same = item.get("accountId", account_id) == account_id and item.get("region", region) == region
        (here if same else elsewhere).update(found)
    return tuple(sorted(here)), tuple(sorted(elsewhere - here))


def _instances_of(resource: Mapping[str, Any]) -> list[str]:
    """The instance ids one sequence resource names: itself if an EC2_INSTANCE, else its groups' members."""
    named: list[Any] = []
    if resource.get("resourceType") == "EC2_INSTANCE":
        named.append(resource.get("uid"))
    data = resource.get("data")
    for entry in data.values() if isinstance(data, Mapping) else ():
        uids = entry.get("ec2InstanceUids") if isinstance(entry, Mapping) else None
        named.extend(uids if isinstance(uids, list) else ())
    return [match.group(1) for value in named if isinstance(value, str) and (match := _SEQUENCE_INSTANCE.match(value))]


def _sample(
    detail: Mapping[str, Any],
    finding_type: str,
    resource: Mapping[str, Any],
    resource_type: str,
    service: Mapping[str, Any],
    envelope: Mapping[str, Any],
) -> Finding:
    """A GuardDuty sample, as it is: its placeholders (GeneratedFindingPrincipalId, i-99999999) are kept for display."""
    instance = resource.get("instanceDetails")
    instance = instance if isinstance(instance, Mapping) else {}
    instance_id = text(instance.get("instanceId"), 40)
    severity = detail.get("severity")
    return Finding(
        severity=float(severity) if isinstance(severity, int | float) and 0 <= severity <= 10 else 0.0,
        account_id=text(detail.get("accountId"), 40),
        region=text(detail.get("region"), 40),
        instance_id=instance_id if _INSTANCE_ID.fullmatch(instance_id) else "",
        resource_role=text(service.get("resourceRole"), 20) or None,
        is_sample=True,
        count=1,
        interfaces=(),
        tags=(),
        **_shown(detail, finding_type, resource_type, service, envelope),
    )


def _shown(
    detail: Mapping[str, Any],
    finding_type: str,
    resource_type: str,
    service: Mapping[str, Any],
    envelope: Mapping[str, Any],
) -> dict[str, Any]:
    """The fields a finding and a sample share: its identity, what GuardDuty saw, where the event came from."""
    return {
        "finding_id": _string(detail, "id", "detail.id", _FINDING_ID),
        "finding_arn": _display(detail.get("arn", "")),
        "finding_type": finding_type,
        "title": _display(detail.get("title", "")),
        "description": _display(detail.get("description", "")),
        "created_at": _display(detail.get("createdAt", "")),
        "updated_at": _display(detail.get("updatedAt", "")),
        "resource_type": resource_type,
        "activity": activity_of(service),
        "process": process_of(service),
        "detected_files": detected_files(service),
        "archived": service.get("archived") is True,
        **envelope,
    }


def _envelope(event: Mapping[str, Any]) -> dict[str, Any]:
    """Where the event says it came from (EventBridge's `source` and `region`), and its id for the logs."""
    event_id, source, region = event.get("id"), event.get("source"), event.get("region")
    return {
        "event_id": event_id if isinstance(event_id, str) and _EVENT_ID.fullmatch(event_id) else None,
        "event_source": text(source, 80) if "source" in event else None,
        "event_region": text(region, 40) if "region" in event else None,
    }


def _resource(
    resource: Mapping[str, Any], resource_type: str
) -> tuple[Mapping[str, Any], str, ExfiltratedCredentials | None]:
    """The instance's details as GuardDuty reported them, its id, and the credentials a credential finding names."""
    if resource_type == ACCESS_KEY:
        details = _mapping(resource, "accessKeyDetails", "detail.resource.accessKeyDetails")
        credentials, instance_id = _exfiltrated(details)
        return {}, instance_id, credentials
    path = "detail.resource.instanceDetails"
    if resource_type != INSTANCE and not isinstance(resource.get("instanceDetails"), Mapping):
        raise MalformedFindingError(path, f"is missing: this {resource_type} finding names no EC2 instance")
    instance = _mapping(resource, "instanceDetails", path)
    return instance, _string(instance, "instanceId", f"{path}.instanceId", _INSTANCE_ID), None


def _count_and_role(service: Mapping[str, Any]) -> tuple[int, str | None]:
    """The times GuardDuty saw the activity, and the instance's role in it as GuardDuty labels it."""
    count = service.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= _MAX_COUNT:
        shown = repr(count)[:40]
        raise MalformedFindingError(
            "detail.service.count", f"must be a whole number from 1 to {_MAX_COUNT}, got {shown}"
        )
    role = service.get("resourceRole")
    if role is not None and role not in ("ACTOR", "TARGET"):
        raise MalformedFindingError("detail.service.resourceRole", f"is {role!r}, expected 'ACTOR' or 'TARGET'")
    return count, role


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
    """A value kept only to show people: any JSON value becomes a bounded string ("" if it cannot)."""
    if value is None:
        return ""
    try:
        shown = value if isinstance(value, str) else json.dumps(value)
    except (ValueError, RecursionError):  # NaN-like or nested past what json follows: nothing to show
        return ""
    return shown[:_MAX_DISPLAY]


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
