"""A `check --domains` batch on disk: DIR/batch.json says what it is, DIR/domains.jsonl holds
one line per finished domain, in file order; `--resume` continues from what is there.

`batch.json` (written before the first domain) names the run id, the domains (a digest of
the list), the probes, the options (a digest) and the mailprobe version. `--resume --output
DIR` checks that the same domains, probes and options are asked for, keeps every complete
line of domains.jsonl (a line cut short by the interruption is dropped), and audits the
domains after them. The batch keeps
its run id, so the history stores it once, as one batch, when it ends.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from probes.errors import UsageError
from probes.model import Target
from probes.registry import mailprobe_version
from probes.report.run import RunReport, new_run_id

BATCH_FILE = "batch.json"
LINES_FILE = "domains.jsonl"


@dataclass
class Batch:
    run_id: str
    out_dir: Path
    stream: IO[str]
    done: set[str] = field(default_factory=set)  # the domains of the kept lines
    kept_bytes: int = 0  # how much of domains.jsonl they are
    # Run ids seen in this batch, by their second: a run id is a second and 24 random bits,
    # and a batch starts a thousand domains a second (a clash every few thousand domains).
    _ids: dict[str, set[str]] = field(default_factory=dict)

    def unique(self, report: RunReport) -> RunReport:
        """`report`, with a new run id (same second, other random part) when another run of
        this batch already has its id."""
        second = report.run_id.partition("-")[0]
        seen = self._ids.setdefault(second, set())
        while report.run_id in seen:
            report = dataclasses.replace(report, run_id=new_run_id(report.started))
        seen.add(report.run_id)
        if len(self._ids) > 600:  # reports come roughly in time order: old seconds go
            for old in sorted(self._ids)[:300]:
                del self._ids[old]
        return report

    def kept(self) -> Iterator[tuple[RunReport, str]]:
        """The kept lines again, (report, line) in order, read one at a time (a batch of a
        million domains is not held in memory)."""
        if not self.kept_bytes:
            return
        with open(self.out_dir / LINES_FILE, "rb") as handle:
            left = self.kept_bytes
            for raw in handle:
                if left <= 0:
                    break
                left -= len(raw)
                line = raw.decode("utf-8").rstrip("\n")
                yield RunReport.from_json(json.loads(line)), line


def _digest(domains: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(domains).encode()).hexdigest()


def options_digest(template: Target) -> str:
    """What the domains are asked with (resolver, CA, timeouts, selectors, lists, ...): a
    resumed batch must be asked the same way."""
    fields = dataclasses.replace(template, domain="options.invalid", login=None)
    text = json.dumps(
        {**fields.to_json(), "timeouts": vars(fields.timeouts), "message": repr(fields.message)},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def open_batch(
    args: Any, domains: Sequence[str], probe_ids: Sequence[str], template: Target
) -> Batch:
    """The batch to write: a new one, or (--resume) the interrupted one in --output DIR."""
    if args.resume:
        return _resume(Path(args.output), domains, probe_ids, options_digest(template))
    run_id = new_run_id()
    out_dir = Path(args.output) if args.output else Path("reports") / run_id
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        _write_json(
            out_dir / BATCH_FILE,
            {
                "run_id": run_id,
                "domains": len(domains),
                "domains_sha256": _digest(domains),
                "probes": list(probe_ids),
                "options_sha256": options_digest(template),
                "mailprobe": mailprobe_version(),
            },
        )
        stream = open(out_dir / LINES_FILE, "w", encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        raise UsageError(f"--output {out_dir}: {exc.strerror or exc}") from None
    return Batch(run_id, out_dir, stream)


def _resume(out_dir: Path, domains: Sequence[str], probe_ids: Sequence[str], options: str) -> Batch:
    where = f"--resume --output {out_dir}"
    try:
        meta = json.loads((out_dir / BATCH_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{where}: no {BATCH_FILE} there: not a `check --domains` run") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{where}: {BATCH_FILE} is unreadable: {exc}") from None
    if meta.get("domains_sha256") != _digest(domains):
        raise UsageError(
            f"{where}: that run audited other domains ({meta.get('domains')} in its list); "
            "give the same --domains file"
        )
    if list(meta.get("probes") or []) != list(probe_ids):
        raise UsageError(
            f"{where}: that run used other probes ({','.join(meta.get('probes') or [])}); "
            "give the same --probe options"
        )
    if meta.get("options_sha256") not in (None, options):
        raise UsageError(
            f"{where}: that run asked with other options (resolver, CA file, timeouts, "
            "selectors, blocklists, ...); give the same ones"
        )
    lines_path = out_dir / LINES_FILE
    try:
        raw = lines_path.read_bytes() if lines_path.exists() else b""
    except OSError as exc:
        raise UsageError(f"{where}: {LINES_FILE}: {exc.strerror or exc}") from None
    kept = 0
    keep = 0
    expected = iter(domains)
    done: set[str] = set()
    for chunk in raw.split(b"\n"):
        end = keep + len(chunk) + 1
        if end > len(raw):
            break  # no newline after it: cut short by the interruption
        try:
            line = chunk.decode("utf-8")
            report = RunReport.from_json(json.loads(line))
        except (ValueError, KeyError, TypeError):
            break  # a damaged line: everything from here on is audited again
        if report.target.domain != next(expected, None):
            raise UsageError(
                f"{where}: {LINES_FILE} has {report.target.domain} out of the file's order"
            )
        done.add(report.target.domain)
        kept += 1
        keep = end
    if kept == len(domains):
        raise UsageError(
            f"{where}: that batch is complete ({len(domains)} domains): nothing to resume"
        )
    try:
        with open(lines_path, "ab") as handle:
            handle.truncate(keep)
        stream = open(lines_path, "a", encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        raise UsageError(f"{where}: {LINES_FILE}: {exc.strerror or exc}") from None
    return Batch(
        str(meta.get("run_id") or new_run_id()),
        out_dir,
        stream,
        done=done,
        kept_bytes=keep,
    )


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)
