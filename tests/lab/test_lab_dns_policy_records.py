"""dns.mta_sts, dns.tls_rpt and dns.dane against the live lab DNS."""

from __future__ import annotations

import pytest

from probes.checks.dns_dane import DnsDane
from probes.checks.dns_mta_sts import DnsMtaSts
from probes.checks.dns_tls_rpt import DnsTlsRpt
from probes.model import Outcome, Severity

pytestmark = pytest.mark.lab

SHA256 = "8f" * 32


def found(result):
    return {(f.code, f.severity) for f in result.findings}


@pytest.mark.parametrize(
    ("probe", "missing"),
    [
        (DnsMtaSts, "MTA_STS_MISSING"),
        (DnsTlsRpt, "TLSRPT_MISSING"),
        (DnsDane, "DANE_TLSA_MISSING"),
    ],
)
def test_correct_lab_gives_no_warn_or_fail(run_probe, probe, missing):
    result = run_probe(probe())
    assert result.outcome is Outcome.COMPLETED
    assert found(result) == {(missing, Severity.INFO)}


# --- MTA-STS ---------------------------------------------------------------------------------


def test_mta_sts_record_is_present(run_probe, zone, dns_lab):
    zone.replace(f"_mta-sts.{dns_lab.info.domain}", "TXT", '"v=STSv1; id=20240101T000000"')
    result = run_probe(DnsMtaSts())
    assert found(result) == {("MTA_STS_PRESENT", Severity.INFO)}


def test_mta_sts_two_records_fail(run_probe, zone, dns_lab):
    zone.replace(f"_mta-sts.{dns_lab.info.domain}", "TXT", '"v=STSv1; id=1"', '"v=STSv1; id=2"')
    assert found(run_probe(DnsMtaSts())) == {("MTA_STS_MULTIPLE_RECORDS", Severity.FAIL)}


def test_mta_sts_bad_id_fails(run_probe, zone, dns_lab):
    zone.replace(f"_mta-sts.{dns_lab.info.domain}", "TXT", '"v=STSv1; id=2024-01-01"')
    assert found(run_probe(DnsMtaSts())) == {("MTA_STS_SYNTAX_ERROR", Severity.FAIL)}


# --- TLS-RPT ---------------------------------------------------------------------------------


def test_tls_rpt_record_is_present(run_probe, zone, dns_lab):
    zone.replace(
        f"_smtp._tls.{dns_lab.info.domain}",
        "TXT",
        '"v=TLSRPTv1; rua=mailto:tls-reports@reports.test,https://reports.test/tlsrpt"',
    )
    assert found(run_probe(DnsTlsRpt())) == {("TLSRPT_PRESENT", Severity.INFO)}


def test_tls_rpt_two_records_fail(run_probe, zone, dns_lab):
    zone.replace(
        f"_smtp._tls.{dns_lab.info.domain}",
        "TXT",
        '"v=TLSRPTv1; rua=mailto:a@reports.test"',
        '"v=TLSRPTv1; rua=mailto:b@reports.test"',
    )
    assert found(run_probe(DnsTlsRpt())) == {("TLSRPT_MULTIPLE_RECORDS", Severity.FAIL)}


def test_tls_rpt_without_rua_scheme_fails(run_probe, zone, dns_lab):
    zone.replace(
        f"_smtp._tls.{dns_lab.info.domain}", "TXT", '"v=TLSRPTv1; rua=tls-reports@reports.test"'
    )
    assert found(run_probe(DnsTlsRpt())) == {("TLSRPT_SYNTAX_ERROR", Severity.FAIL)}


# --- DANE ------------------------------------------------------------------------------------


def test_tlsa_record_is_present_with_its_parameters(run_probe, zone, dns_lab):
    domain = dns_lab.info.domain
    zone.replace(f"_25._tcp.mx.{domain}", "TLSA", f"3 1 1 {SHA256}")
    result = run_probe(DnsDane())
    assert result.outcome is Outcome.COMPLETED
    assert found(result) == {("DANE_TLSA_PRESENT", Severity.INFO)}
    (present,) = result.findings
    assert present.subject == f"mx.{domain}"
    assert f"3 1 1 {SHA256}" in present.evidence["records"]


def test_pkix_usage_tlsa_is_unusable_for_smtp(run_probe, zone, dns_lab):
    domain = dns_lab.info.domain
    zone.replace(f"_25._tcp.mx.{domain}", "TLSA", f"1 1 1 {SHA256}")
    result = run_probe(DnsDane())
    assert found(result) == {
        ("DANE_TLSA_PRESENT", Severity.INFO),
        ("DANE_TLSA_UNUSABLE", Severity.WARN),
    }


def test_tlsa_follows_the_mx_set(run_probe, zone, dns_lab):
    domain = dns_lab.info.domain
    zone.replace(domain, "MX", f"10 mx.{domain}.", f"20 mailbox.{domain}.")
    zone.replace(f"_25._tcp.mailbox.{domain}", "TLSA", f"3 1 1 {SHA256}")
    result = run_probe(DnsDane())
    assert {(f.code, f.subject) for f in result.findings} == {
        ("DANE_TLSA_MISSING", f"mx.{domain}"),
        ("DANE_TLSA_PRESENT", f"mailbox.{domain}"),
    }
