"""Entries per second of prediction logging for a typical 10-feature entry, on one core.

Rows, each the median of --repeats runs of --n entries:

* ``json.dumps baseline``: a dict literal + timestamp rendered with json.dumps, no redaction
  (what a hand-rolled logger without PII handling costs);
* ``structlog stock chain``: structlog's add_log_level + TimeStamper + stock JSONRenderer
  (json.dumps), no redaction, rendered only;
* ``sanitize_pii only``: the PII rules on the 10 features;
* ``create_log_entry + render``: ours, without I/O: validation, stamp, PII redaction, orjson;
* ``same, 3 fields with PII text``: the worst case, three strings that reach every regex;
* ``log_prediction -> file``: ours, end to end through structlog into a real file
  (one O_APPEND write per line).

Usage: python bench/bench_logging.py [--n 20000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import structlog

from mlops_core.logging import PredictionLogger
from mlops_core.pii import sanitize_pii

FEATURES = {
    "age": 35,
    "income": 52000.5,
    "tenure_months": 14,
    "plan": "pro",
    "country": "DE",
    "monthly_charges": 70.35,
    "num_support_calls": 2,
    "is_active": True,
    "signup_channel": "web",
    "device": "ios-17.1",
}
PREDICTION = {"class": 1, "probability": 0.83}
# the same entry with three free-text fields that hold PII (all go through every regex)
PII_FEATURES = {
    **FEATURES,
    "plan": "pro, contact jane@example.com",
    "country": "DE, from 203.0.113.9",
    "device": "ios-17.1 +44 20 7946 0958",
}


class _NullWriter:
    def info(self, line: object) -> None:
        pass

    def write(self, line: object) -> None:
        pass


def _rate(fn: Callable[[], object], n: int, repeats: int) -> float:
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20000, help="entries per run")
    parser.add_argument("--repeats", type=int, default=7, help="runs; the median is shown")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

    def baseline() -> object:
        entry = {
            "timestamp": datetime.now(UTC).isoformat(),
            "level": "info",
            "event": "prediction",
            "service": "churn-api",
            "model_version": "1.0.0",
            "request_id": "req-123",
            "input_data": FEATURES,
            "prediction": PREDICTION,
            "latency_ms": 45.2,
        }
        return json.dumps(entry)

    stock = structlog.make_filtering_bound_logger(10)(
        _NullWriter(),
        [
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        {"service": "churn-api", "model_version": "1.0.0"},
    )

    def stock_chain() -> object:
        return stock.info(
            "prediction",
            request_id="req-123",
            input_data=FEATURES,
            prediction=PREDICTION,
            latency_ms=45.2,
        )

    ours = PredictionLogger("churn-api", model_version="1.0.0", output=_NullWriter())

    def entry_and_render() -> object:
        return ours.render(ours.create_log_entry("req-123", FEATURES, PREDICTION, 45.2))

    def pii_entry() -> object:
        return ours.render(ours.create_log_entry("req-123", PII_FEATURES, PREDICTION, 45.2))

    rows: list[tuple[str, float]] = [
        ("json.dumps baseline (no PII)", _rate(baseline, args.n, args.repeats)),
        ("structlog stock chain (no PII)", _rate(stock_chain, args.n, args.repeats)),
        ("sanitize_pii only", _rate(lambda: sanitize_pii(FEATURES), args.n, args.repeats)),
        ("create_log_entry + render", _rate(entry_and_render, args.n, args.repeats)),
        ("  same, 3 fields with PII text", _rate(pii_entry, args.n, args.repeats)),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "predictions.jsonl"
        with PredictionLogger("churn-api", model_version="1.0.0", output=path) as to_file:

            def log_to_file() -> object:
                return to_file.log_prediction("req-123", FEATURES, PREDICTION, 45.2)

            rows.append(("log_prediction -> file", _rate(log_to_file, args.n, args.repeats)))
        lines = path.read_bytes().count(b"\n")
    base = rows[0][1]
    print(f"10-feature entry, one core, median of {args.repeats} x {args.n} entries")
    print(f"{'':34s} {'entries/s':>11s} {'us/entry':>9s} {'vs json.dumps':>14s}")
    for name, rate in rows:
        print(f"{name:34s} {rate:11,.0f} {1e6 / rate:9.2f} {rate / base:13.2f}x")
    print(f"(file run wrote {lines} lines; target >= 50,000 entries/s)")


if __name__ == "__main__":
    main()
