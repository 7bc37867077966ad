"""Containment beyond security groups: the instance's identity, its tracked paths, and a check of the result.

Security groups do not filter the instance metadata service or the VPC's DNS resolver, and the
credentials the instance was given work from anywhere. So, after the moves:

* the instance profile is disassociated (the instance gets no new credentials);
* the credentials given to *this* instance before now are revoked: a deny-all inline policy on its
  role, conditioned on `ec2:SourceInstanceARN` (the instance the role credentials were delivered
  to, which travels with them wherever they are used) and `aws:TokenIssueTime` (when they were
  issued). One policy per instance (`guardduty-responder-revoke-<instance id>`), so that two
  instances of one role never race to rewrite the same document and other instances of the role
  keep working;
* each interface's connection-tracking timeouts go to their minimum, so the flows that stay
  tracked whatever the groups say (NAT gateway, Network Load Balancer, PrivateLink and the others
  the EC2 User Guide lists) end a minute after they go idle instead of five days;
* optionally, the metadata service is turned off;
* one read confirms every interface is on the isolation group alone and the group has no rules.

Each function is one recorded step, and returns what it did and what release needs to undo it.
"""

from __future__ import annotations

import fnmatch
import json
import math
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from botocore.exceptions import ClientError

from . import utc_timestamp
from .aws_errors import describe_error, error_code
from .isolation import InstanceFacts
from .steps import StepSkipped as Skip

PROFILE_PERMISSIONS = ("ec2:DescribeIamInstanceProfileAssociations", "ec2:DisassociateIamInstanceProfile")
REVOKE_PERMISSIONS = (
    "iam:GetInstanceProfile",
    "iam:PutRolePolicy",
    "iam:ListRolePolicies",
    "iam:GetRolePolicy",
    "iam:DeleteRolePolicy",
)
TRACKING_PERMISSIONS = ("ec2:ModifyNetworkInterfaceAttribute",)
METADATA_PERMISSIONS = ("ec2:ModifyInstanceMetadataOptions",)
VERIFY_PERMISSIONS = ("ec2:DescribeNetworkInterfaces", "ec2:DescribeSecurityGroups")
# Every isolation: the tracking timeouts and the check (identity and metadata are options).
PERMISSIONS = TRACKING_PERMISSIONS + VERIFY_PERMISSIONS
IDENTITY_PERMISSIONS = PROFILE_PERMISSIONS + REVOKE_PERMISSIONS

REVOCATION_PREFIX = "guardduty-responder-revoke-"
# No temporary credential AWS issues lasts longer than 36 hours (role sessions 12 hours at most, instance credentials
# are rotated within hours): a revocation older than that denies nothing any more, and may go when the role's inline
# policies run out of room.
MAX_SESSION_SECONDS = 36 * 3600
# IAM: all of a role's inline policies together, in characters, whitespace not counted.
ROLE_INLINE_POLICY_LIMIT = 10_240
# Roles AWS manages: never written.
RESERVED_ROLE_PATHS = ("/aws-service-role/", "/aws-reserved/")
RESERVED_ROLE_PREFIXES = ("AWSServiceRole", "AWSReservedSSO_")
# The minimum of each timeout (seconds), and its documented default (for an interface that reported none).
MINIMUM_TRACKING = {"TcpEstablishedTimeout": 60, "UdpStreamTimeout": 60, "UdpTimeout": 30}
DEFAULT_TRACKING = {"TcpEstablishedTimeout": 432000, "UdpStreamTimeout": 180, "UdpTimeout": 30}
# What EC2 answers for an instance type without configurable timeouts (only Nitro instances have them):
# "InvalidParameterValue: The instance type t2.medium does not support configurable connection tracking".
_TRACKING_UNSUPPORTED = ("UnsupportedOperation", "InvalidParameterValue", "InvalidParameterCombination")
# The metadata options an instance reports that can be set again (release puts them back).
METADATA_OPTIONS = (
    "HttpEndpoint",
    "HttpTokens",
    "HttpPutResponseHopLimit",
    "HttpProtocolIpv6",
    "InstanceMetadataTags",
)
_LIVE = ("associating", "associated")
# Pauses between looks at a profile being disassociated: about 6 s in all.
_GONE_PAUSES = (0.2, 0.3, 0.5, 1.0, 2.0, 2.0)
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


class ContainmentNotVerified(RuntimeError):
    """The read after containment found an interface off the isolation group, or the group with rules."""


@dataclass(frozen=True)
class InstanceRole:
    name: str
    path: str = "/"

    @property
    def reserved(self) -> bool:
        return self.path.startswith(RESERVED_ROLE_PATHS) or self.name.startswith(RESERVED_ROLE_PREFIXES)


def remove_instance_profile(ec2: Any, instance: InstanceFacts) -> tuple[str, dict[str, Any]]:
    """Disassociate the instance profile, recording which one it was (release associates it again), and wait
    (bounded) until EC2 says it is gone: the revocation's cutoff is taken after that."""
    live = live_associations(ec2, instance.instance_id)
    if not live:
        # A retry after the disassociation: the profile the instance had when it was described.
        kept = [instance.profile_arn] if instance.profile_arn else []
        return "no instance profile associated", {"removed_instance_profiles": kept}
    for association in live:
        ec2.disassociate_iam_instance_profile(AssociationId=association["AssociationId"])
    profiles = sorted({a["IamInstanceProfile"]["Arn"] for a in live})
    gone = _wait_until_gone(ec2, instance.instance_id)
    detail = f"instance profile removed: {', '.join(profiles)}" + ("" if gone else " (still disassociating)")
    return detail, {"removed_instance_profiles": profiles}


def _wait_until_gone(ec2: Any, instance_id: str) -> bool:
    for pause in _GONE_PAUSES:
        states = {a.get("State") for a in associations(ec2, instance_id)}
        if not states & {*_LIVE, "disassociating"}:
            return True
        time.sleep(pause)
    return False


def revocation_policy(instance_arn: str, cutoff: str) -> dict[str, Any]:
    """Deny everything to the credentials delivered to this instance and issued before `cutoff`."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": {
                    "ArnEquals": {"ec2:SourceInstanceARN": instance_arn},
                    "DateLessThan": {"aws:TokenIssueTime": cutoff},
                },
            }
        ],
    }


def revocation_name(instance_id: str) -> str:
    return REVOCATION_PREFIX + instance_id


def revoke_instance_sessions(
    iam: Any,
    instance_arn: str,
    roles: Iterable[InstanceRole],
    *,
    protected: Iterable[str],
    now: float,
) -> tuple[str, dict[str, Any]]:
    """Write this instance's revocation on each of its roles; a role that cannot take it is skipped, with the reason.

    The cutoff is the next whole second after `now`: the profile is gone by then, so no credential is
    issued to the instance after it, and none issued in the current second escapes.
    """
    cutoff = utc_timestamp(math.floor(now) + 1)
    instance_id = instance_arn.rsplit("/", 1)[-1]
    roles = list(roles)
    if not roles:
        raise Skip("the instance has no role: no credentials to revoke")
    refused = {role.name: why for role in roles if (why := protected_role(role, protected))}
    document = json.dumps(revocation_policy(instance_arn, cutoff), separators=(",", ":"))
    revoked = []
    for role in roles:
        if role.name in refused:
            continue
        try:
            _put_revocation(iam, role.name, revocation_name(instance_id), document, now=now)
        except Skip as why:
            refused[role.name] = str(why)
            continue
        revoked.append({"role": role.name, "policy": revocation_name(instance_id), "before": cutoff})
    if not revoked:
        raise Skip("; ".join(f"role {name} {why}" for name, why in refused.items()))
    names = ", ".join(entry["role"] for entry in revoked)
    skipped = "".join(f"; role {name} skipped: {why}" for name, why in refused.items())
    return (
        f"credentials of {instance_id} issued before {cutoff} revoked on role {names} "
        f"({revocation_name(instance_id)}){skipped}",
        {"revocations": revoked, "sessions_revoked_before": cutoff, "revoked_role": names},
    )


def roles_of(iam: Any, profile_arns: Iterable[str]) -> list[InstanceRole]:
    """The roles of the instance profiles (an instance profile holds one role at most)."""
    roles: dict[str, InstanceRole] = {}
    for arn in profile_arns:
        try:
            profile = iam.get_instance_profile(InstanceProfileName=arn.rsplit("/", 1)[-1])["InstanceProfile"]
        except ClientError as error:
            if error_code(error) != "NoSuchEntity":
                raise
            continue
        for role in profile.get("Roles", []):
            roles[role["RoleName"]] = InstanceRole(role["RoleName"], role.get("Path", "/"))
    return sorted(roles.values(), key=lambda role: role.name)


def protected_role(role: InstanceRole, protected: Iterable[str]) -> str | None:
    """Why the responder never writes this role's policies, or None."""
    if role.reserved:
        return "is managed by AWS: never written"
    if any(fnmatch.fnmatchcase(role.name, pattern) for pattern in protected):
        return "is protected (the responder's own, or listed in protected_role_names): never written"
    return None


def _put_revocation(iam: Any, role_name: str, policy_name: str, document: str, *, now: float) -> None:
    """PutRolePolicy, after deleting the responder's revocations on the role that deny nothing any more (they would
    otherwise use up the role's room for inline policies, its owners' too). Raises Skip when retrying cannot help."""
    try:
        _prune_expired(iam, role_name, keep=policy_name, now=now)
        iam.put_role_policy(RoleName=role_name, PolicyName=policy_name, PolicyDocument=document)
    except ClientError as error:
        code = error_code(error)
        if code == "NoSuchEntity":
            raise Skip("no longer exists") from error
        if code in ("AccessDenied", "AccessDeniedException"):
            raise Skip(f"refused writing {policy_name} (AccessDenied): revoke by hand") from error
        if code == "LimitExceeded":
            raise Skip(
                f"has no room for {policy_name} ({describe_error(error)}; IAM allows "
                f"{ROLE_INLINE_POLICY_LIMIT} characters of inline policies per role): revoke by hand"
            ) from error
        raise


def _prune_expired(iam: Any, role_name: str, *, keep: str, now: float) -> None:
    """Delete the responder's revocations on the role that can deny nothing any more: a policy named like one and
    shaped exactly like one (see `revocation_cutoff`), whose cutoff is older than any credential lives."""
    names = [
        name
        for page in iam.get_paginator("list_role_policies").paginate(RoleName=role_name)
        for name in page["PolicyNames"]
        if name.startswith(REVOCATION_PREFIX) and name != keep
    ]
    expired = utc_timestamp(now - MAX_SESSION_SECONDS - 3600)
    for name in names:
        document = iam.get_role_policy(RoleName=role_name, PolicyName=name)["PolicyDocument"]
        cutoff = revocation_cutoff(document, name[len(REVOCATION_PREFIX) :])
        if cutoff is not None and cutoff < expired:
            iam.delete_role_policy(RoleName=role_name, PolicyName=name)


def revocation_cutoff(document: Any, instance_id: str) -> str | None:
    """The cutoff of a revocation of `instance_id` exactly as `revocation_policy` writes it (any region, partition
    and account); None for any other document."""
    document = policy_document(document)
    statements = document.get("Statement") if document is not None else None
    if not isinstance(statements, list) or len(statements) != 1 or not isinstance(statements[0], Mapping):
        return None
    statement = statements[0]
    condition = statement.get("Condition")
    if {k: statement.get(k) for k in ("Effect", "Action", "Resource")} != {
        "Effect": "Deny",
        "Action": "*",
        "Resource": "*",
    }:
        return None
    if not isinstance(condition, Mapping) or set(condition) != {"ArnEquals", "DateLessThan"}:
        return None
    arn = condition["ArnEquals"].get("ec2:SourceInstanceARN") if isinstance(condition["ArnEquals"], Mapping) else None
    cutoff = (
        condition["DateLessThan"].get("aws:TokenIssueTime") if isinstance(condition["DateLessThan"], Mapping) else None
    )
    if not isinstance(arn, str) or not arn.endswith(f":instance/{instance_id}") or not isinstance(cutoff, str):
        return None
    return cutoff if _TIMESTAMP.fullmatch(cutoff) else None


def minimise_tracking(ec2: Any, instance: InstanceFacts) -> tuple[str, dict[str, Any]]:
    """Every interface's connection-tracking timeouts to their minimum; the previous values recorded for release."""
    before: dict[str, dict[str, int]] = {}
    unsupported: list[str] = []
    for interface in instance.interfaces:
        try:
            ec2.modify_network_interface_attribute(
                NetworkInterfaceId=interface.eni_id, ConnectionTrackingSpecification=dict(MINIMUM_TRACKING)
            )
        except ClientError as error:
            if error_code(error) not in _TRACKING_UNSUPPORTED or "connection tracking" not in describe_error(error):
                raise
            unsupported.append(f"{interface.eni_id} ({describe_error(error)})")
            continue
        before[interface.eni_id] = {**DEFAULT_TRACKING, **dict(interface.tracking)}
    minimum = ", ".join(f"{key} {value} s" for key, value in MINIMUM_TRACKING.items())
    detail = f"{len(before)} network interface(s) to the minimum connection-tracking timeouts ({minimum})"
    if unsupported:
        detail += "; not supported, so always-tracked flows keep their timeouts: " + ", ".join(unsupported)
    return detail, {"tracking_before": before, "tracking_unsupported": [u.split(" ", 1)[0] for u in unsupported]}


def turn_metadata_off(ec2: Any, instance: InstanceFacts) -> tuple[str, dict[str, Any]]:
    """The instance metadata service turned off; its previous options recorded for release."""
    before = {key: value for key, value in instance.metadata.items() if key in METADATA_OPTIONS}
    if before.get("HttpEndpoint") == "disabled":
        return "metadata service already off", {"metadata_before": before}
    ec2.modify_instance_metadata_options(InstanceId=instance.instance_id, HttpEndpoint="disabled")
    return "metadata service turned off", {"metadata_before": before}


def verify_containment(ec2: Any, instance_id: str, isolation_ids: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
    """One read of the instance's interfaces and of the isolation groups: each interface on its VPC's group alone,
    and the group without rules. Raises ContainmentNotVerified naming what is wrong."""
    interfaces = ec2.describe_network_interfaces(Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}])[
        "NetworkInterfaces"
    ]
    groups = ec2.describe_security_groups(GroupIds=sorted(set(isolation_ids.values())))["SecurityGroups"]
    on = {eni["NetworkInterfaceId"]: [g["GroupId"] for g in eni.get("Groups", [])] for eni in interfaces}
    wrong = [
        f"{eni['NetworkInterfaceId']} is on {', '.join(sorted(on[eni['NetworkInterfaceId']])) or 'no group'}"
        for eni in interfaces
        if on[eni["NetworkInterfaceId"]] != [isolation_ids.get(eni.get("VpcId", ""), "?")]
    ]
    wrong += [
        f"isolation group {group['GroupId']} has rules"
        for group in groups
        if group.get("IpPermissions") or group.get("IpPermissionsEgress")
    ]
    if not interfaces:
        wrong.append(f"no network interface of {instance_id} was found")
    if wrong:
        raise ContainmentNotVerified("containment not verified: " + "; ".join(wrong))
    return (
        f"containment verified: {len(interfaces)} network interface(s) on the isolation group alone, "
        "which has no rules",
        {"containment_verified_at": utc_timestamp()},
    )


def still_open(*, tracking_minimised: bool, metadata_off: bool, profile_removed: bool) -> list[str]:
    """The paths that stay open by design after containment, for the record, the issue and `status`."""
    paths = [
        "DNS queries to the VPC's Amazon-provided resolver (security groups do not filter it: watch them, e.g. with "
        "Route 53 Resolver DNS Firewall or query logging on the VPC)",
        "ICMP flows already tracked, until they go idle",
        "flows through always-tracked paths (NAT gateway, Network Load Balancer, PrivateLink endpoint, egress-only "
        "internet gateway, Global Accelerator, Network Firewall, DynamoDB gateway endpoint and the others the EC2 "
        "User Guide lists) until they go idle: "
        + ("60 seconds for TCP now" if tracking_minimised else "up to 5 days for established TCP"),
    ]
    if not metadata_off:
        paths.append(
            "the instance metadata service ("
            + ("no credentials in it: the profile is removed" if profile_removed else "with the role's credentials")
            + "; disable_instance_metadata turns it off)"
        )
    return paths


def instance_arn(region: str, account_id: str, instance_id: str) -> str:
    return f"arn:{partition_of(region)}:ec2:{region}:{account_id}:instance/{instance_id}"


# The partition of a region, by its name's start (the ARN in a revocation must name it, or it matches nothing).
_PARTITIONS = (
    ("cn-", "aws-cn"),
    ("us-gov-", "aws-us-gov"),
    ("us-isob-", "aws-iso-b"),
    ("us-isof-", "aws-iso-f"),
    ("eu-isoe-", "aws-iso-e"),
    ("us-iso-", "aws-iso"),
)


def partition_of(region: str) -> str:
    return next((partition for start, partition in _PARTITIONS if region.startswith(start)), "aws")


def policy_document(document: Any) -> Mapping[str, Any] | None:
    """An IAM policy document as IAM's API returns it (parsed, or URL-encoded JSON); None when unreadable."""
    if isinstance(document, str):
        try:
            document = json.loads(unquote(document))
        except ValueError:
            return None
    return document if isinstance(document, Mapping) else None


def live_associations(ec2: Any, instance_id: str | None = None) -> list[dict[str, Any]]:
    """The instance profile associations in force (of one instance, or of the region's every instance)."""
    return [a for a in associations(ec2, instance_id) if a.get("State") in _LIVE]


def associations(ec2: Any, instance_id: str | None = None) -> list[dict[str, Any]]:
    filters = [{"Name": "instance-id", "Values": [instance_id]}] if instance_id else []
    pages = ec2.get_paginator("describe_iam_instance_profile_associations").paginate(Filters=filters)
    return [association for page in pages for association in page["IamInstanceProfileAssociations"]]
