"""Client-side helpers for lab tests: compose, DKIM-sign, send, and read back test messages."""

from __future__ import annotations

import email
import email.policy
import imaplib
import poplib
import smtplib
import ssl
import time
import uuid
from email.message import EmailMessage

import dkim

from probes.lab.lab import LabInfo


def tls_context(info: LabInfo) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=info.ca_file)


def compose(info: LabInfo, body: str = "mailprobe lab self-test\n") -> tuple[str, bytes]:
    token = uuid.uuid4().hex
    msg = EmailMessage()
    msg["From"] = info.user
    msg["To"] = info.user
    msg["Subject"] = f"mailprobe self-test {token}"
    msg["Message-ID"] = f"<{token}@{info.domain}>"
    msg["X-Mailprobe-Token"] = token
    msg.set_content(body)
    return token, msg.as_bytes(policy=email.policy.SMTP)


def sign(info: LabInfo, raw: bytes, selector: str = "mail") -> bytes:
    with open(info.dkimpy_keys[selector], "rb") as fh:
        key = fh.read()
    headers = [b"from", b"to", b"subject", b"message-id", b"x-mailprobe-token"]
    sig = dkim.sign(raw, selector.encode(), info.domain.encode(), key, include_headers=headers)
    return sig + raw


def send(
    info: LabInfo,
    raw: bytes,
    *,
    host: str | None = None,
    port: int = 25,
    source: str | None = None,
    helo: str | None = None,
    rcpt: str | None = None,
) -> None:
    """Send over SMTP with STARTTLS from a lab client address (default: the SPF-authorized one)."""
    source = source or info.client_ips["authorized"]
    with smtplib.SMTP(host or info.hosts["mx"], port, source_address=(source, 0), timeout=10) as s:
        s.ehlo(helo or f"client-a.{info.domain}")
        s.starttls(context=tls_context(info))
        s.ehlo(helo or f"client-a.{info.domain}")
        s.sendmail(info.user, [rcpt or info.user], raw)


def fetch_imaps(info: LabInfo, token: str, deadline_s: float = 10.0) -> email.message.Message:
    """Find the message carrying `token` over IMAPS, delete it, and return it."""
    end = time.monotonic() + deadline_s
    with imaplib.IMAP4_SSL(
        info.hosts["mailbox"], info.ports["imaps"], ssl_context=tls_context(info)
    ) as im:
        im.login(info.user, info.password)
        while True:
            im.select("INBOX")
            _, data = im.search(None, "HEADER", "X-Mailprobe-Token", token)
            ids = data[0].split()
            if ids:
                _, parts = im.fetch(ids[0], "(RFC822)")
                im.store(ids[0], "+FLAGS", "\\Deleted")
                im.expunge()
                return email.message_from_bytes(parts[0][1])
            if time.monotonic() > end:
                raise AssertionError(f"message {token} not delivered within {deadline_s} s")
            time.sleep(0.05)


def fetch_pop3_stls(info: LabInfo, token: str, deadline_s: float = 10.0) -> email.message.Message:
    """Find the message carrying `token` over POP3 after STLS, delete it, and return it."""
    end = time.monotonic() + deadline_s
    while True:
        pop = poplib.POP3(info.hosts["mailbox"], info.ports["pop3"], timeout=10)
        try:
            pop.stls(context=tls_context(info))
            pop.user(info.user)
            pop.pass_(info.password)
            count, _ = pop.stat()
            for n in range(1, count + 1):
                raw = b"\r\n".join(pop.retr(n)[1])
                if token.encode() in raw:
                    pop.dele(n)
                    return email.message_from_bytes(raw)
        finally:
            pop.quit()
        if time.monotonic() > end:
            raise AssertionError(f"message {token} not delivered within {deadline_s} s")
        time.sleep(0.05)


def auth_results(msg: email.message.Message, authserv_id: str) -> str:
    """The results the receiver `authserv_id` added, as one unfolded header value: Exim writes
    one header, milters (OpenDKIM, OpenDMARC, policyd-spf, pyspf-milter) one each."""
    found = []
    for value in msg.get_all("Authentication-Results", []):
        unfolded = " ".join(str(value).split())
        if unfolded.startswith(authserv_id + ";"):
            found.append(unfolded[len(authserv_id) + 1 :].strip())
    if not found:
        raise AssertionError(f"no Authentication-Results from {authserv_id}")
    return f"{authserv_id}; " + "; ".join(found)


def verdict(ar: str, method: str) -> str:
    """`pass`, `fail`, … for `method` in an unfolded AR header (lab tests only; the real
    parser is probes.parse.authres)."""
    for clause in ar.split(";")[1:]:
        clause = clause.strip()
        if clause.startswith(method + "="):
            return clause.split("=", 1)[1].split()[0]
    raise AssertionError(f"no {method}= result in {ar!r}")
