"""Build the function and layer archives for Lambda, byte for byte the same from the same inputs.

    python3 build_archives.py function OUT.zip
    python3 build_archives.py layer OUT.zip --architecture x86_64|arm64

The function archive is the deployed core, the `guardduty_responder` package: every Python file in
it, and nothing else (the command line, the demo and the stand-ins live in `guardduty_responder_tools`,
which the core never imports). The layer holds
the pinned dependencies of layer-requirements.txt, installed by pip from wheels built for the Lambda
platform (Python 3.13 on Amazon Linux 2023), whatever machine runs the build. Entries are sorted and
carry a fixed time and mode, so `terraform apply` with no source change changes nothing.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import zipfile

HERE = pathlib.Path(__file__).resolve().parent
PACKAGE = HERE / "guardduty_responder"
REQUIREMENTS = HERE / "layer-requirements.txt"
PLATFORMS = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}
FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def write_zip(root: pathlib.Path, prefix: str, out: pathlib.Path, pattern: str = "*") -> None:
    files = sorted(
        path
        for path in root.rglob(pattern)
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in files:
            info = zipfile.ZipInfo(f"{prefix}{path.relative_to(root).as_posix()}", date_time=FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    os.replace(partial, out)


def build_function(out: pathlib.Path) -> None:
    # Python files only, as main.tf's hash of the package counts them.
    write_zip(PACKAGE, "guardduty_responder/", out, "*.py")


def build_layer(out: pathlib.Path, architecture: str) -> None:
    with tempfile.TemporaryDirectory() as work:
        target = pathlib.Path(work) / "python"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                # The builder's own Python may be older than the target's; the pins and the platform decide.
                "--no-compile",
                "--no-deps",
                "--only-binary=:all:",
                "--ignore-requires-python",
                "--platform",
                PLATFORMS[architecture],
                "--python-version",
                "3.13",
                "--implementation",
                "cp",
                "--target",
                str(target),
                "--requirement",
                str(REQUIREMENTS),
            ],
            check=True,
        )
        # pip records where it installed from; that differs between machines and is not needed.
        for leftover in target.glob("*.dist-info/direct_url.json"):
            leftover.unlink()
        shutil.rmtree(target / "bin", ignore_errors=True)
        write_zip(target, "python/", out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=("function", "layer"))
    parser.add_argument("out", type=pathlib.Path)
    parser.add_argument("--architecture", choices=sorted(PLATFORMS), default="x86_64")
    args = parser.parse_args()
    if args.out.exists():
        return  # the name carries the hash of every input: an existing archive is the same archive
    if args.kind == "function":
        build_function(args.out)
    else:
        build_layer(args.out, args.architecture)


if __name__ == "__main__":
    main()
