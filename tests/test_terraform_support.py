"""How the Terraform tests find the aws provider and Python 3.13, checked against fake CLI configurations, mirrors,
environments and stand-in commands: no Terraform, no network."""

from __future__ import annotations

import json
import os
import pathlib
import stat
import sys

import pytest

from python_support import find_python
from terraform_discovery import (
    PROVIDER_VERSIONS,
    CliConfigError,
    TerraformMisconfigured,
    cli_config_files,
    constraints_declared,
    implied_mirror_dirs,
    load_cli_config,
    newest_allowed_version,
    parse_cli_config,
    provider_pattern_matches,
    provider_versions_in,
    search_local_mirrors,
    version_allowed,
)

from terraform_support import TerraformUnavailable, find_provider, skip_or_fail

PLATFORM = "linux_amd64"
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="the stand-in commands are shell scripts")


def unpacked(mirror: pathlib.Path, version: str, platform_name: str = PLATFORM) -> pathlib.Path:
    target = mirror / "registry.terraform.io/hashicorp/aws" / version / platform_name
    target.mkdir(parents=True)
    (target / f"terraform-provider-aws_v{version}_x5").write_text("")
    return mirror


def packed(mirror: pathlib.Path, version: str, platform_name: str = PLATFORM) -> pathlib.Path:
    target = mirror / "registry.terraform.io/hashicorp/aws"
    target.mkdir(parents=True, exist_ok=True)
    (target / f"terraform-provider-aws_{version}_{platform_name}.zip").write_bytes(b"")
    return mirror


def script(path: pathlib.Path, body: str) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def home(tmp_path: pathlib.Path) -> pathlib.Path:
    folder = tmp_path / "home"
    folder.mkdir()
    return folder


def linux_env(home: pathlib.Path, **extra: str) -> dict[str, str]:
    """A user with nothing configured: every XDG folder inside the fake home, so no real machine folder is looked at."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_DATA_DIRS": str(home / "system-data"),
        **extra,
    }


# --- Versions and layouts ---


@pytest.mark.parametrize(
    ("version", "constraint", "allowed"),
    [
        ("5.100.0", "~> 5.100.0", True),
        ("5.100.7", "~> 5.100.0", True),
        ("5.101.0", "~> 5.100.0", False),
        ("5.99.9", "~> 5.100.0", False),
        ("5.101.0", "~> 5.100", True),
        ("6.0.0", "~> 5.100", False),
        ("5.3.0", ">= 5.1, < 6", True),
        ("6.0.0", ">= 5.1, < 6", False),
        ("5.100.0", "5.100.0", True),
        ("5.100.0-beta1", "~> 5.100.0", False),
    ],
)
def test_version_constraints_select_as_terraform_does(version: str, constraint: str, allowed: bool) -> None:
    assert version_allowed(version, constraint) is allowed


def test_an_unsupported_constraint_is_named() -> None:
    with pytest.raises(ValueError, match="unsupported version constraint 'latest'"):
        version_allowed("5.100.0", "latest")


def test_both_mirror_layouts_are_read_for_the_platform_terraform_runs_on(tmp_path: pathlib.Path) -> None:
    mirror = unpacked(tmp_path, "5.100.0")
    packed(mirror, "5.100.2")
    unpacked(mirror, "5.100.9", "darwin_arm64")
    packed(mirror, "5.101.0")
    assert provider_versions_in(mirror, PLATFORM) == ["5.100.0", "5.100.2", "5.101.0"]
    assert newest_allowed_version(mirror, PLATFORM) == "5.100.2"
    assert newest_allowed_version(mirror, "windows_amd64") is None
    assert newest_allowed_version(tmp_path / "missing", PLATFORM) is None


def test_an_empty_version_folder_holds_no_provider(tmp_path: pathlib.Path) -> None:
    (tmp_path / "registry.terraform.io/hashicorp/aws/5.100.0" / PLATFORM).mkdir(parents=True)
    assert provider_versions_in(tmp_path, PLATFORM) == []


def test_the_searched_constraint_is_the_root_s_own_and_every_module_accepts_it() -> None:
    declared = constraints_declared()
    assert declared["main.tf"] == PROVIDER_VERSIONS
    assert {"modules/responder/versions.tf", "modules/member-role/versions.tf"} <= declared.keys()
    # The oldest and a late release of the series the root pins: every module and example takes both.
    refusing = {
        path: constraint
        for path, constraint in declared.items()
        if not all(version_allowed(version, constraint) for version in ("5.100.0", "5.100.999"))
    }
    assert refusing == {}


# --- The CLI configuration ---


def test_the_native_syntax_is_read_with_comments_labels_lists_and_heredocs() -> None:
    config = parse_cli_config(
        "# a comment\n"
        'plugin_cache_dir = "$HOME/.terraform.d/plugin-cache" // another\n'
        "disable_checkpoint = true\n"
        "/* a block\n comment */\n"
        'credentials "app.terraform.io" {\n  token = "x\\"y"\n}\n'
        "provider_installation {\n"
        '  filesystem_mirror {\n    path    = "/srv/mirror"\n    include = ["hashicorp/*", "example.com/*/*",]\n  }\n'
        '  direct {\n    exclude = ["hashicorp/aws"]\n  }\n'
        "}\n"
        'credentials_helper "example" {\n  args = [<<EOT\n--flag\nEOT\n  ]\n}\n',
        "example.tfrc",
    )
    assert config.first("plugin_cache_dir") == "$HOME/.terraform.d/plugin-cache"
    assert config.first("disable_checkpoint") is True
    assert config.first("credentials").first("app.terraform.io").first("token") == 'x"y'
    installation = config.first("provider_installation")
    assert installation.first("filesystem_mirror").first("include") == ["hashicorp/*", "example.com/*/*"]
    assert installation.first("direct").first("exclude") == ["hashicorp/aws"]
    assert config.first("credentials_helper").first("example").first("args") == ["--flag"]


def test_the_json_syntax_is_read() -> None:
    config = parse_cli_config(
        json.dumps(
            {"provider_installation": [{"filesystem_mirror": [{"path": "/a"}, {"path": "/b"}], "direct": [{}]}]}
        ),
        "example.tfrc.json",
    )
    assert [m.first("path") for m in config.first("provider_installation").all("filesystem_mirror")] == ["/a", "/b"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('provider_installation {\n  filesystem_mirror {\n    path = "/x"\n', "example.tfrc, line 3: missing '}'"),
        ("plugin_cache_dir\n", "example.tfrc, line 1: expected '=' or a block after 'plugin_cache_dir'"),
        ('a = "b"\n\nc = [1 2]\n', "example.tfrc, line 3: expected ',' or ']', found 2"),
        ('a = "b"\n@\n', "example.tfrc, line 2: unexpected '@'"),
        ('{"a": }', "example.tfrc, line 1: Expecting value"),
    ],
)
def test_a_malformed_configuration_names_its_file_line_and_problem(text: str, problem: str) -> None:
    with pytest.raises(CliConfigError, match="^" + problem.replace("[", r"\[").replace("]", r"\]")):
        parse_cli_config(text, "example.tfrc")


def test_a_named_cli_configuration_that_is_missing_is_noted_and_nothing_else_is_read(home: pathlib.Path) -> None:
    (home / ".terraformrc").write_text('plugin_cache_dir = "/ignored"\n')
    missing = home / "missing.tfrc"
    assert cli_config_files(linux_env(home, TF_CLI_CONFIG_FILE=str(missing)), "Linux") == (
        [],
        [f"TF_CLI_CONFIG_FILE names {missing}, which does not exist"],
    )


def test_without_an_override_the_home_file_and_the_config_folder_are_read_in_order(home: pathlib.Path) -> None:
    (home / ".terraformrc").write_text("")
    (home / ".terraform.d").mkdir()
    for name in ("b.tfrc", "a.tfrc.json", "notes.txt"):
        (home / ".terraform.d" / name).write_text("{}")
    files, notes = cli_config_files(linux_env(home), "Linux")
    assert files == [home / ".terraformrc", home / ".terraform.d/a.tfrc.json", home / ".terraform.d/b.tfrc"]
    assert notes == []


def test_windows_reads_terraform_rc_in_appdata(tmp_path: pathlib.Path) -> None:
    (tmp_path / "terraform.rc").write_text("")
    assert cli_config_files({"APPDATA": str(tmp_path)}, "Windows") == ([tmp_path / "terraform.rc"], [])


def test_the_first_installation_block_and_cache_dir_count_and_the_cache_variable_wins(
    home: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    config_file = home / "custom.tfrc"
    config_file.write_text(
        'plugin_cache_dir = "${HOME}/cache"\n'
        "provider_installation {\n"
        '  filesystem_mirror {\n    path = "relative/mirror"\n    exclude = ["hashicorp/aws"]\n  }\n'
        '  filesystem_mirror {\n    path = "/srv/all"\n  }\n'
        "}\n"
    )
    env = linux_env(home, TF_CLI_CONFIG_FILE=str(config_file))
    config = load_cli_config(env, "Linux", tmp_path)
    assert config.installation_file == config_file
    assert [m.path for m in config.filesystem_mirrors] == [tmp_path / "relative/mirror", pathlib.Path("/srv/all")]
    assert [m.serves() for m in config.filesystem_mirrors] == [False, True]
    assert (config.plugin_cache_dir, config.plugin_cache_origin) == (
        home / "cache",
        f"plugin_cache_dir in {config_file}",
    )
    overridden = load_cli_config({**env, "TF_PLUGIN_CACHE_DIR": "/var/cache/tf"}, "Linux", tmp_path)
    assert (overridden.plugin_cache_dir, overridden.plugin_cache_origin) == (
        pathlib.Path("/var/cache/tf"),
        "TF_PLUGIN_CACHE_DIR",
    )


def test_a_filesystem_mirror_without_a_path_is_an_error(home: pathlib.Path, tmp_path: pathlib.Path) -> None:
    config_file = home / "custom.tfrc"
    config_file.write_text("provider_installation {\n  filesystem_mirror {\n  }\n}\n")
    with pytest.raises(CliConfigError, match=f"{config_file}: a filesystem_mirror block needs a path"):
        load_cli_config(linux_env(home, TF_CLI_CONFIG_FILE=str(config_file)), "Linux", tmp_path)


@pytest.mark.parametrize(
    ("pattern", "matches"),
    [
        ("hashicorp/aws", True),
        ("hashicorp/*", True),
        ("*/*", True),
        ("registry.terraform.io/*/*", True),
        ("REGISTRY.terraform.io/HashiCorp/AWS", True),
        ("example.com/*/*", False),
        ("hashicorp/google", False),
    ],
)
def test_include_and_exclude_patterns_match_as_terraform_does(pattern: str, matches: bool) -> None:
    assert provider_pattern_matches(pattern) is matches


def test_a_malformed_pattern_is_named() -> None:
    with pytest.raises(CliConfigError, match="invalid provider pattern 'aws'"):
        provider_pattern_matches("aws")


def test_implied_mirrors_follow_each_platforms_conventions(home: pathlib.Path) -> None:
    assert implied_mirror_dirs({"HOME": str(home)}, "Linux") == [
        home / ".terraform.d/plugins",
        home / ".local/share/terraform/plugins",
        pathlib.Path("/usr/local/share/terraform/plugins"),
        pathlib.Path("/usr/share/terraform/plugins"),
    ]
    assert implied_mirror_dirs({"HOME": str(home), "XDG_DATA_HOME": "/x", "XDG_DATA_DIRS": "/y:/z"}, "Linux") == [
        home / ".terraform.d/plugins",
        pathlib.Path("/x/terraform/plugins"),
        pathlib.Path("/y/terraform/plugins"),
        pathlib.Path("/z/terraform/plugins"),
    ]
    assert implied_mirror_dirs({"HOME": str(home)}, "Darwin") == [
        home / ".terraform.d/plugins",
        home / "Library/Application Support/io.terraform/plugins",
        pathlib.Path("/Library/Application Support/io.terraform/plugins"),
    ]
    assert implied_mirror_dirs({"APPDATA": "C:/Users/u/AppData/Roaming"}, "Windows") == [
        pathlib.Path("C:/Users/u/AppData/Roaming/terraform.d/plugins"),
        pathlib.Path("C:/Users/u/AppData/Roaming/HashiCorp/Terraform/plugins"),
    ]


# --- The search ---


def test_the_project_override_comes_first_and_may_list_several_mirrors(
    home: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    unpacked(home / ".terraform.d/plugins", "5.100.0")
    wanted = packed(tmp_path / "second", "5.100.1")
    env = linux_env(home, TF_PROVIDER_MIRROR=os.pathsep.join([str(tmp_path / "empty"), str(wanted)]))
    found = search_local_mirrors(env, "Linux", PLATFORM, tmp_path).found
    assert found is not None and (found.path, found.version, found.origin) == (wanted, "5.100.1", "TF_PROVIDER_MIRROR")


def test_an_override_without_the_provider_is_an_error_naming_what_is_expected(
    home: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    unpacked(tmp_path / "old", "5.99.0")
    with pytest.raises(TerraformMisconfigured) as raised:
        search_local_mirrors(linux_env(home, TF_PROVIDER_MIRROR=str(tmp_path / "old")), "Linux", PLATFORM, tmp_path)
    assert str(raised.value) == (
        f"TF_PROVIDER_MIRROR names {tmp_path / 'old'}, but no registry.terraform.io/hashicorp/aws ~> 5.100.0 for {PLATFORM} is there "
        f"(expected DIR/registry.terraform.io/hashicorp/aws/VERSION/{PLATFORM}/terraform-provider-aws_* or "
        f"DIR/registry.terraform.io/hashicorp/aws/terraform-provider-aws_VERSION_{PLATFORM}.zip)"
    )


def test_an_empty_override_counts_as_unset(home: pathlib.Path, tmp_path: pathlib.Path) -> None:
    unpacked(home / ".terraform.d/plugins", "5.100.0")
    found = search_local_mirrors(linux_env(home, TF_PROVIDER_MIRROR=""), "Linux", PLATFORM, tmp_path).found
    assert found is not None and found.origin == "Terraform's implied local mirrors"


def test_a_configured_filesystem_mirror_is_used_and_replaces_the_implied_ones(
    home: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    unpacked(home / ".terraform.d/plugins", "5.100.0")
    mirror = unpacked(tmp_path / "mirror", "5.100.4")
    config_file = home / ".terraformrc"
    config_file.write_text(f'provider_installation {{\n  filesystem_mirror {{\n    path = "{mirror}"\n  }}\n}}\n')
    found = search_local_mirrors(linux_env(home), "Linux", PLATFORM, tmp_path).found
    assert found is not None and (found.path, found.version) == (mirror, "5.100.4")
    assert found.origin == f"the filesystem mirrors of {config_file}"


def test_a_mirror_excluding_the_provider_is_passed_over_for_the_plugin_cache(
    home: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    mirror = unpacked(tmp_path / "mirror", "5.100.4")
    cache = unpacked(tmp_path / "cache", "5.100.3")
    (home / ".terraformrc").write_text(
        f'plugin_cache_dir = "{cache}"\n'
        f'provider_installation {{\n  filesystem_mirror {{\n    path = "{mirror}"\n    include = ["example.com/*/*"]\n  }}\n  direct {{}}\n}}\n'
    )
    found = search_local_mirrors(linux_env(home), "Linux", PLATFORM, tmp_path).found
    assert found is not None and (found.path, found.version) == (cache, "5.100.3")


def test_when_nothing_holds_the_provider_every_place_looked_in_is_named(
    home: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    env = linux_env(home, TF_CLI_CONFIG_FILE=str(home / "missing.tfrc"), TF_PLUGIN_CACHE_DIR=str(tmp_path / "cache"))
    search = search_local_mirrors(env, "Linux", PLATFORM, tmp_path)
    assert search.found is None
    assert search.notes == (f"TF_CLI_CONFIG_FILE names {home / 'missing.tfrc'}, which does not exist",)
    assert search.looked_in == (
        "Terraform's implied local mirrors (~/.terraform.d/plugins, ~/data/terraform/plugins, ~/system-data/terraform/plugins)",
        f"TF_PLUGIN_CACHE_DIR ({tmp_path / 'cache'})",
    )


def test_an_unreadable_configuration_stops_the_search(home: pathlib.Path, tmp_path: pathlib.Path) -> None:
    (home / ".terraformrc").write_text("provider_installation {\n")
    with pytest.raises(CliConfigError, match="terraformrc, line 1: missing '}'"):
        search_local_mirrors(linux_env(home), "Linux", PLATFORM, tmp_path)


# --- Downloading, skipping and failing, with a stand-in for terraform ---


def fake_terraform(folder: pathlib.Path, init: str) -> str:
    return str(
        script(
            folder / "terraform",
            f"""case "$1" in
  version) echo '{{"terraform_version": "1.11.4", "platform": "{PLATFORM}"}}' ;;
  init) {init} ;;
esac
""",
        )
    )


@posix_only
def test_without_a_local_copy_the_provider_is_downloaded_once_into_a_mirror_the_tests_share(
    home: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    installed = f".terraform/providers/registry.terraform.io/hashicorp/aws/5.100.6/{PLATFORM}"
    terraform = fake_terraform(
        tmp_path / "bin",
        f'grep -q "~> 5.100.0" main.tf && mkdir -p {installed} && touch {installed}/terraform-provider-aws_v5.100.6_x5',
    )
    found = find_provider(terraform, linux_env(home), "Linux", tmp_path)
    assert (found.version, found.origin) == ("5.100.6", "downloaded by `terraform init` for this test run")
    assert found.path.name == "providers" and newest_allowed_version(found.path, PLATFORM) == "5.100.6"


@posix_only
def test_an_unreachable_registry_gives_a_reason_naming_what_was_tried_and_terraforms_error(
    home: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    terraform = fake_terraform(
        tmp_path / "bin",
        "printf '\\nError: Failed to query available provider packages\\n\\nCould not retrieve the list: no such host\\n' >&2; exit 1",
    )
    with pytest.raises(TerraformUnavailable) as raised:
        find_provider(terraform, linux_env(home), "Linux", tmp_path)
    reason = str(raised.value)
    assert reason.startswith(
        f"the registry.terraform.io/hashicorp/aws ~> 5.100.0 provider for {PLATFORM} cannot be had: none locally (looked in: "
    )
    assert "Terraform's implied local mirrors (~/.terraform.d/plugins" in reason
    assert "no Terraform CLI configuration file; no plugin cache (TF_PLUGIN_CACHE_DIR, plugin_cache_dir))" in reason
    assert (
        "and `terraform init` could not download it: Failed to query available provider packages: Could not retrieve the list: no such host."
        in reason
    )
    assert reason.endswith(
        "Set TF_PROVIDER_MIRROR to a filesystem mirror that holds it (`terraform providers mirror DIR`, run in this repository "
        "where the registry is reachable, makes one) or name one in the Terraform CLI configuration"
    )


def test_a_missing_provider_skips_and_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    problem = TerraformUnavailable("no provider")
    monkeypatch.setenv("CI", "")
    with pytest.raises(pytest.skip.Exception, match="^no provider$"):
        skip_or_fail(problem)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="^CI must run the Terraform tests: no provider$"):
        skip_or_fail(problem)


def test_a_wrong_setting_fails_even_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.fail.Exception, match="^the Terraform tests cannot run: TF_PROVIDER_MIRROR names /x"):
        skip_or_fail(TerraformMisconfigured("TF_PROVIDER_MIRROR names /x"))


# --- Python 3.13 ---


def fake_python(path: pathlib.Path, version: str) -> pathlib.Path:
    return script(path, f'echo {version}; echo "{path}"\n')


@posix_only
def test_python_is_found_on_path_past_a_shim_of_another_version(tmp_path: pathlib.Path) -> None:
    fake_python(tmp_path / "shims/python3.13", "3.11")
    wanted = fake_python(tmp_path / "bin/python3", "3.13")
    search = find_python("3.13", {"PATH": os.pathsep.join([str(tmp_path / "shims"), str(tmp_path / "bin")])})
    assert search.found == str(wanted)
    assert search.tried == (f"python3.13 on PATH ({tmp_path / 'shims/python3.13'}): is Python 3.11",)


@posix_only
def test_python_is_found_through_pyenvs_own_command(tmp_path: pathlib.Path) -> None:
    prefix = tmp_path / "versions/3.13.5"
    wanted = fake_python(prefix / "bin/python3.13", "3.13")
    script(tmp_path / "bin/pyenv", f'[ "$1 $2" = "prefix 3.13" ] && echo "{prefix}"\n')
    search = find_python("3.13", {"PATH": str(tmp_path / "bin")})
    assert search.found == str(wanted)


@posix_only
def test_python_is_found_through_uv(tmp_path: pathlib.Path) -> None:
    wanted = fake_python(tmp_path / "uv-python/bin/python3.13", "3.13")
    script(tmp_path / "bin/uv", f'[ "$1 $2 $3" = "python find 3.13" ] && echo "{wanted}"\n')
    assert find_python("3.13", {"PATH": str(tmp_path / "bin")}).found == str(wanted)


@posix_only
def test_without_python_every_way_tried_is_named(tmp_path: pathlib.Path) -> None:
    script(tmp_path / "bin/pyenv", "exit 1\n")
    search = find_python("3.13", {"PATH": str(tmp_path / "bin")})
    assert search.found is None
    assert search.tried == (
        "python3.13 on PATH: not there",
        "python3 on PATH: not there",
        "python on PATH: not there",
        "py -3.13: no py launcher",
        "pyenv prefix 3.13: no such version installed",
        "uv python find 3.13: no uv",
    )
