"""exporter.quality: the pass over a real outcome store, against sklearn.metrics (1e-9)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import sklearn.metrics as skm

from exporter.outcomes import OutcomeRow, OutcomeStore, PredictionRow
from exporter.quality import ConfidenceWindow, QualitySettings, compute_quality
from mlops_core import bounds
from mlops_core.quality import ConfidenceCalibrator

T0 = 1_700_000_000.0


def fill(store: OutcomeStore, predictions: list[dict], actuals: list[object]) -> None:
    preds = [
        PredictionRow(request_id=f"r{i}", time=T0 + i, source="p", offset=i, **p)
        for i, p in enumerate(predictions)
    ]
    outs = []
    for i, a in enumerate(actuals):
        number = float(a) if isinstance(a, int | float) and not isinstance(a, bool) else None
        label = None if isinstance(a, float) else str(a)
        outs.append(
            OutcomeRow(
                request_id=f"r{i}", time=T0 + i + 5, source="o", offset=i, actual=label,
                actual_value=number,
            )
        )  # fmt: skip
    store.apply(preds, outs)


@pytest.fixture
def store(tmp_path: Path):
    with OutcomeStore(tmp_path / "s.db", max_classes=3) as s:
        yield s


def classifier_data(n: int, classes: list[str], seed: int = 0):
    rng = np.random.default_rng(seed)
    raw = rng.dirichlet(np.ones(len(classes)), n)
    actual = [classes[int(rng.choice(len(classes), p=p))] for p in raw]
    predicted = [classes[int(j)] for j in raw.argmax(axis=1)]
    return raw, actual, predicted


def test_multiclass_metrics_and_per_class_are_sklearns(store: OutcomeStore) -> None:
    classes = ["a", "b", "c", "d", "e"]  # 5 classes; the store keeps 3, the rest __other__
    probs, actual, predicted = classifier_data(400, classes)
    rows = [
        {"predicted": p, "probabilities": dict(zip(classes, map(float, row), strict=True))}
        for p, row in zip(predicted, probs, strict=True)
    ]
    fill(store, rows, actual)
    stats = store.stats()
    snap = compute_quality(store.quality_window(), stats, QualitySettings(min_samples=100))
    m = snap.metrics
    assert snap.kind == "classifier" and snap.window_samples == 400
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(actual, predicted), abs=1e-9)
    assert m["balanced_accuracy"] == pytest.approx(
        skm.balanced_accuracy_score(actual, predicted), abs=1e-9
    )
    for name, fn in (("precision", skm.precision_score), ("recall", skm.recall_score),
                     ("f1", skm.f1_score)):  # fmt: skip
        want = fn(actual, predicted, average="macro", zero_division=0)
        assert m[f"{name}_macro"] == pytest.approx(want, abs=1e-9), name
    assert m["roc_auc"] == pytest.approx(
        skm.roc_auc_score(actual, probs, multi_class="ovr", labels=classes), abs=1e-9
    )
    assert m["log_loss"] == pytest.approx(skm.log_loss(actual, probs, labels=classes), abs=1e-9)
    assert m["brier"] == pytest.approx(
        skm.brier_score_loss(actual, probs, labels=classes), abs=1e-9
    )
    # per class: the store's first 3 classes, the others folded into __other__
    kept = {c for pair in stats.confusion for c in pair} - {"__other__"}
    assert len(kept) == 3 and set(snap.class_metrics) == kept | {"__other__"}

    def fold(labels: list[str]) -> list[str]:
        return [c if c in kept else "__other__" for c in labels]

    labels = sorted(kept | {"__other__"})
    p, r, f, s = skm.precision_recall_fscore_support(
        fold(actual), fold(predicted), labels=labels, zero_division=0
    )
    for i, c in enumerate(labels):
        got = snap.class_metrics[c]
        assert (got["precision"], got["recall"], got["f1"], got["support"]) == pytest.approx(
            (p[i], r[i], f[i], s[i]), abs=1e-9
        )


def test_binary_with_the_predicted_class_probability_only(store: OutcomeStore) -> None:
    rng = np.random.default_rng(3)
    positive = rng.uniform(0, 1, 300)
    predicted = ["yes" if p >= 0.5 else "no" for p in positive]
    actual = ["yes" if rng.uniform() < p else "no" for p in positive]
    conf = np.where(positive >= 0.5, positive, 1 - positive)
    fill(store, [{"predicted": c, "probability": float(q)} for c, q in zip(predicted, conf,
         strict=True)], actual)  # fmt: skip
    snap = compute_quality(store.quality_window(), store.stats(), QualitySettings())
    y = np.array(actual) == "yes"
    assert snap.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(y, positive), abs=1e-9)
    assert snap.metrics["brier"] == pytest.approx(skm.brier_score_loss(y, positive), abs=1e-9)
    assert snap.metrics["log_loss"] == pytest.approx(skm.log_loss(y, positive), abs=1e-9)


def test_without_probabilities_only_the_label_metrics(store: OutcomeStore) -> None:
    _, actual, predicted = classifier_data(150, ["x", "y", "z"], seed=1)
    fill(store, [{"predicted": p} for p in predicted], actual)
    snap = compute_quality(store.quality_window(), store.stats(), QualitySettings())
    assert set(snap.metrics) == {
        "accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro",
    }  # fmt: skip


def test_regressor_metrics_are_sklearns(store: OutcomeStore) -> None:
    rng = np.random.default_rng(2)
    actual = rng.normal(50, 10, 250)
    predicted = actual + rng.normal(1, 4, 250)
    fill(store, [{"value": float(v)} for v in predicted], [float(a) for a in actual])
    snap = compute_quality(store.quality_window(), store.stats(), QualitySettings())
    m = snap.metrics
    assert snap.kind == "regressor"
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(actual, predicted), abs=1e-9)
    assert m["rmse"] == pytest.approx(
        math.sqrt(skm.mean_squared_error(actual, predicted)), abs=1e-9
    )
    assert m["mape"] == pytest.approx(
        skm.mean_absolute_percentage_error(actual, predicted), abs=1e-9
    )
    assert m["r2"] == pytest.approx(skm.r2_score(actual, predicted), abs=1e-9)
    assert m["mean_error"] == pytest.approx(float(np.mean(predicted - actual)), abs=1e-9)
    assert snap.class_metrics == {}


def test_nothing_below_min_samples(store: OutcomeStore) -> None:
    _, actual, predicted = classifier_data(99, ["x", "y"])
    fill(store, [{"predicted": p} for p in predicted], actual)
    settings = QualitySettings(min_samples=100, reference={"accuracy": 0.9})
    snap = compute_quality(store.quality_window(), store.stats(), settings)
    assert snap.window_samples == 99 and not snap.metrics and not snap.verdicts
    assert snap.reference == {"accuracy": 0.9}


def test_the_level_counts_the_judged_references_and_the_verdict_uses_it(
    store: OutcomeStore,
) -> None:
    n = 2000
    rng = np.random.default_rng(4)
    actual = list(rng.choice(["a", "b"], n))
    predicted = [a if rng.uniform() < 0.7 else ("b" if a == "a" else "a") for a in actual]
    fill(store, [{"predicted": p} for p in predicted], actual)
    settings = QualitySettings(
        reference={"accuracy": 0.9, "balanced_accuracy": 0.9, "f1_macro": 0.9},
        max_drop=0.05, interval=30.0, false_alarm_budget=30 * 86400.0,
    )  # fmt: skip
    snap = compute_quality(store.quality_window(), store.stats(), settings)
    level = bounds.level_from_budget(30.0, 30 * 86400.0, 2)  # f1 has no bound: not a test
    assert snap.level == level
    assert set(snap.verdicts) == {"accuracy", "balanced_accuracy"}
    assert all(v.degraded and v.level == level and v.n == n for v in snap.verdicts.values())
    assert snap.degraded_names == ("accuracy", "balanced_accuracy")
    assert snap.notes["f1_macro"].startswith("not judged")


def test_the_estimate_is_calibrated_when_the_profile_has_a_calibrator() -> None:
    now = [T0]
    window = ConfidenceWindow(max_samples=4, max_age=60.0, clock=lambda: now[0])
    window.add([(T0 - 120, 0.99), (T0, 0.6), (T0, 0.8)])  # the first is too old
    window.add([(T0 + 1, 0.7), (T0 + 500, 0.9)])  # the future counts as now
    values = window.values()
    assert sorted(values.tolist()) == [0.6, 0.7, 0.8, 0.9]
    calibrator = ConfidenceCalibrator([0.5, 1.0], [0.25, 0.75])
    from exporter.outcomes import _window_arrays

    empty = _window_arrays([])
    settings = QualitySettings(estimate_min_samples=4)
    raw = compute_quality(empty, None, settings, confidence=values)
    assert raw.estimated["accuracy"] == pytest.approx(0.75) and not raw.calibrated
    cal = compute_quality(empty, None, settings, confidence=values, calibrator=calibrator)
    assert cal.estimated["accuracy"] == pytest.approx(0.5) and cal.calibrated
    few = compute_quality(empty, None, QualitySettings(estimate_min_samples=5), confidence=values)
    assert few.estimated == {}
