"""What a probe is: a stable id, a one-line description and `run(target, net)`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import ClassVar, Protocol, runtime_checkable

from probes.model import Finding, Severity, Target
from probes.net import Net


@runtime_checkable
class Probe(Protocol):
    """One check. `id` is namespaced and stable ("dns.spf", "smtp.starttls").

    `run` yields findings; it lets TimeoutError, ssl.SSLError, OSError, dnspython errors and
    the types in probes.errors propagate: the runner classifies them once.
    """

    id: str
    description: str

    def run(self, target: Target, net: Net) -> Iterable[Finding]: ...


class BaseProbe:
    """Convenience base class: subclasses set `id`, `description` and implement `run`."""

    id: ClassVar[str]
    description: ClassVar[str]

    def run(self, target: Target, net: Net) -> Iterable[Finding]:
        raise NotImplementedError(f"{type(self).__name__}.run")

    def finding(
        self,
        code: str,
        severity: Severity,
        message: str,
        *,
        evidence: Mapping[str, str] | None = None,
        reproduce: str | None = None,
        subject: str | None = None,
    ) -> Finding:
        """A Finding of this probe (probe_id filled in)."""
        return Finding(
            probe_id=self.id,
            code=code,
            severity=severity,
            message=message,
            evidence=dict(evidence) if evidence else {},
            reproduce=reproduce,
            subject=subject,
        )
