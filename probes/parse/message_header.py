"""A received message's header section, read without trusting it (pure, no I/O).

`header_fields(raw)`: the header fields as (name, unfolded value), bounded. `find_token(raw)`:
the mailprobe token of a test message (X-Mailprobe-Token first, then the Message-ID), tolerant
of folded header fields and of LF or CRLF line ends. Used by the message round trip
(probes.mail: compose, verify, trust, dkim_sign) and by the receiver (probes.net.receiver).
"""

from __future__ import annotations

import re

TOKEN_HEADER = "X-Mailprobe-Token"
MAX_HEADER_BYTES = 256 * 1024  # find_token/header_fields read at most this much of a message
MAX_FIELDS = 1000  # header fields header_fields returns at most
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{1,128}\Z")
FIELD_NAME_RE = re.compile(r"[\x21-\x39\x3b-\x7e]{1,76}\Z")  # RFC 5322 ftext


def find_token(raw: bytes) -> str | None:
    """The token of a received test message: the first valid X-Mailprobe-Token value, else
    the left part of the Message-ID when it has the token's form; None when neither."""
    fields = header_fields(raw)
    for name, value in fields:
        if name.lower() == TOKEN_HEADER.lower():
            text = value.strip()
            if TOKEN_RE.match(text):
                return text
    for name, value in fields:
        if name.lower() == "message-id":
            match = re.match(r"\s*<([^<>@\s]+)@[^<>\s]*>", value)
            if match and TOKEN_RE.match(match.group(1)):
                return match.group(1)
    return None


def header_fields(raw: bytes) -> list[tuple[str, str]]:
    """The header fields of a message as (name, unfolded value), in order.

    Reads up to the first empty line (LF or CRLF line ends), at most MAX_HEADER_BYTES and
    MAX_FIELDS fields. Folded lines are joined (the line break removed, RFC 5322 §2.2.3);
    lines that are neither a field nor a continuation (an mbox "From " line, garbage) are
    skipped. Bytes that are not UTF-8 are replaced. Never raises.
    """
    head = raw[:MAX_HEADER_BYTES]
    fields: list[list[str]] = []
    for line in re.split(rb"\r?\n", head):
        if not line.strip(b"\r"):
            break
        text = line.rstrip(b"\r").decode("utf-8", errors="replace")
        if text[0] in " \t":
            if fields:
                fields[-1][1] += text
            continue
        name, sep, value = text.partition(":")
        if not sep or not FIELD_NAME_RE.match(name.rstrip(" \t")):
            continue
        if len(fields) >= MAX_FIELDS:
            break
        fields.append([name.rstrip(" \t"), value])
    return [(name, value.strip()) for name, value in fields]


__all__ = [
    "FIELD_NAME_RE",
    "MAX_FIELDS",
    "MAX_HEADER_BYTES",
    "TOKEN_HEADER",
    "TOKEN_RE",
    "find_token",
    "header_fields",
]
