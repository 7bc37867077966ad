"""Only what GuardDuty confirms is acted on (README, "GuardDuty confirms every finding").

A forged event changes nothing: it is recorded apart (it can never block the real finding) and
announced as unconfirmed. What GuardDuty holds decides, not what the event says.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from guardduty_responder import handler
from guardduty_responder.guardduty import GuardDutyError
from guardduty_responder.ticketing import defanged

from conftest import TABLE, Stack


def unconfirmed_records(stack: Stack) -> list[dict[str, Any]]:
    from boto3.dynamodb.types import TypeDeserializer

    items = stack.dynamodb.scan(TableName=TABLE)["Items"]
    plain = [{k: TypeDeserializer().deserialize(v) for k, v in item.items()} for item in items]
    return [item for item in plain if item["pk"].startswith("unconfirmed#")]


def assert_nothing_changed_and_announced(
    stack: Stack, instance_id: str, before: dict[str, list[str]], summary: dict[str, Any], why: str
) -> None:
    assert (summary["outcome"], summary["decision"], summary["isolated"]) == ("unconfirmed", "unconfirmed", False)
    assert summary["reason"] == "not confirmed by GuardDuty; nothing was changed", "what GuardDuty holds stays inside"
    assert stack.groups_of(instance_id) == before and stack.responder_groups() == {}
    assert stack.snapshots_of(instance_id) == [] and stack.jira.issues == {}
    (message,) = stack.messages()
    # The message shows the forged values defanged, as every value from the finding (the record keeps them).
    assert "UNCONFIRMED" in message["Subject"] and defanged(why, 2 * len(why)) in message["Message"]
    (record,) = unconfirmed_records(stack)
    assert record["pk"].startswith(f"unconfirmed#{summary['finding_id']}#") and why in record["reason"]


@pytest.mark.parametrize(
    ("forge", "why"),
    [
        (lambda event: event.update(source="evil.attacker"), "the event's source is 'evil.attacker'"),
        (lambda event: event.update(region="eu-west-1"), "the event is from region 'eu-west-1'"),
    ],
    ids=["another source", "another region"],
)
def test_an_event_not_from_guardduty_here_changes_nothing_and_is_announced(stack: Stack, forge: Any, why: str) -> None:
    instance_id = stack.launch()
    before = stack.groups_of(instance_id)
    event = stack.event("tor_client", instance_id)
    forge(event)

    summary = stack.invoke(event)

    assert_nothing_changed_and_announced(stack, instance_id, before, summary, why)
    assert stack.guardduty.calls("GetFindings") == 0, "a wrong envelope is refused before any lookup"


def test_a_finding_guardduty_does_not_know_changes_nothing_and_leaves_the_id_free(stack: Stack) -> None:
    instance_id = stack.launch()
    before = stack.groups_of(instance_id)
    event = stack.event("tor_client", instance_id)
    stack.guardduty.forget(event["detail"]["id"])

    summary = stack.invoke(event, raised_by_guardduty=False)

    assert_nothing_changed_and_announced(stack, instance_id, before, summary, "GuardDuty has no finding")
    assert stack.record(event["detail"]["id"]) is None, "the claim is withdrawn"
    # GuardDuty raises it after all: nothing the forged delivery left stands in its way.
    stack.guardduty.add(event["detail"])
    assert stack.invoke(event)["isolated"] is True


def test_an_event_naming_another_instance_than_guardduty_s_copy_changes_nothing(stack: Stack) -> None:
    victim, real = stack.launch(), stack.launch()
    before = stack.groups_of(victim)
    genuine = stack.event("tor_client", real)
    forged = json.loads(json.dumps(genuine))
    forged["detail"]["resource"]["instanceDetails"]["instanceId"] = victim

    summary = stack.invoke(forged, raised_by_guardduty=False)

    assert_nothing_changed_and_announced(stack, victim, before, summary, f"names instance {real}")
    assert not stack.isolated(real)


def test_an_event_naming_another_account_than_guardduty_s_copy_changes_nothing(stack: Stack) -> None:
    instance_id = stack.launch()
    before = stack.groups_of(instance_id)
    genuine = stack.event("tor_client", instance_id)
    forged = json.loads(json.dumps(genuine))
    forged["detail"]["accountId"] = "210987654321"

    summary = stack.invoke(forged, raised_by_guardduty=False)

    assert_nothing_changed_and_announced(
        stack, instance_id, before, summary, "names account 123456789012, not 210987654321"
    )


def test_guardduty_s_copy_decides_when_the_event_says_otherwise(stack: Stack) -> None:
    instance_id = stack.launch()
    before = stack.groups_of(instance_id)
    event = stack.event("tor_client", instance_id)
    # GuardDuty holds a sample; the delivered event lost the flag (and claims a higher severity).
    copy = json.loads(json.dumps(event["detail"]))
    copy["service"]["additionalInfo"] = {"value": json.dumps({"sample": True}), "type": "default"}
    stack.guardduty.add(copy)

    summary = stack.invoke(event, raised_by_guardduty=False)

    assert summary["decision"] == "sample" and stack.groups_of(instance_id) == before


def test_guardduty_unavailable_fails_the_invocation_and_lets_the_retry_take_over(stack: Stack) -> None:
    instance_id = stack.launch()
    event = stack.event("tor_client", instance_id)
    stack.guardduty.fail(500, times=100)

    with pytest.raises(GuardDutyError, match="GuardDuty (ListDetectors|GetFindings)"):
        stack.invoke(event)

    assert not stack.isolated(instance_id)
    assert stack.record(event["detail"]["id"]) is None, "an unconfirmed claim is withdrawn, for the retry to make again"
    stack.guardduty.heal()
    assert stack.invoke(event)["isolated"] is True


def test_the_detector_is_found_once_per_warm_container_or_named_in_the_configuration(stack: Stack) -> None:
    first, second = stack.launch(), stack.launch()
    stack.invoke(stack.event("tor_client", first))
    stack.invoke(stack.event("backdoor_cc_dns", second))
    assert stack.guardduty.calls("ListDetectors") == 1

    stack.configure(GUARDDUTY_DETECTOR_ID=stack.guardduty.detector_id)
    stack.invoke(stack.event("bitcoin_tool_dns", stack.launch()))
    assert stack.guardduty.calls("ListDetectors") == 1
    assert handler.get_responder().guardduty.detector_id() == stack.guardduty.detector_id
