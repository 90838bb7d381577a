"""Scenario files: the loader (errors name file, line and field), the target a scenario
builds, how expectations are judged, `mailprobe run` and pytest collection — all offline.

Probe runs here point at a closed loopback port as resolver (127.0.0.1:9): nothing leaves the
machine, and the probes that need DNS end in ERROR/TIMEOUT.
"""

from __future__ import annotations

import argparse
import json
import os
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

import probes.pytest_plugin
from probes.cli_run import register
from probes.credentials import Credentials
from probes.lab.lab import LabInfo
from probes.model import Finding, Outcome, ProbeResult, Severity, Target
from probes.report.run import RunReport
from probes.scenario import ScenarioError, flavour_cells, load_file, load_text
from probes.scenario_run import build_target, findings_table, judge

pytest_plugins = ["pytester"]

REPO = Path(__file__).parents[2]
AVAILABLE = ["dns.dkim", "dns.mx", "dns.spf", "smtp.relay"]
DEAD_RESOLVER = "127.0.0.1:9"  # nothing listens: DNS questions time out, nothing leaves the host


def load(text: str, source: str = "s.yaml"):
    return load_text(textwrap.dedent(text), source, AVAILABLE)


def error_of(text: str) -> str:
    with pytest.raises(ScenarioError) as excinfo:
        load(text)
    return str(excinfo.value)


# ----- loading ---------------------------------------------------------------------------------
def test_every_shipped_scenario_loads_and_lab_specs_are_not_scenarios():
    files = [p for p in sorted((REPO / "scenarios").rglob("*.yaml")) if "labs" not in p.parts]
    names = {s.name: s for f in files for s in load_file(f)}
    assert {"lab-correct", "lab-expired-cert", "lab-open-relay"} <= set(names)
    assert names["lab-expired-cert"].lab_spec.tls.certificate == "expired"
    assert names["lab-expired-cert"].expect.codes == ("CERT_EXPIRED",)
    assert names["lab-open-relay"].lab_spec.exim.open_relay is True
    assert names["lab-correct"].expect.max_severity == "info"
    examples = [s for f in files if "examples" in f.parts for s in load_file(f)]
    assert examples and all(not s.collect for s in examples)
    assert all(s.collect for s in names.values() if s.source.find("examples") < 0)


def test_all_fields_are_read_into_the_scenario():
    (s,) = load(
        """\
        name: full
        description: all of it
        marks: [nightly, slow]
        target:
          domain: Example.COM
          mx_hosts: [mx1.example.com]
          submission_hosts: [smtp.example.com]
          mailbox_hosts: [imap.example.com]
          selectors: [s1]
          sending_ips: [192.0.2.1]
          discover_selectors: true
          resolver: 127.0.0.1:5353
          ca_file: /tmp/ca.pem
          credentials: env:LOGIN
          dkim_keys: {s1: /tmp/s1.key}
          timeouts: {connect: 2, io: 3.5, dns: 1, probe: 60}
          message:
            send_via: mx
            retrieve_via: pop3s
            deadline_s: 12
            extra_headers: [[X-Test, "1"]]
        probes: ["dns.*", smtp.relay]
        expect:
          codes: [SPF_MISSING]
          absent: [MX_MISSING]
          max_severity: fail
          outcomes: COMPLETED
        """
    )
    assert (s.name, s.description, s.marks, s.line) == ("full", "all of it", ("nightly", "slow"), 1)
    assert s.probes == ("dns.*", "smtp.relay") and not s.uses_lab
    target = build_target(s)
    assert target.domain == "example.com"
    assert target.mx_hosts == ("mx1.example.com",)
    assert target.sending_ips == ("192.0.2.1",)
    assert target.credentials_ref == "env:LOGIN"
    assert target.dkim_keys == (("s1", "/tmp/s1.key"),)
    assert (target.timeouts.connect, target.timeouts.io, target.timeouts.probe) == (2.0, 3.5, 60.0)
    assert target.message.send_via == "mx" and target.message.retrieve_via == "pop3s"
    assert target.message.deadline_s == 12.0
    assert target.message.extra_headers == (("X-Test", "1"),)
    assert target.discover_selectors is True
    assert s.expect.codes == ("SPF_MISSING",) and s.expect.absent == ("MX_MISSING",)
    assert (s.expect.max_severity, s.expect.outcomes) == ("fail", "COMPLETED")


def test_documents_of_one_file_are_scenarios_with_their_own_lines():
    scenarios = load(
        """\
        # comment
        name: one
        lab: true
        ---
        ---
        name: two
        target: {domain: example.com}
        """
    )
    assert [(s.name, s.line) for s in scenarios] == [("one", 2), ("two", 6)]
    assert scenarios[0].uses_lab and scenarios[1].expect.max_severity == "warn"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: a\n  b: [\n", "s.yaml:2: invalid YAML: mapping values are not allowed here"),
        ("- a\n", "s.yaml:1: a scenario is a mapping of fields, not a list"),
        ("lab: true\n", "s.yaml:1: field `name`: missing (every scenario needs a name)"),
        (
            "name: a\nlab: true\ncolour: red\n",
            "s.yaml:3: field `colour`: unknown field; known: name, description, marks, collect, "
            "lab, lab_spec, lab_flavours, target, probes, expect",
        ),
        (
            "name: a\ntarget:\n  mx_hosts: [a]\n",
            "s.yaml:2: field `target.domain`: missing (required unless the scenario uses the lab)",
        ),
        (
            "name: a\n",
            "s.yaml:1: field `target`: missing (required unless the scenario uses the lab)",
        ),
        (
            "name: a\ntarget:\n  domain: example.com\n  timeouts:\n    dns: fast\n",
            "s.yaml:5: field `target.timeouts.dns`: expected a number, got 'fast'",
        ),
        (
            "name: a\ntarget:\n  domain: example.com\n  mx_hosts: mx.example.com\n",
            "s.yaml:4: field `target.mx_hosts`: expected a list, got str 'mx.example.com'",
        ),
        (
            "name: a\ntarget:\n  domain: example.com\n  message:\n    send_via: pigeon\n",
            "s.yaml:5: field `target.message.send_via`: 'pigeon'; one of submission, "
            "submissions, mx",
        ),
        (
            "name: a\nlab: yes please\n",
            "s.yaml:2: field `lab`: expected true or false, got 'yes please'",
        ),
        (
            "name: a\nlab_spec:\n  tls:\n    certificate: rotten\n",
            "s.yaml:4: field `lab_spec.tls.certificate`: 'rotten'; one of valid, expired, "
            "expiring-soon, self-signed, wrong-host",
        ),
        (
            "name: a\nlab: false\nlab_spec: {}\n",
            "s.yaml:2: field `lab`: false, but `lab_spec` is given (a lab spec starts the lab)",
        ),
        (
            "name: a\nlab: true\nprobes: [dns.mx, nope.*]\n",
            "s.yaml:3: field `probes[1]`: 'nope.*' matches no probe; available: dns.dkim, "
            "dns.mx, dns.spf, smtp.relay",
        ),
        (
            "name: a\nlab: true\nexpect:\n  max_severity: bad\n",
            "s.yaml:4: field `expect.max_severity`: 'bad'; one of info, warn, fail",
        ),
        (
            "name: a\nlab: true\n---\nname: a\nlab: true\n",
            "s.yaml:4: field `name`: 'a' is already the name of the scenario on line 1",
        ),
        (
            "name: a\nlab: true\nlab_flavours: [postfix, qmail+dovecot]\n",
            "s.yaml:3: field `lab_flavours[1]`: lab flavour 'qmail+dovecot': MTA 'qmail' is not "
            "one of exim, postfix, sendmail",
        ),
        (
            "name: a\nlab: true\nlab_flavours: [exim+courier]\n",
            "s.yaml:3: field `lab_flavours[0]`: lab flavour 'exim+courier': mailbox front "
            "'courier' is not one of dovecot, perdition",
        ),
        (
            "name: a\nlab: true\nlab_flavours: every\n",
            "s.yaml:3: field `lab_flavours`: expected `all` or a list, got str 'every'",
        ),
        (
            "name: a\ntarget:\n  domain: example.com\nlab_flavours: all\n",
            "s.yaml:4: field `lab_flavours`: given, but the scenario does not use the lab",
        ),
        (
            "name: a\ntarget:\n  domain: example.com\n  sending_ips: [1.2.3]\n",
            "s.yaml:4: field `target.sending_ips[0]`: '1.2.3' is not an IP address",
        ),
    ],
)
def test_bad_scenarios_name_file_line_and_field(text, message):
    assert error_of(text) == message


def test_lab_flavours_all_runs_the_scenario_once_per_flavour_of_the_matrix():
    from probes.lab.flavours import MATRIX

    (scenario,) = load("name: a\nlab: true\nlab_flavours: all\n")
    cells = flavour_cells(scenario)
    assert [c.name for c, _ in cells] == [f"a[{f}]" for f in MATRIX]
    assert all(skip is None for _, skip in cells)
    spec = cells[1][0].lab_spec_to_start()
    assert (spec.mta, spec.mailbox_front) == ("postfix", "dovecot")
    assert scenario.lab_spec_to_start() is None  # without a flavour: the default lab


def test_a_lab_spec_keeps_its_fields_in_every_flavour_and_names_may_omit_dovecot():
    (scenario,) = load(
        "name: a\nlab_flavours: [sendmail, exim+perdition]\nlab_spec:\n  exim:\n    vrfy: true\n"
    )
    assert scenario.lab_flavours == ("sendmail+dovecot", "exim+perdition")
    specs = [cell.lab_spec_to_start() for cell, _ in flavour_cells(scenario)]
    assert [(s.flavour, s.exim.vrfy) for s in specs] == [
        ("sendmail+dovecot", True),
        ("exim+perdition", True),
    ]


def test_a_flavour_that_cannot_express_the_lab_spec_is_a_skipped_cell_naming_why(monkeypatch):
    from probes.lab import postfix_conf

    monkeypatch.setattr(
        postfix_conf,
        "unsupported",
        lambda spec: [("exim.expn", "no EXPN command")] if spec.exim.expn else [],
    )
    (scenario,) = load(
        "name: a\nlab_flavours: [exim, postfix]\nlab_spec:\n  exim:\n    expn: true\n"
    )
    (_, none), (postfix, skip) = flavour_cells(scenario)
    assert postfix.name == "a[postfix+dovecot]"
    assert none is None
    assert skip == "postfix+dovecot cannot express this lab: exim.expn: no EXPN command"


def test_a_password_pasted_as_credentials_is_not_repeated_in_the_error():
    message = error_of("name: a\ntarget:\n  domain: example.com\n  credentials: hunter2\n")
    assert message.startswith("s.yaml:4: field `target.credentials`: expected env:NAME")
    assert "hunter2" not in message


def test_scenario_error_is_a_usage_error_with_its_parts():
    from probes.errors import UsageError

    with pytest.raises(UsageError) as excinfo:
        load("name: a\nlab: 3\n")
    exc = excinfo.value
    assert (exc.source, exc.line, exc.field) == ("s.yaml", 2, "lab")


def test_lab_spec_may_name_a_spec_file_next_to_the_scenario(tmp_path):
    (tmp_path / "broken.yaml").write_text("tls:\n  certificate: self-signed\n")
    scenario_file = tmp_path / "s.yaml"
    scenario_file.write_text("name: a\nlab_spec: broken.yaml\n---\nname: b\nlab_spec: none.yaml\n")
    with pytest.raises(ScenarioError) as excinfo:
        load_file(scenario_file, AVAILABLE)
    assert str(excinfo.value).startswith(f"{scenario_file}:5: field `lab_spec`: ")
    assert "cannot read" in str(excinfo.value)
    scenario_file.write_text("name: a\nlab_spec: broken.yaml\n")
    (s,) = load_file(scenario_file, AVAILABLE)
    assert s.uses_lab and s.lab_spec.tls.certificate == "self-signed"


def test_unreadable_file_is_named(tmp_path):
    with pytest.raises(ScenarioError) as excinfo:
        load_file(tmp_path / "missing.yaml", AVAILABLE)
    assert (
        str(excinfo.value) == f"{tmp_path / 'missing.yaml'}: cannot read: No such file or directory"
    )


# ----- the target with the lab --------------------------------------------------------------
LAB = LabInfo(
    lab_id="t1",
    domain="example.test",
    resolver="127.9.9.53:53",
    hosts={"mx": "127.9.9.25", "outbound": "127.9.9.26", "mailbox": "127.9.9.143"},
    client_ips={"authorized": "127.9.9.10", "unauthorized": "127.9.9.11"},
    user="user@example.test",
    password="not-used-here",
    ca_file="/lab/ca.pem",
    dkim={"mail": "/lab/mail.key"},
    dkimpy_keys={},
    ports={"smtp": 25},
    lab_dir="/lab",
    receiver="127.9.9.40",
    receiver_domain="receiver.test",
)


def test_lab_scenario_target_defaults_come_from_the_lab():
    (s,) = load("name: a\nlab: true\n")
    t = build_target(s, LAB)
    assert t.domain == "example.test"
    assert t.mx_hosts == ("mx.example.test",)
    assert t.submission_hosts == ("mx.example.test", "outbound.example.test")
    assert t.mailbox_hosts == ("mailbox.example.test",)
    assert t.selectors == ("mail",) and t.dkim_keys == (("mail", "/lab/mail.key"),)
    assert t.sending_ips == ("127.9.9.10", "127.9.9.26")
    assert (t.resolver, t.ca_file) == ("127.9.9.53:53", "/lab/ca.pem")
    # The lab's login travels in memory in the Target, never in the process environment.
    assert t.credentials_ref is None
    assert t.login == Credentials("user@example.test", "not-used-here")
    assert "not-used-here" not in repr(t) and "not-used-here" not in str(t.to_json())
    assert not any("not-used-here" in v for v in os.environ.values())
    assert t.message.submit_host == "outbound.example.test"
    assert t.message.source_address == "127.9.9.10"
    assert t.message.receiver_listen == "127.9.9.40:25"


def test_lab_scenario_fields_override_the_lab():
    (s,) = load(
        """\
        name: a
        lab: true
        target:
          mx_hosts: [outbound.example.test]
          sending_ips: [127.9.9.11]
          credentials: env:OTHER
          message: {send_via: submissions, submit_host: mailbox.example.test}
        """
    )
    t = build_target(s, LAB)
    assert t.mx_hosts == ("outbound.example.test",)
    assert t.sending_ips == ("127.9.9.11",)
    assert t.credentials_ref == "env:OTHER"
    assert t.login is None  # the scenario's own login replaces the lab's
    assert t.message.submit_host == "mailbox.example.test"
    assert t.resolver == "127.9.9.53:53"


def test_lab_scenario_given_fields_are_checked_and_converted_like_check_lab():
    (s,) = load(
        """\
        name: a
        lab: true
        target:
          domain: FAß.test
          mx_hosts: [MX.faß.test.]
          discover_selectors: true
        """
    )
    t = build_target(s, LAB)
    assert t.domain == "xn--fa-hia.test" and t.mx_hosts == ("mx.xn--fa-hia.test",)
    assert t.discover_selectors is True


def test_scenario_target_values_are_checked_by_the_one_validation():
    assert error_of("name: a\ntarget:\n  domain: example.com\n  mx_hosts: [ok.test, 'b c']\n") == (
        "s.yaml:4: field `target.mx_hosts[1]`: 'b c' is not a host name"
    )
    assert error_of(
        "name: a\ntarget:\n  domain: example.com\n  message:\n    mail_from: nobody\n"
    ) == ("s.yaml:5: field `target.message.mail_from`: 'nobody' is not an address")


# ----- judging ---------------------------------------------------------------------------------
def report_of(*results: ProbeResult) -> RunReport:
    return RunReport("r1", Target("example.com"), datetime.now(UTC), 0.1, results)


def finding(code: str, severity: Severity, subject: str | None = None) -> Finding:
    return Finding("dns.x", code, severity, f"{code} message", subject=subject)


def judged(expect: str, *results: ProbeResult) -> list[str]:
    (s,) = load(f"name: a\nlab: true\nexpect: {expect}\n")
    return judge(s, report_of(*results))


OK = ProbeResult(
    "dns.spf",
    Outcome.COMPLETED,
    (finding("SPF_NO_ALL", Severity.WARN), finding("DMARC_NO_REPORTING", Severity.INFO)),
)
ERRORED = ProbeResult("dns.mx", Outcome.ERROR, error=None, error_detail="boom")


def test_expectations_met_give_no_failures():
    assert judged("{codes: [SPF_NO_ALL], absent: [MX_MISSING], max_severity: warn}", OK) == []


def test_a_missing_code_an_unwanted_code_and_a_too_severe_finding_each_fail():
    assert judged("{codes: [MX_NULL, SPF_NO_ALL]}", OK) == ["expected code(s) not found: MX_NULL"]
    assert judged("{absent: [SPF_NO_ALL]}", OK) == [
        "code(s) that must be absent were found: SPF_NO_ALL"
    ]
    assert judged("{max_severity: info}", OK) == ["findings above max_severity info: SPF_NO_ALL"]


def test_the_default_tolerates_warnings_but_not_failures():
    failing = ProbeResult("dns.mx", Outcome.COMPLETED, (finding("MX_MISSING", Severity.FAIL),))
    assert judged("{}", OK) == []
    assert judged("{}", OK, failing) == ["findings above max_severity warn: MX_MISSING"]
    assert judged("{max_severity: fail}", OK, failing) == []


def test_outcomes_completed_fails_on_errors_and_skips():
    skipped = ProbeResult("dns.dkim", Outcome.SKIPPED)
    assert judged("{outcomes: COMPLETED}", OK, ERRORED, skipped) == [
        "probes that did not complete: dns.mx ERROR, dns.dkim SKIPPED"
    ]
    assert judged("{}", OK, ERRORED, skipped) == []


def test_findings_table_lists_worst_first_with_subjects():
    table = findings_table(
        [
            finding("DMARC_NO_REPORTING", Severity.INFO),
            finding("CERT_EXPIRED", Severity.FAIL, "mx.example.test:25"),
        ]
    )
    assert table.splitlines() == [
        "CODE                SEVERITY  SUBJECT             MESSAGE",
        "CERT_EXPIRED        fail      mx.example.test:25  CERT_EXPIRED message",
        "DMARC_NO_REPORTING  info      -                   DMARC_NO_REPORTING message",
    ]
    assert findings_table([]) == "(no findings)"


# ----- mailprobe run -----------------------------------------------------------------------------
def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="mailprobe")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["run", *argv])
    return args.func(args)


def dead_scenario(tmp_path: Path, name: str, probes: str, expect: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        f"name: {name}\n"
        f"target:\n  domain: example.com\n  resolver: {DEAD_RESOLVER}\n"
        f"  timeouts: {{dns: 0.3, connect: 1, probe: 10}}\n"
        f"probes: {probes}\nexpect: {expect}\n"
    )
    return path


def test_run_exits_0_when_expectations_hold_and_writes_a_report_per_scenario(tmp_path, capsys):
    # dns.dkim without selectors is SKIPPED: no finding, no error.
    path = dead_scenario(tmp_path, "quiet", "[dns.dkim]", "{absent: [DKIM_KEY_MISSING]}")
    out = tmp_path / "out"
    assert run_cli(str(path), "--output", str(out), "--format", "json") == 0
    doc = json.loads((out / "quiet" / "report.json").read_text())
    assert [r["outcome"] for r in doc["results"]] == ["SKIPPED"]
    assert capsys.readouterr().out.startswith("PASS  quiet  (")


def test_run_exits_1_when_an_expectation_fails(tmp_path, capsys):
    path = dead_scenario(tmp_path, "strict", "[dns.dkim]", "{outcomes: COMPLETED}")
    assert run_cli(str(path), "--output", str(tmp_path / "out"), "-q") == 1
    printed = capsys.readouterr().out
    assert printed.startswith("FAIL  strict  (")
    assert "expectation failed: probes that did not complete: dns.dkim SKIPPED" in printed


def test_run_exits_3_when_a_probe_cannot_run(tmp_path, capsys):
    a = dead_scenario(tmp_path, "dead", "[dns.mx]", "{}")
    b = dead_scenario(tmp_path, "quiet", "[dns.dkim]", "{}")
    assert run_cli(str(a), str(b), "--output", str(tmp_path / "out"), "-q") == 3
    printed = capsys.readouterr().out
    assert printed.startswith("ERROR dead  (")
    assert "probe error: dns.mx TIMEOUT" in printed
    assert "quiet" not in printed  # -q: only what did not pass
    assert (tmp_path / "out" / "quiet" / "report.json").is_file()


def test_run_checks_every_file_before_running_anything(tmp_path):
    good = dead_scenario(tmp_path, "dead", "[dns.mx]", "{}")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: b\nlab: true\nprobes: [nothing.here]\n")
    with pytest.raises(ScenarioError) as excinfo:
        run_cli(str(good), str(bad), "--output", str(tmp_path / "out"))
    assert str(excinfo.value).startswith(f"{bad}:3: field `probes[0]`: 'nothing.here' matches")
    assert not (tmp_path / "out").exists()


# ----- pytest collection ---------------------------------------------------------------------
def run_pytest(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    extra = (
        []
        if hasattr(probes.pytest_plugin, "pytest_collect_file")
        else ["-p", "probes.pytest_scenarios"]
    )
    return pytester.runpytest(*extra, "-p", "no:cacheprovider", *args)


@pytest.fixture
def scenario_tree(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini("[pytest]\nmarkers =\n    nightly: nightly\n")
    root = pytester.path
    (root / "scenarios" / "labs").mkdir(parents=True)
    (root / "scenarios" / "labs" / "spec.yaml").write_text("domain: spec.test\n")
    (root / "scenarios" / "dead.yaml").write_text(
        f"name: dead-dns\nmarks: [nightly]\ntarget:\n  domain: example.com\n"
        f"  resolver: {DEAD_RESOLVER}\n  timeouts: {{dns: 0.3, probe: 10}}\n"
        f"probes: [dns.mx]\nexpect: {{absent: [MX_MISSING]}}\n"
        "---\nname: skipped-dkim\ntarget:\n  domain: example.com\n"
        f"  resolver: {DEAD_RESOLVER}\nprobes: [dns.dkim]\n"
        "---\nname: example\ncollect: false\ntarget: {domain: example.com}\n"
    )
    (root / "scenarios" / "lab.yml").write_text("name: on-the-lab\nlab: true\n")
    (root / "other.yaml").write_text("name: not-a-scenario\n")
    return pytester


def test_pytest_collects_one_item_per_document_with_marks(scenario_tree):
    result = run_pytest(scenario_tree, "--collect-only", "-q")
    assert result.ret == 0
    collected = [line for line in result.outlines if "::" in line]
    assert collected == [
        "scenarios/dead.yaml::dead-dns",
        "scenarios/dead.yaml::skipped-dkim",
        "scenarios/lab.yml::on-the-lab",
    ]
    result = run_pytest(scenario_tree, "--collect-only", "-q", "-m", "nightly")
    assert [line for line in result.outlines if "::" in line] == ["scenarios/dead.yaml::dead-dns"]
    result = run_pytest(scenario_tree, "--collect-only", "-q", "-m", "not lab")
    assert "scenarios/lab.yml::on-the-lab" not in result.outlines


def test_pytest_failure_shows_the_unmet_expectations_and_findings(scenario_tree):
    result = run_pytest(scenario_tree, "-m", "not lab")
    result.assert_outcomes(passed=1, failed=1)
    text = "\n".join(result.outlines)
    where = scenario_tree.path / "scenarios" / "dead.yaml"
    assert f"scenario 'dead-dns' ({where}:1)" in text
    assert "probe error: dns.mx TIMEOUT" in text
    assert "(no findings)" in text
    assert "Traceback" not in text


def test_pytest_reports_a_bad_scenario_file_as_a_collection_error(scenario_tree):
    (scenario_tree.path / "scenarios" / "bad.yaml").write_text("name: b\nlab: true\nexpect: 3\n")
    result = run_pytest(scenario_tree, "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    bad = scenario_tree.path / "scenarios" / "bad.yaml"
    assert f"{bad}:3: field `expect`: expected a mapping, got int 3" in result.outlines


def test_run_q_says_in_one_line_that_a_scenario_still_fails_the_same_way(tmp_path, capsys):
    path = dead_scenario(tmp_path, "strict", "[dns.dkim]", "{outcomes: COMPLETED}")
    history = str(tmp_path / "h.sqlite")
    outs = []
    for n in range(3):
        out = str(tmp_path / f"out{n}")
        assert run_cli(str(path), "--output", out, "-q", "--history", history) == 1
        outs.append(capsys.readouterr().out)
    assert "expectation failed: probes that did not complete: dns.dkim SKIPPED" in outs[0]
    from probes.history import HistoryDB

    with HistoryDB(history) as db:
        runs = db.runs()
    assert {r.what for r in runs} == {"scenario:strict"}
    first = runs[-1]
    for printed in outs[1:]:
        lines = printed.splitlines()
        assert lines[0].startswith("FAIL  strict  (")
        assert lines[1:] == [
            f"    mailprobe: still failing since run {first.run_id} ({first.started[:10]}):"
            " probes skipped unchanged (dns.dkim)"
        ]
