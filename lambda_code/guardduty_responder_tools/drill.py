"""A drill (`guardduty-responder drill`): contain an instance tagged for drills and release it, end to end through
the function's own code, checking from AWS what each step claims and timing each.

The deployed function has no entry for a person's request (its handler takes GuardDuty findings and the schedule's
sweep), so the drill runs the code `isolate` and `release` run, in this process, under the caller's credentials:
the same flow, ledger, containment groups, Jira project and topic as the function's. `Drill` takes the isolation
as a callable, so another way into the flow can take its place.

The instance ends as it began: the release restores the credentials and the service too, and the drill then puts
back the guards evidence preservation set (termination protection, shutdown behaviour, volumes kept on
termination) and gives back the drill's place in the circuit breaker's hour. What stays: the snapshots and the
incident's evidence (both possibly locked), the responder's tags on the instance and its interfaces, the records
and the Jira issue, which say it was a drill.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from guardduty_responder.aws_errors import describe_error
from guardduty_responder.evidence import FINDING_ID_TAG
from guardduty_responder.identity import live_associations
from guardduty_responder.isolation import InstanceFacts, InstanceNotFoundError, describe_instance
from guardduty_responder.ledger import ISOLATED, RELEASED, FindingRecord, breaker_window
from guardduty_responder.manual import ManualRequest, new_manual_id
from guardduty_responder.steps import STEP_ERRORS, Step, StepStatus
from guardduty_responder.ticketing import finding_label

if TYPE_CHECKING:
    from guardduty_responder.responder import Responder

# Only an instance carrying this tag (value `true`) is ever drilled: a typo never contains a production instance.
# People write it, so it is outside the prefix of the tags only the responder writes (README, Threat model).
DRILL_TAG_KEY = "guardduty-responder-drill"
DRILL_REASON = (
    f"DRILL, not an incident: guardduty-responder drill contains this instance (tagged {DRILL_TAG_KEY}=true) "
    "and releases it when its checks are done"
)
IN_PROCESS = (
    "in this process: the function's code (isolate_by_hand, release) under your credentials; the deployed "
    "function takes no request from a person"
)
# What the drill reads and changes itself, besides what `isolate` and `release` need.
PERMISSIONS = (
    "ec2:DescribeInstances",
    "ec2:DescribeInstanceAttribute",
    "ec2:DescribeSnapshots",
    "ec2:DescribeIamInstanceProfileAssociations",
    "ec2:ModifyInstanceAttribute",
    "dynamodb:GetItem",
    "dynamodb:UpdateItem",
)

# Takes the request and the incident id the drill chose; returns the flow's summary.
Isolate = Callable[[ManualRequest, str], Mapping[str, Any]]


class DrillRefused(RuntimeError):
    """The drill does not start (nothing was changed): the instance is not one a drill may contain, or would not be
    contained."""


@dataclass(frozen=True)
class Check:
    step: str
    ok: bool
    seconds: float
    detail: str

    def to_dict(self) -> dict[str, Any]:
        result = "PASS" if self.ok else "FAIL"
        return {"step": self.step, "result": result, "seconds": round(self.seconds, 3), "detail": self.detail}


@dataclass(frozen=True)
class Guards:
    """What evidence preservation changes on the instance and release leaves as it is."""

    termination_protection: bool
    shutdown_behaviour: str
    # (device name, delete on termination) of each EBS volume
    delete_on_termination: tuple[tuple[str, bool], ...]

    def lines(self) -> list[str]:
        volumes = ", ".join(
            f"{device} {'deleted' if delete else 'kept'}" for device, delete in self.delete_on_termination
        )
        protection = "on" if self.termination_protection else "off"
        return [f"termination protection {protection}", f"shutdown {self.shutdown_behaviour}", f"volumes: {volumes}"]


@dataclass(frozen=True)
class Baseline:
    """The instance as the drill found it: what it must be again at the end."""

    instance: InstanceFacts
    profile_arns: tuple[str, ...]
    guards: Guards

    @property
    def groups(self) -> dict[str, tuple[str, ...]]:
        return _groups(self.instance)


@dataclass
class DrillReport:
    instance_id: str
    account_id: str
    region: str
    finding_id: str
    path: str
    started: float = field(default_factory=time.time)
    checks: list[Check] = field(default_factory=list)
    # "released", "nothing to release", "failed" or "not the drill's" once the release was tried.
    release: str = ""
    jira_key: str | None = None
    snapshot_ids: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id,
            "account_id": self.account_id,
            "region": self.region,
            "finding_id": self.finding_id,
            "path": self.path,
            "ok": self.ok,
            "seconds": round(sum(check.seconds for check in self.checks), 3),
            "release": self.release,
            "jira_key": self.jira_key,
            "snapshots_kept": self.snapshot_ids,
            "steps": [check.to_dict() for check in self.checks],
        }


def timed(report: DrillReport, step: str, check: Callable[[], tuple[bool, str]]) -> bool:
    """Run one step of the drill, time it and add its row; an AWS or responder error is its failure."""
    started = time.monotonic()
    try:
        ok, detail = check()
    except STEP_ERRORS as error:
        ok, detail = False, describe_error(error)
    report.checks.append(Check(step, ok, time.monotonic() - started, detail))
    return ok


class Drill:
    """One drill of one instance: look, contain, check what each step claims, release, check it is as it was."""

    def __init__(self, responder: Responder, *, isolate: Isolate | None = None, path: str = IN_PROCESS) -> None:
        self.responder = responder
        self.ledger = responder.ledger
        self.ec2 = responder.clients.ec2
        self.path = path
        self._isolate: Isolate = isolate or (
            lambda request, finding_id: responder.isolate_by_hand(request, finding_id=finding_id)
        )

    def run(self, instance_id: str, *, by: str, caller_arn: str) -> DrillReport:
        """The whole drill; DrillRefused, with nothing changed, when the instance may or would not be contained."""
        started = time.monotonic()
        baseline = self.look(instance_id)
        account_id = self.responder.estates.home_account_id
        region = self.responder.clients.region or ""
        report = DrillReport(instance_id, account_id, region, new_manual_id(), self.path)
        report.checks.append(Check("look", True, time.monotonic() - started, _looked(baseline)))
        request = ManualRequest(
            instance_id=instance_id,
            account_id=account_id,
            region=report.region,
            reason=DRILL_REASON,
            by=f"{by} (drill)"[:256],
            caller_arn=caller_arn,
        )
        try:
            timed(report, "isolate", lambda: self._contain(request, report.finding_id))
            self._check_containment(report, baseline)
        finally:
            # Whatever happened above, the instance is put back if the drill isolated it.
            self._release_and_check(report, baseline, by)
        return report

    # -- before: the instance and the deployment ----------------------------------------------------------

    def look(self, instance_id: str) -> Baseline:
        """The instance as it is now, if a drill may contain it; else DrillRefused naming why."""
        try:
            instance = describe_instance(self.ec2, instance_id)
            refusal = self._refusal(instance)
            baseline = (
                None
                if refusal
                else Baseline(instance, _profiles(self.ec2, instance_id), read_guards(self.ec2, instance))
            )
        except InstanceNotFoundError as error:
            raise DrillRefused(f"{error}: nothing was changed") from error
        except STEP_ERRORS as error:
            raise DrillRefused(
                f"could not look at {instance_id}: {describe_error(error)}; nothing was changed"
            ) from error
        if baseline is None:
            raise DrillRefused(f"{instance_id} is not drilled: {refusal}; nothing was changed")
        return baseline

    def _refusal(self, instance: InstanceFacts) -> str | None:
        settings, tags = self.responder.settings, instance.tags
        if tags.get(DRILL_TAG_KEY, "").strip().lower() != "true":
            return (
                f"it is not tagged for drills ({DRILL_TAG_KEY}=true): a drill contains only an instance "
                "tagged so, never one named by mistake"
            )
        exempt_tag = settings.exempt_tag_key
        if exempt_tag and tags.get(exempt_tag, "").strip().lower() == "true":
            return (
                f"it carries the exemption tag {exempt_tag}=true, so the responder never isolates it for a finding "
                "and a drill of it proves nothing: remove one of the two tags"
            )
        if instance.gone:
            return f"it is {instance.state}"
        if settings.dry_run:
            return "DRY_RUN=true: this deployment isolates nothing, so a drill has nothing to prove"
        exemption = self.ledger.get_exemption(instance.instance_id, now=time.time())
        if exemption is not None:
            return f"{exemption.describe()}, and a finding would not isolate it"
        incident = self.ledger.get_incident(instance.instance_id)
        if incident is not None and incident.state == ISOLATED:
            return f"the responder holds it isolated for {incident.finding_id}: a drill never releases an incident"
        return None

    # -- contained: what each recorded step claims, read back from AWS --------------------------------------

    def _contain(self, request: ManualRequest, finding_id: str) -> tuple[bool, str]:
        summary = self._isolate(request, finding_id)
        return bool(summary.get("isolated")), f"{finding_id}: {summary.get('result') or summary.get('outcome')}"

    def _check_containment(self, report: DrillReport, baseline: Baseline) -> None:
        finding_id = report.finding_id
        timed(report, "contained", lambda: self._contained(baseline))
        timed(report, "groups saved", lambda: self._groups_saved(finding_id, baseline))
        timed(report, "snapshots", lambda: self._snapshots(report, baseline))
        timed(report, "instance profile removed", lambda: self._profile_removed(finding_id, baseline))
        timed(report, "record", lambda: _steps_settled(self._record(finding_id)))
        timed(report, "Jira issue", lambda: self._jira_issue(report))
        timed(report, "message", lambda: _message(self._record(finding_id)))

    def _contained(self, baseline: Baseline) -> tuple[bool, str]:
        """Every interface on the isolation group the ledger records for its VPC, and on nothing else."""
        live = describe_instance(self.ec2, baseline.instance.instance_id)
        account_id = self.responder.estates.home_account_id
        isolation: dict[str, str] = {}
        for vpc_id in sorted({interface.vpc_id for interface in live.interfaces}):
            recorded = self.ledger.recorded_groups(account_id, vpc_id)
            if recorded is None:
                return False, f"the ledger records no containment groups for {vpc_id}"
            isolation[vpc_id] = recorded.isolation_id
        lines = [f"{i.eni_id}: {', '.join(i.group_ids) or 'no group'}" for i in live.interfaces]
        wrong = [i.eni_id for i in live.interfaces if i.group_ids != (isolation[i.vpc_id],)]
        if wrong or set(_groups(live)) != set(baseline.groups):
            return False, "not on the isolation group alone: " + "; ".join(lines)
        return True, f"{len(lines)} interface(s) on the isolation group only: " + "; ".join(lines)

    def _groups_saved(self, finding_id: str, baseline: Baseline) -> tuple[bool, str]:
        incident = self.ledger.get_incident(baseline.instance.instance_id)
        if incident is None or incident.state != ISOLATED or incident.finding_id != finding_id:
            held = f"{incident.state} for {incident.finding_id}" if incident is not None else "none"
            return False, f"the ledger holds no isolated incident of this drill (the instance's: {held})"
        saved = {eni: tuple(sorted(groups)) for eni, groups in incident.original_groups.items()}
        lines = "; ".join(f"{eni}: {', '.join(groups)}" for eni, groups in sorted(saved.items()))
        return saved == baseline.groups, f"to restore: {lines}"

    def _snapshots(self, report: DrillReport, baseline: Baseline) -> tuple[bool, str]:
        """One snapshot per volume the instance had, each tagged with the incident id."""
        record = self._record(report.finding_id)
        report.snapshot_ids = list(record.snapshot_ids)
        if not record.snapshot_ids:
            return not baseline.instance.volumes, "no snapshot recorded"
        found = self.ec2.describe_snapshots(SnapshotIds=list(record.snapshot_ids))["Snapshots"]
        tagged = [
            s["SnapshotId"]
            for s in found
            if {t["Key"]: t["Value"] for t in s.get("Tags", [])}.get(FINDING_ID_TAG) == report.finding_id
            and s.get("State") != "error"
        ]
        volumes = len(baseline.instance.volumes)
        detail = f"{len(tagged)} of {volumes} volume(s) in snapshots tagged {FINDING_ID_TAG}: {', '.join(tagged)}"
        return len(tagged) == volumes == len(record.snapshot_ids), detail

    def _profile_removed(self, finding_id: str, baseline: Baseline) -> tuple[bool, str]:
        if not baseline.profile_arns:
            return True, "it had no instance profile"
        live = _profiles(self.ec2, baseline.instance.instance_id)
        state = self._record(finding_id).steps.get(Step.INSTANCE_PROFILE)
        recorded = f"recorded {state.status}" if state is not None else "not recorded"
        if live:
            return False, f"still associated: {', '.join(live)} ({recorded})"
        return state is not None and state.status is StepStatus.DONE, f"none associated ({recorded})"

    def _jira_issue(self, report: DrillReport) -> tuple[bool, str]:
        """The issue the record names, and the one Jira's search finds by the incident's label."""
        record = self._record(report.finding_id)
        state = record.steps.get(Step.TICKET)
        report.jira_key = record.jira_key
        if not record.jira_key or state is None or state.status is not StepStatus.DONE:
            return False, f"no issue: {state.error if state is not None else 'the ticket step is not recorded'}"
        ticketing, label = self.responder.ticketing, finding_label(report.finding_id)
        timeout = self.responder.settings.jira_timeout_seconds
        found = ticketing.bounded(timeout, lambda: ticketing.find_issue(label))
        if found is None:
            # Jira Cloud's search is eventually consistent: a new issue may not show in it yet.
            return True, f"{record.jira_key}, as the record says (Jira's search does not show it yet)"
        return found == record.jira_key, f"{record.jira_key}; Jira's search by label {label} finds {found}"

    def _record(self, finding_id: str) -> FindingRecord:
        record = self.ledger.get_finding(finding_id)
        if record is None:
            raise RuntimeError(f"the ledger holds no record of {finding_id}")
        return record

    # -- after: released, and as it began ------------------------------------------------------------------

    def _release_and_check(self, report: DrillReport, baseline: Baseline, by: str) -> None:
        instance_id = baseline.instance.instance_id
        timed(report, "release", lambda: self._release(report, by))
        timed(report, "groups restored", lambda: self._groups_restored(baseline))
        timed(report, "instance profile restored", lambda: self._profile_restored(baseline))
        timed(report, "metadata and tracking restored", lambda: self._settings_restored(baseline))
        if report.release not in ("released", "nothing to release"):
            return  # isolated still: the guards keep the evidence
        timed(report, "guards put back", lambda: self._guards_put_back(baseline))
        if report.release != "released":
            return
        timed(report, "incident released", lambda: self._released(report.finding_id, instance_id))
        timed(report, "breaker place given back", lambda: self._give_back_place(report))

    def _release(self, report: DrillReport, by: str) -> tuple[bool, str]:
        """Release the drill's own incident (never another's), restoring credentials and service too."""
        instance_id = report.instance_id
        incident = self.ledger.get_incident(instance_id)
        if incident is None or incident.state != ISOLATED:
            report.release = "nothing to release"
            return True, "the responder holds no isolated incident of the instance: nothing to release"
        others = sorted(set(incident.findings) - {report.finding_id})
        if incident.finding_id != report.finding_id or others:
            # A finding raised while the drill ran is real: its incident is never released by a drill.
            report.release = "not the drill's"
            held = ", ".join(others or [incident.finding_id])
            return False, f"the incident holds {held}, not only this drill: left isolated, look at it now"
        report.release = "failed"
        try:
            result = self.responder.release(
                instance_id, released_by=f"{by} (drill)", restore_credentials=True, return_to_service=True
            )
        except STEP_ERRORS as error:
            return False, (
                f"RELEASE FAILED, the instance stays isolated: {describe_error(error)}; release it with "
                f"`guardduty-responder release {instance_id} --restore-credentials --return-to-service`"
            )
        report.release = "released"
        comment = str(result["jira_comment"])
        failed = [*result["failed"], *([f"Jira comment {comment}"] if comment.startswith("failed") else [])]
        if failed:
            return False, "released, the groups are back, but not everything: " + "; ".join(failed)
        return True, "; ".join(result["restored"])

    def _groups_restored(self, baseline: Baseline) -> tuple[bool, str]:
        live = _groups(describe_instance(self.ec2, baseline.instance.instance_id))
        lines = "; ".join(f"{eni}: {', '.join(groups)}" for eni, groups in sorted(live.items()))
        return live == baseline.groups, lines

    def _profile_restored(self, baseline: Baseline) -> tuple[bool, str]:
        live = _profiles(self.ec2, baseline.instance.instance_id)
        return live == baseline.profile_arns, ", ".join(live) or "no instance profile, as before"

    def _settings_restored(self, baseline: Baseline) -> tuple[bool, str]:
        live = describe_instance(self.ec2, baseline.instance.instance_id)
        before = baseline.instance
        differ = [
            *(["metadata options"] if dict(live.metadata) != dict(before.metadata) else []),
            *(f"{i.eni_id} tracking" for i in live.interfaces if i.tracking != _tracking_of(before, i.eni_id)),
        ]
        return not differ, "as before" if not differ else "not as before: " + ", ".join(differ)

    def _guards_put_back(self, baseline: Baseline) -> tuple[bool, str]:
        instance_id = baseline.instance.instance_id
        live = describe_instance(self.ec2, instance_id)
        changed = put_guards_back(self.ec2, instance_id, baseline.guards, read_guards(self.ec2, live))
        now = read_guards(self.ec2, describe_instance(self.ec2, instance_id))
        said = ("put back: " + ", ".join(changed)) if changed else "as before"
        return now == baseline.guards, f"{said} ({'; '.join(now.lines())})"

    def _released(self, finding_id: str, instance_id: str) -> tuple[bool, str]:
        incident, record = self.ledger.get_incident(instance_id), self._record(finding_id)
        state = incident.state if incident is not None else "none"
        return state == RELEASED and record.status == RELEASED, f"incident {state}, record {record.status}"

    def _give_back_place(self, report: DrillReport) -> tuple[bool, str]:
        """A released drill holds no place under the circuit breaker: real findings keep the whole hour."""
        if self.responder.settings.max_isolations_per_hour == 0:
            return True, "no circuit breaker"
        windows = sorted({breaker_window(report.started), breaker_window(time.time())})
        for window in windows:
            self.ledger.give_back_slot(report.account_id, report.finding_id, window)
        return True, f"uncounted in {', '.join(windows)}"


# -- reading the instance --------------------------------------------------------------------------------------


def read_guards(ec2: Any, instance: InstanceFacts) -> Guards:
    instance_id = instance.instance_id
    protection = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="disableApiTermination")
    shutdown = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="instanceInitiatedShutdownBehavior")
    return Guards(
        termination_protection=bool(protection["DisableApiTermination"]["Value"]),
        shutdown_behaviour=str(shutdown["InstanceInitiatedShutdownBehavior"]["Value"]),
        delete_on_termination=tuple(sorted((device, delete) for device, _volume, delete in instance.volumes)),
    )


def put_guards_back(ec2: Any, instance_id: str, before: Guards, now: Guards) -> list[str]:
    """Set again what differs from `before`; what was set."""
    changed = []
    if now.termination_protection != before.termination_protection:
        ec2.modify_instance_attribute(
            InstanceId=instance_id, DisableApiTermination={"Value": before.termination_protection}
        )
        changed.append("termination protection")
    if now.shutdown_behaviour != before.shutdown_behaviour:
        ec2.modify_instance_attribute(
            InstanceId=instance_id, InstanceInitiatedShutdownBehavior={"Value": before.shutdown_behaviour}
        )
        changed.append("shutdown behaviour")
    current = dict(now.delete_on_termination)
    devices = [device for device, delete in before.delete_on_termination if current.get(device) != delete]
    if devices:
        wanted = dict(before.delete_on_termination)
        ec2.modify_instance_attribute(
            InstanceId=instance_id,
            BlockDeviceMappings=[{"DeviceName": d, "Ebs": {"DeleteOnTermination": wanted[d]}} for d in devices],
        )
        changed.append(f"delete on termination of {', '.join(devices)}")
    return changed


def _groups(instance: InstanceFacts) -> dict[str, tuple[str, ...]]:
    return {interface.eni_id: tuple(sorted(interface.group_ids)) for interface in instance.interfaces}


def _profiles(ec2: Any, instance_id: str) -> tuple[str, ...]:
    return tuple(sorted(a["IamInstanceProfile"]["Arn"] for a in live_associations(ec2, instance_id)))


def _tracking_of(instance: InstanceFacts, eni_id: str) -> tuple[tuple[str, int], ...] | None:
    return next((i.tracking for i in instance.interfaces if i.eni_id == eni_id), None)


def _looked(baseline: Baseline) -> str:
    instance, profiles = baseline.instance, ", ".join(baseline.profile_arns) or "none"
    return (
        f"tagged {DRILL_TAG_KEY}=true, {instance.state}; {len(instance.interfaces)} interface(s), "
        f"{len(instance.volumes)} volume(s), instance profile {profiles}; " + "; ".join(baseline.guards.lines())
    )


def _steps_settled(record: FindingRecord) -> tuple[bool, str]:
    unsettled = [
        f"{name} {state.status}: {state.error}" for name, state in record.steps.items() if not state.status.settled
    ]
    if unsettled or not record.completed:
        return False, "unfinished: " + ("; ".join(unsettled) or f"phase {record.phase.label}")
    if "DRILL" not in record.reason:
        return False, f"the reason does not say it is a drill: {record.reason}"
    return True, f"completed, {len(record.steps)} step(s) done or skipped; its reason says DRILL"


def _message(record: FindingRecord) -> tuple[bool, str]:
    state = record.steps.get(Step.NOTIFY)
    if state is None:
        return False, "no message recorded"
    return state.status is StepStatus.DONE, state.detail or state.error


# -- what a person reads ---------------------------------------------------------------------------------------


def report_text(report: DrillReport) -> str:
    from .terminal import table

    rows = [[c.step, "PASS" if c.ok else "FAIL", f"{c.seconds:.2f}", c.detail] for c in report.checks]
    total = sum(check.seconds for check in report.checks)
    verdict = "PASS" if report.ok else "FAIL"
    lines = [
        f"Drill of {report.instance_id} in {report.account_id} / {report.region}: {verdict} in {total:.2f} s",
        f"incident {report.finding_id}, Jira {report.jira_key or 'none'}; ran {report.path}",
        table(["step", "result", "seconds", "detail"], rows, max_widths=[30, 6, 7, 80]),
    ]
    if report.snapshot_ids:
        lines.append(f"Snapshots kept (evidence of the drill; delete them when done): {', '.join(report.snapshot_ids)}")
    return "\n".join(lines)
