"""DNS blocklists (RFC 5782), pure: query names, the test entries, and what an answer means.

- **Query names** (RFC 5782 §2.1, §2.3, §2.4): an IPv4 address's four octets reversed
  (`192.0.2.99` in `zen.spamhaus.org` is `99.2.0.192.zen.spamhaus.org`), an IPv6 address's 32
  nibbles reversed (`2001:db8::1` is `1.0.0.0.…8.b.d.0.1.0.0.2.<zone>`), a domain as it is
  (`example.com.dbl.spamhaus.org`). IPv4-mapped IPv6 addresses are asked as IPv4.
- **Test entries** (RFC 5782 §5): an IP list must list 127.0.0.2 (::ffff:7f00:2 for IPv6) and
  must not list 127.0.0.1 (::ffff:7f00:1); a domain list must list `test` and must not list
  `invalid`. A few well-known domain lists use a test name of their own (`KNOWN_LISTS`).
- **Answers** (`classify`): no A record is "not listed"; A records inside 127.0.0.0/8 other
  than the refusal codes are "listed"; a refusal code (127.255.255.0/24, which Spamhaus
  answers to queries through public resolvers, over quota or with a wrong zone name;
  127.0.0.1, which URIBL and SURBL answer to blocked resolvers; a list's own codes from
  `KNOWN_LISTS`) is "refused"; anything else (an address outside 127/8, which a list that died
  may answer for every name, RFC 5782 §5; a record that is not an IPv4 address) is "bogus".
  A refusal code or a bogus record anywhere in an answer wins over listing codes: a refusal is
  never read as a listing.
- **Usability** (`list_problem`): from the two test answers, why the list cannot be used
  (refuses, answers everything, does not list its positive test entry), or None.
- `reason_text`: a list's TXT reason, safe to show (control characters escaped, bounded).

The defaults (`DEFAULT_IP_LISTS`, `DEFAULT_DOMAIN_LISTS`) are the lists `dns.blocklists` asks
when the user names none (docs/dns.md#dnsblocklists).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Asked when the user names no list at all (neither --dnsbl nor --domain-blocklist).
DEFAULT_IP_LISTS: tuple[str, ...] = (
    "zen.spamhaus.org",
    "bl.spamcop.net",
    "b.barracudacentral.org",
    "psbl.surriel.com",
)
DEFAULT_DOMAIN_LISTS: tuple[str, ...] = ("dbl.spamhaus.org", "multi.uribl.com")

# RFC 5782 §5 test entries.
TEST_LISTED_V4 = ipaddress.IPv4Address("127.0.0.2")
TEST_CLEAN_V4 = ipaddress.IPv4Address("127.0.0.1")
TEST_LISTED_V6 = ipaddress.IPv6Address("::ffff:7f00:2")
TEST_CLEAN_V6 = ipaddress.IPv6Address("::ffff:7f00:1")
TEST_LISTED_NAME = "test"
TEST_CLEAN_NAME = "invalid"

LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")
# Answers that mean "your query was refused", for every list: Spamhaus' error range
# (127.255.255.252 wrong zone, .254 public/open resolver, .255 over quota; DQS .250/.251) and
# 127.0.0.1 (URIBL, SURBL: blocked resolver; RFC 5782 §5 says it is never listed).
REFUSAL_NETWORKS: tuple[ipaddress.IPv4Network, ...] = (
    ipaddress.IPv4Network("127.255.255.0/24"),
    ipaddress.IPv4Network("127.0.0.1/32"),
)
MAX_REASON = 300  # characters of a TXT reason shown


@dataclass(frozen=True)
class KnownList:
    """What a well-known list does differently: its own refusal codes, its domain test name."""

    refusals: tuple[str, ...] = ()
    test_name: str | None = None  # the domain list's listed test name (default: "test")
    delist: str | None = None  # where its operator explains listings and removal


KNOWN_LISTS: dict[str, KnownList] = {
    "zen.spamhaus.org": KnownList(delist="https://check.spamhaus.org/"),
    # DBL: 127.0.1.255 = "IP queries are not allowed"; its documented test domain.
    "dbl.spamhaus.org": KnownList(
        ("127.0.1.255",), "dbltest.com", delist="https://check.spamhaus.org/"
    ),
    "bl.spamcop.net": KnownList(delist="https://www.spamcop.net/bl.shtml"),
    "b.barracudacentral.org": KnownList(delist="https://www.barracudacentral.org/lookups"),
    "psbl.surriel.com": KnownList(delist="https://psbl.org/"),
    "multi.uribl.com": KnownList(test_name="test.uribl.com", delist="https://admin.uribl.com/"),
    "multi.surbl.org": KnownList(test_name="test.surbl.org", delist="https://surbl.org/"),
}

NOT_LISTED = "not listed"
LISTED = "listed"
REFUSED = "refused"
BOGUS = "bogus"


@dataclass(frozen=True)
class Verdict:
    """What one A answer of a list says about one name."""

    kind: str  # NOT_LISTED | LISTED | REFUSED | BOGUS
    codes: tuple[str, ...] = ()  # the A records, sorted (the return codes)
    why: str = ""  # for REFUSED and BOGUS: what was wrong

    @property
    def listed(self) -> bool:
        return self.kind == LISTED

    @property
    def usable(self) -> bool:
        return self.kind in (LISTED, NOT_LISTED)


def ip_query_name(ip: IPAddress | str, zone: str) -> str:
    """The name to ask for `ip` in `zone` (RFC 5782 §2.1 IPv4, §2.4 IPv6 nibbles)."""
    return _raw_query_name(as_address(ip), zone)


def domain_query_name(domain: str, zone: str) -> str:
    """The name to ask for `domain` in a domain list (RFC 5782 §2.3)."""
    return f"{domain.rstrip('.').lower()}.{zone.rstrip('.').lower()}"


def as_address(ip: IPAddress | str) -> IPAddress:
    """`ip` as an address, IPv4-mapped IPv6 as IPv4. ValueError when it is not an address."""
    address = ipaddress.ip_address(str(ip).strip()) if isinstance(ip, str) else ip
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def ip_test_entries(version: int) -> tuple[IPAddress, IPAddress]:
    """The (must be listed, must not be listed) test addresses of an IP list for a family."""
    if version == 4:
        return TEST_LISTED_V4, TEST_CLEAN_V4
    return TEST_LISTED_V6, TEST_CLEAN_V6


def ip_test_names(zone: str, version: int) -> tuple[str, str]:
    """The names of an IP list's two test entries for one address family."""
    listed, clean = ip_test_entries(version)
    # Not through ip_query_name: the IPv6 test entries are IPv4-mapped and must stay IPv6.
    return _raw_query_name(listed, zone), _raw_query_name(clean, zone)


def domain_test_names(zone: str) -> tuple[str, str]:
    """The names of a domain list's two test entries (RFC 5782 §5, or the list's own)."""
    known = KNOWN_LISTS.get(zone.rstrip(".").lower())
    listed = known.test_name if known is not None and known.test_name else TEST_LISTED_NAME
    return domain_query_name(listed, zone), domain_query_name(TEST_CLEAN_NAME, zone)


def _raw_query_name(address: IPAddress, zone: str) -> str:
    if isinstance(address, ipaddress.IPv4Address):
        labels = str(address).split(".")
    else:
        labels = list(address.exploded.replace(":", ""))
    return ".".join([*reversed(labels), zone.rstrip(".").lower()])


def refusal_codes(zone: str) -> tuple[str, ...]:
    known = KNOWN_LISTS.get(zone.rstrip(".").lower())
    return known.refusals if known is not None else ()


def is_refusal(address: ipaddress.IPv4Address, zone: str) -> bool:
    return any(address in net for net in REFUSAL_NETWORKS) or str(address) in refusal_codes(zone)


def classify(records: Iterable[object], zone: str) -> Verdict:
    """What the A records of one answer from `zone` say (records as the door gives them)."""
    texts = sorted({str(r) for r in records}, key=_address_order)
    if not texts:
        return Verdict(NOT_LISTED)
    refused: list[str] = []
    bogus: list[str] = []
    for text in texts:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            bogus.append(text)
            continue
        if not isinstance(address, ipaddress.IPv4Address) or address not in LOOPBACK:
            bogus.append(text)
        elif is_refusal(address, zone):
            refused.append(text)
    codes = tuple(_shown(t) for t in texts)
    if refused:
        return Verdict(
            REFUSED,
            codes,
            f"answered {', '.join(refused)}: a refusal code (the list refused the query, "
            "e.g. through a public resolver or over quota)",
        )
    if bogus:
        shown = ", ".join(_shown(t) for t in bogus)
        return Verdict(
            BOGUS,
            codes,
            f"answered {shown}: not a return code inside 127.0.0.0/8 (a list that is gone "
            "may answer every name with a web server's address, RFC 5782 §5)",
        )
    return Verdict(LISTED, codes)


def list_problem(
    listed_test: Verdict, clean_test: Verdict, listed_name: str, clean_name: str
) -> str | None:
    """Why a list cannot be used, from its two test answers (None: usable)."""
    for verdict in (listed_test, clean_test):
        if not verdict.usable:
            return verdict.why
    if clean_test.listed:
        return (
            f"lists its negative test entry {clean_name} ({', '.join(clean_test.codes)}): it "
            "answers every name, so its answers mean nothing (RFC 5782 §5)"
        )
    if not listed_test.listed:
        return (
            f"does not list its positive test entry {listed_name}: the list does not answer "
            "(gone, not serving this address family, or blocked by the resolver)"
        )
    return None


def reason_text(texts: Sequence[str]) -> str:
    """TXT reasons as one line safe to show: control and non-printable characters escaped,
    at most MAX_REASON characters."""
    joined = " / ".join(texts)
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in joined)
    if len(shown) > MAX_REASON:
        shown = shown[: MAX_REASON - 1] + "…"
    return shown


def _shown(text: str, limit: int = 64) -> str:
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def _address_order(text: str) -> tuple[int, object]:
    try:
        return 0, int(ipaddress.ip_address(text))
    except ValueError:
        return 1, text


__all__ = [
    "BOGUS",
    "DEFAULT_DOMAIN_LISTS",
    "DEFAULT_IP_LISTS",
    "KNOWN_LISTS",
    "LISTED",
    "NOT_LISTED",
    "REFUSAL_NETWORKS",
    "REFUSED",
    "TEST_CLEAN_NAME",
    "TEST_LISTED_NAME",
    "KnownList",
    "Verdict",
    "as_address",
    "classify",
    "domain_query_name",
    "domain_test_names",
    "ip_query_name",
    "ip_test_entries",
    "ip_test_names",
    "list_problem",
    "reason_text",
    "refusal_codes",
]
