"""The MTA-STS TXT record at `_mta-sts.<domain>` (RFC 8461 §3.1). Pure: no I/O.

    sts-text-record = sts-version 1*(*WSP field-delim *WSP sts-field) [field-delim]
    sts-field       = sts-id / sts-extension
    field-delim     = ";"
    sts-version     = %s"v=STSv1"
    sts-id          = %s"id=" 1*32(ALPHA / DIGIT)
    sts-extension   = sts-ext-name "=" sts-ext-value
    sts-ext-name    = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
    sts-ext-value   = 1*(%x21-3A / %x3C / %x3E-7E)

`is_sts_record` picks the records a person meant as MTA-STS (case-insensitive "v=STSv1"
prefix), so that "v=stsv1; id=1" is reported as a syntax error rather than as no record;
`parse` then applies the grammar strictly (senders compare "v=STSv1" and "id=" case-
sensitively). One leniency: whitespace after the final field or ";" is accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

VERSION = "v=STSv1"
_WSP = " \t"
_ID = re.compile(r"[A-Za-z0-9]{1,32}")
_EXT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
_EXT_VALUE = re.compile(r"[\x21-\x3a\x3c\x3e-\x7e]+")


class MtaStsSyntaxError(ValueError):
    """The record does not follow RFC 8461 §3.1; the message says where."""


@dataclass(frozen=True)
class MtaStsRecord:
    id: str
    extensions: tuple[tuple[str, str], ...] = ()


def is_sts_record(text: str) -> bool:
    """The record is meant as an MTA-STS record (starts with v=STSv1, any case)."""
    return text.lstrip(_WSP).lower().startswith(VERSION.lower())


def parse(text: str) -> MtaStsRecord:
    """Parse one MTA-STS TXT record (its strings already joined). Raises MtaStsSyntaxError."""
    for i, ch in enumerate(text):
        if not " " <= ch <= "~" and ch != "\t":
            raise MtaStsSyntaxError(f"character {ch!r} at position {i} is not printable ASCII")
    if not text.startswith(VERSION):
        raise MtaStsSyntaxError(f"the record must start with {VERSION!r} (case-sensitive)")
    rest = text[len(VERSION) :].rstrip(_WSP)
    if not rest:
        raise MtaStsSyntaxError("no id= field")
    if not rest.lstrip(_WSP).startswith(";"):
        raise MtaStsSyntaxError(f"{VERSION} must be followed by ';'")
    parts = rest.split(";")[1:]
    if parts and parts[-1] == "":
        parts.pop()  # one trailing ";" is allowed
    record_id: str | None = None
    extensions: list[tuple[str, str]] = []
    for n, raw in enumerate(parts, start=1):
        field = raw.strip(_WSP)
        if not field:
            raise MtaStsSyntaxError(f"field {n} is empty")
        name, eq, value = field.partition("=")
        if not eq:
            raise MtaStsSyntaxError(f"field {field[:40]!r} has no '='")
        if name == "id":
            if record_id is not None:
                raise MtaStsSyntaxError("id= appears more than once")
            if not _ID.fullmatch(value):
                raise MtaStsSyntaxError(f"id {value[:40]!r} must be 1 to 32 letters or digits")
            record_id = value
            continue
        if not _EXT_NAME.fullmatch(name):
            raise MtaStsSyntaxError(f"field name {name[:40]!r} is not valid")
        if not _EXT_VALUE.fullmatch(value):
            raise MtaStsSyntaxError(
                f"value of {name!r} must be non-empty, without spaces, '=' or ';'"
            )
        extensions.append((name, value))
    if record_id is None:
        raise MtaStsSyntaxError("no id= field (required)")
    return MtaStsRecord(record_id, tuple(extensions))
