"""What DNSSEC validation costs per domain, in process: questions added and CPU time.

N domains, each its own zone signed with dnspython (ECDSA P-256, as the lab), delegated with
DS from a signed `test.` zone that is the trust anchor; answers come through the real door
(probes.net.dns.DnsClient over tests/signed_zones.ZoneBackend, which builds real replies).
For each domain it asks what the DNS probes ask of DNSSEC's zones (the MX set and the MX
host's TLSA) with and without validation, and reports:

- the questions validation adds per domain (DS and DNSKEY of the domain's zone; the parent's
  DNSKEY once per run),
- the CPU time per domain of validation (signature checks dominate), next to the 42-52 ms of
  CPU a domain costs the whole DNS audit (docs/dns.md "Speed"): the audit is CPU-bound, so
  this ratio estimates the wall-time cost.

    .venv/bin/python bench/dnssec_cost.py [--domains 1000]

Not the 1,000-domain wire benchmark with signed zones (bench/dns_audit.py does not sign its
zones yet): no network delay here, so it measures CPU and question counts only.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from signed_zones import ZoneBackend, build_zone, ds_text, make_key, sign

from probes.net.dns import DnsClient
from probes.net.dnssec import Validator
from probes.parse.trust_anchor import parse_trust_anchor

AUDIT_CPU_MS = (42.0, 52.0)  # per domain, docs/dns.md


def world(n: int):
    parent_key = make_key()
    children, delegations = [], []
    for i in range(n):
        name = f"d{i}.test"
        key = make_key()
        zone = build_zone(
            name,
            f"@ 300 IN MX 10 mx.{name}.\nmx 300 IN A 127.0.0.1\n"
            f"_25._tcp.mx 300 IN TLSA 3 1 1 {'ab' * 32}\n",
        )
        sign(zone, key)
        children.append(zone)
        delegations.append(f"d{i} 300 IN NS ns.{name}.\nd{i} 300 IN DS {ds_text(name, key[1])}\n")
    parent = build_zone("test", "".join(delegations))
    sign(parent, parent_key)
    anchor = parse_trust_anchor(f"test. IN DS {ds_text('test', parent_key[1])}", "bench")
    return [parent, *children], anchor


def questions(i: int) -> list[tuple[str, str]]:
    return [(f"d{i}.test", "MX"), (f"_25._tcp.mx.d{i}.test", "TLSA")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--domains", type=int, default=1000)
    args = parser.parse_args(argv)
    n = args.domains
    t0 = time.perf_counter()
    zones, anchor = world(n)
    print(f"built and signed {n + 1} zones in {time.perf_counter() - t0:.1f} s")

    plain = DnsClient(ZoneBackend(zones))
    t0 = time.process_time()
    for i in range(n):
        plain.query_many(questions(i))
    base_cpu = time.process_time() - t0

    client = DnsClient(ZoneBackend(zones))
    validator = Validator(client, anchor)
    t0 = time.process_time()
    states: dict[str, int] = {}
    for i in range(n):
        client.query_many(questions(i))
        for q in questions(i):
            state = validator.check(*q).state
            states[state] = states.get(state, 0) + 1
    validated_cpu = time.process_time() - t0

    extra_q = (client.stats.queries - plain.stats.queries) / n
    extra_ms = (validated_cpu - base_cpu) / n * 1000
    print(f"verdicts: {states}")
    print(
        f"questions per domain: {plain.stats.queries / n:.2f} without, "
        f"{client.stats.queries / n:.2f} with validation (+{extra_q:.2f})"
    )
    print(
        f"CPU per domain: {base_cpu / n * 1000:.2f} ms without, "
        f"{validated_cpu / n * 1000:.2f} ms with validation (+{extra_ms:.2f} ms)"
    )
    low, high = (extra_ms / c * 100 for c in reversed(AUDIT_CPU_MS))
    print(
        f"estimated cost on the DNS audit (CPU-bound, {AUDIT_CPU_MS[0]:g}-{AUDIT_CPU_MS[1]:g} "
        f"ms per domain): +{low:.0f}% to +{high:.0f}% (target <= 25%)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
