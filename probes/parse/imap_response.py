"""IMAP greeting, tagged completion and CAPABILITY responses (RFC 9051 / 3501). Pure: no I/O.

    greeting        = "*" SP (resp-cond-auth / resp-cond-bye) CRLF
    resp-cond-auth  = ("OK" / "PREAUTH") SP resp-text
    resp-cond-bye   = "BYE" SP resp-text
    response-tagged = tag SP resp-cond-state CRLF
    resp-cond-state = ("OK" / "NO" / "BAD") SP resp-text
    resp-text       = ["[" resp-text-code "]" SP] [text]
    capability-data = "CAPABILITY" *(SP capability) SP "IMAP4rev1" *(SP capability)

Only the responses the transport probes read are parsed: greeting, CAPABILITY, STARTTLS and
LOGIN completions. None of them carries a literal, so a line ending in `{N}` (the door never
reads literal bodies) is refused. Status words are case-insensitive; capability atoms are
upper-cased. Every malformed response raises `ImapResponseError`, never anything else.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from probes.errors import ProtocolError
from probes.parse.shown import shorten as _shorten

GREETING_STATUSES = ("OK", "PREAUTH", "BYE")
TAGGED_STATUSES = ("OK", "NO", "BAD")
_LITERAL = re.compile(r"\{[0-9]+\+?\}\Z", re.ASCII)
# A tag: ASTRING-CHARs except "+" (no space, controls, "(){%*\"\\" or "+").
_TAG = re.compile(r'[^\x00-\x20\x7f(){%*"\\+]+', re.ASCII)


class ImapResponseError(ProtocolError):
    """A malformed or unexpected IMAP response; the message says what and shows the line."""


def _check_line(line: str) -> None:
    if not isinstance(line, str):
        raise ImapResponseError(f"response line is not text: {type(line).__name__}")
    if _LITERAL.search(line):
        raise ImapResponseError(f"unexpected literal at the end of: '{_shorten(line)}'")


def _resp_text(rest: str, line: str) -> tuple[str | None, str]:
    """(response code, text) of a resp-text: `[CODE args] text` or just `text`."""
    if not rest.startswith("["):
        return None, rest.strip()
    end = rest.find("]")
    if end < 0:
        raise ImapResponseError(f"unclosed response code '[': '{_shorten(line)}'")
    code = rest[1:end].strip()
    if not code:
        raise ImapResponseError(f"empty response code '[]': '{_shorten(line)}'")
    return code, rest[end + 1 :].strip()


def _status(rest: str, allowed: tuple[str, ...], what: str, line: str) -> tuple[str, str]:
    """(upper-cased status word, remainder) of `STATUS SP resp-text`."""
    word, _, remainder = rest.partition(" ")
    status = word.upper()
    if status not in allowed:
        raise ImapResponseError(f"{what} status is not {'/'.join(allowed)}: '{_shorten(line)}'")
    return status, remainder


def _atoms(text: str) -> frozenset[str]:
    return frozenset(word.upper() for word in text.split())


def _code_capabilities(code: str | None) -> frozenset[str] | None:
    if code is None:
        return None
    name, _, args = code.partition(" ")
    if name.upper() != "CAPABILITY":
        return None
    return _atoms(args)


@dataclass(frozen=True)
class Greeting:
    status: str  # "OK" | "PREAUTH" | "BYE"
    capabilities: frozenset[str] | None  # from a [CAPABILITY ...] code, upper-cased
    text: str


def parse_greeting(line: str) -> Greeting:
    """The server greeting `* OK|PREAUTH|BYE [code] text`."""
    _check_line(line)
    if not line.startswith("* "):
        raise ImapResponseError(f"greeting is not an untagged '* ' response: '{_shorten(line)}'")
    status, rest = _status(line[2:].lstrip(" "), GREETING_STATUSES, "greeting", line)
    code, text = _resp_text(rest, line)
    return Greeting(status, _code_capabilities(code), text)


def _check_tag(tag: str) -> None:
    if not isinstance(tag, str) or not _TAG.fullmatch(tag):
        raise ValueError(f"invalid IMAP tag: {tag!r}")


def _tagged_rest(line: str, tag: str) -> str | None:
    """The part after `TAG SP` when the line is a completion for `tag` (else None)."""
    prefix = tag + " "
    if not line.startswith(prefix):
        return None
    rest = line[len(prefix) :]
    return rest if rest.partition(" ")[0].upper() in TAGGED_STATUSES else None


def is_tagged_done(tag: str) -> Callable[[str], bool]:
    """A predicate: True for the line `TAG OK|NO|BAD ...` that completes the command `tag`.

    Raises ValueError at once for an invalid tag (a caller bug, not a server fault).
    """
    _check_tag(tag)

    def done(line: str) -> bool:
        return isinstance(line, str) and _tagged_rest(line, tag) is not None

    return done


@dataclass(frozen=True)
class Tagged:
    tag: str
    status: str  # "OK" | "NO" | "BAD"
    code: str | None  # the response code inside [...], e.g. "AUTHENTICATIONFAILED"
    text: str


def parse_tagged(line: str, tag: str) -> Tagged:
    """The tagged completion `TAG OK|NO|BAD [code] text` of the command `tag`."""
    _check_tag(tag)
    _check_line(line)
    if not line.startswith(tag + " "):
        raise ImapResponseError(f"expected the tagged response for {tag}: '{_shorten(line)}'")
    status, rest = _status(line[len(tag) + 1 :], TAGGED_STATUSES, "tagged", line)
    code, text = _resp_text(rest, line)
    return Tagged(tag, status, code, text)


def parse_capabilities(lines: Sequence[str], tag: str) -> frozenset[str]:
    """The capabilities in a CAPABILITY command's response (untagged `* CAPABILITY` lines
    and/or a `[CAPABILITY ...]` code in the tagged OK), upper-cased.

    The tagged completion must be the last line and OK. Other untagged responses are
    ignored; anything else is an error, as is a response naming no capability at all.
    """
    _check_tag(tag)
    if isinstance(lines, str):
        raise ImapResponseError("response is a single string, not a sequence of lines")
    caps: set[str] = set()
    seen = False
    tagged: Tagged | None = None
    for index, line in enumerate(lines):
        _check_line(line)
        if tagged is not None:
            raise ImapResponseError(
                f"line {index + 1} follows the tagged completion: '{_shorten(line)}'"
            )
        if line.startswith("* "):
            word, _, args = line[2:].lstrip(" ").partition(" ")
            if word.upper() == "CAPABILITY":
                caps |= _atoms(args)
                seen = True
        elif _tagged_rest(line, tag) is not None:
            tagged = parse_tagged(line, tag)
        else:
            raise ImapResponseError(
                f"line {index + 1} is neither untagged nor tagged {tag}: '{_shorten(line)}'"
            )
    if tagged is None:
        raise ImapResponseError(f"no tagged completion for {tag}")
    if tagged.status != "OK":
        raise ImapResponseError(f"CAPABILITY answered {tagged.status}: '{_shorten(tagged.text)}'")
    from_code = _code_capabilities(tagged.code)
    if from_code is not None:
        caps |= from_code
        seen = True
    if not seen:
        raise ImapResponseError("no CAPABILITY data in the response")
    return frozenset(caps)


def login_allowed(caps: Iterable[str]) -> bool:
    """LOGIN may be used: the server does not advertise LOGINDISABLED."""
    return "LOGINDISABLED" not in {c.upper() for c in caps}


def auth_mechanisms(caps: Iterable[str]) -> tuple[str, ...]:
    """The SASL mechanisms of the AUTH=... capabilities, upper-cased and sorted."""
    return tuple(
        sorted({c[len("AUTH=") :].upper() for c in caps if c.upper().startswith("AUTH=")} - {""})
    )
