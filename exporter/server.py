"""The exporter's endpoints: ``/metrics`` (``--web.telemetry-path``), ``/`` and the health checks.

:mod:`exporter.httpserver` carries the bytes (one event-loop thread, deadlines, bounded
sizes); this module decides what each request gets.  A scrape only serialises the current
snapshots (no computation), so answering on the loop thread is fast; only bcrypt, which
is slow by design, runs on a thread of its own.  TLS and basic auth come from the
exporter-toolkit web configuration (:mod:`exporter.webconfig`) and apply to every endpoint,
as in the Go exporters; an unauthenticated request gets ``401`` with ``WWW-Authenticate``
and no data.  Content negotiation (format, gzip) is :mod:`exporter.negotiate`.
"""

from __future__ import annotations

import asyncio
import gzip
import socket
import threading
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import structlog
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from exporter import DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_REQUESTS, DEFAULT_TELEMETRY_PATH
from exporter.httpserver import BACKLOG, Deferred, HttpLimits, HttpServer, Request, Response
from exporter.limits import DescriptorReserve
from exporter.negotiate import VARY, accepts_gzip, choose_format
from exporter.webconfig import BCRYPT_CONCURRENCY, WebConfig
from mlops_core.errors import ConfigError

log = structlog.get_logger("exporter.server")


_HEALTH_PATHS = ("/-/healthy", "/-/ready", "/-/reload")


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


@dataclass
class ServerApp:
    """What the HTTP handlers read; every callable is cheap and thread-safe."""

    registry: CollectorRegistry
    render: Callable[[bool], bytes]  # the registry's output (OpenMetrics if True), fast path
    web_config: WebConfig
    page: Callable[[], bytes]  # the landing page (exporter.landing.LandingRenderer.render)
    ready: Callable[[], bool]
    warnings: Callable[[], Sequence[str]] = tuple  # what the exporter cannot use, one per line
    # POST /-/reload (--web.enable-lifecycle): None when done, else the error; None: disabled
    reload: Callable[[], str | None] | None = None


@dataclass(frozen=True)
class ServerOptions:
    """The ``--web.*`` flags that shape serving; checked at construction (one-line errors)."""

    telemetry_path: str = DEFAULT_TELEMETRY_PATH
    max_requests: int = DEFAULT_MAX_REQUESTS
    header_timeout: float = DEFAULT_HEADER_TIMEOUT

    def __post_init__(self) -> None:
        path = self.telemetry_path
        if not path.startswith("/") or any(c in path for c in "?# \t\r\n"):
            raise ConfigError(
                f"--web.telemetry-path {path!r}: expected a path starting with /, e.g. /metrics"
            )
        if path in _HEALTH_PATHS:
            raise ConfigError(f"--web.telemetry-path {path}: taken by the health endpoint")
        if self.max_requests < 0:
            raise ConfigError(
                f"--web.max-requests {self.max_requests}: expected 0 (no limit) or more"
            )
        if not self.header_timeout > 0:
            raise ConfigError(f"--web.header-timeout {self.header_timeout}: expected > 0")


@dataclass(eq=False, slots=True)
class _Waiting:
    request: Request
    build: Callable[[], Response]
    answer: Deferred


class _WorkQueue:
    """The requests for endpoints that do work: at most ``limit`` waiting or being answered.

    node_exporter's ``--web.max-requests`` counts requests its handlers hold at once; over
    the limit, ``503`` at once.  Here requests are answered on the event loop, so they also
    wait here, and the count is of those waiting plus those whose response is still being
    delivered (a client that stops reading keeps its slot until the write deadline).
    Event-loop thread only.

    Which request waits, and which gets the ``503``, goes by ``Request.pause``, the time
    its connection was quiet before asking: the longest pause is served first, and when
    the queue is full the request turned away is the one with the shortest.  A Prometheus
    that pauses between scrapes thus passes a flood of clients that ask again the moment
    they are answered; among equal pauses, arrival order.  ``limit`` 0: no limit.
    """

    #: Seconds of answering per turn of the event loop, so reads in between can queue
    #: requests from pausing clients ahead of the flood.
    TURN = 0.005

    def __init__(self, limit: int, finish: Callable[[Response], Response]) -> None:
        self.limit = limit
        self.active = 0
        self.waiting: list[_Waiting] = []
        self._finish = finish
        self._scheduled = False

    def submit(self, request: Request, build: Callable[[], Response]) -> Response | Deferred:
        if self.limit and self.active + len(self.waiting) >= self.limit:
            eager = min(self.waiting, key=lambda w: w.request.pause, default=None)
            if eager is None or eager.request.pause >= request.pause:
                return self._rejected()
            self.waiting.remove(eager)  # it paused less: it yields its place
            eager.answer.resolve(self._rejected())
        answer = Deferred()
        self.waiting.append(_Waiting(request, build, answer))
        self._schedule()
        return answer

    def _rejected(self) -> Response:
        body = f"Limit of concurrent requests reached ({self.limit}), try again later.\n"
        return self._finish(_text(503, body.encode(), ("Retry-After", "1")))

    def _schedule(self) -> None:
        if self.waiting and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._serve)

    def _serve(self) -> None:
        self._scheduled = False
        loop = asyncio.get_running_loop()
        end = loop.time() + self.TURN
        while self.waiting and loop.time() < end:
            turn = max(self.waiting, key=lambda w: w.request.pause)  # the first of equals
            self.waiting.remove(turn)
            try:
                response = self._finish(turn.build())
            except Exception:
                log.exception("request_failed", target=turn.request.target)
                response = Response(500, b"Internal error.\n", close=True)
            else:
                self.active += 1
                response.on_done = self._release
            turn.answer.resolve(response)  # sent now; a delivered one releases its slot
        self._schedule()

    def _release(self) -> None:
        self.active -= 1
        self._schedule()


def _text(status: int, body: bytes, *headers: tuple[str, str]) -> Response:
    return Response(status, body, [("Content-Type", "text/plain; charset=utf-8"), *headers])


class _Routes:
    """The exporter's endpoints, as an :data:`exporter.httpserver.Handler`.

    Order: basic auth (every path, as the toolkit does), then the method, then the path.
    ``/metrics`` and ``/`` do work, so they go through the :class:`_WorkQueue` of
    ``--web.max-requests``; a request over the limit gets ``503`` at once, as node_exporter
    answers.  The health endpoints do not: their answer is a constant, and a ``503`` there
    would make an orchestrator restart an exporter that is only busy.

    A password not yet known good needs bcrypt, which runs on its own thread (one check at
    a time, :data:`exporter.webconfig.BCRYPT_CONCURRENCY`); at most ``max_requests`` such
    requests wait for it, and cached credentials never do.
    """

    def __init__(self, app: ServerApp, options: ServerOptions) -> None:
        self.app = app
        self.options = options
        self.work = _WorkQueue(options.max_requests, self._finish)
        self._bcrypt_waiting = 0
        self._gzip_cache: dict[bool, tuple[bytes, bytes]] = {}
        self._bcrypt_pool: ThreadPoolExecutor | None = None
        self._reload_pool: ThreadPoolExecutor | None = None
        self._headers = list(app.web_config.headers.items())

    def close(self) -> None:
        for pool in (self._bcrypt_pool, self._reload_pool):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)

    def __call__(self, request: Request) -> Response | Awaitable[Response]:
        verdict = self.app.web_config.cached(request.header("authorization"))
        if verdict is None:
            limit = self.options.max_requests
            if limit and self._bcrypt_waiting >= limit:
                return self._finish(_text(503, b"Too many password checks waiting; retry.\n"))
            return self._check_password(request)
        if not verdict:
            return self._finish(self._unauthorized())
        return self._route(request)

    async def _check_password(self, request: Request) -> Response:
        if self._bcrypt_pool is None:
            self._bcrypt_pool = ThreadPoolExecutor(BCRYPT_CONCURRENCY, thread_name_prefix="bcrypt")
        self._bcrypt_waiting += 1
        try:
            ok = await asyncio.get_running_loop().run_in_executor(
                self._bcrypt_pool, self.app.web_config.authorized, request.header("authorization")
            )
        finally:
            self._bcrypt_waiting -= 1
        if not ok:
            return self._finish(self._unauthorized())
        answer = self._route(request)
        return answer if isinstance(answer, Response) else await answer

    def _unauthorized(self) -> Response:
        return _text(401, b"Unauthorized\n", ("WWW-Authenticate", 'Basic realm="mlops-exporter"'))

    def _finish(self, response: Response) -> Response:
        response.headers += self._headers  # http_server_config.headers, on every response
        return response

    def _route(self, request: Request) -> Response | Deferred | Awaitable[Response]:
        if _split_target(request.target)[0] == "/-/reload":
            return self._lifecycle(request)
        if request.method not in ("GET", "HEAD"):
            return self._finish(_text(405, b"Method not allowed.\n", ("Allow", "GET, HEAD")))
        path, query = _split_target(request.target)
        if path == "/-/healthy":
            return self._finish(_text(200, b"Healthy.\n"))
        if path == "/-/ready":
            ready = self.app.ready()
            # Ready is about serving; what the exporter cannot use is said in the body too,
            # so a probe's log shows it (no files matched, a feature never in the records).
            notes = "".join(f"warning: {w}\n" for w in self.app.warnings()).encode()
            if ready:
                return self._finish(_text(200, b"Ready.\n" + notes))
            return self._finish(_text(503, b"Not ready.\n" + notes))
        if path == self.options.telemetry_path:
            return self.work.submit(request, lambda: self._metrics(request, parse_qs(query)))
        if path == "/":
            return self.work.submit(request, self._landing)
        return self._finish(_text(404, b"Not found.\n"))

    def _lifecycle(self, request: Request) -> Response | Awaitable[Response]:
        """``/-/reload`` as Prometheus answers it: ``POST`` or ``PUT`` reloads (only with
        ``--web.enable-lifecycle``, else ``403``), any other method gets ``405``."""
        if request.method not in ("POST", "PUT"):
            return self._finish(
                _text(405, b"Only POST or PUT requests allowed.\n", ("Allow", "POST, PUT"))
            )
        if self.app.reload is None:
            return self._finish(_text(403, b"Lifecycle API is not enabled.\n"))
        return self._reload(self.app.reload)

    async def _reload(self, reload: Callable[[], str | None]) -> Response:
        """Reload on a thread of its own (reading references may take a while); the answer
        waits for it: ``200``, or ``500`` with the one line that says why not."""
        if self._reload_pool is None:
            self._reload_pool = ThreadPoolExecutor(1, thread_name_prefix="reload")
        error = await asyncio.get_running_loop().run_in_executor(self._reload_pool, reload)
        if error is None:
            return self._finish(_text(200, b""))
        return self._finish(_text(500, f"failed to reload config: {error}\n".encode()))

    def _landing(self) -> Response:
        return Response(200, self.app.page(), [("Content-Type", "text/html; charset=utf-8")])

    def _metrics(self, request: Request, query: dict[str, list[str]]) -> Response:
        fmt = choose_format(request.header("accept"))
        if "name[]" in query:  # rare: prometheus_client's own (slower) encoders
            # the collectors describe() the metric catalog, so the registry finds them by name
            restricted = self.app.registry.restricted_registry(query["name[]"])
            body = (generate_openmetrics if fmt.openmetrics else generate_latest)(restricted)
        else:
            body = self.app.render(fmt.openmetrics)
        headers = [("Content-Type", fmt.content_type), ("Vary", VARY)]
        if accepts_gzip(request.header("accept-encoding")):
            # Between two ingests the body is the same: compress it once, not per scraper.
            cached = self._gzip_cache.get(fmt.openmetrics)
            if cached is not None and cached[0] == body:
                body = cached[1]
            else:
                compressed = gzip.compress(body, compresslevel=1)
                self._gzip_cache[fmt.openmetrics] = (body, compressed)
                body = compressed
            headers.append(("Content-Encoding", "gzip"))
        return Response(200, body, headers)


def _split_target(target: str) -> tuple[str, str]:
    """(path, query) of an origin-form (``/p?q``) or absolute-form (``http://h/p?q``) target.

    Not ``urlsplit`` alone: it reads ``//metrics`` as a host name.
    """
    if not target.startswith("/"):
        url = urlsplit(target)
        return url.path or "/", url.query
    path, _, query = target.partition("?")
    return path, query.partition("#")[0]


@dataclass
class Listener:
    """A bound, listening socket plus what serving it needs that costs descriptors: the
    event loop (epoll and its wake-up pipe) and the reserve for scrapes.

    :func:`bind` is called before the log follower opens any file, so too many log files
    can no longer make start-up fail with ``cannot listen: Too many open files``.
    """

    sock: socket.socket
    loop: asyncio.AbstractEventLoop
    reserve: DescriptorReserve
    address: str

    def close(self) -> None:
        """Release what :func:`bind` took, when the exporter fails before serving it."""
        self.sock.close()
        self.reserve.close()
        if not self.loop.is_closed():
            self.loop.close()


def bind(listen_address: str) -> Listener:
    """Listen on ``--web.listen-address`` now; a busy port is a one-line config error."""
    host, port = parse_listen_address(listen_address)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # As every server: a restart may bind while old connections sit in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host or "0.0.0.0", port))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"--web.listen-address {listen_address}: cannot listen: {exc.strerror or exc}"
        ) from None
    return Listener(sock, asyncio.new_event_loop(), DescriptorReserve(), listen_address)


class ExporterServer:
    """Serves ``app`` on an event-loop thread; binds at construction unless given a
    :class:`Listener` (so a busy port fails start-up either way)."""

    def __init__(
        self,
        listen: str | Listener,
        app: ServerApp,
        options: ServerOptions | None = None,
    ) -> None:
        self.options = options or ServerOptions()
        listener = bind(listen) if isinstance(listen, str) else listen
        context = app.web_config.ssl_context()
        self.tls = context is not None
        self._sock = listener.sock
        self._loop = listener.loop
        self._routes = _Routes(app, self.options)
        self._http = HttpServer(
            listener.sock,
            self._routes,
            ssl_context=context,
            limits=HttpLimits(header_timeout=self.options.header_timeout),
            reserve=listener.reserve,
        )
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="http", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(self._http.start)
        self._loop.run_forever()

    def shutdown(self) -> None:
        """Stop serving: close the listener and every connection, then the loop."""
        if self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop)
            self._thread.join(timeout=5)
        else:
            self._http.close()
        self._routes.close()
        if not self._loop.is_running():
            self._loop.close()

    def _stop(self) -> None:
        self._http.close()
        # One more turn, so the aborted connections run their connection_lost().
        self._loop.call_soon(self._loop.stop)


__all__ = [
    "DEFAULT_MAX_REQUESTS",
    "DEFAULT_TELEMETRY_PATH",
    "ExporterServer",
    "Listener",
    "ServerApp",
    "ServerOptions",
    "bind",
    "parse_listen_address",
]
