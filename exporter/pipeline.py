"""The drift and latency pass: window contents + reference profile -> immutable Snapshot.

The scheduler runs :func:`compute_snapshot` every ``drift.interval``; the collector only
reads the resulting :class:`Snapshot`, so a scrape never computes anything.  The pass is
split in two so the ingest thread is blocked only for the copy: :func:`capture` copies the
window's arrays (call it under the ingest lock), :func:`compute_snapshot` does the
statistics on that copy, outside any lock.

The statistics come from :func:`mlops_core.drift.drift_against_profile` (nothing of the
reference is re-sorted or re-bucketed).  Verdicts: KS and chi-squared flag drift when the
p-value is below their threshold, after the optional multiple-testing ``drift.correction``
over every p-value test of the pass (both feature kinds form one family); PSI when the index
is at or above ``drift.psi.threshold``.  A feature is drifted when ``drift.combine`` of its
tests say so (``all``, the default, or ``any``).  Features with fewer than
``drift.min_samples`` non-missing values in the window get no verdict at all: their drift
gauges are absent, not zero.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
from scipy import stats

from mlops_core import drift as drift_core

QUANTILES: tuple[float, ...] = (0.5, 0.9, 0.95, 0.99)


@dataclass(frozen=True)
class DriftSettings:
    """The ``drift`` section of the config that the pass needs, in one small value."""

    tests: tuple[str, ...] = ("ks", "psi")
    ks_threshold: float = 0.05
    ks_method: str = "asymp"
    chi2_threshold: float = 0.05
    psi_buckets: int = 10
    psi_threshold: float = 0.2
    correction: str = "none"
    combine: str = "all"
    min_samples: int = 100

    @classmethod
    def from_config(cls, drift: Any) -> DriftSettings:
        return cls(
            tests=tuple(drift.tests),
            ks_threshold=drift.ks.threshold,
            ks_method=drift.ks.method,
            chi2_threshold=drift.chi2.threshold,
            psi_buckets=drift.psi.buckets,
            psi_threshold=drift.psi.threshold,
            correction=drift.correction,
            combine=drift.combine,
            min_samples=drift.min_samples,
        )

    def tests_for(self, kind: str) -> tuple[str, ...]:
        """Tests run on a feature of ``kind``.

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


@dataclass(frozen=True)
class WindowData:
    """A copy of what the pass needs from the window, taken under the ingest lock."""

    samples: int
    values: Mapping[str, np.ndarray]
    missing_ratio: Mapping[str, float]
    latency_seconds: np.ndarray


@dataclass(frozen=True)
class FeatureResult:
    name: str
    kind: str
    samples: int  # non-missing values of this feature in the window
    ks_statistic: float | None = None
    ks_p_value: float | None = None
    chi2_statistic: float | None = None
    chi2_p_value: float | None = None
    psi: float | None = None
    detected: Mapping[str, bool] = field(default_factory=dict)  # test -> verdict
    drifted: bool = False  # the tests' verdicts combined by drift.combine


@dataclass(frozen=True)
class Snapshot:
    """Everything the collector publishes from one pass; never mutated after creation."""

    computed_at: float | None  # unix seconds; None before the first pass
    duration_seconds: float
    window_samples: int
    features: tuple[FeatureResult, ...]  # only features with a verdict (>= min_samples)
    missing_ratio: Mapping[str, float]
    latency_quantiles: Mapping[float, float]  # quantile -> seconds; empty with no samples
    monitored: int  # number of monitored features

    @property
    def features_drifted(self) -> int:
        return sum(1 for f in self.features if f.drifted)

    @property
    def features_drifted_ratio(self) -> float:
        return self.features_drifted / len(self.features) if self.features else 0.0

    @classmethod
    def empty(cls, monitored: int = 0) -> Snapshot:
        """The snapshot served before the first pass: no verdicts, no quantiles."""
        return cls(None, 0.0, 0, (), MappingProxyType({}), MappingProxyType({}), monitored)


def capture(window: Any, features: Mapping[str, str]) -> WindowData:
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


def _present(values: np.ndarray, kind: str) -> int:
    """Non-missing values: finite numbers, or categories that are not None/NaN."""
    if kind == "numeric":
        return int(np.count_nonzero(np.isfinite(np.asarray(values, dtype=np.float64))))
    if values.dtype.kind in "US":
        return int(values.size)
    return int(sum(1 for v in values if v is not None and v == v))


def _significant(
    entries: Mapping[str, Mapping[str, Any]], correction: str
) -> dict[tuple[str, str], bool]:
    """(feature, test) -> verdict of every voting p-value test after ``correction``.

    The family is every KS and chi-squared test of the pass, across both feature kinds.
    """
    voting = [
        (name, test, entry[test])
        for name, entry in entries.items()
        for test in entry["tests"]
        if test in ("ks", "chi2") and entry[test].get("votes", True)
    ]
    if not voting:
        return {}
    raw = np.array([r["p_value"] for _, _, r in voting], dtype=np.float64)
    if correction == "bonferroni":
        adjusted = np.minimum(raw * raw.size, 1.0)
    elif correction == "benjamini-hochberg":
        adjusted = stats.false_discovery_control(raw, method="bh")
    else:
        adjusted = raw
    return {
        (name, test): bool(p < r["threshold"])
        for (name, test, r), p in zip(voting, adjusted, strict=True)
    }


def _combine(detected: Mapping[str, bool], combine: str) -> bool:
    if not detected:
        return False
    return all(detected.values()) if combine == "all" else any(detected.values())


def compute_snapshot(
    data: WindowData,
    profile: Any,
    features: Mapping[str, str],
    settings: DriftSettings,
    *,
    clock: Callable[[], float] = time.time,
) -> Snapshot:
    """Run the configured tests on every feature with enough samples; build a Snapshot."""
    started = time.perf_counter()
    thresholds = {
        "ks": settings.ks_threshold,
        "chi2": settings.chi2_threshold,
        "psi": settings.psi_threshold,
    }
    entries: dict[str, dict[str, Any]] = {}
    counts: dict[str, int] = {}
    for kind in ("numeric", "categorical"):
        tests = settings.tests_for(kind)
        current: dict[str, np.ndarray] = {}
        for name, k in features.items():
            values = data.values.get(name)
            if k != kind or values is None or not tests:
                continue
            counts[name] = _present(values, kind)
            if counts[name] >= settings.min_samples:
                current[name] = values
        if current:
            report = drift_core.drift_against_profile(
                profile,
                current,
                list(current),
                list(tests),
                thresholds=thresholds,
                correction="none",  # applied below over both kinds as one family
                psi_min_samples=settings.min_samples,
                ks_method=settings.ks_method,
            )
            entries.update(report["features"])
    significant = _significant(entries, settings.correction)

    results: list[FeatureResult] = []
    for name in features:
        entry = entries.get(name)
        if entry is None:
            continue
        detected: dict[str, bool] = {}
        for test in entry["tests"]:
            res = entry[test]
            if not res.get("votes", True):
                continue
            if test == "psi":
                detected["psi"] = bool(res["drift_detected"])
            else:
                detected[test] = significant[(name, test)]
        ks, chi2, psi = entry.get("ks", {}), entry.get("chi2", {}), entry.get("psi", {})
        results.append(
            FeatureResult(
                name=name,
                kind=entry["kind"],
                samples=int(entry.get("n_current", counts.get(name, 0))),
                ks_statistic=ks.get("statistic"),
                ks_p_value=ks.get("p_value"),
                chi2_statistic=chi2.get("statistic"),
                chi2_p_value=chi2.get("p_value"),
                psi=psi.get("psi", psi.get("statistic")),
                detected=MappingProxyType(detected),
                drifted=_combine(detected, settings.combine),
            )
        )
    missing = {k: v for k, v in data.missing_ratio.items() if not math.isnan(v)}
    return Snapshot(
        computed_at=clock(),
        duration_seconds=time.perf_counter() - started,
        window_samples=data.samples,
        features=tuple(results),
        missing_ratio=MappingProxyType(missing if data.samples else {}),
        latency_quantiles=MappingProxyType(latency_quantiles(data.latency_seconds)),
        monitored=len(features),
    )
