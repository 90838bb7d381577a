"""The run history: every run stored in one SQLite file, and what changed between two runs.

`HistoryDB(path)` opens or creates the store; a file that is not SQLite, or a SQLite database
of another application, is refused with `HistoryError` (exit 2) and never modified. `add()`
writes a whole run in one transaction, so a killed run leaves either the whole run or nothing.
A run is keyed by its target domain and by what was run (`what`: "scenario:NAME" or
"probes:GLOB,..."), so a nightly scenario is compared with its own previous run.

Schema 2 (schema 1 files are upgraded in place, in one transaction, when opened): `runs.what`,
`runs.digest` (of what drift compares: two runs with equal digests are skipped),
`findings.volatile_json` (the volatile evidence keys) and `findings.stable_json` (the stable
evidence as canonical JSON, what drift compares). The comparison itself is probes.drift;
pruning is probes.retention (docs/scenarios.md, "History and drift").
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from probes.errors import UsageError
from probes.model import Finding, Severity
from probes.report.run import RunReport, TrendPoint, exit_status, iso_utc
from probes.report.trend import cert_days_of, point_of

DEFAULT_PATH = Path("reports") / "history.sqlite"
APPLICATION_ID = 0x4D50524F  # "MPRO": PRAGMA application_id of every mailprobe history file
SCHEMA_VERSION = 2  # PRAGMA user_version (1: before `what`, `volatile_json`, `stable_json`)
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
    n_error INTEGER NOT NULL,
    what TEXT,
    digest TEXT
);
CREATE INDEX runs_by_domain ON runs (target_domain, started);
CREATE INDEX runs_by_what ON runs (target_domain, what, started);
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
    reproduce TEXT,
    volatile_json TEXT,
    stable_json TEXT
);
CREATE INDEX findings_by_run ON findings (run_id, probe_id, code, subject);
"""

# Schema 1 -> 2: added columns only (NULL in old rows: what unknown, no volatile keys, stable
# evidence computed from evidence_json when read).
_MIGRATE_1_TO_2 = (
    "ALTER TABLE runs ADD COLUMN what TEXT",
    "ALTER TABLE runs ADD COLUMN digest TEXT",
    "ALTER TABLE findings ADD COLUMN volatile_json TEXT",
    "ALTER TABLE findings ADD COLUMN stable_json TEXT",
    "CREATE INDEX runs_by_what ON runs (target_domain, what, started)",
    "UPDATE meta SET value = '2' WHERE key = 'schema'",
)


def stable_json(evidence: dict[str, str], volatile: Iterable[str] = ()) -> str:
    """The stable evidence as canonical JSON (sorted keys): equal strings, equal configuration."""
    drop = set(volatile)
    return _CANON({k: v for k, v in evidence.items() if k not in drop})


_CANON = json.JSONEncoder(separators=(",", ":"), sort_keys=True).encode


def _digest(state: list[tuple[str, ...]]) -> str:
    """A run's digest: the probes run and each finding's identity, severity and stable
    evidence. Two runs with equal digests have nothing to compare (drift skips them); a run
    with a probe that did not complete has none (always compared, for its not-checked list)."""
    return hashlib.blake2b(_JSON(sorted(state)).encode(), digest_size=16).hexdigest()


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
    what: str | None = None  # "scenario:NAME" or "probes:GLOB,..."; None: not recorded (schema 1)
    # A whole `check --domains` batch as one entry (HistoryDB.entries): run_id is the batch id,
    # domain "", counts summed over its runs, exit_status the batch's (1 over 3 over 0).
    domains: int | None = None  # None: one run, not a batch
    failing: int = 0  # the batch's domains of exit status 1
    with_probe_errors: int = 0  # the batch's domains with a probe in ERROR

    @property
    def is_batch(self) -> bool:
        return self.domains is not None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "run_id": self.run_id,
            "batch_id": self.batch_id,
            "started": self.started,
            "duration_s": self.duration_s,
            "domain": None if self.is_batch else self.domain,
            "exit_status": self.exit_status,
            "counts": dict(self.counts),
        }
        if self.what is not None:
            out["what"] = self.what
        if self.is_batch:
            out["domains"] = self.domains
            out["failing"] = self.failing
            out["with_probe_errors"] = self.with_probe_errors
        return out


_RUN_COLUMNS = (
    "run_id, batch_id, started, duration_s, target_domain, target_json, exit_status,"
    " n_fail, n_warn, n_info, n_error, what, digest"
)
_RESULT_COLUMNS = "run_id, probe_id, outcome, error, duration_s"
_FINDING_COLUMNS = (
    "run_id, probe_id, code, severity, subject, message, evidence_json, reproduce,"
    " volatile_json, stable_json"
)


def _rows(
    report: RunReport, status: int, batch_id: str | None, what: str | None
) -> tuple[tuple[Any, ...], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """A run's rows: (its runs row, its results rows, its findings rows)."""
    rid = report.run_id
    results: list[tuple[Any, ...]] = []
    findings: list[tuple[Any, ...]] = []
    state: list[tuple[str, ...]] = []  # what drift compares, for the run's digest
    complete = True
    for r in report.results:
        complete = complete and r.outcome.value == "COMPLETED"
        results.append(
            (rid, r.probe_id, r.outcome.value, r.error.value if r.error else None, r.duration_s)
        )
        state.append((r.probe_id,))
        for f in r.findings:
            evidence = {str(k): str(v) for k, v in f.evidence.items()}
            stable = stable_json(evidence, f.volatile)
            state.append((f.probe_id, f.code, f.subject or "", f.severity.value, stable))
            findings.append(
                (
                    rid,
                    f.probe_id,
                    f.code,
                    f.severity.value,
                    f.subject,
                    f.message,
                    _JSON(evidence) if evidence else "{}",
                    f.reproduce,
                    _JSON(sorted(f.volatile)) if f.volatile else None,
                    stable,
                )
            )
    run = (
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
        what,
        _digest(state) if complete else None,
    )
    return run, results, findings


class HistoryDB:
    """The history store at `path`; created when absent (unless `create=False`)."""

    def __init__(self, path: str | Path = DEFAULT_PATH, *, create: bool = True) -> None:
        self.path = Path(path)
        self._version = SCHEMA_VERSION
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
        elif self._version < SCHEMA_VERSION:
            try:
                self._migrate()
            except HistoryError:
                self._db.close()
                raise

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
        self._version = version

    def _migrate(self) -> None:
        """Schema 1 -> 2 in one transaction: a kill leaves schema 1 or schema 2, never half."""
        try:
            with self._transaction():
                for statement in _MIGRATE_1_TO_2:
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            raise HistoryError(
                f"history {self.path}: cannot upgrade schema {self._version} to"
                f" {SCHEMA_VERSION}: {exc}"
            ) from None
        self._version = SCHEMA_VERSION

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

    def add(self, report: RunReport, *, status: int | None = None, what: str | None = None) -> None:
        """Store one run (all its results and findings) in one transaction."""
        self.add_many([report], statuses=None if status is None else [status], what=what)

    def add_many(
        self,
        reports: Iterable[RunReport],
        *,
        batch_id: str | None = None,
        statuses: list[int] | None = None,
        what: str | None = None,
    ) -> None:
        """Store several runs (e.g. one `check --domains`) in one transaction: all or nothing.

        `what` names what was run ("scenario:NAME", "probes:GLOB,..."), the second half of the
        key a run is compared under (the first is its target domain)."""
        runs: list[tuple[Any, ...]] = []
        results: list[tuple[Any, ...]] = []
        findings: list[tuple[Any, ...]] = []
        for i, report in enumerate(reports):
            status = statuses[i] if statuses is not None else exit_status(report)
            run, its_results, its_findings = _rows(report, status, batch_id, what)
            runs.append(run)
            results.extend(its_results)
            findings.extend(its_findings)
        try:
            with self._transaction():
                self._insert("", runs, results, findings)
        except sqlite3.IntegrityError as exc:
            raise HistoryError(f"history {self.path}: run already recorded ({exc})") from None
        except sqlite3.Error as exc:
            raise HistoryError(f"history {self.path}: cannot write: {exc}") from None

    def _insert(
        self,
        prefix: str,
        runs: list[tuple[Any, ...]],
        results: list[tuple[Any, ...]],
        findings: list[tuple[Any, ...]],
    ) -> None:
        """Rows into the tables named `prefix` + runs/results/findings."""
        self._db.executemany(
            f"INSERT INTO {prefix}runs ({_RUN_COLUMNS})"
            f" VALUES ({', '.join('?' * len(_RUN_COLUMNS.split(',')))})",
            runs,
        )
        self._db.executemany(
            f"INSERT INTO {prefix}results ({_RESULT_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
            results,
        )
        self._db.executemany(
            f"INSERT INTO {prefix}findings ({_FINDING_COLUMNS})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            findings,
        )

    @contextmanager
    def staged(
        self, *, batch_id: str | None, what: str | None
    ) -> Iterator[Callable[[RunReport, int], None]]:
        """Store a long batch (`check --domains`) without holding it in memory: each run goes
        to temporary tables as it comes (`add(report, status)`), and the whole batch into
        the history at the end, in one transaction (all or nothing, as add_many). Leaving
        with an exception (Ctrl-C) stores nothing."""
        tables = (
            ("runs", _RUN_COLUMNS),
            ("results", _RESULT_COLUMNS),
            ("findings", _FINDING_COLUMNS),
        )
        try:
            for table, columns in tables:
                self._db.execute(f"DROP TABLE IF EXISTS temp.staged_{table}")
                self._db.execute(
                    f"CREATE TEMP TABLE staged_{table} AS SELECT {columns} FROM main.{table}"
                    " WHERE 0"
                )
        except sqlite3.Error as exc:
            raise HistoryError(f"history {self.path}: cannot write: {exc}") from None

        def add(report: RunReport, status: int) -> None:
            run, results, findings = _rows(report, status, batch_id, what)
            try:
                self._insert("temp.staged_", [run], results, findings)
            except sqlite3.Error as exc:
                raise HistoryError(f"history {self.path}: cannot write: {exc}") from None

        try:
            yield add
            try:
                with self._transaction():
                    for table, columns in tables:
                        self._db.execute(
                            f"INSERT INTO main.{table} ({columns})"
                            f" SELECT {columns} FROM temp.staged_{table}"
                        )
            except sqlite3.IntegrityError as exc:
                raise HistoryError(f"history {self.path}: run already recorded ({exc})") from None
            except sqlite3.Error as exc:
                raise HistoryError(f"history {self.path}: cannot write: {exc}") from None
        finally:
            with suppress(sqlite3.Error):
                for table, _ in tables:
                    self._db.execute(f"DROP TABLE IF EXISTS temp.staged_{table}")

    def delete_runs(self, run_ids: Iterable[str]) -> int:
        """Remove runs with their results and findings, all in one transaction."""
        ids = [(r,) for r in run_ids]
        if not ids:
            return 0
        try:
            with self._transaction():
                self._db.execute("CREATE TEMP TABLE IF NOT EXISTS doomed (run_id TEXT PRIMARY KEY)")
                self._db.execute("DELETE FROM doomed")
                self._db.executemany("INSERT OR IGNORE INTO doomed VALUES (?)", ids)
                for table in ("findings", "results", "runs"):
                    self._db.execute(
                        f"DELETE FROM {table} WHERE run_id IN (SELECT run_id FROM doomed)"
                    )
                self._db.execute("DELETE FROM doomed")
        except sqlite3.Error as exc:
            raise HistoryError(f"history {self.path}: cannot write: {exc}") from None
        return len(ids)

    # -- reading --------------------------------------------------------------------------

    def execute_all(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Rows of a read-only query (for probes.retention and the tests)."""
        return self._db.execute(sql, params).fetchall()

    _RUN_COLUMNS = (
        "run_id, batch_id, started, duration_s, target_domain, exit_status,"
        " n_fail, n_warn, n_info, n_error, what"
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
                what=row[10],
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

    def entries(self, limit: int | None = None) -> list[RunSummary]:
        """Single runs and `check --domains` batches newest first (by start), a batch as ONE
        entry (RunSummary.is_batch): its id, domains, failing domains, domains with probe
        errors, summed counts and the batch's exit status."""
        sql = (
            "SELECT COALESCE(batch_id, run_id) AS entry, batch_id, MIN(started),"
            " CASE WHEN batch_id IS NULL THEN MAX(duration_s) ELSE"
            " MAX(julianday(started) * 86400.0 + duration_s) - MIN(julianday(started) * 86400.0)"
            " END, MAX(target_domain),"
            " CASE WHEN SUM(exit_status = 1) > 0 THEN 1 ELSE MAX(exit_status) END,"
            " SUM(n_fail), SUM(n_warn), SUM(n_info), SUM(n_error), MAX(what), COUNT(*),"
            " SUM(exit_status = 1), SUM(n_error > 0)"
            " FROM runs GROUP BY entry ORDER BY MIN(started) DESC, MAX(rowid) DESC"
        )
        params: tuple = ()
        if limit is not None:
            sql += " LIMIT ?"
            params = (limit,)
        out = []
        for row in self._db.execute(sql, params):
            batch = row[1] is not None
            out.append(
                RunSummary(
                    run_id=row[0],
                    batch_id=row[1],
                    started=row[2],
                    duration_s=round(row[3], 3) if batch else row[3],
                    domain="" if batch else row[4],
                    exit_status=row[5],
                    counts={"fail": row[6], "warn": row[7], "info": row[8], "error": row[9]},
                    what=row[10],
                    domains=row[11] if batch else None,
                    failing=row[12] if batch else 0,
                    with_probe_errors=row[13] if batch else 0,
                )
            )
        return out

    def is_batch(self, id_: str) -> bool:
        """`id_` names a `check --domains` batch (not one run)."""
        row = self._db.execute("SELECT 1 FROM runs WHERE batch_id = ? LIMIT 1", (id_,)).fetchone()
        return (
            row is not None
            and not self._db.execute("SELECT 1 FROM runs WHERE run_id = ?", (id_,)).fetchone()
        )

    def previous_batch(self, batch_id: str) -> str | None:
        """The batch `batch_id` is compared with: the newest batch started before it, of the
        same probe set (`what`), that has a domain in common with it; None when there is none."""
        first = self._db.execute(
            "SELECT MIN(started), MAX(what), MIN(rowid) FROM runs WHERE batch_id = ?", (batch_id,)
        ).fetchone()
        if first is None or first[0] is None:
            return None
        started, what, rowid = first
        candidates = self._db.execute(
            "SELECT batch_id FROM runs WHERE batch_id IS NOT NULL AND batch_id != ?"
            " AND what IS ? GROUP BY batch_id"
            " HAVING MIN(started) < ? OR (MIN(started) = ? AND MIN(rowid) < ?)"
            " ORDER BY MIN(started) DESC, MIN(rowid) DESC",
            (batch_id, what, started, started, rowid),
        ).fetchall()
        for (candidate,) in candidates:
            shared = self._db.execute(
                "SELECT 1 FROM runs a WHERE a.batch_id = ? AND EXISTS (SELECT 1 FROM runs b"
                " WHERE b.target_domain = a.target_domain AND b.batch_id = ?) LIMIT 1",
                (batch_id, candidate),
            ).fetchone()
            if shared:
                return candidate
        return None

    def latest(self, n: int = 1, domain: str | None = None) -> list[RunSummary]:
        return self.runs(limit=n, domain=domain)

    def run(self, run_id: str) -> RunSummary:
        """One run by id, or HistoryError naming the id."""
        found = self._summaries(f"SELECT {self._RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,))
        if not found:
            raise HistoryError(f"history {self.path}: no run {run_id!r}")
        return found[0]

    def _before(self, run_id: str, started: str) -> tuple[str, tuple]:
        """SQL (on `runs`) and parameters for "started before the run `run_id` at `started`"."""
        return (
            "run_id != ? AND (started < ? OR (started = ? AND rowid < COALESCE("
            "(SELECT rowid FROM runs WHERE run_id = ?), 1e18)))",
            (run_id, started, started, run_id),
        )

    def comparable(
        self,
        run_id: str,
        domain: str,
        started: str,
        what: str | None,
        limit: int = 1,
    ) -> list[RunSummary]:
        """The runs a run is compared with, newest first: runs of the same domain and `what`
        started before it; when there are none, runs of schema 1 (what unknown) of the domain.
        `what=None` (a run stored without it): any earlier run of the domain."""
        before, params = self._before(run_id, started)
        sql = f"SELECT {self._RUN_COLUMNS} FROM runs WHERE target_domain = ? AND {before}"
        order = " ORDER BY started DESC, rowid DESC LIMIT ?"
        if what is None:
            return self._summaries(sql + order, (domain, *params, limit))
        found = self._summaries(sql + " AND what = ?" + order, (domain, *params, what, limit))
        if not found:
            found = self._summaries(sql + " AND what IS NULL" + order, (domain, *params, limit))
        return found

    def previous(
        self, run_id: str, domain: str, started: str, what: str | None = None
    ) -> RunSummary | None:
        """The newest run `run_id` is compared with (see `comparable`), or None."""
        found = self.comparable(run_id, domain, started, what)
        return found[0] if found else None

    def run_ids(self, id_: str) -> list[str]:
        """The runs an id names: the run itself, or every run of a batch id."""
        return [
            row[0]
            for row in self._db.execute(
                "SELECT run_id FROM runs WHERE run_id = ? UNION SELECT run_id FROM runs"
                " WHERE batch_id = ?",
                (id_, id_),
            )
        ]

    def domains_of(self, id_: str) -> list[str]:
        return sorted(
            row[0]
            for row in self._db.execute(
                "SELECT DISTINCT target_domain FROM runs WHERE run_id = ? OR batch_id = ?",
                (id_, id_),
            )
        )

    def digests(self, id_: str) -> dict[str, tuple[str, str | None]]:
        """{domain: (run id, digest)} of one run or of every run of a batch."""
        return {
            row[0]: (row[1], row[2])
            for row in self._db.execute(
                "SELECT target_domain, run_id, digest FROM runs WHERE run_id = ?"
                " UNION ALL SELECT target_domain, run_id, digest FROM runs WHERE batch_id = ?",
                (id_, id_),
            )
        }

    def compact(
        self, run_ids: list[str]
    ) -> tuple[list[CompactRow], list[tuple[str, str, str, str | None]]]:
        """What drift compares, for some runs: the findings as (domain, probe, code, subject,
        severity, stable evidence JSON, rowid) and the probe outcomes as (domain, probe,
        outcome, error reason)."""
        findings: list[CompactRow] = []
        outcomes: list[tuple[str, str, str, str | None]] = []
        for i in range(0, len(run_ids), 500):
            chunk = run_ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            findings += self._db.execute(
                "SELECT r.target_domain, f.probe_id, f.code, f.subject, f.severity,"
                " COALESCE(f.stable_json, f.evidence_json), f.rowid"
                f" FROM findings f JOIN runs r ON r.run_id = f.run_id WHERE f.run_id IN ({marks})",
                chunk,
            ).fetchall()
            outcomes += self._db.execute(
                "SELECT r.target_domain, s.probe_id, s.outcome, s.error"
                f" FROM results s JOIN runs r ON r.run_id = s.run_id WHERE s.run_id IN ({marks})",
                chunk,
            ).fetchall()
        return findings, outcomes

    def findings_by_rowid(self, rowids: Iterable[int]) -> dict[int, Finding]:
        """Whole findings (evidence, volatile keys, message) for the given finding rowids."""
        wanted = list(rowids)
        out: dict[int, Finding] = {}
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for row in self._db.execute(
                "SELECT rowid, probe_id, code, subject, severity, message, evidence_json,"
                f" reproduce, volatile_json FROM findings WHERE rowid IN ({marks})",
                chunk,
            ):
                out[row[0]] = finding_of(*row[1:])
        return out

    def probe_findings(self, run_id: str, probe_id: str) -> list[Finding]:
        """The stored findings of one probe in one run."""
        return [
            finding_of(*row)
            for row in self._db.execute(
                "SELECT probe_id, code, subject, severity, message, evidence_json, reproduce,"
                " volatile_json FROM findings WHERE run_id = ? AND probe_id = ?",
                (run_id, probe_id),
            )
        ]

    def outcomes(self, run_id: str) -> dict[str, tuple[str, str | None]]:
        """{probe: (outcome, error reason)} of one run."""
        return {
            row[0]: (row[1], row[2])
            for row in self._db.execute(
                "SELECT probe_id, outcome, error FROM results WHERE run_id = ?", (run_id,)
            )
        }

    def completed_before(
        self, run_id: str, domain: str, started: str, what: str | None, limit: int = 100
    ) -> dict[str, str]:
        """{probe: the newest comparable run (of at most `limit`) in which it COMPLETED}."""
        ids = [r.run_id for r in self.comparable(run_id, domain, started, what, limit=limit)]
        if not ids:
            return {}
        rank = {rid: i for i, rid in enumerate(ids)}
        best: dict[str, str] = {}
        marks = ",".join("?" * len(ids))
        for probe, rid in self._db.execute(
            "SELECT probe_id, run_id FROM results WHERE outcome = 'COMPLETED'"
            f" AND run_id IN ({marks})",
            ids,
        ):
            if probe not in best or rank[rid] < rank[best[probe]]:
                best[probe] = rid
        return best

    def findings_of(self, pairs: dict[str, str]) -> list[Finding]:
        """The stored findings of each {probe: run id} pair."""
        ids = sorted(set(pairs.values()))
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        return [
            finding_of(*row[1:])
            for row in self._db.execute(
                "SELECT run_id, probe_id, code, subject, severity, message, evidence_json,"
                f" reproduce, volatile_json FROM findings WHERE run_id IN ({marks})",
                ids,
            )
            if pairs.get(row[1]) == row[0]
        ]

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
            "SELECT run_id, probe_id, code, subject, severity, message, evidence_json, reproduce,"
            " volatile_json FROM findings WHERE run_id IN (SELECT run_id FROM runs WHERE"
            " run_id = ? UNION SELECT run_id FROM runs WHERE batch_id = ?)",
            (run_id, run_id),
        )
        return [(domains[row[0]], *row[1:]) for row in rows]

    def findings(self, run_id: str) -> Iterator[Entry]:
        """The stored findings of one run (or of every run of a batch id)."""
        return (
            Entry(
                row[0], finding_of(row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8])
            )
            for row in self.rows(run_id)
        )

    def trend(
        self, report: RunReport, what: str | None = None, runs: int = 30
    ) -> tuple[TrendPoint, ...]:
        """`report`'s trend (RunReport.trend): up to `runs` - 1 comparable runs before it
        (same domain and `what`, see `comparable`), oldest first, then `report` itself. Each
        point has the run's counts and the days left of the certificates the transport probes
        saw (CERT_* evidence `days_left`)."""
        earlier = self.comparable(
            report.run_id, report.target.domain, iso_utc(report.started), what, limit=runs - 1
        )
        ids = [r.run_id for r in earlier]
        certs: dict[str, list[Finding]] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for row in self._db.execute(
                "SELECT run_id, probe_id, code, subject, severity, message, evidence_json,"
                f" reproduce, volatile_json FROM findings WHERE run_id IN ({marks})"
                " AND code LIKE 'CERT%'",
                chunk,
            ):
                certs.setdefault(row[0], []).append(finding_of(*row[1:]))
        points = [
            TrendPoint(r.run_id, r.started, dict(r.counts), cert_days_of(certs.get(r.run_id, ())))
            for r in reversed(earlier)
        ]
        return (*points, point_of(report))

    def has_id(self, run_id: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM runs WHERE run_id = ? OR batch_id = ? LIMIT 1", (run_id, run_id)
        ).fetchone()
        return row is not None


# (domain, probe_id, code, subject, severity value, message, evidence JSON, reproduce, volatile)
Row = tuple[str, str, str, "str | None", str, str, str, "str | None", "str | None"]
# (domain, probe_id, code, subject, severity value, stable evidence JSON, finding rowid)
CompactRow = tuple[str, str, str, "str | None", str, str, int]


class Entry(NamedTuple):
    """A finding of one target domain."""

    domain: str
    finding: Finding


def finding_of(
    probe_id: str,
    code: str,
    subject: str | None,
    severity: str,
    message: str,
    evidence: str,
    reproduce: str | None,
    volatile: str | None,
) -> Finding:
    return Finding(
        probe_id=probe_id,
        code=code,
        severity=Severity(severity),
        message=message,
        evidence=json.loads(evidence),
        reproduce=reproduce,
        subject=subject,
        volatile=frozenset(json.loads(volatile)) if volatile else frozenset(),
    )
