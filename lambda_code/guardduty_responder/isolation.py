"""Containment: move every network interface onto the untracking group, then the isolation group.

Security groups track connections, and removing a rule does not cut a tracked connection. A flow
is untracked when the group allows all traffic in one direction from 0.0.0.0/0 and ::/0 and all
traffic in the other direction likewise; an untracked flow stops as soon as the rule allowing it
goes away. So each ENI first moves to the untracking group (existing sessions become untracked),
then to the isolation group (no rules at all), which cuts them. See the EC2 User Guide, "Security
group connection tracking".
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from . import TAG_PREFIX
from .aws_errors import describe_error, error_code
from .parallel import run_both, run_parallel
from .steps import STEP_ERRORS

logger = logging.getLogger(__name__)

PERMISSIONS = (
    "ec2:DescribeInstances",
    "ec2:DescribeSecurityGroups",
    "ec2:CreateSecurityGroup",
    "ec2:AuthorizeSecurityGroupIngress",
    "ec2:AuthorizeSecurityGroupEgress",
    "ec2:RevokeSecurityGroupIngress",
    "ec2:RevokeSecurityGroupEgress",
    "ec2:ModifyNetworkInterfaceAttribute",
    "ec2:CreateTags",
    "ec2:DeleteSecurityGroup",
)

ROLE_TAG = f"{TAG_PREFIX}role"
UNTRACKING = "untracking"
ISOLATION = "isolation"
_GROUP_NAMES = {UNTRACKING: "guardduty-responder-untracking", ISOLATION: "guardduty-responder-isolation"}
_DESCRIPTIONS = {
    UNTRACKING: "GuardDuty responder: all traffic, so tracked connections become untracked before isolation",
    ISOLATION: "GuardDuty responder: no traffic in or out",
}
_ALL_TRAFFIC = {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}], "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}
_ALREADY_THERE = ("InvalidPermission.Duplicate",)
_ALREADY_GONE = ("InvalidPermission.NotFound",)
_GROUP_GONE = ("InvalidGroup.NotFound", "InvalidGroupId.NotFound", "InvalidGroupId.Malformed")
_INSTANCE_GONE = ("InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed")
_AUTOSCALING_TAG = "aws:autoscaling:groupName"
# The move to the isolation group, and the roll-back after it, are tried this many times (each
# attempt with botocore's own retries), with these pauses between them.
MOVE_ATTEMPTS = 3
_MOVE_PAUSES = (0.2, 0.5)
# An invocation starts moving interfaces only with this much time left besides the configured pause
# (both moves and a roll-back take well under a second when EC2 answers). With less, nothing moves
# and the invocation fails, so that Lambda's retry isolates with time to spare.
MOVE_BUDGET_SECONDS = 4.0


class ContainmentError(RuntimeError):
    """An instance could not be (fully) contained; the invocation must fail so it is retried."""


class InstanceNotFoundError(ContainmentError):
    """The instance named by the finding does not exist (any more) in this account and region."""


@dataclass(frozen=True)
class Interface:
    eni_id: str
    vpc_id: str
    group_ids: tuple[str, ...]
    # The connection-tracking timeouts EC2 reports for it, (name, seconds) pairs: none when never configured.
    tracking: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class InstanceFacts:
    instance_id: str
    state: str
    vpc_id: str | None
    tags: Mapping[str, str]
    interfaces: tuple[Interface, ...]
    # (device name, volume id, delete on termination)
    volumes: tuple[tuple[str, str, bool], ...]
    # The instance profile associated when it was described ("" = none), and its metadata options.
    profile_arn: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def autoscaling_group(self) -> str | None:
        return self.tags.get(_AUTOSCALING_TAG)

    @property
    def gone(self) -> bool:
        """Terminated or on its way: nothing left to contain."""
        return self.state in ("shutting-down", "terminated")

    def to_record(self) -> dict[str, Any]:
        """What the phases after containment need, as the ledger keeps it (tags other than the group's left out)."""
        return {
            "instance_id": self.instance_id,
            "state": self.state,
            "vpc_id": self.vpc_id or "",
            "tags": {key: value for key, value in self.tags.items() if key == _AUTOSCALING_TAG},
            "interfaces": [
                {"eni_id": i.eni_id, "vpc_id": i.vpc_id, "group_ids": list(i.group_ids), "tracking": dict(i.tracking)}
                for i in self.interfaces
            ],
            "volumes": [[device, volume, delete] for device, volume, delete in self.volumes],
            "profile_arn": self.profile_arn,
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> InstanceFacts:
        return cls(
            instance_id=str(data["instance_id"]),
            state=str(data.get("state", "unknown")),
            vpc_id=str(data.get("vpc_id")) or None,
            tags={str(key): str(value) for key, value in data.get("tags", {}).items()},
            interfaces=tuple(
                Interface(
                    eni_id=str(i["eni_id"]),
                    vpc_id=str(i["vpc_id"]),
                    group_ids=tuple(i.get("group_ids", ())),
                    tracking=_tracking(i.get("tracking")),
                )
                for i in data.get("interfaces", ())
            ),
            volumes=tuple(
                (str(device), str(volume), bool(delete)) for device, volume, delete in data.get("volumes", ())
            ),
            profile_arn=str(data.get("profile_arn", "")),
            metadata=_metadata(data.get("metadata")),
        )


@dataclass(frozen=True)
class ContainmentGroups:
    vpc_id: str
    untracking_id: str
    isolation_id: str
    # Every group the responder ever recorded for this VPC, replaced ones included.
    known_ids: frozenset[str] = frozenset()
    # Groups in the VPC that carry the responder's tag without being its own: never used.
    ignored: tuple[str, ...] = ()

    @property
    def ids(self) -> frozenset[str]:
        return self.known_ids | {self.untracking_id, self.isolation_id}


@dataclass(frozen=True)
class RecordedGroups:
    """The containment groups of one account and VPC as the ledger records them: the responder's own."""

    untracking_id: str
    isolation_id: str
    every_id: frozenset[str] = frozenset()


class GroupRegistry(Protocol):
    """Where the responder records the groups it creates (the ledger); tags are never trusted for that."""

    def recorded_groups(self, account_id: str, vpc_id: str) -> RecordedGroups | None: ...

    def record_groups(
        self, account_id: str, vpc_id: str, groups: RecordedGroups, *, replacing: RecordedGroups | None
    ) -> RecordedGroups:
        """Record `groups` unless the record is no longer `replacing`; returns what is recorded now."""
        ...


@dataclass(frozen=True)
class InterfaceMove:
    eni_id: str
    moves: tuple[str, ...]  # the group ids it was moved to, in order


def describe_instance(ec2: Any, instance_id: str) -> InstanceFacts:
    try:
        reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    except ClientError as error:
        if error_code(error) in _INSTANCE_GONE:
            raise InstanceNotFoundError(f"instance {instance_id} does not exist in this account and region") from error
        raise
    instances = [instance for reservation in reservations for instance in reservation["Instances"]]
    if not instances:
        raise InstanceNotFoundError(f"instance {instance_id} does not exist in this account and region")
    instance = instances[0]
    interfaces = tuple(
        Interface(
            eni_id=eni["NetworkInterfaceId"],
            vpc_id=eni.get("VpcId") or instance.get("VpcId", ""),
            group_ids=tuple(group["GroupId"] for group in eni.get("Groups", [])),
            tracking=_tracking(eni.get("ConnectionTrackingConfiguration")),
        )
        for eni in sorted(
            instance.get("NetworkInterfaces", []), key=lambda eni: eni.get("Attachment", {}).get("DeviceIndex", 0)
        )
    )
    volumes = tuple(
        (mapping["DeviceName"], mapping["Ebs"]["VolumeId"], bool(mapping["Ebs"].get("DeleteOnTermination")))
        for mapping in instance.get("BlockDeviceMappings", [])
        if "Ebs" in mapping
    )
    return InstanceFacts(
        instance_id=instance_id,
        state=instance.get("State", {}).get("Name", "unknown"),
        vpc_id=instance.get("VpcId"),
        tags={tag["Key"]: tag["Value"] for tag in instance.get("Tags", [])},
        interfaces=interfaces,
        volumes=volumes,
        profile_arn=str(instance.get("IamInstanceProfile", {}).get("Arn", "")),
        metadata=_metadata(instance.get("MetadataOptions")),
    )


def _tracking(data: Any) -> tuple[tuple[str, int], ...]:
    if not isinstance(data, Mapping):
        return ()
    return tuple(sorted((str(key), int(value)) for key, value in data.items() if str(value).isdigit()))


def _metadata(data: Any) -> dict[str, Any]:
    """The metadata options that can be set again (State is EC2's own)."""
    if not isinstance(data, Mapping):
        return {}
    return {
        str(key): int(value) if key == "HttpPutResponseHopLimit" else str(value)
        for key, value in data.items()
        if key != "State"
    }


class GroupDirectory:
    """The two containment groups of each VPC of one account: the ones the ledger records, created once.

    A group is the responder's because the ledger says it created it, never because of a tag or a
    name: anyone allowed to tag a security group could otherwise have the responder open a
    production group to the world, or strip its rules. Tagged groups the ledger does not know are
    named loudly and left alone. The rules of the recorded groups are checked on every lookup (at
    the latest every RECHECK_SECONDS in a warm container): one that has drifted (a rule added to
    the isolation group by hand, say) is put back before it is used.
    """

    # How long a warm container trusts what it checked: a hand-made change is undone within this.
    RECHECK_SECONDS = 300.0

    def __init__(self, ec2: Any, registry: GroupRegistry, account_id: str | Callable[[], str]) -> None:
        self._ec2 = ec2
        self._registry = registry
        self._account_id = account_id
        self._known: dict[str, tuple[float, ContainmentGroups]] = {}
        self._lock = threading.Lock()

    @property
    def account_id(self) -> str:
        return self._account_id if isinstance(self._account_id, str) else self._account_id()

    def groups_for(self, vpc_id: str) -> ContainmentGroups:
        known = self._known.get(vpc_id)
        if known is not None and time.monotonic() - known[0] < self.RECHECK_SECONDS:
            return known[1]
        recorded, tagged = run_both(
            lambda: self._registry.recorded_groups(self.account_id, vpc_id), lambda: self._tagged(vpc_id)
        )
        described: dict[str, dict[str, Any] | None] = {group["GroupId"]: group for group in tagged}
        own = self._settle(vpc_id, recorded, described)
        ignored = self._impostors([group for group in described if group not in own.every_id])
        if ignored:
            logger.error(
                "security groups carry the responder's tag but were not created by it: never used",
                extra={"vpc_id": vpc_id, "groups": list(ignored)},
            )
        for role, group_id in ((UNTRACKING, own.untracking_id), (ISOLATION, own.isolation_id)):
            group = described.get(group_id) or self._describe(group_id)
            if group is None:
                raise ContainmentError(f"the {role} group {group_id} of {vpc_id} vanished while in use: retried")
            self._converge(role, group)
        groups = ContainmentGroups(vpc_id, own.untracking_id, own.isolation_id, own.every_id, ignored)
        with self._lock:
            self._known[vpc_id] = (time.monotonic(), groups)
        return groups

    def forget(self, vpc_id: str) -> None:
        with self._lock:
            self._known.pop(vpc_id, None)

    def _impostors(self, candidates: list[str]) -> tuple[str, ...]:
        """Of tagged groups the ledger does not know, those still there once this lookup settled.

        Groups a concurrent first lookup created, then deleted on finding another's recorded, are not.
        """
        if not candidates:
            return ()
        response = self._ec2.describe_security_groups(Filters=[{"Name": "group-id", "Values": candidates}])
        return tuple(sorted(group["GroupId"] for group in response["SecurityGroups"]))

    def _tagged(self, vpc_id: str) -> list[dict[str, Any]]:
        """The VPC's groups carrying the responder's tag: its own, with their rules, and any impostor."""
        response = self._ec2.describe_security_groups(
            Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "tag-key", "Values": [ROLE_TAG]}]
        )
        return list(response["SecurityGroups"])

    def _settle(
        self, vpc_id: str, recorded: RecordedGroups | None, described: dict[str, dict[str, Any] | None]
    ) -> RecordedGroups:
        """The recorded groups, with any that no longer exists created again (and recorded) first."""
        ids: dict[str, str] = {}
        if recorded is not None:
            ids = {UNTRACKING: recorded.untracking_id, ISOLATION: recorded.isolation_id}
            for group_id in ids.values():
                if described.get(group_id) is None:
                    described[group_id] = self._describe(group_id)
        missing = [role for role in (UNTRACKING, ISOLATION) if described.get(ids.get(role, "")) is None]
        if recorded is not None and not missing:
            return recorded
        created = {role: self._create(vpc_id, role) for role in missing}
        ids.update({role: group["GroupId"] for role, group in created.items()})
        proposal = RecordedGroups(untracking_id=ids[UNTRACKING], isolation_id=ids[ISOLATION])
        kept = self._registry.record_groups(self.account_id, vpc_id, proposal, replacing=recorded)
        for group in created.values():
            if group["GroupId"] in (kept.untracking_id, kept.isolation_id):
                described[group["GroupId"]] = group
            else:
                self._delete(group["GroupId"])  # another invocation recorded its own first: use those
        return kept

    def _describe(self, group_id: str) -> dict[str, Any] | None:
        try:
            found = self._ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
        except ClientError as error:
            if error_code(error) in _GROUP_GONE:
                return None
            raise
        return found[0] if found else None

    def _create(self, vpc_id: str, role: str) -> dict[str, Any]:
        # A name of its own every time: a group someone else named like the responder's cannot stop it.
        name = f"{_GROUP_NAMES[role]}-{uuid.uuid4().hex[:8]}"
        group_id = self._ec2.create_security_group(
            GroupName=name,
            Description=_DESCRIPTIONS[role],
            VpcId=vpc_id,
            TagSpecifications=[
                {
                    "ResourceType": "security-group",
                    "Tags": [{"Key": ROLE_TAG, "Value": role}, {"Key": "Name", "Value": name}],
                }
            ],
        )["GroupId"]
        logger.info("created containment group", extra={"vpc_id": vpc_id, "role": role, "group_id": group_id})
        group = self._describe(group_id)
        if group is None:
            raise ContainmentError(f"the {role} group {group_id} just created in {vpc_id} cannot be found: retried")
        return group

    def _delete(self, group_id: str) -> None:
        try:
            self._ec2.delete_security_group(GroupId=group_id)
        except (ClientError, BotoCoreError) as error:
            # An empty, unused group left behind: harmless, and named here.
            logger.warning(
                "could not delete a spare containment group", extra={"group_id": group_id, "error": str(error)}
            )

    def _converge(self, role: str, group: dict[str, Any]) -> None:
        """Make the group's rules exactly what its role needs; calls nothing when they already are."""
        group_id = group["GroupId"]
        ingress = group.get("IpPermissions", [])
        egress = group.get("IpPermissionsEgress", [])
        if role == ISOLATION:
            if ingress:
                _ignoring(
                    _ALREADY_GONE,
                    self._ec2.revoke_security_group_ingress,
                    GroupId=group_id,
                    IpPermissions=_bare(ingress),
                )
            if egress:
                _ignoring(
                    _ALREADY_GONE, self._ec2.revoke_security_group_egress, GroupId=group_id, IpPermissions=_bare(egress)
                )
            return
        for rules, authorize in (
            (ingress, self._ec2.authorize_security_group_ingress),
            (egress, self._ec2.authorize_security_group_egress),
        ):
            for missing in _missing_all_traffic(rules):
                _ignoring(_ALREADY_THERE, authorize, GroupId=group_id, IpPermissions=[missing])


def _missing_all_traffic(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    everything = [rule for rule in rules if rule.get("IpProtocol") == "-1"]
    has_v4 = any(r.get("CidrIp") == "0.0.0.0/0" for rule in everything for r in rule.get("IpRanges", []))
    has_v6 = any(r.get("CidrIpv6") == "::/0" for rule in everything for r in rule.get("Ipv6Ranges", []))
    missing = []
    if not has_v4:
        missing.append({"IpProtocol": "-1", "IpRanges": _ALL_TRAFFIC["IpRanges"]})
    if not has_v6:
        missing.append({"IpProtocol": "-1", "Ipv6Ranges": _ALL_TRAFFIC["Ipv6Ranges"]})
    return missing


def _bare(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rules as DescribeSecurityGroups returns them, minus the empty lists Revoke* rejects."""
    return [{key: value for key, value in rule.items() if value != []} for rule in rules]


def _ignoring(codes: tuple[str, ...], call: Any, **kwargs: Any) -> None:
    try:
        call(**kwargs)
    except ClientError as error:
        if error_code(error) not in codes:
            raise


def original_groups_of(
    instance: InstanceFacts, saved: Mapping[str, tuple[str, ...]], responder_groups: frozenset[str]
) -> dict[str, tuple[str, ...]]:
    """The groups to restore on release, per ENI.

    An ENI still on its own groups is read as it is now. An ENI already on a responder group was
    moved by an earlier attempt: what was saved before that move stands.
    """
    originals: dict[str, tuple[str, ...]] = {}
    for interface in instance.interfaces:
        if set(interface.group_ids) & responder_groups:
            if interface.eni_id in saved:
                originals[interface.eni_id] = tuple(saved[interface.eni_id])
        else:
            originals[interface.eni_id] = interface.group_ids
    return originals


def isolate_instance(
    ec2: Any,
    instance: InstanceFacts,
    groups_by_vpc: Mapping[str, ContainmentGroups],
    *,
    originals: Mapping[str, tuple[str, ...]] = {},
    pause_seconds: float = 0.0,
    deadline: float | None = None,
) -> tuple[InterfaceMove, ...]:
    """Move every ENI, in parallel, to the untracking group and then to the isolation group.

    An ENI already on the isolation group is left alone (never reopened through the untracking
    group), and one left on the untracking group by an interrupted attempt goes straight on. The
    move to the isolation group is retried; if it still fails, whatever the error, the ENI goes back
    to its original groups rather than stay on the untracking group, which is open to the world, and
    the error is raised all the same.
    """
    if not instance.interfaces:
        raise ContainmentError(f"instance {instance.instance_id} has no network interface to isolate")
    if deadline is not None and deadline - time.monotonic() < pause_seconds + MOVE_BUDGET_SECONDS:
        left = max(0.0, deadline - time.monotonic())
        raise ContainmentError(
            f"too little time left in the invocation ({left:.1f} s) to move {instance.instance_id} safely: "
            "nothing moved, the retry isolates it"
        )

    def contain(interface: Interface) -> InterfaceMove:
        return _contain_interface(
            ec2, interface, groups_by_vpc[interface.vpc_id], originals.get(interface.eni_id), pause_seconds
        )

    return tuple(run_parallel(contain, instance.interfaces))


def _contain_interface(
    ec2: Any,
    interface: Interface,
    groups: ContainmentGroups,
    original: tuple[str, ...] | None,
    pause_seconds: float,
) -> InterfaceMove:
    """One ENI through the untracking group to the isolation group, or back to its own groups."""
    current = set(interface.group_ids)
    if current == {groups.isolation_id}:
        return InterfaceMove(eni_id=interface.eni_id, moves=())
    moves: list[str] = []
    if current != {groups.untracking_id}:
        try:
            _move(ec2, interface.eni_id, groups.untracking_id)
        except ContainmentError as refused:
            # EC2 answered no: the ENI is still on its own groups.
            raise ContainmentError(f"{refused}: {interface.eni_id} left on its own groups") from refused
        except STEP_ERRORS as error:
            # No answer (a timeout, a refused credential refresh): the move may have been made.
            where = _close_again(ec2, interface.eni_id, original)
            raise ContainmentError(
                f"moving {interface.eni_id} to the untracking group failed ({describe_error(error)}): {where}"
            ) from error
        moves.append(groups.untracking_id)
        if pause_seconds:
            time.sleep(pause_seconds)
    try:
        _retrying(lambda: _move(ec2, interface.eni_id, groups.isolation_id))
    except STEP_ERRORS as error:
        where = _close_again(ec2, interface.eni_id, original)
        raise ContainmentError(
            f"moving {interface.eni_id} to the isolation group failed ({describe_error(error)}): {where}"
        ) from error
    moves.append(groups.isolation_id)
    return InterfaceMove(eni_id=interface.eni_id, moves=tuple(moves))


def _retrying(call: Any) -> None:
    """The call, tried MOVE_ATTEMPTS times whatever it fails with; the last failure is raised."""
    for attempt in range(MOVE_ATTEMPTS):
        try:
            call()
            return
        except STEP_ERRORS as error:
            if attempt + 1 == MOVE_ATTEMPTS:
                raise
            logger.warning("move failed, trying again", extra={"attempt": attempt + 1, "error": describe_error(error)})
            time.sleep(_MOVE_PAUSES[min(attempt, len(_MOVE_PAUSES) - 1)])


def _close_again(ec2: Any, eni_id: str, original: tuple[str, ...] | None) -> str:
    """Take an ENI off the untracking group after a failed move: back to its own groups. Says where it is."""
    if not original:
        logger.critical(
            "network interface may be left on the untracking group: no original groups known", extra={"eni": eni_id}
        )
        return "its original groups are not known: it may be left on the untracking group"
    try:
        _retrying(lambda: _move(ec2, eni_id, *original))
    except STEP_ERRORS as error:
        logger.critical(
            "network interface left on the untracking group", extra={"eni": eni_id, "error": describe_error(error)}
        )
        return "putting it back on its original groups failed too: it may be left on the untracking group"
    logger.error("isolation failed: network interface put back on its original groups", extra={"eni": eni_id})
    return "put back on its original groups"


def refused_restores(
    ec2: Any,
    instance: InstanceFacts,
    original_groups: Mapping[str, tuple[str, ...]],
    responder_groups: Callable[[str], frozenset[str]],
) -> list[str]:
    """Why interfaces cannot go back onto their saved groups, one line per interface refused; empty when none is.

    The saved groups come from the ledger; whatever it says, an interface never goes onto one of the
    responder's groups (those `responder_groups` gives for its VPC, or a group tagged with the
    responder's role: the untracking group is open to the world, and an interface left on the
    isolation group would be released in name only), onto a group of another VPC, or onto a group
    that no longer exists.
    """
    vpc_of = {interface.eni_id: interface.vpc_id for interface in instance.interfaces}
    wanted = sorted({group for groups in original_groups.values() for group in groups})
    found: dict[str, dict[str, Any]] = {}
    if wanted:
        response = ec2.describe_security_groups(Filters=[{"Name": "group-id", "Values": wanted}])
        found = {group["GroupId"]: group for group in response["SecurityGroups"]}
    vpcs = sorted({vpc_of[eni] for eni in original_groups if eni in vpc_of})
    ours = dict(zip(vpcs, run_parallel(responder_groups, vpcs), strict=True))
    refused = []
    for eni_id, groups in sorted(original_groups.items()):
        vpc_id = vpc_of.get(eni_id)
        if vpc_id is None:
            refused.append(f"{eni_id} is no longer attached to {instance.instance_id}")
            continue
        unfit = [why for group in groups if (why := _unfit_group(group, vpc_id, found.get(group), ours[vpc_id]))]
        if not groups:
            refused.append(f"{eni_id} has no saved group")
        elif unfit:
            refused.append(f"{eni_id} cannot go onto " + ", ".join(unfit))
    return refused


def _unfit_group(group_id: str, vpc_id: str, group: Mapping[str, Any] | None, responder_groups: frozenset[str]) -> str:
    """Why an interface of `vpc_id` cannot be put on this group; empty when it can."""
    if group is None:
        return f"{group_id}, which no longer exists"
    if group.get("VpcId") != vpc_id:
        return f"{group_id}, a group of {group.get('VpcId')}, not of its own {vpc_id}"
    tagged = any(tag.get("Key") == ROLE_TAG for tag in group.get("Tags", []))
    if group_id in responder_groups or tagged:
        return f"{group_id}, a containment group of the responder's"
    return ""


def restore_groups(ec2: Any, original_groups: Mapping[str, tuple[str, ...]]) -> None:
    """Put every ENI back on the groups saved before isolation (check them first with `refused_restores`)."""
    run_parallel(lambda item: _move(ec2, item[0], *item[1]), list(original_groups.items()))


def _move(ec2: Any, eni_id: str, *group_ids: str) -> None:
    try:
        ec2.modify_network_interface_attribute(NetworkInterfaceId=eni_id, Groups=list(group_ids))
    except ClientError as error:
        raise ContainmentError(f"moving {eni_id} to {', '.join(group_ids)} failed: {error_code(error)}") from error
