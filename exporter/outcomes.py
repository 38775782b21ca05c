"""The outcome store: predictions awaiting their ground truth, joined to it by ``request_id``.

Labels arrive seconds to weeks after their prediction, sometimes before it (two writers race),
sometimes twice, sometimes never.  Holding millions of pending predictions in the exporter's
memory is not an option, and a restart must neither lose them nor count anything twice, so
they live in an embedded SQLite database (stdlib :mod:`sqlite3`, WAL mode).  This module is
that database and nothing else: it knows no log format, no config and no metric; the
exporter's ingest loop hands it typed rows (:class:`PredictionRow`, :class:`OutcomeRow`),
the drift pass reads :meth:`OutcomeStore.quality_window` and :meth:`OutcomeStore.stats`.

The rules, all applied inside the database in the transaction of the batch that triggers
them (so every counter is exact after a SIGKILL):

- An outcome whose prediction is **pending** is *joined*: the pair (prediction, actual,
  delay) goes to the quality window, the prediction stops being pending.  If
  ``outcome time - prediction time > max_delay`` it is *expired* instead, decided from the
  two record timestamps only, so a replay of the same lines decides the same.
- An outcome whose ``request_id`` is not known yet is *held* for ``early_grace`` seconds
  of the store's clock (the prediction may be in a file the follower has not read yet); the
  prediction's arrival joins it; :meth:`OutcomeStore.sweep` counts it ``unknown_request``
  when the grace has passed.
- A second outcome for a request already joined is a *duplicate*: the first one wins.
  An outcome for a request that expired (or was evicted) counts ``expired`` (``evicted``).
- An outcome without ``request_id``, without an actual, with a non-finite one, or one the
  caller marked ``invalid``, is *invalid*; so is one whose actual cannot be compared with
  its prediction (no class label for a classifier's prediction, no number for a
  regressor's); the prediction then stays pending for a valid outcome.
- ``max_pending``: beyond it the oldest pending predictions (by arrival) are *evicted*
  and counted.  :meth:`OutcomeStore.sweep` expires pending predictions that no
  outcome can join any more (older than ``max_delay`` + ``early_grace`` on the record clock).

Replays change nothing: a line is identified by ``(source, offset)``, the follower hands a
source's lines out in offset order, and the store keeps, per source, the highest offset it
applied, in the transaction that applies the lines.  A line at or below it was applied
before (the follower re-reads the lines after its last checkpoint when it restarts after a
SIGKILL) and is skipped.  See ``docs/outcomes-store.md`` for the schema, the crash
guarantees and the figures.
"""

from __future__ import annotations

import bisect
import math
import operator
import os
import sqlite3
import threading
import time
import urllib.parse
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, TypedDict

import numpy as np
import orjson

from mlops_core._fsutil import hold_owner_lock, lock_owner
from mlops_core.errors import MlopsError

SCHEMA_VERSION: Final = 2
"""``PRAGMA user_version`` of the database this module writes; a newer one is refused.
Version 1 kept one ``lines`` row per line applied since the last checkpoint; it is migrated
on open (each source's high-water offset is its highest line applied)."""

APPLICATION_ID: Final = 0x4D4C4F53  # "MLOS"
"""``PRAGMA application_id``: tells an outcome store from any other SQLite database."""

DELAY_BUCKETS: Final = (
    1.0, 10.0, 60.0, 600.0, 3600.0, 6 * 3600.0, 86400.0, 3 * 86400.0, 7 * 86400.0,
    14 * 86400.0, 30 * 86400.0,
)  # fmt: skip
"""Upper bounds (seconds) of the label-delay histogram: 1 s, 10 s, 1 min, 10 min, 1 h, 6 h,
1 d, 3 d, 1 w, 2 w, 30 d, then +Inf.  Labels come from a user clicking within seconds to a
business event weeks later; each bucket is roughly one step of that scale.  Stored in the
database with the counts, so changing this list needs a schema version."""

UNMATCHED_REASONS: Final = ("unknown_request", "expired", "duplicate", "invalid", "evicted")
"""Every reason an outcome is counted unmatched (all exist from the start, at 0)."""

OTHER_CLASS: Final = "__other__"
"""The confusion counts' label for every class beyond the first ``max_classes`` seen."""

PENDING, JOINED, EXPIRED, EVICTED = 0, 1, 2, 3
"""A request's state: pending (no ``settled`` row), or settled how (``settled.state``)."""

_SETTLED_REASON = {JOINED: "duplicate", EXPIRED: "expired", EVICTED: "evicted"}
_WINDOW_KEY = operator.itemgetter(0, 1)  # a quality_window row's (time, seq): its order

_CACHE_KIB = 16 * 1024
"""SQLite page cache of the writer connection.  Bounded, so memory stays flat however many
predictions are pending; 16 MiB holds the ``rid_hash`` index of about a million requests,
so most lookups read one page from disk, the row's (``bench/bench_outcomes.py``)."""

_IN_CHUNK = 900  # bound parameters per ``IN (...)`` query, below SQLite's old limit of 999
_BUSY_TIMEOUT_MS = 10_000

_COUNTERS: Final = (
    # events, monotonic
    "predictions_total",  # accepted as pending: valid, not a duplicate
    "predictions_duplicate",  # a request_id the store already knows: ignored, first wins
    "predictions_invalid",  # no request_id, no prediction, non-finite time/value/probability
    "predictions_probability_dropped",  # kept, its logged probability left out (not 0..1, ...)
    "predictions_expired",  # left pending without a (timely) outcome
    "predictions_evicted",  # left pending because of max_pending
    "outcomes_total",  # joined
    "correct",  # joined classifier pairs whose class was right (exact, unlike the folded diagonal)
    *UNMATCHED_REASONS,
    # sums of the joined pairs
    "delay_sum",
    "abs_error_sum",
    "squared_error_sum",
    "error_sum",
    "error_count",
    # sizes, kept exact in the same transactions (a COUNT(*) over millions of rows is not)
    "pending",
    "held",
    "settled",
    "window",
    # cursors
    "next_seq",  # seq of the next prediction accepted (never reused)
    "evict_cursor",  # every request below this seq is settled
)

_SCHEMA = """
CREATE TABLE counters (name TEXT PRIMARY KEY, value NOT NULL) WITHOUT ROWID;
CREATE TABLE sources (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, high INTEGER NOT NULL);
CREATE TABLE requests (
    seq INTEGER PRIMARY KEY,
    rid_hash INTEGER NOT NULL,
    request_id TEXT NOT NULL,
    time REAL NOT NULL,
    model_version TEXT,
    predicted TEXT,
    value REAL,
    probability REAL,
    probabilities TEXT
);
CREATE INDEX requests_hash ON requests (rid_hash);
CREATE INDEX requests_time ON requests (time);
CREATE TABLE settled (seq INTEGER PRIMARY KEY, state INTEGER NOT NULL);
CREATE TABLE held (
    id INTEGER PRIMARY KEY,
    request_id TEXT NOT NULL,
    time REAL NOT NULL,
    arrived REAL NOT NULL,
    actual TEXT,
    actual_value REAL
);
CREATE INDEX held_request ON held (request_id);
CREATE INDEX held_arrived ON held (arrived);
CREATE TABLE quality_window (
    time REAL NOT NULL,
    seq INTEGER NOT NULL,
    delay REAL NOT NULL,
    model_version TEXT,
    predicted TEXT,
    value REAL,
    probability REAL,
    probabilities TEXT,
    actual TEXT,
    actual_value REAL,
    PRIMARY KEY (time, seq)
) WITHOUT ROWID;
CREATE TABLE delay_histogram (le REAL PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE classes (name TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE confusion (
    predicted TEXT NOT NULL,
    actual TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (predicted, actual)
) WITHOUT ROWID;
"""


class StoreLimits(TypedDict):
    """The bounds of :meth:`OutcomeStore.set_limits`, as one value (the exporter computes
    them per model from its config)."""

    max_delay: float
    max_pending: int
    early_grace: float
    window_max_samples: int
    window_max_age: float | None
    max_classes: int


class OutcomeStoreError(MlopsError, OSError):
    """The outcome store's file cannot be used; the one-line message names it.

    An ``OSError`` like :class:`~mlops_core.errors.LogOutputError`: a missing directory, a
    file that is not an SQLite database (or not an outcome store), a newer schema, a full
    disk.  Raised from :mod:`sqlite3` errors too, which stay chained as ``__cause__``.
    """


# --- rows in, figures out ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PredictionRow:
    """What quality needs of one prediction line, and the line's identity.

    ``predicted`` is the class label text (as the exporter labels predicted classes), or
    ``value`` the regression output; a row with a label is a classifier's.  ``probability``
    is the probability of the *predicted* class; ``probabilities`` maps every class label to
    its probability.  ``time`` is the record's timestamp in unix seconds.  ``source`` names
    the file the line came from and ``offset`` is the byte offset where the line starts:
    see :meth:`OutcomeStore.prune_lines`.
    """

    request_id: str
    time: float
    source: str
    offset: int
    predicted: str | None = None
    value: float | None = None
    probability: float | None = None
    probabilities: Mapping[str, float] | None = None
    model_version: str | None = None
    probability_dropped: bool = False  # a probability was logged and left out as unusable


@dataclass(frozen=True, slots=True, kw_only=True)
class OutcomeRow:
    """One outcome line: the ground truth of ``request_id``, and the line's identity.

    The caller gives the actual in both forms it can take, because it cannot know what the
    prediction was: ``actual`` as class label text (labelled like predicted classes, so
    ``1`` and the predicted class ``1`` compare equal), and ``actual_value`` as a number
    when it is one (regressors).  ``invalid`` lets the caller count a line it already knows
    is unusable (an actual that is an object, say) exactly once, replays included.
    """

    request_id: str | None
    time: float
    source: str
    offset: int
    actual: str | None = None
    actual_value: float | None = None
    invalid: bool = False


PredictionRecord = tuple[str, float, str | None, str | None, float | None, float | None, str | None]
"""A valid prediction as the store takes it: ``(request_id, time, model_version, predicted,
value, probability, probabilities)``, the last as compact JSON text (label -> probability).
A non-empty id, finite numbers, a text label or a value (see :class:`PredictionRow`)."""

OutcomeRecord = tuple[str, float, str | None, float | None]
"""A valid outcome as the store takes it: ``(request_id, time, actual, actual_value)``."""

_Record = tuple[Any, ...]


@dataclass(slots=True)
class KeyedBlock:
    """The keyed lines of one block of one source, as :meth:`OutcomeStore.apply_blocks`
    takes them: the ingest loop's columnar form of :class:`PredictionRow` and
    :class:`OutcomeRow`, with no object per line.

    ``predictions[i]`` is the record of the line starting at ``prediction_offsets[i]``, or
    None for a line that cannot be joined (counted invalid); likewise the outcomes.  Each
    offset list is strictly increasing.
    """

    source: str
    prediction_offsets: list[int]
    predictions: list[PredictionRecord | None]
    outcome_offsets: list[int]
    outcomes: list[OutcomeRecord | None]
    # the predictions (a subset of prediction_offsets, increasing) whose logged probability
    # was left out as unusable: counted once, replays included
    dropped_offsets: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class BatchResult:
    """What one :meth:`OutcomeStore.apply` did (the totals are in :meth:`~OutcomeStore.stats`)."""

    applied: int  # lines applied now
    replayed: int  # lines skipped: applied before (re-read after a crash)
    joined: int
    held: int  # outcomes put on hold to wait for their prediction


@dataclass(frozen=True)
class OutcomeStats:
    """Every counter of the store, read in one snapshot; exact across crashes.

    ``delay_buckets`` are cumulative ``(upper bound, count)`` pairs ending with ``+Inf``
    (whose count is ``outcomes_total``), ready for a Prometheus histogram with
    ``delay_sum``.  ``confusion`` counts joined classifier pairs by ``(predicted, actual)``
    with classes beyond the first ``max_classes`` folded into :data:`OTHER_CLASS`.  The
    ``*_error_*`` sums are over joined regressor pairs, error = predicted - actual.
    ``horizon`` is the store's record clock: the newest record timestamp applied.
    Invariants: ``predictions_total == pending + outcomes_total + predictions_expired +
    predictions_evicted``, and every outcome line applied is joined, unmatched or held.
    """

    outcomes_total: int
    unmatched: Mapping[str, int]
    predictions_total: int
    predictions_duplicate: int
    predictions_invalid: int
    predictions_probability_dropped: int  # kept; the logged probability left out
    predictions_expired: int
    predictions_evicted: int
    pending: int
    held: int
    remembered: int  # settled requests still known (to tell duplicates and late outcomes)
    window_samples: int
    delay_buckets: tuple[tuple[float, int], ...]
    delay_sum: float
    confusion: Mapping[tuple[str, str], int]
    correct: int  # joined classifier pairs predicted right: the diagonal before folding
    abs_error_sum: float
    squared_error_sum: float
    error_sum: float
    error_count: int
    horizon: float | None


@dataclass(frozen=True, eq=False)  # arrays: == would be ambiguous
class QualityWindow:
    """The joined pairs of the quality window as read-only numpy arrays, oldest first.

    One entry per pair.  ``predicted``/``actual`` are class label text (object arrays,
    ``None`` in a regressor's rows); ``predicted_value``/``actual_value`` are float64
    (NaN where there is no number).  ``probability`` is the predicted class's probability
    (NaN where not logged); ``probabilities[i, j]`` is that of ``classes[j]`` (NaN where not
    logged).  ``time`` is the prediction time, ``delay`` outcome time - prediction time
    (0 when the outcome is stamped earlier: the writers' clocks disagree).
    """

    time: np.ndarray
    delay: np.ndarray
    model_version: np.ndarray
    predicted: np.ndarray
    actual: np.ndarray
    predicted_value: np.ndarray
    actual_value: np.ndarray
    probability: np.ndarray
    classes: tuple[str, ...]
    probabilities: np.ndarray

    def __len__(self) -> int:
        return len(self.time)


# --- the store --------------------------------------------------------------------------------

# (request_id, outcome time, actual label, actual value): an outcome inside a transaction
_Outcome = tuple[str, float, str | None, float | None]
# counter name -> change in this transaction: ints for counts, floats for sums
_Deltas = defaultdict[str, float]


class OutcomeStore:
    """The SQLite database of pending predictions, held outcomes and the quality window.

    One writer, many readers.  Every method that changes the store runs on one connection
    opened with ``check_same_thread=False`` and serialised by a lock, so the ingest thread
    applies batches while a scheduler thread may :meth:`sweep`.  :meth:`stats` and
    :meth:`quality_window` read on a connection of their own per thread (WAL: a reader
    sees the last committed batch and never blocks the writer, nor waits for it).

    ``synchronous=FULL``: a commit is on disk before :meth:`apply` returns.  The exporter
    writes its offsets checkpoint (itself fsynced) after the store commits; with ``NORMAL``
    a power loss could roll back commits whose lines the checkpoint already counts as read,
    and those predictions would be lost for good.  It costs one fsync of the WAL per batch,
    and the ingest loop applies a whole poll as one batch.  (Against a process crash such as
    SIGKILL, both are exact.)

    Only one process may write a store; two exporters sharing one would count twice.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_delay: float = 30 * 86400.0,
        max_pending: int = 3_000_000,
        early_grace: float = 600.0,
        window_max_samples: int = 10_000,
        window_max_age: float | None = None,
        max_classes: int = 20,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self.set_limits(
            max_delay=max_delay, max_pending=max_pending, early_grace=early_grace,
            window_max_samples=window_max_samples, window_max_age=window_max_age,
            max_classes=max_classes,
        )  # fmt: skip
        self._clock = clock
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._closed = False
        self._sources: dict[str, int] = {}  # cache of the sources table (reset on rollback)
        self._high: dict[str, int] = {}  # source -> highest offset applied (idem)
        self._classes: set[str] = set()  # cache of the classes table (reset on rollback)
        self._lock_fd: int | None = None  # flock held for the store's life (_hold_lock)
        self.created = False  # whether this open created the file's schema (a new store)
        self._db = self._open()
        self._identity = _file_identity(self.path)
        self._load_caches()

    def set_limits(
        self,
        *,
        max_delay: float,
        max_pending: int,
        early_grace: float,
        window_max_samples: int,
        window_max_age: float | None,
        max_classes: int,
    ) -> None:
        """The store's bounds; a reload of the exporter's config sets them anew.

        Each is read where it applies, so a new one is in force from the next batch or
        sweep: a lower ``max_pending`` or ``window_max_samples`` trims at the next batch,
        a shorter ``max_delay`` or ``early_grace`` expires at the next sweep.  A lower
        ``max_classes`` keeps the classes already counted (the confusion series stay).
        """
        if not max_delay > 0 or not early_grace >= 0:
            raise ValueError("max_delay must be > 0 and early_grace >= 0")
        if max_pending < 1 or window_max_samples < 1 or max_classes < 1:
            raise ValueError("max_pending, window_max_samples and max_classes must be >= 1")
        if window_max_age is not None and not window_max_age > 0:
            raise ValueError("window_max_age must be > 0 or None")
        with self._lock:  # between two batches or sweeps, never inside one
            self.max_delay = float(max_delay)
            self.max_pending = int(max_pending)
            self.early_grace = float(early_grace)
            self.window_max_samples = int(window_max_samples)
            self.window_max_age = None if window_max_age is None else float(window_max_age)
            self.max_classes = int(max_classes)

    # --- opening ------------------------------------------------------------------------------

    def _fail(self, what: str, exc: BaseException | None = None) -> OutcomeStoreError:
        detail = f": {exc}" if exc is not None else ""
        return OutcomeStoreError(f"outcome store {self.path}: {what}{detail}")

    def _connect(self, *, create: bool = True) -> sqlite3.Connection:
        # isolation_level=None: no implicit transactions; every write is an explicit
        # BEGIN IMMEDIATE ... COMMIT, so a batch is one transaction and nothing else is.
        # A reader never creates the file (mode=rw): after the store was deleted it would
        # open an empty database there and read "no such table".
        target: str | Path = self.path
        if not create:
            target = f"file:{urllib.parse.quote(str(self.path.absolute()))}?mode=rw"
        conn = sqlite3.connect(
            target, isolation_level=None, check_same_thread=False,
            timeout=_BUSY_TIMEOUT_MS / 1000, uri=not create,
        )  # fmt: skip
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        return conn

    def _open(self) -> sqlite3.Connection:
        parent = self.path.absolute().parent
        if not parent.is_dir():
            raise self._fail(f"directory {parent} does not exist")
        if self.path.is_dir():
            raise self._fail("is a directory")
        self._lock_fd = self._hold_lock()
        try:
            return self._open_checked()
        except BaseException:
            self._release_lock()
            raise

    def _open_checked(self) -> sqlite3.Connection:
        """The writer connection, the file checked (or created) and the pragmas set."""
        try:
            conn = self._connect()
        except sqlite3.Error as exc:
            raise self._fail("cannot be opened", exc) from exc
        try:
            self._check_or_create(conn)
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise self._fail(f"cannot use WAL mode (journal_mode is {mode})")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
        except sqlite3.DatabaseError as exc:
            conn.close()
            if "not a database" in str(exc) or "malformed" in str(exc):
                raise self._fail("is not an SQLite database", exc) from exc
            raise self._fail("cannot be opened", exc) from exc
        except BaseException:
            conn.close()
            raise
        return conn

    @property
    def lock_path(self) -> Path:
        """The file whose ``flock`` marks the store as taken: ``<store>.lock``."""
        return self.path.with_name(self.path.name + ".lock")

    def _hold_lock(self) -> int:
        """One writer per store, for its whole life: two exporters on one file would each
        trust their own cached high-water offsets and apply the other's lines again, so a
        second one is refused at start, naming the holder."""
        try:
            fd = hold_owner_lock(self.lock_path)
        except OSError as exc:
            raise self._fail(f"cannot create its lock file {self.lock_path}", exc) from exc
        if fd is None:
            raise self._fail(
                f"is in use by {lock_owner(self.lock_path)} (lock {self.lock_path}); one exporter "
                "per store: two writers would count lines twice"
            )
        return fd

    def _release_lock(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            os.close(fd)

    def _check_or_create(self, conn: sqlite3.Connection) -> None:
        """Refuse another database or a newer schema; create the schema in a new file."""
        conn.execute("BEGIN IMMEDIATE")  # two exporters starting at once create it once
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0]
            if version == 0 and app_id == 0 and tables == 0:
                self.created = True
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.executemany(
                    "INSERT INTO counters VALUES (?, 0)", [(name,) for name in _COUNTERS]
                )
                conn.executemany(
                    "INSERT INTO counters VALUES (?, ?)",
                    [("horizon", -math.inf), ("expired_through", -math.inf)],
                )
                conn.executemany(
                    "INSERT INTO delay_histogram VALUES (?, 0)",
                    [(le,) for le in (*DELAY_BUCKETS, math.inf)],
                )
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            elif app_id != APPLICATION_ID:
                raise self._fail("is an SQLite database but not an outcome store")
            elif version == 1:
                _migrate_from_1(conn)
            elif version > SCHEMA_VERSION:
                raise self._fail(
                    f"has schema version {version}, newer than this exporter's "
                    f"{SCHEMA_VERSION} (written by a newer release)"
                )
            elif version < 1:
                raise self._fail(f"has an unknown schema version {version}")
            if self.created:
                conn.execute("INSERT INTO counters VALUES ('_json_boolean_labels', 1)")
            else:
                _migrate_boolean_labels(conn)
            # a counter added in a later release starts at 0 in a store made before it;
            # "correct" starts at the diagonal it replaces, so the served counter never goes
            # down (its other-other pairs stay counted; new ones are counted exactly)
            conn.execute(
                "INSERT OR IGNORE INTO counters SELECT 'correct', coalesce(sum(n), 0)"
                " FROM confusion WHERE predicted = actual"
            )
            conn.executemany(
                "INSERT OR IGNORE INTO counters VALUES (?, 0)", [(name,) for name in _COUNTERS]
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _load_caches(self) -> None:
        self._sources = {}
        self._high = {}
        for sid, name, high in self._db.execute("SELECT id, name, high FROM sources"):
            self._sources[name] = sid
            self._high[name] = high
        self._classes = {name for (name,) in self._db.execute("SELECT name FROM classes")}

    # --- transactions -------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; on any error it is rolled back and the caches reloaded."""
        with self._lock:
            if self._closed:
                raise self._fail("is closed")
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                yield db
                db.execute("COMMIT")
            except BaseException as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                self._load_caches()
                if isinstance(exc, sqlite3.Error):
                    raise self._fail("write failed", exc) from exc
                raise

    def _sizes(self, db: sqlite3.Connection) -> dict[str, float]:
        return dict(db.execute("SELECT name, value FROM counters"))

    @staticmethod
    def _bump(db: sqlite3.Connection, deltas: _Deltas) -> None:
        """Add ``deltas`` to the counters (in the caller's transaction)."""
        changes = [(v, k) for k, v in deltas.items() if v and not k.startswith("_")]
        if changes:
            db.executemany("UPDATE counters SET value = value + ? WHERE name = ?", changes)

    # --- writing ------------------------------------------------------------------------------

    def add_predictions(self, rows: Sequence[PredictionRow]) -> BatchResult:
        """Apply a batch of prediction lines in one transaction (see :meth:`apply`)."""
        return self.apply(predictions=rows)

    def add_outcomes(self, rows: Sequence[OutcomeRow]) -> BatchResult:
        """Apply a batch of outcome lines in one transaction (see :meth:`apply`)."""
        return self.apply(outcomes=rows)

    def apply(
        self,
        predictions: Sequence[PredictionRow] = (),
        outcomes: Sequence[OutcomeRow] = (),
    ) -> BatchResult:
        """Apply the prediction and outcome lines of one poll in ONE transaction.

        Predictions first, so an outcome in the same batch joins its prediction directly.
        A line the store applied before is skipped entirely: the log follower re-reads the
        lines after its last checkpoint when it restarts after a crash, and applying them
        again must change nothing.  "Before" means at or below its source's high-water
        offset as this batch starts, or the same ``(source, offset)`` earlier in this batch:
        a source's lines must therefore come in offset order across batches (the follower's
        order; within one batch any order).  Within a batch, order is respected: of two
        outcomes for one request, the first wins.
        """
        high = self._high
        seen: set[tuple[str, int]] = set()
        highs: dict[str, int] = {}

        def fresh(row: PredictionRow | OutcomeRow) -> bool:
            key = (row.source, row.offset)
            if row.offset <= high.get(row.source, -1) or key in seen:
                return False
            seen.add(key)
            if row.offset > highs.get(row.source, -1):
                highs[row.source] = row.offset
            return True

        fresh_predictions = [row for row in predictions if fresh(row)]
        preds = [prediction_record(row) for row in fresh_predictions]
        outs = [outcome_record(row) for row in outcomes if fresh(row)]
        replayed = len(predictions) + len(outcomes) - len(preds) - len(outs)
        dropped = sum(row.probability_dropped for row in fresh_predictions)
        return self._apply(preds, outs, replayed, highs, dropped)

    def apply_blocks(self, blocks: Sequence[KeyedBlock]) -> BatchResult:
        """:meth:`apply` for the keyed lines of blocks as the follower handed them out.

        The ingest loop's path: records built by the parser (:func:`prediction_record`,
        :func:`outcome_record`), their offsets in increasing order within each block, and
        the blocks of one source in file order.  A block's replayed lines are found by one
        bisection of its offsets, with no per-line identity.
        """
        high = self._high
        preds: list[_Record | None] = []
        outs: list[_Record | None] = []
        highs: dict[str, int] = {}
        replayed = dropped = 0
        for block in blocks:
            h = highs.get(block.source, high.get(block.source, -1))
            p_offsets, o_offsets = block.prediction_offsets, block.outcome_offsets
            last = max(p_offsets[-1] if p_offsets else -1, o_offsets[-1] if o_offsets else -1)
            if last <= h:  # read again after a crash: all of it applied before
                replayed += len(p_offsets) + len(o_offsets)
                continue
            p0 = bisect.bisect_right(p_offsets, h) if p_offsets and p_offsets[0] <= h else 0
            o0 = bisect.bisect_right(o_offsets, h) if o_offsets and o_offsets[0] <= h else 0
            preds += block.predictions[p0:] if p0 else block.predictions
            outs += block.outcomes[o0:] if o0 else block.outcomes
            replayed += p0 + o0
            if block.dropped_offsets:
                d = block.dropped_offsets
                dropped += len(d) - (bisect.bisect_right(d, h) if d[0] <= h else 0)
            highs[block.source] = last
        return self._apply(preds, outs, replayed, highs, dropped)

    def _apply(
        self,
        preds: list[_Record | None],
        outs: list[_Record | None],
        replayed: int,
        highs: Mapping[str, int],
        dropped: int = 0,
    ) -> BatchResult:
        """Apply fresh records and move the sources' high-water offsets, in one transaction.

        ``dropped``: how many of the fresh predictions had their probability left out."""
        with self._transaction() as db:
            for name, offset in highs.items():
                self._set_high(db, name, offset)
            deltas: _Deltas = defaultdict(int)
            deltas["predictions_probability_dropped"] += dropped
            sizes = self._sizes(db)
            newest = max(
                self._add_predictions(db, preds, deltas, sizes) if preds else -math.inf,
                self._add_outcomes(db, outs, deltas) if outs else -math.inf,
            )
            if newest > sizes["horizon"]:  # the record clock (see sweep)
                db.execute("UPDATE counters SET value = ? WHERE name = 'horizon'", (newest,))
            self._enforce_bounds(db, deltas, sizes)
            self._bump(db, deltas)
        return BatchResult(
            applied=len(preds) + len(outs),
            replayed=replayed,
            joined=int(deltas["outcomes_total"]),
            held=int(deltas["_newly_held"]),
        )

    def _set_high(self, db: sqlite3.Connection, name: str, offset: int) -> None:
        """Record ``offset`` as the highest applied in ``name`` (in the caller's transaction)."""
        sid = self._sources.get(name)
        if sid is None:
            cur = db.execute("INSERT INTO sources (name, high) VALUES (?, ?)", (name, offset))
            self._sources[name] = int(cur.lastrowid or 0)
        else:
            db.execute("UPDATE sources SET high = ? WHERE id = ?", (offset, sid))
        self._high[name] = offset

    def _select_in(
        self, db: sqlite3.Connection, sql: str, keys: Iterable[Any]
    ) -> Iterator[tuple[Any, ...]]:
        """Rows of ``sql`` (with one ``{}`` for the ``IN`` list) for ``keys``, in chunks."""
        keys = list(keys)
        for start in range(0, len(keys), _IN_CHUNK):
            chunk = keys[start : start + _IN_CHUNK]
            yield from db.execute(sql.format(",".join("?" * len(chunk))), chunk).fetchall()

    def _lookup(
        self, db: sqlite3.Connection, columns: str, wanted: Mapping[str, int]
    ) -> dict[str, tuple[Any, ...]]:
        """``columns`` of the known requests among ``wanted`` (request id -> its
        :func:`_rid_hash`; ``r``: requests, ``s``: settled), by request id.

        Looked up by a 32-bit hash of the id: its index is a third the size of one on the
        text (it stays in the page cache at a million requests, and inserts dirty fewer
        pages); the id itself is compared here, so a collision costs one row read, nothing
        else.
        """
        sql = (
            f"SELECT r.request_id, {columns} FROM requests r"
            " LEFT JOIN settled s ON s.seq = r.seq WHERE r.rid_hash IN ({})"
        )
        return {
            row[0]: row[1:]
            for row in self._select_in(db, sql, set(wanted.values()))
            if row[0] in wanted
        }

    def _add_predictions(
        self,
        db: sqlite3.Connection,
        records: list[_Record | None],
        deltas: _Deltas,
        sizes: dict[str, float],
    ) -> float:
        """Insert the new, valid predictions; join the outcomes held for them.

        ``records`` are :func:`prediction_record` tuples, None for an invalid line.
        Returns the newest timestamp among the valid ones (-inf when none).
        """
        valid = [record for record in records if record is not None]
        deltas["predictions_invalid"] += len(records) - len(valid)
        if not valid:
            return -math.inf
        rids = [record[0] for record in valid]
        accepted: dict[str, _Record]
        if len(set(rids)) == len(rids):  # the usual case: no request twice in one poll
            accepted = dict(zip(rids, valid, strict=True))
        else:
            accepted = {}
            for rid, record in zip(rids, valid, strict=True):
                if rid in accepted:
                    deltas["predictions_duplicate"] += 1
                else:
                    accepted[rid] = record
        newest = max(record[1] for record in accepted.values())
        hashes = {rid: _rid_hash(rid) for rid in accepted}
        # A new prediction's hash is almost never known: ask the index alone (no row read,
        # no join), then the rows of the hashes it knows, to compare the ids themselves.
        known = {
            h
            for (h,) in self._select_in(
                db, "SELECT rid_hash FROM requests WHERE rid_hash IN ({})", set(hashes.values())
            )
        }
        if known:
            maybe = {rid: h for rid, h in hashes.items() if h in known}
            for rid in self._lookup(db, "r.seq", maybe):
                del accepted[rid]
                deltas["predictions_duplicate"] += 1
        if not accepted:
            return newest
        first = int(sizes["next_seq"])
        db.executemany(
            "INSERT INTO requests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (seq, hashes[rid], *record)
                for seq, (rid, record) in enumerate(accepted.items(), first)
            ],
        )
        deltas["next_seq"] += len(accepted)
        deltas["predictions_total"] += len(accepted)
        deltas["pending"] += len(accepted)
        # A prediction older than what sweep() already expired (a late file): no outcome may
        # join it any more, as if it had been pending during that sweep.
        through = sizes["expired_through"]
        late = [
            (seq, EXPIRED)
            for seq, record in enumerate(accepted.values(), first)
            if record[1] < through
        ]
        if late:
            db.executemany("INSERT INTO settled VALUES (?, ?)", late)
            deltas["predictions_expired"] += len(late)
            deltas["pending"] -= len(late)
            deltas["settled"] += len(late)
        if sizes["held"] > 0:  # outcomes that came first: join them now, in arrival order
            held = sorted(
                self._select_in(
                    db,
                    "SELECT id, request_id, time, actual, actual_value FROM held"
                    " WHERE request_id IN ({})",
                    accepted,
                )
            )
            if held:
                db.executemany("DELETE FROM held WHERE id = ?", [(h[0],) for h in held])
                deltas["held"] -= len(held)
                self._join(db, [h[1:] for h in held], deltas, hold=False)
        return newest

    def _add_outcomes(
        self, db: sqlite3.Connection, records: list[_Record | None], deltas: _Deltas
    ) -> float:
        """Join, hold or count the outcomes (:func:`outcome_record` tuples, None for an
        invalid line); returns the newest valid timestamp (or -inf)."""
        valid: list[_Outcome] = [record for record in records if record is not None]
        deltas["invalid"] += len(records) - len(valid)
        if not valid:
            return -math.inf
        self._join(db, valid, deltas, hold=True)
        return max(o[1] for o in valid)

    def _join(
        self, db: sqlite3.Connection, outcomes: list[_Outcome], deltas: _Deltas, hold: bool
    ) -> None:
        """Join, hold or count each outcome, in order, against the requests table."""
        known = self._lookup(
            db,
            "r.seq, r.time, coalesce(s.state, 0), r.model_version, r.predicted, r.value,"
            " r.probability, r.probabilities",
            {o[0]: _rid_hash(o[0]) for o in outcomes},
        )
        settled_now: dict[str, int] = {}  # state changes of this batch, seen by later outcomes
        settle: list[tuple[int, int]] = []
        window: list[tuple[Any, ...]] = []
        held: list[tuple[Any, ...]] = []
        pairs: Counter[tuple[str, Any]] = Counter()  # (predicted, actual): both str
        errors: list[float] = []
        delays: list[float] = []
        now = self._clock() if hold else 0.0
        max_delay = self.max_delay
        for rid, t_outcome, actual, actual_value in outcomes:
            request = known.get(rid)
            if request is None:
                assert hold, "a held outcome is joined only to a prediction just added"
                held.append((rid, t_outcome, now, actual, actual_value))
                continue
            seq, t_pred, state, version, predicted, value, probability, probabilities = request
            state = settled_now.get(rid, state)
            if state != PENDING:
                deltas[_SETTLED_REASON[state]] += 1
                continue
            if (actual is None) if predicted is not None else (actual_value is None):
                deltas["invalid"] += 1  # cannot be compared with this prediction
                continue
            delay = t_outcome - t_pred
            if delay > max_delay:
                deltas["expired"] += 1
                deltas["predictions_expired"] += 1
                settled_now[rid] = EXPIRED
                settle.append((seq, EXPIRED))
                continue
            delay = max(delay, 0.0)  # an outcome stamped before its prediction: clock skew
            settled_now[rid] = JOINED
            settle.append((seq, JOINED))
            delays.append(delay)
            window.append(
                (t_pred, seq, delay, version, predicted, value, probability, probabilities,
                 actual, actual_value)
            )  # fmt: skip
            if predicted is not None:
                pairs[(predicted, actual)] += 1
            else:
                errors.append(value - actual_value)
        if settle:
            # A small row in a table of small rows, and nothing else: the requests row (and
            # its indexes) is never updated, so a join dirties few pages (see the docs).
            db.executemany("INSERT INTO settled VALUES (?, ?)", settle)
            deltas["pending"] -= len(settle)
            deltas["settled"] += len(settle)
        if window:
            deltas["outcomes_total"] += len(window)
            if len(window) > self.window_max_samples:
                # Only the newest window_max_samples by (time, seq) can stay: each of the
                # others has that many newer pairs in this batch alone, so _enforce_bounds
                # would delete it again.  Not inserting it is the same, and far cheaper.
                window.sort(key=_WINDOW_KEY)
                del window[: len(window) - self.window_max_samples]
            db.executemany(
                "INSERT INTO quality_window VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", window
            )
            deltas["window"] += len(window)
            deltas["delay_sum"] += sum(delays)
            bounds = (*DELAY_BUCKETS, math.inf)
            buckets = Counter(bisect.bisect_left(DELAY_BUCKETS, d) for d in delays)
            db.executemany(
                "UPDATE delay_histogram SET n = n + ? WHERE le = ?",
                [(n, bounds[i]) for i, n in buckets.items()],
            )
        if held:
            db.executemany(
                "INSERT INTO held (request_id, time, arrived, actual, actual_value)"
                " VALUES (?, ?, ?, ?, ?)",
                held,
            )
            deltas["held"] += len(held)
            deltas["_newly_held"] += len(held)  # for BatchResult only: not a counter
        if pairs:
            confusion: Counter[tuple[str, str]] = Counter()
            for (predicted, actual), n in pairs.items():  # in order of first appearance
                confusion[(self._fold(db, predicted), self._fold(db, actual))] += n
                if predicted == actual:  # before folding: two other classes are no match
                    deltas["correct"] += n
            db.executemany(
                "INSERT INTO confusion VALUES (?, ?, ?)"
                " ON CONFLICT (predicted, actual) DO UPDATE SET n = n + excluded.n",
                [(p, a, n) for (p, a), n in confusion.items()],
            )
        if errors:
            deltas["abs_error_sum"] += sum(map(abs, errors))
            deltas["squared_error_sum"] += sum(e * e for e in errors)
            deltas["error_sum"] += sum(errors)
            deltas["error_count"] += len(errors)

    def _fold(self, db: sqlite3.Connection, label: str) -> str:
        """The confusion label of ``label``: itself among the first ``max_classes``, else other.

        First come, first kept: a bounded label set for ``mlops_outcome_confusion_total``
        that never renames a class once it has counts (which would break ``rate()``).
        """
        if label in self._classes:
            return label
        if len(self._classes) < self.max_classes:
            db.execute("INSERT INTO classes VALUES (?)", (label,))
            self._classes.add(label)
            return label
        return OTHER_CLASS

    def _enforce_bounds(
        self, db: sqlite3.Connection, deltas: _Deltas, sizes: dict[str, float]
    ) -> None:
        """Evict beyond ``max_pending``, forget beyond the same bound, trim the window.

        Eviction takes the oldest by arrival (``seq``), from a cursor below which every
        request is settled, so it never rescans the settled rows of earlier evictions.
        """
        pending = sizes["pending"] + deltas["pending"]
        if pending > self.max_pending:
            victims = [
                (seq, EVICTED)
                for (seq,) in db.execute(
                    "SELECT r.seq FROM requests r WHERE r.seq >= ?"
                    " AND NOT EXISTS (SELECT 1 FROM settled s WHERE s.seq = r.seq)"
                    " ORDER BY r.seq LIMIT ?",
                    (int(sizes["evict_cursor"]), int(pending - self.max_pending)),
                )
            ]
            db.executemany("INSERT INTO settled VALUES (?, ?)", victims)
            if victims:  # always, unless the counters were edited by hand
                deltas["evict_cursor"] += victims[-1][0] + 1 - sizes["evict_cursor"]
            deltas["predictions_evicted"] += len(victims)
            deltas["pending"] -= len(victims)
            deltas["settled"] += len(victims)
        settled = sizes["settled"] + deltas["settled"]
        if settled > self.max_pending:  # uncounted: forgetting is not an event
            oldest = db.execute(
                "SELECT seq FROM settled ORDER BY seq LIMIT ?", (int(settled - self.max_pending),)
            ).fetchall()
            self._forget(db, oldest, deltas)
        held = sizes["held"] + deltas["held"]
        if held > self.max_pending:  # a flood of outcomes for unknown requests
            cur = db.execute(
                "DELETE FROM held WHERE id IN (SELECT id FROM held ORDER BY id LIMIT ?)",
                (int(held - self.max_pending),),
            )
            deltas["held"] -= cur.rowcount
            deltas["unknown_request"] += cur.rowcount
        window = sizes["window"] + deltas["window"]
        if window > self.window_max_samples:
            cur = db.execute(
                "DELETE FROM quality_window WHERE (time, seq) IN (SELECT time, seq"
                " FROM quality_window ORDER BY time, seq LIMIT ?)",
                (int(window - self.window_max_samples),),
            )
            deltas["window"] -= cur.rowcount

    @staticmethod
    def _forget(db: sqlite3.Connection, seqs: list[tuple[int]], deltas: _Deltas) -> None:
        """Delete settled requests (their payload and their settled row)."""
        if seqs:
            db.executemany("DELETE FROM requests WHERE seq = ?", seqs)
            db.executemany("DELETE FROM settled WHERE seq = ?", seqs)
            deltas["settled"] -= len(seqs)

    def check_file(self) -> None:
        """Raise :class:`OutcomeStoreError` when the store's path no longer names the file
        this store opened (deleted, or replaced by another file, while the exporter runs).

        The writer goes on in the file it holds open, which is gone for good at the next
        restart, where a new, empty store would start from 0: said while there is time to
        put the file back (the exporter calls this every quality pass).
        """
        try:
            identity = _file_identity(self.path)
        except FileNotFoundError:
            raise self._fail(
                "was deleted while the exporter runs: its counters and pending predictions "
                "live on only in the file the exporter holds open, and a restart starts a new "
                "store from 0"
            ) from None
        except OSError as exc:
            raise self._fail("cannot be checked", exc) from exc
        if identity != self._identity:
            raise self._fail(
                "was replaced by another file while the exporter runs: the exporter writes "
                "to the file it opened, and a restart would open the new one"
            )

    def sweep(self, now: float | None = None) -> None:
        """Apply the time-based rules in one transaction (the exporter calls it every pass).

        - An outcome held longer than ``early_grace`` (by ``clock``, from when it was
          applied: the grace covers the follower reading two files at different speeds, a
          matter of processing time) counts ``unknown_request``.
        - A pending prediction older than ``max_delay + early_grace`` on the record clock
          counts ``predictions_expired``: no outcome can join it any more (the grace covers a
          late outcome file).  The record clock is the newest record timestamp applied,
          capped at ``now`` so a future-dated line cannot expire everything; a replay of the
          same log therefore expires the same predictions however fast it runs.
        - Settled requests are remembered ``max_delay`` longer, then forgotten: a duplicate
          or late outcome still finds them meanwhile.
        - Pairs older than ``window_max_age`` (by ``now``) leave the quality window.
        """
        now = self._clock() if now is None else float(now)
        with self._transaction() as db:
            deltas: _Deltas = defaultdict(int)
            cur = db.execute("DELETE FROM held WHERE arrived < ?", (now - self.early_grace,))
            deltas["unknown_request"] += cur.rowcount
            deltas["held"] -= cur.rowcount
            sizes = self._sizes(db)
            through = sizes["expired_through"]
            cutoff = min(now, sizes["horizon"]) - self.max_delay - self.early_grace
            if cutoff > through:  # only the predictions between the last cutoff and this one
                expired = [
                    (seq, EXPIRED)
                    for (seq,) in db.execute(
                        "SELECT r.seq FROM requests r WHERE r.time >= ? AND r.time < ?"
                        " AND NOT EXISTS (SELECT 1 FROM settled s WHERE s.seq = r.seq)",
                        (through, cutoff),
                    )
                ]
                db.executemany("INSERT INTO settled VALUES (?, ?)", expired)
                deltas["predictions_expired"] += len(expired)
                deltas["pending"] -= len(expired)
                deltas["settled"] += len(expired)
                db.execute(
                    "UPDATE counters SET value = ? WHERE name = 'expired_through'", (cutoff,)
                )
                through = cutoff
            old = db.execute(
                "SELECT seq FROM requests WHERE time < ?", (through - self.max_delay,)
            ).fetchall()
            self._forget(db, old, deltas)
            if self.window_max_age is not None:
                cur = db.execute(
                    "DELETE FROM quality_window WHERE time < ?", (now - self.window_max_age,)
                )
                deltas["window"] -= cur.rowcount
            self._bump(db, deltas)

    def prune_lines(self, committed: Mapping[str, int]) -> int:
        """Forget the sources the durable offsets checkpoint no longer lists; returns how many.

        ``committed`` maps each source of the checkpoint to its offset.  A source the store
        knows but ``committed`` lacks is a file the follower dropped (rotated away and
        drained), which is never read again: its high-water offset goes.  Call it right
        after the checkpoint was written and before the next :meth:`apply`, with the whole
        checkpoint: a source applied after the positions were taken, from a file they do
        not list yet, would otherwise be forgotten while its lines can still be re-read.

        ``source`` must name one file's content for its whole life: after a truncation the
        follower re-reads a file from offset 0, and if its source stayed the same, new lines
        at offsets up to the old high-water mark would be skipped as replays.
        """
        gone = [(name, sid) for name, sid in self._sources.items() if name not in committed]
        if not gone:
            return 0
        with self._transaction() as db:
            db.executemany("DELETE FROM sources WHERE id = ?", [(sid,) for _, sid in gone])
            for name, _ in gone:
                del self._sources[name]
                del self._high[name]
        return len(gone)

    def sources(self) -> tuple[str, ...]:
        """The source names whose high-water offsets the store holds (for :meth:`prune_lines`)."""
        with self._lock:
            return tuple(self._sources)

    # --- reading ------------------------------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        """This thread's read connection (opened on first use, closed by :meth:`close`)."""
        if self._closed:
            raise self._fail("is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            self.check_file()
            try:
                conn = self._connect(create=False)
                conn.execute("PRAGMA query_only = 1")
            except sqlite3.Error as exc:
                raise self._fail("cannot be opened for reading", exc) from exc
            with self._lock:
                self._readers.append(conn)
            self._local.conn = conn
        return conn

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every query in it sees the same committed state."""
        conn = self._reader()
        try:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise self._fail("read failed", exc) from exc

    def stats(self) -> OutcomeStats:
        """Every counter, size and histogram, from one consistent snapshot."""
        with self._snapshot() as db:
            c = dict(db.execute("SELECT name, value FROM counters"))
            histogram = db.execute("SELECT le, n FROM delay_histogram ORDER BY le").fetchall()
            confusion = {(p, a): n for p, a, n in db.execute("SELECT * FROM confusion")}
        running, cumulative = 0, []
        for le, n in histogram:
            running += n
            cumulative.append((float(le), running))
        horizon = c.pop("horizon")
        return OutcomeStats(
            outcomes_total=int(c["outcomes_total"]),
            unmatched=MappingProxyType({r: int(c[r]) for r in UNMATCHED_REASONS}),
            predictions_total=int(c["predictions_total"]),
            predictions_duplicate=int(c["predictions_duplicate"]),
            predictions_invalid=int(c["predictions_invalid"]),
            predictions_probability_dropped=int(c["predictions_probability_dropped"]),
            predictions_expired=int(c["predictions_expired"]),
            predictions_evicted=int(c["predictions_evicted"]),
            pending=int(c["pending"]),
            held=int(c["held"]),
            remembered=int(c["settled"]),
            window_samples=int(c["window"]),
            delay_buckets=tuple(cumulative),
            delay_sum=float(c["delay_sum"]),
            confusion=MappingProxyType(confusion),
            correct=int(c["correct"]),
            abs_error_sum=float(c["abs_error_sum"]),
            squared_error_sum=float(c["squared_error_sum"]),
            error_sum=float(c["error_sum"]),
            error_count=int(c["error_count"]),
            horizon=float(horizon) if math.isfinite(horizon) else None,
        )

    def quality_window(
        self, model_version: str | None = None, *, now: float | None = None
    ) -> QualityWindow:
        """The newest ``window_max_samples`` joined pairs (of ``model_version`` if given).

        Pairs older than ``window_max_age`` are left out even before :meth:`sweep` deletes
        them.  Reads one snapshot; the arrays are read-only.
        """
        where: list[str] = []
        params: list[Any] = []
        if model_version is not None:
            where.append("model_version = ?")
            params.append(model_version)
        if self.window_max_age is not None:
            where.append("time >= ?")
            params.append((self._clock() if now is None else now) - self.window_max_age)
        sql = (
            "SELECT time, delay, model_version, predicted, actual, value, actual_value,"
            " probability, probabilities FROM quality_window"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY time DESC, seq DESC LIMIT ?"
        )
        with self._snapshot() as db:
            rows = db.execute(sql, (*params, self.window_max_samples)).fetchall()
        rows.reverse()
        return _window_arrays(rows)

    # --- closing ------------------------------------------------------------------------------

    def close(self) -> None:
        """Close every connection (call it once the threads that read have stopped)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for conn in self._readers:
                conn.close()
            self._readers.clear()
            self._db.close()
            self._release_lock()  # last: the file is free once nothing of it is open

    def __enter__(self) -> OutcomeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- helpers ----------------------------------------------------------------------------------


_BOOLEAN_LABEL = "CASE {0} WHEN 'True' THEN 'true' WHEN 'False' THEN 'false' ELSE {0} END"


def _migrate_boolean_labels(conn: sqlite3.Connection) -> None:
    """Relabel the classes ``True``/``False`` of a store made before boolean classes were
    labelled as JSON spells them (``true``/``false``), once: a prediction pending with the
    label ``True`` would otherwise never match its outcome ``true`` after the upgrade (the
    accuracy would fall for up to ``max_delay``).  A class that was the *string* ``"True"``
    is relabelled too: the store cannot tell the two apart, and a boolean is far likelier.
    """
    done = conn.execute("SELECT 1 FROM counters WHERE name = '_json_boolean_labels'").fetchone()
    if done:
        return
    both = "('True', 'False')"
    conn.execute(f"UPDATE requests SET predicted = {_BOOLEAN_LABEL.format('predicted')}"
                 f" WHERE predicted IN {both}")  # fmt: skip
    conn.execute(
        f"UPDATE held SET actual = {_BOOLEAN_LABEL.format('actual')} WHERE actual IN {both}"
    )
    conn.execute(
        f"UPDATE quality_window SET predicted = {_BOOLEAN_LABEL.format('predicted')},"
        f" actual = {_BOOLEAN_LABEL.format('actual')}"
        f" WHERE predicted IN {both} OR actual IN {both}"
    )
    conn.execute(
        "INSERT INTO confusion (predicted, actual, n)"
        f" SELECT {_BOOLEAN_LABEL.format('predicted')}, {_BOOLEAN_LABEL.format('actual')}, n"
        f" FROM confusion WHERE predicted IN {both} OR actual IN {both}"
        " ON CONFLICT (predicted, actual) DO UPDATE SET n = n + excluded.n"
    )
    conn.execute(f"DELETE FROM confusion WHERE predicted IN {both} OR actual IN {both}")
    conn.execute(f"UPDATE OR IGNORE classes SET name = {_BOOLEAN_LABEL.format('name')}"
                 f" WHERE name IN {both}")  # fmt: skip
    conn.execute(f"DELETE FROM classes WHERE name IN {both}")
    conn.execute("INSERT INTO counters VALUES ('_json_boolean_labels', 1)")


def _migrate_from_1(conn: sqlite3.Connection) -> None:
    """Schema 1 -> 2 (in the caller's transaction): the per-line identities become one
    high-water offset per source, the highest line of it applied (every line below it was
    applied or is below the checkpoint, so is never read again)."""
    conn.execute("ALTER TABLE sources ADD COLUMN high INTEGER NOT NULL DEFAULT -1")
    conn.execute(
        "UPDATE sources SET high = coalesce("
        "(SELECT max(line_offset) FROM lines WHERE lines.source = sources.id), -1)"
    )
    conn.execute("DROP TABLE lines")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _rid_hash(request_id: str) -> int:
    """The 32-bit key ``requests`` is indexed by: CRC-32 is stable across processes and
    releases (unlike ``hash()``) and costs a tenth of a cryptographic digest."""
    return zlib.crc32(request_id.encode("utf-8", "surrogatepass"))


def prediction_record(row: PredictionRow) -> _Record | None:
    """A usable prediction's :data:`PredictionRecord`, or None when it cannot be joined.

    Unusable: no request id, no prediction, a time, value or probability that is not a
    finite number, a label that is not text.  (``math.isfinite`` raises ``TypeError`` on
    what is not a number, which is the type check.)
    """
    if not row.request_id or not isinstance(row.request_id, str):
        return None
    try:
        if not math.isfinite(row.time):
            return None
        if row.value is None:
            if not isinstance(row.predicted, str):
                return None
        elif not math.isfinite(row.value) or not isinstance(row.predicted, str | None):
            return None
        if row.probability is not None and not math.isfinite(row.probability):
            return None
        probabilities = row.probabilities
        text = None
        if probabilities is not None:
            if not math.isfinite(sum(probabilities.values())):  # NaN or inf anywhere
                return None
            if type(probabilities) is not dict:
                probabilities = dict(probabilities)
            text = orjson.dumps(probabilities).decode()  # TypeError: a label not text
    except TypeError:
        return None
    return (
        row.request_id, row.time, row.model_version, row.predicted, row.value,
        row.probability, text,
    )  # fmt: skip


def outcome_record(row: OutcomeRow) -> _Record | None:
    """An outcome's :data:`OutcomeRecord`, or None when it cannot be joined at all (see
    :class:`OutcomeRow`)."""
    if row.invalid or not row.request_id or not isinstance(row.request_id, str):
        return None
    try:
        if not math.isfinite(row.time):
            return None
        if row.actual_value is None:
            if not isinstance(row.actual, str):
                return None
        elif not math.isfinite(row.actual_value) or not isinstance(row.actual, str | None):
            return None
    except TypeError:
        return None
    return (row.request_id, row.time, row.actual, row.actual_value)


def _file_identity(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def _readonly(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def _window_arrays(rows: list[tuple[Any, ...]]) -> QualityWindow:
    """Columns of the window rows as typed arrays; per-class probabilities as a matrix."""
    n = len(rows)
    cols: list[tuple[Any, ...]] = list(zip(*rows, strict=True)) if rows else [()] * 9
    floats = [np.array(cols[i], dtype=np.float64).reshape(n) for i in (0, 1, 5, 6, 7)]
    objects = [np.array(cols[i], dtype=object).reshape(n) for i in (2, 3, 4)]
    # Per-class probabilities: rows usually share one key order, so group rows by their
    # keys and fill each group with one fancy-indexed assignment.
    groups: dict[tuple[str, ...], tuple[list[int], list[list[float]]]] = {}
    for i, text in enumerate(cols[8]):
        if text is not None:
            probs = orjson.loads(text)
            group = groups.setdefault(tuple(probs), ([], []))
            group[0].append(i)
            group[1].append(list(probs.values()))
    classes = tuple(sorted({c for keys in groups for c in keys}))
    matrix = np.full((n, len(classes)), np.nan)
    column = {c: j for j, c in enumerate(classes)}
    for keys, (index, values) in groups.items():
        matrix[np.ix_(index, [column[c] for c in keys])] = values
    return QualityWindow(
        time=_readonly(floats[0]),
        delay=_readonly(floats[1]),
        model_version=_readonly(objects[0]),
        predicted=_readonly(objects[1]),
        actual=_readonly(objects[2]),
        predicted_value=_readonly(floats[2]),
        actual_value=_readonly(floats[3]),
        probability=_readonly(floats[4]),
        classes=classes,
        probabilities=_readonly(matrix),
    )
