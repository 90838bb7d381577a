"""mailprobe's SMTP receiver (probes.net.receiver) on 127.0.0.1, with smtplib as the client."""

from __future__ import annotations

import dataclasses
import datetime
import smtplib
import socket
import threading
import time

import pytest

from probes.errors import ProbeConfigError
from probes.net.receiver import Receiver, split_listen

# A hang guard (pytest-timeout), not a speed limit.
pytestmark = pytest.mark.timeout(60)

DOMAIN = "receiver.test"
HOST = "127.0.0.1"


def message(token: str, body: bytes = b"Hello.\r\n") -> bytes:
    return (
        b"From: Sender <sender@example.test>\r\n"
        b"To: check-auth@receiver.test\r\n"
        b"Subject: mailprobe test " + token.encode() + b"\r\n"
        b"X-Mailprobe-Token: " + token.encode() + b"\r\n"
        b"\r\n" + body
    )


def receiver(**kwargs) -> Receiver:
    kwargs.setdefault("hostname", "rx.receiver.test")
    kwargs.setdefault("accept_domains", [DOMAIN])
    return Receiver(HOST, 0, **kwargs)


def client(rx: Receiver, helo: str = "client.example.test") -> smtplib.SMTP:
    smtp = smtplib.SMTP(HOST, rx.port, local_hostname=helo, timeout=10)
    return smtp


def receiver_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("mailprobe-receiver-")]


def test_raw_bytes_and_envelope_are_kept_exactly():
    # Lines a careless server would alter: a leading dot (dot-stuffed on the wire), trailing
    # whitespace, a tab, 8-bit bytes, an empty line at the end, a folded header.
    body = (
        b".starts with a dot\r\n"
        b"..two dots\r\n"
        b"trailing spaces   \r\n"
        b"\ttab first\r\n"
        b"caf\xc3\xa9 8bit \xff\r\n"
        b"\r\n"
    )
    raw = message("tok-raw-1", body).replace(
        b"Subject:", b"X-Folded: first part\r\n  second part\r\nSubject:"
    )
    with receiver() as rx, client(rx, helo="sender.example.test") as smtp:
        refused = smtp.sendmail(
            "bounce@example.test", ["check-auth@receiver.test", "Other@Receiver.Test"], raw
        )
        assert refused == {}
        got = rx.wait_for("tok-raw-1", time.monotonic() + 10)
    assert got is not None
    assert got.raw == raw
    assert got.token == "tok-raw-1"
    assert got.peer_ip == HOST
    assert got.helo == "sender.example.test"
    assert got.esmtp is True
    assert got.mail_from == "bounce@example.test"
    assert got.rcpt_to == ("check-auth@receiver.test", "Other@Receiver.Test")
    assert got.received_at.tzinfo is datetime.UTC


def test_null_sender_and_helo_are_recorded():
    with receiver() as rx, client(rx, helo="old.example.test") as smtp:
        smtp.helo("old.example.test")
        smtp.sendmail("", ["check-auth@receiver.test"], message("tok-null"))
        got = rx.wait_for("tok-null", time.monotonic() + 10)
    assert got is not None
    assert got.mail_from == ""
    assert got.esmtp is False
    assert got.helo == "old.example.test"


def test_recipient_outside_the_accepted_domains_is_refused():
    with receiver() as rx, client(rx) as smtp:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as err:
            smtp.sendmail("a@example.test", ["someone@elsewhere.test"], message("tok-foreign"))
        assert err.value.recipients["someone@elsewhere.test"][0] == 550
        # A subdomain is not the domain either.
        assert smtp.mail("a@example.test")[0] == 250
        code, _ = smtp.rcpt("x@sub.receiver.test")
        assert code == 550
        smtp.rset()
        # With one accepted recipient the message goes through, to that one only.
        refused = smtp.sendmail(
            "a@example.test", ["check-auth@receiver.test", "b@elsewhere.test"], message("tok-mix")
        )
        assert set(refused) == {"b@elsewhere.test"}
        got = rx.wait_for("tok-mix", time.monotonic() + 10)
        assert rx.wait_for("tok-foreign", time.monotonic()) is None
    assert got is not None
    assert got.rcpt_to == ("check-auth@receiver.test",)


def test_message_over_the_size_cap_is_refused_and_not_kept():
    big = message("tok-big", (b"x" * 70 + b"\r\n") * 100)  # ~7.3 kB
    with receiver(max_bytes=2000) as rx, client(rx) as smtp:
        # With SIZE= announced (smtplib does when the server offers SIZE): refused at MAIL.
        with pytest.raises(smtplib.SMTPSenderRefused) as err:
            smtp.sendmail("a@example.test", ["check-auth@receiver.test"], big)
        assert err.value.smtp_code == 552
        smtp.rset()
        # Without SIZE=: refused after DATA.
        assert smtp.mail("a@example.test")[0] == 250
        assert smtp.rcpt("check-auth@receiver.test")[0] == 250
        code, _ = smtp.data(big)
        assert code == 552
        # A message under the cap still goes through on the same connection.
        smtp.sendmail("a@example.test", ["check-auth@receiver.test"], message("tok-small"))
        assert rx.wait_for("tok-small", time.monotonic() + 10) is not None
        assert rx.wait_for("tok-big", time.monotonic()) is None
        assert [m.token for m in rx.messages] == ["tok-small"]


def test_message_without_a_token_is_refused():
    raw = b"From: a@example.test\r\nSubject: hello\r\n\r\nno token here\r\n"
    with receiver() as rx, client(rx) as smtp:
        with pytest.raises(smtplib.SMTPDataError) as err:
            smtp.sendmail("a@example.test", ["check-auth@receiver.test"], raw)
        assert err.value.smtp_code == 550
        assert rx.messages == []


def test_token_only_in_the_body_does_not_count():
    raw = b"From: a@example.test\r\n\r\nX-Mailprobe-Token: tok-body\r\n"
    with receiver() as rx, client(rx) as smtp:
        with pytest.raises(smtplib.SMTPDataError) as err:
            smtp.sendmail("a@example.test", ["check-auth@receiver.test"], raw)
        assert err.value.smtp_code == 550


def test_kept_messages_are_capped_with_a_temporary_refusal():
    with receiver(max_messages=2) as rx, client(rx) as smtp:
        for i in range(2):
            smtp.sendmail("a@example.test", ["check-auth@receiver.test"], message(f"tok-{i}"))
        with pytest.raises(smtplib.SMTPDataError) as err:
            smtp.sendmail("a@example.test", ["check-auth@receiver.test"], message("tok-2"))
        assert err.value.smtp_code == 452
        assert [m.token for m in rx.messages] == ["tok-0", "tok-1"]


def test_wait_for_returns_none_at_the_deadline():
    with receiver() as rx:
        assert rx.wait_for("never-sent", time.monotonic() + 0.2) is None
        assert rx.wait_for("never-sent", time.monotonic() - 1) is None


def test_wait_for_wakes_up_when_the_message_arrives_and_skips_other_tokens():
    with receiver() as rx:

        def send_later():
            time.sleep(0.2)
            with client(rx) as smtp:
                for token in ("tok-other", "tok-wanted"):
                    smtp.sendmail("a@example.test", ["check-auth@receiver.test"], message(token))

        sender = threading.Thread(target=send_later)
        sender.start()
        try:
            got = rx.wait_for("tok-wanted", time.monotonic() + 30)
        finally:
            sender.join()
    assert got is not None
    assert got.token == "tok-wanted"


def test_concurrent_waiters_each_get_their_own_message():
    tokens = [f"tok-c{i}" for i in range(5)]
    results: dict[str, str | None] = {}
    with receiver() as rx:

        def wait(token):
            got = rx.wait_for(token, time.monotonic() + 30)
            results[token] = got.token if got else None

        waiters = [threading.Thread(target=wait, args=(t,)) for t in tokens]
        for w in waiters:
            w.start()
        with client(rx) as smtp:
            for token in reversed(tokens):
                smtp.sendmail("a@example.test", ["check-auth@receiver.test"], message(token))
        for w in waiters:
            w.join()
    assert results == {t: t for t in tokens}


def test_stop_leaves_no_thread_and_frees_the_port():
    rx = receiver()
    rx.start()
    port = rx.port
    assert rx.running
    assert len(receiver_threads()) == 1
    rx.stop()
    rx.stop()  # twice is fine
    assert not rx.running
    assert receiver_threads() == []
    # The port can be taken again at once.
    with Receiver(HOST, port, hostname="rx", accept_domains=[DOMAIN]) as again:
        assert again.port == port
    assert receiver_threads() == []


def test_an_exception_inside_the_block_stops_the_receiver():
    with pytest.raises(KeyError), receiver():
        assert len(receiver_threads()) == 1
        raise KeyError("boom")
    assert receiver_threads() == []


def test_stop_ends_open_sessions_and_waiters():
    rx = receiver()
    rx.start()
    smtp = client(rx)
    smtp.ehlo()
    smtp.mail("a@example.test")
    result: list[object] = []
    waiter = threading.Thread(
        target=lambda: result.append(rx.wait_for("tok-x", time.monotonic() + 30))
    )
    waiter.start()
    rx.stop()
    waiter.join(timeout=20)
    assert not waiter.is_alive()
    assert result == [None]
    assert receiver_threads() == []
    with pytest.raises((smtplib.SMTPServerDisconnected, OSError)):
        smtp.rcpt("check-auth@receiver.test")
    smtp.close()


def test_address_in_use_is_a_config_error_naming_it():
    blocker = socket.socket()
    blocker.bind((HOST, 0))
    blocker.listen(1)
    port = blocker.getsockname()[1]
    try:
        with pytest.raises(ProbeConfigError) as err:
            Receiver(HOST, port, hostname="rx", accept_domains=[DOMAIN]).start()
        assert f"{HOST}:{port}" in str(err.value)
    finally:
        blocker.close()
    assert receiver_threads() == []


def test_a_second_receiver_on_the_same_address_is_refused():
    with receiver() as first:
        with pytest.raises(ProbeConfigError):
            Receiver(HOST, first.port, hostname="rx", accept_domains=[DOMAIN]).start()
        assert len(receiver_threads()) == 1


@pytest.mark.parametrize("ip", ["not-an-ip", "example.test", ""])
def test_listen_address_must_be_an_ip(ip):
    with pytest.raises(ProbeConfigError):
        Receiver(ip, 25, hostname="rx", accept_domains=[DOMAIN])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.40:25", ("127.0.0.40", 25)),
        ("[::1]:2525", ("::1", 2525)),
        (" 192.0.2.7:25 ", ("192.0.2.7", 25)),
    ],
)
def test_split_listen(value, expected):
    assert split_listen(value) == expected


@pytest.mark.parametrize(
    "value", ["127.0.0.1", "127.0.0.1:", "host:25", "127.0.0.1:0", "127.0.0.1:70000", "::1:25", ""]
)
def test_split_listen_rejects(value):
    with pytest.raises(ProbeConfigError):
        split_listen(value)


# ----- the message.receiver probe, offline: static DNS, the "target MTA" is smtplib -----------
from probes.checks import message_receiver as mr  # noqa: E402
from probes.lab.lab import LabInfo  # noqa: E402
from probes.lab.spec import ROLES, LabSpec, LabSpecError  # noqa: E402
from probes.lab.zones import extra_zones, forward_zone, reverse_zones, tld_zones  # noqa: E402
from probes.lookup.ptr import Iprev  # noqa: E402
from probes.model import MessageOptions, Outcome, Severity, Target  # noqa: E402
from probes.net import Net  # noqa: E402
from probes.net.dns import DnsClient, StaticBackend  # noqa: E402
from probes.parse.authres import parse as parse_authres  # noqa: E402
from probes.runner import Redactor, run_one  # noqa: E402

GOOD_DNS = {
    ("example.test", "TXT"): ["v=spf1 ip4:127.0.0.1 -all"],
    ("_dmarc.example.test", "TXT"): ["v=DMARC1; p=reject"],
    ("1.0.0.127.in-addr.arpa", "PTR"): ["relay.example.test"],
    ("relay.example.test", "A"): ["127.0.0.1"],
    ("receiver.test", "MX"): [(10, "rx.receiver.test")],
    ("rx.receiver.test", "A"): ["127.0.0.1"],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def offline_target(**message) -> Target:
    options = MessageOptions(
        receiver_listen=f"{HOST}:{free_port()}",
        receiver_domain="receiver.test",
        mail_from="sender@example.test",
        deadline_s=10.0,
        submit_host=HOST,
    )
    return Target(domain="example.test", message=dataclasses.replace(options, **message))


def run_offline(target: Target, records=GOOD_DNS):
    net = Net(dns_client=DnsClient(StaticBackend(records)))
    return run_one(mr.MessageReceiver(), target, net, Redactor())


@pytest.fixture
def relay(monkeypatch):
    """send_message replaced by a relay that hands the message straight to the receiver."""
    sent: list[dict] = []

    def fake_send(net, *, ip, port, server_name, mode, helo, mail_from, rcpt_to, raw, creds):
        sent.append({"ip": ip, "port": port, "mode": mode, "rcpt_to": rcpt_to, "creds": creds})
        listen_ip, listen_port = split_listen(relay.target.message.receiver_listen)
        with smtplib.SMTP(listen_ip, listen_port, local_hostname="relay.example.test") as s:
            s.sendmail(mail_from, rcpt_to, raw)

    monkeypatch.setattr(mr, "send_message", fake_send)
    relay.sent = sent
    return relay


def by_code(result) -> dict[str, list]:
    out: dict[str, list] = {}
    for f in result.findings:
        out.setdefault(f.code, []).append(f)
    return out


def test_probe_without_receiver_listen_is_skipped():
    result = run_offline(Target(domain="example.test"))
    assert result.outcome is Outcome.SKIPPED
    assert "receiver_listen" in (result.error_detail or "")


@pytest.mark.parametrize(
    "message",
    [
        {"receiver_domain": None},
        {"receiver_listen": "not-an-address"},
        {"send_via": "carrier-pigeon"},
        {"deadline_s": 0.0},
    ],
)
def test_probe_configuration_errors(message):
    result = run_offline(offline_target(**message))
    assert result.outcome is Outcome.ERROR
    assert result.error.value == "CONFIG"
    assert receiver_threads() == []


def test_probe_unsigned_message_from_an_spf_authorized_relay(relay):
    relay.target = offline_target()
    result = run_offline(relay.target)
    assert result.outcome is Outcome.COMPLETED, result.error_detail
    codes = by_code(result)
    # No signature: dkim=none; SPF passes aligned, so DMARC passes; iprev passes.
    assert {c for c, fs in codes.items() if fs[0].severity >= Severity.WARN} == {
        "AUTHRES_DKIM_NOT_PASS"
    }
    assert codes["AUTHRES_DKIM_NOT_PASS"][0].evidence["result"] == "none"
    (rep,) = codes["RECEIVER_REPORT"]
    assert rep.subject == HOST
    assert rep.evidence["helo"] == "relay.example.test"
    assert rep.evidence["mail_from"] == "sender@example.test"
    # no signature; SPF passed for the From domain: the scorecard draws SPF aligned
    assert (rep.evidence["spf_domain"], rep.evidence["spf_aligned"]) == ("example.test", "yes")
    assert rep.evidence["dkim_aligned"] == "none"
    ar = parse_authres(rep.evidence["authentication_results"])
    assert ar.authserv_id == "rx.receiver.test"
    assert [(r.method, r.result) for r in ar.results] == [
        ("iprev", "pass"),
        ("spf", "pass"),
        ("dkim", "none"),
        ("dmarc", "pass"),
    ]
    assert relay.sent == [
        {
            "ip": HOST,
            "port": 587,
            "mode": "starttls",
            "rcpt_to": ["check-auth@receiver.test"],
            "creds": None,
        }
    ]
    assert receiver_threads() == []


def test_probe_reports_every_failed_method(relay):
    records = {
        ("example.test", "TXT"): ["v=spf1 ip4:192.0.2.1 -all"],
        ("_dmarc.example.test", "TXT"): ["v=DMARC1; p=reject; aspf=s"],
    }
    relay.target = offline_target()
    result = run_offline(relay.target, records)
    assert result.outcome is Outcome.COMPLETED, result.error_detail
    codes = by_code(result)
    assert {c for c, fs in codes.items() if fs[0].severity >= Severity.WARN} == {
        "AUTHRES_SPF_NOT_PASS",
        "AUTHRES_DKIM_NOT_PASS",
        "AUTHRES_DMARC_NOT_PASS",
        "AUTHRES_IPREV_NOT_PASS",
        "DMARC_NOT_ALIGNED",
    }
    assert codes["AUTHRES_SPF_NOT_PASS"][0].evidence["result"] == "fail"
    assert codes["AUTHRES_DMARC_NOT_PASS"][0].evidence["result"] == "fail"
    assert codes["AUTHRES_IPREV_NOT_PASS"][0].evidence["result"] == "permerror"
    assert codes["DMARC_NOT_ALIGNED"][0].evidence["aspf"] == "s"
    ar = parse_authres(codes["RECEIVER_REPORT"][0].evidence["authentication_results"])
    assert {r.method: r.result for r in ar.results} == {
        "iprev": "permerror",
        "spf": "fail",
        "dkim": "none",
        "dmarc": "fail",
    }


def test_probe_gives_up_at_the_deadline(monkeypatch):
    monkeypatch.setattr(mr, "send_message", lambda net, **kw: None)  # accepted, never relayed
    target = offline_target(deadline_s=0.3)
    result = run_offline(target)
    assert result.outcome is Outcome.COMPLETED
    (finding,) = result.findings
    assert (finding.code, finding.severity) == ("MESSAGE_NOT_DELIVERED", Severity.FAIL)
    assert finding.subject == target.message.receiver_listen
    assert receiver_threads() == []


def test_probe_submission_refused_is_not_delivered(monkeypatch):
    from probes.net.smtp_send import SmtpRejected

    def refuse(net, **kw):
        raise SmtpRejected("RCPT", 550, "relay not permitted")

    monkeypatch.setattr(mr, "send_message", refuse)
    result = run_offline(offline_target())
    assert result.outcome is Outcome.COMPLETED
    (finding,) = result.findings
    assert (finding.code, finding.severity) == ("MESSAGE_NOT_DELIVERED", Severity.FAIL)
    assert (finding.evidence["stage"], finding.evidence["reply"]) == (
        "RCPT",
        "550 relay not permitted",
    )
    assert receiver_threads() == []


def test_probe_stops_the_receiver_when_submission_fails(monkeypatch):
    def refuse(net, **kw):
        raise ConnectionRefusedError("submission port closed")

    monkeypatch.setattr(mr, "send_message", refuse)
    result = run_offline(offline_target())
    assert result.outcome is Outcome.ERROR
    assert result.error.value == "CONNECTIVITY"
    assert receiver_threads() == []


# ----- the Authentication-Results value ---------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("pass", "pass"),
        ("user@example.test", "user@example.test"),
        ("127.0.0.1", "127.0.0.1"),
        ("2001:db8::1", '"2001:db8::1"'),
        ('body hash "did not" verify; (x)', '"body hash \\"did not\\" verify; (x)"'),
        ("", '""'),
    ],
)
def test_ar_value_quotes_what_is_not_a_token(text, shown):
    assert mr.ar_value(text) == shown


def test_authentication_results_with_hostile_reasons_still_parse():
    from probes.mail.alignment import DmarcOutcome
    from probes.mail.verify import DkimVerdict, OwnVerdicts, SpfResult

    own = OwnVerdicts(
        dkim=[
            DkimVerdict("example.test", "s1", "fail", 'bad "sig"; \\ (x) \x00\n', "rsa-sha256"),
            DkimVerdict("example.test", "s2", "pass", None, "ed25519-sha256"),
        ],
        spf=SpfResult("softfail", "example.test", "~all matched"),
        dmarc=DmarcOutcome("pass", "example.test", "none", "r", "r", "example.test", (), True, ""),
        header_from_domain="example.test",
    )
    rev = Iprev("2001:db8::1", "fail", "no PTR name resolves back", ("x.example.test",))
    value = mr.authentication_results("rx.receiver.test", own, rev, "", "helo.example.test")
    ar = parse_authres(value)
    assert ar.authserv_id == "rx.receiver.test"
    got = [(r.method, r.result, r.properties) for r in ar.results]
    assert got[0][:2] == ("iprev", "fail")
    assert got[0][2]["policy.iprev"] == "2001:db8::1"
    assert got[1] == ("spf", "softfail", {"smtp.helo": "helo.example.test"})
    assert [g[:2] for g in got[2:]] == [("dkim", "fail"), ("dkim", "pass"), ("dmarc", "pass")]
    assert ar.results[2].reason.startswith('bad "sig"; \\ (x)')


# ----- the lab's receiver role and zone ---------------------------------------------------------
BLOCK = "127.66.7.0/24"


def test_lab_receiver_role_has_octet_40_with_a_and_ptr():
    spec = LabSpec(block=BLOCK)
    assert "receiver" in ROLES
    assert spec.address("receiver") == "127.66.7.40"
    assert spec.placeholders()["receiver"] == "127.66.7.40"
    forward = forward_zone(spec, {"mail": "AAAA"}).text
    assert "receiver A 127.66.7.40" in forward
    (rev,) = reverse_zones(spec)
    assert "40 PTR receiver.example.test." in rev.text


def test_lab_serves_the_receiver_domain_with_its_mx_at_the_receiver():
    spec = LabSpec(block=BLOCK, extra_zones={"reports.test": ()})
    zones = {z.name: z.text for z in extra_zones(spec)}
    assert set(zones) == {"reports.test", "receiver.test"}
    assert "@ MX 10 receiver.example.test." in zones["receiver.test"]
    assert [z.origin for z in tld_zones(spec)] == ["test."]
    # Without a receiver domain there is no such zone.
    none = LabSpec(block=BLOCK, receiver_domain=None)
    assert [z.name for z in extra_zones(none)] == []
    other = LabSpec(block=BLOCK, receiver_domain="check.example.org")
    assert [z.name for z in extra_zones(other)] == ["check.example.org"]
    assert [z.origin for z in tld_zones(other)] == ["org.", "test."]


@pytest.mark.parametrize(
    "value", ["not a domain", "sub.example.test", "example.test", "reports.test"]
)
def test_lab_receiver_domain_validation(value):
    spec = LabSpec(receiver_domain=value, extra_zones={"reports.test": ()})
    with pytest.raises(LabSpecError) as err:
        spec.validate()
    assert err.value.field == "receiver_domain"


def test_lab_receiver_domain_from_yaml_mapping():
    assert LabSpec.from_mapping({"receiver_domain": "rx.test"}).receiver_domain == "rx.test"
    assert LabSpec.from_mapping({"receiver_domain": None}).receiver_domain is None


def test_lab_info_json_adds_receiver_keys_and_reads_old_state():
    info = LabInfo(
        lab_id="127-66-7",
        domain="example.test",
        resolver="127.66.7.53:53",
        hosts={"mx": "127.66.7.25"},
        client_ips={"authorized": "127.66.7.10"},
        user="user@example.test",
        password="pw",
        ca_file="/ca.pem",
        dkim={},
        dkimpy_keys={},
        ports={"smtp": 25},
        lab_dir="/lab",
        receiver="127.66.7.40",
        receiver_domain="receiver.test",
    )
    data = info.to_json()
    assert (data["receiver"], data["receiver_domain"]) == ("127.66.7.40", "receiver.test")
    assert info.receiver_listen == "127.66.7.40:25"
    assert LabInfo.from_json(data) == info
    old = {k: v for k, v in data.items() if not k.startswith("receiver")}
    assert LabInfo.from_json(old).receiver == ""


def test_connections_beyond_the_session_limit_get_421():
    with receiver(max_sessions=2) as rx:
        first, second = client(rx), client(rx)
        with pytest.raises(smtplib.SMTPConnectError) as err:
            client(rx)
        assert err.value.smtp_code == 421
        first.quit()
        # Once a session ends, a new one is let in (the close is seen asynchronously).
        deadline = time.monotonic() + 10
        while True:
            try:
                third = client(rx)
                break
            except smtplib.SMTPConnectError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        third.sendmail("a@example.test", ["check-auth@receiver.test"], message("tok-third"))
        assert rx.wait_for("tok-third", time.monotonic() + 10) is not None
        third.quit()
        second.quit()
    assert receiver_threads() == []
