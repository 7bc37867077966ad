"""The resource policies (key, topic, ledger) as Terraform renders them: `terraform plan` of the root module
against a local AWS (a moto server on 127.0.0.1), read from `terraform show -json`.

Every ARN the policies name is built from names, so the whole policy is known at plan, as a reviewer sees it.
The role's policy names ARNs known only after apply (the key, the secret): test_deploy.py reads it as deployed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from test_terraform import ORGANISATION

from local_aws import REGION, LocalAws
from terraform_support import TerraformDir, require_terraform

ACCOUNT = "123456789012"  # the account moto answers as
PREFIX = "guardduty-responder"
OPERATOR = f"arn:aws:iam::{ACCOUNT}:role/incident-responders"
APPROVER = f"arn:aws:iam::{ACCOUNT}:role/on-call-leads"
VARIABLES = [
    "-var",
    "jira_project_key=SEC",
    *ORGANISATION,
    "-var",
    f'operator_role_arns=["{OPERATOR}"]',
    "-var",
    # An operator listed as an approver too is an operator: it is not narrowed to approvals.
    f'approver_role_arns=["{APPROVER}", "{OPERATOR}"]',
]
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
def outputs(shown: tuple[dict[str, Any], set[str]]) -> dict[str, Any]:
    """The planned values of the root module's outputs."""
    return {name: change.get("after") for name, change in shown[0]["output_changes"].items()}


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


WRITES = [
    "dynamodb:BatchWriteItem",
    "dynamodb:DeleteItem",
    "dynamodb:PartiQLDelete",
    "dynamodb:PartiQLInsert",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
]


def test_approvers_may_write_approval_items_and_nothing_else_of_the_ledger(
    planned: dict[str, Any], outputs: dict[str, Any]
) -> None:
    (allow,) = json.loads(outputs["approver_policy_json"])["Statement"]
    # The identity policy: one write, on the table itself (no index, no other table), approval items only, and
    # only the attributes of a decision (guardduty_responder.ledger.Ledger.decide_approval writes these).
    assert allow == {
        "Sid": "DecideOnApprovals",
        "Effect": "Allow",
        "Action": ["dynamodb:UpdateItem"],
        "Resource": TABLE,
        "Condition": {
            "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["approval#*"]},
            "ForAllValues:StringEquals": {
                "dynamodb:Attributes": [
                    "pk",
                    "state",
                    "decided_by",
                    "decided_arn",
                    "decided_at",
                    "reason",
                ]
            },
        },
    }
    # The table's own policy, whatever an approver's own policies allow: approvers (who are not operators) may only
    # update, only approval items, only the decision's attributes, only naming the item.
    statements = by_sid(policy(planned, "module.responder.aws_dynamodb_resource_policy.ledger"))
    approvers = {"ArnEquals": {"aws:PrincipalArn": [APPROVER]}}
    assert statements["ApproversOnlyUpdate"]["Action"] == [write for write in WRITES if write != "dynamodb:UpdateItem"]
    assert statements["ApproversOnlyUpdate"]["Condition"] == approvers
    assert {
        sid: statements[sid]["Condition"]
        for sid in statements
        if sid.startswith("Approvers") and sid != "ApproversOnlyUpdate"
    } == {
        "ApproversWriteApprovalsOnly": {
            **approvers,
            "ForAnyValue:StringNotLike": {"dynamodb:LeadingKeys": ["approval#*"]},
        },
        "ApproversWriteTheDecisionOnly": {
            **approvers,
            "ForAnyValue:StringNotEquals": {
                "dynamodb:Attributes": allow["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"]
            },
        },
        "ApproversNameTheItem": {**approvers, "Null": {"dynamodb:LeadingKeys": "true"}},
    }
    assert all(
        (statements[sid]["Effect"], statements[sid]["Principal"], statements[sid]["Resource"]) == ("Deny", "*", TABLE)
        for sid in statements
        if sid.startswith("Approvers")
    )


def test_the_attributes_an_approval_writes_are_the_ones_the_approver_policy_allows(outputs: dict[str, Any]) -> None:
    """Held to the code's own request: a decision the policy refused would fail for every approver."""
    import boto3
    from moto import mock_aws

    from guardduty_responder.ledger import WAITING, Ledger, approval_key

    (allow,) = json.loads(outputs["approver_policy_json"])["Statement"]
    allowed = set(allow["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"])
    sent: list[dict[str, Any]] = []
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.put_item(TableName="t", Item={"pk": {"S": approval_key("f1")}, "state": {"S": WAITING}})
        dynamodb.meta.events.register(
            "before-parameter-build.dynamodb.UpdateItem", lambda params, **_: sent.append(params)
        )
        Ledger(dynamodb, "t", 1).decide_approval("f1", state="approved", by="a", how="command", now=1.0)
    (request,) = sent
    named = set(request["ExpressionAttributeNames"].values()) | set(
        re.findall(r"\b([a-z_]+) = :", request["UpdateExpression"] + " " + request["ConditionExpression"])
    )
    assert named | {"pk"} == allowed and request["Key"]["pk"]["S"].startswith("approval#")


def test_only_the_responder_and_its_operators_may_write_the_ledger(planned: dict[str, Any]) -> None:
    statement = by_sid(policy(planned, "module.responder.aws_dynamodb_resource_policy.ledger"))[
        "OnlyTheResponderAndItsOperatorsWrite"
    ]

    assert statement == {
        "Sid": "OnlyTheResponderAndItsOperatorsWrite",
        "Effect": "Deny",
        "Principal": "*",
        "Action": WRITES,
        "Resource": TABLE,
        "Condition": {"ArnNotEquals": {"aws:PrincipalArn": [ROLE, OPERATOR, APPROVER]}},
    }
