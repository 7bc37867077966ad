"""What to do about a finding. Pure code: the facts come in, a decision with its reason goes out.

The decision, and the outcome that follows from it and from containment, are the one vocabulary the
record, the Jira issue, the SNS message and the handler's summary all speak.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from .finding import Finding


class Action(enum.StrEnum):
    ISOLATE = "isolate"
    # Would have been isolated, but a safety control held it back: a person must look (Jira issue).
    HOLD = "hold"
    # Noise for the on-call person: recorded and notified, no Jira issue.
    RECORD = "record"


class DecisionCode(enum.StrEnum):
    """Which rule decided: recorded, shown to people, and matched on by the summary's readers."""

    SAMPLE = "sample"
    CREDENTIALS_IGNORED = "credentials-ignored"
    CREDENTIALS_REPORT = "credentials-report"
    TARGET_ROLE = "target-role"
    EXEMPT = "exempt"
    DRY_RUN = "dry-run"
    CIRCUIT_BREAKER = "circuit-breaker"
    ISOLATE_CREDENTIALS = "isolate-credentials"
    ISOLATE = "isolate"


@dataclass(frozen=True)
class Decision:
    action: Action
    code: DecisionCode
    reason: str

    @property
    def isolates(self) -> bool:
        return self.action is Action.ISOLATE

    @property
    def opens_ticket(self) -> bool:
        return self.action is not Action.RECORD


class Outcome(enum.Enum):
    """What became of the instance, in the words each channel uses: (SNS headline, Jira summary verb)."""

    ISOLATED = ("ISOLATED", "Isolated")
    NOT_CONTAINED = ("NOT CONTAINED, LOOK NOW", "NOT CONTAINED")
    BREAKER_OPEN = ("CIRCUIT BREAKER OPEN, NOT ISOLATED, LOOK NOW", "CIRCUIT BREAKER OPEN, not isolated")
    HELD = ("REVIEW", "Review")
    RECORDED = ("FYI", "Recorded")

    @property
    def headline(self) -> str:
        return self.value[0]

    @property
    def verb(self) -> str:
        return self.value[1]


def outcome_of(decision: Decision, *, contained: bool) -> Outcome:
    """The outcome of a decision once containment has run (or was never to run)."""
    if decision.isolates:
        return Outcome.ISOLATED if contained else Outcome.NOT_CONTAINED
    if decision.code is DecisionCode.CIRCUIT_BREAKER:
        return Outcome.BREAKER_OPEN
    return Outcome.HELD if decision.action is Action.HOLD else Outcome.RECORDED


def outcome_line(decision: Decision, outcome: Outcome) -> str:
    """The outcome in a few words, for the message and the summary."""
    if outcome is Outcome.ISOLATED:
        return "isolated"
    if outcome is Outcome.RECORDED:
        return "recorded only"
    return "not isolated" if decision.isolates else f"not isolated ({decision.code})"


def decide(
    finding: Finding,
    *,
    dry_run: bool,
    exempt_tag_key: str,
    instance_tags: Mapping[str, str] | None = None,
    breaker_open: bool = False,
    isolation_limit: int | None = None,
    credential_findings: str = "report",
) -> Decision:
    """Decide from the finding and, once known, the instance's live tags (they win over the finding's)."""
    if finding.is_sample:
        return Decision(Action.RECORD, DecisionCode.SAMPLE, "GuardDuty sample finding: nothing is changed")
    credentials = finding.credentials
    if credentials is not None:
        # An API-call finding names the key as its target: the role rule below is for network findings.
        used = f"the credentials of instance role {credentials.role_name} were used away from {finding.instance_id}"
        if credential_findings == "ignore":
            return Decision(
                Action.RECORD, DecisionCode.CREDENTIALS_IGNORED, f"{used}; credential findings are only recorded"
            )
        if credential_findings != "contain":
            return Decision(
                Action.HOLD,
                DecisionCode.CREDENTIALS_REPORT,
                f"{used}; automatic containment of credential findings is off: look now",
            )
    elif finding.resource_role == "TARGET":
        return Decision(
            Action.RECORD,
            DecisionCode.TARGET_ROLE,
            "the instance is the target of someone else's activity, not the actor: nothing is changed",
        )
    held = _held_back(finding, dry_run, exempt_tag_key, instance_tags, breaker_open, isolation_limit)
    if held is not None:
        return held
    if credentials is not None:
        return Decision(
            Action.ISOLATE,
            DecisionCode.ISOLATE_CREDENTIALS,
            f"{used}: isolate the instance, remove its instance profile and revoke the role's older sessions "
            "(the actions say what was done)",
        )
    return Decision(Action.ISOLATE, DecisionCode.ISOLATE, "the instance is the actor of the finding: isolated")


def _held_back(
    finding: Finding,
    dry_run: bool,
    exempt_tag_key: str,
    instance_tags: Mapping[str, str] | None,
    breaker_open: bool,
    isolation_limit: int | None,
) -> Decision | None:
    """The safety control that holds back an isolating decision, if any (exemption, dry run, breaker)."""
    tags = instance_tags if instance_tags is not None else dict(finding.tags)
    if tags.get(exempt_tag_key, "").strip().lower() == "true":
        return Decision(
            Action.HOLD, DecisionCode.EXEMPT, f"the instance carries the exemption tag {exempt_tag_key}=true"
        )
    if dry_run:
        return Decision(Action.HOLD, DecisionCode.DRY_RUN, "dry-run mode: the instance would have been isolated")
    if breaker_open:
        limit = f"{isolation_limit} " if isolation_limit is not None else ""
        return Decision(
            Action.HOLD,
            DecisionCode.CIRCUIT_BREAKER,
            f"circuit breaker open: the limit of {limit}isolations per hour in account {finding.account_id} is "
            "reached, so nothing more is isolated there this hour: look now",
        )
    return None
