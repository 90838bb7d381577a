"""Benchmark: drift and diff of two 10,000-domain nights (issue 14; target <= 0.5 s).

    .venv/bin/python bench/drift.py [--domains 10000] [--repeat 3]

Two `check --domains`-sized nights are stored in a temporary history, as `check --domains`
stores them (one batch, one transaction each). Every domain has 14 findings from 8 probes,
shaped like the state findings of issue 14: the SPF record and its `all`, the DMARC policy
(p, sp, adkim, aspf, rua), the MX set, two DKIM keys (type, bits, fingerprint), a PTR per MX
host, a certificate per endpoint (fingerprint, issuer, not-after, and `days_left` marked
volatile), the TLS versions, STARTTLS/AUTH offered, and a few warn/fail findings. Messages carry
volatile text ("took 0.38 s"). The second night: every volatile value and message differs; 5 %
of the domains changed their DMARC policy, 2 % gained a warning, 1 % lost one, 0.5 % had the
SPF probe in ERROR (not checked). Timed: `drift.diff(db, night0, night1)` (the whole command
minus printing), best of --repeat; opening the history (header, quick_check) separately;
rendering the diff as text and JSON. A benchmark: prints figures, never asserts.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from probes.cli_history import write_diff
from probes.drift import diff, mark_new
from probes.history import HistoryDB
from probes.model import ErrorReason, Finding, Outcome, ProbeResult, Severity, Target
from probes.report.run import RunReport

ROOT = Path(__file__).resolve().parents[1]
INFO, WARN, FAIL = Severity.INFO, Severity.WARN, Severity.FAIL


def findings_of(d: int, night: int) -> dict[str, list[Finding]]:
    """The findings of domain `d` on `night`, by probe."""
    name = f"d{d:05}.example"
    took = f"{0.2 + ((d * 7 + night * 13) % 50) / 100:.2f}"
    policy = "quarantine" if night and d % 20 == 0 else "reject"

    def fd(probe, code, sev, subject=None, volatile=(), **ev):
        return Finding(
            probe_id=probe,
            code=code,
            severity=sev,
            message=f"{code} for {name} (took {took} s)",
            evidence=ev,
            subject=subject,
            volatile=frozenset(volatile),
            reproduce=f"dig +short txt {name}",
        )

    out: dict[str, list[Finding]] = {
        "dns.spf": [
            fd(
                "dns.spf",
                "SPF_RECORD",
                INFO,
                record=f"v=spf1 mx include:_spf.prov{d % 100}.example -all",
                lookups="4",
            ),
            fd("dns.spf", "SPF_ALL", INFO, all="-all"),
        ],
        "dns.dmarc": [
            fd(
                "dns.dmarc",
                "DMARC_POLICY",
                INFO,
                p=policy,
                sp="reject",
                adkim="r",
                aspf="r",
                rua=f"mailto:dmarc@{name}",
                t="n",
            ),
        ],
        "dns.mx": [fd("dns.mx", "MX_SET", INFO, hosts=f"10 mx1.{name},20 mx2.{name}")],
        "dns.dkim": [
            fd(
                "dns.dkim",
                "DKIM_KEY",
                INFO,
                subject=s,
                type="rsa",
                bits="2048",
                fingerprint=f"sha256:{d:08x}{s}",
            )
            for s in ("s1", "s2")
        ],
        "dns.ptr": [
            fd("dns.ptr", "PTR_NAME", INFO, subject=f"127.38.{d % 250}.{h}", names=f"mx{h}.{name}")
            for h in (1, 2)
        ],
        "tls.cert": [
            fd(
                "tls.cert",
                "CERT_SEEN",
                INFO,
                subject=f"mx1.{name}:25",
                volatile={"days_left"},
                fingerprint=f"{d:040x}",
                issuer="CN=Lab CA",
                not_after="2027-03-01T00:00:00Z",
                days_left=str(80 - night),
            ),
            fd(
                "tls.cert",
                "CERT_EXPIRES_SOON",
                WARN if d % 9 == 0 else INFO,
                subject=f"mx2.{name}:25",
                volatile={"days_left"},
                days_left=str(20 - night),
            ),
        ],
        "smtp.tls": [
            fd(
                "smtp.tls",
                "TLS_VERSIONS",
                INFO,
                subject=f"mx1.{name}:25",
                versions="TLSv1.2,TLSv1.3",
            ),
            fd(
                "smtp.tls",
                "STARTTLS_AUTH",
                INFO,
                subject=f"mx1.{name}:587",
                starttls="yes",
                auth="PLAIN LOGIN",
            ),
        ],
    }
    if d % 7 == 0:
        out["dns.dmarc"].append(fd("dns.dmarc", "DMARC_NO_RUF", WARN))
    if night and d % 50 == 1:
        out["dns.spf"].append(fd("dns.spf", "SPF_SOFTFAIL", WARN, all="~all"))  # new
    if d % 100 == 2 and not night:
        out["smtp.tls"].append(fd("smtp.tls", "TLS_OLD_VERSION", FAIL, version="TLSv1.0"))
    return out


def night(n: int, domains: int) -> list[RunReport]:
    started = datetime(2026, 11, 20, 2, tzinfo=UTC) + timedelta(days=n)
    reports = []
    for d in range(domains):
        results = []
        for probe, found in sorted(findings_of(d, n).items()):
            if n and probe == "dns.spf" and d % 200 == 3:  # not checked tonight
                results.append(ProbeResult(probe, Outcome.ERROR, (), ErrorReason.TIMEOUT, "t/o"))
            else:
                results.append(ProbeResult(probe, Outcome.COMPLETED, tuple(found), duration_s=0.1))
        reports.append(
            RunReport(
                run_id=f"n{n}-{d}",
                target=Target(domain=f"d{d:05}.example"),
                started=started,
                duration_s=1.0,
                results=tuple(results),
            )
        )
    return reports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "history.sqlite"
        t0 = time.perf_counter()
        first, second = night(0, args.domains), night(1, args.domains)
        build = time.perf_counter() - t0
        n_findings = sum(len(r.findings) for rep in first for r in rep.results)
        with HistoryDB(path) as db:
            t0 = time.perf_counter()
            db.add_many(first, batch_id="night0", what="probes:*")
            insert = time.perf_counter() - t0
            db.add_many(second, batch_id="night1", what="probes:*")
        size = path.stat().st_size
        t0 = time.perf_counter()
        db = HistoryDB(path)
        opening = time.perf_counter() - t0
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            d = diff(db, "night0", "night1")
            times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        marked = [mark_new(db, r, "probes:*") for r in second]  # as check --domains does
        marking = time.perf_counter() - t0
        n_new = sum(len(r.new or ()) for r in marked)
        t0 = time.perf_counter()
        write_diff(d, io.StringIO())
        text = time.perf_counter() - t0
        t0 = time.perf_counter()
        json.dumps(d.to_json())
        as_json = time.perf_counter() - t0
        db.close()
        # the command as a nightly job runs it: a fresh process, cold page cache of SQLite
        command = [sys.executable, "-m", "probes.cli", "diff", "night0", "night1", "-q"]
        walls = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            done = subprocess.run([*command, "--history", str(path)], cwd=ROOT, check=False)
            walls.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import probes.cli"], cwd=ROOT, check=True)
        startup = time.perf_counter() - t0
    best = min(times)
    print(f"{args.domains} domains, {n_findings} findings a night; history {size / 1e6:.0f} MB")
    print(f"  build reports {build:.2f} s; insert one night {insert:.2f} s")
    print(
        f"  diff: {len(d.new)} new, {len(d.resolved)} resolved, {len(d.changed)} changed,"
        f" {len(d.not_checked)} not checked"
    )
    print("| what | time | target |")
    print("|---|---|---|")
    print(
        f"| drift/diff of the two nights (best of {args.repeat};"
        f" all {', '.join(f'{t:.2f}' for t in times)} s, the first on a fresh connection)"
        f" | {best:.2f} s | ≤ 0.5 s ({'met' if best <= 0.5 else 'NOT met'}) |"
    )
    print(f"| opening the history (header, quick_check) | {opening:.2f} s | – |")
    print(
        f"| marking the new findings of the second night's {len(marked)} reports"
        f" ({n_new} new), as `check --domains` does | {marking:.2f} s | – |"
    )
    print(
        f"| `mailprobe diff night0 night1 -q` in a fresh process (exit {done.returncode};"
        f" all {', '.join(f'{t:.2f}' for t in walls)} s) | {min(walls):.2f} s, of which"
        f" Python start-up and imports {startup:.2f} s | – |"
    )
    print(f"| rendering the diff: text / JSON | {text:.2f} / {as_json:.2f} s | – |")


if __name__ == "__main__":
    main()
