"""dns.spf: the domain's SPF policy (RFC 7208), walked through the resolver door.

What is judged, and how:
- The apex TXT RRset must hold exactly one `v=spf1` record (character-strings of a TXT record
  joined without separator); its syntax, and that of every record reached through include and
  redirect, is checked in full by `probes.parse.spf`.
- The walk is level by level: every include/redirect target of the records of one level, and
  the A/AAAA, MX and exists lookups their terms need, are asked together (`query_many`), so
  the walk takes as many round trips as the policy is deep, not as it is long.
- The RFC 7208 §4.6.4 count is the number of include, a, mx, ptr and exists mechanisms and
  redirect modifiers a `check_host()` can evaluate, over the whole tree: terms after the first
  `all` never run and redirect is ignored when `all` is present (§5.1), as the OpenSPF suite's
  "Processing limits" cases count. It is the count for a client that matches nothing (the
  most a receiver will do). An `mx` with more than 10 MX records is a permerror of its own.
- Void lookups (§4.6.4 limits the "terms" whose queries return NOERROR with no answer, or
  NXDOMAIN) are counted per term over the same tree, for an IPv4 client (A lookups) and an
  IPv6 client (AAAA lookups); an mx is void when its MX query is, or when none of its hosts
  has an address of the client's family.
- Targets built from macros that need the client or sender (%{i}, %{s}, %{l}, %{h}, %{p},
  %{v}) are counted but not followed; %{d} and %{o} are expanded.
- Hostile input is bounded: after MAX_FOLLOWED counted terms the walk stops following targets
  and reports the count as "more than N".
- Each declared sending IP (`target.sending_ips`) is evaluated with pyspf through the door
  (`probes.lookup.spf`), as MAIL FROM postmaster@<domain> with HELO <domain>, after the walk
  has filled the run's cache.

Failure policy: a failed apex TXT lookup is an ERROR outcome. A failed secondary lookup
(include target, a/mx/exists, an IP evaluation that ends in temperror) leaves the findings that
could be judged and then raises DnsError/DnsTimeout naming the question ("could not fully
test"). A CNAME loop is no data (pyspf and the OpenSPF suite treat it so).

Codes:
- SPF_MISSING [fail], SPF_MULTIPLE_RECORDS [fail] (also for an include/redirect target),
  SPF_SYNTAX_ERROR [fail] (evidence: the bad terms; also for included records)
- SPF_TOO_MANY_LOOKUPS [fail] more than 10 DNS-querying terms, or an mx with more than 10 MX
  records (evidence: count, the include tree)
- SPF_TOO_MANY_VOID_LOOKUPS [fail] more than 2 void lookups for an IPv4 client
- SPF_TOO_MANY_VOID_LOOKUPS_IPV6 [warn when a declared sending IP is IPv6, else info] more
  than 2 only for an IPv6 client: terms naming hosts without AAAA (an IPv6 client not matched
  before gets permerror instead of fail)
- SPF_INCLUDE_LOOP [fail], SPF_INCLUDE_MISSING [fail] include/redirect target without SPF
- SPF_PERMISSIVE_ALL [fail] `+all`/`?all` deciding the domain's result (the record or the top
  record reached by redirect), or a `+all` in an included record (it passes every client)
- SPF_NO_ALL [warn] the top record (after redirects) has neither all nor redirect
- SPF_PTR_MECHANISM [warn] a record uses `ptr` (RFC 7208 §5.5: do not use)
- SPF_IP_NOT_AUTHORIZED [fail] a declared sending IP evaluates to anything but pass
- SPF_IP_AUTHORIZED [info] a declared sending IP evaluates to pass (the result per IP)
- SPF_LOOKUP_COUNT [info] a complete walk within the limits: the count and the tree; warn or
  fail when the count falls outside the operator's `--spf-lookups-warn`/`-crit` range
- SPF_RECORD [info] the apex record parsed (subject: the domain): the record, the all that
  decides the domain's result, the include/redirect targets and the resolved mechanisms of
  the whole tree (a/mx/ptr/exists with the domain they apply to, a and mx with the addresses
  found; each list sorted), so a change of policy is a change of evidence
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from probes.codes import Code, Fix, declare
from probes.errors import DnsError, ProbeConfigError
from probes.lookup.spf import SpfVerdict, evaluate
from probes.model import Finding, Severity, Target, Thresholds
from probes.net import Net
from probes.net.dns import (
    BADNAME,
    CNAME_LOOP,
    TIMEOUT,
    DnsAnswer,
    DnsClient,
    DnsTimeout,
    normalize_name,
)
from probes.parse import spf as spfparse
from probes.parse.nagios_range import parse_range
from probes.probe import BaseProbe

MAX_LOOKUPS = 10  # RFC 7208 §4.6.4
MAX_VOID_LOOKUPS = 2  # RFC 7208 §4.6.4
MAX_MX_NAMES = 10  # RFC 7208 §4.6.4: an mx with more MX records is a permerror
MAX_FOLLOWED = 30  # counted terms after which targets are no longer looked up
MAX_EVIDENCE = 1500  # characters of a tree or record quoted in evidence
MAX_ERRORS_SHOWN = 5
MAX_PARALLEL_EVALUATIONS = 8


# --- the walk -------------------------------------------------------------------------------


@dataclass(eq=False)
class Node:
    """One record in the include/redirect tree."""

    domain: str
    via: str  # "apex", "include" or "redirect"
    term: str | None  # the term of the parent record that leads here
    parent: Node | None = None
    passes: bool = True  # a pass of this record is a pass of the apex (no -/~/? include above)
    status: str = "pending"  # pending ok missing multiple syntax failed loop capped macro
    answer: DnsAnswer | None = None
    texts: tuple[str, ...] = ()  # the v=spf1 strings found
    record: spfparse.SpfRecord | None = None
    lookups: int = 0  # DNS-querying terms of this record
    children: list[Node] = field(default_factory=list)

    def path(self) -> list[Node]:
        nodes: list[Node] = []
        node: Node | None = self
        while node is not None:
            nodes.append(node)
            node = node.parent
        return nodes[::-1]

    def chain(self) -> str:
        """apex > include:a > redirect=b"""
        return " > ".join(n.domain if n.via == "apex" else _hop(n) for n in self.path())

    def subtree_lookups(self) -> int:
        return self.lookups + sum(child.subtree_lookups() for child in self.children)


def _hop(node: Node) -> str:
    return f"include:{node.domain}" if node.via == "include" else f"redirect={node.domain}"


@dataclass
class AuxLookup:
    """The lookups one term needs besides TXT: `kind` "a", "exists", "mx", "mxhosts" (A and
    AAAA of every host of an mx), or "exp" (fetched only so evaluation finds it cached)."""

    kind: str
    names: tuple[str, ...]
    node: Node
    term: str
    label: str = ""  # what the lookups are for, in evidence
    answers: tuple[DnsAnswer, ...] = ()

    @property
    def questions(self) -> list[tuple[str, str]]:
        return [(name, rdtype) for name in self.names for rdtype in _AUX_TYPES[self.kind]]


@dataclass
class Walk:
    domain: str
    root: Node
    count: int = 0  # DNS-querying terms counted (RFC 7208 §4.6.4)
    truncated: bool = False  # some targets were not followed (MAX_FOLLOWED)
    void4: list[str] = field(default_factory=list)  # void lookups for an IPv4 client
    void6: list[str] = field(default_factory=list)  # ... for an IPv6 client
    mx_over: list[tuple[Node, str, int]] = field(default_factory=list)  # (node, term, n MX)
    failures: list[DnsAnswer] = field(default_factory=list)
    rounds: int = 0
    # (node, term as written) -> the addresses an a or mx term resolved to
    resolved: dict[tuple[int, str], list[str]] = field(default_factory=dict)

    def nodes(self) -> Iterator[Node]:
        stack = [self.root]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))


def _is_failure(answer: DnsAnswer) -> bool:
    return not answer.ok and answer.rcode not in (CNAME_LOOP, BADNAME)


def _is_void(answer: DnsAnswer) -> bool:
    """RFC 7208 void lookup (a CNAME loop is no data too; an invalid name is never asked)."""
    return answer.void or answer.rcode == CNAME_LOOP


def walk_spf(door: DnsClient, domain: str) -> Walk:
    """Fetch and parse the SPF tree of `domain`, level by level (see the module docstring)."""
    walk = Walk(domain=domain, root=Node(domain=domain, via="apex", term=None))
    pending_nodes = [walk.root]
    pending_aux: list[AuxLookup] = []
    while pending_nodes or pending_aux:
        walk.rounds += 1
        questions: list[tuple[str, str]] = [(n.domain, "TXT") for n in pending_nodes]
        for aux in pending_aux:
            questions.extend(aux.questions)
        answers = iter(door.query_many(questions))
        for node in pending_nodes:
            node.answer = next(answers)
        for aux in pending_aux:
            aux.answers = tuple(next(answers) for _ in aux.questions)
        next_nodes: list[Node] = []
        next_aux: list[AuxLookup] = []
        for node in pending_nodes:
            _take_record(walk, node, next_nodes, next_aux)
        for aux in pending_aux:
            _take_aux(walk, aux, next_aux)
        pending_nodes, pending_aux = next_nodes, next_aux
    return walk


_AUX_TYPES = {
    "a": ("A", "AAAA"),
    "mxhosts": ("A", "AAAA"),
    "exists": ("A",),
    "mx": ("MX",),
    "exp": ("TXT",),
}


def _take_record(walk: Walk, node: Node, next_nodes: list[Node], next_aux: list[AuxLookup]):
    answer = node.answer
    assert answer is not None
    if _is_failure(answer):
        node.status = "failed"
        walk.failures.append(answer)
        return
    if node.via != "apex" and _is_void(answer):
        walk.void4.append(f"TXT {node.domain}")
        walk.void6.append(f"TXT {node.domain}")
    raws = [b"".join(parts) for parts in answer.records] if answer.ok else []
    spf_raws = [raw for raw in raws if spfparse.is_spf(raw)]
    node.texts = tuple(raw.decode("utf-8", errors="replace") for raw in spf_raws)
    if not spf_raws:
        node.status = "missing"
        return
    if len(spf_raws) > 1:
        node.status = "multiple"
        return
    node.record = spfparse.parse(node.texts[0])
    if not node.record.ok:
        node.status = "syntax"
        return
    node.status = "ok"
    exp = node.record.modifier("exp")
    if exp is not None:  # pyspf fetches exp= of every record it evaluates: have it cached
        target = spfparse.expand_static(exp.value, domain=node.domain, original=walk.domain)
        if target:
            next_aux.append(AuxLookup("exp", (target,), node, exp.text))
    for term in node.record.lookup_terms:
        walk.count += 1
        node.lookups += 1
        followed = walk.count <= MAX_FOLLOWED
        if not followed:
            walk.truncated = True
        if isinstance(term, spfparse.Modifier):  # redirect
            _add_child(
                walk, node, "redirect", term.value, term.text, node.passes, followed, next_nodes
            )
            continue
        if term.name == "include":
            passes = node.passes and term.qualifier == "+"
            _add_child(
                walk,
                node,
                "include",
                term.domain_spec or "",
                term.text,
                passes,
                followed,
                next_nodes,
            )
        elif term.name in ("a", "mx", "exists") and followed:
            spec = term.domain_spec
            target = (
                node.domain
                if spec is None
                else spfparse.expand_static(spec, domain=node.domain, original=walk.domain)
            )
            if target:
                next_aux.append(AuxLookup(term.name, (target,), node, term.text))


def _add_child(
    walk: Walk,
    node: Node,
    via: str,
    spec: str,
    text: str,
    passes: bool,
    followed: bool,
    next_nodes: list[Node],
) -> None:
    target = spfparse.expand_static(spec, domain=node.domain, original=walk.domain)
    child = Node(domain=target or spec, via=via, term=text, parent=node, passes=passes)
    node.children.append(child)
    if target is None:
        child.status = "macro"
    elif any(n.domain == target for n in node.path()):
        child.status = "loop"
    elif not followed:
        child.status = "capped"
    else:
        next_nodes.append(child)


def _take_aux(walk: Walk, aux: AuxLookup, next_aux: list[AuxLookup]) -> None:
    """Void lookups are counted per term (RFC 7208 §4.6.4 limits the "terms" whose DNS
    queries come back empty), separately for an IPv4 client (A) and an IPv6 client (AAAA)."""
    if aux.kind == "exp":
        return  # exp never counts (§4.6.4) and its failures are ignored (§6.2)
    for answer in aux.answers:
        if _is_failure(answer):
            walk.failures.append(answer)
    if aux.kind in ("a", "mxhosts"):
        walk.resolved.setdefault((id(aux.node), aux.term), []).extend(
            str(r) for a in aux.answers if a.ok for r in a.records
        )
        v4 = [a for a in aux.answers if a.rdtype == "A"]
        v6 = [a for a in aux.answers if a.rdtype == "AAAA"]
        what = aux.names[0] if aux.kind == "a" else aux.label
        if all(_is_void(a) for a in v4):
            walk.void4.append(f"A {what}")
        if all(_is_void(a) for a in v6):
            walk.void6.append(f"AAAA {what}")
    elif aux.kind == "exists":
        if _is_void(aux.answers[0]):
            walk.void4.append(f"A {aux.names[0]}")
            walk.void6.append(f"A {aux.names[0]}")
    elif aux.kind == "mx":
        (mx,) = aux.answers
        if _is_void(mx):
            walk.void4.append(f"MX {aux.names[0]}")
            walk.void6.append(f"MX {aux.names[0]}")
        if not mx.ok:
            return
        if len(mx.records) > MAX_MX_NAMES:
            walk.mx_over.append((aux.node, aux.term, len(mx.records)))
            return
        hosts = tuple(dict.fromkeys(host for _pref, host in sorted(mx.records) if host != "."))
        if hosts:
            shown = ", ".join(hosts[:3]) + (", …" if len(hosts) > 3 else "")
            label = f"MX hosts of {aux.names[0]} ({shown})"
            next_aux.append(AuxLookup("mxhosts", hosts, aux.node, aux.term, label))


# --- rendering ------------------------------------------------------------------------------


def _cut(text: str, limit: int = MAX_EVIDENCE) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_tree(node: Node) -> str:
    """`example.com=3 (include:a.example=1 (include:b.example=0), redirect=c=LOOP)`."""
    label = node.domain if node.via == "apex" else _hop(node)
    if node.status == "ok":
        text = f"{label}={node.lookups}"
    else:
        text = f"{label}={_STATUS_LABEL.get(node.status, node.status)}"
    if node.children:
        text += " (" + ", ".join(render_tree(c) for c in node.children) + ")"
    return text


_STATUS_LABEL = {
    "missing": "NO SPF RECORD",
    "multiple": "MULTIPLE SPF RECORDS",
    "syntax": "SYNTAX ERROR",
    "failed": "DNS FAILURE",
    "loop": "LOOP",
    "capped": "not followed (cap)",
    "macro": "not followed (macro)",
    "pending": "not asked",
}


MAX_ADDRESSES_SHOWN = 4  # addresses shown per a/mx term in SPF_RECORD


def _resolved_term(walk: Walk, node: Node, mech: spfparse.Mechanism) -> str:
    """A mechanism as it applies: the domain an a/mx/ptr without a domain refers to, and
    the addresses an a or mx term resolved to (sorted)."""
    text = mech.text
    if mech.domain_spec is None and mech.name in ("a", "mx", "ptr"):
        at = text.lower().find(mech.name) + len(mech.name)
        text = f"{text[:at]}:{node.domain}{text[at:]}"
    if mech.name in ("a", "mx"):
        addresses = sorted(set(walk.resolved.get((id(node), mech.text), ())))
        if addresses:
            shown = addresses[:MAX_ADDRESSES_SHOWN]
            more = len(addresses) - len(shown)
            text += f" ({' '.join(shown)}{f' +{more} more' if more else ''})"
        elif (id(node), mech.text) in walk.resolved:
            text += " (no address)"
    return text


def spf_state(walk: Walk) -> dict[str, str]:
    """SPF_RECORD's evidence: deterministic (sets sorted) and bounded."""
    root = walk.root
    assert root.record is not None
    mechanisms: set[str] = set()
    targets: set[str] = set()
    for node in walk.nodes():
        if node is not root:
            targets.add(f"{node.via}:{node.domain}")
        if node.status != "ok" or node.record is None:
            continue
        for term in node.record.evaluated_terms:
            if isinstance(term, spfparse.Mechanism) and term.name not in ("include", "all"):
                mechanisms.add(_resolved_term(walk, node, term))
    top: Node = root
    while True:
        nxt = next((c for c in top.children if c.via == "redirect" and c.status == "ok"), None)
        if nxt is None:
            break
        top = nxt
    assert top.record is not None
    deciding = top.record.all
    return {
        "record": _cut(root.texts[0], 500),
        "all": (
            deciding.text
            if deciding is not None
            else ("none" if top.record.modifier("redirect") is None else "none (redirect)")
        )
        + ("" if top is root else f" (at {top.domain})"),
        "includes": _cut(", ".join(sorted(targets)), 500) or "none",
        "mechanisms": _cut(", ".join(sorted(mechanisms)), 1000) or "none",
    }


def _count_text(walk: Walk) -> str:
    if walk.truncated:
        return f"more than {MAX_FOLLOWED}"
    return str(walk.count)


# --- the probe ------------------------------------------------------------------------------


# Both lookup-count codes are fixed the same way.
_FEWER_LOOKUPS = Fix(
    "Bring the number of DNS-querying terms (`include`, `a`, `mx`, `ptr`, `exists`, "
    "`redirect`, counted through every include) down to 10 or fewer: replace `a` and `mx` "
    "by the `ip4:`/`ip6:` ranges they stand for, remove includes of services you no longer "
    "use, and ask a provider whose include is large for a smaller one. The evidence has the "
    "include tree with each branch's count. Check with `dig +short TXT` on each include.",
    {"zone": '<domain>. 3600 IN TXT "v=spf1 ip4:<ipv4> ip6:<ipv6> include:<provider> -all"'},
)


class DnsSpf(BaseProbe):
    id = "dns.spf"
    description = (
        "SPF: one v=spf1 TXT, RFC 7208 syntax, lookup and void-lookup limits across includes "
        "and redirect, loops, missing targets, all/ptr; pyspf verdict for each sending IP"
    )
    codes = declare(
        Code(
            "SPF_MISSING",
            "no v=spf1 TXT record",
            Severity.FAIL,
            fix=Fix(
                "Publish one TXT record starting with `v=spf1` at the domain, listing every host "
                "that sends its mail (`mx` for the MX hosts, `ip4:`/`ip6:` for addresses, "
                "`include:` for a provider) and ending with `-all` (or `~all` while you check "
                "the list). A domain that sends no mail publishes `v=spf1 -all`. Check with "
                "`dig +short TXT <domain>`.",
                {
                    "zone": '<domain>. 3600 IN TXT "v=spf1 mx ip4:<ipv4> -all"\n'
                    "; a domain that sends no mail:\n"
                    '; <domain>. 3600 IN TXT "v=spf1 -all"',
                },
            ),
        ),
        Code(
            "SPF_MULTIPLE_RECORDS",
            "more than one v=spf1 record (at the domain or an include/redirect target)",
            Severity.FAIL,
            fix=Fix(
                "Merge the `v=spf1` TXT records at the name the finding gives into one record "
                "with all their mechanisms, and delete the others: receivers treat two records "
                "as a permanent error (RFC 7208 §4.5). Other TXT records (verification tokens) "
                "may stay. Check with `dig +short TXT <domain>`: one line starts with v=spf1.",
                {"zone": '<domain>. 3600 IN TXT "v=spf1 mx ip4:<ipv4> include:<provider> -all"'},
            ),
        ),
        Code(
            "SPF_SYNTAX_ERROR",
            "an SPF record breaks the RFC 7208 syntax",
            Severity.FAIL,
            fix=Fix(
                "Correct the term the finding names: mechanisms are `all`, `include:`, `a`, "
                "`mx`, `ptr`, `ip4:`, `ip6:`, `exists:`, with an optional `+ - ~ ?` qualifier; "
                "modifiers are `redirect=` and `exp=`, each at most once; terms are separated "
                "by single spaces; `ip4:`/`ip6:` take an address or a CIDR range. A record "
                "longer than 255 characters is split into several quoted strings of one TXT "
                "record. Check with `dig +short TXT <domain>`.",
                {
                    "zone": '<domain>. 3600 IN TXT "v=spf1 mx ip4:192.0.2.0/24 '
                    'ip6:2001:db8::/32 -all"'
                },
            ),
        ),
        Code(
            "SPF_TOO_MANY_LOOKUPS",
            "more than 10 DNS-querying terms (RFC 7208 §4.6.4)",
            Severity.FAIL,
            fix=_FEWER_LOOKUPS,
        ),
        Code(
            "SPF_TOO_MANY_VOID_LOOKUPS",
            "more than 2 void lookups for an IPv4 client",
            Severity.FAIL,
            fix=Fix(
                "Remove or correct the terms whose lookups find nothing (the evidence lists "
                "them): an `include:` or `a:`/`mx:` of a name that no longer exists or has no "
                "record of that type. Receivers stop with a permanent error after 2 such "
                "lookups (RFC 7208 §4.6.4). Check each name with `dig +short TXT <name>` or "
                "`dig +short A <name>`.",
                {"zone": '<domain>. 3600 IN TXT "v=spf1 mx ip4:<ipv4> include:<provider> -all"'},
            ),
        ),
        Code(
            "SPF_TOO_MANY_VOID_LOOKUPS_IPV6",
            "more than 2 void lookups only for an IPv6 client (warn when sending over IPv6)",
            Severity.INFO,
            fix=Fix(
                "For an IPv6 client the `a` and `mx` terms look up AAAA records, and names with "
                "only A records answer nothing (a void lookup). Publish AAAA records for the "
                "hosts those terms name, or replace the terms by `ip4:`/`ip6:` ranges. Check "
                "with `dig +short AAAA <host>` for each host the evidence lists.",
                {
                    "zone": "<host>. 3600 IN AAAA <ipv6>\n"
                    "; or, instead of a and mx terms:\n"
                    '<domain>. 3600 IN TXT "v=spf1 ip4:<ipv4> ip6:<ipv6> -all"',
                },
            ),
        ),
        Code(
            "SPF_INCLUDE_LOOP",
            "include/redirect targets form a loop",
            Severity.FAIL,
            fix=Fix(
                "Remove the `include:` or `redirect=` that leads back to a record already on "
                "the path (the evidence shows the chain). A loop is a permanent error for every "
                "receiver. Check with `dig +short TXT` on each name of the chain.",
                {"zone": '<domain>. 3600 IN TXT "v=spf1 mx include:<provider> -all"'},
            ),
        ),
        Code(
            "SPF_INCLUDE_MISSING",
            "an include or redirect target has no SPF record",
            Severity.FAIL,
            fix=Fix(
                "Correct the `include:` or `redirect=` target the finding names (a typo, or a "
                "provider that moved its record), or remove it if you no longer use that "
                "sender. An include of a name without an SPF record is a permanent error. "
                "Check with `dig +short TXT <target>`: it must show a `v=spf1` record.",
                {"zone": '<domain>. 3600 IN TXT "v=spf1 mx include:<provider> -all"'},
            ),
        ),
        Code(
            "SPF_PERMISSIVE_ALL",
            "+all or ?all decides the domain's result",
            Severity.FAIL,
            fix=Fix(
                "End the record with `-all` (or `~all` while you check that every sender is "
                "listed): `+all` authorizes the whole Internet and `?all` says nothing. List "
                "your real senders before it. Check with `dig +short TXT <domain>`.",
                {"zone": '<domain>. 3600 IN TXT "v=spf1 mx ip4:<ipv4> -all"'},
            ),
        ),
        Code(
            "SPF_NO_ALL",
            "the top record has neither all nor redirect",
            Severity.WARN,
            fix=Fix(
                "Add `-all` (or `~all`) as the last term, so mail from hosts the record does not "
                "list fails instead of getting neutral. Check with `dig +short TXT <domain>`.",
                {"zone": '<domain>. 3600 IN TXT "v=spf1 mx ip4:<ipv4> -all"'},
            ),
        ),
        Code(
            "SPF_PTR_MECHANISM",
            "a record uses the deprecated ptr mechanism",
            Severity.WARN,
            fix=Fix(
                "Replace `ptr` by the addresses of the hosts it was meant to match (`ip4:`, "
                "`ip6:`) or by `a:<host>`: `ptr` is slow, unreliable and deprecated (RFC 7208 "
                "§5.5), and some receivers ignore it. Check with `dig +short TXT <domain>`.",
                {"zone": '<domain>. 3600 IN TXT "v=spf1 mx ip4:<ipv4> ip6:<ipv6> -all"'},
            ),
        ),
        Code(
            "SPF_IP_NOT_AUTHORIZED",
            "a declared sending IP does not evaluate to pass",
            Severity.FAIL,
            fix=Fix(
                "Add the sending address to the SPF record (`ip4:` or `ip6:`, or an `include:` "
                "of the provider that owns it), before the `all` term. If the address should "
                "not send the domain's mail, remove it from --sending-ip. Check with "
                "`dig +short TXT <domain>`, then run the probe again.",
                {"zone": '<domain>. 3600 IN TXT "v=spf1 mx ip4:<sending-ip> -all"'},
            ),
        ),
        Code("SPF_IP_AUTHORIZED", "a declared sending IP evaluates to pass", Severity.INFO),
        Code(
            "SPF_RECORD",
            "the SPF policy seen: the record, its all, include targets, resolved mechanisms",
            Severity.INFO,
        ),
        Code(
            "SPF_LOOKUP_COUNT",
            "a complete walk within the limits: the lookup count and the include tree",
            Severity.INFO,
            fix=_FEWER_LOOKUPS,
        ),
    )

    def run(self, target: Target, net: Net) -> Iterator[Finding]:
        domain = normalize_name(target.domain)
        door = net.dns
        ips = self._sending_ips(target)
        walk = walk_spf(door, domain)
        root = walk.root
        assert root.answer is not None
        if not root.answer.ok and root.answer.rcode != CNAME_LOOP:
            root.answer.raise_for_failure()  # the primary lookup failed: ERROR outcome
        dig = door.dig(domain, "TXT")
        yield from self._record_findings(walk, door, dig)
        if root.status == "ok":
            yield self.finding(
                "SPF_RECORD",
                Severity.INFO,
                f"SPF policy of {domain}: {_cut(root.texts[0], 200)}",
                evidence=spf_state(walk),
                reproduce=dig,
                subject=domain,
            )
            ipv6_senders = any(ipaddress.ip_address(ip).version == 6 for ip in ips)
            yield from self._limit_findings(walk, dig, ipv6_senders, target.thresholds)
            yield from self._all_findings(walk, door)
        verdicts = self._evaluate(door, domain, ips)
        failures = list(walk.failures)
        for verdict in verdicts:
            if verdict.result == "temperror":
                if verdict.failure is not None:
                    failures.append(verdict.failure)
                else:
                    raise DnsError(f"SPF evaluation of {verdict.ip}: {verdict.explanation}")
                continue
            if not verdict.passed:
                yield self._not_authorized(verdict, domain, dig)
            else:
                yield self._authorized(verdict, domain, dig)
        if failures:
            first = failures[0]
            text = (
                f"could not fully test SPF of {domain}: {first.rdtype} {first.name}: "
                f"{first.rcode}" + (f" ({first.detail})" if first.detail else "")
            )
            if first.rcode == TIMEOUT:
                raise DnsTimeout(text)
            raise DnsError(text)

    # --- inputs ---------------------------------------------------------------------------

    @staticmethod
    def _sending_ips(target: Target) -> list[str]:
        ips = []
        for ip in target.sending_ips:
            try:
                ips.append(str(ipaddress.ip_address(ip.strip())))
            except ValueError:
                raise ProbeConfigError(f"sending IP {ip!r} is not an IP address") from None
        return ips

    # --- record findings ------------------------------------------------------------------

    def _record_findings(self, walk: Walk, door: DnsClient, dig: str) -> Iterator[Finding]:
        for node in walk.nodes():
            where = {"domain": node.domain}
            if node.via != "apex":
                where["chain"] = node.chain()
            node_dig = door.dig(node.domain, "TXT")
            if node.status == "missing" and node.via == "apex":
                assert node.answer is not None
                yield self.finding(
                    "SPF_MISSING",
                    Severity.FAIL,
                    f"{node.domain} publishes no SPF record (no TXT record starting v=spf1)",
                    evidence={
                        "domain": node.domain,
                        "rcode": node.answer.rcode,
                        "txt_records": str(len(node.answer.records)),
                    },
                    reproduce=dig,
                    subject=node.domain,
                )
            elif node.status == "missing":
                assert node.answer is not None
                yield self.finding(
                    "SPF_INCLUDE_MISSING",
                    Severity.FAIL,
                    f"{node.via} target {node.domain} has no SPF record: evaluation reaching "
                    "it ends in permerror",
                    evidence={
                        **where,
                        "term": node.term or "",
                        "rcode": node.answer.rcode,
                        "txt_records": str(len(node.answer.records)),
                    },
                    reproduce=node_dig,
                    subject=node.domain,
                )
            elif node.status == "multiple":
                yield self.finding(
                    "SPF_MULTIPLE_RECORDS",
                    Severity.FAIL,
                    f"{node.domain} publishes {len(node.texts)} SPF records (RFC 7208 §4.5: "
                    "permerror)",
                    evidence={
                        **where,
                        "count": str(len(node.texts)),
                        "records": _cut(" | ".join(spfparse.shown(t) for t in node.texts)),
                    },
                    reproduce=node_dig,
                    subject=node.domain,
                )
            elif node.status == "syntax":
                assert node.record is not None
                errors = node.record.errors
                shown = "; ".join(str(e) for e in errors[:MAX_ERRORS_SHOWN])
                if len(errors) > MAX_ERRORS_SHOWN:
                    shown += f"; … {len(errors) - MAX_ERRORS_SHOWN} more"
                yield self.finding(
                    "SPF_SYNTAX_ERROR",
                    Severity.FAIL,
                    f"SPF record of {node.domain} has a syntax error in "
                    f"'{spfparse.shown(errors[0].term)}': {errors[0].reason}",
                    evidence={
                        **where,
                        "term": spfparse.shown(errors[0].term),
                        "errors": _cut(shown),
                        "error_count": str(len(errors)),
                        "record": _cut(spfparse.shown(node.texts[0])),
                    },
                    reproduce=node_dig,
                    subject=node.domain,
                )
            elif node.status == "loop":
                yield self.finding(
                    "SPF_INCLUDE_LOOP",
                    Severity.FAIL,
                    f"{node.term} in {node.parent.domain if node.parent else '?'} leads back "
                    f"to {node.domain}: evaluation loops until the lookup limit (permerror)",
                    evidence={"chain": node.chain(), "term": node.term or ""},
                    reproduce=node_dig,
                    subject=node.domain,
                )
            elif node.status == "ok" and any(
                isinstance(t, spfparse.Mechanism) and t.name == "ptr"
                for t in node.record.evaluated_terms  # type: ignore[union-attr]
            ):
                terms = [
                    t.text
                    for t in node.record.evaluated_terms  # type: ignore[union-attr]
                    if isinstance(t, spfparse.Mechanism) and t.name == "ptr"
                ]
                yield self.finding(
                    "SPF_PTR_MECHANISM",
                    Severity.WARN,
                    f"SPF record of {node.domain} uses the ptr mechanism (RFC 7208 §5.5: "
                    "slow, unreliable, should not be used)",
                    evidence={**where, "terms": " ".join(terms)},
                    reproduce=node_dig,
                    subject=node.domain,
                )

    def _limit_findings(
        self, walk: Walk, dig: str, ipv6_senders: bool, thresholds: Thresholds | None = None
    ) -> Iterator[Finding]:
        tree = _cut(render_tree(walk.root))
        if walk.count > MAX_LOOKUPS:
            heavy = sorted(
                (n for n in walk.nodes() if n.via != "apex" and n.subtree_lookups()),
                key=lambda n: -n.subtree_lookups(),
            )
            yield self.finding(
                "SPF_TOO_MANY_LOOKUPS",
                Severity.FAIL,
                f"SPF of {walk.domain} needs {_count_text(walk)} DNS-querying terms (RFC 7208 "
                f"§4.6.4 allows {MAX_LOOKUPS}; receivers return permerror)",
                evidence={
                    "count": _count_text(walk),
                    "limit": str(MAX_LOOKUPS),
                    "tree": tree,
                    "heaviest": _cut(
                        ", ".join(f"{n.chain()}={n.subtree_lookups()}" for n in heavy[:3]), 500
                    ),
                },
                reproduce=dig,
                subject=walk.domain,
            )
        for node, term, count in walk.mx_over:
            yield self.finding(
                "SPF_TOO_MANY_LOOKUPS",
                Severity.FAIL,
                f"{term} in the SPF record of {node.domain} names {count} MX hosts (RFC 7208 "
                f"§4.6.4 allows {MAX_MX_NAMES}; the mx mechanism is a permerror)",
                evidence={
                    "count": str(count),
                    "limit": str(MAX_MX_NAMES),
                    "term": term,
                    "domain": node.domain,
                    "chain": node.chain(),
                },
                reproduce=dig,
                subject=node.domain,
            )
        void4, void6 = len(walk.void4), len(walk.void6)
        if void4 > MAX_VOID_LOOKUPS or void6 > MAX_VOID_LOOKUPS:
            ipv4 = void4 > MAX_VOID_LOOKUPS  # IPv4 clients, i.e. practically every sender
            code = "SPF_TOO_MANY_VOID_LOOKUPS" if ipv4 else "SPF_TOO_MANY_VOID_LOOKUPS_IPV6"
            who = "for an IPv4 client" if ipv4 else "for an IPv6 client (AAAA lookups)"
            yield self.finding(
                code,
                # Over the limit for IPv6 clients only: a problem for a domain that sends over
                # IPv6 (a declared IPv6 sending IP); otherwise worth knowing, not a warning.
                Severity.FAIL if ipv4 else Severity.WARN if ipv6_senders else Severity.INFO,
                f"SPF of {walk.domain} makes {void4 if ipv4 else void6} void lookups {who} "
                f"(RFC 7208 §4.6.4 allows {MAX_VOID_LOOKUPS}; receivers return permerror)",
                evidence={
                    "count_ipv4_client": str(void4),
                    "count_ipv6_client": str(void6),
                    "limit": str(MAX_VOID_LOOKUPS),
                    "void": _cut(", ".join(walk.void4 if ipv4 else walk.void6), 500),
                    "tree": tree,
                },
                reproduce=dig,
                subject=walk.domain,
            )
        complete = (
            not walk.truncated
            and not walk.failures
            and all(n.status in ("ok", "macro") for n in walk.nodes())
        )
        if (
            complete
            and walk.count <= MAX_LOOKUPS
            and not walk.mx_over
            and max(void4, void6) <= MAX_VOID_LOOKUPS
        ):
            unfollowed = sum(1 for n in walk.nodes() if n.status == "macro")
            evidence = {
                "count": str(walk.count),
                "limit": str(MAX_LOOKUPS),
                "void_ipv4_client": str(void4),
                "void_ipv6_client": str(void6),
                "tree": tree,
            }
            if unfollowed:
                evidence["not_followed"] = f"{unfollowed} target(s) built from client macros"
            severity = Severity.INFO
            for name, over in (("warn", Severity.WARN), ("crit", Severity.FAIL)):
                text = getattr(thresholds, f"spf_lookups_{name}", None)
                if text:  # the operator's range (probes.validate checked it)
                    evidence[f"{name}_range"] = text
                    if parse_range(text).alerts(walk.count):
                        severity = over
            yield self.finding(
                "SPF_LOOKUP_COUNT",
                severity,
                f"SPF of {walk.domain} needs {walk.count} of {MAX_LOOKUPS} DNS-querying terms",
                evidence=evidence,
                reproduce=dig,
                subject=walk.domain,
            )

    def _all_findings(self, walk: Walk, door: DnsClient) -> Iterator[Finding]:
        # The top chain: the apex record and the records its redirects lead to.
        top: list[Node] = []
        node: Node | None = walk.root
        while node is not None and node.status == "ok":
            top.append(node)
            node = next((c for c in node.children if c.via == "redirect"), None)
        last = top[-1]
        assert last.record is not None
        all_mech = last.record.all
        if all_mech is None and last.record.modifier("redirect") is None:
            yield self.finding(
                "SPF_NO_ALL",
                Severity.WARN,
                f"SPF record of {last.domain} ends with neither an all mechanism nor a redirect "
                "(an unmatched client gets neutral)",
                evidence={
                    "domain": last.domain,
                    "chain": last.chain(),
                    "record": _cut(last.texts[0], 500),
                },
                reproduce=door.dig(last.domain, "TXT"),
                subject=last.domain,
            )
        for node in walk.nodes():
            if node.status != "ok" or not node.passes:
                continue
            assert node.record is not None
            mech = node.record.all
            if mech is None:
                continue
            on_top = node in top
            if mech.qualifier == "+" or (on_top and mech.qualifier == "?"):
                role = "the domain's result" if on_top else "an included record (a pass)"
                yield self.finding(
                    "SPF_PERMISSIVE_ALL",
                    Severity.FAIL,
                    f"SPF record of {node.domain} has {mech.text!r}, which decides "
                    f"{role} for every client not matched before it",
                    evidence={
                        "domain": node.domain,
                        "chain": node.chain(),
                        "term": mech.text,
                        "result": mech.result,
                    },
                    reproduce=door.dig(node.domain, "TXT"),
                    subject=node.domain,
                )

    # --- per-IP evaluation ----------------------------------------------------------------

    @staticmethod
    def _evaluate(door: DnsClient, domain: str, ips: list[str]) -> list[SpfVerdict]:
        if not ips:
            return []
        sender = f"postmaster@{domain}"
        if len(ips) == 1:
            return [evaluate(door, ips[0], sender, domain)]
        workers = min(MAX_PARALLEL_EVALUATIONS, len(ips))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mailprobe-spf") as pool:
            return list(pool.map(lambda ip: evaluate(door, ip, sender, domain), ips))

    def _authorized(self, verdict: SpfVerdict, domain: str, dig: str) -> Finding:
        return self.finding(
            "SPF_IP_AUTHORIZED",
            Severity.INFO,
            f"sending IP {verdict.ip} evaluates to pass under the SPF policy of {domain}",
            evidence={
                "result": verdict.result,
                "mechanism": verdict.mechanism or "(none matched)",
                "sender": f"postmaster@{domain}",
                "lookups": str(verdict.lookups),
            },
            reproduce=dig,
            subject=verdict.ip,
        )

    def _not_authorized(self, verdict: SpfVerdict, domain: str, dig: str) -> Finding:
        return self.finding(
            "SPF_IP_NOT_AUTHORIZED",
            Severity.FAIL,
            f"sending IP {verdict.ip} evaluates to {verdict.result} under the SPF policy of "
            f"{domain}, not pass",
            evidence={
                "result": verdict.result,
                "explanation": _cut(verdict.explanation, 500),
                "mechanism": verdict.mechanism or "(none matched)",
                "sender": f"postmaster@{domain}",
                "lookups": str(verdict.lookups),
            },
            reproduce=dig,
            subject=verdict.ip,
        )


__all__ = ["DnsSpf", "Node", "Walk", "render_tree", "walk_spf"]
