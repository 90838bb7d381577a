"""dns.mx: the domain's MX set, null MX (RFC 7505), implicit MX, and each MX host's addresses.

The walk is two levels deep: the MX question, then A and AAAA of every MX host at once.
`walk_mx` is shared with dns.ptr (which needs the MX addresses) and `mx_set` with dns.dane
(which needs only the host names); both go through the run's resolver door, so a run that
includes dns.mx asks nothing twice.

Codes:
- MX_PRESENT [info] the MX set and each host's addresses (evidence).
- MX_NULL [info] a null MX ("0 .", RFC 7505): the domain accepts no mail.
- MX_NULL_MIXED [fail] a null MX published together with other MX records (RFC 7505 §3:
  a domain that advertises a null MX MUST NOT advertise any other MX); the other hosts are
  still checked.
- MX_IMPLICIT [info] no MX records: senders fall back to the domain's own A/AAAA (RFC 5321
  §5.1), which exist.
- MX_MISSING [fail] no MX records and no A/AAAA to fall back to (or the domain does not exist).
- MX_HOST_UNRESOLVABLE [fail] an MX host has neither A nor AAAA (subject: the host).
- MX_IS_IP_OR_CNAME [warn] an MX target is an IP literal (not looked up as a name: no
  delegated top-level label is numeric) or an alias (RFC 2181 §10.3, RFC 5321 §5.1).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from probes.codes import Code, declare
from probes.model import Finding, Severity, Target
from probes.net import Net
from probes.net.dns import NXDOMAIN, DnsAnswer, DnsClient, normalize_name
from probes.probe import BaseProbe

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


def walk_mx(domain: str, dns: DnsClient) -> MxSet:
    """MX, then A/AAAA of every host. Never raises for DNS problems: check `answer.ok` and
    each host's `failures`."""
    domain = normalize_name(domain)
    return resolve_hosts(mx_set(domain, dns.query(domain, "MX")), dns)


def format_records(records: Iterable[tuple[int, str]]) -> str:
    return ", ".join(f"{pref} {name if name == '.' else name + '.'}" for pref, name in records)


def _rcode_text(ans: DnsAnswer | None) -> str:
    if ans is None:
        return "not asked"
    return f"{ans.rcode}, no records" if ans.ok else ans.rcode


class DnsMx(BaseProbe):
    id = "dns.mx"
    description = "MX set: null MX, implicit MX fallback, MX hosts resolvable, no IP/CNAME"
    codes = declare(
        Code("MX_PRESENT", "the MX set and each host's addresses", Severity.INFO),
        Code("MX_NULL", "RFC 7505 null MX (`0 .`): the domain receives no mail", Severity.INFO),
        Code(
            "MX_NULL_MIXED",
            "a null MX next to other MX records (RFC 7505 §3: it must be the only one)",
            Severity.FAIL,
        ),
        Code(
            "MX_IMPLICIT",
            "no MX: the domain's own A/AAAA is used (RFC 5321 §5.1)",
            Severity.INFO,
        ),
        Code(
            "MX_MISSING",
            "no MX and no usable A/AAAA fallback, for a domain meant to receive mail",
            Severity.FAIL,
        ),
        Code("MX_HOST_UNRESOLVABLE", "an MX host has neither A nor AAAA", Severity.FAIL),
        Code("MX_IS_IP_OR_CNAME", "an MX target is an IP literal or a CNAME", Severity.WARN),
    )

    def run(self, target: Target, net: Net) -> Iterator[Finding]:
        dns = net.dns
        domain = normalize_name(target.domain)
        mxs = walk_mx(domain, dns)
        mxs.answer.raise_for_failure()
        dig_mx = dns.dig(domain, "MX")
        failures: list[DnsAnswer] = []

        if mxs.answer.rcode == NXDOMAIN:
            yield self.finding(
                "MX_MISSING",
                Severity.FAIL,
                f"{domain} does not exist (NXDOMAIN): it cannot receive mail",
                evidence={"domain": domain, "MX": "NXDOMAIN"},
                reproduce=dig_mx,
            )
            return

        if mxs.implicit:
            yield from self._implicit(mxs, dns)
            return

        if mxs.only_null:
            pref = mxs.records[0][0]
            note = "" if pref == 0 else f" (preference {pref}; RFC 7505 asks for 0)"
            yield self.finding(
                "MX_NULL",
                Severity.INFO,
                f"{domain} publishes a null MX: it accepts no mail{note}",
                evidence={"mx": format_records(mxs.records)},
                reproduce=dig_mx,
            )
            return

        evidence = {"mx": format_records(mxs.records)}
        if mxs.skipped:
            evidence["not_checked"] = f"{mxs.skipped} hosts beyond the first {MAX_MX_HOSTS}"
        evidence["addresses"] = "; ".join(
            f"{host.name}: {' '.join(host.addresses) or '-'}" for host in mxs.hosts
        )
        yield self.finding(
            "MX_PRESENT",
            Severity.INFO,
            f"{domain} has {len(mxs.records)} MX record(s)",
            evidence=evidence,
            reproduce=dig_mx,
        )
        if mxs.null:
            yield self.finding(
                "MX_NULL_MIXED",
                Severity.FAIL,
                f"{domain} publishes a null MX together with other MX records "
                "(RFC 7505 §3: a null MX must be the only MX record)",
                evidence={"mx": format_records(mxs.records)},
                reproduce=dig_mx,
            )

        for host in mxs.hosts:
            if host.ip_literal is not None:
                yield self.finding(
                    "MX_IS_IP_OR_CNAME",
                    Severity.WARN,
                    f"MX target {host.name} is an IP address, not a host name "
                    "(RFC 5321 §5.1: MX names a host; many senders reject it)",
                    evidence={"mx": f"{host.preference} {host.name}.", "kind": "IP literal"},
                    reproduce=dig_mx,
                    subject=host.name,
                )
                continue
            if host.cnames:
                yield self.finding(
                    "MX_IS_IP_OR_CNAME",
                    Severity.WARN,
                    f"MX target {host.name} is an alias (CNAME) for {host.cnames[-1]} "
                    "(RFC 2181 §10.3: MX must point at a host's canonical name)",
                    evidence={
                        "mx": f"{host.preference} {host.name}.",
                        "kind": "CNAME",
                        "cname_chain": " -> ".join((host.name, *host.cnames)),
                    },
                    reproduce=dns.dig(host.name, "CNAME"),
                    subject=host.name,
                )
            failed = host.failures
            failures.extend(failed)
            if host.addresses or failed:
                continue  # resolvable, or not fully judged (raised below)
            yield self.finding(
                "MX_HOST_UNRESOLVABLE",
                Severity.FAIL,
                f"MX host {host.name} has no A or AAAA record: mail cannot be delivered to it",
                evidence={"A": _rcode_text(host.a), "AAAA": _rcode_text(host.aaaa)},
                reproduce=dns.dig(host.name, "A"),
                subject=host.name,
            )
        if failures:
            failures[0].raise_for_failure()

    def _implicit(self, mxs: MxSet, dns: DnsClient) -> Iterator[Finding]:
        host = mxs.hosts[0]
        domain = mxs.domain
        if host.addresses:
            yield self.finding(
                "MX_IMPLICIT",
                Severity.INFO,
                f"{domain} has no MX record: senders use its own A/AAAA (implicit MX, "
                "RFC 5321 §5.1)",
                evidence={"MX": "none", "addresses": " ".join(host.addresses)},
                reproduce=dns.dig(domain, "MX"),
            )
            # An A answered but AAAA failed (or the reverse): judged, yet incompletely.
            if host.failures:
                host.failures[0].raise_for_failure()
            return
        if host.failures:
            host.failures[0].raise_for_failure()
        yield self.finding(
            "MX_MISSING",
            Severity.FAIL,
            f"{domain} has no MX record and no A/AAAA to fall back to: it cannot receive mail",
            evidence={"MX": "none", "A": _rcode_text(host.a), "AAAA": _rcode_text(host.aaaa)},
            reproduce=dns.dig(domain, "MX"),
        )
