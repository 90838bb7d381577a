"""The test message: a unique token, and the exact bytes that will be sent.

Pure: no I/O. `compose()` builds a plain-text message whose token appears three times, so it
can be found again whatever a receiver does to the message: in the Message-ID
(`<token@domain of the From address>`), in an `X-Mailprobe-Token` header field and in the
Subject. The bytes are final (CRLF line ends, 7bit or quoted-printable body): sign them and
send them as they are, so that body hashes survive.

Reading a received message's header section (`find_token`, `header_fields`) is in
probes.parse.message_header (the receiver in probes.net uses it too); both names are still
importable from here.

Bad input raises ValueError: a token that is not 1-128 characters of [A-Za-z0-9_-], a From
address without a domain, header text with CR or LF in it (header injection), an extra header
field name that is not printable ASCII without ":".
"""

from __future__ import annotations

import datetime as dt
import email.utils
import quopri
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from email.header import Header

from probes.parse.address import mailbox, no_line_breaks
from probes.parse.message_header import (
    FIELD_NAME_RE,
    TOKEN_HEADER,
    TOKEN_RE,
    find_token,
    header_fields,
)

_MAX_LINE = 998  # RFC 5322 §2.1.1, without the CRLF
_CRLF = "\r\n"


@dataclass(frozen=True)
class TestMessage:
    """A composed test message. `raw` is exactly what goes on the wire (before SMTP
    dot-stuffing, which the transport does); the addresses are the bare addresses."""

    __test__ = False  # not a pytest test class, whatever its name

    token: str
    raw: bytes
    message_id: str  # with the angle brackets
    header_from: str
    mail_from: str
    rcpt_to: str


def new_token() -> str:
    """A fresh token: 32 lower-case hex digits (128 random bits)."""
    return secrets.token_hex(16)


def compose(
    *,
    token: str,
    header_from: str,
    to: str,
    mail_from: str,
    subject_prefix: str = "mailprobe test",
    extra_headers: Sequence[tuple[str, str]] = (),
    body: str | None = None,
    date: dt.datetime | None = None,
) -> TestMessage:
    """The test message carrying `token`.

    `header_from` and `to` may be bare addresses or `Name <address>`; the Message-ID's domain
    is the From address's domain. `mail_from` ("" for the null sender) is only recorded. A
    naive `date` is taken as UTC; the default is now. Header fields, in order: From, To,
    Subject, Date, Message-ID, X-Mailprobe-Token, MIME-Version, Content-Type,
    Content-Transfer-Encoding, then `extra_headers`.
    """
    if not TOKEN_RE.match(token):
        raise ValueError("the token must be 1-128 characters of A-Z, a-z, 0-9, '_' and '-'")
    from_name, from_addr = mailbox(header_from, "From")
    to_name, to_addr = mailbox(to, "To")
    no_line_breaks(mail_from, "MAIL FROM")
    domain = from_addr.rpartition("@")[2]
    message_id = f"<{token}@{domain}>"
    when = date or dt.datetime.now(dt.UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    no_line_breaks(subject_prefix, "the subject prefix")
    subject = f"{subject_prefix} {token}".strip()
    if body is None:
        body = (
            "This is a mailprobe test message.\n"
            f"Token: {token}\n"
            "It checks DKIM, SPF and DMARC on the way through; it can be deleted.\n"
        )
    body_bytes, cte, charset = _body(body)

    fields: list[tuple[str, str]] = [
        ("From", _format_address(from_name, from_addr)),
        ("To", _format_address(to_name, to_addr)),
        ("Subject", _header_text("Subject", subject)),
        ("Date", email.utils.format_datetime(when)),
        ("Message-ID", message_id),
        (TOKEN_HEADER, token),
        ("MIME-Version", "1.0"),
        ("Content-Type", f"text/plain; charset={charset}"),
        ("Content-Transfer-Encoding", cte),
    ]
    for name, value in extra_headers:
        if not FIELD_NAME_RE.match(name):
            raise ValueError(f"{name[:40]!r} is not a header field name")
        no_line_breaks(value, f"header {name}")
        fields.append((name, _header_text(name, value)))

    head = "".join(f"{name}: {value}{_CRLF}" for name, value in fields)
    raw = head.encode("ascii") + b"\r\n" + body_bytes
    return TestMessage(
        token=token,
        raw=raw,
        message_id=message_id,
        header_from=from_addr,
        mail_from=mail_from,
        rcpt_to=to_addr,
    )


# --- helpers ----------------------------------------------------------------------------------


def _format_address(name: str, addr: str) -> str:
    if not name:
        return addr
    return email.utils.formataddr((name, addr), charset="utf-8")


def _header_text(name: str, value: str) -> str:
    """An unstructured header value: as is when ASCII and short, else RFC 2047 encoded and
    folded with CRLF."""
    if value.isascii() and len(name) + 2 + len(value) <= 78:
        return value
    return Header(value, "utf-8" if not value.isascii() else "us-ascii", header_name=name).encode(
        linesep=_CRLF
    )


def _body(text: str) -> tuple[bytes, str, str]:
    """(body bytes with CRLF line ends, Content-Transfer-Encoding, charset)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if text.isascii() and all(len(line) <= _MAX_LINE for line in lines) and "\0" not in text:
        return "".join(line + _CRLF for line in lines).encode("ascii"), "7bit", "us-ascii"
    data = "\n".join(lines).encode("utf-8") + b"\n"
    encoded = quopri.encodestring(data).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return encoded, "quoted-printable", "utf-8"


__all__ = [
    "TOKEN_HEADER",
    "TestMessage",
    "compose",
    "find_token",
    "header_fields",
    "new_token",
]
