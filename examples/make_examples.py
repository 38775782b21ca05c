"""Generate examples/reference.csv and examples/current.csv (deterministic, seed 20261126).

Four features: ``age`` and ``tenure_months`` are drawn from the same distributions in both
files (no drift); ``income`` shifts up by about 40% in the current data; ``plan`` (the
categorical feature) moves towards ``pro`` and gains ``enterprise``, a category the
reference never saw.  A few cells are left empty to show missing-value counting.

Run from the repository root:  python examples/make_examples.py
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

SEED = 20261126
HERE = Path(__file__).resolve().parent


def _rows(rng: np.random.Generator, n: int, *, drifted: bool) -> list[dict[str, object]]:
    age = rng.normal(38, 9, n).clip(18, 90).round()
    tenure = rng.gamma(2.0, 12.0, n).round(1)
    income = rng.lognormal(np.log(52000 * (1.4 if drifted else 1.0)), 0.3, n).round(-2)
    if drifted:
        plans, weights = ["basic", "pro", "team", "enterprise"], [0.35, 0.40, 0.15, 0.10]
    else:
        plans, weights = ["basic", "pro", "team"], [0.60, 0.25, 0.15]
    plan = rng.choice(plans, n, p=weights)
    rows = []
    for i in range(n):
        rows.append(
            {
                "age": int(age[i]),
                "income": f"{income[i]:.0f}",
                "tenure_months": f"{tenure[i]:.1f}" if rng.random() > 0.02 else "",
                "plan": plan[i],
            }
        )
    return rows


def _write(path: Path, rows: list[dict[str, object]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def main() -> None:
    rng = np.random.default_rng(SEED)
    _write(HERE / "reference.csv", _rows(rng, 2000, drifted=False))
    _write(HERE / "current.csv", _rows(rng, 500, drifted=True))
    print(f"wrote {HERE / 'reference.csv'} and {HERE / 'current.csv'}")


if __name__ == "__main__":
    main()
