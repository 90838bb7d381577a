"""Fitting text into a terminal's width: prose wrapped with a hanging indent, shell commands
broken only where the shell allows (a space outside quotes, continued with a backslash), so a
wrapped reproduce line still pastes and runs."""

from __future__ import annotations

import textwrap

MIN_WIDTH = 40  # below this, wrapping does more harm than good


def visible(text: str) -> str:
    """One line: control characters shown, not obeyed (a server reply's CR LF, a tab)."""
    return (
        text.replace("\r\n", "⏎ ")
        .replace("\n", "⏎ ")
        .replace("\r", "⏎ ")
        .replace("\t", " ")
        .strip()
    )


def wrap(text: str, width: int, first: str, rest: str | None = None) -> list[str]:
    """`text` as lines no wider than `width`: the first starts with `first`, the others with
    `rest` (default: spaces as wide as `first`). A word longer than a line is broken."""
    rest = " " * len(first) if rest is None else rest
    width = max(width, MIN_WIDTH)
    return textwrap.wrap(
        visible(text),
        width=width,
        initial_indent=first,
        subsequent_indent=rest,
        break_on_hyphens=False,
        break_long_words=True,
    ) or [first.rstrip()]


def _break_points(command: str) -> list[int]:
    """Indexes of the spaces where the shell would split words (not inside quotes)."""
    points: list[int] = []
    quote: str | None = None
    escaped = False
    for i, ch in enumerate(command):
        if escaped:
            escaped = False
        elif ch == "\\" and quote != "'":
            escaped = True
        elif quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == " ":
            points.append(i)
    return points


def wrap_command(command: str, width: int, first: str, rest: str | None = None) -> list[str]:
    """A shell command as lines no wider than `width` where it can be broken: at spaces outside
    quotes, each broken line ending in ` \\`. A quoted word wider than a line stays whole
    (breaking it would change the command). A command with a newline is left as it is."""
    rest = " " * len(first) if rest is None else rest
    width = max(width, MIN_WIDTH)
    if "\n" in command or len(first) + len(command) <= width:
        return [first + command]
    lines: list[str] = []
    prefix, start = first, 0
    points = _break_points(command)
    while len(prefix) + len(command) - start > width:
        room = width - len(prefix) - 2  # " \"
        fits = [p for p in points if start < p <= start + room]
        later = [p for p in points if p > start]
        cut = fits[-1] if fits else (later[0] if later else None)
        if cut is None:
            break
        lines.append(prefix + command[start:cut] + " \\")
        prefix, start = rest, cut + 1
    lines.append(prefix + command[start:])
    return lines
