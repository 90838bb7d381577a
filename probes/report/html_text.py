"""What every piece of the HTML report shares: escaping and the status chips.

Every value from a report goes through `esc` (control characters spelled out as "\\xNN", then
html.escape with quotes), in text and in attributes alike. A status is always shown as a word
in a chip, its colour only repeating it.
"""

from __future__ import annotations

import html
import re

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

# status word -> chip class (colour); the word itself is always shown
STATUS_CLASS = {
    "fail": "fail",
    "error": "fail",
    "warn": "warn",
    "pass": "pass",
    "ok": "pass",
    "info": "info",
    "absent": "muted",
    "skipped": "muted",
    "not checked": "muted",
    "unknown": "muted",
}


def esc(value: object) -> str:
    """`value` as HTML text or attribute value: control characters spelled out, escaped."""
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value))
    return html.escape(text, quote=True)


def chip(status: str, text: str | None = None) -> str:
    """A status chip: the word (or `text`) on the status's colour."""
    cls = STATUS_CLASS.get(status, "muted")
    return f'<span class="chip {cls}">{esc(text if text is not None else status)}</span>'


def clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters with "…" (for SVG labels, which do not wrap)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
