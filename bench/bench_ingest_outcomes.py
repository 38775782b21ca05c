"""Ingest with outcomes joined vs without: the same log, the real exporter parts, one run.

    python bench/bench_ingest_outcomes.py [--lines 1000000] [--labelled 0.5] [--repeat 3]
                                          [--dir DIR] [--keep]

Writes ``--lines`` prediction records (the ``PredictionLogger`` layout of
``bench/bench_ingest.py``: 10 features, the class with its probability and the three per-class
``probabilities``, and a ``request_id`` on every one) into one file, and for ``--labelled``
of them an ``outcome`` record, placed after its prediction by its label delay (log-normal,
median 20 s, predictions one per millisecond): outcomes arrive interleaved with later
predictions, as a label job appending to the same log would write them.

The file is then ingested from the beginning, in the same run, with the parts wired as
``exporter/app.py`` wires them, checkpoints (``logs.state_file``, every second or 64 MiB) included:

- **disabled**: ``LogFollower`` -> ``RecordParser`` -> ``Window`` (10k) + ``IngestCounters``
  through ``Ingestor.run_once()`` / ``maybe_checkpoint()`` until caught up;
- **enabled**: the same with an ``outcomes:`` section: ``IdentifyingFollower``,
  ``KeyedParser`` and ``OutcomeFeed`` into an ``OutcomeStore`` (a new file each run, in
  ``--dir``: the default temporary directory may be a tmpfs, where fsync is free).

Prints the median lines/s of each (wall clock and per CPU second), the ratio (target: enabled
at least half of disabled), the outcomes joined per second of the enabled run, and the store's
size on disk per million pending predictions at the end.  Every run's counts are checked:
lines, predictions, outcomes joined, pending.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_ingest import CATEGORICAL, NUMERIC, PLANS, REGIONS, reference_profile  # noqa: E402

from exporter.ingest import IngestCounters, Ingestor  # noqa: E402
from exporter.keyed_records import KeyedParser  # noqa: E402
from exporter.linesource import IdentifyingFollower  # noqa: E402
from exporter.outcome_feed import OutcomeFeed  # noqa: E402
from exporter.outcomes import OutcomeStats, OutcomeStore  # noqa: E402
from exporter.quality import ConfidenceWindow  # noqa: E402
from exporter.records import RecordParser  # noqa: E402
from exporter.tail import LogFollower  # noqa: E402
from exporter.window import Window  # noqa: E402
from mlops_core.profile import ReferenceProfile  # noqa: E402

TARGET = 0.5
DELAY_MEDIAN = 20.0  # seconds; one prediction per millisecond, so ~20k lines later


def write_log(path: Path, n: int, labelled: float, rng: np.random.Generator) -> tuple[int, int]:
    """Predictions and outcomes in one file, in the order they would be written.

    Returns ``(predictions, outcomes)``.  Outcomes whose delay falls after the last
    prediction are written at the end (the label job caught up).
    """
    prediction = (
        '{"timestamp":"%s.%06dZ","level":"info","event":"prediction","service":"churn-api",'
        '"model_version":"1.0.0","request_id":"req-%d","input_data":{'
        + ",".join(f'"{name}":%r' for name in NUMERIC)
        + ',"plan":"%s","region":"%s"},"prediction":{"class":%d,"probability":%r,'
        '"probabilities":{"0":%r,"1":%r,"2":%r}},"latency_ms":%r}\n'
    )
    outcome = (
        '{"timestamp":"%s.%06dZ","level":"info","event":"outcome","service":"churn-api",'
        '"model_version":"1.0.0","request_id":"req-%d","actual":%d}\n'
    )
    start = time.time() - n / 1000.0 - 3600.0
    ts = start + np.arange(n) / 1000.0
    draws = rng.normal(50, 15, (n, len(NUMERIC)))
    columns = [
        *(draws[:, j].round(2).tolist() for j in range(4)),
        *(draws[:, j].astype(np.int64).tolist() for j in range(4, 6)),
        *(draws[:, j].tolist() for j in range(6, 8)),
    ]
    features = list(zip(*columns, strict=True))
    plans, regions = rng.choice(PLANS, n).tolist(), rng.choice(REGIONS, n).tolist()
    probs = rng.dirichlet((2.0, 1.0, 1.0), n)
    classes = probs.argmax(axis=1).tolist()
    top = probs.max(axis=1).tolist()
    probs_list = probs.tolist()
    latency = rng.lognormal(3.0, 0.8, n).round(3).tolist()
    which = np.flatnonzero(rng.random(n) < labelled)
    delay = rng.lognormal(np.log(DELAY_MEDIAN), 1.0, len(which))
    t_out = ts[which] + delay
    actual = np.where(rng.random(len(which)) < 0.8, probs.argmax(axis=1)[which], 0).tolist()

    def stamp(t: np.ndarray) -> tuple[list[str], list[int]]:
        secs = t.astype(np.int64)
        micros = ((t - secs) * 1e6).astype(np.int64).tolist()
        text = {s: time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)) for s in set(secs.tolist())}
        return [text[s] for s in secs.tolist()], micros

    p_stamp, p_micro = stamp(ts)
    o_stamp, o_micro = stamp(t_out)
    lines = [
        prediction
        % (p_stamp[i], p_micro[i], i, *features[i], plans[i], regions[i], classes[i], top[i],
           *probs_list[i], latency[i])
        for i in range(n)
    ]  # fmt: skip
    lines += [
        outcome % (o_stamp[k], o_micro[k], int(i), actual[k]) for k, i in enumerate(which.tolist())
    ]
    # a line's place: a prediction at its index, an outcome where its delay lands
    place = np.concatenate([np.arange(n, dtype=np.float64), (t_out - start) * 1000.0])
    order = np.argsort(place, kind="stable")
    with open(path, "w", encoding="utf-8") as out:
        for first in range(0, len(order), 100_000):
            out.write("".join(lines[i] for i in order[first : first + 100_000].tolist()))
    return n, len(which)


def run(
    path: Path, profile: ReferenceProfile, work: Path, outcomes: bool
) -> tuple[float, float, int, OutcomeStats | None, int]:
    """Ingest the whole file; (wall s, CPU s, lines, the store's stats, store bytes)."""
    for stale in work.glob("*"):
        stale.unlink()
    features = {n: "numeric" for n in NUMERIC} | {n: "categorical" for n in CATEGORICAL}
    follower = (IdentifyingFollower if outcomes else LogFollower)(
        [str(path)], start_position="beginning"
    )
    parser = RecordParser(features)
    window = Window(profile, list(features), max_samples=10_000, max_age=None)
    counters = IngestCounters(profile, list(features))
    store = feed = None
    if outcomes:
        assert isinstance(follower, IdentifyingFollower)
        store = OutcomeStore(work / "outcomes.sqlite")
        feed = OutcomeFeed(
            store, KeyedParser(), parser.parse, follower, ConfidenceWindow(10_000, 3600.0)
        )
    ingestor = Ingestor(
        follower, parser, window, counters, state_file=str(work / "state.json"), outcomes=feed
    )
    cpu0, t0 = time.process_time(), time.perf_counter()
    ingestor.checkpoint()  # as the ingest loop does at start
    lines = 0
    while True:
        got = ingestor.run_once()
        ingestor.maybe_checkpoint()
        lines += got
        if got == 0 and follower.caught_up:
            break
    ingestor.checkpoint()  # as at shutdown
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    follower.close()
    stats, size = None, 0
    if store is not None:
        stats = store.stats()
        store.close()  # checkpoints the WAL into the database file
        size = sum(p.stat().st_size for p in work.glob("outcomes.sqlite*"))
    return wall, cpu, lines, stats, size


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=1_000_000, help="prediction lines")
    ap.add_argument("--labelled", type=float, default=0.5, help="share with an outcome line")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", type=Path, help="where the log and the store go (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    args = ap.parse_args()

    rng = np.random.default_rng(42)
    profile = reference_profile(rng)
    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-outcomes-", dir=args.dir))
    path, work = tmp / "predictions.jsonl", tmp / "state"
    work.mkdir()
    t0 = time.perf_counter()
    n_pred, n_out = write_log(path, args.lines, args.labelled, rng)
    n_lines = n_pred + n_out
    print(
        f"wrote {n_pred:,} predictions and {n_out:,} outcomes ({n_lines:,} lines, "
        f"{path.stat().st_size / 1e6:.0f} MB) to {path} in {time.perf_counter() - t0:.1f}s"
    )
    with open(path, "rb") as handle:  # warms the page cache for both runs
        assert sum(1 for _ in handle) == n_lines

    off: list[tuple[float, float]] = []
    on: list[tuple[float, float]] = []
    last: tuple[OutcomeStats, int] | None = None
    for _ in range(args.repeat):  # interleaved, so both see the same machine load
        wall, cpu, lines, _, _ = run(path, profile, work, outcomes=False)
        assert lines == n_lines, (lines, n_lines)
        off.append((wall, cpu))
        wall, cpu, lines, stats, size = run(path, profile, work, outcomes=True)
        assert lines == n_lines and stats is not None, (lines, n_lines)
        assert stats.predictions_total == n_pred, (stats.predictions_total, n_pred)
        assert stats.outcomes_total == n_out, (stats.outcomes_total, n_out)
        assert stats.pending == n_pred - n_out and stats.held == 0, stats
        on.append((wall, cpu))
        last = (stats, size)
    assert last is not None

    def rates(runs: list[tuple[float, float]]) -> tuple[float, float]:
        return (
            n_lines / statistics.median(w for w, _ in runs),
            n_lines / statistics.median(c for _, c in runs),
        )

    off_wall, off_cpu = rates(off)
    on_wall, on_cpu = rates(on)
    stats, size = last
    print(f"{'ingest':<44} {'lines/s (wall)':>15} {'lines/s per CPU-s':>18}")
    print(f"{'outcomes disabled':<44} {off_wall:>15,.0f} {off_cpu:>18,.0f}")
    print(f"{'outcomes enabled (store, join, checkpoints)':<44} {on_wall:>15,.0f} {on_cpu:>18,.0f}")
    ratio = on_wall / off_wall
    print(
        f"{'ratio enabled / disabled':<44} {ratio:>14.2f}x {on_cpu / off_cpu:>17.2f}x"
        f"; target >= {TARGET:.1f}x: {'met' if ratio >= TARGET else 'NOT met'}"
    )
    joined_per_s = n_out / statistics.median(w for w, _ in on)
    print(f"outcomes joined: {n_out:,} in the enabled run, {joined_per_s:,.0f} outcomes/s")
    kept = stats.pending + stats.remembered  # rows of requests: pending, or settled
    print(
        f"store size: {size / stats.pending:,.0f} MB per million pending predictions "
        f"({size / 1e6:,.1f} MB for {stats.pending:,} pending and {stats.remembered:,} "
        f"joined requests remembered, {stats.window_samples:,} pairs in the window: "
        f"{size / kept:,.0f} MB per million requests kept)"
    )
    print(f"medians of {args.repeat} runs, {n_lines:,} lines, {os.cpu_count()} CPUs")
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
