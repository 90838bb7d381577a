"""The embedded lab: real Knot DNS, two Exims and Dovecot on their own 127.x.y.0/24 block.

    with Lab(LabSpec()) as lab:       # validate, pick a free block, render files, start, wait
        info = lab.info                # addresses, resolver, user, password, CA, DKIM keys
    # every container is removed, also on exceptions and Ctrl-C

A lab that fails to start raises LabStartError carrying the failing container's log tail, and
leaves nothing behind. Ctrl-C or SIGTERM at any moment leaves nothing either: the steps that
create something (the lab directory, the containers) and the teardown run to their end with
signals held (probes.interrupts.deferred), and the signal is delivered right after them.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import fcntl
import ipaddress
import os
import random
import re
import secrets
import shutil
import socket
import string
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from probes.interrupts import deferred
from probes.lab.containers import (
    LABEL_INSTANCE,
    DovecotContainer,
    KnotContainer,
    LabContainer,
    MtaContainer,
    PerditionContainer,
    WebContainer,
    list_lab_containers,
    remove_lab_containers,
)
from probes.lab.doctor import Say, _quiet, ensure_docker_api, find_docker_api
from probes.lab.flavours import MTA_IMAGE
from probes.lab.image import build_image
from probes.lab.render import LabFiles, render_lab_dir
from probes.lab.spec import PORT_ROLES, LabSpec

LOCK_DIR = Path(tempfile.gettempdir()) / "mailprobe-lab-locks"
READY_TIMEOUT_S = 20.0
# A lab's own directory: $TMPDIR/mailprobe-lab-<lab id>-<instance>, where the instance (also a
# label of its containers) is "<pid>-<random>": a later start sweeps what a SIGKILL left.
LAB_DIR_PREFIX = "mailprobe-lab-"
_LAB_DIR_NAME = re.compile(r"^mailprobe-lab-(127-\d{1,3}-\d{1,3})-((\d+)-[0-9a-f]{8})$")


class LabStartError(RuntimeError):
    """The lab could not start; the message includes the failing container's log tail."""


class BlockBusy(LabStartError):
    """The spec fixes its `block`, and something listens there or another lab is starting
    there (it may be free later: the pytest plugin waits under xdist)."""


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
    # The DNS blocklist zones the lab DNS serves (LabSpec.blocklists), by kind: what
    # `check --lab` asks (Target.dnsbls, Target.domain_blocklists). Empty for an older state.
    dnsbls: tuple[str, ...] = ()
    domain_blocklists: tuple[str, ...] = ()
    # DNSSEC: the lab's trust anchor file (DS records in zone-file syntax; `--trust-anchor`)
    # and its records. None/"" for a lab state written before the lab was signed.
    trust_anchor: str | None = None
    trust_anchor_records: str = ""

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
            "dnsbls": list(self.dnsbls),
            "domain_blocklists": list(self.domain_blocklists),
            "trust_anchor": self.trust_anchor,
            "trust_anchor_records": self.trust_anchor_records,
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
            dnsbls=tuple(data.get("dnsbls", ())),
            domain_blocklists=tuple(data.get("domain_blocklists", ())),
            trust_anchor=data.get("trust_anchor"),
            trust_anchor_records=data.get("trust_anchor_records", ""),
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


def _still_at(fh: IO[str], path: Path) -> bool:
    """Whether the open lock file `fh` is still the file at `path`. Its holder removes it when
    done (nothing piles up in LOCK_DIR): a lock taken on a file no longer there was released
    that way, and is not the lock."""
    try:
        return os.fstat(fh.fileno()).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def _sweep_lock_files() -> None:
    """Remove the lock files nobody holds (versions before the holder removed its own left
    one per block used)."""
    with contextlib.suppress(OSError), os.scandir(LOCK_DIR) as entries:
        names = [e.name for e in entries if e.name.endswith(".lock")]
    for name in names:
        path = LOCK_DIR / name
        with contextlib.suppress(OSError), open(path, "a") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a lab is starting there
            if _still_at(fh, path):
                path.unlink()
            fcntl.flock(fh, fcntl.LOCK_UN)


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
        if not _still_at(fh, path):
            fcntl.flock(fh, fcntl.LOCK_UN)
            yield False
            return
        try:
            yield True
        finally:
            with contextlib.suppress(OSError):
                path.unlink()
            fcntl.flock(fh, fcntl.LOCK_UN)


# Every Lab that claimed a block in this process, in order (started_labs(), leftovers).
_STARTED: list[Lab] = []


def labs_started() -> int:
    """How many labs this process has started so far (a mark for started_since)."""
    return len(_STARTED)


def started_since(mark: int) -> list[Lab]:
    return _STARTED[mark:]


def stop_labs(labs: Iterable[Lab]) -> None:
    """Stop these labs in parallel, as one section that runs to its end (signals held, then
    delivered); a lab that is kept (`lab up`) stays. Raises the first failure afterwards."""
    chosen = [lab for lab in labs if not lab.kept]
    with deferred():
        failures = _each(lambda lab: lab.stop(), chosen)
    if failures:
        raise failures[0]


def _each(fn: Callable[[Any], object], items: list[Any]) -> list[BaseException]:
    """fn(item) for every item, in parallel threads (one by one at interpreter exit, when no
    thread can start); the exceptions they raised, KeyboardInterrupt included."""
    if not items:
        return []
    try:
        with ThreadPoolExecutor(max_workers=min(8, len(items))) as pool:
            futures = [pool.submit(fn, item) for item in items]
    except RuntimeError:  # "cannot schedule new futures after interpreter shutdown"
        failures = []
        for item in items:
            try:
                fn(item)
            except BaseException as exc:
                failures.append(exc)
        return failures
    return [exc for exc in (f.exception() for f in futures) if exc is not None]


@atexit.register
def _stop_at_exit() -> None:
    """A lab never outlives the process that started it unless kept: whatever an interrupted
    teardown (say a second Ctrl-C between two pytest finalizers) did not stop."""
    live = [lab for lab in _STARTED if not lab.kept and not lab.stopped]
    with contextlib.suppress(BaseException):
        stop_labs(live)


def leftover_report(labs: Iterable[Lab]) -> str | None:
    """None when nothing of these labs is left (kept ones aside); otherwise what is left and
    the commands that remove it, for the user."""
    labs = [lab for lab in labs if not lab.kept and lab.lab_id is not None]
    if not labs:
        return None
    left: list[str] = []
    commands: list[str] = []
    api = find_docker_api()
    engine = "docker" if api is not None and api.engine == "docker" else "podman"
    for lab in labs:
        try:
            found = lab.leftovers()
        except Exception as exc:  # the engine does not answer: we cannot tell
            found = [f"possibly containers of lab {lab.lab_id} (not checked: {exc})"]
        if not found:
            continue
        left += found
        if any(not line.startswith("directory ") for line in found):
            label = f"{LABEL_INSTANCE}={lab.instance}"
            commands.append(f"{engine} rm -f $({engine} ps -aq --filter label={label})")
        if lab.lab_dir is not None and lab.lab_dir.exists():
            commands.append(f"rm -rf {lab.lab_dir}")
    if not left:
        return None
    return (
        "these were left behind: "
        + "; ".join(left)
        + ". Remove them with: "
        + " && ".join(commands)
    )


def sweep_stale_labs(say: Say = _quiet) -> list[str]:
    """Remove the lab directories (and their containers) whose process is gone: what a SIGKILL
    left. Cheap when there is none (one directory listing). Returns what it removed."""
    _sweep_lock_files()
    tmp = Path(tempfile.gettempdir())
    stale = []
    with contextlib.suppress(OSError), os.scandir(tmp) as entries:
        for entry in entries:
            match = _LAB_DIR_NAME.match(entry.name)
            if match and not _alive(int(match.group(3))):
                stale.append((entry.path, match.group(1), match.group(2)))
    removed = []
    for path, lab_id, instance in stale:
        with deferred():
            try:
                names = remove_lab_containers(lab_id, instance=instance)
            except Exception as exc:  # the engine is unreachable: keep the dir
                say(f"could not remove the containers of the stale lab {path}: {exc}")
                continue
            shutil.rmtree(path, ignore_errors=True)
        removed += [*names, path]
        say(f"removed a lab left by a process that is gone: {', '.join([*names, path])}")
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's
    return True


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
        owned_dir: Path | None = None,
        image: str | None = None,
        say: Say = _quiet,
        ready_timeout: float = READY_TIMEOUT_S,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        self.spec = spec or LabSpec()
        self.spec.validate()
        self._workdir = workdir
        self._own_workdir = workdir is None
        # A directory stop() removes whoever calls it (`lab up`'s state, holding workdir): an
        # interrupt that cuts the command's own cleanup short still leaves nothing behind.
        self._owned_dir = owned_dir
        # MAILPROBE_LAB_IMAGE replaces the base image (Knot, Dovecot, Perdition, Exim).
        self._image = image or os.environ.get("MAILPROBE_LAB_IMAGE")
        self.say = say
        self.ready_timeout = ready_timeout
        # More container labels, e.g. the pytest-xdist worker that started it (LABEL_WORKER).
        self.labels = dict(labels or {})
        self.containers: list[LabContainer] = []
        self.files: LabFiles | None = None
        self.info: LabInfo | None = None
        self.lab_id: str | None = None
        self.timings: dict[str, float] = {}
        # This Lab object among all labs (container label LABEL_INSTANCE, lab directory name).
        self.instance = f"{os.getpid()}-{secrets.token_hex(4)}"
        # The lab directory, also after stop() removed it (leftovers() looks there).
        self.lab_dir: Path | None = workdir
        self.kept = False
        self._swept = True  # no container of this instance can exist (yet, or any more)

    # ----- lifecycle ------------------------------------------------------------------------
    def __enter__(self) -> Lab:
        try:
            self.start()
        except BaseException:  # start() stops on failure; this also covers its very last step
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LabInfo:
        t0 = time.perf_counter()
        api = ensure_docker_api(self.say)
        sweep_stale_labs(self.say)
        images = {"base": self._image or build_image(api, self.say).name}
        mta_kind = MTA_IMAGE[self.spec.mta]
        if mta_kind not in images:
            images[mta_kind] = build_image(api, self.say, kind=mta_kind).name
        self.timings["image_s"] = time.perf_counter() - t0
        try:
            with self._claim_block() as spec:
                self.spec = spec
                self.lab_id = lab_id_for(spec.block or "")
                self._swept = False
                _STARTED.append(self)
                self._start_claimed(images["base"], images[mta_kind])
        except BaseException:
            self.stop()
            raise
        return self.info  # type: ignore[return-value]

    def _start_claimed(self, image: str, mta_image: str) -> None:
        t0 = time.perf_counter()
        password = new_lab_password()
        assert self.lab_id is not None
        with deferred():  # the directory exists only once self knows it (stop() removes it)
            workdir = self._workdir or (
                Path(tempfile.gettempdir()) / f"{LAB_DIR_PREFIX}{self.lab_id}-{self.instance}"
            )
            workdir.mkdir(mode=0o700, parents=True, exist_ok=not self._own_workdir)
            self._workdir = self.lab_dir = workdir
        self.files = render_lab_dir(self.spec, self._workdir, password)
        t1 = time.perf_counter()
        self.timings["render_s"] = t1 - t0
        spec, lab_dir = self.spec, self._workdir
        lab_id = self.lab_id
        own = {"instance": self.instance}
        if spec.mailbox_front == "perdition":
            front: list[LabContainer] = [
                PerditionContainer(image, spec, lab_dir, lab_id, **own),
                DovecotContainer(image, spec, lab_dir, lab_id, "store", **own),
            ]
        else:
            front = [DovecotContainer(image, spec, lab_dir, lab_id, **own)]
        self.containers = [
            KnotContainer(image, spec, lab_dir, lab_id, **own),
            *front,
            MtaContainer(mta_image, spec, lab_dir, lab_id, "mx", **own),
            MtaContainer(mta_image, spec, lab_dir, lab_id, "outbound", **own),
            WebContainer(image, spec, lab_dir, lab_id, **own),
        ]
        for container in self.containers:
            container.with_labels(self.labels)
        self.say(f"starting lab {lab_id} ({spec.flavour}, {spec.domain} on {spec.block})")
        # Signals are held while the containers are created (~0.3 s): an interrupt must not
        # leave a worker that creates a container after the teardown looked for them.
        with deferred(), ThreadPoolExecutor(max_workers=len(self.containers)) as pool:
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
            with deferred():
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

        Runs to its end: Ctrl-C and SIGTERM arriving meanwhile (a second Ctrl-C too) are held
        and delivered when the teardown is done; an exception or KeyboardInterrupt out of one
        step does not skip the others (the first KeyboardInterrupt is raised afterwards)."""
        with deferred():
            self._stop()

    @property
    def stopped(self) -> bool:
        """Nothing of this lab can be left: no container, no directory of its own."""
        return (
            self._swept
            and not self.containers
            and (self._workdir is None or not self._own_workdir)
            and (self._owned_dir is None or not self._owned_dir.exists())
        )

    def keep(self) -> None:
        """The lab is meant to outlive this process (`lab up`): leftovers() leaves it out."""
        self.kept = True

    def _stop(self) -> None:
        t0 = time.perf_counter()
        if self.containers or self._workdir is not None or self._owned_dir is not None:
            self.say(f"stopping lab {self.lab_id}")
        interrupted: BaseException | None = None

        def step(fn: Callable[[], object]) -> None:
            nonlocal interrupted
            try:
                fn()
            except Exception:  # the label sweep below removes what is left
                pass
            except BaseException as exc:  # KeyboardInterrupt, SystemExit: finish, then raise
                interrupted = interrupted or exc

        containers, self.containers = self.containers, []

        def remove_each() -> None:  # in parallel: ~0.15 s per container otherwise
            for failure in _each(lambda c: c.stop(), containers):
                if not isinstance(failure, Exception):
                    raise failure  # a KeyboardInterrupt inside a worker

        if containers:
            step(remove_each)
        if self.lab_id and not self._swept:
            # Also whatever a start interrupted half-way left behind (this instance's only).
            lab_id = self.lab_id

            def sweep() -> None:
                remove_lab_containers(lab_id, instance=self.instance)
                self._swept = True

            step(sweep)
        if self._own_workdir and self._workdir is not None:
            workdir, self._workdir = self._workdir, None
            step(lambda: shutil.rmtree(workdir, ignore_errors=True))
        if self._owned_dir is not None:
            owned = self._owned_dir
            step(lambda: shutil.rmtree(owned, ignore_errors=True))
        self.timings["stop_s"] = time.perf_counter() - t0
        if interrupted is not None:
            raise interrupted

    def leftovers(self) -> list[str]:
        """What of this lab is still there (containers, its directory), one line each; [] when
        it is kept (`lab up`) or nothing is left. Raises when the container engine does not
        answer."""
        if self.kept or self.lab_id is None:
            return []
        found = [
            f"container {name}"
            for name, _, _ in list_lab_containers(self.lab_id, instance=self.instance)
        ]
        if self.lab_dir is not None and self.lab_dir.exists():
            found.append(f"directory {self.lab_dir} (keys and the lab password)")
        elif self._owned_dir is not None and self._owned_dir.exists():
            found.append(f"directory {self._owned_dir} (the lab's state)")
        return found

    # ----- helpers --------------------------------------------------------------------------
    @contextlib.contextmanager
    def _claim_block(self) -> Iterator[LabSpec]:
        if self.spec.block is not None:
            spec = self.spec
            # The endpoints are checked under the lock, as for a block picked below: checked
            # before it, a lab that another process finished starting meanwhile went unseen.
            with _block_lock(self.spec.block) as ok:
                if not ok:
                    raise BlockBusy(f"lab spec `block` {spec.block}: another lab is starting there")
                busy = busy_endpoints(spec)
                if busy:
                    raise BlockBusy(
                        f"lab spec `block` {spec.block}: already in use: {', '.join(busy)}"
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
            dnsbls=spec.blocklist_zones["ip"],
            domain_blocklists=spec.blocklist_zones["domain"],
            trust_anchor=str(files.trust_anchor) if files.trust_anchor else None,
            trust_anchor_records=_anchor_records(files.trust_anchor),
        )


def _anchor_records(path: Path | None) -> str:
    """The DS lines of the lab's trust anchor file (comments left out)."""
    if path is None:
        return ""
    lines = path.read_text().splitlines()
    return "\n".join(line for line in lines if line and not line.startswith(";"))
