"""The function's configuration, read once from the environment into a frozen object."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from .policy import Scope
from .rules import ResponseRule, RulesError, default_rules, parse_rules

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_SNS_TOPIC_ARN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$")
_SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$")
_JIRA_PROJECT_KEY = re.compile(r"^[A-Z][A-Z0-9_]{0,254}$")
_TAG_KEY = re.compile(r"^[^\x00-\x1f]{1,128}$")
_ACCOUNT_ID = re.compile(r"^\d{12}$")
# 56, not IAM's 64: the release role of modules/member-role adds "-release" to the name.
_ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,56}$")
RELEASE_ROLE_SUFFIX = "-release"
# IAM's path: "/" or "/name/.../", printable ASCII.
_ROLE_PATH = re.compile(r"^/(?:[\x21-\x7e]{1,510}/)?$")
_EXTERNAL_ID = re.compile(r"^[\w+=,.@:/-]{2,1224}$")
_DETECTOR_ID = re.compile(r"^[a-z0-9]{1,300}$")
# A Jira status name: printable, no control characters.
_JIRA_STATUS = re.compile(r"^[^\x00-\x1f\x7f\"\\]{1,60}$")
_TYPE_PREFIX = re.compile(r"^[A-Za-z0-9:/.!&_-]{1,128}$")
DEFAULT_EXEMPT_TAG_KEY = "guardduty-responder:exempt"
CREDENTIAL_CHOICES = ("ignore", "report", "contain")
# How a credential finding's revocation reaches: this instance's credentials, or every session of its role.
REVOCATION_CHOICES = ("instance", "role")
# Role names, IAM's wildcards allowed.
_ROLE_PATTERN = re.compile(r"^[\w+=,.@*?-]{1,64}$")
# The breaker's hourly item lists the findings it counted; this keeps it far below DynamoDB's 400 KB.
MAX_ISOLATION_LIMIT = 1000


class ConfigError(ValueError):
    """The environment is missing a setting or holds a bad value; the message names every one."""


@dataclass(frozen=True)
class Settings:
    table_name: str
    topic_arn: str
    jira_secret_arn: str
    jira_project_key: str
    jira_issue_type: str
    dry_run: bool
    # Instances with this tag set to "true" are not isolated; "" turns the tag exemption off.
    exempt_tag_key: str
    max_isolations_per_hour: int
    # Seconds between the move to the untracking group and the move to the isolation group.
    isolation_pause_seconds: float
    jira_timeout_seconds: int
    record_retention_days: int
    # The responder's own account ("" = not configured: asked of STS when needed).
    responder_account_id: str = ""
    # Role assumed in a finding's account when it is not the responder's own ("" = own account only).
    member_role_name: str = ""
    # The IAM path of the member role (and of its release role), modules/member-role's role_path.
    member_role_path: str = "/"
    member_role_external_id: str = ""
    # What a credential-exfiltration finding does: ignore (record only), report (Jira), contain.
    credential_findings: str = "report"
    # The ordered response rules (RESPONSE_RULES); by default, built from credential_findings.
    response_rules: tuple[ResponseRule, ...] = field(default_factory=default_rules)
    # The detector findings are confirmed with ("" = the region's only detector, from ListDetectors).
    guardduty_detector_id: str = ""
    # What the deployment's EventBridge rule passes, applied again to GuardDuty's copy of a finding.
    scope: Scope = field(default_factory=Scope)
    # Minutes after its claim an unfinished finding is logged for the unfinished-findings alarm by every sweep.
    unfinished_alarm_minutes: int = 30
    # The Jira status that approves a finding awaiting approval when its issue is moved there ("" = off).
    jira_approval_status: str = ""
    # Every isolation removes the instance profile and revokes this instance's credentials (else credential
    # findings only).
    contain_identity: bool = True
    # A contained credential finding revokes this instance's credentials, or (role) every older session of its role.
    credential_revocation: str = "instance"
    # Every isolation turns the instance metadata service off.
    disable_instance_metadata: bool = False
    # Roles never written: the function's own role, and those the operator lists (IAM wildcards allowed).
    responder_role_name: str = ""
    protected_role_names: tuple[str, ...] = ()
    # Days each evidence snapshot is locked in governance mode (LockSnapshot); 0 = not locked.
    snapshot_lock_days: int = 0
    # The evidence bucket (S3 Object Lock) each incident's evidence and manifest go to; empty = none.
    evidence_bucket: str = ""
    # Each isolated instance scanned on demand by GuardDuty Malware Protection; the verdict told on its issue.
    malware_scan: bool = False

    @property
    def protected_roles(self) -> frozenset[str]:
        """Role names (patterns) whose policies the responder never writes."""
        member = (self.member_role_name, self.member_role_name + RELEASE_ROLE_SUFFIX) if self.member_role_name else ()
        return frozenset({*member, self.responder_role_name, *self.protected_role_names} - {""})

    def for_release(self) -> Settings:
        """The settings of a person releasing an instance: in member accounts, the narrow release role."""
        if not self.member_role_name:
            return self
        return replace(self, member_role_name=self.member_role_name + RELEASE_ROLE_SUFFIX)

    @classmethod
    def from_environ(cls, env: Mapping[str, str]) -> Settings:
        read = _EnvironmentReader(env)
        settings = cls(
            table_name=read.required("RESPONDER_TABLE"),
            topic_arn=read.required("RESPONDER_TOPIC_ARN", _SNS_TOPIC_ARN, "an SNS topic ARN"),
            jira_secret_arn=read.required("JIRA_SECRET_ARN", _SECRET_ARN, "a Secrets Manager secret ARN"),
            jira_project_key=read.required("JIRA_PROJECT_KEY", _JIRA_PROJECT_KEY, "a Jira project key (upper case)"),
            jira_issue_type=env.get("JIRA_ISSUE_TYPE", "").strip() or "Task",
            dry_run=read.boolean("DRY_RUN", default=False),
            # Set but empty: the exemption tag is off (Terraform's exempt_tag_key = null).
            exempt_tag_key=read.optional("EXEMPT_TAG_KEY", _TAG_KEY, "a tag key")
            if "EXEMPT_TAG_KEY" in env
            else DEFAULT_EXEMPT_TAG_KEY,
            max_isolations_per_hour=int(read.number("MAX_ISOLATIONS_PER_HOUR", 20, 0, MAX_ISOLATION_LIMIT)),
            isolation_pause_seconds=read.number("ISOLATION_PAUSE_SECONDS", 0.0, 0, 600, integer=False),
            jira_timeout_seconds=int(read.number("JIRA_TIMEOUT_SECONDS", 10, 1, 120)),
            record_retention_days=int(read.number("RECORD_RETENTION_DAYS", 365, 1, 3650)),
            responder_account_id=read.optional("RESPONDER_ACCOUNT_ID", _ACCOUNT_ID, "a 12-digit account id"),
            member_role_name=read.optional("MEMBER_ROLE_NAME", _ROLE_NAME, "an IAM role name"),
            member_role_path=read.optional("MEMBER_ROLE_PATH", _ROLE_PATH, "an IAM path (/ or /name/, e.g. /security/)")
            or "/",
            member_role_external_id=read.optional(
                "MEMBER_ROLE_EXTERNAL_ID", _EXTERNAL_ID, "an external id (2-1224 characters)"
            ),
            credential_findings=read.choice("CREDENTIAL_FINDINGS", CREDENTIAL_CHOICES, "report"),
            response_rules=read.rules(
                "RESPONSE_RULES", default_rules(env.get("CREDENTIAL_FINDINGS", "").strip().lower())
            ),
            guardduty_detector_id=read.optional("GUARDDUTY_DETECTOR_ID", _DETECTOR_ID, "a GuardDuty detector id"),
            scope=Scope(
                min_severity=read.number("MIN_SEVERITY", 0.0, 0, 10, integer=False),
                type_prefixes=read.prefixes("FINDING_TYPE_PREFIXES"),
            ),
            unfinished_alarm_minutes=int(read.number("UNFINISHED_ALARM_MINUTES", 30, 1, 10080)),
            jira_approval_status=read.optional("JIRA_APPROVAL_STATUS", _JIRA_STATUS, "a Jira status name"),
            contain_identity=read.boolean("CONTAIN_IDENTITY", default=True),
            credential_revocation=read.choice("CREDENTIAL_REVOCATION", REVOCATION_CHOICES, "instance"),
            disable_instance_metadata=read.boolean("DISABLE_INSTANCE_METADATA", default=False),
            responder_role_name=read.optional("RESPONDER_ROLE_NAME", _ROLE_NAME, "an IAM role name"),
            protected_role_names=read.role_patterns("PROTECTED_ROLE_NAMES"),
            snapshot_lock_days=int(read.number("SNAPSHOT_LOCK_DAYS", 0, 0, 36500)),
            evidence_bucket=read.optional("EVIDENCE_BUCKET", _BUCKET_NAME, "an S3 bucket name"),
            malware_scan=read.boolean("MALWARE_SCAN", default=False),
        )
        if settings.member_role_name and not settings.member_role_external_id:
            read.problems.append("MEMBER_ROLE_EXTERNAL_ID is not set: the member role is assumed with an external id")
        if read.problems:
            raise ConfigError("invalid responder configuration: " + "; ".join(read.problems))
        return settings


class _EnvironmentReader:
    """Reads settings one by one, collecting every problem so that one error can name them all."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self.problems: list[str] = []

    def _raw(self, key: str) -> str:
        return self._env.get(key, "").strip()

    def required(self, key: str, pattern: re.Pattern[str] | None = None, hint: str = "") -> str:
        value = self._raw(key)
        if not value:
            self.problems.append(f"{key} is not set")
        elif pattern is not None and not pattern.match(value):
            self.problems.append(f"{key}={value!r} is not {hint}")
        return value

    def optional(self, key: str, pattern: re.Pattern[str], hint: str) -> str:
        value = self._raw(key)
        if value and not pattern.match(value):
            self.problems.append(f"{key}={value[:80]!r} is not {hint}")
            return ""
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self._raw(key).lower() or default
        if value not in choices:
            self.problems.append(f"{key}={value[:40]!r} must be one of {', '.join(choices)}")
            return default
        return value

    def boolean(self, key: str, default: bool) -> bool:
        raw = self._raw(key).lower()
        if not raw:
            return default
        if raw in ("true", "false"):
            return raw == "true"
        self.problems.append(f"{key}={raw!r} must be 'true' or 'false'")
        return default

    def prefixes(self, key: str) -> tuple[str, ...]:
        values = tuple(part.strip() for part in self._raw(key).split(",") if part.strip())
        wrong = [value for value in values if not _TYPE_PREFIX.fullmatch(value)]
        if wrong:
            self.problems.append(
                f"{key}: {', '.join(repr(value[:40]) for value in wrong)} is not a finding type prefix"
            )
        return values

    def role_patterns(self, key: str) -> tuple[str, ...]:
        values = tuple(part.strip() for part in self._raw(key).split(",") if part.strip())
        wrong = [value for value in values if not _ROLE_PATTERN.fullmatch(value)]
        if wrong:
            self.problems.append(f"{key}: {', '.join(repr(value[:70]) for value in wrong)} is not a role name")
        return tuple(value for value in values if value not in wrong)

    def rules(self, key: str, default: tuple[ResponseRule, ...]) -> tuple[ResponseRule, ...]:
        raw = self._raw(key)
        if not raw:
            return default
        try:
            return parse_rules(raw)
        except RulesError as error:
            self.problems.append(f"{key}: {error}")
            return default

    def number(self, key: str, default: float, minimum: float, maximum: float, integer: bool = True) -> float:
        raw = self._raw(key)
        if not raw:
            return default
        try:
            value = int(raw) if integer else float(raw)
        except ValueError:
            self.problems.append(f"{key}={raw!r} is not a {'whole ' if integer else ''}number")
            return default
        if not minimum <= value <= maximum:
            self.problems.append(f"{key}={raw} is outside {minimum:g}..{maximum:g}")
            return default
        return value
