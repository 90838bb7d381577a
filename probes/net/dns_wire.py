"""DNS messages without dnspython's object model, for the door's common case (issue 17).

dnspython builds a query as a Message of Name, Rdataset and enum objects, and parses a reply
into the same; for the door's usual question (one name, one type, a handful of A, AAAA, TXT,
MX, PTR or CNAME records back) that costs about 170 µs of CPU per query, most of a domain's
DNS cost. Here a query is a few bytes joined (`build_query`), and a reply is read straight
into the door's record form (`read_reply`), with the same meaning as
`probes.net.dns.interpret` gives dnspython's parse. Anything else (another record type in
the answer, an extended rcode, a name with characters dnspython would escape, a malformed
reply) is not guessed at: `read_reply` says `None` and the door parses the reply with
dnspython. Replies to questions asked with DO (DNSSEC validation needs dnspython's rrsets)
always go to dnspython.

Pure: bytes in, values out; no sockets (those are `probes.net.dns.WireBackend`'s).
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from typing import Any

import dns.ipv6

QUERY_FLAGS = 0x0110  # RD | CD (see probes.net.dns.WireBackend)
OPT = 41
CLASS_IN = 1
DO_BIT = 0x8000

TYPE_CODES = {
    "A": 1,
    "NS": 2,
    "CNAME": 5,
    "SOA": 6,
    "PTR": 12,
    "MX": 15,
    "TXT": 16,
    "AAAA": 28,
    "SRV": 33,
    "DS": 43,
    "RRSIG": 46,
    "NSEC": 47,
    "DNSKEY": 48,
    "NSEC3": 50,
    "TLSA": 52,
    "SPF": 99,
    "ANY": 255,
    "CAA": 257,
}
_A, _NS, _CNAME, _SOA, _PTR, _MX, _TXT, _AAAA, _SPF = 1, 2, 5, 6, 12, 15, 16, 28, 99
_NAME_TYPES = (_NS, _CNAME, _PTR)
_DNSSEC_RECORDS = (46, 47, 50)  # RRSIG, NSEC, NSEC3 (an answer's RRSIG is Unsupported anyway)
# The rcodes 0-10 (RFC 1035, 2136); above that dnspython's parse is used.
RCODES = (
    "NOERROR",
    "FORMERR",
    "SERVFAIL",
    "NXDOMAIN",
    "NOTIMP",
    "REFUSED",
    "YXDOMAIN",
    "YXRRSET",
    "NXRRSET",
    "NOTAUTH",
    "NOTZONE",
)
# Label bytes dnspython prints as they are (Name.to_text escapes the others and ".", "\\",
# '"', "(", ")", ";", "@", "$"): a name made only of these reads the same both ways.
_PLAIN = frozenset(
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_*/+=!#%&',:<>?[]^`{|}~"
)
_HEADER = struct.Struct("!HHHHHH")
_RR = struct.Struct("!HHIH")


class Unsupported(Exception):
    """The reply holds something read_reply leaves to dnspython."""


def build_query(qid: int, name: str, rdtype: str, *, dnssec: bool, payload: int) -> bytes | None:
    """The query for (name, rdtype) with EDNS0 (`payload`), RD and CD, DO when `dnssec`;
    None when the name or type is not in the plain form this builds (dnspython builds it)."""
    code = TYPE_CODES.get(rdtype)
    if code is None:
        return None
    qname = _encode_name(name)
    if qname is None:
        return None
    opt = b"\x00" + _RR.pack(OPT, payload, DO_BIT if dnssec else 0, 0)
    return _HEADER.pack(qid, QUERY_FLAGS, 1, 0, 0, 1) + qname + struct.pack("!HH", code, 1) + opt


def _encode_name(name: str) -> bytes | None:
    if name == ".":
        return b"\x00"
    try:
        raw = name.encode("ascii")
    except UnicodeEncodeError:
        return None
    out = bytearray()
    for label in raw.split(b"."):
        if not label or len(label) > 63 or not _PLAIN.issuperset(label):
            return None
        out.append(len(label))
        out += label
    out.append(0)
    if len(out) > 255:
        return None
    return bytes(out)


@dataclass(frozen=True)
class Reply:
    """A reply read by read_reply: the header facts and, when `records` is not None, the
    answer in the door's form (None: the caller parses the answer with dnspython)."""

    rcode: str
    truncated: bool
    records: tuple[Any, ...] | None = None
    chain: tuple[str, ...] = ()
    cname: str | None = None
    ttl: int | None = None


def check_reply(wire: bytes, qid: int, qname_wire: bytes, qtype: int) -> tuple[int, int]:
    """Raise Unsupported unless `wire` is a reply to our question; return (flags, offset of
    the answer section)."""
    if len(wire) < 12:
        raise Unsupported("reply shorter than a DNS header")
    rid, flags, qd, _an, _ns, _ar = _HEADER.unpack_from(wire)
    if rid != qid or not flags & 0x8000 or (flags >> 11) & 0xF != 0:
        raise Unsupported("not a reply to the query")
    if qd != 1:
        raise Unsupported("question count is not 1")
    end = 12 + len(qname_wire)
    if wire[12:end].lower() != qname_wire.lower() or wire[end : end + 4] != struct.pack(
        "!HH", qtype, 1
    ):
        raise Unsupported("reply to another question")
    return flags, end + 4


def read_reply(
    wire: bytes, qid: int, qname_wire: bytes, name: str, rdtype: str, *, unsigned: bool = False
) -> Reply:
    """The reply to our query for (name, rdtype) (built by build_query as `qname_wire`).

    Raises Unsupported when it is not plainly such a reply, or holds what only dnspython
    reads the same way as `probes.net.dns.interpret` (the caller then uses dnspython). With
    `unsigned` (a question asked with DO), also when its answer or authority section holds
    any DNSSEC record (RRSIG, NSEC, NSEC3): validation needs those as dnspython rrsets."""
    from probes.net.dns import MAX_CNAMES, normalize_name

    qtype = TYPE_CODES[rdtype]
    flags, offset = check_reply(wire, qid, qname_wire, qtype)
    _, _, _, an, ns, ar = _HEADER.unpack_from(wire)
    truncated = bool(flags & 0x0200)
    rcode_code = flags & 0xF
    if truncated:
        return Reply("", True)
    by_owner: dict[tuple[str, int], list[Any]] = {}
    ttl: int | None = None
    for _ in range(an):
        owner, offset = _read_name(wire, offset)
        rtype, rclass, rttl, rdlen = _RR.unpack_from(wire, offset)
        offset += 10
        end = offset + rdlen
        if end > len(wire):
            raise Unsupported("record past the end of the reply")
        ttl = rttl if ttl is None else min(ttl, rttl)
        if rclass == CLASS_IN:
            value = _rdata(wire, offset, end, rtype, normalize_name)
            values = by_owner.setdefault((normalize_name(owner), rtype), [])
            if value not in values:  # an rdataset is a set (dnspython drops duplicates)
                values.append(value)
        offset = end
    negative_ttl: int | None = None
    for _ in range(ns):
        _owner, offset = _read_name(wire, offset)
        rtype, _rclass, rttl, rdlen = _RR.unpack_from(wire, offset)
        offset += 10
        end = offset + rdlen
        if end > len(wire):
            raise Unsupported("record past the end of the reply")
        if unsigned and rtype in _DNSSEC_RECORDS:
            raise Unsupported("DNSSEC records in the authority section")
        if rtype == _SOA and negative_ttl is None:
            pos = _read_name(wire, offset)[1]
            pos = _read_name(wire, pos)[1]
            minimum = struct.unpack_from("!I", wire, pos + 16)[0]
            negative_ttl = min(rttl, minimum)
        offset = end
    for _ in range(ar):
        _owner, offset = _read_name(wire, offset)
        rtype, _rclass, rttl, rdlen = _RR.unpack_from(wire, offset)
        if rtype == OPT and rttl >> 24:
            raise Unsupported("extended rcode")
        offset += 10 + rdlen
    if rcode_code >= len(RCODES):
        raise Unsupported("rcode beyond the basic ones")
    rcode = RCODES[rcode_code]
    if rcode not in ("NOERROR", "NXDOMAIN"):
        return Reply(rcode, False, ())
    # The CNAME chain inside the reply, as interpret() follows it.
    chain: list[str] = []
    current = name
    while (current, _CNAME) in by_owner and qtype != _CNAME:
        target = by_owner[(current, _CNAME)][0]
        if target in chain or target == name or len(chain) > MAX_CNAMES:
            chain.append(target)
            break
        chain.append(target)
        current = target
    records = tuple(by_owner.get((current, qtype), ()))
    cname = chain[-1] if chain and not records else None
    positive = bool(records or chain)
    return Reply(
        rcode,
        False,
        records,
        tuple(chain[:-1]) if cname else tuple(chain),
        cname,
        ttl if positive else negative_ttl,
    )


def _rdata(wire: bytes, start: int, end: int, rtype: int, normalize: Any) -> Any:
    if rtype in (_TXT, _SPF):
        parts = []
        pos = start
        while pos < end:
            size = wire[pos]
            pos += 1
            if pos + size > end:
                raise Unsupported("TXT string past its record")
            parts.append(wire[pos : pos + size])
            pos += size
        if not parts:
            raise Unsupported("empty TXT rdata")
        return tuple(parts)
    if rtype == _A:
        if end - start != 4:
            raise Unsupported("A rdata is not 4 bytes")
        return socket.inet_ntoa(wire[start:end])
    if rtype == _AAAA:
        if end - start != 16:
            raise Unsupported("AAAA rdata is not 16 bytes")
        return dns.ipv6.inet_ntoa(wire[start:end])
    if rtype == _MX:
        preference = struct.unpack_from("!H", wire, start)[0]
        host, pos = _read_name(wire, start + 2)
        if pos != end:
            raise Unsupported("MX rdata length")
        return (preference, normalize(host))
    if rtype in _NAME_TYPES:
        target, pos = _read_name(wire, start)
        if pos != end:
            raise Unsupported("name rdata length")
        return normalize(target)
    raise Unsupported(f"record type {rtype}")


def _read_name(wire: bytes, offset: int) -> tuple[str, int]:
    """The (possibly compressed) name at `offset` as text with a trailing dot, and the offset
    after it."""
    labels: list[bytes] = []
    end = -1
    jumps = 0
    size = 0
    while True:
        if offset >= len(wire):
            raise Unsupported("name past the end of the reply")
        length = wire[offset]
        if length >= 0xC0:
            if offset + 1 >= len(wire):
                raise Unsupported("truncated compression pointer")
            if end < 0:
                end = offset + 2
            jumps += 1
            if jumps > 64:
                raise Unsupported("compression loop")
            offset = ((length & 0x3F) << 8) | wire[offset + 1]
            continue
        if length > 63:
            raise Unsupported("label type")
        offset += 1
        if length == 0:
            break
        label = wire[offset : offset + length]
        if len(label) != length or not _PLAIN.issuperset(label):
            raise Unsupported("label dnspython would escape")
        labels.append(label)
        size += length + 1
        if size > 255:
            raise Unsupported("name longer than 255 bytes")
        offset += length
    if end < 0:
        end = offset
    if not labels:
        return ".", end
    return b".".join(labels).decode("ascii") + ".", end


__all__ = ["Reply", "Unsupported", "build_query", "check_reply", "read_reply"]
