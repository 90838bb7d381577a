"""probes.lookup.mx: the one reading of a domain's MX set (dns.mx, dns.ptr, dns.dane, the
endpoint probes and message.receiver all use it)."""

from __future__ import annotations

from probes.lookup.mx import MAX_MX_HOSTS, ask_mx, ip_literal, mx_set
from probes.net.dns import DnsAnswer, DnsClient, StaticBackend

DOMAIN = "example.com"


def test_ip_literal_recognition():
    assert ip_literal("192.0.2.1") == "192.0.2.1"
    assert ip_literal("[IPv6:2001:db8::1]") == "2001:db8::1"
    assert ip_literal("mx.example.com") is None
    assert ip_literal("1.2.3") is None


def test_mx_set_orders_by_preference_and_drops_duplicates():
    answer = DnsAnswer(
        DOMAIN,
        "MX",
        "NOERROR",
        ((20, "b.example.com"), (10, "a.example.com"), (30, "a.example.com")),
    )
    mxs = mx_set(DOMAIN, answer)
    assert [h.name for h in mxs.hosts] == ["a.example.com", "b.example.com"]


def test_null_mx_alone_has_no_hosts_and_no_exchanges():
    mxs = ask_mx(DOMAIN, DnsClient(StaticBackend({(DOMAIN, "MX"): [(0, ".")]})))
    assert mxs.only_null and mxs.hosts == () and mxs.exchanges == ()


def test_no_mx_is_implicit_and_the_domain_itself_is_the_exchange():
    mxs = ask_mx(DOMAIN, DnsClient(StaticBackend({(DOMAIN, "A"): ["192.0.2.1"]})))
    assert mxs.implicit and mxs.exchanges == (DOMAIN,)


def test_nonexistent_domain_has_no_hosts():
    mxs = ask_mx(DOMAIN, DnsClient(StaticBackend({})))
    assert mxs.answer.rcode == "NXDOMAIN" and not mxs.implicit and mxs.exchanges == ()


def test_a_failed_mx_question_is_kept_not_raised():
    mxs = ask_mx(DOMAIN, DnsClient(StaticBackend({(DOMAIN, "MX"): "SERVFAIL"})))
    assert not mxs.answer.ok and mxs.hosts == ()


def test_exchanges_are_not_capped_but_hosts_are():
    records = [(i, f"h{i}.example.com") for i in range(MAX_MX_HOSTS + 5)]
    mxs = mx_set(DOMAIN, DnsAnswer(DOMAIN, "MX", "NOERROR", tuple(records)))
    assert len(mxs.hosts) == MAX_MX_HOSTS and mxs.skipped == 5
    assert len(mxs.exchanges) == MAX_MX_HOSTS + 5
    assert mxs.exchanges[:2] == ("h0.example.com", "h1.example.com")


def test_exchanges_keep_null_mx_out_and_ip_literals_in():
    answer = DnsAnswer(
        DOMAIN, "MX", "NOERROR", ((0, "."), (10, "192.0.2.9"), (20, "mx.example.com"))
    )
    mxs = mx_set(DOMAIN, answer)
    assert mxs.null and not mxs.only_null
    assert mxs.exchanges == ("192.0.2.9", "mx.example.com")
    assert mxs.hosts[0].ip_literal == "192.0.2.9"
