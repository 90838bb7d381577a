"""The lab's servers as testcontainers classes: host network, one loopback address each.

Each container bind-mounts the lab directory read-only at /lab and the lab's resolv.conf over
/etc/resolv.conf, runs its `start.sh`, and is ready when its protocols answer (SMTP `220`,
IMAP `* OK`, POP3 `+OK`, an authoritative SOA over TCP), not when a port opens.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from testcontainers.core.container import DockerContainer

from probes.lab import readiness
from probes.lab.spec import LabSpec

LABEL_LAB = "mailprobe.lab"
LABEL_ROLE = "mailprobe.role"
# One Lab object: "<pid>-<random>". A lab's own teardown removes by it (never another lab's
# containers that later took the same block), and a sweep finds what a dead process left.
LABEL_INSTANCE = "mailprobe.instance"
# The pytest-xdist worker ("gw0", ...) whose session started the lab (probes.pytest_workers).
LABEL_WORKER = "mailprobe.worker"
_OWN_LABELS = (LABEL_LAB, LABEL_ROLE, LABEL_INSTANCE)
API_VERSION = "1.41"  # skips the per-container version round trip (~0.4 s with podman)


class LabContainerError(RuntimeError):
    pass


class LabContainer(DockerContainer):
    """Base class: one lab server on the host network."""

    role = ""

    def __init__(
        self, image: str, spec: LabSpec, lab_dir: Path, lab_id: str, *, instance: str = ""
    ) -> None:
        super().__init__(image, docker_client_kw={"version": API_VERSION})
        self.spec = spec
        self.lab_id = lab_id
        self.with_name(f"mailprobe-{lab_id}-{self.role}")
        self.with_volume_mapping(str(lab_dir), "/lab", "ro")
        self.with_volume_mapping(str(lab_dir / "resolv.conf"), "/etc/resolv.conf", "ro")
        self.with_command(["/bin/sh", f"/lab/{self.role}/start.sh"])
        self.labels = {LABEL_LAB: lab_id, LABEL_ROLE: self.role}
        if instance:
            self.labels[LABEL_INSTANCE] = instance
        self.with_kwargs(network_mode="host", labels=self.labels)

    def with_labels(self, labels: Mapping[str, str]) -> LabContainer:
        """More labels (before start()); the lab's own ones above stay as they are."""
        self.labels.update({k: v for k, v in labels.items() if k not in _OWN_LABELS})
        return self

    # Subclasses list (what, check) pairs; all must pass for the container to be ready.
    def checks(self) -> list[tuple[str, Callable[[], bool]]]:
        raise NotImplementedError

    def wait_ready(self, deadline: float, cancel: threading.Event | None = None) -> None:
        pending = self.checks()
        while pending:
            if cancel is not None and cancel.is_set():
                raise LabContainerError(f"{self.role}: readiness wait cancelled")
            pending = [(what, check) for what, check in pending if not check()]
            if not pending:
                return
            if time.monotonic() > deadline:
                raise LabContainerError(
                    f"{self.role}: not ready in time ({', '.join(w for w, _ in pending)})"
                )
            if not self.is_running():
                raise LabContainerError(f"{self.role}: container exited before it was ready")
            time.sleep(0.03)

    def is_running(self) -> bool:
        try:
            self.get_wrapped_container().reload()
            return self.get_wrapped_container().status in ("running", "created")
        except Exception:
            return False

    def log_tail(self, lines: int = 25) -> str:
        try:
            out, err = self.get_logs()
        except Exception as exc:  # the container may already be gone
            return f"(no logs: {type(exc).__name__})"
        text = (out + err).decode(errors="replace").strip().splitlines()
        return "\n".join(text[-lines:]) or "(empty log)"


class KnotContainer(LabContainer):
    role = "dns"

    def checks(self) -> list[tuple[str, Callable[[], bool]]]:
        ip, port = self.spec.address("dns"), self.spec.ports.dns
        return [(f"DNS SOA {ip}:{port}", lambda: readiness.dns_ready(ip, port, self.spec.domain))]


class MtaContainer(LabContainer):
    """The mx or outbound MTA, whatever its flavour: ready when its SMTP ports greet."""

    def __init__(
        self,
        image: str,
        spec: LabSpec,
        lab_dir: Path,
        lab_id: str,
        role: str,
        *,
        instance: str = "",
    ) -> None:
        self.role = role
        super().__init__(image, spec, lab_dir, lab_id, instance=instance)

    def checks(self) -> list[tuple[str, Callable[[], bool]]]:
        ip, p = self.spec.address(self.role), self.spec.ports
        if self.role == "mx":
            ports = (p.smtp, p.submission)
        else:
            ports = (p.outbound_smtp, p.outbound_submission)
        return [(f"SMTP {ip}:{port}", _smtp(ip, port)) for port in ports]


class DovecotContainer(LabContainer):
    """Dovecot: the `mailbox` role itself, or the `store` behind a Perdition front."""

    def __init__(
        self,
        image: str,
        spec: LabSpec,
        lab_dir: Path,
        lab_id: str,
        role: str = "mailbox",
        *,
        instance: str = "",
    ) -> None:
        self.role = role
        super().__init__(image, spec, lab_dir, lab_id, instance=instance)

    def checks(self) -> list[tuple[str, Callable[[], bool]]]:
        ip, p = self.spec.address(self.role), self.spec.ports
        found = [
            (f"IMAP {ip}:{p.imap}", lambda: readiness.imap_ready(ip, p.imap)),
            (f"POP3 {ip}:{p.pop3}", lambda: readiness.pop3_ready(ip, p.pop3)),
        ]
        if self.spec.port_role("lmtp") == self.role:
            found.append((f"LMTP {ip}:{p.lmtp}", _smtp(ip, p.lmtp)))
        return found


class PerditionContainer(LabContainer):
    """Perdition on the `mailbox` role: one process per port, so ready when IMAP and POP3 greet
    in clear and IMAPS and POP3S greet after a TLS handshake (its own greetings)."""

    role = "mailbox"

    def checks(self) -> list[tuple[str, Callable[[], bool]]]:
        ip, p = self.spec.address("mailbox"), self.spec.ports
        tls = readiness.tls_greeting
        return [
            (f"IMAP {ip}:{p.imap}", lambda: readiness.imap_ready(ip, p.imap)),
            (f"POP3 {ip}:{p.pop3}", lambda: readiness.pop3_ready(ip, p.pop3)),
            (f"IMAPS {ip}:{p.imaps}", lambda: tls(ip, p.imaps, b"* OK")),
            (f"POP3S {ip}:{p.pop3s}", lambda: tls(ip, p.pop3s, b"+OK")),
        ]


class WebContainer(LabContainer):
    """The `web` role: HTTPS on 443 (MTA-STS policy host, BIMI logo; probes.lab.web)."""

    role = "web"

    def checks(self) -> list[tuple[str, Callable[[], bool]]]:
        from probes.lab.web import HTTPS_PORT

        ip = self.spec.address("web")
        return [(f"HTTPS {ip}:{HTTPS_PORT}", lambda: readiness.https_ready(ip, HTTPS_PORT))]


def _smtp(ip: str, port: int) -> Callable[[], bool]:
    return lambda: readiness.smtp_ready(ip, port)


def _labels(lab_id: str | None, instance: str | None) -> list[str]:
    labels = [f"{LABEL_LAB}={lab_id}" if lab_id else LABEL_LAB]
    if instance:
        labels.append(f"{LABEL_INSTANCE}={instance}")
    return labels


def remove_lab_containers(lab_id: str | None = None, *, instance: str | None = None) -> list[str]:
    """Force-remove every container labelled as (this) mailprobe lab (of this Lab instance,
    when given); returns their names.

    Goes on past a container it cannot remove, then raises naming every one that is left."""
    import docker.errors

    client = _docker_client()
    try:
        removed, failed = [], []
        for found in _present(client, _labels(lab_id, instance)):
            try:
                client.api.remove_container(found["Id"], force=True)
                removed.append(_name(found))
            except docker.errors.NotFound:
                pass  # already gone
            except docker.errors.APIError as exc:
                failed.append(f"{_name(found)}: {exc}")
        if failed:
            raise RuntimeError("could not remove lab containers: " + "; ".join(failed))
        return removed
    finally:
        client.close()


def list_lab_containers(
    lab_id: str | None = None, *, instance: str | None = None
) -> list[tuple[str, str, str]]:
    """(name, role, status) of the mailprobe lab containers present (of this Lab instance,
    when given)."""
    client = _docker_client()
    try:
        return [
            (
                _name(found),
                (found.get("Labels") or {}).get(LABEL_ROLE, "?"),
                found.get("State", "?"),
            )
            for found in _present(client, _labels(lab_id, instance))
        ]
    finally:
        client.close()


def _present(client: Any, labels: list[str]) -> list[dict[str, Any]]:
    """The containers with these labels, as the list call answers (one request: the SDK's
    `containers.list` asks again for each one, and a container another lab removes in between
    would make that a 404)."""
    return list(client.api.containers(all=True, filters={"label": labels}))


def _name(found: dict[str, Any]) -> str:
    names = found.get("Names") or [found.get("Id", "?")[:12]]
    return str(names[0]).lstrip("/")


def _docker_client():  # -> docker.DockerClient
    """A client for the Docker-compatible API the doctor finds (not only $DOCKER_HOST)."""
    import docker

    from probes.lab.doctor import DoctorError, find_docker_api

    api = find_docker_api()
    if api is None:
        raise DoctorError("no Docker-compatible API answers; run `mailprobe lab doctor`")
    return docker.DockerClient(base_url=api.url, version=API_VERSION)
