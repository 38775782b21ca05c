"""Memory benchmark: peak RSS of the ingest path after 1 million and 5 million lines.

    python bench/bench_memory.py [--lines 5000000] [--round 250000] [--window 10000]

Feeds ``--lines`` PredictionLogger records (10 features, the layout of
``bench/bench_ingest.py``) through ``LogFollower`` -> ``RecordParser`` -> ``Window``
(``--window`` samples) + ``IngestCounters``.  The log arrives as a sequence of files in one
directory, ``--round`` lines each (a file appears, is read, is deleted: disk use stays
small).  The files are copied from one pre-written file with ``sendfile``, so the
benchmark's own memory never holds log data and the peak RSS (``ru_maxrss``) is the
reader's.  Target: under 250 MB, and no growth between 1M and 5M lines.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_ingest import CATEGORICAL, NUMERIC, reference_profile, write_log  # noqa: E402

from exporter.ingest import IngestCounters, Ingestor  # noqa: E402
from exporter.records import RecordParser  # noqa: E402
from exporter.tail import LogFollower  # noqa: E402
from exporter.window import Window  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def current_rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=5_000_000)
    ap.add_argument("--round", type=int, default=250_000, help="lines per log file")
    ap.add_argument("--window", type=int, default=10_000)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    try:
        rng = np.random.default_rng(7)
        profile = reference_profile(rng)
        template = tmp / "template.jsonl"
        write_log(template, args.round, rng, block=2_000)  # small blocks: low peak here
        logs = tmp / "logs"
        logs.mkdir()
        features = {n: "numeric" for n in NUMERIC} | {n: "categorical" for n in CATEGORICAL}
        follower = LogFollower([str(logs / "*.jsonl")], start_position="beginning")
        window = Window(profile, list(features), max_samples=args.window, max_age=None)
        counters = IngestCounters(profile, list(features))
        ingestor = Ingestor(follower, RecordParser(features), window, counters)
        baseline = peak_rss_mb()
        print(f"peak RSS before ingesting (imports, profile, empty window): {baseline:.0f} MB")

        done = 0
        marks = {1_000_000, args.lines}
        rows: list[tuple[int, float, float]] = []
        t0 = time.perf_counter()
        for i in range((args.lines + args.round - 1) // args.round):
            path = logs / f"part-{i:05d}.jsonl"
            shutil.copyfile(template, path)
            while True:
                got = ingestor.run_once()
                done += got
                if got == 0 and follower.caught_up:
                    break
            path.unlink()
            if any(done >= m > done - args.round for m in marks):
                rows.append((done, peak_rss_mb(), current_rss_mb()))
        follower.poll_blocks()  # closes the deleted files
        elapsed = time.perf_counter() - t0
        snap = counters.snapshot()
        assert snap.predictions_total == done, (snap.predictions_total, done)
        assert window.snapshot().samples() == args.window

        print(f"{'lines ingested':<16} {'peak RSS (MB)':>14} {'current RSS (MB)':>17}")
        for lines, peak, current in rows:
            print(f"{lines:<16,} {peak:>14.0f} {current:>17.0f}")
        if len(rows) >= 2:
            growth = rows[-1][1] - rows[0][1]
            print(f"growth from {rows[0][0]:,} to {rows[-1][0]:,} lines: {growth:+.0f} MB")
        verdict = "OK" if rows[-1][1] < 250 else "OVER"
        print(f"target < 250 MB: {verdict}; {done:,} lines in {elapsed:.0f}s, window {args.window}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
