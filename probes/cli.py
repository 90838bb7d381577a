"""`mailprobe` command line. Exit status (docs/contract.md): 0 nothing at or above the failure
threshold, 1 findings at or above it, 2 usage or configuration error, 3 a probe could not run,
130 interrupted (Ctrl-C), 143 terminated (SIGTERM); with --format nagios 0 OK, 1 WARNING,
2 CRITICAL, 3 UNKNOWN.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import dataclasses
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from probes import interrupts
from probes.errors import UsageError
from probes.model import (
    CANONICALIZATIONS,
    RETRIEVE_VIA,
    SEND_VIA,
    MessageOptions,
    Severity,
    Target,
    Thresholds,
    Timeouts,
)
from probes.parse.dnsbl import DEFAULT_DOMAIN_LISTS, DEFAULT_IP_LISTS
from probes.report import (
    EXIT_PROBE_ERROR,
    EXIT_USAGE,
    RunReport,
    exit_status,
    write_report,
)

EXIT_INTERRUPTED = 130  # SIGINT (Ctrl-C)
EXIT_TERMINATED = 143  # SIGTERM
FORMATS = ("text", "json")


T = TypeVar("T")


def _say(quiet: bool):
    def say(msg: str) -> None:
        if not quiet:
            print(f"mailprobe: {msg}", file=sys.stderr, flush=True)

    return say


# ----- check ------------------------------------------------------------------------------------
def cmd_check(args: argparse.Namespace) -> int:
    from probes import registry
    from probes.cli_history import check_history, fail_on_new
    from probes.cli_time import command_started, run_deadline

    args.run_deadline = run_deadline(args, command_started())

    if fail_on_new(args.fail_on) is not None and args.no_history:
        raise UsageError(
            f"--fail-on {args.fail_on} compares with the history: it cannot go with --no-history"
        )

    check_history(args)

    say = _say(args.quiet)
    sources = [bool(args.lab), bool(args.domain), bool(args.domains), args.lab_name is not None]
    if sum(sources) == 0:
        raise UsageError("check: give a DOMAIN, --domains FILE, --lab or --lab-name NAME")
    if sum(sources) > 1:
        raise UsageError(
            "check: give only one of DOMAIN, --domains FILE, --lab and --lab-name NAME"
        )
    for given, option in (
        (args.lab_spec, "--lab-spec"),
        (args.lab_flavour, "--lab-flavour"),
        (args.keep_lab is not None, "--keep-lab"),
    ):
        if given and not args.lab:
            raise UsageError(f"check: {option} goes with --lab")
    renderers = registry.load_renderers()
    _choose_formats(args, renderers)
    available = registry.load_probes()
    probe_classes = registry.select_probes(available, args.probe or [])
    dkim_keys = _dkim_keys(args.dkim_key or [])
    _check_run_options(args)
    if not args.domains:
        for given, option in ((args.scheduler, "--scheduler"), (args.resume, "--resume")):
            if given:
                raise UsageError(f"check: {option} goes with --domains FILE")
    if args.domains:
        from probes.audit import read_domains

        for option, value in (
            ("--mx", args.mx),
            ("--submission-host", args.submission_host),
            ("--mailbox-host", args.mailbox_host),
        ):
            if value:
                raise UsageError(
                    f"{option}: names one domain's servers; with --domains each domain's "
                    "servers come from its DNS"
                )
        if args.max_run_time is not None:
            raise UsageError(
                "--max-run-time: not with --domains (each domain's probes keep their timeouts)"
            )
        domains = read_domains(args.domains)
        template = _target_from_args(args, domains[0], dkim_keys)
        return _audit_and_report(args, domains, template, probe_classes)
    if not args.lab and args.lab_name is None:
        target = _target_from_args(args, args.domain, dkim_keys)
        return _run_and_report(args, target, probe_classes, renderers, secrets=())

    changes, message_given = _lab_changes(args, dkim_keys)
    # The user's overrides get the checks a DOMAIN gets, before the lab starts (or is used) ...
    _checked(Target(domain="lab.invalid", **changes), _time_options(args))

    def check_lab(info, *, lab_removed: bool = False) -> int:
        """... and the lab's Target with them, built as everywhere else (probes.lab.target):
        one path for a lab this command starts and a running one (--lab-name)."""
        from probes.lab.target import lab_target

        target = _checked(
            lab_target(info, message_given=message_given, **changes), _time_options(args)
        )
        return _run_and_report(
            args,
            target,
            probe_classes,
            renderers,
            secrets=(info.password,),
            lab_removed=lab_removed,
        )

    if args.lab_name is not None:
        from probes.lab.running import LabNotRunning, running_lab

        try:
            info = running_lab(args.lab_name)
        except LabNotRunning as exc:  # exit 2, before anything is probed
            raise UsageError(f"--lab-name {args.lab_name}: {exc}") from None
        say(f"lab {args.lab_name!r} ({info.lab_id}, {info.domain}) answers; probing it")
        return check_lab(info)

    spec = _load_spec(args.lab_spec, args.lab_flavour)
    if args.keep_lab is not None:
        return _check_kept_lab(args, spec, say, check_lab)
    from probes.lab.lab import Lab

    with Lab(spec, say=say) as lab:
        assert lab.info is not None
        return check_lab(lab.info, lab_removed=True)


def _check_kept_lab(args: argparse.Namespace, spec, say, check_lab) -> int:
    """`check --lab --keep-lab [NAME]`: start the lab as `lab up` does (its state under the
    state directory), probe it, and keep it once the run is done; until then an interrupt or
    an error removes everything, as for a throwaway lab."""
    import secrets

    from probes.lab.lab import Lab
    from probes.lab.state import LabState, check_name

    name = args.keep_lab or f"check-{secrets.token_hex(3)}"
    try:
        check_name(name)
    except ValueError as exc:
        raise UsageError(f"--keep-lab: {exc}") from None
    state = LabState(name)
    if state.exists():
        raise UsageError(
            f"--keep-lab {name}: lab {name!r} is already up; use `mailprobe check --lab-name "
            f"{name}`, or `mailprobe lab down --name {name}` first"
        )
    lab = Lab(spec, workdir=state.lab_dir, owned_dir=state.root, say=say)
    status, info = _kept_lab(lab, state, lambda info: (check_lab(info), info))
    # The last lines: how to use the kept lab and how to bring it down. On stdout after a
    # text report; on stderr when stdout is JSON, plugin output or another machine format.
    out = sys.stdout if args.format == "text" else sys.stderr
    print(
        f"lab {name!r} ({info.lab_id}) is kept: `mailprobe check --lab-name {name}` probes it "
        f"again, `mailprobe lab status --name {name}` shows it; bring it down with:\n"
        f"mailprobe lab down --name {name}",
        file=out,
        flush=True,
    )
    return status


def _choose_formats(args: argparse.Namespace, renderers) -> None:
    """`--format a,b,...`: every format named is written (with json) to the report directory,
    and args.format becomes the one printed on stdout (the one named, or text for several)."""
    from probes.report.output import parse_formats, shown_format

    formats = parse_formats(args.format, renderers)
    args.format = shown_format(formats)
    args.formats = formats  # as given
    args.report_formats = list(dict.fromkeys(["json", *formats]))  # as written


def _check_run_options(args: argparse.Namespace) -> None:
    """The options about how to run and where to write, checked before anything is probed
    or a lab starts (for DOMAIN, --domains and --lab alike)."""
    for option, value in (
        ("--max-per-host", args.max_per_host),
        ("--concurrency", args.concurrency),
        ("--processes", args.processes),
    ):
        if value < 1:
            raise UsageError(f"{option} {value}: must be at least 1")
    # The report directory is made now, so a run (and a test message sent) is never lost to it.
    out = Path(args.output) if args.output else Path("reports")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise UsageError(f"--output {out}: cannot write there: {exc.strerror or exc}") from None
    from probes.cli_prometheus import check_prometheus_options

    args.prometheus_dir = check_prometheus_options(args)


def _dkim_keys(values: list[str]) -> tuple[tuple[str, str], ...]:
    keys = []
    for value in values:
        selector, sep, path = value.partition("=")
        if not sep or not selector or not path:
            raise UsageError(f"--dkim-key {value!r}: expected SELECTOR=FILE")
        keys.append((selector, path))
    return tuple(keys)


# The command-line option of each Target field (for errors from probes.validate).
_OPTIONS = {
    "domain": "DOMAIN",
    "mx_hosts": "--mx",
    "submission_hosts": "--submission-host",
    "mailbox_hosts": "--mailbox-host",
    "selectors": "--selector",
    "sending_ips": "--sending-ip",
    "dnsbls": "--dnsbl",
    "domain_blocklists": "--domain-blocklist",
    "resolver": "--resolver",
    "ca_file": "--ca-file",
    "trust_anchor": "--trust-anchor",
    "credentials_ref": "--credentials",
    "dkim_keys": "--dkim-key",
    "message.send_via": "--send-via",
    "message.signer": "--signer",
    "message.canonicalization": "--canonicalization",
    "message.signed_headers": "--signed-headers",
    "message.submit_host": "--submit-host",
    "message.mail_from": "--mail-from",
    "message.header_from": "--header-from",
    "message.rcpt_to": "--rcpt-to",
    "message.source_address": "--source-address",
    "message.retrieve_via": "--retrieve-via",
    "message.receiver_id": "--receiver-id",
    "message.deadline_s": "--deadline",
    "message.receiver_listen": "--receiver-listen",
    "message.receiver_domain": "--receiver-domain",
    "thresholds.cert_days_warn": "--cert-days-warn",
    "thresholds.cert_days_crit": "--cert-days-crit",
    "thresholds.spf_lookups_warn": "--spf-lookups-warn",
    "thresholds.spf_lookups_crit": "--spf-lookups-crit",
    "thresholds.dkim_key_age_warn": "--dkim-key-age-warn",
    "thresholds.dkim_key_age_crit": "--dkim-key-age-crit",
    "timeouts.connect": "--connect-timeout",
    "timeouts.io": "--io-timeout",
    "timeouts.dns": "--dns-timeout",
    "timeouts.probe": "--probe-timeout",
}
NAGIOS = "nagios"


def _time_options(args: argparse.Namespace) -> dict[str, str]:
    from probes.cli_time import timeout_options

    return timeout_options(args)


def _checked(target: Target, options: dict[str, str] | None = None) -> Target:
    """The Target validated and normalized (probes.validate), or UsageError naming the option
    (`options`: this command line's own names for some fields, e.g. --timeout)."""
    from probes.validate import checked_target

    checked, problems = checked_target(target, files=True)
    if problems:
        field, problem = problems[0]
        key = field.split("[")[0]
        option = (options or {}).get(key) or _OPTIONS.get(key, field)
        raise UsageError(f"{option}: {problem}")
    return checked


def _target_from_args(
    args: argparse.Namespace, domain: str, dkim_keys: tuple[tuple[str, str], ...] = ()
) -> Target:
    from probes.cli_time import apply_timeouts

    message, _ = _message_options(args)
    target = Target(
        domain=domain,
        timeouts=apply_timeouts(args, Timeouts()),
        mx_hosts=tuple(args.mx or ()),
        submission_hosts=tuple(args.submission_host or ()),
        mailbox_hosts=tuple(args.mailbox_host or ()),
        credentials_ref=args.credentials,
        selectors=tuple(args.selector or ()),
        sending_ips=tuple(args.sending_ip or ()),
        resolver=args.resolver,
        ca_file=args.ca_file,
        trust_anchor=args.trust_anchor,
        dkim_keys=dkim_keys,
        discover_selectors=args.discover_selectors,
        message=message,
        thresholds=_thresholds(args),
        **_blocklists(args),
    )
    return _checked(target, _time_options(args))


def _blocklists(args: argparse.Namespace) -> dict[str, Any]:
    """The blocklists named (None: not named; probes.validate checks the zone names). With
    only one kind named, the other kind is none: naming any list replaces the defaults."""
    ip, domain = args.dnsbl, args.domain_blocklist
    if ip is None and domain is None:
        return {}
    return {"dnsbls": tuple(ip or ()), "domain_blocklists": tuple(domain or ())}


def _thresholds(args: argparse.Namespace) -> Thresholds:
    """The operator's thresholds (probes.validate checks their range syntax)."""
    given = args.cert_days_warn
    return Thresholds(
        cert_days_warn=Thresholds.cert_days_warn if given is None else given,
        cert_days_crit=args.cert_days_crit,
        spf_lookups_warn=args.spf_lookups_warn,
        spf_lookups_crit=args.spf_lookups_crit,
        dkim_key_age_warn=args.dkim_key_age_warn,
        dkim_key_age_crit=args.dkim_key_age_crit,
    )


def _lab_changes(
    args: argparse.Namespace, dkim_keys: tuple[tuple[str, str], ...]
) -> tuple[dict[str, Any], frozenset[str]]:
    """The Target fields the user gave with `check --lab` (they replace the lab's), and the
    message fields given (the lab fills the others)."""
    given = {
        "mx_hosts": tuple(args.mx or ()),
        "submission_hosts": tuple(args.submission_host or ()),
        "mailbox_hosts": tuple(args.mailbox_host or ()),
        "credentials_ref": args.credentials,
        "selectors": tuple(args.selector or ()),
        "sending_ips": tuple(args.sending_ip or ()),
        "resolver": args.resolver,
        "ca_file": args.ca_file,
        "trust_anchor": args.trust_anchor,
        "dkim_keys": dkim_keys,
    }
    changes: dict[str, Any] = {k: v for k, v in given.items() if v}
    changes.update(_blocklists(args))  # one kind named: none of the other (not the lab's)
    message, message_given = _message_options(args)
    changes["message"] = message
    changes["discover_selectors"] = args.discover_selectors
    changes["thresholds"] = _thresholds(args)
    from probes.cli_time import apply_timeouts, timeouts_given

    if timeouts_given(args):
        changes["timeouts"] = apply_timeouts(args, Timeouts())
    return changes, message_given


def _message_options(args: argparse.Namespace) -> tuple[MessageOptions, frozenset[str]]:
    """The message probes' settings from the command line, and the names of those given
    (probes.validate checks them with the rest of the Target)."""
    defaults = MessageOptions()
    signed_headers = defaults.signed_headers
    if args.signed_headers is not None:
        signed_headers = tuple(
            h.strip().lower() for h in args.signed_headers.split(",") if h.strip()
        )
    values = {
        "submit_host": args.submit_host,
        "mail_from": args.mail_from,
        "header_from": args.header_from,
        "rcpt_to": args.rcpt_to,
        "source_address": args.source_address,
        "receiver_id": args.receiver_id,
        "receiver_listen": args.receiver_listen,
        "receiver_domain": args.receiver_domain,
    }
    options = MessageOptions(
        signed_headers=signed_headers,
        oversign_from=not args.no_oversign_from,
        send_via=args.send_via,
        signer=args.signer,
        canonicalization=args.canonicalization,
        retrieve_via=args.retrieve_via,
        deadline_s=args.deadline if args.deadline is not None else defaults.deadline_s,
        keep=args.keep_message,
        **values,
    )
    return options, frozenset(k for k, v in values.items() if v is not None)


def _run_and_report(
    args, target: Target, probe_classes, renderers, secrets, *, lab_removed: bool = False
) -> int:
    """Run the probes, store and write the report, print it. `lab_removed`: the target is a
    throwaway lab removed when the command ends (its reproduce lines say so)."""
    from probes.cli_render import for_files, show
    from probes.net import Net
    from probes.runner import run_report

    net = Net.for_target(target, max_per_host=args.max_per_host)
    report = run_report(
        [cls() for cls in probe_classes],
        target,
        net,
        secrets=secrets,
        deadline=args.run_deadline,
        run_limit=args.max_run_time,
    )
    if lab_removed:
        from probes.report.removed_lab import note_lab_removed

        report = note_lab_removed(report)
    out_dir = Path(args.output) if args.output else Path("reports") / report.run_id
    with contextlib.ExitStack() as stack:
        db = None
        if not args.no_history:
            from probes.drift import mark_new
            from probes.history import HistoryDB

            db = stack.enter_context(HistoryDB(args.history))
            report = mark_new(db, report, _what(args))  # reports mark the new findings
            # the runs before, for the HTML scorecard's trend chart (not in the JSON)
            report = dataclasses.replace(report, trend=db.trend(report, _what(args)))
        status = _status(args, [report], db)[0]
        still = None
        quiet_text = args.quiet and args.format == "text"
        if db is not None and quiet_text and status != 0:
            from probes.drift import still_failing

            still = still_failing(db, report, status, _threshold(args), _what(args))
        paths = write_report(report, out_dir, args.report_formats, for_files(renderers))
        if db is not None:
            db.add(report, status=status, what=_what(args))
    if args.prometheus_dir:
        from probes.cli_prometheus import write_run

        paths.append(write_run(args.prometheus_dir, report))
    if args.format == NAGIOS:  # always the plugin output; the exit follows it
        from probes.report.nagios_report import state_of

        renderers[args.format](report, sys.stdout)
        _say(args.quiet)("report written: " + ", ".join(str(p) for p in paths))
        return state_of(report)
    if still is not None:  # -q, failing for the same reason as the runs before: one line
        print(still, flush=True)
    elif not args.quiet or status != 0:
        show(renderers, args.format, report, sys.stdout, verbose=args.verbose)
    _say(args.quiet)("report written: " + ", ".join(str(p) for p in paths))
    return status


def _what(args: argparse.Namespace) -> str:
    """What a `check` ran, the second half of its key in the history: its --probe globs, and
    for `check --lab` which lab (spec file's content and flavour): a run of another lab spec
    is not compared with it (its findings would read as fixed or new)."""
    from probes.cli_history import what_of_probes

    what = what_of_probes(args.probe)
    if getattr(args, "lab", False):
        import hashlib

        spec = b""
        if args.lab_spec:
            with contextlib.suppress(OSError):  # read before the lab started; gone since: ""
                spec = Path(args.lab_spec).read_bytes()
        flavour = (args.lab_flavour or "").encode()
        what += " lab:" + hashlib.sha256(spec + b"\0" + flavour).hexdigest()[:12]
    return what


def _threshold(args: argparse.Namespace) -> Severity:
    """The severity of --fail-on SEV or --fail-on new:SEV."""
    return Severity(args.fail_on.rpartition(":")[2])


def _status(args: argparse.Namespace, reports: list[RunReport], db: Any = None) -> list[int]:
    """Exit statuses: against the severity threshold, or with `--fail-on new:SEV` against the
    previous comparable run in the history (new or worsened findings at or above SEV)."""
    from probes.cli_history import fail_on_new

    threshold = fail_on_new(args.fail_on)
    if threshold is None:
        return [exit_status(r, Severity(args.fail_on)) for r in reports]
    from probes.drift import exit_status_new
    from probes.history import HistoryDB

    with contextlib.ExitStack() as stack:
        if db is None:
            db = stack.enter_context(HistoryDB(args.history))
        return [exit_status_new(db, r, threshold, _what(args)) for r in reports]


def _audit_and_report(args, domains: list[str], template: Target, probe_classes) -> int:
    """`check --domains`: one JSON line per domain in DIR/domains.jsonl, a line each on stdout."""

    if len(args.formats) > 1 or args.format not in ("text", "json", NAGIOS):
        given = ",".join(args.formats)
        raise UsageError(f"--format {given!r}: with --domains use one of text, json or nagios")
    if args.resume and not args.output:
        raise UsageError("--resume: give the --output DIR of the run to continue")
    client = None
    if args.scheduler:  # reached and checked before anything is written
        from probes.audit_dask import connect

        client = connect(args.scheduler)
    try:
        return _audit_into(args, domains, template, probe_classes, client)
    finally:
        if client is not None:
            client.close()


def _audit_into(args, domains: list[str], template: Target, probe_classes, client) -> int:
    from probes.audit import FleetCounts, audit_domains_in_processes
    from probes.cli_resume import open_batch
    from probes.progress import progress
    from probes.report.audit_summary import AuditCounts
    from probes.report.run import EXIT_FINDINGS, EXIT_OK

    batch = open_batch(args, domains, [cls.id for cls in probe_classes], template)
    run_id, out_dir, stream = batch.run_id, batch.out_dir, batch.stream
    todo = [d for d in domains if d not in batch.done]
    plugin: list[tuple[str, int, RunReport]] = []  # --format nagios: (domain, state, report)
    worst = EXIT_OK
    counts = AuditCounts()  # the summary: failing, with probe errors, ok (audit_summary)
    metrics = None
    if args.prometheus_dir:
        from probes.cli_prometheus import audit_metrics

        metrics = audit_metrics(args.domains, args.prometheus_per_domain)
    fleet = FleetCounts()
    started, t0 = time.time(), time.perf_counter()
    with stream, contextlib.ExitStack() as stack:
        db = None
        if not args.no_history:
            from probes.drift import mark_new
            from probes.history import HistoryDB

            db = stack.enter_context(HistoryDB(args.history))  # one connection for the night
            # the reports go to the history as they come, and in at the end, in one piece
            store = stack.enter_context(db.staged(batch_id=run_id, what=_what(args)))
        probe_ids = [cls.id for cls in probe_classes]
        if client is not None:
            from probes.audit_dask import audit_on_cluster

            reports = audit_on_cluster(
                client,
                todo,
                probe_ids,
                template,
                concurrency=args.concurrency,
                max_per_host=args.max_per_host,
                stats=fleet,
            )
        else:
            reports = audit_domains_in_processes(
                todo,
                probe_ids,
                template,
                concurrency=args.concurrency,
                processes=min(args.processes, max(1, len(todo) // 8)),
                max_per_host=args.max_per_host,
                stats=fleet,
            )
        stack.callback(reports.close)  # an interrupt here ends its worker processes at once
        bar = stack.enter_context(progress(len(domains), "domains", quiet=args.quiet))

        def resumed_then_new():
            yield from batch.kept()  # what an interrupted run already wrote (--resume)
            for report in reports:
                yield report, None

        for report, written in resumed_then_new():
            bar.advance(report.target.domain)
            report = batch.unique(report)  # kept lines keep theirs (unique when written)
            if written is None:
                if db is not None:
                    report = mark_new(db, report, _what(args))
                line = json.dumps(report.to_json(), separators=(",", ":"))
                stream.write(line + "\n")
                stream.flush()
            else:
                line = written
            status = _status(args, [report], db)[0]
            if db is not None:
                store(report, status)
            counts.add(report, status)
            if metrics is not None:
                metrics.add(report, status)
            worst = EXIT_FINDINGS if EXIT_FINDINGS in (worst, status) else max(worst, status)
            if args.format == "json":
                print(line)
            elif args.format == NAGIOS:
                from probes.report.nagios_report import state_of

                plugin.append((report.target.domain, state_of(report), report))
            elif not args.quiet or status != EXIT_OK:
                print(_domain_line(report, status))
    if args.format == "text":
        _say(args.quiet)(counts.text(args.fail_on, time.perf_counter() - t0))
        if batch.done:
            _say(args.quiet)(f"{len(batch.done)} of them kept from the interrupted run (--resume)")
        if fleet.recorded or fleet.replayed:
            _say(args.quiet)(
                f"server conversations: {fleet.recorded} had, {fleet.replayed} replayed for "
                "other domains (each endpoint once per run)"
                + (f"; {fleet.diverged} replays went another way" if fleet.diverged else "")
            )
    written = [out_dir / "domains.jsonl"]
    if metrics is not None:
        from probes.cli_prometheus import write_audit

        elapsed = time.perf_counter() - t0
        written.append(write_audit(args.prometheus_dir, metrics, started, elapsed))
    _say(args.quiet)("report written: " + ", ".join(str(p) for p in written))
    if args.format == NAGIOS:
        from probes.report.nagios_report import render_many

        return render_many(plugin, sys.stdout, what="domains")
    return worst


def _domain_line(report: RunReport, status: int) -> str:
    from probes.report.audit_summary import domain_line

    return domain_line(report)


def _load_spec(path: str | None, flavour: str | None = None):
    """The lab spec of a YAML file (or the default), in `flavour` ("mta+front") when given."""
    from probes.lab.flavours import with_flavour
    from probes.lab.spec import LabSpec

    try:
        spec = LabSpec.from_yaml(path) if path else LabSpec()
        if flavour:
            spec = with_flavour(spec, flavour)
            spec.validate(path)
        return spec
    except ValueError as exc:  # LabSpecError is one
        raise UsageError(str(exc)) from None


def add_threshold_options(parser: argparse.ArgumentParser) -> None:
    """The operator's thresholds, in the monitoring-plugins range syntax (docs/contract.md)."""
    group = parser.add_argument_group(
        "thresholds (monitoring-plugins ranges: 10 = 0:10, 10: = at least 10, ~:10 = at most "
        "10, @10:20 = alert inside; the probes pick severities with them, nagios perfdata "
        "repeats them)"
    )
    group.add_argument(
        "--cert-days-warn",
        metavar="RANGE",
        help="CERT_EXPIRING_SOON (warn) when a certificate's days left fall outside "
        "(default 21:, fewer than 21 days)",
    )
    group.add_argument(
        "--cert-days-crit",
        metavar="RANGE",
        help="CERT_EXPIRING_SOON at fail severity outside this range, e.g. 7: (default none)",
    )
    group.add_argument(
        "--spf-lookups-warn",
        metavar="RANGE",
        help="SPF_LOOKUP_COUNT at warn when the lookup count falls outside, e.g. 8 (default "
        "none; over 10 is always SPF_TOO_MANY_LOOKUPS, fail)",
    )
    group.add_argument(
        "--spf-lookups-crit",
        metavar="RANGE",
        help="SPF_LOOKUP_COUNT at fail outside this range, e.g. 9 (default none)",
    )
    group.add_argument(
        "--dkim-key-age-warn",
        metavar="RANGE",
        help="DKIM_KEY_AGE at warn when a key's age in days falls outside, e.g. ~:365; the "
        "age is known only from a date in the selector name (s20240101, 2024-01)",
    )
    group.add_argument(
        "--dkim-key-age-crit",
        metavar="RANGE",
        help="DKIM_KEY_AGE at fail outside this range, e.g. ~:730 (default none)",
    )


# ----- lab --------------------------------------------------------------------------------------
def cmd_lab_up(args: argparse.Namespace) -> int:
    from probes.lab.lab import Lab
    from probes.lab.state import LabState

    say = _say(args.quiet)
    state = LabState(args.name)
    if state.exists():
        raise UsageError(
            f"lab {args.name!r} is already up; `mailprobe lab down --name {args.name}` first"
        )
    spec = _load_spec(args.spec, args.flavour)
    lab = Lab(spec, workdir=state.lab_dir, owned_dir=state.root, say=say)
    _kept_lab(lab, state, lambda info: _print_info(info, args.format, state))
    return 0


def _kept_lab(lab: Any, state: Any, use: Callable[[Any], T]) -> T:
    """Start `lab` with its state under `state`, `use` it, and keep it (`lab up`, `check --lab
    --keep-lab`): until `use` is done an interrupt or an error removes everything, as for a
    throwaway lab; from then on a signal leaves it running."""
    try:
        with interrupts.deferred():
            state.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = lab.start()
        state.save(info)
        result = use(info)
        sys.stdout.flush()
        first = interrupts.received()
        if first is not None:  # a signal whose KeyboardInterrupt Python dropped: not kept
            raise interrupts.Interrupted(first)
        # Settled first, kept second: until finish() a signal raises and whoever stops the lab
        # (the cleanup below, or main's if a second signal cuts that short) finds it not kept.
        interrupts.finish()
        lab.keep()
    except BaseException:
        with interrupts.deferred():
            lab.stop()
            state.remove()
        raise
    return result


def cmd_lab_down(args: argparse.Namespace) -> int:
    from probes.lab.containers import remove_lab_containers
    from probes.lab.doctor import DoctorError, apply_env, find_docker_api
    from probes.lab.state import LabState, all_states

    say = _say(args.quiet)
    api = find_docker_api()
    if api:
        apply_env(api)
    states = all_states() if args.all else [LabState(args.name)]
    existed = [s for s in states if s.exists()]
    if api is None and existed:
        raise DoctorError(
            "no Docker-compatible API answers, so the lab's containers cannot be removed; "
            "the lab's state is kept. Start the engine (`mailprobe lab doctor`) and retry."
        )
    removed: list[str] = []
    for state in states:
        if state.exists() and api:
            removed += remove_lab_containers(state.load().lab_id)
        state.remove()
    if args.all and api:
        removed += remove_lab_containers(None)
    if not removed and not existed:
        if args.all:
            say("no labs were up")
        else:
            up = [s.name for s in all_states()]
            say(f"no lab {args.name!r} was up" + (f" (up: {', '.join(up)})" if up else ""))
    for name in removed:
        say(f"removed {name}")
    return 0


def cmd_lab_status(args: argparse.Namespace) -> int:
    from probes.lab.containers import list_lab_containers
    from probes.lab.doctor import apply_env, find_docker_api
    from probes.lab.state import LabState, service_health

    state = LabState(args.name)
    if not state.exists():
        print(f"lab {args.name!r} is not up", file=sys.stderr)
        return 1
    info = state.load()
    api = find_docker_api()
    if api:
        apply_env(api)
    containers = list_lab_containers(info.lab_id) if api else []
    health = service_health(info)
    if args.format == "json":
        doc = info.to_json() | {
            "containers": [{"name": n, "role": r, "status": s} for n, r, s in containers],
            "services": health,
            "ready": all(health.values()),
        }
        print(json.dumps(doc, indent=2))
    else:
        _print_info(info, "text", state)
        for name, role, status in containers:
            print(f"  container {name:32} {role:9} {status}")
        print("  services: " + ", ".join(f"{k} {'up' if v else 'DOWN'}" for k, v in health.items()))
    return 0 if all(health.values()) else 1


def _print_info(info, fmt: str, state) -> None:
    if fmt == "json":
        print(json.dumps(info.to_json(), indent=2))
        return
    p, h, c = info.ports, info.hosts, info.client_ips
    lines = [
        f"lab {state.name!r} ({info.lab_id}) for {info.domain}",
        f"  resolver    {info.resolver}   (dig @{info.resolver_ip} -p {info.resolver_port} "
        f"{info.domain} MX)",
        f"  mx          {h['mx']}  smtp {p['smtp']} (STARTTLS), submissions {p['submissions']}, "
        f"submission {p['submission']}",
        f"  outbound    {h['outbound']}  smtp {p['outbound_smtp']}, submission "
        f"{p['outbound_submission']} (DKIM-signs what it relays)",
        f"  mailbox     {h['mailbox']}  imap {p['imap']}, imaps {p['imaps']}, pop3 {p['pop3']}, "
        f"pop3s {p['pop3s']}",
        f"  clients     authorized {c['authorized']}, unauthorized {c['unauthorized']} (SPF)",
        f"  user        {info.user}  (password: `mailprobe lab status"
        f"{'' if state.name == 'default' else ' --name ' + state.name} --format json`, "
        f"or {state.info_file})",
        f"  CA file     {info.ca_file}",
    ]
    if info.trust_anchor:
        lines.append(
            f"  DNSSEC      trust anchor {info.trust_anchor} ({info.trust_anchor_records})"
        )
    lines += [f"  DKIM key    {sel}: {path}" for sel, path in info.dkim.items()]
    lists = [f"{z} (IP)" for z in info.dnsbls] + [f"{z} (domain)" for z in info.domain_blocklists]
    if lists:
        lines.append(f"  blocklists  {', '.join(lists)}")
    print("\n".join(lines))


def cmd_lab_doctor(args: argparse.Namespace) -> int:
    from probes.lab.doctor import ensure_docker_api
    from probes.lab.image import build_image
    from probes.lab.lab import sweep_stale_labs

    say = _say(False)
    api = ensure_docker_api(say, setup=not args.no_setup)
    sweep_stale_labs(say)  # labs whose process was killed (SIGKILL) before it could stop them
    if not args.no_image:
        for kind in _image_kinds(args.images):
            build_image(api, say, force=args.rebuild_image, kind=kind)
    say("ready: the lab can start")
    return 0


def _image_kinds(text: str) -> list[str]:
    from probes.lab.image import IMAGE_KINDS

    if text.strip() == "all":
        return list(IMAGE_KINDS)
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    bad = [k for k in kinds if k not in IMAGE_KINDS]
    if bad or not kinds:
        raise UsageError(
            f"--images {text!r}: known image kinds are {', '.join(IMAGE_KINDS)} (or all)"
        )
    return kinds


# ----- parser -----------------------------------------------------------------------------------
class _PluginParser(argparse.ArgumentParser):
    """With --format nagios a usage error is the plugin's one UNKNOWN line and exit 3, not
    argparse's usage text and exit 2: errors raise UsageError for main() to print."""

    plugin_output = False  # set by main() while it parses a --format nagios command line

    def error(self, message: str):
        if _PluginParser.plugin_output:
            raise UsageError(message)
        super().error(message)


def _wants_nagios(argv: Sequence[str]) -> bool:
    """Whether the command line asks for --format nagios (looked at before parsing)."""
    argv = list(argv)
    for i, arg in enumerate(argv):
        if arg == "--format=nagios" or (arg == "--format" and argv[i + 1 : i + 2] == [NAGIOS]):
            return True
    return False


def _usage_unknown(message: str) -> int:
    from probes.report.nagios_report import UNKNOWN, unknown_line

    print(unknown_line(f"usage: {message}"), flush=True)
    return UNKNOWN


def version() -> str:
    """The installed distribution's version (probes.registry.mailprobe_version)."""
    from probes.registry import mailprobe_version

    return mailprobe_version()


def build_parser() -> argparse.ArgumentParser:
    parser = _PluginParser(
        prog="mailprobe",
        description="Mail-authentication diagnostic test harness.",
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"mailprobe {version()}",
        help="print `mailprobe VERSION` and exit",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    check = sub.add_parser("check", help="probe a mail domain (or the embedded lab) and report")
    check.add_argument("domain", nargs="?", help="the mail domain to probe")
    check.add_argument(
        "--lab", action="store_true", help="start the embedded lab, probe it, stop it"
    )
    check.add_argument(
        "--lab-name",
        metavar="NAME",
        help="probe the running lab `mailprobe lab up --name NAME` started, as --lab would "
        "(exit 2 when it is not up or does not answer)",
    )
    check.add_argument(
        "--keep-lab",
        nargs="?",
        const="",
        metavar="NAME",
        help="with --lab: keep the lab afterwards, as `lab up --name NAME` would (default "
        "name: check-<random>), so its reproduce lines work; the output ends with the "
        "`mailprobe lab down --name NAME` line",
    )
    check.add_argument("--lab-spec", metavar="FILE", help="lab spec YAML for --lab")
    check.add_argument(
        "--lab-flavour",
        metavar="MTA[+FRONT]",
        help="lab flavour for --lab: exim|postfix|sendmail [+dovecot|perdition] "
        "(overrides the spec's mta and mailbox_front)",
    )
    check.add_argument(
        "--resolver",
        metavar="IP[:PORT]",
        help="the DNS server to ask (IPv6 with a port: [::1]:5353); default: the system "
        "resolver, or the lab's with --lab",
    )
    check.add_argument(
        "--selector",
        action="append",
        metavar="SEL",
        help="a DKIM selector to check; repeatable (with --lab: every lab selector)",
    )
    check.add_argument(
        "--sending-ip",
        action="append",
        metavar="IP",
        help="an address the domain sends from (SPF, PTR, blocklists); repeatable",
    )
    check.add_argument(
        "--dnsbl",
        action="append",
        metavar="ZONE",
        help="an IP blocklist (DNSBL zone) to look the sending IPs and MX addresses up in; "
        "repeatable; naming any list replaces the defaults ("
        + ", ".join(DEFAULT_IP_LISTS)
        + "; with --lab: the lab's lists)",
    )
    check.add_argument(
        "--domain-blocklist",
        action="append",
        metavar="ZONE",
        help="a domain blocklist zone to look the domain up in; repeatable; naming any list "
        "replaces the defaults ("
        + ", ".join(DEFAULT_DOMAIN_LISTS)
        + "; with --lab: the lab's lists)",
    )
    check.add_argument(
        "--mx",
        action="append",
        metavar="HOST",
        help="an MX host to check; repeatable; default: the domain's MX records",
    )
    check.add_argument(
        "--submission-host",
        action="append",
        metavar="HOST",
        help="a submission server (587/465); default: RFC 6186 SRV records",
    )
    check.add_argument(
        "--mailbox-host",
        action="append",
        metavar="HOST",
        help="an IMAP/POP3 server; default: RFC 6186 SRV records",
    )
    check.add_argument(
        "--credentials",
        metavar="REF",
        help="login to try over TLS: env:NAME or file:PATH holding USER:PASSWORD",
    )
    check.add_argument(
        "--max-per-host",
        type=int,
        default=2,
        metavar="N",
        help="connections to one server address at a time (default 2)",
    )
    msg = check.add_argument_group("message round trip (message.* probes; docs/message.md)")
    msg.add_argument(
        "--send-via",
        choices=SEND_VIA,
        default="submission",
        help="how the test message is sent (default submission: 587, STARTTLS + AUTH)",
    )
    msg.add_argument("--submit-host", metavar="HOST", help="default: the first submission host")
    msg.add_argument(
        "--signer",
        choices=("mailprobe", "target"),
        default="mailprobe",
        help="who DKIM-signs the message: mailprobe with --dkim-key (default), or the target",
    )
    msg.add_argument(
        "--canonicalization",
        choices=CANONICALIZATIONS,
        default="relaxed/relaxed",
        help="DKIM canonicalization of mailprobe's signature (default relaxed/relaxed)",
    )
    msg.add_argument(
        "--signed-headers",
        metavar="LIST",
        help="header fields to sign, comma-separated (default from,to,subject,date,message-id)",
    )
    msg.add_argument(
        "--no-oversign-from", action="store_true", help="sign From once, not oversigned"
    )
    msg.add_argument("--mail-from", metavar="ADDR", help="envelope sender (default: the user)")
    msg.add_argument("--header-from", metavar="ADDR", help="From: (default: --mail-from)")
    msg.add_argument("--rcpt-to", metavar="ADDR", help="recipient (default: the user)")
    msg.add_argument("--source-address", metavar="IP", help="local address to send from")
    msg.add_argument(
        "--retrieve-via",
        choices=RETRIEVE_VIA,
        default="imaps",
        help="how the delivered message is read back (default imaps)",
    )
    msg.add_argument("--receiver-id", metavar="ID", help="authserv-id to trust (default: MX)")
    msg.add_argument("--deadline", type=float, metavar="S", help="wait this long (default 30)")
    msg.add_argument("--keep-message", action="store_true", help="do not delete it afterwards")
    msg.add_argument("--receiver-listen", metavar="IP:PORT", help="receiver mode: listen here")
    msg.add_argument("--receiver-domain", metavar="DOMAIN", help="receiver mode: its domain")
    from probes.cli_time import add_time_options

    add_time_options(check)
    check.add_argument(
        "--probe",
        action="append",
        metavar="GLOB",
        help="run only the probes whose id matches (shell-style); repeatable; default: all",
    )
    check.add_argument(
        "--domains", metavar="FILE", help="audit many domains (one per line), concurrently"
    )
    check.add_argument(
        "--concurrency",
        type=int,
        default=32,
        metavar="N",
        help="domains audited at once with --domains (default 32)",
    )
    check.add_argument(
        "--processes",
        type=int,
        default=min(4, os.cpu_count() or 1),
        metavar="N",
        help="worker processes with --domains (default: CPU cores, at most 4)",
    )
    check.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="with --domains: run the audit on this Dask scheduler (tcp://HOST:PORT; "
        "pip install 'mailprobe[dask]')",
    )
    check.add_argument(
        "--resume",
        action="store_true",
        help="with --domains and --output DIR: continue the interrupted run written there",
    )
    check.add_argument(
        "--dkim-key",
        action="append",
        metavar="SEL=FILE",
        help="a local DKIM private key to match against the published key of SEL",
    )
    check.add_argument(
        "--discover-selectors",
        action="store_true",
        help="also look for DKIM keys under commonly used selector names",
    )
    check.add_argument(
        "--ca-file",
        metavar="PEM",
        help="CA bundle to verify TLS certificates with (default: the system store; the lab "
        "CA with --lab)",
    )
    check.add_argument(
        "--trust-anchor",
        metavar="FILE",
        help="DNSSEC trust anchor: DS or DNSKEY records in zone-file syntax (default: the IANA "
        "root anchor shipped with mailprobe; the lab's key with --lab)",
    )
    add_threshold_options(check)
    from probes.registry import InstalledFormats

    check.add_argument(
        "--format",
        default="text",
        metavar="FORMAT",
        help="report formats, comma-separated (default text); installed: %(formats)s. Each is "
        "written to the report directory with json; stdout gets the text report (the format "
        "itself when only one is named). "
        "nagios (alone): plugin output, exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN",
    ).formats = InstalledFormats()  # type: ignore[attr-defined]
    check.add_argument("--output", metavar="DIR", help="report directory (default reports/RUN-ID)")
    from probes.cli_history import add_history_options, parse_fail_on

    check.add_argument(
        "--fail-on",
        default="fail",
        type=parse_fail_on,
        metavar="{info,warn,fail,new,new:SEV}",
        help="exit 1 on findings at or above this severity; new:SEV (info, warn or fail): only "
        "on findings at or above SEV that are new or worse than in the previous run of the same "
        "domain and probe set in the history; `new` is new:warn",
    )

    add_history_options(check, storing=True)
    from probes.cli_prometheus import add_prometheus_options

    add_prometheus_options(check, domains=True)
    check.add_argument("-q", "--quiet", action="store_true", help="print only on failure (cron)")
    from probes.cli_render import add_verbose_option

    add_verbose_option(check)
    check.set_defaults(func=cmd_check)

    lab = sub.add_parser("lab", help="the embedded lab of real mail servers")
    lab_sub = lab.add_subparsers(dest="lab_command", required=True)
    up = lab_sub.add_parser("up", help="start a lab and leave it running")
    up.add_argument("--spec", metavar="FILE", help="lab spec YAML")
    up.add_argument(
        "--flavour",
        metavar="MTA[+FRONT]",
        help="exim|postfix|sendmail [+dovecot|perdition] (overrides the spec's)",
    )
    down = lab_sub.add_parser("down", help="stop a lab and remove its files")
    down.add_argument("--all", action="store_true", help="every mailprobe lab on this machine")
    status = lab_sub.add_parser("status", help="show a running lab and whether it answers")
    for p in (up, down, status):
        p.add_argument("--name", default="default", help="lab name (default: default)")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress messages on stderr")
    for p in (up, status):
        p.add_argument("--format", default="text", choices=FORMATS, help="output format")
    up.set_defaults(func=cmd_lab_up)
    down.set_defaults(func=cmd_lab_down)
    status.set_defaults(func=cmd_lab_status)
    doctor = lab_sub.add_parser(
        "doctor", help="find or set up a Docker-compatible API and the lab image"
    )
    doctor.add_argument("--no-setup", action="store_true", help="only look; install nothing")
    doctor.add_argument("--no-image", action="store_true", help="skip the lab image")
    doctor.add_argument(
        "--rebuild-image", action="store_true", help="rebuild the image even if it is cached"
    )
    doctor.add_argument(
        "--images",
        default="base",
        metavar="KINDS",
        help="lab images to make ready: comma-separated base,postfix,sendmail or `all` "
        "(default: base; the others are built when a lab of that flavour first starts)",
    )
    doctor.set_defaults(func=cmd_lab_doctor)

    from probes.cli_history import register as register_history
    from probes.cli_probes import register as register_probes
    from probes.cli_render import register as register_render
    from probes.cli_run import register as register_run

    register_probes(sub)
    register_history(sub)
    register_run(sub)
    register_render(sub)
    return parser


# The status of the command main() ran, set before main() gives its signal handlers back: a
# signal in the instant after that, before run() has the status, still exits with it.
_SETTLED: list[int] = []


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit status (docs/contract.md). SIGINT and SIGTERM while it runs stop
    everything it started and give 130 and 143 (probes.interrupts)."""
    with interrupts.handled():
        status = _main(argv)  # settled (finish() or unwind()): a signal now is only noted
        _SETTLED[:] = [status]
        return status


def _main(argv: Sequence[str] | None) -> int:
    """The command, inside main()'s signal handlers; its exit status."""
    mark: int | None = None  # labs this process started before the command
    try:
        from probes.lab.lab import labs_started

        mark = labs_started()
        nagios = _wants_nagios(sys.argv[1:] if argv is None else argv)
        _PluginParser.plugin_output = nagios
        try:
            args = build_parser().parse_args(argv)
        except UsageError as exc:  # only with --format nagios
            return _usage_unknown(str(exc))
        finally:
            _PluginParser.plugin_output = False
        status = _dispatch(args)
        interrupts.finish()  # a signal from now on leaves the status alone
        first = interrupts.received()
        if first is None:
            return status
        # A signal arrived, but its KeyboardInterrupt was dropped (raised inside a weakref
        # callback or __del__, where Python only prints it) and the command went on.
        return _interrupted(interrupts.Interrupted(first), mark)
    except KeyboardInterrupt as exc:
        try:
            return _interrupted(exc, mark)
        except KeyboardInterrupt:  # one more signal in the instant before it held them
            return _interrupted(exc, mark)


def _dispatch(args: argparse.Namespace) -> int:
    """args.func(args), with the errors every command can meet turned into exit statuses."""
    from probes.lab.doctor import DoctorError
    from probes.lab.image import ImageBuildError
    from probes.lab.lab import LabStartError
    from probes.lab.spec import LabSpecError
    from probes.lab.state import check_name

    nagios = getattr(args, "format", None) == NAGIOS
    try:
        if getattr(args, "name", None):
            try:
                check_name(args.name)
            except ValueError as exc:
                raise UsageError(f"--name: {exc}") from None
        return args.func(args)
    except (UsageError, LabSpecError) as exc:
        if nagios:  # one line on stdout, nothing else (a core may show stderr too)
            return _usage_unknown(str(exc))
        print(f"mailprobe: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DoctorError as exc:
        print(f"mailprobe: cannot reach a container engine: {exc}", file=sys.stderr)
        return _plugin_unknown(f"cannot reach a container engine: {exc}", nagios, EXIT_USAGE)
    except ImageBuildError as exc:
        print(f"mailprobe: the lab image could not be built: {exc}", file=sys.stderr)
        return _plugin_unknown("the lab image could not be built", nagios, EXIT_PROBE_ERROR)
    except LabStartError as exc:
        print(f"mailprobe: the lab did not start: {exc}", file=sys.stderr)
        return _plugin_unknown("the lab did not start", nagios, EXIT_PROBE_ERROR)


def _plugin_unknown(message: str, nagios: bool, status: int) -> int:
    """In nagios format every failure before a report is UNKNOWN (3) with one line."""
    if not nagios:
        return status
    from probes.report.nagios_report import UNKNOWN, unknown_line

    print(unknown_line(message.splitlines()[0] if message else "error"), flush=True)
    return UNKNOWN


def _interrupted(exc: KeyboardInterrupt, mark: int | None) -> int:
    """Stop every lab the command started (if its own unwinding did not), check that nothing
    is left, and say so, or say what is left and how to remove it."""
    with interrupts.deferred():
        interrupts.unwind()  # from here on a signal is only noted
        from probes.lab.lab import leftover_report, started_since, stop_labs

        labs = started_since(mark) if mark is not None else []
        with contextlib.suppress(Exception):
            stop_labs(labs)
        left = leftover_report(labs)
        if left is None:
            print("mailprobe: interrupted; everything started was stopped", file=sys.stderr)
        else:
            print(f"mailprobe: interrupted; {left}", file=sys.stderr)
    first = interrupts.received()
    return 128 + first if first is not None else interrupts.exit_status_of(exc)


def run() -> None:
    """The `mailprobe` program: main(), then exit with its status.

    Outside main() (before it installs its handlers, after it is done, while Python waits for
    threads at exit) SIGINT and SIGTERM end the process at once: with the command's status once
    it has one, else 128 + the signal. After an interrupt it exits at once too: probe threads
    still waiting on the network (abandoned, see probes.runner) would otherwise hold the exit
    until their own timeouts."""
    outcome: list[int] = []

    def exit_now(signum: int, frame: object) -> None:
        _flush_output()
        settled = outcome or _SETTLED
        os._exit(settled[0] if settled else 128 + signum)

    def settled() -> None:
        # The last exit step (atexit runs after Python joined the threads): Python restores
        # SIG_DFL late in its shutdown, where a signal would kill a finished command with 128+n.
        for signum in interrupts.SIGNALS:
            signal.signal(signum, signal.SIG_IGN)

    atexit.register(settled)  # registered first, so it runs last
    for signum in interrupts.SIGNALS:
        signal.signal(signum, exit_now)
    status = main()
    outcome.append(status)
    if status in (EXIT_INTERRUPTED, EXIT_TERMINATED):
        _flush_output()
        os._exit(status)
    sys.exit(status)


def _flush_output() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


if __name__ == "__main__":
    run()
