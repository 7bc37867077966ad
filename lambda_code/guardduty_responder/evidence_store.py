"""The incident's evidence kept outside the ledger: objects in the evidence bucket (S3 Object Lock), and a manifest
holding the SHA-256 of each.

Each object is written once (`If-None-Match: *`). A retry that finds an object written already keeps it and takes its
SHA-256 from S3's own checksum of it, so the manifest always describes what the bucket holds; the manifest is written
last, once. The facts are read where the instance lives (a member account's role); the objects go to the bucket of
the responder's own account, with its own role.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from . import utc_timestamp
from .aws_errors import describe_error, error_code
from .parallel import run_parallel

# Where the instance lives (modules/estate-policy, modules/member-role).
PERMISSIONS = (
    "ec2:DescribeInstances",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSecurityGroups",
    "ec2:GetConsoleOutput",
)
# The function's own role, on the bucket's incidents/ prefix.
BUCKET_PERMISSIONS = ("s3:PutObject", "s3:GetObject")
IAM_ACTIONS_OF_CALLS = {"s3:HeadObject": ("s3:GetObject",)}
MANIFEST = "manifest.json"
PREFIX = "incidents/"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class StoredObject:
    key: str
    sha256: str
    size: int


@dataclass(frozen=True)
class IncidentFacts:
    """What the flow knows of the incident and hands to the store as it is."""

    account_id: str
    region: str
    instance_id: str
    finding_id: str
    delivered_event: Mapping[str, Any] | None
    guardduty_copy: Mapping[str, Any] | None
    original_groups: Mapping[str, Sequence[str]]
    snapshot_ids: Sequence[str]
    volume_ids: Sequence[str]
    timeline: Sequence[Mapping[str, Any]]


def incident_prefix(facts: IncidentFacts) -> str:
    """One prefix per incident: account, region, instance, then the finding that isolated it."""
    parts = (facts.account_id, facts.region, facts.instance_id, facts.finding_id)
    return PREFIX + "/".join(_UNSAFE.sub("_", part) for part in parts) + "/"


def store_evidence(s3: Any, ec2: Any, bucket: str, facts: IncidentFacts) -> tuple[str, dict[str, Any]]:
    """Read the instance's facts, write every object once, then the manifest; name the manifest and its hash."""
    prefix = incident_prefix(facts)
    bodies, missing = _bodies(ec2, facts)
    stored = run_parallel(lambda item: put_once(s3, bucket, prefix + item[0], item[1]), sorted(bodies.items()))
    manifest = {
        "incident": {
            "account_id": facts.account_id,
            "region": facts.region,
            "instance_id": facts.instance_id,
            "finding_id": facts.finding_id,
        },
        "written_at": utc_timestamp(),
        "objects": [{"key": o.key, "sha256": o.sha256, "bytes": o.size} for o in stored],
        "not_collected": missing,
        "snapshot_ids": sorted(facts.snapshot_ids),
        "volume_ids": sorted(facts.volume_ids),
    }
    written = put_once(s3, bucket, prefix + MANIFEST, _json(manifest))
    uri = f"s3://{bucket}/{written.key}"
    note = f"; not collected: {', '.join(sorted(missing))}" if missing else ""
    return (
        f"{len(stored)} object(s) and the manifest {uri} (SHA-256 {written.sha256}){note}",
        {"evidence_manifest": {"uri": uri, "sha256": written.sha256}},
    )


def put_once(s3: Any, bucket: str, key: str, body: bytes) -> StoredObject:
    """Write the object unless it exists; either way, the object as the bucket holds it."""
    try:
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=body,
            ContentType="text/plain; charset=utf-8" if key.endswith(".txt") else "application/json",
            # S3 checks the body against this hash, and keeps it: a retry reads it back instead of the body.
            ChecksumAlgorithm="SHA256",
            IfNoneMatch="*",
        )
        return StoredObject(key, hashlib.sha256(body).hexdigest(), len(body))
    except ClientError as error:
        if error_code(error) != "PreconditionFailed":
            raise
    head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    checksum = str(head.get("ChecksumSHA256") or "")
    if not checksum or "-" in checksum:
        raise RuntimeError(f"s3://{bucket}/{key} exists already, without a whole-object SHA-256 to vouch for it")
    return StoredObject(key, base64.b64decode(checksum).hex(), int(head.get("ContentLength", 0)))


def _bodies(ec2: Any, facts: IncidentFacts) -> tuple[dict[str, bytes], dict[str, str]]:
    """Each object's bytes, and why any could not be collected."""
    readers: dict[str, Callable[[], Any]] = {
        "instance.json": lambda: _instance(ec2, facts.instance_id),
        "network-interfaces.json": lambda: _interfaces(ec2, facts),
        "console-output.txt": lambda: _console_output(ec2, facts.instance_id),
    }
    read = dict(zip(readers, run_parallel(lambda reader: _attempt(reader), list(readers.values())), strict=True))
    interfaces = read["network-interfaces.json"]
    if isinstance(interfaces, dict):
        read["security-groups.json"] = _attempt(lambda: _security_groups(ec2, facts, interfaces))
    read["finding-delivered.json"] = facts.delivered_event
    read["finding-guardduty.json"] = facts.guardduty_copy
    read["timeline.json"] = list(facts.timeline)
    bodies = {name: _encode(name, value) for name, value in read.items() if value is not None and not _failed(value)}
    missing = {name: str(value) for name, value in read.items() if _failed(value)}
    missing.update({name: "none for this incident" for name, value in read.items() if value is None})
    return bodies, missing


class _NotCollected(str):
    """Why one object could not be read; it is named in the manifest instead."""


def _attempt(reader: Callable[[], Any]) -> Any:
    try:
        return reader()
    except ClientError as error:
        return _NotCollected(describe_error(error))


def _failed(value: Any) -> bool:
    return isinstance(value, _NotCollected)


def _instance(ec2: Any, instance_id: str) -> Any:
    reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return reservations[0]["Instances"][0]


def _interfaces(ec2: Any, facts: IncidentFacts) -> dict[str, Any]:
    """Each interface attached now: its groups before isolation (as recorded) and as they are."""
    found = ec2.describe_network_interfaces(
        Filters=[{"Name": "attachment.instance-id", "Values": [facts.instance_id]}]
    )["NetworkInterfaces"]
    return {
        eni["NetworkInterfaceId"]: {
            "groups_before": list(facts.original_groups.get(eni["NetworkInterfaceId"], ())),
            "groups_after": [group["GroupId"] for group in eni.get("Groups", [])],
            "description": eni,
        }
        for eni in found
    }


def _security_groups(ec2: Any, facts: IncidentFacts, interfaces: Mapping[str, Any]) -> Any:
    """Every group the interfaces had or have, with its rules."""
    ids = {group for groups in facts.original_groups.values() for group in groups}
    ids |= {group for eni in interfaces.values() for group in eni["groups_after"]}
    if not ids:
        return []
    try:
        return ec2.describe_security_groups(GroupIds=sorted(ids))["SecurityGroups"]
    except ClientError as error:
        if error_code(error) != "InvalidGroup.NotFound":
            raise
    # One of the instance's old groups was deleted since: the others, one by one.
    return [group for one in sorted(ids) for group in _group_if_any(ec2, one)]


def _group_if_any(ec2: Any, group_id: str) -> list[Any]:
    try:
        return list(ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"])
    except ClientError as error:
        if error_code(error) != "InvalidGroup.NotFound":
            raise
        return [{"GroupId": group_id, "deleted": True}]


def _console_output(ec2: Any, instance_id: str) -> str:
    """The instance's serial console as EC2 last kept it (base64 in the answer); an answer that is not base64 (moto's)
    is kept as it came."""
    output = str(ec2.get_console_output(InstanceId=instance_id).get("Output") or "")
    try:
        return base64.b64decode(output, validate=True).decode("utf-8", errors="replace")
    except binascii.Error:
        return output


def _encode(name: str, value: Any) -> bytes:
    if name.endswith(".txt"):
        return str(value).encode()
    return _json(value)


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=2, sort_keys=True, default=str).encode()
