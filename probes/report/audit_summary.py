"""The counts of a `check --domains` audit, with one definition for every output.

A domain is
- *failing* when its exit status is 1 (a finding at or above `--fail-on`; with `--fail-on
  new:SEV` a new one);
- *with probe errors* when a probe of it ended in ERROR, whatever else it found: exactly the
  domains whose text line lists `errors:`, whose Nagios line says `N could not run`, that
  `mailprobe_audit_domains_with_probe_errors` counts and whose JSON report has a result with
  outcome ERROR;
- *ok* when its exit status is 0 (then no probe ended in ERROR).

A domain can be failing and have probe errors; its exit status is then 1 (1 takes precedence
over 3), so `mailprobe_audit_domains{status="probe_error"}` counts the domains with probe
errors and nothing failing. The summary says how many are both, so that it adds up: domains =
failing + with probe errors - both + ok.
"""

from __future__ import annotations

from dataclasses import dataclass

from probes.model import Outcome, Severity
from probes.report.run import EXIT_FINDINGS, EXIT_OK, RunReport


def probe_errors(report: RunReport) -> list[str]:
    """`probe:REASON` of every probe of the run that ended in ERROR."""
    return [
        f"{r.probe_id}:{r.error.value if r.error else 'ERROR'}"
        for r in report.results
        if r.outcome is Outcome.ERROR
    ]


def domain_line(report: RunReport) -> str:
    """The text line of one domain: domain, worst severity (or ok), its warn and fail codes,
    and `errors: probe:REASON ...` when a probe ended in ERROR."""
    worst = max(
        (f.severity for r in report.results for f in r.findings),
        key=lambda s: s.rank,
        default=None,
    )
    codes = sorted(
        {f.code for r in report.results for f in r.findings if f.severity is not Severity.INFO}
    )
    errors = probe_errors(report)
    parts = [report.target.domain, worst.value if worst else "ok"]
    if codes:
        parts.append(" ".join(codes))
    if errors:
        parts.append("errors: " + " ".join(errors))
    return "  ".join(parts)


@dataclass
class AuditCounts:
    """The audit's domains counted as they arrive (see the module docstring)."""

    domains: int = 0
    failing: int = 0
    with_errors: int = 0
    both: int = 0
    ok: int = 0
    queries: int = 0
    network: int = 0  # of them, asked of the network (the rest came from the shared cache)

    def add(self, report: RunReport, status: int) -> None:
        errored = bool(probe_errors(report))
        self.domains += 1
        self.failing += status == EXIT_FINDINGS
        self.with_errors += errored
        self.both += errored and status == EXIT_FINDINGS
        self.ok += status == EXIT_OK
        self.queries += (report.dns or {}).get("queries", 0)
        self.network += (report.dns or {}).get("network_queries", 0)

    def text(self, fail_on: str, seconds: float) -> str:
        """`N domains in Ts: F with findings at or above SEV, E with probe errors (B of them
        also with findings), O ok; Q DNS queries (M to the network)` (the part in brackets
        only when B > 0; `with new findings` for `--fail-on new:SEV`)."""
        kind, _, severity = fail_on.rpartition(":")
        findings = "new findings" if kind == "new" else "findings"
        both = f" ({self.both} of them also with {findings})" if self.both else ""
        return (
            f"{self.domains} domains in {seconds:.1f}s: "
            f"{self.failing} with {findings} at or above {severity}, "
            f"{self.with_errors} with probe errors{both}, {self.ok} ok; "
            f"{self.queries} DNS queries ({self.network} to the network)"
        )
