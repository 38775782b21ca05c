"""The metric catalog: every ``mlops_*`` metric the exporter serves, declared once.

One :class:`MetricSpec` per metric: name, type, help, unit, labels, the collector area that
fills it, and when it is served.  The collectors build their families from it
(:meth:`MetricSpec.family`), ``describe()`` returns it (so prometheus_client's own
``restricted_registry`` serves ``?name[]=``), the metrics table of docs/metrics.md is
generated from it (``python -m exporter.metrics``; ``--check`` fails when the table is
stale), and the tests of the rules, dashboards and runbook check every metric name they
use against :func:`exposed_names`.  Names and help texts follow the Prometheus naming
practices: base units, ``_total`` on counters, ``_ratio`` for 0..1 shares.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)

from exporter import docs_block

Kind = Literal["gauge", "counter", "histogram", "summary"]
_F = TypeVar("_F", bound=Metric)
Area = Literal[
    "drift", "reference", "models", "traffic", "files", "quality", "alerting", "exporter"
]

#: appended to the help of the drift pass's figures
_BG = "Computed in the background every drift.interval; absent until drift.min_samples."


@dataclass(frozen=True)
class MetricSpec:
    """One metric: what it is called, what it means, and which labels it carries."""

    name: str  # without the _total of counters, as prometheus_client's families take it
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    area: Area = "exporter"
    unit: str = ""
    served: str = "always"  # when it is absent: documented in the table

    def family(self) -> Metric:
        """A fresh, empty family of this metric (add samples with ``add_metric``)."""
        labels = list(self.labels)
        if self.kind == "gauge":
            return GaugeMetricFamily(self.name, self.help, labels=labels, unit=self.unit)
        if self.kind == "counter":
            return CounterMetricFamily(self.name, self.help, labels=labels, unit=self.unit)
        if self.kind == "histogram":
            return HistogramMetricFamily(self.name, self.help, labels=labels, unit=self.unit)
        return SummaryMetricFamily(self.name, self.help, labels=labels, unit=self.unit)

    @property
    def series_names(self) -> tuple[str, ...]:
        """The names its samples carry in the text format (``_total``, ``_bucket``, ...)."""
        if self.kind == "counter":
            return (f"{self.name}_total",)
        if self.kind == "histogram":
            return tuple(f"{self.name}{s}" for s in ("_bucket", "_sum", "_count"))
        if self.kind == "summary":
            return (self.name, f"{self.name}_sum", f"{self.name}_count")
        return (self.name,)

    @property
    def exposed_name(self) -> str:
        """The name users query: ``foo_total`` for a counter, the family name otherwise."""
        return f"{self.name}_total" if self.kind == "counter" else self.name


_FL = ("model", "feature")
_M = ("model",)
_MM = ("model", "metric")
_QBG = "Computed every drift.interval; absent until quality.min_samples labelled predictions."
_QSERVED = "with outcomes enabled"

CATALOG: tuple[MetricSpec, ...] = (
    # --- drift: the verdict and its figures -------------------------------------------------
    MetricSpec(
        "mlops_feature_drift_detected", "gauge",
        "1 if the feature drifted by the named verdict, else 0: test=distance (the distance's "
        "lower confidence bound reaches the tolerance) or test=missing (the missing share "
        f"rose by more than the tolerance, with the same confidence). {_BG}",
        ("model", "feature", "test"), "drift",
    ),
    MetricSpec(
        "mlops_feature_drift_distance", "gauge",
        "Observed distance of the window to the reference, in probability units (0..1): KS "
        f"distance (numeric) or total variation (categorical). {_BG}",
        _FL, "drift",
    ),
    MetricSpec(
        "mlops_feature_drift_distance_lower_bound", "gauge",
        "Lower confidence bound of the distance at mlops_drift_test_level; the feature is "
        f"drifted when it reaches mlops_feature_drift_tolerance. {_BG}",
        _FL, "drift",
    ),
    MetricSpec(
        "mlops_feature_drift_tolerance", "gauge",
        "Smallest distance that matters for the feature (drift.tolerance or its features "
        "override), in probability units.",
        _FL, "drift",
    ),
    MetricSpec(
        "mlops_feature_drift_detectable_distance", "gauge",
        "Smallest observed distance the current window would flag: tolerance plus the "
        f"bound's radius at this sample size and level (above 1: nothing can be). {_BG}",
        _FL, "drift",
    ),
    MetricSpec(
        "mlops_drift_test_level", "gauge",
        "Level of each feature's verdict in the last pass: drift.interval / "
        "drift.false_alarm_budget / monitored features (one expected false verdict per "
        "budget period and replica).",
        _M, "drift",
    ),
    MetricSpec(
        "mlops_features_drifted", "gauge",
        f"Number of monitored features drifted by their distance or missing verdict. {_BG}",
        _M, "drift",
    ),
    MetricSpec(
        "mlops_features_drifted_ratio", "gauge",
        f"Drifted features divided by features with a verdict (0..1). {_BG}",
        _M, "drift",
    ),
    MetricSpec(
        "mlops_feature_drift_ks_statistic", "gauge",
        "Two-sample Kolmogorov-Smirnov statistic (0..1) of a numeric feature, window vs "
        f"reference; reported, does not vote. {_BG}",
        _FL, "drift",
    ),
    MetricSpec(
        "mlops_feature_drift_ks_p_value", "gauge",
        "p-value of the KS test; a reported figure that does not vote (it flags negligible "
        f"shifts on large windows). {_BG}",
        _FL, "drift",
    ),
    MetricSpec(
        "mlops_feature_drift_psi", "gauge",
        "Population stability index over the reference buckets; a reported figure that "
        f"does not vote (noisy on small windows). {_BG}",
        _FL, "drift",
    ),
    MetricSpec(
        "mlops_feature_drift_chi2_p_value", "gauge",
        "p-value of the chi-squared test of a categorical feature's categories (Monte Carlo "
        f"on sparse tables); reported, does not vote. {_BG}",
        _FL, "drift",
    ),
    MetricSpec(
        "mlops_feature_missing_ratio", "gauge",
        "Share of predictions in the window whose record lacks the feature or has it null "
        "(0..1), as of the last background pass.",
        _FL, "drift",
    ),
    MetricSpec(
        "mlops_drift_window_samples", "gauge",
        "Predictions in the sliding window used by the last drift computation.",
        _M, "drift", served="after the first pass",
    ),
    MetricSpec(
        "mlops_drift_last_computed_timestamp_seconds", "gauge",
        "Unix time of the last successful drift computation.",
        _M, "drift", "seconds", "after the first pass",
    ),
    MetricSpec(
        "mlops_drift_computation_duration_seconds", "gauge",
        "Wall time the last successful drift and latency computation took.",
        _M, "drift", "seconds", "after the first pass",
    ),
    MetricSpec(
        "mlops_prediction_latency_window_seconds", "summary",
        "Prediction latency over the current drift window (quantiles 0.5, 0.9, 0.95, 0.99, "
        "count and sum of the window), computed in the background every drift.interval.",
        _M, "drift", "seconds", "once the window holds a latency",
    ),
    # --- reference --------------------------------------------------------------------------
    MetricSpec(
        "mlops_reference_info", "gauge",
        "Constant 1, labelled by the sha256 of the loaded reference profile.",
        ("model", "hash"), "reference",
    ),
    MetricSpec(
        "mlops_reference_samples", "gauge", "Rows in the reference data set.", _M, "reference"
    ),
    MetricSpec(
        "mlops_feature_reference_bucket_ratio", "gauge",
        "Reference proportion of each feature bucket (numeric: le-style upper bound; "
        "categorical: the category, __other__ or __unseen__).",
        ("model", "feature", "bucket"), "reference",
    ),
    MetricSpec(
        "mlops_feature_reference_missing_ratio", "gauge",
        "Share of the reference rows that lack the feature (0..1); a rise beyond the "
        "tolerance in the window is drift too.",
        _FL, "reference",
    ),
    # --- models: which version is monitored, and records routed to it ------------------------
    MetricSpec(
        "mlops_model_info", "gauge",
        "Constant 1, labelled by the model version being monitored and the registry stage it "
        "follows (a file reference: the model.version setting or 'unknown', stage 'none').",
        ("model", "version", "stage"), "models",
    ),
    MetricSpec(
        "mlops_model_version_changes", "counter",
        "Times the followed registry stage moved to another version (promote or rollback) "
        "and the exporter switched its reference and started a fresh window.",
        _M, "models",
    ),
    MetricSpec(
        "mlops_reference_poll_errors", "counter",
        "Registry polls that failed, by reason (registry_unreadable, no_version, "
        "no_reference, invalid_reference, unusable_reference, internal_error); the last good "
        "reference stays in use.",
        ("model", "reason"), "models", served="with a registry reference",
    ),
    MetricSpec(
        "mlops_predictions_other_version", "counter",
        "Predictions routed to the model whose model_version is not the monitored one, by "
        "version (the first 10 versions seen, later ones in __other__); not in the window.",
        ("model", "version"), "models", served="once another version is seen",
    ),
    MetricSpec(
        "mlops_log_lines_unrouted", "counter",
        "Prediction and outcome records that matched no model's match: fields (counted, never "
        "judged).",
        (), "models",
    ),
    # --- traffic and latency ----------------------------------------------------------------
    MetricSpec(
        "mlops_feature_bucket_observations", "counter",
        "Observed values per reference bucket (same buckets as PSI; categorical: the "
        "category, __other__ or __unseen__) of the monitored version's predictions, for "
        "fleet-wide drift in PromQL.",
        ("model", "feature", "bucket"), "traffic",
    ),
    MetricSpec(
        "mlops_prediction_latency_seconds", "histogram",
        "Prediction latency as logged by the model server (latency.field), in seconds, of the "
        "monitored version's predictions.",
        _M, "traffic", "seconds",
    ),
    MetricSpec(
        "mlops_predictions", "counter",
        "Predictions routed to the model whose model_version is the monitored one (or absent): "
        "those its window takes; other versions are in mlops_predictions_other_version_total.",
        _M, "traffic",
    ),
    MetricSpec(
        "mlops_prediction_class", "counter",
        "Predictions of the monitored version per predicted class (the first "
        "prediction.max_classes classes seen, later ones in __other__).",
        ("model", "class"), "traffic",
    ),
    # --- log files and ingest ---------------------------------------------------------------
    MetricSpec(
        "mlops_log_lines", "counter",
        "Lines read from the followed logs, logs.paths and outcomes.paths (predictions, other "
        "events and invalid lines; blank lines are not counted); with several models, "
        "model=\"\" (a line is no model's).",
        _M, "files",
    ),
    MetricSpec(
        "mlops_log_lines_invalid", "counter",
        "Lines skipped because they are not a usable prediction record, by reason (model=\"\" "
        "with several models).",
        ("model", "reason"), "files",
    ),
    MetricSpec(
        "mlops_log_lines_other_events", "counter",
        "Valid JSON lines whose event is not 'prediction' (skipped, not invalid; outcome "
        "records are counted here too, and joined with an outcomes: section; model=\"\" with "
        "several models).",
        _M, "files",
    ),
    MetricSpec("mlops_log_bytes_read", "counter", "Bytes read from the prediction logs.",
               (), "files"),
    MetricSpec("mlops_log_rotations", "counter",
               "Log files rotated away (renamed or removed).", (), "files"),
    MetricSpec("mlops_log_truncations", "counter", "Log files truncated in place.", (), "files"),
    MetricSpec("mlops_log_files_watched", "gauge",
               "Log files currently followed (matching logs.paths).", (), "files"),
    MetricSpec("mlops_log_open_errors", "counter",
               "Attempts to open a matching log file that failed (permissions, a file gone "
               "between the glob and the open); each is logged and retried.", (), "files"),
    MetricSpec("mlops_log_files_over_limit", "gauge",
               "Files matching logs.paths not followed because logs.max_files are open.",
               (), "files"),
    # --- model quality: outcomes joined to predictions -----------------------------------------
    MetricSpec(
        "mlops_model_quality", "gauge",
        "Realised quality over the quality window (the last quality.window.max_samples "
        "labelled predictions): classifiers accuracy, balanced_accuracy, precision_macro, "
        "recall_macro, f1_macro, roc_auc, log_loss, brier (the last three when probabilities "
        "are logged); regressors mae, rmse, mape, r2, mean_error. A metric undefined on the "
        f"window is absent. {_QBG}",
        _MM, "quality", served=_QSERVED,
    ),
    MetricSpec(
        "mlops_model_class_quality", "gauge",
        "Per-class precision, recall, f1 and support over the quality window (the first "
        f"prediction.max_classes classes, later ones in __other__). {_QBG}",
        ("model", "class", "metric"), "quality", served=_QSERVED,
    ),
    MetricSpec(
        "mlops_model_quality_reference", "gauge",
        "Reference value of a quality metric: the model's models[i].quality.reference, else "
        "quality.reference, else the metrics the registry stored with its version.",
        _MM, "quality", served="with outcomes and a reference",
    ),
    MetricSpec(
        "mlops_model_quality_degraded", "gauge",
        "1 if the metric is worse than its reference by more than quality.max_drop at the "
        "confidence of quality.false_alarm_budget (a distribution-free bound), else 0; only "
        f"accuracy, balanced_accuracy and brier are judged. {_QBG}",
        _MM, "quality", served="with outcomes and a judged quality.reference",
    ),
    MetricSpec(
        "mlops_model_quality_estimated", "gauge",
        "Quality estimated before labels: accuracy as the mean calibrated probability of the "
        "predicted class over the drift window, or the mean raw probability when the "
        "reference profile has no calibrator (assumes no concept shift). Computed every "
        "drift.interval, from drift.min_samples predictions with a probability.",
        _MM, "quality", served="with outcomes, when probabilities are logged",
    ),
    MetricSpec(
        "mlops_outcome_confusion", "counter",
        "Joined outcomes per predicted and actual class (bounded by prediction.max_classes, "
        "later ones in __other__), for fleet-wide accuracy in PromQL.",
        ("model", "predicted", "actual"), "quality", served="with outcomes, classifiers",
    ),
    MetricSpec(
        "mlops_outcomes_correct", "counter",
        "Joined classifier outcomes whose actual class equals the predicted one: the diagonal "
        "of mlops_outcome_confusion_total, which PromQL cannot select (it cannot compare two "
        "labels of a series); fleet accuracy is its rate over the confusion's. Counted before "
        "classes beyond prediction.max_classes are folded into __other__, so two different "
        "folded classes are no match (a store made before this counter starts at the "
        "diagonal it served).",
        _M, "quality", served="with outcomes, classifiers",
    ),
    MetricSpec(
        "mlops_outcome_abs_error", "summary",
        "Absolute error |predicted - actual| of joined outcomes, as sum and count, for "
        "fleet-wide MAE in PromQL.",
        _M, "quality", served="with outcomes, regressors",
    ),
    MetricSpec(
        "mlops_outcome_squared_error", "summary",
        "Squared error (predicted - actual)^2 of joined outcomes, as sum and count, for "
        "fleet-wide RMSE in PromQL.",
        _M, "quality", served="with outcomes, regressors",
    ),
    MetricSpec(
        "mlops_outcomes", "counter",
        "Outcome records joined to their prediction.", _M, "quality", served=_QSERVED,
    ),
    MetricSpec(
        "mlops_outcomes_unmatched", "counter",
        "Outcome records not joined, by reason: unknown_request (no prediction within "
        "outcomes.early_grace), expired (older than outcomes.max_delay), duplicate (the "
        "first outcome wins), invalid, or evicted (its prediction was evicted unlabelled).",
        ("model", "reason"), "quality", served=_QSERVED,
    ),
    MetricSpec(
        "mlops_outcome_delay_seconds", "histogram",
        "Delay from a prediction to its outcome, in seconds.",
        _M, "quality", "seconds", _QSERVED,
    ),
    MetricSpec(
        "mlops_predictions_awaiting_outcome", "gauge",
        "Predictions kept in outcomes.store waiting for their outcome.",
        _M, "quality", served=_QSERVED,
    ),
    MetricSpec(
        "mlops_predictions_unjoinable", "counter",
        "Prediction records with a request_id that no outcome can join, by reason: duplicate "
        "(the request_id was already known: the first prediction wins) or invalid (an unusable "
        "request_id, no predicted class or value, or an unusable timestamp).",
        ("model", "reason"), "quality", served=_QSERVED,
    ),
    MetricSpec(
        "mlops_predictions_probability_dropped", "counter",
        "Prediction records with a request_id whose logged probability or probabilities were "
        "left out as unusable (not a number in [0, 1], a list, a mapping that does not sum to "
        "1), counted as read (a duplicate of a request included): the record is used without "
        "it, so log loss, Brier, ROC AUC and the estimate lack it. The first few are logged "
        "as prediction_probability_dropped.",
        _M, "quality", served=_QSERVED,
    ),
    MetricSpec(
        "mlops_predictions_evicted", "counter",
        "Pending predictions dropped unlabelled, by reason: max_pending (the oldest beyond "
        "outcomes.max_pending) or expired (no outcome within outcomes.max_delay).",
        ("model", "reason"), "quality", served=_QSERVED,
    ),
    MetricSpec(
        "mlops_quality_window_samples", "gauge",
        "Labelled predictions in the quality window of the last pass.",
        _M, "quality", served=_QSERVED,
    ),
    MetricSpec(
        "mlops_labelled_ratio", "gauge",
        "Share of the predictions read that were joined to an outcome, since the store was "
        "created (0..1): mlops_outcomes_total over the predictions the store took.",
        _M, "quality", served="with outcomes, once a prediction is stored",
    ),
    # --- in-process alerting ----------------------------------------------------------------
    MetricSpec(
        "mlops_alert_notification_failures", "counter",
        "In-process alert deliveries (alerts: section) that failed after all retries.",
        _M, "alerting", served="only with an alerts: section",
    ),
    # --- the exporter itself ----------------------------------------------------------------
    MetricSpec(
        "mlops_drift_computation_errors", "counter",
        "Drift computations that failed; the previous snapshot stays published.",
        _M, "exporter",
    ),
    MetricSpec(
        "mlops_exporter_build_info", "gauge",
        "A metric with a constant '1' value labelled by the exporter's version.",
        ("version",), "exporter",
    ),
)  # fmt: skip

BY_NAME: dict[str, MetricSpec] = {spec.name: spec for spec in CATALOG}


def spec(name: str) -> MetricSpec:
    """The catalog entry of ``name`` (the family name, without ``_total``)."""
    return BY_NAME[name]


def family(name: str) -> Metric:
    """A fresh family of the catalog's metric ``name``."""
    return BY_NAME[name].family()


def gauge(name: str) -> GaugeMetricFamily:
    """A fresh gauge family of ``name``; a name of another type is a programming error."""
    return _typed(name, GaugeMetricFamily)


def counter(name: str) -> CounterMetricFamily:
    return _typed(name, CounterMetricFamily)


def histogram(name: str) -> HistogramMetricFamily:
    return _typed(name, HistogramMetricFamily)


def summary(name: str) -> SummaryMetricFamily:
    return _typed(name, SummaryMetricFamily)


def _typed(name: str, cls: type[_F]) -> _F:
    built = BY_NAME[name].family()
    if not isinstance(built, cls):
        raise TypeError(f"{name} is a {BY_NAME[name].kind} in the catalog, not a {cls.__name__}")
    return built


def of_area(area: Area) -> tuple[MetricSpec, ...]:
    return tuple(s for s in CATALOG if s.area == area)


def exposed_names() -> frozenset[str]:
    """Every series name the exporter may serve (``_total``, ``_bucket``, ``_sum`` ...)."""
    return frozenset(n for s in CATALOG for n in s.series_names)


def describe() -> Iterator[Metric]:
    """Empty families of every metric: what a collector's ``describe()`` returns."""
    for entry in CATALOG:
        yield entry.family()


# --- the docs table ---------------------------------------------------------------------------

DOCS_FILE = Path(__file__).resolve().parent.parent / "docs" / "metrics.md"
_START = "<!-- metrics table: generated by `python -m exporter.metrics`; do not edit -->"
_END = "<!-- end of the generated metrics table -->"


def markdown_table() -> str:
    """The metrics table of docs/metrics.md, one row per catalog entry."""
    rows = ["| Metric | Type | Labels | Served | Meaning |", "|---|---|---|---|---|"]
    for s in CATALOG:
        help_text = s.help.replace(_BG, "").strip().replace("|", "\\|")
        rows.append(
            f"| `{s.exposed_name}` | {s.kind} | {', '.join(s.labels)} | {s.served} | {help_text} |"
        )
    return "\n".join(rows)


def render_docs(text: str) -> str:
    """``text`` (docs/metrics.md) with the block between the markers regenerated."""
    return docs_block.render(text, _START, _END, markdown_table(), DOCS_FILE)


def main(argv: list[str] | None = None) -> int:
    return docs_block.main(
        argv,
        description="Regenerate the metrics table of the docs.",
        default=DOCS_FILE,
        render_docs=render_docs,
        command="python -m exporter.metrics",
    )


if __name__ == "__main__":
    sys.exit(main())
