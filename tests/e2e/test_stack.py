"""The shipped rules and dashboard against the real stack, on loopback.

Started here: two real ``mlops-exporter`` processes (replicas of model ``churn``) on
demo-style traffic, one drifting and slow, one neither; a real Prometheus scraping both every
second with the shipped rules evaluated every second; a real Alertmanager with the shipped
routing and inhibition, whose receivers post to a webhook served by this test.

The rules Prometheus loads are rendered by ``rules/generate.py --for 3s``: the shipped ``for``
durations (minutes) are far longer than a test may run; the expressions and thresholds are
the shipped ones.  3 s rather than 0 s: three consecutive 1 s evaluations, so that a machine
stalling for a second (a missed scrape, a pause in the traffic) cannot fire an alert on the
healthy replica, while the expected alerts still fire within seconds.  The Alertmanager
config is ``rules/alertmanager.yml`` with each receiver pointed at the test's webhook and the
group timers shortened to a second.

Both replicas log the ground truth of each batch with the next one; the drifting replica's
model is right one time in three, the healthy one's always.

Asserted: the drift, latency and model-quality alerts of the drifting replica reach the
webhook with the right labels and annotations (and the PSI warning is inhibited by its
critical); the healthy replica raises no alert at all; a live scrape exposes exactly the
metrics the catalog says this configuration serves, and every metric the rules and
dashboards use is among them or served only by another configuration; every rule evaluates
without error and every recorded series has data; the invalid-line ratio leaves other
events out; every dashboard query, variables substituted, runs and returns data; and the
fleet-wide PSI recording rule equals PSI computed offline on the union of both replicas'
data, same buckets, same 1e-4 floor, to 1e-6.

Locally the test skips when prometheus/alertmanager are missing (with the apt-get line); under
CI=true a missing binary fails it.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import yaml

from exporter import metrics
from tests.conftest import REPO_ROOT, require_binary
from tests.e2e._exporter import ExporterProcess, start_exporter
from tests.test_dashboards import (
    label_values_as_promql,
    load_dashboard,
    panel_queries,
    substitute,
    variable_queries,
)
from tests.test_rules import (
    EXPORTER_METRICS,
    all_rules,
    dashboard_exprs,
    load_generator,
    metric_names,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

#: What this stack's configuration cannot produce: its model is a classifier behind a reference
#: file, logging one version.  The catalog says when each is served; the rules and panels
#: that use them are tested with promtool (tests/test_rules.py) and by the exporter's own
#: e2e tests instead.
_SERVED_ELSEWHERE = {
    "with outcomes, regressors",
    "with a registry reference",
    "once another version is seen",
}
NOT_IN_THIS_STACK: frozenset[str] = frozenset(
    n for s in metrics.CATALOG if s.served in _SERVED_ELSEWHERE for n in s.series_names
)

MODEL = "churn"
JOB = "mlops-exporter"
N_REF = 1200  # reference rows = window size: a full window of undrifted traffic IS the reference
EPSILON = 1e-4
INVALID_EVERY = 100  # one invalid line per 100 predictions: 1%, under the 5% alert threshold
# ... and that many lines of another event with it (the model server's own log lines): the
# invalid-line ratio leaves them out, 1/101, where over all lines it would read 1/151.
OTHER_EVENTS = 50
BATCH = 10  # predictions per replica every 0.1 s while traffic runs
TIMEOUT = 45.0
FOR = "3s"  # every alert's `for` in the test copy of the rules (see the module docstring)


# --- traffic ----------------------------------------------------------------------------------


def make_reference(path: Path, seed: int = 7) -> dict[str, np.ndarray]:
    """age ~ N(40, 10), income ~ lognormal, plan in basic/pro/enterprise (50/30/20%)."""
    rng = np.random.default_rng(seed)
    data = {
        "age": np.round(rng.normal(40, 10, N_REF), 2),
        "income": np.round(rng.lognormal(10, 0.5, N_REF), 2),
        "plan": rng.choice(["basic", "pro", "enterprise"], N_REF, p=[0.5, 0.3, 0.2]),
    }
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(data)
        for age, income, plan in zip(*data.values(), strict=True):
            writer.writerow([repr(float(age)), repr(float(income)), plan])
    return data


@dataclass
class Replica:
    """One model-server replica's prediction log, replaying the reference rows in a cycle.

    Undrifted, any N_REF consecutive predictions are exactly the reference rows, so the
    exporter's window has PSI 0 and KS p-value 1: no statistical flake can fire an alert.
    Drifted: age + 15, plan "basic" renamed "premium" (unseen: bucket __unseen__), and
    latencies of 250-450 ms instead of 5-40 ms.
    """

    log: Path
    reference: dict[str, np.ndarray]
    drifting: bool
    seed: int
    written: dict[str, list[Any]] = field(
        default_factory=lambda: {"age": [], "income": [], "plan": []}
    )
    predictions: int = 0
    #: (request id, predicted class) of the last batch: labelled with the next one
    unlabelled: list[tuple[str, int]] = field(default_factory=list)
    outcomes: int = 0
    _rng: np.random.Generator = field(init=False)

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)

    def write(self, n: int) -> None:
        # Stamped now: the exporter's window drops records older than drift.window.max_age.
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        lines = self._outcomes(stamp)
        labelled_next: list[tuple[str, int]] = []
        for _ in range(n):
            i = self.predictions % N_REF
            age = float(self.reference["age"][i])
            income = float(self.reference["income"][i])
            plan = str(self.reference["plan"][i])
            if self.drifting:
                age = round(age + 15.0, 2)
                plan = "premium" if plan == "basic" else plan
                latency = float(self._rng.uniform(250, 450))
            else:
                latency = float(self._rng.uniform(5, 40))
            record = {
                "timestamp": stamp,
                "level": "info",
                "event": "prediction",
                "service": "churn-api",
                "model_version": "1.0.0",
                "request_id": f"req-{self.predictions}",
                "input_data": {"age": age, "income": income, "plan": plan},
                "prediction": {"class": int(age > 45), "probability": 0.7},
                "latency_ms": round(latency, 3),
            }
            lines.append(orjson.dumps(record))
            labelled_next.append((record["request_id"], record["prediction"]["class"]))
            self.written["age"].append(age)
            self.written["income"].append(income)
            self.written["plan"].append(plan)
            self.predictions += 1
            if self.predictions % INVALID_EVERY == 0:
                lines.append(b'{"event": "prediction", "input_data": {"age": ')  # cut JSON
                other = orjson.dumps({"event": "request_served", "level": "info"})
                lines += [other] * OTHER_EVENTS
        self.unlabelled = labelled_next
        with self.log.open("ab") as fh:
            fh.write(b"\n".join(lines) + b"\n")

    def _outcomes(self, stamp: str) -> list[bytes]:
        """The ground truth of the previous batch, one batch late: the healthy replica's model
        is always right, the drifting one's wrong two times in three (accuracy 1/3 against
        a reference of 0.9: MlopsModelQualityDegraded)."""
        lines = []
        for request_id, predicted in self.unlabelled:
            wrong = self.drifting and self.outcomes % 3 != 0
            record = {
                "timestamp": stamp,
                "level": "info",
                "event": "outcome",
                "service": "churn-api",
                "model_version": "1.0.0",
                "request_id": request_id,
                "actual": 1 - predicted if wrong else predicted,
            }
            lines.append(orjson.dumps(record))
            self.outcomes += 1
        return lines


class Traffic:
    """A thread feeding every replica BATCH predictions every 0.1 s until stopped."""

    def __init__(self, replicas: list[Replica]) -> None:
        self.replicas = replicas
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            for replica in self.replicas:
                replica.write(BATCH)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


# --- the webhook receiver ---------------------------------------------------------------------


class Webhook:
    """Alertmanager's webhook receiver: records (path, alert) of every notification."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer._lock:
                    outer.received += [(self.path, alert) for alert in body["alerts"]]
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alerts(self) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            return list(self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- Prometheus and Alertmanager --------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
    except OSError:
        return 0, b""


@dataclass
class Service:
    name: str
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def tail(self, n: int = 25) -> str:
        lines = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        return f"--- {self.name} log ---\n" + "\n".join(lines[-n:])

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while http_get(self.url + "/-/ready")[0] != 200:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{self.name} did not become ready\n{self.tail()}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_service(name: str, cmd: list[str], log: Path, port: int) -> Service:
    with log.open("wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=log.parent)
    service = Service(name, proc, f"http://127.0.0.1:{port}", log)
    service.wait_ready()
    return service


class Prometheus:
    """HTTP API client of the test's Prometheus."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def api(self, path: str, **params: Any) -> Any:
        url = f"{self.service.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        status, body = http_get(url, timeout=10)
        payload = json.loads(body) if body else {}
        assert status == 200 and payload.get("status") == "success", (
            f"{path} {params}: HTTP {status} {body[:500]!r}"
        )
        return payload["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return self.api("query", query=expr)["result"]

    def query_range(self, expr: str, seconds: float = 30.0) -> list[dict[str, Any]]:
        end = time.time()
        return self.api("query_range", query=expr, start=end - seconds, end=end, step=1)["result"]

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None


def wait_until(
    check: Callable[[], Any], what: str, timeout: float = TIMEOUT, *logs: Service
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout}s waiting for {what}\n"
                + "\n".join(s.tail() for s in logs)
            )
        time.sleep(0.25)


# --- the stack --------------------------------------------------------------------------------


@dataclass
class Stack:
    tmp: Path
    reference: dict[str, np.ndarray]
    replicas: dict[str, Replica]  # instance -> replica
    exporters: dict[str, ExporterProcess]
    drifting: str  # instance of the drifting replica
    healthy: str
    traffic: Traffic
    webhook: Webhook
    prometheus: Prometheus
    alertmanager: Service
    rendered_rules: dict[str, str]


def exporter_config(tmp: Path, name: str) -> Path:
    (tmp / name).mkdir()
    config = {
        "model": {"name": MODEL},
        "logs": {
            "paths": [str(tmp / name / "*.jsonl")],
            "start_position": "beginning",
            "poll_interval": "100ms",
        },
        "reference": {"path": str(tmp / "reference.csv")},
        "features": {
            "age": {"type": "numeric"},
            "income": {"type": "numeric"},
            "plan": {"type": "categorical"},
        },
        "drift": {
            "interval": "1s",
            "window": {"max_samples": N_REF, "max_age": "1h"},
            "min_samples": 100,
            "tests": ["ks", "psi", "chi2"],
        },
        "latency": {"field": "latency_ms"},
        # outcomes joined in a store of its own, judged against a reference accuracy of 0.9
        "outcomes": {"store": str(tmp / name / "outcomes.sqlite")},
        "quality": {
            "reference": {"accuracy": 0.9},
            "min_samples": 100,
            "window": {"max_samples": N_REF},
        },
        # in-process alerting on, so mlops_alert_notification_failures_total is exposed (and
        # its dashboard query has data); a threshold no replica reaches, no notifier
        "alerts": {"thresholds": {"latency_p99_ms": {"critical": 1_000_000}}},
    }
    path = tmp / f"{name}.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def alertmanager_config(webhook_port: int) -> dict[str, Any]:
    """rules/alertmanager.yml, receivers -> the test's webhook, timers -> 1 s."""
    config = yaml.safe_load((REPO_ROOT / "rules" / "alertmanager.yml").read_text(encoding="utf-8"))
    for receiver in config["receivers"]:
        for key in [k for k in receiver if k.endswith("_configs")]:
            del receiver[key]
        receiver["webhook_configs"] = [
            {"url": f"http://127.0.0.1:{webhook_port}/{receiver['name']}", "send_resolved": False}
        ]

    def shorten(route: dict[str, Any]) -> None:
        for key in ("group_wait", "group_interval"):
            route[key] = "1s"
        route["repeat_interval"] = "1h"
        for sub in route.get("routes", []):
            shorten(sub)

    shorten(config["route"])
    return config


def _drift_published(exporter: ExporterProcess) -> bool:
    scrape = exporter.scrape()
    return bool(scrape.having("mlops_feature_drift_psi")) and (
        scrape.get("mlops_drift_window_samples", model=MODEL) == N_REF
    )


def _quality_published(exporter: ExporterProcess) -> bool:
    scrape = exporter.scrape()
    return bool(scrape.having("mlops_model_quality_degraded")) and bool(
        scrape.having("mlops_outcome_confusion_total")
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prometheus_bin = require_binary("prometheus")
    alertmanager_bin = require_binary("alertmanager")
    amtool_bin = require_binary("amtool")
    tmp = tmp_path_factory.mktemp("stack")
    reference = make_reference(tmp / "reference.csv")

    with contextlib.ExitStack() as cleanup:
        # two replicas, each log holding a full window before its exporter starts
        replicas, exporters = {}, {}
        for name, drifting, seed in (("drifting", True, 1), ("healthy", False, 2)):
            config = exporter_config(tmp, name)
            replica = Replica(tmp / name / "predictions.jsonl", reference, drifting, seed)
            replica.write(N_REF)
            exporter = start_exporter(config)
            cleanup.callback(exporter.stop)
            instance = exporter.url.removeprefix("http://")
            replicas[instance], exporters[instance] = replica, exporter
        drifting = next(i for i, r in replicas.items() if r.drifting)
        healthy = next(i for i, r in replicas.items() if not r.drifting)
        for exporter in exporters.values():
            wait_until(lambda e=exporter: _drift_published(e), "a full drift pass", 20)

        webhook = Webhook()
        cleanup.callback(webhook.close)

        am_port = free_port()
        am_file = tmp / "alertmanager.yml"
        am_file.write_text(yaml.safe_dump(alertmanager_config(webhook.port)), encoding="utf-8")
        check = subprocess.run(
            [amtool_bin, "check-config", str(am_file)], capture_output=True, text=True
        )
        assert check.returncode == 0, check.stdout + check.stderr
        alertmanager = start_service(
            "alertmanager",
            [
                alertmanager_bin,
                f"--config.file={am_file}",
                f"--storage.path={tmp / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{am_port}",
                "--cluster.listen-address=",
            ],
            tmp / "alertmanager.log",
            am_port,
        )
        cleanup.callback(alertmanager.stop)

        # the shipped rules with every `for` shortened to FOR
        gen = load_generator()
        rendered = gen.render(gen.load_thresholds(), for_override=FOR)
        (tmp / "rules").mkdir()
        for name, text in rendered.items():
            (tmp / "rules" / name).write_text(text, encoding="utf-8")
        prom_port = free_port()
        prom_config = {
            "global": {
                "scrape_interval": "1s",
                "evaluation_interval": "1s",
                "scrape_timeout": "900ms",
            },
            "rule_files": [str(tmp / "rules" / name) for name in rendered],
            "alerting": {
                "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]
            },
            "scrape_configs": [
                {"job_name": JOB, "static_configs": [{"targets": sorted(exporters)}]}
            ],
        }
        (tmp / "prometheus.yml").write_text(yaml.safe_dump(prom_config), encoding="utf-8")
        traffic = Traffic(list(replicas.values()))
        cleanup.callback(traffic.stop)
        service = start_service(
            "prometheus",
            [
                prometheus_bin,
                f"--config.file={tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'prom-data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                "--rules.alert.resend-delay=1s",
            ],
            tmp / "prometheus.log",
            prom_port,
        )
        cleanup.callback(service.stop)
        for exporter in exporters.values():  # the outcomes come with the traffic
            wait_until(lambda e=exporter: _quality_published(e), "a quality pass", 20)
        yield Stack(
            tmp=tmp,
            reference=reference,
            replicas=replicas,
            exporters=exporters,
            drifting=drifting,
            healthy=healthy,
            traffic=traffic,
            webhook=webhook,
            prometheus=Prometheus(service),
            alertmanager=alertmanager,
            rendered_rules=rendered,
        )


def _received(stack: Stack, alertname: str, severity: str, **labels: str) -> list[tuple[str, dict]]:
    return [
        (path, alert)
        for path, alert in stack.webhook.alerts()
        if alert["labels"].get("alertname") == alertname
        and alert["labels"].get("severity") == severity
        and all(alert["labels"].get(k) == v for k, v in labels.items())
    ]


def _wait_for_alert(stack: Stack, alertname: str, severity: str, **labels: str) -> tuple[str, dict]:
    found = wait_until(
        lambda: _received(stack, alertname, severity, **labels),
        f"{alertname} ({severity}, {labels}) at the webhook; got "
        + repr(
            sorted(
                {
                    (a["labels"]["alertname"], a["labels"]["severity"])
                    for _, a in stack.webhook.alerts()
                }
            )
        ),
        TIMEOUT,
        stack.prometheus.service,
        stack.alertmanager,
    )
    return found[0]


# --- the tests --------------------------------------------------------------------------------


def test_live_scrape_has_exactly_the_metrics_rules_and_dashboards_are_written_against(
    stack: Stack,
) -> None:
    places = [
        (r.get("alert") or r.get("record"), r["expr"]) for r in all_rules()
    ] + dashboard_exprs()
    expected = EXPORTER_METRICS - NOT_IN_THIS_STACK
    for instance, exporter in stack.exporters.items():
        names = {n for n in exporter.scrape().names() if n.startswith("mlops_")}
        # both ways: a metric the exporter dropped or renamed, or one added without a place
        # in the catalog (and so never checked against the rules and dashboards), fails here
        assert names == expected, (
            f"{instance}: not exposed {sorted(expected - names)}, "
            f"not in the catalog (or not expected here) {sorted(names - expected)}"
        )
        for where, expr in places:
            exported, _ = metric_names(expr)
            missing = exported - names - NOT_IN_THIS_STACK
            assert not missing, f"{where}: {sorted(missing)} not on a live scrape"


def test_every_rule_evaluates_and_every_recorded_series_has_data(stack: Stack) -> None:
    _wait_for_alert(stack, "MlopsFeatureDriftHigh", "critical", feature="age")
    prom = stack.prometheus
    loaded = [rule for group in prom.api("rules")["groups"] for rule in group["rules"]]
    assert {r["name"] for r in loaded} == {r.get("alert") or r["record"] for r in all_rules()}
    broken = [(r["name"], r.get("lastError")) for r in loaded if r["health"] != "ok"]
    assert not broken, broken
    records = {r["record"] for r in all_rules() if "record" in r}
    empty = sorted(name for name in records if not prom.query(f'{name}{{job="{JOB}"}}'))
    assert not empty, f"recorded series without data: {empty}"


def test_invalid_line_ratio_leaves_other_events_out(stack: Stack) -> None:
    """Both replicas write 1 invalid and OTHER_EVENTS other lines per INVALID_EVERY predictions."""
    rule = "job_instance_model:mlops_log_lines_invalid:ratio_rate5m"
    expected = 1 / (INVALID_EVERY + 1)  # invalid / (predictions + invalid)
    diluted = 1 / (INVALID_EVERY + 1 + OTHER_EVENTS)  # invalid / all lines: the wrong figure

    def ratios() -> dict[str, float]:
        result = stack.prometheus.query(f'{rule}{{job="{JOB}",model="{MODEL}"}}')
        return {r["metric"]["instance"]: float(r["value"][1]) for r in result}

    # the 5m rate spans every sample since Prometheus started: batches of 10 predictions, so
    # the share wobbles by a few percent around 1/101; 1/151 is 33% away
    deadline = time.monotonic() + TIMEOUT
    while True:
        found = ratios()
        if set(found) == set(stack.exporters) and all(
            v == pytest.approx(expected, rel=0.15) for v in found.values()
        ):
            break
        assert time.monotonic() < deadline, (
            f"{rule}: {found}, expected {expected:.4f} on both replicas (over all lines, "
            f"other events included, it would be {diluted:.4f})"
        )
        time.sleep(0.25)
    for instance, value in found.items():
        assert abs(value - expected) < abs(value - diluted), (instance, value)
    # the exporter's own accounting the rule relies on: every line is exactly one of these
    for exporter in stack.exporters.values():
        scrape = exporter.scrape()
        invalid = sum(scrape.having("mlops_log_lines_invalid_total").values())
        parts = (
            scrape.get("mlops_predictions_total", model=MODEL)
            + scrape.get("mlops_log_lines_other_events_total", model=MODEL)
            + invalid
        )
        assert scrape.get("mlops_log_lines_total", model=MODEL) == parts


def test_drift_alert_reaches_the_webhook_with_labels_and_annotations(stack: Stack) -> None:
    path, alert = _wait_for_alert(stack, "MlopsFeatureDriftHigh", "critical", feature="age")
    assert path == "/mlops-critical"
    labels, notes = alert["labels"], alert["annotations"]
    assert labels == {
        "alertname": "MlopsFeatureDriftHigh",
        "severity": "critical",
        "job": JOB,
        "instance": stack.drifting,
        "model": MODEL,
        "feature": "age",
    }
    assert notes["summary"] == "Feature age of model churn moved by more than 0.25."
    assert (
        f"feature age of model churn on {stack.drifting} to its reference is at least "
        in (notes["description"])
    )
    assert notes["runbook_url"].endswith("/docs/runbook.md#mlopsfeaturedrifthigh")
    lower = (
        stack.exporters[stack.drifting]
        .scrape()
        .get("mlops_feature_drift_distance_lower_bound", model=MODEL, feature="age")
    )
    assert lower > 0.25

    # plan drifted too (basic -> unseen "premium"); the distance verdict on age arrives as a
    # warning
    _wait_for_alert(
        stack, "MlopsFeatureDriftHigh", "critical", feature="plan", instance=stack.drifting
    )
    path, detected = _wait_for_alert(
        stack, "MlopsFeatureDriftDetected", "warning", feature="age", test="distance"
    )
    assert path == "/mlops-warning" and detected["labels"]["instance"] == stack.drifting
    assert detected["annotations"]["runbook_url"].endswith("#mlopsfeaturedriftdetected")


def test_latency_alert_reaches_the_webhook(stack: Stack) -> None:
    path, alert = _wait_for_alert(stack, "MlopsPredictionLatencyHigh", "critical")
    assert path == "/mlops-critical"
    assert alert["labels"] == {
        "alertname": "MlopsPredictionLatencyHigh",
        "severity": "critical",
        "job": JOB,
        "instance": stack.drifting,
        "model": MODEL,
        "quantile": "0.99",
    }
    assert alert["annotations"]["summary"].startswith("p99 prediction latency of model churn is ")
    assert alert["annotations"]["summary"].endswith("ms.")
    assert "above 0.2s" in alert["annotations"]["description"]
    assert alert["annotations"]["runbook_url"].endswith("#mlopspredictionlatencyhigh")


def test_quality_alert_reaches_the_webhook(stack: Stack) -> None:
    """Outcomes joined in the exporter, judged there, alerted on by Prometheus, routed by
    Alertmanager: the drifting replica's model is right one time in three."""
    path, alert = _wait_for_alert(stack, "MlopsModelQualityDegraded", "critical")
    assert path == "/mlops-critical"
    assert alert["labels"] == {
        "alertname": "MlopsModelQualityDegraded",
        "severity": "critical",
        "job": JOB,
        "instance": stack.drifting,
        "model": MODEL,
        "metric": "accuracy",
    }
    summary = alert["annotations"]["summary"]
    assert summary.startswith("accuracy of model churn degraded to 0.3"), summary
    assert summary.endswith("(reference 0.900)."), summary
    assert alert["annotations"]["runbook_url"].endswith("#mlopsmodelqualitydegraded")
    drifting = stack.exporters[stack.drifting].scrape()
    healthy = stack.exporters[stack.healthy].scrape()
    assert drifting.get("mlops_model_quality", model=MODEL, metric="accuracy") == pytest.approx(
        1 / 3, abs=0.01
    )
    assert healthy.get("mlops_model_quality", model=MODEL, metric="accuracy") == 1.0
    assert healthy.get("mlops_model_quality_degraded", model=MODEL, metric="accuracy") == 0.0


def test_warnings_are_inhibited_by_their_critical(stack: Stack) -> None:
    _wait_for_alert(stack, "MlopsFeatureDriftHigh", "critical", feature="age")
    _wait_for_alert(stack, "MlopsPredictionLatencyHigh", "critical")
    firing = stack.prometheus.api("alerts")["alerts"]
    warnings = {
        (a["labels"]["alertname"], a["labels"].get("feature"))
        for a in firing
        if a["labels"]["severity"] == "warning" and a["state"] == "firing"
    }
    # Prometheus fires both severities; Alertmanager delivers only the critical
    assert ("MlopsFeatureDriftHigh", "age") in warnings
    assert ("MlopsPredictionLatencyHigh", None) in warnings
    time.sleep(2.5)  # more than group_wait + group_interval
    assert not _received(stack, "MlopsFeatureDriftHigh", "warning")
    assert not _received(stack, "MlopsPredictionLatencyHigh", "warning")


def test_the_healthy_replica_raises_no_alert(stack: Stack) -> None:
    _wait_for_alert(stack, "MlopsFeatureDriftHigh", "critical", feature="age")
    _wait_for_alert(stack, "MlopsPredictionLatencyHigh", "critical")
    time.sleep(2.0)  # a few more evaluations of every rule over the healthy replica's data
    prometheus_alerts = [
        a
        for a in stack.prometheus.api("alerts")["alerts"]
        if a["labels"].get("instance") == stack.healthy and a["state"] == "firing"
    ]
    assert prometheus_alerts == [], prometheus_alerts
    delivered = [
        a for _, a in stack.webhook.alerts() if a["labels"].get("instance") == stack.healthy
    ]
    assert delivered == [], delivered
    # its figures were there to be judged: scraped, drift computed, traffic and latency flowing
    assert stack.prometheus.value(f'up{{instance="{stack.healthy}"}}') == 1
    healthy_psi = stack.prometheus.value(
        f'max(mlops_feature_drift_psi{{instance="{stack.healthy}"}})'
    )
    assert healthy_psi is not None and abs(healthy_psi) < 1e-12
    assert (
        stack.prometheus.value(
            f'job_instance_model:mlops_predictions:rate5m{{instance="{stack.healthy}"}}'
        )
        > 0
    )
    # and the unshifted feature of the drifting replica raises nothing either
    assert not [a for _, a in stack.webhook.alerts() if a["labels"].get("feature") == "income"]


def test_every_dashboard_query_runs_and_returns_data(stack: Stack) -> None:
    _wait_for_alert(stack, "MlopsFeatureDriftHigh", "critical", feature="age")  # ALERTS has data
    board = load_dashboard()
    values = {
        "job": JOB,
        "instance": ".+",
        "model": MODEL,
        "feature": ".+",
        "version": ".+",
        "datasource": "prometheus",
        "__rate_interval": "4s",  # Grafana's floor: 4 x the 1 s scrape interval
        "__range": "1m",  # the dashboard's time range, in the instant queries over it
    }
    for name, query in variable_queries(board).items():
        promql, label = label_values_as_promql(substitute(query, values))
        found = {r["metric"][label] for r in stack.prometheus.query(promql)}
        expected = {
            "job": {JOB},
            "instance": set(stack.exporters),
            "model": {MODEL},
            "feature": {"age", "income", "plan"},
            "version": {"unknown"},  # a reference file and no model.version setting
        }[name]
        assert found == expected, f"variable ${name}: {promql} -> {found}"
    empty = []
    for title, ref, target in panel_queries(board):
        expr = substitute(target["expr"], values)
        result = (
            stack.prometheus.query(expr)
            if target["instant"]
            else stack.prometheus.query_range(expr)
        )
        exported, _ = metric_names(expr)
        if not result and not exported & NOT_IN_THIS_STACK:
            empty.append(f"{title}/{ref}: {expr}")
    assert not empty, "queries without data:\n" + "\n".join(empty)


def test_fleet_psi_and_tv_recording_rules_equal_offline_figures_of_the_union(stack: Stack) -> None:
    prom = stack.prometheus
    stack.traffic.stop()
    total = sum(r.predictions for r in stack.replicas.values())
    wait_until(
        lambda: prom.value(f'sum(mlops_predictions_total{{job="{JOB}"}})') == total,
        f"Prometheus to scrape all {total} predictions",
        TIMEOUT,
        prom.service,
    )
    # per bucket, counts summed over both replicas, then proportions and PSI, offline
    labels = {
        feature: [
            r["metric"]["bucket"]
            for r in prom.query(
                f'mlops_feature_reference_bucket_ratio{{instance="{stack.healthy}",feature="{feature}"}}'
            )
        ]
        for feature in ("age", "income", "plan")
    }
    expected_counts, expected_psi, expected_ref, expected_tv = {}, {}, {}, {}
    union = {f: [v for r in stack.replicas.values() for v in r.written[f]] for f in labels}
    for feature, buckets in labels.items():
        ref_counts, counts = _bucket_counts(
            feature, buckets, stack.reference[feature], union[feature]
        )
        expected_counts[feature] = counts
        expected_ref[feature] = {b: c / N_REF for b, c in ref_counts.items()}
        n = sum(counts.values())
        expected_psi[feature] = _psi(
            [counts[b] / n for b in buckets], [ref_counts[b] / N_REF for b in buckets]
        )
        expected_tv[feature] = 0.5 * sum(
            abs(counts[b] / n - ref_counts[b] / N_REF) for b in buckets
        )
    assert sum(expected_counts["age"].values()) == total

    count_rule = "job_model_feature_bucket:mlops_feature_bucket_observations:increase1h"

    def recorded_counts() -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for r in prom.query(f'{count_rule}{{job="{JOB}",model="{MODEL}"}}'):
            out.setdefault(r["metric"]["feature"], {})[r["metric"]["bucket"]] = float(r["value"][1])
        return out

    wait_until(
        lambda: recorded_counts() == expected_counts,
        "the recorded bucket counts",
        TIMEOUT,
        prom.service,
    )
    time.sleep(2.5)  # later evaluations see the same, final counters
    assert recorded_counts() == expected_counts

    for r in prom.query("job_model_feature_bucket:mlops_feature_reference_bucket_ratio:max"):
        feature, bucket = r["metric"]["feature"], r["metric"]["bucket"]
        assert float(r["value"][1]) == pytest.approx(expected_ref[feature][bucket], abs=1e-12)

    recorded = {
        r["metric"]["feature"]: float(r["value"][1])
        for r in prom.query(
            f'job_model_feature:mlops_feature_drift_psi:increase1h{{job="{JOB}",model="{MODEL}"}}'
        )
    }
    assert set(recorded) == set(expected_psi)
    for feature, psi in expected_psi.items():
        assert abs(recorded[feature] - psi) <= 1e-6, (feature, recorded[feature], psi)
    tv = {
        r["metric"]["feature"]: float(r["value"][1])
        for r in prom.query(
            "job_model_feature:mlops_feature_drift_total_variation:increase1h"
            f'{{job="{JOB}",model="{MODEL}"}}'
        )
    }
    assert set(tv) == set(expected_tv)
    for feature, value in expected_tv.items():
        assert abs(tv[feature] - value) <= 1e-9, (feature, tv[feature], value)
    assert expected_tv["plan"] > 0.1  # the unseen "premium" is counted in its own bucket
    # the case is not trivial: the union drifted in age and plan, barely in income
    assert expected_psi["age"] > 0.2 and expected_psi["plan"] > 0.2
    assert expected_psi["income"] < 0.01


def _bucket_counts(
    feature: str, buckets: list[str], reference: np.ndarray, values: list[Any]
) -> tuple[dict[str, int], dict[str, int]]:
    """Reference and observed counts per bucket label, bucketed here, not by the exporter."""
    if feature == "plan":
        kept = [b for b in buckets if b not in ("__other__", "__unseen__")]
        seen = {str(v) for v in reference}

        def bucket_of(v: Any) -> str:
            if v in kept:
                return v
            return "__other__" if v in seen else "__unseen__"

        ref = [bucket_of(str(v)) for v in reference]
        cur = [bucket_of(str(v)) for v in values]
        return ({b: ref.count(b) for b in buckets}, {b: cur.count(b) for b in buckets})
    edges = np.array(sorted(float(b) for b in buckets if b != "+Inf"))
    order = [repr(float(e)) for e in edges] + ["+Inf"]
    assert sorted(order) == sorted(buckets)

    def counts(data: Any) -> dict[str, int]:
        idx = np.searchsorted(edges, np.asarray(data, dtype=float), side="left")
        per = np.bincount(idx, minlength=len(order))
        return {b: int(c) for b, c in zip(order, per, strict=True)}

    return counts(reference), counts(values)


def _psi(current: list[float], reference: list[float]) -> float:
    return sum(
        (max(c, EPSILON) - max(r, EPSILON)) * math.log(max(c, EPSILON) / max(r, EPSILON))
        for c, r in zip(current, reference, strict=True)
    )
