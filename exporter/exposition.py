"""Fast encoding of the exporter's metric families, with per-snapshot caching.

prometheus_client's encoders re-validate and re-escape every name on every sample, which
costs about 7 µs per series: 20 ms for the 2 600 series of a 100-feature model, more than
the whole scrape budget.  This module produces byte-identical output (checked against
prometheus_client in ``tests/test_collector.py``) for the metric types the exporter yields,
and caches the encoded text of the parts that only change when a new drift snapshot is
swapped in (the drift gauges) or never (the reference buckets).  Only the live counters are
collected and encoded on each scrape, and they still come from fresh ``*MetricFamily``
objects built from ``IngestCounters.snapshot()``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from prometheus_client.core import Metric
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

#: A section of the output: a cache key (``None``: never cached) and how to build it.
Section = tuple[Any, Callable[[], Iterable[Metric]]]


class PrefixedFamily(Metric):
    """A family whose series are known before their values: the text of each series up to
    its value (name and labels, escaped and sorted as :func:`encode` writes them) is built
    once, and a scrape only formats the values.

    For counters that are served every scrape and whose label sets are fixed for the life
    of the object that counts them: the bucket observations of thousands of series.  Added
    to in chunks (one per model, :meth:`add_chunk`, :meth:`extend`); ``samples`` gives the
    usual :class:`~prometheus_client.samples.Sample` list for any other encoder.
    """

    def __init__(self, name: str, documentation: str, typ: str, unit: str = "") -> None:
        self._chunks: list[tuple[SeriesPrefixes, Sequence[float]]] = []
        super().__init__(name, documentation, typ, unit)

    @property
    def samples(self) -> list[Sample]:
        out = []
        for prefixes, values in self._chunks:
            for name, labels, value in zip(prefixes.names, prefixes.labels, values, strict=True):
                out.append(Sample(name, dict(labels), float(value)))
        return out

    @samples.setter
    def samples(self, value: list[Sample]) -> None:
        if value:  # Metric.__init__ sets an empty list; nothing else may set it
            raise TypeError("a PrefixedFamily takes its samples in chunks")

    def add_chunk(self, prefixes: SeriesPrefixes, values: Sequence[float]) -> None:
        if len(values) != len(prefixes.texts):
            raise ValueError(f"{len(values)} values for {len(prefixes.texts)} series")
        self._chunks.append((prefixes, values))

    def extend(self, other: PrefixedFamily) -> None:
        self._chunks.extend(other._chunks)

    def encoded_samples(self) -> str:
        out: list[str] = []
        for prefixes, values in self._chunks:
            out += map(str.__add__, prefixes.texts, map(_value_line, values))
        return "".join(out)


class SeriesPrefixes:
    """The text of each series of a :class:`PrefixedFamily` up to its value, built once."""

    __slots__ = ("labels", "names", "texts")

    def __init__(self, name: str, labels: Sequence[Sequence[tuple[str, str]]]) -> None:
        self.names = [name] * len(labels)
        self.labels = [tuple(pairs) for pairs in labels]
        self.texts = [f"{name}{{{_labels_text(pairs)}}} " for pairs in labels]


def _labels_text(pairs: Sequence[tuple[str, str]]) -> str:
    return ",".join(f'{k}="{_label_value(v)}"' for k, v in sorted(pairs))


def _value_line(value: float) -> str:
    """``floatToGoString(value)`` and a newline; whole counts below 1e15 without the call."""
    if type(value) is int and 0 <= value < 1_000_000_000_000_000:
        return f"{value}.0\n"
    return f"{floatToGoString(value)}\n"


def _label_value(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def encode(families: Iterable[Metric], openmetrics: bool) -> str:
    """Text format 0.0.4 (or OpenMetrics 1.0 without the final ``# EOF``) of ``families``.

    Handles gauge, counter, histogram, summary and info families without timestamps or
    exemplars, which is what the exporter and prometheus_client's process collectors yield.
    """
    out: list[str] = []
    append = out.append
    for metric in families:
        name, mtype, doc = metric.name, metric.type, metric.documentation
        if openmetrics:
            doc = _label_value(doc)  # OpenMetrics escapes HELP like a label value
            append(f"# HELP {name} {doc}\n# TYPE {name} {mtype}\n")
            if metric.unit:
                append(f"# UNIT {name} {metric.unit}\n")
        else:
            if mtype == "counter":
                name += "_total"
            elif mtype == "info":
                name += "_info"
                mtype = "gauge"
            elif mtype == "unknown":
                mtype = "untyped"
            doc = doc.replace("\\", r"\\").replace("\n", r"\n")
            append(f"# HELP {name} {doc}\n# TYPE {name} {mtype}\n")
        if type(metric) is PrefixedFamily:
            append(metric.encoded_samples())
            continue
        for s in metric.samples:
            if s.labels:
                labels = ",".join(f'{k}="{_label_value(v)}"' for k, v in sorted(s.labels.items()))
                append(f"{s.name}{{{labels}}} {floatToGoString(s.value)}\n")
            else:
                append(f"{s.name} {floatToGoString(s.value)}\n")
    return "".join(out)


def _same(cached: Any, key: Any) -> bool:
    """The same key: the very object, or a tuple of the very same objects (one per model)."""
    if cached is key:
        return True
    return (
        type(cached) is tuple
        and type(key) is tuple
        and len(cached) == len(key)
        and all(a is b for a, b in zip(cached, key, strict=True))
    )


class MetricsRenderer:
    """Renders ``sections()`` to bytes, reusing the encoding of sections whose key is unchanged.

    ``sections`` is called once per scrape; a section whose key is the very object it was
    last encoded with (an immutable snapshot, say), or a tuple of the very same objects, is
    not collected again.  Thread-safe:
    concurrent scrapes may both encode a new section, and either result is the same.
    """

    def __init__(self, sections: Callable[[], Sequence[Section]]) -> None:
        self._sections = sections
        self._cache: dict[tuple[int, bool], tuple[Any, str]] = {}
        self._lock = threading.Lock()

    def warm(self, openmetrics: bool = False) -> None:
        """Encode now the cached sections whose key changed (the drift job calls it after a
        pass), so that the next scrape finds them encoded: a scrape then only encodes the
        live counters, however many models and features the passes judge."""
        for index, (key, build) in enumerate(self._sections()):
            if key is None:
                continue
            slot = (index, openmetrics)
            with self._lock:
                cached = self._cache.get(slot)
            if cached is None or not _same(cached[0], key):
                text = encode(build(), openmetrics)
                with self._lock:
                    self._cache[slot] = (key, text)

    def render(self, openmetrics: bool = False) -> bytes:
        parts: list[str] = []
        for index, (key, build) in enumerate(self._sections()):
            slot = (index, openmetrics)
            if key is not None:
                with self._lock:
                    cached = self._cache.get(slot)
                if cached is not None and _same(cached[0], key):
                    parts.append(cached[1])
                    continue
            text = encode(build(), openmetrics)
            if key is not None:
                with self._lock:
                    self._cache[slot] = (key, text)
            parts.append(text)
        if openmetrics:
            parts.append("# EOF\n")
        return "".join(parts).encode("utf-8")
