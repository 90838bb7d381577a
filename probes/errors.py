"""Exception types raised by probes and by the framework.

Probes raise these (or let stdlib/dnspython exceptions propagate); the runner maps every
exception to an outcome and error reason in one table (probes.runner.CLASSIFICATION).
"""

from __future__ import annotations

from collections.abc import Sequence


class ProbeSkipped(Exception):
    """A probe decided it cannot apply (e.g. a tool is not installed): outcome SKIPPED."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ProbeConfigError(ValueError):
    """The target or probe configuration is unusable: outcome ERROR, reason CONFIG."""


class ProtocolError(Exception):
    """A server spoke the protocol wrongly or unexpectedly: outcome ERROR, reason PROTOCOL."""


class DnsError(Exception):
    """A DNS question could not be answered usefully: outcome ERROR, reason DNS."""


class UsageError(Exception):
    """A CLI or configuration error; the CLI exits with status 2.

    The message must name the bad option, file, line or field.
    """


class PluginError(UsageError):
    """An installed probe or renderer entry point is broken; the message names it."""


class SubjectError(Exception):
    """Probing one or more subjects (e.g. `host:port`) of a probe failed.

    A probe that covers several subjects reports the findings of the ones that worked and then
    raises this; the runner classifies it as its first cause. The message names every subject.
    """

    def __init__(self, failures: Sequence[tuple[str, BaseException]]) -> None:
        if not failures:
            raise ValueError("SubjectError needs at least one failure")
        self.failures = failures
        self.cause = failures[0][1]
        super().__init__(
            "; ".join(f"{subject}: {type(exc).__name__}: {exc}" for subject, exc in failures)
        )
