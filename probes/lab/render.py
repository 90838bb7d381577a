"""Write a lab's directory: CA and certificates, DKIM keys, zones, server configs, start scripts.

The directory is bind-mounted read-only at /lab in every lab container; each container's start
script copies what it needs into place with the ownership its server demands.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from probes.lab import dnssec_zone, knot_conf, pki, web
from probes.lab.flavours import front_module, mta_module
from probes.lab.spec import SERVER_ROLES, LabSpec
from probes.lab.zones import (
    blocklist_zones,
    extra_zones,
    forward_zone,
    reverse_zones,
    server_names,
    tld_zones,
)


@dataclass(frozen=True)
class LabFiles:
    root: Path
    ca_file: Path
    dkim_keys: dict[str, Path]  # selector -> PEM private key
    dkimpy_keys: dict[str, Path]  # selector -> key in the form dkimpy signs with
    resolv_conf: Path
    trust_anchor: Path | None = None  # the DS of the lab's signed TLD zone (dnssec_zone)


def render_lab_dir(spec: LabSpec, root: Path, password: str) -> LabFiles:
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    for sub in ("tls", "dkim", "dns", *SERVER_ROLES, "files"):
        (root / sub).mkdir(exist_ok=True)

    # TLS: a per-lab CA; every server's certificate names its host name and IP.
    ca = pki.make_ca(spec.address("dns"))
    ca_file = root / "ca.pem"
    ca_file.write_bytes(pki.certs_pem([ca.cert]))
    chains = {}
    for role in SERVER_ROLES:
        chain, key = pki.make_server_cert(
            ca, server_names(spec, role), [spec.address(role)], spec.tls.certificate
        )
        chains[role] = chain
        (root / "tls" / f"{role}.crt").write_bytes(pki.certs_pem(chain))
        pki.write_secret(root / "tls" / f"{role}.key", pki.private_pem(key))

    web.render(spec, root, ca)  # the HTTPS host: MTA-STS policy, BIMI logo

    # DKIM: one key per selector; Exim finds keys as <domain>.<selector>.key (dsearch).
    dkim_keys, dkimpy_keys, public = {}, {}, {}
    for sel in spec.selectors:
        dkim_key = pki.generate_dkim_key(sel.key_type, sel.bits)
        public[sel.name] = pki.dkim_public_value(dkim_key)
        pem_path = root / "dkim" / f"{spec.domain}.{sel.name}.key"
        pki.write_secret(pem_path, pki.private_pem(dkim_key))
        dkim_keys[sel.name] = pem_path
        raw_path = root / "dkim" / f"{spec.domain}.{sel.name}.dkimpy"
        pki.write_secret(raw_path, pki.dkimpy_private_bytes(dkim_key))
        dkimpy_keys[sel.name] = raw_path

    # DNS.
    zones = [
        forward_zone(spec, public),
        *reverse_zones(spec),
        *extra_zones(spec),
        *blocklist_zones(spec),
        *tld_zones(spec),
    ]
    # DNSSEC and DANE (probes.lab.dnssec_zone): keys for Knot, TLSA from the certificates.
    signing = dnssec_zone.plan(spec, zones, chains["mx"])
    zones = signing.zones
    (root / "dns" / "keys").mkdir(exist_ok=True)
    for name, zone_key in signing.keys.items():
        pki.write_secret(root / "dns" / "keys" / f"{name}.pem", pki.private_pem(zone_key))
    trust_anchor = None
    if signing.anchor:
        trust_anchor = root / "trust-anchor.zone"
        trust_anchor.write_text(
            f"; the trust anchor of lab {spec.domain} (DS of its signed parent zone's key)\n"
            + signing.anchor
            + "\n"
        )
    for zone in zones:
        (root / "dns" / f"{zone.name}.zone").write_text(zone.text)
    (root / "dns" / "knot.conf").write_text(
        knot_conf.knot_conf(spec, zones, signed=signing.knot_signed)
    )
    (root / "dns" / "start.sh").write_text(knot_conf.START_SH)
    resolv = root / "resolv.conf"
    resolv.write_text(f"nameserver {spec.address('dns')}\noptions timeout:1 attempts:2\n")

    # Mail servers, by flavour (probes.lab.flavours).
    for role in ("mx", "outbound"):
        mta_module(spec).render(spec, root, role, password)
    front_module(spec).render(spec, root, "mailbox", password)
    return LabFiles(root, ca_file, dkim_keys, dkimpy_keys, resolv, trust_anchor)
