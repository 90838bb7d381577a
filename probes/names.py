"""Domain names given by users: validated and normalized before anything is asked."""

from __future__ import annotations

import re

_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


class InvalidDomain(ValueError):
    """The text is not a usable domain name; the message says why."""


def normalize_domain(text: str) -> str:
    """`text` as a lower-case ASCII domain name without trailing dot (IDN to punycode).

    Raises InvalidDomain naming the problem: empty, a single label, a label longer than 63
    bytes or with characters outside letters/digits/hyphen/underscore, too long overall, an
    IP address.
    """
    raw = text.strip()
    name = raw.rstrip(".").lower()
    if not name:
        raise InvalidDomain(f"{text!r} is empty")
    if any(c.isspace() for c in name):
        raise InvalidDomain(f"{text!r} contains white space")
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise InvalidDomain(f"{text!r} is not a valid internationalized name: {exc}") from None
    labels = name.split(".")
    if len(labels) < 2:
        raise InvalidDomain(f"{text!r} has a single label; give a full domain name")
    if all(label.isdigit() for label in labels):
        raise InvalidDomain(f"{text!r} is an IP address, not a domain name")
    for label in labels:
        if not label:
            raise InvalidDomain(f"{text!r} has an empty label")
        if not _LABEL.match(label):
            raise InvalidDomain(
                f"{text!r}: label {label[:63]!r} is not 1-63 letters, digits, '-' or '_'"
            )
    if len(name) > 253:
        raise InvalidDomain(f"{text!r} is longer than 253 characters")
    return name
