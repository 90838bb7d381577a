"""Benchmark: the seven transport endpoints of the lab, concurrent vs one at a time, vs sslyze.

    .venv/bin/python bench/transport.py [--runs 7] [--limits 2,8] [--cli-runs 3]
        [--sslyze-runs 3] [--sslyze-endpoints mx:465,mx:25,mailbox:993,mailbox:143]
        [--sslyze-connections N] [--no-sslyze]

Starts the lab once and, for each per-host connection limit (`Net.max_per_host`; the CLI's
`--max-per-host`, default 2):
1. runs the seven endpoint probes (smtp.mx 25, smtp.submission 587, smtp.submissions 465 on
   mx; imap.starttls 143, imap.tls 993, pop3.starttls 110, pop3.tls 995 on mailbox), each
   restricted to one endpoint, concurrently through `probes.runner.run_probes` as the CLI
   does: median wall time of --runs repetitions;
2. runs each probe alone (median each), and all seven with one worker (one after another);
3. prints concurrent / slowest single (target <= 1.5x), the concurrent wall time (target
   <= 2 s), and sequential / concurrent, with the connections each run opened per address.
Then it runs the `mailprobe check` CLI as a process (wall, CPU, peak RSS) for all seven and
for each endpoint that sslyze scans, and finally sslyze (bench/.venv-sslyze, installed from
PyPI on first use) on those endpoints: certificate info (with the lab CA as an extra trust
store) and the TLS 1.0/1.1/1.2/1.3 cipher-suite scans, against our probe on the same endpoint.

A benchmark, not a test: it prints figures and compares them with targets, never asserts.
Everything runs on loopback. The lab and every sslyze process are stopped at the end, also on
errors and Ctrl-C. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

SSLYZE_VENV = BENCH / ".venv-sslyze"
MAILPROBE = ROOT / ".venv" / "bin" / "mailprobe"
MB = 1_000_000

TARGET_RATIO = 1.5  # the whole lab within 1.5x its slowest single endpoint
TARGET_WALL_S = 2.0

HOSTS = {"mx": "mx.example.test", "mailbox": "mailbox.example.test"}


@dataclass(frozen=True)
class Endpoint:
    probe_id: str
    cls_path: str  # "module:Class"
    role: str  # lab host role: "mx" | "mailbox"
    port: int
    starttls: str | None  # sslyze's opportunistic TLS protocol, None for implicit TLS

    @property
    def label(self) -> str:
        return f"{self.role}:{self.port}"


ENDPOINTS = (
    Endpoint("smtp.mx", "probes.checks.smtp_endpoints:SmtpMx", "mx", 25, "smtp"),
    Endpoint("smtp.submission", "probes.checks.smtp_endpoints:SmtpSubmission", "mx", 587, "smtp"),
    Endpoint("smtp.submissions", "probes.checks.smtp_endpoints:SmtpSubmissions", "mx", 465, None),
    Endpoint(
        "imap.starttls", "probes.checks.mailbox_endpoints:ImapStartTls", "mailbox", 143, "imap"
    ),
    Endpoint("imap.tls", "probes.checks.mailbox_endpoints:ImapTls", "mailbox", 993, None),
    Endpoint(
        "pop3.starttls", "probes.checks.mailbox_endpoints:Pop3StartTls", "mailbox", 110, "pop3"
    ),
    Endpoint("pop3.tls", "probes.checks.mailbox_endpoints:Pop3Tls", "mailbox", 995, None),
)
BY_LABEL = {ep.label: ep for ep in ENDPOINTS}
TLS_VERSIONS = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")


# ===== pure helpers (tests/unit/test_bench_transport.py) ========================================
def parse_endpoints(text: str) -> list[Endpoint]:
    """ "mx:465,mailbox:993" -> the endpoints; ValueError naming an unknown one."""
    found = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if part not in BY_LABEL:
            known = ", ".join(BY_LABEL)
            raise ValueError(f"unknown endpoint {part!r} (known: {known})")
        found.append(BY_LABEL[part])
    return found


def parse_limits(text: str) -> list[int]:
    """ "2,8" -> [2, 8]; ValueError unless every item is an integer >= 1."""
    limits = [int(x) for x in text.split(",") if x.strip()]
    if not limits or min(limits) < 1:
        raise ValueError("limits must be integers >= 1")
    return limits


@dataclass(frozen=True)
class Ratios:
    concurrent_s: float
    slowest_label: str
    slowest_s: float
    sum_s: float

    @property
    def over_slowest(self) -> float:
        return self.concurrent_s / self.slowest_s

    @property
    def sequential_over_concurrent(self) -> float:
        return self.sum_s / self.concurrent_s


def ratios(concurrent_s: float, singles: dict[str, float]) -> Ratios:
    """The headline ratios from the median concurrent time and each endpoint's median."""
    slowest = max(singles, key=lambda k: singles[k])
    return Ratios(concurrent_s, slowest, singles[slowest], sum(singles.values()))


@dataclass(frozen=True)
class SslyzeVerdict:
    accepted: dict[str, int | None]  # TLS version -> accepted suites (None: scan failed)
    plaintext: int  # cipher-suite tests answered in plaintext (the server refused the connection)
    errors: dict[str, str]  # scan -> error
    cert_ok: bool | None  # the chain verified against the lab CA (None: certinfo failed)

    @property
    def versions(self) -> list[str]:
        return [v for v, n in self.accepted.items() if n]

    @property
    def complete(self) -> bool:
        """Every scan finished and no test was refused before TLS: the result can be trusted."""
        return not self.errors and self.plaintext == 0 and None not in self.accepted.values()


def sslyze_verdict(data: dict) -> SslyzeVerdict:
    """Summarize the wrapper's JSON (see SSLYZE_WRAPPER)."""
    accepted: dict[str, int | None] = {}
    errors: dict[str, str] = {}
    plaintext = 0
    if data.get("connectivity") != "COMPLETED":
        errors["connectivity"] = str(data.get("connectivity_error") or data.get("connectivity"))
    for version in TLS_VERSIONS:
        scan = (data.get("versions") or {}).get(version) or {}
        if scan.get("status") == "COMPLETED":
            accepted[version] = len(scan.get("accepted") or [])
            plaintext += int(scan.get("plaintext_answers") or 0)
        else:
            accepted[version] = None
            errors[version] = str(scan.get("error") or scan.get("status") or "not run")
    cert = data.get("certificate") or {}
    cert_ok = cert.get("supplied_ca_ok") if cert.get("status") == "COMPLETED" else None
    if cert.get("status") != "COMPLETED":
        errors["certinfo"] = str(cert.get("error") or cert.get("status") or "not run")
    return SslyzeVerdict(accepted, plaintext, errors, cert_ok)


def fmt_s(x: float) -> str:
    return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s"


# ===== results table ===========================================================================
@dataclass
class Results:
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)

    def add(self, figure: str, value: str, target: str = "-", ok: bool | None = None) -> None:
        within = "-" if ok is None else ("yes" if ok else "no")
        self.rows.append((figure, value, target, within))

    def print_table(self) -> None:
        if not self.rows:
            return
        head = ("figure", "value", "target", "within")
        cells = [head, *self.rows]
        widths = [max(len(r[i]) for r in cells) for i in range(4)]
        print()
        for n, row in enumerate(cells):
            print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
            if n == 0:
                print("  ".join("-" * w for w in widths))


# ===== our probes, in process ===================================================================
def load_class(path: str) -> type:
    import importlib

    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def counting_slots(per_host: int):
    """HostSlots that also count connections per address and the most open at once."""
    from probes.net.stream import HostSlots

    class CountingSlots(HostSlots):
        def __init__(self, n: int) -> None:
            super().__init__(n)
            self.opened: dict[str, int] = {}
            self.in_use: dict[str, int] = {}
            self.peak: dict[str, int] = {}
            self._count_lock = threading.Lock()

        def acquire(self, host: str, timeout: float) -> Callable[[], None]:
            release = super().acquire(host, timeout)
            with self._count_lock:
                self.opened[host] = self.opened.get(host, 0) + 1
                self.in_use[host] = self.in_use.get(host, 0) + 1
                self.peak[host] = max(self.peak.get(host, 0), self.in_use[host])
            done = threading.Event()

            def counted_release() -> None:
                if not done.is_set():
                    done.set()
                    with self._count_lock:
                        self.in_use[host] -= 1
                release()

            return counted_release

    return CountingSlots(per_host)


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / hz, sum(fields[:8]) / hz


def cgroup_cpu_files(lab) -> dict[str, Path]:
    """Each lab container's cgroup v1 `cpuacct.usage` file (CPU ns of all its processes), by
    role; empty when the layout is not cgroup v1 (then no server CPU is shown)."""
    files = {}
    for container in getattr(lab, "containers", []):
        with contextlib.suppress(Exception):
            wrapped = container.get_wrapped_container()
            wrapped.reload()
            pid = int(wrapped.attrs["State"]["Pid"])
            for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
                _, controllers, path = line.split(":", 2)
                if "cpuacct" in controllers.split(","):
                    usage = Path(f"/sys/fs/cgroup/{controllers}{path}/cpuacct.usage")
                    if usage.exists():
                        files[container.role] = usage
    return files


CGROUP_CPU: dict[str, Path] = {}  # filled once the lab runs


def server_cpu() -> dict[str, float]:
    """CPU seconds each lab container has used so far."""
    found = {}
    for role, path in CGROUP_CPU.items():
        with contextlib.suppress(OSError, ValueError):
            found[role] = int(path.read_text()) / 1e9
    return found


@dataclass
class Run:
    wall_s: float
    cpu_s: float  # this process
    busy: float  # share of all the machine's CPUs busy during the run (every process)
    opened: dict[str, int]
    peak: dict[str, int]
    problems: list[str]
    durations: dict[str, float]  # probe id -> its own duration inside the run
    server_cpu: dict[str, float]  # lab role -> CPU seconds its container used during the run


def run_set(eps: Sequence[Endpoint], target, limit: int, *, workers: int | None = None) -> Run:
    """Run the endpoints' probes through run_probes, as the CLI does; time and count it."""
    from probes.model import Outcome, Severity
    from probes.net import Net
    from probes.runner import DEFAULT_MAX_WORKERS, run_probes

    slots = counting_slots(limit)
    net = dataclasses.replace(Net.for_target(target, max_per_host=limit), host_slots=slots)
    probes = [load_class(ep.cls_path)() for ep in eps]
    busy0, total0 = machine_busy()
    srv0 = server_cpu()
    cpu0, t0 = time.process_time(), time.perf_counter()
    results = run_probes(probes, target, net, max_workers=workers or DEFAULT_MAX_WORKERS)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    busy1, total1 = machine_busy()
    srv1 = server_cpu()
    srv = {role: srv1[role] - srv0[role] for role in srv1 if role in srv0}
    busy = (busy1 - busy0) / max(1e-9, total1 - total0)
    problems = []
    for r in results:
        if r.outcome is not Outcome.COMPLETED:
            problems.append(f"{r.probe_id} {r.outcome.value}: {r.error_detail}")
        for f in r.findings:
            if f.severity is not Severity.INFO:
                problems.append(f"{r.probe_id} {f.code} ({f.severity.value})")
    durations = {r.probe_id: r.duration_s for r in results}
    return Run(wall, cpu, busy, dict(slots.opened), dict(slots.peak), problems, durations, srv)


def lab_target(info):
    """The lab's Target (probes.lab.target), reduced to the transport servers, without login."""
    from probes.lab.target import lab_target as check_lab_target
    from probes.model import MessageOptions

    return check_lab_target(
        info,
        mx_hosts=(HOSTS["mx"],),
        submission_hosts=(HOSTS["mx"],),
        mailbox_hosts=(HOSTS["mailbox"],),
        selectors=(),
        sending_ips=(),
        dkim_keys=(),
        message=MessageOptions(),
        login=None,
    )


def per_host(counts: dict[str, int], info) -> str:
    names = {ip: role for role, ip in info.hosts.items()}
    return ", ".join(f"{names.get(ip, ip)} {n}" for ip, n in sorted(counts.items()))


def cpu_split(runs: Sequence[Run]) -> str:
    parts = [f"client {fmt_s(statistics.median(r.cpu_s for r in runs))}"]
    for role in ("mx", "mailbox", "dns"):
        values = [r.server_cpu[role] for r in runs if role in r.server_cpu]
        if values:
            parts.append(f"{role} {fmt_s(statistics.median(values))}")
    return ", ".join(parts)


def cpu_split_sum(alone: dict[str, list[Run]]) -> str:
    client = sum(statistics.median(r.cpu_s for r in v) for v in alone.values())
    parts = [f"client {fmt_s(client)}"]
    for role in ("mx", "mailbox", "dns"):
        total = 0.0
        for v in alone.values():
            values = [r.server_cpu[role] for r in v if role in r.server_cpu]
            total += statistics.median(values) if values else 0.0
        if CGROUP_CPU.get(role):
            parts.append(f"{role} {fmt_s(total)}")
    return ", ".join(parts)


def bench_limit(limit: int, target, info, runs: int, res: Results) -> dict[str, float]:
    """Steps 1-3 for one per-host limit; returns each endpoint's median time alone."""
    print(f"== per-host limit {limit}: {runs} repetitions (concurrent, each alone, sequential)")
    conc: list[Run] = []
    seq: list[Run] = []
    alone: dict[str, list[Run]] = {ep.label: [] for ep in ENDPOINTS}
    problems: set[str] = set()
    for _ in range(runs):
        # Interleaved, so drift in the machine's load spreads over all three kinds.
        run = run_set(ENDPOINTS, target, limit)
        conc.append(run)
        problems.update(run.problems)
        for ep in ENDPOINTS:
            one = run_set([ep], target, limit)
            alone[ep.label].append(one)
            problems.update(one.problems)
        run = run_set(ENDPOINTS, target, limit, workers=1)
        seq.append(run)
        problems.update(run.problems)
    if problems:
        print("  not a clean run (the lab should give only info findings):")
        for p in sorted(problems):
            print(f"    {p}")
    singles = {k: statistics.median(r.wall_s for r in v) for k, v in alone.items()}
    for ep in ENDPOINTS:
        walls = [r.wall_s for r in alone[ep.label]]
        r0 = alone[ep.label][0]
        print(
            f"  alone {ep.label:<13} {ep.probe_id:<17} median {fmt_s(singles[ep.label]):>7}"
            f" (min {fmt_s(min(walls))}, max {fmt_s(max(walls))}); {sum(r0.opened.values())}"
            f" connections, at most {max(r0.peak.values(), default=0)} at once"
        )
    c_walls = [r.wall_s for r in conc]
    s_walls = [r.wall_s for r in seq]
    c_med = statistics.median(c_walls)
    r = ratios(c_med, singles)
    print(
        f"  concurrent (7 probes)   median {fmt_s(c_med):>7} (min {fmt_s(min(c_walls))}, max"
        f" {fmt_s(max(c_walls))}), CPU {fmt_s(statistics.median(x.cpu_s for x in conc))};"
        f" connections {per_host(conc[0].opened, info)}; at most at once"
        f" {per_host(conc[0].peak, info)}"
    )
    inside = {
        ep.label: statistics.median(r.durations[ep.probe_id] for r in conc) for ep in ENDPOINTS
    }
    print(
        "    each probe's own time inside the concurrent run (median): "
        + ", ".join(f"{k} {fmt_s(v)}" for k, v in inside.items())
    )
    print(
        "    CPU per run (median): concurrent "
        + cpu_split(conc)
        + "; all seven alone, summed: "
        + cpu_split_sum(alone)
    )
    total_cpu = statistics.median(r.cpu_s + sum(r.server_cpu.values()) for r in conc)
    cpus = len(os.sched_getaffinity(0))
    floor = total_cpu / cpus
    if CGROUP_CPU:
        print(
            f"    CPU floor: client + lab servers {fmt_s(total_cpu)} of CPU / {cpus} CPUs ="
            f" {fmt_s(floor)}: concurrent / floor {c_med / floor:.2f}x, floor / slowest alone"
            f" {floor / max(singles.values()):.2f}x"
        )
    busy_c = statistics.median(r.busy for r in conc)
    busy_a = statistics.median(r.busy for v in alone.values() for r in v)
    print(
        f"    machine CPU busy (all processes: client, servers, others): {busy_c:.0%} during"
        f" the concurrent runs, {busy_a:.0%} during the single ones; load"
        f" {', '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    s_med = statistics.median(s_walls)
    print(
        f"  one after another       median {fmt_s(s_med):>7} (run_probes with 1 worker);"
        f" sum of the medians alone {fmt_s(r.sum_s)}"
    )
    print(
        f"  slowest alone: {r.slowest_label} {fmt_s(r.slowest_s)}; concurrent / slowest"
        f" {r.over_slowest:.2f}x; sequential / concurrent {r.sequential_over_concurrent:.2f}x"
        f" (measured sequential / concurrent {s_med / c_med:.2f}x)"
    )
    tag = f" (limit {limit})"
    res.add(f"7 endpoints concurrent{tag}", fmt_s(c_med), f"<= {TARGET_WALL_S:g} s", c_med <= 2)
    res.add(
        f"concurrent / slowest alone{tag}",
        f"{r.over_slowest:.2f}x ({r.slowest_label} {fmt_s(r.slowest_s)})",
        f"<= {TARGET_RATIO}x",
        r.over_slowest <= TARGET_RATIO,
    )
    if CGROUP_CPU:
        res.add(
            f"CPU floor of the concurrent run{tag}",
            f"{fmt_s(floor)} ({fmt_s(total_cpu)} CPU / {cpus}); concurrent / floor"
            f" {c_med / floor:.2f}x",
        )
    res.add(
        f"sum alone / concurrent{tag}",
        f"{r.sequential_over_concurrent:.2f}x (sum {fmt_s(r.sum_s)}; 1 worker {fmt_s(s_med)})",
    )
    return singles


# ===== the CLI as a process =====================================================================
@dataclass
class Proc:
    wall_s: float
    cpu_s: float
    maxrss_mb: float
    status: int
    stdout: str
    stderr: str


RUNNING: dict[int, subprocess.Popen] = {}


def vm_hwm_kb(pid: int) -> int:
    """The process's peak RSS so far (VmHWM), 0 once it is gone.

    Not wait4's ru_maxrss: Linux carries the parent's peak into a forked child across exec,
    so every child of this (larger) process would show at least the parent's figure.
    """
    with contextlib.suppress(OSError, ValueError), open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def run_proc(cmd: list[str], limit_s: float) -> Proc:
    """Run a command in its own process group; wall, CPU (wait4) and peak RSS (VmHWM,
    sampled every 5 ms)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, start_new_session=True, cwd=ROOT)
        RUNNING[proc.pid] = proc
        try:
            deadline = t0 + limit_s
            hwm_kb = 0
            while True:
                hwm_kb = max(hwm_kb, vm_hwm_kb(proc.pid))
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if time.perf_counter() > deadline:
                    stop_proc(proc)
                    pid, status, usage = os.wait4(proc.pid, 0)
                    break
                time.sleep(0.005)
            wall = time.perf_counter() - t0
            proc.returncode = os.waitstatus_to_exitcode(status)
        finally:
            RUNNING.pop(proc.pid, None)
        out.seek(0)
        err.seek(0)
        return Proc(
            wall,
            usage.ru_utime + usage.ru_stime,
            hwm_kb * 1024 / MB,
            proc.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
        )


def stop_proc(proc: subprocess.Popen) -> None:
    """SIGTERM to the process group, SIGKILL after 5 s (only processes this script started)."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def cli_cmd(info, eps: Sequence[Endpoint], limit: int, out_dir: Path) -> list[str]:
    cmd = [str(MAILPROBE), "check", info.domain]
    for ep in eps:
        cmd += ["--probe", ep.probe_id]
    return [
        *cmd,
        "--mx",
        HOSTS["mx"],
        "--submission-host",
        HOSTS["mx"],
        "--mailbox-host",
        HOSTS["mailbox"],
        "--resolver",
        info.resolver,
        "--ca-file",
        info.ca_file,
        "--max-per-host",
        str(limit),
        "--format",
        "json",
        "--output",
        str(out_dir),
        "-q",
    ]


def bench_cli(info, eps: Sequence[Endpoint], limit: int, runs: int, tmp: Path) -> Proc | None:
    """Median CLI process over `runs` (by wall time), or None when the CLI is missing/fails."""
    if not MAILPROBE.exists():
        return None
    procs = []
    for n in range(runs):
        out_dir = tmp / f"cli-{'-'.join(e.probe_id for e in eps)}-{limit}-{n}"
        p = run_proc(cli_cmd(info, eps, limit, out_dir), limit_s=120)
        if p.status != 0:
            tail = "\n    ".join(p.stderr.strip().splitlines()[-4:])
            print(f"  mailprobe check exited {p.status}:\n    {tail}")
            return None
        procs.append(p)
    procs.sort(key=lambda p: p.wall_s)
    return procs[len(procs) // 2]


# ===== sslyze ===================================================================================
# Runs sslyze's Python API in a process of its own venv. Every connect() must go to loopback
# and names are never resolved (sslyze is given the IP), so nothing leaves 127/8. Prints one
# JSON line.
SSLYZE_WRAPPER = r"""
import ipaddress, json, socket, sys, time, warnings
t_start = time.perf_counter()
warnings.simplefilter("ignore")
CONNECTS = [0]
_connect, _connect_ex, _gai = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo
def _guard(addr):
    if isinstance(addr, tuple):
        if not ipaddress.ip_address(addr[0]).is_loopback:
            raise PermissionError(f"bench: refusing to connect to {addr[0]}")
        CONNECTS[0] += 1
def connect(self, addr):
    _guard(addr)
    return _connect(self, addr)
def connect_ex(self, addr):
    _guard(addr)
    return _connect_ex(self, addr)
def getaddrinfo(host, *args, **kwargs):
    try:
        ipaddress.ip_address(host)
    except (ValueError, TypeError):
        raise socket.gaierror(socket.EAI_NONAME, "bench: no OS name resolution") from None
    return _gai(host, *args, **kwargs)
socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
socket.getaddrinfo = getaddrinfo
from pathlib import Path
import sslyze
from sslyze.__version__ import __version__
t_imported = time.perf_counter()
host, ip, port, starttls, ca, limit = sys.argv[1:7]
cfg = sslyze.ServerNetworkConfiguration(
    tls_server_name_indication=host,
    tls_opportunistic_encryption=(
        sslyze.ProtocolWithOpportunisticTlsEnum[starttls.upper()] if starttls != "none" else None
    ),
)
SC = sslyze.ScanCommand
scans = {"TLSv1": SC.TLS_1_0_CIPHER_SUITES, "TLSv1.1": SC.TLS_1_1_CIPHER_SUITES,
         "TLSv1.2": SC.TLS_1_2_CIPHER_SUITES, "TLSv1.3": SC.TLS_1_3_CIPHER_SUITES}
req = sslyze.ServerScanRequest(
    server_location=sslyze.ServerNetworkLocation(hostname=host, port=int(port), ip_address=ip),
    network_configuration=cfg,
    scan_commands={SC.CERTIFICATE_INFO, *scans.values()},
    scan_commands_extra_arguments=sslyze.ScanCommandsExtraArguments(
        certificate_info=sslyze.CertificateInfoExtraArgument(custom_ca_file=Path(ca))
    ),
)
per_server = int(limit) if limit != "default" else None
scanner = sslyze.Scanner(per_server_concurrent_connections_limit=per_server)
t0 = time.perf_counter()
scanner.queue_scans([req])
out = {"version": __version__, "versions": {}, "certificate": {}}
def trace(attempt):
    if attempt.error_trace is None:
        return str(attempt.error_reason)
    return "".join(attempt.error_trace.format_exception_only()).strip()[-300:]
for r in scanner.get_results():
    out["scan_s"] = time.perf_counter() - t0
    out["connectivity"] = r.connectivity_status.name
    out["connectivity_error"] = r.connectivity_error_trace and "".join(
        r.connectivity_error_trace.format_exception_only()).strip()[-300:]
    sr = r.scan_result
    if sr is None:
        continue
    for version, cmd in scans.items():
        a = getattr(sr, cmd.value)
        item = {"status": a.status.name}
        if a.result is not None:
            item["accepted"] = [c.cipher_suite.name for c in a.result.accepted_cipher_suites]
            item["rejected"] = len(a.result.rejected_cipher_suites)
            item["plaintext_answers"] = sum(
                1 for c in a.result.rejected_cipher_suites
                if "wrong version number" in (c.error_message or "")
            )
        else:
            item["error"] = trace(a)
        out["versions"][version] = item
    ci = sr.certificate_info
    cert = {"status": ci.status.name}
    if ci.result is not None:
        d = ci.result.certificate_deployments[0]
        cert["stores"] = {
            p.trust_store.name: p.was_validation_successful for p in d.path_validation_results
        }
        cert["supplied_ca_ok"] = cert["stores"].get("Supplied CA file")
        cert["chain_length"] = len(d.received_certificate_chain)
        cert["leaf"] = d.received_certificate_chain[0].subject.rfc4514_string()
    else:
        cert["error"] = trace(ci)
    out["certificate"] = cert
out["import_s"] = t_imported - t_start
out["connects"] = CONNECTS[0]
print("SSLYZE-JSON " + json.dumps(out))
"""


def ensure_sslyze() -> Path:
    python = SSLYZE_VENV / "bin" / "python"
    check = [str(python), "-c", "import sslyze"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    print(f"  installing sslyze into {SSLYZE_VENV.relative_to(ROOT)} (pip)")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(SSLYZE_VENV)], check=True)
    pip = subprocess.run(
        [str(SSLYZE_VENV / "bin" / "pip"), "install", "-q", "sslyze"],
        capture_output=True,
        text=True,
    )
    if pip.returncode != 0:
        tail = "\n".join(pip.stderr.strip().splitlines()[-5:])
        raise SystemExit(f"error: pip install sslyze failed:\n{tail}")
    return python


def run_sslyze(python: Path, ep: Endpoint, info, connections: str) -> tuple[Proc, dict]:
    cmd = [
        str(python),
        "-c",
        SSLYZE_WRAPPER,
        HOSTS[ep.role],
        info.hosts[ep.role],
        str(ep.port),
        ep.starttls or "none",
        info.ca_file,
        connections,
    ]
    proc = run_proc(cmd, limit_s=300)
    data: dict = {}
    for line in proc.stdout.splitlines():
        if line.startswith("SSLYZE-JSON "):
            data = json.loads(line.removeprefix("SSLYZE-JSON "))
    return proc, data


def our_versions(target, ep: Endpoint) -> list[str]:
    """The TLS versions our probe saw accepted on the endpoint (its TLS_NEGOTIATED evidence)."""
    from probes.net import Net
    from probes.runner import run_probes

    result = run_probes([load_class(ep.cls_path)()], target, Net.for_target(target))[0]
    for f in result.findings:
        if f.code == "TLS_NEGOTIATED":
            return sorted(f.evidence.get("accepted", "").split())
    return []


def bench_sslyze(
    args, info, target, singles, cli_alone: dict[str, Proc | None], res: Results
) -> None:
    python = ensure_sslyze()
    connections = str(args.sslyze_connections) if args.sslyze_connections else "default"
    # Our probe's view first: after sslyze, Exim may still refuse connections for a moment.
    versions_before = {ep.label: our_versions(target, ep) for ep in args.sslyze_endpoints}
    for ep in args.sslyze_endpoints:
        mode = f"STARTTLS {ep.starttls}" if ep.starttls else "implicit TLS"
        print(f"== sslyze on {ep.label} ({mode}), {args.sslyze_runs} runs")
        runs = []
        for n in range(args.sslyze_runs):
            if n:
                time.sleep(1.0)  # let the server reap the last run's connections
            proc, data = run_sslyze(python, ep, info, connections)
            if not data:
                tail = "\n    ".join(proc.stderr.strip().splitlines()[-4:])
                print(f"  sslyze exited {proc.status} without a result:\n    {tail}")
                continue
            v = sslyze_verdict(data)
            counts = ", ".join(f"{k} {'-' if n is None else n}" for k, n in v.accepted.items())
            print(
                f"  run {n + 1}: process {fmt_s(proc.wall_s)} (import {fmt_s(data['import_s'])},"
                f" scan {fmt_s(data['scan_s'])}), CPU {fmt_s(proc.cpu_s)}, peak RSS"
                f" {proc.maxrss_mb:.0f} MB, {data['connects']} connections; accepted suites:"
                f" {counts}; chain verified with the lab CA: {v.cert_ok}"
            )
            if v.plaintext:
                print(
                    f"    {v.plaintext} cipher-suite tests got a plaintext answer instead of TLS"
                    " (the server refused the connection before the handshake)"
                )
            for scan, err in v.errors.items():
                print(f"    {scan}: {err.splitlines()[-1][:200]}")
            runs.append((proc, data, v))
        if not runs:
            res.add(f"sslyze {ep.label}", "no result")
            continue
        ours_v = versions_before[ep.label]
        version = runs[0][1]["version"]
        scan_med = statistics.median(d["scan_s"] for _, d, _ in runs)
        proc_med = statistics.median(p.wall_s for p, _, _ in runs)
        rss = max(p.maxrss_mb for p, _, _ in runs)
        complete = sum(1 for _, _, v in runs if v.complete)
        ours = singles[ep.label]
        print(
            f"  sslyze {version}: scan median {fmt_s(scan_med)}, process median"
            f" {fmt_s(proc_med)}; our probe alone (in process, limit {args.limits[0]})"
            f" {fmt_s(ours)}:"
            f" sslyze scan / our probe {scan_med / ours:.1f}x"
        )
        cli = cli_alone.get(ep.label)
        cli_text = ""
        if cli is not None:
            cli_text = f"; process vs `mailprobe check` {proc_med / cli.wall_s:.1f}x"
            print(
                f"  `mailprobe check --probe {ep.probe_id}` process {fmt_s(cli.wall_s)}, CPU"
                f" {fmt_s(cli.cpu_s)}, peak RSS {cli.maxrss_mb:.0f} MB: sslyze process / ours"
                f" {proc_med / cli.wall_s:.1f}x"
            )
        agree = [sorted(v.versions) == ours_v for _, _, v in runs if v.complete]
        print(
            f"  versions accepted: ours {' '.join(ours_v) or '-'}; sslyze (complete runs)"
            f" {'; '.join(' '.join(v.versions) for _, _, v in runs if v.complete) or '-'};"
            f" {complete} of {len(runs)} sslyze runs complete"
        )
        ratio = f"{scan_med / ours:.1f}x ({fmt_s(scan_med)} vs {fmt_s(ours)}){cli_text}"
        if not complete:
            ratio = f"not comparable: sslyze incomplete ({ratio})"
        res.add(f"sslyze {version} {ep.label} scan / our probe", ratio)
        res.add(
            f"sslyze {ep.label} complete runs, agrees with ours",
            f"{complete} of {len(runs)}, agree {sum(agree)} of {len(agree)}; RSS {rss:.0f} MB",
        )


# ===== main =====================================================================================
def run_bench(args, res: Results, started: list, tmp: Path) -> int:
    from probes.lab.lab import Lab
    from probes.lab.spec import LabSpec

    cpus = os.cpu_count()
    affinity = len(os.sched_getaffinity(0))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"== machine: {cpus} CPUs ({affinity} usable), load {load}; Python {sys.version.split()[0]}"
    )
    print("== lab")
    t0 = time.perf_counter()
    lab = Lab(LabSpec())
    started.append(lab)
    lab.start()
    info = lab.info
    print(
        f"  started in {time.perf_counter() - t0:.2f} s: mx {info.hosts['mx']}, mailbox"
        f" {info.hosts['mailbox']}, resolver {info.resolver}. Everything is loopback: no"
        " network round trip, so these times are the probes' own work and the servers'."
    )
    target = lab_target(info)
    CGROUP_CPU.update(cgroup_cpu_files(lab))
    if not CGROUP_CPU:
        print("  no cgroup v1 cpuacct files for the containers: server CPU not shown")

    first = run_set(ENDPOINTS, target, 2)
    print(f"  first run in this process (imports, cold caches; not counted): {fmt_s(first.wall_s)}")
    for p in first.problems:
        print(f"    {p}")

    singles_by_limit = {}
    for limit in args.limits:
        singles_by_limit[limit] = bench_limit(limit, target, info, args.runs, res)

    cli_alone: dict[str, Proc | None] = {}
    if args.cli_runs:
        print(f"== `mailprobe check` as a process (median of {args.cli_runs})")
        if not MAILPROBE.exists():
            print(f"  {MAILPROBE.relative_to(ROOT)} is missing: skipped")
        else:
            starts = sorted(
                run_proc([str(MAILPROBE), "check", "--help"], limit_s=60).wall_s
                for _ in range(args.cli_runs)
            )
            print(f"  start-up alone (`mailprobe check --help`): {fmt_s(starts[len(starts) // 2])}")
        for limit in args.limits:
            p = bench_cli(info, ENDPOINTS, limit, args.cli_runs, tmp)
            if p is not None:
                print(
                    f"  7 endpoints, --max-per-host {limit}: {fmt_s(p.wall_s)} wall, CPU"
                    f" {fmt_s(p.cpu_s)}, peak RSS {p.maxrss_mb:.0f} MB"
                )
                res.add(
                    f"`mailprobe check`, 7 endpoints (limit {limit})",
                    f"{fmt_s(p.wall_s)} (CPU {fmt_s(p.cpu_s)}, RSS {p.maxrss_mb:.0f} MB)",
                )
        for ep in [] if args.no_sslyze else args.sslyze_endpoints:
            cli_alone[ep.label] = p = bench_cli(info, [ep], args.limits[0], args.cli_runs, tmp)
            if p is not None:
                print(
                    f"  {ep.probe_id} ({ep.label}) alone: {fmt_s(p.wall_s)} wall, CPU"
                    f" {fmt_s(p.cpu_s)}, peak RSS {p.maxrss_mb:.0f} MB"
                )

    if not args.no_sslyze:
        bench_sslyze(args, info, target, singles_by_limit[args.limits[0]], cli_alone, res)

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MB
    print(f"== this process: peak RSS {rss:.0f} MB (the lab client and every in-process run)")
    res.add("bench process peak RSS (lab client + probes)", f"{rss:.0f} MB")
    return 0


def stop_all(started: list) -> None:
    for proc in list(RUNNING.values()):
        stop_proc(proc)
    for thing in reversed(started):
        with contextlib.suppress(Exception):
            thing.stop()
    started.clear()


def _terminate(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="repetitions per figure (7)")
    parser.add_argument("--limits", default="2,8", help="per-host connection limits (2,8)")
    parser.add_argument(
        "--cli-runs", type=int, default=3, help="`mailprobe check` runs (3; 0: none)"
    )
    parser.add_argument("--sslyze-runs", type=int, default=3, help="sslyze runs per endpoint (3)")
    parser.add_argument(
        "--sslyze-endpoints",
        default="mx:465,mx:25,mailbox:993,mailbox:143",
        help="endpoints sslyze scans (role:port, comma-separated)",
    )
    parser.add_argument(
        "--sslyze-connections",
        type=int,
        default=0,
        metavar="N",
        help="sslyze's concurrent connections per server (0: its default, 5)",
    )
    parser.add_argument("--no-sslyze", action="store_true", help="skip sslyze")
    args = parser.parse_args(argv)
    try:
        args.limits = parse_limits(args.limits)
        args.sslyze_endpoints = parse_endpoints(args.sslyze_endpoints)
    except ValueError as exc:
        parser.error(str(exc))
    if args.runs < 1 or args.sslyze_runs < 1 or args.cli_runs < 0:
        parser.error("--runs, --sslyze-runs: at least 1; --cli-runs: at least 0")
    if os.geteuid() != 0:
        print("error: the lab needs root", file=sys.stderr)
        return 2

    res = Results()
    started: list = []
    tmp = Path(tempfile.mkdtemp(prefix="mailprobe-transport-bench-"))
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return run_bench(args, res, started, tmp)
    except KeyboardInterrupt:
        print("\ninterrupted; stopping sslyze and the lab")
        return 130
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
            return 1
        raise
    finally:
        stop_all(started)
        signal.signal(signal.SIGTERM, previous)
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        res.print_table()


if __name__ == "__main__":
    sys.exit(main())
