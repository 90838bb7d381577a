"""The Perdition mailbox front and the Dovecot store behind it, as rendered (no containers)."""

from __future__ import annotations

import re
import stat

import pytest

from probes.lab import dovecot_conf, perdition_conf
from probes.lab.flavours import unsupported
from probes.lab.spec import TLS_VERSIONS, DovecotSpec, LabSpec, PortsSpec, TlsSpec

BLOCK = "127.88.4.0/24"
PASSWORD = "Pw-unit-perdition-5c1d"


def _spec(**kwargs) -> LabSpec:
    kwargs.setdefault("block", BLOCK)
    kwargs.setdefault("mailbox_front", "perdition")
    spec = LabSpec(**kwargs)
    spec.validate()
    return spec


def _options(conf: str) -> dict[str, str]:
    """Perdition config lines: `option value` (a bare option is a boolean set to "")."""
    out: dict[str, str] = {}
    for line in conf.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, _, value = line.partition(" ")
        out[name] = value.strip()
    return out


def _commands(start: str) -> dict[str, dict[str, str]]:
    """The perdition command lines of start.sh: program -> {--option: value}."""
    found = {}
    for line in start.splitlines():
        if line.startswith("perdition."):
            words = line.rstrip(" &").split()
            found[words[0]] = dict(zip(words[1::2], words[2::2], strict=True))
    return found


def _settings(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = re.match(r"^([a-z_0-9]+)\s*=\s?(.*)$", line)
        if m:
            out.setdefault(m.group(1), m.group(2).strip())
    return out


@pytest.fixture
def rendered(tmp_path):
    spec = _spec()
    perdition_conf.render(spec, tmp_path, "mailbox", PASSWORD)
    return spec, tmp_path


def test_render_writes_the_front_and_the_store(rendered):
    _, root = rendered
    assert sorted(p.name for p in (root / "mailbox").iterdir()) == [
        "ffdhe2048.pem",
        "perdition.conf",
        "start.sh",
    ]
    assert sorted(p.name for p in (root / "store").iterdir()) == [
        "dovecot.conf",
        "start.sh",
        "users",
    ]
    assert stat.S_IMODE((root / "store" / "users").stat().st_mode) == 0o600


def test_the_password_is_only_in_the_store_user_list(rendered):
    _, root = rendered
    holding = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
    holding = [name for name in holding if PASSWORD in (root / name).read_text()]
    assert holding == ["store/users"]


def test_one_process_per_protocol_on_the_mailbox_address_to_the_store(rendered):
    spec, root = rendered
    commands = _commands((root / "mailbox" / "start.sh").read_text())
    mailbox, store = spec.address("mailbox"), spec.address("store")
    assert commands == {
        "perdition.imap4": {
            "-f": "/etc/perdition/perdition.conf",
            "--protocol": "IMAP4",
            "--bind_address": mailbox,
            "--listen_port": "143",
            "--outgoing_server": f"{store}:143",
            "--ssl_mode": "tls_listen_force",
        },
        "perdition.imap4s": {
            "-f": "/etc/perdition/perdition.conf",
            "--protocol": "IMAP4S",
            "--bind_address": mailbox,
            "--listen_port": "993",
            "--outgoing_server": f"{store}:143",
            "--ssl_mode": "ssl_listen",
        },
        "perdition.pop3": {
            "-f": "/etc/perdition/perdition.conf",
            "--protocol": "POP3",
            "--bind_address": mailbox,
            "--listen_port": "110",
            "--outgoing_server": f"{store}:110",
            "--ssl_mode": "tls_listen_force",
        },
        "perdition.pop3s": {
            "-f": "/etc/perdition/perdition.conf",
            "--protocol": "POP3S",
            "--bind_address": mailbox,
            "--listen_port": "995",
            "--outgoing_server": f"{store}:110",
            "--ssl_mode": "ssl_listen",
        },
    }


def test_ports_follow_the_spec():
    spec = _spec(ports=PortsSpec(imap=20143, imaps=20993, pop3=20110, pop3s=20995, lmtp=20024))
    commands = _commands(perdition_conf.start_sh(spec))
    store = spec.address("store")
    listen = {prog: (c["--listen_port"], c["--outgoing_server"]) for prog, c in commands.items()}
    assert listen == {
        "perdition.imap4": ("20143", f"{store}:20143"),
        "perdition.imap4s": ("20993", f"{store}:20143"),
        "perdition.pop3": ("20110", f"{store}:20110"),
        "perdition.pop3s": ("20995", f"{store}:20110"),
    }
    conf = dovecot_conf.store_conf(spec, ("127.0.0.1/32",))
    assert "port = 20143" in conf and "port = 20110" in conf and "port = 20024" in conf


def test_start_script_stops_everything_when_one_process_exits(rendered):
    _, root = rendered
    start = (root / "mailbox" / "start.sh").read_text()
    assert 'exec /bin/bash "$0"' in start  # `wait -n` is bash's
    assert start.count("pids+=($!)") == 4
    assert "wait -n" in start and start.rstrip().endswith("exit 1")
    assert "install -m 0600 /lab/tls/mailbox.key /etc/perdition/tls/server.key" in start
    assert "/lab/mailbox/ffdhe2048.pem > /etc/perdition/tls/server.crt" in start


def test_shared_options_are_a_pure_proxy_logging_to_stderr_without_passwords():
    options = _options(perdition_conf.perdition_conf(_spec()))
    assert options["log_facility"] == "+"
    assert options["map_library"] == '""'
    assert options["log_passwd"] == "never"
    assert "no_daemon" in options and "server_resp_line" in options and "no_lookup" in options
    assert options["ssl_cert_file"] == "/etc/perdition/tls/server.crt"
    assert options["ssl_key_file"] == "/etc/perdition/tls/server.key"
    assert "debug" not in options and "connection_logging" not in options


def test_starttls_is_forced_unless_plaintext_auth():
    strict = _spec()
    lax = _spec(dovecot=DovecotSpec(plaintext_auth=True))
    assert perdition_conf.ssl_mode_starttls(strict) == "tls_listen_force"
    assert perdition_conf.ssl_mode_starttls(lax) == "tls_listen"
    for program, command in _commands(perdition_conf.start_sh(lax)).items():
        expected = "ssl_listen" if program.endswith("s") else "tls_listen"
        assert command["--ssl_mode"] == expected


def test_pop3_lists_user_only_where_logins_in_clear_are_accepted():
    strict = _options(perdition_conf.perdition_conf(_spec()))
    lax = _options(perdition_conf.perdition_conf(_spec(dovecot=DovecotSpec(plaintext_auth=True))))
    assert "USER" not in strict["pop_capability"].split(".")
    assert "USER" in lax["pop_capability"].split(".")
    # Perdition adds STARTTLS/LOGINDISABLED itself; they are never in the static IMAP list.
    assert not {"STARTTLS", "LOGINDISABLED"} & set(strict["imap_capability"].split())


@pytest.mark.parametrize("version", TLS_VERSIONS)
def test_tls_floor_follows_the_spec(version, tmp_path):
    spec = _spec(tls=TlsSpec(min_version=version))
    options = _options(perdition_conf.perdition_conf(spec))
    legacy = version in ("TLSv1", "TLSv1.1")
    assert (
        options["ssl_listen_min_proto_version"]
        == {
            "TLSv1": "tlsv1",
            "TLSv1.1": "tlsv1.1",
            "TLSv1.2": "tlsv1.2",
            "TLSv1.3": "tlsv1.2",  # Perdition's highest; OpenSSL's config raises it (below)
        }[version]
    )
    assert options["ssl_listen_ciphers"] == ("DEFAULT:@SECLEVEL=0" if legacy else "DEFAULT")
    perdition_conf.render(spec, tmp_path, "mailbox", PASSWORD)
    start = (tmp_path / "mailbox" / "start.sh").read_text()
    cnf = tmp_path / "mailbox" / "openssl.cnf"
    if version == "TLSv1.3":
        assert "export OPENSSL_CONF=/lab/mailbox/openssl.cnf" in start
        assert "MinProtocol = TLSv1.3" in cnf.read_text()
        assert "-TLSv1.2" in cnf.read_text()
    else:
        assert "OPENSSL_CONF" not in start and not cnf.exists()


def test_store_listens_in_clear_on_its_own_address_and_trusts_only_the_proxy(rendered):
    spec, root = rendered
    text = (root / "store" / "dovecot.conf").read_text()
    settings = _settings(text)
    assert settings["listen"] == spec.address("store")
    assert settings["ssl"] == "no"
    assert settings["disable_plaintext_auth"] == "yes"
    assert settings["login_trusted_networks"].split() == [
        f"{spec.address('mailbox')}/32",
        "127.0.0.1/32",
    ]
    assert "imaps" not in text and "pop3s" not in text and "ssl_cert" not in text
    assert settings["auth_failure_delay"] == "0"  # Perdition holds failures back itself
    assert f"address = {spec.lmtp_address}" in text
    assert spec.lmtp_address == spec.address("store")
    store_start = (root / "store" / "start.sh").read_text()
    assert "/lab/store/dovecot.conf" in store_start and "/lab/tls/" not in store_start


def test_direct_dovecot_is_unchanged_by_the_store_variant():
    text = dovecot_conf.dovecot_conf(_spec(mailbox_front="dovecot"))
    assert "login_trusted_networks" not in text
    assert _settings(text)["ssl"] == "yes"
    assert _settings(text)["listen"] == _spec().address("mailbox")


@pytest.mark.parametrize(
    "spec",
    [
        _spec(),
        _spec(tls=TlsSpec(starttls=False)),
        _spec(tls=TlsSpec(key_readable=False)),
        _spec(tls=TlsSpec(min_version="TLSv1.3")),
        _spec(dovecot=DovecotSpec(plaintext_auth=True)),
    ],
)
def test_every_mailbox_toggle_is_expressible(spec):
    assert perdition_conf.unsupported(spec) == []
    assert unsupported(spec) == []


def test_no_unfilled_placeholders():
    for spec in (_spec(), _spec(dovecot=DovecotSpec(plaintext_auth=True))):
        assert "@@" not in perdition_conf.perdition_conf(spec)
        assert "@@" not in perdition_conf.start_sh(spec)
