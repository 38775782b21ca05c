"""The ingest loop's part of joining outcomes: each poll's rows into the outcome store.

:class:`OutcomeFeed` is called by :class:`exporter.ingest.Ingestor` under its lock, so it runs
between two polls like the checkpoint:

1. :meth:`OutcomeFeed.feed`: the prediction and outcome lines of one poll (every block, in
   order: :class:`~exporter.records.KeyedParser`) go to the store in ONE transaction,
   committed before the offsets checkpoint that covers them is written;
2. :meth:`OutcomeFeed.checkpointed`: right after a checkpoint was written, the store forgets
   the line identities below its offsets (:meth:`~exporter.outcomes.OutcomeStore.
   prune_lines`).  What the follower reads again after a SIGKILL is therefore either above
   the saved offsets and known to the store (skipped), or was never applied: nothing is
   lost and nothing counted twice.

A store that cannot be written (a full disk) does not stop the ingest loop: the rows of the
failed polls are kept, in order, and applied with the next poll that succeeds (at most
:data:`MAX_WAITING_ROWS`; beyond, the oldest are dropped, and said so).  Until then a crash
loses them, the price of not freezing every other metric of the model.  A quiet log does not
leave them waiting: the loop tries again every :data:`RETRY_EVERY` when it reads nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import structlog

from exporter.checkpoint import FilePosition
from exporter.linesource import IdentifyingFollower, committed_offsets
from exporter.outcomes import (
    OutcomeRow,
    OutcomeStats,
    OutcomeStore,
    OutcomeStoreError,
    PredictionRow,
)
from exporter.quality import ConfidenceWindow
from exporter.records import KeyedParser, ParsedBatch

log = structlog.get_logger("exporter.outcomes")

MAX_WAITING_ROWS = 1_000_000
"""Rows of failed polls kept for the next try (about 200 MB at worst)."""

RETRY_EVERY = 1.0
"""Seconds between two tries of a failing store when the logs bring nothing new."""

_LOG_EVERY = 60.0


class OutcomeFeed:
    """Feeds the outcome store from the ingest loop and publishes its counters."""

    def __init__(
        self,
        store: OutcomeStore,
        parser: KeyedParser,
        verdicts: Callable[[list[bytes]], ParsedBatch],
        follower: IdentifyingFollower,
        confidence: ConfidenceWindow | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.parser = parser
        self.verdicts = verdicts
        self.follower = follower
        self.confidence = confidence
        self._clock = clock
        self._waiting: tuple[list[PredictionRow], list[OutcomeRow]] = ([], [])
        self._failing_since: float | None = None
        self._failure_logged = -_LOG_EVERY
        self._failures = 0
        self._last_try = -RETRY_EVERY
        self._stats = store.stats()

    @property
    def stats(self) -> OutcomeStats:
        """The store's counters as last read (after every poll that changed them)."""
        return self._stats

    @property
    def failing(self) -> bool:
        """Whether the last write to the store failed (rows are waiting)."""
        return self._failing_since is not None

    def refresh(self) -> OutcomeStats:
        """Read the counters again (after a sweep) and publish them."""
        self._stats = self.store.stats()
        return self._stats

    def feed(self, blocks: Sequence[bytes], batches: Sequence[ParsedBatch]) -> None:
        """Apply the rows of one poll: ``blocks`` as the follower handed them out and
        ``batches`` the record parser's result for each."""
        predictions: list[PredictionRow] = []
        outcomes: list[OutcomeRow] = []
        confidence: list[tuple[float, float]] = []
        sources = self.follower.block_sources
        files = self.follower.block_files
        for block, batch, (path, start), name in zip(blocks, batches, sources, files, strict=True):
            try:
                rows = self.parser.rows(block, name, start, batch, self.verdicts)
            except Exception:  # a bug: costs this block's rows, never the ingest loop
                log.exception("outcome_rows_failed", file=path, offset=start)
                continue
            predictions += rows.predictions
            outcomes += rows.outcomes
            confidence += rows.confidence
        self.feed_rows(predictions, outcomes, confidence)

    def feed_rows(
        self,
        predictions: list[PredictionRow],
        outcomes: list[OutcomeRow],
        confidence: Sequence[tuple[float, float]] = (),
    ) -> None:
        """Apply the rows of one poll, already made (and routed to this store's model:
        :class:`exporter.model_outcomes.ModelOutcomes`), as :meth:`feed` does."""
        if self.confidence is not None:
            self.confidence.add(confidence)
        waiting_p, waiting_o = self._waiting
        if waiting_p or waiting_o:
            predictions, outcomes = waiting_p + predictions, waiting_o + outcomes
        if predictions or outcomes:
            self._apply(predictions, outcomes)

    def retry(self) -> None:
        """Apply the rows of failed polls again, at most once per :data:`RETRY_EVERY`
        (the ingest loop calls it when a poll brought nothing new)."""
        waiting_p, waiting_o = self._waiting
        if (waiting_p or waiting_o) and self._clock() - self._last_try >= RETRY_EVERY:
            self._apply(waiting_p, waiting_o)

    def _apply(self, predictions: list[PredictionRow], outcomes: list[OutcomeRow]) -> None:
        self._last_try = self._clock()
        try:
            result = self.store.apply(predictions, outcomes)
            self._stats = self.store.stats()
        except OutcomeStoreError as exc:
            self._failed(exc, predictions, outcomes)
            return
        if result.replayed:  # read again after a crash: the store had them, nothing changed
            log.info("outcome_lines_replayed", lines=result.replayed, applied=result.applied)
        self._waiting = ([], [])
        if self._failing_since is not None:
            log.info("outcome_store_write_recovered", failures=self._failures)
        self._failing_since, self._failures = None, 0

    def _failed(
        self, exc: Exception, predictions: list[PredictionRow], outcomes: list[OutcomeRow]
    ) -> None:
        """Keep the rows for the next poll; log the first failure, then once a minute."""
        now = self._clock()
        self._failures += 1
        if self._failing_since is None:
            self._failing_since = now
        dropped = max(0, len(predictions) + len(outcomes) - MAX_WAITING_ROWS)
        if dropped:  # the oldest first, predictions before outcomes
            cut = min(dropped, len(predictions))
            predictions, outcomes = predictions[cut:], outcomes[dropped - cut :]
        self._waiting = (predictions, outcomes)
        if dropped or now - self._failure_logged >= _LOG_EVERY:
            self._failure_logged = now
            log.warning(
                "outcome_store_write_failed",
                store=str(self.store.path),
                error=str(exc),
                failures=self._failures,
                rows_waiting=len(predictions) + len(outcomes),
                rows_dropped=dropped,
            )

    def checkpointed(self, positions: Sequence[FilePosition]) -> None:
        """After a checkpoint of ``positions`` was written: forget what it covers."""
        try:
            committed = committed_offsets(positions, self.store.sources(), self.follower)
            self.store.prune_lines(committed)
        except OutcomeStoreError as exc:  # the identities stay: the table grows a little
            log.warning("outcome_store_prune_failed", store=str(self.store.path), error=str(exc))
