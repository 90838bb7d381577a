"""Metrics for node_exporter's textfile collector: one file per monitored thing, at a fixed path.

`--prometheus-textfile DIR` writes
- `DIR/mailprobe_check_<domain>.prom` for `check DOMAIN` (and `check --lab`: the lab's domain),
- `DIR/mailprobe_scenario_<name>.prom` for each scenario of `mailprobe run`,
- `DIR/mailprobe_domains_<file name>.prom` for `check --domains FILE`,
with characters other than letters, digits, `.`, `_` and `-` in the name replaced by `-`.
Each file is written to a temporary file in DIR (named `.<file>.<random>.tmp`, which the
collector does not read: it reads `*.prom` only) and renamed over the old one, so a scrape
sees the old file or the new one, never half of one. Files of different runs never hold the
same series: their identity labels differ (`domain`; `scenario` and `domain`; `domains`).

`mailprobe_last_success_timestamp_seconds` survives failed runs: it is read back from the file
being replaced (the sample with the same identity labels) when this run did not succeed.
"""

from __future__ import annotations

import math
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

from probes.errors import UsageError
from probes.report.output import _write_atomically
from probes.report.prometheus_report import Labels, label_text

OPTION = "--prometheus-textfile"
LAST_SUCCESS = "mailprobe_last_success_timestamp_seconds"
KINDS = ("check", "scenario", "domains")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def check_directory(directory: str | Path, option: str = OPTION) -> Path:
    """The directory, if it exists and a file can be created in it; else UsageError naming
    `option` (it is not created: a mistyped path would never be read by the collector)."""
    path = Path(directory)
    if not path.exists():
        raise UsageError(f"{option} {directory}: no such directory")
    if not path.is_dir():
        raise UsageError(f"{option} {directory}: not a directory")
    try:
        with tempfile.NamedTemporaryFile(dir=path, prefix=".mailprobe-", suffix=".tmp"):
            pass
    except OSError as exc:
        raise UsageError(
            f"{option} {directory}: cannot write there: {exc.strerror or exc}"
        ) from None
    return path


def textfile_name(kind: str, name: str) -> str:
    """`mailprobe_<kind>_<name>.prom`, `name` made safe for a file name."""
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r}: one of {', '.join(KINDS)}")
    safe = _UNSAFE.sub("-", name).strip("-.") or "unnamed"
    return f"mailprobe_{kind}_{safe}.prom"


def previous_success(path: Path, identity: Labels) -> float | None:
    """The last-success timestamp with exactly these identity labels in the file at `path`
    (None when there is no such file, sample or finite value)."""
    prefix = f"{LAST_SUCCESS}{{{label_text(identity)}}} "
    try:
        with path.open(encoding="utf-8", errors="replace") as stream:
            for line in stream:
                if line.startswith(prefix):
                    try:
                        value = float(line[len(prefix) :].split()[0])
                    except (ValueError, IndexError):
                        return None
                    return value if math.isfinite(value) else None
    except OSError:
        return None
    return None


def write_textfile(
    directory: Path,
    filename: str,
    identity: Labels,
    render: Callable[[float | None], str],
    option: str = OPTION,
) -> Path:
    """Write `render(previous last success)` to directory/filename atomically; its path."""
    path = Path(directory) / filename
    text = render(previous_success(path, identity))
    try:
        _write_atomically(path, lambda stream: stream.write(text))
    except UsageError as exc:
        raise UsageError(f"{option} {directory}: {exc}") from None
    return path
