"""What a probe is: a stable id, a one-line description, the finding codes it can emit
(`codes`, probes.codes) and `run(target, net)`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import ClassVar, Protocol, runtime_checkable

from probes.codes import Code, UndeclaredCode, declared
from probes.model import Finding, Severity, Target
from probes.net import Net


@runtime_checkable
class Probe(Protocol):
    """One check. `id` is namespaced and stable ("dns.spf", "smtp.starttls").

    `codes` declares every finding code `run` can yield (code -> probes.codes.Code; build it
    with probes.codes.declare). The registry checks the declaration when it loads the probe,
    and a finding with a code not declared ends the run ERROR/BUG.

    `run` yields findings; it lets TimeoutError, ssl.SSLError, OSError, dnspython errors and
    the types in probes.errors propagate: the runner classifies them once.
    """

    id: str
    description: str
    codes: Mapping[str, Code]

    def run(self, target: Target, net: Net) -> Iterable[Finding]: ...


class BaseProbe:
    """Convenience base class: subclasses set `id`, `description`, `codes` and implement
    `run`."""

    id: ClassVar[str]
    description: ClassVar[str]
    codes: ClassVar[Mapping[str, Code]]

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
        volatile: Iterable[str] = (),
    ) -> Finding:
        """A Finding of this probe (probe_id filled in).

        `code` must be one the probe declares in `codes`, else UndeclaredCode (a bug: the run
        ends ERROR/BUG). Control characters in the message and evidence (which often quote what
        a server sent) are escaped, so a hostile server cannot put terminal escape codes into a
        report. `volatile` names the evidence keys that change from run to run whatever the
        configuration (durations, days left, timestamps): they never count as drift."""
        codes = declared(self)
        if code not in codes:
            raise UndeclaredCode(self.id, code, codes)
        return Finding(
            probe_id=self.id,
            code=code,
            severity=severity,
            message=printable(message),
            evidence={str(k): printable(str(v)) for k, v in evidence.items()} if evidence else {},
            reproduce=reproduce,
            subject=printable(subject) if subject is not None else None,
            volatile=frozenset(volatile),
        )


_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x20), *range(0x7F, 0xA0)] if chr(c) not in "\t\n"}


def printable(text: str) -> str:
    """`text` with control characters (C0 but tab and newline, DEL, C1) as \\xNN escapes."""
    return text.translate(_CONTROL)
