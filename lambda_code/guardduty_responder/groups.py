"""Group findings (`AttackSequence:EC2/CompromisedInstanceGroup`): one incident per instance, linked to the group
finding; one Jira issue and one message for the group. Pure code: the members, their findings and decisions, and
the group's texts.

A group is contained all or nothing under the circuit breaker: its members' places are counted at once, or none
is and the group waits for a person. Each member then runs the flow of an instance (lock, containment, evidence,
record), under the exemptions as any isolation, with no issue or message of its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import utc_timestamp
from .finding import INSTANCE, MAX_GROUP_INSTANCES, Finding
from .policy import Action, Approval, Decision, DecisionCode
from .ticketing import ApprovalAsk, defanged, finding_label, plain, untrusted

# Members contained at the same time: EC2's request rate is per account and region, and each member makes a
# handful of calls (with more threads of its own for its interfaces and evidence).
GROUP_CONCURRENCY = 4
# Between a member's id and the group's: a member id is never a GuardDuty finding id.
MEMBER_SEPARATOR = "/"


@dataclass(frozen=True)
class GroupMember:
    """One instance of a group finding, carried through the flow of an instance."""

    group_id: str
    instance_id: str
    # The group's decision, which the member carries out (held back for it alone by its exemptions).
    reason: str

    @property
    def finding_id(self) -> str:
        return f"{self.group_id}{MEMBER_SEPARATOR}{self.instance_id}"


def is_member(finding_id: str) -> bool:
    return MEMBER_SEPARATOR in finding_id


def member_finding(group: Finding, member: GroupMember) -> Finding:
    """The finding an instance of the group is carried through the flow with: the group's facts, its own instance."""
    return Finding(
        finding_id=member.finding_id,
        finding_arn=group.finding_arn,
        finding_type=group.finding_type,
        title=plain(f"{member.instance_id}, one of {len(group.group_instances)}: {group.title}", 512),
        description=group.description,
        severity=group.severity,
        account_id=group.account_id,
        region=group.region,
        instance_id=member.instance_id,
        resource_role=group.resource_role,
        is_sample=False,
        count=group.count,
        created_at=group.created_at,
        updated_at=group.updated_at,
        event_id=group.event_id,
        interfaces=(),
        tags=(),
        resource_type=INSTANCE,
        event_source=group.event_source,
        event_region=group.event_region,
    )


def member_decision(member: GroupMember) -> Decision:
    return Decision(Action.ISOLATE, DecisionCode.ISOLATE, f"one of a group finding's instances: {member.reason}")


def approved_members(
    group: Finding, decision: Decision, approval: Approval | None
) -> tuple[list[GroupMember], list[MemberOutcome]]:
    """The instances to contain, and those left out: an approval covers the instances it was asked for, and no
    instance GuardDuty added to the group since (a new approval is needed for those)."""
    covered = set(approval.instances) if approval is not None and approval.instances else None
    members = [
        GroupMember(group.finding_id, instance_id, decision.reason)
        for instance_id in group.group_instances
        if covered is None or instance_id in covered
    ]
    left_out = [
        MemberOutcome(instance_id, "not approved", "named by GuardDuty after the approval was asked for")
        for instance_id in group.group_instances
        if covered is not None and instance_id not in covered
    ]
    return members, left_out


def unfit_group(group: Finding) -> str | None:
    """Why a group finding is for a person to read rather than to contain here, if it is."""
    if not group.group_instances:
        elsewhere = ", ".join(group.group_elsewhere[:20])
        return (
            f"the sequence names no instance in account {group.account_id}, region {group.region} (only {elsewhere}): "
            "reported, nothing changed"
        )
    if len(group.group_instances) > MAX_GROUP_INSTANCES:
        return (
            f"the sequence names {len(group.group_instances)} instances, more than the {MAX_GROUP_INSTANCES} one group "
            "finding is contained for at once: reported for a person, nothing changed"
        )
    return None


def too_large_for_the_breaker(decision: Decision, needed: int, limit: int) -> Decision:
    """A group of more instances than the breaker lets isolate in an hour: held, loudly, never sent for approval."""
    return Decision(
        Action.HOLD,
        DecisionCode.CIRCUIT_BREAKER,
        f"{decision.reason}; but the group's {needed} instances are more than the {limit} isolations an hour the "
        "circuit breaker allows: nothing is isolated, look now",
        decision.rule,
    )


def room_refused(decision: Decision, needed: int, used: int | None, limit: int) -> Decision:
    """The hour has not a place for each member: the whole group waits for a person instead."""
    left = max(limit - (used or 0), 0) if used is not None else "fewer"
    return Decision(
        Action.APPROVE,
        DecisionCode.APPROVAL_NEEDED,
        f"{decision.reason}; but the circuit breaker has {left} of the {needed} places the group needs this hour, "
        "so the whole group waits for approval: nothing changed",
        decision.rule,
    )


@dataclass(frozen=True)
class MemberOutcome:
    """What became of one instance of the group."""

    instance_id: str
    state: str  # isolated, held (exempt, dry run), not contained (failed), gone, waiting
    detail: str = ""

    def line(self) -> str:
        return f"{self.instance_id}: {self.state}" + (f" ({self.detail})" if self.detail else "")


def member_outcome(instance_id: str, summary: Mapping[str, Any] | None, error: str | None) -> MemberOutcome:
    if error is not None:
        return MemberOutcome(instance_id, "not contained", error[:300])
    assert summary is not None
    if summary.get("repeat"):
        return MemberOutcome(instance_id, "contained before", str(summary.get("outcome", "")))
    if summary.get("isolated"):
        snapshots = len(summary.get("snapshot_ids") or ())
        return MemberOutcome(instance_id, "isolated", f"{snapshots} snapshot(s)")
    return MemberOutcome(instance_id, f"not isolated ({summary.get('decision')})", str(summary.get("reason", ""))[:300])


def group_ticket_lines(
    group: Finding, decision: Decision, outcomes: Sequence[MemberOutcome], approval: ApprovalAsk | None
) -> list[str]:
    """The group's section of its Jira issue: a line per instance."""
    lines = ["h2. Instances of the group", f"{len(group.group_instances)} instance(s) in this account and region:"]
    shown = {outcome.instance_id: outcome for outcome in outcomes}
    for instance_id in group.group_instances:
        outcome = shown.get(instance_id)
        state = untrusted(outcome.line(), 500) if outcome else f"{instance_id}: {_pending(decision)}"
        lines.append(f"* {state}")
    if group.group_elsewhere:
        lines.append(
            "Named in another account or region, not acted on from here: " + ", ".join(group.group_elsewhere[:50])
        )
    if approval is not None:
        lines.append(f"Approving isolates every instance above at once (label {finding_label(group.finding_id)}).")
    return lines


def group_message_lines(group: Finding, decision: Decision, outcomes: Sequence[MemberOutcome]) -> list[str]:
    shown = {outcome.instance_id: outcome for outcome in outcomes}
    lines = [f"Instances ({len(group.group_instances)}):"]
    lines += [
        f"- {defanged(shown[i].line(), 160) if i in shown else f'{i}: {_pending(decision)}'}"
        for i in group.group_instances[:30]
    ]
    if len(group.group_instances) > 30:
        lines.append(f"- and {len(group.group_instances) - 30} more (see the Jira issue)")
    return lines


def _pending(decision: Decision) -> str:
    if decision.isolates:
        return "see the actions taken"
    return "awaiting approval" if decision.awaits_approval else f"not isolated ({decision.code})"


def member_record(member: GroupMember) -> dict[str, str]:
    return {"group_finding_id": member.group_id, "linked_at": utc_timestamp()}
