"""AlertSystem: severities, lower bounds, cooldown, escalation, clearing and persistence."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys

import pytest

from mlops_core.alerts import AlertSystem, parse_duration
from mlops_core.errors import AlertConfigError
from tests.conftest import REPO_ROOT, as_ordinary_user

LATENCY = {"latency_p99_ms": {"warning": 100, "critical": 200}}
T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z
HOUR = 3600.0


class Clock:
    """A settable wall clock (seconds since the epoch)."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Recorder:
    """A notifier that keeps what it was given."""

    def __init__(self, ok: bool = True) -> None:
        self.batches: list[list[dict]] = []
        self.ok = ok

    def notify(self, alerts):
        self.batches.append([dict(a) for a in alerts])
        return self.ok


def test_issue_example_gives_one_critical_alert():
    alert_system = AlertSystem(LATENCY, cooldown_hours=1)
    result = alert_system.analyze_metrics({"latency_p99_ms": [50, 120, 250]})
    assert result["status"] == "critical"
    assert result["suppressed"] == []
    assert len(result["alerts"]) == 1
    alert = result["alerts"][0]
    assert alert["metric"] == "latency_p99_ms"
    assert alert["severity"] == "critical"
    assert alert["value"] == 250
    assert alert["threshold"] == 200
    assert "250" in alert["message"] and "critical" in alert["message"]
    assert alert["timestamp"].endswith("Z")


def test_single_value_warning_and_ok():
    system = AlertSystem(LATENCY, clock=Clock())
    assert system.analyze_metrics({"latency_p99_ms": 150})["alerts"][0]["severity"] == "warning"
    quiet = AlertSystem(LATENCY, clock=Clock()).analyze_metrics({"latency_p99_ms": 100})
    assert quiet == {
        "alerts": [],
        "suppressed": [],
        "resolved": [],
        "status": "ok",
        "ignored": [],
        "timestamp": "2027-01-15T08:00:00.000000Z",
    }


def test_lower_bound_for_accuracy():
    thresholds = {"accuracy": {"warning": 0.9, "critical": 0.8, "direction": "below"}}
    system = AlertSystem(thresholds, clock=Clock())
    result = system.analyze_metrics({"accuracy": [0.95, 0.85, 0.91]})
    assert result["status"] == "warning"
    assert result["alerts"][0]["value"] == 0.85
    assert result["alerts"][0]["threshold"] == 0.9
    assert "below" in result["alerts"][0]["message"]
    fresh = AlertSystem(thresholds, clock=Clock())
    assert fresh.analyze_metrics({"accuracy": 0.7})["alerts"][0]["severity"] == "critical"
    assert fresh.analyze_metrics({"accuracy": 0.95})["status"] == "ok"


def test_only_one_level_and_unknown_and_non_finite_metrics():
    system = AlertSystem({"error_rate": {"critical": 0.05}}, clock=Clock())
    result = system.analyze_metrics(
        {"error_rate": [0.01, math.nan, 0.2], "cpu": 99, "latency": None}
    )
    assert [a["severity"] for a in result["alerts"]] == ["critical"]
    assert result["alerts"][0]["value"] == 0.2
    assert result["ignored"] == ["cpu", "latency"]
    nothing = AlertSystem({"error_rate": {"critical": 0.05}}, clock=Clock())
    assert nothing.analyze_metrics({"error_rate": [math.nan, "x"]})["ignored"] == ["error_rate"]


def test_cooldown_suppresses_the_same_severity_until_it_expires():
    clock = Clock()
    system = AlertSystem(LATENCY, cooldown_hours=1, clock=clock)
    assert len(system.analyze_metrics({"latency_p99_ms": 150})["alerts"]) == 1
    clock.advance(30 * 60)
    again = system.analyze_metrics({"latency_p99_ms": 160})
    assert again["alerts"] == []
    assert again["status"] == "warning"  # suppressed alerts still count for the status
    assert [s["severity"] for s in again["suppressed"]] == ["warning"]
    assert again["suppressed"][0]["cooldown_remaining_seconds"] == pytest.approx(30 * 60)
    clock.advance(30 * 60)  # exactly one hour after the first: the cooldown is over
    after = system.analyze_metrics({"latency_p99_ms": 170})
    assert [a["severity"] for a in after["alerts"]] == ["warning"]


def test_escalation_is_raised_at_once_and_deescalation_is_held():
    clock = Clock()
    system = AlertSystem(LATENCY, cooldown_hours=1, clock=clock)
    system.analyze_metrics({"latency_p99_ms": 150})
    clock.advance(60)
    escalated = system.analyze_metrics({"latency_p99_ms": 250})
    assert [a["severity"] for a in escalated["alerts"]] == ["critical"]
    clock.advance(60)
    back_to_warning = system.analyze_metrics({"latency_p99_ms": 150})
    assert back_to_warning["alerts"] == []  # warning was sent 2 minutes ago
    assert back_to_warning["status"] == "warning"
    clock.advance(60)
    assert system.analyze_metrics({"latency_p99_ms": 300})["alerts"] == []  # critical too


def test_return_to_normal_clears_state_and_reports_resolved():
    clock = Clock()
    system = AlertSystem(LATENCY, cooldown_hours=1, clock=clock)
    system.analyze_metrics({"latency_p99_ms": 250})
    clock.advance(60)
    normal = system.analyze_metrics({"latency_p99_ms": 40})
    assert normal["status"] == "ok"
    assert [(r["metric"], r["severity"], r["status"]) for r in normal["resolved"]] == [
        ("latency_p99_ms", "critical", "resolved")
    ]
    assert normal["resolved"][0]["started_at"] == "2027-01-15T08:00:00.000000Z"
    clock.advance(60)
    # within the old cooldown, but the state was cleared: raised again
    assert len(system.analyze_metrics({"latency_p99_ms": 250})["alerts"]) == 1
    # a second normal reading resolves nothing new, and a missing metric keeps the state
    system.analyze_metrics({"latency_p99_ms": 40})
    assert system.analyze_metrics({"latency_p99_ms": 40})["resolved"] == []


def test_missing_metric_is_not_back_to_normal():
    clock = Clock()
    system = AlertSystem(LATENCY, clock=clock)
    system.analyze_metrics({"latency_p99_ms": 250})
    assert system.analyze_metrics({})["resolved"] == []
    clock.advance(10)
    assert system.analyze_metrics({"latency_p99_ms": 250})["alerts"] == []


def test_zero_cooldown_raises_every_time():
    system = AlertSystem(LATENCY, cooldown_hours=0, clock=Clock())
    for _ in range(3):
        assert len(system.analyze_metrics({"latency_p99_ms": 250})["alerts"]) == 1


def test_notifiers_receive_raised_and_resolved_not_suppressed():
    clock = Clock()
    recorder, failing = Recorder(), Recorder(ok=False)
    system = AlertSystem(LATENCY, clock=clock, notifiers=[recorder, failing])
    system.analyze_metrics({"latency_p99_ms": 250})
    clock.advance(60)
    system.analyze_metrics({"latency_p99_ms": 250})  # suppressed: nothing sent
    clock.advance(60)
    system.analyze_metrics({"latency_p99_ms": 10})
    assert [[a["status"] for a in b] for b in recorder.batches] == [["firing"], ["resolved"]]
    assert system.notify_failures == 2  # the failing notifier, twice


def test_a_notifier_that_raises_does_not_break_analysis():
    class Broken:
        def notify(self, alerts):
            raise RuntimeError("boom")

    system = AlertSystem(LATENCY, clock=Clock(), notifiers=[Broken()])
    assert system.analyze_metrics({"latency_p99_ms": 250})["status"] == "critical"
    assert system.notify_failures == 1


# --- persistence ------------------------------------------------------------------------------


def test_state_persists_across_two_instances(tmp_path):
    state = tmp_path / "state" / "alerts.json"
    clock = Clock()
    first = AlertSystem(LATENCY, cooldown_hours=1, clock=clock, state_file=state)
    assert len(first.analyze_metrics({"latency_p99_ms": 250})["alerts"]) == 1
    saved = json.loads(state.read_text())
    assert saved["sent"] == {"latency_p99_ms": {"critical": T0}}
    assert not [p for p in state.parent.iterdir() if p.name != "alerts.json"]  # no temp left

    clock.advance(10 * 60)
    restarted = AlertSystem(LATENCY, cooldown_hours=1, clock=clock, state_file=state)
    result = restarted.analyze_metrics({"latency_p99_ms": 250})
    assert result["alerts"] == [] and len(result["suppressed"]) == 1

    clock.advance(HOUR)
    later = AlertSystem(LATENCY, cooldown_hours=1, clock=clock, state_file=state)
    assert len(later.analyze_metrics({"latency_p99_ms": 250})["alerts"]) == 1


def test_state_file_is_replaced_atomically_never_rewritten_in_place(tmp_path):
    state = tmp_path / "alerts.json"
    clock = Clock()
    system = AlertSystem(LATENCY, clock=clock, state_file=state)
    system.analyze_metrics({"latency_p99_ms": 150})
    with open(state, encoding="utf-8") as reader:  # opened before the next save
        clock.advance(60)
        system.analyze_metrics({"latency_p99_ms": 250})
        assert os.fstat(reader.fileno()).st_ino != state.stat().st_ino  # a new file, renamed in
        assert json.loads(reader.read())["sent"] == {"latency_p99_ms": {"warning": T0}}
    assert json.loads(state.read_text())["sent"] == {
        "latency_p99_ms": {"warning": T0, "critical": T0 + 60}
    }
    assert [p.name for p in tmp_path.iterdir()] == ["alerts.json"]  # no temp file left


def test_clearing_is_persisted(tmp_path):
    state = tmp_path / "alerts.json"
    clock = Clock()
    AlertSystem(LATENCY, clock=clock, state_file=state).analyze_metrics({"latency_p99_ms": 250})
    AlertSystem(LATENCY, clock=clock, state_file=state).analyze_metrics({"latency_p99_ms": 1})
    assert json.loads(state.read_text())["sent"] == {}
    third = AlertSystem(LATENCY, clock=clock, state_file=state)
    assert len(third.analyze_metrics({"latency_p99_ms": 250})["alerts"]) == 1


def test_state_from_the_future_is_discarded(tmp_path):
    state = tmp_path / "alerts.json"
    future = AlertSystem(LATENCY, clock=Clock(T0 + 5 * HOUR), state_file=state)
    future.analyze_metrics({"latency_p99_ms": 250})
    # a process whose clock says "now" finds a send time five hours ahead: not trusted
    present = AlertSystem(LATENCY, clock=Clock(T0), state_file=state)
    assert len(present.analyze_metrics({"latency_p99_ms": 250})["alerts"]) == 1


def test_corrupt_or_foreign_state_file_starts_fresh(tmp_path):
    state = tmp_path / "alerts.json"
    for content in ("{not json", "[1, 2]", json.dumps({"sent": {"latency_p99_ms": {"x": 1}}})):
        state.write_text(content)
        system = AlertSystem(LATENCY, clock=Clock(), state_file=state)
        assert len(system.analyze_metrics({"latency_p99_ms": 250})["alerts"]) == 1


def test_unwritable_state_file_does_not_stop_alerting(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    system = AlertSystem(LATENCY, clock=Clock(), state_file=blocker / "alerts.json")
    assert len(system.analyze_metrics({"latency_p99_ms": 250})["alerts"]) == 1


# --- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("thresholds", "message"),
    [
        ({}, "thresholds: expected a non-empty mapping of metric -> levels"),
        ({"lat": {"warning": "high"}}, "thresholds.lat.warning: expected a finite number"),
        (
            {"lat": {"warnign": 1}},
            r"thresholds.lat.warnign: unknown key \(did you mean 'warning'\?\)",
        ),
        (
            {"lat": {"warn": 1}},  # too far from any key to suggest one: the keys are listed
            r"thresholds.lat.warn: unknown key \(expected one of: warning, critical, direction\)",
        ),
        (
            {"lat": {"direction": "up", "warning": 1}},
            "thresholds.lat.direction: expected one of above, below, got 'up'",
        ),
        ({"lat": {}}, "thresholds.lat: needs a warning or critical level"),
        ({"lat": {"warning": 300, "critical": 200}}, "warning level 300 is beyond the critical"),
        (
            {"acc": {"warning": 0.7, "critical": 0.8, "direction": "below"}},
            "warning level 0.7 is beyond the critical level 0.8",
        ),
    ],
)
def test_bad_thresholds(thresholds, message):
    with pytest.raises(AlertConfigError, match=message):
        AlertSystem(thresholds)


def test_bad_cooldown():
    with pytest.raises(AlertConfigError, match="cooldown_hours"):
        AlertSystem(LATENCY, cooldown_hours=-1)


@pytest.mark.parametrize(
    ("text", "seconds"), [("1h", 3600), ("90s", 90), ("1h30m", 5400), ("2d", 172800), (600, 600)]
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1x", "h", "1h 30m", "-5m", -1, True])
def test_parse_duration_rejects(text):
    with pytest.raises(AlertConfigError):
        parse_duration(text)


def test_from_config_builds_thresholds_cooldown_and_notifiers(tmp_path):
    from mlops_core.notifiers import AlertmanagerNotifier, WebhookNotifier

    system = AlertSystem.from_config(
        {
            "cooldown": "30m",
            "thresholds": {"accuracy": {"warning": 0.9, "direction": "below"}},
            "state_file": str(tmp_path / "s.json"),
            "alertmanager": {"url": "http://127.0.0.1:9093", "labels": {"model": "churn"}},
            "webhook": {"url": "http://127.0.0.1:8080/hook", "timeout": 2, "retries": 1},
        }
    )
    assert system.cooldown_seconds == 1800
    assert system.thresholds["accuracy"] == {"direction": "below", "warning": 0.9}
    am, hook = system.notifiers
    assert isinstance(am, AlertmanagerNotifier) and isinstance(hook, WebhookNotifier)
    assert am.endpoint == "http://127.0.0.1:9093/api/v2/alerts"
    assert am.labels == {"model": "churn"}
    assert am.ends_after == 3600  # twice the cooldown
    assert (hook.timeout, hook.retries) == (2.0, 1)
    assert AlertSystem.from_config({"thresholds": LATENCY}).cooldown_seconds == 3600
    explicit = AlertSystem.from_config(
        {"thresholds": LATENCY, "alertmanager": {"url": "http://am:9093", "ends_after": "3h"}}
    )
    assert explicit.notifiers[0].ends_after == 3 * 3600


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            {"thresholds": LATENCY, "cooldwn": "1h"},
            r"^alerts.cooldwn: unknown key \(did you mean 'cooldown'\?\)$",
        ),
        ({"cooldown": "1h"}, "^alerts.thresholds: required key missing$"),
        ({"thresholds": LATENCY, "cooldown": "soon"}, "^alerts.cooldown: bad duration 'soon'"),
        ({"thresholds": LATENCY, "webhook": {}}, "^alerts.webhook.url: required key missing$"),
        (
            {"thresholds": LATENCY, "alertmanager": {"url": "ftp://x"}},
            r"^alerts.alertmanager.url: expected an http\(s\) URL, got 'ftp://x'$",
        ),
        (
            {"thresholds": LATENCY, "alertmanager": {"url": "http://x", "token": "y"}},
            r"^alerts.alertmanager.token: unknown key \(expected one of: url, timeout",
        ),
        # wrong types: one AlertConfigError naming the key, never an error from inside Python
        (
            {"thresholds": LATENCY, "alertmanager": {"url": "http://x", "labels": "model"}},
            "alerts.alertmanager.labels: expected a mapping of names to values, got 'model'",
        ),
        (
            {"thresholds": LATENCY, "webhook": {"url": "http://x", "headers": ["X-Token"]}},
            "alerts.webhook.headers: expected a mapping of names to values",
        ),
        (
            {"thresholds": LATENCY, "webhook": {"url": "http://x", "backoff": "fast"}},
            "alerts.webhook.backoff: expected a finite number, got 'fast'",
        ),
        (
            {"thresholds": LATENCY, "webhook": {"url": "http://x", "timeout": math.inf}},
            "alerts.webhook.timeout: expected a finite number, got inf",
        ),
        (
            {"thresholds": LATENCY, "alertmanager": {"url": "http://x", "alertname": 5}},
            r"alerts.alertmanager.alertname: expected a non-empty string, got 5 \(int\)",
        ),
        ({"thresholds": LATENCY, "state_file": 5}, "alerts.state_file: expected a non-empty"),
        (
            {"thresholds": LATENCY, "webhook": {"url": "http://x", "timeout": 0}},
            r"alerts.webhook.timeout: expected a positive number of seconds, got 0 \(int\)",
        ),
        (
            {"thresholds": {"lat": {"warning": 1, "critical": 0}}},
            "^alerts.thresholds.lat: the warning level 1 is beyond the critical level 0",
        ),
    ],
)
def test_from_config_rejects(section, message):
    with pytest.raises(AlertConfigError, match=message):
        AlertSystem.from_config(section)


def test_clock_may_return_an_aware_datetime():
    from datetime import UTC, datetime, timedelta

    now = [datetime(2027, 1, 15, 8, 0, tzinfo=UTC)]
    system = AlertSystem(LATENCY, cooldown_hours=1, clock=lambda: now[0])
    first = system.analyze_metrics({"latency_p99_ms": 250})
    assert first["alerts"][0]["timestamp"] == "2027-01-15T08:00:00.000000Z"
    now[0] += timedelta(minutes=59)
    assert system.analyze_metrics({"latency_p99_ms": 250})["alerts"] == []
    now[0] += timedelta(minutes=1)
    assert len(system.analyze_metrics({"latency_p99_ms": 250})["alerts"]) == 1


def test_a_state_file_whose_directory_cannot_exist_is_a_config_error(tmp_path):
    """Refused when read, naming the key: not a write that fails at the first alert."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    section = {"thresholds": {"m": {"warning": 1}}, "state_file": str(blocker / "dir" / "a.json")}
    with pytest.raises(AlertConfigError) as info:
        AlertSystem.from_config(section)
    message = str(info.value)
    assert message.startswith("alerts.state_file: ") and "\n" not in message
    assert f"{blocker} is not a directory" in message
    directory = dict(section, state_file=str(tmp_path))
    with pytest.raises(AlertConfigError, match=r"^alerts\.state_file: .* is a directory"):
        AlertSystem.from_config(directory)


def test_a_state_file_in_a_read_only_directory_is_a_config_error(tmp_path):
    """Checked in a process of its own where permission bits apply (as root: without the
    capability to override them), as an exporter running as an ordinary user sees it."""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    check = (
        "import sys\n"
        "from mlops_core.alerts import AlertSystem\n"
        "from mlops_core.errors import AlertConfigError\n"
        "try:\n"
        "    AlertSystem.from_config({'thresholds': {'m': {'warning': 1}},"
        " 'state_file': sys.argv[1]})\n"
        "except AlertConfigError as exc:\n"
        "    print(exc)\n"
        "    sys.exit(1)\n"
    )
    try:
        proc = subprocess.run(
            as_ordinary_user([sys.executable, "-c", check, str(locked / "d" / "a.json")]),
            capture_output=True, text=True, timeout=60,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        )  # fmt: skip
    finally:
        locked.chmod(0o700)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert re.match(r"^alerts\.state_file: .*not writable", proc.stdout), proc.stdout


def test_a_state_file_in_a_directory_yet_to_be_made_is_accepted(tmp_path):
    """As logs.state_file: its missing directories are created at the first write."""
    state = tmp_path / "new" / "dir" / "a.json"
    system = AlertSystem.from_config(
        {"thresholds": {"m": {"warning": 1}}, "state_file": str(state)}
    )
    assert system.state_file == state
