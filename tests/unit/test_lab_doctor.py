"""Finding a Docker-compatible API (ping over a unix socket, candidate URLs), os-release parsing,
and the lab's free-endpoint check — all offline, with fake servers on local sockets."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from probes.lab import doctor
from probes.lab.lab import busy_endpoints, lab_id_for
from probes.lab.spec import LabSpec, PortsSpec

# ----- ping -------------------------------------------------------------------------------------


@contextlib.contextmanager
def _unix_server(
    answer: bytes, *, read_request: bool = True, requests: list[bytes] | None = None
) -> Iterator[str]:
    """A one-thread unix-socket server answering every connection with `answer`, then closing."""
    # Short directory: unix socket paths are limited to ~107 bytes.
    tmp = tempfile.mkdtemp(prefix="mp-sock-")
    path = str(Path(tmp) / "api.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(4)
    server.settimeout(0.05)
    stop = threading.Event()
    seen = requests if requests is not None else []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                data = b""
                with contextlib.suppress(OSError):
                    while read_request and b"\r\n\r\n" not in data:
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    seen.append(data)
                    conn.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"unix://{path}"
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()
        shutil.rmtree(tmp, ignore_errors=True)
    assert not thread.is_alive()


def _http(status: str, body: bytes, headers: str = "") -> bytes:
    head = f"HTTP/1.1 {status}\r\n{headers}Content-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


# What GET /_ping answers: the engine is named by the headers, the body is just "OK".
PODMAN_PING = _http("200 OK", b"OK", "Libpod-Api-Version: 4.3.1\r\nServer: Libpod/4.3.1\r\n")
DOCKER_PING = _http("200 OK", b"OK", "Api-Version: 1.43\r\nServer: Docker/24.0.7 (linux)\r\n")


def test_ping_returns_none_for_a_missing_socket(tmp_path):
    assert doctor.ping(f"unix://{tmp_path}/absent.sock", timeout=0.5) is None


def test_ping_returns_none_for_a_non_unix_url():
    assert doctor.ping("tcp://127.0.0.1:2375", timeout=0.5) is None


def test_ping_returns_none_for_a_regular_file(tmp_path):
    path = tmp_path / "not-a-socket"
    path.write_text("x")
    assert doctor.ping(f"unix://{path}", timeout=0.5) is None


def test_ping_returns_none_when_the_server_answers_garbage():
    with _unix_server(b"\x00\x01garbage that is not HTTP\r\n\r\n") as url:
        assert doctor.ping(url, timeout=2) is None


def test_ping_returns_none_when_the_server_closes_at_once():
    with _unix_server(b"", read_request=False) as url:
        assert doctor.ping(url, timeout=2) is None


def test_ping_returns_none_for_an_http_error():
    with _unix_server(_http("500 Internal Server Error", b"Podman")) as url:
        assert doctor.ping(url, timeout=2) is None


def test_ping_recognises_podman():
    with _unix_server(PODMAN_PING) as url:
        assert doctor.ping(url, timeout=2) == "podman"


def test_ping_recognises_docker():
    with _unix_server(DOCKER_PING) as url:
        assert doctor.ping(url, timeout=2) == "docker"


def test_ping_asks_the_cheap_ping_endpoint():
    requests: list[bytes] = []
    with _unix_server(DOCKER_PING, requests=requests) as url:
        assert doctor.ping(url, timeout=2) == "docker"
    assert len(requests) == 1
    assert requests[0].split(b"\r\n", 1)[0].split()[:2] == [b"GET", b"/_ping"]


def test_find_docker_api_uses_the_first_answering_candidate(monkeypatch, tmp_path):
    with _unix_server(PODMAN_PING) as url:
        missing = f"unix://{tmp_path}/absent.sock"
        monkeypatch.setattr(doctor, "candidate_urls", lambda: [missing, url])
        assert doctor.find_docker_api() == doctor.DockerApi(url, "podman")
    monkeypatch.setattr(doctor, "candidate_urls", lambda: [missing])
    assert doctor.find_docker_api() is None


# ----- candidate URLs -----------------------------------------------------------------------------


def test_candidate_urls_put_docker_host_first(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///custom/docker.sock")
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    urls = doctor.candidate_urls()
    assert urls[0] == "unix:///custom/docker.sock"
    assert f"unix://{doctor.DOCKER_SOCKET}" in urls
    assert f"unix://{doctor.PODMAN_SOCKET}" in urls


def test_candidate_urls_without_docker_host(monkeypatch):
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    assert doctor.candidate_urls() == [
        f"unix://{doctor.DOCKER_SOCKET}",
        f"unix://{doctor.PODMAN_SOCKET}",
    ]


def test_candidate_urls_include_the_rootless_podman_socket(monkeypatch):
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    assert doctor.candidate_urls()[-1] == "unix:///run/user/1000/podman/podman.sock"


def test_empty_docker_host_is_ignored(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "")
    assert "" not in doctor.candidate_urls()


def test_apply_env_points_clients_at_the_api(monkeypatch):
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    for key in doctor.TESTCONTAINERS_ENV:
        monkeypatch.delenv(key, raising=False)
    doctor.apply_env(doctor.DockerApi("unix:///x/podman.sock", "podman"))
    assert os.environ["DOCKER_HOST"] == "unix:///x/podman.sock"
    for key, value in doctor.TESTCONTAINERS_ENV.items():
        assert os.environ[key] == value


# ----- os-release ---------------------------------------------------------------------------------


def _with_os_release(monkeypatch, tmp_path, text: str | None) -> None:
    path = tmp_path / "os-release"
    if text is not None:
        path.write_text(text)
    monkeypatch.setattr(doctor, "Path", lambda _p: path)


def test_os_release_parses_quoted_and_bare_values(monkeypatch, tmp_path):
    _with_os_release(
        monkeypatch,
        tmp_path,
        'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n'
        "ID=debian\n"
        'VERSION_ID="12"\n'
        'HOME_URL="https://www.debian.org/?a=b"\n'
        "\n",
    )
    rel = doctor._os_release()
    assert rel["ID"] == "debian"
    assert rel["VERSION_ID"] == "12"
    assert rel["PRETTY_NAME"] == "Debian GNU/Linux 12 (bookworm)"
    assert rel["HOME_URL"] == "https://www.debian.org/?a=b"
    assert doctor._is_debian_like() is True


def test_os_release_id_like_makes_derivatives_debian_like(monkeypatch, tmp_path):
    _with_os_release(monkeypatch, tmp_path, 'ID=linuxmint\nID_LIKE="ubuntu debian"\n')
    assert doctor._is_debian_like() is True


def test_os_release_of_other_distributions_is_not_debian_like(monkeypatch, tmp_path):
    _with_os_release(monkeypatch, tmp_path, 'ID="fedora"\nVERSION_ID=40\n')
    assert doctor._os_release()["ID"] == "fedora"
    assert doctor._is_debian_like() is False


def test_missing_os_release_is_empty(monkeypatch, tmp_path):
    _with_os_release(monkeypatch, tmp_path, None)
    assert doctor._os_release() == {}
    assert doctor._is_debian_like() is False


def test_os_release_accepts_single_quoted_values(monkeypatch, tmp_path):
    _with_os_release(monkeypatch, tmp_path, "ID='debian'\n")
    assert doctor._os_release()["ID"] == "debian"


# ----- busy endpoints -------------------------------------------------------------------------


def _high_port_spec() -> LabSpec:
    """A spec in a random 127.250.x.0/24 block with every port above 20000 (no root needed)."""
    third = random.randint(0, 255)
    base = random.randrange(20000, 60000, 100)
    ports = PortsSpec(
        dns=base + 53,
        smtp=base + 25,
        submissions=base + 65,
        submission=base + 87,
        outbound_smtp=base + 25,
        outbound_submission=base + 87,
        imap=base + 43,
        imaps=base + 93,
        pop3=base + 10,
        pop3s=base + 95,
        lmtp=base + 24,
    )
    spec = LabSpec(block=f"127.250.{third}.0/24", ports=ports)
    spec.validate()
    return spec


@pytest.fixture
def free_spec() -> LabSpec:
    for _ in range(20):
        spec = _high_port_spec()
        if not busy_endpoints(spec):
            return spec
    pytest.fail("no free high-port loopback block found")


def test_free_endpoints_are_not_reported(free_spec):
    assert busy_endpoints(free_spec) == []


@pytest.mark.parametrize("port_name", ["smtp", "outbound_submission", "imap", "lmtp"])
def test_listening_tcp_socket_is_reported_as_busy(free_spec, port_name):
    ((ip, port),) = [(i, p) for n, i, p in free_spec.endpoints() if n == port_name]
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind((ip, port))
        listener.listen(1)
        busy = busy_endpoints(free_spec)
    assert len(busy) == 1
    assert busy[0].startswith(f"{ip}:{port}")
    assert port_name in busy[0]
    assert busy_endpoints(free_spec) == []


def test_bound_udp_dns_socket_is_reported_as_busy(free_spec):
    ip, port = free_spec.address("dns"), free_spec.ports.dns
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind((ip, port))
        busy = busy_endpoints(free_spec)
    assert len(busy) == 1
    assert busy[0].startswith(f"{ip}:{port}")


def test_listener_on_another_address_of_the_same_port_is_not_busy(free_spec):
    # outbound_smtp shares the smtp port number but lives on the outbound address.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind((free_spec.address("mx"), free_spec.ports.smtp))
        listener.listen(1)
        busy = busy_endpoints(free_spec)
    assert [b.split(" ")[0] for b in busy] == [f"{free_spec.address('mx')}:{free_spec.ports.smtp}"]


def test_lab_id_is_derived_from_the_block():
    assert lab_id_for("127.5.6.0/24") == "127-5-6"
    assert lab_id_for("127.250.7.0/24") == "127-250-7"
