"""The embedded demo: a small estate in moto, findings delivered to the Lambda handler, one release.

Everything runs in this process (moto) or on 127.0.0.1 (the Jira stand-in); nothing needs an
account or the network. The findings go through `handler.lambda_handler`, the function Lambda
runs, with the environment Terraform gives it. What each delivery did is read back from the
estate itself (groups, snapshots, the ledger, Jira, the SNS inbox), not taken from the handler's word.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import re
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError

from guardduty_responder import handler
from guardduty_responder.isolation import ContainmentError
from guardduty_responder.ledger import Ledger, LedgerError
from guardduty_responder.logs import JsonFormatter
from guardduty_responder.responder import IncompleteResponseError, ReleaseError
from guardduty_responder.steps import step_rank
from guardduty_responder.ticketing import finding_label

from . import terminal
from .embedded import ACCOUNT_ID, EmbeddedAws, point_event_at

EXEMPT_TAG = "guardduty-responder:exempt"
# What a delivery may fail with and still let the demo go on to show the rest.
_DELIVERY_ERRORS = (IncompleteResponseError, ContainmentError, LedgerError, ClientError, BotoCoreError)
# The responder's groups are named after their role, with a suffix of their own.
_RESPONDER_GROUPS = {"guardduty-responder-isolation-": "[isolation]", "guardduty-responder-untracking-": "[untracking]"}


def _shown_group(name: str) -> str:
    return next((shown for prefix, shown in _RESPONDER_GROUPS.items() if name.startswith(prefix)), name)


# -- what the demo reports ------------------------------------------------------------------------------


@dataclass
class StepLine:
    name: str
    status: str
    detail: str


@dataclass
class Delivery:
    """One finding delivered to the handler, and what it changed in the estate."""

    number: int
    label: str
    finding_id: str
    finding_type: str
    severity: float
    instance_name: str
    instance_id: str
    outcome: str
    decision: str
    reason: str
    groups_before: dict[str, list[str]]
    groups_after: dict[str, list[str]]
    new_snapshots: list[str]
    jira_key: str | None
    jira_change: str | None  # "new issue", "comment", or None when Jira was not touched
    message_subject: str | None
    seconds: float
    contained_after_seconds: float | None
    steps: list[StepLine] = field(default_factory=list)
    error: str | None = None


@dataclass
class ReleaseReport:
    instance_name: str
    instance_id: str
    groups_originally: dict[str, list[str]]
    groups_isolated: dict[str, list[str]]
    groups_restored: dict[str, list[str]]
    jira_key: str | None
    jira_comment: str
    seconds: float
    error: str | None = None

    @property
    def restored(self) -> bool:
        return self.error is None and self.groups_restored == self.groups_originally


@dataclass
class DecisionReport:
    """A person's decision on a finding awaiting approval, and what the next sweep made of it."""

    instance_name: str
    finding_id: str
    decision: str  # approved, rejected
    by: str
    swept: str  # what the sweep says it did: approved (then isolated), rejected, or its error
    groups_before: dict[str, list[str]]
    groups_after: dict[str, list[str]]
    message_subject: str | None
    error: str | None = None

    @property
    def as_expected(self) -> bool:
        changed = self.groups_after != self.groups_before
        return self.error is None and self.swept == self.decision and changed == (self.decision == "approved")


@dataclass
class GroupReport:
    """A group finding of several instances: awaiting approval, then, approved, contained whole by the sweep."""

    finding_id: str
    instance_names: list[str]
    waiting_subject: str | None
    unchanged_while_waiting: bool
    isolated_after_approval: list[str]
    issues: int
    error: str | None = None

    @property
    def as_expected(self) -> bool:
        return (
            self.error is None
            and self.unchanged_while_waiting
            and sorted(self.isolated_after_approval) == sorted(self.instance_names)
            and self.issues == 1
        )


@dataclass
class DemoReport:
    instances: dict[str, str]  # name -> instance id
    deliveries: list[Delivery]
    release: ReleaseReport | None
    group_names: dict[str, str]
    interface_devices: dict[str, int]
    jira_issues: list[dict[str, Any]]
    log_file: str
    seconds: float
    decisions: list[DecisionReport] = field(default_factory=list)
    group: GroupReport | None = None

    @property
    def ok(self) -> bool:
        return (
            all(d.error is None for d in self.deliveries)
            and self.release is not None
            and self.release.restored
            and all(decision.as_expected for decision in self.decisions)
            and self.group is not None
            and self.group.as_expected
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        if self.release is not None:
            data["release"]["restored"] = self.release.restored
        return data


# -- the findings ---------------------------------------------------------------------------------------


def finding_event(
    finding_type: str,
    severity: float,
    *,
    seed: str,
    region: str,
    title: str,
    action: Mapping[str, Any],
    role: str = "TARGET",
    sample: bool = False,
    count: int = 1,
) -> dict[str, Any]:
    """An EventBridge "GuardDuty Finding" event in the documented finding format (schema 2.0).

    It names a placeholder instance, as GuardDuty's sample findings do; `point_event_at` aims it at
    an instance of the estate. `seed` makes the finding id stable from one run to the next. The
    resource role is GuardDuty's own label, TARGET on most types even when the instance itself made
    the request: the responder decides from the action, not from it.
    """
    event = _event(seed, f"{seed}/{count}", region, finding_type, severity, title, title)
    now = event["time"].removesuffix("Z")
    event["detail"]["resource"] = {
        "resourceType": "Instance",
        "instanceDetails": {
            "instanceId": "i-99999999",
            "instanceType": "t3.small",
            "instanceState": "running",
            "availabilityZone": f"{region}a",
            "imageId": "ami-12c6146b",
            "tags": [],
            "networkInterfaces": [],
        },
    }
    event["detail"]["service"] = {
        "serviceName": "guardduty",
        "detectorId": _DETECTOR,
        "action": dict(action),
        "resourceRole": role,
        "additionalInfo": {"value": json.dumps({"sample": True} if sample else {}), "type": "default"},
        "eventFirstSeen": now + ".000Z",
        "eventLastSeen": now + ".000Z",
        "archived": False,
        "count": count,
    }
    return event


def _event(
    seed: str, event_seed: str, region: str, finding_type: str, severity: float, title: str, description: str
) -> dict[str, Any]:
    """The EventBridge envelope and the finding's identity, severity and text; its resource and service to add."""
    finding_id = hashlib.sha256(seed.encode()).hexdigest()[:32]
    now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    return {
        "version": "0",
        "id": hashlib.sha256(event_seed.encode()).hexdigest()[:32],
        "detail-type": "GuardDuty Finding",
        "source": "aws.guardduty",
        "account": ACCOUNT_ID,
        "time": now + "Z",
        "region": region,
        "resources": [],
        "detail": {
            "schemaVersion": "2.0",
            "accountId": ACCOUNT_ID,
            "region": region,
            "partition": "aws",
            "id": finding_id,
            "arn": f"arn:aws:guardduty:{region}:{ACCOUNT_ID}:detector/{_DETECTOR}/finding/{finding_id}",
            "type": finding_type,
            "severity": severity,
            "createdAt": now + ".000Z",
            "updatedAt": now + ".000Z",
            "title": title,
            "description": description,
        },
    }


def _dns_request(domain: str) -> dict[str, Any]:
    return {"actionType": "DNS_REQUEST", "dnsRequestAction": {"domain": domain, "protocol": "UDP", "blocked": False}}


def _connection(direction: str, remote_ip: str, port: int, port_name: str) -> dict[str, Any]:
    return {
        "actionType": "NETWORK_CONNECTION",
        "networkConnectionAction": {
            "connectionDirection": direction,
            "protocol": "TCP",
            "blocked": False,
            "remoteIpDetails": {"ipAddressV4": remote_ip},
            "remotePortDetails": {"port": port, "portName": port_name},
        },
    }


def _port_probe(remote_ip: str, port: int, port_name: str) -> dict[str, Any]:
    return {
        "actionType": "PORT_PROBE",
        "portProbeAction": {
            "blocked": False,
            "portProbeDetails": [
                {
                    "localPortDetails": {"port": port, "portName": port_name},
                    "remoteIpDetails": {"ipAddressV4": remote_ip},
                }
            ],
        },
    }


# -- the run --------------------------------------------------------------------------------------------


class _LambdaContext:
    """What the handler reads from Lambda's context object."""

    def __init__(self, request_id: str, remaining_seconds: float = 60.0) -> None:
        self.aws_request_id = request_id
        self._deadline = time.monotonic() + remaining_seconds

    def get_remaining_time_in_millis(self) -> int:
        return int((self._deadline - time.monotonic()) * 1000)


class _ContainmentTimes(logging.Handler):
    """Keeps the time of each "contained" log line, to show how soon after delivery an instance was cut off."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.times: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == "contained":
            self.times.append(record.created)


@contextmanager
def _function_logs(path: str, containment_times: _ContainmentTimes) -> Iterator[None]:
    """Send the package's JSON logs (what CloudWatch would receive) to a file for the demo's duration."""
    package_logger = logging.getLogger("guardduty_responder")
    saved = (list(package_logger.handlers), package_logger.level, package_logger.propagate)
    file_handler = logging.FileHandler(path, encoding="utf-8")
    # logs.configure(), which the Lambda handler calls, adds its stdout handler only when no handler
    # with the JSON formatter is there: with this one in place the function's logs stay in the file.
    file_handler.setFormatter(JsonFormatter())
    package_logger.handlers = [file_handler, containment_times]
    package_logger.setLevel(logging.INFO)
    package_logger.propagate = False
    try:
        yield
    finally:
        file_handler.close()
        package_logger.handlers, package_logger.level, package_logger.propagate = saved[0], saved[1], saved[2]


class _Display:
    """What a newcomer reads as the demo runs; silent when the output is JSON."""

    def __init__(self, stream: TextIO, enabled: bool) -> None:
        self.stream = stream
        self.enabled = enabled
        self.style = terminal.Style(stream)

    def line(self, text: str = "") -> None:
        if self.enabled:
            print(text, file=self.stream, flush=True)

    def working(self, label: str) -> AbstractContextManager[None]:
        return terminal.spinner(self.stream, label) if self.enabled else nullcontext()


class DemoRun:
    def __init__(self, aws: EmbeddedAws, display: _Display, containment_times: _ContainmentTimes) -> None:
        self.aws = aws
        self.display = display
        self.containment_times = containment_times
        self.ec2 = aws.ec2
        self.instances: dict[str, str] = {}
        self.network = ("", "")
        self.deliveries: list[Delivery] = []
        self.ledger = Ledger(aws.dynamodb, aws.table_name, 365)

    # -- the estate -------------------------------------------------------------------------------------

    def _give_role(self, instance_id: str, role_name: str) -> None:
        """An instance profile holding a role only EC2 may assume, as an instance's role usually is."""
        iam = self.aws.client("iam")
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ],
        }
        iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(trust))
        profile = iam.create_instance_profile(InstanceProfileName=role_name)["InstanceProfile"]["Arn"]
        iam.add_role_to_instance_profile(InstanceProfileName=role_name, RoleName=role_name)
        self.aws.ec2.associate_iam_instance_profile(IamInstanceProfile={"Arn": profile}, InstanceId=instance_id)

    def build_estate(self) -> None:
        aws = self.aws
        vpc_id, subnet_id = aws.create_network("production")
        web = self._group(vpc_id, "web", "HTTPS from anywhere", 443, "0.0.0.0/0")
        ssh = self._group(vpc_id, "ssh-admin", "SSH from the admin network", 22, "10.0.0.0/8")
        app = self._group(vpc_id, "app", "application port inside the VPC", 8080, "10.0.0.0/16")
        build = self._group(vpc_id, "build", "build agents: outbound only", None, None)
        bastion = self._group(vpc_id, "bastion", "SSH from the office", 22, "198.51.100.0/24")
        api = self._group(vpc_id, "api", "HTTPS from the load balancer", 443, "10.0.0.0/16")

        self.instances["web-1"] = aws.launch(subnet_id, name="web-1", groups_per_eni=[[web, ssh], [app]])
        self._give_role(self.instances["web-1"], "web-app")
        self.instances["build-runner"] = aws.launch(
            subnet_id, name="build-runner", groups_per_eni=[[build]], tags={EXEMPT_TAG: "true"}
        )
        self.instances["bastion"] = aws.launch(subnet_id, name="bastion", groups_per_eni=[[bastion]])
        self.instances["api"] = self._autoscaled_instance(vpc_id, subnet_id, api)
        self.instances["reports-1"] = aws.launch(subnet_id, name="reports-1", groups_per_eni=[[app]])
        self.instances["batch-1"] = aws.launch(subnet_id, name="batch-1", groups_per_eni=[[build]])
        for number in (1, 2, 3):
            self.instances[f"worker-{number}"] = aws.launch(subnet_id, name=f"worker-{number}", groups_per_eni=[[app]])
        self.network = (vpc_id, subnet_id)

    def show_estate(self) -> None:
        vpc_id, subnet_id = self.network
        aws = self.aws
        self.display.line(f"  VPC {vpc_id} (production) with subnet {subnet_id}")
        notes = {
            "web-1": "two network interfaces",
            "build-runner": f"tagged {EXEMPT_TAG}=true",
            "bastion": "SSH open to the office range",
            "api": "Auto Scaling group api, behind target group api",
            "reports-1": "a medium-severity finding will wait for approval",
            "batch-1": "a medium-severity finding will wait for approval",
            **{f"worker-{number}": "one of a group an attack sequence names" for number in (1, 2, 3)},
        }
        names = self.group_names()
        for name, instance_id in self.instances.items():
            groups = self.groups_of(instance_id)
            shown = "  ".join(self._groups_text(eni, groups[eni], names, len(groups) > 1) for eni in groups)
            self.display.line(f"  {name:<13}{instance_id}  {shown:<28} {notes[name]}")
        self.display.line(
            f"  responder: table {aws.table_name}, topic guardduty-responder, "
            f"Jira stand-in {aws.jira.url} (Jira Cloud, project SEC)"
        )

    def _group(self, vpc_id: str, name: str, description: str, port: int | None, cidr: str | None) -> str:
        group_id = self.aws.security_group(vpc_id, name, description)
        if port is not None:
            self.ec2.authorize_security_group_ingress(
                GroupId=group_id,
                IpPermissions=[{"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": cidr}]}],
            )
        return group_id

    def _autoscaled_instance(self, vpc_id: str, subnet_id: str, group_id: str) -> str:
        autoscaling, elbv2 = self.aws.client("autoscaling"), self.aws.client("elbv2")
        self.ec2.create_launch_template(
            LaunchTemplateName="api", LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.small"}
        )
        target_group = elbv2.create_target_group(
            Name="api", Protocol="HTTPS", Port=443, VpcId=vpc_id, TargetType="instance"
        )["TargetGroups"][0]["TargetGroupArn"]
        autoscaling.create_auto_scaling_group(
            AutoScalingGroupName="api",
            LaunchTemplate={"LaunchTemplateName": "api"},
            MinSize=1,
            MaxSize=3,
            DesiredCapacity=1,
            VPCZoneIdentifier=subnet_id,
            TargetGroupARNs=[target_group],
            Tags=[{"Key": "Name", "Value": "api", "PropagateAtLaunch": True}],
        )
        instance_id = autoscaling.describe_auto_scaling_instances()["AutoScalingInstances"][0]["InstanceId"]
        # moto launches group members on the VPC's default group whatever the launch template says.
        eni_id = self.aws.describe(instance_id)["NetworkInterfaces"][0]["NetworkInterfaceId"]
        self.ec2.modify_network_interface_attribute(NetworkInterfaceId=eni_id, Groups=[group_id])
        return instance_id

    # -- reading the estate -------------------------------------------------------------------------------

    def groups_of(self, instance_id: str) -> dict[str, list[str]]:
        """Each ENI's groups as EC2 reports them now, ENIs in device order."""
        try:
            interfaces = self.aws.describe(instance_id)["NetworkInterfaces"]
        except ClientError as error:
            if error.response["Error"]["Code"].startswith("InvalidInstanceID"):
                return {}
            raise
        ordered = sorted(interfaces, key=lambda eni: eni["Attachment"]["DeviceIndex"])
        return {eni["NetworkInterfaceId"]: sorted(group["GroupId"] for group in eni["Groups"]) for eni in ordered}

    def interface_devices(self) -> dict[str, int]:
        return {
            eni["NetworkInterfaceId"]: eni["Attachment"]["DeviceIndex"]
            for eni in self.ec2.describe_network_interfaces()["NetworkInterfaces"]
            if eni.get("Attachment")
        }

    def group_names(self) -> dict[str, str]:
        return {group["GroupId"]: group["GroupName"] for group in self.ec2.describe_security_groups()["SecurityGroups"]}

    def snapshot_ids(self, instance_id: str) -> set[str]:
        """Snapshots of the instance's volumes, found by volume rather than by the responder's own tags."""
        try:
            mappings = self.aws.describe(instance_id).get("BlockDeviceMappings", [])
        except ClientError as error:
            if error.response["Error"]["Code"].startswith("InvalidInstanceID"):
                return set()
            raise
        volumes = [mapping["Ebs"]["VolumeId"] for mapping in mappings if "Ebs" in mapping]
        if not volumes:
            return set()
        # A filter keeps moto from listing the public snapshots it ships with.
        snapshots = self.ec2.describe_snapshots(Filters=[{"Name": "volume-id", "Values": volumes}])["Snapshots"]
        return {snapshot["SnapshotId"] for snapshot in snapshots}

    def jira_activity(self) -> tuple[int, int]:
        with self.aws.jira.lock:
            issues = self.aws.jira.issues
            return len(issues), sum(len(issue["comments"]) for issue in issues.values())

    def _groups_text(self, eni_id: str, group_ids: list[str], names: Mapping[str, str], numbered: bool) -> str:
        shown = ", ".join(_shown_group(names.get(g, g)) for g in group_ids)
        if not numbered:
            return shown
        return f"eth{self.interface_devices().get(eni_id, '?')}: {shown}"

    # -- deliveries -----------------------------------------------------------------------------------------

    def deliver(self, label: str, event: dict[str, Any], instance_name: str, *, raised: bool = True) -> Delivery:
        """Deliver one event to the handler; `raised`: GuardDuty holds the finding it raised, so it is confirmed."""
        number = len(self.deliveries) + 1
        detail = event["detail"]
        if raised:
            self.aws.guardduty.add(copy.deepcopy(detail))
        instance_id = detail["resource"]["instanceDetails"]["instanceId"]
        style = self.display.style
        self.display.line()
        self.display.line(
            style(f"[{number}] {label}", "bold")
            + f": {detail['type']} (severity {detail['severity']:g}) about {instance_name} ({instance_id})"
        )
        groups_before = self.groups_of(instance_id)
        snapshots_before = self.snapshot_ids(instance_id)
        issues_before, comments_before = self.jira_activity()
        self.containment_times.times.clear()

        error: str | None = None
        summary: dict[str, Any] = {}
        started_wall, started = time.time(), time.monotonic()
        with self.display.working(f"delivering finding {number} to the Lambda handler"):
            try:
                summary = handler.lambda_handler(copy.deepcopy(event), _LambdaContext(f"demo-{number}"))
            except _DELIVERY_ERRORS as failure:
                error = f"{type(failure).__name__}: {failure}"
        seconds = time.monotonic() - started

        issues_after, comments_after = self.jira_activity()
        jira_change = (
            "new issue" if issues_after > issues_before else "comment" if comments_after > comments_before else None
        )
        messages = self.aws.messages()
        record = self.ledger.get_finding(detail["id"])
        steps = []
        if record is not None and not summary.get("repeat"):
            ordered = sorted(record.steps.items(), key=lambda item: step_rank(item[0]))
            steps = [StepLine(name, state.status, state.detail or state.error) for name, state in ordered]
        delivery = Delivery(
            number=number,
            label=label,
            finding_id=detail["id"],
            finding_type=detail["type"],
            severity=float(detail["severity"]),
            instance_name=instance_name,
            instance_id=instance_id,
            outcome=summary.get("outcome", "failed"),
            decision=summary.get("decision") or (record.decision if record else ""),
            reason=summary.get("reason", ""),
            groups_before=groups_before,
            groups_after=self.groups_of(instance_id),
            new_snapshots=sorted(self.snapshot_ids(instance_id) - snapshots_before),
            jira_key=summary.get("jira_key") if jira_change else None,
            jira_change=jira_change,
            message_subject=messages[0].get("Subject") if messages else None,
            seconds=seconds,
            contained_after_seconds=(self.containment_times.times[0] - started_wall)
            if self.containment_times.times
            else None,
            steps=steps,
            error=error,
        )
        self.deliveries.append(delivery)
        self._show(delivery, summary, record.service_count if record else None)
        return delivery

    def _show(self, delivery: Delivery, summary: Mapping[str, Any], count: int | None) -> None:
        line, style = self.display.line, self.display.style
        if summary.get("repeat"):
            line(f"      {'outcome':<20}{summary['outcome']}: GuardDuty's count is now {count}; nothing else done")
        elif delivery.reason:
            colour = {"isolate": "green", "record": "dim", "ignore": "dim"}.get(summary.get("action", ""), "yellow")
            verdict = (
                summary["action"]
                if summary["action"] == delivery.decision
                else f"{summary['action']} ({delivery.decision})"
            )
            line(f"      {'decision':<20}" + style(verdict, colour) + f": {delivery.reason}")
        for step in delivery.steps:
            status = "" if step.status == "done" else f"[{step.status}] "
            text = f"      {step.name:<20}{status}{step.detail}"
            line(style(text, "red") if step.status == "failed" else text)
        if delivery.message_subject:
            line(f'      {"message":<20}"{delivery.message_subject}"')
        if delivery.error:
            line(style(f"      {'FAILED':<20}{delivery.error}", "red"))
        timing = f"took {delivery.seconds:.2f} s"
        if delivery.contained_after_seconds is not None and delivery.groups_before != delivery.groups_after:
            timing += f"; isolated {delivery.contained_after_seconds:.2f} s after delivery"
        line(style(f"      {timing}", "dim"))

    # -- approvals ---------------------------------------------------------------------------------------------

    def decide(
        self, instance_name: str, finding_id: str, *, approve: bool, by: str, reason: str = ""
    ) -> DecisionReport:
        """A person approves or rejects, as `guardduty-responder approve/reject` does; then the schedule's sweep."""
        instance_id = self.instances[instance_name]
        verb = "approve" if approve else "reject"
        style = self.display.style
        self.display.line()
        self.display.line(
            style(f"{verb.capitalize()} {instance_name}", "bold")
            + f" ({finding_id}), as `guardduty-responder {verb} {finding_id} --by '{by}'` does, then the sweep"
        )
        before = self.groups_of(instance_id)
        error, swept = None, "nothing"
        try:
            self.ledger.decide_approval(
                finding_id,
                state="approved" if approve else "rejected",
                by=by,
                how="command",
                now=time.time(),
                caller_arn=f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/on-call/{by.split()[0].lower()}",
                reason=reason,
            )
            with self.display.working("the schedule's sweep"):
                result = handler.lambda_handler(dict(_SCHEDULED), _LambdaContext("demo-sweep"))
            swept = next(
                (name for name in ("approved", "rejected") if finding_id in result.get(f"approvals_{name}", [])),
                "nothing",
            )
        except _DELIVERY_ERRORS as failure:
            error = f"{type(failure).__name__}: {failure}"
        messages = self.aws.messages()
        report = DecisionReport(
            instance_name=instance_name,
            finding_id=finding_id,
            decision="approved" if approve else "rejected",
            by=by,
            swept=swept,
            groups_before=before,
            groups_after=self.groups_of(instance_id),
            message_subject=messages[0].get("Subject") if messages else None,
            error=error,
        )
        names = self.group_names()
        for eni, groups in report.groups_after.items():
            was = self._groups_text(eni, report.groups_before.get(eni, []), names, False)
            now = self._groups_text(eni, groups, names, False)
            self.display.line(f"      {eni}  {was} -> {now}")
        if report.message_subject:
            self.display.line(f'      {"message":<20}"{report.message_subject}"')
        if report.error:
            self.display.line(style(f"      FAILED  {report.error}", "red"))
        return report

    # -- a group finding ----------------------------------------------------------------------------------------

    def group(self, names: list[str], region: str) -> GroupReport:
        """An attack sequence naming several instances: it waits for approval, then the sweep contains all of them."""
        ids = [self.instances[name] for name in names]
        event = group_finding_event(region, ids, seed="demo/workers/attack-sequence")
        finding_id = event["detail"]["id"]
        self.aws.guardduty.add(copy.deepcopy(event["detail"]))
        style = self.display.style
        self.display.line()
        self.display.line(
            style("Group finding", "bold") + f": AttackSequence:EC2/CompromisedInstanceGroup (severity 9) naming "
            f"{', '.join(names)}; approved, as `guardduty-responder approve {finding_id}` does, then the sweep"
        )
        before = {name: self.groups_of(self.instances[name]) for name in names}
        error, subject, unchanged = None, None, False
        try:
            with self.display.working("delivering the group finding"):
                handler.lambda_handler(copy.deepcopy(event), _LambdaContext("demo-group", 120))
            messages = self.aws.messages()
            subject = messages[0].get("Subject") if messages else None
            unchanged = all(self.groups_of(self.instances[name]) == before[name] for name in names)
            self.display.line(f'      {"waiting":<20}"{subject}"; nothing changed on the {len(names)} instances')
            self.ledger.decide_approval(
                finding_id, state="approved", by="Ana (on call)", how="command", now=time.time()
            )
            with self.display.working("the schedule's sweep"):
                handler.lambda_handler(dict(_SCHEDULED), _LambdaContext("demo-sweep", 120))
            self.aws.messages()
        except _DELIVERY_ERRORS as failure:
            error = f"{type(failure).__name__}: {failure}"
        names_by_id = {self.instances[name]: name for name in names}
        isolated = [names_by_id[i] for i in ids if self.groups_of(i) != before[names_by_id[i]]]
        labels = {finding_label(finding_id)}
        with self.aws.jira.lock:
            issues = sum(1 for issue in self.aws.jira.issues.values() if labels & set(issue["fields"]["labels"]))
        names_of_groups = self.group_names()
        for name in names:
            after = self.groups_of(self.instances[name])
            for eni, group_ids in after.items():
                was = self._groups_text(eni, before[name].get(eni, []), names_of_groups, False)
                now = self._groups_text(eni, group_ids, names_of_groups, False)
                self.display.line(f"      {name:<10}{eni}  {was} -> {now}")
        if error:
            self.display.line(style(f"      FAILED  {error}", "red"))
        return GroupReport(finding_id, names, subject, unchanged, isolated, issues, error)

    # -- release ---------------------------------------------------------------------------------------------

    def release(self, instance_name: str, groups_originally: dict[str, list[str]]) -> ReleaseReport:
        instance_id = self.instances[instance_name]
        self.display.line()
        self.display.line(
            self.display.style(f"Releasing {instance_name}", "bold")
            + f" ({instance_id}), as `guardduty-responder release {instance_id}` does"
        )
        groups_isolated = self.groups_of(instance_id)
        started = time.monotonic()
        error: str | None = None
        result: dict[str, Any] = {}
        with self.display.working(f"releasing {instance_name}"):
            try:
                result = handler.get_responder().release(instance_id, released_by="demo (guardduty-responder demo)")
            except (ReleaseError, LedgerError, ContainmentError, ClientError, BotoCoreError) as failure:
                error = f"{type(failure).__name__}: {failure}"
        report = ReleaseReport(
            instance_name=instance_name,
            instance_id=instance_id,
            groups_originally=groups_originally,
            groups_isolated=groups_isolated,
            groups_restored=self.groups_of(instance_id),
            jira_key=result.get("jira_key"),
            jira_comment=result.get("jira_comment", "not attempted"),
            seconds=time.monotonic() - started,
            error=error,
        )
        names = self.group_names()
        for eni in report.groups_restored:
            before = self._groups_text(eni, report.groups_isolated.get(eni, []), names, False)
            after = self._groups_text(eni, report.groups_restored[eni], names, False)
            device = self.interface_devices().get(eni, "?")
            self.display.line(f"      eth{device} {eni}  {before} -> {after}")
        if report.error:
            self.display.line(self.display.style(f"      FAILED  {report.error}", "red"))
        else:
            verdict = "groups restored as they were before isolation" if report.restored else "groups NOT as they were"
            comment = "comment added" if report.jira_comment == "done" else f"comment {report.jira_comment}"
            self.display.line(f"      {verdict}; Jira {report.jira_key}: {comment}")
            for item in result.get("restored", [])[1:]:  # after the groups: profile, timeouts, what stays
                self.display.line(f"      {item}")
        self.display.line(self.display.style(f"      took {report.seconds:.2f} s", "dim"))
        return report


def summary_table(deliveries: Sequence[Delivery], names: Mapping[str, str], devices: Mapping[str, int]) -> str:

    def groups(by_eni: Mapping[str, list[str]]) -> list[str]:
        lines = []
        for eni, group_ids in by_eni.items():
            shown = ", ".join(_shown_group(names.get(g, g)) for g in group_ids)
            lines.append(f"eth{devices.get(eni, '?')}: {shown}" if len(by_eni) > 1 else shown)
        return lines

    rows: list[list[terminal.Cell]] = []
    for delivery in deliveries:
        if delivery.error:
            decision = f"FAILED: {delivery.error}"
        elif delivery.outcome == "unconfirmed":
            decision = f"unconfirmed: {delivery.reason.removeprefix('not confirmed by GuardDuty: ')}"
        elif delivery.outcome != "handled":
            decision = f"repeat: {delivery.outcome}, count noted"
        else:
            decision = f"{delivery.decision}: {_short_reason(delivery.reason)}"
        rows.append(
            [
                str(delivery.number),
                [delivery.instance_name, delivery.label],
                decision,
                groups(delivery.groups_before),
                groups(delivery.groups_after),
                str(len(delivery.new_snapshots)) if delivery.new_snapshots else None,
                [delivery.jira_key, delivery.jira_change or ""] if delivery.jira_key else None,
                _headline(delivery.message_subject),
            ]
        )
    return terminal.table(
        ["#", "instance / finding", "decision: reason", "groups before", "groups after", "snaps", "Jira", "message"],
        rows,
        max_widths=[2, 22, 34, 22, 18, 5, 9, 11],
    )


def _headline(subject: str | None) -> str | None:
    """ISOLATED, REVIEW, FYI...: the word the responder's SNS subject leads with."""
    if subject is None:
        return None
    match = re.match(r"^GuardDuty \w+: (.+?) i-", subject)
    return match.group(1).split(",")[0].split(" BY ")[0] if match else "sent"


def _short_reason(reason: str) -> str:
    """The reason without the rule's description (the summary table's column is narrow)."""
    rule = re.match(r'^rule "([^"]+)" \(.*?\) matched; the instance is (.*)$', reason)
    return f"({rule.group(1)}) {rule.group(2)}" if rule else reason


def run_demo(stream: TextIO = sys.stdout, *, show: bool = True, log_path: str | None = None) -> DemoReport:
    """Run the whole demo; returns what happened (for `--output json` and for tests)."""
    display = _Display(stream, show)
    style = display.style
    if log_path is None:
        with tempfile.NamedTemporaryFile(prefix="guardduty-responder-demo-", suffix=".log", delete=False) as log_file:
            log_path = log_file.name
    started = time.monotonic()
    display.line(style("GuardDuty EC2 responder: the embedded demo", "bold"))
    display.line("An embedded AWS (moto, in this process) and a Jira stand-in on 127.0.0.1: no account, no network.")
    display.line()

    containment_times = _ContainmentTimes()
    with EmbeddedAws() as aws, _function_logs(log_path, containment_times):
        handler.reset()
        try:
            run = DemoRun(aws, display, containment_times)
            display.line(style("Building the estate", "bold"))
            step_started = time.monotonic()
            with display.working("creating the VPC, groups, instances, Auto Scaling group and target group"):
                run.build_estate()
            run.show_estate()
            display.line(style(f"      took {time.monotonic() - step_started:.2f} s", "dim"))
            display.line()
            display.line(style("Delivering findings to guardduty_responder.handler.lambda_handler", "bold"))
            web_groups = run.groups_of(run.instances["web-1"])
            _deliver_the_findings(run, aws.region)
            decisions = _decide_on_the_approvals(run, aws.region)
            group = run.group(["worker-1", "worker-2", "worker-3"], aws.region)
            display.line()
            display.line(style("Summary", "bold"))
            display.line(summary_table(run.deliveries, run.group_names(), run.interface_devices()))
            display.line("[isolation] is the responder's isolation group of the VPC (no rule in or out).")
            release = run.release("web-1", web_groups)
            with aws.jira.lock:
                issues = [
                    {"key": key, "summary": issue["fields"].get("summary", ""), "comments": len(issue["comments"])}
                    for key, issue in aws.jira.issues.items()
                ]
            report = DemoReport(
                instances=dict(run.instances),
                deliveries=run.deliveries,
                release=release,
                group_names=run.group_names(),
                interface_devices=run.interface_devices(),
                jira_issues=issues,
                log_file=log_path,
                seconds=time.monotonic() - started,
                decisions=decisions,
                group=group,
            )
        finally:
            handler.reset()

    display.line()
    display.line(style("Jira stand-in", "bold"))
    for issue in report.jira_issues:
        display.line(f"  {issue['key']}  {issue['summary']}  ({issue['comments']} comment(s))")
    display.line()
    isolated = len(
        {d.instance_id for d in report.deliveries if d.decision == "isolate" and d.outcome == "handled"}
        | {d.instance_name for d in report.decisions if d.decision == "approved" and d.as_expected}
        | set(report.group.isolated_after_approval if report.group else [])
    )
    verdict = "complete" if report.ok else style("FAILED", "red")
    display.line(
        style(f"Demo {verdict} in {report.seconds:.1f} s", "bold")
        + f": {len(report.deliveries)} findings delivered, {isolated} instances isolated, "
        f"{'1 released' if report.release and report.release.restored else 'release failed'}."
    )
    display.line(f"The function's JSON logs (what CloudWatch Logs would hold): {log_path}")
    display.line("Next: `make test`, `guardduty-responder --help`, and the README's Deploy section.")
    return report


_DETECTOR = "5cc4f1a9e2b84d7f9a3e6b1d8c2f0a47"


def group_finding_event(region: str, instance_ids: Sequence[str], *, seed: str) -> dict[str, Any]:
    """An Extended Threat Detection group finding (attack sequence) naming these instances through their Auto
    Scaling group, in the shape of tests/fixtures/events/attack_sequence_instance_group.json."""
    event = _event(
        seed,
        f"{seed}/event",
        region,
        "AttackSequence:EC2/CompromisedInstanceGroup",
        9,
        "Potential compromise of a group of EC2 instances indicated by a sequence of actions.",
        "GuardDuty detected a sequence of suspicious actions across the Auto Scaling group workers.",
    )
    group = {
        "uid": f"arn:aws:autoscaling:{region}:{ACCOUNT_ID}:autoScalingGroup:0:autoScalingGroupName/workers",
        "name": "workers",
        "accountId": ACCOUNT_ID,
        "region": region,
        "resourceType": "AUTOSCALING_AUTO_SCALING_GROUP",
        "data": {"autoscalingAutoScalingGroup": {"ec2InstanceUids": list(instance_ids)}},
    }
    event["detail"]["resource"] = {"resourceType": "AttackSequence"}
    event["detail"]["service"] = {
        "serviceName": "guardduty",
        "detectorId": _DETECTOR,
        "featureName": "Correlation",
        "resourceRole": "TARGET",
        "archived": False,
        "count": 1,
        "detection": {
            "sequence": {
                "uid": hashlib.sha256(f"{seed}/sequence".encode()).hexdigest()[:32],
                "description": "Cryptocurrency mining and a command and control connection across workers.",
                "resources": [group],
                "signals": [],
            }
        },
    }
    return event


_SCHEDULED = {"source": "aws.events", "detail-type": "Scheduled Event", "id": "demo-sweep", "detail": {}}


def _decide_on_the_approvals(run: DemoRun, region: str) -> list[DecisionReport]:
    """Two medium-severity findings wait for a person: one is approved (the sweep isolates it), one rejected."""
    waiting = []
    for name, address in (("reports-1", "198.51.100.31"), ("batch-1", "198.51.100.32")):
        event = point_event_at(
            finding_event(
                "Recon:EC2/Portscan",
                5,
                seed=f"demo/{name}/portscan",
                region=region,
                role="ACTOR",
                title=f"{name} is performing outbound port scans against remote host {address}.",
                action=_connection("OUTBOUND", address, 3389, "RDP"),
            ),
            run.aws.describe(run.instances[name]),
        )
        waiting.append(run.deliver("medium severity: approval", event, name).finding_id)
    return [
        run.decide("reports-1", waiting[0], approve=True, by="Ana (on call)"),
        run.decide("batch-1", waiting[1], approve=False, by="Ben (SOC)", reason="the nightly inventory scan, CHG-77"),
    ]


def _deliver_the_findings(run: DemoRun, region: str) -> None:
    def about(name: str, event: dict[str, Any]) -> dict[str, Any]:
        return point_event_at(event, run.aws.describe(run.instances[name]))

    backdoor: dict[str, Any] = dict(
        seed="demo/web-1/backdoor",
        region=region,
        title="web-1 is querying a domain name associated with a known command and control server.",
        action=_dns_request("c2-beacon.example"),
    )
    run.deliver(
        "real finding", about("web-1", finding_event("Backdoor:EC2/C&CActivity.B!DNS", 8, count=3, **backdoor)), "web-1"
    )
    run.deliver(
        "repeat of #1",
        about("web-1", finding_event("Backdoor:EC2/C&CActivity.B!DNS", 8, count=9, **backdoor)),
        "web-1",
    )
    run.deliver(
        "new finding, same host",
        about(
            "web-1",
            finding_event(
                "CryptoCurrency:EC2/BitcoinTool.B!DNS",
                8,
                seed="demo/web-1/bitcoin",
                region=region,
                title="web-1 is querying a domain name that is associated with Bitcoin-related activity.",
                action=_dns_request("pool.mining.example"),
            ),
        ),
        "web-1",
    )
    run.deliver(
        "GuardDuty sample",
        finding_event(
            "Trojan:EC2/DNSDataExfiltration",
            8,
            seed="demo/sample",
            region=region,
            sample=True,
            title="[SAMPLE] Data exfiltration through DNS queries from EC2 instance i-99999999.",
            action=_dns_request("GeneratedFindingDomainName"),
        ),
        "(sample placeholder)",
    )
    run.deliver(
        "exempt instance",
        about(
            "build-runner",
            finding_event(
                "UnauthorizedAccess:EC2/TorClient",
                8,
                seed="demo/build-runner/tor",
                region=region,
                title="build-runner is making connections to a Tor Guard or an Authority node.",
                action=_connection("OUTBOUND", "192.0.2.44", 9001, "Unknown"),
            ),
        ),
        "build-runner",
    )
    run.deliver(
        "port probe (attacked)",
        about(
            "bastion",
            finding_event(
                "Recon:EC2/PortProbeUnprotectedPort",
                2,
                seed="demo/bastion/probe",
                region=region,
                role="TARGET",
                title="Unprotected port on bastion is being probed.",
                action=_port_probe("203.0.113.50", 22, "SSH"),
            ),
        ),
        "bastion",
    )
    run.deliver(
        "in ASG + target group",
        about(
            "api",
            finding_event(
                "UnauthorizedAccess:EC2/SSHBruteForce",
                8,
                seed="demo/api/ssh",
                region=region,
                role="ACTOR",
                title="api is performing SSH brute force attacks against 198.51.100.23.",
                action=_connection("OUTBOUND", "198.51.100.23", 22, "SSH"),
            ),
        ),
        "api",
    )
    forged = about(
        "web-1",
        finding_event(
            "Backdoor:EC2/C&CActivity.B",
            8,
            seed="demo/forged",
            region=region,
            title="An event sent to the function by someone other than GuardDuty.",
            action=_connection("OUTBOUND", "192.0.2.99", 443, "HTTPS"),
        ),
    )
    forged["source"] = "evil.attacker"
    run.deliver("forged event", forged, "web-1", raised=False)
