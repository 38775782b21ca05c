"""The real exporter process: what /metrics says about the lines written to its logs."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from tests.e2e._exporter import (
    append,
    lines_of,
    parse_metrics,
    record,
    running_exporter,
    traffic,
    write_config,
)
from tests.test_collector import DRIFT_ONLY as DRIFT_GAUGES

pytestmark = pytest.mark.e2e


def test_drifted_and_undrifted_features(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    with running_exporter(config) as exp:
        before = exp.scrape()
        for name in DRIFT_GAUGES:  # no traffic yet: absent, not zero
            assert not before.having(name), name
        # y shifted by 3 sd, plan moved to "c"; x stays as in the reference.
        recs, _ = traffic(1500, shift_y=6.0, plan_p=(0.1, 0.2, 0.7))
        append(tmp_path / "logs" / "a.jsonl", lines_of(recs))
        s = exp.wait_for(lambda s: s.get("mlops_features_drifted", model="e2e") == 2, what="2")
        verdict = {"model": "e2e", "test": "distance"}
        assert s.get("mlops_feature_drift_detected", feature="y", **verdict) == 1
        assert s.get("mlops_feature_drift_detected", feature="plan", **verdict) == 1
        assert s.get("mlops_feature_drift_detected", feature="x", **verdict) == 0
        missing = {"model": "e2e", "test": "missing"}
        assert s.get("mlops_feature_drift_detected", feature="y", **missing) == 0
        for name in ("x", "y", "plan"):
            one = {"model": "e2e", "feature": name}
            distance = s.get("mlops_feature_drift_distance", **one)
            lower = s.get("mlops_feature_drift_distance_lower_bound", **one)
            detectable = s.get("mlops_feature_drift_detectable_distance", **one)
            tolerance = s.get("mlops_feature_drift_tolerance", **one)
            assert tolerance == 0.05
            assert detectable - tolerance == pytest.approx(distance - lower)  # the radius
            assert (lower >= tolerance) == (name != "x")
        level = s.get("mlops_drift_test_level", model="e2e")
        assert level == pytest.approx(0.3 / (30 * 86400.0) / 3)  # interval 300ms, 3 features
        assert s.get("mlops_feature_reference_missing_ratio", model="e2e", feature="x") == 0
        assert s.get("mlops_feature_drift_psi", model="e2e", feature="x") < 0.1
        assert s.get("mlops_feature_drift_ks_p_value", model="e2e", feature="y") < 1e-6
        assert s.get("mlops_feature_drift_ks_p_value", model="e2e", feature="x") > 1e-3
        assert s.get("mlops_feature_drift_chi2_p_value", model="e2e", feature="plan") < 1e-6
        assert s.get("mlops_feature_drift_chi2_p_value", model="e2e", feature="x") is None
        assert s.get("mlops_features_drifted_ratio", model="e2e") == pytest.approx(2 / 3)
        assert s.get("mlops_drift_window_samples", model="e2e") == 1500
        assert s.get("mlops_reference_samples", model="e2e") == 2000
        assert s.get("mlops_drift_computation_errors_total", model="e2e") == 0
        assert s.get("mlops_drift_computation_duration_seconds", model="e2e") > 0
        assert (
            abs(s.get("mlops_drift_last_computed_timestamp_seconds", model="e2e") - time.time())
            < 30
        )
        info = s.having("mlops_reference_info")
        assert len(info) == 1 and next(iter(info.values())) == 1
        assert len(dict(next(iter(info)))["hash"]) == 64


def test_drift_gauges_absent_until_min_samples(tmp_path: Path) -> None:
    config = write_config(tmp_path, min_samples=200)
    with running_exporter(config) as exp:
        recs, _ = traffic(150)
        append(tmp_path / "logs" / "a.jsonl", lines_of(recs))
        s = exp.wait_for(lambda s: s.get("mlops_drift_window_samples", model="e2e") == 150)
        for name in DRIFT_GAUGES:
            assert not s.having(name), name
        assert s.get("mlops_predictions_total", model="e2e") == 150
        more, _ = traffic(60, seed=9)
        append(tmp_path / "logs" / "a.jsonl", lines_of(more))
        s = exp.wait_for(lambda s: s.get("mlops_features_drifted", model="e2e") is not None)
        assert s.get("mlops_drift_window_samples", model="e2e") == 210
        assert s.get("mlops_features_drifted", model="e2e") == 0


def test_counts_histogram_and_quantiles_equal_what_was_written(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    with running_exporter(config) as exp:
        recs, latencies = traffic(1234, seed=4)
        append(tmp_path / "logs" / "a.jsonl", lines_of(recs))
        s = exp.wait_for(
            lambda s: s.get("mlops_drift_window_samples", model="e2e") == 1234, what="window"
        )
        assert s.get("mlops_predictions_total", model="e2e") == 1234
        assert s.get("mlops_log_lines_total", model="e2e") == 1234
        assert s.get("mlops_prediction_latency_seconds_count", model="e2e") == 1234
        assert s.get("mlops_prediction_latency_seconds_sum", model="e2e") == pytest.approx(
            latencies.sum() / 1000, rel=1e-9
        )
        buckets = {
            float(dict(labels)["le"]): v
            for labels, v in s.having("mlops_prediction_latency_seconds_bucket").items()
        }
        assert buckets[float("inf")] == 1234
        for le, count in buckets.items():
            assert count == int(np.sum(latencies / 1000 <= le)), le
        for q in (0.5, 0.9, 0.95, 0.99):
            got = s.get("mlops_prediction_latency_window_seconds", model="e2e", quantile=str(q))
            assert got == pytest.approx(np.quantile(latencies, q) / 1000, rel=1e-9), q
        window = {"model": "e2e"}
        assert s.get("mlops_prediction_latency_window_seconds_count", **window) == 1234
        assert s.get("mlops_prediction_latency_window_seconds_sum", **window) == pytest.approx(
            latencies.sum() / 1000, rel=1e-9
        )
        classes = s.having("mlops_prediction_class_total")
        assert {dict(k)["class"]: v for k, v in classes.items()} == {
            "0": 412.0,
            "1": 411.0,
            "2": 411.0,
        }
        # Fleet-wide drift buckets: every value counted once, in the reference's buckets.
        for feature in ("x", "y", "plan"):
            obs = {
                dict(k)["bucket"]: v
                for k, v in s.having("mlops_feature_bucket_observations_total").items()
                if dict(k)["feature"] == feature
            }
            ratio = {
                dict(k)["bucket"]: v
                for k, v in s.having("mlops_feature_reference_bucket_ratio").items()
                if dict(k)["feature"] == feature
            }
            assert set(obs) == set(ratio), feature
            assert sum(obs.values()) == 1234, feature
            assert sum(ratio.values()) == pytest.approx(1.0), feature
        plan_obs = {
            dict(k)["bucket"]: v
            for k, v in s.having("mlops_feature_bucket_observations_total").items()
            if dict(k)["feature"] == "plan"
        }
        expected = {p: sum(r["input_data"]["plan"] == p for r in recs) for p in "abc"}
        assert {b: plan_obs[b] for b in "abc"} == expected
        assert plan_obs["__other__"] == 0


def test_missing_feature_still_counts_as_prediction(tmp_path: Path) -> None:
    config = write_config(tmp_path, min_samples=10)
    with running_exporter(config) as exp:
        recs = [record(0.1 * i, 10.0, None if i % 4 == 0 else "a") for i in range(100)]
        append(tmp_path / "logs" / "a.jsonl", lines_of(recs))
        s = exp.wait_for(lambda s: s.get("mlops_drift_window_samples", model="e2e") == 100)
        assert s.get("mlops_predictions_total", model="e2e") == 100
        assert s.get("mlops_feature_missing_ratio", model="e2e", feature="plan") == 0.25
        assert s.get("mlops_feature_missing_ratio", model="e2e", feature="x") == 0.0


def test_openmetrics_landing_page_and_health(tmp_path: Path) -> None:
    config = write_config(tmp_path, min_samples=10)
    with running_exporter(config) as exp:
        recs, _ = traffic(50)
        append(tmp_path / "logs" / "a.jsonl", lines_of(recs))
        exp.wait_for(lambda s: s.get("mlops_predictions_total", model="e2e") == 50)
        status, headers, body = exp.get(
            "/metrics", {"Accept": "application/openmetrics-text; version=1.0.0"}
        )
        assert status == 200
        assert headers["Content-Type"].startswith("application/openmetrics-text")
        assert body.rstrip().endswith(b"# EOF")
        assert b'mlops_predictions_total{model="e2e"} 50.0' in body
        status, headers, body = exp.get("/metrics")
        assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
        assert b"# EOF" not in body
        text = parse_metrics(body.decode())
        assert text.get("mlops_exporter_build_info", version="0.1.0") == 1
        assert "computed in the background every drift.interval" in body.decode()
        status, _, body = exp.get("/metrics?name[]=mlops_predictions_total&name[]=nope")
        restricted = parse_metrics(body.decode())
        assert status == 200 and restricted.names() == {"mlops_predictions_total"}
        assert restricted.get("mlops_predictions_total", model="e2e") == 50
        status, headers, page = exp.get("/")
        assert status == 200 and headers["Content-Type"].startswith("text/html")
        html = page.decode()
        for needle in ("e2e", "href='metrics'", "drift.interval", "300ms", "ref.csv", "plan"):
            assert needle in html, needle
        assert exp.get("/-/healthy")[0] == 200
        assert exp.get("/-/ready")[0] == 200
        assert exp.get("/nope")[0] == 404


def test_promtool_lints_the_exposition(tmp_path: Path) -> None:
    import subprocess

    from tests.conftest import require_binary

    promtool = require_binary("promtool")
    config = write_config(tmp_path, min_samples=10)
    with running_exporter(config) as exp:
        recs, _ = traffic(100)
        append(tmp_path / "logs" / "a.jsonl", lines_of(recs))
        exp.wait_for(lambda s: s.get("mlops_features_drifted", model="e2e") is not None)
        _, _, body = exp.get("/metrics")
    result = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, timeout=30
    )
    problems = [line for line in result.stdout.decode().splitlines() if line.strip()]
    problems += [line for line in result.stderr.decode().splitlines() if line.strip()]
    # no warning at all: the window quantiles are a summary, the one type with `quantile`
    assert (result.returncode, problems) == (0, [])
    assert b"# TYPE mlops_prediction_latency_window_seconds summary" in body


HOSTILE = ('q"uote', "new\nline", "back\\slash", "ünï€ode", "<script>x</script>")


def test_hostile_feature_names_are_escaped_in_metrics_and_landing_page(tmp_path: Path) -> None:
    """Names from a CSV header and values from the logs reach labels escaped, and HTML safe."""
    import csv

    rng = np.random.default_rng(3)
    categories = ['b"x', "<i>c</i>"]
    with (tmp_path / "ref.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([*HOSTILE, "cat"])
        for _ in range(300):
            writer.writerow([*rng.normal(size=len(HOSTILE)), rng.choice(categories)])
    config = write_config(tmp_path, min_samples=50)
    records = []
    for i, value in enumerate(rng.normal(size=100)):
        rec = record(0, 0, None, cls='y"es\n')
        rec["input_data"] = {**dict.fromkeys(HOSTILE, float(value)), "cat": categories[i % 2]}
        records.append(rec)
    with running_exporter(config) as exp:
        append(tmp_path / "logs" / "a.jsonl", lines_of(records))
        s = exp.wait_for(lambda s: s.get("mlops_features_drifted", model="e2e") is not None)
        _, _, page = exp.get("/")
    for name in (*HOSTILE, "cat"):  # parsed back from the exposition: exactly the names
        assert s.get("mlops_feature_missing_ratio", model="e2e", feature=name) == 0.0, name
        assert s.get("mlops_feature_drift_psi", model="e2e", feature=name) is not None, name
    assert s.get("mlops_prediction_class_total", model="e2e", **{"class": 'y"es\n'}) == 100
    for bucket in categories:
        assert (
            s.get(
                "mlops_feature_bucket_observations_total", model="e2e", feature="cat", bucket=bucket
            )
            == 50
        )
    assert 'feature="q\\"uote"' in s.text and 'feature="new\\nline"' in s.text
    assert 'feature="back\\\\slash"' in s.text
    html = page.decode()
    assert "<script>" not in html and "<i>" not in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html and "q&quot;uote" in html
    assert "ünï€ode" in html
