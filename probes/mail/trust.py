"""Which Authentication-Results headers of a received message to believe (pure).

RFC 8601 §5: only the receiver's own results count, recognised by its authserv-id. A header
claiming that id is nevertheless forged when
- it was already in the message as sent (the sender wrote it), or
- it sits below the receiver's own Received line: everything below that line was there
  before the receiver took the message.
The receiver's own Received line is the LOWEST `Received:` whose `by` clause (outside
comments) names the authserv-id (MTAs put their host name in both) and that was not already in
the message as sent. The lowest, because a receiver that passes a message through itself twice
(a content filter re-injecting it, a forward to itself) adds one Received line per pass, and
its results may sit between them; a Received line the sender wrote is never the receiver's.
Without such a line only the first rule applies. A header claiming the id that does not parse
is forged by the same rules, else `unparsed`.

Also here: what the receiver saw of the client (address, HELO name), read from that same
Received line, for the harness's own SPF check. Forms understood: Exim
`from NAME ([IP] helo=HELO)` / `from [IP] (helo=HELO)`, Postfix and sendmail
`from HELO (RDNS [IP])`, qmail-style `(HELO name)`.

Header fields are read with probes.parse.message_header.header_fields: bounded, UTF-8 (RFC 8616),
never raises.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from probes.parse import authres
from probes.parse.authres import AuthResError, AuthResults
from probes.parse.message_header import header_fields

_BY = re.compile(r"(?:^|\s)by\s+([^\s;()]+)", re.IGNORECASE)
_FROM = re.compile(r"^\s*from\s+([^\s;()]+)", re.IGNORECASE)
_BRACKETED_IP = re.compile(r"\[(?:IPv6:)?([0-9A-Fa-f:.]+)\]", re.IGNORECASE)
_HELO = re.compile(r"\bhelo(?:=|\s+)([^\s;()]+)", re.IGNORECASE)  # Exim `helo=x`, qmail `HELO x`
_HELO_BEFORE = re.compile(r"\bhelo=\s*\Z", re.IGNORECASE)


@dataclass(frozen=True)
class Header:
    name: str  # lower-case
    value: str  # unfolded, stripped


@dataclass(frozen=True)
class ArHeader:
    value: str
    position: int  # index among all header fields, 0 = topmost
    parsed: AuthResults | None
    error: str | None = None  # why it could not be parsed


@dataclass(frozen=True)
class Judgement:
    trusted: tuple[ArHeader, ...]  # the receiver's own, parsed
    forged: tuple[tuple[ArHeader, str], ...]  # (header, why)
    foreign: tuple[ArHeader, ...]  # other authserv-ids (other hops): ignored
    unparsed: tuple[ArHeader, ...]  # claiming the receiver's id but malformed
    receiver_received: int | None  # position of the receiver's own Received line


def headers_of(raw: bytes) -> list[Header]:
    """The header fields in order (top first), unfolded."""
    return [Header(name.lower(), _unfold(value)) for name, value in header_fields(raw)]


def _unfold(value: str) -> str:
    return " ".join(value.split())


def same_host(a: str, b: str) -> bool:
    return a.rstrip(".").lower() == b.rstrip(".").lower()


def _values(headers: Sequence[Header], name: str) -> set[str]:
    return {h.value for h in headers if h.name == name}


def blank_comments(text: str) -> str:
    """`text` with every (possibly nested, backslash-escaped) comment replaced by spaces of
    the same length, so positions still match the original. An unclosed comment runs to the
    end."""
    out = []
    depth = 0
    escaped = False
    for char in text:
        if depth:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
            out.append(" ")
        elif char == "(":
            depth = 1
            out.append(" ")
        else:
            out.append(char)
    return "".join(out)


def by_clause(value: str) -> tuple[str | None, int]:
    """(the host named by the `by` clause of a Received value, where that clause starts);
    (None, len(value)) without one. Words inside comments do not count."""
    m = _BY.search(blank_comments(value))
    if m is None:
        return None, len(value)
    return m.group(1), m.start()


def receiver_received_position(
    headers: Sequence[Header], receiver_id: str, sent_received: Collection[str] = ()
) -> int | None:
    """Position of the receiver's own Received line (see the module doc): the lowest one
    whose `by` names `receiver_id`, leaving out values in `sent_received` (the Received
    values of the message as sent)."""
    found = None
    for index, header in enumerate(headers):
        if header.name != "received" or header.value in sent_received:
            continue
        host, _ = by_clause(header.value)
        if host is not None and same_host(host, receiver_id):
            found = index
    return found


def judge(received_raw: bytes, sent_raw: bytes, receiver_id: str) -> Judgement:
    """Sort the received message's Authentication-Results headers (see the module doc)."""
    headers = headers_of(received_raw)
    sent = headers_of(sent_raw)
    sent_values = _values(sent, "authentication-results")
    own_received = receiver_received_position(headers, receiver_id, _values(sent, "received"))
    trusted, forged, foreign, unparsed = [], [], [], []
    for position, header in enumerate(headers):
        if header.name != "authentication-results":
            continue
        try:
            parsed = authres.parse(header.value)
        except AuthResError as exc:
            ar = ArHeader(header.value, position, None, str(exc))
            if not _claims(header.value, receiver_id):
                continue
        else:
            ar = ArHeader(header.value, position, parsed)
            if not same_host(parsed.authserv_id, receiver_id):
                foreign.append(ar)
                continue
        if header.value in sent_values:
            forged.append((ar, "it was already in the message as sent"))
        elif own_received is not None and position > own_received:
            forged.append((ar, "it sits below the receiver's own Received line"))
        elif ar.parsed is None:
            unparsed.append(ar)
        else:
            trusted.append(ar)
    return Judgement(tuple(trusted), tuple(forged), tuple(foreign), tuple(unparsed), own_received)


def _claims(value: str, receiver_id: str) -> bool:
    """Whether a value that does not parse still starts with the receiver's authserv-id."""
    first = blank_comments(value).split(";", 1)[0].split()
    return bool(first) and same_host(first[0].strip('"'), receiver_id)


@dataclass(frozen=True)
class ClientSeen:
    ip: str | None
    helo: str | None


def client_seen(received_raw: bytes, receiver_id: str, sent_raw: bytes = b"") -> ClientSeen:
    """The client address and HELO name in the receiver's own Received line (Received lines
    that were in `sent_raw`, the message as sent, are never the receiver's)."""
    headers = headers_of(received_raw)
    sent_received = _values(headers_of(sent_raw), "received") if sent_raw else set()
    position = receiver_received_position(headers, receiver_id, sent_received)
    if position is None:
        return ClientSeen(None, None)
    value = headers[position].value
    _, by_start = by_clause(value)
    from_clause = value[:by_start]
    return ClientSeen(_client_ip(from_clause), _helo(from_clause))


def _client_ip(from_clause: str) -> str | None:
    """The connecting address: a bracketed IP inside a comment (Exim `([IP] helo=x)`, Postfix
    `(rdns [IP])`) before one outside (Exim without a host name: `from [IP] (helo=x)`, where
    an outside one is a HELO literal only for Postfix, which also puts the real one inside);
    never an IP literal given as `helo=`."""
    blanked = blank_comments(from_clause)
    inside: list[str] = []
    outside: list[str] = []
    for m in _BRACKETED_IP.finditer(from_clause):
        if _HELO_BEFORE.search(from_clause[: m.start()]):
            continue
        try:
            ip = str(ipaddress.ip_address(m.group(1)))
        except ValueError:
            continue
        (outside if blanked[m.start()] == "[" else inside).append(ip)
    candidates = inside + outside
    return candidates[0] if candidates else None


def _helo(from_clause: str) -> str | None:
    """`helo=x` / `HELO x` inside a comment (Exim, qmail), else the name after `from` (Exim
    shows the HELO name only when it differs from that name; Postfix puts the HELO there)."""
    blanked = blank_comments(from_clause)
    for m in _HELO.finditer(from_clause):
        if blanked[m.start()] != from_clause[m.start()]:  # inside a comment
            return m.group(1)
    first = _FROM.match(blanked)
    return first.group(1) if first else None


def return_path(received_raw: bytes) -> str | None:
    """The envelope sender the final delivery recorded (Return-Path), without brackets ("" for
    the null sender), or None without a Return-Path."""
    for header in headers_of(received_raw):
        if header.name == "return-path":
            return header.value.strip().strip("<>").strip()
    return None
