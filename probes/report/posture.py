"""A run at a glance: one row per area (each DNS policy, each endpoint, the test message) with
its worst status. The text report's summary and the HTML scorecard's grid both read it, so they
give one answer.

Areas:
- DNS: one per `dns.*` probe, named for what it checks (MX, PTR, SPF, DKIM, DMARC, MTA-STS,
  TLS-RPT, DANE, Blocklists; a plugin's `dns.x` keeps its id), and the policies fetched over
  HTTPS (`https.mta_sts`: "MTA-STS policy", `https.bimi`: "BIMI"; a finding of theirs about an
  MX endpoint, such as MTA_STS_CERT_INVALID, lands on that endpoint's row).
- Endpoints: one per `host:port` subject, whichever probes reported on it (smtp.mx, smtp.relay
  and smtp.swaks all land on `mx.example.test:25`). A transport probe that ended ERROR without
  reaching an endpoint is a row of its own, named for the probe.
- The message: every `message.*` probe.
- Anything else (a plugin's probe): one per probe id.

Status, worst first: fail, error (the probe could not run), warn, pass, absent (only info
findings whose code says an optional feature is not deployed, such as MTA_STS_MISSING), skipped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from probes.codes import Code
from probes.model import Finding, Outcome, ProbeResult, Severity
from probes.report.run import RunReport


class Status(Enum):
    FAIL = "fail"
    ERROR = "error"
    WARN = "warn"
    PASS = "pass"
    ABSENT = "absent"
    SKIPPED = "skipped"

    @property
    def rank(self) -> int:
        """Higher is worse."""
        return len(_ORDER) - _ORDER.index(self)


_ORDER = list(Status)

DNS_LABELS = {  # in the order a report lists them
    "dns.mx": "MX",
    "dns.ptr": "PTR",
    "dns.spf": "SPF",
    "dns.dkim": "DKIM",
    "dns.dmarc": "DMARC",
    "dns.dnssec": "DNSSEC",
    "dns.dane": "DANE",
    "dns.mta_sts": "MTA-STS",
    # the policies published in DNS and served over HTTPS: rows of the DNS kind too
    "https.mta_sts": "MTA-STS policy",
    "dns.tls_rpt": "TLS-RPT",
    "https.bimi": "BIMI",
    "dns.blocklists": "Blocklists",
}
TRANSPORT_PREFIXES = ("smtp.", "imap.", "pop3.")
MESSAGE_PREFIX = "message."
# host:port, [v6]:port or v4:port
_ENDPOINT = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[^\s:\[\]]+):\d{1,5}$")


class Kind(Enum):
    DNS = "DNS"
    ENDPOINT = "Endpoints"
    MESSAGE = "Message"
    OTHER = "Other"


@dataclass
class Area:
    kind: Kind
    name: str  # "SPF", "mx.example.test:25", "message", a probe id
    status: Status = Status.SKIPPED
    counts: dict[Severity, int] = field(default_factory=lambda: dict.fromkeys(Severity, 0))
    new: int = 0  # findings new or changed since the previous comparable run
    changed: int = 0  # of those, the changed ones (the previous run had them, otherwise)
    probes: list[str] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)  # warn/fail codes, first seen first
    errors: list[str] = field(default_factory=list)  # "probe: reason" of probes that ended ERROR

    def _see_status(self, status: Status) -> None:
        if status.rank > self.status.rank:
            self.status = status

    def _see_probe(self, probe_id: str) -> None:
        if probe_id not in self.probes:
            self.probes.append(probe_id)


def is_endpoint(subject: str | None) -> bool:
    return subject is not None and bool(_ENDPOINT.match(subject))


def split_endpoint(subject: str) -> tuple[str, int]:
    host, _, port = subject.rpartition(":")
    return host, int(port)


def _area_of(result: ProbeResult, finding: Finding | None) -> tuple[Kind, str]:
    pid = result.probe_id
    if pid.startswith("dns.") or (pid in DNS_LABELS and not _on_endpoint(finding)):
        return Kind.DNS, DNS_LABELS.get(pid, pid)
    if pid.startswith(MESSAGE_PREFIX):
        return Kind.MESSAGE, "message"
    if finding is not None and is_endpoint(finding.subject):
        return Kind.ENDPOINT, finding.subject or ""
    if pid.startswith(TRANSPORT_PREFIXES):
        return Kind.ENDPOINT, pid
    return Kind.OTHER, pid


def area_key(finding: Finding) -> tuple[Kind, str]:
    """The (kind, name) of the area `finding` counts in: the key of its Area in `areas`."""
    return _area_of(ProbeResult(finding.probe_id, Outcome.COMPLETED), finding)


def _on_endpoint(finding: Finding | None) -> bool:
    return finding is not None and is_endpoint(finding.subject)


def _sort_key(area: Area) -> tuple[int, object]:
    kinds = list(Kind)
    if area.kind is Kind.DNS:
        labels = list(DNS_LABELS.values())
        rank = labels.index(area.name) if area.name in labels else len(labels)
        return kinds.index(area.kind), (rank, area.name)
    if area.kind is Kind.ENDPOINT and is_endpoint(area.name):
        host, port = split_endpoint(area.name)
        return kinds.index(area.kind), (0, host, port)
    return kinds.index(area.kind), (1, area.name, 0)


def areas(report: RunReport, declarations: Mapping[str, Code] | None = None) -> list[Area]:
    """The run's areas, DNS first (in the order above), then endpoints by host and port, then
    the message. `declarations` (code -> Code, default the installed probes' catalogue) tell
    which info codes mean "absent"."""
    absent = _absent_codes(declarations)
    found: dict[tuple[Kind, str], Area] = {}

    def area(kind: Kind, name: str) -> Area:
        return found.setdefault((kind, name), Area(kind, name))

    for result in report.results:
        if not result.findings or result.outcome is not Outcome.COMPLETED:
            a = area(*_area_of(result, None))
            a._see_probe(result.probe_id)
            if result.outcome is Outcome.ERROR:
                a._see_status(Status.ERROR)
                reason = result.error.value if result.error else "error"
                a.errors.append(f"{result.probe_id}: {reason}")
            elif result.outcome is Outcome.COMPLETED:
                a._see_status(Status.PASS)
        infos: dict[tuple[Kind, str], list[str]] = {}
        for finding in result.findings:
            key = _area_of(result, finding)
            a = area(*key)
            a._see_probe(result.probe_id)
            a.counts[finding.severity] += 1
            if report.is_new(finding):
                a.new += 1
                a.changed += report.is_changed(finding)
            if finding.severity is Severity.FAIL:
                a._see_status(Status.FAIL)
            elif finding.severity is Severity.WARN:
                a._see_status(Status.WARN)
            else:
                infos.setdefault(key, []).append(finding.code)
            if finding.severity is not Severity.INFO and finding.code not in a.codes:
                a.codes.append(finding.code)
            policy = _policy_row(finding, key)
            if policy is not None and finding.severity is not Severity.INFO:
                # a policy judged on an endpoint (DANE's TLSA match by smtp.mx, MTA-STS's
                # certificate check) also counts in the policy's own row
                row = area(Kind.DNS, policy)
                row._see_status(Status.FAIL if finding.severity is Severity.FAIL else Status.WARN)
                if finding.code not in row.codes:
                    row.codes.append(finding.code)
        for key, codes in infos.items():
            only_absent = all(code in absent for code in codes)
            found[key]._see_status(Status.ABSENT if only_absent else Status.PASS)
    # An area where something is deployed and something else absent (one MX with TLSA, one
    # without) passes: absent counts only when nothing else was seen.
    fails = {f.code for r in report.results for f in r.findings if f.severity is Severity.FAIL}
    for a in found.values():  # fail codes before warn codes, each in the order seen
        a.codes.sort(key=lambda code: code not in fails)
    return sorted(found.values(), key=_sort_key)


# Codes judged on an endpoint that belong to a policy row of the DNS kind too.
POLICY_CODE_PREFIXES = (("DANE_", "DANE"), ("MTA_STS_", "MTA-STS policy"))


def _policy_row(finding: Finding, key: tuple[Kind, str]) -> str | None:
    if key[0] is not Kind.ENDPOINT:
        return None
    return next(
        (row for prefix, row in POLICY_CODE_PREFIXES if finding.code.startswith(prefix)), None
    )


def _absent_codes(declarations: Mapping[str, Code] | None) -> frozenset[str]:
    if declarations is None:
        from probes.registry import installed_declarations

        declarations = installed_declarations()
    return frozenset(code for code, decl in declarations.items() if decl.absent)


def worst(found: list[Area]) -> Status | None:
    return max((a.status for a in found), key=lambda s: s.rank, default=None)


def changes(report: RunReport) -> str | None:
    """What changed since the previous comparable run (history), or None when not compared."""
    if report.new is None:
        return None
    changed = len(report.changed)
    text = f"since the previous comparable run: {len(report.new) - changed} new"
    text += f", {changed} changed"
    if report.resolved is not None:
        text += f", {len(report.resolved)} resolved"
        fixed = [f for f in report.resolved if f.severity is not Severity.INFO]
        if fixed:
            names = ", ".join(f"{f.code} {f.subject or f.probe_id}" for f in fixed)
            text += f" (fixed: {names})"
    return text
