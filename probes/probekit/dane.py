"""DANE for SMTP (RFC 7672) shared by dns.dane and smtp.mx: the TLSA name of an MX host, the
record checks, the codes, and the match of a presented certificate chain against the TLSA
records (`dane_findings`, called by smtp.mx with the chain its main conversation received:
no extra connection).

The match is judged only when the TLSA answer is DNSSEC-secure (probes.net.dnssec): an SMTP
client ignores TLSA records it cannot validate (RFC 7672 §2.2), and dns.dane reports those as
DANE_TLSA_UNVERIFIABLE.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

from probes.codes import Code, Fix
from probes.model import Finding, Severity
from probes.net.dns import normalize_name
from probes.parse.tlsa import RecordResult, association, match_chain
from probes.probekit.reproduce import host_port

if TYPE_CHECKING:
    from probes.net import Net
    from probes.net.tls import TlsSession
    from probes.probe import BaseProbe

USAGES = {0: "PKIX-TA", 1: "PKIX-EE", 2: "DANE-TA", 3: "DANE-EE"}
SELECTORS = {0: "Cert", 1: "SPKI"}
MATCHING_TYPES = {0: "Full", 1: "SHA2-256", 2: "SHA2-512"}
DIGEST_BYTES = {1: 32, 2: 64}
MAX_DATA_CHARS = 80  # hex characters of a record's data shown in evidence
MAX_LISTED = 10  # unusable records listed one by one in evidence


def tlsa_name(host: str, port: int = 25) -> str:
    return f"_{port}._tcp.{normalize_name(host)}"


def tlsa_problem(record: Any) -> str | None:
    """Why an SMTP client would not use this TLSA record (None when it is usable). Pure."""
    if not (isinstance(record, tuple) and len(record) == 4):
        return f"unparsable TLSA record {str(record)[:MAX_DATA_CHARS]!r}"
    usage, selector, mtype, data = record
    if usage in (0, 1):
        return (
            f"usage {usage} ({USAGES[usage]}) is not used by SMTP clients "
            "(RFC 7672 §3.1.3: publish DANE-TA(2) or DANE-EE(3))"
        )
    if usage not in USAGES:
        return f"unknown certificate usage {usage}"
    if selector not in SELECTORS:
        return f"unknown selector {selector}"
    if mtype not in MATCHING_TYPES:
        return f"unknown matching type {mtype}"
    text = str(data)
    try:
        size = len(bytes.fromhex(text))
    except ValueError:
        return "association data is not hexadecimal"
    want = DIGEST_BYTES.get(mtype)
    if want is not None and size != want:
        return f"{MATCHING_TYPES[mtype]} data is {size} bytes, not {want}"
    if size == 0:
        return "empty association data"
    return None


def format_tlsa(record: Any) -> str:
    if not (isinstance(record, tuple) and len(record) == 4):
        return str(record)[:MAX_DATA_CHARS]
    usage, selector, mtype, data = record
    text = str(data)
    if len(text) > MAX_DATA_CHARS:
        text = f"{text[:MAX_DATA_CHARS]}…({len(text) // 2} bytes)"
    names = "/".join(
        (
            USAGES.get(usage, "?"),
            SELECTORS.get(selector, "?"),
            MATCHING_TYPES.get(mtype, "?"),
        )
    )
    return f"{usage} {selector} {mtype} {text} [{names}]"


TLSA_FIX_LINES = {
    "openssl": "openssl x509 -in <certificate.pem> -noout -pubkey "
    "| openssl pkey -pubin -outform DER | openssl dgst -sha256",
    "zone": "_25._tcp.<mx-host>. 3600 IN TLSA 3 1 1 <sha256-hex-of-the-public-key>",
}

DANE_TLSA_MATCH = Code(
    "DANE_TLSA_MATCH",
    "the certificate chain an MX presents matches a DNSSEC-secure TLSA record",
    Severity.INFO,
)
DANE_TLSA_MISMATCH = Code(
    "DANE_TLSA_MISMATCH",
    "no DNSSEC-secure TLSA record matches the certificate chain an MX presents",
    Severity.FAIL,
    fix=Fix(
        "DANE senders refuse to deliver to this MX: publish a TLSA record for the certificate "
        "the server presents now (`3 1 1`: SHA-256 of its public key; `2 0 1`: SHA-256 of the "
        "issuing CA certificate), or install the certificate the records name. When you "
        "change the key, publish the new record beside the old one a few TTLs before the "
        "switch. Check with `openssl s_client -starttls smtp -connect <mx-host>:25 "
        '-dane_tlsa_domain <mx-host> -dane_tlsa_rrdata "3 1 1 <hex>"` (`Verification: OK`).',
        TLSA_FIX_LINES,
    ),
)
DANE_TLSA_UNVERIFIABLE = Code(
    "DANE_TLSA_UNVERIFIABLE",
    "TLSA records are published but are not DNSSEC-secure (unsigned or bogus zone)",
    Severity.WARN,
    fix=Fix(
        "SMTP clients use TLSA records only from a DNSSEC-signed zone with a valid chain of "
        "trust (RFC 7672 §2.2): sign the zone of `_25._tcp.<mx-host>` and publish its DS at "
        "the parent, or fix what makes it bogus (see DNSSEC_BOGUS); otherwise remove the "
        "records. Check with `delv +vtrace TLSA _25._tcp.<mx-host>`.",
        {
            "zone": "; sign the zone (BIND named.conf: dnssec-policy default; inline-signing "
            "yes;\n; Knot: dnssec-signing: on) and give the parent its DS:\n"
            "<zone>. 3600 IN DS <key-tag> 13 2 <sha256-of-the-ksk>",
            "shell": "delv +vtrace TLSA _25._tcp.<mx-host>",
        },
    ),
    follows=("DNSSEC_BOGUS", "DNSSEC_UNSIGNED"),
)
DANE_MATCH_CODES = (DANE_TLSA_MATCH, DANE_TLSA_MISMATCH)


def dane_reproduce(ip: str, port: int, host: str, records: list[tuple[int, int, int, str]]) -> str:
    """The openssl line that repeats the match (OpenSSL 3 `-dane_tlsa_*`)."""
    parts = [
        "openssl",
        "s_client",
        "-starttls",
        "smtp",
        "-connect",
        host_port(ip, port),
        "-servername",
        host,
        "-dane_tlsa_domain",
        host,
    ]
    for usage, selector, mtype, data in records:
        parts += ["-dane_tlsa_rrdata", f"{usage} {selector} {mtype} {data}"]
    parts += ["-verify_return_error", "-brief"]
    return " ".join(shlex.quote(p) for p in parts) + " </dev/null"


def dane_findings(
    probe: BaseProbe, *, ip: str, port: int, host: str, subject: str, net: Net, session: TlsSession
) -> list[Finding]:
    """DANE_TLSA_MATCH / DANE_TLSA_MISMATCH for one MX endpoint's presented chain; nothing when
    the host has no TLSA records, none usable, or they are not DNSSEC-secure."""
    name = tlsa_name(host, port)
    answer = net.dns.query(name, "TLSA")
    if not answer.ok or not answer.records:
        return []
    if not net.dnssec.check(name, "TLSA").secure:
        return []  # dns.dane: DANE_TLSA_UNVERIFIABLE
    chain = session.chain_der or ((session.leaf_der,) if session.leaf_der else ())
    results = match_chain(answer.records, chain, host)
    usable = [r for r in results if r.record[0] in (2, 3) and tlsa_problem(r.record) is None]
    ignored = [r for r in results if r not in usable]
    if not usable:
        return []  # dns.dane: DANE_TLSA_UNUSABLE
    reproduce = dane_reproduce(ip, port, host, [r.record for r in usable])
    evidence: dict[str, str] = {"name": name}
    if ignored:
        evidence["ignored"] = "; ".join(
            f"{format_tlsa(r.record)}: {r.note or 'not usable for SMTP'}"
            for r in ignored[:MAX_LISTED]
        )
    matched = [r for r in usable if r.matched]
    if matched:
        evidence["matched"] = "; ".join(_shown(r) for r in matched[:MAX_LISTED])
        return [
            probe.finding(
                "DANE_TLSA_MATCH",
                Severity.INFO,
                f"{subject}: the certificate chain matches {len(matched)} of {len(usable)} "
                "DNSSEC-secure TLSA record(s)",
                evidence=evidence,
                reproduce=reproduce,
                subject=subject,
            )
        ]
    evidence.update({f"record {i + 1}": _shown(r) for i, r in enumerate(usable[:MAX_LISTED])})
    evidence["presented"] = _presented(chain)
    return [
        probe.finding(
            "DANE_TLSA_MISMATCH",
            Severity.FAIL,
            f"{subject}: no TLSA record at {name} matches the certificate chain it presents "
            "(DANE senders will not deliver)",
            evidence=evidence,
            reproduce=reproduce,
            subject=subject,
        )
    ]


def _shown(result: RecordResult) -> str:
    text = format_tlsa(result.record)
    return f"{text}: {result.note}" if result.note else text


def _presented(chain: tuple[bytes, ...]) -> str:
    """The presented chain as TLSA values a record could name (leaf 3 1 1, others 2 0 1)."""
    shown = []
    for depth, der in enumerate(chain[:4]):
        try:
            if depth == 0:
                shown.append(f"leaf: 3 1 1 {association(der, 1, 1)}")
            else:
                shown.append(f"certificate {depth}: 2 0 1 {association(der, 0, 1)}")
        except ValueError as exc:
            shown.append(f"certificate {depth}: unreadable ({str(exc)[:60]})")
    return "; ".join(shown) or "no certificate"


__all__ = [
    "DANE_MATCH_CODES",
    "DANE_TLSA_MATCH",
    "DANE_TLSA_MISMATCH",
    "DANE_TLSA_UNVERIFIABLE",
    "dane_findings",
    "dane_reproduce",
    "format_tlsa",
    "normalize_name",
    "tlsa_name",
    "tlsa_problem",
]
