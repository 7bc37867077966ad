"""Regenerate the trimmed Jira OpenAPI documents in this folder from Atlassian's full documents.

Sources (Atlassian's own documents, as committed in public repositories):

* Cloud: the Jira Cloud platform REST API v3 document, published at
  https://developer.atlassian.com/cloud/jira/platform/swagger-v3.v3.json; pinned copy taken from
  github.com/dichovsky/atlassian-api-client, path spec/jira-platform-v3.json. The v2 document
  (https://developer.atlassian.com/cloud/jira/platform/swagger.v3.json) documents the same operations
  under /rest/api/2; pass it with --v2 when a current copy is at hand. Without --v2 the /rest/api/2
  operations are the v3 document's operations under the /rest/api/2 prefix, and the note says so.
* Data Center: the Jira Software Data Center 10.3 document, published at
  https://dac-static.atlassian.com/server/jira/platform/jira_software_dc_10003_swagger.v3.json; pinned
  copy taken from github.com/zackbunch/jira-dc-mock-server, path contracts/jira-software-dc-10.3-openapi.json.
  Its paths start at /api/2 under a server URL ending in /rest; the trimmed file spells them /rest/api/2.
  The corrections in DATACENTER_CORRECTIONS are applied and listed in the file's note.

Usage:
    python tests/jira_openapi/pin.py cloud FULL_V3.json --repository R --path P --commit C [--v2 FULL_V2.json]
    python tests/jira_openapi/pin.py datacenter FULL.json --repository R --path P --commit C

The trimmed document is written to tests/jira_openapi/<deployment>.json (or --out). Examples are dropped;
operations, parameters, responses and every component they reference, transitively, are kept.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

PROPERTY = "/issue/{issueIdOrKey}/properties/{propertyKey}"
CREATEMETA = "/issue/createmeta/{projectIdOrKey}/issuetypes"
# (method, path under /rest/api/N) kept in both deployments.
COMMON_OPERATIONS = [
    ("get", "/search"),
    ("post", "/issue"),
    ("get", "/issue/{issueIdOrKey}"),
    ("post", "/issue/{issueIdOrKey}/comment"),
    ("get", "/serverInfo"),
    ("get", CREATEMETA),
    ("get", CREATEMETA + "/{issueTypeId}"),
    ("get", PROPERTY),
    ("put", PROPERTY),
]
CLOUD_V3_OPERATIONS = [("get", "/rest/api/3/search/jql"), ("post", "/rest/api/3/search/jql")]
CLOUD_V2_OPERATIONS = [(method, "/rest/api/2" + path) for method, path in COMMON_OPERATIONS]
DATACENTER_OPERATIONS = [(method, "/api/2" + path) for method, path in COMMON_OPERATIONS]

PAGE_PROPERTIES = ("isLast", "maxResults", "nextPage", "self", "startAt", "total")
DATACENTER_CORRECTIONS = [
    "StringList is declared as an object; Jira reads it as a comma-separated string, so it is a string here.",
    "IssueBean.fields and IssueUpdateBean.fields values are declared as objects; issue field values are any JSON "
    "value (a summary is a string), so they are {} here.",
    "The issue property PUT body is declared as a string of format json; the body is the property's JSON value "
    "itself, so its schema is {} here.",
    "EntityPropertyBean.value is declared as a string; an entity property value is any JSON value, so it is {} here.",
    "FieldMetaBean.defaultValue and allowedValues items are declared as objects; they are {} here.",
    "The createmeta issuetypes and issuetypes/{issueTypeId} answers reference their item beans "
    "(CreateMetaIssueTypeBean, FieldMetaBean); Jira answers with a page of them, so the answer is PageBean's "
    "pagination properties with values holding the item bean.",
]


def refs_in(node: Any) -> set[str]:
    """Every local $ref string found anywhere under node."""
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            found.add(ref)
        for value in node.values():
            found |= refs_in(value)
    elif isinstance(node, list):
        for value in node:
            found |= refs_in(value)
    return found


def resolve_pointer(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def referenced_components(document: dict[str, Any], roots: Any) -> set[str]:
    """The refs reachable from roots, following components transitively."""
    pending = refs_in(roots)
    seen: set[str] = set()
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        pending |= refs_in(resolve_pointer(document, ref)) - seen
    return seen


def without_examples(node: Any, in_properties: bool = False) -> Any:
    """A copy of node without example/examples keywords (a property named "example" is kept)."""
    if isinstance(node, list):
        return [without_examples(value) for value in node]
    if not isinstance(node, dict):
        return node
    return {
        key: without_examples(value, key == "properties" and not in_properties)
        for key, value in node.items()
        if in_properties or key not in ("example", "examples")
    }


def rename_refs(node: Any, renames: dict[str, str]) -> Any:
    if isinstance(node, list):
        return [rename_refs(value, renames) for value in node]
    if not isinstance(node, dict):
        return node
    return {
        key: renames.get(value, value) if key == "$ref" else rename_refs(value, renames) for key, value in node.items()
    }


def extract(document: dict[str, Any], operations: list[tuple[str, str]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The document's paths holding only operations (those it has), and the components they reference."""
    paths: dict[str, Any] = {}
    for method, path in operations:
        item = document["paths"].get(path, {})
        if method not in item:
            continue
        kept = paths.setdefault(path, {key: value for key, value in item.items() if key == "parameters"})
        kept[method] = item[method]
    components: dict[str, Any] = {}
    for ref in referenced_components(document, paths):
        _, _, kind, name = ref.split("/", 3)
        components.setdefault(kind, {})[name] = resolve_pointer(document, ref)
    return paths, components


def merge(
    into: tuple[dict[str, Any], dict[str, Any]], extra: tuple[dict[str, Any], dict[str, Any]], suffix: str
) -> None:
    """Add extra's paths and components; a component name already holding other content gets suffix."""
    paths, components = into
    extra_paths, extra_components = extra
    renames = {}
    for kind, named in extra_components.items():
        for name, value in named.items():
            if name in components.get(kind, {}) and components[kind][name] != value:
                renames[f"#/components/{kind}/{name}"] = f"#/components/{kind}/{name}{suffix}"
    for kind, named in rename_refs(extra_components, renames).items():
        for name, value in named.items():
            new_name = renames.get(f"#/components/{kind}/{name}", f"#/x/x/{name}").rsplit("/", 1)[1]
            components.setdefault(kind, {})[new_name] = value
    paths.update(rename_refs(extra_paths, renames))


def with_prefix(paths: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    return {re.sub("^" + re.escape(old), new, path): item for path, item in paths.items()}


def correct_datacenter(paths: dict[str, Any], components: dict[str, Any], page_bean: dict[str, Any]) -> None:
    """Apply DATACENTER_CORRECTIONS in place; page_bean is the document's PageBean schema."""
    schemas = components["schemas"]
    if "StringList" in schemas:
        schemas["StringList"] = {"type": "string"}
    for name in ("IssueBean", "IssueUpdateBean"):
        schemas[name]["properties"]["fields"]["additionalProperties"] = {}
    schemas["EntityPropertyBean"]["properties"]["value"] = {}
    put_property = paths["/rest/api/2" + PROPERTY]["put"]["requestBody"]["content"]["application/json"]
    put_property["schema"] = {}
    field_meta = schemas["FieldMetaBean"]["properties"]
    field_meta["defaultValue"] = {}
    field_meta["allowedValues"]["items"] = {}
    page = {name: copy.deepcopy(page_bean["properties"][name]) for name in PAGE_PROPERTIES}
    for path, item_schema in (
        (CREATEMETA, "CreateMetaIssueTypeBean"),
        (CREATEMETA + "/{issueTypeId}", "FieldMetaBean"),
    ):
        media = paths["/rest/api/2" + path]["get"]["responses"]["200"]["content"]["application/json"]
        values = {"type": "array", "items": {"$ref": f"#/components/schemas/{item_schema}"}}
        media["schema"] = {"type": "object", "properties": {**page, "values": values}}


def pin_cloud(source: dict[str, Any], v2_source: dict[str, Any] | None) -> tuple[dict[str, Any], str]:
    trimmed = extract(source, CLOUD_V3_OPERATIONS)
    if v2_source is not None:
        merge(trimmed, extract(v2_source, CLOUD_V2_OPERATIONS), "V2")
        return trimmed_document(source, trimmed), "v2 operations from the v2 document given with --v2."
    v3_named = [(method, path.replace("/rest/api/2", "/rest/api/3", 1)) for method, path in CLOUD_V2_OPERATIONS]
    v2_paths, v2_components = extract(source, v3_named)
    merge(trimmed, (with_prefix(v2_paths, "/rest/api/3", "/rest/api/2"), v2_components), "V2")
    note = (
        "Only the v3 document (swagger-v3.v3.json) was available at a current revision: the /rest/api/2 operations "
        "here are that document's /rest/api/3 operations under the /rest/api/2 prefix. Atlassian documents the same "
        "operations in both versions; v3 takes Atlassian Document Format where v2 takes plain text (the comment body "
        "schema is untyped in v3, so both pass)."
    )
    return trimmed_document(source, trimmed), note


def pin_datacenter(source: dict[str, Any]) -> tuple[dict[str, Any], str]:
    paths, components = extract(source, DATACENTER_OPERATIONS)
    paths = with_prefix(paths, "/api/2", "/rest/api/2")
    correct_datacenter(paths, components, source["components"]["schemas"]["PageBean"])
    document = trimmed_document(source, (paths, components))
    document["servers"] = [{"url": "http://{baseurl}", "variables": source["servers"][0].get("variables", {})}]
    note = "Paths are the document's /api/2 paths under its /rest server URL. Corrections: " + " ".join(
        DATACENTER_CORRECTIONS
    )
    return document, note


def trimmed_document(source: dict[str, Any], trimmed: tuple[dict[str, Any], dict[str, Any]]) -> dict[str, Any]:
    paths, components = trimmed
    components = {kind: dict(sorted(named.items())) for kind, named in sorted(components.items())}
    schemes = source.get("components", {}).get("securitySchemes")
    if schemes:
        components["securitySchemes"] = schemes
    document = {
        "openapi": source["openapi"],
        "info": {"title": source["info"]["title"], "version": source["info"]["version"]},
        "servers": source.get("servers", []),
        "paths": dict(sorted(paths.items())),
        "components": components,
    }
    return without_examples(document)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("deployment", choices=["cloud", "datacenter"])
    parser.add_argument("source", type=Path, help="the full OpenAPI document")
    parser.add_argument("--v2", type=Path, help="Cloud only: the full v2 document (swagger.v3.json)")
    parser.add_argument("--repository", required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--commit", required=True)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    source = json.loads(args.source.read_text())
    if args.deployment == "cloud":
        v2_source = json.loads(args.v2.read_text()) if args.v2 else None
        document, note = pin_cloud(source, v2_source)
    else:
        document, note = pin_datacenter(source)
    document["x-pinned-from"] = {
        "repository": args.repository,
        "path": args.path,
        "commit": args.commit,
        "document_version": source["info"]["version"],
        "note": note,
    }
    out = args.out or HERE / f"{args.deployment}.json"
    out.write_text(json.dumps(document, indent=1, sort_keys=False) + "\n")


if __name__ == "__main__":
    main()
