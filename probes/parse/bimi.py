"""BIMI: the assertion record at `default._bimi.<domain>` and the SVG Tiny PS logo. Pure.

The record (draft-brand-indicators-for-message-identification §4.2):

    v=BIMI1; l=<https URI of the logo>; a=<https URI of the authority evidence (VMC)>

`v=BIMI1` first (case-sensitive), tags separated by `;`, `l=` and `a=` each at most once,
either an https:// URI or empty (an empty `l=` with no `a=` declines to publish a logo);
unknown tags are ignored. `is_bimi_record` picks the records meant as BIMI (any case), so
that "v=bimi1; l=..." is a syntax error rather than no record.

The logo (SVG Tiny Portable/Secure, draft-svg-tiny-ps-abrotman) is checked without a
renderer: size, XML that parses with no DTD and no entities (refused before parsing: a
billion-laughs file is never expanded), root `<svg>` in the SVG namespace with
`baseProfile="tiny-ps"` and `version="1.2"`, a non-empty `<title>`, no `<script>`, no event
handler attributes, no animation elements, no `<foreignObject>` or raster `<image>`, and no
references outside the file (`href`/`xlink:href` that do not start with `#`).
"""

from __future__ import annotations

import re
import urllib.parse
import xml.etree.ElementTree as ET
from dataclasses import dataclass

VERSION = "v=BIMI1"
MAX_LOGO_BYTES = 32 * 1024  # the size BIMI receivers accept (the draft's recommendation)
SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
ANIMATION = ("animate", "animateMotion", "animateColor", "animateTransform", "set")
FORBIDDEN = ("script", "foreignObject", "image", *ANIMATION)
_TAG = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_WSP = " \t"


class BimiSyntaxError(ValueError):
    """The record does not follow the BIMI grammar; the message says where."""


@dataclass(frozen=True)
class BimiRecord:
    logo: str | None  # the l= URI; None when empty or absent (declined)
    authority: str | None  # the a= URI; None when empty or absent
    ignored: tuple[str, ...] = ()  # unknown tag names

    @property
    def declined(self) -> bool:
        return self.logo is None and self.authority is None


def is_bimi_record(text: str) -> bool:
    return text.lstrip(_WSP).lower().startswith(VERSION.lower())


def parse_record(text: str) -> BimiRecord:
    """Parse one BIMI TXT record (strings joined). Raises BimiSyntaxError."""
    for i, ch in enumerate(text):
        if not " " <= ch <= "~" and ch != "\t":
            raise BimiSyntaxError(f"character {ch!r} at position {i} is not printable ASCII")
    parts = [p.strip(_WSP) for p in text.split(";")]
    if parts and parts[-1] == "":
        parts.pop()
    if not parts or parts[0].replace(" ", "") != VERSION:
        raise BimiSyntaxError(f"the record must start with {VERSION!r} (case-sensitive)")
    seen: dict[str, str] = {}
    ignored: list[str] = []
    for n, field in enumerate(parts[1:], start=2):
        name, eq, value = field.partition("=")
        name, value = name.strip(_WSP), value.strip(_WSP)
        if not eq:
            raise BimiSyntaxError(f"field {n} {field[:40]!r} has no '='")
        if not _TAG.fullmatch(name):
            raise BimiSyntaxError(f"field {n}: {name[:40]!r} is not a tag name")
        if name in seen:
            raise BimiSyntaxError(f"{name}= appears more than once")
        seen[name] = value
        if name not in ("v", "l", "a"):
            ignored.append(name)
    if "v" in seen:
        raise BimiSyntaxError("v= appears more than once")
    logo = _uri(seen.get("l", ""), "l")
    authority = _uri(seen.get("a", ""), "a")
    return BimiRecord(logo, authority, tuple(ignored))


def _uri(value: str, tag: str) -> str | None:
    if not value:
        return None
    if "," in value:
        raise BimiSyntaxError(f"{tag}= holds more than one URI (one is allowed)")
    parts = urllib.parse.urlsplit(value)
    if parts.scheme.lower() != "https":
        raise BimiSyntaxError(f"{tag}={value[:80]} is not an https:// URI")
    if not parts.hostname:
        raise BimiSyntaxError(f"{tag}={value[:80]} has no host")
    return value


# -- the logo ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogoCheck:
    problems: tuple[str, ...]  # empty: the logo passes every check made here
    title: str | None = None


def check_svg(data: bytes, *, limit: int = MAX_LOGO_BYTES) -> LogoCheck:
    """The SVG Tiny PS checks that need no renderer. Never raises for bad input."""
    if len(data) > limit:
        return LogoCheck((f"the logo is {len(data)} bytes, more than {limit}",))
    if data[:2] == b"\x1f\x8b":
        return LogoCheck(("the logo is gzip-compressed (SVGZ): serve plain SVG",))
    if b"\x00" in data or data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return LogoCheck(("the file is not UTF-8 (UTF-16 or binary)",))
    head = data.lstrip()
    lowered = data.lower()
    if b"<!doctype" in lowered or b"<!entity" in lowered:
        # Refused before any parsing: no DTD, no entity is ever expanded (billion laughs,
        # external entities).
        return LogoCheck(("the file has a DTD or entity declarations (not allowed)",))
    if not head.startswith(b"<"):
        return LogoCheck(("the file is not XML",))
    try:
        parser = ET.XMLParser()
        parser.feed(data)
        root = parser.close()
    except ET.ParseError as exc:
        return LogoCheck((f"the file is not well-formed XML: {exc}",))
    problems: list[str] = []
    if root.tag != f"{{{SVG_NS}}}svg":
        problems.append(f"the root element is {_local(root.tag)!r}, not <svg> in the SVG namespace")
    if root.get("baseProfile") != "tiny-ps":
        problems.append(f'baseProfile is {root.get("baseProfile")!r}, not "tiny-ps"')
    if root.get("version") != "1.2":
        problems.append(f'version is {root.get("version")!r}, not "1.2"')
    for attr in ("x", "y"):
        if root.get(attr) is not None:
            problems.append(f"the root <svg> has an {attr}= attribute (not allowed)")
    title_el = next((el for el in root if _local(el.tag) == "title"), None)
    title = (title_el.text or "").strip() if title_el is not None else None
    if not title:
        problems.append("no <title> (a non-empty one is required, a child of <svg>)")
    found: set[str] = set()
    external: list[str] = []
    handlers: set[str] = set()
    for el in root.iter():
        name = _local(el.tag) if isinstance(el.tag, str) else ""
        if name in FORBIDDEN:
            found.add(name)
        for attr, value in el.attrib.items():
            local = _local(attr)
            if local.lower().startswith("on"):
                handlers.add(local)
            if local == "href" and not value.strip().startswith("#"):
                external.append(value.strip()[:80])
            if "url(" in value and "url(#" not in value.replace(" ", ""):
                external.append(value.strip()[:80])
    if "script" in found:
        problems.append("it has a <script> element")
    animations = sorted(found & set(ANIMATION))
    if animations:
        problems.append("it has animation elements: " + ", ".join(f"<{a}>" for a in animations))
    for other in ("foreignObject", "image"):
        if other in found:
            problems.append(f"it has an <{other}> element (not allowed)")
    if handlers:
        problems.append("it has event handler attributes: " + ", ".join(sorted(handlers)[:5]))
    if external:
        problems.append("it references outside the file: " + ", ".join(external[:3]))
    return LogoCheck(tuple(problems), title or None)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]
