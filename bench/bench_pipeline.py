"""Drift pass benchmark: 50 features, a 10k-sample window, KS + PSI (chi2 + PSI for categories).

    python bench/bench_pipeline.py [--features 50] [--window 10000] [--repeat 15]

Times :func:`exporter.pipeline.compute_snapshot` (what the scheduler runs every
``drift.interval``) against a 10k-row reference profile, next to the naive peer that tests
the raw reference again on every pass (``scipy.stats.ks_2samp`` on the raw columns, and
``np.histogram``/``np.unique`` bucket counts for PSI), and prints medians and the ratio.
Target: the exporter's pass well under 100 ms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exporter.pipeline import DriftSettings, WindowData, capture, compute_snapshot
from exporter.records import ParsedBatch
from exporter.window import Window
from mlops_core.profile import ReferenceProfile

CATS = np.array([f"c{i}" for i in range(12)])


def make_data(n_features: int, rows: int, rng: np.random.Generator, shift: float = 0.0):
    data: dict[str, np.ndarray] = {}
    n_cat = n_features // 5
    for i in range(n_features - n_cat):
        data[f"num_{i}"] = rng.normal(shift * (i % 2), 1.0, rows)
    for i in range(n_cat):
        data[f"cat_{i}"] = rng.choice(CATS, rows)  # str array, as the window holds them
    return data


def naive_pass(reference: dict[str, np.ndarray], current: dict[str, np.ndarray]) -> None:
    eps = 1e-4
    for name, ref in reference.items():
        cur = current[name]
        if ref.dtype.kind == "f":
            stats.ks_2samp(ref, cur)
            edges = np.quantile(ref, np.linspace(0, 1, 11)[1:-1])
            r = np.bincount(np.searchsorted(edges, ref), minlength=10) / ref.size
            c = np.bincount(np.searchsorted(edges, cur), minlength=10) / cur.size
        else:
            cats, r_counts = np.unique(ref.astype(str), return_counts=True)
            c_counts = np.array([(cur == k).sum() for k in cats])
            stats.chi2_contingency(np.vstack([r_counts, c_counts]), correction=False)
            r, c = r_counts / ref.size, c_counts / cur.size
        r, c = np.maximum(r, eps), np.maximum(c, eps)
        float(np.sum((c - r) * np.log(c / r)))


def real_window(profile, kinds, current, n: int) -> Window:
    """The exporter's ring-buffer Window holding ``current`` (categories as objects)."""
    window = Window(profile, list(kinds), max_samples=n)
    features = {
        name: values if kinds[name] == "numeric" else values.astype(object)
        for name, values in current.items()
    }
    window.add(
        ParsedBatch(
            n_lines=n,
            n_predictions=n,
            timestamps=np.full(n, time.time()),
            latency_seconds=np.full(n, 0.02),
            features=features,
            classes=[None] * n,
        )
    )
    return window


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--window", type=int, default=10_000)
    parser.add_argument("--reference", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    reference = make_data(args.features, args.reference, rng)
    profile = ReferenceProfile.from_data(reference)
    current = make_data(args.features, args.window, rng, shift=0.3)
    kinds = {name: profile[name].kind for name in reference}
    window = WindowData(
        args.window, current, {n: 0.0 for n in kinds}, rng.lognormal(3, 0.5, args.window)
    )
    settings = DriftSettings(tests=("ks", "psi"))

    snap = compute_snapshot(window, profile, kinds, settings)  # warm-up, and a sanity check
    assert len(snap.features) == args.features
    ours = timed(lambda: compute_snapshot(window, profile, kinds, settings), args.repeat)
    real = real_window(profile, kinds, current, args.window)
    full = timed(
        lambda: compute_snapshot(capture(real, kinds), profile, kinds, settings), args.repeat
    )
    peer = timed(lambda: naive_pass(reference, current), max(3, args.repeat // 3))

    m_ours, m_peer, m_full = (statistics.median(t) for t in (ours, peer, full))
    print(
        f"drift pass: {args.features} features ({sum(k == 'numeric' for k in kinds.values())} "
        f"numeric KS+PSI, {sum(k == 'categorical' for k in kinds.values())} categorical "
        f"chi2+PSI), window {args.window}, reference {args.reference} rows"
    )
    print(f"{'':34}{'median ms':>10}{'min ms':>10}")
    print(f"{'exporter compute_snapshot':34}{m_ours * 1e3:10.1f}{min(ours) * 1e3:10.1f}")
    print(f"{'+ copy out of the real Window':34}{m_full * 1e3:10.1f}{min(full) * 1e3:10.1f}")
    print(f"{'naive scipy on raw reference':34}{m_peer * 1e3:10.1f}{min(peer) * 1e3:10.1f}")
    print(
        f"ratio naive / exporter (with the copy): {m_peer / m_full:.1f}x; target < 100 ms: "
        f"{'met' if m_full < 0.1 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
