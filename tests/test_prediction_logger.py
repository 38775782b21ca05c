"""PredictionLogger: the record contract, real files, threads, processes and rotation."""

from __future__ import annotations

import copy
import io
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import structlog

from mlops_core import PredictionLogger
from mlops_core.errors import LogOutputError, MlopsError, PredictionLogError

REPO_ROOT = Path(__file__).resolve().parent.parent
TIMESTAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
CONTRACT_KEYS = [
    "timestamp", "level", "event", "service", "model_version", "request_id", "input_data",
    "prediction", "latency_ms",
]  # fmt: skip


def _read_records(*paths: Path) -> list[dict]:
    """Every line of the files, parsed; fails on a partial or merged line."""
    records = []
    for path in paths:
        data = path.read_bytes()
        assert not data or data.endswith(b"\n"), f"{path} ends in a partial line"
        assert b"\x00" not in data, f"{path} has a hole (write past a truncation)"
        for line in data.splitlines():
            records.append(json.loads(line))
    return records


# --- the record ------------------------------------------------------------------------------


def test_issue_example_entry() -> None:
    logger = PredictionLogger("my-service", output=io.StringIO())
    before = datetime.now(UTC)
    entry = logger.create_log_entry(
        request_id="req-123", input_data={"age": 35}, prediction={"class": 1}, latency_ms=45.2
    )
    assert entry["event"] == "prediction"
    assert entry["service"] == "my-service"
    assert entry["request_id"] == "req-123"
    assert entry["input_data"] == {"age": 35}
    assert entry["prediction"] == {"class": 1}
    assert entry["latency_ms"] == 45.2
    assert entry["level"] == "info"
    assert "model_version" not in entry
    assert TIMESTAMP_RE.match(entry["timestamp"]), entry["timestamp"]
    stamped = datetime.fromisoformat(entry["timestamp"])
    assert stamped.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= stamped <= datetime.now(UTC) + timedelta(seconds=1)
    assert json.loads(json.dumps(entry)) == entry


def test_entry_follows_the_contract_order_and_keeps_extras() -> None:
    logger = PredictionLogger("churn-api", model_version="1.0.0", output=io.StringIO())
    entry = logger.create_log_entry(
        "req-9",
        {"age": 35, "plan": "pro", "email": "x@example.com"},
        {"class": 1, "probability": 0.83},
        12,
        route="/predict",
        customer_email="y@example.com",
        note="ticket from 10.1.2.3",
    )
    assert list(entry) == [*CONTRACT_KEYS, "route", "note"]
    assert entry["model_version"] == "1.0.0"
    assert entry["input_data"] == {"age": 35, "plan": "pro"}
    assert entry["note"] == "ticket from [REDACTED:IP]"
    assert entry["route"] == "/predict"


def test_nested_and_free_text_input_is_redacted_without_mutation() -> None:
    logger = PredictionLogger("svc", output=io.StringIO())
    features = {
        "age": 41,
        "income": 4111111111111111.0,
        "comment": "reach me at jane@example.com or +1 415 555 2671",
        "history": [{"ip": "10.0.0.1", "amount": 12.5}, ("card 4111 1111 1111 1111",)],
        "profile": {"firstName": "Jane", "segment": "gold"},
    }
    before = copy.deepcopy(features)
    entry = logger.create_log_entry("r1", features, "churn", 3.0)
    assert features == before
    assert entry["input_data"] == {
        "age": 41,
        "income": 4111111111111111.0,
        "comment": "reach me at [REDACTED:EMAIL] or [REDACTED:PHONE]",
        "history": [{"amount": 12.5}, ("card [REDACTED:CARD]",)],
        "profile": {"segment": "gold"},
    }
    assert entry["prediction"] == "churn"


def test_log_line_equals_entry_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    with PredictionLogger("svc", model_version="2", output=path) as logger:
        args = ("req-1", {"age": 35, "email": "a@example.com"}, {"value": 0.5}, 45.2)
        entry = logger.create_log_entry(*args, zone="eu")
        logger.log_prediction(*args, zone="eu")
        assert json.loads(logger.render(entry)) == entry
    (record,) = _read_records(path)
    assert TIMESTAMP_RE.match(record["timestamp"])
    assert {**record, "timestamp": None} == {**entry, "timestamp": None}
    assert list(record) == [*CONTRACT_KEYS, "zone"]


def test_streams_text_binary_and_default_stdout(capsys: pytest.CaptureFixture) -> None:
    text, binary = io.StringIO(), io.BytesIO()
    PredictionLogger("a", output=text).log_prediction("r", {"x": 1}, 1, 1.0)
    PredictionLogger("b", output=binary).log_prediction("r", {"x": 2}, 0, 2.0)
    PredictionLogger("c").log_prediction("r", {"x": 3}, 1, 3.0)
    assert json.loads(text.getvalue())["service"] == "a"
    assert json.loads(binary.getvalue())["input_data"] == {"x": 2}
    out = capsys.readouterr().out
    assert out.endswith("\n") and out.count("\n") == 1
    assert json.loads(out)["service"] == "c"


def test_other_events_share_the_file_with_the_same_stamping(tmp_path: Path) -> None:
    def add_host(logger: object, method: str, event_dict: dict) -> dict:
        event_dict["host"] = "node-1"
        return event_dict

    path = tmp_path / "p.jsonl"
    with PredictionLogger("svc", output=path, processors=[add_host]) as logger:
        logger.logger.warning("model_loaded", path="/m/1", owner_email="o@example.com")
        logger.log_prediction("r", {"x": 1}, 1, 1.0)
    loaded, prediction = _read_records(path)
    assert loaded["event"] == "model_loaded" and loaded["level"] == "warning"
    assert "owner_email" not in loaded and loaded["host"] == "node-1"
    assert prediction["event"] == "prediction" and prediction["host"] == "node-1"


def test_custom_redactor_rules() -> None:
    from mlops_core import PIIRedactor

    logger = PredictionLogger(
        "svc", output=io.StringIO(), redactor=PIIRedactor(extra_keys=["zip_code"])
    )
    entry = logger.create_log_entry("r", {"zipCode": "10115", "age": 3}, 1, 1.0)
    assert entry["input_data"] == {"age": 3}


def test_structlog_global_configuration_is_untouched(tmp_path: Path) -> None:
    before = structlog.get_config()
    configured = structlog.is_configured()
    with PredictionLogger("svc", output=tmp_path / "p.jsonl") as logger:
        logger.log_prediction("r", {"x": 1}, 1, 1.0)
    assert structlog.get_config() == before
    assert structlog.is_configured() == configured


def test_module_name_does_not_shadow_stdlib_logging() -> None:
    import logging as stdlib_logging

    import mlops_core.logging as ours

    assert ours._stdlib_logging is stdlib_logging
    assert hasattr(stdlib_logging, "getLogger") and not hasattr(ours, "getLogger")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"latency_ms": "fast"}, "latency_ms must be a number"),
        ({"latency_ms": float("nan")}, "latency_ms must be a finite number"),
        ({"latency_ms": -1}, "latency_ms must be a finite number >= 0"),
        ({"input_data": [1, 2]}, "input_data must be a mapping"),
        ({"request_id": None}, "request_id must be a string"),
        ({"timestamp": "x"}, "extra key 'timestamp' is reserved"),
    ],
)
def test_bad_arguments_raise_one_readable_error(kwargs: dict, message: str) -> None:
    logger = PredictionLogger("svc", output=io.StringIO())
    args = {"request_id": "r", "input_data": {"x": 1}, "prediction": 1, "latency_ms": 1.0}
    args.update(kwargs)
    with pytest.raises(PredictionLogError, match=re.escape(message)):
        logger.log_prediction(**args)
    with pytest.raises(MlopsError):
        logger.create_log_entry(**args)


def test_bad_construction_names_the_problem(tmp_path: Path) -> None:
    with pytest.raises(PredictionLogError, match="service"):
        PredictionLogger("")
    with pytest.raises(PredictionLogError, match="output"):
        PredictionLogger("svc", output=42)
    missing = tmp_path / "no" / "such" / "dir" / "p.jsonl"
    with pytest.raises(LogOutputError, match=re.escape(str(missing))):
        PredictionLogger("svc", output=missing)
    # wrong processors fail at construction, not with a TypeError at the first log call
    for bad in ([print, 5], 5, print):
        with pytest.raises(PredictionLogError, match="processors must be a list"):
            PredictionLogger("svc", output=io.StringIO(), processors=bad)
    with pytest.raises(PredictionLogError, match="redactor must be a callable"):
        PredictionLogger("svc", output=io.StringIO(), redactor="strict")
    with pytest.raises(PredictionLogError, match="check_interval must be a number"):
        PredictionLogger("svc", output=io.StringIO(), check_interval="1s")


# --- concurrency -----------------------------------------------------------------------------


def _payload(i: int) -> dict:
    # sizes from tiny to well above PIPE_BUF and a page, so torn writes would show
    return {"i": i, "blob": "x" * ((i * 7919) % 20000)}


def test_threads_sharing_one_logger_write_only_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    n_threads, per_thread = 8, 300
    with PredictionLogger("svc", output=path) as logger:

        def work(t: int) -> None:
            for i in range(per_thread):
                logger.log_prediction(f"{t}-{i}", _payload(i), 1, 1.0)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    ids = [r["request_id"] for r in _read_records(path)]
    assert sorted(ids) == sorted(f"{t}-{i}" for t in range(n_threads) for i in range(per_thread))


def test_threads_with_separate_loggers_on_one_file(tmp_path: Path) -> None:
    """Separate descriptors, no shared lock: O_APPEND alone keeps lines whole."""
    path = tmp_path / "p.jsonl"
    loggers = [PredictionLogger(f"svc{t}", output=path) for t in range(4)]

    def work(t: int) -> None:
        for i in range(300):
            loggers[t].log_prediction(f"{t}-{i}", _payload(i), 1, 1.0)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for lg in loggers:
        lg.close()
    assert len(_read_records(path)) == 1200


_WRITER_SCRIPT = textwrap.dedent(
    """
    import sys
    from mlops_core import PredictionLogger
    path, worker, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with PredictionLogger("proc", output=path) as logger:
        for i in range(n):
            blob = "y" * ((i * 104729) % 70000)
            logger.log_prediction(f"{worker}-{i}", {"i": i, "blob": blob}, 1, 1.0)
    """
)


def test_processes_appending_to_one_file_write_only_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    n_procs, per_proc = 4, 300
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER_SCRIPT, str(path), str(w), str(per_proc)],
            cwd=REPO_ROOT,
            env=env,
        )
        for w in range(n_procs)
    ]
    for p in procs:
        assert p.wait(timeout=120) == 0
    records = _read_records(path)
    ids = sorted(r["request_id"] for r in records)
    assert ids == sorted(f"{w}-{i}" for w in range(n_procs) for i in range(per_proc))
    for r in records:
        assert len(r["input_data"]["blob"]) == (r["input_data"]["i"] * 104729) % 70000


# --- rotation --------------------------------------------------------------------------------


def test_rotation_by_rename_is_noticed(tmp_path: Path) -> None:
    path, rotated = tmp_path / "p.jsonl", tmp_path / "p.jsonl.1"
    with PredictionLogger("svc", output=path, check_interval=0) as logger:
        for i in range(50):
            logger.log_prediction(f"a{i}", {"i": i}, 1, 1.0)
        os.rename(path, rotated)  # what logrotate does with "create"
        for i in range(50):
            logger.log_prediction(f"b{i}", {"i": i}, 1, 1.0)
    assert [r["request_id"] for r in _read_records(rotated)] == [f"a{i}" for i in range(50)]
    assert [r["request_id"] for r in _read_records(path)] == [f"b{i}" for i in range(50)]


def test_reopen_after_rename_for_sighup_style_rotation(tmp_path: Path) -> None:
    path, rotated = tmp_path / "p.jsonl", tmp_path / "p.jsonl.1"
    with PredictionLogger("svc", output=path, check_interval=None) as logger:
        logger.log_prediction("a", {}, 1, 1.0)
        os.rename(path, rotated)
        logger.log_prediction("b", {}, 1, 1.0)  # still the old inode, nothing lost
        assert not path.exists()
        logger.reopen()
        logger.log_prediction("c", {}, 1, 1.0)
    assert [r["request_id"] for r in _read_records(rotated)] == ["a", "b"]
    assert [r["request_id"] for r in _read_records(path)] == ["c"]


def test_rotation_by_rename_under_load_keeps_every_line(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    stop = threading.Event()
    written: list[int] = []
    with PredictionLogger("svc", output=path, check_interval=0.005) as logger:

        def work() -> None:
            i = 0
            while not stop.is_set() or i < 200:
                logger.log_prediction(str(i), _payload(i), 1, 1.0)
                written.append(i)
                i += 1

        thread = threading.Thread(target=work)
        thread.start()

        def wait_for_reopen() -> None:
            deadline = time.monotonic() + 10
            while not path.exists() and time.monotonic() < deadline:
                time.sleep(0.001)

        for n in range(1, 6):
            time.sleep(0.02)
            wait_for_reopen()
            os.rename(path, tmp_path / f"p.jsonl.{n}")
        wait_for_reopen()
        stop.set()
        thread.join()
    files = sorted(tmp_path.glob("p.jsonl*"))
    assert len(files) >= 6
    ids = sorted(int(r["request_id"]) for r in _read_records(*files))
    assert ids == written


def test_copytruncate_keeps_lines_and_leaves_no_hole(tmp_path: Path) -> None:
    path, rotated = tmp_path / "p.jsonl", tmp_path / "p.jsonl.1"
    with PredictionLogger("svc", output=path) as logger:
        for i in range(100):
            logger.log_prediction(f"a{i}", _payload(i), 1, 1.0)
        shutil.copyfile(path, rotated)  # what logrotate does with "copytruncate"
        with open(path, "r+b") as f:
            f.truncate(0)
        for i in range(10):
            logger.log_prediction(f"b{i}", {"i": i}, 1, 1.0)
    assert [r["request_id"] for r in _read_records(rotated)] == [f"a{i}" for i in range(100)]
    assert [r["request_id"] for r in _read_records(path)] == [f"b{i}" for i in range(10)]
    assert path.read_bytes().startswith(b'{"timestamp"')


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_child_of_fork_can_log_while_parent_holds_the_lock(tmp_path: Path) -> None:
    """A pre-forking server may fork while another thread is inside a write."""
    path = tmp_path / "p.jsonl"
    logger = PredictionLogger("svc", output=path)
    writer = logger._writer
    writer._lock.acquire()  # as if a thread were mid-write at fork() time
    try:
        pid = os.fork()
        if pid == 0:  # child
            try:
                logger.log_prediction("child", {}, 1, 1.0)
            finally:
                os._exit(0)
        deadline = time.monotonic() + 20
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                pytest.fail("the forked child deadlocked on the inherited lock")
            time.sleep(0.01)
    finally:
        writer._lock.release()
    logger.log_prediction("parent", {}, 1, 1.0)
    logger.close()
    assert os.waitstatus_to_exitcode(status) == 0
    assert sorted(r["request_id"] for r in _read_records(path)) == ["child", "parent"]


# --- outcomes (ground truth joined to predictions by request_id) --------------------------------

OUTCOME_KEYS = ["timestamp", "level", "event", "service", "model_version", "request_id", "actual"]


def test_outcome_entry_follows_the_contract_order() -> None:
    logger = PredictionLogger("churn-api", model_version="1.0.0", output=io.StringIO())
    before = datetime.now(UTC)
    entry = logger.create_outcome_entry("req-123", "churn", source="crm-sync")
    assert list(entry) == [*OUTCOME_KEYS, "source"]
    assert entry["event"] == "outcome" and entry["level"] == "info"
    assert entry["service"] == "churn-api" and entry["model_version"] == "1.0.0"
    assert entry["request_id"] == "req-123" and entry["actual"] == "churn"
    assert entry["source"] == "crm-sync"
    assert TIMESTAMP_RE.match(entry["timestamp"]), entry["timestamp"]
    stamped = datetime.fromisoformat(entry["timestamp"])
    assert before - timedelta(seconds=1) <= stamped <= datetime.now(UTC) + timedelta(seconds=1)
    # like predictions: no model_version key without one, an integer id becomes text
    bare = PredictionLogger("svc", output=io.StringIO()).create_outcome_entry(42, 3.25)
    assert "model_version" not in bare
    assert bare["request_id"] == "42" and bare["actual"] == 3.25


def test_outcome_model_version_of_the_call_overrides_the_loggers() -> None:
    logger = PredictionLogger("svc", model_version="1.0.0", output=io.StringIO())
    entry = logger.create_outcome_entry("r", 1, model_version="0.9.0")
    assert entry["model_version"] == "0.9.0"
    assert list(entry)[:7] == OUTCOME_KEYS


@pytest.mark.parametrize(
    "when",
    [
        datetime(2026, 3, 1, 12, 30, 15, 250000, tzinfo=UTC),
        datetime(2026, 3, 1, 12, 30, 15, 250000, tzinfo=UTC).astimezone(
            timezone(timedelta(hours=2))
        ),
        datetime(2026, 3, 1, 12, 30, 15, 250000),  # naive: taken as UTC
        datetime(2026, 3, 1, 12, 30, 15, 250000, tzinfo=UTC).timestamp(),  # unix seconds
        int(datetime(2026, 3, 1, 12, 30, 15, tzinfo=UTC).timestamp()),
    ],
)
def test_outcome_timestamp_says_when_the_label_became_known(when: object) -> None:
    """A labelling job running days later stamps the time the ground truth was known."""
    logger = PredictionLogger("svc", output=io.StringIO())
    entry = logger.create_outcome_entry("r", "stay", timestamp=when)
    assert TIMESTAMP_RE.match(entry["timestamp"]), entry["timestamp"]
    if isinstance(when, datetime):
        expected = when if when.tzinfo else when.replace(tzinfo=UTC)
    else:
        expected = datetime.fromtimestamp(when, UTC)
    assert datetime.fromisoformat(entry["timestamp"]) == expected


def test_outcome_line_equals_entry_and_is_one_json_line_per_call(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    with PredictionLogger("svc", model_version="2", output=path) as logger:
        logger.log_prediction("req-1", {"age": 35}, {"class": "churn"}, 4.0)
        entry = logger.create_outcome_entry("req-1", "churn", timestamp=1.7e9, zone="eu")
        for i in range(3):
            logger.log_outcome("req-1", "churn", timestamp=1.7e9, zone="eu")
            assert path.read_bytes().count(b"\n") == 2 + i
        assert json.loads(logger.render(entry)) == entry
    prediction, *outcomes = _read_records(path)
    assert prediction["event"] == "prediction"
    assert [o == entry for o in outcomes] == [True, True, True]  # same timestamp given
    assert list(outcomes[0]) == [*OUTCOME_KEYS, "zone"]


def test_outcome_extras_and_actual_go_through_the_pii_redactor(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    with PredictionLogger("svc", output=path) as logger:
        entry = logger.create_outcome_entry(
            "r1",
            "call back on +1 415 555 2671",
            reviewer_email="rev@example.com",
            note="confirmed by jane@example.com from 10.1.2.3",
            ticket={"customer_name": "Jane", "queue": "billing"},
        )
        logger.log_outcome(
            "r1",
            "call back on +1 415 555 2671",
            reviewer_email="rev@example.com",
            note="confirmed by jane@example.com from 10.1.2.3",
            ticket={"customer_name": "Jane", "queue": "billing"},
        )
    (record,) = _read_records(path)
    for rec in (entry, record):
        assert "reviewer_email" not in rec
        assert rec["note"] == "confirmed by [REDACTED:EMAIL] from [REDACTED:IP]"
        assert rec["ticket"] == {"queue": "billing"}
        assert rec["actual"] == "call back on [REDACTED:PHONE]"
        assert rec["request_id"] == "r1"  # never redacted, it is the join key
    assert "example.com" not in path.read_text()


def test_outcome_uses_the_loggers_own_processors(tmp_path: Path) -> None:
    def add_host(logger: object, method: str, event_dict: dict) -> dict:
        event_dict["host"] = "node-1"
        return event_dict

    with PredictionLogger("svc", output=tmp_path / "p.jsonl", processors=[add_host]) as logger:
        logger.log_outcome("r", 0)
        assert logger.create_outcome_entry("r", 0)["host"] == "node-1"
    (record,) = _read_records(tmp_path / "p.jsonl")
    assert record["host"] == "node-1" and record["actual"] == 0


def test_free_form_events_still_get_the_current_time() -> None:
    """Only an outcome's checked timestamp= is kept; any other timestamp key is overwritten."""
    out = io.StringIO()
    logger = PredictionLogger("svc", output=out)
    logger.logger.info("model_loaded", timestamp="not a time")
    record = json.loads(out.getvalue())
    assert TIMESTAMP_RE.match(record["timestamp"]), record["timestamp"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"actual": None}, "actual of request 'req-7' must be a class"),
        ({"actual": [1, 0]}, "actual of request 'req-7' must be a class"),
        ({"actual": {"class": 1}}, "actual of request 'req-7' must be a class"),
        ({"actual": float("nan")}, "actual of request 'req-7' must be finite"),
        ({"actual": float("inf")}, "actual of request 'req-7' must be finite"),
        ({"request_id": None}, "request_id must be a string"),
        ({"timestamp": "2026-01-01"}, "timestamp of the outcome of request 'req-7' must be"),
        ({"timestamp": True}, "timestamp of the outcome of request 'req-7' must be"),
        ({"timestamp": float("nan")}, "timestamp of the outcome of request 'req-7' is not"),
        ({"timestamp": 1e300}, "timestamp of the outcome of request 'req-7' is not"),
        ({"event": "x"}, "extra key 'event' is reserved"),
        ({"service": "x"}, "extra key 'service' is reserved"),
    ],
)
def test_bad_outcome_arguments_raise_one_readable_error(
    kwargs: dict, message: str, tmp_path: Path
) -> None:
    path = tmp_path / "p.jsonl"
    args = {"request_id": "req-7", "actual": 1, **kwargs}
    with PredictionLogger("svc", output=path) as logger:
        with pytest.raises(PredictionLogError, match=re.escape(message)):
            logger.log_outcome(**args)
        with pytest.raises(ValueError, match=re.escape(message)):
            logger.create_outcome_entry(**args)
    assert path.read_bytes() == b""  # nothing half-written


def test_threads_mixing_predictions_and_outcomes_write_only_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    n_threads, per_thread = 8, 200
    with PredictionLogger("svc", output=path) as logger:

        def work(t: int) -> None:
            for i in range(per_thread):
                if t % 2:
                    logger.log_outcome(f"{t}-{i}", i % 3, note="n" * ((i * 7919) % 20000))
                else:
                    logger.log_prediction(f"{t}-{i}", _payload(i), 1, 1.0)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    records = _read_records(path)
    outcomes = sorted(r["request_id"] for r in records if r["event"] == "outcome")
    predictions = sorted(r["request_id"] for r in records if r["event"] == "prediction")
    assert outcomes == sorted(f"{t}-{i}" for t in range(1, n_threads, 2) for i in range(per_thread))
    assert predictions == sorted(
        f"{t}-{i}" for t in range(0, n_threads, 2) for i in range(per_thread)
    )
    for r in records:
        if r["event"] == "outcome":
            i = int(r["request_id"].split("-")[1])
            assert r["actual"] == i % 3 and len(r["note"]) == (i * 7919) % 20000


# --- the probability schema -------------------------------------------------------------------


@pytest.mark.parametrize(
    "prediction",
    [
        {"class": "churn", "probabilities": {"churn": 0.7, "stay": 0.3}},
        {"class": "churn", "probabilities": {"churn": 0.7, "stay": 0.3}, "probability": 0.7},
        {"class": "stay", "probability": 0.6},
        {"class": 1, "probabilities": {0: 0.25, 1: 0.75}},  # integer classes
        {"class": True, "probabilities": {True: 0.4, False: 0.6}},  # not the argmax: allowed
        {"probabilities": {"a": 1.0, "b": 0.0}},  # no class: the reader may take the argmax
        {"class": "a", "probabilities": {"a": 1.0}},
    ],
)
def test_probability_schema_accepts_mappings_and_the_predicted_class_probability(
    prediction: dict,
) -> None:
    logger = PredictionLogger("svc", output=io.StringIO())
    entry = logger.create_log_entry("r", {"x": 1}, prediction, 1.0)
    assert entry["prediction"] == prediction


def test_probabilities_within_the_tolerance_pass_and_beyond_it_fail() -> None:
    import numpy as np

    from mlops_core.logging import PROBABILITY_SUM_TOLERANCE as tol

    logger = PredictionLogger("svc", output=io.StringIO())
    # a float32 softmax over 5000 classes: rounding leaves its sum off 1 by more than 1e-6
    logits = np.random.default_rng(0).normal(size=5000).astype(np.float32)
    soft = np.exp(logits - logits.max())
    soft = soft / soft.sum()
    probs = {f"c{i}": p for i, p in enumerate(soft)}
    logger.create_log_entry("r", {}, {"class": "c0", "probabilities": probs}, 1.0)
    for slack, ok in [(0.9 * tol, True), (-0.9 * tol, True), (2 * tol, False), (-2 * tol, False)]:
        pred = {"class": "a", "probabilities": {"a": 0.5 + slack, "b": 0.5}}
        if ok:
            logger.create_log_entry("r", {}, pred, 1.0)
        else:
            with pytest.raises(PredictionLogError, match="sum to"):
                logger.create_log_entry("r", {}, pred, 1.0)


@pytest.mark.parametrize(
    ("prediction", "message"),
    [
        ({"class": 1, "probabilities": [0.3, 0.7]}, "is a list: give a mapping of class ->"),
        ({"class": 1, "probabilities": (0.3, 0.7)}, "is a tuple: give a mapping"),
        ({"class": 1, "probabilities": 0.7}, "must be a mapping of class -> probability"),
        ({"class": 1, "probabilities": {}}, "is empty"),
        ({"class": "a", "probabilities": {"a": 0.6, "b": 0.3}}, "sum to 0.9, not 1"),
        ({"class": "a", "probabilities": {"a": 70, "b": 30}}, "must be a finite number in [0, 1]"),
        ({"class": "a", "probabilities": {"a": 1.2, "b": -0.2}}, "must be a finite number in"),
        ({"class": "a", "probabilities": {"a": float("nan"), "b": 1.0}}, "finite number"),
        ({"class": "a", "probabilities": {"a": "0.5", "b": 0.5}}, "finite number"),
        ({"class": "a", "probabilities": {"a": True, "b": False}}, "finite number"),
        ({"class": "c", "probabilities": {"a": 0.5, "b": 0.5}}, "prediction.class 'c' of request"),
        ({"class": 1, "probabilities": {1: 0.5, "1": 0.5}}, "names class '1' twice"),
        ({"class": 1.5, "probabilities": {1.5: 1.0}}, "class 1.5 in prediction.probabilities"),
        ({"probability": 0.8}, "needs prediction.class: it is the probability of the predicted"),
        ({"class": 1, "probability": 1.5}, "prediction.probability of request 'req-9' must be"),
        ({"class": 1, "probability": None}, "must be a finite number in [0, 1]"),
        (
            {"class": "a", "probabilities": {"a": 0.6, "b": 0.4}, "probability": 0.4},
            "is 0.4 but prediction.probabilities gives 0.6 to its class 'a'",
        ),
    ],
)
def test_probability_schema_violations_name_the_request(
    prediction: dict, message: str, tmp_path: Path
) -> None:
    path = tmp_path / "p.jsonl"
    with PredictionLogger("svc", output=path) as logger:
        with pytest.raises(PredictionLogError, match=re.escape(message)) as info:
            logger.log_prediction("req-9", {"x": 1}, prediction, 1.0)
        assert "'req-9'" in str(info.value) and "\n" not in str(info.value)
        assert isinstance(info.value, ValueError)
        with pytest.raises(PredictionLogError, match=re.escape(message)):
            logger.create_log_entry("req-9", {"x": 1}, prediction, 1.0)
    assert path.read_bytes() == b""


def test_a_numpy_array_of_probabilities_is_refused_like_a_list() -> None:
    import numpy as np

    logger = PredictionLogger("svc", output=io.StringIO())
    with pytest.raises(PredictionLogError, match="is a ndarray: give a mapping"):
        logger.create_log_entry("r", {}, {"class": 1, "probabilities": np.array([0.2, 0.8])}, 1.0)
    # numpy numbers inside a mapping are fine, and written as plain JSON numbers
    entry = logger.create_log_entry(
        "r", {}, {"class": 1, "probabilities": {0: np.float32(0.25), 1: np.float64(0.75)}}, 1.0
    )
    assert json.loads(logger.render(entry))["prediction"]["probabilities"] == {"0": 0.25, "1": 0.75}
