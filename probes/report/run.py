"""One run of the harness against one target, and what it means for the exit status."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from probes.model import Finding, Outcome, ProbeResult, Severity, Target

SCHEMA_VERSION = 1

# Exit statuses (docs/contract.md).
EXIT_OK = 0  # nothing at or above the failure threshold
EXIT_FINDINGS = 1  # findings at or above the threshold
EXIT_USAGE = 2  # usage or configuration error
EXIT_PROBE_ERROR = 3  # some probe could not run (outcome ERROR) and nothing failed


@dataclass(frozen=True)
class RunReport:
    """Everything one run produced; `to_json()` is the contract's schema 1."""

    run_id: str
    target: Target
    started: datetime  # timezone-aware
    duration_s: float
    results: tuple[ProbeResult, ...]
    # DNS questions of the run: {"queries": wire queries, "cache_hits": ..., "failures": ...}
    dns: dict[str, int] | None = None
    # The findings new since the previous comparable run in the history (probes.drift), as
    # (result index, finding index); None when the run was not compared with the history.
    new: frozenset[tuple[int, int]] | None = None
    _new_ids: frozenset[int] = field(default=frozenset(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.started.tzinfo is None or self.started.utcoffset() is None:
            raise ValueError("RunReport.started must be timezone-aware (UTC)")
        object.__setattr__(self, "results", tuple(self.results))
        if self.new is not None:
            ids = frozenset(id(self.results[i].findings[j]) for i, j in self.new)
            object.__setattr__(self, "_new_ids", ids)

    def is_new(self, finding: Finding) -> bool:
        """True for a finding of this report that is new since the previous comparable run."""
        return id(finding) in self._new_ids

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "run_id": self.run_id,
            "target": self.target.to_json(),
            "started": iso_utc(self.started),
            "duration_s": round(self.duration_s, 6),
            "results": [self._result_json(i, r) for i, r in enumerate(self.results)],
            "dns": dict(self.dns) if self.dns is not None else None,
        }

    def _result_json(self, index: int, result: ProbeResult) -> dict[str, Any]:
        out = result.to_json()
        if self.new is not None:  # compared with the history: every finding says if it is new
            for j, finding in enumerate(out["findings"]):
                finding["new"] = (index, j) in self.new
        return out

    def count(self, outcome: Outcome) -> int:
        return sum(1 for r in self.results if r.outcome is outcome)

    def count_findings(self, severity: Severity) -> int:
        return sum(1 for r in self.results for f in r.findings if f.severity is severity)


def iso_utc(moment: datetime) -> str:
    """ISO-8601 in UTC with a trailing Z, e.g. 2026-11-21T22:15:03.123456Z."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def new_run_id(now: datetime | None = None) -> str:
    """A sortable, unique-enough run id: UTC timestamp + 6 random hex, "20261121T221503Z-ab12cd".

    A naive `now` is taken to be UTC.
    """
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def exit_status(report: RunReport, fail_on: Severity = Severity.FAIL) -> int:
    """1 if any finding is at or above `fail_on`; else 3 if any probe ended in ERROR; else 0."""
    if any(f.severity >= fail_on for r in report.results for f in r.findings):
        return EXIT_FINDINGS
    if any(r.outcome is Outcome.ERROR for r in report.results):
        return EXIT_PROBE_ERROR
    return EXIT_OK
