"""What changed between runs: the diff of two stored runs, the new findings of a run, and
whether a failing run fails for the same reason as the runs before it.

Findings are the same finding when their identity (target domain, probe, code, subject)
matches; they are unchanged when their severity and their *stable* evidence (the evidence
without the volatile keys of either side) match. Message text and volatile evidence never count
as a change. A probe that did not complete (ERROR, SKIPPED, or not run) in either run is *not
checked*: its findings are neither new nor resolved. docs/scenarios.md, "History and drift".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple

from probes.history import CompactRow, Entry, HistoryDB, HistoryError, stable_json
from probes.model import Finding, Outcome, Severity
from probes.report.run import EXIT_FINDINGS, EXIT_OK, EXIT_PROBE_ERROR, RunReport, iso_utc

COMPLETED = Outcome.COMPLETED.value


class Changed(NamedTuple):
    """The same finding with another severity or other stable evidence."""

    domain: str
    before: Finding
    after: Finding
    # stable evidence keys that changed: {key: (before or None, after or None)}
    evidence: Mapping[str, tuple[str | None, str | None]] = MappingProxyType({})


class NotChecked(NamedTuple):
    """A probe whose findings could not be compared: it did not complete in one of the runs."""

    domain: str
    probe_id: str
    before: str  # COMPLETED, ERROR (REASON), SKIPPED or "not run"
    after: str
    findings_before: int  # findings left uncompared
    findings_after: int


@dataclass(frozen=True)
class Diff:
    run_a: str
    run_b: str
    new: list[Entry]
    resolved: list[Entry]
    changed: list[Changed]
    not_checked: list[NotChecked] = field(default_factory=list)
    # Two `check --domains` batches compared domain by domain (`batch`): the domains of each
    # and those in one batch only (their probes are also listed as not checked).
    batch: bool = False
    domains_before: int = 0
    domains_after: int = 0
    domains_added: list[str] = field(default_factory=list)
    domains_removed: list[str] = field(default_factory=list)

    @property
    def domains_compared(self) -> int:
        return self.domains_after - len(self.domains_added)

    def per_domain(self) -> list[tuple[str, int, int, int]]:
        """(domain, new, resolved, changed) of every domain with drift, by domain."""
        counts: dict[str, list[int]] = {}
        kinds = (
            [e.domain for e in self.new],
            [e.domain for e in self.resolved],
            [c.domain for c in self.changed],
        )
        for i, domains in enumerate(kinds):
            for domain in domains:
                counts.setdefault(domain, [0, 0, 0])[i] += 1
        return [(d, n, r, c) for d, (n, r, c) in sorted(counts.items())]

    @property
    def drift(self) -> bool:
        """Anything new, resolved or changed (not-checked probes are not drift)."""
        return bool(self.new or self.resolved or self.changed)

    def worsened(self) -> list[Finding]:
        """New findings, and changed ones that got more severe or whose evidence changed."""
        out = [e.finding for e in self.new]
        out += [c.after for c in self.changed if c.evidence or c.after.severity > c.before.severity]
        return out

    def to_json(self) -> dict[str, object]:
        def entry(e: Entry) -> dict[str, object]:
            return {"domain": e.domain, "probe": e.finding.probe_id, **e.finding.to_json()}

        out: dict[str, object] = {
            "run_a": self.run_a,
            "run_b": self.run_b,
            "new": [entry(e) for e in self.new],
            "resolved": [entry(e) for e in self.resolved],
            "changed": [
                {
                    "domain": c.domain,
                    "probe": c.after.probe_id,
                    "code": c.after.code,
                    "subject": c.after.subject,
                    "before": {"severity": c.before.severity.value, "message": c.before.message},
                    "after": {"severity": c.after.severity.value, "message": c.after.message},
                    "evidence": {k: {"before": b, "after": a} for k, (b, a) in c.evidence.items()},
                }
                for c in self.changed
            ],
        }
        if self.batch:  # two --domains batches (additive)
            out["batch"] = {
                "domains_before": self.domains_before,
                "domains_after": self.domains_after,
                "compared": self.domains_compared,
            }
            out["domains_added"] = list(self.domains_added)
            out["domains_removed"] = list(self.domains_removed)
            out["per_domain"] = [
                {"domain": d, "new": n, "resolved": r, "changed": c}
                for d, n, r, c in self.per_domain()
            ]
        if self.not_checked:  # only when some probe could not be compared (additive)
            out["not_checked"] = [
                {
                    "domain": n.domain,
                    "probe": n.probe_id,
                    "before": n.before,
                    "after": n.after,
                    "findings_before": n.findings_before,
                    "findings_after": n.findings_after,
                }
                for n in self.not_checked
            ]
        return out


# -- comparing two runs -----------------------------------------------------------------------


def _outcome_text(outcome: str | None, error: str | None) -> str:
    if outcome is None:
        return "not run"
    return f"{outcome} ({error})" if error else outcome


def _evidence_changes(before: Finding, after: Finding) -> dict[str, tuple[str | None, str | None]]:
    volatile = before.volatile | after.volatile
    old = {k: v for k, v in before.evidence.items() if k not in volatile}
    new = {k: v for k, v in after.evidence.items() if k not in volatile}
    return {
        k: (old.get(k), new.get(k))
        for k in sorted(old.keys() | new.keys())
        if old.get(k) != new.get(k)
    }


def diff_compact(
    db: HistoryDB,
    run_a: str,
    run_b: str,
    *,
    cross: bool = False,
    digests: tuple[dict[str, tuple[str, str | None]], ...] = (),
) -> Diff:
    """The diff of two stored runs (or batches). With `cross` (two single runs of different
    targets) findings are matched without their domain. Domains whose runs have equal digests
    (same probes, all completed, same findings by identity, severity and stable evidence) are
    skipped without reading their findings."""
    da, dbb = digests or (db.digests(run_a), db.digests(run_b))
    if cross:
        ids_a = [rid for rid, _ in da.values()]
        ids_b = [rid for rid, _ in dbb.values()]
    else:
        differ = [d for d in da.keys() | dbb.keys() if _differ(da.get(d), dbb.get(d))]
        ids_a = [da[d][0] for d in differ if d in da]
        ids_b = [dbb[d][0] for d in differ if d in dbb]
    rows_a, outcomes_a = db.compact(ids_a)
    rows_b, outcomes_b = db.compact(ids_b)

    def dom(d: str) -> str:
        return "" if cross else d

    state_a = {(dom(d), p): (o, e) for d, p, o, e in outcomes_a}
    state_b = {(dom(d), p): (o, e) for d, p, o, e in outcomes_b}
    real_domain = {dom(d): d for d, *_ in (*outcomes_a, *outcomes_b)}

    def grouped(rows: list[CompactRow]) -> dict[tuple, list[CompactRow]]:
        out: dict[tuple, list[CompactRow]] = {}
        for row in rows:
            key = (dom(row[0]), row[1], row[2], row[3])
            group = out.get(key)
            if group is None:
                out[key] = [row]
            else:
                group.append(row)
        return out

    ga, gb = grouped(rows_a), grouped(rows_b)
    new_ids: list[int] = []
    gone_ids: list[int] = []
    maybe: list[tuple[int, int]] = []  # (rowid a, rowid b) pairs with differing fast keys
    unchecked: dict[tuple[str, str], list[int]] = {}  # (domain, probe) -> [count a, count b]

    def checked(key: tuple) -> bool:
        sa, sb = state_a.get(key[:2]), state_b.get(key[:2])
        return sa is not None and sb is not None and sa[0] == COMPLETED == sb[0]

    for key, after in gb.items():
        if not checked(key):
            unchecked.setdefault(key[:2], [0, 0])[1] += len(after)
            continue
        before = ga.get(key)
        if before is None:
            new_ids += [r[6] for r in after]
        elif len(before) == 1 and len(after) == 1:
            a, b = before[0], after[0]
            if a[4] != b[4] or a[5] != b[5]:
                maybe.append((a[6], b[6]))
        else:  # repeats: equal ones pair first, then the rest in order
            rest_a = list(before)
            rest_b = []
            for b in after:
                twin = next((a for a in rest_a if a[4] == b[4] and a[5] == b[5]), None)
                if twin is None:
                    rest_b.append(b)
                else:
                    rest_a.remove(twin)
            for a, b in zip(rest_a, rest_b, strict=False):
                maybe.append((a[6], b[6]))
            new_ids += [b[6] for b in rest_b[len(rest_a) :]]
            gone_ids += [a[6] for a in rest_a[len(rest_b) :]]
    for key, before in ga.items():
        if not checked(key):
            unchecked.setdefault(key[:2], [0, 0])[0] += len(before)
        elif key not in gb:
            gone_ids += [r[6] for r in before]

    wanted = new_ids + gone_ids + [i for pair in maybe for i in pair]
    full = db.findings_by_rowid(wanted)
    domain_of = {r[6]: r[0] for r in (*rows_a, *rows_b) if r[6] in full}
    changed = []
    for ia, ib in maybe:
        fa, fb = full[ia], full[ib]
        evidence = _evidence_changes(fa, fb)
        if evidence or fa.severity is not fb.severity:
            changed.append(Changed(domain_of[ib], fa, fb, evidence))

    not_checked = []
    for key in sorted(state_a.keys() | state_b.keys() | unchecked.keys()):
        sa, sb = state_a.get(key), state_b.get(key)
        if sa is not None and sb is not None and sa[0] == COMPLETED == sb[0]:
            continue
        counts = unchecked.get(key, [0, 0])
        one_sided = (sa is not None and sa[0] == COMPLETED) or (
            sb is not None and sb[0] == COMPLETED
        )
        if not (one_sided or any(counts)):
            continue  # checked in neither run and nothing found: nothing was lost
        not_checked.append(
            NotChecked(
                real_domain.get(key[0], key[0]),
                key[1],
                _outcome_text(*(sa or (None, None))),
                _outcome_text(*(sb or (None, None))),
                counts[0],
                counts[1],
            )
        )
    return Diff(
        run_a,
        run_b,
        [Entry(domain_of[i], full[i]) for i in new_ids],
        [Entry(domain_of[i], full[i]) for i in gone_ids],
        changed,
        not_checked,
    )


def _differ(a: tuple[str, str | None] | None, b: tuple[str, str | None] | None) -> bool:
    return a is None or b is None or a[1] is None or a[1] != b[1]


def resolve_pair(db: HistoryDB, run_a: str | None, run_b: str | None) -> tuple[str, str]:
    """Which two runs `mailprobe diff [RUN_A] [RUN_B]` compares.

    No ids: the newest entry of `mailprobe history` and the one before it: for a run, the run
    before it of the same domain and `what`; for a `check --domains` batch, the batch before it
    (same `what`, a domain in common). One id: that run or batch and the one before it. Two
    ids: those (each a run id or a batch id).
    """
    if run_a is not None and run_b is not None:
        for rid in (run_a, run_b):
            if not db.has_id(rid):
                raise HistoryError(f"history {db.path}: no run {rid!r}")
        return run_a, run_b
    if run_a is None:
        latest = db.entries(1)
        if not latest:
            raise HistoryError(f"history {db.path}: no runs recorded; nothing to compare")
        if latest[0].is_batch:
            return _batch_pair(db, latest[0].run_id)
        newer = latest[0]
    elif db.is_batch(run_a):
        return _batch_pair(db, run_a)
    else:
        newer = db.run(run_a)
    before = db.previous(newer.run_id, newer.domain, newer.started, newer.what)
    if before is None:
        what = f" ({newer.what})" if newer.what else ""
        raise HistoryError(
            f"history {db.path}: run {newer.run_id!r} is the first run of {newer.domain}{what};"
            " nothing to compare it with"
        )
    return before.run_id, newer.run_id


def _batch_pair(db: HistoryDB, batch_id: str) -> tuple[str, str]:
    before = db.previous_batch(batch_id)
    if before is None:
        raise HistoryError(
            f"history {db.path}: batch {batch_id!r} is the first --domains batch of its probe"
            " set (with a domain in common); nothing to compare it with"
        )
    return before, batch_id


def diff(
    db: HistoryDB,
    run_a: str | None = None,
    run_b: str | None = None,
    *,
    allow_different_targets: bool = False,
) -> Diff:
    """New, resolved, changed and not-checked findings from run_a (older) to run_b (newer).

    Two runs (or batches) of different targets are refused (HistoryError naming both) unless
    `allow_different_targets`: single runs are then matched without their domain."""
    a, b = resolve_pair(db, run_a, run_b)
    digests = db.digests(a), db.digests(b)
    da, db_ = sorted(digests[0]), sorted(digests[1])
    cross = False
    if da != db_ and not set(da) & set(db_):
        if not allow_different_targets:
            raise HistoryError(
                f"runs of different targets: {a} is {_names(da)}, {b} is {_names(db_)};"
                " compare them anyway with --allow-different-targets"
            )
        cross = len(da) == 1 and len(db_) == 1
    result = diff_compact(db, a, b, cross=cross, digests=digests)
    if not (db.is_batch(a) or db.is_batch(b)):
        return result
    return dataclasses.replace(
        result,
        batch=True,
        domains_before=len(da),
        domains_after=len(db_),
        domains_added=sorted(set(db_) - set(da)),
        domains_removed=sorted(set(da) - set(db_)),
    )


def _names(domains: list[str]) -> str:
    if len(domains) <= 3:
        return ", ".join(domains) or "no target"
    return f"{', '.join(domains[:3])} and {len(domains) - 3} more"


# -- the new findings of one run --------------------------------------------------------------


def new_positions(
    db: HistoryDB, report: RunReport, what: str | None = None
) -> list[tuple[int, int]] | None:
    """(result index, finding index) of every finding of `report` that is new (see
    `compare_with_history`); None when no comparable run exists."""
    compared = compare_with_history(db, report, what)
    return compared.new if compared is not None else None


class Compared(NamedTuple):
    """A run compared with the newest comparable runs before it in the history."""

    new: list[tuple[int, int]]  # (result, finding) positions: new, or changed / worse
    changed: list[tuple[int, int]]  # those of `new` whose identity the baseline had
    resolved: list[Finding]  # the baseline's findings this run no longer has


def compare_with_history(
    db: HistoryDB, report: RunReport, what: str | None = None
) -> Compared | None:
    """(result index, finding index) of every finding of `report` that is new: no finding of
    the same identity, with the same stable evidence and at least its severity, in the newest
    comparable run in which its probe completed (so a probe that errored last night does not
    make today's findings new, and a finding that got worse is new); and the findings of that
    baseline that `report` no longer has, among the probes that completed in `report` too
    (resolved). None when no comparable run exists at all (the first run of a domain and
    `what`)."""
    domain = report.target.domain
    started = iso_utc(report.started)
    baseline_runs = db.completed_before(report.run_id, domain, started, what)
    if not baseline_runs and not db.comparable(report.run_id, domain, started, what):
        return None
    baseline: dict[tuple, list[Finding]] = {}
    for f in db.findings_of(baseline_runs):
        baseline.setdefault(f.identity, []).append(f)
    out = []
    changed = []
    known = set(baseline)
    for i, result in enumerate(report.results):
        for j, f in enumerate(result.findings):
            candidates = baseline.get(f.identity, [])
            match = next((g for g in candidates if _same(g, f) and g.severity >= f.severity), None)
            if match is None:
                out.append((i, j))
                if f.identity in known:
                    changed.append((i, j))
            else:
                candidates.remove(match)
    completed = {r.probe_id for r in report.results if r.outcome is Outcome.COMPLETED}
    seen_now = {f.identity for r in report.results for f in r.findings}
    resolved = [
        f
        for left in baseline.values()
        for f in left
        if f.probe_id in completed and f.identity not in seen_now
    ]
    return Compared(out, changed, resolved)


def _same(before: Finding, after: Finding) -> bool:
    volatile = before.volatile | after.volatile
    return stable_json(dict(before.evidence), volatile) == stable_json(
        dict(after.evidence), volatile
    )


def mark_new(db: HistoryDB, report: RunReport, what: str | None = None) -> RunReport:
    """`report` with its new findings marked (RunReport.new) and the previous run's findings it
    no longer has (RunReport.resolved), when a comparable run exists."""
    compared = compare_with_history(db, report, what)
    if compared is None:
        return report
    return dataclasses.replace(
        report,
        new=frozenset(compared.new),
        changed=frozenset(compared.changed),
        resolved=tuple(compared.resolved),
    )


def new_findings(
    db: HistoryDB,
    report: RunReport,
    fail_on: Severity = Severity.FAIL,
    what: str | None = None,
) -> list[Finding]:
    """Findings of `report` at or above `fail_on` that are new (see `new_positions`); on the
    first run of a domain and `what` every such finding is new."""
    # already marked (mark_new, with the same `what`): no need to ask the history again
    positions = report.new if report.new is not None else new_positions(db, report, what)
    if positions is None:
        return [f for r in report.results for f in r.findings if f.severity >= fail_on]
    found = [report.results[i].findings[j] for i, j in positions]
    return [f for f in found if f.severity >= fail_on]


def exit_status_new(
    db: HistoryDB,
    report: RunReport,
    fail_on: Severity = Severity.FAIL,
    what: str | None = None,
) -> int:
    """`check --fail-on new:SEV`: 1 on new findings at or above SEV, else 3 if a probe
    errored, else 0."""
    if new_findings(db, report, fail_on, what):
        return EXIT_FINDINGS
    if any(r.outcome is Outcome.ERROR for r in report.results):
        return EXIT_PROBE_ERROR
    return EXIT_OK


# -- the same failure as before ---------------------------------------------------------------


def _reason(
    findings: Iterable[Finding], errors: Iterable[tuple[str, str | None]], threshold: Severity
) -> tuple[tuple, ...]:
    """What makes a run fail: its findings at or above `threshold` (identity, severity, stable
    evidence) and its probes that did not complete (probe, ERROR reason or SKIPPED)."""
    keyed = sorted(
        (
            f.probe_id,
            f.code,
            f.subject or "",
            f.severity.value,
            stable_json(dict(f.evidence), f.volatile),
        )
        for f in findings
        if f.severity >= threshold
    )
    return (tuple(keyed), tuple(sorted((p, e or "") for p, e in errors)))


def still_failing(
    db: HistoryDB,
    report: RunReport,
    status: int,
    threshold: Severity,
    what: str | None = None,
    look_back: int = 400,
) -> str | None:
    """One line when `report` fails (status 1 or 3) for exactly the reason the comparable runs
    before it failed with (same status, same findings at or above `threshold` with the same
    stable evidence, same probes in ERROR or SKIPPED): "still failing since RUN (DATE): ...";
    else None."""
    if status == EXIT_OK:
        return None
    findings = [f for r in report.results for f in r.findings]
    errors = [
        (r.probe_id, r.error.value if r.error else "ERROR")
        if r.outcome is Outcome.ERROR
        else (r.probe_id, "SKIPPED")
        for r in report.results
        if r.outcome is not Outcome.COMPLETED
    ]
    reason = _reason(findings, errors, threshold)
    since = None
    runs = db.comparable(
        report.run_id, report.target.domain, iso_utc(report.started), what, limit=look_back
    )
    for run in runs:
        if run.exit_status != status:
            break
        stored = [e.finding for e in db.findings(run.run_id)]
        stored_errors = [
            (p, (e or "ERROR") if o == "ERROR" else "SKIPPED")
            for p, (o, e) in db.outcomes(run.run_id).items()
            if o != COMPLETED
        ]
        if _reason(stored, stored_errors, threshold) != reason:
            break
        since = run
    if since is None:
        return None
    parts = []
    if reason[0]:
        codes = ", ".join(dict.fromkeys(k[1] for k in reason[0]))
        n = len(reason[0])
        parts.append(f"{n} finding{'s' if n != 1 else ''} unchanged ({codes})")
    errs = ", ".join(f"{p} {e}" for p, e in reason[1] if e != "SKIPPED")
    if errs:
        parts.append(f"probe errors unchanged ({errs})")
    skipped = ", ".join(p for p, e in reason[1] if e == "SKIPPED")
    if skipped:
        parts.append(f"probes skipped unchanged ({skipped})")
    return (
        f"mailprobe: still failing since run {since.run_id} ({since.started[:10]}):"
        f" {'; '.join(parts) or 'no findings, same status'}"
    )
