"""The time options of `check` and `run`: the timeouts of the Target, and the run's deadline.

    --timeout S          the whole per-probe budget; it also caps the other three at S/3
                         each (connect ≤ 10, io ≤ 30, dns ≤ 5 as by default), so one silent
                         step cannot take the whole budget
    --connect-timeout S, --io-timeout S, --dns-timeout S, --probe-timeout S
                         one timeout each (Target.timeouts; the scenario field
                         `target.timeouts.*`); they win over what --timeout derives
    --max-run-time S     the whole run's deadline, counted from the command's start (cron):
                         probes still running then end ERROR/TIMEOUT "run deadline reached"
                         (for `run`: one deadline for all its scenarios)

The values are checked by the one validation (probes.validate: above 0 seconds, finite);
a problem names the option that gave the value (`timeout_options`).
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from probes.errors import UsageError
from probes.model import Target, Timeouts

if TYPE_CHECKING:
    from probes.scenario import Scenario

FIELDS = ("connect", "io", "dns", "probe")
OPTION = {name: f"--{name}-timeout" for name in FIELDS}


def add_time_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("time (seconds; docs/contract.md)")
    group.add_argument(
        "--timeout",
        type=float,
        metavar="S",
        help="each probe's whole budget (default 120); also caps connect, io and dns "
        "timeouts at S/3 each",
    )
    defaults = Timeouts()
    for name, what in (
        ("connect", "a TCP connection"),
        ("io", "each server reply"),
        ("dns", "each DNS question"),
        ("probe", "each probe as a whole"),
    ):
        group.add_argument(
            OPTION[name],
            type=float,
            metavar="S",
            help=f"time for {what} (default {getattr(defaults, name):g})",
        )
    group.add_argument(
        "--max-run-time",
        type=float,
        metavar="S",
        help="deadline of the whole run from the command's start: probes still running then "
        "are reported ERROR/TIMEOUT and the report is written (exit 3)",
    )


def timeouts_given(args: argparse.Namespace) -> bool:
    return args.timeout is not None or any(
        getattr(args, f"{name}_timeout") is not None for name in FIELDS
    )


def apply_timeouts(args: argparse.Namespace, base: Timeouts) -> Timeouts:
    """`base` with the time options applied (unchanged without them). Not checked here: the
    Target they go into is (probes.validate), naming the option (`timeout_options`)."""
    values: dict[str, Any] = {}
    if args.timeout is not None:
        whole = args.timeout
        values = {
            "probe": whole,
            "connect": min(base.connect, whole / 3),
            "io": min(base.io, whole / 3),
            "dns": min(base.dns, whole / 3),
        }
    for name in FIELDS:
        given = getattr(args, f"{name}_timeout")
        if given is not None:
            values[name] = given
    return replace(base, **values)


def timeout_options(args: argparse.Namespace) -> dict[str, str]:
    """The option that gave each `timeouts.*` field (for errors from probes.validate)."""
    return {
        f"timeouts.{name}": (
            OPTION[name] if getattr(args, f"{name}_timeout") is not None else "--timeout"
        )
        for name in FIELDS
    }


def check_time_options(args: argparse.Namespace) -> None:
    """The time options alone, by the one validation (for `run`, before any scenario runs):
    UsageError naming the option."""
    if not timeouts_given(args):
        return
    from probes.validate import checked_target

    _, problems = checked_target(
        Target(domain="example.test", timeouts=apply_timeouts(args, Timeouts()))
    )
    options = timeout_options(args)
    for field, problem in problems:
        if field in options:
            raise UsageError(f"{options[field]}: {problem}")


def with_time_options(scenario: Scenario, args: argparse.Namespace) -> Scenario:
    """`scenario` with the command line's timeouts over its target's (`run`)."""
    if not timeouts_given(args):
        return scenario
    spec = scenario.target
    timeouts = apply_timeouts(args, spec.timeouts)
    return replace(
        scenario, target=replace(spec, timeouts=timeouts, given=spec.given | {"timeouts"})
    )


def run_deadline(args: argparse.Namespace, started: float) -> float | None:
    """The run's deadline (time.monotonic()) from --max-run-time and the command's start."""
    limit = args.max_run_time
    if limit is None:
        return None
    if not (limit > 0 and math.isfinite(limit)):
        raise UsageError("--max-run-time: must be a finite number of seconds above 0")
    return started + limit


def command_started() -> float:
    return time.monotonic()
