"""Tickets on the Jira teams run (README, "Apply" and "Failure semantics"): Cloud and Data Center.

Every test here runs against the stand-in playing Jira Cloud and again playing Jira Data Center,
and (conftest's `jira` fixture) every request the responder sent and every answer the stand-in
gave is checked against Atlassian's OpenAPI documents pinned in tests/jira_openapi/. The stand-in
listens on 127.0.0.1: no host name says which deployment it is.
"""

from __future__ import annotations

import base64
import time
from decimal import Decimal

import pytest

from guardduty_responder import handler
from guardduty_responder.responder import JIRA_SEARCH_SETTLE_SECONDS, IncompleteResponseError
from guardduty_responder_tools.jira_standin import CLOUD, DATACENTER, Project

from conftest import TABLE, Stack

pytestmark = pytest.mark.both_jira_deployments

SEARCH = {CLOUD: "/rest/api/3/search/jql", DATACENTER: "/rest/api/2/search"}


def paths(stack: Stack, method: str | None = None) -> list[str]:
    return [path for asked, path, _ in stack.jira.requests if method is None or asked == method]


def creates(stack: Stack) -> int:
    return sum(1 for path in paths(stack, "POST") if path.endswith("/rest/api/2/issue"))


def searches(stack: Stack) -> list[str]:
    return [path for path in paths(stack, "GET") if "/search" in path]


def ticket_error(stack: Stack, finding_id: str) -> str:
    record = stack.record(finding_id)
    assert record is not None and record["steps"]["ticket"]["status"] == "failed"
    return str(record["steps"]["ticket"]["error"])


def assert_let_go(stack: Stack, finding_id: str) -> None:
    """The invocation ended with the finding unfinished and its lease released, for the next delivery."""
    record = stack.record(finding_id)
    assert record is not None and record["completed"] is False and record["lease_until"] == 0


def age_the_filing_mark(stack: Stack, finding_id: str, seconds: float) -> None:
    record = stack.record(finding_id)
    assert record is not None and "ticket_filing" in record, "no create was marked as under way"
    stack.dynamodb.update_item(
        TableName=TABLE,
        Key={"pk": {"S": finding_id}},
        UpdateExpression="SET ticket_filing = :at",
        ExpressionAttributeValues={":at": {"N": str(Decimal(str(record["ticket_filing"])) - Decimal(seconds))}},
    )


# -- which Jira it is --------------------------------------------------------------------------------------


def test_jira_is_asked_which_deployment_it_is_once_per_container(stack: Stack, jira_deployment: str) -> None:
    first, second = stack.launch(), stack.launch()
    stack.invoke(stack.event("tor_client", first))
    stack.invoke(stack.event("backdoor_cc_dns", second))

    assert paths(stack).count("/rest/api/2/serverInfo") == 1
    assert len(stack.jira.issues) == 2
    assert stack.responder().ticketing.deployment() == jira_deployment


def test_a_secret_that_names_its_deployment_is_believed_and_jira_is_not_asked(
    stack: Stack, jira_deployment: str
) -> None:
    stack.put_jira_secret({**stack.jira_secret(), "deployment": jira_deployment})
    stack.invoke(stack.event("tor_client", stack.launch()))

    assert "/rest/api/2/serverInfo" not in paths(stack)
    assert len(stack.jira.issues) == 1


def test_a_retry_searches_where_its_deployment_answers_and_finds_the_issue_whose_answer_was_lost(
    stack: Stack, jira_deployment: str
) -> None:
    event = stack.event("tor_client", stack.launch())
    finding_id = event["detail"]["id"]
    stack.jira.lose_answers(only=r"/rest/api/2/issue$")  # Jira files it; the answer never arrives

    with pytest.raises(IncompleteResponseError, match="ticket"):
        stack.invoke(event)
    assert len(stack.jira.issues) == 1
    assert_let_go(stack, finding_id)

    handler.reset()  # Lambda's retry, in another container
    summary = stack.invoke(event)

    assert summary["jira_key"] == next(iter(stack.jira.issues)) and creates(stack) == 1
    assert searches(stack) == [SEARCH[jira_deployment]]
    assert stack.record(finding_id)["completed"] is True


# -- no second issue, whatever the index says -------------------------------------------------------------


def test_a_retry_never_files_a_second_issue_while_the_search_index_lags(stack: Stack) -> None:
    stack.jira.index_delay_seconds = 3600  # the new issue is not in search results until the index catches up
    event = stack.event("tor_client", stack.launch())
    finding_id = event["detail"]["id"]
    stack.jira.lose_answers(only=r"/rest/api/2/issue$")
    with pytest.raises(IncompleteResponseError, match="ticket"):
        stack.invoke(event)
    assert len(stack.jira.issues) == 1

    for _ in range(2):  # Lambda's two retries, each in a container of its own
        handler.reset()
        with pytest.raises(IncompleteResponseError, match="search does not show it yet"):
            stack.invoke(event)
        assert creates(stack) == 1 and len(stack.jira.issues) == 1
        assert_let_go(stack, finding_id)
    assert f"filed anew only if it is still not found {JIRA_SEARCH_SETTLE_SECONDS:.0f} s after" in ticket_error(
        stack, finding_id
    )

    stack.jira.catch_up()
    handler.reset()
    summary = stack.invoke(event)

    assert summary["jira_key"] == next(iter(stack.jira.issues)) and creates(stack) == 1
    assert stack.record(finding_id)["completed"] is True


def test_past_the_settle_window_a_create_that_left_no_issue_is_sent_again(stack: Stack) -> None:
    """The create's connection dropped before Jira carried it out: the client cannot tell, so the retry
    waits for the search to settle, then files the one issue."""
    event = stack.event("tor_client", stack.launch())
    finding_id = event["detail"]["id"]
    stack.jira.drop_requests(only=r"/rest/api/2/issue$")
    with pytest.raises(IncompleteResponseError, match="ticket"):
        stack.invoke(event)
    assert stack.jira.issues == {}
    handler.reset()
    with pytest.raises(IncompleteResponseError, match="search does not show it yet"):
        stack.invoke(event)

    age_the_filing_mark(stack, finding_id, JIRA_SEARCH_SETTLE_SECONDS + 1)
    handler.reset()
    summary = stack.invoke(event)

    assert summary["jira_key"] == next(iter(stack.jira.issues)) and len(stack.jira.issues) == 1
    assert creates(stack) == 2


def test_a_create_jira_refused_needs_no_wait_the_retry_files_at_once(stack: Stack) -> None:
    event = stack.event("tor_client", stack.launch())
    finding_id = event["detail"]["id"]
    stack.jira.fail(503, only=r"/rest/api/2/issue$")
    with pytest.raises(IncompleteResponseError, match="HTTP 503"):
        stack.invoke(event)
    assert "ticket_filing" not in stack.record(finding_id)

    handler.reset()
    summary = stack.invoke(event)

    assert summary["jira_key"] == next(iter(stack.jira.issues)) and len(stack.jira.issues) == 1


# -- every answer used or a step error ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["html", "list", "no-key"])
def test_a_malformed_answer_to_the_create_is_a_step_error_and_the_message_still_goes_out(
    stack: Stack, kind: str
) -> None:
    event = stack.event("tor_client", stack.launch())
    finding_id = event["detail"]["id"]
    stack.jira.malform(kind, only=r"/rest/api/2/issue$")

    with pytest.raises(IncompleteResponseError, match="ticket"):
        stack.invoke(event)

    error = ticket_error(stack, finding_id)
    named = {"html": "no JSON: text/html", "list": "without an issue key: []", "no-key": "without an issue key"}
    assert named[kind] in error
    assert_let_go(stack, finding_id)
    messages = stack.messages()
    assert len(messages) == 1 and "Jira: still to come" in messages[0]["Message"]
    # Jira did file it: the retry finds it rather than file another.
    handler.reset()
    summary = stack.invoke(event)
    assert summary["jira_key"] == next(iter(stack.jira.issues)) and len(stack.jira.issues) == 1


@pytest.mark.parametrize("kind", ["html", "list", "no-key"])
def test_a_malformed_answer_to_the_search_is_a_step_error_naming_it(stack: Stack, kind: str) -> None:
    event = stack.event("tor_client", stack.launch())
    finding_id = event["detail"]["id"]
    stack.jira.fail(503, only=r"/rest/api/2/issue$")
    with pytest.raises(IncompleteResponseError):
        stack.invoke(event)
    stack.messages()
    stack.jira.malform(kind, only="/search")

    with pytest.raises(IncompleteResponseError, match="ticket"):
        stack.invoke(event)

    error = ticket_error(stack, finding_id)
    named = {"html": "no JSON: text/html", "list": "without a list of issues", "no-key": "without an issue key"}
    assert named[kind] in error
    assert_let_go(stack, finding_id)
    assert stack.jira.issues == {}


def test_jiras_own_reason_reaches_the_record_the_message_and_the_log(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    stack.jira.projects["SEC"] = Project(screen=("summary", "issuetype", "project", "description", "priority"))
    event = stack.event("tor_client", stack.launch())
    finding_id = event["detail"]["id"]

    with pytest.raises(IncompleteResponseError, match="ticket"):
        stack.invoke(event)

    reason = "labels: Field 'labels' cannot be set. It is not on the appropriate screen, or unknown."
    assert "HTTP 400" in ticket_error(stack, finding_id) and reason in ticket_error(stack, finding_id)
    message = stack.messages()[0]["Message"]
    assert "Field 'labels' cannot be set" in message
    assert any(reason in record.getMessage() or reason in str(record.__dict__) for record in caplog.records)
    assert "ticket_filing" not in stack.record(finding_id)  # refused: nothing to wait for


def test_a_priority_jira_refuses_is_left_out_and_the_issue_says_why(stack: Stack) -> None:
    stack.jira.projects["SEC"] = Project(screen=("summary", "issuetype", "project", "description", "labels"))
    summary = stack.invoke(stack.event("tor_client", stack.launch()))

    issue = stack.jira.issues[summary["jira_key"]]
    assert "priority" not in issue["fields"]
    assert "could not be set: Field 'priority' cannot be set" in issue["fields"]["description"]
    assert creates(stack) == 2


# -- 429, 401 and 413 ---------------------------------------------------------------------------------------


def test_a_429_whose_retry_after_fits_the_budget_is_waited_for(stack: Stack) -> None:
    stack.configure(JIRA_TIMEOUT_SECONDS="10")
    stack.jira.fail(429, headers={"Retry-After": "1"}, only=r"/rest/api/2/issue$")

    summary = stack.invoke(stack.event("tor_client", stack.launch()))

    assert summary["jira_key"] == next(iter(stack.jira.issues)) and creates(stack) == 2


def test_a_429_asking_for_longer_than_the_budget_defers_to_the_next_delivery(stack: Stack) -> None:
    event = stack.event("tor_client", stack.launch())
    finding_id = event["detail"]["id"]
    stack.jira.fail(429, headers={"Retry-After": "600"}, only=r"/rest/api/2/issue$")

    started = time.monotonic()
    with pytest.raises(IncompleteResponseError, match="deferred to the next delivery"):
        stack.invoke(event)
    assert time.monotonic() - started < 30  # not the 600 s asked for
    assert creates(stack) == 1 and "Retry-After 600 s" in ticket_error(stack, finding_id)

    summary = stack.invoke(event)  # nothing was filed: the next delivery files at once
    assert summary["jira_key"] == next(iter(stack.jira.issues)) and len(stack.jira.issues) == 1


def test_a_rotated_token_is_read_again_after_a_401_without_a_new_container(stack: Stack) -> None:
    stack.invoke(stack.event("tor_client", stack.launch()))
    secret = stack.jira_secret()
    rotated = {**secret, **({"api_token": "rotated"} if "api_token" in secret else {"token": "rotated"})}
    stack.jira.use_credentials(username=secret.get("username"), token="rotated")
    stack.put_jira_secret(rotated)
    event = stack.event("backdoor_cc_dns", stack.launch())

    with pytest.raises(IncompleteResponseError, match="HTTP 401"):
        stack.invoke(event)  # the warm container still holds the old token
    assert "reads the secret again" in ticket_error(stack, event["detail"]["id"])

    summary = stack.invoke(event)  # same container: the secret is read again
    assert summary["jira_key"] in stack.jira.issues and len(stack.jira.issues) == 2


def test_an_issue_at_jiras_comment_limit_is_not_retried_for_ever(stack: Stack) -> None:
    instance_id = stack.launch()
    stack.invoke(stack.event("tor_client", instance_id))
    stack.jira.comment_limit = 0
    second = stack.event("backdoor_cc_dns", instance_id)

    summary = stack.invoke(second)  # complete: nothing left that a retry could do

    record = stack.record(second["detail"]["id"])
    assert record["steps"]["ticket"]["status"] == "skipped" and record["completed"] is True
    assert "limit of comments per issue" in record["steps"]["ticket"]["detail"]
    assert summary["jira_key"] is None or summary["jira_key"] in stack.jira.issues
    assert len(stack.messages()) == 2


# -- the project checked before the first incident ----------------------------------------------------------


def checks(stack: Stack) -> dict[str, tuple[bool, str]]:
    from guardduty_responder.ticketing import PRIORITY_NAMES

    return {check.name: (check.ok, check.detail) for check in stack.responder().ticketing.check_project(PRIORITY_NAMES)}


def test_a_project_ready_for_incidents_passes_every_check(stack: Stack, jira_deployment: str) -> None:
    found = checks(stack)

    assert all(ok for ok, _ in found.values()), found
    assert SEARCH[jira_deployment] in found["search"][1]
    assert set(found) == {
        "secret and deployment",
        "search",
        "issue type Task",
        "field summary",
        "field description",
        "field priority",
        "field labels",
        "priorities",
    }
    assert stack.jira.issues == {}  # nothing filed


def test_each_missing_piece_of_the_project_is_named_with_its_remedy(stack: Stack) -> None:
    stack.jira.projects["SEC"] = Project(
        screen=("summary", "issuetype", "project", "description", "priority"), priorities=("P1", "High", "P3")
    )
    found = checks(stack)
    assert found["field labels"] == (
        False,
        "not on the create screen of SEC / Task: add it to the screen (without labels no retry can find the "
        "issue it filed)",
    )
    assert found["priorities"][0] is False
    assert "Highest, Medium, Low not in the project's priority scheme (it has: High, P1, P3)" in found["priorities"][1]

    stack.configure(JIRA_ISSUE_TYPE="Incident")
    found = checks(stack)
    assert found["issue type Incident"] == (
        False,
        "project SEC has no issue type 'Incident' the account may create (it has: Task, Bug): set jira_issue_type "
        "to one of them",
    )

    stack.configure(JIRA_PROJECT_KEY="NOPE", JIRA_ISSUE_TYPE="Task")
    found = checks(stack)
    assert found["issue type Task"][0] is False and "check JIRA_PROJECT_KEY" in found["issue type Task"][1]


# -- answers nobody should send, read safely --------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [{"errorMessages": 5, "errors": []}, {"errorMessages": [None, {"x": 1}], "errors": "no"}, ["not", "an", "object"]],
)
def test_an_error_answer_of_any_shape_is_a_step_error_and_the_message_goes_out(stack: Stack, body: object) -> None:
    event = stack.event("tor_client", stack.launch())
    finding_id = event["detail"]["id"]
    stack.jira.fail(400, body=body, only=r"/rest/api/2/issue$")

    with pytest.raises(IncompleteResponseError, match="HTTP 400"):
        stack.invoke(event)

    assert "HTTP 400" in ticket_error(stack, finding_id)
    assert len(stack.messages()) == 1
    assert_let_go(stack, finding_id)


@pytest.mark.parametrize("fields", [None, {}, "labels", ["labels"]])
def test_a_search_hit_whose_labels_did_not_come_back_is_still_the_issue(stack: Stack, fields: object) -> None:
    event = stack.event("tor_client", stack.launch())
    stack.jira.lose_answers(only=r"/rest/api/2/issue$")
    with pytest.raises(IncompleteResponseError):
        stack.invoke(event)
    (key,) = stack.jira.issues
    stack.jira.fail(200, body={"issues": [{"id": "10001", "key": key, "fields": fields}]}, only="/search")

    handler.reset()
    summary = stack.invoke(event)

    assert summary["jira_key"] == key and creates(stack) == 1


@pytest.mark.parametrize("status", [303, 500, 502, 504, 524])
def test_an_answer_that_may_follow_a_create_keeps_the_mark(stack: Stack, status: int) -> None:
    event = stack.event("tor_client", stack.launch())
    stack.jira.fail(status, only=r"/rest/api/2/issue$")

    with pytest.raises(IncompleteResponseError, match=f"HTTP {status}"):
        stack.invoke(event)

    assert "ticket_filing" in stack.record(event["detail"]["id"])


def test_rate_limits_are_waited_out_three_times_at_most(stack: Stack) -> None:
    stack.configure(JIRA_TIMEOUT_SECONDS="10")
    event = stack.event("tor_client", stack.launch())
    stack.jira.fail(429, times=10, headers={"Retry-After": "0"}, only=r"/rest/api/2/issue$")

    with pytest.raises(IncompleteResponseError, match="rate-limited the create issue 4 times in a row"):
        stack.invoke(event)

    assert creates(stack) == 4


def test_jiras_reason_for_refusing_the_priority_is_inert_in_the_issue(stack: Stack) -> None:
    reason = "see [here|http://evil.example/x] *now*"
    stack.jira.fail(400, body={"errorMessages": [], "errors": {"priority": reason}}, only=r"/rest/api/2/issue$")

    summary = stack.invoke(stack.event("tor_client", stack.launch()))

    description = stack.jira.issues[summary["jira_key"]]["fields"]["description"]
    assert "could not be set: see \\[here\\|http\\[:\\]//evil.example/x\\] \\*now\\*" in description
    assert "[here|http://" not in description


def test_an_answer_echoing_the_credentials_never_carries_them_further(stack: Stack) -> None:
    secret = stack.jira_secret()
    token = secret.get("api_token") or secret["token"]
    username = secret.get("username")
    basic = base64.b64encode(f"{username}:{token}".encode()).decode() if username else token
    echoed = f"bad request; Authorization: Basic {basic}; Bearer {token}"
    event = stack.event("tor_client", stack.launch())
    finding_id = event["detail"]["id"]
    stack.jira.fail(400, body={"errorMessages": [echoed], "errors": {}}, only=r"/rest/api/2/issue$")

    with pytest.raises(IncompleteResponseError) as failed:
        stack.invoke(event)

    error = ticket_error(stack, finding_id)
    message = stack.messages()[0]["Message"]
    for text in (error, message, str(failed.value)):
        assert token not in text and basic not in text
    assert "[redacted]" in error


def test_the_project_check_never_waits_past_its_budget(stack: Stack) -> None:
    stack.jira.fail(429, times=10, headers={"Retry-After": "86400"}, only="createmeta")

    started = time.monotonic()
    found = checks(stack)

    assert time.monotonic() - started < 20
    assert found["issue type Task"][0] is False and "HTTP 429" in found["issue type Task"][1]


@pytest.mark.parametrize("allowed", [None, "High", ["High", 3, None]])
def test_priorities_of_any_shape_in_the_create_metadata_are_a_failed_check_not_a_crash(
    stack: Stack, allowed: object
) -> None:
    field = {"fieldId": "priority", "name": "Priority", "required": False, "allowedValues": allowed}
    fields = [{"fieldId": name, "name": name} for name in ("summary", "description", "labels")] + [field]
    page = {"startAt": 0, "maxResults": 50, "total": len(fields), "fields": fields, "values": fields}
    stack.jira.fail(200, body=page, only=r"/issuetypes/\d+$")

    found = checks(stack)

    assert found["priorities"][0] is False
    assert "(it has: none)" in found["priorities"][1]
