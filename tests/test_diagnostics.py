"""exporter.diagnostics on its own, with a fake clock: what is said, how often, and when.

The end-to-end tests (tests/e2e/test_exporter_no_silent_failure.py) show each warning once
through the real process; these pin the rate limits the issue asked for, which a process
test cannot wait for: a glob that matches nothing warned every ``REPEAT_EVERY`` while it
lasts, rejected lines in full only ``SAMPLES_PER_REASON`` times per reason and then one
summary per ``SUMMARY_EVERY``, fields sampled from the first ``FIELD_SAMPLE`` predictions
only, unmonitored fields logged once.
"""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
from structlog.testing import capture_logs

from exporter import diagnostics as diag
from exporter.diagnostics import Diagnostics, sample_rejected
from tests.conftest import REPO_ROOT


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _diagnostics(clock: Clock, *, features_configured: bool = False) -> Diagnostics:
    return Diagnostics(
        {"mean radius": "numeric", "plan": "categorical"},
        patterns=["/logs/*.jsonl"],
        features_configured=features_configured,
        clock=clock,
    )


def _block(n: int, fields: dict) -> bytes:
    line = {"event": "prediction", "input_data": fields, "prediction": {"class": 1}}
    return b"".join(orjson.dumps(line) + b"\n" for _ in range(n))


def test_a_glob_that_matches_nothing_is_warned_at_once_then_every_few_minutes() -> None:
    clock = Clock()
    d = _diagnostics(clock)
    with capture_logs() as logs:
        for _ in range(10):  # passes every 30 s for 5 minutes less one pass
            d.files_watched(0)
            clock.now += 30
        d.files_watched(0)  # 300 s after the first warning
    warned = [e for e in logs if e["event"] == "no_log_files_match"]
    assert [e["waiting_seconds"] for e in warned] == [0, 300]
    assert all(e["log_level"] == "warning" and e["patterns"] == ["/logs/*.jsonl"] for e in warned)
    assert d.warnings() == ("logs.paths matches no file: /logs/*.jsonl",)

    with capture_logs() as logs:
        d.files_watched(2)
        d.files_watched(2)
    assert [e["event"] for e in logs] == ["log_files_found"]  # once, when it ends
    assert d.warnings() == ()


def test_a_repeat_due_at_a_pass_is_not_put_off_by_a_pass_that_starts_a_little_early() -> None:
    # Found by hand: passes every 30 s, the first at start; the pass 300 s later ran 10 ms
    # short of 300 s after the first warning, so the repeat came one pass late, at 330 s.
    clock = Clock()
    d = _diagnostics(clock)
    with capture_logs() as logs:
        d.files_watched(0)
        clock.now += diag.REPEAT_EVERY - 0.01
        d.files_watched(0)
    assert [e["event"] for e in logs] == ["no_log_files_match"] * 2

    clock = Clock()
    d = _diagnostics(clock)
    d.rejected({"invalid_json": 1})
    clock.now += diag.SUMMARY_EVERY - 0.01
    with capture_logs() as logs:
        d.summarise()
    assert [e["event"] for e in logs] == ["log_lines_rejected"]


def test_rejected_lines_in_full_a_few_times_per_reason_then_a_summary_per_minute(
    tmp_path: Path,
) -> None:
    clock = Clock()
    d = _diagnostics(clock)
    path = tmp_path / "a.jsonl"
    lines = [b"{not json", b"[1]"] * 5
    block = b"\n".join(lines) + b"\n"
    path.write_bytes(block)

    def parse_one(line: bytes):
        class Batch:
            invalid = {"invalid_json": 1} if line.startswith(b"{") else {"not_an_object": 1}

        return Batch

    with capture_logs() as logs:
        assert d.wants_samples(["invalid_json"])
        sample_rejected(d, parse_one, str(path), 0, block)
        d.rejected({"invalid_json": 5, "not_an_object": 5})
        assert not d.wants_samples(["invalid_json", "not_an_object"])
        d.summarise()  # less than a minute since the start: no summary yet
    full = [e for e in logs if e["event"] == "log_line_rejected"]
    assert [(e["reason"], e["line_number"]) for e in full] == [
        ("invalid_json", 1), ("not_an_object", 2), ("invalid_json", 3), ("not_an_object", 4),
        ("invalid_json", 5), ("not_an_object", 6),
    ]  # fmt: skip
    assert diag.SAMPLES_PER_REASON == 3
    assert full[1]["file"] == str(path) and full[1]["offset"] == len(b"{not json\n")
    assert full[1]["excerpt"] == "[1]" and full[1]["log_level"] == "warning"
    assert not [e for e in logs if e["event"] == "log_lines_rejected"]

    clock.now += diag.SUMMARY_EVERY
    with capture_logs() as logs:
        d.summarise()
        d.summarise()  # nothing new since
        d.rejected({"invalid_json": 2})
        clock.now += diag.SUMMARY_EVERY / 2
        d.summarise()  # half a minute later: not yet
        clock.now += diag.SUMMARY_EVERY / 2
        d.summarise()
    summaries = [e for e in logs if e["event"] == "log_lines_rejected"]
    assert [e["by_reason"] for e in summaries] == [
        {"invalid_json": 5, "not_an_object": 5}, {"invalid_json": 2},
    ]  # fmt: skip
    assert [e["seconds"] for e in summaries] == [60, 60]
    assert not [e for e in logs if e["event"] == "log_line_rejected"]


def test_a_feature_in_none_of_the_first_predictions_is_warned_with_the_closest_field() -> None:
    d = _diagnostics(Clock())
    with capture_logs() as logs:
        d.observe_block(_block(diag.FIELD_SAMPLE - 1, {"mean_radius": 1.0, "plan": "a"}))
        assert d.sampling and d.warnings() == ()  # not concluded before FIELD_SAMPLE
        d.observe_block(_block(5, {"mean_radius": 1.0, "plan": "a", "extra": 3}))
        assert not d.sampling
        d.observe_block(_block(5, {"mean_radius": 1.0, "other": 3}))  # after the sample
    never = [e for e in logs if e["event"] == "feature_never_seen"]
    assert [(e["feature"], e["closest_field"], e["log_level"]) for e in never] == [
        ("mean radius", "mean_radius", "warning")
    ]
    assert d.warnings() == (
        f"feature 'mean radius' is missing from all of the first {diag.FIELD_SAMPLE} "
        "predictions; the records have 'mean_radius'",
    )
    unmonitored = [e for e in logs if e["event"] == "fields_not_monitored"]
    assert len(unmonitored) == 1 and unmonitored[0]["fields"] == ["extra", "mean_radius"]


def test_no_closest_field_when_none_is_close_and_no_unmonitored_list_with_features_set() -> None:
    d = _diagnostics(Clock(), features_configured=True)
    with capture_logs() as logs:
        d.observe_block(_block(diag.FIELD_SAMPLE, {"mean_area": 1.0, "plan": "a"}))
    (never,) = [e for e in logs if e["event"] == "feature_never_seen"]
    assert never["feature"] == "mean radius" and never["closest_field"] is None
    assert d.warnings() == (
        f"feature 'mean radius' is missing from all of the first {diag.FIELD_SAMPLE} predictions",
    )
    assert not [e for e in logs if e["event"] == "fields_not_monitored"]


def test_skipped_data_is_logged_with_how_to_read_it() -> None:
    d = _diagnostics(Clock())
    with capture_logs() as logs:
        d.skipped_at_start(0, 0)  # nothing skipped: nothing said
        d.skipped_at_start(601, 1)
        d.skipped_at_start(601, 1, "/var/lib/x/positions.json")
    assert [(e["event"], e["bytes"], e["log_level"]) for e in logs] == [
        ("existing_log_data_skipped", 601, "info")
    ] * 2
    assert logs[0]["hint"].endswith("set logs.start_position: beginning")
    assert logs[1]["hint"].endswith(
        "set logs.start_position: beginning and delete /var/lib/x/positions.json before the "
        "next start"
    )


def test_skipped_data_is_shown_on_the_pages_until_the_first_prediction_is_read() -> None:
    d = _diagnostics(Clock())
    d.skipped_at_start(601, 1, "/var/lib/x/positions.json")
    shown = [w for w in d.warnings() if "skipped at start" in w]
    assert shown == [
        "601 bytes of existing log data in 1 file(s) were skipped at start "
        "(logs.start_position: end); to read them too, set logs.start_position: beginning "
        "and delete /var/lib/x/positions.json before the next start"
    ]
    d.observe_block(b'{"event": "health_check"}\n')  # not a prediction: still shown
    assert any("skipped at start" in w for w in d.warnings())
    d.observe_block(_block(1, {"mean radius": 1.0, "plan": "a"}))
    assert not any("skipped at start" in w for w in d.warnings())


def test_every_warning_is_in_the_troubleshooting_table_and_every_row_is_logged() -> None:
    page = (REPO_ROOT / "docs" / "troubleshooting.md").read_text(encoding="utf-8")
    section = page.split("## What the exporter's log warns about", 1)[1].split("\n## ", 1)[0]
    documented = {
        name
        for row in section.splitlines()
        if row.startswith("| `")
        for name in re.findall(r"`([a-z_]+)`", row.split("|")[1])
    }
    source = (REPO_ROOT / "exporter" / "diagnostics.py").read_text(encoding="utf-8")
    said = set(re.findall(r"log\.(?:info|warning)\(\s*\"([a-z_]+)\"", source))
    assert said - documented == set(), "diagnostics events missing from troubleshooting.md"
    exporter_source = "".join(
        f.read_text(encoding="utf-8") for f in (REPO_ROOT / "exporter").rglob("*.py")
    )
    stale = [n for n in documented if f'"{n}"' not in exporter_source]
    assert stale == [], f"troubleshooting.md names events the exporter never logs: {stale}"


def test_excerpts_escape_control_characters_in_every_log_format(capsys) -> None:
    # --log.format=console wrote a rejected line's NUL and ANSI escape raw to stderr
    from exporter.logs import configure_logging

    hostile = b"\x00\x1b[31mred\x1b[0m \xff\x7f\xc2\x9b tab\tend"
    assert diag.excerpt(hostile) == "\\x00\\x1b[31mred\\x1b[0m \ufffd\\x7f\\x9b tab\\x09end"
    try:
        for fmt in ("console", "json"):
            configure_logging("info", fmt)
            d = _diagnostics(Clock())
            d.sample("/nonexistent.jsonl", 0, "encoding", hostile)
            err = capsys.readouterr().err
            assert "log_line_rejected" in err
            assert not any(ord(c) < 0x20 and c != "\n" for c in err), (fmt, err)
            assert "\x7f" not in err and "\x9b" not in err
    finally:
        import structlog

        structlog.reset_defaults()


def test_predictions_all_too_old_are_warned_every_few_minutes_until_some_fit() -> None:
    clock = Clock()
    d = _diagnostics(clock)
    with capture_logs() as logs:
        d.window("churn", too_old=0, samples=0, newest=None, max_age=300.0)  # nothing read yet
        assert d.warnings() == ()
        for _ in range(11):  # every 30 s for 5 minutes
            d.window("churn", too_old=300, samples=0, newest=1735689600.0, max_age=300.0)
            clock.now += 30
    warned = [e for e in logs if e["event"] == "predictions_too_old"]
    assert len(warned) == 2 and warned[0]["log_level"] == "warning"
    assert warned[0]["newest"] == "2025-01-01T00:00:00Z" and warned[0]["predictions"] == 300
    (shown,) = d.warnings()
    assert "300 predictions read, none within drift.window.max_age (5m" in shown
    assert "newest at 2025-01-01T00:00:00Z" in shown
    with capture_logs() as logs:
        d.window("churn", too_old=0, samples=5, newest=None, max_age=300.0)  # fresh ones
    assert d.warnings() == ()
    assert [e["event"] for e in logs] == ["predictions_judged_again"]
    # a restart starts with an empty window and counters restored: no warning without reads
    d.window("churn", too_old=0, samples=0, newest=None, max_age=300.0)
    assert d.warnings() == ()
    # old records after fresh ones: not while the fresh ones are still judged
    d.window("churn", too_old=20, samples=50, newest=1735689600.0, max_age=300.0)
    assert d.warnings() == ()


def test_predictions_only_of_other_versions_are_warned_naming_the_key() -> None:
    clock = Clock()
    d = _diagnostics(clock)
    kwargs = {"monitored": "1.0", "predictions": 0, "other_versions": {"2.0": 300}}
    with capture_logs() as logs:
        d.versions("churn", registry=False, **kwargs)
        d.versions("churn", registry=False, **kwargs)  # the next pass: not again
    (event,) = [e for e in logs if e["event"] == "predictions_of_other_versions"]
    assert event["versions"] == {"2.0": 300} and event["monitored_version"] == "1.0"
    (shown,) = d.warnings()
    assert "monitors version 1.0, but all 300 predictions read are of other versions" in shown
    assert "(2.0: 300)" in shown and "set model.version" in shown
    d.versions("churn", registry=True, **kwargs)
    assert "registry stage" in d.warnings()[0]
    # some of the monitored version: fine (the others are on the page and in a metric)
    d.versions("churn", monitored="1.0", predictions=1, other_versions={"2.0": 300},
               registry=False)  # fmt: skip
    assert d.warnings() == ()
    # every version monitored: nothing to warn about
    d.versions("churn", monitored=None, predictions=0, other_versions={}, registry=False)
    assert d.warnings() == ()
    d.versions("gone", registry=False, **kwargs)
    d.forget_models(["churn"])
    assert d.warnings() == ()


def test_invalid_outcome_records_are_logged_the_first_few_times_with_why(tmp_path: Path) -> None:
    path = tmp_path / "o.jsonl"
    lines = [
        b'{"event":"outcome","request_id":"r","actual":{"a":1}}',
        b'{"event":"outcome","actual":"a"}',
        b'{"event":"outcome","request_id":"r"}',
        b'{"event":"outcome","request_id":"r","actual":[1]}',
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    d = _diagnostics(Clock())
    with capture_logs() as logs:
        offset = 0
        for line in lines:
            if d.wants_outcome_samples:
                d.outcome_rejected(str(path), offset, line)
            offset += len(line) + 1
    assert [(e["line_number"], e["problem"]) for e in logs] == [
        (1, "actual is an object or an array"),
        (2, "no request_id"),
        (3, "no actual"),
    ]
    assert all(e["event"] == "outcome_rejected" and e["file"] == str(path) for e in logs)
    assert not d.wants_outcome_samples


@pytest.mark.parametrize(
    ("prediction", "problem"),
    [
        ({"class": "a", "probability": 1.5}, "probability is not a number in [0, 1]"),
        ({"class": "a", "probability": True}, "probability is not a number in [0, 1]"),
        ({"class": "a", "probability": "high"}, "probability is not a number in [0, 1]"),
        ({"class": "a", "probabilities": [0.2, 0.8]}, "probabilities is not a mapping from "
         "class to probability"),
        ({"class": "a", "probabilities": {}}, "probabilities is empty"),
        ({"class": "a", "probabilities": {"a": -0.1, "b": 1.1}}, "a value of probabilities "
         "is not a number in [0, 1]"),
        ({"class": "a", "probabilities": {"a": 60, "b": 40}}, "a value of probabilities is "
         "not a number in [0, 1]"),
        ({"class": "a", "probabilities": {"a": 0.6}}, "probabilities sum to 0.6, not 1"),
    ],
)  # fmt: skip
def test_the_problem_of_a_left_out_probability_is_named(
    prediction: dict[str, object], problem: str
) -> None:
    line = orjson.dumps({"event": "prediction", "request_id": "r", "prediction": prediction})
    assert diag.probability_problem(line) == problem


def test_an_early_rename_warning_is_withdrawn_when_the_feature_appears_later() -> None:
    d = _diagnostics(Clock())
    with capture_logs() as logs:
        d.observe_block(_block(diag.EARLY_FIELD_SAMPLE, {"mean_radius": 1.0, "Plan": "a"}))
        d.early_fields()
        assert len(d.warnings()) == 2  # both renamed: said after 20, not 200
        d.observe_block(_block(diag.FIELD_SAMPLE, {"mean radius": 1.0, "Plan": "a"}))
    assert [e["feature"] for e in logs if e["event"] == "feature_never_seen"] == [
        "mean radius",
        "plan",
    ]
    # at the full sample, "mean radius" had appeared: its warning goes, plan's stays
    assert d.warnings() == (
        f"feature 'plan' is missing from all of the first {diag.EARLY_FIELD_SAMPLE} "
        "predictions; the records have 'Plan'",
    )
