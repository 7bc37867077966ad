"""Hostile input (README, "What happens to a finding", "Failure semantics"): a finding is attacker-influenced text.

The parser rejects anything malformed with its own error and nothing else; hostile values travel a
full run and come out inert in the Jira issue and the SNS message; the Jira token never reaches the logs.
"""

from __future__ import annotations

import copy
import logging
import re
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from guardduty_responder.finding import Finding, MalformedFindingError, parse_finding
from guardduty_responder.responder import IncompleteResponseError

from conftest import ISOLATING_FIXTURES, NOT_ISOLATING_FIXTURES, Stack, load_event

EVENTS = [load_event(name) for name in ISOLATING_FIXTURES + NOT_ISOLATING_FIXTURES]

# -- the parser: mutated realistic events -----------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=6,
)


def _slots(value: Any, path: tuple = ()) -> list[tuple]:
    """Every place in the event a mutation can hit, as a path of keys and indexes."""
    slots = [path]
    if isinstance(value, dict):
        for key, child in value.items():
            slots += _slots(child, path + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            slots += _slots(child, path + (index,))
    return slots


@st.composite
def mutated_events(draw: st.DrawFn) -> Any:
    event = copy.deepcopy(draw(st.sampled_from(EVENTS)))
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(_slots(event)))
        if not path:
            return draw(json_values)  # the whole event replaced
        parent = event
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        mutation = draw(st.sampled_from(["delete", "replace", "stringify", "edit-text"]))
        if mutation == "delete":
            del parent[key]
        elif mutation == "replace":
            parent[key] = draw(json_values)
        elif mutation == "stringify":
            parent[key] = str(parent[key])
        elif isinstance(parent[key], str):
            text = parent[key]
            at = draw(st.integers(0, len(text)))
            parent[key] = text[:at] + draw(st.text(max_size=5)) + text[at + draw(st.integers(0, 3)) :]
    return event


@settings(max_examples=300, deadline=None, derandomize=True)
@given(mutated_events())
def test_the_only_error_a_mutated_event_raises_is_the_parsers_own(event: Any) -> None:
    try:
        finding = parse_finding(event)
    except MalformedFindingError as error:
        assert error.field and str(error).startswith("malformed GuardDuty event:")
        return
    # Accepted: what the responder acts on is still well formed.
    assert isinstance(finding, Finding)
    assert re.fullmatch(r"i-[0-9a-f]{8,17}", finding.instance_id)
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,128}", finding.finding_id)
    assert 0 <= finding.severity <= 10 and finding.count >= 1
    assert all(len(text) <= 2048 for text in (finding.title, finding.description, finding.updated_at))


# -- hostile values through a full run -----------------------------------------------------------------

FRAGMENTS = [
    "[click|http://evil.example/x]",
    "https://evil.example/login",
    "mailto:ceo@evil.example",
    "javascript:alert(1)",
    "{color:red}*urgent*{color}",
    "!http://evil.example/pixel.png!",
    "{code}",
    "{{monospace}}",
    "[~admin]",
    "\nh1. Fake heading\n",
    "\r\n----\r\n",
    "||a||b||",
    "\x1b[31m",
    "\x00\x07\x7f",
    "\u202eevil\u202c",
    "\u2066\u2069",
    "\u200b",
    " -strike- +ins+ ^sup^ ~sub~ ??cite?? ",
    "\\\\",
]
hostile_text = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=20), min_size=1, max_size=8).map("".join)
LINK = re.compile(r"(?i)\b(https?|ftp|file|mailto|javascript|data):")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
# Markup characters that are not escaped by a backslash.
BARE_MARKUP = re.compile(r"(?<!\\)[\[\]{}|!]")
TEMPLATE_HEADINGS = re.compile(
    r"(?m)^h2\. (GuardDuty finding|Decision|Actions taken|Snapshots|Evidence|What stays open|Security groups before isolation"
    r"|How to release)$"
)
# The template's own markup: the release command, and the manifest's URI and hash (ticketing checks both are the
# responder's own values before it writes them unescaped).
TEMPLATE_MACRO = re.compile(
    r"\{\{guardduty-responder release i-[0-9a-f]+\}\}"
    r"|\{noformat\}\nmanifest: s3://[a-z0-9.-]+/[A-Za-z0-9._/-]+\n(version:  [A-Za-z0-9._+=-]+\n)?"
    r"SHA-256:  [0-9a-f]{64}\n\{noformat\}"
)


def assert_inert_in_jira(issue: dict[str, Any]) -> None:
    fields = issue["fields"]
    description = TEMPLATE_MACRO.sub("", fields["description"])
    assert not LINK.search(description), "a link survived"
    assert not BARE_MARKUP.search(description), "unescaped markup survived"
    assert not CONTROL.search(description)
    assert not re.search(r"(?m)^(h[1-6]\.|bq\.|----|\|\|)", TEMPLATE_HEADINGS.sub("", description))
    assert len(fields["description"]) < 8_000
    assert "\n" not in fields["summary"] and not CONTROL.search(fields["summary"]) and len(fields["summary"]) <= 255


def assert_harmless_in_sns(message: dict[str, Any]) -> None:
    assert len(message["Subject"]) < 100 and all(" " <= c <= "~" for c in message["Subject"])
    body = message["Message"]
    assert not CONTROL.search(body)
    assert len(body) < 3_000
    # One line per fact: hostile text cannot forge lines of its own (a fake "Outcome:" say).
    assert sum(line.startswith("Outcome:") for line in body.splitlines()) == 1


@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],  # each example is a full run: no slow shrinking in CI
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(title=hostile_text, description=hostile_text, updated_at=hostile_text)
def test_hostile_finding_fields_come_out_inert_in_the_issue_and_the_message(
    stack: Stack, title: str, description: str, updated_at: str
) -> None:
    # One stack for every example: each uses a fresh instance and finding id.
    instance_id = stack.launch()
    event = stack.event("backdoor_cc_dns", instance_id, finding_id=uuid.uuid4().hex)
    event["detail"].update(title=title, description=description, updatedAt=updated_at)

    stack.invoke(event)

    [issue] = stack.jira.issues_labelled(f"guardduty-finding-{event['detail']['id']}")
    assert_inert_in_jira(issue)
    [message] = stack.messages()
    assert_harmless_in_sns(message)


def test_100_kb_hostile_fields_are_bounded_and_inert_after_a_full_run(stack: Stack) -> None:
    instance_id = stack.launch()
    event = stack.event("tor_client", instance_id)
    flood = "".join(FRAGMENTS) * (100_000 // len("".join(FRAGMENTS)) + 1)
    event["detail"].update(title=flood[:100_000], description=flood[:100_000])
    event["detail"]["resource"]["instanceDetails"]["tags"] = [{"key": "Name", "value": flood[:100_000]}]

    stack.invoke(event)

    [issue] = stack.jira.issues.values()
    assert_inert_in_jira(issue)
    assert "(truncated)" in issue["fields"]["description"]
    [message] = stack.messages()
    assert_harmless_in_sns(message)


# -- the Jira token never reaches the logs --------------------------------------------------------------


def test_the_jira_token_never_appears_in_the_logs_of_a_full_run(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The JSON handler keeps the stdout it was configured with; a fresh one writes to this test's.
    monkeypatch.setattr(logging.getLogger("guardduty_responder"), "handlers", [])
    instance_id = stack.launch(enis=2)
    event = stack.event("ssh_bruteforce", instance_id)
    stack.jira.fail(401, times=1)  # Jira refuses the credentials once: the error path logs too
    with pytest.raises(IncompleteResponseError):
        stack.invoke(event)
    stack.invoke(event)  # the retry files the issue
    assert len(stack.jira.issues) == 1

    logs = capsys.readouterr().out
    assert '"finding_id"' in logs and "Jira" in logs  # the JSON logs of both runs were captured
    assert stack.jira_token not in logs
    assert stack.jira_token.removeprefix("jira-token-") not in logs
