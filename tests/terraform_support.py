"""Running Terraform from tests: offline, against the provider mirror, in a scratch copy of the module."""

from __future__ import annotations

import glob
import os
import pathlib
import shutil
import subprocess
import tempfile
from collections.abc import Mapping

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODULE_FILES = ("main.tf", "variables.tf", "outputs.tf")
MODULE_DIRS = ("modules",)
MIRROR_CANDIDATES = ("/opt/tf-plugins", os.path.expanduser("~/.terraform.d/plugins"), "/usr/share/terraform/plugins")


def find_mirror() -> str | None:
    configured = os.environ.get("TF_PROVIDER_MIRROR")
    candidates = [configured] if configured else list(MIRROR_CANDIDATES)
    for candidate in candidates:
        if candidate and glob.glob(f"{candidate}/registry.terraform.io/hashicorp/aws/5.100.*/*/terraform-provider-aws*"):
            return candidate
    return None


def require_terraform() -> tuple[str, str]:
    """Terraform and the offline aws provider mirror, or a skip (a failure under CI, where they must exist)."""
    binary = shutil.which("terraform")
    mirror = find_mirror()
    missing = [what for what, found in (("terraform", binary), ("the hashicorp/aws 5.100 provider mirror", mirror)) if not found]
    if missing:
        reason = f"{' and '.join(missing)} not found (set TF_PROVIDER_MIRROR to the mirror folder)"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the Terraform tests: {reason}")
        pytest.skip(reason)
    return binary, mirror  # type: ignore[return-value]


class TerraformDir:
    """A scratch copy of the root module and its child modules (the package linked, not copied) with its own CLI config."""

    def __init__(self, extra_files: Mapping[str, str] = {}) -> None:
        self.binary, mirror = require_terraform()
        self.path = pathlib.Path(tempfile.mkdtemp(prefix="responder-tf-"))
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
            'provider_installation {\n  filesystem_mirror {\n'
            f'    path    = "{mirror}"\n'
            '    include = ["registry.terraform.io/hashicorp/aws"]\n  }\n}\n'
        )
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AWS_", "TF_")) and key not in ("CHECKPOINT_DISABLE",)
        }
        self.env.update({"TF_CLI_CONFIG_FILE": str(self.cli_config), "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"})

    def run(
        self, *args: str, env: Mapping[str, str] = {}, stdin: str | None = None, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.binary, *args],
            cwd=self.path,
            env={**self.env, **env},
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"terraform {' '.join(args)} failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
        return result

    def init(self) -> None:
        self.run("init", "-backend=false", "-input=false", "-no-color")

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
