"""The modules' documentation is their code's: every variable and output of the root module, modules/responder and
modules/member-role is in its README's table, with the type and default the .tf files give it, and nothing else is;
the root's inputs and outputs are modules/responder's, word for word."""

from __future__ import annotations

import json
import pathlib
import re
import textwrap
from dataclasses import dataclass
from typing import Any

import hcl2
import pytest

from terraform_support import ROOT

RESPONDER = ROOT / "modules" / "responder"
MEMBER_ROLE = ROOT / "modules" / "member-role"
# The root sets this one itself: .build of the checkout.
ONLY_IN_THE_MODULE = {"build_directory"}


@dataclass(frozen=True)
class Variable:
    type: str
    default: str  # as the README writes it: `required`, or the value
    description: str
    ephemeral: bool
    sensitive: bool


def unquoted(value: str) -> str:
    """A string as python-hcl2 gives it (quoted, a heredoc as written) as Terraform reads it."""
    if value.startswith('"<<'):
        return textwrap.dedent("\n".join(value[1:-1].split("\n")[1:-1]))
    return str(json.loads(value)) if value.startswith('"') else value


def hcl_type(value: str) -> str:
    """`${list(object({...}))}` as the README writes it: list(object)."""
    inner = value[2:-1] if value.startswith("${") else value
    while "object({" in inner:
        start = inner.index("object({") + len("object")
        depth = 0
        for end in range(start, len(inner)):
            depth += {"(": 1, ")": -1}.get(inner[end], 0)
            if depth == 0:
                inner = inner[:start] + inner[end + 1 :]
                break
    return inner


def shown(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return unquoted(value)
    return json.dumps(value, separators=(",", ":")) if isinstance(value, list | dict) else str(value)


def variables(folder: pathlib.Path) -> dict[str, Variable]:
    blocks = hcl2.load((folder / "variables.tf").open())["variable"]
    return {
        unquoted(name): Variable(
            type=hcl_type(body["type"]),
            default=shown(body["default"]) if "default" in body else "required",
            description=unquoted(body["description"]),
            ephemeral=bool(body.get("ephemeral")),
            sensitive=bool(body.get("sensitive")),
        )
        for block in blocks
        for name, body in block.items()
    }


def outputs(folder: pathlib.Path) -> dict[str, str]:
    blocks = hcl2.load((folder / "outputs.tf").open())["output"]
    return {unquoted(name): unquoted(body["description"]) for block in blocks for name, body in block.items()}


def table(readme: pathlib.Path, heading: str) -> list[list[str]]:
    """The rows of the first table after the heading, as cells."""
    text = readme.read_text()
    assert f"\n{heading}\n" in text, f"{readme.relative_to(ROOT)} has no heading {heading!r}"
    lines = text[text.index(f"\n{heading}\n") :].splitlines()[2:]
    start = next(index for index, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


def documented_variables(readme: pathlib.Path, heading: str) -> dict[str, tuple[str, str]]:
    """name: (type, default) of each row of a variables table (| name | type | default | meaning |)."""
    documented = {}
    for name, kind, default, *_ in table(readme, heading):
        value = re.match(r"`([^`]*)`", default)
        documented[name.strip("`")] = (kind.split(" (")[0], value[1] if value else default.split(" ")[0])
    return documented


def documented_outputs(readme: pathlib.Path, heading: str) -> set[str]:
    return {name for row in table(readme, heading) for name in re.findall(r"`([^`]+)`", row[0])}


@pytest.mark.parametrize(
    ("folder", "readme", "heading"),
    [(ROOT, ROOT / "README.md", "### Variables"), (MEMBER_ROLE, MEMBER_ROLE / "README.md", "## Inputs")],
    ids=["root", "member-role"],
)
def test_every_variable_is_in_the_readme_with_its_type_and_default(
    folder: pathlib.Path, readme: pathlib.Path, heading: str
) -> None:
    declared = {name: (variable.type, variable.default) for name, variable in variables(folder).items()}

    assert documented_variables(readme, heading) == declared


@pytest.mark.parametrize(
    ("folder", "readme", "heading"),
    [(ROOT, ROOT / "README.md", "### Outputs"), (MEMBER_ROLE, MEMBER_ROLE / "README.md", "## Outputs")],
    ids=["root", "member-role"],
)
def test_every_output_is_in_the_readme(folder: pathlib.Path, readme: pathlib.Path, heading: str) -> None:
    assert documented_outputs(readme, heading) == set(outputs(folder))


def test_the_responder_module_s_readme_lists_what_the_root_does_not_pass_through() -> None:
    documented = documented_variables(RESPONDER / "README.md", "## Inputs")
    own = {name: (variable.type, variable.default) for name, variable in variables(RESPONDER).items()}

    assert documented == {name: own[name] for name in ONLY_IN_THE_MODULE}


def test_the_root_s_inputs_and_outputs_are_the_module_s_word_for_word() -> None:
    root, module = variables(ROOT), variables(RESPONDER)

    assert set(module) - set(root) == ONLY_IN_THE_MODULE
    assert {name: root[name] for name in root} == {name: module[name] for name in root}
    assert outputs(ROOT) == outputs(RESPONDER)


def test_the_root_passes_every_input_to_the_module() -> None:
    module_call = hcl2.load((ROOT / "main.tf").open())["module"][0]['"responder"']
    passed = {
        name: unquoted(value) for name, value in module_call.items() if name != "source" and not name.startswith("__")
    }

    assert {name: value for name, value in passed.items() if name in variables(ROOT)} == {
        name: f"${{var.{name}}}" for name in variables(ROOT)
    }
