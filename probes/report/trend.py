"""The trend of a target over its runs, pure: the point of one report, and the series the HTML
scorecard draws (findings by severity per run, certificate days left per host).

The runs before a report come from the history (HistoryDB.trend, read by the CLI and handed
over as RunReport.trend); nothing here reads a file.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from probes.model import Finding, Outcome, Severity
from probes.report.endpoint_matrix import endpoint_row, is_endpoint_finding, split_subject
from probes.report.run import RunReport, TrendPoint, iso_utc

SEVERITY_SERIES = ("fail", "warn", "info", "error")


def cert_days_of(findings: Iterable[Finding]) -> dict[str, int]:
    """{host:port: days left} of the certificates in `findings` (transport probes' CERT_*)."""
    groups: dict[str, list[Finding]] = {}
    for f in findings:
        if is_endpoint_finding(f) and "days_left" in f.evidence:
            groups.setdefault(f.subject or "", []).append(f)
    out = {}
    for subject, found in groups.items():
        days = endpoint_row(subject, found).cert_days
        if days is not None:
            out[subject] = days
    return out


def point_of(report: RunReport) -> TrendPoint:
    """The trend point of one run."""
    counts = {s.value: report.count_findings(s) for s in Severity}
    counts["error"] = report.count(Outcome.ERROR)
    return TrendPoint(
        report.run_id,
        iso_utc(report.started),
        counts,
        cert_days_of(f for r in report.results for f in r.findings),
    )


@dataclass(frozen=True)
class Series:
    name: str  # "fail", "warn", ... or a host
    values: tuple[int | None, ...]  # one per run; None: not measured in that run


def severity_series(points: Sequence[TrendPoint]) -> list[Series]:
    """Findings per run for each severity, and probes in ERROR."""
    return [Series(k, tuple(p.counts.get(k, 0) for p in points)) for k in SEVERITY_SERIES]


def cert_series(points: Sequence[TrendPoint]) -> list[Series]:
    """Days left per host (the fewest among its ports) per run, hosts by name; a run in which
    no certificate of the host was seen has None."""
    per_run: list[dict[str, int]] = []
    for p in points:
        hosts: dict[str, int] = {}
        for subject, days in p.cert_days.items():
            host = split_subject(subject)[0]
            hosts[host] = min(days, hosts.get(host, days))
        per_run.append(hosts)
    names = sorted({h for run in per_run for h in run})
    return [Series(h, tuple(run.get(h) for run in per_run)) for h in names]
