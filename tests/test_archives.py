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

from terraform_support import ROOT, TerraformDir, mock_arns, mock_aws_provider, run_block

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
# A plan of the module with a mocked provider, as tests/responder.tftest.hcl runs them.
PLAN_ONLY = (
    mock_aws_provider()
    + 'variables {\n  jira_project_key = "SEC"\n  architecture     = "arm64"\n}\n\nrun "plan" {\n  command = plan\n}\n'
)


@pytest.fixture(scope="module")
def planned() -> Iterator[TerraformDir]:
    workdir = TerraformDir(
        extra_files={"modules/responder/tests/archives.tftest.hcl": PLAN_ONLY}, workdir="modules/responder"
    )
    workdir.init()
    yield workdir
    workdir.remove()


def archive_path(workdir: TerraformDir, local: str) -> pathlib.Path:
    result = workdir.run("console", "-var", "jira_project_key=SEC", "-var", "architecture=arm64", stdin=f"{local}\n")
    return workdir.workdir / json.loads(result.stdout.strip().splitlines()[-1])


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


def test_an_archive_written_while_another_build_writes_it_is_left_whole(tmp_path: pathlib.Path) -> None:
    """Every region of one apply builds the same archive, into the same folder, at the same time."""
    out = tmp_path / "function.zip"

    def entries() -> Iterator[tuple[str, bytes]]:
        builder.write_zip([("other.py", b"written by another build meanwhile")], out)
        yield ("this.py", b"written by this build")

    builder.write_zip(entries(), out)

    with zipfile.ZipFile(out) as archive:
        assert archive.namelist() == ["this.py"]
        assert archive.read("this.py") == b"written by this build"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["function.zip"], "no partial file is left behind"


# ARNs the provider checks the form of, for the mocked apply.
MOCK_ARNS = mock_arns("123456789012", "eu-west-1")


def given(
    planned: TerraformDir, variables: dict[str, object], asserts: dict[str, str], command: str = "plan"
) -> tuple[int, str]:
    """A run of the module with a mocked provider, these variables and assertions (name: condition). An apply runs
    the builds (local-exec), with Lambda's answers the locked hashes."""
    lock = locked()
    layers = lock["layer"]
    assert isinstance(layers, dict)
    answers = (
        f'override_resource {{\n  target = aws_lambda_function.this\n  values = {{ code_sha256 = "{lock["function"]}", arn = "{MOCK_ARNS["aws_lambda_function"]}" }}\n}}\n'
        f'override_resource {{\n  target = aws_lambda_layer_version.dependencies\n  values = {{ code_sha256 = "{layers["arm64"]}" }}\n}}\n'
    )
    checks = [(condition, json.dumps(name)) for name, condition in asserts.items()]
    (planned.workdir / "tests" / "given.tftest.hcl").write_text(
        mock_aws_provider(arns=MOCK_ARNS)
        + answers
        + run_block("given", {"jira_project_key": "SEC", **variables}, checks, command=command)
    )
    result = planned.run("test", "-no-color", "-filter=tests/given.tftest.hcl", check=False, timeout=300)
    return result.returncode, " ".join((result.stdout + result.stderr).replace("│", " ").split())


def test_an_archive_and_layers_given_are_deployed_and_nothing_is_built(
    planned: TerraformDir, tmp_path: pathlib.Path
) -> None:
    archive = tmp_path / "built-in-ci.zip"
    builder.build("function", archive, "")
    layers = ["arn:aws:lambda:eu-west-1:123456789012:layer:shared-jira-client:7"]
    no_build = {
        # A build would run this command, and fail.
        "build_python": "false",
        # What a mocked apply needs: terraform test applies an ephemeral variable only if it was set, and the
        # provider checks the ARNs that would otherwise be the mock's random strings.
        "jira_secret_value": '{"url": "https://jira.example.com", "token": "t"}',
        "jira_secret_version": 1,
        "kms_key_arn": "arn:aws:kms:eu-west-1:123456789012:key/2f4e4f4a-7a1b-4a69-9c5e-1f2a3b4c5d6e",
        "sns_topic_arn": "arn:aws:sns:eu-west-1:123456789012:security-alerts",
    }

    given_all = given(
        planned,
        {"function_archive": str(archive), "layer_arns": layers, **no_build},
        {
            "the given archive is the one deployed": f"aws_lambda_function.this.filename == {json.dumps(str(archive))}",
            "no layer is published": "length(aws_lambda_layer_version.dependencies) == 0",
            "the function runs with the layers given": f"aws_lambda_function.this.layers == tolist({json.dumps(layers)})",
        },
        command="apply",
    )
    building_the_function = given(planned, {"layer_arns": layers, **no_build}, {}, command="apply")

    assert given_all[0] == 0, given_all[1][-3000:]
    assert building_the_function[0] != 0, "the control: without the archive given, the build runs (and fails here)"
    assert "terraform_data.function_archive" in building_the_function[1]
    assert "local-exec provisioner error" in building_the_function[1], building_the_function[1][-3000:]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        (b"PK built from other sources", "is not the function archive lambda_code/archives.lock.json names"),
    ],
    ids=["missing", "not-locked"],
)
def test_an_archive_given_that_is_not_the_locked_one_fails_the_plan(
    planned: TerraformDir, tmp_path: pathlib.Path, content: bytes | None, message: str
) -> None:
    archive = tmp_path / "function.zip"
    if content is not None:
        archive.write_bytes(content)

    status, output = given(planned, {"function_archive": str(archive)}, {})

    assert status != 0
    assert f"function_archive {archive} {message}" in output, output[-3000:]
