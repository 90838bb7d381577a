"""The lab's DNS blocklists (RFC 5782), as spec data: `LabSpec.blocklists`, a tuple of
`BlocklistSpec`, each served by the lab's Knot as one more zone (probes.lab.zones.blocklist_zones,
built as `extra_zones` are).

The default lab serves two clean lists with the RFC 5782 §5 test entries, `dnsbl.test` (IP) and
`dbl.test` (domain), and `check --lab` asks them (probes.lab.target): a correct lab has no
warn or fail finding from `dns.blocklists`. Broken cases are data:

    blocklists:
      - {zone: dnsbl.test}                                   # clean, with the test entries
      - {zone: listed.test, listed: ["{authorized}"], reason: "Spam seen from {authorized}"}
      - {zone: refusing.test, answer_all: 127.255.255.254}   # Spamhaus' "public resolver"
      - {zone: everything.test, answer_all: 127.0.0.2}       # answers every name
      - {zone: dbl.test, kind: domain, listed: ["{domain}"]}

`listed` entries are addresses (IP lists) or domain names (domain lists), placeholders allowed
(`{authorized}`, `{outbound}`, `{mx}`, `{domain}`, ...). `answer_all` puts a wildcard A record
(and the `reason` as wildcard TXT) in the zone: every name not listed explicitly gets it, and
the test entries are left out (they would stop the wildcard below them).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from probes.parse.dnsbl import (
    TEST_LISTED_NAME,
    as_address,
    domain_query_name,
    ip_query_name,
    ip_test_names,
)

KINDS = ("ip", "domain")
TEST_REASON = "RFC 5782 test entry"


@dataclass(frozen=True)
class BlocklistSpec:
    """One DNS blocklist zone the lab DNS serves."""

    zone: str = ""  # required: the list's zone, e.g. dnsbl.test
    kind: str = "ip"  # ip (reversed addresses) | domain (names)
    listed: tuple[str, ...] = ()  # addresses or domains listed; placeholders allowed
    code: str = "127.0.0.2"  # the A record of a listed entry (inside 127.0.0.0/8)
    reason: str = "Listed by the mailprobe lab"  # the TXT record of a listed entry
    answer_all: str | None = None  # an IPv4 address answered for every other name
    test_entries: bool = True  # the RFC 5782 §5 entries (ignored with answer_all)

    @property
    def name(self) -> str:
        return self.zone.rstrip(".").lower()


DEFAULT_BLOCKLISTS: tuple[BlocklistSpec, ...] = (
    BlocklistSpec("dnsbl.test"),
    BlocklistSpec("dbl.test", kind="domain"),
)


def zone_records(bl: BlocklistSpec, fill: Callable[[str], str]) -> tuple[str, ...]:
    """The zone-file lines of one list, relative to its zone (`fill` replaces placeholders)."""
    from probes.lab.zones import txt_rdata  # zones imports this module

    lines: list[str] = []

    def entry(owner: str, code: str, reason: str) -> None:
        lines.append(f"{owner} A {code}")
        lines.append(f"{owner} TXT {txt_rdata(reason)}")

    def relative(name: str) -> str:
        return name[: -len(bl.name) - 1]

    if bl.answer_all is not None:
        entry("*", bl.answer_all, fill(bl.reason))
    elif bl.test_entries:
        if bl.kind == "ip":
            for version in (4, 6):
                listed_name, _ = ip_test_names(bl.name, version)
                entry(relative(listed_name), "127.0.0.2", TEST_REASON)
        else:
            entry(TEST_LISTED_NAME, "127.0.0.2", TEST_REASON)
    for value in bl.listed:
        text = fill(value)
        if bl.kind == "ip":
            name = ip_query_name(as_address(text), bl.name)
        else:
            name = domain_query_name(text, bl.name)
        entry(relative(name), bl.code, fill(bl.reason))
    return tuple(dict.fromkeys(lines))


def problems(
    lists: tuple[BlocklistSpec, ...],
    domain: str,
    other_zones: Mapping[str, str],
    sample: Callable[[str], str],
    is_domain: Callable[[str], bool],
) -> Iterator[tuple[str, str]]:
    """(field, problem) for every bad list: `other_zones` are the zone names the lab serves
    otherwise (name -> the field that names it); `sample` fills placeholders with stand-ins."""
    seen: dict[str, str] = {}
    for i, bl in enumerate(lists):
        where = f"blocklists[{i}]"
        name = bl.name
        if not name:
            yield f"{where}.zone", "required: the list's zone name, e.g. dnsbl.test"
            continue
        if not is_domain(name):
            yield f"{where}.zone", f"{bl.zone!r} is not a domain name"
            continue
        if name == domain or name.endswith("." + domain) or domain.endswith("." + name):
            yield f"{where}.zone", f"{name!r} overlaps the lab domain {domain!r}"
        if name in other_zones:
            yield f"{where}.zone", f"{name!r} is also {other_zones[name]}"
        if name in seen:
            yield f"{where}.zone", f"{name!r} is also {seen[name]}"
        seen[name] = f"{where}.zone"
        if bl.kind not in KINDS:
            yield f"{where}.kind", f"{bl.kind!r}; one of {', '.join(KINDS)}"
            continue
        try:
            code = ipaddress.IPv4Address(bl.code)
        except ValueError:
            yield f"{where}.code", f"{bl.code!r} is not an IPv4 address"
        else:
            if code not in ipaddress.IPv4Network("127.0.0.0/8"):
                yield f"{where}.code", f"{bl.code} is outside 127.0.0.0/8 (RFC 5782 §2.1)"
        if bl.answer_all is not None:
            try:
                ipaddress.IPv4Address(bl.answer_all)
            except ValueError:
                yield f"{where}.answer_all", f"{bl.answer_all!r} is not an IPv4 address"
        for j, value in enumerate(bl.listed):
            text = sample(value)
            if bl.kind == "ip":
                try:
                    as_address(text)
                except ValueError:
                    yield f"{where}.listed[{j}]", f"{value!r} is not an IP address"
            elif _is_address(text) or not is_domain(text.rstrip(".").lower()):
                yield f"{where}.listed[{j}]", f"{value!r} is not a domain name"


def _is_address(text: str) -> bool:
    try:
        as_address(text)
    except ValueError:
        return False
    return True


__all__ = ["DEFAULT_BLOCKLISTS", "KINDS", "BlocklistSpec", "problems", "zone_records"]
