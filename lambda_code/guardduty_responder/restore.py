"""Release: put back what containment changed besides the security groups, item by item.

The groups go back first (`isolation.restore_groups`); then the instance profile, the metadata
options and the connection-tracking timeouts. The revocation of the instance's older credentials
stays unless a person asks for it to go (those sessions are better left dead), and the instance
returns to its Auto Scaling group and target groups only when asked. Each item is one `Restored`:
done, left as it is (and why), or failed (the others still run).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from .aws_errors import describe_error, error_code
from .identity import (
    METADATA_OPTIONS,
    InstanceRole,
    live_associations,
    protected_role,
    revocation_cutoff,
    revocation_name,
    roles_of,
)
from .steps import STEP_ERRORS

if TYPE_CHECKING:
    from .clients import AwsClients
    from .ledger import Incident, Ledger

# Besides the identity steps' own reads (identity.IDENTITY_PERMISSIONS), with a person's credentials.
PERMISSIONS = (
    "ec2:AssociateIamInstanceProfile",
    "iam:PassRole",
    "ec2:ModifyInstanceMetadataOptions",
    "iam:DeleteRolePolicy",
    "autoscaling:ExitStandby",
    "autoscaling:AttachInstances",
    "elasticloadbalancing:RegisterTargets",
)
# Associating a profile passes its role to EC2: IAM authorises the call with both.
IAM_ACTIONS_OF_CALLS = {"ec2:AssociateIamInstanceProfile": ("ec2:AssociateIamInstanceProfile", "iam:PassRole")}


@dataclass(frozen=True)
class Restored:
    item: str
    status: str  # "restored", "left", "failed"
    detail: str

    def line(self) -> str:
        return f"{self.item}: {self.detail}" if self.status != "failed" else f"{self.item}: FAILED, {self.detail}"

    def to_record(self) -> dict[str, str]:
        return {"item": self.item, "status": self.status, "detail": self.detail[:500]}


def attempt(item: str, action: Callable[[], tuple[str, str]]) -> Restored:
    """One item; an AWS refusal is a failed item, not a failed release (the groups are back already)."""
    try:
        status, detail = action()
    except STEP_ERRORS as error:
        return Restored(item, "failed", describe_error(error))
    return Restored(item, status, detail)


def instance_profile(
    ec2: Any, iam: Any, instance_id: str, profiles: list[str], *, seen: str | None, protected: Iterable[str]
) -> tuple[str, str]:
    """Associate the profile containment removed again: only the one the instance had when it was isolated, and
    never one whose role is protected (a record that says otherwise is not followed)."""
    live = live_associations(ec2, instance_id)
    if live:
        return "left", f"the instance has {live[0]['IamInstanceProfile']['Arn']} already: left as it is"
    profile = profiles[0]
    if len(set(profiles)) != 1 or (seen and profile != seen):
        raise RuntimeError(
            f"the record names {', '.join(profiles)}, not the profile the instance had ({seen}): left off"
        )
    refused = [f"{role.name} {why}" for role in roles_of(iam, [profile]) if (why := protected_role(role, protected))]
    if refused:
        raise RuntimeError(f"{profile} holds role {'; '.join(refused)}: left off")
    ec2.associate_iam_instance_profile(IamInstanceProfile={"Arn": profile}, InstanceId=instance_id)
    return "restored", f"{profile} associated again"


def metadata_options(ec2: Any, instance_id: str, before: Mapping[str, Any]) -> tuple[str, str]:
    options = {key: before[key] for key in METADATA_OPTIONS if key in before}
    options.setdefault("HttpEndpoint", "enabled")
    if "HttpPutResponseHopLimit" in options:
        options["HttpPutResponseHopLimit"] = int(options["HttpPutResponseHopLimit"])
    ec2.modify_instance_metadata_options(InstanceId=instance_id, **options)
    shown = ", ".join(f"{key} {value}" for key, value in sorted(options.items()))
    return "restored", f"metadata options back to {shown}"


def connection_tracking(ec2: Any, before: Mapping[str, Mapping[str, Any]]) -> tuple[str, str]:
    for eni_id, timeouts in sorted(before.items()):
        ec2.modify_network_interface_attribute(
            NetworkInterfaceId=eni_id,
            ConnectionTrackingSpecification={key: int(value) for key, value in timeouts.items()},
        )
    shown = "; ".join(
        f"{eni}: " + ", ".join(f"{key} {int(value)} s" for key, value in sorted(timeouts.items()))
        for eni, timeouts in sorted(before.items())
    )
    return "restored", f"timeouts back to {shown}"


def remove_revocations(
    iam: Any, instance_id: str, revocations: list[Mapping[str, Any]], *, protected: Iterable[str]
) -> tuple[str, str]:
    """Delete this instance's revocation on each role the record names: only a policy named and shaped as the
    responder writes it for this instance, on a role that is not protected. Anything else is refused, untouched."""
    name = revocation_name(instance_id)
    foreign = sorted(
        {
            f"{r.get('policy')} on role {r.get('role')}"
            for r in revocations
            if r.get("policy") != name or protected_role(InstanceRole(str(r.get("role", ""))), protected)
        }
    )
    if foreign:
        raise RuntimeError(f"not this instance's revocation, left alone: {', '.join(foreign)}")
    removed = []
    for role in sorted({str(r["role"]) for r in revocations}):
        try:
            document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        except ClientError as error:
            if error_code(error) != "NoSuchEntity":
                raise
            removed.append(f"{name} on role {role} (gone already)")
            continue
        if revocation_cutoff(document, instance_id) is None:
            raise RuntimeError(f"{name} on role {role} is not a revocation as the responder writes it: left alone")
        iam.delete_role_policy(RoleName=role, PolicyName=name)
        removed.append(f"{name} on role {role}")
    return "restored", "revocation removed: " + ", ".join(removed)


def autoscaling_group(autoscaling: Any, instance_id: str, group: str) -> tuple[str, str]:
    found = autoscaling.describe_auto_scaling_instances(InstanceIds=[instance_id])["AutoScalingInstances"]
    state = found[0]["LifecycleState"] if found else ""
    if state.startswith("Standby"):
        autoscaling.exit_standby(AutoScalingGroupName=group, InstanceIds=[instance_id])
        return "restored", f"out of standby in {group}"
    if found:
        return "left", f"{state} in {found[0]['AutoScalingGroupName']}: left as it is"
    autoscaling.attach_instances(AutoScalingGroupName=group, InstanceIds=[instance_id])
    return "restored", f"attached to {group} again"


def target_groups(elbv2: Any, instance_id: str, targets: list[Mapping[str, Any]]) -> tuple[str, str]:
    for target in targets:
        description: dict[str, Any] = {"Id": instance_id}
        if target.get("port"):
            description["Port"] = int(target["port"])
        elbv2.register_targets(TargetGroupArn=target["arn"], Targets=[description])
    return "restored", f"registered in {len(targets)} target group(s) again"


def saved_for_release(ledger: Ledger, incident: Incident) -> dict[str, Any]:
    """What the incident's findings saved (the first finding's first; every finding's revocations), and the
    instance profile the first finding saw on the instance."""
    saved: dict[str, Any] = {"revocations": []}
    for finding_id in [incident.finding_id, *(f for f in incident.findings if f != incident.finding_id)]:
        record = ledger.get_finding(finding_id)
        if record is None:
            continue
        if finding_id == incident.finding_id and record.instance:
            saved["profile_seen"] = str(record.instance.get("profile_arn", ""))
        for key, value in record.saved.items():
            if key == "revocations":
                saved[key] += [r for r in value if isinstance(r, Mapping) and r not in saved[key]]
            elif value and key not in saved:
                saved[key] = value
    return saved


def restore_the_rest(
    clients: AwsClients,
    instance_id: str,
    saved: Mapping[str, Any],
    *,
    protected: Iterable[str],
    credentials_too: bool,
    service_too: bool,
) -> list[Restored]:
    """Every item besides the groups, in order: profile, metadata, timeouts, credentials, service."""
    ec2, iam, items = clients.ec2, clients.iam, []
    if saved.get("removed_instance_profiles"):
        profiles, seen = list(saved["removed_instance_profiles"]), saved.get("profile_seen")
        items.append(
            attempt(
                "instance profile",
                lambda: instance_profile(ec2, iam, instance_id, profiles, seen=seen, protected=protected),
            )
        )
    if saved.get("metadata_before"):
        before = saved["metadata_before"]
        items.append(attempt("metadata service", lambda: metadata_options(ec2, instance_id, before)))
    if saved.get("tracking_before"):
        tracking = saved["tracking_before"]
        items.append(attempt("connection tracking", lambda: connection_tracking(ec2, tracking)))
    items += _credentials(iam, instance_id, saved, asked=credentials_too, protected=protected)
    if service_too:
        items += _service(clients, instance_id, saved)
    elif saved.get("autoscaling_group") or saved.get("target_groups"):
        items.append(Restored("service", "left", "out of service as evidence left it (--return-to-service)"))
    return items


def _credentials(
    iam: Any, instance_id: str, saved: Mapping[str, Any], *, asked: bool, protected: Iterable[str]
) -> list[Restored]:
    revocations = [r for r in saved.get("revocations", []) if isinstance(r, Mapping)]
    if not revocations:
        return []
    if not asked:
        before = revocations[0].get("before", "")
        return [
            Restored(
                "credentials",
                "left",
                f"credentials issued before {before} stay revoked (--restore-credentials removes the revocation)",
            )
        ]
    return [attempt("credentials", lambda: remove_revocations(iam, instance_id, revocations, protected=protected))]


def _service(clients: AwsClients, instance_id: str, saved: Mapping[str, Any]) -> list[Restored]:
    """Back into its Auto Scaling group and the target groups it left, as evidence recorded them."""
    items = []
    if saved.get("autoscaling_group"):
        group = str(saved["autoscaling_group"])
        items.append(attempt("Auto Scaling", lambda: autoscaling_group(clients.autoscaling, instance_id, group)))
    targets = [t for t in saved.get("deregistered_targets", []) if isinstance(t, Mapping)] or [
        {"arn": arn} for arn in saved.get("target_groups", [])
    ]
    if targets:
        items.append(attempt("target groups", lambda: target_groups(clients.elbv2, instance_id, targets)))
    return items
