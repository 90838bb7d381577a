"""The shape every transport probe shares: one conversation per endpoint, TLS judged on it.

For each endpoint (concurrently, within the run's per-host connection limit):
1. The main conversation: connect; greeting and capabilities; for STARTTLS ports, whether the
   upgrade is offered and works; the handshake, verifying the chain against `--ca-file` or the
   system store. When the chain does not verify, the conversation is repeated without
   verification so the certificate and the rest can still be judged (the password is then
   never sent, nor when the certificate does not name the host). Capabilities after TLS; a
   login when credentials are configured.
2. The protocol sweep: every other TLS version the local OpenSSL can offer, pinned, one
   connection each.
3. Findings: PORT_CLOSED, STARTTLS_*, TLS_HANDSHAKE_FAILED, AUTH_*, certificate and version
   findings (probes.probekit.tls_findings), and the protocol's own.

Protocol specifics (SMTP, IMAP, POP3) come from a `Dialect`.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, ClassVar

from probes.codes import Code, Fix, declare
from probes.credentials import Credentials, login_for
from probes.model import Finding, Severity, Target, Thresholds
from probes.net import Net
from probes.net.stream import Connection, ConnectTimeout
from probes.net.tapes import carry_probe
from probes.net.tls import VERSIONS, LocalTlsUnsupported, TlsSession, untestable_reason
from probes.parse.certificate import CertificateParseError, hostname_matches, parse_certificate
from probes.probe import BaseProbe
from probes.probekit.endpoints import Endpoint, check_all, endpoints_for
from probes.probekit.reproduce import OPENSSL_VERSION_FLAGS, openssl_line
from probes.probekit.tls_findings import (
    CERT_FILES,
    LEGACY_SEVERITY,
    TLS_CODES,
    VerifyResult,
    certificate_findings,
    tls_version_findings,
)

# OpenSSL 3 offers TLS 1.0/1.1 (and SSLv3, where built) only at security level 0.
LEGACY_CIPHERS = "DEFAULT:@SECLEVEL=0"

# The codes of the endpoint flow, declared once (smtp.swaks emits some of them too).
PORT_CLOSED = Code(
    "PORT_CLOSED",
    "nothing accepts connections on the port (info when another port serves the same purpose)",
    Severity.FAIL,
    fix=Fix(
        "Make the server listen on the port, on the address the clients reach (not only "
        "127.0.0.1: Debian's sendmail.mc listens on localhost by default), and open the port in "
        "the firewall and any security group in front. SMTP uses 25 (MX), 587 (submission, "
        "STARTTLS) and 465 (submission, implicit TLS); IMAP 143/993; POP3 110/995. Check on "
        "the server with `ss -ltn 'sport = :<port>'`, and from outside with "
        "`nc -vz <host> <port>`.",
        {
            "exim": "daemon_smtp_ports = 25 : 465 : 587\ntls_on_connect_ports = 465",
            "postfix": "# master.cf\n"
            "smtp        inet  n  -  y  -  -  smtpd\n"
            "submission  inet  n  -  y  -  -  smtpd\n"
            "  -o smtpd_tls_security_level=encrypt\n"
            "  -o smtpd_sasl_auth_enable=yes\n"
            "submissions inet  n  -  y  -  -  smtpd\n"
            "  -o smtpd_tls_wrappermode=yes\n"
            "  -o smtpd_sasl_auth_enable=yes",
            "sendmail": "dnl no Addr=127.0.0.1: listen on every address; with\n"
            "dnl FEATURE(`no_default_msa') (the Debian default), or 587 is defined twice\n"
            "DAEMON_OPTIONS(`Family=inet, Name=MTA-v4, Port=25')dnl\n"
            "DAEMON_OPTIONS(`Family=inet, Name=MSP-v4, Port=587, M=Ea')dnl\n"
            "DAEMON_OPTIONS(`Family=inet, Name=TLSMTA, Port=465, M=s')dnl",
            "dovecot": "protocols = imap pop3 lmtp\n"
            "listen = *, ::\n"
            "service imap-login {\n"
            "  inet_listener imap {\n    port = 143\n  }\n"
            "  inet_listener imaps {\n    port = 993\n    ssl = yes\n  }\n"
            "}\n"
            "service pop3-login {\n"
            "  inet_listener pop3 {\n    port = 110\n  }\n"
            "  inet_listener pop3s {\n    port = 995\n    ssl = yes\n  }\n"
            "}",
            "perdition": "# one perdition process per protocol and port, e.g. IMAPS:\n"
            "perdition.imap4s -f /etc/perdition/perdition.conf --protocol IMAP4S "
            "--listen_port 993 --ssl_mode ssl_listen",
        },
    ),
)
STARTTLS_NOT_OFFERED = Code(
    "STARTTLS_NOT_OFFERED",
    "STARTTLS (or STLS) is missing from the capabilities",
    Severity.FAIL,
    fix=Fix(
        "Give the server a certificate and key and turn STARTTLS on; nothing on the way (a "
        "firewall doing SMTP inspection) may strip it from the capabilities. Check with "
        "`openssl s_client -connect <host>:<port> -starttls smtp` (imap, pop3 for 143, 110).",
        {
            "exim": "tls_advertise_hosts = *\n" + CERT_FILES["exim"],
            "postfix": "smtpd_tls_security_level = may\n" + CERT_FILES["postfix"],
            "sendmail": CERT_FILES["sendmail"]
            + "\ndefine(`confCACERT_PATH', `/etc/ssl/certs')dnl\n"
            "dnl and no S in the M= flags of DAEMON_OPTIONS (M=S turns STARTTLS off)",
            "dovecot": "ssl = yes\n" + CERT_FILES["dovecot"],
            "perdition": "ssl_mode tls_listen\n" + CERT_FILES["perdition"],
        },
    ),
)
STARTTLS_FAILED = Code(
    "STARTTLS_FAILED",
    "STARTTLS is advertised but the upgrade is refused or its handshake fails",
    Severity.FAIL,
    fix=Fix(
        "The server offers STARTTLS but cannot complete it: read its log at the time of the "
        "probe. The usual causes are a key file the server's user cannot read (Exim answers "
        "454), a certificate and key that do not belong together, or no protocol version or "
        "cipher in common. Compare the two public-key hashes (openssl lines): they must be "
        "equal. Then check with `openssl s_client -connect <host>:<port> -starttls smtp`.",
        {
            **CERT_FILES,
            "openssl": "openssl x509 -in <certificate.pem> -noout -pubkey | openssl sha256\n"
            "openssl pkey -in <key.pem> -pubout | openssl sha256",
        },
    ),
)
TLS_HANDSHAKE_FAILED = Code(
    "TLS_HANDSHAKE_FAILED",
    "on an implicit-TLS port, the TLS handshake fails",
    Severity.FAIL,
    fix=Fix(
        "Ports 465, 993 and 995 start with TLS before any protocol line: make the server "
        "speak TLS at once there (not plain text, not STARTTLS), with a readable certificate "
        "and key. Check with `openssl s_client -connect <host>:<port>`.",
        {
            "exim": "tls_on_connect_ports = 465\n" + CERT_FILES["exim"],
            "postfix": "# master.cf\n"
            "submissions inet  n  -  y  -  -  smtpd\n"
            "  -o smtpd_tls_wrappermode=yes\n"
            "  -o smtpd_sasl_auth_enable=yes",
            "sendmail": "DAEMON_OPTIONS(`Family=inet, Name=TLSMTA, Port=465, M=s')dnl\n"
            + CERT_FILES["sendmail"],
            "dovecot": "service imap-login {\n"
            "  inet_listener imaps {\n    port = 993\n    ssl = yes\n  }\n"
            "}\n" + CERT_FILES["dovecot"],
            "perdition": "# the IMAP4S and POP3S processes\n"
            "ssl_mode ssl_listen\n" + CERT_FILES["perdition"],
        },
    ),
)
AUTH_BEFORE_TLS = Code(
    "AUTH_BEFORE_TLS",
    "plaintext authentication is offered before TLS",
    Severity.FAIL,
    fix=Fix(
        "Offer password logins only once the connection is encrypted: before STARTTLS a "
        "password crosses the network in clear. Afterwards, before STARTTLS, SMTP must not "
        "offer AUTH, IMAP must advertise LOGINDISABLED, and POP3 must offer neither USER nor "
        "SASL PLAIN/LOGIN; check with the probe's reproduce line.",
        {
            "exim": "auth_advertise_hosts = ${if eq{$tls_in_cipher}{}{}{*}}",
            "postfix": "smtpd_tls_auth_only = yes",
            "sendmail": "define(`confAUTH_OPTIONS', `A,p')dnl",
            "dovecot": "disable_plaintext_auth = yes\n# Dovecot 2.4: auth_allow_cleartext = no",
            "perdition": "ssl_mode tls_listen_force\n"
            "# POP3: list USER only where logins in clear are accepted\n"
            "pop_capability TOP.UIDL",
        },
    ),
)
AUTH_FAILED = Code(
    "AUTH_FAILED",
    "a login with the configured credentials is refused",
    Severity.FAIL,
    fix=Fix(
        "Check the credentials first (--credentials): the user name is often the full address. "
        "If they are right, the server's authentication backend refused them: its log says "
        "why (unknown user, password scheme, a SASL daemon that is not running). Test the "
        "login on the server itself, then with swaks from outside (it asks for the password).",
        {
            "dovecot": "doveadm auth test <user>@<domain>",
            "postfix": "postconf smtpd_sasl_type smtpd_sasl_path smtpd_sasl_auth_enable",
            "shell": "swaks --server <host> --port 587 --tls --auth LOGIN "
            "--auth-user <user>@<domain> --quit-after AUTH",
        },
    ),
)
AUTH_OK = Code("AUTH_OK", "the configured credentials are accepted over TLS", Severity.INFO)
AUTH_NOT_TRIED = Code(
    "AUTH_NOT_TRIED",
    "the credentials were not sent: the certificate does not authenticate the server",
    Severity.INFO,
)


def endpoint_codes(
    *, implicit_tls: bool, logs_in: bool, capabilities: Code, extra: Iterable[Code] = ()
) -> Mapping[str, Code]:
    """The codes an EndpointProbe with these settings can emit, plus its own `extra`."""
    plaintext = () if implicit_tls else (STARTTLS_NOT_OFFERED, STARTTLS_FAILED, AUTH_BEFORE_TLS)
    handshake = (TLS_HANDSHAKE_FAILED,) if implicit_tls else ()
    login = (AUTH_OK, AUTH_FAILED, AUTH_NOT_TRIED) if logs_in else ()
    return declare(PORT_CLOSED, capabilities, plaintext, handshake, login, TLS_CODES, tuple(extra))


class StartTlsRefused(Exception):
    """The server answered the STARTTLS/STLS command with a refusal (text: its reply)."""


class PortClosed(Exception):
    """Nothing accepted the connection (state: "refused" or "filtered")."""

    def __init__(self, state: str, detail: str) -> None:
        super().__init__(detail)
        self.state = state


@dataclass
class Conversation:
    """What one main conversation saw."""

    before: Any = None  # the dialect's capabilities before TLS (None on implicit-TLS ports)
    after: Any = None  # ... after TLS
    greeting: str = ""
    session: TlsSession | None = None
    findings: list[Finding] = field(default_factory=list)


class Dialect:
    """Protocol specifics. Subclasses implement the conversation steps."""

    name: ClassVar[str]  # "smtp" | "imap" | "pop3" (also openssl's -starttls value)

    def open(self, conn: Connection) -> Any:
        """A protocol session on a fresh connection."""
        raise NotImplementedError

    def greet(self, session: Any) -> tuple[str, Any]:
        """Read the greeting and ask for capabilities: (greeting text, capabilities)."""
        raise NotImplementedError

    def starttls_offered(self, caps: Any) -> bool:
        raise NotImplementedError

    def request_tls(self, session: Any) -> None:
        """Ask for the upgrade; StartTlsRefused when the server says no."""
        raise NotImplementedError

    def capabilities_after_tls(self, session: Any) -> Any:
        raise NotImplementedError

    def plaintext_auth(self, caps: Any) -> str | None:
        """What plaintext authentication the pre-TLS capabilities offer, or None."""
        raise NotImplementedError

    def login(self, session: Any, caps: Any, creds: Credentials) -> tuple[bool, str]:
        """(accepted, the server's answer) for a login with `creds`, over TLS."""
        raise NotImplementedError

    def goodbye(self, session: Any) -> None:
        raise NotImplementedError

    def capabilities_evidence(self, before: Any, after: Any) -> dict[str, str]:
        raise NotImplementedError


class EndpointProbe(BaseProbe):
    """One kind of endpoint (role + port + TLS mode) of every host of the target."""

    role: ClassVar[str]  # "mx" | "submission" | "mailbox"
    port: ClassVar[int]
    implicit_tls: ClassVar[bool]
    dialect: ClassVar[Dialect]
    logs_in: ClassVar[bool] = False  # log in with the target's credentials when configured
    capabilities_code: ClassVar[str]
    # Ports of the same role on the same host: while one of them is open, this one being
    # closed is information, not a failure (e.g. 587 closed but 465 open).
    alternatives: ClassVar[tuple[int, ...]] = ()

    def run(self, target: Target, net: Net) -> Iterable[Finding]:
        creds = login_for(target) if self.logs_in else None
        endpoints = endpoints_for(target, net, self.role, self.port)
        limits = target.thresholds
        yield from check_all(endpoints, lambda ep, out: self.check(ep, out, net, creds, limits))

    # ----- one endpoint -----------------------------------------------------------------------
    def check(
        self,
        ep: Endpoint,
        out: list[Finding],
        net: Net,
        creds: Credentials | None,
        thresholds: Thresholds | None = None,
    ) -> None:
        verify = VerifyResult(verified=True, ca_source=net.ca_file or "system store")
        try:
            try:
                talk = self.converse(ep, net, verify=True, creds=creds)
            except ssl.SSLCertVerificationError as exc:
                verify = VerifyResult(
                    verified=False,
                    code=exc.verify_code,
                    message=exc.verify_message,
                    ca_source=net.ca_file or "system store",
                )
                talk = self.converse(ep, net, verify=False, creds=creds)
        except PortClosed as closed:
            out.append(self.port_closed(ep, net, closed))
            return
        except _HandshakeFailed as failed:
            out.append(self.handshake_failed(ep, net, failed.cause))
            return
        out.extend(talk.findings)
        if talk.session is None:
            return
        tls_reproduce = self.tls_reproduce(ep, net)
        out.extend(self.certificate(ep, talk.session, verify, tls_reproduce, thresholds))
        out.extend(self.session_findings(ep, net, talk.session))
        accepted = self.sweep(ep, net, talk.session.version)
        for finding in tls_version_findings(
            self,
            negotiated=talk.session.version,
            cipher=talk.session.cipher,
            accepted=accepted,
            subject=ep.subject,
            reproduce=tls_reproduce,
        ):
            if finding.code == "TLS_LEGACY_PROTOCOL":
                # The plain line would negotiate the best version: pin the legacy one.
                version = finding.evidence["version"]
                finding = replace(finding, reproduce=self.tls_reproduce(ep, net, version))
            out.append(finding)

    def converse(
        self, ep: Endpoint, net: Net, *, verify: bool, creds: Credentials | None
    ) -> Conversation:
        talk = Conversation()
        conn = self.connect(ep, net, verify=verify, version=None)
        try:
            session = self.dialect.open(conn)
            if self.implicit_tls:
                talk.session = conn.tls
                talk.greeting, talk.after = self.dialect.greet(session)
            else:
                talk.greeting, talk.before = self.dialect.greet(session)
                self.plain_findings(ep, net, session, talk)
                if not self.dialect.starttls_offered(talk.before):
                    talk.findings.append(self.starttls_not_offered(ep, net))
                    self.dialect.goodbye(session)
                    return talk
                try:
                    self.dialect.request_tls(session)
                    talk.session = conn.start_tls(server_name=ep.host, verify=verify)
                except ssl.SSLCertVerificationError:
                    raise
                except (StartTlsRefused, ssl.SSLError, ConnectionError, EOFError) as exc:
                    talk.findings.append(self.starttls_failed(ep, net, exc))
                    return talk
                talk.after = self.dialect.capabilities_after_tls(session)
            talk.findings.append(self.capabilities_finding(ep, net, talk))
            if creds is not None:
                withheld = (
                    "the certificate chain did not verify"
                    if not verify
                    else _name_refusal(ep.host, talk.session)
                )
                talk.findings.append(self.login(ep, net, session, talk, creds, withheld))
            self.dialect.goodbye(session)
        finally:
            conn.close()
        return talk

    def connect(self, ep: Endpoint, net: Net, *, verify: bool, version: str | None) -> Connection:
        """Open the endpoint; PortClosed when nothing accepts the connection."""
        try:
            return Connection.open(
                net,
                ep.ip,
                ep.port,
                label=ep.subject,
                implicit_tls=self.implicit_tls,
                server_name=ep.host,
                verify=verify,
                tls_version=version,
                shared=True,  # the same conversation whatever the domain: once per fleet run
            )
        except ConnectionRefusedError as exc:
            raise PortClosed("refused", f"connection refused: {exc}") from None
        except ConnectTimeout:
            raise PortClosed(
                "filtered", f"no answer within {net.timeouts.connect:g} s (filtered?)"
            ) from None
        except ssl.SSLCertVerificationError:
            raise
        except (ssl.SSLError, ConnectionResetError, EOFError) as exc:
            if not self.implicit_tls:
                raise
            raise _HandshakeFailed(exc) from None

    def session_findings(self, ep: Endpoint, net: Net, session: TlsSession) -> list[Finding]:
        """The probe's own findings on the main conversation's TLS session (smtp.mx: DANE)."""
        return []

    # ----- the version sweep ------------------------------------------------------------------
    def sweep(self, ep: Endpoint, net: Net, negotiated: str) -> dict[str, bool | None]:
        accepted: dict[str, bool | None] = {negotiated: True}
        todo = []
        for version in VERSIONS:
            if version == negotiated:
                continue
            if untestable_reason(version):
                accepted[version] = None
            else:
                todo.append(version)
        with ThreadPoolExecutor(max_workers=max(1, len(todo))) as pool:
            for version, result in zip(
                todo,
                pool.map(carry_probe(lambda v: self.try_version(ep, net, v)), todo),
                strict=True,
            ):
                accepted[version] = result
        return accepted

    def try_version(self, ep: Endpoint, net: Net, version: str) -> bool | None:
        """True: the server completed a handshake pinned to `version`; False: it refused;
        None: it could not be tried (local OpenSSL, or the server did not get that far)."""
        try:
            conn = self.connect(ep, net, verify=False, version=version)
        except LocalTlsUnsupported:
            return None
        except _HandshakeFailed:
            return False
        except (PortClosed, TimeoutError, OSError):
            return None
        try:
            if self.implicit_tls:
                return True
            session = self.dialect.open(conn)
            try:
                _, caps = self.dialect.greet(session)
                if not self.dialect.starttls_offered(caps):
                    return None
                self.dialect.request_tls(session)
            except Exception:
                return None
            try:
                conn.start_tls(server_name=ep.host, verify=False, version=version)
            except LocalTlsUnsupported:
                return None
            except (ssl.SSLError, ConnectionError, EOFError):
                return False
            except (TimeoutError, OSError):
                return None
            return True
        finally:
            conn.close()

    # ----- findings -------------------------------------------------------------------------
    def plain_findings(self, ep: Endpoint, net: Net, session: Any, talk: Conversation) -> None:
        """Findings from the plaintext phase of a STARTTLS port (before the upgrade)."""
        offered = self.dialect.plaintext_auth(talk.before)
        if offered:
            talk.findings.append(
                self.finding(
                    "AUTH_BEFORE_TLS",
                    Severity.FAIL,
                    f"{ep.subject} offers plaintext authentication before TLS: passwords can "
                    "cross the network in the clear",
                    evidence={"offered": offered},
                    reproduce=self.capabilities_reproduce(ep, net),
                    subject=ep.subject,
                )
            )

    def certificate(
        self,
        ep: Endpoint,
        session: TlsSession,
        verify: VerifyResult,
        reproduce: str,
        thresholds: Thresholds | None = None,
    ) -> list[Finding]:
        if not session.leaf_der:
            return [
                self.finding(
                    "CERT_UNTRUSTED",
                    Severity.FAIL,
                    f"{ep.subject} presented no certificate",
                    reproduce=reproduce,
                    subject=ep.subject,
                )
            ]
        try:
            info = parse_certificate(session.leaf_der)
        except CertificateParseError as exc:
            return [
                self.finding(
                    "CERT_UNTRUSTED",
                    Severity.FAIL,
                    f"{ep.subject} presented a certificate that cannot be parsed",
                    evidence={"error": str(exc)[:200]},
                    reproduce=reproduce,
                    subject=ep.subject,
                )
            ]
        return certificate_findings(
            self,
            info=info,
            verify=verify,
            hostname=ep.host,
            now=datetime.now(UTC),
            subject=ep.subject,
            reproduce=reproduce,
            thresholds=thresholds,
        )

    def capabilities_finding(self, ep: Endpoint, net: Net, talk: Conversation) -> Finding:
        evidence = {"greeting": talk.greeting[:200]}
        evidence.update(self.dialect.capabilities_evidence(talk.before, talk.after))
        # Reached only once TLS is up: on a STARTTLS port the upgrade was offered and worked.
        evidence["starttls"] = "implicit TLS" if self.implicit_tls else "offered"
        return self.finding(
            self.capabilities_code,
            Severity.INFO,
            f"{ep.subject} answers {self.dialect.name.upper()}",
            evidence=evidence,
            reproduce=self.plain_reproduce(ep, net),
            subject=ep.subject,
            # A banner often changes from connection to connection (sendmail's and Exim's
            # defaults carry the time, POP3 an APOP timestamp, large providers a session id):
            # shown, never drift. What it announces is compared in SMTP_BANNER_PTR_MISMATCH.
            volatile=["greeting"],
        )

    def login(
        self,
        ep: Endpoint,
        net: Net,
        session: Any,
        talk: Conversation,
        creds: Credentials,
        withheld: str | None,
    ) -> Finding:
        """AUTH_OK / AUTH_FAILED, or AUTH_NOT_TRIED when `withheld` says why the server is not
        authenticated (chain not verified, or the certificate is not for the host name)."""
        if withheld is not None:
            return self.finding(
                "AUTH_NOT_TRIED",
                Severity.INFO,
                f"{ep.subject}: the configured credentials were not sent, because {withheld}",
                evidence={"user": creds.user, "reason": withheld},
                reproduce=self.plain_reproduce(ep, net),
                subject=ep.subject,
            )
        ok, answer = self.dialect.login(session, talk.after, creds)
        if ok:
            return self.finding(
                "AUTH_OK",
                Severity.INFO,
                f"{ep.subject} accepts the configured credentials over TLS",
                evidence={"user": creds.user, "answer": answer[:200]},
                reproduce=self.plain_reproduce(ep, net, user=creds.user),
                subject=ep.subject,
            )
        return self.finding(
            "AUTH_FAILED",
            Severity.FAIL,
            f"{ep.subject} refuses the configured credentials",
            evidence={"user": creds.user, "answer": answer[:200]},
            reproduce=self.plain_reproduce(ep, net, user=creds.user),
            subject=ep.subject,
        )

    def starttls_not_offered(self, ep: Endpoint, net: Net) -> Finding:
        return self.finding(
            "STARTTLS_NOT_OFFERED",
            Severity.FAIL,
            f"{ep.subject} does not offer STARTTLS: everything crosses the network in the clear",
            reproduce=self.starttls_reproduce(ep, net),
            subject=ep.subject,
        )

    def starttls_failed(self, ep: Endpoint, net: Net, exc: BaseException) -> Finding:
        return self._tls_failure(
            "STARTTLS_FAILED",
            f"{ep.subject} offers STARTTLS but the upgrade fails",
            ep,
            exc,
            self.starttls_reproduce(ep, net),
        )

    def handshake_failed(self, ep: Endpoint, net: Net, exc: BaseException) -> Finding:
        return self._tls_failure(
            "TLS_HANDSHAKE_FAILED",
            f"{ep.subject} accepts connections but the TLS handshake fails",
            ep,
            exc,
            self.tls_reproduce(ep, net),
        )

    def _tls_failure(
        self, code: str, message: str, ep: Endpoint, exc: BaseException, reproduce: str
    ) -> Finding:
        error = f"{type(exc).__name__}: {str(exc) or type(exc).__name__}"
        return self.finding(
            code,
            Severity.FAIL,
            message,
            evidence={"error": error[:300]},
            reproduce=reproduce,
            subject=ep.subject,
        )

    def port_closed(self, ep: Endpoint, net: Net, closed: PortClosed) -> Finding:
        open_alternative = next((p for p in self.alternatives if _accepts(net, ep.ip, p)), None)
        required = open_alternative is None
        evidence = {"state": closed.state, "detail": str(closed)}
        if open_alternative is not None:
            evidence["open_alternative"] = str(open_alternative)
        return self.finding(
            "PORT_CLOSED",
            Severity.FAIL if required else Severity.INFO,
            f"{ep.subject} is closed ({closed.state})"
            + ("" if required else f"; port {open_alternative} serves the same purpose"),
            evidence=evidence,
            reproduce=self.plain_reproduce(ep, net),
            subject=ep.subject,
        )

    # ----- reproduce lines ----------------------------------------------------------------------
    def tls_reproduce(self, ep: Endpoint, net: Net, version: str | None = None) -> str:
        """The openssl line; with `version`, pinned to it (legacy versions also need
        `-cipher DEFAULT:@SECLEVEL=0`, or OpenSSL 3 refuses to offer them)."""
        line = openssl_line(
            ep.ip,
            ep.port,
            starttls=None if self.implicit_tls else self.dialect.name,
            servername=ep.host,
            ca_file=net.ca_file,
            tls_version=version if version in OPENSSL_VERSION_FLAGS else None,
        )
        if version in LEGACY_SEVERITY and version in OPENSSL_VERSION_FLAGS:
            flag = OPENSSL_VERSION_FLAGS[version]
            line = line.replace(f" {flag} -brief", f" {flag} -cipher {LEGACY_CIPHERS} -brief", 1)
        return line

    def starttls_reproduce(self, ep: Endpoint, net: Net) -> str:
        return self.tls_reproduce(ep, net)

    def capabilities_reproduce(self, ep: Endpoint, net: Net) -> str:
        """A command showing the capabilities offered before TLS."""
        return self.plain_reproduce(ep, net)

    def plain_reproduce(self, ep: Endpoint, net: Net, user: str | None = None) -> str:
        return self.tls_reproduce(ep, net)


def _name_refusal(host: str, session: TlsSession | None) -> str | None:
    """Why the certificate does not authenticate `host` (None when it does). OpenSSL checked
    the chain only; a password goes to a server only when its certificate also names it."""
    if session is None or not session.leaf_der:
        return "the server presented no certificate"
    try:
        info = parse_certificate(session.leaf_der)
    except CertificateParseError:
        return "the certificate cannot be parsed"
    if not hostname_matches(info, host):
        return f"the certificate is not valid for {host}"
    return None


class _HandshakeFailed(Exception):
    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.cause = cause


def _accepts(net: Net, ip: str, port: int) -> bool:
    try:
        conn = Connection.open(net, ip, port, shared=True)
    except OSError:
        return False
    conn.close()
    return True
