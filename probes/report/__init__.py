"""Run reports: the RunReport model, exit statuses, renderers and writing report files.

Renderers are functions `render(report, stream)` registered in the "mailprobe.renderers"
entry-point group (probes.report.json_report, probes.report.text_report, ...).
"""

from probes.report.output import FILENAMES, write_report
from probes.report.run import (
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_PROBE_ERROR,
    EXIT_USAGE,
    SCHEMA_VERSION,
    RunReport,
    exit_status,
    iso_utc,
    new_run_id,
)

__all__ = [
    "EXIT_FINDINGS",
    "EXIT_OK",
    "EXIT_PROBE_ERROR",
    "EXIT_USAGE",
    "FILENAMES",
    "SCHEMA_VERSION",
    "RunReport",
    "exit_status",
    "iso_utc",
    "new_run_id",
    "write_report",
]
