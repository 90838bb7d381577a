"""Rendered server configs (Exim, Dovecot, Knot) and the lab directory written from a spec."""

from __future__ import annotations

import os
import re
import stat

import dns.zone
import pytest

from probes.lab import dovecot_conf, exim_conf, knot_conf
from probes.lab.render import render_lab_dir
from probes.lab.spec import DovecotSpec, EximSpec, LabSpec, PortsSpec, SelectorSpec, TlsSpec
from probes.lab.zones import Zone, forward_zone, reverse_zones

BLOCK = "127.88.3.0/24"
PASSWORD = "Pw-unit-9f3e1c7a"


def _spec(**kwargs) -> LabSpec:
    kwargs.setdefault("block", BLOCK)
    spec = LabSpec(**kwargs)
    spec.validate()
    return spec


def _settings(text: str) -> dict[str, str]:
    """Top-level `name = value` lines (the first occurrence of each name)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = re.match(r"^([a-z_0-9 ]+?)\s*=\s?(.*)$", line)
        if m and not line.startswith((" ", "\t", "#")):
            out.setdefault(m.group(1).strip(), m.group(2).strip())
    return out


def _indented(text: str, name: str) -> list[str]:
    """Values of indented `name = value` lines (options inside drivers/blocks)."""
    return [m.group(1).strip() for m in re.finditer(rf"(?m)^\s+{name}\s*=\s*(.*)$", text)]


# ----- Exim -----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["mx", "outbound"])
def test_exim_conf_has_no_unfilled_placeholders(role):
    spec = _spec(exim=EximSpec(open_relay=True, vrfy=True, expn=True, auth_before_tls=True))
    for s in (_spec(), spec):
        assert "@@" not in exim_conf.exim_conf(s, role)


@pytest.mark.parametrize("role", ["mx", "outbound"])
def test_exim_binds_only_its_own_address(role):
    spec = _spec()
    text = exim_conf.exim_conf(spec, role)
    settings = _settings(text)
    assert settings["local_interfaces"] == f"<; {spec.address(role)}"
    assert settings["primary_hostname"] == f"{role}.example.test"
    # Outgoing connections (remote SMTP and LMTP) leave from the role's own address too.
    assert set(_indented(text, "interface")) == {spec.address(role)}


def test_exim_ports_follow_the_spec():
    spec = _spec(
        ports=PortsSpec(
            smtp=20025,
            submissions=20465,
            submission=20587,
            outbound_smtp=21025,
            outbound_submission=21587,
            lmtp=20024,
        )
    )
    mx = exim_conf.exim_conf(spec, "mx")
    out = exim_conf.exim_conf(spec, "outbound")
    assert _settings(mx)["daemon_smtp_ports"] == "20025 : 20465 : 20587"
    assert _settings(mx)["tls_on_connect_ports"] == "20465"
    assert _settings(out)["daemon_smtp_ports"] == "21025 : 21587"
    assert _settings(out)["tls_on_connect_ports"] == ""
    assert "20024" in _indented(mx, "port")
    assert "20025" in _indented(out, "port")  # outbound delivers to the MX's SMTP port


@pytest.mark.parametrize("role", ["mx", "outbound"])
def test_exim_advertises_starttls_unless_disabled(role):
    on = _settings(exim_conf.exim_conf(_spec(), role))
    off = _settings(exim_conf.exim_conf(_spec(tls=TlsSpec(starttls=False)), role))
    assert on["tls_advertise_hosts"] == "*"
    assert off["tls_advertise_hosts"] == ""


@pytest.mark.parametrize("role", ["mx", "outbound"])
def test_exim_vrfy_acl_only_when_enabled(role):
    assert "acl_smtp_vrfy" not in _settings(exim_conf.exim_conf(_spec(), role))
    enabled = _settings(exim_conf.exim_conf(_spec(exim=EximSpec(vrfy=True)), role))
    assert enabled["acl_smtp_vrfy"] == "accept"
    assert "acl_smtp_expn" not in enabled


@pytest.mark.parametrize("role", ["mx", "outbound"])
def test_exim_expn_acl_only_when_enabled(role):
    assert "acl_smtp_expn" not in _settings(exim_conf.exim_conf(_spec(), role))
    enabled = _settings(exim_conf.exim_conf(_spec(exim=EximSpec(expn=True)), role))
    assert enabled["acl_smtp_expn"] == "accept"


@pytest.mark.parametrize("role", ["mx", "outbound"])
def test_exim_open_relay_line_only_when_enabled(role):
    pattern = re.compile(r"(?m)^\s+# open relay: lab spec exim.open_relay\n\s+accept$")
    assert not pattern.search(exim_conf.exim_conf(_spec(), role))
    text = exim_conf.exim_conf(_spec(exim=EximSpec(open_relay=True)), role)
    assert len(pattern.findall(text)) == 1


@pytest.mark.parametrize("role", ["mx", "outbound"])
def test_exim_auth_advertised_everywhere_only_with_auth_before_tls(role):
    default = _settings(exim_conf.exim_conf(_spec(), role))["auth_advertise_hosts"]
    assert default != "*"
    assert "$tls_in_cipher" in default
    early = _spec(exim=EximSpec(auth_before_tls=True))
    assert _settings(exim_conf.exim_conf(early, role))["auth_advertise_hosts"] == "*"


def test_exim_tls_key_path_depends_on_key_readable():
    ok = _settings(exim_conf.exim_conf(_spec(), "mx"))["tls_privatekey"]
    broken = _settings(exim_conf.exim_conf(_spec(tls=TlsSpec(key_readable=False)), "mx"))
    assert ok != broken["tls_privatekey"]


@pytest.mark.parametrize("version", ["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"])
def test_exim_tls_priority_follows_min_version(version):
    text = exim_conf.exim_conf(_spec(tls=TlsSpec(min_version=version)), "mx")
    assert _settings(text)["tls_require_ciphers"] == exim_conf.GNUTLS_PRIORITY[version]


def test_outbound_signs_with_the_signing_selector_and_canon():
    spec = _spec(
        selectors=(SelectorSpec(name="first"), SelectorSpec(name="second", key_type="ed25519")),
        signing_selector="second",
    )
    text = exim_conf.exim_conf(spec, "outbound")
    assert _indented(text, "dkim_selector") == ["second"]
    assert _indented(text, "dkim_canon") == ["relaxed"]
    assert len(_indented(text, "dkim_private_key")) == 1
    assert len(_indented(text, "dkim_domain")) == 1


def test_outbound_signs_with_the_first_selector_by_default():
    spec = _spec(selectors=(SelectorSpec(name="alpha"), SelectorSpec(name="beta")))
    assert _indented(exim_conf.exim_conf(spec, "outbound"), "dkim_selector") == ["alpha"]


def test_mx_does_not_sign():
    assert _indented(exim_conf.exim_conf(_spec(), "mx"), "dkim_selector") == []


def test_mx_is_local_for_the_domain_and_outbound_relays_for_the_authorized_client():
    spec = _spec()
    mx = _settings(exim_conf.exim_conf(spec, "mx"))
    out = _settings(exim_conf.exim_conf(spec, "outbound"))
    assert mx["domainlist local_domains"] == "example.test"
    assert out["domainlist local_domains"] == ""
    assert mx["hostlist relay_from_hosts"] == "<;"
    assert out["hostlist relay_from_hosts"] == f"<; {spec.address('authorized')}"
    assert spec.address("unauthorized") not in exim_conf.exim_conf(spec, "outbound")


@pytest.mark.parametrize("role", ["mx", "outbound"])
def test_exim_start_script_names_its_role(role):
    script = exim_conf.start_sh(role)
    assert script.startswith("#!/bin/sh")
    assert f"/lab/{role}/exim4.conf" in script
    assert f"/lab/tls/{role}.key" in script


# ----- Dovecot --------------------------------------------------------------------------------


def test_dovecot_disables_plaintext_auth_by_default():
    assert _settings(dovecot_conf.dovecot_conf(_spec()))["disable_plaintext_auth"] == "yes"


def test_dovecot_allows_plaintext_auth_when_asked():
    spec = _spec(dovecot=DovecotSpec(plaintext_auth=True))
    assert _settings(dovecot_conf.dovecot_conf(spec))["disable_plaintext_auth"] == "no"


def test_dovecot_listens_on_the_mailbox_address():
    spec = _spec()
    text = dovecot_conf.dovecot_conf(spec)
    assert _settings(text)["listen"] == spec.address("mailbox")
    assert _indented(text, "address") == [spec.address("mailbox")]  # the LMTP listener


@pytest.mark.parametrize("version", ["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"])
def test_dovecot_ssl_min_protocol_follows_the_spec(version):
    text = dovecot_conf.dovecot_conf(_spec(tls=TlsSpec(min_version=version)))
    assert _settings(text)["ssl_min_protocol"] == version


def test_dovecot_ports_follow_the_spec():
    ports = PortsSpec(imap=20143, imaps=20993, pop3=20110, pop3s=20995, lmtp=20024)
    text = dovecot_conf.dovecot_conf(_spec(ports=ports))
    assert sorted(_indented(text, "port")) == ["20024", "20110", "20143", "20993", "20995"]
    assert "@@" not in text


def test_dovecot_postmaster_address_is_in_the_lab_domain():
    text = dovecot_conf.dovecot_conf(_spec())
    assert _indented(text, "postmaster_address") == ["postmaster@example.test"]


def test_dovecot_config_does_not_pretend_to_switch_starttls_off():
    # Dovecot appends STARTTLS itself whenever ssl is on; an imap_capability override would
    # only hide the other capabilities. tls.starttls is an Exim setting (docs/lab.md).
    off = dovecot_conf.dovecot_conf(_spec(tls=TlsSpec(starttls=False)))
    assert _indented(off, "imap_capability") == []


# ----- Knot -----------------------------------------------------------------------------------


def _zones(spec: LabSpec) -> list[Zone]:
    return [forward_zone(spec, {s.name: "AAAA" for s in spec.selectors}), *reverse_zones(spec)]


def test_knot_listens_on_the_dns_address_and_port():
    spec = _spec(ports=PortsSpec(dns=20053))
    text = knot_conf.knot_conf(spec, _zones(spec))
    (listen,) = re.findall(r"(?m)^\s+listen:\s*(.*)$", text)
    assert listen.strip("[] ") == f"{spec.address('dns')}@20053"


def test_knot_serves_every_zone_from_its_file():
    spec = _spec()
    zones = _zones(spec)
    text = knot_conf.knot_conf(spec, zones)
    domains = re.findall(r"(?m)^\s+- domain:\s*(\S+)$", text)
    files = re.findall(r"(?m)^\s+file:\s*(\S+)$", text)
    assert domains == [z.origin for z in zones]
    assert files == [f"{z.name}.zone" for z in zones]


# ----- the lab directory ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def lab_dir(tmp_path_factory):
    spec = _spec(selectors=(SelectorSpec(name="mail"), SelectorSpec(name="ed", key_type="ed25519")))
    root = tmp_path_factory.mktemp("lab")
    files = render_lab_dir(spec, root, PASSWORD)
    return spec, root, files


EXPECTED_FILES = [
    "ca.pem",
    "resolv.conf",
    "tls/dns.crt",
    "tls/dns.key",
    "tls/mx.crt",
    "tls/mx.key",
    "tls/outbound.crt",
    "tls/outbound.key",
    "tls/mailbox.crt",
    "tls/mailbox.key",
    "dkim/example.test.mail.key",
    "dkim/example.test.mail.dkimpy",
    "dkim/example.test.ed.key",
    "dkim/example.test.ed.dkimpy",
    "dns/example.test.zone",
    "dns/3.88.127.in-addr.arpa.zone",
    "dns/knot.conf",
    "dns/start.sh",
    "mx/exim4.conf",
    "mx/start.sh",
    "mx/users",
    "mx/passwd",
    "outbound/exim4.conf",
    "outbound/start.sh",
    "outbound/users",
    "outbound/passwd",
    "mailbox/dovecot.conf",
    "mailbox/start.sh",
    "mailbox/users",
    "files/spf-authres.py",
]

SECRET_FILES = [
    "tls/dns.key",
    "tls/mx.key",
    "tls/outbound.key",
    "tls/mailbox.key",
    "dkim/example.test.mail.key",
    "dkim/example.test.mail.dkimpy",
    "dkim/example.test.ed.key",
    "dkim/example.test.ed.dkimpy",
    "mx/passwd",
    "outbound/passwd",
    "mailbox/users",
]


def test_render_lab_dir_writes_the_expected_files(lab_dir):
    _, root, _ = lab_dir
    for rel in EXPECTED_FILES:
        assert (root / rel).is_file(), rel


def test_render_lab_dir_returns_paths_inside_the_dir(lab_dir):
    spec, root, files = lab_dir
    assert files.root == root
    assert files.ca_file == root / "ca.pem"
    assert files.resolv_conf.read_text().split()[:2] == ["nameserver", spec.address("dns")]
    assert set(files.dkim_keys) == set(files.dkimpy_keys) == {"mail", "ed"}
    for path in [*files.dkim_keys.values(), *files.dkimpy_keys.values()]:
        assert path.parent == root / "dkim"


@pytest.mark.parametrize("rel", SECRET_FILES)
def test_private_keys_and_credentials_are_owner_only(lab_dir, rel):
    _, root, _ = lab_dir
    assert stat.S_IMODE(os.stat(root / rel).st_mode) == 0o600


def test_password_only_in_credential_files(lab_dir):
    _, root, _ = lab_dir
    holders = sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and PASSWORD.encode() in p.read_bytes()
    )
    assert holders == ["mailbox/users", "mx/passwd", "outbound/passwd"]


def test_credential_files_name_the_lab_user(lab_dir):
    _, root, _ = lab_dir
    for rel in ("mx/passwd", "outbound/passwd", "mailbox/users"):
        first = (root / rel).read_text().splitlines()[0]
        assert first.startswith("user@example.test:")
        assert PASSWORD in first


def test_rendered_zone_files_parse(lab_dir):
    _, root, _ = lab_dir
    for zone_file in (root / "dns").glob("*.zone"):
        origin = zone_file.name.removesuffix(".zone") + "."
        z = dns.zone.from_text(zone_file.read_text(), origin=origin, check_origin=True)
        assert z.get_rdataset("@", "SOA") is not None


def test_rendered_configs_match_the_generators(lab_dir):
    spec, root, _ = lab_dir
    assert (root / "mx/exim4.conf").read_text() == exim_conf.exim_conf(spec, "mx")
    assert (root / "outbound/exim4.conf").read_text() == exim_conf.exim_conf(spec, "outbound")
    assert (root / "mailbox/dovecot.conf").read_text() == dovecot_conf.dovecot_conf(spec)
