"""Model quality for several models in one exporter: the real process over HTTP.

Situations: two models' predictions and outcomes interleaved in one log file, with the same
request ids in both (an outcome joins its own model's prediction only), each model's quality
equal to sklearn on its own pairs; outcomes that match no model counted as unrouted; each
model's store its own file; a restart that keeps both quality windows; a SIGKILL replayed
once per store.
"""

from __future__ import annotations

import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sklearn.metrics as skm

from tests.e2e._exporter import Scrape, reference_csv, running_exporter, start_exporter
from tests.e2e.test_exporter_quality import CLASSES, outcome, prediction, write

pytestmark = pytest.mark.e2e

MODELS = ("churn", "fraud")


def two_models_config(tmp_path: Path, logs: str = "") -> Path:
    reference_csv(tmp_path / "ref.csv")
    (tmp_path / "logs").mkdir(exist_ok=True)
    state = tmp_path / "state" / "checkpoint.json"
    text = (
        "logs: {paths: [logs/*.jsonl], start_position: beginning, poll_interval: 50ms, "
        f"state_file: {state}{logs}}}\n"
        "models:\n"
        + "".join(
            f"  - name: {m}\n    reference: {{path: ref.csv}}\n    match: {{service: {m}-api}}\n"
            for m in MODELS
        )
        + "drift: {interval: 300ms, min_samples: 100, window: {max_samples: 5000, max_age: 1h}}\n"
        "outcomes: {early_grace: 1s, max_delay: 1h}\n"
        "quality: {min_samples: 50}\n"
    )
    path = tmp_path / "config.yml"
    path.write_text(text, encoding="utf-8")
    return path


def of(record: dict[str, Any], service: str | None) -> dict[str, Any]:
    out = {k: v for k, v in record.items() if k != "service"}
    if service is not None:
        out["service"] = service
    return out


class Traffic:
    """One model's predictions and outcomes, request ids r0, r1, ... (the same in every
    model), each model with its own classes' pattern."""

    def __init__(self, model: str, n: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.model, self.n = model, n
        self.predicted = [CLASSES[int(j)] for j in rng.integers(0, 3, n)]
        right = rng.random(n) < (0.8 if model == "churn" else 0.45)
        self.actual = [
            p if ok else CLASSES[(CLASSES.index(p) + 1) % 3]
            for p, ok in zip(self.predicted, right, strict=True)
        ]
        self.base = time.time() - 600

    def predictions(self, ids: range) -> list[dict[str, Any]]:
        return [
            of(
                prediction(f"r{i}", self.base + i, {"class": self.predicted[i]}),
                f"{self.model}-api",
            )
            for i in ids
        ]

    def outcomes(self, ids: range) -> list[dict[str, Any]]:
        return [
            of(outcome(f"r{i}", self.actual[i], self.base + i + 5), f"{self.model}-api")
            for i in ids
        ]

    def want(self, ids: range) -> dict[str, float]:
        y, p = [self.actual[i] for i in ids], [self.predicted[i] for i in ids]
        return {
            "accuracy": skm.accuracy_score(y, p),
            "balanced_accuracy": skm.balanced_accuracy_score(y, p),
            "precision_macro": skm.precision_score(y, p, average="macro", zero_division=0),
            "recall_macro": skm.recall_score(y, p, average="macro", zero_division=0),
            "f1_macro": skm.f1_score(y, p, average="macro", zero_division=0),
        }


def served(s: Scrape, model: str) -> dict[str, float]:
    return {
        dict(lab)["metric"]: v
        for (name, lab), v in s.samples.items()
        if name == "mlops_model_quality" and dict(lab)["model"] == model
    }


def interleave(*parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for group in zip(*parts, strict=True) for r in group]


def settled(s: Scrape, joined: dict[str, int]) -> bool:
    return all(s.get("mlops_quality_window_samples", model=m) == n for m, n in joined.items())


def test_two_models_in_one_file_each_joined_to_its_own_outcomes(tmp_path: Path) -> None:
    cfg = two_models_config(tmp_path)
    log = tmp_path / "logs" / "app.jsonl"
    churn, fraud = Traffic("churn", 300, seed=1), Traffic("fraud", 200, seed=2)
    with running_exporter(cfg) as exp:
        # both models' predictions in one file, the same request ids in each
        write(log, interleave(churn.predictions(range(200)), fraud.predictions(range(200))))
        write(log, churn.predictions(range(200, 300)))
        # outcomes: churn's for r0..r249, fraud's for r0..r149; each outcome of fraud
        # carries an actual churn's r<i> would judge otherwise
        write(log, interleave(churn.outcomes(range(150)), fraud.outcomes(range(150))))
        write(log, churn.outcomes(range(150, 250)))
        # outcomes no model's match selects: another service, and none at all
        write(log, [of(outcome("r1", "a", time.time()), "search-api"),
                    of(outcome("r2", "a", time.time()), None)])  # fmt: skip
        s = exp.wait_for(  # the line counters are served as last checkpointed
            lambda s: (
                settled(s, {"churn": 250, "fraud": 150})
                and s.get("mlops_log_lines_unrouted_total") == 2
            ),
            what="both windows",
        )
        page = exp.get("/")[2].decode()

    assert served(s, "churn") == pytest.approx(churn.want(range(250)), abs=1e-9)
    assert served(s, "fraud") == pytest.approx(fraud.want(range(150)), abs=1e-9)
    for model, (joined, stored) in {"churn": (250, 300), "fraud": (150, 200)}.items():
        assert s.get("mlops_outcomes_total", model=model) == joined
        assert s.get("mlops_predictions_awaiting_outcome", model=model) == stored - joined
        # no outcome of one model reached the other's store: nothing duplicate or unknown
        reasons = {dict(k)["reason"]: v for k, v in s.having("mlops_outcomes_unmatched_total")
                   .items() if dict(k)["model"] == model}  # fmt: skip
        assert sum(reasons.values()) == 0, (model, reasons)
    assert s.get("mlops_log_lines_unrouted_total") == 2  # the two outcomes of no model
    # one table per model on the landing page, each with its own window
    for model, joined in {"churn": 250, "fraud": 150}.items():
        assert f"data-model='{model}'><h3>{model}</h3>" in page
        assert f"<span id='quality-window-{model}'>{joined}</span>" in page
    # one store per model, named after it, beside the checkpoint
    stores = sorted(p.name for p in (tmp_path / "state").glob("*.db"))
    assert stores == ["checkpoint.outcomes.churn.db", "checkpoint.outcomes.fraud.db"]


def test_each_model_is_judged_against_its_own_quality_reference(tmp_path: Path) -> None:
    """``models[i].quality`` overrides the shared reference and max_drop, model by model."""
    cfg = two_models_config(tmp_path)
    text = cfg.read_text().replace(
        "quality: {min_samples: 50}", "quality: {min_samples: 50, reference: {accuracy: 0.3}}"
    )
    own = {  # churn (~0.8 right) against a perfect 1.0; fraud (~0.45) may fall far
        "churn": "{reference: {accuracy: 1.0}, max_drop: 0}",
        "fraud": "{reference: {accuracy: 0.9}, max_drop: 0.5}",
    }
    for m, quality in own.items():
        text = text.replace(
            f"match: {{service: {m}-api}}\n",
            f"match: {{service: {m}-api}}\n    quality: {quality}\n",
        )
    cfg.write_text(text)
    log = tmp_path / "logs" / "app.jsonl"
    churn, fraud = Traffic("churn", 300, seed=1), Traffic("fraud", 300, seed=2)
    with running_exporter(cfg) as exp:
        write(log, interleave(churn.predictions(range(300)), fraud.predictions(range(300))))
        write(log, interleave(churn.outcomes(range(300)), fraud.outcomes(range(300))))
        s = exp.wait_for(lambda s: settled(s, {"churn": 300, "fraud": 300}), what="both windows")
        s = exp.wait_for(
            lambda s: s.get("mlops_model_quality_degraded", model="churn", metric="accuracy") == 1,
            what="churn degraded",
        )
    ref = {m: s.get("mlops_model_quality_reference", model=m, metric="accuracy") for m in MODELS}
    assert ref == {"churn": 1.0, "fraud": 0.9}  # each its own, not the shared 0.3
    assert served(s, "churn")["accuracy"] == pytest.approx(churn.want(range(300))["accuracy"])
    # fraud is ~0.45 against 0.9: degraded with the shared max_drop (0.05), not with its 0.5
    assert served(s, "fraud")["accuracy"] < 0.6
    assert s.get("mlops_model_quality_degraded", model="fraud", metric="accuracy") == 0


def test_each_models_own_outcome_bounds_apply_to_its_store(tmp_path: Path) -> None:
    """``models[i].outcomes`` over the shared section: outcomes 5 minutes after their
    predictions join churn's (the shared max_delay, 1h) and expire in fraud's (its own 2m);
    the landing page says which bound is whose."""
    cfg = two_models_config(tmp_path)
    cfg.write_text(
        cfg.read_text().replace(
            "match: {service: fraud-api}\n",
            "match: {service: fraud-api}\n    outcomes: {max_delay: 2m}\n",
        )
    )
    log = tmp_path / "logs" / "app.jsonl"
    churn, fraud = Traffic("churn", 100, seed=7), Traffic("fraud", 100, seed=8)

    def late(t: Traffic) -> list[dict[str, Any]]:  # each label 300 s after its prediction
        return [
            of(outcome(f"r{i}", t.actual[i], t.base + i + 300), f"{t.model}-api")
            for i in range(t.n)
        ]

    with running_exporter(cfg) as exp:
        write(log, interleave(churn.predictions(range(100)), fraud.predictions(range(100))))
        write(log, interleave(late(churn), late(fraud)))
        s = exp.wait_for(
            lambda s: (
                settled(s, {"churn": 100, "fraud": 0})
                and s.get("mlops_outcomes_unmatched_total", reason="expired", model="fraud") == 100
            ),
            what="churn joined, fraud expired",
        )
        page = exp.get("/")[2].decode()
    assert s.get("mlops_outcomes_total", model="churn") == 100
    assert s.get("mlops_outcomes_unmatched_total", reason="expired", model="churn") == 0
    assert s.get("mlops_outcomes_total", model="fraud") == 0
    assert served(s, "churn") == pytest.approx(churn.want(range(100)), abs=1e-9)
    assert "model fraud: outcomes.max_delay / early_grace" in page
    assert "model churn: outcomes.max_delay" not in page  # the shared row is churn's


def test_a_restart_keeps_both_quality_windows(tmp_path: Path) -> None:
    cfg = two_models_config(tmp_path)
    log = tmp_path / "logs" / "app.jsonl"
    churn, fraud = Traffic("churn", 200, seed=3), Traffic("fraud", 200, seed=4)
    write(log, interleave(churn.predictions(range(200)), fraud.predictions(range(200))))
    write(log, interleave(churn.outcomes(range(120)), fraud.outcomes(range(120))))
    with running_exporter(cfg) as exp:
        before = exp.wait_for(lambda s: settled(s, {"churn": 120, "fraud": 120}))
    write(log, churn.outcomes(range(120, 180)))  # while it is down
    with running_exporter(cfg) as exp:
        s = exp.wait_for(lambda s: settled(s, {"churn": 180, "fraud": 120}), what="after restart")
    assert served(before, "fraud") == pytest.approx(fraud.want(range(120)), abs=1e-9)
    assert served(s, "churn") == pytest.approx(churn.want(range(180)), abs=1e-9)
    assert served(s, "fraud") == pytest.approx(fraud.want(range(120)), abs=1e-9)
    assert s.get("mlops_outcomes_total", model="churn") == 180
    assert s.get("mlops_outcomes_total", model="fraud") == 120


def test_a_sigkill_counts_each_models_outcomes_once(tmp_path: Path) -> None:
    """Killed with rows committed to the stores but no checkpoint since: the lines read
    again are known to the store that had them, in each store."""
    cfg = two_models_config(tmp_path, logs=", checkpoint_interval: 1h")
    log = tmp_path / "logs" / "app.jsonl"
    churn, fraud = Traffic("churn", 200, seed=5), Traffic("fraud", 200, seed=6)
    write(log, interleave(churn.predictions(range(200)), fraud.predictions(range(200))))
    exp = start_exporter(cfg)  # checkpoints at start, after the poll naming the file, in 1h
    try:
        exp.wait_for(lambda s: s.get("mlops_predictions_awaiting_outcome", model="fraud") == 200)
        write(log, interleave(churn.outcomes(range(100)), fraud.outcomes(range(100))))
        exp.wait_for(lambda s: settled(s, {"churn": 100, "fraud": 100}))
    finally:
        assert exp.stop(signal.SIGKILL) == -signal.SIGKILL
    for model in MODELS:
        db = tmp_path / "state" / f"checkpoint.outcomes.{model}.db"
        with sqlite3.connect(db) as conn:  # committed before the kill
            assert conn.execute("select count(*) from sqlite_master").fetchone()[0] > 0
    with running_exporter(cfg) as exp:
        s = exp.wait_for(lambda s: settled(s, {"churn": 100, "fraud": 100}), what="replayed")
        time.sleep(1.0)  # a few polls more: nothing changes
        s = exp.scrape()
        replayed = exp.events("outcome_lines_replayed")
    # the 200 outcome lines read again, each skipped by the one store that had it (the 400
    # predictions are not: the poll that first named the file was checkpointed at once)
    assert sum(e["lines"] for e in replayed) == 200
    assert sum(e["applied"] for e in replayed) == 0
    for model, traffic in (("churn", churn), ("fraud", fraud)):
        assert s.get("mlops_outcomes_total", model=model) == 100
        assert s.get("mlops_outcomes_unmatched_total", reason="duplicate", model=model) == 0
        assert served(s, model) == pytest.approx(traffic.want(range(100)), abs=1e-9)


def test_invalid_outcomes_are_logged_as_the_stores_count_them(tmp_path: Path) -> None:
    # the several-model path samples the lines it logs with the single-model path's code:
    # each routed line its store counts invalid, with file and line; an unrouted one is
    # counted as unrouted, not invalid, and is not logged as such
    config = two_models_config(tmp_path)
    log = tmp_path / "logs" / "app.jsonl"
    now = time.time()
    no_id = of(outcome("r0", "a", now), "churn-api")
    del no_id["request_id"]
    records = [
        of(prediction("r0", now, {"class": "a"}), "churn-api"),
        of(outcome("r0", {"a": 1}, now), "churn-api"),
        of(outcome("r0", [1], now), "fraud-api"),
        of(outcome("r0", {"a": 1}, now), None),
        no_id,
        of(outcome("r0", "a", now), "churn-api"),
    ]
    with running_exporter(config) as exp:
        write(log, records)
        exp.wait_for(
            lambda s: (
                s.get("mlops_outcomes_unmatched_total", model="churn", reason="invalid") == 2
                and s.get("mlops_outcomes_unmatched_total", model="fraud", reason="invalid") == 1
            )
        )
        exp.wait_passes(2, model="churn")
        events = exp.events("outcome_rejected")
        assert [e["line_number"] for e in events] == [2, 3, 5], events
        assert [e["problem"] for e in events] == [
            "actual is an object or an array",
            "actual is an object or an array",
            "no request_id",
        ]
        assert all(e["file"] == str(log) for e in events)


def test_left_out_probabilities_are_counted_by_the_store_of_their_model(tmp_path: Path) -> None:
    # the several-model path: each routed prediction's flag reaches its own store, and the
    # lines logged are those counted (an unrouted one is neither)
    config = two_models_config(tmp_path)
    log = tmp_path / "logs" / "app.jsonl"
    now = time.time()
    bad = {"class": "a", "probabilities": {"a": 0.9, "b": 0.9}}
    records = [
        of(prediction("c0", now, bad), "churn-api"),
        of(prediction("c1", now, {"class": "a", "probability": 0.8}), "churn-api"),
        of(prediction("f0", now, {"class": "a", "probability": 2}), "fraud-api"),
        of(prediction("u0", now, bad), None),
        of(prediction("f1", now, bad), "fraud-api"),
    ]
    with running_exporter(config) as exp:
        write(log, records)
        exp.wait_for(
            lambda s: (
                s.get("mlops_predictions_probability_dropped_total", model="churn") == 1
                and s.get("mlops_predictions_probability_dropped_total", model="fraud") == 2
            )
        )
        exp.wait_passes(2, model="churn")
        events = exp.events("prediction_probability_dropped")
        assert [e["line_number"] for e in events] == [1, 3, 5], events
        assert all(e["file"] == str(log) for e in events)


def test_a_model_whose_outcomes_match_nothing_is_warned_though_another_joins(
    tmp_path: Path,
) -> None:
    # the check looked at every store's counters added up: fraud's joins hid that churn's
    # outcomes (written without the service its match: needs) reach no store
    config = two_models_config(tmp_path)
    log = tmp_path / "logs" / "app.jsonl"
    now = time.time()
    records = [of(prediction(f"c{i}", now, {"class": "a"}), "churn-api") for i in range(20)]
    records += [of(prediction(f"f{i}", now, {"class": "a"}), "fraud-api") for i in range(20)]
    records += [of(outcome(f"f{i}", "a", now), "fraud-api") for i in range(20)]
    records += [of(outcome(f"c{i}", "a", now), None) for i in range(20)]  # routed nowhere
    with running_exporter(config) as exp:
        write(log, records)
        exp.wait_for(lambda s: s.get("mlops_outcomes_total", model="fraud") == 20)
        deadline = time.monotonic() + 15
        while b"churn: outcomes: no outcome record read" not in exp.get("/-/ready")[2]:
            assert time.monotonic() < deadline, exp.get("/-/ready")[2]
            time.sleep(0.1)
        ready = exp.get("/-/ready")[2]
        assert b"fraud: outcomes" not in ready and b"20 predictions awaiting one" in ready
        warned = exp.events("no_outcomes_matched")
        assert {(w["model"], w["problem"]) for w in warned} == {("churn", "no_outcome_records")}
