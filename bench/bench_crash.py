"""Crash benchmark: what SIGKILL does to the counters, as Prometheus adds them up.

    python bench/bench_crash.py [--lines 2000000] [--kills 4] [--steady 6] [--root PATH]

Starts the real ``mlops-exporter`` (from ``--root``, default this checkout: pass an older
checkout to compare) with ``logs.state_file`` set, scrapes ``mlops_log_lines_total`` about
50 times a second, and kills it with SIGKILL at random moments, in two situations:

- **catch-up**: a backlog of ``--lines`` short prediction lines, read from the beginning;
  ``--kills`` kills during the start-up catch-up, then a last run reads to the end;
- **steady**: a writer appends about 2,000 lines/s while the exporter is killed
  ``--steady`` times and restarted, then stops; a last run catches up.

For each it prints the lines in the files, the value served at the end, the total that
Prometheus' ``increase()`` would compute over the whole run (a decrease is taken as a
counter reset, as Prometheus does), and the difference: lines counted twice (or lost), and
how many scrapes saw the counter go down.
"""

from __future__ import annotations

import argparse
import random
import signal
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
from _exporter import ROOT, start_exporter


class Exporter:
    """One ``python -m exporter.cli`` process of the checkout at ``root``."""

    def __init__(self, root: Path, config: Path) -> None:
        self.proc, port = start_exporter(config, root)
        self.url = f"http://127.0.0.1:{port}/metrics"

    def lines_total(self) -> float | None:
        try:
            with urllib.request.urlopen(self.url, timeout=5) as response:
                text = response.read().decode()
        except Exception:
            return None
        for line in text.splitlines():
            if line.startswith("mlops_log_lines_total{"):
                return float(line.rsplit(" ", 1)[1])
        return None

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)


class Prometheus(threading.Thread):
    """Scrapes the running exporter and adds the counter up as ``increase()`` would."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.target: Exporter | None = None
        self.total = 0.0
        self.last: float | None = None
        self.decreases = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            target = self.target
            value = target.lines_total() if target is not None else None
            if value is not None:
                if self.last is None or value < self.last:
                    self.decreases += self.last is not None
                    self.total += value  # a reset: everything since counts as new
                else:
                    self.total += value - self.last
                self.last = value
            time.sleep(0.02)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def config_file(tmp: Path, state: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = ["x,y,plan"] + [
        f"{a:.4f},{b:.4f},{c}"
        for a, b, c in zip(
            rng.normal(0, 1, 2000),
            rng.normal(10, 2, 2000),
            rng.choice(list("abc"), 2000),
            strict=True,
        )
    ]
    (tmp / "ref.csv").write_text("\n".join(rows) + "\n")
    (tmp / "logs").mkdir()
    path = tmp / "config.yml"
    path.write_text(
        "model: {name: bench}\n"
        f"logs: {{paths: [{tmp}/logs/*.jsonl], start_position: beginning, "
        f"poll_interval: 50ms, state_file: {state}}}\n"
        f"reference: {{path: {tmp}/ref.csv}}\n"
        "drift: {interval: 1s, min_samples: 100}\n"
    )
    return path


def line(rng: random.Random, i: int) -> bytes:
    x, y, plan = round(rng.gauss(0, 1), 3), round(rng.gauss(10, 2), 2), rng.choice("abc")
    return (
        f'{{"event":"prediction","input_data":{{"x":{x},"y":{y},"plan":"{plan}"}},'
        f'"latency_ms":{round(rng.lognormvariate(3, 0.5), 1)},"prediction":{i % 3}}}\n'
    ).encode()


def wait_for(exporter: Exporter, value: int, timeout: float) -> float | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = exporter.lines_total()
        if seen == value:
            return seen
        time.sleep(0.1)
    return exporter.lines_total()


def kill_at_random(
    root: Path,
    config: Path,
    prom: Prometheus,
    kills: int,
    rng: random.Random,
    within: tuple[float, float],
) -> Exporter:
    """``kills`` runs of the exporter, each SIGKILLed a random ``within`` seconds after it
    started, with ``prom`` scraping each; then the last run, started and being scraped."""
    for _ in range(kills):
        exporter = Exporter(root, config)
        prom.target = exporter
        time.sleep(rng.uniform(*within))
        prom.target = None
        exporter.kill()
    exporter = Exporter(root, config)
    prom.target = exporter
    return exporter


def report(situation: str, truth: int, served: float | None, prom: Prometheus) -> None:
    diff = prom.total - truth
    print(
        f"{situation}: lines in the files {truth:,}; served at the end {served or 0:,.0f}; "
        f"as increase() adds it up {prom.total:,.0f}; "
        f"{'counted twice' if diff >= 0 else 'lost'} {abs(diff):,.0f}; "
        f"scrapes that saw it go down {prom.decreases}"
    )


def catch_up(root: Path, n_lines: int, kills: int, seed: int) -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        config = config_file(tmp, tmp / "state.json")
        rng = random.Random(seed)
        block = b"".join(line(rng, i) for i in range(1000))
        with (tmp / "logs" / "app.jsonl").open("wb") as handle:
            for _ in range(n_lines // 1000):
                handle.write(block)
        prom = Prometheus()
        prom.start()
        started = time.perf_counter()
        exporter = kill_at_random(root, config, prom, kills, rng, within=(0.1, 0.8))
        served = wait_for(exporter, n_lines // 1000 * 1000, timeout=120)
        time.sleep(0.3)
        prom.stop()
        exporter.stop()
        took = time.perf_counter() - started
        situation = f"catch-up of {n_lines:,} lines, {kills} SIGKILLs ({took:.0f} s)"
        report(situation, n_lines // 1000 * 1000, served, prom)


def steady(root: Path, kills: int, seed: int) -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        config = config_file(tmp, tmp / "state.json")
        log = tmp / "logs" / "app.jsonl"
        log.touch()
        written = [0]
        halt = threading.Event()

        def write() -> None:
            wrng = random.Random(seed + 1)
            with log.open("ab", buffering=0) as handle:
                while not halt.is_set():
                    handle.write(b"".join(line(wrng, i) for i in range(20)))
                    written[0] += 20
                    time.sleep(0.01)

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        rng = random.Random(seed)
        prom = Prometheus()
        prom.start()
        exporter = kill_at_random(root, config, prom, kills, rng, within=(1.0, 6.0))
        time.sleep(1.0)
        halt.set()
        writer.join()
        served = wait_for(exporter, written[0], timeout=60)
        time.sleep(0.3)
        prom.stop()
        exporter.stop()
        report(f"steady ~2,000 lines/s, {kills} SIGKILLs", written[0], served, prom)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=2_000_000)
    parser.add_argument("--kills", type=int, default=4)
    parser.add_argument("--steady", type=int, default=6, help="kills under steady traffic")
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout of the exporter")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    print(f"exporter from {args.root}")
    catch_up(args.root.resolve(), args.lines, args.kills, args.seed)
    if args.steady:
        steady(args.root.resolve(), args.steady, args.seed)


if __name__ == "__main__":
    main()
