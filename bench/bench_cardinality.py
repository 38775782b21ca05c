"""Cardinality benchmark: series and scrape time of one exporter serving many models.

    python bench/bench_cardinality.py [--models 20] [--features 50] [--per-model 150]
                                      [--scrapes 50]

Writes ``--models`` saved reference profiles of ``--features`` features each (every fifth
categorical, the others numeric: ``tests/e2e/_fleet.py``), starts the real exporter
(``python -m exporter.cli``) on one log file holding ``--per-model`` predictions of each
model, waits until every model has a drift verdict (every drift series present: the
worst case), then scrapes ``/metrics`` over HTTP ``--scrapes`` times, one at a time,
without compression.

Prints the series count (per model and in all) and the scrape wall time, median and
worst, as a client sees it: the drift job encodes each pass's metrics after the pass, so
a scrape only encodes the live counters.  The target is a median under 50 ms.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e._exporter import parse_metrics, start_exporter  # noqa: E402
from tests.e2e._fleet import fleet_traffic, write_fleet  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=int, default=20)
    ap.add_argument("--features", type=int, default=50)
    ap.add_argument("--per-model", type=int, default=150)
    ap.add_argument("--scrapes", type=int, default=50)
    args = ap.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench-cardinality-"))
    config = write_fleet(root, args.models, args.features, interval="30s")
    log = root / "logs" / "predictions.jsonl"
    log.write_bytes(fleet_traffic(args.models, args.features, args.per_model))
    exp = start_exporter(config, args=["--log.level=info"])
    try:
        names = [f"m{i:02d}" for i in range(args.models)]
        scrape = exp.wait_for(
            lambda s: all(s.get("mlops_features_drifted", model=n) is not None for n in names),
            timeout=300,
            what="every model's first pass",
        )
        per_model: collections.Counter[str] = collections.Counter()
        for _, labels in scrape.samples:
            per_model[dict(labels).get("model", "")] += 1
        series = len(scrape.samples)
        times = []
        size = 0
        for _ in range(args.scrapes):
            t0 = time.perf_counter()
            with urllib.request.urlopen(exp.url + "/metrics", timeout=30) as resp:
                body = resp.read()
            times.append(time.perf_counter() - t0)
            size = len(body)
        assert len(parse_metrics(body.decode()).samples) == series
    finally:
        exp.stop()
    counts = sorted({per_model[n] for n in names})
    exporter_wide = series - sum(per_model[n] for n in names)
    print(f"{args.models} models x {args.features} features, {args.per_model} predictions each")
    print(f"series per model: {', '.join(map(str, counts))}")
    print(f"series in all: {series:,} ({exporter_wide} exporter-wide), "
          f"{size / 1e6:.1f} MB a scrape")  # fmt: skip
    median, worst = statistics.median(times) * 1000, max(times) * 1000
    verdict = "met" if median < 50 else "NOT met"
    print(f"scrape wall time: median {median:.1f} ms, worst {worst:.1f} ms "
          f"({args.scrapes} scrapes); target < 50 ms: {verdict}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
