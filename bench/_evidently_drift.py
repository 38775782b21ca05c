"""Child of bench_drift.py, run by the Evidently virtualenv's Python: time DataDriftPreset.

Reads the arrays bench_drift.py saved (ref_<name>, cur_<name>), builds two DataFrames and
times ``Report([DataDriftPreset()]).run(...)``; prints one JSON line with the timings.
Evidently picks its own per-column test (for > 1000 numeric rows, normed Wasserstein).
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import pandas as pd
from evidently import Report, __version__
from evidently.presets import DataDriftPreset


def main() -> None:
    path, repeats = sys.argv[1], int(sys.argv[2])
    with np.load(path) as npz:
        names = sorted(k[4:] for k in npz.files if k.startswith("ref_"))
        ref = pd.DataFrame({n: npz[f"ref_{n}"] for n in names})
        cur = pd.DataFrame({n: npz[f"cur_{n}"] for n in names})
    times = []
    method = "?"
    for _ in range(repeats):
        start = time.perf_counter()
        snapshot = Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)
        times.append(time.perf_counter() - start)
    for metric in snapshot.dict()["metrics"]:
        cfg = metric.get("config", {})
        if cfg.get("method"):
            method = cfg["method"]
            break
    print(json.dumps({"version": __version__, "times": times, "method": method}))


if __name__ == "__main__":
    main()
