"""Parsing (README, "What happens to a finding"): a typed, immutable finding, or one error type that names the bad field."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from guardduty_responder.finding import MalformedFindingError, parse_finding

from conftest import ISOLATING_FIXTURES, NOT_ISOLATING_FIXTURES, Stack, load_event


@pytest.mark.parametrize("fixture", ISOLATING_FIXTURES + NOT_ISOLATING_FIXTURES)
def test_every_fixture_parses_into_an_immutable_finding(fixture: str) -> None:
    event = load_event(fixture)

    finding = parse_finding(event)

    detail = event["detail"]
    assert finding.finding_id == detail["id"]
    assert finding.finding_type == detail["type"]
    assert finding.instance_id == detail["resource"]["instanceDetails"]["instanceId"]
    assert finding.severity == detail["severity"]
    assert finding.count == detail["service"]["count"]
    assert finding.is_sample == fixture.startswith("sample_")
    assert finding.resource_role == detail["service"]["resourceRole"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        finding.instance_id = "i-00000000"  # type: ignore[misc]


def test_the_sample_flag_is_read_flat_or_inside_the_value_json() -> None:
    flat = load_event("sample_flat_flag")
    nested = load_event("sample_trojan_dns")
    real = load_event("tor_client")

    assert parse_finding(flat).is_sample and parse_finding(nested).is_sample
    assert not parse_finding(real).is_sample


def test_guardduty_placeholders_in_a_sample_do_not_reject_it() -> None:
    event = load_event("sample_trojan_dns")
    interface = event["detail"]["resource"]["instanceDetails"]["networkInterfaces"][0]

    finding = parse_finding(event)

    assert interface["vpcId"] == "GeneratedFindingVPCId"
    assert finding.interfaces == ()


def _drop(*path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(event: dict[str, Any]) -> None:
        target = event
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return mutate


def _set(value: Any, *path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(event: dict[str, Any]) -> None:
        target = event
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


MALFORMED = [
    ("no detail", _drop("detail"), "detail"),
    ("detail is a string", _set("oops", "detail"), "detail"),
    ("no finding id", _drop("detail", "id"), "detail.id"),
    ("finding id with spaces", _set("a b", "detail", "id"), "detail.id"),
    ("no type", _drop("detail", "type"), "detail.type"),
    ("severity is text", _set("HIGH", "detail", "severity"), "detail.severity"),
    ("severity out of range", _set(42, "detail", "severity"), "detail.severity"),
    ("severity is a boolean", _set(True, "detail", "severity"), "detail.severity"),
    ("account id is a number", _set(123456789012, "detail", "accountId"), "detail.accountId"),
    ("no resource", _drop("detail", "resource"), "detail.resource"),
    ("not an instance", _set("AccessKey", "detail", "resource", "resourceType"), "detail.resource.resourceType"),
    ("no instance details", _drop("detail", "resource", "instanceDetails"), "detail.resource.instanceDetails"),
    ("no instance id", _drop("detail", "resource", "instanceDetails", "instanceId"), "instanceId"),
    (
        "instance id is a list",
        _set(["i-0123456789abcdef0"], "detail", "resource", "instanceDetails", "instanceId"),
        "instanceId",
    ),
    (
        "instance id is not one",
        _set("vol-0123456789abcdef0", "detail", "resource", "instanceDetails", "instanceId"),
        "instanceId",
    ),
    ("count is text", _set("3", "detail", "service", "count"), "detail.service.count"),
    ("unknown resource role", _set("BYSTANDER", "detail", "service", "resourceRole"), "detail.service.resourceRole"),
    ("service is a list", _set([], "detail", "service"), "detail.service"),
]


@pytest.mark.parametrize("mutate,field", [(m, f) for _, m, f in MALFORMED], ids=[name for name, _, _ in MALFORMED])
def test_a_malformed_event_names_the_bad_field(mutate: Callable[[dict[str, Any]], None], field: str) -> None:
    event = copy.deepcopy(load_event("tor_client"))
    mutate(event)

    with pytest.raises(MalformedFindingError) as raised:
        parse_finding(event)

    assert field in raised.value.field
    assert field in str(raised.value)


@pytest.mark.parametrize("event", [None, [], "GuardDuty", 7])
def test_an_event_that_is_not_an_object_is_rejected(event: Any) -> None:
    with pytest.raises(MalformedFindingError, match="event must be a JSON object"):
        parse_finding(event)


@pytest.mark.parametrize("mutate,field", [(m, f) for _, m, f in MALFORMED[:6]], ids=[n for n, _, _ in MALFORMED[:6]])
def test_a_malformed_event_through_the_handler_changes_nothing(
    stack: Stack, mutate: Callable[[dict[str, Any]], None], field: str
) -> None:
    instance_id = stack.launch()
    before = stack.groups_of(instance_id)
    event = stack.event("tor_client", instance_id)
    mutate(event)

    with pytest.raises(MalformedFindingError, match=field.replace(".", r"\.")):
        stack.invoke(event)

    assert stack.groups_of(instance_id) == before
    assert stack.dynamodb.scan(TableName="guardduty-responder-test")["Items"] == []
    assert stack.responder_groups() == {}
    assert stack.messages() == [] and stack.jira.issues == {}
