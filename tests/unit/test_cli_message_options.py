"""`mailprobe check` options of the message probes: bad values exit 2 naming the option."""

from __future__ import annotations

import pytest

from probes import cli
from probes.errors import ProbeConfigError
from probes.model import MessageOptions
from probes.validate import check_message as check_options

SAFE = ["--resolver", "127.0.0.1:9", "--probe", "message.roundtrip"]  # never the system resolver


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--deadline", "0"], "--deadline"),
        (["--deadline", "-3"], "--deadline"),
        (["--receiver-listen", "nonsense"], "--receiver-listen"),
        (["--receiver-listen", "127.0.0.1:99999"], "--receiver-listen"),
        (["--source-address", "not-an-ip"], "--source-address"),
        (["--send-via", "carrier-pigeon"], "--send-via"),
        (["--retrieve-via", "webmail"], "--retrieve-via"),
        (["--signed-headers", "to,subject"], "--signed-headers"),
        (["--signed-headers", "from,bad header"], "--signed-headers"),
    ],
)
def test_bad_message_option_exits_2_naming_it(argv, named, capsys):
    try:
        status = cli.main(["check", "example.test", *SAFE, *argv])
    except SystemExit as exc:  # argparse's own choices check
        status = exc.code
    assert status == 2
    assert named in capsys.readouterr().err


def test_message_probes_are_listed(capsys):
    assert cli.main(["probes"]) == 0
    out = capsys.readouterr().out
    assert "message.roundtrip" in out and "message.receiver" in out


@pytest.mark.parametrize(
    "options",
    [
        MessageOptions(send_via="fax"),
        MessageOptions(retrieve_via="webmail"),
        MessageOptions(canonicalization="nowsp"),
        MessageOptions(signer="someone"),
        MessageOptions(deadline_s=0),
    ],
)
def test_meaningless_message_option_is_a_config_error(options):
    with pytest.raises(ProbeConfigError, match="message\\."):
        check_options(options)


def test_default_message_options_are_valid():
    check_options(MessageOptions())
