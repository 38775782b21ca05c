"""Model quality: outcomes joined to predictions, the metrics on them, the verdict, the estimate.

Served only with an ``outcomes:`` section.  Two sources, two parts:

- :meth:`QualityCollector.collect_pass`: the :class:`~exporter.quality.QualitySnapshot` of
  the last quality pass (metrics, per-class figures, verdicts, the estimate, the window's
  size).  A figure below ``quality.min_samples`` pairs is absent, not zero.
- :meth:`QualityCollector.collect_counters`: the outcome store's counters
  (:class:`~exporter.outcomes.OutcomeStats`), as the database holds them: they are
  committed before the offsets checkpoint that covers their lines, and replayed lines change
  nothing, so they are exact across a SIGKILL and never go down.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import Metric
from prometheus_client.utils import floatToGoString

from exporter import metrics
from exporter.outcomes import OutcomeStats
from exporter.quality import QualitySnapshot

#: per-class figures, in the order of the metric label values
_CLASS_FIGURES = ("precision", "recall", "f1", "support")


class QualityCollector:
    def __init__(self, model: str) -> None:
        self.model = model

    def collect_pass(self, snap: QualitySnapshot) -> Iterator[Metric]:
        m = self.model
        realised = metrics.gauge("mlops_model_quality")
        for name, value in snap.metrics.items():
            realised.add_metric([m, name], value)
        per_class = metrics.gauge("mlops_model_class_quality")
        for cls, figures in sorted(snap.class_metrics.items()):
            for figure in _CLASS_FIGURES:
                per_class.add_metric([m, cls, figure], float(figures[figure]))
        yield from (realised, per_class)

        reference = metrics.gauge("mlops_model_quality_reference")
        for name, value in snap.reference.items():
            reference.add_metric([m, name], float(value))
        degraded = metrics.gauge("mlops_model_quality_degraded")
        for name, verdict in snap.verdicts.items():
            degraded.add_metric([m, name], 1.0 if verdict.degraded else 0.0)
        estimated = metrics.gauge("mlops_model_quality_estimated")
        for name, value in snap.estimated.items():
            estimated.add_metric([m, name], value)
        samples = metrics.gauge("mlops_quality_window_samples")
        if snap.computed_at is not None:
            samples.add_metric([m], float(snap.window_samples))
        yield from (reference, degraded, estimated, samples)

    def collect_counters(self, stats: OutcomeStats) -> Iterator[Metric]:
        m = self.model
        joined = metrics.counter("mlops_outcomes")
        joined.add_metric([m], float(stats.outcomes_total))
        unmatched = metrics.counter("mlops_outcomes_unmatched")
        for reason, value in stats.unmatched.items():
            unmatched.add_metric([m, reason], float(value))
        delay = metrics.histogram("mlops_outcome_delay_seconds")
        delay.add_metric(
            [m],
            [(floatToGoString(le), float(count)) for le, count in stats.delay_buckets],
            stats.delay_sum,
        )
        yield from (joined, unmatched, delay)

        if stats.confusion:  # a classifier's outcomes were joined
            confusion = metrics.counter("mlops_outcome_confusion")
            for (predicted, actual), value in sorted(stats.confusion.items()):
                confusion.add_metric([m, predicted, actual], float(value))
            right = metrics.counter("mlops_outcomes_correct")  # exact: not the folded diagonal
            right.add_metric([m], float(stats.correct))
            yield from (confusion, right)
        if stats.error_count:  # a regressor's
            for name, total in (
                ("mlops_outcome_abs_error", stats.abs_error_sum),
                ("mlops_outcome_squared_error", stats.squared_error_sum),
            ):
                summary = metrics.summary(name)
                summary.add_metric([m], stats.error_count, total)
                yield summary

        awaiting = metrics.gauge("mlops_predictions_awaiting_outcome")
        awaiting.add_metric([m], float(stats.pending))
        unjoinable = metrics.counter("mlops_predictions_unjoinable")
        unjoinable.add_metric([m, "duplicate"], float(stats.predictions_duplicate))
        unjoinable.add_metric([m, "invalid"], float(stats.predictions_invalid))
        dropped = metrics.counter("mlops_predictions_probability_dropped")
        dropped.add_metric([m], float(stats.predictions_probability_dropped))
        yield from (unjoinable, dropped)
        evicted = metrics.counter("mlops_predictions_evicted")
        evicted.add_metric([m, "expired"], float(stats.predictions_expired))
        evicted.add_metric([m, "max_pending"], float(stats.predictions_evicted))
        ratio = metrics.gauge("mlops_labelled_ratio")
        if stats.predictions_total:
            ratio.add_metric([m], stats.outcomes_total / stats.predictions_total)
        yield from (awaiting, evicted, ratio)
