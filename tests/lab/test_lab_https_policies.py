"""https.mta_sts and https.bimi against the lab's real HTTPS host (the `web` role).

Each code is produced by a lab spec (MtaStsSpec, BimiSpec, TlsSpec fields), on every flavour
MAILPROBE_LAB_FLAVOURS names; the correct lab publishes MTA-STS enforce and a valid BIMI logo
and gives info findings only. The curl reproduce line is run for real."""

from __future__ import annotations

import shlex
import shutil
import subprocess

import pytest

from probes.checks.https_bimi import HttpsBimi
from probes.checks.https_mta_sts import HttpsMtaSts
from probes.lab.spec import BimiSpec, LabSpec, MtaStsSpec, TlsSpec
from probes.lab.target import lab_target
from probes.model import Outcome, Severity, Timeouts
from probes.net import Net
from probes.runner import Redactor, run_one

pytestmark = pytest.mark.lab
FLAVOURED = True

F, W, N = Severity.FAIL, Severity.WARN, Severity.INFO


def run(lab, *probes):
    target = lab_target(lab.info, login=None, timeouts=Timeouts(dns=2.0, io=5.0, probe=30.0))
    net = Net.for_target(target)
    found = set()
    results = []
    for probe in probes:
        result = run_one(probe, target, net, Redactor())
        assert result.outcome is Outcome.COMPLETED, result.error_detail
        results.append(result)
        found |= {(f.code, f.severity) for f in result.findings}
    return found, results


def test_the_correct_lab_publishes_mta_sts_enforce_and_a_valid_bimi_logo(flavour_lab):
    found, results = run(flavour_lab, HttpsMtaSts(), HttpsBimi())
    assert found == {("MTA_STS_POLICY_OK", N), ("BIMI_OK", N)}
    policy = results[0].findings[0]
    assert policy.evidence["mode"] == "enforce"
    assert policy.evidence["address"] == flavour_lab.info.hosts["mx"].rsplit(".", 1)[0] + ".80"


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_reproduce_line_is_a_working_curl_command(flavour_lab):
    _, results = run(flavour_lab, HttpsMtaSts(), HttpsBimi())
    policy_line = results[0].findings[0].reproduce
    assert policy_line.startswith("curl -sv --max-redirs 0 --resolve mta-sts.")
    done = subprocess.run(shlex.split(policy_line), capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr[-500:]
    assert done.stdout.startswith(b"version: STSv1\r\nmode: enforce\r\n")
    assert b"SSL certificate verify ok" in done.stderr
    logo = subprocess.run(shlex.split(results[1].findings[0].reproduce), capture_output=True)
    assert logo.returncode == 0 and b'baseProfile="tiny-ps"' in logo.stdout


CASES = {
    "testing mode, an MX outside the policy, a logo with a script, DMARC p=none": (
        LabSpec(
            mta_sts=MtaStsSpec(mode="testing", mx=("mail.{domain}",)),
            bimi=BimiSpec(logo="script"),
            dmarc="v=DMARC1; p=none",
        ),
        {
            ("MTA_STS_POLICY_OK", N),
            ("MTA_STS_TESTING_MODE", W),
            ("MTA_STS_MX_NOT_COVERED", W),
            ("BIMI_LOGO_INVALID", F),
            ("BIMI_DMARC_TOO_WEAK", W),
        },
    ),
    "enforce with the MX missing from the policy, no BIMI record": (
        LabSpec(mta_sts=MtaStsSpec(mx=("*.other.test",)), bimi=BimiSpec(publish=False)),
        {("MTA_STS_POLICY_OK", N), ("MTA_STS_MX_NOT_COVERED", F), ("BIMI_MISSING", N)},
    ),
    "an oversized policy, a logo that is not there": (
        LabSpec(mta_sts=MtaStsSpec(oversized=True), bimi=BimiSpec(logo="missing")),
        {("MTA_STS_POLICY_INVALID", F), ("BIMI_LOGO_UNREACHABLE", F)},
    ),
    "a policy that is not one, a billion-laughs logo": (
        LabSpec(
            mta_sts=MtaStsSpec(policy="version: STSv1\nmode: enforce\n"),
            bimi=BimiSpec(logo="billion-laughs"),
        ),
        {("MTA_STS_POLICY_INVALID", F), ("BIMI_LOGO_INVALID", F)},
    ),
    "a redirect, a BIMI record with an http: logo": (
        LabSpec(
            mta_sts=MtaStsSpec(redirect=True),
            bimi=BimiSpec(record="v=BIMI1; l=http://web.{domain}/bimi/logo.svg"),
        ),
        {("MTA_STS_POLICY_UNREACHABLE", F), ("BIMI_SYNTAX_ERROR", F)},
    ),
    "a policy host where nothing listens": (
        LabSpec(mta_sts=MtaStsSpec(reachable=False)),
        {("MTA_STS_POLICY_UNREACHABLE", F), ("BIMI_OK", N)},
    ),
    "a web certificate for another host (policy and logo host)": (
        LabSpec(mta_sts=MtaStsSpec(certificate="wrong-host")),
        {("MTA_STS_POLICY_UNREACHABLE", F), ("BIMI_LOGO_UNREACHABLE", F)},
    ),
    "an expired web certificate": (
        LabSpec(mta_sts=MtaStsSpec(certificate="expired"), bimi=BimiSpec(publish=False)),
        {("MTA_STS_POLICY_UNREACHABLE", F), ("BIMI_MISSING", N)},
    ),
    "an MX certificate for another host under enforce": (
        LabSpec(tls=TlsSpec(certificate="wrong-host")),
        {("MTA_STS_POLICY_OK", N), ("MTA_STS_CERT_INVALID", F), ("BIMI_OK", N)},
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_broken_case_gives_its_codes(flavour_labs, case):
    spec, expected = CASES[case]
    lab = flavour_labs(spec)
    found, results = run(lab, HttpsMtaSts(), HttpsBimi())
    assert found == expected
    for result in results:
        for finding in result.findings:
            if finding.probe_id == "https.mta_sts" and finding.code != "MTA_STS_CERT_INVALID":
                assert finding.reproduce.startswith("curl -sv --max-redirs 0 --resolve mta-sts.")
