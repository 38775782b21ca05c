#!/usr/bin/env bash
# Every benchmark whose figures docs/benchmarks.md (or docs/hardening.md) quotes, one after
# the other, on this machine. Each script prints its own figures side by side with its peer;
# see docs/benchmarks.md for what each measures and the figures of the last run.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
run() { echo; echo "===== $*"; "$@"; }
run bash bench/drift.sh
run "$PYTHON" bench/bench_pipeline.py
run "$PYTHON" bench/bench_scrape.py
run "$PYTHON" bench/bench_load.py
run "$PYTHON" bench/bench_ingest.py
run "$PYTHON" bench/bench_ingest_outcomes.py
run "$PYTHON" bench/bench_ingest_floor.py
run "$PYTHON" bench/bench_memory.py
run "$PYTHON" bench/bench_logging.py
run "$PYTHON" bench/bench_calibration.py
run "$PYTHON" bench/bench_quality_verdict.py
run "$PYTHON" bench/bench_footprint.py
run "$PYTHON" bench/bench_landing.py
run "$PYTHON" bench/bench_crash.py
run "$PYTHON" bench/bench_outcomes.py
run "$PYTHON" bench/bench_registry.py
run "$PYTHON" bench/bench_reference_follow.py
run "$PYTHON" bench/bench_routing.py
run "$PYTHON" bench/bench_cardinality.py
