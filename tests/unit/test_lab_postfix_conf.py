"""The postfix lab flavour's rendered files: Postfix, OpenDKIM, OpenDMARC, policyd-spf (pure:
no containers)."""

from __future__ import annotations

import re
import stat

import pytest

from probes.lab import opendkim_conf, opendmarc_conf, postfix_conf
from probes.lab.image import image_packages
from probes.lab.spec import EximSpec, LabSpec, LabSpecError, PortsSpec, SelectorSpec, TlsSpec

BLOCK = "127.88.7.0/24"
PASSWORD = "Pw-unit-postfix-9f2e"


def _spec(**kwargs) -> LabSpec:
    kwargs.setdefault("block", BLOCK)
    kwargs.setdefault("mta", "postfix")
    spec = LabSpec(**kwargs)
    spec.validate()
    return spec


def _main(spec: LabSpec, role: str) -> dict[str, str]:
    text = postfix_conf.main_cf(spec, role)
    return dict((k.strip(), v.strip()) for k, v in re.findall(r"^([^#\s][^=]*)=(.*)$", text, re.M))


def _services(spec: LabSpec, role: str) -> dict[str, list[str]]:
    """master.cf inet services: "ip:port" -> its -o options."""
    found: dict[str, list[str]] = {}
    current = None
    for line in postfix_conf.master_cf(spec, role).splitlines():
        if re.match(r"^\S+:\d+\s+inet\s", line):
            current = line.split()[0]
            found[current] = []
        elif line.startswith("  -o ") and current:
            found[current].append(line[5:])
        else:
            current = None
    return found


def _conf(text: str) -> dict[str, str]:
    return dict(
        line.split(None, 1) for line in text.splitlines() if line and not line.startswith("#")
    )


# ----- flavour registry -----------------------------------------------------------------------
def test_unsupported_names_expn_and_vrfy_only():
    assert postfix_conf.unsupported(_spec()) == []
    toggled = LabSpec(
        mta="postfix",
        block=BLOCK,
        exim=EximSpec(open_relay=True, vrfy=True, expn=True, auth_before_tls=True),
        tls=TlsSpec(min_version="TLSv1", starttls=False, key_readable=False),
    )
    found = dict(postfix_conf.unsupported(toggled))
    assert set(found) == {"exim.expn", "exim.vrfy"}
    assert "EXPN" in found["exim.expn"] and "252" in found["exim.vrfy"]
    with pytest.raises(LabSpecError) as err:
        toggled.validate()
    assert err.value.field in ("exim.expn", "exim.vrfy")


def test_packages_make_the_postfix_image():
    packages = image_packages("postfix")
    for name in ("postfix", "opendkim", "opendmarc", "postfix-policyd-spf-python", "sasl2-bin"):
        assert name in packages
    assert "libsasl2-modules" in packages and "python3-minimal" in packages


def test_render_writes_every_file_and_the_password_only_in_a_secret_file(tmp_path):
    spec = _spec()
    for role in ("mx", "outbound"):
        postfix_conf.render(spec, tmp_path, role, PASSWORD)
    mx = {p.name for p in (tmp_path / "mx").iterdir()}
    assert {
        "main.cf",
        "master.cf",
        "start.sh",
        "sasl-smtpd.conf",
        "sasl-password",
        "dns-reply-filter",
        "policyd-spf.conf",
        "opendkim.conf",
        "opendkim-internal-hosts",
        "opendkim-unbound.conf",
        "opendmarc.conf",
        "opendmarc-ignore-hosts",
    } <= mx
    outbound = {p.name for p in (tmp_path / "outbound").iterdir()}
    assert "opendmarc.conf" not in outbound and "policyd-spf.conf" not in outbound
    for role in ("mx", "outbound"):
        secret = tmp_path / role / "sasl-password"
        assert secret.read_text() == PASSWORD
        assert stat.S_IMODE(secret.stat().st_mode) & 0o077 == 0
        for path in (tmp_path / role).iterdir():
            if path.name != "sasl-password":
                assert PASSWORD not in path.read_text(), path.name


def test_render_refuses_other_roles(tmp_path):
    with pytest.raises(ValueError):
        postfix_conf.render(_spec(), tmp_path, "mailbox", PASSWORD)


# ----- main.cf / master.cf ----------------------------------------------------------------------
def test_mx_names_itself_delivers_the_lab_domain_over_lmtp_and_refuses_relaying():
    spec = _spec()
    main = _main(spec, "mx")
    assert main["myhostname"] == "mx.example.test"
    assert main["smtp_bind_address"] == main["lmtp_bind_address"] == spec.address("mx")
    assert main["maillog_file"] == "/dev/stdout"
    assert main["mydestination"] == "" and main["mynetworks"] == ""
    assert main["virtual_mailbox_domains"] == "example.test"
    assert main["virtual_mailbox_maps"] == "inline:{ user@example.test=ok }"
    for alias in ("postmaster", "abuse", "dmarc-reports", "tls-reports"):
        assert f"{{{alias}@example.test=user@example.test}}" in main["virtual_alias_maps"]
    lmtp = f"lmtp:inet:[{spec.lmtp_address}]:{spec.ports.lmtp}"
    assert main["virtual_transport"] == lmtp
    assert main["smtpd_relay_restrictions"] == (
        "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination"
    )
    assert "check_policy_service unix:private/policy-spf" in main["smtpd_recipient_restrictions"]
    assert main["smtpd_milters"] == (
        f"unix:{postfix_conf.DKIM_SOCKET}, unix:{postfix_conf.DMARC_SOCKET}"
    )
    assert main["disable_vrfy_command"] == "yes"


def test_outbound_relays_for_the_authorized_client_and_signs_via_opendkim_only():
    spec = _spec()
    main = _main(spec, "outbound")
    assert main["myhostname"] == "outbound.example.test"
    assert main["mynetworks"] == f"{spec.address('authorized')}/32"
    assert main["smtpd_relay_restrictions"] == (
        "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination"
    )
    assert main["smtpd_milters"] == f"unix:{postfix_conf.DKIM_SOCKET}"
    assert main["smtp_bind_address"] == spec.address("outbound")
    assert main["smtp_host_lookup"] == "dns"
    assert "virtual_transport" not in main


def test_open_relay_toggle_puts_every_client_in_mynetworks():
    spec = _spec(exim=EximSpec(open_relay=True))
    for role in ("mx", "outbound"):
        main = _main(spec, role)
        assert main["mynetworks"] == "0.0.0.0/0"
        # Postfix will not start without reject_unauth_destination in its relay rules.
        assert main["smtpd_relay_restrictions"].endswith("reject_unauth_destination")


def test_services_bind_the_role_address_on_the_spec_ports():
    spec = _spec(ports=PortsSpec(smtp=2525, submissions=4650, submission=5870))
    ip = spec.address("mx")
    mx = _services(spec, "mx")
    assert set(mx) == {f"{ip}:2525", f"{ip}:4650", f"{ip}:5870"}
    assert "smtpd_tls_wrappermode=yes" in mx[f"{ip}:4650"]
    assert "smtpd_tls_security_level=encrypt" in mx[f"{ip}:4650"]
    out = _services(spec, "outbound")
    oip = spec.address("outbound")
    assert set(out) == {
        f"{oip}:{spec.ports.outbound_smtp}",
        f"{oip}:{spec.ports.outbound_submission}",
    }
    # Postfix's own services run without chroot.
    master = postfix_conf.master_cf(spec, "mx")
    for line in master.splitlines():
        if re.match(r"^\S+\s+(unix|inet|unix-dgram)\s", line):
            assert line.split()[4] == "n", line
    assert "postlog   unix-dgram" in master
    assert "argv=/usr/bin/policyd-spf" in master
    assert "policyd-spf" not in postfix_conf.master_cf(spec, "outbound")


def test_auth_only_after_tls_and_never_on_25_by_default():
    spec = _spec()
    main = _main(spec, "mx")
    assert main["smtpd_tls_auth_only"] == "yes"
    assert main["smtpd_sasl_auth_enable"] == "no"
    ip = spec.address("mx")
    mx = _services(spec, "mx")
    assert mx[f"{ip}:25"] == ["smtpd_sasl_auth_enable=no"]
    assert "smtpd_sasl_auth_enable=yes" in mx[f"{ip}:587"]
    assert "smtpd_sasl_auth_enable=yes" in mx[f"{ip}:465"]


def test_auth_before_tls_advertises_auth_everywhere():
    spec = _spec(exim=EximSpec(auth_before_tls=True))
    assert _main(spec, "mx")["smtpd_tls_auth_only"] == "no"
    for role in ("mx", "outbound"):
        for options in _services(spec, role).values():
            assert "smtpd_sasl_auth_enable=yes" in options


def test_tls_defaults_and_toggles():
    main = _main(_spec(), "mx")
    assert main["smtpd_tls_security_level"] == "may"
    assert main["smtpd_tls_protocols"] == main["smtpd_tls_mandatory_protocols"] == ">=TLSv1.2"
    assert main["smtpd_tls_key_file"] == "/etc/postfix/tls/server.key"
    assert "tls_medium_cipherlist" not in main

    legacy = _main(_spec(tls=TlsSpec(min_version="TLSv1")), "mx")
    assert legacy["smtpd_tls_protocols"] == ">=TLSv1"
    assert "@SECLEVEL=0" in legacy["tls_medium_cipherlist"]
    assert legacy["smtpd_tls_ciphers"] == legacy["smtpd_tls_mandatory_ciphers"] == "medium"
    assert _main(_spec(tls=TlsSpec(min_version="TLSv1.3")), "mx")["smtpd_tls_protocols"] == (
        ">=TLSv1.3"
    )

    assert _main(_spec(tls=TlsSpec(starttls=False)), "mx")["smtpd_tls_security_level"] == "none"
    unreadable = _main(_spec(tls=TlsSpec(key_readable=False)), "outbound")
    assert unreadable["smtpd_tls_key_file"] == "/etc/postfix/tls/unreadable.key"


def test_dns_reply_filter_keeps_only_loopback_addresses():
    text = postfix_conf.DNS_REPLY_FILTER
    assert "IGNORE" in text and "127\\." in text
    assert _main(_spec(), "outbound")["smtp_dns_reply_filter"] == (
        "regexp:/etc/postfix/dns-reply-filter"
    )


def test_policyd_spf_reports_as_mx_and_checks_loopback_clients():
    conf = dict(
        (k.strip(), v.strip())
        for k, v in (
            line.split("=", 1)
            for line in postfix_conf.policyd_spf_conf(_spec()).splitlines()
            if "=" in line and not line.startswith("#")
        )
    )
    assert conf["Header_Type"] == "AR"
    assert conf["Authserv_Id"] == "mx.example.test"
    assert "127." not in conf["skip_addresses"]
    assert conf["Mail_From_reject"] == "False" and conf["PermError_reject"] == "False"


def test_start_script_feeds_the_password_on_stdin_and_waits_for_the_milters():
    spec = _spec()
    script = postfix_conf.start_sh(spec, "mx")
    assert script.startswith("#!/bin/sh\nset -e\n")
    assert "saslpasswd2 -p -c" in script and "< /lab/mx/sasl-password" in script
    assert "opendkim -x" in script and "opendmarc -c" in script
    assert f"[ -S {postfix_conf.DMARC_SOCKET} ]" in script
    assert script.rstrip().endswith("exec postfix start-fg")
    outbound = postfix_conf.start_sh(spec, "outbound")
    assert "opendmarc" not in outbound and "policyd-spf" not in outbound


# ----- OpenDKIM / OpenDMARC -----------------------------------------------------------------
def test_opendkim_signs_on_outbound_with_the_signer():
    spec = _spec(
        selectors=(SelectorSpec(name="s1"), SelectorSpec(name="s2")), signing_selector="s2"
    )
    conf = _conf(opendkim_conf.opendkim_conf(spec, "outbound", "/run/x/dkim.sock"))
    assert conf["Mode"] == "s"
    assert conf["Socket"] == "local:/run/x/dkim.sock"
    assert conf["Domain"] == "example.test" and conf["Selector"] == "s2"
    assert conf["KeyFile"] == "/etc/opendkim/keys/example.test.s2.key"
    assert conf["Canonicalization"] == "relaxed/relaxed"
    assert conf["SignatureAlgorithm"] == "rsa-sha256"
    assert conf["MinimumKeyBits"] == "1024"
    hosts = opendkim_conf.opendkim_files(spec, "outbound")["internal-hosts"]
    assert hosts.split() == [spec.address("authorized")]


def test_opendkim_verifies_on_mx_with_the_mx_authserv_id_and_never_rejects():
    spec = _spec()
    conf = _conf(opendkim_conf.opendkim_conf(spec, "mx"))
    assert conf["Mode"] == "v"
    assert conf["AuthservID"] == "mx.example.test"
    assert conf["AlwaysAddARHeader"] == "yes"
    assert conf["MinimumKeyBits"] == "1024"
    assert all(v == "accept" for k, v in conf.items() if k.startswith("On-"))
    assert "KeyFile" not in conf
    assert (
        spec.address("authorized") not in opendkim_conf.opendkim_files(spec, "mx")["internal-hosts"]
    )


def test_opendkim_key_type_and_weak_keys():
    ed = _spec(selectors=(SelectorSpec(key_type="ed25519"),))
    assert _conf(opendkim_conf.opendkim_conf(ed, "outbound"))["SignatureAlgorithm"] == (
        "ed25519-sha256"
    )
    weak = _spec(selectors=(SelectorSpec(bits=768),))
    # The outbound signs with the weak key it was given; the mx still refuses it (RFC 8301).
    assert _conf(opendkim_conf.opendkim_conf(weak, "outbound"))["MinimumKeyBits"] == "768"
    assert _conf(opendkim_conf.opendkim_conf(weak, "mx"))["MinimumKeyBits"] == "1024"


def test_opendkim_resolves_only_through_the_lab_dns():
    spec = _spec(ports=PortsSpec(dns=5353))
    conf = _conf(opendkim_conf.opendkim_conf(spec, "mx"))
    assert conf["ResolverConfiguration"] == "/etc/opendkim/unbound.conf"
    unbound = opendkim_conf.opendkim_files(spec, "mx")["unbound.conf"]
    assert f"forward-addr: {spec.address('dns')}@5353" in unbound
    assert 'local-zone: "test." nodefault' in unbound
    assert 'module-config: "iterator"' in unbound


def test_opendkim_start_lines_install_keys_privately_and_share_the_socket_with_a_group():
    lines = opendkim_conf.start_lines("mx", "/run/opendkim/opendkim.sock", socket_group="postfix")
    assert "install -m 0600 -o opendkim -g opendkim" in lines
    assert "-g postfix /run/opendkim" in lines
    assert lines.rstrip().endswith("&")
    assert "-g opendkim /run/opendkim" in opendkim_conf.start_lines("outbound")


def test_opendmarc_trusts_only_the_mx_results_and_delivers_failures():
    conf = _conf(opendmarc_conf.opendmarc_conf(_spec(), "/run/d/dmarc.sock"))
    assert conf["AuthservID"] == "mx.example.test"
    assert conf["TrustedAuthservIDs"] == "mx.example.test"
    assert conf["Socket"] == "local:/run/d/dmarc.sock"
    assert conf["RejectFailures"] == "false"
    assert conf["SPFSelfValidate"] == "false"
    assert conf["IgnoreAuthenticatedClients"] == "true"
    assert conf["IgnoreHosts"] == "/etc/opendmarc/ignore-hosts"


def test_syslog_lines_bind_dev_log():
    lines = opendkim_conf.syslog_lines()
    assert "/dev/log" in lines and lines.count("'") == 2
