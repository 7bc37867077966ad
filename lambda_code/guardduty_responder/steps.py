"""The vocabulary of the flow: its phases, its steps, and the result of one step as recorded.

A finding's item in the ledger names the last phase it completed, so that a later invocation (a
retry, a delivery after a lease ran out) resumes at the next one. Within a phase each step is
recorded on its own, so a retry redoes only the steps that did not succeed.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from . import utc_timestamp
from .aws_errors import describe_error

# Errors a non-containment step may fail with without stopping the others: AWS refusing or being
# unreachable, and the adapters' own domain errors. Programming errors are not in this list.
STEP_ERRORS: tuple[type[BaseException], ...] = (ClientError, BotoCoreError, RuntimeError, OSError)


class Phase(enum.IntEnum):
    """The phases of the flow that leave something in the ledger, in their order."""

    CLAIMED = 1
    # The instance's fate is settled: isolated, or decided not to be (and why).
    CONTAINED = 2
    # Containment checked, the instance's identity taken away, and evidence kept.
    PRESERVED = 3
    TICKETED = 4
    NOTIFIED = 5

    @classmethod
    def named(cls, name: object) -> Phase:
        """The phase a record names (`"contained"`); an unknown or missing name is the first phase."""
        return cls.__members__.get(str(name).upper(), cls.CLAIMED)

    @property
    def label(self) -> str:
        return self.name.lower()


class Step(enum.StrEnum):
    """The steps of the flow, in the order they run and are shown."""

    CONTAIN = "contain"
    # Right after containment: one read confirms it; the identity taken away; tracked paths shortened.
    VERIFY = "verify"
    INSTANCE_PROFILE = "instance_profile"
    REVOKE_SESSIONS = "revoke_sessions"
    CONNECTION_TRACKING = "connection_tracking"
    METADATA = "metadata"
    # The incident's first finding preserved the evidence: a later one records this, skipped.
    EVIDENCE = "evidence"
    SNAPSHOTS = "snapshots"
    # The snapshots locked (governance mode) as soon as they exist: with SNAPSHOT_LOCK_DAYS only.
    LOCK_SNAPSHOTS = "lock_snapshots"
    # The incident's evidence and its manifest written to the evidence bucket: with EVIDENCE_BUCKET only.
    EVIDENCE_BUCKET = "evidence_bucket"
    # A GuardDuty Malware Protection scan of the instance started: with MALWARE_SCAN only.
    MALWARE_SCAN = "malware_scan"
    PROTECT = "protect"
    AUTOSCALING = "autoscaling"
    LOAD_BALANCERS = "load_balancers"
    TAG_INSTANCE = "tag_instance"
    TICKET = "ticket"
    NOTIFY = "notify"
    RELEASE_COMMENT = "release_comment"


def step_rank(name: str) -> int:
    """Where a recorded step's name stands in the flow's order (an unknown name goes last)."""
    names = [str(step) for step in Step]
    return names.index(name) if name in names else len(names)


EVIDENCE_STEPS = (Step.SNAPSHOTS, Step.PROTECT, Step.AUTOSCALING, Step.LOAD_BALANCERS, Step.TAG_INSTANCE)
IDENTITY_STEPS = (Step.INSTANCE_PROFILE, Step.REVOKE_SESSIONS)
CHECK_STEPS = (Step.VERIFY, Step.CONNECTION_TRACKING, Step.METADATA)


class StepStatus(enum.StrEnum):
    DONE = "done"
    FAILED = "failed"
    # The step chose not to act, for a reason a person must read; not retried.
    SKIPPED = "skipped"
    # Not attempted for lack of time: not done, so the retry does it.
    DEFERRED = "deferred"

    @property
    def settled(self) -> bool:
        """Nothing is left to do for a step in this state."""
        return self in (StepStatus.DONE, StepStatus.SKIPPED)


@dataclass(frozen=True)
class StepState:
    """A step as the ledger holds it."""

    status: StepStatus
    at: str
    detail: str = ""
    error: str = ""

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> StepState:
        return cls(
            status=StepStatus(data.get("status", StepStatus.FAILED)),
            at=str(data.get("at", "")),
            detail=str(data.get("detail", "")),
            error=str(data.get("error", "")),
        )

    def to_record(self) -> dict[str, str]:
        return {key: str(value) for key, value in vars(self).items() if value != ""}


@dataclass(frozen=True)
class StepResult:
    """A step as this invocation carried it out."""

    step: Step
    status: StepStatus
    detail: str = ""
    error: str = ""
    values: Mapping[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    # When the step ended: the time the ledger and the evidence's timeline give it.
    at: str = field(default_factory=utc_timestamp)

    @property
    def ok(self) -> bool:
        return self.status.settled

    def state(self) -> StepState:
        return StepState(status=self.status, at=self.at, detail=self.detail[:1000], error=self.error[:1000])

    @classmethod
    def done(
        cls, step: Step, detail: str = "", values: Mapping[str, Any] | None = None, seconds: float = 0.0
    ) -> StepResult:
        return cls(step, StepStatus.DONE, detail=detail, values=values or {}, seconds=seconds)

    @classmethod
    def skipped(cls, step: Step, detail: str) -> StepResult:
        return cls(step, StepStatus.SKIPPED, detail=detail)

    @classmethod
    def failed(cls, step: Step, error: str, seconds: float = 0.0) -> StepResult:
        return cls(step, StepStatus.FAILED, error=error, seconds=seconds)

    @classmethod
    def deferred(cls, step: Step, error: str) -> StepResult:
        return cls(step, StepStatus.DEFERRED, error=error)


class StepSkipped(Exception):
    """A step chose not to act, for a reason a person must read; recorded as skipped, not retried."""


def run_step(step: Step, action: Callable[[], tuple[str, dict[str, Any]]]) -> StepResult:
    """Run one step; an expected failure becomes a failed result instead of stopping the flow."""
    started = time.monotonic()
    try:
        detail, values = action()
    except StepSkipped as reason:
        return StepResult(step, StepStatus.SKIPPED, detail=f"not done: {reason}", seconds=time.monotonic() - started)
    except STEP_ERRORS as error:
        return StepResult.failed(step, describe_error(error), seconds=time.monotonic() - started)
    return StepResult.done(step, detail, values, seconds=time.monotonic() - started)
