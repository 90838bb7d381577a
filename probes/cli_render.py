"""`mailprobe render REPORT.json [--format F] [--output FILE]`: render a stored report again.

REPORT.json is a schema-1 report (a run's report.json, docs/contract.md); it is read with
RunReport.from_json and given to the installed renderer F (default text), on stdout or into
FILE (written atomically). Nothing is probed. The history is not read unless `--history PATH`
names it: then the report carries its trend (the runs of the same target before it, as
`check` hands them to the HTML scorecard's trend chart); nothing is written to it.

Exit status: 0 rendered; 2 an unknown format, a file that cannot be read or is not a schema-1
report, or an output file that cannot be written.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from probes.errors import UsageError
from probes.report.run import EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the `render` command to the `mailprobe` parser's subparsers."""
    from probes.registry import InstalledFormats

    render = subparsers.add_parser(
        "render",
        help="render a stored report.json again in another format",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    render.add_argument("report", metavar="REPORT.json", help="a stored schema-1 report")
    render.add_argument(
        "--format",
        default="text",
        metavar="FORMAT",
        help="the format (default text); installed: %(formats)s",
    ).formats = InstalledFormats()
    render.add_argument("--output", metavar="FILE", help="write here instead of stdout")
    render.add_argument(
        "--history",
        metavar="PATH",
        default=None,
        help="read the trend (earlier runs of the target) from this history file; the HTML "
        "scorecard draws it",
    )
    add_verbose_option(render)
    render.set_defaults(func=cmd_render)
    return render


def cmd_render(args: argparse.Namespace) -> int:
    from probes import registry
    from probes.cli_history import quiet_pipe
    from probes.report.output import parse_formats, write_file
    from probes.report.run import RunReport

    renderers = registry.load_renderers()
    (fmt,) = _one(parse_formats(args.format, renderers))
    try:
        data = json.loads(Path(args.report).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{args.report}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{args.report}: not JSON: {exc}") from None
    try:
        report = RunReport.from_json(data)
    except ValueError as exc:
        raise UsageError(f"{args.report}: {exc}") from None
    if args.history:
        report = _with_trend(report, args.history)
    if args.output:
        files = for_files(renderers)
        write_file(Path(args.output), lambda stream: files[fmt](report, stream))
        return EXIT_OK

    def write() -> int:
        show(renderers, fmt, report, sys.stdout, verbose=args.verbose)
        return EXIT_OK

    return quiet_pipe(write)


def _with_trend(report, path: str):
    """`report` with its trend from the history at `path` (which must exist): the runs before
    it with the same `what` when the history holds the run itself, else any of its domain."""
    import dataclasses

    from probes.history import HistoryDB, HistoryError

    with HistoryDB(path, create=False) as db:
        try:
            what = db.run(report.run_id).what
        except HistoryError:
            what = None
        return dataclasses.replace(report, trend=db.trend(report, what))


def _one(formats: list[str]) -> list[str]:
    if len(formats) > 1:
        raise UsageError(f"--format {','.join(formats)}: render writes one format")
    return formats


# ----- the text report's two readers: a terminal and a file -------------------------------------
TEXT = "text"


def add_verbose_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="text: also every probe's outcome and the info findings (what was seen)",
    )


def terminal_width(stream: TextIO) -> int | None:
    """The columns to fit: $COLUMNS when set, else the terminal's when `stream` is one, else
    None (a file or a pipe: the renderer's default)."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    try:
        if stream.isatty():
            return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        pass
    return None


def show(
    renderers: Mapping[str, Any], fmt: str, report: Any, stream: TextIO, *, verbose: bool = False
) -> None:
    """Render `report` for a person reading `stream`: the text report short (info findings
    with --verbose) and as wide as the terminal; any other format as it is."""
    if fmt == TEXT:
        renderers[fmt](report, stream, verbose=verbose, width=terminal_width(stream))
    else:
        renderers[fmt](report, stream)


def for_files(renderers: Mapping[str, Any]) -> dict[str, Any]:
    """The renderers for report files: report.txt is the whole record (info findings too)."""
    out = dict(renderers)
    if TEXT in out:
        out[TEXT] = functools.partial(out[TEXT], verbose=True)
    return out
