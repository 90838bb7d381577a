"""A small HTTPS server for the HTTPS client's tests: routes -> (status, headers, body)."""

from __future__ import annotations

import http.server
import ssl
import tempfile
import threading
from pathlib import Path

from probes.lab import pki

Route = tuple[int, dict[str, str], bytes]


class HttpsServer:
    """Serves `routes` on 127.0.0.1:<port> with a certificate for `names` from a fresh CA."""

    def __init__(self, routes: dict[str, Route], names: list[str]) -> None:
        self.routes = routes
        self.hits: list[str] = []
        self.release = threading.Event()  # ends a /stall request
        self._dir = tempfile.TemporaryDirectory()
        root = Path(self._dir.name)
        ca = pki.make_ca("127.0.0.1")
        chain, key = pki.make_server_cert(ca, names, [])
        self.ca_file = str(root / "ca.pem")
        (root / "ca.pem").write_bytes(pki.certs_pem([ca.cert]))
        (root / "srv.pem").write_bytes(pki.certs_pem(chain))
        pki.write_secret(root / "srv.key", pki.private_pem(key))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(root / "srv.pem"), str(root / "srv.key"))
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                server.hits.append(self.path)
                if self.path == "/stall":  # the head, then a body that never comes
                    self.send_response(200)
                    self.send_header("Content-Length", "100")
                    self.end_headers()
                    self.wfile.flush()
                    server.release.wait(10)
                    return
                status, headers, body = server.routes.get(self.path, (404, {}, b"not found"))
                headers = dict(headers)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                until_close = headers.pop("X-Until-Close", None) is not None
                if until_close:  # no length: the body ends when the connection does
                    self.close_connection = True
                elif "Content-Length" not in headers and "Transfer-Encoding" not in headers:
                    self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._dir.cleanup()
