"""Submit one message over SMTP (part of the network door): the sending half of the round trip.

    send_message(net, ip=..., port=587, server_name="mx.example.test", mode="starttls",
                 helo="client.example.test", mail_from="a@example.test",
                 rcpt_to=["b@example.test"], raw=signed_bytes, creds=creds)

Banner, EHLO, STARTTLS (mode "starttls"; never a silent downgrade when it is not offered) or
TLS from the start (mode "implicit"), EHLO again, AUTH PLAIN (only over TLS, only with
credentials), MAIL FROM (with SIZE= when offered, BODY=8BITMIME for 8-bit content when
offered), RCPT TO, DATA, QUIT.

The message goes out byte for byte except for what SMTP itself requires: line ends become CRLF
(a bare LF or CR would be rewritten by the receiver anyway) and lines starting with "." are
dot-stuffed. A DKIM signature made over CRLF-normalised bytes therefore survives.

Any 4xx/5xx reply raises SmtpRejected with the stage ("BANNER", "EHLO", "STARTTLS", "AUTH",
"MAIL", "RCPT", "DATA"), the code and the server's text. The password (and its AUTH PLAIN
encoding) never appears in an exception: replies are scrubbed of both.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from probes.credentials import Credentials
from probes.errors import ProbeConfigError, ProtocolError
from probes.net.mail_sessions import SmtpSession
from probes.net.stream import Connection
from probes.parse.smtp_reply import Ehlo, Reply
from probes.redact import Redactor, secret_forms

if TYPE_CHECKING:
    from probes.net import Net

MODES = ("starttls", "implicit", "plain")

_LINE_END = re.compile(rb"\r\n|\r|\n")
_QUEUE_ID = (
    re.compile(r"\bid=([A-Za-z0-9._-]+)"),  # Exim: "OK id=1tXyZa-000123-AB"
    re.compile(r"\bqueued as ([A-Za-z0-9._-]+)", re.IGNORECASE),  # Postfix
    # sendmail & co: "2.0.0 5A1B2C3D Message accepted for delivery"
    re.compile(r"^(?:[245]\.\d{1,3}\.\d{1,3}\s+)?([A-Za-z0-9._-]+)\s+Message accepted", re.I),
)
_ADDRESS_BAD = re.compile(r"[\x00-\x20\x7f<>]")


class SmtpRejected(ProtocolError):
    """The server refused a step with a 4xx/5xx reply."""

    def __init__(self, stage: str, code: int, text: str, *, label: str = "") -> None:
        self.stage = stage
        self.code = code
        self.text = text
        where = f"{label}: " if label else ""
        super().__init__(f"{where}{stage} refused: {code} {text}")


@dataclass(frozen=True)
class SendResult:
    host: str
    port: int
    queue_id: str | None  # from the 250 after DATA, when it names one
    reply: str  # the text of that 250
    tls_version: str | None  # None: the message went over a plain connection
    client_ip: str  # our local address as the server saw it


def send_message(
    net: Net,
    *,
    ip: str,
    port: int,
    server_name: str,
    mode: str,
    helo: str,
    mail_from: str,
    rcpt_to: Sequence[str],
    raw: bytes,
    creds: Credentials | None,
    verify: bool = True,
) -> SendResult:
    """Submit `raw` to `ip:port` (see the module docstring). Raises SmtpRejected for a refused
    step, ProtocolError for a malformed conversation or a missing STARTTLS, ProbeConfigError
    for unusable arguments (credentials without TLS, bad addresses), TimeoutError / OSError /
    ssl errors from the connection."""
    if mode not in MODES:
        raise ProbeConfigError(f"SMTP mode {mode!r}: expected one of {', '.join(MODES)}")
    if creds is not None and mode == "plain":
        raise ProbeConfigError("credentials are only ever sent over TLS (mode 'plain' given)")
    if not rcpt_to:
        raise ProbeConfigError("no recipient given")
    for address in (mail_from, *rcpt_to):
        _check_address(address)
    if _ADDRESS_BAD.search(helo) or not helo:
        raise ProbeConfigError(f"HELO name {helo!r} is empty or contains spaces or controls")
    data = dot_stuff(raw)
    redact = Redactor(secret_forms(creds.user, creds.password) if creds else ())
    try:
        return _send(
            net, ip, port, server_name, mode, helo, mail_from, rcpt_to, data, creds, verify
        )
    except SmtpRejected as exc:
        if redact.finds(str(exc)):
            raise SmtpRejected(
                exc.stage, exc.code, redact(exc.text), label=f"{ip}:{port}"
            ) from None
        raise
    except Exception as exc:
        if redact.finds(str(exc)):
            raise ProtocolError(redact(f"{type(exc).__name__}: {exc}")) from None
        raise


def _send(
    net: Net,
    ip: str,
    port: int,
    server_name: str,
    mode: str,
    helo: str,
    mail_from: str,
    rcpt_to: Sequence[str],
    data: bytes,
    creds: Credentials | None,
    verify: bool,
) -> SendResult:
    label = f"{ip}:{port}"
    with Connection.open(
        net,
        ip,
        port,
        label=label,
        implicit_tls=mode == "implicit",
        server_name=server_name,
        verify=verify,
    ) as conn:
        smtp = SmtpSession(conn)
        try:
            _expect(smtp.banner(), 220, "BANNER", label)
            ehlo = _ehlo(smtp, helo, label)
            if mode == "starttls":
                if not ehlo.has("STARTTLS"):
                    raise ProtocolError(f"{label}: STARTTLS is not offered; not sending in clear")
                _expect(smtp.command("STARTTLS"), 220, "STARTTLS", label)
                conn.start_tls(server_name=server_name, verify=verify)
                ehlo = _ehlo(smtp, helo, label)
            if creds is not None:
                reply = smtp.auth_plain(creds.user, creds.password)
                _expect(reply, 235, "AUTH", label)
            params = ""
            if ehlo.has("SIZE"):
                params += f" SIZE={len(data)}"
            if ehlo.has("8BITMIME") and not data.isascii():
                params += " BODY=8BITMIME"
            _expect(smtp.command(f"MAIL FROM:<{mail_from}>{params}"), 250, "MAIL", label)
            for rcpt in rcpt_to:
                _expect(smtp.command(f"RCPT TO:<{rcpt}>"), (250, 251), "RCPT", label)
            _expect(smtp.command("DATA"), 354, "DATA", label)
            conn.send_bytes(data + b".\r\n", shown=f"<message, {len(data)} bytes> .")
            final = smtp.reply()
            _expect(final, 250, "DATA", label)
            result = SendResult(
                host=ip,
                port=port,
                queue_id=queue_id(final.text),
                reply=final.text,
                tls_version=conn.tls.version if conn.tls else None,
                client_ip=conn.local_address,
            )
        except SmtpRejected:
            smtp.quit()  # a refused transaction still ends politely
            raise
        smtp.quit()
        return result


def _ehlo(smtp: SmtpSession, helo: str, label: str) -> Ehlo:
    reply, ehlo = smtp.ehlo(helo)
    _expect(reply, 250, "EHLO", label)
    if ehlo is None:
        # HELO worked but EHLO did not: no extensions (no STARTTLS, AUTH, SIZE).
        return Ehlo(name="", greeting="", keywords={})
    return ehlo


def _expect(reply: Reply, wanted: int | tuple[int, ...], stage: str, label: str) -> None:
    codes = wanted if isinstance(wanted, tuple) else (wanted,)
    if reply.code in codes:
        return
    if reply.code >= 400:
        raise SmtpRejected(stage, reply.code, reply.text, label=label)
    raise ProtocolError(f"{label}: {stage} answered {reply.code}, expected {codes[0]}")


def _check_address(address: str) -> None:
    if _ADDRESS_BAD.search(address):
        raise ProbeConfigError(f"address {address!r} contains spaces, controls or angle brackets")


def dot_stuff(raw: bytes) -> bytes:
    """`raw` as DATA content: every line end CRLF, a final CRLF, lines starting with "."
    doubled (RFC 5321 §4.5.2). The terminating ".\\r\\n" is not included."""
    text = _LINE_END.sub(b"\r\n", raw)
    if not text.endswith(b"\r\n"):
        text += b"\r\n"
    if text.startswith(b"."):
        text = b"." + text
    return text.replace(b"\r\n.", b"\r\n..")


def queue_id(text: str) -> str | None:
    """The queue id a 250 reply to DATA names (Exim, Postfix, sendmail forms), else None."""
    for pattern in _QUEUE_ID:
        match = pattern.search(text)
        if match:
            return match.group(1)
    return None
