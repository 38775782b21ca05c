"""Shared helpers of the exporter's end-to-end tests: a real ``mlops-exporter`` process.

:func:`running_exporter` starts ``python -m exporter.cli`` on a temporary config with
``--web.listen-address=127.0.0.1:0`` (the kernel picks a free port; the process logs it in
its ``started`` line, so parallel test runs never race for a port), waits for ``/-/ready``,
yields an :class:`ExporterProcess`, and on exit sends SIGTERM and asserts exit status 0.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from prometheus_client.parser import text_string_to_metric_families

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 20.0

Labels = tuple[tuple[str, str], ...]


def reference_csv(path: Path, rows: int = 2000, seed: int = 0) -> Path:
    """x ~ N(0, 1), y ~ N(10, 2), plan in a/b/c with 0.5/0.3/0.2."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, rows)
    y = rng.normal(10, 2, rows)
    plan = rng.choice(["a", "b", "c"], rows, p=[0.5, 0.3, 0.2])
    lines = ["x,y,plan"] + [f"{a:.5f},{b:.5f},{c}" for a, b, c in zip(x, y, plan, strict=True)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_config(
    tmp_path: Path, *, logs: str = "logs/*.jsonl", extra: str = "", **drift: Any
) -> Path:
    """A config with short intervals; ``extra`` YAML is appended (e.g. a state_file)."""
    if not (tmp_path / "ref.csv").exists():
        reference_csv(tmp_path / "ref.csv")
    (tmp_path / "logs").mkdir(exist_ok=True)
    settings = {
        "interval": "300ms",
        "min_samples": 100,
        "window": {"max_samples": 5000, "max_age": "1h"},
    }
    settings.update(drift)
    text = (
        "model: {name: e2e}\n"
        f"logs: {{paths: [{json.dumps(logs)}], start_position: beginning, poll_interval: 50ms"
        f"{extra}}}\n"
        "reference: {path: ref.csv}\n"
        f"drift: {json.dumps(settings)}\n"
    )
    path = tmp_path / "config.yml"
    path.write_text(text, encoding="utf-8")
    return path


def record(
    x: float,
    y: float,
    plan: str | None,
    latency_ms: float = 12.5,
    cls: Any = 1,
    **extra: Any,
) -> dict[str, Any]:
    data: dict[str, Any] = {"x": x, "y": y}
    if plan is not None:
        data["plan"] = plan
    return {
        # Now, as a logger writes it: the window evicts records older than drift.window.max_age
        # by their own timestamp, so a fixed date would empty it once that date is an hour old.
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "level": "info",
        "event": "prediction",
        "service": "e2e",
        "model_version": "1.0.0",
        "request_id": "req-1",
        "input_data": data,
        "prediction": {"class": cls, "probability": 0.8},
        "latency_ms": latency_ms,
        **extra,
    }


def lines_of(records: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in records)


def traffic(
    n: int, *, seed: int = 1, shift_y: float = 0.0, plan_p=(0.5, 0.3, 0.2)
) -> tuple[list[dict[str, Any]], np.ndarray]:
    """``n`` records like the reference (``y`` shifted by ``shift_y``) and their latencies."""
    rng = np.random.default_rng(seed)
    latencies = rng.lognormal(np.log(20), 0.6, n).round(3)
    plans = rng.choice(["a", "b", "c"], n, p=list(plan_p))
    out = [
        record(
            float(rng.normal(0, 1)),
            float(rng.normal(10 + shift_y, 2)),
            str(p),
            float(lat),
            cls=int(i % 3),
        )
        for i, (p, lat) in enumerate(zip(plans, latencies, strict=True))
    ]
    return out, latencies


@dataclass
class Scrape:
    """Parsed /metrics: samples by (name, sorted labels), plus the raw text."""

    text: str
    samples: dict[tuple[str, Labels], float] = field(default_factory=dict)

    def get(self, name: str, **labels: str) -> float | None:
        return self.samples.get((name, tuple(sorted(labels.items()))))

    def names(self) -> set[str]:
        return {name for name, _ in self.samples}

    def having(self, name: str) -> dict[Labels, float]:
        return {lab: v for (n, lab), v in self.samples.items() if n == name}


def parse_metrics(text: str) -> Scrape:
    scrape = Scrape(text)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            scrape.samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return scrape


@dataclass
class ExporterProcess:
    proc: subprocess.Popen[bytes]
    url: str
    stderr_lines: list[str]
    ssl_context: ssl.SSLContext | None = None
    auth: tuple[str, str] | None = None

    def get(
        self, path: str, headers: Mapping[str, str] | None = None, *, auth: bool = True
    ) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(self.url + path, headers=dict(headers or {}))
        if auth and self.auth is not None:
            import base64

            token = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=10, context=self.ssl_context) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()

    def events(self, event: str) -> list[dict[str, Any]]:
        """The JSON log lines it has written on stderr so far whose ``event`` is ``event``."""
        out = []
        for line in self.stderr_lines:
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if doc.get("event") == event:
                out.append(doc)
        return out

    def scrape(self) -> Scrape:
        status, _, body = self.get("/metrics")
        assert status == 200, body
        return parse_metrics(body.decode())

    def wait_for(
        self, predicate: Callable[[Scrape], bool], timeout: float = 15.0, what: str = ""
    ) -> Scrape:
        deadline = time.monotonic() + timeout
        while True:
            scrape = self.scrape()
            if predicate(scrape):
                return scrape
            if time.monotonic() > deadline:
                tail = "\n".join(self.stderr_lines[-20:])
                raise AssertionError(f"timed out waiting for {what or predicate}\n{tail}")
            time.sleep(0.1)

    def wait_computed_after(self, moment: float, timeout: float = 15.0) -> Scrape:
        """A scrape whose drift pass ran after ``moment`` (unix time)."""
        return self.wait_for(
            lambda s: (
                (s.get("mlops_drift_last_computed_timestamp_seconds", model="e2e") or 0) > moment
            ),
            timeout,
            "a drift pass",
        )

    def wait_passes(self, n: int, timeout: float = 15.0, model: str = "e2e") -> Scrape:
        """A scrape after at least ``n`` more drift passes ran (each pass runs the no-silent-
        failure checks first), counted by the changes of
        ``mlops_drift_last_computed_timestamp_seconds`` seen: a poll that misses a pass only
        makes the wait longer, so "no second warning" is asserted over ``n`` real passes, not
        over a sleep during which a loaded machine may have run none."""
        seen: list[float | None] = []

        def advanced(s: Scrape) -> bool:
            value = s.get("mlops_drift_last_computed_timestamp_seconds", model=model)
            if not seen or value != seen[-1]:
                seen.append(value)
            return len(seen) > n

        return self.wait_for(advanced, timeout, f"{n} more drift passes")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            tail = "\n".join(self.stderr_lines[-30:])
            raise AssertionError(f"exporter did not exit {timeout}s after {sig}:\n{tail}") from None


def exporter_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "exporter.cli", *args]


def exporter_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_EXPORTER_")}
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra or {})
    return env


def run_exporter(*args: str, env: Mapping[str, str] | None = None, timeout: float = 20):
    """Run the CLI to completion (for errors and --version): CompletedProcess with text."""
    return subprocess.run(
        exporter_command(*args),
        capture_output=True,
        text=True,
        env=exporter_env(env),
        cwd=REPO_ROOT,
        timeout=timeout,
    )


def start_exporter(
    config: Path | None,
    *,
    args: list[str] | None = None,
    web_config: Path | None = None,
    env: Mapping[str, str] | None = None,
    wait_ready: bool = True,
    ssl_context: ssl.SSLContext | None = None,
    auth: tuple[str, str] | None = None,
    rlimit_nofile: tuple[int, int] | None = None,
) -> ExporterProcess:
    """Start the exporter; ``rlimit_nofile`` (soft, hard) is set in the child before exec."""
    args = list(args or [])
    if config is not None:
        args.append(f"--config.file={config}")
    args += ["--web.listen-address=127.0.0.1:0", "--log.level=debug"]
    if web_config is not None:
        args.append(f"--web.config.file={web_config}")
    preexec = None
    if rlimit_nofile is not None:
        import resource

        def preexec() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, rlimit_nofile)

    proc = subprocess.Popen(
        exporter_command(*args),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=exporter_env(env),
        cwd=REPO_ROOT,
        preexec_fn=preexec,
    )
    lines: list[str] = []
    port_box: list[int] = []
    started = threading.Event()

    def read_stderr() -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            lines.append(line)
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if event.get("event") == "started":
                    port_box.append(int(event["port"]))
                    started.set()
        started.set()

    threading.Thread(target=read_stderr, daemon=True).start()
    if not started.wait(START_TIMEOUT) or not port_box:
        proc.kill()
        proc.wait()
        raise AssertionError("exporter did not start:\n" + "\n".join(lines[-30:]))
    scheme = "https" if ssl_context is not None else "http"
    handle = ExporterProcess(proc, f"{scheme}://127.0.0.1:{port_box[0]}", lines, ssl_context, auth)
    if wait_ready:
        deadline = time.monotonic() + START_TIMEOUT
        while handle.get("/-/ready")[0] != 200:
            if time.monotonic() > deadline or proc.poll() is not None:
                handle.stop()
                raise AssertionError("exporter never became ready:\n" + "\n".join(lines[-30:]))
            time.sleep(0.05)
    return handle


@contextlib.contextmanager
def running_exporter(config: Path, **kwargs: Any) -> Iterator[ExporterProcess]:
    """Start the exporter, yield it, then SIGTERM it and assert a clean exit (status 0)."""
    handle = start_exporter(config, **kwargs)
    try:
        yield handle
    finally:
        code = handle.stop()
        tail = "\n".join(handle.stderr_lines[-30:])
        assert code == 0, f"exporter exited with {code}:\n{tail}"


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as fh:
        fh.write(data)
