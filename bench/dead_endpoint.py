"""Benchmark: `check --probe 'smtp.*'` against a dead SMTP server, the time it costs.

    .venv/bin/python bench/dead_endpoint.py [--connect 2] [--io 2] [--limits 1,2] [--defaults]

One host plays MX and submission host (ports 25, 465 and 587) and is dead in one of two ways:
- silent: it accepts TCP connections and never says a word (tests/hostile_server.py `silent`);
- unanswering: connection attempts get no answer at all (`BlackHole`: a full accept queue).
Every installed smtp.* probe (smtp.mx, smtp.submission, smtp.submissions, smtp.relay,
smtp.swaks) runs against it through `probes.runner.run_report`, as the CLI does, for each
per-host connection limit (`--max-per-host`), with the given connect and I/O timeouts
(`--defaults`: also the default timeouts, connect 10 s and io 30 s: the issue's case). It prints
the wall time, the connections the silent server accepted, and how many probe/endpoint pairs
were answered from the run's memory of dead endpoints ("remembered"), next to the cost the
memory aims at: one timeout per endpoint, at most `limit` endpoints at a time.

The script uses only APIs that predate the memory, so the same file measures an older tree:
    PYTHONPATH=/path/to/old/tree .venv/bin/python bench/dead_endpoint.py
A benchmark, not a test: it prints figures, never asserts. Everything runs on loopback.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import hostile_server as hs

from probes import registry
from probes.model import Outcome, Target, Timeouts
from probes.net import Net
from probes.net.dns import DnsClient, StaticBackend
from probes.runner import run_report

PORTS = (25, 465, 587)
# The hostile server's own hang guard (30 s per read) would close a silent connection at the
# very moment the default I/O timeout ends: here it holds on for longer than any timeout.
hs._PEER_TIMEOUT_S = 600.0
REMEMBERED = "remembered from an earlier attempt"


def run_once(kind: str, connect: float, io: float, limit: int) -> dict[str, object]:
    probes = [cls() for cls in registry.select_probes(registry.load_probes(), ["smtp.*"])]
    dead = hs.HostileServer(hs.silent, ports=PORTS) if kind == "silent" else hs.BlackHole(PORTS)
    with dead:
        target = Target(
            domain="example.test",
            mx_hosts=(dead.host,),
            submission_hosts=(dead.host,),
            timeouts=Timeouts(connect=connect, io=io, probe=max(120.0, 4 * (connect + io))),
        )
        net = Net.for_target(target, dns_client=DnsClient(StaticBackend({})), max_per_host=limit)
        t0 = time.perf_counter()
        report = run_report(probes, target, net)
        wall = time.perf_counter() - t0
    texts = [r.error_detail or "" for r in report.results] + [
        f.evidence.get(key, "")
        for r in report.results
        for f in r.findings
        for key in ("detail", "remembered")
    ]
    per_endpoint = io if kind == "silent" else connect
    return {
        "wall": wall,
        "accepted": getattr(dead, "accepted", None),
        "remembered": sum(t.count(REMEMBERED) for t in texts),
        "aim": math.ceil(len(PORTS) / limit) * per_endpoint,
        "outcomes": " ".join(
            f"{r.probe_id.removeprefix('smtp.')}={r.outcome.value[0]}"
            + (f"/{r.error.value}" if r.error else "")
            for r in report.results
            if r.outcome is not Outcome.SKIPPED or r.probe_id != "smtp.swaks"
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connect", type=float, default=2.0)
    parser.add_argument("--io", type=float, default=2.0)
    parser.add_argument("--limits", default="1,2")
    parser.add_argument("--defaults", action="store_true", help="also connect 10 s / io 30 s")
    args = parser.parse_args()
    import probes

    print(f"tree: {Path(probes.__file__).resolve().parent.parent}")
    settings = [(args.connect, args.io)] + ([(10.0, 30.0)] if args.defaults else [])
    header = f"{'server':12} {'connect/io':>10} {'limit':>5} {'wall s':>7} {'aim s':>6} "
    print(header + f"{'conns':>5} {'remembered':>10}  outcomes")
    for connect, io in settings:
        for kind in ("silent", "unanswering"):
            for limit in (int(x) for x in args.limits.split(",")):
                row = run_once(kind, connect, io, limit)
                conns = "-" if row["accepted"] is None else str(row["accepted"])
                print(
                    f"{kind:12} {f'{connect:g}/{io:g}':>10} {limit:>5} {row['wall']:>7.1f} "
                    f"{row['aim']:>6.0f} {conns:>5} {row['remembered']:>10}  {row['outcomes']}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
