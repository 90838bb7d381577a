"""Prometheus text exposition format 0.0.4, for node_exporter's textfile collector.

Names and units follow Prometheus' naming rules and pass `promtool check metrics`: base units
(seconds; Unix timestamps in seconds), no unit suffix on dimensionless values. Every metric is
a gauge with HELP and TYPE lines, and each name has ONE help text whatever the run (node_exporter
refuses a name whose help differs between the files of its textfile directory).

Every sample carries the run's identity labels: `domain` for a check (`render`, the
`prometheus` report format), `scenario` and `domain` for a scenario, `domains` (the domains
file's name) for a `check --domains` audit (probes.report.prometheus_textfile picks them).

One target (a check, a scenario, or one domain of an audit with --prometheus-per-domain):
- mailprobe_up: 1 when every probe completed or was skipped, 0 when one could not run (ERROR);
- mailprobe_run_timestamp_seconds / mailprobe_last_run_timestamp_seconds: when the run started
  / ended; mailprobe_last_success_timestamp_seconds: when the latest run with up 1 ended (this
  one, or one before it that the caller knows of); mailprobe_run_duration_seconds;
- mailprobe_findings{code,severity,probe}, mailprobe_findings_by_severity{severity} (zeros too);
- mailprobe_probe_duration_seconds{probe}, mailprobe_probe_outcome{probe,outcome} (1 or 0);
- mailprobe_certificate_expiry_timestamp_seconds{probe,subject}: notAfter of the certificate
  served at host:port (the `not_after` evidence of CERT_OK, CERT_EXPIRING_SOON, CERT_EXPIRED);
- mailprobe_dkim_key_size{selector,key_type}: key size in bits (RSA modulus; 256 for Ed25519).
Where one label set would repeat the value an alert should see is kept: the earliest expiry,
the smallest key.

An audit (`check --domains`), with no series per domain unless asked:
- mailprobe_up (0 when no domain could be probed without a probe error), the run timestamps
  and duration as above;
- mailprobe_audit_domains{status}: domains by exit status (ok, findings, probe_error);
- mailprobe_audit_domains_with_probe_errors: domains a probe of which ended in ERROR, whatever
  their exit status (the summary's and the text lines' count, probes.report.audit_summary);
- mailprobe_audit_findings{code,severity,probe}, mailprobe_audit_findings_by_severity{severity};
- mailprobe_audit_probe_outcomes{probe,outcome}: how many domains' probe ended so.
Per-domain series (asked for) are the one-target metrics above, except up and the run
timestamps, with a `domain` label added.

Label values are escaped (backslash, double quote, newline) as the format requires.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TextIO

from probes.model import Outcome, Severity
from probes.report.run import EXIT_FINDINGS, EXIT_OK, EXIT_PROBE_ERROR, RunReport

CERT_CODES = ("CERT_OK", "CERT_EXPIRING_SOON", "CERT_EXPIRED")
DKIM_PROBE = "dns.dkim"

Labels = tuple[tuple[str, str], ...]

# Every metric's one help text (node_exporter refuses differing help texts across files).
HELP = {
    "mailprobe_up": (
        "1 when every probe of the run completed or was skipped, 0 when one could not run "
        "(an audit: 0 when no domain could be probed without a probe error)."
    ),
    "mailprobe_run_timestamp_seconds": "When the run started, in seconds since the Unix epoch.",
    "mailprobe_last_run_timestamp_seconds": (
        "When the latest run ended, in seconds since the Unix epoch."
    ),
    "mailprobe_last_success_timestamp_seconds": (
        "When the latest run with mailprobe_up 1 ended, in seconds since the Unix epoch."
    ),
    "mailprobe_run_duration_seconds": "How long the whole run took, in seconds.",
    "mailprobe_findings": "Findings of the run by code, severity and probe.",
    "mailprobe_findings_by_severity": "Findings of the run by severity.",
    "mailprobe_probe_duration_seconds": "How long each probe ran, in seconds.",
    "mailprobe_probe_outcome": (
        "How each probe ended: 1 for its outcome (COMPLETED, ERROR or SKIPPED), else 0."
    ),
    "mailprobe_certificate_expiry_timestamp_seconds": (
        "When the certificate served at host:port expires (notAfter), in seconds since the "
        "Unix epoch."
    ),
    "mailprobe_dkim_key_size": (
        "Size of the DKIM public key published for a selector, in bits "
        "(the RSA modulus; 256 for Ed25519)."
    ),
    "mailprobe_audit_domains": (
        "Domains of a --domains audit by exit status (ok, findings, probe_error)."
    ),
    "mailprobe_audit_domains_with_probe_errors": (
        "Domains of a --domains audit with a probe that ended in ERROR, whatever their exit status."
    ),
    "mailprobe_audit_findings": "Findings of a --domains audit by code, severity and probe.",
    "mailprobe_audit_findings_by_severity": "Findings of a --domains audit by severity.",
    "mailprobe_audit_probe_outcomes": (
        "Domains of a --domains audit whose probe ended so (COMPLETED, ERROR or SKIPPED)."
    ),
}

AUDIT_STATUSES = {EXIT_OK: "ok", EXIT_FINDINGS: "findings", EXIT_PROBE_ERROR: "probe_error"}


def label_value(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def label_text(labels: Labels) -> str:
    """`k="v",...` with the values escaped (no braces)."""
    return ",".join(f'{k}="{label_value(v)}"' for k, v in labels)


def _help_text(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")


def number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def _int_or_none(value: object) -> int | None:
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def _timestamp_or_none(value: object) -> float | None:
    text = str(value).strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


@dataclass
class Family:
    """One metric: its name and samples (labels, value); HELP from `HELP`."""

    name: str
    samples: list[tuple[Labels, float]] = field(default_factory=list)

    def add(self, labels: Labels, value: float) -> None:
        self.samples.append((labels, value))


class Exposition:
    """Families in the order first added; samples of one name stay together."""

    def __init__(self) -> None:
        self.families: dict[str, Family] = {}

    def family(self, name: str) -> Family:
        if name not in HELP:
            raise KeyError(f"{name}: no help text in prometheus_report.HELP")
        return self.families.setdefault(name, Family(name))

    def add(self, name: str, labels: Labels, value: float) -> None:
        self.family(name).add(labels, value)

    def text(self) -> str:
        lines: list[str] = []
        for fam in self.families.values():
            if not fam.samples:
                continue
            lines.append(f"# HELP {fam.name} {_help_text(HELP[fam.name])}")
            lines.append(f"# TYPE {fam.name} gauge")
            for labels, value in fam.samples:
                body = f"{{{label_text(labels)}}}" if labels else ""
                lines.append(f"{fam.name}{body} {number(value)}")
        return "\n".join(lines) + "\n"


def run_succeeded(report: RunReport) -> bool:
    """The run could do its job: no probe ended in ERROR."""
    return all(r.outcome is not Outcome.ERROR for r in report.results)


def ended_at(report: RunReport) -> float:
    return report.started.timestamp() + report.duration_s


def _smallest(pairs: Iterable[tuple[Labels, float]]) -> list[tuple[Labels, float]]:
    kept: dict[Labels, float] = {}
    for labels, value in pairs:
        kept[labels] = min(value, kept.get(labels, value))
    return list(kept.items())


def add_run_status(
    out: Exposition,
    identity: Labels,
    *,
    up: bool,
    started: float,
    duration_s: float,
    last_success: float | None,
) -> None:
    """mailprobe_up, the run's timestamps and duration. `last_success`: when the latest
    successful run before this one ended, if known (this run's end wins when it succeeded)."""
    ended = started + duration_s
    if up:
        last_success = ended if last_success is None else max(last_success, ended)
    out.add("mailprobe_up", identity, int(up))
    out.add("mailprobe_run_timestamp_seconds", identity, started)
    out.add("mailprobe_last_run_timestamp_seconds", identity, ended)
    if last_success is not None:
        out.add("mailprobe_last_success_timestamp_seconds", identity, last_success)
    out.add("mailprobe_run_duration_seconds", identity, duration_s)


def add_target_metrics(out: Exposition, report: RunReport, identity: Labels) -> None:
    """What one target's run found: findings, probes, certificates, DKIM keys."""
    findings = [f for r in report.results for f in r.findings]
    by_code = Counter((f.code, f.severity.value, f.probe_id) for f in findings)
    fam = out.family("mailprobe_findings")
    for (code, sev, probe), n in sorted(by_code.items()):
        fam.add((*identity, ("code", code), ("severity", sev), ("probe", probe)), n)
    fam = out.family("mailprobe_findings_by_severity")
    for s in Severity:
        fam.add((*identity, ("severity", s.value)), report.count_findings(s))
    fam = out.family("mailprobe_probe_duration_seconds")
    for r in report.results:
        fam.add((*identity, ("probe", r.probe_id)), r.duration_s)
    fam = out.family("mailprobe_probe_outcome")
    for r in report.results:
        for o in Outcome:
            fam.add((*identity, ("probe", r.probe_id), ("outcome", o.value)), int(r.outcome is o))
    expiries = (
        ((*identity, ("probe", f.probe_id), ("subject", f.subject or "")), when)
        for f in findings
        if f.code in CERT_CODES
        and (when := _timestamp_or_none(f.evidence.get("not_after", ""))) is not None
    )
    fam = out.family("mailprobe_certificate_expiry_timestamp_seconds")
    for labels, value in _smallest(expiries):
        fam.add(labels, value)
    sizes = (
        (
            (
                *identity,
                ("selector", f.evidence.get("selector") or f.subject or ""),
                ("key_type", f.evidence.get("key_type", "")),
            ),
            bits,
        )
        for f in findings
        if f.probe_id == DKIM_PROBE
        and (bits := _int_or_none(f.evidence.get("bits", ""))) is not None
    )
    fam = out.family("mailprobe_dkim_key_size")
    for labels, value in _smallest(sizes):
        fam.add(labels, value)


def run_exposition(report: RunReport, identity: Labels, last_success: float | None) -> str:
    """The exposition of one run (a check or a scenario) with its identity labels."""
    out = Exposition()
    add_run_status(
        out,
        identity,
        up=run_succeeded(report),
        started=report.started.timestamp(),
        duration_s=report.duration_s,
        last_success=last_success,
    )
    add_target_metrics(out, report, identity)
    return out.text()


def render(report: RunReport, stream: TextIO) -> None:
    """The `prometheus` report format: one run, labelled with its domain."""
    stream.write(run_exposition(report, (("domain", report.target.domain),), None))


class AuditMetrics:
    """The exposition of a `check --domains` audit, built as its reports arrive (bounded
    memory: counters, plus one block of samples per domain when `per_domain`)."""

    def __init__(self, identity: Labels, *, per_domain: bool = False) -> None:
        self.identity = identity
        self.per_domain = per_domain
        self.statuses: Counter[str] = Counter({s: 0 for s in AUDIT_STATUSES.values()})
        self.findings: Counter[tuple[str, str, str]] = Counter()
        self.severities: Counter[str] = Counter({s.value: 0 for s in Severity})
        self.outcomes: Counter[tuple[str, str]] = Counter()
        self.domains = 0
        self.probed = 0  # domains whose probes all ran (no ERROR)
        self._domains = Exposition()

    def add(self, report: RunReport, status: int) -> None:
        self.statuses[AUDIT_STATUSES.get(status, "probe_error")] += 1
        self.domains += 1
        self.probed += run_succeeded(report)
        for r in report.results:
            for o in Outcome:
                self.outcomes[(r.probe_id, o.value)] += r.outcome is o
            for f in r.findings:
                self.findings[(f.code, f.severity.value, f.probe_id)] += 1
                self.severities[f.severity.value] += 1
        if self.per_domain:
            add_target_metrics(
                self._domains, report, (*self.identity, ("domain", report.target.domain))
            )

    def text(self, started: float, duration_s: float, last_success: float | None) -> str:
        out = Exposition()
        ident = self.identity
        add_run_status(
            out,
            ident,
            up=self.probed > 0,
            started=started,
            duration_s=duration_s,
            last_success=last_success,
        )
        fam = out.family("mailprobe_audit_domains")
        for status in AUDIT_STATUSES.values():
            fam.add((*ident, ("status", status)), self.statuses[status])
        out.add("mailprobe_audit_domains_with_probe_errors", ident, self.domains - self.probed)
        fam = out.family("mailprobe_audit_findings")
        for (code, sev, probe), n in sorted(self.findings.items()):
            fam.add((*ident, ("code", code), ("severity", sev), ("probe", probe)), n)
        fam = out.family("mailprobe_audit_findings_by_severity")
        for s in Severity:
            fam.add((*ident, ("severity", s.value)), self.severities[s.value])
        fam = out.family("mailprobe_audit_probe_outcomes")
        for (probe, outcome), n in sorted(self.outcomes.items()):
            fam.add((*ident, ("probe", probe), ("outcome", outcome)), n)
        text = out.text()
        if self.per_domain and self._domains.families:
            text += self._domains.text()
        return text
