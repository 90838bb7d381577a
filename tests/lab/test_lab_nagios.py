"""`check --lab --format nagios` with an operator threshold, against a lab whose certificate
expires in 10 days: the threshold turns CERT_EXPIRING_SOON into a fail finding, the plugin
state is CRITICAL (exit 2) and the perfdata carries the days left and the ranges."""

from __future__ import annotations

import re

import pytest

from probes import cli

pytestmark = pytest.mark.lab


def test_certificate_critical_threshold_makes_the_check_critical(tmp_path, capsys):
    spec = tmp_path / "lab.yaml"
    spec.write_text("tls:\n  certificate: expiring-soon\n")
    status = cli.main(
        ["check", "--lab", "--lab-spec", str(spec), "--probe", "smtp.mx", "--format", "nagios",
         "--cert-days-warn", "60:", "--cert-days-crit", "30:", "-q", "--no-history",
         "--output", str(tmp_path / "out")]
    )  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    assert status == 2, lines
    head, _, perf = lines[0].partition(" | ")
    assert head.startswith("MAILPROBE CRITICAL - ") and "CERT_EXPIRING_SOON" in head
    [(days, warn, crit)] = re.findall(r"'cert_days_mx\.[^']+:25'=(-?\d+);([^;]*);([^; ]*)", perf)
    assert 8 <= int(days) <= 10 and (warn, crit) == ("60:", "30:")
    assert any(line.startswith("[FAIL] CERT_EXPIRING_SOON smtp.mx: ") for line in lines[1:])
