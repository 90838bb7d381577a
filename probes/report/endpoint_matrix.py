"""The endpoint matrix of a run, pure: one row per `host:port` the transport probes talked to,
read from their findings' evidence (nothing is asked again).

Per endpoint: how TLS is reached (`tls`: "STARTTLS", "implicit TLS", "STARTTLS not offered",
"STARTTLS failed", "handshake failed", "closed" or "?"), the TLS versions accepted and refused
(TLS_NEGOTIATED) and the legacy ones flagged (TLS_LEGACY_PROTOCOL), the certificate (CERT_OK,
else the CERT_* problems, and the days left), the AUTH mechanisms offered after TLS
(*_CAPABILITIES `auth`) and what a login did (AUTH_OK / AUTH_FAILED / AUTH_NOT_TRIED /
AUTH_BEFORE_TLS), and the worst severity of every finding about the endpoint (smtp.relay and
smtp.swaks included).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from probes.model import Finding, Severity
from probes.report.posture import is_endpoint
from probes.report.run import RunReport

TRANSPORT_PREFIXES = ("smtp.", "imap.", "pop3.")
CAPABILITIES = ("SMTP_CAPABILITIES", "IMAP_CAPABILITIES", "POP3_CAPABILITIES")
_CERT_INFO = ("CERT_OK", "CERT_SEEN")
_AUTH_WORDS = {
    "AUTH_OK": "login accepted",
    "AUTH_FAILED": "login refused",
    "AUTH_NOT_TRIED": "login not tried",
}
_TLS_PROBLEMS = {
    "STARTTLS_NOT_OFFERED": "STARTTLS not offered",
    "STARTTLS_FAILED": "STARTTLS failed",
    "TLS_HANDSHAKE_FAILED": "handshake failed",
    "PORT_CLOSED": "closed",
}


@dataclass(frozen=True)
class EndpointRow:
    subject: str  # host:port
    host: str
    port: int | None
    probes: tuple[str, ...]
    tls: str
    negotiated: str  # "TLSv1.3" or ""
    accepted: tuple[str, ...]
    refused: tuple[str, ...]
    legacy: tuple[str, ...]  # accepted versions flagged TLS_LEGACY_PROTOCOL
    cert: str  # "ok", "none seen", or the CERT_* problem codes joined with a space
    cert_days: int | None
    cert_not_after: str
    auth_mechanisms: str  # "PLAIN LOGIN", "" when none offered or unknown
    auth: str  # "login accepted", "login refused", "login not tried", "" (no login tried)
    auth_before_tls: bool
    worst: Severity | None  # None: only... nothing (no findings)
    problems: tuple[str, ...]  # warn/fail codes, each once, worst first


def split_subject(subject: str) -> tuple[str, int | None]:
    """`host:port` (or `[v6]:port`) into its parts; a subject without a port: (subject, None)."""
    host, sep, port = subject.rpartition(":")
    if not sep or not port.isdigit() or not host:
        return subject, None
    return host.strip("[]"), int(port)


def _words(text: str | None) -> tuple[str, ...]:
    if not text or text.strip().lower() == "none":
        return ()
    return tuple(text.split())


def _days(text: str | None) -> int | None:
    try:
        return int(str(text).strip())
    except (TypeError, ValueError):
        return None


def is_endpoint_finding(finding: Finding) -> bool:
    """A transport probe's finding about a `host:port` (what probes.report.posture calls an
    endpoint)."""
    return finding.probe_id.startswith(TRANSPORT_PREFIXES) and is_endpoint(finding.subject)


def endpoint_row(subject: str, findings: Iterable[Finding]) -> EndpointRow:
    """The row of one endpoint from the findings about it (any order)."""
    found = list(findings)
    by_code: dict[str, list[Finding]] = {}
    for f in found:
        by_code.setdefault(f.code, []).append(f)

    def first(code: str) -> Finding | None:
        return by_code[code][0] if code in by_code else None

    caps = next((by_code[c][0] for c in CAPABILITIES if c in by_code), None)
    tls = "?"
    if caps is not None:
        starttls = caps.evidence.get("starttls", "")
        tls = {"offered": "STARTTLS", "implicit TLS": "implicit TLS"}.get(starttls, tls)
    for code, words in _TLS_PROBLEMS.items():
        if code in by_code and not (code == "PORT_CLOSED" and caps is not None):
            tls = words
            break
    negotiated = first("TLS_NEGOTIATED")
    accepted = _words(negotiated.evidence.get("accepted")) if negotiated else ()
    refused = _words(negotiated.evidence.get("refused")) if negotiated else ()
    legacy = tuple(
        dict.fromkeys(f.evidence.get("version", "") for f in by_code.get("TLS_LEGACY_PROTOCOL", ()))
    )
    if tls == "?" and negotiated is not None:
        tls = "TLS"
    cert_problems = tuple(
        dict.fromkeys(
            f.code for f in found if f.code.startswith("CERT_") and f.code not in _CERT_INFO
        )
    )
    cert_f = next(
        (by_code[c][0] for c in ("CERT_OK", "CERT_SEEN", *cert_problems) if c in by_code), None
    )
    days = None
    not_after = ""
    seen: list[Finding] = [by_code[c][0] for c in cert_problems]
    if cert_f is not None:
        seen.append(cert_f)
    for cert_finding in seen:
        if days is None:
            days = _days(cert_finding.evidence.get("days_left"))
        if not not_after:
            not_after = cert_finding.evidence.get("not_after", "")
    if cert_problems:
        cert = " ".join(cert_problems)
    elif "CERT_OK" in by_code:
        cert = "ok"
    else:
        cert = "none seen"
    auth = next((words for code, words in _AUTH_WORDS.items() if code in by_code), "")
    mechanisms = caps.evidence.get("auth", "") if caps is not None else ""
    if mechanisms.strip().lower() == "none":
        mechanisms = ""
    serious = sorted(
        (f for f in found if f.severity >= Severity.WARN), key=lambda f: -f.severity.rank
    )
    host, port = split_subject(subject)
    return EndpointRow(
        subject=subject,
        host=host,
        port=port,
        probes=tuple(dict.fromkeys(f.probe_id for f in found)),
        tls=tls,
        negotiated=negotiated.evidence.get("negotiated", "") if negotiated else "",
        accepted=accepted,
        refused=refused,
        legacy=tuple(v for v in legacy if v),
        cert=cert,
        cert_days=days,
        cert_not_after=not_after,
        auth_mechanisms=mechanisms,
        auth=auth,
        auth_before_tls="AUTH_BEFORE_TLS" in by_code,
        worst=max((f.severity for f in found), default=None),
        problems=tuple(dict.fromkeys(f.code for f in serious)),
    )


def endpoint_rows(report: RunReport) -> list[EndpointRow]:
    """One row per endpoint the transport probes reported on, by host then port."""
    groups: dict[str, list[Finding]] = {}
    for result in report.results:
        for f in result.findings:
            if is_endpoint_finding(f):
                groups.setdefault(f.subject or "", []).append(f)
    rows = [endpoint_row(s, fs) for s, fs in groups.items()]
    return sorted(rows, key=lambda r: (r.host, r.port or 0))


def cert_days(report: RunReport) -> dict[str, int]:
    """{host:port: days left} of every certificate a transport probe saw (the trend chart)."""
    return {r.subject: r.cert_days for r in endpoint_rows(report) if r.cert_days is not None}
