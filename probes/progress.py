"""A progress display for long runs (many domains or scenarios), on stderr.

Shown only when stderr is a terminal and the run is not quiet; otherwise (cron, CI logs,
pipes) nothing is drawn and no colour codes are written. `NO_COLOR` (https://no-color.org)
turns colour off as well.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class Progress(Protocol):
    def advance(self, note: str = "") -> None: ...


class _Silent:
    def advance(self, note: str = "") -> None:
        return None


def wanted(quiet: bool, stream=None) -> bool:
    """Whether to draw: not quiet, and the stream is a terminal."""
    stream = stream if stream is not None else sys.stderr
    isatty = getattr(stream, "isatty", None)
    return not quiet and bool(isatty and isatty())


@contextmanager
def progress(total: int, label: str, *, quiet: bool, stream=None) -> Iterator[Progress]:
    """`with progress(n, "domains", quiet=q) as p: ... p.advance(domain)`."""
    if not wanted(quiet, stream) or total <= 1:
        yield _Silent()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as RichProgress

    console = Console(
        file=stream if stream is not None else sys.stderr,
        no_color="NO_COLOR" in os.environ,
    )
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[note]}"),
    )
    with RichProgress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(label, total=total, note="")

        class _Bar:
            def advance(self, note: str = "") -> None:
                bar.update(task, advance=1, note=note[:40])

        yield _Bar()
