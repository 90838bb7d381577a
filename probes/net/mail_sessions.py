"""SMTP, IMAP and POP3 client conversations over a probes.net.stream.Connection.

Only what the transport probes need: greeting, capabilities, the TLS upgrade, a login with
configured credentials (only ever sent after TLS is on), a few SMTP commands and a polite
goodbye. Replies are parsed by the pure parsers in probes.parse; malformed ones raise their
ProtocolError subclasses. Secrets go out as secret lines and never reach the transcript.
"""

from __future__ import annotations

import base64
import contextlib
import itertools

from probes.errors import ProtocolError
from probes.net.stream import Connection
from probes.parse import imap_response, pop3_response, smtp_reply
from probes.parse.imap_response import Greeting, Tagged
from probes.parse.pop3_response import Status
from probes.parse.smtp_reply import Ehlo, Reply

EHLO_NAME = "mailprobe.invalid"


class SmtpSession:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def reply(self) -> Reply:
        return smtp_reply.parse_reply(self.conn.read_reply(smtp_reply.is_last_line))

    def command(self, line: str, *, secret: bool = False, shown: str | None = None) -> Reply:
        self.conn.send_line(line, secret=secret, shown=shown)
        return self.reply()

    def banner(self) -> Reply:
        return self.reply()

    def ehlo(self, name: str = EHLO_NAME) -> tuple[Reply, Ehlo | None]:
        """EHLO, falling back to HELO (then no capabilities: None)."""
        reply = self.command(f"EHLO {name}")
        if reply.code == 250:
            return reply, smtp_reply.parse_ehlo(reply)
        helo = self.command(f"HELO {name}")
        return helo, None

    def auth_plain(self, user: str, password: str) -> Reply:
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode("ascii")
        return self.command(f"AUTH PLAIN {token}", secret=True, shown="AUTH PLAIN ***")

    def quit(self) -> None:
        with contextlib.suppress(Exception):
            self.command("QUIT")


class ImapSession:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._tags = (f"mp{n}" for n in itertools.count(1))

    def greeting(self) -> Greeting:
        return imap_response.parse_greeting(self.conn.read_line())

    def _run(
        self, command: str, *, secret: bool = False, shown: str | None = None
    ) -> tuple[list[str], Tagged]:
        tag = next(self._tags)
        self.conn.send_line(f"{tag} {command}", secret=secret, shown=f"{tag} {shown}")
        lines = self.conn.read_reply(imap_response.is_tagged_done(tag))
        return lines, imap_response.parse_tagged(lines[-1], tag)

    def capabilities(self) -> frozenset[str]:
        tag = next(self._tags)
        self.conn.send_line(f"{tag} CAPABILITY")
        lines = self.conn.read_reply(imap_response.is_tagged_done(tag))
        return imap_response.parse_capabilities(lines, tag)

    def starttls(self) -> Tagged:
        return self._run("STARTTLS")[1]

    def login(self, user: str, password: str) -> Tagged:
        return self._run(
            f"LOGIN {_imap_quote(user)} {_imap_quote(password)}",
            secret=True,
            shown=f"LOGIN {_imap_quote(user)} ***",
        )[1]

    def logout(self) -> None:
        with contextlib.suppress(Exception):
            self._run("LOGOUT")


def _imap_quote(text: str) -> str:
    if any(c in text for c in "\r\n\0"):
        raise ProtocolError("an IMAP login value cannot contain CR, LF or NUL")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Pop3Session:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def status(self) -> Status:
        return pop3_response.parse_status(self.conn.read_line())

    def greeting(self) -> Status:
        return self.status()

    def command(self, line: str, *, secret: bool = False, shown: str | None = None) -> Status:
        self.conn.send_line(line, secret=secret, shown=shown)
        return self.status()

    def capa(self) -> dict[str, tuple[str, ...]] | None:
        """CAPA (RFC 2449), or None when the server does not know the command."""
        self.conn.send_line("CAPA")
        first = self.conn.read_line()
        if not pop3_response.parse_status(first).ok:
            return None
        rest = self.conn.read_reply(pop3_response.is_multiline_end)
        return dict(pop3_response.parse_capa([first, *rest]))

    def login(self, user: str, password: str) -> Status:
        status = self.command(f"USER {user}")
        if not status.ok:
            return status
        return self.command(f"PASS {password}", secret=True, shown="PASS ***")

    def quit(self) -> None:
        with contextlib.suppress(Exception):
            self.command("QUIT")
