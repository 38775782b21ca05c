"""The drift and latency pass: window contents + reference profile -> immutable Snapshot.

The scheduler runs :func:`compute_snapshot` every ``drift.interval``; the collector only
reads the resulting :class:`Snapshot`, so a scrape never computes anything.  The pass is
split in two so the ingest thread is blocked only for the copy: :func:`capture` copies the
window's arrays under the window's own lock, :func:`compute_snapshot` does the statistics
on that copy, outside any lock.

The verdict is the library's, :func:`mlops_core.drift.evaluate_drift`, called once per pass
over every monitored feature: a feature is drifted when the lower confidence bound of its
distance to the reference (KS distance or total variation), or of the rise of its missing
share, reaches its tolerance (``drift.tolerance``).  The bounds run at the level that
``drift.false_alarm_budget`` gives (:func:`mlops_core.bounds.level_from_budget`): one
expected false verdict per budget period, over every pass and feature of this replica.
A feature with fewer than ``drift.min_samples`` values present gets no distance verdict,
and one whose window holds fewer rows than that gets none at all: its drift gauges are
absent, not zero.  The KS and chi-squared p-values and PSI are reported; none of them votes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from exporter.typing import FeatureKinds
from mlops_core import bounds
from mlops_core.drift import FeatureDrift, evaluate_drift

if TYPE_CHECKING:
    from exporter.config import DriftConfig, FeatureConfig
    from exporter.window import Window
    from mlops_core.profile import ReferenceProfile

QUANTILES: tuple[float, ...] = (0.5, 0.9, 0.95, 0.99)


@dataclass(frozen=True)
class DriftSettings:
    """The ``drift`` section of the config that the pass needs, in one small value."""

    tests: tuple[str, ...] = ("ks", "psi")
    ks_method: str = "asymp"
    min_samples: int = 100
    interval: float = 30.0
    false_alarm_budget: float = 30 * 86400.0
    tolerance_numeric: float = 0.05
    tolerance_categorical: float = 0.05
    tolerances: Mapping[str, float] = field(default_factory=dict)  # per-feature overrides

    @classmethod
    def from_config(
        cls, drift: DriftConfig, features: Iterable[FeatureConfig] | None = None
    ) -> DriftSettings:
        """From a :class:`~exporter.config.DriftConfig` and the ``features`` section."""
        overrides = {
            f.name: f.tolerance for f in features or () if f.tolerance is not None and f.monitor
        }
        return cls(
            tests=tuple(drift.tests),
            ks_method=drift.ks.method,
            min_samples=drift.min_samples,
            interval=drift.interval,
            false_alarm_budget=drift.false_alarm_budget,
            tolerance_numeric=drift.tolerance.numeric,
            tolerance_categorical=drift.tolerance.categorical,
            tolerances=MappingProxyType(overrides),
        )

    def level(self, tests: int) -> float:
        """Each verdict's level: one expected false verdict per budget over ``tests``."""
        return bounds.level_from_budget(self.interval, self.false_alarm_budget, max(tests, 1))

    def tests_for(self, kind: str) -> tuple[str, ...]:
        """Reported tests run on a feature of ``kind``.

        ``ks`` and ``chi2`` are the two-sample distribution test of numeric and categorical
        features; naming either in ``drift.tests`` runs the one that fits each feature.
        ``psi`` runs on both kinds.
        """
        distribution = "ks" in self.tests or "chi2" in self.tests
        out: list[str] = []
        if distribution:
            out.append("ks" if kind == "numeric" else "chi2")
        if "psi" in self.tests:
            out.append("psi")
        return tuple(out)

    def tolerance_of(self, name: str, kind: str) -> float:
        default = self.tolerance_numeric if kind == "numeric" else self.tolerance_categorical
        return float(self.tolerances.get(name, default))


@dataclass(frozen=True)
class WindowData:
    """A copy of what the pass needs from the window, taken under the window's lock.

    ``values`` holds only the values present (finite numbers, non-null categories); the
    rest of ``samples`` rows lacked the feature.
    """

    samples: int
    values: Mapping[str, np.ndarray]
    missing_ratio: Mapping[str, float]
    latency_seconds: np.ndarray


@dataclass(frozen=True)
class FeatureResult:
    """One feature's published verdict and figures (see :class:`FeatureDrift`)."""

    name: str
    kind: str
    samples: int  # non-missing values of this feature in the window
    tolerance: float = 0.05
    distance: float | None = None  # None: fewer than drift.min_samples values present
    lower_bound: float | None = None
    detectable_distance: float | None = None
    missing_ratio: float = 0.0
    reference_missing_ratio: float = 0.0
    missing_lower_bound: float | None = None
    ks_statistic: float | None = None
    ks_p_value: float | None = None
    chi2_statistic: float | None = None
    chi2_p_value: float | None = None
    psi: float | None = None
    detected: Mapping[str, bool] = field(default_factory=dict)  # "distance"/"missing" -> flag
    drifted: bool = False  # either verdict
    p_value: float = 1.0  # smallest level at which the feature would be flagged
    bucket_counts: tuple[int, ...] = ()  # the window's values per reference bucket
    below_min: int = 0  # numeric: values below the reference's minimum
    above_max: int = 0  # numeric: values above the reference's maximum

    @classmethod
    def from_drift(cls, f: FeatureDrift) -> FeatureResult:
        detected: dict[str, bool] = {}
        if f.distance is not None:
            detected["distance"] = f.distance_drifted
        if f.missing_lower_bound is not None:
            detected["missing"] = f.missing_drifted
        return cls(
            name=f.name,
            kind=f.kind,
            samples=f.n_current,
            tolerance=f.tolerance,
            distance=f.distance,
            lower_bound=f.lower_bound,
            detectable_distance=f.detectable_distance,
            missing_ratio=f.missing_rate,
            reference_missing_ratio=f.reference_missing_rate,
            missing_lower_bound=f.missing_lower_bound,
            ks_statistic=f.ks.statistic if f.ks else None,
            ks_p_value=f.ks.p_value if f.ks else None,
            chi2_statistic=f.chi2.statistic if f.chi2 else None,
            chi2_p_value=f.chi2.p_value if f.chi2 else None,
            psi=f.psi.psi if f.psi else None,
            detected=MappingProxyType(detected),
            drifted=f.drifted,
            p_value=f.p_value,
            bucket_counts=f.bucket_counts,
            below_min=f.below_min,
            above_max=f.above_max,
        )


@dataclass(frozen=True)
class Snapshot:
    """Everything the collector publishes from one pass; never mutated after creation."""

    computed_at: float | None  # unix seconds; None before the first pass
    duration_seconds: float
    window_samples: int
    features: tuple[FeatureResult, ...]  # only features with a verdict (see the module doc)
    missing_ratio: Mapping[str, float]
    latency_quantiles: Mapping[float, float]  # quantile -> seconds; empty with no samples
    monitored: int  # number of monitored features
    level: float | None = None  # each verdict's level in this pass
    latency_count: int = 0  # latencies in the window (the summary's _count)
    latency_sum: float = 0.0  # their sum in seconds (the summary's _sum)

    @property
    def features_drifted(self) -> int:
        return sum(1 for f in self.features if f.drifted)

    @property
    def features_drifted_ratio(self) -> float:
        return self.features_drifted / len(self.features) if self.features else 0.0

    @property
    def drifted_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features if f.drifted)

    @classmethod
    def empty(cls, monitored: int = 0) -> Snapshot:
        """The snapshot served before the first pass: no verdicts, no quantiles."""
        return cls(None, 0.0, 0, (), MappingProxyType({}), MappingProxyType({}), monitored)


def capture(window: Window, features: FeatureKinds) -> WindowData:
    """Copy what the pass needs from the window, all from the same set of predictions.

    ``Window.snapshot()`` evicts expired samples and copies under the window's own lock.
    Categorical values become a fixed-width str array here, which the drift core counts
    in C instead of looping over Python objects.
    """
    snap = window.snapshot()
    values: dict[str, np.ndarray] = {}
    for name, kind in features.items():
        column = snap.values(name)
        values[name] = column if kind == "numeric" else column.astype(str)
    return WindowData(
        samples=int(snap.samples()),
        values=values,
        missing_ratio={name: float(snap.missing_ratio(name)) for name in features},
        latency_seconds=np.asarray(snap.latencies(), dtype=np.float64),
    )


def latency_quantiles(latency_seconds: np.ndarray) -> dict[float, float]:
    """The window's latency quantiles (numpy's default linear interpolation), in seconds."""
    finite = latency_seconds[np.isfinite(latency_seconds)]
    if finite.size == 0:
        return {}
    values = np.quantile(finite, QUANTILES)
    return {q: float(v) for q, v in zip(QUANTILES, values, strict=True)}


def compute_snapshot(
    data: WindowData,
    profile: ReferenceProfile,
    features: FeatureKinds,
    settings: DriftSettings,
    *,
    clock: Callable[[], float] = time.time,
) -> Snapshot:
    """Judge every monitored feature of a window copy in one library call; build a Snapshot."""
    started = time.perf_counter()
    level = settings.level(len(features))
    results: list[FeatureResult] = []
    if features and data.samples >= settings.min_samples:
        current = {name: data.values.get(name, _EMPTY) for name in features}
        report = evaluate_drift(
            profile,
            current,
            list(features),
            level=level,
            tolerances={n: settings.tolerance_of(n, k) for n, k in features.items()},
            tests={kind: settings.tests_for(kind) for kind in ("numeric", "categorical")},
            min_samples=settings.min_samples,
            fallback=False,  # below min_samples the exporter publishes no verdict instead
            missing_counts={n: data.samples - len(current[n]) for n in features},
            ks_method=settings.ks_method,
        )
        results = [
            FeatureResult.from_drift(f)
            for f in report.features.values()
            if f.distance is not None or f.missing_lower_bound is not None
        ]
    missing = {k: v for k, v in data.missing_ratio.items() if not math.isnan(v)}
    latencies = data.latency_seconds[np.isfinite(data.latency_seconds)]
    return Snapshot(
        computed_at=clock(),
        duration_seconds=time.perf_counter() - started,
        window_samples=data.samples,
        features=tuple(results),
        missing_ratio=MappingProxyType(missing if data.samples else {}),
        latency_quantiles=MappingProxyType(latency_quantiles(data.latency_seconds)),
        monitored=len(features),
        level=level,
        latency_count=int(latencies.size),
        latency_sum=float(latencies.sum()),
    )


_EMPTY = np.array([], dtype=np.float64)
