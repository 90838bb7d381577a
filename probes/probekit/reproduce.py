"""Shell command lines a user can paste to see for themselves what a transport probe saw.

Pure string building; every value is `shlex.quote`d. Secrets never appear in a line: an
authenticating swaks line reads the password from the environment at run time with the
literal, double-quoted shell reference `"$MAILPROBE_PASSWORD"` (export it first, e.g.
`read -rs MAILPROBE_PASSWORD && export MAILPROBE_PASSWORD`).

- TLS/certificate findings: `openssl_line` (`openssl s_client`, with `-starttls smtp|imap|pop3`
  for STARTTLS ports, none for 465/993/995).
- SMTP findings: `swaks_line` (`--tls` = STARTTLS required, `--tlsc` = TLS on connect).
"""

from __future__ import annotations

import ipaddress
import shlex
from collections.abc import Sequence

PASSWORD_ENV = "MAILPROBE_PASSWORD"
PASSWORD_REF = f'"${PASSWORD_ENV}"'  # expanded by the user's shell, never the secret itself

# openssl s_client version flags, by the names TLS_LEGACY_PROTOCOL/TLS_NEGOTIATED use.
OPENSSL_VERSION_FLAGS = {
    "SSLv3": "-ssl3",
    "TLSv1": "-tls1",
    "TLSv1.1": "-tls1_1",
    "TLSv1.2": "-tls1_2",
    "TLSv1.3": "-tls1_3",
}
# protocols `openssl s_client -starttls` knows (OpenSSL 3)
OPENSSL_STARTTLS = frozenset(
    {
        "smtp",
        "pop3",
        "imap",
        "ftp",
        "xmpp",
        "xmpp-server",
        "irc",
        "postgres",
        "mysql",
        "lmtp",
        "nntp",
        "sieve",
        "ldap",
    }
)
SWAKS_TLS_FLAGS = {"starttls": "--tls", "implicit": "--tlsc"}


def _port(port: int) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"invalid port {port!r}")
    return port


def _is_ipv6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False


def host_port(host: str, port: int) -> str:
    """`host:port`, IPv6 literals bracketed (`[::1]:25`)."""
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return f"[{host}]:{_port(port)}" if _is_ipv6(host) else f"{host}:{_port(port)}"


def openssl_line(
    host: str,
    port: int,
    *,
    starttls: str | None = None,
    servername: str | None = None,
    ca_file: str | None = None,
    tls_version: str | None = None,
) -> str:
    """`openssl s_client -connect host:port [...] -brief </dev/null`.

    `starttls`: an `-starttls` protocol ("smtp", "imap", "pop3"); `tls_version`: one of
    OPENSSL_VERSION_FLAGS' keys ("TLSv1.2"); ValueError for anything else.
    """
    args = ["openssl", "s_client", "-connect", host_port(host, port)]
    if starttls is not None:
        if starttls not in OPENSSL_STARTTLS:
            raise ValueError(f"unknown -starttls protocol {starttls!r}")
        args += ["-starttls", starttls]
    if servername is not None:
        args += ["-servername", servername]
    if ca_file is not None:
        args += ["-CAfile", ca_file]
    if tls_version is not None:
        if tls_version not in OPENSSL_VERSION_FLAGS:
            raise ValueError(f"unknown TLS version {tls_version!r}")
        args.append(OPENSSL_VERSION_FLAGS[tls_version])
    args.append("-brief")
    return shlex.join(args) + " </dev/null"


def swaks_line(
    server: str,
    port: int,
    *,
    tls: str | None = None,
    quit_after: str | None = None,
    auth_user: str | None = None,
    ehlo: str | None = None,
    mail_from: str | None = None,
    to: str | None = None,
    extra: Sequence[str] = (),
) -> str:
    """`swaks --server host --port N [--tls|--tlsc] [--quit-after X] [--auth-user U
    --auth-password "$MAILPROBE_PASSWORD"] [--ehlo H] [--from F] [--to T] [extra...]`.

    `tls`: "starttls" (`--tls`, STARTTLS required) or "implicit" (`--tlsc`, TLS on connect);
    ValueError for anything else. IPv6 servers are bracketed (`[::1]`, swaks' own syntax).
    `extra` is appended, each item quoted.
    """
    host = server.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if _is_ipv6(host):
        host = f"[{host}]"
    args = ["swaks", "--server", host, "--port", str(_port(port))]
    if tls is not None:
        if tls not in SWAKS_TLS_FLAGS:
            raise ValueError(f"unknown swaks TLS mode {tls!r}")
        args.append(SWAKS_TLS_FLAGS[tls])
    if quit_after is not None:
        args += ["--quit-after", quit_after]
    if ehlo is not None:
        args += ["--ehlo", ehlo]
    if mail_from is not None:
        args += ["--from", mail_from]
    if to is not None:
        args += ["--to", to]
    line = shlex.join(args)
    if auth_user is not None:
        line += f" --auth-user {shlex.quote(auth_user)} --auth-password {PASSWORD_REF}"
    if extra:
        line += " " + shlex.join(list(extra))
    return line
