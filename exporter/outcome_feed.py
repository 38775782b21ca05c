"""The ingest loop's part of joining outcomes: each poll's rows into the outcome store.

:class:`OutcomeFeed` is called by :class:`exporter.ingest.Ingestor` under its lock, so it runs
between two polls like the checkpoint:

1. :meth:`OutcomeFeed.feed`: the prediction and outcome lines of one poll (every block, in
   order, as :class:`~exporter.outcomes.KeyedBlock` records made by
   :meth:`~exporter.keyed_records.KeyedParser.block`) go to the store in ONE transaction, which
   also moves each source's high-water offset, committed before the offsets checkpoint
   that covers them is written.  What the follower reads again after a SIGKILL is
   therefore at or below a high-water offset (skipped), or was never applied: nothing is
   lost and nothing counted twice;
2. :meth:`OutcomeFeed.checkpointed`: right after a checkpoint was written, the store forgets
   the sources the checkpoint no longer lists (:meth:`~exporter.outcomes.OutcomeStore.
   prune_lines`).

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
from exporter.diagnostics import (
    Diagnostics,
    sample_dropped_probabilities,
    sample_invalid_outcomes,
)
from exporter.keyed_records import KeyedParser
from exporter.linesource import IdentifyingFollower, committed_offsets
from exporter.outcomes import (
    BatchResult,
    KeyedBlock,
    OutcomeRow,
    OutcomeStats,
    OutcomeStore,
    OutcomeStoreError,
    PredictionRow,
)
from exporter.quality import ConfidenceWindow
from exporter.records import ParsedBatch

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
        diagnostics: Diagnostics | None = None,
    ) -> None:
        self.store = store
        self.diagnostics = diagnostics  # logs the first invalid outcome records
        self.parser = parser
        self.verdicts = verdicts
        self.follower = follower
        self.confidence = confidence
        self._clock = clock
        self._waiting: list[KeyedBlock] = []  # of failed polls, oldest first
        self._waiting_rows: tuple[list[PredictionRow], list[OutcomeRow]] = ([], [])
        self._failing_since: float | None = None
        self._failure_logged = -_LOG_EVERY
        self._failures = 0
        self._last_error = ""
        self._read_error = ""
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
        keyed: list[KeyedBlock] = []
        confidence: list[tuple[float, float]] = []
        sources = self.follower.block_sources
        files = self.follower.block_files
        for block, batch, (path, start), name in zip(blocks, batches, sources, files, strict=True):
            try:
                rows, pairs = self.parser.block(block, name, start, batch, self.verdicts)
            except Exception:  # a bug a line triggers: it costs that line, never the block
                log.exception("outcome_rows_failed", file=path, offset=start)
                rows, pairs = self.parser.block_line_by_line(
                    block, name, start, self.verdicts, path
                )
            if rows.predictions or rows.outcomes:
                keyed.append(rows)
            if self.diagnostics is not None:
                offsets, records = rows.outcome_offsets, rows.outcomes
                sample_invalid_outcomes(
                    self.diagnostics, path, start, block, zip(offsets, records, strict=True)
                )
                if rows.dropped_offsets:
                    sample_dropped_probabilities(
                        self.diagnostics, path, start, block, rows.dropped_offsets
                    )
            confidence += pairs
        if self.confidence is not None:
            self.confidence.add(confidence)
        if self._waiting:
            keyed = self._waiting + keyed
        if keyed:
            self._apply(keyed)

    def feed_rows(
        self,
        predictions: list[PredictionRow],
        outcomes: list[OutcomeRow],
        confidence: Sequence[tuple[float, float]] = (),
    ) -> None:
        """Apply rows of one poll already made and routed to this store's model
        (:class:`exporter.model_outcomes.ModelOutcomes`, several models): the row path of
        :meth:`OutcomeStore.apply`, with the same high-water offsets and failure handling."""
        if self.confidence is not None:
            self.confidence.add(confidence)
        waiting_p, waiting_o = self._waiting_rows
        if waiting_p or waiting_o:
            predictions, outcomes = waiting_p + predictions, waiting_o + outcomes
        if predictions or outcomes:
            self._apply_rows(predictions, outcomes)

    def _apply_rows(self, predictions: list[PredictionRow], outcomes: list[OutcomeRow]) -> None:
        self._last_try = self._clock()
        try:
            result = self.store.apply(predictions, outcomes)
        except OutcomeStoreError as exc:
            keep = max(0, len(predictions) + len(outcomes) - MAX_WAITING_ROWS)
            cut = min(keep, len(predictions))
            self._waiting_rows = (predictions[cut:], outcomes[keep - cut :])
            self._note_failure(exc, len(predictions) + len(outcomes) - keep, keep)
            return
        self._waiting_rows = ([], [])
        self._succeeded(result)
        self._read_stats()

    def retry(self) -> None:
        """Apply the rows of failed polls again, at most once per :data:`RETRY_EVERY`
        (the ingest loop calls it when a poll brought nothing new)."""
        if self._clock() - self._last_try < RETRY_EVERY:
            return
        if self._waiting:
            self._apply(self._waiting)
        elif self._waiting_rows[0] or self._waiting_rows[1]:
            self._apply_rows(*self._waiting_rows)

    def _apply(self, blocks: list[KeyedBlock]) -> None:
        self._last_try = self._clock()
        try:
            result = self.store.apply_blocks(blocks)
        except OutcomeStoreError as exc:
            waiting = sum(len(b.predictions) + len(b.outcomes) for b in blocks)
            dropped = max(0, waiting - MAX_WAITING_ROWS)
            self._waiting = _drop_oldest(blocks, dropped)
            self._note_failure(exc, waiting - dropped, dropped)
            return
        self._waiting = []
        self._succeeded(result)
        self._read_stats()

    def _read_stats(self) -> None:
        """The counters after a write that committed.  A read that fails (the file deleted
        under a new reader) is no write failure: the rows are in, and are not kept to be
        applied again; the quality pass says what is wrong with the file."""
        try:
            self._stats = self.store.stats()
        except OutcomeStoreError as exc:
            if str(exc) != self._read_error:
                log.warning("outcome_store_read_failed", store=str(self.store.path), error=str(exc))
            self._read_error = str(exc)
        else:
            self._read_error = ""

    def _succeeded(self, result: BatchResult) -> None:
        if result.replayed:  # read again after a crash: the store had them, nothing changed
            log.info("outcome_lines_replayed", lines=result.replayed, applied=result.applied)
        if self._failing_since is not None:
            log.info("outcome_store_write_recovered", failures=self._failures)
        self._failing_since, self._failures = None, 0

    @property
    def failure(self) -> str:
        """The write failure as the pages say it ("" when writes succeed)."""
        if self._failing_since is None:
            return ""
        waiting = sum(len(b.predictions) + len(b.outcomes) for b in self._waiting)
        waiting += len(self._waiting_rows[0]) + len(self._waiting_rows[1])
        return (
            f"outcome store {self.store.path} cannot be written ({self._last_error}): "
            f"{waiting} rows wait in memory for the next write that succeeds (a crash "
            "loses them), so its counters and quality lag the logs"
        )

    def _note_failure(self, exc: Exception, waiting: int, dropped: int) -> None:
        """The rows are kept for the next poll; log the first failure, then once a minute."""
        now = self._clock()
        self._last_error = str(exc)
        self._failures += 1
        if self._failing_since is None:
            self._failing_since = now
        if dropped or now - self._failure_logged >= _LOG_EVERY:
            self._failure_logged = now
            log.warning(
                "outcome_store_write_failed",
                store=str(self.store.path),
                error=str(exc),
                failures=self._failures,
                rows_waiting=waiting,
                rows_dropped=dropped,
            )

    def checkpointed(self, positions: Sequence[FilePosition]) -> None:
        """After a checkpoint of ``positions`` was written: forget what it covers."""
        try:
            committed = committed_offsets(positions, self.store.sources(), self.follower)
            self.store.prune_lines(committed)
        except OutcomeStoreError as exc:  # the sources stay: a row each, forgotten next time
            log.warning("outcome_store_prune_failed", store=str(self.store.path), error=str(exc))


def _drop_oldest(blocks: list[KeyedBlock], n: int) -> list[KeyedBlock]:
    """``blocks`` without their ``n`` oldest rows (by block, predictions before outcomes)."""
    kept = list(blocks)
    while n > 0 and kept:
        first = kept[0]
        size = len(first.predictions) + len(first.outcomes)
        if size <= n:
            kept.pop(0)
            n -= size
            continue
        cut = min(n, len(first.predictions))
        rest = n - cut
        left = set(first.prediction_offsets[cut:])
        kept[0] = KeyedBlock(
            first.source,
            first.prediction_offsets[cut:],
            first.predictions[cut:],
            first.outcome_offsets[rest:],
            first.outcomes[rest:],
            [offset for offset in first.dropped_offsets if offset in left],
        )
        n = 0
    return kept
