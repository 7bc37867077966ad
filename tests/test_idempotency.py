"""At-least-once delivery: the same finding twice, or eight times at once, is handled once (README, "The ledger", "Failure semantics")."""

from __future__ import annotations

import threading
import time
from typing import Any

from guardduty_responder import handler
from guardduty_responder.ledger import breaker_key, breaker_window
from guardduty_responder.responder import FindingInProgressError
from guardduty_responder.ticketing import finding_label

from conftest import ACCOUNT, Stack


def test_the_same_event_twice_gives_one_issue_one_set_of_snapshots_one_message(stack: Stack) -> None:
    instance_id = stack.launch(enis=2)
    event = stack.event("backdoor_cc_dns", instance_id)

    first = stack.invoke(event)
    second = stack.invoke(event)

    assert first["isolated"] is True
    assert second["repeat"] is True and second["outcome"] == "already handled"
    assert len(stack.jira.issues) == 1
    assert len(stack.snapshots_of(instance_id)) == 2
    assert len(stack.messages()) == 1


def test_a_repeated_delivery_costs_one_round_trip_and_writes_nothing(stack: Stack) -> None:
    instance_id = stack.launch()
    event = stack.event("tor_client", instance_id)
    stack.invoke(event)
    calls: list[str] = []
    clients = handler.get_responder().clients
    for client in (clients.ec2, clients.dynamodb, clients.sns, clients.guardduty):
        client.meta.events.register("before-call", lambda model, **_: calls.append(model.name))

    stack.invoke(event)

    # Issued together, as for a new finding (the look reads the instance's ledger exemption beside
    # describing it); the claim's refusal says it is a repeat, and the breaker counts nothing (the
    # transaction is refused whole).
    assert sorted(calls) == ["DescribeInstances", "GetFindings", "GetItem", "TransactWriteItems"]
    assert stack.record(breaker_key(ACCOUNT, breaker_window(time.time())))["findings"] == {event["detail"]["id"]}


def test_eight_concurrent_deliveries_act_once(stack: Stack) -> None:
    stack.configure(JIRA_TIMEOUT_SECONDS="20")  # a loaded machine must not turn this into a Jira-failure test
    instance_id = stack.launch(enis=2)
    event = stack.event("bitcoin_tool_dns", instance_id)
    handler.get_responder()  # one warm container serving eight concurrent deliveries
    start = threading.Barrier(8)
    outcomes: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def deliver() -> None:
        start.wait()
        try:
            outcomes.append(stack.invoke(event))
        except BaseException as error:  # collected: the assertion below names it
            errors.append(error)

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Those that found the finding in another invocation's hands failed, for Lambda to retry them.
    assert all(isinstance(error, FindingInProgressError) for error in errors), errors
    assert sum(1 for outcome in outcomes if not outcome["repeat"]) == 1
    retried = [stack.invoke(event) for _ in errors]
    assert all(outcome["outcome"] == "already handled" for outcome in retried)
    assert len(stack.jira.issues_labelled(finding_label(event["detail"]["id"]))) == 1
    assert len(stack.jira.issues) == 1
    assert len(stack.snapshots_of(instance_id)) == 2
    assert len(stack.messages()) == 1


def test_eight_concurrent_cold_containers_act_once(stack: Stack) -> None:
    stack.configure(JIRA_TIMEOUT_SECONDS="20")
    instance_id = stack.launch(enis=1)
    event = stack.event("tor_client", instance_id)
    responders = [stack.responder() for _ in range(8)]
    start = threading.Barrier(8)
    outcomes: list[dict[str, Any]] = []
    in_progress: list[FindingInProgressError] = []

    def deliver(responder: Any) -> None:
        start.wait()
        try:
            outcomes.append(responder.respond(event, remaining_seconds=60))
        except FindingInProgressError as error:
            in_progress.append(error)

    threads = [threading.Thread(target=deliver, args=(responder,)) for responder in responders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(outcomes) + len(in_progress) == 8
    assert sum(1 for outcome in outcomes if not outcome["repeat"]) == 1
    assert len(stack.jira.issues) == 1
    assert len(stack.snapshots_of(instance_id)) == 2
    assert len(stack.messages()) == 1
    assert len(stack.responder_groups()) == 2


def test_an_update_of_the_finding_only_updates_count_and_last_seen(stack: Stack) -> None:
    instance_id = stack.launch()
    event = stack.event("backdoor_cc_dns", instance_id, count=3)
    stack.invoke(event)
    stack.messages()

    update = stack.event("backdoor_cc_dns", instance_id, count=7)
    summary = stack.invoke(update)

    record = stack.record(event["detail"]["id"])
    assert summary["repeat"] is True
    assert record["service_count"] == 7
    assert len(stack.jira.issues) == 1
    assert len(stack.snapshots_of(instance_id)) == 2
    assert stack.messages() == []


def test_an_older_copy_never_lowers_the_count(stack: Stack) -> None:
    instance_id = stack.launch()
    stack.invoke(stack.event("backdoor_cc_dns", instance_id, count=9))

    stack.invoke(stack.event("backdoor_cc_dns", instance_id, count=2))

    assert stack.record(stack.event("backdoor_cc_dns")["detail"]["id"])["service_count"] == 9
