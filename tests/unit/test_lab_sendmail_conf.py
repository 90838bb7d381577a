"""The sendmail lab flavour's rendered files (pure: no containers, no m4)."""

from __future__ import annotations

import re
import stat

import pytest

from probes.lab import sendmail_conf
from probes.lab.image import image_packages
from probes.lab.spec import EximSpec, LabSpec, PortsSpec, SelectorSpec, TlsSpec

BLOCK = "127.88.5.0/24"
PASSWORD = "Pw-unit-sendmail-3c1d"


def _spec(**kwargs) -> LabSpec:
    kwargs.setdefault("block", BLOCK)
    kwargs.setdefault("mta", "sendmail")
    spec = LabSpec(**kwargs)
    spec.validate()
    return spec


def _defines(mc: str) -> dict[str, str]:
    return dict(re.findall(r"^define\(`(\w+)', `(.*)'\)dnl$", mc, re.M))


def _daemons(mc: str) -> dict[str, dict[str, str]]:
    found = {}
    for body in re.findall(r"^DAEMON_OPTIONS\(`(.*)'\)dnl$", mc, re.M):
        opts = dict(part.strip().split("=", 1) for part in body.split(","))
        found[opts["Name"]] = opts
    return found


def test_every_toggle_but_an_unreadable_key_is_expressible():
    assert sendmail_conf.unsupported(_spec()) == []
    toggled = _spec(
        exim=EximSpec(open_relay=True, vrfy=True, expn=True, auth_before_tls=True),
        tls=TlsSpec(min_version="TLSv1", starttls=False),
    )
    assert sendmail_conf.unsupported(toggled) == []
    unreadable = LabSpec(block=BLOCK, mta="sendmail", tls=TlsSpec(key_readable=False))
    ((field, reason),) = sendmail_conf.unsupported(unreadable)
    assert field == "tls.key_readable" and "454" in reason


def test_packages_make_the_sendmail_image():
    packages = image_packages("sendmail")
    for name in ("sendmail-bin", "sendmail-cf", "m4", "opendkim", "pyspf-milter", "sasl2-bin"):
        assert name in packages


def test_mx_listens_on_its_address_with_tls_on_465_and_auth_never_on_25():
    spec = _spec()
    daemons = _daemons(sendmail_conf.sendmail_mc(spec, "mx"))
    ip = spec.address("mx")
    assert {d["Addr"] for d in daemons.values()} == {ip}
    assert {n: d["Port"] for n, d in daemons.items()} == {"MTA": "25", "MSA": "587", "SMTPS": "465"}
    assert "A" in daemons["MTA"]["M"] and "S" not in daemons["MTA"]["M"]
    assert "A" not in daemons["MSA"]["M"] and "a" not in daemons["MSA"]["M"]
    assert "s" in daemons["SMTPS"]["M"]


def test_outbound_listens_on_25_and_587_only():
    spec = _spec(ports=PortsSpec(outbound_smtp=2525, outbound_submission=2587))
    daemons = _daemons(sendmail_conf.sendmail_mc(spec, "outbound"))
    assert {n: d["Port"] for n, d in daemons.items()} == {"MTA": "2525", "MSA": "2587"}
    assert {d["Addr"] for d in daemons.values()} == {spec.address("outbound")}


def test_identity_and_startup_stall_guards():
    mc = sendmail_conf.sendmail_mc(_spec(domain="lab.test"), "mx")
    defines = _defines(mc)
    assert defines["confDOMAIN_NAME"] == "mx.lab.test"
    assert defines["confTO_IDENT"] == "0"
    assert defines["confDONT_PROBE_INTERFACES"] == "True"
    assert defines["confSERVICE_SWITCH_FILE"].endswith("lab-service.switch")
    assert "hosts\tdns" in sendmail_conf.SERVICE_SWITCH
    assert "files" not in sendmail_conf.SERVICE_SWITCH.split("hosts", 1)[1].splitlines()[0]


def test_auth_only_after_tls_unless_the_spec_asks_otherwise():
    mc = sendmail_conf.sendmail_mc(_spec(), "mx")
    assert _defines(mc)["confAUTH_OPTIONS"] == "A,p"
    assert _defines(mc)["confAUTH_MECHANISMS"] == "PLAIN LOGIN"
    early = sendmail_conf.sendmail_mc(_spec(exim=EximSpec(auth_before_tls=True)), "mx")
    assert "p" not in _defines(early)["confAUTH_OPTIONS"].split(",")
    assert "A" not in _daemons(early)["MTA"]["M"]


def test_starttls_off_drops_it_on_25_and_587_not_on_465():
    daemons = _daemons(sendmail_conf.sendmail_mc(_spec(tls=TlsSpec(starttls=False)), "mx"))
    assert "S" in daemons["MTA"]["M"] and "S" in daemons["MSA"]["M"]
    assert "S" not in daemons["SMTPS"]["M"]


def test_unreadable_key_points_at_a_missing_file():
    ok = _defines(sendmail_conf.sendmail_mc(_spec(), "mx"))
    # Refused by validation (unsupported), but render does what it is asked.
    unreadable = LabSpec(block=BLOCK, mta="sendmail", tls=TlsSpec(key_readable=False))
    bad = _defines(sendmail_conf.sendmail_mc(unreadable, "mx"))
    assert ok["confSERVER_KEY"].endswith("/server.key")
    assert bad["confSERVER_KEY"].endswith("/unreadable.key")


@pytest.mark.parametrize(
    ("floor", "disabled", "seclevel0"),
    [
        ("TLSv1", [], True),
        ("TLSv1.1", ["TLSv1"], True),
        ("TLSv1.2", ["TLSv1", "TLSv1_1"], False),
        ("TLSv1.3", ["TLSv1", "TLSv1_1", "TLSv1_2"], False),
    ],
)
def test_tls_floor(floor, disabled, seclevel0):
    defines = _defines(sendmail_conf.sendmail_mc(_spec(tls=TlsSpec(min_version=floor)), "mx"))
    options = defines["confSERVER_SSL_OPTIONS"].split()
    assert sorted(o for o in options if "TLS" in o) == sorted(f"+SSL_OP_NO_{v}" for v in disabled)
    assert ("@SECLEVEL=0" in defines["confCIPHER_LIST"]) is seclevel0


def test_vrfy_and_expn_follow_the_toggles():
    flags = _defines(sendmail_conf.sendmail_mc(_spec(), "mx"))["confPRIVACY_FLAGS"].split(",")
    assert "novrfy" in flags and "noexpn" in flags
    spec = _spec(exim=EximSpec(vrfy=True, expn=True))
    flags = _defines(sendmail_conf.sendmail_mc(spec, "mx"))["confPRIVACY_FLAGS"].split(",")
    assert "novrfy" not in flags and "noexpn" not in flags


def test_open_relay_is_promiscuous_and_drops_the_localhost_rule():
    closed = sendmail_conf.sendmail_mc(_spec(), "mx")
    assert "promiscuous_relay" not in closed
    assert "SLocal_check_rcpt" in closed
    opened = sendmail_conf.sendmail_mc(_spec(exim=EximSpec(open_relay=True)), "mx")
    assert "FEATURE(`promiscuous_relay')dnl" in opened
    assert "SLocal_check_rcpt" not in opened


def test_localhost_rule_lines_are_tab_separated_sendmail_rules():
    for line in sendmail_conf.LOCALHOST_NO_RELAY.splitlines()[1:]:
        lhs, rhs = line.split("\t")
        assert lhs.startswith("R") and rhs.startswith("$")


def test_mx_milters_and_outbound_milter():
    mx = sendmail_conf.sendmail_mc(_spec(), "mx")
    assert "INPUT_MAIL_FILTER(`opendkim', `S=local:/run/opendkim/opendkim.sock" in mx
    assert "INPUT_MAIL_FILTER(`spf', `S=local:" in mx
    out = sendmail_conf.sendmail_mc(_spec(), "outbound")
    assert "INPUT_MAIL_FILTER(`opendkim'" in out and "`spf'" not in out


def test_lmtp_mailer_and_mailertable_reach_the_lab_mailbox():
    spec = _spec(ports=PortsSpec(lmtp=2424))
    mc = sendmail_conf.sendmail_mc(spec, "mx")
    mailer = re.search(r"^Mlmtp,.*?A=TCP \$h (\d+)$", mc, re.M | re.S)
    assert mailer and mailer.group(1) == "2424"
    assert re.search(r"F=\w*z", mailer.group(0)) and "P=[IPC]" in mailer.group(0)
    maps = sendmail_conf.maps(spec, "mx")
    assert maps["mailertable"] == f"example.test\tlmtp:[{spec.lmtp_address}]\n"


def test_mx_maps_aliases_and_refuses_unknown_users():
    maps = sendmail_conf.maps(_spec(user="alice"), "mx")
    virt = dict(line.split("\t") for line in maps["virtusertable"].splitlines())
    for name in sendmail_conf.ALIASES:
        assert virt[f"{name}@example.test"] == "alice@example.test"
    access = dict(line.split("\t") for line in maps["access"].splitlines())
    assert access["To:alice@example.test"] == "OK"
    assert access["To:example.test"].startswith("ERROR:5.1.1:550")
    assert "postmaster: alice@example.test" in maps["aliases"]


def test_outbound_relays_for_the_authorized_client_only():
    spec = _spec()
    access = sendmail_conf.maps(spec, "outbound")["access"]
    assert access == f"Connect:{spec.address('authorized')}\tRELAY\n"
    mc = sendmail_conf.sendmail_mc(spec, "outbound")
    assert f"CLIENT_OPTIONS(`Family=inet, Addr={spec.address('outbound')}')dnl" in mc
    assert _defines(mc)["ESMTP_MAILER_ARGS"] == "TCP $h 25"
    assert "virtusertable" not in mc and "mailertable" not in mc


def test_spf_milter_checks_loopback_clients_and_names_the_mx():
    conf = sendmail_conf.pyspf_milter_conf(_spec(domain="lab.test"))
    settings = dict(line.split(" = ", 1) for line in conf.splitlines() if " = " in line)
    assert settings["Authserv_Id"] == "mx.lab.test"
    assert settings["skip_addresses"] == "::1/128"
    assert not settings["InternalHosts"].startswith("127.")
    assert settings["Mail_From_reject"] == "False"


def test_render_writes_role_dirs_and_keeps_the_password_secret(tmp_path):
    spec = _spec(selectors=(SelectorSpec(name="s1"),))
    for role in ("mx", "outbound"):
        sendmail_conf.render(spec, tmp_path, role, PASSWORD)
        out = tmp_path / role
        for name in ("sendmail.mc", "start.sh", "opendkim.conf", "access", "sasl-password"):
            assert (out / name).exists(), name
        secret = out / "sasl-password"
        assert secret.read_text() == PASSWORD
        assert stat.S_IMODE(secret.stat().st_mode) & 0o077 == 0
        start = (out / "start.sh").read_text()
        assert PASSWORD not in start and PASSWORD not in (out / "sendmail.mc").read_text()
        assert "saslpasswd2 -p" in start and f"< /lab/{role}/sasl-password" in start
        assert start.rstrip().endswith("exec /usr/sbin/sendmail -bD -q15s")
    assert (tmp_path / "mx" / "pyspf-milter.conf").exists()
    assert not (tmp_path / "outbound" / "pyspf-milter.conf").exists()
    assert "Selector s1" in (tmp_path / "outbound" / "opendkim.conf").read_text()


def test_render_refuses_other_roles(tmp_path):
    with pytest.raises(ValueError):
        sendmail_conf.render(_spec(), tmp_path, "mailbox", PASSWORD)


def test_a_zone_address_outside_loopback_is_refused_naming_the_record():
    spec = LabSpec(
        block=BLOCK,
        mta="sendmail",
        extra_records=("far-host A 192.0.2.1", "near A {mx}", 'txt TXT "A 10.0.0.1"'),
        extra_zones={"other.test": ("@ AAAA 2001:db8::1", "@ A 127.1.2.3")},
    )
    fields = [field for field, _ in sendmail_conf.unsupported(spec)]
    assert fields == ["extra_records[0]", "extra_zones.other.test[0]"]
