"""Find, fetch and delete the round trip's test message over IMAP or POP3 (network door).

    got = fetch_by_token(net, ip=..., port=993, server_name="mailbox.example.test",
                         protocol="imap", tls="implicit", creds=creds, token=token,
                         deadline=time.monotonic() + 30)
    got.raw            # the message exactly as the mailbox holds it (None: not there in time)

The message is recognised by its `X-Mailprobe-Token` header (value equal to the token, also
when the header is folded), so concurrent round trips into one mailbox never take each other's
message; a message whose header does not match is never fetched twice and never deleted.

IMAP: TLS (implicit, or STARTTLS which must be offered), LOGIN (refused when LOGINDISABLED),
SELECT INBOX, `UID SEARCH HEADER X-Mailprobe-Token "<token>"` (later rounds only among
UIDs >= the UIDNEXT seen at SELECT; a search whose response announces new mail with EXISTS is
repeated at once, as Dovecot searches the view from before the command). When nothing matches
and the server offers IDLE, the session IDLEs until an `* N EXISTS` arrives (then DONE and
search again), and also searches again every IDLE_RECHECK_FIRST_S for IDLE_RECHECK_STEADY_S,
then doubling to IDLE_RECHECK_MAX_S (Dovecot delays IDLE notifications by 500 ms); without IDLE
it polls with
backoff (POLL_FIRST_S doubling to POLL_MAX_S). The hit is read with `UID FETCH uid
BODY.PEEK[]` (the literal read exactly, at most `max_bytes`), checked, and deleted with
`UID STORE +FLAGS.SILENT (\\Deleted)` and `UID EXPUNGE` (plain EXPUNGE without UIDPLUS);
then LOGOUT.

POP3 sees new mail only in a new session, so every poll is a session of its own: TLS
(implicit, or STLS which must be offered), USER/PASS, UIDL (LIST without it), `TOP n 0` of
each message not checked before, newest first (RETR when TOP is refused), RETR of the match
(dot-unstuffed, at most `max_bytes`), DELE, QUIT (the deletion counts only when QUIT says +OK).

Time: every command's response must be complete within `net.timeouts.io`; waiting for the
message ends at `deadline` (IDLE waits in slices, sleeps are cut short), after which one last
search runs and the call returns None. An IMAP session holds one of `net.slots` for the whole
wait. Credentials only ever go over TLS, and the password never appears in an exception.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from probes.credentials import Credentials
from probes.errors import ProbeConfigError, ProtocolError
from probes.net.mail_sessions import Pop3Session, _imap_quote
from probes.net.stream import Connection
from probes.parse import imap_response
from probes.parse.imap_response import Tagged
from probes.parse.message_header import TOKEN_HEADER
from probes.parse.pop3_response import Status
from probes.redact import Redactor, secret_forms

if TYPE_CHECKING:
    from probes.net import Net

PROTOCOLS = ("imap", "pop3")
TLS_MODES = ("implicit", "starttls")
POLL_FIRST_S = 0.05
POLL_MAX_S = 1.0
# While idling, search again after IDLE_RECHECK_FIRST_S doubling to IDLE_RECHECK_MAX_S: Dovecot
# holds every IDLE notification back for 500 ms (NOTIFY_DELAY_MSECS in its mailbox-watch.c), so
# a message landing early in the wait is seen sooner by a search; later re-checks only guard
# against a missed notification.
IDLE_RECHECK_FIRST_S = 0.025
IDLE_RECHECK_MAX_S = 2.0
# ... at a steady IDLE_RECHECK_FIRST_S for this long first: mail usually lands within it, and
# a re-check sees it within a few ms of landing (bench/roundtrip.py), where IDLE takes 500 ms.
IDLE_RECHECK_STEADY_S = 2.0
SMALL_LITERAL_CAP = 64 * 1024  # literals in responses other than the message fetch
MAX_UNTAGGED = 10_000  # untagged responses to one command
LISTING_CAP = 4 * 1024 * 1024  # UIDL / LIST bytes
HEADER_CAP = 1024 * 1024  # TOP n 0 bytes

_TOKEN = re.compile(r"[A-Za-z0-9._@+=-]{1,200}", re.ASCII)
_LITERAL = re.compile(r"\{([0-9]{1,12})\+?\}\Z", re.ASCII)
_EXISTS = re.compile(r"\*\s+[0-9]+\s+EXISTS\s*\Z", re.ASCII | re.IGNORECASE)
_SEARCH = re.compile(r"\*\s+SEARCH\b(.*)\Z", re.ASCII | re.IGNORECASE | re.DOTALL)
_UIDNEXT = re.compile(r"\[UIDNEXT\s+([0-9]{1,10})\]", re.ASCII | re.IGNORECASE)
_FETCH = re.compile(r"\*\s+[0-9]+\s+FETCH\s+\(", re.ASCII | re.IGNORECASE)
_FETCH_UID = re.compile(r"\bUID\s+([0-9]{1,10})\b", re.ASCII | re.IGNORECASE)
_BODY_LITERAL = re.compile(r"BODY\[\]\s*\{[0-9]+\+?\}\Z", re.ASCII | re.IGNORECASE)
_CAPABILITY = re.compile(r"\*\s+CAPABILITY\s+(.*)\Z", re.ASCII | re.IGNORECASE)
_FOLD = re.compile(rb"\r?\n(?=[ \t])")
_HEADER_END = re.compile(rb"\r?\n\r?\n")


class MailboxRejected(ProtocolError):
    """The mailbox server refused a step: `.stage` ("GREETING", "STARTTLS", "LOGIN", "SELECT",
    "SEARCH", "FETCH", "UIDL"...), `.status` ("NO", "BAD", "BYE", "-ERR", "LOGINDISABLED"),
    `.text` (the server's words, never the password)."""

    def __init__(self, stage: str, status: str, text: str, *, label: str = "") -> None:
        self.stage = stage
        self.status = status
        self.text = text
        where = f"{label}: " if label else ""
        super().__init__(f"{where}{stage} refused: {status} {text}".rstrip())


@dataclass(frozen=True)
class Retrieved:
    raw: bytes  # the message as the mailbox holds it
    found_after_s: float  # from the call to the search (or TOP) that found it
    method: str  # "idle" (IMAP waiting with IDLE), "poll" (IMAP polling), "pop3"
    deleted: bool  # the server confirmed the deletion


def fetch_by_token(
    net: Net,
    *,
    ip: str,
    port: int,
    server_name: str,
    protocol: str,
    tls: str,
    creds: Credentials,
    token: str,
    deadline: float,
    delete: bool = True,
    max_bytes: int = 10_000_000,
    verify: bool = True,
    idle: bool = True,
) -> Retrieved | None:
    """The message whose X-Mailprobe-Token is `token`, or None when `deadline`
    (time.monotonic()) passes without it (see the module docstring).

    Raises MailboxRejected (a refused step, e.g. a wrong password), ProtocolError (a malformed
    conversation, a missing STARTTLS/STLS, a message over `max_bytes`), ProbeConfigError
    (bad arguments), TimeoutError / OSError / ssl errors from the connection.
    `idle=False` polls even where the server offers IDLE (benchmarks compare the two)."""
    if protocol not in PROTOCOLS:
        raise ProbeConfigError(f"mailbox protocol {protocol!r}: expected imap or pop3")
    if tls not in TLS_MODES:
        raise ProbeConfigError(f"mailbox TLS {tls!r}: expected implicit or starttls")
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        raise ProbeConfigError(f"token {token!r}: expected 1-200 of A-Z a-z 0-9 . _ @ + = -")
    if max_bytes < 1:
        raise ProbeConfigError(f"max_bytes {max_bytes}: must be positive")
    job = _Job(net, ip, port, server_name, tls == "implicit", creds, token, deadline, verify)
    redact = Redactor(secret_forms(creds.user, creds.password))
    try:
        if protocol == "imap":
            return _ImapWaiter(job).run(delete=delete, max_bytes=max_bytes, use_idle=idle)
        return _pop3_run(job, delete=delete, max_bytes=max_bytes)
    except MailboxRejected as exc:
        if redact.finds(str(exc)):
            raise MailboxRejected(
                exc.stage, exc.status, redact(exc.text), label=f"{ip}:{port}"
            ) from None
        raise
    except Exception as exc:
        if redact.finds(str(exc)):
            raise ProtocolError(redact(f"{type(exc).__name__}: {exc}")) from None
        raise


def has_token(raw: bytes, token: str) -> bool:
    """The header block of `raw` has an X-Mailprobe-Token field whose (unfolded, trimmed)
    value is `token`. Pure."""
    end = _HEADER_END.search(raw)
    header = raw[: end.start()] if end else raw
    wanted = token.encode("ascii")
    for line in _FOLD.sub(b"", header).split(b"\n"):
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() == b"x-mailprobe-token" and value.strip() == wanted:
            return True
    return False


@dataclass
class _Job:
    net: Net
    ip: str
    port: int
    server_name: str
    implicit: bool
    creds: Credentials
    token: str
    deadline: float
    verify: bool

    def __post_init__(self) -> None:
        self.started = time.monotonic()
        self.label = f"{self.ip}:{self.port}"

    def open(self) -> Connection:
        return Connection.open(
            self.net,
            self.ip,
            self.port,
            label=self.label,
            implicit_tls=self.implicit,
            server_name=self.server_name,
            verify=self.verify,
        )


class _Backoff:
    """Waits of `first` seconds for the first `steady_s` seconds, then doubling to `most`."""

    def __init__(
        self, first: float = POLL_FIRST_S, most: float = POLL_MAX_S, steady_s: float = 0.0
    ) -> None:
        self.delay = first
        self.most = most
        self.steady_until = time.monotonic() + steady_s

    def next(self) -> float:
        delay = self.delay
        if time.monotonic() >= self.steady_until:
            self.delay = min(self.delay * 2, self.most)
        return delay

    def sleep(self, deadline: float) -> None:
        time.sleep(max(0.0, min(self.next(), deadline - time.monotonic())))


# ----- IMAP ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Untagged:
    segments: tuple[str, ...]  # the line, split where literals were
    literals: tuple[bytes, ...]

    @property
    def text(self) -> str:
        return " ".join(self.segments)


class _ImapConversation:
    """Tagged commands and their responses, literals included, over one Connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._n = 0

    def send(self, command: str, *, secret: bool = False, shown: str | None = None) -> str:
        self._n += 1
        tag = f"mp{self._n}"
        self.conn.send_line(f"{tag} {command}", secret=secret, shown=f"{tag} {shown}")
        return tag

    def run(
        self,
        command: str,
        *,
        cap: int = SMALL_LITERAL_CAP,
        secret: bool = False,
        shown: str | None = None,
    ) -> tuple[list[_Untagged], Tagged]:
        tag = self.send(command, secret=secret, shown=shown)
        return self.read_response(tag, cap=cap)

    def read_response(self, tag: str, *, cap: int) -> tuple[list[_Untagged], Tagged]:
        """Untagged responses up to the completion of `tag`, within the I/O timeout."""
        deadline = time.monotonic() + self.conn.io_timeout
        done = imap_response.is_tagged_done(tag)
        untagged: list[_Untagged] = []
        budget = [cap + 1024 * 1024]
        while True:
            unit = self.complete(self.conn.read_line_by(deadline), deadline, budget, cap)
            if not unit.literals and done(unit.segments[0]):
                return untagged, imap_response.parse_tagged(unit.segments[0], tag)
            if unit.segments[0].startswith("+"):
                raise ProtocolError(f"{self.conn.label}: unexpected continuation request")
            untagged.append(unit)
            if len(untagged) > MAX_UNTAGGED:
                raise ProtocolError(
                    f"{self.conn.label}: more than {MAX_UNTAGGED} untagged responses to {tag}"
                )

    def complete(self, line: str, deadline: float, budget: list[int], cap: int) -> _Untagged:
        """`line` and, while it ends in a literal `{N}`, the literal and the line after it."""
        segments = [line]
        literals: list[bytes] = []
        self._spend(budget, len(line))
        while match := _LITERAL.search(segments[-1]):
            size = int(match.group(1))
            literal = self.conn.read_exact(size, cap=min(cap, budget[0]), deadline=deadline)
            self._spend(budget, size)
            literals.append(literal)
            segments.append(self.conn.read_line_by(deadline))
            self._spend(budget, len(segments[-1]))
        return _Untagged(tuple(segments), tuple(literals))

    def _spend(self, budget: list[int], size: int) -> None:
        budget[0] -= size
        if budget[0] < 0:
            raise ProtocolError(f"{self.conn.label}: response too large; gave up reading it")


class _ImapWaiter:
    def __init__(self, job: _Job) -> None:
        self.job = job
        self.caps: frozenset[str] = frozenset()
        self.uidnext: int | None = None
        self.checked: set[int] = set()  # UIDs fetched whose header did not match

    def run(self, *, delete: bool, max_bytes: int, use_idle: bool) -> Retrieved | None:
        job = self.job
        with job.open() as conn:
            imap = _ImapConversation(conn)
            self._login(conn, imap)
            idle = use_idle and "IDLE" in self.caps
            method = "idle" if idle else "poll"
            backoff = (
                _Backoff(IDLE_RECHECK_FIRST_S, IDLE_RECHECK_MAX_S, IDLE_RECHECK_STEADY_S)
                if idle
                else _Backoff()
            )
            first = True
            while True:
                hits, grew = self._search(imap, full=first)
                if grew and not hits - self.checked:
                    # Dovecot searches the session's view as it was before the command and
                    # reports new mail (EXISTS) after it: search that new mail at once.
                    hits, _ = self._search(imap, full=first)
                hits -= self.checked
                found_at = time.monotonic()
                first = False
                for uid in sorted(hits):
                    raw = self._fetch(imap, uid, max_bytes)
                    if raw is None or not has_token(raw, job.token):
                        self.checked.add(uid)
                        continue
                    deleted = self._delete(imap, uid) if delete else False
                    _logout(imap)
                    return Retrieved(raw, found_at - job.started, method, deleted)
                if time.monotonic() >= job.deadline:
                    _logout(imap)
                    return None
                if idle:
                    until = min(job.deadline, time.monotonic() + backoff.next())
                    idle = self._idle(imap, until)
                else:
                    backoff.sleep(job.deadline)

    # ----- steps -------------------------------------------------------------------------------
    def _login(self, conn: Connection, imap: _ImapConversation) -> None:
        job = self.job
        greeting = imap_response.parse_greeting(conn.read_line())
        if greeting.status == "BYE":
            raise MailboxRejected("GREETING", "BYE", greeting.text, label=job.label)
        caps = greeting.capabilities
        if not job.implicit:
            if greeting.status == "PREAUTH":
                raise ProtocolError(f"{job.label}: PREAUTH before TLS; cannot start TLS")
            if caps is None:
                caps = self._capability(imap)
            if "STARTTLS" not in caps:
                raise ProtocolError(f"{job.label}: STARTTLS is not offered; not logging in")
            _, tagged = imap.run("STARTTLS")
            _ok(tagged, "STARTTLS", job.label)
            conn.start_tls(server_name=job.server_name, verify=job.verify)
            caps = None  # capabilities before TLS are not to be trusted
        if greeting.status != "PREAUTH":
            if conn.tls is None:  # pragma: no cover - guarded above
                raise ProtocolError(f"{job.label}: refusing to log in without TLS")
            if caps is None:
                caps = self._capability(imap)
            if not imap_response.login_allowed(caps):
                raise MailboxRejected("LOGIN", "LOGINDISABLED", "", label=job.label)
            user = _imap_quote(job.creds.user)
            untagged, tagged = imap.run(
                f"LOGIN {user} {_imap_quote(job.creds.password)}",
                secret=True,
                shown=f"LOGIN {user} ***",
            )
            _ok(tagged, "LOGIN", job.label)
            caps = _caps_in(untagged, tagged)
            if caps is None:
                caps = self._capability(imap)
        if caps is None:
            caps = self._capability(imap)
        self.caps = caps
        untagged, tagged = imap.run("SELECT INBOX")
        _ok(tagged, "SELECT", job.label)
        for unit in untagged:
            if match := _UIDNEXT.search(unit.text):
                self.uidnext = int(match.group(1))

    def _capability(self, imap: _ImapConversation) -> frozenset[str]:
        untagged, tagged = imap.run("CAPABILITY")
        _ok(tagged, "CAPABILITY", self.job.label)
        caps = _caps_in(untagged, tagged)
        if caps is None:
            raise ProtocolError(f"{self.job.label}: no CAPABILITY data in the response")
        return caps

    def _search(self, imap: _ImapConversation, *, full: bool) -> tuple[set[int], bool]:
        """(UIDs the server matched, whether the response announced new mail (EXISTS))."""
        criteria = f'HEADER {TOKEN_HEADER} "{self.job.token}"'
        if not full and self.uidnext is not None:
            criteria = f"UID {self.uidnext}:* {criteria}"
        untagged, tagged = imap.run(f"UID SEARCH {criteria}")
        _ok(tagged, "SEARCH", self.job.label)
        uids: set[int] = set()
        grew = False
        for unit in untagged:
            grew = grew or bool(_EXISTS.match(unit.text))
            if match := _SEARCH.match(unit.text):
                words = match.group(1).split()
                if not all(w.isdigit() and len(w) <= 10 for w in words):
                    raise ProtocolError(f"{self.job.label}: malformed SEARCH response")
                uids.update(int(w) for w in words)
        return uids, grew

    def _fetch(self, imap: _ImapConversation, uid: int, max_bytes: int) -> bytes | None:
        untagged, tagged = imap.run(f"UID FETCH {uid} BODY.PEEK[]", cap=max_bytes)
        _ok(tagged, "FETCH", self.job.label)
        for unit in untagged:
            if not unit.literals or not _FETCH.match(unit.segments[0]):
                continue
            found = _FETCH_UID.search(" ".join(unit.segments))
            if found is None or int(found.group(1)) != uid:
                continue
            for before, literal in zip(unit.segments, unit.literals, strict=False):
                if _BODY_LITERAL.search(before):
                    return literal
        return None  # gone meanwhile (expunged by someone else)

    def _delete(self, imap: _ImapConversation, uid: int) -> bool:
        _, tagged = imap.run(f"UID STORE {uid} +FLAGS.SILENT (\\Deleted)")
        if tagged.status != "OK":
            return False
        _, tagged = imap.run(f"UID EXPUNGE {uid}" if "UIDPLUS" in self.caps else "EXPUNGE")
        return tagged.status == "OK"

    def _idle(self, imap: _ImapConversation, until: float) -> bool:
        """IDLE until new mail or `until`; False when the server refused IDLE (the caller
        polls from then on)."""
        conn = imap.conn
        label = self.job.label
        tag = imap.send("IDLE")
        done = imap_response.is_tagged_done(tag)
        io_deadline = time.monotonic() + conn.io_timeout
        woke = False
        while True:  # up to the continuation request
            budget = [SMALL_LITERAL_CAP]
            unit = imap.complete(conn.read_line_by(io_deadline), io_deadline, budget, budget[0])
            first = unit.segments[0]
            if first.startswith("+"):
                break
            if not unit.literals and done(first):
                imap_response.parse_tagged(first, tag)  # NO/BAD: IDLE is not usable after all
                return False
            woke = woke or bool(_EXISTS.match(first))
        while not woke:
            remaining = until - time.monotonic()
            if remaining <= 0:
                break
            line = conn.poll_line(remaining)
            if line is None:
                break
            read_by = time.monotonic() + conn.io_timeout
            budget = [SMALL_LITERAL_CAP]
            unit = imap.complete(line, read_by, budget, budget[0])
            if unit.segments[0].upper().startswith("* BYE"):
                raise MailboxRejected("IDLE", "BYE", unit.segments[0][5:].strip(), label=label)
            woke = bool(_EXISTS.match(unit.segments[0]))
        conn.send_line("DONE")
        _, tagged = imap.read_response(tag, cap=SMALL_LITERAL_CAP)
        _ok(tagged, "IDLE", label)
        return True


def _caps_in(untagged: Sequence[_Untagged], tagged: Tagged) -> frozenset[str] | None:
    """Capabilities from untagged CAPABILITY lines and/or a [CAPABILITY ...] code."""
    found: set[str] | None = None
    for unit in untagged:
        if match := _CAPABILITY.match(unit.text):
            found = (found or set()) | {w.upper() for w in match.group(1).split()}
    if tagged.code and tagged.code.upper().startswith("CAPABILITY "):
        found = (found or set()) | {w.upper() for w in tagged.code.split()[1:]}
    return frozenset(found) if found is not None else None


def _ok(tagged: Tagged, stage: str, label: str) -> None:
    if tagged.status != "OK":
        text = f"[{tagged.code}] {tagged.text}" if tagged.code else tagged.text
        raise MailboxRejected(stage, tagged.status, text, label=label)


def _logout(imap: _ImapConversation) -> None:
    with contextlib.suppress(Exception):
        imap.run("LOGOUT")


# ----- POP3 ---------------------------------------------------------------------------------------
def _pop3_run(job: _Job, *, delete: bool, max_bytes: int) -> Retrieved | None:
    checked: set[str] = set()  # UIDLs whose headers did not match
    backoff = _Backoff()
    while True:
        found = _pop3_session(job, checked, delete=delete, max_bytes=max_bytes)
        if found is not None:
            return found
        if time.monotonic() >= job.deadline:
            return None
        backoff.sleep(job.deadline)


def _pop3_session(
    job: _Job, checked: set[str], *, delete: bool, max_bytes: int
) -> Retrieved | None:
    with job.open() as conn:
        pop = Pop3Session(conn)
        greeting = pop.greeting()
        if not greeting.ok:
            raise MailboxRejected("GREETING", "-ERR", greeting.text, label=job.label)
        if not job.implicit:
            capa = pop.capa()
            if capa is None or "STLS" not in capa:
                raise ProtocolError(f"{job.label}: STLS is not offered; not logging in")
            _pop_ok(pop.command("STLS"), "STLS", job.label)
            conn.start_tls(server_name=job.server_name, verify=job.verify)
        if conn.tls is None:  # pragma: no cover - both modes put TLS on
            raise ProtocolError(f"{job.label}: refusing to log in without TLS")
        _pop_ok(pop.login(job.creds.user, job.creds.password), "LOGIN", job.label)
        listing = _pop_listing(pop, job.label)
        top_ok = True
        for number, uid in reversed(listing):
            if uid is not None and uid in checked:
                continue
            raw: bytes | None = None
            if top_ok:
                status = pop.command(f"TOP {number} 0")
                if status.ok:
                    head = conn.read_dotted(cap=min(HEADER_CAP, max_bytes))
                else:
                    top_ok = False
            if not top_ok:
                raw = _retr(pop, number, max_bytes)
                if raw is None:
                    continue
                head = raw
            if not has_token(head, job.token):
                if uid is not None:
                    checked.add(uid)
                continue
            found_at = time.monotonic()
            if raw is None:
                raw = _retr(pop, number, max_bytes)
                if raw is None:
                    continue
            deleted = delete and pop.command(f"DELE {number}").ok
            bye = pop.command("QUIT")
            return Retrieved(raw, found_at - job.started, "pop3", deleted and bye.ok)
        pop.quit()
        return None


def _pop_listing(pop: Pop3Session, label: str) -> list[tuple[int, str | None]]:
    """(message number, UIDL or None) for every message, from UIDL or else LIST."""
    status = pop.command("UIDL")
    with_uid = status.ok
    if not with_uid:
        _pop_ok(pop.command("LIST"), "LIST", label)
    body = pop.conn.read_dotted(cap=LISTING_CAP)
    listing: list[tuple[int, str | None]] = []
    for line in body.decode("ascii", "replace").splitlines():
        words = line.split()
        if not words:
            continue
        if not words[0].isdigit() or len(words) < 2 or len(words[0]) > 10:
            raise ProtocolError(f"{label}: malformed {'UIDL' if with_uid else 'LIST'} line")
        listing.append((int(words[0]), words[1] if with_uid else None))
    return listing


def _retr(pop: Pop3Session, number: int, max_bytes: int) -> bytes | None:
    """RETR's message, or None when the server says -ERR (deleted meanwhile)."""
    if not pop.command(f"RETR {number}").ok:
        return None
    return pop.conn.read_dotted(cap=max_bytes)


def _pop_ok(status: Status, stage: str, label: str) -> None:
    if not status.ok:
        raise MailboxRejected(stage, "-ERR", status.text, label=label)
