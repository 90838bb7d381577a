"""One name conversion (probes.names, IDNA 2008 / UTS 46): `mailprobe check faß.test`, a
scenario with `domain: faß.test` and every probe given `faß.test` ask the resolver door for
the same `xn--fa-hia.test` names (never IDNA 2003's `fass.test`), as its query log shows."""

from __future__ import annotations

import threading

import pytest

from probes import cli, registry
from probes.model import Target
from probes.names import InvalidDomain, normalize_domain, normalize_host, to_ascii
from probes.net import Net
from probes.net.dns import DnsClient, StaticBackend
from probes.runner import run_probes
from probes.scenario import load_text
from probes.scenario_run import run_scenario

ALABEL = "xn--fa-hia.test"
RECORDS = {
    (ALABEL, "MX"): [(10, f"mx.{ALABEL}")],
    (ALABEL, "TXT"): ["v=spf1 include:_spf.xn--fa-hia.test -all"],
    (f"_spf.{ALABEL}", "TXT"): ["v=spf1 ip4:192.0.2.1 -all"],
    (f"_dmarc.{ALABEL}", "TXT"): ["v=DMARC1; p=reject; rua=mailto:d@xn--fa-hia.test"],
    (f"mail._domainkey.{ALABEL}", "TXT"): ["v=DKIM1; p="],
}


class RecordingBackend(StaticBackend):
    """A StaticBackend that keeps the log of every question the door sent it."""

    def __init__(self) -> None:
        super().__init__(RECORDS)
        self.asked: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def resolve(self, name, rdtype):
        with self._lock:
            self.asked.append((name, rdtype))
        return super().resolve(name, rdtype)


@pytest.fixture
def backend(monkeypatch):
    """Every DnsClient a run builds asks this backend (no network)."""
    backend = RecordingBackend()
    monkeypatch.setattr(
        "probes.net.dns.client_for", lambda resolver, *, timeout, source=None: DnsClient(backend)
    )
    return backend


def names(backend: RecordingBackend) -> set[tuple[str, str]]:
    asked = set(backend.asked)
    assert asked, "no DNS question was asked"
    assert all(name.isascii() for name, _ in asked)
    assert not any("fass" in name for name, _ in asked)  # IDNA 2003's answer
    assert (ALABEL, "MX") in asked and (f"_dmarc.{ALABEL}", "TXT") in asked
    assert (ALABEL, "TXT") in asked and (f"mail._domainkey.{ALABEL}", "TXT") in asked
    return asked


PROBES = ["*"]  # every installed probe (no address resolves: nothing connects)


def test_cli_scenario_and_probes_ask_for_the_same_a_label_names(backend, tmp_path, capsys):
    status = cli.main(
        [
            "check",
            "faß.test",
            "--selector",
            "mail",
            "--sending-ip",
            "192.0.2.1",
            *[a for p in PROBES for a in ("--probe", p)],
            "--no-history",
            "--output",
            str(tmp_path / "out"),
            "-q",
        ]
    )
    assert status in (0, 1, 3)
    from_cli = names(backend)

    backend.asked.clear()
    (scenario,) = load_text(
        "name: idn\ntarget:\n  domain: faß.test\n  selectors: [mail]\n"
        "  sending_ips: [192.0.2.1]\nexpect: {max_severity: null}\n",
        "s.yaml",
        list(registry.load_probes()),
    )
    outcome = run_scenario(scenario)
    assert outcome.report.target.domain == ALABEL
    from_scenario = names(backend)

    # The probes themselves, given the name as a user typed it: the door converts it.
    backend.asked.clear()
    classes = registry.select_probes(registry.load_probes(), PROBES)
    target = Target(domain="faß.test", selectors=("mail",), sending_ips=("192.0.2.1",))
    run_probes([cls() for cls in classes], target, Net(dns_client=DnsClient(backend)))
    from_probes = names(backend)

    assert from_cli == from_scenario == from_probes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("faß.test", ALABEL),
        ("FAß.Test.", ALABEL),
        ("_dmarc.faß.test", f"_dmarc.{ALABEL}"),
        ("bücher．example", "xn--bcher-kva.example"),  # a full-width dot is a dot (UTS 46)
    ],
)
def test_idna_2008_with_uts46_mapping(text, expected):
    assert normalize_domain(text) == expected


def test_the_dmarc_parser_and_the_door_convert_names_the_same_way():
    from probes.net.dns import normalize_name
    from probes.parse.dmarc import domain_name

    assert domain_name("faß.test") == normalize_name("faß.test") == to_ascii("faß.test") == ALABEL


def test_host_names_and_addresses():
    assert normalize_host("MX.faß.test.") == f"mx.{ALABEL}"
    assert normalize_host("[2001:db8::1]") == "2001:db8::1"
    assert normalize_host("localhost") == "localhost"
    with pytest.raises(InvalidDomain):
        normalize_host("bad host")


def test_cli_mx_host_is_normalized_like_the_domain(capsys):
    status = cli.main(["check", "faß.test", "--mx", "bad host.test", "--probe", "dns.mx"])
    assert status == 2
    assert "mailprobe: error: --mx: " in capsys.readouterr().err
