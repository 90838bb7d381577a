"""`mailprobe run SCENARIO.yaml ...`: run the scenarios pytest collects, without pytest.

Every scenario file is loaded and validated before anything runs (a bad one: exit 2 naming
file, line and field; so is a running lab a scenario names, `lab: {name: NAME}`, that is not
up or does not answer). Each scenario then runs in turn; its report goes to
`--output DIR/<scenario name>/` (default `reports/<run-id>/`), as JSON plus `--format`.
Stdout gets one line per scenario (PASS, FAIL or ERROR) and, for the ones that did not pass,
the unmet expectations and a table of findings; `-q` prints only those, and for a scenario that
fails exactly as its previous runs did (same status, same findings) one "still failing since"
line instead of the table. Each scenario is stored in the history as "scenario:NAME".

Exit status: 0 every expectation met, 1 an expectation failed, 2 a bad scenario (or option),
3 a probe could not run and no expectation failed. With `--format nagios` stdout is one plugin
output for all the scenarios (probes.report.nagios_report.render_many) and the exit follows
it: 0 OK (every expectation met), 2 CRITICAL (one failed), 3 UNKNOWN (a probe could not run,
or a bad scenario or option).
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from pathlib import Path

from probes.cli_history import add_history_options, check_history
from probes.cli_prometheus import add_prometheus_options, check_prometheus_options
from probes.errors import UsageError
from probes.report.run import EXIT_FINDINGS, EXIT_OK, EXIT_PROBE_ERROR

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_LABELS = {EXIT_OK: "PASS", EXIT_FINDINGS: "FAIL", EXIT_PROBE_ERROR: "ERROR"}
# --format nagios: a scenario's status as a plugin state (OK, CRITICAL, UNKNOWN)
_PLUGIN_STATES = {EXIT_OK: 0, EXIT_FINDINGS: 2, EXIT_PROBE_ERROR: 3}


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the `run` command to the `mailprobe` parser's subparsers."""
    run = subparsers.add_parser(
        "run",
        help="run scenario files (the YAML scenarios pytest collects)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "scenarios", nargs="+", metavar="SCENARIO.yaml", help="scenario files to run, in order"
    )
    from probes.registry import InstalledFormats

    run.add_argument(
        "--format",
        default="text",
        metavar="FORMAT",
        help="report formats besides json, comma-separated (default text); installed: "
        "%(formats)s; nagios only alone",
    ).formats = InstalledFormats()
    run.add_argument(
        "--output", metavar="DIR", help="report directory, one subdirectory per scenario"
    )
    run.add_argument("-q", "--quiet", action="store_true", help="print only what did not pass")
    from probes.cli_time import add_time_options

    add_time_options(run)  # override every scenario's target.timeouts; one deadline for all
    add_history_options(run, storing=True)
    add_prometheus_options(run, domains=False)
    run.set_defaults(func=cmd_run)
    return run


def cmd_run(args: argparse.Namespace) -> int:
    from probes import registry
    from probes.cli_time import check_time_options, command_started, run_deadline
    from probes.report.output import parse_formats, shown_format
    from probes.scenario import flavour_cells, load_paths

    args.run_deadline = run_deadline(args, command_started())
    check_time_options(args)

    renderers = registry.load_renderers()
    formats = parse_formats(args.format, renderers)  # exit 2 before anything runs
    args.format = shown_format(formats)  # printed (nagios: the plugin output for all)
    args.report_formats = list(dict.fromkeys(["json", *formats]))  # written per scenario
    cells = [cell for s in load_paths(args.scenarios) for cell in flavour_cells(s)]
    if not cells:
        raise UsageError(f"no scenarios in {', '.join(args.scenarios)}")
    scenarios = []
    for scenario, skip in cells:
        if skip:  # a lab flavour that cannot express the scenario's lab spec
            line = f"SKIP  {scenario.name}  ({scenario.where}; {skip})"
            print(line, flush=True, file=sys.stderr if args.format == "nagios" else sys.stdout)
        else:
            scenarios.append(scenario)
    check_history(args)
    args.prometheus_dir = check_prometheus_options(args)
    from probes.scenario_run import running_lab_of

    for scenario in scenarios:  # a running lab that is not up: exit 2 before anything runs
        if scenario.lab_name is not None:
            running_lab_of(scenario)

    def say(msg: str) -> None:
        if not args.quiet:
            print(f"mailprobe: {msg}", file=sys.stderr, flush=True)

    from probes.progress import progress

    with progress(len(scenarios), "scenarios", quiet=args.quiet) as bar:
        return _run_all(args, scenarios, renderers, say, bar)


def _run_all(args, scenarios, renderers, say, bar) -> int:
    """Run every scenario, write its reports, store it; the worst exit status."""
    from probes.cli_render import for_files
    from probes.report.output import write_report
    from probes.scenario_run import describe, run_scenario

    files = for_files(renderers)

    formats = args.report_formats
    used: set[str] = set()
    named: set[str] = set()  # scenario names in metrics (a repeated name gets a suffix)
    worst = EXIT_OK
    from probes.cli_time import with_time_options

    plugin = args.format == "nagios"
    entries = []  # --format nagios: (scenario, state, report)
    details: dict[str, list[str]] = {}
    for scenario in scenarios:
        bar.advance(scenario.name)
        say(f"scenario {scenario.name!r} ({scenario.where})")
        outcome = run_scenario(
            with_time_options(scenario, args),
            say=say,
            deadline=args.run_deadline,
            run_limit=args.max_run_time,
        )
        if args.output:
            out_dir = Path(args.output) / _unique(_slug(scenario.name), used)
        else:
            out_dir = Path("reports") / outcome.report.run_id
        status = outcome.status
        what = f"scenario:{scenario.name}"  # compared with its own previous run
        still = None
        if args.no_history:
            paths = write_report(outcome.report, out_dir, formats, files)
        else:
            from probes.drift import mark_new, still_failing
            from probes.history import HistoryDB
            from probes.model import Severity

            with HistoryDB(args.history) as db:
                report = mark_new(db, outcome.report, what)
                # the runs before, for the HTML scorecard's trend chart
                report = dataclasses.replace(report, trend=db.trend(report, what))
                outcome = dataclasses.replace(outcome, report=report)
                if args.quiet and status != EXIT_OK:
                    still = still_failing(db, outcome.report, status, Severity.INFO, what)
                paths = write_report(outcome.report, out_dir, formats, files)
                db.add(outcome.report, status=status, what=what)
        if args.prometheus_dir:
            from probes.cli_prometheus import write_run

            name = _unique_name(scenario.name, named)
            write_run(args.prometheus_dir, outcome.report, scenario=name)
        if status == EXIT_FINDINGS or worst == EXIT_FINDINGS:
            worst = EXIT_FINDINGS
        else:
            worst = max(worst, status)
        if plugin:
            entries.append((scenario.name, _PLUGIN_STATES[status], outcome.report))
            if status != EXIT_OK:
                details[scenario.name] = describe(outcome).splitlines()
            continue
        if status != EXIT_OK or not args.quiet:
            results = outcome.report.results
            print(
                f"{_LABELS[status]:5} {scenario.name}  ({scenario.where}; {len(results)} probes; "
                f"report {paths[0].parent})",
                flush=True,
            )
        if still is not None:  # -q, the same failure as the runs before: one line
            print(_indent(still), flush=True)
        elif status != EXIT_OK:
            print(_indent(describe(outcome)), flush=True)
    if plugin:
        from probes.report.nagios_report import render_many

        return render_many(
            entries, sys.stdout, what="scenarios", details=details, per_entry_perf=True
        )
    return worst


def _slug(name: str) -> str:
    return _UNSAFE.sub("-", name).strip("-.") or "scenario"


def _unique(slug: str, used: set[str]) -> str:
    candidate, n = slug, 2
    while candidate in used:
        candidate, n = f"{slug}-{n}", n + 1
    used.add(candidate)
    return candidate


def _unique_name(name: str, used: set[str]) -> str:
    """`name`, or `name (2)`, ... when a scenario of that name (or file name) ran already."""
    from probes.report.prometheus_textfile import textfile_name

    candidate, n = name, 2
    while textfile_name("scenario", candidate) in used:
        candidate, n = f"{name} ({n})", n + 1
    used.add(textfile_name("scenario", candidate))
    return candidate


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" if line else "" for line in text.splitlines())
