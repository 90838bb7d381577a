"""`mailprobe check` options of the transport probes: bad values exit 2 naming the option."""

from __future__ import annotations

import pytest

from probes import cli


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["check", "example.test", "--credentials", "vault:x"], "--credentials"),
        (["check", "example.test", "--credentials", "env:"], "--credentials"),
        (["check", "example.test", "--max-per-host", "0", "--probe", "none.*"], "--probe"),
    ],
)
def test_bad_transport_option_exits_2_naming_it(argv, named, capsys):
    assert cli.main(argv) == 2
    assert named in capsys.readouterr().err


def test_max_per_host_below_one_exits_2(capsys):
    argv = ["check", "example.test", "--max-per-host", "0", "--probe", "smtp.mx"]
    argv += ["--resolver", "127.0.0.1:9"]  # never the system resolver, should this ever run
    assert cli.main(argv) == 2
    assert "--max-per-host" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--mx", "--submission-host", "--mailbox-host"])
def test_host_options_are_refused_with_a_domain_list(tmp_path, option, capsys):
    path = tmp_path / "domains.txt"
    path.write_text("example.test\n")
    assert cli.main(["check", "--domains", str(path), option, "mx.example.test"]) == 2
    assert option in capsys.readouterr().err


def test_transport_probes_are_listed(capsys):
    assert cli.main(["probes"]) == 0
    out = capsys.readouterr().out
    for probe_id in (
        "smtp.mx",
        "smtp.submission",
        "smtp.submissions",
        "smtp.relay",
        "imap.starttls",
        "imap.tls",
        "pop3.starttls",
        "pop3.tls",
    ):
        assert probe_id in out
