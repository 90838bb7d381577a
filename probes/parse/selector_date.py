"""The date a DKIM selector name carries, where operators write one (pure).

Nothing in DNS says when a DKIM key was made; many operators rotate keys under selectors
named for the date (`s20240101`, `2024-01`, `mail-202403`). That name is the only place a key's
age can be known from outside. The rule: the last group of digits in the name that reads as
YYYYMMDD, YYYY-MM-DD, YYYYMM or YYYY-MM (year 2000-2099, a real calendar date; a month without
a day is its first day), not run together with other digits. A year alone (`k2024`) or any
other number is not a date.
"""

from __future__ import annotations

import datetime as dt
import re

_DATE = re.compile(
    r"(?<![0-9])(20[0-9]{2})(-?)(0[1-9]|1[0-2])(?:\2(0[1-9]|[12][0-9]|3[01]))?(?![0-9])"
)
RULE = "a date in the selector name (YYYYMMDD, YYYY-MM-DD, YYYYMM or YYYY-MM)"


def selector_date(selector: str) -> tuple[dt.date, str] | None:
    """(date, the text it was read from) of the last date-like group in `selector`, or None."""
    for match in reversed(list(_DATE.finditer(selector))):
        year, _, month, day = match.groups()
        try:
            return dt.date(int(year), int(month), int(day or 1)), match.group(0)
        except ValueError:  # 20240231
            continue
    return None
