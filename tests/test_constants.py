"""mlops_core.constants: each shared default and vocabulary is defined once.

The first tests check that the modules which used to keep their own copy now use the shared
one (the exporter's ingest kept 11 latency buckets from 5 ms while its config documented 15
from 1 ms).  The last one guards the copies a few modules still hold until they import
theirs: a copy that disagrees with the shared value fails here, not in production.
"""

from __future__ import annotations

import inspect
import re

import pytest

from exporter import config, ingest
from exporter.pipeline import DriftSettings
from mlops_core import constants, drift, profile
from tests.conftest import REPO_ROOT


def test_the_documented_latency_buckets_are_the_defaults_everywhere() -> None:
    doc = (REPO_ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    row = re.search(r"^\| `latency\.buckets` \| `\[([^]]*)\]`", doc, re.MULTILINE)
    assert row is not None, "docs/configuration.md lost its latency.buckets row"
    documented = tuple(float(b) for b in row.group(1).split(","))
    assert documented == constants.DEFAULT_LATENCY_BUCKETS
    assert config.LatencyConfig().buckets is constants.DEFAULT_LATENCY_BUCKETS
    ingest_default = inspect.signature(ingest.IngestCounters).parameters["latency_buckets"]
    assert ingest_default.default is constants.DEFAULT_LATENCY_BUCKETS


def test_modules_use_the_shared_names() -> None:
    assert ingest.OTHER_LABEL is constants.OTHER_BUCKET
    assert profile.OTHER_BUCKET is constants.OTHER_BUCKET
    assert profile.UNSEEN_BUCKET is constants.UNSEEN_BUCKET
    assert profile.DEFAULT_BUCKETS == constants.DEFAULT_BUCKETS
    assert profile.DEFAULT_MAX_CATEGORIES == constants.DEFAULT_MAX_CATEGORIES
    assert config.FEATURE_TYPES is constants.FEATURE_KINDS
    assert config.DRIFT_TESTS is constants.DRIFT_TESTS
    assert config.KS_METHODS is constants.KS_METHODS
    assert config.DEFAULT_TOLERANCE == constants.DEFAULT_TOLERANCE
    assert config.DEFAULT_FALSE_ALARM_BUDGET == constants.DEFAULT_FALSE_ALARM_BUDGET


def test_the_config_defaults_are_the_shared_ones() -> None:
    drift_config = config.DriftConfig()
    assert drift_config.ks.method == constants.KS_METHODS[0]
    assert drift_config.psi.buckets == constants.DEFAULT_BUCKETS
    assert drift_config.tolerance.numeric == drift_config.tolerance.categorical
    assert drift_config.tolerance.numeric == constants.DEFAULT_TOLERANCE
    assert drift_config.false_alarm_budget == constants.DEFAULT_FALSE_ALARM_BUDGET


def test_copies_still_kept_elsewhere_agree_with_the_shared_values() -> None:
    """mlops_core/drift.py, exporter/pipeline.py and exporter/records.py still define their
    own copies (they are being reworked on other branches).  Once a module imports the
    shared value, its line here passes trivially; until then it may not disagree."""
    assert getattr(drift, "DEFAULT_TOLERANCE", constants.DEFAULT_TOLERANCE) == (
        constants.DEFAULT_TOLERANCE
    )
    assert getattr(drift, "DEFAULT_EPSILON", constants.DEFAULT_EPSILON) == (
        constants.DEFAULT_EPSILON
    )
    assert dict(getattr(drift, "DEFAULT_THRESHOLDS", constants.DEFAULT_THRESHOLDS)) == dict(
        constants.DEFAULT_THRESHOLDS
    )
    assert tuple(getattr(drift, "TESTS", constants.DRIFT_TESTS)) == constants.DRIFT_TESTS
    assert set(getattr(drift, "_KS_METHODS", constants.KS_METHODS)) == set(constants.KS_METHODS)
    assert tuple(getattr(drift, "_CORRECTIONS", constants.CORRECTIONS)) == constants.CORRECTIONS
    settings = DriftSettings()
    assert settings.ks_method == constants.KS_METHODS[0]
    assert settings.tolerance_numeric == settings.tolerance_categorical
    assert settings.tolerance_numeric == constants.DEFAULT_TOLERANCE
    assert settings.false_alarm_budget == constants.DEFAULT_FALSE_ALARM_BUDGET

    from exporter import records

    assert tuple(getattr(records, "FEATURE_KINDS", constants.FEATURE_KINDS)) == (
        constants.FEATURE_KINDS
    )


def test_shared_thresholds_cannot_be_changed_in_place() -> None:
    """A caller that edited the shared mapping would change every later default."""
    with pytest.raises(TypeError):
        constants.DEFAULT_THRESHOLDS["ks"] = 0.5  # type: ignore[index]
    assert constants.DEFAULT_THRESHOLDS["ks"] == 0.05
