"""Invariants of the drift statistics, checked on generated samples (hypothesis)."""

from __future__ import annotations

import math
from unittest import mock

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats

from mlops_core import detect_drift_chi2, detect_drift_ks, detect_drift_psi, drift
from mlops_core.profile import NumericFeatureProfile
from tests.conftest import KS_PATHS, ks_path

FAST = settings(max_examples=60, deadline=None)

# finite values with many ties (a small grid) and some spread-out ones
values = st.one_of(
    st.integers(-5, 5).map(float),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
)
samples = hnp.arrays(np.float64, st.integers(1, 60), elements=values)
categories = st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), min_size=1, max_size=60)


def _asymptotic_p_defined(exact: bool, ref: np.ndarray, cur: np.ndarray) -> bool:
    """False for one value against one on the public fallback: scipy's asymptotic p-value
    is NaN there (pinned in test_drift.py's test of the fallback)."""
    return exact or ref.size + cur.size > 2


@pytest.mark.parametrize("path", KS_PATHS)
@FAST
@given(samples)
def test_identical_samples_give_ks_zero_and_psi_zero(path: str, x: np.ndarray) -> None:
    with ks_path(path) as exact:
        assume(_asymptotic_p_defined(exact, x, x))
        ks = detect_drift_ks(x, x)
    assert ks["statistic"] == 0.0
    assert ks["p_value"] == 1.0
    assert ks["drift_detected"] is False
    psi = detect_drift_psi(x, x)
    assert abs(psi["psi"]) < 1e-12


@FAST
@given(samples, samples, st.integers(2, 20))
def test_psi_is_finite_and_never_negative(ref: np.ndarray, cur: np.ndarray, buckets: int) -> None:
    result = detect_drift_psi(ref, cur, buckets=buckets)
    assert math.isfinite(result["psi"])
    assert result["psi"] >= 0.0
    assert 1 <= result["buckets"] <= buckets
    assert math.isclose(sum(result["reference_proportions"]), 1.0)
    assert math.isclose(sum(result["current_proportions"]), 1.0)


@pytest.mark.filterwarnings("ignore:ks_2samp. Exact calculation unsuccessful:RuntimeWarning")
@pytest.mark.parametrize("path", KS_PATHS)
@FAST
@given(samples, samples)
def test_ks_is_finite_bounded_and_equals_scipy(path: str, ref: np.ndarray, cur: np.ndarray) -> None:
    with ks_path(path) as exact:
        assume(_asymptotic_p_defined(exact, ref, cur))
        result = detect_drift_ks(ref, cur)
    assert 0.0 <= result["statistic"] <= 1.0
    assert 0.0 <= result["p_value"] <= 1.0
    # scipy's own choice; the fallback has only its asymptotic p-value
    oracle = stats.ks_2samp(ref, cur, method="auto" if exact else "asymp")
    assert abs(result["statistic"] - float(oracle.statistic)) <= 1e-12
    assert abs(result["p_value"] - float(oracle.pvalue)) <= 1e-3


@FAST
@given(samples, st.integers(2, 20))
def test_every_reference_bucket_holds_reference_values(ref: np.ndarray, buckets: int) -> None:
    profile = NumericFeatureProfile.from_values("x", ref, buckets)
    assert profile.n_buckets <= buckets
    if np.unique(ref).size > 1:  # a constant keeps one edge at its value, and an empty top
        assert profile.ref_counts.min() > 0


# larger samples on coarse or fine grids, discrete or continuous, shifted or not
grid_sample = st.tuples(
    st.integers(1, 400),
    st.sampled_from([3, 20, 1000]),  # distinct values: heavy ties .. almost none
    st.floats(-0.5, 0.5),
    st.integers(0, 2**32 - 1),
)


@FAST
@given(grid_sample, grid_sample, st.sampled_from([(16, 4, 2), (9, 3), (64, 8), (2,)]))
def test_pruned_ks_search_equals_scipy(ref_spec: tuple, cur_spec: tuple, steps: tuple) -> None:
    """The pruned search (small grid steps, so every level is used) loses no candidate."""

    def draw(size: int, distinct: int, shift: float, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return np.floor(rng.normal(shift, 1.0, size) * distinct / 6) / distinct

    ref, cur = draw(*ref_spec), draw(*cur_spec)
    with mock.patch.object(drift, "KS_GRID_STEPS", steps):
        ours = drift._ks_statistic(np.sort(ref), np.sort(cur))
    assert ours == pytest.approx(float(stats.ks_2samp(ref, cur).statistic), abs=1e-12)


@FAST
@given(categories, categories)
def test_categorical_tests_never_nan(ref: list[str], cur: list[str]) -> None:
    chi2 = detect_drift_chi2(ref, cur)
    assert math.isfinite(chi2["statistic"]) and 0.0 <= chi2["p_value"] <= 1.0
    psi = detect_drift_psi(ref, cur)
    assert math.isfinite(psi["psi"]) and psi["psi"] >= 0.0
    assert psi["n_unseen"] == sum(1 for c in cur if c not in set(ref))


@FAST
@given(categories)
def test_identical_categorical_samples_show_no_drift(x: list[str]) -> None:
    assert detect_drift_psi(x, x)["psi"] < 1e-12
    chi2 = detect_drift_chi2(x, x)
    assert chi2["statistic"] < 1e-9 and chi2["drift_detected"] is False
