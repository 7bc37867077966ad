"""Finding a Python interpreter of one version as a developer's machine offers it: on PATH, or through a version
manager's own command (the ``py`` launcher, pyenv, uv), never in a folder of one particular machine.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

# A virtual environment's interpreter is traded for the one it was made from: its packages would hide what a
# deployed archive lacks.
REPORT_VERSION = (
    "import sys; print('%d.%d' % sys.version_info[:2]); "
    "print(sys.executable if sys.prefix == sys.base_prefix else getattr(sys, '_base_executable', sys.executable))"
)


@dataclass(frozen=True)
class PythonSearch:
    found: str | None
    tried: tuple[str, ...]


def _run(command: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str] | None:
    """The command's result, or None when it cannot be started or hangs: a broken tool only rules out itself."""
    try:
        return subprocess.run(
            command, capture_output=True, text=True, timeout=60, env=dict(env), stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired):
        return None


def interpreter_version(command: list[str], env: Mapping[str, str]) -> tuple[str, str] | None:
    """The ``major.minor`` version and the executable of the interpreter a command starts, if it starts one."""
    result = _run([*command, "-c", REPORT_VERSION], env)
    if result is None or result.returncode != 0:
        return None
    lines = result.stdout.strip().splitlines()
    return (lines[0], lines[1]) if len(lines) == 2 else None


# Each way yields what it would start, or why it has nothing to start.
Candidate = tuple[str, list[str] | str]


def _on_path(version: str, env: Mapping[str, str]) -> Iterator[Candidate]:
    for name in (f"python{version}", "python3", "python"):
        found = shutil.which(name, path=env.get("PATH"))
        yield (f"{name} on PATH ({found})", [found]) if found else (f"{name} on PATH", "not there")


def _py_launcher(version: str, env: Mapping[str, str]) -> Iterator[Candidate]:
    launcher = shutil.which("py", path=env.get("PATH"))
    yield f"py -{version}", [launcher, f"-{version}"] if launcher else "no py launcher"


def _pyenv(version: str, env: Mapping[str, str]) -> Iterator[Candidate]:
    pyenv = shutil.which("pyenv", path=env.get("PATH"))
    if not pyenv:
        yield f"pyenv prefix {version}", "no pyenv"
        return
    # `pyenv prefix 3.13` resolves to the newest installed 3.13.x, whichever version is active.
    result = _run([pyenv, "prefix", version], env)
    prefix = result.stdout.strip() if result and result.returncode == 0 else ""
    executables = (
        [pathlib.Path(prefix, "bin", f"python{version}"), pathlib.Path(prefix, "python.exe")] if prefix else []
    )
    executable = next((str(path) for path in executables if path.is_file()), None)
    yield f"pyenv prefix {version}", [executable] if executable else "no such version installed"


def _uv(version: str, env: Mapping[str, str]) -> Iterator[Candidate]:
    uv = shutil.which("uv", path=env.get("PATH"))
    if not uv:
        yield f"uv python find {version}", "no uv"
        return
    result = _run([uv, "python", "find", version], env)
    found = result.stdout.strip() if result and result.returncode == 0 else ""
    yield f"uv python find {version}", [found] if found else "no such version found"


SOURCES: tuple[Callable[[str, Mapping[str, str]], Iterator[Candidate]], ...] = (_on_path, _py_launcher, _pyenv, _uv)


def find_python(version: str, env: Mapping[str, str] = os.environ) -> PythonSearch:
    """The first interpreter that really is Python ``version`` (a version manager's shim may start another one), and
    every way tried, for a skip reason."""
    tried = []
    for source in SOURCES:
        for description, command in source(version, env):
            if isinstance(command, str):
                tried.append(f"{description}: {command}")
                continue
            reported = interpreter_version(command, env)
            if reported and reported[0] == version:
                return PythonSearch(reported[1], tuple(tried))
            tried.append(f"{description}: " + (f"is Python {reported[0]}" if reported else "does not start"))
    return PythonSearch(None, tuple(tried))
