"""``mlops-exporter --demo``: real numbers move at /metrics with no other setup."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.e2e._exporter import REPO_ROOT, start_exporter

pytestmark = pytest.mark.e2e


def test_demo_shows_drift_in_the_drifting_features_only() -> None:
    # The README's demo injects drift after 30 s; the hidden flags shorten that for CI.
    exp = start_exporter(None, args=["--demo", "--demo.drift-after=3", "--demo.interval=1s"])
    try:
        before = exp.wait_for(
            lambda s: s.get("mlops_features_drifted", model="churn") is not None,
            what="a first verdict",
        )
        assert before.get("mlops_reference_samples", model="churn") == 2000
        # the demo's profile carries the model's outputs: they drift with the inputs
        after = exp.wait_for(
            lambda s: s.get("mlops_features_drifted", model="churn") == 3,
            timeout=30,
            what="drift in monthly_charges, plan and the model's outputs",
        )
        for feature in ("monthly_charges", "plan", "__prediction__"):
            assert after.get("mlops_feature_drift_psi", model="churn", feature=feature) >= 0.2
            assert (
                after.get(
                    "mlops_feature_drift_detected", model="churn", feature=feature, test="distance"
                )
                == 1
            )
        for feature in ("age", "tenure_months", "support_calls", "region"):
            assert after.get("mlops_feature_drift_psi", model="churn", feature=feature) < 0.2
        predictions = after.get("mlops_predictions_total", model="churn")
        assert predictions > 200
        # The writer's occasional health_check lines are other events, never invalid ones.
        other = after.get("mlops_log_lines_other_events_total", model="churn")
        assert after.get("mlops_log_lines_total", model="churn") == predictions + other
        assert sum(after.having("mlops_log_lines_invalid_total").values()) == 0
        assert after.get(
            "mlops_prediction_latency_window_seconds", model="churn", quantile="0.5"
        ) == pytest.approx(0.02, rel=0.3)
    finally:
        assert exp.stop() == 0


def test_log_writer_module_and_printed_config(tmp_path) -> None:
    config = subprocess.run(
        [sys.executable, "-m", "exporter.demo", "--print-config", f"--log-dir={tmp_path}"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=True,
    )
    assert str(tmp_path) in config.stdout and "reference.csv" in config.stdout
    proc = subprocess.Popen(
        [sys.executable, "-m", "exporter.demo", f"--log-dir={tmp_path}", "--rate=400"],
        cwd=REPO_ROOT,
    )
    import time

    log = tmp_path / "predictions.jsonl"
    deadline = time.monotonic() + 30
    while not (log.exists() and log.read_bytes().count(b"\n") >= 150):
        assert time.monotonic() < deadline and proc.poll() is None, "no lines written"
        time.sleep(0.1)
    proc.terminate()
    assert proc.wait(timeout=5) == 0
    import orjson

    lines = (tmp_path / "predictions.jsonl").read_bytes().splitlines()
    records = [orjson.loads(line) for line in lines]
    predictions = [r for r in records if r["event"] == "prediction"]
    assert len(predictions) >= 100
    assert set(predictions[0]["input_data"]) == {
        "age",
        "tenure_months",
        "monthly_charges",
        "support_calls",
        "plan",
        "region",
    }
    assert all(r["latency_ms"] > 0 for r in predictions)
