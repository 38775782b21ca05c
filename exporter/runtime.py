"""The exporter's own ``process_*`` and ``python_*`` metrics, computed at most once a second.

prometheus_client's ``ProcessCollector`` lists ``/proc/self/fd`` on every collect.  Called
once per request, 1,000 concurrent scrapes of a process holding 1,000 descriptors meant a
million directory entries read at once: py-spy showed every request thread there, and the
exporter stalled for 22 s.  :class:`RuntimeMetrics` collects them once, keeps the families
for :data:`RUNTIME_TTL` seconds, and hands every scrape in between the same tuple, which
:class:`exporter.exposition.MetricsRenderer` then also encodes only once (it caches a
section by the identity of its key).

One second is far below any scrape interval, so no Prometheus sees a value older than its
previous scrape, and it bounds the cost to one collect per second whatever the request rate.
``--web.disable-exporter-metrics`` leaves these families out entirely, as node_exporter's
flag of that name drops its ``go_*``/``process_*`` families.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import Metric

from exporter.exposition import Section

#: Seconds a collected set of process/python families is served before it is collected again.
RUNTIME_TTL = 1.0


class RuntimeMetrics:
    """``process_*`` (ProcessCollector), ``python_info`` and ``python_gc_*``, cached.

    A prometheus_client collector (``collect()``), so it can be registered for the rare
    ``?name[]=`` path, and a :data:`~exporter.exposition.Section` source for the fast path.
    Thread-safe: one thread refreshes, the others keep serving the previous tuple.
    """

    def __init__(
        self, ttl: float = RUNTIME_TTL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._registry = CollectorRegistry(auto_describe=False)
        for extra in (ProcessCollector, PlatformCollector, GCCollector):
            extra(registry=self._registry)
        self._ttl = ttl
        self._clock = clock
        self._families: tuple[Metric, ...] = ()
        self._expires = float("-inf")
        self._lock = threading.Lock()

    def families(self) -> tuple[Metric, ...]:
        """The cached families, collected again when older than the TTL."""
        now = self._clock()
        if now < self._expires:
            return self._families
        if not self._lock.acquire(blocking=False):
            return self._families  # another thread is collecting: the previous set will do
        try:
            if now >= self._expires:
                self._families = tuple(self._registry.collect())
                self._expires = self._clock() + self._ttl
            return self._families
        finally:
            self._lock.release()

    def collect(self) -> Iterable[Metric]:
        return self.families()

    def section(self) -> Section:
        """A renderer section keyed by the cached tuple itself: re-encoded once per refresh."""
        families = self.families()
        return families, lambda: families


__all__ = ["RUNTIME_TTL", "RuntimeMetrics"]
