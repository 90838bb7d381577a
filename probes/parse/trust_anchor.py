"""DNSSEC trust anchors: DS or DNSKEY records in zone-file syntax (`--trust-anchor FILE`).

Pure: text in, dnspython rrsets out. Each record must be a DS or DNSKEY of class IN with an
absolute owner name; anything else raises `TrustAnchorError` naming the source and the line.
The default is the IANA root anchor shipped as package data (probes/data/root-anchors.zone).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import dns.exception
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zonefile

MAX_ANCHOR_BYTES = 1024 * 1024
ROOT_ANCHOR = "root-anchors.zone"


class TrustAnchorError(ValueError):
    """A trust anchor that cannot be used; the message names the source and the line."""


@dataclass(frozen=True)
class TrustAnchors:
    """Trust anchors by zone: each zone's DS and/or DNSKEY rrsets, and where they came from."""

    source: str
    rrsets: tuple[dns.rrset.RRset, ...]

    @property
    def zones(self) -> tuple[str, ...]:
        return tuple(sorted({_zone_text(r.name) for r in self.rrsets}))

    def for_zone(self, zone: str) -> list[dns.rrset.RRset]:
        return [r for r in self.rrsets if _zone_text(r.name) == zone]

    def closest(self, name: str) -> str | None:
        """The anchored zone that is the closest ancestor-or-self of `name`, or None."""
        best: str | None = None
        for zone in self.zones:
            if _is_under(name, zone) and (best is None or len(zone) > len(best)):
                best = zone
        return best

    def to_text(self) -> str:
        return "\n".join(r.to_text() for r in self.rrsets)


def _zone_text(name: dns.name.Name) -> str:
    text = name.to_text(omit_final_dot=True).lower()
    return text or "."


def _is_under(name: str, zone: str) -> bool:
    return zone == "." or name == zone or name.endswith("." + zone)


def parse_trust_anchor(text: str, source: str = "<trust anchor>") -> TrustAnchors:
    """Parse DS/DNSKEY records; TrustAnchorError("<source>:<line>: …") when malformed."""
    rrsets: list[dns.rrset.RRset] = []
    lines = text.splitlines()
    for number, line in enumerate(lines, start=1):
        body = _strip_comment(line).strip()
        if not body:
            continue
        if "(" in body or ")" in body:
            raise TrustAnchorError(
                f"{source}:{number}: write each record on one line (no parentheses)"
            )
        if line[:1].isspace():
            raise TrustAnchorError(f"{source}:{number}: a record must start with its owner name")
        try:
            (rrset,) = dns.zonefile.read_rrsets(
                body, rdclass=None, default_rdclass="IN", default_ttl=0, origin=dns.name.root
            )
        except (dns.exception.DNSException, ValueError, TypeError, UnicodeError) as exc:
            raise TrustAnchorError(f"{source}:{number}: {exc}".replace("<input>:1: ", "")) from None
        if rrset.rdclass != dns.rdataclass.IN:
            raise TrustAnchorError(f"{source}:{number}: class must be IN")
        if rrset.rdtype not in (dns.rdatatype.DS, dns.rdatatype.DNSKEY):
            kind = dns.rdatatype.to_text(rrset.rdtype)
            raise TrustAnchorError(f"{source}:{number}: {kind} is not a DS or DNSKEY record")
        for existing in rrsets:
            if existing.name == rrset.name and existing.rdtype == rrset.rdtype:
                existing.union_update(rrset)
                break
        else:
            rrsets.append(rrset)
    if not rrsets:
        raise TrustAnchorError(f"{source}: no DS or DNSKEY record")
    return TrustAnchors(source, tuple(rrsets))


def _strip_comment(line: str) -> str:
    # DS/DNSKEY rdata has no quoted strings: everything after ';' is a comment.
    return line.split(";", 1)[0]


def load_trust_anchor(path: str | None) -> TrustAnchors:
    """The anchors in `path`, or the packaged IANA root anchor when None."""
    if path is None:
        text = resources.files("probes").joinpath("data", ROOT_ANCHOR).read_text("utf-8")
        return parse_trust_anchor(text, "IANA root anchor (" + ROOT_ANCHOR + ")")
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_ANCHOR_BYTES + 1)
    except OSError as exc:
        raise TrustAnchorError(f"{path}: {exc.strerror or exc}") from None
    if len(data) > MAX_ANCHOR_BYTES:
        raise TrustAnchorError(f"{path}: larger than {MAX_ANCHOR_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise TrustAnchorError(f"{path}:{line}: not UTF-8 text") from None
    return parse_trust_anchor(text, path)
