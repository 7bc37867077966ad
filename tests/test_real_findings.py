"""Findings shaped as GuardDuty really sends them (README, "How a finding is judged"), through the handler:
TARGET on the instance's own DNS requests and outbound connections, process detections without an
action, malware findings without a role, container findings naming their host, samples of every shape.
"""

from __future__ import annotations

import json
import pathlib

import pytest

from guardduty_responder_tools import cli

from conftest import FIXTURES, Stack, load_event


@pytest.mark.parametrize("fixture", ["bitcoin_tool_dns", "bitcoin_tool_outbound"])
def test_a_crypto_mining_instance_marked_target_is_isolated(stack: Stack, fixture: str) -> None:
    instance_id = stack.launch(enis=2)
    event = stack.event(fixture, instance_id, count=278)
    assert event["detail"]["service"]["resourceRole"] == "TARGET"

    summary = stack.invoke(event)

    assert (summary["decision"], summary["rule"], summary["isolated"]) == ("isolate", "isolate-implicated", True)
    assert stack.isolated(instance_id) and len(stack.snapshots_of(instance_id)) == 2
    (issue,) = stack.jira.issues.values()
    assert "GuardDuty's resource role:* TARGET" in issue["fields"]["description"]


@pytest.mark.parametrize("fixture", ["port_probe_target", "ssh_bruteforce_inbound"])
def test_an_instance_only_on_the_receiving_end_is_reported_not_isolated(stack: Stack, fixture: str) -> None:
    instance_id = stack.launch()
    before = stack.groups_of(instance_id)

    summary = stack.invoke(stack.event(fixture, instance_id))

    assert (summary["decision"], summary["rule"], summary["isolated"]) == ("report", "report-attacked", False)
    assert stack.groups_of(instance_id) == before and stack.snapshots_of(instance_id) == []
    assert len(stack.jira.issues) == 1 and len(stack.messages()) == 1


def test_a_process_runtime_monitoring_saw_is_isolated_and_described_in_the_issue(stack: Stack) -> None:
    instance_id = stack.launch()
    event = stack.event("runtime_process", instance_id)
    assert "action" not in event["detail"]["service"]

    summary = stack.invoke(event)

    assert summary["isolated"] is True
    description = next(iter(stack.jira.issues.values()))["fields"]["description"]
    process = event["detail"]["service"]["runtimeDetails"]["process"]
    for fact in ("h2. Process (Runtime Monitoring)", process["name"], process["executableSha256"], "sshd", "4690"):
        assert fact in description, fact
    assert process["executablePath"] in description


def test_a_malicious_file_malware_protection_found_is_isolated_and_named_in_the_issue(stack: Stack) -> None:
    instance_id = stack.launch()
    event = stack.event("malware_file", instance_id)
    assert "resourceRole" not in event["detail"]["service"] and "action" not in event["detail"]["service"]

    summary = stack.invoke(event)

    assert summary["isolated"] is True
    description = next(iter(stack.jira.issues.values()))["fields"]["description"]
    assert "h2. Malicious files (Malware Protection for EC2)" in description
    assert "Trojan.Linux.Miner.A" in description.replace("\\", "")
    assert "9f3c6a1e0b7d52f48a6c3e1b9d07f25a8c4e6b3d1f09a7c5e2b8d4f6a0c3e1b7" in description


def test_a_container_finding_names_its_host_which_is_reported_by_default_and_isolated_by_a_rule(stack: Stack) -> None:
    host, other_host = stack.launch(), stack.launch()
    before = stack.groups_of(host)

    reported = stack.invoke(stack.event("container_host", host))

    assert (reported["decision"], reported["rule"], reported["isolated"]) == ("report", "container-hosts", False)
    assert stack.groups_of(host) == before
    stack.configure(
        RESPONSE_RULES=json.dumps([{"name": "isolate-hosts", "resource_types": ["Container"], "action": "isolate"}])
    )
    event = stack.event("container_host", other_host, finding_id="d" * 32)
    assert stack.invoke(event)["isolated"] is True and stack.isolated(other_host)


SAMPLES = ["sample_trojan_dns", "sample_flat_flag", "sample_credential_exfiltration"]


@pytest.mark.parametrize("fixture", SAMPLES)
def test_every_sample_shape_is_recorded_and_announced_and_the_invocation_succeeds(stack: Stack, fixture: str) -> None:
    event = load_event(fixture)

    summary = stack.invoke(event)

    assert (summary["decision"], summary["isolated"]) == ("sample", False)
    assert stack.jira.issues == {} and stack.responder_groups() == {}
    (message,) = stack.messages()
    assert "FYI" in message["Subject"]
    assert stack.record(event["detail"]["id"])["decision"] == "sample"


@pytest.mark.parametrize(
    "fixture",
    [
        "sample_get_findings",
        "sample_credential_exfiltration",
        "runtime_process",
        "bitcoin_tool_outbound",
        "malware_file",
    ],
)
def test_replay_local_takes_every_shape_of_finding_and_never_crashes(
    fixture: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["--local", "--output", "json", "replay", str(FIXTURES / f"{fixture}.json")])

    assert code == cli.EXIT_OK, capsys.readouterr().err
    result = json.loads(capsys.readouterr().out)
    sample = fixture.startswith("sample_")
    assert result["isolated"] is not sample
    assert result["decision"] == ("sample" if sample else "isolate")


def test_replay_refuses_a_finding_that_is_not_about_ec2_in_one_line(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event = load_event("tor_client")
    event["detail"]["resource"] = {"resourceType": "S3Bucket", "s3BucketDetails": [{"name": "logs"}]}
    target = tmp_path / "s3.json"
    target.write_text(json.dumps(event))

    assert cli.main(["--local", "replay", str(target)]) == cli.EXIT_USAGE

    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "not an EC2 finding" in error
