"""Human-readable summary: one line per probe, findings by severity, a tally."""

from __future__ import annotations

from typing import TextIO

from probes.model import Finding, Outcome, ProbeResult, Severity
from probes.report.run import RunReport, iso_utc

SEVERITY_ORDER = (Severity.FAIL, Severity.WARN, Severity.INFO)


def _plural(n: int, word: str) -> str:
    if n == 1:
        return f"{n} {word}"
    return f"{n} {word[:-1]}ies" if word.endswith("y") else f"{n} {word}s"


def _result_line(result: ProbeResult, width: int) -> str:
    line = f"  {result.probe_id:<{width}}  {result.outcome.value:<9}  {result.duration_s:7.3f}s"
    if result.outcome is Outcome.ERROR and result.error is not None:
        line += f"  {result.error.value}"
    if result.error_detail:
        line += f"  {result.error_detail}"
    return line


def _finding_lines(finding: Finding, new: bool = False) -> list[str]:
    where = finding.probe_id + (f" {finding.subject}" if finding.subject else "")
    mark = "NEW " if new else ""
    lines = [f"  {mark}{finding.code} [{where}] {finding.message}"]
    if finding.evidence:
        evidence = ", ".join(f"{k}={v}" for k, v in finding.evidence.items())
        lines.append(f"      evidence: {evidence}")
    if finding.reproduce:
        lines.append(f"      reproduce: {finding.reproduce}")
    return lines


def tally(report: RunReport) -> str:
    """E.g. "3 probes: 2 completed, 1 error, 0 skipped; findings: 1 fail, 2 warn, 0 info"."""
    outcomes = ", ".join(
        f"{report.count(o)} {o.value.lower()}"
        for o in (Outcome.COMPLETED, Outcome.ERROR, Outcome.SKIPPED)
    )
    findings = ", ".join(f"{report.count_findings(s)} {s.value}" for s in SEVERITY_ORDER)
    return f"{_plural(len(report.results), 'probe')}: {outcomes}; findings: {findings}"


def render(report: RunReport, stream: TextIO) -> None:
    out = [
        f"mailprobe run {report.run_id} for {report.target.domain}",
        f"started {iso_utc(report.started)}, took {report.duration_s:.3f}s",
        "",
    ]
    if not report.results:
        out += ["no probes installed/selected: nothing was checked", ""]
    else:
        width = max(len(r.probe_id) for r in report.results)
        out.append("probes:")
        out += [_result_line(r, width) for r in report.results]
        out.append("")
        findings = [f for r in report.results for f in r.findings]
        for severity in SEVERITY_ORDER:
            group = [f for f in findings if f.severity is severity]
            if group:
                out.append(f"{severity.value.upper()}:")
                for finding in group:
                    out += _finding_lines(finding, report.is_new(finding))
                out.append("")
    out.append(tally(report))
    if report.new is not None:
        out.append(f"new since the previous comparable run: {len(report.new)}")
    if report.dns is not None:
        out.append(
            f"DNS: {_plural(report.dns.get('queries', 0), 'query')} sent, "
            f"{report.dns.get('cache_hits', 0)} answered from the run's cache"
        )
    stream.write("\n".join(out) + "\n")
