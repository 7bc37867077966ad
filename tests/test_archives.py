"""The deployed archives are the locked ones: byte for byte the same on any machine, their SHA-256 known at plan
(lambda_code/archives.lock.json), a different archive refused by the builder and by the plan.

The layer tests download the pinned wheels with pip (from the package index, or a mirror pip is configured with);
the function tests need no network.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import os
import pathlib
import re
import sys
import zipfile
from collections.abc import Iterator
from types import ModuleType

import pytest

from terraform_support import ROOT, TerraformDir

LOCK = ROOT / "lambda_code" / "archives.lock.json"
ARCHITECTURES = ("arm64", "x86_64")
REMEDY = "run `make lock`"


def load_builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_archives", ROOT / "lambda_code" / "build_archives.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_archives"] = module
    spec.loader.exec_module(module)
    return module


builder = load_builder()


def sha256_base64(path: pathlib.Path) -> str:
    return base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode()


def locked() -> dict[str, object]:
    return dict(json.loads(LOCK.read_text()))


def test_the_committed_lock_is_the_function_archive_of_this_checkout(tmp_path: pathlib.Path) -> None:
    builder.build("function", tmp_path / "function.zip", "")

    assert sha256_base64(tmp_path / "function.zip") == locked()["function"], (
        f"lambda_code/guardduty_responder no longer builds the locked function archive: {REMEDY} and commit "
        "lambda_code/archives.lock.json"
    )


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_the_committed_lock_is_the_layer_archive_of_the_pinned_wheels(
    tmp_path: pathlib.Path, architecture: str
) -> None:
    builder.build("layer", tmp_path / "layer.zip", architecture)

    layers = locked()["layer"]
    assert isinstance(layers, dict)
    assert sha256_base64(tmp_path / "layer.zip") == layers[architecture], (
        f"layer-requirements.txt no longer builds the locked {architecture} layer: {REMEDY} and commit "
        "lambda_code/archives.lock.json"
    )


def test_every_layer_pin_carries_the_hash_of_its_wheels() -> None:
    text = (ROOT / "lambda_code" / "layer-requirements.txt").read_text()
    requirements = [block for block in re.split(r"(?<!\\)\n", text) if block.strip() and not block.startswith("#")]

    assert requirements
    unpinned = [
        block.split()[0] for block in requirements if not re.search(r"==\S+ \\\n\s+--hash=sha256:[0-9a-f]{64}", block)
    ]
    assert unpinned == [], "every requirement needs ==version and --hash=sha256: lines (`make pin` writes them)"


def test_an_archive_depends_on_its_contents_only(tmp_path: pathlib.Path) -> None:
    """Entries sorted, a fixed time and mode, stored uncompressed: the same bytes whatever the file times or the
    order the files are found in."""
    first, second = tmp_path / "first.zip", tmp_path / "second.zip"
    entries = [("b/module.py", b"print('b')\n"), ("a/__init__.py", b""), ("a/z.py", b"z = 1\n")]
    builder.write_zip(entries, first)
    os.utime(first, (0, 0))
    builder.write_zip(list(reversed(entries)), second)

    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as archive:
        infos = archive.infolist()
    assert [info.filename for info in infos] == ["a/__init__.py", "a/z.py", "b/module.py"]
    assert {(info.compress_type, info.date_time, info.external_attr >> 16) for info in infos} == {
        (zipfile.ZIP_STORED, (1980, 1, 1, 0, 0, 0), 0o100644)
    }


@pytest.fixture
def wrong_lock(tmp_path: pathlib.Path) -> pathlib.Path:
    lock = tmp_path / "archives.lock.json"
    recorded = locked()
    recorded["function"] = base64.b64encode(hashlib.sha256(b"another archive").digest()).decode()
    lock.write_text(json.dumps(recorded))
    return lock


def test_the_builder_refuses_an_archive_the_lock_does_not_name(
    tmp_path: pathlib.Path, wrong_lock: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "build" / "function.zip"

    status = builder.main(["function", str(out), "--lock", str(wrong_lock)])

    message = " ".join(capsys.readouterr().err.split())
    assert status == 1
    assert json.loads(wrong_lock.read_text())["function"] in message, "the error names the locked hash"
    assert locked()["function"] in message, "the error names the hash of what was built"
    assert REMEDY in message
    assert not out.exists(), "a refused archive is never left where Terraform would upload it"


def test_an_archive_that_is_not_the_locked_one_is_rebuilt(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "function.zip"
    out.write_bytes(b"PK tampered with")

    assert builder.main(["function", str(out)]) == 0

    assert sha256_base64(out) == locked()["function"]


def test_the_locked_archive_already_built_is_kept(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "function.zip"
    builder.build("function", out, "")
    os.utime(out, (1, 1))

    assert builder.main(["function", str(out)]) == 0

    assert out.stat().st_mtime == 1, "an archive that is the locked one is not rebuilt"


# A plan of the root module with a mocked provider, as tests/responder.tftest.hcl runs them.
PLAN_ONLY = """
mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_region" {
    defaults = { name = "eu-west-1" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
}

variables {
  jira_project_key = "SEC"
  architecture     = "arm64"
}

run "plan" {
  command = plan
}
"""


@pytest.fixture(scope="module")
def planned() -> Iterator[TerraformDir]:
    workdir = TerraformDir(extra_files={"tests/archives.tftest.hcl": PLAN_ONLY})
    workdir.init()
    yield workdir
    workdir.remove()


def archive_path(workdir: TerraformDir, local: str) -> pathlib.Path:
    result = workdir.run("console", "-var", "jira_project_key=SEC", "-var", "architecture=arm64", stdin=f"{local}\n")
    return workdir.path / json.loads(result.stdout.strip().splitlines()[-1])


def plan(workdir: TerraformDir) -> tuple[int, str]:
    result = workdir.run("test", "-no-color", "-filter=tests/archives.tftest.hcl", check=False, timeout=300)
    return result.returncode, " ".join((result.stdout + result.stderr).replace("│", " ").split())


@pytest.mark.parametrize(
    ("local", "what"),
    [("local.function_zip", "function archive"), ("local.layer_zip", "arm64 layer archive")],
    ids=["function", "layer"],
)
def test_a_tampered_archive_in_the_build_folder_fails_the_plan(planned: TerraformDir, local: str, what: str) -> None:
    archive = archive_path(planned, local)
    assert plan(planned)[0] == 0, "without an archive on disk (a fresh clone) the plan passes"
    archive.parent.mkdir(parents=True, exist_ok=True)
    archive.write_bytes(b"PK a tampered archive")
    try:
        status, output = plan(planned)
    finally:
        archive.unlink()

    assert status != 0
    assert f"is not the {what} lambda_code/archives.lock.json names" in output, output[-3000:]
