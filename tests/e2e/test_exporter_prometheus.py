"""A real Prometheus scrapes the real exporter: names, types and formats are what it accepts."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import require_binary
from tests.e2e._exporter import append, lines_of, running_exporter, traffic, write_config

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def query(port: int, expr: str) -> list[dict]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.load(resp)["data"]["result"]


def test_prometheus_scrapes_and_queries_the_exporter(tmp_path: Path) -> None:
    prometheus = require_binary("prometheus")
    config = write_config(tmp_path, min_samples=50)
    with running_exporter(config) as exp:
        recs, _ = traffic(400, shift_y=6.0)
        append(tmp_path / "logs" / "a.jsonl", lines_of(recs))
        exp.wait_for(lambda s: s.get("mlops_features_drifted", model="e2e") is not None)
        target = exp.url.removeprefix("http://")
        prom_config = tmp_path / "prometheus.yml"
        prom_config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            f"  - job_name: mlops\n    static_configs: [{{targets: ['{target}']}}]\n"
        )
        port = free_port()
        prom = subprocess.Popen(
            [
                prometheus,
                f"--config.file={prom_config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    up = query(port, 'up{job="mlops"}')
                    total = query(port, "mlops_predictions_total")
                    if up and up[0]["value"][1] == "1" and total:
                        break
                except OSError:
                    pass
                assert time.monotonic() < deadline, "Prometheus never scraped the exporter"
                assert prom.poll() is None, prom.stderr.read().decode()[-2000:]
                time.sleep(0.3)
            assert total[0]["value"][1] == "400"
            assert total[0]["metric"]["model"] == "e2e"
            drifted = query(port, 'mlops_feature_drift_detected{test="distance",feature="y"}')
            assert drifted[0]["value"][1] == "1"
            count = query(port, "mlops_prediction_latency_seconds_count")
            assert count[0]["value"][1] == "400"
            median = query(
                port,
                "histogram_quantile(0.5, sum by (le) (mlops_prediction_latency_seconds_bucket))",
            )
            assert 0.01 < float(median[0]["value"][1]) < 0.05
            ratio = query(port, 'sum(mlops_feature_reference_bucket_ratio{feature="plan"})')
            assert float(ratio[0]["value"][1]) == pytest.approx(1.0)
        finally:
            prom.terminate()
            prom.wait(timeout=10)
