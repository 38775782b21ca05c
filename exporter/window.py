"""The sliding window of recent predictions that the drift and latency pass works on.

Memory is fixed when the window is built: one ring buffer per feature plus one for latency
and one for timestamps, each ``max_samples`` long, however many lines the logs hold.  A
prediction leaves the window when ``max_samples`` newer ones arrived (count) or when it is
older than ``max_age`` seconds (age, by the record's own timestamp; timestamps in the future
are taken as "now", so a skewed clock cannot pin records in the window).

Age eviction happens on every add and every :meth:`Window.snapshot` (by the window's clock),
so a window that receives nothing still empties as its predictions age.

Thread model: one thread calls :meth:`Window.add`, others read.  Both take the window's
lock, and the one read, :meth:`Window.snapshot`, copies every column from the *same* set of
predictions, so a reader never sees half of a batch.

Values as returned to the drift pass:

- numeric feature: the finite float64 values (missing ones left out);
- categorical feature: the raw category strings as an object array (missing ones left out),
  which ``mlops_core.drift``'s chi-square and PSI accept together with the feature's profile.
  :meth:`WindowSnapshot.bucket_counts` gives the counts per reference bucket instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from exporter.errors import ConfigError
from exporter.records import ParsedBatch
from exporter.typing import FeatureKind

if TYPE_CHECKING:
    from mlops_core.profile import ReferenceProfile


@dataclass(frozen=True)
class WindowSnapshot:
    """An immutable copy of the window's contents, all columns from the same predictions."""

    timestamps: np.ndarray
    latency_seconds: np.ndarray  # NaN where a record had no latency
    columns: dict[str, np.ndarray]  # float64 with NaN / object with None for missing
    kinds: dict[str, FeatureKind]

    def samples(self) -> int:
        return len(self.timestamps)

    def values(self, feature: str) -> np.ndarray:
        return _present_values(self.columns[feature], self.kinds[feature])

    def missing_ratio(self, feature: str) -> float:
        return _missing_ratio(self.columns[feature], self.kinds[feature])

    def latencies(self) -> np.ndarray:
        return self.latency_seconds[np.isfinite(self.latency_seconds)]

    def bucket_counts(self, feature: str, profile: ReferenceProfile) -> np.ndarray:
        """Counts of the present values per bucket of ``profile[feature]`` (int64)."""
        feature_profile = profile[feature]
        indices = feature_profile.bucketize(self.values(feature))
        return np.bincount(indices, minlength=len(feature_profile.bucket_labels)).astype(np.int64)


def _present(column: np.ndarray) -> np.ndarray:
    # numpy's stubs take no None operand; at run time it is the object scalar compared with
    return np.not_equal(column, None)  # type: ignore[call-overload]


def _present_values(column: np.ndarray, kind: str) -> np.ndarray:
    if kind == "numeric":
        return column[np.isfinite(column)]
    return column[_present(column)]


def _missing_ratio(column: np.ndarray, kind: str) -> float:
    if len(column) == 0:
        return 0.0
    if kind == "numeric":
        missing = int(np.count_nonzero(np.isnan(column)))
    else:
        missing = len(column) - int(np.count_nonzero(_present(column)))
    return missing / len(column)


class Window:
    """Fixed-size ring buffers per feature, evicting by count and by age; see module doc."""

    def __init__(
        self,
        profile: ReferenceProfile,
        features: Sequence[str],
        *,
        max_samples: int = 10_000,
        max_age: float | None = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_samples < 1:
            raise ConfigError(f"drift.window.max_samples must be at least 1, not {max_samples}")
        if max_age is not None and not max_age > 0:
            raise ConfigError(f"drift.window.max_age must be positive, not {max_age}")
        self.kinds: dict[str, FeatureKind] = {}
        for name in features:
            if name not in profile:
                raise ConfigError(f"feature {name!r} is not in the reference profile")
            self.kinds[name] = profile[name].kind
        self.features = list(features)
        self.max_samples = max_samples
        self.max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._ts = np.zeros(max_samples, dtype=np.float64)
        self._lat = np.full(max_samples, np.nan)
        self._cols: dict[str, np.ndarray] = {
            name: np.full(max_samples, np.nan)
            if kind == "numeric"
            else np.full(max_samples, None, dtype=object)
            for name, kind in self.kinds.items()
        }
        self._start = 0  # slot of the oldest sample
        self._count = 0
        #: predictions added since the window was built that were already older than
        #: ``max_age`` by the clock when added, counted since the last batch that brought a
        #: fresh one (or since the window was built), and the newest timestamp among them.
        #: Judged at ingest, not from an empty window later: a window that emptied because
        #: traffic stopped (overnight) held fresh predictions, and its timestamps are fine.
        self.too_old = 0
        self.newest_too_old: float | None = None

    # --- writing ----------------------------------------------------------------------------

    def add(self, batch: ParsedBatch) -> None:
        """Append the batch's predictions (only the newest ``max_samples`` can stay)."""
        n = batch.n_predictions
        if n == 0:
            return
        now = self._clock()
        take = slice(max(0, n - self.max_samples), n)
        ts = np.minimum(np.asarray(batch.timestamps_of(take), dtype=np.float64), now)
        lat = batch.latency_seconds[take]
        columns = {}
        for name, kind in self.kinds.items():
            column = batch.features.get(name)
            if column is None:  # the parser was not asked for it: missing everywhere
                column = np.full(n, np.nan) if kind == "numeric" else np.full(n, None, object)
            columns[name] = column[take]
        k = len(ts)
        newest = float(ts.max()) if k else None
        # By batch: a batch with one fresh prediction resets the count, so a late record
        # among live traffic is no "all too old"; the count-evicted head of an over-long
        # batch is judged with the rest of it
        too_old = self.max_age is not None and newest is not None and newest < now - self.max_age
        with self._lock:
            if not too_old or newest is None:
                self.too_old, self.newest_too_old = 0, None
            else:
                self.too_old += n
                self.newest_too_old = max(newest, self.newest_too_old or newest)
            end = (self._start + self._count) % self.max_samples
            first = min(k, self.max_samples - end)
            spans = [(end, 0, first), (0, first, k - first)] if k > first else [(end, 0, k)]
            for slot, src, length in spans:
                dst = slice(slot, slot + length)
                part = slice(src, src + length)
                self._ts[dst] = ts[part]
                self._lat[dst] = lat[part]
                for name, column in columns.items():
                    self._cols[name][dst] = column[part]
            overflow = max(0, self._count + k - self.max_samples)
            self._count = min(self.max_samples, self._count + k)
            self._start = (self._start + overflow) % self.max_samples
            self._evict_locked(now)

    def _evict_locked(self, now: float) -> None:
        if self.max_age is None or self._count == 0:
            return
        order = self._order()
        cutoff = now - self.max_age
        keep = self._ts[order] >= cutoff
        if keep.all():
            return
        kept = order[keep]
        n = len(kept)
        # Compact the survivors, oldest first, to the start of the buffers.
        self._ts[:n] = self._ts[kept]
        self._lat[:n] = self._lat[kept]
        for name, column in self._cols.items():
            column[:n] = column[kept]
            column[n:] = np.nan if self.kinds[name] == "numeric" else None
        self._start = 0
        self._count = n

    def _order(self) -> np.ndarray:
        return (self._start + np.arange(self._count)) % self.max_samples

    # --- reading ----------------------------------------------------------------------------

    def samples(self) -> int:
        """How many predictions the window holds now (after evicting the too old ones)."""
        with self._lock:
            self._evict_locked(self._clock())
            return self._count

    def snapshot(self, now: float | None = None) -> WindowSnapshot:
        """Evict what is too old, then copy everything, oldest first, under one lock."""
        with self._lock:
            self._evict_locked(self._clock() if now is None else now)
            order = self._order()
            return WindowSnapshot(
                timestamps=self._ts[order],
                latency_seconds=self._lat[order],
                columns={name: column[order] for name, column in self._cols.items()},
                kinds=dict(self.kinds),
            )
