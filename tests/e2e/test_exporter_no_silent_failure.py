"""No silent failure: what the exporter cannot use is in its log, on its landing page and in
/-/ready, through the real exporter process."""

from __future__ import annotations

import json
import time
from pathlib import Path

import orjson
import pytest

from tests.e2e._exporter import (
    append,
    lines_of,
    record,
    running_exporter,
    traffic,
    write_config,
)

pytestmark = pytest.mark.e2e


def _wait_event(exp, event: str, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = exp.events(event)
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no {event} in the log:\n" + "\n".join(exp.stderr_lines[-20:]))


def test_a_feature_in_no_record_is_warned_with_the_closest_field(tmp_path: Path) -> None:
    # the reference says "plan"; the model server logs "Plan" instead
    config = write_config(tmp_path)
    with running_exporter(config) as exp:
        recs, _ = traffic(400)
        for r in recs:
            r["input_data"]["Plan"] = r["input_data"].pop("plan")
        append(tmp_path / "logs" / "a.jsonl", lines_of(recs))
        event = _wait_event(exp, "feature_never_seen")
        assert event["feature"] == "plan" and event["closest_field"] == "Plan"
        assert event["level"] == "warning"
        exp.wait_for(lambda s: s.get("mlops_predictions_total", model="e2e") == 400)
        _, _, ready = exp.get("/-/ready")
        assert b"warning: feature 'plan' is missing from all of the first" in ready
        assert b"the records have 'Plan'" in ready
        _, _, page = exp.get("/")
        assert "feature &#x27;plan&#x27; is missing" in page.decode()


def test_a_renamed_feature_is_warned_after_a_few_predictions(tmp_path: Path) -> None:
    # a first trial of 30 predictions: the warning waited for 200, which never came; a
    # missing feature with no near name (a sparse field) still waits for the full sample
    config = write_config(tmp_path)
    with running_exporter(config) as exp:
        recs, _ = traffic(30)
        for r in recs:
            r["input_data"]["Plan"] = r["input_data"].pop("plan")
            del r["input_data"]["y"]
        append(tmp_path / "logs" / "a.jsonl", lines_of(recs))
        exp.wait_for(lambda s: s.get("mlops_predictions_total", model="e2e") == 30)
        event = _wait_event(exp, "feature_never_seen")
        assert (event["feature"], event["closest_field"], event["predictions"]) == (
            "plan",
            "Plan",
            30,
        )
        ready = _wait_body(exp, "/-/ready", b"the records have 'Plan'")
        assert b"'y' is missing" not in ready
        recs, _ = traffic(200)
        for r in recs:
            r["input_data"]["Plan"] = r["input_data"].pop("plan")
            del r["input_data"]["y"]
        append(tmp_path / "logs" / "a.jsonl", lines_of(recs))
        exp.wait_for(lambda s: s.get("mlops_predictions_total", model="e2e") == 230)
        _wait_body(exp, "/-/ready", b"feature 'y' is missing from all of the first 200")
        assert [e["feature"] for e in exp.events("feature_never_seen")] == ["plan", "y"]


def test_with_a_state_file_a_matching_file_is_never_reported_missing(tmp_path: Path) -> None:
    # the first checkpoint is saved before any file is opened; the file gauges the first pass
    # reads must be live, not that checkpoint's 0
    config = write_config(tmp_path, extra=", state_file: state.json")
    (tmp_path / "logs" / "a.jsonl").touch()
    with running_exporter(config) as exp:
        exp.wait_for(lambda s: s.get("mlops_drift_window_samples", model="e2e") is not None)
        exp.wait_passes(3)  # the check runs at each pass
        assert not exp.events("no_log_files_match"), exp.events("no_log_files_match")
        assert exp.scrape().get("mlops_log_files_watched") == 1
        _, _, ready = exp.get("/-/ready")
        assert b"matches no file" not in ready


def test_a_glob_that_matches_nothing_is_warned_at_start_and_on_the_pages(tmp_path: Path) -> None:
    config = write_config(tmp_path, logs="nowhere/*.jsonl")
    with running_exporter(config) as exp:
        event = _wait_event(exp, "no_log_files_match")
        assert event["patterns"] == [str(tmp_path / "nowhere/*.jsonl")]
        _, _, ready = exp.get("/-/ready")
        assert b"warning: logs.paths matches no file" in ready
        _, _, page = exp.get("/")
        assert "logs.paths matches no file" in page.decode()


def test_existing_data_skipped_at_the_end_is_logged_with_how_to_read_it(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    text = config.read_text().replace("start_position: beginning", "start_position: end")
    config.write_text(text)
    recs, _ = traffic(50)
    data = lines_of(recs)
    append(tmp_path / "logs" / "a.jsonl", data)
    with running_exporter(config) as exp:
        event = _wait_event(exp, "existing_log_data_skipped")
        assert event["bytes"] == len(data) and event["files"] == 1
        assert "logs.start_position: beginning" in event["hint"]
        note = f"{len(data)} bytes of existing log data in 1 file(s) were skipped at start"
        _, _, page = exp.get("/")
        assert note in page.decode()
        _, _, ready = exp.get("/-/ready")
        assert note.encode() in ready
        append(tmp_path / "logs" / "a.jsonl", lines_of(traffic(5)[0]))  # news: read
        exp.wait_for(lambda s: s.get("mlops_predictions_total", model="e2e") == 5)
        exp.wait_for(lambda s: note not in exp.get("/")[2].decode(), timeout=15)


def test_with_a_state_file_the_advice_names_it_and_a_resumed_start_says_so(tmp_path: Path) -> None:
    # Following "set start_position: beginning" alone reads nothing: the first run saved a
    # checkpoint, and a start with a checkpoint continues from it. Both starts say so.
    config = write_config(tmp_path, extra=", state_file: state.json")
    text = config.read_text()
    config.write_text(text.replace("start_position: beginning", "start_position: end"))
    state = tmp_path / "state.json"
    recs, _ = traffic(50)
    append(tmp_path / "logs" / "a.jsonl", lines_of(recs))
    with running_exporter(config) as exp:
        event = _wait_event(exp, "existing_log_data_skipped")
        assert "logs.start_position: beginning" in event["hint"]
        assert f"delete {state}" in event["hint"]
        assert not exp.events("resumed_from_checkpoint")
    assert state.exists()
    config.write_text(text)  # start_position: beginning, the checkpoint still there
    with running_exporter(config) as exp:
        event = _wait_event(exp, "resumed_from_checkpoint")
        assert event["state_file"] == str(state) and event["files"] == 1
        assert "applies only to a start without a checkpoint" in event["hint"]
        assert f"delete {state}" in event["hint"]
        exp.wait_for(lambda s: s.get("mlops_drift_window_samples", model="e2e") is not None)
        assert exp.scrape().get("mlops_predictions_total", model="e2e") == 0
    state.unlink()  # as the advice says
    with running_exporter(config) as exp:
        exp.wait_for(lambda s: s.get("mlops_predictions_total", model="e2e") == 50)
        assert not exp.events("resumed_from_checkpoint")


def test_rejected_lines_are_logged_with_file_offset_line_and_reason(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    good = lines_of([record(0.1, 10.0, "a")])
    bad = b'{"event": "prediction", "input_data": {"x": "not a number"}}\n'
    path = tmp_path / "logs" / "a.jsonl"
    with running_exporter(config) as exp:
        append(path, good + b"{not json\n" + good + bad)
        event = _wait_event(exp, "log_line_rejected")
        assert event["file"] == str(path)
        assert event["reason"] == "invalid_json"
        assert event["offset"] == len(good) and event["line_number"] == 2
        assert event["excerpt"] == "{not json"
        second = exp.events("log_line_rejected")[1:]
        deadline = time.monotonic() + 10
        while not second and time.monotonic() < deadline:
            time.sleep(0.1)
            second = exp.events("log_line_rejected")[1:]
        assert second and second[0]["line_number"] == 4 and second[0]["reason"] == "wrong_type"
        assert second[0]["offset"] == 2 * len(good) + len(b"{not json\n")
        exp.wait_for(lambda s: s.get("mlops_log_lines_total", model="e2e") == 4)
        _, _, page = exp.get("/")
        assert "invalid_json 1" in page.decode()


def test_unmonitored_record_fields_are_logged_once(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    recs, _ = traffic(300)
    for r in recs:
        r["input_data"]["customer_age_days"] = 12
    with running_exporter(config) as exp:
        append(tmp_path / "logs" / "a.jsonl", lines_of(recs))
        event = _wait_event(exp, "fields_not_monitored")
        assert event["fields"] == ["customer_age_days"]
        exp.wait_passes(3)  # passes after the first warning: none logs it again
        assert len(exp.events("fields_not_monitored")) == 1


def _wait_body(exp, path: str, needle: bytes, timeout: float = 15.0) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        body = exp.get(path)[2]
        if needle in body:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"{needle!r} never in {path}:\n{body.decode(errors='replace')}")
        time.sleep(0.1)


def test_predictions_all_older_than_the_window_max_age_are_warned(tmp_path: Path) -> None:
    # every record's own timestamp is far older than drift.window.max_age (1h): the window
    # stays empty; before, only "Not enough samples yet (0 in the window)" said anything
    config = write_config(tmp_path)
    recs, _ = traffic(300)
    for r in recs:
        r["timestamp"] = "2025-01-01T00:00:00Z"
    with running_exporter(config) as exp:
        append(tmp_path / "logs" / "a.jsonl", lines_of(recs))
        exp.wait_for(lambda s: s.get("mlops_predictions_total", model="e2e") == 300)
        event = _wait_event(exp, "predictions_too_old")
        assert event["level"] == "warning" and event["model"] == "e2e"
        assert event["predictions"] == 300 and event["newest"] == "2025-01-01T00:00:00Z"
        assert "drift.window.max_age" in event["message"]
        ready = _wait_body(exp, "/-/ready", b"none within drift.window.max_age")
        assert b"300 predictions read" in ready and b"2025-01-01T00:00:00Z" in ready
        assert b"none within drift.window.max_age" in exp.get("/")[2]
        exp.wait_passes(3)  # more passes: logged once, not at every pass
        assert len(exp.events("predictions_too_old")) == 1
        append(tmp_path / "logs" / "a.jsonl", lines_of(traffic(5)[0]))  # fresh ones: cleared
        deadline = time.monotonic() + 15
        while b"drift.window.max_age" in exp.get("/-/ready")[2]:
            assert time.monotonic() < deadline, "the warning stayed"
            time.sleep(0.1)


def test_no_traffic_after_fresh_predictions_is_no_too_old_warning(tmp_path: Path) -> None:
    # fresh predictions, then none for longer than drift.window.max_age (overnight, with the
    # default 1h): the window empties by age, which is no problem of the records' timestamps;
    # the warning judged "read some, window empty now" and fired here every 5 minutes
    config = write_config(tmp_path, window={"max_samples": 5000, "max_age": "1s"})
    with running_exporter(config) as exp:
        append(tmp_path / "logs" / "a.jsonl", lines_of(traffic(150)[0]))
        exp.wait_for(lambda s: s.get("mlops_drift_window_samples", model="e2e") == 150)
        exp.wait_for(lambda s: s.get("mlops_drift_window_samples", model="e2e") == 0)
        exp.wait_passes(3)  # passes that saw the window empty
        assert not exp.events("predictions_too_old"), exp.events("predictions_too_old")
        assert b"drift.window.max_age" not in exp.get("/-/ready")[2]
        assert b"drift.window.max_age" not in exp.get("/")[2]


def test_predictions_only_of_other_versions_are_warned(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    config.write_text(
        config.read_text().replace("model: {name: e2e}", 'model: {name: e2e, version: "1.0"}')
    )
    recs, _ = traffic(300)
    for r in recs:
        r["model_version"] = "2.0"
    with running_exporter(config) as exp:
        append(tmp_path / "logs" / "a.jsonl", lines_of(recs))
        exp.wait_for(
            lambda s: (
                s.get("mlops_predictions_other_version_total", model="e2e", version="2.0") == 300
            )
        )
        event = _wait_event(exp, "predictions_of_other_versions")
        assert event["level"] == "warning" and event["model"] == "e2e"
        assert event["monitored_version"] == "1.0" and event["versions"] == {"2.0": 300}
        assert "model.version" in event["message"]
        ready = _wait_body(exp, "/-/ready", b"model.version")
        assert b"monitors version 1.0" in ready and b"2.0: 300" in ready
        assert b"model.version" in exp.get("/")[2]
        exp.wait_passes(3)  # more passes: logged once, not at every pass
        assert len(exp.events("predictions_of_other_versions")) == 1


def test_an_over_long_line_is_logged_with_file_and_line_like_other_rejected_lines(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path)
    good = lines_of([record(0.1, 10.0, "a")])
    long = b'{"event": "prediction", "pad": "' + b"x" * (2 << 20) + b'"}\n'
    path = tmp_path / "logs" / "a.jsonl"
    with running_exporter(config) as exp:
        append(path, good + long + good + b"{not json\n")
        exp.wait_for(
            lambda s: s.get("mlops_log_lines_invalid_total", model="e2e", reason="too_long") == 1
        )
        deadline = time.monotonic() + 10
        while len(exp.events("log_line_rejected")) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        by_reason = {e["reason"]: e for e in exp.events("log_line_rejected")}
        event = by_reason["too_long"]
        assert event["file"] == str(path) and event["level"] == "warning"
        assert event["offset"] == len(good) and event["line_number"] == 2
        assert event["excerpt"].startswith('{"event": "prediction", "pad": "xxx')
        assert len(event["excerpt"]) <= 200
        # the line after the dropped one keeps its own offset and number
        after = by_reason["invalid_json"]
        assert after["offset"] == 2 * len(good) + len(long) and after["line_number"] == 4
        _, _, page = exp.get("/")
        assert "too_long 1" in page.decode()


def test_blank_lines_are_counted_nowhere_empty_or_whitespace(tmp_path: Path) -> None:
    # an empty line and a line of only whitespace are the same: no record, not counted (they
    # were: the first nowhere, the second as invalid_json); exact across a restart
    config = write_config(tmp_path, extra=", state_file: state.json")
    good = lines_of([record(0.1, 10.0, "a")])
    path = tmp_path / "logs" / "a.jsonl"
    append(path, good + b"\n" + b"   \n" + b"\t\r\n" + good)
    with running_exporter(config) as exp:
        s = exp.wait_for(lambda s: s.get("mlops_predictions_total", model="e2e") == 2)
        s = exp.wait_passes(2)  # later passes (the rejected-line summary) count nothing more
        assert s.get("mlops_log_lines_total", model="e2e") == 2
        assert s.get("mlops_log_lines_invalid_total", model="e2e", reason="invalid_json") == 0
        assert not exp.events("log_line_rejected")
    append(path, b" \n\n" + good)
    with running_exporter(config) as exp:
        s = exp.wait_for(lambda s: s.get("mlops_predictions_total", model="e2e") == 3)
        s = exp.wait_passes(2)  # later passes (the rejected-line summary) count nothing more
        assert s.get("mlops_log_lines_total", model="e2e") == 3
        assert sum(exp.scrape().having("mlops_log_lines_invalid_total").values()) == 0


def test_invalid_outcome_records_are_logged_with_file_and_line_and_counted_on_the_page(
    tmp_path: Path,
) -> None:
    from tests.e2e.test_exporter_quality import outcome, prediction, quality_config, write

    config = quality_config(tmp_path)
    log = tmp_path / "logs" / "app.jsonl"
    now = time.time()
    no_id = outcome("r0", "a", now)
    del no_id["request_id"]
    records = [
        prediction("r0", now, {"class": "a"}),
        outcome("r0", {"a": 1}, now),
        outcome("r0", [1], now),
        no_id,
    ]
    with running_exporter(config) as exp:
        write(log, records)
        exp.wait_for(
            lambda s: s.get("mlops_outcomes_unmatched_total", model="e2e", reason="invalid") == 3
        )
        deadline = time.monotonic() + 10
        while len(exp.events("outcome_rejected")) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        events = exp.events("outcome_rejected")
        assert [e["line_number"] for e in events] == [2, 3, 4]
        assert all(e["file"] == str(log) and e["level"] == "warning" for e in events)
        assert [e["problem"] for e in events] == [
            "actual is an object or an array",
            "actual is an object or an array",
            "no request_id",
        ]
        assert events[0]["excerpt"].endswith('"request_id":"r0","actual":{')
        page = _wait_body(exp, "/", b"<span id='outcomes-invalid'>3</span>").decode()
        assert "invalid outcome records" in page


def test_left_out_probabilities_and_unjoinable_predictions_are_counted_logged_and_shown(
    tmp_path: Path,
) -> None:
    # a bad probability costs only the probability (log loss, Brier, AUC and the estimate
    # lack it), and a duplicate or invalid prediction no outcome can join: both were counted
    # by the store and shown nowhere, so a user could not tell why those figures were thin
    from tests.e2e.test_exporter_quality import prediction, quality_config, write

    config = quality_config(tmp_path)
    log = tmp_path / "logs" / "app.jsonl"
    now = time.time()
    records = [
        prediction("r0", now, {"class": "a", "probabilities": {"a": 0.9, "b": 0.9}}),
        prediction("r1", now, {"class": "a", "probability": 1.5}),
        prediction("r2", now, {"class": "a", "probabilities": [0.2, 0.8]}),
        prediction("r3", now, {"class": "a", "probability": 0.7}),  # usable
        prediction("r3", now, {"class": "a"}),  # the request_id again: the first wins
        prediction("r4", now, {"value": [1]}),  # no class, no value: invalid
    ]
    with running_exporter(config) as exp:
        write(log, records)
        s = exp.wait_for(
            lambda s: s.get("mlops_predictions_probability_dropped_total", model="e2e") == 3
        )
        assert s.get("mlops_predictions_unjoinable_total", model="e2e", reason="duplicate") == 1
        assert s.get("mlops_predictions_unjoinable_total", model="e2e", reason="invalid") == 1
        deadline = time.monotonic() + 10
        while len(exp.events("prediction_probability_dropped")) < 3:
            assert time.monotonic() < deadline, exp.events("prediction_probability_dropped")
            time.sleep(0.1)
        events = exp.events("prediction_probability_dropped")
        assert [e["line_number"] for e in events] == [1, 2, 3]
        assert all(e["file"] == str(log) and e["level"] == "warning" for e in events)
        assert [e["problem"] for e in events] == [
            "probabilities sum to 1.8, not 1",
            "probability is not a number in [0, 1]",
            "probabilities is not a mapping from class to probability",
        ]
        page = _wait_body(exp, "/", b"<span id='probabilities-dropped'>3</span>").decode()
        assert "<span id='predictions-unjoinable'>2</span>" in page
    with running_exporter(config) as exp:  # exact across a restart: nothing counted twice
        s = exp.wait_passes(2)
        assert s.get("mlops_predictions_probability_dropped_total", model="e2e") == 3
        assert s.get("mlops_predictions_unjoinable_total", model="e2e", reason="duplicate") == 1


def test_lines_read_with_no_usable_prediction_are_warned_with_a_hint(tmp_path: Path) -> None:
    # every line rejected (plain text, and records with "features" where input_data is
    # expected): before, only the counters and the rejected-line samples said anything, and
    # /-/ready answered "Ready." with no warning
    config = write_config(tmp_path)
    recs, _ = traffic(20)
    renamed = []
    for r in recs:
        r = dict(r)
        r["features"] = r.pop("input_data")
        renamed.append(r)
    text = b"".join(b"2026-12-01 INFO predicted class 1 for request %d\n" % i for i in range(20))
    log = tmp_path / "logs" / "a.jsonl"
    with running_exporter(config) as exp:
        append(log, text + lines_of(renamed))
        exp.wait_for(lambda s: s.get("mlops_log_lines_total", model="e2e") == 40)
        event = _wait_event(exp, "no_usable_predictions")
        assert event["level"] == "warning" and event["lines"] == 40
        assert event["by_reason"] == {"invalid_json": 20, "missing_field": 20}
        assert "the first such record has" in event["message"] and "features" in event["message"]
        ready = _wait_body(exp, "/-/ready", b"none is a usable prediction record")
        assert b"40 log lines read" in ready
        assert b"none is a usable prediction record" in exp.get("/")[2]
        exp.wait_passes(3)  # more passes: logged once, not at every pass
        assert len(exp.events("no_usable_predictions")) == 1
        append(log, lines_of(traffic(1)[0]))  # one usable prediction: cleared, and said
        _wait_event(exp, "usable_predictions_read")
        assert b"usable prediction" not in exp.get("/-/ready")[2]


def test_an_outcome_whose_actual_no_float_holds_costs_only_itself(tmp_path: Path) -> None:
    # it raised OverflowError in the keyed parser, which cost every prediction and outcome
    # of its block, for good (the offsets were checkpointed): 0 joined of 100
    from tests.e2e.test_exporter_quality import outcome, prediction, quality_config

    config = quality_config(tmp_path)
    log = tmp_path / "logs" / "app.jsonl"
    now = time.time()
    records = [prediction(f"m{i}", now, {"class": "a"}) for i in range(200)]
    records += [outcome(f"m{i}", "a", now) for i in range(100)]
    later = [prediction(f"n{i}", now, {"class": "a"}) for i in range(100)]
    huge = json.dumps(outcome("m150", 10**310, now)).encode() + b"\n"  # orjson has no such int
    with running_exporter(config) as exp:
        log.parent.mkdir(parents=True, exist_ok=True)
        lines = [orjson.dumps(r) + b"\n" for r in records + later]
        append(log, b"".join(lines[: len(records)]) + huge + b"".join(lines[len(records) :]))
        s = exp.wait_for(lambda s: s.get("mlops_outcomes_total", model="e2e") == 100)
        s = exp.wait_for(
            lambda s: s.get("mlops_outcomes_unmatched_total", model="e2e", reason="invalid") == 1
        )
        assert s.get("mlops_predictions_awaiting_outcome", model="e2e") == 200
        assert not exp.events("outcome_rows_failed")


def test_outcomes_waiting_for_their_prediction_are_shown_on_the_page(tmp_path: Path) -> None:
    # held up to outcomes.early_grace with no word (the page said 0 predictions awaiting)
    from tests.e2e.test_exporter_quality import outcome, quality_config, write

    config = quality_config(tmp_path, outcomes="{early_grace: 1h}")
    with running_exporter(config) as exp:
        write(
            tmp_path / "logs" / "app.jsonl", [outcome(f"x{i}", "a", time.time()) for i in range(2)]
        )
        page = _wait_body(exp, "/", b"<span id='outcomes-held'>2</span>").decode()
        assert "outcome records waiting for their prediction" in page


def test_a_reference_too_small_for_any_window_to_flag_drift_is_warned(tmp_path: Path) -> None:
    # 89 rows (a split of load_wine): no window could flag a shift below about 0.4, and the
    # page only showed the detectable distance, which seemed to blame the window
    from tests.e2e._exporter import reference_csv

    reference_csv(tmp_path / "ref.csv", rows=89)
    config = write_config(tmp_path)
    with running_exporter(config) as exp:
        event = _wait_event(exp, "reference_too_small")
        assert event["level"] == "warning" and event["reference_rows"] == 89
        assert set(event["features"]) == {"x", "y", "plan"}
        assert all(0.3 < floor < 0.7 for floor in event["features"].values())
        ready = _wait_body(exp, "/-/ready", b"the reference has 89 rows")
        assert b"however large the window" in ready and b"rows brings that to twice" in ready
        exp.wait_passes(3)
        assert len(exp.events("reference_too_small")) == 1  # said once, shown while it holds


def test_a_reference_of_2000_rows_is_no_such_warning(tmp_path: Path) -> None:
    config = write_config(tmp_path)  # the usual 2,000 rows
    with running_exporter(config) as exp:
        exp.wait_passes(2)
        assert not exp.events("reference_too_small")


def test_prediction_timestamps_in_milliseconds_are_warned(tmp_path: Path) -> None:
    # Date.now() read as seconds: the window never aged the records out, with no other sign
    config = write_config(tmp_path)
    recs, _ = traffic(30)
    now_ms = int(time.time() * 1000)
    for i, r in enumerate(recs):
        r["timestamp"] = now_ms + i
    with running_exporter(config) as exp:
        append(tmp_path / "logs" / "a.jsonl", lines_of(recs))
        event = _wait_event(exp, "timestamps_in_milliseconds")
        assert event["level"] == "warning" and event["predictions"] == 30
        ready = _wait_body(exp, "/-/ready", b"numeric timestamp in milliseconds")
        assert b"read as unix seconds" in ready
        exp.wait_passes(3)
        assert len(exp.events("timestamps_in_milliseconds")) == 1


def test_prediction_timestamps_in_seconds_are_no_such_warning(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    recs, _ = traffic(30)
    for r in recs:
        r["timestamp"] = time.time()
    with running_exporter(config) as exp:
        append(tmp_path / "logs" / "a.jsonl", lines_of(recs))
        exp.wait_for(lambda s: s.get("mlops_predictions_total", model="e2e") == 30)
        exp.wait_passes(2)
        assert not exp.events("timestamps_in_milliseconds")
