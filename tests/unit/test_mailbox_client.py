"""The round trip's network clients against tiny fake servers on 127.0.0.1 (no lab):
probes.net.mailbox (IMAP literals, IDLE, polling, token matching, deletion; POP3 sessions,
dot-unstuffing, TOP/RETR), the stream door's additions it rests on, and probes.net.smtp_send
(dot-stuffing, the transaction, refusals by stage, secrets).

The fakes (tests/hostile_server.py underneath, TLS from a throwaway CA) implement just enough of
each protocol; their command logs show what the client did. No timing is asserted.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from pathlib import Path

import pytest

from probes.credentials import Credentials
from probes.errors import ProbeConfigError, ProtocolError
from probes.model import Timeouts
from probes.net import Net, mailbox
from probes.net.mailbox import MailboxRejected, fetch_by_token, has_token
from probes.net.smtp_send import SmtpRejected, dot_stuff, queue_id, send_message
from probes.net.stream import Connection

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import hostile_server as hs

pytestmark = pytest.mark.timeout(60)  # a hang guard, not a speed limit

USER, PASSWORD = "user@fake.test", "S3cret-pa55"
CREDS = Credentials(USER, PASSWORD)
TOKEN = "tok-123abc"


def message(token: str = TOKEN, body: bytes = b"hello\r\n", header: bytes | None = None) -> bytes:
    header = header if header is not None else f"X-Mailprobe-Token: {token}\r\n".encode()
    return b"From: a@fake.test\r\nSubject: test\r\n" + header + b"\r\n" + body


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return hs.tls_material(tmp_path_factory.mktemp("mailbox-tls"))


def make_net(ca_file: str, io: float = 2.0) -> Net:
    return Net(timeouts=Timeouts(connect=2.0, io=io, probe=10.0), ca_file=ca_file)


# ----- a fake IMAP server ------------------------------------------------------------------------
class FakeImap:
    """INBOX of `messages` (uid -> bytes). `arrive` (uid, bytes) is added at the `arrive_at_search`
    -th SEARCH, or during the first IDLE (then announced with EXISTS)."""

    def __init__(
        self,
        messages: dict[int, bytes] | None = None,
        *,
        caps: str = "IMAP4rev1 IDLE UIDPLUS",
        implicit: bool = True,
        arrive: tuple[int, bytes] | None = None,
        arrive_at_search: int | None = None,
        login_no: str | None = None,
        fetch_chunks: int = 1,
        fetch_template: str = "* 1 FETCH (UID {uid} BODY[] {{{size}}}\r\n{lit})\r\n",
        announce: int | None = None,
        noise: str = "",
        phantom: int | None = None,
    ) -> None:
        self.messages = dict(messages or {})
        self.caps = caps
        self.implicit = implicit
        self.arrive = arrive
        self.arrive_at_search = arrive_at_search
        self.login_no = login_no
        self.fetch_chunks = fetch_chunks
        self.fetch_template = fetch_template
        self.announce = announce  # a literal size to announce instead of the real one
        self.noise = noise  # untagged lines sent before every tagged completion
        self.phantom = phantom  # a UID SEARCH reports but FETCH no longer finds (expunged)
        self.commands: list[str] = []
        self.searches = 0
        self.lock = threading.Lock()

    def _arrive(self) -> None:
        if self.arrive is not None:
            uid, raw = self.arrive
            self.messages[uid] = raw
            self.arrive = None

    def _search(self, rest: str) -> list[int]:
        self.searches += 1
        if self.arrive_at_search is not None and self.searches >= self.arrive_at_search:
            self._arrive()
        token = re.search(r'"([^"]*)"', rest).group(1)
        low = re.search(r"UID (\d+):\*", rest)
        hits = []
        for uid, raw in sorted(self.messages.items()):
            head = re.sub(rb"\r\n[ \t]+", b" ", raw.split(b"\r\n\r\n")[0])
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                matches = name.lower() == b"x-mailprobe-token" and token.encode() in value
                if matches and (low is None or uid >= int(low.group(1))):
                    hits.append(uid)
        return hits if self.phantom is None else [self.phantom, *hits]

    def __call__(self, peer: hs.Peer) -> None:
        tls_on = self.implicit
        if self.implicit:
            peer.start_tls()
        peer.send(b"* OK fake IMAP ready\r\n")
        while True:
            line = peer.recv_line()
            tag, _, rest = line.partition(" ")
            words = rest.split()
            verb = words[0].upper()
            sub = words[1].upper() if verb == "UID" and len(words) > 1 else ""
            with self.lock:
                self.commands.append(f"{verb} {sub}".strip() if verb != "LOGIN" else "LOGIN")
            done = f"{self.noise}{tag} OK done\r\n".encode()
            if verb == "CAPABILITY":
                caps = self.caps if tls_on else self.caps + " STARTTLS LOGINDISABLED"
                peer.send(f"* CAPABILITY {caps}\r\n".encode() + done)
            elif verb == "STARTTLS":
                peer.send(f"{tag} OK begin TLS\r\n".encode())
                peer.start_tls()
                tls_on = True
            elif verb == "LOGIN":
                if self.login_no is not None:
                    peer.send(f"{tag} NO [AUTHENTICATIONFAILED] {self.login_no}\r\n".encode())
                else:
                    peer.send(f"{tag} OK [CAPABILITY {self.caps}] logged in\r\n".encode())
            elif verb == "SELECT":
                top = max(self.messages, default=0)
                peer.send(
                    f"* {len(self.messages)} EXISTS\r\n* OK [UIDNEXT {top + 1}] next\r\n".encode()
                    + done
                )
            elif sub == "SEARCH":
                hits = self._search(rest)
                peer.send(f"* SEARCH{''.join(f' {u}' for u in hits)}\r\n".encode() + done)
            elif sub == "FETCH":
                uid = int(words[2])
                raw = self.messages.get(uid)
                if raw is not None:
                    size = self.announce if self.announce is not None else len(raw)
                    text = self.fetch_template.format(uid=uid, size=size, lit="\0")
                    head, _, after = text.partition("\0")
                    data = head.encode() + raw + after.encode()
                    step = max(1, len(data) // self.fetch_chunks)
                    for i in range(0, len(data), step):
                        peer.send(data[i : i + step])
                        if self.fetch_chunks > 1:
                            peer.wait(0.02)
                    if self.announce is not None:
                        peer.hold()
                peer.send(done)
            elif sub == "STORE" or verb == "EXPUNGE" or sub == "EXPUNGE":
                if sub == "EXPUNGE" or verb == "EXPUNGE":
                    self.messages.pop(int(words[2]) if sub else min(self.messages), None)
                peer.send(done)
            elif verb == "IDLE":
                peer.send(b"+ idling\r\n")
                if self.arrive is not None and self.arrive_at_search is None:
                    peer.wait(0.2)
                    self._arrive()
                    peer.send(f"* {len(self.messages)} EXISTS\r\n".encode())
                if peer.recv_line().upper() != "DONE":
                    raise AssertionError("IDLE not ended with DONE")
                with self.lock:
                    self.commands.append("DONE")
                peer.send(done)
            elif verb == "LOGOUT":
                peer.send(b"* BYE bye\r\n" + done)
                return
            else:
                peer.send(f"{tag} BAD unknown\r\n".encode())


def imap_fetch(server, fake: FakeImap, ca_file: str, *, within: float = 3.0, **kw):
    return fetch_by_token(
        make_net(ca_file),
        ip=server.host,
        port=server.port,
        server_name="hostile.test",
        protocol="imap",
        tls="implicit" if fake.implicit else "starttls",
        creds=kw.pop("creds", CREDS),
        token=kw.pop("token", TOKEN),
        deadline=time.monotonic() + within,
        **kw,
    )


def run_imap(fake: FakeImap, tls, **kw):
    ctx, ca_file = tls
    with hs.HostileServer(fake, tls=ctx) as server:
        got = imap_fetch(server, fake, ca_file, **kw)
    assert not server.errors, server.errors
    return got


# ----- IMAP --------------------------------------------------------------------------------------
AWKWARD = message(
    body=b"a line ending in a literal {5}\r\n.\r\n..\r\n\xff\xfe 8-bit\r\nno final CRLF"
)


def test_imap_literal_is_read_exactly_even_when_it_arrives_in_pieces(tls):
    fake = FakeImap({7: AWKWARD}, fetch_chunks=5)
    got = run_imap(fake, tls)
    assert got is not None
    assert got.raw == AWKWARD
    assert (got.method, got.deleted) == ("idle", True)
    assert fake.commands[-3:] == ["UID STORE", "UID EXPUNGE", "LOGOUT"]


def test_imap_literal_larger_than_max_bytes_is_refused_before_reading_it(tls):
    fake = FakeImap({7: message()}, announce=50_000_000)
    with pytest.raises(ProtocolError, match="limit"):
        run_imap(fake, tls, max_bytes=1000)


def test_imap_idle_wakes_on_exists_then_searches_and_fetches(tls, monkeypatch):
    monkeypatch.setattr(mailbox, "IDLE_RECHECK_FIRST_S", 30.0)  # only EXISTS can wake it
    fake = FakeImap({1: message("someone-else")}, arrive=(2, message()))
    got = run_imap(fake, tls, within=30.0)
    assert got is not None and got.raw == message() and got.method == "idle"
    assert got.found_after_s < 15.0  # woken by EXISTS, long before the deadline ended the IDLE
    assert fake.commands.count("IDLE") == 1
    assert fake.commands.index("DONE") < fake.commands.index("UID FETCH")


def test_imap_idle_ends_with_done_and_none_at_the_deadline(tls):
    fake = FakeImap({1: message("someone-else")})
    assert run_imap(fake, tls, within=0.4) is None
    assert "IDLE" in fake.commands
    assert fake.commands.count("IDLE") == fake.commands.count("DONE")
    assert "UID FETCH" not in fake.commands
    assert fake.commands[-1] == "LOGOUT"


def test_imap_without_idle_polls_with_backoff(tls):
    fake = FakeImap({}, caps="IMAP4rev1 UIDPLUS", arrive=(3, message()), arrive_at_search=4)
    got = run_imap(fake, tls, within=10.0)
    assert got is not None and got.method == "poll"
    assert "IDLE" not in fake.commands
    # Found at the 4th search (the message "arrives" then), the 3 polls before it waited.
    assert fake.searches == 4


def test_imap_polling_stays_sparse_until_the_deadline(tls):
    fake = FakeImap({}, caps="IMAP4rev1")
    assert run_imap(fake, tls, within=1.6, idle=False) is None
    # 50 ms doubling to 1 s: searches at about 0, .05, .15, .35, .75, 1.55 and a last one.
    assert 4 <= fake.searches <= 9


def test_imap_substring_hit_with_another_token_is_neither_taken_nor_deleted(tls):
    fake = FakeImap({5: message(TOKEN + "-longer")}, caps="IMAP4rev1 UIDPLUS")
    assert run_imap(fake, tls, within=0.5) is None
    assert fake.commands.count("UID FETCH") == 1  # fetched once, then remembered
    assert "UID STORE" not in fake.commands and 5 in fake.messages


def test_imap_folded_token_header_matches(tls):
    folded = message(header=f"X-Mailprobe-Token:\r\n\t{TOKEN}\r\n".encode())
    got = run_imap(FakeImap({9: folded}), tls)
    assert got is not None and got.raw == folded


def test_imap_fetch_among_unsolicited_responses_and_uid_after_the_literal(tls):
    noise = "* 3 EXPUNGE\r\n* 2 FETCH (FLAGS (\\Seen))\r\n* 4 RECENT\r\n"
    fake = FakeImap(
        {11: message()},
        noise=noise,
        fetch_template="* 1 FETCH (FLAGS (\\Seen) BODY[] {{{size}}}\r\n{lit} UID {uid})\r\n",
    )
    got = run_imap(fake, tls)
    assert got is not None and got.raw == message()


def test_imap_response_flood_is_refused_not_buffered(tls):
    fake = FakeImap({1: message()}, noise=("* OK " + "x" * 8000 + "\r\n") * 200)
    with pytest.raises(ProtocolError, match="too large"):
        run_imap(fake, tls)


def test_imap_without_uidplus_expunges_with_plain_expunge(tls):
    fake = FakeImap({4: message()}, caps="IMAP4rev1 IDLE")
    got = run_imap(fake, tls)
    assert got is not None and got.deleted
    assert "EXPUNGE" in fake.commands and "UID EXPUNGE" not in fake.commands


def test_imap_keeps_the_message_when_told_not_to_delete(tls):
    fake = FakeImap({4: message()})
    got = run_imap(fake, tls, delete=False)
    assert got is not None and got.deleted is False
    assert "UID STORE" not in fake.commands


def test_imap_starttls_is_used_before_login(tls):
    fake = FakeImap({4: message()}, implicit=False)
    got = run_imap(fake, tls)
    assert got is not None
    assert fake.commands.index("STARTTLS") < fake.commands.index("LOGIN")


def test_imap_without_starttls_offered_never_logs_in(tls):
    ctx, ca_file = tls
    handler = hs.imap(capabilities="IMAP4rev1 AUTH=PLAIN")
    with hs.HostileServer(handler, tls=ctx) as server:
        fake = FakeImap(implicit=False)
        with pytest.raises(ProtocolError, match="STARTTLS"):
            imap_fetch(server, fake, ca_file)
    assert not any("LOGIN" in line for line in server.received)


def test_imap_refused_login_raises_without_the_password(tls):
    fake = FakeImap({}, login_no=f"wrong password {PASSWORD} for {USER}")
    with pytest.raises(MailboxRejected) as refused:
        run_imap(fake, tls)
    assert (refused.value.stage, refused.value.status) == ("LOGIN", "NO")
    assert PASSWORD not in str(refused.value) and PASSWORD not in refused.value.text


def test_imap_message_gone_before_fetch_is_skipped(tls):
    fake = FakeImap({}, phantom=6)
    assert run_imap(fake, tls, within=0.3) is None
    assert fake.commands.count("UID FETCH") == 1  # remembered, not fetched again
    assert "UID STORE" not in fake.commands


# ----- a fake POP3 server ------------------------------------------------------------------------
class FakePop3:
    """`messages`: (uidl, bytes, first session that sees it). Sessions are counted at PASS."""

    def __init__(
        self,
        messages: list[tuple[str, bytes, int]],
        *,
        implicit: bool = True,
        capa: tuple[str, ...] = ("USER", "TOP", "UIDL", "STLS"),
        quit_ok: bool = True,
    ) -> None:
        self.messages = messages
        self.implicit = implicit
        self.capa = capa
        self.quit_ok = quit_ok
        self.sessions = 0
        self.commands: list[str] = []
        self.deleted: list[str] = []

    @staticmethod
    def _stuffed(data: bytes) -> bytes:
        lines = data.split(b"\r\n")
        if lines and lines[-1] == b"":
            lines.pop()
        return b"".join((b"." + ln if ln.startswith(b".") else ln) + b"\r\n" for ln in lines)

    def __call__(self, peer: hs.Peer) -> None:
        if self.implicit:
            peer.start_tls()
        peer.send(b"+OK fake POP3 ready\r\n")
        visible: list[tuple[str, bytes, int]] = []
        dele: list[str] = []
        while True:
            words = peer.recv_line().split()
            verb = words[0].upper()
            self.commands.append(" ".join([verb, *words[1:2]]) if verb != "PASS" else "PASS")
            if verb == "CAPA":
                peer.send(("+OK\r\n" + "".join(f"{c}\r\n" for c in self.capa) + ".\r\n").encode())
            elif verb == "STLS":
                peer.send(b"+OK go\r\n")
                peer.start_tls()
            elif verb == "USER":
                peer.send(b"+OK\r\n")
            elif verb == "PASS":
                self.sessions += 1
                visible = [m for m in self.messages if m[2] <= self.sessions]
                peer.send(b"+OK logged in\r\n")
            elif verb in ("UIDL", "LIST") and verb in (*self.capa, "LIST"):
                rows = "".join(
                    f"{n} {uid if verb == 'UIDL' else len(raw)}\r\n"
                    for n, (uid, raw, _) in enumerate(visible, 1)
                )
                peer.send(f"+OK\r\n{rows}.\r\n".encode())
            elif verb in ("TOP", "RETR") and verb in (*self.capa, "RETR"):
                raw = visible[int(words[1]) - 1][1]
                part = raw.split(b"\r\n\r\n")[0] + b"\r\n\r\n" if verb == "TOP" else raw
                peer.send(b"+OK\r\n" + self._stuffed(part) + b".\r\n")
            elif verb == "DELE":
                dele.append(visible[int(words[1]) - 1][0])
                peer.send(b"+OK\r\n")
            elif verb == "QUIT":
                if self.quit_ok:
                    self.deleted += dele
                    peer.send(b"+OK bye\r\n")
                else:
                    peer.send(b"-ERR could not delete\r\n")
                return
            else:
                peer.send(b"-ERR unknown\r\n")


def run_pop3(fake: FakePop3, tls, *, within: float = 5.0, **kw):
    ctx, ca_file = tls
    with hs.HostileServer(fake, tls=ctx) as server:
        got = fetch_by_token(
            make_net(ca_file),
            ip=server.host,
            port=server.port,
            server_name="hostile.test",
            protocol="pop3",
            tls="implicit" if fake.implicit else "starttls",
            creds=kw.pop("creds", CREDS),
            token=TOKEN,
            deadline=time.monotonic() + within,
            **kw,
        )
    assert not server.errors, server.errors
    return got


DOTTED = message(body=b".\r\n..two\r\n.one\r\nplain\r\n")


def test_pop3_retr_is_dot_unstuffed_to_the_exact_bytes_and_deleted(tls):
    fake = FakePop3([("u1", message("other"), 1), ("u2", DOTTED, 1)])
    got = run_pop3(fake, tls)
    assert got is not None and got.raw == DOTTED
    assert (got.method, got.deleted) == ("pop3", True)
    assert fake.deleted == ["u2"]
    assert fake.commands[-2:] == ["DELE 2", "QUIT"]


def test_pop3_message_over_max_bytes_is_refused(tls):
    fake = FakePop3([("u1", message(body=b"x" * 5000 + b"\r\n"), 1)])
    with pytest.raises(ProtocolError, match="longer than"):
        run_pop3(fake, tls, max_bytes=1000)


def test_pop3_polls_with_a_new_session_and_tops_each_message_once(tls):
    fake = FakePop3([("old", message("other"), 1), ("new", message(), 3)])
    got = run_pop3(fake, tls)
    assert got is not None and got.raw == message()
    assert fake.sessions == 3
    assert fake.commands.count("TOP 1") == 1  # "old" was checked in session 1 only
    assert fake.commands.count("QUIT") == 3


def test_pop3_without_top_reads_with_retr(tls):
    fake = FakePop3([("u1", message(), 1)], capa=("USER", "UIDL"))
    got = run_pop3(fake, tls)
    assert got is not None and got.raw == message()
    assert "RETR 1" in fake.commands


def test_pop3_without_uidl_uses_list(tls):
    fake = FakePop3([("u1", message(), 1)], capa=("USER", "TOP"))
    got = run_pop3(fake, tls)
    assert got is not None and "LIST" in fake.commands


def test_pop3_stls_is_used_before_user(tls):
    fake = FakePop3([("u1", message(), 1)], implicit=False)
    got = run_pop3(fake, tls)
    assert got is not None
    assert fake.commands.index("STLS") < fake.commands.index(f"USER {USER}")


def test_pop3_without_stls_never_sends_the_password(tls):
    fake = FakePop3([("u1", message(), 1)], implicit=False, capa=("USER", "TOP"))
    with pytest.raises(ProtocolError, match="STLS"):
        run_pop3(fake, tls)
    assert "PASS" not in fake.commands and not any(c.startswith("USER") for c in fake.commands)


def test_pop3_deletion_counts_only_when_quit_succeeds(tls):
    fake = FakePop3([("u1", message(), 1)], quit_ok=False)
    got = run_pop3(fake, tls)
    assert got is not None and got.deleted is False


def test_pop3_nothing_found_returns_none_at_the_deadline(tls):
    fake = FakePop3([("u1", message("other"), 1)])
    assert run_pop3(fake, tls, within=0.4) is None
    assert fake.sessions >= 2 and fake.commands.count("TOP 1") == 1


# ----- arguments and the pure helper -------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (message(), True),
        (message(header=f"x-mailprobe-token:   {TOKEN}  \r\n".encode()), True),
        (message(header=f"X-Mailprobe-Token:\r\n {TOKEN}\r\n".encode()), True),
        (message(header=f"X-Mailprobe-Token: {TOKEN}x\r\n".encode()), False),
        (message(header=f"X-Other: {TOKEN}\r\n".encode()), False),
        (b"From: a\r\n\r\nX-Mailprobe-Token: " + TOKEN.encode() + b"\r\n", False),  # body
        (b"From: a\nX-Mailprobe-Token: " + TOKEN.encode() + b"\n\nbody\n", True),
    ],
)
def test_has_token_matches_the_header_value_only(raw, expected):
    assert has_token(raw, TOKEN) is expected


@pytest.mark.parametrize(
    "kwargs",
    [
        {"protocol": "smtp"},
        {"tls": "plain"},
        {"token": 'a" OR ALL'},
        {"token": "x\r\ny"},
        {"token": ""},
        {"max_bytes": 0},
    ],
)
def test_bad_arguments_raise_config_errors_before_connecting(kwargs):
    args = {
        "ip": "127.0.0.1",
        "port": 9,
        "server_name": "x",
        "protocol": "imap",
        "tls": "implicit",
        "creds": CREDS,
        "token": TOKEN,
        "deadline": 0.0,
    }
    args.update(kwargs)
    with pytest.raises(ProbeConfigError):
        fetch_by_token(Net(), **args)


# ----- the stream door's additions ----------------------------------------------------------------
def test_poll_line_keeps_a_partial_line_for_the_next_read():
    def handler(peer):
        peer.send(b"* 3 EXI")
        peer.wait(0.3)
        peer.send(b"STS\r\n")
        peer.hold()

    with (
        hs.HostileServer(handler) as server,
        Connection.open(Net(timeouts=Timeouts(io=2.0)), server.host, server.port) as conn,
    ):
        assert conn.poll_line(0.05) is None
        line = None
        while line is None:
            line = conn.poll_line(0.5)
        assert line == "* 3 EXISTS"


def test_read_exact_and_read_dotted_are_bounded():
    def handler(peer):
        peer.send(b"0123456789..stuffed\r\n.\r\n")
        peer.hold()

    with (
        hs.HostileServer(handler) as server,
        Connection.open(Net(timeouts=Timeouts(io=1.0)), server.host, server.port) as conn,
    ):
        with pytest.raises(ProtocolError):
            conn.read_exact(11, cap=10)  # refused without reading
        assert conn.read_exact(10, cap=10) == b"0123456789"
        assert conn.read_dotted(cap=100) == b".stuffed\r\n"
        with pytest.raises(TimeoutError):
            conn.read_exact(5, cap=10)  # nothing more comes
    with (
        hs.HostileServer(hs.flood(b"y" * 100 + b"\r\n", 200_000)) as server,
        Connection.open(Net(timeouts=Timeouts(io=2.0)), server.host, server.port) as conn,
        pytest.raises(ProtocolError, match="longer than"),
    ):
        conn.read_dotted(cap=10_000)


# ----- SMTP submission (the sending half) ---------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "wire"),
    [
        (b"a\r\nb\r\n", b"a\r\nb\r\n"),
        (b"a\nb", b"a\r\nb\r\n"),
        (b"a\rb\r\n", b"a\r\nb\r\n"),
        (b".x\r\n.\r\n..\r\nend", b"..x\r\n..\r\n...\r\nend\r\n"),
        (b"\xff\xfe\r\n", b"\xff\xfe\r\n"),
    ],
)
def test_dot_stuff_normalises_line_ends_and_doubles_leading_dots(raw, wire):
    assert dot_stuff(raw) == wire


@pytest.mark.parametrize(
    ("text", "qid"),
    [
        ("OK id=1tXyZa-000123-AB", "1tXyZa-000123-AB"),
        ("2.0.0 Ok: queued as 4Xb1C2D3", "4Xb1C2D3"),
        ("2.0.0 5A1B2C3D Message accepted for delivery", "5A1B2C3D"),
        ("2.0.0 OK", None),
    ],
)
def test_queue_id_is_read_from_common_250_forms(text, qid):
    assert queue_id(text) == qid


class FakeSmtp:
    def __init__(self, *, rcpt: bytes = b"250 ok\r\n", auth: bytes = b"235 ok\r\n", starttls=True):
        self.rcpt = rcpt
        self.auth = auth
        self.starttls = starttls
        self.commands: list[str] = []
        self.data: bytes | None = None

    def __call__(self, peer: hs.Peer) -> None:
        peer.send(b"220 fake.test ESMTP\r\n")
        tls_on = False
        while True:
            line = peer.recv_line()
            verb = line.split(" ", 1)[0].upper()
            self.commands.append(line if verb != "AUTH" else "AUTH")
            if verb == "EHLO":
                caps = ["fake.test", "SIZE 100000", "8BITMIME"]
                caps += ["AUTH PLAIN"] if tls_on else (["STARTTLS"] if self.starttls else [])
                peer.send(
                    "".join(
                        f"250{'-' if i < len(caps) - 1 else ' '}{c}\r\n" for i, c in enumerate(caps)
                    ).encode()
                )
            elif verb == "STARTTLS":
                peer.send(b"220 go\r\n")
                peer.start_tls()
                tls_on = True
            elif verb == "AUTH":
                peer.send(self.auth)
            elif verb == "MAIL":
                peer.send(b"250 ok\r\n")
            elif verb == "RCPT":
                peer.send(self.rcpt)
            elif verb == "DATA":
                peer.send(b"354 go\r\n")
                data = b""
                while not data.endswith(b"\r\n.\r\n"):
                    data += peer.recv_some()
                self.data = data
                peer.send(b"250 OK id=1abc-0001-XY\r\n")
            elif verb in ("QUIT", "RSET"):
                peer.send(b"221 bye\r\n")
                return


def smtp_send(fake: FakeSmtp, tls, raw: bytes, creds=CREDS, mode="starttls"):
    ctx, ca_file = tls
    with hs.HostileServer(fake, tls=ctx) as server:
        return send_message(
            make_net(ca_file),
            ip=server.host,
            port=server.port,
            server_name="hostile.test",
            mode=mode,
            helo="client.fake.test",
            mail_from="a@fake.test",
            rcpt_to=["b@fake.test"],
            raw=raw,
            creds=creds,
        )


def test_send_message_stuffs_dots_and_reports_the_queue_id(tls):
    fake = FakeSmtp()
    raw = b"Subject: x\r\n\r\n.\r\n.dot\r\n\xc3\xa9\r\n"
    sent = smtp_send(fake, tls, raw)
    assert fake.data == b"Subject: x\r\n\r\n..\r\n..dot\r\n\xc3\xa9\r\n.\r\n"
    assert (sent.queue_id, sent.client_ip) == ("1abc-0001-XY", "127.0.0.1")
    assert sent.tls_version is not None
    verbs = [c.split()[0].upper() for c in fake.commands]
    assert verbs == ["EHLO", "STARTTLS", "EHLO", "AUTH", "MAIL", "RCPT", "DATA", "QUIT"]
    mail = next(c for c in fake.commands if c.startswith("MAIL"))
    assert f"SIZE={len(dot_stuff(raw))}" in mail and "BODY=8BITMIME" in mail


def test_refused_recipient_raises_at_rcpt_and_quits(tls):
    fake = FakeSmtp(rcpt=b"550 5.1.1 no such user\r\n")
    with pytest.raises(SmtpRejected) as refused:
        smtp_send(fake, tls, b"x\r\n")
    assert (refused.value.stage, refused.value.code) == ("RCPT", 550)
    assert fake.commands[-1] == "QUIT" and fake.data is None


def test_refused_auth_echoing_the_password_is_scrubbed(tls):
    fake = FakeSmtp(auth=f"535 5.7.8 bad credentials {PASSWORD}\r\n".encode())
    with pytest.raises(SmtpRejected) as refused:
        smtp_send(fake, tls, b"x\r\n")
    assert refused.value.stage == "AUTH"
    assert PASSWORD not in str(refused.value) and PASSWORD not in refused.value.text


def test_no_starttls_offered_sends_nothing_in_clear(tls):
    fake = FakeSmtp(starttls=False)
    with pytest.raises(ProtocolError, match="STARTTLS"):
        smtp_send(fake, tls, b"x\r\n")
    assert "AUTH" not in fake.commands and not any(c.startswith("MAIL") for c in fake.commands)


def test_credentials_are_refused_on_a_plain_connection():
    with pytest.raises(ProbeConfigError):
        send_message(
            Net(),
            ip="127.0.0.1",
            port=9,
            server_name="x",
            mode="plain",
            helo="h.test",
            mail_from="a@b.test",
            rcpt_to=["c@d.test"],
            raw=b"x",
            creds=CREDS,
        )
