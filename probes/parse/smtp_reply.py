"""SMTP replies (RFC 5321 §4.2), EHLO capabilities and the 220 banner. Pure: no I/O.

    Reply-line     = *( Reply-code "-" [ textstring ] CRLF )
                     Reply-code [ SP textstring ] CRLF
    Reply-code     = %x32-35 %x30-35 %x30-39
    ehlo-ok-rsp    = ( "250" SP Domain [ SP ehlo-greet ] CRLF )
                   / ( "250-" Domain [ SP ehlo-greet ] CRLF
                       *( "250-" ehlo-line CRLF )
                       "250" SP ehlo-line CRLF )
    ehlo-line      = ehlo-keyword *( SP ehlo-param )

The network door reads lines (CRLF stripped) and asks `is_last_line` when a reply is complete;
`parse_reply` then checks the whole reply. Lenient where real servers are sloppy (a bare `250`
last line, `250 ` with empty text, lower-case keywords, trailing spaces, the pre-RFC 4954
`AUTH=LOGIN PLAIN` line), strict where the reply's framing is at stake (codes, continuation
markers): every malformed reply raises `SmtpReplyError`, never anything else.
"""

from __future__ import annotations

import re
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from probes.errors import ProtocolError
from probes.parse.shown import shorten

_LINE = re.compile(r"([0-9]{3})(?:([ -])(.*)|)", re.ASCII | re.DOTALL)
# RFC 3463: class "." subject "." detail; class 2, 4 or 5; subject/detail 1-3 digits.
_ENHANCED = re.compile(r"([245]\.[0-9]{1,3}\.[0-9]{1,3})(?![0-9.])", re.ASCII)
_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})+\.?", re.ASCII)
_ADDRESS_LITERAL = re.compile(
    r"\[(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|IPv6:[0-9A-Fa-f:.]{2,45})\]", re.ASCII
)


class SmtpReplyError(ProtocolError):
    """A malformed SMTP reply; the message says what was wrong and shows the line."""


def _split(line: str) -> tuple[int, str, str]:
    """(code, separator " " / "-" / "", text) of one reply line."""
    if not isinstance(line, str):
        raise SmtpReplyError(f"reply line is not text: {type(line).__name__}")
    match = _LINE.fullmatch(line)
    if match is None:
        raise SmtpReplyError(
            f"reply line does not start with a 3-digit code and ' ' or '-': '{shorten(line)}'"
        )
    return int(match.group(1)), match.group(2) or "", match.group(3) or ""


def is_last_line(line: str) -> bool:
    """True when the line ends a reply (`NNN` or `NNN text`), False for `NNN-text`.

    Raises SmtpReplyError for a line that is not a reply line at all.
    """
    return _split(line)[1] != "-"


@dataclass(frozen=True)
class Reply:
    code: int
    lines: tuple[str, ...]  # the text after "NNN " / "NNN-" of each line

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def is_positive(self) -> bool:
        return 200 <= self.code < 400

    @property
    def enhanced(self) -> str | None:
        """The RFC 3463 enhanced status code at the start of the first line (e.g. "5.7.1")."""
        if not self.lines:
            return None
        match = _ENHANCED.match(self.lines[0])
        return match.group(1) if match else None


def parse_reply(lines: Sequence[str]) -> Reply:
    """One complete reply: same 2xx-5xx code on every line, only the last one a last line."""
    if isinstance(lines, str):
        raise SmtpReplyError("reply is a single string, not a sequence of lines")
    if not lines:
        raise SmtpReplyError("empty reply (no lines)")
    code: int | None = None
    texts: list[str] = []
    last = len(lines) - 1
    for index, line in enumerate(lines):
        line_code, separator, text = _split(line)
        if code is None:
            code = line_code
            if not 200 <= code <= 599:
                raise SmtpReplyError(f"reply code {code} outside 2xx-5xx: '{shorten(line)}'")
        elif line_code != code:
            raise SmtpReplyError(
                f"line {index + 1} has code {line_code}, the reply began with {code}: "
                f"'{shorten(line)}'"
            )
        if index < last and separator != "-":
            raise SmtpReplyError(
                f"line {index + 1} of {len(lines)} ends the reply early: '{shorten(line)}'"
            )
        if index == last and separator == "-":
            raise SmtpReplyError(f"last line is a continuation line: '{shorten(line)}'")
        texts.append(text)
    assert code is not None
    return Reply(code, tuple(texts))


@dataclass(frozen=True)
class Ehlo:
    name: str  # the first word of the first line: the name the server announces
    greeting: str  # the rest of the first line
    keywords: Mapping[str, tuple[str, ...]] = field(hash=False)  # KEYWORD -> parameters

    def has(self, keyword: str) -> bool:
        return keyword.upper() in self.keywords

    @property
    def auth_mechanisms(self) -> tuple[str, ...]:
        return self.keywords.get("AUTH", ())

    @property
    def size(self) -> int | None:
        """The SIZE limit in bytes (0 = no fixed limit, RFC 1870); None if absent or unreadable."""
        params = self.keywords.get("SIZE")
        if not params or not re.fullmatch(r"[0-9]{1,20}", params[0], re.ASCII):
            return None
        return int(params[0])


def _add(keywords: dict[str, list[str]], key: str, params: Sequence[str]) -> None:
    known = keywords.setdefault(key, [])
    for param in params:
        if param not in known:
            known.append(param)


def parse_ehlo(reply: Reply) -> Ehlo:
    """The capabilities of a 250 EHLO reply; keywords upper-cased, AUTH mechanisms too.

    `AUTH=LOGIN PLAIN` (the pre-standard form, still sent next to `AUTH LOGIN PLAIN`) is
    merged into AUTH. Empty extension lines are skipped.
    """
    if reply.code != 250:
        raise SmtpReplyError(f"EHLO reply code is {reply.code}, not 250")
    first = reply.lines[0].split(None, 1) if reply.lines else []
    name = first[0] if first else ""
    greeting = first[1].strip() if len(first) > 1 else ""
    keywords: dict[str, list[str]] = {}
    for line in reply.lines[1:]:
        words = line.split()
        if not words:
            continue
        key, params = words[0].upper(), words[1:]
        if key.startswith("AUTH="):
            params = [key[len("AUTH=") :], *params]
            key = "AUTH"
        if key == "AUTH":
            params = [p.upper() for p in params if p]
        _add(keywords, key, params)
    frozen = {key: tuple(params) for key, params in keywords.items()}
    return Ehlo(name, greeting, types.MappingProxyType(frozen))


def banner_name(reply: Reply) -> str | None:
    """The host name a 220 banner announces: its first word if it is a domain (with at least
    one dot) or an address literal, else None (e.g. `220 ESMTP ready`). None for non-220."""
    if reply.code != 220 or not reply.lines:
        return None
    words = reply.lines[0].split(None, 1)
    if not words:
        return None
    word = words[0]
    if len(word) <= 254 and (_DOMAIN.fullmatch(word) or _ADDRESS_LITERAL.fullmatch(word)):
        return word
    return None
