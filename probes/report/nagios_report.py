"""Nagios / Icinga plugin output (`--format nagios`), as the monitoring-plugins development
guidelines define it (https://www.monitoring-plugins.org/doc/guidelines.html):

    MAILPROBE <STATE> - <summary> | <perfdata>
    <long output: one line per fail/warn finding and per probe that could not run>

The state, and the exit status the CLI gives in this format (docs/contract.md):

| state | exit | when |
|---|---|---|
| OK | 0 | no warn or fail finding, every probe ran (or was skipped) |
| WARNING | 1 | a warn finding, nothing worse |
| CRITICAL | 2 | a fail finding |
| UNKNOWN | 3 | a probe could not run (ERROR) and nothing failed; every probe was skipped (nothing
  was checked); a usage error |

A confirmed fail finding is CRITICAL even when another probe could not run; a probe that could
not run is never CRITICAL and never hides behind OK or WARNING.

Perfdata, `'label'=value[UOM];[warn];[crit];[min];[max]` (labels always quoted; `'` and `=`
removed from them; numbers in the C locale):
- `fail`, `warn`, `info`: findings by severity (`fail` crit 0, `warn` warn 0: the state's
  rule); `probe_errors`: probes that ended in ERROR;
- `cert_days_<host:port>`: whole days left on the certificate an endpoint served (CERT_OK,
  CERT_EXPIRING_SOON, CERT_EXPIRED; negative once expired), warn and crit the run's
  `Thresholds.cert_days_warn` / `cert_days_crit` (crit `0:` when none is set: expired is
  fail). The guidelines have no unit for days, so the value has none;
- `dkim_bits_<selector>`: size of the published DKIM key (RSA: warn `2048:`, crit `1024:`,
  as dns.dkim judges);
- `dkim_age_days_<selector>`: a DKIM key's age in days, where the selector name dates it
  (DKIM_KEY_AGE), warn and crit the run's `dkim_key_age_warn` / `dkim_key_age_crit`;
- `spf_lookups`: the SPF policy's DNS-querying terms, warn the run's `spf_lookups_warn`,
  crit its `spf_lookups_crit` or the RFC 7208 limit `10`, min 0;
- `time_<probe>` and `time`: probe and run durations in seconds (`s`), min 0.
Where one label would repeat (two records for one selector, ...) the smallest value is kept.

The library `nagiosplugin` (PyPI) was considered: its Check/Resource/Context/Summary flow owns
the run, argv and `sys.exit`, which does not fit a `render(report, stream)` renderer over a
finished RunReport; the output and range rules are small enough to keep here and in
probes/parse/nagios_range.py.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TextIO

from probes.model import Finding, Outcome, Severity
from probes.report.run import RunReport

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATE_NAMES = ("OK", "WARNING", "CRITICAL", "UNKNOWN")
PREFIX = "MAILPROBE"

CERT_CODES = ("CERT_OK", "CERT_EXPIRING_SOON", "CERT_EXPIRED")
SPF_LOOKUP_CODES = ("SPF_LOOKUP_COUNT", "SPF_TOO_MANY_LOOKUPS")
SPF_LIMIT = "10"  # RFC 7208 §4.6.4: more is SPF_TOO_MANY_LOOKUPS, fail, whatever is set
MAX_LONG_LINES = 50  # long output lines per report before "... and N more"


def state_of(report: RunReport) -> int:
    """The plugin state of one run (the table in the module docstring)."""
    worst = max(
        (f.severity for r in report.results for f in r.findings),
        key=lambda s: s.rank,
        default=None,
    )
    if worst is Severity.FAIL:
        return CRITICAL
    if any(r.outcome is Outcome.ERROR for r in report.results):
        return UNKNOWN
    if all(r.outcome is Outcome.SKIPPED for r in report.results):
        return UNKNOWN  # nothing was checked
    if worst is Severity.WARN:
        return WARNING
    return OK


def worst_state(states: Iterable[int]) -> int:
    """CRITICAL over UNKNOWN over WARNING over OK (the rule of state_of, across runs)."""
    chosen = set(states)
    for state in (CRITICAL, UNKNOWN, WARNING):
        if state in chosen:
            return state
    return OK


def unknown_line(message: str) -> str:
    """The one line of a usage error (or another failure before any probing)."""
    return f"{PREFIX} UNKNOWN - {_text(message)}"


@dataclass(frozen=True)
class Perf:
    label: str
    value: float
    uom: str = ""
    warn: str = ""
    crit: str = ""
    min: float | None = None
    max: float | None = None

    def __str__(self) -> str:
        label = self.label.replace("'", "").replace("=", "")
        fields = [
            f"{_number(self.value)}{self.uom}",
            self.warn,
            self.crit,
            "" if self.min is None else _number(self.min),
            "" if self.max is None else _number(self.max),
        ]
        return f"'{label}'=" + ";".join(fields).rstrip(";")


def perfdata(report: RunReport, prefix: str = "") -> list[Perf]:
    """The perfdata of one run (the list in the module docstring), labels after `prefix`."""
    limits = report.target.thresholds
    findings = [f for r in report.results for f in r.findings]
    errors = report.count(Outcome.ERROR)
    out = [
        Perf(f"{prefix}fail", report.count_findings(Severity.FAIL), crit="0", min=0),
        Perf(f"{prefix}warn", report.count_findings(Severity.WARN), warn="0", min=0),
        Perf(f"{prefix}info", report.count_findings(Severity.INFO), min=0),
        Perf(f"{prefix}probe_errors", errors, min=0),
    ]
    cert = _smallest(
        (f"{prefix}cert_days_{f.subject or f.probe_id}", days)
        for f in findings
        if f.code in CERT_CODES and (days := _int(f.evidence.get("days_left"))) is not None
    )
    for label, days in cert:
        out.append(
            Perf(label, days, warn=limits.cert_days_warn, crit=limits.cert_days_crit or "0:")
        )
    rsa: set[str] = set()
    bits: list[tuple[str, int]] = []
    for f in findings:
        if f.probe_id != "dns.dkim" or (n := _int(f.evidence.get("bits"))) is None:
            continue
        label = f"{prefix}dkim_bits_{f.evidence.get('selector') or f.subject or ''}"
        bits.append((label, n))
        if f.evidence.get("key_type", "").lower() == "rsa":
            rsa.add(label)
    for label, n in _smallest(bits):
        warn, crit = ("2048:", "1024:") if label in rsa else ("", "")
        out.append(Perf(label, n, warn=warn, crit=crit, min=0))
    ages = _smallest(
        (f"{prefix}dkim_age_days_{f.subject or ''}", n)
        for f in findings
        if f.code == "DKIM_KEY_AGE" and (n := _int(f.evidence.get("age_days"))) is not None
    )
    for label, n in ages:
        warn, crit = limits.dkim_key_age_warn or "", limits.dkim_key_age_crit or ""
        out.append(Perf(label, n, warn=warn, crit=crit, min=0))
    spf = _smallest(
        (f"{prefix}spf_lookups", n)
        for f in findings
        if f.code in SPF_LOOKUP_CODES
        and "term" not in f.evidence  # not the "mx names more than 10 hosts" variant
        and (n := _int(f.evidence.get("count"))) is not None
    )
    for label, n in spf:
        out.append(
            Perf(
                label,
                n,
                warn=limits.spf_lookups_warn or "",
                crit=limits.spf_lookups_crit or SPF_LIMIT,
                min=0,
            )
        )
    out += [Perf(f"{prefix}time_{r.probe_id}", r.duration_s, "s", min=0) for r in report.results]
    out.append(Perf(f"{prefix}time", report.duration_s, "s", min=0))
    return out


def summary(report: RunReport, state: int | None = None) -> str:
    """`domain: N probes, F fail, W warn, E could not run: CODE, CODE` (the first line's text)."""
    state = state_of(report) if state is None else state
    parts = [
        f"{len(report.results)} probes",
        f"{report.count_findings(Severity.FAIL)} fail",
        f"{report.count_findings(Severity.WARN)} warn",
    ]
    errors = report.count(Outcome.ERROR)
    if errors:
        parts.append(f"{errors} could not run")
    text = f"{report.target.domain}: " + ", ".join(parts)
    worst = Severity.FAIL if state == CRITICAL else Severity.WARN if state == WARNING else None
    if worst is not None:
        codes = sorted({f.code for r in report.results for f in r.findings if f.severity is worst})
        text += ": " + " ".join(codes[:5]) + (f" (+{len(codes) - 5})" if len(codes) > 5 else "")
    elif state == UNKNOWN and report.count(Outcome.ERROR):
        text += ": " + " ".join(
            f"{r.probe_id} {r.error.value if r.error else 'ERROR'}"
            for r in report.results
            if r.outcome is Outcome.ERROR
        )
    elif state == UNKNOWN:
        skipped = [r for r in report.results if r.outcome is Outcome.SKIPPED]
        text += ": nothing checked, every probe skipped" + (
            f" ({skipped[0].probe_id}: {skipped[0].error_detail})"
            if skipped and skipped[0].error_detail
            else ""
        )
    return text


def long_output(report: RunReport) -> list[str]:
    """Fail and warn findings, then the probes that could not run, one line each."""
    lines = []
    for severity in (Severity.FAIL, Severity.WARN):
        for f in _findings(report):
            if f.severity is severity:
                lines.append(f"[{severity.value.upper()}] {f.code} {f.probe_id}: {f.message}")
    for r in report.results:
        if r.outcome is Outcome.ERROR:
            reason = r.error.value if r.error else "ERROR"
            lines.append(f"[ERROR] {r.probe_id}: {reason}: {r.error_detail or ''}".rstrip(": "))
    if len(lines) > MAX_LONG_LINES:
        lines = [*lines[:MAX_LONG_LINES], f"... and {len(lines) - MAX_LONG_LINES} more"]
    return [_text(line) for line in lines]


def render(report: RunReport, stream: TextIO) -> None:
    state = state_of(report)
    first = f"{PREFIX} {STATE_NAMES[state]} - {_text(summary(report, state))}"
    stream.write(_with_perf(first, perfdata(report)) + "\n")
    for line in long_output(report):
        stream.write(line + "\n")


def render_many(
    entries: Sequence[tuple[str, int, RunReport]],
    stream: TextIO,
    *,
    what: str,
    details: dict[str, list[str]] | None = None,
    per_entry_perf: bool = False,
) -> int:
    """Several runs in one plugin output (`check --domains`: `what="domains"`; `run`:
    "scenarios"): entries are (name, state, report). Perfdata: the count of runs per state and
    of findings per severity (one series per domain would swamp the core); with
    `per_entry_perf`, each run's perfdata too, labelled `<name>/...`. Returns the state."""
    state = worst_state(s for _, s, _ in entries) if entries else UNKNOWN  # nothing ran
    counts = [sum(1 for _, s, _ in entries if s == st) for st in range(4)]
    described = ", ".join(f"{counts[st]} {STATE_NAMES[st].lower()}" for st in (2, 1, 3, 0))
    first = f"{PREFIX} {STATE_NAMES[state]} - {len(entries)} {what}: {described}"
    perf = [Perf(what, len(entries), min=0)]
    perf += [
        Perf(
            STATE_NAMES[st].lower(),
            counts[st],
            warn="0" if st == WARNING else "",
            crit="0" if st == CRITICAL else "",
            min=0,
        )
        for st in (OK, WARNING, CRITICAL, UNKNOWN)
    ]
    errored = sum(1 for _, _, r in entries if r.count(Outcome.ERROR))
    perf.append(Perf("with_probe_errors", errored, min=0))
    for severity in (Severity.FAIL, Severity.WARN, Severity.INFO):
        total = sum(r.count_findings(severity) for _, _, r in entries)
        perf.append(Perf(f"findings_{severity.value}", total, min=0))
    if per_entry_perf:
        for name, _, report in entries:
            perf += perfdata(report, prefix=f"{name}/")
    stream.write(_with_perf(_text(first), perf) + "\n")
    lines: list[str] = []
    for name, st, report in entries:
        if st == OK:
            continue
        lines.append(f"{STATE_NAMES[st]} {name}: {summary(report, st)}")
        lines += [f"  {line}" for line in (details or {}).get(name, [])]
    if len(lines) > MAX_LONG_LINES:
        lines = [*lines[:MAX_LONG_LINES], f"... and {len(lines) - MAX_LONG_LINES} more"]
    for line in lines:
        stream.write(_text(line) + "\n")
    return state


# ----- helpers ---------------------------------------------------------------------------------
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def _text(text: str) -> str:
    """One line without `|` (the perfdata separator in plugin output)."""
    return _CONTROL.sub(" ", text).replace("|", "/").strip()


def _with_perf(first: str, perf: Sequence[Perf]) -> str:
    return f"{first} | {' '.join(str(p) for p in perf)}" if perf else first


def _findings(report: RunReport) -> Iterable[Finding]:
    return (f for r in report.results for f in r.findings)


def _number(value: float) -> str:
    if isinstance(value, int) or (math.isfinite(value) and float(value).is_integer()):
        return str(int(value))
    return f"{value:.6f}".rstrip("0").rstrip(".")


def _int(value: object) -> int | None:
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def _smallest(pairs: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
    kept: dict[str, int] = {}
    for label, value in pairs:
        kept[label] = min(value, kept.get(label, value))
    return list(kept.items())
