"""File-descriptor limits: raise the soft limit at start, and keep a few in reserve for scrapes.

Two things went wrong under the common soft limit of 1,024 descriptors: about 1,020
matching log files made start-up fail with a misleading ``cannot listen: Too many open
files``, and at run time every new log file took a descriptor a scrape then lacked.

- :func:`raise_open_files_limit` lifts the soft ``RLIMIT_NOFILE`` to the hard limit, as Go's
  runtime does at start for every Go exporter (the soft limit of 1,024 exists for programs
  still using ``select()``; this one uses ``epoll``).
- :class:`DescriptorReserve` holds a few descriptors open on ``/dev/null``, taken before any
  log file is opened.  When ``accept()`` fails for want of a descriptor, the HTTP server
  gives one back, accepts the scrape on it, and takes it again once a connection closes,
  so a process whose other descriptors are all in use still answers ``/metrics``.
"""

from __future__ import annotations

import contextlib
import os

import structlog

try:  # not on Windows
    import resource
except ImportError:  # pragma: no cover
    resource = None  # type: ignore[assignment]

log = structlog.get_logger("exporter.limits")

#: Descriptors the HTTP server holds back for scrapes once all others are in use.
RESERVED_DESCRIPTORS = 8


def raise_open_files_limit() -> tuple[int, int] | None:
    """Set the soft ``RLIMIT_NOFILE`` to the hard limit; ``(old, new)`` soft, or None.

    None when there is no such limit (Windows).  An unlimited hard limit is taken as
    1,048,576 (Linux's default ``fs.nr_open``): a soft limit of "unlimited" is refused.
    """
    if resource is None:  # pragma: no cover
        return None
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):  # pragma: no cover
        return None
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft != resource.RLIM_INFINITY and soft >= target:
        return soft, soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (OSError, ValueError) as exc:  # a sandbox may forbid it: keep going as before
        log.debug("open_files_limit_unchanged", soft=soft, hard=hard, error=str(exc))
        return soft, soft
    log.debug("open_files_limit_raised", soft=soft, to=target)
    return soft, target


class DescriptorReserve:
    """A few descriptors held open on ``/dev/null``, to be given back one at a time.

    Only the HTTP server's event-loop thread uses it, so it takes no lock.
    """

    def __init__(self, count: int = RESERVED_DESCRIPTORS) -> None:
        self.wanted = count
        self._fds: list[int] = []
        self.refill()

    @property
    def held(self) -> int:
        return len(self._fds)

    def release_one(self) -> bool:
        """Close one held descriptor, so the next ``open``/``accept`` can have its number."""
        if not self._fds:
            return False
        os.close(self._fds.pop())
        return True

    def refill(self) -> None:
        """Take descriptors back up to ``wanted``; stops quietly when none is free."""
        while len(self._fds) < self.wanted:
            try:
                self._fds.append(os.open(os.devnull, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)))
            except OSError:
                return

    def close(self) -> None:
        while self._fds:
            with contextlib.suppress(OSError):
                os.close(self._fds.pop())


__all__ = ["RESERVED_DESCRIPTORS", "DescriptorReserve", "raise_open_files_limit"]
