"""The exporter follows a registry stage and serves several models: real processes throughout.

The exporter runs as ``python -m exporter.cli``; the registry is changed by the ``mlops``
command line (``python -m mlops_core.cli registry ...``), in a directory or in a bucket of a
real S3-compatible server process (moto's, ``tests/s3_server.py``), as an operator would;
every figure is read from ``/metrics`` over HTTP.  In the promote-and-rollback test a real
Prometheus scrapes the exporter too, and the switches are read back from its TSDB.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from tests import s3_server as _fixtures
from tests.conftest import require_binary
from tests.e2e._exporter import (
    REPO_ROOT,
    ExporterProcess,
    Scrape,
    append,
    lines_of,
    record,
    running_exporter,
)
from tests.e2e.test_stack import Prometheus, free_port, start_service

s3_server = _fixtures.s3_server

POLL = 0.5  # reference.poll_interval of these tests, seconds
PASS = "300ms"  # drift.interval


# --- the registry, driven by its command line ---------------------------------------------------


class Registry:
    """A registry location and the environment its clients (the CLI, the exporter) need."""

    def __init__(self, location: str, env: Mapping[str, str], tmp: Path) -> None:
        self.location = location
        self.env = {**env, "MLOPS_REGISTRY_CACHE": str(tmp / "registry-cache")}
        self.model_file = tmp / "model.pkl"
        self.model_file.write_bytes(b"a pickled model " * 64)

    def mlops(self, *args: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "mlops_core.cli", "registry", "--registry", self.location,
             *args],
            capture_output=True, text=True, cwd=REPO_ROOT, timeout=60,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **self.env},
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def register(self, model: str, version: str, reference: Path | None) -> None:
        extra = [] if reference is None else ["--reference", str(reference)]
        self.mlops("register", model, version, str(self.model_file), *extra)

    def promote(self, model: str, version: str) -> None:
        self.mlops("promote", model, version, "production")

    def rollback(self, model: str) -> None:
        self.mlops("rollback", model)


@pytest.fixture(params=["filesystem", "s3"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Registry:
    if request.param == "filesystem":
        return Registry(str(tmp_path / "registry"), {}, tmp_path)
    server: _fixtures.S3Server = request.getfixturevalue("s3_server")
    return Registry(f"s3://{server.create_bucket()}/registry", server.env(), tmp_path)


@pytest.fixture
def local_registry(tmp_path: Path) -> Registry:
    return Registry(str(tmp_path / "registry"), {}, tmp_path)


# --- data ---------------------------------------------------------------------------------------


def churn_reference(path: Path, *, y_mean: float = 10.0, seed: int = 0) -> Path:
    """x ~ N(0, 1), y ~ N(y_mean, 2), plan in a/b/c: what a version was trained on."""
    rng = np.random.default_rng(seed)
    x, y = rng.normal(0, 1, 2000), rng.normal(y_mean, 2, 2000)
    plan = rng.choice(["a", "b", "c"], 2000, p=[0.5, 0.3, 0.2])
    rows = [f"{a:.5f},{b:.5f},{c}" for a, b, c in zip(x, y, plan, strict=True)]
    path.write_text("x,y,plan\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def fraud_reference(path: Path, seed: int = 3) -> Path:
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(3, 0.5, 2000)
    merchant = rng.choice(["shop", "travel", "food"], 2000, p=[0.6, 0.1, 0.3])
    rows = [f"{a:.4f},{m}" for a, m in zip(amount, merchant, strict=True)]
    path.write_text("amount,merchant\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def churn_traffic(
    n: int, version: str | None, *, y_mean: float = 10.0, seed: int = 1, service: str = "churn-api"
) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        plan = str(rng.choice(["a", "b", "c"], p=[0.5, 0.3, 0.2]))
        r = record(float(rng.normal(0, 1)), float(rng.normal(y_mean, 2)), plan, service=service)
        if version is None:
            del r["model_version"]
        else:
            r["model_version"] = version
        out.append(r)
    return out


def fraud_traffic(
    n: int, version: str, *, scale: float = 1.0, seed: int = 2
) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        r = record(0.0, 0.0, None, service="fraud-api", model_version=version)
        r["input_data"] = {
            "amount": float(rng.lognormal(3, 0.5)) * scale,
            "merchant": str(rng.choice(["shop", "travel", "food"], p=[0.6, 0.1, 0.3])),
        }
        out.append(r)
    return out


def config(tmp_path: Path, models: str, *, extra: str = "", **drift: Any) -> Path:
    (tmp_path / "logs").mkdir(exist_ok=True)
    settings = {"interval": PASS, "min_samples": 200, "window": {"max_samples": 1000,
                                                               "max_age": "1h"}}  # fmt: skip
    settings.update(drift)
    text = (
        "logs: {paths: [logs/*.jsonl], start_position: beginning, poll_interval: 50ms"
        f"{extra}}}\n"
        f"drift: {json.dumps(settings)}\n" + models
    )
    path = tmp_path / "config.yml"
    path.write_text(text, encoding="utf-8")
    return path


def log_file(tmp_path: Path) -> Path:
    return tmp_path / "logs" / "predictions.jsonl"


def changes(exp: ExporterProcess) -> list[dict[str, Any]]:
    return [e for e in events(exp) if e.get("event") == "model_version_changed"]


def events(exp: ExporterProcess) -> list[dict[str, Any]]:
    out = []
    for line in list(exp.stderr_lines):
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def drifted(s: Scrape, model: str) -> float | None:
    return s.get("mlops_features_drifted", model=model)


def info(s: Scrape, model: str) -> dict[str, str]:
    """mlops_model_info's labels for ``model`` (exactly one series of value 1)."""
    found = [dict(lab) for lab, v in s.having("mlops_model_info").items()
             if dict(lab)["model"] == model]  # fmt: skip
    assert len(found) == 1, found
    return found[0]


@contextlib.contextmanager
def prometheus_scraping(exp: ExporterProcess, tmp: Path) -> Iterator[Prometheus]:
    """A real Prometheus scraping ``exp`` every 500 ms."""
    binary = require_binary("prometheus")
    port = free_port()
    config = {
        "global": {"scrape_interval": "500ms", "scrape_timeout": "400ms"},
        "scrape_configs": [
            {
                "job_name": "mlops-exporter",
                "static_configs": [{"targets": [exp.url.removeprefix("http://")]}],
            }
        ],
    }
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    service = start_service(
        "prometheus",
        [binary, f"--config.file={tmp / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp / 'prom-data'}", f"--web.listen-address=127.0.0.1:{port}"],
        tmp / "prometheus.log",
        port,
    )  # fmt: skip
    try:
        yield Prometheus(service)
    finally:
        service.stop()


def scraped(prom: Prometheus, expr: str, expected: float, timeout: float = 15.0) -> None:
    """Wait until Prometheus has ``expr`` at ``expected`` (it scrapes every 500 ms)."""
    deadline = time.monotonic() + timeout
    while (found := prom.value(expr)) != expected:
        assert time.monotonic() < deadline, f"{expr}: {found}, expected {expected}"
        time.sleep(0.25)


# --- following a stage ----------------------------------------------------------------------------


def test_the_exporter_follows_promotions_and_rollbacks_and_judges_each_version_against_its_own_reference(  # noqa: E501
    registry: Registry, tmp_path: Path
) -> None:
    v1 = churn_reference(tmp_path / "v1.csv", y_mean=10.0)
    v2 = churn_reference(tmp_path / "v2.csv", y_mean=15.0, seed=5)  # trained on shifted data
    registry.register("churn", "1", v1)
    registry.promote("churn", "1")
    cfg = config(
        tmp_path,
        f"model: {{name: churn}}\nreference: {{registry: {json.dumps(registry.location)}, "
        f"poll_interval: {int(POLL * 1000)}ms}}\n",
    )
    log = log_file(tmp_path)
    with (
        running_exporter(cfg, env=registry.env) as exp,
        prometheus_scraping(exp, tmp_path) as prom,
    ):
        s = exp.scrape()
        assert info(s, "churn") == {"model": "churn", "version": "1", "stage": "production"}
        assert s.get("mlops_model_version_changes_total", model="churn") == 0
        scraped(prom, 'mlops_model_info{model="churn",version="1",stage="production"}', 1)
        for reason in ("registry_unreadable", "no_reference", "invalid_reference"):
            assert s.get("mlops_reference_poll_errors_total", model="churn", reason=reason) == 0

        # v1's traffic, like its reference: no drift
        append(log, lines_of(churn_traffic(600, "1")))
        s = exp.wait_for(lambda s: s.get("mlops_drift_window_samples", model="churn") == 600
                         and drifted(s, "churn") is not None, what="v1's window")  # fmt: skip
        assert drifted(s, "churn") == 0

        # v2 is registered; a canary logs v2 before the promotion: counted, never judged
        registry.register("churn", "2", v2)
        append(log, lines_of(churn_traffic(300, "2", y_mean=15.0, seed=2)))
        s = exp.wait_for(
            lambda s: (
                s.get("mlops_predictions_other_version_total", model="churn", version="2") == 300
            ),
            what="the canary's predictions",
        )
        assert s.get("mlops_drift_window_samples", model="churn") == 600
        assert drifted(s, "churn") == 0

        # promote v2: monitored within one poll interval
        registry.promote("churn", "2")
        promoted = time.monotonic()
        s = exp.wait_for(lambda s: info(s, "churn")["version"] == "2", timeout=POLL + 10,
                         what="v2 monitored")  # fmt: skip
        switch = time.monotonic() - promoted
        assert switch < POLL + 2.0, f"v2 monitored {switch:.2f}s after its promotion"
        assert s.get("mlops_model_version_changes_total", model="churn") == 1
        scraped(prom, 'mlops_model_info{model="churn",version="2"}', 1)
        scraped(prom, 'mlops_model_version_changes_total{model="churn"}', 1)

        # v2's traffic (shifted like its reference) and v1's draining: judged against v2's
        # reference, from a fresh window: no drift, neither during nor after the switch
        append(log, lines_of(churn_traffic(600, "2", y_mean=15.0, seed=3)
                             + churn_traffic(100, "1", seed=4)))  # fmt: skip
        seen: list[float | None] = []

        def v2_window(s: Scrape) -> bool:
            seen.append(drifted(s, "churn"))
            return s.get("mlops_drift_window_samples", model="churn") == 600 and (
                drifted(s, "churn") is not None
            )

        s = exp.wait_for(v2_window, what="v2's window")
        assert not any(seen), f"a false drift verdict after the switch: {seen}"
        # and Prometheus saw no drift either, from the start on
        scraped(prom, 'mlops_drift_window_samples{model="churn"}', 600)
        assert prom.value('max_over_time(mlops_features_drifted{model="churn"}[5m])') == 0
        assert s.get("mlops_predictions_other_version_total", model="churn", version="1") == 100
        assert s.get("mlops_predictions_other_version_total", model="churn", version="2") == 300
        assert s.get("mlops_predictions_total", model="churn") == 1200  # v1's 600, v2's 600

        # roll back: v1 again, a fresh window
        registry.rollback("churn")
        s = exp.wait_for(lambda s: info(s, "churn")["version"] == "1", timeout=POLL + 10,
                         what="v1 monitored again")  # fmt: skip
        assert s.get("mlops_model_version_changes_total", model="churn") == 2
        scraped(prom, 'mlops_model_version_changes_total{model="churn"}', 2)
        scraped(prom, 'mlops_model_info{model="churn",version="1"}', 1)
        # Prometheus holds the whole story: version 1, then 2, then 1, one series at a time
        seen_versions = prom.query(
            'count by (version) (count_over_time(mlops_model_info{model="churn"}[5m]))'
        )
        assert {r["metric"]["version"] for r in seen_versions} == {"1", "2"}
        assert prom.value('count(mlops_model_info{model="churn"})') == 1

        # the control: traffic shifted like v2's, logged as v1, is drift against v1's reference
        append(log, lines_of(churn_traffic(600, "1", y_mean=15.0, seed=6)))
        s = exp.wait_for(lambda s: drifted(s, "churn") is not None
                         and s.get("mlops_drift_window_samples", model="churn") == 600,
                         what="v1's window after the rollback")  # fmt: skip
        assert s.get("mlops_feature_drift_detected", model="churn", feature="y",
                     test="distance") == 1  # fmt: skip
        assert s.get("mlops_feature_drift_detected", model="churn", feature="x",
                     test="distance") == 0  # fmt: skip
    logged = [(e["old_version"], e["new_version"], e["level"]) for e in changes(exp)]
    assert logged == [("1", "2", "info"), ("2", "1", "info")]
    print(f"\npromote -> monitored: {switch:.2f}s ({registry.location.split(':')[0]})")


def test_a_version_whose_reference_cannot_be_used_keeps_the_last_good_one(
    local_registry: Registry, tmp_path: Path
) -> None:
    registry = local_registry
    registry.register("churn", "1", churn_reference(tmp_path / "v1.csv"))
    registry.promote("churn", "1")
    cfg = config(
        tmp_path,
        f"model: {{name: churn}}\nreference: {{registry: {json.dumps(registry.location)}, "
        f"poll_interval: {int(POLL * 1000)}ms}}\n",
    )

    def errors(s: Scrape, reason: str) -> float | None:
        return s.get("mlops_reference_poll_errors_total", model="churn", reason=reason)

    with running_exporter(cfg, env=registry.env) as exp:
        append(log_file(tmp_path), lines_of(churn_traffic(300, "1")))
        exp.wait_for(lambda s: s.get("mlops_drift_window_samples", model="churn") == 300)

        registry.register("churn", "2", None)  # registered without a reference
        registry.promote("churn", "2")
        s = exp.wait_for(lambda s: errors(s, "no_reference") == 1, what="no_reference")
        time.sleep(4 * POLL)  # a version's profile never changes: not counted again
        s = exp.scrape()
        assert errors(s, "no_reference") == 1
        assert info(s, "churn")["version"] == "1"  # the last good reference stays
        assert s.get("mlops_drift_window_samples", model="churn") == 300  # and its window

        # a profile damaged in the registry: refused, the last good one stays
        registry.register("churn", "3", churn_reference(tmp_path / "v3.csv", seed=9))
        profile = Path(registry.location) / "churn" / "versions" / "3" / "reference.json"
        profile.write_bytes(profile.read_bytes().replace(b'"n_rows"', b'"n_rowz"', 1))
        registry.promote("churn", "3")
        s = exp.wait_for(lambda s: errors(s, "invalid_reference") == 1, what="invalid_reference")

        # the registry gone: counted at every poll, logged once; the exporter keeps serving
        moved = Path(registry.location).with_name("elsewhere")
        Path(registry.location).rename(moved)
        s = exp.wait_for(lambda s: (errors(s, "registry_unreadable") or 0) >= 3,
                         what="registry_unreadable")  # fmt: skip
        assert info(s, "churn")["version"] == "1"
        moved.rename(registry.location)

        # a good version follows as usual
        registry.register("churn", "4", churn_reference(tmp_path / "v4.csv", seed=11))
        registry.promote("churn", "4")
        s = exp.wait_for(lambda s: info(s, "churn")["version"] == "4", what="v4")
        assert s.get("mlops_model_version_changes_total", model="churn") == 1
        assert exp.get("/-/ready")[0] == 200
    warnings = [e for e in events(exp) if e.get("event") == "reference_poll_failed"
                and e.get("level") == "warning"]  # fmt: skip
    assert [w["reason"] for w in warnings] == [
        "no_reference", "invalid_reference", "registry_unreadable",
    ]  # fmt: skip
    assert all(w["kept_version"] == "1" for w in warnings)


def test_a_missing_stage_at_start_is_one_line(local_registry: Registry, tmp_path: Path) -> None:
    from tests.e2e._exporter import run_exporter

    local_registry.register("churn", "1", churn_reference(tmp_path / "v1.csv"))
    cfg = config(
        tmp_path,
        f"model: {{name: churn}}\nreference: {{registry: {json.dumps(local_registry.location)}}}\n",
    )
    proc = run_exporter(f"--config.file={cfg}", "--web.listen-address=127.0.0.1:0")
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "reference.registry: model 'churn' in registry" in lines[0]
    assert "has no production version" in lines[0]


# --- several models ---------------------------------------------------------------------------


def two_models(tmp_path: Path, registry: Registry, *, fraud_extra: str = "") -> str:
    fraud_reference(tmp_path / "fraud.csv")
    return (
        "models:\n"
        "  - name: churn\n"
        f"    reference: {{registry: {json.dumps(registry.location)}, "
        f"poll_interval: {int(POLL * 1000)}ms}}\n"
        "    match: {service: churn-api}\n"
        "  - name: fraud\n"
        "    reference: {path: fraud.csv}\n"
        "    match: {service: fraud-api}\n"
        "    version: '7'\n" + fraud_extra
    )


def test_two_models_from_one_log_file_each_judged_against_its_own_reference(
    local_registry: Registry, tmp_path: Path
) -> None:
    registry = local_registry
    registry.register("churn", "1", churn_reference(tmp_path / "v1.csv"))
    registry.register("churn", "2", churn_reference(tmp_path / "v2.csv", y_mean=15.0, seed=5))
    registry.promote("churn", "1")
    cfg = config(tmp_path, two_models(tmp_path, registry))
    log = log_file(tmp_path)
    with running_exporter(cfg, env=registry.env) as exp:
        s = exp.scrape()
        assert info(s, "churn") == {"model": "churn", "version": "1", "stage": "production"}
        assert info(s, "fraud") == {"model": "fraud", "version": "7", "stage": "none"}

        # interleaved in one file: churn as its reference, fraud's amounts tripled, fraud's
        # old version, and a service no model matches
        churn, fraud = churn_traffic(400, "1"), fraud_traffic(400, "7", scale=3.0)
        old_fraud = fraud_traffic(30, "6", seed=8)
        other = churn_traffic(50, "1", service="search-api", seed=9)
        mixed = [r for pair in zip(churn, fraud, strict=True) for r in pair] + old_fraud + other
        append(log, lines_of(mixed))
        s = exp.wait_for(
            lambda s: (
                drifted(s, "churn") is not None
                and drifted(s, "fraud") is not None
                and s.get("mlops_drift_window_samples", model="fraud") == 400
            ),
            what="both windows",
        )
        assert s.get("mlops_drift_window_samples", model="churn") == 400
        assert s.get("mlops_predictions_total", model="churn") == 400
        assert s.get("mlops_predictions_total", model="fraud") == 400
        assert s.get("mlops_predictions_other_version_total", model="fraud", version="6") == 30
        assert s.get("mlops_log_lines_unrouted_total") == 50
        assert s.get("mlops_log_lines_total", model="") == len(mixed)  # lines belong to no model
        assert drifted(s, "churn") == 0
        assert s.get("mlops_feature_drift_detected", model="fraud", feature="amount",
                     test="distance") == 1  # fmt: skip
        # each model's series carry its own features only
        features = {
            (dict(lab)["model"], dict(lab)["feature"])
            for lab in s.having("mlops_feature_drift_tolerance")
        }
        assert features == {("churn", "x"), ("churn", "y"), ("churn", "plan"),
                            ("fraud", "amount"), ("fraud", "merchant")}  # fmt: skip
        status, _, page = exp.get("/")
        assert status == 200
        assert b"<table id='models'>" in page and b"data-model='fraud'" in page
        assert b"data-version='7'" in page and b"unrouted" in page

        # churn's promotion changes churn only
        fraud_window = s.get("mlops_drift_window_samples", model="fraud")
        registry.promote("churn", "2")
        s = exp.wait_for(lambda s: info(s, "churn")["version"] == "2", what="churn v2")
        assert info(s, "fraud")["version"] == "7"
        assert s.get("mlops_model_version_changes_total", model="fraud") == 0
        assert s.get("mlops_drift_window_samples", model="fraud") == fraud_window
        assert s.get("mlops_predictions_total", model="fraud") == 400

        # churn's v2 traffic, shifted like v2's reference, interleaved with fraud's: no drift
        churn2, fraud2 = churn_traffic(400, "2", y_mean=15.0, seed=12), fraud_traffic(50, "7")
        append(log, lines_of([*fraud2, *churn2]))
        s = exp.wait_for(lambda s: s.get("mlops_drift_window_samples", model="churn") == 400
                         and drifted(s, "churn") is not None
                         and s.get("mlops_predictions_total", model="fraud") == 450,
                         what="churn v2's window")  # fmt: skip
        assert drifted(s, "churn") == 0
        assert s.get("mlops_drift_window_samples", model="fraud") == 450

        # and back: churn judges v1 again, fraud goes on
        registry.rollback("churn")
        s = exp.wait_for(lambda s: info(s, "churn")["version"] == "1", what="churn v1 again")
        assert s.get("mlops_model_version_changes_total", model="churn") == 2
        assert s.get("mlops_drift_window_samples", model="fraud") == 450
    assert [(e["model"], e["new_version"]) for e in changes(exp)] == [
        ("churn", "2"),
        ("churn", "1"),
    ]


def test_the_checkpoint_resumes_each_models_counters(
    local_registry: Registry, tmp_path: Path
) -> None:
    registry = local_registry
    registry.register("churn", "1", churn_reference(tmp_path / "v1.csv"))
    registry.promote("churn", "1")
    cfg = config(tmp_path, two_models(tmp_path, registry), extra=", state_file: state/cp.json")
    log = log_file(tmp_path)
    append(log, lines_of(churn_traffic(120, "1") + fraud_traffic(80, "7")))
    with running_exporter(cfg, env=registry.env) as exp:
        before = exp.wait_for(lambda s: s.get("mlops_predictions_total", model="fraud") == 80)
    append(log, lines_of(churn_traffic(10, "1", seed=7) + fraud_traffic(5, "6", seed=7)))
    with running_exporter(cfg, env=registry.env) as exp:
        s = exp.wait_for(lambda s: s.get("mlops_predictions_other_version_total",
                                         model="fraud", version="6") == 5)  # fmt: skip
        assert s.get("mlops_predictions_total", model="churn") == 130  # 120 saved, 10 new
        assert s.get("mlops_predictions_total", model="fraud") == 80
        assert s.get("mlops_log_lines_total", model="") == 215
        for name in ("mlops_feature_bucket_observations_total", "mlops_prediction_class_total"):
            assert sum(v for lab, v in s.having(name).items() if ("model", "fraud") in lab) == (
                sum(v for lab, v in before.having(name).items() if ("model", "fraud") in lab)
            )
    record_ = json.loads((tmp_path / "state" / "cp.json").read_bytes())
    assert set(record_["counters"]["models"]) == {"churn", "fraud"}
    assert record_["counters"]["models"]["churn"]["version"] == "1"


# --- reload -------------------------------------------------------------------------------------


def post(exp: ExporterProcess, path: str, method: str = "POST") -> tuple[int, bytes]:
    request = urllib.request.Request(exp.url + path, data=b"", method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_reload_keeps_unchanged_models_and_refuses_a_bad_config(
    local_registry: Registry, tmp_path: Path
) -> None:
    registry = local_registry
    registry.register("churn", "1", churn_reference(tmp_path / "v1.csv"))
    registry.promote("churn", "1")
    cfg = config(tmp_path, two_models(tmp_path, registry))
    log = log_file(tmp_path)
    with running_exporter(cfg, env=registry.env, args=["--web.enable-lifecycle"]) as exp:
        append(log, lines_of(churn_traffic(300, "1") + fraud_traffic(300, "7")))
        before = exp.wait_for(
            lambda s: (
                s.get("mlops_drift_window_samples", model="fraud") == 300
                and s.get("mlops_drift_window_samples", model="churn") == 300
            )
        )

        # fraud's settings change, a third model is added: churn keeps everything
        (tmp_path / "third.csv").write_bytes((tmp_path / "fraud.csv").read_bytes())
        third = ("  - name: third\n    reference: {path: third.csv}\n"
                 "    match: {service: third-api}\n")  # fmt: skip
        cfg.write_text(cfg.read_text().replace("    version: '7'\n", "    version: '7'\n"
                                               "    features: {amount: {tolerance: 0.2}}\n")
                       + third)  # fmt: skip
        assert post(exp, "/-/reload") == (200, b"")
        s = exp.scrape()
        assert info(s, "third")["version"] == "unknown"
        assert s.get("mlops_drift_window_samples", model="churn") == 300  # kept
        assert s.get("mlops_predictions_total", model="churn") == 300
        assert s.get("mlops_predictions_total", model="fraud") == 300  # carried over
        assert s.get("mlops_model_version_changes_total", model="churn") == 0
        s = exp.wait_for(lambda s: s.get("mlops_drift_window_samples", model="fraud") == 0,
                         what="fraud's fresh window")  # fmt: skip
        assert s.get("mlops_feature_drift_tolerance", model="fraud", feature="amount") is None
        # only amount is monitored now (features: names it alone)
        assert {dict(lab)["feature"] for lab in s.having("mlops_feature_reference_missing_ratio")
                if ("model", "fraud") in lab} == {"amount"}  # fmt: skip
        assert before.get("mlops_drift_window_samples", model="churn") == 300

        # a bad config: refused with one line, the running one stays
        good = cfg.read_text()
        cfg.write_text(good + "drift_typo: 1\n")
        status, body = post(exp, "/-/reload")
        assert status == 500
        assert body.decode().startswith("failed to reload config: ") and body.count(b"\n") == 1
        assert b"drift_typo" in body
        cfg.write_text(good.replace("third.csv", "absent.csv"))
        status, body = post(exp, "/-/reload")
        assert status == 500 and b"models[2].reference.path: file not found" in body
        s = exp.scrape()
        assert info(s, "third")["version"] == "unknown"

        # SIGHUP: the same reload; the third model goes, its series with it
        cfg.write_text(good.replace(third, ""))
        exp.proc.send_signal(signal.SIGHUP)
        s = exp.wait_for(
            lambda s: (
                not [lab for lab in s.having("mlops_model_info") if ("model", "third") in lab]
            ),
            what="third removed",
        )
        assert s.get("mlops_predictions_total", model="churn") == 300
        assert exp.proc.poll() is None
    reloads = [e for e in events(exp) if e.get("event") in ("config_reloaded", "reload_failed")]
    assert [e["event"] for e in reloads] == [
        "config_reloaded", "reload_failed", "reload_failed", "config_reloaded",
    ]  # fmt: skip
    assert reloads[0]["kept"] == ["churn"] and reloads[0]["changed"] == ["fraud"]
    assert reloads[0]["added"] == ["third"] and reloads[3]["removed"] == ["third"]


def test_the_reload_endpoint_answers_as_prometheus_does_without_the_lifecycle_flag(
    tmp_path: Path,
) -> None:
    fraud_reference(tmp_path / "fraud.csv")
    cfg = config(tmp_path, "model: {name: fraud}\nreference: {path: fraud.csv}\n")
    with running_exporter(cfg) as exp:
        assert post(exp, "/-/reload") == (403, b"Lifecycle API is not enabled.\n")
        assert post(exp, "/-/reload", "PUT") == (403, b"Lifecycle API is not enabled.\n")
        status, _, body = exp.get("/-/reload")
        assert (status, body) == (405, b"Only POST or PUT requests allowed.\n")
