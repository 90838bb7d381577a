"""TLSA records (RFC 6698, RFC 7218) matched against a presented certificate chain, as SMTP
clients do (RFC 7672). Pure: DER in, verdicts out; `cryptography` only.

- **DANE-EE (3)**: the leaf certificate (selector 0) or its SubjectPublicKeyInfo (selector 1)
  matches; nothing else about the leaf is checked (RFC 7672 §3.1.1: no name, no expiry).
- **DANE-TA (2)**: a certificate of the chain other than the leaf (or, selector 1, its key)
  matches, every certificate from the leaf up to it is signed by the next, and the leaf
  names the MX host (RFC 7672 §3.1.2, §3.2.2). A trust-anchor key the server does not send
  is not looked for.
- **PKIX-TA (0) / PKIX-EE (1)** are not for SMTP (RFC 7672 §3.1.3): never matched, reported.
- Matching types 0 (the whole data), 1 (SHA-256), 2 (SHA-512).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from probes.parse.certificate import CertificateParseError, hostname_matches, parse_certificate

DANE_TA, DANE_EE = 2, 3
USABLE_USAGES = (DANE_TA, DANE_EE)


@dataclass(frozen=True)
class RecordResult:
    """One TLSA record against the chain."""

    record: tuple[int, int, int, str]
    matched: bool
    depth: int | None = None  # the chain position that matched (0 = the leaf)
    note: str = ""  # why not, or what matched


def association(cert_der: bytes, selector: int, mtype: int) -> str:
    """The TLSA association data (hex) of a certificate for `selector` and `mtype`.

    Raises CertificateParseError for a certificate that cannot be read, ValueError for an
    unknown selector or matching type."""
    if selector == 0:
        data = cert_der
    elif selector == 1:
        data = _spki(cert_der)
    else:
        raise ValueError(f"unknown selector {selector}")
    if mtype == 0:
        return data.hex()
    if mtype == 1:
        return hashlib.sha256(data).hexdigest()
    if mtype == 2:
        return hashlib.sha512(data).hexdigest()
    raise ValueError(f"unknown matching type {mtype}")


def _load(der: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except (ValueError, TypeError) as exc:
        raise CertificateParseError(f"unreadable certificate: {exc}") from None


def _spki(der: bytes) -> bytes:
    cert = _load(der)
    try:
        return cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    except Exception:  # an algorithm cryptography cannot load: cut the SPKI out of the DER
        return _raw_spki(cert)


def _raw_spki(cert: x509.Certificate) -> bytes:
    # tbsCertificate's 7th element (with an explicit version) is the SubjectPublicKeyInfo.
    tbs = cert.tbs_certificate_bytes
    _, body = _tlv(tbs, 0)
    items: list[bytes] = []
    pos = body
    while pos < len(tbs) and len(items) < 7:
        end, _ = _tlv(tbs, pos)
        items.append(tbs[pos:end])
        pos = end
    return items[6] if tbs[body] == 0xA0 else items[5]


def _tlv(data: bytes, pos: int) -> tuple[int, int]:
    """(end of the element at pos, start of its content)."""
    length = data[pos + 1]
    start = pos + 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[start : start + count], "big")
        start += count
    return start + length, start


def normalized(record: Any) -> tuple[int, int, int, str] | None:
    """A door TLSA record (usage, selector, mtype, hex) with lower-case data, or None."""
    if not (isinstance(record, tuple) and len(record) == 4):
        return None
    usage, selector, mtype, data = record
    if not all(isinstance(v, int) for v in (usage, selector, mtype)):
        return None
    text = str(data).lower()
    try:
        bytes.fromhex(text)
    except ValueError:
        return None
    return usage, selector, mtype, text


def match_chain(records: Sequence[Any], chain: Sequence[bytes], host: str) -> list[RecordResult]:
    """Each record against the chain (leaf first), for MX host `host`."""
    results = []
    for raw in records:
        record = normalized(raw)
        if record is None:
            results.append(RecordResult((-1, -1, -1, str(raw)[:80]), False, note="unparsable"))
            continue
        results.append(_match_one(record, chain, host))
    return results


def _match_one(
    record: tuple[int, int, int, str], chain: Sequence[bytes], host: str
) -> RecordResult:
    usage, selector, mtype, data = record
    if usage not in USABLE_USAGES:
        return RecordResult(
            record, False, note=f"usage {usage} is not used by SMTP (RFC 7672 §3.1.3)"
        )
    if not chain:
        return RecordResult(record, False, note="no certificate presented")
    depths = [0] if usage == DANE_EE else list(range(1, len(chain)))
    for depth in depths:
        try:
            value = association(chain[depth], selector, mtype)
        except (CertificateParseError, ValueError) as exc:
            return RecordResult(record, False, note=str(exc)[:120])
        if value != data:
            continue
        if usage == DANE_EE:
            return RecordResult(record, True, 0, "the leaf certificate")
        problem = _chain_problem(chain[: depth + 1], host)
        if problem:
            return RecordResult(record, False, depth, problem)
        return RecordResult(record, True, depth, f"chain certificate {depth} (trust anchor)")
    what = "the leaf certificate" if usage == DANE_EE else "no certificate above the leaf"
    return RecordResult(record, False, note=f"{what} does not match")


def _chain_problem(chain: Sequence[bytes], host: str) -> str | None:
    """Why the chain from the leaf to the matched trust anchor does not hold, or None."""
    try:
        certs = [_load(der) for der in chain]
    except CertificateParseError as exc:
        return str(exc)
    for depth in range(len(certs) - 1):
        try:
            certs[depth].verify_directly_issued_by(certs[depth + 1])
        except Exception as exc:  # InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm
            kind = type(exc).__name__
            return f"certificate {depth} is not signed by certificate {depth + 1} ({kind})"
    try:
        info = parse_certificate(chain[0])
    except CertificateParseError as exc:
        return str(exc)
    if not hostname_matches(info, host):
        return f"the leaf certificate does not name {host} (DANE-TA requires it)"
    return None
