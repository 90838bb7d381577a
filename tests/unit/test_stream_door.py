"""The line/TLS door (probes.net.stream, probes.net.tls) against a server of our own.

Reply caps, the reply deadline, STARTTLS buffer hygiene, connection slots and secret lines.
The server (tests/hostile_server.py) listens on 127.0.0.1 on an ephemeral port.
"""

from __future__ import annotations

import contextlib
import os
import resource
import socket
import ssl
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from probes.errors import ProtocolError
from probes.model import Timeouts
from probes.net import Net
from probes.net.stream import (
    MAX_LINE_BYTES,
    MAX_REPLY_BYTES,
    MAX_REPLY_LINES,
    Connection,
    HostSlots,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import hostile_server as hs

# A hang guard (pytest-timeout), not a speed limit.
pytestmark = pytest.mark.timeout(60)


def make_net(
    *,
    io: float = 1.0,
    max_per_host: int = 2,
    ca_file: str | None = None,
    probe: float = 5.0,
    connect: float = 1.0,
) -> Net:
    """A Net for the door; a connection slot is waited for max(probe, connect) seconds."""
    return Net(
        timeouts=Timeouts(connect=connect, io=io, probe=probe),
        ca_file=ca_file,
        max_per_host=max_per_host,
    )


def sends(data: bytes) -> hs.Handler:
    def handler(peer: hs.Peer) -> None:
        peer.send(data)
        peer.hold()

    return handler


def sends_then_closes(data: bytes) -> hs.Handler:
    def handler(peer: hs.Peer) -> None:
        peer.send(data)

    return handler


def smtp_last(line: str) -> bool:
    return line[3:4] != "-"


@contextlib.contextmanager
def connected(handler: hs.Handler, net: Net | None = None) -> Iterator[Connection]:
    with (
        hs.HostileServer(handler) as server,
        Connection.open(net or make_net(), server.host, server.port) as conn,
    ):
        yield conn


def all_slots_free(net: Net, host: str) -> bool:
    """True when every one of the host's slots can be taken at once (then gives them back)."""
    releases = []
    try:
        for _ in range(net.max_per_host):
            releases.append(net.slots.acquire(host, timeout=0.05))
    except TimeoutError:
        return False
    finally:
        for release in releases:
            release()
    return True


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, str]:
    return hs.tls_material(tmp_path_factory.mktemp("door-tls"))


# ----- reply caps ------------------------------------------------------------------------------
def test_a_line_within_the_length_cap_is_read_whole() -> None:
    text = "250 " + "a" * (MAX_LINE_BYTES - 6)  # with CRLF: exactly MAX_LINE_BYTES bytes
    with connected(sends(text.encode() + b"\r\n")) as conn:
        assert conn.read_line() == text


@pytest.mark.parametrize("line_end", [b"\r\n", b""], ids=["ended", "never-ended"])
def test_a_line_longer_than_the_cap_is_a_protocol_error(line_end: bytes) -> None:
    too_long = sends(b"250 " + b"a" * MAX_LINE_BYTES + line_end)
    with connected(too_long) as conn, pytest.raises(ProtocolError):
        conn.read_reply(smtp_last)


def test_an_endless_line_is_a_protocol_error() -> None:
    with connected(hs.endless_line) as conn, pytest.raises(ProtocolError):
        conn.read_line()


def test_a_reply_of_exactly_the_line_cap_is_read() -> None:
    reply = b"250-x\r\n" * (MAX_REPLY_LINES - 1) + b"250 end\r\n"
    with connected(sends(reply)) as conn:
        lines = conn.read_reply(smtp_last)
    assert len(lines) == MAX_REPLY_LINES
    assert lines[-1] == "250 end"


def test_a_reply_with_too_many_lines_is_a_protocol_error() -> None:
    reply = b"250-x\r\n" * MAX_REPLY_LINES + b"250 end\r\n"
    with connected(sends(reply)) as conn, pytest.raises(ProtocolError):
        conn.read_reply(smtp_last)


def test_a_reply_with_too_many_bytes_is_a_protocol_error() -> None:
    line = b"250-" + b"b" * (MAX_LINE_BYTES // 2) + b"\r\n"
    count = MAX_REPLY_BYTES // len(line) + 2
    assert count < MAX_REPLY_LINES  # the byte cap, not the line cap, is what stops it
    with connected(sends(line * count + b"250 end\r\n")) as conn, pytest.raises(ProtocolError):
        conn.read_reply(smtp_last)


def test_the_reply_deadline_covers_the_whole_reply_not_each_byte() -> None:
    # Every byte comes well within the I/O timeout; the reply as a whole does not.
    dripping = hs.drip(b"220 slow banner\r\n", 0.1)
    with connected(dripping, make_net(io=0.5)) as conn, pytest.raises(TimeoutError):
        conn.read_reply(smtp_last)


def test_a_server_closing_mid_line_is_a_connection_error() -> None:
    half_line = sends_then_closes(b"220 half a lin")
    with connected(half_line) as conn, pytest.raises(ConnectionError):
        conn.read_line()


# ----- STARTTLS buffer hygiene -----------------------------------------------------------------
INJECTED = b"250 INJECTED before the handshake\r\n"


def go_ahead_with_injection(peer: hs.Peer) -> None:
    """Answer STARTTLS with the go-ahead and, in the same packet, a forged reply; then TLS."""
    peer.recv_line()
    peer.send(b"220 go ahead\r\n" + INJECTED)
    peer.start_tls()
    peer.recv_line()
    peer.send(b"250 over TLS\r\n")
    peer.hold()


def test_bytes_sent_before_the_tls_handshake_are_discarded_not_read_as_tls_data(
    tls: tuple[ssl.SSLContext, str],
) -> None:
    context, ca_file = tls
    net = make_net(ca_file=ca_file)
    with hs.HostileServer(go_ahead_with_injection, tls=context) as server:
        conn = Connection.open(net, server.host, server.port)
        with conn:
            conn.send_line("STARTTLS")
            assert conn.read_line() == "220 go ahead"
            session = conn.start_tls(server_name="hostile.test", verify=True)
            assert session.verified
            assert conn.discarded_before_tls == len(INJECTED)
            conn.send_line("NOOP")
            assert conn.read_reply(smtp_last) == ["250 over TLS"]
    assert server.errors == []


def test_tls_cannot_be_started_twice(tls: tuple[ssl.SSLContext, str]) -> None:
    context, ca_file = tls
    with hs.HostileServer(hs.tls_then(hs.silent), tls=context) as server:
        net = make_net(ca_file=ca_file)
        with Connection.open(net, server.host, server.port, implicit_tls=True) as conn:
            assert conn.tls is not None
            with pytest.raises(ProtocolError):
                conn.start_tls(server_name=None, verify=False)


# ----- connection slots ------------------------------------------------------------------------
def refused_port() -> tuple[socket.socket, int]:
    """A bound, never-listening socket: connecting to its port is refused."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    return holder, holder.getsockname()[1]


def test_a_refused_connect_names_the_endpoint_it_was_for() -> None:
    net = make_net(connect=0.5)
    holder, port = refused_port()
    with holder:
        with pytest.raises(ConnectionRefusedError, match=r"mx2\.example\.test:25: "):
            Connection.open(net, "127.0.0.1", port, label="mx2.example.test:25")
        with pytest.raises(ConnectionRefusedError, match=rf"127\.0\.0\.1:{port}: "):
            Connection.open(net, "127.0.0.1", port)


def test_refused_connects_do_not_leak_connection_slots() -> None:
    # A leaked slot would make the next open wait for `probe` seconds, then TimeoutError.
    net = make_net(max_per_host=2, probe=0.2, connect=0.2)
    holder, port = refused_port()
    with holder:
        for _ in range(5):
            with pytest.raises(ConnectionRefusedError):
                Connection.open(net, "127.0.0.1", port)
    assert all_slots_free(net, "127.0.0.1")
    with hs.HostileServer(sends(b"220 hi\r\n")) as server:
        assert server.host == "127.0.0.1"
        for _ in range(3):
            with Connection.open(net, server.host, server.port) as conn:
                assert conn.read_line() == "220 hi"


@pytest.mark.parametrize(
    "handler",
    [hs.close_at_once, hs.half_handshake(hs.GARBAGE), hs.silent],
    ids=["closed", "garbage", "silent"],
)
def test_failed_implicit_tls_handshakes_do_not_leak_connection_slots(
    handler: hs.Handler,
) -> None:
    net = make_net(io=0.3, max_per_host=1, probe=0.2, connect=0.2)
    with hs.HostileServer(handler) as server:
        for _ in range(3):
            with pytest.raises((OSError, TimeoutError)):
                Connection.open(net, server.host, server.port, implicit_tls=True, verify=False)
        assert all_slots_free(net, server.host)


def test_a_connection_holds_its_slot_until_closed() -> None:
    net = make_net(max_per_host=1)
    with hs.HostileServer(hs.silent) as server:
        conn = Connection.open(net, server.host, server.port)
        assert not all_slots_free(net, server.host)
        conn.close()
        conn.close()  # closing twice gives the slot back once (a BoundedSemaphore would raise)
        assert all_slots_free(net, server.host)


def test_a_full_host_makes_the_next_open_time_out_naming_the_slot() -> None:
    net = make_net(max_per_host=1, probe=0.1, connect=0.2)
    with hs.HostileServer(hs.silent) as server, Connection.open(net, server.host, server.port):
        with pytest.raises(TimeoutError, match="slot"):
            Connection.open(net, server.host, server.port)
        assert server.max_concurrent == 1


def test_host_slots_need_at_least_one_connection() -> None:
    with pytest.raises(ValueError):
        HostSlots(0)


# ----- secrets ---------------------------------------------------------------------------------
SECRET = "s3cret-Pa55word"


def test_a_secret_line_is_sent_but_never_kept_in_the_transcript() -> None:
    def answer(peer: hs.Peer) -> None:
        for _ in range(2):
            peer.recv_line()
            peer.send(b"235 ok\r\n")
        peer.hold()

    with hs.HostileServer(answer) as server:
        conn = Connection.open(make_net(), server.host, server.port)
        with conn:
            conn.send_line(f"AUTH PLAIN {SECRET}", secret=True, shown="AUTH PLAIN ***")
            conn.read_line()
            conn.send_line(f"PASS {SECRET}", secret=True)
            conn.read_line()
            transcript = list(conn.transcript)
    assert server.received == [f"AUTH PLAIN {SECRET}", f"PASS {SECRET}"]
    assert not any(SECRET in line for line in transcript)
    assert "C: AUTH PLAIN ***" in transcript


def test_a_secret_line_that_cannot_be_sent_keeps_the_secret_out_of_the_error() -> None:
    with hs.HostileServer(hs.close_at_once) as server:
        conn = Connection.open(make_net(), server.host, server.port)
        with conn:
            with contextlib.suppress(ConnectionError):
                conn.read_line()  # the server is gone
            try:
                for _ in range(50):
                    conn.send_line(f"PASS {SECRET}", secret=True)
            except OSError as exc:
                assert SECRET not in str(exc)
            assert not any(SECRET in line for line in conn.transcript)


# ----- TLS handshakes --------------------------------------------------------------------------
def test_a_tls_handshake_works_on_a_socket_numbered_above_1024(
    tls: tuple[ssl.SSLContext, str],
) -> None:
    # select.select() cannot wait on descriptors >= 1024 (FD_SETSIZE); a busy process has such
    # descriptors, and the handshake must still work there.
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:
        pytest.skip(f"the open-file limit ({soft}) is too low to reach descriptor 1024")
    context, ca_file = tls
    fillers = []
    try:
        while not fillers or fillers[-1] < 1030:
            fillers.append(os.open(os.devnull, os.O_RDONLY))
        with hs.HostileServer(hs.tls_then(sends(b"220 hi\r\n")), tls=context) as server:
            net = make_net(ca_file=ca_file)
            with Connection.open(net, server.host, server.port, implicit_tls=True) as conn:
                assert conn._sock.fileno() >= 1024
                assert conn.read_line() == "220 hi"
    finally:
        for fd in fillers:
            os.close(fd)
