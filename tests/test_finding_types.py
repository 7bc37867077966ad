"""How a finding is judged (README, "How a finding is judged"): from what the instance did, by the action
GuardDuty reports, for every documented EC2 finding type, whatever resourceRole GuardDuty set.
"""

from __future__ import annotations

import pytest

from guardduty_events import documented_event
from guardduty_responder.finding import parse_finding
from guardduty_responder.finding_types import FINDING_TYPES, Family, Involvement, Meaning, judge
from guardduty_responder.policy import decide
from guardduty_responder.rules import default_rules

ROWS = sorted(FINDING_TYPES.items())
ROLES = ["ACTOR", "TARGET", None]


def expected_involvement(meaning: Meaning, direction: str) -> Involvement:
    if meaning is Meaning.IMPLICATED:
        return Involvement.IMPLICATED
    if meaning is Meaning.ATTACKED:
        return Involvement.ATTACKED
    return Involvement.IMPLICATED if direction == "OUTBOUND" else Involvement.ATTACKED


def expected_action(finding_type: str, family: Family, involvement: Involvement) -> str:
    """What the default rules do at severity 8: credentials and container hosts reported, then by involvement."""
    resource_type = parse_finding(documented_event(finding_type)).resource_type
    if family is Family.CREDENTIALS or resource_type != "Instance":
        return "report"
    return "isolate" if involvement is Involvement.IMPLICATED else "report"


@pytest.mark.parametrize("role", ROLES, ids=lambda role: f"role={role}")
@pytest.mark.parametrize(("finding_type", "known"), ROWS, ids=[name for name, _ in ROWS])
def test_every_documented_type_is_judged_by_its_action_not_its_resource_role(
    finding_type: str, known: object, role: str | None
) -> None:
    directions = ["INBOUND", "OUTBOUND"] if FINDING_TYPES[finding_type].meaning is Meaning.BY_DIRECTION else ["-"]
    for direction in directions:
        finding = parse_finding(documented_event(finding_type, role=role, direction=direction))
        meaning = FINDING_TYPES[finding_type].meaning

        judgement = judge(finding)
        decision = decide(finding, rules=default_rules(), dry_run=False, exempt_tag_key="guardduty-responder:exempt")

        assert judgement.involvement is expected_involvement(meaning, direction), (finding_type, direction)
        assert str(decision.action) == expected_action(
            finding_type, FINDING_TYPES[finding_type].family, judgement.involvement
        )
        assert decision.rule is not None and f'rule "{decision.rule}"' in decision.reason


def test_the_table_holds_every_family_the_user_guide_documents() -> None:
    families = {known.family for known in FINDING_TYPES.values()}
    assert families == set(Family)
    counts = {family: sum(1 for known in FINDING_TYPES.values() if known.family is family) for family in Family}
    # EC2 finding types page: 40; Runtime Monitoring: 42; Malware Protection for EC2: 8; IAM instance
    # credentials: 2; retired EC2 types still found in old findings: 3.
    assert counts == {Family.EC2: 40, Family.RUNTIME: 42, Family.MALWARE: 8, Family.CREDENTIALS: 2, Family.RETIRED: 3}


@pytest.mark.parametrize(
    "finding_type",
    [
        "Backdoor:EC2/C&CActivity.B",
        "Backdoor:EC2/C&CActivity.B!DNS",
        "CryptoCurrency:EC2/BitcoinTool.B",
        "CryptoCurrency:EC2/BitcoinTool.B!DNS",
        "UnauthorizedAccess:EC2/TorClient",
        "Trojan:EC2/BlackholeTraffic!DNS",
        "Impact:EC2/MaliciousDomainRequest.Reputation",
        "Backdoor:EC2/Spambot",
        "UnauthorizedAccess:EC2/MetadataDNSRebind",
    ],
)
def test_types_guardduty_marks_target_though_the_instance_acted_are_isolated(finding_type: str) -> None:
    event = documented_event(finding_type, role="TARGET")

    decision = decide(
        parse_finding(event), rules=default_rules(), dry_run=False, exempt_tag_key="guardduty-responder:exempt"
    )

    assert str(decision.action) == "isolate" and "implicated" in decision.reason


def test_a_connection_of_unknown_direction_on_a_type_used_both_ways_is_left_to_a_person() -> None:
    event = documented_event("UnauthorizedAccess:EC2/SSHBruteForce", direction="UNKNOWN")

    judgement = judge(parse_finding(event))

    assert judgement.involvement is Involvement.ATTACKED and "a person decides" in judgement.what


def test_a_connection_of_unknown_direction_on_a_type_of_the_instance_s_own_doing_implicates_it() -> None:
    event = documented_event("CryptoCurrency:EC2/BitcoinTool.B")
    event["detail"]["service"]["action"]["networkConnectionAction"]["connectionDirection"] = "UNKNOWN"

    assert judge(parse_finding(event)).involvement is Involvement.IMPLICATED
