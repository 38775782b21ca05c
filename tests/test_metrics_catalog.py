"""The metric catalog (exporter/metrics.py): the one list every other place is checked against."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from exporter import metrics
from tests.conftest import REPO_ROOT
from tests.test_rules import recorded_names

_TOKEN = re.compile(r"[a-z_:]*\bmlops_[a-z0-9_]+[a-z0-9_:]*")
#: words that look like metric names but are not: the package, and paths of the registry docs
_NOT_METRICS = re.compile(r"mlops_core\w*|mlops_registry\w*")


def test_every_spec_follows_the_naming_practices() -> None:
    assert len(metrics.CATALOG) == len(metrics.BY_NAME), "a name is declared twice"
    for spec in metrics.CATALOG:
        assert spec.name.startswith("mlops_"), spec.name
        assert not spec.name.endswith("_total"), f"{spec.name}: counters get _total themselves"
        assert len(spec.help.split()) >= 4, spec.name
        if spec.unit:
            assert spec.name.endswith(f"_{spec.unit}"), spec.name
        if spec.name.endswith("_ratio"):
            assert spec.kind == "gauge", spec.name
        assert len(set(spec.labels)) == len(spec.labels), spec.name


def test_docs_table_is_generated_from_the_catalog(tmp_path: Path) -> None:
    assert metrics.main(["--check"]) == 0, "run python -m exporter.metrics"
    docs = tmp_path / "metrics.md"
    text = metrics.DOCS_FILE.read_text(encoding="utf-8")
    docs.write_text(text.replace("`mlops_predictions_total`", "`mlops_predictions`"), "utf-8")
    assert metrics.main(["--check", "--docs", str(docs)]) == 1  # a stale table fails
    assert metrics.main(["--docs", str(docs)]) == 0
    assert docs.read_text(encoding="utf-8") == text
    for spec in metrics.CATALOG:
        assert f"`{spec.exposed_name}`" in text, spec.name


#: a block of a docs page about metrics that are not served yet, which must say so
_PLANNED = re.compile(r"<!-- planned: not served yet -->.*?<!-- end planned -->", re.S)


def _documented_tokens() -> dict[str, set[str]]:
    places = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
    out = {}
    for p in places:
        text = p.read_text("utf-8")
        for block in _PLANNED.findall(text):
            assert "not in the exporter yet" in block.lower(), f"{p.name}: say it is planned"
        text = _PLANNED.sub("", text)
        out[str(p.relative_to(REPO_ROOT))] = {
            t for t in _TOKEN.findall(text) if not _NOT_METRICS.fullmatch(t)
        }
    return out


def test_every_metric_name_in_the_docs_exists() -> None:
    """README, docs/ and the runbook name only metrics the exporter serves or rules record."""
    known = metrics.exposed_names() | set(metrics.BY_NAME)
    recorded = recorded_names()
    unknown = []
    for where, tokens in _documented_tokens().items():
        for token in tokens:
            if ":" in token:  # a recording rule (or the part of one a sentence names)
                if not any(token.strip(":") in r for r in recorded):
                    unknown.append(f"{where}: {token} is no recording rule")
            elif token.endswith("_"):  # a prefix, as in mlops_feature_drift_*
                if not any(name.startswith(token) for name in known):
                    unknown.append(f"{where}: no metric starts with {token}")
            elif token not in known:
                unknown.append(f"{where}: {token} is not in the metric catalog")
    assert unknown == []


def test_describe_lets_restricted_registry_serve_name_filters() -> None:
    import numpy as np

    from mlops_core.profile import ReferenceProfile
    from tests.test_collector import FEATURES, Harness  # a real collector over real data

    rng = np.random.default_rng(0)
    profile = ReferenceProfile.from_data(
        {"age": rng.normal(40, 10, 500), "plan": rng.choice(["a", "b"], 500)}
    )
    h = Harness(profile)
    assert set(FEATURES) == {"age", "plan"}
    described = {m.name for m in h.collector.describe()}
    assert described == set(metrics.BY_NAME)
    registry = CollectorRegistry()  # auto_describe: registration reads describe()
    registry.register(h.collector)
    only = generate_latest(registry.restricted_registry(["mlops_predictions_total"])).decode()
    assert "mlops_predictions_total" in only
    assert "mlops_log_lines_total" not in only and "mlops_reference_info" not in only


@pytest.mark.parametrize("spec", metrics.CATALOG, ids=lambda s: s.name)
def test_each_family_is_built_from_its_spec(spec: metrics.MetricSpec) -> None:
    family = spec.family()
    assert family.name == spec.name and family.documentation == spec.help
    assert family.type == spec.kind
