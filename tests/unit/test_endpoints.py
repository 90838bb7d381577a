"""Which endpoints a transport probe looks at, and how several endpoints' outcomes combine."""

from __future__ import annotations

import pytest

from probes.errors import DnsError, ProbeSkipped, ProtocolError, SubjectError
from probes.model import ErrorReason, Finding, Outcome, Severity, Target
from probes.net import Net
from probes.net.dns import DnsClient, StaticBackend
from probes.probekit.endpoints import Endpoint, check_all, endpoints_for
from probes.runner import Redactor, classify, error_detail

LAB = {
    ("example.test", "MX"): [(20, "mx2.example.test"), (10, "mx1.example.test")],
    ("mx1.example.test", "A"): ["127.0.0.25"],
    ("mx2.example.test", "AAAA"): ["::1"],
    ("_submissions._tcp.example.test", "SRV"): [(0, 1, 465, "smtp.example.test")],
    ("_imap._tcp.example.test", "SRV"): [(0, 0, 0, ".")],
    ("smtp.example.test", "A"): ["127.0.0.26"],
    ("broken.example.test", "A"): "SERVFAIL",
}


def net_for(records=LAB) -> Net:
    return Net(dns_client=DnsClient(StaticBackend(records)))


def test_mx_hosts_come_from_dns_in_preference_order_with_their_addresses():
    eps = endpoints_for(Target(domain="example.test"), net_for(), "mx", 25)
    assert eps == [
        Endpoint("mx1.example.test", "127.0.0.25", 25),
        Endpoint("mx2.example.test", "::1", 25),
    ]
    assert eps[1].subject == "mx2.example.test:25"


def test_configured_hosts_win_over_dns_and_ip_literals_need_no_lookup():
    target = Target(domain="example.test", mx_hosts=("127.0.0.9", "MX1.example.test."))
    eps = endpoints_for(target, net_for(), "mx", 25)
    assert [(e.host, e.ip) for e in eps] == [
        ("127.0.0.9", "127.0.0.9"),
        ("mx1.example.test", "127.0.0.25"),
    ]


def test_domain_without_mx_falls_back_to_the_domain_itself():
    records = {("bare.test", "A"): ["127.0.0.30"]}
    eps = endpoints_for(Target(domain="bare.test"), net_for(records), "mx", 25)
    assert eps == [Endpoint("bare.test", "127.0.0.30", 25)]


def test_submission_hosts_come_from_rfc6186_srv_records_with_their_port():
    eps = endpoints_for(Target(domain="example.test"), net_for(), "submission", 465)
    assert eps == [Endpoint("smtp.example.test", "127.0.0.26", 465)]


def test_no_hosts_configured_or_published_skips_with_the_option_to_use():
    with pytest.raises(ProbeSkipped, match="--submission-host"):
        endpoints_for(Target(domain="example.test"), net_for(), "submission", 587)


def test_srv_target_dot_means_service_not_offered():
    with pytest.raises(ProbeSkipped, match="mailbox"):
        endpoints_for(Target(domain="example.test"), net_for(), "mailbox", 143)


def test_unresolvable_host_fails_naming_the_endpoint():
    target = Target(domain="example.test", mx_hosts=("broken.example.test", "nx.example.test"))
    with pytest.raises(SubjectError) as info:
        endpoints_for(target, net_for(), "mx", 25)
    assert "broken.example.test:25" in str(info.value)
    assert "nx.example.test:25" in str(info.value)
    assert classify(info.value) == (Outcome.ERROR, ErrorReason.DNS)


def _finding(code: str, subject: str) -> Finding:
    return Finding("t", code, Severity.INFO, code, subject=subject)


def test_check_all_keeps_findings_of_healthy_endpoints_and_names_the_failed_one():
    eps = [Endpoint("a", "127.0.0.1", 25), Endpoint("b", "127.0.0.2", 25)]

    def check(ep, out):
        out.append(_finding("SEEN", ep.subject))
        if ep.host == "b":
            raise TimeoutError("no banner")

    gen = check_all(eps, check)
    seen = []
    with pytest.raises(SubjectError) as info:
        for finding in gen:
            seen.append(finding.subject)
    assert seen == ["a:25", "b:25"]  # b's finding before its failure is kept
    assert classify(info.value) == (Outcome.ERROR, ErrorReason.TIMEOUT)
    assert error_detail(info.value, Redactor()).startswith("b:25: TimeoutError: no banner")


def test_subject_error_is_classified_by_its_first_cause():
    exc = SubjectError([("a:25", ProtocolError("x")), ("b:25", DnsError("y"))])
    assert classify(exc) == (Outcome.ERROR, ErrorReason.PROTOCOL)


def test_ipv6_subject_is_bracketed():
    assert Endpoint("::1", "::1", 993).subject == "[::1]:993"
