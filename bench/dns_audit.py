"""Benchmark: mailprobe's DNS probes over many domains vs checkdmarc, through a 20 ms DNS proxy.

    .venv/bin/python bench/dns_audit.py [--domains 1000] [--mailprobe-only]
        [--concurrency 32[,8,...]] [--processes 0[,1,2]] [--checkdmarc-domains M] [--no-trace]

1. Generates N domains with realistic record sets (SPF with 2-3 levels of includes through
   shared provider zones and partner domains, DKIM with 2 selectors and RSA 2048 keys, DMARC
   with rua in the domain, a report collector or a partner domain with its `_report._dmarc`
   authorization, MX hosts with PTRs that resolve back) and serves them from the lab's Knot,
   one zone per domain (LabSpec.extra_zones). Every address is in 127.0.0.0/8, and nothing
   ever connects to them.
2. Puts a delaying DNS proxy (bench/dnsproxy.py: 20 ms per query, UDP and TCP, no
   serialization) on the lab block's .99 address, port 53, in front of Knot.
3. Runs `mailprobe check --domains FILE --probe 'dns.*'` (a subprocess: wall time, CPU, peak
   memory summed over its processes) once per --processes x --concurrency pair, then
   checkdmarc (bench/.venv-checkdmarc, installed from PyPI on first use) over the same
   domains through the same proxy, and prints wall times, queries per domain, the ratio, and
   each domain's wall time against its critical path (its longest chain of dependent queries,
   computed from the generated records, x 20 ms). The worst domain is then traced alone: the
   proxy's log shows its rounds of questions.

A benchmark, not a test: it prints figures and compares them with targets, never asserts.
The lab and the proxy are stopped at the end, also on errors and Ctrl-C. See bench/README.md.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fnmatch
import importlib
import json
import os
import pkgutil
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from dnsproxy import DelayProxy, ProxyCounts, waves  # noqa: E402

CHECKDMARC_VENV = BENCH / ".venv-checkdmarc"
SELECTORS = ("s1", "s2")
N_KEYS = 3  # RSA 2048 keys generated once and shared by all domains (2 per domain)
PROXY_HOST_OCTET = 99  # the proxy listens on <lab block>.99:53
MB = 1_000_000

TARGET_SPEEDUP = 50.0  # issue 17: >= 50x checkdmarc's wall time (issue 5 asked 10x)
TARGET_CRITICAL = 1.5  # the share of domains within 1.5x of their critical path (issue 5)
TARGET_P95 = 3.0  # issue 17: per-domain p95 <= 3x its critical path at the default concurrency
TARGET_RSS_MB = 300.0
TARGET_RSS_DOMAINS = 10_000


# ===== 1. the generated world ==================================================================
# Addresses: the lab picks its blocks in 127.64-254.x.0/24, so generated data stays below:
# domains' hosts in 127.40.0.0/13 (one /24 per 250 hosts), providers in 127.39.K.0/24, DMARC
# report collectors in 127.38.K.0/24.
def host_ip(n: int) -> str:
    return f"127.{40 + n // 64_000}.{(n // 250) % 256}.{n % 250 + 1}"


def reverse_parts(ip: str) -> tuple[str, str]:
    """(reverse zone name, label) for an IPv4 address: ("c.b.a.in-addr.arpa", "d")."""
    a, b, c, d = ip.split(".")
    return f"{c}.{b}.{a}.in-addr.arpa", d


@dataclass
class World:
    """Zones (name -> zone-file lines, relative) and the same records as a flat map."""

    domains: list[str] = field(default_factory=list)
    zones: dict[str, list[str]] = field(default_factory=dict)
    records: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    wildcards: set[str] = field(default_factory=set)  # owner names starting with "*."

    def add(self, zone: str, rel: str, rdtype: str, value: str) -> None:
        from probes.lab.zones import txt_rdata

        name = zone if rel == "@" else f"{rel}.{zone}"
        rdata = txt_rdata(value) if rdtype == "TXT" else value
        self.zones.setdefault(zone, []).append(f"{rel} {rdtype} {rdata}")
        self.records.setdefault((name, rdtype), []).append(value)
        if name.startswith("*."):
            self.wildcards.add(name)

    def ptr(self, ip: str, name: str) -> None:
        zone, label = reverse_parts(ip)
        self.add(zone, label, "PTR", name + ".")

    def get(self, name: str, rdtype: str) -> list[str]:
        """The records of (name, type), wildcards expanded (enough for this data)."""
        found = self.records.get((name, rdtype))
        if found is not None:
            return found
        labels = name.split(".")
        for i in range(1, len(labels)):
            wild = "*." + ".".join(labels[i:])
            if wild in self.wildcards:
                return self.records.get((wild, rdtype), [])
        return []


def rsa_public_keys(count: int) -> list[str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    keys = []
    for _ in range(count):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        der = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        keys.append(base64.b64encode(der).decode())
    return keys


def generate(n: int, seed: int = 1) -> World:
    rng = random.Random(seed)
    w = World()
    keys = rsa_public_keys(N_KEYS)
    n_providers = min(200, max(4, n // 100))
    n_collectors = min(20, max(2, n // 200))

    # Mail/SPF providers: MX hosts, relay, and an SPF tree of 2 or 3 include levels.
    providers = [f"prov{k:03d}.test" for k in range(n_providers)]
    for k, prov in enumerate(providers):
        for i, label in enumerate(("mx1", "mx2", "relay"), start=1):
            ip = f"127.39.{k}.{i}"
            w.add(prov, label, "A", ip)
            w.ptr(ip, f"{label}.{prov}")
        w.add(prov, "@", "MX", f"10 mx1.{prov}.")
        w.add(prov, "@", "MX", f"20 mx2.{prov}.")
        w.add(prov, "_nb1", "TXT", f"v=spf1 ip4:127.39.{k}.0/26 a:relay.{prov} -all")
        w.add(prov, "_nb2", "TXT", f"v=spf1 ip4:127.39.{k}.64/26 mx:{prov} ~all")
        if k % 2:  # three levels: spf -> _spf-a -> _nb1/_nb2
            w.add(prov, "spf", "TXT", f"v=spf1 include:_spf-a.{prov} ip4:127.39.{k}.128/26 ~all")
            w.add(prov, "_spf-a", "TXT", f"v=spf1 include:_nb1.{prov} include:_nb2.{prov} -all")
        else:  # two levels: spf -> _nb1/_nb2
            w.add(prov, "spf", "TXT", f"v=spf1 include:_nb1.{prov} include:_nb2.{prov} ~all")

    # DMARC report collectors authorize every domain with a wildcard, as the big ones do.
    collectors = [f"rua-collector{k:02d}.test" for k in range(n_collectors)]
    for k, coll in enumerate(collectors):
        w.add(coll, "*._report._dmarc", "TXT", "v=DMARC1")
        w.add(coll, "@", "MX", f"10 mx.{coll}.")
        ip = f"127.38.{k}.1"
        w.add(coll, "mx", "A", ip)
        w.ptr(ip, f"mx.{coll}")

    domains = [f"d{i:05d}.test" for i in range(n)]
    w.domains = domains
    host = 0
    for i, dom in enumerate(domains):
        prov = rng.choice(providers)
        partner = domains[(i + 1 + rng.randrange(max(1, n - 1))) % n] if n > 1 else dom
        # MX: 60 % their own hosts (1 or 2), 40 % the provider's.
        if rng.random() < 0.6:
            for m in range(1, rng.choice((1, 2)) + 1):
                ip = host_ip(host)
                host += 1
                w.add(dom, f"mx{m}", "A", ip)
                w.ptr(ip, f"mx{m}.{dom}")
                w.add(dom, "@", "MX", f"{10 * m} mx{m}.{dom}.")
        else:
            w.add(dom, "@", "MX", f"10 mx1.{prov}.")
            w.add(dom, "@", "MX", f"20 mx2.{prov}.")
        out_ip = host_ip(host)
        host += 1
        w.add(dom, "out", "A", out_ip)
        w.ptr(out_ip, f"out.{dom}")
        # What partners include: two levels of its own.
        w.add(dom, "_spf", "TXT", f"v=spf1 a:out.{dom} include:_spf2.{dom} -all")
        w.add(dom, "_spf2", "TXT", f"v=spf1 ip4:{out_ip} ip4:{out_ip.rsplit('.', 1)[0]}.0/28 -all")
        # The domain's SPF: mx, its outbound IP, its provider, and (70 %) a partner's _spf.
        terms = ["v=spf1", "mx", f"ip4:{out_ip}", f"include:spf.{prov}"]
        if partner != dom and rng.random() < 0.7:
            terms.append(f"include:_spf.{partner}")
        terms.append(rng.choice(("-all", "~all")))
        w.add(dom, "@", "TXT", " ".join(terms))
        # DKIM: two selectors, two different RSA 2048 keys.
        for sel, key in zip(SELECTORS, rng.sample(keys, 2), strict=True):
            w.add(dom, f"{sel}._domainkey", "TXT", f"v=DKIM1; k=rsa; p={key}")
        # DMARC: rua in the domain (40 %), at a collector (40 %) or at a partner (20 %).
        policy = rng.choice(("none", "quarantine", "reject", "reject"))
        roll = rng.random()
        if roll < 0.4:
            rua = f"mailto:dmarc@{dom}"
        elif roll < 0.8:
            rua = f"mailto:agg+{dom.split('.')[0]}@{rng.choice(collectors)}"
        else:
            rua = f"mailto:dmarc-reports@{partner}"
            w.add(partner, f"{dom}._report._dmarc", "TXT", "v=DMARC1")
        w.add(dom, "_dmarc", "TXT", f"v=DMARC1; p={policy}; rua={rua}; adkim=r; aspf=r")
    return w


# ===== critical path and minimum questions, from the records ===================================
# A question is (TYPE, name); a node is a question asked for a reason ("spf", "mx", ...), as
# the reason decides what its answer leads to. The walk is breadth-first, in rounds, like an
# ideal client with a per-domain cache: every question is asked once, in the earliest round
# an answer reveals it; a question already asked (for another reason) costs no new round.
_SPF_TERM = re.compile(r"^[+\-~?]?(?P<mech>[a-z0-9]+)(?:[:=](?P<arg>[^/]*))?", re.I)
_RUA_HOST = re.compile(r"mailto:[^@;,\s]+@([^;,\s!]+)", re.I)

Node = tuple[str, str, str]  # (TYPE, name, reason)


def _hosts(records: list[str]) -> list[str]:
    return [v.split()[1].rstrip(".").lower() for v in records]


def expand(world: World, node: Node, probe_ids: set[str]) -> list[Node]:
    """The questions an answer to `node` leads to (per RFC 7208, 7489/9989, 7672, FCrDNS)."""
    rdtype, name, why = node
    answer = world.get(name, rdtype)
    out: list[Node] = []
    if why == "spf":  # TXT: include/redirect -> TXT; a -> A/AAAA; mx -> MX then addresses
        records = [t for t in answer if t.lower().startswith("v=spf1")]
        for term in records[0].split()[1:] if len(records) == 1 else []:
            m = _SPF_TERM.match(term)
            if not m:
                continue
            mech, arg = m["mech"].lower(), (m["arg"] or name).lower()
            if mech in ("include", "redirect"):
                out.append(("TXT", arg, "spf"))
            elif mech == "a":
                out += [("A", arg, "addr"), ("AAAA", arg, "addr")]
            elif mech == "mx":
                out.append(("MX", arg, "spf-mx"))
            elif mech == "exists":
                out.append(("A", arg, "addr"))
    elif why == "spf-mx":
        for host in _hosts(answer):
            out += [("A", host, "addr"), ("AAAA", host, "addr")]
    elif why == "mx":  # MX -> each host's addresses (-> PTR with dns.ptr) and TLSA (dns.dane)
        for host in _hosts(answer):
            reason = "mx-addr" if "dns.ptr" in probe_ids else "addr"
            out += [("A", host, reason), ("AAAA", host, reason)]
            if "dns.dane" in probe_ids:
                out.append(("TLSA", f"_25._tcp.{host}", "leaf"))
    elif why == "mx-addr":  # address -> PTR -> the PTR name's addresses (forward-confirmed)
        for ip in answer:
            zone, label = reverse_parts(ip)
            out.append(("PTR", f"{label}.{zone}", "ptr"))
    elif why == "ptr":
        for target in answer:
            t = target.rstrip(".").lower()
            out += [("A", t, "addr"), ("AAAA", t, "addr")]
    elif why == "dmarc":  # each rua/ruf in another domain -> its authorization record
        domain = name.removeprefix("_dmarc.")
        for rec in answer:
            for dest in _RUA_HOST.findall(rec):
                if dest.lower() != domain:
                    out.append(("TXT", f"{domain}._report._dmarc.{dest.lower()}", "leaf"))
    return out


def roots(domain: str, probe_ids: set[str]) -> dict[str, list[Node]]:
    """The first-round questions of each check that the given probes make."""
    checks: dict[str, list[Node]] = {}
    if "dns.spf" in probe_ids:
        checks["spf"] = [("TXT", domain, "spf")]
    if probe_ids & {"dns.mx", "dns.ptr", "dns.dane"}:
        checks["mx/ptr/dane"] = [("MX", domain, "mx")]
    if "dns.dmarc" in probe_ids:
        checks["dmarc"] = [("TXT", f"_dmarc.{domain}", "dmarc")]
    if "dns.dkim" in probe_ids:
        checks["dkim"] = [("TXT", f"{sel}._domainkey.{domain}", "leaf") for sel in SELECTORS]
    if "dns.mta_sts" in probe_ids:
        checks["mta_sts"] = [("TXT", f"_mta-sts.{domain}", "leaf")]
    if "dns.tls_rpt" in probe_ids:
        checks["tls_rpt"] = [("TXT", f"_smtp._tls.{domain}", "leaf")]
    return checks


def walk_rounds(world: World, start: list[Node], probe_ids: set[str]) -> dict[tuple, int]:
    """Question -> the round an ideal cached client asks it in (1 = first)."""
    asked: dict[tuple[str, str], int] = {}
    seen: set[Node] = set()
    current = list(start)
    rnd = 0
    while current:
        rnd += 1
        for rdtype, name, _ in current:
            asked.setdefault((rdtype, name), rnd)
        work, following = list(current), []
        while work:
            node = work.pop()
            if node in seen:
                continue
            seen.add(node)
            for child in expand(world, node, probe_ids):
                # Already asked (this round or before): its answer is in by the round's end.
                (work if child[:2] in asked else following).append(child)
        current = [n for n in following if n not in seen]
    return asked


@dataclass(frozen=True)
class Plan:
    domain: str
    rounds: dict[str, int]  # check -> rounds that check needs on its own
    critical: int  # rounds all checks together need (shared answers counted once)
    needed: int  # distinct questions a complete check asks


def plan_for(world: World, domain: str, probe_ids: Iterable[str]) -> Plan:
    ids = set(probe_ids)
    checks = roots(domain, ids)
    rounds = {name: max(walk_rounds(world, start, ids).values()) for name, start in checks.items()}
    every = walk_rounds(world, [n for start in checks.values() for n in start], ids)
    return Plan(domain, rounds, max(every.values(), default=1), len(every))


# ===== 2. lab and proxy =========================================================================
# --signed: every generated zone is DNSSEC-signed and mailprobe validates against the lab's
# trust anchor (set by run_bench; the CLI path passes it as --trust-anchor).
TRUST_ANCHOR: str | None = None


def start_lab(world: World, started: list, signed: bool = False):
    from probes.lab.lab import Lab
    from probes.lab.spec import DnssecSpec, LabSpec

    spec = LabSpec(
        extra_zones={z: tuple(lines) for z, lines in world.zones.items()},
        dnssec=DnssecSpec(sign_extra_zones=signed),
    )
    lab = Lab(spec)
    started.append(lab)
    lab.start()
    return lab


def wait_zones_loaded(resolver: tuple[str, int], zones: list[str], timeout: float) -> None:
    """Knot loads zones in the background: wait until every zone answers its SOA."""
    import dns.flags
    import dns.message
    import dns.query
    import dns.rcode

    def loaded(zone: str) -> bool:
        q = dns.message.make_query(zone + ".", "SOA")
        try:
            r = dns.query.udp(q, resolver[0], port=resolver[1], timeout=2)
        except Exception:
            return False
        return r.rcode() == dns.rcode.NOERROR and bool(r.flags & dns.flags.AA) and bool(r.answer)

    todo = list(zones)
    deadline = time.monotonic() + timeout
    with ThreadPoolExecutor(max_workers=32) as pool:
        while todo:
            todo = [z for z, ok in zip(todo, pool.map(loaded, todo), strict=True) if not ok]
            if not todo:
                return
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"error: {len(todo)} zones not served by the lab DNS after {timeout:.0f} s"
                    f" (first: {todo[0]})"
                )
            time.sleep(0.5)


def proxy_address(lab) -> str:
    a, b, c, _ = lab.info.resolver_ip.split(".")
    return f"{a}.{b}.{c}.{PROXY_HOST_OCTET}"


# ===== 3a. mailprobe ============================================================================
def dns_probe_classes() -> tuple[dict[str, type], list[str]]:
    """The dns.* probe classes: installed entry points plus any class in probes/checks/dns_*.py
    not registered yet. Returns (classes by id, ids of the unregistered ones)."""
    import probes.checks
    from probes import registry
    from probes.probe import BaseProbe

    installed = {k: v for k, v in registry.load_probes().items() if fnmatch.fnmatch(k, "dns.*")}
    found: dict[str, type] = {}
    for mod in pkgutil.iter_modules(probes.checks.__path__):
        if not mod.name.startswith("dns_"):
            continue
        try:
            module = importlib.import_module(f"probes.checks.{mod.name}")
        except Exception as exc:
            print(f"  (skipping probes.checks.{mod.name}: {type(exc).__name__}: {exc})")
            continue
        for obj in vars(module).values():
            if (
                isinstance(obj, type)
                and issubclass(obj, BaseProbe)
                and obj.__module__ == module.__name__
                and str(getattr(obj, "id", "")).startswith("dns.")
            ):
                found[obj.id] = obj
    unregistered = sorted(set(found) - set(installed))
    return {**found, **installed}, unregistered


@dataclass
class ChildRun:
    wall_s: float
    status: int
    maxrss_mb: float  # the largest single process (wait4's ru_maxrss)
    tree_rss_mb: float  # the largest sum of VmRSS over the child and its descendants (sampled)
    processes: int  # most processes seen at once in the tree
    cpu_s: float  # user + system, the child and its descendants
    stderr_tail: str


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants (from /proc/PID/task/*/children)."""
    seen, todo = [], [pid]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            with contextlib.suppress(OSError, ValueError):
                todo += [int(c) for c in (task / "children").read_text().split()]
    return seen


def _rss_bytes(pid: int) -> int:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def run_child(cmd: list[str], stderr_path: Path, limit_s: float | None = None) -> ChildRun:
    """Run `cmd` in its own process group; return wall time, exit status, CPU and memory.

    Memory: wait4's ru_maxrss (largest single process) and, sampled every 0.1 s, the sum of
    VmRSS over the process tree (mailprobe --processes runs worker processes). On a time-out
    or an interrupt the group is ended: SIGTERM, then SIGKILL after 5 s."""
    peak_tree, most = 0, 0
    with open(stderr_path, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True
        )
        next_sample = 0.0
        try:
            deadline = None if limit_s is None else t0 + limit_s
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                now = time.perf_counter()
                if now >= next_sample:
                    pids = _tree(proc.pid)
                    peak_tree = max(peak_tree, sum(_rss_bytes(p) for p in pids))
                    most = max(most, len(pids))
                    next_sample = now + 0.1
                if deadline is not None and now > deadline:
                    pid, status, usage = _end_group(proc.pid)
                    break
                time.sleep(0.02)
        except BaseException:
            with contextlib.suppress(ChildProcessError):
                _end_group(proc.pid)
            raise
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    tail = stderr_path.read_text(errors="replace").strip().splitlines()[-8:]
    cpu = usage.ru_utime + usage.ru_stime
    return ChildRun(
        wall,
        proc.returncode,
        usage.ru_maxrss * 1024 / MB,
        peak_tree / MB,
        most,
        cpu,
        "\n".join(tail),
    )


def _end_group(pgid: int):
    """End the process group this script started for a child (its id is the child's pid);
    reap the child and return wait4's (pid, status, rusage)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        reaped = os.wait4(pgid, os.WNOHANG)
        if reaped[0]:
            break
        time.sleep(0.1)
    else:
        reaped = None
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)  # workers left behind, or a child that ignored TERM
    return reaped or os.wait4(pgid, 0)


def mailprobe_cmd(
    domains_file: Path,
    resolver: str,
    out_dir: Path,
    concurrency: int,
    via_cli: bool,
    processes: int = 0,
) -> list[str]:
    """The command line of one mailprobe run (`processes` 0: mailprobe's default)."""
    if via_cli:
        # `python -m probes.cli` from ROOT (run_child's cwd): the tree this bench is in is the
        # one measured, whichever venv (or editable install) provides the dependencies.
        cmd = [sys.executable, "-m", "probes.cli", "check", "--domains", str(domains_file)]
        cmd += ["--resolver", resolver, "--probe", "dns.*", "--format", "json", "-q"]
        cmd += ["--output", str(out_dir), "--concurrency", str(concurrency)]
        # a history of its own (stored, as by default), not the tree's reports/history.sqlite
        cmd += ["--history", str(out_dir / "history.sqlite")]
        if TRUST_ANCHOR:
            cmd += ["--trust-anchor", TRUST_ANCHOR]
        if processes:
            cmd += ["--processes", str(processes)]
        for sel in SELECTORS:
            cmd += ["--selector", sel]
        return cmd
    return [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        str(domains_file),
        resolver,
        str(out_dir),
        str(concurrency),
    ]


def worker(domains_file: str, resolver: str, out_dir: str, concurrency: str) -> int:
    """The API path (`audit_domains`) for when the probes are not registered entry points."""
    from probes.audit import audit_domains, read_domains
    from probes.model import Target

    classes, _ = dns_probe_classes()
    domains = read_domains(domains_file)
    template = Target(domain=domains[0], selectors=SELECTORS, resolver=resolver)
    out = Path(out_dir) / "domains.jsonl"
    with open(out, "w", encoding="utf-8") as fh:
        for report in audit_domains(
            domains,
            lambda: [cls() for cls in classes.values()],
            template,
            concurrency=int(concurrency),
        ):
            fh.write(json.dumps(report.to_json(), separators=(",", ":")) + "\n")
    return 0


def read_reports(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# ===== 3b. checkdmarc ===========================================================================
# Run through this wrapper: dnspython's default resolver points at the proxy instead of
# /etc/resolv.conf, and the OS resolver is refused, so no path in checkdmarc can leave 127/8.
CHECKDMARC_WRAPPER = """
import ipaddress, socket, sys
import dns.resolver
PROXY = sys.argv.pop(1)
_init = dns.resolver.Resolver.__init__
def _resolver_init(self, filename="/etc/resolv.conf", configure=True):
    _init(self, filename, configure=False)
    self.nameservers = [PROXY]
dns.resolver.Resolver.__init__ = _resolver_init
dns.resolver.default_resolver = None
_getaddrinfo = socket.getaddrinfo
def _numeric_only(host, *args, **kwargs):
    try:
        ipaddress.ip_address(host)
    except (ValueError, TypeError):
        raise socket.gaierror(socket.EAI_NONAME, "bench: no OS name resolution") from None
    return _getaddrinfo(host, *args, **kwargs)
socket.getaddrinfo = _numeric_only
from checkdmarc._cli import _main
sys.argv[0] = "checkdmarc"
sys.exit(_main())
"""


def ensure_checkdmarc() -> Path:
    python = CHECKDMARC_VENV / "bin" / "python"
    probe = [str(python), "-c", "import checkdmarc, sys; print(checkdmarc.__version__)"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print(f"  installing checkdmarc into {CHECKDMARC_VENV.relative_to(ROOT)} (pip)")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(CHECKDMARC_VENV)], check=True)
    pip = subprocess.run(
        [str(CHECKDMARC_VENV / "bin" / "pip"), "install", "-q", "checkdmarc"],
        capture_output=True,
        text=True,
    )
    if pip.returncode != 0:
        tail = "\n".join(pip.stderr.strip().splitlines()[-5:])
        raise SystemExit(f"error: pip install checkdmarc failed:\n{tail}")
    return python


def checkdmarc_version(python: Path) -> str:
    out = subprocess.run(
        [str(python), "-c", "import checkdmarc; print(checkdmarc.__version__)"],
        capture_output=True,
        text=True,
    )
    return out.stdout.strip() or "?"


# ===== 4. trace of one domain ===================================================================
def trace_domain(
    proxy: DelayProxy, domain: str, warmup: str, resolver: str, via_cli: bool, tmp: Path
) -> None:
    """Run mailprobe on `warmup` then `domain` (concurrency 1, so the process is warm and
    nothing else runs) with the proxy tracing; print the rounds of questions `domain` took."""
    pair = tmp / "trace.txt"
    pair.write_text(f"{warmup}\n{domain}\n")
    out = tmp / "trace-out"
    out.mkdir(exist_ok=True)
    proxy.set_trace(True)
    try:
        run_child(mailprobe_cmd(pair, resolver, out, 1, via_cli, 1), tmp / "trace.err")
    finally:
        entries = proxy.trace()
        proxy.set_trace(False)
    reports = [r for r in read_reports(out / "domains.jsonl") if r["target"]["domain"] == domain]
    took = reports[0]["duration_s"] if reports else float("nan")
    # The warm-up never asks about `domain` itself: its first question starts the trace.
    starts = [e.at for e in entries if e.name == domain]
    entries = [e for e in entries if starts and e.at >= min(starts) - 0.005]
    bursts = list(waves(entries, gap=proxy.delay * 0.5))
    print(
        f"  {domain} alone (after {warmup}): {took * 1000:.0f} ms, {len(entries)} queries"
        f" in {len(bursts)} rounds"
    )
    if not entries:
        return
    t0 = entries[0].at
    for n, burst in enumerate(bursts, 1):
        at = (burst[0].at - t0) * 1000
        names = ", ".join(f"{e.rdtype} {e.name}" for e in burst)
        print(f"    round {n:2d} at {at:6.1f} ms: {len(burst):2d} q  {names}")


# ===== results ==================================================================================
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


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def summarize_mailprobe(
    res: Results,
    reports: list[dict],
    plans: dict[str, Plan],
    delay: float,
    run: ChildRun,
    proxy_counts: ProxyCounts,
    n_domains: int,
    label: str = "",
) -> list[tuple[float, str]]:
    """Print mailprobe's figures; return (ratio, domain) sorted worst first."""
    got = len(reports)
    queries = [r["dns"]["queries"] for r in reports if r.get("dns")]
    # network_queries: what the worker's shared answer cache did not have (older trees: absent)
    network = [
        r["dns"]["network_queries"] for r in reports if "network_queries" in (r["dns"] or {})
    ]
    needed = [plans[r["target"]["domain"]].needed for r in reports]
    ratios = []
    for r in reports:
        plan = plans[r["target"]["domain"]]
        ratios.append((r["duration_s"] / (plan.critical * delay), r["target"]["domain"]))
    ratios.sort(reverse=True)
    values = [x for x, _ in ratios]
    within = sum(1 for x in values if x <= TARGET_CRITICAL)
    crit_ms = [plans[r["target"]["domain"]].critical * delay * 1000 for r in reports]
    durations = [r["duration_s"] * 1000 for r in reports]
    outcomes: dict[str, dict[str, int]] = {}
    for r in reports:
        for pr in r["results"]:
            key = pr.get("probe", "?")
            outcome = pr.get("outcome", "?")
            outcomes.setdefault(key, {}).setdefault(outcome, 0)
            outcomes[key][outcome] += 1
    print(f"  reports {got} of {n_domains}; exit status {run.status}")
    for probe_id in sorted(outcomes):
        parts = ", ".join(f"{k} {v}" for k, v in sorted(outcomes[probe_id].items()))
        print(f"    {probe_id:<12} {parts}")
    codes: dict[str, int] = {}
    for r in reports:
        for pr in r["results"]:
            for code in {f["code"] for f in pr["findings"] if f["severity"] != "info"}:
                codes[code] = codes.get(code, 0) + 1
            if pr.get("error_detail"):
                key = f"{pr['probe']} {pr['outcome']}: {pr['error_detail'][:80]}"
                codes[key] = codes.get(key, 0) + 1
    top = sorted(codes.items(), key=lambda kv: -kv[1])[:8]
    if top:
        print("  warn/fail codes and errors (domains): " + "; ".join(f"{k} {v}" for k, v in top))
    if queries:
        print(
            f"  queries/domain: mean {statistics.mean(queries):.1f} (min {min(queries)}, max"
            f" {max(queries)}); a complete check needs {statistics.mean(needed):.1f} distinct"
            f" questions; proxy saw {proxy_counts.total / max(1, got):.1f}/domain"
            f" ({proxy_counts.tcp} over TCP, {proxy_counts.servfail} SERVFAIL made up)"
        )
    cpu_ms = 1000 * run.cpu_s / max(1, got)
    net_text = f"{statistics.mean(network):.1f}" if network else "not reported"
    print(
        f"  per domain: CPU {cpu_ms:.1f} ms, questions {statistics.mean(queries or [0]):.1f},"
        f" to the network {net_text} (proxy saw {proxy_counts.total / max(1, got):.1f})"
    )
    if durations:
        print(
            f"  per-domain wall: median {statistics.median(durations):.0f} ms, p95"
            f" {pct(durations, 0.95):.0f} ms, max {max(durations):.0f} ms; critical path median"
            f" {statistics.median(crit_ms):.0f} ms (max {max(crit_ms):.0f} ms)"
        )
        print(
            f"  wall / critical path: median {statistics.median(values):.2f}, p95"
            f" {pct(values, 0.95):.2f}, max {max(values):.2f}; within {TARGET_CRITICAL}x:"
            f" {within} of {len(values)} ({100 * within / len(values):.1f} %)"
        )
    res.add(
        f"mailprobe wall time{label}", f"{run.wall_s:.2f} s ({got} domains, CPU {run.cpu_s:.1f} s)"
    )
    if queries:
        res.add(
            f"mailprobe queries/domain{label}",
            f"{statistics.mean(queries):.1f} (needed {statistics.mean(needed):.1f})",
        )
    res.add(f"mailprobe CPU/domain{label}", f"{cpu_ms:.1f} ms")
    res.add(
        f"mailprobe network queries/domain{label}",
        f"{net_text} (proxy saw {proxy_counts.total / max(1, got):.1f})",
    )
    if values:
        res.add(
            f"per-domain p95 / critical path{label}",
            f"{pct(values, 0.95):.2f}x (median {statistics.median(values):.2f}x;"
            f" {100 * within / len(values):.1f} % within {TARGET_CRITICAL}x)",
            f"<= {TARGET_P95:.0f}x",
            pct(values, 0.95) <= TARGET_P95 and got == n_domains,
        )
    rss_target = f"<= {TARGET_RSS_MB:.0f} MB at {TARGET_RSS_DOMAINS} domains"
    # The sampled sum can miss a short peak that ru_maxrss (one process) caught: take the larger.
    peak = max(run.tree_rss_mb, run.maxrss_mb)
    rss_ok = peak <= TARGET_RSS_MB if n_domains >= TARGET_RSS_DOMAINS else None
    res.add(
        f"mailprobe peak RSS{label}",
        f"{peak:.0f} MB ({n_domains} domains; sum over {run.processes} process(es)"
        f" {run.tree_rss_mb:.0f} MB sampled, largest process {run.maxrss_mb:.0f} MB)",
        rss_target,
        rss_ok,
    )
    return ratios


# ===== main =====================================================================================
def port_free(ip: str, port: int) -> str | None:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind((ip, port))
            except OSError as exc:
                return f"{ip}:{port}: {exc.strerror}"
    return None


def run_bench(args: argparse.Namespace, res: Results, started: list, tmp: Path) -> int:
    delay = args.delay_ms / 1000
    print("== probes")
    classes, unregistered = dns_probe_classes()
    if not classes:
        raise SystemExit("error: no dns.* probe classes found (probes/checks/dns_*.py)")
    via_cli = not unregistered
    print(f"  {', '.join(sorted(classes))}")
    if "dns.blocklists" in classes:
        print(
            "  dns.blocklists asks the default public lists (their RFC 5782 test entries, each"
            " MX address): the lab's Knot REFUSES them (DNSBL_UNUSABLE); these questions are"
            " not in the critical-path model below"
        )
    if unregistered:
        print(f"  not registered as entry points: {', '.join(unregistered)}: run through the API")
    else:
        print("  all registered: run through the CLI (mailprobe check --domains)")

    print(f"== generating {args.domains} domains")
    t0 = time.perf_counter()
    world = generate(args.domains, seed=args.seed)
    lines = sum(len(v) for v in world.zones.values())
    print(f"  {len(world.zones)} zones, {lines} records in {time.perf_counter() - t0:.1f} s")
    plans = {d: plan_for(world, d, classes) for d in world.domains}
    crit = [p.critical for p in plans.values()]
    dist = ", ".join(f"{k} rounds: {crit.count(k)}" for k in sorted(set(crit)))
    print(f"  critical path ({dist}); {delay * 1000:.0f} ms per round")
    domains_file = tmp / "domains.txt"
    domains_file.write_text("\n".join(world.domains) + "\n")

    print("== lab")
    t0 = time.perf_counter()
    global TRUST_ANCHOR
    lab = start_lab(world, started, signed=args.signed)
    if args.signed:
        TRUST_ANCHOR = lab.info.trust_anchor
    resolver = (lab.info.resolver_ip, lab.info.resolver_port)
    wait_zones_loaded(resolver, list(world.zones), timeout=max(60.0, args.domains / 50))
    print(
        f"  Knot {lab.info.resolver} serves all {len(world.zones)} zones"
        f" ({time.perf_counter() - t0:.1f} s)"
    )
    proxy_ip = proxy_address(lab)
    busy = port_free(proxy_ip, 53)
    if busy:
        raise SystemExit(f"error: cannot listen for the proxy: {busy}")
    proxy = DelayProxy((proxy_ip, 53), resolver, delay=delay)
    proxy.start()
    started.append(proxy)
    print(f"  proxy {proxy_ip}:53 -> {lab.info.resolver}, {delay * 1000:.0f} ms per query")

    runs: list[tuple[str, ChildRun, int]] = []  # (label, run, reports)
    ratios: list[tuple[float, str]] = []
    # A value given twice runs once (its output directory and label would clash).
    combos = list(dict.fromkeys((p, c) for p in args.processes for c in args.concurrency))
    for processes, concurrency in combos:
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        procs = f"--processes {processes}" if processes else "default --processes"
        print(
            f"== mailprobe, {args.domains} domains, --concurrency {concurrency}, {procs}"
            f" (load {load})"
        )
        out_dir = tmp / f"mailprobe-out-{processes}-{concurrency}"
        out_dir.mkdir(exist_ok=True)
        before = proxy.counts()
        run = run_child(
            mailprobe_cmd(domains_file, proxy_ip, out_dir, concurrency, via_cli, processes),
            tmp / "mailprobe.err",
        )
        mp_counts = proxy.counts() - before
        reports = read_reports(out_dir / "domains.jsonl")
        print(
            f"  {run.wall_s:.2f} s wall, {run.cpu_s:.1f} s CPU, peak RSS {run.tree_rss_mb:.0f} MB"
            f" over {run.processes} process(es) (largest {run.maxrss_mb:.0f} MB)"
        )
        if not reports:
            print(run.stderr_tail)
            raise SystemExit(f"error: mailprobe produced no report (exit status {run.status})")
        label = ""
        if len(combos) > 1:
            label = f" (p={processes or 'default'}, c={concurrency})"
        found = summarize_mailprobe(res, reports, plans, delay, run, mp_counts, args.domains, label)
        ratios = ratios or found
        runs.append((label, run, len(reports)))

    if ratios and not args.no_trace:
        print("== slowest domain against its critical path, traced alone")
        worst = ratios[0][1]
        print(
            f"  {worst}: ratio {ratios[0][0]:.2f} in the run; critical path"
            f" {plans[worst].rounds} rounds, {plans[worst].needed} questions"
        )
        warmup = next(d for d in world.domains if d != worst) if len(world.domains) > 1 else worst
        trace_domain(proxy, worst, warmup, proxy_ip, via_cli, tmp)

    if args.mailprobe_only:
        return 0

    print(f"== checkdmarc over the same {args.checkdmarc_domains or args.domains} domains")
    python = ensure_checkdmarc()
    version = checkdmarc_version(python)
    cd_domains = world.domains[: args.checkdmarc_domains or None]
    cd_file = tmp / "checkdmarc-domains.txt"
    cd_file.write_text("\n".join(cd_domains) + "\n")
    cd_out = tmp / "checkdmarc.json"
    cmd = [
        str(python),
        "-c",
        CHECKDMARC_WRAPPER,
        proxy_ip,
        str(cd_file),
        "--nameserver",
        proxy_ip,
        "--timeout",
        str(args.checkdmarc_timeout),
        "--retries",
        "0",
        "-o",
        str(cd_out),
    ]
    before = proxy.counts()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"  running (load {load}); it checks one domain after another")
    cd_run = run_child(cmd, tmp / "checkdmarc.err", limit_s=args.checkdmarc_limit)
    cd_counts = proxy.counts() - before
    done, data = 0, []
    with contextlib.suppress(Exception):
        data = json.loads(cd_out.read_text())
        data = data if isinstance(data, list) else [data]
        done = len(data)
    print(
        f"  checkdmarc {version}: {cd_run.wall_s:.2f} s wall, exit status {cd_run.status},"
        f" {done} results, peak RSS {cd_run.maxrss_mb:.0f} MB"
    )
    if cd_run.status != 0 or done != len(cd_domains):
        print("  " + cd_run.stderr_tail.replace("\n", "\n  "))
    with contextlib.suppress(Exception):
        valid = {
            key: sum(1 for x in data if (x.get(key) or {}).get("valid") is True)
            for key in ("spf", "dmarc")
        }
        warned = sum(1 for x in data if (x.get("mx") or {}).get("warnings"))
        print(
            f"  valid SPF {valid['spf']}, valid DMARC {valid['dmarc']}, MX warnings {warned}"
            f" (of {done})"
        )
    print(
        f"  queries/domain (proxy): {cd_counts.total / len(cd_domains):.1f}"
        f" ({cd_counts.tcp} over TCP, {cd_counts.servfail} SERVFAIL made up)"
    )
    res.add(f"checkdmarc {version} wall time", f"{cd_run.wall_s:.2f} s ({len(cd_domains)} domains)")
    res.add("checkdmarc queries/domain", f"{cd_counts.total / len(cd_domains):.1f}")
    for label, run, got in runs:
        speedup = (cd_run.wall_s / len(cd_domains)) / (run.wall_s / got)
        scaled = ", per domain: checkdmarc ran a subset" if len(cd_domains) != got else ""
        print(f"  checkdmarc / mailprobe{label} wall time: {speedup:.1f}x{scaled}")
        res.add(
            f"speed-up over checkdmarc{label}",
            f"{speedup:.1f}x{scaled}",
            f">= {TARGET_SPEEDUP:.0f}x",
            speedup >= TARGET_SPEEDUP and cd_run.status == 0 and done == len(cd_domains),
        )
    return 0


def stop_all(started: list) -> None:
    for thing in reversed(started):
        with contextlib.suppress(Exception):
            thing.stop()
    started.clear()


def _terminate(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        return worker(*argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--domains", type=int, default=1000, help="domains to generate (1000)")
    parser.add_argument("--mailprobe-only", action="store_true", help="skip checkdmarc")
    parser.add_argument(
        "--concurrency",
        default="32",
        help="mailprobe --concurrency; a comma-separated list runs mailprobe once for each",
    )
    parser.add_argument(
        "--processes",
        default="0",
        help="mailprobe --processes (0: its default); a list runs each with each concurrency",
    )
    parser.add_argument("--delay-ms", type=float, default=20.0, help="proxy delay per query")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the generator")
    parser.add_argument(
        "--signed",
        action="store_true",
        help="DNSSEC-sign every generated zone and validate against the lab's trust anchor",
    )
    parser.add_argument(
        "--checkdmarc-domains",
        type=int,
        default=0,
        metavar="M",
        help="run checkdmarc on the first M domains only (default: all)",
    )
    parser.add_argument("--checkdmarc-timeout", type=float, default=2.0, help="its DNS timeout")
    parser.add_argument(
        "--checkdmarc-limit",
        type=float,
        default=None,
        metavar="S",
        help="kill checkdmarc after S seconds (default: 3 s per domain)",
    )
    parser.add_argument("--no-trace", action="store_true", help="skip the one-domain trace")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    if args.domains < 1:
        parser.error("--domains must be at least 1")
    try:
        args.concurrency = [int(c) for c in args.concurrency.split(",")]
        args.processes = [int(c) for c in args.processes.split(",")]
    except ValueError:
        parser.error("--concurrency, --processes: integers separated by commas")
    if min(args.concurrency) < 1 or min(args.processes) < 0:
        parser.error("--concurrency: at least 1; --processes: at least 1 (0: mailprobe's default)")
    if args.domains > 60_000:
        parser.error("--domains: at most 60000 (address plan)")
    if args.checkdmarc_limit is None:
        args.checkdmarc_limit = 3.0 * (args.checkdmarc_domains or args.domains) + 60
    if os.geteuid() != 0:
        print("error: the proxy listens on port 53 and the lab needs root", file=sys.stderr)
        return 2

    return guarded(args, run_bench, "mailprobe-dns-audit-", "the proxy and the lab")


def guarded(args, run_bench, prefix: str, what: str) -> int:
    """`run_bench(args, results, started, tmp)` in a work directory, with everything it
    `started` stopped at the end (also on errors, Ctrl-C and SIGTERM) and the figures printed."""
    res = Results()
    started: list = []
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return run_bench(args, res, started, tmp)
    except KeyboardInterrupt:
        print(f"\ninterrupted; stopping {what}")
        return 130
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
            return 1
        raise
    finally:
        stop_all(started)
        signal.signal(signal.SIGTERM, previous)
        if args.keep:
            print(f"work directory kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        res.print_table()


if __name__ == "__main__":
    sys.exit(main())
