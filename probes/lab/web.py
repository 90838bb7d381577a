"""The lab's `web` role: a tiny Python HTTPS server (python3 of the lab image) on port 443 of
its own lab address, serving the MTA-STS policy (mta-sts.<domain>) and the BIMI logo
(web.<domain>), with a certificate from the lab CA naming both. Pure rendering: the files
under <lab>/web/ and the zone lines; the container is probes.lab.containers.WebContainer.

What is served, and every broken case, comes from the spec (`LabSpec.mta_sts`, `LabSpec.bimi`):
the routes file maps a path to (status, headers, file); the server does nothing else.
"""

from __future__ import annotations

import json
from pathlib import Path

from probes.lab import pki
from probes.lab.spec import LabSpec, fill_placeholders, hostname_label
from probes.lab.zones import txt_rdata

HTTPS_PORT = 443
POLICY_PATH = "/.well-known/mta-sts.txt"
LOGO_PATH = "/bimi/logo.svg"
OVERSIZED_BYTES = 70 * 1024

VALID_LOGO = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<svg xmlns="http://www.w3.org/2000/svg" version="1.2" baseProfile="tiny-ps" '
    'viewBox="0 0 64 64">\n'
    "  <title>mailprobe lab</title>\n"
    '  <rect width="64" height="64" fill="#1a5fb4"/>\n'
    '  <circle cx="32" cy="32" r="20" fill="#ffffff"/>\n'
    "</svg>\n"
)
SCRIPT_LOGO = VALID_LOGO.replace("</svg>", "  <script>alert(1)</script>\n</svg>")
BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE svg [\n  <!ENTITY a "lol">\n'
    + "".join(f'  <!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">\n' for i in range(9))
    + ']>\n<svg xmlns="http://www.w3.org/2000/svg" version="1.2" baseProfile="tiny-ps">'
    "<title>&j;</title></svg>\n"
)
LOGOS = {"valid": VALID_LOGO, "script": SCRIPT_LOGO, "billion-laughs": BILLION_LAUGHS}

SERVER_PY = """\
# The lab's HTTPS server: routes.json maps a path to (status, headers, file). Nothing else.
import http.server
import json
import socketserver
import ssl
import sys

CONF = json.load(open("/lab/web/routes.json"))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10

    def do_GET(self):
        route = CONF["routes"].get(self.path.split("?", 1)[0])
        if route is None:
            status, headers, body = 404, {"Content-Type": "text/plain"}, b"not found\\n"
        else:
            status, headers = route["status"], route["headers"]
            body = open(route["file"], "rb").read() if route.get("file") else b""
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        sys.stderr.write("web: " + (fmt % args) + "\\n")


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def get_request(self):
        sock, addr = self.socket.accept()
        # the handshake happens in the request's thread: a silent client holds only that one
        return CTX.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr


CTX = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
CTX.load_cert_chain(CONF["cert"], CONF["key"])
httpd = Server((CONF["address"], CONF["port"]), Handler)
print("web: listening on %s:%d" % (CONF["address"], CONF["port"]), flush=True)
httpd.serve_forever()
"""

START_SH = """\
#!/bin/sh
# Lab web server (MTA-STS policy host, BIMI logo host): Python's HTTPS server, foreground.
exec python3 /lab/web/server.py
"""


def policy_host(spec: LabSpec) -> str:
    return f"mta-sts.{spec.domain}"


def logo_host(spec: LabSpec) -> str:
    return f"{hostname_label('web')}.{spec.domain}"


def cert_names(spec: LabSpec) -> list[str]:
    return [logo_host(spec), policy_host(spec)]


def mx_hosts(spec: LabSpec) -> list[str]:
    """The lab's MX host names (what the default policy's mx: lines name)."""
    values = spec.placeholders()
    hosts = [fill_placeholders(rec, values).split()[1].rstrip(".") for rec in spec.mx]
    return [host for host in hosts if host]


def policy_text(spec: LabSpec) -> str:
    sts = spec.mta_sts
    values = spec.placeholders()
    if sts.policy is not None:
        text = fill_placeholders(sts.policy, values)
    else:
        patterns = [fill_placeholders(p, values) for p in sts.mx] if sts.mx is not None else None
        lines = ["version: STSv1", f"mode: {sts.mode}"]
        lines += [f"mx: {p}" for p in (patterns if patterns is not None else mx_hosts(spec))]
        lines.append(f"max_age: {sts.max_age}")
        text = "\r\n".join(lines) + "\r\n"
    if sts.oversized:
        text += "# " + "x" * OVERSIZED_BYTES + "\r\n"
    return text


def bimi_record(spec: LabSpec) -> str:
    if spec.bimi.record is not None:
        return fill_placeholders(spec.bimi.record, spec.placeholders())
    return f"v=BIMI1; l=https://{logo_host(spec)}{LOGO_PATH}; a="


def zone_lines(spec: LabSpec) -> list[str]:
    """The lab domain's records for MTA-STS and BIMI (relative to the domain). A name the
    spec's `extra_records` already define is left to them (a spec that publishes its own
    `_mta-sts` record keeps exactly that one)."""
    values = spec.placeholders()
    own = {fill_placeholders(rec, values).split()[0].lower() for rec in spec.extra_records}
    lines = []
    if spec.mta_sts.publish:
        # unreachable: an address of the lab where nothing listens on 443 (refused at once)
        role = "web" if spec.mta_sts.reachable else "unauthorized"
        lines.append(f"mta-sts A {spec.address(role)}")
        lines.append(f"_mta-sts TXT {txt_rdata(f'v=STSv1; id={spec.mta_sts.record_id}')}")
    if spec.bimi.publish:
        lines.append(f"default._bimi TXT {txt_rdata(bimi_record(spec))}")
    return [line for line in lines if line.split()[0].lower() not in own]


def render(spec: LabSpec, root: Path, ca: pki.CertAuthority) -> None:
    """<root>/web/: server.py, start.sh, routes.json and the files served; the certificate
    in <root>/tls/web.crt (key web.key)."""
    web = root / "web"
    web.mkdir(exist_ok=True)
    chain, key = pki.make_server_cert(
        ca, cert_names(spec), [spec.address("web")], spec.mta_sts.certificate
    )
    (root / "tls" / "web.crt").write_bytes(pki.certs_pem(chain))
    pki.write_secret(root / "tls" / "web.key", pki.private_pem(key))
    files = web / "files"
    files.mkdir(exist_ok=True)
    routes: dict[str, dict[str, object]] = {}
    if spec.mta_sts.publish:
        if spec.mta_sts.redirect:
            target = f"https://{logo_host(spec)}/mta-sts.txt"
            routes[POLICY_PATH] = {"status": 301, "headers": {"Location": target}}
        else:
            (files / "mta-sts.txt").write_bytes(policy_text(spec).encode("utf-8"))
            routes[POLICY_PATH] = {
                "status": 200,
                "headers": {"Content-Type": "text/plain"},
                "file": "/lab/web/files/mta-sts.txt",
            }
    if spec.bimi.publish and spec.bimi.logo != "missing":
        (files / "logo.svg").write_text(LOGOS[spec.bimi.logo])
        routes[LOGO_PATH] = {
            "status": 200,
            "headers": {"Content-Type": "image/svg+xml"},
            "file": "/lab/web/files/logo.svg",
        }
    conf = {
        "address": spec.address("web"),
        "port": HTTPS_PORT,
        "cert": "/lab/tls/web.crt",
        "key": "/lab/tls/web.key",
        "routes": routes,
    }
    (web / "routes.json").write_text(json.dumps(conf, indent=2) + "\n")
    (web / "server.py").write_text(SERVER_PY)
    (web / "start.sh").write_text(START_SH)
