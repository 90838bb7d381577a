"""Self-tests that prove the lab is real: Knot, two Exims and Dovecot doing real mail work."""

from __future__ import annotations

import imaplib
import signal
import smtplib
import ssl
import subprocess
import sys
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import mailtools
import pytest

from probes.lab import readiness
from probes.lab.containers import list_lab_containers
from probes.lab.lab import Lab, LabStartError
from probes.lab.spec import LabSpec

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def info(mailprobe_lab):
    return mailprobe_lab.info


def test_signed_mail_from_authorized_source_passes_dkim_spf_iprev_read_over_imaps(info):
    token, raw = mailtools.compose(info)
    mailtools.send(info, mailtools.sign(info, raw))
    msg = mailtools.fetch_imaps(info, token)
    ar = mailtools.auth_results(msg, f"mx.{info.domain}")
    assert mailtools.verdict(ar, "dkim") == "pass"
    assert mailtools.verdict(ar, "spf") == "pass"
    assert mailtools.verdict(ar, "iprev") == "pass"
    assert f"header.d={info.domain}" in ar


def test_signed_mail_read_back_over_pop3_after_stls(info):
    token, raw = mailtools.compose(info)
    mailtools.send(info, mailtools.sign(info, raw))
    msg = mailtools.fetch_pop3_stls(info, token)
    assert mailtools.verdict(mailtools.auth_results(msg, f"mx.{info.domain}"), "dkim") == "pass"


def test_mail_from_unauthorized_source_gets_spf_fail(info):
    token, raw = mailtools.compose(info)
    mailtools.send(
        info,
        mailtools.sign(info, raw),
        source=info.client_ips["unauthorized"],
        helo=f"client-b.{info.domain}",
    )
    ar = mailtools.auth_results(mailtools.fetch_imaps(info, token), f"mx.{info.domain}")
    assert mailtools.verdict(ar, "spf") == "fail"
    assert mailtools.verdict(ar, "dkim") == "pass"
    assert mailtools.verdict(ar, "iprev") == "pass"  # it has a forward-confirmed PTR


def test_tampered_body_gives_dkim_fail(info):
    token, raw = mailtools.compose(info, body="the original body\n")
    signed = mailtools.sign(info, raw)
    tampered = signed.replace(b"the original body", b"a tampered body!!")
    mailtools.send(info, tampered)
    ar = mailtools.auth_results(mailtools.fetch_imaps(info, token), f"mx.{info.domain}")
    assert mailtools.verdict(ar, "dkim") == "fail"


def test_outbound_exim_dkim_signs_what_it_relays(info):
    token, raw = mailtools.compose(info)  # unsigned
    mailtools.send(info, raw, host=info.hosts["outbound"], port=info.ports["outbound_smtp"])
    msg = mailtools.fetch_imaps(info, token)
    signature = " ".join(str(msg["DKIM-Signature"]).split())
    assert f"d={info.domain};" in signature and "s=mail;" in signature
    ar = mailtools.auth_results(msg, f"mx.{info.domain}")
    assert mailtools.verdict(ar, "dkim") == "pass"
    assert mailtools.verdict(ar, "spf") == "pass"  # the outbound relay is in the SPF record
    assert f"smtp.remote-ip={info.hosts['outbound']}" in ar


def test_rcpt_to_foreign_domain_is_refused(info):
    source = (info.client_ips["authorized"], 0)
    with smtplib.SMTP(info.hosts["mx"], info.ports["smtp"], source_address=source, timeout=10) as s:
        s.ehlo(f"client-a.{info.domain}")
        s.mail(info.user)
        code, reply = s.rcpt("someone@elsewhere.test")
    assert code == 550
    assert b"relay not permitted" in reply


def test_submission_offers_auth_only_after_starttls_and_accepts_the_lab_user(info):
    source = (info.client_ips["authorized"], 0)
    with smtplib.SMTP(
        info.hosts["mx"], info.ports["submission"], source_address=source, timeout=10
    ) as s:
        s.ehlo(f"client-a.{info.domain}")
        assert not s.has_extn("auth")
        assert s.has_extn("starttls")
        s.starttls(context=mailtools.tls_context(info))
        s.ehlo(f"client-a.{info.domain}")
        assert "PLAIN" in s.esmtp_features["auth"].upper()
        code, _ = s.login(info.user, info.password)
        assert code == 235


def test_imap_login_before_starttls_is_refused(info):
    with imaplib.IMAP4(info.hosts["mailbox"], info.ports["imap"], timeout=10) as im:
        assert "LOGINDISABLED" in im.capabilities
        # imaplib's login() would refuse to send; send LOGIN anyway, as a careless client does.
        status, data = im._simple_command("LOGIN", info.user, im._quote(info.password))
    assert status == "NO"
    assert b"PRIVACYREQUIRED" in data[0]


def test_lab_dns_answers_only_lab_zones(info):
    def ask(name: str, rdtype: str) -> dns.message.Message:
        query = dns.message.make_query(name, rdtype)
        return dns.query.udp(query, info.resolver_ip, port=info.resolver_port, timeout=2)

    mx = ask(info.domain, "MX")
    assert mx.rcode() == dns.rcode.NOERROR
    assert f"mx.{info.domain}." in mx.answer[0].to_text()
    assert ask("example.com", "A").rcode() == dns.rcode.REFUSED


def test_two_labs_run_side_by_side(info, mailprobe_lab_factory):
    second = mailprobe_lab_factory(LabSpec()).info
    assert second.lab_id != info.lab_id
    assert second.hosts["mx"] != info.hosts["mx"]
    for lab_info in (info, second):
        answer = dns.query.udp(
            dns.message.make_query(f"mx.{lab_info.domain}", "A"),
            lab_info.resolver_ip,
            port=lab_info.resolver_port,
            timeout=2,
        )
        assert answer.answer[0][0].address == lab_info.hosts["mx"]
    token, raw = mailtools.compose(second)
    mailtools.send(second, mailtools.sign(second, raw))
    mailtools.fetch_imaps(second, token)
    with pytest.raises(AssertionError, match="not delivered"):
        mailtools.fetch_imaps(info, token, deadline_s=0.3)


def test_failed_start_reports_the_container_log_and_leaves_nothing(monkeypatch):
    import probes.lab.lab as lab_module

    real_render = lab_module.render_lab_dir

    def broken_render(spec, root, password):
        files = real_render(spec, root, password)
        with open(root / "mailbox" / "dovecot.conf", "a") as fh:
            fh.write("no_such_dovecot_setting = 1\n")
        return files

    monkeypatch.setattr(lab_module, "render_lab_dir", broken_render)
    lab = Lab(LabSpec(), ready_timeout=10)
    with pytest.raises(LabStartError) as excinfo:
        lab.start()
    assert "no_such_dovecot_setting" in str(excinfo.value)
    assert list_lab_containers(lab.lab_id) == []
    assert lab._workdir is None


def test_interrupted_check_tears_the_lab_down(tmp_path):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "probes.cli",
            "check",
            "--lab",
            "--output",
            str(tmp_path / "report"),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    lab_id = None
    assert proc.stderr is not None
    for line in proc.stderr:
        if "starting lab" in line:
            lab_id = line.split("starting lab", 1)[1].split()[0]
            break
    assert lab_id, "the check never started a lab"
    proc.send_signal(signal.SIGTERM)
    rest = proc.stderr.read()
    assert proc.wait(timeout=30) == 143, rest  # 128 + SIGTERM
    assert list_lab_containers(lab_id) == [], rest
    a, b, c = lab_id.split("-")
    assert not readiness.smtp_ready(f"{a}.{b}.{c}.25", 25)


def test_exim_never_routes_lab_mail_outside_loopback(mailprobe_lab_factory):
    # A zone record pointing outside 127/8 must not make Exim connect there: `exim -bt`
    # routes an address without sending anything.
    spec = LabSpec(
        extra_records=(
            "far MX 10 far-host.{domain}.",
            "far-host A 192.0.2.1",
            "near MX 10 mx.{domain}.",
        ),
    )
    lab = mailprobe_lab_factory(spec)
    outbound = next(c for c in lab.containers if c.role == "outbound")
    far = outbound.exec(["exim", "-bt", "someone@far.example.test"])
    near = outbound.exec(["exim", "-bt", "someone@near.example.test"])
    assert far.exit_code == 2
    assert b"undeliverable" in far.output
    assert b"192.0.2.1" not in far.output
    assert near.exit_code == 0
    assert lab.info.hosts["mx"].encode() in near.output


def test_misconfigured_spec_gives_a_lab_that_misbehaves_as_asked(mailprobe_lab_factory):
    spec_file = Path(__file__).parents[2] / "scenarios" / "labs" / "misconfigured.yaml"
    info = mailprobe_lab_factory(LabSpec.from_yaml(spec_file)).info
    source = (info.client_ips["unauthorized"], 0)
    with smtplib.SMTP(info.hosts["mx"], info.ports["smtp"], source_address=source, timeout=10) as s:
        s.ehlo(f"client-b.{info.domain}")
        assert s.verify(info.user)[0] in (250, 252)  # VRFY on
        s.mail(info.user)
        assert s.rcpt("someone@elsewhere.test")[0] == 250  # open relay
        s.rset()
        with pytest.raises(ssl.SSLCertVerificationError, match="expired"):
            s.starttls(context=mailtools.tls_context(info))
    txt = dns.query.udp(
        dns.message.make_query(f"old._domainkey.{info.domain}", "TXT"),
        info.resolver_ip,
        port=info.resolver_port,
        timeout=2,
    )
    record = b"".join(txt.answer[0][0].strings).decode()
    assert "t=y" in record
