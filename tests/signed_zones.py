"""DNSSEC-signed zones built in-process with dnspython, answered like a recursive resolver.

`ZoneBackend` is a DnsClient backend: it builds a real DNS reply (answer with RRSIGs; SOA and
NSEC with RRSIGs for a negative answer) and hands it to probes.net.dns.interpret, the same
path the wire backend takes.
"""

from __future__ import annotations

import shlex
import time

import dns.dnssec
import dns.message
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone
from cryptography.hazmat.primitives.asymmetric import ec

from probes.net.dns import NXDOMAIN, RawAnswer, interpret, normalize_name

ALGORITHM = dns.dnssec.Algorithm.ECDSAP256SHA256


def make_key(flags: int = 257):
    private = ec.generate_private_key(ec.SECP256R1())
    return private, dns.dnssec.make_dnskey(private.public_key(), ALGORITHM, flags=flags)


def build_zone(origin: str, text: str) -> dns.zone.Zone:
    soa = (
        f"@ 300 IN SOA ns.{origin}. hostmaster.{origin}. 1 3600 600 86400 300\n"
        f"@ 300 IN NS ns.{origin}.\n"
    )
    return dns.zone.from_text(soa + text, origin=origin + ".", relativize=False)


def sign(zone: dns.zone.Zone, key, *, expired: bool = False) -> None:
    now = time.time()
    if expired:
        inception, expiration = now - 20 * 86400, now - 86400
    else:
        inception, expiration = now - 3600, now + 30 * 86400
    with zone.writer() as txn:
        dns.dnssec.sign_zone(
            zone, txn, keys=[key], inception=inception, expiration=expiration, dnskey_ttl=300
        )


def ds_text(origin: str, dnskey) -> str:
    return dns.dnssec.make_ds(origin + ".", dnskey, "SHA256").to_text()


class ZoneBackend:
    """Answers from zones; the zone with the longest matching origin answers, except DS,
    which the parent answers (as a resolver would)."""

    def __init__(self, zones: list[dns.zone.Zone]) -> None:
        self.zones = {normalize_name(z.origin.to_text()): z for z in zones}
        self.asked: list[tuple[str, str]] = []

    def describe(self) -> str:
        return "signed test zones"

    def describe_dig(self, name: str, rdtype: str) -> str:
        return f"dig +dnssec {rdtype} {shlex.quote(name)}"

    def _zone_for(self, name: str, rdtype: str) -> dns.zone.Zone | None:
        best = None
        for origin in self.zones:
            if rdtype == "DS" and name == origin:
                continue
            under = origin == "." or name == origin or name.endswith("." + origin)
            if under and (best is None or len(origin) > len(best)):
                best = origin
        return self.zones.get(best) if best else None

    def resolve(self, name: str, rdtype: str) -> RawAnswer:
        self.asked.append((name, rdtype))
        qname = dns.name.from_text(name)
        query = dns.message.make_query(qname, rdtype, want_dnssec=True)
        reply = dns.message.make_response(query)
        zone = self._zone_for(name, rdtype)
        if zone is None:
            reply.set_rcode(dns.rcode.REFUSED)
            return interpret(reply, name, rdtype)
        qtype = dns.rdatatype.from_text(rdtype)
        node = zone.get_node(qname)
        if node is not None:
            rds = node.get_rdataset(dns.rdataclass.IN, qtype)
            if rds is not None:
                reply.answer.append(dns.rrset.from_rdata_list(qname, rds.ttl, list(rds)))
                sig = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.RRSIG, qtype)
                if sig is not None:
                    reply.answer.append(dns.rrset.from_rdata_list(qname, sig.ttl, list(sig)))
                return interpret(reply, name, rdtype)
        else:
            reply.set_rcode(dns.rcode.NXDOMAIN)
        self._authority(zone, qname, reply)
        return interpret(reply, name, rdtype)

    def _authority(self, zone: dns.zone.Zone, qname: dns.name.Name, reply) -> None:
        apex = zone.get_node(zone.origin)
        nsec_owner = None
        for owner in sorted(zone.nodes):
            owner = owner if owner.is_absolute() else owner.concatenate(zone.origin)
            if owner <= qname and zone.get_rdataset(owner, dns.rdatatype.NSEC) is not None:
                nsec_owner = owner
        for owner, rdtype in ((zone.origin, dns.rdatatype.SOA), (nsec_owner, dns.rdatatype.NSEC)):
            if owner is None:
                continue
            node = apex if owner == zone.origin else zone.get_node(owner)
            rds = node.get_rdataset(dns.rdataclass.IN, rdtype)
            if rds is None:
                continue
            reply.authority.append(dns.rrset.from_rdata_list(owner, rds.ttl, list(rds)))
            sig = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.RRSIG, rdtype)
            if sig is not None:
                reply.authority.append(dns.rrset.from_rdata_list(owner, sig.ttl, list(sig)))


__all__ = ["NXDOMAIN", "ZoneBackend", "build_zone", "ds_text", "make_key", "sign"]
