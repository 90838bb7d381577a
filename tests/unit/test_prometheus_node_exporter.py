"""The textfile mode under a real node_exporter (Debian's `prometheus-node-exporter`, installed by
./run-tests as root): started here on loopback with only the textfile collector, it reads
the files that real `check`, `run` and `check --domains` runs wrote into one directory, and
a scrape over HTTP shows their metrics and no textfile error, also while a file is being
rewritten again and again."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from promtools import dns_server, zone
from test_prometheus_metrics import DNS_PROBES, _domains_file, _scenario

from probes import cli

NODE_EXPORTER = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")


def _free_address() -> tuple[str, int]:
    host = f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
    with socket.socket() as sock:
        sock.bind((host, 0))
        return host, sock.getsockname()[1]


@pytest.fixture
def node_exporter(tmp_path) -> Iterator[tuple[Path, str]]:
    """(textfile directory, metrics URL) of a node_exporter this test started."""
    if NODE_EXPORTER is None:
        pytest.skip(
            "prometheus-node-exporter not installed (Debian package; ./run-tests installs it)"
        )
    directory = tmp_path / "textfile"
    directory.mkdir()
    host, port = _free_address()
    log = (tmp_path / "node_exporter.log").open("w")
    process = subprocess.Popen(
        [
            NODE_EXPORTER,
            f"--web.listen-address={host}:{port}",
            "--collector.disable-defaults",
            "--collector.textfile",
            f"--collector.textfile.directory={directory}",
            "--web.disable-exporter-metrics",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection((host, port), timeout=0.5).close()
                break
            except OSError:
                assert process.poll() is None, (tmp_path / "node_exporter.log").read_text()
                assert time.monotonic() < deadline, "node_exporter did not listen within 15 s"
                time.sleep(0.1)
        yield directory, f"http://{host}:{port}/metrics"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode("utf-8")


def test_node_exporter_serves_the_metrics_of_check_run_and_domains(node_exporter, tmp_path):
    directory, url = node_exporter
    with dns_server(zone("example.test") | zone("other.test")) as (addr, _):
        common = ["--no-history", "-q", "--prometheus-textfile", str(directory)]
        check = ["check", "example.test", "--resolver", addr, *DNS_PROBES]
        assert cli.main([*check, "--output", str(tmp_path / "c"), *common]) == 0
        run = ["run", str(_scenario(tmp_path, addr)), "--output", str(tmp_path / "r")]
        assert cli.main([*run, *common]) == 0
        audit = ["check", "--domains", str(_domains_file(tmp_path)), "--resolver", addr]
        audit += [*DNS_PROBES, "--processes", "1", "--output", str(tmp_path / "d")]
        assert cli.main([*audit, "--prometheus-per-domain", *common]) == 0
    files = sorted(p.name for p in directory.iterdir())
    assert files == [
        "mailprobe_check_example.test.prom",
        "mailprobe_domains_customers.txt.prom",
        "mailprobe_scenario_nightly-dns.prom",
    ]

    text = scrape(url)
    lines = set(text.splitlines())
    assert "node_textfile_scrape_error 0" in lines, text
    for name in files:
        assert any(
            line.startswith(f'node_textfile_mtime_seconds{{file="{directory / name}"}}')
            or line.startswith(f'node_textfile_mtime_seconds{{file="{name}"}}')
            for line in lines
        ), (name, text)
    assert 'mailprobe_up{domain="example.test"} 1' in lines
    assert 'mailprobe_up{domain="example.test",scenario="nightly dns"} 1' in lines
    assert 'mailprobe_up{domains="customers.txt"} 1' in lines
    assert (
        'mailprobe_dkim_key_size{domain="other.test",domains="customers.txt",key_type="rsa",'
        'selector="s1"} 2048' in lines
    )
    assert 'mailprobe_audit_domains{domains="customers.txt",status="ok"} 2' in lines
    assert "# TYPE mailprobe_last_success_timestamp_seconds gauge" in lines
    assert any(line.startswith("# HELP mailprobe_up 1 when every probe") for line in lines)


def test_scrapes_never_see_half_a_file_while_it_is_rewritten(node_exporter, tmp_path):
    directory, url = node_exporter
    with dns_server(zone("example.test")) as (addr, _):
        argv = ["check", "example.test", "--resolver", addr, *DNS_PROBES, "--no-history", "-q"]
        argv += ["--output", str(tmp_path / "out"), "--prometheus-textfile", str(directory)]
        assert cli.main(argv) == 0
        bad: list[str] = []
        scrapes = []
        stop = threading.Event()

        def keep_scraping() -> None:
            while not stop.is_set():
                try:
                    text = scrape(url)
                except Exception as exc:  # reported by the assertion below
                    bad.append(repr(exc))
                    return
                scrapes.append(1)
                if (
                    "node_textfile_scrape_error 0" not in text
                    or 'mailprobe_up{domain="example.test"} 1' not in text
                ):
                    bad.append(text)

        scraper = threading.Thread(target=keep_scraping)
        scraper.start()
        try:
            for _ in range(15):
                assert cli.main(argv) == 0
        finally:
            stop.set()
            scraper.join(timeout=30)
    assert not bad, bad[0]
    assert len(scrapes) >= 5
