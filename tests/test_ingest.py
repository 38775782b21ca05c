"""Ingestor + IngestCounters: real log files through follower, parser, window and counters."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from exporter.checkpoint import load_checkpoint
from exporter.ingest import (
    DEFAULT_LATENCY_BUCKETS,
    OTHER_LABEL,
    IngestCounters,
    Ingestor,
    IngestSnapshot,
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
    import exporter.logstream

    log = tmp_path / "model.jsonl"
    write(log, [*dumps(records(800)), b"{bad", json.dumps({"event": "other"}).encode()])
    snapshots = []
    for chunk in (1 << 20, 3000):
        monkeypatch.setattr(exporter.logstream, "READ_CHUNK", chunk)
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


# --- the checkpoint: offsets and counters in one record ----------------------------------


def resumed(
    profile: ReferenceProfile, pattern: str, state: Path, **counter_kw: Any
) -> tuple[Ingestor, IngestCounters, LogFollower]:
    """What a (re)started exporter builds: both halves from the same saved record."""
    saved = load_checkpoint(str(state))
    follower = LogFollower([pattern], start_position="beginning", resume=saved, max_line_bytes=4096)
    counters = IngestCounters(profile, list(FEATURES), **counter_kw)
    if saved is not None and saved.counters is not None:
        counters.restore(saved.counters)
    window = Window(profile, list(FEATURES), max_samples=500)
    ingestor = Ingestor(follower, RecordParser(FEATURES), window, counters, state_file=str(state))
    return ingestor, counters, follower


def assert_same_counts(got: IngestSnapshot, want: IngestSnapshot) -> None:
    assert got.lines_total == want.lines_total
    assert dict(got.invalid_total) == dict(want.invalid_total)
    assert got.other_events_total == want.other_events_total
    assert got.predictions_total == want.predictions_total
    assert dict(got.class_counts) == dict(want.class_counts)
    for name in FEATURES:
        assert got.bucket_observations[name].tolist() == want.bucket_observations[name].tolist()
    assert got.latency_bucket_counts.tolist() == want.latency_bucket_counts.tolist()
    assert got.latency_count == want.latency_count
    assert got.latency_sum == pytest.approx(want.latency_sum, rel=1e-12)
    assert got.bytes_read == want.bytes_read
    assert (got.rotations, got.truncations) == (want.rotations, want.truncations)


def mixed_lines(n: int, seed: int) -> list[bytes]:
    """Predictions with some other events, invalid, over-long and blank lines among them."""
    out = dumps(records(n, seed=seed))
    rng = np.random.default_rng(seed)
    for i in sorted(rng.choice(len(out), n // 20, replace=False), reverse=True):
        out.insert(int(i), [b"{bad", b"[1]", b'{"event": "start"}', b"x" * 5000, b"  "][int(i) % 5])
    return out


def test_crash_after_a_checkpoint_neither_recounts_nor_loses(
    profile: ReferenceProfile, tmp_path: Path
) -> None:
    """Every counter after crash + restart equals one uninterrupted pass over the file."""
    log, state = tmp_path / "model.jsonl", tmp_path / "state" / "checkpoint.json"
    lines = mixed_lines(900, seed=3)
    write(log, lines[:300])
    ingestor, _, follower = resumed(profile, str(log), state)
    run_until_caught_up(ingestor)
    with open(log, "ab") as handle:  # a line cut in half at the moment of the checkpoint
        handle.write(b"\n".join(lines[300:500]) + b"\n" + lines[500][:7])
    run_until_caught_up(ingestor)
    assert ingestor.checkpoint()
    with open(log, "ab") as handle:
        handle.write(lines[500][7:] + b"\n" + b"\n".join(lines[501:700]) + b"\n")
    run_until_caught_up(ingestor)  # counted, then the process dies before the next checkpoint
    follower.close()

    with open(log, "ab") as handle:
        handle.write(b"\n".join(lines[700:]) + b"\n")
    again, counters, follower2 = resumed(profile, str(log), state)
    assert again.snapshot().lines_total == ingestor.snapshot().lines_total  # resumes the served
    run_until_caught_up(again)
    once, once_counters, _, once_follower = pipeline(profile, str(log))
    run_until_caught_up(once)
    assert_same_counts(counters.snapshot(), once_counters.snapshot())
    # blank lines (b"  ") are counted nowhere, before and after the crash alike
    assert counters.snapshot().lines_total == sum(1 for x in lines if not x.isspace())
    assert counters.snapshot().invalid_total["too_long"] == sum(len(x) > 4096 for x in lines)
    follower2.close()
    once_follower.close()


def test_served_counters_are_the_checkpointed_ones(
    profile: ReferenceProfile, tmp_path: Path
) -> None:
    log, state = tmp_path / "model.jsonl", tmp_path / "checkpoint.json"
    ingestor, counters, follower = resumed(profile, str(log), state)
    write(log, dumps(records(40)))
    run_until_caught_up(ingestor)
    assert counters.snapshot().predictions_total == 40
    assert ingestor.snapshot().predictions_total == 0  # not saved yet: not served
    ingestor.checkpoint()
    assert ingestor.snapshot().predictions_total == 40
    saved = json.loads(state.read_text())
    assert saved["counters"]["predictions"] == 40
    assert saved["files"][0]["offset"] == log.stat().st_size
    follower.close()


def test_checkpoint_is_due_by_time_and_by_bytes(profile: ReferenceProfile, tmp_path: Path) -> None:
    log = tmp_path / "model.jsonl"
    now = [100.0]
    follower = LogFollower([str(log)], start_position="beginning")
    counters = IngestCounters(profile, list(FEATURES))
    window = Window(profile, list(FEATURES), max_samples=10)
    ingestor = Ingestor(
        follower,
        RecordParser(FEATURES),
        window,
        counters,
        state_file=str(tmp_path / "cp.json"),
        checkpoint_interval=5.0,
        checkpoint_bytes=10_000,
        clock=lambda: now[0],
    )
    assert not ingestor.due()
    now[0] += 5.0
    assert ingestor.due() and ingestor.maybe_checkpoint()
    assert not ingestor.due()
    write(log, dumps(records(200)))  # well over 10,000 bytes, no time passed
    ingestor.run_once()
    assert ingestor.due()
    follower.close()
    no_state = Ingestor(follower, RecordParser(FEATURES), window, counters)
    assert not no_state.due() and not no_state.checkpoint()


def test_a_failed_checkpoint_write_is_logged_and_counters_are_still_served(
    profile: ReferenceProfile, tmp_path: Path
) -> None:
    from structlog.testing import capture_logs

    log = tmp_path / "model.jsonl"
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    ingestor, _, follower = resumed(profile, str(log), tmp_path / "cp.json")
    ingestor.state_file = str(blocker / "cp.json")  # its parent is a file: every write fails
    write(log, dumps(records(5)))
    run_until_caught_up(ingestor)
    with capture_logs() as logs:
        assert not ingestor.checkpoint()
        assert not ingestor.checkpoint()
    assert [e["event"] for e in logs] == ["checkpoint_write_failed"]  # once, not every second
    assert ingestor.snapshot().predictions_total == 5
    follower.close()


def test_restore_keeps_what_fits_the_configuration(profile: ReferenceProfile) -> None:
    counters = IngestCounters(profile, list(FEATURES), max_classes=3)
    state = {
        "lines": 10,
        "invalid": {"invalid_json": 2, "internal_error": 1},
        "other_events": 1,
        "predictions": 6,
        "classes": [["a", 1], ["b", 1], ["c", 1], ["d", 2], [OTHER_LABEL, 1]],
        "buckets": {
            "age": {"labels": list(profile["age"].bucket_labels), "counts": [1] * 10},
            "plan": {"labels": ["x", "y"], "counts": [3, 3]},  # other reference: reset
            "gone": {"labels": ["z"], "counts": [6]},  # no longer monitored: dropped
        },
        "latency": {"bounds": [1.0, 2.0], "counts": [1, 1, 1], "sum": 4.5, "count": 3},
        "too_long_seen": 0,
    }
    state["buckets"]["age"]["counts"] = [1] * len(profile["age"].bucket_labels)
    counters.restore(state)
    snap = counters.snapshot()
    assert (snap.lines_total, snap.predictions_total, snap.other_events_total) == (10, 6, 1)
    assert snap.invalid_total["invalid_json"] == 2 and snap.invalid_total["internal_error"] == 1
    assert dict(snap.class_counts) == {"a": 1, "b": 1, "c": 1, OTHER_LABEL: 3}
    assert snap.bucket_observations["age"].tolist() == state["buckets"]["age"]["counts"]
    assert snap.bucket_observations["plan"].sum() == 0
    assert snap.latency_count == 0  # other bounds than DEFAULT_LATENCY_BUCKETS: reset
    roundtrip = IngestCounters(profile, list(FEATURES), max_classes=3)
    roundtrip.restore(counters.state())
    assert roundtrip.state() == counters.state()


@pytest.mark.parametrize(
    "damage",
    [
        {"lines": -1},
        {"lines": 1.5},
        {"predictions": "7"},
        {"classes": [["a"]]},
        {"latency": {"bounds": list(DEFAULT_LATENCY_BUCKETS), "counts": [1], "sum": 0, "count": 1}},
        {"buckets": {"age": {"labels": [], "counts": [-3]}}},
    ],
)
def test_a_malformed_counter_state_is_refused_whole(
    profile: ReferenceProfile, damage: dict[str, Any]
) -> None:
    counters = IngestCounters(profile, list(FEATURES))
    good = counters.state()
    good["lines"] = 5
    with pytest.raises(ValueError):
        counters.restore({**good, **damage})
    assert counters.snapshot().lines_total == 0  # nothing half-applied


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"[1, 2]", "expected a JSON object (version, files, follower, counters), got a list"),
        (b'"text"', "expected a JSON object (version, files, follower, counters), got a string"),
        (b'{"version": 2, "files": {"a": 1}}', "files: expected a list"),
    ],
)
def test_a_corrupt_checkpoint_says_what_was_expected(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    """Not ``'list' object has no attribute 'get'``: what the file should hold, and which."""
    from structlog.testing import capture_logs

    state = tmp_path / "cp.json"
    state.write_bytes(content)
    with capture_logs() as logs:
        assert load_checkpoint(str(state)) is None
    (event,) = logs
    assert event["event"] == "checkpoint_corrupt" and event["state_file"] == str(state)
    assert expected in event["error"], event["error"]
