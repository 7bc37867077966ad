"""The README stays the map: the sections the tests point at exist, and its layout names every module."""

from __future__ import annotations

import ast
import json
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
HEADINGS = {line.lstrip("#").strip() for line in README.splitlines() if line.startswith("#")}


def test_every_readme_section_a_test_names_exists() -> None:
    named: dict[str, set[str]] = {}
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
        for reference in re.findall(r"README[,']s? ((?:\"[^\"]+\"(?:, )?)+)", docstring):
            named.setdefault(path.name, set()).update(re.findall(r"\"([^\"]+)\"", reference))
    assert named, "no test docstring names a README section: the pattern no longer matches"
    missing = {name: sections - HEADINGS for name, sections in named.items() if sections - HEADINGS}
    assert missing == {}


def test_the_layout_section_names_every_module_of_both_packages() -> None:
    layout = README[README.index("## Layout") :]
    modules = sorted(
        path.name
        for package in ("guardduty_responder", "guardduty_responder_tools")
        for path in (ROOT / "lambda_code" / package).glob("*.py")
        if path.name != "__init__.py"
    )
    assert [name for name in modules if f"  {name} " not in layout] == []


CONDITION_OPERATOR = re.compile(
    r"^(ForAllValues:|ForAnyValue:)?(StringEquals|StringNotEquals|StringEqualsIgnoreCase|StringNotEqualsIgnoreCase|"
    r"StringLike|StringNotLike|ArnEquals|ArnNotEquals|ArnLike|ArnNotLike|Bool|Null|IpAddress|NotIpAddress|"
    r"NumericEquals|NumericNotEquals|NumericLessThan|NumericGreaterThan|DateLessThan|DateGreaterThan)(IfExists)?$"
)


def threat_model_policies() -> list[dict[str, object]]:
    section = README[README.index("## Threat model") :]
    section = section[: section.index("\n## ", 1)]
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", section, flags=re.DOTALL)]


def test_the_threat_model_s_service_control_policies_are_policies() -> None:
    policies = threat_model_policies()

    assert len(policies) == 3, "the responder's tags, the exemption tag, the role and the function"
    for policy in policies:
        assert set(policy) == {"Version", "Statement"} and policy["Version"] == "2012-10-17"
        statements = policy["Statement"]
        assert isinstance(statements, list) and statements
        for statement in statements:
            assert set(statement) <= {"Sid", "Effect", "Action", "Resource", "Condition"}, "an SCP names no Principal"
            assert statement["Effect"] == "Deny", "these policies only take permissions away"
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert actions and all(re.fullmatch(r"[a-z0-9-]+:[A-Za-z*]+", action) for action in actions)
            assert "Resource" in statement or "Condition" in statement
            for operator, keys in statement.get("Condition", {}).items():
                assert CONDITION_OPERATOR.match(operator), operator
                assert all(re.fullmatch(r"[a-z0-9-]+:[A-Za-z0-9/:_*-]+", key) for key in keys), keys
