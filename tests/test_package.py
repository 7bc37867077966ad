"""The boundary between the deployed core and the local tools (README, "Layout").

The function archive is the `guardduty_responder` package, with no list of file names anywhere:
these tests prove that it holds exactly the modules the handler's imports reach, and that none of
them imports moto, the command line or anything else Lambda does not have.
"""

from __future__ import annotations

import ast
import importlib.util
import pathlib
import sys
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
CODE = ROOT / "lambda_code"
CORE = "guardduty_responder"
TOOLS = "guardduty_responder_tools"
ENTRY = f"{CORE}.handler"
# What the python3.13 runtime and the layer provide besides the standard library.
RUNTIME = {"boto3", "botocore"}
LAYER = {"atlassian", "requests"}


def load_builder():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("build_archives", CODE / "build_archives.py")
    assert spec is not None and spec.loader is not None
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    return builder


def module_name(path: pathlib.PurePath) -> str:
    """`guardduty_responder/ledger.py` -> `guardduty_responder.ledger`; a package's `__init__` is the package."""
    parts = list(path.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_of(module: str) -> pathlib.Path:
    base = CODE.joinpath(*module.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def imports_of(module: str) -> set[str]:
    """Every module an `import` statement of `module` names, at any depth (imports inside functions too)."""
    path = source_of(module)
    return imports_in(path, module if path.name == "__init__.py" else module.rpartition(".")[0])


def imports_in(path: pathlib.Path, package: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            # `from package import module` names a module when there is one by that name.
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                if candidate.startswith(CORE + ".") and source_of(candidate).exists():
                    found.add(candidate)
    return found


def closure(entry: str) -> set[str]:
    """The core modules `entry` reaches through its imports, its packages' `__init__` included."""
    reached: set[str] = set()
    pending = [entry]
    while pending:
        module = pending.pop()
        if module in reached:
            continue
        reached.add(module)
        parents = [module.rsplit(".", depth)[0] for depth in range(1, module.count(".") + 1)]
        for name in imports_of(module) | set(parents):
            if (name == CORE or name.startswith(CORE + ".")) and name not in reached:
                pending.append(name)
    return reached


@pytest.fixture(scope="module")
def archive_modules(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    out = tmp_path_factory.mktemp("archive") / "function.zip"
    builder = load_builder()
    builder.write_zip(builder.function_entries(), out)
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
    assert all(name.endswith(".py") for name in names), names
    return {module_name(pathlib.PurePosixPath(name)) for name in names}


def test_the_archive_holds_exactly_what_the_handler_imports(archive_modules: set[str]) -> None:
    reached = closure(ENTRY)
    assert {ENTRY, f"{CORE}.responder", f"{CORE}.isolation", CORE} <= reached, "the import walk found too little"
    assert archive_modules - reached == set(), "in the function archive but never imported by the handler"
    assert reached - archive_modules == set(), "imported by the handler but missing from the function archive"


def test_no_core_module_lies_outside_the_handlers_reach() -> None:
    core = {module_name(path.relative_to(CODE)) for path in (CODE / CORE).rglob("*.py")}
    assert core - closure(ENTRY) == set(), f"move these to {TOOLS} or the tests, or import them from the handler"


def test_the_archive_imports_only_what_lambda_has(archive_modules: set[str]) -> None:
    foreign: dict[str, set[str]] = {}
    for module in archive_modules:
        for name in imports_of(module):
            top = name.split(".")[0]
            if top == CORE or top in sys.stdlib_module_names or top in RUNTIME | LAYER:
                continue
            foreign.setdefault(module, set()).add(name)
    assert foreign == {}, "the deployed core imports what Lambda does not have (moto, the tools, test packages)"


def test_the_walk_would_see_a_forbidden_import(tmp_path: pathlib.Path) -> None:
    """The checks above rest on this walk noticing imports inside functions, relative or absolute."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "def later():\n    from moto import mock_aws\n    import guardduty_responder_tools.cli\n    from . import ledger\n"
    )
    assert {"moto", f"{TOOLS}.cli", f"{CORE}.ledger"} <= imports_in(probe, CORE)


def test_the_tools_build_on_the_core_and_not_the_reverse() -> None:
    tools = {module_name(path.relative_to(CODE)) for path in (CODE / TOOLS).rglob("*.py")}
    assert f"{TOOLS}.cli" in tools and f"{TOOLS}.embedded" in tools
    core = {module_name(path.relative_to(CODE)) for path in (CODE / CORE).rglob("*.py")}
    reverse = {module: names for module in core if (names := {n for n in imports_of(module) if n.startswith(TOOLS)})}
    assert reverse == {}


# A core function reads on one screen; the codebases this one is measured against stay there too.
LONGEST_FUNCTION = 50


def test_no_core_function_is_longer_than_a_screen() -> None:
    long: dict[str, int] = {}
    for path in (CODE / CORE).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > LONGEST_FUNCTION:
                    long[f"{path.relative_to(CODE)}:{node.lineno} {node.name}"] = length
    assert long == {}
