"""Run one scenario (probes.scenario): build the target, start the lab if it asks for one, run
the probes, and judge the expectations.

    outcome = run_scenario(scenario)            # starts and stops a lab when the scenario uses one
                                                # (or probes the running lab `lab: {name: NAME}`)
    outcome = run_scenario(scenario, lab_info)  # or probes a lab that is already running
    outcome.status   # 0 expectations met, 1 one failed, 3 a probe could not run (docs/contract.md)

Secrets: the lab's password (and any credentials the target references) are passed to the
runner as secrets, so they never reach a result's error text; reports carry only the
credentials reference. The lab's login travels in memory in the lab's Target (probes.lab.target),
never in the process environment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from probes.errors import ProbeConfigError
from probes.model import Finding, Outcome, Severity, Target
from probes.report.run import EXIT_FINDINGS, EXIT_OK, EXIT_PROBE_ERROR, RunReport
from probes.scenario import TARGET_FIELD, Scenario, ScenarioError, spec_field

if TYPE_CHECKING:
    from probes.lab.lab import LabInfo

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
    scenario: Scenario,
    lab_info: LabInfo | None = None,
    *,
    say: Say | None = None,
    deadline: float | None = None,
    run_limit: float | None = None,
) -> ScenarioOutcome:
    """Run `scenario`; with the lab, use `lab_info` or start (and afterwards stop) a lab.
    `deadline`/`run_limit`: the run's deadline (probes.runner.run_probes; `run --max-run-time`)."""
    when = {"deadline": deadline, "run_limit": run_limit}
    if not scenario.uses_lab:
        return _run(scenario, build_target(scenario), _referenced_secrets(scenario), **when)
    if lab_info is None and scenario.lab_name is not None:
        lab_info = running_lab_of(scenario)
    if lab_info is not None:
        return _run_on_lab(scenario, lab_info, **when)
    from probes.lab.lab import Lab

    with Lab(scenario.lab_spec_to_start(), say=say or (lambda msg: None)) as lab:
        assert lab.info is not None
        return _run_on_lab(scenario, lab.info, **when)


def running_lab_of(scenario: Scenario) -> LabInfo:
    """The running lab a scenario names (`lab: {name: NAME}`), or ScenarioError at `lab.name`
    when it is not up or does not answer (probes.lab.running)."""
    from probes.lab.running import LabNotRunning, running_lab

    assert scenario.lab_name is not None
    try:
        return running_lab(scenario.lab_name)
    except LabNotRunning as exc:
        line = scenario.lab_line or scenario.line
        raise ScenarioError(scenario.source, line, "lab.name", str(exc)) from None


def _run_on_lab(scenario: Scenario, info: LabInfo, **when: float | None) -> ScenarioOutcome:
    target = build_target(scenario, info)
    return _run(scenario, target, (info.password, *_referenced_secrets(scenario)), **when)


def build_target(scenario: Scenario, info: LabInfo | None = None) -> Target:
    """The Target a scenario describes; with `info`, the lab's values fill what is not given
    (probes.lab.target.lab_target, as `check --lab`) and its `{lab.…}` placeholders
    (probes.scenario_placeholders). Names are normalized and the whole Target checked
    (probes.validate); a problem is a ScenarioError naming the field."""
    from probes.validate import checked_target

    t = scenario.target
    if info is not None:
        from probes.scenario_placeholders import fill, lab_values

        t = fill(t, lab_values(info))
    if info is None:
        if t.domain is None:  # the loader refuses this; a hand-made Scenario might not
            raise ScenarioError(scenario.source, scenario.line, "target.domain", "missing")
        target = t.as_target()
    else:
        from probes.lab.target import lab_target

        changes = {
            TARGET_FIELD.get(name, name): getattr(t, name)
            for name in t.given
            if name not in ("message", "timeouts", "discover_selectors")
        }
        if "dkim_keys" in changes:
            changes["dkim_keys"] = tuple(t.dkim_keys.items())
        if "dnsbls" in changes or "domain_blocklists" in changes:
            # naming lists of one kind replaces the lab's lists of both (as on the command line)
            changes["dnsbls"] = t.dnsbls or ()
            changes["domain_blocklists"] = t.domain_blocklists or ()
        target = lab_target(
            info,
            timeouts=t.timeouts,
            message=t.message,
            message_given=t.message_given,
            discover_selectors=t.discover_selectors,
            **changes,
        )
    checked, problems = checked_target(target)
    if problems:
        field, problem = problems[0]
        raise ScenarioError(scenario.source, scenario.line, f"target.{spec_field(field)}", problem)
    return checked


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


def _run(
    scenario: Scenario,
    target: Target,
    secrets: tuple[str, ...],
    *,
    deadline: float | None = None,
    run_limit: float | None = None,
) -> ScenarioOutcome:
    from probes import registry
    from probes.net import Net
    from probes.runner import run_report

    classes = registry.select_probes(registry.load_probes(), list(scenario.probes))
    report = run_report(
        [cls() for cls in classes],
        target,
        Net.for_target(target),
        secrets=secrets,
        deadline=deadline,
        run_limit=run_limit,
    )
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
