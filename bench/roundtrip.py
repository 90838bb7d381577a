"""Benchmark: the message round trip on the lab, split into submit, delivery and detection.

    .venv/bin/python bench/roundtrip.py [--runs 20] [--concurrent 20] [--observer-runs 10]
        [--max-per-host 20] [--gap 0.1]

Starts the lab once and runs `MessageRoundTrip` (the code of the `message.roundtrip` probe:
build, send, fetch) with a Target built as `mailprobe check --lab` builds it. Each trip is
timed in three phases, all on the wall clock (`time.time()`, the clock the container logs use):

- **submit**: from the start of `send_message` to the 250 after DATA (the reply is timed by
  wrapping `SmtpSession.reply` in this process; QUIT is not counted);
- **delivery**: from that 250 until the message is in the mailbox. "In the mailbox" is when
  Dovecot's LMTP logged `msgid=<...>: saved mail to INBOX` (after the save is committed, before
  its 250 to Exim). Dovecot logs to stderr; conmon stamps each line with nanoseconds as it
  reads the pipe, in the container's k8s-file log, which the bench reads afterwards. Exim's own
  log has whole seconds and reaches stdout through `tail -F`, so it is not used. The LMTP
  `Connect from` line of the same lmtp process splits delivery into the MTA part (250 -> LMTP
  connect: Exim's delivery process, and on the default path the relay hop through the outbound
  Exim to the mx) and the LMTP part (connect -> saved);
- **detection**: from that log line until `fetch_by_token` saw the message (the call's start
  plus its `found_after_s`). The fetch starts after `send` returns, as in the probe.

Series (--runs sequential trips each, after one warm-up trip): the default path (submission to
the outbound Exim on 587, relayed to the mx, LMTP to Dovecot; read back over IMAPS with IDLE),
the direct path (send_via "mx": 25 from the authorized client address), and the default path
read back by IMAP polling (`idle=False`) and by POP3S. An observer series (--observer-runs)
cross-checks the log stamp against a second, independent IMAPS session that polls NOOP + UID
SEARCH every ~5 ms (it loads Dovecot, so it runs apart). Finally --concurrent trips start
together on each path; every trip must read back exactly its own token: mix-ups are counted.

A benchmark, not a test: it prints figures and compares them with targets (detection <= 100 ms
after landing with IDLE; a whole round trip <= 1 s median; no mix-ups), never asserts. The lab
is stopped at the end, also on errors, Ctrl-C and SIGTERM. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import imaplib
import itertools
import os
import re
import signal
import ssl
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))


TARGET_DETECTION_S = 0.1
TARGET_ROUNDTRIP_S = 1.0
DEADLINE_S = 30.0
OBSERVER_POLL_S = 0.005


# ===== pure helpers (tests/unit/test_bench_roundtrip.py) ========================================
_STAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:[.,](\d{1,9}))?(Z|[+-]\d\d:?\d\d)\Z")
_LMTP_CONNECT = re.compile(r"\blmtp\((\d+)\): Info: Connect from (\S+)")
_LMTP_SAVED = re.compile(
    r"\blmtp\([^)]*\)<(\d+)>(?:<[^>]*>)?: Info: msgid=(<[^>]*>): saved mail to"
)


def parse_stamp(text: str) -> float | None:
    """Seconds since the epoch from an RFC 3339 time with up to nanoseconds, or None."""
    match = _STAMP.match(text)
    if match is None:
        return None
    base, frac, zone = match.groups()
    if zone == "Z":
        zone = "+00:00"
    elif ":" not in zone:
        zone = f"{zone[:3]}:{zone[3:]}"
    try:
        when = dt.datetime.fromisoformat(base + zone)
    except ValueError:
        return None
    return when.timestamp() + (int(frac) / 10 ** len(frac) if frac else 0.0)


def parse_log_line(line: str) -> tuple[float, str] | None:
    """(time, text) from a container log line: k8s-file (`TIME stdout|stderr F|P TEXT`) or
    `podman logs -t` (`TIME TEXT`). None when the line has no time stamp."""
    stamp, _, rest = line.rstrip("\r\n").partition(" ")
    when = parse_stamp(stamp)
    if when is None:
        return None
    words = rest.split(" ", 2)
    if len(words) >= 2 and words[0] in ("stdout", "stderr") and words[1] in ("F", "P"):
        rest = words[2] if len(words) == 3 else ""
    return when, rest


@dataclass(frozen=True)
class Delivery:
    message_id: str
    saved: float  # Dovecot LMTP logged "saved mail to INBOX"
    connect: float | None  # the same lmtp process's last "Connect from" before it
    client: str | None  # who connected over LMTP (the mx Exim)


def lmtp_deliveries(entries: Iterable[tuple[float, str]]) -> dict[str, Delivery]:
    """Message-ID -> its LMTP delivery, from Dovecot's log lines in order. An lmtp process
    serves one connection at a time, so the last Connect of the same PID opened the session
    that saved the message. The first save of a Message-ID wins."""
    connects: dict[str, tuple[float, str]] = {}
    out: dict[str, Delivery] = {}
    for when, text in entries:
        if match := _LMTP_CONNECT.search(text):
            connects[match.group(1)] = (when, match.group(2))
        elif match := _LMTP_SAVED.search(text):
            pid, message_id = match.groups()
            if message_id in out:
                continue
            connect = connects.get(pid)
            out[message_id] = Delivery(
                message_id,
                when,
                connect[0] if connect else None,
                connect[1] if connect else None,
            )
    return out


def after_data_reply(replies: Sequence[tuple[float, int]]) -> float | None:
    """The time of the reply that follows the first 354 (the one ending DATA), or None."""
    for (_, code), following in itertools.pairwise(replies):
        if code == 354:
            return following[0]
    return None


_HEADER_END = re.compile(rb"\r?\n\r?\n")
_FOLD = re.compile(rb"\r?\n(?=[ \t])")


def header_values(raw: bytes, name: str) -> list[str]:
    """Every (unfolded, trimmed) value of header field `name` in `raw`'s header block."""
    end = _HEADER_END.search(raw)
    header = raw[: end.start()] if end else raw
    wanted = name.lower().encode("ascii")
    values = []
    for line in _FOLD.sub(b"", header).split(b"\n"):
        key, sep, value = line.partition(b":")
        if sep and key.strip().lower() == wanted:
            values.append(value.strip().decode("ascii", "replace"))
    return values


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summary(values: Sequence[float]) -> str:
    """'median M / p90 P / max X ms (n N)' or 'no data'."""
    if not values:
        return "no data"
    return (
        f"median {values_ms(statistics.median(values))} / p90 {values_ms(percentile(values, 0.9))}"
        f" / max {values_ms(max(values))} (n {len(values)})"
    )


def values_ms(x: float) -> str:
    return f"{x * 1000:.0f} ms" if abs(x) >= 0.0095 else f"{x * 1000:.1f} ms"


# ===== one trip ==================================================================================
_REPLIES = threading.local()


def instrument_smtp() -> None:
    """Time every SMTP reply of the calling thread's current trip (bench-only wrapper)."""
    from probes.net.mail_sessions import SmtpSession

    if getattr(SmtpSession.reply, "_bench_timed", False):
        return
    original = SmtpSession.reply

    def timed_reply(self):
        reply = original(self)
        log = getattr(_REPLIES, "log", None)
        if log is not None:
            log.append((time.time(), reply.code))
        return reply

    timed_reply._bench_timed = True  # type: ignore[attr-defined]
    SmtpSession.reply = timed_reply  # type: ignore[method-assign]


@dataclass
class Trip:
    token: str = ""
    message_id: str = ""
    t_send: float = 0.0  # send_message called
    t_250: float | None = None  # the 250 after DATA arrived
    t_fetch: float | None = None  # fetch_by_token called
    t_seen: float | None = None  # the search that found it returned
    t_done: float | None = None  # fetch_by_token returned (message read, deleted)
    method: str = ""
    own: bool = False  # read back exactly its own token and Message-ID
    tokens_seen: tuple[str, ...] = ()
    error: str | None = None
    delivery: Delivery | None = None
    observed: tuple[float, float] | None = None  # observer: (last miss sent, hit answered)

    @property
    def submit(self) -> float | None:
        return None if self.t_250 is None else self.t_250 - self.t_send

    @property
    def landed(self) -> float | None:
        return self.delivery.saved if self.delivery else None

    @property
    def delivery_s(self) -> float | None:
        if self.t_250 is None or self.landed is None:
            return None
        return self.landed - self.t_250

    @property
    def detection(self) -> float | None:
        if self.t_seen is None or self.landed is None:
            return None
        return self.t_seen - self.landed

    @property
    def whole(self) -> float | None:
        return None if self.t_done is None else self.t_done - self.t_send

    @property
    def to_seen(self) -> float | None:
        return None if self.t_seen is None else self.t_seen - self.t_send

    @property
    def mta_part(self) -> float | None:  # 250 -> LMTP connect
        d = self.delivery
        if self.t_250 is None or d is None or d.connect is None:
            return None
        return d.connect - self.t_250

    @property
    def lmtp_part(self) -> float | None:  # LMTP connect -> saved
        d = self.delivery
        return None if d is None or d.connect is None else d.saved - d.connect


def run_trip(trip_maker, *, idle: bool = True, barrier: threading.Barrier | None = None) -> Trip:
    from probes.net.mailbox import fetch_by_token

    rt = trip_maker()
    trip = Trip()
    try:
        message = rt.build()
        trip.token, trip.message_id = message.token, message.message_id
        if barrier is not None:
            barrier.wait(timeout=60)
        _REPLIES.log = []
        trip.t_send = time.time()
        try:
            rt.send(message)
        finally:
            trip.t_250 = after_data_reply(_REPLIES.log)
            _REPLIES.log = None
        ep, protocol, mode = rt.mailbox_endpoint()
        trip.t_fetch = time.time()
        got = fetch_by_token(
            rt.net,
            ip=ep.ip,
            port=ep.port,
            server_name=ep.host,
            protocol=protocol,
            tls=mode,
            creds=rt.creds,
            token=message.token,
            deadline=time.monotonic() + DEADLINE_S,
            delete=True,
            idle=idle,
        )
        trip.t_done = time.time()
        if got is None:
            trip.error = f"not found within {DEADLINE_S:g} s"
            return trip
        trip.t_seen = trip.t_fetch + got.found_after_s
        trip.method = got.method
        trip.tokens_seen = tuple(header_values(got.raw, "X-Mailprobe-Token"))
        ids = header_values(got.raw, "Message-ID")
        trip.own = trip.tokens_seen == (message.token,) and ids == [message.message_id]
    except Exception as exc:  # a benchmark reports failures, it does not stop on them
        trip.error = f"{type(exc).__name__}: {exc}"[:300]
    return trip


# ===== the lab, its logs, an observer ============================================================
def lab_target(info, send_via: str, retrieve_via: str):
    """The Target `mailprobe check --lab` builds (probes.lab.target), with these message
    options."""
    from dataclasses import replace

    from probes.lab.target import lab_message_options
    from probes.lab.target import lab_target as check_lab_target

    message = replace(lab_message_options(info, send_via=send_via), retrieve_via=retrieve_via)
    return check_lab_target(info, message=message)


def trip_factory(target, net):
    from probes.checks.message_roundtrip import MessageRoundTrip
    from probes.credentials import login_for

    creds = login_for(target)
    return lambda: MessageRoundTrip(target, net, creds)


def mailbox_log(lab) -> list[tuple[float, str]]:
    """Dovecot's log lines with conmon's nanosecond stamps (the k8s-file log, else
    `podman logs -t`)."""
    container = next(c for c in lab.containers if c.role == "mailbox")
    wrapped = container.get_wrapped_container()
    lines: list[str] = []
    path = ""
    with contextlib.suppress(Exception):
        wrapped.reload()
        path = wrapped.attrs.get("LogPath") or ""
    if path and Path(path).is_file():
        lines = Path(path).read_text(errors="replace").splitlines()
    else:
        proc = subprocess.run(
            ["podman", "logs", "-t", wrapped.name],
            capture_output=True,
            text=True,
            timeout=30,
        )
        lines = (proc.stdout + proc.stderr).splitlines()
    return [e for e in map(parse_log_line, lines) if e is not None]


def attach_deliveries(lab, trips: list[Trip]) -> None:
    time.sleep(0.3)  # let conmon write the last lines
    found = lmtp_deliveries(mailbox_log(lab))
    for trip in trips:
        trip.delivery = found.get(trip.message_id)


class Observer:
    """A second IMAPS session that polls NOOP + UID SEARCH for a token every few ms."""

    def __init__(self, info, user: str, password: str) -> None:
        ctx = ssl.create_default_context(cafile=info.ca_file)
        ctx.check_hostname = False  # connecting by IP; the chain is still verified
        self.imap = imaplib.IMAP4_SSL(info.hosts["mailbox"], info.ports["imaps"], ssl_context=ctx)
        self.imap.login(user, password)
        self.imap.select("INBOX")

    def watch(self, token: str, stop: threading.Event) -> tuple[float, float] | None:
        """(when the last search that missed was sent, when the hit's answer arrived)."""
        last_miss = time.time()
        while not stop.is_set():
            sent = time.time()
            self.imap.noop()  # lets Dovecot sync the view, so the search sees new mail
            _, data = self.imap.uid("SEARCH", "HEADER", "X-Mailprobe-Token", f'"{token}"')
            if data and data[0] and data[0].split():
                return last_miss, time.time()
            last_miss = sent
            time.sleep(OBSERVER_POLL_S)
        return None

    def count(self) -> int:
        typ, data = self.imap.select("INBOX")
        return int(data[0]) if typ == "OK" and data and data[0] else -1

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.imap.logout()


# ===== series ====================================================================================
@dataclass
class Results:
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)

    def add(self, figure: str, value: str, target: str = "-", ok: bool | None = None) -> None:
        self.rows.append((figure, value, target, "-" if ok is None else ("yes" if ok else "no")))

    def print_table(self) -> None:
        if not self.rows:
            return
        cells = [("figure", "value", "target", "within"), *self.rows]
        widths = [max(len(r[i]) for r in cells) for i in range(4)]
        print()
        for n, row in enumerate(cells):
            print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
            if n == 0:
                print("  ".join("-" * w for w in widths))


def vals(trips: Iterable[Trip], attr: str) -> list[float]:
    return [v for t in trips if (v := getattr(t, attr)) is not None]


def report_trips(name: str, trips: list[Trip], res: Results, *, idle_target: bool) -> None:
    ok = [t for t in trips if t.error is None]
    errors = Counter(t.error for t in trips if t.error)
    for error, count in errors.most_common():
        print(f"  {count} trip(s) failed: {error}")
    for t in trips:
        if not t.error and t.delivery is None:
            print(f"  trip {t.token[:8]}: no LMTP 'saved mail' line for {t.message_id}")
    methods = sorted({t.method for t in ok})
    print(f"  {len(ok)} of {len(trips)} trips read back (method {', '.join(methods) or '-'})")
    rows = (
        ("submit (to the 250 after DATA)", "submit"),
        ("delivery (250 -> Dovecot saved)", "delivery_s"),
        ("  of which 250 -> LMTP connect (Exim)", "mta_part"),
        ("  of which LMTP connect -> saved", "lmtp_part"),
        ("detection (saved -> fetch saw it)", "detection"),
        ("send start -> seen", "to_seen"),
        ("whole round trip (send start -> read, deleted)", "whole"),
    )
    for label, attr in rows:
        print(f"  {label:48} {summary(vals(ok, attr))}")
    det, whole = vals(ok, "detection"), vals(ok, "whole")
    if det:
        med = statistics.median(det)
        res.add(
            f"{name}: detection median / p90 / max",
            f"{values_ms(med)} / {values_ms(percentile(det, 0.9))} / {values_ms(max(det))}",
            f"<= {TARGET_DETECTION_S * 1000:.0f} ms" if idle_target else "-",
            med <= TARGET_DETECTION_S if idle_target else None,
        )
    parts = [statistics.median(v) for a in ("submit", "delivery_s") if (v := vals(ok, a))]
    if whole:
        med = statistics.median(whole)
        split = " + ".join(values_ms(p) for p in parts)
        res.add(
            f"{name}: whole round trip median (submit + delivery + ...)",
            f"{values_ms(med)} ({split} + detection, read, delete)",
            f"<= {TARGET_ROUNDTRIP_S:g} s",
            med <= TARGET_ROUNDTRIP_S,
        )


def sequential(lab, factory, runs: int, gap: float, *, idle: bool = True) -> list[Trip]:
    run_trip(factory, idle=idle)  # warm-up, not counted
    trips = []
    for _ in range(runs):
        time.sleep(gap)
        trips.append(run_trip(factory, idle=idle))
    attach_deliveries(lab, trips)
    return trips


def observed_series(lab, info, factory, runs: int, gap: float) -> list[Trip]:
    observer = Observer(info, info.user, info.password)
    trips = []
    try:
        run_trip(factory)
        for _ in range(runs):
            time.sleep(gap)
            # The token is only known after build(): build the message first, then watch it.
            rt = factory()
            message = rt.build()
            stop = threading.Event()
            result: list = [None]

            def watch(token=message.token, stop=stop, result=result):
                result[0] = observer.watch(token, stop)

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            trip = run_trip(lambda rt=rt, message=message: _Prebuilt(rt, message))
            stop.set()
            watcher.join(5)
            trip.observed = result[0]
            trips.append(trip)
    finally:
        observer.close()
    attach_deliveries(lab, trips)
    return trips


class _Prebuilt:
    """A MessageRoundTrip whose build() returns a message made earlier."""

    def __init__(self, rt, message) -> None:
        self._rt, self._message = rt, message

    def build(self):
        return self._message

    def __getattr__(self, name):
        return getattr(self._rt, name)


def concurrent(lab, factory, n: int) -> tuple[list[Trip], float]:
    barrier = threading.Barrier(n)
    with ThreadPoolExecutor(max_workers=n) as pool:
        futures = [pool.submit(run_trip, factory, barrier=barrier) for _ in range(n)]
        trips = [f.result() for f in futures]
    attach_deliveries(lab, trips)
    starts = [t.t_send for t in trips if t.t_send]
    ends = [t.t_done for t in trips if t.t_done]
    wall = (max(ends) - min(starts)) if starts and ends else float("nan")
    return trips, wall


def spf_hook_ms(lab, info, runs: int = 5) -> list[float]:
    """Wall time of the mx's DATA-ACL SPF hook (a python3 + pyspf process per message), timed
    inside the mx container, in ms."""
    container = next(c for c in lab.containers if c.role == "mx")
    client = info.client_ips["authorized"]
    script = (
        f"for i in $(seq {runs}); do s=$(date +%s%N); /usr/bin/python3 /etc/exim4/spf-authres.py"
        f" {client} {info.user} mailprobe.invalid >/dev/null; e=$(date +%s%N);"
        " echo $(( (e - s) / 1000 )); done"
    )
    proc = subprocess.run(
        ["podman", "exec", container.get_wrapped_container().name, "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return [int(w) / 1000 for w in proc.stdout.split() if w.isdigit()]


# ===== main ======================================================================================
def run_bench(args, res: Results, started: list) -> int:
    from probes.lab.lab import Lab
    from probes.lab.spec import LabSpec
    from probes.net import Net

    instrument_smtp()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"== machine: {os.cpu_count()} CPUs, load {load}; Python {sys.version.split()[0]}")
    t0 = time.perf_counter()
    lab = Lab(LabSpec())
    started.append(lab)
    lab.start()
    info = lab.info
    print(
        f"== lab started in {time.perf_counter() - t0:.2f} s: outbound {info.hosts['outbound']},"
        f" mx {info.hosts['mx']}, mailbox {info.hosts['mailbox']}; all on loopback"
    )

    def setup(send_via: str, retrieve_via: str, per_host: int):
        target = lab_target(info, send_via, retrieve_via)
        return trip_factory(target, Net.for_target(target, max_per_host=per_host))

    series = [
        (
            "default, IMAPS IDLE",
            "default (587 outbound -> mx -> LMTP)",
            "submission",
            "imaps",
            True,
        ),
        ("direct, IMAPS IDLE", "direct (mx 25 from the authorized client)", "mx", "imaps", True),
        ("default, IMAPS polling", "default path, IMAPS polling", "submission", "imaps", False),
        ("default, POP3S", "default path, POP3S (polls)", "submission", "pop3s", True),
    ]
    for short, name, via, retrieve, idle in series:
        print(f"== {name}: {args.runs} sequential trips (after 1 warm-up)")
        trips = sequential(lab, setup(via, retrieve, 2), args.runs, args.gap, idle=idle)
        report_trips(short, trips, res, idle_target=idle and retrieve.startswith("imap"))

    if args.observer_runs:
        print(
            f"== observer cross-check (default path, IMAPS IDLE): {args.observer_runs} trips,"
            f" a second IMAPS session polling NOOP + UID SEARCH every {OBSERVER_POLL_S * 1000:g}"
            " ms"
        )
        trips = observed_series(
            lab, info, setup("submission", "imaps", 2), args.observer_runs, args.gap
        )
        report_trips("observer series", trips, Results(), idle_target=True)
        lows = [t.observed[0] - t.landed for t in trips if t.observed and t.landed]
        highs = [t.observed[1] - t.landed for t in trips if t.observed and t.landed]
        seen = [t.t_seen - t.observed[1] for t in trips if t.observed and t.t_seen]
        print(f"  observer saw it, relative to the log stamp: lower bound {summary(lows)}")
        print(f"                                              upper bound {summary(highs)}")
        print(f"  fetch_by_token saw it after the observer:   {summary(seen)}")
        missed = sum(1 for t in trips if t.observed is None)
        if missed:
            print(f"  observer missed {missed} trips")
        if highs:
            res.add(
                "observer: visible over IMAP, relative to the LMTP log stamp (median, bounds)",
                f"{values_ms(statistics.median(lows))} .. {values_ms(statistics.median(highs))}",
            )

    hook = spf_hook_ms(lab, info)
    if hook:
        print(
            f"== the mx's SPF hook (python3 + pyspf, run in its DATA ACL before the 250), inside"
            f" the container: median {statistics.median(hook):.0f} ms of {len(hook)} runs"
        )
        res.add(
            "mx DATA-ACL SPF hook (python3 + pyspf), median", f"{statistics.median(hook):.0f} ms"
        )

    if args.concurrent:
        runs = [
            (p, lb, v)
            for p in args.max_per_host
            for lb, v in (("default", "submission"), ("direct", "mx"))
        ]
        for limit, label, via in runs:
            n = args.concurrent
            print(f"== {label} path: {n} concurrent round trips (Net max_per_host {limit})")
            trips, wall = concurrent(lab, setup(via, "imaps", limit), n)
            mixups = [t for t in trips if t.error is None and not t.own]
            failed = [t for t in trips if t.error is not None]
            for t in mixups:
                print(f"  MIX-UP: trip {t.token} read back tokens {t.tokens_seen}")
            report_trips(
                f"{label}, {n} concurrent, limit {limit}", trips, Results(), idle_target=True
            )
            per_trip = sorted(vals(trips, "whole"))
            print(
                f"  wall time {values_ms(wall)}; per trip:",
                " ".join(values_ms(v) for v in per_trip),
            )
            print(f"  mix-ups {len(mixups)}, failed {len(failed)}")
            res.add(
                f"{label}, {n} concurrent, limit {limit}: wall; per-trip round trip",
                f"{values_ms(wall)}; {summary(per_trip).split(' (')[0]}",
            )
            res.add(
                f"{label}, {n} concurrent, limit {limit}: mix-ups (failed)",
                f"{len(mixups)} ({len(failed)})",
                "0",
                not mixups and not failed,
            )
        observer = Observer(info, info.user, info.password)
        left = observer.count()
        observer.close()
        print(f"== messages left in the mailbox: {left}")
        res.add("messages left in the mailbox afterwards", str(left), "0", left == 0)
    return 0


def _terminate(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="sequential trips per series (20)")
    parser.add_argument("--concurrent", type=int, default=20, help="concurrent trips (20; 0: none)")
    parser.add_argument(
        "--observer-runs", type=int, default=10, help="trips with the IMAP observer (10; 0: none)"
    )
    parser.add_argument(
        "--max-per-host",
        default="2,10,20",
        help="Net.max_per_host values for the concurrent runs (2,10,20; the CLI's default is 2)",
    )
    parser.add_argument("--gap", type=float, default=0.1, help="seconds between trips (0.1)")
    args = parser.parse_args(argv)
    try:
        args.max_per_host = [int(v) for v in args.max_per_host.split(",") if v.strip()]
    except ValueError:
        parser.error(f"--max-per-host {args.max_per_host!r}: comma-separated integers")
    if (
        args.runs < 1
        or args.concurrent < 0
        or args.observer_runs < 0
        or not args.max_per_host
        or min(args.max_per_host) < 1
    ):
        parser.error("--runs, --max-per-host: at least 1; --concurrent, --observer-runs: >= 0")
    if os.geteuid() != 0:
        print("error: the lab needs root", file=sys.stderr)
        return 2
    res = Results()
    started: list = []
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return run_bench(args, res, started)
    except KeyboardInterrupt:
        print("\ninterrupted; stopping the lab")
        return 130
    finally:
        for lab in reversed(started):
            with contextlib.suppress(Exception):
                lab.stop()
        signal.signal(signal.SIGTERM, previous)
        res.print_table()


if __name__ == "__main__":
    sys.exit(main())
