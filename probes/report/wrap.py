"""Fitting text into a terminal's width: prose wrapped with a hanging indent, shell commands
broken only where the shell allows (a space outside quotes, continued with a backslash), so a
wrapped reproduce line still pastes and runs."""

from __future__ import annotations

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
    `rest` (default: spaces as wide as `first`). Lines break between words; a word (a path, a
    fingerprint) that does not fit where it comes starts a line of its own, whole, so it can be
    copied; only a word longer than a whole line is broken."""
    rest = " " * len(first) if rest is None else rest
    width = max(width, MIN_WIDTH)
    lines: list[str] = []
    line, empty = first, True
    for word in visible(text).split():
        if len(line) + (0 if empty else 1) + len(word) <= width:
            line, empty = line + ("" if empty else " ") + word, False
            continue
        if not empty or len(word) <= width - len(rest):
            lines.append(line.rstrip())
            line, empty = rest, True
        while len(line) + len(word) > width:  # longer than a whole line: broken
            room = max(width - len(line), 1)
            lines.append(line + word[:room])
            line, word = rest, word[room:]
        line, empty = line + word, False
    lines.append(line.rstrip())
    return lines


def _scan(command: str) -> tuple[list[int], int | None]:
    """Indexes of the spaces where the shell would split words (not inside quotes), and where
    a comment starts (an unquoted `#` beginning a word), if one does."""
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
        elif ch == "#" and (i == 0 or command[i - 1] in " \t"):
            return points, i
        elif ch == " ":
            points.append(i)
    return points, None


def wrap_command(command: str, width: int, first: str, rest: str | None = None) -> list[str]:
    """A shell command as lines no wider than `width` where it can be broken: at spaces outside
    quotes, each broken line ending in ` \\`. A quoted word wider than a line stays whole
    (breaking it would change the command). A trailing comment goes on lines of its own, each
    starting with `#` (a comment cannot be continued). A command with a newline is left as it
    is."""
    rest = " " * len(first) if rest is None else rest
    width = max(width, MIN_WIDTH)
    if "\n" in command or len(first) + len(command) <= width:
        return [first + command]
    points, comment_at = _scan(command)
    if comment_at is not None:  # a comment cannot be continued: its own lines, each a comment
        lines = wrap_command(command[:comment_at].rstrip(), width, first, rest)
        comment = command[comment_at:].lstrip("#").strip()
        if len(lines[-1]) + 3 + len(comment) <= width:
            return [*lines[:-1], f"{lines[-1]} # {comment}"]
        return lines + wrap(comment, width, rest + "# ", rest + "# ")
    lines = []
    prefix, start = first, 0
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
