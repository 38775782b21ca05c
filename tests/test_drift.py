"""Drift tests: oracles against scipy, hand-computed PSI, verdict rules and bad input."""

from __future__ import annotations

import math
from unittest import mock

import numpy as np
import pytest
from scipy import stats

from mlops_core import (
    DriftInputError,
    ReferenceProfile,
    analyze_feature_drift,
    detect_drift_chi2,
    detect_drift_ks,
    detect_drift_psi,
)
from mlops_core import statistics as stats_module
from mlops_core.drift import _kolmogorov_sf, drift_against_profile
from tests.conftest import ks_path

BRIEF_REFERENCE = {
    "age": np.array([25, 30, 35, 28, 32, 29, 31, 27]),
    "income": np.array([45000, 52000, 38000, 61000, 48000, 55000]),
}
BRIEF_PRODUCTION = {
    "age": np.array([26, 31, 34, 29, 33, 28]),
    "income": np.array([75000, 82000, 68000, 91000, 78000, 85000]),
}


# --- KS against scipy ----------------------------------------------------------------------


def _samples(n1: int, n2: int, *, ties: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.normal(0.0, 1.0, n1)
    b = rng.normal(0.08, 1.1, n2)
    if ties:
        a, b = np.round(a, 1), np.round(b, 1)
    return a, b


@pytest.mark.parametrize("ties", [False, True], ids=["continuous", "ties"])
@pytest.mark.parametrize(
    ("n1", "n2"),
    [
        (3, 3),
        (8, 6),
        (50, 50),
        (100, 37),
        (999, 1000),
        (2000, 500),  # exact
        (12_000, 300),
        (30_000, 15_000),
        (100_000, 10_000),  # asymptotic
    ],
)
def test_ks_matches_scipy(n1: int, n2: int, ties: bool, ks_exact: bool) -> None:
    """On both KS paths (ks_exact: see tests/conftest.py), against scipy's method of the same
    name: ks_2samp's own choice, or its asymptotic one where the fallback has no other."""
    ref, cur = _samples(n1, n2, ties=ties, seed=n1 + n2)
    ours = detect_drift_ks(ref, cur)
    method = "exact" if ks_exact and max(n1, n2) <= 10_000 else "asymp"
    oracle = stats.ks_2samp(ref, cur, method=method if ks_exact else "asymp")
    assert ours["statistic"] == pytest.approx(float(oracle.statistic), abs=1e-12)
    assert ours["p_value"] == pytest.approx(float(oracle.pvalue), abs=1e-3)
    assert ours["method"] == method
    assert ours["drift_detected"] == (ours["p_value"] < 0.05)
    assert (ours["n_reference"], ours["n_current"]) == (n1, n2)


@pytest.mark.parametrize("method", ["exact", "asymp"])
def test_ks_forced_method_matches_scipy(method: str, ks_exact: bool) -> None:
    ref, cur = _samples(400, 300, ties=False, seed=5)
    ours = detect_drift_ks(ref, cur, method=method)
    used = method if ks_exact else "asymp"
    oracle = stats.ks_2samp(ref, cur, method=used)
    assert ours["p_value"] == pytest.approx(float(oracle.pvalue), abs=1e-3)
    assert ours["method"] == used


def test_ks_integer_samples_with_heavy_ties(ks_exact: bool) -> None:
    rng = np.random.default_rng(9)
    ref, cur = rng.integers(0, 5, 20_000), rng.integers(0, 6, 800)
    ours, oracle = detect_drift_ks(ref, cur), stats.ks_2samp(ref, cur)
    assert ours["statistic"] == pytest.approx(float(oracle.statistic), abs=1e-12)
    assert ours["p_value"] == pytest.approx(float(oracle.pvalue), abs=1e-3)


def test_ks_with_a_profile_equals_raw_reference() -> None:
    ref, cur = _samples(20_000, 700, ties=True, seed=1)
    profile = ReferenceProfile.from_data({"x": ref})
    assert detect_drift_ks(profile["x"], cur) == detect_drift_ks(ref, cur)


@pytest.mark.parametrize("shift", [0.0, 0.02, 0.5])
def test_ks_pruned_search_is_exact_and_searches_few_values(shift: float) -> None:
    rng = np.random.default_rng(11)
    ref, cur = rng.normal(0.0, 1.0, 100_000), rng.normal(shift, 1.0, 100_000)
    searched: list[int] = []
    ranks = stats_module._ranks

    def counting(r: np.ndarray, c: np.ndarray, points: np.ndarray | None) -> object:
        searched.append(c.size if points is None else points.size)
        return ranks(r, c, points)

    profile = ReferenceProfile.from_data({"x": ref})
    with mock.patch.object(stats_module, "_ranks", counting):
        ours = detect_drift_ks(profile["x"], cur)
    assert ours["statistic"] == pytest.approx(stats.ks_2samp(ref, cur).statistic, abs=1e-12)
    assert sum(searched) < 0.2 * cur.size  # the point of the pruning: no full search


def test_ks_statistic_reached_at_either_end() -> None:
    """Extremes at the first and the last current value, where the grid blocks end."""
    ref = np.arange(1000.0)
    for cur in (np.arange(-50.0, 950.0), np.arange(50.0, 1050.0), np.full(100, 999.0)):
        ours = detect_drift_ks(ref, cur)["statistic"]
        assert ours == pytest.approx(stats.ks_2samp(ref, cur).statistic, abs=1e-12)


@pytest.mark.parametrize("n", [141, 500, 9091, 40_000])
def test_fast_kolmogorov_sf_agrees_with_kstwo(n: int, ks_exact: bool) -> None:
    for z in (0.2, 0.5, 0.8, 1.0, 1.3, 1.8, 2.5, 4.0):
        d = z / math.sqrt(n)
        assert _kolmogorov_sf(d, n) == pytest.approx(stats.kstwo.sf(d, n), abs=1e-5), z


@pytest.mark.filterwarnings("ignore:divide by zero encountered:RuntimeWarning")
def test_without_scipys_private_routines_p_values_are_scipys_asymptotic_ones() -> None:
    """What a user loses on a scipy without the private routines (the public fallback):
    the exact distribution, so an exact request is answered, and labelled, asymptotically.
    One value against one value has an effective sample size that rounds to 0: scipy's
    ks_2samp(method="asymp") says NaN there, mlops_core says 1.0 (no evidence at all)."""
    ref, cur = _samples(8, 6, ties=False, seed=3)
    with ks_path("public-fallback"):
        ours = detect_drift_ks(ref, cur, method="exact")
        single = detect_drift_ks(np.array([1.0]), np.array([2.0]))
    asymp = stats.ks_2samp(ref, cur, method="asymp")
    assert ours["method"] == "asymp"
    assert ours["p_value"] == pytest.approx(float(asymp.pvalue), abs=1e-12)
    assert ours["p_value"] != pytest.approx(float(stats.ks_2samp(ref, cur).pvalue), abs=1e-3)
    assert single["p_value"] == 1.0
    assert math.isnan(float(stats.ks_2samp([1.0], [2.0], method="asymp").pvalue))


def test_ks_counts_and_drops_non_finite_values() -> None:
    cur = np.array([1.0, np.nan, 2.0, np.inf, 3.0])
    result = detect_drift_ks(np.arange(10.0), cur)
    assert result["n_current"] == 3
    assert result["n_missing"] == 2
    assert result["missing_rate"] == pytest.approx(2 / 5)
    oracle = stats.ks_2samp(np.arange(10.0), [1.0, 2.0, 3.0])
    assert result["statistic"] == pytest.approx(float(oracle.statistic), abs=1e-12)


# --- PSI -----------------------------------------------------------------------------------


def _psi_by_hand(r: list[float], c: list[float], eps: float = 1e-4) -> float:
    total = 0.0
    for ri, ci in zip(r, c, strict=True):
        ri, ci = max(ri, eps), max(ci, eps)
        total += (ci - ri) * math.log(ci / ri)
    return total


def test_psi_worked_example_by_hand() -> None:
    result = detect_drift_psi(np.arange(1, 11), [1, 2, 3, 4, 5, 6, 7, 8], buckets=2)
    # median of 1..10 is 5: reference (0.5, 0.5); current 5 of 8 <= 5, 3 of 8 above
    expected = 0.125 * math.log(0.625 / 0.5) + (-0.125) * math.log(0.375 / 0.5)
    assert result["psi"] == pytest.approx(expected, rel=1e-12)
    assert result["psi"] == pytest.approx(0.063853, abs=1e-6)
    assert result["statistic"] == result["psi"]
    assert result["buckets"] == 2
    assert result["reference_proportions"] == [0.5, 0.5]
    assert result["current_proportions"] == [0.625, 0.375]
    assert result["drift_detected"] is False


def test_psi_empty_bucket_is_floored_at_epsilon() -> None:
    result = detect_drift_psi(np.arange(1, 11), [1, 2, 3], buckets=2)
    expected = 0.5 * math.log(1 / 0.5) + (1e-4 - 0.5) * math.log(1e-4 / 0.5)
    assert result["psi"] == pytest.approx(expected, rel=1e-12)
    assert result["psi"] == pytest.approx(4.604318, abs=1e-6)
    assert result["drift_detected"] is True
    looser = detect_drift_psi(np.arange(1, 11), [1, 2, 3], buckets=2, epsilon=1e-2)
    assert looser["psi"] == pytest.approx(_psi_by_hand([0.5, 0.5], [1, 0], eps=1e-2), rel=1e-12)
    assert looser["epsilon"] == 1e-2


def test_psi_ten_buckets_by_hand() -> None:
    ref = np.arange(1, 101)  # edges 10, 20, ..., 90
    cur = np.array([5, 15, 15, 25, 95, 95, 95, 95, 200, -3])
    result = detect_drift_psi(ref, cur)
    # buckets: <=10: 5, -3 | (10,20]: 15, 15 | (20,30]: 25 | ... | >90: 95 x4, 200
    c = [0.2, 0.2, 0.1, 0, 0, 0, 0, 0, 0, 0.5]
    assert result["current_proportions"] == pytest.approx(c)
    assert result["psi"] == pytest.approx(_psi_by_hand([0.1] * 10, c), rel=1e-12)


def test_psi_edges_come_from_the_reference_only() -> None:
    ref = np.arange(100.0)
    shifted = detect_drift_psi(ref, np.arange(1000.0, 1100.0))
    assert shifted["current_proportions"][-1] == 1.0
    assert shifted["psi"] > 4
    assert shifted["buckets"] == 10


def test_psi_tied_reference_collapses_buckets() -> None:
    ref = np.array([0.0] * 90 + [1.0] * 10)
    result = detect_drift_psi(ref, [0.0, 0.0, 1.0, 5.0], buckets=10)
    assert result["buckets"] == 2
    assert result["bucket_labels"] == ["0.0", "+Inf"]
    assert result["current_proportions"] == [0.5, 0.5]
    assert result["psi"] == pytest.approx(_psi_by_hand([0.9, 0.1], [0.5, 0.5]), rel=1e-12)


def test_psi_with_a_profile_uses_its_edges() -> None:
    ref = np.random.default_rng(2).normal(size=1000)
    profile = ReferenceProfile.from_data({"x": ref}, buckets=5)["x"]
    cur = np.random.default_rng(3).normal(0.3, 1, 400)
    from_profile = detect_drift_psi(profile, cur, buckets=20)  # buckets ignored
    assert from_profile["buckets"] == 5
    assert from_profile["psi"] == pytest.approx(detect_drift_psi(ref, cur, buckets=5)["psi"])


def test_psi_identical_samples_is_zero() -> None:
    x = np.random.default_rng(8).normal(size=500)
    assert detect_drift_psi(x, x)["psi"] == 0.0


# --- categorical ---------------------------------------------------------------------------


def test_chi2_matches_scipy_contingency() -> None:
    ref = ["a"] * 50 + ["b"] * 30 + ["c"] * 20
    cur = ["a"] * 20 + ["b"] * 40 + ["c"] * 25 + ["new"] * 15
    result = detect_drift_chi2(ref, cur)
    table = [[50, 30, 20, 0], [20, 40, 25, 15]]
    oracle = stats.chi2_contingency(table, correction=False)
    assert result["statistic"] == pytest.approx(oracle.statistic, rel=1e-12)
    assert result["p_value"] == pytest.approx(oracle.pvalue, rel=1e-9)
    assert result["dof"] == 3
    assert result["bucket_labels"] == ["a", "b", "c", "__other__", "__unseen__"]
    assert result["current_counts"] == [20, 40, 25, 0, 15]
    assert result["p_value_method"] == "asymptotic"  # every expected count >= 5
    assert result["n_unseen"] == 15
    assert result["drift_detected"] is True


def test_chi2_single_shared_category_is_no_evidence() -> None:
    result = detect_drift_chi2(["a"] * 10, ["a"] * 4)
    assert (result["statistic"], result["p_value"], result["drift_detected"]) == (0.0, 1.0, False)


def test_categorical_psi_counts_unseen_in_their_own_bucket() -> None:
    result = detect_drift_psi(["a", "a", "b", "b"], ["a", "b", "zzz", "zzz"])
    assert result["bucket_labels"] == ["a", "b", "__other__", "__unseen__"]
    assert result["current_proportions"] == [0.25, 0.25, 0.0, 0.5]
    assert result["n_unseen"] == 2
    assert result["psi"] == pytest.approx(
        _psi_by_hand([0.5, 0.5, 0.0, 0.0], [0.25, 0.25, 0.0, 0.5]), rel=1e-12
    )
    assert result["distance"] == pytest.approx(0.5)  # total variation: the unseen half


def test_categorical_missing_values_are_counted() -> None:
    result = detect_drift_chi2(["a", "b"] * 10, ["a", None, float("nan"), "b"])
    assert (result["n_current"], result["n_missing"]) == (2, 2)
    assert result["missing_rate"] == 0.5


# --- analyze_feature_drift -----------------------------------------------------------------


def test_brief_example_income_drifted_age_not_for_a_reason() -> None:
    report = analyze_feature_drift(BRIEF_REFERENCE, BRIEF_PRODUCTION, ["age", "income"])
    assert report["features_with_drift"] == ["income"]
    assert report["drift_alert"] is True
    assert report["drift_share"] == 0.5
    income, age = report["features"]["income"], report["features"]["age"]
    # PSI never votes, whatever its (noisy) value
    assert income["psi"]["votes"] is False and age["psi"]["votes"] is False
    assert age["psi"]["psi"] > 0.2  # it would have voted "drift" by luck
    # 8 and 6 values: no bound reaches a tolerance, so the exact KS test decides
    assert income["basis"] == age["basis"] == "significance"
    assert income["detectable_distance"] is None
    # the samples do not overlap: exact KS p = 2 / C(12, 6), distance 1
    assert income["ks"]["p_value"] == pytest.approx(2 / math.comb(12, 6), rel=1e-9)
    assert income["distance"] == 1.0
    assert age["ks"]["p_value"] > 0.5
    assert income["tests"] == ["ks", "psi"]
    assert "significance test" in income["reason"]


def test_features_with_drift_keeps_the_given_order() -> None:
    rng = np.random.default_rng(0)
    ref = {n: rng.normal(size=500) for n in "abcd"}
    cur = {n: rng.normal(3.0 if n in "db" else 0.0, 1, 500) for n in "abcd"}
    report = analyze_feature_drift(ref, cur, ["d", "c", "b", "a"])
    assert report["features_with_drift"] == ["d", "b"]
    assert report["n_drifted"] == 2 and report["drift_share"] == 0.5


def test_tests_are_chosen_by_feature_type() -> None:
    ref = {"x": np.arange(200.0), "plan": ["a", "b"] * 100}
    cur = {"x": np.arange(200.0), "plan": ["a", "b", "c", "a"] * 50}
    report = analyze_feature_drift(ref, cur, ["x", "plan"])
    assert report["features"]["x"]["tests"] == ["ks", "psi"]
    assert report["features"]["plan"]["tests"] == ["chi2", "psi"]
    assert report["features"]["plan"]["kind"] == "categorical"
    assert report["features"]["plan"]["n_unseen"] == 50


def test_explicit_tests_skip_what_does_not_fit() -> None:
    ref = {"x": np.arange(200.0), "plan": ["a", "b"] * 100}
    report = analyze_feature_drift(ref, ref, ["x", "plan"], tests=["ks", "psi"])
    assert report["features"]["x"]["tests"] == ["ks", "psi"]
    assert report["features"]["plan"]["tests"] == ["psi"]
    assert report["features"]["plan"]["skipped_tests"] == {
        "ks": "does not apply to a categorical feature"
    }
    assert report["features"]["plan"]["distance"] == 0.0  # the verdict still runs


def test_ks_alone_on_a_categorical_feature_is_skipped_not_an_error() -> None:
    ref = {"plan": ["a", "b"] * 100}
    cur = {"plan": ["c"] * 200}
    report = analyze_feature_drift(ref, cur, ["plan"], tests=["ks"])
    plan = report["features"]["plan"]
    assert plan["tests"] == [] and "ks" in plan["skipped_tests"]
    assert plan["drift_detected"] is True and plan["distance"] == 1.0


def test_significant_but_negligible_shift_on_a_huge_sample_is_not_flagged() -> None:
    rng = np.random.default_rng(12)
    ref = {"x": rng.normal(size=50_000)}
    cur = {"x": rng.normal(0.1, 1, 20_000)}  # KS distance ~0.04, below the 0.05 tolerance
    report = analyze_feature_drift(ref, cur, ["x"])
    x = report["features"]["x"]
    assert x["ks"]["p_value"] < 1e-4 and x["ks"]["drift_detected"] is True  # "significant"
    assert x["distance"] < x["tolerance"] == 0.05
    assert x["drift_detected"] is False and report["drift_alert"] is False
    # the same shift is flagged by a user who says 0.01 matters
    strict = analyze_feature_drift(ref, cur, ["x"], tolerance_numeric=0.01)
    assert strict["features"]["x"]["drift_detected"] is True


def test_psi_never_votes() -> None:
    report = analyze_feature_drift(BRIEF_REFERENCE, BRIEF_PRODUCTION, ["age"], tests=["psi"])
    age = report["features"]["age"]
    assert age["psi"]["psi"] > 0.2 and age["psi"]["drift_detected"] is True  # noise
    assert age["psi"]["votes"] is False and age["drift_detected"] is False


def _p_values(report: dict) -> list[float]:
    return [report["features"][n]["ks"]["p_value"] for n in report["features"]]


def test_bonferroni_correction() -> None:
    rng = np.random.default_rng(21)
    ref = {f"f{i}": rng.normal(size=300) for i in range(6)}
    cur = {f"f{i}": rng.normal(0.2 * i, 1, 300) for i in range(6)}
    names = list(ref)
    plain = analyze_feature_drift(ref, cur, names, tests=["ks"])
    bonf = analyze_feature_drift(ref, cur, names, tests=["ks"], correction="bonferroni")
    for name, p in zip(names, _p_values(plain), strict=True):
        f = bonf["features"][name]
        assert f["ks"]["p_value"] == p  # reported figures are not adjusted
        assert f["level"] == pytest.approx(0.05 / 6)
        assert f["p_value"] == plain["features"][name]["p_value"]
        assert f["drift_detected"] == (f["p_value"] <= 0.05 / 6)
        assert f["drift_detected"] == (f["lower_bound"] >= f["tolerance"])
    assert set(bonf["features_with_drift"]) <= set(plain["features_with_drift"])
    assert bonf["features_with_drift"]  # the 1.0-sigma shift survives


def test_bonferroni_can_remove_a_marginal_feature() -> None:
    base = np.arange(2000.0)
    names = ["a", "b", "c"]
    for shift in range(150, 400, 5):  # the first shift whose bound p-value is marginal
        cur = {"a": base + shift, "b": base, "c": base}
        p = analyze_feature_drift({n: base for n in names}, cur, ["a"])["features"]["a"]
        if 0.05 / 3 < p["p_value"] < 0.05:
            break
    else:
        pytest.fail("no marginal shift found")
    ref = {n: base for n in names}
    assert analyze_feature_drift(ref, cur, names, tests=["ks"])["features_with_drift"] == ["a"]
    corrected = analyze_feature_drift(ref, cur, names, tests=["ks"], correction="bonferroni")
    assert corrected["features_with_drift"] == []


def test_benjamini_hochberg_step_up() -> None:
    rng = np.random.default_rng(5)
    ref = {f"f{i}": rng.normal(size=200) for i in range(8)}
    cur = {f"f{i}": rng.normal(0.15 * i, 1, 200) for i in range(8)}
    names = list(ref)
    report = analyze_feature_drift(ref, cur, names, tests=["ks"], correction="benjamini-hochberg")
    raw = [report["features"][n]["p_value"] for n in names]
    # BH written out: reject the k smallest, k the largest rank with p_(k) <= k * q / m
    m, order = len(raw), np.argsort(raw)
    k = max((r for r in range(1, m + 1) if raw[order[r - 1]] <= r * 0.05 / m), default=0)
    expected = sorted(names[i] for i in order[:k])
    assert sorted(report["features_with_drift"]) == expected
    assert 0 < k < m  # the case exercises the step-up, not an all-or-nothing outcome
    for name in names:
        f = report["features"][name]
        assert f["level"] == pytest.approx(0.05 * max(k, 1) / m)
        assert f["drift_detected"] == (f["lower_bound"] >= f["tolerance"])


def test_benjamini_hochberg_with_a_nan_p_value_does_not_crash() -> None:
    ref = {"a": np.array([1.0]), "b": np.arange(100.0)}
    cur = {"a": np.array([2.0]), "b": np.arange(100.0) + 50}
    report = analyze_feature_drift(
        ref, cur, ["a", "b"], correction="benjamini-hochberg", ks_method="asymp"
    )
    assert report["features"]["b"]["drift_detected"] is True
    assert report["features"]["a"]["drift_detected"] is False


def test_profile_and_dict_references_give_the_same_report() -> None:
    rng = np.random.default_rng(30)
    ref = {"x": rng.normal(size=3000), "plan": rng.choice(["a", "b", "c"], 3000)}
    cur = {"x": rng.normal(0.2, 1, 800), "plan": rng.choice(["a", "b", "d"], 800)}
    from_dict = analyze_feature_drift(ref, cur, ["x", "plan"])
    profile = ReferenceProfile.from_data(ref)
    from_profile = analyze_feature_drift(profile, cur, ["x", "plan"])
    assert from_profile["profile_hash"] == profile.hash
    for name in ("x", "plan"):
        assert from_profile["features"][name] == from_dict["features"][name]


def test_missing_rate_per_feature() -> None:
    ref = {"x": np.arange(100.0)}
    cur = {"x": np.r_[np.arange(90.0), [np.nan] * 8, [np.inf, -np.inf]]}
    x = analyze_feature_drift(ref, cur, ["x"])["features"]["x"]
    assert (x["n_current"], x["n_missing"]) == (90, 10)
    assert x["missing_rate"] == pytest.approx(0.1)
    assert x["reference_missing_rate"] == 0.0


def test_min_drift_share_gates_the_alert() -> None:
    report = analyze_feature_drift(
        BRIEF_REFERENCE, BRIEF_PRODUCTION, ["age", "income"], min_drift_share=0.75
    )
    assert report["features_with_drift"] == ["income"]
    assert report["drift_alert"] is False


def test_drift_against_profile_defaults_to_shared_features() -> None:
    rng = np.random.default_rng(4)
    profile = ReferenceProfile.from_data({"a": rng.normal(size=500), "b": rng.normal(size=500)})
    report = drift_against_profile(profile, {"b": rng.normal(size=200), "zzz": [1.0]})
    assert list(report["features"]) == ["b"]
    with pytest.raises(DriftInputError, match="no profile feature"):
        drift_against_profile(profile, {"zzz": [1.0]})


def test_workers_give_the_same_report_and_the_same_first_error() -> None:
    rng = np.random.default_rng(8)
    ref = {f"f{i}": rng.normal(size=5000) for i in range(6)} | {"plan": ["a", "b"] * 50}
    cur = {f"f{i}": rng.normal(0.05 * i, 1, 4000) for i in range(6)} | {"plan": ["a"] * 90}
    names = list(ref)
    assert analyze_feature_drift(ref, cur, names, workers=3) == analyze_feature_drift(
        ref, cur, names
    )
    cur["f4"] = ["bad"] * 10
    with pytest.raises(DriftInputError, match="feature 'f4' current: non-numeric"):
        analyze_feature_drift(ref, cur, names, workers=2)


# --- bad input: one readable error naming the feature --------------------------------------


def test_empty_reference_array() -> None:
    with pytest.raises(DriftInputError, match="feature 'age': reference data is empty"):
        analyze_feature_drift({"age": np.array([])}, {"age": np.array([1.0])}, ["age"])


def test_empty_current_array() -> None:
    with pytest.raises(DriftInputError, match="feature 'age': current data is empty"):
        analyze_feature_drift({"age": np.arange(5.0)}, {"age": []}, ["age"])


def test_reference_without_finite_values() -> None:
    with pytest.raises(DriftInputError, match="feature 'age' reference: no finite values"):
        analyze_feature_drift({"age": [np.nan, np.inf]}, {"age": [1.0]}, ["age"])


def test_current_without_finite_values_is_judged_on_its_missing_share() -> None:
    report = analyze_feature_drift({"age": np.arange(5.0)}, {"age": [np.nan, -np.inf]}, ["age"])
    age = report["features"]["age"]
    assert age["distance"] is None and age["basis"] == "none"
    assert age["missing_rate"] == 1.0 and age["missing_rise"] == 1.0
    assert age["drift_detected"] is False  # 2 rows cannot show it at level 0.05
    big = analyze_feature_drift({"age": np.arange(500.0)}, {"age": np.full(500, np.nan)}, ["age"])[
        "features"
    ]["age"]
    assert big["missing_drifted"] is True and big["drift_detected"] is True


def test_non_numeric_current_for_a_numeric_feature() -> None:
    with pytest.raises(DriftInputError, match="feature 'age' current: non-numeric value 'old'"):
        analyze_feature_drift({"age": np.arange(5.0)}, {"age": [1.0, "old"]}, ["age"])


def test_non_numeric_reference_for_a_declared_numeric_feature() -> None:
    with pytest.raises(DriftInputError, match="feature 'age' reference: non-numeric"):
        analyze_feature_drift(
            {"age": ["a", "b"]}, {"age": [1.0]}, ["age"], feature_types={"age": "numeric"}
        )


def test_feature_missing_from_reference() -> None:
    with pytest.raises(DriftInputError, match="feature 'income' is missing from the reference"):
        analyze_feature_drift({"age": [1.0]}, {"age": [1.0], "income": [2.0]}, ["income"])


def test_feature_missing_from_current() -> None:
    with pytest.raises(DriftInputError, match="feature 'age' is missing from the current"):
        analyze_feature_drift({"age": [1.0]}, {"income": [2.0]}, ["age"])


def test_feature_missing_from_profile() -> None:
    profile = ReferenceProfile.from_data({"age": [1.0, 2.0]})
    with pytest.raises(DriftInputError, match="'income' is missing from the reference profile"):
        analyze_feature_drift(profile, {"income": [2.0]}, ["income"])


def test_errors_are_value_errors() -> None:
    with pytest.raises(ValueError, match="'age'"):
        detect_drift_ks([], [1.0], name="age")


def test_ks_on_a_categorical_profile() -> None:
    profile = ReferenceProfile.from_data({"plan": ["a", "b"]})
    with pytest.raises(DriftInputError, match="feature 'plan': the KS test needs a numeric"):
        detect_drift_ks(profile["plan"], [1.0], name="plan")


def test_unknown_test_name() -> None:
    with pytest.raises(DriftInputError, match="unknown test 'anderson'"):
        analyze_feature_drift({"a": [1.0]}, {"a": [1.0]}, ["a"], tests=["ks", "anderson"])


def test_unknown_correction() -> None:
    with pytest.raises(DriftInputError, match="correction must be one of"):
        analyze_feature_drift({"a": [1.0]}, {"a": [1.0]}, ["a"], correction="holm")


def test_empty_feature_list() -> None:
    with pytest.raises(DriftInputError, match="features is empty"):
        analyze_feature_drift({"a": [1.0]}, {"a": [1.0]}, [])


@pytest.mark.parametrize("threshold", [0, 1, -0.1, float("nan"), "0.05"])
def test_bad_p_value_threshold(threshold: object) -> None:
    with pytest.raises(DriftInputError, match="threshold must be a number in"):
        detect_drift_ks([1.0, 2.0], [1.0], threshold=threshold)  # type: ignore[arg-type]


@pytest.mark.parametrize("epsilon", [0, -1e-4, 0.5, float("nan")])
def test_bad_epsilon(epsilon: float) -> None:
    with pytest.raises(DriftInputError, match="epsilon"):
        detect_drift_psi([1.0, 2.0], [1.0], epsilon=epsilon)


def test_bad_bucket_count() -> None:
    with pytest.raises(DriftInputError, match="buckets must be an integer from 2 to 1000"):
        detect_drift_psi([1.0, 2.0], [1.0], buckets=1)


@pytest.mark.parametrize(
    ("option", "value"), [("workers", 0), ("workers", 1.5), ("min_drift_share", 2)]
)
def test_bad_analysis_options(option: str, value: object) -> None:
    with pytest.raises(DriftInputError, match=option):
        analyze_feature_drift({"a": [1.0]}, {"a": [1.0]}, ["a"], **{option: value})
