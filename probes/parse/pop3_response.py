"""POP3 status lines and the CAPA response (RFC 1939, RFC 2449). Pure: no I/O.

    single-line = ("+OK" / "-ERR") [SP text] CRLF
    capa-resp   = "+OK" [SP text] CRLF *(capa-line CRLF) "." CRLF
    capa-line   = capa-tag *(SP param)          ; dot-stuffed like any multi-line response

The status indicators are upper case by RFC 1939; lower case (`+ok`) is tolerated. The door
reads a multi-line response until `is_multiline_end`; `parse_capa` checks and reads it. Every
malformed response raises `Pop3ResponseError`, never anything else.
"""

from __future__ import annotations

import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from probes.errors import ProtocolError
from probes.parse.shown import shorten as _shorten


class Pop3ResponseError(ProtocolError):
    """A malformed or negative POP3 response; the message says what and shows the line."""


@dataclass(frozen=True)
class Status:
    ok: bool
    text: str


def parse_status(line: str) -> Status:
    """`+OK text` or `-ERR text` (indicator in any case, then end of line or a space)."""
    if not isinstance(line, str):
        raise Pop3ResponseError(f"status line is not text: {type(line).__name__}")
    word, space, text = line.partition(" ")
    indicator = word.upper()
    if indicator not in ("+OK", "-ERR"):
        raise Pop3ResponseError(f"status line is not +OK or -ERR: '{_shorten(line)}'")
    return Status(indicator == "+OK", text.strip() if space else "")


def is_multiline_end(line: str) -> bool:
    """The line ends a multi-line response (a lone ".")."""
    return line == "."


def parse_capa(lines: Sequence[str]) -> Mapping[str, tuple[str, ...]]:
    """CAPA's capabilities: tag upper-cased -> parameters (e.g. "SASL": ("PLAIN", "LOGIN")).

    `lines` holds the status line, the capability lines and the terminating ".". A -ERR
    status, a missing or early terminator, or a line after it is an error. Empty lines are
    skipped; a repeated tag adds its parameters to the first.
    """
    if isinstance(lines, str):
        raise Pop3ResponseError("response is a single string, not a sequence of lines")
    if not lines:
        raise Pop3ResponseError("empty CAPA response (no lines)")
    status = parse_status(lines[0])
    if not status.ok:
        raise Pop3ResponseError(f"CAPA answered -ERR: '{_shorten(status.text)}'")
    body = lines[1:]
    if not body or not isinstance(body[-1], str) or not is_multiline_end(body[-1]):
        raise Pop3ResponseError("CAPA response does not end with a '.' line")
    caps: dict[str, list[str]] = {}
    for index, line in enumerate(body[:-1], start=2):
        if not isinstance(line, str):
            raise Pop3ResponseError(f"line {index} is not text: {type(line).__name__}")
        if is_multiline_end(line):
            raise Pop3ResponseError(f"line {index} ends the response before its last line")
        if line.startswith("."):
            line = line[1:]  # dot-unstuffing
        words = line.split()
        if not words:
            continue
        known = caps.setdefault(words[0].upper(), [])
        known.extend(p for p in words[1:] if p not in known)
    if "SASL" in caps:
        caps["SASL"] = list(dict.fromkeys(p.upper() for p in caps["SASL"]))
    return types.MappingProxyType({tag: tuple(params) for tag, params in caps.items()})


def plaintext_login_offered(capa: Mapping[str, Sequence[str]]) -> bool:
    """USER/PASS is offered, or SASL PLAIN or LOGIN."""
    sasl = {mechanism.upper() for mechanism in capa.get("SASL", ())}
    return "USER" in capa or bool(sasl & {"PLAIN", "LOGIN"})
