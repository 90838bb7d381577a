"""dns.dnssec and dns.dane's DANE_TLSA_UNVERIFIABLE over zones signed in-process: one finding
per zone that matters (the domain's, each MX host's TLSA zone)."""

from __future__ import annotations

from signed_zones import ZoneBackend, build_zone, ds_text, make_key, sign

from probes.checks.dns_dane import DnsDane
from probes.checks.dns_dnssec import DnsDnssec
from probes.model import Outcome, Severity, Target
from probes.net import Net
from probes.net.dns import DnsClient, StaticBackend
from probes.net.dnssec import Validator
from probes.parse.trust_anchor import parse_trust_anchor
from probes.runner import Redactor, run_one

TLSA = "_25._tcp.mx 300 IN TLSA 3 1 1 " + "ab" * 32 + "\n"


def lab(*, signed=True, expired=False, tlsa=True, mx_zone=None):
    """example.test (MX mx.example.test, or mx.<mx_zone>) under the anchored `test.`."""
    parent_key, key = make_key(), make_key()
    mx = f"mx.{mx_zone}" if mx_zone else "mx.example.test"
    child = build_zone("example.test", f"@ 300 IN MX 10 {mx}.\n" + (TLSA if tlsa else ""))
    if signed:
        sign(child, key, expired=expired)
    zones = [child]
    delegations = "example 300 IN NS ns.example.test.\n"
    if signed:
        delegations += f"example 300 IN DS {ds_text('example.test', key[1])}\n"
    if mx_zone:
        name = mx_zone.split(".")[0]
        zones.append(build_zone(mx_zone, TLSA if tlsa else "mx 300 IN A 127.0.0.1\n"))
        delegations += f"{name} 300 IN NS ns.{mx_zone}.\n"
    parent = build_zone("test", delegations)
    sign(parent, parent_key)
    client = DnsClient(ZoneBackend([parent, *zones]))
    anchors = parse_trust_anchor(f"test. IN DS {ds_text('test', parent_key[1])}", "lab anchor")
    return Net(dns_client=client, validator=Validator(client, anchors))


def found(result):
    return {(f.code, f.severity, f.subject) for f in result.findings}


def run(probe, net):
    return run_one(probe, Target(domain="example.test"), net, Redactor())


def test_signed_zone_is_one_signed_finding_and_tlsa_is_verifiable():
    net = lab()
    result = run(DnsDnssec(), net)
    assert result.outcome is Outcome.COMPLETED
    assert found(result) == {("DNSSEC_SIGNED", Severity.INFO, "example.test")}
    (f,) = result.findings
    assert "MX example.test" in f.evidence["judged"] and "TLSA" in f.evidence["judged"]
    assert f.reproduce.startswith("dig +dnssec ") and "MX example.test" in f.reproduce
    assert "DANE_TLSA_UNVERIFIABLE" not in {c for c, _, _ in found(run(DnsDane(), net))}


def test_bogus_zone_fails_with_the_reason_and_tlsa_is_unverifiable():
    net = lab(expired=True)
    result = run(DnsDnssec(), net)
    assert found(result) == {("DNSSEC_BOGUS", Severity.FAIL, "example.test")}
    assert "signature expired" in result.findings[0].evidence["reason"]
    dane = run(DnsDane(), net)
    assert ("DANE_TLSA_UNVERIFIABLE", Severity.WARN, "mx.example.test") in found(dane)


def test_unsigned_zone_with_tlsa_warns_and_without_is_info():
    net = lab(signed=False)
    assert found(run(DnsDnssec(), net)) == {("DNSSEC_UNSIGNED", Severity.WARN, "example.test")}
    assert ("DANE_TLSA_UNVERIFIABLE", Severity.WARN, "mx.example.test") in found(
        run(DnsDane(), net)
    )
    quiet = lab(signed=False, tlsa=False)
    assert found(run(DnsDnssec(), quiet)) == {("DNSSEC_UNSIGNED", Severity.INFO, "example.test")}


def test_the_mx_hosts_tlsa_zone_is_judged_on_its_own():
    net = lab(mx_zone="hoster.test")  # example.test signed; hoster.test delegated unsigned
    assert found(run(DnsDnssec(), net)) == {
        ("DNSSEC_SIGNED", Severity.INFO, "example.test"),
        ("DNSSEC_UNSIGNED", Severity.WARN, "hoster.test"),
    }


def test_without_dnssec_data_the_probe_says_nothing_and_completes():
    net = Net(
        dns_client=DnsClient(StaticBackend({("example.test", "MX"): [(10, "mx.example.test")]}))
    )
    result = run(DnsDnssec(), net)
    assert result.outcome is Outcome.COMPLETED and not result.findings


def test_a_servfail_tlsa_answer_ends_in_error_after_the_domain_finding():
    net = lab()
    net.dns._cache.clear()
    from concurrent.futures import Future

    from probes.net.dns import DnsAnswer

    failed: Future = Future()
    failed.set_result(DnsAnswer("_25._tcp.mx.example.test", "TLSA", "SERVFAIL"))
    net.dns._cache[("_25._tcp.mx.example.test", "TLSA")] = failed
    result = run(DnsDnssec(), net)
    assert result.outcome is Outcome.ERROR
    assert ("DNSSEC_SIGNED", Severity.INFO, "example.test") in found(result)


def test_an_anchor_for_another_zone_is_indeterminate_not_a_fault_of_the_zone():
    net = lab()
    other_key = make_key()
    net.dnssec.anchors = parse_trust_anchor(
        f"other. IN DS {ds_text('other', other_key[1])}", "my-anchor.zone"
    )
    result = run(DnsDnssec(), net)
    assert result.outcome is Outcome.COMPLETED
    codes = {(c, s) for c, s, _ in found(result)}
    assert codes == {("DNSSEC_INDETERMINATE", Severity.INFO)}  # no UNSIGNED warn, no BOGUS
    assert all("no trust anchor in my-anchor.zone covers" in f.message for f in result.findings)
