"""What `mailprobe check --lab` prints for a person, against the real lab: a clean lab fits on
one screen within the terminal's width on every flavour, and a broken one lists each root cause
once (one entry per expired certificate, one for the legacy protocols, swaks and the message
probes explained by the certificate rather than listed again)."""

from __future__ import annotations

import re

import pytest

from probes import cli

pytestmark = pytest.mark.lab
FLAVOURED = True  # the clean-lab test runs on every lab flavour (tests/lab/conftest.py)

BROKEN = """\
domain: broken.test
tls:
  min_version: TLSv1
  certificate: expired
"""


def test_a_clean_lab_fits_on_one_screen(flavour, flavoured, tmp_path, capsys, monkeypatch):
    flavoured()
    monkeypatch.setenv("COLUMNS", "80")
    argv = ["check", "--lab", "--lab-flavour", flavour, "--no-history"]
    assert cli.main([*argv, "--output", str(tmp_path / "out")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "mailprobe check of example.test: PASS: nothing to fix"
    assert len(lines) <= 40, "\n".join(lines)
    assert max(map(len, lines)) <= 80, "\n".join(lines)
    assert re.fullmatch(
        r"\d+ info findings not shown: -v shows them \(and report\.json\)", lines[-1]
    )
    # the report file is the whole record: the info findings are there
    whole = (tmp_path / "out" / "report.txt").read_text()
    assert "CERT_OK [smtp.mx mx.example.test:25]" in whole


def test_a_broken_lab_lists_each_root_cause_once(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    spec = tmp_path / "broken.yaml"
    spec.write_text(BROKEN)
    argv = ["check", "--lab", "--lab-spec", str(spec), "--no-history"]
    assert cli.main([*argv, "--output", str(tmp_path / "out")]) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert max(map(len, lines)) <= 100, out
    entries = [line for line in lines if re.match(r"(FAIL|WARN)  ", line)]
    codes = [line.split()[1] for line in entries]
    # one certificate per lab host (mx, outbound, mailbox), each expired: three entries
    assert codes.count("CERT_EXPIRED") == 3, out
    assert codes.count("TLS_LEGACY_PROTOCOL") == 1, out
    assert "SWAKS_STAGE_FAILED" not in codes, out  # explained by the certificate
    # the lab publishes MTA-STS enforce: the MX certificate's expiry also explains
    # MTA_STS_CERT_INVALID (https.mta_sts), listed first (probes in id order)
    assert re.search(r"explains: (?:[^\n]*, )?SWAKS_STAGE_FAILED mx\.broken\.test:", out), out
    assert "MTA_STS_CERT_INVALID" not in codes, out  # explained by the certificate too
    assert "Could not check" not in out  # the message probes' TLS errors are explained too
    assert "on: mx.broken.test:25, :465, :587" in out
