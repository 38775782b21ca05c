"""Model quality: metrics on labelled predictions, a degradation verdict, estimated accuracy.

Everything here is a pure function of arrays (numpy and :mod:`math` only: the exporter does
not import ``scipy.stats``, which costs ~46 MB).  The definitions are scikit-learn's, so a
figure on a dashboard is the figure a data scientist gets from ``sklearn.metrics`` on the
same window (the tests hold them to 1e-9); where a monitoring window needs another
convention, it is stated where the metric is defined and in docs/quality.md.

Three parts:

* **Metrics** -- :func:`classification_metrics`, :func:`per_class_metrics`,
  :func:`regression_metrics` on a window of predictions joined to their outcomes.
* **The degradation verdict** -- :func:`degradation` says a metric is worse than its reference
  by more than ``max_drop`` only when a distribution-free confidence bound shows it, so its
  false-alarm rate is the bound's level whatever the sample size: Hoeffding's inequality for
  the metrics that are means of bounded per-sample terms (accuracy, balanced accuracy, Brier
  score).  The other metrics are reported but never judged, and the verdict says why.
* **Estimated accuracy before labels** -- :class:`ConfidenceCalibrator` maps the probability
  a model gave its predicted class to the probability that the prediction is right
  (isotonic regression on a labelled reference); :func:`estimated_accuracy` averages it over
  live predictions.

Probabilities come in one layout, matching the log's schema (docs/log-format.md): a 2-D
array of shape ``(n, k)`` whose column ``j`` is the probability of ``classes[j]`` (the class
order is always explicit), or, for a binary model, a 1-D array of the probability of the
positive class ``classes[1]`` (``classes=[negative, positive]``).  :func:`probability_matrix`
builds the array from logged ``probabilities`` mappings, :func:`positive_class_probability`
from a binary model's scalar ``probability`` of the predicted class.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from mlops_core import bounds
from mlops_core.constants import JUDGED_METRICS

__all__ = [
    "CLASSIFICATION_METRICS",
    "JUDGED_METRICS",
    "MAPE_MIN_ABS_ACTUAL",
    "PROBABILITY_METRICS",
    "REGRESSION_METRICS",
    "ConfidenceCalibrator",
    "QualityVerdict",
    "classification_metrics",
    "degradation",
    "estimated_accuracy",
    "per_class_metrics",
    "positive_class_probability",
    "probability_matrix",
    "quality_bound",
    "regression_metrics",
]

#: A class label: whatever the model predicts (strings, integers, booleans).
Label = Hashable

#: Keys of :func:`classification_metrics` without probabilities, in this order.
CLASSIFICATION_METRICS: tuple[str, ...] = (
    "accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro",
)  # fmt: skip
#: Keys added when probabilities are given.
PROBABILITY_METRICS: tuple[str, ...] = ("roc_auc", "log_loss", "brier")
#: Keys of :func:`regression_metrics`.
REGRESSION_METRICS: tuple[str, ...] = ("mae", "rmse", "mape", "r2", "mean_error")

#: Samples whose ``|actual|`` is below this are left out of MAPE.  scikit-learn divides by
#: ``max(|actual|, eps)`` instead, so one actual of zero makes its MAPE about 1e15 and hides
#: every other error; at and above ``eps`` the two agree exactly.  Raise it (in the target's
#: units) with ``mape_min_abs_actual=`` when values near zero are common but meaningless.
MAPE_MIN_ABS_ACTUAL: float = float(np.finfo(np.float64).eps)


# Why each other metric is reported but not judged (docs/quality.md, "Why F1, AUC ...").
_NOT_JUDGED: dict[str, str] = {
    "precision_macro": "macro precision averages ratios over random per-class counts; "
    "no bound is implemented for it",
    "recall_macro": "macro recall counts classes seen only in the predictions as 0; "
    "no bound is implemented for it (balanced accuracy is the judged form)",
    "f1_macro": "F1 is a harmonic mean of precision and recall, a ratio of random counts, "
    "not a mean of bounded per-sample terms",
    "roc_auc": "ROC AUC is a two-sample rank statistic, not a mean of independent "
    "per-sample terms; no bound is implemented for it",
    "log_loss": "the per-sample log loss is unbounded (-log p grows without limit as p -> 0)",
    **{
        name: "regression errors are unbounded, so no distribution-free bound exists"
        for name in REGRESSION_METRICS
    },
}

_EPS = float(np.finfo(np.float64).eps)


# --- input checking -------------------------------------------------------------------------


def _labels(values: Any, what: str) -> list[Any]:
    """A 1-D sequence of class labels as Python objects (no numpy coercion of mixed types)."""
    if isinstance(values, np.ndarray):
        if values.ndim != 1:
            raise ValueError(f"{what} must be 1-D, got shape {values.shape}")
        out = values.tolist()
    elif isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise ValueError(f"{what} must be a sequence of class labels, got {type(values).__name__}")
    else:
        out = list(values)
    return out


def _class_list(
    actual: list[Any], predicted: list[Any], classes: Sequence[Label] | None
) -> list[Any]:
    if classes is not None:
        out = _labels(classes, "classes")
        if not out:
            raise ValueError("classes is empty")
        try:
            distinct = len(set(out))
        except TypeError:
            raise ValueError("classes must be hashable class labels") from None
        if distinct != len(out):
            raise ValueError(f"classes names a class twice: {out!r}")
        return out
    try:
        seen = set(actual) | set(predicted)
    except TypeError:
        raise ValueError("class labels in actual and predicted must be hashable") from None
    try:
        return sorted(seen)
    except TypeError:
        kinds = sorted({type(v).__name__ for v in seen})
        raise ValueError(
            f"actual and predicted mix label types that do not sort ({', '.join(kinds)}); "
            "pass classes= to give their order"
        ) from None


def _encode(values: list[Any], index: Mapping[Any, int], what: str) -> npt.NDArray[np.intp]:
    try:
        return np.fromiter((index[v] for v in values), dtype=np.intp, count=len(values))
    except KeyError as exc:
        raise ValueError(
            f"{what} holds class {exc.args[0]!r}, which is not among classes"
        ) from None
    except TypeError:
        raise ValueError(f"{what} must hold hashable class labels") from None


def _pair(actual: Any, predicted: Any) -> tuple[list[Any], list[Any]]:
    a = _labels(actual, "actual")
    p = _labels(predicted, "predicted")
    if len(a) != len(p):
        raise ValueError(f"actual has {len(a)} labels but predicted has {len(p)}")
    if not a:
        raise ValueError("actual and predicted are empty: quality needs labelled predictions")
    return a, p


def _floats(values: Any, what: str) -> npt.NDArray[np.float64]:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be numbers") from None
    if arr.ndim != 1:
        raise ValueError(f"{what} must be 1-D, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} holds a NaN or infinite value")
    return arr


def _probabilities(probabilities: Any, n: int, classes: list[Any]) -> npt.NDArray[np.float64]:
    """The probabilities as an (n, k) array aligned with ``classes``."""
    k = len(classes)
    if k < 2:
        raise ValueError(f"probabilities need at least two classes, got classes={classes!r}")
    try:
        arr = np.asarray(probabilities, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("probabilities must be an array of numbers") from None
    if arr.ndim == 1:
        if k != 2:
            raise ValueError(
                f"1-D probabilities are P(classes[1]) of a binary model; {k} classes need an "
                f"(n, {k}) array"
            )
        arr = np.column_stack([1.0 - arr, arr])
    elif arr.ndim != 2 or arr.shape[1] != k:
        raise ValueError(
            f"probabilities must have shape (n, {k}) (one column per class), got {arr.shape}"
        )
    if arr.shape[0] != n:
        raise ValueError(f"probabilities has {arr.shape[0]} rows but actual has {n} labels")
    if not np.isfinite(arr).all():
        raise ValueError("probabilities holds a NaN or infinite value")
    if arr.min() < 0.0 or arr.max() > 1.0:
        raise ValueError(
            f"probabilities must lie in [0, 1], got values in [{arr.min():g}, {arr.max():g}]"
        )
    return arr


def _check_level(level: float) -> float:
    if isinstance(level, bool) or not isinstance(level, int | float) or not 0.0 < level <= 1.0:
        raise ValueError(f"level must be a number in (0, 1], got {level!r}")
    return float(level)


# --- classification ---------------------------------------------------------------------------


def _confusion(a: npt.NDArray[np.intp], p: npt.NDArray[np.intp], k: int) -> npt.NDArray[np.int64]:
    """Rows: actual class; columns: predicted class."""
    return np.bincount(a * k + p, minlength=k * k).reshape(k, k).astype(np.int64)


def _ratio(num: npt.NDArray[Any], den: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """num / den with 0 where den is 0: scikit-learn's ``zero_division="warn"`` value."""
    out = np.zeros(num.shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _per_class(cm: npt.NDArray[np.int64]) -> dict[str, npt.NDArray[Any]]:
    tp = np.diag(cm)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    return {
        "precision": _ratio(tp, predicted),
        "recall": _ratio(tp, support),
        # 2 tp / (2 tp + fp + fn): the same value as 2 P R / (P + R), and defined (as 0)
        # when P or R is 0/0, which is how scikit-learn computes it
        "f1": _ratio(2 * tp, support + predicted),
        "support": support,
        "predicted": predicted,
    }


def _midranks(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """1-based ranks, ties sharing their average rank (what the Mann-Whitney U uses)."""
    n = x.size
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
    ends = np.r_[starts[1:], n]
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def _binary_auc(positive: npt.NDArray[np.bool_], score: npt.NDArray[np.float64]) -> float:
    """P(score of a positive > score of a negative) + half the ties: the area under the ROC
    curve, via the rank-sum (equal to scikit-learn's trapezoidal area); NaN without both."""
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    rank_sum = float(_midranks(score)[positive].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def classification_metrics(
    actual: Sequence[Label] | npt.ArrayLike,
    predicted: Sequence[Label] | npt.ArrayLike,
    probabilities: npt.ArrayLike | None = None,
    classes: Sequence[Label] | None = None,
) -> dict[str, float]:
    """Quality of a classifier on labelled predictions, as scikit-learn defines it.

    Args:
        actual: the true class of each prediction.
        predicted: the predicted class, aligned with ``actual``.
        probabilities: optional; an ``(n, k)`` array whose column ``j`` is the probability of
            ``classes[j]``, or for a binary model a 1-D array of the probability of the
            positive class ``classes[1]``.  ``classes`` is then required: the column order
            is never implicit.
        classes: every class the model can predict, in the order of the probability columns.
            Default: the sorted classes seen in ``actual`` or ``predicted``.  A label outside
            it is an error.

    Returns ``accuracy``, ``balanced_accuracy``, ``precision_macro``, ``recall_macro`` and
    ``f1_macro``; with probabilities also ``roc_auc``, ``log_loss`` and ``brier``:

    * macro averages are over the classes seen in ``actual`` or ``predicted`` (what
      scikit-learn averages over without ``labels=``): a class of ``classes`` absent from
      the window has nothing to report and is left out.  A class never predicted has
      precision 0, one never true recall 0: scikit-learn's ``zero_division="warn"`` value,
      without the warning;
    * ``balanced_accuracy`` is the mean recall over the classes seen in ``actual``;
    * ``roc_auc``: binary, of the positive class; multiclass, the macro mean of the
      one-vs-rest AUCs over the classes seen in ``actual`` (scikit-learn returns NaN as soon
      as one class is absent, which would blank the metric whenever a rare class has no
      label in the window).  NaN when ``actual`` holds a single class;
    * ``log_loss``: mean of ``-ln p(actual class)``, ``p`` clipped to ``[eps, 1 - eps]``;
    * ``brier``: binary, mean of ``(p(positive) - [actual is positive])^2`` in [0, 1]
      (scikit-learn's ``brier_score_loss``); multiclass, mean over samples of
      ``sum_j (p_j - [actual is j])^2`` in [0, 2] (scikit-learn's multiclass Brier score).

    Rows of probabilities are used as given (not renormalised); the logger keeps their sums
    within 1e-4 of 1.
    """
    a_list, p_list = _pair(actual, predicted)
    if probabilities is not None and classes is None:
        raise ValueError(
            "probabilities need classes=: the class of each column must be given, not implied"
        )
    labels = _class_list(a_list, p_list, classes)
    index = {c: i for i, c in enumerate(labels)}
    a = _encode(a_list, index, "actual")
    p = _encode(p_list, index, "predicted")
    k = len(labels)
    cm = _confusion(a, p, k)
    per = _per_class(cm)
    seen = (per["support"] + per["predicted"]) > 0
    true_seen = per["support"] > 0
    out = {
        "accuracy": float(np.mean(a == p)),
        "balanced_accuracy": float(np.mean(per["recall"][true_seen])),
        "precision_macro": float(np.mean(per["precision"][seen])),
        "recall_macro": float(np.mean(per["recall"][seen])),
        "f1_macro": float(np.mean(per["f1"][seen])),
    }
    if probabilities is None:
        return out
    probs = _probabilities(probabilities, a.size, labels)
    onehot = np.zeros_like(probs)
    onehot[np.arange(a.size), a] = 1.0
    if k == 2:
        out["roc_auc"] = _binary_auc(a == 1, probs[:, 1])
        out["brier"] = float(np.mean((probs[:, 1] - onehot[:, 1]) ** 2))
    else:
        aucs = [_binary_auc(a == j, probs[:, j]) for j in np.flatnonzero(true_seen)]
        aucs = [x for x in aucs if not math.isnan(x)]
        out["roc_auc"] = float(np.mean(aucs)) if aucs else math.nan
        out["brier"] = float(np.mean(np.sum((probs - onehot) ** 2, axis=1)))
    p_true = np.clip(probs[np.arange(a.size), a], _EPS, 1.0 - _EPS)
    out["log_loss"] = float(-np.mean(np.log(p_true)))
    return {name: out[name] for name in (*CLASSIFICATION_METRICS, *PROBABILITY_METRICS)}


def per_class_metrics(
    actual: Sequence[Label] | npt.ArrayLike,
    predicted: Sequence[Label] | npt.ArrayLike,
    classes: Sequence[Label] | None = None,
) -> dict[Any, dict[str, float]]:
    """``{class: {"precision", "recall", "f1", "support"}}`` for every class of ``classes``.

    ``support`` is the number of labels of the class in ``actual`` (a float, like the rest, so
    the dict maps straight onto a gauge).  A class absent from the window is listed with
    zeros, and 0/0 is 0 as in scikit-learn's ``precision_recall_fscore_support``.  Default
    ``classes``: the sorted classes seen in ``actual`` or ``predicted``.
    """
    a_list, p_list = _pair(actual, predicted)
    labels = _class_list(a_list, p_list, classes)
    index = {c: i for i, c in enumerate(labels)}
    per = _per_class(
        _confusion(
            _encode(a_list, index, "actual"), _encode(p_list, index, "predicted"), len(labels)
        )
    )
    return {
        c: {
            "precision": float(per["precision"][i]),
            "recall": float(per["recall"][i]),
            "f1": float(per["f1"][i]),
            "support": float(per["support"][i]),
        }
        for i, c in enumerate(labels)
    }


def probability_matrix(
    rows: Iterable[Mapping[Any, float]], classes: Sequence[Label]
) -> npt.NDArray[np.float64]:
    """Logged ``probabilities`` mappings as the ``(n, k)`` array the metrics take.

    A class missing from a row has probability 0 there; a key that is not a class is an
    error (compare labels as the log holds them: JSON object keys are text, so pass text
    classes for logged mappings).
    """
    labels = _labels(classes, "classes")
    index = {c: i for i, c in enumerate(labels)}
    if len(index) != len(labels):
        raise ValueError(f"classes names a class twice: {labels!r}")
    out: list[list[float]] = []
    for r, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ValueError(
                f"probabilities row {r} must be a mapping of class -> probability, "
                f"got {type(row).__name__}"
            )
        values = [0.0] * len(labels)
        for key, value in row.items():
            j = index.get(key)
            if j is None:
                raise ValueError(f"probabilities row {r} names class {key!r}, not among classes")
            values[j] = float(value)
        out.append(values)
    return np.array(out, dtype=np.float64).reshape(len(out), len(labels))


def positive_class_probability(
    predicted: Sequence[Label] | npt.ArrayLike,
    probability: npt.ArrayLike,
    classes: Sequence[Label],
) -> npt.NDArray[np.float64]:
    """P(positive class) of a binary model from the logged probability of the predicted class.

    The log's scalar ``probability`` belongs to the predicted class, so it is P(positive)
    where ``classes[1]`` was predicted and ``1 - probability`` where ``classes[0]`` was.
    """
    labels = _labels(classes, "classes")
    if len(labels) != 2 or labels[0] == labels[1]:
        raise ValueError(f"classes must be [negative, positive], got {labels!r}")
    pred = _labels(predicted, "predicted")
    prob = _floats(probability, "probability")
    if prob.size != len(pred):
        raise ValueError(f"probability has {prob.size} values but predicted has {len(pred)}")
    if prob.size and (prob.min() < 0.0 or prob.max() > 1.0):
        raise ValueError("probability must lie in [0, 1]")
    positive = _encode(pred, {labels[0]: 0, labels[1]: 1}, "predicted") == 1
    return np.where(positive, prob, 1.0 - prob)


# --- regression -------------------------------------------------------------------------------


def regression_metrics(
    actual: npt.ArrayLike,
    predicted: npt.ArrayLike,
    *,
    mape_min_abs_actual: float = MAPE_MIN_ABS_ACTUAL,
) -> dict[str, float]:
    """Quality of a regressor: ``mae``, ``rmse``, ``mape``, ``r2``, ``mean_error``.

    * ``mape``: mean of ``|predicted - actual| / |actual|`` over the samples with
      ``|actual| >= mape_min_abs_actual`` (a fraction: 0.1 is 10 %), NaN when there is none.
      Equal to scikit-learn's ``mean_absolute_percentage_error`` on those samples; it is
      undefined at zero, so a sample there is left out instead of divided by ``eps``.
    * ``r2``: ``1 - SS_res / SS_tot``; when every actual is equal, 1.0 for a perfect fit and
      0.0 otherwise, and NaN for a single sample (scikit-learn's conventions).
    * ``mean_error``: the bias, ``mean(predicted - actual)``: positive when the model
      over-predicts.
    """
    a = _floats(actual, "actual")
    p = _floats(predicted, "predicted")
    if a.size != p.size:
        raise ValueError(f"actual has {a.size} values but predicted has {p.size}")
    if a.size == 0:
        raise ValueError("actual and predicted are empty: quality needs labelled predictions")
    if not (math.isfinite(mape_min_abs_actual) and mape_min_abs_actual > 0):
        raise ValueError(
            f"mape_min_abs_actual must be a finite number > 0, got {mape_min_abs_actual!r}"
        )
    err = p - a
    away = np.abs(a) >= mape_min_abs_actual
    ss_res = float(np.sum(err**2))
    ss_tot = float(np.sum((a - np.mean(a)) ** 2))
    if a.size < 2:
        r2 = math.nan
    elif ss_tot == 0.0:
        r2 = 1.0 if ss_res == 0.0 else 0.0
    else:
        r2 = 1.0 - ss_res / ss_tot
    return {
        "mae": float(np.mean(np.abs(err))),
        "rmse": math.sqrt(ss_res / a.size),
        "mape": float(np.mean(np.abs(err[away]) / np.abs(a[away]))) if away.any() else math.nan,
        "r2": r2,
        "mean_error": float(np.mean(err)),
    }


# --- the degradation verdict ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QualityVerdict:
    """Whether a metric is shown to be worse than its reference (see :func:`degradation`).

    ``bound`` is the confidence bound on the worse side (an upper bound of a metric where
    higher is better, a lower bound of a loss); ``threshold`` is ``reference - max_drop``
    (or ``reference + max_drop`` for a loss).  ``degraded`` is true when the bound is past
    the threshold, which happens with probability at most ``level`` while the true metric
    is not; ``p_value`` is the smallest level at which it would be (``degraded`` iff
    ``p_value < level``).  For a metric that is not judged, ``judged`` is false, ``bound``,
    ``threshold`` and ``p_value`` are None and ``reason`` says why.
    """

    metric: str
    value: float
    reference: float
    max_drop: float
    level: float
    n: int
    judged: bool
    degraded: bool
    bound: float | None
    threshold: float | None
    p_value: float | None
    reason: str


def _support(class_support: Sequence[int] | npt.ArrayLike | None) -> npt.NDArray[np.int64]:
    if class_support is None:
        raise ValueError(
            "balanced_accuracy needs class_support= (labels per class in actual): its bound "
            "is a union over the classes"
        )
    counts = np.asarray(class_support)
    if counts.ndim != 1 or counts.size == 0 or not np.issubdtype(counts.dtype, np.number):
        raise ValueError("class_support must be a non-empty list of label counts per class")
    if (counts < 0).any() or (counts != np.round(counts)).any():
        raise ValueError(f"class_support must hold counts >= 0, got {counts.tolist()!r}")
    counts = counts[counts > 0].astype(np.int64)
    if counts.size == 0:
        raise ValueError("class_support has no class with a label")
    return counts


def _brier_range(n_classes: int | None) -> float:
    if n_classes is None or isinstance(n_classes, bool) or not isinstance(n_classes, int):
        raise ValueError(
            "brier needs n_classes= (its per-sample loss lies in [0, 1] for 2 classes, "
            f"[0, 2] for more), got {n_classes!r}"
        )
    if n_classes < 2:
        raise ValueError(f"n_classes must be >= 2, got {n_classes}")
    return 1.0 if n_classes == 2 else 2.0


def _unknown_metric(metric: str) -> ValueError:
    known = [*JUDGED_METRICS, *_NOT_JUDGED]
    close = difflib.get_close_matches(metric, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(known)})"
    return ValueError(f"unknown quality metric {metric!r}{hint}")


def quality_bound(
    metric: str,
    value: float,
    level: float,
    *,
    n: int,
    class_support: Sequence[int] | npt.ArrayLike | None = None,
    n_classes: int | None = None,
) -> float | None:
    """The one-sided confidence bound on the worse side of a judged metric, at ``level``.

    With probability at least ``1 - level`` the true (population) metric is below the upper
    bound (accuracy-like) or above the lower bound (Brier score).  Hoeffding's inequality
    for a mean of ``n`` independent terms in ``[0, R]``,
    ``P(mean_n <= mu - t) <= exp(-2 n t^2 / R^2)``, gives the radius
    ``t = R sqrt(ln(1 / level) / (2 n))``:

    * ``accuracy``: the mean of "prediction correct", ``R = 1``;
    * ``balanced_accuracy``: the mean over the ``K`` classes seen of each class's recall, the
      mean of "correct" over that class's ``n_c`` labels; each recall gets the radius at
      ``level / K`` so that all hold together (union bound): ``value + mean_c t_c``.
      ``class_support`` gives the ``n_c`` (zeros are dropped);
    * ``brier``: the mean per-sample loss, ``R = 1`` (binary) or ``2`` (multiclass:
      ``n_classes``), bounded below.

    Independence is the assumption: labelled predictions are independent draws (a window of
    one customer's repeated requests is not).  Returns None for a metric without such a
    bound and when ``n`` is 0; clipped to the metric's range.
    """
    level = _check_level(level)
    if metric not in JUDGED_METRICS:
        if metric in _NOT_JUDGED:
            return None
        raise _unknown_metric(metric)
    if not math.isfinite(value):
        raise ValueError(f"value of {metric} must be finite, got {value!r}")
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise ValueError(f"n must be an integer >= 0, got {n!r}")
    if n == 0:
        return None
    top = _metric_range(metric, n_classes)
    if not 0.0 <= value <= top:
        raise ValueError(f"value of {metric} must lie in [0, {top:g}], got {value!r}")
    if metric == "accuracy":
        return min(1.0, value + bounds.missing_radius(int(n), level))
    if metric == "balanced_accuracy":
        counts = _support(class_support)
        k = counts.size
        radius = float(np.mean([bounds.missing_radius(int(c), level / k) for c in counts]))
        return min(1.0, value + radius)
    return max(0.0, value - top * bounds.missing_radius(int(n), level))


def _metric_range(metric: str, n_classes: int | None) -> float:
    """Upper end of a judged metric's range (the per-sample loss range R for Brier)."""
    return _brier_range(n_classes) if metric == "brier" else 1.0


def _p_value(
    metric: str,
    gap: float,
    n: int,
    class_support: Sequence[int] | npt.ArrayLike | None,
    n_classes: int | None,
) -> float:
    """Smallest level at which the bound passes the threshold, for a gap beyond it > 0."""
    if not gap > 0:
        return 1.0
    if metric == "accuracy":
        return min(1.0, math.exp(-2.0 * n * gap * gap))
    if metric == "balanced_accuracy":
        counts = _support(class_support)
        # radius = sqrt(ln(K / level)) * s with s = mean_c 1 / sqrt(2 n_c); solve radius = gap
        s = float(np.mean(1.0 / np.sqrt(2.0 * counts)))
        return min(1.0, counts.size * math.exp(-((gap / s) ** 2)))
    r = _brier_range(n_classes)
    return min(1.0, math.exp(-2.0 * n * (gap / r) ** 2))


def degradation(
    metric: str,
    value: float,
    *,
    n: int,
    reference: float,
    max_drop: float,
    level: float,
    class_support: Sequence[int] | npt.ArrayLike | None = None,
    n_classes: int | None = None,
) -> QualityVerdict:
    """Is ``metric`` shown, at ``level``, to be worse than ``reference`` by more than
    ``max_drop``?

    The claim is made only when the confidence bound of :func:`quality_bound` is past the
    threshold: for accuracy and balanced accuracy, upper bound ``< reference - max_drop``;
    for the Brier score (a loss), lower bound ``> reference + max_drop``.  While the true
    metric is within ``max_drop`` of the reference, that happens with probability at most
    ``level``, whatever ``n`` and the data: so a window of 30 labels cannot raise it by
    chance (at a level near 1e-7 the upper bound of 30 labels is the observed accuracy
    + 0.52), while 10,000 labels see a fall from 0.9 to 0.75 (+ 0.028).  Take ``level``
    from :func:`mlops_core.bounds.level_from_budget`, counting one test per judged metric
    and pass.

    Other metrics (macro precision, recall and F1, ROC AUC, log loss, regression metrics)
    have no distribution-free bound here: the verdict has ``judged=False`` and a reason.
    ``n`` is the number of labelled predictions; ``class_support`` (labels per class) is
    needed for ``balanced_accuracy``, ``n_classes`` for ``brier``.
    """
    level = _check_level(level)
    for name, x in (("value", value), ("reference", reference), ("max_drop", max_drop)):
        if isinstance(x, bool) or not isinstance(x, int | float | np.floating | np.integer):
            raise ValueError(f"{name} of {metric} must be a number, got {x!r}")
        if not math.isfinite(x):
            raise ValueError(f"{name} of {metric} must be finite, got {x!r}")
    if max_drop < 0:
        raise ValueError(f"max_drop of {metric} must be >= 0, got {max_drop!r}")
    value, reference, max_drop = float(value), float(reference), float(max_drop)
    if metric not in JUDGED_METRICS and metric not in _NOT_JUDGED:
        raise _unknown_metric(metric)
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise ValueError(f"n of {metric} must be an integer >= 0, got {n!r}")
    n = int(n)

    def verdict(
        degraded: bool = False,
        bound: float | None = None,
        threshold: float | None = None,
        p_value: float | None = None,
        *,
        reason: str,
    ) -> QualityVerdict:
        return QualityVerdict(
            metric=metric, value=value, reference=reference, max_drop=max_drop, level=level,
            n=n, judged=bound is not None, degraded=degraded, bound=bound,
            threshold=threshold, p_value=p_value, reason=reason,
        )  # fmt: skip

    if metric in _NOT_JUDGED:
        return verdict(reason=f"not judged: {_NOT_JUDGED[metric]}")
    top = _metric_range(metric, n_classes)
    if not 0.0 <= reference <= top:  # e.g. a reference given in percent
        raise ValueError(f"reference of {metric} must lie in [0, {top:g}], got {reference!r}")
    bound = quality_bound(
        metric, value, level, n=n, class_support=class_support, n_classes=n_classes
    )
    if bound is None:
        return verdict(reason="not judged: no labelled predictions")
    if JUDGED_METRICS[metric] == "higher_is_better":
        threshold = reference - max_drop
        degraded = bound < threshold
        gap = threshold - value
        side, cmp = "upper", ("<" if degraded else ">=")
    else:
        threshold = reference + max_drop
        degraded = bound > threshold
        gap = value - threshold
        side, cmp = "lower", (">" if degraded else "<=")
    reason = (
        f"{side} confidence bound {bound:.4g} at level {level:.3g} ({n} labels) {cmp} "
        f"threshold {threshold:.4g}: " + ("degraded" if degraded else "not shown to be worse")
    )
    p_value = _p_value(metric, gap, n, class_support, n_classes)
    return verdict(degraded, bound, threshold, p_value, reason=reason)


# --- estimated accuracy before labels ---------------------------------------------------------


def _pool_adjacent_violators(
    y: npt.NDArray[np.float64], w: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """The non-decreasing sequence closest to ``y`` in weighted least squares.

    One pass, a stack of blocks: each new point starts a block, merged with the block before
    it while that one's mean is not smaller (a violation, or a tie: a flat run becomes one
    block, as in scikit-learn, so both keep the same points); a merged block takes the
    weighted mean.  At most n merges in all.
    """
    means: list[float] = []
    weights: list[float] = []
    sizes: list[int] = []
    for yi, wi in zip(y.tolist(), w.tolist(), strict=True):
        mean, weight, size = yi, wi, 1
        while means and means[-1] >= mean:
            m0, w0, s0 = means.pop(), weights.pop(), sizes.pop()
            total = w0 + weight
            mean = (m0 * w0 + mean * weight) / total
            weight, size = total, size + s0
        means.append(mean)
        weights.append(weight)
        sizes.append(size)
    return np.repeat(np.array(means, dtype=np.float64), sizes)


#: Confidences closer than this to the first of a run are one confidence when fitting (as in
#: scikit-learn's isotonic regression): a difference of 1e-15 in a probability is rounding.
_TIE_RESOLUTION = float(np.finfo(np.float64).resolution)


def _pool_near_ties(
    xs: npt.NDArray[np.float64], inverse: npt.NDArray[np.intp]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.intp]]:
    """Merge sorted distinct values lying within :data:`_TIE_RESOLUTION` of the first value of
    their run; each run is represented by that first value."""
    group = np.empty(xs.size, dtype=np.intp)
    g, start = 0, float(xs[0])
    for i, v in enumerate(xs.tolist()):
        if v - start >= _TIE_RESOLUTION:
            g, start = g + 1, v
        group[i] = g
    firsts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    return xs[firsts], group[inverse]


class ConfidenceCalibrator:
    """Maps the probability a model gave its predicted class to P(the prediction is right).

    Fitted by isotonic regression (a non-decreasing fit: more confident predictions are
    never estimated less often right) on a labelled reference; between the reference's
    confidences it interpolates linearly, outside their range it takes the nearest end
    (scikit-learn's ``IsotonicRegression(out_of_bounds="clip")``, which the tests match to
    1e-9).  A model whose probabilities are already calibrated gets roughly the identity;
    an over-confident one is pulled down.

    It holds only the points where the fit changes slope, so it serialises to a small
    JSON-compatible dict (:meth:`to_dict` / :meth:`from_dict`) that a reference profile can
    carry.
    """

    __slots__ = ("_thresholds", "_values")

    def __init__(self, thresholds: npt.ArrayLike, values: npt.ArrayLike) -> None:
        x = _floats(thresholds, "thresholds").copy()  # frozen below: never the caller's array
        y = _floats(values, "values").copy()
        if x.size == 0 or x.size != y.size:
            raise ValueError(
                f"thresholds and values must be non-empty and of one length, got {x.size} "
                f"and {y.size}"
            )
        if (np.diff(x) <= 0).any():
            raise ValueError("thresholds must be strictly increasing")
        if (np.diff(y) < 0).any():
            raise ValueError("values must be non-decreasing (an isotonic fit)")
        if x.min() < 0 or x.max() > 1 or y.min() < 0 or y.max() > 1:
            raise ValueError("thresholds and values must lie in [0, 1] (probabilities)")
        x.setflags(write=False)
        y.setflags(write=False)
        self._thresholds = x
        self._values = y

    @classmethod
    def fit(cls, probabilities: npt.ArrayLike, correct: npt.ArrayLike) -> ConfidenceCalibrator:
        """Fit on the reference: the probability of each predicted class, and whether that
        prediction was right (booleans or 0/1)."""
        x = _floats(probabilities, "probabilities")
        c = np.asarray(correct)
        if c.ndim != 1 or c.size != x.size:
            raise ValueError(
                f"correct must be 1-D and as long as probabilities ({x.size}), got shape {c.shape}"
            )
        if x.size == 0:
            raise ValueError("probabilities is empty: the calibrator needs labelled reference data")
        if x.min() < 0 or x.max() > 1:
            raise ValueError("probabilities must lie in [0, 1]")
        if c.dtype != np.bool_ and not np.isin(c, (0, 1)).all():
            raise ValueError("correct must hold booleans or 0/1")
        y = c.astype(np.float64)
        xs, inverse = np.unique(x, return_inverse=True)  # sorted; ties pooled first
        if xs.size > 1 and (np.diff(xs) < _TIE_RESOLUTION).any():
            xs, inverse = _pool_near_ties(xs, inverse)
        counts = np.bincount(inverse).astype(np.float64)
        means = np.bincount(inverse, weights=y) / counts
        fitted = _pool_adjacent_violators(means, counts)
        keep = np.ones(xs.size, dtype=bool)  # drop interior points of flat runs
        keep[1:-1] = (fitted[1:-1] != fitted[:-2]) | (fitted[1:-1] != fitted[2:])
        return cls(xs[keep], fitted[keep])

    @property
    def thresholds(self) -> npt.NDArray[np.float64]:
        """Confidences where the fit is known (read-only)."""
        return self._thresholds

    @property
    def values(self) -> npt.NDArray[np.float64]:
        """P(correct) at each threshold (read-only)."""
        return self._values

    def calibrate(self, probabilities: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """P(correct) for each probability of a predicted class."""
        x = _floats(probabilities, "probabilities")
        return np.interp(x, self._thresholds, self._values)

    def to_dict(self) -> dict[str, list[float]]:
        """``{"thresholds": [...], "values": [...]}``, JSON-compatible."""
        return {"thresholds": self._thresholds.tolist(), "values": self._values.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConfidenceCalibrator:
        """The calibrator :meth:`to_dict` wrote; a wrong dict is a one-line ValueError."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a calibrator must be a mapping, got {type(data).__name__}")
        missing = [key for key in ("thresholds", "values") if key not in data]
        if missing:
            raise ValueError(f"calibrator has no {missing[0]!r}")
        return cls(data["thresholds"], data["values"])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ConfidenceCalibrator):
            return NotImplemented
        return bool(
            np.array_equal(self._thresholds, other._thresholds)
            and np.array_equal(self._values, other._values)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ConfidenceCalibrator({self._thresholds.size} points)"


def estimated_accuracy(
    calibrator: ConfidenceCalibrator, predicted_class_probabilities: npt.ArrayLike
) -> float:
    """Accuracy expected before any label arrives: the mean calibrated probability of the
    predicted class.

    Right while the calibration learnt on the reference still holds live: under covariate
    shift (the inputs move, ``P(y | x)`` stays) it follows the accuracy; under concept shift
    (the same inputs now have other labels) it does not move at all (docs/quality.md).
    """
    if not isinstance(calibrator, ConfidenceCalibrator):
        raise ValueError(
            f"calibrator must be a ConfidenceCalibrator, got {type(calibrator).__name__}"
        )
    x = _floats(predicted_class_probabilities, "predicted_class_probabilities")
    if x.size == 0:
        raise ValueError("predicted_class_probabilities is empty")
    if x.min() < 0 or x.max() > 1:
        raise ValueError("predicted_class_probabilities must lie in [0, 1]")
    return float(np.mean(calibrator.calibrate(x)))
