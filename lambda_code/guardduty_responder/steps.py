"""The outcome of one step of the flow, as recorded on the finding's item."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from . import utc_timestamp
from .ledger import StepState

# Errors a non-containment step may fail with without stopping the others: AWS refusing or being
# unreachable, and the adapters' own domain errors. Programming errors are not in this list.
STEP_ERRORS: tuple[type[BaseException], ...] = (ClientError, BotoCoreError, RuntimeError, OSError)


@dataclass(frozen=True)
class StepResult:
    name: str
    ok: bool
    detail: str = ""
    error: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    skipped: bool = False
    # Not attempted for lack of time: not done, so the retry does it.
    deferred: bool = False

    def state(self) -> StepState:
        return StepState(
            status="skipped" if self.skipped else "done" if self.ok else "deferred" if self.deferred else "failed",
            at=utc_timestamp(),
            detail=self.detail[:1000],
            error=self.error[:1000],
        )


class StepSkipped(Exception):
    """A step chose not to act, for a reason a person must read; recorded as skipped, not retried."""


def run_step(name: str, action: Callable[[], tuple[str, dict[str, Any]]]) -> StepResult:
    """Run one step; an expected failure becomes a failed result instead of stopping the flow."""
    started = time.monotonic()
    try:
        detail, values = action()
    except StepSkipped as reason:
        return StepResult(name, ok=True, detail=f"not done: {reason}", skipped=True, seconds=time.monotonic() - started)
    except STEP_ERRORS as error:
        return StepResult(name, ok=False, error=describe_error(error), seconds=time.monotonic() - started)
    return StepResult(name, ok=True, detail=detail, values=values, seconds=time.monotonic() - started)


def describe_error(error: BaseException) -> str:
    """One line for people: AWS's error code and message, or the exception's type and text."""
    if isinstance(error, ClientError):
        info = error.response.get("Error", {})
        return f"{info.get('Code', 'ClientError')}: {info.get('Message', '')}".strip()
    return f"{type(error).__name__}: {error}"
