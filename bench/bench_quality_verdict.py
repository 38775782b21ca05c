"""Quality degradation verdict: false alarms over time and detection, against the naive rule.

    python bench/bench_quality_verdict.py            # the figures in docs/benchmarks.md
    python bench/bench_quality_verdict.py --quick    # a small run (the CI smoke test)

Labelled streams replay through the exporter's own quality pass,
:func:`exporter.quality.compute_quality`, over a sliding window of joined pairs: every pass
replaces a tenth of the window with new pairs, as labels arriving between two passes do.
The model is a binary classifier whose prediction is right with probability ``p``; the
reference accuracy is 0.90 and ``quality.max_drop`` 0.05, so the threshold is 0.85.  Two
rules judge the same passes:

* ``bound``: the verdict the exporter ships: the upper Hoeffding bound of the accuracy at
  the level ``quality.false_alarm_budget`` gives is below the threshold;
* ``naive``: the observed accuracy is below the threshold.

Tables: false alarms per 10,000 passes on streams whose true accuracy is the reference
(0.90) or exactly the threshold (0.85, the hardest case a verdict must not call), at two
budgets (level 1.16e-5: 30 s passes and 30 days, one judged metric; and level 0.01, where
the expectation, 100 per 10,000 passes, is large enough to check the count against it);
then, for true accuracies of 0.80, 0.75 and 0.60 once the window is all post-change pairs,
the share of passes called degraded and the passes from the change to the first call.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exporter.outcomes import QualityWindow
from exporter.quality import QualitySettings, compute_quality
from mlops_core import bounds

REFERENCE = 0.90
MAX_DROP = 0.05
THRESHOLD = REFERENCE - MAX_DROP
INTERVAL = 30.0
BUDGET_A = 30 * 86400.0  # the default quality.false_alarm_budget: level 1.16e-5
LEVEL_B = 0.01  # 100 expected false verdicts per 10,000 passes
PASSES_PER_WINDOW = 10
WINDOWS = (30, 100, 1000, 10_000)
NO_FALL = (REFERENCE, THRESHOLD)
FALLS = (0.80, 0.75, 0.60)
CLASSES = np.array(["churn", "stay"], dtype=object)


def window_of(correct: np.ndarray, predicted: np.ndarray) -> QualityWindow:
    """A quality window of binary pairs: ``actual`` is ``predicted`` where ``correct``."""
    n = len(correct)
    other = np.where(predicted == CLASSES[0], CLASSES[1], CLASSES[0])
    actual = np.where(correct, predicted, other).astype(object)
    nan = np.full(n, np.nan)
    return QualityWindow(
        time=np.arange(n, dtype=float),
        delay=np.zeros(n),
        model_version=np.full(n, "1", dtype=object),
        predicted=predicted.astype(object),
        actual=actual,
        predicted_value=nan,
        actual_value=nan,
        probability=nan,
        classes=(),
        probabilities=np.empty((n, 0)),
    )


def settings_at(level: float) -> QualitySettings:
    """Settings whose level (interval / budget, one judged metric) is ``level``."""
    return QualitySettings(
        min_samples=30,
        reference={"accuracy": REFERENCE},
        max_drop=MAX_DROP,
        interval=INTERVAL,
        false_alarm_budget=INTERVAL / level,
    )


class Stream:
    """A sliding window of pairs; ``step()`` replaces a tenth of it with pairs at ``p``."""

    def __init__(self, rng: np.random.Generator, size: int, p: float) -> None:
        self.rng, self.size, self.p = rng, size, p
        self.correct = rng.random(size) < p
        self.predicted = rng.choice(CLASSES, size)

    def step(self, p: float | None = None) -> None:
        k = max(1, self.size // PASSES_PER_WINDOW)
        p = self.p if p is None else p
        self.correct = np.concatenate([self.correct[k:], self.rng.random(k) < p])
        self.predicted = np.concatenate([self.predicted[k:], self.rng.choice(CLASSES, k)])

    def judge(self, settings: QualitySettings) -> tuple[bool, bool]:
        """(bound verdict, naive rule) on the current window, through the exporter's pass."""
        snap = compute_quality(window_of(self.correct, self.predicted), None, settings)
        verdict = snap.verdicts["accuracy"]
        return bool(verdict.degraded), snap.metrics["accuracy"] < THRESHOLD


def false_alarms(
    rng: np.random.Generator, size: int, p: float, passes: int, settings: QualitySettings
) -> tuple[int, int]:
    stream = Stream(rng, size, p)
    bound = naive = 0
    for _ in range(passes):
        stream.step()
        b, n = stream.judge(settings)
        bound += b
        naive += n
    return bound, naive


def detection(
    rng: np.random.Generator, size: int, p: float, passes: int, settings: QualitySettings
) -> tuple[float, int | None]:
    """Share of passes called degraded once the window is all post-change pairs, and the
    passes from the change to the first call (None: never)."""
    stream = Stream(rng, size, REFERENCE)
    first: int | None = None
    called = judged = 0
    for i in range(PASSES_PER_WINDOW + passes):
        stream.step(p)
        degraded, _ = stream.judge(settings)
        if degraded and first is None:
            first = i + 1
        if i >= PASSES_PER_WINDOW:  # the window holds only post-change pairs
            judged += 1
            called += degraded
    return called / judged, first


def per_10k(count: int, passes: int) -> str:
    return f"{count * 10_000 / passes:,.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small run (CI smoke test)")
    parser.add_argument("--passes", type=int, default=None, help="passes per stream")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    passes = args.passes or (40 if args.quick else 5_000)
    windows = WINDOWS[:2] if args.quick else WINDOWS
    rng = np.random.default_rng(args.seed)
    level_a = bounds.level_from_budget(interval=INTERVAL, budget=BUDGET_A, tests=1)
    started = time.perf_counter()

    print(
        f"reference accuracy {REFERENCE}, max_drop {MAX_DROP} (threshold {THRESHOLD}); "
        f"{passes:,} passes per stream, a tenth of the window new each pass, seed {args.seed}"
    )
    print()
    print(
        f"False alarms per 10,000 passes (budget A: level {level_a:.3g}, expected <= "
        f"{level_a * 10_000:.2g}; budget B: level {LEVEL_B}, expected <= "
        f"{LEVEL_B * 10_000:.0f})"
    )
    print("| window | true accuracy | bound, budget A | bound, budget B | naive rule |")
    print("|---|---|---|---|---|")
    for size in windows:
        for p in NO_FALL:
            a, naive = false_alarms(rng, size, p, passes, settings_at(level_a))
            b, _ = false_alarms(rng, size, p, passes, settings_at(LEVEL_B))
            print(
                f"| {size:,} | {p:.2f} | {per_10k(a, passes)} | {per_10k(b, passes)} | "
                f"{per_10k(naive, passes)} |"
            )
    print()
    print(
        f"Detection at budget A (level {level_a:.3g}): share of passes called degraded once "
        "the window is all post-change pairs; passes from the change to the first call"
    )
    print("| window | true accuracy | called | first call after |")
    print("|---|---|---|---|")
    for size in windows:
        for p in FALLS:
            share, first = detection(rng, size, p, max(10, passes // 10), settings_at(level_a))
            after = "never" if first is None else f"{first} passes"
            print(f"| {size:,} | {p:.2f} | {share:.0%} | {after} |")
    print()
    print(f"({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
