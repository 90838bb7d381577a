"""The door's own DNS message handling (probes.net.dns_wire) reads replies exactly as
dnspython plus `interpret` do, and leaves everything else to dnspython (issue 17)."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from probes.net.dns import EDNS_PAYLOAD, RawAnswer, interpret
from probes.net.dns_wire import Unsupported, build_query, read_reply

QID = 0x1234


def _query(name: str, rdtype: str, dnssec: bool = False) -> bytes:
    wire = build_query(QID, name, rdtype, dnssec=dnssec, payload=EDNS_PAYLOAD)
    assert wire is not None
    return wire


def _reply(name, rdtype, *rrsets, rcode=dns.rcode.NOERROR, authority=(), flags=0) -> bytes:
    query = dns.message.from_wire(_query(name, rdtype))
    reply = dns.message.make_response(query)
    reply.set_rcode(rcode)
    reply.flags |= flags
    for owner, ttl, rtype, *texts in rrsets:
        reply.answer.append(dns.rrset.from_text(owner, ttl, "IN", rtype, *texts))
    for owner, ttl, rtype, *texts in authority:
        reply.authority.append(dns.rrset.from_text(owner, ttl, "IN", rtype, *texts))
    return reply.to_wire()


def both(wire: bytes, name: str, rdtype: str) -> tuple[RawAnswer, RawAnswer]:
    """(what dns_wire reads, what dnspython + interpret read) in comparable form."""
    got = read_reply(wire, QID, _query(name, rdtype)[12:-15], name, rdtype)
    mine = RawAnswer(got.rcode, got.records or (), got.cname, got.chain, ttl=got.ttl)
    theirs = interpret(dns.message.from_wire(wire), name, rdtype)
    if theirs.rcode not in ("NOERROR", "NXDOMAIN"):
        theirs = RawAnswer(theirs.rcode)
    return mine, RawAnswer(theirs.rcode, theirs.records, theirs.cname, theirs.chain, ttl=theirs.ttl)


def same(wire: bytes, name: str, rdtype: str) -> RawAnswer:
    mine, theirs = both(wire, name, rdtype)
    assert mine == theirs
    assert mine.ttl == theirs.ttl
    return mine


SOA = ("example.", 3600, "SOA", "ns.example. host.example. 1 7200 900 1209600 120")


def test_the_query_is_the_one_dnspython_builds():
    for dnssec in (False, True):
        ours = dns.message.from_wire(_query("_dmarc.example.com", "TXT", dnssec))
        theirs = dns.message.make_query(
            "_dmarc.example.com.",
            "TXT",
            use_edns=0,
            payload=EDNS_PAYLOAD,
            flags=dns.flags.RD | dns.flags.CD,
            want_dnssec=dnssec,
        )
        assert ours.question == theirs.question
        assert ours.flags == theirs.flags
        assert (ours.edns, ours.payload, ours.ednsflags) == (0, EDNS_PAYLOAD, theirs.ednsflags)
    root = dns.message.from_wire(_query(".", "DNSKEY", True))
    assert root.question[0].name == dns.name.root


@pytest.mark.parametrize("name", ["a b.example", "ex\\ample.com", "é.example", "a..b", "x" * 64])
def test_names_outside_the_plain_form_are_left_to_dnspython(name):
    assert build_query(QID, name, "TXT", dnssec=False, payload=EDNS_PAYLOAD) is None


def test_an_unknown_type_is_left_to_dnspython():
    assert build_query(QID, "example.com", "HINFO", dnssec=False, payload=EDNS_PAYLOAD) is None


def test_txt_records_with_several_strings_and_duplicates():
    wire = _reply(
        "example.com",
        "TXT",
        ("example.com.", 300, "TXT", '"v=spf1 " "-all"', '"second"', '"second"'),
    )
    raw = same(wire, "example.com", "TXT")
    assert sorted(raw.records) == [(b"second",), (b"v=spf1 ", b"-all")]  # the duplicate dropped
    assert raw.ttl == 300


def test_addresses_mx_and_names():
    same(
        _reply("h.example", "A", ("h.example.", 60, "A", "192.0.2.1", "192.0.2.2")),
        "h.example",
        "A",
    )
    for text in ("2001:db8::1", "::ffff:192.0.2.1", "::1", "2001:db8:1:2:3:4:5:6"):
        same(_reply("h.example", "AAAA", ("h.example.", 60, "AAAA", text)), "h.example", "AAAA")
    wire = _reply(
        "example.com",
        "MX",
        ("example.com.", 90, "MX", "10 mx1.example.com.", "20 MX2.Example.COM."),
    )
    assert sorted(same(wire, "example.com", "MX").records) == [
        (10, "mx1.example.com"),
        (20, "mx2.example.com"),
    ]
    wire = _reply(
        "1.2.0.192.in-addr.arpa", "PTR", ("1.2.0.192.in-addr.arpa.", 30, "PTR", "mail.example.")
    )
    assert same(wire, "1.2.0.192.in-addr.arpa", "PTR").records == ("mail.example",)


def test_a_cname_chain_inside_the_reply_and_one_left_to_the_client():
    wire = _reply(
        "alias.example",
        "A",
        ("alias.example.", 300, "CNAME", "mid.example."),
        ("mid.example.", 200, "CNAME", "host.example."),
        ("host.example.", 100, "A", "192.0.2.7"),
    )
    raw = same(wire, "alias.example", "A")
    assert (raw.records, raw.chain, raw.ttl) == (
        ("192.0.2.7",),
        ("mid.example", "host.example"),
        100,
    )
    wire = _reply("alias.example", "A", ("alias.example.", 300, "CNAME", "elsewhere.example."))
    raw = same(wire, "alias.example", "A")
    assert (raw.cname, raw.chain) == ("elsewhere.example", ())
    loop = _reply(
        "a.example",
        "TXT",
        ("a.example.", 300, "CNAME", "b.example."),
        ("b.example.", 300, "CNAME", "a.example."),
    )
    same(loop, "a.example", "TXT")


def test_negative_replies_carry_the_soa_negative_ttl():
    nx = same(
        _reply("gone.example", "TXT", rcode=dns.rcode.NXDOMAIN, authority=[SOA]),
        "gone.example",
        "TXT",
    )
    assert (nx.rcode, nx.records, nx.ttl) == ("NXDOMAIN", (), 120)
    nodata = same(_reply("example", "TXT", authority=[(*SOA[:1], 60, *SOA[2:])]), "example", "TXT")
    assert (nodata.rcode, nodata.ttl) == ("NOERROR", 60)
    bare = same(_reply("example", "TXT", rcode=dns.rcode.NXDOMAIN), "example", "TXT")
    assert bare.ttl is None


def test_server_failures_are_their_rcode():
    for rcode in (dns.rcode.SERVFAIL, dns.rcode.REFUSED, dns.rcode.FORMERR):
        raw = same(_reply("x.example", "A", rcode=rcode), "x.example", "A")
        assert raw.rcode == dns.rcode.to_text(rcode)


def test_records_of_another_class_are_ignored():
    query = dns.message.from_wire(_query("x.example", "TXT"))
    reply = dns.message.make_response(query)
    reply.answer.append(dns.rrset.from_text("x.example.", 5, "CH", "TXT", '"chaos"'))
    reply.answer.append(dns.rrset.from_text("x.example.", 9, "IN", "TXT", '"in"'))
    assert same(reply.to_wire(), "x.example", "TXT").records == ((b"in",),)


def test_a_truncated_reply_says_so():
    wire = _reply("big.example", "TXT", flags=dns.flags.TC)
    assert read_reply(
        wire, QID, _query("big.example", "TXT")[12:-15], "big.example", "TXT"
    ).truncated


@pytest.mark.parametrize(
    "wire",
    [
        b"\x00\x01garbage",
        _reply("x.example", "SRV", ("x.example.", 5, "SRV", "0 5 25 mx.example.")),
        _reply("x.example", "TXT", ("x\\032y.x.example.", 5, "TXT", '"escaped owner"')),
        _reply("other.example", "TXT"),  # a reply to another question
    ],
)
def test_what_only_dnspython_reads_the_same_is_left_to_it(wire):
    name = "x.example"
    rdtype = "SRV" if b"\x00\x21\x00\x01" in wire[12:40] else "TXT"
    with pytest.raises(Unsupported):
        read_reply(wire, QID, _query(name, rdtype)[12:-15], name, rdtype)


def test_a_reply_with_another_id_is_not_ours():
    wire = bytearray(_reply("x.example", "A", ("x.example.", 5, "A", "192.0.2.1")))
    wire[0:2] = b"\x43\x21"
    with pytest.raises(Unsupported):
        read_reply(bytes(wire), QID, _query("x.example", "A")[12:-15], "x.example", "A")


@settings(max_examples=150, deadline=None)
@given(
    texts=st.lists(st.lists(st.binary(max_size=40), min_size=1, max_size=3), max_size=4),
    addresses=st.lists(st.ip_addresses(v=4).map(str), max_size=4),
    ttl=st.integers(0, 2**31 - 1),
)
def test_any_txt_and_address_reply_reads_as_dnspython_reads_it(texts, addresses, ttl):
    txt = [" ".join('"' + "".join(f"\\{b:03d}" for b in s) + '"' for s in rec) for rec in texts]
    if txt:
        same(_reply("r.example", "TXT", ("r.example.", ttl, "TXT", *txt)), "r.example", "TXT")
    if addresses:
        same(_reply("r.example", "A", ("r.example.", ttl, "A", *addresses)), "r.example", "A")


def test_a_do_reply_with_dnssec_records_is_left_to_dnspython():
    nsec = ("x.example.", 300, "NSEC", "z.example. A RRSIG NSEC")
    wire = _reply("x.example", "MX", rcode=dns.rcode.NOERROR, authority=[SOA, nsec])
    qname = _query("x.example", "MX", True)[12:-15]
    with pytest.raises(Unsupported):
        read_reply(wire, QID, qname, "x.example", "MX", unsigned=True)
    # the same reply to a question without DO: the proof is not needed, the answer is read
    assert read_reply(wire, QID, qname, "x.example", "MX").rcode == "NOERROR"
    sig = "MX 13 2 300 20300101000000 20200101000000 12345 example. " + "A" * 88
    signed = _reply(
        "x.example",
        "MX",
        ("x.example.", 300, "MX", "10 mx.example."),
        ("x.example.", 300, "RRSIG", sig),
    )
    with pytest.raises(Unsupported):
        read_reply(signed, QID, qname, "x.example", "MX", unsigned=True)
