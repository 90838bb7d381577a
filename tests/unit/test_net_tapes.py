"""probes.net.tapes: a conversation with an endpoint is had once and replayed for others."""

from __future__ import annotations

import socket
import ssl
import threading
import time

import pytest

from probes.model import Target, Timeouts
from probes.net import Net
from probes.net.stream import Connection
from probes.net.tapes import (
    LocalBoard,
    RecordedError,
    ReplaySocket,
    Tape,
    TapeEnded,
    Tapes,
    TapeStore,
    carry_probe,
    current_probe,
    probe_scope,
)


class LineServer:
    """A real TCP server on 127.0.0.1: greets, answers each line with 250 and its number."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.received: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    def _talk(self, conn: socket.socket) -> None:
        with conn:
            conn.sendall(b"220 hello\r\n")
            n = 0
            buf = b""
            while True:
                data = conn.recv(4096)
                if not data:
                    return
                buf += data
                while b"\r\n" in buf:
                    line, buf = buf.split(b"\r\n", 1)
                    self.received.append(line)
                    n += 1
                    conn.sendall(f"250 line {n}\r\n".encode())

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def server():
    running = LineServer()
    yield running
    running.close()


def _net(tapes: Tapes) -> Net:
    net = Net.for_target(Target("example.test", timeouts=Timeouts(connect=2, io=2)))
    object.__setattr__(net, "recorder", tapes.recorder())
    return net


def _talk(
    net: Net, port: int, secret: str = "", *, ehlo: str = "probe", shared: bool = True
) -> list[str]:
    with Connection.open(net, "127.0.0.1", port, shared=shared) as conn:
        got = [conn.read_line()]
        conn.send_line(f"EHLO {ehlo}")
        got.append(conn.read_line())
        if secret:
            conn.send_line(secret, secret=True)
            got.append(conn.read_line())
    return got


def test_a_second_domain_gets_the_recording_not_a_connection(server):
    tapes = Tapes(LocalBoard(), "test", max_per_host=2)
    with probe_scope("smtp.mx"):
        first = _talk(_net(tapes), server.port)
        second = _talk(_net(tapes), server.port)
    assert first == second == ["220 hello", "250 line 1"]
    assert server.accepted == 1
    assert tapes.stats.counts == {"recorded": 1, "replayed": 1}


def test_each_probe_has_its_own_conversation(server):
    tapes = Tapes(LocalBoard(), "test", max_per_host=2)
    for probe in ("smtp.mx", "smtp.relay", "smtp.mx"):
        with probe_scope(probe):
            _talk(_net(tapes), server.port)
    assert server.accepted == 2


def test_a_conversation_that_depends_on_the_domain_is_never_played_back(server):
    tapes = Tapes(LocalBoard(), "test", max_per_host=2)
    with probe_scope("https.mta_sts"):
        _talk(_net(tapes), server.port, shared=False)
        _talk(_net(tapes), server.port, shared=False)
    assert server.accepted == 2 and tapes.stats.counts == {}


def test_a_client_that_sends_something_else_ends_like_a_reset_connection(server):
    tapes = Tapes(LocalBoard(), "test", max_per_host=2)
    with probe_scope("smtp.mx"):
        _talk(_net(tapes), server.port, ehlo="probe")
        with pytest.raises(TapeEnded, match="went another way"):
            _talk(_net(tapes), server.port, ehlo="a-longer-name")
        with pytest.raises(TapeEnded, match="went another way"):
            _talk(_net(tapes), server.port, ehlo="p")
    assert tapes.stats.counts["diverged"] == 2


def test_outside_a_probe_nothing_is_recorded(server):
    tapes = Tapes(LocalBoard(), "test", max_per_host=2)
    assert current_probe.get() is None
    _talk(_net(tapes), server.port)
    _talk(_net(tapes), server.port)
    assert server.accepted == 2


def test_the_nth_connection_of_a_run_replays_the_nth_recording(server):
    tapes = Tapes(LocalBoard(), "test", max_per_host=2)
    with probe_scope("smtp.mx"):
        for _ in range(3):
            net = _net(tapes)
            _talk(net, server.port)
            _talk(net, server.port)
    assert server.accepted == 2  # two per run, recorded by the first run only


def test_a_tape_never_holds_what_the_client_sent(server):
    tapes = Tapes(LocalBoard(), "test", max_per_host=2)
    with probe_scope("imap.993"):
        _talk(_net(tapes), server.port, secret="a0 LOGIN user s3cr3t-pw")
    assert server.received[-1].endswith(b"s3cr3t-pw")  # the server got it ...
    (tape,) = tapes._local.values()
    assert "s3cr3t-pw" not in repr(tape)  # ... the tape only its size
    assert ("sent", len("a0 LOGIN user s3cr3t-pw\r\n")) in tape.events


def test_a_refused_connection_replays_as_refused():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: refused
        tapes = Tapes(LocalBoard(), "test", max_per_host=2)
        with probe_scope("smtp.mx"):
            for _ in range(2):
                with pytest.raises(ConnectionRefusedError, match=f"127.0.0.1:{port}"):
                    Connection.open(_net(tapes), "127.0.0.1", port, shared=True)
    assert tapes.stats.counts == {"recorded": 1, "replayed": 1}


def test_threads_of_one_probe_keep_its_name():
    seen = []
    with probe_scope("smtp.submission"):
        job = carry_probe(lambda: seen.append(current_probe.get()))
    thread = threading.Thread(target=job)
    thread.start()
    thread.join()
    assert seen == ["smtp.submission"]


def test_concurrent_domains_wait_for_one_recording(server):
    tapes = Tapes(LocalBoard(), "test", max_per_host=2)
    results = []

    def domain() -> None:
        with probe_scope("smtp.mx"):
            results.append(_talk(_net(tapes), server.port))

    threads = [threading.Thread(target=domain) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert len(results) == 8 and all(r == results[0] for r in results)
    assert server.accepted == 1


def test_a_recording_the_run_cut_short_is_given_to_the_next_one(server):
    board = LocalBoard()
    key = ("smtp.mx", "127.0.0.1", 25, False, True, None, 0)
    assert board.claim(key, "a") is True
    assert board.claim(key, "b") is False  # a records it
    board.abandon(key, "a")
    assert board.claim(key, "b") is True


def test_a_dead_recorders_claim_expires():
    board = LocalBoard(lease_s=0.05)
    key = ("smtp.mx", "127.0.0.1", 25, False, True, None, 0)
    assert board.claim(key, "dead") is True
    time.sleep(0.1)
    assert board.claim(key, "alive") is True


def test_run_wide_slots_hold_across_owners():
    board = LocalBoard()
    assert board.take_slot("192.0.2.1", 2, "p1")
    assert board.take_slot("192.0.2.1", 2, "p2")
    assert not board.take_slot("192.0.2.1", 2, "p3")
    board.give_slot("192.0.2.1", "p1")
    assert board.take_slot("192.0.2.1", 2, "p3")


def test_recorded_ssl_errors_come_back_with_their_details():
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
    exc.verify_code = 20
    exc.verify_message = "unable to get local issuer certificate"
    again = RecordedError.of(exc).rebuild()
    assert isinstance(again, ssl.SSLCertVerificationError)
    assert (again.verify_code, again.verify_message) == (20, exc.verify_message)
    assert isinstance(RecordedError.of(TimeoutError("slow")).rebuild(), TimeoutError)


def test_the_tapes_kept_stay_within_their_budget():
    store = TapeStore(budget=3500)  # three of them (1,140 bytes each)
    for i in range(10):
        store.put(("p", "ip", i), Tape(events=[("recv", b"x" * 900)]))
        store.get(("p", "ip", 0))  # used again and again: kept
    assert store.size <= 3500 and store.evicted == 7
    assert store.get(("p", "ip", 0)) is not None and store.get(("p", "ip", 1)) is None


def test_a_recorded_error_of_an_unknown_class_replays_as_an_oserror():
    odd = RecordedError("evil.module:Boom", ("x",))
    assert type(odd.rebuild()) is OSError


def test_a_replay_that_goes_another_way_ends_like_a_closed_connection():
    replay = ReplaySocket(Tape(events=[("recv", b"220 hi\r\n"), ("tls", object())]))
    assert replay.recv(100) == b"220 hi\r\n"
    with pytest.raises(TapeEnded):
        replay.recv(100)  # the recording has a handshake here, not a read
    assert issubclass(TapeEnded, ConnectionResetError)
