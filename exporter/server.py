"""The exporter's HTTP server: /metrics, the landing page and the health endpoints.

A ``ThreadingHTTPServer`` is enough: a scrape only serialises the current snapshots (no
computation), so requests are short.  TLS and basic auth come from the exporter-toolkit
web configuration (:mod:`exporter.webconfig`) and apply to every endpoint, as in the Go
exporters; an unauthenticated request gets ``401`` with ``WWW-Authenticate`` and no data.
"""

from __future__ import annotations

import gzip
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import structlog
from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.exposition import choose_encoder

from exporter.landing import LandingPage, render_landing
from exporter.pipeline import Snapshot
from exporter.webconfig import WebConfig
from mlops_core.errors import ConfigError

log = structlog.get_logger("exporter.server")

#: Per-connection socket timeout: a stalled client (or TLS handshake) frees its thread.
CONNECTION_TIMEOUT = 10.0


def parse_listen_address(address: str) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` (all interfaces) or ``[v6]:PORT`` -> (host, port)."""
    host, sep, port_text = address.rpartition(":")
    if not sep:
        raise ConfigError(f"--web.listen-address {address!r}: expected HOST:PORT, e.g. :9874")
    host = host.strip("[]")
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"--web.listen-address {address!r}: port must be a number") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"--web.listen-address {address!r}: port out of range")
    return host, port


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = CONNECTION_TIMEOUT
    # Headers and body go out in two writes; with Nagle on, the body waits for the client's
    # delayed ACK (~40 ms) on keep-alive connections. Prometheus keeps connections alive.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # access logs would drown the exporter's own; errors are logged below

    def do_HEAD(self) -> None:
        self.do_GET(head=True)

    def do_GET(self, head: bool = False) -> None:
        app = self.server.app
        if not app.web_config.authorized(self.headers.get("Authorization")):
            self._send(
                401,
                b"Unauthorized\n",
                "text/plain; charset=utf-8",
                head,
                extra={"WWW-Authenticate": 'Basic realm="mlops-exporter"'},
            )
            return
        url = urlsplit(self.path)
        try:
            if url.path == "/metrics":
                self._metrics(parse_qs(url.query), head)
            elif url.path == "/":
                body = render_landing(app.landing, app.snapshot()).encode()
                self._send(200, body, "text/html; charset=utf-8", head)
            elif url.path == "/-/healthy":
                self._send(200, b"Healthy.\n", "text/plain; charset=utf-8", head)
            elif url.path == "/-/ready":
                if app.ready():
                    self._send(200, b"Ready.\n", "text/plain; charset=utf-8", head)
                else:
                    self._send(503, b"Not ready.\n", "text/plain; charset=utf-8", head)
            else:
                self._send(404, b"Not found.\n", "text/plain; charset=utf-8", head)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception:
            log.exception("request_failed", path=url.path)
            self._send(500, b"Internal error.\n", "text/plain; charset=utf-8", head)

    def _metrics(self, query: dict[str, list[str]], head: bool) -> None:
        app = self.server.app
        encoder, content_type = choose_encoder(self.headers.get("Accept"))
        if "name[]" in query:  # rare: prometheus_client's own (slower) encoder
            body = encoder(_Restricted(app.registry, query["name[]"]))
        else:
            body = app.render(content_type.startswith("application/openmetrics-text"))
        extra = {}
        if "gzip" in (self.headers.get("Accept-Encoding") or ""):
            body = gzip.compress(body, compresslevel=1)
            extra["Content-Encoding"] = "gzip"
        self._send(200, body, content_type, head, extra=extra)

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        head: bool,
        extra: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in {**self.server.app.web_config.headers, **(extra or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)


class _Restricted:
    """The samples of ``registry`` named in ``?name[]=`` (``foo_total``, ``foo_bucket``, ...).

    ``CollectorRegistry.restricted_registry`` finds collectors by the names ``describe()``
    gives, and the exporter's collector describes none (so that registering it does not
    collect), so that would serve nothing.  This filters the collected samples instead.
    """

    def __init__(self, registry: CollectorRegistry, names: Sequence[str]) -> None:
        self._registry = registry
        self._names = set(names)

    def collect(self) -> Iterator[Metric]:
        for family in self._registry.collect():
            samples = [s for s in family.samples if s.name in self._names]
            if samples:
                kept = Metric(family.name, family.documentation, family.type, family.unit)
                kept.samples = samples
                yield kept


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    app: ServerApp

    def handle_error(self, request: Any, client_address: Any) -> None:
        # TLS handshake failures and resets from scanners: one debug line, no traceback.
        log.debug("connection_error", client=str(client_address))


@dataclass
class ServerApp:
    """What the HTTP handlers read; every callable is cheap and thread-safe."""

    registry: CollectorRegistry
    render: Callable[[bool], bytes]  # the registry's output (OpenMetrics if True), fast path
    web_config: WebConfig
    landing: LandingPage
    snapshot: Callable[[], Snapshot]
    ready: Callable[[], bool]


class ExporterServer:
    """Binds at construction (so a busy port fails start-up), serves in a thread."""

    def __init__(self, listen_address: str, app: ServerApp) -> None:
        host, port = parse_listen_address(listen_address)
        server_cls = (
            type("_Server6", (_Server,), {"address_family": socket.AF_INET6})
            if (":" in host)
            else _Server
        )
        try:
            self._httpd = server_cls((host or "0.0.0.0", port), _Handler)
        except OSError as exc:
            raise ConfigError(
                f"--web.listen-address {listen_address}: cannot listen: {exc.strerror or exc}"
            ) from None
        self._httpd.app = app
        context = app.web_config.ssl_context()
        if context is not None:
            self._httpd.socket = context.wrap_socket(
                self._httpd.socket, server_side=True, do_handshake_on_connect=False
            )
        self.tls = context is not None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2}, name="http"
        )
        self._thread.daemon = True
        self._thread.start()

    def shutdown(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=2)


__all__ = [
    "ExporterServer",
    "LandingPage",
    "ServerApp",
    "parse_listen_address",
    "render_landing",
]
