"""Perdition 2.2 on the lab's mailbox role, proxying in clear to a Dovecot store.

The front the clients see (`spec.address("mailbox")`) is four Perdition processes, one per
protocol, all reading one config file (`perdition.conf`, the options every instance shares) and
taking their listener on the command line, as Debian's /etc/default/perdition does:

- IMAP4 on `ports.imap` and POP3 on `ports.pop3`: STARTTLS/STLS (`ssl_mode tls_listen_force`:
  LOGINDISABLED before TLS and logins in clear refused; plain `tls_listen` when
  `dovecot.plaintext_auth` asks for logins in clear to be accepted);
- IMAP4S on `ports.imaps` and POP3S on `ports.pop3s`: implicit TLS (`ssl_mode ssl_listen`).

Every login goes, unchanged (`<user>@<domain>`, no popmap: `map_library ""`), to the Dovecot
store (`spec.address("store")`, same port numbers, in clear); the store's tagged answer is
passed back (`server_resp_line`), then Perdition just pipes bytes, so IDLE, SEARCH, FETCH,
UIDPLUS etc. are the store's. Before login Perdition answers CAPABILITY/CAPA from its own
static lists (`imap_capability`, `pop_capability`).

`render(spec, root, "mailbox", password)` writes `<root>/mailbox/` (Perdition) and
`<root>/store/` (Dovecot, probes.lab.dovecot_conf.render_store).
"""

from __future__ import annotations

from pathlib import Path

from probes.lab import dovecot_conf
from probes.lab.spec import LabSpec
from probes.lab.template import fill

# In the base image (probes.lab.image.BASE_PACKAGES); listed here for the flavour registry.
PACKAGES: tuple[str, ...] = ("perdition",)

# Perdition 2.2 takes ssl_listen_min_proto_version up to tlsv1.2; TLSv1.3 as a floor is set
# through OpenSSL's own configuration instead (OPENSSL_CONF, see _OPENSSL_TLS13_CNF).
PROTO_VERSION = {
    "TLSv1": "tlsv1",
    "TLSv1.1": "tlsv1.1",
    "TLSv1.2": "tlsv1.2",
    "TLSv1.3": "tlsv1.2",
}
# Perdition has no option to bind its outgoing connections: the kernel gives a connection to
# a 127/8 address the source 127.0.0.1, so the store trusts that besides the mailbox address.
LOOPBACK_SOURCE = "127.0.0.1/32"


# RFC 7919's ffdhe2048 group, for the DHE suites (TLSv1.2 and below). Perdition 2.2 reads DH
# parameters only from its certificate file (no ssl_dh_params_file): start.sh appends them.
FFDHE2048_PEM = """\
-----BEGIN DH PARAMETERS-----
MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==
-----END DH PARAMETERS-----
"""


def unsupported(spec: LabSpec) -> list[tuple[str, str]]:
    """Perdition expresses every mailbox toggle of the spec. Like Dovecot direct it ignores
    `tls.starttls` (STARTTLS/STLS stay offered on 143/110) and `tls.key_readable` (the key is
    always installed readable; Perdition would not start without it)."""
    return []


def render(spec: LabSpec, root: Path, role: str, password: str) -> None:
    """Write `<root>/<role>/` (Perdition: perdition.conf, start.sh, DH parameters, and
    openssl.cnf for a TLSv1.3 floor) and `<root>/store/` (the Dovecot store behind it)."""
    out = root / role
    out.mkdir(parents=True, exist_ok=True)
    (out / "perdition.conf").write_text(perdition_conf(spec))
    (out / "start.sh").write_text(start_sh(spec, role))
    (out / "ffdhe2048.pem").write_text(FFDHE2048_PEM)
    if spec.tls.min_version == "TLSv1.3":
        (out / "openssl.cnf").write_text(_OPENSSL_TLS13_CNF)
    trusted = (f"{spec.address(role)}/32", LOOPBACK_SOURCE)
    dovecot_conf.render_store(spec, root, password, trusted)


def imap_capability(spec: LabSpec) -> str:
    # Perdition adds STARTTLS before TLS (tls_listen) and LOGINDISABLED before TLS
    # (tls_listen_force) by itself, and removes both once TLS is up.
    return "IMAP4 IMAP4REV1 LITERAL+"


def pop_capability(spec: LabSpec) -> str:
    """The POP3 CAPA list ('.'-separated). It is static (only STLS is added before TLS), so
    USER is listed only where logins in clear are accepted: advertising it before STLS while
    refusing it would be a false AUTH_BEFORE_TLS. USER/PASS still works after STLS."""
    caps = ["TOP", "UIDL"]
    if spec.dovecot.plaintext_auth:
        caps.append("USER")
    return ".".join(caps)


def ssl_mode_starttls(spec: LabSpec) -> str:
    return "tls_listen" if spec.dovecot.plaintext_auth else "tls_listen_force"


def listeners(spec: LabSpec) -> list[tuple[str, str, int, int, str]]:
    """(program, protocol, listen port, store port, ssl_mode) for each Perdition process."""
    p = spec.ports
    starttls = ssl_mode_starttls(spec)
    return [
        ("perdition.imap4", "IMAP4", p.imap, p.imap, starttls),
        ("perdition.imap4s", "IMAP4S", p.imaps, p.imap, "ssl_listen"),
        ("perdition.pop3", "POP3", p.pop3, p.pop3, starttls),
        ("perdition.pop3s", "POP3S", p.pop3s, p.pop3, "ssl_listen"),
    ]


_CONF = """\
# Generated by mailprobe for a lab of @@DOMAIN@@: options shared by the IMAP4, IMAP4S, POP3
# and POP3S instances (each gets protocol, bind_address, listen_port, outgoing_server and
# ssl_mode on its command line: /lab/mailbox/start.sh).

# Log to stderr (the container's log); this also keeps perdition in the foreground.
log_facility +
no_daemon
pid_file ""
# Never log passwords (the default; stated because it matters).
log_passwd never

# A pure proxy: no popmap, every user goes to the outgoing_server (the Dovecot store).
map_library ""
no_lookup
server_resp_line
connection_limit 256

imap_capability @@IMAP_CAPABILITY@@
pop_capability @@POP_CAPABILITY@@

ssl_cert_file /etc/perdition/tls/server.crt
ssl_key_file /etc/perdition/tls/server.key
ssl_listen_min_proto_version @@MIN_PROTO@@
ssl_listen_ciphers @@CIPHERS@@
"""


def perdition_conf(spec: LabSpec) -> str:
    legacy = spec.tls.min_version in ("TLSv1", "TLSv1.1")
    values = {
        "DOMAIN": spec.domain,
        "IMAP_CAPABILITY": imap_capability(spec),
        "POP_CAPABILITY": pop_capability(spec),
        "MIN_PROTO": PROTO_VERSION[spec.tls.min_version],
        # Debian's OpenSSL refuses TLSv1/1.1 at its default security level 1+: level 0 lets
        # the versions the spec asks for really be negotiated.
        "CIPHERS": "DEFAULT:@SECLEVEL=0" if legacy else "DEFAULT",
    }
    return fill(_CONF, values, "perdition config")


# OpenSSL's system default for every SSL_CTX: no protocol below TLSv1.3. Perdition then sets
# its own floor (tlsv1.2) with SSL_CTX_set_min_proto_version, which does not re-enable what
# `Protocol` has switched off.
_OPENSSL_TLS13_CNF = """\
# Generated by mailprobe: a TLSv1.3 floor for Perdition (tls.min_version: TLSv1.3).
openssl_conf = openssl_init

[openssl_init]
ssl_conf = ssl_sect

[ssl_sect]
system_default = system_default_sect

[system_default_sect]
MinProtocol = TLSv1.3
Protocol = -SSLv3, -TLSv1, -TLSv1.1, -TLSv1.2
"""

_START_HEAD = """\
#!/bin/sh
# Perdition: one process per protocol; if any of them exits, the others are stopped and the
# container exits, so readiness and `podman logs` show it.
[ -n "$BASH_VERSION" ] || exec /bin/bash "$0" "$@"
set -e
install -d -m 0755 /etc/perdition/tls
install -m 0644 /lab/@@ROLE@@/perdition.conf /etc/perdition/perdition.conf
cat /lab/tls/@@ROLE@@.crt /lab/@@ROLE@@/ffdhe2048.pem > /etc/perdition/tls/server.crt
install -m 0600 /lab/tls/@@ROLE@@.key /etc/perdition/tls/server.key
"""

_START_TAIL = """\
set +e
trap 'kill "${pids[@]}" 2>/dev/null; wait; exit 143' TERM INT
wait -n
status=$?
echo "start.sh: a perdition process exited (status $status); stopping the others" >&2
kill "${pids[@]}" 2>/dev/null
wait
exit 1
"""


def start_sh(spec: LabSpec, role: str = "mailbox") -> str:
    lines = [_START_HEAD.replace("@@ROLE@@", role)]
    if spec.tls.min_version == "TLSv1.3":
        lines.append(f"export OPENSSL_CONF=/lab/{role}/openssl.cnf\n")
    lines.append("pids=()\n")
    ip, store = spec.address(role), spec.address("store")
    for program, protocol, port, store_port, mode in listeners(spec):
        lines.append(
            f"{program} -f /etc/perdition/perdition.conf --protocol {protocol}"
            f" --bind_address {ip} --listen_port {port}"
            f" --outgoing_server {store}:{store_port} --ssl_mode {mode} &\n"
            "pids+=($!)\n"
        )
    lines.append(_START_TAIL)
    return "".join(lines)
