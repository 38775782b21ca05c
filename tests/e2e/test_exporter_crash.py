"""SIGKILL at random moments: no line lost, none counted twice, no counter ever goes down.

The real exporter is started on a log with ``logs.state_file``, killed with SIGKILL at random
moments and started again, while a scraper reads ``/metrics`` over HTTP all along.  Checked:

- after the last restart every counter family (lines, invalid lines by reason, other events,
  predictions, classes, bucket observations, the latency histogram, bytes read) equals one
  uninterrupted in-process pass over the final log files: no loss, no double count;
- every checkpoint left by a killed process is consistent: its counters count exactly the
  lines before its offsets (under steady traffic: every counter family, against a pass over
  the log cut at the saved offset);
- no counter sample a scrape saw ever goes down, across every kill and restart.

Two situations: steady traffic (a writer appends while the exporter is killed and restarted,
partial lines included), and the start-up catch-up of a two-million-line backlog.
"""

from __future__ import annotations

import itertools
import json
import random
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.config import load_config, load_reference
from exporter.ingest import IngestCounters, Ingestor, IngestSnapshot
from exporter.records import RecordParser, count_lines
from exporter.tail import LogFollower
from exporter.window import Window
from tests.e2e._exporter import ExporterProcess, start_exporter, write_config

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MAX_LINE = 4096


# --- what the log files say -----------------------------------------------------------------


def oracle(config_path: Path, paths: list[str] | None = None) -> IngestSnapshot:
    """Every counter from one uninterrupted pass over the log files, in this process."""
    config = load_config(config_path, {})
    profile, features = load_reference(config)
    follower = LogFollower(
        paths or list(config.logs.paths), start_position="beginning", max_line_bytes=MAX_LINE
    )
    parser = RecordParser(
        features,
        latency_field=config.latency.field,
        class_field=config.prediction.class_field,
        max_line_bytes=MAX_LINE,
    )
    counters = IngestCounters(
        profile,
        list(features),
        latency_buckets=config.latency.buckets,
        max_classes=config.prediction.max_classes,
    )
    window = Window(profile, list(features), max_samples=10)
    ingestor = Ingestor(follower, parser, window, counters)
    with follower:
        while ingestor.run_once() or not follower.caught_up:
            pass
    return counters.snapshot()


def expected_samples(snap: IngestSnapshot) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The counter samples /metrics must show for ``snap`` (model ``e2e``)."""
    m = ("model", "e2e")
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {
        ("mlops_log_lines_total", (m,)): snap.lines_total,
        ("mlops_log_lines_other_events_total", (m,)): snap.other_events_total,
        ("mlops_predictions_total", (m,)): snap.predictions_total,
        ("mlops_prediction_latency_seconds_count", (m,)): snap.latency_count,
        ("mlops_log_bytes_read_total", ()): snap.bytes_read,
        ("mlops_log_rotations_total", ()): snap.rotations,
        ("mlops_log_truncations_total", ()): snap.truncations,
    }
    for reason, value in snap.invalid_total.items():
        out[("mlops_log_lines_invalid_total", (m, ("reason", reason)))] = value
    for cls, value in snap.class_counts.items():
        out[("mlops_prediction_class_total", (("class", cls), m))] = value
    for feature, labels in snap.bucket_labels.items():
        for bucket, value in zip(labels, snap.bucket_observations[feature].tolist(), strict=True):
            key = (("bucket", bucket), ("feature", feature), m)
            out[("mlops_feature_bucket_observations_total", key)] = value
    cumulative = snap.latency_bucket_counts.tolist()
    bounds = [*map(_le, snap.latency_bucket_bounds), "+Inf"]
    for le, value in zip(bounds, cumulative, strict=True):
        out[("mlops_prediction_latency_seconds_bucket", (("le", le), m))] = value
    return {k: float(v) for k, v in out.items()}


def _le(bound: float) -> str:
    from prometheus_client.utils import floatToGoString

    return floatToGoString(bound)


def assert_checkpoint_exact(state: Path, log: Path, config: Path, tmp: Path) -> None:
    """Every saved counter equals one pass over the log up to the saved offset."""
    record = json.loads(state.read_bytes())
    (position,) = [f for f in record["files"] if f["path"] == str(log)]
    prefix = log.read_bytes()[: position["offset"]]
    if position["skipping"]:  # the over-long line being skipped is counted already
        prefix += b"\n"
    (tmp / "prefix.jsonl").write_bytes(prefix)
    want = oracle(config, [str(tmp / "prefix.jsonl")])
    saved = record["counters"]
    assert saved["lines"] == want.lines_total
    assert saved["other_events"] == want.other_events_total
    assert {k: v for k, v in saved["invalid"].items() if v} == {
        k: v for k, v in want.invalid_total.items() if v
    }
    model = saved["models"]["e2e"]  # each model's prediction counters, in the same record
    assert model["predictions"] == want.predictions_total
    assert dict(model["classes"]) == dict(want.class_counts)
    for feature, part in model["buckets"].items():
        assert part["counts"] == want.bucket_observations[feature].tolist(), feature
    assert list(itertools.accumulate(model["latency"]["counts"])) == (
        want.latency_bucket_counts.tolist()
    )
    assert model["latency"]["count"] == want.latency_count


def assert_checkpoint_consistent(state: Path, log: Path) -> int:
    """The saved counters count exactly the lines before the saved offset; returns it."""
    record = json.loads(state.read_bytes())
    (position,) = [f for f in record["files"] if f["path"] == str(log)]
    with log.open("rb") as handle:
        prefix = handle.read(position["offset"])
    if position["skipping"]:  # inside an over-long line, already counted as too_long
        assert record["counters"]["lines"] == count_lines(prefix) + (not prefix.endswith(b"\n"))
    else:
        assert prefix == b"" or prefix.endswith(b"\n"), "an offset inside a line"
        assert record["counters"]["lines"] == count_lines(prefix)
    assert record["follower"]["bytes_read"] == position["offset"]
    return int(position["offset"])


# --- scraping all along ----------------------------------------------------------------------


class Scraper(threading.Thread):
    """Scrapes whichever exporter is running, records every ``mlops_*`` counter's high mark.

    A sample below the highest value seen for it before (in this or an earlier process)
    is a counter that went down: recorded in ``decreases``.
    """

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.target: ExporterProcess | None = None
        self.high: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self.decreases: list[str] = []
        self.scrapes = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            target = self.target
            if target is None or target.proc.poll() is not None:
                time.sleep(0.01)
                continue
            try:
                status, _, body = target.get("/metrics")
            except Exception:  # killed between the check and the request, or during it
                continue
            if status != 200:
                continue
            self.scrapes += 1
            for family in text_string_to_metric_families(body.decode()):
                # process_* and python_* describe one process: they restart with it.
                if family.type not in ("counter", "histogram") or family.name[:6] != "mlops_":
                    continue
                for s in family.samples:
                    if s.name.endswith("_created"):
                        continue
                    key = (s.name, tuple(sorted(s.labels.items())))
                    before = self.high.get(key, 0.0)
                    if s.value < before:
                        self.decreases.append(f"{key}: {before} -> {s.value}")
                    self.high[key] = max(before, s.value)
            time.sleep(0.02)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


@pytest.fixture
def scraper() -> Iterator[Scraper]:
    thread = Scraper()
    thread.start()
    yield thread
    thread.stop()


def kill(exp: ExporterProcess) -> None:
    exp.proc.send_signal(signal.SIGKILL)
    exp.proc.wait(timeout=10)
    assert exp.proc.returncode == -signal.SIGKILL


def wait_lines(exp: ExporterProcess, n: int, timeout: float) -> None:
    exp.wait_for(
        lambda s: s.get("mlops_log_lines_total", model="e2e") == n,
        timeout,
        f"{n} lines",
    )


def assert_every_counter_exact(
    exp: ExporterProcess, config: Path, paths: list[str] | None = None
) -> None:
    """Every counter served equals one pass over ``paths`` (default: the config's)."""
    want = expected_samples(oracle(config, paths))
    want.pop(("mlops_log_rotations_total", ()))  # a pass over the files sees none
    got = exp.scrape()
    wrong = {
        f"{name}{dict(labels)}": (got.samples.get((name, labels)), value)
        for (name, labels), value in want.items()
        if got.samples.get((name, labels)) != value
    }
    assert not wrong, f"(served, from the logs): {wrong}"
    want_sum = float(oracle(config, paths).latency_sum)
    assert got.get("mlops_prediction_latency_seconds_sum", model="e2e") == pytest.approx(
        want_sum, rel=1e-9
    )


# --- steady traffic --------------------------------------------------------------------------


class Writer(threading.Thread):
    """Appends about 2,000 lines/s of mixed lines, some split across two writes."""

    def __init__(self, log: Path, seed: int = 7) -> None:
        super().__init__(daemon=True)
        self.log = log
        self.rng = random.Random(seed)
        self.lines = 0
        self._halt = threading.Event()

    def line(self) -> bytes:
        r = self.rng.random()
        if r < 0.03:
            return b'{"event": "prediction", "input_data": {"x": 1'  # cut short
        if r < 0.06:
            return b'{"event": "model_reloaded", "version": "2"}'
        if r < 0.08:
            return b'{"event": "prediction", "input_data": {"x": "1.5"}}'  # wrong type
        if r < 0.085:
            return b'{"event": "other", "blob": "' + b"b" * MAX_LINE + b'"}'  # too long
        record = {
            "event": "prediction",
            "input_data": {
                "x": round(self.rng.gauss(0, 1), 4),
                "y": round(self.rng.gauss(10, 2), 3),
                "plan": self.rng.choice(["a", "b", "c", "d"]),
            },
            "prediction": {"class": self.rng.choice(["yes", "no", "maybe"])},
            "latency_ms": round(self.rng.lognormvariate(3, 0.7), 3),
        }
        return orjson.dumps(record)

    def run(self) -> None:
        with self.log.open("ab", buffering=0) as handle:
            while not self._halt.is_set():
                batch = [self.line() for _ in range(20)]
                data = b"".join(line + b"\n" for line in batch)
                if self.rng.random() < 0.3:  # a line split across two writes
                    cut = self.rng.randrange(1, len(data) - 1)
                    handle.write(data[:cut])
                    time.sleep(0.002)
                    data = data[cut:]
                handle.write(data)
                self.lines += len(batch)
                time.sleep(0.01)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


def test_sigkill_during_steady_traffic_neither_loses_nor_double_counts(
    tmp_path: Path, scraper: Scraper
) -> None:
    state = tmp_path / "state" / "checkpoint.json"
    config = write_config(tmp_path, extra=f", state_file: {state}, max_line_bytes: {MAX_LINE}")
    log = tmp_path / "logs" / "app.jsonl"
    log.touch()
    writer = Writer(log)
    writer.start()
    rng = random.Random(11)
    kills = 6
    offsets = []
    try:
        for _ in range(kills):
            exp = start_exporter(config)
            scraper.target = exp
            time.sleep(rng.uniform(0.3, 2.5))
            kill(exp)
            offsets.append(assert_checkpoint_consistent(state, log))
            assert_checkpoint_exact(state, log, config, tmp_path)
        exp = start_exporter(config)
        scraper.target = exp
        time.sleep(1.0)
    finally:
        writer.stop()
    try:
        wait_lines(exp, writer.lines, timeout=30)
        assert_every_counter_exact(exp, config)
    finally:
        assert exp.stop() == 0
    assert offsets == sorted(offsets) and offsets[-1] > 0  # every run moved on
    assert scraper.scrapes > 50
    assert not scraper.decreases, scraper.decreases[:5]


class RotatingWriter(Writer):
    """:class:`Writer`, renaming the log away (``app.jsonl.1``, ``.2``, ...: names the
    pattern does not match) every ``every`` lines, as a size-based rotation does."""

    def __init__(self, log: Path, every: int) -> None:
        super().__init__(log, seed=9)
        self.every = every
        self.rotations = 0

    def run(self) -> None:
        while not self._halt.is_set():
            written = 0
            with self.log.open("ab", buffering=0) as handle:
                while written < self.every and not self._halt.is_set():
                    batch = [self.line() for _ in range(20)]
                    handle.write(b"".join(line + b"\n" for line in batch))
                    self.lines += len(batch)
                    written += len(batch)
                    time.sleep(0.002)
            if not self._halt.is_set():
                self.rotations += 1
                self.log.rename(self.log.with_name(f"{self.log.name}.{self.rotations}"))


def test_sigkill_while_the_log_rotates_fast_counts_every_file_once(
    tmp_path: Path, scraper: Scraper
) -> None:
    """Rotations faster than the restarts: some files are created *and* rotated away while
    the exporter is down, under names ``logs.paths`` does not match.  Every line of every
    file is counted once."""
    state = tmp_path / "state" / "checkpoint.json"
    config = write_config(tmp_path, extra=f", state_file: {state}, max_line_bytes: {MAX_LINE}")
    log = tmp_path / "logs" / "app.jsonl"
    log.touch()
    writer = RotatingWriter(log, every=2000)
    rng = random.Random(5)
    exp = start_exporter(config)
    writer.start()
    try:
        for _ in range(6):
            scraper.target = exp
            time.sleep(rng.uniform(0.2, 1.0))
            kill(exp)
            time.sleep(rng.uniform(0.5, 1.5))  # down: the writer rotates on
            exp = start_exporter(config)
        scraper.target = exp
        time.sleep(0.5)
    finally:
        writer.stop()
    try:
        assert writer.rotations >= 4, writer.rotations  # some happened while it was down
        wait_lines(exp, writer.lines, timeout=30)
        files = [str(log), *(f"{log}.{i}" for i in range(1, writer.rotations + 1))]
        assert_every_counter_exact(exp, config, files)
        assert exp.scrape().get("mlops_log_rotations_total") == writer.rotations
    finally:
        assert exp.stop() == 0
    assert not scraper.decreases, scraper.decreases[:5]


# --- the start-up catch-up of a large backlog ------------------------------------------------


def backlog(log: Path, n_lines: int) -> None:
    """``n_lines`` short prediction lines (about 100 bytes each), written in one go."""
    rng = np.random.default_rng(0)
    templates = [
        orjson.dumps(
            {
                "event": "prediction",
                "input_data": {
                    "x": round(float(rng.normal()), 3),
                    "y": round(float(rng.normal(10, 2)), 2),
                    "plan": str(rng.choice(["a", "b", "c"])),
                },
                "latency_ms": round(float(rng.lognormal(3, 0.5)), 1),
                "prediction": int(i % 3),
            }
        )
        + b"\n"
        for i in range(1000)
    ]
    block = b"".join(templates)
    with log.open("wb") as handle:
        for _ in range(n_lines // 1000):
            handle.write(block)


def test_sigkill_during_a_two_million_line_catch_up_neither_loses_nor_double_counts(
    tmp_path: Path, scraper: Scraper
) -> None:
    n_lines = 2_000_000
    state = tmp_path / "state" / "checkpoint.json"
    config = write_config(tmp_path, extra=f", state_file: {state}, max_line_bytes: {MAX_LINE}")
    log = tmp_path / "logs" / "app.jsonl"
    backlog(log, n_lines)
    rng = random.Random(5)
    progress = []
    for _ in range(4):
        exp = start_exporter(config, wait_ready=False)
        scraper.target = exp
        # The whole catch-up takes a few seconds on a loaded 2-CPU machine: each run gets
        # under a second of it, killed before, between or right after checkpoints.
        time.sleep(rng.uniform(0.1, 0.8))
        kill(exp)
        if state.exists():
            progress.append(assert_checkpoint_consistent(state, log))
    assert progress, "no checkpoint at all"
    assert progress[-1] < log.stat().st_size, "the catch-up was over before the last kill"
    exp = start_exporter(config, wait_ready=False)
    scraper.target = exp
    try:
        wait_lines(exp, n_lines, timeout=60)
        assert_every_counter_exact(exp, config)
    finally:
        assert exp.stop() == 0
    assert progress == sorted(progress)
    assert not scraper.decreases, scraper.decreases[:5]
