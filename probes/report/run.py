"""One run of the harness against one target, and what it means for the exit status."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from probes.model import (
    ErrorReason,
    Finding,
    Outcome,
    ProbeResult,
    Severity,
    Target,
    Thresholds,
)

SCHEMA_VERSION = 1

# Exit statuses (docs/contract.md).
EXIT_OK = 0  # nothing at or above the failure threshold
EXIT_FINDINGS = 1  # findings at or above the threshold
EXIT_USAGE = 2  # usage or configuration error
EXIT_PROBE_ERROR = 3  # some probe could not run (outcome ERROR) and nothing failed


@dataclass(frozen=True)
class TrendPoint:
    """One run of a report's trend: its id, start (ISO-8601 UTC), counts of findings by
    severity ("fail", "warn", "info") and of probes in ERROR ("error"), and the days left of
    each certificate a transport probe saw ({"host:port": days})."""

    run_id: str
    started: str
    counts: Mapping[str, int]
    cert_days: Mapping[str, int]


@dataclass(frozen=True)
class RunReport:
    """Everything one run produced; `to_json()` is the contract's schema 1."""

    run_id: str
    target: Target
    started: datetime  # timezone-aware
    duration_s: float
    results: tuple[ProbeResult, ...]
    # DNS questions of the run: {"queries": questions needed, "cache_hits": ..., "failures": ...,
    # "network_queries": those that went to the resolver} (probes.net.dns.DnsStats)
    dns: dict[str, int] | None = None
    # The findings new since the previous comparable run in the history (probes.drift), as
    # (result index, finding index); None when the run was not compared with the history.
    new: frozenset[tuple[int, int]] | None = None
    # Of those, the ones whose finding (same probe, code and subject) the previous run had, with
    # other evidence or a lower severity: changed, not new (a subset of `new`).
    changed: frozenset[tuple[int, int]] = frozenset()
    # The findings of that previous run that this run no longer has, among the probes that
    # completed in both (a probe that did not run or ended ERROR resolves nothing); None when
    # the run was not compared.
    resolved: tuple[Finding, ...] | None = None
    # The runs before this one in the history (same target and probe set), oldest first, and
    # this run last: what the HTML scorecard's trend chart draws. Handed over by the CLI
    # (HistoryDB.trend); None when the run was not read with its history. Not in the JSON.
    trend: tuple[TrendPoint, ...] | None = field(default=None, compare=False)
    _new_ids: frozenset[int] = field(default=frozenset(), init=False, repr=False, compare=False)
    _changed_ids: frozenset[int] = field(default=frozenset(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.started.tzinfo is None or self.started.utcoffset() is None:
            raise ValueError("RunReport.started must be timezone-aware (UTC)")
        object.__setattr__(self, "results", tuple(self.results))
        if self.new is not None:
            ids = frozenset(id(self.results[i].findings[j]) for i, j in self.new)
            object.__setattr__(self, "_new_ids", ids)
            changed = frozenset(id(self.results[i].findings[j]) for i, j in self.changed)
            object.__setattr__(self, "_changed_ids", changed)

    def is_new(self, finding: Finding) -> bool:
        """True for a finding of this report that is new since the previous comparable run, or
        changed (other stable evidence, or worse): what `--fail-on new` counts."""
        return id(finding) in self._new_ids

    def is_changed(self, finding: Finding) -> bool:
        """True for a new finding whose probe, code and subject the previous run had too."""
        return id(finding) in self._changed_ids

    def newness(self, finding: Finding) -> str:
        """ "new", "changed" or "" (not new, or the run was not compared)."""
        if id(finding) not in self._new_ids:
            return ""
        return "changed" if id(finding) in self._changed_ids else "new"

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "run_id": self.run_id,
            "target": self.target.to_json(),
            "started": iso_utc(self.started),
            "duration_s": round(self.duration_s, 6),
            "results": [self._result_json(i, r) for i, r in enumerate(self.results)],
            "dns": dict(self.dns) if self.dns is not None else None,
        } | (
            {"resolved": [{"probe": f.probe_id, **f.to_json()} for f in self.resolved]}
            if self.resolved is not None
            else {}
        )

    @classmethod
    def from_json(cls, data: Any) -> RunReport:
        """The report a schema-1 `to_json()` describes (a stored report.json), so that
        `from_json(r.to_json()).to_json() == r.to_json()`. What schema 1 does not hold (the
        Target's timeouts and message options, a login) comes back as the defaults.
        ValueError saying what is wrong for anything else."""
        try:
            return _report_from_json(data)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(
                f"not a schema-{SCHEMA_VERSION} report: {type(exc).__name__} {exc}"
            ) from None

    def _result_json(self, index: int, result: ProbeResult) -> dict[str, Any]:
        out = result.to_json()
        if self.new is not None:  # compared with the history: every finding says if it is new
            for j, finding in enumerate(out["findings"]):
                finding["new"] = (index, j) in self.new
                if (index, j) in self.changed:
                    finding["changed"] = True
        return out

    def count(self, outcome: Outcome) -> int:
        return sum(1 for r in self.results if r.outcome is outcome)

    def count_findings(self, severity: Severity) -> int:
        return sum(1 for r in self.results for f in r.findings if f.severity is severity)


def _zones(value: Any) -> tuple[str, ...] | None:
    """A target's blocklist zones (absent: None, the defaults)."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise TypeError(f"blocklist zones {value!r}: not a list")
    return tuple(str(z) for z in value)


def _report_from_json(data: dict[str, Any]) -> RunReport:
    if data.get("schema") != SCHEMA_VERSION:
        raise ValueError(f"schema {data.get('schema')!r}: only schema {SCHEMA_VERSION} is known")
    t = data["target"]
    target = Target(
        domain=t["domain"],
        mx_hosts=tuple(t["mx_hosts"]),
        submission_hosts=tuple(t["submission_hosts"]),
        mailbox_hosts=tuple(t["mailbox_hosts"]),
        selectors=tuple(t["selectors"]),
        sending_ips=tuple(t["sending_ips"]),
        resolver=t["resolver"],
        ca_file=t["ca_file"],
        trust_anchor=t.get("trust_anchor"),
        dkim_keys=tuple((str(sel), str(path)) for sel, path in t["dkim_keys"].items()),
        discover_selectors=bool(t["discover_selectors"]),
        thresholds=Thresholds(**t.get("thresholds", {})),
        dnsbls=_zones(t.get("dnsbls")),
        domain_blocklists=_zones(t.get("domain_blocklists")),
    )
    results = []
    new: set[tuple[int, int]] = set()
    changed: set[tuple[int, int]] = set()
    compared = False
    for i, r in enumerate(data["results"]):
        findings = []
        for j, f in enumerate(r["findings"]):
            findings.append(_finding_from_json(r["probe"], f))
            if "new" in f:
                compared = True
                if f["new"]:
                    new.add((i, j))
                if f.get("changed"):
                    changed.add((i, j))
        results.append(
            ProbeResult(
                probe_id=r["probe"],
                outcome=Outcome(r["outcome"]),
                findings=tuple(findings),
                error=ErrorReason(r["error"]) if r["error"] is not None else None,
                error_detail=r["error_detail"],
                duration_s=float(r["duration_s"]),
            )
        )
    started = datetime.fromisoformat(data["started"])
    if started.tzinfo is None:
        raise ValueError(f"started {data['started']!r}: no time zone")
    dns = data.get("dns")
    return RunReport(
        run_id=data["run_id"],
        target=target,
        started=started,
        duration_s=float(data["duration_s"]),
        results=tuple(results),
        dns={str(k): int(v) for k, v in dns.items()} if dns is not None else None,
        new=frozenset(new) if compared else None,
        changed=frozenset(changed),
        resolved=tuple(_finding_from_json(f["probe"], f) for f in data["resolved"])
        if "resolved" in data
        else None,
    )


def _finding_from_json(probe_id: str, f: dict[str, Any]) -> Finding:
    return Finding(
        probe_id=probe_id,
        code=f["code"],
        severity=Severity(f["severity"]),
        message=f["message"],
        evidence=dict(f["evidence"]),
        reproduce=f["reproduce"],
        subject=f["subject"],
        volatile=frozenset(f.get("volatile", ())),
    )


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
