"""Window: fixed-size ring buffers per feature, evicting by count and by age, consistent copies."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from exporter.errors import ConfigError
from exporter.records import ParsedBatch
from exporter.window import Window
from mlops_core.profile import ReferenceProfile

NOW = 1_800_000_000.0


@pytest.fixture(scope="module")
def profile() -> ReferenceProfile:
    rng = np.random.default_rng(0)
    return ReferenceProfile.from_data(
        {
            "age": rng.normal(40, 10, 500),
            "score": rng.random(500),
            "plan": rng.choice(np.array(["free", "pro", "team"]), 500),
        }
    )


FEATURES = ["age", "score", "plan"]


def batch(
    ids: np.ndarray | list[float],
    *,
    ts: float | np.ndarray = NOW,
    plan: list[str | None] | None = None,
    latency: np.ndarray | None = None,
) -> ParsedBatch:
    """A batch whose row i has age = score = ids[i], so rows can be recognised."""
    ids = np.asarray(ids, dtype=np.float64)
    n = len(ids)
    plans = np.array(plan if plan is not None else [f"p{int(i)}" for i in ids], dtype=object)
    return ParsedBatch(
        n_lines=n,
        n_predictions=n,
        timestamps=np.broadcast_to(np.asarray(ts, dtype=np.float64), (n,)).copy(),
        latency_seconds=ids / 1000 if latency is None else latency,
        features={"age": ids.copy(), "score": ids.copy(), "plan": plans},
        classes=[None] * n,
    )


def make(profile: ReferenceProfile, clock: list[float] | None = None, **kw: object) -> Window:
    now = clock if clock is not None else [NOW]
    return Window(profile, FEATURES, clock=lambda: now[0], **kw)  # type: ignore[arg-type]


def present(window: Window, feature: str = "age") -> list[float]:
    """The present values of ``feature`` in a snapshot taken now (by the window's clock)."""
    return window.snapshot().values(feature).tolist()


def test_count_eviction_keeps_the_newest_max_samples(profile: ReferenceProfile) -> None:
    window = make(profile, max_samples=5)
    window.add(batch([1, 2, 3]))
    window.add(batch([4, 5, 6, 7]))
    snap = window.snapshot()
    assert snap.samples() == 5
    assert snap.values("age").tolist() == [3, 4, 5, 6, 7]
    assert snap.values("plan").tolist() == ["p3", "p4", "p5", "p6", "p7"]


def test_batch_larger_than_the_window_keeps_its_tail(profile: ReferenceProfile) -> None:
    window = make(profile, max_samples=4)
    window.add(batch(np.arange(100)))
    assert present(window, "score") == [96, 97, 98, 99]
    window.add(batch([100]))
    assert present(window, "score") == [97, 98, 99, 100]


def test_ring_wraps_around_many_times_oldest_first(profile: ReferenceProfile) -> None:
    window = make(profile, max_samples=7)
    expected: list[float] = []
    rng = np.random.default_rng(1)
    next_id = 0
    for _ in range(50):
        k = int(rng.integers(1, 6))
        ids = list(range(next_id, next_id + k))
        next_id += k
        window.add(batch(ids))
        expected = (expected + ids)[-7:]
        assert present(window) == expected


def test_age_eviction_by_record_timestamp(profile: ReferenceProfile) -> None:
    clock = [NOW]
    window = make(profile, clock, max_samples=100, max_age=60.0)
    window.add(batch([1, 2], ts=NOW - 50))
    window.add(batch([3], ts=NOW - 10))
    clock[0] = NOW + 20  # the first two are now 70 s old
    assert present(window) == [3]
    assert window.snapshot(now=NOW + 100).samples() == 0  # evicted for good, not hidden
    assert window.snapshot().samples() == 0
    window.add(batch([4, 5]))
    assert present(window) == [4, 5]


def test_an_idle_window_empties_as_its_predictions_age(profile: ReferenceProfile) -> None:
    clock = [NOW]
    window = make(profile, clock, max_age=60.0)
    window.add(batch([1, 2]))
    clock[0] = NOW + 61  # no add: the read still sees the age
    snap = window.snapshot()
    assert snap.samples() == 0
    assert snap.values("age").size == 0
    assert snap.latencies().size == 0


def test_out_of_order_timestamps_are_evicted_exactly(profile: ReferenceProfile) -> None:
    window = make(profile, max_samples=10, max_age=60.0)
    window.add(batch([1, 2, 3, 4], ts=np.array([NOW - 10, NOW - 100, NOW - 5, NOW - 90])))
    assert present(window) == [1, 3]


def test_future_timestamps_are_taken_as_now(profile: ReferenceProfile) -> None:
    clock = [NOW]
    window = make(profile, clock, max_age=60.0)
    window.add(batch([1], ts=NOW + 10_000))  # a skewed clock must not pin it in the window
    clock[0] = NOW + 61
    assert window.snapshot().samples() == 0


def test_too_old_counts_predictions_already_too_old_when_added(
    profile: ReferenceProfile,
) -> None:
    # what the predictions_too_old check reads: judged at add, so a window that empties
    # by age once traffic stops (fresh predictions, then nothing for max_age) counts none
    clock = [NOW]
    window = make(profile, clock, max_age=60.0)
    window.add(batch([1, 2]))
    clock[0] = NOW + 3600  # an idle hour
    assert window.samples() == 0
    assert (window.too_old, window.newest_too_old) == (0, None)
    window.add(batch([3, 4, 5], ts=NOW))  # read an hour late: too old already
    window.add(batch([6], ts=NOW + 10))
    assert (window.too_old, window.newest_too_old) == (4, NOW + 10)
    # one fresh prediction in a batch resets it: a late record among live traffic is no
    # "none within max_age"
    window.add(batch([7, 8], ts=np.array([NOW, NOW + 3600])))
    assert (window.too_old, window.newest_too_old) == (0, None)
    assert make(profile, max_age=None).too_old == 0


def test_no_max_age_keeps_old_records(profile: ReferenceProfile) -> None:
    window = make(profile, max_age=None)
    window.add(batch([1], ts=0.0))
    assert window.snapshot().samples() == 1


def test_missing_values_are_left_out_and_counted_in_missing_ratio(
    profile: ReferenceProfile,
) -> None:
    window = make(profile)
    b = batch([1, 2, 3, 4], plan=["pro", None, None, "free"])
    b.features["age"][[0, 2, 3]] = np.nan
    window.add(b)
    snap = window.snapshot()
    assert snap.values("age").tolist() == [2.0]
    assert snap.missing_ratio("age") == 0.75
    assert snap.values("plan").tolist() == ["pro", "free"]
    assert snap.missing_ratio("plan") == 0.5
    assert snap.missing_ratio("score") == 0.0


def test_feature_absent_from_a_batch_is_missing_for_those_rows(profile: ReferenceProfile) -> None:
    window = make(profile)
    b = batch([1, 2])
    del b.features["score"], b.features["plan"]
    window.add(b)
    snap = window.snapshot()
    assert snap.samples() == 2
    assert snap.missing_ratio("score") == 1.0
    assert snap.missing_ratio("plan") == 1.0


def test_latencies_are_finite_seconds_only(profile: ReferenceProfile) -> None:
    window = make(profile)
    window.add(batch([1, 2, 3], latency=np.array([0.01, np.nan, 0.5])))
    assert window.snapshot().latencies().tolist() == [0.01, 0.5]


def test_empty_window_reads(profile: ReferenceProfile) -> None:
    snap = make(profile).snapshot()
    assert snap.samples() == 0
    assert snap.values("age").size == 0
    assert snap.values("plan").size == 0
    assert snap.missing_ratio("age") == 0.0
    assert snap.latencies().size == 0


def test_reads_are_copies(profile: ReferenceProfile) -> None:
    window = make(profile)
    window.add(batch([1, 2]))
    snap = window.snapshot()
    snap.values("age")[:] = 99
    snap.latencies()[:] = 99
    snap.columns["age"][:] = 99
    snap.latency_seconds[:] = 99
    again = window.snapshot()
    assert again.values("age").tolist() == [1, 2]
    assert again.latencies().tolist() == [0.001, 0.002]


def test_bucket_counts_match_the_profile(profile: ReferenceProfile) -> None:
    window = make(profile)
    window.add(batch([10, 40, 70], plan=["pro", "pro", "unseen"]))
    snap = window.snapshot()
    plan_counts = snap.bucket_counts("plan", profile)
    labels = profile["plan"].bucket_labels
    assert plan_counts[labels.index("pro")] == 2
    assert plan_counts[labels.index("__unseen__")] == 1
    age_counts = snap.bucket_counts("age", profile)
    assert age_counts.sum() == 3
    assert age_counts[0] == 1 and age_counts[-1] == 1  # 10 below the lowest edge, 70 above


def test_snapshot_rows_stay_aligned_while_another_thread_adds(profile: ReferenceProfile) -> None:
    """Every row has age == score == plan id; a torn copy would break that."""
    window = make(profile, max_samples=500, max_age=None)
    stop = threading.Event()

    def writer() -> None:
        start = 0
        while not stop.is_set():
            window.add(batch(np.arange(start, start + 37)))
            start += 37

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for _ in range(200):
            snap = window.snapshot()
            age, score = snap.columns["age"], snap.columns["score"]
            plan = snap.columns["plan"]
            assert np.array_equal(age, score)
            assert [f"p{int(a)}" for a in age] == plan.tolist()
            assert np.all(np.diff(age) == 1)  # oldest first, no gap, no duplicate
    finally:
        stop.set()
        thread.join()


def test_feature_not_in_profile_is_a_config_error(profile: ReferenceProfile) -> None:
    with pytest.raises(ConfigError, match="'height'"):
        Window(profile, ["age", "height"])


@pytest.mark.parametrize(
    ("kw", "key"), [({"max_samples": 0}, "max_samples"), ({"max_age": 0}, "max_age")]
)
def test_bad_sizes_are_config_errors(profile: ReferenceProfile, kw: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        Window(profile, ["age"], **kw)


def test_unknown_feature_read_is_a_key_error(profile: ReferenceProfile) -> None:
    with pytest.raises(KeyError, match="height"):
        make(profile).snapshot().values("height")


def test_memory_is_fixed_by_max_samples(profile: ReferenceProfile) -> None:
    window = make(profile, max_samples=1000, max_age=None)
    sizes_before = {n: c.nbytes for n, c in window._cols.items()}
    for start in range(0, 50_000, 5_000):
        window.add(batch(np.arange(start, start + 5_000)))
    assert {n: c.nbytes for n, c in window._cols.items()} == sizes_before
    assert window.snapshot().samples() == 1000
