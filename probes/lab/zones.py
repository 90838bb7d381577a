"""Zone files for the lab DNS, generated from a LabSpec (pure; validated with dnspython)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

import dns.exception
import dns.zone

from probes.lab.blocklists import zone_records
from probes.lab.spec import (
    ROLES,
    SERVER_ROLES,
    LabSpec,
    LabSpecError,
    fill_placeholders,
    hostname_label,
)

TTL = 60


@dataclass(frozen=True)
class Zone:
    origin: str  # absolute, with trailing dot
    text: str

    @property
    def name(self) -> str:
        return self.origin.rstrip(".")


def txt_rdata(value: str) -> str:
    """A TXT value as zone-file character-strings: quoted, escaped, at most 255 bytes each."""
    raw = value.encode()
    chunks = [raw[i : i + 255] for i in range(0, len(raw), 255)] or [b""]
    out = []
    for chunk in chunks:
        text = chunk.decode("utf-8", errors="surrogateescape")
        out.append('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return " ".join(out)


def dkim_record(
    public_value: str, key_type: str, testing: bool = False, revoked: bool = False
) -> str:
    tags = ["v=DKIM1", f"k={key_type}"]
    if testing:
        tags.append("t=y")
    tags.append("p=" + ("" if revoked else public_value))
    return "; ".join(tags)


def _soa(origin: str, domain: str) -> list[str]:
    return [
        f"$ORIGIN {origin}",
        f"$TTL {TTL}",
        f"@ SOA ns.{domain}. hostmaster.{domain}. 1 3600 600 86400 {TTL}",
        f"@ NS ns.{domain}.",
    ]


def forward_zone(spec: LabSpec, dkim_public: Mapping[str, str]) -> Zone:
    """The lab domain's zone. `dkim_public` maps selector name -> base64 public key."""
    values = spec.placeholders()
    origin = spec.domain + "."
    lines = _soa(origin, spec.domain)
    for role in ROLES:
        lines.append(f"{hostname_label(role)} A {spec.address(role)}")
    for mx in spec.mx:
        lines.append(f"@ MX {fill_placeholders(mx, values)}")
    if spec.spf is not None:
        lines.append(f"@ TXT {txt_rdata(fill_placeholders(spec.spf, values))}")
    if spec.dmarc is not None:
        lines.append(f"_dmarc TXT {txt_rdata(fill_placeholders(spec.dmarc, values))}")
    for sel in spec.selectors:
        if not sel.publish:
            continue
        if sel.record is not None:
            value = fill_placeholders(sel.record, values)
        else:
            value = dkim_record(dkim_public[sel.name], sel.key_type, sel.testing, sel.revoked)
        lines.append(f"{sel.name}._domainkey TXT {txt_rdata(value)}")
    from probes.lab import web  # MTA-STS and BIMI records (web imports this module)

    lines += web.zone_lines(spec)
    for i, rec in enumerate(spec.extra_records):
        line = fill_placeholders(rec, values)
        _check_lines(origin, spec.domain, [line], f"extra_records[{i}]")
        lines.append(line)
    text = "\n".join(lines) + "\n"
    _check_lines(origin, spec.domain, lines[4:], "zone")
    return Zone(origin, text)


def reverse_zones(spec: LabSpec) -> list[Zone]:
    """in-addr.arpa zones (one per /24 the lab uses) with the PTRs the spec asks for."""
    by_zone: dict[str, list[str]] = {}
    for role in ROLES:
        ip = ipaddress.ip_address(spec.address(role))
        a, b, c, d = str(ip).split(".")
        origin = f"{c}.{b}.{a}.in-addr.arpa."
        records = by_zone.setdefault(origin, [])
        name = spec.ptr_name(role)
        if name is not None:
            records.append(f"{d} PTR {fill_placeholders(name, spec.placeholders())}")
    zones = []
    for origin, records in sorted(by_zone.items()):
        lines = _soa(origin, spec.domain) + sorted(set(records))
        _check_lines(origin, spec.domain, lines[4:], "ptr")
        zones.append(Zone(origin, "\n".join(lines) + "\n"))
    return zones


def receiver_zone_records(spec: LabSpec) -> tuple[str, ...]:
    """The receiver domain's records: its MX is the `receiver` role's host name."""
    return (f"@ MX 10 {hostname_label('receiver')}.{spec.domain}.",)


def extra_zones(spec: LabSpec) -> list[Zone]:
    """The spec's extra zones (other domains the lab DNS is authoritative for), and the
    receiver domain's zone (receiver mode) when the spec has one."""
    wanted = dict(spec.extra_zones)
    if spec.receiver_domain is not None:
        wanted[spec.receiver_domain] = receiver_zone_records(spec)
    return _zones_of(spec, wanted, "extra_zones")


def blocklist_zones(spec: LabSpec) -> list[Zone]:
    """The spec's DNS blocklists (probes.lab.blocklists), built as the extra zones are."""
    values = spec.placeholders()
    wanted = {
        bl.name: zone_records(bl, lambda value: fill_placeholders(value, values))
        for bl in spec.blocklists
    }
    return _zones_of(spec, wanted, "blocklists")


def _zones_of(spec: LabSpec, wanted: Mapping[str, tuple[str, ...]], field: str) -> list[Zone]:
    zones = []
    values = spec.placeholders()
    for name, records in sorted(wanted.items()):
        origin = name.rstrip(".").lower() + "."
        lines = _soa(origin, spec.domain)
        for i, rec in enumerate(records):
            line = fill_placeholders(rec, values)
            _check_lines(origin, spec.domain, [line], f"{field}.{name}[{i}]")
            lines.append(line)
        zones.append(Zone(origin, "\n".join(lines) + "\n"))
    return zones


def tld_zones(spec: LabSpec) -> list[Zone]:
    """Empty zones for the top-level domains of the lab's zones ("test." for example.test).

    With them the lab DNS answers NXDOMAIN, not REFUSED, for names such as `_dmarc.test`
    that a DMARC tree walk asks, as the real DNS would.
    """
    served = {spec.domain, *(z.rstrip(".").lower() for z in spec.extra_zones)}
    served |= {bl.name for bl in spec.blocklists}
    if spec.receiver_domain is not None:
        served.add(spec.receiver_domain.rstrip(".").lower())
    tlds = sorted({name.rsplit(".", 1)[-1] for name in served} - served)
    return [Zone(tld + ".", "\n".join(_soa(tld + ".", spec.domain)) + "\n") for tld in tlds]


def server_names(spec: LabSpec, role: str) -> list[str]:
    """DNS names a server's certificate must carry."""
    assert role in SERVER_ROLES
    return [f"{hostname_label(role)}.{spec.domain}"]


def _check_lines(origin: str, domain: str, lines: list[str], field: str) -> None:
    text = "\n".join([*_soa(origin, domain), *lines]) + "\n"
    try:
        dns.zone.from_text(text, origin=origin, relativize=False, check_origin=True)
    except (dns.exception.DNSException, ValueError) as exc:
        raise LabSpecError(field, f"not a valid zone record: {exc}") from None
