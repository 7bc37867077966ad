"""Evidence (README, "What happens to a finding"): out of its Auto Scaling group and target groups, so nothing terminates it."""

from __future__ import annotations

import threading
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError
from moto.core.botocore_stubber import BotocoreStubber

from guardduty_responder import handler
from guardduty_responder.responder import IncompleteResponseError

from conftest import REGION, Stack


class LostAnswers:
    """Every request of one EC2 action is carried out by moto, then its answer is lost (a read timeout).

    Hooked on moto's `before-send` handler, which every client's requests pass whichever client the
    responder makes the call with, so it counts each HTTP attempt, botocore's own retries included.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, action: str) -> None:
        self.requests = 0
        self.losing = True
        self._marker = f"Action={action}&".encode()
        self._lock = threading.Lock()
        answer = BotocoreStubber.process_request

        def carried_out_then_lost(stubber: Any, request: Any) -> Any:
            body = request.body.encode() if isinstance(request.body, str) else request.body or b""
            if self._marker not in body:
                return answer(stubber, request)
            with self._lock:
                self.requests += 1
            response = answer(stubber, request)
            if self.losing:
                raise ReadTimeoutError(endpoint_url=request.url)
            return response

        monkeypatch.setattr(BotocoreStubber, "process_request", carried_out_then_lost)


def test_a_lost_createsnapshots_answer_is_never_retried_and_the_retry_reuses_its_snapshots(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CreateSnapshots takes no client token: AWS takes a set of snapshots for every request it
    receives, so botocore retrying a request whose answer was lost takes a second set. moto cannot
    lose an answer: here it carries the request out, and the answer is then lost as a read timeout."""
    instance_id = stack.launch()
    event = stack.event("tor_client", instance_id)
    lost = LostAnswers(monkeypatch, "CreateSnapshots")

    with pytest.raises(IncompleteResponseError, match="snapshots"):
        stack.invoke(event)

    assert lost.requests == 1
    taken = sorted(snapshot["SnapshotId"] for snapshot in stack.snapshots_of(instance_id))
    assert len(taken) == 2  # one set: the instance's two volumes
    assert stack.record(event["detail"]["id"])["steps"]["snapshots"]["status"] == "failed"
    assert stack.isolated(instance_id)

    lost.losing = False
    summary = stack.invoke(event)

    assert lost.requests == 1  # found by the finding's tag, not taken again
    assert summary["snapshot_ids"] == taken
    assert sorted(snapshot["SnapshotId"] for snapshot in stack.snapshots_of(instance_id)) == taken
    assert stack.record(event["detail"]["id"])["completed"] is True


def test_an_instance_in_an_autoscaling_group_behind_a_target_group_is_taken_out_of_service(stack: Stack) -> None:
    autoscaling = boto3.client("autoscaling", region_name=REGION)
    elbv2 = boto3.client("elbv2", region_name=REGION)
    stack.ec2.create_launch_template(
        LaunchTemplateName="web", LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.micro"}
    )
    target_group = elbv2.create_target_group(
        Name="web", Protocol="HTTP", Port=80, VpcId=stack.vpc_id, TargetType="instance"
    )["TargetGroups"][0]["TargetGroupArn"]
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="web",
        LaunchTemplate={"LaunchTemplateName": "web"},
        MinSize=0,
        MaxSize=3,
        DesiredCapacity=1,
        VPCZoneIdentifier=stack.subnet_id,
        TargetGroupARNs=[target_group],
    )
    instance_id = autoscaling.describe_auto_scaling_instances()["AutoScalingInstances"][0]["InstanceId"]
    event = stack.event("tor_client", instance_id)

    summary = stack.invoke(event)

    assert summary["isolated"] is True
    state = autoscaling.describe_auto_scaling_instances(InstanceIds=[instance_id])["AutoScalingInstances"][0]
    assert state["LifecycleState"] == "Standby"
    targets = elbv2.describe_target_health(TargetGroupArn=target_group)["TargetHealthDescriptions"]
    assert instance_id not in [target["Target"]["Id"] for target in targets]
    record = stack.record(event["detail"]["id"])
    assert record["autoscaling_group"] == "web"
    assert record["target_groups"] == [target_group]


def test_an_instance_registered_directly_in_a_target_group_is_deregistered(stack: Stack) -> None:
    elbv2 = boto3.client("elbv2", region_name=REGION)
    instance_id = stack.launch()
    other = stack.launch()
    target_group = elbv2.create_target_group(
        Name="api", Protocol="HTTP", Port=8080, VpcId=stack.vpc_id, TargetType="instance"
    )["TargetGroups"][0]["TargetGroupArn"]
    elbv2.register_targets(TargetGroupArn=target_group, Targets=[{"Id": instance_id}, {"Id": other}])

    stack.invoke(stack.event("backdoor_cc_dns", instance_id))

    targets = [
        t["Target"]["Id"] for t in elbv2.describe_target_health(TargetGroupArn=target_group)["TargetHealthDescriptions"]
    ]
    assert targets == [other]


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data


def test_a_createsnapshots_answered_with_a_server_error_is_not_sent_again(stack: Stack) -> None:
    """An InternalError may come after AWS took the snapshots; botocore's standard mode retries it."""
    instance_id = stack.launch()
    event = stack.event("tor_client", instance_id)
    attempts: list[str] = []

    def internal_error(request: Any, **_: Any) -> AWSResponse:
        attempts.append(request.url)
        body = b"<Response><Errors><Error><Code>InternalError</Code><Message>try later</Message></Error></Errors></Response>"
        return AWSResponse(request.url, 500, {"Content-Type": "text/xml"}, _Body(body))

    ec2 = handler.get_responder().clients.ec2
    ec2.meta.events.register_first("before-send.ec2.CreateSnapshots", internal_error)

    with pytest.raises(IncompleteResponseError, match="snapshots: InternalError"):
        stack.invoke(event)

    assert len(attempts) == 1
    ec2.meta.events.unregister("before-send.ec2.CreateSnapshots", internal_error)
    summary = stack.invoke(event)
    assert len(summary["snapshot_ids"]) == 2 and len(stack.snapshots_of(instance_id)) == 2
