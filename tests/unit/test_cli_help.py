"""The command line's self-description: --version, help for every option, installed formats."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from probes import cli


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
