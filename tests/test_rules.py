"""The response rules (README, "Response rules"): an ordered list, first match wins, each decision naming its rule."""

from __future__ import annotations

import json
from typing import Any

import pytest

from guardduty_events import documented_event, resource
from guardduty_responder.config import ConfigError, Settings
from guardduty_responder.finding import parse_finding
from guardduty_responder.policy import decide
from guardduty_responder.rules import RulesError, default_rules, parse_rules, rules_to_json

from conftest import Stack

EXEMPT = "guardduty-responder:exempt"
# The README's example: ignore a noisy type, isolate high severity, report the rest.
EXAMPLE = [
    {"name": "quiet-dns-resolver", "finding_type_prefix": "DefenseEvasion:EC2/UnusualDNSResolver", "action": "ignore"},
    {"name": "isolate-high", "involvement": "implicated", "min_severity": 7, "action": "isolate"},
    {"name": "report-the-rest", "action": "report"},
]


def decided(event: dict[str, Any], rules: list[dict[str, Any]], tags: dict[str, str] | None = None) -> Any:
    return decide(
        parse_finding(event),
        rules=parse_rules(json.dumps(rules)),
        dry_run=False,
        exempt_tag_key=EXEMPT,
        instance_tags=tags,
    )


def test_the_first_matching_rule_decides_and_the_reason_names_it() -> None:
    high = documented_event("CryptoCurrency:EC2/BitcoinTool.B!DNS", severity=8)
    medium = documented_event("CryptoCurrency:EC2/BitcoinTool.B!DNS", severity=5)
    noisy = documented_event("DefenseEvasion:EC2/UnusualDNSResolver", severity=8)

    assert (decided(high, EXAMPLE).code, decided(high, EXAMPLE).rule) == ("isolate", "isolate-high")
    assert (decided(medium, EXAMPLE).code, decided(medium, EXAMPLE).rule) == ("report", "report-the-rest")
    assert (decided(noisy, EXAMPLE).code, decided(noisy, EXAMPLE).rule) == ("ignore", "quiet-dns-resolver")
    for event in (high, medium, noisy):
        decision = decided(event, EXAMPLE)
        assert decision.reason.startswith(f'rule "{decision.rule}"')


def test_a_rule_can_match_on_the_instance_s_tags() -> None:
    rules = [
        {"name": "report-build-fleet", "instance_tags": {"fleet": "build"}, "action": "report"},
        {"name": "never-touch-tagged", "instance_tags": {"do-not-isolate": "*"}, "action": "report"},
        {"name": "isolate", "action": "isolate"},
    ]
    event = documented_event("Backdoor:EC2/C&CActivity.B!DNS")

    assert decided(event, rules, {"fleet": "build"}).rule == "report-build-fleet"
    assert decided(event, rules, {"fleet": "web"}).rule == "isolate"
    assert decided(event, rules, {"do-not-isolate": "anything"}).rule == "never-touch-tagged"


def test_a_rule_can_match_on_resource_type_and_involvement() -> None:
    rules = [
        {"name": "attacked", "involvement": "attacked", "action": "ignore"},
        {"name": "hosts", "resource_types": ["ECSCluster", "EKSCluster", "Container"], "action": "isolate"},
        {"name": "rest", "action": "report"},
    ]
    probe = documented_event("Recon:EC2/PortProbeUnprotectedPort")
    on_a_cluster = documented_event("PrivilegeEscalation:Runtime/DockerSocketAccessed")
    on_a_cluster["detail"]["resource"] = resource("ECSCluster")

    assert decided(probe, rules).rule == "attacked"
    assert decided(on_a_cluster, rules).rule == "hosts" and decided(on_a_cluster, rules).code == "isolate"


def test_a_finding_no_rule_matches_is_reported() -> None:
    decision = decided(
        documented_event("Backdoor:EC2/Spambot", severity=5), [{"name": "x", "min_severity": 9, "action": "isolate"}]
    )

    assert (decision.code, decision.rule) == ("report", None) and "no response rule matches" in decision.reason


def test_the_default_rules_isolate_implicated_at_high_ask_at_medium_and_report_the_rest() -> None:
    assert [(rule.name, str(rule.action), rule.min_severity) for rule in default_rules()] == [
        ("instance-credentials", "report", 0),
        ("container-hosts", "report", 0),
        ("approve-instance-groups", "approve", 0),
        ("isolate-implicated", "isolate", 7),
        ("approve-implicated", "approve", 4),
        ("report-attacked", "report", 0),
    ]
    assert default_rules("contain")[0].action == "isolate" and default_rules("ignore")[0].action == "ignore"
    assert parse_rules(rules_to_json(default_rules())) == default_rules()


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (
            '[{"name": "a", "action": "quarantine"}]',
            "response rule 1 ('a'): action 'quarantine' must be one of isolate, approve, report, ignore",
        ),
        (
            '[{"name": "a", "action": "isolate"}, {"name": "b", "action": "report", "involvment": "any"}]',
            "response rule 2 ('b'): unknown key(s) involvment",
        ),
        (
            '[{"name": "a", "action": "isolate", "involvement": "victim"}]',
            "response rule 1 ('a'): involvement 'victim'",
        ),
        (
            '[{"name": "a", "action": "isolate", "resource_types": ["S3Bucket"]}]',
            "response rule 1 ('a'): resource_types ['S3Bucket']",
        ),
        ('[{"name": "a", "action": "isolate", "min_severity": 11}]', "response rule 1 ('a'): min_severity 11"),
        ('[{"name": "a", "action": "isolate"}, {"name": "a", "action": "report"}]', "names must be unique: a repeated"),
        ('[{"action": "isolate"}]', "response rule 1: name must be"),
        ("[]", "a non-empty JSON list"),
        ("{not json", "not JSON"),
    ],
)
def test_a_bad_rule_is_refused_naming_the_rule(rules: str, message: str) -> None:
    with pytest.raises(RulesError) as raised:
        parse_rules(rules)

    assert message in str(raised.value)


def test_a_bad_rule_fails_the_function_s_configuration_check_naming_it(stack: Stack) -> None:
    environment = dict(stack.env, RESPONSE_RULES='[{"name": "noisy", "action": "quarantine"}]')

    with pytest.raises(ConfigError, match=r"RESPONSE_RULES: response rule 1 \('noisy'\): action 'quarantine'"):
        Settings.from_environ(environment)


def test_rules_reach_the_function_through_its_environment(stack: Stack) -> None:
    stack.configure(RESPONSE_RULES=json.dumps(EXAMPLE))
    noisy, serious = stack.launch(), stack.launch()
    quiet = stack.event("tor_client", noisy)
    quiet["detail"]["type"] = "DefenseEvasion:EC2/UnusualDNSResolver"

    ignored = stack.invoke(quiet)
    isolated = stack.invoke(stack.event("bitcoin_tool_dns", serious))

    assert (ignored["decision"], ignored["rule"]) == ("ignore", "quiet-dns-resolver") and not stack.isolated(noisy)
    assert (isolated["decision"], isolated["rule"]) == ("isolate", "isolate-high") and stack.isolated(serious)
    assert len(stack.messages()) == 1, "an ignored finding is recorded only"
    assert stack.record(quiet["detail"]["id"])["decision"] == "ignore"
