"""The finding codes both message probes emit (message.roundtrip and message.receiver),
declared once: each probe's `codes` includes MESSAGE_CODES."""

from __future__ import annotations

from probes.codes import Code, declare
from probes.model import Severity

MESSAGE_NOT_DELIVERED = Code(
    "MESSAGE_NOT_DELIVERED",
    "the test message was refused, or did not arrive before the deadline",
    Severity.FAIL,
)
AUTHRES_NOT_PASS = {
    method: Code(
        f"AUTHRES_{method.upper()}_NOT_PASS",
        f"the receiver's own {method} verdict is not pass",
        Severity.FAIL,
    )
    for method in ("spf", "dkim", "dmarc", "iprev")
}
MESSAGE_CODES = declare(
    MESSAGE_NOT_DELIVERED,
    AUTHRES_NOT_PASS.values(),
    Code(
        "DKIM_SIGNATURE_INVALID",
        "the harness's own verification of a DKIM signature of the message fails",
        Severity.FAIL,
    ),
    Code(
        "DMARC_NOT_ALIGNED",
        "neither an aligned DKIM pass nor an aligned SPF pass for the From domain",
        Severity.FAIL,
    ),
)
