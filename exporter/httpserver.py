"""A small HTTP/1.1 server on one asyncio event loop: bounded threads, deadlines, descriptors.

Why not ``http.server.ThreadingHTTPServer`` any more: it starts one thread per connection
and only times out a socket that is silent for its whole timeout.  4,000 slow connections
meant 4,007 threads (+87 MB), a client sending one byte every 4 s was never cut, and the
listen backlog of 5 dropped SYNs.  Here every connection is a small :class:`_Connection`
object on one event-loop thread, and:

- **a deadline for the whole request head** (``header_timeout``, also bounding the TLS
  handshake): a client that drips bytes is answered ``408`` and closed when it expires,
  however often it sends.  A connection that finished a request may then stay idle for
  ``idle_timeout`` (Prometheus keeps connections alive between scrapes).
- **a write deadline** (``write_timeout``): a client that stops reading its response is
  dropped, and whatever the response held (a concurrency slot) is given back.
- **request bodies are read, never parsed as the next request** (``Content-Length`` up to
  ``max_body_bytes``, discarded; larger gets ``413``).  ``Transfer-Encoding`` is refused with
  ``411`` and the connection closed, and with ``Content-Length`` too with ``400``: those are
  how a front proxy and this server could disagree on where a request ends (smuggling).
- **a listen backlog of** :data:`BACKLOG` (the kernel caps it at ``net.core.somaxconn``),
  not 5: a burst of connects is queued instead of waiting a second for a retried SYN.
- **descriptors for scrapes**: when ``accept()`` fails with ``EMFILE``, the oldest
  connection waiting for a request is dropped and one descriptor of the
  :class:`~exporter.limits.DescriptorReserve` is given back so the new connection is
  served now; the reserve is taken again as connections close.
- no ``Server`` header (``http.server`` sent the Python version).

Responses are built by a handler, ``Request -> Response | Awaitable[Response]``, called on
the loop thread: it must not block (:mod:`exporter.server` hands bcrypt to a thread).
Pipelined requests are answered one at a time, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import re
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from typing import Any

import structlog

from exporter.limits import DescriptorReserve

log = structlog.get_logger("exporter.http")

#: Asked of listen(); Linux silently caps it at net.core.somaxconn (4096 on current kernels).
BACKLOG = 4096
#: Connections accepted per wake-up of the listener, so a flood cannot starve the others.
_ACCEPT_BURST = 64
_OUT_OF_DESCRIPTORS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}

_HEAD_END = re.compile(rb"\r?\n\r?\n")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TARGET = re.compile(r"[\x21-\x7e]+")
_VERSION = re.compile(r"HTTP/([0-9])\.([0-9])")
_MAX_HEADERS = 100


@dataclass(frozen=True)
class HttpLimits:
    """Deadlines (seconds) and sizes (bytes) every connection is held to."""

    header_timeout: float = 10.0
    idle_timeout: float = 120.0
    write_timeout: float = 30.0
    max_header_bytes: int = 16 << 10
    max_body_bytes: int = 64 << 10


@dataclass(slots=True)
class Request:
    """One parsed request head; header names are lower-case, repeated ones joined by ``, ``.

    ``pause`` is how long its connection was quiet before this request began: seconds from
    the previous answer (or the accept) to the request's first byte.  :mod:`exporter.server`
    serves a scraper that pauses between scrapes before a client that asks again the moment
    it is answered.
    """

    method: str
    target: str
    version: tuple[int, int]
    headers: dict[str, str]
    pause: float = 0.0

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


@dataclass(slots=True)
class Response:
    """What a handler returns.  ``on_done`` runs once, when the response has been handed to
    the kernel entirely or the connection is gone (to give back a concurrency slot)."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    close: bool = False
    on_done: Callable[[], None] | None = None


class Deferred:
    """A response promised for later, by a queue that answers requests in its own order.

    Unlike an ``asyncio.Future``, whose callbacks wait for the next turn of the loop,
    :meth:`resolve` hands the response to the connection at once, so it is on its way
    (and its concurrency slot possibly free) before the loop reads more requests.
    Awaitable, for a coroutine that has to wait for one.
    """

    __slots__ = ("_callback", "_response")

    def __init__(self) -> None:
        self._callback: Callable[[Response], None] | None = None
        self._response: Response | None = None

    @property
    def done(self) -> bool:
        return self._response is not None

    def resolve(self, response: Response) -> None:
        if self._response is not None:
            return
        self._response = response
        callback, self._callback = self._callback, None
        if callback is not None:
            callback(response)

    def then(self, callback: Callable[[Response], None]) -> None:
        if self._response is not None:
            callback(self._response)
        else:
            self._callback = callback

    def __await__(self) -> Generator[Any, None, Response]:
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self.then(future.set_result)
        return (yield from future.__await__())


#: Answers a request now (a Response), later (a Deferred), or after some awaiting (a
#: coroutine giving a Response: it gets a task of its own).
Handler = Callable[[Request], "Response | Deferred | Awaitable[Response]"]


class HttpError(Exception):
    """A request that cannot be served: answered with ``status`` and the connection closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def parse_head(head: bytes) -> Request:
    """The request line and header fields of ``head`` (without the blank line after it).

    Strict where leniency lets two parsers disagree about a request (RFC 9112 §2.2, §5):
    a bare CR, whitespace before a field's colon, and obsolete line folding are all
    ``400``.  A lone LF ends a line, as RFC 9112 allows and ``http.server`` did.
    """
    lines = head.split(b"\n")
    lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
    if any(b"\r" in line or b"\0" in line for line in lines):
        raise HttpError(400, "bare CR or NUL in the request head")
    request_line = lines[0].decode("latin-1")
    parts = request_line.split(" ")
    if len(parts) != 3:
        raise HttpError(400, "malformed request line")
    method, target, version_text = parts
    if not _TOKEN.fullmatch(method) or not _TARGET.fullmatch(target):
        raise HttpError(400, "malformed request line")
    version = _VERSION.fullmatch(version_text)
    if version is None:
        raise HttpError(400, "malformed HTTP version")
    if version.group(1) != "1":
        raise HttpError(505, "only HTTP/1.x is served")
    if len(lines) - 1 > _MAX_HEADERS:
        raise HttpError(431, "too many header fields")
    headers: dict[str, str] = {}
    for raw in lines[1:]:
        if raw[:1] in (b" ", b"\t"):
            raise HttpError(400, "obsolete line folding")
        name, sep, value = raw.decode("latin-1").partition(":")
        if not sep or not _TOKEN.fullmatch(name):
            raise HttpError(400, "malformed header field")
        name = name.lower()
        value = value.strip(" \t")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return Request(method, target, (1, int(version.group(2))), headers)


def body_length(request: Request) -> int:
    """Bytes of body after the head: 0 without ``Content-Length``; refuses what could be
    read two ways (``Transfer-Encoding``, conflicting or malformed lengths)."""
    if "transfer-encoding" in request.headers:
        if "content-length" in request.headers:
            raise HttpError(400, "both Transfer-Encoding and Content-Length")
        raise HttpError(411, "request bodies need a Content-Length")
    value = request.headers.get("content-length")
    if value is None:
        return 0
    lengths = {v.strip() for v in value.split(",")}
    if len(lengths) != 1:
        raise HttpError(400, "conflicting Content-Length values")
    (length,) = lengths
    if not length.isdigit() or not length.isascii() or len(length) > 18:
        raise HttpError(400, "malformed Content-Length")
    return int(length)


def keep_alive(request: Request) -> bool:
    """HTTP/1.1 keeps the connection unless told ``close``; HTTP/1.0 only if asked to."""
    tokens = {t.strip().lower() for t in request.headers.get("connection", "").split(",")}
    if request.version >= (1, 1):
        return "close" not in tokens
    return "keep-alive" in tokens


_date_cache: tuple[int, str] = (0, "")


def _http_date() -> str:
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True))
    return _date_cache[1]


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


# Connection states.
_WAITING, _BODY, _BUSY, _CLOSED = range(4)


class _Connection(asyncio.Protocol):
    """One client connection: reads a request, lets the handler answer, repeats."""

    __slots__ = (
        "_body_left",
        "_buf",
        "_deadline",
        "_done",
        "_eof",
        "_flush_pending",
        "_idle_since",
        "_in_request",
        "_keep",
        "_pause",
        "_proven",
        "_reading_paused",
        "_request",
        "_sending",
        "_server",
        "_state",
        "transport",
    )

    def __init__(self, server: HttpServer) -> None:
        self._server = server
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._state = _WAITING
        self._deadline: asyncio.TimerHandle | None = None
        self._in_request = False  # bytes of the next request have arrived
        self._proven = False  # a request was served: idle_timeout applies between requests
        self._body_left = 0
        self._request: Request | None = None
        self._keep = True
        self._done: Callable[[], None] | None = None
        self._flush_pending = False
        self._sending = False  # a response is being handed to the kernel
        self._reading_paused = False
        self._eof = False
        self._idle_since = 0.0
        self._pause = 0.0

    # --- asyncio callbacks ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # Head and body go out in one write, but a 100 Continue or a pipelined answer
            # must not wait ~40 ms for the client's delayed ACK either.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # pause_writing() as soon as anything is buffered, resume_writing() once all of it
        # reached the kernel: "the response is delivered" is then exact.
        transport.set_write_buffer_limits(high=0, low=0)
        self._idle_since = asyncio.get_running_loop().time()
        self._server.opened(self)
        self._wait_for_request()

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if self._state == _BUSY:
            # Pipelined bytes wait their turn; stop reading if a client floods them.
            if len(self._buf) > self._server.limits.max_header_bytes and not self._reading_paused:
                self._reading_paused = True
                self._transport().pause_reading()
            return
        self._advance()

    def eof_received(self) -> bool | None:
        self._eof = True
        if self._state != _BUSY:
            return None  # nothing to answer: let the transport close
        # Half-closed after its request (``printf 'GET ...' | nc``): answer, then close.
        # (asyncio's TLS transport cannot stay half-open and would warn.)
        return self._transport().get_extra_info("sslcontext") is None

    def pause_writing(self) -> None:
        self._flush_pending = True

    def resume_writing(self) -> None:
        self._flush_pending = False
        if self._sending:  # not for a "100 Continue" that had to wait
            self._flushed()

    def connection_lost(self, exc: Exception | None) -> None:
        self._state = _CLOSED
        self._cancel_deadline()
        self._finish_response()
        self._server.closed(self)

    # --- reading ----------------------------------------------------------------------------

    def _transport(self) -> asyncio.Transport:
        assert self.transport is not None
        return self.transport

    def _wait_for_request(self) -> None:
        self._state = _WAITING
        self._in_request = False
        limits = self._server.limits
        self._set_deadline(limits.idle_timeout if self._proven else limits.header_timeout)

    def _advance(self) -> None:
        limits = self._server.limits
        if self._state == _WAITING:
            if not self._in_request:
                # RFC 9112 §2.2: ignore empty lines before a request line.
                while self._buf.startswith((b"\r", b"\n")):
                    del self._buf[:1]
                if not self._buf:
                    return
                self._in_request = True
                self._pause = asyncio.get_running_loop().time() - self._idle_since
                if self._proven:  # idle time is over: the head must now arrive in time
                    self._set_deadline(limits.header_timeout)
            end = _HEAD_END.search(self._buf)
            if end is None:
                if len(self._buf) > limits.max_header_bytes:
                    self._fail(431, "request head too large")
                return
            if end.start() > limits.max_header_bytes:
                self._fail(431, "request head too large")
                return
            head = bytes(self._buf[: end.start()])
            del self._buf[: end.end()]
            try:
                request = parse_head(head)
                length = body_length(request)
            except HttpError as exc:
                self._fail(exc.status, str(exc))
                return
            if length > limits.max_body_bytes:
                self._fail(413, "request body too large")
                return
            request.pause = self._pause
            self._request = request
            self._body_left = length
            self._state = _BODY
            if length > len(self._buf) and "100-continue" in request.headers.get("expect", ""):
                self._transport().write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if self._state == _BODY:
            take = min(self._body_left, len(self._buf))
            del self._buf[:take]  # read and dropped: no endpoint takes a body
            self._body_left -= take
            if self._body_left:
                return
            pending, self._request = self._request, None
            assert pending is not None
            self._dispatch(pending)

    # --- answering --------------------------------------------------------------------------

    def _dispatch(self, request: Request) -> None:
        self._state = _BUSY
        self._cancel_deadline()
        self._server.busy(self)
        try:
            result = self._server.handler(request)
        except Exception:
            log.exception("request_failed", target=request.target)
            result = Response(500, b"Internal error.\n", close=True)
        if isinstance(result, Response):
            self._send(request, result)
        elif isinstance(result, Deferred):
            result.then(lambda response: self._answer_later(request, response))
        else:  # a coroutine (a password check): a task of its own
            task = asyncio.ensure_future(result)
            self._server.track(task)
            task.add_done_callback(lambda done: self._task_done(request, done))

    def _task_done(self, request: Request, done: asyncio.Future[Response]) -> None:
        if done.cancelled():  # the server is closing
            return
        exc = done.exception()
        if exc is not None:
            log.error("request_failed", target=request.target, error=repr(exc))
            self._answer_later(request, Response(500, b"Internal error.\n", close=True))
        else:
            self._answer_later(request, done.result())

    def _answer_later(self, request: Request, response: Response) -> None:
        if self._state == _CLOSED:  # the client left while we waited
            if response.on_done is not None:
                response.on_done()
            return
        self._send(request, response)

    def _send(self, request: Request, response: Response) -> None:
        closing = response.close or self._eof or self._server.closing
        self._keep = keep_alive(request) and not closing
        head = [f"HTTP/1.1 {response.status} {_reason(response.status)}"]
        head += [f"{name}: {value}" for name, value in response.headers]
        head.append(f"Content-Length: {len(response.body)}")
        head.append(f"Date: {_http_date()}")
        if not self._keep:
            head.append("Connection: close")
        elif request.version < (1, 1):
            head.append("Connection: keep-alive")
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        if request.method != "HEAD":
            data += response.body
        self._done = response.on_done
        self._sending = True
        transport = self._transport()
        transport.write(data)
        if self._flush_pending:  # some of it is still in our buffer: wait for the kernel
            self._set_deadline(self._server.limits.write_timeout, abort=True)
        else:
            self._flushed()

    def _flushed(self) -> None:
        self._sending = False
        self._cancel_deadline()
        self._finish_response()
        if self._state == _CLOSED:
            return
        if not self._keep:
            self._close()
            return
        self._proven = True
        self._idle_since = asyncio.get_running_loop().time()
        self._wait_for_request()
        self._server.waiting(self)
        if self._reading_paused:
            self._reading_paused = False
            self._transport().resume_reading()
        if self._buf:  # a pipelined request: answer it on the next turn of the loop
            asyncio.get_running_loop().call_soon(self._advance_if_waiting)

    def _advance_if_waiting(self) -> None:
        if self._state == _WAITING:
            self._advance()

    def _finish_response(self) -> None:
        done, self._done = self._done, None
        if done is not None:
            done()

    def _fail(self, status: int, reason: str) -> None:
        """Answer a request that cannot be read further, then close."""
        log.debug("bad_request", status=status, reason=reason)
        self._state = _BUSY
        self._cancel_deadline()
        self._buf.clear()
        body = f"{_reason(status)}: {reason}.\n".encode()
        self._send(
            Request("GET", "*", (1, 1), {}),
            Response(status, body, [("Content-Type", "text/plain; charset=utf-8")], close=True),
        )

    # --- deadlines --------------------------------------------------------------------------

    def _set_deadline(self, seconds: float, *, abort: bool = False) -> None:
        self._cancel_deadline()
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(seconds, self._expired, abort)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self, abort: bool) -> None:
        self._deadline = None
        if self._state == _CLOSED:
            return
        if abort:  # the client stopped reading its response
            log.debug("write_timeout")
            self._transport().abort()
        elif self._in_request:  # part of a request came, not all of it in time
            self._fail(408, "the request did not arrive in time")
        else:  # idle (or silent since connecting): nothing to answer
            self._close()

    @property
    def proven(self) -> bool:
        return self._proven

    def drop(self) -> None:
        """Close now, without a response (to free a descriptor for a new connection)."""
        self._cancel_deadline()
        self._transport().abort()

    def _close(self) -> None:
        self._cancel_deadline()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


class HttpServer:
    """Accepts on a bound, listening socket and serves each connection with ``handler``.

    Every method runs on the event-loop thread.  ``ssl_context`` wraps connections in TLS
    (the handshake must finish within ``header_timeout``).
    """

    def __init__(
        self,
        sock: socket.socket,
        handler: Handler,
        *,
        ssl_context: ssl.SSLContext | None = None,
        limits: HttpLimits | None = None,
        reserve: DescriptorReserve | None = None,
    ) -> None:
        self.sock = sock
        self.handler = handler
        self.ssl_context = ssl_context
        self.limits = limits or HttpLimits()
        self.reserve = reserve
        self.closing = False
        self._connections: set[_Connection] = set()
        # Connections waiting for a request, oldest first: the first to drop for a descriptor.
        self._waiting: dict[_Connection, None] = {}
        self._tasks: set[asyncio.Future[Any]] = set()  # referenced until done
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_exhausted_log = float("-inf")

    @property
    def connections(self) -> int:
        return len(self._connections)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.sock.setblocking(False)
        self._loop.add_reader(self.sock.fileno(), self._accept)

    def close(self) -> None:
        """Stop accepting and close every connection; a response in flight is cut."""
        self.closing = True
        if self._loop is not None:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(self.sock.fileno())
        self.sock.close()
        for task in list(self._tasks):
            task.cancel()
        for conn in list(self._connections):
            conn.drop()
        if self.reserve is not None:
            self.reserve.close()

    # --- bookkeeping from the connections ---------------------------------------------------

    def track(self, task: asyncio.Future[Any]) -> None:
        """Keep a reference to ``task`` until it is done (the loop only holds weak ones)."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def opened(self, conn: _Connection) -> None:
        self._connections.add(conn)
        self._waiting[conn] = None

    def waiting(self, conn: _Connection) -> None:
        self._waiting.pop(conn, None)
        self._waiting[conn] = None  # to the end: the most recently active

    def busy(self, conn: _Connection) -> None:
        self._waiting.pop(conn, None)

    def closed(self, conn: _Connection) -> None:
        self._connections.discard(conn)
        self._waiting.pop(conn, None)
        if self.reserve is not None and self.reserve.held < self.reserve.wanted:
            # The socket is closed after this callback returns: take its number next turn.
            assert self._loop is not None
            self._loop.call_soon(self.reserve.refill)

    # --- accepting --------------------------------------------------------------------------

    def _accept(self) -> None:
        for _ in range(_ACCEPT_BURST):
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _OUT_OF_DESCRIPTORS:
                    self._out_of_descriptors()
                    return
                if exc.errno in (errno.ECONNABORTED, errno.EPROTO, errno.EPERM):
                    continue  # the client gave up before we accepted
                log.warning("accept_failed", error=str(exc))
                return
            self._serve(conn)

    def _out_of_descriptors(self) -> None:
        """``accept()`` found no free descriptor: make room, and serve one client now."""
        now = time.monotonic()
        if now - self._last_exhausted_log > 10:
            self._last_exhausted_log = now
            log.warning(
                "descriptors_exhausted",
                connections=len(self._connections),
                hint="raise the hard RLIMIT_NOFILE (ulimit -Hn), or follow fewer log files",
            )
        # The two oldest connections still waiting for their first request (slow or silent
        # clients), else the two longest idle: a scraper reconnects, a slowloris loses.
        victims = [c for c in self._waiting if not c.proven][:2] or list(self._waiting)[:2]
        for victim in victims:
            victim.drop()
        if self.reserve is not None and self.reserve.release_one():
            try:
                sock, _ = self.sock.accept()
            except OSError:
                return
            self._serve(sock)
            return
        # Nothing to give back: do not spin on a listener that stays readable.
        assert self._loop is not None
        self._loop.remove_reader(self.sock.fileno())
        self._loop.call_later(0.05, self._resume_accepting)

    def _resume_accepting(self) -> None:
        if not self.closing:
            assert self._loop is not None
            self._loop.add_reader(self.sock.fileno(), self._accept)

    def _serve(self, conn: socket.socket) -> None:
        conn.setblocking(False)
        assert self._loop is not None
        task = self._loop.create_task(
            self._loop.connect_accepted_socket(
                lambda: _Connection(self),
                conn,
                ssl=self.ssl_context,
                ssl_handshake_timeout=self.limits.header_timeout if self.ssl_context else None,
                ssl_shutdown_timeout=5.0 if self.ssl_context else None,
            )
        )
        self.track(task)
        task.add_done_callback(self._handshake_done)

    def _handshake_done(self, task: asyncio.Future[Any]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:  # TLS failures and resets from scanners: one debug line
            log.debug("connection_error", error=str(exc) or type(exc).__name__)


__all__ = [
    "BACKLOG",
    "Deferred",
    "Handler",
    "HttpError",
    "HttpLimits",
    "HttpServer",
    "Request",
    "Response",
    "body_length",
    "keep_alive",
    "parse_head",
]
