"""The README stays the map: the sections the tests point at exist, and its layout names every module."""

from __future__ import annotations

import ast
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
