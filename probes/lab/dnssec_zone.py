"""The lab's DNSSEC and DANE data, made at lab start from the spec and the lab's certificates.

- **Keys.** One ECDSA P-256 combined signing key (CSK) per signed zone, generated here and
  imported into Knot's key store by the DNS container's start script (`keymgr import-pem`),
  so the trust anchor is known before Knot starts and nobody waits for key generation.
- **Chain.** The lab's TLD zone (`test.` for `example.test`) is always signed by Knot and is
  the lab's trust anchor: its DS is what `LabInfo.trust_anchor` names. It delegates every
  lab zone below it (NS), and the lab domain with its DS when `dnssec.signed`. So an unsigned
  lab domain is *insecure* (a delegation without DS, proven by the signed TLD), as on the real
  DNS, rather than bogus. Without a served parent zone the domain's own key is the anchor.
- **Broken chains** (`dnssec.bogus`): `wrong-ds` publishes the DS of a key the zone does not
  have (Knot still signs); `expired-signature` and `missing-dnskey` are zones signed here
  with dnspython (signatures expired a day ago; the DNSKEY set left out) that Knot serves as
  given.
- **Many signed zones** (`dnssec.sign_extra_zones`): every extra zone under the TLD is signed
  here (valid signatures) and gets its DS in the TLD, for benchmarks.
- **TLSA** (`dane.tlsa`): `match` publishes `3 1 1` of the MX certificate's key and `2 0 1` of
  the lab CA certificate; `other-key` a `3 1 1` of a key the MX does not have.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

import dns.dnssec
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.zone
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from probes.lab.spec import LabSpec, hostname_label
from probes.lab.zones import Zone

ALGORITHM = dns.dnssec.Algorithm.ECDSAP256SHA256


@dataclass(frozen=True)
class LabDnssec:
    zones: list[Zone]  # the lab's zones with the DNSSEC/DANE changes
    keys: dict[str, ec.EllipticCurvePrivateKey]  # zone name -> the CSK Knot signs it with
    knot_signed: tuple[str, ...]  # zone names Knot signs
    anchor: str  # the trust anchor: DS lines in zone-file syntax ("" when nothing is signed)


def _dnskey(key: ec.EllipticCurvePrivateKey):
    return dns.dnssec.make_dnskey(key.public_key(), ALGORITHM, flags=257)


def ds_line(zone: str, key: ec.EllipticCurvePrivateKey) -> str:
    ds = dns.dnssec.make_ds(zone + ".", _dnskey(key), "SHA256")
    return f"{zone}. IN DS {ds.to_text()}"


def tlsa_lines(spec: LabSpec, mx_chain: Sequence[x509.Certificate]) -> list[str]:
    """The TLSA lines of `_25._tcp.mx.<domain>` for `spec.dane.tlsa`."""
    owner = f"_25._tcp.{hostname_label('mx')}"
    if spec.dane.tlsa == "match":
        leaf_spki = (
            mx_chain[0]
            .public_key()
            .public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        lines = [f"{owner} TLSA 3 1 1 {hashlib.sha256(leaf_spki).hexdigest()}"]
        if len(mx_chain) > 1:
            ca_der = mx_chain[-1].public_bytes(serialization.Encoding.DER)
            lines.append(f"{owner} TLSA 2 0 1 {hashlib.sha256(ca_der).hexdigest()}")
        return lines
    if spec.dane.tlsa == "other-key":
        other = ec.generate_private_key(ec.SECP256R1()).public_key()
        spki = other.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return [f"{owner} TLSA 3 1 1 {hashlib.sha256(spki).hexdigest()}"]
    return []


def _parent(domain: str, served: Sequence[str]) -> str | None:
    labels = domain.split(".")
    for i in range(1, len(labels)):
        candidate = ".".join(labels[i:])
        if candidate in served:
            return candidate
    return None


def plan(spec: LabSpec, zones: list[Zone], mx_chain: Sequence[x509.Certificate]) -> LabDnssec:
    """The zones with TLSA records, delegations and DS added (or pre-signed), and the keys."""
    by_name = {z.name: z for z in zones}
    domain = spec.domain
    parent = _parent(domain, list(by_name))
    keys: dict[str, ec.EllipticCurvePrivateKey] = {}
    knot_signed: list[str] = []
    changed = dict(by_name)

    text = by_name[domain].text + "".join(line + "\n" for line in tlsa_lines(spec, mx_chain))
    if spec.dnssec.signed:
        key = ec.generate_private_key(ec.SECP256R1())
        if spec.dnssec.bogus in ("expired-signature", "missing-dnskey"):
            text = presign(domain, text, key, spec.dnssec.bogus)
        else:
            keys[domain] = key
            knot_signed.append(domain)
        domain_key = key
    changed[domain] = Zone(by_name[domain].origin, text)

    anchor = ""
    if parent is not None:
        parent_key = ec.generate_private_key(ec.SECP256R1())
        keys[parent] = parent_key
        knot_signed.append(parent)
        lines = [
            f"{name}. NS ns.{domain}."
            for name in sorted(by_name)
            if name != parent and name.endswith("." + parent)
        ]
        if spec.dnssec.signed:
            shown = domain_key
            if spec.dnssec.bogus == "wrong-ds":
                shown = ec.generate_private_key(ec.SECP256R1())
            lines.append(ds_line(domain, shown).replace(" IN DS ", " DS "))
        if spec.dnssec.sign_extra_zones:
            for name in sorted(spec.extra_zones):
                name = name.rstrip(".").lower()
                if name not in by_name or not name.endswith("." + parent):
                    continue
                extra_key = ec.generate_private_key(ec.SECP256R1())
                extra = by_name[name]
                changed[name] = Zone(extra.origin, presign(name, extra.text, extra_key, ""))
                lines.append(ds_line(name, extra_key).replace(" IN DS ", " DS "))
        changed[parent] = Zone(
            by_name[parent].origin, by_name[parent].text + "".join(f"{x}\n" for x in lines)
        )
        anchor = ds_line(parent, parent_key)
    elif spec.dnssec.signed:
        anchor = ds_line(domain, domain_key)
    return LabDnssec(
        zones=[changed[z.name] for z in zones],
        keys=keys,
        knot_signed=tuple(knot_signed),
        anchor=anchor,
    )


def presign(zone_name: str, text: str, key: ec.EllipticCurvePrivateKey, bogus: str) -> str:
    """The zone signed here with dnspython, broken as `bogus` says (Knot serves it as is)."""
    origin = zone_name + "."
    zone = dns.zone.from_text(text, origin=origin, relativize=False, check_origin=False)
    now = time.time()
    if bogus == "expired-signature":
        inception, expiration = now - 30 * 86400, now - 86400
    else:
        inception, expiration = now - 3600, now + 30 * 86400
    with zone.writer() as txn:
        dns.dnssec.sign_zone(
            zone,
            txn,
            keys=[(key, _dnskey(key))],
            inception=inception,
            expiration=expiration,
            dnskey_ttl=60,
        )
    if bogus == "missing-dnskey":
        node = zone.find_node(dns.name.from_text(origin))
        node.delete_rdataset(dns.rdataclass.IN, dns.rdatatype.DNSKEY)
        node.delete_rdataset(dns.rdataclass.IN, dns.rdatatype.RRSIG, dns.rdatatype.DNSKEY)
    return zone.to_text(relativize=False)
