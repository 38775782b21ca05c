"""Smoke tests for bench/: every script docs/benchmarks.md quotes still runs and prints its figures.

Nothing else runs the benchmarks, so without these a refactor of the code they import (or of
their own output) would only be noticed when someone next reproduces the numbers of
docs/benchmarks.md.
Each script runs as a real subprocess with tiny sizes through its own flags; the tests check
the exit status and that each figure line (ours and the peer's) is printed with a number.
They never assert on the numbers themselves: timings on shared CI machines mean nothing.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, require_binary

BENCH = REPO_ROOT / "bench"
NUMBER = r"[0-9][0-9,]*(?:\.[0-9]+)?"


def run_bench(script: str, *args: str, path_prefix: str | None = None) -> str:
    """Run ``bench/<script>`` with ``args``; return its stdout, failing with its stderr."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    if path_prefix:
        env["PATH"] = path_prefix + os.pathsep + env.get("PATH", "")
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, (
        f"{script} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    )
    return proc.stdout


def figure(output: str, pattern: str) -> re.Match[str]:
    """The one line of ``output`` matching ``pattern``; fails showing the whole output."""
    match = re.search(pattern, output, re.M)
    assert match, f"no line matching {pattern!r} in:\n{output}"
    return match


def test_bench_drift_prints_each_scenario_against_scipy_without_evidently() -> None:
    # Without --evidently-python the Evidently child is never started (no venv, no network).
    out = run_bench("bench_drift.py", "--features", "3", "--rows", "2000", "--repeats", "1")
    for scenario in (r"stable \(no shift\)", r"gradual drift \([^)]*\)"):
        # the row: mlops_core's and the peers' medians in ms and at least one scipy/ours ratio
        # (the columns themselves may change as the benchmark grows)
        row = figure(out, rf"^{scenario}\s+{NUMBER} ms\s.*$")[0]
        assert len(re.findall(rf"{NUMBER} ms", row)) >= 2, row
        assert re.search(rf"{NUMBER}x", row), row
        accuracy = figure(out, rf"^{scenario}: .*max \|D diff\| ([^,]+), max \|p diff\| ([^;]+);")
        # the profile-based KS must agree with scipy.stats.ks_2samp on the same data
        assert float(accuracy.group(1)) < 1e-6 and float(accuracy.group(2)) < 1e-6, accuracy[0]
    figure(out, r"^Evidently DataDriftPreset: not run")
    figure(out, rf"^exporter pass \(drift_against_profile\): .*: {NUMBER} ms$")


def test_bench_pipeline_prints_exporter_and_naive_peer_with_ratio() -> None:
    out = run_bench(
        "bench_pipeline.py", "--features", "3", "--window", "500", "--reference", "500",
        "--repeat", "1",
    )  # fmt: skip
    figure(out, r"^drift pass: 3 features .*window 500, reference 500 rows")
    figure(out, rf"^exporter compute_snapshot\s+{NUMBER}\s+{NUMBER}$")
    figure(out, rf"^\+ copy out of the real Window\s+{NUMBER}\s+{NUMBER}$")
    figure(out, rf"^naive scipy on raw reference\s+{NUMBER}\s+{NUMBER}$")
    figure(out, rf"^ratio naive / exporter .*: {NUMBER}x; target < 100 ms: (met|NOT met)$")


def test_bench_ingest_prints_lines_per_second_for_exporter_and_mtail() -> None:
    mtail = require_binary("mtail")
    # bench_ingest looks mtail up on PATH; put the one found first so it is the one used.
    out = run_bench(
        "bench_ingest.py", "--lines", "2000", "--repeat", "1",
        path_prefix=str(Path(mtail).parent),
    )  # fmt: skip
    figure(out, r"^wrote 2,000 lines ")
    figure(out, rf"^exporter \(10 features, latency, class, ts\)\s+{NUMBER}\s+{NUMBER}$")
    figure(out, rf"^exporter, version gating \(registry\)\s+{NUMBER}\s+{NUMBER}$")
    figure(out, rf"^mtail \S+ \(latency only\)\s+{NUMBER}\s+{NUMBER}$")
    figure(out, rf"^ratio exporter / mtail\s+{NUMBER}x\s+{NUMBER}x$")
    figure(out, r"^medians of 1 runs, 2,000 lines")


def test_bench_cardinality_prints_series_and_scrape_time_of_the_real_exporter() -> None:
    out = run_bench(
        "bench_cardinality.py", "--models", "3", "--features", "5", "--per-model", "120",
        "--scrapes", "3",
    )  # fmt: skip
    figure(out, r"^3 models x 5 features, 120 predictions each$")
    figure(out, rf"^series per model: {NUMBER}$")
    figure(out, rf"^series in all: {NUMBER} \({NUMBER} exporter-wide\), {NUMBER} MB a scrape$")
    figure(out, rf"^scrape wall time: median {NUMBER} ms, worst {NUMBER} ms \(3 scrapes\); "
                r"target < 50 ms: (met|NOT met)$")  # fmt: skip


def test_bench_ingest_outcomes_prints_both_rates_the_ratio_joins_and_store_size() -> None:
    out = run_bench("bench_ingest_outcomes.py", "--lines", "2000", "--repeat", "1")
    figure(out, r"^wrote 2,000 predictions and [0-9,]+ outcomes ")
    figure(out, rf"^outcomes disabled\s+{NUMBER}\s+{NUMBER}$")
    figure(out, rf"^outcomes enabled \(store, join, checkpoints\)\s+{NUMBER}\s+{NUMBER}$")
    ratio = rf"^ratio enabled / disabled\s+{NUMBER}x\s+{NUMBER}x"
    figure(out, ratio + r"; target >= 0.5x: (met|NOT met)$")
    figure(out, rf"^outcomes joined: {NUMBER} in the enabled run, {NUMBER} outcomes/s$")
    figure(out, rf"^store size: {NUMBER} MB per million pending predictions \({NUMBER} MB for ")
    figure(out, r"^medians of 1 runs, ")


def test_bench_ingest_floor_prints_each_part_and_the_bound_it_puts_on_the_ratio() -> None:
    out = run_bench("bench_ingest_floor.py", "--lines", "2000", "--repeat", "1")
    figure(out, r"^[0-9,]+ lines \(2,000 predictions, [0-9,]+ outcomes\), medians of 1, ")
    figure(out, rf"^disabled ingest \(the whole of it\)\s+{NUMBER}$")
    figure(out, rf"^keyed fields in the one decode\s+{NUMBER}$")
    figure(out, rf"^bare vectorised core \(no rules\)\s+{NUMBER}$")
    figure(out, rf"^  the two together\s+{NUMBER}\s+{NUMBER}x$")
    figure(out, r"^target >= 0.5x; ")


def test_bench_memory_prints_peak_rss_per_round_and_verdict() -> None:
    # 3 log files of 2,000 lines: the rotation path (file appears, is read, is deleted) runs.
    out = run_bench("bench_memory.py", "--lines", "6000", "--round", "2000", "--window", "500")
    figure(out, rf"^peak RSS before ingesting .*: {NUMBER} MB$")
    row = figure(out, rf"^([0-9,]+)\s+{NUMBER}\s+{NUMBER}$")
    assert row.group(1) == "6,000", row[0]  # the last mark is --lines, all of them ingested
    figure(out, r"^target < 250 MB: (OK|OVER); 6,000 lines in .*window 500$")


def test_bench_logging_prints_entries_per_second_for_every_row() -> None:
    out = run_bench("bench_logging.py", "--n", "200", "--repeats", "1")
    rows = (
        r"json\.dumps baseline \(no PII\)",
        r"structlog stock chain \(no PII\)",
        r"sanitize_pii only",
        r"create_log_entry \+ render",
        r"\s+same, 3 fields with PII text",
        r"log_prediction -> file",
    )
    for name in rows:
        figure(out, rf"^{name}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}x$")
    figure(out, r"^\(file run wrote 200 lines; ")


@pytest.mark.slow  # starts the real exporter twice and waits for its first drift pass: ~5 s
def test_bench_scrape_prints_exporter_and_prometheus_client_latency() -> None:
    out = run_bench("bench_scrape.py", "--features", "5", "--windows", "200,400", "--scrapes", "10")
    for window in (200, 400):
        figure(out, rf"^window {window}: background drift pass took {NUMBER} ms$")
        figure(out, rf"^exporter, window {window}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}$")
    figure(out, rf"^prometheus_client Gauges \(\d+ series\)\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}$")
    figure(out, rf"^ratio window 400 / 200: {NUMBER}x; exporter / prometheus_client: {NUMBER}x")


def test_bench_crash_prints_what_sigkill_does_to_the_counters() -> None:
    out = run_bench("bench_crash.py", "--lines", "20000", "--kills", "1", "--steady", "0")
    row = figure(out, rf"^catch-up of 20,000 lines, 1 SIGKILLs .*counted twice {NUMBER};.*$")[0]
    assert "lines in the files 20,000" in row, row


def test_bench_calibration_prints_every_table_for_the_four_rules() -> None:
    out = run_bench("bench_calibration.py", "--quick")
    header = figure(out, r"^\| window \| bound A .*\| psi>=0\.2 \|$")[0]
    assert "old" in header and "ks p<0.05" in header
    for window in (200, 1000):  # each row: a count and a range for every rule
        row = figure(out, rf"^\| {window} \|( {NUMBER} \[{NUMBER}-{NUMBER}\] \|){{5}}$")[0]
        assert row
    # and the pooled Poisson interval of the bound's rate, per window and budget
    figure(out, rf"^200: A \[{NUMBER}, {NUMBER}\], B \[{NUMBER}, {NUMBER}\]; 1000: A .*$")
    for change in ("mean \\+0.3 sd", "point mass", "new category", "20% of records null"):
        figure(out, rf"^\| {change}.*\| {NUMBER}% \(.*$")
    figure(out, rf"^\| 1000 \| {NUMBER} \| {NUMBER} \|$")  # the smallest shift flagged
    figure(out, rf"^bound verdict pass {NUMBER} ms$")


def test_bench_quality_verdict_prints_false_alarms_and_detection_for_both_rules() -> None:
    out = run_bench("bench_quality_verdict.py", "--quick")
    header = r"^\| window \| true accuracy \| bound, budget A \| bound, budget B \| naive rule \|$"
    figure(out, header)
    for window in (30, 100):
        for p in ("0.90", "0.85"):
            figure(out, rf"^\| {window} \| {p} \| {NUMBER} \| {NUMBER} \| {NUMBER} \|$")
        figure(out, rf"^\| {window} \| 0.60 \| {NUMBER}% \| (never|{NUMBER} passes) \|$")


def test_bench_footprint_prints_startup_rss_and_cpu_next_to_mtail() -> None:
    require_binary("mtail")
    out = run_bench("bench_footprint.py", "--seconds", "1", "--rate", "100")
    for who in ("mlops-exporter", r"mtail \(latency only\)"):
        figure(out, rf"^{who}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}$")
    figure(out, r"^targets: RSS <= 75 MB (met|NOT met); start-up <= 0.4 s (met|NOT met)$")


@pytest.mark.slow  # starts the real exporter and runs its three load phases: ~10 s
def test_bench_load_prints_each_phase_with_latency_rss_and_threads() -> None:
    out = run_bench(
        "bench_load.py", "--scrapers", "2", "--flood", "10", "--slow", "10",
        "--duration", "0.5", "--slow-duration", "0.5", "--lines", "200",
    )  # fmt: skip
    peak = rf"RSS {NUMBER} MB, threads \d+$"
    worst = rf"worst legitimate scrape {NUMBER} ms \(p50 {NUMBER} ms, \d+ scrapes, [^)]*\)"
    figure(out, rf"^exporter pid \d+ on 127\.0\.0\.1:\d+: 10 features, 200 lines, "
                rf"/metrics {NUMBER} bytes; descriptor limit {NUMBER}$")  # fmt: skip
    figure(out, rf"^2 keep-alive scrapers, {NUMBER} s: {NUMBER} req/s, p50 {NUMBER} ms, "
                rf"p99 {NUMBER} ms, statuses .*; {peak}")  # fmt: skip
    figure(out, rf"^10 concurrent requests, {NUMBER} s: {worst}; flood {NUMBER} req/s .*; {peak}")
    figure(out, rf"^10 slow connections, {NUMBER} s: {worst}; cut by the header deadline "
                rf"{NUMBER} times; {peak}")  # fmt: skip
    figure(out, rf"^10 slow connections closed at once: {worst} in the 2 s after$")
    figure(out, r"^target: worst legitimate scrape < 1 s: (met|NOT met)$")


def test_bench_landing_prints_a_view_next_to_a_scrape() -> None:
    out = run_bench("bench_landing.py", "--features", "5", "--views", "2", "--pass-every", "3")
    figure(
        out,
        rf"^\s+5\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}x\s+{NUMBER}\s+{NUMBER}$",
    )
    figure(out, r"^target: a view within 2x a scrape: (met|NOT met)$")


def test_bench_registry_prints_each_operation_for_both_backends() -> None:
    from tests.s3_server import require_moto

    require_moto()
    out = run_bench("bench_registry.py", "--repeats", "2", "--size", "1000")
    figure(out, r"^registry latency, median of 2 \(model 1,000 bytes\): filesystem vs S3")
    for operation in ("register", "promote to production", "read production version"):
        figure(out, rf"^{operation}\s+{NUMBER} ms\s+{NUMBER} ms\s+{NUMBER}x$")


def test_bench_outcomes_prints_join_insert_window_and_size_figures() -> None:
    out = run_bench("bench_outcomes.py", "--quick")
    figure(out, rf"^prediction insert: 20,000 rows in batches of 2,000: {NUMBER} rows/s$")
    figure(out, rf"^store size: {NUMBER} MB per million pending predictions \({NUMBER} MB for ")
    figure(
        out,
        rf"^join, random pending predictions: 5,000 outcomes against 20,000 pending, .*: "
        rf"{NUMBER} outcomes/s; target >= 50,000: (met|NOT met)$",
    )
    figure(out, rf"^join, predictions in arrival order: 5,000 outcomes .*: {NUMBER} outcomes/s$")
    figure(out, rf"^quality_window\(\) at 2,000 pairs: {NUMBER} ms \(median of 3\)$")


def test_run_all_runs_every_benchmark_the_docs_quote() -> None:
    """docs/benchmarks.md says `bash bench/run_all.sh` gives every figure: a new bench script
    must be listed there (bench_drift.py is run through drift.sh, with its Evidently venv)."""
    script = (BENCH / "run_all.sh").read_text(encoding="utf-8")
    run = set(re.findall(r"bench/(bench_\w+\.py)", script))
    if "bench/drift.sh" in script:
        run.add("bench_drift.py")
    scripts = {p.name for p in BENCH.glob("bench_*.py")}
    assert scripts - run == set(), "not run by bench/run_all.sh"
