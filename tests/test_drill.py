"""`guardduty-responder drill` (README, "Command line"): an instance tagged for drills is contained and released
end to end through the function's code, each step checked from AWS and timed, and the instance ends as it began.
"""

from __future__ import annotations

import copy
import datetime
import json
from typing import Any

import pytest

from guardduty_responder import handler
from guardduty_responder.manual import ManualRequest
from guardduty_responder.responder import ReleaseError, Responder
from guardduty_responder_tools import cli
from guardduty_responder_tools.drill import DRILL_TAG_KEY, Drill
from test_credentials import EC2_TRUST, stack_iam

from conftest import ACCOUNT, LambdaContext, Stack

DRILL_TAGS = {"Name": "drill-target", DRILL_TAG_KEY: "true"}
STEPS = [
    "look",
    "isolate",
    "contained",
    "groups saved",
    "snapshots",
    "instance profile removed",
    "record",
    "Jira issue",
    "message",
    "release",
    "groups restored",
    "instance profile restored",
    "metadata and tracking restored",
    "guards put back",
    "incident released",
    "breaker place given back",
]
SCHEDULED = {"source": "aws.events", "detail-type": "Scheduled Event", "id": "sweep", "detail": {}}


def drill(instance_id: str, *extra: str) -> int:
    return cli.main(["--output", "json", "drill", "--instance", instance_id, *extra])


def printed(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def launch_with_profile(stack: Stack, tags: dict[str, str]) -> str:
    iam = stack_iam()
    iam.create_role(RoleName="drill-role", AssumeRolePolicyDocument=json.dumps(EC2_TRUST))
    profile = iam.create_instance_profile(InstanceProfileName="drill-role")["InstanceProfile"]
    iam.add_role_to_instance_profile(InstanceProfileName="drill-role", RoleName="drill-role")
    instance_id = stack.launch(enis=2, tags=tags)
    stack.ec2.associate_iam_instance_profile(IamInstanceProfile={"Arn": profile["Arn"]}, InstanceId=instance_id)
    return instance_id


def state_of(stack: Stack, instance_id: str) -> dict[str, Any]:
    """What a drill must leave as it found it."""
    associations = stack.ec2.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [instance_id]}]
    )["IamInstanceProfileAssociations"]
    described = stack.describe(instance_id)

    def attribute(name: str, key: str) -> Any:
        return stack.ec2.describe_instance_attribute(InstanceId=instance_id, Attribute=name)[key]["Value"]

    return {
        "groups": stack.groups_of(instance_id),
        "profiles": sorted(a["IamInstanceProfile"]["Arn"] for a in associations if a["State"] == "associated"),
        "termination protection": attribute("disableApiTermination", "DisableApiTermination"),
        "shutdown": attribute("instanceInitiatedShutdownBehavior", "InstanceInitiatedShutdownBehavior"),
        "volumes deleted on termination": {
            m["DeviceName"]: m["Ebs"]["DeleteOnTermination"] for m in described["BlockDeviceMappings"]
        },
        "metadata": {k: v for k, v in described.get("MetadataOptions", {}).items() if k != "State"},
    }


def rows(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["step"]: row for row in report["steps"]}


def test_a_drill_contains_and_releases_a_drill_tagged_instance_and_every_step_passes(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    instance_id = launch_with_profile(stack, DRILL_TAGS)
    before = state_of(stack, instance_id)
    assert before["profiles"] and before["termination protection"] is False
    capsys.readouterr()

    assert drill(instance_id, "--by", "scheduler") == cli.EXIT_OK

    report = printed(capsys)
    assert [row["step"] for row in report["steps"]] == STEPS
    assert [row for row in report["steps"] if row["result"] != "PASS"] == []
    assert all(row["seconds"] >= 0 for row in report["steps"]) and report["ok"] is True
    assert state_of(stack, instance_id) == before
    # Each check says what it read: the profile was gone while isolated, the snapshots carry the incident.
    checked = rows(report)
    assert checked["contained"]["detail"].startswith("2 interface(s) on the isolation group only")
    assert checked["instance profile removed"]["detail"] == "none associated (recorded done)"
    assert len(report["snapshots_kept"]) == 2 == len(stack.snapshots_of(instance_id))
    finding_id = report["finding_id"]
    assert finding_id.startswith("manual-") and stack.record(finding_id)["status"] == "released"
    assert "DRILL" in stack.record(finding_id)["reason"]
    (issue,) = stack.jira.issues.values()
    assert issue["key"] == report["jira_key"] and "DRILL" in issue["fields"]["description"]
    (message,) = stack.messages()
    assert "DRILL" in message["Message"]
    # A released drill holds no place in the circuit breaker's hour.
    hour = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H")
    counted = stack.record(f"breaker#{ACCOUNT}#{hour}")
    assert counted is None or finding_id not in counted.get("findings", set())


def test_a_drill_runs_again_on_the_same_instance_as_a_schedule_runs_it(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    instance_id = launch_with_profile(stack, DRILL_TAGS)
    before = state_of(stack, instance_id)
    assert drill(instance_id) == cli.EXIT_OK
    capsys.readouterr()

    assert cli.main(["drill", "--instance", instance_id]) == cli.EXIT_OK

    table = capsys.readouterr().out
    assert f"Drill of {instance_id} in {ACCOUNT} / us-east-1: PASS" in table
    assert "| FAIL" not in table and table.count("| PASS") == len(STEPS)
    assert "Snapshots kept" in table
    assert state_of(stack, instance_id) == before and len(stack.jira.issues) == 2


def exempt_in_the_ledger(stack: Stack, instance_id: str) -> None:
    until = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert cli.main(["exempt", instance_id, "--reason", "kernel patching", "--until", until]) == cli.EXIT_OK


@pytest.mark.parametrize(
    ("tags", "prepare", "said"),
    [
        ({"Name": "prod-db"}, None, f"not tagged for drills ({DRILL_TAG_KEY}=true)"),
        ({**DRILL_TAGS, DRILL_TAG_KEY: "false"}, None, f"not tagged for drills ({DRILL_TAG_KEY}=true)"),
        ({**DRILL_TAGS, "guardduty-responder:exempt": "true"}, None, "exemption tag guardduty-responder:exempt=true"),
        (DRILL_TAGS, exempt_in_the_ledger, "exempt in the responder's ledger"),
        (DRILL_TAGS, lambda stack, _: stack.configure(DRY_RUN="true"), "DRY_RUN=true"),
    ],
    ids=["untagged", "tag-not-true", "exemption-tag", "ledger-exemption", "dry-run"],
)
def test_a_drill_is_refused_with_nothing_changed(
    stack: Stack, capsys: pytest.CaptureFixture[str], tags: dict[str, str], prepare: Any, said: str
) -> None:
    instance_id = launch_with_profile(stack, tags)
    if prepare is not None:
        prepare(stack, instance_id)
    before = state_of(stack, instance_id)
    capsys.readouterr()

    assert drill(instance_id) == cli.EXIT_FAILED

    error = capsys.readouterr().err
    assert said in error and "nothing was changed" in error
    assert state_of(stack, instance_id) == before
    assert stack.jira.issues == {} and stack.snapshots_of(instance_id) == [] and stack.messages() == []
    assert stack.record(f"instance#{instance_id}") is None


def test_a_drill_never_touches_an_instance_the_responder_holds_isolated(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    instance_id = stack.launch(tags=DRILL_TAGS)
    stack.invoke(stack.event("tor_client", instance_id))
    during = state_of(stack, instance_id)
    capsys.readouterr()

    assert drill(instance_id) == cli.EXIT_FAILED

    assert "a drill never releases an incident" in capsys.readouterr().err
    assert stack.isolated(instance_id) and state_of(stack, instance_id) == during


def test_a_finding_that_joins_the_drills_incident_keeps_the_instance_isolated(stack: Stack) -> None:
    """Through the drill's isolation seam: a real finding arrives while the drill holds the instance."""
    instance_id = stack.launch(tags=DRILL_TAGS)
    responder = stack.responder()

    def isolate_then_a_finding(request: ManualRequest, finding_id: str) -> dict[str, Any]:
        summary = responder.isolate_by_hand(request, finding_id=finding_id)
        stack.invoke(stack.event("tor_client", instance_id))
        return summary

    report = Drill(responder, isolate=isolate_then_a_finding).run(instance_id, by="test", caller_arn="test")

    release = rows(report.to_dict())["release"]
    assert release["result"] == "FAIL" and "left isolated, look at it now" in release["detail"]
    assert report.release == "not the drill's" and not report.ok
    assert stack.isolated(instance_id)


def test_a_drill_whose_check_fails_still_releases_the_instance_and_exits_1(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    instance_id = launch_with_profile(stack, DRILL_TAGS)
    before = state_of(stack, instance_id)
    stack.jira.fail(503, times=50)
    capsys.readouterr()

    assert drill(instance_id) == cli.EXIT_FAILED

    report = printed(capsys)
    results = {step: row["result"] for step, row in rows(report).items()}
    assert {step for step, result in results.items() if result == "FAIL"} == {"isolate", "record", "Jira issue"}
    assert results["contained"] == results["release"] == results["groups restored"] == "PASS"
    assert report["release"] == "released" and report["ok"] is False
    assert state_of(stack, instance_id) == before
    # The sweep that would finish the unfinished incident leaves the released drill alone.
    stack.jira.heal()
    handler.lambda_handler(copy.deepcopy(SCHEDULED), LambdaContext(60))
    assert state_of(stack, instance_id) == before


def test_a_failed_release_is_named_and_the_instance_stays_isolated(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    instance_id = launch_with_profile(stack, DRILL_TAGS)

    def refuse(self: Responder, instance_id: str, **_: Any) -> dict[str, Any]:
        raise ReleaseError(f"{instance_id}: refused for the test")

    monkeypatch.setattr(Responder, "release", refuse)
    capsys.readouterr()

    assert drill(instance_id) == cli.EXIT_FAILED

    report = printed(capsys)
    release = rows(report)["release"]
    assert release["result"] == "FAIL" and release["detail"].startswith("RELEASE FAILED, the instance stays isolated")
    assert f"guardduty-responder release {instance_id} --restore-credentials --return-to-service" in release["detail"]
    assert report["release"] == "failed" and "guards put back" not in rows(report)
    assert stack.isolated(instance_id)
    assert stack.ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="disableApiTermination")[
        "DisableApiTermination"
    ]["Value"]


@pytest.mark.parametrize(
    "argv",
    [
        ["drill"],
        ["drill", "--instance", "web-1"],
        ["--local", "drill", "--instance", "i-0123456789abcdef0"],
    ],
    ids=["no-instance", "bad-instance-id", "local"],
)
def test_drill_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == cli.EXIT_USAGE


def test_drill_help_exits_0_and_says_what_stays(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["drill", "--help"]) == cli.EXIT_OK

    help_text = capsys.readouterr().out
    assert help_text.startswith("usage: guardduty-responder") and "exit codes:" in help_text
    assert DRILL_TAG_KEY in help_text and "snapshots" in help_text
