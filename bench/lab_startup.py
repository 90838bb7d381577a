"""Benchmark: lab images, lab start → ready per flavour, teardown, memory, lab self-test.

    .venv/bin/python bench/lab_startup.py [--runs 5] [--flavours all|F,...] [--rebuild]
                                          [--selftest]

A benchmark, not a test: it prints figures and compares them with targets, never asserts.
Every lab it starts is stopped, also on errors and Ctrl-C. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from probes.lab.containers import API_VERSION, LABEL_LAB
from probes.lab.doctor import ensure_docker_api
from probes.lab.flavours import DEFAULT_FLAVOUR, MATRIX, MTA_IMAGE, parse_flavour, with_flavour
from probes.lab.image import build_image, image_name
from probes.lab.lab import Lab
from probes.lab.spec import LabSpec

ROOT = Path(__file__).resolve().parent.parent
SELFTEST = Path("tests/lab/test_lab_selftest.py")
ROLES = ("dns", "mx", "outbound", "mailbox", "store")
MB = 1_000_000  # decimal megabytes, as `podman images` prints them

TARGET_BUILD_S = 90.0
TARGET_READY_S = 2.0  # the default exim+dovecot lab (issue 1)
TARGET_FLAVOUR_READY_S = 3.0  # every flavour (issue 7)
TARGET_SELFTEST_S = 30.0


@dataclass
class Row:
    figure: str
    value: str
    target: str = "-"
    ok: bool | None = None  # None: no target


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)

    def add(self, figure: str, value: str, target: str = "-", ok: bool | None = None) -> None:
        self.rows.append(Row(figure, value, target, ok))

    def print_table(self) -> None:
        head = ("figure", "value", "target", "within")
        cells = [head] + [
            (r.figure, r.value, r.target, "-" if r.ok is None else ("yes" if r.ok else "no"))
            for r in self.rows
        ]
        widths = [max(len(row[i]) for row in cells) for i in range(len(head))]
        print()
        for n, row in enumerate(cells):
            print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
            if n == 0:
                print("  ".join("-" * w for w in widths))


def _stats(values: list[float]) -> str:
    if not values:
        return "n/a"
    med = statistics.median(values)
    return f"{med:.2f} s (min {min(values):.2f}, max {max(values):.2f})"


# ----- 1. image -----------------------------------------------------------------------------
def image_size_mb(name: str) -> float | None:
    import docker

    client = docker.from_env(version=API_VERSION)
    try:
        size = client.images.get(name).attrs.get("Size")
        return size / MB if isinstance(size, int | float) else None
    except Exception as exc:
        print(f"  image size: unavailable ({type(exc).__name__}: {exc})")
        return None
    finally:
        client.close()


def bench_image(res: Results, rebuild: bool, kind: str = "base") -> None:
    api = ensure_docker_api()
    name = image_name(kind)
    print(f"== image {kind}: {name}")
    if rebuild:
        print("  forcing a rebuild (mmdebstrap + import, about a minute)")
        info = build_image(api, lambda msg: print("  " + msg), force=True, kind=kind)
        total = info.build_s + info.import_s
        print(f"  build {info.build_s:.1f} s, import {info.import_s:.1f} s, total {total:.1f} s")
        res.add(
            f"image {kind} build (mmdebstrap)",
            f"{info.build_s:.1f} s",
            f"<= {TARGET_BUILD_S:.0f} s",
            info.build_s <= TARGET_BUILD_S,
        )
        res.add(f"image {kind} import", f"{info.import_s:.1f} s")
    else:
        info = build_image(api, kind=kind)
        state = "cached" if not info.built else f"was missing, built in {info.build_s:.1f} s"
        print(f"  {state} (pass --rebuild to time a fresh build)")
        res.add(f"image {kind}", state)
    size = image_size_mb(name)
    if size is not None:
        print(f"  size {size:.0f} MB")
        res.add(f"image {kind} size", f"{size:.0f} MB")


# ----- 3. memory ----------------------------------------------------------------------------
def _children(pid: int) -> Iterator[int]:
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                yield int(child)


def _process_tree(pids: set[int]) -> set[int]:
    seen: set[int] = set()
    todo = list(pids)
    while todo:
        pid = todo.pop()
        if pid in seen or not Path(f"/proc/{pid}").exists():
            continue
        seen.add(pid)
        todo.extend(_children(pid))
    return seen


def _vmrss_bytes(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _host_pids(wrapped) -> set[int]:
    """Host PIDs of a container's processes: `top` with podman's hpid, else State.Pid + tree."""
    pids: set[int] = set()
    with contextlib.suppress(Exception):
        top = wrapped.top(ps_args="hpid")
        if top.get("Titles") == ["HPID"]:
            pids |= {int(p[0]) for p in top.get("Processes") or [] if p and p[0].isdigit()}
    with contextlib.suppress(Exception):
        wrapped.reload()
        pid = int(wrapped.attrs["State"]["Pid"])
        if pid > 0:
            pids.add(pid)
    return _process_tree(pids)


def container_memory(container) -> tuple[float | None, float | None, int]:
    """(API cgroup usage MB or None, summed VmRSS MB or None, process count)."""
    wrapped = container.get_wrapped_container()
    api_mb = None
    with contextlib.suppress(Exception):
        mem = wrapped.stats(stream=False).get("memory_stats") or {}
        usage = mem.get("usage")
        if isinstance(usage, int | float) and usage > 0:
            api_mb = usage / MB
    pids = _host_pids(wrapped)
    rss = sum(_vmrss_bytes(p) for p in pids)
    return api_mb, (rss / MB if rss else None), len(pids)


def bench_memory(lab: Lab, res: Results) -> None:
    flavour = lab.spec.flavour
    print(f"== memory per container ({flavour} lab up): cgroup usage (API stats), summed VmRSS")
    by_role = {c.role: c for c in lab.containers}
    for role in ROLES:
        container = by_role.get(role)
        if container is None:
            continue
        api_mb, rss_mb, nproc = container_memory(container)
        api_s = f"{api_mb:.1f} MB" if api_mb is not None else "n/a"
        rss_s = f"{rss_mb:.1f} MB" if rss_mb is not None else "n/a"
        procs = f"{nproc} process" + ("" if nproc == 1 else "es")
        print(f"  {role:<9} api {api_s:>9}   rss {rss_s:>9}   ({procs})")
        if api_mb is not None:
            value = f"{api_mb:.1f} MB (rss {rss_s})"
        elif rss_mb is not None:
            value = f"{rss_mb:.1f} MB rss (no API figure)"
        else:
            value = "n/a"
        res.add(f"memory {flavour} {role}", value)


# ----- 2. lab start/stop --------------------------------------------------------------------
def bench_lab(res: Results, runs: int, started: list[str], flavour: str = DEFAULT_FLAVOUR) -> None:
    print(f"== {flavour} lab start → ready and stop, {runs} runs (cached images)")
    keys = ("image_s", "render_s", "start_s", "ready_s")
    totals: list[float] = []
    stops: list[float] = []
    parts: dict[str, list[float]] = {k: [] for k in keys}
    failures = 0
    for n in range(1, runs + 1):
        lab = Lab(with_flavour(LabSpec(), flavour))
        line = ""
        try:
            t0 = time.perf_counter()
            try:
                lab.start()
            except Exception as exc:
                failures += 1
                print(f"  run {n}: start failed: {type(exc).__name__}: {exc}")
                continue
            total = time.perf_counter() - t0
            totals.append(total)
            t = {k: lab.timings.get(k, 0.0) for k in keys}
            for k in keys:
                parts[k].append(t[k])
            line = (
                f"  run {n}: start() {total:.2f} s = image {t['image_s']:.2f}"
                f" + render {t['render_s']:.2f} + start {t['start_s']:.2f}"
                f" + ready {t['ready_s']:.2f} + other {total - sum(t.values()):.2f}"
            )
            if n == 1:
                bench_memory(lab, res)
        finally:
            if lab.lab_id and lab.lab_id not in started:
                started.append(lab.lab_id)
            with _sigint_deferred():
                lab.stop()
            if line:
                stops.append(lab.timings["stop_s"])
                print(f"{line};  stop() {lab.timings['stop_s']:.2f} s", flush=True)
    if failures:
        res.add(f"{flavour} lab start failures", f"{failures} of {runs}", "0", False)
    target = TARGET_READY_S if flavour == DEFAULT_FLAVOUR else TARGET_FLAVOUR_READY_S
    res.add(
        f"{flavour} lab start() → ready (median)",
        _stats(totals),
        f"<= {target:.0f} s",
        bool(totals) and statistics.median(totals) <= target,
    )
    for k in keys:
        res.add(f"  of which {k[:-2]} (median)", _stats(parts[k]))
    res.add(f"{flavour} lab stop() (median)", _stats(stops))


# ----- 4. self-test -------------------------------------------------------------------------
def bench_selftest(res: Results) -> None:
    print(f"== self-test: pytest {SELFTEST} -q")
    if not (ROOT / SELFTEST).exists():
        print(f"  {SELFTEST} does not exist (yet): skipped")
        res.add("lab self-test", "skipped (module missing)", f"<= {TARGET_SELFTEST_S:.0f} s")
        return
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(SELFTEST), "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    took = time.perf_counter() - t0
    summary = (proc.stdout.strip().splitlines() or ["(no output)"])[-1]
    print(f"  {took:.1f} s, exit status {proc.returncode}: {summary}")
    if proc.returncode != 0:
        print("\n".join("  | " + line for line in proc.stdout.splitlines()[-20:]))
    status = "" if proc.returncode == 0 else f" (exit {proc.returncode})"
    res.add(
        "lab self-test",
        f"{took:.1f} s{status}",
        f"<= {TARGET_SELFTEST_S:.0f} s",
        took <= TARGET_SELFTEST_S,
    )


# ----- main ---------------------------------------------------------------------------------
@contextlib.contextmanager
def _sigint_deferred(reraise: bool = True) -> Iterator[None]:
    """Let a teardown finish: a Ctrl-C meanwhile is raised once it is done, not in its middle."""
    hits: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: hits.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if hits and reraise:
        raise KeyboardInterrupt


def _leftovers(lab_ids: list[str]) -> list:
    """Lab containers this process created (testcontainers session label) or labs it started."""
    import docker
    from testcontainers.core.labels import LABEL_SESSION_ID, SESSION_ID

    client = docker.from_env(version=API_VERSION)
    try:
        found = {}
        for c in client.containers.list(all=True, filters={"label": LABEL_LAB}):
            labels = c.labels or {}
            if labels.get(LABEL_SESSION_ID) == SESSION_ID or labels.get(LABEL_LAB) in lab_ids:
                found[c.id] = c
        return list(found.values())
    finally:
        client.close()


def _cleanup(lab_ids: list[str], wait_s: float = 20.0) -> None:
    """Belt and braces: remove any lab container this script left behind (only ours)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            left = _leftovers(lab_ids)
        except Exception as exc:
            print(f"could not list leftover containers: {type(exc).__name__}: {exc}")
            return
        if not left:
            return
        if time.monotonic() > deadline:
            names = ", ".join(c.name for c in left)
            print(f"WARNING: containers left behind: {names} (podman rm -f them)")
            return
        for c in left:  # one by one: a failure on one must not keep the others
            with contextlib.suppress(Exception):
                c.remove(force=True)
                print(f"removed leftover container {c.name}")
        time.sleep(0.3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="lab start/stop runs (default 5)")
    parser.add_argument(
        "--flavours",
        default="all",
        help="lab flavours to time, comma-separated mta+front, or `all` (the matrix; default)",
    )
    parser.add_argument("--rebuild", action="store_true", help="force and time image rebuilds")
    parser.add_argument("--selftest", action="store_true", help="time the lab self-test module")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    try:
        chosen = (
            list(MATRIX)
            if args.flavours == "all"
            else ["+".join(parse_flavour(f)) for f in args.flavours.split(",") if f.strip()]
        )
    except ValueError as exc:
        parser.error(f"--flavours: {exc}")
    kinds = list(dict.fromkeys(["base", *(MTA_IMAGE[parse_flavour(f)[0]] for f in chosen)]))

    res = Results()
    started: list[str] = []
    try:
        for kind in kinds:
            bench_image(res, args.rebuild, kind)
        for flavour in chosen:
            bench_lab(res, args.runs, started, flavour)
        if args.selftest:
            bench_selftest(res)
    except KeyboardInterrupt:
        print("\ninterrupted; stopping labs")
        return 130
    finally:
        with _sigint_deferred(reraise=False):
            _cleanup(started)
        res.print_table()
    return 0


if __name__ == "__main__":
    sys.exit(main())
