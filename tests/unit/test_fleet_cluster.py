"""`check --domains` on a real Dask cluster (scheduler and workers as separate processes on
loopback, tests/dask_cluster.py) against a real DNS server (tests/tiny_dns.py): the same lines
as a local run, a killed worker costing only a retried chunk, clear exit-2 errors for an
unreachable scheduler or a worker of another version, and `--resume`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))
from dask_cluster import DaskCluster, free_port  # noqa: E402
from tiny_dns import TinyDns  # noqa: E402

pytest.importorskip("distributed")

PROBES = ("dns.mx", "dns.spf", "dns.dmarc")


def _world(n: int) -> tuple[list[str], dict[tuple[str, str], list[str]]]:
    """n domains: most with MX, SPF and DMARC; every 5th without MX, every 7th a weak DMARC."""
    domains, records = [], {}
    records[("mx.provider.test", "A")] = ["127.0.0.1"]
    for i in range(n):
        d = f"d{i}.test"
        domains.append(d)
        if i % 5:
            records[(d, "MX")] = ["10 mx.provider.test."]
        records[(d, "TXT")] = ['"v=spf1 -all"' if i % 3 else '"v=spf1 ?all"']
        records[(f"_dmarc.{d}", "TXT")] = [
            '"v=DMARC1; p=none"' if i % 7 == 0 else '"v=DMARC1; p=reject"'
        ]
    return domains, records


def _run(tmp: Path, dns: TinyDns, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "probes.cli", "check", "--resolver", dns.address, "-q"]
    for probe in PROBES:
        argv += ["--probe", probe]
    env = {**os.environ, "MAILPROBE_HISTORY": str(tmp / "history.db")}
    return subprocess.run(
        [*argv, *args], capture_output=True, text=True, timeout=timeout, cwd=tmp, env=env
    )


def _lines(path: Path) -> list[tuple[str, list]]:
    """(domain, [(probe, code, severity, message)]) per line, in the file's order."""
    out = []
    for line in path.read_text().splitlines():
        report = json.loads(line)
        out.append(
            (
                report["target"]["domain"],
                sorted(
                    (r["probe"], f["code"], f["severity"], f["message"])
                    for r in report["results"]
                    for f in r["findings"]
                ),
            )
        )
    return out


def _nothing_written(tmp: Path) -> None:
    """No report lines and no run in the history (the directory and an empty history file
    are made before anything runs, to refuse an unwritable place at once)."""
    assert not (tmp / "out" / "domains.jsonl").exists()
    assert not (tmp / "out" / "batch.json").exists()
    _nothing_written_to_history(tmp)


def _nothing_written_to_history(tmp: Path) -> None:
    if (tmp / "history.db").exists():
        history = [sys.executable, "-m", "probes.cli", "history", "--format", "json"]
        history += ["--history", str(tmp / "history.db")]
        listed = subprocess.run(history, capture_output=True, text=True, check=True).stdout
        assert json.loads(listed) in ([], {"runs": []}), listed


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fleet")
    domains, records = _world(60)
    (tmp / "domains.txt").write_text("\n".join(domains) + "\n")
    with TinyDns(records) as dns:
        yield tmp, dns, domains


@pytest.fixture(scope="module")
def cluster(world):
    tmp = world[0]
    with DaskCluster(2) as running:
        running.start(tmp)
        yield running


def test_a_cluster_run_writes_the_same_lines_as_a_local_run(world, cluster):
    tmp, dns, domains = world
    local = _run(tmp, dns, "--domains", "domains.txt", "--output", "local", "--no-history")
    assert local.returncode in (0, 1), local.stderr
    remote = _run(
        tmp, dns, "--domains", "domains.txt", "--output", "remote", "--no-history",
        "--scheduler", cluster.address, "--concurrency", "2",
    )  # fmt: skip
    assert remote.returncode == local.returncode, remote.stderr + cluster.log()
    got = _lines(tmp / "remote" / "domains.jsonl")
    assert [d for d, _ in got] == domains  # streamed back in file order
    assert got == _lines(tmp / "local" / "domains.jsonl")
    assert "MX_MISSING" in {c for _, fs in got for _, c, _, _ in fs}  # the world is varied


def test_a_worker_killed_mid_run_costs_only_its_chunk(world, cluster, tmp_path):
    tmp, dns, domains = world
    many = [*domains, *(f"x{i}.test" for i in range(240))]  # unknown ones: NXDOMAIN
    path = tmp_path / "many.txt"
    path.write_text("\n".join(many) + "\n")
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "probes.cli", "check", "--resolver", dns.address, "-q"]
    argv += ["--probe", "dns.mx", "--probe", "dns.spf", "--domains", str(path)]
    argv += ["--output", str(out), "--no-history", "--scheduler", cluster.address]
    argv += ["--concurrency", "1"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        lines = out / "domains.jsonl"
        while time.monotonic() < deadline:
            if lines.exists() and len(lines.read_text().splitlines()) >= 8:
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        cluster.kill(0)  # mid-run: chunks are still out
        _, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode in (0, 1), stderr + cluster.log()
    assert [d for d, _ in _lines(lines)] == many  # every domain once, in order
    cluster.add_worker(tmp, 2)  # the module's cluster has two workers again
    cluster.wait_workers(2)


def test_a_worker_of_another_version_is_refused_before_anything_is_written(world, tmp_path):
    tmp, dns, _ = world
    preload = str(TESTS / "dask_other_version.py")
    with DaskCluster(1, worker_args=("--preload", preload)) as other:
        other.start(tmp_path)
        result = _run(
            tmp_path, dns, "--domains", str(tmp / "domains.txt"), "--output", "out",
            "--scheduler", other.address,
        )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "0.0.1-other" in result.stderr and "every worker needs mailprobe" in result.stderr
    _nothing_written(tmp_path)


def test_an_unreachable_scheduler_exits_2_before_anything_is_written(world, tmp_path):
    tmp, dns, _ = world
    address = f"tcp://127.0.0.1:{free_port()}"
    result = _run(
        tmp_path, dns, "--domains", str(tmp / "domains.txt"), "--output", "out",
        "--scheduler", address,
    )  # fmt: skip
    assert result.returncode == 2
    assert f"--scheduler {address}: cannot reach the scheduler" in result.stderr
    _nothing_written(tmp_path)


def test_resume_keeps_the_complete_lines_and_audits_the_rest_as_one_batch(world, tmp_path):
    tmp, dns, domains = world
    first = _run(tmp_path, dns, "--domains", str(tmp / "domains.txt"), "--output", "out")
    assert first.returncode in (0, 1), first.stderr
    path = tmp_path / "out" / "domains.jsonl"
    whole = path.read_text().splitlines(keepends=True)
    # what an interruption leaves: 10 complete lines and half of the 11th
    path.write_text("".join(whole[:10]) + whole[10][: len(whole[10]) // 2])
    (tmp_path / "history.db").unlink()
    again = _run(
        tmp_path, dns, "--domains", str(tmp / "domains.txt"), "--output", "out", "--resume"
    )
    assert again.returncode == first.returncode, again.stderr
    lines = path.read_text().splitlines(keepends=True)
    assert lines[:10] == whole[:10]  # kept byte for byte
    assert [d for d, _ in _lines(path)] == domains
    history = [sys.executable, "-m", "probes.cli", "history", "--format", "json"]
    history += ["--history", str(tmp_path / "history.db")]
    listed = subprocess.run(history, capture_output=True, text=True, check=True).stdout
    batch = json.loads((tmp_path / "out" / "batch.json").read_text())["run_id"]
    assert batch in listed  # stored at its end, under the batch's own run id


def test_resume_refuses_another_domain_list(world, tmp_path):
    tmp, dns, domains = world
    (tmp_path / "out").mkdir()
    first = _run(tmp_path, dns, "--domains", str(tmp / "domains.txt"), "--output", "out",
                 "--no-history")  # fmt: skip
    assert first.returncode in (0, 1)
    other = tmp_path / "other.txt"
    other.write_text("\n".join(domains[:5]) + "\n")
    again = _run(tmp_path, dns, "--domains", str(other), "--output", "out", "--resume",
                 "--no-history")  # fmt: skip
    assert again.returncode == 2
    assert "--resume --output out: that run audited other domains" in again.stderr


def test_ctrl_c_on_a_cluster_run_then_resume_finishes_the_batch(world, cluster, tmp_path):
    _, dns, domains = world
    many = [*domains, *(f"y{i}.test" for i in range(200))]
    path = tmp_path / "many.txt"
    path.write_text("\n".join(many) + "\n")
    argv = [sys.executable, "-m", "probes.cli", "check", "--resolver", dns.address, "-q"]
    argv += ["--probe", "dns.mx", "--domains", str(path), "--output", "out"]
    argv += ["--scheduler", cluster.address, "--concurrency", "1"]
    env = {**os.environ, "MAILPROBE_HISTORY": str(tmp_path / "history.db")}
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env
    )
    lines = tmp_path / "out" / "domains.jsonl"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if lines.exists() and len(lines.read_text().splitlines()) >= 5:
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr
    written = [d for d, _ in _lines(lines)]
    assert 5 <= len(written) < len(many) and written == many[: len(written)]
    _nothing_written_to_history(tmp_path)
    again = subprocess.run(
        [*argv, "--resume"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300
    )
    assert again.returncode in (0, 1), again.stderr
    assert [d for d, _ in _lines(lines)] == many


@pytest.mark.parametrize(
    ("greeting", "why"),
    [
        (b"220 smtp.example ESMTP\r\n" * 40, "does not answer as a Dask scheduler"),
        (b"", "no Dask handshake within"),  # accepts and says nothing (an HTTP port)
    ],
    ids=["an SMTP server", "a silent server"],
)
def test_a_port_that_is_no_dask_scheduler_exits_2_without_a_traceback(
    world, tmp_path, greeting, why
):
    tmp, dns, _ = world
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            held.append(conn)
            if greeting:
                conn.sendall(greeting)

    threading.Thread(target=serve, daemon=True).start()
    address = f"tcp://127.0.0.1:{listener.getsockname()[1]}"
    try:
        result = _run(
            tmp_path, dns, "--domains", str(tmp / "domains.txt"), "--output", "out",
            "--scheduler", address, timeout=60,
        )  # fmt: skip
    finally:
        listener.close()
        for conn in held:
            conn.close()
    assert result.returncode == 2, result.stderr
    assert f"--scheduler {address}: cannot reach the scheduler: " in result.stderr
    assert why in result.stderr and "Traceback" not in result.stderr
    _nothing_written(tmp_path)


def test_resume_refuses_other_options_and_a_complete_batch(world, tmp_path):
    tmp, dns, _ = world
    args = ["--domains", str(tmp / "domains.txt"), "--output", "out", "--no-history"]
    first = _run(tmp_path, dns, *args)
    assert first.returncode in (0, 1)
    complete = _run(tmp_path, dns, *args, "--resume")
    assert complete.returncode == 2
    assert "that batch is complete (60 domains): nothing to resume" in complete.stderr
    lines = tmp_path / "out" / "domains.jsonl"
    lines.write_text("".join(lines.read_text().splitlines(keepends=True)[:3]))
    other = _run(tmp_path, dns, *args, "--resume", "--dns-timeout", "7")
    assert other.returncode == 2
    assert "that run asked with other options" in other.stderr
    assert len(lines.read_text().splitlines()) == 3  # untouched


def _profiling(dask_worker) -> list[bool]:
    return [pc.is_running() for n, pc in dask_worker.periodic_callbacks.items() if "profile" in n]


def test_an_audit_stops_the_workers_statistical_profiler(world, tmp_path):
    """Dask's profiler samples every thread 100 times a second and can deadlock a busy
    worker on this CPython (python/cpython#106883): a chunk stops it first."""
    import cloudpickle
    from distributed import Client

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # _profiling, on the worker
    tmp, dns, _ = world
    on = {"DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "True"}
    with DaskCluster(1, worker_env=on) as profiled:
        profiled.start(tmp_path)
        with Client(profiled.address, timeout=30) as client:
            assert all(any(v) for v in client.run(_profiling).values())
            result = _run(
                tmp_path, dns, "--domains", str(tmp / "domains.txt"), "--output", "out",
                "--no-history", "--scheduler", profiled.address,
            )  # fmt: skip
            assert result.returncode in (0, 1), result.stderr
            assert not any(any(v) for v in client.run(_profiling).values())
