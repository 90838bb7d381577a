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
import json
import sys
from pathlib import Path

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
        write_file(Path(args.output), lambda stream: renderers[fmt](report, stream))
        return EXIT_OK

    def write() -> int:
        renderers[fmt](report, sys.stdout)
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
