"""SPF record syntax (RFC 7208 §4.5, §4.6, §5, §6, §7): pure parsing, no I/O.

- `is_spf(text)`: is this TXT string an SPF record (`v=spf1` then a space or the end)?
- `parse(text)`: the record's terms and every syntax error, each naming the bad term. Parsing
  never stops at the first error (RFC 7208 §4.6: syntax errors anywhere in the record count).
- `expand_static(spec, domain=..., original=...)`: a domain-spec whose macros use only `d`/`o`
  expanded (the targets a checker can follow without knowing the client IP or the sender);
  None when the spec needs the client, the sender or the HELO name.

Non-ASCII and control characters are syntax errors (§3.1, §4.6.1: terms are visible ASCII
separated by spaces). Terms after the first `all` are checked but never evaluated, and a
`redirect` is ignored when the record has an `all` (§5.1); `SpfRecord.evaluated_terms` gives
what a `check_host()` walk can reach.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass

VERSION = "v=spf1"
MECHANISMS = ("all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists")
# Terms that cost a DNS query (RFC 7208 §4.6.4): these mechanisms plus the redirect modifier.
LOOKUP_MECHANISMS = frozenset({"include", "a", "mx", "ptr", "exists"})
QUALIFIERS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}
MACRO_LETTERS = frozenset("slodiphcrtv")
EXPLAIN_ONLY_LETTERS = frozenset("crt")  # §7.1: allowed in explanation text only
STATIC_LETTERS = frozenset("do")  # known without the client IP, the sender or the HELO name
DELIMITERS = frozenset(".-+,/_=")

_MODIFIER = re.compile(r"^([A-Za-z][A-Za-z0-9_.\-]*)=(.*)$", re.S)
_MECH_NAME = re.compile(r"^([+\-~?]?)([A-Za-z0-9]*)(.*)$", re.S)
_CIDR6_TAIL = re.compile(r"//(\d+)$")
_CIDR4_TAIL = re.compile(r"/(\d+)$")
_CIDR_VALUE = re.compile(r"^(?:0|[1-9]\d*)$")
_QNUM = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]\d|\d)"
_IP4 = re.compile(rf"^{_QNUM}\.{_QNUM}\.{_QNUM}\.{_QNUM}$")
_TOPLABEL = re.compile(
    r"^(?:[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*|[A-Za-z0-9]+-[A-Za-z0-9\-]*[A-Za-z0-9])$"
)
_MACRO_BODY = re.compile(r"^([A-Za-z])(\d*)([rR]?)(.*)$", re.S)
MAX_SHOWN = 80  # a term quoted in an error message is cut to this many characters


def shown(text: str) -> str:
    """A term as quoted in messages: non-printable characters escaped, long terms cut."""
    out = text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text
    return out if len(out) <= MAX_SHOWN else out[: MAX_SHOWN - 1] + "…"


def is_spf(text: str | bytes) -> bool:
    """True when a TXT string is an SPF record: "v=spf1" (any case) then a space or the end."""
    head = text[:7].decode("latin-1") if isinstance(text, bytes) else text[:7]
    return head[:6].lower() == VERSION and (len(head) == 6 or head[6] == " ")


@dataclass(frozen=True)
class TermError:
    """One syntax error: the term (as written) and why it is wrong."""

    term: str
    reason: str

    def __str__(self) -> str:
        return f"'{shown(self.term)}': {self.reason}"


@dataclass(frozen=True)
class Mechanism:
    qualifier: str  # "+", "-", "~" or "?" ("+" when not written)
    name: str  # lower-case mechanism name
    text: str  # the term as written
    domain_spec: str | None = None  # a, mx, ptr: None means the current domain
    network: str | None = None  # ip4 / ip6 address text
    cidr4: int | None = None
    cidr6: int | None = None

    @property
    def result(self) -> str:
        return QUALIFIERS[self.qualifier]

    @property
    def counts_lookup(self) -> bool:
        return self.name in LOOKUP_MECHANISMS


@dataclass(frozen=True)
class Modifier:
    name: str  # lower-case
    value: str
    text: str

    @property
    def counts_lookup(self) -> bool:
        return self.name == "redirect"


Term = Mechanism | Modifier


@dataclass(frozen=True)
class SpfRecord:
    text: str
    terms: tuple[Term, ...]
    errors: tuple[TermError, ...]

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def mechanisms(self) -> tuple[Mechanism, ...]:
        return tuple(t for t in self.terms if isinstance(t, Mechanism))

    def modifier(self, name: str) -> Modifier | None:
        for term in self.terms:
            if isinstance(term, Modifier) and term.name == name:
                return term
        return None

    @property
    def all(self) -> Mechanism | None:
        """The first `all` mechanism (the one evaluation reaches), or None."""
        for mech in self.mechanisms:
            if mech.name == "all":
                return mech
        return None

    @property
    def redirect(self) -> Modifier | None:
        """The redirect modifier evaluation follows: None when absent or when `all` is present
        (RFC 7208 §5.1: redirect is ignored when the record has an all mechanism)."""
        return None if self.all is not None else self.modifier("redirect")

    @property
    def evaluated_terms(self) -> tuple[Term, ...]:
        """Mechanisms up to and including the first `all`, then the redirect evaluation would
        follow: every term `check_host()` can reach for some client."""
        out: list[Term] = []
        for mech in self.mechanisms:
            out.append(mech)
            if mech.name == "all":
                return tuple(out)
        redirect = self.modifier("redirect")
        if redirect is not None:
            out.append(redirect)
        return tuple(out)

    @property
    def lookup_terms(self) -> tuple[Term, ...]:
        """The evaluated terms that cost a DNS lookup (RFC 7208 §4.6.4)."""
        return tuple(t for t in self.evaluated_terms if t.counts_lookup)


class NotSpfError(ValueError):
    """The text does not start with "v=spf1"."""


@functools.lru_cache(maxsize=1024)
def parse(text: str) -> SpfRecord:
    """Parse one SPF record (the TXT strings already joined). Raises NotSpfError only when
    the text is not an SPF record at all; every syntax error is collected in `errors`.

    Remembered (the result is immutable): a fleet's domains include the same provider
    records, parsed once per process."""
    if not is_spf(text):
        raise NotSpfError(f"not an SPF record (does not start with {VERSION!r})")
    terms: list[Term] = []
    errors: list[TermError] = []
    seen_modifiers: set[str] = set()
    for word in text[len(VERSION) :].split(" "):
        if not word:
            continue
        term, problems = _parse_term(word)
        if isinstance(term, Modifier) and term.name in ("redirect", "exp"):
            if term.name in seen_modifiers:
                problems.append(f"{term.name}= appears more than once (RFC 7208 §6)")
            seen_modifiers.add(term.name)
        errors.extend(TermError(word, p) for p in problems)
        if term is not None and not problems:
            terms.append(term)
    return SpfRecord(text=text, terms=tuple(terms), errors=tuple(errors))


def _parse_term(word: str) -> tuple[Term | None, list[str]]:
    bad = _bad_characters(word)
    if bad:
        return None, [bad]
    if m := _MODIFIER.match(word):
        return _parse_modifier(m[1].lower(), m[2], word)
    return _parse_mechanism(word)


def _bad_characters(word: str) -> str | None:
    for ch in word:
        code = ord(ch)
        if code > 0x7E:
            return f"non-ASCII character U+{code:04X} (SPF records are 7-bit ASCII)"
        if code < 0x21 or code == 0x7F:
            return f"control character 0x{code:02X} (terms are separated by spaces only)"
    return None


def _parse_modifier(name: str, value: str, word: str) -> tuple[Term | None, list[str]]:
    modifier = Modifier(name=name, value=value, text=word)
    if name in ("redirect", "exp"):
        if not value:
            return modifier, [f"{name}= needs a domain-spec"]
        problem = check_domain_spec(value)
        return modifier, [f"{name}= target: {problem}"] if problem else []
    problem = check_macro_string(value)
    return modifier, [f"unknown modifier value: {problem}"] if problem else []


def _parse_mechanism(word: str) -> tuple[Term | None, list[str]]:
    m = _MECH_NAME.match(word)
    assert m is not None  # the pattern matches every string
    qualifier, raw_name, rest = m[1] or "+", m[2], m[3]
    name = raw_name.lower()
    if name not in MECHANISMS:
        if "=" in word:
            return None, ["neither a mechanism nor a valid modifier (name=value)"]
        return None, ["unknown mechanism"]
    if name == "all":
        if rest:
            return None, ["all takes no argument or cidr-length"]
        return Mechanism(qualifier, name, word), []
    if name in ("include", "exists"):
        if not rest.startswith(":") or len(rest) == 1:
            return None, [f"{name} needs ':' and a domain-spec"]
        problem = check_domain_spec(rest[1:])
        if problem:
            return None, [problem]
        return Mechanism(qualifier, name, word, domain_spec=rest[1:]), []
    if name in ("a", "mx"):
        return _parse_a_mx(qualifier, name, rest, word)
    if name == "ptr":
        if not rest:
            return Mechanism(qualifier, name, word), []
        if not rest.startswith(":") or len(rest) == 1:
            return None, ["ptr takes only ':' and a domain-spec (no cidr-length)"]
        problem = check_domain_spec(rest[1:])
        if problem:
            return None, [problem]
        return Mechanism(qualifier, name, word, domain_spec=rest[1:]), []
    return _parse_ip(qualifier, name, rest, word)


def _parse_cidr(text: str, limit: int) -> tuple[int | None, str | None]:
    if not _CIDR_VALUE.match(text):
        return None, f"cidr-length /{text} has a leading zero"
    value = int(text)
    if value > limit:
        return None, f"cidr-length /{value} is over {limit}"
    return value, None


def _parse_a_mx(qualifier: str, name: str, rest: str, word: str) -> tuple[Term | None, list[str]]:
    cidr4 = cidr6 = None
    if m := _CIDR6_TAIL.search(rest):
        cidr6, problem = _parse_cidr(m[1], 128)
        if problem:
            return None, [f"IPv6 {problem}"]
        rest = rest[: m.start()]
    if m := _CIDR4_TAIL.search(rest):
        cidr4, problem = _parse_cidr(m[1], 32)
        if problem:
            return None, [f"IPv4 {problem}"]
        rest = rest[: m.start()]
    spec = None
    if rest:
        if not rest.startswith(":"):
            return None, [f"{name} takes [':' domain-spec] ['/' ip4-cidr] ['//' ip6-cidr]"]
        spec = rest[1:]
        if not spec:
            return None, [f"{name}: empty domain-spec after ':'"]
        problem = check_domain_spec(spec)
        if problem:
            return None, [problem]
    return Mechanism(qualifier, name, word, domain_spec=spec, cidr4=cidr4, cidr6=cidr6), []


def _parse_ip(qualifier: str, name: str, rest: str, word: str) -> tuple[Term | None, list[str]]:
    if not rest.startswith(":") or len(rest) == 1:
        return None, [f"{name} needs ':' and a network"]
    body = rest[1:]
    limit = 32 if name == "ip4" else 128
    cidr = None
    if m := _CIDR4_TAIL.search(body):
        if body[: m.start()].endswith("/"):
            return None, [f"{name} takes one cidr-length, not a dual cidr-length"]
        cidr, problem = _parse_cidr(m[1], limit)
        if problem:
            return None, [problem]
        body = body[: m.start()]
    if name == "ip4":
        if not _IP4.match(body):
            return None, [f"{body!r} is not an IPv4 address (dotted quad, no leading zeros)"]
    else:
        try:
            if "%" in body:
                raise ValueError(body)
            ipaddress.IPv6Address(body)
        except ValueError:
            return None, [f"{body!r} is not an IPv6 address"]
    if name == "ip4":
        return Mechanism(qualifier, name, word, network=body, cidr4=cidr), []
    return Mechanism(qualifier, name, word, network=body, cidr6=cidr), []


# --- macros and domain-specs ---------------------------------------------------------------


@dataclass(frozen=True)
class _Macro:
    letter: str  # as written (upper case means URL-escape the expansion)
    digits: int | None
    reverse: bool
    delimiters: str


@dataclass(frozen=True)
class _Escape:
    text: str  # what "%%", "%_" or "%-" stands for


def _tokens(text: str, *, explain: bool) -> Iterator[str | _Macro | _Escape]:
    """Literal characters (one-character strings), escapes and macros of a macro-string;
    raises ValueError when the macro syntax is wrong (RFC 7208 §7.1)."""
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch != "%":
            code = ord(ch)
            if not (0x21 <= code <= 0x7E or (explain and ch == " ")):
                raise ValueError(f"character {ch!r} is not allowed")
            yield ch
            i += 1
            continue
        nxt = text[i + 1 : i + 2]
        if nxt in ("%", "_", "-"):
            yield _Escape({"%": "%", "_": " ", "-": "%20"}[nxt])
            i += 2
        elif nxt == "{":
            end = text.find("}", i + 2)
            if end < 0:
                raise ValueError("macro '%{' is not closed by '}'")
            yield _macro(text[i + 2 : end], explain=explain)
            i = end + 1
        else:
            raise ValueError("'%' must be followed by '{', '%', '_' or '-' (use %% for '%')")


def _macro(body: str, *, explain: bool) -> _Macro:
    m = _MACRO_BODY.match(body)
    if not m:
        raise ValueError(f"empty or malformed macro %{{{body}}}")
    letter, digits, reverse, delimiters = m[1], m[2], m[3], m[4]
    if letter.lower() not in MACRO_LETTERS:
        raise ValueError(f"unknown macro letter {letter!r} in %{{{body}}}")
    if letter.lower() in EXPLAIN_ONLY_LETTERS and not explain:
        raise ValueError(f"macro letter {letter!r} is allowed in explanation text only")
    if digits and int(digits) == 0:
        raise ValueError(f"macro %{{{body}}}: the number of parts must not be zero")
    if any(ch not in DELIMITERS for ch in delimiters):
        raise ValueError(f"macro %{{{body}}}: bad delimiter (allowed: {''.join(DELIMITERS)})")
    return _Macro(letter, int(digits) if digits else None, bool(reverse), delimiters)


def check_macro_string(text: str, *, explain: bool = False) -> str | None:
    """None when `text` is a valid macro-string (explain-string when `explain`), else why not."""
    try:
        for _ in _tokens(text, explain=explain):
            pass
    except ValueError as exc:
        return str(exc)
    return None


def check_domain_spec(spec: str) -> str | None:
    """None when `spec` is a valid domain-spec (RFC 7208 §7.1), else why not.

    A domain-spec ends in a macro-expand or in "." toplabel (optionally a final dot); a spec
    without macros must also be a usable DNS name (no empty label, labels of at most 63
    characters, at most 253 in all).
    """
    if not spec:
        return "empty domain-spec"
    try:
        tokens = list(_tokens(spec, explain=False))
    except ValueError as exc:
        return str(exc)
    if tokens and not isinstance(tokens[-1], str):
        return None  # domain-end = macro-expand (a macro or "%%", "%_", "%-")
    tail_start = 0
    for index in range(len(tokens) - 1, -1, -1):
        if not isinstance(tokens[index], str):
            tail_start = index + 1
            break
    tail = "".join(t for t in tokens[tail_start:] if isinstance(t, str))
    if tail.endswith("."):
        tail = tail[:-1]
    if "." not in tail:
        return f"domain-spec {shown(spec)!r} must end in '.' and a top label (use a FQDN)"
    top = tail.rsplit(".", 1)[1]
    if not _TOPLABEL.match(top):
        return f"domain-spec {shown(spec)!r}: {shown(top)!r} is not a valid top label"
    if all(
        isinstance(t, str) for t in tokens
    ):  # no macros: the literal name must be a valid DNS name
        name = spec[:-1] if spec.endswith(".") else spec
        if len(name) > 253:
            return f"domain name is {len(name)} characters long (at most 253)"
        for label in name.split("."):
            if not label:
                return f"domain name {shown(spec)!r} has an empty label"
            if len(label) > 63:
                return f"domain name {shown(spec)!r} has a label longer than 63 characters"
    return None


def macro_letters(spec: str) -> set[str]:
    """The (lower-case) macro letters a macro-string uses; empty for an invalid string."""
    try:
        return {t.letter.lower() for t in _tokens(spec, explain=True) if isinstance(t, _Macro)}
    except ValueError:
        return set()


def _expand_one(value: str, macro: _Macro, *, joiner: str | None = None) -> str:
    delimiters = macro.delimiters or "."
    parts = re.split("[" + re.escape(delimiters) + "]", value)
    if macro.reverse:
        parts.reverse()
    if macro.digits is not None:
        parts = parts[-macro.digits :]
    out = ".".join(parts)
    if macro.letter.isupper():
        out = urllib.parse.quote(out, safe="-._~")
    return out


def truncate_name(name: str) -> str:
    """RFC 7208 §7.3: strip a final dot; drop left labels while the name exceeds 253."""
    if name.endswith("."):
        name = name[:-1]
    while len(name) > 253 and "." in name:
        name = name.split(".", 1)[1]
    return name


def expand_static(spec: str, *, domain: str, original: str | None = None) -> str | None:
    """Expand a domain-spec using only %{d} (current domain) and %{o} (sender domain).

    Returns the target name, or None when the spec uses a macro that needs the client IP,
    the sender's local part or the HELO name (s, l, i, p, v, h).
    """
    values = {"d": domain, "o": original if original is not None else domain}
    try:
        tokens = list(_tokens(spec, explain=False))
    except ValueError:
        return None
    out: list[str] = []
    for token in tokens:
        if isinstance(token, str):
            out.append(token)
        elif isinstance(token, _Escape):
            out.append(token.text)
        elif token.letter.lower() in STATIC_LETTERS:
            out.append(_expand_one(values[token.letter.lower()], token))
        else:
            return None
    return truncate_name("".join(out)).lower()


__all__ = [
    "LOOKUP_MECHANISMS",
    "MECHANISMS",
    "Mechanism",
    "Modifier",
    "NotSpfError",
    "SpfRecord",
    "Term",
    "TermError",
    "check_domain_spec",
    "check_macro_string",
    "expand_static",
    "is_spf",
    "macro_letters",
    "parse",
    "shown",
    "truncate_name",
]
