"""Scenario files: a target, the probes to run and what the run must show, as YAML.

`mailprobe run SCENARIO.yaml ...` runs them, and pytest collects `scenarios/**/*.yaml` (one
test per YAML document, probes.pytest_scenarios). A file may hold several documents
(separated by `---`); each is one scenario. Schema (every field but `name` is optional):

    name: lab-is-correct             # required; unique within its file; the test's name
    description: free text
    marks: [nightly, slow]           # pytest marks; `lab` is added when the lab is used
    collect: true                    # false: pytest does not collect it (`mailprobe run` does)
    lab: false                       # true: start the embedded lab and probe it;
                                     # {name: NAME}: probe the running lab NAME
                                     # (`mailprobe lab up --name NAME`) instead
    lab_spec: {...}                  # a lab spec (probes/lab/spec.py LabSpec fields), or the
                                     # name of a lab spec file relative to this one; implies lab
    lab_flavours: all                # or [postfix+dovecot, exim+perdition, ...]: run once per
                                     # lab flavour (`all`: probes.lab.flavours.MATRIX), as
                                     # `name[flavour]`; a flavour that cannot express lab_spec
                                     # is skipped with the reason
    target:                          # required unless the lab is used
      domain: example.com            # required unless the lab is used (default: the lab's)
      mx_hosts: [mx1.example.com]
      submission_hosts: [smtp.example.com]
      mailbox_hosts: [imap.example.com]
      selectors: [s1]
      sending_ips: [192.0.2.1]
      discover_selectors: false
      resolver: 192.0.2.53:53        # default: the system's resolver (the lab's with the lab)
      ca_file: /path/ca.pem
      credentials: env:MAIL_LOGIN    # or file:PATH; holds USER:PASSWORD, never the secret here
      dkim_keys: {s1: /path/s1.key}  # local private keys to match against the published ones
      timeouts: {connect: 10, io: 30, dns: 5, probe: 120}   # seconds
      message: {...}                 # probes.model.MessageOptions fields (docs/message.md),
                                     # e.g. send_via, signer, retrieve_via, deadline_s,
                                     # extra_headers: [[Name, value], ...]
      thresholds:                    # monitoring-plugins ranges, as text (quote them):
        cert_days_warn: "21:"        # CERT_EXPIRING_SOON below 21 days (the default)
        cert_days_crit: "7:"         # ... at fail severity below 7 (default: none)
        spf_lookups_warn: "8"        # SPF_LOOKUP_COUNT at warn above 8 (default: none)
        spf_lookups_crit: "9"        # ... at fail above 9 (default: none)
        dkim_key_age_warn: "~:365"   # DKIM_KEY_AGE at warn over a year (dated selectors)
        dkim_key_age_crit: "~:730"   # ... at fail over two years (default: none)
      dnsbls: [zen.spamhaus.org]     # IP blocklists (dns.blocklists); naming any list of
      domain_blocklists: []          # either kind replaces the defaults (the lab's lists)
    probes: ["dns.*", smtp.relay]    # shell-style globs; default: every installed probe
    expect:
      codes: [CERT_EXPIRED]          # each must appear among the findings
      absent: [SMTP_OPEN_RELAY]      # none may appear
      max_severity: warn             # info | warn | fail; default warn (no fail finding)
      outcomes: COMPLETED            # every probe must complete (no ERROR, no SKIPPED)

With the lab, the target's hosts, selectors, sending IPs, resolver, CA file, DKIM keys and
credentials default to the lab's (as `mailprobe check --lab`); given fields override them, and
their strings may name the lab's addresses as `{lab.mx}`, `{lab.authorized}`, `{lab.domain}`...
(probes.scenario_placeholders), filled when the scenario runs. A running lab (`lab: {name:
NAME}`) that is not up or does not answer is a ScenarioError (exit 2) before anything runs.

Bad input (invalid YAML, unknown field, wrong type, missing required field, unknown probe, an
`expect` code that no selected probe declares) raises ScenarioError, a UsageError whose message
is `FILE:LINE: field `x.y`: what`.

`scenarios/labs/` holds lab specs, not scenarios: pytest does not collect that directory.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from probes.errors import UsageError
from probes.model import MessageOptions, Severity, Target, Thresholds, Timeouts
from probes.yaml_load import FieldError, YamlDoc, YamlSyntaxError, build, convert, documents, kind

if typing.TYPE_CHECKING:
    from probes.lab.spec import LabSpec

OUTCOME_EXPECTATIONS = ("COMPLETED",)


class ScenarioError(UsageError):
    """A scenario file is unusable; the message is `FILE:LINE: field `x.y`: what`."""

    def __init__(self, source: str, line: int | None, field: str | None, message: str):
        self.source = source
        self.line = line
        self.field = field
        self.reason = message
        where = f"{source}:{line}" if line else source
        what = f"field `{field}`: {message}" if field else message
        super().__init__(f"{where}: {what}")


@dataclass(frozen=True)
class TargetSpec:
    """The `target:` section: what to probe (lab values fill what is left out)."""

    domain: str | None = None
    mx_hosts: tuple[str, ...] = ()
    submission_hosts: tuple[str, ...] = ()
    mailbox_hosts: tuple[str, ...] = ()
    selectors: tuple[str, ...] = ()
    sending_ips: tuple[str, ...] = ()
    discover_selectors: bool = False
    resolver: str | None = None
    ca_file: str | None = None
    credentials: str | None = None  # "env:NAME" | "file:PATH"
    dkim_keys: Mapping[str, str] = field(default_factory=dict)
    timeouts: Timeouts = field(default_factory=Timeouts)
    message: MessageOptions = field(default_factory=MessageOptions)
    thresholds: Thresholds = field(default_factory=Thresholds)
    dnsbls: tuple[str, ...] | None = None  # IP blocklist zones (None: the defaults / the lab's)
    domain_blocklists: tuple[str, ...] | None = None  # domain blocklist zones
    # Which fields the YAML gave (so lab defaults fill only the others).
    given: frozenset[str] = frozenset()
    message_given: frozenset[str] = frozenset()

    def as_target(self, domain: str | None = None) -> Target:
        """The Target these fields describe (`domain` when the section gives none)."""
        chosen = self.domain if self.domain is not None else domain
        if chosen is None:
            raise ValueError("a TargetSpec without a domain needs one given")
        return Target(
            domain=chosen,
            mx_hosts=self.mx_hosts,
            submission_hosts=self.submission_hosts,
            mailbox_hosts=self.mailbox_hosts,
            selectors=self.selectors,
            sending_ips=self.sending_ips,
            resolver=self.resolver,
            ca_file=self.ca_file,
            credentials_ref=self.credentials,
            timeouts=self.timeouts,
            dkim_keys=tuple(self.dkim_keys.items()),
            discover_selectors=self.discover_selectors,
            message=self.message,
            thresholds=self.thresholds,
            dnsbls=self.dnsbls,
            domain_blocklists=self.domain_blocklists,
        )


@dataclass(frozen=True)
class Expect:
    codes: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    max_severity: str | None = "warn"
    outcomes: str | None = None

    @property
    def severity_limit(self) -> Severity | None:
        return Severity(self.max_severity) if self.max_severity else None


@dataclass(frozen=True)
class Scenario:
    name: str
    source: str  # the file
    line: int  # where the document starts (1-based)
    description: str = ""
    marks: tuple[str, ...] = ()
    collect: bool = True
    lab: bool = False
    lab_name: str | None = None  # `lab: {name: NAME}`: the running lab NAME (probes.lab.running)
    lab_line: int | None = None  # the line of that `name` (errors about the running lab)
    lab_spec: LabSpec | None = None
    lab_flavours: tuple[str, ...] = ()  # the matrix this scenario runs on ("mta+front")
    flavour: str | None = None  # set on one cell of that matrix (see flavour_cells)
    target: TargetSpec = field(default_factory=TargetSpec)
    probes: tuple[str, ...] = ()
    expect: Expect = field(default_factory=Expect)

    @property
    def uses_lab(self) -> bool:
        return self.lab or self.lab_spec is not None or self.lab_name is not None

    def lab_spec_to_start(self) -> LabSpec | None:
        """The spec of the lab this scenario starts (None: the default lab)."""
        if self.flavour is None:
            return self.lab_spec
        from probes.lab.flavours import with_flavour
        from probes.lab.spec import LabSpec

        return with_flavour(self.lab_spec or LabSpec(), self.flavour)

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}"


def flavour_cells(scenario: Scenario) -> list[tuple[Scenario, str | None]]:
    """(scenario, skip reason or None) for each lab flavour it runs on: the scenario itself
    when it names no `lab_flavours`, else one cell per flavour named `name[flavour]`."""
    if not scenario.lab_flavours:
        return [(scenario, None)]
    from probes.lab.flavours import unsupported_reason

    cells = []
    for flavour in scenario.lab_flavours:
        cell = dataclasses.replace(
            scenario, name=f"{scenario.name}[{flavour}]", lab_flavours=(), flavour=flavour
        )
        spec = cell.lab_spec_to_start()
        assert spec is not None
        reason = unsupported_reason(spec)
        cells.append((cell, f"{flavour} cannot express this lab: {reason}" if reason else None))
    return cells


# The document's top-level fields and their types (lab_spec is validated by LabSpec).
_TOP_FIELDS: dict[str, Any] = {
    "name": str,
    "description": str,
    "marks": tuple[str, ...],
    "collect": bool,
    "lab": "lab",
    "lab_spec": "lab_spec",
    "lab_flavours": "lab_flavours",
    "target": "target",
    "probes": tuple[str, ...],
    "expect": Expect,
}
_TARGET_SKIP = frozenset({"given", "message_given"})
# `target:` fields spelled otherwise than the Target's (probes.validate names Target fields).
TARGET_FIELD = {"credentials": "credentials_ref"}


def spec_field(target_field: str) -> str:
    """The `target:` field path of a Target field path (`credentials_ref` -> `credentials`)."""
    head, sep, rest = target_field.partition("[")
    head = next((k for k, v in TARGET_FIELD.items() if v == head), head)
    return f"{head}{sep}{rest}"


# ----- loading ---------------------------------------------------------------------------------
def load_file(path: str | Path, available: Iterable[str] | None = None) -> list[Scenario]:
    """Every scenario in a YAML file (one per non-empty document), validated.

    `available` is the installed probe ids (default: from the registry), against which the
    `probes` globs are checked; a mapping id -> probe class also gives the codes the probes
    declare, against which the `expect` codes are checked (else they come from the registry).
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(source, None, None, f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ScenarioError(source, None, None, "not UTF-8 text") from None
    return load_text(text, source, available)


def load_text(text: str, source: str, available: Iterable[str] | None = None) -> list[Scenario]:
    try:
        nodes = documents(text)
    except YamlSyntaxError as exc:
        raise ScenarioError(source, exc.line, None, str(exc)) from None
    if available is None:
        from probes.registry import load_probes

        available = load_probes()
    codes = _declared_codes(available)
    available = sorted(available)
    scenarios: list[Scenario] = []
    names: dict[str, int] = {}
    for node in nodes:
        scenario = _scenario(node, source, available, codes)
        if scenario.name in names:
            raise ScenarioError(
                source,
                scenario.line,
                "name",
                f"{scenario.name!r} is already the name of the scenario on line "
                f"{names[scenario.name]}",
            )
        names[scenario.name] = scenario.line
        scenarios.append(scenario)
    return scenarios


def load_paths(paths: Iterable[str | Path]) -> list[Scenario]:
    """The scenarios of several files, in order (ScenarioError on the first bad one)."""
    from probes.registry import load_probes

    available = load_probes()
    scenarios: list[Scenario] = []
    for path in paths:
        scenarios += load_file(path, available)
    return scenarios


class _Doc(YamlDoc):
    """One scenario document (probes.yaml_load.YamlDoc) whose errors are ScenarioErrors."""

    def __init__(self, node: yaml.Node, source: str) -> None:
        self.source = source
        try:
            super().__init__(node)
        except YamlSyntaxError as exc:
            raise ScenarioError(source, exc.line, None, str(exc)) from None

    def error(self, path: str, message: str) -> ScenarioError:
        return ScenarioError(self.source, self.line(path), path or None, message)

    def build(self, cls: type, data: Any, path: str, skip: frozenset[str] = frozenset()) -> Any:
        try:
            return build(cls, data, path, skip)
        except FieldError as exc:
            raise self.error(exc.path, exc.message) from None

    def convert(self, tp: Any, value: Any, path: str) -> Any:
        try:
            return convert(tp, value, path)
        except FieldError as exc:
            raise self.error(exc.path, exc.message) from None


def _scenario(
    node: yaml.Node, source: str, available: list[str], codes: Mapping[str, frozenset[str]]
) -> Scenario:
    doc = _Doc(node, source)
    data = doc.data
    if not isinstance(data, Mapping):
        raise doc.error("", f"a scenario is a mapping of fields, not a {kind(data)}")
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in _TOP_FIELDS:
            raise doc.error(str(key), f"unknown field; known: {', '.join(_TOP_FIELDS)}")
        tp = _TOP_FIELDS[key]
        if tp == "lab":
            values["lab"], values["lab_name"] = _lab(doc, value)
            if values["lab_name"] is not None:
                values["lab_line"] = doc.line("lab.name")
        elif tp == "lab_spec":
            values[key] = _lab_spec(doc, value)
        elif tp == "lab_flavours":
            values[key] = _lab_flavours(doc, value)
        elif tp == "target":
            values[key] = _target(doc, value)
        else:
            values[key] = doc.convert(tp, value, key)
    if "name" not in values:
        raise doc.error("name", "missing (every scenario needs a name)")
    if not values["name"].strip():
        raise doc.error("name", "must not be empty")
    if values.get("lab") is False and values.get("lab_spec") is not None:
        raise doc.error("lab", "false, but `lab_spec` is given (a lab spec starts the lab)")
    uses_lab = bool(values.get("lab")) or values.get("lab_spec") is not None
    if values.get("lab_flavours") and not uses_lab:
        raise doc.error("lab_flavours", "given, but the scenario does not use the lab")
    if values.get("lab_name") is not None:
        for other in ("lab_spec", "lab_flavours"):
            if values.get(other):
                raise doc.error(
                    other, "given, but the scenario probes a running lab (`lab: {name: …}`)"
                )
    if not uses_lab:
        from probes.scenario_placeholders import placeholders_in

        for where in placeholders_in(data.get("target"), "target"):
            raise doc.error(where, "a {lab.…} placeholder, but the scenario does not use the lab")
    target: TargetSpec = values.get("target", TargetSpec())
    if not uses_lab and target.domain is None:
        where = "target.domain" if "target" in values else "target"
        raise doc.error(where, "missing (required unless the scenario uses the lab)")
    for i, glob in enumerate(values.get("probes", ())):
        if not any(fnmatch.fnmatchcase(pid, glob) for pid in available):
            listed = ", ".join(available) or "none installed"
            raise doc.error(f"probes[{i}]", f"{glob!r} matches no probe; available: {listed}")
    expect: Expect = values.get("expect", Expect())
    _check_expect(doc, expect)
    _check_expect_codes(doc, expect, values.get("probes", ()), available, codes)
    for i, mark in enumerate(values.get("marks", ())):
        if not mark.isidentifier():
            raise doc.error(f"marks[{i}]", f"{mark!r} is not a valid mark name")
    return Scenario(source=source, line=doc.start, **values)


def _lab(doc: _Doc, value: Any) -> tuple[bool, str | None]:
    """`lab: true|false`, or `lab: {name: NAME}` (a running lab): (uses the lab, its name)."""
    if not isinstance(value, Mapping):
        return doc.convert(bool, value, "lab"), None
    unknown = [str(k) for k in value if k != "name"]
    if unknown:
        raise doc.error(f"lab.{unknown[0]}", "unknown field; known: name")
    name = value.get("name")
    if not isinstance(name, str):
        raise doc.error("lab.name", f"expected a lab name, got {kind(name)}")
    from probes.lab.state import check_name

    try:
        check_name(name)
    except ValueError as exc:
        raise doc.error("lab.name", str(exc)) from None
    return True, name


def _lab_spec(doc: _Doc, value: Any) -> LabSpec:
    from probes.lab.spec import LabSpec, LabSpecError

    if value is None:
        value = {}
    if isinstance(value, str):
        # A lab spec file (e.g. scenarios/labs/misconfigured.yaml), relative to this file.
        path = Path(doc.source).parent / value
        try:
            return LabSpec.from_yaml(path)
        except LabSpecError as exc:
            raise doc.error("lab_spec", str(exc)) from None
    if not isinstance(value, Mapping):
        raise doc.error("lab_spec", f"expected a mapping or a file name, got {kind(value)}")
    try:
        return LabSpec.from_mapping(value)
    except LabSpecError as exc:
        where = "lab_spec" if exc.field.startswith("(") else f"lab_spec.{exc.field}"
        raise doc.error(where, exc.reason) from None


def _lab_flavours(doc: _Doc, value: Any) -> tuple[str, ...]:
    from probes.lab.flavours import MATRIX, parse_flavour

    if value == "all":
        return MATRIX
    if isinstance(value, str) or not isinstance(value, list):
        raise doc.error("lab_flavours", f"expected `all` or a list, got {kind(value)}")
    chosen = []
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise doc.error(f"lab_flavours[{i}]", f"expected a string, got {kind(item)}")
        try:
            chosen.append("+".join(parse_flavour(item)))
        except ValueError as exc:
            raise doc.error(f"lab_flavours[{i}]", str(exc)) from None
    if not chosen:
        raise doc.error("lab_flavours", "empty (leave it out for the default lab)")
    return tuple(dict.fromkeys(chosen))


def _target(doc: _Doc, value: Any) -> TargetSpec:
    if not isinstance(value, Mapping):
        raise doc.error("target", f"expected a mapping, got {kind(value)}")
    from probes.scenario_placeholders import unknown_in

    for where, problem in unknown_in(value, "target"):
        raise doc.error(where, problem)
    message = value.get("message")
    if message is not None and not isinstance(message, Mapping):
        raise doc.error("target.message", f"expected a mapping, got {kind(message)}")
    spec = doc.build(TargetSpec, value, "target", skip=_TARGET_SKIP)
    spec = dataclasses.replace(
        spec,
        given=frozenset(str(k) for k in value),
        message_given=frozenset(str(k) for k in (message or {})),
    )
    _check_target(doc, spec)
    return spec


def _check_target(doc: _Doc, t: TargetSpec) -> None:
    """The one validation of a Target (probes.validate), on what the file gives (the lab fills
    the rest and the placeholders later, and that Target is checked again when built)."""
    from probes.scenario_placeholders import SAMPLE, fill
    from probes.validate import checked_target

    _, problems = checked_target(fill(t, SAMPLE).as_target(domain="lab.invalid"))
    if problems:
        name, problem = problems[0]
        raise doc.error(f"target.{spec_field(name)}", problem)


def _check_expect(doc: _Doc, e: Expect) -> None:
    severities = [s.value for s in Severity]
    if e.max_severity is not None and e.max_severity not in severities:
        raise doc.error(
            "expect.max_severity", f"{e.max_severity!r}; one of {', '.join(severities)}"
        )
    if e.outcomes is not None and e.outcomes not in OUTCOME_EXPECTATIONS:
        raise doc.error("expect.outcomes", f"{e.outcomes!r}; one of {OUTCOME_EXPECTATIONS}")
    both = sorted(set(e.codes) & set(e.absent))
    if both:
        raise doc.error("expect.absent", f"{', '.join(both)} also listed under expect.codes")


def _declared_codes(available: Iterable[str]) -> dict[str, frozenset[str]]:
    """The codes each probe declares: from the classes when `available` maps ids to them,
    else from the registry (ids it does not know declare nothing)."""
    from probes.codes import declared

    if isinstance(available, Mapping):
        classes = available
    else:
        from probes.registry import load_probes

        classes = load_probes()
    return {pid: frozenset(declared(cls)) for pid, cls in classes.items()}


def _check_expect_codes(
    doc: _Doc,
    e: Expect,
    globs: Iterable[str],
    available: list[str],
    codes: Mapping[str, frozenset[str]],
) -> None:
    """Every code `expect` names must be one a selected probe declares: a misspelt code
    would otherwise pass `absent` (or fail `codes`) forever. Checked at load time, before any
    lab starts; the error names the closest known codes."""
    globs = list(globs)
    selected = [p for p in available if not globs or any(fnmatch.fnmatchcase(p, g) for g in globs)]
    known = set().union(*(codes.get(p, frozenset()) for p in selected))
    everywhere = set().union(*codes.values()) if codes else set()
    for name in ("codes", "absent"):
        for i, code in enumerate(getattr(e, name)):
            if code in known:
                continue
            others = sorted(p for p in available if code in codes.get(p, frozenset()))
            if others:
                problem = (
                    f"{code} is declared only by {', '.join(others)}, which the scenario's "
                    "`probes` do not select"
                )
            else:
                # codes are UPPER_SNAKE_CASE: a lower-case spelling still finds its match
                close = difflib.get_close_matches(code.upper(), sorted(everywhere), n=3, cutoff=0.6)
                problem = f"{code} is not a code any selected probe declares" + (
                    f"; closest known: {', '.join(close)}" if close else ""
                )
            raise doc.error(f"expect.{name}[{i}]", f"{problem} (`mailprobe probes --codes`)")
