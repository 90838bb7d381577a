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

from typing import Any

from probes.codes import Fix
from probes.parse import tls_rpt
from probes.probekit.policy_record import PolicyRecordProbe, policy_codes

RECORD = '_smtp._tls.<domain>. 3600 IN TXT "v=TLSRPTv1; rua=mailto:<tls-reports>@<domain>"'


class DnsTlsRpt(PolicyRecordProbe):
    id = "dns.tls_rpt"
    description = "SMTP TLS Reporting TXT record at _smtp._tls (RFC 8460 §3 syntax)"
    label = "_smtp._tls."
    code_prefix = "TLSRPT"
    codes = policy_codes(
        "TLSRPT",
        "TLS-RPT",
        "TLS-RPT is optional",
        multiple=Fix(
            "Keep one `v=TLSRPTv1` TXT record at `_smtp._tls.<domain>`, with every report "
            "address in its `rua`, and delete the others: with two, senders send no reports. "
            "Check with `dig +short TXT _smtp._tls.<domain>`.",
            {"zone": RECORD},
        ),
        syntax=Fix(
            "Rewrite the record as `v=TLSRPTv1; rua=<uri>`: `v=TLSRPTv1` first, `rua` one or "
            "more comma-separated `mailto:` or `https:` URIs (RFC 8460 §3). Check with "
            "`dig +short TXT _smtp._tls.<domain>`.",
            {"zone": RECORD},
        ),
    )
    kind = "TLS-RPT"
    rfc = "RFC 8460 §3"
    syntax_error = tls_rpt.TlsRptSyntaxError
    is_record = staticmethod(tls_rpt.is_tlsrpt_record)
    parse = staticmethod(tls_rpt.parse)

    def present(self, name: str, record: Any) -> tuple[str, dict[str, str]]:
        return (
            f"TLS-RPT record at {name}: reports go to {', '.join(record.rua)}",
            {"rua": " ".join(record.rua)},
        )
