"""Every policy the modules write stays within IAM's size limits however many regions an organisation runs GuardDuty
in: the member role rendered for every commercial region (botocore's list of the `aws` partition) with every option
on, and the home deployment's role with every option on (a mocked provider, no account: plan only).

IAM's limits (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html), counted without white
space: 10,240 characters for all of a role's inline policies together, 2,048 for a role's trust policy.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import botocore.session
import pytest

from terraform_support import TerraformDir, mock_arns, mock_aws_provider, run_block

INLINE_LIMIT = 10240
TRUST_LIMIT = 2048
ACCOUNT = "123456789012"


def commercial_regions() -> list[str]:
    endpoints = botocore.session.get_session().get_component("data_loader").load_data("endpoints")
    (aws,) = [partition for partition in endpoints["partitions"] if partition["partition"] == "aws"]
    return sorted(aws["regions"])


REGIONS = commercial_regions()

# The policies name these ARNs, known at plan with the mock. Not the function's: with it, its mocked code hash would be
# known at plan too, a random string the function's postcondition refuses.
ARNS = {kind: arn for kind, arn in mock_arns(ACCOUNT, "ap-southeast-3").items() if kind != "aws_lambda_function"}
MOCK = mock_aws_provider(ACCOUNT, "ap-southeast-3", arns=ARNS, at_plan=True)


def size(document: str) -> str:
    """The expression of a policy's size as IAM counts it: its characters but white space."""
    return f'length(replace({document}, "/\\\\s/", ""))'


def limited(name: str, source: str, variables: dict[str, object], limits: dict[str, tuple[str, int]]) -> str:
    """A run of the module at `source` asserting each policy within its limit, the message naming its size."""
    asserts = [
        (f"{size(document)} <= {limit}", f'"{label}: ${{{size(document)}}} characters, over IAM\'s {limit}"')
        for label, (document, limit) in limits.items()
    ]
    return run_block(name, variables, asserts, source=source)


RESPONDER_ROLES = [f"arn:aws:iam::111111111111:role/guardduty-responder-{region}" for region in REGIONS]
OPERATORS = [f"arn:aws:iam::111111111111:role/incident-responders-{team}" for team in ("emea", "amer", "apac")]

RUNS = {
    "member_role_for_every_commercial_region": limited(
        "member_role_for_every_commercial_region",
        "./modules/member-role",
        {
            "regions": REGIONS,
            "responder_role_arns": RESPONDER_ROLES,
            "operator_role_arns": OPERATORS,
            "external_id": "gd-responder-7f3a9c",
            "credential_actions": True,
            "identity_actions": True,
            "metadata_actions": True,
            "snapshot_lock_actions": True,
            "protected_role_names": ["payments-*", "billing", "data-platform-*"],
            "role_path": "/security/incident-response/",
            "permissions_boundary_arn": "arn:aws:iam::111111111111:policy/security-boundary",
        },
        {
            "the member role's inline policy": ("aws_iam_role_policy.this.policy", INLINE_LIMIT),
            "the member role's trust policy": ("aws_iam_role.this.assume_role_policy", TRUST_LIMIT),
            "the release role's inline policy": ("aws_iam_role_policy.release[0].policy", INLINE_LIMIT),
            "the release role's trust policy": ("aws_iam_role.release[0].assume_role_policy", TRUST_LIMIT),
        },
    ),
    "home_role_with_every_option": limited(
        "home_role_with_every_option",
        "./modules/responder",
        {
            "jira_project_key": "SEC",
            "name_prefix": "guardduty-responder-secops-emea1",
            "credential_findings": "contain",
            "credential_revocation": "role",
            "disable_instance_metadata": True,
            "snapshot_lock_days": 30,
            "protected_role_names": ["payments-*", "billing", "data-platform-*"],
            "member_role_name": "guardduty-responder-member",
            "member_role_external_id": "gd-responder-7f3a9c",
            "organization_id": "o-a1b2c3d4e5",
            "operator_role_arns": OPERATORS,
            "guardduty_detector_id": "12abc34d567e8fa901bc2d34e56789f0",
            "role_path": "/security/incident-response/",
            "permissions_boundary_arn": "arn:aws:iam::111111111111:policy/security-boundary",
        },
        {
            "the function role's inline policy": ("aws_iam_role_policy.this.policy", INLINE_LIMIT),
            "the function role's trust policy": ("aws_iam_role.this.assume_role_policy", TRUST_LIMIT),
        },
    ),
}


@pytest.fixture(scope="module")
def workdir() -> Iterator[TerraformDir]:
    directory = TerraformDir(extra_files={"tests/sizes.tftest.hcl": MOCK + "\n".join(RUNS.values())})
    directory.init()
    yield directory
    directory.remove()


@pytest.fixture(scope="module")
def results(workdir: TerraformDir) -> str:
    result = workdir.run("test", "-no-color", "-filter=tests/sizes.tftest.hcl", check=False, timeout=600)
    return " ".join((result.stdout + result.stderr).replace("│", " ").split())


def test_the_list_is_every_commercial_region() -> None:
    assert len(REGIONS) >= 30 and {"us-east-1", "eu-west-1", "ap-southeast-3", "me-central-1"} <= set(REGIONS)


@pytest.mark.parametrize("run", RUNS)
def test_every_policy_stays_within_iam_s_limits(results: str, run: str) -> None:
    outcome = re.search(rf'run "{run}"\.\.\. (\w+)', results)

    assert outcome, results[-3000:]
    assert outcome[1] == "pass", results[-4000:]
