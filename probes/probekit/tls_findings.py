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
- CERT_SEEN [info] after any of the above: the certificate seen (subject, issuer, names,
  validity, key, sha256 fingerprint), so every endpoint's certificate is in the state a diff
  compares whatever its judgement.
Evidence that changes with the clock, not the certificate (`days_left`, `now`), is marked
volatile (VOLATILE_CERT_KEYS).
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

from probes.codes import Code, Fix, declare
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

# Where each server takes its certificate (the leaf followed by its intermediates: the
# full chain) and key from; the certificate fixes below start from these lines.
CERT_FILES = {
    "exim": "tls_certificate = /etc/exim4/tls/<host>.crt\n"
    "tls_privatekey = /etc/exim4/tls/<host>.key",
    "postfix": "smtpd_tls_cert_file = /etc/postfix/tls/<host>.crt\n"
    "smtpd_tls_key_file = /etc/postfix/tls/<host>.key",
    "sendmail": "define(`confSERVER_CERT', `/etc/mail/tls/<host>.crt')dnl\n"
    "define(`confSERVER_KEY', `/etc/mail/tls/<host>.key')dnl",
    "dovecot": "ssl_cert = </etc/dovecot/tls/<host>.crt\nssl_key = </etc/dovecot/tls/<host>.key",
    "perdition": "ssl_cert_file /etc/perdition/tls/<host>.crt\n"
    "ssl_key_file /etc/perdition/tls/<host>.key",
}
RELOAD = (
    "Then reload each server that uses the certificate (`systemctl reload exim4`, "
    "`postfix reload`, `systemctl reload sendmail`, `doveadm reload`; restart Perdition)."
)
SHOW_CERT = (
    "openssl s_client -connect <host>:<port> -servername <host> -starttls smtp </dev/null "
    "2>/dev/null | openssl x509 -noout -subject -issuer -dates -ext subjectAltName\n"
    "# -starttls imap / pop3 on 143 / 110; no -starttls on 465, 993, 995"
)


def _cert_fix(what: str, **extra: str) -> Fix:
    """A certificate fix: `what`, CERT_FILES for the servers, and `extra` systems' lines."""
    return Fix(f"{what} {RELOAD}", {**CERT_FILES, **extra})


# The codes this module emits, declared once: every probe that judges TLS includes them.
TLS_CODES = declare(
    Code(
        "CERT_EXPIRED",
        "the certificate's notAfter is in the past",
        Severity.FAIL,
        fix=_cert_fix(
            "Renew the certificate and install the new one where the server reads it, with "
            "its intermediates. Automate the renewal (certbot's timer, with a deploy hook that "
            "copies the files and reloads the servers) so it does not lapse again.",
            shell="certbot renew --cert-name <host>\n" + SHOW_CERT,
        ),
    ),
    Code(
        "CERT_NOT_YET_VALID",
        "the certificate's notBefore is in the future",
        Severity.FAIL,
        fix=Fix(
            "Check the server's clock first: a clock in the past makes a new certificate look "
            "not yet valid (and the probe's clock, for that matter). If both clocks are right, "
            "the certificate was issued for a later date: serve the previous one until then.",
            {
                "shell": "timedatectl            # System clock synchronized: yes\n"
                "timedatectl set-ntp true\n"
                "openssl x509 -in <certificate.pem> -noout -startdate",
            },
        ),
    ),
    Code(
        "CERT_EXPIRING_SOON",
        f"the certificate expires in fewer than {EXPIRY_WARN_DAYS} days (or outside the "
        "--cert-days-warn range; fail outside --cert-days-crit)",
        Severity.WARN,
        fix=_cert_fix(
            "Renew the certificate now and install the new one where the server reads it. If "
            "renewal is automated, find out why it did not run: certbot renews 30 days before "
            "expiry, so a certificate this close to its end means the timer or the deploy hook "
            "failed.",
            shell="certbot renew --cert-name <host> --deploy-hook 'systemctl reload <service>'\n"
            "systemctl list-timers 'certbot*'\n" + SHOW_CERT,
        ),
    ),
    Code(
        "CERT_SELF_SIGNED",
        "the leaf certificate is self-signed (reported instead of CERT_UNTRUSTED for it)",
        Severity.WARN,
        fix=_cert_fix(
            "Get a certificate from a public CA (e.g. Let's Encrypt) for the server's name and "
            "serve it with its intermediates. Clients cannot tell a self-signed certificate "
            "from an attacker's. (For an MX alone, a DANE TLSA `3 1 1` record in a "
            "DNSSEC-signed zone also authenticates a self-signed certificate.)",
            shell="certbot certonly --standalone -d <host>\n" + SHOW_CERT,
        ),
    ),
    Code(
        "CERT_UNTRUSTED",
        "the certificate chain does not verify for a reason no other finding explains",
        Severity.FAIL,
        fix=_cert_fix(
            "Most often the server sends its certificate without the intermediate "
            "certificates: point it at the full chain (Let's Encrypt's fullchain.pem; for "
            "sendmail, the intermediates in confCACERT), and make sure the chain ends at a CA "
            "that clients trust. The evidence has OpenSSL's verify message.",
            sendmail=CERT_FILES["sendmail"]
            + "\ndefine(`confCACERT', `/etc/mail/tls/<host>.chain.pem')dnl\n"
            "define(`confCACERT_PATH', `/etc/ssl/certs')dnl",
            openssl="openssl s_client -connect <host>:<port> -servername <host> -starttls smtp "
            "-showcerts </dev/null\n"
            "openssl verify -untrusted <chain.pem> <certificate.pem>",
        ),
    ),
    Code(
        "CERT_HOSTNAME_MISMATCH",
        "the certificate does not name the host the client connected for",
        Severity.FAIL,
        fix=_cert_fix(
            "Get a certificate whose subjectAltName lists every name clients use for this "
            "server: the MX host name exactly as the MX record gives it, and the names users "
            "configure for submission, IMAP and POP3. Serve it on every port.",
            shell="certbot certonly --standalone -d <host> -d <other-name>\n" + SHOW_CERT,
        ),
    ),
    Code(
        "CERT_WEAK_KEY",
        "RSA/DSA key under 2048 bits, or EC key under 224 bits",
        Severity.WARN,
        fix=_cert_fix(
            "Have the certificate reissued for a new key: RSA of at least 2048 bits, or ECDSA "
            "P-256.",
            openssl="openssl req -new -newkey rsa:2048 -nodes -keyout <host>.key "
            "-out <host>.csr -subj '/CN=<host>' -addext 'subjectAltName=DNS:<host>'",
            shell="certbot certonly --standalone --key-type ecdsa -d <host>",
        ),
    ),
    Code(
        "CERT_WEAK_SIGNATURE",
        "MD5 or SHA-1 signature on a leaf that is not self-signed",
        Severity.WARN,
        fix=_cert_fix(
            "Have the certificate reissued by a CA that signs with SHA-256 or better: clients "
            "reject MD5 and SHA-1 signatures.",
            openssl="openssl x509 -in <certificate.pem> -noout -text | grep 'Signature Algorithm'",
        ),
    ),
    Code("CERT_OK", "none of the certificate findings: what was seen", Severity.INFO),
    Code(
        "CERT_SEEN",
        "the certificate seen (fingerprint, issuer, validity) when a certificate finding "
        "judged it; CERT_OK otherwise",
        Severity.INFO,
    ),
    Code(
        "TLS_LEGACY_PROTOCOL",
        "the server accepts a legacy protocol version (fail for SSLv3)",
        Severity.WARN,
        fix=Fix(
            "Accept TLS 1.2 and 1.3 only: SSLv3, TLS 1.0 and TLS 1.1 are broken or deprecated "
            "(RFC 8996), and every current client speaks TLS 1.2. Set the floor in each server "
            "that listens on the port, reload it, and check that "
            "`openssl s_client -connect <host>:<port> -tls1_1` fails.",
            {
                "exim": "# Exim built with GnuTLS (Debian's exim4 packages):\n"
                "tls_require_ciphers = NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2\n"
                "# Exim built with OpenSSL:\n"
                "openssl_options = +no_sslv2 +no_sslv3 +no_tlsv1 +no_tlsv1_1",
                "postfix": "# Postfix 3.6 and later\n"
                "smtpd_tls_protocols = >=TLSv1.2\n"
                "smtpd_tls_mandatory_protocols = >=TLSv1.2\n"
                "# before Postfix 3.6, the same as:\n"
                "# smtpd_tls_protocols = !SSLv2, !SSLv3, !TLSv1, !TLSv1.1",
                "sendmail": "define(`confSERVER_SSL_OPTIONS', `+SSL_OP_NO_SSLv2 +SSL_OP_NO_SSLv3 "
                "+SSL_OP_NO_TLSv1 +SSL_OP_NO_TLSv1_1')dnl",
                "dovecot": "ssl_min_protocol = TLSv1.2",
                "perdition": "ssl_listen_min_proto_version tlsv1.2",
            },
        ),
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


# Certificate evidence that changes with the clock, not the certificate: never drift.
VOLATILE_CERT_KEYS = ("days_left", "now")


def certificate_state(info: CertInfo) -> dict[str, str]:
    """What identifies the certificate seen (CERT_SEEN, and CERT_OK's core)."""
    return {
        "certificate": shorten(info.subject),
        "issuer": shorten(info.issuer),
        "san_dns": shorten_list(info.dns_names),
        "san_ip": shorten_list(info.ip_addresses),
        "not_before": _iso(info.not_before),
        "not_after": _iso(info.not_after),
        "key": _key_text(info),
        "signature_algorithm": info.signature_algorithm,
        "sha256_fingerprint": info.sha256_fingerprint,
    }


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
                volatile=[k for k in VOLATILE_CERT_KEYS if k in evidence],
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
    if findings:
        # The judgements above name what is wrong; the certificate itself is still state.
        add(
            "CERT_SEEN",
            Severity.INFO,
            f"{subject}: certificate {_fingerprint_short(info)}, issued by "
            f"{shorten(info.issuer, 80)}, valid until {_iso(info.not_after)}",
            {**certificate_state(info), "days_left": str(left)},
        )
    else:
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


def _fingerprint_short(info: CertInfo) -> str:
    return "sha256 " + info.sha256_fingerprint.replace(":", "")[:16].lower()


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
