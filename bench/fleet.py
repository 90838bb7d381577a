"""Benchmark: N domains over M shared mail hosts, on a Dask cluster of 1, then 2 workers.

    .venv/bin/python bench/fleet.py [--domains 20000] [--mx-hosts 200] [--per-zone 100]
        [--workers 1,2] [--concurrency 32] [--max-per-host 2] [--upstream-limit 16]
        [--run-limit S] [--dask-profiler] [--zones-only] [--keep]

1. Generates N domains over M mail hosts (bench/fleet_world.py): domain i uses host i % M
   for its MX and its RFC 6186 submission/IMAP/POP3 SRV records; SPF, DMARC and a DKIM key.
   The lab's Knot serves them (LabSpec.extra_zones; by default as names inside parent zones
   of --per-zone domains; --per-zone 1: a zone per domain, only a little slower to load).
2. Each mail host name resolves to its own loopback address (127.30.x.y), where a counting
   forwarder (bench/fleet_forward.py) listens on 25, 587, 465 (to the lab's MTA) and 143,
   993, 110, 995 (to its Dovecot). Every address is in 127.0.0.0/8; nothing public is asked.
3. A baseline: one domain alone (`mailprobe check DOMAIN`), the connections one probe set
   makes to one endpoint.
4. For each --workers count, a real Dask cluster on loopback (`dask scheduler`, `dask
   worker`s: separate processes, tests/dask_cluster.py) and `mailprobe check --domains FILE
   --scheduler ...` with the fleet probe set (FLEET_PROBES), in a subprocess. It prints wall
   time, domains/s, per worker, CPU and peak memory (the client from wait4, the scheduler
   and workers from /proc), connections per endpoint against the baseline (each endpoint
   must get exactly one probe set per run), the most connections open at once per endpoint
   against --max-per-host, the run's own count of conversations had and replayed, and
   whether the findings agree between the runs. Then the scaling factor.

A benchmark, not a test: it prints figures and compares them with targets, never asserts.
The lab, the forwarders and the clusters are stopped at the end, also on errors and Ctrl-C
(each by what this script started: the lab's containers, the cluster's process groups).
See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT / "tests"))

from dns_audit import (  # noqa: E402
    MB,
    ChildRun,
    Results,
    _tree,
    guarded,
    read_reports,
    rsa_public_keys,
    run_child,
    start_lab,
    wait_zones_loaded,
)
from fleet_forward import FleetForwarder  # noqa: E402
from fleet_world import SELECTOR, SERVICES, SMTP_PORTS, FleetWorld, generate, host_name  # noqa: E402

# The probe set that makes sense for a fleet: every DNS probe, the HTTPS ones (they fetch only
# when the domain publishes MTA-STS / BIMI, which these do not), and the transport probes that
# talk to an endpoint the same way for every domain. Left out: message.* (they send and read
# back a message: a mailbox and its login per domain) and smtp.swaks (its RCPT is the domain's
# own postmaster, so its conversation differs per domain and cannot be replayed).
FLEET_PROBES = (
    "dns.*",
    "https.*",
    "smtp.mx",
    "smtp.relay",
    "smtp.submission",
    "smtp.submissions",
    "imap.*",
    "pop3.*",
)
# domains/s of the whole run: the "about 30 domains per second" of a local run of the
# DNS probes alone on this 2-core machine; here with the transport probes too, on the cluster
TARGET_RATE = 30.0
TARGET_SCALING = 1.5  # 2 workers vs 1 on 2 cores that also run the client, the lab, the forwarders
CLK_TCK = os.sysconf("SC_CLK_TCK")
# Dask's worker samples every thread's stack every 10 ms (sys._current_frames). On CPython
# before 3.11.9 that can deadlock the worker for good (lock order of the GIL and the runtime's
# thread-list lock, python/cpython#106883, fixed in 3.11.9 and 3.12.3), and a worker running
# 32 domains holds some 400 threads: seen here on 3.11.7 after 256 of 2,000 domains. The bench
# starts its workers without the profiler unless --dask-profiler.
NO_PROFILER = {"DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False"}
SUMMARY = re.compile(
    r"server conversations: (?P<had>\d+) had, (?P<replayed>\d+) replayed"
    r"(?:.*?; (?P<diverged>\d+) replays went another way)?"
)


# ----- processes we started: CPU and memory from /proc ------------------------------------------
def cpu_s(pids: list[int]) -> float:
    """user + system CPU seconds of these processes and their descendants (so far)."""
    total = 0.0
    for pid in {p for root in pids for p in _tree(root)}:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total


def hwm_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / MB
    except (OSError, ValueError):
        pass
    return 0.0


# ----- one mailprobe run ------------------------------------------------------------------------
@dataclass
class FleetRun:
    label: str
    workers: int
    run: ChildRun
    reports: list[dict]
    counts: dict[str, dict[int, int]]  # endpoint address -> port -> connections
    peaks: dict[str, int]
    had: int | None
    replayed: int | None
    diverged: int
    cluster_cpu_s: float = 0.0
    scheduler_mb: float = 0.0
    worker_mb: tuple[float, ...] = ()
    gate_wait_p95_s: float = 0.0
    upstream_peak: dict[str, int] | None = None


def mailprobe_cmd(lab, args: argparse.Namespace, out: Path, target: list[str]) -> list[str]:
    info = lab.info
    cmd = [str(ROOT / ".venv" / "bin" / "mailprobe"), "check", *target]
    cmd += ["--resolver", info.resolver, "--ca-file", info.ca_file, "--selector", SELECTOR]
    if info.trust_anchor:
        cmd += ["--trust-anchor", info.trust_anchor]
    for zone in info.dnsbls:
        cmd += ["--dnsbl", zone]
    for zone in info.domain_blocklists:
        cmd += ["--domain-blocklist", zone]
    for probe in FLEET_PROBES:
        cmd += ["--probe", probe]
    cmd += ["--max-per-host", str(args.max_per_host), "--concurrency", str(args.concurrency)]
    # default format (text): stderr gets the summary lines; domains.jsonl is written anyway
    cmd += ["--output", str(out), "--no-history"]
    return cmd


def run_fleet(
    label: str,
    workers: int,
    cmd: list[str],
    fwd: FleetForwarder,
    tmp: Path,
    cluster=None,
    limit_s: float | None = None,
) -> FleetRun:
    pids = [] if cluster is None else [cluster.scheduler.pid, *(w.pid for w in cluster.workers)]
    cpu0 = cpu_s(pids)
    fwd.reset()
    err = tmp / f"{label}.err"
    run = run_child(cmd, err, limit_s=limit_s)
    if limit_s is not None and run.wall_s >= limit_s:
        print(f"  stopped after {limit_s:.0f} s (--run-limit): the run did not finish")
    out = Path(cmd[cmd.index("--output") + 1])
    text = err.read_text(errors="replace")
    found = SUMMARY.search(text)
    reports = read_reports(out / "domains.jsonl")
    if not reports:  # one domain alone: its report.json
        reports = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))[:1]]
    if not reports and found is None:
        print(
            f"  no reports (exit status {run.status}):\n    "
            + run.stderr_tail.replace("\n", "\n    ")
        )
    waits = sorted(fwd.waits)
    result = FleetRun(
        label,
        workers,
        run,
        reports,
        {ip: fwd.counts_of(ip) for ip in fwd.routes},
        fwd.peaks(),
        int(found["had"]) if found else None,
        int(found["replayed"]) if found else None,
        int(found["diverged"] or 0) if found else 0,
        gate_wait_p95_s=waits[int(0.95 * (len(waits) - 1))] if waits else 0.0,
        upstream_peak=dict(fwd.upstream_peak),
    )
    if cluster is not None:
        result.cluster_cpu_s = cpu_s(pids) - cpu0
        result.scheduler_mb = hwm_mb(cluster.scheduler.pid)
        result.worker_mb = tuple(hwm_mb(w.pid) for w in cluster.workers)
    return result


# ----- figures ----------------------------------------------------------------------------------
def outcomes(reports: list[dict]) -> dict[str, Counter]:
    out: dict[str, Counter] = {}
    for r in reports:
        for pr in r["results"]:
            out.setdefault(pr["probe"], Counter())[pr["outcome"]] += 1
    return out


def codes(reports: list[dict]) -> Counter:
    """(probe, warn/fail code or error) -> domains; the domains' own names taken out."""
    out: Counter = Counter()
    for r in reports:
        name = r["target"]["domain"]
        for pr in r["results"]:
            for code in {f["code"] for f in pr["findings"] if f["severity"] != "info"}:
                out[f"{pr['probe']} {code}"] += 1
            if pr["outcome"] == "ERROR":
                detail = (pr.get("error_detail") or "?").replace(name, "DOMAIN")
                out[f"{pr['probe']} ERROR {detail[:90]}"] += 1
    return out


def verdicts(reports: list[dict]) -> dict[str, frozenset]:
    """domain -> {(probe, outcome, code, severity)}: what must not depend on the run."""
    return {
        r["target"]["domain"]: frozenset(
            (pr["probe"], pr["outcome"], f["code"], f["severity"])
            for pr in r["results"]
            for f in pr["findings"] or [{"code": "", "severity": ""}]
        )
        for r in reports
    }


def print_run(
    res: Results,
    fr: FleetRun,
    world: FleetWorld,
    baseline: dict[int, int],
    args: argparse.Namespace,
) -> None:
    n = len(world.domains)
    run = fr.run
    rate = len(fr.reports) / run.wall_s if run.wall_s else 0.0
    print(
        f"  {run.wall_s:.1f} s wall, {len(fr.reports)} of {n} reports, exit status {run.status};"
        f" {rate:.1f} domains/s, {rate / fr.workers:.1f} per worker"
    )
    client_mb = max(run.tree_rss_mb, run.maxrss_mb)
    total_cpu = run.cpu_s + fr.cluster_cpu_s
    per_domain_ms = 1000 * total_cpu / max(1, len(fr.reports))
    print(
        f"  CPU: client {run.cpu_s:.1f} s, scheduler + workers {fr.cluster_cpu_s:.1f} s"
        f" ({per_domain_ms:.1f} ms per domain in all); peak RSS: client {client_mb:.0f} MB,"
        f" scheduler {fr.scheduler_mb:.0f} MB, workers "
        + " / ".join(f"{m:.0f}" for m in fr.worker_mb)
        + " MB"
    )
    for probe, counted in sorted(outcomes(fr.reports).items()):
        print(f"    {probe:<17} " + ", ".join(f"{k} {v}" for k, v in sorted(counted.items())))
    top = codes(fr.reports).most_common(12)
    if top:
        print("  warn/fail codes and errors (domains):")
        for what, count in top:
            print(f"    {count:6d}  {what}")
    # Connections per endpoint against the baseline's one probe set.
    used = sorted({world.host_of[d] for d in world.domains})
    exact, off = 0, []
    totals = []
    for k in used:
        ip = world.hosts[k]
        got = fr.counts[ip]
        totals.append(sum(got.values()))
        if got == baseline:
            exact += 1
        else:
            off.append((host_name(k), got))
    base_total = sum(baseline.values())
    print(
        f"  connections per endpoint (address): min {min(totals)}, median"
        f" {statistics.median(totals):g}, max {max(totals)}; one probe set = {base_total}"
        f" ({_ports(baseline)}); exactly one probe set: {exact} of {len(used)} endpoints"
    )
    for name, got in off[:5]:
        print(f"    {name}: {_ports(got)}")
    most = max(fr.peaks[world.hosts[k]] for k in used)
    over = sum(1 for k in used if fr.peaks[world.hosts[k]] > args.max_per_host)
    lab = ", ".join(f"{ip} {n}" for ip, n in sorted((fr.upstream_peak or {}).items()))
    print(
        f"  most connections open at once per endpoint: {most} (--max-per-host"
        f" {args.max_per_host}; endpoints over it: {over}); forwarders to the lab at once: {lab}"
        f" (gate {args.upstream_limit} per lab address; p95 wait"
        f" {fr.gate_wait_p95_s * 1000:.0f} ms)"
    )
    total = sum(totals)
    if fr.had is not None:
        print(
            f"  mailprobe: server conversations {fr.had} had, {fr.replayed} replayed,"
            f" {fr.diverged} diverged; the forwarders saw {total} connections"
        )
    else:
        print(f"  (no 'server conversations' line on stderr); the forwarders saw {total}")
    label = f" ({fr.label})"
    res.add(
        f"wall time{label}",
        f"{run.wall_s:.1f} s, {rate:.1f} domains/s, {rate / fr.workers:.1f}/s per worker",
        f">= {TARGET_RATE:g} domains/s",
        rate >= TARGET_RATE and len(fr.reports) == n,
    )
    res.add(
        f"CPU per domain{label}",
        f"{per_domain_ms:.1f} ms (client {run.cpu_s:.0f} s, cluster {fr.cluster_cpu_s:.0f} s)",
    )
    res.add(
        f"peak RSS{label}",
        f"client {client_mb:.0f} MB, scheduler {fr.scheduler_mb:.0f} MB, worker(s) "
        + "/".join(f"{m:.0f}" for m in fr.worker_mb)
        + " MB",
    )
    res.add(
        f"endpoints with exactly one probe set{label}",
        f"{exact} of {len(used)} ({base_total} connections each; {total} in all)",
        "all",
        exact == len(used),
    )
    res.add(
        f"most connections at once per endpoint{label}",
        str(most),
        f"<= {args.max_per_host}",
        most <= args.max_per_host,
    )
    res.add(
        f"replays that diverged{label}",
        "?" if fr.had is None else str(fr.diverged),
        "0",
        None if fr.had is None else fr.diverged == 0,
    )


def _ports(counts: dict[int, int]) -> str:
    return ", ".join(f"{port}: {n}" for port, n in sorted(counts.items()))


# ----- main -------------------------------------------------------------------------------------
def run_bench(args: argparse.Namespace, res: Results, started: list, tmp: Path) -> int:
    from dask_cluster import DaskCluster

    print(f"== generating {args.domains} domains over {args.mx_hosts} mail hosts")
    t0 = time.perf_counter()
    world = generate(args.domains, args.mx_hosts, rsa_public_keys(1)[0], per_zone=args.per_zone)
    records = sum(len(v) for v in world.zones.values())
    per_host = Counter(world.host_of.values())
    print(
        f"  {len(world.zones)} zones, {records} records, {len(world.hosts)} mail hosts"
        f" ({min(per_host.values())}-{max(per_host.values())} domains each)"
        f" in {time.perf_counter() - t0:.1f} s"
    )
    domains_file = tmp / "domains.txt"
    domains_file.write_text("\n".join(world.domains) + "\n")

    print("== lab")
    t0 = time.perf_counter()
    lab = start_lab(world, started)  # type: ignore[arg-type]  # it reads .zones only
    started_s = time.perf_counter() - t0
    info = lab.info
    wait_zones_loaded(
        (info.resolver_ip, info.resolver_port),
        list(world.zones),
        timeout=max(120.0, args.domains / 20),
    )
    load_s = time.perf_counter() - t0
    print(
        f"  {info.mta}+{info.mailbox_front}, Knot {info.resolver} serves all {len(world.zones)}"
        f" zones: started in {started_s:.1f} s, zones loaded at {load_s:.1f} s"
    )
    if args.zones_only:
        res.add("lab start + zones loaded", f"{load_s:.1f} s ({len(world.zones)} zones)")
        return 0
    res.add(
        "lab start + zones loaded", f"{load_s:.1f} s ({len(world.zones)} zones, {records} records)"
    )

    routes = {
        ip: {
            port: (info.hosts["mx" if port in SMTP_PORTS else "mailbox"], info.ports[name])
            for port, _, name in SERVICES
        }
        for ip in world.hosts
    }
    fwd = FleetForwarder(routes, upstream_limit=args.upstream_limit).start()
    started.append(fwd)
    print(
        f"  forwarders: {len(world.hosts)} addresses x {len(SERVICES)} ports"
        f" -> mx {info.hosts['mx']}, mailbox {info.hosts['mailbox']}"
    )

    print(f"== baseline: {world.domains[0]} alone (one probe set against {host_name(0)})")
    out = tmp / "baseline"
    base = run_fleet("baseline", 1, mailprobe_cmd(lab, args, out, [world.domains[0]]), fwd, tmp)
    baseline = base.counts[world.hosts[0]]
    others = sum(sum(c.values()) for ip, c in base.counts.items() if ip != world.hosts[0])
    print(
        f"  {base.run.wall_s:.1f} s, exit status {base.run.status}: {sum(baseline.values())}"
        f" connections ({_ports(baseline)}); to other endpoints: {others}"
    )
    for probe, counted in sorted(outcomes(base.reports).items()):
        print(f"    {probe:<17} " + ", ".join(f"{k} {v}" for k, v in sorted(counted.items())))
    res.add(
        "one probe set (one domain alone)",
        f"{sum(baseline.values())} connections ({_ports(baseline)})",
    )

    runs: list[FleetRun] = []
    for workers in args.workers:
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"== {args.domains} domains on a Dask cluster of {workers} worker(s) (load {load})")
        ctmp = tmp / f"cluster{workers}"
        ctmp.mkdir()
        cluster = DaskCluster(workers, worker_env={} if args.dask_profiler else NO_PROFILER)
        started.append(cluster)
        t0 = time.perf_counter()
        cluster.start(ctmp)
        print(
            f"  scheduler {cluster.address} and {workers} worker(s) up in"
            f" {time.perf_counter() - t0:.1f} s"
        )
        cmd = mailprobe_cmd(lab, args, tmp / f"out-{workers}", ["--domains", str(domains_file)])
        cmd += ["--scheduler", cluster.address]
        label = f"{workers} worker{'s' if workers > 1 else ''}"
        fr = run_fleet(label, workers, cmd, fwd, tmp, cluster, limit_s=args.run_limit)
        cluster.stop()
        started.remove(cluster)
        print_run(res, fr, world, baseline, args)
        runs.append(fr)

    if len(runs) >= 2:
        print("== comparison")
        first, *rest = runs
        mine = verdicts(first.reports)
        for other in rest:
            theirs = verdicts(other.reports)
            differ = [d for d in mine if theirs.get(d) != mine[d]]
            print(f"  findings of {other.label} vs {first.label}: {len(differ)} domains differ")
            for d in differ[:3]:
                print(
                    f"    {d}: only in {first.label} {sorted(mine[d] - theirs.get(d, set()))[:4]};"
                    f" only in {other.label} {sorted(theirs.get(d, set()) - mine[d])[:4]}"
                )
            factor = first.run.wall_s / other.run.wall_s
            ideal = other.workers / first.workers
            print(f"  scaling {other.label} vs {first.label}: {factor:.2f}x (ideal {ideal:g}x)")
            res.add(
                f"findings {other.label} = {first.label}",
                f"{len(differ)} domains differ",
                "0",
                not differ,
            )
            res.add(
                f"scaling {other.label} vs {first.label}",
                f"{factor:.2f}x (ideal {ideal:g}x; 2 cores in all)",
                f">= {TARGET_SCALING:g}x",
                factor >= TARGET_SCALING,
            )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--domains", type=int, default=20_000, help="domains to generate (20000)")
    parser.add_argument("--mx-hosts", type=int, default=200, help="shared mail hosts (200)")
    parser.add_argument(
        "--per-zone",
        type=int,
        default=100,
        help="domains per parent zone (100); 1: a zone per domain",
    )
    parser.add_argument("--workers", default="1,2", help="cluster sizes to run, in order (1,2)")
    parser.add_argument("--concurrency", type=int, default=32, help="mailprobe --concurrency")
    parser.add_argument("--max-per-host", type=int, default=2, help="mailprobe --max-per-host")
    parser.add_argument(
        "--upstream-limit",
        type=int,
        default=16,
        help="connections at once from the forwarders to the lab's MTA (and to its Dovecot)",
    )
    parser.add_argument(
        "--dask-profiler",
        action="store_true",
        help="leave the Dask workers' statistical profiler on (off by default: see NO_PROFILER)",
    )
    parser.add_argument(
        "--run-limit",
        type=float,
        default=None,
        metavar="S",
        help="stop a fleet run after S seconds (default: 300 + 0.5 s per domain)",
    )
    parser.add_argument(
        "--zones-only", action="store_true", help="stop once Knot serves the zones (load time)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    try:
        args.workers = [int(w) for w in args.workers.split(",")]
    except ValueError:
        parser.error("--workers: integers separated by commas")
    if args.domains < 1 or args.mx_hosts < 1 or min(args.workers) < 1 or args.per_zone < 1:
        parser.error("--domains, --mx-hosts, --workers, --per-zone: at least 1")
    if os.geteuid() != 0:
        print(
            "error: the forwarders listen on ports below 1024 and the lab needs root",
            file=sys.stderr,
        )
        return 2

    return guarded(args, run_bench, "mailprobe-fleet-", "the clusters, the forwarders and the lab")


if __name__ == "__main__":
    sys.exit(main())
