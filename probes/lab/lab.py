"""The embedded lab: real Knot DNS, two Exims and Dovecot on their own 127.x.y.0/24 block.

    with Lab(LabSpec()) as lab:       # validate, pick a free block, render files, start, wait
        info = lab.info                # addresses, resolver, user, password, CA, DKIM keys
    # every container is removed, also on exceptions and Ctrl-C

A lab that fails to start raises LabStartError carrying the failing container's log tail, and
leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import ipaddress
import os
import random
import secrets
import shutil
import signal
import socket
import string
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from probes.lab.containers import (
    DovecotContainer,
    KnotContainer,
    LabContainer,
    MtaContainer,
    PerditionContainer,
    remove_lab_containers,
)
from probes.lab.doctor import Say, _quiet, ensure_docker_api
from probes.lab.flavours import MTA_IMAGE
from probes.lab.image import build_image
from probes.lab.render import LabFiles, render_lab_dir
from probes.lab.spec import PORT_ROLES, LabSpec

LOCK_DIR = Path(tempfile.gettempdir()) / "mailprobe-lab-locks"
READY_TIMEOUT_S = 20.0


class LabStartError(RuntimeError):
    """The lab could not start; the message includes the failing container's log tail."""


@dataclass(frozen=True)
class LabInfo:
    """What a person or script needs to use a running lab (`lab up --format json`)."""

    lab_id: str
    domain: str
    resolver: str
    hosts: dict[str, str]
    client_ips: dict[str, str]
    user: str
    password: str = field(repr=False)
    ca_file: str
    dkim: dict[str, str]
    dkimpy_keys: dict[str, str]
    ports: dict[str, int]
    lab_dir: str
    # Receiver mode (probe message.receiver): the address mailprobe's own SMTP receiver listens
    # on (with ports["smtp"], where the outbound Exim delivers) and the domain whose MX points
    # there. Empty/None for a lab state written before receiver mode existed.
    receiver: str = ""
    receiver_domain: str | None = None
    # The lab's flavour (LabSpec.mta, LabSpec.mailbox_front).
    mta: str = "exim"
    mailbox_front: str = "dovecot"

    @property
    def receiver_listen(self) -> str:
        """`IP:PORT` for MessageOptions.receiver_listen."""
        return f"{self.receiver}:{self.ports['smtp']}"

    def to_json(self) -> dict[str, Any]:
        return {
            "lab_id": self.lab_id,
            "domain": self.domain,
            "resolver": self.resolver,
            "hosts": dict(self.hosts),
            "client_ips": dict(self.client_ips),
            "user": self.user,
            "password": self.password,
            "ca_file": self.ca_file,
            "dkim": dict(self.dkim),
            "ports": dict(self.ports),
            "lab_dir": self.lab_dir,
            "receiver": self.receiver,
            "receiver_domain": self.receiver_domain,
            "mta": self.mta,
            "mailbox_front": self.mailbox_front,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LabInfo:
        return cls(
            lab_id=data["lab_id"],
            domain=data["domain"],
            resolver=data["resolver"],
            hosts=data["hosts"],
            client_ips=data["client_ips"],
            user=data["user"],
            password=data["password"],
            ca_file=data["ca_file"],
            dkim=data["dkim"],
            dkimpy_keys=data.get("dkimpy_keys", {}),
            ports=data["ports"],
            lab_dir=data["lab_dir"],
            receiver=data.get("receiver", ""),
            receiver_domain=data.get("receiver_domain"),
            mta=data.get("mta", "exim"),
            mailbox_front=data.get("mailbox_front", "dovecot"),
        )

    @property
    def resolver_ip(self) -> str:
        return self.resolver.rsplit(":", 1)[0]

    @property
    def resolver_port(self) -> int:
        return int(self.resolver.rsplit(":", 1)[1])


_PASSWORD_ALPHABET = string.ascii_letters + string.digits


def new_lab_password() -> str:
    """A throwaway lab password (95 bits), letters and digits only: every client tool takes it
    as is (swaks reads an option value beginning with "-" as an option, and token_urlsafe's
    alphabet has "-": 1 lab in 64 made smtp.swaks skip its login)."""
    return "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(16))


def lab_id_for(block: str) -> str:
    a, b, c, _ = str(ipaddress.ip_network(block).network_address).split(".")
    return f"{a}-{b}-{c}"


def busy_endpoints(spec: LabSpec) -> list[str]:
    """The lab's ip:port endpoints something else already listens on (TCP, and UDP for DNS)."""
    busy = []
    for name, ip, port in spec.endpoints():
        kinds = [socket.SOCK_STREAM] + ([socket.SOCK_DGRAM] if name == "dns" else [])
        for kind in kinds:
            with socket.socket(socket.AF_INET, kind) as s:
                if kind == socket.SOCK_STREAM:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind((ip, port))
                except OSError as exc:
                    if exc.errno == errno.EADDRINUSE:
                        busy.append(f"{ip}:{port} ({name})")
                        break
                    if exc.errno == errno.EACCES:
                        raise LabStartError(
                            f"cannot bind {ip}:{port}: the lab's servers need root "
                            "(ports below 1024)"
                        ) from None
                    raise
    return busy


@contextlib.contextmanager
def _block_lock(block: str) -> Iterator[bool]:
    """Hold an exclusive lock on a block while a lab starts in it (False: someone else has it)."""
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    path = LOCK_DIR / (lab_id_for(block) + ".lock")
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Block SIGINT/SIGTERM for this thread; they are delivered when the block ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signals = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _candidate_blocks(rng: random.Random) -> Iterator[str]:
    for _ in range(200):
        yield f"127.{rng.randint(64, 254)}.{rng.randint(0, 255)}.0/24"


class Lab:
    """One lab instance. Use as a context manager, or call start() and stop() yourself."""

    def __init__(
        self,
        spec: LabSpec | None = None,
        *,
        workdir: Path | None = None,
        image: str | None = None,
        say: Say = _quiet,
        ready_timeout: float = READY_TIMEOUT_S,
    ) -> None:
        self.spec = spec or LabSpec()
        self.spec.validate()
        self._workdir = workdir
        self._own_workdir = workdir is None
        # MAILPROBE_LAB_IMAGE replaces the base image (Knot, Dovecot, Perdition, Exim).
        self._image = image or os.environ.get("MAILPROBE_LAB_IMAGE")
        self.say = say
        self.ready_timeout = ready_timeout
        self.containers: list[LabContainer] = []
        self.files: LabFiles | None = None
        self.info: LabInfo | None = None
        self.lab_id: str | None = None
        self.timings: dict[str, float] = {}

    # ----- lifecycle ------------------------------------------------------------------------
    def __enter__(self) -> Lab:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LabInfo:
        t0 = time.perf_counter()
        api = ensure_docker_api(self.say)
        images = {"base": self._image or build_image(api, self.say).name}
        mta_kind = MTA_IMAGE[self.spec.mta]
        if mta_kind not in images:
            images[mta_kind] = build_image(api, self.say, kind=mta_kind).name
        self.timings["image_s"] = time.perf_counter() - t0
        with self._claim_block() as spec:
            self.spec = spec
            self.lab_id = lab_id_for(spec.block or "")
            try:
                self._start_claimed(images["base"], images[mta_kind])
            except BaseException:
                self.stop()
                raise
        return self.info  # type: ignore[return-value]

    def _start_claimed(self, image: str, mta_image: str) -> None:
        t0 = time.perf_counter()
        password = new_lab_password()
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix=f"mailprobe-lab-{self.lab_id}-"))
        self.files = render_lab_dir(self.spec, self._workdir, password)
        t1 = time.perf_counter()
        self.timings["render_s"] = t1 - t0
        assert self.lab_id is not None
        spec, lab_dir = self.spec, self._workdir
        lab_id = self.lab_id
        if spec.mailbox_front == "perdition":
            front: list[LabContainer] = [
                PerditionContainer(image, spec, lab_dir, lab_id),
                DovecotContainer(image, spec, lab_dir, lab_id, "store"),
            ]
        else:
            front = [DovecotContainer(image, spec, lab_dir, lab_id)]
        self.containers = [
            KnotContainer(image, spec, lab_dir, lab_id),
            *front,
            MtaContainer(mta_image, spec, lab_dir, lab_id, "mx"),
            MtaContainer(mta_image, spec, lab_dir, lab_id, "outbound"),
        ]
        self.say(f"starting lab {lab_id} ({spec.flavour}, {spec.domain} on {spec.block})")
        # Ctrl-C is held back while containers are created (~0.3 s): an interrupt landing inside
        # the pool's bookkeeping could leave a worker that creates a container after teardown.
        with _signals_deferred(), ThreadPoolExecutor(max_workers=len(self.containers)) as pool:
            starts = [pool.submit(c.start) for c in self.containers]
            errors = [f.exception() for f in starts]
        for container, err in zip(self.containers, errors, strict=True):
            if err is not None:
                raise LabStartError(
                    f"lab container {container.role} failed to start: {err}"
                ) from err
        t2 = time.perf_counter()
        self.timings["start_s"] = t2 - t1
        deadline = time.monotonic() + self.ready_timeout
        cancel = threading.Event()  # an interrupt must not wait for the readiness deadline
        pool = ThreadPoolExecutor(max_workers=len(self.containers))
        try:
            waits = [pool.submit(c.wait_ready, deadline, cancel) for c in self.containers]
            errors = [f.exception() for f in waits]
        finally:
            cancel.set()
            pool.shutdown(wait=True)
        for container, err in zip(self.containers, errors, strict=True):
            if err is not None:
                raise LabStartError(
                    f"{err}\n--- last lines of the {container.role} container's log ---\n"
                    f"{container.log_tail()}"
                ) from err
        self.timings["ready_s"] = time.perf_counter() - t2
        self.info = self._make_info(password)
        self.say(f"lab {self.lab_id} ready in {time.perf_counter() - t0:.2f} s")

    def stop(self) -> None:
        """Remove every container of this lab and its files. Safe to call more than once.

        Ctrl-C and SIGTERM arriving meanwhile are held back until the teardown is done."""
        with _signals_deferred():
            self._stop()

    def _stop(self) -> None:
        t0 = time.perf_counter()
        for container in self.containers:
            with contextlib.suppress(Exception):
                container.stop()
        if self.lab_id:
            # Also whatever a start interrupted half-way left behind.
            with contextlib.suppress(Exception):
                remove_lab_containers(self.lab_id)
        self.containers = []
        if self._own_workdir and self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        self.timings["stop_s"] = time.perf_counter() - t0

    # ----- helpers --------------------------------------------------------------------------
    @contextlib.contextmanager
    def _claim_block(self) -> Iterator[LabSpec]:
        if self.spec.block is not None:
            spec = self.spec
            busy = busy_endpoints(spec)
            if busy:
                raise LabStartError(
                    f"lab spec `block` {spec.block}: already in use: {', '.join(busy)}"
                )
            with _block_lock(self.spec.block) as ok:
                if not ok:
                    raise LabStartError(
                        f"lab spec `block` {spec.block}: another lab is starting there"
                    )
                yield spec
            return
        rng = random.Random()
        for block in _candidate_blocks(rng):
            spec = self.spec.with_block(block)
            spec.validate()
            with _block_lock(block) as ok:
                if not ok or busy_endpoints(spec):
                    continue
                yield spec
                return
        raise LabStartError("no free 127.x.y.0/24 block found for the lab")

    def _make_info(self, password: str) -> LabInfo:
        spec, files = self.spec, self.files
        assert files is not None and self.lab_id is not None
        ports = {name: getattr(spec.ports, name) for name in PORT_ROLES}
        return LabInfo(
            lab_id=self.lab_id,
            domain=spec.domain,
            resolver=f"{spec.address('dns')}:{spec.ports.dns}",
            hosts={role: spec.address(role) for role in ("mx", "outbound", "mailbox")},
            client_ips={role: spec.address(role) for role in ("authorized", "unauthorized")},
            user=f"{spec.user}@{spec.domain}",
            password=password,
            ca_file=str(files.ca_file),
            dkim={sel: str(path) for sel, path in files.dkim_keys.items()},
            dkimpy_keys={sel: str(path) for sel, path in files.dkimpy_keys.items()},
            ports=ports,
            lab_dir=str(files.root),
            receiver=spec.address("receiver"),
            receiver_domain=spec.receiver_domain,
            mta=spec.mta,
            mailbox_front=spec.mailbox_front,
        )
