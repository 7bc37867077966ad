"""Check Jira requests and answers against Atlassian's published OpenAPI documents, pinned in tests/jira_openapi/.

`Contract("cloud")` reads cloud.json (Jira Cloud platform REST API, v2 and v3 operations);
`Contract("datacenter")` reads datacenter.json (Jira Data Center REST API 2). Nothing here uses the network.

Answers are checked strictly: an object schema that declares `properties` and does not set
`additionalProperties` itself accepts no other property. OpenAPI 3.0 `nullable` is honoured.
"""

from __future__ import annotations

import json
import re
from functools import cached_property
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

PINNED = Path(__file__).resolve().parent / "jira_openapi"
CLOUD_GATEWAY = re.compile(r"^/ex/jira/[^/]+(?=/)")
ERROR_SHAPE = {
    "type": "object",
    "properties": {
        "errorMessages": {"type": "array", "items": {"type": "string"}},
        "errors": {"type": "object", "additionalProperties": {"type": "string"}},
        "status": {"type": "integer"},
    },
    "required": ["errorMessages", "errors"],
    "additionalProperties": False,
}
SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions")


class ContractError(AssertionError):
    """A request or answer that the pinned OpenAPI document does not allow."""


def _json_schema(node: Any, strict: bool) -> Any:
    """An OpenAPI 3.0 schema as JSON Schema 2020-12: nullable becomes a null type, and strict closes objects."""
    if isinstance(node, list):
        return [_json_schema(value, strict) for value in node]
    if not isinstance(node, dict):
        return node
    schema: dict[str, Any] = {}
    for key, value in node.items():
        if key == "nullable":
            continue
        if key in SCHEMA_MAPS and isinstance(value, dict):
            schema[key] = {name: _json_schema(sub, strict) for name, sub in value.items()}
        else:
            schema[key] = _json_schema(value, strict)
    if node.get("nullable") is True:
        schema = {"anyOf": [schema, {"type": "null"}]}
    elif strict and "properties" in node and "additionalProperties" not in node:
        schema["unevaluatedProperties"] = False
    return schema


def _query_value(text: str, schema: dict[str, Any]) -> Any:
    """A query string converted to the type its schema names; left as text when it does not convert."""
    kind = schema.get("type")
    try:
        if kind == "integer":
            return int(text)
        if kind == "number":
            return float(text)
    except ValueError:
        return text
    if kind == "boolean" and text in ("true", "false"):
        return text == "true"
    return text


class Contract:
    """The operations of one Jira deployment's pinned OpenAPI document."""

    def __init__(self, deployment: str) -> None:
        if deployment not in ("cloud", "datacenter"):
            raise ValueError(f"unknown Jira deployment {deployment!r}: use 'cloud' or 'datacenter'")
        self.deployment = deployment
        self.document: dict[str, Any] = json.loads((PINNED / f"{deployment}.json").read_text())
        self._templates = sorted(
            ((self._template_pattern(path), path) for path in self.document["paths"]),
            key=lambda pair: -pair[1].count("/") * 100 + pair[1].count("{"),
        )

    @staticmethod
    def _template_pattern(path: str) -> re.Pattern[str]:
        parts = re.split(r"(\{[^}]+\})", path)
        return re.compile("^" + "".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts) + "$")

    @cached_property
    def _components(self) -> dict[bool, dict[str, Any]]:
        components = self.document.get("components", {})
        return {strict: _json_schema(components, strict) for strict in (False, True)}

    def _validate(self, schema: dict[str, Any], instance: Any, strict: bool, what: str) -> None:
        root = {"$schema": "https://json-schema.org/draft/2020-12/schema", "allOf": [_json_schema(schema, strict)]}
        root["components"] = self._components[strict]
        error = best_match(Draft202012Validator(root).iter_errors(instance))
        if error is not None:
            where = "/".join(str(part) for part in error.absolute_path) or "(top)"
            raise ContractError(f"{self.deployment}: {what} at {where}: {error.message}")

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]]:
        """The path template and operation for method and path; ContractError when the document has none."""
        bare = path.split("?", 1)[0]
        if self.deployment == "cloud":
            bare = CLOUD_GATEWAY.sub("", bare)
        for pattern, template in self._templates:
            if pattern.match(bare):
                item = self.document["paths"][template]
                if method.lower() in item:
                    return template, item[method.lower()]
                raise ContractError(f"{self.deployment}: {method.upper()} {template} is not a documented operation")
        raise ContractError(f"{self.deployment}: no documented operation matches {method.upper()} {bare}")

    def _parameters(self, template: str, operation: dict[str, Any]) -> dict[str, dict[str, Any]]:
        declared = self.document["paths"][template].get("parameters", []) + operation.get("parameters", [])
        resolved = [self._follow(parameter) for parameter in declared]
        return {parameter["name"]: parameter for parameter in resolved if parameter.get("in") == "query"}

    def _follow(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            target: Any = self.document
            for part in node["$ref"][2:].split("/"):
                target = target[part]
            node = target
        return node

    def check_request(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> None:
        """Raise ContractError unless the document has this operation and allows this query and JSON body."""
        template, operation = self.operation(method, path)
        name = f"{method.upper()} {template}"
        declared = self._parameters(template, operation)
        for key, values in query.items():
            if key not in declared:
                raise ContractError(f"{self.deployment}: {name} has no query parameter {key!r}")
            self._check_query_value(name, declared[key], values)
        for key, parameter in declared.items():
            if parameter.get("required") and key not in query:
                raise ContractError(f"{self.deployment}: {name} requires the query parameter {key!r}")
        self._check_request_body(name, operation, body)

    def _check_query_value(self, name: str, parameter: dict[str, Any], values: list[str]) -> None:
        schema = self._follow(parameter.get("schema", {}))
        if schema.get("type") == "array":
            items = self._follow(schema.get("items", {}))
            value: Any = [_query_value(part, items) for text in values for part in text.split(",")]
        elif len(values) == 1:
            value = _query_value(values[0], schema)
        else:
            raise ContractError(f"{self.deployment}: {name} takes one value for {parameter['name']!r}, got {values}")
        self._validate(parameter.get("schema", {}), value, False, f"query parameter {parameter['name']!r}")

    def _check_request_body(self, name: str, operation: dict[str, Any], body: Any) -> None:
        request_body = self._follow(operation.get("requestBody", {}))
        if not request_body:
            if body is not None:
                raise ContractError(f"{self.deployment}: {name} takes no request body")
            return
        if body is None:
            if request_body.get("required"):
                raise ContractError(f"{self.deployment}: {name} requires a request body")
            return
        schema = self._media_schema(request_body)
        if schema is not None:
            self._validate(schema, body, True, f"{name} request body")

    @staticmethod
    def _media_schema(holder: dict[str, Any]) -> dict[str, Any] | None:
        content = holder.get("content", {})
        media = content.get("application/json") or next(iter(content.values()), {})
        return media.get("schema")

    def check_answer(self, method: str, path: str, status: int, body: Any) -> None:
        """Raise ContractError unless body is what the document says this operation answers with status."""
        template, operation = self.operation(method, path)
        name = f"{method.upper()} {template} answering {status}"
        responses = operation.get("responses", {})
        response = responses.get(str(status)) or responses.get(f"{status // 100}XX") or responses.get("default")
        schema = self._media_schema(self._follow(response)) if response else None
        if schema is not None:
            self._validate(schema, body, True, name)
        elif 400 <= status < 500:
            self._validate(ERROR_SHAPE, body, True, f"{name} (Jira's error collection)")
        elif response is None:
            raise ContractError(f"{self.deployment}: {name}: status {status} is not documented")
        elif body not in (None, "", b""):
            raise ContractError(f"{self.deployment}: {name}: the document gives this answer no body")
