"""Containment a person starts (`guardduty-responder isolate`): the request, and the finding and decision it stands
for in the flow. Pure code.

There is no GuardDuty finding to confirm and no rule to apply: the operator is the source and the approver.
The flow otherwise runs as for a finding (claim, lock, containment, evidence, record, Jira, SNS, release),
and the isolation is counted by the circuit breaker without ever being refused by it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import utc_timestamp
from .finding import INSTANCE, Finding
from .policy import Action, Decision, DecisionCode

# Manual incidents' ids start so: never a GuardDuty finding id (32 hex digits), never sent to GetFindings.
MANUAL_PREFIX = "manual-"
MANUAL_TYPE = "Manual:EC2/IsolatedByOperator"
MANUAL_SOURCE = "guardduty-responder.manual"
# Shown as GuardDuty's HIGH: a person judged the instance must be cut off now.
MANUAL_SEVERITY = 8.0


@dataclass(frozen=True)
class ManualRequest:
    instance_id: str
    account_id: str
    region: str
    reason: str
    # The name given (--by), and the caller's ARN as STS named it.
    by: str
    caller_arn: str

    def to_record(self) -> dict[str, str]:
        return dict(vars(self))

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> ManualRequest:
        return cls(**{name: str(data.get(name, "")) for name in cls.__dataclass_fields__})


def is_manual(finding_id: str) -> bool:
    return finding_id.startswith(MANUAL_PREFIX)


def new_manual_id() -> str:
    return MANUAL_PREFIX + uuid.uuid4().hex


def manual_finding(request: ManualRequest, finding_id: str, now: float) -> Finding:
    """The finding the flow carries for a manual isolation: the operator's words where GuardDuty's would be."""
    said = f"isolated by hand by {request.by}: {request.reason}"
    return Finding(
        finding_id=finding_id,
        finding_arn="",
        finding_type=MANUAL_TYPE,
        title=said[:512],
        description=f"{said} (caller {request.caller_arn}); no GuardDuty finding"[:2048],
        severity=MANUAL_SEVERITY,
        account_id=request.account_id,
        region=request.region,
        instance_id=request.instance_id,
        resource_role=None,
        is_sample=False,
        count=1,
        created_at=utc_timestamp(now),
        updated_at=utc_timestamp(now),
        event_id=None,
        interfaces=(),
        tags=(),
        resource_type=INSTANCE,
        event_source=MANUAL_SOURCE,
        event_region=request.region,
    )


def manual_decision(request: ManualRequest, *, dry_run: bool) -> Decision:
    """Isolate, as the operator asked; a dry-run deployment only says it would."""
    who = f"{request.by} ({request.caller_arn})" if request.caller_arn != request.by else request.by
    because = f"isolation asked by hand by {who}: {request.reason}; no GuardDuty finding, no response rule"
    if dry_run:
        return Decision(
            Action.HOLD, DecisionCode.DRY_RUN, f"{because}; dry-run mode: the instance would have been isolated"
        )
    return Decision(Action.ISOLATE, DecisionCode.MANUAL, f"{because}: isolated")
