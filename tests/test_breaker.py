"""The circuit breaker: at most MAX_ISOLATIONS_PER_HOUR isolations per account and hour (README, "The circuit breaker")."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from guardduty_responder import handler
from guardduty_responder.clients import AwsClients
from guardduty_responder.isolation import ContainmentError
from guardduty_responder.ledger import breaker_key, breaker_window
from guardduty_responder.responder import FindingInProgressError, IncompleteResponseError, Responder

from conftest import ACCOUNT, Stack

HOUR = 3600.0


def new_finding(stack: Stack, instance_id: str, fixture: str = "backdoor_cc_dns") -> dict[str, Any]:
    return stack.event(fixture, instance_id, finding_id=uuid.uuid4().hex)


def counted(stack: Stack, now: float) -> set[str]:
    item = stack.record(breaker_key(ACCOUNT, breaker_window(now)))
    return set(item["findings"]) if item and "findings" in item else set()


def deliver_all_at_once(deliveries: list[Callable[[], dict[str, Any]]]) -> list[dict[str, Any]]:
    """Every delivery at once; those that find their finding in another's hands are retried, as Lambda would."""
    start = threading.Barrier(len(deliveries))
    outcomes: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    retries: list[Callable[[], dict[str, Any]]] = []

    def run(delivery: Callable[[], dict[str, Any]]) -> None:
        start.wait()
        try:
            outcomes.append(delivery())
        except FindingInProgressError:
            retries.append(delivery)
        except BaseException as error:  # collected: the assertion names it
            errors.append(error)

    threads = [threading.Thread(target=run, args=(delivery,)) for delivery in deliveries]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    outcomes += [delivery() for delivery in retries]
    return outcomes


def test_a_concurrent_burst_on_one_account_never_isolates_more_than_the_limit(stack: Stack) -> None:
    stack.configure(MAX_ISOLATIONS_PER_HOUR="3", JIRA_TIMEOUT_SECONDS="20")
    instances = [stack.launch() for _ in range(8)]
    events = [new_finding(stack, instance_id) for instance_id in instances]
    # Every finding delivered twice, to ten cold containers at once: retries and repeats in the burst.
    responders = [stack.responder() for _ in range(10)]
    deliveries = [
        (lambda responder=responders[index % 10], event=event: responder.respond(event, remaining_seconds=60))
        for index, event in enumerate(events + events)
    ]

    outcomes = deliver_all_at_once(deliveries)

    first = [outcome for outcome in outcomes if not outcome["repeat"]]
    assert len(first) == 8
    assert sum(1 for instance_id in instances if stack.isolated(instance_id)) == 3
    assert sorted(outcome["decision"] for outcome in first) == ["circuit-breaker"] * 5 + ["isolate"] * 3
    assert len(counted(stack, time.time())) == 3
    held = [outcome for outcome in first if outcome["decision"] == "circuit-breaker"]
    for outcome in held:
        assert not stack.isolated(outcome["instance_id"])
        issue = stack.jira.issues[outcome["jira_key"]]["fields"]
        assert issue["priority"] == {"name": "Highest"}
        assert "circuit-breaker" in issue["labels"]
        assert "CIRCUIT BREAKER OPEN" in issue["summary"]
        record = stack.record(outcome["finding_id"])
        assert record["decision"] == "circuit-breaker" and "limit of 3 isolations per hour" in record["reason"]
    subjects = [message["Subject"] for message in stack.messages()]
    assert len(subjects) == 8
    assert sum("CIRCUIT BREAKER OPEN, NOT ISOLATED, LOOK NOW" in subject for subject in subjects) == 5


def test_the_breaker_closes_with_the_next_hour(stack: Stack) -> None:
    stack.configure(MAX_ISOLATIONS_PER_HOUR="1")
    now = [1_800_000_000.0]  # 2027-01-15T08:00:00Z, the start of an hour
    responder = Responder(stack.settings(), AwsClients(region="us-east-1"), clock=lambda: now[0])
    first, second = stack.launch(), stack.launch()

    assert responder.respond(new_finding(stack, first))["decision"] == "isolate"
    held = responder.respond(new_finding(stack, second))
    now[0] += HOUR
    later = responder.respond(new_finding(stack, second, "tor_client"))

    assert held["decision"] == "circuit-breaker" and held["isolated"] is False
    assert later["decision"] == "isolate" and stack.isolated(second)
    hour = 1_800_000_000.0
    assert len(counted(stack, hour)) == 1 and len(counted(stack, hour + HOUR)) == 1


def test_a_held_finding_stays_held_when_it_is_retried(stack: Stack) -> None:
    stack.configure(MAX_ISOLATIONS_PER_HOUR="1")
    stack.invoke(new_finding(stack, stack.launch()))
    instance_id = stack.launch()
    event = new_finding(stack, instance_id)
    stack.jira.fail(503)  # the held finding's issue fails once: Lambda retries the finding

    with pytest.raises(IncompleteResponseError):
        stack.invoke(event)
    stack.configure(MAX_ISOLATIONS_PER_HOUR="5")  # room again (a new hour, or a raised limit)
    retried = stack.invoke(event)

    assert retried["decision"] == "circuit-breaker" and not stack.isolated(instance_id)
    assert retried["jira_key"] is not None


def test_an_exemption_only_in_the_findings_copy_of_the_tags_still_counts(stack: Stack) -> None:
    stack.configure(MAX_ISOLATIONS_PER_HOUR="1")
    stack.invoke(new_finding(stack, stack.launch()))
    instance_id = stack.launch(tags={"guardduty-responder:exempt": "true"})
    event = new_finding(stack, instance_id)  # GuardDuty saw the exemption tag ...
    stack.ec2.delete_tags(Resources=[instance_id], Tags=[{"Key": "guardduty-responder:exempt"}])  # ... now gone

    outcome = stack.invoke(event)

    assert outcome["decision"] == "circuit-breaker" and not stack.isolated(instance_id)


def test_a_finding_that_isolates_nothing_gives_its_slot_back(stack: Stack) -> None:
    stack.configure(MAX_ISOLATIONS_PER_HOUR="1")
    exempt_now = stack.launch()
    event = new_finding(stack, exempt_now)  # GuardDuty saw no exemption tag: the slot is taken ...
    stack.ec2.create_tags(Resources=[exempt_now], Tags=[{"Key": "guardduty-responder:exempt", "Value": "true"}])
    real = stack.launch()

    exempt = stack.invoke(event)  # ... and given back once the live tags say exempt
    contained = stack.invoke(new_finding(stack, real))
    again = stack.invoke(new_finding(stack, real, "tor_client"))  # already isolated: counts nothing

    assert exempt["decision"] == "exempt"
    assert contained["decision"] == "isolate" and stack.isolated(real)
    assert again["decision"] == "isolate"
    assert counted(stack, time.time()) == {contained["finding_id"]}


def test_a_retried_finding_is_counted_once(stack: Stack) -> None:
    stack.configure(MAX_ISOLATIONS_PER_HOUR="1")
    instance_id = stack.launch()
    event = new_finding(stack, instance_id)
    responder = handler.get_responder()
    failing = {"on": True}

    def refuse_once(**_: Any) -> None:
        if failing["on"]:
            failing["on"] = False
            raise ClientError(
                {"Error": {"Code": "RequestLimitExceeded", "Message": "slow down"}}, "ModifyNetworkInterfaceAttribute"
            )

    responder.estates.home.clients.ec2.meta.events.register(
        "before-call.ec2.ModifyNetworkInterfaceAttribute", refuse_once
    )
    with pytest.raises(ContainmentError):
        stack.invoke(event)
    retried = stack.invoke(event)

    assert retried["decision"] == "isolate" and stack.isolated(instance_id)
    assert counted(stack, time.time()) == {event["detail"]["id"]}


def test_a_limit_of_zero_isolates_nothing(stack: Stack) -> None:
    stack.configure(MAX_ISOLATIONS_PER_HOUR="0")
    instance_id = stack.launch()
    before = stack.groups_of(instance_id)

    outcome = stack.invoke(new_finding(stack, instance_id))

    assert outcome["decision"] == "circuit-breaker" and stack.groups_of(instance_id) == before
    assert counted(stack, time.time()) == set()


def test_places_left_by_findings_guardduty_does_not_hold_are_taken_back_for_a_real_one(stack: Stack) -> None:
    """Forged deliveries that died between their claim and their withdrawal (or a flood of them in flight)
    hold places in the hour; a real finding refused by a full hour has those taken back and isolates."""
    stack.configure(MAX_ISOLATIONS_PER_HOUR="2")
    ledger = handler.get_responder().ledger
    forged = [uuid.uuid4().hex, uuid.uuid4().hex]
    for finding_id in forged:
        assert ledger.take_isolation_slot(ACCOUNT, finding_id, now=time.time(), limit=2).granted
    instance_id = stack.launch()

    summary = stack.invoke(new_finding(stack, instance_id))

    assert summary["decision"] == "isolate" and stack.isolated(instance_id)
    assert counted(stack, time.time()) == {summary["finding_id"]}


def test_places_of_real_findings_are_never_taken_back(stack: Stack) -> None:
    stack.configure(MAX_ISOLATIONS_PER_HOUR="1")
    first = stack.invoke(new_finding(stack, stack.launch()))
    held_instance = stack.launch()

    held = stack.invoke(new_finding(stack, held_instance))

    assert held["decision"] == "circuit-breaker" and not stack.isolated(held_instance)
    assert counted(stack, time.time()) == {first["finding_id"]}
