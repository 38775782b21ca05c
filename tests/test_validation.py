"""The pre-deployment gate against real scikit-learn models and broken inputs."""

from __future__ import annotations

import pickle
import time

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, roc_auc_score
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier

from mlops_core.errors import ValidationConfigError
from mlops_core.validation import validate_model_for_deployment

ISSUE_CONFIG = {
    "min_accuracy": 0.80,
    "max_latency_ms": 100,
    "required_methods": ["predict", "predict_proba"],
}


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(
        n_samples=800, n_features=8, n_informative=5, class_sep=1.5, random_state=7
    )
    return X[:500], y[:500], X[500:], y[500:]


@pytest.fixture(scope="module")
def good_model(data):
    X, y, _, _ = data
    return LogisticRegression(max_iter=500).fit(X, y)


class SlowModel:
    """A real model whose predict takes at least ``delay`` seconds, like a remote call."""

    def __init__(self, model, delay: float) -> None:
        self.model = model
        self.delay = delay
        self.classes_ = model.classes_

    def predict(self, X):
        time.sleep(self.delay)
        return self.model.predict(X)

    def predict_proba(self, X):
        return self.model.predict_proba(X)


class ExplodingModel:
    def predict(self, X):
        raise RuntimeError("feature 'age' missing\n  at layer 3")

    def predict_proba(self, X):
        raise RuntimeError("never")


def _check(result, name):
    matches = [c for c in result["checks"] if c["check"] == name]
    assert len(matches) == 1, result["checks"]
    return matches[0]


# --- the issue's example ----------------------------------------------------------------------


def test_good_model_passes_the_issue_example(data, good_model):
    _, _, Xv, yv = data
    result = validate_model_for_deployment(good_model, Xv, yv, ISSUE_CONFIG)
    assert result["passed"] is True
    assert result["errors"] == []
    acc = float(np.mean(good_model.predict(Xv) == yv))
    assert result["metrics"]["accuracy"] == pytest.approx(acc)
    assert acc >= 0.8
    lat = result["metrics"]
    assert 0 < lat["latency_p50_ms"] <= lat["latency_p95_ms"] <= lat["latency_p99_ms"]
    assert lat["latency_samples"] == 100
    names = [c["check"] for c in result["checks"]]
    assert names == ["required_methods", "min_accuracy", "max_latency_ms"]
    assert all(c["outcome"] == "pass" for c in result["checks"])
    assert _check(result, "min_accuracy")["threshold"] == 0.8
    assert _check(result, "max_latency_ms")["value"] == lat["latency_p99_ms"]


def test_f1_and_roc_auc_agree_with_scikit_learn(data, good_model):
    _, _, Xv, yv = data
    result = validate_model_for_deployment(
        good_model, Xv, yv, {"min_f1": 0.5, "min_roc_auc": 0.5, "latency_samples": 5}
    )
    assert result["passed"]
    assert result["metrics"]["f1"] == pytest.approx(f1_score(yv, good_model.predict(Xv)))
    expected_auc = roc_auc_score(yv, good_model.predict_proba(Xv)[:, 1])
    assert result["metrics"]["roc_auc"] == pytest.approx(expected_auc)


def test_macro_f1_for_multiclass_and_roc_auc_refused(data):
    X, y = make_classification(
        n_samples=300, n_classes=3, n_informative=4, n_features=6, random_state=1
    )
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X[:200], y[:200])
    result = validate_model_for_deployment(
        model, X[200:], y[200:], {"min_roc_auc": 0.5, "latency_samples": 5}
    )
    assert result["metrics"]["f1"] == pytest.approx(
        f1_score(y[200:], model.predict(X[200:]), average="macro")
    )
    assert not result["passed"]
    assert result["errors"] == ["min_roc_auc: roc_auc needs a binary target; y_val has 3 classes"]


def test_string_labels(data):
    X, y, Xv, yv = data
    names = np.array(["stay", "churn"])
    model = LogisticRegression(max_iter=500).fit(X, names[y])
    result = validate_model_for_deployment(
        model, Xv, names[yv], {"min_f1": 0.1, "min_roc_auc": 0.5, "pos_label": "churn"}
    )
    assert result["passed"], result["errors"]
    pred = model.predict(Xv)
    assert result["metrics"]["f1"] == pytest.approx(f1_score(names[yv], pred, pos_label="churn"))
    churn_col = list(model.classes_).index("churn")
    auc = roc_auc_score(names[yv] == "churn", model.predict_proba(Xv)[:, churn_col])
    assert result["metrics"]["roc_auc"] == pytest.approx(auc)


# --- failing gates ----------------------------------------------------------------------------


def test_too_inaccurate_model_fails(data):
    X, y, Xv, yv = data
    dummy = DummyClassifier(strategy="constant", constant=0).fit(X, y)
    result = validate_model_for_deployment(dummy, Xv, yv, ISSUE_CONFIG)
    assert result["passed"] is False
    check = _check(result, "min_accuracy")
    assert check["outcome"] == "fail"
    assert check["value"] == pytest.approx(np.mean(yv == 0))
    assert len(result["errors"]) == 1
    assert result["errors"][0].startswith("accuracy 0.")
    assert "below the minimum 0.8" in result["errors"][0]


def test_model_without_predict_proba_fails_required_methods(data):
    X, y, Xv, yv = data
    svm = LinearSVC().fit(X, y)
    assert not hasattr(svm, "predict_proba")
    result = validate_model_for_deployment(svm, Xv, yv, {**ISSUE_CONFIG, "min_roc_auc": 0.7})
    assert not result["passed"]
    assert _check(result, "required_methods")["outcome"] == "fail"
    assert _check(result, "min_accuracy")["outcome"] == "pass"  # the rest still ran
    assert result["errors"] == [
        "model lacks required method(s): predict_proba",
        "min_roc_auc: roc_auc needs predict_proba, which the model does not have",
    ]


def test_slow_model_fails_latency(data, good_model):
    _, _, Xv, yv = data
    slow = SlowModel(good_model, delay=0.02)
    config = {**ISSUE_CONFIG, "max_latency_ms": 10, "latency_samples": 10, "latency_warmup": 2}
    result = validate_model_for_deployment(slow, Xv, yv, config)
    assert not result["passed"]
    check = _check(result, "max_latency_ms")
    assert check["outcome"] == "fail"
    assert result["metrics"]["latency_p50_ms"] >= 20.0
    assert result["metrics"]["latency_samples"] == 10
    assert result["errors"] == [
        f"latency_p99_ms {check['value']:.4g} is above the maximum 10 (max_latency_ms)"
    ]


def test_model_size_limit(tmp_path, data, good_model):
    _, _, Xv, yv = data
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(good_model))
    size_mb = path.stat().st_size / 2**20
    ok = validate_model_for_deployment(
        good_model, Xv, yv, {"max_model_size_mb": 1, "latency_samples": 3}, model_path=path
    )
    assert ok["passed"]
    assert ok["metrics"]["model_size_mb"] == pytest.approx(size_mb)
    too_big = validate_model_for_deployment(
        good_model,
        Xv,
        yv,
        {"max_model_size_mb": size_mb / 2, "model_path": str(path), "latency_samples": 3},
    )
    assert not too_big["passed"]
    assert _check(too_big, "max_model_size_mb")["outcome"] == "fail"
    missing = validate_model_for_deployment(
        good_model, Xv, yv, {"max_model_size_mb": 1, "model_path": str(tmp_path / "nope.pkl")}
    )
    assert missing["errors"] == [
        f"max_model_size_mb: cannot read model file {tmp_path / 'nope.pkl'}: "
        "No such file or directory"
    ]
    no_path = validate_model_for_deployment(good_model, Xv, yv, {"max_model_size_mb": 1})
    assert no_path["errors"] == ["max_model_size_mb: no model file given (config key model_path)"]


# --- bad inputs: errors, never tracebacks -----------------------------------------------------


def test_mismatched_lengths(data, good_model):
    _, _, Xv, yv = data
    result = validate_model_for_deployment(good_model, Xv, yv[:-5], ISSUE_CONFIG)
    assert not result["passed"]
    assert result["errors"] == [f"X_val has {len(Xv)} rows but y_val has {len(yv) - 5}"]
    assert _check(result, "min_accuracy")["outcome"] == "skipped"


def test_empty_validation_data(good_model):
    result = validate_model_for_deployment(
        good_model, np.empty((0, 8)), np.empty(0), {"min_accuracy": 0.5}
    )
    assert result["errors"] == ["validation data is empty (X_val has 0 rows, y_val 0)"]
    assert not result["passed"]
    none = validate_model_for_deployment(good_model, None, None, {})
    assert none["errors"] == ["validation data is missing (X_val or y_val is None)"]


def test_missing_labels_are_an_error_not_a_wrong_accuracy(data, good_model):
    _, _, Xv, yv = data
    y = yv.astype(float)
    y[[3, 7]] = np.nan  # e.g. empty target cells in a CSV
    result = validate_model_for_deployment(good_model, Xv, y, {"min_accuracy": 0.5})
    assert result["errors"] == [f"y_val has 2 missing (NaN or infinite) label(s) of {len(yv)}"]
    assert _check(result, "min_accuracy")["outcome"] == "skipped"
    assert "accuracy" not in result["metrics"]


def test_predict_that_raises_is_one_line(data):
    _, _, Xv, yv = data
    result = validate_model_for_deployment(ExplodingModel(), Xv, yv, ISSUE_CONFIG)
    assert not result["passed"]
    assert result["errors"] == [
        "model.predict raised RuntimeError: feature 'age' missing at layer 3"
    ]


def test_wrong_number_of_features_from_sklearn(data, good_model):
    _, _, Xv, yv = data
    result = validate_model_for_deployment(good_model, Xv[:, :3], yv, {"min_accuracy": 0.5})
    assert not result["passed"]
    assert len(result["errors"]) == 1
    assert result["errors"][0].startswith("model.predict raised ValueError: X has 3 features")


def test_object_without_predict(data):
    _, _, Xv, yv = data
    result = validate_model_for_deployment(object(), Xv, yv, {"min_accuracy": 0.5})
    assert result["errors"] == ["model lacks required method(s): predict"]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"min_acuracy": 0.8}, "min_acuracy: unknown key (did you mean 'min_accuracy'?)"),
        ({"colour": "red"}, "colour: unknown key (expected one of: min_accuracy, min_f1,"),
        ({"min_accuracy": "high"}, "min_accuracy: expected a finite number, got 'high' (str)"),
        (
            {"required_methods": "predict"},
            "required_methods: expected a list of method names, got 'predict' (str)",
        ),
        ({"latency_samples": 0}, "latency_samples: expected a positive integer, got 0 (int)"),
        ({"model_path": 5}, "model_path: expected a file path, got 5 (int)"),
        (
            {"metric_thresholds": {"precision": {"threshold": 1}}},
            "metric_thresholds.precision: unknown key (expected one of: accuracy, f1, roc_auc,",
        ),
        (
            {"metric_thresholds": {"accuracy": {"min_change": 1}}},
            "metric_thresholds.accuracy.min_change: unknown key (expected one of: threshold, "
            "min_absolute_change, min_relative_change, greater_is_better)",
        ),
        (
            {"metric_thresholds": {"accuracy": {"min_relative_change": 2}}},
            "metric_thresholds.accuracy.min_relative_change: expected a number between -1 and 1",
        ),
        ({"metric_thresholds": {"accuracy": {}}}, "metric_thresholds.accuracy: sets none of"),
        ({"min_accuracy": 5}, "min_accuracy: must lie in [0, 1], got 5 (a share: 0.87, not 87)"),
        ({"min_f1": -0.1}, "min_f1: must lie in [0, 1], got -0.1 (a share: 0.87, not 87)"),
        ({"min_roc_auc": 85}, "min_roc_auc: must lie in [0, 1], got 85 (a share: 0.87, not 87)"),
        ({"max_latency_ms": -5}, "max_latency_ms: must be positive, got -5"),
        ({"max_latency_ms": 0}, "max_latency_ms: must be positive, got 0"),
        ({"max_model_size_mb": -1}, "max_model_size_mb: must be positive, got -1"),
        (
            {"metric_thresholds": {"accuracy": {"threshold": 87}}},
            "metric_thresholds.accuracy.threshold: must lie in [0, 1], got 87 (a share: 0.87, "
            "not 87)",
        ),
        (
            {"metric_thresholds": {"latency_p99_ms": {"threshold": -5}}},
            "metric_thresholds.latency_p99_ms.threshold: must be positive, got -5",
        ),
        (
            {"metric_thresholds": {"f1": {"min_absolute_change": 2}}},
            "metric_thresholds.f1.min_absolute_change: must lie in [-1, 1], got 2 (f1 is a "
            "share: one point is 0.01)",
        ),
    ],
)
def test_bad_config_raises_validation_config_error(data, good_model, config, message):
    _, _, Xv, yv = data
    with pytest.raises(ValidationConfigError) as info:
        validate_model_for_deployment(good_model, Xv, yv, config)
    assert isinstance(info.value, ValueError)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_the_metric_thresholds_section_has_one_entry_per_known_metric():
    import msgspec

    from mlops_core.validation import METRICS, MetricThresholds

    assert [f.name for f in msgspec.structs.fields(MetricThresholds)] == list(METRICS)


def test_a_config_key_set_to_null_takes_its_default(data, good_model):
    _, _, Xv, yv = data
    result = validate_model_for_deployment(
        good_model, Xv, yv, {"min_accuracy": 0.5, "latency_samples": None, "pos_label": None}
    )
    assert result["passed"] and result["metrics"]["latency_samples"] == 100


# --- baseline comparison (MLflow MetricThreshold semantics) -----------------------------------


@pytest.fixture(scope="module")
def weak_model(data):
    X, y, _, _ = data
    return DecisionTreeClassifier(max_depth=1, random_state=0).fit(X, y)


def _acc(model, X, y):
    return float(np.mean(model.predict(X) == y))


def test_candidate_better_than_baseline_passes(data, good_model, weak_model):
    _, _, Xv, yv = data
    good, weak = _acc(good_model, Xv, yv), _acc(weak_model, Xv, yv)
    assert good > weak + 0.02  # the premise of the test
    config = {
        "metric_thresholds": {
            "accuracy": {"threshold": 0.8, "min_absolute_change": 0.01, "min_relative_change": 0.01}
        },
        "latency_samples": 3,
    }
    result = validate_model_for_deployment(good_model, Xv, yv, config, baseline_model=weak_model)
    assert result["passed"], result["errors"]
    assert result["baseline_metrics"]["accuracy"] == pytest.approx(weak)
    absolute = _check(result, "accuracy vs baseline (absolute)")
    assert absolute["threshold"] == pytest.approx(weak + 0.01)
    relative = _check(result, "accuracy vs baseline (relative)")
    assert relative["threshold"] == pytest.approx(weak * 1.01)


def test_candidate_worse_than_baseline_fails(data, good_model, weak_model):
    _, _, Xv, yv = data
    good, weak = _acc(good_model, Xv, yv), _acc(weak_model, Xv, yv)
    config = {"metric_thresholds": {"accuracy": {"min_absolute_change": 0}}}
    result = validate_model_for_deployment(weak_model, Xv, yv, config, baseline_model=good_model)
    assert not result["passed"]
    assert result["errors"] == [
        f"accuracy {weak:.4g} is not >= {good:.4g} (baseline {good:.4g}, min_absolute_change 0)"
    ]


def test_negative_change_is_a_tolerated_regression(data, good_model, weak_model):
    _, _, Xv, yv = data
    good, weak = _acc(good_model, Xv, yv), _acc(weak_model, Xv, yv)
    gap = good - weak
    loose = {"metric_thresholds": {"accuracy": {"min_absolute_change": -(gap + 0.01)}}}
    tight = {"metric_thresholds": {"accuracy": {"min_absolute_change": -(gap - 0.01)}}}
    assert validate_model_for_deployment(weak_model, Xv, yv, loose, baseline_model=good_model)[
        "passed"
    ]
    assert not validate_model_for_deployment(weak_model, Xv, yv, tight, baseline_model=good_model)[
        "passed"
    ]


def test_smaller_is_better_for_latency(data, good_model):
    _, _, Xv, yv = data
    # 50 ms per call: far above any scheduling stall of the fast model on a loaded machine,
    # so neither direction depends on timing luck; few samples keep the test cheap
    slow = SlowModel(good_model, delay=0.05)
    config = {
        "metric_thresholds": {"latency_p99_ms": {"min_relative_change": 0.0}},
        "latency_samples": 3,
        "latency_warmup": 0,
    }
    # the slow candidate must not be slower than the fast baseline: it is, so it fails
    result = validate_model_for_deployment(slow, Xv, yv, config, baseline_model=good_model)
    assert not result["passed"]
    check = _check(result, "latency_p99_ms vs baseline (relative)")
    assert check["outcome"] == "fail"
    assert check["threshold"] == pytest.approx(result["baseline_metrics"]["latency_p99_ms"])
    # the other way round passes
    reverse = validate_model_for_deployment(good_model, Xv, yv, config, baseline_model=slow)
    assert reverse["passed"], reverse["errors"]


def test_change_without_baseline_fails_loudly(data, good_model):
    _, _, Xv, yv = data
    config = {"metric_thresholds": {"f1": {"min_absolute_change": 0.0}}, "latency_samples": 2}
    result = validate_model_for_deployment(good_model, Xv, yv, config)
    assert result["errors"] == [
        "f1 vs baseline (absolute): min_absolute_change needs a baseline model, none was given"
    ]


def test_model_size_against_the_baseline_file(tmp_path, data, good_model, weak_model):
    _, _, Xv, yv = data
    big, small = tmp_path / "big.pkl", tmp_path / "small.pkl"
    big.write_bytes(pickle.dumps(good_model) + b"\0" * 200_000)
    small.write_bytes(pickle.dumps(weak_model))
    config = {
        "metric_thresholds": {"model_size_mb": {"min_relative_change": -0.5}},
        "latency_samples": 2,
    }
    # smaller is better: the candidate may be at most 50% larger than the baseline
    result = validate_model_for_deployment(
        good_model, Xv, yv, config, model_path=big, baseline_model=weak_model,
        baseline_model_path=small,
    )  # fmt: skip
    assert not result["passed"]
    check = _check(result, "model_size_mb vs baseline (relative)")
    assert check["threshold"] == pytest.approx(small.stat().st_size / 2**20 * 1.5)
    assert check["value"] == pytest.approx(big.stat().st_size / 2**20)
    reverse = validate_model_for_deployment(
        weak_model, Xv, yv, config, model_path=small, baseline_model=good_model,
        baseline_model_path=big,
    )  # fmt: skip
    assert reverse["passed"], reverse["errors"]
