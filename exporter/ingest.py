"""From log bytes to the window and the cumulative counters: one :meth:`Ingestor.run_once`.

:class:`IngestCounters` holds every figure that only ever grows (Prometheus counters and the
latency histogram).  The ingest thread adds batches; the collector reads an immutable
:class:`IngestSnapshot` on each scrape, so a scrape costs a copy of a few small arrays,
whatever the size of the log.

With ``logs.state_file``, :meth:`Ingestor.checkpoint` saves the follower's offsets and every
counter's value as one atomic record (:mod:`exporter.checkpoint`), between two polls, so the
two agree exactly; a restarted exporter restores both and counts each line after the saved
offsets exactly once.  :meth:`Ingestor.snapshot` then serves the counters *as saved*: a
scrape never sees a value that a crash could take back, so no counter goes down across a
restart.  The price is that counters lag by at most ``logs.checkpoint_interval``.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import numpy as np
import structlog

from exporter.checkpoint import save_checkpoint
from exporter.diagnostics import Diagnostics, sample_rejected
from exporter.records import INVALID_REASONS, ParsedBatch, RecordParser
from exporter.routing import DEFAULT_MAX_VERSIONS, Router, VersionCounts
from exporter.tail import CUMULATIVE_STATS, FollowerStats, LogFollower
from exporter.window import Window
from mlops_core.constants import DEFAULT_LATENCY_BUCKETS
from mlops_core.constants import OTHER_BUCKET as OTHER_LABEL
from mlops_core.errors import ConfigError

if TYPE_CHECKING:
    from exporter.checkpoint import FilePosition
    from mlops_core.profile import FeatureProfile, ReferenceProfile

_log = structlog.get_logger(__name__)

DEFAULT_MAX_CLASSES = 20

CHECKPOINT_INTERVAL = 1.0
"""Seconds between checkpoints when none is configured (``logs.checkpoint_interval``, whose
default is this value again: keep ``exporter.config.CHECKPOINT_INTERVAL`` in sync)."""

CHECKPOINT_BYTES = 64 << 20
"""Also checkpoint after this many bytes read, however little time passed: during a fast
start-up catch-up a crash then re-reads at most this much."""

_FAILURE_LOG_EVERY = 60.0


@dataclass(frozen=True)
class IngestSnapshot:
    """A consistent, read-only copy of the counters (arrays are not writeable)."""

    lines_total: int
    invalid_total: MappingProxyType[str, int]
    other_events_total: int
    predictions_total: int
    class_counts: MappingProxyType[str, int]
    bucket_labels: MappingProxyType[str, tuple[str, ...]]
    bucket_observations: MappingProxyType[str, np.ndarray]
    latency_bucket_bounds: tuple[float, ...]
    latency_bucket_counts: np.ndarray  # cumulative, len(bounds) + 1, the last one is +Inf
    latency_sum: float
    latency_count: int
    bytes_read: int
    rotations: int
    truncations: int
    lines_too_long: int
    files_watched: int
    files_over_limit: int = 0
    open_errors: int = 0  # matching files that could not be opened (retried every poll)
    unrouted_total: int = 0  # predictions no model's match selected
    # the model's predictions of versions it does not judge: version -> count
    other_versions: MappingProxyType[str, int] = field(default_factory=lambda: MappingProxyType({}))


class IngestCounters:
    """Cumulative, monotonic ingest figures; thread-safe (one lock, copies out).

    ``max_classes`` bounds ``class_counts``: the first ``max_classes`` distinct classes seen
    keep their own label for the life of the process, later ones are counted under
    ``"__other__"``, so a counter never changes label and the number of series is bounded.
    """

    def __init__(
        self,
        profile: ReferenceProfile,
        features: Sequence[str],
        *,
        latency_buckets: Sequence[float] = DEFAULT_LATENCY_BUCKETS,
        max_classes: int = DEFAULT_MAX_CLASSES,
        max_versions: int = DEFAULT_MAX_VERSIONS,
    ) -> None:
        bounds = tuple(float(b) for b in latency_buckets)
        if not bounds or any(b <= a for a, b in itertools.pairwise(bounds)):
            raise ConfigError(f"latency.buckets must be increasing and non-empty, not {bounds}")
        if not all(np.isfinite(bounds)) or bounds[0] <= 0:
            raise ConfigError(f"latency.buckets must be positive and finite, not {bounds}")
        if max_classes < 1:
            raise ConfigError(f"max_classes must be at least 1, not {max_classes}")
        self._lock = threading.Lock()
        self._profiles: dict[str, FeatureProfile] = {}
        for name in features:
            if name not in profile:
                raise ConfigError(f"feature {name!r} is not in the reference profile")
            self._profiles[name] = profile[name]
        # Fixed for the life of the counters: every snapshot shares this read-only view.
        self._labels = MappingProxyType(
            {n: tuple(p.bucket_labels) for n, p in self._profiles.items()}
        )
        self._buckets = {n: np.zeros(len(lab), np.int64) for n, lab in self._labels.items()}
        self._bounds = bounds
        self._bounds_array = np.asarray(bounds)
        self._latency_counts = np.zeros(len(bounds) + 1, np.int64)
        self._latency_sum = 0.0
        self._latency_count = 0
        self.max_classes = max_classes
        self._classes: dict[str, int] = {}
        self._lines = 0
        self._invalid = dict.fromkeys(INVALID_REASONS, 0)
        self._other = 0
        self._predictions = 0
        self._follower = FollowerStats()
        self._too_long_seen = 0
        self._unrouted = 0
        self._versions = VersionCounts(max_versions)

    def add_unrouted(self, n: int) -> None:
        """Count ``n`` records no model's match selected that are not predictions (outcome
        records: :class:`exporter.model_outcomes.ModelOutcomes`)."""
        with self._lock:
            self._unrouted += n

    def add_batch(
        self,
        batch: ParsedBatch,
        *,
        other_versions: Mapping[str, int] | None = None,
        unrouted: int = 0,
    ) -> None:
        """Count one parsed batch.  The expensive part runs outside the lock.

        ``other_versions`` are the model's predictions of versions it does not judge, by
        version (:class:`~exporter.routing.ModelRows`); ``unrouted`` the predictions no
        model took (the exporter's line counters count those).
        """
        bucket_adds = {n: self._bucket_counts(n, batch) for n in self._profiles}
        latency = batch.latency_seconds
        latency = latency[np.isfinite(latency)]
        latency_adds = counts_per_bucket(latency, self._bounds_array)
        class_adds = batch.class_counts()
        with self._lock:
            self._lines += batch.n_lines
            for reason, count in batch.invalid.items():
                self._invalid[reason] = self._invalid.get(reason, 0) + count
            self._other += batch.n_other_events
            self._predictions += batch.n_predictions
            self._unrouted += unrouted
            if other_versions:
                self._versions.add(other_versions)
            for name, adds in bucket_adds.items():
                self._buckets[name] += adds
            self._latency_counts += latency_adds
            self._latency_sum += float(latency.sum())
            self._latency_count += len(latency)
            for label, count in class_adds.items():
                key = label
                if key not in self._classes:
                    if len(self._classes) < self.max_classes:
                        self._classes[key] = 0
                    else:  # fold into the overflow series: labels never change meaning
                        key = OTHER_LABEL
                        self._classes.setdefault(key, 0)
                self._classes[key] += count

    def _bucket_counts(self, name: str, batch: ParsedBatch) -> np.ndarray:
        column = batch.features.get(name)
        profile = self._profiles[name]
        n_buckets = len(self._labels[name])
        if column is None or len(column) == 0:
            return np.zeros(n_buckets, np.int64)
        if profile.kind == "numeric":  # the profile's buckets: edges[i-1] < v <= edges[i]
            return counts_per_bucket(column[np.isfinite(column)], profile.edges)
        # Categorical: bucketize each distinct value once, then add their counts.
        counts = batch.value_counts(name)
        if not counts:
            return np.zeros(n_buckets, np.int64)
        keys = np.array(list(counts), dtype=object)
        return np.bincount(
            profile.bucketize(keys), weights=list(counts.values()), minlength=n_buckets
        ).astype(np.int64)

    def update_follower(self, stats: FollowerStats) -> None:
        """Copy the follower's figures; its dropped over-long lines count as invalid lines."""
        with self._lock:
            new_too_long = stats.lines_too_long - self._too_long_seen
            if new_too_long > 0:
                self._lines += new_too_long
                self._invalid["too_long"] += new_too_long
                self._too_long_seen = stats.lines_too_long
            self._follower = FollowerStats(**vars(stats))

    def state(self) -> dict[str, Any]:
        """Every counter's value, JSON-ready, for the checkpoint (see :meth:`restore`).

        Classes keep the order they were first seen: after a restore, the same first
        ``max_classes`` keep their own label.  Bucket labels and latency bounds are saved
        with the counts, so counts are never restored onto other buckets.
        """
        with self._lock:
            return {
                "lines": self._lines,
                "invalid": dict(self._invalid),
                "other_events": self._other,
                "predictions": self._predictions,
                "classes": [[label, count] for label, count in self._classes.items()],
                "buckets": {
                    name: {"labels": list(self._labels[name]), "counts": counts.tolist()}
                    for name, counts in self._buckets.items()
                },
                "latency": {
                    "bounds": list(self._bounds),
                    "counts": self._latency_counts.tolist(),
                    "sum": self._latency_sum,
                    "count": self._latency_count,
                },
                "too_long_seen": self._too_long_seen,
                "unrouted": self._unrouted,
                "other_versions": [[label, n] for label, n in self._versions.totals().items()],
            }

    def restore(
        self,
        state: Mapping[str, Any],
        *,
        lines: bool = True,
        predictions: bool = True,
        log: bool = True,
    ) -> None:
        """Carry on from a checkpoint's :meth:`state`; raises ``ValueError`` if it is malformed.

        A part that no longer fits the configuration starts again at zero, with a warning:
        bucket counts of a feature whose reference buckets changed (or that is no longer
        monitored), the latency histogram when ``latency.buckets`` changed.  Classes beyond
        a smaller ``prediction.max_classes`` are added to ``__other__``.  Nothing is assigned
        unless the whole state is readable.

        ``lines`` restores the line figures (lines, invalid, other events, unrouted, the
        follower's dropped lines), ``predictions`` the model's (predictions, classes,
        buckets, latency, other versions): the exporter keeps them apart, one set of line
        counters and one set of prediction counters per model.  ``log=False`` resets
        unfitting parts without a warning (a model whose reference changed, carrying on).
        """
        try:
            n_lines = _count(state["lines"])
            invalid = {str(k): _count(v) for k, v in dict(state["invalid"]).items()}
            other = _count(state["other_events"])
            n_predictions = _count(state["predictions"])
            saved_classes = [(str(label), _count(n)) for label, n in state["classes"]]
            too_long_seen = _count(state["too_long_seen"])
            unrouted = _count(state.get("unrouted", 0))
            versions = [(str(label), _count(n)) for label, n in state.get("other_versions", [])]
            buckets: dict[str, np.ndarray] = {}
            for name, part in dict(state["buckets"]).items():
                counts = np.array([_count(v) for v in part["counts"]], dtype=np.int64)
                if name not in self._labels:
                    continue
                if tuple(map(str, part["labels"])) != self._labels[name]:
                    if log and predictions:
                        _log.warning("checkpoint_buckets_reset", feature=name, reason="new buckets")
                    continue
                buckets[name] = counts
            latency = dict(state["latency"])
            latency_counts = np.array([_count(v) for v in latency["counts"]], dtype=np.int64)
            latency_sum = float(latency["sum"])
            latency_count = _count(latency["count"])
            same_bounds = tuple(float(b) for b in latency["bounds"]) == self._bounds
            if same_bounds and len(latency_counts) != len(self._bounds) + 1:
                raise ValueError("latency counts do not match the bounds")
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed counters: {exc!r}") from None
        classes: dict[str, int] = {}
        for label, count in saved_classes:
            if label != OTHER_LABEL and (label in classes or len(classes) < self.max_classes):
                classes[label] = classes.get(label, 0) + count
            else:
                classes[OTHER_LABEL] = classes.get(OTHER_LABEL, 0) + count
        with self._lock:
            if lines:
                self._lines = n_lines
                self._invalid = {**dict.fromkeys(INVALID_REASONS, 0), **invalid}
                self._other = other
                self._too_long_seen = too_long_seen
                self._unrouted = unrouted
            if not predictions:
                return
            self._predictions = n_predictions
            self._classes = classes
            self._versions.restore(versions)
            for name, counts in buckets.items():
                self._buckets[name] = counts
            if same_bounds:
                self._latency_counts = latency_counts
                self._latency_sum = latency_sum
                self._latency_count = latency_count
            elif log:
                _log.warning("checkpoint_latency_reset", reason="latency.buckets changed")

    def align_follower(self, stats: FollowerStats) -> None:
        """Take the follower's dropped-line count as already counted (no restored counters).

        When a follower resumes with its figures but the counters could not be restored, the
        over-long lines the follower dropped before are not in these counters, and must not
        be added to them now as if they had just been dropped.
        """
        with self._lock:
            self._too_long_seen = stats.lines_too_long

    def version_totals(self) -> tuple[int, dict[str, int]]:
        """``(predictions_total, other_versions)`` alone, for the per-pass check of
        :meth:`exporter.diagnostics.Diagnostics.versions`: :meth:`snapshot` would copy every
        feature's bucket counts for these two figures."""
        with self._lock:
            return self._predictions, dict(self._versions.totals())

    def snapshot(self, follower: FollowerStats | None = None) -> IngestSnapshot:
        """An immutable copy of every figure, taken under the lock.

        ``follower`` replaces the follower's figures last copied (the checkpoint passes
        those at its saved positions).
        """
        with self._lock:
            follower = follower or self._follower
            return IngestSnapshot(
                lines_total=self._lines,
                invalid_total=MappingProxyType(dict(self._invalid)),
                other_events_total=self._other,
                predictions_total=self._predictions,
                class_counts=MappingProxyType(dict(self._classes)),
                bucket_labels=self._labels,
                bucket_observations=MappingProxyType(
                    {n: _frozen(c) for n, c in self._buckets.items()}
                ),
                latency_bucket_bounds=self._bounds,
                latency_bucket_counts=_frozen(np.cumsum(self._latency_counts)),
                latency_sum=self._latency_sum,
                latency_count=self._latency_count,
                bytes_read=follower.bytes_read,
                rotations=follower.rotations,
                truncations=follower.truncations,
                lines_too_long=follower.lines_too_long,
                files_watched=follower.files_watched,
                files_over_limit=follower.files_over_limit,
                open_errors=follower.open_errors,
                unrouted_total=self._unrouted,
                other_versions=MappingProxyType(dict(self._versions.totals())),
            )


def _count(value: Any) -> int:
    """A saved count: a non-negative integer (a float such as ``3.0`` is not accepted)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"not a count: {value!r}")
    return value


def counts_per_bucket(values: np.ndarray, upper_bounds: np.ndarray) -> np.ndarray:
    """How many ``values`` fall in each bucket ``(bounds[i-1], bounds[i]]``, plus the +Inf one.

    The same buckets as ``np.searchsorted(bounds, values, side="left")`` (the profile's
    ``bucketize``), counted with one vectorised comparison per bound instead of a binary
    search per value: with ~10 bounds that is several times faster.
    """
    at_most = [int(np.count_nonzero(values <= bound)) for bound in upper_bounds]
    cumulative = np.array([*at_most, len(values)], dtype=np.int64)
    return np.diff(cumulative, prepend=0)


def _frozen(array: np.ndarray) -> np.ndarray:
    copy = np.array(array, dtype=np.int64)
    copy.flags.writeable = False
    return copy


def restore_counters(
    state: Mapping[str, Any], lines: IngestCounters, models: Mapping[str, IngestCounters]
) -> None:
    """Restore the exporter's counters from a checkpoint's; ``ValueError`` if malformed.

    ``lines`` takes the line figures, each model's counters its own part (by model name:
    a model not in the checkpoint starts at zero, a saved model no longer configured is
    dropped).  A checkpoint written before several models were served holds one flat
    record: its predictions go to the first model.  On ``ValueError`` some counters may
    be restored: the caller starts them all again.
    """
    saved = state.get("models")
    if saved is None:
        for counters in list(models.values())[:1]:
            counters.restore(state, lines=False)
    elif not isinstance(saved, Mapping):
        raise ValueError("models is not an object")
    else:
        for name, counters in models.items():
            part = saved.get(name)
            if part is not None:
                if not isinstance(part, Mapping):
                    raise ValueError(f"models.{name} is not an object")
                counters.restore(part, lines=False)
    lines.restore(state, predictions=False)


class OutcomeSink(Protocol):
    """What the ingest loop feeds the outcome stores through: one
    :class:`exporter.outcome_feed.OutcomeFeed`, or every model's
    (:class:`exporter.model_outcomes.ModelOutcomes`)."""

    @property
    def failing(self) -> bool: ...

    def feed(self, blocks: Sequence[bytes], batches: Sequence[ParsedBatch]) -> None: ...

    def retry(self) -> None: ...

    def checkpointed(self, positions: Sequence[FilePosition]) -> None: ...


class ModelSink(Protocol):
    """What the ingest loop feeds for one routed model (:class:`exporter.models.ModelState`)."""

    @property
    def name(self) -> str: ...

    @property
    def window(self) -> Window: ...

    @property
    def counters(self) -> IngestCounters: ...

    @property
    def monitored_version(self) -> str | None:
        """The version whose predictions its window takes (``None``: every version)."""
        ...


class Served(NamedTuple):
    """The counters a scrape serves (:meth:`Ingestor.served`): one object, swapped whole."""

    lines: IngestSnapshot
    models: Mapping[str, IngestSnapshot]


class Ingestor:
    """One step of the ingest loop (poll, parse, feed window and counters) and the checkpoint.

    ``run_once`` and ``checkpoint`` take the same lock, so a checkpoint always falls between
    two steps, where the follower's offsets and the counters agree exactly (whichever
    thread calls it: the ingest loop, or ``stop()`` on shutdown).

    Two ways to feed: ``window`` and ``counters`` take every prediction and line (one
    model, no routing: the library's use, and the tests'); or, with ``router`` and
    ``models`` (the exporter's), ``counters`` takes the line figures only and each batch is
    routed (:class:`~exporter.routing.Router`) to the models' windows and counters.
    :meth:`set_models` replaces the models (a new version, a reload) under the same lock,
    so a batch goes wholly to the old ones or wholly to the new ones.
    """

    def __init__(
        self,
        follower: LogFollower,
        parser: RecordParser,
        window: Window | None,
        counters: IngestCounters,
        *,
        state_file: str | None = None,
        checkpoint_interval: float = CHECKPOINT_INTERVAL,
        checkpoint_bytes: int = CHECKPOINT_BYTES,
        clock: Callable[[], float] = time.monotonic,
        diagnostics: Diagnostics | None = None,
        router: Router | None = None,
        models: Sequence[ModelSink] = (),
        outcomes: OutcomeSink | None = None,
    ) -> None:
        if (router is None) == (window is None):
            raise ValueError("give either a window or a router with its models")
        self.follower = follower
        self.diagnostics = diagnostics
        self.outcomes = outcomes
        self.parser = parser
        self.window = window
        self.counters = counters
        self._router = router
        self.models: tuple[ModelSink, ...] = tuple(models)
        if router is not None and len(router) != len(self.models):
            raise ValueError(f"{len(router)} routes for {len(self.models)} models")
        self.state_file = state_file
        self.checkpoint_interval = checkpoint_interval
        self.checkpoint_bytes = checkpoint_bytes
        self._clock = clock
        self._lock = threading.RLock()  # set_models may be called by a holder of `lock`
        self.counters.update_follower(follower.stats)
        # what scrapes see: the restored values, until the first save (or poll)
        self._served = Served(counters.snapshot(), self._model_snapshots())
        self._last_checkpoint = clock()
        self._bytes_at_checkpoint = follower.stats.bytes_read
        self._failing_since: float | None = None
        self._failures = 0
        self._failure_logged = 0.0

    def run_once(self) -> int:
        """Process what the logs gained since the last call; returns the lines processed.

        Returns 0 when there was nothing new (sleep a little before the next call); a
        positive number means there may be more already (call again at once).  Bad data
        never raises: bad lines are counted by reason.
        """
        with self._lock:
            # parse_block never raises: an exception costs its own line (internal_error), so
            # there is no catch-all here that could throw a whole block away.
            blocks = self.follower.poll_blocks()
            batches = [self.parser.parse_block(block) for block in blocks]
            if self.diagnostics is not None and (blocks or self.follower.dropped_lines):
                self._diagnose(blocks, batches, self.diagnostics)
            processed = 0
            if batches:
                # Blocks are parsed one by one (~1 MiB each, cache-friendly); window and
                # counters take the whole poll at once (fewer fixed costs, fewer timestamps
                # converted).
                batch = ParsedBatch.concat(batches)
                if self._router is None:
                    assert self.window is not None
                    self.window.add(batch)
                    self.counters.add_batch(batch)
                else:
                    self._route(batch, self._router)
                processed = batch.n_lines
                if self.outcomes is not None:  # committed before the checkpoint covers it
                    self.outcomes.feed(blocks, batches)
            elif self.outcomes is not None and self.outcomes.failing:
                self.outcomes.retry()  # rows of a failed write, on a log with nothing new
            self.counters.update_follower(self.follower.stats)
            if self.state_file is None:
                self._publish()
            return processed

    def _publish(self) -> None:
        """Without a state file: serve the counters as this poll left them, all of them
        copied under the ingest lock, so a scrape sees the line counters and every model's
        counters of one and the same poll (never a line counted before its prediction)."""
        self._served = Served(self.counters.snapshot(), self._model_snapshots())

    def _model_snapshots(self) -> Mapping[str, IngestSnapshot]:
        return MappingProxyType({m.name: m.counters.snapshot() for m in self.models})

    def _route(self, batch: ParsedBatch, router: Router) -> None:
        """Line figures to the line counters, each model's predictions to its own."""
        models = self.models
        routed = router.route(
            batch.n_predictions,
            batch.routes,
            batch.versions,
            [m.monitored_version for m in models],
        )
        self.counters.add_batch(batch.lines_only(), unrouted=routed.unrouted)
        for model, part in zip(models, routed.models, strict=True):
            if part.n_window:
                taken = batch.select(part.rows)  # every row (the usual batch): no copy
                model.window.add(taken)
                model.counters.add_batch(taken, other_versions=part.other_versions)
            elif part.other_versions:
                model.counters.add_batch(ParsedBatch(), other_versions=part.other_versions)

    def set_models(
        self,
        models: Sequence[ModelSink],
        *,
        router: Router | None = None,
        parser: RecordParser | None = None,
    ) -> None:
        """Feed ``models`` from the next batch on (with a new router and parser, if given).

        Served counters stay as last saved until the next checkpoint (a model whose
        counters were carried over into new ones included): a scrape never sees a value a
        crash could take back.  A model no longer listed is forgotten.
        """
        with self._lock:
            router = router or self._router
            if router is None or len(router) != len(models):
                raise ValueError("one route per model is needed")
            self._router = router
            if parser is not None:
                self.parser = parser
            self.models = tuple(models)
            lines, published = self._served
            self._served = Served(
                lines,
                MappingProxyType(
                    {m.name: published.get(m.name) or m.counters.snapshot() for m in self.models}
                ),
            )

    @property
    def router(self) -> Router | None:
        return self._router

    @property
    def lock(self) -> threading.RLock:
        """Held during a step and a checkpoint: what a caller swapping state must hold."""
        return self._lock

    def _diagnose(
        self, blocks: list[bytes], batches: list[ParsedBatch], diagnostics: Diagnostics
    ) -> None:
        """Feed the no-silent-failure checks: field names while sampling, and the first
        rejected lines of each reason (re-parsed one by one, a few times per lifetime), the
        over-long lines the follower dropped included (the parser never sees those)."""
        dropped = self.follower.dropped_lines
        if dropped:
            diagnostics.rejected({"too_long": len(dropped)})
            for path, offset, head in dropped:
                diagnostics.sample(path, offset, "too_long", head)
        sources = self.follower.block_sources
        for index, (block, batch) in enumerate(zip(blocks, batches, strict=True)):
            if diagnostics.sampling:
                diagnostics.observe_block(block)
            if not batch.invalid:
                continue
            diagnostics.rejected(batch.invalid)
            if diagnostics.wants_samples(batch.invalid) and index < len(sources):
                path, start = sources[index]
                sample_rejected(
                    diagnostics, lambda line: self.parser.parse([line]), path, start, block
                )

    def served(self) -> Served:
        """What a scrape serves: the line counters and every model's, copied together.

        As last checkpointed with a state file, else as the last poll left them; either way
        one object, read once per scrape, so a scrape never sees a line counted before its
        prediction.  Serving only saved values is what makes "no counter ever goes down"
        hold across a crash: the next process starts from the saved record, which is never
        behind what a scrape has seen.  The file gauges (files watched, over the limit) are
        not counters: they are read live, so the first pass after the start does not see
        the checkpoint saved before any file was opened.
        """
        served = self._served
        lines, stats = served.lines, self.follower.stats
        if (lines.files_watched, lines.files_over_limit) == (
            stats.files_watched,
            stats.files_over_limit,
        ):
            return served
        return Served(
            replace(
                lines, files_watched=stats.files_watched, files_over_limit=stats.files_over_limit
            ),
            served.models,
        )

    def snapshot(self) -> IngestSnapshot:
        """The line counters of :meth:`served`."""
        return self.served().lines

    def model_snapshot(self, name: str) -> IngestSnapshot | None:
        """A routed model's counters of :meth:`served`; ``None``: not fed."""
        return self._served.models.get(name)

    def counters_state(self) -> dict[str, Any]:
        """Every counter's value for the checkpoint: the line counters' state, with each
        routed model's own under ``models`` (read back by :func:`restore_counters`)."""
        state = self.counters.state()
        if self._router is not None:
            state["models"] = {
                m.name: {"version": m.monitored_version, **m.counters.state()} for m in self.models
            }
        return state

    def due(self) -> bool:
        """Whether a checkpoint is due: ``checkpoint_interval`` passed or enough bytes read."""
        if self.state_file is None:
            return False
        if self._clock() - self._last_checkpoint >= self.checkpoint_interval:
            return True
        if getattr(self.follower, "generations_changed", False):  # see IdentifyingFollower
            return True
        return self.follower.stats.bytes_read - self._bytes_at_checkpoint >= self.checkpoint_bytes

    def maybe_checkpoint(self) -> bool:
        """:meth:`checkpoint` if :meth:`due`; whether one was written."""
        if self.state_file is None and self.outcomes is not None:
            if self._clock() - self._last_checkpoint >= self.checkpoint_interval:
                self._forget_read_lines()
            return False
        return self.checkpoint() if self.due() else False

    def checkpoint(self) -> bool:
        """Save offsets and every counter as one atomic record, then serve those counters.

        Returns whether the record was written.  A failure to write (disk full, read-only
        volume) is logged, not raised, and the counters are served anyway: a sidecar whose
        metrics froze would hide every problem of the model; the cost is that a crash
        during the failure may make a counter go down once.
        """
        if self.state_file is None:
            return False
        with self._lock:
            state = self.follower.state()
            if state is None:  # closed: there is nothing left to save
                return False
            self.counters.update_follower(self.follower.stats)
            record = replace(state, counters=self.counters_state())
            saved_stats = FollowerStats(
                **{name: state.follower[name] for name in CUMULATIVE_STATS},
                files_watched=self.follower.stats.files_watched,
                files_over_limit=self.follower.stats.files_over_limit,
            )
            published = self.counters.snapshot(follower=saved_stats)
            published_models = {m.name: m.counters.snapshot() for m in self.models}
            self._last_checkpoint = self._clock()
            self._bytes_at_checkpoint = self.follower.stats.bytes_read
            try:
                save_checkpoint(self.state_file, record)
            except (OSError, ValueError) as exc:
                self._write_failed(exc)
                written = False
            else:
                if self._failing_since is not None:
                    _log.info("checkpoint_write_recovered", failures=self._failures)
                self._failing_since, self._failures = None, 0
                written = True
                if self.outcomes is not None:  # before the next poll applies anything
                    self.outcomes.checkpointed(record.files)
            self._served = Served(published, MappingProxyType(published_models))
            return written

    def _forget_read_lines(self) -> None:
        """Without a state file: the outcome store forgets the lines read so far.

        No offsets are saved, so after a restart the follower starts over at
        ``logs.start_position``; nothing the store remembers can be told apart then.
        """
        with self._lock:
            self._last_checkpoint = self._clock()
            state = self.follower.state()
            if state is not None and self.outcomes is not None:
                self.outcomes.checkpointed(state.files)

    def _write_failed(self, exc: Exception) -> None:
        """Log the first failure of a streak, then one line a minute with the count."""
        now = self._clock()
        self._failures += 1
        if self._failing_since is None:
            self._failing_since = now
        elif now - self._failure_logged < _FAILURE_LOG_EVERY:
            return
        self._failure_logged = now
        _log.warning(
            "checkpoint_write_failed",
            state_file=self.state_file,
            error=str(exc),
            failures=self._failures,
        )
