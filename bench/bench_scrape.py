"""Scrape benchmark: median ``/metrics`` latency of the real exporter process, 100 features.

    python bench/bench_scrape.py [--features 100] [--windows 1000,100000] [--scrapes 200]

For each window size, writes a log of that many prediction lines (100 numeric features),
starts ``mlops-exporter`` on it with ``drift.window.max_samples`` equal to the window (and
the default ``drift.interval`` of 30 s), waits until the whole log is in the window and a
drift pass has run, then times ``GET /metrics`` over one keep-alive connection, as Prometheus
scrapes.  A scrape only serialises the last
snapshot, so its latency must not grow with the window.

Named peer: prometheus_client's own ``start_http_server`` serving a registry of ordinary
global ``Gauge``/``Counter`` objects with the same number of series (the "update metrics in
place" design), timed the same way.  Target: exporter median under 10 ms.
"""

from __future__ import annotations

import argparse
import http.client
import signal
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson
from _exporter import ROOT, start_exporter


def write_inputs(tmp: Path, n_features: int, lines: int) -> Path:
    rng = np.random.default_rng(0)
    names = [f"f{i:03d}" for i in range(n_features)]
    ref = rng.normal(0, 1, (2000, n_features))
    with (tmp / "ref.csv").open("w") as fh:
        fh.write(",".join(names) + "\n")
        for row in ref:
            fh.write(",".join(f"{v:.4f}" for v in row) + "\n")
    (tmp / "logs").mkdir()
    with (tmp / "logs" / "p.jsonl").open("wb") as fh:
        for start in range(0, lines, 10_000):
            block = rng.normal(0.1, 1, (min(10_000, lines - start), n_features)).round(4)
            fh.write(
                b"".join(
                    orjson.dumps(
                        {
                            "event": "prediction",
                            "input_data": dict(zip(names, row.tolist(), strict=True)),
                            "prediction": {"class": int(i % 3)},
                            "latency_ms": 20.0,
                        }
                    )
                    + b"\n"
                    for i, row in enumerate(block)
                )
            )
    config = tmp / "config.yml"
    config.write_text(
        "model: {name: bench}\n"
        "logs: {paths: [logs/*.jsonl], start_position: beginning}\n"
        "reference: {path: ref.csv}\n"
        "drift: {interval: 30s, min_samples: 100, "
        f"window: {{max_samples: {lines}, max_age: 1h}}}}\n"
    )
    return config


def time_scrapes(port: int, n: int) -> tuple[list[float], int]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    out, size = [], 0
    for _ in range(n + 5):
        t = time.perf_counter()
        conn.request("GET", "/metrics")
        body = conn.getresponse().read()
        out.append(time.perf_counter() - t)
        size = len(body)
    conn.close()
    return out[5:], size  # the first few warm caches and the connection


def get(port: int, path: str) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path)
    body = conn.getresponse().read()
    conn.close()
    return body


def run_exporter(config: Path, lines: int, scrapes: int) -> tuple[list[float], int, int, float]:
    proc, port = start_exporter(config, ROOT, timeout=60)
    try:
        needle = f'mlops_drift_window_samples{{model="bench"}} {float(lines)}'.encode()
        deadline = time.monotonic() + 600
        while needle not in get(port, "/metrics"):
            if time.monotonic() > deadline:
                raise SystemExit("window never filled")
            time.sleep(0.5)
        times, size = time_scrapes(port, scrapes)
        body = get(port, "/metrics").splitlines()
        series = sum(1 for line in body if line and not line.startswith(b"#"))
        duration = next(
            float(line.split()[-1])
            for line in body
            if line.startswith(b"mlops_drift_computation_duration_seconds{")
        )
        return times, size, series, duration
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def run_peer(series: int, scrapes: int) -> list[float]:
    from prometheus_client import CollectorRegistry, Gauge, start_http_server

    registry = CollectorRegistry()
    per = 1000
    gauges = [
        Gauge(
            f"peer_metric_{i}", "A plain gauge.", ["model", "feature", "bucket"], registry=registry
        )
        for i in range((series + per - 1) // per)
    ]
    for i in range(series):
        gauges[i // per].labels("bench", f"f{i % 100:03d}", str(i)).set(i)
    server, _thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        times, _ = time_scrapes(server.server_address[1], scrapes)
    finally:
        server.shutdown()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--features", type=int, default=100)
    parser.add_argument("--windows", default="1000,100000")
    parser.add_argument("--scrapes", type=int, default=200)
    args = parser.parse_args()

    rows = []
    series = 0
    for window in (int(w) for w in args.windows.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            config = write_inputs(Path(tmp), args.features, window)
            times, size, series, duration = run_exporter(config, window, args.scrapes)
        rows.append((f"exporter, window {window}", times, size))
        print(f"window {window}: background drift pass took {duration * 1e3:.0f} ms")
    peer = run_peer(series, args.scrapes)
    rows.append((f"prometheus_client Gauges ({series} series)", peer, 0))

    print(f"/metrics latency, {args.features} features, {series} series, {args.scrapes} scrapes")
    print(f"{'':44}{'median ms':>10}{'p90 ms':>9}{'body KiB':>10}")
    for name, times, size in rows:
        p90 = float(np.quantile(times, 0.9))
        print(f"{name:44}{statistics.median(times) * 1e3:10.2f}{p90 * 1e3:9.2f}{size / 1024:10.0f}")
    small, big = statistics.median(rows[0][1]), statistics.median(rows[1][1])
    print(
        f"ratio window {args.windows.split(',')[1]} / {args.windows.split(',')[0]}: "
        f"{big / small:.2f}x; exporter / prometheus_client: "
        f"{big / statistics.median(peer):.2f}x; target < 10 ms: "
        f"{'met' if max(small, big) < 0.01 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
