"""What a TLS endpoint's leaf certificate and protocol support mean, as findings (pure).

The network door does the handshake (chain verified against `--ca-file` or the system store,
host name NOT checked by OpenSSL) and hands over the parsed leaf (`CertInfo`) and the verdict
(`VerifyResult`). This module judges; it never touches a socket.

Codes (subject: "host:port"; reproduce: the openssl line the caller built):
- CERT_EXPIRED [fail] notAfter is in the past.
- CERT_NOT_YET_VALID [fail] notBefore is in the future.
- CERT_EXPIRING_SOON [warn] the whole days left fall outside the operator's warning range
  (`Thresholds.cert_days_warn`, default `21:`: fewer than EXPIRY_WARN_DAYS); at fail severity
  when they fall outside the critical range (`cert_days_crit`, default none).
- CERT_SELF_SIGNED [warn] the leaf is self-signed (issuer == subject, signature verifies with
  its own key). It replaces CERT_UNTRUSTED for that certificate.
- CERT_UNTRUSTED [fail] chain verification failed for a reason none of the findings above
  explains (evidence: OpenSSL verify_code, verify_message, ca_source). OpenSSL's codes 9/10
  (not yet valid/expired) are explained by the date findings and 18 (self-signed leaf) by
  CERT_SELF_SIGNED, but only when this module reached the same conclusion from the
  certificate itself (e.g. code 10 for an expired intermediate is CERT_UNTRUSTED).
- CERT_HOSTNAME_MISMATCH [fail] the name the client connected for is not in the certificate.
- CERT_WEAK_KEY [warn] RSA/DSA key under 2048 bits, EC key under 224 bits.
- CERT_WEAK_SIGNATURE [warn] MD2/MD4/MD5/SHA-1 signature on a leaf that is not self-signed (a
  self-signed certificate's own signature carries no trust, so its hash does not matter).
- CERT_OK [info] none of the above: what was seen (subject, issuer, names, dates, key, trust).
- TLS_LEGACY_PROTOCOL [warn for TLSv1/TLSv1.1, fail for SSLv3] one per accepted legacy version.
- TLS_NEGOTIATED [info] always: negotiated version and cipher, versions accepted/refused/
  not testable with the local OpenSSL.

Evidence values are short strings; long name lists are cut to about MAX_EVIDENCE characters
with a count of what was left out.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from probes.codes import Code, declare
from probes.model import Finding, Severity, Thresholds
from probes.parse.certificate import CertInfo, hostname_matches
from probes.parse.nagios_range import Range, parse_range
from probes.probe import BaseProbe

EXPIRY_WARN_DAYS = 21
MAX_EVIDENCE = 200  # characters of one evidence value built from a list

MIN_RSA_BITS = 2048  # also DSA
MIN_EC_BITS = 224

# OpenSSL X509_V_ERR_* codes the date/self-signed findings can explain
X509_V_ERR_CERT_NOT_YET_VALID = 9
X509_V_ERR_CERT_HAS_EXPIRED = 10
X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT = 18
X509_V_ERR_HOSTNAME_MISMATCH = 62
X509_V_ERR_IP_ADDRESS_MISMATCH = 64

# signature algorithms whose hash is broken for certificate signatures (names as
# CertInfo.signature_algorithm gives them, and the dotted OIDs for good measure)
WEAK_SIGNATURE_ALGORITHMS = frozenset(
    {
        "md2withrsaencryption",
        "md4withrsaencryption",
        "md5withrsaencryption",
        "sha1withrsaencryption",
        "sha1withrsasignature",
        "ecdsa-with-sha1",
        "dsa-with-sha1",
        "1.2.840.113549.1.1.2",  # md2WithRSAEncryption
        "1.2.840.113549.1.1.3",  # md4WithRSAEncryption
        "1.2.840.113549.1.1.4",  # md5WithRSAEncryption
        "1.2.840.113549.1.1.5",  # sha1WithRSAEncryption
        "1.3.14.3.2.29",  # sha1WithRSASignature (OIW)
        "1.2.840.10045.4.1",  # ecdsa-with-SHA1
        "1.2.840.10040.4.3",  # dsa-with-sha1
    }
)

# The codes this module emits, declared once: every probe that judges TLS includes them.
TLS_CODES = declare(
    Code("CERT_EXPIRED", "the certificate's notAfter is in the past", Severity.FAIL),
    Code("CERT_NOT_YET_VALID", "the certificate's notBefore is in the future", Severity.FAIL),
    Code(
        "CERT_EXPIRING_SOON",
        f"the certificate expires in fewer than {EXPIRY_WARN_DAYS} days (or outside the "
        "--cert-days-warn range; fail outside --cert-days-crit)",
        Severity.WARN,
    ),
    Code(
        "CERT_SELF_SIGNED",
        "the leaf certificate is self-signed (reported instead of CERT_UNTRUSTED for it)",
        Severity.WARN,
    ),
    Code(
        "CERT_UNTRUSTED",
        "the certificate chain does not verify for a reason no other finding explains",
        Severity.FAIL,
    ),
    Code(
        "CERT_HOSTNAME_MISMATCH",
        "the certificate does not name the host the client connected for",
        Severity.FAIL,
    ),
    Code("CERT_WEAK_KEY", "RSA/DSA key under 2048 bits, or EC key under 224 bits", Severity.WARN),
    Code(
        "CERT_WEAK_SIGNATURE",
        "MD5 or SHA-1 signature on a leaf that is not self-signed",
        Severity.WARN,
    ),
    Code("CERT_OK", "none of the certificate findings: what was seen", Severity.INFO),
    Code(
        "TLS_LEGACY_PROTOCOL",
        "the server accepts a legacy protocol version (fail for SSLv3)",
        Severity.WARN,
    ),
    Code(
        "TLS_NEGOTIATED",
        "the negotiated version and cipher; the versions accepted, refused and untested",
        Severity.INFO,
    ),
)

PROTOCOL_VERSIONS = ("SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
LEGACY_SEVERITY = {"SSLv3": Severity.FAIL, "TLSv1": Severity.WARN, "TLSv1.1": Severity.WARN}


@dataclass(frozen=True)
class VerifyResult:
    """OpenSSL's chain verdict for the leaf (host name not checked by OpenSSL)."""

    verified: bool
    code: int | None = None  # X509_V_ERR_* when not verified
    message: str | None = None
    ca_source: str = "system store"  # or the --ca-file path


def shorten_list(items: Iterable[str], limit: int = MAX_EVIDENCE, empty: str = "none") -> str:
    """Space-separated items, cut to about `limit` characters with a count of the rest."""
    items = list(items)
    if not items:
        return empty
    shown: list[str] = []
    used = 0
    for item in items:
        item = shorten(item, limit)
        if shown and used + 1 + len(item) > limit:
            break
        shown.append(item)
        used += len(item) + (1 if used else 0)
    left = len(items) - len(shown)
    text = " ".join(shown)
    return f"{text} … (+{left} more, {len(items)} in all)" if left else text


def shorten(text: str, limit: int = MAX_EVIDENCE) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def days_left(info: CertInfo, now: dt.datetime) -> int:
    """Whole days from `now` until notAfter (negative once expired)."""
    return math.floor((info.not_after - _aware(now)).total_seconds() / 86400)


def cert_day_ranges(thresholds: Thresholds) -> tuple[Range, Range | None]:
    """The warning and critical days-left ranges (the defaults when none are set)."""
    warn = parse_range(thresholds.cert_days_warn)
    crit = parse_range(thresholds.cert_days_crit) if thresholds.cert_days_crit else None
    return warn, crit


def _aware(now: dt.datetime) -> dt.datetime:
    return now if now.tzinfo is not None else now.replace(tzinfo=dt.UTC)


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _key_text(info: CertInfo) -> str:
    parts = [info.key_type]
    if info.key_bits is not None:
        parts.append(f"{info.key_bits} bits")
    if info.curve:
        parts.append(info.curve)
    return " ".join(parts)


def weak_key(info: CertInfo) -> bool:
    if info.key_bits is None:
        return False
    if info.key_type in ("RSA", "DSA"):
        return info.key_bits < MIN_RSA_BITS
    if info.key_type == "EC":
        return info.key_bits < MIN_EC_BITS
    return False


def weak_signature(info: CertInfo) -> bool:
    return info.signature_algorithm.lower() in WEAK_SIGNATURE_ALGORITHMS


def _verify_text(verify: VerifyResult) -> tuple[str, str]:
    code = "unknown" if verify.code is None else str(verify.code)
    return code, shorten(verify.message or "unknown", MAX_EVIDENCE)


def certificate_findings(
    probe: BaseProbe,
    *,
    info: CertInfo,
    verify: VerifyResult,
    hostname: str | None,
    now: dt.datetime,
    subject: str,
    reproduce: str,
    thresholds: Thresholds | None = None,
) -> list[Finding]:
    """Findings for one endpoint's leaf certificate (a naive `now` is taken as UTC).

    `thresholds` (validated, probes.validate): the days-left ranges of CERT_EXPIRING_SOON."""
    now = _aware(now)
    warn_range, crit_range = cert_day_ranges(thresholds or Thresholds())
    findings: list[Finding] = []

    def add(code: str, severity: Severity, message: str, evidence: dict[str, str]) -> None:
        findings.append(
            probe.finding(
                code,
                severity,
                message,
                evidence=evidence,
                reproduce=reproduce,
                subject=subject,
            )
        )

    left = days_left(info, now)
    code, message = _verify_text(verify)
    explained: set[int] = set()
    cert_subject = shorten(info.subject)

    def stopped(reason: str) -> dict[str, str]:
        """Evidence when OpenSSL's verification failed at this very check: it may have
        stopped there, so nothing is claimed about the rest of the chain."""
        return {
            "verify_code": code,
            "verify_message": message,
            "chain_checked": f"no (verification stopped at {reason}; trust not established)",
        }

    if info.not_after < now:
        explained.add(X509_V_ERR_CERT_HAS_EXPIRED)
        add(
            "CERT_EXPIRED",
            Severity.FAIL,
            f"{subject}: certificate expired {-left} day(s) ago ({_iso(info.not_after)})",
            {
                "certificate": cert_subject,
                "not_after": _iso(info.not_after),
                "days_left": str(left),
                **(stopped("expiry") if verify.code == X509_V_ERR_CERT_HAS_EXPIRED else {}),
            },
        )
    elif warn_range.alerts(left) or (crit_range is not None and crit_range.alerts(left)):
        critical = crit_range is not None and crit_range.alerts(left)
        evidence = {
            "certificate": cert_subject,
            "not_after": _iso(info.not_after),
            "days_left": str(left),
        }
        below = warn_range.lower_only
        if below is not None and below.is_integer():
            evidence["warn_below_days"] = str(int(below))
        if warn_range.text != Thresholds.cert_days_warn:
            evidence["warn_range"] = warn_range.text
        if crit_range is not None:
            evidence["crit_range"] = crit_range.text
        add(
            "CERT_EXPIRING_SOON",
            Severity.FAIL if critical else Severity.WARN,
            f"{subject}: certificate expires in {left} day(s) ({_iso(info.not_after)})",
            evidence,
        )
    if info.not_before > now:
        explained.add(X509_V_ERR_CERT_NOT_YET_VALID)
        add(
            "CERT_NOT_YET_VALID",
            Severity.FAIL,
            f"{subject}: certificate not valid before {_iso(info.not_before)}",
            {
                "certificate": cert_subject,
                "not_before": _iso(info.not_before),
                "now": _iso(now),
                **(
                    stopped("validity start")
                    if verify.code == X509_V_ERR_CERT_NOT_YET_VALID
                    else {}
                ),
            },
        )
    if info.self_signed:
        evidence = {
            "certificate": cert_subject,
            "sha256_fingerprint": info.sha256_fingerprint,
        }
        if verify.verified:
            evidence["trusted"] = f"yes (explicitly, via {shorten(verify.ca_source)})"
        else:
            evidence.update({"trusted": "no", "verify_code": code, "verify_message": message})
        add(
            "CERT_SELF_SIGNED",
            Severity.WARN,
            f"{subject}: certificate is self-signed",
            evidence,
        )
    if hostname and not hostname_matches(info, hostname):
        explained.update({X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH})
        evidence = {
            "expected": hostname,
            "san_dns": shorten_list(info.dns_names),
            "san_ip": shorten_list(info.ip_addresses),
        }
        if not info.dns_names:
            evidence["common_name"] = shorten_list(info.common_names)
        add(
            "CERT_HOSTNAME_MISMATCH",
            Severity.FAIL,
            f"{subject}: certificate is not valid for {hostname}",
            evidence,
        )
    if not verify.verified and not info.self_signed and verify.code not in explained:
        add(
            "CERT_UNTRUSTED",
            Severity.FAIL,
            f"{subject}: certificate chain does not verify against "
            f"{shorten(verify.ca_source)}: {message}",
            {
                "verify_code": code,
                "verify_message": message,
                "ca_source": shorten(verify.ca_source),
                "issuer": shorten(info.issuer),
                "certificate": cert_subject,
            },
        )
    if weak_key(info):
        add(
            "CERT_WEAK_KEY",
            Severity.WARN,
            f"{subject}: certificate key is weak ({_key_text(info)})",
            {
                "key_type": info.key_type,
                "key_bits": str(info.key_bits),
                "minimum_bits": str(MIN_EC_BITS if info.key_type == "EC" else MIN_RSA_BITS),
                **({"curve": info.curve} if info.curve else {}),
            },
        )
    if weak_signature(info) and not info.self_signed:
        add(
            "CERT_WEAK_SIGNATURE",
            Severity.WARN,
            f"{subject}: certificate signed with a broken hash ({info.signature_algorithm})",
            {"signature_algorithm": info.signature_algorithm, "issuer": shorten(info.issuer)},
        )
    if not findings:
        add(
            "CERT_OK",
            Severity.INFO,
            f"{subject}: certificate valid until {_iso(info.not_after)}, verified",
            {
                "certificate": cert_subject,
                "issuer": shorten(info.issuer),
                "san_dns": shorten_list(info.dns_names),
                "san_ip": shorten_list(info.ip_addresses),
                "not_after": _iso(info.not_after),
                "days_left": str(left),
                "key": _key_text(info),
                "signature_algorithm": info.signature_algorithm,
                "verified": f"yes, against {shorten(verify.ca_source)}",
                "hostname_checked": hostname or "no (no name given)",
                "sha256_fingerprint": info.sha256_fingerprint,
            },
        )
    return findings


def _untested_reason(version: str) -> str:
    if version == "SSLv3":
        return "SSLv3 (local OpenSSL has no SSLv3)"
    return f"{version} (local OpenSSL cannot offer {version})"


def tls_version_findings(
    probe: BaseProbe,
    *,
    negotiated: str,
    cipher: str,
    accepted: Mapping[str, bool | None],
    subject: str,
    reproduce: str,
) -> list[Finding]:
    """TLS_LEGACY_PROTOCOL per accepted legacy version, then one TLS_NEGOTIATED.

    `accepted`: version -> True (server accepted), False (refused), None (the local OpenSSL
    could not try it). Versions missing from `accepted` are reported as not tried; the
    negotiated version counts as accepted.
    """
    versions = list(PROTOCOL_VERSIONS) + sorted(v for v in accepted if v not in PROTOCOL_VERSIONS)
    verdict: dict[str, bool | None] = {v: accepted.get(v) for v in versions}
    if negotiated in verdict:
        verdict[negotiated] = True
    elif negotiated:
        versions.append(negotiated)
        verdict[negotiated] = True
    findings: list[Finding] = []
    for version in versions:
        severity = LEGACY_SEVERITY.get(version)
        if severity is not None and verdict[version] is True:
            findings.append(
                probe.finding(
                    "TLS_LEGACY_PROTOCOL",
                    severity,
                    f"{subject} accepts {version}",
                    evidence={"version": version, "negotiated": negotiated or "unknown"},
                    reproduce=reproduce,
                    subject=subject,
                )
            )
    yes = [v for v in versions if verdict[v] is True]
    no = [v for v in versions if verdict[v] is False]
    untested = [
        _untested_reason(v) if v in accepted else f"{v} (not tried)"
        for v in versions
        if verdict[v] is None
    ]
    findings.append(
        probe.finding(
            "TLS_NEGOTIATED",
            Severity.INFO,
            f"{subject} negotiated {negotiated or 'unknown'} with {cipher or 'unknown cipher'}",
            evidence={
                "negotiated": negotiated or "unknown",
                "cipher": shorten(cipher or "unknown"),
                "accepted": shorten_list(yes),
                "refused": shorten_list(no),
                "untested": shorten(", ".join(untested) if untested else "none"),
            },
            reproduce=reproduce,
            subject=subject,
        )
    )
    return findings
