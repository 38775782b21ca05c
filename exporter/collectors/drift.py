"""The drift pass's results: the verdict per feature, its figures, and the window's latency.

Everything here comes from one :class:`~exporter.pipeline.Snapshot`; a feature without a
verdict (fewer than ``drift.min_samples`` values) has no sample at all, not a zero.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import Metric

from exporter import metrics
from exporter.pipeline import Snapshot

#: per-feature gauges and the FeatureResult attribute that fills each
_PER_FEATURE = (
    ("mlops_feature_drift_distance", "distance"),
    ("mlops_feature_drift_distance_lower_bound", "lower_bound"),
    ("mlops_feature_drift_tolerance", "tolerance"),
    ("mlops_feature_drift_detectable_distance", "detectable_distance"),
    ("mlops_feature_drift_ks_statistic", "ks_statistic"),
    ("mlops_feature_drift_ks_p_value", "ks_p_value"),
    ("mlops_feature_drift_psi", "psi"),
    ("mlops_feature_drift_chi2_p_value", "chi2_p_value"),
)


class DriftCollector:
    def __init__(self, model: str) -> None:
        self.model = model

    def collect(self, snap: Snapshot) -> Iterator[Metric]:
        yield from self._verdicts(snap)
        yield from self._pass(snap)
        yield from self._latency(snap)

    def _verdicts(self, snap: Snapshot) -> Iterator[Metric]:
        m = self.model
        detected = metrics.gauge("mlops_feature_drift_detected")
        gauges = [(metrics.gauge(name), attribute) for name, attribute in _PER_FEATURE]
        for f in snap.features:
            for test, flag in f.detected.items():
                detected.add_metric([m, f.name, test], 1.0 if flag else 0.0)
            for family, attribute in gauges:
                value = getattr(f, attribute)
                if value is not None:
                    family.add_metric([m, f.name], float(value))
        yield detected
        yield from (family for family, _ in gauges)

        level = metrics.gauge("mlops_drift_test_level")
        if snap.level is not None:
            level.add_metric([m], snap.level)
        drifted = metrics.gauge("mlops_features_drifted")
        ratio = metrics.gauge("mlops_features_drifted_ratio")
        if snap.features:
            drifted.add_metric([m], float(snap.features_drifted))
            ratio.add_metric([m], snap.features_drifted_ratio)
        missing = metrics.gauge("mlops_feature_missing_ratio")
        for name, value in snap.missing_ratio.items():
            missing.add_metric([m, name], value)
        yield from (level, drifted, ratio, missing)

    def _pass(self, snap: Snapshot) -> Iterator[Metric]:
        m = self.model
        samples = metrics.gauge("mlops_drift_window_samples")
        last = metrics.gauge("mlops_drift_last_computed_timestamp_seconds")
        duration = metrics.gauge("mlops_drift_computation_duration_seconds")
        if snap.computed_at is not None:
            samples.add_metric([m], float(snap.window_samples))
            last.add_metric([m], snap.computed_at)
            duration.add_metric([m], snap.duration_seconds)
        yield from (samples, last, duration)

    def _latency(self, snap: Snapshot) -> Iterator[Metric]:
        summary = metrics.summary("mlops_prediction_latency_window_seconds")
        if snap.latency_quantiles:  # quantiles, then _count and _sum, as the formats order them
            name, labels = summary.name, {"model": self.model}
            for q, value in snap.latency_quantiles.items():
                summary.add_sample(name, {**labels, "quantile": str(q)}, value)
            summary.add_sample(f"{name}_count", labels, float(snap.latency_count))
            summary.add_sample(f"{name}_sum", labels, snap.latency_sum)
        yield summary
