"""Outcome store benchmark: join throughput, prediction inserts, quality window, size on disk.

    python bench/bench_outcomes.py [--pending 1000000] [--outcomes 200000] [--batch 10000]
    python bench/bench_outcomes.py --quick

Drives ``exporter.outcomes.OutcomeStore`` on a real file in a temporary directory (the
``--dir`` option puts it elsewhere, e.g. on the disk a deployment would use; the
default ``/tmp`` may be a tmpfs, where fsync is free).  Request ids are random 32-digit hex
strings, as UUIDs would be: the worst case for the B-tree (no locality).  Each prediction
carries a class label, a scalar probability and three per-class probabilities.

1. ``--pending`` predictions are inserted in batches of ``--batch`` (one transaction each,
   ``synchronous=FULL``): rows/s.
2. ``--outcomes`` outcomes for random pending predictions are joined in batches of
   ``--batch``, with the store holding ``--pending`` predictions: outcomes/s (target >= 50k).
   This is the worst case: every lookup reads a page no other lookup of the batch needs.
   Then as many for the oldest predictions still pending, in arrival order: a live log,
   where labels come for the predictions in about the order they were made.
3. ``quality_window()`` with the window full (``--window`` pairs): median time.
4. The database's size on disk after a WAL checkpoint, per million pending predictions.

Rows are built before each timed batch: the figures are the store's, not the caller's.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exporter.outcomes import OutcomeRow, OutcomeStore, PredictionRow  # noqa: E402

CLASSES = ("churn", "stay", "unsure")
TARGET = 50_000


def predictions(ids: list[str], start: int, t0: float) -> list[PredictionRow]:
    return [
        PredictionRow(
            request_id=rid,
            time=t0 + (start + i) * 0.001,
            source="predictions.jsonl",
            offset=(start + i) * 200,
            predicted=CLASSES[(start + i) % 3],
            probability=0.7,
            probabilities={"churn": 0.7, "stay": 0.2, "unsure": 0.1},
            model_version="1.0.0",
        )
        for i, rid in enumerate(ids)
    ]


def outcomes(ids: list[str], start: int, t0: float) -> list[OutcomeRow]:
    return [
        OutcomeRow(
            request_id=rid,
            time=t0 + 3600.0 + (start + i) * 0.001,
            source="outcomes.jsonl",
            offset=(start + i) * 80,
            actual=CLASSES[(start + i) % 2],
        )
        for i, rid in enumerate(ids)
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pending", type=int, default=1_000_000)
    ap.add_argument("--outcomes", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--window", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=7, help="quality_window() calls timed")
    ap.add_argument("--dir", default=None, help="where the store is created (default: /tmp)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes, for the smoke test")
    args = ap.parse_args()
    if args.quick:
        args.pending, args.outcomes, args.batch, args.window = 20_000, 5_000, 2_000, 2_000
        args.repeat = 3
    if 2 * args.outcomes > args.pending:
        ap.error("--outcomes must be at most half of --pending (two join runs)")

    with tempfile.TemporaryDirectory(prefix="bench-outcomes-", dir=args.dir) as tmp:
        path = Path(tmp) / "outcomes.db"
        store = OutcomeStore(path, window_max_samples=args.window, max_pending=args.pending)
        ids = [os.urandom(16).hex() for _ in range(args.pending)]
        t0 = 1.7e9

        spent = 0.0
        for start in range(0, args.pending, args.batch):
            rows = predictions(ids[start : start + args.batch], start, t0)
            began = time.perf_counter()
            store.add_predictions(rows)
            spent += time.perf_counter() - began
        print(
            f"prediction insert: {args.pending:,} rows in batches of {args.batch:,}: "
            f"{args.pending / spent:,.0f} rows/s"
        )
        db_bytes = checkpointed_size(store, path)
        print(
            f"store size: {db_bytes / 2**20 * 1e6 / args.pending:,.0f} MB per million pending "
            f"predictions ({db_bytes / 2**20:,.1f} MB for {args.pending:,})"
        )

        # worst case: outcomes for a random sample of the pending predictions (no locality)
        sample = _permutation(args.pending)[: args.outcomes]
        rate = join_rate(store, [ids[i] for i in sample], args.batch, t0, 0)
        print(
            f"join, random pending predictions: {args.outcomes:,} outcomes against "
            f"{args.pending:,} pending, batches of {args.batch:,}: {rate:,.0f} outcomes/s; "
            f"target >= {TARGET:,}: {'met' if rate >= TARGET else 'NOT met'}"
        )
        # a live log: labels come for the predictions in about the order they were made
        taken = set(sample)
        in_order = [ids[i] for i in range(args.pending) if i not in taken][: args.outcomes]
        rate = join_rate(store, in_order, args.batch, t0, args.outcomes)
        print(
            f"join, predictions in arrival order: {len(in_order):,} outcomes against "
            f"{args.pending - args.outcomes:,} pending: {rate:,.0f} outcomes/s"
        )

        window = store.stats().window_samples
        times = []
        for _ in range(args.repeat):
            began = time.perf_counter()
            got = store.quality_window()
            times.append(time.perf_counter() - began)
        assert len(got) == window
        print(
            f"quality_window() at {window:,} pairs: {statistics.median(times) * 1e3:.1f} ms "
            f"(median of {args.repeat})"
        )
        store.close()
    return 0


def join_rate(store: OutcomeStore, ids: list[str], batch: int, t0: float, line: int) -> float:
    """Outcomes joined per second of :meth:`OutcomeStore.add_outcomes` (all must join).

    ``line`` numbers the first outcome line: a line seen before would be skipped as a replay.
    """
    spent, joined = 0.0, 0
    for start in range(0, len(ids), batch):
        rows = outcomes(ids[start : start + batch], line + start, t0)
        began = time.perf_counter()
        joined += store.add_outcomes(rows).joined
        spent += time.perf_counter() - began
    assert joined == len(ids), (joined, len(ids))
    return joined / spent


def checkpointed_size(store: OutcomeStore, path: Path) -> int:
    """The database file's size once the WAL is checkpointed into it."""
    store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.stat().st_size


def _permutation(n: int) -> list[int]:
    order = list(range(n))
    random.Random(7).shuffle(order)
    return order


if __name__ == "__main__":
    raise SystemExit(main())
