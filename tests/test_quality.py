"""mlops_core.quality: metrics against sklearn.metrics, the degradation verdict's error rate by
simulation, the isotonic calibrator against sklearn.isotonic, estimated accuracy under
covariate and concept shift.

scikit-learn is the oracle here and only here: the library itself uses numpy and math.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import warnings
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm
from sklearn.datasets import make_classification
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler

from mlops_core import bounds
from mlops_core.quality import (
    CLASSIFICATION_METRICS,
    JUDGED_METRICS,
    PROBABILITY_METRICS,
    REGRESSION_METRICS,
    ConfidenceCalibrator,
    classification_metrics,
    degradation,
    estimated_accuracy,
    per_class_metrics,
    positive_class_probability,
    probability_matrix,
    quality_bound,
    regression_metrics,
)
from tests.conftest import REPO_ROOT

TOL = 1e-9
HYPOTHESIS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _close(ours: float, theirs: float) -> bool:
    if math.isnan(theirs):
        return math.isnan(ours)
    return math.isclose(ours, theirs, rel_tol=TOL, abs_tol=TOL)


def _sklearn_classification(
    actual: list, predicted: list, probabilities: np.ndarray | None = None, classes=None
) -> dict[str, float]:
    """The oracle: sklearn's own functions with their default conventions."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = {
            "accuracy": skm.accuracy_score(actual, predicted),
            "balanced_accuracy": skm.balanced_accuracy_score(actual, predicted),
            "precision_macro": skm.precision_score(actual, predicted, average="macro"),
            "recall_macro": skm.recall_score(actual, predicted, average="macro"),
            "f1_macro": skm.f1_score(actual, predicted, average="macro"),
        }
        if probabilities is None:
            return out
        classes = list(classes)
        p = np.asarray(probabilities, dtype=float)
        if len(classes) == 2:
            pos = p if p.ndim == 1 else p[:, 1]
            y = np.asarray([a == classes[1] for a in actual])
            out["roc_auc"] = skm.roc_auc_score(y, pos)
            # the (n, 2) layout as given: 1 - p(positive) is not always p(negative) to the bit
            out["log_loss"] = skm.log_loss(y, pos if p.ndim == 1 else p, labels=[False, True])
            out["brier"] = skm.brier_score_loss(y, pos, pos_label=True)
        else:
            out["log_loss"] = skm.log_loss(actual, p, labels=classes)
            out["brier"] = skm.brier_score_loss(actual, p, labels=classes)
            out["roc_auc"] = _sklearn_ovr_auc(actual, p, classes)
    return out


def _sklearn_ovr_auc(actual: list, p: np.ndarray, classes: list) -> float:
    """sklearn's macro one-vs-rest AUC; over the classes present in actual when one is
    absent (sklearn itself then returns NaN, our documented divergence)."""
    present = [j for j, c in enumerate(classes) if c in set(actual)]
    if len(present) == len(classes):
        return skm.roc_auc_score(actual, p, multi_class="ovr", average="macro", labels=classes)
    aucs = [skm.roc_auc_score([a == classes[j] for a in actual], p[:, j]) for j in present]
    aucs = [x for x in aucs if not math.isnan(x)]
    return float(np.mean(aucs)) if aucs else math.nan


def _assert_matches(ours: dict[str, float], theirs: dict[str, float]) -> None:
    assert set(theirs) <= set(ours)
    bad = {k: (ours[k], theirs[k]) for k in theirs if not _close(ours[k], theirs[k])}
    assert bad == {}


# --- classification metrics against sklearn ---------------------------------------------------


def test_binary_string_labels_with_positive_class_probabilities() -> None:
    rng = np.random.default_rng(1)
    n = 2000
    classes = ["stay", "churn"]  # [negative, positive], not alphabetical on purpose
    p_churn = rng.random(n)
    actual = np.where(rng.random(n) < p_churn, "churn", "stay").tolist()
    predicted = np.where(p_churn > 0.4, "churn", "stay").tolist()
    ours = classification_metrics(actual, predicted, p_churn, classes)
    assert list(ours) == [*CLASSIFICATION_METRICS, *PROBABILITY_METRICS]
    _assert_matches(ours, _sklearn_classification(actual, predicted, p_churn, classes))
    # the (n, 2) layout gives the same figures
    two = np.column_stack([1 - p_churn, p_churn])
    _assert_matches(classification_metrics(actual, predicted, two, classes), ours)


def test_multiclass_string_labels_with_a_class_never_predicted() -> None:
    rng = np.random.default_rng(2)
    n = 3000
    classes = ["bronze", "gold", "platinum", "silver"]
    probs = rng.dirichlet([2.0, 1.0, 0.5, 1.5], size=n)
    actual = [classes[rng.choice(4, p=row)] for row in probs]
    masked = probs.copy()
    masked[:, 2] = -1  # "platinum" is never predicted
    predicted = [classes[j] for j in masked.argmax(axis=1)]
    assert "platinum" in actual and "platinum" not in predicted
    ours = classification_metrics(actual, predicted, probs, classes)
    _assert_matches(ours, _sklearn_classification(actual, predicted, probs, classes))


def test_multiclass_auc_with_a_class_absent_from_the_labels_averages_the_present_ones() -> None:
    rng = np.random.default_rng(3)
    classes = ["a", "b", "c", "d"]
    probs = rng.dirichlet(np.ones(4), size=400)
    actual = rng.choice(["a", "b", "d"], size=400).tolist()  # no "c" label in the window
    predicted = [classes[j] for j in probs.argmax(axis=1)]
    ours = classification_metrics(actual, predicted, probs, classes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk = skm.roc_auc_score(actual, probs, multi_class="ovr", labels=classes)
    assert math.isnan(sk)  # sklearn's convention, which would blank the metric
    _assert_matches(ours, _sklearn_classification(actual, predicted, probs, classes))
    assert not math.isnan(ours["roc_auc"])


def test_integer_and_boolean_labels() -> None:
    rng = np.random.default_rng(4)
    actual = rng.integers(0, 3, 500)
    predicted = np.where(rng.random(500) < 0.7, actual, rng.integers(0, 3, 500))
    _assert_matches(
        classification_metrics(actual, predicted),
        _sklearn_classification(actual.tolist(), predicted.tolist()),
    )
    a_bool, p_bool = (actual == 1).tolist(), (predicted == 1).tolist()
    score = rng.random(500)
    _assert_matches(
        classification_metrics(a_bool, p_bool, score, [False, True]),
        _sklearn_classification(a_bool, p_bool, score, [False, True]),
    )


def test_zero_division_is_zero_like_sklearns_default_and_ours_does_not_warn() -> None:
    # "c" is predicted but never true (recall 0/0), "d" true but never predicted (precision 0/0)
    actual = ["a", "a", "b", "d", "d", "b"]
    predicted = ["a", "c", "b", "a", "b", "c"]
    with pytest.warns(UndefinedMetricWarning):
        sk_precision = skm.precision_score(actual, predicted, average="macro")
    with pytest.warns(UndefinedMetricWarning):
        sk_recall = skm.recall_score(actual, predicted, average="macro")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = classification_metrics(actual, predicted)
        per = per_class_metrics(actual, predicted)
    assert _close(ours["precision_macro"], sk_precision)
    assert _close(ours["recall_macro"], sk_recall)
    _assert_matches(ours, _sklearn_classification(actual, predicted))
    assert per["c"]["recall"] == 0.0 and per["d"]["precision"] == 0.0
    # zero_division=0 and the default "warn" agree, which is the convention we follow
    assert _close(
        sk_precision, skm.precision_score(actual, predicted, average="macro", zero_division=0)
    )


def test_a_class_in_classes_but_absent_from_the_window_is_left_out_of_macro_averages() -> None:
    actual, predicted = ["a", "b", "a", "b"], ["a", "b", "b", "b"]
    with_extra = classification_metrics(actual, predicted, classes=["a", "b", "zzz"])
    _assert_matches(with_extra, _sklearn_classification(actual, predicted))  # labels=None
    per = per_class_metrics(actual, predicted, classes=["a", "b", "zzz"])
    assert per["zzz"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0.0}


def test_per_class_metrics_match_precision_recall_fscore_support() -> None:
    rng = np.random.default_rng(5)
    classes = ["x", "y", "z", "w"]
    actual = rng.choice(classes[:3], 700).tolist()
    predicted = rng.choice(classes, 700).tolist()
    ours = per_class_metrics(actual, predicted, classes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p, r, f, s = skm.precision_recall_fscore_support(actual, predicted, labels=classes)
    assert list(ours) == classes
    for j, c in enumerate(classes):
        assert _close(ours[c]["precision"], p[j]) and _close(ours[c]["recall"], r[j])
        assert _close(ours[c]["f1"], f[j]) and ours[c]["support"] == s[j]


def test_log_loss_clips_certain_wrong_predictions_like_sklearn() -> None:
    actual = ["a", "b", "c", "a"]
    probs = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.0, 0.0, 1.0]])
    predicted = ["a", "a", "b", "c"]
    ours = classification_metrics(actual, predicted, probs, ["a", "b", "c"])
    assert math.isfinite(ours["log_loss"])
    _assert_matches(ours, _sklearn_classification(actual, predicted, probs, ["a", "b", "c"]))


def test_roc_auc_is_nan_when_the_window_holds_one_class_only() -> None:
    ours = classification_metrics(["y", "y", "y"], ["y", "n", "y"], [0.9, 0.2, 0.6], ["n", "y"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert math.isnan(skm.roc_auc_score([1, 1, 1], [0.9, 0.2, 0.6]))
    assert math.isnan(ours["roc_auc"]) and math.isfinite(ours["log_loss"])


_LABELS = st.sampled_from(["ant", "bee", "cat", "dog"])


@HYPOTHESIS
@given(st.lists(st.tuples(_LABELS, _LABELS), min_size=1, max_size=80))
def test_label_metrics_match_sklearn_on_generated_windows(pairs: list) -> None:
    actual, predicted = [a for a, _ in pairs], [p for _, p in pairs]
    _assert_matches(
        classification_metrics(actual, predicted), _sklearn_classification(actual, predicted)
    )


@HYPOTHESIS
@given(
    st.integers(2, 4).flatmap(
        lambda k: st.tuples(
            st.just(k),
            st.lists(
                st.tuples(
                    st.integers(0, k - 1),
                    st.lists(st.floats(0.0, 1.0), min_size=k, max_size=k).filter(
                        lambda w: sum(w) > 1e-3
                    ),
                ),
                min_size=2,
                max_size=60,
            ),
        )
    )
)
def test_probability_metrics_match_sklearn_on_generated_windows(case: tuple) -> None:
    k, rows = case
    classes = [f"c{j}" for j in range(k)]
    actual = [classes[a] for a, _ in rows]
    weights = np.array([w for _, w in rows])
    probs = weights / weights.sum(axis=1, keepdims=True)
    predicted = [classes[j] for j in probs.argmax(axis=1)]
    ours = classification_metrics(actual, predicted, probs, classes)
    _assert_matches(ours, _sklearn_classification(actual, predicted, probs, classes))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"actual": ["a", "b"], "predicted": ["a"]}, "actual has 2 labels but predicted has 1"),
        ({"actual": [], "predicted": []}, "empty"),
        ({"actual": "ab", "predicted": "ab"}, "actual must be a sequence of class labels"),
        ({"actual": np.zeros((2, 2)), "predicted": [1, 2]}, "actual must be 1-D"),
        ({"predicted": ["a", "q"], "classes": ["a", "b"]}, "predicted holds class 'q'"),
        ({"classes": ["a", "a", "b"]}, "classes names a class twice"),
        ({"probabilities": [0.2, 0.7]}, "probabilities need classes="),
        ({"probabilities": [0.2, 0.7], "classes": ["a", "b", "c"]}, "1-D probabilities are"),
        ({"probabilities": np.ones((2, 3)) / 3, "classes": ["a", "b"]}, "shape (n, 2)"),
        ({"probabilities": [0.2, 1.7], "classes": ["a", "b"]}, "must lie in [0, 1]"),
        ({"probabilities": [0.2, np.nan], "classes": ["a", "b"]}, "NaN or infinite"),
        ({"probabilities": [0.2, 0.3, 0.1], "classes": ["a", "b"]}, "has 3 rows but actual"),
        ({"actual": [1, "a"], "predicted": [1, "a"]}, "pass classes= to give their order"),
    ],
)
def test_bad_classification_input_is_one_line_naming_the_input(kwargs: dict, message: str):
    args = {"actual": ["a", "b"], "predicted": ["a", "b"], **kwargs}
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        classification_metrics(**args)
    assert "\n" not in str(info.value)


def test_mixed_label_types_work_with_explicit_classes() -> None:
    ours = classification_metrics([1, "a", 1], [1, "a", "a"], classes=[1, "a"])
    _assert_matches(ours, _sklearn_classification(["1", "a", "1"], ["1", "a", "a"]))


# --- the probability schema's helpers ---------------------------------------------------------


def test_logged_mappings_and_scalar_probabilities_rebuild_predict_proba() -> None:
    X, y = make_classification(n_samples=600, n_features=5, random_state=0)
    labels = np.where(y == 1, "yes", "no")
    model = LogisticRegression().fit(X, labels)
    proba = model.predict_proba(X)
    classes = model.classes_.tolist()
    # what the logger writes: a mapping per prediction, in any key order
    rows = [dict(reversed(list(zip(classes, row, strict=True)))) for row in proba.tolist()]
    assert np.array_equal(probability_matrix(rows, classes), proba)
    # a binary model's scalar probability is that of the predicted class
    predicted = model.predict(X)
    scalar = proba.max(axis=1)
    positive = positive_class_probability(predicted, scalar, classes)
    assert np.allclose(positive, proba[:, 1], rtol=0, atol=1e-15)
    _assert_matches(
        classification_metrics(labels, predicted, positive, classes),
        _sklearn_classification(labels.tolist(), predicted.tolist(), proba, classes),
    )


def test_probability_helpers_refuse_what_they_cannot_align() -> None:
    with pytest.raises(ValueError, match="row 1 names class 'z', not among classes"):
        probability_matrix([{"a": 1.0}, {"z": 1.0}], ["a", "b"])
    with pytest.raises(ValueError, match="row 0 must be a mapping"):
        probability_matrix([[0.5, 0.5]], ["a", "b"])  # type: ignore[list-item]
    assert probability_matrix([{"a": 1.0}], ["a", "b"]).tolist() == [[1.0, 0.0]]
    with pytest.raises(ValueError, match=r"classes must be \[negative, positive\]"):
        positive_class_probability(["a"], [0.5], ["a", "b", "c"])
    with pytest.raises(ValueError, match="predicted holds class 'c'"):
        positive_class_probability(["c"], [0.5], ["a", "b"])


# --- regression metrics against sklearn -------------------------------------------------------


def _sklearn_regression(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    away = np.abs(actual) >= np.finfo(float).eps
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "mae": skm.mean_absolute_error(actual, predicted),
            "rmse": skm.root_mean_squared_error(actual, predicted),
            "mape": skm.mean_absolute_percentage_error(actual[away], predicted[away])
            if away.any()
            else math.nan,
            "r2": skm.r2_score(actual, predicted),
            "mean_error": float(np.mean(predicted - actual)),
        }


def test_regression_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(6)
    actual = rng.normal(50, 20, 5000)
    predicted = actual + rng.normal(1.5, 5, 5000)
    ours = regression_metrics(actual, predicted)
    assert list(ours) == list(REGRESSION_METRICS)
    _assert_matches(ours, _sklearn_regression(actual, predicted))
    # no actual near zero here, so MAPE is sklearn's on every sample
    assert _close(ours["mape"], skm.mean_absolute_percentage_error(actual, predicted))


def test_mape_leaves_out_actuals_at_zero_instead_of_exploding() -> None:
    actual = np.array([0.0, 10.0, -20.0, 0.0, 5.0])
    predicted = np.array([1.0, 11.0, -18.0, -2.0, 5.5])
    ours = regression_metrics(actual, predicted)
    assert skm.mean_absolute_percentage_error(actual, predicted) > 1e14  # sklearn's eps
    assert _close(
        ours["mape"], skm.mean_absolute_percentage_error(actual[[1, 2, 4]], predicted[[1, 2, 4]])
    )
    assert math.isnan(regression_metrics([0.0, 0.0], [1.0, 2.0])["mape"])
    # a threshold in the target's units leaves out small actuals too
    raised = regression_metrics(actual, predicted, mape_min_abs_actual=6.0)
    assert _close(
        raised["mape"], skm.mean_absolute_percentage_error(actual[[1, 2]], predicted[[1, 2]])
    )


def test_mean_error_is_predicted_minus_actual() -> None:
    actual = np.array([1.0, 2.0, 3.0])
    over = regression_metrics(actual, actual + 0.5)["mean_error"]
    under = regression_metrics(actual, actual - 0.5)["mean_error"]
    assert over > 0 > under and _close(over, float(np.mean((actual + 0.5) - actual)))


def test_r2_conventions_follow_sklearn_for_constant_and_single_actuals() -> None:
    for actual, predicted in [
        ([3.0, 3.0, 3.0], [3.0, 3.0, 3.0]),
        ([3.0, 3.0], [2.0, 4.0]),
        ([3.0], [2.0]),
    ]:
        a, p = np.array(actual), np.array(predicted)
        _assert_matches(regression_metrics(a, p), _sklearn_regression(a, p))


_FLOATS = st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False)


@HYPOTHESIS
@given(st.lists(st.tuples(_FLOATS, _FLOATS), min_size=1, max_size=60))
def test_regression_metrics_match_sklearn_on_generated_windows(pairs: list) -> None:
    actual = np.array([a for a, _ in pairs])
    predicted = np.array([p for _, p in pairs])
    _assert_matches(regression_metrics(actual, predicted), _sklearn_regression(actual, predicted))


def test_bad_regression_input_names_it() -> None:
    with pytest.raises(ValueError, match="actual holds a NaN"):
        regression_metrics([1.0, math.nan], [1.0, 2.0])
    with pytest.raises(ValueError, match="actual has 2 values but predicted has 1"):
        regression_metrics([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="predicted must be numbers"):
        regression_metrics([1.0], ["x"])
    with pytest.raises(ValueError, match="mape_min_abs_actual must be"):
        regression_metrics([1.0], [1.0], mape_min_abs_actual=0.0)


# --- the degradation verdict ------------------------------------------------------------------

#: a realistic level: a pass every 30 s, one false alarm a year, 12 judged metrics in all
#: (3 judged metrics of 4 models), the same union bound as the drift verdict's
LEVEL = bounds.level_from_budget(interval=30.0, budget=365 * 86400.0, tests=12)


def test_the_realistic_level_is_near_1e_7() -> None:
    assert 5e-8 < LEVEL < 2e-7


def test_30_labels_never_fire_while_the_naive_rule_fires_often() -> None:
    """At 30 labels the bound is the observed accuracy + 0.52: noise cannot cross it."""
    rng = np.random.default_rng(7)
    reference, max_drop, n = 0.9, 0.05, 30
    for true_accuracy in (0.9, 0.85, 0.75):  # fine, at the threshold, a real drop
        observed = rng.binomial(n, true_accuracy, size=20_000) / n
        fired = sum(
            degradation(
                "accuracy", float(v), n=n, reference=reference, max_drop=max_drop, level=LEVEL
            ).degraded
            for v in np.unique(observed)
        )
        assert fired == 0
        if true_accuracy == 0.85:
            assert np.mean(observed < reference - max_drop) > 0.3  # "value < threshold"
    radius = quality_bound("accuracy", 0.0, LEVEL, n=n)
    assert radius is not None and radius > 0.5


def _miss_rate_upper(values: np.ndarray, truth: float, bound: Callable[[float], float]) -> float:
    """Share of draws whose upper bound lies below the truth (one bound per distinct value)."""
    distinct, counts = np.unique(values, return_counts=True)
    below = np.array([bound(float(v)) < truth for v in distinct])
    return float(counts[below].sum() / values.size)


def test_bounds_are_the_stated_hoeffding_radii() -> None:
    """The formulas of docs/quality.md, written out independently of the library."""
    level, n = 1e-6, 2500
    assert quality_bound("accuracy", 0.8, level, n=n) == pytest.approx(
        0.8 + math.sqrt(math.log(1 / level) / (2 * n)), abs=1e-15
    )
    support = [1200, 900, 400]
    union = np.mean([math.sqrt(math.log(3 / level) / (2 * c)) for c in support])
    assert quality_bound(
        "balanced_accuracy", 0.7, level, n=n, class_support=[*support, 0]
    ) == pytest.approx(0.7 + union, abs=1e-15)
    for n_classes, loss_range in ((2, 1.0), (5, 2.0)):
        radius = loss_range * math.sqrt(math.log(1 / level) / (2 * n))
        assert quality_bound("brier", 0.3, level, n=n, n_classes=n_classes) == pytest.approx(
            0.3 - radius, abs=1e-15
        )
    # clipped to the metric's range
    assert quality_bound("accuracy", 0.99, level, n=10) == 1.0
    assert quality_bound("brier", 0.01, level, n=10, n_classes=2) == 0.0


@pytest.mark.parametrize("n", [100, 1000, 10_000])
@pytest.mark.parametrize("level", [0.05, 0.01])
def test_accuracy_bound_covers_the_true_accuracy_at_its_level(n: int, level: float) -> None:
    rng = np.random.default_rng(n)
    draws = 100_000
    for truth in (0.5, 0.8, 0.95):
        observed = rng.binomial(n, truth, size=draws) / n
        rate = _miss_rate_upper(observed, truth, lambda v: quality_bound("accuracy", v, level, n=n))
        assert rate <= level, (truth, rate)
    # the simulation can fail: a bound half as wide misses more often than the level
    narrow = _miss_rate_upper(
        rng.binomial(n, 0.5, size=draws) / n,
        0.5,
        lambda v: v + bounds.missing_radius(n, level) / 2,
    )
    assert narrow > level


@pytest.mark.parametrize("n", [100, 1000, 10_000])
def test_balanced_accuracy_bound_covers_with_the_union_over_classes(n: int) -> None:
    rng = np.random.default_rng(n + 1)
    level, draws = 0.05, 50_000
    support = np.maximum(1, np.round(n * np.array([0.7, 0.25, 0.05]))).astype(int)
    recalls = np.array([0.95, 0.7, 0.4])
    truth = float(recalls.mean())
    observed = np.mean(rng.binomial(support, recalls, size=(draws, 3)) / support, axis=1)

    def upper(v: float) -> float:
        bound = quality_bound(
            "balanced_accuracy", v, level, n=int(support.sum()), class_support=support
        )
        assert bound is not None
        return bound

    # the radius does not depend on the value: one radius serves every draw
    radius = upper(0.0)
    for v in (0.1, 0.5, float(observed[0])):
        assert upper(v) == pytest.approx(min(1.0, v + radius), abs=1e-12)
    rate = float(np.mean(observed + radius < truth))
    assert rate <= level, rate
    # the simulation can fail: a quarter of the radius misses far more often than the level
    assert float(np.mean(observed + radius / 4 < truth)) > level


@pytest.mark.parametrize("n", [100, 1000, 10_000])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_brier_lower_bound_covers_the_true_brier_score(n: int, n_classes: int) -> None:
    """Per-sample Brier losses of a calibrated model; the true mean from a huge sample."""
    rng = np.random.default_rng(10 * n + n_classes)
    level = 0.05

    def losses(size: tuple[int, ...]) -> np.ndarray:
        probs = rng.dirichlet(np.full(n_classes, 0.7), size=size)
        cum = probs.cumsum(axis=-1)
        y = (rng.random((*size, 1)) > cum).sum(axis=-1)
        onehot = np.eye(n_classes)[np.minimum(y, n_classes - 1)]
        per = np.sum((probs - onehot) ** 2, axis=-1)
        return per / 2 if n_classes == 2 else per  # binary Brier is on the positive class

    truth = float(losses((2_000_000,)).mean())
    draws = max(200, 2_000_000 // n)
    means = np.concatenate(
        [losses((min(draws, 200), n)).mean(axis=1) for _ in range(math.ceil(draws / 200))]
    )
    lower = means - (1.0 if n_classes == 2 else 2.0) * bounds.missing_radius(n, level)
    assert float(np.mean(lower > truth)) <= level
    v = float(means[0])
    assert quality_bound("brier", v, level, n=n, n_classes=n_classes) == pytest.approx(
        max(0.0, lower[0]), abs=1e-12
    )


def test_a_real_accuracy_drop_is_detected_with_10000_labels() -> None:
    rng = np.random.default_rng(8)
    n = 10_000
    for true_accuracy, expected in ((0.75, True), (0.87, False), (0.9, False)):
        observed = rng.binomial(n, true_accuracy, size=1000) / n
        verdicts = {
            degradation(
                "accuracy", float(v), n=n, reference=0.9, max_drop=0.05, level=LEVEL
            ).degraded
            for v in np.unique(observed)
        }
        assert verdicts == {expected}, true_accuracy


def test_a_real_brier_rise_and_balanced_accuracy_fall_are_detected() -> None:
    brier = degradation(
        "brier", 0.2, n=10_000, reference=0.1, max_drop=0.05, level=LEVEL, n_classes=2
    )
    assert brier.judged and brier.degraded
    assert brier.bound > brier.threshold == pytest.approx(0.15)
    flat = degradation(
        "brier", 0.16, n=10_000, reference=0.1, max_drop=0.05, level=LEVEL, n_classes=3
    )
    assert flat.judged and not flat.degraded  # 0.16 - 2 * 0.028 < 0.15
    actual = ["a"] * 6000 + ["b"] * 3000 + ["c"] * 1000
    predicted = ["a"] * 5700 + ["b"] * 300 + ["b"] * 2100 + ["a"] * 900 + ["c"] * 300 + ["a"] * 700
    ba = classification_metrics(actual, predicted)["balanced_accuracy"]
    support = [m["support"] for m in per_class_metrics(actual, predicted).values()]
    verdict = degradation(
        "balanced_accuracy",
        ba,
        n=len(actual),
        reference=0.9,
        max_drop=0.05,
        level=LEVEL,
        class_support=support,
    )
    assert verdict.degraded and verdict.bound < 0.85


@pytest.mark.parametrize("metric", list(JUDGED_METRICS))
def test_degraded_exactly_when_the_p_value_is_below_the_level(metric: str) -> None:
    rng = np.random.default_rng(9)
    kwargs = {"class_support": [40, 25, 5], "n_classes": 3}
    for _ in range(200):
        value = float(rng.uniform(0.0, 1.0))
        reference = float(rng.uniform(0.0, 1.0))
        n = int(rng.integers(1, 5000))
        v = degradation(
            metric, value, n=n, reference=reference, max_drop=0.02, level=1e-3, **kwargs
        )
        assert v.judged and v.degraded == (v.p_value < 1e-3)
        if 1e-300 < v.p_value < 1.0:  # at its own p-value the bound meets the threshold
            b = quality_bound(metric, value, v.p_value, n=n, **kwargs)
            assert b == pytest.approx(v.threshold, abs=1e-9)


@pytest.mark.parametrize(
    "metric",
    [
        "precision_macro",
        "recall_macro",
        "f1_macro",
        "roc_auc",
        "log_loss",
        *REGRESSION_METRICS,
    ],
)
def test_metrics_without_a_distribution_free_bound_are_never_judged(metric: str) -> None:
    v = degradation(metric, 0.0, n=1_000_000, reference=0.99, max_drop=0.0, level=0.5)
    assert not v.judged and not v.degraded
    assert v.bound is None and v.p_value is None and v.reason.startswith("not judged: ")
    assert quality_bound(metric, 0.0, 0.5, n=1000) is None


def test_no_labels_is_not_judged_and_bad_input_is_named() -> None:
    v = degradation("accuracy", 0.0, n=0, reference=0.9, max_drop=0.05, level=LEVEL)
    assert not v.judged and "no labelled predictions" in v.reason
    with pytest.raises(ValueError, match="did you mean 'accuracy'"):
        degradation("acuracy", 0.5, n=10, reference=0.9, max_drop=0.05, level=LEVEL)
    with pytest.raises(ValueError, match="balanced_accuracy needs class_support="):
        degradation("balanced_accuracy", 0.5, n=10, reference=0.9, max_drop=0.05, level=LEVEL)
    with pytest.raises(ValueError, match="brier needs n_classes="):
        degradation("brier", 0.5, n=10, reference=0.1, max_drop=0.05, level=LEVEL)
    with pytest.raises(ValueError, match="level must be a number in"):
        degradation("accuracy", 0.5, n=10, reference=0.9, max_drop=0.05, level=0.0)
    with pytest.raises(ValueError, match="max_drop of accuracy must be >= 0"):
        degradation("accuracy", 0.5, n=10, reference=0.9, max_drop=-0.1, level=LEVEL)
    with pytest.raises(ValueError, match="value of accuracy must be finite"):
        degradation("accuracy", math.nan, n=10, reference=0.9, max_drop=0.1, level=LEVEL)
    with pytest.raises(ValueError, match="n of accuracy must be an integer"):
        degradation("accuracy", 0.5, n=-1, reference=0.9, max_drop=0.1, level=LEVEL)
    with pytest.raises(ValueError, match=re.escape("reference of accuracy must lie in [0, 1]")):
        degradation("accuracy", 0.5, n=10, reference=87.0, max_drop=5.0, level=LEVEL)
    with pytest.raises(ValueError, match=re.escape("value of brier must lie in [0, 1]")):
        degradation("brier", 1.5, n=10, reference=0.1, max_drop=0.05, level=LEVEL, n_classes=2)
    assert degradation(
        "brier", 1.5, n=10, reference=0.1, max_drop=0.05, level=LEVEL, n_classes=3
    ).judged  # multiclass Brier lies in [0, 2]


def test_the_calibrator_does_not_freeze_the_callers_arrays() -> None:
    thresholds, values = np.array([0.2, 0.8]), np.array([0.1, 0.9])
    cal = ConfidenceCalibrator(thresholds, values)
    thresholds[0] = 0.3  # still writable, and the calibrator kept its own copy
    assert cal.thresholds[0] == 0.2 and not cal.thresholds.flags.writeable


# --- the calibrator against sklearn's isotonic regression --------------------------------------


def _iso(x: np.ndarray, y: np.ndarray) -> IsotonicRegression:
    return IsotonicRegression(out_of_bounds="clip").fit(x, y)


@pytest.mark.parametrize("seed", range(6))
def test_pool_adjacent_violators_matches_sklearn_isotonic(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 5000))
    x = rng.random(n)
    if seed % 2:
        x = np.round(x, int(rng.integers(1, 3)))  # many tied confidences
    correct = rng.random(n) < x**1.5
    ours = ConfidenceCalibrator.fit(x, correct)
    theirs = _iso(x, correct)
    grid = np.concatenate([x, np.linspace(-0.2, 1.2, 2001)])
    assert (
        np.max(np.abs(ours.calibrate(np.clip(grid, 0, 1)) - theirs.predict(np.clip(grid, 0, 1))))
        < TOL
    )
    assert np.array_equal(ours.thresholds, theirs.X_thresholds_)
    assert np.max(np.abs(ours.values - theirs.y_thresholds_)) < TOL


@HYPOTHESIS
@given(
    st.lists(st.tuples(st.floats(0.0, 1.0), st.booleans()), min_size=1, max_size=120),
    st.integers(0, 4),
)
def test_calibrator_matches_sklearn_isotonic_on_generated_data(rows: list, digits: int) -> None:
    x = np.array([p for p, _ in rows])
    if digits:
        x = np.round(x, digits)
    y = np.array([c for _, c in rows])
    ours = ConfidenceCalibrator.fit(x, y)
    grid = np.concatenate([x, np.linspace(0, 1, 101)])
    assert np.max(np.abs(ours.calibrate(grid) - _iso(x, y).predict(grid))) < TOL
    assert np.all(np.diff(ours.values) >= 0)


def test_calibrator_round_trips_through_json() -> None:
    rng = np.random.default_rng(11)
    x = rng.random(3000)
    cal = ConfidenceCalibrator.fit(x, rng.random(3000) < x)
    data = json.loads(json.dumps(cal.to_dict()))
    assert set(data) == {"thresholds", "values"}
    back = ConfidenceCalibrator.from_dict(data)
    assert back == cal
    probe = rng.random(1000)
    assert np.array_equal(back.calibrate(probe), cal.calibrate(probe))
    assert len(data["thresholds"]) < 300  # small enough for a profile to carry


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"values": [0.5]}, "calibrator has no 'thresholds'"),
        ({"thresholds": [0.5, 0.4], "values": [0.1, 0.2]}, "strictly increasing"),
        ({"thresholds": [0.4, 0.5], "values": [0.3, 0.2]}, "non-decreasing"),
        ({"thresholds": [0.4, 1.5], "values": [0.2, 0.3]}, "lie in [0, 1]"),
        ({"thresholds": [0.4], "values": [0.2, 0.3]}, "of one length"),
        ({"thresholds": [0.4, "x"], "values": [0.2, 0.3]}, "thresholds must be numbers"),
        ([0.4], "a calibrator must be a mapping"),
    ],
)
def test_a_broken_calibrator_dict_is_one_line_naming_the_key(data: object, message: str):
    with pytest.raises(ValueError, match=re.escape(message)):
        ConfidenceCalibrator.from_dict(data)  # type: ignore[arg-type]


def test_calibrator_fit_refuses_bad_reference_data() -> None:
    with pytest.raises(ValueError, match="correct must hold booleans or 0/1"):
        ConfidenceCalibrator.fit([0.5, 0.6], [0, 2])
    with pytest.raises(ValueError, match="as long as probabilities"):
        ConfidenceCalibrator.fit([0.5, 0.6], [1])
    with pytest.raises(ValueError, match="probabilities must lie in"):
        ConfidenceCalibrator.fit([0.5, 1.6], [1, 0])
    with pytest.raises(ValueError, match="predicted_class_probabilities is empty"):
        estimated_accuracy(ConfidenceCalibrator([0.5], [0.5]), [])


# --- estimated accuracy under shift -------------------------------------------------------------


def _shift_setup(n_classes: int):
    """A model that stays calibrated under covariate shift: logistic regression on degree-2
    features is well specified for make_classification's Gaussian clusters (one per class,
    each with its own covariance: the Bayes posterior is quadratic-logistic)."""
    X, y = make_classification(
        n_samples=30_000,
        n_features=4,
        n_informative=3,
        n_redundant=0,
        n_clusters_per_class=1,
        n_classes=n_classes,
        class_sep=0.7 if n_classes == 2 else 0.9,
        flip_y=0.0,
        random_state=0,
    )
    train, ref, live = slice(0, 10_000), slice(10_000, 20_000), slice(20_000, None)
    model = make_pipeline(
        PolynomialFeatures(2), StandardScaler(), LogisticRegression(max_iter=2000)
    ).fit(X[train], y[train])

    def predict(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        proba = model.predict_proba(features)
        return model.classes_[proba.argmax(axis=1)], proba.max(axis=1)

    pred_ref, conf_ref = predict(X[ref])
    calibrator = ConfidenceCalibrator.fit(conf_ref, pred_ref == y[ref])
    return calibrator, float(np.mean(pred_ref == y[ref])), predict, X[live], y[live]


@pytest.mark.parametrize("n_classes", [2, 3])
def test_estimated_accuracy_follows_a_covariate_shift_within_0_03(n_classes: int) -> None:
    calibrator, ref_accuracy, predict, X, y = _shift_setup(n_classes)
    errors, moved = [], 0
    for feature in range(X.shape[1]):
        for side in ("low", "high"):  # keep the live rows on one side of a quantile
            cut = np.quantile(X[:, feature], 0.3 if side == "low" else 0.7)
            rows = X[:, feature] < cut if side == "low" else X[:, feature] > cut
            predicted, confidence = predict(X[rows])
            realised = float(np.mean(predicted == y[rows]))
            estimate = estimated_accuracy(calibrator, confidence)
            errors.append(abs(estimate - realised))
            if abs(realised - ref_accuracy) > 0.04:  # the shift moved the accuracy ...
                moved += 1
                assert abs(estimate - realised) < abs(ref_accuracy - realised)  # ... and so
    print(
        f"n_classes={n_classes}: max |estimate - realised| = {max(errors):.4f} over "
        f"{len(errors)} shifts, {moved} of which moved the accuracy by > 0.04"
    )
    assert max(errors) <= 0.03
    assert moved >= 3  # the shifts are real, not 8 copies of the reference


def test_estimated_accuracy_does_not_see_a_concept_shift() -> None:
    """Labels flipped where feature 0 is high: the inputs (and so the confidences) do not
    move, the accuracy falls, the estimate stays put. This is where it fails, by design."""
    calibrator, ref_accuracy, predict, X, y = _shift_setup(2)
    flipped = X[:, 0] > np.quantile(X[:, 0], 0.6)
    y_new = np.where(flipped, 1 - y, y)
    predicted, confidence = predict(X)
    realised = float(np.mean(predicted == y_new))
    estimate = estimated_accuracy(calibrator, confidence)
    print(
        f"concept shift: realised {realised:.3f}, estimated {estimate:.3f}, "
        f"reference {ref_accuracy:.3f}"
    )
    assert realised < ref_accuracy - 0.2
    assert abs(estimate - ref_accuracy) < 0.03  # the estimate does not follow
    assert estimate - realised > 0.2


def test_calibrator_corrects_an_overconfident_model() -> None:
    rng = np.random.default_rng(12)
    confidence = rng.uniform(0.5, 1.0, 20_000)
    correct = rng.random(20_000) < 0.5 + (confidence - 0.5) * 0.4  # right less often than claimed
    calibrator = ConfidenceCalibrator.fit(confidence[:10_000], correct[:10_000])
    live = confidence[10_000:]
    assert abs(estimated_accuracy(calibrator, live) - np.mean(correct[10_000:])) < 0.02
    assert np.mean(live) - np.mean(correct[10_000:]) > 0.1  # the raw mean would be far off


# --- what the exporter imports ----------------------------------------------------------------


def test_importing_quality_loads_neither_scipy_nor_sklearn() -> None:
    code = (
        "import sys, mlops_core.quality; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('scipy', 'sklearn')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_quality_names_are_reexported_from_the_package() -> None:
    import mlops_core
    from mlops_core import quality

    for name in (
        "classification_metrics",
        "per_class_metrics",
        "regression_metrics",
        "degradation",
        "quality_bound",
        "QualityVerdict",
        "ConfidenceCalibrator",
        "estimated_accuracy",
        "probability_matrix",
        "positive_class_probability",
    ):
        assert getattr(mlops_core, name) is getattr(quality, name)
