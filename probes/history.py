"""The run history: every run stored in one SQLite file, and what changed between two runs.

`HistoryDB(path)` opens or creates the store; a file that is not SQLite, or a SQLite database
of another application, is refused with `HistoryError` (exit 2) and never modified. `add()`
writes a whole run in one transaction, so a killed run leaves either the whole run or nothing.
`diff()` compares two runs by (target domain, probe id, code, subject); `new_findings()` is
what `check --fail-on new` keys on (docs: "Run history").
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from probes.errors import UsageError
from probes.model import Finding, Severity
from probes.report.run import RunReport, exit_status, iso_utc

DEFAULT_PATH = Path("reports") / "history.sqlite"
APPLICATION_ID = 0x4D50524F  # "MPRO": PRAGMA application_id of every mailprobe history file
SCHEMA_VERSION = 1  # PRAGMA user_version
_JSON = json.JSONEncoder(separators=(",", ":")).encode
SQLITE_MAGIC = b"SQLite format 3\x00"
TABLES = {"meta", "runs", "results", "findings"}

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY,
    batch_id TEXT,
    started TEXT NOT NULL,
    duration_s REAL NOT NULL,
    target_domain TEXT NOT NULL,
    target_json TEXT NOT NULL,
    exit_status INTEGER NOT NULL,
    n_fail INTEGER NOT NULL,
    n_warn INTEGER NOT NULL,
    n_info INTEGER NOT NULL,
    n_error INTEGER NOT NULL
);
CREATE INDEX runs_by_domain ON runs (target_domain, started);
CREATE INDEX runs_by_batch ON runs (batch_id);
CREATE TABLE results (
    run_id TEXT NOT NULL REFERENCES runs (run_id),
    probe_id TEXT NOT NULL,
    outcome TEXT NOT NULL,
    error TEXT,
    duration_s REAL NOT NULL
);
CREATE INDEX results_by_run ON results (run_id);
CREATE TABLE findings (
    run_id TEXT NOT NULL REFERENCES runs (run_id),
    probe_id TEXT NOT NULL,
    code TEXT NOT NULL,
    severity TEXT NOT NULL,
    subject TEXT,
    message TEXT NOT NULL,
    evidence_json TEXT NOT NULL,
    reproduce TEXT
);
CREATE INDEX findings_by_run ON findings (run_id, probe_id, code, subject);
"""


class HistoryError(UsageError):
    """The history file is unusable (corrupt, foreign, newer schema, unknown run); exit 2."""


@dataclass(frozen=True)
class RunSummary:
    """One row of `mailprobe history`."""

    run_id: str
    batch_id: str | None
    started: str  # ISO-8601 UTC, as in the JSON report
    duration_s: float
    domain: str
    exit_status: int
    counts: dict[str, int]  # {"fail": n, "warn": n, "info": n, "error": probes in ERROR}

    def to_json(self) -> dict[str, object]:
        return {
            "run_id": self.run_id,
            "batch_id": self.batch_id,
            "started": self.started,
            "duration_s": self.duration_s,
            "domain": self.domain,
            "exit_status": self.exit_status,
            "counts": dict(self.counts),
        }


class Entry(NamedTuple):
    """A finding of one target domain (new or resolved)."""

    domain: str
    finding: Finding


class Changed(NamedTuple):
    """The same (domain, probe, code, subject) with a different severity or message."""

    domain: str
    before: Finding
    after: Finding


@dataclass(frozen=True)
class Diff:
    run_a: str
    run_b: str
    new: list[Entry]
    resolved: list[Entry]
    changed: list[Changed]

    def to_json(self) -> dict[str, object]:
        def entry(e: Entry) -> dict[str, object]:
            return {"domain": e.domain, "probe": e.finding.probe_id, **e.finding.to_json()}

        return {
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
                }
                for c in self.changed
            ],
        }


class HistoryDB:
    """The history store at `path`; created when absent (unless `create=False`)."""

    def __init__(self, path: str | Path = DEFAULT_PATH, *, create: bool = True) -> None:
        self.path = Path(path)
        exists = self.path.exists() and self.path.stat().st_size > 0
        if exists:
            self._check_existing()
        elif not create:
            raise HistoryError(f"history {self.path}: no such history file")
        else:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise HistoryError(f"history {self.path}: {exc.strerror or exc}") from None
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None)
        except sqlite3.Error as exc:
            raise HistoryError(f"history {self.path}: cannot open: {exc}") from None
        if not exists:
            self._create()

    # -- opening --------------------------------------------------------------------------

    def _check_existing(self) -> None:
        """Refuse a file that is not ours; a foreign file is only ever read as bytes.

        The SQLite header carries the application id (offset 68), so a file of another
        application is refused before SQLite opens it. Our own file is then checked through a
        read-only connection, or a normal one when a hot journal shows an interrupted write
        (opening it rolls that write back, as SQLite always does).
        """
        try:
            with open(self.path, "rb") as stream:
                header = stream.read(100)
        except OSError as exc:
            raise HistoryError(f"history {self.path}: {exc.strerror or exc}") from None
        if len(header) < 100 or not header.startswith(SQLITE_MAGIC):
            raise HistoryError(f"history {self.path}: not an SQLite file; refusing to use it")
        app_id = int.from_bytes(header[68:72], "big")
        if app_id != APPLICATION_ID:
            raise HistoryError(
                f"history {self.path}: an SQLite database of another application"
                f" (application_id {app_id:#x}); refusing to use it"
            )
        journal = self.path.with_name(self.path.name + "-journal")
        try:
            if journal.exists():
                con = sqlite3.connect(self.path)
            else:
                con = sqlite3.connect(self.path.resolve().as_uri() + "?mode=ro", uri=True)
            try:
                version = con.execute("PRAGMA user_version").fetchone()[0]
                tables = {
                    row[0]
                    for row in con.execute(
                        "SELECT name FROM sqlite_master WHERE type = 'table'"
                        " AND name NOT LIKE 'sqlite_%'"
                    )
                }
                integrity = con.execute("PRAGMA quick_check").fetchone()[0]
            finally:
                con.close()
        except sqlite3.Error as exc:
            raise HistoryError(f"history {self.path}: corrupt SQLite file ({exc})") from None
        if version > SCHEMA_VERSION:
            raise HistoryError(
                f"history {self.path}: schema version {version} is newer than this mailprobe"
                f" supports ({SCHEMA_VERSION})"
            )
        if tables != TABLES:
            raise HistoryError(
                f"history {self.path}: unexpected tables {sorted(tables ^ TABLES)};"
                " refusing to use it"
            )
        if integrity != "ok":
            raise HistoryError(f"history {self.path}: corrupt SQLite file ({integrity})")

    def _create(self) -> None:
        db = self._db
        with self._transaction():
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [("application", "mailprobe"), ("schema", str(SCHEMA_VERSION))],
            )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> HistoryDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    class _Tx:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def __enter__(self) -> None:
            self.db.execute("BEGIN IMMEDIATE")

        def __exit__(self, exc_type, exc, tb) -> None:
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")

    def _transaction(self) -> HistoryDB._Tx:
        return HistoryDB._Tx(self._db)

    # -- writing --------------------------------------------------------------------------

    def add(self, report: RunReport, *, status: int | None = None) -> None:
        """Store one run (all its results and findings) in one transaction."""
        self.add_many([report], statuses=None if status is None else [status])

    def add_many(
        self,
        reports: Iterable[RunReport],
        *,
        batch_id: str | None = None,
        statuses: list[int] | None = None,
    ) -> None:
        """Store several runs (e.g. one `check --domains`) in one transaction: all or nothing."""
        reports = list(reports)
        runs, results, findings = [], [], []
        for i, report in enumerate(reports):
            rid = report.run_id
            status = statuses[i] if statuses is not None else exit_status(report)
            runs.append(
                (
                    rid,
                    batch_id,
                    iso_utc(report.started),
                    report.duration_s,
                    report.target.domain,
                    _JSON(report.target.to_json()),
                    status,
                    report.count_findings(Severity.FAIL),
                    report.count_findings(Severity.WARN),
                    report.count_findings(Severity.INFO),
                    sum(1 for r in report.results if r.outcome.value == "ERROR"),
                )
            )
            for r in report.results:
                results.append(
                    (
                        rid,
                        r.probe_id,
                        r.outcome.value,
                        r.error.value if r.error else None,
                        r.duration_s,
                    )
                )
                for f in r.findings:
                    findings.append(
                        (
                            rid,
                            f.probe_id,
                            f.code,
                            f.severity.value,
                            f.subject,
                            f.message,
                            _JSON({str(k): str(v) for k, v in f.evidence.items()})
                            if f.evidence
                            else "{}",
                            f.reproduce,
                        )
                    )
        try:
            with self._transaction():
                self._db.executemany(
                    "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", runs
                )
                self._db.executemany("INSERT INTO results VALUES (?, ?, ?, ?, ?)", results)
                self._db.executemany(
                    "INSERT INTO findings VALUES (?, ?, ?, ?, ?, ?, ?, ?)", findings
                )
        except sqlite3.IntegrityError as exc:
            raise HistoryError(f"history {self.path}: run already recorded ({exc})") from None
        except sqlite3.Error as exc:
            raise HistoryError(f"history {self.path}: cannot write: {exc}") from None

    # -- reading --------------------------------------------------------------------------

    _RUN_COLUMNS = (
        "run_id, batch_id, started, duration_s, target_domain, exit_status,"
        " n_fail, n_warn, n_info, n_error"
    )

    def _summaries(self, sql: str, params: tuple = ()) -> list[RunSummary]:
        return [
            RunSummary(
                run_id=row[0],
                batch_id=row[1],
                started=row[2],
                duration_s=row[3],
                domain=row[4],
                exit_status=row[5],
                counts={"fail": row[6], "warn": row[7], "info": row[8], "error": row[9]},
            )
            for row in self._db.execute(sql, params)
        ]

    def runs(self, limit: int | None = None, domain: str | None = None) -> list[RunSummary]:
        """Runs newest first (by start time, then insertion order)."""
        where = "WHERE target_domain = ?" if domain is not None else ""
        params: tuple = (domain,) if domain is not None else ()
        sql = f"SELECT {self._RUN_COLUMNS} FROM runs {where} ORDER BY started DESC, rowid DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params += (limit,)
        return self._summaries(sql, params)

    def latest(self, n: int = 1, domain: str | None = None) -> list[RunSummary]:
        return self.runs(limit=n, domain=domain)

    def run(self, run_id: str) -> RunSummary:
        """One run by id, or HistoryError naming the id."""
        found = self._summaries(f"SELECT {self._RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,))
        if not found:
            raise HistoryError(f"history {self.path}: no run {run_id!r}")
        return found[0]

    def previous(self, run_id: str, domain: str, started: str) -> RunSummary | None:
        """The newest run of `domain` started before `started` (not `run_id` itself)."""
        found = self._summaries(
            f"SELECT {self._RUN_COLUMNS} FROM runs WHERE target_domain = ? AND run_id != ?"
            " AND (started < ? OR (started = ? AND rowid < COALESCE("
            "(SELECT rowid FROM runs WHERE run_id = ?), 1e18)))"
            " ORDER BY started DESC, rowid DESC LIMIT 1",
            (domain, run_id, started, started, run_id),
        )
        return found[0] if found else None

    def rows(self, run_id: str) -> list[Row]:
        """The stored findings of one run (or of every run of a batch id), as raw rows."""
        domains = dict(
            self._db.execute(
                "SELECT run_id, target_domain FROM runs WHERE run_id = ?"
                " UNION SELECT run_id, target_domain FROM runs WHERE batch_id = ?",
                (run_id, run_id),
            )
        )
        rows = self._db.execute(
            "SELECT run_id, probe_id, code, subject, severity, message, evidence_json, reproduce"
            " FROM findings WHERE run_id IN (SELECT run_id FROM runs WHERE run_id = ?"
            " UNION SELECT run_id FROM runs WHERE batch_id = ?)",
            (run_id, run_id),
        )
        return [(domains[row[0]], *row[1:]) for row in rows]

    def findings(self, run_id: str) -> Iterator[Entry]:
        """The stored findings of one run (or of every run of a batch id)."""
        return map(_entry, self.rows(run_id))

    def has_id(self, run_id: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM runs WHERE run_id = ? OR batch_id = ? LIMIT 1", (run_id, run_id)
        ).fetchone()
        return row is not None


# -- diff -------------------------------------------------------------------------------------

# (domain, probe_id, code, subject, severity value, message, evidence JSON, reproduce)
Row = tuple[str, str, str, "str | None", str, str, str, "str | None"]


def _entry(row: Row) -> Entry:
    domain, probe_id, code, subject, severity, message, evidence, reproduce = row
    return Entry(
        domain,
        Finding(
            probe_id=probe_id,
            code=code,
            severity=Severity(severity),
            message=message,
            evidence=json.loads(evidence),
            reproduce=reproduce,
            subject=subject,
        ),
    )


def _keyed(rows: Iterable[Row]) -> dict[tuple, Row]:
    """Key rows by (domain, probe, code, subject); repeats are told apart by their order."""
    seen: dict[tuple, int] = {}
    keyed: dict[tuple, Row] = {}
    for row in rows:
        base = row[:4]
        n = seen.get(base, 0)
        seen[base] = n + 1
        keyed[(*base, n)] = row
    return keyed


def diff_rows(run_a: str, a: Iterable[Row], run_b: str, b: Iterable[Row]) -> Diff:
    """What changed from the findings `a` (older) to `b` (newer)."""
    old, cur = _keyed(a), _keyed(b)
    new = [_entry(row) for k, row in cur.items() if k not in old]
    resolved = [_entry(row) for k, row in old.items() if k not in cur]
    changed = []
    for k, row in cur.items():
        before = old.get(k)
        if before is not None and (before[4] != row[4] or before[5] != row[5]):
            changed.append(Changed(row[0], _entry(before).finding, _entry(row).finding))
    return Diff(run_a, run_b, new, resolved, changed)


def resolve_pair(db: HistoryDB, run_a: str | None, run_b: str | None) -> tuple[str, str]:
    """Which two runs `mailprobe diff [RUN_A] [RUN_B]` compares.

    No ids: the newest run and the run before it of the same domain. One id: that run and the
    run before it of the same domain. Two ids: those (each a run id or a batch id).
    """
    if run_a is not None and run_b is not None:
        for rid in (run_a, run_b):
            if not db.has_id(rid):
                raise HistoryError(f"history {db.path}: no run {rid!r}")
        return run_a, run_b
    if run_a is None:
        latest = db.latest(1)
        if not latest:
            raise HistoryError(f"history {db.path}: no runs recorded; nothing to compare")
        newer = latest[0]
    else:
        newer = db.run(run_a)
    before = db.previous(newer.run_id, newer.domain, newer.started)
    if before is None:
        raise HistoryError(
            f"history {db.path}: run {newer.run_id!r} is the first run of {newer.domain};"
            " nothing to compare it with"
        )
    return before.run_id, newer.run_id


def diff(db: HistoryDB, run_a: str | None = None, run_b: str | None = None) -> Diff:
    """New, resolved and changed findings from run_a (older) to run_b (newer)."""
    a, b = resolve_pair(db, run_a, run_b)
    return diff_rows(a, db.rows(a), b, db.rows(b))


def new_findings(
    db: HistoryDB, report: RunReport, fail_on: Severity = Severity.FAIL
) -> list[Finding]:
    """Findings of `report` at or above `fail_on` that the previous run of its domain lacked.

    "Lacked" means: no finding with the same (probe, code, subject) at or above `fail_on`, so a
    finding that rose from warn to fail counts as new. The previous run is the newest stored
    run of the same target domain started before `report` (the report itself may already be
    stored). With no previous run every such finding is new.
    """
    domain = report.target.domain
    before = db.previous(report.run_id, domain, iso_utc(report.started))
    old = _keyed(
        row
        for row in ([] if before is None else db.rows(before.run_id))
        if row[0] == domain and Severity(row[4]) >= fail_on
    )
    seen: dict[tuple, int] = {}
    new = []
    for f in (f for r in report.results for f in r.findings if f.severity >= fail_on):
        base = (domain, f.probe_id, f.code, f.subject)
        n = seen.get(base, 0)
        seen[base] = n + 1
        if (*base, n) not in old:
            new.append(f)
    return new


def exit_status_new(db: HistoryDB, report: RunReport, fail_on: Severity = Severity.FAIL) -> int:
    """`check --fail-on new`: 1 on new findings, else 3 if a probe errored, else 0."""
    from probes.report.run import EXIT_FINDINGS, EXIT_OK, EXIT_PROBE_ERROR

    if new_findings(db, report, fail_on):
        return EXIT_FINDINGS
    if any(r.outcome.value == "ERROR" for r in report.results):
        return EXIT_PROBE_ERROR
    return EXIT_OK
