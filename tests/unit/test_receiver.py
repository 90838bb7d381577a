"""mailprobe's SMTP receiver (probes.net.receiver) on 127.0.0.1, with smtplib as the client."""

from __future__ import annotations

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
