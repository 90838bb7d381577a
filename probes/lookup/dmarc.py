"""DMARC policy discovery and Organizational Domains by the RFC 9989 DNS Tree Walk, through the
resolver door. The walk itself (which names, what their answers mean) is pure and lives in
probes.parse.dmarc; this module asks the `_dmarc.<name>` questions and applies it.

`DmarcTree(dns)` holds the `_dmarc.<name>` answers of one piece of work: `ask(names)` sends
questions without waiting (every name a walk could need goes out at once), `site(name)` waits
for one and reads it (`DmarcSite`: its TXT strings, the v=DMARC1 records, the record when there
is exactly one). On it:

- `discover(domain)`: where the policy for `domain` comes from (`Discovery`), and the failed
  lookup that could have changed that, if any;
- `organizational_domain(name)`: the Organizational Domain (§4.10.2), with the same failure
  report; `same_organization(a, b)` likewise.

A failed lookup (SERVFAIL, timeout, ...) is UNKNOWN to the walk: a verdict is given from what
was answered, and the failure comes with it only when some answer it could have given would
change the verdict (probes.parse.dmarc.agreed). A name too long to ask (BADNAME) holds no
record. Callers choose what a failure means: dns.dmarc reports what was answered and ends in
ERROR; the message round trip's DMARC (`dmarc_policy`, `org_domain_via_dns`) raises it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from functools import cached_property

from probes.net.dns import BADNAME, DnsAnswer, DnsClient
from probes.parse.dmarc import (
    UNKNOWN,
    Discovery,
    DmarcRecord,
    WalkAnswer,
    agreed,
    discover_policy,
    domain_name,
    is_dmarc_record,
    looks_like_dmarc,
    organizational_domain,
    parse,
    walk,
    walk_names,
)


@dataclass
class DmarcSite:
    """What `_dmarc.<name>` holds."""

    name: str
    answer: DnsAnswer

    @property
    def failed(self) -> bool:
        """The question was asked and not answered (a name too long to ask is not a failure:
        no record can be there)."""
        return not self.answer.ok and self.answer.rcode != BADNAME

    @cached_property
    def texts(self) -> list[str]:
        return self.answer.texts() if self.answer.ok else []

    @cached_property
    def records(self) -> list[str]:
        return [t for t in self.texts if is_dmarc_record(t)]

    @cached_property
    def ignored(self) -> list[str]:
        """TXT strings that look like a DMARC record but are not one (evidence)."""
        return [t for t in self.texts if not is_dmarc_record(t) and looks_like_dmarc(t)]

    @cached_property
    def record(self) -> DmarcRecord | None:
        """The record, when there is exactly one (several are all discarded)."""
        return parse(self.records[0]) if len(self.records) == 1 else None

    @property
    def walk_answer(self) -> WalkAnswer:
        if self.failed:
            return UNKNOWN
        record = self.record
        return None if record is None else record.psd_flag


class DmarcTree:
    """`_dmarc.<name>` answers: asked without waiting, read when needed (the door caches)."""

    def __init__(self, dns: DnsClient) -> None:
        self.dns = dns
        self._futures: dict[str, Future[DnsAnswer]] = {}
        self._sites: dict[str, DmarcSite] = {}

    def ask(self, names: Iterable[str]) -> None:
        for name in names:
            if name not in self._futures:
                self._futures[name] = self.dns.submit("_dmarc." + name, "TXT")

    def site(self, name: str) -> DmarcSite:
        if name not in self._sites:
            self.ask([name])
            self._sites[name] = DmarcSite(name, self._futures[name].result())
        return self._sites[name]

    def answers(self, names: Iterable[str]) -> dict[str, WalkAnswer]:
        return {name: self.site(name).walk_answer for name in names}

    def first_failure(self, names: Iterable[str]) -> DnsAnswer | None:
        for name in names:
            site = self.site(name)
            if site.failed:
                return site.answer
        return None

    # --- the walk ---------------------------------------------------------------------------

    def discover(self, domain: str) -> tuple[Discovery, DnsAnswer | None]:
        """Policy discovery for `domain` (an A-label name): the Discovery made from what was
        answered, and the first failed lookup when another answer to it could have changed
        where the policy comes from (else None)."""
        asked = list(walk_names(domain))
        self.ask(asked)
        failure: DnsAnswer | None = None
        while True:
            answers = self.answers(asked)
            ok, _key = agreed(lambda a: _discovery_key(domain, a), answers, asked)
            if not ok and failure is None:
                failure = self.first_failure(asked)
            discovery = discover_policy(domain, answered(answers))
            if discovery.needs is None or discovery.needs in asked:
                return discovery, failure
            asked.append(discovery.needs)

    def organizational_domain(self, name: str) -> tuple[str, DnsAnswer | None]:
        """The Organizational Domain of `name` (an A-label name) from what was answered, and
        the first failed lookup when it could have changed it (else None)."""
        names = walk_names(name)
        self.ask(names)
        answers = self.answers(names)
        ok, org = agreed(lambda a: org_domain_of(name, a), answers, names)
        if ok and org is not None:
            return org, None
        return org_domain_of(name, answered(answers)), self.first_failure(names)

    def same_organization(self, a: str, b: str) -> tuple[bool, DnsAnswer | None]:
        """Do `a` and `b` have the same Organizational Domain? (From what was answered, and
        the failed lookup when it could have changed the verdict.)"""
        names = walk_names(a) + walk_names(b)
        self.ask(names)
        answers = self.answers(names)
        ok, same = agreed(
            lambda ans: org_domain_of(a, ans) == org_domain_of(b, ans), answers, names
        )
        if ok and same is not None:
            return same, None
        done = answered(answers)
        return org_domain_of(a, done) == org_domain_of(b, done), self.first_failure(names)


# --- the message round trip's two questions -------------------------------------------------


def dmarc_policy(header_from_domain: str, dns: DnsClient) -> tuple[DmarcRecord | None, str | None]:
    """(record, policy domain) of the DMARC policy that applies to the From domain by the
    RFC 9989 tree walk, or (None, None). Raises DnsError/DnsTimeout when `_dmarc.<domain>`
    itself, or a lookup that could change where the policy comes from, failed."""
    domain = domain_name(header_from_domain)
    if domain is None:
        return None, None
    tree = DmarcTree(dns)
    tree.ask(walk_names(domain))
    own = tree.site(domain)
    if own.failed:
        own.answer.raise_for_failure()
    discovery, failure = tree.discover(domain)
    if failure is not None:
        failure.raise_for_failure()
    if discovery.source is None:
        return None, None
    return tree.site(discovery.source).record, discovery.source


def org_domain_via_dns(dns: DnsClient) -> Callable[[str], str]:
    """A function giving the Organizational Domain of a name (RFC 9989 §4.10.2) by the DNS
    Tree Walk through `dns`, remembered per name. A name that is not a valid domain is its
    own Organizational Domain. The function raises DnsError/DnsTimeout when a failed lookup
    could change the answer."""
    known: dict[str, str] = {}
    tree = DmarcTree(dns)

    def org_domain(name: str) -> str:
        domain = domain_name(name)
        if domain is None:
            return name.strip().rstrip(".").lower()
        if domain not in known:
            org, failure = tree.organizational_domain(domain)
            if failure is not None:
                failure.raise_for_failure()
            known[domain] = org
        return known[domain]

    return org_domain


# --- pure helpers -----------------------------------------------------------------------------


def answered(answers: Mapping[str, WalkAnswer]) -> dict[str, WalkAnswer]:
    """The answers with the unknown ones taken as "no record" (what was answered)."""
    return {name: (None if answer is UNKNOWN else answer) for name, answer in answers.items()}


def org_domain_of(name: str, answers: Mapping[str, WalkAnswer]) -> str:
    """§4.10.2 from walk answers in hand (none UNKNOWN for the names of `name`'s walk)."""
    return organizational_domain(name, walk(name, answers))


def _discovery_key(domain: str, answers: Mapping[str, WalkAnswer]) -> tuple:
    d = discover_policy(domain, answers)
    return (d.source, d.psd_domain, d.needs)


__all__ = [
    "DmarcSite",
    "DmarcTree",
    "answered",
    "dmarc_policy",
    "org_domain_of",
    "org_domain_via_dns",
]
