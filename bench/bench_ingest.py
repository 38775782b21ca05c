"""Ingest benchmark: the exporter's reader vs mtail on the same PredictionLogger file.

    python bench/bench_ingest.py [--lines 1000000] [--repeat 3] [--file PATH] [--keep]

Writes ``--lines`` prediction records (10 features: 8 numeric, 2 categorical, the
``PredictionLogger`` record layout) to a temporary file, then, in the same run:

- **exporter**: ``LogFollower`` (from the beginning) -> ``RecordParser`` -> ``Window``
  (10k samples) + ``IngestCounters`` through ``Ingestor.run_once()`` until caught up, i.e.
  every feature, the latency, the class and the timestamp of every line, the way the
  exporter runs one model with a file reference: each batch routed (``exporter.routing``)
  to the model, the line figures counted apart;
- **exporter, version gating**: the same for a model that follows a registry stage: the
  window takes only the version it monitors, so ``model_version`` is decoded and compared;
- **mtail**: ``mtail --one_shot --logs FILE --progs bench/mtail/`` with a program that
  extracts only ``latency_ms`` into a histogram.

Prints the median lines/s of each (wall clock, and per CPU second), and the ratios.
Both histogram counts are checked against the number of lines written.  The target is at
least 3x mtail.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exporter.ingest import IngestCounters, Ingestor  # noqa: E402
from exporter.records import RecordParser  # noqa: E402
from exporter.routing import Route, Router  # noqa: E402
from exporter.tail import LogFollower  # noqa: E402
from exporter.window import Window  # noqa: E402
from mlops_core.profile import ReferenceProfile  # noqa: E402

NUMERIC = [f"num_{i}" for i in range(8)]
CATEGORICAL = ["plan", "region"]
PLANS = np.array(["free", "basic", "pro", "enterprise"])
REGIONS = np.array(["eu-west", "us-east", "ap-south"])


def reference_profile(rng: np.random.Generator) -> ReferenceProfile:
    data: dict[str, np.ndarray] = {n: rng.normal(50, 15, 5000) for n in NUMERIC}
    data["plan"] = rng.choice(PLANS, 5000)
    data["region"] = rng.choice(REGIONS, 5000)
    return ReferenceProfile.from_data(data)


def write_log(path: Path, n: int, rng: np.random.Generator, block: int = 100_000) -> None:
    """Lines byte for byte as ``PredictionLogger`` (orjson, compact) writes them, but fast.

    The features mix what real models log: four measurements with 2 decimals, two integers,
    two model-derived scores at full float precision, and two categories; the class with its
    full-precision probability; the latency in ms with 3 decimals.
    """
    template = (
        '{"timestamp":"%s.%06dZ","level":"info","event":"prediction","service":"churn-api",'
        '"model_version":"1.0.0","request_id":"req-%d","input_data":{'
        + ",".join(f'"{name}":%r' for name in NUMERIC)
        + ',"plan":"%s","region":"%s"},"prediction":{"class":%d,"probability":%r},'
        '"latency_ms":%r}\n'
    )
    start = time.time() - n / 1000.0  # one prediction per millisecond, ending now
    with open(path, "w", encoding="utf-8") as out:
        for first in range(0, n, block):
            k = min(block, n - first)
            draws = rng.normal(50, 15, (k, len(NUMERIC)))
            columns = [
                *(draws[:, j].round(2).tolist() for j in range(4)),
                *(draws[:, j].astype(np.int64).tolist() for j in range(4, 6)),
                *(draws[:, j].tolist() for j in range(6, 8)),
            ]
            rows = list(zip(*columns, strict=True))
            plans = rng.choice(PLANS, k).tolist()
            regions = rng.choice(REGIONS, k).tolist()
            classes = rng.integers(0, 3, k).tolist()
            probs = rng.random(k).tolist()
            latency = rng.lognormal(3.0, 0.8, k).round(3).tolist()
            ts = start + (first + np.arange(k)) / 1000.0
            secs = ts.astype(np.int64)
            micros = ((ts - secs) * 1e6).astype(np.int64).tolist()
            stamps = {s: time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)) for s in set(secs)}
            secs = secs.tolist()
            out.write(
                "".join(
                    template
                    % (
                        stamps[secs[i]],
                        micros[i],
                        first + i,
                        *rows[i],
                        plans[i],
                        regions[i],
                        classes[i],
                        probs[i],
                        latency[i],
                    )
                    for i in range(k)
                )
            )


@dataclass
class _Model:
    """What the ingest loop feeds for one model (as exporter.models.ModelState offers it)."""

    name: str
    window: Window
    counters: IngestCounters
    monitored_version: str | None


def run_exporter(
    path: Path, profile: ReferenceProfile, *, gating: bool = False
) -> tuple[float, float, int, int]:
    """Ingest the whole file; (wall seconds, CPU seconds, lines, latency histogram count)."""
    features = {n: "numeric" for n in NUMERIC} | {n: "categorical" for n in CATEGORICAL}
    follower = LogFollower([str(path)], start_position="beginning")
    window = Window(profile, list(features), max_samples=10_000, max_age=None)
    counters = IngestCounters(profile, list(features))
    parser = RecordParser(features, version_field="model_version" if gating else None)
    model = _Model("churn", window, counters, "1.0.0" if gating else None)
    ingestor = Ingestor(
        follower, parser, None, IngestCounters(profile, []), router=Router([Route("churn")]),
        models=[model],
    )  # fmt: skip
    cpu0, t0 = time.process_time(), time.perf_counter()
    lines = 0
    while True:
        got = ingestor.run_once()
        lines += got
        if got == 0 and follower.caught_up:
            break
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    follower.close()
    snap = counters.snapshot()
    return wall, cpu, lines, snap.latency_count


def run_mtail(mtail: str, path: Path) -> tuple[float, float, int]:
    """One mtail one-shot run; (wall seconds, CPU seconds, histogram count)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    result = subprocess.run(
        [
            mtail,
            "--one_shot",
            "--one_shot_format=prometheus",
            "--logtostderr",
            f"--logs={path}",
            f"--progs={ROOT / 'bench' / 'mtail'}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    match = re.search(r"^prediction_latency_ms_count\{[^}]*\} (\S+)$", result.stdout, re.M)
    count = int(float(match.group(1))) if match else -1
    return wall, cpu, count


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--file", type=Path, help="reuse/write the log here instead of a temp file")
    ap.add_argument("--keep", action="store_true", help="keep the generated file")
    args = ap.parse_args()

    rng = np.random.default_rng(42)
    profile = reference_profile(rng)
    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    path = args.file or tmp / "predictions.jsonl"
    if not (args.file and path.exists()):
        t0 = time.perf_counter()
        write_log(path, args.lines, rng)
        print(
            f"wrote {args.lines:,} lines ({path.stat().st_size / 1e6:.0f} MB) to {path} "
            f"in {time.perf_counter() - t0:.1f}s"
        )
    with open(path, "rb") as handle:  # counting also warms the page cache for both readers
        n_lines = sum(1 for _ in handle)

    mtail = shutil.which("mtail")
    ours: list[tuple[float, float]] = []
    gated: list[tuple[float, float]] = []
    theirs: list[tuple[float, float]] = []
    for _ in range(args.repeat):  # interleaved, so all see the same machine load
        wall, cpu, lines, hist_count = run_exporter(path, profile)
        assert lines == n_lines and hist_count == n_lines, (lines, hist_count, n_lines)
        ours.append((wall, cpu))
        wall, cpu, lines, hist_count = run_exporter(path, profile, gating=True)
        assert lines == n_lines and hist_count == n_lines, (lines, hist_count, n_lines)
        gated.append((wall, cpu))
        if mtail:
            wall, cpu, count = run_mtail(mtail, path)
            assert count == n_lines, f"mtail counted {count} of {n_lines} lines"
            theirs.append((wall, cpu))

    def rates(runs: list[tuple[float, float]]) -> tuple[float, float]:
        return (
            n_lines / statistics.median(w for w, _ in runs),
            n_lines / statistics.median(c for _, c in runs),
        )

    our_wall, our_cpu = rates(ours)
    print(f"{'reader':<44} {'lines/s (wall)':>15} {'lines/s per CPU-s':>18}")
    print(
        f"{'exporter (10 features, latency, class, ts)':<44} {our_wall:>15,.0f} {our_cpu:>18,.0f}"
    )
    g_wall, g_cpu = rates(gated)
    print(f"{'exporter, version gating (registry)':<44} {g_wall:>15,.0f} {g_cpu:>18,.0f}")
    if theirs:
        m_wall, m_cpu = rates(theirs)
        print(f"{'mtail 3.0.0~rc50 (latency only)':<44} {m_wall:>15,.0f} {m_cpu:>18,.0f}")
        print(
            f"{'ratio exporter / mtail':<44} {our_wall / m_wall:>14.2f}x {our_cpu / m_cpu:>17.2f}x"
        )
    else:
        print("mtail not found on PATH (apt-get install mtail): no peer figure")
    print(f"medians of {args.repeat} runs, {n_lines:,} lines, {os.cpu_count()} CPUs")
    if not args.keep and not args.file:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
