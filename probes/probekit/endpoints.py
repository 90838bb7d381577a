"""Which host:port endpoints a transport probe looks at, and running checks on them at once.

Hosts come from the Target (`mx_hosts`, `submission_hosts`, `mailbox_hosts`); when a list is
empty they are discovered in DNS: MX records for the MX role, RFC 6186 SRV records
(`_submission._tcp`, `_submissions._tcp`, `_imap._tcp`, `_imaps._tcp`, `_pop3._tcp`,
`_pop3s._tcp`) for the others, with the port the SRV record names. Every endpoint is checked
concurrently; the run's connection slots (`net.slots`) keep each address to its limit.

A domain whose MX set leaves no host to connect to is dns.mx's finding, not a transport
probe's error: the probe is SKIPPED, saying why (the domain does not exist, a null MX, no MX
and no A/AAAA to fall back to, or no MX host with an address). An MX host without addresses
is left out (dns.mx reports MX_HOST_UNRESOLVABLE); a DNS question that was not answered
(timeout, SERVFAIL) stays an ERROR.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from probes.errors import DnsError, ProbeSkipped, SubjectError
from probes.lookup.mx import ask_mx
from probes.model import Finding, Target
from probes.net import Net
from probes.net.dns import NXDOMAIN
from probes.net.tapes import carry_probe

# SRV service label per well-known port (RFC 6186).
SRV_SERVICE = {
    587: "_submission._tcp",
    465: "_submissions._tcp",
    143: "_imap._tcp",
    993: "_imaps._tcp",
    110: "_pop3._tcp",
    995: "_pop3s._tcp",
}
ROLE_FIELD = {"mx": "mx_hosts", "submission": "submission_hosts", "mailbox": "mailbox_hosts"}
ROLE_OPTION = {"mx": "--mx", "submission": "--submission-host", "mailbox": "--mailbox-host"}


@dataclass(frozen=True)
class Endpoint:
    host: str  # the name as configured or discovered (or an IP literal)
    ip: str
    port: int

    @property
    def subject(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def hosts_for(target: Target, net: Net, role: str, port: int) -> list[tuple[str, int]]:
    """(host, port) pairs for a role: configured hosts on `port`, else discovered in DNS.

    ProbeSkipped when the domain's MX set names no host: NXDOMAIN, or only a null MX."""
    configured = getattr(target, ROLE_FIELD[role])
    if configured:
        return [(h.rstrip(".").lower(), port) for h in configured]
    if role == "mx":
        return _mx_hosts(target, net, port)[0]
    service = SRV_SERVICE.get(port)
    if service is None:
        return []
    answer = net.dns.query(f"{service}.{target.domain}", "SRV")
    if not answer.ok:
        answer.raise_for_failure()
    # "." as target means the service is decidedly not available (RFC 6186 section 3.4).
    return [
        (host, srv_port)
        for _prio, _weight, srv_port, host in sorted(answer.records)
        if host not in ("", ".")
    ]


def _mx_hosts(target: Target, net: Net, port: int) -> tuple[list[tuple[str, int]], bool]:
    """The MX hosts found in DNS on `port`, and whether that is the implicit MX (the domain
    itself: it has no MX record). ProbeSkipped for NXDOMAIN or a null MX alone."""
    mxs = ask_mx(target.domain, net.dns)
    mxs.answer.raise_for_failure()
    if mxs.answer.rcode == NXDOMAIN:
        raise ProbeSkipped(f"no mx hosts: {mxs.domain} does not exist (dns.mx: MX_MISSING)")
    if not mxs.records:
        return [(target.domain, port)], True  # RFC 5321 implicit MX
    if mxs.only_null:
        raise ProbeSkipped(
            f"no mx hosts: {mxs.domain} publishes a null MX (RFC 7505): it accepts no mail"
            " (dns.mx: MX_NULL)"
        )
    return [(h, port) for h in mxs.exchanges], False


class NoAddress(DnsError):
    """The host's A and AAAA questions were answered, with no address (a DNS fact, not a
    failure to ask)."""


def resolve(net: Net, host: str) -> str:
    """The address to connect to: the literal itself, or the host's first A (then AAAA)."""
    if is_ip(host):
        return host
    a, aaaa = net.dns.addresses(host)
    for answer in (a, aaaa):
        if answer.records:
            return str(answer.records[0])
    for answer in (a, aaaa):
        if not answer.ok:
            answer.raise_for_failure()
    raise NoAddress(f"{host} has no A or AAAA record")


def endpoints_for(target: Target, net: Net, role: str, port: int) -> list[Endpoint]:
    """The role's endpoints on `port`; ProbeSkipped when there are none to look at.

    MX hosts found in DNS that have no address are left out (dns.mx's MX_HOST_UNRESOLVABLE,
    or MX_MISSING for the domain itself under implicit MX); none left is ProbeSkipped.
    Configured hosts, and SRV targets, without an address are an error (DNS)."""
    from_mx = role == "mx" and not target.mx_hosts
    implicit = False
    if from_mx:
        pairs, implicit = _mx_hosts(target, net, port)
    else:
        pairs = hosts_for(target, net, role, port)
    if not pairs:
        where = f"{SRV_SERVICE.get(port, '?')}.{target.domain} SRV"
        raise ProbeSkipped(
            f"no {role} hosts: none configured ({ROLE_OPTION[role]}) and none found ({where})"
        )
    seen: set[tuple[str, int]] = set()
    endpoints = []
    failures: list[tuple[str, BaseException]] = []
    no_address: list[str] = []
    for host, p in pairs:
        if (host, p) in seen:
            continue
        seen.add((host, p))
        try:
            endpoints.append(Endpoint(host=host, ip=resolve(net, host), port=p))
        except NoAddress as exc:
            if from_mx:
                no_address.append(host)
            else:
                failures.append((f"{host}:{p}", exc))
        except (DnsError, TimeoutError) as exc:
            failures.append((f"{host}:{p}", exc))
    if failures:
        raise SubjectError(failures)
    if not endpoints:
        if implicit:
            raise ProbeSkipped(
                f"no mx hosts: {no_address[0]} has no MX record and no A/AAAA to fall back"
                " to (dns.mx: MX_MISSING)"
            )
        raise ProbeSkipped(
            f"no mx hosts with an address: {', '.join(no_address)}: no A or AAAA record"
            " (dns.mx: MX_HOST_UNRESOLVABLE)"
        )
    return endpoints


Check = Callable[[Endpoint, list[Finding]], None]


def check_all(endpoints: Sequence[Endpoint], check: Check) -> Iterator[Finding]:
    """Run `check(endpoint, out)` on every endpoint at once; yield all findings in endpoint order.

    A check appends its findings to `out` as it goes, so what it found before failing is kept.
    Endpoints whose check raised are reported after all findings, as one SubjectError naming
    each failed endpoint."""
    if len(endpoints) == 1:
        results = [_guarded(check, endpoints[0])]
    else:
        with ThreadPoolExecutor(
            max_workers=len(endpoints), thread_name_prefix="mailprobe-endpoint"
        ) as pool:
            # each thread's connections are still the probe's own (probes.net.tapes)
            guarded = carry_probe(lambda ep: _guarded(check, ep))
            results = list(pool.map(guarded, endpoints))
    failures = []
    for endpoint, (findings, exc) in zip(endpoints, results, strict=True):
        yield from findings
        if exc is not None:
            failures.append((endpoint.subject, exc))
    if failures:
        raise SubjectError(failures)


def _guarded(check: Check, endpoint: Endpoint) -> tuple[list[Finding], Exception | None]:
    out: list[Finding] = []
    try:
        check(endpoint, out)
    except Exception as exc:
        return out, exc
    return out, None
