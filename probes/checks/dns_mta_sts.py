"""dns.mta_sts: the MTA-STS TXT record at `_mta-sts.<domain>` (RFC 8461 §3.1).

Record syntax only: the policy itself (https://mta-sts.<domain>/.well-known/mta-sts.txt) is
fetched over HTTPS and is out of scope for this DNS probe. One question.

RFC 8461 §3.1: TXT records that do not begin with "v=STSv1;" are discarded; if the number
left is not one, or the one left is invalid, senders assume there is no MTA-STS policy.

Codes:
- MTA_STS_MISSING [info] no MTA-STS record (MTA-STS is optional).
- MTA_STS_MULTIPLE_RECORDS [fail] more than one v=STSv1 record: senders ignore them all.
- MTA_STS_SYNTAX_ERROR [fail] the record does not follow RFC 8461 §3.1 (evidence: why).
- MTA_STS_PRESENT [info] a valid record (evidence: its id).
"""

from __future__ import annotations

from collections.abc import Iterator

from probes.model import Finding, Severity, Target
from probes.net import Net
from probes.net.dns import normalize_name
from probes.parse.mta_sts import MtaStsSyntaxError, is_sts_record, parse
from probes.probe import BaseProbe

MAX_RECORD_CHARS = 300  # of a record shown in evidence
MAX_LISTED = 5


def shorten(text: str, limit: int = MAX_RECORD_CHARS) -> str:
    return text if len(text) <= limit else f"{text[:limit]}…({len(text)} chars)"


class DnsMtaSts(BaseProbe):
    id = "dns.mta_sts"
    description = "MTA-STS TXT record at _mta-sts (RFC 8461 §3.1 syntax; policy not fetched)"

    def run(self, target: Target, net: Net) -> Iterator[Finding]:
        dns = net.dns
        name = "_mta-sts." + normalize_name(target.domain)
        answer = dns.query(name, "TXT").raise_for_failure()
        reproduce = dns.dig(name, "TXT")
        records = [text for text in answer.texts() if is_sts_record(text)]
        if not records:
            yield self.finding(
                "MTA_STS_MISSING",
                Severity.INFO,
                f"no MTA-STS record at {name}",
                evidence={"name": name, "TXT": f"{answer.rcode}, {len(answer.records)} records"},
                reproduce=reproduce,
            )
            return
        if len(records) > 1:
            evidence = {"name": name, "count": str(len(records))}
            for i, text in enumerate(records[:MAX_LISTED], start=1):
                evidence[f"record {i}"] = shorten(text)
            yield self.finding(
                "MTA_STS_MULTIPLE_RECORDS",
                Severity.FAIL,
                f"{len(records)} MTA-STS records at {name}: senders ignore them all "
                "(RFC 8461 §3.1)",
                evidence=evidence,
                reproduce=reproduce,
            )
            return
        try:
            record = parse(records[0])
        except MtaStsSyntaxError as exc:
            yield self.finding(
                "MTA_STS_SYNTAX_ERROR",
                Severity.FAIL,
                f"MTA-STS record at {name} is invalid: {exc}",
                evidence={"name": name, "record": shorten(records[0]), "error": str(exc)},
                reproduce=reproduce,
            )
            return
        yield self.finding(
            "MTA_STS_PRESENT",
            Severity.INFO,
            f"MTA-STS record at {name} (id {record.id}); the HTTPS policy is not checked here",
            evidence={"name": name, "record": shorten(records[0]), "id": record.id},
            reproduce=reproduce,
        )
