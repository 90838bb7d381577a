"""Prometheus text exposition format 0.0.4, e.g. for node_exporter's textfile collector.

Every sample carries a `domain` label. Metrics (all gauges):
- mailprobe_findings{code,severity,probe}: findings per code, severity and probe;
- mailprobe_findings_by_severity{severity}: all three severities, zeros included;
- mailprobe_probe_duration_seconds{probe};
- mailprobe_probe_outcome{probe,outcome}: 1 for the probe's outcome, 0 for the other two;
- mailprobe_run_duration_seconds, mailprobe_run_timestamp_seconds (start, Unix time);
- mailprobe_certificate_days_left{probe,subject}: from the `days_left` evidence of CERT_OK,
  CERT_EXPIRING_SOON and CERT_EXPIRED (negative once expired);
- mailprobe_dkim_key_bits{selector}: from dns.dkim findings' `bits` evidence.
Where one label set would repeat (two records for one selector, ...) the smallest value is
kept: the one an alert should see. Label values are escaped (backslash, double quote,
newline) as the format requires.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from typing import TextIO

from probes.model import Outcome, Severity
from probes.report.run import RunReport

CERT_CODES = ("CERT_OK", "CERT_EXPIRING_SOON", "CERT_EXPIRED")
DKIM_PROBE = "dns.dkim"

Labels = tuple[tuple[str, str], ...]


def label_value(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _help_text(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def _int_or_none(value: object) -> int | None:
    try:
        return int(str(value).strip())
    except ValueError:
        return None


class _Exposition:
    def __init__(self, domain: str) -> None:
        self.domain = domain
        self.lines: list[str] = []

    def metric(self, name: str, help_text: str, samples: Iterable[tuple[Labels, float]]) -> None:
        self.lines.append(f"# HELP {name} {_help_text(help_text)}")
        self.lines.append(f"# TYPE {name} gauge")
        for labels, value in samples:
            pairs = (("domain", self.domain), *labels)
            text = ",".join(f'{k}="{label_value(v)}"' for k, v in pairs)
            self.lines.append(f"{name}{{{text}}} {_number(value)}")


def _smallest(pairs: Iterable[tuple[Labels, int]]) -> list[tuple[Labels, float]]:
    kept: dict[Labels, int] = {}
    for labels, value in pairs:
        kept[labels] = min(value, kept.get(labels, value))
    return list(kept.items())


def render(report: RunReport, stream: TextIO) -> None:
    out = _Exposition(report.target.domain)
    findings = [f for r in report.results for f in r.findings]
    by_code = Counter((f.code, f.severity.value, f.probe_id) for f in findings)
    out.metric(
        "mailprobe_findings",
        "Findings of the run by code, severity and probe.",
        (
            ((("code", c), ("severity", s), ("probe", p)), n)
            for (c, s, p), n in sorted(by_code.items())
        ),
    )
    out.metric(
        "mailprobe_findings_by_severity",
        "Findings of the run by severity.",
        [((("severity", s.value),), report.count_findings(s)) for s in Severity],
    )
    out.metric(
        "mailprobe_probe_duration_seconds",
        "How long each probe ran, in seconds.",
        [((("probe", r.probe_id),), r.duration_s) for r in report.results],
    )
    out.metric(
        "mailprobe_probe_outcome",
        "How each probe ended: 1 for its outcome (COMPLETED, ERROR or SKIPPED), else 0.",
        (
            ((("probe", r.probe_id), ("outcome", o.value)), int(r.outcome is o))
            for r in report.results
            for o in Outcome
        ),
    )
    out.metric(
        "mailprobe_run_duration_seconds",
        "How long the whole run took, in seconds.",
        [((), report.duration_s)],
    )
    out.metric(
        "mailprobe_run_timestamp_seconds",
        "When the run started, in seconds since the Unix epoch.",
        [((), report.started.timestamp())],
    )
    cert_days = (
        ((("probe", f.probe_id), ("subject", f.subject or "")), days)
        for f in findings
        if f.code in CERT_CODES
        and (days := _int_or_none(f.evidence.get("days_left", ""))) is not None
    )
    out.metric(
        "mailprobe_certificate_days_left",
        "Days until the certificate served at a host:port expires (negative: expired).",
        _smallest(cert_days),
    )
    dkim_bits = (
        ((("selector", f.evidence.get("selector") or f.subject or ""),), bits)
        for f in findings
        if f.probe_id == DKIM_PROBE
        and (bits := _int_or_none(f.evidence.get("bits", ""))) is not None
    )
    out.metric(
        "mailprobe_dkim_key_bits",
        "Size in bits of the DKIM public key published for a selector.",
        _smallest(dkim_bits),
    )
    stream.write("\n".join(out.lines) + "\n")
