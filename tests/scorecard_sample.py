"""A RunReport built in code with everything the HTML scorecard draws, its evidence copied from
real lab runs (`check --lab`, and the misconfigured lab): endpoints with STARTTLS, implicit TLS,
legacy versions, an expired certificate, a closed port and logins; the round trip's verdicts
with one aligned and one unaligned DKIM signature; an SPF include tree; hostile text where a
server's reply would be; and, optionally, a trend of earlier runs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from probes.model import ErrorReason, Finding, Outcome, ProbeResult, Severity, Target
from probes.report.run import RunReport, TrendPoint

STARTED = datetime(2026, 12, 5, 2, 0, 0, tzinfo=UTC)
HOSTILE = '<img src=x onerror=alert(1)> "q" \x1b[31m'
MODERN = {"accepted": "TLSv1.2 TLSv1.3", "refused": "TLSv1 TLSv1.1", "negotiated": "TLSv1.3"}
LEGACY = {"accepted": "TLSv1 TLSv1.1 TLSv1.2 TLSv1.3", "refused": "none", "negotiated": "TLSv1.3"}
TREE = (
    "example.test=2 (include:_spf.provider.test=3 (include:_netblocks.provider.test=4), "
    "include:gone.test=NO SPF RECORD, redirect=_macro.test=not followed (macro))"
)


def f(probe, code, severity, subject=None, message="msg", **evidence) -> Finding:
    return Finding(probe, code, severity, message, dict(evidence), None, subject)


INFO, WARN, FAIL = Severity.INFO, Severity.WARN, Severity.FAIL


def _endpoint(probe, subject, *, implicit, cert_days, legacy=False, auth="AUTH_OK"):
    kind = probe.split(".")[0].upper()
    caps = {"auth": "PLAIN LOGIN", "starttls": "implicit TLS" if implicit else "offered"}
    out = [
        f(probe, f"{kind}_CAPABILITIES", INFO, subject, greeting=HOSTILE, **caps),
        f(probe, "TLS_NEGOTIATED", INFO, subject, **(LEGACY if legacy else MODERN)),
    ]
    if cert_days < 0:
        out += [
            f(probe, "CERT_EXPIRED", FAIL, subject, days_left=str(cert_days), not_after="x"),
            f(probe, "CERT_SEEN", INFO, subject, not_after="2026-12-02T00:00:00Z"),
        ]
    else:
        out.append(f(probe, "CERT_OK", INFO, subject, days_left=str(cert_days), not_after="y"))
    if legacy:
        out += [
            f(probe, "TLS_LEGACY_PROTOCOL", WARN, subject, version="TLSv1"),
            f(probe, "TLS_LEGACY_PROTOCOL", WARN, subject, version="TLSv1.1"),
        ]
    if auth:
        out.append(f(probe, auth, FAIL if auth == "AUTH_FAILED" else INFO, subject))
    return out


def scorecard_report(domain: str = "example.test", trend_runs: int = 0) -> RunReport:
    results = [
        ProbeResult(
            "dns.spf",
            Outcome.COMPLETED,
            (
                f("dns.spf", "SPF_RECORD", INFO, domain, record="v=spf1 include:... -all"),
                f("dns.spf", "SPF_LOOKUP_COUNT", INFO, domain, count="9", limit="10", tree=TREE),
                f("dns.spf", "SPF_PERMISSIVE_ALL", FAIL, domain, term="?all"),
            ),
        ),
        ProbeResult(
            "dns.dmarc", Outcome.COMPLETED, (f("dns.dmarc", "DMARC_POLICY", INFO, domain),)
        ),
        ProbeResult(
            "dns.mta_sts", Outcome.COMPLETED, (f("dns.mta_sts", "MTA_STS_MISSING", INFO, None),)
        ),
        ProbeResult(
            "dns.dkim", Outcome.ERROR, (), error=ErrorReason.TIMEOUT, error_detail="no answer"
        ),
        ProbeResult(
            "smtp.mx",
            Outcome.COMPLETED,
            tuple(_endpoint("smtp.mx", f"mx.{domain}:25", implicit=False, cert_days=-3, legacy=1)),
        ),
        ProbeResult(
            "smtp.relay",
            Outcome.COMPLETED,
            (
                f(
                    "smtp.relay",
                    "SMTP_OPEN_RELAY",
                    FAIL,
                    f"mx.{domain}:25",
                    rcpt_to="250 " + HOSTILE,
                ),
            ),
        ),
        ProbeResult(
            "smtp.submissions",
            Outcome.COMPLETED,
            (
                *_endpoint("smtp.submissions", f"mx.{domain}:465", implicit=True, cert_days=12),
                f(
                    "smtp.submissions",
                    "PORT_CLOSED",
                    INFO,
                    f"outbound.{domain}:465",
                    state="refused",
                    open_alternative="587",
                ),
            ),
        ),
        ProbeResult(
            "imap.starttls",
            Outcome.COMPLETED,
            tuple(
                _endpoint(
                    "imap.starttls",
                    f"mailbox.{domain}:143",
                    implicit=False,
                    cert_days=89,
                    auth="AUTH_FAILED",
                )
            ),
        ),
        ProbeResult(
            "message.roundtrip",
            Outcome.COMPLETED,
            (
                f(
                    "message.roundtrip",
                    "OWN_VERDICTS",
                    INFO,
                    domain,
                    dkim=f"pass(d={domain} s=mail) fail(d=esp.example s=k1 t=y)",
                    dmarc="pass",
                    spf="pass (bounces.esp.example)",
                    dkim_aligned=domain,
                    spf_aligned="no",
                ),
            ),
        ),
    ]
    trend = None
    if trend_runs:
        points = []
        for k in range(trend_runs):
            when = STARTED - timedelta(days=trend_runs - 1 - k)
            days = 30 - 5 * k
            points.append(
                TrendPoint(
                    f"{when:%Y%m%dT%H%M%SZ}-00000{k}",
                    when.isoformat().replace("+00:00", "Z"),
                    {"fail": k % 4, "warn": 2 + k % 3, "info": 40 + k, "error": int(k == 3)},
                    {
                        f"mx.{domain}:25": days,
                        f"mx.{domain}:465": days + 2,
                        f"mailbox.{domain}:143": 89,
                    },
                )
            )
        trend = tuple(points)
    return RunReport(
        "20261205T020000Z-abc123",
        Target(domain),
        STARTED,
        3.5,
        tuple(results),
        new=frozenset({(0, 2)}),
        trend=trend,
    )
