"""Probes declare their finding codes (probes.codes): the declaration, its check on load, the
registry's list (`mailprobe probes --codes`), undeclared codes as BUG, docs/contract.md kept
equal to the declarations, and scenario `expect` codes checked at load time."""

from __future__ import annotations

import json
import re
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import ClassVar

import pytest

from probes import cli, registry
from probes.codes import Code, Fix, UndeclaredCode, declare
from probes.errors import PluginError
from probes.model import ErrorReason, Finding, Outcome, Severity, Target
from probes.probe import BaseProbe
from probes.runner import run_probes
from probes.scenario import ScenarioError, load_text

REPO = Path(__file__).parents[2]
TARGET = Target(domain="example.com")
DONE = Code("TOY_DONE", "the toy probe ran", Severity.INFO)


# ----- the declaration ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (("open_relay", "x", Severity.FAIL), "UPPER_SNAKE_CASE"),
        (("OPEN RELAY", "x", Severity.FAIL), "UPPER_SNAKE_CASE"),
        (("_X", "x", Severity.FAIL), "UPPER_SNAKE_CASE"),
        (("X_", "x", Severity.FAIL), "UPPER_SNAKE_CASE"),
        (("X", "", Severity.FAIL), "one non-empty line"),
        (("X", "two\nlines", Severity.FAIL), "one non-empty line"),
        (("X", "x" * 201, Severity.FAIL), "at most 200"),
        (("X", "x", "fail"), "not a probes.model.Severity"),
        (("X", "x", Severity.FAIL, ""), "fix must be None or a probes.codes.Fix"),
        (("X", "x", Severity.FAIL, Fix(" ")), "fix.what must be non-empty text"),
        (("X", "x", Severity.FAIL, Fix("do", {"bind": "x"})), "unknown system 'bind'"),
        (("X", "x", Severity.FAIL, Fix("do", {"zone": ""})), r"fix.lines\['zone'\]"),
    ],
)
def test_a_malformed_code_is_refused(args, problem):
    with pytest.raises(ValueError, match=problem):
        Code(*args)


def test_declare_merges_groups_sorted_and_read_only():
    a = Code("B_CODE", "b", Severity.WARN)
    shared = declare(a, Code("A_CODE", "a", Severity.INFO))
    codes = declare(shared, [a], DONE)
    assert list(codes) == ["A_CODE", "B_CODE", "TOY_DONE"]
    assert codes["B_CODE"] is a
    with pytest.raises(TypeError):
        codes["X"] = DONE  # type: ignore[index]


def test_declare_refuses_one_code_with_two_meanings():
    with pytest.raises(ValueError, match="TOY_DONE is declared twice"):
        declare(DONE, Code("TOY_DONE", "something else", Severity.INFO))


def test_code_json_has_its_fix_and_docs_section():
    assert DONE.to_json() == {
        "code": "TOY_DONE",
        "meaning": "the toy probe ran",
        "severity": "info",
        "fix": None,
        "docs": "docs/codes.md#toy_done",
    }
    fixed = Code("TOY_BAD", "bad", Severity.WARN, Fix("Do it.", {"zone": "x IN TXT y"}))
    assert fixed.to_json()["fix"] == {"what": "Do it.", "lines": {"zone": "x IN TXT y"}}


# ----- the registry checks declarations on load --------------------------------------------------
class Declaring:
    id = "toy.declaring"
    description = "declares its codes"
    codes = declare(DONE)

    def run(self, target, net):
        return []


class Undeclaring:
    id = "toy.undeclaring"
    description = "declares nothing"

    def run(self, target, net):
        return []


class EmptyCodes(Declaring):
    id = "toy.empty"
    codes = declare()


class ListCodes(Declaring):
    id = "toy.list"
    codes: ClassVar = [DONE]


class WrongKey(Declaring):
    id = "toy.wrong_key"
    codes: ClassVar = {"OTHER": DONE}


class NotACode(Declaring):
    id = "toy.not_a_code"
    codes: ClassVar = {"TOY_DONE": ("TOY_DONE", "x", "info")}


class Conflicting(Declaring):
    id = "toy.conflicting"
    codes = declare(Code("TOY_DONE", "means something else here", Severity.FAIL))


def _ep(name: str, obj: str) -> EntryPoint:
    return EntryPoint(name=name, value=f"{__name__}:{obj}", group=registry.PROBE_GROUP)


@pytest.fixture
def installed(monkeypatch):
    def install(*eps: EntryPoint) -> None:
        monkeypatch.setattr(
            registry, "entry_points", lambda *, group: [e for e in eps if e.group == group]
        )

    return install


@pytest.mark.parametrize(
    ("name", "obj", "problem"),
    [
        ("toy.undeclaring", "Undeclaring", "declares no finding codes"),
        ("toy.empty", "EmptyCodes", "`codes` is empty"),
        ("toy.list", "ListCodes", "not a mapping code -> Code"),
        ("toy.wrong_key", "WrongKey", "key 'OTHER' holds the declaration of 'TOY_DONE'"),
        ("toy.not_a_code", "NotACode", "not a probes.codes.Code"),
    ],
)
def test_a_malformed_declaration_is_a_plugin_error_naming_the_entry_point(
    installed, name, obj, problem
):
    installed(_ep(name, obj))
    with pytest.raises(PluginError) as info:
        registry.load_probes()
    message = str(info.value)
    assert f"entry point {name!r} = '{__name__}:{obj}' in group 'mailprobe.probes'" in message
    assert problem in message


def test_a_code_declared_differently_by_two_probes_is_a_plugin_error_naming_both(installed):
    installed(_ep("toy.declaring", "Declaring"), _ep("toy.conflicting", "Conflicting"))
    with pytest.raises(PluginError) as info:
        registry.load_probes()
    message = str(info.value)
    assert "TOY_DONE" in message
    assert "'toy.declaring'" in message and "'toy.conflicting'" in message


def test_a_plugin_error_in_a_declaration_is_exit_2(installed, capsys):
    installed(_ep("toy.undeclaring", "Undeclaring"))
    assert cli.main(["probes", "--codes"]) == 2
    assert "toy.undeclaring" in capsys.readouterr().err


# ----- the full list --------------------------------------------------------------------------
def test_the_catalogue_names_every_declaring_probe():
    catalogue = registry.code_catalogue()
    assert catalogue["SMTP_OPEN_RELAY"].probes == ("smtp.relay",)
    assert catalogue["CERT_EXPIRED"].probes == (
        "imap.starttls",
        "imap.tls",
        "pop3.starttls",
        "pop3.tls",
        "smtp.mx",
        "smtp.submission",
        "smtp.submissions",
    )
    assert catalogue["PORT_CLOSED"].probes[-1] == "smtp.swaks"
    assert catalogue["MESSAGE_NOT_DELIVERED"].probes == ("message.receiver", "message.roundtrip")
    assert catalogue["MX_MISSING"].declaration.severity is Severity.FAIL


def test_shared_codes_are_one_declaration():
    probes = registry.load_probes()
    smtp_mx, swaks = probes["smtp.mx"].codes, probes["smtp.swaks"].codes
    assert smtp_mx["PORT_CLOSED"] is swaks["PORT_CLOSED"]
    assert probes["imap.tls"].codes["CERT_OK"] is smtp_mx["CERT_OK"]


def test_endpoint_probes_declare_only_what_their_port_can_show():
    probes = registry.load_probes()
    assert "STARTTLS_NOT_OFFERED" not in probes["smtp.submissions"].codes  # implicit TLS
    assert "TLS_HANDSHAKE_FAILED" not in probes["smtp.mx"].codes  # STARTTLS
    assert "AUTH_OK" not in probes["smtp.mx"].codes  # port 25 never logs in
    assert "SMTP_VRFY_ENABLED" not in probes["smtp.submission"].codes
    assert {"AUTH_OK", "STARTTLS_FAILED"} <= set(probes["imap.starttls"].codes)


def test_probes_codes_prints_one_line_per_code(capsys):
    assert cli.main(["probes", "--codes"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(registry.code_catalogue())
    relay = next(line for line in lines if line.startswith("SMTP_OPEN_RELAY "))
    assert re.fullmatch(r"SMTP_OPEN_RELAY +fail  RCPT TO a foreign .* \[smtp\.relay\]", relay)


def test_probes_codes_json(capsys):
    assert cli.main(["probes", "--codes", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    by_code = {entry["code"]: entry for entry in doc["codes"]}
    assert by_code["SMTP_OPEN_RELAY"] == {
        "code": "SMTP_OPEN_RELAY",
        "meaning": registry.code_catalogue()["SMTP_OPEN_RELAY"].declaration.meaning,
        "severity": "fail",
        "fix": registry.code_catalogue()["SMTP_OPEN_RELAY"].declaration.to_json()["fix"],
        "docs": "docs/codes.md#smtp_open_relay",
        "probes": ["smtp.relay"],
    }


def test_probes_json_lists_each_probes_codes(capsys):
    assert cli.main(["probes", "--format", "json"]) == 0
    doc = {p["id"]: p for p in json.loads(capsys.readouterr().out)["probes"]}
    assert doc["dns.mta_sts"]["codes"] == [
        "MTA_STS_MISSING",
        "MTA_STS_MULTIPLE_RECORDS",
        "MTA_STS_PRESENT",
        "MTA_STS_SYNTAX_ERROR",
    ]


# ----- an undeclared code is a bug ------------------------------------------------------------
class Typo(BaseProbe):
    id = "toy.typo"
    description = "finds something, then emits a code it never declared"
    codes = declare(DONE)

    def run(self, target, net):
        yield self.finding("TOY_DONE", Severity.INFO, "ran")
        yield self.finding("TOY_DNOE", Severity.FAIL, "a typo")


class Bare:
    """A probe that does not use BaseProbe: it builds its Findings itself."""

    id = "toy.bare"
    description = "builds findings by hand"
    codes = declare(DONE)

    def run(self, target, net):
        yield Finding(self.id, "TOY_DONE", Severity.INFO, "ran")
        yield Finding(self.id, "OPEN_RELAY", Severity.FAIL, "not declared")


@pytest.mark.parametrize("probe", [Typo(), Bare()], ids=["BaseProbe.finding", "runner"])
def test_a_probe_emitting_an_undeclared_code_ends_error_bug_naming_it(probe):
    [result] = run_probes([probe], TARGET)
    assert (result.outcome, result.error) == (Outcome.ERROR, ErrorReason.BUG)
    assert [f.code for f in result.findings] == ["TOY_DONE"]  # what came before is kept
    assert result.error_detail.startswith("UndeclaredCode: probe toy.")
    undeclared = "TOY_DNOE" if isinstance(probe, Typo) else "OPEN_RELAY"
    assert f"emitted {undeclared}, a code it does not declare" in result.error_detail
    if isinstance(probe, Typo):
        assert "closest declared: TOY_DONE" in result.error_detail


def test_base_probe_finding_refuses_an_undeclared_code_outside_the_runner():
    with pytest.raises(UndeclaredCode, match=r"toy\.typo emitted NOPE"):
        Typo().finding("NOPE", Severity.INFO, "x")


# ----- docs/contract.md lists exactly the declared codes ------------------------------------------
def _contract_codes() -> tuple[dict[str, str], set[str]]:
    """(code -> documented default severity, every code-like name the section mentions)."""
    text = (REPO / "docs" / "contract.md").read_text()
    section = text[text.index("\n## Finding codes") :]
    end = section.find("\n## ", 5)
    section = section if end < 0 else section[:end]
    mentioned = set(re.findall(r"`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)`", section))
    listed: dict[str, str] = {}
    # Each bullet starts with its codes, each followed (or a group of them) by the default
    # severity in brackets; a colon after a bracket starts the meaning, whose mentions of other
    # codes are not entries.
    token = re.compile(r"`([A-Z][A-Z0-9_]+)`|\[(\w+)[^\]]*\]|(:\s)")
    for item in re.split(r"\n- ", section)[1:]:
        pending: list[str] = []
        seen_bracket = False
        for match in token.finditer(item):
            code, severity, colon = match.groups()
            if code:
                pending.append(code)
            elif severity:
                seen_bracket = True
                listed.update(dict.fromkeys(pending, severity))
                pending = []
            elif colon and seen_bracket:
                break
    return listed, mentioned


def test_contract_lists_exactly_the_declared_codes_with_their_severities():
    catalogue = registry.code_catalogue()
    listed, mentioned = _contract_codes()
    assert sorted(set(catalogue) - set(listed)) == [], "declared but not in docs/contract.md"
    assert sorted(set(listed) - set(catalogue)) == [], "in docs/contract.md but not declared"
    assert sorted(mentioned - set(catalogue)) == [], "docs/contract.md names unknown codes"
    wrong = {
        code: (listed[code], entry.declaration.severity.value)
        for code, entry in catalogue.items()
        if listed[code] != entry.declaration.severity.value
    }
    assert wrong == {}, "documented severity differs from the declared default"


def test_the_per_probe_docs_tables_agree_with_the_declarations():
    """dns.md, transport.md and message.md each have code tables (| `CODE` | severity | when |):
    together they cover every declared code, name no other, and give its default severity
    first."""
    catalogue = registry.code_catalogue()
    seen: dict[str, set[str]] = {}
    for page in ("dns.md", "transport.md", "message.md"):
        for line in (REPO / "docs" / page).read_text().splitlines():
            if not line.startswith("| `"):
                continue
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            severity = re.match(r"\w+", cells[1])
            for code in re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0]):
                seen.setdefault(code, set()).add(severity.group(0) if severity else cells[1])
    assert sorted(set(catalogue) - set(seen)) == [], "declared codes no per-probe page lists"
    assert sorted(set(seen) - set(catalogue)) == [], "codes the per-probe pages list, undeclared"
    wrong = {
        code: sorted(seen[code])
        for code, entry in catalogue.items()
        if seen[code] != {entry.declaration.severity.value}
    }
    assert wrong == {}, "a per-probe page gives another default severity"


# ----- scenarios: an unknown expect code is refused at load time ------------------------------
AVAILABLE = ["dns.mx", "dns.spf", "smtp.mx", "smtp.relay"]


def scenario_error(text: str) -> str:
    with pytest.raises(ScenarioError) as info:
        load_text(text, "typo.yaml", AVAILABLE)
    return str(info.value)


def test_an_expect_code_no_probe_declares_names_file_line_and_the_closest_codes():
    message = scenario_error(
        "name: typo\nlab: true\nexpect:\n  codes: [MX_MISSING]\n"
        "  absent:\n    - SMTP_VRFY_ENABLED\n    - OPEN_RELAY\n"
    )
    assert message.startswith("typo.yaml:7: field `expect.absent[1]`: OPEN_RELAY is not a code")
    assert "closest known: SMTP_OPEN_RELAY" in message


def test_a_lower_case_expect_code_is_refused_with_its_upper_case_match():
    message = scenario_error("name: lower\nlab: true\nexpect:\n  absent: [smtp_open_relay]\n")
    assert message.startswith("typo.yaml:4: field `expect.absent[0]`: smtp_open_relay is not")
    assert "closest known: SMTP_OPEN_RELAY" in message


def test_an_expect_code_of_an_unselected_probe_is_refused_naming_its_probe():
    message = scenario_error(
        "name: narrow\ntarget: {domain: example.com}\nprobes: [dns.mx]\n"
        "expect: {codes: [MX_MISSING, SPF_MISSING]}\n"
    )
    assert message.startswith("typo.yaml:4: field `expect.codes[1]`: SPF_MISSING is declared")
    assert "only by dns.spf, which the scenario's `probes` do not select" in message


def test_expect_codes_of_selected_probes_load():
    (s,) = load_text(
        "name: ok\ntarget: {domain: example.com}\nprobes: ['dns.*']\n"
        "expect: {codes: [SPF_MISSING], absent: [MX_MISSING]}\n",
        "ok.yaml",
        AVAILABLE,
    )
    assert s.expect.absent == ("MX_MISSING",)


def test_every_shipped_scenario_names_only_declared_codes():
    from probes.scenario import load_file

    files = sorted((REPO / "scenarios").rglob("*.yaml"))
    loaded = [s for f in files if "labs" not in f.parts for s in load_file(f)]
    assert any(s.expect.absent or s.expect.codes for s in loaded)


# ----- ... before any lab starts: `mailprobe run` and pytest collection -----------------------
TYPO_SCENARIO = (
    "name: typo\nlab: true\nprobes: ['smtp.*']\nexpect:\n"
    "  codes: [CERT_EXPIRED]\n  absent: [OPEN_RELAY]\n"
)


@pytest.fixture
def labs_started(monkeypatch) -> list[object]:
    """Every Lab constructed in this process (none may be, for a bad scenario); constructing
    one fails, so a test that gets this far never reaches a container engine."""
    from probes.lab.lab import Lab

    started: list[object] = []

    def record(self, *args, **kwargs):
        started.append(self)
        raise RuntimeError("this test must not start a lab")

    monkeypatch.setattr(Lab, "__init__", record)
    return started


def test_run_refuses_an_unknown_expect_code_with_exit_2_before_any_lab(
    tmp_path, capsys, labs_started
):
    path = tmp_path / "typo.yaml"
    path.write_text(TYPO_SCENARIO)
    assert cli.main(["run", str(path), "--output", str(tmp_path / "out"), "--no-history"]) == 2
    err = capsys.readouterr().err
    assert f"{path}:6: field `expect.absent[0]`: OPEN_RELAY is not a code" in err
    assert "closest known: SMTP_OPEN_RELAY" in err
    assert labs_started == []
    assert not (tmp_path / "out").exists()


pytest_plugins = ["pytester"]


def test_pytest_collection_refuses_an_unknown_expect_code_before_any_lab(
    pytester: pytest.Pytester, labs_started
):
    import probes.pytest_plugin

    (pytester.path / "scenarios").mkdir()
    bad = pytester.path / "scenarios" / "typo.yaml"
    bad.write_text(TYPO_SCENARIO)
    extra = (
        []
        if hasattr(probes.pytest_plugin, "pytest_collect_file")
        else ["-p", "probes.pytest_scenarios"]
    )
    result = pytester.runpytest(*extra, "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED  # exit 2: errors during collection
    text = "\n".join(result.outlines)
    assert f"{bad}:6: field `expect.absent[0]`: OPEN_RELAY is not a code" in text
    assert "closest known: SMTP_OPEN_RELAY" in text
    assert labs_started == []


def test_every_code_a_declaration_follows_is_declared():
    catalogue = registry.code_catalogue()
    for code, entry in catalogue.items():
        for other in entry.declaration.follows:
            assert other in catalogue, f"{code} follows {other}, which no probe declares"
    assert "DNSSEC_BOGUS" in catalogue["DANE_TLSA_UNVERIFIABLE"].declaration.follows
