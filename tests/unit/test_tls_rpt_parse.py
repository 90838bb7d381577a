"""The TLS-RPT TXT record parser (RFC 8460 §3), and dns.tls_rpt on static data."""

from __future__ import annotations

import pytest

from probes.checks.dns_tls_rpt import DnsTlsRpt
from probes.model import ErrorReason, Outcome, Severity, Target
from probes.net import Net
from probes.net.dns import DnsClient, StaticBackend
from probes.parse.tls_rpt import TlsRptSyntaxError, is_tlsrpt_record, parse
from probes.runner import Redactor, run_one

NAME = "_smtp._tls.example.com"


@pytest.mark.parametrize(
    ("text", "rua"),
    [
        ("v=TLSRPTv1; rua=mailto:reports@example.com", ("mailto:reports@example.com",)),
        (
            "v=TLSRPTv1;rua=https://reporting.example.com/v1/tlsrpt",
            ("https://reporting.example.com/v1/tlsrpt",),
        ),
        (
            "v=TLSRPTv1; rua=mailto:a@example.com , https://r.example.com:8443/x;",
            ("mailto:a@example.com", "https://r.example.com:8443/x"),
        ),
        (
            "v=TLSRPTv1 ; rua=mailto:tls%2Breports@example.com ; ext=1 ",
            ("mailto:tls%2Breports@example.com",),
        ),
        ("v=TLSRPTv1; rua=https://[2001:db8::1]/r", ("https://[2001:db8::1]/r",)),
    ],
)
def test_valid_records(text, rua):
    assert parse(text).rua == rua


@pytest.mark.parametrize(
    "text",
    [
        "v=TLSRPTv1",
        "v=TLSRPTv1;",
        "v=tlsrptv1; rua=mailto:a@example.com",
        "v=TLSRPTv1 rua=mailto:a@example.com",
        "v=TLSRPTv1; RUA=mailto:a@example.com",
        "v=TLSRPTv1; rua=",
        "v=TLSRPTv1; rua=mailto:a@example.com,",
        "v=TLSRPTv1; rua=mailto:a@example.com; rua=mailto:b@example.com",
        "v=TLSRPTv1; rua=ftp://example.com/x",
        "v=TLSRPTv1; rua=http://example.com/x",
        "v=TLSRPTv1; rua=reports@example.com",
        "v=TLSRPTv1; rua=mailto:example.com",
        "v=TLSRPTv1; rua=mailto:a@",
        "v=TLSRPTv1; rua=mailto:a@example.com!10m",
        "v=TLSRPTv1; rua=https:///path",
        "v=TLSRPTv1; rua=https://example.com:99999/x",
        "v=TLSRPTv1; rua=https://exa mple.com/x",
        "v=TLSRPTv1; rua=mailto:ré@example.com",
        "v=TLSRPTv1; rua=mailto:a@example.com; ext",
        "v=TLSRPTv1; rua=mailto:a@example.com;; x=1",
        "v=TLSRPTv1; x=1",
    ],
)
def test_invalid_records_raise_the_documented_error(text):
    with pytest.raises(TlsRptSyntaxError):
        parse(text)


def test_candidates_are_case_insensitive():
    assert is_tlsrpt_record("v=TLSRPTV1; rua=mailto:a@example.com")
    assert not is_tlsrpt_record("v=STSv1; id=1")


def run(value):
    records = {("example.com", "A"): ["192.0.2.1"]}
    if value is not None:
        records[(NAME, "TXT")] = value
    net = Net(dns_client=DnsClient(StaticBackend(records)))
    return run_one(DnsTlsRpt(), Target(domain="example.com"), net, Redactor())


def found(result):
    return [(f.code, f.severity) for f in result.findings]


def test_probe_no_record_is_info():
    assert found(run(None)) == [("TLSRPT_MISSING", Severity.INFO)]


def test_probe_valid_record_is_info_with_rua():
    result = run(["v=TLSRPTv1; rua=mailto:tls@example.com"])
    assert found(result) == [("TLSRPT_PRESENT", Severity.INFO)]
    assert result.findings[0].evidence["rua"] == "mailto:tls@example.com"


def test_probe_two_records_fail():
    records = ["v=TLSRPTv1; rua=mailto:a@example.com", "v=TLSRPTv1; rua=mailto:b@example.com"]
    assert found(run(records)) == [("TLSRPT_MULTIPLE_RECORDS", Severity.FAIL)]


def test_probe_bad_record_fails():
    assert found(run(["v=TLSRPTv1; rua=tls@example.com"])) == [
        ("TLSRPT_SYNTAX_ERROR", Severity.FAIL)
    ]


def test_probe_non_ascii_bytes_are_a_syntax_error_not_a_crash():
    result = run([b"v=TLSRPTv1; rua=mailto:\xff@example.com"])
    assert found(result) == [("TLSRPT_SYNTAX_ERROR", Severity.FAIL)]


def test_probe_timeout_is_a_timeout():
    result = run("TIMEOUT")
    assert result.outcome is Outcome.ERROR and result.error is ErrorReason.TIMEOUT
