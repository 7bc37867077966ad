"""A person in the loop (README, "Approvals"): a rule may say `approve`; the finding is assessed, recorded,
ticketed and announced as awaiting approval with nothing changed; a person approves or rejects by command
(their own credentials) and the function's sweep acts on the decision once; a rule's timeout isolates or
reports.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from guardduty_responder import handler
from guardduty_responder.finding import parse_finding
from guardduty_responder.ledger import Ledger, approval_key
from guardduty_responder.policy import Action, DecisionCode, decide
from guardduty_responder.rules import RuleAction, RulesError, default_rules, parse_rules
from guardduty_responder_tools import cli

from conftest import REGION, TABLE, LambdaContext, Stack, load_event

SCHEDULED = {"source": "aws.events", "detail-type": "Scheduled Event", "id": "sweep", "detail": {}}
MOTO_CALLER = "arn:aws:sts::123456789012:user/moto"


def medium(stack: Stack, instance_id: str, finding_id: str | None = None) -> dict[str, Any]:
    """A real implicated finding at medium severity (GuardDuty's Recon:EC2/Portscan, severity 5): approval needed."""
    return stack.event("recon_portscan", instance_id, finding_id=finding_id)


def sweep() -> dict[str, Any]:
    return handler.lambda_handler(copy.deepcopy(SCHEDULED), LambdaContext(60))


def approve(finding_id: str, *extra: str) -> int:
    return cli.main(["approve", finding_id, *extra])


def reject(finding_id: str, *extra: str) -> int:
    return cli.main(["reject", finding_id, *extra])


def subjects(stack: Stack) -> list[str]:
    return [message["Subject"] for message in stack.messages()]


# -- the rules -------------------------------------------------------------------------------------------


def test_the_default_rules_isolate_high_ask_at_medium_and_report_the_rest() -> None:
    event = load_event("recon_portscan")
    rules = default_rules()

    def decided(severity: float) -> Action:
        changed = copy.deepcopy(event)
        changed["detail"]["severity"] = severity
        return decide(parse_finding(changed), rules=rules, dry_run=False, exempt_tag_key=None).action

    assert [decided(s) for s in (8.0, 7.0, 6.9, 4.0, 3.9)] == [
        Action.ISOLATE,
        Action.ISOLATE,
        Action.APPROVE,
        Action.APPROVE,
        Action.REPORT,
    ]
    # Attacked-only stays reported whatever its severity.
    probe = decide(parse_finding(load_event("ssh_bruteforce_inbound")), rules=rules, dry_run=False, exempt_tag_key=None)
    assert probe.action is Action.REPORT


def test_an_approval_rule_takes_a_timeout_and_what_follows_it_and_nothing_else_does() -> None:
    (rule,) = parse_rules(
        json.dumps([{"name": "ask", "action": "approve", "approval_timeout_minutes": 30, "on_timeout": "isolate"}])
    )
    assert (rule.action, rule.approval_timeout_minutes, str(rule.on_timeout)) == (RuleAction.APPROVE, 30, "isolate")
    with pytest.raises(RulesError, match=r"rule 1 \('now'\): approval_timeout_minutes and on_timeout apply only"):
        parse_rules(json.dumps([{"name": "now", "action": "isolate", "approval_timeout_minutes": 5}]))
    with pytest.raises(RulesError, match="on_timeout 'wait' must be one of isolate, report"):
        parse_rules(json.dumps([{"name": "ask", "action": "approve", "on_timeout": "wait"}]))
    with pytest.raises(RulesError, match="approval_timeout_minutes -1 must be a whole number"):
        parse_rules(json.dumps([{"name": "ask", "action": "approve", "approval_timeout_minutes": -1}]))


# -- awaiting approval ----------------------------------------------------------------------------------


def test_a_medium_finding_awaits_approval_with_nothing_changed_one_issue_and_one_message(stack: Stack) -> None:
    instance_id = stack.launch(enis=2)
    before = stack.groups_of(instance_id)
    event = medium(stack, instance_id)
    finding_id = event["detail"]["id"]

    summary = stack.invoke(event)

    assert (summary["action"], summary["decision"], summary["isolated"]) == ("approve", "approval-needed", False)
    assert stack.groups_of(instance_id) == before and stack.snapshots_of(instance_id) == []
    record = stack.record(finding_id)
    assert record["awaiting_approval"] is True and record["completed"] is True
    contain = record["steps"]["contain"]
    assert contain["status"] == "skipped" and "awaiting approval" in contain["detail"]
    # What containment would do, said before anyone approves it.
    for eni in before:
        assert eni in contain["detail"]
    assert "snapshot vol-" in contain["detail"]
    approval = stack.record(approval_key(finding_id))
    assert approval["state"] == "waiting" and approval["jira_key"] == summary["jira_key"]
    (issue,) = stack.jira.issues.values()
    description = issue["fields"]["description"]
    assert issue["fields"]["summary"].startswith("[GuardDuty MEDIUM] Approval needed")
    assert f"guardduty-responder approve {finding_id}" in description.replace("\\", "")
    assert f"guardduty-responder reject {finding_id}" in description.replace("\\", "")
    (message,) = stack.messages()
    assert "APPROVAL NEEDED" in message["Subject"]
    assert f"Approve: guardduty-responder approve {finding_id} --by NAME" in message["Message"]


def test_approved_by_command_the_sweep_isolates_it_once_and_says_so_on_the_issue(stack: Stack) -> None:
    instance_id = stack.launch()
    event = medium(stack, instance_id)
    finding_id = event["detail"]["id"]
    key = stack.invoke(event)["jira_key"]
    stack.messages()

    assert approve(finding_id, "--by", "Ana on call") == cli.EXIT_OK
    approval = stack.record(approval_key(finding_id))
    assert (approval["state"], approval["decided_by"], approval["decided_arn"]) == (
        "approved",
        "Ana on call",
        MOTO_CALLER,
    )
    assert not stack.isolated(instance_id)  # the command changes nothing on the instance

    swept = sweep()

    assert swept["approvals_approved"] == [finding_id] and swept["resumed"] == [finding_id]
    assert stack.isolated(instance_id) and len(stack.snapshots_of(instance_id)) == 2
    record = stack.record(finding_id)
    assert record["decision"] == "isolate" and record["completed"] is True and "awaiting_approval" not in record
    assert "approved by Ana on call" in record["reason"] and record["approval"]["caller_arn"] == MOTO_CALLER
    assert stack.record(approval_key(finding_id))["state"] == "honoured"
    (issue,) = stack.jira.issues.values()
    assert issue["key"] == key and "after approval" in issue["comments"][-1]
    (message,) = stack.messages()
    assert "ISOLATED" in message["Subject"] and "approved by Ana on call" in message["Message"]

    # Honoured once: the next sweep finds nothing to do, and approving again is refused.
    again = sweep()
    assert again["approvals_approved"] == [] and again["resumed"] == []
    assert approve(finding_id) == cli.EXIT_FAILED


@pytest.mark.both_jira_deployments
def test_moving_the_issue_to_the_approval_status_approves_it_naming_who_moved_it(stack: Stack) -> None:
    stack.configure(JIRA_APPROVAL_STATUS="Approved for isolation")
    instance_id = stack.launch()
    event = medium(stack, instance_id)
    finding_id = event["detail"]["id"]
    key = stack.invoke(event)["jira_key"]
    (issue,) = stack.jira.issues.values()
    assert "Approved for isolation" in issue["fields"]["description"]
    stack.jira.transition(key, "In Progress", by="Carl")

    assert sweep()["approvals_waiting"] == [finding_id] and not stack.isolated(instance_id)

    stack.jira.transition(key, "Approved for isolation", by="Dana Lee")
    swept = sweep()

    assert swept["approvals_approved"] == [finding_id] and stack.isolated(instance_id)
    approval = stack.record(approval_key(finding_id))
    assert (approval["state"], approval["decided_via"]) == ("honoured", "jira")
    assert approval["decided_by"].startswith("Dana Lee (") and key in approval["reason"]
    assert "approved by Dana Lee" in stack.record(finding_id)["reason"]
    assert "after approval" in issue["comments"][-1]


def test_rejected_the_sweep_changes_nothing_comments_and_announces_it(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    instance_id = stack.launch()
    before = stack.groups_of(instance_id)
    event = medium(stack, instance_id)
    finding_id = event["detail"]["id"]
    stack.invoke(event)
    stack.messages()

    assert reject(finding_id, "--by", "Ben", "--reason", "our own scanner, CHG-77") == cli.EXIT_OK

    swept = sweep()

    assert swept["approvals_rejected"] == [finding_id] and swept["resumed"] == []
    assert stack.groups_of(instance_id) == before and stack.snapshots_of(instance_id) == []
    (issue,) = stack.jira.issues.values()
    comment = issue["comments"][-1]
    assert "Rejected by Ben" in comment and "CHG-77" in comment and "Nothing was changed" in comment
    (message,) = stack.messages()
    assert "REJECTED, NOT ISOLATED" in message["Subject"]
    record = stack.record(finding_id)
    assert record["approval_outcome"] == "rejected" and "awaiting_approval" not in record
    assert "unfinished" not in stack.record(approval_key(finding_id))
    capsys.readouterr()
    # Decided: approving it now is refused, and says why.
    assert approve(finding_id) == cli.EXIT_FAILED
    assert f"finding {finding_id} was rejected by Ben" in capsys.readouterr().err
    assert sweep()["approvals_rejected"] == []  # settled once: no second comment or message
    assert len(issue["comments"]) == 1 and stack.messages() == []


def test_approving_an_unknown_or_finished_finding_says_so_and_exits_1(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    assert approve("0123456789abcdef0123456789abcdef") == cli.EXIT_FAILED
    assert "no finding 0123456789abcdef0123456789abcdef awaits approval" in capsys.readouterr().err
    # A finding isolated at once (high severity) never awaited approval.
    instance_id = stack.launch()
    event = stack.event("tor_client", instance_id)
    stack.invoke(event)
    assert reject(event["detail"]["id"], "--reason", "x") == cli.EXIT_FAILED
    assert "awaits approval" in capsys.readouterr().err
    assert approve("not an id!") == cli.EXIT_USAGE


def test_an_approval_written_for_a_finding_that_never_awaited_one_is_never_acted_on(stack: Stack) -> None:
    """An approver can write approval items, not findings: the function acts only on findings it marked waiting."""
    instance_id = stack.launch()
    event = stack.event("port_probe_target", instance_id)
    finding_id = event["detail"]["id"]
    stack.invoke(event)  # attacked only: reported
    before = stack.groups_of(instance_id)
    stack.dynamodb.put_item(
        TableName=TABLE,
        Item={
            "pk": {"S": approval_key(finding_id)},
            "state": {"S": "approved"},
            "finding_id": {"S": finding_id},
            "decided_by": {"S": "mallory"},
            "unfinished": {"S": "approval"},
            "lease_until": {"N": "0"},
        },
    )

    swept = sweep()

    assert swept["approvals_approved"] == [] and stack.groups_of(instance_id) == before
    assert stack.record(approval_key(finding_id))["state"] == "void"
    assert stack.record(finding_id)["decision"] == "report"


# -- timeouts -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("on_timeout", ["isolate", "report"])
def test_an_approval_past_its_timeout_is_applied_by_the_sweep(stack: Stack, on_timeout: str) -> None:
    rules = [
        {
            "name": "ask-first",
            "action": "approve",
            "involvement": "implicated",
            "approval_timeout_minutes": 15,
            "on_timeout": on_timeout,
        }
    ]
    stack.configure(RESPONSE_RULES=json.dumps(rules))
    instance_id = stack.launch()
    event = medium(stack, instance_id)
    finding_id = event["detail"]["id"]
    stack.invoke(event)
    stack.messages()
    assert sweep()["approvals_waiting"] == [finding_id]  # not yet
    # Sixteen minutes later, as the ledger sees it.
    stack.dynamodb.update_item(
        TableName=TABLE,
        Key={"pk": {"S": approval_key(finding_id)}},
        UpdateExpression="SET timeout_epoch = :past",
        ExpressionAttributeValues={":past": {"N": "1"}},
    )

    swept = sweep()

    approval = stack.record(approval_key(finding_id))
    assert approval["decided_via"] == "timeout"
    (issue,) = stack.jira.issues.values()
    (message,) = stack.messages()
    if on_timeout == "isolate":
        assert swept["approvals_approved"] == [finding_id] and stack.isolated(instance_id)
        assert "no decision before the approval timeout" in stack.record(finding_id)["reason"]
        assert "approval timeout" in issue["comments"][-1]
        assert "ISOLATED" in message["Subject"]
    else:
        assert swept["approvals_timed_out"] == [finding_id] and not stack.isolated(instance_id)
        assert approval["state"] == "timed-out" and "(timed out)" in issue["comments"][-1]
        assert "APPROVAL TIMED OUT" in message["Subject"]


# -- the circuit breaker -----------------------------------------------------------------------------------


def test_an_approved_isolation_counts_against_the_circuit_breaker(stack: Stack) -> None:
    stack.configure(MAX_ISOLATIONS_PER_HOUR="1")
    first, second = stack.launch(), stack.launch()
    stack.invoke(stack.event("tor_client", first))  # the hour's one place
    event = medium(stack, second)
    stack.invoke(event)
    assert approve(event["detail"]["id"]) == cli.EXIT_OK

    sweep()

    assert not stack.isolated(second)
    record = stack.record(event["detail"]["id"])
    assert record["decision"] == str(DecisionCode.CIRCUIT_BREAKER) and "approved by" in record["reason"]


def test_the_ledger_refuses_a_second_decision() -> None:
    # The write itself is conditional: the command's check is not the only one.
    import boto3
    from moto import mock_aws

    from guardduty_responder.ledger import APPROVED, REJECTED, ApprovalRefused
    from guardduty_responder_tools.embedded import create_responder_resources

    with mock_aws():
        create_responder_resources(lambda s: boto3.client(s, region_name=REGION), table_name=TABLE, jira_secret={})
        ledger = Ledger(boto3.client("dynamodb", region_name=REGION), TABLE, 30)
        finding = parse_finding(load_event("recon_portscan"))
        ledger.claim_finding(finding, now=1000.0, lease_seconds=60, decision="approval-needed", original_groups={})
        ledger.open_approval(finding, now=1000.0, rule="ask", timeout_minutes=0, on_timeout="report")
        ledger.decide_approval(finding.finding_id, state=APPROVED, by="a", how="command", now=1001.0)
        with pytest.raises(ApprovalRefused, match="approved already by a"):
            ledger.decide_approval(finding.finding_id, state=REJECTED, by="b", how="command", now=1002.0)


# -- status ------------------------------------------------------------------------------------------------


def test_status_lists_the_findings_awaiting_approval_with_their_age_and_timeout(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = [{"name": "ask", "action": "approve", "approval_timeout_minutes": 30, "on_timeout": "isolate"}]
    stack.configure(RESPONSE_RULES=json.dumps(rules))
    instance_id = stack.launch()
    event = medium(stack, instance_id)
    finding_id = event["detail"]["id"]
    stack.invoke(event)
    capsys.readouterr()

    assert cli.main(["status"]) == cli.EXIT_OK
    shown = capsys.readouterr().out
    assert "Awaiting approval (1)" in shown and finding_id in shown
    assert "0 min" in shown and "isolate in 29 min" in shown and "SEC-1" in shown

    assert cli.main(["--output", "json", "status"]) == cli.EXIT_OK
    listed = json.loads(capsys.readouterr().out)["approvals"]
    assert [(item["finding_id"], item["state"], item["timeout_minutes"]) for item in listed] == [
        (finding_id, "waiting", 30)
    ]
    # Decided and acted on: no longer listed.
    assert approve(finding_id) == cli.EXIT_OK
    sweep()
    capsys.readouterr()
    assert cli.main(["status"]) == cli.EXIT_OK
    assert "Awaiting approval (0)" in capsys.readouterr().out


# -- what an approver can and cannot do -------------------------------------------------------------------


def approver_writes(stack: Stack, finding_id: str, **values: str) -> None:
    """A raw write an approver's policy allows (UpdateItem on the approval item), bypassing the command."""
    names = {f"#k{i}": key for i, key in enumerate(values)}
    stack.dynamodb.update_item(
        TableName=TABLE,
        Key={"pk": {"S": approval_key(finding_id)}},
        UpdateExpression="SET " + ", ".join(f"#k{i} = :v{i}" for i in range(len(values))),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues={f":v{i}": {"S": value} for i, value in enumerate(values.values())},
    )


def test_an_approver_cannot_make_an_approval_read_as_the_timeout_s(stack: Stack) -> None:
    instance_id = stack.launch()
    event = medium(stack, instance_id)
    finding_id = event["detail"]["id"]
    stack.invoke(event)
    approver_writes(
        stack, finding_id, state="approved", decided_by="timeout after 30 min", decided_how="timeout", decided_at="x"
    )

    sweep()

    reason = stack.record(finding_id)["reason"]
    assert "no decision before the approval timeout" not in reason
    assert "approved by timeout after 30 min" in reason and "guardduty-responder approve" in reason


def test_an_approval_in_a_state_the_responder_does_not_know_is_voided_not_left_to_clog_the_sweep(
    stack: Stack,
) -> None:
    instance_id = stack.launch()
    event = medium(stack, instance_id)
    finding_id = event["detail"]["id"]
    stack.invoke(event)
    approver_writes(stack, finding_id, state="maybe")

    sweep()

    approval = stack.record(approval_key(finding_id))
    assert approval["state"] == "void" and "unfinished" not in approval and not stack.isolated(instance_id)


def test_the_sweep_sees_every_open_approval_however_many_wait(stack: Stack) -> None:
    stack.configure(RESPONSE_RULES=json.dumps([{"name": "ask", "action": "approve"}]))
    instance_id = stack.launch()
    ledger = Ledger(stack.dynamodb, TABLE, 30)
    finding = parse_finding(load_event("recon_portscan"))
    for number in range(60):  # sixty findings nobody decided on, older than the one approved below
        other = copy.copy(finding)
        object.__setattr__(other, "finding_id", f"{number:032x}")
        ledger.claim_finding(
            other, now=1000.0 + number, lease_seconds=0, decision="approval-needed", original_groups={}
        )
        ledger.open_approval(other, now=1000.0 + number, rule="ask", timeout_minutes=0, on_timeout="report")
    event = medium(stack, instance_id)
    stack.invoke(event)
    assert approve(event["detail"]["id"]) == cli.EXIT_OK

    swept = sweep()

    assert swept["approvals_approved"] == [event["detail"]["id"]] and stack.isolated(instance_id)
    assert len(swept["approvals_waiting"]) == 60


def test_a_jira_status_change_nobody_is_named_for_is_not_an_approval_and_the_search_names_no_key(
    stack: Stack,
) -> None:
    stack.configure(JIRA_APPROVAL_STATUS="Approved for isolation")
    instance_id = stack.launch()
    event = medium(stack, instance_id)
    finding_id = event["detail"]["id"]
    key = stack.invoke(event)["jira_key"]
    stack.jira.transition(key, "Approved for isolation", by="automation")
    stack.jira.issues[key]["histories"][-1].pop("author")  # Jira shows no author (an automation, a migration)

    swept = sweep()

    assert swept["approvals_waiting"] == [finding_id] and not stack.isolated(instance_id)
    searches = [exchange.query.get("jql", [""])[0] for exchange in stack.jira.exchanges if "search" in exchange.path]
    # A key deleted or moved since cannot fail the search that reads approvals: it names none.
    assert any("Approved for isolation" in jql for jql in searches)
    assert not any("key in" in jql for jql in searches)
