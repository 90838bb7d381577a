"""`mailprobe history [prune]` and `mailprobe diff`, and `record()` for `check` to store its run.

Exit statuses (CONTRACT): `history` 0, or 2 when the history file is missing, corrupt or
foreign. `diff` 0 when no new or worsened finding is at or above `--fail-on` (default fail), 1
when some is (`--fail-on drift`, and `-q` without `--fail-on`: 1 on any new, resolved or changed
finding), 2 for an unknown run id, a run with nothing before it, runs of different targets
(without --allow-different-targets) or a bad history file. `history prune` 0, 2 on a bad
history file.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from probes.drift import Diff, diff
from probes.history import DEFAULT_PATH, HistoryDB, RunSummary
from probes.model import Severity
from probes.report.run import EXIT_FINDINGS, EXIT_OK, RunReport

DIFF_FORMATS = ("text", "json", "markdown")


def record(
    report: RunReport,
    path: str | Path = DEFAULT_PATH,
    status: int | None = None,
    what: str | None = None,
) -> None:
    """Store one finished run in the history at `path` (created when absent)."""
    with HistoryDB(path) as db:
        db.add(report, status=status, what=what)


def what_of_probes(globs: list[str] | None) -> str:
    """The `what` of a `check` run: its --probe globs, sorted ("probes:*" for all probes)."""
    return "probes:" + (",".join(sorted(set(globs))) if globs else "*")


def parse_fail_on(value: str) -> str:
    """`--fail-on` of check: info|warn|fail, or new[:info|warn|fail] (`new` is `new:warn`)."""
    text = value.strip().lower()
    if text == "new":
        return "new:warn"
    kind, _, severity = text.partition(":")
    if kind == "new" and severity in {s.value for s in Severity}:
        return text
    if not _ and text in {s.value for s in Severity}:
        return text
    raise argparse.ArgumentTypeError(  # worded as argparse words a bad choice
        f"invalid choice: {value!r} (choose from info, warn, fail, new, new:info, new:warn,"
        " new:fail)"
    )


def fail_on_new(value: str) -> Severity | None:
    """The severity of `--fail-on new:SEV`, or None for a plain severity threshold."""
    kind, _, severity = value.partition(":")
    return Severity(severity) if kind == "new" else None


def quiet_pipe(write: Callable[[], int], status: int = EXIT_OK) -> int:
    """Run `write` (which prints to stdout, returns `status`); a reader that went away
    (`| head`) ends it quietly, with `status`, instead of a BrokenPipeError traceback."""
    try:
        status = write()
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        # Python flushes stdout again at exit: point it at /dev/null so that cannot fail.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return status


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
    history = subparsers.add_parser(
        "history", help="list the runs stored in the history (a --domains batch as one entry)"
    )
    add_history_options(history, storing=False)
    history.add_argument(
        "--limit", type=_positive, default=20, metavar="N", help="the newest N runs (default 20)"
    )
    history.add_argument("--domain", default=None, help="only runs of this target domain")
    history.add_argument("--format", default="text", choices=["text", "json"], help="output format")
    history.set_defaults(func=cmd_history)
    actions = history.add_subparsers(dest="history_command", required=False, metavar="prune")
    prune = actions.add_parser(
        "prune", help="remove old runs from the history and their report directories"
    )
    prune.add_argument(
        "--history",
        default=argparse.SUPPRESS,
        metavar="PATH",
        help="the run history (default reports/history.sqlite or $MAILPROBE_HISTORY)",
    )
    keep = prune.add_mutually_exclusive_group(required=True)
    keep.add_argument(
        "--keep-days",
        type=_positive,
        metavar="N",
        help="remove runs started more than N days ago (never the newest run of a target"
        " and what was run)",
    )
    keep.add_argument(
        "--keep-runs",
        type=_positive,
        metavar="N",
        help="keep the newest N runs of each target and what was run",
    )
    prune.add_argument(
        "--reports",
        default="reports",
        metavar="DIR",
        help="where the report directories are (default reports)",
    )
    prune.add_argument(
        "--no-reports", action="store_true", help="leave the report directories alone"
    )
    prune.add_argument("--dry-run", action="store_true", help="only say what would go")
    prune.add_argument("-q", "--quiet", action="store_true", help="print no summary")
    prune.set_defaults(func=cmd_prune)

    d = subparsers.add_parser(
        "diff", help="new, resolved, changed and not-checked findings between two stored runs"
    )
    d.add_argument(
        "run_a",
        nargs="?",
        metavar="RUN_A",
        help="a run or batch id; alone: that run and the run before it of the same target and "
        "probe set (a batch: the batch before it); neither id: the newest entry of `history` "
        "(a run or a --domains batch) and the one before it",
    )
    d.add_argument(
        "run_b",
        nargs="?",
        metavar="RUN_B",
        help="with RUN_A: compare RUN_A (older) with RUN_B (newer)",
    )
    add_history_options(d, storing=False)
    d.add_argument("--format", default="text", choices=DIFF_FORMATS, help="output format")
    d.add_argument(
        "--fail-on",
        default=None,
        choices=[s.value for s in Severity] + ["drift"],
        help="exit 1 on a new or worsened finding at or above this severity (default fail);"
        " drift: on any new, resolved or changed finding (the default with -q)",
    )
    d.add_argument(
        "--allow-different-targets",
        action="store_true",
        help="compare runs of different target domains (refused otherwise)",
    )
    d.add_argument(
        "-q", "--quiet", action="store_true", help="print nothing: exit 0 no drift, 1 drift"
    )
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
    with HistoryDB(args.history, create=False) as db:
        # a --domains batch is one entry; one domain's runs are listed each (batches' too)
        if args.domain is None:
            runs = db.entries(limit=args.limit)
        else:
            runs = db.runs(limit=args.limit, domain=args.domain)

    def write() -> int:
        stream = out or sys.stdout
        if args.format == "json":
            json.dump([r.to_json() for r in runs], stream, indent=2)
            stream.write("\n")
        else:
            write_runs(runs, stream)
        return EXIT_OK

    return write() if out is not None else quiet_pipe(write)


def cmd_prune(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from probes.retention import prune

    stream = out or sys.stdout
    reports = None if args.no_reports else Path(args.reports)
    with HistoryDB(args.history, create=False) as db:
        done = prune(
            db,
            reports,
            keep_days=args.keep_days,
            keep_runs=args.keep_runs,
            dry_run=args.dry_run,
        )
    if not args.quiet:
        verb = "would remove" if args.dry_run else "removed"
        stream.write(
            f"history {args.history}: {verb} {len(done.runs)} run(s)"
            + ("" if reports is None else f", {len(done.directories)} report directories")
            + "\n"
        )
        if args.dry_run:
            for path in done.directories:
                stream.write(f"  {path}\n")
    return EXIT_OK


def cmd_diff(args: argparse.Namespace, out: TextIO | None = None) -> int:
    with HistoryDB(args.history, create=False) as db:
        result = diff(
            db, args.run_a, args.run_b, allow_different_targets=args.allow_different_targets
        )
    fail_on = args.fail_on or ("drift" if args.quiet else "fail")
    if fail_on == "drift":
        status = EXIT_FINDINGS if result.drift else EXIT_OK
    else:
        threshold = Severity(fail_on)
        worse = any(f.severity >= threshold for f in result.worsened())
        status = EXIT_FINDINGS if worse else EXIT_OK
    if args.quiet:
        return status

    def write() -> int:
        stream = out or sys.stdout
        if args.format == "json":
            json.dump(result.to_json(), stream, indent=2)
            stream.write("\n")
        elif args.format == "markdown":
            write_diff_markdown(result, stream)
        else:
            write_diff(result, stream)
        return status

    return write() if out is not None else quiet_pipe(write, status)


def write_runs(runs: list[RunSummary], out: TextIO) -> None:
    if not runs:
        out.write("no runs recorded\n")
        return
    rows: list[tuple[str, ...]] = [
        (
            r.run_id,
            r.started[:19].replace("T", " "),
            _batch_cell(r) if r.is_batch else r.domain,
            r.what or "",
            str(r.counts["fail"]),
            str(r.counts["warn"]),
            str(r.counts["info"]),
            str(r.counts["error"]),
            str(r.exit_status),
        )
        for r in runs
    ]
    header: tuple[str, ...] = (
        "RUN",
        "STARTED (UTC)",
        "DOMAIN",
        "WHAT",
        "FAIL",
        "WARN",
        "INFO",
        "ERRORS",
        "EXIT",
    )
    if not any(r.what for r in runs):  # schema 1 runs only: what was run is not known
        header = header[:3] + header[4:]
        rows = [row[:3] + row[4:] for row in rows]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        out.write("\n")


def _batch_cell(r: RunSummary) -> str:
    """The DOMAIN cell of a --domains batch: `4 domains: 2 failing, 1 with probe errors`."""
    n = r.domains or 0
    return (
        f"{n} domain{'s' if n != 1 else ''}: {r.failing} failing,"
        f" {r.with_probe_errors} with probe errors"
    )


_MAX_NAMES = 50  # domains named per line of a batch diff's text; the JSON has them all


def _names(domains: list[str]) -> str:
    shown = ", ".join(domains[:_MAX_NAMES])
    more = len(domains) - _MAX_NAMES
    return shown + (f" and {more} more" if more > 0 else "")


def _write_batch(d: Diff, out: TextIO) -> None:
    out.write(
        f"batches: {d.domains_before} domains -> {d.domains_after} domains;"
        f" {d.domains_compared} compared, {len(d.domains_added)} added,"
        f" {len(d.domains_removed)} removed\n"
    )
    if d.domains_added:
        out.write(f"domains added: {_names(d.domains_added)}\n")
    if d.domains_removed:
        out.write(f"domains removed: {_names(d.domains_removed)}\n")
    per_domain = d.per_domain()
    if per_domain:
        out.write("per domain:\n")
    for domain, new, resolved, changed in per_domain:
        out.write(f"  {domain}: {new} new, {resolved} resolved, {changed} changed\n")


def _where(domain: str, probe: str, subject: str | None) -> str:
    return f"{domain} {probe}" + (f" [{subject}]" if subject else "")


def write_diff(d: Diff, out: TextIO) -> None:
    out.write(f"diff {d.run_a} -> {d.run_b}: {len(d.new)} new, {len(d.resolved)} resolved,")
    out.write(f" {len(d.changed)} changed")
    if d.not_checked:
        count = len(d.not_checked)
        out.write(f", {count} probe{'s' if count != 1 else ''} not checked")
    out.write("\n")
    if d.batch:
        _write_batch(d, out)
    for title, entries in (("new", d.new), ("resolved", d.resolved)):
        if entries:
            out.write(f"{title}:\n")
        for e in entries:
            f = e.finding
            out.write(
                f"  {f.severity.value.upper():4} {f.code} "
                f"{_where(e.domain, f.probe_id, f.subject)}: {f.message}\n"
            )
    if d.changed:
        out.write("changed:\n")
    for c in d.changed:
        b, a = c.before, c.after
        out.write(f"  {a.code} {_where(c.domain, a.probe_id, a.subject)}:\n")
        if b.severity is not a.severity:
            out.write(f"    before {b.severity.value.upper():4} {b.message}\n")
            out.write(f"    after  {a.severity.value.upper():4} {a.message}\n")
        for key, (old, new) in c.evidence.items():
            out.write(f"    {key}: {_value(old)} -> {_value(new)}\n")
    if d.not_checked:
        out.write("not checked (neither new nor resolved):\n")
    for n in d.not_checked:
        lost = n.findings_before + n.findings_after
        tail = f"; {lost} finding(s) not compared" if lost else ""
        out.write(f"  {n.domain} {n.probe_id}: {n.before} -> {n.after}{tail}\n")


def _value(value: str | None) -> str:
    return "(none)" if value is None else repr(value) if value == "" else value


def write_diff_markdown(d: Diff, out: TextIO) -> None:
    from probes.report.markdown_report import code, md

    def row(*cells: str) -> str:
        return "| " + " | ".join(cells) + " |"

    lines = [
        f"## mailprobe diff {code(d.run_a, in_table=False)} → {code(d.run_b, in_table=False)}",
        "",
        f"**{len(d.new)} new** · {len(d.resolved)} resolved · {len(d.changed)} changed · "
        f"{len(d.not_checked)} probes not checked",
        "",
    ]
    if d.batch:
        lines += [
            f"Batches: {d.domains_before} domains → {d.domains_after} domains; "
            f"{d.domains_compared} compared, {len(d.domains_added)} added, "
            f"{len(d.domains_removed)} removed",
            "",
        ]
        for title, names in (("added", d.domains_added), ("removed", d.domains_removed)):
            if names:
                lines += [f"Domains {title}: " + ", ".join(md(n) for n in names), ""]
        if d.per_domain():
            lines += [
                "### Per domain",
                "",
                row("domain", "new", "resolved", "changed"),
                row(*["---"] * 4),
            ]
            lines += [row(md(x), str(n), str(r), str(c)) for x, n, r, c in d.per_domain()]
            lines.append("")
    for title, entries in (("New", d.new), ("Resolved", d.resolved)):
        if not entries:
            continue
        lines += [
            f"### {title}",
            "",
            row("severity", "code", "domain", "probe", "subject", "message"),
        ]
        lines.append(row(*["---"] * 6))
        for e in entries:
            f = e.finding
            lines.append(
                row(
                    f.severity.value,
                    code(f.code),
                    md(e.domain),
                    md(f.probe_id),
                    md(f.subject or ""),
                    md(f.message),
                )
            )
        lines.append("")
    if d.changed:
        lines += [
            "### Changed",
            "",
            row("code", "domain", "probe", "subject", "what", "before", "after"),
        ]
        lines.append(row(*["---"] * 7))
        for c in d.changed:
            a, b = c.after, c.before
            changes = []
            if a.severity is not b.severity:
                changes.append(("severity", b.severity.value, a.severity.value))
            changes += [(k, _value(old), _value(new)) for k, (old, new) in c.evidence.items()]
            for what, old, new in changes:
                lines.append(
                    row(
                        code(a.code),
                        md(c.domain),
                        md(a.probe_id),
                        md(a.subject or ""),
                        md(what),
                        md(old),
                        md(new),
                    )
                )
        lines.append("")
    if d.not_checked:
        lines += ["### Not checked (neither new nor resolved)", ""]
        lines += [
            row("domain", "probe", "before", "after", "findings not compared"),
            row(*["---"] * 5),
        ]
        for n in d.not_checked:
            lines.append(
                row(
                    md(n.domain),
                    md(n.probe_id),
                    md(n.before),
                    md(n.after),
                    str(n.findings_before + n.findings_after),
                )
            )
        lines.append("")
    out.write("\n".join(lines).rstrip("\n") + "\n")
