"""`mailprobe check` input handling: bad domains, domain files and options exit 2."""

from __future__ import annotations

import json
import socketserver
import threading

import dns.message
import dns.rcode
import pytest

from probes import cli
from probes.audit import read_domains
from probes.errors import UsageError


def test_invalid_domain_exits_2_naming_it(capsys):
    assert cli.main(["check", "exa mple..com"]) == 2
    assert "exa mple..com" in capsys.readouterr().err


def test_domain_file_error_names_file_and_line(tmp_path, capsys):
    path = tmp_path / "domains.txt"
    path.write_text("good.example\n# comment\n\nbad..example\n")
    assert cli.main(["check", "--domains", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "line 4" in err


def test_domain_file_skips_comments_blank_lines_and_duplicates(tmp_path):
    path = tmp_path / "domains.txt"
    path.write_text("a.example  # first\n\nB.example.\na.example\n")
    assert read_domains(path) == ["a.example", "b.example"]


def test_missing_domain_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="cannot read"):
        read_domains(tmp_path / "nope.txt")


def test_empty_domain_file_is_a_usage_error(tmp_path):
    path = tmp_path / "domains.txt"
    path.write_text("# nothing\n")
    with pytest.raises(UsageError, match="no domains"):
        read_domains(path)


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "example.com", "--domains", "x"],
        ["check", "example.com", "--dkim-key", "nosep"],
        ["check", "example.com", "--dkim-key", "sel=/nonexistent/key.pem"],
        ["check", "example.com", "--sending-ip", "not-an-ip"],
        ["check", "example.com", "--resolver", "dns.example"],
    ],
)
def test_bad_options_exit_2(argv, capsys):
    assert cli.main(argv) == 2
    assert capsys.readouterr().err.startswith("mailprobe: error:")


def test_domains_mode_writes_one_json_line_per_domain(tmp_path, capsys):
    """Against a closed resolver port: every domain is reported, none is lost."""
    path = tmp_path / "domains.txt"
    path.write_text("a.example\nb.example\nc.example\n")
    out = tmp_path / "out"
    status = cli.main(
        [
            "check",
            "--domains",
            str(path),
            "--resolver",
            "127.0.0.1:9",
            "--probe",
            "dns.*",
            "--output",
            str(out),
            "--format",
            "json",
        ]
    )
    lines = (out / "domains.jsonl").read_text().splitlines()
    domains = [json.loads(line)["target"]["domain"] for line in lines]
    assert domains == ["a.example", "b.example", "c.example"]
    assert status in (0, 1, 3)
    stdout_lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("{")]
    assert len(stdout_lines) == 3


class _Refuser(socketserver.BaseRequestHandler):
    """A resolver that answers REFUSED at once."""

    def handle(self):
        data, sock = self.request
        response = dns.message.make_response(dns.message.from_wire(data))
        response.set_rcode(dns.rcode.REFUSED)
        sock.sendto(response.to_wire(), self.client_address)


@pytest.fixture
def refusing_resolver():
    server = socketserver.ThreadingUDPServer(("127.0.0.1", 0), _Refuser)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_domains_mode_in_two_processes_keeps_input_order(tmp_path, capsys, refusing_resolver):
    path = tmp_path / "domains.txt"
    names = [f"d{i}.example" for i in range(40)]
    path.write_text("\n".join(names) + "\n")
    out = tmp_path / "out"
    argv = ["check", "--domains", str(path), "--resolver", refusing_resolver]
    argv += ["--probe", "dns.mx"]
    cli.main([*argv, "--processes", "2", "--concurrency", "4", "--output", str(out), "-q"])
    lines = (out / "domains.jsonl").read_text().splitlines()
    assert [json.loads(line)["target"]["domain"] for line in lines] == names
    capsys.readouterr()


def test_processes_below_one_is_a_usage_error(tmp_path, capsys):
    path = tmp_path / "domains.txt"
    path.write_text("a.example\n")
    assert cli.main(["check", "--domains", str(path), "--processes", "0"]) == 2
    assert "--processes" in capsys.readouterr().err
