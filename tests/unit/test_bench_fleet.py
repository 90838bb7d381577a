"""bench/fleet.py's own parts: the generated world, the peak of open connections, the forwarders."""

from __future__ import annotations

import ipaddress
import socket
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import dns.zone
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from fleet_forward import FleetForwarder, peak
from fleet_world import MAILHOSTS_ZONE, SERVICES, generate, host_ip, host_name

KEY = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA" + "A" * 300


def _zone(name: str, lines: list[str]) -> dns.zone.Zone:
    text = f"@ 3600 SOA ns.{name}. h.{name}. 1 2 3 4 5\n@ NS ns.{name}.\n"
    text += "".join(f"{line}\n" for line in lines)
    return dns.zone.from_text(text, origin=name + ".", relativize=False, check_origin=False)


@pytest.mark.parametrize("per_zone", [1, 7])
def test_every_domain_points_every_service_at_its_one_shared_host(per_zone):
    world = generate(23, 5, KEY, per_zone=per_zone)
    assert len(world.domains) == len(set(world.domains)) == 23
    assert Counter(world.host_of.values()) == {0: 5, 1: 5, 2: 5, 3: 4, 4: 4}
    zones = {name: _zone(name, lines) for name, lines in world.zones.items()}

    def records(name: str, rdtype: str) -> list[str]:
        for zname, zone in zones.items():
            if name == zname or name.endswith("." + zname):
                rrset = zone.get_rdataset(name + ".", rdtype)
                return [r.to_text() for r in rrset] if rrset else []
        return []

    for domain in world.domains:
        host = host_name(world.host_of[domain])
        assert records(domain, "MX") == [f"10 {host}."]
        for port, service, _ in SERVICES:
            if service:
                assert records(f"{service}.{domain}", "SRV") == [f"0 1 {port} {host}."]
        assert records(f"_dmarc.{domain}", "TXT")[0].startswith('"v=DMARC1; p=reject')
        assert KEY in "".join(records(f"s1._domainkey.{domain}", "TXT")).replace('" "', "")
    for k, ip in enumerate(world.hosts):
        assert ipaddress.ip_address(ip) in ipaddress.ip_network("127.30.0.0/16")
        assert records(host_name(k), "A") == [ip]
        rev = ipaddress.ip_address(ip).reverse_pointer
        assert records(rev, "PTR") == [host_name(k) + "."]  # forward-confirmed
    assert (len(world.zones) - 2) == (23 + per_zone - 1) // per_zone  # + mailhosts, reverse
    assert MAILHOSTS_ZONE in world.zones


def test_the_address_plan_stays_in_127_30_and_says_when_it_is_full():
    assert host_ip(0) == "127.30.0.1"
    assert host_ip(249) == "127.30.0.250"
    assert host_ip(250) == "127.30.1.1"
    with pytest.raises(ValueError):
        host_ip(256 * 250)


def test_more_hosts_than_domains_uses_only_the_hosts_domains_need():
    world = generate(3, 10, KEY)
    assert len(world.hosts) == 3


def test_peak_counts_overlaps_but_not_a_close_seen_late():
    assert peak([]) == 0
    assert peak([(0.0, 1.0), (0.5, 1.5), (0.7, 2.0)]) == 3
    assert peak([(0.0, 1.0), (1.0, 2.0)]) == 1
    # the next connection opened 20 ms before the forwarder saw the last one close
    assert peak([(0.0, 1.0), (0.98, 2.0)]) == 1
    assert peak([(0.0, 1.0), (0.90, 2.0)]) == 2


def _free_port(ip: str) -> int:
    with socket.socket() as sock:
        sock.bind((ip, 0))
        return int(sock.getsockname()[1])


def test_the_forwarder_counts_per_address_and_port_and_gates_the_upstream():
    """Three clients at once through one address, gate 1: all three are counted and open at
    once on the client side, one at a time upstream, and each gets its own echo back."""
    upstream = socket.create_server(("127.0.0.1", 0))
    up_port = upstream.getsockname()[1]
    served: list[int] = []

    def echo() -> None:
        while True:
            try:
                conn, _ = upstream.accept()
            except OSError:
                return
            with conn:
                served.append(1)
                while data := conn.recv(100):
                    conn.sendall(data)

    threading.Thread(target=echo, daemon=True).start()
    ip = "127.30.255.250"
    port = _free_port(ip)
    fwd = FleetForwarder({ip: {port: ("127.0.0.1", up_port)}}, upstream_limit=1).start()
    try:
        clients = [socket.create_connection((ip, port), timeout=5) for _ in range(3)]
        time.sleep(0.2)
        assert fwd.counts_of(ip) == {port: 3}
        assert fwd.peaks()[ip] == 3
        for n, client in enumerate(clients):
            client.sendall(f"hello {n}".encode())
            client.shutdown(socket.SHUT_WR)
            assert client.recv(100) == f"hello {n}".encode()
            client.close()
        assert fwd.upstream_peak == {"127.0.0.1": 1}
        assert len(served) == 3
        fwd.reset()
        assert fwd.total() == 0
    finally:
        fwd.stop()
        upstream.close()
