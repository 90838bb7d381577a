"""Threshold ranges in the monitoring-plugins syntax (pure): `[@]start:end`.

The development guidelines' rules (https://www.monitoring-plugins.org/doc/guidelines.html,
"Threshold and ranges"): a value *outside* the range raises the alert; a leading `@` turns it
round (alert *inside*, ends included). `start` and the colon may be left out when start is 0;
an empty `end` is +infinity; `~` as start is -infinity; start must not exceed end.

    10      alert below 0 or above 10          10:     alert below 10
    ~:10    alert above 10                     10:20   alert below 10 or above 20
    @10:20  alert from 10 to 20 (inclusive)

`parse_range` raises RangeError (a ValueError) with what is wrong; the text given is kept in
`Range.text` so perfdata can repeat it as the operator wrote it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")


class RangeError(ValueError):
    """Not a range in the monitoring-plugins syntax."""


@dataclass(frozen=True)
class Range:
    start: float
    end: float
    inside: bool  # a leading "@": alert when start <= value <= end
    text: str

    def alerts(self, value: float) -> bool:
        """Whether `value` raises the alert this range stands for."""
        if self.inside:
            return self.start <= value <= self.end
        return value < self.start or value > self.end

    @property
    def bare(self) -> bool:
        """Written without a colon (`10`: 0 to 10)."""
        return ":" not in self.text

    @property
    def lower_only(self) -> float | None:
        """N for a plain `N:` range (alert below N), else None."""
        if not self.inside and math.isinf(self.end) and not math.isinf(self.start):
            return self.start
        return None


def parse_range(text: str) -> Range:
    """The Range of `text` (RangeError naming the problem)."""
    raw = text.strip()
    if not raw:
        raise RangeError("empty; expected a range such as 10, 10:, ~:10, 10:20 or @10:20")
    body = raw[1:] if raw.startswith("@") else raw
    start_text, colon, end_text = body.partition(":")
    if not colon:
        start_text, end_text = "0", body
    if start_text == "~":
        start = -math.inf
    elif start_text == "":
        start = 0.0
    else:
        start = _number(start_text, raw)
    end = math.inf if colon and end_text == "" else _number(end_text, raw)
    if start > end:
        raise RangeError(f"{raw!r}: the start ({start_text}) is above the end ({end_text})")
    return Range(start=start, end=end, inside=raw.startswith("@"), text=raw)


def _number(text: str, whole: str) -> float:
    if not _NUMBER.match(text):
        raise RangeError(
            f"{whole!r}: {text!r} is not a number (ranges: 10, 10:, ~:10, 10:20, @10:20)"
        )
    return float(text)
