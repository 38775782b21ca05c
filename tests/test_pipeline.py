"""exporter.pipeline: the drift + latency pass over a window copy, against a real profile."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import stats

from exporter.pipeline import (
    QUANTILES,
    DriftSettings,
    Snapshot,
    WindowData,
    compute_snapshot,
    latency_quantiles,
)
from mlops_core.profile import ReferenceProfile

FEATURES = {"age": "numeric", "income": "numeric", "plan": "categorical"}


@pytest.fixture(scope="module")
def profile() -> ReferenceProfile:
    rng = np.random.default_rng(1)
    return ReferenceProfile.from_data(
        {
            "age": rng.normal(40, 10, 5000),
            "income": rng.normal(50_000, 8_000, 5000),
            "plan": rng.choice(["basic", "pro", "enterprise"], 5000, p=[0.5, 0.3, 0.2]),
        }
    )


def window(n: int, *, drift: bool = False, seed: int = 2, latencies=None) -> WindowData:
    rng = np.random.default_rng(seed)
    plan_p = [0.1, 0.2, 0.7] if drift else [0.5, 0.3, 0.2]
    values = {
        "age": rng.normal(40, 10, n),  # never drifts
        "income": rng.normal(65_000 if drift else 50_000, 8_000, n),
        "plan": rng.choice(["basic", "pro", "enterprise"], n, p=plan_p),
    }
    lat = rng.lognormal(np.log(0.02), 0.5, n) if latencies is None else np.asarray(latencies)
    return WindowData(n, values, {f: 0.0 for f in FEATURES}, lat)


def by_name(snap: Snapshot) -> dict:
    return {f.name: f for f in snap.features}


def test_drifted_and_undrifted_features(profile: ReferenceProfile) -> None:
    snap = compute_snapshot(window(2000, drift=True), profile, FEATURES, DriftSettings())
    f = by_name(snap)
    assert f["income"].drifted and f["plan"].drifted
    assert not f["age"].drifted
    assert f["income"].detected == {"distance": True, "missing": False}
    assert f["plan"].detected == {"distance": True, "missing": False}
    assert f["plan"].chi2_p_value is not None  # "ks" in drift.tests means chi2 for categories
    assert f["age"].ks_p_value > 0.01 and f["age"].psi < 0.1
    for name in ("income", "plan"):
        assert f[name].lower_bound >= f[name].tolerance == 0.05
        assert f[name].distance >= f[name].detectable_distance
    assert f["age"].distance < f["age"].detectable_distance
    assert snap.features_drifted == 2
    assert snap.features_drifted_ratio == pytest.approx(2 / 3)


def test_ks_statistic_matches_scipy(profile: ReferenceProfile) -> None:
    data = window(1500, drift=True)
    snap = compute_snapshot(data, profile, FEATURES, DriftSettings())
    expected = stats.ks_2samp(profile["income"].sorted_values, data.values["income"])
    assert by_name(snap)["income"].ks_statistic == pytest.approx(expected.statistic)


def test_no_drift_on_reference_like_traffic(profile: ReferenceProfile) -> None:
    snap = compute_snapshot(window(3000, seed=7), profile, FEATURES, DriftSettings())
    assert snap.features_drifted == 0
    assert len(snap.features) == 3


def test_below_min_samples_no_verdict_at_all(profile: ReferenceProfile) -> None:
    snap = compute_snapshot(
        window(99, drift=True), profile, FEATURES, DriftSettings(min_samples=100)
    )
    assert snap.features == ()
    assert snap.window_samples == 99
    assert snap.features_drifted_ratio == 0.0


def test_min_samples_counts_non_missing_values_per_feature(profile: ReferenceProfile) -> None:
    data = window(300)
    income = data.values["income"].copy()
    income[100:] = np.nan  # only 100 values present
    data = dataclasses.replace(data, values={**data.values, "income": income})
    snap = compute_snapshot(data, profile, FEATURES, DriftSettings(min_samples=150))
    f = by_name(snap)
    assert f["age"].distance is not None and f["plan"].distance is not None
    # income has too few values for a distance verdict, but going null is drift too
    assert f["income"].distance is None and f["income"].samples == 100
    assert f["income"].detected == {"missing": True} and f["income"].drifted
    assert f["income"].missing_ratio == pytest.approx(200 / 300)


def test_psi_only(profile: ReferenceProfile) -> None:
    snap = compute_snapshot(
        window(2000, drift=True), profile, FEATURES, DriftSettings(tests=("psi",))
    )
    for f in snap.features:
        assert set(f.detected) == {"distance", "missing"}  # the verdict needs no test
        assert f.ks_p_value is None and f.chi2_p_value is None and f.psi is not None


def test_significant_but_negligible_shift_is_not_flagged(profile: ReferenceProfile) -> None:
    # 0.1 sigma on a 20k window: KS p-value far below 0.05, distance ~0.04 < tolerance.
    rng = np.random.default_rng(3)
    big = ReferenceProfile.from_data({"age": rng.normal(40, 10, 100_000)})
    n = 20_000
    data = WindowData(n, {"age": rng.normal(41.0, 10, n)}, {"age": 0.0}, np.array([]))
    feats = {"age": "numeric"}
    age = by_name(compute_snapshot(data, big, feats, DriftSettings()))["age"]
    assert age.ks_p_value < 1e-6
    assert age.distance < 0.05 and not age.drifted
    strict = DriftSettings(tolerance_numeric=0.005)
    assert by_name(compute_snapshot(data, big, feats, strict))["age"].drifted


def test_level_spends_the_budget_over_passes_and_features(profile: ReferenceProfile) -> None:
    settings = DriftSettings(interval=30.0, false_alarm_budget=30 * 86400.0)
    snap = compute_snapshot(window(500), profile, FEATURES, settings)
    assert snap.level == pytest.approx(30.0 / (30 * 86400.0) / 3)
    # a tighter budget means a lower level and a larger detectable distance
    tight = compute_snapshot(
        window(500), profile, FEATURES, dataclasses.replace(settings, false_alarm_budget=1e9)
    )
    assert tight.level < snap.level
    for a, b in zip(snap.features, tight.features, strict=True):
        assert b.detectable_distance > a.detectable_distance


def test_per_feature_tolerance_override(profile: ReferenceProfile) -> None:
    settings = DriftSettings(tolerances={"income": 0.9})
    snap = compute_snapshot(window(2000, drift=True), profile, FEATURES, settings)
    f = by_name(snap)
    assert f["income"].tolerance == 0.9 and not f["income"].drifted
    assert f["plan"].tolerance == 0.05 and f["plan"].drifted


def test_latency_quantiles_match_numpy() -> None:
    lat = np.random.default_rng(5).lognormal(-3, 0.7, 5000)
    got = latency_quantiles(lat)
    assert list(got) == list(QUANTILES)
    for q, value in got.items():
        assert value == pytest.approx(np.quantile(lat, q))


def test_latency_quantiles_empty_and_non_finite() -> None:
    assert latency_quantiles(np.array([])) == {}
    assert latency_quantiles(np.array([np.nan, 0.01, np.inf, 0.03]))[0.5] == pytest.approx(0.02)


def test_snapshot_is_immutable(profile: ReferenceProfile) -> None:
    snap = compute_snapshot(window(500, drift=True), profile, FEATURES, DriftSettings())
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.window_samples = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        snap.latency_quantiles[0.5] = 1.0  # type: ignore[index]
    with pytest.raises(TypeError):
        snap.features[0].detected["ks"] = False  # type: ignore[index]
    assert snap.computed_at is not None and snap.duration_seconds > 0


def test_empty_snapshot() -> None:
    snap = Snapshot.empty(3)
    assert snap.computed_at is None and snap.features == () and snap.monitored == 3


def test_settings_from_config(tmp_path) -> None:
    from exporter.config import load_config

    path = tmp_path / "c.yml"
    path.write_text(
        "model: {name: m}\nlogs: {paths: [x]}\nreference: {path: r.csv}\n"
        "drift: {tests: [psi, ks], min_samples: 7, false_alarm_budget: 7d,"
        " tolerance: {numeric: 0.1, categorical: 0.2}}\n"
        "features: {age: {tolerance: 0.3}, plan: {monitor: false}, income: numeric}\n"
    )
    config = load_config(path, {})
    s = DriftSettings.from_config(config.drift, config.features)
    assert (s.min_samples, s.false_alarm_budget) == (7, 7 * 86400.0)
    assert (s.tolerance_numeric, s.tolerance_categorical) == (0.1, 0.2)
    assert dict(s.tolerances) == {"age": 0.3}
    assert s.tolerance_of("income", "numeric") == 0.1
    assert s.level(2) == pytest.approx(30.0 / (7 * 86400.0) / 2)
    assert s.tests_for("numeric") == ("ks", "psi")
    assert s.tests_for("categorical") == ("chi2", "psi")


def test_capture_from_a_real_window_fed_by_the_parser(profile: ReferenceProfile) -> None:
    import orjson

    from exporter.pipeline import capture
    from exporter.records import RecordParser
    from exporter.window import Window

    rng = np.random.default_rng(8)
    lines = []
    for i in range(400):
        data = {"age": float(rng.normal(40, 10)), "income": float(rng.normal(65_000, 8_000))}
        if i % 5:
            data["plan"] = str(rng.choice(["basic", "pro", "enterprise"], p=[0.1, 0.2, 0.7]))
        lines.append(
            orjson.dumps(
                {"event": "prediction", "input_data": data, "prediction": 1, "latency_ms": 10.0 + i}
            )
        )
    w = Window(profile, list(FEATURES), max_samples=300)
    w.add(RecordParser(FEATURES).parse(lines))
    data = capture(w, FEATURES)
    assert data.samples == 300  # the newest 300 of 400
    assert data.missing_ratio["plan"] == pytest.approx(60 / 300)
    assert data.values["plan"].dtype.kind == "U" and data.values["plan"].size == 240
    assert data.latency_seconds == pytest.approx((10.0 + np.arange(100, 400)) / 1000)
    snap = compute_snapshot(data, profile, FEATURES, DriftSettings())
    assert {f.name for f in snap.features if f.drifted} == {"income", "plan"}
    assert snap.latency_quantiles[0.5] == pytest.approx(
        np.median(10.0 + np.arange(100, 400)) / 1000
    )
