"""Alert delivery over real HTTP: payloads, retries, and failures that are counted, not raised."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
import urllib.request
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mlops_core.alerts import AlertSystem
from mlops_core.errors import AlertConfigError
from mlops_core.notifiers import AlertmanagerNotifier, WebhookNotifier
from tests.conftest import require_binary

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z
LATENCY = {"latency_p99_ms": {"warning": 100, "critical": 200}}


class Receiver:
    """A real HTTP server on 127.0.0.1 that records requests and answers as told."""

    def __init__(self, statuses=(200,), delay: float = 0.0) -> None:
        self.requests: list[dict] = []
        self.statuses = list(statuses)
        self.delay = delay
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": json.loads(body)}
                )
                if receiver.delay:
                    time.sleep(receiver.delay)
                status = (
                    receiver.statuses.pop(0)
                    if len(receiver.statuses) > 1
                    else (receiver.statuses[0])
                )
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):  # keep the test output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alert(**overrides):
    alert = {
        "metric": "latency_p99_ms",
        "severity": "critical",
        "value": 250.0,
        "threshold": 200.0,
        "direction": "above",
        "status": "firing",
        "message": "latency_p99_ms is 250, above the critical threshold 200",
        "timestamp": "2027-01-15T08:00:00.000000Z",
    }
    alert.update(overrides)
    return alert


def _no_sleep(_seconds):
    pass


# --- Alertmanager payload ---------------------------------------------------------------------


def test_alertmanager_payload_is_exactly_the_v2_api_shape():
    with Receiver() as rx:
        notifier = AlertmanagerNotifier(
            rx.url + "/", labels={"model": "churn"}, ends_after=7200, generator_url="http://x/"
        )
        assert notifier.notify([_alert()]) is True
    assert len(rx.requests) == 1
    request = rx.requests[0]
    assert request["path"] == "/api/v2/alerts"
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["body"] == [
        {
            "labels": {
                "alertname": "MlopsMetricThreshold",
                "severity": "critical",
                "metric": "latency_p99_ms",
                "model": "churn",
            },
            "annotations": {
                "summary": "latency_p99_ms above its critical threshold",
                "description": "latency_p99_ms is 250, above the critical threshold 200",
            },
            "startsAt": "2027-01-15T08:00:00.000000Z",
            "endsAt": "2027-01-15T10:00:00.000000Z",
            "generatorURL": "http://x/",
        }
    ]
    assert (notifier.sent, notifier.failures, notifier.attempts) == (1, 0, 1)


def test_alertmanager_resolved_alert_ends_when_resolved():
    notifier = AlertmanagerNotifier("http://127.0.0.1:9")
    [item] = notifier.payload(
        [
            _alert(
                status="resolved",
                timestamp="2027-01-15T08:30:00.000000Z",
                started_at="2027-01-15T08:00:00.000000Z",
            )
        ]
    )
    assert item["startsAt"] == "2027-01-15T08:00:00.000000Z"
    assert item["endsAt"] == "2027-01-15T08:30:00.000000Z"
    assert item["annotations"]["summary"] == "latency_p99_ms back within its thresholds"


def test_alert_system_delivers_through_alertmanager_notifier():
    clock_now = [T0]
    with Receiver() as rx:
        notifier = AlertmanagerNotifier(rx.url, labels={"model": "churn"})
        system = AlertSystem(LATENCY, clock=lambda: clock_now[0], notifiers=[notifier])
        system.analyze_metrics({"latency_p99_ms": [50, 120, 250]})
        clock_now[0] += 60
        system.analyze_metrics({"latency_p99_ms": 260})  # suppressed: not sent
        clock_now[0] += 60
        system.analyze_metrics({"latency_p99_ms": 20})  # resolved
    assert len(rx.requests) == 2
    firing, resolved = (r["body"][0] for r in rx.requests)
    assert firing["labels"]["severity"] == "critical"
    assert firing["startsAt"] == "2027-01-15T08:00:00.000000Z"
    ends = datetime.fromisoformat(resolved["endsAt"].replace("Z", "+00:00"))
    starts = datetime.fromisoformat(resolved["startsAt"].replace("Z", "+00:00"))
    assert ends - starts == timedelta(minutes=2)
    assert system.notify_failures == 0


# --- webhook payload --------------------------------------------------------------------------


def test_webhook_payload_and_headers():
    with Receiver() as rx:
        hook = WebhookNotifier(
            rx.url + "/hooks/ml", labels={"team": "risk"}, headers={"X-Token": "t"}
        )
        assert hook.notify([_alert(), _alert(metric="accuracy", status="resolved")])
    [request] = rx.requests
    assert request["path"] == "/hooks/ml"
    assert request["headers"]["X-Token"] == "t"
    assert request["body"] == {
        "source": "mlops_core",
        "status": "firing",
        "labels": {"team": "risk"},
        "alerts": [_alert(), _alert(metric="accuracy", status="resolved")],
    }


def test_empty_batch_sends_nothing():
    with Receiver() as rx:
        assert WebhookNotifier(rx.url).notify([]) is True
        assert AlertmanagerNotifier(rx.url).notify([]) is True
    assert rx.requests == []


# --- failures: retried, counted, never raised -------------------------------------------------


def test_server_500_is_retried_then_counted():
    slept: list[float] = []
    with Receiver(statuses=[500]) as rx:
        notifier = AlertmanagerNotifier(rx.url, retries=2, backoff=0.1, sleep=slept.append)
        assert notifier.notify([_alert()]) is False
    assert len(rx.requests) == 3
    assert slept == [0.1, 0.2]  # exponential backoff between attempts
    assert (notifier.sent, notifier.failures, notifier.attempts) == (0, 1, 3)
    assert notifier.last_error == "HTTP 500 Internal Server Error"


def test_transient_503_then_success():
    with Receiver(statuses=[503, 200]) as rx:
        hook = WebhookNotifier(rx.url, retries=3, sleep=_no_sleep)
        assert hook.notify([_alert()]) is True
    assert len(rx.requests) == 2
    assert (hook.sent, hook.failures) == (1, 0)


def test_client_error_is_not_retried():
    with Receiver(statuses=[400]) as rx:
        notifier = AlertmanagerNotifier(rx.url, retries=3, sleep=_no_sleep)
        assert notifier.notify([_alert()]) is False
    assert len(rx.requests) == 1
    assert notifier.failures == 1


def test_connection_refused_is_counted():
    hook = WebhookNotifier(f"http://127.0.0.1:{_free_port()}", retries=1, sleep=_no_sleep)
    assert hook.notify([_alert()]) is False
    assert (hook.failures, hook.attempts) == (1, 2)
    assert "refused" in hook.last_error.lower()


def test_timeout_is_counted():
    # the reply would come after 30 s; the bound below is generous for a loaded CI machine
    # but still far below the reply, so it shows the notifier gave up at its timeout
    with Receiver(delay=30.0) as rx:
        notifier = AlertmanagerNotifier(rx.url, timeout=0.2, retries=0)
        started = time.monotonic()
        assert notifier.notify([_alert()]) is False
        assert time.monotonic() - started < 15
    assert notifier.failures == 1
    assert "timed out" in notifier.last_error.lower()


def test_failed_delivery_does_not_break_the_alert_system():
    hook = WebhookNotifier(f"http://127.0.0.1:{_free_port()}", retries=0)
    system = AlertSystem(LATENCY, clock=lambda: T0, notifiers=[hook])
    result = system.analyze_metrics({"latency_p99_ms": 250})
    assert result["status"] == "critical"
    assert system.notify_failures == 1 and hook.failures == 1


@pytest.mark.parametrize("url", ["file:///etc/passwd", "127.0.0.1:9093", "", None])
def test_only_http_urls(url):
    with pytest.raises(AlertConfigError, match="needs an http"):
        AlertmanagerNotifier(url)


# --- a real Alertmanager ----------------------------------------------------------------------


@pytest.mark.e2e
def test_real_alertmanager_accepts_the_alerts(tmp_path):
    binary = require_binary("alertmanager")
    config = tmp_path / "alertmanager.yml"
    config.write_text("route:\n  receiver: 'null'\nreceivers:\n  - name: 'null'\n")
    port, cluster_port = _free_port(), _free_port()
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--cluster.listen-address=127.0.0.1:{cluster_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(base + "/-/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail(f"alertmanager did not start: {proc.stderr.read().decode()[-500:]}")
            time.sleep(0.1)

        notifier = AlertmanagerNotifier(base, labels={"model": "churn"})
        system = AlertSystem(LATENCY, notifiers=[notifier])  # real clock: AM rejects old alerts
        system.analyze_metrics({"latency_p99_ms": [50, 120, 250]})
        assert (notifier.sent, notifier.failures) == (1, 0), notifier.last_error

        with urllib.request.urlopen(base + "/api/v2/alerts", timeout=5) as r:
            stored = json.loads(r.read())
        assert len(stored) == 1
        assert stored[0]["labels"] == {
            "alertname": "MlopsMetricThreshold",
            "severity": "critical",
            "metric": "latency_p99_ms",
            "model": "churn",
        }
        assert stored[0]["status"]["state"] == "active"
        assert "250" in stored[0]["annotations"]["description"]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_failure_is_logged_without_the_secret_part_of_the_url():
    from structlog.testing import capture_logs

    url = f"http://user:pw@127.0.0.1:{_free_port()}/services/T000/B000/s3cr3t"
    hook = WebhookNotifier(url, retries=0)
    with capture_logs() as logs:
        assert hook.notify([_alert()]) is False
    [entry] = [e for e in logs if e["event"] == "alert_delivery_failed"]
    assert entry["log_level"] == "error"
    assert entry["attempts"] == 1 and entry["alerts"] == 1
    assert "s3cr3t" not in repr(entry) and "pw" not in entry["url"]
    assert "s3cr3t" not in repr(hook)
