"""SIGKILL with predictions awaiting their outcome: none lost, none joined twice, the outcome
counters exact and never going down.

The store commits a poll's rows before the offsets checkpoint that covers them, and skips a
line it applied before: what the follower reads again after a kill changes nothing.  The
real exporter is killed and started again while a writer appends predictions to one file
and their outcomes to another (some before their prediction, some twice), and a scraper
reads /metrics all along.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from tests.e2e._exporter import ExporterProcess, append, start_exporter
from tests.e2e.test_exporter_crash import Scraper, kill
from tests.e2e.test_exporter_quality import outcome, prediction, quality_config

pytestmark = pytest.mark.e2e

M = {"model": "e2e"}
OUTCOMES = "{paths: [labels/*.jsonl], early_grace: 1h}"


def config_for(tmp_path: Path, checkpoint: str = "1s") -> Path:
    config = quality_config(tmp_path, outcomes=OUTCOMES, quality="{min_samples: 10}")
    text = config.read_text().replace("poll_interval: 50ms", f"poll_interval: 50ms, "
                                      f"checkpoint_interval: {checkpoint}")  # fmt: skip
    config.write_text(text)
    return config


def lines(records: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in records)


def wait_for(exp: ExporterProcess, want: dict[str, float], timeout: float = 30.0):
    def done(s) -> bool:
        return all(s.get(name, **M) == value for name, value in want.items())

    return exp.wait_for(done, timeout, f"{want}")


def test_predictions_pending_across_a_sigkill_are_all_joined_once(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    preds, labels = tmp_path / "logs" / "app.jsonl", tmp_path / "labels" / "o.jsonl"
    labels.parent.mkdir()
    now = time.time()
    append(preds, lines([prediction(f"p{i}", now, {"class": "ab"[i % 2]}) for i in range(500)]))
    exp = start_exporter(config)
    wait_for(exp, {"mlops_predictions_awaiting_outcome": 500, "mlops_predictions_total": 500})
    kill(exp)
    append(labels, lines([outcome(f"p{i}", "a", now + 1) for i in range(500)]))
    exp = start_exporter(config)
    try:
        s = wait_for(exp, {"mlops_outcomes_total": 500, "mlops_predictions_awaiting_outcome": 0})
        time.sleep(1.0)  # a few passes and checkpoints later: still exactly once
        s = exp.scrape()
    finally:
        assert exp.stop() == 0
    assert s.get("mlops_outcomes_total", **M) == 500
    assert s.get("mlops_outcomes_unmatched_total", reason="duplicate", **M) == 0
    assert s.get("mlops_outcome_confusion_total", predicted="a", actual="a", **M) == 250
    assert s.get("mlops_outcome_confusion_total", predicted="b", actual="a", **M) == 250
    assert s.get("mlops_outcomes_correct_total", **M) == 250
    assert s.get("mlops_quality_window_samples", **M) == 500
    assert s.get("mlops_model_quality", metric="accuracy", **M) == 0.5


class Workload(threading.Thread):
    """Writes predictions to one file and outcomes to another, at about 1,500 lines/s.

    Of every id: an outcome for 70 % (20 to 60 lines after its prediction), 5 % with the
    outcome written first, 4 % with a second outcome (the first wins), the rest none.
    """

    def __init__(self, tmp_path: Path, n: int, seed: int = 3) -> None:
        super().__init__(daemon=True)
        rng = random.Random(seed)
        self.preds = tmp_path / "logs" / "app.jsonl"
        self.labels = tmp_path / "labels" / "o.jsonl"
        self.labels.parent.mkdir(exist_ok=True)
        now = time.time()
        self.steps: list[tuple[Path, dict[str, Any]]] = []
        late: dict[int, list[dict[str, Any]]] = {}
        self.first: dict[str, tuple[str, str, float]] = {}  # id -> predicted, actual, delay
        self.duplicates = 0
        self.pending = 0
        for i in range(n):
            rid, t = f"w{i}", now + i * 0.001
            cls = rng.choice("xyz")
            actual = cls if rng.random() < 0.6 else rng.choice("xyz")
            delay = rng.choice([0.5, 5.0, 120.0, 7200.0])
            kind = rng.random()
            if kind < 0.05:  # the outcome first
                self.steps.append((self.labels, outcome(rid, actual, t + delay)))
            self.steps.append((self.preds, prediction(rid, t, {"class": cls})))
            if kind < 0.75:
                self.first[rid] = (cls, actual, delay)
                if kind >= 0.05:
                    late.setdefault(i + rng.randrange(20, 60), []).append(
                        outcome(rid, actual, t + delay)
                    )
                if 0.71 <= kind < 0.75:  # and once more, with another actual: ignored
                    self.duplicates += 1
                    late.setdefault(i + 70, []).append(outcome(rid, "other", t + delay + 1))
            else:
                self.pending += 1
            self.steps += [(self.labels, o) for o in late.pop(i, [])]
        self.steps += [(self.labels, o) for k in sorted(late) for o in late[k]]
        self.done = threading.Event()

    def run(self) -> None:
        for start in range(0, len(self.steps), 30):
            chunk = self.steps[start : start + 30]
            for path in (self.preds, self.labels):
                data = lines([r for p, r in chunk if p == path])
                if data:
                    append(path, data)
            time.sleep(0.02)
        self.done.set()


@pytest.mark.slow
def test_sigkill_at_random_moments_joins_every_outcome_exactly_once(tmp_path: Path) -> None:
    config = config_for(tmp_path, checkpoint="2s")  # more lines read again after each kill
    work = Workload(tmp_path, n=8000)
    work.preds.touch()
    scraper = Scraper()
    scraper.start()
    rng = random.Random(17)
    killed: list[ExporterProcess] = []
    try:
        work.start()
        while not work.done.is_set() or len(killed) < 3:
            exp = start_exporter(config, wait_ready=False)
            scraper.target = exp
            time.sleep(rng.uniform(0.4, 2.0))
            kill(exp)
            killed.append(exp)
        exp = start_exporter(config)
        scraper.target = exp
        joined = len(work.first)
        try:
            s = wait_for(
                exp,
                {
                    "mlops_predictions_total": 8000,
                    "mlops_outcomes_total": joined,
                    "mlops_predictions_awaiting_outcome": work.pending,
                },
                timeout=60,
            )
            time.sleep(0.5)
            s = exp.scrape()
        finally:
            assert exp.stop() == 0
    finally:
        scraper.stop()
    assert len(killed) >= 3
    replayed = [e for p in [*killed, exp] for e in p.stderr_lines if "outcome_lines_replayed" in e]
    assert replayed, "no kill made the store see a line twice: the test proved nothing"
    unmatched = s.having("mlops_outcomes_unmatched_total")
    assert {dict(k)["reason"]: v for k, v in unmatched.items()} == {
        "unknown_request": 0, "expired": 0, "duplicate": work.duplicates, "invalid": 0,
        "evicted": 0,
    }  # fmt: skip
    confusion: dict[tuple[str, str], int] = {}
    for predicted, actual, _ in work.first.values():
        confusion[(predicted, actual)] = confusion.get((predicted, actual), 0) + 1
    served = {
        (dict(k)["predicted"], dict(k)["actual"]): v
        for k, v in s.having("mlops_outcome_confusion_total").items()
    }
    assert served == confusion
    assert s.get("mlops_outcomes_correct_total", **M) == sum(
        v for (p, a), v in confusion.items() if p == a
    )
    delays = np.array([d for _, _, d in work.first.values()])
    for labels, count in s.having("mlops_outcome_delay_seconds_bucket").items():
        assert count == int(np.sum(delays <= float(dict(labels)["le"]))), labels
    assert s.get("mlops_quality_window_samples", **M) == joined
    assert scraper.scrapes > 20
    assert not scraper.decreases, scraper.decreases[:5]
