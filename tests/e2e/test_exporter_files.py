"""What can happen to a log file, seen through the real exporter's /metrics.

Named for the situation each covers, like mtail's integration tests: rotation by rename,
truncation (copytruncate, also regrown past the offset), a file appearing later, a partial
last line, a restart with the checkpoint, every kind of bad line, a hostile line among
valid ones, and more matching files than ``logs.max_files``.
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest

from tests.e2e._exporter import (
    append,
    lines_of,
    record,
    running_exporter,
    start_exporter,
    traffic,
    write_config,
)

pytestmark = pytest.mark.e2e


def predictions(exp) -> float | None:
    return exp.scrape().get("mlops_predictions_total", model="e2e")


def wait_predictions(exp, n: int):
    return exp.wait_for(
        lambda s: s.get("mlops_predictions_total", model="e2e") == n, what=f"{n} predictions"
    )


def test_log_rotation_by_rename(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    log = tmp_path / "logs" / "app.jsonl"
    with running_exporter(config) as exp:
        first, _ = traffic(100, seed=1)
        append(log, lines_of(first))
        wait_predictions(exp, 100)
        # The writer adds a few lines, then logrotate renames the file (to a name the glob
        # does not match) and the writer reopens a new app.jsonl.
        tail, _ = traffic(7, seed=2)
        append(log, lines_of(tail))
        os.rename(log, tmp_path / "logs" / "app.jsonl.1")
        fresh, _ = traffic(30, seed=3)
        append(log, lines_of(fresh))
        s = wait_predictions(exp, 137)
        assert s.get("mlops_log_rotations_total") >= 1
        assert s.get("mlops_log_truncations_total") == 0


def test_log_truncation_copytruncate(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    log = tmp_path / "logs" / "app.jsonl"
    with running_exporter(config) as exp:
        first, _ = traffic(200, seed=1)
        append(log, lines_of(first))
        wait_predictions(exp, 200)
        with log.open("r+b") as fh:
            fh.truncate(0)
        after, _ = traffic(20, seed=2)
        append(log, lines_of(after))
        s = wait_predictions(exp, 220)
        assert s.get("mlops_log_truncations_total") == 1


def test_file_appearing_later(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    with running_exporter(config) as exp:
        s = exp.scrape()
        assert s.get("mlops_log_files_watched") == 0
        recs, _ = traffic(40)
        append(tmp_path / "logs" / "late.jsonl", lines_of(recs))
        s = wait_predictions(exp, 40)
        assert s.get("mlops_log_files_watched") == 1
        append(tmp_path / "logs" / "later.jsonl", lines_of(recs[:5]))
        s = wait_predictions(exp, 45)
        assert s.get("mlops_log_files_watched") == 2


def test_partial_last_line_completed_later(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    log = tmp_path / "logs" / "app.jsonl"
    with running_exporter(config) as exp:
        recs, _ = traffic(10)
        whole = lines_of(recs)
        last = orjson.dumps(record(0.5, 10.0, "b", latency_ms=33.0))
        append(log, whole + last[:25])
        s = wait_predictions(exp, 10)
        before = exp.wait_computed_after(0)
        assert before.get("mlops_log_lines_invalid_total", model="e2e", reason="invalid_json") in (
            None,
            0,
        )
        append(log, last[25:] + b"\n")
        s = wait_predictions(exp, 11)
        assert s.get("mlops_log_lines_total", model="e2e") == 11
        assert sum(s.having("mlops_log_lines_invalid_total").values()) == 0


def test_restart_with_checkpoint_counts_no_line_twice(tmp_path: Path) -> None:
    state = tmp_path / "state" / "positions.json"
    state.parent.mkdir()
    config = write_config(tmp_path, extra=f", state_file: {state}")
    log = tmp_path / "logs" / "app.jsonl"
    first, _ = traffic(120, seed=1)
    append(log, lines_of(first))
    with running_exporter(config) as exp:
        wait_predictions(exp, 120)
    assert state.exists()  # written on SIGTERM
    # Lines written while the exporter is down are read after the restart, once; the
    # counters carry on from the checkpoint instead of starting again at 0.
    second, _ = traffic(30, seed=2)
    append(log, lines_of(second))
    with running_exporter(config) as exp:
        s = wait_predictions(exp, 150)
        third, _ = traffic(5, seed=3)
        append(log, lines_of(third))
        s = wait_predictions(exp, 155)
        assert s.get("mlops_log_lines_total", model="e2e") == 155


def test_every_kind_of_bad_line_is_counted_and_skipped(tmp_path: Path) -> None:
    config = write_config(tmp_path, extra=", max_line_bytes: 4096")
    log = tmp_path / "logs" / "app.jsonl"
    good = record(0.1, 10.0, "a")
    bad_lines = [
        b"{not json",  # invalid JSON
        b"\xff\xfe\x00\x01 binary garbage \x80\x81",  # not UTF-8
        b"[1, 2, 3]",  # JSON, but not an object
        orjson.dumps({k: v for k, v in good.items() if k != "input_data"}),  # missing field
        orjson.dumps({**good, "input_data": "x=1"}),  # wrong type
        orjson.dumps({**good, "latency_ms": "fast"}),  # wrong type
        orjson.dumps(good).replace(b'"x":0.1', b'"x":NaN'),  # NaN (not JSON)
        b'{"event": "prediction", "input_data": {"x": 1e999}, "latency_ms": 5}',  # inf
        orjson.dumps({**good, "latency_ms": -3.0}),  # out of range
        orjson.dumps({**good, "request_id": "r" * 5000}),  # over max_line_bytes
        orjson.dumps({**good, "service": "MARK"}).replace(b"MARK", b"\xc3("),  # unread, bad
        orjson.dumps(good)[:-1] + b',"x":' + b"[" * 1500 + b"]" * 1500 + b"}",  # too deep
    ]
    expected = {
        "invalid_json": 1,
        "encoding": 2,
        "too_deep": 1,
        "not_an_object": 1,
        "missing_field": 1,
        "wrong_type": 2,
        "non_finite": 2,
        "out_of_range": 1,
        "too_long": 1,
    }
    other = [orjson.dumps({"event": "health_check", "level": "info"})] * 3
    valid, _ = traffic(25)
    payload = b"\n".join(bad_lines + other) + b"\n" + lines_of(valid)
    with running_exporter(config) as exp:
        append(log, payload)
        s = exp.wait_for(
            lambda s: s.get("mlops_log_lines_total", model="e2e") == len(bad_lines) + 3 + 25,
            what="every line read",
        )
        assert s.get("mlops_predictions_total", model="e2e") == 25
        invalid = {
            dict(k)["reason"]: v for k, v in s.having("mlops_log_lines_invalid_total").items()
        }
        assert sum(invalid.values()) == len(bad_lines), invalid
        assert {r: v for r, v in invalid.items() if v} == expected
        other_events = s.get("mlops_log_lines_other_events_total", model="e2e")
        assert other_events == 3
        # The bad lines' valid fields were not half-applied: only the 25 good latencies.
        assert s.get("mlops_prediction_latency_seconds_count", model="e2e") == 25
        # And the exporter is still healthy and reading.
        append(log, lines_of(valid[:5]))
        wait_predictions(exp, 30)


def test_a_deeply_nested_line_costs_that_line_and_no_other(tmp_path: Path) -> None:
    """One read block: 2,000 valid lines around one nested 1,000 deep; 2,000 predictions."""
    config = write_config(tmp_path)
    log = tmp_path / "logs" / "app.jsonl"
    valid, _ = traffic(2000)
    deep = b'{"event": "prediction", "junk": ' + b"[" * 1000 + b"]" * 1000 + b"}\n"
    data = lines_of(valid)
    middle = data.index(b"\n", len(data) // 2) + 1
    with running_exporter(config) as exp:
        append(log, data[:middle] + deep + data[middle:])
        # both at once: without a state file a scrape reads the line counters and the
        # model's counters one after the other, and may fall between their updates
        s = exp.wait_for(
            lambda s: (
                s.get("mlops_log_lines_total", model="e2e") == 2001
                and s.get("mlops_predictions_total", model="e2e") == 2000
            ),
            what="every line, and every prediction but the deep line",
        )
        invalid = {
            dict(k)["reason"]: v for k, v in s.having("mlops_log_lines_invalid_total").items()
        }
        assert {r: v for r, v in invalid.items() if v} == {"too_deep": 1}
        assert invalid.get("internal_error") == 0  # declared, at 0


def test_log_truncated_and_regrown_past_the_offset_with_the_same_first_bytes(
    tmp_path: Path,
) -> None:
    """copytruncate and the writer writing more than before, all between two polls."""
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace("poll_interval: 50ms", "poll_interval: 1s"))
    log = tmp_path / "logs" / "app.jsonl"
    head = b'{"event": "startup", "note": "' + b"h" * 300 + b'"}\n'  # same first 256 bytes
    first, _ = traffic(10, seed=1)
    append(log, head + lines_of(first))
    with running_exporter(config) as exp:
        wait_predictions(exp, 10)
        regrown, _ = traffic(100, seed=2)
        log.write_bytes(head + lines_of(regrown))  # truncate and write, microseconds apart
        s = wait_predictions(exp, 110)  # all 100 new ones, not the last 90
        assert s.get("mlops_log_truncations_total") == 1


def test_more_files_than_max_files_are_counted_never_silently_ignored(tmp_path: Path) -> None:
    config = write_config(tmp_path, extra=", max_files: 2")
    logs = tmp_path / "logs"
    recs, _ = traffic(5)
    for i in range(5):
        append(logs / f"f{i}.jsonl", lines_of(recs))
        os.utime(logs / f"f{i}.jsonl", ns=((i + 1) * 10**9,) * 2)
    with running_exporter(config) as exp:
        s = wait_predictions(exp, 10)  # the two newest files
        assert s.get("mlops_log_files_watched") == 2
        assert s.get("mlops_log_files_over_limit") == 3
        assert any("log_files_over_limit" in line for line in exp.stderr_lines)
        (logs / "f4.jsonl").unlink()  # a descriptor frees up: the next newest file is read
        s = wait_predictions(exp, 15)
        assert s.get("mlops_log_files_over_limit") == 2


def test_start_position_end_skips_existing_lines(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace("beginning", "end"))
    log = tmp_path / "logs" / "app.jsonl"
    old, _ = traffic(50)
    append(log, lines_of(old))
    exp = start_exporter(config)
    try:
        assert predictions(exp) == 0
        new, _ = traffic(8, seed=5)
        append(log, lines_of(new))
        wait_predictions(exp, 8)
    finally:
        assert exp.stop() == 0


def test_a_reference_header_with_spaces_is_one_json_warning_event(tmp_path: Path) -> None:
    """``x, y`` is a common way to write a CSV header; the library warns that ``' y'`` is
    read as ``y``.  Python prints a warning as two lines of plain text, which broke the
    ``--log.format=json`` promise of one JSON object per stderr line."""
    from tests.e2e._exporter import reference_csv

    ref = reference_csv(tmp_path / "ref.csv")
    lines = ref.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "x,y,plan"
    ref.write_text("\n".join(["x, y,plan", *lines[1:]]) + "\n", encoding="utf-8")
    config = write_config(tmp_path)
    with running_exporter(config) as exp:
        exp.scrape()
    events = [orjson.loads(line) for line in exp.stderr_lines if line.strip()]  # all JSON
    notes = [e for e in events if e["event"] == "library_warning"]
    assert len(notes) == 1, notes
    assert notes[0]["level"] == "warning"
    assert notes[0]["category"] == "DataFileWarning"
    assert notes[0]["message"].startswith(f"{ref}: header names are read without")
    assert "' y' as 'y'" in notes[0]["message"]
