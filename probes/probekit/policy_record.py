"""The shape shared by one-TXT-record policy probes (dns.mta_sts, dns.tls_rpt).

Both RFCs say the same thing: TXT records at one name that do not start with the version tag
are discarded; if the number left is not one, or the one left is invalid, senders act as if
there were no policy. One question. Subclasses say where the record lives, how to recognise
and parse it, and what to report about a valid one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

from probes.codes import Code, Fix, declare
from probes.model import Finding, Severity, Target
from probes.net import Net
from probes.net.dns import normalize_name
from probes.probe import BaseProbe

MAX_RECORD_CHARS = 300  # of a record shown in evidence
MAX_LISTED = 5


def shorten(text: str, limit: int = MAX_RECORD_CHARS) -> str:
    return text if len(text) <= limit else f"{text[:limit]}…({len(text)} chars)"


def policy_codes(
    prefix: str, kind: str, optional: str, *, multiple: Fix, syntax: Fix
) -> Mapping[str, Code]:
    """The four codes of a policy-record probe whose `code_prefix` is `prefix`; `multiple` and
    `syntax` are the fixes of its MULTIPLE_RECORDS and SYNTAX_ERROR codes."""
    return declare(
        Code(f"{prefix}_MISSING", f"no {kind} record ({optional})", Severity.INFO, absent=True),
        Code(
            f"{prefix}_MULTIPLE_RECORDS",
            f"more than one {kind} record: senders ignore them all",
            Severity.FAIL,
            fix=multiple,
        ),
        Code(f"{prefix}_SYNTAX_ERROR", f"the {kind} record is invalid", Severity.FAIL, fix=syntax),
        Code(f"{prefix}_PRESENT", f"a valid {kind} record", Severity.INFO),
    )


class PolicyRecordProbe(BaseProbe):
    label: ClassVar[str]  # e.g. "_mta-sts."; the record lives at label + domain
    code_prefix: ClassVar[str]  # e.g. "MTA_STS"
    kind: ClassVar[str]  # e.g. "MTA-STS", used in messages
    rfc: ClassVar[str]  # e.g. "RFC 8461 §3.1"
    syntax_error: ClassVar[type[Exception]]
    is_record: Callable[[str], bool]
    parse: Callable[[str], Any]

    def present(self, name: str, record: Any) -> tuple[str, dict[str, str]]:
        """The message and extra evidence for a valid record."""
        raise NotImplementedError

    def run(self, target: Target, net: Net) -> Iterator[Finding]:
        dns = net.dns
        name = self.label + normalize_name(target.domain)
        answer = dns.query(name, "TXT").raise_for_failure()
        reproduce = dns.dig(name, "TXT")
        records = [text for text in answer.texts() if type(self).is_record(text)]
        if not records:
            yield self.finding(
                f"{self.code_prefix}_MISSING",
                Severity.INFO,
                f"no {self.kind} record at {name}",
                evidence={"name": name, "TXT": f"{answer.rcode}, {len(answer.records)} records"},
                reproduce=reproduce,
            )
            return
        if len(records) > 1:
            evidence = {"name": name, "count": str(len(records))}
            for i, text in enumerate(records[:MAX_LISTED], start=1):
                evidence[f"record {i}"] = shorten(text)
            yield self.finding(
                f"{self.code_prefix}_MULTIPLE_RECORDS",
                Severity.FAIL,
                f"{len(records)} {self.kind} records at {name}: senders ignore them all "
                f"({self.rfc})",
                evidence=evidence,
                reproduce=reproduce,
            )
            return
        try:
            record = type(self).parse(records[0])
        except self.syntax_error as exc:
            yield self.finding(
                f"{self.code_prefix}_SYNTAX_ERROR",
                Severity.FAIL,
                f"{self.kind} record at {name} is invalid: {exc}",
                evidence={"name": name, "record": shorten(records[0]), "error": str(exc)},
                reproduce=reproduce,
            )
            return
        message, extra = self.present(name, record)
        yield self.finding(
            f"{self.code_prefix}_PRESENT",
            Severity.INFO,
            message,
            evidence={"name": name, "record": shorten(records[0]), **extra},
            reproduce=reproduce,
        )
