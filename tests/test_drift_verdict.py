"""The bound verdict: level from the budget, distance oracles, coverage of the bounds by
simulation, sparse and unseen categories, and the bugs found against external references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special, stats

from exporter.pipeline import DriftSettings
from mlops_core import bounds
from mlops_core.drift import (
    analyze_feature_drift,
    detect_drift_chi2,
    detect_drift_ks,
    detect_drift_psi,
    evaluate_drift,
)
from mlops_core.errors import DriftInputError, ProfileError
from mlops_core.profile import CategoricalFeatureProfile, ReferenceProfile

# --- the level ------------------------------------------------------------------------------


def test_level_is_interval_over_budget_over_features() -> None:
    assert bounds.level_from_budget(30.0, 30 * 86400.0, 25) == pytest.approx(
        30.0 / (30 * 86400) / 25
    )
    # one false verdict per budget: passes x features x level == 1
    level = bounds.level_from_budget(15.0, 7 * 86400.0, 40)
    assert (7 * 86400.0 / 15.0) * 40 * level == pytest.approx(1.0)
    assert bounds.level_from_budget(30.0, 10.0, 1) == 1.0  # never above 1
    assert DriftSettings(interval=30.0, false_alarm_budget=300.0).level(5) == pytest.approx(0.02)


@pytest.mark.parametrize("args", [(0.0, 10.0, 1), (1.0, 0.0, 1), (1.0, 10.0, 0)])
def test_level_rejects_nonsense(args: tuple[float, float, int]) -> None:
    with pytest.raises(ValueError, match="level_from_budget needs"):
        bounds.level_from_budget(*args)


def test_radii_are_the_inequalities_solved_for_the_level() -> None:
    # Massart: 2 exp(-2 n e^2) = level
    e = bounds.dkw_radius(400, 1e-6)
    assert 2 * math.exp(-2 * 400 * e * e) == pytest.approx(1e-6)
    # Bretagnolle-Huber-Carol on TV (= L1 / 2): 2^k exp(-2 n t^2) = level
    t = bounds.tv_radius(400, 7, 1e-6)
    assert 2**7 * math.exp(-2 * 400 * t * t) == pytest.approx(1e-6)
    # one-sided Hoeffding
    h = bounds.missing_radius(400, 1e-6)
    assert math.exp(-2 * 400 * h * h) == pytest.approx(1e-6)


@pytest.mark.parametrize(
    ("p_value", "radius"),
    [
        (lambda g, a, b: bounds.ks_bound_p_value(0.05 + g, 0.05, a, b),
         lambda a, b, lv: bounds.ks_radius_pair(a, b, lv)),
        (lambda g, a, b: bounds.tv_bound_p_value(0.05 + g, 0.05, a, b, 6),
         lambda a, b, lv: bounds.tv_radius_pair(a, b, 6, lv)),
        (lambda g, a, b: bounds.missing_bound_p_value(0.05 + g, 0.05, a, b),
         lambda a, b, lv: bounds.missing_radius_pair(a, b, lv)),
    ],
)  # fmt: skip
def test_bound_p_value_is_the_level_where_the_bound_meets_the_tolerance(p_value, radius) -> None:
    for n_ref, n_cur in ((100, 100), (20_000, 300), (5_000, 5_000)):
        gap = 1.5 * radius(n_ref, n_cur, 1e-4)
        level = p_value(gap, n_ref, n_cur)
        assert 0 < level < 1e-4
        assert radius(n_ref, n_cur, level) == pytest.approx(gap, rel=1e-9)
    assert p_value(-0.01, 100, 100) == 1.0  # below the tolerance: never flagged


# --- distance oracles ------------------------------------------------------------------------


def test_ks_distance_equals_scipy_statistic() -> None:
    rng = np.random.default_rng(4)
    ref, cur = rng.normal(size=3000), rng.standard_t(3, size=1700)
    report = analyze_feature_drift({"x": ref}, {"x": cur}, ["x"])
    assert report["features"]["x"]["distance"] == pytest.approx(
        stats.ks_2samp(ref, cur).statistic, abs=1e-12
    )
    assert detect_drift_ks(ref, cur)["distance"] == report["features"]["x"]["distance"]


def test_total_variation_by_hand_includes_the_unseen_bucket() -> None:
    ref = ["a"] * 60 + ["b"] * 30 + ["c"] * 10
    cur = ["a"] * 40 + ["b"] * 30 + ["z"] * 30
    # shares a .6/.4, b .3/.3, c .1/0, __other__ 0/0, __unseen__ 0/.3: (0.2 + 0 + 0.1 + 0.3) / 2
    report = analyze_feature_drift({"p": ref}, {"p": cur}, ["p"])
    assert report["features"]["p"]["distance"] == pytest.approx(0.3)
    assert detect_drift_psi(ref, cur)["distance"] == pytest.approx(0.3)
    assert detect_drift_chi2(ref, cur)["distance"] == pytest.approx(0.3)


# --- coverage of the bounds, by simulation ------------------------------------------------


def _true_ks_normal_shift(delta: float) -> float:
    return float(2 * special.ndtr(delta / 2) - 1)


@pytest.mark.parametrize(("n", "draws"), [(100, 400), (1_000, 300), (10_000, 60)])
def test_ks_lower_bound_covers_the_true_distance(n: int, draws: int) -> None:
    """The true KS distance is below the lower bound in at most the level's share of draws.

    N(0, 1) against N(0.3, 1): the true distance is 2 Phi(0.15) - 1.  The bound is
    distribution-free and conservative, so the share is far below the level; the second
    check keeps it from being uselessly loose (it must sit within 3 radii of the truth).
    """
    rng = np.random.default_rng(n)
    level = 0.2
    truth = _true_ks_normal_shift(0.3)
    above, gaps = 0, []
    for _ in range(draws):
        ref, cur = rng.normal(0, 1, n), rng.normal(0.3, 1, n)
        f = evaluate_drift({"x": ref}, {"x": cur}, ["x"], level=level, fallback=False).features["x"]
        above += f.lower_bound > truth
        gaps.append((truth - f.lower_bound) / (f.detectable_distance - f.tolerance))
    assert above <= level * draws
    assert np.mean(gaps) < 3.0


@pytest.mark.parametrize(("n", "draws"), [(100, 400), (1_000, 300), (10_000, 60)])
def test_total_variation_lower_bound_covers_the_true_distance(n: int, draws: int) -> None:
    rng = np.random.default_rng(n + 1)
    cats = np.array(["a", "b", "c", "d"])
    p, q = np.array([0.4, 0.3, 0.2, 0.1]), np.array([0.25, 0.3, 0.25, 0.2])
    truth = 0.5 * float(np.abs(p - q).sum())
    level, above = 0.2, 0
    for _ in range(draws):
        ref, cur = rng.choice(cats, n, p=p), rng.choice(cats, n, p=q)
        f = evaluate_drift({"x": ref}, {"x": cur}, ["x"], level=level, fallback=False).features["x"]
        above += f.lower_bound > truth
    assert above <= level * draws


@pytest.mark.parametrize("n", [100, 1_000, 10_000])
def test_missing_share_lower_bound_covers_the_true_rise(n: int) -> None:
    rng = np.random.default_rng(n + 2)
    level, above, draws = 0.2, 0, 200
    for _ in range(draws):
        ref = np.where(rng.random(n) < 0.05, np.nan, 1.0)
        cur = np.where(rng.random(n) < 0.15, np.nan, 1.0)
        f = evaluate_drift({"x": ref}, {"x": cur}, ["x"], level=level, fallback=False).features["x"]
        above += f.missing_lower_bound > 0.10
    assert above <= level * draws


def test_no_drift_false_alarm_rate_stays_under_the_level() -> None:
    """Identical distributions, a tolerance of 0: flagged in at most the level's share."""
    rng = np.random.default_rng(9)
    level, flagged, draws = 0.1, 0, 300
    for _ in range(draws):
        ref, cur = rng.poisson(3, 500).astype(float), rng.poisson(3, 200).astype(float)
        report = evaluate_drift(
            {"x": ref}, {"x": cur}, ["x"], level=level, tolerance_numeric=0.0, fallback=False
        )
        flagged += report.features["x"].drifted
    assert flagged <= level * draws


@pytest.mark.parametrize("n", [200, 2_000])
def test_a_true_distance_at_the_tolerance_is_flagged_at_most_at_the_level(n: int) -> None:
    """The property the budget rests on, at its edge: data whose true distance *equals* the
    tolerance (a normal mean shift with 2 Phi(d / 2) - 1 = 0.1; categories 0.1 apart in
    total variation) are flagged in at most the level's share of draws."""
    rng = np.random.default_rng(n + 3)
    tolerance, level, draws = 0.1, 0.2, 200
    shift = 2 * float(special.ndtri((1 + tolerance) / 2))
    assert _true_ks_normal_shift(shift) == pytest.approx(tolerance)
    cats = np.array(["a", "b", "c"])
    p, q = np.array([0.5, 0.3, 0.2]), np.array([0.4, 0.3, 0.3])  # TV 0.1
    flagged = 0
    for _ in range(draws):
        report = evaluate_drift(
            {"x": rng.normal(0, 1, n), "c": rng.choice(cats, n, p=p)},
            {"x": rng.normal(shift, 1, n), "c": rng.choice(cats, n, p=q)},
            ["x", "c"], level=level, tolerance_numeric=tolerance,
            tolerance_categorical=tolerance, fallback=False,
        )  # fmt: skip
        flagged += sum(f.drifted for f in report.features.values())
    assert flagged <= level * 2 * draws


# --- sparse and unseen categories -------------------------------------------------------------


def test_sparse_chi2_is_calibrated_with_a_monte_carlo_p_value() -> None:
    """10 categories, 3 rare (share 0.002), 10k reference, 20-value windows: at 0.05 the
    asymptotic p-value false-alarmed 12% of the time; the Monte Carlo one stays at the level."""
    rng = np.random.default_rng(10)
    cats = np.array([f"k{i}" for i in range(10)])
    p = np.array([0.25, 0.2, 0.15, 0.12, 0.1, 0.09, 0.084, 0.002, 0.002, 0.002])
    profile = CategoricalFeatureProfile.from_values("k", rng.choice(cats, 10_000, p=p / p.sum()))
    rejected, draws = 0, 300
    for _ in range(draws):
        result = detect_drift_chi2(profile, rng.choice(cats, 20, p=p / p.sum()))
        assert result["p_value_method"] == "monte-carlo"
        rejected += result["p_value"] < 0.05
    assert rejected <= 0.075 * draws  # 0.05 plus sampling slack (sd ~0.013)


def test_one_category_reference_still_flags_a_new_category() -> None:
    report = evaluate_drift(
        {"plan": ["basic"] * 5_000}, {"plan": ["basic"] * 700 + ["premium"] * 300}, ["plan"]
    )
    f = report.features["plan"]
    assert f.n_unseen == 300 and f.distance == pytest.approx(0.3)
    assert f.drifted and f.lower_bound >= f.tolerance


def test_unseen_bucket_is_never_merged_with_other() -> None:
    profile = CategoricalFeatureProfile.from_values(
        "c", ["a"] * 50 + ["b"] * 30 + ["rare1", "rare2"], max_categories=2
    )
    counts, unseen = profile.count_keys(np.array(["rare1", "never", "never", "a"]))
    labels = profile.bucket_labels
    assert labels[-2:] == ["__other__", "__unseen__"]
    assert counts[labels.index("__other__")] == 1 and counts[labels.index("__unseen__")] == 2
    assert unseen == 2 and profile.ref_proportions[-1] == 0.0


# --- blind spots ---------------------------------------------------------------------------


def test_a_point_mass_that_moves_is_distance_one_and_flagged() -> None:
    report = evaluate_drift({"x": np.zeros(1_000)}, {"x": -np.ones(1_000)}, ["x"], level=1e-7)
    f = report.features["x"]
    assert f.distance == 1.0 and f.drifted
    # PSI, the old voter, saw nothing: both samples fall in the same open-ended bucket
    assert detect_drift_psi(np.zeros(1_000), -np.ones(1_000))["psi"] == 0.0


def test_a_partial_point_mass_that_moves_is_at_least_its_share() -> None:
    rng = np.random.default_rng(12)
    ref = np.where(rng.random(20_000) < 0.3, 0.0, rng.normal(2, 1, 20_000))
    cur = np.where(rng.random(10_000) < 0.3, -1.0, rng.normal(2, 1, 10_000))
    f = evaluate_drift({"x": ref}, {"x": cur}, ["x"], level=1e-7).features["x"]
    assert f.distance >= 0.29 and f.drifted


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_ref=st.integers(1, 400),
    n_cur=st.integers(1, 400),
    tolerance=st.floats(0.0, 0.9),
    level=st.floats(1e-9, 0.5),
    shift=st.floats(-2.0, 2.0),
)
def test_an_observed_distance_below_the_tolerance_is_never_flagged_by_the_bound(
    seed: int, n_ref: int, n_cur: int, tolerance: float, level: float, shift: float
) -> None:
    rng = np.random.default_rng(seed)
    ref, cur = rng.normal(0, 1, n_ref), rng.normal(shift, 1, n_cur)
    f = evaluate_drift(
        {"x": ref}, {"x": cur}, ["x"], level=level, tolerance_numeric=tolerance, fallback=False
    ).features["x"]
    if f.distance < f.tolerance:
        assert not f.distance_drifted
    assert f.distance_drifted == (f.distance >= f.detectable_distance - 1e-12) or math.isclose(
        f.distance, f.detectable_distance
    )


# --- bugs found against external references -------------------------------------------------


def test_boolean_reference_against_zero_one_integers_is_not_unseen() -> None:
    rng = np.random.default_rng(13)
    ref = rng.random(2_000) < 0.3
    cur = (rng.random(1_000) < 0.3).astype(int)
    f = analyze_feature_drift({"flag": ref}, {"flag": cur}, ["flag"])["features"]["flag"]
    assert f["kind"] == "categorical"
    assert f["n_unseen"] == 0 and not f["drift_detected"]
    assert f["distance"] < 0.05


def test_boolean_reference_is_categorical_for_every_test() -> None:
    ref = ReferenceProfile.from_data({"flag": np.array([True, False] * 100)})
    assert ref["flag"].kind == "categorical"
    # detect_drift_ks keeps its contract: a boolean sample counts as 0/1, and its KS
    # distance is the categorical total variation of the same data
    cur = np.array([True] * 150 + [False] * 50)
    ks = detect_drift_ks(np.array([True, False] * 100), cur)
    tv = analyze_feature_drift({"f": np.array([True, False] * 100)}, {"f": cur}, ["f"])
    assert ks["distance"] == pytest.approx(tv["features"]["f"]["distance"])


@pytest.mark.parametrize("shape", [(10, 2), (2, 5)])
def test_two_dimensional_arrays_are_rejected_not_flattened(shape: tuple[int, int]) -> None:
    table = np.arange(20.0)[: shape[0] * shape[1]].reshape(shape)
    with pytest.raises(DriftInputError, match=r"expected a 1-D array.*shape"):
        analyze_feature_drift({"x": np.arange(20.0)}, {"x": table}, ["x"])
    with pytest.raises(ProfileError, match=r"expected a 1-D array.*shape"):
        ReferenceProfile.from_data({"x": table})
    with pytest.raises(DriftInputError, match=r"expected a 1-D array"):
        analyze_feature_drift({"c": ["a", "b"] * 5}, {"c": np.array([["a", "b"]] * 5)}, ["c"])


def test_exporter_settings_exclude_unmonitored_features(tmp_path) -> None:
    from exporter.config import load_config, resolve_features

    (tmp_path / "ref.csv").write_text("age,plan\n1,a\n2,b\n3,a\n")
    path = tmp_path / "c.yml"
    path.write_text(
        "model: {name: m}\nlogs: {paths: [x]}\nreference: {path: ref.csv}\n"
        "features: {age: {tolerance: 0.2}, plan: {monitor: false}}\n"
    )
    config = load_config(path, {})
    profile = ReferenceProfile.from_file(tmp_path / "ref.csv")
    assert resolve_features(config, profile) == {"age": "numeric"}
    assert DriftSettings.from_config(config.drift, config.features).tolerances == {"age": 0.2}


@pytest.mark.parametrize("kind", ["numeric", "categorical"])
def test_the_reference_floor_is_the_detectable_distance_without_the_windows_radius(
    kind: str,
) -> None:
    from mlops_core.drift import reference_floor, reference_rows_for

    rng = np.random.default_rng(1)
    if kind == "numeric":
        ref, cur = rng.normal(0, 1, 89), rng.normal(0, 1, 5_000)
    else:
        ref, cur = rng.choice(["a", "b", "c"], 89), rng.choice(["a", "b", "c"], 5_000)
    profile = ReferenceProfile.from_data({"f": ref})
    level = 1e-6
    f = evaluate_drift(profile, {"f": cur}, ["f"], level=level, fallback=False).features["f"]
    feature = profile.features["f"]
    floor = reference_floor(feature, 0.05, level)
    if kind == "numeric":
        window = bounds.dkw_radius(5_000, level / 4)
    else:
        window = bounds.tv_radius(5_000, feature.n_buckets, level / 4)
    assert f.detectable_distance == pytest.approx(floor + window, rel=1e-12)
    assert 0.3 < floor < 0.6  # 89 rows: a shift below this is never flagged
    need = reference_rows_for(feature, 0.05, level)
    bigger = ReferenceProfile.from_data({"f": np.resize(ref, need)}).features["f"]
    assert reference_floor(bigger, 0.05, level) == pytest.approx(0.10, abs=1e-3)
