"""Postfix 3.7 (Debian bookworm) for the lab's mx and outbound roles, with the OpenDKIM milter
(signing on outbound, verifying on mx), OpenDMARC adding `dmarc=` results on the mx and
policyd-spf (pyspf) adding `spf=` results on the mx.

MX (role "mx"): 25 STARTTLS, 465 implicit TLS, 587 submission; AUTH PLAIN/LOGIN (Cyrus SASL,
sasldb) only after TLS and never on 25; accepts the lab user and its aliases (virtual mailbox
domain, `inline:` tables: nothing to postmap), delivers them over LMTP to Dovecot; refuses
unknown users (550 5.1.1) and relaying (554 5.7.1 Relay access denied). Every result header
carries authserv-id `mx.<domain>`: policyd-spf's `spf=` (PREPENDed at RCPT, above Postfix's
Received line), OpenDKIM's `dkim=` and OpenDMARC's `dmarc=` (milters, in that order: OpenDMARC
reads the two before it).

Outbound (role "outbound"): 25 and 587 with STARTTLS, AUTH after TLS; relays for the
authorized client (mynetworks) and authenticated users, OpenDKIM signs what they send; delivers
by MX lookup through the lab DNS from its own address (smtp_bind_address), and a DNS reply
filter drops every address outside 127/8 so lab mail never leaves loopback.

No chroot (sockets, sasldb and resolv.conf stay simple); Postfix logs to the container's stdout
(`maillog_file = /dev/stdout`, `postfix start-fg`); the milters and policyd-spf log to syslog,
which a tiny /dev/log reader copies to stdout (probes.lab.opendkim_conf.syslog_lines).
"""

from __future__ import annotations

from pathlib import Path

from probes.lab import opendkim_conf, opendmarc_conf, pki
from probes.lab.spec import LabSpec

PACKAGES: tuple[str, ...] = (
    "libsasl2-modules",
    "opendkim",
    "opendmarc",
    "postfix",
    "postfix-policyd-spf-python",
    "python3-minimal",
    "sasl2-bin",
)

DKIM_SOCKET = "/run/opendkim/opendkim.sock"
DMARC_SOCKET = "/run/opendmarc/opendmarc.sock"
ALIASES = ("postmaster", "abuse", "dmarc-reports", "tls-reports")
# OpenSSL cipher lists: TLS 1.0/1.1 need security level 0 on Debian's OpenSSL 3.
LEGACY_CIPHERS = "DEFAULT:@SECLEVEL=0"


def unsupported(spec: LabSpec) -> list[tuple[str, str]]:
    found = []
    if spec.exim.expn:
        found.append(
            ("exim.expn", "Postfix has no EXPN command (500 5.5.2 command not recognized)")
        )
    if spec.exim.vrfy:
        found.append(
            ("exim.vrfy", "Postfix answers an enabled VRFY with 252, never 250 with the address")
        )
    return found


def render(spec: LabSpec, root: Path, role: str, password: str) -> None:
    """Write `<root>/<role>/`: main.cf, master.cf, SASL and milter configs, start.sh."""
    if role not in ("mx", "outbound"):
        raise ValueError(f"postfix runs on the mx or outbound role, not {role!r}")
    out = root / role
    out.mkdir(parents=True, exist_ok=True)
    (out / "main.cf").write_text(main_cf(spec, role))
    (out / "master.cf").write_text(master_cf(spec, role))
    (out / "dns-reply-filter").write_text(DNS_REPLY_FILTER)
    (out / "sasl-smtpd.conf").write_text(SASL_SMTPD_CONF)
    pki.write_secret(out / "sasl-password", password.encode())
    opendkim_conf.render(spec, root, role, DKIM_SOCKET)
    if role == "mx":
        (out / "policyd-spf.conf").write_text(policyd_spf_conf(spec))
        opendmarc_conf.render(spec, root, role, DMARC_SOCKET)
    (out / "start.sh").write_text(start_sh(spec, role))


def _cf(settings: list[tuple[str, str]]) -> str:
    return "".join(f"{k} = {v}\n" if v else f"{k} =\n" for k, v in settings)


def main_cf(spec: LabSpec, role: str) -> str:
    ip = spec.address(role)
    tls = spec.tls
    legacy = tls.min_version in ("TLSv1", "TLSv1.1")
    settings: list[tuple[str, str]] = [
        ("compatibility_level", "3.6"),
        ("myhostname", f"{role}.{spec.domain}"),
        ("mydomain", spec.domain),
        ("myorigin", "$mydomain"),
        ("mydestination", ""),
        ("local_transport", "error:5.1.1 no local delivery on this host"),
        ("alias_maps", ""),
        ("alias_database", ""),
        # Postfix finds only 127.0.0.1 on lo (not the rest of 127/8): listen on all, and
        # name the address in each master.cf service instead.
        ("inet_interfaces", "all"),
        ("inet_protocols", "ipv4"),
        ("smtp_bind_address", ip),
        ("lmtp_bind_address", ip),
        ("maillog_file", "/dev/stdout"),
        ("smtpd_banner", "$myhostname ESMTP Postfix mailprobe-lab"),
        ("biff", "no"),
        ("append_dot_mydomain", "no"),
        ("message_size_limit", "52428800"),
        ("smtputf8_enable", "no"),
        # Delivery: MX lookups through the lab DNS, loopback targets only.
        ("smtp_host_lookup", "dns"),
        ("smtp_dns_reply_filter", "regexp:/etc/postfix/dns-reply-filter"),
        ("smtp_tls_security_level", "may"),
        ("smtp_tls_CAfile", "/etc/postfix/tls/ca.pem"),
        ("smtp_tls_loglevel", "1"),
        ("lmtp_tls_security_level", "none"),
        ("maximal_queue_lifetime", "1h"),
        ("bounce_queue_lifetime", "1h"),
        ("minimal_backoff_time", "15s"),
        ("maximal_backoff_time", "60s"),
        ("queue_run_delay", "15s"),
        # TLS server.
        ("smtpd_tls_cert_file", "/etc/postfix/tls/server.crt"),
        (
            "smtpd_tls_key_file",
            "/etc/postfix/tls/server.key"
            if tls.key_readable
            else "/etc/postfix/tls/unreadable.key",
        ),
        ("smtpd_tls_security_level", "may" if tls.starttls else "none"),
        ("smtpd_tls_protocols", f">={tls.min_version}"),
        ("smtpd_tls_mandatory_protocols", f">={tls.min_version}"),
        ("smtpd_tls_loglevel", "1"),
        ("smtpd_tls_auth_only", "no" if spec.exim.auth_before_tls else "yes"),
    ]
    if legacy:
        settings += [
            ("smtpd_tls_ciphers", "medium"),
            ("smtpd_tls_mandatory_ciphers", "medium"),
            ("tls_medium_cipherlist", LEGACY_CIPHERS),
        ]
    settings += [
        # SASL (Cyrus, sasldb); enabled per port in master.cf.
        ("smtpd_sasl_type", "cyrus"),
        ("smtpd_sasl_path", "smtpd"),
        ("cyrus_sasl_config_path", "/etc/postfix/sasl"),
        ("smtpd_sasl_auth_enable", "no"),
        ("smtpd_sasl_security_options", "noanonymous"),
        ("smtpd_sasl_tls_security_options", "noanonymous"),
        ("broken_sasl_auth_clients", "no"),
        ("disable_vrfy_command", "no" if spec.exim.vrfy else "yes"),
        # Milters: unix sockets inside the container.
        ("milter_protocol", "6"),
        ("milter_default_action", "tempfail"),
        ("non_smtpd_milters", ""),
    ]
    # Postfix refuses to run without reject_unauth_destination (or the like) in its relay
    # rules; an open relay is made the classic Postfix way: every client in mynetworks.
    relay = "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination"
    open_relay = "0.0.0.0/0" if spec.exim.open_relay else ""
    if role == "mx":
        users = ", ".join(f"{{{a}@{spec.domain}={spec.user}@{spec.domain}}}" for a in ALIASES)
        settings += [
            ("mynetworks", open_relay),
            ("virtual_mailbox_domains", spec.domain),
            ("virtual_mailbox_maps", f"inline:{{ {spec.user}@{spec.domain}=ok }}"),
            ("virtual_alias_maps", f"inline:{{ {users} }}"),
            ("virtual_transport", f"lmtp:inet:[{spec.lmtp_address}]:{spec.ports.lmtp}"),
            ("smtpd_relay_restrictions", relay),
            (
                "smtpd_recipient_restrictions",
                "permit_sasl_authenticated, check_policy_service unix:private/policy-spf",
            ),
            ("policy-spf_time_limit", "3600s"),
            ("smtpd_milters", f"unix:{DKIM_SOCKET}, unix:{DMARC_SOCKET}"),
        ]
    else:
        settings += [
            ("mynetworks", open_relay or f"{spec.address('authorized')}/32"),
            ("relay_domains", ""),
            ("smtpd_relay_restrictions", relay),
            ("smtpd_milters", f"unix:{DKIM_SOCKET}"),
        ]
    head = f"# Generated by mailprobe for a lab of {spec.domain} (role {role}).\n"
    return head + _cf(settings)


# Postfix's own services, chroot off ("n" in the fifth column).
_MASTER_INTERNAL = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def master_cf(spec: LabSpec, role: str) -> str:
    p = spec.ports
    ip = spec.address(role)
    before_tls = spec.exim.auth_before_tls
    # AUTH: never on 25 (unless auth_before_tls: then on every port, before STARTTLS too).
    auth25 = "yes" if before_tls else "no"
    if role == "mx":
        services = [
            (p.smtp, [f"smtpd_sasl_auth_enable={auth25}"]),
            (
                p.submissions,
                [
                    "smtpd_tls_wrappermode=yes",
                    "smtpd_tls_security_level=encrypt",
                    "smtpd_sasl_auth_enable=yes",
                ],
            ),
            (p.submission, ["smtpd_sasl_auth_enable=yes"]),
        ]
    else:
        services = [
            (p.outbound_smtp, [f"smtpd_sasl_auth_enable={auth25}"]),
            (p.outbound_submission, ["smtpd_sasl_auth_enable=yes"]),
        ]
    lines = [f"# Generated by mailprobe for a lab of {spec.domain} (role {role})."]
    for port, options in services:
        lines.append(f"{ip}:{port} inet n - n - - smtpd")
        lines += [f"  -o {opt}" for opt in options]
    text = "\n".join(lines) + "\n" + _MASTER_INTERNAL
    if role == "mx":
        text += (
            "policy-spf unix -       n       n       -       0       spawn\n"
            "  user=policyd-spf argv=/usr/bin/policyd-spf /etc/postfix/policyd-spf.conf\n"
        )
    return text


# smtp_dns_reply_filter: keep MX and loopback A records, drop every other address record.
DNS_REPLY_FILTER = """\
# Lab mail stays on loopback: drop every address record outside 127.0.0.0/8.
if /^[^[:space:]]+[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+(A|AAAA)[[:space:]]/
!/[[:space:]]IN[[:space:]]+A[[:space:]]+127\\./ IGNORE
endif
"""

SASL_SMTPD_CONF = """\
pwcheck_method: auxprop
auxprop_plugin: sasldb
mech_list: PLAIN LOGIN
sasldb_path: /etc/postfix/sasl/sasldb2
"""


def policyd_spf_conf(spec: LabSpec) -> str:
    """policyd-spf (pyspf): report, never reject; check 127/8 clients too."""
    return f"""\
# Generated by mailprobe for a lab of {spec.domain} (role mx).
debugLevel = 1
TestOnly = 1
HELO_reject = No_Check
Mail_From_reject = False
PermError_reject = False
TempError_Defer = False
# The default skips 127.0.0.0/8 (every lab client); an empty value crashes policyd-spf
# 2.0.2, so keep only IPv6 loopback, which the IPv4-only lab never uses.
skip_addresses = ::1
Header_Type = AR
Authserv_Id = mx.{spec.domain}
Hide_Receiver = Yes
Lookup_Time = 10
"""


def start_sh(spec: LabSpec, role: str) -> str:
    """Container entry: install configs, keys and the SASL user, start the milters, then
    Postfix in the foreground once their sockets exist."""
    sockets = [DKIM_SOCKET] + ([DMARC_SOCKET] if role == "mx" else [])
    mx_lines = ""
    if role == "mx":
        mx_lines = (
            f"install -m 0644 /lab/{role}/policyd-spf.conf /etc/postfix/policyd-spf.conf\n"
            + opendmarc_conf.start_lines(role, DMARC_SOCKET, socket_group="postfix")
        )
    wait = " ".join(f"[ -S {s} ] &&" for s in sockets)
    return f"""\
#!/bin/sh
set -e
install -d -m 0755 /etc/postfix/tls /etc/postfix/sasl
install -m 0644 /lab/{role}/main.cf /etc/postfix/main.cf
install -m 0644 /lab/{role}/master.cf /etc/postfix/master.cf
install -m 0644 /lab/{role}/dns-reply-filter /etc/postfix/dns-reply-filter
install -m 0644 /lab/{role}/sasl-smtpd.conf /etc/postfix/sasl/smtpd.conf
install -m 0644 /lab/tls/{role}.crt /etc/postfix/tls/server.crt
install -m 0600 /lab/tls/{role}.key /etc/postfix/tls/server.key
install -m 0644 /lab/ca.pem /etc/postfix/tls/ca.pem
# The lab password reaches saslpasswd2 on stdin, never on its command line.
saslpasswd2 -p -c -f /etc/postfix/sasl/sasldb2 -u {spec.domain} {spec.user} \
< /lab/{role}/sasl-password
chown root:postfix /etc/postfix/sasl/sasldb2
chmod 0640 /etc/postfix/sasl/sasldb2
{opendkim_conf.syslog_lines()}\
# Postfix waits ("pausing to let main.cf cool down") while its config is < 2 s old.
touch -d @946684800 /etc/postfix/main.cf /etc/postfix/master.cf /etc/postfix/dns-reply-filter
{mx_lines}{opendkim_conf.start_lines(role, DKIM_SOCKET, socket_group="postfix")}\
# Milter sockets first (Postfix tempfails mail while a milter is missing): at most 2 s.
for _ in $(seq 40); do {wait} break; sleep 0.05; done
# A fresh container from the packaged image: skip postfix-script's ~0.4 s integrity scan
# of the queue and system trees (the quick-start marker `postfix quick-stop` leaves).
touch /var/spool/postfix/quick-start
exec postfix start-fg
"""
