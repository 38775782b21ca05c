"""exporter.app in-process: the scheduled pass, its failure handling, and the snapshot swap."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from exporter import models as models_module
from exporter.app import Exporter
from exporter.config import load_config, load_reference
from exporter.config_summary import config_summary
from tests.e2e._exporter import append, lines_of, parse_metrics, traffic, write_config


@pytest.fixture
def exporter(tmp_path: Path):
    config = load_config(write_config(tmp_path, interval="1h"), {})
    profile, features = load_reference(config)
    exp = Exporter(config, profile, features, listen_address="127.0.0.1:0", version="t")
    exp.start()
    yield exp, tmp_path
    exp.stop()


def scrape(exp: Exporter):
    with urllib.request.urlopen(f"http://127.0.0.1:{exp.server.port}/metrics", timeout=5) as r:
        return parse_metrics(r.read().decode())


def status(url: str) -> int:
    try:
        return urllib.request.urlopen(url, timeout=5).status
    except urllib.error.HTTPError as err:
        return err.code


def wait(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_scheduler_job_settings(exporter) -> None:
    exp, _ = exporter
    job = exp.scheduler.get_job("drift")
    assert job.max_instances == 1 and job.coalesce is True
    assert job.trigger.interval.total_seconds() == 3600


def test_failed_pass_is_counted_and_keeps_the_last_good_snapshot(exporter, monkeypatch) -> None:
    exp, tmp_path = exporter
    recs, _ = traffic(300, shift_y=5)
    append(tmp_path / "logs" / "a.jsonl", lines_of(recs))
    wait(lambda: exp.models[0].counters.snapshot().predictions_total == 300)
    exp.drift_pass()
    good = exp.snapshot
    assert good.window_samples == 300 and good.features_drifted >= 1
    before = scrape(exp)

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(models_module, "compute_snapshot", broken)  # it cannot fail otherwise
    exp.drift_pass()
    exp.drift_pass()
    assert exp.snapshot is good
    after = scrape(exp)
    assert after.get("mlops_drift_computation_errors_total", model="e2e") == 2
    for name in ("mlops_feature_drift_psi", "mlops_drift_last_computed_timestamp_seconds"):
        assert after.having(name) == before.having(name)

    monkeypatch.undo()
    exp.drift_pass()
    assert exp.snapshot is not good and exp.snapshot.computed_at > good.computed_at


def test_a_change_of_verdict_is_logged_at_info_once(exporter) -> None:
    # News at the default log level, in the demo and in production alike (issue 14)
    from structlog.testing import capture_logs

    exp, tmp_path = exporter
    recs, _ = traffic(300, shift_y=5)
    append(tmp_path / "logs" / "a.jsonl", lines_of(recs))
    wait(lambda: exp.models[0].counters.snapshot().predictions_total == 300)
    with capture_logs() as logs:
        exp.drift_pass()
        exp.drift_pass()  # the same verdicts: nothing new to say
    detected = [e for e in logs if e["event"] == "drift_detected"]
    assert [e["feature"] for e in detected] == ["y"]
    (event,) = detected
    assert event["log_level"] == "info" and event["model"] == "e2e"
    assert event["lower_bound"] > event["tolerance"] and event["by"] == "distance"
    assert not [e for e in logs if e["event"] == "drift_cleared"]


def test_a_verdict_that_ends_is_logged_at_info_too() -> None:
    from types import SimpleNamespace

    from structlog.testing import capture_logs

    from exporter.app import _log_verdict_changes

    y = SimpleNamespace(name="y")
    before = SimpleNamespace(drifted_names=("y", "plan"), features=[y])
    after = SimpleNamespace(drifted_names=(), features=[y])  # plan: no verdict any more
    with capture_logs() as logs:
        _log_verdict_changes(before, after, "churn")  # type: ignore[arg-type]
    assert [(e["event"], e["feature"], e["judged"], e["log_level"]) for e in logs] == [
        ("drift_cleared", "plan", False, "info"), ("drift_cleared", "y", True, "info"),
    ]  # fmt: skip


def test_the_landing_pages_config_summary_writes_durations_as_the_config_does(exporter) -> None:
    # It said "drift.false_alarm_budget 2.592e+06s" for the default 30d
    exp, _ = exporter
    rows = dict(config_summary(exp.config, exp.models))
    assert rows["drift.interval"] == "1h"
    assert rows["drift.window"] == "5000 samples, 1h"
    assert rows["drift.false_alarm_budget"].startswith("30d (level ")


def test_ready_only_after_the_first_pass(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, interval="1h"), {})
    profile, features = load_reference(config)
    exp = Exporter(config, profile, features, listen_address="127.0.0.1:0")
    try:
        exp.server.start()  # serving, but neither ingest nor the first pass has run
        url = f"http://127.0.0.1:{exp.server.port}"
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(url + "/-/ready", timeout=5)
        assert info.value.code == 503
        assert urllib.request.urlopen(url + "/-/healthy", timeout=5).status == 200
        exp.start_background()
        wait(lambda: exp.snapshot.computed_at is not None)
        wait(lambda: status(url + "/-/ready") == 200)  # ready once the first pass is done
    finally:
        exp.stop()


@pytest.mark.parametrize(
    ("address", "expected"),
    [(":9874", ("", 9874)), ("127.0.0.1:0", ("127.0.0.1", 0)), ("[::1]:9874", ("::1", 9874))],
)
def test_parse_listen_address(address: str, expected: tuple[str, int]) -> None:
    from exporter.server import parse_listen_address

    assert parse_listen_address(address) == expected


@pytest.mark.parametrize("address", ["9874", "host:port", ":70000"])
def test_bad_listen_address(address: str) -> None:
    from exporter.server import parse_listen_address
    from mlops_core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"--web\.listen-address"):
        parse_listen_address(address)


def test_landing_page_escapes_names() -> None:
    from types import MappingProxyType

    from exporter.landing import LandingPage, render_landing
    from exporter.pipeline import FeatureResult, Snapshot

    feature = FeatureResult(
        "<b>x</b>",
        "numeric",
        500,
        distance=0.3,
        lower_bound=0.2,
        detectable_distance=0.15,
        ks_statistic=0.3,
        ks_p_value=0.01,
        psi=0.3,
        detected=MappingProxyType({"distance": True}),
        drifted=True,
    )
    quiet = FeatureResult(
        "small",
        "categorical",
        100,
        distance=0.2,
        lower_bound=-0.9,
        detectable_distance=1.15,
        chi2_p_value=0.5,
        detected=MappingProxyType({"distance": False}),
    )
    snap = Snapshot(
        1.0, 0.01, 500, (quiet, feature), MappingProxyType({}), MappingProxyType({}), 2, 1e-7
    )
    html = render_landing(LandingPage("m<script>", "1", [("k", "<v>")]), snap)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<span class='drift'>drift</span> (distance)" in html
    assert "1 of 2 features drifted" in html and "level 1e-07" in html
    # drifted features first
    assert html.index("data-feature='&lt;b&gt;x") < html.index("data-feature='small'")
    assert "KS 0.01" in html and "&chi;&sup2; 0.5" in html  # each p-value names its test
    assert "Too few samples to flag any shift of small" in html
