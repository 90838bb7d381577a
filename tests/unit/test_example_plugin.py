"""The plug-in guide's worked example (docs/plugins.md), installed as a third party would.

tests/data/example_plugin/ is a distribution of its own. It is pip-installed (offline: no
index, no build isolation, no dependencies) into a fresh venv that sees the project's
packages, and `mailprobe check` runs it in a subprocess against a DNS server and an SMTP server
started here on 127.0.0.0/8. No lab, no network beyond loopback.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import hostile_server as hs
from tiny_dns import TinyDns

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "tests" / "data" / "example_plugin"
DOMAIN = "example.test"
MX_HOST = f"mx.{DOMAIN}"
RUN_S = 120  # a hang guard for each subprocess, not a speed limit


# ----- an SMTP server with STARTTLS on port 25 of a random 127/8 address ----------------------
def smtp_with_starttls(peer: hs.Peer) -> None:
    peer.send(b"220 mx.example.test ESMTP tiny\r\n")
    while True:
        line = peer.recv_line().upper()
        if line.startswith("EHLO"):
            tls = peer.sock is not peer.raw
            offer = b"" if tls else b"250-STARTTLS\r\n"
            peer.send(b"250-mx.example.test hello\r\n" + offer + b"250 SIZE 1000000\r\n")
        elif line == "STARTTLS":
            peer.send(b"220 go ahead\r\n")
            peer.start_tls()
        elif line == "QUIT":
            peer.send(b"221 bye\r\n")
            return
        else:
            peer.send(b"502 not here\r\n")


@pytest.fixture
def smtp_server(tmp_path) -> Iterator[hs.HostileServer]:
    try:
        server = hs.HostileServer(smtp_with_starttls, ports=(25,)).__enter__()
    except PermissionError:
        pytest.skip("binding port 25 on 127/8 needs root (or CAP_NET_BIND_SERVICE)")
    try:
        server.tls, _ca = hs.tls_material(tmp_path, server.host)
        yield server
    finally:
        server.stop()
    assert server.errors == []


# ----- a fresh venv holding the plug-in ---------------------------------------------------------
@pytest.fixture
def plugin_venv(tmp_path) -> Path:
    """A new venv that sees the project's packages (a .pth adds the project venv's
    site-packages as a site directory) with the example plug-in pip-installed into it."""
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    project_site = sysconfig.get_path("purelib")
    Path(purelib, "mailprobe-project.pth").write_text(
        f"import site; site.addsitedir({project_site!r})\n"
    )
    source = tmp_path / "example_plugin"  # a copy: building writes into the source tree
    shutil.copytree(PLUGIN, source)
    offline = ["--no-index", "--no-deps", "--no-build-isolation", "--disable-pip-version-check"]
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", "-q", *offline, str(source)],
        check=True,
        timeout=RUN_S,
        env={**os.environ, "PIP_NO_INPUT": "1"},
    )
    return python


def mailprobe(python: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`mailprobe ARGS` run by the venv's interpreter (the project's console script)."""
    script = Path(sysconfig.get_path("scripts")) / "mailprobe"
    return subprocess.run(
        [python, script, *args],
        capture_output=True,
        text=True,
        timeout=RUN_S,
        cwd=cwd,
        env={**os.environ, "MAILPROBE_HISTORY": str(cwd / "history.sqlite")},
    )


def test_the_example_plugin_runs_through_mailprobe_check(plugin_venv, smtp_server, tmp_path):
    listed = mailprobe(plugin_venv, "probes", "--codes", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert re.search(r"^EXAMPLE_TLS +info .* \[example\.smtp_banner\]$", listed.stdout, re.M)

    records = {(DOMAIN, "MX"): [f"10 {MX_HOST}."], (MX_HOST, "A"): [smtp_server.host]}
    with TinyDns(records) as resolver:
        # The SMTP server must be in place before `mailprobe check` asks its MX.
        run = mailprobe(
            plugin_venv,
            "check",
            DOMAIN,
            "--resolver",
            resolver.address,
            "--probe",
            "example.*",
            "--output",
            str(tmp_path / "out"),
            "--format",
            "json",
            "-q",
            cwd=tmp_path,
        )
    assert run.returncode == 0, run.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    [result] = report["results"]
    assert (result["probe"], result["outcome"]) == ("example.smtp_banner", "COMPLETED")
    found = {f["code"]: f for f in result["findings"]}
    assert set(found) == {"EXAMPLE_BANNER", "EXAMPLE_TLS"}
    subject = f"{MX_HOST}:25"
    assert found["EXAMPLE_BANNER"]["subject"] == subject
    assert found["EXAMPLE_BANNER"]["evidence"]["banner"] == "mx.example.test ESMTP tiny"
    assert found["EXAMPLE_BANNER"]["evidence"]["ehlo_name"] == "mx.example.test"
    assert found["EXAMPLE_TLS"]["evidence"]["version"].startswith("TLSv1.")
    assert (DOMAIN, "MX") in resolver.asked and (MX_HOST, "A") in resolver.asked
    assert "STARTTLS" in smtp_server.received


def test_the_guide_shows_the_example_plugin_as_it_is():
    guide = (REPO / "docs" / "plugins.md").read_text()
    blocks = dict(re.findall(r"```\w+\n# (\S+)\n(.*?)```", guide, re.S))
    for name in ("pyproject.toml", "mailprobe_example/smtp_banner.py"):
        shipped = (PLUGIN / name).read_text()
        # The file's own leading comment line is replaced by the block's file-name line.
        assert name in blocks, f"docs/plugins.md has no ``` block starting '# {name}'"
        assert blocks[name].strip() == _without_header(shipped).strip(), name


def _without_header(text: str) -> str:
    """The file without its leading comment lines (pyproject.toml says where it comes from)."""
    lines = text.splitlines()
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    return "\n".join(lines)
