"""swaks transcripts and exit codes, as stages of one SMTP transaction. Pure: no I/O.

swaks (https://jetmore.org/john/code/swaks/, Debian package `swaks`, checked against
20201014.0) prints every line with a 4-character hint: `=== ` its own information, `*** ` its
own errors (on stderr), ` -> `/` ~> ` what it sent (in the clear / inside TLS), `<-  `/`<~  `
what it received, `<** `/`<~* ` a reply it did not expect (an error), `**> `/`*~> ` a send
error, `  > `/`<   ` dump output. `parse` turns such a transcript into `Stage`s:

    CONNECT, BANNER, EHLO, STARTTLS, TLS, EHLO_TLS (the EHLO again inside TLS), AUTH,
    MAIL, RCPT, DATA, QUIT (and XCLIENT, OTHER)

each with the server's last reply code and text. `parse` never raises for any text; what it
does not recognise is left out (`Transcript.unparsed` counts it).

Exit codes, from swaks' EXIT CODES section and checked in its source (`exit(N)` and
`do_smtp_quit(1, N)` calls in `sendmail()`); `EXIT_CODES` holds them:

    0  no error                      21 error reading the banner
    1  error in command line options 22 error in the (first) HELO/EHLO
    2  error connecting              23 error in MAIL
    3  unknown connection type       24 no RCPT accepted
    4  pipe: read/write error        25 error reply to DATA
    5  pipe: child died              26 message not accepted after the final dot
    6  connection closed unexpectedly (when no more specific code applies)
    10 missing prerequisite (a Perl module, e.g. Net::SSLeay for TLS)
    27 error reply to QUIT           28 error in AUTH (not advertised, no usable type, refused)
    29 error in TLS (STARTTLS not advertised, refused, or the handshake failed)
    30 PRDR required, not advertised 32 error in EHLO after TLS
    33 error in XCLIENT              34 error in EHLO after XCLIENT
    35 error in PROXY options        36 error sending the PROXY banner

Secrets: `redact_auth` replaces what the client sent during AUTH (the base64 credentials of
AUTH PLAIN/LOGIN) with `[redacted]`; apply it to every transcript that is kept.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

STAGES = (
    "CONNECT",
    "BANNER",
    "EHLO",
    "STARTTLS",
    "TLS",
    "EHLO_TLS",
    "XCLIENT",
    "AUTH",
    "MAIL",
    "RCPT",
    "DATA",
    "QUIT",
    "OTHER",
)
REDACTED = "[redacted]"
MAX_TEXT = 300  # characters kept of one reply's text or one note
MAX_EHLO_LINES = 200  # EHLO reply lines looked at for STARTTLS and AUTH

# The 4-character hints swaks puts before each line (ptrans() in swaks).
INFO = "=== "
ERROR = "*** "
SEND = (" -> ", " ~> ", "**> ", "*~> ")
SEND_ERROR = ("**> ", "*~> ")
RECEIVE = ("<-  ", "<~  ", "<** ", "<~* ")
RECEIVE_ERROR = ("<** ", "<~* ")
DUMP = ("  > ", "<   ", "??? ")

_REPLY = re.compile(r"([0-9]{3})([ -]?)(.*)", re.DOTALL)
_CIPHER = re.compile(r"TLS started with cipher (\S+)")
_PEER_DN = re.compile(r'TLS peer DN="(.*)"')
# A command is a verb alone or followed by a space; base64 (AUTH continuations) has no spaces.
_VERB = re.compile(r"([A-Za-z]+)(?: |$)")

_COMMAND_STAGE = {
    "EHLO": "EHLO",
    "HELO": "EHLO",
    "LHLO": "EHLO",
    "STARTTLS": "STARTTLS",
    "AUTH": "AUTH",
    "MAIL": "MAIL",
    "RCPT": "RCPT",
    "DATA": "DATA",
    "QUIT": "QUIT",
    "XCLIENT": "XCLIENT",
}


@dataclass(frozen=True)
class ExitMeaning:
    """What one swaks exit code says. `stage` is the transaction stage that failed (None for
    success and for codes meaning the transaction never ran: options, prerequisites)."""

    code: int
    stage: str | None
    meaning: str


def _exit_table() -> Mapping[int, ExitMeaning]:
    rows = [
        (0, None, "no errors occurred"),
        (1, None, "error parsing command line options"),
        (2, "CONNECT", "error connecting to the remote server"),
        (3, None, "unknown connection type"),
        (4, "CONNECT", "pipe transport: error writing to or reading from the child process"),
        (5, "CONNECT", "pipe transport: the child process died unexpectedly"),
        (6, None, "connection closed unexpectedly"),
        (10, None, "error in prerequisites (a needed Perl module is not available)"),
        (21, "BANNER", "error reading the initial banner from the server"),
        (22, "EHLO", "error in the HELO/EHLO transaction"),
        (23, "MAIL", "error in the MAIL transaction"),
        (24, "RCPT", "no RCPTs accepted"),
        (25, "DATA", "the server returned an error to DATA"),
        (26, "DATA", "the server did not accept the mail after the data"),
        (27, "QUIT", "the server returned an error to QUIT"),
        (28, "AUTH", "error in the AUTH transaction"),
        (29, "TLS", "error in the TLS transaction"),
        (30, "MAIL", "PRDR requested/required but not advertised"),
        (32, "EHLO_TLS", "error in EHLO following TLS negotiation"),
        (33, "XCLIENT", "error in the XCLIENT transaction"),
        (34, "EHLO", "error in EHLO following XCLIENT"),
        (35, None, "error in PROXY option processing"),
        (36, "CONNECT", "error sending the PROXY banner"),
    ]
    return MappingProxyType({code: ExitMeaning(code, stage, text) for code, stage, text in rows})


EXIT_CODES: Mapping[int, ExitMeaning] = _exit_table()


def exit_meaning(code: int) -> ExitMeaning:
    """The meaning of swaks' exit code `code` (a negative code: killed by that signal)."""
    known = EXIT_CODES.get(code)
    if known is not None:
        return known
    if code < 0:
        return ExitMeaning(code, None, f"killed by signal {-code}")
    return ExitMeaning(code, None, "unknown exit code")


@dataclass(frozen=True)
class Stage:
    """One step of the transaction as the transcript shows it.

    `code`/`text`: the server's last reply in this stage (None/"" when there was none);
    `command`: the verb sent (`EHLO`, `AUTH PLAIN`; never credentials); `note`: swaks' own
    words about the stage (a timeout, "not advertised", a TLS library error).
    """

    name: str
    ok: bool
    code: int | None = None
    text: str = ""
    command: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class Transcript:
    stages: tuple[Stage, ...] = ()
    errors: tuple[str, ...] = ()  # swaks' own error lines (`*** `), in order
    tls_version: str | None = None  # "TLSv1.3"
    tls_cipher: str | None = None  # "TLS_AES_256_GCM_SHA384"
    tls_bits: str | None = None  # "256"
    tls_peer_dn: str | None = None
    starttls_advertised: bool | None = None  # from the first EHLO reply (None: no EHLO reply)
    auth_mechanisms: tuple[str, ...] | None = None  # from the last EHLO reply before AUTH
    unparsed: int = 0  # lines without a known hint

    def stage(self, name: str) -> Stage | None:
        """The last stage called `name`, or None."""
        for stage in reversed(self.stages):
            if stage.name == name:
                return stage
        return None

    @property
    def passed(self) -> tuple[str, ...]:
        """Names of the stages that went well, in order, each once (QUIT left out)."""
        names: list[str] = []
        for stage in self.stages:
            if stage.ok and stage.name not in names and stage.name != "QUIT":
                names.append(stage.name)
        return tuple(names)

    @property
    def first_failure(self) -> Stage | None:
        """The first stage that went wrong, QUIT left out (swaks sends QUIT after errors)."""
        for stage in self.stages:
            if not stage.ok and stage.name != "QUIT":
                return stage
        return None


def shorten(text: str, limit: int = MAX_TEXT) -> str:
    """`text` on one line, at most `limit` characters (an ellipsis marks a cut)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class _Open:
    """The stage being read."""

    name: str
    command: str | None = None
    code: int | None = None
    lines: list[str] = field(default_factory=list)
    kept: int = 0  # characters in `lines` (only the first MAX_TEXT are ever shown)
    reply_done: bool = True
    flagged: bool = False  # swaks marked a reply of this stage as an error
    failed: bool = False  # swaks said the stage failed (no reply needed)
    note: str | None = None
    replies: int = 0

    def add_note(self, note: str) -> None:
        self.note = shorten(f"{self.note}; {note}" if self.note else note)

    def close(self) -> Stage:
        ok = (
            not self.failed
            and not self.flagged
            and self.code is not None
            and 200 <= self.code < 400
        )
        return Stage(
            name=self.name,
            ok=ok,
            code=self.code,
            text=shorten(" ".join(self.lines)),
            command=self.command,
            note=self.note,
        )


class _Parser:
    def __init__(self) -> None:
        self.stages: list[Stage] = []
        self.errors: list[str] = []
        self.current: _Open | None = None
        self.after_starttls = False  # TLS started by STARTTLS (not on connect)
        self.fields: dict[str, str] = {}
        self.starttls_advertised: bool | None = None
        self.auth_mechanisms: tuple[str, ...] | None = None
        self.ehlo_caps: list[str] = []
        self.unparsed = 0
        self.in_auth = False

    # --- stages ---------------------------------------------------------------------------

    def finish(self) -> None:
        if self.current is not None:
            stage = self.current.close()
            if stage.name in ("EHLO", "EHLO_TLS") and stage.ok:
                self._capabilities(stage.name)
            self.stages.append(stage)
            self.current = None

    def start(self, name: str, command: str | None = None) -> _Open:
        self.finish()
        self.current = _Open(name=name, command=command)
        self.ehlo_caps = []
        return self.current

    def add_stage(self, stage: Stage) -> None:
        self.finish()
        self.stages.append(stage)

    def _capabilities(self, name: str) -> None:
        keywords = [line.split()[0].upper() for line in self.ehlo_caps[1:] if line.split()]
        if name == "EHLO" and self.starttls_advertised is None:
            self.starttls_advertised = "STARTTLS" in keywords
        for line in self.ehlo_caps[1:]:
            parts = line.replace("=", " ", 1).split()
            if parts and parts[0].upper() == "AUTH":
                self.auth_mechanisms = tuple(p.upper() for p in parts[1:])
                break
        else:
            self.auth_mechanisms = ()

    # --- lines ----------------------------------------------------------------------------

    def line(self, line: str) -> None:
        hint, msg = line[:4], line[4:]
        if hint == INFO:
            self.info(msg)
        elif hint == ERROR:
            self.error(msg)
        elif hint in SEND:
            self.send(msg, hint in SEND_ERROR, tls=hint in (" ~> ", "*~> "))
        elif hint in RECEIVE:
            self.receive(msg, hint in RECEIVE_ERROR)
        elif hint in DUMP:
            pass
        else:
            self.unparsed += 1

    def info(self, msg: str) -> None:
        if msg.startswith("Connected to "):
            self.add_stage(Stage("CONNECT", ok=True))
            self.start("BANNER")
        elif m := _CIPHER.match(msg):
            parts = m[1].split(":")
            self.fields["tls_version"] = parts[0]
            if len(parts) >= 3:
                self.fields["tls_bits"] = parts[-1]
                self.fields["tls_cipher"] = ":".join(parts[1:-1])
            starttls = self.current is not None and self.current.name == "STARTTLS"
            self.add_stage(Stage("TLS", ok=True, note=shorten(m[1])))
            self.after_starttls = starttls
        elif m := _PEER_DN.match(msg):
            self.fields["tls_peer_dn"] = shorten(m[1])

    def error(self, msg: str) -> None:
        text = msg.strip()
        self.errors.append(shorten(text))
        cur = self.current
        if text.startswith("Error connecting"):
            self.start("CONNECT").failed = True
        elif cur is not None and cur.name == "CONNECT" and cur.failed:
            cur.add_note(text)
        elif text.startswith("TLS startup failed"):
            self.add_stage(Stage("TLS", ok=False, note=shorten(_inner(text))))
        elif text == "Host did not advertise STARTTLS":
            self.add_stage(Stage("STARTTLS", ok=False, note="STARTTLS not advertised"))
        elif text == "Host did not advertise authentication":
            self.add_stage(Stage("AUTH", ok=False, note="AUTH not advertised"))
        elif text.startswith(("Auth not attempted", "Auth advertised but not supported")):
            self.add_stage(Stage("AUTH", ok=False, note=shorten(text)))
        elif text.startswith("No authentication type succeeded") and cur and cur.name == "AUTH":
            cur.failed = True
            cur.add_note(text)
        elif "closed connection unexpectedly" in text:
            if cur is None:
                self.start("OTHER")
                cur = self.current
            assert cur is not None
            cur.failed = True
            cur.add_note("connection closed unexpectedly")

    def send(self, msg: str, is_error: bool, *, tls: bool) -> None:
        verb = _verb(msg)
        name = _COMMAND_STAGE.get(verb)
        cur = self.current
        if name is None and cur is not None and cur.name in ("AUTH", "DATA"):
            return  # AUTH continuation (credentials) or message data: not a new stage
        if name is None:
            name = "OTHER"
        if name == "EHLO" and tls and self.after_starttls:
            name = "EHLO_TLS"
        command: str | None
        if name == "AUTH":
            mech = msg.split()[1].upper() if len(msg.split()) > 1 else ""
            command = f"AUTH {mech}".strip()
        else:
            command = verb or None
        if cur is not None and cur.name == name and name in ("EHLO", "EHLO_TLS") and verb == "HELO":
            cur.command = "HELO"  # HELO after a refused EHLO: the same stage, second try
            return
        opened = self.start(name, command)
        if is_error:
            opened.failed = True

    def receive(self, msg: str, is_error: bool) -> None:
        cur = self.current
        if cur is None:
            cur = self.start("OTHER")
        m = _REPLY.fullmatch(msg)
        if m is None:
            # swaks' own words in the receive column, e.g. "Timeout (2 secs) waiting for ..."
            cur.add_note(msg.strip())
            if is_error:
                cur.flagged = True
                cur.code = None
            return
        if cur.reply_done:
            cur.lines = []
            cur.kept = 0
            cur.replies += 1
            if cur.name in ("EHLO", "EHLO_TLS"):
                self.ehlo_caps = []
        code, sep, text = int(m[1]), m[2], m[3]
        cur.code = code
        if cur.kept <= MAX_TEXT:
            cur.lines.append(text.strip()[: MAX_TEXT + 1])
            cur.kept += len(cur.lines[-1]) + 1
        if cur.name in ("EHLO", "EHLO_TLS") and len(self.ehlo_caps) < MAX_EHLO_LINES:
            self.ehlo_caps.append(text.strip()[:MAX_TEXT])
        cur.reply_done = sep != "-"
        if is_error:
            cur.flagged = True
        elif cur.reply_done and cur.name == "AUTH" and code < 400:
            cur.flagged = False  # a later step of AUTH LOGIN succeeded


def _verb(msg: str) -> str:
    """The SMTP verb a client line starts with (upper case), or "" when it is no command."""
    m = _VERB.match(msg)
    return m[1].upper() if m else ""


def _inner(text: str) -> str:
    """`TLS startup failed (X)` -> `X`."""
    start, end = text.find("("), text.rfind(")")
    return text[start + 1 : end] if 0 <= start < end else text


def parse(text: str) -> Transcript:
    """The stages of the swaks transcript `text` (stdout and stderr, interleaved)."""
    p = _Parser()
    for raw in text.splitlines():
        p.line(raw.rstrip("\r"))
    p.finish()
    return Transcript(
        stages=tuple(p.stages),
        errors=tuple(p.errors),
        tls_version=p.fields.get("tls_version"),
        tls_cipher=p.fields.get("tls_cipher"),
        tls_bits=p.fields.get("tls_bits"),
        tls_peer_dn=p.fields.get("tls_peer_dn"),
        starttls_advertised=p.starttls_advertised,
        auth_mechanisms=p.auth_mechanisms,
        unparsed=p.unparsed,
    )


@dataclass(frozen=True)
class Failure:
    """Where a swaks run failed: the stage (from the exit code, refined by the transcript)
    and the transcript's record of it (None when the transcript does not show it)."""

    exit: ExitMeaning
    stage: str
    record: Stage | None


def failure(transcript: Transcript, exit_code: int) -> Failure | None:
    """The failure exit code `exit_code` reports, or None for success (0).

    29 (TLS) names STARTTLS when the server refused or did not advertise it, TLS when the
    handshake failed; 6 (connection closed) and unknown codes take the transcript's first
    failed stage."""
    meaning = exit_meaning(exit_code)
    if exit_code == 0:
        return None
    first = transcript.first_failure
    if exit_code == 29:
        for stage in transcript.stages:
            if stage.name in ("STARTTLS", "TLS") and not stage.ok:
                return Failure(meaning, stage.name, stage)
        return Failure(meaning, "TLS", None)
    if meaning.stage is None:
        if first is not None:
            return Failure(meaning, first.name, first)
        return Failure(meaning, "OTHER", None)
    for stage in transcript.stages:
        if stage.name == meaning.stage and not stage.ok:
            return Failure(meaning, stage.name, stage)
    return Failure(meaning, meaning.stage, transcript.stage(meaning.stage))


def redact_auth(text: str) -> str:
    """`text` with everything the client sent during AUTH replaced by `[redacted]`.

    Keeps `AUTH <MECHANISM>`; the initial response on the AUTH line and every client line up
    to the next SMTP command (the AUTH LOGIN username/password lines) are replaced."""
    out: list[str] = []
    in_auth = False
    for line in text.split("\n"):
        hint, msg = line[:4], line[4:]
        if hint in SEND:
            verb = _verb(msg)
            if verb == "AUTH":
                in_auth = True
                parts = msg.split(None, 2)
                if len(parts) > 2:
                    line = f"{hint}{parts[0]} {parts[1]} {REDACTED}"
            elif in_auth and verb not in _COMMAND_STAGE:
                line = f"{hint}{REDACTED}"
            else:
                in_auth = False
        out.append(line)
    return "\n".join(out)
