"""Build the function and layer archives for Lambda, byte for byte the same on any machine, and check them
against the committed lock.

    python3 build_archives.py function OUT.zip        build (or find) the function archive; refuse it unless locked
    python3 build_archives.py layer OUT.zip --architecture x86_64|arm64      the same for the layer
    python3 build_archives.py lock    build every archive and write archives.lock.json (`make lock`)
    python3 build_archives.py pin     write the wheels' hashes into layer-requirements.txt (`make pin`)

The function archive is the deployed core, the `guardduty_responder` package: every Python file in it, and
nothing else (the command line, the demo and the stand-ins live in `guardduty_responder_tools`, which the core
never imports). The layer holds the wheels pinned, with their SHA-256, in layer-requirements.txt: pip downloads
them for the Lambda platform (Python 3.13 on Amazon Linux 2023, the chosen architecture) with --require-hashes,
whatever machine runs the build, and they are unpacked as pip would install them, without pip's own
machine-dependent files.

An archive is a function of its contents only: entries sorted, one fixed time and mode, stored without compression
(deflate output differs between zlib builds). archives.lock.json holds the base64 SHA-256 of each archive, which
Terraform deploys as `source_code_hash` and Lambda reports as `CodeSha256`; an archive whose hash is not the
locked one is rebuilt once and then refused.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable

HERE = pathlib.Path(__file__).resolve().parent
PACKAGE = HERE / "guardduty_responder"
REQUIREMENTS = HERE / "layer-requirements.txt"
LOCK = HERE / "archives.lock.json"
PLATFORMS = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}
LAMBDA_PYTHON = "3.13"
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
# A regular file, rw-r--r--, as Unix records it in the entry's external attributes.
FILE_MODE = 0o100644 << 16
LOCK_NOTE = (
    "Written by `make lock` (python3 lambda_code/build_archives.py lock): the base64 SHA-256 of each archive, "
    "deployed by Terraform as source_code_hash. Run it after any change to lambda_code/guardduty_responder, "
    "layer-requirements.txt or build_archives.py, and commit the result."
)

Entry = tuple[str, bytes]


class ArchiveMismatchError(Exception):
    """An archive built from this checkout is not the one the lock names."""


def archive_hash(path: pathlib.Path) -> str:
    """The base64 SHA-256 of a file: Terraform's filebase64sha256() and Lambda's CodeSha256."""
    return base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode()


def write_zip(entries: Iterable[Entry], out: pathlib.Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    # A name of its own: two builds of one archive at once (a deployment's regions in one apply) each write their
    # own file, and the last rename leaves a whole archive, the same bytes either way.
    handle, name = tempfile.mkstemp(dir=out.parent, prefix=f"{out.name}.", suffix=".partial")
    os.close(handle)
    partial = pathlib.Path(name)
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED) as archive:
        for name, data in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.create_system = 3
            info.external_attr = FILE_MODE
            info.compress_type = zipfile.ZIP_STORED
            archive.writestr(info, data)
    os.replace(partial, out)


def function_entries() -> list[Entry]:
    return [
        (f"guardduty_responder/{path.relative_to(PACKAGE).as_posix()}", path.read_bytes())
        for path in PACKAGE.rglob("*.py")
        if "__pycache__" not in path.parts
    ]


def pip_download(requirements: pathlib.Path, architecture: str, into: pathlib.Path, *, require_hashes: bool) -> None:
    """The wheels for the Lambda platform, whatever this machine is; only wheels, never a build."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--only-binary=:all:",
            "--platform",
            PLATFORMS[architecture],
            "--python-version",
            LAMBDA_PYTHON,
            "--implementation",
            "cp",
            *(["--require-hashes"] if require_hashes else []),
            "--dest",
            str(into),
            "--requirement",
            str(requirements),
        ],
        check=True,
    )


def wheel_entries(wheel: pathlib.Path) -> list[Entry]:
    """What installing a wheel puts in site-packages: its files, with the `.data/purelib` and `.data/platlib`
    trees moved to the top; scripts, headers and data files have no place in a layer."""
    entries = []
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            name = info.filename
            data_dir = re.match(r"^[^/]+\.data/([^/]+)/(.+)$", name)
            if data_dir:
                if data_dir.group(1) not in ("purelib", "platlib"):
                    continue
                name = data_dir.group(2)
            entries.append((f"python/{name}", archive.read(info)))
    return entries


def layer_entries(architecture: str, requirements: pathlib.Path = REQUIREMENTS) -> list[Entry]:
    with tempfile.TemporaryDirectory() as work:
        wheels = pathlib.Path(work)
        pip_download(requirements, architecture, wheels, require_hashes=True)
        entries = [entry for wheel in sorted(wheels.glob("*.whl")) for entry in wheel_entries(wheel)]
    names = [name for name, _ in entries]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise SystemExit(f"build_archives: two wheels of the layer hold the same files: {', '.join(duplicates[:5])}")
    return entries


def build(kind: str, out: pathlib.Path, architecture: str) -> None:
    write_zip(function_entries() if kind == "function" else layer_entries(architecture), out)


def describe(kind: str, architecture: str) -> str:
    return "the function archive" if kind == "function" else f"the {architecture} layer archive"


def read_lock(lock: pathlib.Path) -> dict[str, object]:
    try:
        return dict(json.loads(lock.read_text()))
    except (OSError, ValueError) as error:
        raise SystemExit(f"build_archives: cannot read {lock}: {error}; run `make lock`") from None


def locked_hash(lock: pathlib.Path, kind: str, architecture: str) -> str:
    recorded = read_lock(lock)
    layers = recorded.get("layer")
    if kind == "function":
        value = recorded.get("function")
    else:
        value = layers.get(architecture) if isinstance(layers, dict) else None
    if not isinstance(value, str):
        raise SystemExit(f"build_archives: {lock} names no hash for {describe(kind, architecture)}; run `make lock`")
    return value


def ensure(kind: str, out: pathlib.Path, architecture: str, lock: pathlib.Path) -> str:
    """The archive at `out`, the locked one: kept if it already is, otherwise built; refused if the build differs."""
    expected = locked_hash(lock, kind, architecture)
    if out.exists() and archive_hash(out) == expected:
        return f"{out.name}: {describe(kind, architecture)} matches the lock ({expected})"
    found = archive_hash(out) if out.exists() else None
    build(kind, out, architecture)
    built = archive_hash(out)
    if built != expected:
        rejected = out.with_name(out.name + ".rejected")
        os.replace(out, rejected)
        raise ArchiveMismatchError(
            f"{describe(kind, architecture)} built from this checkout has SHA-256 {built} (base64), but "
            f"{lock.name} expects {expected}. If you changed lambda_code/guardduty_responder, "
            "layer-requirements.txt or build_archives.py, run `make lock` and commit lambda_code/archives.lock.json; "
            "otherwise this checkout or the wheels pip downloaded are not what was locked, and nothing is deployed. "
            f"The rejected archive is {rejected}."
        )
    replaced = f" (replaced an archive with SHA-256 {found})" if found else ""
    return f"{out.name}: built {describe(kind, architecture)}, {built}, as locked{replaced}"


def write_lock(lock: pathlib.Path) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as work:
        folder = pathlib.Path(work)
        build("function", folder / "function.zip", "")
        layers = {}
        for architecture in sorted(PLATFORMS):
            build("layer", folder / f"layer-{architecture}.zip", architecture)
            layers[architecture] = archive_hash(folder / f"layer-{architecture}.zip")
        recorded: dict[str, object] = {
            "about": LOCK_NOTE,
            "function": archive_hash(folder / "function.zip"),
            "layer": layers,
        }
    lock.write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n")
    return recorded


PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+?)\s*(\\)?$")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pin_hashes(requirements: pathlib.Path) -> None:
    """Every pin of `requirements` followed by the SHA-256 of its wheel for each Lambda platform, from the index."""
    lines = requirements.read_text().splitlines()
    comments = [line for line in lines if line.startswith("#")]
    pins = [match.group(1, 2) for line in lines if (match := PIN.match(line.strip()))]
    hashes: dict[str, set[str]] = {normalise(name): set() for name, _ in pins}
    with tempfile.TemporaryDirectory() as work:
        bare = pathlib.Path(work) / "pins.txt"
        bare.write_text("".join(f"{name}=={version}\n" for name, version in pins))
        for architecture in sorted(PLATFORMS):
            wheels = pathlib.Path(work) / architecture
            pip_download(bare, architecture, wheels, require_hashes=False)
            for wheel in wheels.glob("*.whl"):
                hashes[normalise(wheel.name.split("-")[0])].add(hashlib.sha256(wheel.read_bytes()).hexdigest())
    missing = sorted(name for name, found in hashes.items() if not found)
    if missing:
        raise SystemExit(f"build_archives: pip downloaded no wheel for {', '.join(missing)}")
    body = []
    for name, version in pins:
        digests = sorted(hashes[normalise(name)])
        body.append(" \\\n    ".join([f"{name}=={version}"] + [f"--hash=sha256:{digest}" for digest in digests]))
    requirements.write_text("\n".join(comments + body) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("function", "layer", "lock", "pin"))
    parser.add_argument("out", type=pathlib.Path, nargs="?")
    parser.add_argument("--architecture", choices=sorted(PLATFORMS), default="x86_64")
    parser.add_argument("--lock", type=pathlib.Path, default=LOCK, help="the lock file (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.command == "lock":
        recorded = write_lock(args.lock)
        print(f"wrote {args.lock}: {json.dumps({k: v for k, v in recorded.items() if k != 'about'})}")
        return 0
    if args.command == "pin":
        pin_hashes(REQUIREMENTS)
        print(f"wrote {REQUIREMENTS}; run `make lock` next")
        return 0
    if args.out is None:
        parser.error(f"{args.command} needs the archive's path")
    try:
        print(ensure(args.command, args.out, args.architecture, args.lock))
    except ArchiveMismatchError as mismatch:
        print(f"build_archives: {mismatch}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
