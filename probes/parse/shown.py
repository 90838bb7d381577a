"""How the parsers quote a server's line in an error message (pure)."""

from __future__ import annotations

MAX_SHOWN = 80


def shorten(line: str, limit: int = MAX_SHOWN) -> str:
    """The line as shown in an error message: control characters escaped, <= limit chars."""
    shown = repr(line)[1:-1]
    if len(shown) > limit:
        shown = shown[: limit - 3] + "..."
    return shown
