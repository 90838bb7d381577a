"""DMARC policy records and the DNS Tree Walk (RFC 9989), as pure functions.

- `is_dmarc_record(text)`: does a TXT string start with the `v=DMARC1` tag (RFC 9989 §4.7:
  anything else at `_dmarc.<domain>` is not a DMARC record and is ignored).
- `parse(text)`: the tags of one DMARC record, checked against RFC 9989 §4.7/§4.8 (plus the
  RFC 7489 tags `pct`, `rf`, `ri` that RFC 9989 removed but RFC 7489 receivers still honour).
  Problems are collected, never raised: a record with a bad tag is still a DMARC record.
- The DNS Tree Walk (RFC 9989 §4.10): `walk_names(domain)` lists the names a walk asks (at
  most eight: a name of eight or more labels is shortened to seven after the first query);
  `walk`, `organizational_domain` and `discover_policy` apply the walk to answers already in
  hand, so the caller can ask every name at once. Answers that could not be had are UNKNOWN;
  `agreed` evaluates a judgement under every value an unknown answer could have had.
- `effective_policy(record, subdomain=...)`: the policy that applies (p, or sp for a
  subdomain; an absent or invalid p counts as none), used by dns.dmarc and the message round
  trip's DMARC verdict (probes.mail.alignment).

No I/O here. Names are lower-case A-labels without the trailing dot.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

VERSION: Final = "DMARC1"
MAX_WALK_QUERIES: Final = 8

# RFC 9989 §4.8: dmarc-version = "v" equals %s"DMARC1"; equals = *WSP "=" *WSP. The record
# starts with it (no leading space) and the tag ends at ";" or the end of the record.
_VERSION_RE = re.compile(r"^v[ \t]*=[ \t]*DMARC1[ \t]*(?:;|$)")
# Text that was probably meant as a DMARC record but is not one (wrong case, leading space,
# version not first, missing ";"): reported as evidence, never used.
_NEAR_MISS_RE = re.compile(r"v\s*=\s*dmarc1", re.IGNORECASE)

POLICIES: Final = ("none", "quarantine", "reject")
KNOWN_TAGS: Final = frozenset(
    {"v", "p", "sp", "np", "adkim", "aspf", "rua", "ruf", "fo", "psd", "t", "pct", "rf", "ri"}
)
OBSOLETE_TAGS: Final = ("pct", "rf", "ri")  # RFC 7489 tags removed by RFC 9989

_TAG_NAME_RE = re.compile(r"^[A-Za-z]+$")
_WSP = " \t"
_DIGITS_RE = re.compile(r"^[0-9]+$")
_KEYWORD_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$")  # RFC 5321 Ldh-str
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")
# RFC 3986 characters (unreserved, reserved, "%"); "," and "!" are separators in DMARC.
_URI_CHARS_RE = re.compile(r"^[A-Za-z0-9\-._~:/?#\[\]@$&'()*+;=%]+$")
_SIZE_RE = re.compile(r"^[0-9]+[kmgtKMGT]?$")
_LABEL_RE = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_MAX_ERRORS = 50  # a hostile record does not get to grow the result without bound


@dataclass(frozen=True)
class TagProblem:
    """One tag that breaks the record syntax: the tag's name, what is wrong, its value."""

    tag: str
    problem: str
    value: str = ""


@dataclass(frozen=True)
class ReportUri:
    """One entry of `rua`/`ruf`. `host` is the report destination's domain (mailto: the part
    after "@"; other schemes: the authority's host) as an A-label, when there is one."""

    text: str
    scheme: str
    host: str | None
    size: str | None = None


@dataclass(frozen=True)
class DmarcRecord:
    """A parsed DMARC record. Tag values are normalised (lower-case keywords) and are None
    when the tag is absent or its value is invalid (the problem is then in `problems`)."""

    text: str
    tags: tuple[tuple[str, str], ...]  # (lower-case name, raw value) in record order
    problems: tuple[TagProblem, ...] = ()
    unknown_tags: tuple[str, ...] = ()
    obsolete_tags: tuple[str, ...] = ()
    p: str | None = None
    sp: str | None = None
    np: str | None = None
    adkim: str | None = None
    aspf: str | None = None
    pct: int | None = None
    ri: int | None = None
    fo: tuple[str, ...] | None = None
    rf: tuple[str, ...] | None = None
    psd: str | None = None
    t: str | None = None
    rua: tuple[ReportUri, ...] = ()
    ruf: tuple[ReportUri, ...] = ()

    def has(self, tag: str) -> bool:
        return any(name == tag for name, _ in self.tags)

    def value(self, tag: str) -> str | None:
        """The raw value of the first occurrence of `tag`, or None."""
        return next((v for name, v in self.tags if name == tag), None)

    @property
    def psd_flag(self) -> str:
        """The psd tag for the tree walk: "y", "n", or "u" (absent or invalid)."""
        return self.psd or "u"


def is_dmarc_record(text: str) -> bool:
    """True when a TXT string is a DMARC record: it starts with the tag `v=DMARC1`."""
    return _VERSION_RE.match(text) is not None


def looks_like_dmarc(text: str) -> bool:
    """True for text that mentions v=DMARC1 in some form (evidence for an ignored record)."""
    return _NEAR_MISS_RE.search(text) is not None


class NotDmarcRecord(ValueError):
    """parse() was given text that does not start with v=DMARC1."""


def parse(text: str) -> DmarcRecord:
    """Parse one DMARC record; raises NotDmarcRecord only when it is not a DMARC record."""
    if not is_dmarc_record(text):
        raise NotDmarcRecord("a DMARC record starts with v=DMARC1")
    problems: list[TagProblem] = []
    tags: list[tuple[str, str]] = []
    unknown: list[str] = []
    seen: set[str] = set()

    def problem(tag: str, what: str, value: str = "") -> None:
        if len(problems) < _MAX_ERRORS:
            problems.append(TagProblem(tag, what, value))

    for segment in text.split(";"):
        segment = segment.strip(_WSP)
        if not segment:
            continue  # a trailing ";" (allowed) or an empty tag between two (tolerated)
        name, sep, value = segment.partition("=")
        name = name.strip(_WSP)
        value = value.strip(_WSP)
        if not sep:
            problem(segment, "not a tag=value pair")
            continue
        if not _TAG_NAME_RE.match(name):
            problem(name or "(empty)", "tag names are letters only", value)
            continue
        key = name.lower()
        if key in seen:
            problem(key, "tag appears more than once", value)
            continue
        seen.add(key)
        tags.append((key, value))
        if not value:
            problem(key, "empty value")
            continue
        bad = _bad_characters(value)
        if bad:
            problem(key, f"value has {bad}", value)
            continue
        if key not in KNOWN_TAGS and len(unknown) < _MAX_ERRORS:
            unknown.append(key)
    values = dict(tags)
    checked: dict[str, object] = {}
    for key, raw in values.items():
        if key not in _CHECKERS or not raw or _bad_characters(raw):
            continue
        try:
            checked[key] = _CHECKERS[key](raw)
        except _BadValue as exc:
            problem(key, str(exc), raw)
    uris: dict[str, tuple[ReportUri, ...]] = {}
    for key in ("rua", "ruf"):
        uri_text = values.get(key)
        if uri_text and not _bad_characters(uri_text):
            uris[key], what = _uri_list(uri_text)
            if what:
                problem(key, what, uri_text)
    return DmarcRecord(
        text=text,
        tags=tuple(tags),
        problems=tuple(problems),
        unknown_tags=tuple(unknown),
        obsolete_tags=tuple(t for t in OBSOLETE_TAGS if t in values),
        p=checked.get("p"),  # type: ignore[arg-type]
        sp=checked.get("sp"),  # type: ignore[arg-type]
        np=checked.get("np"),  # type: ignore[arg-type]
        adkim=checked.get("adkim"),  # type: ignore[arg-type]
        aspf=checked.get("aspf"),  # type: ignore[arg-type]
        pct=checked.get("pct"),  # type: ignore[arg-type]
        ri=checked.get("ri"),  # type: ignore[arg-type]
        fo=checked.get("fo"),  # type: ignore[arg-type]
        rf=checked.get("rf"),  # type: ignore[arg-type]
        psd=checked.get("psd"),  # type: ignore[arg-type]
        t=checked.get("t"),  # type: ignore[arg-type]
        rua=uris.get("rua", ()),
        ruf=uris.get("ruf", ()),
    )


# --- tag values -------------------------------------------------------------------------------


def _bad_characters(value: str) -> str | None:
    """dmarc-value is printable ASCII (%x20-3A / %x3C-7E); name what else is there."""
    for ch in value:
        if ord(ch) > 0x7E:
            return "non-ASCII characters"
        if ord(ch) < 0x20:
            return "control characters"
    return None


class _BadValue(ValueError):
    """A tag value that does not match its rule (the message says how)."""


def _keyword(choices: Sequence[str]) -> Callable[[str], str]:
    def check(raw: str) -> str:
        value = raw.lower()  # ABNF quoted strings are case-insensitive (RFC 5234 §2.3)
        if value not in choices:
            raise _BadValue(f"{_clip(raw)!r} is not one of {'|'.join(choices)}")
        return value

    return check


def _check_pct(raw: str) -> int:
    if not (_DIGITS_RE.match(raw) and len(raw) <= 3 and int(raw) <= 100):
        raise _BadValue(f"{_clip(raw)!r} is not an integer from 0 to 100")
    return int(raw)


def _check_ri(raw: str) -> int:
    if not (_DIGITS_RE.match(raw) and len(raw) <= 32 and int(raw) <= 0xFFFFFFFF):
        raise _BadValue(f"{_clip(raw)!r} is not a 32-bit unsigned integer (seconds)")
    return int(raw)


def _check_fo(raw: str) -> tuple[str, ...]:
    options = tuple(o.strip(_WSP).lower() for o in raw.split(":"))
    if not all(o in ("0", "1", "d", "s") for o in options):
        raise _BadValue(f"{_clip(raw)!r} is not a colon-separated list of 0, 1, d, s")
    return options


def _check_rf(raw: str) -> tuple[str, ...]:
    formats = tuple(f.strip(_WSP).lower() for f in raw.split(":"))
    if not all(_KEYWORD_RE.match(f) for f in formats):
        raise _BadValue(f"{_clip(raw)!r} is not a colon-separated list of report format names")
    return formats


_CHECKERS: dict[str, Callable[[str], object]] = {
    "p": _keyword(POLICIES),
    "sp": _keyword(POLICIES),
    "np": _keyword(POLICIES),
    "adkim": _keyword(("r", "s")),
    "aspf": _keyword(("r", "s")),
    "psd": _keyword(("y", "n", "u")),
    "t": _keyword(("y", "n")),
    "pct": _check_pct,
    "ri": _check_ri,
    "fo": _check_fo,
    "rf": _check_rf,
}


def _uri_list(raw: str) -> tuple[tuple[ReportUri, ...], str | None]:
    """The valid URIs of a rua/ruf value and the first problem found (None when all valid)."""
    uris: list[ReportUri] = []
    first_problem: str | None = None
    for item in raw.split(","):
        item = item.strip(_WSP)
        uri, what = parse_report_uri(item)
        if uri is not None:
            uris.append(uri)
        elif first_problem is None:
            first_problem = what
    return tuple(uris), first_problem


def parse_report_uri(text: str) -> tuple[ReportUri | None, str | None]:
    """One rua/ruf entry: `URI` with an optional RFC 7489 size limit `!10m`."""
    if not text:
        return None, "empty URI in the list"
    uri, bang, size = text.partition("!")
    if bang and not _SIZE_RE.match(size):
        return None, f"{_clip(text)!r}: size limit {_clip(size)!r} is not digits and k/m/g/t"
    scheme, colon, rest = uri.partition(":")
    if not colon or not _SCHEME_RE.match(scheme) or not rest:
        return None, f"{_clip(text)!r} is not a URI (e.g. mailto:reports@example.com)"
    if not _URI_CHARS_RE.match(rest):
        return None, f"{_clip(text)!r} has characters a URI cannot carry unencoded"
    scheme = scheme.lower()
    host: str | None
    if scheme == "mailto":
        address = rest.split("?", 1)[0]
        local, at, domain = address.rpartition("@")
        if not at or not local or not domain:
            return None, f"{_clip(text)!r}: a mailto: URI needs local-part@domain"
        if "%" in domain:
            return None, f"{_clip(text)!r}: the domain of a mailto: URI cannot be percent-encoded"
        if domain.startswith("[") and domain.endswith("]"):
            host = None  # an address literal: no DNS name to authorise
        else:
            host = domain_name(domain)
            if host is None:
                return None, f"{_clip(text)!r}: {_clip(domain)!r} is not a domain name"
    elif rest.startswith("//"):
        authority = rest[2:].split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
        hostport = authority.rpartition("@")[2]
        name = hostport if hostport.startswith("[") else hostport.split(":", 1)[0]
        host = None if name.startswith("[") else domain_name(name)
        if not name or (host is None and not name.startswith("[")):
            return None, f"{_clip(text)!r}: {_clip(name)!r} is not a host name"
    else:
        host = None
    return ReportUri(text=text, scheme=scheme, host=host, size=size if bang else None), None


def domain_name(text: str) -> str | None:
    """A DNS domain name in lower-case A-label form without the final dot, or None."""
    name = text.strip().rstrip(".").lower()
    if not name or len(name) > 253:
        return None
    labels = name.split(".")
    out = []
    for label in labels:
        alabel = label if label.isascii() else _to_alabel(label)
        if alabel is None or not _LABEL_RE.match(alabel):
            return None
        out.append(alabel)
    result = ".".join(out)
    return result if len(result) <= 253 else None


def _to_alabel(label: str) -> str | None:
    """The A-label of `label` (IDNA 2008 / UTS 46, the one conversion: probes.names)."""
    from probes.names import InvalidDomain, to_ascii

    try:
        return to_ascii(label)
    except InvalidDomain:
        return None


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- the DNS Tree Walk (RFC 9989 §4.10) ----------------------------------------------------------


class _Unknown:
    """The answer for a name could not be had (SERVFAIL, timeout, ...)."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Final = _Unknown()
# What one `_dmarc.<name>` answer means to the walk: None = no usable record (no DMARC
# record, or several, which are all discarded), "y"/"n"/"u" = one record with that psd flag.
WalkAnswer = str | None | _Unknown


def walk_names(domain: str) -> tuple[str, ...]:
    """The names a DNS Tree Walk starting at `domain` asks about, in order (RFC 9989 §4.10).

    The start, then: with fewer than eight labels, each parent in turn; with eight or more,
    the seven-label suffix and then each parent of that. Never more than eight names; the
    last is the single-label top of the tree (a TLD's `_dmarc` record may carry psd=y).
    """
    labels = domain.split(".")
    names = [domain]
    rest = labels[-7:] if len(labels) >= MAX_WALK_QUERIES else labels[1:]
    while rest:
        names.append(".".join(rest))
        rest = rest[1:]
    return tuple(names)


def walk(start: str, answers: Mapping[str, WalkAnswer]) -> list[tuple[str, str]]:
    """The records a walk from `start` collects: (name, psd flag), longest name first.

    The walk stops at a record carrying psd=y or psd=n (§4.10 steps 2 and 6). Every name of
    `walk_names(start)` must be in `answers`, none UNKNOWN (see `agreed`).
    """
    found: list[tuple[str, str]] = []
    for name in walk_names(start):
        answer = answers[name]
        if isinstance(answer, _Unknown):
            raise ValueError(f"the answer for {name} is unknown")
        if answer is None:
            continue
        found.append((name, answer))
        if answer in ("y", "n"):
            break
    return found


def organizational_domain(start: str, found: Sequence[tuple[str, str]]) -> str:
    """§4.10.2: select the Organizational Domain from a walk's records, longest to shortest:
    psd=n -> that name; psd=y (not at the start) -> the name one label below it; otherwise
    the name with the fewest labels; no records at all -> the start itself."""
    for name, psd in found:
        if psd == "n":
            return name
        if psd == "y" and name != start:
            return one_label_below(start, name)
    if found:
        return found[-1][0]
    return start


def one_label_below(start: str, ancestor: str) -> str:
    """The ancestor's child on the way down to `start` ("a.b.example.com", "com" ->
    "example.com")."""
    labels = start.split(".")
    keep = len(ancestor.split(".")) + 1
    return ".".join(labels[-keep:])


@dataclass(frozen=True)
class Discovery:
    """Where the policy for `start` comes from (RFC 9989 §4.10.1).

    `source`: the name whose record applies (None: no policy); `organizational_domain` per
    §4.10.2; `psd_domain`: set when the record that applies is a Public Suffix Domain's;
    `needs`: a name the walk did not ask but whose record decides the policy (the
    Organizational Domain under a psd=y record, when the shortening skipped it);
    `found`: the records the walk collected, (name, psd flag), longest name first.
    """

    start: str
    source: str | None
    organizational_domain: str
    psd_domain: str | None = None
    needs: str | None = None
    found: tuple[tuple[str, str], ...] = ()

    @property
    def inherited(self) -> bool:
        """The policy comes from a parent of `start`, not from its own record."""
        return self.source is not None and self.source != self.start


def discover_policy(domain: str, answers: Mapping[str, WalkAnswer]) -> Discovery:
    """Policy discovery for `domain` from the walk's answers (none UNKNOWN).

    The domain's own record applies when it has one. Otherwise the record of its
    Organizational Domain applies, else that of its Public Suffix Domain (a psd=y record):
    RFC 9989 §4.10.1 and §B.4.2 (the policy domain is the highest name with a record, not
    the first one found).
    """
    found = tuple(walk(domain, answers))
    org = organizational_domain(domain, found)
    if answers[domain] is not None:
        return Discovery(domain, domain, org, found=found)
    if org in {name for name, _ in found}:
        return Discovery(domain, org, org, found=found)
    psd = next((name for name, flag in found if flag == "y"), None)
    if psd is None:
        return Discovery(domain, None, org, found=found)
    if org != domain:
        if org not in answers:
            return Discovery(domain, None, org, psd_domain=psd, needs=org, found=found)
        if isinstance(answers[org], str):  # asked on its own after a first `needs`
            return Discovery(domain, org, org, found=found)
    return Discovery(domain, psd, org, psd_domain=psd, found=found)


# --- judging with answers that could not be had ------------------------------------------------

T = TypeVar("T")
MAX_UNKNOWNS: Final = 5
# What an unknown answer could have been. A single-label name (a TLD) is taken to publish
# either nothing or a record with psd=y: RFC 9989 §5.2 requires a Public Suffix Operator's
# record to carry psd=y, so a TLD that makes itself everyone's Organizational Domain is not
# considered (documented limitation; it keeps one unreachable TLD from voiding every verdict).
_POSSIBLE: Final[tuple[WalkAnswer, ...]] = (None, "u", "y", "n")
_POSSIBLE_TLD: Final[tuple[WalkAnswer, ...]] = (None, "y")


def possible_answers(name: str) -> tuple[WalkAnswer, ...]:
    return _POSSIBLE_TLD if "." not in name else _POSSIBLE


def agreed(
    judge: Callable[[Mapping[str, WalkAnswer]], T],
    answers: Mapping[str, WalkAnswer],
    names: Iterable[str],
) -> tuple[bool, T | None]:
    """Evaluate `judge` under every value the UNKNOWN answers among `names` could have had.

    Returns (True, verdict) when every possibility gives the same verdict, else (False,
    None). More than MAX_UNKNOWNS unknown names count as undecidable.
    """
    unknown = sorted({n for n in names if isinstance(answers.get(n), _Unknown)})
    if not unknown:
        return True, judge(answers)
    if len(unknown) > MAX_UNKNOWNS:
        return False, None
    verdicts: list[T] = []
    for combo in itertools.product(*(possible_answers(n) for n in unknown)):
        trial = dict(answers)
        trial.update(zip(unknown, combo, strict=True))
        verdict = judge(trial)
        if verdicts and verdict != verdicts[0]:
            return False, None
        verdicts.append(verdict)
    return True, verdicts[0]


# --- the policy that applies -------------------------------------------------------------------


def effective_policy(record: DmarcRecord, *, subdomain: bool) -> tuple[str, str, str | None]:
    """(policy, tag, note) that applies to the domain: p for the policy domain itself, sp (else
    p) for an existing subdomain. An absent p means none (RFC 9989 §4.7); an invalid p, sp or
    np means none when a valid rua is present and no DMARC processing at all otherwise
    (RFC 9989 §4.10.1)."""
    invalid = [t for t in ("p", "sp", "np") if record.has(t) and getattr(record, t) is None]
    if invalid or record.p is None:
        tag = invalid[0] if invalid else "p"
        what = f"{tag} is invalid" if invalid else "p is absent"
        if record.rua:
            return "none", tag, f"{what}: receivers act as if p=none"
        if invalid:
            return "none", tag, f"{what} and no valid rua: receivers apply no DMARC processing"
        return "none", tag, f"{what}: receivers act as if p=none"
    if subdomain and record.sp is not None:
        return record.sp, "sp", None
    return record.p, "p", None


__all__ = [
    "KNOWN_TAGS",
    "MAX_WALK_QUERIES",
    "OBSOLETE_TAGS",
    "POLICIES",
    "UNKNOWN",
    "Discovery",
    "DmarcRecord",
    "NotDmarcRecord",
    "ReportUri",
    "TagProblem",
    "WalkAnswer",
    "agreed",
    "discover_policy",
    "domain_name",
    "effective_policy",
    "is_dmarc_record",
    "looks_like_dmarc",
    "one_label_below",
    "organizational_domain",
    "parse",
    "parse_report_uri",
    "possible_answers",
    "walk",
    "walk_names",
]
