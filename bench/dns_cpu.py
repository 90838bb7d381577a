"""Benchmark: the CPU one domain's DNS audit costs, in process, over real DNS on loopback.

    .venv/bin/python bench/dns_cpu.py [--domains 200] [--concurrency 16] [--profile N]
        [--probe GLOB] [--no-shared]

Generates the world of bench/dns_audit.py (N domains, providers, collectors), serves it from
a small UDP server in a process of its own (its CPU is not counted), and audits the domains
with `probes.audit.audit_domains` (the dns.* probes, one process, the door's wire path with
dnspython), as `check --domains` does in each worker. Prints CPU per domain (this process,
all threads), questions and network questions per domain. `--profile N` profiles every
thread (yappi when importable, else cProfile per thread) and prints the N functions with the
most CPU of their own. `--no-shared` audits with a door of its own per domain and no shared
answer cache (what a worker did before issue 17). No lab, no root, no proxy: a CPU figure,
not a wall-time one. A benchmark: it prints, never asserts.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import fnmatch
import io
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

SERVER = """
import json, socket, sys, threading
sys.path.insert(0, "bench")
import dns.flags, dns.message, dns.rcode, dns.rrset
from probes.net.dns import DNSSEC_TYPES, EDNS_PAYLOAD
from probes.net.dns_wire import build_query
records = {tuple(k.split("|")): v for k, v in json.load(open(sys.argv[1])).items()}
delay = float(sys.argv[2])
names = {name for name, _ in records}

def reply_for(query):
    q = dns.message.from_wire(query)
    question = q.question[0]
    name = question.name.to_text(omit_final_dot=True).lower()
    rdtype = dns.rdatatype.to_text(question.rdtype)
    reply = dns.message.make_response(q)
    reply.flags |= dns.flags.RA
    if name not in names:
        reply.set_rcode(dns.rcode.NXDOMAIN)
    for text in records.get((name, rdtype), []):
        reply.answer.append(dns.rrset.from_text(name + ".", 300, "IN", rdtype, text))
    return reply.to_wire()

# Every known question's reply made beforehand (the ID patched in per query), so that the
# server answers in microseconds and never queues: the audit's latency is the audit's own.
ready = {}
for name, rdtype in records:
    wire = build_query(0, name, rdtype, dnssec=rdtype in DNSSEC_TYPES, payload=EDNS_PAYLOAD)
    if wire is not None:
        ready[wire[2:]] = reply_for(wire)[2:]
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", 0))

def serve():
    while True:
        data, peer = sock.recvfrom(4096)
        known = ready.get(data[2:])
        try:
            sock.sendto(data[:2] + known if known else reply_for(data), peer)
        except Exception:
            pass

threading.Thread(target=serve, daemon=True).start()
address = "127.0.0.1:%d" % sock.getsockname()[1]
if delay <= 0:
    print(address, flush=True)
    sys.stdin.read()
else:
    from dnsproxy import DelayProxy
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    proxy = DelayProxy(("127.0.0.1", port), sock.getsockname(), delay=delay).start()
    print(f"127.0.0.1:{port}", flush=True)
    sys.stdin.read()
    proxy.stop()
"""


def serve(world, delay: float = 0.0) -> tuple[subprocess.Popen, str]:
    from probes.lab.zones import txt_rdata

    records: dict[str, list[str]] = {}
    for (name, rdtype), values in world.records.items():
        texts = [txt_rdata(v) if rdtype == "TXT" else v for v in values]
        records[f"{name}|{rdtype}"] = texts
    fd, path = tempfile.mkstemp(suffix=".json")
    with os.fdopen(fd, "w") as fh:
        json.dump(records, fh)
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, path, str(delay)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    address = proc.stdout.readline().strip()
    os.unlink(path)
    if not address:
        raise SystemExit("error: the loopback DNS server did not start")
    return proc, address


class ThreadProfiles:
    """cProfile in every thread started while active (cProfile alone sees one thread)."""

    def __init__(self) -> None:
        self.profiles: list[cProfile.Profile] = []
        self.main = cProfile.Profile()

    def _start(self, *_: object) -> None:
        profile = cProfile.Profile()
        self.profiles.append(profile)
        profile.enable()  # replaces this hook in the thread

    def __enter__(self) -> ThreadProfiles:
        threading.setprofile(self._start)
        self.main.enable()
        return self

    def __exit__(self, *exc: object) -> None:
        self.main.disable()
        threading.setprofile(None)

    def stats(self) -> pstats.Stats:
        out = pstats.Stats(self.main)
        for profile in self.profiles:
            with contextlib.suppress(TypeError, ValueError):
                out.add(profile)
        return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--domains", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--probe", default="dns.*", help="probe ids (glob)")
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    parser.add_argument("--no-shared", action="store_true", help="no shared answer cache")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--delay-ms",
        type=float,
        default=0.0,
        help="answer each query after this delay (bench/dnsproxy.py in the server's process),"
        " and print each domain's wall time against its critical path",
    )
    parser.add_argument(
        "--switch-interval", type=float, default=0.0, help="sys.setswitchinterval (s) first"
    )
    args = parser.parse_args()
    if args.switch_interval > 0:
        sys.setswitchinterval(args.switch_interval)

    import dns_audit

    from probes import registry
    from probes.audit import audit_domains
    from probes.model import Target

    installed = sorted(registry.load_probes().items())
    classes = [cls for pid, cls in installed if fnmatch.fnmatch(pid, args.probe)]
    world = dns_audit.generate(args.domains, seed=args.seed)
    server, address = serve(world, args.delay_ms / 1000)
    try:
        if args.no_shared:
            import probes.audit as audit_module
            from probes.net import dns as dns_module

            real = dns_module.client_for

            def unshared(*a, **kw):
                kw.pop("shared", None)
                return real(*a, **kw)

            audit_module.client_for = unshared  # type: ignore[assignment]
        template = Target(domain=world.domains[0], selectors=dns_audit.SELECTORS, resolver=address)
        # warm-up: imports and the probes' first-use work are not a domain's cost
        list(audit_domains(world.domains[:2], lambda: [c() for c in classes], template))
        with contextlib.suppress(ImportError):  # a tree before issue 17 has no shared cache
            from probes.net.answer_cache import shared_answers

            shared_answers().clear()
        profiler: contextlib.AbstractContextManager = contextlib.nullcontext()
        yappi = None
        if args.profile:
            try:
                import yappi  # type: ignore[import-not-found,no-redef]
            except ImportError:
                profiler = ThreadProfiles()
        if yappi is not None:
            yappi.set_clock_type("cpu")
            yappi.start()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        with profiler:
            reports = list(
                audit_domains(
                    world.domains,
                    lambda: [c() for c in classes],
                    template,
                    concurrency=args.concurrency,
                )
            )
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        if yappi is not None:
            yappi.stop()
    finally:
        with contextlib.suppress(Exception):
            assert server.stdin is not None
            server.stdin.close()
        server.wait(10)
    n = len(reports)
    queries = [r.dns["queries"] for r in reports if r.dns]
    network = [r.dns.get("network_queries", r.dns["queries"]) for r in reports if r.dns]
    findings = sum(len(res.findings) for r in reports for res in r.results)
    print(
        f"{n} domains, probes {', '.join(c.id for c in classes)}; concurrency"
        f" {args.concurrency}{'; no shared cache' if args.no_shared else ''}"
    )
    print(
        f"  CPU {1000 * cpu / n:.2f} ms/domain ({cpu:.2f} s), wall {wall:.2f} s;"
        f" questions {statistics.mean(queries):.1f}/domain, to the network"
        f" {statistics.mean(network):.1f}/domain; findings {findings / n:.1f}/domain"
    )
    if args.delay_ms > 0:
        ids = {c.id for c in classes}
        ratios = sorted(
            r.duration_s
            / (dns_audit.plan_for(world, r.target.domain, ids).critical * args.delay_ms / 1000)
            for r in reports
        )
        durations = sorted(r.duration_s * 1000 for r in reports)
        print(
            f"  per-domain wall median {statistics.median(durations):.0f} ms, p95"
            f" {dns_audit.pct(durations, 0.95):.0f} ms; / critical path median"
            f" {statistics.median(ratios):.2f}, p95 {dns_audit.pct(ratios, 0.95):.2f}"
        )
    if yappi is not None:
        stats = yappi.get_func_stats()
        stats.sort("tsub")
        out = io.StringIO()
        stats.print_all(
            out=out,
            columns={
                0: ("name", 70),
                1: ("ncall", 10),
                2: ("tsub", 8),
                3: ("ttot", 8),
                4: ("tavg", 8),
            },
        )
        print("\n".join(out.getvalue().splitlines()[: args.profile + 4]))
    elif isinstance(profiler, ThreadProfiles):
        profiler.stats().sort_stats("tottime").print_stats(args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
