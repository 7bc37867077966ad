"""Static checks of the root module: format, validity, plan-only tests, the role's actions, checkov."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from guardduty_responder.permissions import required_actions
from terraform_support import ROOT, TerraformDir, require_terraform


@pytest.fixture(scope="module")
def module_dir() -> Iterator[TerraformDir]:
    tftests = {f"tests/{path.name}": path.read_text() for path in (ROOT / "tests").glob("*.tftest.hcl")}
    workdir = TerraformDir(extra_files=tftests)
    workdir.init()
    yield workdir
    workdir.remove()


def test_terraform_is_formatted() -> None:
    binary, _ = require_terraform()
    result = subprocess.run([binary, "fmt", "-check", "-diff", "-recursive", str(ROOT)], capture_output=True, text=True)
    assert result.returncode == 0, f"run `terraform fmt -recursive`:\n{result.stdout}"


def test_terraform_validates(module_dir: TerraformDir) -> None:
    result = module_dir.run("validate", "-json", "-no-color", check=False)
    assert json.loads(result.stdout)["valid"], result.stdout


def test_plan_only_tests_pass(module_dir: TerraformDir) -> None:
    result = module_dir.run("test", "-no-color", check=False, timeout=600)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " 0 failed" in result.stdout


def test_the_role_grants_exactly_the_actions_the_code_declares(module_dir: TerraformDir) -> None:
    expression = "jsonencode(sort(distinct(flatten([for s in local.responder_statements : s.Action]))))"
    result = module_dir.run("console", "-var", "jira_project_key=SEC", stdin=expression + "\n")
    granted = set(json.loads(json.loads(result.stdout.strip().splitlines()[-1])))

    declared = set(required_actions())

    assert declared - granted == set(), "the code calls actions main.tf does not grant"
    assert granted - declared == set(), "main.tf grants actions no code declares"


def find_checkov() -> str:
    candidates = [os.environ.get("CHECKOV", ""), str(ROOT / ".venv-tools" / "bin" / "checkov"), shutil.which("checkov") or ""]
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
        [checkov, "--directory", str(ROOT), "--framework", "terraform", "--skip-download", "--compact", "--output", "json"],
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
    unexplained = [c["check_id"] for c in skipped if len((c["check_result"].get("suppress_comment") or "").strip()) < 20]
    assert unexplained == [], "every skip needs its reason next to it"


def test_the_function_hash_leaves_out_what_the_archive_leaves_out(module_dir: TerraformDir) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_archives", ROOT / "lambda_code" / "build_archives.py")
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)  # type: ignore[union-attr]
    result = module_dir.run("console", "-var", "jira_project_key=SEC", stdin="jsonencode(local.command_line)\n")

    assert set(json.loads(json.loads(result.stdout.strip().splitlines()[-1]))) == builder.LEFT_OUT
