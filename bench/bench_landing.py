"""Landing page benchmark: a view of ``/`` next to a ``/metrics`` scrape, same exporter, one run.

    python bench/bench_landing.py [--features 100,1000] [--views 100] [--pass-every 30]

For each feature count, writes a reference and a log (numeric features, as
bench/bench_scrape.py does), starts the real ``mlops-exporter``, waits for a drift pass,
then alternates ``GET /`` and ``GET /metrics`` over one keep-alive connection each and prints
both medians and their ratio.  The page's feature sections (one SVG histogram per feature)
are rendered once per snapshot and cached, so a view costs about what a scrape costs; the
first view after a pass, which renders them, is reported too, and the first view after the
next pass while the page is being watched (the exporter draws it in the pass then, so the
view finds it cached).  Target: a view within 2x the scrape's time.  Loopback only; stops
by itself.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from bench_scrape import write_inputs  # noqa: E402


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def timed(conn: http.client.HTTPConnection, path: str) -> tuple[float, int]:
    started = time.perf_counter()
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    assert response.status == 200, (path, response.status)
    return time.perf_counter() - started, len(body)


PASS_EVERY = 30.0
"""drift.interval (``--pass-every``): long enough that no pass runs while the medians are
taken (about 5 s at 1,000 features), short enough to wait for the next one."""


def last_pass(conn: http.client.HTTPConnection) -> str:
    """The ``mlops_drift_last_computed_timestamp_seconds`` line of a scrape."""
    conn.request("GET", "/metrics?name[]=mlops_drift_last_computed_timestamp_seconds")
    body = conn.getresponse().read().decode()
    return next((line for line in body.splitlines() if not line.startswith("#")), "")


def run(n_features: int, views: int, tmp: Path, pass_every: float = PASS_EVERY) -> dict[str, float]:
    config_dir = tmp / f"f{n_features}"
    config_dir.mkdir()
    write_inputs(config_dir, n_features, 1000)
    port = free_port()
    config = config_dir / "config.yml"
    config.write_text(
        "model: {name: bench}\n"
        f"logs: {{paths: [{config_dir / 'logs' / '*.jsonl'}], start_position: beginning}}\n"
        f"reference: {{path: {config_dir / 'ref.csv'}}}\n"
        f"drift: {{interval: {pass_every:g}s, window: {{max_samples: 1000, max_age: 2h}}}}\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "exporter.cli", f"--config.file={config}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warning"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:  # ready: the logs were read and the first pass ran
            assert proc.poll() is None, "the exporter exited"
            try:
                probe = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                probe.request("GET", "/-/ready")
                if probe.getresponse().status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "never ready"
            time.sleep(0.1)
        page = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        metrics = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        first, page_bytes = timed(page, "/")  # renders and caches the feature sections
        passed = last_pass(metrics)
        pages, scrapes = [], []
        metrics_bytes = 0
        for _ in range(views):
            pages.append(timed(page, "/")[0])
            seconds, metrics_bytes = timed(metrics, "/metrics")
            scrapes.append(seconds)
        while last_pass(metrics) == passed:  # the next pass, the page watched meanwhile
            assert time.monotonic() < deadline + 2 * pass_every, "no second pass"
            time.sleep(0.2)
        time.sleep(2.0)  # the pass's warm-up drew the page after swapping the snapshot
        watched = timed(page, "/")[0]
    finally:
        proc.terminate()
        proc.wait(10)
    return {
        "first": first,
        "watched": watched,
        "page": statistics.median(pages),
        "scrape": statistics.median(scrapes),
        "page_bytes": page_bytes,
        "metrics_bytes": metrics_bytes,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--features", default="100,1000", help="comma-separated counts")
    parser.add_argument("--views", type=int, default=100)
    parser.add_argument("--pass-every", type=float, default=PASS_EVERY, help="drift.interval, s")
    args = parser.parse_args()
    counts = [int(c) for c in args.features.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        results = {n: run(n, args.views, Path(tmp), args.pass_every) for n in counts}
    print(f"landing page vs /metrics, median of {args.views} alternating requests (one run)")
    print(f"{'features':>9}{'page ms':>10}{'first ms':>10}{'watched ms':>12}{'scrape ms':>11}"
          f"{'ratio':>8}{'page KB':>9}{'metrics KB':>12}")  # fmt: skip
    worst = 0.0
    for n, r in results.items():
        ratio = r["page"] / r["scrape"]
        worst = max(worst, ratio)
        print(
            f"{n:>9}{r['page'] * 1e3:>10.2f}{r['first'] * 1e3:>10.1f}"
            f"{r['watched'] * 1e3:>12.2f}{r['scrape'] * 1e3:>11.2f}"
            f"{ratio:>7.2f}x{r['page_bytes'] / 1024:>9.0f}{r['metrics_bytes'] / 1024:>12.0f}"
        )
    print(f"target: a view within 2x a scrape: {'met' if worst <= 2 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
