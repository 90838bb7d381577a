"""sendmail 8.17 (Debian bookworm) for the lab's mx and outbound roles, with the OpenDKIM milter
hooked in with `INPUT_MAIL_FILTER` (signing on outbound, verifying on mx) and pyspf-milter
checking SPF on the mx.

The roles are the Exim lab's, seen from outside (probes.lab.exim_conf):

- mx: 25 (STARTTLS), 465 (implicit TLS, `M=s`), 587 (submission); AUTH PLAIN/LOGIN
  from Cyrus SASL's sasldb, offered only under TLS (`AuthOptions=p`) and never on 25 (`M=A`);
  the lab domain is a virtusertable domain (the aliases, `error:` for unknown users) that a
  mailertable routes to an LMTP mailer (`F=z`, `P=[IPC]`, `A=TCP $h <lmtp port>`) reaching
  Dovecot; relaying only for authenticated clients. OpenDKIM verifies DKIM and pyspf-milter
  (its `skip_addresses` emptied: the lab's clients are all in 127/8) checks SPF; each prepends
  an Authentication-Results header with authserv-id `mx.<domain>`.
- outbound: 25 and 587; relays for the authorized client (access db `Connect:`) and for
  authenticated users, OpenDKIM signs what it relays, and delivers by MX lookup to
  `ports.smtp` from the outbound address (`ClientPortOptions=Addr=`).

sendmail.cf is made from the rendered .mc with m4 inside the container (the host has no
sendmail-cf), the maps with makemap, at start. sendmail, OpenDKIM and pyspf-milter log only to
syslog: a tiny /dev/log reader (opendkim_conf.syslog_lines) copies their lines to the
container's stdout.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from probes.lab import opendkim_conf, pki
from probes.lab.spec import LabSpec

PACKAGES: tuple[str, ...] = (
    "libsasl2-modules",
    "m4",
    "opendkim",
    "pyspf-milter",
    "sasl2-bin",
    "sendmail",
    "sendmail-bin",
    "sendmail-cf",
)

ROLES = ("mx", "outbound")
MAIL_DIR = "/etc/mail"
OPENDKIM_SOCKET = "/run/opendkim/opendkim.sock"
SPF_SOCKET = "/run/pyspf-milter/pyspf-milter.sock"
ALIASES = ("postmaster", "abuse", "dmarc-reports", "tls-reports")

# ServerSSLOptions per protocol floor (OpenSSL option names sendmail knows).
_NO_PROTOCOLS = {
    "TLSv1": (),
    "TLSv1.1": ("SSL_OP_NO_TLSv1",),
    "TLSv1.2": ("SSL_OP_NO_TLSv1", "SSL_OP_NO_TLSv1_1"),
    "TLSv1.3": ("SSL_OP_NO_TLSv1", "SSL_OP_NO_TLSv1_1", "SSL_OP_NO_TLSv1_2"),
}


def unsupported(spec: LabSpec) -> list[tuple[str, str]]:
    """sendmail expresses every SMTP toggle of the spec but an unreadable key; and it cannot
    be kept from delivering to an address outside 127/8 that the lab's zones publish (Exim's
    router and Postfix's DNS reply filter drop those), so such a spec is refused."""
    found = []
    if not spec.tls.key_readable:
        found.append(
            (
                "tls.key_readable",
                "sendmail stops offering STARTTLS when it cannot read its key "
                "(it never answers 454 to STARTTLS)",
            )
        )
    records = [(f"extra_records[{i}]", rec) for i, rec in enumerate(spec.extra_records)]
    for zone, lines in spec.extra_zones.items():
        records += [(f"extra_zones.{zone}[{i}]", rec) for i, rec in enumerate(lines)]
    for fld, rec in records:
        if _outside_loopback(rec):
            found.append(
                (
                    fld,
                    "an address outside 127/8: sendmail would deliver there "
                    "(lab traffic stays on loopback)",
                )
            )
    return found


def _outside_loopback(record: str) -> bool:
    """True for an A/AAAA zone line whose address is not in 127/8."""
    words = record.split()
    for i, word in enumerate(words[:-1]):
        if word.upper() in ("A", "AAAA"):
            try:
                addr = ipaddress.ip_address(words[i + 1])
            except ValueError:
                return False  # a placeholder such as {mx}: a lab address
            return not (addr.version == 4 and addr in ipaddress.ip_network("127.0.0.0/8"))
    return False


def render(spec: LabSpec, root: Path, role: str, password: str) -> None:
    """Write `<root>/<role>/`: sendmail.mc, the map sources, OpenDKIM's (and on the mx
    pyspf-milter's) config, the SASL password and start.sh."""
    if role not in ROLES:
        raise ValueError(f"sendmail runs the mx or outbound role, not {role!r}")
    out = root / role
    out.mkdir(parents=True, exist_ok=True)
    (out / "sendmail.mc").write_text(sendmail_mc(spec, role))
    for name, text in maps(spec, role).items():
        (out / name).write_text(text)
    (out / "Sendmail.conf").write_text(SASL_CONF)
    (out / "lab-service.switch").write_text(SERVICE_SWITCH)
    pki.write_secret(out / "sasl-password", password.encode())
    opendkim_conf.render(spec, root, role, OPENDKIM_SOCKET)
    if role == "mx":
        (out / "pyspf-milter.conf").write_text(pyspf_milter_conf(spec))
    (out / "start.sh").write_text(start_sh(spec, role))


SASL_CONF = """\
pwcheck_method: auxprop
auxprop_plugin: sasldb
mech_list: PLAIN LOGIN
"""


def _q(value: str) -> str:
    """An m4 quoted string."""
    return f"`{value}'"


def _define(name: str, value: str) -> str:
    return f"define({_q(name)}, {_q(value)})dnl"


def sendmail_mc(spec: LabSpec, role: str) -> str:
    """The m4 source of sendmail.cf for a lab role."""
    ports, ip, hostname = spec.ports, spec.address(role), f"{role}.{spec.domain}"
    toggles = spec.exim
    privacy = ["authwarnings", "needmailhelo", "noetrn", "noverb", "restrictqrun"]
    privacy += ["restrictmailq", "noreceipts"]
    privacy += [] if toggles.vrfy else ["novrfy"]
    privacy += [] if toggles.expn else ["noexpn"]
    auth_options = "A" if toggles.auth_before_tls else "A,p"
    no_starttls = "" if spec.tls.starttls else "S"
    # AUTH is never offered on port 25 (M=A) unless the lab wants it before TLS everywhere.
    no_auth_25 = "" if toggles.auth_before_tls else "A"
    remote = f"TCP $h {ports.smtp}"
    key = "server.key" if spec.tls.key_readable else "unreadable.key"
    ssl_options = " ".join(f"+{o}" for o in ("SSL_OP_NO_SSLv2", "SSL_OP_NO_SSLv3"))
    ssl_options += "".join(f" +{o}" for o in _NO_PROTOCOLS[spec.tls.min_version])
    # Debian's OpenSSL refuses TLS 1.0/1.1 at its default security level 2.
    legacy = spec.tls.min_version in ("TLSv1", "TLSv1.1")
    ciphers = "DEFAULT:@SECLEVEL=0" if legacy else "DEFAULT"
    lines = [
        "divert(-1)dnl",
        f"# Generated by mailprobe for a lab of {spec.domain} (role {role}).",
        "divert(0)dnl",
        "include(`/usr/share/sendmail/cf/m4/cf.m4')dnl",
        f"VERSIONID({_q('mailprobe lab ' + role)})dnl",
        "OSTYPE(`debian')dnl",
        # Debian's MTA conventions: TrustedUser smmta (owner of /etc/mail, the maps, the queue).
        "DOMAIN(`debian-mta')dnl",
        # Who am I: never ask the resolver or the interfaces (classic start-up stalls).
        _define("confDOMAIN_NAME", hostname),
        _define("confDONT_PROBE_INTERFACES", "True"),
        _define("confBIND_OPTS", "-DNSRCH -DEFNAMES"),
        _define("confTO_IDENT", "0"),
        # Host names from DNS only: with `files` in the switch, sendmail retries a failed
        # lookup with the short name ("mx"), which the lab DNS refuses (TRY_AGAIN).
        _define("confSERVICE_SWITCH_FILE", f"{MAIL_DIR}/lab-service.switch"),
        _define("confTO_RESOLVER_RETRANS", "1s"),
        _define("confTO_RESOLVER_RETRY", "2"),
        _define("confTO_CONNECT", "10s"),
        _define("confTO_ICONNECT", "5s"),
        _define("confDELIVERY_MODE", "background"),
        # No persistent host status: one failed attempt (say a test that broke the lab DNS for
        # a moment) must not hold later mail for the host back until a queue run.
        "undefine(`confHOST_STATUS_DIRECTORY')dnl",
        _define("confTO_HOSTSTATUS", "0s"),
        _define("confSMTP_LOGIN_MSG", "$j Sendmail $v/$Z; $b mailprobe-lab"),
        _define("confPRIVACY_FLAGS", ",".join(privacy)),
        _define("confMAX_MESSAGE_SIZE", str(50 * 1024 * 1024)),
        _define("confLOG_LEVEL", "9"),
        _define("confMILTER_LOG_LEVEL", "2"),
        _define("confCONNECTION_RATE_THROTTLE", "0"),
        _define("confMAX_DAEMON_CHILDREN", "0"),
        # Load-average thresholds out of reach: 0 is not "off" for QueueLA (sendmail queues a
        # message when its priority exceeds QueueFactor / (LA - QueueLA + 1)), so a busy test
        # machine would leave mail for the 15 s queue run instead of delivering it at once.
        _define("confREFUSE_LA", "1000"),
        _define("confQUEUE_LA", "1000"),
        _define("confDELAY_LA", "0"),
        # TLS (OpenSSL): no client certificates asked for (V), the floor in the SSL options.
        _define("confCACERT_PATH", f"{MAIL_DIR}/tls"),
        _define("confCACERT", f"{MAIL_DIR}/tls/ca.pem"),
        _define("confSERVER_CERT", f"{MAIL_DIR}/tls/server.crt"),
        _define("confSERVER_KEY", f"{MAIL_DIR}/tls/{key}"),
        _define("confCLIENT_CERT", f"{MAIL_DIR}/tls/server.crt"),
        _define("confCLIENT_KEY", f"{MAIL_DIR}/tls/{key}"),
        _define("confTLS_SRV_OPTIONS", "V"),
        _define("confSERVER_SSL_OPTIONS", ssl_options),
        _define("confCIPHER_LIST", ciphers),
        # SASL: PLAIN and LOGIN from sasldb; `p`: none of them before a TLS layer.
        _define("confAUTH_MECHANISMS", "PLAIN LOGIN"),
        f"TRUST_AUTH_MECH({_q('PLAIN LOGIN')})dnl",
        _define("confAUTH_OPTIONS", auth_options),
        # Outgoing connections from this role's own address, by MX to the lab's SMTP port.
        f"CLIENT_OPTIONS(`Family=inet, Addr={ip}')dnl",
        _define("SMTP_MAILER_ARGS", remote),
        _define("ESMTP_MAILER_ARGS", remote),
        _define("SMTP8_MAILER_ARGS", remote),
        _define("DSMTP_MAILER_ARGS", remote),
        _define("RELAY_MAILER_ARGS", remote),
        "FEATURE(`no_default_msa')dnl",
        f"FEATURE(`access_db', `hash -o -T<TMPF> {MAIL_DIR}/access')dnl",
        "FEATURE(`accept_unresolvable_domains')dnl",
        # Class R (the virtusertable domain on the mx) names recipient domains, not clients:
        # without this, every client whose PTR ends in the lab domain could relay.
        "FEATURE(`relay_hosts_only')dnl",
    ]
    if toggles.open_relay:
        lines.append("dnl open relay: lab spec exim.open_relay")
        lines.append("FEATURE(`promiscuous_relay')dnl")
    if role == "mx":
        lines += [
            f"FEATURE(`virtusertable', `hash -o {MAIL_DIR}/virtusertable')dnl",
            f"VIRTUSER_DOMAIN({_q(spec.domain)})dnl",
            # Unknown users of the lab domain: `To:` entries of the access db (a virtusertable
            # `error:` catch-all would also refuse them as MAIL FROM senders).
            "FEATURE(`blocklist_recipients')dnl",
            f"FEATURE(`mailertable', `hash -o {MAIL_DIR}/mailertable')dnl",
        ]
    lines += [
        f"DAEMON_OPTIONS(`Name=MTA, Family=inet, Addr={ip}, "
        f"Port={ports.smtp if role == 'mx' else ports.outbound_smtp}, "
        f"M=E{no_auth_25}{no_starttls}')dnl",
        f"DAEMON_OPTIONS(`Name=MSA, Family=inet, Addr={ip}, "
        f"Port={ports.submission if role == 'mx' else ports.outbound_submission}, "
        # No `a` (AUTH required for MAIL): as on the Exim lab, the relay rules decide at RCPT,
        # so the authorized client relays on 587 too and others are refused at RCPT.
        f"M=E{no_starttls}')dnl",
    ]
    if role == "mx":
        lines.append(
            f"DAEMON_OPTIONS(`Name=SMTPS, Family=inet, Addr={ip}, "
            f"Port={ports.submissions}, M=Es')dnl"
        )
        milters = [
            f"INPUT_MAIL_FILTER(`opendkim', `S=local:{OPENDKIM_SOCKET}, F=T, "
            "T=C:10s;S:30s;R:30s;E:60s')dnl",
            f"INPUT_MAIL_FILTER(`spf', `S=local:{SPF_SOCKET}, F=T, T=C:10s;S:30s;R:30s;E:60s')dnl",
        ]
    else:
        milters = [
            f"INPUT_MAIL_FILTER(`opendkim', `S=local:{OPENDKIM_SOCKET}, F=T, "
            "T=C:10s;S:30s;R:30s;E:60s')dnl",
        ]
    lines += milters
    if not toggles.open_relay:
        lines += ["LOCAL_RULESETS", LOCALHOST_NO_RELAY]
    lines += [
        "MAILER_DEFINITIONS",
        "MAILER(`local')dnl",
        "MAILER(`smtp')dnl",
    ]
    if role == "mx":
        lines += [
            "MAILER_DEFINITIONS",
            "# The lab domain's mailbox: Dovecot over LMTP on TCP (flag z).",
            "Mlmtp,\t\tP=[IPC], F=mDFMuXz8, S=EnvFromSMTP/HdrFromSMTP, "
            "R=EnvToSMTP/HdrFromSMTP, E=\\r\\n, L=990,",
            f"\t\tT=DNS/RFC822/SMTP, A=TCP $h {ports.lmtp}",
        ]
    return "\n".join(lines) + "\n"


# sendmail relays for 127.0.0.1 ("originated locally", Relay_ok) and for the client name
# localhost (class w). On the lab's host network 127.0.0.1 is any local process, a client like
# the others: it may send to this host's own domains, and relays only when authenticated.
LOCALHOST_NO_RELAY = "\n".join(
    "\t".join(rule)
    for rule in (
        ("SLocal_check_rcpt",),
        ("R$*", "$: $1 $| $&{client_addr} $| $&{auth_type}"),
        ("R$* $| 127.0.0.1 $|", "$: <localhost> $>CanonAddr $1"),
        ("R$* $| $*", "$@ OK"),
        ("R<localhost> $+ < @ $=w . >", "$@ OK"),
        ("R<localhost> $+ < @ $=w >", "$@ OK"),
        ("R<localhost> $+ < @ $=R . >", "$@ OK"),
        ("R<localhost> $+ < @ $=R >", "$@ OK"),
        (
            "R<localhost> $+ < @ $+ >",
            '$#error $@ 5.7.1 $: "550 Relaying denied. Proper authentication required."',
        ),
        ("R<localhost> $*", "$@ OK"),
    )
)

SERVICE_SWITCH = "passwd\tfiles\nhosts\tdns\naliases\tfiles\n"


def maps(spec: LabSpec, role: str) -> dict[str, str]:
    """The map sources (made into hash maps with makemap at start) and the aliases file."""
    user = f"{spec.user}@{spec.domain}"
    aliases = [f"{name}: {user}" for name in ALIASES]
    aliases += ["MAILER-DAEMON: postmaster", "root: postmaster", "nobody: /dev/null"]
    found = {"aliases": "\n".join(aliases) + "\n"}
    if role == "mx":
        access = [f"To:{user}\tOK"]
        access += [f"To:{name}@{spec.domain}\tOK" for name in ALIASES]
        access.append(f"To:{spec.domain}\tERROR:5.1.1:550 User unknown")
        found["access"] = "\n".join(access) + "\n"
        virt = [f"{name}@{spec.domain}\t{user}" for name in ALIASES]
        found["virtusertable"] = "\n".join(virt) + "\n"
        found["mailertable"] = f"{spec.domain}\tlmtp:[{spec.lmtp_address}]\n"
    else:
        found["access"] = f"Connect:{spec.address('authorized')}\tRELAY\n"
    return found


def pyspf_milter_conf(spec: LabSpec) -> str:
    """pyspf-milter on the mx: record the verdict only (never reject), check the MAIL FROM
    identity, and check every client: its default skip_addresses (127/8) and InternalHosts
    (127.0.0.1) would skip the whole loopback lab. (An empty skip_addresses crashes
    spf-engine 3.0.4: it must name something; ::1/128 is no lab client.)"""
    return f"""\
# Generated by mailprobe for a lab of {spec.domain} (role mx).
debugLevel = 1
TestOnly = 1
HELO_reject = False
Mail_From_reject = False
PermError_reject = False
TempError_Defer = False
skip_addresses = ::1/128
Header_Type = AR
Authserv_Id = mx.{spec.domain}
Lookup_Time = 5
Socket = local:{SPF_SOCKET}
PidFile = /run/pyspf-milter/pyspf-milter.pid
UserID = pyspf-milter
UMask = 7
InternalHosts = 192.0.2.255
"""


def start_sh(spec: LabSpec, role: str) -> str:
    """Container entry: syslog reader, config and keys in place, cf and maps built, milters
    up, then sendmail in the foreground."""
    user = spec.user
    spf = ""
    sockets = OPENDKIM_SOCKET
    if role == "mx":
        spf = f"""\
install -d -m 0750 -o pyspf-milter -g pyspf-milter /run/pyspf-milter
install -m 0644 /lab/{role}/pyspf-milter.conf /etc/pyspf-milter/pyspf-milter.conf
pyspf-milter /etc/pyspf-milter/pyspf-milter.conf &
"""
        sockets += f" {SPF_SOCKET}"
    return f"""\
#!/bin/sh
set -e
{opendkim_conf.syslog_lines()}{opendkim_conf.start_lines(role, OPENDKIM_SOCKET)}{spf}\
install -d -m 0755 /run/sendmail/mta /var/lib/sendmail/host_status
cd {MAIL_DIR}
# sendmail qualifies the (host network's) host name at start: answer from the hosts file,
# first line, or it sleeps 60 s ("My unqualified host name unknown").
if ! grep -q ' {role}.{spec.domain} ' /etc/hosts; then
  {{ echo "{spec.address(role)} {role}.{spec.domain} {role} $(hostname)"; cat /etc/hosts; }} \\
    > /tmp/hosts && cat /tmp/hosts > /etc/hosts
fi
install -d -m 0755 tls sasl
install -m 0644 /lab/ca.pem tls/ca.pem
install -m 0644 /lab/tls/{role}.crt tls/server.crt
install -m 0600 /lab/tls/{role}.key tls/server.key
install -m 0644 /lab/{role}/Sendmail.conf sasl/Sendmail.conf
install -m 0644 /lab/{role}/sendmail.mc /lab/{role}/lab-service.switch .
m4 sendmail.mc > sendmail.cf
rm -f access access.db aliases aliases.db virtusertable.db mailertable.db
for map in $(ls /lab/{role}/access /lab/{role}/virtusertable /lab/{role}/mailertable \\
    2>/dev/null); do
  makemap hash "$(basename "$map")" < "$map"
done
install -m 0644 /lab/{role}/aliases aliases
sendmail -bi > /dev/null
rm -f /etc/sasldb2
saslpasswd2 -p -c -u {spec.domain} -f /etc/sasldb2 {user} < /lab/{role}/sasl-password
chown root:smmsp /etc/sasldb2 && chmod 0640 /etc/sasldb2
for _ in $(seq 50); do
  ready=1
  for s in {sockets}; do [ -S "$s" ] || ready=0; done
  [ "$ready" = 1 ] && break
  sleep 0.05
done
exec /usr/sbin/sendmail -bD -q15s
"""
