"""dns.tls_rpt: the SMTP TLS Reporting TXT record at `_smtp._tls.<domain>` (RFC 8460 §3).

RFC 8460 §3: TXT records that do not begin with "v=TLSRPTv1;" are discarded; if the number
left is not one, senders assume the domain does not implement TLS-RPT. One question.

Codes:
- TLSRPT_MISSING [info] no TLS-RPT record (TLS-RPT is optional).
- TLSRPT_MULTIPLE_RECORDS [fail] more than one v=TLSRPTv1 record: senders ignore them all.
- TLSRPT_SYNTAX_ERROR [fail] the record does not follow RFC 8460 §3 (evidence: why).
- TLSRPT_PRESENT [info] a valid record (evidence: the rua URIs).
"""

from __future__ import annotations

from collections.abc import Iterator

from probes.checks.dns_mta_sts import MAX_LISTED, shorten
from probes.model import Finding, Severity, Target
from probes.net import Net
from probes.net.dns import normalize_name
from probes.parse.tls_rpt import TlsRptSyntaxError, is_tlsrpt_record, parse
from probes.probe import BaseProbe


class DnsTlsRpt(BaseProbe):
    id = "dns.tls_rpt"
    description = "SMTP TLS Reporting TXT record at _smtp._tls (RFC 8460 §3 syntax)"

    def run(self, target: Target, net: Net) -> Iterator[Finding]:
        dns = net.dns
        name = "_smtp._tls." + normalize_name(target.domain)
        answer = dns.query(name, "TXT").raise_for_failure()
        reproduce = dns.dig(name, "TXT")
        records = [text for text in answer.texts() if is_tlsrpt_record(text)]
        if not records:
            yield self.finding(
                "TLSRPT_MISSING",
                Severity.INFO,
                f"no TLS-RPT record at {name}",
                evidence={"name": name, "TXT": f"{answer.rcode}, {len(answer.records)} records"},
                reproduce=reproduce,
            )
            return
        if len(records) > 1:
            evidence = {"name": name, "count": str(len(records))}
            for i, text in enumerate(records[:MAX_LISTED], start=1):
                evidence[f"record {i}"] = shorten(text)
            yield self.finding(
                "TLSRPT_MULTIPLE_RECORDS",
                Severity.FAIL,
                f"{len(records)} TLS-RPT records at {name}: senders ignore them all (RFC 8460 §3)",
                evidence=evidence,
                reproduce=reproduce,
            )
            return
        try:
            record = parse(records[0])
        except TlsRptSyntaxError as exc:
            yield self.finding(
                "TLSRPT_SYNTAX_ERROR",
                Severity.FAIL,
                f"TLS-RPT record at {name} is invalid: {exc}",
                evidence={"name": name, "record": shorten(records[0]), "error": str(exc)},
                reproduce=reproduce,
            )
            return
        yield self.finding(
            "TLSRPT_PRESENT",
            Severity.INFO,
            f"TLS-RPT record at {name}: reports go to {', '.join(record.rua)}",
            evidence={"name": name, "record": shorten(records[0]), "rua": " ".join(record.rua)},
            reproduce=reproduce,
        )
