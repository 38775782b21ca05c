"""Drift verdict calibration: false alarms, detection, blind spots; four rules side by side.

    python bench/bench_calibration.py            # the figures in docs/benchmarks.md (~5-7 min)
    python bench/bench_calibration.py --quick    # a small run (the CI smoke test)

Streams replay through the exporter's own pass, :func:`exporter.pipeline.compute_snapshot`,
over a sliding window: every pass replaces a tenth of the window with new records, as a
model server's traffic does between two drift passes.  Each stream has 20 numeric features
(five each: normal, log-normal, integer-valued with ties, a point mass at 0 plus a
continuous part; one of each kind has 5% missing values) and 5 categorical ones (two with
10 categories of which 3 are rare, share 0.002 each; three with 5 categories).  The
reference is redrawn for every stream.  Four rules judge the same passes:

* ``bound``: the verdict the exporter ships: the lower confidence bound of the KS distance
  or total variation (or of the missing share's rise) reaches the tolerance, 0.05, at the
  level drift.false_alarm_budget gives;
* ``old``: the verdict before it: the KS (numeric) or chi-squared (categorical) p-value below
  0.05 *and* PSI >= 0.2 (``combine: all``);
* ``ks``: the p-value alone below 0.05;
* ``psi``: PSI >= 0.2 alone.

Tables: false alarms per 10,000 passes on streams that never drift (all features, summed),
at two budgets (1 and 100 expected false verdicts per 10,000 passes); detection rate and
delay of seven changes; the smallest mean shift each window size flags in 95% of passes;
and the pass time next to the pass before this verdict (run from ``--baseline`` when the
checkout has that commit).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exporter.pipeline import DriftSettings, Snapshot, WindowData, compute_snapshot
from mlops_core.drift import evaluate_drift
from mlops_core.profile import ReferenceProfile

REPO = Path(__file__).resolve().parent.parent
#: the commit before the bound verdict: its pass is the "today" of the pass-time row
BASELINE_COMMIT = "db7022b"
INTERVAL = 30.0
PASSES_PER_WINDOW = 10  # a tenth of the window is replaced each pass
NUMERIC_KINDS = ("normal", "lognormal", "integer", "pointmass")
RARE = 0.002
CATS10 = np.array([f"k{i}" for i in range(10)])
P10 = np.array([0.25, 0.2, 0.15, 0.12, 0.1, 0.09, 0.084, RARE, RARE, RARE])
CATS5 = np.array([f"v{i}" for i in range(5)])
P5 = np.full(5, 0.2)
RULES = ("bound", "old", "ks", "psi")


@dataclass(frozen=True)
class Change:
    """A change of one feature's distribution, applied to the records drawn after it."""

    name: str
    feature: str
    window: int
    what: str


CHANGES = (
    Change("mean +0.3 sd", "num_normal_0", 10_000, "shift:0.3"),
    Change("mean +0.5 sd", "num_normal_0", 1_000, "shift:0.5"),
    Change("scale x1.75", "num_normal_0", 10_000, "scale:1.75"),
    Change("point mass 0 -> -1 (30%)", "num_pointmass_0", 10_000, "pointmass"),
    Change("categories, TV 0.15", "cat_2", 10_000, "tv015"),
    Change("new category, 15%", "cat_3", 10_000, "newcat"),
    Change("20% of records null", "num_normal_1", 10_000, "null:0.2"),
)


def feature_names() -> dict[str, str]:
    names = {f"num_{kind}_{i}": "numeric" for kind in NUMERIC_KINDS for i in range(5)}
    names.update({f"cat_{i}": "categorical" for i in range(5)})
    return names


FEATURES = feature_names()


def draw(name: str, n: int, rng: np.random.Generator, change: str | None = None) -> np.ndarray:
    """``n`` values of a feature (numeric: NaN for missing; categorical: '' for missing)."""
    if name.startswith("cat_"):
        index = int(name[-1])
        cats, p = (CATS10, P10) if index < 2 else (CATS5, P5)
        p = p / p.sum()
        if change == "tv015":
            p = np.array([0.35, 0.2, 0.2, 0.125, 0.125])
        if change == "newcat":
            cats, p = np.append(cats, "new"), np.append(p * 0.85, 0.15)
        return rng.choice(cats, n, p=p).astype("<U8")
    kind, index = name.split("_")[1], int(name.split("_")[2])
    if kind == "normal":
        values = rng.normal(0.0, 1.0, n)
    elif kind == "lognormal":
        values = rng.lognormal(0.0, 0.6, n)
    elif kind == "integer":
        values = rng.poisson(3.0, n).astype(np.float64)
    else:  # 30% exactly 0, the rest continuous
        values = np.where(rng.random(n) < 0.3, 0.0, rng.normal(2.0, 1.0, n))
        if change == "pointmass":
            values[values == 0.0] = -1.0
    if change and change.startswith("shift:"):
        values = values + float(change.split(":")[1])
    if change and change.startswith("scale:"):
        values = values * float(change.split(":")[1])
    missing = 0.05 if index == 4 else 0.0
    if change and change.startswith("null:"):
        missing += float(change.split(":")[1])
    if missing:
        values[rng.random(n) < missing] = np.nan
    return values


class Stream:
    """A reference and a sliding window of records, as the exporter's window holds them."""

    def __init__(self, window: int, reference_rows: int, rng: np.random.Generator) -> None:
        self.rng = rng
        self.window = window
        self.step = max(1, window // PASSES_PER_WINDOW)
        self.profile = ReferenceProfile.from_data(
            {name: draw(name, reference_rows, rng) for name in FEATURES}, FEATURES
        )
        self.columns = {name: draw(name, window, rng) for name in FEATURES}
        self.position = 0
        self.changes: dict[str, str] = {}

    def advance(self) -> None:
        start, stop = self.position, self.position + self.step
        for name, column in self.columns.items():
            fresh = draw(name, self.step, self.rng, self.changes.get(name))
            column[start:stop] = fresh[: stop - start] if stop <= self.window else fresh
        self.position = stop % self.window

    def data(self) -> WindowData:
        values, missing = {}, {}
        for name, column in self.columns.items():
            if column.dtype.kind == "U":
                present = column[column != ""]
            else:
                present = column[~np.isnan(column)]
            values[name] = present
            missing[name] = 1.0 - present.size / self.window
        return WindowData(self.window, values, missing, np.array([]))


def old_rule(f) -> bool:
    p = f.ks_p_value if f.kind == "numeric" else f.chi2_p_value
    return p is not None and p < 0.05 and f.psi is not None and f.psi >= 0.2


def verdicts(snap: Snapshot, level_b: float) -> dict[str, dict[str, bool]]:
    """feature -> rule -> flagged, for the four rules (``bound_b``: the bound at level_b)."""
    out = {}
    for f in snap.features:
        p = f.ks_p_value if f.kind == "numeric" else f.chi2_p_value
        out[f.name] = {
            "bound": f.drifted,
            "bound_b": f.p_value <= level_b,
            "old": old_rule(f),
            "ks": p is not None and p < 0.05,
            "psi": f.psi is not None and f.psi >= 0.2,
        }
    return out


# --- false alarms --------------------------------------------------------------------------------


def false_alarms(
    window: int, streams: int, passes: int, reference_rows: int, seed: int
) -> dict[str, list[int]]:
    """Per rule, false feature verdicts of each no-drift stream."""
    budget_a = INTERVAL * 10_000  # 1 expected false verdict per 10,000 passes
    budget_b = INTERVAL * 100  # 100 per 10,000 passes
    settings = DriftSettings(interval=INTERVAL, false_alarm_budget=budget_a)
    level_b = DriftSettings(interval=INTERVAL, false_alarm_budget=budget_b).level(len(FEATURES))
    counts: dict[str, list[int]] = {rule: [] for rule in (*RULES, "bound_b")}
    for s in range(streams):
        stream = Stream(window, reference_rows, np.random.default_rng([seed, window, s]))
        per_rule = dict.fromkeys(counts, 0)
        for _ in range(passes):
            stream.advance()
            snap = compute_snapshot(stream.data(), stream.profile, FEATURES, settings)
            for flags in verdicts(snap, level_b).values():
                for rule, flag in flags.items():
                    per_rule[rule] += flag
        for rule, value in per_rule.items():
            counts[rule].append(value)
    return counts


# --- detection -------------------------------------------------------------------------------


def detection(
    change: Change, streams: int, full_passes: int, reference_rows: int, seed: int
) -> dict[str, tuple[float, float | None]]:
    """rule -> (share of passes flagged once the window is all post-change data, median
    passes until the first flag)."""
    settings = DriftSettings(interval=INTERVAL)  # the shipped default budget, 30 days
    level_b = settings.level(len(FEATURES))
    flagged: dict[str, list[bool]] = {rule: [] for rule in RULES}
    first: dict[str, list[int]] = {rule: [] for rule in RULES}
    for s in range(streams):
        stream = Stream(change.window, reference_rows, np.random.default_rng([seed, 7, s]))
        stream.changes[change.feature] = change.what
        seen: dict[str, int | None] = dict.fromkeys(RULES)
        for t in range(1, PASSES_PER_WINDOW + full_passes + 1):
            stream.advance()
            snap = compute_snapshot(stream.data(), stream.profile, FEATURES, settings)
            flags = verdicts(snap, level_b).get(change.feature, dict.fromkeys(RULES, False))
            for rule in RULES:
                if flags[rule] and seen[rule] is None:
                    seen[rule] = t
                if t > PASSES_PER_WINDOW:
                    flagged[rule].append(bool(flags[rule]))
        for rule in RULES:
            if seen[rule] is not None:
                first[rule].append(int(seen[rule]))  # type: ignore[arg-type]
    return {
        rule: (
            float(np.mean(flagged[rule])),
            float(statistics.median(first[rule])) if len(first[rule]) == streams else None,
        )
        for rule in RULES
    }


def smallest_shift(window: int, reference_rows: int, trials: int, seed: int) -> float | None:
    """Smallest mean shift (in sd) of a normal feature flagged in >= 95% of windows."""
    level = DriftSettings(interval=INTERVAL).level(len(FEATURES))
    rng = np.random.default_rng([seed, window])
    grid = [0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.5]
    for shift in grid:
        hits = 0
        for _ in range(trials):
            ref = {"x": rng.normal(0.0, 1.0, reference_rows)}
            cur = {"x": rng.normal(shift, 1.0, window)}
            report = evaluate_drift(ref, cur, ["x"], level=level, fallback=False, tests=())
            hits += report.features["x"].drifted
        if hits >= 0.95 * trials:
            return shift
    return None


# --- pass time -------------------------------------------------------------------------------


def pipeline_pass_time(tree: Path, repeat: int) -> float | None:
    """Median seconds of bench/bench_pipeline.py's pass (50 features, 10k window) in ``tree``:
    the same script and data for both trees, so the two figures compare like with like."""
    proc = subprocess.run(
        [sys.executable, str(tree / "bench" / "bench_pipeline.py"), "--repeat", str(repeat)],
        capture_output=True, text=True, check=False, cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    for line in proc.stdout.splitlines():
        if line.startswith("exporter compute_snapshot"):  # name, median ms, min ms
            return float(line.split()[2]) / 1000.0
    return None


def baseline_pass_time(commit: str, repeat: int) -> float | None:
    """The same pass at ``commit``, from a temporary git worktree, or None."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "baseline"
        added = subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), commit],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if added.returncode != 0:
            return None
        try:
            return pipeline_pass_time(tree, repeat)
        finally:
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)],
                capture_output=True, check=False,
            )  # fmt: skip


# --- output ----------------------------------------------------------------------------------


def per_10k(counts: list[int], passes: int) -> str:
    total = sum(counts) * 10_000 / (passes * len(counts))
    rates = [c * 10_000 / passes for c in counts]
    return f"{total:.1f} [{min(rates):.0f}-{max(rates):.0f}]"


def poisson_interval_per_10k(counts: list[int], passes: int) -> str:
    """Exact (Garwood) 95% interval of the rate per 10,000 passes, all streams pooled.

    The streams are independent (each redraws its reference), so their total count is a
    sum of independent counts; within a stream the passes overlap and are not, which makes
    this interval a guide rather than exact.  With no false verdict in 10,000 passes its
    upper end is 3.7.
    """
    from scipy.stats import chi2

    k, scale = sum(counts), 10_000 / (passes * len(counts))
    low = 0.0 if k == 0 else chi2.ppf(0.025, 2 * k) / 2
    high = chi2.ppf(0.975, 2 * (k + 1)) / 2
    return f"[{low * scale:.1f}, {high * scale:.1f}]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (CI smoke test)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--reference-rows", type=int, default=20_000)
    parser.add_argument("--streams", type=int, help="no-drift streams per window size (10)")
    parser.add_argument("--passes", type=int, help="passes per no-drift stream (1000)")
    parser.add_argument("--baseline", default=BASELINE_COMMIT, help="commit of 'today's pass'")
    parser.add_argument(
        "--only",
        choices=("false-alarms", "detection", "smallest-shift", "pass-time"),
        help="run one table only",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    windows = (200, 1_000) if quick else (200, 1_000, 10_000)
    streams, passes = (2, 20) if quick else (10, 1_000)
    streams, passes = args.streams or streams, args.passes or passes
    reference_rows = 2_000 if quick else args.reference_rows
    report: Callable[[str], None] = print

    report(
        f"# drift verdict calibration ({'quick' if quick else 'full'} run): "
        f"{len(FEATURES)} features, reference {reference_rows} rows, tolerance 0.05, "
        f"{streams} streams x {passes} passes per window size"
    )
    report("")
    if args.only in (None, "false-alarms"):
        false_alarm_table(windows, streams, passes, reference_rows, args.seed, report)
    if args.only in (None, "detection"):
        detection_table(quick, reference_rows, args.seed, report)
    if args.only in (None, "smallest-shift"):
        smallest_shift_table(windows, quick, reference_rows, args.seed, report)
    if args.only in (None, "pass-time"):
        pass_time_table(quick, args.baseline, report)
    return 0


def false_alarm_table(windows, streams, passes, reference_rows, seed, report) -> None:
    report("## False alarms per 10,000 passes, no-drift streams (all features summed)")
    report("total [range over streams]; the bound's expected count is 1 (A) or 100 (B)")
    report("| window | bound A (<=1) | bound B (<=100) | old | ks p<0.05 | psi>=0.2 |")
    report("|---|---|---|---|---|---|")
    intervals = []
    for window in windows:
        counts = false_alarms(window, streams, passes, reference_rows, seed)
        report(
            f"| {window} | {per_10k(counts['bound'], passes)} | "
            f"{per_10k(counts['bound_b'], passes)} | {per_10k(counts['old'], passes)} | "
            f"{per_10k(counts['ks'], passes)} | {per_10k(counts['psi'], passes)} |"
        )
        intervals.append(
            f"{window}: A {poisson_interval_per_10k(counts['bound'], passes)}, "
            f"B {poisson_interval_per_10k(counts['bound_b'], passes)}"
        )
    report("")
    report("95% Poisson interval of the bound's rate per 10,000 passes (streams pooled):")
    report("; ".join(intervals))
    report("")


def detection_table(quick, reference_rows, seed, report) -> None:
    report("## Detection once the window is all post-change data (default budget 30d)")
    report("share of passes flagged, (median passes to the first flag)")
    report("| change | window | bound | old | ks p<0.05 | psi>=0.2 |")
    report("|---|---|---|---|---|---|")
    det_streams, full = (2, 5) if quick else (5, 30)
    for change in CHANGES:
        if quick:
            change = Change(change.name, change.feature, min(change.window, 1_000), change.what)
        got = detection(change, det_streams, full, reference_rows, seed)
        cells = []
        for rule in RULES:
            rate, delay = got[rule]
            cells.append(f"{rate:.0%} ({'-' if delay is None else f'{delay:g}'})")
        report(f"| {change.name} | {change.window} | " + " | ".join(cells) + " |")
    report("")


def smallest_shift_table(windows, quick, reference_rows, seed, report) -> None:
    from scipy.special import ndtr

    report("## Smallest mean shift flagged in 95% of windows (normal feature, default budget)")
    report("| window | shift (sd) | KS distance |")
    report("|---|---|---|")
    trials = 20 if quick else 60
    for window in windows:
        shift = smallest_shift(window, reference_rows, trials, seed)
        if shift is None:
            report(f"| {window} | > 1.5 | - |")
        else:
            report(f"| {window} | {shift:g} | {2 * ndtr(shift / 2) - 1:.3f} |")
    report("")


def pass_time_table(quick, baseline_commit, report) -> None:
    repeat = 3 if quick else 15
    ours = pipeline_pass_time(REPO, repeat)
    baseline = None if quick else baseline_pass_time(baseline_commit, repeat)
    report("## Pass time, 50 features x 10k window (median, bench/bench_pipeline.py)")
    if ours is None:
        report("bound verdict pass: bench/bench_pipeline.py printed no figure")
        return
    report(f"bound verdict pass {ours * 1000:.1f} ms")
    if baseline is None:
        report(f"pass at {baseline_commit}: not measured (quick run or commit not here)")
    else:
        report(
            f"pass at {baseline_commit} {baseline * 1000:.1f} ms; ratio {ours / baseline:.2f}x "
            "(target <= 1.5x)"
        )


if __name__ == "__main__":
    sys.exit(main())
