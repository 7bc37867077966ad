"""Where Terraform would find the hashicorp/aws provider on this machine, worked out without running Terraform.

Terraform's conventions, as its CLI configuration documentation and its source describe them: the CLI configuration
files it reads (``TF_CLI_CONFIG_FILE``; otherwise ``~/.terraformrc`` and ``~/.terraform.d/*.tfrc``, or
``%APPDATA%/terraform.rc`` and ``%APPDATA%/terraform.d`` on Windows), the ``filesystem_mirror`` paths of their
``provider_installation`` block, the implied local mirror directories used without such a block, the plugin cache
(``TF_PLUGIN_CACHE_DIR`` or ``plugin_cache_dir``), and the two layouts of a filesystem mirror. The project's own
override, ``TF_PROVIDER_MIRROR``, comes before all of them.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROVIDER_SOURCE = "registry.terraform.io/hashicorp/aws"
PROVIDER_TYPE = PROVIDER_SOURCE.rsplit("/", 1)[1]
# The root module's constraint, which every module and example accepts (a test checks it): the mirrors are searched for it.
PROVIDER_VERSIONS = "~> 5.100.0"
MIRROR_VARIABLE = "TF_PROVIDER_MIRROR"


class TerraformMisconfigured(Exception):
    """A setting names something that is not there or cannot be read: the tests fail wherever they run."""


# --- Provider versions -----------------------------------------------------------------------------------------------

_CLAUSE = re.compile(r"\s*(~>|>=|<=|!=|=|>|<)?\s*v?(\d+(?:\.\d+){0,2})\s*")


def _release(version: str) -> tuple[int, int, int] | None:
    """The numbers of a release version; None for a pre-release or anything else, which constraints never select."""
    match = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)", version)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def version_allowed(version: str, constraint: str) -> bool:
    """Whether a provider version meets a Terraform version constraint such as ``~> 5.100.0`` or ``>= 5.1, < 6``."""
    candidate = _release(version)
    if candidate is None:
        return False
    for clause in constraint.split(","):
        match = _CLAUSE.fullmatch(clause)
        if not match:
            raise ValueError(f"unsupported version constraint {clause.strip()!r} in {constraint!r}")
        operator, numbers = match[1] or "=", [int(part) for part in match[2].split(".")]
        bound = tuple(numbers + [0] * (3 - len(numbers)))
        if operator == "~>":
            # The rightmost number given may grow; the one before it is the last that must stay.
            kept = numbers[:-1] if len(numbers) > 1 else numbers[:1]
            upper = tuple([*kept[:-1], kept[-1] + 1] + [0] * (3 - len(kept)))
            allowed = bound <= candidate < upper
        else:
            allowed = {
                "=": candidate == bound,
                "!=": candidate != bound,
                ">": candidate > bound,
                ">=": candidate >= bound,
                "<": candidate < bound,
                "<=": candidate <= bound,
            }[operator]
        if not allowed:
            return False
    return True


def provider_versions_in(mirror: pathlib.Path, platform_name: str) -> list[str]:
    """The provider's versions for a platform in a mirror, in either layout Terraform reads from a filesystem mirror:
    unpacked (``VERSION/PLATFORM/terraform-provider-aws*``, also a plugin cache's layout) or packed (a zip per version).
    """
    provider_dir = mirror.joinpath(*PROVIDER_SOURCE.split("/"))
    packed = re.compile(rf"terraform-provider-{PROVIDER_TYPE}_(.+)_{re.escape(platform_name)}\.zip")
    versions = set()
    try:
        for entry in provider_dir.iterdir():
            if entry.is_dir() and any((entry / platform_name).glob(f"terraform-provider-{PROVIDER_TYPE}*")):
                versions.add(entry.name)
            elif match := packed.fullmatch(entry.name):
                versions.add(match[1])
    except OSError:
        return []
    return sorted(versions)


def newest_allowed_version(mirror: pathlib.Path, platform_name: str, constraint: str = PROVIDER_VERSIONS) -> str | None:
    allowed = [
        version for version in provider_versions_in(mirror, platform_name) if version_allowed(version, constraint)
    ]
    return max(allowed, key=lambda version: _release(version) or (0, 0, 0), default=None)


# --- The Terraform CLI configuration ---------------------------------------------------------------------------------


class CliConfigError(TerraformMisconfigured):
    """A CLI configuration file Terraform would read but that is not valid."""


@dataclass
class HclObject:
    """An HCL 1 object (a file, block or ``{...}`` value) as Terraform's CLI configuration reader sees it: named items in
    order, a name possibly repeated, a block's labels being nested objects."""

    items: list[tuple[str, Any]] = field(default_factory=list)

    def all(self, name: str) -> list[Any]:
        """Every value of a name: repeated blocks, and a JSON list of objects, each count as one."""
        found: list[Any] = []
        for key, value in self.items:
            if key != name:
                continue
            if isinstance(value, list) and value and all(isinstance(item, HclObject) for item in value):
                found.extend(value)
            else:
                found.append(value)
        return found

    def first(self, name: str) -> Any:
        values = self.all(name)
        return values[0] if values else None


_TOKENS = re.compile(
    r"""(?P<skip>[ \t\r\n]+|\#[^\n]*|//[^\n]*|/\*.*?\*/)
      | (?P<heredoc><<-?(?P<marker>[A-Za-z_][A-Za-z0-9_]*)[ \t]*\r?\n)
      | (?P<string>"(?:[^"\\\n]|\\.)*")
      | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
      | (?P<word>[A-Za-z_][A-Za-z0-9_.\-]*)
      | (?P<punct>[{}\[\]=,:])""",
    re.VERBOSE | re.DOTALL,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


def _unquote(token: str) -> str:
    return re.sub(
        r"\\(u[0-9a-fA-F]{4}|.)",
        lambda m: chr(int(m[1][1:], 16)) if len(m[1]) == 5 else _ESCAPES.get(m[1], m[1]),
        token[1:-1],
    )


class _HclReader:
    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self.tokens = list(self._tokenize(text))
        self.position = 0

    def _error(self, problem: str, line: int) -> CliConfigError:
        return CliConfigError(f"{self.source}, line {line}: {problem}")

    def _tokenize(self, text: str) -> Iterator[tuple[str, Any, int]]:
        index, line = 0, 1
        while index < len(text):
            match = _TOKENS.match(text, index)
            if not match:
                raise self._error(f"unexpected {text[index]!r}", line)
            kind = "string" if match["heredoc"] else match.lastgroup or "skip"
            value: Any = match[0]
            end = match.end()
            if match["heredoc"]:
                closing = re.compile(rf"^[ \t]*{re.escape(match['marker'])}[ \t]*$", re.MULTILINE)
                closed = closing.search(text, end)
                if not closed:
                    raise self._error(f"heredoc {match['marker']} is never closed", line)
                value, end = text[end : closed.start()].rstrip("\r\n"), closed.end()
            elif kind == "string":
                value = _unquote(value)
            elif kind == "number":
                value = float(value) if re.search(r"[.eE]", value) else int(value)
            if kind != "skip":
                yield kind, value, line
            line += text.count("\n", index, end)
            index = end

    def _peek(self) -> tuple[str, Any, int]:
        return (
            self.tokens[self.position]
            if self.position < len(self.tokens)
            else ("end", None, self.tokens[-1][2] if self.tokens else 1)
        )

    def _take(self) -> tuple[str, Any, int]:
        token = self._peek()
        self.position += 1
        return token

    def _is(self, punct: str) -> bool:
        kind, value, _ = self._peek()
        return kind == "punct" and value == punct

    def body(self, closing: str | None = None) -> HclObject:
        result = HclObject()
        while True:
            kind, value, line = self._peek()
            if closing and self._is(closing):
                self._take()
                return result
            if kind == "end":
                if closing:
                    raise self._error(f"missing {closing!r}", line)
                return result
            if kind not in ("word", "string"):
                raise self._error(f"expected a name, found {value!r}", line)
            self._take()
            if self._is("=") or self._is(":"):
                self._take()
                result.items.append((value, self.value()))
            else:
                result.items.append((value, self._block(value)))
            if self._is(","):
                self._take()

    def _block(self, name: str) -> HclObject:
        """A block after its name: its labels, then its body; each label nests the body one level deeper."""
        labels = []
        while self._peek()[0] in ("word", "string"):
            labels.append(self._take()[1])
        if not self._is("{"):
            raise self._error(f"expected '=' or a block after {name!r}, found {self._peek()[1]!r}", self._peek()[2])
        self._take()
        block = self.body("}")
        for label in reversed(labels):
            block = HclObject([(label, block)])
        return block

    def value(self) -> Any:
        kind, value, line = self._take()
        if kind in ("string", "number"):
            return value
        if kind == "word" and value in ("true", "false"):
            return value == "true"
        if kind == "punct" and value == "{":
            return self.body("}")
        if kind == "punct" and value == "[":
            items = []
            while not self._is("]"):
                if self._peek()[0] == "end":
                    raise self._error("missing ']'", line)
                items.append(self.value())
                if self._is(","):
                    self._take()
                elif not self._is("]"):
                    raise self._error(f"expected ',' or ']', found {self._peek()[1]!r}", self._peek()[2])
            self._take()
            return items
        raise self._error(f"expected a value, found {value!r}", line)


def _from_json(value: Any) -> Any:
    if isinstance(value, dict):
        return HclObject([(key, _from_json(item)) for key, item in value.items()])
    if isinstance(value, list):
        return [_from_json(item) for item in value]
    return value


def parse_cli_config(text: str, source: str) -> HclObject:
    """A CLI configuration file's content; Terraform's reader takes JSON as well as HCL's native syntax."""
    if text.lstrip().startswith("{"):
        try:
            parsed = _from_json(json.loads(text))
        except json.JSONDecodeError as error:
            raise CliConfigError(f"{source}, line {error.lineno}: {error.msg}") from None
        if not isinstance(parsed, HclObject):
            raise CliConfigError(f"{source}: the JSON must be an object")
        return parsed
    reader = _HclReader(text, source)
    return reader.body()


def expand_env(text: str, env: Mapping[str, str]) -> str:
    """``$NAME`` and ``${NAME}`` replaced as Go's os.ExpandEnv does for plugin_cache_dir: unset names become empty."""
    return re.sub(r"\$(?:\{([^}]*)\}|([A-Za-z0-9_]+))", lambda m: env.get(m[1] if m[1] is not None else m[2], ""), text)


def provider_pattern_matches(pattern: str, provider: str = PROVIDER_SOURCE) -> bool:
    """Whether an include/exclude pattern of a provider installation method (``hashicorp/*``, ``*/*``,
    ``registry.terraform.io/hashicorp/aws``...) names the provider."""
    parts = pattern.strip().lower().split("/")
    if len(parts) == 2:
        parts.insert(0, "registry.terraform.io")
    if len(parts) != 3 or not all(parts):
        raise CliConfigError(f"invalid provider pattern {pattern!r}: expected [HOSTNAME/]NAMESPACE/TYPE")
    return all(wanted in ("*", actual) for wanted, actual in zip(parts, provider.lower().split("/"), strict=True))


@dataclass(frozen=True)
class FilesystemMirror:
    path: pathlib.Path
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def serves(self, provider: str = PROVIDER_SOURCE) -> bool:
        included = not self.include or any(provider_pattern_matches(p, provider) for p in self.include)
        return included and not any(provider_pattern_matches(p, provider) for p in self.exclude)


@dataclass(frozen=True)
class CliConfig:
    """What of the CLI configuration bears on where a provider is found."""

    files: tuple[pathlib.Path, ...] = ()
    # None when no provider_installation block: Terraform then uses its implied local mirrors and the registry.
    installation_file: pathlib.Path | None = None
    filesystem_mirrors: tuple[FilesystemMirror, ...] = ()
    plugin_cache_dir: pathlib.Path | None = None
    plugin_cache_origin: str = ""
    notes: tuple[str, ...] = ()


def _strings(value: Any, what: str, source: pathlib.Path) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise CliConfigError(f"{source}: {what} must be a list of strings, not {value!r}")
    return tuple(value)


def home_dir(env: Mapping[str, str]) -> pathlib.Path:
    return pathlib.Path(env["HOME"]) if env.get("HOME") else pathlib.Path.home()


def cli_config_dir(env: Mapping[str, str], system: str) -> pathlib.Path | None:
    """Terraform's per-user directory: ``~/.terraform.d``, or ``%APPDATA%/terraform.d`` on Windows."""
    if system == "Windows":
        return pathlib.Path(env["APPDATA"], "terraform.d") if env.get("APPDATA") else None
    return home_dir(env) / ".terraform.d"


def cli_config_files(env: Mapping[str, str], system: str) -> tuple[list[pathlib.Path], list[str]]:
    """The CLI configuration files Terraform reads, in its order, and notes about files named but missing."""
    override = env.get("TF_CLI_CONFIG_FILE") or env.get("TERRAFORM_CONFIG")
    if override:
        # Terraform only warns about a named file that is missing, and then reads no other file.
        path = pathlib.Path(override)
        if path.exists():
            return [path], []
        variable = "TF_CLI_CONFIG_FILE" if env.get("TF_CLI_CONFIG_FILE") else "TERRAFORM_CONFIG"
        return [], [f"{variable} names {path}, which does not exist"]
    files = []
    if system == "Windows":
        main = pathlib.Path(env["APPDATA"], "terraform.rc") if env.get("APPDATA") else None
    else:
        main = home_dir(env) / ".terraformrc"
    if main and main.is_file():
        files.append(main)
    config_dir = cli_config_dir(env, system)
    if config_dir and config_dir.is_dir():
        files.extend(
            sorted(p for p in config_dir.iterdir() if p.is_file() and p.name.endswith((".tfrc", ".tfrc.json")))
        )
    return files, []


def load_cli_config(env: Mapping[str, str], system: str, cwd: pathlib.Path) -> CliConfig:
    """The CLI configuration merged as Terraform merges it: the first provider_installation block and the first
    plugin_cache_dir, which TF_PLUGIN_CACHE_DIR overrides."""
    files, notes = cli_config_files(env, system)
    installation_file: pathlib.Path | None = None
    mirrors: list[FilesystemMirror] = []
    cache_dir, cache_origin = None, ""
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise CliConfigError(f"cannot read the Terraform CLI configuration {path}: {error}") from None
        config = parse_cli_config(text, str(path))
        installations = config.all("provider_installation")
        if installations and installation_file is None:
            installation_file = path
            if not isinstance(installations[0], HclObject):
                raise CliConfigError(f"{path}: provider_installation must be a block")
            for method in installations[0].all("filesystem_mirror"):
                mirror_path = method.first("path") if isinstance(method, HclObject) else None
                if not isinstance(mirror_path, str) or not mirror_path:
                    raise CliConfigError(f"{path}: a filesystem_mirror block needs a path")
                mirrors.append(
                    FilesystemMirror(
                        cwd / mirror_path,
                        _strings(method.first("include"), "include", path),
                        _strings(method.first("exclude"), "exclude", path),
                    )
                )
        configured_cache = config.first("plugin_cache_dir")
        if configured_cache and cache_dir is None:
            if not isinstance(configured_cache, str):
                raise CliConfigError(f"{path}: plugin_cache_dir must be a string, not {configured_cache!r}")
            cache_dir, cache_origin = cwd / expand_env(configured_cache, env), f"plugin_cache_dir in {path}"
    if env.get("TF_PLUGIN_CACHE_DIR"):
        cache_dir, cache_origin = cwd / env["TF_PLUGIN_CACHE_DIR"], "TF_PLUGIN_CACHE_DIR"
    return CliConfig(tuple(files), installation_file, tuple(mirrors), cache_dir, cache_origin, tuple(notes))


def implied_mirror_dirs(env: Mapping[str, str], system: str) -> list[pathlib.Path]:
    """The local directories Terraform searches when the CLI configuration has no provider_installation block."""
    home = home_dir(env)
    config_dir = cli_config_dir(env, system)
    dirs = [config_dir / "plugins"] if config_dir else []
    if system == "Windows":
        if env.get("APPDATA"):
            dirs.append(pathlib.Path(env["APPDATA"], "HashiCorp", "Terraform", "plugins"))
    elif system == "Darwin":
        application_support = "Library/Application Support/io.terraform/plugins"
        dirs += [home / application_support, pathlib.Path("/", application_support)]
    else:
        data_home = pathlib.Path(env["XDG_DATA_HOME"]) if env.get("XDG_DATA_HOME") else home / ".local" / "share"
        data_dirs = [
            pathlib.Path(d) for d in (env.get("XDG_DATA_DIRS") or "/usr/local/share/:/usr/share/").split(":") if d
        ]
        dirs += [d / "terraform" / "plugins" for d in (data_home, *data_dirs)]
    return dirs


# --- Finding the provider --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProviderMirror:
    """A directory that Terraform can use as a filesystem mirror holding an accepted version of the provider."""

    path: pathlib.Path
    version: str
    origin: str


@dataclass(frozen=True)
class LocalSearch:
    found: ProviderMirror | None
    looked_in: tuple[str, ...]
    notes: tuple[str, ...] = ()


def _display(path: pathlib.Path, env: Mapping[str, str]) -> str:
    home = str(home_dir(env))
    text = str(path)
    return (
        "~" + text[len(home) :] if home not in ("", "/") and (text == home or text.startswith(home + os.sep)) else text
    )


def expected_layout(platform_name: str) -> str:
    return (
        f"DIR/{PROVIDER_SOURCE}/VERSION/{platform_name}/terraform-provider-{PROVIDER_TYPE}_* or "
        f"DIR/{PROVIDER_SOURCE}/terraform-provider-{PROVIDER_TYPE}_VERSION_{platform_name}.zip"
    )


def _named_mirror(paths: list[pathlib.Path], platform_name: str, cwd: pathlib.Path) -> ProviderMirror:
    """The first of the mirrors the project's own variable names that holds the provider; naming none that does is an error."""
    for path in paths:
        if version := newest_allowed_version(cwd / path, platform_name):
            return ProviderMirror(cwd / path, version, MIRROR_VARIABLE)
    raise TerraformMisconfigured(
        f"{MIRROR_VARIABLE} names {os.pathsep.join(map(str, paths))}, but no {PROVIDER_SOURCE} {PROVIDER_VERSIONS} "
        f"for {platform_name} is there (expected {expected_layout(platform_name)})"
    )


def search_local_mirrors(env: Mapping[str, str], system: str, platform_name: str, cwd: pathlib.Path) -> LocalSearch:
    """The first local directory, in Terraform's order of preference, that holds the provider (see the module's doc)."""
    override = [pathlib.Path(p).expanduser() for p in env.get(MIRROR_VARIABLE, "").split(os.pathsep) if p.strip()]
    if override:
        return LocalSearch(_named_mirror(override, platform_name, cwd), ())
    config = load_cli_config(env, system, cwd)
    places: list[tuple[str, list[pathlib.Path]]] = []
    if config.installation_file:
        places.append(
            (
                f"the filesystem mirrors of {config.installation_file}",
                [m.path for m in config.filesystem_mirrors if m.serves()],
            )
        )
    else:
        places.append(("Terraform's implied local mirrors", implied_mirror_dirs(env, system)))
    if config.plugin_cache_dir:
        places.append((config.plugin_cache_origin, [config.plugin_cache_dir]))

    looked_in: list[str] = []
    for origin, paths in places:
        for path in paths:
            if version := newest_allowed_version(path, platform_name):
                return LocalSearch(ProviderMirror(path, version, origin), tuple(looked_in), config.notes)
        shown = ", ".join(_display(path, env) for path in paths) or f"none serves {PROVIDER_SOURCE}"
        looked_in.append(f"{origin} ({shown})")
    if not config.files and not config.notes:
        looked_in.append("no Terraform CLI configuration file")
    if not config.plugin_cache_dir:
        looked_in.append("no plugin cache (TF_PLUGIN_CACHE_DIR, plugin_cache_dir)")
    return LocalSearch(None, tuple(looked_in), config.notes)


def constraints_declared(
    root: pathlib.Path = ROOT, files: Sequence[str] = ("*.tf", "modules/*/*.tf", "examples/*/*.tf")
) -> dict[str, str]:
    """The aws provider's version constraint of each .tf file that declares one."""
    requirement = re.compile(
        r'source\s*=\s*"(?:registry\.terraform\.io/)?hashicorp/aws"\s*\n\s*version\s*=\s*"([^"]*)"'
    )
    declared = {}
    for pattern in files:
        for path in sorted(root.glob(pattern)):
            for match in requirement.finditer(path.read_text()):
                declared[str(path.relative_to(root))] = match[1]
    return declared
