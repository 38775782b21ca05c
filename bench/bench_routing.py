"""Routing cost per line: which model a prediction goes to and whether its version is judged.

    python bench/bench_routing.py [--rows 10000] [--repeats 50]

Ingest reads about 760,000 lines a second (1.3 us a line, bench/bench_ingest.py), so routing
must cost a small part of that.  Each scenario routes a batch of ``--rows`` predictions whose
columns were decoded by msgspec from real JSON lines (distinct string objects, as the parser
hands them over, not one interned string repeated) and prints the median ns per line:

- **one model, version gating only**: no ``match``, every row of the monitored version;
- **two models, one per file**: ``match: {service: ...}``, a batch from one service, one
  version (each log file holds one model server's lines: the usual batch);
- **two models interleaved, 10% canary**: both services mixed in one file, 10% of the rows
  of another version, 5% without a version;
- **three fields, interleaved**: ``match`` on service, region and shard, mixed.

It also prints what decoding the two routed fields (``service``, ``model_version``) adds to
msgspec's decoding of a line, the other cost routing brings.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exporter.routing import Route, Router  # noqa: E402


class _Input(msgspec.Struct, gc=False):
    age: float | None = None
    plan: str | None = None


class _Plain(msgspec.Struct, gc=False):
    event: str | None = None
    input_data: _Input | None = None
    latency_ms: float | None = None


class _Routed(msgspec.Struct, gc=False):
    event: str | None = None
    service: str | None = None
    model_version: str | None = None
    region: str | None = None
    shard: str | None = None
    input_data: _Input | None = None
    latency_ms: float | None = None


def lines(
    n: int, rng: np.random.Generator, services: list[str], canary: float, unversioned: float
) -> bytes:
    """A JSON array of ``n`` prediction records (one batch, decoded in one call)."""
    out = []
    for i in range(n):
        service = services[int(rng.integers(len(services)))]
        u = rng.random()
        version = "1.1.0" if u < canary else "1.0.0"
        version = "" if u > 1 - unversioned else f',"model_version":"{version}"'
        region = ["eu-west", "us-east"][i % 2]
        out.append(
            f'{{"timestamp":"2026-11-26T03:44:27.123456Z","level":"info","event":"prediction",'
            f'"service":"{service}"{version},"region":"{region}","shard":"{i % 3}",'
            f'"request_id":"req-{i}","input_data":{{"age":{40 + i % 30},"plan":"pro"}},'
            f'"prediction":{{"class":1}},"latency_ms":12.5}}'
        )
    return ("[" + ",".join(out) + "]").encode()


def per_line_ns(run: Callable[[], object], rows: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times) / rows * 1e9


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    n, repeats = args.rows, args.repeats
    decoder = msgspec.json.Decoder(list[_Routed])

    def columns(blob: bytes) -> tuple[dict[str, list[str | None]], list[str | None]]:
        recs = decoder.decode(blob)
        cols = {f: [getattr(r, f) for r in recs] for f in ("service", "region", "shard")}
        return cols, [r.model_version for r in recs]

    two = Router([Route("churn", {"service": "churn-api"}), Route("fraud", {"service": "fraud"})])
    one_file_cols, one_file_versions = columns(lines(n, rng, ["churn-api"], 0.0, 0.0))
    mixed_cols, mixed_versions = columns(lines(n, rng, ["churn-api", "fraud"], 0.10, 0.05))
    three = Router(
        [
            Route("churn-eu-0", {"service": "churn-api", "region": "eu-west", "shard": "0"}),
            Route("churn", {"service": "churn-api"}),
            Route("fraud", {"service": "fraud"}),
        ]
    )
    single = Router([Route("churn")])
    scenarios = {
        "one model, version gating only": lambda: single.route(n, {}, one_file_versions, ["1.0.0"]),
        "two models, one per file": lambda: two.route(
            n, one_file_cols, one_file_versions, ["1.0.0", "1.0.0"]
        ),
        "two models interleaved, 10% canary": lambda: two.route(
            n, mixed_cols, mixed_versions, ["1.0.0", "1.0.0"]
        ),
        "three fields, interleaved": lambda: three.route(
            n, mixed_cols, mixed_versions, ["1.0.0", "1.0.0", "1.0.0"]
        ),
    }
    print(f"routing cost, median of {repeats} batches of {n:,} rows, ns per line:")
    for name, run in scenarios.items():
        print(f"  {name:<40} {per_line_ns(run, n, repeats):8.1f} ns")

    blob = lines(n, rng, ["churn-api", "fraud"], 0.10, 0.05)
    plain = msgspec.json.Decoder(list[_Plain])
    base = per_line_ns(lambda: plain.decode(blob), n, repeats)
    routed = per_line_ns(lambda: decoder.decode(blob), n, repeats)
    print(f"  {'decoding without the routed fields':<40} {base:8.1f} ns")
    print(f"  {'decoding with service, version, 2 more':<40} {routed:8.1f} ns")
    print(f"  {'decoding added by the routed fields':<40} {routed - base:8.1f} ns")


if __name__ == "__main__":
    main()
