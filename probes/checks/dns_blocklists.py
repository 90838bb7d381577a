"""dns.blocklists: the sending IPs and the MX addresses on IP blocklists, the domain on domain
blocklists (RFC 5782), through the resolver door.

Which lists: `target.dnsbls` (IP lists, `--dnsbl`) and `target.domain_blocklists` (`--domain-
blocklist`); when the user named neither, the well-known public lists of
probes.parse.dnsbl (DEFAULT_IP_LISTS, DEFAULT_DOMAIN_LISTS). Naming any list replaces all the
defaults. No list at all: SKIPPED.

Each list is checked once per run with its RFC 5782 §5 test entries (127.0.0.2 listed and
127.0.0.1 not, ::ffff:7f00:2 / ::ffff:7f00:1 when an IPv6 address is asked, `test` and
`invalid` for a domain list): a list that refuses the query (a refusal code such as Spamhaus'
127.255.255.254 for public resolvers), answers everything, does not list its positive test entry
or answers outside 127.0.0.0/8 is DNSBL_UNUSABLE, and its answers for the addresses are not
used. A refusal code is never read as a listing (probes.parse.dnsbl.classify).

Rounds: the lists' test entries, the sending IPs' and the domain's questions and the MX
question go out together; then the MX hosts' A/AAAA; then every MX address on every list; then
the TXT reasons of what is listed.

Codes:
- DNSBL_LISTED [fail] (subject `<ip or domain> on <list>`): listed; evidence the return codes,
  the list's TXT reason, the role (sending IP, address of MX host).
- DNSBL_CLEAN [info] (subject: the IP or domain): on none of the usable lists asked.
- DNSBL_UNUSABLE [warn] (subject: the list; `<list> (IPv6)` for its IPv6 test): the list
  refused the query, answers everything, or does not answer. Info for `<list> (IPv6)` when the
  list only lacks its IPv6 test entry: it does not serve IPv6, nothing to fix.
A REFUSED rcode for a list's question is the list refusing too (the resolver does not ask it
for us): DNSBL_UNUSABLE. Any other DNS failure (SERVFAIL, timeout) of a question: the findings
that could be judged, then ERROR naming the question; a failed TXT lookup only shows in the
evidence.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field

from probes.codes import Code, Fix, declare
from probes.errors import ProbeConfigError, ProbeSkipped
from probes.lookup.mx import walk_mx
from probes.model import Finding, Severity, Target
from probes.net import Net
from probes.net.dns import DnsAnswer, DnsClient, normalize_name
from probes.parse.dnsbl import (
    DEFAULT_DOMAIN_LISTS,
    DEFAULT_IP_LISTS,
    KNOWN_LISTS,
    NOT_LISTED,
    IPAddress,
    Verdict,
    as_address,
    classify,
    domain_query_name,
    domain_test_names,
    ip_query_name,
    ip_test_names,
    list_problem,
    reason_text,
)
from probes.probe import BaseProbe

REFUSED_RCODE = "REFUSED"  # the resolver's rcode: it will not ask the list (DNSBL_UNUSABLE)

# Bounds against a hostile MX set (as dns.ptr): addresses per MX host, MX addresses in all.
MAX_ADDRESSES_PER_HOST = 16
MAX_MX_ADDRESSES = 64

DNSBL_LISTED = Code(
    "DNSBL_LISTED",
    "a sending IP or MX address is on an IP blocklist, or the domain on a domain blocklist",
    Severity.FAIL,
    fix=Fix(
        "Find out why it was listed before asking for removal: read the list's TXT reason and "
        "its lookup page (Spamhaus: check.spamhaus.org; SpamCop: spamcop.net/bl.shtml; "
        "Barracuda: barracudacentral.org/lookups; PSBL: psbl.org). Stop the source first: a "
        "compromised account or password sending through your submission port, an infected "
        "host behind the address, an open relay, a web form that mails anyone, or mail your "
        "users' recipients never asked for. Then request delisting on the list's page (most "
        "lists expire entries on their own once the spam stops). An address on a policy list "
        "(Spamhaus PBL, 127.0.0.10/11) is a dynamic or end-user range: send through a relay "
        "with a static address, or have the range's owner remove it. A domain on a domain "
        "list (Spamhaus DBL, URIBL, SURBL) was seen in spam, usually in links: a compromised "
        "web site or a form on it, a redirector, or a sender using your domain in its URLs; "
        "clean that up, then request removal on the list's page. Check again with "
        "`dig +short A <reversed-ip>.<list>` and `dig +short TXT <reversed-ip>.<list>` (a "
        "domain: `dig +short A <domain>.<list>`).",
        {
            "exim": "# the logins that sent the most lately\n"
            "grep -o 'A=[a-z_]*:[^ ]*' /var/log/exim4/mainlog | sort | uniq -c | sort -rn | head",
            "postfix": "# the logins that sent the most lately\n"
            "grep -o 'sasl_username=[^ ]*' /var/log/mail.log | sort | uniq -c | sort -rn | head",
            "shell": "dig +short A <d>.<c>.<b>.<a>.<list>\ndig +short TXT <d>.<c>.<b>.<a>.<list>\n"
            "# a domain list\ndig +short A <domain>.<list>\ndig +short TXT <domain>.<list>",
        },
    ),
)
DNSBL_CLEAN = Code(
    "DNSBL_CLEAN", "an IP or the domain is on none of the usable blocklists asked", Severity.INFO
)
DNSBL_UNUSABLE = Code(
    "DNSBL_UNUSABLE",
    "a blocklist refused the query, answers every name, or does not answer its test entry",
    Severity.WARN,
    fix=Fix(
        "Ask the list through a resolver it serves. Most lists refuse queries that come "
        "through public or shared resolvers (8.8.8.8, 1.1.1.1, a big ISP's) or over a free "
        "quota: Spamhaus then answers 127.255.255.254 (public resolver) or 127.255.255.255 "
        "(quota), URIBL and SURBL 127.0.0.1. Run your own recursive resolver (unbound, BIND) "
        "and give it with `--resolver`, or use the list's paid data feed (Spamhaus DQS: a "
        "zone with your key, `--dnsbl <key>.zen.dq.spamhaus.net`). A list that lists "
        "127.0.0.1 (or `invalid`) answers everything: it is gone or broken; stop using it. "
        "A list that does not list its own test entry may be misspelt (check the zone name "
        "given) or shut down. Check with `dig +short A 2.0.0.127.<list>` (must answer) and "
        "`dig +short A 1.0.0.127.<list>` (must not); a domain list: `test.<list>` must "
        "answer, `invalid.<list>` must not.",
        {
            "shell": "dig +short A 2.0.0.127.<list> @<resolver>\n"
            "dig +short A 1.0.0.127.<list> @<resolver>\n"
            "# a domain list\ndig +short A test.<list> @<resolver>\n"
            "dig +short A invalid.<list> @<resolver>",
        },
    ),
)


def chosen_lists(target: Target) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
    """(IP lists, domain lists, the defaults?): the user's lists, or the defaults when the
    user named none of either kind. Lower case, no trailing dot, each once."""
    if target.dnsbls is None and target.domain_blocklists is None:
        return DEFAULT_IP_LISTS, DEFAULT_DOMAIN_LISTS, True
    return _unique(target.dnsbls or ()), _unique(target.domain_blocklists or ()), False


def _unique(zones: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(normalize_name(z) for z in zones))


@dataclass
class _Item:
    """One thing looked up: an address (with its roles) or the domain."""

    name: str  # the address as text, or the domain
    ip: IPAddress | None = None
    roles: list[str] = field(default_factory=list)
    asked: dict[str, Future[DnsAnswer]] = field(default_factory=dict)  # zone -> A question

    @property
    def role(self) -> str:
        return ", ".join(self.roles)

    def query_name(self, zone: str) -> str:
        if self.ip is not None:
            return ip_query_name(self.ip, zone)
        return domain_query_name(self.name, zone)


@dataclass
class _List:
    """One list for one kind of item: its test answers and what went wrong with it."""

    zone: str
    subject: str  # the zone, or "<zone> (IPv6)"
    tests: tuple[str, str]  # (must be listed, must not be listed) names
    asked: tuple[Future[DnsAnswer], Future[DnsAnswer]]
    problem: str | None = None
    evidence: dict[str, str] = field(default_factory=dict)
    failure: DnsAnswer | None = None
    item_problems: list[str] = field(default_factory=list)
    # An IPv6 test whose only fault is a positive entry not listed: the list does not serve
    # IPv6 (most do not), nothing to fix: DNSBL_UNUSABLE at info.
    no_ipv6: bool = False
    used: bool = False  # an address or the domain is asked of it (else nothing is reported)


class DnsBlocklists(BaseProbe):
    id = "dns.blocklists"
    description = (
        "Sending IPs and MX addresses on IP blocklists, the domain on domain blocklists (RFC 5782)"
    )
    codes = declare(DNSBL_LISTED, DNSBL_CLEAN, DNSBL_UNUSABLE)

    def run(self, target: Target, net: Net) -> Iterator[Finding]:
        ip_zones, domain_zones, defaults = chosen_lists(target)
        if not ip_zones and not domain_zones:
            raise ProbeSkipped("no blocklist to ask (--dnsbl, --domain-blocklist)")
        dns = net.dns
        domain = normalize_name(target.domain)
        failures: list[DnsAnswer] = []
        lists: dict[tuple[str, str], _List] = {}  # (zone, "4" | "6" | "domain")

        def test_list(zone: str, kind: str) -> _List:
            key = (zone, kind)
            if key not in lists:
                if kind == "domain":
                    names = domain_test_names(zone)
                else:
                    names = ip_test_names(zone, int(kind))
                subject = f"{zone} (IPv6)" if kind == "6" else zone
                asked = (dns.submit(names[0], "A"), dns.submit(names[1], "A"))
                lists[key] = _List(zone, subject, names, asked)
            return lists[key]

        items: dict[str, _Item] = {}

        def add_ip(ip: IPAddress, role: str) -> None:
            item = items.setdefault(str(ip), _Item(str(ip), ip))
            item.roles.append(role)
            if item.asked:
                return
            for zone in ip_zones:
                test_list(zone, str(ip.version)).used = True
                item.asked[zone] = dns.submit(item.query_name(zone), "A")

        # Round 1: the tests, the sending IPs, the domain, the MX question.
        for zone in ip_zones:
            test_list(zone, "4")
        domain_item = _Item(domain, roles=["the domain"])
        for zone in domain_zones:
            test_list(zone, "domain").used = True
            domain_item.asked[zone] = dns.submit(domain_item.query_name(zone), "A")
        for ip in _sending_ips(target):
            add_ip(ip, "sending IP")
        if ip_zones:
            mx_addresses = 0
            mxs = walk_mx(domain, dns)
            if not mxs.answer.ok:
                failures.append(mxs.answer)
            for host in mxs.hosts:
                failures.extend(host.failures)
                for text in host.addresses[:MAX_ADDRESSES_PER_HOST]:
                    try:
                        ip = as_address(text)
                    except ValueError:
                        continue
                    if str(ip) not in items:
                        if mx_addresses >= MAX_MX_ADDRESSES:
                            continue
                        mx_addresses += 1
                    add_ip(ip, f"address of MX {host.name}")

        # The lists' verdicts on themselves.
        for lst in lists.values():
            self._judge_list(lst)

        # Every item's answers; then the TXT reasons of the listings, all at once.
        subjects = ([domain_item] if domain_zones else []) + list(items.values())
        verdicts: dict[tuple[str, str], tuple[DnsAnswer, Verdict]] = {}
        for item in subjects:
            kind = "domain" if item.ip is None else str(item.ip.version)
            for zone, future in item.asked.items():
                lst = lists[(zone, kind)]
                answer = future.result()
                if not answer.ok:
                    if lst.problem is not None:
                        continue  # an unusable list's answers are not used, failed or not
                    if answer.rcode == REFUSED_RCODE:
                        lst.item_problems.append(f"for {item.name}: {_refused(answer.name)}")
                    else:
                        failures.append(answer)
                    continue
                verdict = classify(answer.records, zone)
                if not verdict.usable and lst.problem is None:
                    lst.item_problems.append(f"for {item.name}: {verdict.why}")
                verdicts[(item.name, zone)] = (answer, verdict)
        reasons = {
            key: dns.submit(answer.name, "TXT")
            for key, (answer, verdict) in verdicts.items()
            if verdict.listed and self._usable(lists, key[1], items.get(key[0]))
        }

        for lst in lists.values():
            if not lst.used:
                continue  # asked early, before the MX addresses were known; nothing needed it
            if lst.failure is not None:
                failures.append(lst.failure)
            finding = self._unusable(lst, dns)
            if finding is not None:
                yield finding

        for item in subjects:
            kind = "domain" if item.ip is None else str(item.ip.version)
            clean: list[str] = []
            listed = False
            not_judged: list[str] = []
            for zone in item.asked:
                lst = lists[(zone, kind)]
                got = verdicts.get((item.name, zone))
                if got is None or lst.problem is not None or lst.failure is not None:
                    not_judged.append(zone)
                    continue
                answer, verdict = got
                if not verdict.usable:
                    not_judged.append(zone)
                elif verdict.listed:
                    listed = True
                    yield self._listed(item, zone, answer, verdict, reasons[(item.name, zone)], dns)
                else:
                    clean.append(zone)
            if clean and not listed:
                yield self._clean(item, clean, not_judged, defaults, kind, dns)
        if failures:
            failures[0].raise_for_failure()

    # --- judgements ---------------------------------------------------------------------------

    @staticmethod
    def _usable(lists: dict[tuple[str, str], _List], zone: str, item: _Item | None) -> bool:
        kind = "domain" if item is None or item.ip is None else str(item.ip.version)
        lst = lists[(zone, kind)]
        return lst.problem is None and lst.failure is None

    @staticmethod
    def _judge_list(lst: _List) -> None:
        listed_answer, clean_answer = (f.result() for f in lst.asked)
        for answer in (listed_answer, clean_answer):
            if answer.rcode == REFUSED_RCODE:
                lst.problem = _refused(answer.name)
                lst.evidence = {f"A {answer.name}": REFUSED_RCODE}
                return
        for answer in (listed_answer, clean_answer):
            if not answer.ok:
                lst.failure = answer
                return
        listed = classify(listed_answer.records, lst.zone)
        clean = classify(clean_answer.records, lst.zone)
        lst.evidence = {
            f"A {lst.tests[0]}": ", ".join(listed.codes) or f"none ({listed_answer.rcode})",
            f"A {lst.tests[1]}": ", ".join(clean.codes) or f"none ({clean_answer.rcode})",
        }
        lst.problem = list_problem(listed, clean, lst.tests[0], lst.tests[1])
        lst.no_ipv6 = (
            lst.subject.endswith("(IPv6)")
            and lst.problem is not None
            and listed.kind == NOT_LISTED
            and clean.kind == NOT_LISTED
        )

    def _unusable(self, lst: _List, dns: DnsClient) -> Finding | None:
        problem = lst.problem
        if problem is None and lst.item_problems:
            problem = lst.item_problems[0]
            if len(lst.item_problems) > 1:
                problem += f" (and {len(lst.item_problems) - 1} more answers like it)"
        if problem is None:
            return None
        evidence = {"list": lst.zone, "problem": problem, **lst.evidence}
        severity = Severity.WARN
        if lst.no_ipv6 and not lst.item_problems:
            severity = Severity.INFO
            problem = "it does not serve IPv6 (no IPv6 test entry): IPv6 addresses not judged"
            evidence["problem"] = problem
        return self.finding(
            "DNSBL_UNUSABLE",
            severity,
            f"blocklist {lst.subject} cannot be used: {problem}",
            evidence=evidence,
            reproduce=f"{dns.dig(lst.tests[0], 'A')}; {dns.dig(lst.tests[1], 'A')}",
            subject=lst.subject,
        )

    def _listed(
        self,
        item: _Item,
        zone: str,
        answer: DnsAnswer,
        verdict: Verdict,
        reason_future: Future[DnsAnswer],
        dns: DnsClient,
    ) -> Finding:
        txt = reason_future.result()
        if not txt.ok:
            reason = f"TXT lookup failed ({txt.rcode})"
        elif not txt.records:
            reason = "none given (no TXT record)"
        else:
            reason = reason_text(txt.texts())
        codes = ", ".join(verdict.codes)
        evidence = {
            "list": zone,
            "listed": item.name,
            "role": item.role,
            "query": answer.name,
            "return_codes": codes,
            "reason": reason,
        }
        known = KNOWN_LISTS.get(zone)
        if known is not None and known.delist:
            evidence["delisting"] = known.delist
        what = "the domain" if item.ip is None else item.role
        return self.finding(
            "DNSBL_LISTED",
            Severity.FAIL,
            f"{item.name} ({what}) is listed on {zone}: {codes}; reason: {reason}",
            evidence=evidence,
            reproduce=f"{dns.dig(answer.name, 'A')}; {dns.dig(answer.name, 'TXT')}",
            subject=f"{item.name} on {zone}",
        )

    def _clean(
        self,
        item: _Item,
        clean: list[str],
        not_judged: list[str],
        defaults: bool,
        kind: str,
        dns: DnsClient,
    ) -> Finding:
        what = "the domain" if item.ip is None else item.role
        noun = "domain" if kind == "domain" else "IP"
        evidence = {
            "lists": ", ".join(clean),
            "chosen": "the public defaults (no list named)" if defaults else "the target's lists",
            "role": item.role,
        }
        if not_judged:
            evidence["not_judged"] = ", ".join(not_judged)
        return self.finding(
            "DNSBL_CLEAN",
            Severity.INFO,
            f"{item.name} ({what}) is on none of {len(clean)} {noun} blocklist(s) asked",
            evidence=evidence,
            reproduce=dns.dig(item.query_name(clean[0]), "A"),
            subject=item.name,
        )


def _refused(name: str) -> str:
    return (
        f"the resolver answered REFUSED for {name}: it does not ask this list (a server that "
        "only answers for its own zones, or a resolver the list or its operator blocks)"
    )


def _sending_ips(target: Target) -> list[IPAddress]:
    """The declared sending IPs (IPv4-mapped as IPv4), each once; ProbeConfigError naming one
    that is not an address."""
    out: list[IPAddress] = []
    for value in target.sending_ips:
        text = str(value).strip()
        try:
            if "%" in text:
                raise ValueError("scoped address")
            ip = as_address(text)
        except ValueError:
            raise ProbeConfigError(f"sending IP {value!r} is not an IPv4 or IPv6 address") from None
        if ip not in out:
            out.append(ip)
    return out


__all__ = ["DNSBL_CLEAN", "DNSBL_LISTED", "DNSBL_UNUSABLE", "DnsBlocklists", "chosen_lists"]
