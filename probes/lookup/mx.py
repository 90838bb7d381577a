"""The MX set of a domain, through the resolver door: null MX (RFC 7505), implicit MX (RFC 5321
§5.1), IP-literal exchanges, and each host's A/AAAA.

One answer to "where does mail for this domain go", used by dns.mx, dns.ptr (the MX
addresses), dns.dane (the host names), the endpoint machinery (which hosts smtp.* connects to)
and message.receiver (its greeting name). All go through the run's door, so a run asks each
question once.

- `mx_set(domain, answer)` reads an MX answer (pure); `ask_mx(domain, dns)` asks and reads it.
- `resolve_hosts(mxs, dns)` adds A and AAAA of every host, asked at once; `walk_mx` does both.
- `MxSet.hosts` are the deliverable hosts by preference, at most MAX_MX_HOSTS (the rest are
  counted in `skipped`); `MxSet.exchanges` all of their names. Nothing here raises for a DNS
  failure: check `answer.ok` and each host's `failures`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, replace

from probes.net.dns import NXDOMAIN, DnsAnswer, DnsClient, normalize_name

# More MX hosts than this are not checked (a hostile MX set could hold thousands); the
# evidence says so. Real domains publish a handful.
MAX_MX_HOSTS = 32


@dataclass(frozen=True)
class MxHost:
    """One host mail for the domain goes to, with its address answers once resolved."""

    name: str  # the exchange as published (normalized); the domain itself for implicit MX
    preference: int
    ip_literal: str | None = None  # the address when the exchange is an IP literal
    a: DnsAnswer | None = None
    aaaa: DnsAnswer | None = None

    @property
    def answers(self) -> tuple[DnsAnswer, ...]:
        return tuple(ans for ans in (self.a, self.aaaa) if ans is not None)

    @property
    def addresses(self) -> tuple[str, ...]:
        """The host's addresses (the literal itself for an IP-literal exchange)."""
        if self.ip_literal is not None:
            return (self.ip_literal,)
        return tuple(str(r) for ans in self.answers if ans.ok for r in ans.records)

    @property
    def cnames(self) -> tuple[str, ...]:
        """The alias chain the host name went through (empty when it is no alias)."""
        for ans in self.answers:
            if ans.cnames:
                return ans.cnames
        return ()

    @property
    def failures(self) -> tuple[DnsAnswer, ...]:
        return tuple(ans for ans in self.answers if not ans.ok)


@dataclass(frozen=True)
class MxSet:
    """What the MX question said, and the hosts mail would go to."""

    domain: str
    answer: DnsAnswer  # the MX answer (may be a failure: check answer.ok)
    records: tuple[tuple[int, str], ...] = ()  # (preference, exchange) as published, sorted
    null: bool = False  # a "." exchange is present
    implicit: bool = False  # no MX records: the domain itself is the host (RFC 5321 §5.1)
    hosts: tuple[MxHost, ...] = ()  # deliverable hosts ("." excluded), by preference
    skipped: int = 0  # hosts beyond MAX_MX_HOSTS, not checked

    @property
    def only_null(self) -> bool:
        return self.null and all(host == "." for _, host in self.records)

    @property
    def exchanges(self) -> tuple[str, ...]:
        """Every deliverable exchange name ("." excluded), by preference, without repeats and
        without the MAX_MX_HOSTS cap (the domain itself for implicit MX)."""
        if not self.records:
            return tuple(host.name for host in self.hosts)
        names: list[str] = []
        for _pref, name in self.records:
            if name != "." and name not in names:
                names.append(name)
        return tuple(names)


def ip_literal(host: str) -> str | None:
    """The address when an MX exchange is an IP literal ("192.0.2.1", "[192.0.2.1]")."""
    text = host.strip().rstrip(".")
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
        if text.lower().startswith("ipv6:"):
            text = text[5:]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def mx_set(domain: str, answer: DnsAnswer) -> MxSet:
    """The MX set from an MX answer (pure). Hosts are not resolved yet."""
    domain = normalize_name(domain)
    if not answer.ok:
        return MxSet(domain, answer)
    records: list[tuple[int, str]] = []
    for rec in answer.records:
        if isinstance(rec, tuple) and len(rec) == 2:
            records.append((int(rec[0]), normalize_name(str(rec[1]))))
    records.sort()
    if not records:
        implicit = answer.rcode != NXDOMAIN
        hosts = (MxHost(domain, 0),) if implicit else ()
        return MxSet(domain, answer, (), implicit=implicit, hosts=hosts)
    seen: set[str] = set()
    hosts_list: list[MxHost] = []
    for pref, name in records:
        if name == "." or name in seen:
            continue
        seen.add(name)
        hosts_list.append(MxHost(name, pref, ip_literal(name)))
    null = any(name == "." for _, name in records)
    return MxSet(
        domain,
        answer,
        tuple(records),
        null=null,
        hosts=tuple(hosts_list[:MAX_MX_HOSTS]),
        skipped=max(0, len(hosts_list) - MAX_MX_HOSTS),
    )


def resolve_hosts(mxs: MxSet, dns: DnsClient) -> MxSet:
    """The same set with A and AAAA of every host, all asked at once (IP literals are not)."""
    names = [host.name for host in mxs.hosts if host.ip_literal is None]
    answers = dns.query_many([(name, rdtype) for name in names for rdtype in ("A", "AAAA")])
    by_name = {name: (answers[2 * i], answers[2 * i + 1]) for i, name in enumerate(names)}
    hosts = tuple(
        replace(host, a=by_name[host.name][0], aaaa=by_name[host.name][1])
        if host.name in by_name
        else host
        for host in mxs.hosts
    )
    return replace(mxs, hosts=hosts)


def ask_mx(domain: str, dns: DnsClient) -> MxSet:
    """The MX set of `domain` (hosts not resolved). Never raises for DNS problems."""
    domain = normalize_name(domain)
    return mx_set(domain, dns.query(domain, "MX"))


def walk_mx(domain: str, dns: DnsClient) -> MxSet:
    """MX, then A/AAAA of every host. Never raises for DNS problems: check `answer.ok` and
    each host's `failures`."""
    return resolve_hosts(ask_mx(domain, dns), dns)


def format_records(records: Iterable[tuple[int, str]]) -> str:
    return ", ".join(f"{pref} {name if name == '.' else name + '.'}" for pref, name in records)


__all__ = [
    "MAX_MX_HOSTS",
    "MxHost",
    "MxSet",
    "ask_mx",
    "format_records",
    "ip_literal",
    "mx_set",
    "resolve_hosts",
    "walk_mx",
]
