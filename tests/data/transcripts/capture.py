"""Capture real SMTP/IMAP/POP3 transcripts from a running mailprobe lab (Exim + Dovecot).

How the files under lab-default/ and lab-permissive/ were made:

    ./mailprobe lab up --name h1 --format json > /tmp/h1.json
    .venv/bin/python tests/data/transcripts/capture.py /tmp/h1.json \
        tests/data/transcripts/lab-default
    ./mailprobe lab down --name h1

    ./mailprobe lab up --name h2 --spec tests/data/transcripts/permissive.yaml --format json \
        > /tmp/h2.json
    .venv/bin/python tests/data/transcripts/capture.py --spec permissive.yaml /tmp/h2.json \
        tests/data/transcripts/lab-permissive
    ./mailprobe lab down --name h2

(`./mailprobe lab status --name h1 --format json` prints the same JSON for a running lab.)
The files under handwritten/ are not captured: they are written by hand from public servers'
well-known answers, and say so in their header.

One file per exchange: `S: ` server lines, `C: ` client lines, `# ` comments (TLS handshakes
and the header). Connects only to the lab's 127.x addresses. Passwords are never the lab's:
failed logins use "wrong". Lab IPs and the lab block are rewritten to 127.0.2.x so the files do
not change with the block a lab happened to get.
"""

from __future__ import annotations

import argparse
import base64
import json
import socket
import ssl
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from probes.parse.imap_response import is_tagged_done
from probes.parse.pop3_response import is_multiline_end
from probes.parse.smtp_reply import is_last_line

WRONG = "wrong"
TIMEOUT = 30.0  # Dovecot delays failed logins, longer with each from one IP


class Session:
    def __init__(self, info: dict, host: str, port: int, name: str, *, implicit_tls: bool):
        if not host.startswith("127."):
            raise SystemExit(f"refusing to connect outside 127/8: {host}")
        self.info = info
        self.server_name = name
        self.port = port
        self.lines: list[str] = []
        source = info["client_ips"]["unauthorized"]
        self.sock = socket.create_connection((host, port), TIMEOUT, source_address=(source, 0))
        self.file = self.sock.makefile("rb")
        if implicit_tls:
            self.start_tls()

    def context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.info["ca_file"])
        return context

    def start_tls(self) -> None:
        self.file.close()
        self.sock = self.context().wrap_socket(self.sock, server_hostname=self.server_name)
        self.file = self.sock.makefile("rb")
        self.lines.append(f"# TLS established: {self.sock.version()} {self.sock.cipher()[0]}")

    def send(self, line: str, shown: str | None = None) -> None:
        self.sock.sendall(line.encode() + b"\r\n")
        self.lines.append("C: " + (line if shown is None else shown))

    def read_until(self, done: Callable[[str], bool]) -> list[str]:
        got = []
        while True:
            raw = self.file.readline(10000)
            if not raw:
                self.lines.append("# connection closed by server")
                return got
            line = raw.rstrip(b"\r\n").decode("utf-8", "surrogateescape")
            self.lines.append("S: " + line)
            got.append(line)
            if done(line):
                return got

    def smtp(self, command: str | None = None) -> list[str]:
        if command is not None:
            self.send(command)
        return self.read_until(is_last_line)

    def imap(self, tag: str, command: str) -> list[str]:
        self.send(f"{tag} {command}")
        return self.read_until(is_tagged_done(tag))

    def pop3(self, command: str | None, multiline: bool = False) -> list[str]:
        if command is not None:
            self.send(command)
        first = self.read_until(lambda _line: True)
        if multiline and first and first[0].startswith("+OK"):
            return first + self.read_until(is_multiline_end)
        return first

    def close(self) -> None:
        self.sock.close()


def smtp_sessions(info: dict, out: Callable[[str, str, Session], None]) -> None:
    mx, name = info["hosts"]["mx"], f"mx.{info['domain']}"
    user = info["user"]
    helo = "EHLO client.example.net"

    s = Session(info, mx, 25, name, implicit_tls=False)
    s.smtp(), s.smtp(helo), s.smtp("QUIT")
    out("smtp-25-ehlo", "SMTP port 25: banner and EHLO before TLS", s)

    s = Session(info, mx, 25, name, implicit_tls=False)
    s.smtp(), s.smtp(helo), s.smtp("STARTTLS")
    s.start_tls()
    s.smtp(helo), s.smtp("QUIT")
    out("smtp-25-starttls", "SMTP port 25: EHLO before and after STARTTLS", s)

    s = Session(info, mx, 587, name, implicit_tls=False)
    s.smtp(), s.smtp(helo)
    if s.smtp("AUTH PLAIN")[-1:] and s.lines[-1].startswith("S: 334"):
        s.smtp("*")  # cancel: the server asked for the initial response
    s.smtp("STARTTLS")
    s.start_tls()
    s.smtp(helo)
    token = base64.b64encode(f"\0{user}\0{WRONG}".encode()).decode()
    s.smtp(f"AUTH PLAIN {token}")
    s.smtp("QUIT")
    out(
        "smtp-587-starttls-auth",
        f"SMTP port 587: EHLO, AUTH before TLS, STARTTLS, EHLO, AUTH PLAIN with password '{WRONG}'",
        s,
    )

    s = Session(info, mx, 465, name, implicit_tls=True)
    s.smtp(), s.smtp(helo), s.smtp("QUIT")
    out("smtp-465-ehlo", "SMTP port 465 (implicit TLS): banner and EHLO", s)

    s = Session(info, mx, 25, name, implicit_tls=False)
    s.smtp(), s.smtp(helo)
    s.smtp(f"VRFY {user.split('@')[0]}")
    s.smtp(f"VRFY {user}")
    s.smtp(f"EXPN postmaster@{info['domain']}")
    s.smtp("QUIT")
    out("smtp-25-vrfy-expn", "SMTP port 25: VRFY and EXPN", s)

    s = Session(info, mx, 25, name, implicit_tls=False)
    s.smtp(), s.smtp(helo)
    s.smtp("MAIL FROM:<probe@client.example.net>")
    s.smtp("RCPT TO:<someone@elsewhere.example.org>")
    s.smtp(f"RCPT TO:<{user}>")
    s.smtp("RSET"), s.smtp("QUIT")
    out("smtp-25-relay", "SMTP port 25: RCPT to a foreign domain (relay) and to the lab user", s)


def imap_sessions(info: dict, out: Callable[[str, str, Session], None]) -> None:
    host, name, user = info["hosts"]["mailbox"], f"mailbox.{info['domain']}", info["user"]

    s = Session(info, host, 143, name, implicit_tls=False)
    s.read_until(lambda _line: True)
    s.imap("a1", "CAPABILITY")
    s.imap("a2", f'LOGIN "{user}" "{WRONG}"')
    s.imap("a3", "STARTTLS")
    s.start_tls()
    s.imap("a4", "CAPABILITY")
    s.imap("a5", f'LOGIN "{user}" "{WRONG}"')
    s.imap("a6", "LOGOUT")
    out(
        "imap-143-starttls",
        f"IMAP port 143: greeting, CAPABILITY, LOGIN ('{WRONG}') before and after STARTTLS",
        s,
    )

    s = Session(info, host, 993, name, implicit_tls=True)
    s.read_until(lambda _line: True)
    s.imap("a1", "CAPABILITY")
    s.imap("a2", f'LOGIN "{user}" "{WRONG}"')
    s.imap("a3", "LOGOUT")
    out("imap-993", f"IMAP port 993 (implicit TLS): greeting, CAPABILITY, LOGIN '{WRONG}'", s)


def pop3_sessions(info: dict, out: Callable[[str, str, Session], None]) -> None:
    host, name, user = info["hosts"]["mailbox"], f"mailbox.{info['domain']}", info["user"]

    s = Session(info, host, 110, name, implicit_tls=False)
    s.pop3(None)
    s.pop3("CAPA", multiline=True)
    s.pop3(f"USER {user}")
    s.pop3("STLS")
    s.start_tls()
    s.pop3("CAPA", multiline=True)
    s.pop3(f"USER {user}")
    s.pop3(f"PASS {WRONG}")
    s.pop3("QUIT")
    out(
        "pop3-110-stls",
        f"POP3 port 110: greeting, CAPA, USER before and after STLS, PASS '{WRONG}'",
        s,
    )

    s = Session(info, host, 995, name, implicit_tls=True)
    s.pop3(None)
    s.pop3("CAPA", multiline=True)
    s.pop3(f"USER {user}")
    s.pop3(f"PASS {WRONG}")
    s.pop3("QUIT")
    out("pop3-995", f"POP3 port 995 (implicit TLS): greeting, CAPA, USER/PASS '{WRONG}'", s)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("info", help="the JSON `mailprobe lab up --format json` printed")
    parser.add_argument("outdir")
    parser.add_argument("--spec", default="default", help="lab spec description for headers")
    args = parser.parse_args(argv)
    info = json.loads(Path(args.info).read_text())
    block = info["hosts"]["mx"].rsplit(".", 1)[0] + "."
    password = info["password"]
    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)

    def out(name: str, what: str, session: Session) -> None:
        session.close()
        header = [
            f"# {what}.",
            f"# Captured from the mailprobe lab (spec: {args.spec}) by capture.py; lab block",
            "# rewritten to 127.0.2.x. Lines: 'S: ' server, 'C: ' client, '# ' comment.",
        ]
        text = "\n".join(header + session.lines) + "\n"
        text = text.replace(block, "127.0.2.")
        if password in text:
            raise SystemExit(f"{name}: the lab password leaked into the transcript")
        (outdir / f"{name}.txt").write_text(text, encoding="utf-8", errors="surrogateescape")
        print(f"wrote {outdir / name}.txt", file=sys.stderr)

    smtp_sessions(info, out)
    imap_sessions(info, out)
    pop3_sessions(info, out)


if __name__ == "__main__":
    main()
