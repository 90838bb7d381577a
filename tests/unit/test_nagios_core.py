"""`mailprobe check --format nagios` under a real monitoring core: Debian's nagios4 (Nagios
Core 4) runs it as a service's check command against a DNS server and an SMTP server with
STARTTLS on 127/8, and the test reads the state, output and perfdata the core recorded in its
status file. Skipped when /usr/sbin/nagios4 is missing (./run-tests installs nagios4-core with
apt, tried once) or when port 25 on 127/8 cannot be bound (needs root)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import hostile_server as hs
from test_example_plugin import smtp_with_starttls
from tiny_dns import TinyDns

NAGIOS = shutil.which("nagios4") or "/usr/sbin/nagios4"
DOMAIN = "example.test"
MX_HOST = "hostile.test"  # the name hostile_server's certificate carries
MAILPROBE = Path(sysconfig.get_path("scripts")) / "mailprobe"
WAIT_S = 45  # the core's start, one forced check and the status file's update

pytestmark = pytest.mark.skipif(
    not os.access(NAGIOS, os.X_OK),
    reason="Nagios Core is not installed (Debian: apt-get install nagios4-core; ./run-tests "
    "tries it once)",
)


def _config(tmp: Path, commands: dict[str, str]) -> Path:
    user = os.environ.get("USER") or "root"
    group = "root" if os.getuid() == 0 else user
    (tmp / "rw").mkdir()
    (tmp / "spool").mkdir()
    (tmp / "objects.cfg").write_text(
        """
define command {
    command_name    nothing
    command_line    /bin/true
}
define timeperiod {
    timeperiod_name 24x7
    alias           always
    sunday 00:00-24:00
    monday 00:00-24:00
    tuesday 00:00-24:00
    wednesday 00:00-24:00
    thursday 00:00-24:00
    friday 00:00-24:00
    saturday 00:00-24:00
}
define contact {
    contact_name                  nobody
    host_notifications_enabled    0
    service_notifications_enabled 0
    host_notification_period      24x7
    service_notification_period   24x7
    host_notification_options     n
    service_notification_options  n
    host_notification_commands    nothing
    service_notification_commands nothing
}
define host {
    host_name              mailhost
    address                127.0.0.1
    check_command          nothing
    max_check_attempts     1
    check_period           24x7
    active_checks_enabled  0
    contacts               nobody
    notification_period    24x7
}
"""
        + "".join(
            f"""
define command {{
    command_name    {name}
    command_line    {command}
}}
define service {{
    host_name              mailhost
    service_description    {name}
    check_command          {name}
    max_check_attempts     1
    check_interval         3600
    retry_interval         3600
    check_period           24x7
    contacts               nobody
    notification_period    24x7
    notifications_enabled  0
}}
"""
            for name, command in commands.items()
        )
    )
    cfg = tmp / "nagios.cfg"
    cfg.write_text(
        "\n".join(
            [
                f"log_file={tmp}/nagios.log",
                f"cfg_file={tmp}/objects.cfg",
                f"object_cache_file={tmp}/objects.cache",
                f"precached_object_file={tmp}/objects.precache",
                f"status_file={tmp}/status.dat",
                "status_update_interval=1",
                f"nagios_user={user}",
                f"nagios_group={group}",
                "check_external_commands=1",
                f"command_file={tmp}/rw/nagios.cmd",
                f"lock_file={tmp}/nagios.lock",
                f"temp_file={tmp}/nagios.tmp",
                f"temp_path={tmp}",
                f"check_result_path={tmp}/spool",
                f"query_socket={tmp}/rw/nagios.qh",
                "retain_state_information=0",
                "use_syslog=0",
                "enable_notifications=0",
                "execute_host_checks=0",
                "interval_length=1",
                "service_check_timeout=60",
                "check_workers=1",
                "max_service_check_spread=1",
                "illegal_macro_output_chars=`~$&|'\"<>",
                "enable_environment_macros=0",
                "event_broker_options=0",
                "log_initial_states=0",
                "",
            ]
        )
    )
    return cfg


def _service_status(status_file: Path, name: str) -> dict[str, str] | None:
    try:
        text = status_file.read_text(errors="replace")
    except FileNotFoundError:
        return None
    for block in re.findall(r"servicestatus \{\n(.*?)\n\s*\}", text, re.S):
        fields = dict(line.strip().split("=", 1) for line in block.splitlines() if "=" in line)
        if fields.get("service_description") == name:
            return fields
    return None


def test_nagios_core_records_mailprobe_state_and_perfdata(tmp_path):
    try:
        server = hs.HostileServer(smtp_with_starttls, ports=(25,)).__enter__()
    except PermissionError:
        pytest.skip("binding port 25 on 127/8 needs root (or CAP_NET_BIND_SERVICE)")
    try:
        server.tls, ca = hs.tls_material(tmp_path, server.host)
        records = {
            (DOMAIN, "MX"): [f"10 {MX_HOST}."],
            (MX_HOST, "A"): [server.host],
            (DOMAIN, "TXT"): ['"v=spf1 a mx ip4:192.0.2.1 -all"'],
            (DOMAIN, "A"): ["192.0.2.1"],
        }
        with TinyDns(records) as resolver:
            _run_core(tmp_path, resolver.address, ca)
    finally:
        server.stop()


def _run_core(tmp: Path, resolver: str, ca: Path) -> None:
    good = " ".join(
        [
            str(MAILPROBE),
            "check",
            DOMAIN,
            f"--resolver {resolver}",
            "--probe smtp.mx --probe dns.spf",
            f"--ca-file {ca}",
            f"--output {tmp}/out",
            "--no-history",
            "--format nagios",
            "-q",
            # the certificate made for the test has about 89 days left: a warning at 400
            "--cert-days-warn 400: --cert-days-crit 7:",
            "--spf-lookups-crit 5",
        ]
    )
    # A usage error (a bare number of days, refused before any probing): UNKNOWN, one line.
    bad = f"{MAILPROBE} check {DOMAIN} --no-history --format nagios -q --cert-days-warn 21"
    cfg = _config(tmp, {"mailprobe": good, "mailprobe_bad": bad})
    check = subprocess.run([NAGIOS, "-v", str(cfg)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout[-3000:]
    core = subprocess.Popen(
        [NAGIOS, str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        fields, bad_fields = _forced_checks(tmp, core, ["mailprobe", "mailprobe_bad"])
    finally:
        core.send_signal(signal.SIGTERM)
        try:
            core.wait(15)
        except subprocess.TimeoutExpired:
            core.kill()
            core.wait(5)
    # The core's own record of the check (status.dat), as any Nagios front end shows it.
    assert fields["current_state"] == "1", fields  # WARNING
    output = fields["plugin_output"]
    assert output.startswith("MAILPROBE WARNING - example.test: 2 probes, 0 fail, ")
    assert "CERT_EXPIRING_SOON" in output
    perf = dict(re.findall(r"'([^']+)'=(\S+)", fields["performance_data"]))
    days, warn, crit = perf[f"cert_days_{MX_HOST}:25"].split(";")[:3]
    assert 80 <= int(days) <= 100 and (warn, crit) == ("400:", "7:")
    assert perf["spf_lookups"] == "2;;5;0"
    assert perf["fail"] == "0;;0;0"
    assert re.fullmatch(r"[0-9.]+s;;;0", perf["time_smtp.mx"])
    assert "[WARN] CERT_EXPIRING_SOON smtp.mx" in fields["long_plugin_output"]
    assert bad_fields["current_state"] == "3", bad_fields  # UNKNOWN
    assert bad_fields["plugin_output"].startswith("MAILPROBE UNKNOWN - usage: --cert-days-warn: ")
    assert bad_fields["long_plugin_output"] == ""


def _forced_checks(tmp: Path, core: subprocess.Popen, services: list[str]) -> list[dict[str, str]]:
    """Ask the core for a check of each service now (external commands), then wait for the
    results in its status file."""
    deadline = time.monotonic() + WAIT_S
    pipe = tmp / "rw" / "nagios.cmd"
    while not pipe.exists():
        assert core.poll() is None, core.stdout.read() if core.stdout else ""
        assert time.monotonic() < deadline, "the core did not open its command file"
        time.sleep(0.1)
    now = int(time.time())
    fd = os.open(pipe, os.O_WRONLY | os.O_NONBLOCK)
    try:
        for name in services:
            line = f"[{now}] SCHEDULE_FORCED_SVC_CHECK;mailhost;{name};{now}\n"
            os.write(fd, line.encode())
    finally:
        os.close(fd)
    while time.monotonic() < deadline:
        found = [_service_status(tmp / "status.dat", name) for name in services]
        if all(f and f.get("has_been_checked") == "1" for f in found):
            return found  # type: ignore[return-value]
        assert core.poll() is None, core.stdout.read() if core.stdout else ""
        time.sleep(0.2)
    log = (tmp / "nagios.log").read_text(errors="replace")[-3000:]
    raise AssertionError(f"no check result within {WAIT_S} s; nagios.log:\n{log}")
