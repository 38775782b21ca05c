"""exporter.app with an outcomes: section, in-process: the parts it builds, its own scheduler
job, and what a failing store or pass costs (nothing but time)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from exporter import model_outcomes
from exporter.app import Exporter
from exporter.config import load_config, load_reference
from exporter.linesource import IdentifyingFollower
from exporter.outcomes import OutcomeStoreError
from exporter.tail import LogFollower
from tests.e2e._exporter import write_config
from tests.e2e.test_exporter_quality import outcome, prediction, quality_config, write


def build(config: Path) -> Exporter:
    cfg = load_config(config, {})
    profile, features = load_reference(cfg)
    return Exporter(cfg, profile, features, listen_address="127.0.0.1:0", version="t")


def wait(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_without_outcomes_nothing_of_them_is_built(tmp_path: Path) -> None:
    exp = build(write_config(tmp_path, interval="1h"))
    try:
        assert exp.feed is None and exp.store is None and exp.ingestor.outcomes is None
        assert type(exp.follower) is LogFollower  # the plain follower: nothing extra per line
        exp.start()
        assert exp.scheduler.get_job("quality") is None
    finally:
        exp.stop()


def test_with_outcomes_a_quality_job_of_its_own(tmp_path: Path) -> None:
    exp = build(quality_config(tmp_path, interval="1h"))
    try:
        assert isinstance(exp.follower, IdentifyingFollower) and exp.feed is not None
        assert (tmp_path / "state" / "checkpoint.outcomes.db").exists()  # directory created
        exp.start()
        job = exp.scheduler.get_job("quality")
        assert job.max_instances == 1 and job.coalesce is True
        assert job.trigger.interval.total_seconds() == 3600
        wait(lambda: exp.quality.computed_at is not None)  # once before ready
    finally:
        exp.stop()
    assert exp.store is not None and exp.store._closed  # closed on stop


def test_a_store_that_fails_a_write_gets_the_rows_with_the_next_poll(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exp = build(quality_config(tmp_path, interval="1h"))
    store = exp.store
    assert store is not None and exp.feed is not None
    real = store.apply_blocks  # what the ingest loop's feed writes with
    failures = [2]

    def flaky(*args, **kwargs):
        if failures[0]:
            failures[0] -= 1
            raise OutcomeStoreError("outcome store x: write failed: disk I/O error")
        return real(*args, **kwargs)

    monkeypatch.setattr(store, "apply_blocks", flaky)
    log = tmp_path / "logs" / "app.jsonl"
    now = time.time()
    try:
        exp.start()
        write(log, [prediction(f"r{i}", now, {"class": "a"}) for i in range(50)])
        wait(lambda: exp.feed is not None and exp.feed.failing)
        # said on the pages while it lasts, with the rows waiting (it was in the log only)
        (said,) = [w for w in exp._warnings() if "cannot be written" in w]
        assert said.startswith(f"outcome store {store.path} cannot be written (outcome store x:")
        assert "50 rows wait in memory" in said
        write(log, [outcome(f"r{i}", "a", now) for i in range(50)])
        wait(lambda: failures[0] == 0 and exp.feed is not None and not exp.feed.failing)
        wait(lambda: exp.feed is not None and exp.feed.stats.outcomes_total == 50)
        stats = exp.feed.stats
        assert (stats.predictions_total, stats.pending, stats.held) == (50, 0, 0)
        assert not [w for w in exp._warnings() if "cannot be written" in w]
    finally:
        exp.stop()


def test_a_failed_quality_pass_keeps_the_last_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exp = build(quality_config(tmp_path, interval="1h"))
    try:
        exp.start()
        wait(lambda: exp.quality.computed_at is not None)
        good = exp.quality

        def broken(*args, **kwargs):
            raise RuntimeError("boom")

        monkeypatch.setattr(model_outcomes, "compute_quality", broken)
        exp.quality_pass()
        assert exp.quality is good
        monkeypatch.undo()
        exp.quality_pass()
        assert exp.quality is not good
    finally:
        exp.stop()


def test_several_models_each_have_a_store_and_a_reload_cannot_drop_one(tmp_path: Path) -> None:
    from exporter.app import build_exporter
    from tests.e2e.test_exporter_quality_models import two_models_config

    config = two_models_config(tmp_path)
    exp = build_exporter(config, "127.0.0.1:0", None, {})
    try:
        assert exp.outcomes is not None
        assert [p.name for p in exp.outcomes.parts] == ["churn", "fraud"]
        assert [p.store.path.name for p in exp.outcomes.parts] == [
            "checkpoint.outcomes.churn.db", "checkpoint.outcomes.fraud.db",
        ]  # fmt: skip
        text = config.read_text()
        cut = text.index("  - name: fraud")
        config.write_text(text[:cut] + text[text.index("drift:") :])
        error = exp.reload()
        assert error is not None and "adding or removing a model needs a restart" in error
        assert [m.name for m in exp.models] == ["churn", "fraud"]
    finally:
        exp.stop()
    assert all(p.store._closed for p in exp.outcomes.parts)


def test_a_reload_sets_each_stores_bounds_and_keeps_the_models(tmp_path: Path) -> None:
    """The shared outcomes: bounds and a model's own models[i].outcomes are applied to the
    open stores; the models keep their windows (nothing else changed)."""
    from exporter.app import build_exporter
    from tests.e2e.test_exporter_quality_models import two_models_config

    config = two_models_config(tmp_path)
    exp = build_exporter(config, "127.0.0.1:0", None, {})
    try:
        assert exp.outcomes is not None
        churn, fraud = (p.store for p in exp.outcomes.parts)
        assert (churn.max_delay, fraud.max_delay) == (3600.0, 3600.0)
        states = list(exp.models)
        text = config.read_text().replace(
            "match: {service: fraud-api}\n",
            "match: {service: fraud-api}\n    outcomes: {max_delay: 10d, max_pending: 900}\n",
        ).replace("outcomes: {early_grace: 1s, max_delay: 1h}",
                  "outcomes: {early_grace: 1s, max_delay: 2h, max_pending: 1000}")  # fmt: skip
        config.write_text(text)
        assert exp.reload() is None
        assert (churn.max_delay, churn.max_pending, churn.early_grace) == (7200.0, 1000, 1.0)
        assert (fraud.max_delay, fraud.max_pending, fraud.early_grace) == (10 * 86400.0, 900, 1.0)
        assert list(exp.models) == states  # the same models: windows and counters kept
        summary = dict(exp._landing_page().config_summary)
        assert summary["model fraud: outcomes.max_delay / early_grace"] == "10d / 1s"
        assert summary["model fraud: outcomes.max_pending"] == "900"
        assert summary["outcomes.max_delay / early_grace"] == "2h / 1s"
        assert "model churn: outcomes.max_pending" not in summary
    finally:
        exp.stop()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("outcomes: {early_grace: 1s, max_delay: 1h}",
          "outcomes: {early_grace: 1s, max_delay: 1h, paths: [other/*.jsonl]}"),
         "outcomes.paths: a change needs a restart"),
        (("outcomes: {early_grace: 1s, max_delay: 1h}",
          "outcomes: {early_grace: 1s, max_delay: 1h, store: elsewhere.db}"),
         "outcomes.store: a change needs a restart"),
        (("outcomes: {early_grace: 1s, max_delay: 1h}\nquality: {min_samples: 50}\n", ""),
         "outcomes: removing the section needs a restart"),
    ],
)  # fmt: skip
def test_a_reload_that_would_move_the_stores_is_refused(
    tmp_path: Path, change: tuple[str, str], expected: str
) -> None:
    from exporter.app import build_exporter
    from tests.e2e.test_exporter_quality_models import two_models_config

    config = two_models_config(tmp_path)
    exp = build_exporter(config, "127.0.0.1:0", None, {})
    try:
        before = exp.config
        text = config.read_text()
        assert change[0] in text
        config.write_text(text.replace(*change))
        error = exp.reload()
        assert error is not None and expected in error and "nothing reloaded" in error
        assert exp.config is before
    finally:
        exp.stop()


def test_a_reload_that_adds_outcomes_is_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path, interval="1h")
    exp = build(config)
    try:
        config.write_text(config.read_text() + "outcomes: {store: o.db}\n")
        error = exp.reload()
        assert error is not None and "outcomes: adding the section needs a restart" in error
        assert exp.config.outcomes is None and exp.outcomes is None
    finally:
        exp.stop()


def test_one_models_failed_quality_pass_leaves_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from exporter.app import build_exporter
    from tests.e2e.test_exporter_quality_models import two_models_config

    exp = build_exporter(two_models_config(tmp_path), "127.0.0.1:0", None, {})
    real, calls = model_outcomes.compute_quality, []

    def first_fails(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return real(*args, **kwargs)

    try:
        monkeypatch.setattr(model_outcomes, "compute_quality", first_fails)
        exp.quality_pass()
        assert exp.quality_of("churn").computed_at is None  # the failed one keeps its last
        assert exp.quality_of("fraud").computed_at is not None
        exp.quality_pass()
        assert exp.quality_of("churn").computed_at is not None
    finally:
        exp.stop()
    exp.quality_pass()  # after stop: nothing, no error


def test_a_reload_of_one_entrys_quality_keeps_the_model_and_judges_by_the_new_reference(
    tmp_path: Path,
) -> None:
    from exporter.app import build_exporter
    from tests.e2e.test_exporter_quality_models import two_models_config

    config = two_models_config(tmp_path)
    exp = build_exporter(config, "127.0.0.1:0", None, {})
    try:
        churn = exp.models[0]
        assert model_outcomes.quality_settings(exp.config, exp.models[0]).reference == {}
        config.write_text(
            config.read_text().replace(
                "match: {service: churn-api}\n",
                "match: {service: churn-api}\n    quality: {reference: {accuracy: 0.9}}\n",
            )
        )
        assert exp.reload() is None
        assert exp.models[0] is churn  # kept: its window and counters stay
        assert dict(model_outcomes.quality_settings(exp.config, exp.models[0]).reference) == {
            "accuracy": 0.9
        }
        assert model_outcomes.quality_settings(exp.config, exp.models[1]).reference == {}
        exp.quality_pass()
        assert dict(exp.quality_of("churn").reference) == {"accuracy": 0.9}
    finally:
        exp.stop()


def test_a_start_that_fails_after_the_store_opened_leaves_it_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = quality_config(tmp_path, interval="1h")

    def broken(self, states):
        raise OSError("the log volume is gone")

    with monkeypatch.context() as patch:
        patch.setattr(Exporter, "_open_logs", broken)
        with pytest.raises(OSError, match="log volume"):
            build(config)
    exp = build(config)  # the same process again: the store and the state file are free
    exp.stop()


def test_a_reload_that_runs_out_of_memory_is_one_line_and_keeps_the_running_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from exporter import app

    exp = build(write_config(tmp_path, interval="1h"))
    try:
        before = exp.config

        def too_big(*args: object, **kwargs: object) -> None:
            raise MemoryError

        monkeypatch.setattr(app, "load_config", too_big)  # a reference too big to read
        error = exp.reload()
        assert error == "out of memory while reading the new config and references"
        assert exp.config is before
        out = capsys.readouterr().out
        assert "reload_failed" in out and "Traceback" not in out
    finally:
        exp.stop()


def test_a_registry_reference_no_drop_could_exceed_is_said_by_the_quality_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the config's own references are refused at load; the metrics the registry stored
    # with a version (mlops validate --register) come only at run time
    import dataclasses

    from structlog.testing import capture_logs

    exp = build(quality_config(tmp_path, interval="1h"))
    real = model_outcomes.quality_settings

    def stored(config, model):  # as if the registry's version carried accuracy 0.9
        settings = real(config, model)
        return dataclasses.replace(settings, reference={"accuracy": 0.9}, max_drop=0.95)

    monkeypatch.setattr(model_outcomes, "quality_settings", stored)
    try:
        with capture_logs() as logs:
            exp.quality_pass()
            exp.quality_pass()
        said = [e for e in logs if e["event"] == "quality_max_drop_unjudgeable"]
        assert len(said) == 1  # once, then shown while it holds
        (page,) = [w for w in exp._warnings() if "quality.max_drop" in w]
        assert "0.95 with reference accuracy 0.9: degraded would mean below -0.05" in page
        monkeypatch.setattr(model_outcomes, "quality_settings", real)
        exp.quality_pass()
        assert not [w for w in exp._warnings() if "quality.max_drop" in w]
    finally:
        exp.stop()
