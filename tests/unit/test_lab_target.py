"""The one lab-target builder (probes.lab.target): the lab's login travels in memory in the
Target, never through the process environment; two labs in one process each log in as their
own user; the password never reaches a report; `check --lab` checks the user's overrides as it
checks a DOMAIN's options, before any lab starts."""

from __future__ import annotations

import base64
import io
import json
import os
import threading
from collections.abc import Iterable

import pytest

from probes import cli
from probes.credentials import Credentials, login_for
from probes.errors import ProtocolError
from probes.lab.lab import LabInfo
from probes.lab.target import lab_target
from probes.model import Finding, MessageOptions, Outcome, Target
from probes.net import Net
from probes.net.dns import DnsClient, StaticBackend
from probes.probe import BaseProbe
from probes.report import text_report
from probes.runner import run_report


def info(lab_id: str, octet: int, password: str) -> LabInfo:
    ip = f"127.9.{octet}"
    return LabInfo(
        lab_id=lab_id,
        domain=f"{lab_id}.test",
        resolver=f"{ip}.53:53",
        hosts={"mx": f"{ip}.25", "outbound": f"{ip}.26", "mailbox": f"{ip}.143"},
        client_ips={"authorized": f"{ip}.10", "unauthorized": f"{ip}.11"},
        user=f"user@{lab_id}.test",
        password=password,
        ca_file="/lab/ca.pem",
        dkim={"mail": "/lab/mail.key"},
        dkimpy_keys={},
        ports={"smtp": 25},
        lab_dir="/lab",
        receiver=f"{ip}.40",
        receiver_domain="receiver.test",
    )


LAB_A = info("laba", 1, "Pw0fLabA7x")
LAB_B = info("labb", 2, "Pw0fLabB9y")


class LogsIn(BaseProbe):
    """Logs in with the target's login, records it, then fails quoting the AUTH exchange."""

    id = "test.logs_in"
    description = "uses the target's login"

    def __init__(self, seen: list, barrier: threading.Barrier | None = None) -> None:
        self.seen, self.barrier = seen, barrier

    def run(self, target: Target, net: Net) -> Iterable[Finding]:
        creds = login_for(target)
        assert creds is not None
        if self.barrier is not None:
            self.barrier.wait(timeout=5)  # both labs' probes are inside run() at once
        self.seen.append((target.domain, creds.user, creds.password))
        plain = base64.b64encode(f"\0{creds.user}\0{creds.password}".encode()).decode()
        raise ProtocolError(f"AUTH PLAIN {plain} refused; password was {creds.password}")
        yield  # pragma: no cover


def test_the_lab_login_is_in_the_target_not_in_the_environment():
    before = dict(os.environ)
    target = lab_target(LAB_A)
    assert dict(os.environ) == before
    assert target.credentials_ref is None
    assert login_for(target) == Credentials(LAB_A.user, LAB_A.password)
    assert LAB_A.password not in repr(target)
    assert LAB_A.password not in json.dumps(target.to_json())


def test_two_labs_in_one_process_each_log_in_as_their_own_user():
    seen: list = []
    barrier = threading.Barrier(2)
    reports = {}

    def run(lab: LabInfo) -> None:
        target = lab_target(lab)
        net = Net(dns_client=DnsClient(StaticBackend({})))
        reports[lab.lab_id] = run_report([LogsIn(seen, barrier)], target, net)

    threads = [threading.Thread(target=run, args=(lab,)) for lab in (LAB_A, LAB_B)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert sorted(seen) == [
        ("laba.test", LAB_A.user, LAB_A.password),
        ("labb.test", LAB_B.user, LAB_B.password),
    ]
    # Neither password reaches its report, in JSON or text, though the probe quoted it.
    for lab in (LAB_A, LAB_B):
        report = reports[lab.lab_id]
        (result,) = report.results
        assert result.outcome is Outcome.ERROR and "***" in (result.error_detail or "")
        text = io.StringIO()
        text_report.render(report, text)
        for shown in (json.dumps(report.to_json()), text.getvalue()):
            for password in (LAB_A.password, LAB_B.password):
                assert password not in shown
                assert base64.b64encode(f"\0{lab.user}\0{password}".encode()).decode() not in shown


def test_a_given_credentials_reference_replaces_the_lab_login():
    target = lab_target(LAB_A, credentials_ref="env:MY_LOGIN")
    assert target.login is None and target.credentials_ref == "env:MY_LOGIN"


def test_the_lab_fills_only_the_message_options_not_given():
    given = MessageOptions(send_via="submissions", source_address="127.9.1.99")
    target = lab_target(LAB_A, message=given, message_given={"source_address"})
    assert target.message.submit_host == "mx.laba.test"  # no 465 on the outbound relay
    assert target.message.source_address == "127.9.1.99"
    assert target.message.receiver_listen == LAB_A.receiver_listen


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--sending-ip", "not-an-ip"], "--sending-ip"),
        (["--mx", "bad host"], "--mx"),
        (["--resolver", "nowhere"], "--resolver"),
        (["--credentials", "hunter2"], "--credentials"),
        (["--deadline", "0"], "--deadline"),
        (["--source-address", "x"], "--source-address"),
        (["--signed-headers", "to"], "--signed-headers"),
        (["--ca-file", "/nonexistent/ca.pem"], "--ca-file"),
        (["--rcpt-to", "@@"], "--rcpt-to"),
        (["--header-from", "Two <a@b.test>, c@d.test"], "--header-from"),
        (["--selector", "bad sel"], "--selector"),
        (["--selector=-lead"], "--selector"),
        (["--output", "/proc/no-such-dir"], "--output /proc/no-such-dir"),
        (["--output", "/etc/passwd/x"], "--output /etc/passwd/x"),
        (["--max-per-host", "0"], "--max-per-host 0"),
        (["--processes", "0"], "--processes 0"),
        (["--concurrency", "0"], "--concurrency 0"),
    ],
)
def test_check_lab_refuses_bad_overrides_before_any_lab_starts(argv, named, monkeypatch, capsys):
    def no_lab(*args, **kwargs):
        raise AssertionError("a lab was started")

    monkeypatch.setattr("probes.lab.lab.Lab", no_lab)
    assert cli.main(["check", "--lab", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"mailprobe: error: {named}: ")
    assert "hunter2" not in err
