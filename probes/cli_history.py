"""`mailprobe history` and `mailprobe diff`, and `record()` for `check` to store its run.

Exit statuses (CONTRACT): `history` 0, or 2 when the history file is missing, corrupt or
foreign. `diff` 0 when no new finding is at or above `--fail-on` (default fail), 1 when some
is, 2 for an unknown run id, a run with nothing before it, or a bad history file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TextIO

from probes.history import DEFAULT_PATH, Diff, HistoryDB, RunSummary, diff
from probes.model import Severity
from probes.report.run import EXIT_FINDINGS, EXIT_OK, RunReport


def record(report: RunReport, path: str | Path = DEFAULT_PATH, status: int | None = None) -> None:
    """Store one finished run in the history at `path` (created when absent)."""
    with HistoryDB(path) as db:
        db.add(report, status=status)


def add_history_options(parser: argparse.ArgumentParser, *, storing: bool) -> None:
    """`--history PATH` (default reports/history.sqlite or $MAILPROBE_HISTORY); for commands
    that store runs also `--no-history`."""
    parser.add_argument(
        "--history",
        default=os.environ.get("MAILPROBE_HISTORY", str(DEFAULT_PATH)),
        metavar="PATH",
        help="the run history (SQLite; default reports/history.sqlite or $MAILPROBE_HISTORY)",
    )
    if storing:
        parser.add_argument("--no-history", action="store_true", help="do not store the run")


def check_history(args: argparse.Namespace) -> None:
    """Refuse a corrupt or foreign history file (exit 2, untouched) before anything runs."""
    if not args.no_history:
        with HistoryDB(args.history):
            pass


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `history` and `diff` subcommands to the CLI's subparsers."""
    history = subparsers.add_parser("history", help="list the runs stored in the history")
    add_history_options(history, storing=False)
    history.add_argument("--limit", type=_positive, default=20, metavar="N")
    history.add_argument("--domain", default=None, help="only runs of this target domain")
    history.add_argument("--format", default="text", choices=["text", "json"])
    history.set_defaults(func=cmd_history)

    d = subparsers.add_parser(
        "diff", help="new, resolved and changed findings between two stored runs"
    )
    d.add_argument("run_a", nargs="?", metavar="RUN_A")
    d.add_argument("run_b", nargs="?", metavar="RUN_B")
    add_history_options(d, storing=False)
    d.add_argument("--format", default="text", choices=["text", "json"])
    d.add_argument("--fail-on", default="fail", choices=[s.value for s in Severity])
    d.set_defaults(func=cmd_diff)


def _positive(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: must be a whole number of at least 1")
    return n


def cmd_history(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    with HistoryDB(args.history, create=False) as db:
        runs = db.runs(limit=args.limit, domain=args.domain)
    if args.format == "json":
        json.dump([r.to_json() for r in runs], out, indent=2)
        out.write("\n")
    else:
        write_runs(runs, out)
    return EXIT_OK


def cmd_diff(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    with HistoryDB(args.history, create=False) as db:
        result = diff(db, args.run_a, args.run_b)
    if args.format == "json":
        json.dump(result.to_json(), out, indent=2)
        out.write("\n")
    else:
        write_diff(result, out)
    fail_on = Severity(args.fail_on)
    return EXIT_FINDINGS if any(e.finding.severity >= fail_on for e in result.new) else EXIT_OK


def write_runs(runs: list[RunSummary], out: TextIO) -> None:
    if not runs:
        out.write("no runs recorded\n")
        return
    rows = [
        (
            r.run_id,
            r.started[:19].replace("T", " "),
            r.domain,
            str(r.counts["fail"]),
            str(r.counts["warn"]),
            str(r.counts["info"]),
            str(r.counts["error"]),
            str(r.exit_status),
        )
        for r in runs
    ]
    header = ("RUN", "STARTED (UTC)", "DOMAIN", "FAIL", "WARN", "INFO", "ERRORS", "EXIT")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        out.write("\n")


def write_diff(d: Diff, out: TextIO) -> None:
    out.write(f"diff {d.run_a} -> {d.run_b}: {len(d.new)} new, {len(d.resolved)} resolved,")
    out.write(f" {len(d.changed)} changed\n")

    def where(domain: str, probe: str, subject: str | None) -> str:
        return f"{domain} {probe}" + (f" [{subject}]" if subject else "")

    for title, entries in (("new", d.new), ("resolved", d.resolved)):
        if entries:
            out.write(f"{title}:\n")
        for e in entries:
            f = e.finding
            out.write(
                f"  {f.severity.value.upper():4} {f.code} "
                f"{where(e.domain, f.probe_id, f.subject)}: {f.message}\n"
            )
    if d.changed:
        out.write("changed:\n")
    for c in d.changed:
        b, a = c.before, c.after
        out.write(f"  {a.code} {where(c.domain, a.probe_id, a.subject)}:\n")
        out.write(f"    before {b.severity.value.upper():4} {b.message}\n")
        out.write(f"    after  {a.severity.value.upper():4} {a.message}\n")
