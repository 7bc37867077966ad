"""Static checks of the root module and its child modules: format, validity, plan-only tests, the roles' actions, the rule, checkov."""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from moto.events.models import EventPattern, EventPatternParser

from guardduty_responder.rules import default_rules, parse_rules
from guardduty_responder_tools.permissions import estate_actions, home_actions, release_actions, required_actions

from conftest import load_event
from local_aws import REGION, LocalAws
from terraform_support import ROOT, TerraformDir, require_terraform_binary

# The variables of an organisation's delegated administrator that contains credential findings.
ORGANISATION = [
    "-var",
    "credential_findings=contain",
    "-var",
    "credential_revocation=role",
    "-var",
    "disable_instance_metadata=true",
    "-var",
    "snapshot_lock_days=30",
    "-var",
    "malware_scan=true",
    "-var",
    "member_role_name=gd-member",
    "-var",
    "member_role_external_id=x-responder",
    "-var",
    "organization_id=o-a1b2c3d4e5",
]
# The actions the function's role is granted (its own statements), and those for acting on one account: locals of
# modules/responder, evaluated there.
GRANTED = "sort(distinct(flatten([for s in local.responder_statements : s.Action])))"
ESTATE = "sort(distinct(flatten([for s in module.estate_policy.statements : s.Action])))"


@pytest.fixture(scope="module")
def root_dir() -> Iterator[TerraformDir]:
    tftests = {f"tests/{path.name}": path.read_text() for path in (ROOT / "tests").glob("*.tftest.hcl")}
    workdir = TerraformDir(extra_files=tftests)
    workdir.init()
    yield workdir
    workdir.remove()


@pytest.fixture(scope="module")
def module_dir() -> Iterator[TerraformDir]:
    workdir = TerraformDir(workdir="modules/responder")
    workdir.init()
    yield workdir
    workdir.remove()


def test_terraform_is_formatted() -> None:
    binary = require_terraform_binary()
    result = subprocess.run([binary, "fmt", "-check", "-diff", "-recursive", str(ROOT)], capture_output=True, text=True)
    assert result.returncode == 0, f"run `terraform fmt -recursive`:\n{result.stdout}"


def test_terraform_validates(root_dir: TerraformDir) -> None:
    result = root_dir.run("validate", "-json", "-no-color", check=False)
    assert json.loads(result.stdout)["valid"], result.stdout


def test_plan_only_tests_pass(root_dir: TerraformDir) -> None:
    result = root_dir.run("test", "-no-color", check=False, timeout=600)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " 0 failed" in result.stdout


def evaluate(module_dir: TerraformDir, expression: str, *variables: str) -> Any:
    """The value of a JSON-encoded expression, as `terraform console` evaluates it without state."""
    result = module_dir.run("console", "-var", "jira_project_key=SEC", *variables, stdin=f"jsonencode({expression})\n")
    return json.loads(json.loads(result.stdout.strip().splitlines()[-1]))


def test_by_default_the_role_grants_exactly_the_own_account_actions(module_dir: TerraformDir) -> None:
    granted = set(evaluate(module_dir, GRANTED))

    declared = estate_actions() | home_actions(False)

    assert declared - granted == set(), "the code calls actions main.tf does not grant"
    assert granted - declared == set(), "main.tf grants actions no code declares"


def test_an_organisation_containing_credentials_grants_exactly_every_declared_action(module_dir: TerraformDir) -> None:
    granted = set(evaluate(module_dir, GRANTED, *ORGANISATION))

    declared = estate_actions(True, metadata=True, whole_role=True, snapshot_lock=True) | home_actions(
        True, malware_scan=True
    )

    assert declared - granted == set(), "the code calls actions main.tf does not grant"
    assert granted - declared == set(), "main.tf grants actions no code declares"
    # What only a person's release calls is granted to people (modules/member-role's release role), never here.
    assert declared | release_actions() == required_actions(), "some declared action is granted by no configuration"
    assert not granted & {"iam:PassRole", "ec2:AssociateIamInstanceProfile", "autoscaling:ExitStandby"}, (
        "the function never gives back a role nor returns an instance to service"
    )


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ([], estate_actions()),
        (["-var", "contain_identity=false"], estate_actions(False)),
        (ORGANISATION, estate_actions(True, metadata=True, whole_role=True, snapshot_lock=True)),
    ],
    ids=["default", "identity-off", "everything"],
)
def test_the_estate_policy_grants_exactly_the_estate_actions(
    module_dir: TerraformDir, variables: list[str], expected: frozenset[str]
) -> None:
    assert set(evaluate(module_dir, ESTATE, *variables)) == expected


@pytest.mark.parametrize(
    ("credential_findings", "passes_credential_findings"), [("ignore", False), ("report", True), ("contain", True)]
)
def test_the_rule_passes_credential_findings_unless_ignored(
    module_dir: TerraformDir, credential_findings: str, passes_credential_findings: bool
) -> None:
    raw = json.dumps(evaluate(module_dir, "local.event_pattern", "-var", f"credential_findings={credential_findings}"))
    pattern = EventPattern(raw, EventPatternParser(raw).parse())
    exfiltration = load_event("instance_credential_exfiltration")
    low = load_event("instance_credential_exfiltration")
    low["detail"]["severity"] = 2
    other_key_finding = load_event("instance_credential_exfiltration")
    other_key_finding["detail"]["type"] = "UnauthorizedAccess:IAMUser/TorIPCaller"

    assert pattern.matches_event(exfiltration) is passes_credential_findings
    assert not pattern.matches_event(low), "below the minimum severity"
    assert not pattern.matches_event(other_key_finding), "only credentials taken from an instance concern the responder"
    assert pattern.matches_event(load_event("ssh_bruteforce")), (
        "instance findings pass whatever credential_findings says"
    )


def find_checkov() -> str:
    candidates = [
        os.environ.get("CHECKOV", ""),
        str(ROOT / ".venv-tools" / "bin" / "checkov"),
        shutil.which("checkov") or "",
    ]
    for candidate in candidates:
        if candidate and pathlib.Path(candidate).exists():
            return candidate
    reason = "checkov not found (make test installs it into .venv-tools)"
    if os.environ.get("CI"):
        pytest.fail(f"CI must run checkov: {reason}")
    pytest.skip(reason)


def test_checkov_finds_nothing_unexplained() -> None:
    checkov = find_checkov()
    result = subprocess.run(
        [
            checkov,
            "--directory",
            str(ROOT),
            "--framework",
            "terraform",
            "--skip-download",
            "--compact",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    assert sum(item["summary"]["passed"] for item in reports) > 0, "checkov checked nothing"
    failed = [check for item in reports for check in item["results"].get("failed_checks", [])]
    assert failed == [], "\n".join(f"{c['check_id']} {c['resource']}: {c['check_name']}" for c in failed)
    skipped = [check for item in reports for check in item["results"].get("skipped_checks", [])]
    assert skipped, "the skips written in main.tf were not seen"
    unexplained = [
        c["check_id"] for c in skipped if len((c["check_result"].get("suppress_comment") or "").strip()) < 20
    ]
    assert unexplained == [], "every skip needs its reason next to it"


@pytest.mark.parametrize("credential_findings", ["ignore", "report", "contain"])
def test_the_default_response_rules_are_the_code_s_own(module_dir: TerraformDir, credential_findings: str) -> None:
    rendered = evaluate(module_dir, "local.response_rules_json", "-var", f"credential_findings={credential_findings}")

    assert parse_rules(rendered) == default_rules(credential_findings)


def test_response_rules_given_to_terraform_reach_the_function_as_written(module_dir: TerraformDir) -> None:
    rules = (
        '[{name = "isolate-high", involvement = "implicated", min_severity = 7, action = "isolate"}, '
        '{name = "ask", action = "approve", approval_timeout_minutes = 45, on_timeout = "isolate"}]'
    )

    rendered = evaluate(module_dir, "local.response_rules_json", "-var", f"response_rules={rules}")

    rule, ask = parse_rules(rendered)
    assert (rule.name, str(rule.action), rule.min_severity, str(rule.involvement)) == (
        "isolate-high",
        "isolate",
        7,
        "implicated",
    )
    assert (str(ask.action), ask.approval_timeout_minutes, str(ask.on_timeout)) == ("approve", 45, "isolate")


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (
            '[{name = "a", action = "isolate"}, {name = "noisy", action = "quarantine"}]',
            'rule 2 ("noisy") has action "quarantine"',
        ),
        ('[{name = "odd", action = "report", involvement = "victim"}]', 'rule 1 ("odd") has involvement "victim"'),
        (
            '[{name = "s3", action = "report", resource_types = ["S3Bucket"]}]',
            'rule 1 ("s3") lists resource types ["S3Bucket"]',
        ),
        ('[{name = "loud", action = "report", min_severity = 11}]', 'rule 1 ("loud") has min_severity 11'),
        ('[{name = "twice", action = "report"}, {name = "twice", action = "ignore"}]', 'repeated or empty: "twice"'),
        (
            '[{name = "now", action = "isolate", approval_timeout_minutes = 30}]',
            'rule 1 ("now") has approval_timeout_minutes 30 and on_timeout "report"',
        ),
        (
            '[{name = "ask", action = "approve", on_timeout = "wait"}]',
            'rule 1 ("ask") has approval_timeout_minutes 0 and on_timeout "wait"',
        ),
    ],
)
def test_a_bad_response_rule_fails_the_plan_naming_it(module_dir: TerraformDir, rules: str, message: str) -> None:
    result = module_dir.run(
        "console",
        "-var",
        "jira_project_key=SEC",
        "-var",
        f"response_rules={rules}",
        stdin="local.response_rules_json\n",
        check=False,
    )

    assert result.returncode != 0
    # The message as read: without the colours and the frame Terraform draws at the start of each wrapped line.
    shown = re.sub(r"\x1b\[[0-9;]*m|[│╷╵]", " ", result.stdout + result.stderr)
    assert message in " ".join(shown.split()), result.stderr[-2000:]


def shaped(fixture: str, **changes: Any) -> dict[str, Any]:
    event = load_event(fixture)
    for path, value in changes.items():
        target = event["detail"]
        *parents, leaf = path.split("__")
        for parent in parents:
            target = target[parent]
        if value is None:
            target.pop(leaf, None)
        else:
            target[leaf] = value
    return event


def test_the_rule_passes_what_the_response_rules_can_act_on_and_nothing_else(module_dir: TerraformDir) -> None:
    raw = json.dumps(evaluate(module_dir, "local.event_pattern"))
    pattern = EventPattern(raw, EventPatternParser(raw).parse())
    passes = {
        "network finding": load_event("tor_client"),
        "DNS finding marked TARGET": load_event("bitcoin_tool_dns"),
        "Runtime Monitoring on an instance": load_event("runtime_process"),
        "Malware Protection on an instance": load_event("malware_file"),
        "a container naming its host": load_event("container_host"),
        "an ECS cluster naming its host": shaped("container_host", resource__resourceType="ECSCluster"),
        "instance credentials": load_event("instance_credential_exfiltration"),
        "a sample": load_event("sample_trojan_dns"),
        "a group of instances (attack sequence)": load_event("attack_sequence_instance_group"),
    }
    refused = {
        "an S3 finding": shaped("tor_client", resource={"resourceType": "S3Bucket"}),
        "an IAM user's keys": shaped("instance_credential_exfiltration", type="UnauthorizedAccess:IAMUser/TorIPCaller"),
        "an EKS audit finding (no host)": shaped("container_host", resource={"resourceType": "EKSCluster"}),
        "a Fargate container (no host)": shaped("container_host", resource__instanceDetails=None),
        "a Lambda finding": shaped("tor_client", resource={"resourceType": "Lambda"}),
        "below the minimum severity": shaped("tor_client", severity=2),
        "another source": {**load_event("tor_client"), "source": "evil.attacker"},
        "an attack sequence about credentials": shaped(
            "attack_sequence_instance_group", type="AttackSequence:IAM/CompromisedCredentials"
        ),
    }

    assert [name for name, event in passes.items() if not pattern.matches_event(event)] == []
    assert [name for name, event in refused.items() if pattern.matches_event(event)] == []


def test_a_workspace_named_for_another_region_fails_the_plan() -> None:
    """The README's loop over regions keeps a state per region in a workspace named for it: applying one with the
    shell pointed at another region would deploy, or destroy, there."""
    aws = LocalAws()
    workdir = TerraformDir()
    try:
        workdir.init()
        plans = {}
        for workspace in ("eu-west-1", REGION, "security-tooling"):
            workdir.run("workspace", "new", workspace)
            plans[workspace] = workdir.run(
                "plan", "-input=false", "-no-color", "-var", "jira_project_key=SEC", env=aws.env, check=False
            )
    finally:
        aws.stop()
        workdir.remove()

    refused = " ".join(plans["eu-west-1"].stderr.replace("│", " ").split())
    assert plans["eu-west-1"].returncode != 0
    assert f'The workspace "eu-west-1" is named for a region, but the provider\'s region is {REGION}' in refused
    assert plans[REGION].returncode == 0, plans[REGION].stderr[-2000:]
    assert plans["security-tooling"].returncode == 0, "a workspace not named like a region is not checked"


@pytest.mark.parametrize("example", sorted(path.name for path in (ROOT / "examples").iterdir()))
def test_every_example_validates(example: str) -> None:
    """Each example as a caller copies it; one pinned to a commit of this repository is pointed at this checkout."""
    workdir = TerraformDir(workdir=f"examples/{example}")
    try:
        main = workdir.workdir / "main.tf"
        text = main.read_text()
        pinned = re.findall(r'source\s*=\s*"git::[^"]*//(modules/[\w-]+)\?ref=[0-9a-f]{40}"', text)
        for module in pinned:
            text = re.sub(rf'"git::[^"]*//{module}\?ref=[0-9a-f]{{40}}"', f'"../../{module}"', text)
        main.write_text(text)
        workdir.init()
        result = workdir.run("validate", "-json", "-no-color", check=False)
    finally:
        workdir.remove()

    assert json.loads(result.stdout)["valid"], result.stdout
    assert not re.search(r'source\s*=\s*"git::', text), "every remote source is pinned to a commit (?ref= of 40 hex)"
