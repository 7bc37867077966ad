"""The resource policies (key, topic, ledger) as Terraform renders them: `terraform plan` of the root module
against a local AWS (a moto server on 127.0.0.1), read from `terraform show -json`.

Every ARN the policies name is built from names, so the whole policy is known at plan, as a reviewer sees it.
The role's policy names ARNs known only after apply (the key, the secret): test_deploy.py reads it as deployed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from test_terraform import ORGANISATION

from local_aws import REGION, LocalAws
from terraform_support import TerraformDir, require_terraform

ACCOUNT = "123456789012"  # the account moto answers as
PREFIX = "guardduty-responder"
OPERATOR = f"arn:aws:iam::{ACCOUNT}:role/incident-responders"
VARIABLES = ["-var", "jira_project_key=SEC", *ORGANISATION, "-var", f'operator_role_arns=["{OPERATOR}"]']
ROLE = f"arn:aws:iam::{ACCOUNT}:role/{PREFIX}-{REGION}"
ALARMS = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{PREFIX}-*"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:{PREFIX}-notifications"
TABLE = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{PREFIX}-ledger"
LOG_GROUP = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/{PREFIX}"


@pytest.fixture(scope="module")
def shown() -> Iterator[tuple[dict[str, Any], set[str]]]:
    """`terraform show -json` of the plan, and the resource types of the provider that take tags."""
    require_terraform()
    aws = LocalAws()
    workdir = TerraformDir()
    try:
        workdir.init()
        workdir.run("plan", "-input=false", "-no-color", "-out=plan.bin", *VARIABLES, env=aws.env, timeout=600)
        plan = json.loads(workdir.run("show", "-json", "plan.bin", env=aws.env).stdout)
        schemas = json.loads(workdir.run("providers", "schema", "-json").stdout)["provider_schemas"]
    finally:
        aws.stop()
        workdir.remove()
    provider = schemas["registry.terraform.io/hashicorp/aws"]
    taggable = {
        kind for kind, schema in provider["resource_schemas"].items() if "tags" in schema["block"]["attributes"]
    }
    yield plan, taggable


@pytest.fixture(scope="module")
def planned(shown: tuple[dict[str, Any], set[str]]) -> dict[str, dict[str, Any]]:
    """The planned values of every resource, by address."""
    resources: dict[str, dict[str, Any]] = {}
    modules = [shown[0]["planned_values"]["root_module"]]
    while modules:
        module = modules.pop()
        resources.update({resource["address"]: resource for resource in module.get("resources", [])})
        modules.extend(module.get("child_modules", []))
    return {address: resource.get("values", {}) for address, resource in resources.items()}


def test_every_resource_that_takes_tags_carries_the_deployment_s(shown: tuple[dict[str, Any], set[str]]) -> None:
    plan, taggable = shown
    tagged = [
        change for change in plan["resource_changes"] if change["mode"] == "managed" and change["type"] in taggable
    ]

    assert len(tagged) >= 15, "the rules, function, log group, table, topic, queues, secret, key, role and alarms"
    untagged = [
        change["address"]
        for change in tagged
        if (change["change"]["after"].get("tags_all") or {}).get("guardduty-responder:deployment") != PREFIX
    ]
    assert untagged == []


def policy(planned: dict[str, dict[str, Any]], address: str) -> list[dict[str, Any]]:
    statements = json.loads(planned[address]["policy"])["Statement"]
    return statements if isinstance(statements, list) else [statements]


def listed(value: Any) -> list[Any]:
    return sorted(value) if isinstance(value, list) else [value]


def by_sid(statements: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {statement["Sid"]: statement for statement in statements}


def test_the_key_lets_each_service_do_exactly_what_its_documentation_asks(planned: dict[str, Any]) -> None:
    services = {
        statement["Principal"]["Service"]: (listed(statement["Action"]), statement.get("Condition"))
        for statement in policy(planned, "module.responder.aws_kms_key.this[0]")
        if "Service" in statement.get("Principal", {})
    }

    assert services == {
        # SQS: an AWS service sending to a queue encrypted with a customer managed key; SNS: EventBridge's KMS
        # requests carry no aws:SourceAccount or aws:SourceArn, so no such condition may be set.
        "events.amazonaws.com": (["kms:Decrypt", "kms:GenerateDataKey"], None),
        # SNS: CloudWatch publishing to an encrypted topic, with the confused-deputy keys.
        "cloudwatch.amazonaws.com": (
            ["kms:Decrypt", "kms:GenerateDataKey*"],
            {"StringEquals": {"aws:SourceAccount": ACCOUNT}, "ArnLike": {"aws:SourceArn": ALARMS}},
        ),
        f"logs.{REGION}.amazonaws.com": (
            ["kms:Decrypt*", "kms:Describe*", "kms:Encrypt*", "kms:GenerateDataKey*", "kms:ReEncrypt*"],
            {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": LOG_GROUP}},
        ),
    }


def test_only_the_responder_its_operators_and_the_deployment_s_alarms_may_publish(planned: dict[str, Any]) -> None:
    statements = by_sid(policy(planned, "module.responder.aws_sns_topic_policy.this[0]"))

    assert statements == {
        "ResponderPublishes": {
            "Sid": "ResponderPublishes",
            "Effect": "Allow",
            "Principal": {"AWS": [ROLE, OPERATOR]},
            "Action": "sns:Publish",
            "Resource": TOPIC,
        },
        "AlarmsPublish": {
            "Sid": "AlarmsPublish",
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": "sns:Publish",
            "Resource": TOPIC,
            "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}, "ArnLike": {"aws:SourceArn": ALARMS}},
        },
        "NoOtherPublisher": {
            "Sid": "NoOtherPublisher",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "sns:Publish",
            "Resource": TOPIC,
            "Condition": {
                "ArnNotEquals": {"aws:PrincipalArn": [ROLE, OPERATOR]},
                "ArnNotLike": {"aws:SourceArn": ALARMS},
            },
        },
    }


def test_only_the_responder_and_its_operators_may_write_the_ledger(planned: dict[str, Any]) -> None:
    (statement,) = policy(planned, "module.responder.aws_dynamodb_resource_policy.ledger")

    assert statement == {
        "Sid": "OnlyTheResponderAndItsOperatorsWrite",
        "Effect": "Deny",
        "Principal": "*",
        "Action": [
            "dynamodb:BatchWriteItem",
            "dynamodb:DeleteItem",
            "dynamodb:PartiQLDelete",
            "dynamodb:PartiQLInsert",
            "dynamodb:PartiQLUpdate",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
        ],
        "Resource": TABLE,
        "Condition": {"ArnNotEquals": {"aws:PrincipalArn": [ROLE, OPERATOR]}},
    }
