"""dns.mta_sts: the MTA-STS TXT record at `_mta-sts.<domain>` (RFC 8461 §3.1).

Record syntax only: the policy itself (https://mta-sts.<domain>/.well-known/mta-sts.txt) is
fetched over HTTPS by https.mta_sts (probes.checks.https_mta_sts). One question.

RFC 8461 §3.1: TXT records that do not begin with "v=STSv1;" are discarded; if the number
left is not one, or the one left is invalid, senders assume there is no MTA-STS policy.

Codes:
- MTA_STS_MISSING [info] no MTA-STS record (MTA-STS is optional).
- MTA_STS_MULTIPLE_RECORDS [fail] more than one v=STSv1 record: senders ignore them all.
- MTA_STS_SYNTAX_ERROR [fail] the record does not follow RFC 8461 §3.1 (evidence: why).
- MTA_STS_PRESENT [info] a valid record (evidence: its id).
"""

from __future__ import annotations

from typing import Any

from probes.codes import Fix
from probes.parse import mta_sts
from probes.probekit.policy_record import PolicyRecordProbe, policy_codes

RECORD = '_mta-sts.<domain>. 3600 IN TXT "v=STSv1; id=<yyyymmddhhmmss>"'


class DnsMtaSts(PolicyRecordProbe):
    id = "dns.mta_sts"
    description = "MTA-STS TXT record at _mta-sts (RFC 8461 §3.1 syntax; the policy: https.mta_sts)"
    label = "_mta-sts."
    code_prefix = "MTA_STS"
    codes = policy_codes(
        "MTA_STS",
        "MTA-STS",
        "MTA-STS is optional",
        multiple=Fix(
            "Keep one `v=STSv1` TXT record at `_mta-sts.<domain>` and delete the others: with "
            "two, senders act as if the domain had no MTA-STS policy. Change its `id` whenever "
            "the policy file at https://mta-sts.<domain>/.well-known/mta-sts.txt changes. "
            "Check with `dig +short TXT _mta-sts.<domain>`.",
            {"zone": RECORD},
        ),
        syntax=Fix(
            "Rewrite the record as `v=STSv1; id=<id>`: `v=STSv1` first, `id` 1 to 32 letters "
            "and digits (a timestamp such as 20260101000000 works), tags separated by `;` "
            "(RFC 8461 §3.1). Check with `dig +short TXT _mta-sts.<domain>`.",
            {"zone": RECORD},
        ),
    )
    kind = "MTA-STS"
    rfc = "RFC 8461 §3.1"
    syntax_error = mta_sts.MtaStsSyntaxError
    is_record = staticmethod(mta_sts.is_sts_record)
    parse = staticmethod(mta_sts.parse)

    def present(self, name: str, record: Any) -> tuple[str, dict[str, str]]:
        return (
            f"MTA-STS record at {name} (id {record.id}); the policy itself: https.mta_sts",
            {"id": record.id},
        )
