"""smtp.swaks: whole SMTP transactions run by swaks, the SMTP tool admins use by hand.

When swaks is installed (Debian package `swaks`; without it the probe is SKIPPED):
- every submission host (Target.submission_hosts; when none are configured, the MX hosts) on
  587: STARTTLS required (`--tls`), then with credentials `--auth PLAIN` and
  `--quit-after AUTH`, without `--quit-after EHLO` (the EHLO inside TLS);
- every MX host (Target.mx_hosts, else the domain's MX records, else the domain itself) on
  25: STARTTLS when advertised (`--tls-optional-strict`: a failed upgrade is an error),
  `MAIL FROM:<mailprobe@DOMAIN>`, `RCPT TO:<postmaster@DOMAIN>`, `--quit-after RCPT`: never
  DATA, nothing is delivered.
The chain is verified (`--tls-verify`, with `--tls-ca-path` = the target's CA file when
set); swaks does not check the host name (the TLS probes do). Hosts are resolved through the
run's resolver and swaks is pointed at the address (`--server IP`, `--tls-sni NAME`). The
password reaches swaks through its environment, never its command line (probes.net.swaks).

Codes (subject `host:port`; reproduce: the swaks line, password as "$MAILPROBE_PASSWORD"):
- SWAKS_TRANSACTION_OK [info] swaks got through every stage it was asked for; evidence:
  stages passed, swaks version, TLS version/cipher/peer DN.
- SWAKS_STAGE_FAILED [fail] swaks stopped at a stage; evidence: stage, the server's reply
  code and text (shortened, AUTH lines redacted), swaks' exit code and its meaning, the end of
  the transcript (`transcript_tail`, volatile: raw output with banners and queue ids).
  An endpoint another probe of the run found not answering (probes.net.endpoints) is not
  given to swaks again: SWAKS_STAGE_FAILED at stage CONNECT, evidence `remembered` (what was
  met, "remembered from an earlier attempt in this run"); one found silent (no greeting) ends
  the probe ERROR/TIMEOUT at once, as swaks running out of time there would.
- PORT_CLOSED [fail on 25 and on configured submission hosts; info on 587 of an MX host that
  was only tried because no submission host is configured] the connection was refused.
- STARTTLS_NOT_OFFERED [fail] the EHLO reply does not advertise STARTTLS.
- STARTTLS_FAILED [fail] STARTTLS is advertised but refused (e.g. `454 TLS currently
  unavailable`) or the handshake fails for another reason than the certificate (a chain
  that does not verify is SWAKS_STAGE_FAILED at stage TLS: the TLS probes name the reason).
- AUTH_FAILED [fail] with configured credentials, AUTH is refused or not offered after TLS.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from probes.codes import Code, Fix, declare
from probes.credentials import Credentials, login_for, login_source
from probes.errors import ProbeConfigError, ProbeSkipped
from probes.model import Finding, Severity, Target
from probes.net import Net
from probes.net.endpoints import FIRST, REMEMBERED, ConnectTimeout, Silent
from probes.net.swaks import (
    SwaksRun,
    SwaksTimedOut,
    find_swaks,
    password_usable,
    run_swaks,
    swaks_version,
)
from probes.parse import swaks as transcript_parser
from probes.parse.swaks import Failure, Transcript
from probes.probe import BaseProbe
from probes.probekit.endpoints import Endpoint, check_all, endpoints_for, is_ip
from probes.probekit.reproduce import swaks_line
from probes.probekit.transport import (
    AUTH_FAILED,
    PORT_CLOSED,
    STARTTLS_FAILED,
    STARTTLS_NOT_OFFERED,
)

EHLO_NAME = "mailprobe.invalid"
SUBMISSION_PORT = 587
MX_PORT = 25
TRANSCRIPT_TAIL_LINES = 20
TRANSCRIPT_TAIL_CHARS = 2000
# swaks exit codes meaning the test itself could not run (options, transport, prerequisites)
_NOT_RUN = {1: "its options were refused", 3: "unknown connection type"}
_PREREQUISITE = 10
_NO_CONNECTION = 2  # error connecting to the server
_NO_BANNER = 21  # error reading the initial banner


@dataclass(frozen=True)
class Job:
    """One swaks run: an endpoint and what to do there."""

    endpoint: Endpoint
    kind: str  # "submission" | "mx"
    required: bool  # PORT_CLOSED is a failure (else info)
    args: tuple[str, ...]
    reproduce: str
    quit_after: str


class SmtpSwaks(BaseProbe):
    id = "smtp.swaks"
    description = (
        "swaks transactions: 587 STARTTLS (+ AUTH with credentials), 25 STARTTLS up to RCPT"
    )
    codes = declare(
        Code(
            "SWAKS_TRANSACTION_OK",
            "swaks got through every stage it was asked for",
            Severity.INFO,
        ),
        Code(
            "SWAKS_STAGE_FAILED",
            "swaks stopped at a stage of the transaction",
            Severity.FAIL,
            fix=Fix(
                "The evidence names the stage and the server's reply. CONNECT or BANNER: the "
                "server is down, firewalled or rate-limiting; TLS: see the certificate and "
                "TLS findings of the same port; MAIL or RCPT: a policy refused the sender or "
                "recipient (the reply text says which rule), e.g. an unknown recipient or a "
                "sender address the server does not accept. Fix what the reply names, then run "
                "the same transaction by hand with the finding's reproduce line.",
                {
                    "shell": "swaks --server <host> --port 25 --tls --from <sender>@<domain> "
                    "--to <user>@<domain> --quit-after RCPT",
                },
            ),
        ),
        PORT_CLOSED,
        STARTTLS_NOT_OFFERED,
        STARTTLS_FAILED,
        AUTH_FAILED,
    )

    def run(self, target: Target, net: Net) -> Iterable[Finding]:
        binary = find_swaks()
        if binary is None:
            raise ProbeSkipped("swaks is not installed (Debian/Ubuntu package `swaks`)")
        creds = login_for(target)
        if creds is not None and not password_usable(creds.password):
            raise ProbeSkipped(
                f"swaks cannot take the password of {login_source(target)} as an option "
                "value (it begins with '-', is '<>' or holds a line break)"
            )
        version = swaks_version(binary) or "unknown"
        jobs = {job.endpoint: job for job in self.jobs(target, net, creds)}
        budget = target.timeouts.connect + target.timeouts.io

        def check(ep: Endpoint, out: list[Finding]) -> None:
            job = jobs[ep]
            first: list[bool] = []

            def admit(free: bool) -> object:
                # An endpoint another probe found silent or not answering (or the run's
                # deadline): swaks is not started to wait for it again. A refusal costs
                # nothing: swaks runs and reports its PORT_CLOSED.
                verdict = net.endpoints.admit(ep.ip, ep.port, ep.subject, claim=free)
                if isinstance(verdict, ConnectionRefusedError):
                    return None
                if verdict is FIRST:
                    first.append(True)
                return verdict

            try:
                release = net.slots.acquire(ep.ip, timeout=target.timeouts.probe, admit=admit)
            except (ConnectTimeout, Silent) as known:
                # What swaks itself would have shown: an unanswered connect is its CONNECT
                # stage failing (a finding); a server that never greets ran swaks out of time
                # (ERROR/TIMEOUT, as every other probe reports it: could not test).
                if REMEMBERED not in str(known) or isinstance(known, Silent):
                    raise
                out.append(self.remembered(job, known))
                return
            settled = False
            try:
                run = run_swaks(
                    binary,
                    job.args,
                    timeout=budget,
                    what=ep.subject,
                    password=creds.password if creds and job.kind == "submission" else None,
                    user=creds.user if creds else None,
                    memory=net.endpoints,
                )
                self.remember_dead(net, target, ep, run)
                settled = True
            except SwaksTimedOut as timed_out:
                if first and _silent_banner(timed_out.output):
                    remember_silent(net, target, ep)
                raise
            finally:
                release()
                if first and settled:
                    net.endpoints.settle(ep.ip, ep.port)  # (no-op once remembered)
                elif first:  # swaks ran out of time: it is not known where it stopped
                    net.endpoints.unclaim(ep.ip, ep.port)
            out.extend(self.judge(job, run, version, creds))

        yield from check_all(list(jobs), check)

    def remembered(self, job: Job, known: ConnectTimeout) -> Finding:
        """The finding swaks gives an endpoint that does not answer the connection (stopped
        at CONNECT), from the run's memory: swaks is not run to wait for it again."""
        ep = job.endpoint
        stage = "CONNECT"
        said = str(known).removeprefix(f"{ep.subject}: ")
        return self.finding(
            "SWAKS_STAGE_FAILED",
            Severity.FAIL,
            f"{ep.subject}: swaks stopped at {stage}: {said}",
            evidence={
                "address": ep.ip,
                "quit_after": job.quit_after,
                "stage": stage,
                "stages_passed": "none",
                "remembered": said,
            },
            reproduce=job.reproduce,
            subject=ep.subject,
        )

    @staticmethod
    def remember_dead(net: Net, target: Target, ep: Endpoint, run: SwaksRun) -> None:
        """What swaks met first at an endpoint, for the run's memory: no answer to the
        connection, or silence where the server must greet. The other probes need not wait
        for it again."""
        if run.exit_code == _NO_CONNECTION and "connect: timeout" in run.output:
            net.endpoints.remember(
                ep.ip,
                ep.port,
                ConnectTimeout,
                f"no answer to the connection within {target.timeouts.io:g} s (swaks)",
            )
        elif run.exit_code == _NO_BANNER and _silent_banner(run.output):
            remember_silent(net, target, ep)

    # --- what to run ----------------------------------------------------------------------

    def jobs(self, target: Target, net: Net, creds: Credentials | None) -> list[Job]:
        mx = endpoints_for(target, net, "mx", MX_PORT)
        if target.submission_hosts:
            submission = endpoints_for(target, net, "submission", SUBMISSION_PORT)
        else:
            submission = [Endpoint(e.host, e.ip, SUBMISSION_PORT) for e in mx]
        required_submission = bool(target.submission_hosts)
        jobs = [
            self.submission_job(ep, target, net, creds, required_submission) for ep in submission
        ]
        jobs += [self.mx_job(ep, target, net) for ep in mx]
        return jobs

    def common_args(self, ep: Endpoint, target: Target, net: Net) -> list[str]:
        server = f"[{ep.ip}]" if ":" in ep.ip else ep.ip
        seconds = max(1, math.ceil(target.timeouts.io))
        args = [
            "--config",  # without argument: no ~/.swaksrc, no built-in config
            "--server",
            server,
            "--port",
            str(ep.port),
            "--ehlo",
            EHLO_NAME,
            "--timeout",
            f"{seconds}s",
        ]
        if net.source_address:
            args += ["--local-interface", net.source_address]
        return args

    def tls_args(self, ep: Endpoint, target: Target) -> list[str]:
        args = ["--tls-verify"]
        if target.ca_file:
            args += ["--tls-ca-path", target.ca_file]
        if not is_ip(ep.host):
            args += ["--tls-sni", ep.host]
        return args

    def submission_job(
        self, ep: Endpoint, target: Target, net: Net, creds: Credentials | None, required: bool
    ) -> Job:
        quit_after = "AUTH" if creds else "EHLO"
        auth = ["--auth", "PLAIN", "--auth-hide-password"] if creds else []
        tls = self.tls_args(ep, target)
        args = [*self.common_args(ep, target, net), "--tls", *tls]
        if creds:
            args += ["--auth-user", creds.user, *auth]
        args += ["--quit-after", quit_after]
        line = swaks_line(
            ep.ip,
            ep.port,
            tls="starttls",
            quit_after=quit_after,
            auth_user=creds.user if creds else None,
            ehlo=EHLO_NAME,
            extra=[*auth, *tls],
        )
        return Job(ep, "submission", required, tuple(args), line, quit_after)

    def mx_job(self, ep: Endpoint, target: Target, net: Net) -> Job:
        mail_from = f"mailprobe@{target.domain}"
        rcpt = f"postmaster@{target.domain}"
        tls = ["--tls-optional-strict", *self.tls_args(ep, target)]
        args = [
            *self.common_args(ep, target, net),
            *tls,
            "--from",
            mail_from,
            "--to",
            rcpt,
            "--quit-after",
            "RCPT",
        ]
        line = swaks_line(
            ep.ip,
            ep.port,
            quit_after="RCPT",
            ehlo=EHLO_NAME,
            mail_from=mail_from,
            to=rcpt,
            extra=tls,
        )
        return Job(ep, "mx", True, tuple(args), line, "RCPT")

    # --- what it means ----------------------------------------------------------------------

    def judge(
        self, job: Job, run: SwaksRun, version: str, creds: Credentials | None
    ) -> list[Finding]:
        transcript = transcript_parser.parse(run.output)
        ep = job.endpoint
        evidence = self.evidence(job, run, transcript, version)
        if run.exit_code == _PREREQUISITE:
            raise ProbeSkipped(
                "swaks lacks a prerequisite (a Perl module such as Net::SSLeay for TLS): "
                + "; ".join(transcript.errors)[:300]
            )
        if run.exit_code in _NOT_RUN:
            raise ProbeConfigError(
                f"swaks against {ep.subject}: {_NOT_RUN[run.exit_code]}: "
                + "; ".join(transcript.errors)[:300]
            )
        findings: list[Finding] = []
        fail = transcript_parser.failure(transcript, run.exit_code)
        if fail is None:
            findings.append(
                self.finding(
                    "SWAKS_TRANSACTION_OK",
                    Severity.INFO,
                    f"{ep.subject}: swaks got through to {job.quit_after} "
                    f"({', '.join(transcript.passed)})",
                    evidence=evidence,
                    reproduce=job.reproduce,
                    subject=ep.subject,
                )
            )
        else:
            evidence["transcript_tail"] = transcript_tail(run.output)
            findings.append(self.failure_finding(job, fail, evidence, creds))
        not_offered = transcript.stage("STARTTLS")
        if (
            not_offered is not None
            and not_offered.note == "STARTTLS not advertised"
            and findings[0].code != "STARTTLS_NOT_OFFERED"
        ):
            findings.append(
                self.finding(
                    "STARTTLS_NOT_OFFERED",
                    Severity.FAIL,
                    f"{ep.subject} does not advertise STARTTLS: mail crosses the network in "
                    "the clear",
                    evidence=evidence,
                    reproduce=job.reproduce,
                    subject=ep.subject,
                    volatile=[k for k in ("transcript_tail",) if k in evidence],
                )
            )
        return findings

    def evidence(
        self, job: Job, run: SwaksRun, transcript: Transcript, version: str
    ) -> dict[str, str]:
        meaning = transcript_parser.exit_meaning(run.exit_code)
        evidence = {
            "address": job.endpoint.ip,
            "swaks_version": version,
            "quit_after": job.quit_after,
            "stages_passed": ",".join(transcript.passed) or "none",
            "exit_code": str(run.exit_code),
            "exit_meaning": meaning.meaning,
        }
        if transcript.tls_version:
            evidence["tls_version"] = transcript.tls_version
        if transcript.tls_cipher:
            evidence["tls_cipher"] = transcript.tls_cipher
        if transcript.tls_bits:
            evidence["tls_cipher_bits"] = transcript.tls_bits
        if transcript.tls_peer_dn:
            evidence["tls_peer_dn"] = transcript.tls_peer_dn
        if transcript.starttls_advertised is not None:
            evidence["starttls_advertised"] = "yes" if transcript.starttls_advertised else "no"
        if run.truncated:
            evidence["output_truncated"] = "yes"
        return evidence

    def failure_finding(
        self, job: Job, fail: Failure, evidence: dict[str, str], creds: Credentials | None
    ) -> Finding:
        ep = job.endpoint
        record = fail.record
        evidence = dict(evidence)
        evidence["stage"] = fail.stage
        if record is not None:
            if record.code is not None:
                evidence["reply_code"] = str(record.code)
            if record.text:
                evidence["reply_text"] = transcript_parser.shorten(record.text, 200)
            if record.note:
                evidence["swaks_says"] = transcript_parser.shorten(record.note, 200)
            if record.command:
                evidence["command"] = record.command
        reply = " ".join(x for x in (evidence.get("reply_code"), evidence.get("reply_text")) if x)
        said = reply or evidence.get("swaks_says") or fail.exit.meaning
        note = (record.note or "") if record is not None else ""

        def make(code: str, severity: Severity, message: str) -> Finding:
            return self.finding(
                code,
                severity,
                message,
                evidence=evidence,
                reproduce=job.reproduce,
                subject=ep.subject,
                # swaks' raw output: banners with the time, queue ids, session ids
                volatile=[k for k in ("transcript_tail",) if k in evidence],
            )

        if fail.stage == "CONNECT" and "refused" in note.lower():
            return make(
                "PORT_CLOSED",
                Severity.FAIL if job.required else Severity.INFO,
                f"{ep.subject} refuses connections",
            )
        if fail.stage == "STARTTLS" and note == "STARTTLS not advertised":
            return make(
                "STARTTLS_NOT_OFFERED",
                Severity.FAIL,
                f"{ep.subject} does not advertise STARTTLS",
            )
        if fail.stage == "STARTTLS" or (
            fail.stage == "TLS" and "certificate verify failed" not in note
        ):
            return make(
                "STARTTLS_FAILED",
                Severity.FAIL,
                f"{ep.subject} advertises STARTTLS but the upgrade fails: {said}",
            )
        if fail.stage == "AUTH" and creds is not None:
            return make(
                "AUTH_FAILED",
                Severity.FAIL,
                f"{ep.subject} does not accept the configured credentials: {said}",
            )
        return make(
            "SWAKS_STAGE_FAILED",
            Severity.FAIL,
            f"{ep.subject}: swaks stopped at {fail.stage}: {said}",
        )


def _silent_banner(output: str) -> bool:
    """Whether swaks connected and then timed out waiting for the banner (its first server
    line is its own timeout notice, `<** Timeout (N secs) waiting for server response`)."""
    server_lines = [line for line in output.splitlines() if line.startswith("<")]
    return bool(server_lines) and server_lines[0].startswith("<** Timeout")


def remember_silent(net: Net, target: Target, ep: Endpoint) -> None:
    net.endpoints.remember(
        ep.ip,
        ep.port,
        Silent,
        "accepted the connection but did not answer with a greeting within "
        f"{target.timeouts.io:g} s (swaks)",
    )


def transcript_tail(output: str) -> str:
    """The last lines of a transcript, AUTH exchanges redacted, bounded in size."""
    lines = transcript_parser.redact_auth(output).splitlines()[-TRANSCRIPT_TAIL_LINES:]
    text = "\n".join(line[:200] for line in lines)
    return text[-TRANSCRIPT_TAIL_CHARS:]
