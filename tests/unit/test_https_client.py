"""The HTTPS door (probes.net.https) and https.mta_sts / https.bimi against a local server.

The host names resolve through a static resolver door to 127.0.0.1 only: a fetch never asks
the system resolver, never follows a redirect and cuts the body at the cap."""

from __future__ import annotations

import pytest

from probes.checks import https_mta_sts
from probes.checks.https_bimi import HttpsBimi
from probes.checks.https_mta_sts import HttpsMtaSts
from probes.model import Outcome, Severity, Target
from probes.net import Net
from probes.net.dns import DnsClient, StaticBackend
from probes.net.https import MAX_BODY, HttpsFailure, fetch, parse_url, reproduce_line
from probes.runner import Redactor, run_one
from tests.unit.httpsserver import HttpsServer

DOMAIN = "example.com"
HOST = f"mta-sts.{DOMAIN}"
POLICY = b"version: STSv1\r\nmode: enforce\r\nmx: mx.example.com\r\nmax_age: 86400\r\n"
LOGO = (
    b'<svg xmlns="http://www.w3.org/2000/svg" version="1.2" baseProfile="tiny-ps">'
    b"<title>Example</title></svg>"
)
TEXT = {"Content-Type": "text/plain"}
SVG = {"Content-Type": "image/svg+xml"}


@pytest.fixture
def server():
    srv = HttpsServer(
        {
            "/.well-known/mta-sts.txt": (200, TEXT, POLICY),
            "/logo.svg": (200, SVG, LOGO),
            "/moved": (301, {"Location": "https://elsewhere.example/x"}, b""),
            "/big": (200, TEXT, b"x" * (MAX_BODY + 10)),
        },
        [HOST, f"www.{DOMAIN}"],
    )
    yield srv
    srv.close()


def net_for(srv, extra=None, **records):
    data = {
        (HOST, "A"): ["127.0.0.1"],
        (f"www.{DOMAIN}", "A"): ["127.0.0.1"],
        (f"other.{DOMAIN}", "A"): ["127.0.0.1"],
        (f"_mta-sts.{DOMAIN}", "TXT"): ["v=STSv1; id=1"],
        (DOMAIN, "MX"): [(10, "mx.example.com.")],
        (f"_dmarc.{DOMAIN}", "TXT"): ["v=DMARC1; p=reject"],
        (f"default._bimi.{DOMAIN}", "TXT"): [
            f"v=BIMI1; l=https://www.{DOMAIN}:{srv.port}/logo.svg"
        ],
        **(extra or {}),
    }
    return Net(dns_client=DnsClient(StaticBackend(data)), ca_file=srv.ca_file)


def url(srv, path, host=HOST):
    return f"https://{host}:{srv.port}{path}"


def test_a_fetch_verifies_the_host_and_reads_the_body(server):
    response = fetch(net_for(server), url(server, "/.well-known/mta-sts.txt"))
    assert (response.status, response.body, response.ip) == (200, POLICY, "127.0.0.1")
    assert response.header("content-type") == "text/plain"
    assert response.tls.verified


def test_a_redirect_is_not_followed(server):
    response = fetch(net_for(server), url(server, "/moved"))
    assert response.redirect and response.header("location") == "https://elsewhere.example/x"
    assert server.hits == ["/moved"]


def test_the_body_is_capped(server):
    response = fetch(net_for(server), url(server, "/big"))
    assert response.oversized and response.body == b""


@pytest.mark.parametrize(
    ("headers", "body", "expected", "oversized"),
    [
        (
            {"Transfer-Encoding": "chunked"},
            b"5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n",
            b"hello world",
            False,
        ),
        (
            {"Transfer-Encoding": "chunked"},
            b"%x\r\n" % (MAX_BODY + 1) + b"x" * (MAX_BODY + 1) + b"\r\n0\r\n\r\n",
            b"",
            True,
        ),
        ({"X-Until-Close": "1"}, b"no length", b"no length", False),
        ({"X-Until-Close": "1"}, b"y" * (MAX_BODY + 5), b"y" * MAX_BODY, True),
    ],
)
def test_chunked_and_until_close_bodies(server, headers, body, expected, oversized):
    server.routes["/b"] = (200, headers, body)
    response = fetch(net_for(server), url(server, "/b"))
    assert (response.body, response.oversized) == (expected, oversized)


def test_a_body_that_never_comes_ends_within_the_io_timeout(server):
    import time

    from probes.model import Timeouts

    net = Net(dns_client=net_for(server).dns, ca_file=server.ca_file, timeouts=Timeouts(io=0.5))
    t0 = time.monotonic()
    with pytest.raises(HttpsFailure) as info:
        fetch(net, url(server, "/stall"))
    assert info.value.stage == "http" and time.monotonic() - t0 < 3


def test_a_certificate_that_does_not_name_the_host_is_a_failure(server):
    with pytest.raises(HttpsFailure) as info:
        fetch(net_for(server), url(server, "/logo.svg", host=f"other.{DOMAIN}"))
    assert info.value.stage == "certificate" and "does not name other.example.com" in str(
        info.value
    )


def test_an_untrusted_chain_is_a_failure(server):
    net = Net(dns_client=net_for(server).dns, ca_file=None)
    with pytest.raises(HttpsFailure) as info:
        fetch(net, url(server, "/logo.svg"))
    assert info.value.stage == "certificate"


def test_a_name_without_addresses_never_connects(server):
    with pytest.raises(HttpsFailure) as info:
        fetch(net_for(server), url(server, "/", host="nowhere.example.com"))
    assert info.value.stage == "dns" and server.hits == []


@pytest.mark.parametrize(
    "bad",
    [
        "http://example.com/",
        "https://127.0.0.1/",
        "https://u:p@example.com/",
        "https:///x",
        "ftp://x",
    ],
)
def test_only_https_urls_with_host_names(bad):
    with pytest.raises(HttpsFailure) as info:
        parse_url(bad)
    assert info.value.stage == "url"


def test_the_reproduce_line_pins_the_address():
    line = reproduce_line("https://mta-sts.example.com/.well-known/mta-sts.txt", "192.0.2.1", "/ca")
    assert line == (
        "curl -sv --max-redirs 0 --resolve mta-sts.example.com:443:192.0.2.1 --cacert /ca "
        "https://mta-sts.example.com/.well-known/mta-sts.txt"
    )


# ----- the probes ------------------------------------------------------------------------------
def run_mta_sts(server, monkeypatch, policy=POLICY, status=200, headers=TEXT, **extra):
    monkeypatch.setattr(https_mta_sts, "POLICY_PORT", server.port)
    server.routes["/.well-known/mta-sts.txt"] = (status, headers, policy)
    result = run_one(HttpsMtaSts(), Target(domain=DOMAIN), net_for(server, extra), Redactor())
    assert result.outcome is Outcome.COMPLETED, result.error_detail
    return {(f.code, f.severity) for f in result.findings}, result


def test_mta_sts_policy_ok(server, monkeypatch):
    found, result = run_mta_sts(server, monkeypatch)
    assert found == {("MTA_STS_POLICY_OK", Severity.INFO)}
    assert "--resolve mta-sts.example.com:" in result.findings[0].reproduce


def test_mta_sts_mx_not_covered_and_testing(server, monkeypatch):
    found, _ = run_mta_sts(server, monkeypatch, policy=POLICY.replace(b"mx.", b"mail."))
    assert ("MTA_STS_MX_NOT_COVERED", Severity.FAIL) in found
    testing = POLICY.replace(b"mx.", b"mail.").replace(b"enforce", b"testing")
    found, _ = run_mta_sts(server, monkeypatch, policy=testing)
    assert {
        ("MTA_STS_MX_NOT_COVERED", Severity.WARN),
        ("MTA_STS_TESTING_MODE", Severity.WARN),
    } <= found


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        (
            {"status": 302, "headers": {"Location": "https://x.example/"}},
            "MTA_STS_POLICY_UNREACHABLE",
        ),
        ({"status": 404}, "MTA_STS_POLICY_UNREACHABLE"),
        ({"policy": b"\xff\xfe"}, "MTA_STS_POLICY_INVALID"),
        ({"policy": POLICY * 2000}, "MTA_STS_POLICY_INVALID"),
        ({"headers": {"Content-Type": "text/html"}}, "MTA_STS_POLICY_INVALID"),
    ],
)
def test_mta_sts_broken_policies(server, monkeypatch, kwargs, code):
    found, _ = run_mta_sts(server, monkeypatch, **kwargs)
    assert found == {(code, Severity.FAIL)}


def test_mta_sts_skips_without_a_record(server, monkeypatch):
    monkeypatch.setattr(https_mta_sts, "POLICY_PORT", server.port)
    net = net_for(server, {(f"_mta-sts.{DOMAIN}", "TXT"): []})
    result = run_one(HttpsMtaSts(), Target(domain=DOMAIN), net, Redactor())
    assert result.outcome is Outcome.SKIPPED and server.hits == []


def run_bimi(server, **extra):
    result = run_one(HttpsBimi(), Target(domain=DOMAIN), net_for(server, extra), Redactor())
    assert result.outcome is Outcome.COMPLETED, result.error_detail
    return {(f.code, f.severity) for f in result.findings}


def test_bimi_ok_and_missing(server):
    assert run_bimi(server) == {("BIMI_OK", Severity.INFO)}
    assert run_bimi(server, **{}) == {("BIMI_OK", Severity.INFO)}
    none = {(f"default._bimi.{DOMAIN}", "TXT"): []}
    result = run_one(HttpsBimi(), Target(domain=DOMAIN), net_for(server, none), Redactor())
    assert {f.code for f in result.findings} == {"BIMI_MISSING"}


def test_bimi_problems(server):
    server.routes["/logo.svg"] = (200, SVG, LOGO.replace(b"</svg>", b"<script/></svg>"))
    weak = {(f"_dmarc.{DOMAIN}", "TXT"): ["v=DMARC1; p=none"]}
    result = run_one(HttpsBimi(), Target(domain=DOMAIN), net_for(server, weak), Redactor())
    assert {(f.code, f.severity) for f in result.findings} == {
        ("BIMI_DMARC_TOO_WEAK", Severity.WARN),
        ("BIMI_LOGO_INVALID", Severity.FAIL),
    }
    moved = {
        (f"default._bimi.{DOMAIN}", "TXT"): [f"v=BIMI1; l=https://www.{DOMAIN}:{server.port}/moved"]
    }
    result = run_one(HttpsBimi(), Target(domain=DOMAIN), net_for(server, moved), Redactor())
    assert {f.code for f in result.findings} == {"BIMI_LOGO_UNREACHABLE"}
    bad = {(f"default._bimi.{DOMAIN}", "TXT"): ["v=BIMI1; l=http://x.example/l.svg"]}
    result = run_one(HttpsBimi(), Target(domain=DOMAIN), net_for(server, bad), Redactor())
    assert {f.code for f in result.findings} == {"BIMI_SYNTAX_ERROR"}
