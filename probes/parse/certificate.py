"""An X.509 server certificate (DER) as plain facts, and RFC 6125/9525 host name matching.

Pure: no I/O, `cryptography` only. `parse_certificate` turns the leaf a TLS peer presented
into a `CertInfo`; anything that is not a parseable certificate (garbage, truncated, oversized,
malformed extensions) raises `CertificateParseError`, never another exception type.

`hostname_matches` follows RFC 6125 §6.4 (as tightened by RFC 9525 §6.3):
- an IP literal (dotted IPv4, IPv6, optionally `[bracketed]`) matches SAN iPAddress entries
  only, never a dNSName or the CN;
- a DNS name matches SAN dNSName entries: case-insensitive, one trailing dot ignored, A-labels
  compared as given (a name given in Unicode is converted with Python's IDNA codec first);
- a wildcard is honoured only as the whole left-most label (`*.example.com`), matches exactly
  one non-empty label, never the bare parent (`example.com`), and never when fewer than two
  labels follow it (`*.com`, `*.` are ignored); `f*.example.com`-style partial wildcards are
  ignored (RFC 9525 forbids them);
- the subject CN is consulted (with the same rules) only when the certificate has no dNSName
  SAN at all (RFC 6125 fallback; RFC 9525 drops it, most clients still honour it).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.x509.oid import NameOID

MAX_DER_BYTES = 256 * 1024  # far above any real certificate; larger input is rejected unread


class CertificateParseError(ValueError):
    """The bytes are not a certificate this module can read (message says why)."""


@dataclass(frozen=True)
class CertInfo:
    subject: str  # RFC 4514 string
    issuer: str  # RFC 4514 string
    common_names: tuple[str, ...]
    dns_names: tuple[str, ...]  # SAN dNSName, lower-case, as given (A-labels)
    ip_addresses: tuple[str, ...]  # SAN iPAddress, compressed text form
    not_before: dt.datetime  # aware, UTC
    not_after: dt.datetime  # aware, UTC
    serial: str  # upper-case hex, no separators ("-" prefix for a (non-conforming) negative one)
    key_type: str  # "RSA" | "EC" | "Ed25519" | "Ed448" | "DSA" | other algorithm name / OID
    key_bits: int | None
    curve: str | None  # EC only, e.g. "secp256r1"
    signature_algorithm: str  # e.g. "sha256WithRSAEncryption", or a dotted OID when unknown
    self_signed: bool  # issuer == subject AND the signature verifies with its own key
    sha256_fingerprint: str  # "AB:CD:..." upper-case hex


def parse_certificate(der: bytes) -> CertInfo:
    """The facts of one DER certificate. Raises CertificateParseError on anything unreadable."""
    if not isinstance(der, bytes | bytearray | memoryview):
        raise CertificateParseError(f"expected DER bytes, got {type(der).__name__}")
    der = bytes(der)
    if not der:
        raise CertificateParseError("empty certificate")
    if len(der) > MAX_DER_BYTES:
        raise CertificateParseError(f"certificate too large ({len(der)} bytes)")
    try:
        cert = x509.load_der_x509_certificate(der)
        return _info(cert)
    except CertificateParseError:
        raise
    # cryptography parses lazily: malformed names/extensions surface while reading fields,
    # as ValueError, or as its own Exception subclasses (InvalidVersion, DuplicateExtension,
    # UnsupportedGeneralNameType, ...); all of them mean "not a certificate we can read".
    except (
        ValueError,
        TypeError,
        UnsupportedAlgorithm,
        x509.InvalidVersion,
        x509.DuplicateExtension,
        x509.UnsupportedGeneralNameType,
        x509.AttributeNotFound,
    ) as exc:
        raise CertificateParseError(f"unreadable certificate: {exc}") from None


def _info(cert: x509.Certificate) -> CertInfo:
    dns_names: list[str] = []
    ips: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    if san is not None:
        dns_names = [str(n).lower() for n in san.get_values_for_type(x509.DNSName)]
        ips = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    common_names = tuple(
        a.value if isinstance(a.value, str) else a.value.decode("latin-1")
        for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    )
    key_type, key_bits, curve = _key_facts(cert)
    serial = cert.serial_number
    return CertInfo(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        common_names=common_names,
        dns_names=tuple(dns_names),
        ip_addresses=tuple(ips),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        serial=("-" if serial < 0 else "") + format(abs(serial), "X"),
        key_type=key_type,
        key_bits=key_bits,
        curve=curve,
        signature_algorithm=_oid_name(cert.signature_algorithm_oid),
        self_signed=cert.issuer == cert.subject and _signed_by_own_key(cert),
        sha256_fingerprint=cert.fingerprint(hashes.SHA256()).hex(":").upper(),
    )


def _oid_name(oid: x509.ObjectIdentifier) -> str:
    name = getattr(oid, "_name", None)
    if not name or name == "Unknown OID":
        return oid.dotted_string
    return str(name)


def _key_facts(cert: x509.Certificate) -> tuple[str, int | None, str | None]:
    try:
        key = cert.public_key()
    except (UnsupportedAlgorithm, ValueError):
        return _oid_name(cert.public_key_algorithm_oid), None, None
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size, None
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.key_size, key.curve.name
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256, None
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456, None
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size, None
    return _oid_name(cert.public_key_algorithm_oid), getattr(key, "key_size", None), None


def _signed_by_own_key(cert: x509.Certificate) -> bool:
    """Whether the certificate's signature verifies with its own public key.

    Done by hand rather than with `verify_directly_issued_by`, which refuses SHA-1 and MD5
    signatures: those are exactly the old self-signed certificates worth recognising.
    """
    try:
        key = cert.public_key()
        params = cert.signature_algorithm_parameters
        tbs, sig = cert.tbs_certificate_bytes, cert.signature
        if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(sig, tbs)
        elif isinstance(key, rsa.RSAPublicKey):
            hash_alg = cert.signature_hash_algorithm
            if hash_alg is None or not isinstance(params, padding.PKCS1v15 | padding.PSS):
                return False
            key.verify(sig, tbs, params, hash_alg)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            if not isinstance(params, ec.ECDSA):
                return False
            key.verify(sig, tbs, params)
        elif isinstance(key, dsa.DSAPublicKey):
            hash_alg = cert.signature_hash_algorithm
            if hash_alg is None:
                return False
            key.verify(sig, tbs, hash_alg)
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
        return False
    return True


# -- host name matching ------------------------------------------------------------------------


def hostname_matches(info: CertInfo, name: str) -> bool:
    """Whether `name` (a DNS name or an IP literal) is an identity the certificate presents."""
    name = name.strip()
    ip = _ip_literal(name)
    if ip is not None:
        for text in info.ip_addresses:
            try:
                if ipaddress.ip_address(text) == ip:
                    return True
            except ValueError:
                continue
        return False
    reference = _reference_name(name)
    if reference is None:
        return False
    patterns = info.dns_names if info.dns_names else info.common_names
    return any(_pattern_matches(p, reference) for p in patterns)


def _ip_literal(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = name[1:-1] if name.startswith("[") and name.endswith("]") else name
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _reference_name(name: str) -> str | None:
    """The name as lower-case A-labels without the trailing dot, or None when not a host name."""
    name = name.lower()
    if name.endswith("."):
        name = name[:-1]
    if not name.isascii():
        from probes.names import InvalidDomain, to_ascii

        try:
            name = to_ascii(name)
        except InvalidDomain:
            return None
    labels = name.split(".")
    if not name or any(not label or "*" in label for label in labels):
        return None
    return name


def _pattern_matches(pattern: str, reference: str) -> bool:
    pattern = pattern.strip().lower()
    if pattern.endswith("."):
        pattern = pattern[:-1]
    if not pattern or not pattern.isascii():
        return False
    if "*" not in pattern:
        return pattern == reference
    # Only a whole left-most "*" label, with at least two labels after it.
    if not pattern.startswith("*."):
        return False
    parent = pattern[2:]
    parent_labels = parent.split(".")
    if "*" in parent or len(parent_labels) < 2 or any(not label for label in parent_labels):
        return False
    first, _, rest = reference.partition(".")
    return bool(first) and rest == parent
