"""The SPF include tree of a run, pure: dns.spf's `tree` evidence (SPF_LOOKUP_COUNT,
SPF_TOO_MANY_LOOKUPS, SPF_TOO_MANY_VOID_LOOKUPS) parsed back into nodes.

The text is `example.com=2 (include:a.test=6, include:b.test=2 (include:c.test=1),
redirect=c.test=LOOP)`: a node is its label (the apex domain, `include:NAME` or `redirect=NAME`),
`=` and either its own count of DNS-querying terms or a status in capitals or
"not followed (...)" / "not asked", then its children in parentheses. dns.spf cuts a long tree
at 1500 characters with "…": the nodes read before the cut are kept and `truncated` is set.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from probes.model import Severity
from probes.report.run import RunReport

TREE_CODES = ("SPF_LOOKUP_COUNT", "SPF_TOO_MANY_LOOKUPS", "SPF_TOO_MANY_VOID_LOOKUPS")
STATUSES = (  # dns.spf's labels for a record it could not count (checks/dns_spf.py)
    "NO SPF RECORD",
    "MULTIPLE SPF RECORDS",
    "SYNTAX ERROR",
    "DNS FAILURE",
    "LOOP",
    "not followed (cap)",
    "not followed (macro)",
    "not asked",
)


@dataclass
class SpfNode:
    domain: str
    via: str  # "apex", "include" or "redirect"
    lookups: int | None  # its own DNS-querying terms; None with a status
    status: str = ""  # "" when counted, else one of STATUSES
    children: list[SpfNode] = field(default_factory=list)

    @property
    def label(self) -> str:
        return {"include": "include:", "redirect": "redirect="}.get(self.via, "") + self.domain

    def total(self) -> int:
        return (self.lookups or 0) + sum(c.total() for c in self.children)


@dataclass(frozen=True)
class SpfTree:
    root: SpfNode | None
    truncated: bool
    code: str = ""  # the finding the tree came from
    severity: Severity = Severity.INFO  # its severity
    count: str = ""  # its `count` evidence
    limit: str = ""


class _Cut(Exception):
    pass


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self.truncated = False

    def peek(self, s: str) -> bool:
        return self.text.startswith(s, self.i)

    def expect(self, s: str) -> None:
        if not self.peek(s):
            raise _Cut
        self.i += len(s)

    def node(self, parent_nodes: list[SpfNode] | None = None) -> SpfNode:
        via = "apex"
        for prefix, kind in (("include:", "include"), ("redirect=", "redirect")):
            if self.peek(prefix):
                via = kind
                self.i += len(prefix)
                break
        end = self.text.find("=", self.i)
        if end < 0:
            raise _Cut
        domain = self.text[self.i : end]
        if any(c in domain for c in " ,()…"):
            raise _Cut
        self.i = end + 1
        node = SpfNode(domain, via, None)
        if parent_nodes is not None:
            parent_nodes.append(node)
        status = next((s for s in STATUSES if self.peek(s)), None)
        if status is not None:
            node.status = status
            self.i += len(status)
        else:
            start = self.i
            while self.i < len(self.text) and self.text[self.i].isdigit():
                self.i += 1
            if start == self.i:
                raise _Cut
            node.lookups = int(self.text[start : self.i])
        if self.peek(" ("):
            self.i += 2
            while True:
                self.node(node.children)
                if self.peek(", "):
                    self.i += 2
                    continue
                self.expect(")")
                break
        return node


def parse_tree(text: str) -> tuple[SpfNode | None, bool]:
    """The tree a `tree` evidence value describes, and whether it was cut short (by dns.spf's
    "…" or by text this parser does not understand: the nodes read until then are kept)."""
    reader = _Reader(text.strip())
    root: list[SpfNode] = []
    try:
        reader.node(root)
        truncated = reader.i != len(reader.text)
    except _Cut:
        truncated = True
    return (root[0] if root else None), truncated


def spf_tree(report: RunReport) -> SpfTree | None:
    """The run's SPF tree (the first finding carrying one), or None."""
    for result in report.results:
        for f in result.findings:
            if f.code in TREE_CODES and "tree" in f.evidence:
                root, truncated = parse_tree(f.evidence["tree"])
                return SpfTree(
                    root,
                    truncated,
                    code=f.code,
                    severity=f.severity,
                    count=f.evidence.get("count", f.evidence.get("count_ipv4_client", "")),
                    limit=f.evidence.get("limit", ""),
                )
    return None
