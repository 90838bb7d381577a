"""Write a run's report files into an output directory, one file per format, atomically."""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from probes.errors import UsageError
from probes.report.run import RunReport

Renderer = Callable[[RunReport, TextIO], Any]

# Formats without an entry here are written to "report.<format>".
FILENAMES = {
    "json": "report.json",
    "text": "report.txt",
    "junit": "report.xml",
    "markdown": "report.md",
    "html": "report.html",
    "prometheus": "report.prom",
}


def parse_formats(value: str, known: Iterable[str]) -> list[str]:
    """`--format a,b,c`: the named formats in order, each once.

    UsageError (exit 2) for an empty list, a format not in `known` (naming it and the known
    ones), and nagios with another format: its plugin output and exit status are the whole
    of stdout and of the status, so it goes alone."""
    known = sorted(known)
    formats = list(dict.fromkeys(f.strip() for f in value.split(",") if f.strip()))
    if not formats:
        raise UsageError(f"--format {value!r}: name a format; known formats are {', '.join(known)}")
    unknown = [f for f in formats if f not in known]
    if unknown:
        raise UsageError(
            f"--format {', '.join(map(repr, unknown))}: known formats are {', '.join(known)}"
        )
    if "nagios" in formats and len(formats) > 1:
        raise UsageError(
            f"--format {value!r}: nagios goes alone (the plugin output is all of stdout and "
            "its state the exit status); the JSON report is written with it"
        )
    return formats


def shown_format(formats: Sequence[str]) -> str:
    """The format printed on stdout: the one named when one is; with several (they are all
    written to files) the text report, for the person at the terminal (a page of HTML or XML
    there helps nobody)."""
    if len(formats) == 1:
        return formats[0]
    return "text"


def filename_for(fmt: str) -> str:
    return FILENAMES.get(fmt, f"report.{fmt}")


def write_report(
    report: RunReport,
    out_dir: Path,
    formats: Sequence[str],
    renderers: Mapping[str, Renderer],
) -> list[Path]:
    """Render `report` in each format into `out_dir` (created if missing); return the paths.

    Each file is written to a temporary file in `out_dir` and moved into place with
    os.replace, so a reader never sees a half-written report. Unknown formats and an output
    directory that cannot be created or written raise UsageError naming them.
    """
    out_dir = Path(out_dir)
    wanted = list(dict.fromkeys(formats))
    unknown = [fmt for fmt in wanted if fmt not in renderers]
    if unknown:
        known = ", ".join(sorted(renderers)) or "none"
        raise UsageError(f"unknown report format {', '.join(unknown)}; known formats: {known}")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create output directory {out_dir}: {exc.strerror}") from exc
    if not out_dir.is_dir():
        raise UsageError(f"output directory {out_dir} is not a directory")
    written = []
    for fmt in wanted:
        path = out_dir / filename_for(fmt)
        _write_atomically(path, functools.partial(renderers[fmt], report))
        written.append(path)
    return written


def write_file(path: Path, write: Callable[[TextIO], Any]) -> None:
    """`write(stream)` into the file `path`, atomically (UsageError when it cannot be)."""
    _write_atomically(Path(path), write)


def _write_atomically(path: Path, write: Callable[[TextIO], Any]) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        # os.open with 0o666 so the umask applies as for any ordinary file.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise UsageError(f"cannot write to output directory {path.parent}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc
        raise
