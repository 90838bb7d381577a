"""What the lab's MTA flavours legitimately do differently, as the lab tests must know it.

Each fact was seen on the real servers (docs/lab.md, Flavours); a test reads it for the flavour
it runs on instead of assuming Exim.
"""

from __future__ import annotations

from probes.lab.flavours import parse_flavour

# The methods the mx writes into its Authentication-Results (authserv-id mx.<domain>).
MX_METHODS = {
    "exim": ("dkim", "spf", "iprev"),  # ${authresults} + pyspf; host_lookup gives iprev
    "postfix": ("dmarc", "dkim", "spf"),  # OpenDMARC, OpenDKIM, policyd-spf: one header each
    "sendmail": ("dkim", "spf"),  # OpenDKIM, pyspf-milter: one header each
}
# The mx's DKIM verdict on a signature whose RSA key is under 1024 bits (RFC 8301).
SHORT_KEY_DKIM = {
    "exim": "fail",  # dkim=fail (public key too short)
    "postfix": "policy",  # OpenDKIM: dkim=policy reason="signing key too small"
    "sendmail": "policy",
}
# Whether the mx removes incoming Authentication-Results claiming its own authserv-id that
# carry a dkim= result (RFC 8601 section 5; OpenDKIM does, Exim leaves them).
STRIPS_FORGED_DKIM_RESULTS = {"exim": False, "postfix": True, "sendmail": True}
# The SASL mechanisms the mailbox front advertises on IMAP/POP3 (after TLS): Perdition offers
# none (IMAP LOGIN and POP3 USER/PASS only, proxied to the Dovecot store).
MAILBOX_SASL = {"dovecot": ("PLAIN",), "perdition": ()}


def mta(flavour: str) -> str:
    return parse_flavour(flavour)[0]


def mx_methods(flavour: str) -> tuple[str, ...]:
    return MX_METHODS[mta(flavour)]
