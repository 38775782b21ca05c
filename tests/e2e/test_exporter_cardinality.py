"""How many series one exporter serves per model: 20 models x 50 features, counted.

The count is the contract of docs/metrics.md ("Series per model"): a model of ``n``
numeric features (``drift.psi.buckets`` 10) and ``c`` categorical ones of ``k`` categories
serves ``31 n + (2 k + 14) c + 36`` series, plus one per predicted class (at most
``prediction.max_classes``), six poll-failure reasons with a registry reference and one per
other version seen (at most 11).  Only the count is asserted here; the scrape time at this
size is ``bench/bench_cardinality.py``'s (docs/benchmarks.md).
"""

from __future__ import annotations

import collections
from pathlib import Path

from tests.e2e._exporter import running_exporter
from tests.e2e._fleet import fleet_traffic, write_fleet

MODELS, FEATURES = 20, 50
NUMERIC, CATEGORICAL = 40, 10  # every fifth feature is categorical, of 3 categories
CLASSES = 3


def series_per_model(numeric: int, categorical: int, categories: int, classes: int) -> int:
    return 31 * numeric + (2 * categories + 14) * categorical + 36 + classes


def test_twenty_models_of_fifty_features_stay_within_a_few_tens_of_thousands_of_series(
    tmp_path: Path,
) -> None:
    config = write_fleet(tmp_path, MODELS, FEATURES, interval="500ms")
    (tmp_path / "logs" / "p.jsonl").write_bytes(fleet_traffic(MODELS, FEATURES, 150))
    names = [f"m{i:02d}" for i in range(MODELS)]
    with running_exporter(config) as exp:
        s = exp.wait_for(
            lambda s: all(s.get("mlops_features_drifted", model=n) is not None for n in names),
            timeout=120,
            what="every model's first pass",
        )
    per_model = collections.Counter(dict(labels).get("model") for _, labels in s.samples)
    expected = series_per_model(NUMERIC, CATEGORICAL, 3, CLASSES)
    assert expected == 1479
    assert {per_model[n] for n in names} == {expected}
    exporter_wide = len(s.samples) - MODELS * expected
    assert 0 < exporter_wide < 100  # the files' counters and the process's own metrics
    assert len(s.samples) < 40_000
