"""Evidence (README, "What happens to a finding"): out of its Auto Scaling group and target groups, so nothing terminates it."""

from __future__ import annotations

import boto3

from conftest import REGION, Stack


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

    stack.invoke(stack.event("recon_portscan", instance_id))

    targets = [
        t["Target"]["Id"] for t in elbv2.describe_target_health(TargetGroupArn=target_group)["TargetHealthDescriptions"]
    ]
    assert targets == [other]
