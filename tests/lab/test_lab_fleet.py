"""A fleet on the lab: many domains share one MX endpoint, which is talked to once per run.

Twelve customer domains (zones served by the lab's Knot) have their MX at mx.shared-mx.test;
one has a vanity MX name of its own (mx.vanity.test) on the same address. That address is a
counting forwarder (tests/counting_proxy.py) in front of the lab's real MTA, so the test sees
every connection the MTA gets. One domain alone gives the number of connections a probe set
makes to an endpoint; the whole fleet must make exactly that many, locally over two processes
and on a real Dask cluster (a scheduler and two workers, separate processes on loopback), with
the same findings per domain either way, each judged by its own MX name.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from probes.lab.spec import LabSpec, MtaStsSpec
from probes.lab.zone_edit import ZoneEditor

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from counting_proxy import CountingProxy
from dask_cluster import DaskCluster

pytestmark = pytest.mark.lab

SHARED = "shared-mx.test"
VANITY = "vanity.test"
CUSTOMERS = [f"c{i}.test" for i in range(12)]
DOMAINS = [*CUSTOMERS, VANITY]
PROBES = ["dns.mx", "smtp.mx", "smtp.relay"]
PROXY_OCTET = 97  # the forwarder listens on <lab block>.97:25


def _zone(mx: str) -> tuple[str, ...]:
    return (f"@ MX 10 {mx}.", '@ TXT "v=spf1 -all"', '_dmarc TXT "v=DMARC1; p=reject"')


FLEET_SPEC = LabSpec(
    extra_zones={
        **{d: _zone(f"mx.{SHARED}") for d in CUSTOMERS},
        VANITY: _zone(f"mx.{VANITY}"),
        SHARED: (),
    },
    mta_sts=MtaStsSpec(publish=False),
)


@pytest.fixture(scope="module")
def fleet(mailprobe_lab_factory_session, flavoured, tmp_path_factory):
    lab = mailprobe_lab_factory_session(flavoured(FLEET_SPEC))
    info = lab.info
    a, b, c, _ = info.hosts["mx"].split(".")
    proxy_ip = f"{a}.{b}.{c}.{PROXY_OCTET}"
    with ZoneEditor(info.resolver, [SHARED, VANITY]) as zones:
        zones.replace(f"mx.{SHARED}", "A", proxy_ip)
        zones.replace(f"mx.{VANITY}", "A", proxy_ip)
        with CountingProxy(proxy_ip, {25: (info.hosts["mx"], 25)}) as proxy:
            tmp = tmp_path_factory.mktemp("fleet")
            (tmp / "domains.txt").write_text("\n".join(DOMAINS) + "\n")
            yield info, proxy, tmp
    lab.stop()


def _check(info, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "probes.cli", "check", *args]
    argv += ["--resolver", info.resolver, "--ca-file", info.ca_file, "--no-history", "-q"]
    for probe in PROBES:
        argv += ["--probe", probe]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=600, env={**os.environ}, cwd=tmp
    )


def _findings(path: Path) -> dict[str, set[tuple[str, str, str, str]]]:
    """domain -> {(probe, code, severity, subject)} of a domains.jsonl."""
    out = {}
    for line in path.read_text().splitlines():
        report = json.loads(line)
        out[report["target"]["domain"]] = {
            (r["probe"], f["code"], f["severity"], f.get("subject") or "")
            for r in report["results"]
            for f in r["findings"]
        }
    return out


def test_a_shared_endpoint_is_talked_to_once_per_run_locally_and_on_a_cluster(fleet):
    info, proxy, tmp = fleet
    # One domain alone: the connections one probe set makes to the endpoint.
    proxy.reset()
    alone = _check(info, tmp, CUSTOMERS[0], "--format", "json", "--output", str(tmp / "one"))
    assert alone.returncode in (0, 1), alone.stderr
    one_set = proxy.counts[25]
    assert one_set >= 3  # the SMTP conversation, the TLS version sweep, the relay test

    # The fleet over two local processes: the same number of connections for 13 domains.
    proxy.reset()
    local = _check(
        info, tmp, "--domains", "domains.txt", "--processes", "2", "--concurrency", "4",
        "--output", str(tmp / "local"),
    )  # fmt: skip
    assert local.returncode in (0, 1), local.stderr
    assert proxy.counts[25] == one_set, (proxy.counts, one_set)
    assert proxy.peak() <= 2  # --max-per-host (default 2) across both processes
    found = _findings(tmp / "local" / "domains.jsonl")
    assert list(found) == DOMAINS  # file order
    for domain in DOMAINS:
        probes_seen = {probe for probe, *_ in found[domain]}
        assert {"smtp.mx", "smtp.relay"} <= probes_seen, (domain, found[domain])
    # each domain judged with its own MX name: the subjects name it
    assert all(s.startswith(f"mx.{SHARED}:") for p, _, _, s in found["c3.test"] if p == "smtp.mx")
    assert all(s.startswith(f"mx.{VANITY}:") for p, _, _, s in found[VANITY] if p == "smtp.mx")
    shared = {(p, c, sev) for p, c, sev, _ in found["c0.test"] if p != "dns.mx"}
    assert shared == {(p, c, sev) for p, c, sev, _ in found["c11.test"] if p != "dns.mx"}

    # The same on a Dask cluster: a scheduler and two workers, separate processes.
    with DaskCluster(2) as cluster:
        cluster.start(tmp)
        proxy.reset()
        remote = _check(
            info, tmp, "--domains", "domains.txt", "--scheduler", cluster.address,
            "--concurrency", "2", "--output", str(tmp / "cluster"),
        )  # fmt: skip
        assert remote.returncode in (0, 1), remote.stderr + cluster.log()
        assert proxy.counts[25] == one_set, (proxy.counts, one_set)
        assert proxy.peak() <= 2
    assert _findings(tmp / "cluster" / "domains.jsonl") == found
