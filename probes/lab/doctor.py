"""Find a working Docker-compatible API socket, or set one up (podman) where we may.

Order of search: $DOCKER_HOST, Docker's default socket, podman's rootful and rootless sockets.
When none answers and this is a Debian/Ubuntu machine where we run as root, `ensure_docker_api`
installs podman + runc (+ mmdebstrap for the lab image), writes the containers.conf these
machines need (runc, cgroupfs, modest ulimits), and starts `podman system service` in the
background. Every step is idempotent and reported through `say`. Where it cannot act (not
root, no apt, another OS) it raises DoctorError with what the user should install.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PODMAN_SOCKET = "/run/podman/podman.sock"
DOCKER_SOCKET = "/var/run/docker.sock"
CONTAINERS_CONF = Path("/etc/containers/containers.conf")
SERVICE_LOG = Path("/var/log/mailprobe-podman-service.log")
APT_PACKAGES = ("podman", "runc", "mmdebstrap")

# crun fails on these machines (cgroups hybrid mode) and raising rlimits is not permitted.
CONTAINERS_CONF_TEXT = """\
# Written by `mailprobe lab doctor`: runc + cgroupfs, ulimits a container may have here.
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
"""

# Environment testcontainers needs against podman (no Ryuk image to pull; a /.dockerenv on the
# host must not make it think it runs inside a container).
TESTCONTAINERS_ENV = {
    "TESTCONTAINERS_RYUK_DISABLED": "true",
    "TESTCONTAINERS_CONNECTION_MODE": "docker_host",
}

Say = Callable[[str], None]


class DoctorError(RuntimeError):
    """No Docker-compatible API and no way for us to set one up; the message says what to do."""


@dataclass(frozen=True)
class DockerApi:
    url: str  # e.g. unix:///run/podman/podman.sock
    engine: str  # "podman" or "docker" (from the API's version answer), or "unknown"


def _quiet(_: str) -> None:
    pass


def _unix_path(url: str) -> str | None:
    if url.startswith("unix://"):
        return url[len("unix://") :]
    return None


def ping(url: str, timeout: float = 3.0) -> str | None:
    """GET /_ping on a unix-socket Docker API; returns the engine name if it answers.

    /_ping answers in ~1 ms where podman takes ~0.4 s for /version; its headers name the
    engine (podman sends Libpod-Api-Version)."""
    path = _unix_path(url)
    if path is None or not os.path.exists(path):
        return None
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(path)
            s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            data = b""
            while len(data) < 65536:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None
    if not data.startswith(b"HTTP/1.") or b" 200 " not in data.split(b"\r\n", 1)[0]:
        return None
    head = data.split(b"\r\n\r\n", 1)[0].lower()
    return "podman" if b"libpod" in head or b"podman" in head else "docker"


def candidate_urls() -> list[str]:
    urls = []
    if os.environ.get("DOCKER_HOST"):
        urls.append(os.environ["DOCKER_HOST"])
    urls.append(f"unix://{DOCKER_SOCKET}")
    urls.append(f"unix://{PODMAN_SOCKET}")
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    if runtime_dir:
        urls.append(f"unix://{runtime_dir}/podman/podman.sock")
    return urls


def find_docker_api() -> DockerApi | None:
    for url in candidate_urls():
        engine = ping(url)
        if engine:
            return DockerApi(url, engine)
    return None


def apply_env(api: DockerApi) -> None:
    """Point docker/testcontainers clients in this process at `api`."""
    os.environ["DOCKER_HOST"] = api.url
    for key, value in TESTCONTAINERS_ENV.items():
        os.environ.setdefault(key, value)


def _os_release() -> dict[str, str]:
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip().strip("\"'")
    return out


def _is_debian_like() -> bool:
    rel = _os_release()
    ids = {rel.get("ID", "")} | set(rel.get("ID_LIKE", "").split())
    return bool(ids & {"debian", "ubuntu"})


def _manual_instructions() -> str:
    return (
        "Install a Docker-compatible engine and make its API socket reachable, e.g. on Debian/"
        "Ubuntu as root: `apt-get install podman runc mmdebstrap` then `mkdir -p /run/podman && "
        "setsid podman system service --time=0 unix:///run/podman/podman.sock &`; or run Docker "
        "and set DOCKER_HOST. Then run `mailprobe lab doctor` again."
    )


def _run(cmd: list[str], say: Say) -> None:
    say("$ " + " ".join(cmd))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise DoctorError(f"`{' '.join(cmd)}` failed with status {proc.returncode}:\n{tail}")


def missing_packages() -> list[str]:
    tools = {"podman": "podman", "runc": "runc", "mmdebstrap": "mmdebstrap"}
    return [pkg for tool, pkg in tools.items() if shutil.which(tool) is None]


def install_packages(say: Say) -> None:
    missing = missing_packages()
    if not missing:
        say("packages: podman, runc, mmdebstrap already installed")
        return
    if os.geteuid() != 0:
        raise DoctorError(
            f"{', '.join(missing)} not installed and not root. " + _manual_instructions()
        )
    if not _is_debian_like() or shutil.which("apt-get") is None:
        raise DoctorError(
            f"{', '.join(missing)} not installed and this is not a Debian/Ubuntu machine with "
            "apt-get. " + _manual_instructions()
        )
    say(f"installing {', '.join(missing)} with apt-get")
    _run(["apt-get", "update", "-qq"], say)
    _run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *APT_PACKAGES], say)


def write_containers_conf(say: Say) -> None:
    if CONTAINERS_CONF.exists():
        text = CONTAINERS_CONF.read_text()
        if 'runtime = "runc"' in text and "cgroupfs" in text:
            say(f"{CONTAINERS_CONF}: already set for runc + cgroupfs")
        else:
            say(
                f"{CONTAINERS_CONF} exists with other settings; leaving it alone "
                '(these machines need runtime = "runc", cgroup_manager = "cgroupfs")'
            )
        return
    CONTAINERS_CONF.parent.mkdir(parents=True, exist_ok=True)
    CONTAINERS_CONF.write_text(CONTAINERS_CONF_TEXT)
    say(f"wrote {CONTAINERS_CONF} (runc, cgroupfs, nofile/nproc ulimits)")


def start_podman_service(say: Say, wait_s: float = 15.0) -> DockerApi:
    url = f"unix://{PODMAN_SOCKET}"
    Path(PODMAN_SOCKET).parent.mkdir(parents=True, exist_ok=True)
    say(f"starting `podman system service --time=0 {url}` in the background (log: {SERVICE_LOG})")
    with open(SERVICE_LOG, "ab") as log:
        subprocess.Popen(
            ["podman", "system", "service", "--time=0", url],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            close_fds=True,
            # The service outlives us: it (and every conmon it forks) must not sit in a
            # directory that may be deleted, such as a CI checkout.
            cwd="/",
        )
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        engine = ping(url, timeout=1.0)
        if engine:
            say(f"podman API answers on {url}")
            return DockerApi(url, engine)
        time.sleep(0.1)
    tail = ""
    with contextlib.suppress(OSError):
        tail = "\n".join(SERVICE_LOG.read_text(errors="replace").splitlines()[-10:])
    raise DoctorError(f"podman API service did not answer on {url} within {wait_s:.0f} s.\n{tail}")


def ensure_docker_api(say: Say = _quiet, *, setup: bool = True) -> DockerApi:
    """Return a working Docker-compatible API, setting one up if allowed and needed."""
    api = find_docker_api()
    if api:
        say(f"Docker-compatible API: {api.url} ({api.engine})")
        apply_env(api)
        return api
    say("no Docker-compatible API answers on: " + ", ".join(candidate_urls()))
    if not setup:
        raise DoctorError(_manual_instructions())
    if os.geteuid() != 0:
        raise DoctorError("not root, so mailprobe will not set one up. " + _manual_instructions())
    install_packages(say)
    write_containers_conf(say)
    api = start_podman_service(say)
    apply_env(api)
    return api


def ensure_image_tools(say: Say = _quiet) -> None:
    """mmdebstrap (and an import-capable CLI) for building the lab image."""
    if shutil.which("mmdebstrap") is None:
        install_packages(say)
