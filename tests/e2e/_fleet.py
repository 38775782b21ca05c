"""A fleet of models for one exporter: the cardinality test's and ``bench/bench_cardinality.py``'s.

:func:`write_fleet` writes ``n_models`` saved reference profiles of ``n_features`` features
each (every fifth one categorical with three categories, the others numeric) and a config
that serves them all from one log file, each selected by ``match: {service: svc-N}``;
:func:`fleet_traffic` writes predictions for each, like its reference, interleaved.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import orjson

from mlops_core.profile import ReferenceProfile

CATEGORIES = ("a", "b", "c")


def feature_names(n_features: int) -> list[str]:
    return [f"f{j:02d}" for j in range(n_features)]


def is_categorical(j: int) -> bool:
    return j % 5 == 4


def write_fleet(
    root: Path,
    n_models: int = 20,
    n_features: int = 50,
    *,
    rows: int = 1000,
    interval: str = "1s",
    min_samples: int = 100,
    max_samples: int = 1000,
) -> Path:
    """The profiles under ``root/references`` and ``root/config.yml``; returns the config."""
    rng = np.random.default_rng(0)
    names = feature_names(n_features)
    (root / "references").mkdir(parents=True, exist_ok=True)
    (root / "logs").mkdir(exist_ok=True)
    models = []
    for i in range(n_models):
        data = {
            name: rng.choice(CATEGORIES, rows) if is_categorical(j) else rng.normal(0, 1, rows)
            for j, name in enumerate(names)
        }
        path = root / "references" / f"m{i:02d}.json"
        ReferenceProfile.from_data(data).save(path)
        models.append(
            f"  - name: m{i:02d}\n    reference: {{path: {json.dumps(str(path))}}}\n"
            f"    match: {{service: svc-{i:02d}}}\n"
        )
    drift = {
        "interval": interval,
        "min_samples": min_samples,
        "window": {"max_samples": max_samples, "max_age": "1h"},
    }
    text = (
        "logs: {paths: [logs/*.jsonl], start_position: beginning, poll_interval: 50ms}\n"
        f"drift: {json.dumps(drift)}\n"
        "models:\n" + "".join(models)
    )
    config = root / "config.yml"
    config.write_text(text, encoding="utf-8")
    return config


def fleet_traffic(n_models: int, n_features: int, per_model: int, seed: int = 1) -> bytes:
    """``per_model`` predictions for each model, as its reference, the models interleaved."""
    rng = np.random.default_rng(seed)
    names = feature_names(n_features)
    lines = []
    for _ in range(per_model):
        for i in range(n_models):
            inputs = {
                name: str(rng.choice(CATEGORIES)) if is_categorical(j) else float(rng.normal())
                for j, name in enumerate(names)
            }
            lines.append(
                orjson.dumps(
                    {
                        "timestamp": _now(),
                        "event": "prediction",
                        "service": f"svc-{i:02d}",
                        "request_id": "r",
                        "input_data": inputs,
                        "prediction": {"class": int(rng.integers(0, 3))},
                        "latency_ms": float(rng.lognormal(3, 0.5)),
                    }
                )
                + b"\n"
            )
    return b"".join(lines)


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
