"""Prediction drift in the real exporter process, scraped over HTTP: with a reference profile
that carries the model's outputs, ``__prediction__`` is one more monitored series."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlops_core.bounds import level_from_budget
from mlops_core.constants import PREDICTION_FEATURE
from mlops_core.profile import ReferenceProfile
from tests.e2e._exporter import ExporterProcess, append, lines_of, record, running_exporter

pytestmark = pytest.mark.e2e

INTERVAL = 0.3
BUDGET = 30 * 86400.0


def _classify(x: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    return np.where(x > threshold, "high", "low")


def _setup(tmp_path: Path, predictions: str) -> Path:
    """A saved profile of x, y, plan and the model's outputs on them, and a config."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(0, 1, 2000), rng.normal(10, 2, 2000)
    plan = rng.choice(["a", "b", "c"], 2000, p=[0.5, 0.3, 0.2])
    outputs = _classify(x) if predictions == "class" else 2.0 * x + y
    ReferenceProfile.from_data({"x": x, "y": y, "plan": plan}, predictions=outputs).save(
        tmp_path / "ref.json"
    )
    (tmp_path / "logs").mkdir()
    drift = {"interval": "300ms", "min_samples": 100,
             "window": {"max_samples": 1500, "max_age": "1h"}}  # fmt: skip
    config = tmp_path / "config.yml"
    config.write_text(
        "model: {name: e2e}\n"
        "logs: {paths: [logs/*.jsonl], start_position: beginning, poll_interval: 50ms}\n"
        "reference: {path: ref.json}\n"
        f"drift: {json.dumps(drift)}\n",
        encoding="utf-8",
    )
    return config


def _traffic(n: int, seed: int, prediction: Any) -> list[dict[str, Any]]:
    """Inputs like the reference's; ``prediction(x, y)`` gives each record's ``prediction``."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        x, y = float(rng.normal(0, 1)), float(rng.normal(10, 2))
        rec = record(x, y, str(rng.choice(["a", "b", "c"], p=[0.5, 0.3, 0.2])))
        rec["prediction"] = prediction(x, y)
        out.append(rec)
    return out


def _verdicts(exp: ExporterProcess, predictions_total: int) -> dict[str, float | None]:
    """The distance verdict of every series, from a pass that saw every line written."""
    scrape = exp.wait_for(
        lambda s: (
            s.get("mlops_predictions_total", model="e2e") == predictions_total
            and s.get("mlops_drift_window_samples", model="e2e") == 1500
        ),
        what=f"{predictions_total} predictions in a full window",
    )
    scrape = exp.wait_computed_after(
        scrape.get("mlops_drift_last_computed_timestamp_seconds", model="e2e") or 0.0
    )
    return {
        name: scrape.get("mlops_feature_drift_detected", model="e2e", feature=name,
                         test="distance")
        for name in ("x", "y", "plan", PREDICTION_FEATURE)
    }  # fmt: skip


def test_a_shift_in_the_models_classes_flags_the_prediction_and_nothing_else(
    tmp_path: Path,
) -> None:
    config = _setup(tmp_path, "class")
    log = tmp_path / "logs" / "a.jsonl"
    with running_exporter(config) as exp:
        # the model as on the reference: no verdict flags anything
        same = _traffic(1500, 1, lambda x, y: {"class": str(_classify(np.array(x))),
                                               "probability": 0.8})  # fmt: skip
        append(log, lines_of(same))
        assert _verdicts(exp, 1500) == dict.fromkeys(("x", "y", "plan", PREDICTION_FEATURE), 0)
        scrape = exp.scrape()
        # one more test per pass: the level divides by 3 features + __prediction__
        assert scrape.get("mlops_drift_test_level", model="e2e") == pytest.approx(
            level_from_budget(INTERVAL, BUDGET, 4)
        )
        one = {"model": "e2e", "feature": PREDICTION_FEATURE}
        assert scrape.get("mlops_feature_drift_tolerance", **one) == 0.05
        assert scrape.get("mlops_feature_reference_missing_ratio", **one) == 0
        # same inputs, but a model that says "high" far more often (a bad threshold shipped)
        shifted = _traffic(1500, 2, lambda x, y: {"class": str(_classify(np.array(x), -0.3))})
        append(log, lines_of(shifted))
        assert _verdicts(exp, 3000) == {"x": 0, "y": 0, "plan": 0, PREDICTION_FEATURE: 1}
        after = exp.scrape()
        assert after.get("mlops_features_drifted", model="e2e") == 1
        assert after.get("mlops_feature_drift_distance", **one) > 0.2  # 0.31 -> 0.62 "high"
        assert after.get("mlops_feature_drift_chi2_p_value", **one) < 1e-6
        buckets = after.having("mlops_feature_bucket_observations_total")
        high = [v for lab, v in buckets.items()
                if dict(lab).get("feature") == PREDICTION_FEATURE
                and dict(lab).get("bucket") == "high"]  # fmt: skip
        assert high and high[0] > 1000
        # the prediction is not an input_data field: no "never seen" warning for it
        status, _, body = exp.get("/-/ready")
        assert status == 200 and PREDICTION_FEATURE.encode() not in body


def test_a_shift_in_a_regressors_values_flags_the_numeric_prediction(tmp_path: Path) -> None:
    config = _setup(tmp_path, "value")
    log = tmp_path / "logs" / "a.jsonl"
    with running_exporter(config) as exp:
        append(log, lines_of(_traffic(1500, 1, lambda x, y: {"value": 2.0 * x + y})))
        assert _verdicts(exp, 1500)[PREDICTION_FEATURE] == 0
        append(log, lines_of(_traffic(1500, 2, lambda x, y: 2.0 * x + y + 1.5)))  # bare numbers
        assert _verdicts(exp, 3000) == {"x": 0, "y": 0, "plan": 0, PREDICTION_FEATURE: 1}
        assert (
            exp.scrape().get(
                "mlops_feature_drift_ks_statistic", model="e2e", feature=PREDICTION_FEATURE
            )
            > 0.15
        )
