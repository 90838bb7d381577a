"""Reverse DNS through the resolver door: reverse names, PTR, and forward confirmation (FCrDNS).

For an address: PTR at its reverse name (IPv4 in-addr.arpa, IPv6 ip6.arpa), then each PTR name
(at most MAX_PTR_NAMES) resolved forward, A for IPv4 and AAAA for IPv6; the address is
confirmed when one of them gives it back. A forward answer that is BADNAME (the PTR name is not
a valid DNS name) or CNAME_LOOP resolves to nothing; any other failure leaves the question open.

- `confirm(dns, ptrs)`: FCrDNS of several addresses from their PTR questions in flight (the
  caller asks those when it suits it, e.g. together with other questions); each address's
  forward questions go out as soon as its PTR answer is in, all before any is waited for.
- `fcrdns(dns, ip)`: PTR, then `confirm`, for one address.
- `iprev(ip, dns)`: the RFC 8601 iprev verdict (pass, fail, permerror, temperror) from it.

Used by dns.ptr (findings per address) and message.receiver (iprev of the sending peer).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass

import dns.reversename

from probes.net.dns import BADNAME, CNAME_LOOP, DnsAnswer, DnsClient, normalize_name

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_PTR_NAMES = 8  # PTR names of one address resolved forward; the rest are not checked
# Forward answers that are judgements, not failures: the name cannot resolve to anything.
UNRESOLVABLE = (BADNAME, CNAME_LOOP)


def reverse_name(ip: IPAddress) -> str:
    return normalize_name(dns.reversename.from_address(str(ip)).to_text())


def forward_type(ip: IPAddress) -> str:
    """The record type that confirms a PTR name: A for IPv4, AAAA for IPv6."""
    return "A" if ip.version == 4 else "AAAA"


def same_address(text: object, ip: IPAddress) -> bool:
    try:
        return ipaddress.ip_address(str(text)) == ip
    except ValueError:
        return False


def confirms(answer: DnsAnswer, ip: IPAddress) -> bool:
    """Does this forward answer give `ip` back?"""
    return answer.ok and any(same_address(r, ip) for r in answer.records)


@dataclass(frozen=True)
class Fcrdns:
    """PTR of one address and the forward answers of its first MAX_PTR_NAMES PTR names."""

    ip: IPAddress
    ptr: DnsAnswer
    forward: tuple[tuple[str, DnsAnswer], ...] = ()  # (PTR name, its A/AAAA answer), in order

    @property
    def rdtype(self) -> str:
        return forward_type(self.ip)

    @property
    def names(self) -> tuple[str, ...]:
        """Every PTR name (empty when the PTR lookup failed or found nothing)."""
        return tuple(str(n) for n in self.ptr.records) if self.ptr.ok else ()

    @property
    def checked(self) -> tuple[str, ...]:
        return self.names[:MAX_PTR_NAMES]

    @property
    def confirmed_by(self) -> str | None:
        """The first PTR name that resolves back to the address."""
        for name, answer in self.forward:
            if confirms(answer, self.ip):
                return name
        return None

    @property
    def forward_failure(self) -> tuple[str, DnsAnswer] | None:
        """The first forward lookup that failed (not BADNAME/CNAME_LOOP): it might have
        confirmed the address."""
        for name, answer in self.forward:
            if not answer.ok and answer.rcode not in UNRESOLVABLE:
                return name, answer
        return None


def confirm(dns: DnsClient, ptrs: Mapping[IPAddress, Future[DnsAnswer]]) -> dict[IPAddress, Fcrdns]:
    """FCrDNS of every address from its PTR question (a door Future), in the order given."""
    asked: dict[tuple[str, str], Future[DnsAnswer]] = {}
    answers: dict[IPAddress, DnsAnswer] = {}
    for ip, future in ptrs.items():
        answers[ip] = answer = future.result()
        if answer.ok:
            for name in answer.records[:MAX_PTR_NAMES]:
                key = (str(name), forward_type(ip))
                if key not in asked:
                    asked[key] = dns.submit(*key)
    out: dict[IPAddress, Fcrdns] = {}
    for ip, answer in answers.items():
        check = Fcrdns(ip, answer)
        forward = tuple((name, asked[(name, check.rdtype)].result()) for name in check.checked)
        out[ip] = Fcrdns(ip, answer, forward)
    return out


def fcrdns(dns: DnsClient, ip: IPAddress) -> Fcrdns:
    """PTR of `ip`, then its names forward."""
    return confirm(dns, {ip: dns.submit(reverse_name(ip), "PTR")})[ip]


@dataclass(frozen=True)
class Iprev:
    """The iprev verdict for one IP (RFC 8601 §3 / RFC 8601 §2.7.3)."""

    ip: str
    result: str  # pass | fail | permerror | temperror
    reason: str
    names: tuple[str, ...] = ()  # the PTR names
    confirmed_by: str | None = None  # the PTR name that resolves back (pass)


def iprev(ip: str, dns: DnsClient) -> Iprev:
    """PTR of `ip`, then A (AAAA for IPv6) of each PTR name (at most MAX_PTR_NAMES) back to it."""
    check = fcrdns(dns, ipaddress.ip_address(ip))
    if not check.ptr.ok:
        return Iprev(ip, "temperror", f"PTR lookup failed ({check.ptr.rcode})")
    names = check.names
    if not names:
        return Iprev(ip, "permerror", f"no PTR record ({check.ptr.rcode})")
    confirmed = check.confirmed_by
    if confirmed is not None:
        return Iprev(ip, "pass", f"{confirmed} resolves back to {ip}", names, confirmed)
    failed = check.forward_failure
    if failed is not None:
        name, answer = failed
        return Iprev(
            ip, "temperror", f"{check.rdtype} {name} lookup failed ({answer.rcode})", names
        )
    checked = ", ".join(check.checked)
    return Iprev(ip, "fail", f"no PTR name ({checked}) resolves back to {ip}", names)


__all__ = [
    "MAX_PTR_NAMES",
    "UNRESOLVABLE",
    "Fcrdns",
    "IPAddress",
    "Iprev",
    "confirm",
    "confirms",
    "fcrdns",
    "forward_type",
    "iprev",
    "reverse_name",
    "same_address",
]
