"""Group findings (README, "Group findings"): an attack sequence naming several EC2 instances
(`AttackSequence:EC2/CompromisedInstanceGroup`) opens one incident per instance, linked to the group finding, with
one Jira issue and one message for the group; it is contained all or nothing under the circuit breaker, a few
instances at a time, EC2's throttling waited out.
"""

from __future__ import annotations

import copy
import datetime
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from guardduty_responder import handler, responder
from guardduty_responder.finding import MalformedFindingError, parse_finding
from guardduty_responder.ledger import approval_key, incident_key
from guardduty_responder_tools import cli

from conftest import ACCOUNT, LambdaContext, Stack, load_event

SCHEDULED = {"source": "aws.events", "detail-type": "Scheduled Event", "id": "sweep", "detail": {}}
ISOLATE_GROUPS = json.dumps([{"name": "isolate-groups", "resource_types": ["AttackSequence"], "action": "isolate"}])


def group_event(stack: Stack, instance_ids: list[str], finding_id: str | None = None) -> dict[str, Any]:
    """The fixture's group finding re-pointed at these instances: its Auto Scaling group holds them all, and the
    first two are named as EC2_INSTANCE resources too (one by ARN, one by id), as in the fixture."""
    event = load_event("attack_sequence_instance_group")
    detail = event["detail"]
    if finding_id is not None:
        detail["id"] = finding_id
    resources = detail["service"]["detection"]["sequence"]["resources"]
    resources[0]["data"]["autoscalingAutoScalingGroup"]["ec2InstanceUids"] = list(instance_ids)
    resources[1]["uid"] = f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/{instance_ids[0]}"
    resources[1]["name"] = instance_ids[0]
    resources[2]["uid"] = resources[2]["name"] = instance_ids[min(1, len(instance_ids) - 1)]
    stack.guardduty.add(detail)
    return event


def sweep() -> dict[str, Any]:
    return handler.lambda_handler(copy.deepcopy(SCHEDULED), LambdaContext(120))


def breaker_count(stack: Stack) -> int:
    hour = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H")
    item = stack.record(f"breaker#{ACCOUNT}#{hour}")
    return len(item["findings"]) if item else 0


# -- what the finding names ---------------------------------------------------------------------------------


def test_a_group_finding_names_the_instances_of_its_sequence_by_id_arn_or_group() -> None:
    finding = parse_finding(load_event("attack_sequence_instance_group"))

    assert (finding.resource_type, finding.instance_id, finding.severity) == ("AttackSequence", "", 9.0)
    # The Auto Scaling group's three, two of them also named as EC2_INSTANCE resources (by ARN and by id).
    assert finding.group_instances == ("i-0a1b2c3d4e5f60718", "i-0b2c3d4e5f6071829", "i-0c3d4e5f607182930")


def test_instances_of_another_account_are_shown_not_acted_on_and_a_sequence_naming_none_is_refused() -> None:
    event = load_event("attack_sequence_instance_group")
    resources = event["detail"]["service"]["detection"]["sequence"]["resources"]
    resources[0]["accountId"] = "210987654321"
    finding = parse_finding(event)
    assert finding.group_elsewhere == ("i-0c3d4e5f607182930",)
    assert finding.group_instances == ("i-0a1b2c3d4e5f60718", "i-0b2c3d4e5f6071829")

    for item in resources:
        item["resourceType"], item["data"] = "S3_BUCKET", {}
    with pytest.raises(MalformedFindingError, match=r"sequence.resources names no EC2 instance"):
        parse_finding(event)


# -- approval, the default for groups ------------------------------------------------------------------------


def test_a_group_of_three_waits_for_approval_then_the_sweep_contains_all_three(stack: Stack) -> None:
    instances = [stack.launch() for _ in range(3)]
    before = {instance_id: stack.groups_of(instance_id) for instance_id in instances}
    event = group_event(stack, instances)
    group_id = event["detail"]["id"]

    summary = stack.invoke(event)

    assert (summary["action"], summary["rule"]) == ("approve", "approve-instance-groups")
    assert {i: stack.groups_of(i) for i in instances} == before and breaker_count(stack) == 0
    (issue,) = stack.jira.issues.values()
    description = issue["fields"]["description"].replace("\\", "")
    assert issue["fields"]["summary"].startswith("[GuardDuty CRITICAL] Approval needed 3 instance(s)")
    assert all(f"* {instance_id}: awaiting approval" in description for instance_id in instances)
    (message,) = stack.messages()
    assert "APPROVAL NEEDED 3 instance(s)" in message["Subject"]
    assert all(instance_id in message["Message"] for instance_id in instances)

    assert cli.main(["approve", group_id, "--by", "Ana"]) == cli.EXIT_OK
    swept = sweep()

    assert swept["approvals_approved"] == [group_id] and swept["resumed"] == [group_id]
    assert all(stack.isolated(instance_id) for instance_id in instances)
    assert all(len(stack.snapshots_of(instance_id)) == 2 for instance_id in instances)
    # One incident per instance, each linked to the group finding; the group took three places at once.
    for instance_id in instances:
        incident = stack.record(incident_key(instance_id))
        member = stack.record(incident["finding_id"])
        assert incident["state"] == "isolated" and member["group_finding_id"] == group_id
    assert breaker_count(stack) == 3
    # Still one issue (commented) and one more message, for the group.
    assert len(stack.jira.issues) == 1 and "after approval" in issue["comments"][-1]
    (message,) = stack.messages()
    assert "ISOLATED 3 instance(s)" in message["Subject"]
    assert stack.record(approval_key(group_id))["state"] == "honoured"
    # Released one by one, as any incident.
    assert cli.main(["release", instances[0]]) == cli.EXIT_OK
    assert stack.groups_of(instances[0]) == before[instances[0]] and stack.isolated(instances[1])


# -- all or nothing under the circuit breaker -----------------------------------------------------------------


def test_a_group_isolates_all_its_instances_at_once_when_the_hour_has_room(stack: Stack) -> None:
    stack.configure(RESPONSE_RULES=ISOLATE_GROUPS, MAX_ISOLATIONS_PER_HOUR="3")
    instances = [stack.launch() for _ in range(3)]

    summary = stack.invoke(group_event(stack, instances))

    assert summary["isolated"] is True and all(stack.isolated(i) for i in instances)
    assert [line.split(":")[1].strip().split(" ")[0] for line in summary["members"]] == ["isolated"] * 3
    assert breaker_count(stack) == 3 and len(stack.jira.issues) == 1 and len(stack.messages()) == 1


def test_a_group_larger_than_the_hour_s_remaining_places_waits_for_approval_with_nothing_changed(
    stack: Stack,
) -> None:
    stack.configure(RESPONSE_RULES=ISOLATE_GROUPS, MAX_ISOLATIONS_PER_HOUR="3")
    single = stack.launch()
    stack.configure(
        RESPONSE_RULES=json.dumps(
            [*json.loads(ISOLATE_GROUPS), {"name": "isolate-rest", "involvement": "implicated", "action": "isolate"}]
        )
    )
    stack.invoke(stack.event("tor_client", single))  # one of the hour's three places
    instances = [stack.launch() for _ in range(3)]
    before = {instance_id: stack.groups_of(instance_id) for instance_id in instances}

    summary = stack.invoke(group_event(stack, instances))

    assert (summary["action"], summary["decision"]) == ("approve", "approval-needed")
    assert "the circuit breaker has 2 of the 3 places the group needs" in summary["reason"]
    assert {i: stack.groups_of(i) for i in instances} == before and breaker_count(stack) == 1


# -- throttling and exemptions --------------------------------------------------------------------------------


def test_a_group_of_50_is_contained_whole_while_ec2_throttles(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    # The waits as the code grows them, a hundred times shorter.
    monkeypatch.setattr(responder, "_THROTTLE_BASE_SECONDS", 0.005)
    monkeypatch.setattr(responder, "_THROTTLE_MAX_SECONDS", 0.08)
    stack.configure(RESPONSE_RULES=ISOLATE_GROUPS, MAX_ISOLATIONS_PER_HOUR="50")
    instances = [stack.launch() for _ in range(50)]
    event = group_event(stack, instances)
    throttled = {"left": 40, "raised": 0}

    def slow_down(**_: Any) -> None:
        if throttled["left"] > 0:
            throttled["left"] -= 1
            throttled["raised"] += 1
            raise ClientError({"Error": {"Code": "RequestLimitExceeded", "Message": "Request limit exceeded."}}, "x")

    clients = handler.get_responder().clients
    clients.ec2.meta.events.register("before-call.ec2.ModifyNetworkInterfaceAttribute", slow_down)

    summary = stack.invoke(event, remaining_seconds=600)

    assert throttled["raised"] == 40
    assert summary["isolated"] is True and summary["steps"]["contain"] == "done"
    assert sum(1 for instance_id in instances if stack.isolated(instance_id)) == 50
    assert breaker_count(stack) == 50


def test_an_exempt_instance_of_a_group_is_held_while_the_others_are_isolated(stack: Stack) -> None:
    stack.configure(RESPONSE_RULES=ISOLATE_GROUPS)
    exempt = stack.launch(tags={"Name": "db", "guardduty-responder:exempt": "true"})
    others = [stack.launch() for _ in range(2)]

    summary = stack.invoke(group_event(stack, [*others, exempt]))

    assert all(stack.isolated(i) for i in others) and not stack.isolated(exempt)
    assert any(line.startswith(f"{exempt}: not isolated (exempt)") for line in summary["members"])


def test_a_repeat_of_a_group_finding_changes_nothing(stack: Stack) -> None:
    stack.configure(RESPONSE_RULES=ISOLATE_GROUPS)
    instances = [stack.launch() for _ in range(2)]
    event = group_event(stack, instances)
    stack.invoke(event)
    stack.messages()
    again = copy.deepcopy(event)
    again["detail"]["service"]["count"] = 2

    summary = stack.invoke(again)

    assert summary["repeat"] is True and stack.messages() == [] and len(stack.jira.issues) == 1


# -- the command line ------------------------------------------------------------------------------------------


def test_replaying_a_group_finding_lists_its_instances_and_local_replay_says_why_it_cannot(
    stack: Stack, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    instances = [stack.launch() for _ in range(3)]
    path = tmp_path / "group.json"
    path.write_text(json.dumps(group_event(stack, instances)))
    capsys.readouterr()

    assert cli.main(["replay", str(path)]) == cli.EXIT_OK

    shown = capsys.readouterr().out
    assert "approve (approval-needed)" in shown and all(instance_id in shown for instance_id in instances)
    assert cli.main(["replay", "--local", str(path)]) == cli.EXIT_USAGE
    assert "this group finding names 3" in capsys.readouterr().err


# -- what an approval covers, and groups the breaker or the account cannot hold ----------------------------


def test_an_approved_group_isolates_the_instances_the_approver_saw_and_no_later_one(stack: Stack) -> None:
    instances = [stack.launch() for _ in range(3)]
    event = group_event(stack, instances)
    group_id = event["detail"]["id"]
    stack.invoke(event)
    assert cli.main(["approve", group_id]) == cli.EXIT_OK
    # GuardDuty adds an instance to the group after the approval was asked for and given.
    late = stack.launch()
    group_event(stack, [*instances, late])

    swept = sweep()

    assert swept["approvals_approved"] == [group_id]
    assert all(stack.isolated(i) for i in instances) and not stack.isolated(late)
    contain = stack.record(group_id)["steps"]["contain"]["detail"]
    assert f"{late}: not approved" in contain and breaker_count(stack) == 3


def test_a_group_naming_no_instance_here_or_too_many_is_reported_for_a_person(stack: Stack) -> None:
    event = load_event("attack_sequence_instance_group")
    for resource in event["detail"]["service"]["detection"]["sequence"]["resources"]:
        resource["accountId"] = "210987654321"
    elsewhere = stack.invoke(event)
    assert (elsewhere["action"], elsewhere["isolated"]) == ("report", False)
    assert "names no instance in account 123456789012" in elsewhere["reason"]

    many = load_event("attack_sequence_instance_group")
    many["detail"]["id"] = "9f" * 16
    resources = many["detail"]["service"]["detection"]["sequence"]["resources"]
    resources[0]["data"]["autoscalingAutoScalingGroup"]["ec2InstanceUids"] = [f"i-{n:017x}" for n in range(1, 121)]
    too_many = stack.invoke(many)
    assert (too_many["action"], too_many["isolated"]) == ("report", False)
    assert "122 instances, more than the 100" in too_many["reason"]  # 120 in the group, 2 named alone


def test_a_group_larger_than_the_hour_s_whole_limit_is_held_by_the_breaker_not_sent_for_approval(
    stack: Stack,
) -> None:
    stack.configure(MAX_ISOLATIONS_PER_HOUR="2")
    instances = [stack.launch() for _ in range(3)]

    summary = stack.invoke(group_event(stack, instances))

    assert (summary["action"], summary["decision"]) == ("hold", "circuit-breaker")
    assert stack.record(approval_key(summary["finding_id"])) is None


def test_a_group_member_never_enters_the_sweep_s_index(stack: Stack) -> None:
    stack.configure(RESPONSE_RULES=ISOLATE_GROUPS)
    instances = [stack.launch() for _ in range(2)]
    event = group_event(stack, instances)
    seen: list[dict[str, Any]] = []
    dynamodb = handler.get_responder().clients.dynamodb
    dynamodb.meta.events.register(
        "before-parameter-build.dynamodb.TransactWriteItems", lambda params, **_: seen.append(params)
    )
    dynamodb.meta.events.register("before-parameter-build.dynamodb.PutItem", lambda params, **_: seen.append(params))

    stack.invoke(event)

    written = [
        part.get("Put", {}).get("Item") or params.get("Item")
        for params in seen
        for part in params.get("TransactItems", [{}])
    ]
    members = [item for item in written if item and "/" in item["pk"]["S"]]
    assert len(members) == 2 and all("unfinished" not in item for item in members)
