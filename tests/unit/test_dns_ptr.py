"""dns.ptr against static DNS data: PTR presence and forward confirmation, IPv4 and IPv6."""

from __future__ import annotations

import threading

import pytest
from dnsrounds import RoundsBackend

from probes.checks.dns_ptr import DnsPtr, parse_sending_ips
from probes.lookup.ptr import reverse_name
from probes.model import ErrorReason, Outcome, Severity, Target
from probes.net import Net
from probes.net.dns import DnsClient, StaticBackend
from probes.runner import Redactor, run_one

DOMAIN = "example.com"
MX_V4 = "192.0.2.25"
MX_V6 = "2001:db8::25"
SENDER_V4 = "198.51.100.10"
SENDER_V6 = "2001:db8:1::10"
REV_MX_V4 = "25.2.0.192.in-addr.arpa"
REV_MX_V6 = reverse_name(parse_sending_ips([MX_V6])[0])
REV_SENDER_V4 = "10.100.51.198.in-addr.arpa"
REV_SENDER_V6 = reverse_name(parse_sending_ips([SENDER_V6])[0])

GOOD = {
    (DOMAIN, "MX"): [(10, "mx.example.com.")],
    ("mx.example.com", "A"): [MX_V4],
    ("mx.example.com", "AAAA"): [MX_V6],
    (REV_MX_V4, "PTR"): ["mx.example.com."],
    (REV_MX_V6, "PTR"): ["mx.example.com."],
    (REV_SENDER_V4, "PTR"): ["out.example.com."],
    (REV_SENDER_V6, "PTR"): ["out.example.com."],
    ("out.example.com", "A"): [SENDER_V4],
    ("out.example.com", "AAAA"): [SENDER_V6],
}


def run(records, sending_ips=(SENDER_V4, SENDER_V6), backend=None, client=None):
    net = Net(dns_client=client or DnsClient(backend or StaticBackend(records)))
    target = Target(domain=DOMAIN, sending_ips=tuple(sending_ips))
    return run_one(DnsPtr(), target, net, Redactor())


def severe(result):
    return {(f.code, f.severity, f.subject) for f in result.findings if f.severity >= Severity.WARN}


def test_confirmed_v4_and_v6_give_no_warn_or_fail():
    result = run(GOOD)
    assert result.outcome is Outcome.COMPLETED
    assert severe(result) == set()
    confirmed = {f.subject for f in result.findings if f.code == "PTR_CONFIRMED"}
    assert confirmed == {MX_V4, MX_V6, SENDER_V4, SENDER_V6}


def test_sending_ip_without_ptr_fails():
    records = {k: v for k, v in GOOD.items() if k != (REV_SENDER_V4, "PTR")}
    assert severe(run(records)) == {("PTR_MISSING", Severity.FAIL, SENDER_V4)}


def test_ipv6_sending_ip_without_ptr_fails():
    records = {k: v for k, v in GOOD.items() if k != (REV_SENDER_V6, "PTR")}
    assert severe(run(records)) == {("PTR_MISSING", Severity.FAIL, SENDER_V6)}


def test_mx_address_without_ptr_warns():
    records = {k: v for k, v in GOOD.items() if k != (REV_MX_V6, "PTR")}
    assert severe(run(records)) == {("PTR_MISSING", Severity.WARN, MX_V6)}


def test_address_that_is_both_mx_and_sender_gets_the_sender_severity():
    records = {k: v for k, v in GOOD.items() if k != (REV_MX_V4, "PTR")}
    result = run(records, sending_ips=(MX_V4,))
    assert severe(result) == {("PTR_MISSING", Severity.FAIL, MX_V4)}
    (missing,) = [f for f in result.findings if f.code == "PTR_MISSING"]
    assert "sending IP" in missing.evidence["role"] and "MX" in missing.evidence["role"]


def test_ptr_name_resolving_elsewhere_is_not_confirmed():
    records = {**GOOD, ("out.example.com", "A"): ["198.51.100.99"]}
    result = run(records)
    assert severe(result) == {("PTR_NOT_CONFIRMED", Severity.WARN, SENDER_V4)}
    (f,) = [f for f in result.findings if f.code == "PTR_NOT_CONFIRMED"]
    assert f.evidence["ptr"] == "out.example.com."
    assert f.evidence["A out.example.com"] == "198.51.100.99"


def test_ipv6_ptr_name_without_aaaa_is_not_confirmed():
    records = {k: v for k, v in GOOD.items() if k != ("out.example.com", "AAAA")}
    assert severe(run(records)) == {("PTR_NOT_CONFIRMED", Severity.WARN, SENDER_V6)}


def test_one_of_several_ptr_names_confirming_is_enough():
    records = {**GOOD, (REV_SENDER_V4, "PTR"): ["nowhere.example.com.", "out.example.com."]}
    assert severe(run(records)) == set()


def test_ptr_name_that_is_not_a_valid_name_is_not_confirmed():
    records = {**GOOD, (REV_SENDER_V4, "PTR"): ["a" * 70 + ".example.com."]}
    result = run(records)
    assert result.outcome is Outcome.COMPLETED
    assert severe(result) == {("PTR_NOT_CONFIRMED", Severity.WARN, SENDER_V4)}


def test_ptr_lookup_failure_is_an_error_after_the_other_findings():
    records = {**GOOD, (REV_SENDER_V4, "PTR"): "SERVFAIL", (REV_MX_V4, "PTR"): []}
    result = run(records)
    assert result.outcome is Outcome.ERROR and result.error is ErrorReason.DNS
    assert severe(result) == {("PTR_MISSING", Severity.WARN, MX_V4)}


def test_forward_lookup_failure_is_an_error_not_unconfirmed():
    records = {**GOOD, ("out.example.com", "A"): "SERVFAIL"}
    result = run(records)
    assert result.outcome is Outcome.ERROR
    assert "PTR_NOT_CONFIRMED" not in {f.code for f in result.findings}


def test_mx_failure_still_judges_sending_ips_then_errors():
    records = {**GOOD, (DOMAIN, "MX"): "TIMEOUT"}
    result = run(records)
    assert result.outcome is Outcome.ERROR and result.error is ErrorReason.TIMEOUT
    assert {f.subject for f in result.findings} == {SENDER_V4, SENDER_V6}


def test_null_mx_and_no_sending_ips_give_nothing():
    result = run({(DOMAIN, "MX"): [(0, ".")]}, sending_ips=())
    assert result.outcome is Outcome.COMPLETED and result.findings == ()


@pytest.mark.parametrize("bad", ["not-an-ip", "192.0.2.300", "fe80::1%eth0", "192.0.2.0/24"])
def test_invalid_sending_ip_is_a_config_error_naming_it(bad):
    result = run(GOOD, sending_ips=(SENDER_V4, bad))
    assert result.outcome is Outcome.ERROR and result.error is ErrorReason.CONFIG
    assert bad in result.error_detail


def test_ipv4_mapped_sending_ip_is_checked_as_ipv4():
    (ip,) = parse_sending_ips(["::ffff:198.51.100.10"])
    assert str(ip) == SENDER_V4


def test_walk_asks_each_level_at_once_however_many_hosts():
    records = {(DOMAIN, "MX"): [(i, f"mx{i}.example.com.") for i in range(6)]}
    for i in range(6):
        ip = f"192.0.2.{i + 1}"
        records[(f"mx{i}.example.com", "A")] = [ip]
        records[(reverse_name(parse_sending_ips([ip])[0]), "PTR")] = [f"mx{i}.example.com."]
    records.update({k: v for k, v in GOOD.items() if k[0] != DOMAIN})
    with RoundsBackend(records) as backend:
        result = run(None, client=backend.client())
    assert result.outcome is Outcome.COMPLETED
    assert severe(result) == set()
    # Round 1: MX and the sending IPs' PTRs; 2: every MX host's A/AAAA; 3: every MX address's
    # PTR, with the sending IPs' PTR name forward. The MX addresses' PTR names are the MX hosts,
    # answered in round 2, so their forward confirmation adds no round.
    hosts = {(f"mx{i}.example.com", rdtype) for i in range(6) for rdtype in ("A", "AAAA")}
    ptrs = {(reverse_name(parse_sending_ips([f"192.0.2.{i + 1}"])[0]), "PTR") for i in range(6)}
    assert backend.rounds == 3, backend.batches
    assert (DOMAIN, "MX") in backend.batches[0]
    assert hosts <= set(backend.batches[1])
    assert ptrs <= set(backend.batches[2])


class CountingBackend(StaticBackend):
    def __init__(self, records):
        super().__init__(records)
        self.lock = threading.Lock()
        self.ptr_questions = 0

    def resolve(self, name, rdtype):
        if rdtype == "PTR":
            with self.lock:
                self.ptr_questions += 1
        return super().resolve(name, rdtype)


def test_hostile_mx_address_sets_are_bounded():
    records = {(DOMAIN, "MX"): [(i, f"h{i}.example.com.") for i in range(40)]}
    for i in range(40):
        records[(f"h{i}.example.com", "A")] = [f"10.{i}.{j // 256}.{j % 256}" for j in range(100)]
    backend = CountingBackend(records)
    result = run(None, sending_ips=(SENDER_V4,), backend=backend)
    assert result.outcome is Outcome.COMPLETED
    assert backend.ptr_questions == 64 + 1
