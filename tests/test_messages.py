"""The Jira issue and the SNS message (README, "What happens to a finding"): the facts a responder needs, nothing injected."""

from __future__ import annotations

import re

import pytest

from guardduty_events import documented_event
from guardduty_responder.finding import parse_finding
from guardduty_responder.notification import notification_text
from guardduty_responder.policy import Action, Decision, DecisionCode, Outcome, decide, unconfirmed
from guardduty_responder.rules import default_rules
from guardduty_responder.ticketing import finding_label, ticket_text, untrusted

from conftest import ISOLATING_FIXTURES, NOT_ISOLATING_FIXTURES, Stack, load_event

ISOLATED = Decision(Action.ISOLATE, DecisionCode.ISOLATE, "the instance is the actor of the finding: isolated")
HOSTILE = {
    "title": "Click [here|http://evil.example/x] {color:red}*urgent*{color} !http://evil.example/p.png!",
    "description": "line one\r\nh1. Fake heading\n----\n\x1b[31m\u202eevil\x00 mailto:x@evil.example [~admin]",
}


def hostile_finding(size: int = 0):
    event = load_event("tor_client")
    event["detail"].update(HOSTILE)
    if size:
        event["detail"]["description"] = "A" * size + "{code}"
    event["detail"]["resource"]["instanceDetails"]["tags"] = [{"key": "Name", "value": "[x|javascript:alert(1)]"}]
    return parse_finding(event)


def test_values_from_the_finding_cannot_inject_markup_or_links() -> None:
    text = ticket_text(
        hostile_finding(),
        ISOLATED,
        outcome=Outcome.ISOLATED,
        actions=["contain: done"],
        snapshot_ids=[],
        original_groups={},
    )

    description = text.description
    assert "http://" not in description and "mailto:" not in description
    assert not re.search(
        r"(?<!\\)[\[\]{}!|]", description.replace("{{guardduty-responder release", "").replace("}}", "")
    )
    assert "\nh1." not in description and "\n----" not in description
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f\u202e]", description)


@pytest.mark.parametrize(
    "block", ["h1. Fake heading", "bq. quoted", "* a list", "# numbered", "---- rule", "{code}x{code}"]
)
def test_untrusted_text_never_starts_a_line_of_block_markup(block: str) -> None:
    event = load_event("tor_client")
    event["detail"]["description"] = block
    event["detail"]["title"] = block

    text = ticket_text(
        parse_finding(event), ISOLATED, outcome=Outcome.ISOLATED, actions=[block], snapshot_ids=[], original_groups={}
    )

    for line in text.description.splitlines():
        assert not line.startswith(block), line


@pytest.mark.parametrize("path", ["/tmp/x\\Decision: report, false positive\\", "C:\\Windows\\Temp\\a.exe", "\\\\"])
def test_a_backslash_from_the_finding_never_becomes_a_jira_line_break(path: str) -> None:
    """Jira renders two backslashes as a forced line break: escaped as a pair, a backslash in a
    process path would let the finding start lines of its own in the issue (a fake decision)."""
    event = documented_event("Execution:Runtime/ReverseShell")
    event["detail"]["service"]["runtimeDetails"]["process"]["executablePath"] = path

    description = ticket_text(
        parse_finding(event), ISOLATED, outcome=Outcome.ISOLATED, actions=[], snapshot_ids=[], original_groups={}
    ).description

    executable = next(line for line in description.splitlines() if line.startswith("*Executable:*"))
    assert "\\\\" not in executable
    assert executable.count("&#92;") == path.count("\\")


def test_a_link_glued_to_a_word_is_defanged_too() -> None:
    assert "mailto:" not in untrusted("loginmailto:admin@example.com").replace("\\", "")


def test_a_100_kb_field_is_bounded_in_the_issue_and_the_message() -> None:
    finding = hostile_finding(size=100_000)

    text = ticket_text(finding, ISOLATED, outcome=Outcome.ISOLATED, actions=[], snapshot_ids=[], original_groups={})
    message = notification_text(finding, ISOLATED, outcome=Outcome.ISOLATED, actions=[], jira_key="SEC-1")

    assert len(text.description) < 8_000
    assert len(message.body) < 3_000
    assert "(truncated)" in text.description


@pytest.mark.parametrize(
    "severity,priority",
    [
        (10, "Highest"),
        (9.0, "Highest"),
        (8.9, "High"),
        (7, "High"),
        (6.9, "Medium"),
        (4, "Medium"),
        (3.9, "Low"),
        (1, "Low"),
    ],
)
def test_priority_follows_guardduty_severity_bands(severity: float, priority: str) -> None:
    event = load_event("tor_client")
    event["detail"]["severity"] = severity

    text = ticket_text(
        parse_finding(event), ISOLATED, outcome=Outcome.ISOLATED, actions=[], snapshot_ids=[], original_groups={}
    )

    assert text.priority == priority


def test_the_issue_carries_the_facts_a_responder_needs() -> None:
    finding = parse_finding(load_event("backdoor_cc_dns"))

    text = ticket_text(
        finding,
        ISOLATED,
        outcome=Outcome.ISOLATED,
        actions=["contain: 1 network interface(s) on isolation group sg-0123456789abcdef0"],
        snapshot_ids=["snap-0123456789abcdef0"],
        original_groups={"eni-0123456789abcdef0": ("sg-0aaaaaaaaaaaaaaaa",)},
    )

    for fact in (
        finding.account_id,
        finding.region,
        finding.instance_id,
        finding.finding_id,
        "snap-0123456789abcdef0",
        "sg-0aaaaaaaaaaaaaaaa",
        "8 (HIGH)",
        "guardduty-responder release",
    ):
        assert fact in text.description, fact
    assert finding_label(finding.finding_id) in text.labels
    assert len(text.summary) <= 255 and "\n" not in text.summary


@pytest.mark.parametrize("fixture", ISOLATING_FIXTURES + NOT_ISOLATING_FIXTURES)
def test_the_message_fits_a_phone_and_can_be_filtered(fixture: str) -> None:
    finding = parse_finding(load_event(fixture))

    message = notification_text(
        finding, ISOLATED, outcome=Outcome.ISOLATED, actions=["contain: done"], jira_key="SEC-9"
    )

    assert len(message.subject) < 100
    assert all(" " <= c <= "~" for c in message.subject)
    assert max(len(line) for line in message.body.splitlines()) <= 200
    assert message.body.splitlines()[0] == f"ISOLATED: {finding.instance_id}"
    assert message.attributes["severity"]["StringValue"] == finding.severity_label
    assert message.attributes["finding_type"]["StringValue"] == finding.finding_type
    assert message.attributes["action"]["StringValue"] == "isolate"


def test_the_published_message_carries_its_attributes(stack: Stack) -> None:
    instance_id = stack.launch()

    stack.invoke(stack.event("bitcoin_tool_dns", instance_id))

    message = stack.messages()[0]
    assert message["MessageAttributes"]["severity"]["Value"] == "HIGH"
    assert message["MessageAttributes"]["finding_type"]["Value"] == "CryptoCurrency:EC2/BitcoinTool.B!DNS"
    assert len(message["Subject"]) < 100 and instance_id in message["Subject"]


def test_hostile_fields_come_out_harmless_in_a_real_issue(stack: Stack) -> None:
    instance_id = stack.launch()
    event = stack.event("tor_client", instance_id)
    event["detail"].update(HOSTILE)

    stack.invoke(event)

    issue = next(iter(stack.jira.issues.values()))
    assert "http://" not in issue["fields"]["description"]
    assert "\n" not in issue["fields"]["summary"]


def test_untrusted_keeps_ordinary_text_readable() -> None:
    assert untrusted("Recon:EC2/Portscan on i-0abc, 2024-06-03") == "Recon:EC2/Portscan on i-0abc, 2024-06-03"


# Host names and addresses a phone or a mail client would make links of, as the finding carries them.
PLANTED_HOSTS = ("evil.example.com", "198.51.100.7", "c2.evil-relay.net", "api.cdn-update.example.org", "ops.evil.io")


def linky_finding(fixture: str = "backdoor_cc_dns"):
    event = load_event(fixture)
    detail = event["detail"]
    detail["title"] = (
        "Beacon to http://evil.example.com/a and HTTPS://198.51.100.7/b \u202evia\u2066 c2.evil-relay.net\x1b[31m "
        "mailto:x@evil.example.com"
    )
    action = detail["service"].get("action", {})
    if "dnsRequestAction" in action:
        action["dnsRequestAction"]["domain"] = "api.cdn-update.example.org"
    if detail["resource"].get("accessKeyDetails"):
        detail["resource"]["accessKeyDetails"]["userName"] = "ops.evil.io"
    return parse_finding(event)


def assert_defanged(text: str) -> None:
    assert "://" not in text and "mailto:" not in text.lower()
    for host in PLANTED_HOSTS:
        assert host not in text, host
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f\u200e\u200f\u202a-\u202e\u2066-\u2069]", text)


@pytest.mark.parametrize("fixture", ["backdoor_cc_dns", "instance_credential_exfiltration"])
def test_links_host_names_and_addresses_from_the_finding_are_defanged_in_the_message(fixture: str) -> None:
    finding = linky_finding(fixture)
    decision = decide(finding, rules=default_rules("contain"), dry_run=False, exempt_tag_key=None)

    message = notification_text(finding, decision, outcome=Outcome.ISOLATED, actions=["contain: done"], jira_key=None)

    assert_defanged(message.subject + "\n" + message.body)
    assert "evil[.]example[.]com" in message.body and "198[.]51[.]100[.]7" in message.body
    if fixture == "backdoor_cc_dns":
        assert "api[.]cdn-update[.]example[.]org" in message.body  # in the reason: what the instance queried
    else:
        assert "ops[.]evil[.]io" in message.body
    # A type GuardDuty documents is shown as it is; the filterable attribute always is.
    assert finding.finding_type in message.body
    assert message.attributes["finding_type"]["StringValue"] == finding.finding_type


def test_an_unconfirmed_delivery_is_announced_defanged() -> None:
    event = load_event("tor_client")
    event["detail"]["type"] = "Recon:EC2/http://evil.example.com"
    finding = parse_finding(event)
    decision = unconfirmed("GuardDuty has no finding at http://198.51.100.7/x in this region")

    message = notification_text(finding, decision, outcome=Outcome.UNCONFIRMED, actions=[], jira_key=None)

    assert_defanged(message.subject + "\n" + message.body)
    assert "Recon:EC2/http[:]//evil[.]example[.]com" in message.body
