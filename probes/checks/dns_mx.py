"""dns.mx: the domain's MX set, null MX (RFC 7505), implicit MX, and each MX host's addresses.

The walk is two levels deep: the MX question, then A and AAAA of every MX host at once
(probes.lookup.mx, which dns.ptr, dns.dane and the endpoint probes use too; all go through the
run's resolver door, so a run that includes dns.mx asks nothing twice).

Codes:
- MX_PRESENT [info] the MX set and each host's addresses (evidence; the state of the MX set:
  records and hosts sorted by preference and name, addresses sorted).
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

from collections.abc import Iterator

from probes.codes import Code, Fix, declare
from probes.lookup.mx import MAX_MX_HOSTS, MxSet, format_records, walk_mx
from probes.model import Finding, Severity, Target
from probes.net import Net
from probes.net.dns import NXDOMAIN, DnsAnswer, DnsClient, normalize_name
from probes.probe import BaseProbe


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
            fix=Fix(
                "Decide whether the domain receives mail. If it does, delete the null MX "
                "(`MX 0 .`) and keep the real MX records; if it does not, delete every other MX "
                "record and keep only the null MX. Check with `dig +short MX <domain>`: either "
                "`0 .` alone or only real host names.",
                {
                    "zone": "; the domain receives mail: real MX records only\n"
                    "<domain>. 3600 IN MX 10 <mx-host>.\n"
                    "; or the domain receives no mail: the null MX alone\n"
                    "<domain>. 3600 IN MX 0 .",
                },
            ),
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
            fix=Fix(
                "Publish an MX record naming the host that receives the domain's mail, and an "
                "A (and AAAA, if it has IPv6) record for that host. A domain that receives no "
                "mail publishes a null MX (`0 .`) instead. Check with `dig +short MX <domain>` "
                "and `dig +short A <mx-host>`.",
                {
                    "zone": "<domain>. 3600 IN MX 10 <mx-host>.\n"
                    "<mx-host>. 3600 IN A <ipv4>\n"
                    "<mx-host>. 3600 IN AAAA <ipv6>\n"
                    "; a domain that receives no mail, instead:\n"
                    "; <domain>. 3600 IN MX 0 .",
                },
            ),
        ),
        Code(
            "MX_HOST_UNRESOLVABLE",
            "an MX host has neither A nor AAAA",
            Severity.FAIL,
            fix=Fix(
                "Publish an A (and AAAA, if it has IPv6) record for the MX host the finding "
                "names, or correct the MX record if the host name is misspelt or the host is "
                "gone. Check with `dig +short A <mx-host>` and `dig +short AAAA <mx-host>`.",
                {"zone": "<mx-host>. 3600 IN A <ipv4>\n<mx-host>. 3600 IN AAAA <ipv6>"},
            ),
        ),
        Code(
            "MX_IS_IP_OR_CNAME",
            "an MX target is an IP literal or a CNAME",
            Severity.WARN,
            fix=Fix(
                "Point the MX record at a host name that has its own A/AAAA records: not an IP "
                "address, and not a name that is a CNAME (RFC 2181 §10.3, RFC 5321 §5.1). "
                "Replace the CNAME by A/AAAA records, or point the MX at the CNAME's target. "
                "Check with `dig MX <domain>` and `dig CNAME <mx-host>` (no answer).",
                {
                    "zone": "<domain>. 3600 IN MX 10 <mx-host>.\n"
                    "<mx-host>. 3600 IN A <ipv4>\n"
                    "<mx-host>. 3600 IN AAAA <ipv6>",
                },
            ),
        ),
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
            f"{host.name}: {' '.join(sorted(host.addresses)) or '-'}" for host in mxs.hosts
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
