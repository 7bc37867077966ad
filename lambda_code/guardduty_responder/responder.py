"""The path of one finding, phase by phase, in the order the README's "What happens to a finding" gives.

    parse -> claim -> assess -> decide -> contain -> preserve evidence -> record -> Jira -> SNS

`Responder.respond` reads as that list. Each phase is one method taking and returning explicit
values; what one invocation has done so far lives in one `FindingResponse`. The ledger names the
last phase a finding completed, so a later invocation (a retry, a delivery after a lease ran out)
resumes at the next phase. Containment failing fails the invocation at once (it is retried, then
dead-lettered). A later step failing is recorded, the remaining steps still run, and the
invocation fails at the end so a retry finishes only what is left.
"""

from __future__ import annotations

import contextvars
import datetime
import enum
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from . import evidence, identity, logs, utc_timestamp
from .accounts import AccountAccessError, Estate, Estates
from .aws_errors import describe_error, error_code
from .clients import AwsClients
from .config import Settings
from .finding import ATTACK_SEQUENCE, Finding, MalformedFindingError, parse_finding
from .guardduty import GuardDuty, GuardDutyError
from .isolation import (
    ContainmentError,
    ContainmentGroups,
    GroupDirectory,
    InstanceFacts,
    InstanceNotFoundError,
    describe_instance,
    isolate_instance,
    original_groups_of,
    refused_restores,
    restore_groups,
)
from .jira import JiraRefused, JiraTicketing
from .ledger import (
    ISOLATED,
    RELEASED,
    FindingRecord,
    Incident,
    IncidentClaim,
    IsolationSlot,
    Ledger,
    LedgerError,
    UnfinishedFinding,
    breaker_window,
)
from .notification import notification_text, publish
from .parallel import run_both, run_parallel, run_three
from .policy import (
    Action,
    Approval,
    Decision,
    DecisionCode,
    Exemption,
    Outcome,
    decide,
    outcome_line,
    outcome_of,
    safety_hold,
    unconfirmed,
)
from .steps import (
    CHECK_STEPS,
    EVIDENCE_STEPS,
    STEP_ERRORS,
    Phase,
    Step,
    StepResult,
    StepSkipped,
    StepState,
    StepStatus,
    run_step,
)
from .ticketing import (
    ApprovalAsk,
    TicketingError,
    TicketText,
    approved_comment_text,
    comment_text,
    evidence_lines,
    finding_label,
    plain,
    ticket_text,
)

if TYPE_CHECKING:
    # Approvals, group findings and manual isolations are imported when first used: a finding about one
    # instance, the common case, never pays for them in its cold start.
    from .approvals import ApprovalDesk, ApprovalSweep
    from .groups import GroupMember, MemberOutcome
    from .manual import ManualRequest
    from .restore import Restored

logger = logging.getLogger(__name__)

# What AWS answers with credentials that no longer carry the right (role deleted, narrowed, expired).
_REFUSED = (
    "AccessDenied",
    "UnauthorizedOperation",
    "AuthFailure",
    "ExpiredToken",
    "InvalidClientTokenId",
    "RequestExpired",
)
_DEFAULT_LEASE_SECONDS = 900.0
_GUARDDUTY_SOURCE = "aws.guardduty"
# Findings one sweep resumes at most (GetFindings takes 50 ids), and the time it leaves each before starting it.
_SWEEP_BATCH = 20
# The most finding ids one GetFindings takes.
_GETFINDINGS_IDS = 50
_SWEEP_SECONDS_PER_FINDING = 15.0
# A group's instance throttled by EC2 (RequestLimitExceeded) is tried again while the invocation's time allows, up
# to this many times, waiting 0.5 s, 1 s, 2 s ... (at most 8 s, with jitter).
_THROTTLE_ATTEMPTS = 30
_THROTTLE_BASE_SECONDS = 0.5
_THROTTLE_MAX_SECONDS = 8.0
_THROTTLED = ("RequestLimitExceeded", "Throttling", "ThrottlingException")
# A count the breaker's condition always admits: a manual isolation is counted, never refused.
_UNLIMITED = 10**9
# The Jira step (a search, then a create or a comment) takes JIRA_TIMEOUT_SECONDS at most in all;
# the SNS message and the final record need a few seconds after it.
_SECONDS_AFTER_JIRA = 3.0
# How long after a create was sent an issue Jira's search does not show is taken not to exist. Jira
# Cloud's search is eventually consistent: a retry within this window that finds a create under way
# and no issue waits for the next delivery rather than file a second one.
JIRA_SEARCH_SETTLE_SECONDS = 120.0
# The single step whose state, once recorded, completes a phase whatever the phase marker says. Not
# containment: a record from before phases were recorded is resumed as it was written, by looking again.
_PHASE_STEP = {Phase.TICKETED: Step.TICKET, Phase.NOTIFIED: Step.NOTIFY}
# Facts that phases produce as step values and the record keeps.
_RECORDED_VALUES = (
    "isolated_at",
    "snapshot_ids",
    "evidence_manifest",
    "malware_scan_id",
    "autoscaling_group",
    "target_groups",
    "removed_instance_profiles",
    "sessions_revoked_before",
    "revoked_role",
    "revocations",
    "tracking_before",
    "tracking_unsupported",
    "metadata_before",
    "containment_verified_at",
    "still_open",
    "autoscaling_left",
    "deregistered_targets",
    "snapshot_lock",
)


class ReleaseError(RuntimeError):
    """The instance cannot be released (not isolated by the responder, or nothing saved to restore)."""


class ManualIsolationRefused(RuntimeError):
    """A person asked to isolate an instance the ledger exempts: nothing is done until the exemption goes."""


class IncompleteResponseError(RuntimeError):
    """Containment held, but a later step failed; the invocation fails so a retry finishes it."""


class FindingInProgressError(RuntimeError):
    """Another invocation holds the unfinished finding: this delivery fails, so that Lambda retries it later."""


class Delivery(enum.StrEnum):
    """What one delivery of a finding did, as the summary says it."""

    HANDLED = "handled"
    ALREADY_HANDLED = "already handled"
    RELEASED = "released: left alone"
    IN_PROGRESS = "in progress in another invocation"
    # GuardDuty does not vouch for the event: recorded apart and announced, nothing changed.
    UNCONFIRMED = "unconfirmed"


@dataclass(frozen=True)
class Assessment:
    """What the responder learnt of the instance before deciding: where to act on it, and how it is now."""

    estate: Estate | None = None
    instance: InstanceFacts | None = None
    # Why nothing can be done to the instance (no role in its account, no such instance).
    unreachable: str | None = None
    # A current exemption of the instance in the ledger.
    exemption: Exemption | None = None


@dataclass(frozen=True)
class Containment:
    """The result of the containment phase: its step, and the incident the finding belongs to."""

    step: StepResult
    incident: IncidentClaim | None = None

    @property
    def isolated_first(self) -> bool:
        """This finding isolated the instance (it owns the incident and its evidence)."""
        return self.step.ok and self.incident is not None and self.incident.is_primary


@dataclass
class FindingResponse:
    """Everything one invocation knows and has done about one finding: the per-invocation state."""

    finding: Finding
    # The finding's item as this invocation found or created it.
    record: FindingRecord
    decision: Decision
    delivery: Delivery = Delivery.HANDLED
    # An earlier invocation claimed this finding: what it may have done is looked for before redoing it.
    retry: bool = False
    deadline: float | None = None
    claimed_at: float = 0.0
    # A person's own request to isolate (no GuardDuty finding): `guardduty-responder isolate`.
    manual: ManualRequest | None = None
    # One instance of a group finding: its issue and message are the group's.
    member: GroupMember | None = None
    # The lease this invocation holds on the finding's item (when it claimed or took it over).
    lease_until: float | None = None
    # This invocation holds the instance's lock; taken with the claim (`look` is then current) or before moving.
    locked: bool = False
    assessment: Assessment = field(default_factory=Assessment)
    # The circuit breaker's answer for this finding, once asked (with the claim, or before containment).
    slot: IsolationSlot | None = None
    instance: InstanceFacts | None = None
    estate: Estate | None = None
    incident: IncidentClaim | None = None
    results: dict[Step, StepResult] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    # The event as EventBridge delivered it, and GuardDuty's copy of the finding: kept as evidence.
    delivered: Mapping[str, Any] | None = None
    guardduty_copy: Mapping[str, Any] | None = None
    completed_phases: set[Phase] = field(default_factory=set)

    def add(self, *results: StepResult, phase: Phase | None = None) -> None:
        """Keep the results of a phase's steps; the phase is complete when every one of them succeeded."""
        for result in results:
            self.results[result.step] = result
            self.values.update(result.values)
            if not result.ok:
                logger.warning("step failed", extra={"step": str(result.step), "error": result.error})
        if phase is not None and all(result.ok for result in results):
            self.completed_phases.add(phase)

    def done(self, step: Step) -> bool:
        result = self.results.get(step)
        return result.ok if result is not None else self.record.step_done(step)

    def pending(self, phase: Phase) -> bool:
        step = _PHASE_STEP.get(phase)
        finished = phase <= self.record.phase or phase in self.completed_phases
        return not (finished or (step is not None and self.done(step)))

    def phase_reached(self) -> Phase:
        """The last phase with every phase up to it complete: what the ledger records."""
        reached = Phase.CLAIMED
        for phase in Phase:
            if phase is not Phase.CLAIMED and self.pending(phase):
                break
            reached = phase
        return reached

    @property
    def held_before(self) -> bool:
        """An earlier invocation let the circuit breaker hold this finding back."""
        return self.record.decision == DecisionCode.CIRCUIT_BREAKER

    def step_summary(self) -> dict[str, str]:
        """Every step of the finding so far, this invocation's or recorded before it, as done, skipped or failed."""
        summary: dict[str, str] = {}
        for step in Step:
            result = self.results.get(step)
            state = result.state() if result is not None else self.record.steps.get(step)
            if state is not None:
                summary[str(step)] = "failed" if state.status is StepStatus.DEFERRED else str(state.status)
        return summary

    @property
    def isolated(self) -> bool:
        """The instance was put on the isolation group, by this invocation or one before it (not merely skipped)."""
        result = self.results.get(Step.CONTAIN)
        state = result.status if result is not None else getattr(self.record.steps.get(Step.CONTAIN), "status", None)
        return state is StepStatus.DONE

    @property
    def contained(self) -> bool:
        """Isolated as decided, or nothing was to be isolated."""
        return self.isolated or not self.decision.isolates

    @property
    def outcome(self) -> Outcome:
        return outcome_of(self.decision, contained=self.contained)

    def actions(self) -> list[str]:
        """What was done for this finding, by this invocation and those before it, in the flow's order."""
        lines = []
        for step in Step:
            result = self.results.get(step)
            detail = result.detail if result is not None and result.ok else ""
            if result is None and self.record.step_done(step):
                detail = self.record.steps[step].detail
            if detail:
                lines.append(f"{step}: {detail}")
        return lines

    def failures(self) -> list[str]:
        return [f"{result.step}: {result.error}" for result in self.results.values() if not result.ok]

    def timeline(self) -> list[dict[str, Any]]:
        """Every step so far, this invocation's or recorded before it, in the flow's order: when it ended, and how."""
        start = {"step": "resumed" if self.retry else "claimed", "status": "done", "at": utc_timestamp(self.claimed_at)}
        entries = [start] if self.claimed_at else []
        for step in Step:
            result = self.results.get(step)
            state = result.state() if result is not None else self.record.steps.get(step)
            if state is not None:
                entry: dict[str, Any] = {"step": str(step), **state.to_record()}
                if result is not None:
                    entry["seconds"] = round(result.seconds, 3)
                entries.append(entry)
        return entries

    def states(self, steps: Iterable[Step] | None = None) -> dict[str, StepState]:
        chosen = self.results if steps is None else [step for step in steps if step in self.results]
        return {str(step): self.results[step].state() for step in chosen}

    @property
    def jira_key(self) -> str | None:
        return self.values.get("jira_key") or self.record.jira_key

    @property
    def snapshot_ids(self) -> list[str]:
        return list(self.values.get("snapshot_ids") or self.record.snapshot_ids)

    @property
    def original_groups(self) -> dict[str, tuple[str, ...]]:
        return dict(self.values.get("original_groups") or self.record.original_groups)


class Responder:
    def __init__(
        self,
        settings: Settings,
        clients: AwsClients,
        *,
        clock: Callable[[], float] = time.time,
        ticketing: JiraTicketing | None = None,
    ) -> None:
        self.settings = settings
        self.clients = clients
        self.clock = clock
        self.ledger = Ledger(clients.lazy("dynamodb"), settings.table_name, settings.record_retention_days)
        self.estates = Estates(
            clients,
            home_account_id=settings.responder_account_id,
            member_role_name=settings.member_role_name,
            member_role_path=settings.member_role_path,
            external_id=settings.member_role_external_id,
            registry=self.ledger,
        )
        self.guardduty = GuardDuty(clients.lazy("guardduty"), detector_id=settings.guardduty_detector_id)
        self.ticketing = ticketing or JiraTicketing(
            clients.lazy("secretsmanager"),
            secret_arn=settings.jira_secret_arn,
            project_key=settings.jira_project_key,
            issue_type=settings.jira_issue_type,
            timeout_seconds=settings.jira_timeout_seconds,
        )
        self._approvals: ApprovalDesk | None = None

    @property
    def approvals(self) -> ApprovalDesk:
        """The sweep's part in approvals, built on first use."""
        if self._approvals is None:
            from .approvals import ApprovalDesk

            self._approvals = ApprovalDesk(
                self.ledger,
                self.ticketing,
                sns=lambda: self.clients.sns,
                topic_arn=self.settings.topic_arn,
                clock=self.clock,
                jira_status=self.settings.jira_approval_status,
                jira_timeout_seconds=self.settings.jira_timeout_seconds,
            )
        return self._approvals

    @property
    def groups(self) -> GroupDirectory:
        """The containment groups of the responder's own account."""
        return self.estates.home.groups

    # -- the flow ---------------------------------------------------------------------------------

    def respond(
        self, event: Any, *, remaining_seconds: float | None = None, guardduty_copy: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The whole flow for one delivery. `guardduty_copy` is GuardDuty's copy the sweep has asked for already
        (the event is built from it); a delivery from outside never carries one and is confirmed here."""
        finding = parse_finding(event)
        if finding.resource_type == ATTACK_SEQUENCE:
            logs.bind(finding_id=finding.finding_id, correlation_id=finding.event_id)
            return self._respond_group(finding, remaining_seconds, guardduty_copy)
        return self._run(finding, remaining_seconds, guardduty_copy, delivered=None if guardduty_copy else event)

    def isolate_by_hand(
        self, request: ManualRequest, *, finding_id: str | None = None, remaining_seconds: float | None = None
    ) -> dict[str, Any]:
        """Contain an instance a person names, as a finding would be (no GuardDuty finding, no rule, no approval).

        Refused before anything is written when the ledger exempts the instance. Counted by the circuit
        breaker, never refused by it.
        """
        # Asked once: a resumed request (the sweep finishing it) is not refused half-way.
        exemption = self.ledger.get_exemption(request.instance_id, now=self.clock()) if finding_id is None else None
        if exemption is not None:
            raise ManualIsolationRefused(
                f"{request.instance_id} is not isolated: {exemption.describe()}; remove the exemption first "
                f"(guardduty-responder exempt {request.instance_id} --remove)"
            )
        from .manual import manual_finding, new_manual_id

        finding = manual_finding(request, finding_id or new_manual_id(), self.clock())
        return self._run(finding, remaining_seconds, None, manual=request)

    def _run(
        self,
        finding: Finding,
        remaining_seconds: float | None,
        guardduty_copy: dict[str, Any] | None,
        manual: ManualRequest | GroupMember | None = None,
        *,
        delivered: Any = None,
    ) -> dict[str, Any]:
        logs.bind(finding_id=finding.finding_id, instance_id=finding.instance_id, correlation_id=finding.event_id)
        response = self._claim(finding, remaining_seconds, guardduty_copy, manual)
        response.delivered = delivered if isinstance(delivered, Mapping) else None
        if response.delivery is not Delivery.HANDLED:
            return self._not_handled(response)
        try:
            self._recall(response)
            if response.pending(Phase.CONTAINED):
                response.decision = self._decide(response)
                try:
                    self._contain(response)
                finally:
                    self._unlock(response)
            if response.pending(Phase.PRESERVED):
                self._preserve_evidence(response)
            self._record(response)
            if response.pending(Phase.TICKETED):
                self._ticket(response)
            if response.pending(Phase.NOTIFIED):
                self._notify(response)
            self._finish(response)
        except Exception:
            # Whatever the failure, this invocation is done with the finding: a retry or the sweep may take
            # over now, not only once the lease runs out. (A timeout lets go when the lease runs out.)
            self._let_go(finding.finding_id)
            raise
        _fail_if_unfinished(response)
        return _summary(response)

    def _not_handled(self, response: FindingResponse) -> dict[str, Any]:
        """A delivery this invocation does not act on: unconfirmed (announced), a repeat, or held elsewhere."""
        if response.delivery is Delivery.UNCONFIRMED:
            return self._announce_unconfirmed(response)
        if response.delivery is Delivery.IN_PROGRESS:
            raise FindingInProgressError(
                f"finding {response.finding.finding_id} is being handled by another invocation: retried later, "
                "never lost"
            )
        return _repeat_summary(response)

    # -- group findings: one incident per instance, one issue and one message for the group ----------------

    def _respond_group(
        self, finding: Finding, remaining_seconds: float | None, guardduty_copy: dict[str, Any] | None
    ) -> dict[str, Any]:
        """A group finding: decided once for the group, its instances contained together or not at all."""
        response = self._claim(finding, remaining_seconds, guardduty_copy)
        if response.delivery is not Delivery.HANDLED:
            return self._not_handled(response)
        outcomes: list[MemberOutcome] = []
        try:
            self._recall(response)
            if response.pending(Phase.CONTAINED):
                response.decision = self._decide_group(response)
                outcomes = self._contain_group(response)
            response.add(phase=Phase.PRESERVED)  # each instance's evidence is its own incident's
            self._record(response)
            self._tell_group(response, outcomes)
            self._finish(response)
        except Exception:
            self._let_go(finding.finding_id)
            raise
        _fail_if_unfinished(response)
        members = [outcome.line() for outcome in outcomes]
        return {**_summary(response), "instances": list(finding.group_instances), "members": members}

    def _decide_group(self, response: FindingResponse) -> Decision:
        """The rules on the group finding; an isolation takes a place for every instance at once, or waits."""
        from .groups import approved_members, room_refused, too_large_for_the_breaker, unfit_group

        finding, approval = response.finding, response.record.approval
        unfit = unfit_group(finding)
        if unfit is not None:
            return Decision(Action.REPORT, DecisionCode.REPORT, unfit)
        decision = self._decide_on(finding, None, approval=approval)
        limit = self.settings.max_isolations_per_hour
        members = approved_members(finding, decision, approval)[0]
        if (decision.isolates or decision.awaits_approval) and len(members) > limit:
            decision = too_large_for_the_breaker(decision, len(members), limit)
        if decision.isolates:
            ids = [member.finding_id for member in members]
            slot = self.ledger.take_group_slots(finding.account_id, ids, now=response.claimed_at, limit=limit)
            response.values["isolation_slot"] = slot.describe()
            if not slot.granted and approval is None:
                decision = room_refused(decision, len(members), slot.used, limit)
            elif not slot.granted:
                decision = self._decide_on(finding, None, breaker_open=True, approval=approval)
        if decision.awaits_approval:
            self._await_approval(response)
        logger.info("decided for the group", extra={"decision": decision.action.value, "reason": decision.code})
        return decision

    def _contain_group(self, response: FindingResponse) -> list[MemberOutcome]:
        """Every instance of the group through the flow of an instance, a few at a time; throttling waited out."""
        from .groups import GROUP_CONCURRENCY, approved_members

        finding, decision = response.finding, response.decision
        if not decision.isolates:
            waiting = (
                "awaiting approval, nothing changed" if decision.awaits_approval else f"not isolated ({decision.code})"
            )
            instances = ", ".join(finding.group_instances) or "no instance here"
            response.add(StepResult.skipped(Step.CONTAIN, f"{waiting}; the group: {instances}"), phase=Phase.CONTAINED)
            return []
        members, unapproved = approved_members(finding, decision, response.record.approval)
        with ThreadPoolExecutor(max_workers=GROUP_CONCURRENCY, thread_name_prefix="group") as pool:
            futures = [
                pool.submit(contextvars.copy_context().run, self._contain_member, finding, member, response.deadline)
                for member in members
            ]
            outcomes = [future.result() for future in futures] + unapproved
        unsettled = [outcome for outcome in outcomes if outcome.state in ("not contained", "steps left")]
        summary = "; ".join(outcome.line() for outcome in outcomes)
        if unsettled:
            step = StepResult.failed(
                Step.CONTAIN, f"{len(unsettled)} of {len(outcomes)} instance(s) unsettled: {summary}"
            )
        else:
            isolated = sum(1 for outcome in outcomes if outcome.state in ("isolated", "contained before"))
            step = StepResult.done(Step.CONTAIN, f"{isolated} of {len(outcomes)} instance(s) isolated: {summary}")
        response.add(step, phase=Phase.CONTAINED)
        return outcomes

    def _contain_member(self, group: Finding, member: GroupMember, deadline: float | None) -> MemberOutcome:
        """One instance of the group; EC2 throttling is retried with a growing, jittered wait while time allows."""
        from .groups import MemberOutcome, member_finding, member_outcome

        for attempt in range(_THROTTLE_ATTEMPTS):
            left = deadline - time.monotonic() if deadline is not None else None
            try:
                summary = self._run(member_finding(group, member), left, None, manual=member)
            except IncompleteResponseError as error:
                return MemberOutcome(member.instance_id, "steps left", str(error)[:300])
            except Exception as error:  # the member's own failure, recorded on its item; the group goes on
                wait = min(_THROTTLE_BASE_SECONDS * 2**attempt, _THROTTLE_MAX_SECONDS) * (0.5 + random.random() / 2)
                room = left is None or left - wait > _SECONDS_AFTER_JIRA + self.settings.jira_timeout_seconds
                if _throttled(error) and room and attempt + 1 < _THROTTLE_ATTEMPTS:
                    logger.warning("throttled: waiting to retry", extra={"seconds": round(wait, 2)})
                    time.sleep(wait)
                    continue
                return member_outcome(member.instance_id, None, describe_error(error))
            return member_outcome(member.instance_id, summary, None)
        raise AssertionError("unreachable: the last attempt returns")

    def _tell_group(self, response: FindingResponse, outcomes: list[MemberOutcome]) -> None:
        """One issue and one message for the group, a line per instance."""
        from .groups import group_message_lines, group_ticket_lines

        lines = group_ticket_lines(response.finding, response.decision, outcomes, self._approval_ask(response))
        response.values["group_lines"] = lines
        response.values["group_message"] = group_message_lines(response.finding, response.decision, outcomes)
        if response.pending(Phase.TICKETED):
            self._ticket(response)
        if response.pending(Phase.NOTIFIED):
            self._notify(response)

    def _claim(
        self,
        finding: Finding,
        remaining_seconds: float | None,
        guardduty_copy: dict[str, Any] | None = None,
        manual: ManualRequest | GroupMember | None = None,
    ) -> FindingResponse:
        """Claim the finding, look at the instance and ask GuardDuty for its copy, all at once.

        An isolating finding is counted by the circuit breaker in the claim's own write, so the
        breaker costs no call of its own; a repeat is refused by that write and counts nothing.
        Whatever follows reads GuardDuty's copy, never the event.
        """
        now, preliminary = self.clock(), self._preliminary(finding, manual)
        lease = _lease_seconds(remaining_seconds)
        deadline = time.monotonic() + remaining_seconds if remaining_seconds is not None else None
        doubt = self._doubt_about_source(finding) if manual is None else None
        if doubt is not None:
            return FindingResponse(finding, _unclaimed(finding), unconfirmed(doubt), Delivery.UNCONFIRMED)
        limit = self.settings.max_isolations_per_hour
        claim, look, copy = run_three(
            lambda: self.ledger.claim_finding(
                finding,
                now=now,
                lease_seconds=lease,
                decision=preliminary.code,
                original_groups={eni.eni_id: eni.group_ids for eni in finding.interfaces},
                # A manual isolation is counted when it is decided, never refused; a group's instances all at once,
                # when it is decided: neither with the claim.
                isolation_limit=limit
                if preliminary.isolates and limit > 0 and _counted_with_claim(finding, manual)
                else None,
                lock_instance=preliminary.isolates,
                # One instance of a group is resumed through its group (GuardDuty's): never in the sweep's index.
                sweepable=manual is None or _manual_request(manual),
            ),
            lambda: _settled(lambda: self._look(finding)),
            lambda: guardduty_copy or (manual or _settled(lambda: self.guardduty.copy_of(finding.finding_id))),
        )
        response = FindingResponse(
            finding, claim.record, preliminary, retry=not claim.is_new, deadline=deadline, claimed_at=now
        )
        self._note_origin(response, manual, new=claim.is_new)
        response.slot, response.locked = claim.slot, claim.locked
        response.lease_until = round(now + lease, 3) if claim.is_new else None
        self._confirm(response, look, copy)
        if response.delivery is Delivery.HANDLED and not claim.is_new:
            response.delivery = self._repeat(response, now=now, lease=lease)
        return response

    def _note_origin(self, response: FindingResponse, origin: ManualRequest | GroupMember | None, *, new: bool) -> None:
        """A finding that is not GuardDuty's own: a person's request, or one instance of a group finding."""
        if origin is None:
            return
        from .groups import GroupMember, member_record

        finding_id = response.finding.finding_id
        if isinstance(origin, GroupMember):
            response.member = origin
            if new:
                self.ledger.record(finding_id, values=member_record(origin))
        else:
            response.manual = origin
            if new:
                # What the sweep needs to finish it: there is no GuardDuty copy to resume it from.
                self.ledger.record(finding_id, values={"manual": origin.to_record()})

    def _confirm(self, response: FindingResponse, look: Assessment | BaseException, copy: Any) -> None:
        """Go on with GuardDuty's copy of the finding; without one that matches, undo what this delivery took."""
        try:
            if isinstance(copy, BaseException):
                raise copy
            if isinstance(look, BaseException):
                raise look
            # A person's own request: nothing of GuardDuty's to confirm.
            trusted = response.manual is not None or response.member is not None
            confirmed = response.finding if trusted else _confirmed(response.finding, copy)
        except Exception:
            self._withdraw(response)
            raise
        response.assessment = look
        response.guardduty_copy = copy if isinstance(copy, Mapping) else None
        if isinstance(confirmed, Finding):
            response.finding = confirmed
            return
        logger.warning("unconfirmed finding", extra={"reason": confirmed})
        self._withdraw(response)
        response.delivery, response.decision = Delivery.UNCONFIRMED, unconfirmed(confirmed)

    def _withdraw(self, response: FindingResponse) -> None:
        """Remove a claim this delivery made and must not keep, and give back its place under the breaker."""
        if response.lease_until is None:
            return  # a repeat: the finding's item is someone else's
        try:
            self.ledger.release_claim(response.finding.finding_id, lease_until=response.lease_until)
        except LedgerError as error:
            logger.warning("could not withdraw the claim", extra={"error": str(error)})
        if response.slot is not None and response.slot.granted:
            self._give_back(response.finding, response.slot)
        if response.locked:
            self._unlock(response, forget=True)

    def _preliminary(self, finding: Finding, manual: ManualRequest | GroupMember | None) -> Decision:
        if manual is None:
            return self._decide_on(finding)
        from .groups import GroupMember, member_decision
        from .manual import manual_decision

        if isinstance(manual, GroupMember):
            return member_decision(manual)
        return manual_decision(manual, dry_run=self.settings.dry_run)

    def _doubt_about_source(self, finding: Finding) -> str | None:
        """Why the event cannot be GuardDuty's own for this function's region, if it cannot."""
        if finding.event_source != _GUARDDUTY_SOURCE:
            return f"the event's source is {finding.event_source!r}, not {_GUARDDUTY_SOURCE!r}"
        region = finding.event_region or finding.region
        if region != self.clients.region:
            return f"the event is from region {region!r}; this responder confirms findings of {self.clients.region}"
        return None

    def _repeat(self, response: FindingResponse, *, now: float, lease: float) -> Delivery:
        """A finding claimed before: note GuardDuty's newer count; resume it only if unfinished and free."""
        finding, record = response.finding, response.record
        if finding.count > record.service_count:
            self.ledger.note_repeat(finding, now=now)
        if record.status == RELEASED:
            return Delivery.RELEASED
        if record.completed:
            return Delivery.ALREADY_HANDLED
        if record.lease_until > now or not self.ledger.take_over(finding.finding_id, now=now, lease_seconds=lease):
            return Delivery.IN_PROGRESS
        response.lease_until = round(now + lease, 3)
        return Delivery.HANDLED

    def _recall(self, response: FindingResponse) -> None:
        """What the phases already completed decided and found, from the record: nothing is derived again."""
        record = response.record
        if record.phase < Phase.CONTAINED:
            return
        logger.info("resuming an unfinished response", extra={"phase": record.phase.label})
        response.decision = Decision(Action(record.action), DecisionCode(record.decision), record.reason)
        if record.instance:
            response.instance = InstanceFacts.from_record(record.instance)
        if record.isolated_at:
            response.values["isolated_at"] = record.isolated_at
        if record.incident_role is None:
            return
        incident = self.ledger.get_incident(response.finding.instance_id)
        primary = record.incident_role == "primary"
        # A further finding joins the incident only while it lasts; released since, its issue is its own.
        if incident is not None and (primary or incident.state == ISOLATED):
            response.incident = IncidentClaim(is_primary=primary, incident=incident)

    # -- assess and decide ----------------------------------------------------------------------------

    def _look(self, finding: Finding) -> Assessment:
        """Where the instance is acted on, how it is now, and whether the ledger exempts it: what the decision reads.

        Looked at whatever the event says (a sample flag included): GuardDuty's copy decides. The
        exemption is read at the same time as the instance is described, so it costs no round trip.
        """
        if not finding.instance_id:
            return Assessment(unreachable="the finding names no instance")
        assessment, exemption = run_both(
            lambda: self._look_at_instance(finding),
            lambda: self.ledger.get_exemption(finding.instance_id, now=self.clock()),
        )
        return replace(assessment, exemption=exemption)

    def _look_at_instance(self, finding: Finding) -> Assessment:
        try:
            estate = self.estates.for_account(finding.account_id)
        except AccountAccessError as error:
            return Assessment(unreachable=str(error))
        described = self._describe(finding, estate)
        if isinstance(described, str):
            return Assessment(estate=estate, unreachable=described)
        return Assessment(estate, described)

    def _decide(self, response: FindingResponse) -> Decision:
        """The decision on GuardDuty's copy, the live tags and, for an isolation, the circuit breaker."""
        instance, exemption = response.assessment.instance, response.assessment.exemption
        if response.manual is not None:
            return self._decide_by_hand(response)
        tags = instance.tags if instance is not None else None
        if response.member is not None:
            from .groups import member_decision

            # Its group counted its place; only the controls that spare this one instance apply.
            held = safety_hold(
                response.finding,
                tags or {},
                dry_run=self.settings.dry_run,
                exempt_tag_key=self.settings.exempt_tag_key,
                exemption=exemption,
            )
            decision = member_decision(response.member)
            return decision if held is None else Decision(Action.HOLD, held[0], f"{decision.reason}; {held[1]}")
        # A finding the breaker held stays held on its retries, whatever the hour.
        approval = response.record.approval
        decision = self._decide_on(
            response.finding, tags, breaker_open=response.held_before, exemption=exemption, approval=approval
        )
        if decision.isolates and instance is not None and not self._room_to_isolate(response):
            decision = self._decide_on(
                response.finding, tags, breaker_open=True, exemption=exemption, approval=approval
            )
        logger.info(
            "decided", extra={"decision": decision.action.value, "reason": decision.code, "rule": decision.rule}
        )
        return decision

    def _decide_by_hand(self, response: FindingResponse) -> Decision:
        """The operator's decision; its isolation counted in the hour without a limit (recorded, never refused)."""
        assert response.manual is not None
        from .manual import manual_decision

        decision = manual_decision(response.manual, dry_run=self.settings.dry_run)
        if decision.isolates and not response.done(Step.CONTAIN) and self.settings.max_isolations_per_hour > 0:
            response.slot = self.ledger.take_isolation_slot(
                response.finding.account_id, response.finding.finding_id, now=response.claimed_at, limit=_UNLIMITED
            )
        logger.info("decided by hand", extra={"decision": decision.action.value, "by": response.manual.by})
        return decision

    def _room_to_isolate(self, response: FindingResponse) -> bool:
        """Whether the breaker lets this finding isolate: counted with the claim, or counted now."""
        if response.done(Step.CONTAIN):
            return True  # isolated before, by an invocation that had counted it
        if response.slot is None or not response.slot.granted:
            # Not counted with the claim (a retry, or the event's own copy did not isolate), or refused
            # there while deliveries GuardDuty never confirmed may have held places for a moment (they
            # give them back once GuardDuty answers): counted now, a round trip on this path only.
            response.slot = self._take_slot(response.finding, response.claimed_at)
            if not response.slot.granted and response.slot.holders:
                response.slot = self._take_back_unconfirmed(response.finding, response.slot, response.claimed_at)
        # A further finding on an instance the responder holds isolated adds to its incident: no new place.
        return response.slot.granted or self._isolated_already(response.finding.instance_id)

    def _decide_on(
        self,
        finding: Finding,
        instance_tags: Mapping[str, str] | None = None,
        *,
        breaker_open: bool = False,
        exemption: Exemption | None = None,
        approval: Approval | None = None,
    ) -> Decision:
        return decide(
            finding,
            dry_run=self.settings.dry_run,
            exempt_tag_key=self.settings.exempt_tag_key,
            instance_tags=instance_tags,
            breaker_open=breaker_open,
            isolation_limit=self.settings.max_isolations_per_hour,
            rules=self.settings.response_rules,
            scope=self.settings.scope,
            exemption=exemption,
            approval=approval,
        )

    def _describe(self, finding: Finding, estate: Estate) -> InstanceFacts | str:
        """The live instance, or why there is none to act on."""
        try:
            return describe_instance(estate.clients.ec2, finding.instance_id)
        except InstanceNotFoundError as error:
            return str(error)
        except AccountAccessError as error:  # the member role refused a refresh of its credentials
            self.estates.forget(finding.account_id)
            return str(error)
        except ClientError as error:
            if estate.role_arn is None or error_code(error) not in _REFUSED:
                raise
            # The member role was removed or narrowed since it was assumed: as if it had never been there.
            self.estates.forget(finding.account_id)
            return f"cannot act in account {finding.account_id} through {estate.role_arn}: {describe_error(error)}"

    def _take_slot(self, finding: Finding, now: float) -> IsolationSlot:
        limit = self.settings.max_isolations_per_hour
        if limit == 0:
            slot = IsolationSlot(granted=False, window=breaker_window(now), used=0, limit=0)
        else:
            slot = self.ledger.take_isolation_slot(finding.account_id, finding.finding_id, now=now, limit=limit)
        logger.info("isolation slot", extra={"slot": slot.describe()})
        return slot

    def _take_back_unconfirmed(self, finding: Finding, slot: IsolationSlot, now: float) -> IsolationSlot:
        """The hour is full: places held by findings GuardDuty does not hold (forged deliveries in flight, or
        that died before giving theirs back) are taken back, and this finding is counted again."""
        # Only GuardDuty's own findings are asked about: a person's isolation and a group's instances hold their
        # places under ids GuardDuty never gave, and keep them.
        others = [
            holder for holder in slot.holders if holder != finding.finding_id and not _given_by_the_responder(holder)
        ][:_GETFINDINGS_IDS]
        try:
            held = self.guardduty.copies_of(others)
        except GuardDutyError as error:
            logger.warning("could not check the findings holding the hour", extra={"error": str(error)})
            return slot
        unknown = [holder for holder in others if holder not in held]
        if not unknown:
            return slot
        logger.warning("places held by findings GuardDuty does not hold taken back", extra={"findings": unknown})
        try:
            self.ledger.give_back_slot(finding.account_id, unknown, slot.window)
        except LedgerError as error:
            logger.warning("could not take the places back", extra={"error": str(error)})
            return slot
        return self._take_slot(finding, now)

    def _isolated_already(self, instance_id: str) -> bool:
        incident = self.ledger.get_incident(instance_id)
        return incident is not None and incident.state == ISOLATED

    # -- contain ------------------------------------------------------------------------------------

    def _contain(self, response: FindingResponse) -> None:
        """Isolate the instance if the decision says so (raising if that fails), and settle its incident."""
        assessment, slot = response.assessment, response.slot
        response.estate, response.instance = assessment.estate, assessment.instance
        if slot is not None:
            response.values["isolation_slot"] = slot.describe()
        instance, estate = assessment.instance, assessment.estate
        if assessment.unreachable is not None:
            # Nothing to contain here (no role in that account, long terminated): people must still
            # hear of it, and an isolating decision still fails the invocation at the end.
            containment = Containment(_unreachable(response.decision, assessment.unreachable))
        elif instance is not None and estate is not None and response.decision.isolates and not instance.gone:
            containment = self._isolate(response, instance, estate)
        elif response.decision.isolates and instance is None:
            # Never counted as contained without the instance having been looked at and moved.
            containment = Containment(StepResult.failed(Step.CONTAIN, "not contained: the instance was not described"))
        else:
            containment = self._leave_alone(response, instance)
        response.incident = containment.incident
        if containment.incident is not None and containment.incident.earlier:
            response.retry = True  # what an earlier delivery filed and took is looked for before doing it again
        response.add(containment.step, phase=Phase.CONTAINED)
        if slot is not None and slot.granted and not containment.isolated_first:
            # Counted, but this finding isolated nothing (exempt, gone, unreachable, or the instance
            # was isolated already for another finding): the place goes back to the hour.
            self._give_back(response.finding, slot)

    def _isolate(self, response: FindingResponse, instance: InstanceFacts, estate: Estate) -> Containment:
        finding = response.finding
        if not response.locked:
            instance = self._lock_and_look_again(response, instance, estate)
        vpcs = sorted({interface.vpc_id for interface in instance.interfaces})
        groups: dict[str, ContainmentGroups] = dict(
            zip(vpcs, run_parallel(estate.groups.groups_for, vpcs), strict=True)
        )
        responder_groups = frozenset().union(*(g.ids for g in groups.values()))
        originals = original_groups_of(instance, response.record.original_groups, responder_groups)
        response.values["original_groups"] = originals
        # The record must hold the groups to restore before anything moves. The claim already wrote
        # the ones GuardDuty reported; only when the live ones differ does this cost a write.
        if originals != dict(response.record.original_groups):
            self.ledger.save_original_groups(finding.finding_id, originals)
        started = time.monotonic()
        try:
            moves = isolate_instance(
                estate.clients.ec2,
                instance,
                groups,
                originals=originals,
                pause_seconds=self.settings.isolation_pause_seconds,
                deadline=response.deadline,
            )
        except (ContainmentError, AccountAccessError, ClientError, BotoCoreError) as error:
            self._contain_failed(response, instance, estate, vpcs, str(error))
            raise
        seconds = time.monotonic() - started
        logger.info("contained", extra={"interfaces": [m.eni_id for m in moves], "seconds": round(seconds, 3)})
        isolation = ", ".join(sorted({groups[i.vpc_id].isolation_id for i in instance.interfaces}))
        moved = sum(1 for move in moves if move.moves)
        ignored = sorted({group for found in groups.values() for group in found.ignored})
        warning = f"; never used, tagged as the responder's without being its own: {', '.join(ignored)}"
        step = StepResult.done(
            Step.CONTAIN,
            f"{len(moves)} network interface(s) on isolation group {isolation} ({moved} moved now)"
            + (warning if ignored else ""),
            {"isolated_at": utc_timestamp(self.clock())},
            seconds=seconds,
        )
        incident = self.ledger.claim_incident(
            instance_id=instance.instance_id,
            finding=finding,
            original_groups=originals,
            now=self.clock(),
            interfaces=[interface.eni_id for interface in instance.interfaces],
        )
        return Containment(step, incident)

    def _lock_and_look_again(self, response: FindingResponse, instance: InstanceFacts, estate: Estate) -> InstanceFacts:
        """Take the instance's lock (another response may have held it since the instance was described), then
        describe the instance again: what is moved and saved is how the instance is under the lock."""
        lease = _lease_seconds(response.deadline - time.monotonic() if response.deadline is not None else None)
        holder = response.finding.finding_id
        if not self.ledger.lock_instance(instance.instance_id, holder=holder, now=self.clock(), lease_seconds=lease):
            raise FindingInProgressError(
                f"instance {instance.instance_id} is being responded to for another finding: retried later, never lost"
            )
        response.locked = True
        again = describe_instance(estate.clients.ec2, instance.instance_id)
        response.assessment = replace(response.assessment, instance=again)
        response.instance = again
        return again

    def _unlock(self, response: FindingResponse, *, forget: bool = False) -> None:
        if not response.locked:
            return
        try:
            self.ledger.unlock_instance(response.finding.instance_id, holder=response.finding.finding_id, forget=forget)
        except LedgerError as error:
            logger.warning("could not let go of the instance's lock", extra={"error": str(error)})  # its lease runs out
        response.locked = False

    def _contain_failed(
        self, response: FindingResponse, instance: InstanceFacts, estate: Estate, vpcs: list[str], error: str
    ) -> None:
        """Record a failed containment, and the incident: some ENIs may be isolated already and release must know."""
        for vpc in vpcs:
            estate.groups.forget(vpc)  # a deleted group is found again, or recreated, on the retry
        self.ledger.record(
            response.finding.finding_id,
            steps={str(Step.CONTAIN): StepResult.failed(Step.CONTAIN, error).state()},
            removing=("expires_at",),  # its incident is recorded next, and kept until released
        )
        try:
            self.ledger.claim_incident(
                instance_id=instance.instance_id,
                finding=response.finding,
                original_groups=response.original_groups,
                now=self.clock(),
            )
        except LedgerError as ledger_error:
            logger.warning("could not record the incident", extra={"error": str(ledger_error)})

    def _leave_alone(self, response: FindingResponse, instance: InstanceFacts | None) -> Containment:
        """Not isolating: say why, and find the isolated incident a further finding about the instance joins."""
        undone = self._undo_partial_isolation(response, instance) if instance is not None else None
        step = StepResult.skipped(
            Step.CONTAIN, "; ".join(filter(None, [_why_not_contained(response.decision, instance), undone]))
        )
        if response.decision.awaits_approval and instance is not None and not instance.gone:
            self._await_approval(response)
        if not response.decision.opens_ticket or response.done(Step.TICKET):
            return Containment(step)
        # An instance isolated earlier (before a dry run or an exemption tag) has its incident issue
        # already: a further finding about it is a comment there.
        existing = self.ledger.get_incident(response.finding.instance_id)
        if existing is not None and existing.state == ISOLATED and existing.finding_id != response.finding.finding_id:
            return Containment(step, IncidentClaim(is_primary=False, incident=existing))
        return Containment(step)

    def _await_approval(self, response: FindingResponse) -> None:
        """The finding waits for a person: its approval item opened, with the timeout its rule names."""
        ask = self._approval_ask(response)
        if ask is None:
            return
        self.ledger.open_approval(
            response.finding,
            now=self.clock(),
            rule=response.decision.rule or "",
            timeout_minutes=ask.timeout_minutes,
            on_timeout=ask.on_timeout,
        )
        logger.info("awaiting approval", extra={"rule": response.decision.rule, "timeout_minutes": ask.timeout_minutes})

    def _approval_ask(self, response: FindingResponse) -> ApprovalAsk | None:
        """How the finding is approved or rejected, and its timeout, when its decision waits for a person."""
        if not response.decision.awaits_approval:
            return None
        rule = next((rule for rule in self.settings.response_rules if rule.name == response.decision.rule), None)
        return ApprovalAsk(
            finding_id=response.finding.finding_id,
            timeout_minutes=rule.approval_timeout_minutes if rule is not None else 0,
            on_timeout=str(rule.on_timeout) if rule is not None else "report",
            jira_status=self.settings.jira_approval_status,
        )

    def _undo_partial_isolation(self, response: FindingResponse, instance: InstanceFacts) -> str | None:
        """Put back the interfaces an earlier, failed attempt of this finding moved, now that it does not isolate.

        That attempt may have left one on the untracking group, which is open to the world. Interfaces
        of an instance another finding holds isolated are left as they are.
        """
        record, estate = response.record, response.assessment.estate
        attempted = record.steps.get(str(Step.CONTAIN))
        if attempted is None or attempted.status is not StepStatus.FAILED or estate is None:
            return None
        moved = {
            interface.eni_id: saved
            for interface in instance.interfaces
            if (saved := record.original_groups.get(interface.eni_id)) and set(saved) != set(interface.group_ids)
        }
        if not moved:
            return None
        incident = self.ledger.get_incident(instance.instance_id)
        if incident is not None and incident.state == ISOLATED and incident.finding_id != response.finding.finding_id:
            return None
        try:
            restore_groups(estate.clients.ec2, moved)
        except STEP_ERRORS as error:
            logger.critical("interfaces an earlier attempt moved could not be put back", extra={"enis": sorted(moved)})
            raise ContainmentError(
                f"putting back {', '.join(sorted(moved))} failed: {describe_error(error)}"
            ) from error
        if incident is not None and incident.state == ISOLATED:
            self.ledger.release_incident(
                instance.instance_id, now=self.clock(), released_by=f"guardduty-responder ({response.decision.code})"
            )
        logger.warning("an earlier attempt's moves undone", extra={"enis": sorted(moved)})
        return f"{len(moved)} network interface(s) an earlier attempt had moved put back on their own groups"

    def _give_back(self, finding: Finding, slot: IsolationSlot) -> None:
        try:
            self.ledger.give_back_slot(finding.account_id, finding.finding_id, slot.window)
        except LedgerError as error:
            # The hour then counts one isolation too many: safe, and it ends with the hour.
            logger.warning("could not give back the isolation slot", extra={"error": str(error)})

    # -- preserve evidence ------------------------------------------------------------------------------

    def _preserve_evidence(self, response: FindingResponse) -> None:
        """Right after containment its check and the instance's identity; then evidence, for the incident's first
        finding. A credential finding takes the identity away even when another finding isolated the instance."""
        instance, decision = response.instance, response.decision
        results: list[StepResult] = []
        # A terminated instance has nothing to isolate, but credentials it handed out still work.
        if instance is not None and decision.isolates and (response.isolated or instance.gone):
            results += self._after_containment(response, instance)
            if response.incident is not None and response.incident.is_primary:
                response.add(*results)  # the evidence's timeline holds them
                results += self._evidence_steps(response, instance)
            elif response.incident is not None:
                first = response.incident.incident.finding_id
                results.append(
                    StepResult.skipped(Step.EVIDENCE, f"evidence preserved by the incident's first finding {first}")
                )
        response.add(*results, phase=Phase.PRESERVED)
        if results and _first_finding_of_a_live_instance(response):
            self._note_still_open(response)
        self._tell_late_evidence(response)

    def _tell_late_evidence(self, response: FindingResponse) -> None:
        """Evidence stored by a retry after the issue was filed without it: the manifest commented on the issue."""
        stored = response.results.get(Step.EVIDENCE_BUCKET)
        key, manifest = response.record.jira_key, response.values.get("evidence_manifest")
        if stored is None or not stored.ok or not key or not manifest:
            return
        text = "\n".join(["Evidence stored after this issue was filed.", *evidence_lines(manifest)])
        try:
            self.ticketing.bounded(self.settings.jira_timeout_seconds, lambda: self.ticketing.add_comment(key, text))
        except STEP_ERRORS as error:
            logger.warning("the evidence was not commented on the issue", extra={"error": describe_error(error)})

    def _estate_for(self, response: FindingResponse) -> Estate:
        """Where the instance is acted on; on a resume, found again (a refusal fails the step that asked)."""
        if response.estate is None:
            response.estate = self.estates.for_account(response.finding.account_id)
        return response.estate

    def _evidence_steps(self, response: FindingResponse, instance: InstanceFacts) -> list[StepResult]:
        finding = response.finding
        isolated_at = response.values.get("isolated_at", utc_timestamp(self.clock()))

        def clients() -> AwsClients:
            return self._estate_for(response).clients

        actions: dict[Step, Callable[[], tuple[str, dict[str, Any]]]] = {
            Step.SNAPSHOTS: lambda: evidence.snapshot_volumes(
                clients().ec2, instance, finding, look_first=response.retry
            ),
            Step.PROTECT: lambda: evidence.protect_instance(clients().ec2, instance),
            Step.AUTOSCALING: lambda: evidence.leave_autoscaling_group(clients().autoscaling, instance),
            Step.LOAD_BALANCERS: lambda: evidence.leave_target_groups(clients().elbv2, instance),
            Step.TAG_INSTANCE: lambda: evidence.tag_instance(clients().ec2, instance, finding, isolated_at),
        }
        pending = [(step, actions[step]) for step in EVIDENCE_STEPS if not response.done(step)]
        results = run_parallel(lambda item: run_step(*item), pending)
        results += self._lock_snapshots(response, results)
        response.add(*results)  # the evidence's timeline holds them
        stored = self._store_evidence(response, instance)
        response.add(*stored)  # the scan follows the evidence
        return results + stored + self._scan_for_malware(response, instance)

    def _lock_snapshots(self, response: FindingResponse, results: list[StepResult]) -> list[StepResult]:
        """With SNAPSHOT_LOCK_DAYS, the snapshots locked once taken (by this invocation or an earlier one)."""
        days = self.settings.snapshot_lock_days
        taken = next((r for r in results if r.step is Step.SNAPSHOTS), None)
        if not days or response.done(Step.LOCK_SNAPSHOTS) or (taken is not None and not taken.ok):
            return []  # a failed snapshot step is retried first; the lock follows it
        ids = list(taken.values.get("snapshot_ids", [])) if taken is not None else response.snapshot_ids
        ec2 = self._estate_for(response).clients.ec2
        return [run_step(Step.LOCK_SNAPSHOTS, lambda: evidence.lock_snapshots(ec2, ids, days))]

    def _store_evidence(self, response: FindingResponse, instance: InstanceFacts) -> list[StepResult]:
        """With EVIDENCE_BUCKET, the incident's evidence and its manifest written once the snapshots are taken (and
        locked, when they are locked): the manifest names them, and is written once."""
        bucket = self.settings.evidence_bucket
        if not bucket or response.done(Step.EVIDENCE_BUCKET):
            return []
        needed = (Step.SNAPSHOTS, *((Step.LOCK_SNAPSHOTS,) if self.settings.snapshot_lock_days else ()))
        if not all(response.done(step) for step in needed):
            return []  # retried with them
        if not self._time_left_for_jira(response.deadline):
            return [StepResult.deferred(Step.EVIDENCE_BUCKET, "deferred: the issue and the message go first")]
        from . import evidence_store  # loaded on first use: the function's cold start does not pay for it

        finding = response.finding
        facts = evidence_store.IncidentFacts(
            account_id=finding.account_id,
            region=finding.region,
            instance_id=instance.instance_id,
            finding_id=finding.finding_id,
            delivered_event=response.delivered,
            guardduty_copy=response.guardduty_copy,
            original_groups=response.original_groups,
            snapshot_ids=response.snapshot_ids,
            volume_ids=[volume for _device, volume, _delete in instance.volumes],
            timeline=response.timeline(),
        )
        ec2 = self._estate_for(response).clients.ec2
        owner = self.settings.responder_account_id
        action = lambda: evidence_store.store_evidence(self.clients.s3, ec2, bucket, facts, owner=owner)  # noqa: E731
        return [run_step(Step.EVIDENCE_BUCKET, action)]

    def _scan_for_malware(self, response: FindingResponse, instance: InstanceFacts) -> list[StepResult]:
        """With MALWARE_SCAN, an on-demand scan of the instance, followed in the ledger until its verdict is told."""
        if not self.settings.malware_scan or response.done(Step.MALWARE_SCAN):
            return []
        if self.settings.evidence_bucket and not response.done(Step.EVIDENCE_BUCKET):
            return []  # after the evidence is kept, as its retry does
        if not self._time_left_for_jira(response.deadline):
            return [StepResult.deferred(Step.MALWARE_SCAN, "deferred: the issue and the message go first")]
        from . import malware  # loaded on first use, with the option

        finding, now = response.finding, self.clock()
        arn = identity.instance_arn(finding.region, finding.account_id, instance.instance_id)
        # The issue the verdict goes to: the group's for one instance of a group finding.
        label = finding_label(response.member.group_id if response.member is not None else finding.finding_id)

        def scan() -> tuple[str, dict[str, Any]]:
            detail, values = malware.start_scan(self.guardduty, arn, instance.tags, now)
            scan_id = values["malware_scan_id"]
            self.ledger.follow_malware_scan(scan_id, issue_label=label, instance_id=instance.instance_id, now=now)
            return detail, values

        return [run_step(Step.MALWARE_SCAN, scan)]

    def _after_containment(self, response: FindingResponse, instance: InstanceFacts) -> list[StepResult]:
        """The check, the tracking timeouts and the metadata service (the incident's first finding), beside the
        identity steps: the profile removed, then this instance's credentials revoked."""
        first = _first_finding_of_a_live_instance(response)
        checks = [step for step in CHECK_STEPS if first and self._wanted(step) and not response.done(step)]
        identity_wanted = response.finding.credentials is not None or (first and self.settings.contain_identity)
        actions = self._check_actions(response, instance)
        checked, taken = run_both(
            lambda: run_parallel(lambda step: run_step(step, actions[step]), checks),
            lambda: self._identity_steps(response, instance) if identity_wanted else [],
        )
        for result in checked:
            if result.step is Step.VERIFY and not result.ok:
                logger.critical("containment not verified", extra={"error": result.error})
        return [*checked, *taken]

    def _note_still_open(self, response: FindingResponse) -> None:
        """What stays open by design, from the steps as this invocation and those before it left them."""
        unsupported = response.values.get("tracking_unsupported", response.record.saved.get("tracking_unsupported"))
        response.values["still_open"] = identity.still_open(
            tracking_minimised=response.done(Step.CONNECTION_TRACKING) and not unsupported,
            metadata_off=response.done(Step.METADATA),
            profile_removed=response.done(Step.INSTANCE_PROFILE),
        )

    def _wanted(self, step: Step) -> bool:
        return step is not Step.METADATA or self.settings.disable_instance_metadata

    def _check_actions(
        self, response: FindingResponse, instance: InstanceFacts
    ) -> dict[Step, Callable[[], tuple[str, dict[str, Any]]]]:
        def ec2() -> Any:
            return self._estate_for(response).clients.ec2

        def isolation_ids() -> dict[str, str]:
            vpcs = sorted({interface.vpc_id for interface in instance.interfaces})
            return {vpc: self._estate_for(response).groups.groups_for(vpc).isolation_id for vpc in vpcs}

        return {
            Step.VERIFY: lambda: identity.verify_containment(ec2(), instance.instance_id, isolation_ids()),
            Step.CONNECTION_TRACKING: lambda: identity.minimise_tracking(ec2(), instance),
            Step.METADATA: lambda: identity.turn_metadata_off(ec2(), instance),
        }

    def _identity_steps(self, response: FindingResponse, instance: InstanceFacts) -> list[StepResult]:
        """The profile removed, then the credentials revoked: the cutoff falls after the instance stopped getting
        new ones. The revocation runs even if the removal failed (the credentials out there are the threat), and
        again, with a later cutoff, when a retry removes the profile."""
        results = []
        if not response.done(Step.INSTANCE_PROFILE):
            ec2 = self._estate_for(response).clients.ec2
            results.append(run_step(Step.INSTANCE_PROFILE, lambda: identity.remove_instance_profile(ec2, instance)))
        if results or not response.done(Step.REVOKE_SESSIONS):
            results.append(run_step(Step.REVOKE_SESSIONS, lambda: self._revoke(response, instance)))
        return results

    def _revoke(self, response: FindingResponse, instance: InstanceFacts) -> tuple[str, dict[str, Any]]:
        """This instance's credentials revoked on its roles and, for a credential finding, on the stolen role. With
        credential_revocation = "role", every older session of the stolen role instead, where nothing else uses it;
        where something does, this instance's credentials after all."""
        clients, finding, stolen = self._estate_for(response).clients, response.finding, response.finding.credentials
        whole_role = ""
        if stolen is not None and self.settings.credential_revocation == "role":
            from . import credentials  # the option's own checks, imported when chosen

            try:
                return credentials.revoke_older_sessions(
                    clients.ec2,
                    clients.iam,
                    instance,
                    stolen,
                    protected=self.settings.protected_roles,
                    now=self.clock(),
                )
            except StepSkipped as why:
                whole_role = f"; every older session of the role not revoked: {why}"
        roles = identity.roles_of(clients.iam, [instance.profile_arn] if instance.profile_arn else [])
        if stolen is not None and stolen.role_name not in {role.name for role in roles}:
            roles.append(identity.InstanceRole(stolen.role_name))
        arn = identity.instance_arn(finding.region, finding.account_id, instance.instance_id)
        detail, values = identity.revoke_instance_sessions(
            clients.iam, arn, roles, protected=self.settings.protected_roles, now=self.clock()
        )
        return detail + whole_role, values

    # -- record, Jira, SNS ------------------------------------------------------------------------------

    def _record(self, response: FindingResponse) -> None:
        """Everything the phases so far did and found, and the phase reached, in one write."""
        self.ledger.record(
            response.finding.finding_id,
            steps=response.states(),
            values=_facts(response),
            phase=response.phase_reached(),
            # A finding of an isolated incident lives as long as the incident: release sets its expiry.
            removing=("expires_at",) if _of_isolated_incident(response) else (),
        )

    def _ticket(self, response: FindingResponse) -> None:
        if not response.decision.opens_ticket or response.member is not None:
            response.add(phase=Phase.TICKETED)
            return
        if not self._time_left_for_jira(response.deadline):
            response.add(StepResult.deferred(Step.TICKET, "deferred: too little time left for Jira"))
            return
        response.add(run_step(Step.TICKET, lambda: self._file_issue(response)), phase=Phase.TICKETED)

    def _file_issue(self, response: FindingResponse) -> tuple[str, dict[str, Any]]:
        """The issue filed, or the incident's issue commented on, with all the Jira work bounded by its budget."""
        finding, incident = response.finding, response.incident
        if incident is not None and not incident.is_primary:
            text = comment_text(finding, response.decision, actions=response.actions(), failures=response.failures())
            known = incident.incident.jira_key
            label = finding_label(incident.incident.finding_id)
            key = self._within_jira_budget(lambda: self._comment_on_incident(known, label, text), finding)
            return f"commented on {key}", {"jira_key": key}
        if response.record.approval is not None and response.record.jira_key:
            return self._comment_approved(response, response.record.jira_key)
        ask = self._approval_ask(response)
        issue = ticket_text(
            finding,
            response.decision,
            outcome=response.outcome,
            failures=response.failures(),
            actions=response.actions(),
            snapshot_ids=response.snapshot_ids,
            original_groups=response.original_groups,
            approval=ask,
            group_lines=response.values.get("group_lines", ()),
            still_open=response.values.get("still_open") or response.record.saved.get("still_open", ()),
            evidence_manifest=response.values.get("evidence_manifest")
            or response.record.saved.get("evidence_manifest"),
        )
        key = self._within_jira_budget(lambda: self._find_or_file(response, issue), finding)
        if incident is not None:
            self.ledger.set_incident_ticket(finding.instance_id, key)
        if ask is not None:
            self.ledger.set_approval_ticket(finding.finding_id, key)
        return f"Jira issue {key}", {"jira_key": key}

    def _comment_approved(self, response: FindingResponse, known: str) -> tuple[str, dict[str, Any]]:
        """The approved isolation of a finding whose issue asked for it: told on that issue."""
        finding = response.finding
        text = approved_comment_text(
            finding,
            response.decision,
            outcome=response.outcome,
            actions=response.actions(),
            failures=response.failures(),
        )
        self._within_jira_budget(
            lambda: self._comment_on_incident(known, finding_label(finding.finding_id), text), finding
        )
        if response.incident is not None:
            self.ledger.set_incident_ticket(finding.instance_id, known)
        return f"commented on {known}", {"jira_key": known}

    def _find_or_file(self, response: FindingResponse, issue: TicketText) -> str:
        """The finding's issue: the one an earlier delivery filed, if any, else a new one.

        The create is marked in the ledger before it is sent. A delivery after the first may follow
        a crash, or a lost answer, between filing and recording: it looks first, and when a create
        was under way and Jira's search does not show its issue yet, it waits for the next delivery
        (up to JIRA_SEARCH_SETTLE_SECONDS after that create) rather than file a second issue.
        """
        finding_id, record = response.finding.finding_id, response.record
        if record.jira_key:
            return record.jira_key
        if response.retry:
            found = self.ticketing.find_issue(finding_label(finding_id))
            if found:
                return found
            age = self.clock() - record.ticket_filing if record.ticket_filing is not None else None
            if age is not None and age < JIRA_SEARCH_SETTLE_SECONDS:
                raise TicketingError(
                    f"an issue was being filed {max(age, 0):.0f} s ago and Jira's search does not show it yet: "
                    f"looked for again with the next delivery, and filed anew only if it is still not found "
                    f"{JIRA_SEARCH_SETTLE_SECONDS:.0f} s after"
                )
        marks: list[Decimal] = []

        def mark() -> None:
            marks.append(self.ledger.mark_ticket_filing(finding_id, now=self.clock()))

        try:
            return self.ticketing.create_issue(issue, before_sending=mark)
        except JiraRefused as refused:
            if refused.nothing_done and marks:
                # Jira answered that it filed nothing: the next delivery need not wait for its search.
                self.ledger.clear_ticket_filing(finding_id, marks[-1])
            raise

    def _comment_on_incident(self, known_key: str | None, label: str, text: str) -> str:
        key = known_key or self.ticketing.find_issue(label)
        if key is None:
            raise TicketingError("the incident's Jira issue is not filed yet; retried with the next delivery")
        self.ticketing.add_comment(key, text)
        return key

    def _within_jira_budget(self, work: Callable[[], str], finding: Finding) -> str:
        """Jira's answer within JIRA_TIMEOUT_SECONDS in all, however slowly Jira sends it."""
        return self.ticketing.bounded(self.settings.jira_timeout_seconds, work, key=finding_label(finding.finding_id))

    def _notify(self, response: FindingResponse) -> None:
        if not response.decision.notifies or response.member is not None:
            response.add(phase=Phase.NOTIFIED)
            return
        message = notification_text(
            response.finding,
            response.decision,
            outcome=response.outcome,
            actions=response.actions(),
            jira_key=response.jira_key,
            failures=response.failures(),
            approval=self._approval_ask(response),
            extra_lines=response.values.get("group_message", ()),
        )

        def send() -> tuple[str, dict[str, Any]]:
            message_id = publish(self.clients.sns, self.settings.topic_arn, message)
            return f"SNS message {message_id}", {"message_id": message_id}

        result = run_step(Step.NOTIFY, send)
        response.add(result, phase=Phase.NOTIFIED)
        if not result.ok:
            return
        # Recorded on its own, at once: a failure of the final record must not send it twice.
        try:
            self.ledger.record(response.finding.finding_id, steps=response.states([Step.NOTIFY]))
        except LedgerError as error:
            logger.warning("could not record the message as sent", extra={"error": str(error)})

    def _announce_unconfirmed(self, response: FindingResponse) -> dict[str, Any]:
        """Keep and announce a delivery GuardDuty does not vouch for; nothing is changed, nothing retried."""
        finding, decision = response.finding, response.decision
        key = self.ledger.record_unconfirmed(finding, now=self.clock(), reason=decision.reason)
        message = notification_text(finding, decision, outcome=Outcome.UNCONFIRMED, actions=[], jira_key=None)
        publish(self.clients.sns, self.settings.topic_arn, message)
        return {
            "finding_id": finding.finding_id,
            "instance_id": finding.instance_id,
            "finding_type": finding.finding_type,
            "repeat": False,
            "outcome": str(Delivery.UNCONFIRMED),
            "decision": str(decision.code),
            "action": str(decision.action),
            # What GuardDuty holds is not told to whoever invoked the function; the record and the
            # message to the security team say why.
            "reason": "not confirmed by GuardDuty; nothing was changed",
            "rule": None,
            "isolated": False,
            "record": key,
            "steps": {},
            "snapshot_ids": [],
            "jira_key": None,
        }

    def _finish(self, response: FindingResponse) -> None:
        """The last record of this invocation: Jira and SNS, whether the finding is complete, and the lease let go."""
        complete = not response.failures()
        values: dict[str, Any] = {"completed": complete}
        if response.values.get("jira_key"):
            values["jira_key"] = response.values["jira_key"]
        self.ledger.record(
            response.finding.finding_id,
            steps=response.states([Step.TICKET, Step.NOTIFY]),
            values=values,
            phase=response.phase_reached(),
            release_lease=True,
            # Complete: out of the sweep's index of unfinished findings.
            removing=("unfinished",) if complete else (),
        )

    def _time_left_for_jira(self, deadline: float | None) -> bool:
        """Whether Jira can be waited for and the message and record still fit before the Lambda times out."""
        if deadline is None:
            return True
        needed = self.settings.jira_timeout_seconds + _SECONDS_AFTER_JIRA
        return deadline - time.monotonic() >= needed

    def _let_go(self, finding_id: str) -> None:
        try:
            self.ledger.record(finding_id, release_lease=True)
        except LedgerError as error:
            # The original failure is what matters; the lease then simply runs out.
            logger.warning("could not release the lease", extra={"error": str(error)})

    # -- sweep: resume what no invocation finished ----------------------------------------------------

    def sweep(self, *, remaining_seconds: float | None = None) -> dict[str, Any]:
        """Resume every unfinished finding whose lease has run out, from GuardDuty's copy, as a delivery would.

        Run by the deployment's schedule and by `guardduty-responder sweep`. A finding unfinished longer
        than `unfinished_alarm_minutes` after its claim is logged for the unfinished-findings alarm.
        Never raises: a failed listing is logged for that alarm too, and the next sweep tries again.
        """
        deadline = time.monotonic() + remaining_seconds if remaining_seconds is not None else None
        outcome: dict[str, list[str]] = {"resumed": [], "failed": [], "missing": [], "in_progress": []}
        approvals = self._sweep_approvals()
        verdicts = self._sweep_malware_scans()
        try:
            found = self.ledger.unfinished_findings(now=self.clock(), limit=_SWEEP_BATCH)
            copies = self.guardduty.copies_of(
                [u.finding_id for u in found if not _given_by_the_responder(u.finding_id)]
            )
        except STEP_ERRORS as error:
            logger.error("sweep failed", extra={"error": describe_error(error)})
            return {"swept": 0, **outcome, **approvals.to_summary(), **verdicts, "error": describe_error(error)}
        for unfinished in found:
            if unfinished.finding_id not in approvals.approved:
                self._warn_if_late(unfinished)
            if deadline is not None and deadline - time.monotonic() < _SWEEP_SECONDS_PER_FINDING:
                break  # the next sweep resumes the rest
            left = deadline - time.monotonic() if deadline is not None else None
            if _given_by_the_responder(unfinished.finding_id):
                outcome[self._resume_manual(unfinished.finding_id, left)].append(unfinished.finding_id)
                continue
            copy = copies.get(unfinished.finding_id)
            if copy is None:
                logger.warning(
                    "GuardDuty no longer holds an unfinished finding", extra={"swept": unfinished.finding_id}
                )
                outcome["missing"].append(unfinished.finding_id)
                continue
            outcome[self._resume(copy, left)].append(unfinished.finding_id)
        logs.clear()
        logger.info("swept", extra={"summary": outcome})
        return {"swept": len(found), **outcome, **approvals.to_summary(), **verdicts}

    def _sweep_malware_scans(self) -> dict[str, list[str]]:
        """With MALWARE_SCAN, the verdict of each scan that has ended told on its incident's issue; the others wait."""
        if not self.settings.malware_scan:
            return {}
        told: list[str] = []
        failed: list[str] = []
        try:
            pending = self.ledger.malware_scans_to_follow(now=self.clock(), limit=_SWEEP_BATCH)
        except STEP_ERRORS as error:
            logger.error("listing the malware scans failed", extra={"error": describe_error(error)})
            return {"malware_verdicts": told, "malware_failed": ["(listing)"]}
        for item in pending:
            try:
                if self._tell_verdict(item):
                    told.append(str(item["scan_id"]))
            except STEP_ERRORS as error:
                logger.warning("malware verdict not told", extra={"scan": item["scan_id"], "error": str(error)})
                failed.append(str(item["scan_id"]))
        return {"malware_verdicts": told, "malware_failed": failed}

    def _tell_verdict(self, item: Mapping[str, Any]) -> bool:
        """Comment the scan's verdict on its incident's issue once it has ended (or, after a day, that it has not).
        An ended scan is claimed for a few minutes before it is told, so two sweeps never tell it twice; a failed
        telling is tried again then, and given up (and recorded so) a day after the scan started."""
        from . import malware

        scan_id, now = str(item["scan_id"]), self.clock()
        scans = self.guardduty.malware_scans(scan_id=scan_id)
        verdict = malware.verdict_of(scans[0]) if scans else "not known to GuardDuty's detector"
        late = now - float(item["started_epoch"]) >= malware.GIVE_UP_SECONDS
        if verdict is None and not late:
            return False
        if not self.ledger.claim_malware_scan(scan_id, now=now, seconds=malware.RETRY_SECONDS):
            return False
        verdict = verdict or "no verdict 24 hours after the scan started"
        text = malware.comment_text(scan_id, str(item["instance_id"]), verdict)
        label = str(item["issue_label"])
        try:
            work = lambda: self._comment_on_incident(None, label, text)  # noqa: E731
            self.ticketing.bounded(self.settings.jira_timeout_seconds, work, key=label)
        except STEP_ERRORS as error:
            if not late:
                raise
            verdict = f"{verdict} (not told on the issue: {describe_error(error)})"
        self.ledger.settle_malware_scan(scan_id, verdict, now=now)
        return True

    def _sweep_approvals(self) -> ApprovalSweep:
        """Decisions on findings awaiting approval acted on; a failure to list them waits for the next sweep."""
        try:
            return self.approvals.sweep()
        except STEP_ERRORS as error:
            from .approvals import ApprovalSweep

            logger.error("sweep failed", extra={"error": describe_error(error), "part": "approvals"})
            return ApprovalSweep()

    def _resume(self, copy: dict[str, Any], remaining_seconds: float | None) -> str:
        """Deliver GuardDuty's copy of an unfinished finding to the flow; what came of it."""
        event = {
            "source": _GUARDDUTY_SOURCE,
            "detail-type": "GuardDuty Finding",
            "region": self.clients.region,
            "id": f"sweep-{uuid.uuid4()}",
            "detail": copy,
        }
        try:
            self.respond(event, remaining_seconds=remaining_seconds, guardduty_copy=copy)
        except FindingInProgressError:
            return "in_progress"
        except Exception:
            logger.exception("resuming an unfinished finding failed")
            return "failed"
        return "resumed"

    def _resume_manual(self, finding_id: str, remaining_seconds: float | None) -> str:
        """Finish a manual isolation from its own record (no GuardDuty copy exists)."""
        record = self.ledger.get_finding(finding_id)
        if record is None or record.manual is None or not (record.phase >= Phase.CONTAINED or record.steps):
            # Only a person's own command starts a manual isolation; the sweep finishes one that began.
            logger.warning("a manual isolation the sweep did not start is left alone", extra={"swept": finding_id})
            self.ledger.record(finding_id, removing=("unfinished",))
            return "missing"
        try:
            from .manual import ManualRequest

            self.isolate_by_hand(
                ManualRequest.from_record(record.manual), finding_id=finding_id, remaining_seconds=remaining_seconds
            )
        except FindingInProgressError:
            return "in_progress"
        except Exception:
            logger.exception("resuming an unfinished manual isolation failed")
            return "failed"
        return "resumed"

    def _warn_if_late(self, unfinished: UnfinishedFinding) -> None:
        try:
            claimed = datetime.datetime.fromisoformat(unfinished.first_seen.replace("Z", "+00:00")).timestamp()
        except ValueError:
            claimed = 0.0  # no readable claim time: older than any bound
        if self.clock() - claimed > self.settings.unfinished_alarm_minutes * 60:
            logger.error(
                "finding left unfinished",
                extra={"finding_id": unfinished.finding_id, "first_seen": unfinished.first_seen},
            )

    # -- release ----------------------------------------------------------------------------------------

    def release(
        self,
        instance_id: str,
        *,
        released_by: str,
        restore_credentials: bool = False,
        return_to_service: bool = False,
    ) -> dict[str, Any]:
        """Put every ENI back on its saved groups, then the rest containment changed; mark the incident and its
        findings released, tell Jira. Later updates of those findings leave the instance alone.

        The older credentials stay revoked unless `restore_credentials`; the instance goes back into its Auto
        Scaling group and target groups only with `return_to_service`.
        """
        incident = self.ledger.get_incident(instance_id)
        if incident is None or incident.state != ISOLATED:
            raise ReleaseError(f"{instance_id} is not isolated by the responder: nothing to release")
        if not incident.original_groups:
            raise ReleaseError(f"{instance_id} has no saved security groups: restore them by hand")
        logs.bind(instance_id=instance_id, finding_id=incident.finding_id)
        estate = self.estates.for_account(incident.account_id) if incident.account_id else self.estates.home
        self._check_release_targets(incident, estate)
        restore_groups(estate.clients.ec2, incident.original_groups)
        items = self._restore_the_rest(
            incident, estate, credentials_too=restore_credentials, service_too=return_to_service
        )
        now = self.clock()
        # Findings first: if this stops half-way the incident is still isolated and release can run
        # again, while no update of an already released finding can isolate the instance again.
        self.ledger.mark_released(incident.findings, now=now)
        released = self.ledger.release_incident(
            instance_id, now=now, released_by=released_by, restored=[item.to_record() for item in items]
        )
        comment = run_step(
            Step.RELEASE_COMMENT, lambda: self._comment_release(released.jira_key, released_by, now, items)
        )
        logger.info("released", extra={"interfaces": sorted(incident.original_groups)})
        return {
            "instance_id": instance_id,
            "released": True,
            "restored_groups": {eni: list(groups) for eni, groups in incident.original_groups.items()},
            "restored": [item.line() for item in items],
            "failed": [item.line() for item in items if item.status == "failed"],
            "findings": list(released.findings),
            "jira_key": released.jira_key,
            "jira_comment": "done" if comment.ok else f"failed: {comment.error}",
        }

    def _restore_the_rest(
        self, incident: Incident, estate: Estate, *, credentials_too: bool, service_too: bool
    ) -> list[Restored]:
        """The groups are back: every other item containment changed, each done, left (and why) or failed."""
        from . import restore  # a person's command only: the function never pays for it

        saved = restore.saved_for_release(self.ledger, incident)
        return [
            restore.Restored("security groups", "restored", f"{len(incident.original_groups)} network interface(s)"),
            *restore.restore_the_rest(
                estate.clients,
                incident.instance_id,
                saved,
                protected=self.settings.protected_roles,
                credentials_too=credentials_too,
                service_too=service_too,
            ),
        ]

    def _check_release_targets(self, incident: Incident, estate: Estate) -> None:
        """Refuse the release, before anything moves, if any interface's saved groups are not fit to go back to.

        The saved groups are only what the ledger says: none may be one of the responder's own groups
        (recorded for the interface's VPC, now or before, or tagged as such), of another VPC, or gone.
        """
        try:
            instance = describe_instance(estate.clients.ec2, incident.instance_id)
        except InstanceNotFoundError as error:
            raise ReleaseError(f"{error}: nothing was moved") from error
        account_id = incident.account_id or self.estates.home_account_id

        def responder_groups(vpc_id: str) -> frozenset[str]:
            recorded = self.ledger.recorded_groups(account_id, vpc_id)
            return recorded.every_id | {recorded.untracking_id, recorded.isolation_id} if recorded else frozenset()

        refused = refused_restores(estate.clients.ec2, instance, incident.original_groups, responder_groups)
        if refused:
            raise ReleaseError(
                f"{incident.instance_id}: nothing was moved, as the saved groups are not fit to restore: "
                + "; ".join(refused)
                + ". Check the interfaces and put them on the right groups by hand"
            )

    def _comment_release(
        self, jira_key: str | None, released_by: str, now: float, items: list[Restored]
    ) -> tuple[str, dict[str, Any]]:
        if not jira_key:
            return "no Jira issue to comment on", {}
        text = "\n".join(
            [
                f"Released by {plain(released_by, 100)} at {utc_timestamp(now)}: every network interface is back on "
                "its original security groups; further updates of these findings are left alone.",
                *(f"* {plain(item.line(), 600)}" for item in items),
            ]
        )
        self.ticketing.bounded(self.settings.jira_timeout_seconds, lambda: self.ticketing.add_comment(jira_key, text))
        return f"commented on {jira_key}", {}


def _first_finding_of_a_live_instance(response: FindingResponse) -> bool:
    """The finding owns the incident of an instance that is still there: the checks are its, and what stays open."""
    instance = response.instance
    return response.incident is not None and response.incident.is_primary and instance is not None and not instance.gone


def _fail_if_unfinished(response: FindingResponse) -> None:
    """Containment held, or nothing was to be contained, but a step failed: the invocation fails, so it is retried."""
    if response.failures():
        raise IncompleteResponseError(f"finding {response.finding.finding_id}: " + "; ".join(response.failures()))


def _manual_request(origin: object) -> bool:
    """A person's request (not one instance of a group finding)."""
    from .manual import ManualRequest

    return isinstance(origin, ManualRequest)


def _given_by_the_responder(finding_id: str) -> bool:
    """An id the responder gave (a manual incident, a group's instance), never GuardDuty: never asked of it."""
    from .groups import is_member
    from .manual import is_manual

    return is_manual(finding_id) or is_member(finding_id)


def _counted_with_claim(finding: Finding, origin: ManualRequest | GroupMember | None) -> bool:
    """Whether the breaker counts the finding in its claim's write (a finding of one instance, from GuardDuty)."""
    return origin is None and finding.resource_type != ATTACK_SEQUENCE


def _throttled(error: BaseException) -> bool:
    """AWS asked to slow down, here or in an error this one was raised from."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ClientError) and error_code(seen) in _THROTTLED:
            return True
        if any(code in str(seen) for code in _THROTTLED):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _lease_seconds(remaining_seconds: float | None) -> float:
    """How long a lease holds: the invocation's remaining time and a margin, or a default outside Lambda."""
    return (remaining_seconds or _DEFAULT_LEASE_SECONDS) + 5


def _of_isolated_incident(response: FindingResponse) -> bool:
    return response.incident is not None and response.incident.incident.state == ISOLATED


def _unreachable(decision: Decision, reason: str) -> StepResult:
    if decision.isolates:
        return StepResult.failed(Step.CONTAIN, f"not contained: {reason}")
    return StepResult.skipped(Step.CONTAIN, f"not isolated ({decision.code}); {reason}")


def _why_not_contained(decision: Decision, instance: InstanceFacts | None) -> str:
    if instance is not None and instance.gone:
        return f"instance is {instance.state}: nothing to contain"
    if decision.awaits_approval and instance is not None:
        return f"awaiting approval, nothing changed; once approved: {what_isolation_does(instance)}"
    if decision.action is Action.HOLD and instance is not None:
        enis = ", ".join(interface.eni_id for interface in instance.interfaces)
        return f"not isolated ({decision.code}); would have moved {enis} to the untracking then the isolation group"
    return f"not isolated ({decision.code})"


def what_isolation_does(instance: InstanceFacts) -> str:
    """What containing the instance would change, as the approval asks it."""
    enis = ", ".join(f"{i.eni_id} ({i.vpc_id})" for i in instance.interfaces) or "no network interface"
    volumes = ", ".join(volume for _, volume, _ in instance.volumes) or "no volume"
    group = instance.autoscaling_group
    return (
        f"move {enis} to the untracking then the isolation group of its VPC (connections cut); snapshot {volumes}; "
        "turn termination protection on and keep its volumes; deregister it from its target groups"
        + (f"; put it in Standby in Auto Scaling group {group}" if group else "")
    )


def _facts(response: FindingResponse) -> dict[str, Any]:
    """What the record keeps besides the steps: the decision, what the steps found, the incident, the instance."""
    decision = response.decision
    facts: dict[str, Any] = {"decision": str(decision.code), "action": str(decision.action), "reason": decision.reason}
    facts.update({key: response.values[key] for key in (*_RECORDED_VALUES, "isolation_slot") if key in response.values})
    if "original_groups" in response.values:
        facts["original_groups"] = {eni: list(g) for eni, g in response.values["original_groups"].items()}
    if response.incident is not None:
        facts["incident_role"] = "primary" if response.incident.is_primary else "secondary"
        facts["incident_finding_id"] = response.incident.incident.finding_id
    if response.instance is not None:
        facts["instance"] = response.instance.to_record()
    return facts


def _summary(response: FindingResponse) -> dict[str, Any]:
    finding, decision = response.finding, response.decision
    return {
        "finding_id": finding.finding_id,
        "instance_id": finding.instance_id,
        "finding_type": finding.finding_type,
        "repeat": False,
        "outcome": str(Delivery.HANDLED),
        "decision": str(decision.code),
        "action": str(decision.action),
        "reason": decision.reason,
        "rule": decision.rule,
        "result": outcome_line(decision, response.outcome),
        "isolated": decision.isolates and response.isolated,
        "steps": response.step_summary(),
        "snapshot_ids": response.snapshot_ids,
        "jira_key": response.jira_key,
    }


def _settled(call: Callable[[], Any]) -> Any:
    """The call's result, or the expected error it raised, to be dealt with once the calls beside it are done."""
    try:
        return call()
    except STEP_ERRORS as error:
        return error


def _confirmed(event: Finding, copy: Mapping[str, Any] | None) -> Finding | str:
    """The finding as GuardDuty holds it, with the delivery's own envelope; or why GuardDuty does not vouch for it."""
    if copy is None:
        return f"GuardDuty has no finding {event.finding_id} in this region"
    try:
        held = parse_finding({"detail": copy})
    except MalformedFindingError as error:
        return f"GuardDuty's copy of finding {event.finding_id} cannot be read: {error}"
    held_says = (held.account_id, held.instance_id, held.finding_type)
    event_says = (event.account_id, event.instance_id, event.finding_type)
    differs = [
        f"{name} {held_value or 'none'}, not {event_value or 'none'}"
        for name, held_value, event_value in zip(("account", "instance", "type"), held_says, event_says, strict=True)
        if held_value != event_value
    ]
    if differs:
        return f"GuardDuty's copy of finding {event.finding_id} names " + "; ".join(differs)
    return replace(held, event_id=event.event_id, event_source=event.event_source, event_region=event.event_region)


def _unclaimed(finding: Finding) -> FindingRecord:
    """The record of a finding this invocation never claimed (GuardDuty does not vouch for it)."""
    return FindingRecord(
        finding_id=finding.finding_id,
        instance_id=finding.instance_id,
        status="open",
        service_count=finding.count,
        lease_until=0.0,
        decision=str(DecisionCode.UNCONFIRMED),
    )


def _repeat_summary(response: FindingResponse) -> dict[str, Any]:
    record = response.record
    return {
        "finding_id": response.finding.finding_id,
        "instance_id": response.finding.instance_id,
        "repeat": True,
        "outcome": str(response.delivery),
        "decision": record.decision,
        "jira_key": record.jira_key,
        "snapshot_ids": list(record.snapshot_ids),
    }
