"""dns.ptr: reverse DNS of the MX addresses and the declared sending IPs, forward-confirmed.

For every address: PTR at its reverse name (IPv4 in-addr.arpa, IPv6 ip6.arpa), then FCrDNS:
each PTR name is resolved forward (A for IPv4, AAAA for IPv6) and one of them must give the
address back. The walk is MX -> A/AAAA -> PTR -> A/AAAA, each level asked at once; the
sending IPs' PTRs go out together with the MX question.

Codes (subject: the IP address):
- PTR_MISSING [fail for a sending IP, warn for an MX address] no PTR record.
- PTR_NOT_CONFIRMED [warn] no PTR name resolves back to the address (evidence: the names and
  the addresses they resolve to). A PTR name that is not a valid DNS name or ends in a CNAME
  loop counts as resolving to nothing.
- PTR_CONFIRMED [info] the PTR name that resolves back.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Generator, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from probes.codes import Code, Fix, declare
from probes.errors import ProbeConfigError
from probes.lookup.mx import walk_mx
from probes.lookup.ptr import UNRESOLVABLE, Fcrdns, IPAddress, confirm, confirms, reverse_name
from probes.model import Finding, Severity, Target
from probes.net import Net
from probes.net.dns import DnsAnswer
from probes.probe import BaseProbe

# Bounds against hostile data: addresses per MX host, MX addresses in all. (Sending IPs are
# the user's own list and are all checked; PTR names per address: probes.lookup.ptr.)
MAX_ADDRESSES_PER_HOST = 16
MAX_MX_ADDRESSES = 64


def parse_sending_ips(values: Sequence[str]) -> list[IPAddress]:
    """The declared sending IPs as addresses (IPv4-mapped IPv6 as IPv4), duplicates dropped.

    Raises ProbeConfigError naming the first value that is not a plain IP address.
    """
    out: list[IPAddress] = []
    for value in values:
        text = str(value).strip()
        try:
            if "%" in text:
                raise ValueError("scoped address")
            ip = ipaddress.ip_address(text)
        except ValueError:
            raise ProbeConfigError(f"sending IP {value!r} is not an IPv4 or IPv6 address") from None
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if ip not in out:
            out.append(ip)
    return out


@dataclass
class _Subject:
    ip: IPAddress
    roles: list[str] = field(default_factory=list)
    sending: bool = False
    ptr: Future[DnsAnswer] | None = None


class DnsPtr(BaseProbe):
    id = "dns.ptr"
    description = "PTR records of MX addresses and sending IPs, forward-confirmed (FCrDNS)"
    codes = declare(
        Code(
            "PTR_MISSING",
            "no PTR record (fail for a sending IP, warn for an MX address)",
            Severity.FAIL,
            fix=Fix(
                "Publish a PTR record for the address, naming the mail host (the name it uses "
                "in its banner and EHLO), and make that name resolve back to the address. The "
                "reverse zone belongs to whoever holds the address block: usually you ask your "
                "hosting provider or ISP to set the PTR. Check with `dig +short -x <ip>`.",
                {
                    "zone": "; in the reverse zone, e.g. 2.0.192.in-addr.arpa for 192.0.2.25\n"
                    "<d>.<c>.<b>.<a>.in-addr.arpa. 3600 IN PTR <host>.\n"
                    "; in the forward zone\n"
                    "<host>. 3600 IN A <a>.<b>.<c>.<d>",
                },
            ),
        ),
        Code(
            "PTR_NOT_CONFIRMED",
            "no PTR name resolves back to the address (FCrDNS)",
            Severity.WARN,
            fix=Fix(
                "Make the PTR name resolve back to the address (forward-confirmed reverse DNS): "
                "publish an A record (AAAA for an IPv6 address) for the name the PTR gives, or "
                "have the PTR changed to a name that already has one. Check with "
                "`dig +short -x <ip>`, then `dig +short A <host>`: the address must come back.",
                {"zone": "<host>. 3600 IN A <ipv4>\n<host>. 3600 IN AAAA <ipv6>"},
            ),
        ),
        Code("PTR_CONFIRMED", "a PTR name that resolves back to the address", Severity.INFO),
    )

    def run(self, target: Target, net: Net) -> Iterator[Finding]:
        sending = parse_sending_ips(target.sending_ips)
        dns = net.dns
        subjects: dict[IPAddress, _Subject] = {}
        for ip in sending:
            subj = subjects.setdefault(ip, _Subject(ip))
            subj.sending = True
            subj.roles.append("sending IP")
            subj.ptr = dns.submit(reverse_name(ip), "PTR")

        failures: list[DnsAnswer] = []
        mxs = walk_mx(target.domain, dns)
        if not mxs.answer.ok:
            failures.append(mxs.answer)
        mx_addresses = 0
        for host in mxs.hosts:
            failures.extend(host.failures)
            for text in host.addresses[:MAX_ADDRESSES_PER_HOST]:
                try:
                    ip = ipaddress.ip_address(text)
                except ValueError:
                    continue
                if ip not in subjects:
                    if mx_addresses >= MAX_MX_ADDRESSES:
                        continue
                    mx_addresses += 1
                subj = subjects.setdefault(ip, _Subject(ip))
                subj.roles.append(f"address of MX {host.name}")
                if subj.ptr is None:
                    subj.ptr = dns.submit(reverse_name(ip), "PTR")

        # PTR answers, then every PTR name forward at once.
        ptrs: dict[IPAddress, Future[DnsAnswer]] = {}
        for ip, subj in subjects.items():
            assert subj.ptr is not None
            ptrs[ip] = subj.ptr
        checks = confirm(dns, ptrs)

        for ip, subj in subjects.items():
            failure = yield from self._judge(subj, checks[ip], net)
            if failure is not None:
                failures.append(failure)
        if failures:
            failures[0].raise_for_failure()

    def _judge(
        self, subj: _Subject, check: Fcrdns, net: Net
    ) -> Generator[Finding, None, DnsAnswer | None]:
        """Findings for one address; returns the failure that stopped a judgement, if any."""
        ip, dns, answer = subj.ip, net.dns, check.ptr
        subject = str(ip)
        role = ", ".join(subj.roles)
        if not answer.ok:
            return answer
        if not answer.records:
            severity = Severity.FAIL if subj.sending else Severity.WARN
            yield self.finding(
                "PTR_MISSING",
                severity,
                f"{ip} ({role}) has no PTR record",
                evidence={
                    "ip": subject,
                    "role": role,
                    "reverse_name": answer.name,
                    "PTR": answer.rcode,
                },
                reproduce=dns.dig(answer.name, "PTR"),
                subject=subject,
            )
            return None
        rdtype = check.rdtype
        names, checked = check.names, check.checked
        # Sorted, so a server rotating its answers does not change the evidence.
        evidence = {"ip": subject, "role": role, "ptr": " ".join(sorted(n + "." for n in names))}
        failed: DnsAnswer | None = None
        for name, fwd in sorted(check.forward, key=lambda pair: pair[0]):
            if confirms(fwd, ip):
                yield self.finding(
                    "PTR_CONFIRMED",
                    Severity.INFO,
                    f"{ip} ({role}) has PTR {name}, which resolves back to it",
                    evidence={**evidence, "confirmed_by": name},
                    reproduce=dns.dig(answer.name, "PTR"),
                    subject=subject,
                )
                return None
            if fwd.ok or fwd.rcode in UNRESOLVABLE:
                got = " ".join(sorted(str(r) for r in fwd.records)) if fwd.ok else ""
                evidence[f"{rdtype} {name}"] = got or f"none ({fwd.rcode})"
            else:
                evidence[f"{rdtype} {name}"] = f"lookup failed ({fwd.rcode})"
                failed = failed or fwd
        if failed is not None:
            return failed  # a name we could not resolve might have confirmed it
        if len(names) > len(checked):
            evidence["not_checked"] = f"{len(names) - len(checked)} more PTR names"
        yield self.finding(
            "PTR_NOT_CONFIRMED",
            Severity.WARN,
            f"{ip} ({role}): no PTR name resolves back to it (FCrDNS fails)",
            evidence=evidence,
            reproduce=dns.dig(checked[0], rdtype),
            subject=subject,
        )
        return None
