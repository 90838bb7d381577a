"""dns.mx against static DNS data: null MX, implicit MX, unresolvable hosts, IP/CNAME targets."""

from __future__ import annotations

import pytest
from dnsrounds import RoundsBackend

from probes.checks.dns_mx import DnsMx
from probes.model import ErrorReason, Outcome, Severity, Target
from probes.net import Net
from probes.net.dns import DnsClient, StaticBackend
from probes.runner import Redactor, run_one

DOMAIN = "example.com"


def run(records, domain=DOMAIN, backend=None, client=None):
    net = Net(dns_client=client or DnsClient(backend or StaticBackend(records)))
    return run_one(DnsMx(), Target(domain=domain), net, Redactor())


def codes(result):
    return {(f.code, f.severity, f.subject) for f in result.findings}


def severe(result):
    return [f for f in result.findings if f.severity >= Severity.WARN]


BASE = {
    (DOMAIN, "MX"): [(10, "mx1.example.com."), (20, "mx2.example.com.")],
    ("mx1.example.com", "A"): ["192.0.2.1"],
    ("mx2.example.com", "AAAA"): ["2001:db8::2"],
}


def test_mx_hosts_with_addresses_give_only_the_listing():
    result = run(BASE)
    assert result.outcome is Outcome.COMPLETED
    assert severe(result) == []
    (present,) = result.findings
    assert present.code == "MX_PRESENT"
    assert "10 mx1.example.com." in present.evidence["mx"]
    assert "2001:db8::2" in present.evidence["addresses"]


def test_null_mx_alone_is_info():
    result = run({(DOMAIN, "MX"): [(0, ".")], (DOMAIN, "A"): ["192.0.2.9"]})
    assert result.outcome is Outcome.COMPLETED
    assert codes(result) == {("MX_NULL", Severity.INFO, None)}


def test_null_mx_mixed_with_other_mx_fails_and_others_are_still_checked():
    result = run({(DOMAIN, "MX"): [(0, "."), (10, "nowhere.example.com.")]})
    assert ("MX_NULL_MIXED", Severity.FAIL, None) in codes(result)
    assert ("MX_HOST_UNRESOLVABLE", Severity.FAIL, "nowhere.example.com") in codes(result)


def test_no_mx_with_address_uses_implicit_mx():
    result = run({(DOMAIN, "A"): ["192.0.2.5"]})
    assert result.outcome is Outcome.COMPLETED
    assert codes(result) == {("MX_IMPLICIT", Severity.INFO, None)}


def test_no_mx_and_no_address_is_missing():
    result = run({(DOMAIN, "TXT"): ["v=spf1 -all"]})
    assert codes(result) == {("MX_MISSING", Severity.FAIL, None)}


def test_nonexistent_domain_is_missing_without_asking_addresses():
    result = run({("other.com", "MX"): [(10, "mx.other.com")]})
    assert codes(result) == {("MX_MISSING", Severity.FAIL, None)}


def test_implicit_mx_address_lookup_failure_is_an_error_not_missing():
    result = run({(DOMAIN, "TXT"): ["x"], (DOMAIN, "A"): "SERVFAIL"})
    assert result.outcome is Outcome.ERROR and result.error is ErrorReason.DNS
    assert result.findings == ()


def test_host_without_address_is_unresolvable():
    records = {**BASE, (DOMAIN, "MX"): [(10, "mx1.example.com."), (20, "gone.example.com.")]}
    result = run(records)
    assert {c for c in codes(result) if c[1] is not Severity.INFO} == {
        ("MX_HOST_UNRESOLVABLE", Severity.FAIL, "gone.example.com")
    }


@pytest.mark.parametrize("target", ["192.0.2.1.", "[192.0.2.1]", "2001:db8::25"])
def test_ip_literal_target_warns_and_is_not_looked_up_as_a_name(target):
    backend = StaticBackend({(DOMAIN, "MX"): [(10, target)]})
    result = run(None, backend=backend)
    assert result.outcome is Outcome.COMPLETED
    assert [(f.code, f.severity) for f in severe(result)] == [("MX_IS_IP_OR_CNAME", Severity.WARN)]


def test_cname_target_warns_but_resolves():
    records = {
        (DOMAIN, "MX"): [(10, "alias.example.com.")],
        ("alias.example.com", "CNAME"): ["mx1.example.com."],
        ("mx1.example.com", "A"): ["192.0.2.1"],
    }
    result = run(records)
    assert result.outcome is Outcome.COMPLETED
    (warn,) = severe(result)
    assert (warn.code, warn.severity, warn.subject) == (
        "MX_IS_IP_OR_CNAME",
        Severity.WARN,
        "alias.example.com",
    )
    assert "mx1.example.com" in warn.evidence["cname_chain"]


def test_cname_to_nothing_warns_and_fails():
    records = {
        (DOMAIN, "MX"): [(10, "alias.example.com.")],
        ("alias.example.com", "CNAME"): ["gone.example.com."],
    }
    found = {c[0] for c in codes(run(records))}
    assert {"MX_IS_IP_OR_CNAME", "MX_HOST_UNRESOLVABLE"} <= found


def test_mx_lookup_failure_is_an_error():
    result = run({(DOMAIN, "MX"): "SERVFAIL"})
    assert result.outcome is Outcome.ERROR and result.error is ErrorReason.DNS


def test_mx_timeout_is_a_timeout():
    result = run({(DOMAIN, "MX"): "TIMEOUT"})
    assert result.outcome is Outcome.ERROR and result.error is ErrorReason.TIMEOUT


def test_host_lookup_failure_keeps_other_findings_then_errors():
    records = {
        (DOMAIN, "MX"): [(10, "bad.example.com."), (20, "gone.example.com.")],
        ("bad.example.com", "A"): "SERVFAIL",
    }
    result = run(records)
    assert result.outcome is Outcome.ERROR and result.error is ErrorReason.DNS
    assert ("MX_HOST_UNRESOLVABLE", Severity.FAIL, "gone.example.com") in codes(result)
    assert all(f.subject != "bad.example.com" for f in result.findings)


def test_cname_loop_host_is_an_error_not_unresolvable():
    records = {
        (DOMAIN, "MX"): [(10, "l1.example.com.")],
        ("l1.example.com", "CNAME"): ["l2.example.com"],
        ("l2.example.com", "CNAME"): ["l1.example.com"],
    }
    result = run(records)
    assert result.outcome is Outcome.ERROR
    assert "MX_HOST_UNRESOLVABLE" not in {f.code for f in result.findings}


def test_many_mx_hosts_are_capped_and_bounded():
    mx = [(i, f"h{i}.example.com.") for i in range(500)]
    records = {
        (DOMAIN, "MX"): mx,
        **{(f"h{i}.example.com", "A"): ["192.0.2.1"] for i in range(500)},
    }
    result = run(records)
    assert result.outcome is Outcome.COMPLETED
    (present,) = result.findings
    assert "not_checked" in present.evidence


def test_all_hosts_are_resolved_in_one_level():
    mx = [(i, f"h{i}.example.com.") for i in range(10)]
    records = {(DOMAIN, "MX"): mx, **{(f"h{i}.example.com", "A"): ["192.0.2.1"] for i in range(10)}}
    with RoundsBackend(records) as backend:
        result = run(None, client=backend.client())
    assert result.outcome is Outcome.COMPLETED
    # Two rounds: the MX question, then every host's A and AAAA at once (not 21 one by one).
    hosts = [(f"h{i}.example.com", rdtype) for i in range(10) for rdtype in ("A", "AAAA")]
    assert backend.batches == [[(DOMAIN, "MX")], sorted(hosts)]
