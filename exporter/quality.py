"""The quality pass: joined pairs of the outcome store -> an immutable :class:`QualitySnapshot`.

Every ``drift.interval`` the scheduler sweeps the store (:meth:`OutcomeStore.sweep`), reads
its counters and its quality window, and :func:`compute_quality` turns them into one
snapshot, swapped in whole like the drift :class:`~exporter.pipeline.Snapshot`: a scrape
reads it and computes nothing.  The figures are :mod:`mlops_core.quality`'s, on the same
window, so a dashboard shows what ``sklearn.metrics`` gives on those pairs.

- **Kind.** The newest joined pair decides: a predicted class makes the model a classifier,
  a predicted value a regressor.  The metrics are computed over the window's pairs of that
  kind (a window holds both only while a model changes kind).
- **Classifier metrics.** Accuracy, balanced accuracy, macro precision, recall and F1 from the
  labels; ROC AUC, log loss and Brier score when every pair logged its ``probabilities``
  (a class missing from a row counts 0) covering every label of the window, or, for two
  classes, the probability of the predicted class.  A metric undefined on the window (ROC
  AUC with one class in the labels) is left out.
- **Per class.** Precision, recall, F1 and support of each class of the window, the classes
  beyond the first ``prediction.max_classes`` the store has seen folded into ``__other__``
  (the same classes as ``mlops_outcome_confusion_total``).
- **The verdict.** For each judged metric (accuracy, balanced accuracy, Brier score) with a
  ``quality.reference``, :func:`mlops_core.quality.degradation` at the level
  ``drift.interval / quality.false_alarm_budget / judged metrics with a reference``
  (:func:`mlops_core.bounds.level_from_budget`): one expected false *degraded* per budget
  period.  Nothing below ``quality.min_samples`` pairs.
- **The estimate.** Over the drift window's predictions that logged the probability of their
  predicted class (:class:`ConfidenceWindow`): the mean calibrated probability when the
  reference profile carries a :class:`~mlops_core.quality.ConfidenceCalibrator`, else the
  mean raw probability (what the model claims, not calibrated: :attr:`QualitySnapshot.
  calibrated` says which).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import structlog

from exporter.outcomes import OTHER_CLASS, OutcomeStats, QualityWindow
from mlops_core import bounds, quality

if TYPE_CHECKING:
    from exporter.config import ExporterConfig

log = structlog.get_logger("exporter.quality")

Kind = Literal["classifier", "regressor"]

#: every metric the snapshot may hold, in the order they are shown
METRIC_ORDER: tuple[str, ...] = (
    *quality.CLASSIFICATION_METRICS, *quality.PROBABILITY_METRICS, *quality.REGRESSION_METRICS,
)  # fmt: skip


@dataclass(frozen=True)
class QualitySettings:
    """What the pass needs of the ``quality`` section (and of ``drift`` and ``prediction``)."""

    min_samples: int = 100
    reference: Mapping[str, float] = field(default_factory=dict)
    max_drop: float = 0.05
    interval: float = 30.0
    false_alarm_budget: float = 30 * 86400.0
    estimate_min_samples: int = 100

    @classmethod
    def from_config(cls, config: ExporterConfig) -> QualitySettings:
        q = config.quality
        return cls(
            min_samples=q.min_samples,
            reference=MappingProxyType(dict(q.reference)),
            max_drop=q.max_drop,
            interval=config.drift.interval,
            false_alarm_budget=q.false_alarm_budget,
            estimate_min_samples=config.drift.min_samples,
        )

    @property
    def judged(self) -> tuple[str, ...]:
        """The judged metrics that have a reference: the tests of each pass."""
        return tuple(m for m in quality.JUDGED_METRICS if m in self.reference)

    def level(self) -> float | None:
        """Each verdict's level, or None when no judged metric has a reference."""
        if not self.judged:
            return None
        return bounds.level_from_budget(self.interval, self.false_alarm_budget, len(self.judged))


@dataclass(frozen=True)
class QualitySnapshot:
    """Everything the quality collector and the page publish from one pass; never mutated."""

    computed_at: float | None  # unix seconds; None before the first pass
    duration_seconds: float = 0.0
    kind: Kind | None = None
    window_samples: int = 0  # joined pairs the metrics are computed on
    metrics: Mapping[str, float] = field(default_factory=dict)  # absent below min_samples
    class_metrics: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    verdicts: Mapping[str, quality.QualityVerdict] = field(default_factory=dict)
    notes: Mapping[str, str] = field(default_factory=dict)  # metric with a reference, no verdict
    level: float | None = None
    reference: Mapping[str, float] = field(default_factory=dict)
    estimated: Mapping[str, float] = field(default_factory=dict)
    estimate_samples: int = 0  # predictions of the drift window with a probability
    calibrated: bool = False  # the estimate went through the profile's calibrator
    stats: OutcomeStats | None = None  # the store's counters, read in the same pass
    min_samples: int = 100

    @property
    def degraded_names(self) -> tuple[str, ...]:
        return tuple(m for m, v in self.verdicts.items() if v.degraded)

    @property
    def labelled_ratio(self) -> float | None:
        """Outcomes joined over the predictions the store took, since it was created."""
        if self.stats is None or self.stats.predictions_total == 0:
            return None
        return self.stats.outcomes_total / self.stats.predictions_total

    @classmethod
    def empty(cls, settings: QualitySettings | None = None) -> QualitySnapshot:
        settings = settings or QualitySettings()
        return cls(
            None,
            reference=MappingProxyType(dict(settings.reference)),
            level=settings.level(),
            min_samples=settings.min_samples,
        )


class ConfidenceWindow:
    """The probability of the predicted class of the drift window's predictions.

    Same bounds as the drift window (``drift.window.max_samples`` and ``max_age`` by the
    record's timestamp, a future one counting as now), fixed memory: two ring buffers.
    Fed by the ingest thread, read by the quality pass, under one lock.
    """

    def __init__(
        self, max_samples: int, max_age: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.max_samples = max_samples
        self.max_age = max_age
        self._clock = clock
        self._times = np.zeros(max_samples)
        self._values = np.zeros(max_samples)
        self._size = 0
        self._next = 0
        self._lock = threading.Lock()

    def add(self, pairs: Sequence[tuple[float, float]]) -> None:
        if not pairs:
            return
        data = np.asarray(pairs[-self.max_samples :], dtype=np.float64).reshape(-1, 2)
        n = len(data)
        with self._lock:
            slots = (self._next + np.arange(n)) % self.max_samples
            self._times[slots] = data[:, 0]
            self._values[slots] = data[:, 1]
            self._next = int((self._next + n) % self.max_samples)
            self._size = min(self.max_samples, self._size + n)

    def values(self) -> np.ndarray:
        """The probabilities of the predictions still in the window (a copy)."""
        now = self._clock()
        with self._lock:
            times = self._times[: self._size].copy()
            values = self._values[: self._size].copy()
        return values[np.minimum(times, now) >= now - self.max_age]


def compute_quality(
    window: QualityWindow,
    stats: OutcomeStats | None,
    settings: QualitySettings,
    *,
    confidence: np.ndarray | None = None,
    calibrator: quality.ConfidenceCalibrator | None = None,
    clock: Callable[[], float] = time.time,
) -> QualitySnapshot:
    """One pass over a copy of the quality window and the store's counters."""
    started = time.perf_counter()
    kind, rows = _kind(window)
    n = int(rows.sum())
    metrics: dict[str, float] = {}
    per_class: dict[str, Mapping[str, float]] = {}
    verdicts: dict[str, quality.QualityVerdict] = {}
    notes: dict[str, str] = {}
    level = settings.level()
    if kind is not None and n >= settings.min_samples:
        if kind == "classifier":
            actual = window.actual[rows].tolist()
            predicted = window.predicted[rows].tolist()
            metrics, n_classes = _classifier_metrics(window, rows, actual, predicted)
            per_class = _per_class(actual, predicted, stats)
            support = np.unique(np.asarray(actual, dtype=object), return_counts=True)[1]
        else:
            metrics = quality.regression_metrics(
                window.actual_value[rows], window.predicted_value[rows]
            )
            n_classes, support = None, None
        metrics = {k: v for k, v in metrics.items() if math.isfinite(v)}
        verdicts, notes = _verdicts(metrics, n, level, settings, support, n_classes)
    estimated: dict[str, float] = {}
    samples = 0 if confidence is None else len(confidence)
    if confidence is not None and samples and samples >= settings.estimate_min_samples:
        if calibrator is not None:
            estimated["accuracy"] = quality.estimated_accuracy(calibrator, confidence)
        else:
            estimated["accuracy"] = float(np.mean(confidence))
    return QualitySnapshot(
        computed_at=clock(),
        duration_seconds=time.perf_counter() - started,
        kind=kind,
        window_samples=n,
        metrics=MappingProxyType(metrics),
        class_metrics=MappingProxyType(per_class),
        verdicts=MappingProxyType(verdicts),
        notes=MappingProxyType(notes),
        level=level,
        reference=MappingProxyType(dict(settings.reference)),
        estimated=MappingProxyType(estimated),
        estimate_samples=samples,
        calibrated=calibrator is not None and bool(estimated),
        stats=stats,
        min_samples=settings.min_samples,
    )


def _kind(window: QualityWindow) -> tuple[Kind | None, np.ndarray]:
    """The model's kind (from the newest pair) and the window's rows of that kind."""
    if len(window) == 0:
        return None, np.zeros(0, dtype=bool)
    labelled = np.not_equal(window.predicted, None)  # type: ignore[call-overload]
    if window.predicted[-1] is not None:
        return "classifier", labelled & np.not_equal(window.actual, None)  # type: ignore[call-overload]
    values = np.isfinite(window.predicted_value) & np.isfinite(window.actual_value)
    return "regressor", ~labelled & values


def _classifier_metrics(
    window: QualityWindow, rows: np.ndarray, actual: list[Any], predicted: list[Any]
) -> tuple[dict[str, float], int | None]:
    """The label metrics, plus the probability ones when the pairs allow; the class count."""
    labels = set(actual) | set(predicted)
    probabilities: np.ndarray | None = None
    classes: list[str] | None = None
    matrix = window.probabilities[rows]
    logged = matrix.shape[1] >= 2 and not np.isnan(matrix).all(axis=1).any()
    if logged and labels <= set(window.classes):  # every row logged them, for every label
        probabilities, classes = np.nan_to_num(matrix, nan=0.0), list(window.classes)
    if probabilities is None and len(labels) == 2:
        scalar = window.probability[rows]
        if np.isfinite(scalar).all():
            classes = sorted(labels)
            probabilities = quality.positive_class_probability(predicted, scalar, classes)
    if probabilities is not None:
        try:
            result = quality.classification_metrics(actual, predicted, probabilities, classes)
            return result, len(classes or ())
        except ValueError as exc:  # probabilities outside [0, 1], say: label metrics only
            log.debug("quality_probabilities_unusable", error=str(exc))
    return quality.classification_metrics(actual, predicted), None


def _per_class(
    actual: list[Any], predicted: list[Any], stats: OutcomeStats | None
) -> dict[str, Mapping[str, float]]:
    """Per-class figures, with the classes the store folds into ``__other__`` folded too."""
    kept = set()
    if stats is not None:
        kept = {label for pair in stats.confusion for label in pair} - {OTHER_CLASS}

    def fold(labels: list[Any]) -> list[Any]:
        if not kept:
            return labels
        return [label if label in kept else OTHER_CLASS for label in labels]

    figures = quality.per_class_metrics(fold(actual), fold(predicted))
    return {str(c): MappingProxyType(v) for c, v in figures.items()}


def _verdicts(
    metrics: Mapping[str, float],
    n: int,
    level: float | None,
    settings: QualitySettings,
    support: np.ndarray | None,
    n_classes: int | None,
) -> tuple[dict[str, quality.QualityVerdict], dict[str, str]]:
    """The verdict of each judged metric with a reference; why the others have none."""
    verdicts: dict[str, quality.QualityVerdict] = {}
    notes: dict[str, str] = {}
    for metric, reference in settings.reference.items():
        if metric not in metrics:
            notes[metric] = "not computed on this window"
            continue
        try:
            verdict = quality.degradation(
                metric,
                metrics[metric],
                n=n,
                reference=reference,
                max_drop=settings.max_drop,
                level=level if level is not None else 1.0,
                class_support=support,
                n_classes=n_classes,
            )
        except ValueError as exc:  # a Brier reference above 1 for a binary model, say
            notes[metric] = f"no verdict: {exc}"
            continue
        if verdict.judged:
            verdicts[metric] = verdict
        else:
            notes[metric] = verdict.reason
    return verdicts, notes
