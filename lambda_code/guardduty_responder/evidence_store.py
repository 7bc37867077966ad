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
    version_id: str
    # Found in the bucket rather than written by this call: an earlier attempt's, or someone else's.
    found: bool = False

    def entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"key": self.key, "sha256": self.sha256, "bytes": self.size}
        return entry | {"version_id": self.version_id} | ({"found_in_bucket": True} if self.found else {})


class Unvouched(RuntimeError):
    """An object the bucket holds under an evidence key without a whole-object SHA-256 to vouch for it."""


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


def store_evidence(
    s3: Any, ec2: Any, bucket: str, facts: IncidentFacts, *, owner: str = ""
) -> tuple[str, dict[str, Any]]:
    """Read the instance's facts, write every object once, then the manifest; name the manifest, its version and its
    hash. `owner`: the account the bucket must belong to (S3 refuses the request otherwise)."""
    prefix, store = incident_prefix(facts), _Store(s3, bucket, owner)
    bodies, missing = _bodies(ec2, facts)
    results = run_parallel(lambda name: store.put_or_find(prefix + name, bodies.get(name)), [*bodies, *missing])
    stored = [result for result in results if isinstance(result, StoredObject)]
    unvouched = {key: str(result) for key, result in zip([*bodies, *missing], results, strict=True) if _bad(result)}
    missing = {name: why for name, why in missing.items() if not any(o.key == prefix + name for o in stored)}
    manifest = {
        "incident": {
            "account_id": facts.account_id,
            "region": facts.region,
            "instance_id": facts.instance_id,
            "finding_id": facts.finding_id,
        },
        "written_at": utc_timestamp(),
        "objects": [o.entry() for o in sorted(stored, key=lambda o: o.key)],
        "not_collected": missing,
        "not_vouched_for": unvouched,
        "snapshot_ids": sorted(facts.snapshot_ids),
        "volume_ids": sorted(facts.volume_ids),
    }
    written = store.put_or_find(prefix + MANIFEST, _json(manifest))
    if not isinstance(written, StoredObject):
        # A manifest the responder did not write: the step fails, and the issue says so.
        raise Unvouched(f"{written}: the manifest is not the responder's")
    uri = f"s3://{bucket}/{written.key}"
    note = f"; not collected: {', '.join(sorted(missing))}" if missing else ""
    note += f"; found without a SHA-256 to vouch for it: {', '.join(sorted(unvouched))}" if unvouched else ""
    return (
        f"{len(stored)} object(s) and the manifest {uri} (SHA-256 {written.sha256}){note}",
        {"evidence_manifest": {"uri": uri, "sha256": written.sha256, "version_id": written.version_id}},
    )


def _bad(result: object) -> bool:
    return isinstance(result, Unvouched)


class _Store:
    """Writes to the evidence bucket, each key once."""

    def __init__(self, s3: Any, bucket: str, owner: str) -> None:
        self._s3, self._bucket = s3, bucket
        self._owner = {"ExpectedBucketOwner": owner} if owner else {}

    def put_or_find(self, key: str, body: bytes | None) -> StoredObject | Unvouched | None:
        """Write the object unless it exists (`body` None: only look for it); the object as the bucket holds it."""
        if body is None:
            return self._find(key)
        try:
            answer = self._s3.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=body,
                ContentType="text/plain; charset=utf-8" if key.endswith(".txt") else "application/json",
                # S3 checks the body against this hash, and keeps it: a retry reads it back instead of the body.
                ChecksumAlgorithm="SHA256",
                IfNoneMatch="*",
                **self._owner,
            )
            return StoredObject(key, hashlib.sha256(body).hexdigest(), len(body), str(answer.get("VersionId", "")))
        except ClientError as error:
            if error_code(error) != "PreconditionFailed":
                raise
        return self._held(key)

    def _find(self, key: str) -> StoredObject | Unvouched | None:
        """An object an earlier attempt wrote though this one could not collect it; None when there is none."""
        try:
            return self._held(key)
        except ClientError:
            return None  # absent (or not readable: then it is not listed)

    def _held(self, key: str) -> StoredObject | Unvouched:
        head = self._s3.head_object(Bucket=self._bucket, Key=key, ChecksumMode="ENABLED", **self._owner)
        checksum = str(head.get("ChecksumSHA256") or "")
        if not checksum or "-" in checksum:
            # Not written by the responder (it always sends a SHA-256): named in the manifest, never vouched for.
            return Unvouched(f"s3://{self._bucket}/{key} exists without a whole-object SHA-256")
        digest = base64.b64decode(checksum).hex()
        return StoredObject(key, digest, int(head.get("ContentLength", 0)), str(head.get("VersionId", "")), True)


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
