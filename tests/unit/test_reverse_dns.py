"""probes.lookup.ptr: reverse names, FCrDNS and the iprev verdict (dns.ptr and message.receiver
both answer "does this address's PTR resolve back to it" here)."""

from __future__ import annotations

import ipaddress

import pytest
from dnsrounds import RoundsBackend

from probes.lookup.ptr import MAX_PTR_NAMES, confirm, fcrdns, iprev, reverse_name
from probes.net.dns import DnsClient, StaticBackend

IPREV_GOOD = {
    ("1.0.0.127.in-addr.arpa", "PTR"): ["relay.example.test"],
    ("relay.example.test", "A"): ["127.0.0.1"],
}


def test_reverse_names_for_v4_and_v6():
    assert reverse_name(ipaddress.ip_address("192.0.2.25")) == "25.2.0.192.in-addr.arpa"
    v6 = reverse_name(ipaddress.ip_address("2001:db8::25"))
    assert v6.endswith(".ip6.arpa") and v6.startswith("5.2.0.0.")


@pytest.mark.parametrize(
    ("records", "result"),
    [
        (IPREV_GOOD, "pass"),
        ({}, "permerror"),  # no PTR
        ({("1.0.0.127.in-addr.arpa", "PTR"): ["relay.example.test"]}, "fail"),  # no A
        (
            {
                ("1.0.0.127.in-addr.arpa", "PTR"): ["relay.example.test"],
                ("relay.example.test", "A"): ["127.0.0.2"],
            },
            "fail",
        ),
        ({("1.0.0.127.in-addr.arpa", "PTR"): "SERVFAIL"}, "temperror"),
        (
            {
                ("1.0.0.127.in-addr.arpa", "PTR"): ["relay.example.test"],
                ("relay.example.test", "A"): "SERVFAIL",
            },
            "temperror",
        ),
        (
            {
                ("1.0.0.127.in-addr.arpa", "PTR"): ["a.example.test", "relay.example.test"],
                ("a.example.test", "A"): "SERVFAIL",
                ("relay.example.test", "A"): ["127.0.0.1"],
            },
            "pass",
        ),
    ],
)
def test_iprev(records, result):
    verdict = iprev("127.0.0.1", DnsClient(StaticBackend(records)))
    assert verdict.result == result


def test_iprev_ipv6():
    records = {
        ("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", "PTR"): [
            "v6.example.test"
        ],
        ("v6.example.test", "AAAA"): ["2001:db8::1"],
    }
    assert iprev("2001:db8::1", DnsClient(StaticBackend(records))).result == "pass"


def test_fcrdns_checks_at_most_max_ptr_names_and_says_which_confirmed():
    ip = ipaddress.ip_address("127.0.0.1")
    names = [f"n{i}.example.test" for i in range(MAX_PTR_NAMES + 3)]
    records = {("1.0.0.127.in-addr.arpa", "PTR"): names}
    records[(names[-1], "A")] = ["127.0.0.1"]  # beyond the cap: never asked
    records[(names[2], "A")] = ["127.0.0.1"]
    check = fcrdns(DnsClient(StaticBackend(records)), ip)
    assert check.names == tuple(names)
    assert [name for name, _ in check.forward] == names[:MAX_PTR_NAMES]
    assert check.confirmed_by == names[2] and check.forward_failure is None


def test_fcrdns_badname_and_cname_loop_are_not_failures_servfail_is():
    ip = ipaddress.ip_address("127.0.0.1")
    records = {
        ("1.0.0.127.in-addr.arpa", "PTR"): ["loop.example.test", "broken.example.test"],
        ("loop.example.test", "CNAME"): ["loop.example.test"],
        ("broken.example.test", "A"): "SERVFAIL",
    }
    check = fcrdns(DnsClient(StaticBackend(records)), ip)
    assert check.confirmed_by is None
    name, answer = check.forward_failure
    assert name == "broken.example.test" and answer.rcode == "SERVFAIL"


def test_confirm_asks_every_forward_question_at_once():
    ips = [ipaddress.ip_address(f"127.0.0.{i}") for i in range(1, 6)]
    records = {}
    for ip in ips:
        records[(reverse_name(ip), "PTR")] = [f"h{ip.packed[-1]}.example.test"]
        records[(f"h{ip.packed[-1]}.example.test", "A")] = [str(ip)]
    with RoundsBackend(records) as backend:
        dns = backend.client()
        checks = confirm(dns, {ip: dns.submit(reverse_name(ip), "PTR") for ip in ips})
    assert all(checks[ip].confirmed_by for ip in ips)
    assert len(backend.batches) == 2  # the PTRs, then every forward question together
