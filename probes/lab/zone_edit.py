"""Change a running lab's DNS records live (RFC 2136 dynamic updates to its Knot server).

    with ZoneEditor(info.resolver, zones=[info.domain, "reports.test"]) as zone:
        zone.replace("_dmarc.example.test", "TXT", '"v=DMARC1; p=none"')
        ...                                   # probe the changed lab
    # leaving the block puts every touched (name, type) back as it was

Names are absolute (with or without the trailing dot); the zone of a name is the longest
zone in `zones` it falls under, or for reverse names the /24 zone Knot serves (the lab's
reverse zones are `C.B.A.in-addr.arpa`). Values are zone-file rdata text.
"""

from __future__ import annotations

from collections.abc import Iterable

import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.update

from probes.net import parse_resolver

TTL = 60
TIMEOUT = 5.0


class ZoneEditError(RuntimeError):
    """The lab DNS refused an update or a query."""


class ZoneEditor:
    def __init__(self, resolver: str, zones: Iterable[str]) -> None:
        self.server, self.port = parse_resolver(resolver)
        self.zones = sorted({z.rstrip(".").lower() for z in zones}, key=len, reverse=True)
        self._originals: dict[tuple[str, str], list[str]] = {}

    def __enter__(self) -> ZoneEditor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()

    # --- changes ----------------------------------------------------------------------------

    def replace(self, name: str, rdtype: str, *values: str) -> None:
        """Make `values` the whole rrset of (name, rdtype); no values deletes it."""
        name = self._absolute(name)
        self._remember(name, rdtype)
        update = dns.update.UpdateMessage(self.zone_of(name))
        update.delete(name, rdtype)
        for value in values:
            update.add(name, TTL, rdtype, value)
        self._send(update, f"replace {rdtype} {name}")

    def delete(self, name: str, rdtype: str) -> None:
        self.replace(name, rdtype)

    def restore(self) -> None:
        """Put every (name, type) touched since the last restore back as it was.

        Newest change first: a CNAME added where a TXT was deleted must go before the TXT
        can come back (a server ignores other data added next to a CNAME).
        """
        originals, self._originals = self._originals, {}
        for (name, rdtype), values in reversed(list(originals.items())):
            update = dns.update.UpdateMessage(self.zone_of(name))
            update.delete(name, rdtype)
            for value in values:
                update.add(name, TTL, rdtype, value)
            self._send(update, f"restore {rdtype} {name}")

    # --- helpers ----------------------------------------------------------------------------

    def current(self, name: str, rdtype: str) -> list[str]:
        """The rrset as the server has it now (rdata text), empty when absent."""
        query = dns.message.make_query(self._absolute(name), rdtype)
        response = dns.query.tcp(query, self.server, timeout=TIMEOUT, port=self.port)
        rcode = response.rcode()
        if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            raise ZoneEditError(f"{rdtype} {name}: {dns.rcode.to_text(rcode)}")
        qname = dns.name.from_text(self._absolute(name))
        wanted = dns.rdatatype.from_text(rdtype)
        return [
            rdata.to_text()
            for rrset in response.answer
            if rrset.name == qname and rrset.rdtype == wanted
            for rdata in rrset
        ]

    def zone_of(self, name: str) -> str:
        bare = name.rstrip(".").lower()
        if bare.endswith(".in-addr.arpa"):
            return bare.split(".", 1)[1] + "."
        for zone in self.zones:
            if bare == zone or bare.endswith("." + zone):
                return zone + "."
        raise ZoneEditError(f"{name}: not in any lab zone ({', '.join(self.zones)})")

    def _remember(self, name: str, rdtype: str) -> None:
        key = (name, rdtype.upper())
        if key not in self._originals:
            self._originals[key] = self.current(name, rdtype)

    def _send(self, update: dns.update.UpdateMessage, what: str) -> None:
        response = dns.query.tcp(update, self.server, timeout=TIMEOUT, port=self.port)
        if response.rcode() != dns.rcode.NOERROR:
            raise ZoneEditError(f"{what}: {dns.rcode.to_text(response.rcode())}")

    @staticmethod
    def _absolute(name: str) -> str:
        return name.rstrip(".").lower() + "."
