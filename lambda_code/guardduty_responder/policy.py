"""What to do about a finding. Pure code: the facts come in, a decision with its reason goes out.

Samples first: a GuardDuty sample is recorded and announced, whatever else it says. Then the
response rules (first match wins) on what the instance did, judged from GuardDuty's action, never
from `resourceRole`; then the safety controls (exemption, dry run, circuit breaker), which turn an
isolation into a held one. The decision, and the outcome that follows from it and from containment,
are the one vocabulary the record, the Jira issue, the SNS message and the handler's summary speak.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .finding import ATTACK_SEQUENCE, Finding
from .finding_types import judge
from .rules import ResponseRule, RuleAction, first_match


class Action(enum.StrEnum):
    ISOLATE = "isolate"
    # Would have been isolated, but a safety control held it back: a person must look (Jira issue).
    HOLD = "hold"
    # A rule says approve: nothing changed until a person approves (Jira issue and message say how).
    APPROVE = "approve"
    # A rule says report: Jira issue and message, nothing changed.
    REPORT = "report"
    # Recorded and announced, no Jira issue: samples, findings GuardDuty does not confirm.
    RECORD = "record"
    # A rule says ignore: recorded only, no message.
    IGNORE = "ignore"


class DecisionCode(enum.StrEnum):
    """Which rule or control decided: recorded, shown to people, and matched on by the summary's readers."""

    SAMPLE = "sample"
    UNCONFIRMED = "unconfirmed"
    # Outside what the deployment's EventBridge rule passes (replayed, or archived since): recorded only.
    OUT_OF_SCOPE = "out-of-scope"
    EXEMPT = "exempt"
    DRY_RUN = "dry-run"
    CIRCUIT_BREAKER = "circuit-breaker"
    ISOLATE = "isolate"
    # A rule asks a person first: the finding waits for an approval or a rejection.
    APPROVAL_NEEDED = "approval-needed"
    # A person isolated the instance by hand (`guardduty-responder isolate`): no rule, no finding to confirm.
    MANUAL = "manual"
    REPORT = "report"
    IGNORE = "ignore"


@dataclass(frozen=True)
class Approval:
    """A person's (or the timeout's) approval of an isolation that a rule held for one; honoured once."""

    # Who approved: the name given (`--by`, the Jira user), or the rule's timeout.
    by: str
    # How: "command" (guardduty-responder approve), "jira" (the issue moved to the approval status), "timeout".
    how: str
    at: str
    # The caller's ARN as STS named it when approved by command ("" otherwise).
    caller_arn: str = ""
    # For a group finding: the instances the approval was asked for (and only those are isolated).
    instances: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.how == "timeout":
            return f"no decision before the approval timeout ({self.by}) at {self.at}: isolated as the rule says"
        via = {"command": "guardduty-responder approve", "jira": "the Jira issue's status"}.get(self.how, self.how)
        caller = f" ({self.caller_arn})" if self.caller_arn and self.caller_arn != self.by else ""
        return f"approved by {self.by}{caller} through {via} at {self.at}"


@dataclass(frozen=True)
class Decision:
    action: Action
    code: DecisionCode
    reason: str
    # The response rule that matched, by name; None for samples, unconfirmed findings, no match.
    rule: str | None = None

    @property
    def isolates(self) -> bool:
        return self.action is Action.ISOLATE

    @property
    def opens_ticket(self) -> bool:
        return self.action in (Action.ISOLATE, Action.HOLD, Action.APPROVE, Action.REPORT)

    @property
    def awaits_approval(self) -> bool:
        return self.action is Action.APPROVE

    @property
    def notifies(self) -> bool:
        return self.action is not Action.IGNORE


class Outcome(enum.Enum):
    """What became of the instance, in the words each channel uses: (SNS headline, Jira summary verb)."""

    ISOLATED = ("ISOLATED", "Isolated")
    NOT_CONTAINED = ("NOT CONTAINED, LOOK NOW", "NOT CONTAINED")
    BREAKER_OPEN = ("CIRCUIT BREAKER OPEN, NOT ISOLATED, LOOK NOW", "CIRCUIT BREAKER OPEN, not isolated")
    HELD = ("REVIEW", "Review")
    APPROVAL_NEEDED = ("APPROVAL NEEDED", "Approval needed")
    REPORTED = ("REPORT", "Report")
    UNCONFIRMED = ("UNCONFIRMED BY GUARDDUTY, NOTHING DONE, LOOK NOW", "Unconfirmed")
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
    if decision.code is DecisionCode.UNCONFIRMED:
        return Outcome.UNCONFIRMED
    if decision.action is Action.HOLD:
        return Outcome.HELD
    if decision.action is Action.APPROVE:
        return Outcome.APPROVAL_NEEDED
    return Outcome.REPORTED if decision.action is Action.REPORT else Outcome.RECORDED


def outcome_line(decision: Decision, outcome: Outcome) -> str:
    """The outcome in a few words, for the message and the summary."""
    if outcome is Outcome.ISOLATED:
        return "isolated"
    if decision.action in (Action.RECORD, Action.IGNORE, Action.REPORT):
        return "nothing changed"
    if decision.action is Action.APPROVE:
        return "nothing changed: awaiting approval"
    return "not isolated" if decision.isolates else f"not isolated ({decision.code})"


@dataclass(frozen=True)
class Exemption:
    """An exemption a person wrote in the responder's ledger (`guardduty-responder exempt`), current until `until`.

    Unlike the exemption tag, the instance's own role cannot write it: only the responder's and
    its operators' roles write the ledger.
    """

    instance_id: str
    reason: str
    # ISO-8601, UTC.
    until: str
    # Who wrote it, as STS named the caller.
    by: str

    def describe(self) -> str:
        return f"the instance is exempt in the responder's ledger until {self.until}, by {self.by}: {self.reason}"


@dataclass(frozen=True)
class Scope:
    """What the deployment's EventBridge rule passes, applied again to GuardDuty's own copy."""

    min_severity: float = 0.0
    # Finding types as prefixes; empty: every type. Credential findings keep their own type.
    type_prefixes: tuple[str, ...] = ()

    def excludes(self, finding: Finding) -> str | None:
        """Why the rule would not have passed this finding, if it would not have."""
        if finding.archived:
            return "GuardDuty has archived the finding (a suppression rule)"
        if finding.severity < self.min_severity:
            return f"severity {finding.severity:g} is below the deployment's minimum {self.min_severity:g}"
        # Credential and group findings pass the deployment's rule whatever its type prefixes say.
        apart = finding.credentials is not None or finding.resource_type == ATTACK_SEQUENCE
        if self.type_prefixes and not apart and not finding.finding_type.startswith(self.type_prefixes):
            return f"type {finding.finding_type} is not among the deployment's finding types"
        return None


def unconfirmed(why: str) -> Decision:
    """A finding GuardDuty does not vouch for: recorded and announced, nothing changed."""
    return Decision(Action.RECORD, DecisionCode.UNCONFIRMED, f"not confirmed by GuardDuty: {why}; nothing was changed")


def decide(
    finding: Finding,
    *,
    rules: Sequence[ResponseRule],
    dry_run: bool,
    exempt_tag_key: str | None,
    instance_tags: Mapping[str, str] | None = None,
    breaker_open: bool = False,
    isolation_limit: int | None = None,
    scope: Scope = Scope(),
    exemption: Exemption | None = None,
    approval: Approval | None = None,
) -> Decision:
    """Decide from the finding and, once known, the instance's live tags (they win over the finding's).

    `exempt_tag_key` empty: the exemption tag is off; `exemption`: a current exemption in the ledger;
    `approval`: the isolation an `approve` rule waited for was approved (then it isolates, held back by
    the safety controls as any isolation).
    """
    if finding.is_sample:
        return Decision(Action.RECORD, DecisionCode.SAMPLE, "GuardDuty sample finding: nothing is changed")
    excluded = scope.excludes(finding)
    if excluded is not None:
        return Decision(Action.IGNORE, DecisionCode.OUT_OF_SCOPE, f"{excluded}: recorded only, nothing changed")
    judgement = judge(finding)
    tags = instance_tags if instance_tags is not None else dict(finding.tags)
    rule = first_match(rules, finding, judgement.involvement, tags)
    what = f"the instance is {judgement.involvement}: {judgement.what}"
    if rule is None:
        return Decision(Action.REPORT, DecisionCode.REPORT, f"no response rule matches ({what}): reported")
    because = f"{rule.describe()} matched; {what}"
    if rule.action is RuleAction.IGNORE:
        return Decision(Action.IGNORE, DecisionCode.IGNORE, f"{because}: ignored, recorded only", rule.name)
    if rule.action is RuleAction.REPORT:
        return Decision(Action.REPORT, DecisionCode.REPORT, f"{because}: reported, nothing changed", rule.name)
    if rule.action is RuleAction.APPROVE and approval is None:
        # Nothing would be isolated: only the controls that say "never this instance, or nothing at all" apply.
        held = _held_back(finding, tags, dry_run, exempt_tag_key, False, isolation_limit, exemption)
        if held is not None:
            return Decision(Action.HOLD, held[0], f"{because}; {held[1]}", rule.name)
        return Decision(
            Action.APPROVE, DecisionCode.APPROVAL_NEEDED, f"{because}: awaiting approval, nothing changed", rule.name
        )
    if rule.action is RuleAction.APPROVE and approval is not None:
        because = f"{because}; {approval.describe()}"
    held = _held_back(finding, tags, dry_run, exempt_tag_key, breaker_open, isolation_limit, exemption)
    if held is not None:
        return Decision(Action.HOLD, held[0], f"{because}; {held[1]}", rule.name)
    return Decision(Action.ISOLATE, DecisionCode.ISOLATE, f"{because}: isolated", rule.name)


def safety_hold(
    finding: Finding,
    tags: Mapping[str, str],
    *,
    dry_run: bool,
    exempt_tag_key: str | None,
    exemption: Exemption | None,
) -> tuple[DecisionCode, str] | None:
    """The control that spares one instance an isolation decided elsewhere (its group's): exemptions, dry run."""
    return _held_back(finding, tags, dry_run, exempt_tag_key, False, None, exemption)


def _held_back(
    finding: Finding,
    tags: Mapping[str, str],
    dry_run: bool,
    exempt_tag_key: str | None,
    breaker_open: bool,
    isolation_limit: int | None,
    exemption: Exemption | None,
) -> tuple[DecisionCode, str] | None:
    """The safety control that holds back an isolating decision, if any (exemption, dry run, breaker)."""
    if exemption is not None:
        return DecisionCode.EXEMPT, f"but {exemption.describe()}"
    if exempt_tag_key and tags.get(exempt_tag_key, "").strip().lower() == "true":
        return DecisionCode.EXEMPT, f"but the instance carries the exemption tag {exempt_tag_key}=true"
    if dry_run:
        return DecisionCode.DRY_RUN, "dry-run mode: the instance would have been isolated"
    if breaker_open:
        limit = f"{isolation_limit} " if isolation_limit is not None else ""
        return (
            DecisionCode.CIRCUIT_BREAKER,
            f"circuit breaker open: the limit of {limit}isolations per hour in account {finding.account_id} is "
            "reached, so nothing more is isolated there this hour: look now",
        )
    return None
