"""The posture grid's items, pure: (area, status, detail) for each area of a run.

Interim: until probes.report.posture lands, areas are the DNS probes (named for what they
check), each endpoint (host:port) and each message probe; status is the worst severity
(fail / warn / pass), error or skipped for a probe that did not complete, absent when every
finding is an info code declared `absent`.
"""

from __future__ import annotations

from probes.model import Outcome, Severity
from probes.report.endpoint_matrix import endpoint_rows
from probes.report.run import RunReport

AREA_NAMES = {
    "dns.spf": "SPF",
    "dns.dkim": "DKIM",
    "dns.dmarc": "DMARC",
    "dns.ptr": "PTR",
    "dns.mta_sts": "MTA-STS",
    "dns.tls_rpt": "TLS-RPT",
    "dns.dane": "DANE",
    "dns.mx": "MX",
    "message.roundtrip": "test message (round trip)",
    "message.receiver": "test message (receiver)",
}
ABSENT_CODES = frozenset({"MTA_STS_MISSING", "TLSRPT_MISSING", "DANE_TLSA_MISSING"})


def posture_items(report: RunReport) -> list[tuple[str, str, str]]:
    items: list[tuple[str, str, str]] = []
    for r in report.results:
        if r.probe_id not in AREA_NAMES:
            continue
        area = AREA_NAMES[r.probe_id]
        if r.outcome is Outcome.ERROR:
            items.append((area, "error", f"{r.error.value if r.error else ''}".strip()))
            continue
        if r.outcome is Outcome.SKIPPED:
            items.append((area, "skipped", r.error_detail or ""))
            continue
        worst = max((f.severity for f in r.findings), default=None)
        serious = [f.code for f in r.findings if f.severity >= Severity.WARN]
        if worst is not None and worst >= Severity.WARN:
            items.append((area, worst.value, " ".join(dict.fromkeys(serious))))
        elif r.findings and all(f.code in ABSENT_CODES for f in r.findings):
            items.append((area, "absent", " ".join(dict.fromkeys(f.code for f in r.findings))))
        else:
            items.append((area, "pass", ""))
    for row in endpoint_rows(report):
        status = "pass" if row.worst in (None, Severity.INFO) else row.worst.value
        items.append((row.subject, status, " ".join(row.problems)))
    return items
