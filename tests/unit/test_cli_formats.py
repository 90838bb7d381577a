"""`--format a,b,c`: several report formats in one run of `check` and `run`."""

from __future__ import annotations

import json

import pytest
from test_cli_drift import nxdomain_resolver  # noqa: F401 (a fixture)

from probes import cli
from probes.errors import UsageError
from probes.report.output import parse_formats, shown_format

KNOWN = ["html", "json", "junit", "markdown", "nagios", "text"]


def test_parse_formats_keeps_order_drops_repeats_and_names_the_unknown():
    assert parse_formats("html, junit,json,html", KNOWN) == ["html", "junit", "json"]
    assert parse_formats("nagios", KNOWN) == ["nagios"]
    with pytest.raises(UsageError, match=r"--format 'pdf': known formats are html, json"):
        parse_formats("html,pdf", KNOWN)
    with pytest.raises(UsageError, match="nagios goes alone"):
        parse_formats("nagios,json", KNOWN)
    with pytest.raises(UsageError, match="name a format"):
        parse_formats(" , ", KNOWN)


def test_the_first_format_that_is_not_json_is_shown():
    assert shown_format(["json", "junit", "html"]) == "text"  # the files hold those
    assert shown_format(["html"]) == "html"
    assert shown_format(["json"]) == "json"
    assert shown_format(["text"]) == "text"


def test_check_writes_every_format_and_prints_the_text_report(
    tmp_path,
    capsys,
    nxdomain_resolver,  # noqa: F811
):
    out = tmp_path / "out"
    argv = ["check", "example.test", "--resolver", nxdomain_resolver, "--probe", "dns.mx"]
    argv += ["--no-history", "--output", str(out), "--format", "json,html,junit"]
    assert cli.main(argv) == 1  # MX_MISSING (fail)
    written = sorted(p.name for p in out.iterdir())
    assert written == ["report.html", "report.json", "report.xml"]
    stdout = capsys.readouterr().out
    assert stdout.startswith("mailprobe check of example.test: FAIL")  # not a page of HTML
    assert "FAIL  MX_MISSING  " in stdout
    assert "<testsuite" in (out / "report.xml").read_text(encoding="utf-8")
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["results"][0]["findings"][0]["code"] == "MX_MISSING"


@pytest.mark.parametrize(
    ("formats", "needle"),
    [("html,pdf", "--format 'pdf': known formats are"), ("nagios,html", "nagios goes alone")],
)
@pytest.mark.parametrize("command", ["check", "run"])
def test_a_bad_format_list_is_exit_2_before_anything_runs(
    command, formats, needle, tmp_path, capsys
):
    out = tmp_path / "out"
    target = ["example.test"] if command == "check" else [str(tmp_path / "missing.yaml")]
    argv = (
        [command, *target, "--resolver", "127.0.0.1:9"]
        if command == "check"
        else [
            command,
            *target,
        ]
    )
    assert cli.main([*argv, "--output", str(out), "--format", formats]) == 2
    captured = capsys.readouterr()
    assert needle in captured.err
    assert captured.out == ""
    assert not out.exists()  # refused before the report directory (or a probe) was touched


def test_render_of_a_stored_report_gives_the_files_the_run_wrote(
    tmp_path,
    capsys,
    nxdomain_resolver,  # noqa: F811
):
    out = tmp_path / "out"
    argv = ["check", "example.test", "--resolver", nxdomain_resolver, "--probe", "dns.*"]
    argv += ["--history", str(tmp_path / "h.sqlite"), "--output", str(out)]
    assert cli.main([*argv, "--format", "html,junit,markdown,text"]) == 1
    capsys.readouterr()
    written = {"html": "report.html", "junit": "report.xml", "markdown": "report.md"}
    for fmt, name in {**written, "text": "report.txt"}.items():
        verbose = ["-v"] if fmt == "text" else []  # report.txt is the whole record
        assert cli.main(["render", str(out / "report.json"), "--format", fmt, *verbose]) == 0
        assert capsys.readouterr().out == (out / name).read_text(encoding="utf-8")


def test_run_writes_every_format_for_each_scenario(
    tmp_path,
    capsys,
    nxdomain_resolver,  # noqa: F811
):
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: no mx\n"
        f"target: {{domain: example.test, resolver: '{nxdomain_resolver}'}}\n"
        "probes: [dns.mx]\n"
        "expect: {codes: [MX_MISSING], max_severity: fail}\n"
    )
    out = tmp_path / "out"
    argv = ["run", str(path), "--no-history", "--output", str(out), "--format", "junit,markdown"]
    assert cli.main(argv) == 0
    assert sorted(p.name for p in (out / "no-mx").iterdir()) == [
        "report.json",
        "report.md",
        "report.xml",
    ]
    assert capsys.readouterr().out.startswith("PASS  no mx")
