"""`--prometheus-textfile DIR` (and `--prometheus-per-domain`) for `check` and `run`: metrics for
node_exporter's textfile collector (probes.report.prometheus_textfile), checked before anything
is probed."""

from __future__ import annotations

import argparse
from pathlib import Path

from probes.errors import UsageError
from probes.report.prometheus_report import AuditMetrics, Labels, run_exposition
from probes.report.prometheus_textfile import check_directory, textfile_name, write_textfile
from probes.report.run import RunReport


def add_prometheus_options(parser: argparse.ArgumentParser, *, domains: bool) -> None:
    parser.add_argument(
        "--prometheus-textfile",
        metavar="DIR",
        help="also write metrics to DIR/mailprobe_<kind>_<name>.prom, atomically, for "
        "node_exporter's textfile collector (DIR must exist)",
    )
    if domains:
        parser.add_argument(
            "--prometheus-per-domain",
            action="store_true",
            help="with --domains and --prometheus-textfile: series for every domain too "
            "(default: counts over the whole audit only)",
        )


def check_prometheus_options(args: argparse.Namespace) -> Path | None:
    """The textfile directory, checked (exit 2 naming the option), or None."""
    per_domain = getattr(args, "prometheus_per_domain", False)
    if per_domain and not getattr(args, "domains", None):
        raise UsageError("--prometheus-per-domain goes with --domains")
    if per_domain and not args.prometheus_textfile:
        raise UsageError("--prometheus-per-domain goes with --prometheus-textfile")
    if not args.prometheus_textfile:
        return None
    return check_directory(args.prometheus_textfile)


def write_run(directory: Path, report: RunReport, scenario: str | None = None) -> Path:
    """A check's or a scenario's metrics in their file of `directory`."""
    domain = report.target.domain
    if scenario is None:
        identity: Labels = (("domain", domain),)
        name = textfile_name("check", domain)
    else:
        identity = (("scenario", scenario), ("domain", domain))
        name = textfile_name("scenario", scenario)
    return write_textfile(
        directory, name, identity, lambda last: run_exposition(report, identity, last)
    )


def audit_metrics(domains_file: str, per_domain: bool) -> AuditMetrics:
    return AuditMetrics((("domains", Path(domains_file).name),), per_domain=per_domain)


def write_audit(directory: Path, metrics: AuditMetrics, started: float, duration_s: float) -> Path:
    """A `check --domains` audit's metrics in their file of `directory`."""
    name = textfile_name("domains", dict(metrics.identity)["domains"])
    return write_textfile(
        directory,
        name,
        metrics.identity,
        lambda last: metrics.text(started, duration_s, last),
    )
