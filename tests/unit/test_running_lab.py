"""Using a running lab without one: `check --lab-name` refusals (exit 2, before anything is
probed), the options that cannot go together, the reproduce-line note of a removed lab, and
scenarios' `lab: {name: NAME}` and `{lab.KEY}` placeholders (the lab tests in
tests/lab/test_lab_running.py run them against real labs)."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from probes import cli
from probes.lab.lab import LabInfo
from probes.lab.running import LabNotRunning, running_lab
from probes.lab.state import LabState
from probes.model import Finding, Outcome, ProbeResult, Severity, Target
from probes.report.removed_lab import LAB_REMOVED, note_lab_removed
from probes.report.run import RunReport
from probes.scenario import ScenarioError, load_text
from probes.scenario_placeholders import KEYS, fill, lab_values
from probes.scenario_run import build_target, run_scenario

pytest_plugins = ["pytester"]
PASSWORD = "Pw0fRunningLab7"


def free_block() -> str:
    """A 127.x.y prefix nothing listens on (a lab that is gone)."""
    for c in range(200, 256):
        prefix = f"127.251.{c}"
        with socket.socket() as s:
            if s.connect_ex((f"{prefix}.25", 25)) != 0:
                return prefix
    raise AssertionError("no free block")


def lab_info(root: Path, prefix: str) -> LabInfo:
    lab = root / "lab"
    (lab / "dkim").mkdir(parents=True, exist_ok=True)
    (lab / "ca.pem").write_text("not used\n")
    (lab / "dkim" / "mail.key").write_text("not used\n")
    return LabInfo(
        lab_id=prefix.replace(".", "-"),
        domain="example.test",
        resolver=f"{prefix}.53:53",
        hosts={"mx": f"{prefix}.25", "outbound": f"{prefix}.26", "mailbox": f"{prefix}.143"},
        client_ips={"authorized": f"{prefix}.10", "unauthorized": f"{prefix}.11"},
        user="user@example.test",
        password=PASSWORD,
        ca_file=str(lab / "ca.pem"),
        dkim={"mail": str(lab / "dkim" / "mail.key")},
        dkimpy_keys={},
        ports={
            "smtp": 25,
            "submission": 587,
            "submissions": 465,
            "imap": 143,
            "imaps": 993,
            "pop3": 110,
            "pop3s": 995,
            "dns": 53,
            "outbound_smtp": 25,
            "outbound_submission": 587,
        },
        lab_dir=str(lab),
        receiver=f"{prefix}.40",
        receiver_domain="receiver.test",
    )


@pytest.fixture
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("MAILPROBE_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


@pytest.fixture
def dead_lab(state) -> LabInfo:
    """The state `lab up --name dead` leaves, for a lab whose containers are gone."""
    lab_state = LabState("dead")
    info = lab_info(lab_state.root, free_block())
    lab_state.save(info)
    return info


def check(*argv: str, tmp_path: Path) -> int:
    return cli.main(["check", *argv, "--no-history", "--output", str(tmp_path / "out")])


# ----- check --lab-name -------------------------------------------------------------------------
def test_check_lab_name_of_no_such_lab_is_exit_2_saying_how_to_start_it(state, tmp_path, capsys):
    assert check("--lab-name", "nosuch", tmp_path=tmp_path) == 2
    err = capsys.readouterr().err
    assert err == (
        "mailprobe: error: --lab-name nosuch: no lab 'nosuch' is up "
        "(start it with `mailprobe lab up --name nosuch`)\n"
    )
    assert not any((tmp_path / "out").iterdir())  # nothing probed, no report


def test_check_lab_name_of_a_lab_that_does_not_answer_is_exit_2(
    dead_lab, tmp_path, capsys, monkeypatch
):
    assert check("--lab-name", "dead", tmp_path=tmp_path) == 2
    out, err = capsys.readouterr()
    assert "--lab-name dead: lab 'dead' does not answer (dns, mx, outbound, imap, pop3 down" in err
    assert "`mailprobe lab down --name dead`, then `mailprobe lab up --name dead`" in err
    assert PASSWORD not in out + err
    assert not any(PASSWORD in value for value in os.environ.values())
    assert not any((tmp_path / "out").iterdir())


def test_check_lab_name_of_a_lab_whose_files_are_gone_is_exit_2(dead_lab, tmp_path, capsys):
    Path(dead_lab.ca_file).unlink()
    assert check("--lab-name", "dead", tmp_path=tmp_path) == 2
    assert f"the files of lab 'dead' are gone ({dead_lab.ca_file})" in capsys.readouterr().err


def test_running_lab_refuses_a_bad_name_and_unreadable_state(state):
    with pytest.raises(LabNotRunning, match="lowercase letters"):
        running_lab("Bad Name")
    LabState("broken").root.mkdir(parents=True)
    LabState("broken").info_file.write_text("{not json")
    with pytest.raises(LabNotRunning, match=r"the state of lab 'broken' .* is unreadable"):
        running_lab("broken")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--lab-name", "x", "--lab"], "give only one of DOMAIN, --domains FILE, --lab and"),
        (["--lab-name", "x", "example.com"], "give only one of DOMAIN, --domains FILE, --lab"),
        (["--lab-name", "x", "--lab-spec", "s.yaml"], "check: --lab-spec goes with --lab"),
        (["--lab-name", "x", "--lab-flavour", "postfix"], "check: --lab-flavour goes with --lab"),
        (["--lab-name", "x", "--keep-lab"], "check: --keep-lab goes with --lab"),
        (["--keep-lab", "example.com"], "give a DOMAIN, --domains FILE, --lab or --lab-name NAME"),
        (["example.com", "--keep-lab", "x"], "check: --keep-lab goes with --lab"),
        (["--lab", "--keep-lab", "Not A Name"], "--keep-lab: lab name 'Not A Name': use"),
        (["--lab-name", "Not/A/Name"], "--lab-name Not/A/Name: lab name 'Not/A/Name': use"),
    ],
)
def test_lab_name_and_keep_lab_refuse_what_cannot_go_with_them(
    argv, message, state, tmp_path, capsys
):
    assert check(*argv, tmp_path=tmp_path) == 2
    assert message in capsys.readouterr().err
    assert not (state / "labs").exists()  # no lab started, none kept


def test_keep_lab_refuses_a_name_already_up_before_starting_a_lab(dead_lab, tmp_path, capsys):
    assert check("--lab", "--keep-lab", "dead", tmp_path=tmp_path) == 2
    err = capsys.readouterr().err
    assert "--keep-lab dead: lab 'dead' is already up; use `mailprobe check --lab-name dead`" in err
    assert "starting lab" not in err


def test_lab_options_are_checked_before_the_running_lab(state, tmp_path, capsys):
    # A bad override is named first, as with --lab (before a lab starts).
    assert check("--lab-name", "nosuch", "--sending-ip", "1.2.3", tmp_path=tmp_path) == 2
    assert "--sending-ip: '1.2.3' is not an IP address" in capsys.readouterr().err


# ----- reproduce lines of a removed lab ---------------------------------------------------------
def test_reproduce_lines_of_a_removed_lab_say_so_and_stay_pasteable():
    f1 = Finding("dns.spf", "SPF_RECORD", Severity.INFO, "m", reproduce="dig +short TXT x @1.2.3.4")
    f2 = Finding("dns.spf", "SPF_NO_ALL", Severity.WARN, "m", evidence={"k": "v"})
    report = RunReport(
        run_id="r",
        target=Target(domain="example.test"),
        started=datetime(2026, 12, 5, tzinfo=UTC),
        duration_s=1.0,
        results=(ProbeResult("dns.spf", Outcome.COMPLETED, (f1, f2)),),
        new=frozenset({(0, 1)}),
    )
    noted = note_lab_removed(report)
    g1, g2 = noted.results[0].findings
    assert g1.reproduce == f"dig +short TXT x @1.2.3.4  # {LAB_REMOVED}"
    assert LAB_REMOVED == "(the lab was removed; rerun with --keep-lab)"
    assert g2 == f2  # no reproduce line: nothing to say
    assert (g1.identity, g1.severity, g1.evidence) == (f1.identity, f1.severity, f1.evidence)
    assert noted.is_new(g2) and not noted.is_new(g1)  # still marked as before
    assert note_lab_removed(noted) == noted  # once
    doc = noted.to_json()
    assert doc["results"][0]["findings"][0]["reproduce"].endswith(LAB_REMOVED)


# ----- scenarios: lab: {name: NAME} and {lab.KEY} ------------------------------------------------
def load(text: str):
    return load_text(textwrap.dedent(text), "s.yaml")


def error_of(text: str) -> str:
    with pytest.raises(ScenarioError) as exc:
        load(text)
    return str(exc.value)


def test_a_scenario_names_a_running_lab():
    (s,) = load("name: a\nlab: {name: mine}\n")
    assert s.lab_name == "mine" and s.uses_lab and s.lab_spec is None
    (plain,) = load("name: a\nlab: true\n")
    assert plain.lab_name is None and plain.uses_lab


@pytest.mark.parametrize(
    "text, message",
    [
        ("name: a\nlab: {name: Mine!}\n", "s.yaml:2: field `lab.name`: lab name 'Mine!': use"),
        ("name: a\nlab: {name: 3}\n", "s.yaml:2: field `lab.name`: expected a lab name, got int"),
        ("name: a\nlab: {}\n", "s.yaml:2: field `lab.name`: expected a lab name, got null"),
        ("name: a\nlab: {name: x, spec: y}\n", "field `lab.spec`: unknown field; known: name"),
        (
            "name: a\nlab: {name: x}\nlab_spec: {}\n",
            "s.yaml:3: field `lab_spec`: given, but the scenario probes a running lab",
        ),
        (
            "name: a\nlab: {name: x}\nlab_flavours: all\n",
            "s.yaml:3: field `lab_flavours`: given, but the scenario probes a running lab",
        ),
        (
            "name: a\nlab: true\ntarget:\n  mx_hosts: ['mx.{lab.nowhere}']\n",
            "s.yaml:4: field `target.mx_hosts[0]`: unknown placeholder {lab.nowhere}; known: ",
        ),
        (
            "name: a\nlab: true\ntarget:\n  message: {mail_from: '{lab.password}'}\n",
            "field `target.message.mail_from`: unknown placeholder {lab.password}",
        ),
        (
            "name: a\ntarget:\n  domain: example.com\n  sending_ips: ['{lab.authorized}']\n",
            "s.yaml:4: field `target.sending_ips[0]`: a {lab.…} placeholder, but the scenario "
            "does not use the lab",
        ),
        (
            "name: a\nlab: true\ntarget:\n  sending_ips: ['{lab.domain}']\n",
            "s.yaml:4: field `target.sending_ips[0]`: 'lab.invalid' is not an IP address",
        ),
    ],
)
def test_bad_running_lab_scenarios_name_file_line_and_field(text, message):
    assert message in error_of(text)


def test_placeholders_are_filled_with_the_labs_values(tmp_path):
    info = lab_info(tmp_path, "127.9.9")
    (s,) = load(
        """\
        name: a
        lab: {name: mine}
        target:
          mx_hosts: ['mx.{lab.domain}']
          sending_ips: ['{lab.unauthorized}', '{lab.outbound}']
          message:
            rcpt_to: 'postmaster@{lab.domain}'
            receiver_listen: '{lab.receiver}:{lab.ports.submission}'
        """
    )
    assert s.target.sending_ips == ("{lab.unauthorized}", "{lab.outbound}")  # until it runs
    t = build_target(s, info)
    assert t.mx_hosts == ("mx.example.test",)
    assert t.sending_ips == ("127.9.9.11", "127.9.9.26")
    assert t.message.rcpt_to == "postmaster@example.test"
    assert t.message.receiver_listen == "127.9.9.40:587"
    assert t.message.source_address == "127.9.9.10"  # the lab fills what is not given
    values = lab_values(info)
    assert set(values) == set(KEYS) and PASSWORD not in values.values()
    assert fill(("{lab.nowhere}", 3), values) == ("{lab.nowhere}", 3)


def test_a_scenario_on_a_lab_that_is_not_up_is_an_error_naming_the_field(state):
    (s,) = load("name: a\nlab: {name: nosuch}\nprobes: [dns.spf]\n")
    with pytest.raises(ScenarioError) as exc:
        run_scenario(s)
    assert str(exc.value) == (
        "s.yaml:2: field `lab.name`: no lab 'nosuch' is up "
        "(start it with `mailprobe lab up --name nosuch`)"
    )


def test_run_refuses_a_scenario_on_a_lab_that_does_not_answer_before_running_any(
    dead_lab, tmp_path, capsys
):
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: first\ntarget: {domain: example.com}\nprobes: [dns.spf]\n---\n"
        "name: second\nlab: {name: dead}\nprobes: [dns.spf]\n"
    )
    out = tmp_path / "reports"
    assert cli.main(["run", str(path), "--no-history", "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:6: field `lab.name`: lab 'dead' does not answer" in err
    assert not out.exists()  # the first scenario did not run either


def test_lab_values_of_a_lab_state_without_receiver_mode_are_empty(tmp_path):
    info = dataclasses.replace(lab_info(tmp_path, "127.9.9"), receiver="", receiver_domain=None)
    values = lab_values(info)
    assert values["receiver"] == "" and values["receiver_domain"] == ""
    assert json.dumps(values)  # plain strings


def test_pytest_marks_a_running_lab_scenario_lab_and_fails_it_when_the_lab_is_not_up(
    pytester: pytest.Pytester, monkeypatch
):
    monkeypatch.setenv("MAILPROBE_STATE_DIR", str(pytester.path / "state"))
    (pytester.path / "scenarios").mkdir()
    (pytester.path / "scenarios" / "mine.yaml").write_text(
        "name: on-mine\nlab: {name: mine}\nprobes: [dns.spf]\n"
    )
    import probes.pytest_plugin

    extra = (
        []
        if hasattr(probes.pytest_plugin, "pytest_collect_file")
        else ["-p", "probes.pytest_scenarios"]
    )
    result = pytester.runpytest(*extra, "-p", "no:cacheprovider", "-m", "not lab")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED  # deselected: it uses a lab
    result = pytester.runpytest(*extra, "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    where = pytester.path / "scenarios" / "mine.yaml"
    assert (
        f"{where}:2: field `lab.name`: no lab 'mine' is up "
        "(start it with `mailprobe lab up --name mine`)"
    ) in result.outlines


def test_lab_down_of_a_name_not_up_says_which_labs_are(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MAILPROBE_STATE_DIR", str(tmp_path))
    (tmp_path / "labs" / "t2").mkdir(parents=True)
    (tmp_path / "labs" / "t2" / "info.json").write_text("{}")
    assert cli.main(["lab", "down", "--name", "t3"]) == 0
    assert "mailprobe: no lab 't3' was up (up: t2)" in capsys.readouterr().err
    assert (tmp_path / "labs" / "t2" / "info.json").exists()  # the other lab is left alone
