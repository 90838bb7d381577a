"""DNSSEC validation and DANE for SMTP against the real lab: Knot signs the lab's zones (its
TLD zone's DS is the lab's trust anchor), TLSA records are computed from the lab's
certificates at start, and each broken case is a spec (probes/lab/dnssec_zone.py). Every
flavour: the MX certificate is the MTA's, the DNS is shared.

signed + TLSA match   -> DNSSEC_SIGNED, DANE_TLSA_MATCH (and the openssl line verifies)
bogus (3 kinds)       -> DNSSEC_BOGUS with its reason, DANE_TLSA_UNVERIFIABLE
TLSA for another key  -> DANE_TLSA_MISMATCH (and the openssl line fails)
unsigned + TLSA       -> DNSSEC_UNSIGNED (warn), DANE_TLSA_UNVERIFIABLE
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from probes.checks.dns_dane import DnsDane
from probes.checks.dns_dnssec import DnsDnssec
from probes.checks.smtp_endpoints import SmtpMx
from probes.lab.spec import DaneSpec, DnssecSpec, LabSpec
from probes.lab.target import lab_target as build_lab_target
from probes.model import MessageOptions, Outcome, Severity, Timeouts
from probes.net import Net
from probes.parse.trust_anchor import load_trust_anchor
from probes.runner import Redactor, run_one

pytestmark = pytest.mark.lab
FLAVOURED = True

SPECS = {
    "match": LabSpec(dane=DaneSpec(tlsa="match")),
    "other-key": LabSpec(dane=DaneSpec(tlsa="other-key")),
    "unsigned": LabSpec(dnssec=DnssecSpec(signed=False), dane=DaneSpec(tlsa="match")),
    "expired-signature": LabSpec(
        dnssec=DnssecSpec(bogus="expired-signature"), dane=DaneSpec(tlsa="match")
    ),
    "wrong-ds": LabSpec(dnssec=DnssecSpec(bogus="wrong-ds"), dane=DaneSpec(tlsa="match")),
    "missing-dnskey": LabSpec(
        dnssec=DnssecSpec(bogus="missing-dnskey"), dane=DaneSpec(tlsa="match")
    ),
}


@pytest.fixture(scope="module")
def labs(flavour_labs):
    started: dict[str, object] = {}

    def get(name: str):
        if name not in started:
            started[name] = flavour_labs(SPECS[name])
        return started[name]

    return get


def run(lab, probe):
    target = build_lab_target(
        lab.info, timeouts=Timeouts(dns=2.0, probe=60.0), login=None, message=MessageOptions()
    )
    return run_one(probe, target, Net.for_target(target), Redactor())


def codes(result):
    return {(f.code, f.severity) for f in result.findings}


def only(result, code):
    return [f for f in result.findings if f.code == code]


def test_the_correct_lab_is_signed_and_reports_its_trust_anchor(flavour_lab):
    info = flavour_lab.info
    assert info.trust_anchor and info.trust_anchor_records.startswith("test. IN DS ")
    assert info.to_json()["trust_anchor"] == info.trust_anchor
    anchors = load_trust_anchor(info.trust_anchor)
    assert anchors.zones == ("test",)
    result = run(flavour_lab, DnsDnssec())
    assert result.outcome is Outcome.COMPLETED
    assert {(f.code, f.severity, f.subject) for f in result.findings} == {
        ("DNSSEC_SIGNED", Severity.INFO, info.domain)
    }


def test_signed_zone_with_matching_tlsa(labs):
    lab = labs("match")
    assert codes(run(lab, DnsDnssec())) == {("DNSSEC_SIGNED", Severity.INFO)}
    dane = run(lab, DnsDane())
    assert dane.outcome is Outcome.COMPLETED
    assert codes(dane) == {("DANE_TLSA_PRESENT", Severity.INFO)}
    mx = run(lab, SmtpMx())
    (match,) = only(mx, "DANE_TLSA_MATCH")
    assert match.severity is Severity.INFO
    assert "3 1 1" in match.evidence["matched"] and "2 0 1" in match.evidence["matched"]
    assert not [f for f in mx.findings if f.severity is not Severity.INFO]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_the_reproduce_line_verifies_with_openssl_dane(labs):
    (match,) = only(run(labs("match"), SmtpMx()), "DANE_TLSA_MATCH")
    assert "-dane_tlsa_rrdata" in match.reproduce
    done = subprocess.run(match.reproduce, shell=True, capture_output=True, text=True, timeout=30)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "Verification: OK" in out and "DANE TLSA" in out


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_tlsa_for_another_key_is_a_mismatch_and_openssl_agrees(labs):
    lab = labs("other-key")
    assert codes(run(lab, DnsDnssec())) == {("DNSSEC_SIGNED", Severity.INFO)}
    (mismatch,) = only(run(lab, SmtpMx()), "DANE_TLSA_MISMATCH")
    assert mismatch.severity is Severity.FAIL
    assert "3 1 1" in mismatch.evidence["record 1"]
    assert mismatch.evidence["presented"].startswith("leaf: 3 1 1 ")
    done = subprocess.run(
        mismatch.reproduce, shell=True, capture_output=True, text=True, timeout=30
    )
    assert done.returncode != 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("expired-signature", "signature expired"),
        ("wrong-ds", "DS mismatch"),
        ("missing-dnskey", "missing DNSKEY"),
    ],
)
def test_a_bogus_zone_fails_and_its_tlsa_is_unverifiable(labs, kind, reason):
    lab = labs(kind)
    result = run(lab, DnsDnssec())
    assert codes(result) == {("DNSSEC_BOGUS", Severity.FAIL)}
    (bogus,) = result.findings
    assert bogus.subject == lab.info.domain and reason in bogus.evidence["reason"]
    dane = run(lab, DnsDane())
    (unverifiable,) = only(dane, "DANE_TLSA_UNVERIFIABLE")
    assert unverifiable.severity is Severity.WARN and unverifiable.evidence["dnssec"] == "bogus"
    assert not [f for f in run(lab, SmtpMx()).findings if f.code.startswith("DANE_")]


def test_an_unsigned_zone_with_tlsa_warns(labs):
    lab = labs("unsigned")
    result = run(lab, DnsDnssec())
    assert codes(result) == {("DNSSEC_UNSIGNED", Severity.WARN)}
    assert "without DS" in result.findings[0].evidence["reason"]
    (unverifiable,) = only(run(lab, DnsDane()), "DANE_TLSA_UNVERIFIABLE")
    assert unverifiable.evidence["dnssec"] == "insecure"


def test_the_root_anchor_against_the_lab_dns_is_indeterminate_not_an_error(flavour_lab):
    """Without the lab's anchor the chain must start at the root, which the lab's Knot does not
    serve: dns.dnssec says so (info) and completes."""
    target = build_lab_target(
        flavour_lab.info,
        timeouts=Timeouts(dns=2.0, probe=60.0),
        login=None,
        message=MessageOptions(),
        trust_anchor=None,
    )
    result = run_one(DnsDnssec(), target, Net.for_target(target), Redactor())
    assert result.outcome is Outcome.COMPLETED
    assert {f.code for f in result.findings} == {"DNSSEC_INDETERMINATE"}
    assert all(f.severity is Severity.INFO for f in result.findings)
