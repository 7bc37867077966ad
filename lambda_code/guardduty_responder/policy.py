"""What to do about a finding. Pure code: the facts come in, a decision with its reason goes out."""

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


@dataclass(frozen=True)
class Decision:
    action: Action
    code: str
    reason: str

    @property
    def isolates(self) -> bool:
        return self.action is Action.ISOLATE

    @property
    def opens_ticket(self) -> bool:
        return self.action is not Action.RECORD


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
        return Decision(Action.RECORD, "sample", "GuardDuty sample finding: nothing is changed")
    credentials = finding.credentials
    if credentials is not None:
        # An API-call finding names the key as its target: the role rule below is for network findings.
        used = f"the credentials of instance role {credentials.role_name} were used away from {finding.instance_id}"
        if credential_findings == "ignore":
            return Decision(Action.RECORD, "credentials-ignored", f"{used}; credential findings are only recorded")
        if credential_findings != "contain":
            return Decision(
                Action.HOLD,
                "credentials-report",
                f"{used}; automatic containment of credential findings is off: look now",
            )
    elif finding.resource_role == "TARGET":
        return Decision(
            Action.RECORD,
            "target-role",
            "the instance is the target of someone else's activity, not the actor: nothing is changed",
        )
    tags = instance_tags if instance_tags is not None else dict(finding.tags)
    if tags.get(exempt_tag_key, "").strip().lower() == "true":
        return Decision(Action.HOLD, "exempt", f"the instance carries the exemption tag {exempt_tag_key}=true")
    if dry_run:
        return Decision(Action.HOLD, "dry-run", "dry-run mode: the instance would have been isolated")
    if breaker_open:
        limit = f"{isolation_limit} " if isolation_limit is not None else ""
        return Decision(
            Action.HOLD,
            "circuit-breaker",
            f"circuit breaker open: the limit of {limit}isolations per hour in account {finding.account_id} is "
            "reached, so nothing more is isolated there this hour: look now",
        )
    if credentials is not None:
        return Decision(
            Action.ISOLATE,
            "isolate-credentials",
            f"{used}: isolate the instance, remove its instance profile and revoke the role's older sessions "
            "(the actions say what was done)",
        )
    return Decision(Action.ISOLATE, "isolate", "the instance is the actor of the finding: isolated")
