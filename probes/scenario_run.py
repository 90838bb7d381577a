"""Run one scenario (probes.scenario): build the target, start the lab if it asks for one, run
the probes, and judge the expectations.

    outcome = run_scenario(scenario)            # starts and stops a lab when the scenario uses one
    outcome = run_scenario(scenario, lab_info)  # or probes a lab that is already running
    outcome.status   # 0 expectations met, 1 one failed, 3 a probe could not run (CONTRACT.md)

Secrets: the lab's password (and any credentials the target references) are passed to the
runner as secrets, so they never reach a result's error text; reports carry only the
credentials reference.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from probes.errors import ProbeConfigError
from probes.lab.target import LAB_CREDENTIALS_ENV
from probes.model import Finding, Outcome, Severity, Target
from probes.report.run import EXIT_FINDINGS, EXIT_OK, EXIT_PROBE_ERROR, RunReport
from probes.scenario import Scenario, ScenarioError

if TYPE_CHECKING:
    from probes.lab.lab import LabInfo

# The lab's throwaway login is handed to the probes in this process's environment only
# (LAB_CREDENTIALS_ENV, from probes.lab.target).

Say = Callable[[str], None]


@dataclass(frozen=True)
class ScenarioOutcome:
    scenario: Scenario
    report: RunReport
    failures: tuple[str, ...] = ()  # expectations not met, one line each
    secrets: tuple[str, ...] = field(default=(), repr=False)

    @property
    def errors(self) -> list[str]:
        """`probe: REASON` for every probe that could not run."""
        return [
            f"{r.probe_id}: {r.error.value if r.error else r.outcome.value}"
            for r in self.report.results
            if r.outcome is Outcome.ERROR
        ]

    @property
    def status(self) -> int:
        if self.failures:
            return EXIT_FINDINGS
        if self.errors:
            return EXIT_PROBE_ERROR
        return EXIT_OK

    @property
    def findings(self) -> list[Finding]:
        return [f for r in self.report.results for f in r.findings]


def run_scenario(
    scenario: Scenario, lab_info: LabInfo | None = None, *, say: Say | None = None
) -> ScenarioOutcome:
    """Run `scenario`; with the lab, use `lab_info` or start (and afterwards stop) a lab."""
    if not scenario.uses_lab:
        return _run(scenario, build_target(scenario), secrets=_referenced_secrets(scenario))
    if lab_info is not None:
        return _run_on_lab(scenario, lab_info)
    from probes.lab.lab import Lab

    with Lab(scenario.lab_spec_to_start(), say=say or (lambda msg: None)) as lab:
        assert lab.info is not None
        return _run_on_lab(scenario, lab.info)


def _run_on_lab(scenario: Scenario, info: LabInfo) -> ScenarioOutcome:
    target = build_target(scenario, info)
    secrets = (info.password, *_referenced_secrets(scenario))
    if scenario.target.credentials is not None:
        return _run(scenario, target, secrets)
    previous = os.environ.get(LAB_CREDENTIALS_ENV)
    os.environ[LAB_CREDENTIALS_ENV] = f"{info.user}:{info.password}"
    try:
        return _run(scenario, target, secrets)
    finally:
        if previous is None:
            os.environ.pop(LAB_CREDENTIALS_ENV, None)
        else:
            os.environ[LAB_CREDENTIALS_ENV] = previous


def build_target(scenario: Scenario, info: LabInfo | None = None) -> Target:
    """The Target a scenario describes; with `info`, the lab's values fill what is not given."""
    t = scenario.target
    if info is None:
        if t.domain is None:  # the loader refuses this; a hand-made Scenario might not
            raise ScenarioError(scenario.source, scenario.line, "target.domain", "missing")
        return Target(
            domain=t.domain.rstrip(".").lower(),
            mx_hosts=t.mx_hosts,
            submission_hosts=t.submission_hosts,
            mailbox_hosts=t.mailbox_hosts,
            selectors=t.selectors,
            sending_ips=t.sending_ips,
            resolver=t.resolver,
            ca_file=t.ca_file,
            credentials_ref=t.credentials,
            timeouts=t.timeouts,
            dkim_keys=tuple(t.dkim_keys.items()),
            discover_selectors=t.discover_selectors,
            message=t.message,
        )
    d = info.domain

    def pick(name: str, default):
        return getattr(t, name) if name in t.given else default

    message = t.message
    lab_message = {
        # The outbound relay has no 465: submissions go to the mx.
        "submit_host": f"mx.{d}" if message.send_via == "submissions" else f"outbound.{d}",
        "source_address": info.client_ips["authorized"],
        "receiver_listen": info.receiver_listen,
        "receiver_domain": info.receiver_domain,
    }
    message = dataclasses.replace(
        message, **{k: v for k, v in lab_message.items() if k not in t.message_given}
    )
    return Target(
        domain=pick("domain", d),
        mx_hosts=pick("mx_hosts", (f"mx.{d}",)),
        submission_hosts=pick("submission_hosts", (f"mx.{d}", f"outbound.{d}")),
        mailbox_hosts=pick("mailbox_hosts", (f"mailbox.{d}",)),
        selectors=pick("selectors", tuple(info.dkim)),
        sending_ips=pick("sending_ips", (info.client_ips["authorized"], info.hosts["outbound"])),
        resolver=pick("resolver", info.resolver),
        ca_file=pick("ca_file", info.ca_file),
        credentials_ref=t.credentials or f"env:{LAB_CREDENTIALS_ENV}",
        timeouts=t.timeouts,
        dkim_keys=tuple(t.dkim_keys.items())
        if "dkim_keys" in t.given
        else tuple(info.dkim.items()),
        discover_selectors=t.discover_selectors,
        message=message,
    )


def _referenced_secrets(scenario: Scenario) -> tuple[str, ...]:
    """The password the target's credentials reference, if readable (to redact it)."""
    ref = scenario.target.credentials
    if ref is None:
        return ()
    from probes.credentials import load_credentials

    try:
        return (load_credentials(ref).password,)
    except ProbeConfigError:
        return ()  # the probes report the unusable reference themselves


def _run(scenario: Scenario, target: Target, secrets: tuple[str, ...]) -> ScenarioOutcome:
    from probes import registry
    from probes.net import Net
    from probes.runner import run_report

    classes = registry.select_probes(registry.load_probes(), list(scenario.probes))
    report = run_report([cls() for cls in classes], target, Net.for_target(target), secrets=secrets)
    return ScenarioOutcome(scenario, report, tuple(judge(scenario, report)), secrets)


def judge(scenario: Scenario, report: RunReport) -> list[str]:
    """The expectations of `scenario` that `report` does not meet, one line each."""
    expect = scenario.expect
    findings = [f for r in report.results for f in r.findings]
    seen = {f.code for f in findings}
    failures = []
    missing = [code for code in expect.codes if code not in seen]
    if missing:
        failures.append(f"expected code(s) not found: {', '.join(missing)}")
    present = [code for code in expect.absent if code in seen]
    if present:
        failures.append(f"code(s) that must be absent were found: {', '.join(present)}")
    limit = expect.severity_limit
    if limit is not None:
        over = sorted({f.code for f in findings if f.severity > limit})
        if over:
            failures.append(f"findings above max_severity {limit.value}: {', '.join(over)}")
    if expect.outcomes == Outcome.COMPLETED.value:
        bad = [
            f"{r.probe_id} {r.outcome.value}" + (f"/{r.error.value}" if r.error else "")
            for r in report.results
            if r.outcome is not Outcome.COMPLETED
        ]
        if bad:
            failures.append(f"probes that did not complete: {', '.join(bad)}")
    return failures


def findings_table(findings: list[Finding], *, min_severity: Severity = Severity.INFO) -> str:
    """Findings as an aligned text table: code, severity, subject, message."""
    rows = [
        (f.code, f.severity.value, f.subject or "-", f.message.replace("\n", " "))
        for f in sorted(findings, key=lambda f: (-f.severity.rank, f.code, f.subject or ""))
        if f.severity >= min_severity
    ]
    if not rows:
        return "(no findings)"
    header = ("CODE", "SEVERITY", "SUBJECT", "MESSAGE")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    lines = [
        "  ".join(cell.ljust(widths[i]) if i < 3 else cell for i, cell in enumerate(row))
        for row in [header, *rows]
    ]
    return "\n".join(line.rstrip() for line in lines)


def describe(outcome: ScenarioOutcome) -> str:
    """A multi-line explanation of a scenario that did not pass (the pytest failure text)."""
    s = outcome.scenario
    lines = [f"scenario {s.name!r} ({s.where})"]
    lines += [f"  expectation failed: {line}" for line in outcome.failures]
    for r in outcome.report.results:
        if r.outcome is Outcome.ERROR:
            detail = f": {r.error_detail}" if r.error_detail else ""
            lines.append(f"  probe error: {r.probe_id} {r.error.value if r.error else ''}{detail}")
    lines += ["", findings_table(outcome.findings)]
    return _redact("\n".join(lines), outcome.secrets)


def _redact(text: str, secrets: Iterable[str]) -> str:
    from probes.runner import Redactor

    return Redactor(tuple(secrets))(text)
