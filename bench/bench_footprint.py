"""The sidecar's footprint: start-up time, RSS and CPU per 1,000 predictions/s, next to mtail.

    python bench/bench_footprint.py [--features 20] [--rate 1000] [--seconds 30]

Starts the real ``mlops-exporter`` (20 features: 16 numeric, 4 categorical; a 5,000-row
reference; drift pass every 5 s) and, in the same run, mtail with bench/mtail/'s latency
program, both following one log file that a writer thread appends ``--rate`` prediction
lines per second to.  Prints, for each: the time from process start to the first
``/metrics`` answer, the RSS at the end (VmRSS) and its peak (VmHWM), and the CPU used per
second of traffic as a share of one core.  Targets (issue 12): RSS <= 75 MB and start-up
<= 0.4 s at 20 features.  Loopback only; everything stops by itself.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_reference(path: Path, features: int, rng: np.random.Generator) -> list[str]:
    numeric = [f"x{i}" for i in range(features - features // 5)]
    categorical = [f"c{i}" for i in range(features // 5)]
    rows = 5000
    cols = {n: rng.normal(50, 15, rows).round(3) for n in numeric}
    cols.update({c: rng.choice(["a", "b", "c", "d"], rows) for c in categorical})
    with path.open("w", encoding="utf-8") as out:
        out.write(",".join(cols) + "\n")
        for i in range(rows):
            out.write(",".join(str(cols[n][i]) for n in cols) + "\n")
    return list(cols)


def line(i: int, names: list[str], rng: np.random.Generator) -> str:
    values = ",".join(
        f'"{n}":"{rng.choice(["a", "b", "c", "d"])}"' if n.startswith("c")
        else f'"{n}":{rng.normal(50, 15):.3f}'
        for n in names
    )  # fmt: skip
    return (
        f'{{"timestamp":"{time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())}.000000Z",'
        f'"event":"prediction","request_id":"r{i}","input_data":{{{values}}},'
        f'"prediction":{{"class":{i % 3},"probability":0.7}},'
        f'"latency_ms":{rng.lognormal(3, 0.8):.3f}}}\n'
    )


class Writer(threading.Thread):
    """Appends ``rate`` lines per second in batches of 1/20 s until stopped."""

    def __init__(self, path: Path, names: list[str], rate: int) -> None:
        super().__init__(daemon=True)
        self.path, self.names, self.rate = path, names, rate
        self.stop = threading.Event()
        self.written = 0

    def run(self) -> None:
        rng = np.random.default_rng(1)
        batch = max(1, self.rate // 20)
        started = time.monotonic()
        with self.path.open("a", encoding="utf-8") as out:
            while not self.stop.is_set():
                out.write("".join(line(self.written + j, self.names, rng) for j in range(batch)))
                out.flush()
                self.written += batch
                due = started + self.written / self.rate
                self.stop.wait(max(0.0, due - time.monotonic()))


def proc_status(pid: int) -> dict[str, int]:
    out = {}
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = row.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])  # kB
    return out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for_metrics(port: int, proc: subprocess.Popen[bytes], deadline: float) -> float:
    started = time.monotonic()
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as r:
                if r.status == 200:
                    return time.monotonic() - started
        except OSError:
            time.sleep(0.005)
    raise RuntimeError("never answered /metrics")


def measure(cmd: list[str], port: int, log: Path, names: list[str], args) -> dict[str, float]:
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    try:
        wait_for_metrics(port, proc, started + 30)
        startup = time.monotonic() - started
        writer = Writer(log, names, args.rate)
        cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        writer.start()
        time.sleep(args.seconds)
        writer.stop.set()
        writer.join()
        cpu1, t1 = cpu_seconds(proc.pid), time.monotonic()
        status = proc_status(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    return {
        "startup": startup,
        "rss": status["VmRSS"] / 1024,
        "peak": status["VmHWM"] / 1024,
        "cpu": (cpu1 - cpu0) / (t1 - t0),
        "lines": writer.written,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--rate", type=int, default=1000, help="prediction lines per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="traffic per process")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        names = make_reference(tmpdir / "ref.csv", args.features, rng)
        results: dict[str, dict[str, float]] = {}

        log = tmpdir / "exporter.jsonl"
        log.touch()
        port = free_port()
        config = tmpdir / "config.yml"
        config.write_text(
            f"model: {{name: bench}}\nlogs: {{paths: [{log}], start_position: beginning}}\n"
            f"reference: {{path: {tmpdir / 'ref.csv'}}}\ndrift: {{interval: 5s}}\n"
        )
        cmd = [sys.executable, "-m", "exporter.cli", f"--config.file={config}",
               f"--web.listen-address=127.0.0.1:{port}", "--log.level=warning"]  # fmt: skip
        results["mlops-exporter"] = measure(cmd, port, log, names, args)

        mtail = shutil.which("mtail")
        if mtail:
            log = tmpdir / "mtail.jsonl"
            log.touch()
            port = free_port()
            cmd = [mtail, "--logtostderr", "--address=127.0.0.1", f"--port={port}",
                   f"--progs={ROOT / 'bench' / 'mtail'}", f"--logs={log}"]  # fmt: skip
            results["mtail (latency only)"] = measure(cmd, port, log, names, args)

    print(
        f"footprint: {args.features} features, {args.rate} predictions/s for "
        f"{args.seconds:g} s per process (one run)"
    )
    print(f"{'':24}{'start-up s':>11}{'RSS MB':>9}{'peak MB':>9}{'CPU % core':>11}{'lines':>9}")
    for name, r in results.items():
        print(
            f"{name:24}{r['startup']:11.3f}{r['rss']:9.1f}{r['peak']:9.1f}"
            f"{100 * r['cpu']:11.2f}{int(r['lines']):9d}"
        )
    if "mtail (latency only)" not in results:
        print("mtail not found on PATH (apt-get install mtail): no peer figure")
    ours = results["mlops-exporter"]
    print(
        f"targets: RSS <= 75 MB {'met' if ours['rss'] <= 75 else 'NOT met'}; start-up <= 0.4 s "
        f"{'met' if ours['startup'] <= 0.4 else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
