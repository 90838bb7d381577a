"""probes.probekit.reproduce: openssl/swaks lines a user can paste (quoted, never a secret)."""

from __future__ import annotations

import shlex

import pytest

from probes.probekit.reproduce import host_port, openssl_line, swaks_line


def words(line: str) -> list[str]:
    """The argv the shell would build (redirections and the password reference kept as text)."""
    return shlex.split(line)


def test_openssl_starttls_smtp_line():
    line = openssl_line("mx.example.com", 25, starttls="smtp")
    assert line == ("openssl s_client -connect mx.example.com:25 -starttls smtp -brief </dev/null")


def test_openssl_implicit_tls_line_has_no_starttls():
    assert words(openssl_line("127.0.0.143", 993)) == [
        "openssl",
        "s_client",
        "-connect",
        "127.0.0.143:993",
        "-brief",
        "</dev/null",
    ]


def test_openssl_all_options_in_order():
    line = openssl_line(
        "mx.example.com",
        587,
        starttls="smtp",
        servername="mail.example.com",
        ca_file="/tmp/ca.pem",
        tls_version="TLSv1.1",
    )
    assert words(line)[2:-2] == [
        "-connect",
        "mx.example.com:587",
        "-starttls",
        "smtp",
        "-servername",
        "mail.example.com",
        "-CAfile",
        "/tmp/ca.pem",
        "-tls1_1",
    ]


@pytest.mark.parametrize(
    ("version", "flag"),
    [
        ("SSLv3", "-ssl3"),
        ("TLSv1", "-tls1"),
        ("TLSv1.1", "-tls1_1"),
        ("TLSv1.2", "-tls1_2"),
        ("TLSv1.3", "-tls1_3"),
    ],
)
def test_openssl_version_flags(version, flag):
    assert flag in words(openssl_line("h", 25, tls_version=version))


@pytest.mark.parametrize("proto", ["imap", "pop3"])
def test_openssl_mailbox_starttls(proto):
    assert words(openssl_line("h", 143, starttls=proto))[4:6] == ["-starttls", proto]


def test_openssl_ipv6_host_is_bracketed():
    assert words(openssl_line("::1", 25))[3] == "[::1]:25"
    assert words(openssl_line("[2001:db8::1]", 465))[3] == "[2001:db8::1]:465"


def test_openssl_hostile_values_are_quoted():
    line = openssl_line("h", 25, ca_file="/tmp/my ca;rm -rf ~.pem", servername="$(id)")
    argv = words(line)
    assert argv[argv.index("-CAfile") + 1] == "/tmp/my ca;rm -rf ~.pem"
    assert argv[argv.index("-servername") + 1] == "$(id)"
    assert "'$(id)'" in line


@pytest.mark.parametrize(
    "kwargs", [{"starttls": "smtp; id"}, {"tls_version": "TLSv9"}, {"tls_version": "-tls1"}]
)
def test_openssl_unknown_options_raise_value_error(kwargs):
    with pytest.raises(ValueError):
        openssl_line("h", 25, **kwargs)


@pytest.mark.parametrize("port", [0, 65536, -1, True])
def test_invalid_port_raises_value_error(port):
    with pytest.raises(ValueError):
        openssl_line("h", port)
    with pytest.raises(ValueError):
        swaks_line("h", port)


def test_host_port_leaves_names_and_ipv4_alone():
    assert host_port("mx.example.com", 25) == "mx.example.com:25"
    assert host_port("127.0.0.25", 465) == "127.0.0.25:465"


def test_swaks_starttls_line():
    line = swaks_line("mx.example.com", 25, tls="starttls", quit_after="EHLO")
    assert line == "swaks --server mx.example.com --port 25 --tls --quit-after EHLO"


def test_swaks_implicit_tls_uses_tlsc():
    assert words(swaks_line("127.0.0.25", 465, tls="implicit")) == [
        "swaks",
        "--server",
        "127.0.0.25",
        "--port",
        "465",
        "--tlsc",
    ]


def test_swaks_auth_uses_the_password_variable_never_a_value():
    line = swaks_line("h", 587, tls="starttls", auth_user="user@example.test")
    assert line.endswith('--auth-user user@example.test --auth-password "$MAILPROBE_PASSWORD"')
    assert words(line)[-2:] == ["--auth-password", "$MAILPROBE_PASSWORD"]


def test_swaks_without_auth_user_has_no_password_option():
    assert "--auth-password" not in swaks_line("h", 587, tls="starttls")


def test_swaks_message_options_and_extra_are_quoted():
    line = swaks_line(
        "h",
        25,
        ehlo="probe.example",
        mail_from="a b@example.com",
        to="rcpt@example.org",
        extra=["--header", "Subject: hi there"],
    )
    argv = words(line)
    assert argv[argv.index("--ehlo") + 1] == "probe.example"
    assert argv[argv.index("--from") + 1] == "a b@example.com"
    assert argv[argv.index("--to") + 1] == "rcpt@example.org"
    assert argv[-2:] == ["--header", "Subject: hi there"]


def test_swaks_hostile_user_is_quoted():
    line = swaks_line("h", 587, auth_user="x'; id #")
    argv = words(line)
    assert argv[argv.index("--auth-user") + 1] == "x'; id #"


def test_swaks_ipv6_server_is_bracketed():
    argv = words(swaks_line("::1", 25))
    assert argv[1:5] == ["--server", "[::1]", "--port", "25"]


def test_swaks_unknown_tls_mode_raises_value_error():
    with pytest.raises(ValueError):
        swaks_line("h", 25, tls="tls")
