"""The command line (README, "Command line"): help, replay, release, status and the embedded demo."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

from guardduty_responder_tools import cli, demo
from guardduty_responder_tools.jira_standin import Project
from test_credentials import ROLE, launch_with_role, stack_iam

from conftest import FIXTURES, Stack, load_event


def write_event(directory: pathlib.Path, event: dict[str, Any]) -> str:
    path = directory / "event.json"
    path.write_text(json.dumps(event))
    return str(path)


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["replay", "--help"],
        ["release", "--help"],
        ["status", "--help"],
        ["demo", "--help"],
        ["check-jira", "--help"],
        ["approve", "--help"],
        ["reject", "--help"],
        ["isolate", "--help"],
        ["prepare", "--help"],
    ],
    ids=lambda argv: " ".join(argv),
)
def test_help_of_the_tool_and_of_every_command_exits_0(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == cli.EXIT_OK
    printed = capsys.readouterr().out
    assert printed.startswith("usage: guardduty-responder")
    assert "exit codes:" in printed


def test_the_demo_runs_end_to_end_and_restores_the_released_instance(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    reports: list[demo.DemoReport] = []
    run_demo = demo.run_demo
    monkeypatch.setattr(
        demo, "run_demo", lambda *args, **kwargs: reports.append(run_demo(*args, **kwargs)) or reports[-1]
    )

    code = cli.main(["demo", "--log-file", str(tmp_path / "demo.log")])

    assert code == cli.EXIT_OK
    printed = capsys.readouterr().out
    assert "Summary" in printed and "decision: reason" in printed and "Demo complete" in printed
    (report,) = reports
    outcomes = [(d.label, d.outcome, d.decision, d.jira_change, bool(d.new_snapshots)) for d in report.deliveries]
    assert outcomes == [
        ("real finding", "handled", "isolate", "new issue", True),
        ("repeat of #1", "already handled", "isolate", None, False),
        ("new finding, same host", "handled", "isolate", "comment", False),
        ("GuardDuty sample", "handled", "sample", None, False),
        ("exempt instance", "handled", "exempt", "new issue", False),
        ("port probe (attacked)", "handled", "report", "new issue", False),
        ("in ASG + target group", "handled", "isolate", "new issue", True),
        ("forged event", "unconfirmed", "unconfirmed", None, False),
        ("medium severity: approval", "handled", "approval-needed", "new issue", False),
        ("medium severity: approval", "handled", "approval-needed", "new issue", False),
    ]
    assert [d.message_subject is not None for d in report.deliveries] == [
        True,
        False,
        True,
        True,
        True,
        True,
        True,
        True,
        True,
        True,
    ]
    assert "UNCONFIRMED" in (report.deliveries[7].message_subject or "")
    assert "APPROVAL NEEDED" in (report.deliveries[-1].message_subject or "")
    # One approved and isolated by the sweep, one rejected and left as it was.
    assert [(d.instance_name, d.decision, d.swept, d.as_expected) for d in report.decisions] == [
        ("reports-1", "approved", "approved", True),
        ("batch-1", "rejected", "rejected", True),
    ]
    assert "REJECTED" in (report.decisions[1].message_subject or "")
    # A group finding of three: waiting with nothing changed, then contained whole by the sweep; one issue.
    group = report.group
    assert group is not None and group.unchanged_while_waiting and group.issues == 1
    assert "APPROVAL NEEDED 3 instance(s)" in (group.waiting_subject or "")
    assert sorted(group.isolated_after_approval) == ["worker-1", "worker-2", "worker-3"]
    release = report.release
    assert release is not None and release.restored
    assert len(release.groups_originally) == 2  # both ENIs of web-1
    assert release.groups_isolated != release.groups_originally
    assert release.groups_restored == release.groups_originally
    assert (tmp_path / "demo.log").read_text().count(
        '"message": "response complete"'
    ) == 11  # ten findings and the group's


def test_replay_of_a_malformed_event_exits_2_and_names_the_field(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event = load_event("tor_client")
    event["detail"]["resource"]["instanceDetails"]["instanceId"] = "web-server-1"

    assert cli.main(["replay", write_event(tmp_path, event)]) == cli.EXIT_USAGE

    error = capsys.readouterr().err
    assert "detail.resource.instanceDetails.instanceId" in error
    assert "Traceback" not in error


def test_replay_of_a_file_that_is_not_json_exits_2(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "event.json"
    path.write_text('{"detail": ')

    assert cli.main(["replay", str(path)]) == cli.EXIT_USAGE
    assert "is not valid JSON" in capsys.readouterr().err


def test_status_lists_a_finding_after_a_replay(
    stack: Stack, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    instance_id = stack.launch(enis=2)
    event = stack.event("tor_client", instance_id)
    finding_id = event["detail"]["id"]

    assert cli.main(["replay", write_event(tmp_path, event)]) == cli.EXIT_OK
    assert finding_id in capsys.readouterr().out

    assert cli.main(["status", "--output", "json"]) == cli.EXIT_OK
    listed = json.loads(capsys.readouterr().out)
    (finding,) = listed["findings"]
    assert finding["pk"] == finding_id and finding["instance_id"] == instance_id
    states = {name: step["status"] for name, step in finding["steps"].items()}
    assert states.items() >= {"contain": "done", "snapshots": "done", "ticket": "done", "notify": "done"}.items()
    (incident,) = listed["instances"]
    assert incident["instance_id"] == instance_id and incident["state"] == "isolated"

    assert cli.main(["status"]) == cli.EXIT_OK
    table = capsys.readouterr().out
    assert finding_id in table and "contain: done" in table


def test_status_of_a_table_that_cannot_be_read_fails_the_operation_and_says_why(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RESPONDER_TABLE", "no-such-table")

    assert cli.main(["status"]) == cli.EXIT_FAILED

    error = capsys.readouterr().err
    assert "status: failed: reading no-such-table failed" in error and "ResourceNotFoundException" in error


def test_release_puts_the_groups_back_and_a_second_release_is_refused(
    stack: Stack, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    instance_id = stack.launch(enis=2)
    before = stack.groups_of(instance_id)
    stack.invoke(stack.event("backdoor_cc_dns", instance_id))
    capsys.readouterr()  # the handler's own JSON logs

    code = cli.main(["release", instance_id, "--released-by", "analyst@example.com", "--output", "json"])

    assert code == cli.EXIT_OK
    result = json.loads(capsys.readouterr().out)
    assert result["released"] is True and result["jira_comment"] == "done"
    assert stack.groups_of(instance_id) == before
    assert cli.main(["release", instance_id]) == cli.EXIT_FAILED
    assert "release refused" in capsys.readouterr().err


def test_status_says_what_stays_open_on_an_isolated_instance(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    instance_id = stack.launch()
    stack.invoke(stack.event("backdoor_cc_dns", instance_id))
    capsys.readouterr()

    assert cli.main(["status", "--output", "json"]) == cli.EXIT_OK
    (incident,) = json.loads(capsys.readouterr().out)["instances"]
    assert any("VPC's Amazon-provided resolver" in path for path in incident["still_open"])

    assert cli.main(["status"]) == cli.EXIT_OK
    table = capsys.readouterr().out
    assert "Still open on isolated instances (1)" in table and f"  {instance_id}:" in table
    assert "Route 53 Resolver DNS Firewall" in table


def test_release_with_its_options_lists_each_item_and_removes_the_revocation(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    instance_id = launch_with_role(stack)
    stack.invoke(stack.event("backdoor_cc_dns", instance_id))
    capsys.readouterr()

    code = cli.main(["--output", "json", "release", instance_id, "--restore-credentials", "--return-to-service"])

    assert code == cli.EXIT_OK
    restored = json.loads(capsys.readouterr().out)["restored"]
    assert (
        "instance profile: arn:aws:iam::123456789012:instance-profile/analytics-etl-role associated again" in restored
    )
    assert any(line.startswith("credentials: revocation removed") for line in restored)
    assert stack_iam().list_role_policies(RoleName=ROLE)["PolicyNames"] == []


def test_release_that_cannot_put_an_item_back_says_so_and_exits_1(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    instance_id = launch_with_role(stack)
    stack.invoke(stack.event("backdoor_cc_dns", instance_id))
    capsys.readouterr()
    stack_iam().remove_role_from_instance_profile(InstanceProfileName=ROLE, RoleName=ROLE)
    stack_iam().delete_instance_profile(InstanceProfileName=ROLE)

    code = cli.main(["release", instance_id])

    assert code == cli.EXIT_FAILED
    assert "released, but not everything was restored: instance profile: FAILED" in capsys.readouterr().err
    assert stack.record(f"instance#{instance_id}")["state"] == "released", "the groups are back: released"


def test_release_refuses_an_instance_it_holds_no_saved_groups_for(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    instance_id = stack.launch()

    assert cli.main(["release", instance_id]) == cli.EXIT_FAILED

    error = capsys.readouterr().err
    assert error.startswith("guardduty-responder release: failed: release refused:")
    assert instance_id in error and "nothing to release" in error
    assert "Traceback" not in error


def test_replay_local_runs_on_a_throwaway_estate(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["--local", "--output", "json", "replay", str(FIXTURES / "ssh_bruteforce.json")])

    assert code == cli.EXIT_OK
    result = json.loads(capsys.readouterr().out)
    assert result["decision"] == "isolate" and result["jira_key"] == "SEC-1"
    local = result["local"]
    assert local["event_instance_id"] == "i-0e5f6a7b8c9d0e1f2"
    assert local["groups_after"] != local["groups_before"]
    assert len(local["message_subjects"]) == 1


@pytest.mark.parametrize("command", [["status"], ["release", "i-0123456789abcdef0"]], ids=lambda argv: argv[0])
def test_local_is_refused_where_it_would_find_nothing(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--local", *command]) == cli.EXIT_USAGE
    assert "--local does not apply" in capsys.readouterr().err


def test_check_jira_passes_on_a_ready_project_and_fails_naming_the_remedy(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["check-jira"]) == cli.EXIT_OK
    assert capsys.readouterr().out.count("PASS") == 8

    stack.jira.projects["SEC"] = Project(screen=("summary", "issuetype", "project", "description", "priority"))
    assert cli.main(["check-jira", "--output", "json"]) == cli.EXIT_FAILED
    checks = {check["check"]: check for check in json.loads(capsys.readouterr().out)}
    assert checks["field labels"]["ok"] is False and "add it to the screen" in checks["field labels"]["detail"]
    assert stack.jira.issues == {}


def test_check_jira_local_checks_the_embedded_jira_cloud(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--local", "check-jira"]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert "Jira Cloud at http://127.0.0.1:" in out and "FAIL" not in out
