"""The outcome store (exporter/outcomes.py): joining delayed ground truth to predictions.

Every test drives a real SQLite file.  The tests are named for what can happen to an
outcome (early, late, twice, never, garbage), to the store (full, restarted, killed, read
while written) and to its file (missing directory, not a database, a newer schema).
"""

from __future__ import annotations

import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from exporter.outcomes import (
    OTHER_CLASS,
    UNMATCHED_REASONS,
    OutcomeRow,
    OutcomeStats,
    OutcomeStore,
    OutcomeStoreError,
    PredictionRow,
)
from mlops_core.errors import MlopsError
from tests.conftest import REPO_ROOT, holding_process

T0 = 1_700_000_000.0


class FakeClock:
    """The store's clock (held outcomes' arrival, default ``now``), moved by hand."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def pred(
    i: int | str, t: float = T0, *, source: str = "pred.jsonl", offset: int | None = None,
    **fields: Any,
) -> PredictionRow:  # fmt: skip
    """A classifier prediction ``r<i>`` (class ``a``) unless ``fields`` say otherwise."""
    fields.setdefault("predicted", None if "value" in fields else "a")
    return PredictionRow(
        request_id=f"r{i}", time=t, source=source,
        offset=offset if offset is not None else _auto_offset(source), **fields,
    )  # fmt: skip


def out(
    i: int | str | None, t: float, actual: str | None = "a", *, source: str = "out.jsonl",
    offset: int | None = None, **fields: Any,
) -> OutcomeRow:  # fmt: skip
    return OutcomeRow(
        request_id=None if i is None else f"r{i}", time=t, actual=actual, source=source,
        offset=offset if offset is not None else _auto_offset(source), **fields,
    )  # fmt: skip


_offsets: Counter[str] = Counter()


def _auto_offset(source: str) -> int:
    """A fresh line offset in ``source``: each row built is a new line unless told."""
    _offsets[source] += 100
    return _offsets[source]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterable[OutcomeStore]:
    with OutcomeStore(tmp_path / "outcomes.db", max_delay=3600.0, clock=clock) as s:
        yield s


def pending_ids(path: Path) -> set[str]:
    """The request ids still awaiting an outcome, read straight from the file."""
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT request_id FROM requests r"
            " WHERE NOT EXISTS (SELECT 1 FROM settled s WHERE s.seq = r.seq)"
        ).fetchall()
    return {rid for (rid,) in rows}


def dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (the lines table aside), to compare two stores."""
    with sqlite3.connect(path) as db:
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")]
        return {
            t: sorted(db.execute(f"SELECT * FROM {t}").fetchall(), key=repr)
            for t in tables
            # line bookkeeping aside, and held rows (they carry the wall-clock arrival time)
            if t not in ("lines", "sources", "held")
        }


def assert_conservation(stats: OutcomeStats) -> None:
    """Every prediction accepted is pending, joined, expired or evicted: nothing else."""
    assert stats.predictions_total == (
        stats.pending + stats.outcomes_total + stats.predictions_expired
        + stats.predictions_evicted
    ), stats  # fmt: skip


# --- the join -----------------------------------------------------------------------------


def test_outcome_for_a_pending_prediction_is_joined_with_its_delay(store: OutcomeStore) -> None:
    store.add_predictions([
        pred(1, T0, predicted="a", probability=0.8, probabilities={"a": 0.8, "b": 0.2},
             model_version="1.0"),
        pred(2, T0 + 1, predicted="b"),
    ])  # fmt: skip
    result = store.add_outcomes([out(1, T0 + 90.0, "b")])
    assert (result.applied, result.joined, result.held, result.replayed) == (1, 1, 0, 0)

    stats = store.stats()
    assert (stats.outcomes_total, stats.pending, stats.predictions_total) == (1, 1, 2)
    assert dict(stats.unmatched) == dict.fromkeys(UNMATCHED_REASONS, 0)
    assert stats.delay_sum == 90.0
    # cumulative: 90 s is above 60 s and within 600 s
    assert dict(stats.delay_buckets)[60.0] == 0 and dict(stats.delay_buckets)[600.0] == 1
    assert stats.delay_buckets[-1] == (math.inf, 1)
    assert dict(stats.confusion) == {("a", "b"): 1}
    assert stats.horizon == T0 + 90.0

    window = store.quality_window()
    assert len(window) == 1
    assert window.time.tolist() == [T0] and window.delay.tolist() == [90.0]
    assert window.predicted.tolist() == ["a"] and window.actual.tolist() == ["b"]
    assert window.model_version.tolist() == ["1.0"]
    assert window.probability.tolist() == [0.8]
    assert window.classes == ("a", "b") and window.probabilities.tolist() == [[0.8, 0.2]]
    assert np.isnan(window.predicted_value).all()
    assert not window.time.flags.writeable  # the drift pass may share it: read-only
    assert_conservation(stats)


def test_outcome_before_its_prediction_is_held_then_joined_when_it_arrives(
    store: OutcomeStore, clock: FakeClock
) -> None:
    # the outcomes file is read ahead of the predictions file (two writers, two followers)
    assert store.add_outcomes([out(1, T0 + 5)]).held == 1
    assert (store.stats().held, store.stats().outcomes_total) == (1, 0)
    clock.now += 599  # within early_grace (600 s): a sweep keeps it
    store.sweep()
    assert store.stats().held == 1

    result = store.add_predictions([pred(1, T0)])
    assert result.joined == 1
    stats = store.stats()
    assert (stats.held, stats.outcomes_total, stats.pending) == (0, 1, 0)
    assert store.quality_window().delay.tolist() == [5.0]
    assert_conservation(stats)


def test_outcome_in_the_same_batch_as_its_prediction_joins_without_being_held(
    store: OutcomeStore,
) -> None:
    result = store.apply([pred(1, T0)], [out(1, T0 + 1)])
    assert (result.joined, result.held) == (1, 0)


def test_outcome_held_past_the_grace_counts_unknown_request(
    store: OutcomeStore, clock: FakeClock
) -> None:
    store.add_outcomes([out("never", T0), out("late-pred", T0)])
    clock.now += 601
    store.sweep()
    stats = store.stats()
    assert stats.unmatched["unknown_request"] == 2 and stats.held == 0
    # its prediction arriving after the grace joins nothing: the outcome was counted
    store.add_predictions([pred("late-pred", T0 - 10)])
    stats = store.stats()
    assert (stats.outcomes_total, stats.pending) == (0, 1)


def test_second_outcome_for_a_joined_request_is_a_duplicate_and_the_first_wins(
    store: OutcomeStore,
) -> None:
    store.add_predictions([pred(1, T0), pred(2, T0)])
    # in one batch: order decides; across batches: the earlier batch
    store.add_outcomes([out(1, T0 + 1, "first"), out(1, T0 + 2, "second")])
    store.add_outcomes([out(2, T0 + 1, "first")])
    store.add_outcomes([out(2, T0 + 3, "second"), out(1, T0 + 4, "third")])
    stats = store.stats()
    assert (stats.outcomes_total, stats.unmatched["duplicate"]) == (2, 3)
    assert store.quality_window().actual.tolist() == ["first", "first"]


def test_two_early_outcomes_for_one_request_the_first_wins_when_the_prediction_arrives(
    store: OutcomeStore,
) -> None:
    store.add_outcomes([out(1, T0 + 1, "first")])
    store.add_outcomes([out(1, T0 + 2, "second")])
    assert store.stats().held == 2
    store.add_predictions([pred(1, T0)])
    stats = store.stats()
    assert (stats.held, stats.outcomes_total, stats.unmatched["duplicate"]) == (0, 1, 1)
    assert store.quality_window().actual.tolist() == ["first"]


def test_outcome_later_than_max_delay_is_expired_by_record_timestamps(
    store: OutcomeStore, clock: FakeClock
) -> None:
    # the wall clock plays no part: the store's clock is far *behind* the records here
    clock.now = T0 - 10 * 86400
    store.add_predictions([pred(1, T0), pred(2, T0)])
    store.add_outcomes([out(1, T0 + 3600.0), out(2, T0 + 3600.5)])  # max_delay is 3600 s
    stats = store.stats()
    assert (stats.outcomes_total, stats.unmatched["expired"]) == (1, 1)
    # the expired one left pending (counted as an expired prediction); a second outcome
    # for it is expired too, whatever its own timestamp
    assert (stats.pending, stats.predictions_expired) == (0, 1)
    store.add_outcomes([out(2, T0 + 10)])
    assert store.stats().unmatched["expired"] == 2
    assert_conservation(store.stats())


def test_invalid_outcomes_are_counted_and_leave_the_prediction_pending(
    store: OutcomeStore,
) -> None:
    store.add_predictions([pred(1, T0), pred(2, T0, value=3.0)])
    store.add_outcomes([
        out(None, T0 + 1),                                  # no request_id
        out(1, T0 + 1, None),                               # no actual at all
        out(1, T0 + 1, "a", actual_value=math.nan),         # a NaN actual
        out(1, math.inf, "a"),                              # a non-finite timestamp
        out(1, T0 + 1, "a", invalid=True),                  # the caller knew
        out(2, T0 + 1, "3.0"),                              # a regressor's, but no number
    ])  # fmt: skip
    stats = store.stats()
    assert stats.unmatched["invalid"] == 6
    assert (stats.pending, stats.outcomes_total) == (2, 0)
    store.add_outcomes([out(1, T0 + 2), out(2, T0 + 2, "2.5", actual_value=2.5)])
    assert store.stats().outcomes_total == 2  # the valid ones still join


def test_regressor_pairs_add_to_the_error_sums(store: OutcomeStore) -> None:
    store.add_predictions([pred(i, T0, value=v) for i, v in enumerate([3.0, 1.0, 10.0])])
    store.add_outcomes(
        [out(i, T0 + 1, str(a), actual_value=a) for i, a in enumerate([1.0, 2.0, 10.0])]
    )
    stats = store.stats()
    errors = [2.0, -1.0, 0.0]  # predicted - actual
    assert stats.error_count == 3
    assert stats.abs_error_sum == 3.0 and stats.squared_error_sum == 5.0
    assert stats.error_sum == 1.0
    assert dict(stats.confusion) == {}  # regressors have no confusion counts
    window = store.quality_window()
    assert sorted(window.predicted_value - window.actual_value) == sorted(errors)
    assert window.predicted.tolist() == [None, None, None]


def test_confusion_counts_fold_classes_beyond_max_classes_into_other(tmp_path: Path) -> None:
    with OutcomeStore(tmp_path / "o.db", max_classes=3) as store:
        labels = ["a", "b", "c", "d", "e"]
        store.add_predictions([pred(i, T0, predicted=labels[i]) for i in range(5)])
        store.add_outcomes([out(i, T0 + 1, labels[(i + 1) % 5]) for i in range(5)])
        # first seen: a (predicted), b (its actual), c; then d and e fold
        assert dict(store.stats().confusion) == {
            ("a", "b"): 1, ("b", "c"): 1, ("c", OTHER_CLASS): 1, (OTHER_CLASS, OTHER_CLASS): 1,
            (OTHER_CLASS, "a"): 1,
        }  # fmt: skip
    # the class set is in the database: a restart keeps it
    with OutcomeStore(tmp_path / "o.db", max_classes=3) as store:
        store.add_predictions([pred(9, T0, predicted="z")])
        store.add_outcomes([out(9, T0 + 1, "a")])
        assert store.stats().confusion[(OTHER_CLASS, "a")] == 2


def test_the_correct_count_is_exact_beyond_max_classes(tmp_path: Path) -> None:
    # from the folded diagonal, d predicted for an actual e was "correct" (other, other)
    path = tmp_path / "o.db"
    with OutcomeStore(path, max_classes=2) as store:
        pairs = [("a", "a"), ("b", "a"), ("d", "e"), ("e", "e"), ("f", "f"), ("d", "g")]
        store.add_predictions([pred(i, T0, predicted=p) for i, (p, _) in enumerate(pairs)])
        store.add_outcomes([out(i, T0 + 1, a) for i, (_, a) in enumerate(pairs)])
        stats = store.stats()
        assert stats.confusion[(OTHER_CLASS, OTHER_CLASS)] == 4
        assert stats.correct == 3  # a-a, e-e, f-f
    # a store made before the counter: it starts at the diagonal it served before (5), so
    # the counter never goes down, and counts exactly from then on
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM counters WHERE name = 'correct'")
    with OutcomeStore(path, max_classes=2) as store:
        assert store.stats().correct == 5
        store.add_predictions([pred(9, T0, predicted="h")])
        store.add_outcomes([out(9, T0 + 1, "i")])
        assert store.stats().correct == 5  # two folded classes: no match


def test_duplicate_and_invalid_predictions_are_counted_and_the_first_kept(
    store: OutcomeStore,
) -> None:
    store.add_predictions([pred(1, T0, predicted="first"), pred(1, T0, predicted="again")])
    store.add_predictions([
        pred(1, T0, predicted="later"),
        PredictionRow(request_id="", time=T0, source="p", offset=1, predicted="a"),
        pred(2, math.nan),
        pred(3, T0, predicted=None),  # no prediction at all
        pred(4, T0, probabilities={"a": math.inf}),
        pred(5, T0, probability=math.nan),
    ])  # fmt: skip
    stats = store.stats()
    assert (stats.predictions_total, stats.pending) == (1, 1)
    assert (stats.predictions_duplicate, stats.predictions_invalid) == (2, 5)
    store.add_outcomes([out(1, T0 + 1, "first")])
    assert store.quality_window().predicted.tolist() == ["first"]


# --- bounds and time ----------------------------------------------------------------------


def test_max_pending_evicts_the_oldest_and_their_late_outcomes_count_evicted(
    tmp_path: Path,
) -> None:
    with OutcomeStore(tmp_path / "o.db", max_pending=3) as store:
        store.add_predictions([pred(i, T0 + i) for i in range(3)])
        store.add_outcomes([out(1, T0 + 5)])  # joined: no longer counts against the bound
        store.add_predictions([pred(i, T0 + i) for i in range(3, 6)])
        stats = store.stats()
        assert (stats.pending, stats.predictions_evicted) == (3, 2)  # r0 and r2 went
        store.add_outcomes([out(0, T0 + 9), out(2, T0 + 9), out(3, T0 + 9)])
        stats = store.stats()
        assert stats.unmatched["evicted"] == 2 and stats.outcomes_total == 2
        assert pending_ids(tmp_path / "o.db") == {"r4", "r5"}
        assert_conservation(stats)


def test_new_limits_are_in_force_from_the_next_batch_and_sweep(tmp_path: Path) -> None:
    """set_limits (a reload): a lower max_pending evicts at the next batch, a shorter
    max_delay expires at the next sweep; nothing already counted changes."""
    limits = {
        "max_delay": 30 * 86400.0, "max_pending": 10, "early_grace": 600.0,
        "window_max_samples": 100, "window_max_age": None, "max_classes": 20,
    }  # fmt: skip
    with OutcomeStore(tmp_path / "o.db", **limits) as store:
        store.add_predictions([pred(i, T0 + i) for i in range(6)])
        assert store.stats().pending == 6
        store.set_limits(**(limits | {"max_pending": 4}))
        assert store.stats().predictions_evicted == 0  # not until the next batch
        store.add_predictions([pred(6, T0 + 6)])
        stats = store.stats()
        assert (stats.pending, stats.predictions_evicted) == (4, 3)
        assert pending_ids(tmp_path / "o.db") == {"r3", "r4", "r5", "r6"}
        store.set_limits(**(limits | {"max_pending": 4, "max_delay": 2.0, "early_grace": 0.0}))
        store.add_outcomes([out("other", T0 + 7)])  # moves the record clock to T0 + 7
        store.sweep(now=T0 + 7)
        stats = store.stats()  # r3 and r4 are more than 2 s older than the record clock
        assert (stats.pending, stats.predictions_expired) == (2, 2)
        assert_conservation(stats)
        with pytest.raises(ValueError, match="max_pending"):
            store.set_limits(**(limits | {"max_pending": 0}))
        assert store.max_pending == 4  # a refused change changes nothing


def test_sweep_expires_pending_predictions_by_the_record_clock_not_the_wall_clock(
    tmp_path: Path,
) -> None:
    clock = FakeClock(T0 + 100 * 86400)  # the wall clock is far ahead: a replay of old logs
    with OutcomeStore(tmp_path / "o.db", max_delay=3600, early_grace=600, clock=clock) as s:
        s.add_predictions([pred(1, T0), pred(2, T0 + 1000)])
        s.sweep()
        assert s.stats().predictions_expired == 0  # no record has moved the record clock
        s.add_outcomes([out("other", T0 + 4199.5)])  # record clock: T0 + 4199.5
        s.sweep()
        assert s.stats().predictions_expired == 0  # r1 is not yet max_delay + grace old...
        s.add_predictions([pred(3, T0 + 4201.5)])
        s.sweep()
        stats = s.stats()
        assert (stats.predictions_expired, stats.pending) == (1, 2)  # ...now r1 is past it
        assert pending_ids(tmp_path / "o.db") == {"r2", "r3"}
        # a prediction that arrives older than what sweep expired is expired on arrival
        s.add_predictions([pred(4, T0 + 1)])
        assert s.stats().predictions_expired == 2
        s.add_outcomes([out(4, T0 + 2), out(1, T0 + 5)])
        assert s.stats().unmatched["expired"] == 2  # no outcome joins an expired prediction
        assert_conservation(s.stats())


def test_a_future_dated_record_cannot_expire_every_pending_prediction(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    with OutcomeStore(tmp_path / "o.db", max_delay=3600, clock=clock) as store:
        store.add_predictions([pred(1, T0 - 60), pred("bad-clock", T0 + 365 * 86400)])
        store.sweep()  # the record clock is capped at the wall clock
        assert store.stats().pending == 2


def test_settled_requests_are_forgotten_after_twice_max_delay(tmp_path: Path) -> None:
    clock = FakeClock(T0 + 10 * 86400)
    with OutcomeStore(tmp_path / "o.db", max_delay=3600, early_grace=0, clock=clock) as s:
        s.add_predictions([pred(1, T0)])
        s.add_outcomes([out(1, T0 + 1)])
        s.add_predictions([pred(2, T0 + 7300)])  # the record clock passes 2 x max_delay
        s.sweep()
        assert s.stats().remembered == 0
        # a duplicate this late is no longer recognised: it waits and counts unknown
        s.add_outcomes([out(1, T0 + 7301)])
        assert s.stats().held == 1


# --- the quality window -------------------------------------------------------------------


def test_quality_window_keeps_the_newest_max_samples_by_prediction_time(tmp_path: Path) -> None:
    with OutcomeStore(tmp_path / "o.db", window_max_samples=3) as store:
        times = [T0 + t for t in (5, 1, 4, 2, 3)]
        store.add_predictions([pred(i, t) for i, t in enumerate(times)])
        store.add_outcomes([out(i, T0 + 10) for i in range(5)])
        window = store.quality_window()
        assert window.time.tolist() == [T0 + 3, T0 + 4, T0 + 5]  # oldest first
        assert store.stats().window_samples == 3
        assert store.stats().outcomes_total == 5  # trimming the window uncounts nothing


def test_quality_window_survives_a_restart(tmp_path: Path) -> None:
    with OutcomeStore(tmp_path / "o.db") as store:
        store.add_predictions([pred(i, T0 + i) for i in range(4)])
        store.add_outcomes([out(i, T0 + 100) for i in range(4)])
        before = store.quality_window()
    with OutcomeStore(tmp_path / "o.db") as store:
        after = store.quality_window()
    assert len(after) == 4 and after.time.tolist() == before.time.tolist()


def test_window_max_age_leaves_old_pairs_out_and_sweep_deletes_them(tmp_path: Path) -> None:
    clock = FakeClock(T0 + 1000)
    with OutcomeStore(tmp_path / "o.db", window_max_age=600, clock=clock) as store:
        store.add_predictions([pred(1, T0), pred(2, T0 + 500)])
        store.add_outcomes([out(1, T0 + 900), out(2, T0 + 900)])
        assert store.quality_window().time.tolist() == [T0 + 500]
        assert store.stats().window_samples == 2  # still there until sweep
        store.sweep()
        assert store.stats().window_samples == 1
        assert store.stats().outcomes_total == 2


def test_quality_window_of_one_model_version_and_its_probability_matrix(
    store: OutcomeStore,
) -> None:
    store.add_predictions([
        pred(1, T0 + 1, model_version="1", probabilities={"b": 0.3, "a": 0.7}),
        pred(2, T0 + 2, model_version="2", probabilities={"a": 0.6, "b": 0.4}),
        pred(3, T0 + 3, model_version="2", probabilities={"c": 1.0}),
        pred(4, T0 + 4, model_version="2"),
    ])  # fmt: skip
    store.add_outcomes([out(i, T0 + 10) for i in range(1, 5)])
    everything = store.quality_window()
    assert everything.classes == ("a", "b", "c")
    expected = [[0.7, 0.3, None], [0.6, 0.4, None], [None, None, 1.0], [None] * 3]
    got = [[None if math.isnan(v) else v for v in row] for row in everything.probabilities]
    assert got == expected
    v2 = store.quality_window("2")
    assert v2.time.tolist() == [T0 + 2, T0 + 3, T0 + 4]
    assert len(store.quality_window("nope")) == 0
    assert store.quality_window("nope").probabilities.shape == (0, 0)


# --- replays and crashes ------------------------------------------------------------------


def _batches(seed: int) -> list[tuple[list[PredictionRow], list[OutcomeRow]]]:
    """Two files (predictions, outcomes) read in random chunks: every kind of outcome."""
    rng = random.Random(seed)
    preds = [pred(i, T0 + i, source="p", offset=i * 100, predicted=rng.choice("ab"))
             for i in range(400)]  # fmt: skip
    outs = []
    for i in range(600):
        j = rng.randrange(450)  # some unknown, some twice
        delay = rng.choice([1, 30, 5000])  # some expired (max_delay 3600)
        outs.append(out(j, T0 + j + delay, rng.choice("ab"), source="o", offset=i * 100))
    batches = []
    while preds or outs:
        a, b = rng.randint(0, 60), rng.randint(0, 60)
        batches.append((preds[:a], outs[:b]))
        preds, outs = preds[a:], outs[b:]
    return batches


def test_replayed_lines_change_nothing(tmp_path: Path, clock: FakeClock) -> None:
    batches = _batches(seed=1)
    path = tmp_path / "o.db"
    with OutcomeStore(path, max_delay=3600, clock=clock) as store:
        for p, o in batches[:10]:
            store.apply(p, o)
        stats_before = store.stats()
        # "crash": no checkpoint was written, so the follower reads it all again
    tables_before = dump(path)
    with OutcomeStore(path, max_delay=3600, clock=clock) as store:
        replayed = 0
        for p, o in batches[:10]:
            result = store.apply(p, o)
            assert result.applied == 0
            replayed += result.replayed
        assert replayed == sum(len(p) + len(o) for p, o in batches[:10])
        assert store.stats() == stats_before
    assert dump(path) == tables_before
    # the same lines in other chunks: still all replays
    with OutcomeStore(path, max_delay=3600, clock=clock) as store:
        lines_p = [r for p, _ in batches[:10] for r in p]
        lines_o = [r for _, o in batches[:10] for r in o]
        assert store.apply(lines_p[::-1], lines_o).applied == 0
        assert store.stats() == stats_before


def test_left_out_probabilities_are_counted_once_replays_included(tmp_path: Path) -> None:
    from exporter.outcomes import KeyedBlock, prediction_record

    path = tmp_path / "o.db"
    rows = [
        pred(i, T0, source="p", offset=i * 10, probability_dropped=i in (1, 3)) for i in range(5)
    ]
    with OutcomeStore(path) as store:
        store.apply(rows[:2])  # the row path: the flag of each fresh row
        assert store.stats().predictions_probability_dropped == 1
        store.apply(rows)  # 0 and 1 are replays: only 3 is new
        assert store.stats().predictions_probability_dropped == 2
        block = KeyedBlock(  # the ingest loop's path: the offsets flagged, by bisection
            "q",
            [0, 10, 20],
            [prediction_record(pred(f"q{i}")) for i in range(3)],
            [],
            [],
            dropped_offsets=[10, 20],
        )
        store.apply_blocks([block])
        assert store.stats().predictions_probability_dropped == 4
        store.apply_blocks([block])  # read again after a crash: nothing changes
        straddling = KeyedBlock(
            "q",
            [20, 30],
            [prediction_record(pred(f"q{i}")) for i in (2, 3)],
            [],
            [],
            dropped_offsets=[20, 30],
        )
        store.apply_blocks([straddling])  # 20 applied before, 30 new
        assert store.stats().predictions_probability_dropped == 5
        assert store.stats().predictions_total == 9
    # a store made before the counter existed: it starts at 0 there and counts on
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM counters WHERE name = 'predictions_probability_dropped'")
    with OutcomeStore(path) as store:
        assert store.stats().predictions_probability_dropped == 0
        store.apply([pred("new", T0, source="p", offset=1000, probability_dropped=True)])
        assert store.stats().predictions_probability_dropped == 1


def test_a_line_repeated_inside_one_batch_is_applied_once(store: OutcomeStore) -> None:
    row = pred(1, T0, source="p", offset=0)
    outcome = out(1, T0 + 1, source="o", offset=0)
    result = store.apply([row, row], [outcome, outcome, replace(outcome, actual="other")])
    assert (result.applied, result.replayed) == (2, 3)
    assert store.stats().unmatched["duplicate"] == 0


def test_prune_lines_forgets_only_the_sources_the_checkpoint_no_longer_lists(
    tmp_path: Path,
) -> None:
    path = tmp_path / "o.db"
    with OutcomeStore(path) as store:
        store.add_predictions([pred(i, T0, source="a", offset=i * 10) for i in range(10)])
        store.add_predictions([pred(f"b{i}", T0, source="b", offset=i * 10) for i in range(5)])
        # the checkpoint covers a up to offset 50 (lines 0..40) and no longer lists b
        assert store.prune_lines({"a": 50}) == 1
        # the lines a re-read after a crash would start at 50: still recognised
        again = [pred(i, T0, source="a", offset=i * 10) for i in range(5, 10)]
        assert store.add_predictions(again).replayed == 5
        with sqlite3.connect(path) as db:  # one row per source, whatever the lines
            assert db.execute("SELECT name, high FROM sources").fetchall() == [("a", 90)]
        assert store.prune_lines({"a": 100}) == 0
        assert store.sources() == ("a",)
        assert store.stats().predictions_total == 15


def test_a_source_goes_on_above_its_high_water_offset(store: OutcomeStore) -> None:
    store.add_predictions([pred(i, T0, source="a", offset=i * 10) for i in range(5)])
    # a batch straddling the mark: the lines at or below it are replays, the rest applied
    result = store.add_predictions([pred(i, T0, source="a", offset=i * 10) for i in range(3, 8)])
    assert (result.applied, result.replayed) == (3, 2)
    assert store.stats().predictions_total == 8 and store.stats().predictions_duplicate == 0


def test_a_version_1_store_is_migrated_to_high_water_offsets(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with OutcomeStore(path) as store:
        store.add_predictions([pred(i, T0, source="a", offset=i * 10) for i in range(5)])
    with sqlite3.connect(path) as db:  # what schema 1 held instead: one row per line
        db.execute("ALTER TABLE sources DROP COLUMN high")
        db.execute("CREATE TABLE lines (source INTEGER NOT NULL, line_offset INTEGER NOT NULL,"
                   " PRIMARY KEY (source, line_offset)) WITHOUT ROWID")  # fmt: skip
        db.execute("INSERT INTO lines SELECT id, 30 FROM sources")
        db.execute("INSERT INTO lines SELECT id, 40 FROM sources")
        db.execute("PRAGMA user_version = 1")
    with OutcomeStore(path) as store:
        result = store.add_predictions([pred(i, T0, source="a", offset=i * 10) for i in range(6)])
        assert (result.applied, result.replayed) == (1, 5)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (2,)
        assert db.execute("SELECT name FROM sqlite_schema WHERE name = 'lines'").fetchall() == []


def test_a_failed_batch_is_rolled_back_whole(store: OutcomeStore) -> None:
    store.add_predictions([pred(1, T0)])
    before = store.stats()
    bad = pred(2, T0, source="new-file", model_version=object())  # cannot be stored
    with pytest.raises(OutcomeStoreError, match=r"outcome store .*write failed"):
        store.apply([pred(3, T0, source="new-file"), bad], [out(1, T0 + 1)])
    assert store.stats() == before  # neither the join nor the first prediction happened
    # and the store goes on (the new source's id, cached in the failed batch, is not reused)
    assert store.apply([pred(3, T0, source="new-file", offset=1)], [out(1, T0 + 1)]).joined == 1
    assert store.add_predictions([pred(3, T0, source="new-file", offset=1)]).replayed == 1


_CHILD = r"""
import json, os, random, sys
sys.path.insert(0, {root!r})
from tests.test_outcomes import _crash_workload
from exporter.outcomes import OutcomeStore

store_path, state_path = sys.argv[1], sys.argv[2]
seed, round_no = int(sys.argv[3]), int(sys.argv[4])
preds, outs = _crash_workload(seed)
try:
    with open(state_path) as fh:
        state = json.load(fh)
except FileNotFoundError:
    state = {{"p": 0, "o": 0}}
rng = random.Random(seed * 1000 + round_no)  # other chunks each round
store = OutcomeStore(store_path, max_delay=3000.0, early_grace=1e6, window_max_samples=500)
# resume where the checkpoint says: lines after it are read (and applied) again
pi, oi = state["p"] // 100, state["o"] // 100
print("ready", flush=True)
steps = 0
while pi < len(preds) or oi < len(outs):
    a, b = rng.randint(0, 40), rng.randint(0, 60)
    result = store.apply(preds[pi:pi + a], outs[oi:oi + b])
    if result.replayed:  # lines after the checkpoint, applied before the kill
        print("replayed", result.replayed, flush=True)
    pi, oi = min(pi + a, len(preds)), min(oi + b, len(outs))
    steps += 1
    if steps % 3 == 0 or (pi, oi) == (len(preds), len(outs)):
        # the follower's checkpoint: atomic, fsynced, written after the store committed
        committed = {{"p": pi * 100, "o": oi * 100}}
        tmp = state_path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(committed, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, state_path)
        store.prune_lines(committed)
store.close()
print("done", flush=True)
"""


N_CRASH = 20_000


def _crash_workload(seed: int) -> tuple[list[PredictionRow], list[OutcomeRow]]:
    """Predictions and outcomes (two files) whose every count is known in advance.

    Request ``r<i>``, predicted at ``T0 + i``, gets by ``i % 10``: 0 one outcome and later a
    duplicate; 1-5 one outcome; 6 an outcome after max_delay (3000 s); 7 an invalid one;
    8-9 none.  Plus outcomes for unknown ids and without a request id.  Outcomes are in
    time order, so the outcome file often runs ahead of the predictions: early outcomes.
    Integer times and delays: sums are exact whatever the chunking.
    """
    rng = random.Random(seed)
    n = N_CRASH
    preds = [
        PredictionRow(request_id=f"r{i}", time=T0 + i, source="p", offset=i * 100,
                      predicted=rng.choice("abc"))
        for i in range(n)
    ]  # fmt: skip
    items: list[tuple[float, str | None, str | None, bool]] = []
    for i in range(n):
        kind = i % 10
        if kind <= 5:
            items.append((T0 + i + 1 + i % 50, f"r{i}", "abc"[i % 3], False))
        if kind == 0:
            items.append((T0 + i + 60 + i % 50, f"r{i}", "z", False))
        if kind == 6:
            items.append((T0 + i + 3001 + i % 7, f"r{i}", "a", False))
        if kind == 7:
            items.append((T0 + i + 2, f"r{i}", "a", True))
    for j in range(150):
        items.append((T0 + 20 * j, f"unknown{j}", "a", False))
        items.append((T0 + 20 * j + 1, None, "a", False))
    items.sort(key=lambda item: item[0])
    outs = [
        OutcomeRow(request_id=rid, time=t, actual=actual, source="o", offset=k * 100,
                   invalid=invalid)
        for k, (t, rid, actual, invalid) in enumerate(items)
    ]  # fmt: skip
    return preds, outs


@pytest.mark.slow  # ~10-20 s: a child process killed a dozen times
def test_sigkill_at_random_moments_loses_no_prediction_and_joins_none_twice(
    tmp_path: Path,
) -> None:
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    store_path, state_path = tmp_path / "o.db", tmp_path / "positions.json"
    child = _CHILD.format(root=str(REPO_ROOT))
    kills = replayed = 0
    for round_no in range(40):
        proc = subprocess.Popen(
            [sys.executable, "-c", child, str(store_path), str(state_path), str(seed),
             str(round_no)],
            stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT,
        )  # fmt: skip
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready", f"child failed (seed {seed})"
        if round_no < 15:
            time.sleep(rng.uniform(0.02, 0.25))
            proc.send_signal(signal.SIGKILL)
        # read on through the same file object: readline() may have buffered the rest
        # already, which communicate(timeout=...) would miss (it reads the raw pipe)
        output = proc.stdout.read()
        proc.wait(timeout=120)
        replayed += sum(int(line.split()[1]) for line in output.splitlines() if "replayed" in line)
        if proc.returncode == -signal.SIGKILL:
            kills += 1
            continue
        assert proc.returncode == 0 and output.endswith("done\n"), (proc.returncode, seed)
        break
    else:
        pytest.fail(f"the writer never finished (seed {seed})")
    assert kills >= 3, f"only {kills} kills landed before the writer finished (seed {seed})"
    # a kill between a commit and its checkpoint: the restarted writer applied those lines
    # again, and the store skipped them (else the counts below would be off)
    assert replayed > 0, f"no kill landed between a commit and its checkpoint (seed {seed})"

    preds, outs = _crash_workload(seed)
    with OutcomeStore(store_path, max_delay=3000.0, early_grace=1e6, window_max_samples=500) as s:
        stats = s.stats()
        # every count as designed: r<i> by i % 10 (see _crash_workload)
        n, tenth = N_CRASH, N_CRASH // 10
        joined = [i for i in range(n) if i % 10 <= 5]
        assert stats.predictions_total == n
        assert stats.outcomes_total == len(joined) == 6 * tenth
        assert stats.unmatched["duplicate"] == tenth
        assert stats.unmatched["expired"] == stats.predictions_expired == tenth
        assert stats.unmatched["invalid"] == tenth + 150  # flagged + no request id
        assert stats.held == 150  # the unknown ids, waiting; every early outcome was joined
        assert stats.pending == 3 * tenth
        assert pending_ids(store_path) == {f"r{i}" for i in range(n) if i % 10 >= 7}
        assert stats.delay_sum == sum(1 + i % 50 for i in joined)
        classes = {r.request_id: r.predicted for r in preds}
        expected_pairs = Counter((classes[f"r{i}"], "abc"[i % 3]) for i in joined)
        assert dict(stats.confusion) == dict(expected_pairs)
        window = s.quality_window()
        assert len(window) == 500 and window.time.tolist() == [T0 + i for i in joined[-500:]]
        s.sweep(now=time.time() + 2e6)  # past the grace: the unknown ones are counted
        stats = s.stats()
        assert stats.unmatched["unknown_request"] == 150 and stats.held == 0
        assert_conservation(stats)
    # the same lines applied once, without a crash, give the same store
    reference = tmp_path / "reference.db"
    with OutcomeStore(reference, max_delay=3000.0, early_grace=1e6, window_max_samples=500) as r:
        r.apply(preds, outs)
        r.sweep(now=time.time() + 2e6)
        assert r.stats() == stats
    assert dump(reference) == dump(store_path)


# --- memory -------------------------------------------------------------------------------

_RSS_CHILD = r"""
import os, resource, sys
sys.path.insert(0, {root!r})
from exporter.outcomes import OutcomeStore, PredictionRow

def rss_mb():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20

n, batch = int(sys.argv[2]), 10_000
store = OutcomeStore(sys.argv[1], max_pending=n)
marks = []
for start in range(0, n, batch):
    rows = [
        PredictionRow(request_id=os.urandom(16).hex(), time=1.7e9 + start + i, source="p",
                      offset=(start + i) * 200, predicted="churn", probability=0.7,
                      probabilities={{"churn": 0.7, "stay": 0.3}}, model_version="1.0.0")
        for i in range(batch)
    ]
    store.add_predictions(rows)
    del rows
    if start + batch in (n // 10, n):
        marks.append(rss_mb())
print(store.stats().pending, *marks)
"""


@pytest.mark.slow  # ~20 s: a million predictions
def test_a_million_pending_predictions_keep_memory_flat(tmp_path: Path) -> None:
    n = 1_000_000
    proc = subprocess.run(
        [sys.executable, "-c", _RSS_CHILD.format(root=str(REPO_ROOT)),
         str(tmp_path / "o.db"), str(n)],
        capture_output=True, text=True, timeout=300, check=False, cwd=REPO_ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    pending, at_tenth, at_end = proc.stdout.split()
    assert int(pending) == n
    # from 100k to 1M pending predictions the store's memory may not grow (the page cache
    # is bounded at 16 MiB, the rows are on disk); the file grew by ~140 MB meanwhile
    growth = float(at_end) - float(at_tenth)
    assert growth < 30, f"RSS grew {growth:.1f} MB from {n // 10:,} to {n:,} pending"
    assert (tmp_path / "o.db").stat().st_size > 100 * 2**20  # they really are in the file


# --- readers and writers ------------------------------------------------------------------


def test_a_reader_thread_sees_whole_batches_while_the_writer_applies(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    store = OutcomeStore(path)
    stop = threading.Event()
    seen: list[OutcomeStats] = []
    errors: list[BaseException] = []

    def read() -> None:
        try:
            while not stop.is_set():
                seen.append(store.stats())
                store.quality_window()
        except BaseException as exc:  # pragma: no cover - the assertion reports it
            errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for k in range(100):
            # each batch: 10 predictions and outcomes joining 10 of them
            store.apply(
                [pred(f"{k}-{i}", T0 + k) for i in range(10)],
                [out(f"{k}-{i}", T0 + k + 1) for i in range(10)],
            )
    finally:
        stop.set()
        reader.join()
    assert not errors, errors
    assert len(seen) > 1
    for stats in seen:  # a reader never sees half a batch
        assert stats.predictions_total % 10 == 0
        assert stats.outcomes_total == stats.predictions_total
        assert_conservation(stats)
    store.close()


def test_pragmas_wal_and_synchronous_full(store: OutcomeStore) -> None:
    assert store._db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert store._db.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL


def test_random_batches_keep_the_invariants(tmp_path: Path, clock: FakeClock) -> None:
    with OutcomeStore(tmp_path / "o.db", max_delay=3600, max_pending=150, clock=clock) as s:
        for k, (p, o) in enumerate(_batches(seed=7)):
            s.apply(p, o)
            if k % 5 == 0:
                clock.now += 200
                s.sweep()
            stats = s.stats()
            assert_conservation(stats)
            assert stats.pending <= 150
            assert stats.pending == len(pending_ids(tmp_path / "o.db"))
        lines = sum(len(o) for _, o in _batches(seed=7))
        assert stats.outcomes_total + sum(stats.unmatched.values()) + stats.held == lines


# --- the file -----------------------------------------------------------------------------


def _assert_one_line_error(exc: OutcomeStoreError, path: Path, words: str) -> None:
    message = str(exc)
    assert isinstance(exc, MlopsError) and isinstance(exc, OSError)
    assert "\n" not in message and str(path) in message and words in message, message


def test_a_store_in_a_missing_directory_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "outcomes.db"
    with pytest.raises(OutcomeStoreError) as info:
        OutcomeStore(path)
    _assert_one_line_error(info.value, path, "does not exist")


def test_a_file_that_is_not_a_database_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "outcomes.db"
    path.write_bytes(b"this is a log file, not a database\n" * 200)
    with pytest.raises(OutcomeStoreError) as info:
        OutcomeStore(path)
    _assert_one_line_error(info.value, path, "not an SQLite database")


def test_another_sqlite_database_is_not_taken_for_a_store(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE users (name TEXT)")
    with pytest.raises(OutcomeStoreError) as info:
        OutcomeStore(path)
    _assert_one_line_error(info.value, path, "not an outcome store")
    with sqlite3.connect(path) as db:  # and it was left alone
        assert db.execute("SELECT name FROM sqlite_schema").fetchall() == [("users",)]


def test_a_store_with_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "outcomes.db"
    OutcomeStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(OutcomeStoreError) as info:
        OutcomeStore(path)
    _assert_one_line_error(info.value, path, "schema version 99")


def test_a_store_path_that_is_a_directory_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(OutcomeStoreError) as info:
        OutcomeStore(tmp_path)
    _assert_one_line_error(info.value, tmp_path, "is a directory")


def test_a_second_writer_of_one_store_is_refused_naming_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "outcomes.db"
    with OutcomeStore(path) as first:
        first.add_predictions([pred(1)])
        with pytest.raises(OutcomeStoreError) as info:
            OutcomeStore(path)  # another open of the file, as a second exporter would
        _assert_one_line_error(info.value, path, f"is in use by process {os.getpid()}")
        assert str(first.lock_path) in str(info.value)
        assert first.add_predictions([pred(2)]).applied == 1  # the first one goes on
    with OutcomeStore(path) as again:  # closed: free
        assert again.stats().predictions_total == 2


_HOLDER = """
import time
from exporter.outcomes import OutcomeStore
store = OutcomeStore(sys.argv[1])
print("ready", flush=True)
time.sleep(120)
"""


def test_a_killed_writer_leaves_no_stale_lock(tmp_path: Path) -> None:
    path = tmp_path / "outcomes.db"
    with holding_process(_HOLDER, str(path)) as proc:
        with pytest.raises(OutcomeStoreError) as info:
            OutcomeStore(path)
        _assert_one_line_error(info.value, path, f"is in use by process {proc.pid}")
    with OutcomeStore(path) as store:  # the kernel dropped the dead holder's lock
        assert store.stats().predictions_total == 0


def test_the_store_reopens_with_every_counter_kept(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "o.db"
    with OutcomeStore(path, max_delay=3600, clock=clock) as store:
        for p, o in _batches(seed=3):
            store.apply(p, o)
        before = store.stats()
    with OutcomeStore(path, max_delay=3600, clock=clock) as store:
        assert store.stats() == before
    assert before.outcomes_total > 0 and before.unmatched["duplicate"] > 0
    assert before.unmatched["expired"] > 0 and before.held > 0


def test_a_store_file_deleted_or_replaced_while_open_is_said_and_not_recreated(
    tmp_path: Path,
) -> None:
    path = tmp_path / "o.db"
    with OutcomeStore(path) as store:
        assert store.created
        store.add_predictions([pred(1)])
        store.check_file()  # the file it opened: nothing to say
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        with pytest.raises(OutcomeStoreError, match="was deleted while the exporter runs"):
            store.check_file()
        # a reader opened now (a new thread) must not create an empty database there
        errors: list[BaseException] = []
        reader = threading.Thread(target=lambda: _catch(errors, store.stats))
        reader.start()
        reader.join()
        assert len(errors) == 1 and isinstance(errors[0], OutcomeStoreError)
        assert not path.exists()
        path.write_bytes(b"")  # another file at the path
        with pytest.raises(OutcomeStoreError, match="was replaced by another file"):
            store.check_file()
    with OutcomeStore(tmp_path / "again.db") as store:
        store.add_predictions([pred(1)])
    with OutcomeStore(tmp_path / "again.db") as store:
        assert not store.created


def _catch(errors: list[BaseException], call: Any) -> None:
    try:
        call()
    except BaseException as exc:  # handed to the test thread
        errors.append(exc)


def test_a_store_made_before_json_boolean_labels_is_relabelled_once(tmp_path: Path) -> None:
    # pending predictions labelled "True" never matched their outcomes "true" after the
    # upgrade: the accuracy fell for up to max_delay
    path = tmp_path / "o.db"
    with OutcomeStore(path) as store:
        store.add_predictions([pred(1, T0, predicted="True"), pred(2, T0, predicted="False"),
                               pred(3, T0, predicted="True")])  # fmt: skip
        store.add_outcomes([out(3, T0 + 1, "True")])
    with sqlite3.connect(path) as db:  # as the previous release left it
        db.execute("DELETE FROM counters WHERE name = '_json_boolean_labels'")
        db.execute("INSERT INTO confusion VALUES ('true', 'true', 2)")  # a clash to merge
    with OutcomeStore(path) as store:
        store.add_outcomes([out(1, T0 + 1, "true"), out(2, T0 + 1, "true")])
        stats = store.stats()
        assert dict(stats.confusion) == {("true", "true"): 4, ("false", "true"): 1}
        window = store.quality_window()
        assert sorted(window.predicted.tolist()) == ["false", "true", "true"]
    with sqlite3.connect(path) as db:  # once: a later "True" string class is left alone
        assert db.execute("SELECT name FROM classes ORDER BY name").fetchall() == [
            ("false",),
            ("true",),
        ]
    with OutcomeStore(path) as store:
        store.add_predictions([pred(4, T0, predicted="True")])
        store.add_outcomes([out(4, T0 + 1, "True")])
        assert store.stats().confusion[("True", "True")] == 1
