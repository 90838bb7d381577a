"""The finding codes both message probes emit (message.roundtrip and message.receiver),
declared once: each probe's `codes` includes MESSAGE_CODES."""

from __future__ import annotations

from probes.codes import Code, Fix, declare
from probes.model import Severity

# How a domain's outbound mail gets DKIM-signed, per system (the lab's outbound does the same).
DKIM_SIGNING = {
    "exim": "# the remote_smtp transport\n"
    "dkim_domain = ${lc:${domain:$h_from:}}\n"
    "dkim_selector = <selector>\n"
    "dkim_private_key = /etc/exim4/dkim/<domain>.<selector>.key\n"
    "dkim_canon = relaxed",
    "postfix": "smtpd_milters = unix:/run/opendkim/opendkim.sock\n"
    "non_smtpd_milters = $smtpd_milters\n"
    "milter_default_action = accept",
    "sendmail": "INPUT_MAIL_FILTER(`opendkim', `S=local:/run/opendkim/opendkim.sock, F=T')dnl",
    "opendkim": "Mode sv\n"
    "Canonicalization relaxed/relaxed\n"
    "KeyTable file:/etc/opendkim/key.table\n"
    "SigningTable refile:/etc/opendkim/signing.table\n"
    "# key.table\n"
    "<selector>._domainkey.<domain> <domain>:<selector>:/etc/opendkim/keys/<selector>.private\n"
    "# signing.table\n"
    "*@<domain> <selector>._domainkey.<domain>",
}
ALIGNED = Fix(
    "DMARC passes only when SPF or DKIM passes for a domain aligned with the From: header's "
    "domain. Sign outgoing mail with `d=` the From domain (not the provider's or the host's "
    "domain), or send with a MAIL FROM address in the From domain whose SPF record authorizes "
    "the sending host. With relaxed alignment (the default) a subdomain counts as aligned. "
    "Check the DKIM-Signature `d=` and the Return-Path of a message you sent.",
    {
        **DKIM_SIGNING,
        "zone": '<domain>. 3600 IN TXT "v=spf1 mx ip4:<sending-ip> -all"\n'
        '_dmarc.<domain>. 3600 IN TXT "v=DMARC1; p=reject; adkim=r; aspf=r; '
        'rua=mailto:<dmarc-reports>@<domain>"',
    },
)
MESSAGE_NOT_DELIVERED = Code(
    "MESSAGE_NOT_DELIVERED",
    "the test message was refused, or did not arrive before the deadline",
    Severity.FAIL,
    fix=Fix(
        "If the message was refused, the evidence has the reply: fix what it names. "
        "Otherwise follow the message: find it in the sending MTA's queue and log (by "
        "recipient or queue id), then in the receiving MTA's log, then in the mailbox "
        "server's delivery log. A message still queued says why in its last delivery "
        "attempt; a long queue or greylisting needs a longer deadline.",
        {
            "exim": "exim -bp\nexigrep <recipient> /var/log/exim4/mainlog",
            "postfix": "postqueue -p\ngrep <queue-id> /var/log/mail.log",
            "sendmail": "mailq\ngrep <queue-id> /var/log/mail.log",
            "dovecot": "doveadm log errors",
        },
    ),
)
_NOT_PASS_FIXES = {
    "spf": Fix(
        "The receiver's SPF check of the envelope sender's domain did not pass for the "
        "address the message came from. Add that address (the receiver's Received header "
        "shows it) to the SPF record of the MAIL FROM domain; when mail leaves through a "
        "relay or a provider, it is that host's address, or the provider's include.",
        {"zone": '<domain>. 3600 IN TXT "v=spf1 mx ip4:<sending-ip> -all"'},
    ),
    "dkim": Fix(
        "The message was not signed, or its signature did not verify at the receiver. Make "
        "the outbound MTA sign the domain's mail, publish the selector's key, and let "
        "nothing change the message after signing (footers, content filters: sign last). "
        "Check the DKIM-Signature header of a message you sent, and "
        "`opendkim-testkey -d <domain> -s <selector> -vvv`.",
        DKIM_SIGNING,
    ),
    "dmarc": ALIGNED,
    "iprev": Fix(
        "The receiver could not confirm the sending address's reverse DNS: give the address "
        "a PTR record naming the host, and that name an A (or AAAA) record back to the "
        "address. The reverse zone is usually set through your provider. Check with "
        "`dig +short -x <sending-ip>` and `dig +short A <host>`.",
        {
            "zone": "<d>.<c>.<b>.<a>.in-addr.arpa. 3600 IN PTR <host>.\n"
            "<host>. 3600 IN A <a>.<b>.<c>.<d>",
        },
    ),
}
AUTHRES_NOT_PASS = {
    method: Code(
        f"AUTHRES_{method.upper()}_NOT_PASS",
        f"the receiver's own {method} verdict is not pass",
        Severity.FAIL,
        fix=_NOT_PASS_FIXES[method],
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
        fix=Fix(
            "The signature does not verify: the body or a signed header changed after signing "
            "(a footer, a content filter, 8-bit or line-ending conversion), or the published "
            "key is not the one the signer uses. Sign as the last step before the message "
            "leaves, with relaxed canonicalization, and check the key (the dns.dkim probe with "
            "--dkim-key, or `opendkim-testkey -d <domain> -s <selector> -k <key-file> -vvv`).",
            {
                "exim": "# the remote_smtp transport\ndkim_canon = relaxed",
                "opendkim": "Canonicalization relaxed/relaxed",
            },
        ),
    ),
    Code(
        "DMARC_NOT_ALIGNED",
        "neither an aligned DKIM pass nor an aligned SPF pass for the From domain",
        Severity.FAIL,
        fix=ALIGNED,
    ),
)
