"""The real exporter as a benchmark's child process: its command line and its port, once.

The benchmarks that time the running exporter (``bench_load.py``, ``bench_crash.py``,
``bench_scrape.py``) start ``python -m exporter.cli`` from a checkout on a free loopback port
and learn the port from the ``started`` event it logs on stderr.  They import this as
``_exporter`` (a script's own folder is first on ``sys.path``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def start_exporter(
    config: Path,
    root: Path = ROOT,
    *,
    until: Iterable[str] = ("started",),
    timeout: float = 120.0,
) -> tuple[subprocess.Popen[bytes], int]:
    """Start the exporter of the checkout at ``root`` on ``config``; the process and its port.

    Returns once its stderr has logged every event in ``until`` (in any order: ``ready`` may
    come before ``started``).  Its stderr is read to the end on a thread, so a chatty exporter
    never blocks on a full pipe; its stdout is dropped.  ``MLOPS_EXPORTER_*`` variables of the
    caller's shell are not passed on: the config file is the whole configuration.  Exits
    (``SystemExit``) when the exporter has not started within ``timeout`` seconds.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_EXPORTER_")}
    env["PYTHONPATH"] = str(root)
    proc = subprocess.Popen(
        [sys.executable, "-m", "exporter.cli", f"--config.file={config}",
         "--web.listen-address=127.0.0.1:0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=root,
    )  # fmt: skip
    wanted = set(until) | {"started"}
    ports: list[int] = []
    ready = threading.Event()

    def read() -> None:
        seen: set[str] = set()
        assert proc.stderr is not None
        for raw in proc.stderr:
            try:
                event = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(event, dict):
                continue
            if event.get("event") == "started":
                ports.append(int(event["port"]))
            seen.add(str(event.get("event")))
            if wanted <= seen:
                ready.set()
        ready.set()  # exited: nothing more will come

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(timeout) or not ports:
        proc.kill()
        proc.wait()
        raise SystemExit("the exporter did not start")
    return proc, ports[0]
