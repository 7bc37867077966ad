"""modules/responder composed as an organisation runs it, on a local AWS (a moto server on 127.0.0.1): every region of
a list in one apply through aliased providers (examples/every-region), then, on a checkout that never built the
archives, another name prefix and architecture applied over it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from local_aws import LocalAws
from terraform_support import ROOT, TerraformDir, require_terraform

EXAMPLE = "examples/every-region"
MODULES = {"us_east_1": "us-east-1", "eu_west_1": "eu-west-1"}
LOCK = json.loads((ROOT / "lambda_code" / "archives.lock.json").read_text())
TOKEN = "jira-token-that-never-reaches-the-state"
SECRET = json.dumps({"url": "https://example.atlassian.net", "username": "responder@example.com", "api_token": TOKEN})


def override(**settings: str) -> str:
    """A Terraform override file setting the same arguments of every region's module block."""
    lines = "".join(f"  {name} = {value}\n" for name, value in settings.items())
    return "".join(f'module "{module}" {{\n{lines}}}\n\n' for module in MODULES)


def apply(workdir: TerraformDir, aws: LocalAws) -> subprocess.CompletedProcess[str]:
    return workdir.run("apply", "-auto-approve", "-input=false", "-no-color", env=aws.env, timeout=900)


@pytest.fixture(scope="module")
def regions() -> Iterator[tuple[LocalAws, TerraformDir, subprocess.CompletedProcess[str]]]:
    require_terraform()
    aws = LocalAws()
    workdir = TerraformDir(workdir=EXAMPLE)
    try:
        (workdir.workdir / "test_override.tf").write_text(
            override(
                deletion_protection="false",
                architecture='"x86_64"',
                secret_recovery_window_days="0",
                jira_secret_value=json.dumps(SECRET),
                jira_secret_version="1",
            )
        )
        workdir.init()
        result = apply(workdir, aws)
        yield aws, workdir, result
    finally:
        aws.stop()
        workdir.remove()


def functions(aws: LocalAws, region: str) -> dict[str, dict[str, Any]]:
    lambda_ = aws.client("lambda", region_name=region)
    return {function["FunctionName"]: function for function in lambda_.list_functions()["Functions"]}


def test_one_apply_deploys_every_region_of_the_list_each_with_its_own_provider(regions: Any) -> None:
    aws, workdir, result = regions
    outputs = {k: v["value"] for k, v in json.loads(workdir.run("output", "-json", env=aws.env).stdout).items()}

    for region in MODULES.values():
        (function,) = functions(aws, region).values()
        assert function["FunctionArn"].split(":")[3] == region
        environment = function["Environment"]["Variables"]
        assert environment["RESPONDER_TOPIC_ARN"].split(":")[3] == region
        assert aws.client("dynamodb", region_name=region).list_tables()["TableNames"] == ["guardduty-responder-ledger"]
    roles = {role["RoleName"] for role in aws.client("iam").list_roles()["Roles"]}
    assert {f"guardduty-responder-{region}" for region in MODULES.values()} <= roles
    assert sorted(outputs["member_role_trust"]["responder_role_arns"]) == sorted(
        f"arn:aws:iam::123456789012:role/guardduty-responder-{region}" for region in MODULES.values()
    )
    assert "every_region_is_deployed_where_it_says" not in result.stdout + result.stderr, "the example's check failed"


def test_a_jira_token_given_to_terraform_reaches_the_secret_and_never_the_state(regions: Any) -> None:
    aws, workdir, result = regions
    state = (workdir.workdir / "terraform.tfstate").read_text()

    for region in MODULES.values():
        secrets = aws.client("secretsmanager", region_name=region)
        (secret,) = secrets.list_secrets()["SecretList"]
        assert secrets.get_secret_value(SecretId=secret["ARN"])["SecretString"] == SECRET
    assert TOKEN not in state and TOKEN not in result.stdout
    assert '"secret_string_wo_version": 1' in state


def test_without_default_tags_every_resource_that_takes_tags_carries_the_deployment_s(regions: Any) -> None:
    """The example's providers set no default tags: the module tags every resource itself."""
    _, workdir, _ = regions
    state = json.loads((workdir.workdir / "terraform.tfstate").read_text())
    taggable = [
        (f"{resource['module']}.{resource['type']}.{resource['name']}", instance["attributes"])
        for resource in state["resources"]
        if resource["mode"] == "managed"
        for instance in resource["instances"]
        if "tags_all" in instance["attributes"]
    ]

    assert len(taggable) >= 2 * 15
    assert [
        address
        for address, attributes in taggable
        if (attributes["tags"] or {}).get("guardduty-responder:deployment") != "guardduty-responder"
    ] == []


def order_of(output: str, pattern: str) -> int:
    match = re.search(pattern, output)
    assert match, f"no line matches {pattern!r} in the apply's output"
    return match.start()


def test_a_checkout_without_its_build_folder_applies_a_new_name_prefix_and_architecture(regions: Any) -> None:
    aws, workdir, _ = regions
    shutil.rmtree(workdir.path / ".build")
    (workdir.workdir / "test_override.tf").write_text(
        override(
            deletion_protection="false",
            architecture='"arm64"',
            secret_recovery_window_days="0",
            name_prefix='"gdr-renamed"',
            jira_secret_value=json.dumps(SECRET),
            jira_secret_version="1",
        )
    )

    output = apply(workdir, aws).stdout

    for module, region in MODULES.items():
        assert list(functions(aws, region)) == ["gdr-renamed"], (
            f"{region}: the old function is gone, the new one is there"
        )
        function = aws.client("lambda", region_name=region).get_function(FunctionName="gdr-renamed")["Configuration"]
        assert (function["Architectures"], function["CodeSha256"]) == (["arm64"], LOCK["function"])
        layer_arn = function["Layers"][0]["Arn"]
        *_, layer_name, version = layer_arn.split(":")
        layer = aws.client("lambda", region_name=region).get_layer_version(
            LayerName=layer_name, VersionNumber=int(version)
        )
        assert (layer_name, layer["Content"]["CodeSha256"]) == ("gdr-renamed-dependencies", LOCK["layer"]["arm64"])
        # No function or layer goes before its replacement exists.
        for resource in ("aws_lambda_function.this", r"aws_lambda_layer_version.dependencies\[0\]"):
            created = order_of(output, rf"module\.{module}\.{resource}: Creation complete")
            destroyed = order_of(output, rf"module\.{module}\.{resource} \(deposed object \w+\): Destroying")
            assert created < destroyed, f"{module}: {resource} was destroyed before its replacement was created"
    built = sorted(path.name for path in (workdir.path / ".build").glob("*.zip"))
    assert len(built) == 2 and built[0].startswith("function-") and built[1].startswith("layer-arm64-"), built
