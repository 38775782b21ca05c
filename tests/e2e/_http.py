"""Raw-socket HTTP for the end-to-end tests: what urllib would hide or refuse to send.

:class:`RawConnection` writes exact bytes (pipelined requests, bodies on a GET, malformed
heads) and reads responses back one at a time from one buffer, so a test can count how
many responses a connection really got.  :func:`process_status` reads a process's thread
count and RSS from ``/proc``; :func:`cpu_seconds` its user+system time.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from dataclasses import dataclass


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]  # names lower-case
    body: bytes


class RawConnection:
    """One TCP connection to ``127.0.0.1:port``, closed on ``with`` exit."""

    def __init__(self, port: int, timeout: float = 10.0, rcvbuf: int | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:  # before connect: it sets the window the server may fill
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        self.buf = b""

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buf += chunk
        return bool(chunk)

    def response(self, head_only: bool = False) -> RawResponse:
        """The next response; raises EOFError if the server closed before sending one."""
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                raise EOFError(f"connection closed; unread: {self.buf[:200]!r}")
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = 0 if head_only else int(headers.get("content-length", "0"))
        while len(self.buf) < length:
            if not self._fill():
                raise EOFError("connection closed inside a body")
        body, self.buf = self.buf[:length], self.buf[length:]
        return RawResponse(int(status_line.split(" ")[1]), headers, body)

    def closed_by_server(self, within: float) -> bool:
        """True if the server closes (EOF or reset) within ``within`` s, reading all it sends."""
        deadline = time.monotonic() + within
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                if not self._fill():
                    return True
            except TimeoutError:
                return False
            except ConnectionResetError:
                return True
        return False

    def quiet_for(self, seconds: float) -> bool:
        """True if nothing more arrives (and the connection stays open) for ``seconds``."""
        self.sock.settimeout(seconds)
        try:
            self._fill()
        except TimeoutError:
            return True
        return False


def request(path: str = "/metrics", headers: dict[str, str] | None = None, *,
            method: str = "GET", body: bytes = b"") -> bytes:  # fmt: skip
    """The bytes of one HTTP/1.1 request."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def process_status(pid: int) -> tuple[int, int]:
    """(threads, RSS in bytes) of process ``pid``, from ``/proc/<pid>/status``."""
    threads = rss = 0
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("Threads:"):
                threads = int(line.split()[1])
            elif line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
    return threads, rss


def cpu_seconds(pid: int, tid: int | None = None) -> float:
    """User + system CPU seconds of process ``pid`` (or of its thread ``tid``) so far."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    with open(path, encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU seconds of every thread of process ``pid``, by thread id."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(FileNotFoundError):  # the thread just ended
            out[int(tid)] = cpu_seconds(pid, int(tid))
    return out


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))
