"""Mail addresses given by users or written into a test message (pure)."""

from __future__ import annotations

import email.utils


class BadAddress(ValueError):
    """Not one usable mailbox; the message says why (and shows at most 80 characters)."""


def no_line_breaks(text: str, what: str) -> None:
    if "\r" in text or "\n" in text or "\0" in text:
        raise BadAddress(f"{what} contains a line break or NUL")


def mailbox(text: str, what: str = "the") -> tuple[str, str]:
    """(display name, local@domain) of a single mailbox (`Name <a@b>` or `a@b`); BadAddress
    unless it is exactly one ASCII address with a local part and a domain."""
    no_line_breaks(text, what)
    pairs = email.utils.getaddresses([text])
    if len(pairs) != 1 or not pairs[0][1]:
        raise BadAddress(f"the {what} address {text[:80]!r} is not one mailbox")
    name, addr = pairs[0]
    local, at, domain = addr.rpartition("@")
    if not at or not local or not domain or not addr.isascii() or " " in addr:
        raise BadAddress(f"the {what} address {addr[:80]!r} needs an ASCII local@domain form")
    return name, addr
