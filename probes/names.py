"""Domain and host names: the one conversion of every name that enters mailprobe.

Internationalized names become A-labels by IDNA 2008 with the UTS 46 mapping (non-transitional:
`faß.test` is `xn--fa-hia.test`, not `fass.test`), through the `idna` package. The command line
(DOMAIN, `--domains`, host options), scenario files, lab specs, the DMARC parser and the resolver
door all convert through here, so every part of a run asks for the same names.
"""

from __future__ import annotations

import ipaddress
import re

import idna

_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


class InvalidDomain(ValueError):
    """The text is not a usable domain name; the message says why."""


def to_ascii(name: str) -> str:
    """`name` in lower-case A-label form (IDNA 2008 / UTS 46), trailing dot kept as given.

    ASCII labels (including `_dmarc`-style underscore labels) are only lower-cased; each
    non-ASCII label is mapped (UTS 46) and encoded. Raises InvalidDomain when a label cannot be
    encoded. Checks nothing else (see normalize_domain).
    """
    if name.isascii():
        return name.lower()
    try:
        mapped = idna.uts46_remap(name, std3_rules=False, transitional=False)
    except (idna.IDNAError, UnicodeError, ValueError) as exc:
        raise InvalidDomain(f"{name!r} is not a valid internationalized name: {exc}") from None
    labels = []
    for label in mapped.split("."):
        if label.isascii():
            labels.append(label.lower())
            continue
        try:
            labels.append(idna.alabel(label).decode("ascii"))
        except (idna.IDNAError, UnicodeError, ValueError) as exc:
            raise InvalidDomain(f"{name!r} is not a valid internationalized name: {exc}") from None
    return ".".join(labels)


def normalize_domain(text: str) -> str:
    """`text` as a lower-case ASCII domain name without trailing dot (IDN to A-labels).

    Raises InvalidDomain naming the problem: empty, a single label, a label longer than 63
    bytes or with characters outside letters/digits/hyphen/underscore, too long overall, an
    IP address.
    """
    raw = text.strip()
    name = raw.rstrip(".")
    if not name:
        raise InvalidDomain(f"{text!r} is empty")
    if any(c.isspace() for c in name):
        raise InvalidDomain(f"{text!r} contains white space")
    name = to_ascii(name).rstrip(".")
    labels = name.split(".")
    if len(labels) < 2:
        raise InvalidDomain(f"{text!r} has a single label; give a full domain name")
    if all(label.isdigit() for label in labels):
        raise InvalidDomain(f"{text!r} is an IP address, not a domain name")
    for label in labels:
        problem = label_problem(label)
        if problem is not None:
            raise InvalidDomain(
                f"{text!r} has an empty label" if not label else f"{text!r}: {problem}"
            )
    if len(name) > 253:
        raise InvalidDomain(f"{text!r} is longer than 253 characters")
    return name


def label_problem(label: str) -> str | None:
    """None when `label` (lower-case ASCII, as to_ascii gives it) is a usable label of a name
    mailprobe asks about, else what is wrong with it."""
    if not label:
        return "empty label"
    if len(label) > 63:
        return f"label {label[:20]!r}… is longer than 63 characters"
    if not _LABEL.match(label):
        bad = sorted({c for c in label if not (c.isalnum() and c.isascii()) and c not in "-_"})
        if bad:
            shown = "".join(bad)
            return f"label {label!r} has {shown!r}: only letters, digits, '-' and '_' are allowed"
        return f"label {label!r} begins or ends with '-'"
    if label.startswith("xn--"):
        try:
            idna.decode(label)
        except (idna.IDNAError, UnicodeError, ValueError):
            return f"label {label!r} is not a valid A-label (punycode)"
    return None


def normalize_selector(text: str) -> str:
    """A DKIM selector (RFC 6376 §3.1: one or more labels) in lower-case A-label form, or
    InvalidDomain naming the problem."""
    raw = text.strip()
    if not raw:
        raise InvalidDomain("empty selector")
    if any(c.isspace() for c in raw):
        raise InvalidDomain(f"{text!r} contains white space")
    name = to_ascii(raw)
    for label in name.split("."):
        problem = label_problem(label)
        if problem is not None:
            raise InvalidDomain(f"{text!r}: {problem}")
    return name


def normalize_host(text: str) -> str:
    """A server given by name or address: an IP address as given (brackets dropped), else the
    name as normalize_domain gives it (a single-label name such as `localhost` is allowed)."""
    raw = text.strip()
    bare = raw[1:-1] if raw.startswith("[") and raw.endswith("]") else raw
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        pass
    if "." not in raw.rstrip("."):
        name = to_ascii(raw.rstrip("."))
        if label_problem(name) is not None:
            raise InvalidDomain(f"{text!r} is not a host name")
        return name
    return normalize_domain(raw)
