"""Model quality through the real exporter process: outcome records joined to predictions,
scraped over HTTP and checked against sklearn.metrics on the same joined pairs.

Situations: outcomes in their own file and in the prediction file, an outcome before its
prediction, duplicates, late (expired), unknown and invalid outcomes, a classifier with
probabilities and a regressor, the degradation verdict at 30 labels and at 2,000, and the
"no outcome matched" warning.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import sklearn.metrics as skm
from prometheus_client.parser import text_string_to_metric_families

from exporter import metrics
from tests.e2e._exporter import append, run_exporter, running_exporter, write_config
from tests.e2e.test_exporter_lifecycle import one_line_error

pytestmark = pytest.mark.e2e

M = {"model": "e2e"}
CLASSES = ["a", "b", "c"]


def quality_config(
    tmp_path: Path, outcomes: str = "{early_grace: 1s}", quality: str = "{}", **drift: Any
) -> Path:
    """The e2e config with a state file and the two sections (YAML flow mappings)."""
    state = tmp_path / "state" / "checkpoint.json"
    config = write_config(tmp_path, extra=f", state_file: {state}", **drift)
    config.write_text(config.read_text() + f"outcomes: {outcomes}\nquality: {quality}\n")
    return config


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def prediction(rid: str | None, t: float, prediction: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "timestamp": iso(t),
        "level": "info",
        "event": "prediction",
        "service": "e2e",
        "model_version": "1.0.0",
        "input_data": {"x": 0.1, "y": 10.0, "plan": "a"},
        "prediction": prediction,
        "latency_ms": 12.0,
    }
    if rid is not None:
        out["request_id"] = rid
    return out


def outcome(rid: Any, actual: Any, t: float) -> dict[str, Any]:
    return {"timestamp": iso(t), "level": "info", "event": "outcome", "service": "e2e",
            "request_id": rid, "actual": actual}  # fmt: skip


def write(path: Path, records: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    append(path, b"".join(orjson.dumps(r) + b"\n" for r in records))


def families(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def assert_served_as_catalogued(text: str, names: list[str]) -> None:
    """Each metric is there with the catalog's type and exactly its labels."""
    found = families(text)
    for name in names:
        spec = metrics.spec(name)
        family = found.get(name)
        assert family is not None and family.samples, f"{name} is not served"
        assert family.type == spec.kind, name
        for sample in family.samples:
            labels = set(sample.labels) - {"le", "quantile"}
            assert labels == set(spec.labels), (name, sample.labels)


def test_a_classifier_joined_across_two_files_equals_sklearn(tmp_path: Path) -> None:
    config = quality_config(
        tmp_path,
        outcomes="{paths: [labels/*.jsonl], early_grace: 1s, max_delay: 1h}",
        quality="{min_samples: 50, reference: {accuracy: 0.9, balanced_accuracy: 0.9, "
        "brier: 0.1, f1_macro: 0.8}}",
    )
    preds, labels = tmp_path / "logs" / "app.jsonl", tmp_path / "labels" / "outcomes.jsonl"
    rng = np.random.default_rng(7)
    now = time.time()
    base = now - 40 * 60  # the predictions were made 40 minutes ago
    n = 620
    probs = rng.dirichlet(np.ones(3), n)
    predicted = [CLASSES[int(j)] for j in probs.argmax(axis=1)]
    actual = [CLASSES[int(rng.choice(3, p=p))] for p in probs]
    delays = rng.choice([0.5, 5.0, 30.0, 300.0, 1800.0], n)
    rounded = [{c: round(float(v), 6) for c, v in zip(CLASSES, row, strict=True)} for row in probs]
    for row in rounded:  # exact sums, as the logger checks them
        row["c"] = round(1.0 - row["a"] - row["b"], 6)

    def pred(i: int) -> dict[str, Any]:
        return prediction(f"r{i}", base + i * 0.01, {"class": predicted[i],
                                                      "probabilities": rounded[i]})  # fmt: skip

    def out(i: int) -> dict[str, Any]:
        return outcome(f"r{i}", actual[i], base + i * 0.01 + delays[i])

    with running_exporter(config) as exp:
        # outcomes first, in their own file: 20 early ones, 5 for no request, 2 unusable
        write(labels, [out(i) for i in range(600, 620)])
        write(labels, [outcome(f"ghost-{i}", "a", now) for i in range(5)])
        write(labels, [outcome("r1", {"not": "a class"}, now), {"event": "outcome", "actual": 1}])
        exp.wait_for(lambda s: s.get("mlops_outcomes_unmatched_total", reason="invalid", **M) == 2)
        # then the predictions, five of them three hours old
        write(preds, [pred(i) for i in range(n)])
        write(preds, [prediction(f"old{i}", now - 3 * 3600, {"class": "a"}) for i in range(5)])
        # and the outcomes of 500 of them, ten twice, and the late ones
        write(labels, [out(i) for i in range(500)])
        write(labels, [outcome(f"r{i}", "c", now) for i in range(10)])  # duplicates
        write(labels, [outcome(f"old{i}", "a", now) for i in range(5)])  # 3 h late: expired
        joined = [*range(500), *range(600, 620)]
        s = exp.wait_for(
            lambda s: (
                s.get("mlops_quality_window_samples", **M) == len(joined)
                and s.get("mlops_outcomes_unmatched_total", reason="unknown_request", **M) == 5
            ),
            what="every outcome settled",
        )
        page = exp.get("/")[2].decode()

    assert s.get("mlops_outcomes_total", **M) == len(joined)
    reasons = s.having("mlops_outcomes_unmatched_total").items()
    unmatched = {dict(k)["reason"]: v for k, v in reasons}
    assert unmatched == {"unknown_request": 5, "expired": 5, "duplicate": 10, "invalid": 2,
                         "evicted": 0}  # fmt: skip
    assert s.get("mlops_predictions_awaiting_outcome", **M) == n - len(joined)
    assert s.get("mlops_predictions_evicted_total", reason="expired", **M) == 5
    assert s.get("mlops_predictions_evicted_total", reason="max_pending", **M) == 0
    assert s.get("mlops_labelled_ratio", **M) == pytest.approx(len(joined) / (n + 5))

    # the metrics of the joined pairs are sklearn's on the same pairs
    y = [actual[i] for i in joined]
    p = [predicted[i] for i in joined]
    proba = np.array([[rounded[i][c] for c in CLASSES] for i in joined])
    want = {
        "accuracy": skm.accuracy_score(y, p),
        "balanced_accuracy": skm.balanced_accuracy_score(y, p),
        "precision_macro": skm.precision_score(y, p, average="macro", zero_division=0),
        "recall_macro": skm.recall_score(y, p, average="macro", zero_division=0),
        "f1_macro": skm.f1_score(y, p, average="macro", zero_division=0),
        "roc_auc": skm.roc_auc_score(y, proba, multi_class="ovr", labels=CLASSES),
        "log_loss": skm.log_loss(y, proba, labels=CLASSES),
        "brier": skm.brier_score_loss(y, proba, labels=CLASSES),
    }
    served = {k: v for (name, lab), v in s.samples.items() if name == "mlops_model_quality"
              for k in [dict(lab)["metric"]]}  # fmt: skip
    assert served == pytest.approx(want, abs=1e-9)
    prec, rec, f1, support = skm.precision_recall_fscore_support(y, p, labels=CLASSES,
                                                                 zero_division=0)  # fmt: skip
    for j, c in enumerate(CLASSES):
        got = {f: s.get("mlops_model_class_quality", **{"class": c}, metric=f, **M)
               for f in ("precision", "recall", "f1", "support")}  # fmt: skip
        assert got == pytest.approx(
            {"precision": prec[j], "recall": rec[j], "f1": f1[j], "support": support[j]}, abs=1e-9
        )
    confusion = skm.confusion_matrix(y, p, labels=CLASSES)  # rows: actual
    for ia, a in enumerate(CLASSES):
        for ip, q in enumerate(CLASSES):
            got = s.get("mlops_outcome_confusion_total", predicted=q, actual=a, **M) or 0
            assert got == confusion[ia, ip], (q, a)
    assert s.get("mlops_outcomes_correct_total", **M) == np.trace(confusion)
    # the label delays, bucket by bucket
    d = np.array([max(0.0, delays[i]) for i in joined])
    buckets = s.having("mlops_outcome_delay_seconds_bucket")
    for labels_, count in buckets.items():
        le = float(dict(labels_)["le"])
        assert count == int(np.sum(d <= le + 1e-9)), le
    assert s.get("mlops_outcome_delay_seconds_sum", **M) == pytest.approx(d.sum(), rel=1e-6)
    # the references, and a verdict for each judged one
    assert s.get("mlops_model_quality_reference", metric="f1_macro", **M) == 0.8
    verdicts = s.having("mlops_model_quality_degraded")
    assert {dict(k)["metric"] for k in verdicts} == {"accuracy", "balanced_accuracy", "brier"}
    assert set(verdicts.values()) <= {0.0, 1.0}
    # the estimate before labels: the mean raw probability (the profile has no calibrator)
    confident = [max(rounded[i].values()) for i in range(n)]
    assert s.get("mlops_model_quality_estimated", metric="accuracy", **M) == pytest.approx(
        float(np.mean(confident)), abs=1e-9
    )
    assert_served_as_catalogued(
        s.text,
        [spec.name for spec in metrics.of_area("quality")
         if spec.name not in ("mlops_outcome_abs_error", "mlops_outcome_squared_error")],
    )  # fmt: skip
    assert "mlops_outcome_abs_error_sum" not in s.text  # a regressor's, not served here
    # the landing page's quality table
    assert "<table id='quality'>" in page and "<tr data-metric='roc_auc'>" in page
    assert "raw confidence, no calibrator" in page and "not judged: F1" in page
    assert f"<span id='quality-window'>{len(joined)}</span>" in page


def test_a_regressor_with_outcomes_in_the_prediction_file_equals_sklearn(tmp_path: Path) -> None:
    config = quality_config(tmp_path, quality="{min_samples: 50, reference: {mae: 2.0}}")
    log = tmp_path / "logs" / "app.jsonl"
    rng = np.random.default_rng(11)
    n = 300
    truth = rng.normal(50, 10, n).round(4)
    guess = (truth + rng.normal(0.5, 3, n)).round(4)
    now = time.time()
    with running_exporter(config) as exp:
        # an outcome before its prediction, in the same file
        write(log, [outcome("v0", float(truth[0]), now)])
        write(log, [prediction(f"v{i}", now - 60, {"value": float(guess[i])}) for i in range(n)])
        write(log, [outcome(f"v{i}", float(truth[i]), now) for i in range(1, n)])
        s = exp.wait_for(lambda s: s.get("mlops_quality_window_samples", **M) == n, what="n")
    want = {
        "mae": skm.mean_absolute_error(truth, guess),
        "rmse": math.sqrt(skm.mean_squared_error(truth, guess)),
        "mape": skm.mean_absolute_percentage_error(truth, guess),
        "r2": skm.r2_score(truth, guess),
        "mean_error": float(np.mean(guess - truth)),
    }
    for metric, value in want.items():
        assert s.get("mlops_model_quality", metric=metric, **M) == pytest.approx(value, abs=1e-9)
    err = guess - truth
    assert s.get("mlops_outcome_abs_error_count", **M) == n
    assert s.get("mlops_outcome_abs_error_sum", **M) == pytest.approx(np.abs(err).sum(), rel=1e-9)
    assert s.get("mlops_outcome_squared_error_sum", **M) == pytest.approx((err**2).sum(), rel=1e-9)
    assert_served_as_catalogued(s.text, ["mlops_outcome_abs_error", "mlops_outcome_squared_error"])
    assert "mlops_outcome_confusion_total" not in s.text  # a classifier's
    assert not s.having("mlops_model_quality_degraded")  # MAE is never judged
    assert s.get("mlops_model_quality_reference", metric="mae", **M) == 2.0


def test_degradation_fires_on_a_clear_fall_with_enough_labels_and_not_at_30(
    tmp_path: Path,
) -> None:
    config = quality_config(
        tmp_path, quality="{min_samples: 20, max_drop: 0.05, reference: {accuracy: 0.9}}"
    )
    log = tmp_path / "logs" / "app.jsonl"
    now = time.time()

    def batch(first: int, count: int) -> list[dict[str, Any]]:
        # 7 in 10 right: accuracy 0.70 against a reference of 0.90 (threshold 0.85)
        recs = []
        for i in range(first, first + count):
            recs.append(prediction(f"q{i}", now, {"class": "a"}))
            recs.append(outcome(f"q{i}", "a" if i % 10 < 7 else "b", now))
        return recs

    with running_exporter(config) as exp:
        write(log, batch(0, 30))
        s = exp.wait_for(lambda s: s.get("mlops_quality_window_samples", **M) == 30)
        assert s.get("mlops_model_quality", metric="accuracy", **M) == pytest.approx(0.7)
        assert s.get("mlops_model_quality_degraded", metric="accuracy", **M) == 0
        time.sleep(1.0)  # a few more passes: still not degraded
        assert exp.scrape().get("mlops_model_quality_degraded", metric="accuracy", **M) == 0
        write(log, batch(30, 1970))
        s = exp.wait_for(
            lambda s: s.get("mlops_model_quality_degraded", metric="accuracy", **M) == 1,
            what="the verdict",
        )
        assert s.get("mlops_quality_window_samples", **M) == 2000
        assert s.get("mlops_model_quality", metric="accuracy", **M) == pytest.approx(0.7)
        deadline = time.monotonic() + 5
        while not exp.events("quality_degraded") and time.monotonic() < deadline:
            time.sleep(0.05)
    (event,) = exp.events("quality_degraded")
    assert event["level"] == "info" and event["metric"] == "accuracy" and event["labels"] == 2000
    assert event["bound"] < event["threshold"] == pytest.approx(0.85)


def test_no_outcome_matched_is_warned_in_the_log_and_on_the_pages(tmp_path: Path) -> None:
    config = quality_config(tmp_path, outcomes="{early_grace: 1s}")
    log = tmp_path / "logs" / "app.jsonl"
    now = time.time()
    with running_exporter(config) as exp:
        write(log, [prediction(None, now, {"class": "a"}) for _ in range(20)])
        exp.wait_for(lambda s: s.get("mlops_predictions_total", **M) == 20)
        deadline = time.monotonic() + 10
        while b"carries a request_id" not in exp.get("/-/ready")[2]:
            assert time.monotonic() < deadline, "no warning about request ids"
            time.sleep(0.1)
        write(log, [prediction(f"w{i}", now, {"class": "a"}) for i in range(10)])
        while b"no outcome record read" not in exp.get("/-/ready")[2]:
            assert time.monotonic() < deadline + 10, "no warning about outcomes"
            time.sleep(0.1)
        page = exp.get("/")[2].decode()
        assert "outcomes: no outcome record read in" in page and "10 predictions awaiting" in page
        write(log, [outcome("nobody", "a", now)])
        while b"none of the 1 outcome records read matched" not in exp.get("/")[2]:
            assert time.monotonic() < deadline + 20, "no warning about unmatched outcomes"
            time.sleep(0.1)
        write(log, [outcome("w0", "a", now)])
        exp.wait_for(lambda s: s.get("mlops_outcomes_total", **M) == 1)
        while b"outcomes:" in exp.get("/-/ready")[2]:
            assert time.monotonic() < deadline + 30, "the warning stayed"
            time.sleep(0.1)
    warned = exp.events("no_outcomes_matched")
    assert [w["problem"] for w in warned] == ["no_request_id", "no_outcome_records", "unmatched"]
    assert all(w["level"] == "warning" for w in warned)
    assert exp.events("outcomes_matched")


def test_config_and_store_errors_are_one_line(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    base = config.read_text()

    def error(text: str) -> str:
        config.write_text(text)
        return one_line_error(run_exporter(f"--config.file={config}"))

    assert "quality: needs an outcomes: section" in error(base + "quality: {}\n")
    assert "outcomes.store: required without logs.state_file" in error(base + "outcomes:\n")
    line = error(base + "outcomes: {store: o.db}\nquality: {reference: {acuracy: 0.9}}\n")
    assert "quality.reference.acuracy: unknown quality metric (did you mean 'accuracy'?)" in line
    line = error(base + f"outcomes: {{store: {tmp_path / 'nowhere' / 'o.db'}}}\n")
    assert "outcome store" in line and "does not exist" in line
    (tmp_path / "text.db").write_text("not a database, " * 100)
    line = error(base + f"outcomes: {{store: {tmp_path / 'text.db'}}}\n")
    assert "is not an SQLite database" in line


def test_a_second_exporter_on_the_same_state_file_or_store_is_refused(tmp_path: Path) -> None:
    """Two sidecars given one state file (or one outcome store) would miscount, silently: the
    second is a one-line error at start, and the first goes on serving."""
    store = tmp_path / "state" / "shared.db"
    config = quality_config(tmp_path, outcomes=f"{{store: {store}}}")
    state = tmp_path / "state" / "checkpoint.json"
    with running_exporter(config) as first:
        line = one_line_error(run_exporter(f"--config.file={config}"))
        assert f"logs.state_file {state}: in use by process {first.proc.pid}" in line
        other = tmp_path / "other.yml"  # its own state file, the same store
        other.write_text(config.read_text().replace(str(state), str(tmp_path / "other.json")))
        line = one_line_error(run_exporter(f"--config.file={other}"))
        assert f"outcome store {store}: is in use by process {first.proc.pid}" in line
        assert first.get("/-/ready")[0] == 200
        write(tmp_path / "logs" / "p.jsonl", [prediction("r1", time.time(), {"class": "a"})])
        first.wait_for(
            lambda s: s.get("mlops_predictions_awaiting_outcome", **M) == 1, what="it stored"
        )
    # stopped: both files are free for the next one
    with running_exporter(config) as again:
        assert again.get("/-/ready")[0] == 200


def test_without_outcomes_the_quality_area_is_not_served(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    with running_exporter(config) as exp:
        write(tmp_path / "logs" / "app.jsonl", [prediction("r", time.time(), {"class": "a"}),
                                               outcome("r", "a", time.time())])  # fmt: skip
        s = exp.wait_for(lambda s: s.get("mlops_log_lines_other_events_total", **M) == 1)
        status, _, page = exp.get("/")
    quality_names = {n for spec in metrics.of_area("quality") for n in spec.series_names}
    assert not quality_names & s.names()
    assert status == 200 and b"<h2>Quality</h2>" not in page


def test_rotated_and_truncated_outcome_files_lose_no_outcome(tmp_path: Path) -> None:
    """The new file's lines sit at the very offsets of the old one's: only their source
    (dev:inode:first-line hash) tells them apart from lines read before."""
    config = quality_config(tmp_path, outcomes="{paths: [labels/*.jsonl], early_grace: 1h}")
    # no checkpoint after the first: the store forgets no source during the test
    text = config.read_text().replace("poll_interval: 50ms", "poll_interval: 50ms, "
                                      "checkpoint_interval: 1h")  # fmt: skip
    config.write_text(text)
    preds, labels = tmp_path / "logs" / "app.jsonl", tmp_path / "labels" / "o.jsonl"
    now = time.time()
    write(preds, [prediction(f"r{i:03d}", now, {"class": "a"}) for i in range(300)])

    def outcomes(first: int) -> list[dict[str, Any]]:  # lines of one length: same offsets
        return [outcome(f"r{i:03d}", "a", now + 1) for i in range(first, first + 100)]

    with running_exporter(config) as exp:
        exp.wait_for(lambda s: s.get("mlops_predictions_awaiting_outcome", **M) == 300)
        write(labels, outcomes(0))
        exp.wait_for(lambda s: s.get("mlops_outcomes_total", **M) == 100, what="the first")
        labels.rename(labels.with_name("o.jsonl.1"))  # rotated away, out of the patterns
        write(labels, outcomes(100))
        exp.wait_for(lambda s: s.get("mlops_outcomes_total", **M) == 200, what="rotation")
        with labels.open("r+b") as fh:  # copytruncate
            fh.truncate(0)
        write(labels, outcomes(200))
        s = exp.wait_for(lambda s: s.get("mlops_outcomes_total", **M) == 300, what="truncation")
        time.sleep(0.5)
        s = exp.scrape()
    assert s.get("mlops_outcomes_total", **M) == 300
    assert s.get("mlops_predictions_awaiting_outcome", **M) == 0
    assert sum(s.having("mlops_outcomes_unmatched_total").values()) == 0


def test_a_file_truncated_and_rewritten_with_the_same_first_line_loses_no_prediction(
    tmp_path: Path,
) -> None:
    # a server writing a banner first: the store named the new content as the old one (the
    # first line's hash was the same) and skipped its lines up to the old mark, silently
    config = quality_config(tmp_path, outcomes="{paths: [labels/*.jsonl], early_grace: 1h}")
    preds, labels = tmp_path / "logs" / "app.jsonl", tmp_path / "labels" / "o.jsonl"
    banner = {"event": "startup", "service": "e2e", "msg": "model server starting"}
    now = time.time()
    with running_exporter(config) as exp:
        write(preds, [banner, *(prediction(f"a{i:02d}", now, {"class": "a"}) for i in range(50))])
        exp.wait_for(lambda s: s.get("mlops_predictions_awaiting_outcome", **M) == 50)
        time.sleep(1.5)  # a checkpoint (every second) records the old content's position
        with preds.open("wb"):  # rewritten in place: truncated, the same first line again
            pass
        write(preds, [banner, *(prediction(f"b{i:02d}", now, {"class": "a"}) for i in range(30))])
        exp.wait_for(lambda s: s.get("mlops_predictions_awaiting_outcome", **M) == 80)
        write(labels, [outcome(f"a{i:02d}", "a", now + 1) for i in range(50)])
        write(labels, [outcome(f"b{i:02d}", "a", now + 1) for i in range(30)])
        exp.wait_for(lambda s: s.get("mlops_log_truncations_total") == 1)
        s = exp.wait_for(lambda s: s.get("mlops_outcomes_total", **M) == 80)
    assert sum(s.having("mlops_outcomes_unmatched_total").values()) == 0


def test_predictions_with_no_usable_class_are_named_as_the_reason_no_outcome_joins(
    tmp_path: Path,
) -> None:
    # the class under "label", not prediction.class_field ("class"): the store took none of
    # them, and the warning said to check the outcomes' request ids, the wrong cause
    config = quality_config(tmp_path, outcomes="{early_grace: 1s}")
    log = tmp_path / "logs" / "app.jsonl"
    now = time.time()
    with running_exporter(config) as exp:
        write(log, [prediction(f"r{i}", now, {"label": "a"}) for i in range(20)])
        write(log, [outcome(f"r{i}", "a", now) for i in range(20)])
        exp.wait_for(
            lambda s: s.get("mlops_predictions_unjoinable_total", reason="invalid", **M) == 20
        )
        deadline = time.monotonic() + 15
        while b"no usable predicted class" not in exp.get("/-/ready")[2]:
            assert time.monotonic() < deadline, exp.get("/-/ready")[2]
            time.sleep(0.1)
    (warned,) = exp.events("no_outcomes_matched")
    assert warned["problem"] == "no_usable_prediction"
    assert "prediction.class_field" in warned["message"]


def test_a_store_deleted_while_running_is_said_and_a_new_one_at_restart_is_warned(
    tmp_path: Path,
) -> None:
    # before: passes failed with a traceback of "no such table: counters" (a reader made an
    # empty database at the path), /-/ready said Ready., and the restart began a new store
    # from 0 (a counter going down) without a word
    config = quality_config(tmp_path)
    log = tmp_path / "logs" / "app.jsonl"
    store = tmp_path / "state" / "checkpoint.outcomes.db"
    now = time.time()
    with running_exporter(config) as exp:
        write(log, [prediction(f"r{i}", now, {"class": "a"}) for i in range(20)])
        exp.wait_for(lambda s: s.get("mlops_predictions_awaiting_outcome", **M) == 20)
        assert not exp.events("outcome_store_created_anew")  # no checkpoint yet: first start
        for suffix in ("", "-wal", "-shm"):
            Path(f"{store}{suffix}").unlink(missing_ok=True)
        deadline = time.monotonic() + 15
        while b"was deleted while the exporter runs" not in exp.get("/-/ready")[2]:
            assert time.monotonic() < deadline, exp.get("/-/ready")[2]
            time.sleep(0.1)
        exp.wait_passes(3)
        failed = exp.events("quality_computation_failed")
        assert len(failed) == 1 and "exception" not in failed[0], failed  # one line, once
        assert not store.exists()
    with running_exporter(config) as exp:
        event = _wait_event_of(exp, "outcome_store_created_anew")
        assert event["level"] == "warning" and event["store"] == str(store)
        assert "counting starts again from 0" in event["hint"]


def _wait_event_of(exp: Any, event: str, timeout: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while not exp.events(event):
        assert time.monotonic() < deadline, f"no {event}"
        time.sleep(0.1)
    return exp.events(event)[0]
