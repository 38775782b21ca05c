"""The demo's model and world: its reference carries the model, labels follow predictions
after a delay, and after the drift the estimated accuracy moves first and the realised one
falls further.  The demo as a process: tests/e2e/test_exporter_demo.py."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

import numpy as np
import orjson
import pytest
import yaml

from exporter import config as exporter_config
from exporter import demo
from mlops_core.constants import PREDICTION_FEATURE
from mlops_core.profile import ReferenceProfile
from mlops_core.quality import estimated_accuracy


def test_the_reference_profile_carries_the_models_classes_and_a_calibrator() -> None:
    profile = demo.reference_profile()
    assert profile.feature_names == [*demo.FEATURES, PREDICTION_FEATURE]
    assert profile.n_rows == 2000
    prediction = profile[PREDICTION_FEATURE]
    assert prediction.kind == "categorical" and prediction.bucket_labels[:2] == ["0", "1"]
    assert profile.calibrator is not None
    assert demo.reference_profile().hash == profile.hash  # seeded: the same on every start
    for name in demo.FEATURES:  # the features are reference.csv's, profiled as before
        assert (
            profile[name].bucket_labels
            == ReferenceProfile.from_file(demo.REFERENCE)[name].bucket_labels
        )


def _sample(drifted: bool, n: int = 20_000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    draws = [demo._one(rng, drifted=drifted) for _ in range(n)]
    classes = np.array([p["class"] for _, p, _, _ in draws])
    probabilities = np.array([p["probability"] for _, p, _, _ in draws])
    labels = np.array([label for *_, label in draws])
    return classes, probabilities, labels


def test_after_the_drift_the_estimate_moves_first_and_the_accuracy_falls_further() -> None:
    calibrator = demo.reference_profile().calibrator
    assert calibrator is not None
    before, after = _sample(False), _sample(True)
    realised = [float(np.mean(c == y)) for c, _, y in (before, after)]
    estimate = [estimated_accuracy(calibrator, p) for _, p, _ in (before, after)]
    # before: the model is the world's, calibrated; the estimate is the accuracy
    assert abs(estimate[0] - realised[0]) < 0.02
    # after: the inputs' shift lowers the model's confidence, so the estimate falls with no
    # label at all; the concept shift it cannot see takes the accuracy further down
    assert estimate[0] - estimate[1] > 0.05
    assert realised[0] - realised[1] > 0.1
    assert realised[1] < estimate[1] - 0.03
    # and the model's outputs drift: far more churn predictions
    assert np.mean(after[0]) - np.mean(before[0]) > 0.2


def test_each_prediction_gets_its_label_later_as_an_outcome_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo, "LABEL_DELAY", (0.3, 0.6))
    stop = threading.Event()
    writer = threading.Thread(
        target=demo.write_logs,
        args=(tmp_path,),
        kwargs={"rate": 400.0, "drift_after": 60.0, "stop": stop, "seed": 3},
    )
    writer.start()
    stop.wait(2.0)
    stop.set()
    writer.join(timeout=5)
    records = [
        orjson.loads(line) for line in (tmp_path / "predictions.jsonl").read_bytes().splitlines()
    ]
    predictions = {r["request_id"]: r for r in records if r["event"] == "prediction"}
    outcomes = [r for r in records if r["event"] == "outcome"]
    assert len(predictions) > 300 and len(outcomes) > 200
    seen = set()
    for outcome in outcomes:
        prediction = predictions[outcome["request_id"]]  # written before its label
        assert outcome["actual"] in (0, 1) and outcome["request_id"] not in seen
        seen.add(outcome["request_id"])
        delay = _time(outcome) - _time(prediction)
        assert 0.3 - 0.01 <= delay <= 0.6 + 0.5, delay  # + the writer's poll and load here
    # the labels not yet due at the stop are never written
    assert len(outcomes) < len(predictions)


def _time(record: dict) -> float:
    return datetime.fromisoformat(record["timestamp"]).timestamp()


def test_the_demo_config_sets_the_outcome_store_and_a_state_file_beside_it(
    tmp_path: Path,
) -> None:
    store = tmp_path / "outcomes.sqlite"
    with_store = yaml.safe_load(demo.demo_config(str(tmp_path), outcomes_store=store))
    assert with_store["outcomes"] == {"store": str(store)}
    # without a state file a restart would apply every line to the store again (and warn)
    assert with_store["logs"]["state_file"] == str(tmp_path / "exporter-state.json")
    printed = yaml.safe_load(demo.demo_config(str(tmp_path)))  # --print-config: no store
    assert "outcomes" not in printed and "state_file" not in printed["logs"]
    assert printed["reference"]["path"] == str(demo.REFERENCE)


def test_the_demo_config_with_the_saved_profile_loads(tmp_path: Path) -> None:
    reference = demo.reference_profile().save(tmp_path / "reference.profile.json")
    path = tmp_path / "config.yml"
    text = demo.demo_config(str(tmp_path), reference=reference, outcomes_store=tmp_path / "o.db")
    path.write_text(text, encoding="utf-8")
    profile, features = exporter_config.load_reference(exporter_config.load_config(path, env={}))
    assert list(features) == [*demo.FEATURES, PREDICTION_FEATURE]
    assert profile.calibrator is not None
