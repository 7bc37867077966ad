"""Running Terraform from tests: the hashicorp/aws provider found the way Terraform finds it, a scratch copy of the module.

Where the provider comes from, the first place that holds a version the module accepts for Terraform's platform:

1. ``TF_PROVIDER_MIRROR``, the project's explicit override: one or more filesystem mirrors (``os.pathsep`` between
   them). When it is set nothing else is consulted, and a mirror without the provider is an error.
2. The user's Terraform CLI configuration, read as Terraform reads it (``TF_CLI_CONFIG_FILE``; otherwise
   ``~/.terraformrc`` and ``~/.terraform.d/*.tfrc``, or ``%APPDATA%/terraform.rc`` and ``%APPDATA%/terraform.d`` on
   Windows): the ``filesystem_mirror`` paths of its ``provider_installation`` block that serve hashicorp/aws, or,
   without such a block, Terraform's implied local mirror directories.
3. The plugin cache: ``TF_PLUGIN_CACHE_DIR`` or the configuration's ``plugin_cache_dir``.
4. ``terraform init`` of a module that needs only the provider, with the user's own CLI configuration (so from the
   registry, or from their network mirror), once per test run, into a directory of this process that every test shares.

Tests skip when Terraform or the provider cannot be had, and fail instead under CI, where both must be there.
A ``TF_PROVIDER_MIRROR`` without the provider, or a CLI configuration that cannot be read, fails everywhere.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import pathlib
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from typing import NoReturn

import pytest

from terraform_discovery import (
    MIRROR_VARIABLE,
    PROVIDER_SOURCE,
    PROVIDER_VERSIONS,
    ROOT,
    ProviderMirror,
    TerraformMisconfigured,
    newest_allowed_version,
    search_local_mirrors,
)

MODULE_FILES = ("main.tf", "variables.tf", "outputs.tf")
MODULE_DIRS = ("modules", "examples")
# Long enough to download the aws provider (about 130 MB) on a slow line; an unreachable registry fails within seconds.
DOWNLOAD_TIMEOUT_SECONDS = 300


class TerraformUnavailable(Exception):
    """Terraform or the provider cannot be had on this machine: the tests skip, or fail under CI."""


def running_under_ci(env: Mapping[str, str] = os.environ) -> bool:
    return env.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def terraform_platform(binary: str) -> str:
    """The platform Terraform installs providers for, as it names it (``linux_amd64``): its own, not Python's."""
    try:
        result = subprocess.run(
            [binary, "version", "-json"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "CHECKPOINT_DISABLE": "1"},
        )
        return str(json.loads(result.stdout)["platform"])
    except (OSError, subprocess.TimeoutExpired, ValueError, KeyError, TypeError) as error:
        raise TerraformMisconfigured(f"`{binary} version -json` did not name Terraform's platform: {error}") from None


def terraform_error(output: str) -> str:
    """Terraform's first error, title and detail on one line: what the skip reason quotes."""
    start = output.find("Error:")
    if start < 0:
        return " ".join(output.split())[:600] or "no output"
    title, _, detail = output[start + len("Error:") :].strip().partition("\n")
    detail = detail.split("To see which modules", 1)[0]
    text = " ".join(f"{title.strip()}: {detail}".replace("│", " ").split())
    return text[:600] + ("..." if len(text) > 600 else "")


def provider_only_module() -> str:
    return (
        "terraform {\n  required_providers {\n    aws = {\n"
        f'      source  = "{PROVIDER_SOURCE}"\n      version = "{PROVIDER_VERSIONS}"\n'
        "    }\n  }\n}\n"
    )


def download_provider(binary: str, platform_name: str, env: Mapping[str, str]) -> ProviderMirror:
    """``terraform init`` of a module needing only the provider, as the user's Terraform would run it; what it
    installs under ``.terraform/providers`` is laid out as an unpacked filesystem mirror."""
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="responder-tf-providers-"))
    (workdir / "main.tf").write_text(provider_only_module())
    # The user's CLI configuration and credentials stay in effect; settings aimed at a working directory do not.
    init_env = {
        key: value for key, value in env.items() if not key.startswith(("TF_CLI_ARGS", "TF_DATA_DIR", "TF_WORKSPACE"))
    }
    init_env.update({"TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"})
    try:
        result = subprocess.run(
            [binary, "init", "-backend=false", "-input=false", "-no-color"],
            cwd=workdir,
            env=init_env,
            capture_output=True,
            text=True,
            timeout=DOWNLOAD_TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired:
        shutil.rmtree(workdir, ignore_errors=True)
        raise TerraformUnavailable(
            f"`terraform init` did not download it within {DOWNLOAD_TIMEOUT_SECONDS} s"
        ) from None
    installed = workdir / ".terraform" / "providers"
    version = newest_allowed_version(installed, platform_name) if result.returncode == 0 else None
    if version is None:
        shutil.rmtree(workdir, ignore_errors=True)
        raise TerraformUnavailable(
            f"`terraform init` could not download it: {terraform_error(result.stderr + result.stdout)}"
        )
    atexit.register(shutil.rmtree, workdir, True)
    return ProviderMirror(installed, version, "downloaded by `terraform init` for this test run")


def find_provider(binary: str, env: Mapping[str, str], system: str, cwd: pathlib.Path) -> ProviderMirror:
    """A mirror holding the provider: a local one, or one downloaded now. Raises TerraformUnavailable naming every place
    tried, or TerraformMisconfigured."""
    platform_name = terraform_platform(binary)
    search = search_local_mirrors(env, system, platform_name, cwd)
    if search.found:
        return search.found
    try:
        return download_provider(binary, platform_name, env)
    except TerraformUnavailable as failure:
        tried = "; ".join([*search.notes, *search.looked_in])
        raise TerraformUnavailable(
            f"the {PROVIDER_SOURCE} {PROVIDER_VERSIONS} provider for {platform_name} cannot be had: none locally "
            f"(looked in: {tried}) and {failure}. Set {MIRROR_VARIABLE} to a filesystem mirror that holds it "
            f"(`terraform providers mirror DIR`, run in this repository where the registry is reachable, makes one) or name one in the Terraform CLI configuration"
        ) from None


def terraform_binary(env: Mapping[str, str] = os.environ) -> str:
    binary = shutil.which("terraform", path=env.get("PATH"))
    if binary is None:
        raise TerraformUnavailable(
            "Terraform is not installed: no `terraform` on PATH (https://developer.hashicorp.com/terraform/install)"
        )
    return binary


@functools.cache
def _setup_for_this_run() -> tuple[str, ProviderMirror] | TerraformUnavailable | TerraformMisconfigured:
    """Looked up once per test run, failures included, so every test shares one search and at most one download."""
    try:
        binary = terraform_binary()
        return binary, find_provider(binary, os.environ, platform.system(), pathlib.Path.cwd())
    except (TerraformUnavailable, TerraformMisconfigured) as problem:
        return problem


def skip_or_fail(problem: Exception, what: str = "the Terraform tests") -> NoReturn:
    if isinstance(problem, TerraformMisconfigured):
        pytest.fail(f"{what} cannot run: {problem}")
    if running_under_ci():
        pytest.fail(f"CI must run {what}: {problem}")
    pytest.skip(str(problem))


def require_terraform_binary() -> str:
    """Terraform alone, for what needs no provider (``terraform fmt``), or a skip (a failure under CI)."""
    try:
        return terraform_binary()
    except TerraformUnavailable as problem:
        skip_or_fail(problem)


def require_terraform() -> tuple[str, ProviderMirror]:
    """Terraform and a mirror holding the aws provider, or a skip (a failure under CI, where they must exist)."""
    setup = _setup_for_this_run()
    if isinstance(setup, Exception):
        skip_or_fail(setup)
    return setup


class TerraformDir:
    """A scratch copy of the root module and its child modules (the package linked, not copied) with its own CLI config,
    which installs the provider only from the mirror found for this run."""

    def __init__(self, extra_files: Mapping[str, str] = {}, workdir: str = "") -> None:
        """``workdir``: the folder, below the copy's top, that Terraform runs in (``modules/responder`` to evaluate the
        module's own locals)."""
        self.binary, self.mirror = require_terraform()
        self.path = pathlib.Path(tempfile.mkdtemp(prefix="responder-tf-"))
        self.workdir = self.path / workdir
        for name in MODULE_FILES:
            shutil.copy(ROOT / name, self.path / name)
        for name in MODULE_DIRS:
            shutil.copytree(ROOT / name, self.path / name, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
        (self.path / "lambda_code").symlink_to(ROOT / "lambda_code")
        for name, text in extra_files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        self.cli_config = self.path / "terraform.tfrc"
        self.cli_config.write_text(
            "provider_installation {\n  filesystem_mirror {\n"
            f"    path    = {json.dumps(str(self.mirror.path))}\n"
            f'    include = ["{PROVIDER_SOURCE}"]\n  }}\n}}\n'
        )
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AWS_", "TF_")) and key not in ("CHECKPOINT_DISABLE",)
        }
        self.env.update(
            {"TF_CLI_CONFIG_FILE": str(self.cli_config), "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}
        )

    def run(
        self,
        *args: str,
        env: Mapping[str, str] = {},
        stdin: str | None = None,
        check: bool = True,
        timeout: float = 300,
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.binary, *args],
            cwd=self.workdir,
            env={**self.env, **env},
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"terraform {' '.join(args)} failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
            )
        return result

    def init(self) -> None:
        self.run("init", "-backend=false", "-input=false", "-no-color")

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


# --- Plan-only tests written by the tests (terraform test with a mocked provider) ---------------------------------


def mock_arns(account: str, region: str, prefix: str = "guardduty-responder") -> dict[str, str]:
    """ARNs of the forms the provider checks, for the resources whose ARN the modules pass on (a mocked provider
    otherwise gives random strings, which a mocked apply refuses)."""
    return {
        "aws_iam_role": f"arn:aws:iam::{account}:role/{prefix}-{region}",
        "aws_dynamodb_table": f"arn:aws:dynamodb:{region}:{account}:table/{prefix}-ledger",
        "aws_lambda_function": f"arn:aws:lambda:{region}:{account}:function:{prefix}",
        "aws_sqs_queue": f"arn:aws:sqs:{region}:{account}:{prefix}-failed-findings",
        "aws_cloudwatch_event_rule": f"arn:aws:events:{region}:{account}:rule/{prefix}-findings",
        "aws_cloudwatch_log_group": f"arn:aws:logs:{region}:{account}:log-group:/aws/lambda/{prefix}",
        "aws_secretsmanager_secret": f"arn:aws:secretsmanager:{region}:{account}:secret:{prefix}/jira-AbCdEf",
        "aws_sns_topic": f"arn:aws:sns:{region}:{account}:{prefix}-notifications",
        "aws_kms_key": f"arn:aws:kms:{region}:{account}:key/2f4e4f4a-7a1b-4a69-9c5e-1f2a3b4c5d6e",
    }


def mock_aws_provider(
    account: str = "123456789012", region: str = "eu-west-1", *, arns: Mapping[str, str] = {}, at_plan: bool = False
) -> str:
    """A `mock_provider "aws"` block: the account, region and partition the data sources read, the given resource
    ARNs, and with `at_plan` those values known at plan already (`override_during = plan`)."""
    data = {"aws_caller_identity": f'account_id = "{account}"', "aws_region": f'name = "{region}"'}
    data["aws_partition"] = 'partition = "aws"'
    blocks = [f'  mock_data "{kind}" {{\n    defaults = {{ {value} }}\n  }}\n' for kind, value in data.items()]
    blocks += [f'  mock_resource "{kind}" {{\n    defaults = {{ arn = "{arn}" }}\n  }}\n' for kind, arn in arns.items()]
    during = "  override_during = plan\n" if at_plan else ""
    return f'mock_provider "aws" {{\n{during}{"".join(blocks)}}}\n'


def run_block(
    name: str,
    variables: Mapping[str, object],
    asserts: Sequence[tuple[str, str]] = (),
    *,
    command: str = "plan",
    source: str | None = None,
) -> str:
    """A `run` block of a .tftest.hcl file: its variables (as JSON, which HCL reads), and each assertion as
    (condition, error message: an HCL string template)."""
    module = f'  module {{\n    source = "{source}"\n  }}\n\n' if source else ""
    settings = "".join(f"    {key} = {json.dumps(value)}\n" for key, value in variables.items())
    checks = "".join(
        f"  assert {{\n    condition     = {condition}\n    error_message = {message}\n  }}\n"
        for condition, message in asserts
    )
    return f'run "{name}" {{\n  command = {command}\n\n{module}  variables {{\n{settings}  }}\n\n{checks}}}\n'
