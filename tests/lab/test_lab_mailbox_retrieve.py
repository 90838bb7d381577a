"""The round trip's network half against the real lab: send with probes.net.smtp_send (to the MX
on 25 from the authorized client address, and via submission 587 with AUTH), read back with
probes.net.mailbox over IMAPS, IMAP+STARTTLS, POP3S and POP3+STLS, delete, and never confuse
concurrent messages. Detection figures (IDLE vs polling) are printed, not asserted: run with -s.
"""

from __future__ import annotations

import email
import imaplib
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import mailtools
import pytest

from probes.credentials import Credentials
from probes.model import Timeouts
from probes.net import Net
from probes.net.mailbox import MailboxRejected, Retrieved, fetch_by_token
from probes.net.smtp_send import SendResult, SmtpRejected, send_message

pytestmark = pytest.mark.lab
FLAVOURED = True  # every test runs on every lab flavour (tests/lab/conftest.py)

# Body lines that need dot-stuffing (a lone "." would end DATA early): a DKIM pass proves the
# bytes arrived as signed.
DOTTED_BODY = "first line\n.hidden leading dot\n.\n..two dots\nlast line\n"

RETRIEVAL = {
    "imaps": ("imap", "implicit", "imaps"),
    "imap-starttls": ("imap", "starttls", "imap"),
    "pop3s": ("pop3", "implicit", "pop3s"),
    "pop3-stls": ("pop3", "starttls", "pop3"),
}


@pytest.fixture(scope="module")
def info(flavour_lab):
    return flavour_lab.info


def make_net(info, source: str | None = None, max_per_host: int = 2) -> Net:
    return Net(
        timeouts=Timeouts(connect=5.0, io=10.0),
        resolver=info.resolver,
        ca_file=info.ca_file,
        source_address=source,
        max_per_host=max_per_host,
    )


def signed_message(info, body: str = DOTTED_BODY) -> tuple[str, bytes]:
    token, raw = mailtools.compose(info, body=body)
    return token, mailtools.sign(info, raw)


def send_to_mx(info, raw: bytes, *, rcpt: str | None = None, net: Net | None = None) -> SendResult:
    return send_message(
        net or make_net(info, info.client_ips["authorized"]),
        ip=info.hosts["mx"],
        port=info.ports["smtp"],
        server_name=f"mx.{info.domain}",
        mode="starttls",
        helo=f"client-a.{info.domain}",
        mail_from=info.user,
        rcpt_to=[rcpt or info.user],
        raw=raw,
        creds=None,
    )


def submit_587(info, raw: bytes, creds: Credentials) -> SendResult:
    return send_message(
        make_net(info, info.client_ips["authorized"]),
        ip=info.hosts["mx"],
        port=info.ports["submission"],
        server_name=f"mx.{info.domain}",
        mode="starttls",
        helo=f"client-a.{info.domain}",
        mail_from=info.user,
        rcpt_to=[info.user],
        raw=raw,
        creds=creds,
    )


def fetch(
    info,
    token: str,
    via: str,
    *,
    within: float = 10.0,
    delete: bool = True,
    creds: Credentials | None = None,
    net: Net | None = None,
    idle: bool = True,
) -> Retrieved | None:
    protocol, tls, port_name = RETRIEVAL[via]
    return fetch_by_token(
        net or make_net(info),
        ip=info.hosts["mailbox"],
        port=info.ports[port_name],
        server_name=f"mailbox.{info.domain}",
        protocol=protocol,
        tls=tls,
        creds=creds or Credentials(info.user, info.password),
        token=token,
        deadline=time.monotonic() + within,
        delete=delete,
        idle=idle,
    )


def mx_auth_results(raw: bytes, info) -> str:
    header = raw.split(b"\r\n\r\n", 1)[0].decode()
    msg = email.message_from_string(header + "\r\n\r\n")
    return mailtools.auth_results(msg, f"mx.{info.domain}")


def assert_round_trip(info, token: str, got: Retrieved | None, via: str) -> None:
    assert got is not None, f"{token} not found over {via}"
    assert token.encode() in got.raw
    ar = mx_auth_results(got.raw, info)
    assert mailtools.verdict(ar, "dkim") == "pass"  # the dot-stuffed body arrived as signed
    assert got.deleted is True
    assert got.method == ("pop3" if via.startswith("pop3") else "idle")
    assert fetch(info, token, via, within=0.3) is None  # deleted: a second look finds nothing


@pytest.mark.parametrize("via", list(RETRIEVAL))
def test_message_sent_to_mx_on_25_is_found_fetched_and_deleted(info, via):
    token, raw = signed_message(info)
    sent = send_to_mx(info, raw)
    assert sent.queue_id and sent.queue_id in sent.reply
    assert sent.tls_version and sent.tls_version.startswith("TLSv1")
    assert sent.client_ip == info.client_ips["authorized"]
    assert (sent.host, sent.port) == (info.hosts["mx"], info.ports["smtp"])
    got = fetch(info, token, via)
    assert_round_trip(info, token, got, via)
    assert mailtools.verdict(mx_auth_results(got.raw, info), "spf") == "pass"


@pytest.mark.parametrize("via", list(RETRIEVAL))
def test_message_submitted_on_587_with_auth_is_found_fetched_and_deleted(info, via):
    token, raw = signed_message(info)
    sent = submit_587(info, raw, Credentials(info.user, info.password))
    assert sent.queue_id
    assert sent.tls_version
    got = fetch(info, token, via)
    assert_round_trip(info, token, got, via)


def test_message_submitted_on_465_with_implicit_tls_round_trips(info):
    token, raw = signed_message(info)
    sent = send_message(
        make_net(info, info.client_ips["authorized"]),
        ip=info.hosts["mx"],
        port=info.ports["submissions"],
        server_name=f"mx.{info.domain}",
        mode="implicit",
        helo=f"client-a.{info.domain}",
        mail_from=info.user,
        rcpt_to=[info.user],
        raw=raw,
        creds=Credentials(info.user, info.password),
    )
    assert sent.tls_version and sent.queue_id
    assert_round_trip(info, token, fetch(info, token, "imaps"), "imaps")


def test_fetch_returns_message_bytes_exactly_as_sent_below_the_added_headers(info):
    token, raw = signed_message(info)
    send_to_mx(info, raw)
    got = fetch(info, token, "imaps")
    assert got is not None
    assert got.raw.endswith(raw)  # the receivers only prepend headers


def test_concurrent_round_trips_never_take_each_others_message(info):
    vias = list(RETRIEVAL)
    net_out = make_net(info, info.client_ips["authorized"], max_per_host=10)
    net_in = make_net(info, max_per_host=10)  # waiting sessions hold their slot

    def one(i: int) -> tuple[str, Retrieved | None]:
        token, raw = signed_message(info, body=f"round trip {i}\n")
        via = vias[i % len(vias)]
        result: list[Retrieved | None] = []
        waiter = threading.Thread(
            target=lambda: result.append(fetch(info, token, via, within=20.0, net=net_in))
        )
        waiter.start()  # the reader waits before the message is sent
        send_to_mx(info, raw, net=net_out)
        waiter.join()
        return token, result[0]

    with ThreadPoolExecutor(10) as pool:
        outcomes = list(pool.map(one, range(10)))
    for token, got in outcomes:
        assert got is not None, token
        assert got.deleted is True
        others = [t for t, _ in outcomes if t != token]
        assert token.encode() in got.raw
        assert not any(t.encode() in got.raw for t in others)
    assert len({token for token, _ in outcomes}) == 10


def test_refused_recipient_raises_smtp_rejected_at_rcpt(info):
    _, raw = signed_message(info)
    with pytest.raises(SmtpRejected) as unknown:
        send_to_mx(info, raw, rcpt=f"nobody-here@{info.domain}")
    assert (unknown.value.stage, unknown.value.code) == ("RCPT", 550)
    with pytest.raises(SmtpRejected) as relay:
        send_to_mx(info, raw, rcpt="someone@elsewhere.invalid")
    # 550 (Exim, sendmail) or 554 5.7.1 (Postfix's relay refusal)
    assert (relay.value.stage, relay.value.code) in {("RCPT", 550), ("RCPT", 554)}


def test_wrong_submission_password_raises_at_auth_without_the_password(info):
    wrong = Credentials(info.user, "Wr0ng-" + info.password)
    _, raw = signed_message(info)
    with pytest.raises(SmtpRejected) as refused:
        submit_587(info, raw, wrong)
    assert refused.value.stage == "AUTH"
    assert 500 <= refused.value.code < 600
    assert wrong.password not in str(refused.value)
    assert info.password not in str(refused.value)


@pytest.mark.parametrize("via", list(RETRIEVAL))
def test_wrong_mailbox_password_raises_at_login_without_the_password(info, via):
    wrong = Credentials(info.user, "Wr0ng-" + info.password)
    with pytest.raises(MailboxRejected) as refused:
        fetch(info, "no-such-token", via, within=0.5, creds=wrong)
    assert refused.value.stage == "LOGIN"
    assert wrong.password not in str(refused.value)
    assert wrong.password not in repr(refused.value.args)


def test_fetch_keeps_the_message_when_told_not_to_delete(info):
    token, raw = signed_message(info)
    send_to_mx(info, raw)
    kept = fetch(info, token, "imaps", delete=False)
    assert kept is not None and kept.deleted is False
    again = fetch(info, token, "pop3s")
    assert again is not None and again.raw == kept.raw and again.deleted is True


# ----- detection figures (printed) ------------------------------------------------------------
def _landing_watch(info, token: str, until: float, landed: list[float]) -> None:
    """A tight observer on its own IMAPS session: when did the message become visible?"""
    with imaplib.IMAP4_SSL(
        info.hosts["mailbox"], info.ports["imaps"], ssl_context=mailtools.tls_context(info)
    ) as im:
        im.login(info.user, info.password)
        im.select("INBOX", readonly=True)
        while time.monotonic() < until:
            _, data = im.uid("SEARCH", "HEADER", "X-Mailprobe-Token", f'"{token}"')
            if data[0].split():
                landed.append(time.monotonic())
                return
            time.sleep(0.002)


def _detect_once(info, via: str, idle: bool, reader_first: bool) -> tuple[float, float, float]:
    """(submit s, landing after submit s, detection after landing s) for one round trip; the
    reader starts before the submission (waiting) or right after it returns (sequential)."""
    token, raw = signed_message(info)
    landed: list[float] = []
    got: list[tuple[float, Retrieved | None]] = []
    until = time.monotonic() + 10.0

    def reader() -> None:
        start = time.monotonic()
        got.append((start, fetch(info, token, via, within=10.0, delete=False, idle=idle)))

    watcher = threading.Thread(target=_landing_watch, args=(info, token, until, landed))
    waiter = threading.Thread(target=reader)
    watcher.start()
    if reader_first:
        waiter.start()
    time.sleep(0.3)  # the sessions are logged in and waiting
    t0 = time.monotonic()
    send_to_mx(info, raw)
    t1 = time.monotonic()
    if not reader_first:
        waiter.start()
    watcher.join()
    waiter.join()
    start, result = got[0]
    assert result is not None and landed
    assert fetch(info, token, "imaps") is not None  # clean up
    return t1 - t0, landed[0] - t1, start + result.found_after_s - landed[0]


@pytest.mark.parametrize(
    ("via", "idle", "reader_first"),
    [
        ("imaps", True, True),
        ("imaps", True, False),
        ("imaps", False, True),
        ("imaps", False, False),
        ("pop3s", False, True),
        ("pop3s", False, False),
    ],
)
def test_detection_figures_are_printed(info, via, idle, reader_first):
    rounds = [_detect_once(info, via, idle, reader_first) for _ in range(7)]
    detect = sorted(r[2] for r in rounds)
    print(
        f"\n[detection] {via} {'IDLE' if idle else 'poll'} "
        f"{'reader waiting' if reader_first else 'reader after submit'}: submit "
        f"{sorted(r[0] for r in rounds)[3] * 1000:.0f} ms, landed "
        f"{sorted(r[1] for r in rounds)[3] * 1000:.0f} ms after submit, detected after landing: "
        f"median {detect[3] * 1000:.0f} ms, all "
        + ", ".join(f"{d * 1000:.0f}" for d in detect)
        + " ms"
    )
