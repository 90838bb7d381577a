"""The command line's self-description: --version, help for every option, installed formats."""

from __future__ import annotations

import argparse
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from probes import cli, registry


def test_version_prints_the_installed_distribution_version(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.build_parser().parse_args(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out == f"mailprobe {metadata.version('mailprobe')}\n"


def test_version_in_a_source_checkout_falls_back_to_pyproject(monkeypatch):
    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", missing)
    with (Path(cli.__file__).resolve().parent.parent / "pyproject.toml").open("rb") as f:
        declared = tomllib.load(f)["project"]["version"]
    assert cli.version() == f"{declared}+source"


def _options(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command path, action) for every argument of every (sub)command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, (*path, name))
        elif not isinstance(action, argparse._HelpAction):
            yield path, action


def test_every_option_of_every_command_has_help():
    seen = list(_options(cli.build_parser()))
    commands = {path for path, _ in seen}
    # the walk reaches the commands registered from cli_*.py too
    assert {("check",), ("run",), ("probes",), ("history",), ("history", "prune")} <= commands
    assert {("diff",), ("lab", "up"), ("lab", "doctor")} <= commands
    missing = [
        f"{' '.join(path)} {'/'.join(a.option_strings) or a.dest}"
        for path, a in seen
        if not (a.help and a.help.strip()) or a.help == argparse.SUPPRESS
    ]
    assert missing == []


def _help(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        cli.build_parser().parse_args(argv)
    assert exc.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # unwrapped


@pytest.mark.parametrize("command", ["check", "run"])
def test_help_lists_every_installed_format(command, capsys):
    text = _help([command, "--help"], capsys)
    installed = sorted(registry.load_renderers())
    assert {"html", "junit", "markdown", "nagios"} <= set(installed)
    assert f"installed: {', '.join(installed)}" in text
    assert "text or json" not in text


def test_contract_says_what_the_cli_does_with_lab_spec_without_lab(capsys):
    contract = (Path(cli.__file__).resolve().parents[1] / "docs" / "contract.md").read_text()
    (row,) = [line for line in contract.splitlines() if line.startswith("| `--lab-spec FILE`")]
    assert "exit 2" in row and "Ignored" not in row
    assert cli.main(["check", "example.test", "--lab-spec", "x.yaml"]) == 2
    assert "--lab-spec goes with --lab" in capsys.readouterr().err


def test_shipped_lab_specs_promise_only_declared_codes():
    """Every finding code named in a comment of scenarios/labs/*.yaml is a declared code, and
    the misconfigured lab no longer promises PTR_MISSING (no probe of `check --lab` looks at
    the client without PTR)."""
    import re

    declared = set(registry.code_catalogue())
    labs = Path(cli.__file__).resolve().parents[1] / "scenarios" / "labs"
    for spec in sorted(labs.glob("*.yaml")):
        comments = " ".join(line.partition("#")[2] for line in spec.read_text().splitlines())
        named = set(re.findall(r"\b[A-Z][A-Z0-9]+(?:_[A-Z0-9]+)+\b", comments))
        assert named <= declared, (spec.name, named - declared)
    assert "PTR_MISSING" not in (labs / "misconfigured.yaml").read_text()
