"""The generated world of bench/fleet.py: N customer domains over M shared mail hosts.

Pure data, no I/O: zones (name -> zone-file lines, relative to the zone) for the lab's Knot
(LabSpec.extra_zones), the mail hosts' addresses (where the bench's counting forwarders
listen), and which host each domain uses.

- Mail host k is `m{k:04d}.mailhosts.test`, at 127.30.(k // 250).(k % 250 + 1), with a PTR
  in `{c}.30.127.in-addr.arpa` that resolves back to it. 127.30/16 lies below 127.38-127.4x
  (bench/dns_audit.py) and the 127.64-254 range the labs pick their blocks from.
- Domain i uses mail host i % M, for everything: its one MX, and the RFC 6186 SRV records of
  submission (587), submissions (465), IMAP (143), IMAPS (993), POP3 (110) and POP3S (995).
  Every domain has the same shape, so each host gets the same probe set from every domain
  that uses it, and the connections per endpoint of the whole fleet can be compared with
  those of one domain alone.
- SPF: `mx` and an include of the hoster's shared `_spf.mailhosts.test`; DMARC p=reject with
  a rua in the domain; one DKIM key (selector s1), the same for all.
- `per_zone` 1 gives each domain its own zone (`d00000.test`, ...). More puts the domains as
  names inside parent zones of `per_zone` domains (`d00000.z000.test` in zone `z000.test`).
  The lab's start-up grows with the records, hardly with the zones: 20,000 domains took 84 s
  in 202 zones, 94 s in 20,002 (bench/README.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from probes.lab.zones import txt_rdata as txt

MAILHOSTS_ZONE = "mailhosts.test"
SELECTOR = "s1"
HOSTS_PER_SLASH24 = 250
MAX_HOSTS = 256 * HOSTS_PER_SLASH24

# The services each mail host offers: the standard port a domain's record names, the SRV
# service label (None: the MX), and the lab port name the forwarder passes it on to.
SERVICES: tuple[tuple[int, str | None, str], ...] = (
    (25, None, "smtp"),
    (587, "_submission._tcp", "submission"),
    (465, "_submissions._tcp", "submissions"),
    (143, "_imap._tcp", "imap"),
    (993, "_imaps._tcp", "imaps"),
    (110, "_pop3._tcp", "pop3"),
    (995, "_pop3s._tcp", "pop3s"),
)
SMTP_PORTS = (25, 587, 465)  # answered by the lab's MTA (the `mx` role); the rest by the mailbox


def host_ip(k: int) -> str:
    if not 0 <= k < MAX_HOSTS:
        raise ValueError(f"mail host {k}: the address plan holds {MAX_HOSTS}")
    return f"127.30.{k // HOSTS_PER_SLASH24}.{k % HOSTS_PER_SLASH24 + 1}"


def host_name(k: int) -> str:
    return f"m{k:04d}.{MAILHOSTS_ZONE}"


@dataclass
class FleetWorld:
    domains: list[str] = field(default_factory=list)
    host_of: dict[str, int] = field(default_factory=dict)  # domain -> mail host index
    hosts: list[str] = field(default_factory=list)  # mail host addresses, by index
    zones: dict[str, list[str]] = field(default_factory=dict)

    def add(self, zone: str, rel: str, rdtype: str, rdata: str) -> None:
        self.zones.setdefault(zone, []).append(f"{rel} {rdtype} {rdata}")

    def domains_of(self, k: int) -> int:
        """How many domains use mail host k."""
        return sum(1 for h in self.host_of.values() if h == k)


def generate(n: int, m: int, dkim_key: str, per_zone: int = 1) -> FleetWorld:
    """N domains over M mail hosts (see the module docstring). `dkim_key`: base64 SPKI."""
    if n < 1 or m < 1:
        raise ValueError("at least one domain and one mail host")
    if per_zone < 1:
        raise ValueError("per_zone: at least 1")
    w = FleetWorld()
    m = min(m, n)  # a host no domain uses would get no traffic
    for k in range(m):
        ip = host_ip(k)
        w.hosts.append(ip)
        w.add(MAILHOSTS_ZONE, f"m{k:04d}", "A", ip)
        a, b, c, d = ip.split(".")
        w.add(f"{c}.{b}.{a}.in-addr.arpa", d, "PTR", host_name(k) + ".")
    w.add(MAILHOSTS_ZONE, "_spf", "TXT", txt("v=spf1 ip4:127.30.0.0/16 -all"))
    width = max(5, len(str(n - 1)))
    zone_width = max(3, len(str((n - 1) // per_zone)))
    for i in range(n):
        label = f"d{i:0{width}d}"
        if per_zone == 1:
            zone, rel = f"{label}.test", ""
        else:
            zone, rel = f"z{i // per_zone:0{zone_width}d}.test", label
        domain = f"{rel}.{zone}" if rel else zone
        k = i % m
        w.domains.append(domain)
        w.host_of[domain] = k

        def at(name: str, rel: str = rel) -> str:
            return ".".join(p for p in (name, rel) if p) or "@"

        mx = host_name(k) + "."
        w.add(zone, at(""), "MX", f"10 {mx}")
        w.add(zone, at(""), "TXT", txt(f"v=spf1 mx include:_spf.{MAILHOSTS_ZONE} -all"))
        w.add(zone, at("_dmarc"), "TXT", txt(f"v=DMARC1; p=reject; rua=mailto:dmarc@{domain}"))
        w.add(zone, at(f"{SELECTOR}._domainkey"), "TXT", txt(f"v=DKIM1; k=rsa; p={dkim_key}"))
        for port, service, _ in SERVICES:
            if service is not None:
                w.add(zone, at(service), "SRV", f"0 1 {port} {mx}")
    return w
