"""In-process alerting (the ``alerts:`` config section) in the real exporter process.

A webhook receiver served by the test stands in for the user's endpoint; the exporter's
own figures (drift share, PSI, latency quantiles) go through ``AlertSystem`` with its
cooldown, so each alert must arrive exactly once however many drift passes run.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.e2e._exporter import (
    append,
    lines_of,
    run_exporter,
    start_exporter,
    traffic,
    write_config,
)
from tests.e2e.test_exporter_lifecycle import one_line_error

pytestmark = pytest.mark.e2e


class _Receiver:
    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []
        received = self.payloads

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alerts(self) -> list[dict[str, Any]]:
        return [a for p in self.payloads for a in p["alerts"] if a.get("status") != "resolved"]


@pytest.fixture
def receiver():
    rec = _Receiver()
    yield rec
    rec.server.shutdown()


def _with_alerts(tmp_path: Path, section: str) -> Path:
    config = write_config(tmp_path)
    config.write_text(config.read_text() + section, encoding="utf-8")
    return config


def test_drift_and_latency_alerts_reach_the_webhook_once(tmp_path: Path, receiver) -> None:
    config = _with_alerts(
        tmp_path,
        "alerts:\n"
        "  cooldown: 1h\n"
        "  thresholds:\n"
        "    features_drifted_ratio: {warning: 0.3, critical: 0.6}\n"
        "    latency_p99_ms: {warning: 100, critical: 200}\n"
        "    psi:y: {warning: 0.1, critical: 0.2}\n"
        "    drifted:y: {warning: 0.5}\n"
        "    drifted:x: {warning: 0.5}\n"
        "    distance:y: {critical: 0.5}\n"
        f"  webhook: {{url: '{receiver.url}', timeout: 2, retries: 1}}\n",
    )
    # y shifted by 3 sd: KS and PSI both flag it; latencies ~20 ms stay under 100 ms.
    recs, _ = traffic(600, shift_y=6.0)
    append(tmp_path / "logs" / "a.jsonl", lines_of(recs))
    exp = start_exporter(config)
    try:
        exp.wait_for(lambda s: (s.get("mlops_features_drifted", model="e2e") or 0) >= 1)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not receiver.alerts():
            time.sleep(0.1)
        # Two more drift passes (and so alert passes, on the same interval) after the first
        # delivery: the cooldown must hold them back.
        first_pass = exp.wait_computed_after(time.time())
        done = first_pass.get("mlops_drift_last_computed_timestamp_seconds", model="e2e")
        exp.wait_computed_after(done)
        alerts = receiver.alerts()
        by_metric = {a["metric"]: a for a in alerts}
        assert "psi:y" in by_metric, alerts
        assert by_metric["psi:y"]["severity"] == "critical"
        # the verdict's figures: y drifted (a distance of ~1), x did not
        assert by_metric["drifted:y"]["severity"] == "warning"
        assert by_metric["distance:y"]["severity"] == "critical"
        assert "drifted:x" not in by_metric
        assert all(p["labels"]["model"] == "e2e" for p in receiver.payloads)
        assert "latency_p99_ms" not in by_metric
        assert len(alerts) == len(by_metric), "an alert was sent twice within the cooldown"
        scrape = exp.scrape()
        assert scrape.get("mlops_alert_notification_failures_total", model="e2e") == 0
    finally:
        assert exp.stop() == 0


def test_unreachable_receiver_is_counted_not_fatal(tmp_path: Path) -> None:
    config = _with_alerts(
        tmp_path,
        "alerts:\n"
        "  thresholds: {psi:y: {warning: 0.1}}\n"
        "  webhook: {url: 'http://127.0.0.1:9/nothing-listens', timeout: 1, retries: 0}\n",
    )
    recs, _ = traffic(600, shift_y=6.0)
    append(tmp_path / "logs" / "a.jsonl", lines_of(recs))
    exp = start_exporter(config)
    try:
        scrape = exp.wait_for(
            lambda s: (s.get("mlops_alert_notification_failures_total", model="e2e") or 0) >= 1
        )
        assert scrape.get("mlops_features_drifted", model="e2e") >= 1
    finally:
        assert exp.stop() == 0


@pytest.mark.parametrize(
    ("section", "needle"),
    [
        (
            "alerts:\n  thresholds: {latency_p98_ms: {warning: 1}}\n",
            "alerts.thresholds.latency_p98_ms",
        ),
        ("alerts:\n  thresholds: {psi:nope: {warning: 1}}\n", "alerts.thresholds.psi:nope"),
        ("alerts:\n  thresholds: {max_psi: {warning: 1}}\n  colour: red\n", "colour"),
        ("alerts:\n  thresholds: {max_psi: {warning: 1}}\n  webhook: {}\n", "alerts.webhook"),
    ],
)
def test_bad_alerts_section_is_one_line(tmp_path: Path, section: str, needle: str) -> None:
    config = _with_alerts(tmp_path, section)
    line = one_line_error(run_exporter(f"--config.file={config}"))
    assert needle in line


def _two_models(tmp_path: Path, churn_extra: str = "", top: str = "") -> Path:
    """churn monitors x, y and plan; fraud only x (features: differ by model)."""
    config = write_config(tmp_path)
    text = (
        config.read_text()
        .replace("model: {name: e2e}\n", "")
        .replace(
            "reference: {path: ref.csv}\n",
            "models:\n"
            "  - {name: churn, reference: {path: ref.csv}, match: {service: churn-api}"
            f"{churn_extra}}}\n"
            "  - {name: fraud, reference: {path: ref.csv}, match: {service: fraud-api},"
            " features: {x: numeric}}\n",
        )
    )
    config.write_text(text + top, encoding="utf-8")
    return config


def test_each_model_may_have_alerts_of_its_own(tmp_path: Path, receiver) -> None:
    """An alert on a feature only one model monitors: as the shared alerts: section it is
    refused (the other model has no such feature); as that model's own it is delivered,
    with that model's label only."""
    rule = "thresholds: {drifted:y: {warning: 0.5}}"
    shared = _two_models(tmp_path, top=f"alerts: {{{rule}}}\n")
    line = one_line_error(run_exporter(f"--config.file={shared}"))
    assert "alerts.thresholds.drifted:y: unknown figure" in line and "(model 'fraud')" in line
    hook = f"webhook: {{url: '{receiver.url}', timeout: 2, retries: 1}}"
    config = _two_models(tmp_path, churn_extra=f", alerts: {{{rule}, {hook}}}")
    recs, _ = traffic(600, shift_y=6.0)
    routed = [{**r, "service": s} for r in recs for s in ("churn-api", "fraud-api")]
    append(tmp_path / "logs" / "a.jsonl", lines_of(routed))
    exp = start_exporter(config)
    try:
        exp.wait_for(lambda s: (s.get("mlops_features_drifted", model="churn") or 0) >= 1)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not receiver.alerts():
            time.sleep(0.1)
        alerts = receiver.alerts()
        assert [a["metric"] for a in alerts] == ["drifted:y"], alerts
        assert {p["labels"]["model"] for p in receiver.payloads} == {"churn"}
    finally:
        assert exp.stop() == 0
    bad = _two_models(tmp_path, churn_extra=", alerts: {thresholds: {psi:nope: {warning: 1}}}")
    line = one_line_error(run_exporter(f"--config.file={bad}"))
    assert "models[0].alerts.thresholds.psi:nope: unknown figure" in line
    assert "(model" not in line  # its key already names the entry
