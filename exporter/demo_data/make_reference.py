"""Regenerate ``reference.csv``, the demo's bundled reference (training) data.

    python -m exporter.demo_data.make_reference

The demo's synthetic model server (:mod:`exporter.demo`) draws its live traffic from the
same distributions (:func:`exporter.demo.draw_features`), so before drift is injected the
drift gauges stay low, and after it the drifted features stand out.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from exporter.demo import FEATURES, draw_features

ROWS = 2000
SEED = 20261126


def main() -> None:
    rng = np.random.default_rng(SEED)
    rows = [draw_features(rng, drifted=False) for _ in range(ROWS)]
    path = Path(__file__).with_name("reference.csv")
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(FEATURES))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {ROWS} rows to {path}")


if __name__ == "__main__":
    main()
