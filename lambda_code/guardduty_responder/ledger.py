"""The state ledger: one DynamoDB item per finding, one per incident (an isolated instance).

Writes that decide something ("is this finding new?", "who owns this instance's incident?", "may
this delivery resume the work?") are conditional, so concurrent deliveries cannot both act.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from . import utc_timestamp
from .aws_errors import error_code
from .finding import Finding
from .isolation import RecordedGroups
from .policy import Approval, Exemption
from .steps import Phase, StepState

# A transaction (TransactWriteItems) is authorised by the actions of its parts: PutItem and UpdateItem here.
PERMISSIONS = (
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:GetItem",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
)
# What IAM checks for an API call whose name is not itself an IAM action.
IAM_ACTIONS_OF_CALLS = {"dynamodb:TransactWriteItems": ("dynamodb:PutItem", "dynamodb:UpdateItem")}

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
_CONDITION_FAILED = "ConditionalCheckFailedException"

# DynamoDB's TTL removes an exemption this long after it ran out (it is no longer honoured from its end).
_EXEMPTION_KEPT_SECONDS = 86400

OPEN = "open"
RELEASED = "released"
ISOLATED = "isolated"
# The sparse index of unfinished findings: a finding's item carries `unfinished` from its claim until it is
# complete, keyed with its lease, so the sweep finds those whose lease ran out with one Query, never a Scan.
UNFINISHED_INDEX = "unfinished"
UNFINISHED = "finding"
# Open approval items carry `unfinished = approval` in the same index, so the sweep lists them with one Query.
OPEN_APPROVAL = "approval"
# Malware scans whose verdict is not known yet carry `unfinished = malware-scan` (malware.py).
MALWARE_SCAN = "malware-scan"
MALWARE_PREFIX = "malware#"
# The states of an approval item. A person moves it from waiting to approved or rejected; the sweep
# moves an approved one to honoured (once), a rejected or timed-out one to settled.
WAITING = "waiting"
APPROVED = "approved"
REJECTED = "rejected"
TIMED_OUT = "timed-out"
HONOURED = "honoured"
# A decision the function could not act on (the finding was never awaiting approval): kept, never acted on.
VOID = "void"


class LedgerError(RuntimeError):
    """DynamoDB refused or failed a ledger request."""


class _Cancelled(Exception):
    """A transaction was cancelled; `reasons` are DynamoDB's, one per part, in order (Code, and Item if asked)."""

    def __init__(self, reasons: list[Mapping[str, Any]]) -> None:
        super().__init__("transaction cancelled")
        self.reasons = reasons

    def failed(self, index: int) -> bool:
        return index < len(self.reasons) and self.reasons[index].get("Code") == "ConditionalCheckFailed"

    def conflicted(self) -> bool:
        return any(reason.get("Code") == "TransactionConflict" for reason in self.reasons)


class _ConditionFailed(Exception):
    """A conditional write found the item not as it required; `item` is the item as it was, if returned."""

    def __init__(self, item: Mapping[str, Any] | None) -> None:
        super().__init__("condition failed")
        self.item = item


# The values a finding's record keeps that release reads to put back what containment changed, and the evidence's
# manifest (the issue names it on a retry).
SAVED_FOR_RELEASE = (
    "removed_instance_profiles",
    "revocations",
    "tracking_before",
    "tracking_unsupported",
    "metadata_before",
    "autoscaling_group",
    "autoscaling_left",
    "target_groups",
    "deregistered_targets",
    "still_open",
    "evidence_manifest",
)


@dataclass(frozen=True)
class FindingRecord:
    finding_id: str
    instance_id: str
    status: str
    service_count: int
    lease_until: float
    decision: str
    # The last phase of the flow this finding completed; a later invocation resumes after it.
    phase: Phase = Phase.CLAIMED
    action: str = ""
    reason: str = ""
    steps: Mapping[str, StepState] = field(default_factory=dict)
    original_groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    snapshot_ids: tuple[str, ...] = ()
    jira_key: str | None = None
    incident_role: str | None = None
    incident_finding_id: str | None = None
    # The instance as the containment phase saw it, for the phases after it.
    instance: Mapping[str, Any] | None = None
    isolated_at: str = ""
    completed: bool = False
    # When an invocation last sent Jira the request that files this finding's issue (epoch seconds),
    # so that a retry knows an issue may exist that Jira's search does not show yet.
    ticket_filing: float | None = None
    # Its rule asked for approval and no decision was acted on yet.
    awaiting_approval: bool = False
    # The approval the flow acts on (set when an approved finding is put back to be contained).
    approval: Approval | None = None
    # A person's request to isolate (guardduty-responder isolate), for a manual incident.
    manual: Mapping[str, Any] | None = None
    # What containment changed besides the groups, as release puts it back (SAVED_FOR_RELEASE).
    saved: Mapping[str, Any] = field(default_factory=dict)

    def step_done(self, name: str) -> bool:
        state = self.steps.get(name)
        return state is not None and state.status.settled

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> FindingRecord:
        data = _plain(item)
        return cls(
            finding_id=data["pk"],
            instance_id=data.get("instance_id", ""),
            status=data.get("status", OPEN),
            service_count=int(data.get("service_count", 1)),
            lease_until=float(data.get("lease_until", 0)),
            decision=data.get("decision", ""),
            phase=Phase.named(data.get("phase")),
            action=data.get("action", ""),
            reason=data.get("reason", ""),
            steps={name: StepState.from_record(state) for name, state in data.get("steps", {}).items()},
            original_groups={eni: tuple(groups) for eni, groups in data.get("original_groups", {}).items()},
            snapshot_ids=tuple(data.get("snapshot_ids", ())),
            jira_key=data.get("jira_key"),
            incident_role=data.get("incident_role"),
            incident_finding_id=data.get("incident_finding_id"),
            instance=data.get("instance"),
            isolated_at=data.get("isolated_at", ""),
            completed=bool(data.get("completed", False)),
            ticket_filing=float(data["ticket_filing"]) if data.get("ticket_filing") is not None else None,
            awaiting_approval=bool(data.get("awaiting_approval", False)),
            approval=_approval_of(data.get("approval")),
            manual=data.get("manual") if isinstance(data.get("manual"), Mapping) else None,
            saved={key: data[key] for key in SAVED_FOR_RELEASE if key in data},
        )


def _approval_of(data: Any) -> Approval | None:
    if not isinstance(data, Mapping):
        return None
    return Approval(
        by=str(data.get("by", "")),
        how=str(data.get("how", "")),
        at=str(data.get("at", "")),
        caller_arn=str(data.get("caller_arn", "")),
        instances=tuple(str(i) for i in data.get("instances", ()) if isinstance(i, str)),
    )


@dataclass(frozen=True)
class UnfinishedFinding:
    """A finding the sweep may resume: its id, and when it was first claimed."""

    finding_id: str
    first_seen: str

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> UnfinishedFinding:
        data = _plain(item)
        return cls(finding_id=data["pk"], first_seen=data.get("first_seen", ""))


@dataclass(frozen=True)
class Claim:
    is_new: bool
    record: FindingRecord
    # The circuit breaker's answer, when the claim counted the isolation in the same transaction.
    slot: IsolationSlot | None = None
    # The claim took the instance's lock, which no response had held before: whatever was described of the
    # instance while it was claimed is still how the responder left it.
    locked: bool = False


@dataclass(frozen=True)
class Incident:
    instance_id: str
    finding_id: str
    state: str
    original_groups: Mapping[str, tuple[str, ...]]
    jira_key: str | None
    findings: tuple[str, ...]
    isolated_at: str
    account_id: str = ""

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Incident:
        data = _plain(item)
        return cls(
            instance_id=data["instance_id"],
            finding_id=data["finding_id"],
            state=data.get("state", ISOLATED),
            original_groups={eni: tuple(groups) for eni, groups in data.get("original_groups", {}).items()},
            jira_key=data.get("jira_key"),
            findings=tuple(sorted(data.get("findings", ()))),
            isolated_at=data.get("isolated_at", ""),
            account_id=data.get("account_id", ""),
        )


@dataclass(frozen=True)
class IncidentClaim:
    is_primary: bool
    incident: Incident
    # The finding was the incident's primary before this claim: an earlier delivery may have filed its issue
    # and taken its evidence (its own item may be gone, expired under an older version).
    earlier: bool = False


@dataclass(frozen=True)
class IsolationSlot:
    """The circuit breaker's answer for one finding: may it isolate, and how full is the hour."""

    granted: bool
    window: str
    # Isolations counted in the hour; None when the count was taken in a transaction, which does not say.
    used: int | None
    limit: int
    # When refused: the findings that hold the hour's places.
    holders: tuple[str, ...] = ()

    def describe(self) -> str:
        counted = f"{self.used} of {self.limit}" if self.used is not None else f"counted, limit {self.limit}"
        return f"{counted} in {self.window}" + ("" if self.granted else ": refused")


def incident_key(instance_id: str) -> str:
    return f"instance#{instance_id}"


def lock_key(instance_id: str) -> str:
    return f"lock#{instance_id}"


def groups_key(account_id: str, vpc_id: str) -> str:
    return f"groups#{account_id}#{vpc_id}"


def exemption_key(instance_id: str) -> str:
    return f"exempt#{instance_id}"


def approval_key(finding_id: str) -> str:
    """The key of a finding's approval item: approvers may write these items and no other (dynamodb:LeadingKeys)."""
    return f"{APPROVAL_PREFIX}{finding_id}"


APPROVAL_PREFIX = "approval#"


class ApprovalRefused(RuntimeError):
    """The finding is not waiting for a decision (unknown, decided already, honoured); the message says which."""


@dataclass(frozen=True)
class ApprovalRecord:
    """A finding's approval item: what is awaited, until when, and the decision once made."""

    finding_id: str
    state: str
    instance_id: str = ""
    account_id: str = ""
    rule: str = ""
    requested_at: str = ""
    requested_epoch: float = 0.0
    # Epoch seconds after which the sweep applies `on_timeout` (0: no timeout).
    timeout_epoch: float = 0.0
    timeout_minutes: int = 0
    on_timeout: str = "report"
    jira_key: str | None = None
    decided_by: str = ""
    decided_arn: str = ""
    decided_at: str = ""
    decided_how: str = ""
    reason: str = ""
    # Steps of settling a rejection or a timeout (the Jira comment, the message) already done.
    settled_steps: tuple[str, ...] = ()
    # For a group finding: the instances the approval is asked for.
    instance_ids: tuple[str, ...] = ()

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> ApprovalRecord:
        data = _plain(item)
        return cls(
            finding_id=str(data.get("finding_id", str(data["pk"]).removeprefix(APPROVAL_PREFIX))),
            state=str(data.get("state", "")),
            instance_id=str(data.get("instance_id", "")),
            account_id=str(data.get("account_id", "")),
            rule=str(data.get("rule", "")),
            requested_at=str(data.get("requested_at", "")),
            requested_epoch=_number(data.get("requested_epoch")),
            timeout_epoch=_number(data.get("timeout_epoch")),
            timeout_minutes=int(_number(data.get("timeout_minutes"))),
            on_timeout=str(data.get("on_timeout", "report")),
            jira_key=str(data["jira_key"]) if data.get("jira_key") else None,
            decided_by=str(data.get("decided_by", ""))[:256],
            decided_arn=str(data.get("decided_arn", ""))[:2048],
            decided_at=str(data.get("decided_at", ""))[:40],
            # Written by the function alone (a timeout, a Jira transition): an approver's decision is by command.
            decided_how=str(data.get("decided_via", ""))[:20],
            reason=str(data.get("reason", ""))[:1000],
            settled_steps=tuple(sorted(str(step) for step in data.get("settled_steps", ()))),
            instance_ids=tuple(str(i) for i in data.get("instance_ids", ()) if isinstance(i, str)),
        )

    def approval(self) -> Approval:
        return Approval(
            by=self.decided_by,
            how=self.decided_how or "command",
            at=self.decided_at,
            caller_arn=self.decided_arn,
            instances=self.instance_ids,
        )


def _number(value: Any) -> float:
    try:
        return float(value) if value is not None else 0.0
    except (TypeError, ValueError):
        return 0.0


def breaker_key(account_id: str, window: str) -> str:
    return f"breaker#{account_id}#{window}"


def breaker_window(now: float) -> str:
    """The clock hour (UTC) the breaker counts in, e.g. 2026-11-28T17."""
    return utc_timestamp(now)[:13]


class Ledger:
    def __init__(self, dynamodb: Any, table_name: str, retention_days: int) -> None:
        self._dynamodb = dynamodb
        self._table = table_name
        self._retention_seconds = retention_days * 86400

    # -- findings -------------------------------------------------------------------------------

    def claim_finding(
        self,
        finding: Finding,
        *,
        now: float,
        lease_seconds: float,
        decision: str,
        original_groups: Mapping[str, Iterable[str]],
        isolation_limit: int | None = None,
        lock_instance: bool = False,
        sweepable: bool = True,
    ) -> Claim:
        """Insert the finding once; with `isolation_limit`, count its isolation in the same transaction, and with
        `lock_instance` take the instance's lock there too, if no response ever held it.

        A repeat costs this one call: the refused write returns the record, and counts nothing.
        """
        item = _finding_item(finding, now=now, decision=decision, original_groups=original_groups)
        item["lease_until"] = _epoch(now + lease_seconds)
        item["expires_at"] = self._expiry(now)
        if not sweepable:
            del item["unfinished"]
        put = {
            "Item": _dynamo(item),
            "ConditionExpression": "attribute_not_exists(pk)",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        lock = self._first_lock(finding, now=now, lease_seconds=lease_seconds) if lock_instance else None
        if isolation_limit is None and lock is None:
            return self._put_claim(finding, item, put)
        return self._claim_together(finding, item, put, now=now, limit=isolation_limit, lock=lock)

    def _first_lock(self, finding: Finding, *, now: float, lease_seconds: float) -> dict[str, Any] | None:
        """The Put that takes the instance's lock, only if no response ever held it (its item never existed)."""
        if not finding.instance_id:
            return None
        item = {
            "pk": lock_key(finding.instance_id),
            "kind": "lock",
            "holder": finding.finding_id,
            "lease_until": _epoch(now + lease_seconds),
            "expires_at": self._expiry(now),
        }
        return {"TableName": self._table, "Item": _dynamo(item), "ConditionExpression": "attribute_not_exists(pk)"}

    def _put_claim(self, finding: Finding, item: dict[str, Any], put: dict[str, Any]) -> Claim:
        try:
            self._request(f"claiming finding {finding.finding_id}", "put_item", **put)
        except _ConditionFailed as failed:
            return Claim(is_new=False, record=self._record_from(failed.item, finding.finding_id))
        return Claim(is_new=True, record=FindingRecord.from_item(_dynamo(item)))

    def _claim_together(
        self,
        finding: Finding,
        item: dict[str, Any],
        put: dict[str, Any],
        *,
        now: float,
        limit: int | None,
        lock: dict[str, Any] | None,
    ) -> Claim:
        count = _count_request(finding.account_id, finding.finding_id, now=now, limit=limit) if limit else None
        parts: list[dict[str, Any]] = [{"Put": {"TableName": self._table, **put}}]
        parts += [{"Update": {"TableName": self._table, **count}}] if count else []
        parts += [{"Put": lock}] if lock else []
        try:
            self._transact(f"claiming finding {finding.finding_id}", parts)
        except _Cancelled as cancelled:
            if cancelled.failed(0):
                record = self._record_from(cancelled.reasons[0].get("Item"), finding.finding_id)
                return Claim(is_new=False, record=record)
            if lock is not None and (cancelled.failed(len(parts) - 1) or cancelled.conflicted()):
                # A response held the instance before: claim without its lock; containment takes it apart.
                if not limit:
                    return self._put_claim(finding, item, put)
                return self._claim_together(finding, item, put, now=now, limit=limit, lock=None)
            if not limit or not (cancelled.failed(1) or cancelled.conflicted()):
                raise LedgerError(f"claiming finding {finding.finding_id} was cancelled: {cancelled.reasons}") from None
            return self._claim_then_count(finding, item, put, cancelled, now=now, limit=limit)
        slot = IsolationSlot(True, breaker_window(now), None, limit) if limit else None
        return Claim(True, FindingRecord.from_item(_dynamo(item)), slot, locked=lock is not None)

    def _claim_then_count(
        self,
        finding: Finding,
        item: dict[str, Any],
        put: dict[str, Any],
        cancelled: _Cancelled,
        *,
        now: float,
        limit: int,
    ) -> Claim:
        """The hour is full, or another finding is being counted at this instant: claim, then count apart."""
        claim = self._put_claim(finding, item, put)
        if not claim.is_new:
            return claim
        if cancelled.failed(1):
            held = _plain(cancelled.reasons[1].get("Item") or {}).get("findings", ())
            return Claim(True, claim.record, IsolationSlot(False, breaker_window(now), len(held) or limit, limit))
        slot = self.take_isolation_slot(finding.account_id, finding.finding_id, now=now, limit=limit)
        return Claim(True, claim.record, slot)

    # -- the instance's lock: one response acts on an instance at a time ---------------------------------

    def lock_instance(self, instance_id: str, *, holder: str, now: float, lease_seconds: float) -> bool:
        """Take the instance's lock, free or with its lease run out (or held by this finding already)."""
        try:
            self._request(
                f"locking {instance_id}",
                "update_item",
                Key=_dynamo({"pk": lock_key(instance_id)}),
                UpdateExpression="SET kind = :kind, holder = :holder, lease_until = :until, expires_at = :expires",
                ConditionExpression="attribute_not_exists(pk) OR lease_until < :now OR holder = :holder",
                ExpressionAttributeValues=_dynamo(
                    {
                        ":kind": "lock",
                        ":holder": holder,
                        ":until": _epoch(now + lease_seconds),
                        ":now": _epoch(now),
                        ":expires": self._expiry(now),
                    }
                ),
            )
        except _ConditionFailed:
            return False
        return True

    def unlock_instance(self, instance_id: str, *, holder: str, forget: bool = False) -> None:
        """Let go of the instance's lock. The item stays (with no lease), proof that a response held it, unless
        `forget`: a holder that changed nothing (a withdrawn claim) removes it."""
        request: dict[str, Any] = {
            "Key": _dynamo({"pk": lock_key(instance_id)}),
            "ConditionExpression": "holder = :holder",
            "ExpressionAttributeValues": _dynamo({":holder": holder}),
        }
        with contextlib.suppress(_ConditionFailed):  # taken over since: someone else's now
            if forget:
                self._request(f"unlocking {instance_id}", "delete_item", **request)
            else:
                request["ExpressionAttributeValues"] = _dynamo({":holder": holder, ":zero": Decimal(0)})
                self._request(
                    f"unlocking {instance_id}", "update_item", UpdateExpression="SET lease_until = :zero", **request
                )

    def release_claim(self, finding_id: str, *, lease_until: float) -> None:
        """Remove a claim this invocation made and must not keep (the finding is not GuardDuty's)."""
        with contextlib.suppress(_ConditionFailed):  # changed since: it is someone else's now
            self._request(
                f"withdrawing the claim of {finding_id}",
                "delete_item",
                Key=_dynamo({"pk": finding_id}),
                ConditionExpression="lease_until = :lease AND attribute_not_exists(completed)",
                ExpressionAttributeValues=_dynamo({":lease": _epoch(lease_until)}),
            )

    def record_unconfirmed(self, finding: Finding, *, now: float, reason: str) -> str:
        """Keep a delivery GuardDuty did not confirm, under a key of its own that can never block the real finding."""
        # A key of its own for every delivery: one can neither overwrite another nor stand for the finding.
        key = f"unconfirmed#{finding.finding_id}#{uuid.uuid4().hex}"
        item = _finding_item(finding, now=now, decision="unconfirmed", original_groups={})
        item.update(
            {
                "pk": key,
                "kind": "unconfirmed",
                "reason": reason[:1000],
                "event_id": finding.event_id or "",
                "event_source": finding.event_source or "",
                "event_region": finding.event_region or "",
                "expires_at": self._expiry(now),
            }
        )
        self._request(
            f"recording the unconfirmed finding {finding.finding_id}",
            "put_item",
            Item=_dynamo(item),
            ConditionExpression="attribute_not_exists(pk)",
        )
        return key

    def note_repeat(self, finding: Finding, *, now: float) -> bool:
        """Record a newer count of a finding GuardDuty re-published; an older or equal one changes nothing."""
        try:
            self._request(
                f"updating finding {finding.finding_id}",
                "update_item",
                Key=_dynamo({"pk": finding.finding_id}),
                UpdateExpression="SET service_count = :count, last_seen = :now, updated_at = :updated",
                ConditionExpression="attribute_exists(pk) AND service_count < :count",
                ExpressionAttributeValues=_dynamo(
                    {":count": finding.count, ":now": utc_timestamp(now), ":updated": finding.updated_at}
                ),
            )
        except _ConditionFailed:
            return False
        return True

    def take_over(self, finding_id: str, *, now: float, lease_seconds: float) -> bool:
        """Take the right to finish an unfinished finding, once its previous holder's lease has run out."""
        return self._take_lease(finding_id, f"taking over finding {finding_id}", "pk", now=now, seconds=lease_seconds)

    def _take_lease(self, pk: str, what: str, present: str, *, now: float, seconds: float) -> bool:
        """Hold the item (carrying `present`) for `seconds`, once the lease on it has run out; False otherwise."""
        try:
            self._request(
                what,
                "update_item",
                Key=_dynamo({"pk": pk}),
                UpdateExpression="SET lease_until = :until",
                ConditionExpression=f"attribute_exists({present}) AND lease_until < :now",
                ExpressionAttributeValues=_dynamo({":until": _epoch(now + seconds), ":now": _epoch(now)}),
            )
        except _ConditionFailed:
            return False
        return True

    def save_original_groups(self, finding_id: str, original_groups: Mapping[str, Iterable[str]]) -> None:
        self._update(finding_id, {"original_groups": {eni: list(groups) for eni, groups in original_groups.items()}})

    def record(
        self,
        finding_id: str,
        *,
        steps: Mapping[str, StepState] = {},
        values: Mapping[str, Any] = {},
        phase: Phase | None = None,
        release_lease: bool = False,
        removing: Iterable[str] = (),
    ) -> None:
        """Write step results, facts and the phase reached onto the finding's item in one call.

        `removing` names attributes dropped in the same write (`unfinished` once complete, `expires_at`
        while its instance is isolated).
        """
        assignments = dict(values)
        if phase is not None:
            assignments["phase"] = phase.label
        if release_lease:
            assignments["lease_until"] = Decimal(0)
        self._update(finding_id, assignments, steps, removing=removing)

    def mark_ticket_filing(self, finding_id: str, *, now: float) -> Decimal:
        """Note that the request filing the finding's issue is about to be sent (see FindingRecord.ticket_filing).

        Returns the time written, which `clear_ticket_filing` takes to remove this mark and no later one.
        """
        at = _epoch(now)
        self._update(finding_id, {"ticket_filing": at})
        return at

    def clear_ticket_filing(self, finding_id: str, at: Decimal) -> None:
        """Jira answered that it filed nothing: remove the mark written at `at`, unless a later one replaced it."""
        # A failed condition: another delivery marked a create of its own since, and its mark stays.
        with contextlib.suppress(_ConditionFailed):
            self._request(
                f"clearing the Jira mark of {finding_id}",
                "update_item",
                Key=_dynamo({"pk": finding_id}),
                UpdateExpression="REMOVE ticket_filing",
                ConditionExpression="ticket_filing = :at",
                ExpressionAttributeValues=_dynamo({":at": at}),
            )

    def get_finding(self, finding_id: str) -> FindingRecord | None:
        item = self._get(finding_id)
        return FindingRecord.from_item(item) if item else None

    def mark_released(self, finding_ids: Iterable[str], *, now: float) -> None:
        """Mark the findings released; from now on their items expire after the retention period.

        A finding whose item is gone (expired under an older version, deleted by hand) is skipped.
        """
        for finding_id in finding_ids:
            values = {"status": RELEASED, "released_at": utc_timestamp(now), "expires_at": self._expiry(now)}
            self._update(finding_id, values, missing_ok=True)

    def _expiry(self, now: float) -> int:
        return int(now) + self._retention_seconds

    # -- incidents --------------------------------------------------------------------------------

    def claim_incident(
        self,
        *,
        instance_id: str,
        finding: Finding,
        original_groups: Mapping[str, Iterable[str]],
        now: float,
        interfaces: Iterable[str] = (),
    ) -> IncidentClaim:
        """Make this finding the primary of the instance's incident, unless another finding already is.

        Refused, before anything is written, when the groups to restore miss one of `interfaces`.
        """
        self._refuse_unsaved(instance_id, interfaces, original_groups)
        item = {
            "pk": incident_key(instance_id),
            "kind": "incident",
            "instance_id": instance_id,
            "finding_id": finding.finding_id,
            "account_id": finding.account_id,
            "region": finding.region,
            "state": ISOLATED,
            "original_groups": {eni: list(groups) for eni, groups in original_groups.items()},
            "findings": {finding.finding_id},
            "isolated_at": utc_timestamp(now),
            # No expiry while isolated: the groups to restore must outlive any retention period.
        }
        try:
            self._request(
                f"claiming the incident of {instance_id}",
                "put_item",
                Item=_dynamo(item),
                ConditionExpression="attribute_not_exists(pk) OR #state = :released",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues=_dynamo({":released": RELEASED}),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except _ConditionFailed as failed:
            existing = self._incident_from(failed.item, instance_id)
            if existing.finding_id == finding.finding_id:
                return IncidentClaim(is_primary=True, incident=existing, earlier=True)
            self._request(
                f"adding {finding.finding_id} to the incident of {instance_id}",
                "update_item",
                Key=_dynamo({"pk": incident_key(instance_id)}),
                UpdateExpression="ADD findings :finding",
                ExpressionAttributeValues=_dynamo({":finding": {finding.finding_id}}),
            )
            return IncidentClaim(is_primary=False, incident=existing)
        return IncidentClaim(is_primary=True, incident=Incident.from_item(_dynamo(item)))

    def _refuse_unsaved(
        self, instance_id: str, interfaces: Iterable[str], original_groups: Mapping[str, Iterable[str]]
    ) -> None:
        """No incident is recorded without the groups to restore of every interface, unless it holds them already."""
        missing = sorted(set(interfaces) - set(original_groups))
        if not missing:
            return
        existing = self.get_incident(instance_id)
        if existing is None or existing.state != ISOLATED or set(missing) - set(existing.original_groups):
            raise LedgerError(
                f"the incident of {instance_id} is not recorded: no saved groups for {', '.join(missing)}"
            )

    def set_incident_ticket(self, instance_id: str, jira_key: str) -> None:
        self._update(incident_key(instance_id), {"jira_key": jira_key})

    def get_incident(self, instance_id: str) -> Incident | None:
        item = self._get(incident_key(instance_id))
        return Incident.from_item(item) if item else None

    def release_incident(
        self, instance_id: str, *, now: float, released_by: str, restored: list[dict[str, str]] | None = None
    ) -> Incident:
        """Mark the incident released, with what was put back; only an isolated incident, and only once."""
        try:
            response = self._request(
                f"releasing {instance_id}",
                "update_item",
                Key=_dynamo({"pk": incident_key(instance_id)}),
                UpdateExpression=(
                    "SET #state = :released, released_at = :now, released_by = :by, expires_at = :expires, "
                    "restored = :restored"
                ),
                ConditionExpression="#state = :isolated",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues=_dynamo(
                    {
                        ":released": RELEASED,
                        ":isolated": ISOLATED,
                        ":now": utc_timestamp(now),
                        ":by": released_by[:256],
                        ":expires": self._expiry(now),
                        ":restored": restored or [],
                    }
                ),
                ReturnValues="ALL_NEW",
            )
        except _ConditionFailed:
            raise LedgerError(f"{instance_id} has no isolated incident to release") from None
        return Incident.from_item(response["Attributes"])

    def unfinished_findings(self, *, now: float, limit: int) -> list[UnfinishedFinding]:
        """Unfinished findings whose lease has run out, longest free first, at most `limit`."""
        answer = self._request(
            "listing the unfinished findings",
            "query",
            IndexName=UNFINISHED_INDEX,
            KeyConditionExpression="unfinished = :unfinished AND lease_until < :now",
            ExpressionAttributeValues=_dynamo({":unfinished": UNFINISHED, ":now": _epoch(now)}),
            Limit=limit,
        )
        found = [UnfinishedFinding.from_item(item) for item in answer.get("Items", [])]
        # Only findings' own items: any other kind in the index (an approval item someone marked) is no finding,
        # and a group's instance ("<group>/<instance>") is resumed through its group.
        return [u for u in found if "#" not in u.finding_id and "/" not in u.finding_id]

    def scan(self) -> list[dict[str, Any]]:
        """Every item, as plain Python values (for the command line's status listing)."""
        items: list[dict[str, Any]] = []
        try:
            for page in self._dynamodb.get_paginator("scan").paginate(TableName=self._table):
                items.extend(_plain(item) for item in page["Items"])
        except ClientError as error:
            raise LedgerError(f"listing the ledger failed: {error_code(error)}") from error
        return items

    # -- exemptions -------------------------------------------------------------------------------

    def get_exemption(self, instance_id: str, *, now: float) -> Exemption | None:
        """The instance's exemption, if one is current (DynamoDB's TTL removes an expired one only eventually)."""
        item = self._get(exemption_key(instance_id))
        if not item:
            return None
        data = _plain(item)
        return exemption_of(data) if float(data.get("until_epoch", 0)) > now else None

    def put_exemption(self, instance_id: str, *, reason: str, until: float, by: str, now: float) -> Exemption:
        """Exempt the instance until `until`, replacing any exemption it had (the command line writes it)."""
        exemption = Exemption(instance_id=instance_id, reason=reason, until=utc_timestamp(until), by=by)
        item = {
            "pk": exemption_key(instance_id),
            "kind": "exemption",
            "instance_id": instance_id,
            "reason": reason,
            "until": exemption.until,
            "until_epoch": _epoch(until),
            "by": by,
            "created_at": utc_timestamp(now),
            "expires_at": int(until) + _EXEMPTION_KEPT_SECONDS,
        }
        self._request(f"exempting {instance_id}", "put_item", Item=_dynamo(item))
        return exemption

    def remove_exemption(self, instance_id: str) -> bool:
        """Remove the instance's exemption; False when it had none."""
        try:
            self._request(
                f"removing the exemption of {instance_id}",
                "delete_item",
                Key=_dynamo({"pk": exemption_key(instance_id)}),
                ConditionExpression="attribute_exists(pk)",
            )
        except _ConditionFailed:
            return False
        return True

    # -- containment groups ------------------------------------------------------------------------

    def recorded_groups(self, account_id: str, vpc_id: str) -> RecordedGroups | None:
        """The containment groups the responder created in this account and VPC, if any."""
        item = self._get(groups_key(account_id, vpc_id))
        return _recorded_groups(_plain(item)) if item else None

    def record_groups(
        self, account_id: str, vpc_id: str, groups: RecordedGroups, *, replacing: RecordedGroups | None
    ) -> RecordedGroups:
        """Record the groups just created, unless another invocation changed the record first: what is recorded wins.

        Every group id ever recorded is kept (`every_id`), so that a replaced group is still known
        as the responder's. The item never expires: groups outlive any retention period.
        """
        every_id = set(replacing.every_id if replacing else ()) | {groups.untracking_id, groups.isolation_id}
        item = {
            "pk": groups_key(account_id, vpc_id),
            "kind": "groups",
            "account_id": account_id,
            "vpc_id": vpc_id,
            "untracking_id": groups.untracking_id,
            "isolation_id": groups.isolation_id,
            "every_id": every_id,
        }
        if replacing is None:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            condition = {
                "ConditionExpression": "untracking_id = :untracking AND isolation_id = :isolation",
                "ExpressionAttributeValues": _dynamo(
                    {":untracking": replacing.untracking_id, ":isolation": replacing.isolation_id}
                ),
            }
        try:
            self._request(
                f"recording the containment groups of {vpc_id}",
                "put_item",
                Item=_dynamo(item),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **condition,
            )
        except _ConditionFailed as failed:
            current = failed.item or self._get(groups_key(account_id, vpc_id))
            if current is None:
                raise LedgerError(f"the containment groups of {vpc_id} were recorded, then vanished") from None
            return _recorded_groups(_plain(current))
        return RecordedGroups(groups.untracking_id, groups.isolation_id, frozenset(every_id))

    # -- approvals ----------------------------------------------------------------------------------

    def open_approval(
        self, finding: Finding, *, now: float, rule: str, timeout_minutes: int, on_timeout: str
    ) -> ApprovalRecord:
        """Record that the finding waits for a person: its approval item (once), and the mark on its own item that
        alone lets an approval be acted on (approvers can write approval items, never a finding's)."""
        item = {
            "pk": approval_key(finding.finding_id),
            "kind": "approval",
            "finding_id": finding.finding_id,
            "instance_id": finding.instance_id,
            "account_id": finding.account_id,
            "region": finding.region,
            "finding_type": finding.finding_type,
            "severity": Decimal(str(finding.severity)),
            "rule": rule,
            "state": WAITING,
            "requested_at": utc_timestamp(now),
            "requested_epoch": _epoch(now),
            "timeout_minutes": timeout_minutes,
            "timeout_epoch": _epoch(now + timeout_minutes * 60) if timeout_minutes else Decimal(0),
            "on_timeout": on_timeout,
            **({"instance_ids": list(finding.group_instances)} if finding.group_instances else {}),
            "unfinished": OPEN_APPROVAL,
            "lease_until": _epoch(now),
            "expires_at": self._expiry(now),
        }
        mark = {
            "TableName": self._table,
            "Key": _dynamo({"pk": finding.finding_id}),
            "UpdateExpression": "SET awaiting_approval = :yes",
            "ConditionExpression": "attribute_exists(pk)",
            "ExpressionAttributeValues": _dynamo({":yes": True}),
        }
        put = {"TableName": self._table, "Item": _dynamo(item), "ConditionExpression": "attribute_not_exists(pk)"}
        try:
            self._transact(f"opening the approval of {finding.finding_id}", [{"Put": put}, {"Update": mark}])
        except _Cancelled as cancelled:
            if not cancelled.failed(0):
                raise LedgerError(f"opening the approval of {finding.finding_id} was cancelled") from None
            # Opened by an earlier attempt: only the mark may be missing.
            self._update(finding.finding_id, {"awaiting_approval": True})
            return self.get_approval(finding.finding_id) or ApprovalRecord.from_item(_dynamo(item))
        return ApprovalRecord.from_item(_dynamo(item))

    def get_approval(self, finding_id: str) -> ApprovalRecord | None:
        item = self._get(approval_key(finding_id))
        return ApprovalRecord.from_item(item) if item else None

    def set_approval_ticket(self, finding_id: str, jira_key: str) -> None:
        self._update(approval_key(finding_id), {"jira_key": jira_key}, missing_ok=True)

    def decide_approval(
        self, finding_id: str, *, state: str, by: str, how: str, now: float, caller_arn: str = "", reason: str = ""
    ) -> ApprovalRecord:
        """Approve, reject or time out a finding that waits for a decision; refused if it is not waiting.

        The one write an approver's policy allows: these attributes of an approval item, nothing else.
        """
        values = {
            ":state": state,
            ":waiting": WAITING,
            ":by": by[:256],
            ":arn": caller_arn[:2048],
            ":at": utc_timestamp(now),
            ":reason": reason[:1000],
        }
        # How it was decided, when not by a person's command: an attribute approvers may not write.
        via = ", decided_via = :via" if how != "command" else ""
        if via:
            values[":via"] = how
        try:
            answer = self._request(
                f"deciding on the approval of {finding_id}",
                "update_item",
                Key=_dynamo({"pk": approval_key(finding_id)}),
                UpdateExpression="SET #state = :state, decided_by = :by, decided_arn = :arn, decided_at = :at, "
                "reason = :reason" + via,
                ConditionExpression="#state = :waiting",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues=_dynamo(values),
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except _ConditionFailed as failed:
            raise ApprovalRefused(_not_waiting(finding_id, failed.item)) from None
        return ApprovalRecord.from_item(answer["Attributes"])

    def follow_malware_scan(self, scan_id: str, *, issue_label: str, instance_id: str, now: float) -> None:
        """Remember a scan until its verdict is told on the issue labelled `issue_label`; one followed already is
        left as it is."""
        item = {
            "pk": MALWARE_PREFIX + scan_id,
            "scan_id": scan_id,
            "issue_label": issue_label,
            "instance_id": instance_id,
            "started_at": utc_timestamp(now),
            "started_epoch": _epoch(now),
            "unfinished": MALWARE_SCAN,
            "lease_until": _epoch(now),
            "expires_at": self._expiry(now),
        }
        with contextlib.suppress(_ConditionFailed):
            self._request(
                f"following malware scan {scan_id}",
                "put_item",
                Item=_dynamo(item),
                ConditionExpression="attribute_not_exists(pk)",
            )

    def claim_malware_scan(self, scan_id: str, *, now: float, seconds: float) -> bool:
        """Hold a followed scan for `seconds`; False when another sweep holds it, or it is told already."""
        what = f"claiming malware scan {scan_id}"
        return self._take_lease(MALWARE_PREFIX + scan_id, what, "unfinished", now=now, seconds=seconds)

    def malware_scans_to_follow(self, *, now: float, limit: int) -> list[dict[str, Any]]:
        """The scans whose verdict is not told yet and that no sweep holds, longest waiting first, at most `limit`."""
        answer = self._request(
            "listing the malware scans without a verdict",
            "query",
            IndexName=UNFINISHED_INDEX,
            KeyConditionExpression="unfinished = :scan AND lease_until < :now",
            ExpressionAttributeValues=_dynamo({":scan": MALWARE_SCAN, ":now": _epoch(now)}),
            Limit=limit,
        )
        keys = [str(_plain(item)["pk"]) for item in answer.get("Items", [])]
        found = [self._get(key) for key in keys if key.startswith(MALWARE_PREFIX)]
        return [_plain(item) for item in found if item]

    def settle_malware_scan(self, scan_id: str, verdict: str, *, now: float) -> None:
        """The scan's verdict, told: it is no longer followed (settled already: left as it is)."""
        with contextlib.suppress(_ConditionFailed):
            self._request(
                f"settling malware scan {scan_id}",
                "update_item",
                Key=_dynamo({"pk": MALWARE_PREFIX + scan_id}),
                UpdateExpression="SET verdict = :verdict, settled_at = :now REMOVE unfinished",
                ConditionExpression="attribute_exists(unfinished)",
                ExpressionAttributeValues=_dynamo({":verdict": verdict, ":now": utc_timestamp(now)}),
            )

    def open_approvals(self, *, limit: int) -> list[ApprovalRecord]:
        """Approval items not settled yet (waiting, or decided and not acted on), oldest first, at most `limit`
        (every page of the index is read up to it: however many wait, a decision on the newest is seen)."""
        keys: list[str] = []
        start: dict[str, Any] = {}
        while len(keys) < limit:
            answer = self._request(
                "listing the open approvals",
                "query",
                IndexName=UNFINISHED_INDEX,
                KeyConditionExpression="unfinished = :approval",
                ExpressionAttributeValues=_dynamo({":approval": OPEN_APPROVAL}),
                Limit=limit - len(keys),
                **start,
            )
            keys += [str(_plain(item)["pk"]) for item in answer.get("Items", [])]
            if "LastEvaluatedKey" not in answer:
                break
            start = {"ExclusiveStartKey": answer["LastEvaluatedKey"]}
        found = [self._get(key) for key in keys if key.startswith(APPROVAL_PREFIX)]
        return [ApprovalRecord.from_item(item) for item in found if item]

    def reopen_approved(self, approval: ApprovalRecord, *, now: float) -> bool:
        """Honour an approval once: the approval item is marked honoured and the finding is put back to be contained
        by the flow (its decision is taken again, approved). False when the finding's item is being worked on (the
        next sweep tries again) or never awaited approval (the decision is kept as void, never acted on)."""
        decided = approval.approval()
        honour = {
            "TableName": self._table,
            "Key": _dynamo({"pk": approval_key(approval.finding_id)}),
            "UpdateExpression": "SET #state = :honoured, honoured_at = :now REMOVE unfinished",
            "ConditionExpression": "#state = :approved",
            "ExpressionAttributeNames": {"#state": "state"},
            "ExpressionAttributeValues": _dynamo(
                {":honoured": HONOURED, ":now": utc_timestamp(now), ":approved": APPROVED}
            ),
        }
        reopen = {
            "TableName": self._table,
            "Key": _dynamo({"pk": approval.finding_id}),
            "UpdateExpression": "SET phase = :claimed, completed = :no, unfinished = :unfinished, lease_until = :zero, "
            "approval = :approval REMOVE awaiting_approval, #steps.#contain, #steps.#ticket, #steps.#notify",
            "ConditionExpression": "attribute_exists(awaiting_approval) AND lease_until < :now",
            "ExpressionAttributeNames": {
                "#steps": "steps",
                "#contain": "contain",
                "#ticket": "ticket",
                "#notify": "notify",
            },
            "ExpressionAttributeValues": _dynamo(
                {
                    ":claimed": Phase.CLAIMED.label,
                    ":no": False,
                    ":unfinished": UNFINISHED,
                    ":zero": Decimal(0),
                    ":approval": {key: list(v) if isinstance(v, tuple) else v for key, v in vars(decided).items()},
                    ":now": _epoch(now),
                }
            ),
        }
        try:
            self._transact(f"honouring the approval of {approval.finding_id}", [{"Update": honour}, {"Update": reopen}])
        except _Cancelled as cancelled:
            if cancelled.failed(1) and not (self._get(approval.finding_id) or {}).get("awaiting_approval"):
                self._void(approval, "the finding was not awaiting approval: nothing done")
            return False
        return True

    def settle_approval(self, approval: ApprovalRecord, *, now: float) -> None:
        """Close a rejected or timed-out approval: out of the sweep's list, and the finding no longer waiting."""
        parts = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": _dynamo({"pk": approval_key(approval.finding_id)}),
                    "UpdateExpression": "SET settled_at = :now REMOVE unfinished",
                    "ConditionExpression": "#state = :state",
                    "ExpressionAttributeNames": {"#state": "state"},
                    "ExpressionAttributeValues": _dynamo({":now": utc_timestamp(now), ":state": approval.state}),
                }
            },
            {
                "Update": {
                    "TableName": self._table,
                    "Key": _dynamo({"pk": approval.finding_id}),
                    "UpdateExpression": "SET approval_outcome = :state REMOVE awaiting_approval",
                    "ConditionExpression": "attribute_exists(pk)",
                    "ExpressionAttributeValues": _dynamo({":state": approval.state}),
                }
            },
        ]
        try:
            self._transact(f"settling the approval of {approval.finding_id}", parts)
        except _Cancelled:
            raise LedgerError(f"settling the approval of {approval.finding_id} was cancelled") from None

    def note_settled_step(self, finding_id: str, step: str) -> None:
        """A step of settling an approval is done (not repeated by the next sweep)."""
        self._request(
            f"recording on the approval of {finding_id}",
            "update_item",
            Key=_dynamo({"pk": approval_key(finding_id)}),
            UpdateExpression="ADD settled_steps :step",
            ExpressionAttributeValues=_dynamo({":step": {step}}),
        )

    def void_approval(self, approval: ApprovalRecord, reason: str) -> None:
        """Keep a decision the function will never act on (no finding awaited it, a state it does not know)."""
        self._void(approval, reason)

    def _void(self, approval: ApprovalRecord, reason: str) -> None:
        with contextlib.suppress(_ConditionFailed):
            self._request(
                f"voiding the approval of {approval.finding_id}",
                "update_item",
                Key=_dynamo({"pk": approval_key(approval.finding_id)}),
                UpdateExpression="SET #state = :void, void_reason = :reason REMOVE unfinished",
                ConditionExpression="#state = :state",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues=_dynamo({":void": VOID, ":reason": reason, ":state": approval.state}),
            )

    # -- the circuit breaker ------------------------------------------------------------------------

    def take_isolation_slot(self, account_id: str, finding_id: str, *, now: float, limit: int) -> IsolationSlot:
        """Count this finding's isolation in the account's hour, unless the hour is full.

        One conditional write per finding: the item holds the set of finding ids that isolated in
        the account this hour, so concurrent invocations can never together pass the limit, and a
        retry of a finding already counted is granted again without counting twice.
        """
        window = breaker_window(now)
        try:
            response = self._request(
                f"counting the isolation of {finding_id}",
                "update_item",
                **_count_request(account_id, finding_id, now=now, limit=limit),
                ReturnValues="ALL_NEW",
            )
        except _ConditionFailed as failed:
            held = tuple(sorted(_plain(failed.item or {}).get("findings", ())))
            return IsolationSlot(granted=False, window=window, used=len(held) or limit, limit=limit, holders=held)
        used = len(_plain(response.get("Attributes", {})).get("findings", ()))
        return IsolationSlot(granted=True, window=window, used=used, limit=limit)

    def take_group_slots(self, account_id: str, members: Iterable[str], *, now: float, limit: int) -> IsolationSlot:
        """Count every member of a group's isolation in the account's hour, all or none: granted only when the hour
        has a place for each (a retry of a group counted before is granted again without counting twice)."""
        ids = sorted(set(members))
        window = breaker_window(now)
        if not ids:
            return IsolationSlot(granted=True, window=window, used=None, limit=limit)
        if len(ids) > limit:
            return IsolationSlot(granted=False, window=window, used=None, limit=limit)
        request = _count_request(account_id, ids[0], now=now, limit=limit - len(ids) + 1)
        request["ExpressionAttributeValues"].update(_dynamo({":ids": set(ids)}))
        try:
            answer = self._request(
                f"counting the isolation of {len(ids)} instances", "update_item", **request, ReturnValues="ALL_NEW"
            )
        except _ConditionFailed as failed:
            held = tuple(sorted(_plain(failed.item or {}).get("findings", ())))
            return IsolationSlot(granted=False, window=window, used=len(held), limit=limit, holders=held)
        used = len(_plain(answer.get("Attributes", {})).get("findings", ()))
        return IsolationSlot(granted=True, window=window, used=used, limit=limit)

    def give_back_slot(self, account_id: str, finding_id: str | Iterable[str], window: str) -> None:
        """Uncount findings that took a place but isolated nothing (exempt, gone, already isolated, not GuardDuty's)."""
        ids = {finding_id} if isinstance(finding_id, str) else set(finding_id)
        # A failed condition: the hour's item is gone, so nothing is counted against it any more.
        with contextlib.suppress(_ConditionFailed):
            self._request(
                f"uncounting {', '.join(sorted(ids))}",
                "update_item",
                Key=_dynamo({"pk": breaker_key(account_id, window)}),
                UpdateExpression="DELETE findings :ids",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues=_dynamo({":ids": ids}),
            )

    # -- requests -----------------------------------------------------------------------------------

    def _request(self, what: str, operation: str, **request: Any) -> Any:
        """One DynamoDB request on the table: a failed condition raises _ConditionFailed, anything else LedgerError."""
        try:
            return getattr(self._dynamodb, operation)(TableName=self._table, **request)
        except ClientError as error:
            if error_code(error) == _CONDITION_FAILED:
                old = error.response.get("Item")
                raise _ConditionFailed(old if isinstance(old, Mapping) else None) from None
            raise LedgerError(f"{what} failed: {error_code(error)}") from error

    def _transact(self, what: str, parts: list[dict[str, Any]]) -> None:
        try:
            self._dynamodb.transact_write_items(TransactItems=parts)
        except ClientError as error:
            if error_code(error) == "TransactionCanceledException":
                raise _Cancelled(list(error.response.get("CancellationReasons") or [])) from None
            raise LedgerError(f"{what} failed: {error_code(error)}") from error

    def _record_from(self, item: Mapping[str, Any] | None, finding_id: str) -> FindingRecord:
        found = item or self._get(finding_id)
        if found is None:
            raise LedgerError(f"finding {finding_id} was claimed, then vanished")
        return FindingRecord.from_item(found)

    def _get(self, pk: str) -> dict[str, Any] | None:
        response = self._request(f"reading {pk}", "get_item", Key=_dynamo({"pk": pk}), ConsistentRead=True)
        item: dict[str, Any] | None = response.get("Item")
        return item

    def _incident_from(self, item: Mapping[str, Any] | None, instance_id: str) -> Incident:
        found = item or self._get(incident_key(instance_id))
        if found is None:
            raise LedgerError(f"the incident of {instance_id} was claimed, then vanished")
        return Incident.from_item(found)

    def _update(
        self,
        pk: str,
        values: Mapping[str, Any],
        steps: Mapping[str, StepState] = {},
        *,
        removing: Iterable[str] = (),
        missing_ok: bool = False,
    ) -> None:
        names: dict[str, str] = {}
        placeholders: dict[str, Any] = {}
        clauses = []
        dropped = [f"#r{index}" for index, _ in enumerate(removing)]
        names.update({f"#r{index}": name for index, name in enumerate(removing)})
        for index, (name, value) in enumerate(values.items()):
            names[f"#v{index}"] = name
            placeholders[f":v{index}"] = value
            clauses.append(f"#v{index} = :v{index}")
        if steps:
            names["#steps"] = "steps"
        for index, (name, state) in enumerate(steps.items()):
            names[f"#s{index}"] = name
            placeholders[f":s{index}"] = state.to_record()
            clauses.append(f"#steps.#s{index} = :s{index}")
        if not clauses and not dropped:
            return
        expression = " ".join(
            part
            for part in (
                "SET " + ", ".join(clauses) if clauses else "",
                "REMOVE " + ", ".join(dropped) if dropped else "",
            )
            if part
        )
        try:
            self._request(
                f"recording on {pk}",
                "update_item",
                Key=_dynamo({"pk": pk}),
                UpdateExpression=expression,
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames=names,
                **({"ExpressionAttributeValues": _dynamo(placeholders)} if placeholders else {}),
            )
        except _ConditionFailed:
            if not missing_ok:
                raise LedgerError(f"recording on {pk} failed: the item does not exist") from None


def _not_waiting(finding_id: str, item: Mapping[str, Any] | None) -> str:
    """Why a decision on the finding's approval is refused, from the item as it was."""
    if not item:
        return f"no finding {finding_id} awaits approval (unknown to the ledger, or its rule did not ask for one)"
    found = ApprovalRecord.from_item(item)
    decided = f" by {found.decided_by} at {found.decided_at}" if found.decided_by else ""
    return {
        APPROVED: f"finding {finding_id} was approved already{decided}: an approval is honoured once",
        HONOURED: f"finding {finding_id} was approved{decided} and that approval was acted on: nothing more to approve",
        REJECTED: f"finding {finding_id} was rejected{decided}: it no longer awaits a decision",
        TIMED_OUT: f"finding {finding_id} timed out waiting for approval: its rule's on_timeout was applied",
    }.get(found.state, f"finding {finding_id} does not await approval (its approval is {found.state or 'unknown'})")


def exemption_of(data: Mapping[str, Any]) -> Exemption:
    """An exemption item, as plain values, as the policy reads it."""
    return Exemption(
        instance_id=str(data["instance_id"]),
        reason=str(data.get("reason", "")),
        until=str(data.get("until", "")),
        by=str(data.get("by", "")),
    )


def _recorded_groups(data: Mapping[str, Any]) -> RecordedGroups:
    return RecordedGroups(
        untracking_id=str(data["untracking_id"]),
        isolation_id=str(data["isolation_id"]),
        every_id=frozenset(str(group) for group in data.get("every_id", ())),
    )


def _count_request(account_id: str, finding_id: str, *, now: float, limit: int) -> dict[str, Any]:
    """The breaker's conditional count of one finding in its account's hour (an UpdateItem's arguments)."""
    return {
        "Key": _dynamo({"pk": breaker_key(account_id, breaker_window(now))}),
        "UpdateExpression": "ADD findings :ids SET kind = :kind, account_id = :account, expires_at = :expires",
        "ConditionExpression": ("attribute_not_exists(findings) OR contains(findings, :id) OR size(findings) < :limit"),
        "ExpressionAttributeValues": _dynamo(
            {
                ":ids": {finding_id},
                ":id": finding_id,
                ":limit": limit,
                ":kind": "breaker",
                ":account": account_id,
                # Needed only while its hour lasts; a day keeps it to look at afterwards.
                ":expires": (int(now) // 3600 + 1) * 3600 + 86400,
            }
        ),
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


def _epoch(seconds: float) -> Decimal:
    """A time in epoch seconds as the ledger stores it: a number, to the millisecond."""
    return Decimal(str(round(seconds, 3)))


def _finding_item(
    finding: Finding, *, now: float, decision: str, original_groups: Mapping[str, Iterable[str]]
) -> dict[str, Any]:
    """A new finding's item, as its claim writes it."""
    return {
        "pk": finding.finding_id,
        "kind": "finding",
        "instance_id": finding.instance_id,
        "account_id": finding.account_id,
        "region": finding.region,
        "finding_type": finding.finding_type,
        "title": finding.title[:512],
        "severity": Decimal(str(finding.severity)),
        "severity_label": finding.severity_label,
        "resource_role": finding.resource_role or "",
        "is_sample": finding.is_sample,
        **(
            {"access_key_id": finding.credentials.access_key_id, "role_name": finding.credentials.role_name}
            if finding.credentials
            else {}
        ),
        "service_count": finding.count,
        "updated_at": finding.updated_at,
        "first_seen": utc_timestamp(now),
        "last_seen": utc_timestamp(now),
        "status": OPEN,
        "decision": decision,
        "phase": Phase.CLAIMED.label,
        "unfinished": UNFINISHED,
        "steps": {},
        "original_groups": {eni: list(groups) for eni, groups in original_groups.items()},
    }


def _dynamo(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _serializer.serialize(value) for key, value in values.items()}


def _plain(item: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _deserializer.deserialize(value) for key, value in item.items()}
