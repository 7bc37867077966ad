"""The response rules: an ordered list, first match wins. Pure code.

A rule matches on the finding type's prefix, a minimum severity, whether the instance is implicated
or only attacked, the resource type (an instance, its credentials, a container or cluster on it),
and optionally the instance's tags; it says what to do: `isolate`, `approve` (wait for a person: record,
Jira issue and message saying what isolation would do; nothing changed until someone approves),
`report` (record, Jira issue, message) or `ignore` (record only). An `approve` rule may name a
timeout in minutes and what the sweep does when it passes (`isolate` or `report`). They reach the
function as JSON in `RESPONSE_RULES` (Terraform's `response_rules`), and a bad rule is refused with
its position and name.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from .finding import ACCESS_KEY, ATTACK_SEQUENCE, CONTAINER_HOSTS, CREDENTIAL_EXFILTRATION, INSTANCE, Finding
from .finding_types import Involvement

RESOURCE_TYPES = (INSTANCE, ACCESS_KEY, *CONTAINER_HOSTS, ATTACK_SEQUENCE)
MAX_RULES = 50
_KEYS = {
    "name",
    "action",
    "finding_type_prefix",
    "min_severity",
    "involvement",
    "resource_types",
    "instance_tags",
    "approval_timeout_minutes",
    "on_timeout",
}
# An approval waits a week at most: a finding nobody decided on in a week needs a person, not a timer.
MAX_APPROVAL_TIMEOUT_MINUTES = 10080
# A tag value that matches any value of the key: the tag is present.
ANY_VALUE = "*"


class RuleAction(enum.StrEnum):
    ISOLATE = "isolate"
    APPROVE = "approve"
    REPORT = "report"
    IGNORE = "ignore"


class TimeoutAction(enum.StrEnum):
    """What the sweep does with a finding still awaiting approval when its rule's timeout has passed."""

    ISOLATE = "isolate"
    REPORT = "report"


class InvolvementMatch(enum.StrEnum):
    IMPLICATED = "implicated"
    ATTACKED = "attacked"
    ANY = "any"


_Choice = TypeVar("_Choice", RuleAction, InvolvementMatch, TimeoutAction)


class RulesError(ValueError):
    """The response rules cannot be used; the message names the rule and what is wrong with it."""


@dataclass(frozen=True)
class ResponseRule:
    name: str
    action: RuleAction
    finding_type_prefix: str = ""
    min_severity: float = 0.0
    involvement: InvolvementMatch = InvolvementMatch.ANY
    resource_types: tuple[str, ...] = ()
    instance_tags: tuple[tuple[str, str], ...] = ()
    # For `approve`: minutes a finding waits before the sweep does `on_timeout` (0: it waits for a person).
    approval_timeout_minutes: int = 0
    on_timeout: TimeoutAction = TimeoutAction.REPORT

    def matches(self, finding: Finding, involvement: Involvement, tags: Mapping[str, str]) -> bool:
        return (
            finding.finding_type.startswith(self.finding_type_prefix)
            and finding.severity >= self.min_severity
            and self.involvement in (InvolvementMatch.ANY, involvement.value)
            and (not self.resource_types or finding.resource_type in self.resource_types)
            and all(key in tags and value in (ANY_VALUE, tags[key]) for key, value in self.instance_tags)
        )

    def describe(self) -> str:
        """The rule in a few words, for the reason that names it."""
        parts = [f"{self.involvement} instance" if self.involvement is not InvolvementMatch.ANY else "any finding"]
        if self.finding_type_prefix:
            parts.append(f"type {self.finding_type_prefix}*")
        if self.min_severity:
            parts.append(f"severity >= {self.min_severity:g}")
        if self.resource_types:
            parts.append("on " + "/".join(self.resource_types))
        if self.instance_tags:
            parts.append("tagged " + ", ".join(f"{key}={value}" for key, value in self.instance_tags))
        if self.approval_timeout_minutes:
            parts.append(f"{self.on_timeout} after {self.approval_timeout_minutes} min without a decision")
        return f'rule "{self.name}" ({", ".join(parts)})'


def first_match(
    rules: Sequence[ResponseRule], finding: Finding, involvement: Involvement, tags: Mapping[str, str]
) -> ResponseRule | None:
    return next((rule for rule in rules if rule.matches(finding, involvement, tags)), None)


# The severity from which an implicated instance is isolated without waiting for a person (GuardDuty's HIGH).
ISOLATE_FROM_SEVERITY = 7.0
# The severity from which an implicated instance is held for approval (GuardDuty's MEDIUM).
APPROVE_FROM_SEVERITY = 4.0


def default_rules(credential_findings: str = "report") -> tuple[ResponseRule, ...]:
    """Isolate implicated instances at high severity, ask a person at medium, report attacked ones and the rest;
    credentials and container hosts as configured."""
    credentials = {"contain": RuleAction.ISOLATE, "ignore": RuleAction.IGNORE}.get(
        credential_findings, RuleAction.REPORT
    )
    return (
        ResponseRule("instance-credentials", credentials, finding_type_prefix=CREDENTIAL_EXFILTRATION),
        ResponseRule("container-hosts", RuleAction.REPORT, resource_types=CONTAINER_HOSTS),
        # A group of instances (an attack sequence) is contained at once: a person decides first.
        ResponseRule("approve-instance-groups", RuleAction.APPROVE, resource_types=(ATTACK_SEQUENCE,)),
        ResponseRule(
            "isolate-implicated",
            RuleAction.ISOLATE,
            min_severity=ISOLATE_FROM_SEVERITY,
            involvement=InvolvementMatch.IMPLICATED,
        ),
        ResponseRule(
            "approve-implicated",
            RuleAction.APPROVE,
            min_severity=APPROVE_FROM_SEVERITY,
            involvement=InvolvementMatch.IMPLICATED,
        ),
        ResponseRule("report-attacked", RuleAction.REPORT, involvement=InvolvementMatch.ATTACKED),
    )


def parse_rules(raw: str) -> tuple[ResponseRule, ...]:
    """The rules from their JSON form: a list of objects with `name` and `action`, the rest optional."""
    try:
        data = json.loads(raw)
    except ValueError as error:
        raise RulesError(f"the response rules are not JSON: {error}") from None
    if not isinstance(data, list) or not data:
        raise RulesError("the response rules must be a non-empty JSON list of rules")
    if len(data) > MAX_RULES:
        raise RulesError(f"{len(data)} response rules: at most {MAX_RULES}")
    rules = tuple(_rule(index, item) for index, item in enumerate(data, start=1))
    names = [rule.name for rule in rules]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise RulesError(f"response rule names must be unique: {', '.join(repeated)} repeated")
    return rules


def rules_to_json(rules: Sequence[ResponseRule]) -> str:
    return json.dumps(
        [
            {
                "name": rule.name,
                "action": str(rule.action),
                "finding_type_prefix": rule.finding_type_prefix,
                "min_severity": rule.min_severity,
                "involvement": str(rule.involvement),
                "resource_types": list(rule.resource_types),
                "instance_tags": dict(rule.instance_tags),
                "approval_timeout_minutes": rule.approval_timeout_minutes,
                "on_timeout": str(rule.on_timeout),
            }
            for rule in rules
        ]
    )


def _rule(index: int, item: Any) -> ResponseRule:
    if not isinstance(item, Mapping):
        raise RulesError(f"response rule {index} must be an object")
    name = item.get("name")
    label = f"response rule {index} ({name!r})" if isinstance(name, str) else f"response rule {index}"
    if not isinstance(name, str) or not name.strip() or len(name) > 64:
        raise RulesError(f"{label}: name must be a non-empty string of at most 64 characters")
    unknown = sorted(set(item) - _KEYS)
    if unknown:
        raise RulesError(f"{label}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(_KEYS))})")
    action = _choice(label, "action", item.get("action"), RuleAction)
    timeout, on_timeout = _timeout(label, action, item)
    return ResponseRule(
        name=name,
        action=action,
        finding_type_prefix=_prefix(label, item.get("finding_type_prefix", "")),
        min_severity=_severity(label, item.get("min_severity", 0)),
        involvement=_choice(label, "involvement", item.get("involvement", "any"), InvolvementMatch),
        resource_types=_resource_types(label, item.get("resource_types", [])),
        instance_tags=_tags(label, item.get("instance_tags", {})),
        approval_timeout_minutes=timeout,
        on_timeout=on_timeout,
    )


def _timeout(label: str, action: RuleAction, item: Mapping[str, Any]) -> tuple[int, TimeoutAction]:
    """An approval rule's timeout and what follows it; a rule that does not wait for approval names neither."""
    minutes = item.get("approval_timeout_minutes", 0)
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 0 <= minutes <= MAX_APPROVAL_TIMEOUT_MINUTES:
        raise RulesError(
            f"{label}: approval_timeout_minutes {minutes!r} must be a whole number of minutes from 0 (no timeout) "
            f"to {MAX_APPROVAL_TIMEOUT_MINUTES}"
        )
    on_timeout = _choice(label, "on_timeout", item.get("on_timeout", "report"), TimeoutAction)
    if action is not RuleAction.APPROVE and (minutes or "on_timeout" in item and on_timeout is TimeoutAction.ISOLATE):
        raise RulesError(f"{label}: approval_timeout_minutes and on_timeout apply only to the action approve")
    return minutes, on_timeout


def _choice(label: str, key: str, value: Any, choices: type[_Choice]) -> _Choice:
    if value not in {str(choice) for choice in choices}:
        allowed = ", ".join(str(choice) for choice in choices)
        raise RulesError(f"{label}: {key} {value!r} must be one of {allowed}")
    return choices(value)


def _prefix(label: str, value: Any) -> str:
    if not isinstance(value, str) or len(value) > 128:
        raise RulesError(f"{label}: finding_type_prefix must be a string of at most 128 characters")
    return value


def _severity(label: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 10:
        raise RulesError(f"{label}: min_severity {value!r} must be a number from 0 to 10")
    return float(value)


def _resource_types(label: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or any(kind not in RESOURCE_TYPES for kind in value):
        raise RulesError(f"{label}: resource_types {value!r} must list some of {', '.join(RESOURCE_TYPES)}")
    return tuple(value)


def _tags(label: str, value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise RulesError(f'{label}: instance_tags must map tag keys to values ("*" for any value)')
    return tuple(sorted(value.items()))
