"""Pre-deployment validation gate: is this model good, fast and small enough to ship?

``validate_model_for_deployment`` runs a candidate model on a held-out validation set and
checks it against the thresholds in ``config``.  It never raises for a bad model or bad
data: every problem becomes one human-readable line in ``errors`` so a CI job can print
them and block the deployment.  Only a wrong ``config`` (a programming error: unknown key,
non-numeric threshold) raises :class:`~mlops_core.errors.ValidationConfigError`.

The model is duck-typed: anything with ``predict`` (and ``predict_proba`` for ROC AUC)
works.  Metrics are computed with numpy/scipy, so scikit-learn is not needed at run time.

The comparison with a baseline model follows the semantics of MLflow's ``MetricThreshold``:
for a metric where greater is better the candidate must reach ``threshold``, must be
``>= baseline + min_absolute_change`` and ``>= baseline + |baseline| * min_relative_change``
(mirrored when smaller is better).  Unlike MLflow, the changes may be negative to express a
tolerated regression ("not worse than the baseline by more than 0.01").
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Annotated, Any

import msgspec
import numpy as np
from msgspec import Meta

from mlops_core import schema
from mlops_core.errors import ValidationConfigError
from mlops_core.schema import FiniteNumber, Parse, Schema, Text

# metric name -> greater is better (used by metric_thresholds when not given)
METRICS: dict[str, bool] = {
    "accuracy": True,
    "f1": True,
    "roc_auc": True,
    "latency_p50_ms": False,
    "latency_p95_ms": False,
    "latency_p99_ms": False,
    "model_size_mb": False,
}


# the latency measurement stops after this many seconds, however many samples remain
_LATENCY_BUDGET_S = 10.0
_MIB = 1024 * 1024


def validate_model_for_deployment(
    model: Any,
    X_val: Any,
    y_val: Any,
    config: Mapping[str, Any] | GateConfig | None = None,
    *,
    baseline_model: Any = None,
    model_path: str | os.PathLike[str] | None = None,
    baseline_model_path: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Run the gate; return ``{"passed", "errors", "metrics", "checks", "baseline_metrics"}``.

    ``checks`` lists every configured check as ``{"check", "metric", "threshold", "value",
    "outcome", "message"}`` with ``outcome`` one of ``pass``, ``fail``, ``skipped`` (could not
    run because an earlier problem is already in ``errors``).  ``passed`` is true only when
    ``errors`` is empty.  ``model_path`` (or the config key of that name) is the model file
    whose size ``max_model_size_mb`` limits; ``baseline_model`` is the model currently in
    production, needed by the ``min_absolute_change``/``min_relative_change`` comparisons
    (``baseline_model_path`` its file, for comparing ``model_size_mb``).
    """
    cfg = check_config(config or {})
    thresholds = _metric_thresholds(cfg)
    path = model_path if model_path is not None else cfg.model_path
    report = _Report()

    metrics: dict[str, Any] = {}
    usable = _evaluate(model, X_val, y_val, cfg, metrics, report, who="model")
    wants_size = cfg.max_model_size_mb is not None or "model_size_mb" in thresholds
    if path is not None or wants_size:
        _measure_size(path, metrics)

    baseline_metrics: dict[str, Any] | None = None
    if baseline_model is not None and usable:
        baseline_metrics = {}
        _evaluate(baseline_model, X_val, y_val, cfg, baseline_metrics, report, who="baseline")
        if baseline_model_path is not None:
            _measure_size(baseline_model_path, baseline_metrics)

    _bound(report, cfg, metrics, "min_accuracy", "accuracy", greater=True, usable=usable)
    _bound(report, cfg, metrics, "min_f1", "f1", greater=True, usable=usable)
    _bound(report, cfg, metrics, "min_roc_auc", "roc_auc", greater=True, usable=usable)
    _bound(report, cfg, metrics, "max_latency_ms", "latency_p99_ms", greater=False, usable=usable)
    _bound(report, cfg, metrics, "max_model_size_mb", "model_size_mb", greater=False, usable=True)
    if thresholds:
        _compare(report, thresholds, metrics, baseline_metrics, usable)

    return {
        "passed": not report.errors,
        "errors": report.errors,
        "metrics": metrics,
        "checks": report.checks,
        "baseline_metrics": baseline_metrics,
    }


class _Report:
    """Collects checks and error lines; a failed check adds exactly one error line."""

    def __init__(self) -> None:
        self.checks: list[dict[str, Any]] = []
        self.errors: list[str] = []

    def check(
        self,
        name: str,
        metric: str | None,
        threshold: Any,
        value: Any,
        ok: bool | None,
        message: str = "",
    ) -> None:
        outcome = "skipped" if ok is None else ("pass" if ok else "fail")
        self.checks.append(
            {
                "check": name,
                "metric": metric,
                "threshold": threshold,
                "value": value,
                "outcome": outcome,
                "message": message,
            }
        )
        if ok is False:
            self.errors.append(message or f"{name} failed")

    def error(self, message: str) -> None:
        self.errors.append(message)


# --- configuration ----------------------------------------------------------------------------


def _file_path(raw: Any) -> str:
    if not isinstance(raw, str | os.PathLike):
        raise ValueError(f"expected a file path, got {schema.describe(raw)}")
    return os.fspath(raw)


#: the metrics that are shares, in [0, 1] (the others are milliseconds or MiB)
SHARES = ("accuracy", "f1", "roc_auc")
_SHARE_HINT = " (a share: 0.87, not 87)"


def _share_bound(value: float) -> float:
    """A bound on a share: outside [0, 1] the gate would fail (or pass) every model."""
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"must lie in [0, 1], got {value:g}{_SHARE_HINT}")
    return value


def _positive_bound(value: float) -> float:
    """A bound on a latency or a size: at or below 0 no model could ever pass it."""
    if value <= 0:
        raise ValueError(f"must be positive, got {value:g}")
    return value


#: a threshold on a share (``min_accuracy: 0.8``)
Share = Annotated[FiniteNumber, Parse(_share_bound)]
#: a threshold on milliseconds or MiB (``max_latency_ms: 50``)
PositiveBound = Annotated[FiniteNumber, Parse(_positive_bound)]


class MetricThreshold(Schema, frozen=True):
    """One entry of ``metric_thresholds`` (MLflow's ``MetricThreshold``)."""

    threshold: FiniteNumber | None = None
    min_absolute_change: FiniteNumber | None = None
    min_relative_change: (
        Annotated[FiniteNumber, Meta(ge=-1, le=1, description="a number between -1 and 1")] | None
    ) = None
    greater_is_better: Annotated[bool, Meta(description="true or false")] | None = None


class MetricThresholds(Schema, frozen=True):
    """``metric_thresholds``: one optional entry per metric of :data:`METRICS`."""

    accuracy: MetricThreshold | None = None
    f1: MetricThreshold | None = None
    roc_auc: MetricThreshold | None = None
    latency_p50_ms: MetricThreshold | None = None
    latency_p95_ms: MetricThreshold | None = None
    latency_p99_ms: MetricThreshold | None = None
    model_size_mb: MetricThreshold | None = None


class GateConfig(Schema, frozen=True):
    """The gate's configuration (``gate.yml``); a check whose key is None is off."""

    min_accuracy: Share | None = None
    min_f1: Share | None = None
    min_roc_auc: Share | None = None
    max_latency_ms: PositiveBound | None = None
    max_model_size_mb: PositiveBound | None = None
    required_methods: Annotated[tuple[Text, ...], Meta(description="a list of method names")] = (
        "predict",
    )
    model_path: Annotated[str, Parse(_file_path)] | None = None
    metric_thresholds: MetricThresholds | None = None
    pos_label: Any = None  # None: 1/True when present, else the largest label
    latency_samples: Annotated[int, Meta(ge=1, description="a positive integer")] = 100
    latency_warmup: Annotated[int, Meta(ge=0, description="a non-negative integer")] = 10


#: config key -> default (None: the check is off unless configured)
DEFAULTS: dict[str, Any] = {
    f.name: f.default if f.default is not msgspec.NODEFAULT else f.default_factory()
    for f in msgspec.structs.fields(GateConfig)
}


def check_config(
    config: Mapping[str, Any] | GateConfig, *, source: str | None = None
) -> GateConfig:
    """The config with defaults filled in; raises ValidationConfigError naming a bad key
    (``[source: ]min_acuracy: unknown key (did you mean 'min_accuracy'?)``).

    Public so a caller (the CLI) can reject a wrong config before loading a large model.
    """
    if isinstance(config, GateConfig):
        return config
    cfg = schema.convert(config, GateConfig, error=ValidationConfigError, source=source)
    where = f"{source}: " if source else ""
    for metric, spec in _metric_thresholds(cfg).items():
        if len(spec) == 1:  # greater_is_better alone
            raise ValidationConfigError(
                f"{where}metric_thresholds.{metric}: sets none of threshold, "
                "min_absolute_change, min_relative_change"
            )
        problem = _threshold_problem(metric, spec)
        if problem:
            raise ValidationConfigError(f"{where}metric_thresholds.{metric}.{problem}")
    return cfg


#: the keys that configure a check; a config without any checks nothing worth a gate
CHECK_KEYS = (
    "min_accuracy", "min_f1", "min_roc_auc", "max_latency_ms", "max_model_size_mb",
    "metric_thresholds", "required_methods",
)  # fmt: skip


def check_configures_a_check(config: Mapping[str, Any], *, source: str | None = None) -> None:
    """Refuse a config that sets none of :data:`CHECK_KEYS` (an empty or comment-only file).

    Such a gate checks only that the model has ``predict`` and prints PASSED: in CI that
    is a gate that silently lets every model through.  For a command line; the Python API
    keeps taking an empty config (the caller sees ``checks``).
    """
    if not any(config.get(key) is not None for key in CHECK_KEYS):
        where = f"{source}: " if source else ""
        raise ValidationConfigError(
            f"{where}configures no check: set at least one of {', '.join(CHECK_KEYS)}"
        )


def _threshold_problem(metric: str, spec: Mapping[str, Any]) -> str | None:
    """``key: problem`` when a ``metric_thresholds`` bound could never be met (or always
    is) for what ``metric`` measures, else None."""
    threshold = spec.get("threshold")
    change = spec.get("min_absolute_change")
    if metric in SHARES:
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            return f"threshold: must lie in [0, 1], got {threshold:g}{_SHARE_HINT}"
        if change is not None and not -1.0 <= change <= 1.0:
            return (
                f"min_absolute_change: must lie in [-1, 1], got {change:g} "
                f"({metric} is a share: one point is 0.01)"
            )
    elif threshold is not None and threshold <= 0:
        return f"threshold: must be positive, got {threshold:g}"
    return None


def _metric_thresholds(cfg: GateConfig) -> dict[str, dict[str, Any]]:
    """``metric_thresholds`` as metric -> its set bounds and ``greater_is_better``."""
    if cfg.metric_thresholds is None:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for metric, greater in METRICS.items():
        spec: MetricThreshold | None = getattr(cfg.metric_thresholds, metric)
        if spec is None:
            continue
        entry: dict[str, Any] = {
            "greater_is_better": greater
            if spec.greater_is_better is None
            else spec.greater_is_better
        }
        for key in ("threshold", "min_absolute_change", "min_relative_change"):
            if getattr(spec, key) is not None:
                entry[key] = getattr(spec, key)
        out[metric] = entry
    return out


def _kind(value: Any) -> str:
    return type(value).__name__


# --- evaluation -------------------------------------------------------------------------------


def _evaluate(
    model: Any,
    X: Any,
    y: Any,
    cfg: GateConfig,
    metrics: dict[str, Any],
    report: _Report,
    *,
    who: str,
) -> bool:
    """Fill ``metrics``; return False when the model or the data cannot be evaluated."""
    label = "model" if who == "model" else "baseline model"
    if who == "model":
        missing = [m for m in cfg.required_methods if not callable(getattr(model, m, None))]
        report.check(
            "required_methods",
            None,
            list(cfg.required_methods),
            sorted(set(cfg.required_methods) - set(missing)),
            not missing,
            f"model lacks required method(s): {', '.join(missing)}" if missing else "",
        )
    if not callable(getattr(model, "predict", None)):
        if who != "model" or "predict" not in cfg.required_methods:
            report.error(f"{label} has no predict method")
        return False

    n, y_arr, problem = _check_data(X, y)
    if problem:
        if who == "model":
            report.error(problem)
        return False
    metrics["n_samples"] = n

    pred, problem = _call(model.predict, X, label, "predict")
    if problem is None:
        pred = np.asarray(pred)
        if pred.ndim == 2 and pred.shape[1] == 1:
            pred = pred.ravel()
        if pred.ndim != 1 or pred.shape[0] != n:
            problem = f"{label}.predict returned shape {pred.shape} for {n} rows"
    if problem:
        report.error(problem)
        return False

    classes = np.unique(y_arr)
    metrics["accuracy"] = float(np.mean(_equal(pred, y_arr)))
    pos_label = cfg.pos_label if cfg.pos_label is not None else _positive(classes)
    metrics["f1"] = _f1(y_arr, pred, classes, pos_label)
    auc_problem = None
    if len(classes) != 2:
        auc_problem = f"roc_auc needs a binary target; y_val has {len(classes)} classes"
    elif not callable(getattr(model, "predict_proba", None)):
        auc_problem = f"roc_auc needs predict_proba, which the {label} does not have"
    else:
        auc, auc_problem = _roc_auc(model, X, y_arr, pos_label, n, label)
        if auc is not None:
            metrics["roc_auc"] = auc
    if auc_problem:
        metrics.setdefault("unavailable", {})["roc_auc"] = auc_problem

    _measure_latency(model, X, n, cfg, metrics, report, label)
    return True


def _check_data(X: Any, y: Any) -> tuple[int, np.ndarray, str | None]:
    empty = np.empty(0)
    if X is None or y is None:
        return 0, empty, "validation data is missing (X_val or y_val is None)"
    try:
        n = int(X.shape[0]) if hasattr(X, "shape") else len(X)
    except (TypeError, IndexError):
        return 0, empty, f"X_val has no length (got {_kind(X)})"
    try:
        y_arr = np.asarray(y)
    except Exception as exc:
        return 0, empty, f"y_val cannot be read as an array: {_first_line(exc)}"
    if y_arr.ndim == 2 and y_arr.shape[1] == 1:
        y_arr = y_arr.ravel()
    if y_arr.ndim != 1:
        return 0, empty, f"y_val must be one-dimensional, got shape {y_arr.shape}"
    if n == 0 or y_arr.shape[0] == 0:
        return 0, empty, f"validation data is empty (X_val has {n} rows, y_val {y_arr.shape[0]})"
    if n != y_arr.shape[0]:
        return 0, empty, f"X_val has {n} rows but y_val has {y_arr.shape[0]}"
    if y_arr.dtype.kind == "f" and not np.all(np.isfinite(y_arr)):
        missing = int(np.sum(~np.isfinite(y_arr)))
        return 0, empty, f"y_val has {missing} missing (NaN or infinite) label(s) of {n}"
    return n, y_arr, None


def _call(func: Callable[[Any], Any], X: Any, label: str, name: str) -> tuple[Any, str | None]:
    try:
        return func(X), None
    except Exception as exc:
        return None, f"{label}.{name} raised {type(exc).__name__}: {_first_line(exc)}"


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _equal(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    try:
        eq = a == b
    except Exception:
        eq = None
    if not isinstance(eq, np.ndarray) or eq.shape != a.shape:
        # incomparable dtypes (e.g. str predictions against int labels) are simply unequal
        eq = np.array([x == z for x, z in zip(a.tolist(), b.tolist(), strict=True)], dtype=bool)
    return eq.astype(bool)


def _positive(classes: np.ndarray) -> Any:
    """The positive class of a binary target: 1/True when present, else the largest label."""
    values = classes.tolist()
    for candidate in (1, True):
        if candidate in values:
            return candidate
    return values[-1] if values else None


def _f1(y: np.ndarray, pred: np.ndarray, classes: np.ndarray, pos_label: Any) -> float:
    """Binary F1 of ``pos_label`` for two classes; macro F1 over all labels otherwise."""
    if len(classes) == 2:
        labels = [pos_label]
    else:
        labels = sorted(set(classes.tolist()) | set(np.unique(pred).tolist()), key=repr)
    scores = []
    for label in labels:
        t = _equal(y, np.full(y.shape, label, dtype=object))
        p = _equal(pred, np.full(pred.shape, label, dtype=object))
        tp = float(np.sum(t & p))
        denom = float(np.sum(t) + np.sum(p))
        scores.append(2 * tp / denom if denom else 0.0)
    return float(np.mean(scores))


def _roc_auc(
    model: Any, X: Any, y: np.ndarray, pos_label: Any, n: int, label: str
) -> tuple[float | None, str | None]:
    proba, problem = _call(model.predict_proba, X, label, "predict_proba")
    if problem:
        return None, problem
    proba = np.asarray(proba, dtype=float)
    if proba.ndim == 2:
        classes = list(getattr(model, "classes_", []))
        col = classes.index(pos_label) if pos_label in classes else proba.shape[1] - 1
        scores = proba[:, col]
    else:
        scores = proba
    if scores.shape[0] != n:
        return None, f"{label}.predict_proba returned {scores.shape[0]} rows for {n}"
    if not np.all(np.isfinite(scores)):
        return None, f"{label}.predict_proba returned non-finite probabilities"
    positive = _equal(y, np.full(y.shape, pos_label, dtype=object))
    n_pos = int(positive.sum())
    n_neg = n - n_pos
    if n_pos == 0 or n_neg == 0:
        return None, "roc_auc needs both classes in y_val"
    from scipy.stats import rankdata  # deferred: scipy is heavy and only needed here

    ranks = rankdata(scores)  # average ranks for ties, as in the Mann-Whitney U statistic
    auc = (float(ranks[positive].sum()) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return auc, None


def _row(X: Any, i: int) -> Any:
    if hasattr(X, "iloc"):
        return X.iloc[i : i + 1]
    return X[i : i + 1]


def _measure_latency(
    model: Any,
    X: Any,
    n: int,
    cfg: GateConfig,
    metrics: dict[str, Any],
    report: _Report,
    label: str,
) -> None:
    """Time single-row ``predict`` calls (a request as the server sees it) after a warm-up."""
    warmup, samples = cfg.latency_warmup, cfg.latency_samples
    try:
        for i in range(warmup):
            model.predict(_row(X, i % n))
        timings = []
        deadline = time.perf_counter() + _LATENCY_BUDGET_S
        for i in range(samples):
            row = _row(X, i % n)
            start = time.perf_counter()
            model.predict(row)
            timings.append((time.perf_counter() - start) * 1000.0)
            if time.perf_counter() > deadline:
                break
    except Exception as exc:
        report.error(
            f"{label}.predict on a single row raised {type(exc).__name__}: {_first_line(exc)}"
        )
        return
    p50, p95, p99 = np.percentile(np.asarray(timings), [50, 95, 99])
    metrics["latency_p50_ms"] = float(p50)
    metrics["latency_p95_ms"] = float(p95)
    metrics["latency_p99_ms"] = float(p99)
    metrics["latency_samples"] = len(timings)


def _measure_size(path: str | os.PathLike[str] | None, metrics: dict[str, Any]) -> None:
    if path is None:
        reason = "no model file given (config key model_path)"
    else:
        try:
            metrics["model_size_mb"] = os.path.getsize(path) / _MIB
            return
        except OSError as exc:
            reason = f"cannot read model file {os.fspath(path)}: {exc.strerror or exc}"
    metrics.setdefault("unavailable", {})["model_size_mb"] = reason


# --- checks -----------------------------------------------------------------------------------


def _bound(
    report: _Report,
    cfg: GateConfig,
    metrics: Mapping[str, Any],
    key: str,
    metric: str,
    *,
    greater: bool,
    usable: bool,
) -> None:
    limit = getattr(cfg, key)
    if limit is None:
        return
    value = metrics.get(metric)
    if value is None:
        reason = metrics.get("unavailable", {}).get(metric)
        if reason and (usable or metric == "model_size_mb"):
            report.check(key, metric, limit, None, False, f"{key}: {reason}")
        elif not usable:
            report.check(key, metric, limit, None, None, "not evaluated: see the errors above")
        else:
            report.check(key, metric, limit, None, None, f"{metric} was not measured")
        return
    ok = value >= limit if greater else value <= limit
    word = "below the minimum" if greater else "above the maximum"
    message = "" if ok else f"{metric} {_fmt(value)} is {word} {_fmt(limit)} ({key})"
    report.check(key, metric, limit, value, ok, message)


def _compare(
    report: _Report,
    thresholds: Mapping[str, Mapping[str, Any]],
    metrics: Mapping[str, Any],
    baseline: Mapping[str, Any] | None,
    usable: bool,
) -> None:
    """MLflow ``MetricThreshold`` semantics, one check per configured bound."""
    for metric, spec in thresholds.items():
        greater = spec["greater_is_better"]
        value = metrics.get(metric)
        reason = metrics.get("unavailable", {}).get(metric) or (
            "not evaluated: see the errors above" if not usable else f"{metric} was not measured"
        )
        cmp = ">=" if greater else "<="
        if "threshold" in spec:
            name = f"{metric} threshold"
            limit = spec["threshold"]
            if value is None:
                report.check(
                    name, metric, limit, None, False if usable else None, f"{name}: {reason}"
                )
            else:
                ok = value >= limit if greater else value <= limit
                msg = "" if ok else f"{metric} {_fmt(value)} is not {cmp} threshold {_fmt(limit)}"
                report.check(name, metric, limit, value, ok, msg)
        for key, kind in (("min_absolute_change", "absolute"), ("min_relative_change", "relative")):
            if key not in spec:
                continue
            name = f"{metric} vs baseline ({kind})"
            change = spec[key]
            base = None if baseline is None else baseline.get(metric)
            if value is None:
                report.check(
                    name, metric, None, None, False if usable else None, f"{name}: {reason}"
                )
                continue
            if baseline is None:
                report.check(
                    name,
                    metric,
                    None,
                    value,
                    False,
                    f"{name}: {key} needs a baseline model, none was given",
                )
                continue
            if base is None:
                why = baseline.get("unavailable", {}).get(metric) or "not measured"
                report.check(
                    name,
                    metric,
                    None,
                    value,
                    False,
                    f"{name}: baseline {metric} unavailable: {why}",
                )
                continue
            delta = change if kind == "absolute" else abs(base) * change
            limit = base + delta if greater else base - delta
            ok = value >= limit if greater else value <= limit
            msg = (
                ""
                if ok
                else (
                    f"{metric} {_fmt(value)} is not {cmp} {_fmt(limit)} "
                    f"(baseline {_fmt(base)}, {key} {_fmt(change)})"
                )
            )
            report.check(name, metric, limit, value, ok, msg)


def _fmt(value: float) -> str:
    return f"{value:.4g}"
