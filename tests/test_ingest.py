"""Ingestor + IngestCounters: real log files through follower, parser, window and counters."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from exporter.ingest import (
    DEFAULT_LATENCY_BUCKETS,
    IngestCounters,
    Ingestor,
    counts_per_bucket,
)
from exporter.records import RecordParser
from exporter.tail import LogFollower
from exporter.window import Window
from mlops_core.errors import ConfigError
from mlops_core.profile import ReferenceProfile

FEATURES = {"age": "numeric", "score": "numeric", "plan": "categorical"}
PLANS = np.array(["free", "basic", "pro", "team"])


@pytest.fixture(scope="module")
def profile() -> ReferenceProfile:
    rng = np.random.default_rng(0)
    return ReferenceProfile.from_data(
        {
            "age": rng.normal(40, 10, 2000),
            "score": rng.random(2000),
            "plan": rng.choice(PLANS[:3], 2000),  # "team" is unseen: it lands in __other__
        }
    )


def records(n: int, seed: int = 1) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    now = time.time()
    out = []
    for i in range(n):
        inputs: dict[str, Any] = {
            "age": round(float(rng.normal(45, 12)), 3),
            "score": round(float(rng.random()), 4),
            "plan": str(rng.choice(PLANS)),
        }
        if i % 7 == 0:
            del inputs["score"]  # a missing feature: still a prediction
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now - (n - i) * 0.01))
        out.append(
            {
                "timestamp": stamp + ".000000Z",
                "event": "prediction",
                "input_data": inputs,
                "prediction": {"class": int(rng.integers(0, 3))},
                "latency_ms": round(float(rng.lognormal(3, 1)), 3),
            }
        )
    return out


def write(path: Path, lines: list[bytes]) -> None:
    with open(path, "ab") as handle:
        handle.write(b"".join(line + b"\n" for line in lines))


def dumps(recs: list[dict[str, Any]]) -> list[bytes]:
    return [json.dumps(r).encode() for r in recs]


def pipeline(
    profile: ReferenceProfile, pattern: str, state: Path | None = None, **counter_kw: Any
) -> tuple[Ingestor, IngestCounters, Window, LogFollower]:
    follower = LogFollower(
        [pattern],
        start_position="beginning",
        state_file=str(state) if state else None,
        max_line_bytes=4096,
    )
    window = Window(profile, list(FEATURES), max_samples=500)
    counters = IngestCounters(profile, list(FEATURES), **counter_kw)
    return Ingestor(follower, RecordParser(FEATURES), window, counters), counters, window, follower


def run_until_caught_up(ingestor: Ingestor) -> int:
    total = 0
    for _ in range(100):
        got = ingestor.run_once()
        total += got
        if got == 0 and ingestor.follower.caught_up:
            return total
    raise AssertionError("never caught up")


def test_counters_match_what_was_written(profile: ReferenceProfile, tmp_path: Path) -> None:
    log = tmp_path / "model.jsonl"
    recs = records(1200)
    other = [json.dumps({"event": "startup"}).encode()] * 5
    bad = [b"{broken", b"[1]", json.dumps({"event": "prediction"}).encode(), b"x" * 5000]
    write(log, dumps(recs[:600]) + other + bad + dumps(recs[600:]))
    ingestor, counters, window, follower = pipeline(profile, str(log))
    assert run_until_caught_up(ingestor) == 1200 + 5 + 3  # the over-long line never reaches it
    snap = counters.snapshot()

    assert snap.lines_total == 1200 + 5 + 4
    assert snap.predictions_total == 1200
    assert snap.other_events_total == 5
    assert {k: v for k, v in snap.invalid_total.items() if v} == {
        "invalid_json": 1,
        "not_an_object": 1,
        "missing_field": 1,
        "too_long": 1,
    }
    assert set(snap.invalid_total) >= {"encoding", "wrong_type", "non_finite"}  # exist at 0
    assert snap.bytes_read == log.stat().st_size
    assert snap.lines_too_long == 1
    assert snap.files_watched == 1

    classes = [str(r["prediction"]["class"]) for r in recs]
    assert dict(snap.class_counts) == {c: classes.count(c) for c in set(classes)}

    latency = np.array([r["latency_ms"] for r in recs]) / 1000
    bounds = np.array(DEFAULT_LATENCY_BUCKETS)
    expected_cumulative = [int((latency <= b).sum()) for b in bounds] + [len(latency)]
    assert snap.latency_bucket_counts.tolist() == expected_cumulative
    assert snap.latency_count == 1200
    assert snap.latency_sum == pytest.approx(latency.sum())

    for name in FEATURES:
        values = [r["input_data"][name] for r in recs if name in r["input_data"]]
        arr = np.array(values, dtype=float if FEATURES[name] == "numeric" else object)
        expected = np.bincount(
            profile[name].bucketize(arr), minlength=len(profile[name].bucket_labels)
        )
        assert snap.bucket_observations[name].tolist() == expected.tolist(), name
        assert snap.bucket_labels[name] == tuple(profile[name].bucket_labels)
    team = snap.bucket_labels["plan"].index("__unseen__")  # the reference never had "team"
    assert snap.bucket_observations["plan"][team] == sum(
        1 for r in recs if r["input_data"]["plan"] == "team"
    )

    window_snap = window.snapshot()
    assert window_snap.samples() == 500
    assert window_snap.values("age").tolist() == [r["input_data"]["age"] for r in recs[-500:]]
    missing = sum(1 for r in recs[-500:] if "score" not in r["input_data"]) / 500
    assert window_snap.missing_ratio("score") == pytest.approx(missing)
    follower.close()


def test_small_read_blocks_give_the_same_counts(
    profile: ReferenceProfile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many blocks per poll (merged before window and counters) = one block per poll."""
    import exporter.tail

    log = tmp_path / "model.jsonl"
    write(log, [*dumps(records(800)), b"{bad", json.dumps({"event": "other"}).encode()])
    snapshots = []
    for chunk in (1 << 20, 3000):
        monkeypatch.setattr(exporter.tail, "READ_CHUNK", chunk)
        ingestor, counters, window, follower = pipeline(profile, str(log))
        run_until_caught_up(ingestor)
        snapshots.append((counters.snapshot(), window.snapshot()))
        follower.close()
    (big, big_window), (small, small_window) = snapshots
    assert small.lines_total == big.lines_total == 802
    assert dict(small.invalid_total) == dict(big.invalid_total)
    assert dict(small.class_counts) == dict(big.class_counts)
    assert small.latency_bucket_counts.tolist() == big.latency_bucket_counts.tolist()
    for name in FEATURES:
        assert small.bucket_observations[name].tolist() == big.bucket_observations[name].tolist()
        assert small_window.values(name).tolist() == big_window.values(name).tolist()
    assert small_window.timestamps.tolist() == big_window.timestamps.tolist()


def test_counters_only_grow_and_snapshots_are_frozen(
    profile: ReferenceProfile, tmp_path: Path
) -> None:
    log = tmp_path / "model.jsonl"
    ingestor, counters, _, follower = pipeline(profile, str(log))
    write(log, dumps(records(50)))
    run_until_caught_up(ingestor)
    first = counters.snapshot()
    write(log, dumps(records(30, seed=2)))
    run_until_caught_up(ingestor)
    second = counters.snapshot()
    assert first.predictions_total == 50 and second.predictions_total == 80
    assert np.all(second.latency_bucket_counts >= first.latency_bucket_counts)
    for name in FEATURES:
        assert np.all(second.bucket_observations[name] >= first.bucket_observations[name])
    with pytest.raises(ValueError):
        first.latency_bucket_counts[0] = 0
    with pytest.raises(ValueError):
        first.bucket_observations["age"][0] = 0
    with pytest.raises(TypeError):
        first.invalid_total["invalid_json"] = 5  # type: ignore[index]
    assert first.predictions_total == 50
    follower.close()


def test_class_labels_are_bounded_and_never_change(
    profile: ReferenceProfile, tmp_path: Path
) -> None:
    log = tmp_path / "model.jsonl"
    ingestor, counters, _, follower = pipeline(profile, str(log), max_classes=2)

    def preds(*classes: str) -> list[bytes]:
        return [
            json.dumps({"event": "prediction", "input_data": {}, "prediction": c}).encode()
            for c in classes
        ]

    write(log, preds("a", "b", "a"))
    run_until_caught_up(ingestor)
    write(log, preds("c", "d", "a", "c"))
    run_until_caught_up(ingestor)
    assert dict(counters.snapshot().class_counts) == {"a": 3, "b": 1, "__other__": 3}
    follower.close()


def test_restart_with_checkpoint_counts_every_line_once(
    profile: ReferenceProfile, tmp_path: Path
) -> None:
    log = tmp_path / "model.jsonl"
    state = tmp_path / "positions.json"
    lines = dumps(records(300))
    write(log, lines[:100])
    ingestor, counters, _, follower = pipeline(profile, str(log), state)
    run_until_caught_up(ingestor)
    with open(log, "ab") as handle:  # a line cut in half at the moment of the checkpoint
        handle.write(b"\n".join(lines[100:150]) + b"\n" + lines[150][:20])
    run_until_caught_up(ingestor)
    follower.save_positions()
    follower.close()
    first = counters.snapshot().predictions_total
    with open(log, "ab") as handle:
        handle.write(lines[150][20:] + b"\n" + b"".join(x + b"\n" for x in lines[151:]))
    ingestor2, counters2, _, follower2 = pipeline(profile, str(log), state)
    run_until_caught_up(ingestor2)
    second = counters2.snapshot()
    assert first == 150
    assert first + second.predictions_total == 300
    assert second.invalid_total["invalid_json"] == 0  # the cut line was read whole
    follower2.close()


def test_garbage_file_never_raises(profile: ReferenceProfile, tmp_path: Path) -> None:
    log = tmp_path / "model.jsonl"
    log.write_bytes(np.random.default_rng(5).bytes(3_000_000))  # several read blocks
    ingestor, counters, _, follower = pipeline(profile, str(log))
    run_until_caught_up(ingestor)
    snap = counters.snapshot()
    assert snap.predictions_total == 0
    assert snap.lines_total == sum(snap.invalid_total.values()) + snap.other_events_total
    assert snap.lines_total > 100
    assert snap.bytes_read == log.stat().st_size
    follower.close()


def test_rotation_and_truncation_reach_the_counters(
    profile: ReferenceProfile, tmp_path: Path
) -> None:
    log = tmp_path / "model.jsonl"
    ingestor, counters, _, follower = pipeline(profile, str(tmp_path / "*.jsonl"))
    write(log, dumps(records(10)))
    run_until_caught_up(ingestor)
    os.rename(log, tmp_path / "model.jsonl.1")
    write(log, dumps(records(5)))
    run_until_caught_up(ingestor)
    os.truncate(log, 0)
    write(log, dumps(records(2)))
    run_until_caught_up(ingestor)
    snap = counters.snapshot()
    assert (snap.rotations, snap.truncations, snap.predictions_total) == (1, 1, 17)
    follower.close()


def test_counts_per_bucket_equals_searchsorted_bincount() -> None:
    rng = np.random.default_rng(2)
    bounds = np.array([0.1, 0.5, 1.0, 2.0])
    values = np.concatenate([rng.random(1000) * 3, bounds, bounds + 1e-12])  # ties at bounds
    expected = np.bincount(np.searchsorted(bounds, values, side="left"), minlength=5)
    assert counts_per_bucket(values, bounds).tolist() == expected.tolist()
    assert counts_per_bucket(np.empty(0), bounds).tolist() == [0] * 5


@pytest.mark.parametrize("buckets", [(), (0.5, 0.1), (0.0, 1.0), (0.1, float("inf"))])
def test_bad_latency_buckets_are_config_errors(
    profile: ReferenceProfile, buckets: tuple[float, ...]
) -> None:
    with pytest.raises(ConfigError, match=r"latency\.buckets"):
        IngestCounters(profile, ["age"], latency_buckets=buckets)


def test_feature_not_in_profile_is_a_config_error(profile: ReferenceProfile) -> None:
    with pytest.raises(ConfigError, match="'height'"):
        IngestCounters(profile, ["height"])
