"""smtp.swaks and its door (probes.net.swaks) without a mail server.

A stand-in `swaks` (a shell script first on PATH) replays transcripts captured from the real
swaks (tests/data/swaks/) with the exit code swaks gave, and logs how it was called, so the
probe's findings, the password's route and the process bounds are checked exactly.
"""

from __future__ import annotations

import base64
import shlex
import time
from pathlib import Path

import pytest

from probes.checks import smtp_swaks
from probes.checks.smtp_swaks import SmtpSwaks
from probes.model import ErrorReason, Outcome, Severity, Target, Timeouts
from probes.net import Net
from probes.net import swaks as door
from probes.net.dns import DnsClient, StaticBackend
from probes.runner import Redactor, run_one

DATA = Path(__file__).resolve().parents[1] / "data" / "swaks"
DOMAIN = "example.test"
MX = f"mx.{DOMAIN}"
USER = f"user@{DOMAIN}"
SECRET = "Unit-Secret-7f3a"
CRED_ENV = "MAILPROBE_UNIT_SWAKS_CRED"


def fake_swaks(
    tmp_path: Path,
    *,
    sub: tuple[str, int] = ("sub_noauth_ok", 0),
    mx: tuple[str, int] = ("mx_ok", 0),
    sub_extra: str = "",
) -> Path:
    """Put a stand-in swaks first on a PATH; returns the directory holding its logs."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    log = shlex.quote(str(tmp_path / "argv.log"))
    envlog = shlex.quote(str(tmp_path / "env.log"))

    def replay(stem: str, code: int, extra: str = "") -> str:
        return f"cat {shlex.quote(str(DATA / f'{stem}.txt'))}; {extra} exit {code}"

    script = f"""#!/bin/sh
printf '%s\\n' "$*" >> {log}
env | grep '^SWAKS_' >> {envlog}
case "$*" in
  *--version*) echo "swaks version 20201014.0"; exit 0;;
  *"--port 587"*) {replay(*sub, sub_extra)};;
  *) {replay(*mx)};;
esac
"""
    exe = bindir / "swaks"
    exe.write_text(script)
    exe.chmod(0o755)
    return bindir


@pytest.fixture
def on_path(monkeypatch):
    def put(bindir: Path) -> None:
        monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")

    return put


def target(**overrides) -> Target:
    values = dict(
        domain=DOMAIN,
        mx_hosts=(MX,),
        timeouts=Timeouts(connect=2.0, io=3.0, dns=1.0, probe=10.0),
    )
    values.update(overrides)
    return Target(**values)


def run(t: Target):
    net = Net(timeouts=t.timeouts, dns_client=DnsClient(StaticBackend({(MX, "A"): ["127.0.0.1"]})))
    return run_one(SmtpSwaks(), t, net, Redactor([SECRET]))


def by_subject(result) -> dict[str, list]:
    out: dict[str, list] = {}
    for f in result.findings:
        out.setdefault(f.subject, []).append(f)
    return out


def codes(result, port: int) -> list[tuple[str, Severity]]:
    return [(f.code, f.severity) for f in by_subject(result).get(f"{MX}:{port}", [])]


@pytest.fixture
def creds(monkeypatch):
    monkeypatch.setenv(CRED_ENV, f"{USER}:{SECRET}")
    return f"env:{CRED_ENV}"


# --- without swaks --------------------------------------------------------------------------


def test_skipped_when_swaks_is_not_on_path(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    result = run(target())
    assert result.outcome is Outcome.SKIPPED
    assert result.error is None
    assert result.findings == ()


def test_skipped_when_the_finder_finds_nothing(monkeypatch):
    monkeypatch.setattr(smtp_swaks, "find_swaks", lambda: None)
    result = run(target())
    assert result.outcome is Outcome.SKIPPED
    assert result.findings == ()


def test_find_swaks_looks_only_on_the_given_path(tmp_path):
    assert door.find_swaks(str(tmp_path)) is None
    bindir = fake_swaks(tmp_path)
    assert door.find_swaks(str(bindir)) == str(bindir / "swaks")


# --- findings from transcripts --------------------------------------------------------------


def test_healthy_submission_and_mx_give_only_info_findings_with_tls_evidence(tmp_path, on_path):
    on_path(fake_swaks(tmp_path))
    result = run(target())
    assert result.outcome is Outcome.COMPLETED
    assert codes(result, 587) == [("SWAKS_TRANSACTION_OK", Severity.INFO)]
    assert codes(result, 25) == [("SWAKS_TRANSACTION_OK", Severity.INFO)]
    ok = by_subject(result)[f"{MX}:25"][0]
    assert ok.evidence["tls_version"] == "TLSv1.3"
    assert ok.evidence["swaks_version"] == "20201014.0"
    assert ok.evidence["stages_passed"].split(",")[-2:] == ["MAIL", "RCPT"]
    assert ok.reproduce.startswith("swaks --server 127.0.0.1 --port 25")


def test_mx_run_asks_for_postmaster_and_quits_after_rcpt_with_starttls_when_offered(
    tmp_path, on_path
):
    on_path(fake_swaks(tmp_path))
    run(target())
    calls = [shlex.split(c) for c in (tmp_path / "argv.log").read_text().splitlines()]
    mx_call = next(c for c in calls if "--port" in c and c[c.index("--port") + 1] == "25")
    assert mx_call[mx_call.index("--to") + 1] == f"postmaster@{DOMAIN}"
    assert mx_call[mx_call.index("--quit-after") + 1] == "RCPT"
    assert "--tls-optional-strict" in mx_call and "--tls-verify" in mx_call
    assert mx_call[mx_call.index("--server") + 1] == "127.0.0.1"
    sub_call = next(c for c in calls if "--port" in c and c[c.index("--port") + 1] == "587")
    assert "--tls" in sub_call
    assert sub_call[sub_call.index("--quit-after") + 1] == "EHLO"  # no credentials


def test_ca_file_is_passed_to_swaks(tmp_path, on_path):
    on_path(fake_swaks(tmp_path))
    run(target(ca_file="/some/ca.pem"))
    for call in (tmp_path / "argv.log").read_text().splitlines()[1:]:
        args = shlex.split(call)
        assert args[args.index("--tls-ca-path") + 1] == "/some/ca.pem"


def test_password_travels_in_the_environment_never_on_the_command_line(tmp_path, on_path, creds):
    on_path(fake_swaks(tmp_path, sub=("sub_auth_ok", 0)))
    result = run(target(credentials_ref=creds))
    assert codes(result, 587) == [("SWAKS_TRANSACTION_OK", Severity.INFO)]
    argv_log = (tmp_path / "argv.log").read_text()
    assert SECRET not in argv_log
    sub_call = next(c for c in argv_log.splitlines() if "--port 587" in c)
    args = shlex.split(sub_call)
    assert args[args.index("--auth-user") + 1] == USER
    assert args[args.index("--quit-after") + 1] == "AUTH"
    assert "--auth-hide-password" in args
    assert f"SWAKS_OPT_auth_password={SECRET}" in (tmp_path / "env.log").read_text()
    reproduce = by_subject(result)[f"{MX}:587"][0].reproduce
    assert '--auth-password "$MAILPROBE_PASSWORD"' in reproduce
    assert SECRET not in reproduce


def test_stray_swaks_options_in_our_environment_do_not_reach_swaks(tmp_path, on_path, monkeypatch):
    monkeypatch.setenv("SWAKS_OPT_server", "192.0.2.1")
    on_path(fake_swaks(tmp_path))
    run(target())
    assert "SWAKS_OPT_server" not in (tmp_path / "env.log").read_text()


def test_password_echoed_by_swaks_appears_in_no_finding(tmp_path, on_path, creds):
    echo = (
        'printf "%s\\n" " ~> AUTH PLAIN $(printf "\\0%s\\0%s" '
        f'{USER} "$SWAKS_OPT_auth_password" | base64 -w0)"; '
        'echo "*** password was $SWAKS_OPT_auth_password"; '
        'printf "%s" "$SWAKS_OPT_auth_password" | base64; '
    )
    on_path(fake_swaks(tmp_path, sub=("sub_auth_fail", 28), sub_extra=echo))
    result = run(target(credentials_ref=creds))
    [finding] = by_subject(result)[f"{MX}:587"]
    assert finding.code == "AUTH_FAILED"
    assert "password was ***" in finding.evidence["transcript_tail"]  # it was there, scrubbed
    forms = [
        SECRET,
        base64.b64encode(SECRET.encode()).decode(),
        base64.b64encode(f"\0{USER}\0{SECRET}".encode()).decode(),
    ]
    for f in result.findings:
        text = " ".join([f.message, f.reproduce or "", *f.evidence.values()])
        for form in forms:
            assert form not in text


def test_refused_auth_with_credentials_is_auth_failed(tmp_path, on_path, creds):
    on_path(fake_swaks(tmp_path, sub=("sub_auth_fail", 28)))
    result = run(target(credentials_ref=creds))
    [finding] = by_subject(result)[f"{MX}:587"]
    assert (finding.code, finding.severity) == ("AUTH_FAILED", Severity.FAIL)
    assert finding.evidence["reply_code"] == "535"
    assert finding.evidence["stage"] == "AUTH"
    assert finding.evidence["exit_code"] == "28"
    assert "[redacted]" in finding.evidence["transcript_tail"]
    # the raw transcript is shown, never drift; the judgement's evidence is stable
    assert finding.volatile == frozenset({"transcript_tail"})
    assert finding.stable_evidence["reply_code"] == "535"


def test_starttls_refused_with_454_is_starttls_failed(tmp_path, on_path):
    on_path(fake_swaks(tmp_path, sub=("starttls_454", 29)))
    result = run(target())
    [finding] = by_subject(result)[f"{MX}:587"]
    assert (finding.code, finding.severity) == ("STARTTLS_FAILED", Severity.FAIL)
    assert finding.evidence["reply_code"] == "454"


def test_starttls_not_advertised_on_submission_is_starttls_not_offered(tmp_path, on_path):
    on_path(fake_swaks(tmp_path, sub=("starttls_not_offered", 29)))
    result = run(target())
    assert codes(result, 587) == [("STARTTLS_NOT_OFFERED", Severity.FAIL)]


def test_mx_without_starttls_completes_but_is_starttls_not_offered(tmp_path, on_path):
    on_path(fake_swaks(tmp_path, mx=("mx_no_starttls", 0)))
    result = run(target())
    assert codes(result, 25) == [
        ("SWAKS_TRANSACTION_OK", Severity.INFO),
        ("STARTTLS_NOT_OFFERED", Severity.FAIL),
    ]


def test_unverifiable_certificate_is_a_failed_tls_stage(tmp_path, on_path):
    on_path(fake_swaks(tmp_path, sub=("verify_fail", 29)))
    result = run(target())
    [finding] = by_subject(result)[f"{MX}:587"]
    assert (finding.code, finding.severity) == ("SWAKS_STAGE_FAILED", Severity.FAIL)
    assert finding.evidence["stage"] == "TLS"


def test_refused_rcpt_for_postmaster_is_a_failed_rcpt_stage(tmp_path, on_path):
    on_path(fake_swaks(tmp_path, mx=("mx_rcpt_refused", 24)))
    result = run(target())
    [finding] = by_subject(result)[f"{MX}:25"]
    assert finding.code == "SWAKS_STAGE_FAILED"
    assert (finding.evidence["stage"], finding.evidence["reply_code"]) == ("RCPT", "550")


def test_refusing_banner_is_a_failed_banner_stage(tmp_path, on_path):
    on_path(fake_swaks(tmp_path, mx=("banner_554", 21)))
    result = run(target())
    [finding] = by_subject(result)[f"{MX}:25"]
    assert (finding.code, finding.evidence["stage"]) == ("SWAKS_STAGE_FAILED", "BANNER")
    assert finding.evidence["reply_code"] == "554"


def test_refused_587_on_an_mx_host_is_info_when_no_submission_host_is_configured(tmp_path, on_path):
    on_path(fake_swaks(tmp_path, sub=("refused", 2)))
    result = run(target())
    assert codes(result, 587) == [("PORT_CLOSED", Severity.INFO)]


def test_refused_587_on_a_configured_submission_host_fails(tmp_path, on_path):
    on_path(fake_swaks(tmp_path, sub=("refused", 2)))
    result = run(target(submission_hosts=(MX,)))
    assert codes(result, 587) == [("PORT_CLOSED", Severity.FAIL)]


def test_refused_25_fails(tmp_path, on_path):
    on_path(fake_swaks(tmp_path, mx=("refused", 2)))
    result = run(target())
    assert codes(result, 25) == [("PORT_CLOSED", Severity.FAIL)]


def test_swaks_without_a_needed_perl_module_skips(tmp_path, on_path):
    on_path(fake_swaks(tmp_path, sub=("refused", 10), mx=("refused", 10)))
    result = run(target())
    assert result.outcome is Outcome.SKIPPED


def test_swaks_refusing_its_options_is_a_config_error(tmp_path, on_path):
    on_path(fake_swaks(tmp_path, mx=("refused", 1)))
    result = run(target())
    assert (result.outcome, result.error) == (Outcome.ERROR, ErrorReason.CONFIG)


def test_password_swaks_cannot_take_skips_without_running_swaks(tmp_path, on_path, monkeypatch):
    monkeypatch.setenv(CRED_ENV, f"{USER}:-starts-with-dash")
    on_path(fake_swaks(tmp_path))
    result = run(target(credentials_ref=f"env:{CRED_ENV}"))
    assert result.outcome is Outcome.SKIPPED
    assert not (tmp_path / "argv.log").exists()


# --- the door's bounds ----------------------------------------------------------------------


def _dead(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def hanging_swaks(tmp_path: Path) -> Path:
    """A swaks that starts a child in its group and then hangs; both write their pids."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    pids = shlex.quote(str(tmp_path / "pids"))
    exe = bindir / "swaks"
    exe.write_text(
        "#!/bin/sh\n"
        'case "$*" in *--version*) echo "swaks version 1"; exit 0;; esac\n'
        f"sleep 300 & echo $! >> {pids}\n"
        f"echo $$ >> {pids}\n"
        "sleep 300\n"
    )
    exe.chmod(0o755)
    return bindir


def test_hanging_swaks_is_killed_with_its_children_and_the_run_times_out(tmp_path, on_path):
    on_path(hanging_swaks(tmp_path))
    result = run(target(timeouts=Timeouts(connect=0.2, io=0.3, dns=1.0, probe=5.0)))
    assert (result.outcome, result.error) == (Outcome.ERROR, ErrorReason.TIMEOUT)
    assert f"{MX}:587" in (result.error_detail or "")
    pids = [int(p) for p in (tmp_path / "pids").read_text().split()]
    assert len(pids) == 4  # two runs, each swaks and its child
    deadline = time.monotonic() + 5
    while not all(_dead(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(_dead(pid) for pid in pids)


def test_run_swaks_timeout_names_the_endpoint(tmp_path):
    bindir = hanging_swaks(tmp_path)
    with pytest.raises(TimeoutError, match=r"mx\.example\.test:25"):
        door.run_swaks(str(bindir / "swaks"), ["x"], timeout=0.3, what="mx.example.test:25")


def test_run_swaks_keeps_at_most_the_output_cap(tmp_path):
    exe = tmp_path / "swaks"
    exe.write_text("#!/bin/sh\nhead -c 3000000 /dev/zero | tr '\\0' x\nexit 0\n")
    exe.chmod(0o755)
    result = door.run_swaks(str(exe), [], timeout=20, what="h:25", output_cap=64 * 1024)
    assert result.truncated
    assert len(result.output) == 64 * 1024
    assert result.exit_code == 0


def test_run_swaks_reports_the_exit_code_and_scrubs_the_password(tmp_path):
    exe = tmp_path / "swaks"
    exe.write_text('#!/bin/sh\necho "pw=$SWAKS_OPT_auth_password"\nexit 28\n')
    exe.chmod(0o755)
    result = door.run_swaks(str(exe), [], timeout=20, what="h:587", password=SECRET, user=USER)
    assert result.exit_code == 28
    assert SECRET not in result.output
    assert "pw=" in result.output
    assert SECRET not in " ".join(result.argv)


@pytest.mark.parametrize("password", ["-dash", "<>", "two\nlines", ""])
def test_passwords_swaks_would_misread_are_refused_before_running(tmp_path, password):
    exe = tmp_path / "swaks"
    exe.write_text(f"#!/bin/sh\ntouch {shlex.quote(str(tmp_path / 'ran'))}\n")
    exe.chmod(0o755)
    with pytest.raises(door.SwaksUnusable):
        door.run_swaks(str(exe), [], timeout=5, what="h:587", password=password)
    assert not (tmp_path / "ran").exists()


def test_missing_binary_is_an_os_error(tmp_path):
    with pytest.raises(OSError):
        door.run_swaks(str(tmp_path / "nope"), [], timeout=5, what="h:25")


def test_real_swaks_version_is_read_when_installed():
    binary = door.find_swaks()
    if binary is None:
        pytest.skip("swaks is not installed")
    version = door.swaks_version(binary)
    assert version is not None and version[:1].isdigit()
