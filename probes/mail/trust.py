"""Which Authentication-Results headers of a received message to believe (pure).

RFC 8601 §5: only the receiver's own results count, recognised by its authserv-id. A header
claiming that id is nevertheless forged when
- it was already in the message as sent (the sender wrote it), or
- it sits below the receiver's own Received line: everything below that line was there
  before the receiver took the message.
The receiver's own Received line is the topmost `Received:` whose `by` clause names the
authserv-id (MTAs put their host name in both). Without such a line only the first rule
applies.

Also here: what the receiver saw of the client (address, HELO name), read from that same
Received line, for the harness's own SPF check.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32

from probes.parse import authres
from probes.parse.authres import AuthResError, AuthResults

_BY = re.compile(r"\bby\s+([^\s;()]+)", re.IGNORECASE)
_FROM = re.compile(r"^\s*from\s+([^\s;()]+)", re.IGNORECASE)
_BRACKETED_IP = re.compile(r"\[(?:IPv6:)?([0-9A-Fa-f:.]+)\]")
_HELO = re.compile(r"\bhelo=([^\s;()]+)", re.IGNORECASE)  # Exim: `([ip] helo=name)`


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
    message = BytesHeaderParser(policy=compat32).parsebytes(raw)
    return [Header(name.lower(), _unfold(str(value))) for name, value in message.items()]


def _unfold(value: str) -> str:
    return " ".join(value.split())


def same_host(a: str, b: str) -> bool:
    return a.rstrip(".").lower() == b.rstrip(".").lower()


def receiver_received_position(headers: Sequence[Header], receiver_id: str) -> int | None:
    for index, header in enumerate(headers):
        if header.name == "received":
            m = _BY.search(header.value)
            if m and same_host(m.group(1), receiver_id):
                return index
    return None


def judge(received_raw: bytes, sent_raw: bytes, receiver_id: str) -> Judgement:
    """Sort the received message's Authentication-Results headers (see the module doc)."""
    headers = headers_of(received_raw)
    sent_values = {
        h.value for h in headers_of(sent_raw) if h.name == "authentication-results"
    }
    own_received = receiver_received_position(headers, receiver_id)
    trusted, forged, foreign, unparsed = [], [], [], []
    for position, header in enumerate(headers):
        if header.name != "authentication-results":
            continue
        try:
            parsed = authres.parse(header.value)
            ar = ArHeader(header.value, position, parsed)
        except AuthResError as exc:
            ar = ArHeader(header.value, position, None, str(exc))
            if _claims(header.value, receiver_id):
                unparsed.append(ar)
            continue
        if not same_host(parsed.authserv_id, receiver_id):
            foreign.append(ar)
        elif header.value in sent_values:
            forged.append((ar, "it was already in the message as sent"))
        elif own_received is not None and position > own_received:
            forged.append((ar, "it sits below the receiver's own Received line"))
        else:
            trusted.append(ar)
    return Judgement(tuple(trusted), tuple(forged), tuple(foreign), tuple(unparsed), own_received)


def _claims(value: str, receiver_id: str) -> bool:
    first = value.split(";", 1)[0].split()
    return bool(first) and same_host(first[0], receiver_id)


@dataclass(frozen=True)
class ClientSeen:
    ip: str | None
    helo: str | None


def client_seen(received_raw: bytes, receiver_id: str) -> ClientSeen:
    """The client address and HELO name in the receiver's own Received line."""
    headers = headers_of(received_raw)
    position = receiver_received_position(headers, receiver_id)
    if position is None:
        return ClientSeen(None, None)
    value = headers[position].value
    by = _BY.search(value)
    before_by = value[: by.start()] if by else value
    ip = None
    for candidate in _BRACKETED_IP.findall(before_by):
        try:
            ip = str(ipaddress.ip_address(candidate))
            break
        except ValueError:
            continue
    helo_match = _HELO.search(before_by) or _FROM.match(before_by)
    return ClientSeen(ip, helo_match.group(1) if helo_match else None)


def return_path(received_raw: bytes) -> str | None:
    """The envelope sender the final delivery recorded (Return-Path), without brackets."""
    for header in headers_of(received_raw):
        if header.name == "return-path":
            return header.value.strip().strip("<>")
    return None
