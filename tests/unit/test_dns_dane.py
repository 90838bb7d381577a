"""dns.dane against static DNS data: TLSA presence and usability for SMTP (RFC 7672)."""

from __future__ import annotations

import pytest

from probes.checks.dns_dane import DnsDane, tlsa_problem
from probes.model import ErrorReason, Outcome, Severity, Target
from probes.net import Net
from probes.net.dns import DnsClient, StaticBackend
from probes.runner import Redactor, run_one

DOMAIN = "example.com"
SHA256 = "ab" * 32
SHA512 = "cd" * 64
MX = {(DOMAIN, "MX"): [(10, "mx1.example.com."), (20, "mx2.example.com.")]}


def run(records):
    net = Net(dns_client=DnsClient(StaticBackend({**MX, **records})))
    return run_one(DnsDane(), Target(domain=DOMAIN), net, Redactor())


def found(result):
    return {(f.code, f.severity, f.subject) for f in result.findings}


def test_no_tlsa_is_info_per_host():
    result = run({})
    assert result.outcome is Outcome.COMPLETED
    assert found(result) == {
        ("DANE_TLSA_MISSING", Severity.INFO, "mx1.example.com"),
        ("DANE_TLSA_MISSING", Severity.INFO, "mx2.example.com"),
    }


def test_usable_tlsa_is_info_with_records_as_evidence():
    result = run({("_25._tcp.mx1.example.com", "TLSA"): [(3, 1, 1, SHA256), (2, 0, 2, SHA512)]})
    assert ("DANE_TLSA_PRESENT", Severity.INFO, "mx1.example.com") in found(result)
    assert all(f.severity is Severity.INFO for f in result.findings)
    (present,) = [f for f in result.findings if f.code == "DANE_TLSA_PRESENT"]
    assert f"3 1 1 {SHA256}" in present.evidence["records"]
    assert "DANE-EE/SPKI/SHA2-256" in present.evidence["records"]


@pytest.mark.parametrize(
    "record",
    [
        (0, 0, 1, SHA256),  # PKIX-TA
        (1, 1, 1, SHA256),  # PKIX-EE
        (4, 1, 1, SHA256),  # unknown usage
        (3, 2, 1, SHA256),  # unknown selector
        (3, 1, 3, SHA256),  # unknown matching type
        (3, 1, 1, "ab" * 20),  # SHA2-256 of the wrong length
        (3, 1, 2, SHA256),  # SHA2-512 of the wrong length
        (3, 1, 0, ""),  # empty full data
        (3, 1, 1, "zz" * 32),  # not hex
        "garbage",
    ],
)
def test_unusable_records_warn(record):
    assert tlsa_problem(record) is not None
    result = run({("_25._tcp.mx2.example.com", "TLSA"): [record]})
    assert ("DANE_TLSA_UNUSABLE", Severity.WARN, "mx2.example.com") in found(result)
    assert ("DANE_TLSA_PRESENT", Severity.INFO, "mx2.example.com") in found(result)


def test_one_unusable_among_usable_still_warns_and_counts():
    result = run({("_25._tcp.mx1.example.com", "TLSA"): [(3, 1, 1, SHA256), (1, 1, 1, SHA256)]})
    (warn,) = [f for f in result.findings if f.code == "DANE_TLSA_UNUSABLE"]
    assert warn.evidence["usable"] == "1"


def test_full_certificate_data_is_shortened_in_evidence():
    result = run({("_25._tcp.mx1.example.com", "TLSA"): [(3, 0, 0, "30" * 1500)]})
    (present,) = [f for f in result.findings if f.code == "DANE_TLSA_PRESENT"]
    assert len(present.evidence["records"]) < 200
    assert "1500 bytes" in present.evidence["records"]


def test_null_mx_and_ip_literals_are_not_asked():
    net = Net(dns_client=DnsClient(StaticBackend({(DOMAIN, "MX"): [(0, ".")]})))
    result = run_one(DnsDane(), Target(domain=DOMAIN), net, Redactor())
    assert result.outcome is Outcome.COMPLETED and result.findings == ()
    net = Net(dns_client=DnsClient(StaticBackend({(DOMAIN, "MX"): [(10, "192.0.2.1.")]})))
    result = run_one(DnsDane(), Target(domain=DOMAIN), net, Redactor())
    assert result.outcome is Outcome.COMPLETED and result.findings == ()


def test_implicit_mx_checks_the_domain_itself():
    net = Net(dns_client=DnsClient(StaticBackend({(DOMAIN, "A"): ["192.0.2.1"]})))
    result = run_one(DnsDane(), Target(domain=DOMAIN), net, Redactor())
    assert found(result) == {("DANE_TLSA_MISSING", Severity.INFO, DOMAIN)}


def test_tlsa_servfail_keeps_other_hosts_then_errors():
    result = run({("_25._tcp.mx1.example.com", "TLSA"): "SERVFAIL"})
    assert result.outcome is Outcome.ERROR and result.error is ErrorReason.DNS
    assert found(result) == {("DANE_TLSA_MISSING", Severity.INFO, "mx2.example.com")}


def test_mx_failure_is_an_error():
    net = Net(dns_client=DnsClient(StaticBackend({(DOMAIN, "MX"): "REFUSED"})))
    result = run_one(DnsDane(), Target(domain=DOMAIN), net, Redactor())
    assert result.outcome is Outcome.ERROR and result.error is ErrorReason.DNS


def test_many_records_are_listed_within_bounds():
    result = run(
        {("_25._tcp.mx1.example.com", "TLSA"): [(1, 1, 1, f"{i:064x}") for i in range(300)]}
    )
    assert result.outcome is Outcome.COMPLETED
    for f in result.findings:
        assert sum(len(v) for v in f.evidence.values()) < 3000
