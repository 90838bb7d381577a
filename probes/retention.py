"""Retention: `mailprobe history prune --keep-days N | --keep-runs N`.

Which runs go: with `--keep-runs N`, all but the newest N runs of each key (target domain and
what was run); with `--keep-days N`, the runs started more than N days ago, except the newest
run of each key (the baseline `--fail-on new` compares with). Their report directories
(`REPORTS/<run-id>/`, and `REPORTS/<batch-id>/` once no run of the batch is left) go first,
then the runs in one transaction, so a kill -9 at any moment leaves a whole history (every run
with all its results and findings, or none of them) and at worst a run whose directory is gone,
which the next prune removes.

A directory is removed only if its name is a run or batch id the history knows, or looks like
one (`20261121T221503Z-ab12cd`) and, unknown to the history, is older than `--keep-days` by the
time in its name. It is first renamed to `.pruning-<name>` (atomic), then deleted; leftovers of
an interrupted prune are deleted by the next one. Nothing else in REPORTS is touched.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from probes.history import HistoryDB, HistoryError

RUN_ID = re.compile(r"^(\d{8}T\d{6}Z)-[0-9a-f]{6}$")
PRUNING = ".pruning-"


@dataclass
class Pruned:
    runs: list[str] = field(default_factory=list)
    directories: list[Path] = field(default_factory=list)
    kept: int = 0


def runs_to_prune(
    db: HistoryDB,
    *,
    keep_days: int | None = None,
    keep_runs: int | None = None,
    now: datetime | None = None,
) -> list[str]:
    """The run ids the retention rule removes."""
    if (keep_days is None) == (keep_runs is None):
        raise ValueError("give exactly one of keep_days and keep_runs")
    now = now or datetime.now(UTC)
    cutoff = (now - timedelta(days=keep_days or 0)).astimezone(UTC).isoformat()
    cutoff = cutoff.replace("+00:00", "Z")
    doomed = []
    rank: dict[tuple[str, str | None], int] = {}
    for run_id, domain, what, started in db.execute_all(
        "SELECT run_id, target_domain, what, started FROM runs ORDER BY started DESC, rowid DESC"
    ):
        key = (domain, what)
        n = rank.get(key, 0)
        rank[key] = n + 1
        if keep_runs is not None:
            if n >= keep_runs:
                doomed.append(run_id)
        elif n >= 1 and started < cutoff:
            doomed.append(run_id)
    return doomed


def prune(
    db: HistoryDB,
    reports: Path | None,
    *,
    keep_days: int | None = None,
    keep_runs: int | None = None,
    now: datetime | None = None,
    dry_run: bool = False,
) -> Pruned:
    """Apply the retention rule to the history and (unless `reports` is None) to the report
    directories under `reports`."""
    now = now or datetime.now(UTC)
    doomed = runs_to_prune(db, keep_days=keep_days, keep_runs=keep_runs, now=now)
    out = Pruned(runs=doomed)
    if reports is not None and reports.is_dir():
        gone = set(doomed)
        known_runs: dict[str, str | None] = dict(
            db.execute_all("SELECT run_id, batch_id FROM runs")
        )
        batches: dict[str, int] = {}
        for run_id, batch in known_runs.items():
            if batch is not None and run_id not in gone:
                batches[batch] = batches.get(batch, 0) + 1
        batch_ids = {b for b in known_runs.values() if b is not None}
        for path in sorted(reports.iterdir()):
            name = path.name
            if not path.is_dir() or path.is_symlink():
                continue
            if name.startswith(PRUNING):
                out.directories.append(path)  # left by an interrupted prune
                continue
            if name in known_runs:
                if name in gone:
                    out.directories.append(path)
            elif name in batch_ids:
                if batches.get(name, 0) == 0:
                    out.directories.append(path)
            else:
                m = RUN_ID.match(name)
                if m and keep_days is not None:
                    made = datetime.strptime(m.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
                    if made < now - timedelta(days=keep_days):
                        out.directories.append(path)
    if dry_run:
        return out
    for path in out.directories:
        _remove(path)
    db.delete_runs(doomed)
    return out


def _remove(path: Path) -> None:
    target = path
    if not path.name.startswith(PRUNING):
        target = path.with_name(PRUNING + path.name)
        try:
            path.rename(target)
        except OSError as exc:
            raise HistoryError(f"cannot remove {path}: {exc.strerror or exc}") from None
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(target)
