"""Evidence preservation: snapshots, termination guards, and taking the instance out of service.

Each function is one step: it returns a short description of what it did and the values to record.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from . import TAG_PREFIX, utc_timestamp
from .aws_errors import error_code
from .finding import Finding
from .isolation import InstanceFacts
from .parallel import run_parallel

SNAPSHOT_PERMISSIONS = ("ec2:CreateSnapshots", "ec2:DescribeSnapshots", "ec2:CreateTags")
PROTECT_PERMISSIONS = ("ec2:ModifyInstanceAttribute",)
AUTOSCALING_PERMISSIONS = (
    "autoscaling:DescribeAutoScalingInstances",
    "autoscaling:EnterStandby",
    "autoscaling:DetachInstances",
)
LOAD_BALANCER_PERMISSIONS = (
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth",
    "elasticloadbalancing:DeregisterTargets",
)
TAG_PERMISSIONS = ("ec2:CreateTags",)
# With SNAPSHOT_LOCK_DAYS only (estate_actions' snapshot_lock).
LOCK_PERMISSIONS = ("ec2:LockSnapshot",)
PERMISSIONS = (
    SNAPSHOT_PERMISSIONS + PROTECT_PERMISSIONS + AUTOSCALING_PERMISSIONS + LOAD_BALANCER_PERMISSIONS + TAG_PERMISSIONS
)

FINDING_ID_TAG = f"{TAG_PREFIX}finding-id"
# EnterStandby is refused when it would take the group below its minimum size, and for
# instances not InService; detaching (with a replacement launched) is the way out then.
_STANDBY_REFUSED = ("ValidationError", "ScalingActivityInProgress")


def snapshot_volumes(
    ec2: Any, instance: InstanceFacts, finding: Finding, *, look_first: bool
) -> tuple[str, dict[str, Any]]:
    """One crash-consistent CreateSnapshots call for every attached EBS volume, each snapshot tagged.

    CreateSnapshots is sent once, never retried by botocore (clients.SINGLE_ATTEMPT): an attempt whose
    answer was lost may have taken the set. On a retry (`look_first`) snapshots already taken for
    this finding are found by tag and reused.
    """
    if not instance.volumes:
        return "no EBS volume attached", {"snapshot_ids": []}
    taken_at = utc_timestamp()
    snapshots: list[dict[str, Any]] = []
    if look_first:
        snapshots = ec2.describe_snapshots(
            OwnerIds=["self"],
            Filters=[
                {"Name": f"tag:{FINDING_ID_TAG}", "Values": [finding.finding_id]},
                {"Name": f"tag:{TAG_PREFIX}instance-id", "Values": [instance.instance_id]},
            ],
        )["Snapshots"]
    if not snapshots:
        common_tags = [
            {"Key": FINDING_ID_TAG, "Value": finding.finding_id},
            {"Key": f"{TAG_PREFIX}finding-type", "Value": finding.finding_type},
            {"Key": f"{TAG_PREFIX}instance-id", "Value": instance.instance_id},
            {"Key": f"{TAG_PREFIX}taken-at", "Value": taken_at},
        ]
        snapshots = ec2.create_snapshots(
            Description=f"GuardDuty finding {finding.finding_id} on {instance.instance_id}",
            InstanceSpecification={"InstanceId": instance.instance_id, "ExcludeBootVolume": False},
            # No CopyTagsFromSource: the role may write only the responder's own tag keys.
            TagSpecifications=[{"ResourceType": "snapshot", "Tags": common_tags}],
        )["Snapshots"]
    # The volume differs per snapshot, so its tag cannot go in the shared TagSpecifications.
    run_parallel(
        lambda snapshot: ec2.create_tags(
            Resources=[snapshot["SnapshotId"]],
            Tags=[{"Key": f"{TAG_PREFIX}volume-id", "Value": snapshot["VolumeId"]}],
        ),
        snapshots,
    )
    ids = sorted(snapshot["SnapshotId"] for snapshot in snapshots)
    return f"{len(ids)} snapshot(s): {', '.join(ids)}", {"snapshot_ids": ids}


def lock_snapshots(ec2: Any, snapshot_ids: list[str], days: int) -> tuple[str, dict[str, Any]]:
    """Lock each snapshot in governance mode for `days`: it cannot be deleted until the lock expires or someone
    allowed to unlock it does. EC2 locks a snapshot that is still pending, so this follows CreateSnapshots at once.
    Locking a snapshot locked already sets the same lock again: a retry is harmless."""
    if not snapshot_ids:
        return "no snapshot to lock", {}
    for snapshot_id in snapshot_ids:
        ec2.lock_snapshot(SnapshotId=snapshot_id, LockMode="governance", LockDuration=days)
    return (
        f"{len(snapshot_ids)} snapshot(s) locked in governance mode for {days} day(s)",
        {"snapshot_lock": {"mode": "governance", "days": days}},
    )


def protect_instance(ec2: Any, instance: InstanceFacts) -> tuple[str, dict[str, Any]]:
    """Keep the instance and its volumes: no API termination, stop on shutdown, volumes survive termination."""
    ec2.modify_instance_attribute(InstanceId=instance.instance_id, DisableApiTermination={"Value": True})
    ec2.modify_instance_attribute(InstanceId=instance.instance_id, InstanceInitiatedShutdownBehavior={"Value": "stop"})
    kept = [device for device, _volume, delete_on_termination in instance.volumes if delete_on_termination]
    if kept:
        ec2.modify_instance_attribute(
            InstanceId=instance.instance_id,
            BlockDeviceMappings=[{"DeviceName": device, "Ebs": {"DeleteOnTermination": False}} for device in kept],
        )
    return "termination protection on, shutdown behaviour stop, volumes kept on termination", {}


def leave_autoscaling_group(autoscaling: Any, instance: InstanceFacts) -> tuple[str, dict[str, Any]]:
    """Move the instance to standby (or detach it) so its group neither replaces nor terminates it."""
    if instance.autoscaling_group is None:
        return "not in an Auto Scaling group", {}
    found = autoscaling.describe_auto_scaling_instances(InstanceIds=[instance.instance_id])["AutoScalingInstances"]
    if not found:
        return "not in an Auto Scaling group", {}
    group, state = found[0]["AutoScalingGroupName"], found[0]["LifecycleState"]
    if state.startswith("Standby") or state.startswith("Detach"):
        left = "standby" if state.startswith("Standby") else "detached"
        return f"already {state} in {group}", {"autoscaling_group": group, "autoscaling_left": left}
    try:
        autoscaling.enter_standby(
            AutoScalingGroupName=group, InstanceIds=[instance.instance_id], ShouldDecrementDesiredCapacity=True
        )
        return f"moved to standby in {group}", {"autoscaling_group": group, "autoscaling_left": "standby"}
    except ClientError as error:
        if error_code(error) not in _STANDBY_REFUSED:
            raise
    autoscaling.detach_instances(
        AutoScalingGroupName=group, InstanceIds=[instance.instance_id], ShouldDecrementDesiredCapacity=False
    )
    return f"detached from {group} (standby refused)", {"autoscaling_group": group, "autoscaling_left": "detached"}


def leave_target_groups(elbv2: Any, instance: InstanceFacts) -> tuple[str, dict[str, Any]]:
    """Deregister the instance from every instance-type target group of its VPC that holds it."""
    candidates = [
        group["TargetGroupArn"]
        for page in elbv2.get_paginator("describe_target_groups").paginate()
        for group in page["TargetGroups"]
        if group.get("TargetType", "instance") == "instance" and group.get("VpcId") == instance.vpc_id
    ]

    def leave(arn: str) -> list[dict[str, Any]]:
        targets = [
            description["Target"]
            for description in elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
            if description["Target"]["Id"] == instance.instance_id
        ]
        if targets:
            elbv2.deregister_targets(TargetGroupArn=arn, Targets=targets)
        return [{"arn": arn, "port": int(target.get("Port", 0))} for target in targets]

    # Each target with its port, for a release that returns the instance to service.
    targets = sorted(
        (t for found in run_parallel(leave, candidates) for t in found), key=lambda t: (t["arn"], t["port"])
    )
    left = sorted({target["arn"] for target in targets})
    return f"deregistered from {len(left)} target group(s)", {"target_groups": left, "deregistered_targets": targets}


def tag_instance(ec2: Any, instance: InstanceFacts, finding: Finding, isolated_at: str) -> tuple[str, dict[str, Any]]:
    # Its network interfaces too: the release role may move only interfaces the responder tagged.
    ec2.create_tags(
        Resources=[instance.instance_id, *(interface.eni_id for interface in instance.interfaces)],
        Tags=[
            {"Key": FINDING_ID_TAG, "Value": finding.finding_id},
            {"Key": f"{TAG_PREFIX}finding-type", "Value": finding.finding_type},
            {"Key": f"{TAG_PREFIX}isolated-at", "Value": isolated_at},
        ],
    )
    return "instance and its network interfaces tagged", {}
