"""In-process alerting (``alerts:``): the figures of the verdict and the distance.

``drifted:<feature>`` and ``distance:<feature>`` come from the snapshot's verdict, a
threshold on ``drifted:`` fires exactly when the exporter's verdict says drifted, and a
feature without a verdict has no figure (no data, not recovery).
"""

from __future__ import annotations

from types import MappingProxyType

import pytest

from exporter.alerting import ExporterAlerts, figures, known_figures
from exporter.errors import ConfigError
from exporter.pipeline import FeatureResult, Snapshot

FEATURES = {"age": "numeric", "plan": "categorical"}


def _snapshot(computed_at: float, *results: FeatureResult) -> Snapshot:
    return Snapshot(
        computed_at, 0.01, 500, results, MappingProxyType({}), MappingProxyType({}), 2, 1e-7
    )


def _age(drifted: bool, distance: float, lower: float) -> FeatureResult:
    return FeatureResult(
        "age", "numeric", 500, tolerance=0.05, distance=distance, lower_bound=lower,
        detectable_distance=0.2, ks_p_value=1e-9, psi=0.4,
        detected=MappingProxyType({"distance": drifted}), drifted=drifted,
    )  # fmt: skip


def test_verdict_and_distance_figures_come_from_the_snapshot() -> None:
    plan = FeatureResult(
        "plan", "categorical", 500, distance=0.02, lower_bound=-0.1, chi2_p_value=0.4,
        detected=MappingProxyType({"distance": False}),
    )  # fmt: skip
    out = figures(_snapshot(1.0, _age(True, 0.31, 0.12), plan))
    assert out["drifted:age"] == 1.0 and out["drifted:plan"] == 0.0
    assert out["distance:age"] == pytest.approx(0.31)
    assert out["distance_lower_bound:age"] == pytest.approx(0.12)
    assert out["features_drifted"] == 1.0 and out["features_drifted_ratio"] == 0.5
    # raw statistics are there too, under their own names
    assert out["psi:age"] == pytest.approx(0.4) and out["chi2_p_value:plan"] == 0.4
    assert "ks_p_value:plan" not in out  # not computed: absent, not zero
    for kind in ("drifted", "distance", "distance_lower_bound"):
        assert f"{kind}:age" in known_figures(FEATURES)


def test_a_feature_without_a_verdict_has_no_figures() -> None:
    out = figures(_snapshot(1.0))  # below drift.min_samples: no feature results
    assert not any(name.startswith(("drifted:", "distance:")) for name in out)
    assert figures(Snapshot.empty(2)) == {}


def test_a_threshold_on_drifted_fires_with_the_verdict_only() -> None:
    alerts = ExporterAlerts.from_config(
        {"thresholds": {"drifted:age": {"warning": 0.5}, "distance:age": {"critical": 0.3}},
         "cooldown": 0},
        model="m", features=FEATURES,
    )  # fmt: skip
    # observed distance over the tolerance, but its bound is not: no verdict, no drifted alert
    quiet = alerts.evaluate(_snapshot(1.0, _age(False, 0.12, -0.05)))
    assert quiet is not None and quiet["alerts"] == []
    loud = alerts.evaluate(_snapshot(2.0, _age(True, 0.35, 0.2)))
    assert loud is not None
    fired = {(a["metric"], a["severity"]) for a in loud["alerts"]}
    assert fired == {("drifted:age", "warning"), ("distance:age", "critical")}


def test_a_level_of_one_on_drifted_never_fires() -> None:
    """Levels are strict ("greater than"): the docs give ``drifted:`` a level of 0.5."""
    alerts = ExporterAlerts.from_config(
        {"thresholds": {"drifted:age": {"warning": 1}}}, model="m", features=FEATURES
    )
    result = alerts.evaluate(_snapshot(1.0, _age(True, 0.35, 0.2)))
    assert result is not None and result["alerts"] == []


def test_an_unknown_feature_figure_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"alerts\.thresholds\.drifted:nope: unknown figure"):
        ExporterAlerts.from_config(
            {"thresholds": {"drifted:nope": {"warning": 1}}}, model="m", features=FEATURES
        )
