"""The path of one finding, top to bottom, in the order of the product contract (DESIGN.md section 2).

parse -> decide -> claim -> contain -> preserve evidence -> record -> Jira -> SNS.
Containment failing fails the invocation at once (it is retried, then dead-lettered). Any later
step failing is recorded, the remaining steps still run, and the invocation fails at the end so a
retry finishes only what is left.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from . import credentials, evidence, logs, utc_timestamp
from .accounts import AccountAccessError, Estate, Estates
from .clients import AwsClients
from .config import Settings
from .finding import Finding, parse_finding
from .isolation import (
    ContainmentError,
    ContainmentGroups,
    GroupDirectory,
    InstanceFacts,
    InstanceNotFoundError,
    describe_instance,
    isolate_instance,
    original_groups_of,
    restore_groups,
)
from .ledger import (
    ISOLATED,
    FindingRecord,
    IncidentClaim,
    IsolationSlot,
    Ledger,
    LedgerError,
    StepState,
    breaker_window,
)
from .notification import notification_text, publish
from .parallel import run_parallel
from .policy import Action, Decision, decide
from .steps import STEP_ERRORS, StepResult, describe_error, run_step
from .ticketing import JiraTicketing, TicketingError, comment_text, finding_label, plain, ticket_text

logger = logging.getLogger(__name__)

_GONE_STATES = ("shutting-down", "terminated")
# What AWS answers with credentials that no longer carry the right (role deleted, narrowed, expired).
_REFUSED = ("AccessDenied", "UnauthorizedOperation", "AuthFailure", "ExpiredToken", "InvalidClientTokenId", "RequestExpired")
_DEFAULT_LEASE_SECONDS = 900.0
# The Jira step makes at most two requests (a search, then a create or a comment), each bounded by
# JIRA_TIMEOUT_SECONDS; the SNS message and the final record need a few seconds after it.
_JIRA_REQUESTS = 2
_SECONDS_AFTER_JIRA = 3.0


class ReleaseError(RuntimeError):
    """The instance cannot be released (not isolated by the responder, or nothing saved to restore)."""


class IncompleteResponseError(RuntimeError):
    """Containment held, but a later step failed; the invocation fails so a retry finishes it."""


@dataclass
class _Progress:
    """What this invocation did, step by step, for the record, the ticket, the message and the summary."""

    record: FindingRecord
    results: dict[str, StepResult] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)

    def done(self, name: str) -> bool:
        result = self.results.get(name)
        return (result.ok if result else False) or self.record.step_done(name)

    def add(self, result: StepResult) -> None:
        self.results[result.name] = result
        self.values.update(result.values)

    def skip(self, name: str, detail: str) -> None:
        self.results[name] = StepResult(name, ok=True, detail=detail, skipped=True)

    def actions(self) -> list[str]:
        return [f"{result.name}: {result.detail}" for result in self.results.values() if result.ok and result.detail]

    def failures(self) -> list[str]:
        return [f"{result.name}: {result.error}" for result in self.results.values() if not result.ok]

    def states(self) -> dict[str, StepState]:
        return {name: result.state() for name, result in self.results.items()}


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
            external_id=settings.member_role_external_id,
        )
        self.ticketing = ticketing or JiraTicketing(
            clients.lazy("secretsmanager"),
            secret_arn=settings.jira_secret_arn,
            project_key=settings.jira_project_key,
            issue_type=settings.jira_issue_type,
            timeout_seconds=settings.jira_timeout_seconds,
        )

    @property
    def groups(self) -> GroupDirectory:
        """The containment groups of the responder's own account."""
        return self.estates.home.groups

    # -- the flow ---------------------------------------------------------------------------------

    def respond(self, event: Any, *, remaining_seconds: float | None = None) -> dict[str, Any]:
        deadline = time.monotonic() + remaining_seconds if remaining_seconds is not None else None
        finding = parse_finding(event)
        logs.bind(finding_id=finding.finding_id, instance_id=finding.instance_id, correlation_id=finding.event_id)
        decision = self._decide(finding)

        now = self.clock()
        lease = (remaining_seconds or _DEFAULT_LEASE_SECONDS) + 5
        claim = self.ledger.claim_finding(
            finding,
            now=now,
            lease_seconds=lease,
            decision=decision.code,
            original_groups={eni.eni_id: eni.group_ids for eni in finding.interfaces},
        )
        if not claim.is_new:
            held = self._repeat_outcome(finding, claim.record, now=now, lease=lease)
            if held is not None:
                return held
            logger.info("resuming an unfinished response", extra={"steps": sorted(claim.record.steps)})
        progress = _Progress(claim.record)
        try:
            instance: InstanceFacts | None = None
            unreachable: str | None = None
            estate: Estate | None = None
            slot: IsolationSlot | None = None
            if decision.action is not Action.RECORD:
                try:
                    estate = self.estates.for_account(finding.account_id)
                except AccountAccessError as error:
                    unreachable = str(error)
                else:
                    contained_before = claim.record.steps.get("contain") is not None and (
                        claim.record.steps["contain"].status == "done"
                    )
                    # A finding the breaker held stays held on its retries, whatever the hour.
                    held_before = not claim.is_new and claim.record.decision == "circuit-breaker"
                    counts = decision.isolates and not contained_before and not held_before
                    instance, slot, unreachable = self._look(finding, estate, count=counts, now=now)
                    if instance is not None:
                        decision, slot = self._decide_with_breaker(
                            finding, instance, slot, held=held_before, counted=counts or contained_before, now=now
                        )
                    if slot is not None:
                        progress.values["isolation_slot"] = f"{slot.used} of {slot.limit} in {slot.window}"
            logger.info("decided", extra={"decision": decision.action.value, "reason": decision.code})

            incident: IncidentClaim | None = None
            if unreachable is not None:
                # Nothing to contain here (no role in that account, long terminated): people must
                # still hear of it, and an isolating decision still fails the invocation at the end.
                if decision.isolates:
                    progress.add(StepResult("contain", ok=False, error=f"not contained: {unreachable}"))
                else:
                    progress.skip("contain", f"not isolated ({decision.code}); {unreachable}")
            elif instance is not None and estate is not None and decision.isolates and instance.state not in _GONE_STATES:
                self._contain(finding, instance, estate, progress)
                incident = self.ledger.claim_incident(
                    instance_id=instance.instance_id,
                    finding=finding,
                    original_groups=progress.values["original_groups"],
                    now=self.clock(),
                )
                if incident.is_primary:
                    self._preserve_evidence(finding, instance, estate, progress, retry=not claim.is_new)
                else:
                    progress.skip("evidence", f"evidence preserved by the incident's first finding {incident.incident.finding_id}")
            else:
                progress.skip("contain", self._why_not_contained(decision, instance))
                if decision.opens_ticket and not progress.done("ticket"):
                    # An instance isolated earlier (before a dry run or an exemption tag) has its
                    # incident issue already: a further finding about it is a comment there.
                    existing = self.ledger.get_incident(finding.instance_id)
                    if existing is not None and existing.state == ISOLATED and existing.finding_id != finding.finding_id:
                        incident = IncidentClaim(is_primary=False, incident=existing)
            if decision.isolates and finding.credentials is not None and instance is not None and estate is not None:
                self._contain_credentials(finding, instance, estate, progress)
            if slot is not None and slot.granted and (incident is None or not incident.is_primary):
                # Counted, but this finding isolated nothing (exempt, gone, unreachable, or the
                # instance was isolated already for another finding): the slot goes back to the hour.
                self._give_back(finding, slot)

            self.ledger.record(
                finding.finding_id,
                steps=progress.states(),
                values=self._facts(decision, progress, incident),
            )
            if decision.opens_ticket:
                if progress.done("ticket") or self._time_left_for_jira(deadline):
                    progress.add(self._ticket(finding, decision, progress, incident, search_first=not claim.is_new))
                else:
                    progress.add(
                        StepResult("ticket", ok=False, deferred=True, error="deferred: too little time left for Jira")
                    )
            progress.add(self._notify(finding, decision, progress))

            failures = progress.failures()
            self.ledger.record(
                finding.finding_id,
                steps={name: progress.results[name].state() for name in ("ticket", "notify") if name in progress.results},
                values={"completed": not failures}
                | ({"jira_key": progress.values["jira_key"]} if progress.values.get("jira_key") else {}),
                release_lease=True,
            )
        except STEP_ERRORS:
            # This invocation is done with the finding: the retry may take over now, not only once the lease runs out.
            self._let_go(finding.finding_id)
            raise
        if failures:
            raise IncompleteResponseError(f"finding {finding.finding_id}: " + "; ".join(failures))
        return self._summary(finding, decision, progress, outcome="handled")

    def release(self, instance_id: str, *, released_by: str) -> dict[str, Any]:
        """Put every ENI back on its saved groups, mark the incident and its findings released, tell Jira.

        Later updates of those findings leave the instance alone.
        """
        incident = self.ledger.get_incident(instance_id)
        if incident is None or incident.state != "isolated":
            raise ReleaseError(f"{instance_id} is not isolated by the responder: nothing to release")
        if not incident.original_groups:
            raise ReleaseError(f"{instance_id} has no saved security groups: restore them by hand")
        logs.bind(instance_id=instance_id, finding_id=incident.finding_id)
        estate = self.estates.for_account(incident.account_id) if incident.account_id else self.estates.home
        restore_groups(estate.clients.ec2, incident.original_groups)
        now = self.clock()
        # Findings first: if this stops half-way the incident is still isolated and release can run
        # again, while no update of an already released finding can isolate the instance again.
        self.ledger.mark_released(incident.findings, now=now)
        released = self.ledger.release_incident(instance_id, now=now, released_by=released_by)
        jira_key = released.jira_key

        def comment_on_issue() -> tuple[str, dict]:
            if not jira_key:
                return "no Jira issue to comment on", {}
            self.ticketing.add_comment(
                jira_key,
                f"Released by {plain(released_by, 100)} at {utc_timestamp(now)}: every network interface is back on "
                "its original security groups; further updates of these findings are left alone.",
            )
            return f"commented on {jira_key}", {}

        comment = run_step("release_comment", comment_on_issue)
        logger.info("released", extra={"interfaces": sorted(incident.original_groups)})
        return {
            "instance_id": instance_id,
            "released": True,
            "restored_groups": {eni: list(groups) for eni, groups in incident.original_groups.items()},
            "findings": list(released.findings),
            "jira_key": jira_key,
            "jira_comment": "done" if comment.ok else f"failed: {comment.error}",
        }

    # -- steps --------------------------------------------------------------------------------------

    def _contain(self, finding: Finding, instance: InstanceFacts, estate: Estate, progress: _Progress) -> None:
        vpcs = sorted({interface.vpc_id for interface in instance.interfaces})
        groups: dict[str, ContainmentGroups] = dict(zip(vpcs, run_parallel(estate.groups.groups_for, vpcs)))
        responder_groups = frozenset().union(*(g.ids for g in groups.values()))
        originals = original_groups_of(instance, progress.record.original_groups, responder_groups)
        progress.values["original_groups"] = originals
        # The record must hold the groups to restore before anything moves. The claim already wrote
        # the ones GuardDuty reported; only when the live ones differ does this cost a write.
        if originals != dict(progress.record.original_groups):
            self.ledger.save_original_groups(finding.finding_id, originals)
        started = time.monotonic()
        try:
            moves = isolate_instance(
                estate.clients.ec2,
                instance,
                groups,
                originals=originals,
                pause_seconds=self.settings.isolation_pause_seconds,
            )
        except (ContainmentError, AccountAccessError, ClientError, BotoCoreError) as error:
            for vpc in vpcs:
                estate.groups.forget(vpc)  # a deleted group is found again, or recreated, on the retry
            failed = StepResult("contain", ok=False, error=str(error))
            self.ledger.record(finding.finding_id, steps={"contain": failed.state()})
            # Some ENIs may be isolated already: the incident holds what release must restore.
            try:
                self.ledger.claim_incident(
                    instance_id=instance.instance_id, finding=finding, original_groups=originals, now=self.clock()
                )
            except LedgerError as ledger_error:
                logger.warning("could not record the incident", extra={"error": str(ledger_error)})
            raise
        isolation = ", ".join(sorted({groups[i.vpc_id].isolation_id for i in instance.interfaces}))
        moved = sum(1 for move in moves if move.moves)
        progress.add(
            StepResult(
                "contain",
                ok=True,
                detail=f"{len(moves)} network interface(s) on isolation group {isolation} ({moved} moved now)",
                values={"isolated_at": utc_timestamp(self.clock())},
                seconds=time.monotonic() - started,
            )
        )
        logger.info("contained", extra={"interfaces": [m.eni_id for m in moves], "seconds": round(time.monotonic() - started, 3)})

    def _preserve_evidence(
        self, finding: Finding, instance: InstanceFacts, estate: Estate, progress: _Progress, *, retry: bool
    ) -> None:
        clients = estate.clients
        ec2 = clients.ec2
        isolated_at = progress.values.get("isolated_at", utc_timestamp(self.clock()))
        steps: list[tuple[str, Callable[[], tuple[str, dict]]]] = [
            ("snapshots", lambda: evidence.snapshot_volumes(ec2, instance, finding, look_first=retry)),
            ("protect", lambda: evidence.protect_instance(ec2, instance)),
            ("autoscaling", lambda: evidence.leave_autoscaling_group(clients.autoscaling, instance)),
            ("load_balancers", lambda: evidence.leave_target_groups(clients.elbv2, instance)),
            ("tag_instance", lambda: evidence.tag_instance(ec2, instance, finding, isolated_at)),
        ]
        pending = [(name, action) for name, action in steps if not progress.done(name)]
        for result in run_parallel(lambda step: run_step(*step), pending):
            progress.add(result)
            if not result.ok:
                logger.warning("evidence step failed", extra={"step": result.name, "error": result.error})

    def _contain_credentials(self, finding: Finding, instance: InstanceFacts, estate: Estate, progress: _Progress) -> None:
        """For every credential finding, first or not: the instance profile removed, then older sessions revoked.

        In that order, so that the cutoff falls after the instance stopped getting new credentials;
        the revocation runs even if the removal failed (the stolen sessions are the threat), and
        each is retried on its own.
        """
        stolen = finding.credentials
        if stolen is None:
            return
        clients = estate.clients
        if not progress.done("instance_profile"):
            progress.add(run_step("instance_profile", lambda: credentials.remove_instance_profile(clients.ec2, instance)))
        if progress.done("revoke_sessions"):
            return
        protected = frozenset({self.settings.member_role_name} - {""})
        progress.add(
            run_step(
                "revoke_sessions",
                lambda: credentials.revoke_older_sessions(
                    clients.ec2, clients.iam, instance, stolen, protected=protected, now=self.clock()
                ),
            )
        )

    def _decide(
        self, finding: Finding, *, instance_tags: Mapping[str, str] | None = None, breaker_open: bool = False
    ) -> Decision:
        return decide(
            finding,
            dry_run=self.settings.dry_run,
            exempt_tag_key=self.settings.exempt_tag_key,
            instance_tags=instance_tags,
            breaker_open=breaker_open,
            isolation_limit=self.settings.max_isolations_per_hour,
            credential_findings=self.settings.credential_findings,
        )

    def _decide_with_breaker(
        self,
        finding: Finding,
        instance: InstanceFacts,
        slot: IsolationSlot | None,
        *,
        held: bool,
        counted: bool,
        now: float,
    ) -> tuple[Decision, IsolationSlot | None]:
        """The decision from the live tags and the circuit breaker, and the slot it rests on.

        `held`: the breaker held this finding before (it stays held); `counted`: the slot was asked
        for already, or the finding isolated already and needs none.
        """
        if not held and not counted and self._decide(finding, instance_tags=instance.tags).isolates:
            # The finding's copy of the tags held it back, the live ones do not: it must be counted
            # before anything moves (a round trip, in this case only).
            slot = self._take_slot(finding, now)
        refused = held or (slot is not None and not slot.granted)
        if refused and self._isolated_already(finding.instance_id):
            # A further finding on an instance the responder holds isolated adds to its incident:
            # confirming an isolation takes no new slot.
            refused = False
        return self._decide(finding, instance_tags=instance.tags, breaker_open=refused), slot

    def _look(
        self, finding: Finding, estate: Estate, *, count: bool, now: float
    ) -> tuple[InstanceFacts | None, IsolationSlot | None, str | None]:
        """Describe the instance and, for an isolating decision, take a breaker slot: both at once.

        The slot is taken before the live tags are known, so that the breaker costs no round trip
        on the way to containment; a slot that isolates nothing is given back afterwards.
        """

        def describe() -> InstanceFacts | str:
            try:
                return describe_instance(estate.clients.ec2, finding.instance_id)
            except InstanceNotFoundError as error:
                return str(error)
            except AccountAccessError as error:  # the member role refused a refresh of its credentials
                self.estates.forget(finding.account_id)
                return str(error)
            except ClientError as error:
                if estate.role_arn is None or error.response.get("Error", {}).get("Code") not in _REFUSED:
                    raise
                # The member role was removed or narrowed since it was assumed: as if it had never been there.
                self.estates.forget(finding.account_id)
                return f"cannot act in account {finding.account_id} through {estate.role_arn}: {describe_error(error)}"

        def take_slot() -> IsolationSlot | None:
            return self._take_slot(finding, now) if count else None

        described, slot = run_parallel(lambda task: task(), [describe, take_slot])
        if slot is not None:
            logger.info("isolation slot", extra={"granted": slot.granted, "used": slot.used, "limit": slot.limit})
        if isinstance(described, str):
            return None, slot, described
        return described, slot, None

    def _take_slot(self, finding: Finding, now: float) -> IsolationSlot:
        limit = self.settings.max_isolations_per_hour
        if limit == 0:
            return IsolationSlot(granted=False, window=breaker_window(now), used=0, limit=0)
        return self.ledger.take_isolation_slot(finding.account_id, finding.finding_id, now=now, limit=limit)

    def _isolated_already(self, instance_id: str) -> bool:
        incident = self.ledger.get_incident(instance_id)
        return incident is not None and incident.state == ISOLATED

    def _give_back(self, finding: Finding, slot: IsolationSlot) -> None:
        try:
            self.ledger.give_back_slot(finding.account_id, finding.finding_id, slot.window)
        except LedgerError as error:
            # The hour then counts one isolation too many: safe, and it ends with the hour.
            logger.warning("could not give back the isolation slot", extra={"error": str(error)})

    def _ticket(
        self,
        finding: Finding,
        decision: Decision,
        progress: _Progress,
        incident: IncidentClaim | None,
        *,
        search_first: bool,
    ) -> StepResult:
        if progress.done("ticket"):
            return StepResult("ticket", ok=True, values={"jira_key": progress.record.jira_key})

        def file_issue() -> tuple[str, dict]:
            if incident is not None and not incident.is_primary:
                key = incident.incident.jira_key or self.ticketing.find_issue(finding_label(incident.incident.finding_id))
                if key is None:
                    raise TicketingError("the incident's Jira issue is not filed yet; retried with the next delivery")
                self.ticketing.add_comment(
                    key, comment_text(finding, decision, actions=progress.actions(), failures=progress.failures())
                )
                return f"commented on {key}", {"jira_key": key}
            # A delivery after the first may follow a crash between filing and recording: look first.
            key = self.ticketing.find_issue(finding_label(finding.finding_id)) if search_first else None
            if key is None:
                text = ticket_text(
                    finding,
                    decision,
                    contained=progress.done("contain") or not decision.isolates,
                    failures=progress.failures(),
                    actions=progress.actions(),
                    snapshot_ids=progress.values.get("snapshot_ids") or progress.record.snapshot_ids,
                    original_groups=progress.values.get("original_groups") or dict(progress.record.original_groups),
                )
                key = self.ticketing.create_issue(text)
            if incident is not None:
                self.ledger.set_incident_ticket(finding.instance_id, key)
            return f"Jira issue {key}", {"jira_key": key}

        result = run_step("ticket", file_issue)
        if not result.ok:
            logger.warning("Jira step failed", extra={"error": result.error})
        return result

    def _notify(self, finding: Finding, decision: Decision, progress: _Progress) -> StepResult:
        if progress.done("notify"):
            return StepResult("notify", ok=True)
        failures = progress.failures()
        outcome = {
            Action.ISOLATE: "isolated" if progress.done("contain") else "not isolated",
            Action.HOLD: "not isolated (" + decision.code + ")",
            Action.RECORD: "recorded only",
        }[decision.action]
        message = notification_text(
            finding,
            decision,
            outcome=outcome,
            actions=progress.actions(),
            jira_key=progress.values.get("jira_key") or progress.record.jira_key,
            failures=failures,
            contained=progress.done("contain") or not decision.isolates,
        )

        def send() -> tuple[str, dict]:
            message_id = publish(self.clients.sns, self.settings.topic_arn, message)
            return f"SNS message {message_id}", {"message_id": message_id}

        result = run_step("notify", send)
        if not result.ok:
            logger.warning("SNS step failed", extra={"error": result.error})
            return result
        # Recorded on its own, at once: a failure of the final record must not send it twice.
        try:
            self.ledger.record(finding.finding_id, steps={"notify": result.state()})
        except LedgerError as error:
            logger.warning("could not record the message as sent", extra={"error": str(error)})
        return result

    def _time_left_for_jira(self, deadline: float | None) -> bool:
        """Whether Jira can be waited for and the message and record still fit before the Lambda times out."""
        if deadline is None:
            return True
        needed = _JIRA_REQUESTS * self.settings.jira_timeout_seconds + _SECONDS_AFTER_JIRA
        return deadline - time.monotonic() >= needed

    def _let_go(self, finding_id: str) -> None:
        try:
            self.ledger.record(finding_id, release_lease=True)
        except LedgerError as error:
            # The original failure is what matters; the lease then simply runs out.
            logger.warning("could not release the lease", extra={"error": str(error)})

    # -- repeats, records, summaries ----------------------------------------------------------------

    def _repeat_outcome(
        self, finding: Finding, record: FindingRecord, *, now: float, lease: float
    ) -> dict[str, Any] | None:
        """What a repeated delivery does: nothing but note the new count, unless the first one never finished."""
        if finding.count > record.service_count:
            self.ledger.note_repeat(finding, now=now)
        base = {
            "finding_id": finding.finding_id,
            "instance_id": finding.instance_id,
            "repeat": True,
            "decision": record.decision,
            "jira_key": record.jira_key,
            "snapshot_ids": list(record.snapshot_ids),
        }
        if record.status == "released":
            return {**base, "outcome": "released: left alone"}
        if record.completed:
            return {**base, "outcome": "already handled"}
        if record.lease_until > now or not self.ledger.take_over(finding.finding_id, now=now, lease_seconds=lease):
            return {**base, "outcome": "in progress in another invocation"}
        return None

    def _facts(self, decision: Decision, progress: _Progress, incident: IncidentClaim | None) -> dict[str, Any]:
        facts: dict[str, Any] = {"decision": decision.code, "action": decision.action.value, "reason": decision.reason}
        for key in (
            "isolated_at",
            "snapshot_ids",
            "autoscaling_group",
            "target_groups",
            "isolation_slot",
            "removed_instance_profiles",
            "sessions_revoked_before",
            "revoked_role",
        ):
            if key in progress.values:
                facts[key] = progress.values[key]
        if "original_groups" in progress.values:
            facts["original_groups"] = {eni: list(g) for eni, g in progress.values["original_groups"].items()}
        if incident is not None:
            facts["incident_role"] = "primary" if incident.is_primary else "secondary"
            facts["incident_finding_id"] = incident.incident.finding_id
        return facts

    def _why_not_contained(self, decision: Decision, instance: InstanceFacts | None) -> str:
        if instance is not None and instance.state in _GONE_STATES:
            return f"instance is {instance.state}: nothing to contain"
        if decision.action is Action.HOLD and instance is not None:
            enis = ", ".join(interface.eni_id for interface in instance.interfaces)
            return f"not isolated ({decision.code}); would have moved {enis} to the untracking then the isolation group"
        return f"not isolated ({decision.code})"

    def _summary(self, finding: Finding, decision: Decision, progress: _Progress, *, outcome: str) -> dict[str, Any]:
        return {
            "finding_id": finding.finding_id,
            "instance_id": finding.instance_id,
            "finding_type": finding.finding_type,
            "repeat": False,
            "outcome": outcome,
            "decision": decision.code,
            "action": decision.action.value,
            "reason": decision.reason,
            "isolated": decision.isolates and progress.done("contain"),
            "steps": {
                name: ("skipped" if r.skipped else "done" if r.ok else "failed") for name, r in progress.results.items()
            },
            "snapshot_ids": list(progress.values.get("snapshot_ids") or progress.record.snapshot_ids),
            "jira_key": progress.values.get("jira_key") or progress.record.jira_key,
        }

