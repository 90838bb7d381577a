"""Bounded time on dead servers (issue 14, item 5): the run's memory of dead endpoints.

An endpoint that refused, did not answer or stayed silent is remembered for the rest of the
run (probes.net.endpoints, `net.endpoints`): the other probes get the same failure at once,
marked "remembered", so a dead server costs one timeout per endpoint, not one per probe.
Asserted on structure (connections the server saw, what the probes said), never on time.
"""

from __future__ import annotations

import socket
import sys
import threading
from pathlib import Path

import pytest

from probes import registry
from probes.model import ErrorReason, Outcome, Target, Timeouts
from probes.net import Net
from probes.net.dns import DnsClient, StaticBackend
from probes.net.endpoints import REMEMBERED, ConnectTimeout, Silent
from probes.net.stream import Connection
from probes.net.swaks import find_swaks
from probes.runner import run_probes

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import hostile_server as hs

# A hang guard (pytest-timeout), not a speed limit.
pytestmark = pytest.mark.timeout(120)
SMTP_PORTS = (25, 465, 587)


def smtp_target(host: str, *, connect: float = 2.0, io: float = 1.0) -> Target:
    return Target(
        domain="example.test",
        mx_hosts=(host,),
        submission_hosts=(host,),
        timeouts=Timeouts(connect=connect, io=io, probe=60),
    )


def net_for(target: Target, max_per_host: int) -> Net:
    # No DNS records: every host is an address; nothing may ask a real resolver.
    return Net.for_target(
        target, dns_client=DnsClient(StaticBackend({})), max_per_host=max_per_host
    )


def smtp_probes() -> list:
    """Every installed smtp.* probe, as `check --probe 'smtp.*'` runs them."""
    return [cls() for cls in registry.select_probes(registry.load_probes(), ["smtp.*"])]


# ----- the whole smtp.* set against a silent server ----------------------------------------------
def endpoint_uses(results) -> int:
    """How many (probe, endpoint) pairs the smtp.* probes look at on one host that is both the
    MX and the submission host: smtp.mx 25, smtp.relay 25, smtp.submission 587,
    smtp.submissions 465, smtp.swaks 587 and 25 (when swaks is installed)."""
    per_probe = {"smtp.mx": 1, "smtp.relay": 1, "smtp.submission": 1, "smtp.submissions": 1}
    uses = 0
    for r in results:
        if r.probe_id == "smtp.swaks":
            uses += 0 if r.outcome is Outcome.SKIPPED else 2
        else:
            uses += per_probe[r.probe_id]
    return uses


def remembered_count(results) -> int:
    """How many (probe, endpoint) pairs were answered from the memory: in error details, and
    in smtp.swaks' findings (`remembered` evidence: swaks was not run)."""
    details = sum((r.error_detail or "").count(REMEMBERED) for r in results)
    evidence = sum(
        REMEMBERED in f.evidence.get("remembered", "") for r in results for f in r.findings
    )
    return details + evidence


def test_a_silent_smtp_server_is_waited_on_once_per_endpoint_by_all_smtp_probes() -> None:
    probes = smtp_probes()
    with hs.HostileServer(hs.silent, ports=SMTP_PORTS) as server:
        target = smtp_target(server.host)
        net = net_for(target, max_per_host=1)
        results = run_probes(probes, target, net)
    detail = [(r.probe_id, r.outcome, r.error, r.error_detail) for r in results]
    assert server.errors == []
    # One connection per endpoint: every other probe got the silence from the memory.
    assert server.accepted == len(SMTP_PORTS), detail
    assert set(net.endpoints.failed()) == {(server.host, port) for port in SMTP_PORTS}
    assert set(net.endpoints.failed().values()) == {"Silent"}
    assert remembered_count(results) == endpoint_uses(results) - len(SMTP_PORTS), detail
    for r in results:
        assert r.error is not ErrorReason.BUG, detail
        if r.outcome is Outcome.ERROR:
            assert r.error is ErrorReason.TIMEOUT, detail  # the classification is unchanged
        else:
            # swaks says where it stopped, whether it met the silence itself or remembered it
            assert (r.probe_id, r.outcome) == ("smtp.swaks", Outcome.COMPLETED), detail
            assert {f.code for f in r.findings} == {"SWAKS_STAGE_FAILED"}, detail
            assert {f.evidence["stage"] for f in r.findings} <= {"BANNER"}, detail


def test_with_two_slots_per_host_still_one_connection_per_endpoint() -> None:
    """The default --max-per-host 2: while an endpoint's first contact is in progress, the other
    probes wait for its outcome (not for a slot), so no two of them wait out one silence."""
    probes = smtp_probes()
    with hs.HostileServer(hs.silent, ports=SMTP_PORTS) as server:
        target = smtp_target(server.host)
        net = net_for(target, max_per_host=2)
        results = run_probes(probes, target, net)
    detail = [(r.probe_id, r.outcome, r.error, r.error_detail) for r in results]
    assert server.errors == []
    assert server.accepted == len(SMTP_PORTS), detail
    assert server.max_concurrent == 2, detail  # two endpoints at a time, as the limit allows
    assert remembered_count(results) == endpoint_uses(results) - len(SMTP_PORTS), detail
    assert all(r.error is not ErrorReason.BUG for r in results), detail


def test_a_live_endpoint_is_not_held_back_after_its_first_contact() -> None:
    """A server that answers: once it greeted, the probes connect side by side again, up to
    the per-host limit (the TLS version sweep opens several connections to one port)."""
    net = door_net(max_per_host=3)
    with (
        hs.HostileServer(hs.smtp()) as server,
        Connection.open(net, server.host, server.port) as first,
    ):
        first.read_line()
        conns = [Connection.open(net, server.host, server.port) for _ in range(2)]
        for conn in conns:
            assert conn.read_line().startswith("220 ")
            conn.close()
    assert net.endpoints.failed() == {}


def test_an_unanswering_server_is_remembered_and_its_ports_reported_filtered() -> None:
    probes = smtp_probes()
    with hs.BlackHole(SMTP_PORTS) as hole:
        target = smtp_target(hole.host, connect=0.5)
        net = net_for(target, max_per_host=2)
        results = run_probes(probes, target, net)
    detail = [(r.probe_id, r.outcome, r.error, r.error_detail, r.findings) for r in results]
    assert set(net.endpoints.failed()) == {(hole.host, port) for port in SMTP_PORTS}
    assert set(net.endpoints.failed().values()) == {"ConnectTimeout"}
    assert net.endpoints.recalled >= 1, detail
    assert all(r.error is not ErrorReason.BUG for r in results), detail
    # The endpoint probes still say what they always said: the port is filtered.
    by_id = {r.probe_id: r for r in results}
    for probe_id, port in (("smtp.mx", 25), ("smtp.submission", 587), ("smtp.submissions", 465)):
        closed = [f for f in by_id[probe_id].findings if f.code == "PORT_CLOSED"]
        assert [f.evidence["state"] for f in closed] == ["filtered"], detail
        assert closed[0].subject == f"{hole.host}:{port}"
    assert by_id["smtp.relay"].error is ErrorReason.TIMEOUT, detail


# ----- the door itself ---------------------------------------------------------------------------
def door_net(*, max_per_host: int = 2, io: float = 0.5, connect: float = 0.5) -> Net:
    return Net(timeouts=Timeouts(connect=connect, io=io, probe=30), max_per_host=max_per_host)


def test_a_refusal_is_remembered_with_its_type_and_errno_and_the_new_label() -> None:
    net = door_net()
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    with holder:
        with pytest.raises(ConnectionRefusedError) as first:
            Connection.open(net, "127.0.0.1", port, label="mx1.example.test:25")
        with pytest.raises(ConnectionRefusedError) as again:
            Connection.open(net, "127.0.0.1", port, label="mx2.example.test:25")
    assert REMEMBERED not in str(first.value)
    assert again.value.errno == first.value.errno
    assert str(again.value).endswith(f"mx2.example.test:25: Connection refused {REMEMBERED}")
    assert net.endpoints.recalled == 1


def test_an_unanswered_connect_is_remembered_per_port_only() -> None:
    net = door_net()
    with hs.BlackHole((25,)) as hole, hs.HostileServer(hs.silent) as other:
        with pytest.raises(ConnectTimeout) as first:
            Connection.open(net, hole.host, 25)
        with pytest.raises(ConnectTimeout, match="remembered") as again:
            Connection.open(net, hole.host, 25)
        # another endpoint is not affected
        Connection.open(net, other.host, other.port).close()
    assert REMEMBERED not in str(first.value)
    assert str(again.value) == f"{hole.host}:25: no answer to the connection within 0.5 s " + (
        REMEMBERED
    )


def test_a_missing_greeting_is_remembered_but_a_late_or_partial_one_is_not() -> None:
    net = door_net()
    with hs.HostileServer(hs.silent) as silent, hs.HostileServer(hs.drip(b"220 x")) as drip:
        with Connection.open(net, silent.host, silent.port) as conn, pytest.raises(Silent):
            conn.read_line()
        with pytest.raises(Silent, match=r"did not answer with a greeting.*remembered"):
            Connection.open(net, silent.host, silent.port)
        with (
            Connection.open(net, drip.host, drip.port) as conn,
            pytest.raises(TimeoutError) as late,
        ):
            conn.read_line()  # some bytes came: not silence
        assert not isinstance(late.value, Silent)
        Connection.open(net, drip.host, drip.port).close()  # still tried, and connects
    assert silent.accepted == 1


def test_a_silence_after_we_spoke_is_not_remembered() -> None:
    net = door_net()
    with hs.HostileServer(hs.silent) as server:
        with Connection.open(net, server.host, server.port) as conn:
            conn.send_line("HELLO")
            with pytest.raises(TimeoutError) as exc:
                conn.read_line()
        assert not isinstance(exc.value, Silent)
        Connection.open(net, server.host, server.port).close()  # still tried, and connects
    assert net.endpoints.failed() == {}


def test_a_slot_waiter_gives_up_as_soon_as_its_endpoint_is_remembered() -> None:
    """One slot per host, held by a connection to port A of a silent server; a second probe
    waits for a slot to port A. When the holder meets the silence, the waiter gets it from the
    memory at once (before the holder releases its slot), and never connects."""
    net = door_net(max_per_host=1, io=0.5)
    waiter_error: list[BaseException] = []
    waiting = threading.Event()

    def waiter(host: str, port: int) -> None:
        waiting.set()
        try:
            Connection.open(net, host, port).close()
        except OSError as exc:
            waiter_error.append(exc)

    with hs.HostileServer(hs.silent) as server:
        with Connection.open(net, server.host, server.port) as holder:
            thread = threading.Thread(target=waiter, args=(server.host, server.port))
            thread.start()
            waiting.wait()
            with pytest.raises(Silent):
                holder.read_line()
            thread.join(10)
            assert not thread.is_alive()
            # the holder's slot is still held here: the waiter did not get it, it gave up
            assert len(waiter_error) == 1
        assert server.accepted == 1
    assert isinstance(waiter_error[0], Silent)
    assert REMEMBERED in str(waiter_error[0])


def test_after_the_run_stops_no_connection_or_slot_is_given() -> None:
    net = door_net(max_per_host=1)
    with hs.HostileServer(hs.silent) as server:
        net.endpoints.stop("run deadline reached")
        with pytest.raises(TimeoutError, match="run deadline reached"):
            Connection.open(net, server.host, server.port)
    assert server.accepted == 0


def test_stopping_the_run_ends_the_reads_of_connections_still_open() -> None:
    """The run's deadline: a probe abandoned in the middle of a read (here a 60 s I/O timeout
    against a silent server) gets its read back at once, instead of running on until its own
    timeout: a TimeoutError saying why, never "the server closed the connection" (it did not;
    the runner would call that CONNECTIVITY)."""
    net = door_net(io=60)
    ended: list[BaseException] = []
    reading = threading.Event()

    def reader(conn: Connection) -> None:
        reading.set()
        try:
            conn.read_line()
        except OSError as exc:
            ended.append(exc)

    with (
        hs.HostileServer(hs.silent) as server,
        Connection.open(net, server.host, server.port) as conn,
    ):
        thread = threading.Thread(target=reader, args=(conn,))
        thread.start()
        reading.wait()
        net.endpoints.stop("run deadline reached")
        thread.join(30)
        assert not thread.is_alive()
    assert len(ended) == 1
    assert isinstance(ended[0], TimeoutError), ended
    assert str(ended[0]).endswith(": run deadline reached"), ended


@pytest.mark.skipif(find_swaks() is None, reason="swaks is not installed (Debian package swaks)")
def test_what_swaks_meets_first_is_remembered_for_the_other_probes() -> None:
    """smtp.swaks runs first (one probe at a time) and meets the silence itself; smtp.mx then
    gets it from the memory without connecting."""
    by_id = registry.load_probes()
    probes = [by_id["smtp.swaks"](), by_id["smtp.mx"]()]
    with hs.HostileServer(hs.silent, ports=(25, 587)) as server:
        target = smtp_target(server.host)
        net = net_for(target, max_per_host=1)
        swaks, mx = run_probes(probes, target, net, max_workers=1)
    detail = [(r.probe_id, r.outcome, r.error, r.error_detail) for r in (swaks, mx)]
    assert server.accepted == 2, detail  # swaks' two connections, none from smtp.mx
    assert net.endpoints.failed() == {(server.host, 25): "Silent", (server.host, 587): "Silent"}
    assert (mx.outcome, mx.error) == (Outcome.ERROR, ErrorReason.TIMEOUT), detail
    assert REMEMBERED in (mx.error_detail or "") and "(swaks)" in (mx.error_detail or "")


@pytest.mark.skipif(find_swaks() is None, reason="swaks is not installed (Debian package swaks)")
def test_stopping_the_run_kills_a_swaks_still_waiting() -> None:
    from probes.net.endpoints import EndpointMemory
    from probes.net.swaks import run_swaks

    memory = EndpointMemory()
    runs: list[object] = []
    with hs.HostileServer(hs.silent) as server:
        args = ["--config", "--server", server.host, "--port", str(server.port)]
        args += ["--timeout", "60s", "--quit-after", "EHLO"]
        swaks = find_swaks()
        assert swaks is not None
        thread = threading.Thread(
            target=lambda: runs.append(
                run_swaks(swaks, args, timeout=90, what="silent", memory=memory)
            )
        )
        thread.start()
        while server.accepted == 0 and thread.is_alive():  # swaks is connected and waiting
            threading.Event().wait(0.05)
        memory.stop("run deadline reached")
        thread.join(30)
        assert not thread.is_alive()
    (run,) = runs
    assert run.exit_code == -9  # type: ignore[attr-defined]  # killed, not its own timeout
