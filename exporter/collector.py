"""The custom prometheus_client collector: fresh metric families from immutable snapshots.

``collect()`` reads two values that other threads swap in whole: the last drift
:class:`~exporter.pipeline.Snapshot` and ``IngestCounters.snapshot()``.  It builds new
``*MetricFamily`` objects from them on every scrape and computes nothing, so a scrape
costs the same whatever the size of the log or the window.  Label values come only from
the config (model, feature names), the reference profile (bucket labels) and bounded
counters (top classes plus ``__other__``, a fixed set of invalid-line reasons).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from exporter.exposition import Section
from exporter.ingest import IngestSnapshot
from exporter.pipeline import Snapshot

_BG = "Computed in the background every drift.interval; absent until drift.min_samples."


@dataclass(frozen=True)
class ReferenceInfo:
    """What the collector publishes about the reference profile (fixed at start-up)."""

    hash: str
    samples: int
    bucket_labels: Mapping[str, tuple[str, ...]]  # feature -> bucket labels
    bucket_ratios: Mapping[str, tuple[float, ...]]  # feature -> reference proportions
    missing_ratios: Mapping[str, float] = field(default_factory=dict)  # feature -> share

    @classmethod
    def from_profile(cls, profile: Any, features: Sequence[str]) -> ReferenceInfo:
        return cls(
            hash=str(profile.hash),
            samples=int(profile.n_rows),
            bucket_labels={f: tuple(str(b) for b in profile[f].bucket_labels) for f in features},
            bucket_ratios={
                f: tuple(float(r) for r in profile[f].ref_proportions) for f in features
            },
            missing_ratios={f: _missing_share(profile[f]) for f in features},
        )


class MlopsCollector(Collector):
    """Yields every ``mlops_*`` metric of the exporter from the current snapshots."""

    def __init__(
        self,
        model: str,
        reference: ReferenceInfo,
        snapshot: Callable[[], Snapshot],
        counters: Callable[[], IngestSnapshot],
        *,
        errors: Callable[[], int] = lambda: 0,
        alert_failures: Callable[[], int] | None = None,
        version: str = "unknown",
    ) -> None:
        self._model = model
        self._reference = reference
        self._snapshot = snapshot
        self._counters = counters
        self._errors = errors
        self._alert_failures = alert_failures
        self._version = version

    def describe(self) -> list[Metric]:
        # Returning nothing keeps registration from calling collect() at start-up.
        return []

    def collect(self) -> Iterator[Metric]:
        for _, build in self.sections():
            yield from build()

    def sections(self) -> list[Section]:
        """The families in three parts, each with the object it derives from.

        The reference part never changes, the drift part changes when the scheduler swaps
        in a new snapshot, the live part (counters) on every scrape; the key lets
        :class:`~exporter.exposition.MetricsRenderer` reuse an encoding while its source
        object is the same.
        """
        snap = self._snapshot()
        return [
            (self._reference, self._static),
            (snap, lambda: self._drift(snap)),
            (None, lambda: self._live(self._counters())),
        ]

    def _static(self) -> Iterator[Metric]:
        yield from self._reference_metrics()
        build = GaugeMetricFamily(
            "mlops_exporter_build_info",
            "A metric with a constant '1' value labelled by the exporter's version.",
            labels=["version"],
        )
        build.add_metric([self._version], 1.0)
        yield build

    def _live(self, counters: IngestSnapshot) -> Iterator[Metric]:
        yield self._per_model(
            CounterMetricFamily,
            "mlops_drift_computation_errors",
            "Drift computations that failed; the previous snapshot stays published.",
            self._errors(),
        )
        if self._alert_failures is not None:
            yield self._per_model(
                CounterMetricFamily,
                "mlops_alert_notification_failures",
                "In-process alert deliveries (alerts: section) that failed after all retries.",
                self._alert_failures(),
            )
        yield from self._traffic(counters)

    def _per_model(
        self,
        family: type[GaugeMetricFamily | CounterMetricFamily],
        name: str,
        documentation: str,
        value: float,
    ) -> Metric:
        """A family with the one sample ``{model="..."} value``."""
        metric = family(name, documentation, labels=["model"])
        metric.add_metric([self._model], float(value))
        return metric

    # --- drift --------------------------------------------------------------------------------

    def _drift(self, snap: Snapshot) -> Iterator[Metric]:
        m = self._model
        fl = ["model", "feature"]
        ks_stat = GaugeMetricFamily(
            "mlops_feature_drift_ks_statistic",
            "Two-sample Kolmogorov-Smirnov statistic (0..1) of a numeric feature, window vs "
            f"reference. {_BG}",
            labels=fl,
        )
        ks_p = GaugeMetricFamily(
            "mlops_feature_drift_ks_p_value",
            f"p-value of the KS test; small means the window differs from the reference. {_BG}",
            labels=fl,
        )
        psi = GaugeMetricFamily(
            "mlops_feature_drift_psi",
            "Population stability index over the reference buckets (above 0.2 is usually "
            f"significant drift). {_BG}",
            labels=fl,
        )
        chi2_p = GaugeMetricFamily(
            "mlops_feature_drift_chi2_p_value",
            f"p-value of the chi-squared test of a categorical feature's categories. {_BG}",
            labels=fl,
        )
        detected = GaugeMetricFamily(
            "mlops_feature_drift_detected",
            "1 if the feature drifted by the named verdict, else 0: test=distance (the "
            "distance's lower confidence bound reaches the tolerance) or test=missing (the "
            f"missing share rose by more than the tolerance, with the same confidence). {_BG}",
            labels=["model", "feature", "test"],
        )
        distance = GaugeMetricFamily(
            "mlops_feature_drift_distance",
            "Observed distance of the window to the reference, in probability units (0..1): "
            f"KS distance (numeric) or total variation (categorical). {_BG}",
            labels=fl,
        )
        lower = GaugeMetricFamily(
            "mlops_feature_drift_distance_lower_bound",
            "Lower confidence bound of the distance at mlops_drift_test_level; the feature is "
            f"drifted when it reaches mlops_feature_drift_tolerance. {_BG}",
            labels=fl,
        )
        tolerance = GaugeMetricFamily(
            "mlops_feature_drift_tolerance",
            "Smallest distance that matters for the feature (drift.tolerance or its "
            "features override), in probability units.",
            labels=fl,
        )
        detectable = GaugeMetricFamily(
            "mlops_feature_drift_detectable_distance",
            "Smallest observed distance the current window would flag: tolerance plus the "
            f"bound's radius at this sample size and level (above 1: nothing can be). {_BG}",
            labels=fl,
        )
        for f in snap.features:
            tolerance.add_metric([m, f.name], f.tolerance)
            if f.distance is not None:
                distance.add_metric([m, f.name], f.distance)
            if f.lower_bound is not None:
                lower.add_metric([m, f.name], f.lower_bound)
            if f.detectable_distance is not None:
                detectable.add_metric([m, f.name], f.detectable_distance)
            if f.ks_statistic is not None:
                ks_stat.add_metric([m, f.name], f.ks_statistic)
            if f.ks_p_value is not None:
                ks_p.add_metric([m, f.name], f.ks_p_value)
            if f.psi is not None:
                psi.add_metric([m, f.name], f.psi)
            if f.chi2_p_value is not None:
                chi2_p.add_metric([m, f.name], f.chi2_p_value)
            for test, flag in f.detected.items():
                detected.add_metric([m, f.name, test], 1.0 if flag else 0.0)
        yield from (ks_stat, ks_p, psi, chi2_p, detected)
        yield from (distance, lower, tolerance, detectable)

        level = GaugeMetricFamily(
            "mlops_drift_test_level",
            "Level of each feature's verdict in the last pass: drift.interval / "
            "drift.false_alarm_budget / monitored features (one expected false verdict per "
            "budget period and replica).",
            labels=["model"],
        )
        if snap.level is not None:
            level.add_metric([m], snap.level)
        yield level

        drifted = GaugeMetricFamily(
            "mlops_features_drifted",
            f"Number of monitored features drifted by their distance or missing verdict. {_BG}",
            labels=["model"],
        )
        ratio = GaugeMetricFamily(
            "mlops_features_drifted_ratio",
            f"Drifted features divided by features with a verdict (0..1). {_BG}",
            labels=["model"],
        )
        if snap.features:
            drifted.add_metric([m], float(snap.features_drifted))
            ratio.add_metric([m], snap.features_drifted_ratio)
        yield from (drifted, ratio)

        missing = GaugeMetricFamily(
            "mlops_feature_missing_ratio",
            "Share of predictions in the window whose record lacks the feature or has it null "
            "(0..1), as of the last background pass.",
            labels=fl,
        )
        for name, value in snap.missing_ratio.items():
            missing.add_metric([m, name], value)
        yield missing

        samples = GaugeMetricFamily(
            "mlops_drift_window_samples",
            "Predictions in the sliding window used by the last drift computation.",
            labels=["model"],
        )
        last = GaugeMetricFamily(
            "mlops_drift_last_computed_timestamp_seconds",
            "Unix time of the last successful drift computation.",
            labels=["model"],
        )
        duration = GaugeMetricFamily(
            "mlops_drift_computation_duration_seconds",
            "Wall time the last successful drift and latency computation took.",
            labels=["model"],
        )
        if snap.computed_at is not None:
            samples.add_metric([m], float(snap.window_samples))
            last.add_metric([m], snap.computed_at)
            duration.add_metric([m], snap.duration_seconds)
        yield from (samples, last, duration)

        quantiles = GaugeMetricFamily(
            "mlops_prediction_latency_window_seconds",
            "Prediction latency quantiles over the current window, computed in the background "
            "every drift.interval.",
            labels=["model", "quantile"],
        )
        for q, value in snap.latency_quantiles.items():
            quantiles.add_metric([m, str(q)], value)
        yield quantiles

    def _reference_metrics(self) -> Iterator[Metric]:
        m, ref = self._model, self._reference
        info = GaugeMetricFamily(
            "mlops_reference_info",
            "Constant 1, labelled by the sha256 of the loaded reference profile.",
            labels=["model", "hash"],
        )
        info.add_metric([m, ref.hash], 1.0)
        samples = self._per_model(
            GaugeMetricFamily,
            "mlops_reference_samples",
            "Rows in the reference data set.",
            ref.samples,
        )
        ratio = GaugeMetricFamily(
            "mlops_feature_reference_bucket_ratio",
            "Reference proportion of each feature bucket (numeric: le-style upper bound; "
            "categorical: the category, __other__ or __unseen__).",
            labels=["model", "feature", "bucket"],
        )
        for feature, labels in ref.bucket_labels.items():
            for bucket, value in zip(labels, ref.bucket_ratios[feature], strict=True):
                ratio.add_metric([m, feature, bucket], value)
        missing = GaugeMetricFamily(
            "mlops_feature_reference_missing_ratio",
            "Share of the reference rows that lack the feature (0..1); a rise beyond the "
            "tolerance in the window is drift too.",
            labels=["model", "feature"],
        )
        for feature, value in ref.missing_ratios.items():
            missing.add_metric([m, feature], value)
        yield from (info, samples, ratio, missing)

    # --- traffic and the exporter itself ------------------------------------------------------

    def _traffic(self, c: IngestSnapshot) -> Iterator[Metric]:
        m = self._model
        buckets = CounterMetricFamily(
            "mlops_feature_bucket_observations",
            "Observed values per reference bucket (same buckets as PSI; categorical: the "
            "category, __other__ or __unseen__), for fleet-wide drift in PromQL.",
            labels=["model", "feature", "bucket"],
        )
        for feature, labels in c.bucket_labels.items():
            for bucket, value in zip(labels, c.bucket_observations[feature].tolist(), strict=True):
                buckets.add_metric([m, feature, bucket], float(value))
        yield buckets

        hist = HistogramMetricFamily(
            "mlops_prediction_latency_seconds",
            "Prediction latency as logged by the model server (latency.field), in seconds.",
            labels=["model"],
        )
        cumulative = c.latency_bucket_counts.tolist()
        pairs = [
            (_le(b), float(v))
            for b, v in zip(c.latency_bucket_bounds, cumulative[:-1], strict=True)
        ]
        pairs.append(("+Inf", float(cumulative[-1])))
        hist.add_metric([m], pairs, float(c.latency_sum))
        yield hist

        predictions = self._per_model(
            CounterMetricFamily,
            "mlops_predictions",
            "Prediction records read from the logs.",
            c.predictions_total,
        )
        classes = CounterMetricFamily(
            "mlops_prediction_class",
            "Predictions per predicted class (the first prediction.max_classes classes seen, "
            "later ones in __other__).",
            labels=["model", "class"],
        )
        for cls, value in sorted(c.class_counts.items()):
            classes.add_metric([m, cls], float(value))
        yield from (predictions, classes)

        lines = self._per_model(
            CounterMetricFamily,
            "mlops_log_lines",
            "Lines read from the prediction logs (predictions, other events and invalid lines).",
            c.lines_total,
        )
        invalid = CounterMetricFamily(
            "mlops_log_lines_invalid",
            "Lines skipped because they are not a usable prediction record, by reason.",
            labels=["model", "reason"],
        )
        for reason, value in sorted(c.invalid_total.items()):
            invalid.add_metric([m, reason], float(value))
        other = self._per_model(
            CounterMetricFamily,
            "mlops_log_lines_other_events",
            "Valid JSON lines whose event is not 'prediction' (skipped, not invalid).",
            c.other_events_total,
        )
        yield from (lines, invalid, other)

        for name, value, help_text in (
            ("mlops_log_bytes_read", c.bytes_read, "Bytes read from the prediction logs."),
            ("mlops_log_rotations", c.rotations, "Log files rotated away (renamed or removed)."),
            ("mlops_log_truncations", c.truncations, "Log files truncated in place."),
        ):
            family = CounterMetricFamily(name, help_text)
            family.add_metric([], float(value))
            yield family
        watched = GaugeMetricFamily(
            "mlops_log_files_watched", "Log files currently followed (matching logs.paths)."
        )
        watched.add_metric([], float(c.files_watched))
        yield watched
        over_limit = GaugeMetricFamily(
            "mlops_log_files_over_limit",
            "Files matching logs.paths not followed because logs.max_files are open.",
        )
        over_limit.add_metric([], float(c.files_over_limit))
        yield over_limit


def _le(bound: Any) -> str:
    return floatToGoString(float(bound))


def _missing_share(feature: Any) -> float:
    rows = int(feature.n) + int(feature.n_missing)
    return float(feature.n_missing) / rows if rows else 0.0
