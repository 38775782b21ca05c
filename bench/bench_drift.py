"""Time one drift evaluation against a plain scipy loop and Evidently's DataDriftPreset.

Workload (the issue's): 20 numeric features, 100k reference rows given as a ReferenceProfile,
100k current rows, KS and PSI per feature.  Peers:

* a plain loop of ``scipy.stats.ks_2samp`` over the same raw arrays (KS only);
* Evidently 0.7's ``Report([DataDriftPreset()])`` on the same data as pandas DataFrames,
  run by the Python of a separate virtualenv (bench/.venv-evidently, made by bench/drift.sh),
  because Evidently is never a dependency of this project.

Prints medians of several repeats and the ratios.  Run it with ``bench/drift.sh``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mlops_core.drift import analyze_feature_drift, drift_against_profile  # noqa: E402
from mlops_core.profile import ReferenceProfile  # noqa: E402

SEED = 2026


def make_data(
    features: int, rows: int, step: float
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Normal and lognormal features; feature i is shifted by i * step standard deviations.

    step = 0 is a stable period; step = 0.01 a gradual drift (0 to 0.19 sd over 20
    features), the common case for a monitor: most shifts small, a few large.
    """
    rng = np.random.default_rng(SEED)
    ref: dict[str, np.ndarray] = {}
    cur: dict[str, np.ndarray] = {}
    for i in range(features):
        name = f"f{i:02d}"
        shift = i * step
        if i % 2:
            ref[name] = rng.lognormal(0.0, 0.5, rows)
            cur[name] = rng.lognormal(shift * 0.5, 0.5, rows)
        else:
            ref[name] = rng.normal(0.0, 1.0, rows)
            cur[name] = rng.normal(shift, 1.0, rows)
    return ref, cur


def median_time(fn: Callable[[], object], repeats: int) -> tuple[float, list[float]]:
    fn()  # warm-up: imports, caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def run_evidently(python: str, data_file: Path, repeats: int) -> tuple[float | None, str]:
    if not python or not Path(python).exists():
        return None, "not run: no Evidently environment (bench/drift.sh creates one)"
    child = Path(__file__).with_name("_evidently_drift.py")
    proc = subprocess.run(
        [python, str(child), str(data_file), str(repeats)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
        return None, f"not run: {last}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    label = (
        f"Evidently {result['version']} DataDriftPreset ({result['method']}, "
        f"{len(result['times'])} runs)"
    )
    return statistics.median(result["times"]), label


def run_scenario(args: argparse.Namespace, step: float) -> dict:
    ref, cur = make_data(args.features, args.rows, step)
    names = list(ref)
    start = time.perf_counter()
    profile = ReferenceProfile.from_data(ref)
    _ = profile.hash
    build_s = time.perf_counter() - start

    def ours() -> dict:
        return analyze_feature_drift(profile, cur, names, tests=["ks", "psi"])

    def ours_threads() -> dict:
        return analyze_feature_drift(profile, cur, names, tests=["ks", "psi"], workers=2)

    def ours_raw() -> dict:
        return analyze_feature_drift(ref, cur, names, tests=["ks", "psi"])

    def scipy_loop() -> list:
        return [stats.ks_2samp(ref[n], cur[n]) for n in names]

    report, oracle = ours(), scipy_loop()  # also the warm-up
    assert ours_threads()["features"] == report["features"]
    pairs = [(report["features"][n]["ks"], o) for n, o in zip(names, oracle, strict=True)]
    # interleaved, so the three see the same background load; ratios are taken per round
    times: dict[str, list[float]] = {"ours": [], "threads": [], "raw": [], "scipy": []}
    contenders = (("ours", ours), ("threads", ours_threads), ("raw", ours_raw))
    for _ in range(args.repeats):
        for key, fn in (*contenders, ("scipy", scipy_loop)):
            start = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - start)

    def ratio(key: str) -> float:
        return statistics.median(s / o for s, o in zip(times["scipy"], times[key], strict=True))

    return {
        "ref": ref,
        "cur": cur,
        "build": build_s,
        **{key: statistics.median(values) for key, values in times.items()},
        "ratio": ratio("ours"),
        "ratio_threads": ratio("threads"),
        "d_err": max(abs(k["statistic"] - float(o.statistic)) for k, o in pairs),
        "p_err": max(abs(k["p_value"] - float(o.pvalue)) for k, o in pairs),
        "drifted": report["features_with_drift"],
    }


def exporter_pass(repeats: int) -> float:
    """What the exporter does every few seconds: a window's arrays against a loaded profile."""
    rng = np.random.default_rng(SEED + 1)
    profile = ReferenceProfile.from_data({f"w{i:02d}": rng.normal(size=100_000) for i in range(50)})
    window = {f"w{i:02d}": rng.normal(0.005 * i, 1.0, 10_000) for i in range(50)}
    return median_time(lambda: drift_against_profile(profile, window), repeats)[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--evidently-repeats", type=int, default=3)
    parser.add_argument("--evidently-python", default="", help="python of the Evidently venv")
    args = parser.parse_args()

    scenarios = {"stable (no shift)": 0.0, "gradual drift (0..0.19 sd)": 0.01}
    results = {label: run_scenario(args, step) for label, step in scenarios.items()}

    window_s = exporter_pass(args.repeats)
    gradual = results["gradual drift (0..0.19 sd)"]
    out_dir = ROOT / "bench" / "out"
    out_dir.mkdir(exist_ok=True)
    data_file = out_dir / "drift_data.npz"
    arrays = {f"ref_{n}": v for n, v in gradual["ref"].items()}
    arrays |= {f"cur_{n}": v for n, v in gradual["cur"].items()}
    np.savez(data_file, **arrays)
    t_evidently, evidently_label = run_evidently(
        args.evidently_python, data_file, args.evidently_repeats
    )

    print(
        f"one drift evaluation: {args.features} numeric features, {args.rows} reference rows "
        f"(as a profile) x {args.rows} current rows, KS + PSI; medians of {args.repeats} "
        f"interleaved rounds, ratio = median of the per-round scipy loop / ours; "
        f"python {sys.version.split()[0]}, numpy {np.__version__}"
    )
    print()
    columns = ("mlops_core", "ratio", "2 threads", "ratio", "raw arrays", "scipy loop")
    print(f"{'':28}" + "".join(f"  {c:>10}" for c in columns))
    for label, r in results.items():
        print(
            f"{label:28}  {r['ours'] * 1e3:7.1f} ms  {r['ratio']:9.1f}x  "
            f"{r['threads'] * 1e3:7.1f} ms  {r['ratio_threads']:9.1f}x  "
            f"{r['raw'] * 1e3:7.1f} ms  {r['scipy'] * 1e3:7.1f} ms"
        )
    print()
    if t_evidently is not None:
        print(
            f"{evidently_label}, gradual drift data: {t_evidently * 1e3:.0f} ms, "
            f"{t_evidently / gradual['ours']:.0f}x the mlops_core median"
        )
    else:
        print(f"Evidently DataDriftPreset: {evidently_label}")
    print(
        f"exporter pass (drift_against_profile): 50 features x 10000-value window vs a "
        f"100000-row profile, KS + PSI: {window_s * 1e3:.1f} ms"
    )
    print()
    print("mlops_core = analyze_feature_drift(profile, ...), tests ks+psi, one thread")
    print("2 threads  = the same with workers=2 (features evaluated in 2 threads)")
    print("raw arrays = the same call with the reference as raw arrays (sorted on every call)")
    print("scipy loop = [scipy.stats.ks_2samp(ref[f], cur[f]) for f in features] (KS only)")
    for label, r in results.items():
        print(
            f"{label}: profile build {r['build'] * 1e3:.0f} ms (once); vs scipy max |D diff| "
            f"{r['d_err']:.1e}, max |p diff| {r['p_err']:.1e}; drifted {r['drifted']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
