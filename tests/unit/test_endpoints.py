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


# -- a domain whose MX set leaves no host: dns.mx's finding, the transport probes SKIPPED -----

NO_HOST = {
    ("bare.test", "TXT"): ["v=spf1 -all"],  # exists, no MX, no A/AAAA
    ("null.test", "MX"): [(0, ".")],  # RFC 7505 null MX
    ("noaddr.test", "MX"): [(10, "mx.noaddr.test")],
    ("mx.noaddr.test", "TXT"): ["exists, no address"],
    ("self.test", "MX"): [(10, "self.test")],  # its own name, without an address
    ("half.test", "MX"): [(10, "mx1.half.test"), (20, "gone.half.test")],
    ("mx1.half.test", "A"): ["127.0.0.25"],
    ("slow.test", "MX"): "TIMEOUT",
    ("sick.test", "MX"): [(10, "mx.sick.test")],
    ("mx.sick.test", "A"): "SERVFAIL",
}


@pytest.mark.parametrize(
    ("domain", "reason"),
    [
        ("nx.test", "nx.test does not exist (dns.mx: MX_MISSING)"),
        ("bare.test", "bare.test has no MX record and no A/AAAA to fall back to"),
        ("null.test", "null.test publishes a null MX (RFC 7505)"),
        ("noaddr.test", "mx.noaddr.test: no A or AAAA record (dns.mx: MX_HOST_UNRESOLVABLE)"),
        ("self.test", "self.test: no A or AAAA record (dns.mx: MX_HOST_UNRESOLVABLE)"),
    ],
)
def test_a_domain_whose_mx_set_names_no_host_skips_with_the_reason(domain, reason):
    with pytest.raises(ProbeSkipped) as info:
        endpoints_for(Target(domain=domain), net_for(NO_HOST), "mx", 25)
    assert reason in info.value.reason


def test_mx_hosts_without_address_are_left_out_and_the_others_probed():
    eps = endpoints_for(Target(domain="half.test"), net_for(NO_HOST), "mx", 25)
    assert eps == [Endpoint("mx1.half.test", "127.0.0.25", 25)]


@pytest.mark.parametrize(
    ("domain", "reason"), [("slow.test", ErrorReason.TIMEOUT), ("sick.test", ErrorReason.DNS)]
)
def test_an_unanswered_mx_or_address_question_stays_an_error(domain, reason):
    with pytest.raises(Exception) as info:
        endpoints_for(Target(domain=domain), net_for(NO_HOST), "mx", 25)
    assert classify(info.value) == (Outcome.ERROR, reason)


def test_configured_mx_host_without_address_stays_an_error():
    target = Target(domain="noaddr.test", mx_hosts=("mx.noaddr.test",))
    with pytest.raises(SubjectError) as info:
        endpoints_for(target, net_for(NO_HOST), "mx", 25)
    assert classify(info.value) == (Outcome.ERROR, ErrorReason.DNS)


@pytest.mark.parametrize(
    ("domain", "mx_code", "transport"),
    [
        ("nx.test", "MX_MISSING", Outcome.SKIPPED),
        ("bare.test", "MX_MISSING", Outcome.SKIPPED),
        ("null.test", "MX_NULL", Outcome.SKIPPED),
        ("noaddr.test", "MX_HOST_UNRESOLVABLE", Outcome.SKIPPED),
        ("slow.test", None, Outcome.ERROR),
    ],
)
def test_the_real_probes_report_the_mx_set_once(domain, mx_code, transport):
    """dns.mx reports the domain's missing MX; smtp.mx, smtp.relay and smtp.swaks (when swaks
    is installed) add no DNS error on top."""
    from probes import registry
    from probes.runner import run_report

    available = registry.load_probes()
    ids = ["dns.mx", "smtp.mx", "smtp.relay", "smtp.swaks"]
    report = run_report([available[i]() for i in ids], Target(domain=domain), net_for(NO_HOST))
    by_id = {r.probe_id: r for r in report.results}
    severe = [f.code for f in by_id["dns.mx"].findings if f.severity is not Severity.INFO]
    codes = [f.code for f in by_id["dns.mx"].findings if f.code != "MX_PRESENT"]
    assert codes == ([mx_code] if mx_code else [])
    assert severe == ([mx_code] if mx_code and mx_code != "MX_NULL" else [])
    for pid in ("smtp.mx", "smtp.relay"):
        assert by_id[pid].outcome is transport, by_id[pid]
        assert by_id[pid].findings == ()
    if transport is Outcome.SKIPPED:
        assert "no mx hosts" in (by_id["smtp.mx"].error_detail or "")
        assert by_id["smtp.swaks"].outcome is Outcome.SKIPPED
    else:
        assert by_id["dns.mx"].outcome is Outcome.ERROR
