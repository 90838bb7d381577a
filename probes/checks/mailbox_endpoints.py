"""Mailbox endpoints: imap.starttls (143), imap.tls (993), pop3.starttls (110), pop3.tls (995).

On top of the shared transport checks (probes.probekit.transport): plaintext login offered
before TLS (IMAP without LOGINDISABLED, or AUTH=PLAIN/LOGIN; POP3 USER or SASL PLAIN/LOGIN)
and a login with configured credentials, only ever over TLS. Findings reproduce with
`openssl s_client [-starttls imap|pop3]`.
"""

from __future__ import annotations

from typing import ClassVar

from probes.codes import Code
from probes.credentials import Credentials
from probes.errors import ProtocolError
from probes.model import Severity
from probes.net import Net
from probes.net.mail_sessions import ImapSession, Pop3Session
from probes.net.stream import Connection
from probes.parse import imap_response, pop3_response
from probes.probekit.endpoints import Endpoint
from probes.probekit.transport import Dialect, EndpointProbe, StartTlsRefused, endpoint_codes

MAILBOX_PORTS = (143, 993, 110, 995)

IMAP_CAPABILITIES = Code(
    "IMAP_CAPABILITIES", "the IMAP greeting and capabilities before and after TLS", Severity.INFO
)
POP3_CAPABILITIES = Code(
    "POP3_CAPABILITIES", "the POP3 greeting and CAPA before and after TLS", Severity.INFO
)


class ImapDialect(Dialect):
    name = "imap"

    def open(self, conn: Connection) -> ImapSession:
        return ImapSession(conn)

    def greet(self, session: ImapSession) -> tuple[str, frozenset[str]]:
        greeting = session.greeting()
        if greeting.status == "BYE":
            raise ProtocolError(f"the server greets with BYE: {greeting.text[:80]}")
        # Ask even when the greeting carried capabilities: some servers send a short list there.
        return greeting.text, session.capabilities()

    def starttls_offered(self, caps: frozenset[str]) -> bool:
        return "STARTTLS" in caps

    def request_tls(self, session: ImapSession) -> None:
        tagged = session.starttls()
        if tagged.status != "OK":
            raise StartTlsRefused(f"{tagged.status} {tagged.text[:120]}")

    def capabilities_after_tls(self, session: ImapSession) -> frozenset[str]:
        return session.capabilities()

    def plaintext_auth(self, caps: frozenset[str]) -> str | None:
        offered = []
        if imap_response.login_allowed(caps):
            offered.append("LOGIN (no LOGINDISABLED)")
        offered += [
            f"AUTH={m}" for m in imap_response.auth_mechanisms(caps) if m in ("PLAIN", "LOGIN")
        ]
        return " ".join(offered) or None

    def login(
        self, session: ImapSession, caps: frozenset[str], creds: Credentials
    ) -> tuple[bool, str]:
        tagged = session.login(creds.user, creds.password)
        code = f"[{tagged.code}] " if tagged.code else ""
        return tagged.status == "OK", f"{tagged.status} {code}{tagged.text}"

    def goodbye(self, session: ImapSession) -> None:
        session.logout()

    def capabilities_evidence(self, before, after) -> dict[str, str]:
        evidence = {
            label: " ".join(sorted(caps))[:300]
            for label, caps in (("before_tls", before), ("after_tls", after))
            if caps is not None
        }
        seen = after if after is not None else before
        if seen is not None:
            evidence["auth"] = " ".join(imap_response.auth_mechanisms(seen)) or "none"
        return evidence


class Pop3Dialect(Dialect):
    name = "pop3"

    def open(self, conn: Connection) -> Pop3Session:
        return Pop3Session(conn)

    def greet(self, session: Pop3Session) -> tuple[str, dict[str, tuple[str, ...]] | None]:
        greeting = session.greeting()
        if not greeting.ok:
            raise ProtocolError(f"the server greets with -ERR: {greeting.text[:80]}")
        return greeting.text, session.capa()

    def starttls_offered(self, caps) -> bool:
        return caps is not None and "STLS" in caps

    def request_tls(self, session: Pop3Session) -> None:
        status = session.command("STLS")
        if not status.ok:
            raise StartTlsRefused(f"-ERR {status.text[:120]}")

    def capabilities_after_tls(self, session: Pop3Session):
        return session.capa()

    def plaintext_auth(self, caps) -> str | None:
        if caps is None or not pop3_response.plaintext_login_offered(caps):
            return None
        offered = ["USER"] if "USER" in caps else []
        offered += [f"SASL {m}" for m in caps.get("SASL", ()) if m.upper() in ("PLAIN", "LOGIN")]
        return " ".join(offered)

    def login(self, session: Pop3Session, caps, creds: Credentials) -> tuple[bool, str]:
        status = session.login(creds.user, creds.password)
        return status.ok, ("+OK " if status.ok else "-ERR ") + status.text

    def goodbye(self, session: Pop3Session) -> None:
        session.quit()

    def capabilities_evidence(self, before, after) -> dict[str, str]:
        evidence = {}
        for label, caps in (("before_tls", before), ("after_tls", after)):
            if caps is not None:
                evidence[label] = " ".join(
                    " ".join((key, *params)) for key, params in sorted(caps.items())
                )[:300]
        seen = after if after is not None else before
        if seen is not None:
            sasl = sorted({m.upper() for m in seen.get("SASL", ())})
            evidence["auth"] = " ".join(sasl + (["USER"] if "USER" in seen else [])) or "none"
        return evidence


class _Mailbox(EndpointProbe):
    role = "mailbox"
    logs_in = True
    # What a plaintext session shows before TLS (openssl s_client only shows it after).
    plain_commands: ClassVar[str] = ""

    def capabilities_reproduce(self, ep: Endpoint, net: Net) -> str:
        return f"printf '{self.plain_commands}' | nc -q 5 {ep.ip} {ep.port}"


class ImapStartTls(_Mailbox):
    id = "imap.starttls"
    description = (
        "IMAP on port 143: STARTTLS, certificate, TLS versions, LOGINDISABLED before TLS, "
        "login with configured credentials"
    )
    port = 143
    implicit_tls = False
    plain_commands = "a1 CAPABILITY\\r\\na2 LOGOUT\\r\\n"
    dialect = ImapDialect()
    capabilities_code = IMAP_CAPABILITIES.code
    codes = endpoint_codes(implicit_tls=False, logs_in=True, capabilities=IMAP_CAPABILITIES)
    alternatives = (993, 110, 995)


class ImapTls(_Mailbox):
    id = "imap.tls"
    description = "IMAP over implicit TLS on port 993: handshake, certificate, TLS versions, login"
    port = 993
    implicit_tls = True
    dialect = ImapDialect()
    capabilities_code = IMAP_CAPABILITIES.code
    codes = endpoint_codes(implicit_tls=True, logs_in=True, capabilities=IMAP_CAPABILITIES)
    alternatives = (143, 995, 110)


class Pop3StartTls(_Mailbox):
    id = "pop3.starttls"
    description = (
        "POP3 on port 110: STLS, certificate, TLS versions, USER/PASS before TLS, login with "
        "configured credentials"
    )
    port = 110
    implicit_tls = False
    plain_commands = "CAPA\\r\\nQUIT\\r\\n"
    dialect = Pop3Dialect()
    capabilities_code = POP3_CAPABILITIES.code
    codes = endpoint_codes(implicit_tls=False, logs_in=True, capabilities=POP3_CAPABILITIES)
    alternatives = (995, 993, 143)


class Pop3Tls(_Mailbox):
    id = "pop3.tls"
    description = "POP3 over implicit TLS on port 995: handshake, certificate, TLS versions, login"
    port = 995
    implicit_tls = True
    dialect = Pop3Dialect()
    capabilities_code = POP3_CAPABILITIES.code
    codes = endpoint_codes(implicit_tls=True, logs_in=True, capabilities=POP3_CAPABILITIES)
    alternatives = (993, 143, 110)
