"""Someone who can invoke the function, but not write GuardDuty findings
(README, "GuardDuty confirms every finding"): no forged delivery changes anything, blocks or delays
the real finding, fills the circuit breaker, or learns what GuardDuty holds; every one is recorded
apart and announced.
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from typing import Any

import pytest

from guardduty_responder.finding import MalformedFindingError, parse_finding
from guardduty_responder.finding_types import Involvement, judge
from guardduty_responder.guardduty import GuardDutyError
from guardduty_responder.isolation import ContainmentError
from guardduty_responder.ledger import Ledger, breaker_key, breaker_window
from guardduty_responder.responder import FindingInProgressError, IncompleteResponseError
from test_credentials import associated_profiles, launch_with_role, stolen
from test_phases import refuse

from conftest import ACCOUNT, TABLE, Stack, load_event


def unconfirmed_records(stack: Stack) -> list[dict[str, Any]]:
    from boto3.dynamodb.types import TypeDeserializer

    items = stack.dynamodb.scan(TableName=TABLE)["Items"]
    plain = [{k: TypeDeserializer().deserialize(v) for k, v in item.items()} for item in items]
    return [item for item in plain if item["pk"].startswith("unconfirmed#")]


def forged_from(real: dict[str, Any], **detail: Any) -> dict[str, Any]:
    """The real event as an attacker re-sends it with lambda:InvokeFunction, some of its detail changed."""
    forged = copy.deepcopy(real)
    forged["id"] = "forged-" + uuid.uuid4().hex
    forged["detail"].update(detail)
    return forged


def naming(real: dict[str, Any], instance_id: str) -> dict[str, Any]:
    forged = forged_from(real)
    forged["detail"]["resource"]["instanceDetails"]["instanceId"] = instance_id
    return forged


# -- forged deliveries change nothing --------------------------------------------------------------------


def test_a_forged_sample_flag_on_a_real_finding_neither_blocks_it_nor_reports_it_isolated(stack: Stack) -> None:
    victim = stack.launch()
    real = stack.event("tor_client", victim)
    forged = forged_from(real)
    forged["detail"]["service"]["additionalInfo"] = {"sample": True}

    forged_summary = stack.invoke(forged, raised_by_guardduty=False)
    stack.invoke(real)

    # GuardDuty's copy is not a sample: the forged delivery acted on the real finding, truthfully.
    assert forged_summary["isolated"] is stack.isolated(victim) is True
    subjects = [message["Subject"] for message in stack.messages()]
    assert subjects == [s for s in subjects if "ISOLATED" in s] and len(subjects) == 1


def test_a_forged_sample_flag_taking_over_a_failed_containment_still_contains(stack: Stack) -> None:
    victim = stack.launch()
    real = stack.event("tor_client", victim)
    failing = refuse(stack, "ModifyNetworkInterfaceAttribute")
    with pytest.raises(ContainmentError):
        stack.invoke(real)
    failing["on"] = False
    forged = forged_from(real)
    forged["detail"]["service"]["additionalInfo"] = {"sample": True}

    stack.invoke(forged, raised_by_guardduty=False)
    stack.invoke(real)

    assert stack.isolated(victim)


def test_a_forged_repeat_leaves_the_real_record_alone_and_is_recorded_apart(stack: Stack) -> None:
    instance_id = stack.launch()
    real = stack.event("tor_client", instance_id)
    stack.invoke(real)
    stack.messages()
    forged = naming(real, stack.launch())
    forged["detail"]["service"]["count"] = 1_000_000

    assert stack.invoke(forged, raised_by_guardduty=False)["outcome"] == "unconfirmed"

    record = stack.record(real["detail"]["id"])
    assert record["service_count"] == real["detail"]["service"]["count"]
    assert len(unconfirmed_records(stack)) == 1 and len(stack.messages()) == 1


def test_a_forged_resume_after_containment_is_unconfirmed_and_the_real_retry_takes_the_evidence(
    stack: Stack,
) -> None:
    victim, decoy = stack.launch(), stack.launch()
    real = stack.event("backdoor_cc_dns", victim)
    failing = refuse(stack, "CreateSnapshots")
    with pytest.raises(IncompleteResponseError, match="snapshots"):
        stack.invoke(real)
    failing["on"] = False

    forged_summary = stack.invoke(naming(real, decoy), raised_by_guardduty=False)
    stack.invoke(real)  # Lambda's retry of the real event

    assert forged_summary["outcome"] == "unconfirmed"
    assert len(stack.snapshots_of(victim)) == 2 and stack.snapshots_of(decoy) == []


def test_a_forged_credential_resume_never_touches_the_instance_s_role(stack: Stack) -> None:
    # The real finding's isolation leaves the role alone: only a credential finding would touch it.
    stack.configure(CREDENTIAL_FINDINGS="contain", CONTAIN_IDENTITY="false")
    instance_id = launch_with_role(stack)
    real = stack.event("tor_client", instance_id)
    failing = refuse(stack, "CreateSnapshots")
    with pytest.raises(IncompleteResponseError):
        stack.invoke(real)
    failing["on"] = False
    forged = stolen(instance_id)
    forged["detail"]["id"] = real["detail"]["id"]

    assert stack.invoke(forged, raised_by_guardduty=False)["outcome"] == "unconfirmed"

    assert associated_profiles(stack, instance_id) != []


# -- nor stands in the way of the real finding -------------------------------------------------------------


def test_a_real_delivery_meeting_a_forged_claim_in_flight_fails_for_its_retry(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = stack.launch()
    real = stack.event("tor_client", victim)
    forged = naming(real, stack.launch())
    claim_finding = Ledger.claim_finding
    seen: dict[str, Any] = {}

    def real_arrives_meanwhile(self: Ledger, finding: Any, **kwargs: Any) -> Any:
        claim = claim_finding(self, finding, **kwargs)
        if "real" not in seen:
            seen["real"] = None
            try:
                seen["real"] = stack.invoke(real)
            except FindingInProgressError as error:
                seen["real"] = error
        return claim

    monkeypatch.setattr(Ledger, "claim_finding", real_arrives_meanwhile)
    assert stack.invoke(forged, raised_by_guardduty=False)["outcome"] == "unconfirmed"
    monkeypatch.setattr(Ledger, "claim_finding", claim_finding)

    assert isinstance(seen["real"], FindingInProgressError), "the real delivery must fail, so Lambda retries it"
    assert stack.invoke(real)["isolated"] is True  # Lambda's retry


def test_a_forged_delivery_retried_after_a_lookup_failure_leaves_no_claim_behind(stack: Stack) -> None:
    victim = stack.launch()
    real = stack.event("tor_client", victim)
    forged = naming(real, stack.launch())
    stack.guardduty.fail(500, times=50)
    with pytest.raises(GuardDutyError):
        stack.invoke(forged, raised_by_guardduty=False)
    stack.guardduty.heal()
    assert stack.invoke(forged, raised_by_guardduty=False)["outcome"] == "unconfirmed"

    assert stack.record(real["detail"]["id"]) is None
    assert stack.invoke(real)["isolated"] is True


def test_forged_deliveries_whose_lookup_fails_give_their_breaker_places_back(stack: Stack) -> None:
    stack.configure(MAX_ISOLATIONS_PER_HOUR="3")
    for _ in range(3):
        forged = stack.event("tor_client", stack.launch(), finding_id=uuid.uuid4().hex)
        stack.guardduty.forget(forged["detail"]["id"])
        stack.guardduty.fail(500, times=50)
        with pytest.raises(GuardDutyError):
            stack.invoke(forged, raised_by_guardduty=False)
        stack.guardduty.heal()
    item = stack.record(breaker_key(ACCOUNT, breaker_window(time.time())))
    assert not (item or {}).get("findings")

    real = stack.launch()
    assert stack.invoke(stack.event("tor_client", real, finding_id=uuid.uuid4().hex))["isolated"] is True


# -- nor learns what GuardDuty holds; odd shapes are refused in one line ----------------------------------------


def test_a_synchronous_forged_invocation_learns_nothing_of_what_guardduty_holds(stack: Stack) -> None:
    victim, decoy = stack.launch(), stack.launch()
    real = stack.event("tor_client", victim)

    reply = stack.invoke(naming(real, decoy), raised_by_guardduty=False)

    assert victim not in json.dumps(reply) and reply["outcome"] == "unconfirmed"
    (record,) = unconfirmed_records(stack)
    assert victim in record["reason"], "the security team's record says what GuardDuty holds"


def test_forged_deliveries_never_overwrite_each_other_s_records(stack: Stack) -> None:
    first = stack.event("tor_client", stack.launch())
    first["source"], first["id"] = "evil.attacker", "chosen"
    second = copy.deepcopy(first)
    second["detail"]["title"] = "nothing to see"

    stack.invoke(first, raised_by_guardduty=False)
    stack.invoke(second, raised_by_guardduty=False)

    assert len(unconfirmed_records(stack)) == 2


@pytest.mark.parametrize(
    "change",
    [
        lambda event: event.update(id="x" * 3000),
        lambda event: event["detail"]["service"].update(additionalInfo={"value": "[" * 5000, "type": "default"}),
        lambda event: event["detail"].update(title=[[[[["deep"]]]]]),
    ],
    ids=["a 3000-character event id", "a deeply nested sample flag", "a nested title"],
)
def test_odd_shapes_in_a_forged_event_are_recorded_and_announced(stack: Stack, change: Any) -> None:
    forged = stack.event("tor_client", stack.launch())
    forged["source"] = "evil.attacker"
    change(forged)

    assert stack.invoke(forged, raised_by_guardduty=False)["outcome"] == "unconfirmed"
    assert len(unconfirmed_records(stack)) == 1 and len(stack.messages()) == 1


def test_a_count_no_guardduty_finding_carries_is_refused_by_the_parser() -> None:
    event = load_event("tor_client")
    event["detail"]["service"]["count"] = 10**40 + 1

    with pytest.raises(MalformedFindingError, match="detail.service.count"):
        parse_finding(event)


# -- what GuardDuty holds decides, and the deployment's scope applies to it -------------------------------------


def test_an_archived_finding_is_recorded_only(stack: Stack) -> None:
    scanner = stack.launch(tags={"Name": "vuln-scanner"})
    event = stack.event("recon_portscan", scanner, finding_id=uuid.uuid4().hex)
    event["detail"]["service"]["archived"] = True  # GuardDuty's copy (held by reference)

    summary = stack.invoke(event, raised_by_guardduty=False)

    assert (summary["decision"], summary["isolated"]) == ("out-of-scope", False) and "archived" in summary["reason"]


def test_a_finding_below_the_deployment_s_minimum_severity_is_recorded_only(stack: Stack) -> None:
    stack.configure(MIN_SEVERITY="4", FINDING_TYPE_PREFIXES="Backdoor:EC2/,UnauthorizedAccess:EC2/")
    low, other_type = stack.launch(), stack.launch()
    event = stack.event("backdoor_cc_dns", low, finding_id=uuid.uuid4().hex)
    event["detail"]["severity"] = 2

    below = stack.invoke(event)
    outside = stack.invoke(stack.event("bitcoin_tool_dns", other_type))

    assert below["decision"] == outside["decision"] == "out-of-scope"
    assert not stack.isolated(low) and not stack.isolated(other_type)


@pytest.mark.parametrize(
    ("finding_type", "fixture"),
    [("UnauthorizedAccess:EC2/TorRelay", "tor_client"), ("CryptoCurrency:Runtime/BitcoinTool.B", "runtime_process")],
)
def test_inbound_traffic_of_a_type_documented_as_the_instance_s_own_doing_implicates_it(
    finding_type: str, fixture: str
) -> None:
    """A Tor relay, a mining node: the instance serves the connections coming in (and runs the process)."""
    event = load_event(fixture)
    event["detail"]["type"] = finding_type
    event["detail"]["service"]["action"] = copy.deepcopy(load_event("tor_client")["detail"]["service"]["action"])
    event["detail"]["service"]["action"]["networkConnectionAction"]["connectionDirection"] = "INBOUND"

    assert judge(parse_finding(event)).involvement is Involvement.IMPLICATED
