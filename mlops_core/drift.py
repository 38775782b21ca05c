"""Drift of a model's inputs: distances, their confidence bounds, and the verdict they give.

The verdict (:func:`evaluate_drift`, which :func:`analyze_feature_drift`,
:func:`drift_against_profile` and the exporter's pass all call) answers one question per
feature: *do the data show, at the level in force, that the distance between the current
values and the reference exceeds the tolerance the user said matters?*  The distance is in
probability units: the Kolmogorov-Smirnov distance for numeric features, the total
variation distance for categorical ones (over the kept categories, ``__other__`` and the
unseen-category bucket), and the rise of the missing share for both.  A feature is drifted
when the lower confidence bound of a distance (:mod:`mlops_core.bounds`) is at least its
tolerance, so a negligible shift on a huge window is not flagged, a point mass that moves
is, and the false-alarm rate is the level whatever the sample size.

The seed-era tests stay as reported figures: the KS p-value, the chi-squared p-value and
PSI (:func:`detect_drift_ks`, :func:`detect_drift_chi2`, :func:`detect_drift_psi`).  None of
them votes; their dict results keep their documented keys and gain ``distance``.

Every function takes the reference either as raw values or as the feature's profile from
:mod:`mlops_core.profile`.  With a profile the reference is never touched again beyond a
``searchsorted`` into its pre-sorted values, which is what makes a drift pass over a window
cheap enough to run every few seconds.

Bad input raises :class:`~mlops_core.errors.DriftInputError` (a ``ValueError``) whose
message names the feature.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from mlops_core import bounds
from mlops_core.errors import DriftInputError
from mlops_core.profile import (
    DEFAULT_BUCKETS,
    DEFAULT_MAX_CATEGORIES,
    CategoricalFeatureProfile,
    FeatureProfile,
    NumericFeatureProfile,
    ReferenceProfile,
    infer_kind,
    to_category_keys,
    to_float_array,
)
from mlops_core.schema import did_you_mean as _did_you_mean
from mlops_core.statistics import (
    KS_GRID_STEPS,
    KS_MAX_EXACT_N,
    _kolmogorov_sf,
    _ks_p_value,
    _ks_statistic,
    chi2_homogeneity,
    psi_value,
    total_variation,
)

__all__ = [
    "DEFAULT_EPSILON",
    "DEFAULT_TOLERANCE",
    "DriftReport",
    "FeatureDrift",
    "analyze_feature_drift",
    "detect_drift_chi2",
    "detect_drift_ks",
    "detect_drift_psi",
    "drift_against_profile",
    "evaluate_drift",
    "reference_floor",
    "reference_rows_for",
]

DEFAULT_EPSILON = 1e-4
#: default tolerance (probability units) of numeric and categorical features alike
DEFAULT_TOLERANCE = 0.05
DEFAULT_THRESHOLDS: dict[str, float] = {"ks": 0.05, "psi": 0.2, "chi2": 0.05}
TESTS = ("ks", "psi", "chi2")
#: the reported statistics that fit each kind of feature (the verdict fits both)
APPLICABLE_TESTS = {"numeric": ("ks", "chi2", "psi"), "categorical": ("chi2", "psi")}
#: what tests=None reports per kind (chi2 on a numeric feature runs over its PSI buckets)
DEFAULT_TESTS = {"numeric": ("ks", "psi"), "categorical": ("chi2", "psi")}
_CORRECTIONS = ("none", "bonferroni", "benjamini-hochberg")
_KS_METHODS = ("auto", "exact", "asymp")
# re-exported: the tests' oracle checks and the benchmarks reach them here
_REEXPORTED = (KS_GRID_STEPS, KS_MAX_EXACT_N, _kolmogorov_sf)

Basis = Literal["bound", "significance", "none"]

# --- Kolmogorov-Smirnov -----------------------------------------------------------------------


def detect_drift_ks(
    reference: Any,
    current: Any,
    threshold: float = 0.05,
    *,
    method: str = "auto",
    name: str | None = None,
) -> dict[str, Any]:
    """Two-sample Kolmogorov-Smirnov test of ``current`` against ``reference``.

    ``reference`` is raw numeric values or a :class:`NumericFeatureProfile` (whose sorted
    values are used as they are).  The statistic equals ``scipy.stats.ks_2samp``'s; the
    p-value follows scipy's ``method``: ``"auto"`` is scipy's exact distribution while both
    samples have at most 10 000 values and Smirnov's asymptotic distribution
    (``scipy.stats.kstwo`` at the effective sample size n1*n2/(n1+n2)) beyond, evaluated
    in about 0.1 ms whatever the sample sizes (see ``_kolmogorov_sf``).  ``method="asymp"``
    forces the asymptotic form, which is much cheaper than the exact one near 10 000 values
    (up to ~30 ms when the two sizes are large and coprime).
    ``drift_detected`` is ``p_value < threshold``: the classic significance test, which on
    a large sample flags shifts too small to matter (use :func:`analyze_feature_drift` for
    the verdict with a tolerance).  ``distance`` is the KS distance, the same as
    ``statistic``.  A boolean sample counts as 0/1.
    """
    label = _label(name)
    _check_probability(threshold, "threshold", label)
    ref_sorted, _ = _reference_sorted(reference, label)
    cur_sorted, n_missing = _finite_sorted(current, label, "current")
    result = _ks(ref_sorted, cur_sorted, threshold, method, label)
    result.update(_missing(n_missing, cur_sorted.size))
    return result


def _ks(
    ref_sorted: np.ndarray, cur_sorted: np.ndarray, threshold: float, method: str, label: str
) -> dict[str, Any]:
    if method not in _KS_METHODS:
        raise DriftInputError(f"{label}: KS method must be one of {_KS_METHODS}, got {method!r}")
    n1, n2 = int(ref_sorted.size), int(cur_sorted.size)
    d = _ks_statistic(ref_sorted, cur_sorted)
    d, p_value, used = _ks_p_value(d, n1, n2, method)
    return _p_value_result(
        "ks", d, p_value, threshold, method=used, distance=d, n_reference=n1, n_current=n2
    )


def _p_value_result(
    test: str, statistic: float, p_value: float, threshold: float, **extra: Any
) -> dict[str, Any]:
    """The keys a p-value test's result starts with; drift is ``p_value < threshold``."""
    return {
        "test": test,
        "statistic": statistic,
        "p_value": p_value,
        "threshold": float(threshold),
        "drift_detected": bool(p_value < threshold),
        **extra,
    }


# --- Population Stability Index ---------------------------------------------------------------


def detect_drift_psi(
    reference: Any,
    current: Any,
    buckets: int = DEFAULT_BUCKETS,
    threshold: float = 0.2,
    *,
    epsilon: float = DEFAULT_EPSILON,
    name: str | None = None,
) -> dict[str, Any]:
    """Population Stability Index of ``current`` against buckets fixed on ``reference``.

    PSI = sum over buckets i of (c_i - r_i) * ln(c_i / r_i), where r_i and c_i are the
    reference and current proportions in bucket i, each floored at ``epsilon`` (default 1e-4)
    so an empty bucket gives a large but finite term.  Every term is >= 0, so PSI >= 0, and
    PSI is 0 when the proportions match.  ``drift_detected`` is ``psi >= threshold``; the
    usual reading is < 0.1 stable, 0.1-0.2 moderate shift, >= 0.2 significant shift.

    Numeric buckets: the inner edges are the reference's 1/buckets, 2/buckets, ... quantiles
    (values of the reference, tied quantiles collapsed, so ``buckets`` in the result may be
    smaller than asked); value v is in bucket i when edges[i-1] < v <= edges[i].  The first
    and last buckets are open-ended, so current values outside the reference range still
    count.  The edges come from the reference only and are never refitted on the current
    data.  With a :class:`NumericFeatureProfile` its stored edges are used and ``buckets`` is
    ignored.  Categorical values (or a :class:`CategoricalFeatureProfile`) use one bucket
    per kept category, ``__other__`` (rarer reference categories) and ``__unseen__``
    (categories the reference never had; ``n_unseen`` counts them).  ``distance`` is the
    verdict's distance: the KS distance of a numeric feature, the total variation over the
    buckets of a categorical one.

    Worked example, reference 1..10 and buckets=2: the edge is the median, 5, so the
    reference proportions are r = (0.5, 0.5).  For current = [1, 2, 3, 4, 5, 6, 7, 8],
    c = (5/8, 3/8) and

        PSI = (0.625 - 0.5) * ln(0.625 / 0.5) + (0.375 - 0.5) * ln(0.375 / 0.5)
            = 0.125 * 0.223144 + 0.125 * 0.287682 = 0.063853

    For current = [1, 2, 3] the second bucket is empty, so c = (1, 1e-4) after the floor:
    PSI = 0.5 * ln(2) + (1e-4 - 0.5) * ln(1e-4 / 0.5) = 0.346574 + 4.257744 = 4.604318.
    """
    label = _label(name)
    _check_positive(threshold, "threshold", label)
    _check_epsilon(epsilon, label)
    profile = _feature_profile(reference, label, buckets=buckets)
    counts, extra = _current_counts(profile, current, label)
    distance = _distance_of(profile, current, label, counts)
    return {**_psi(profile, counts, threshold, epsilon), **extra, "distance": distance}


def _distance_of(profile: FeatureProfile, current: Any, label: str, counts: np.ndarray) -> float:
    if isinstance(profile, NumericFeatureProfile):
        cur_sorted, _ = _finite_sorted(current, label, "current")
        return _ks_statistic(profile.sorted_values, cur_sorted)
    return total_variation(profile.ref_proportions, counts)


def _psi(
    profile: FeatureProfile, cur_counts: np.ndarray, threshold: float, epsilon: float
) -> dict[str, Any]:
    n_cur = int(cur_counts.sum())
    ref_p = profile.ref_proportions
    cur_p = cur_counts / n_cur
    psi = psi_value(ref_p, cur_p, epsilon)
    return {
        "test": "psi",
        "psi": psi,
        "statistic": psi,
        "threshold": float(threshold),
        "drift_detected": bool(psi >= threshold),
        "buckets": int(profile.n_buckets),
        "epsilon": float(epsilon),
        "bucket_labels": profile.bucket_labels,
        "reference_proportions": [float(x) for x in ref_p],
        "current_proportions": [float(x) for x in cur_p],
        "n_reference": int(profile.n),
        "n_current": n_cur,
    }


def _sorted_bucket_counts(profile: NumericFeatureProfile, cur_sorted: np.ndarray) -> np.ndarray:
    """Bucket counts of sorted current values: one binary search per edge, not per value."""
    upper = np.searchsorted(cur_sorted, profile.edges, side="right")
    return np.diff(np.concatenate(([0], upper, [cur_sorted.size])))


# --- chi-square -------------------------------------------------------------------------------


def detect_drift_chi2(
    reference: Any,
    current: Any,
    threshold: float = 0.05,
    *,
    name: str | None = None,
    max_categories: int = DEFAULT_MAX_CATEGORIES,
) -> dict[str, Any]:
    """Pearson chi-square test of homogeneity between reference and current category counts.

    The 2 x k contingency table has one column per profile bucket: the kept categories,
    ``__other__`` and ``__unseen__`` (categories the reference never had; ``n_unseen`` says
    how many current values those were).  Columns empty in both samples are dropped and
    none is merged.  With every expected count at least 5 the result equals
    ``scipy.stats.chi2_contingency(table, correction=False)``; a sparser table gets a Monte
    Carlo p-value (``p_value_method: "monte-carlo"``), because the asymptotic one is then
    far too small.  A numeric profile may be passed too: its PSI buckets are then the
    categories.  ``drift_detected`` is ``p_value < threshold``; ``distance`` is the total
    variation over the buckets.
    """
    label = _label(name)
    _check_probability(threshold, "threshold", label)
    if isinstance(reference, (NumericFeatureProfile, CategoricalFeatureProfile)):
        profile: FeatureProfile = reference
    else:
        profile = _categorical_profile(reference, label, max_categories)
    counts, extra = _current_counts(profile, current, label)
    distance = total_variation(profile.ref_proportions, counts)
    return {**_chi2(profile, counts, threshold), **extra, "distance": distance}


def _current_counts(
    profile: FeatureProfile, current: Any, label: str
) -> tuple[np.ndarray, dict[str, Any]]:
    """Current counts per profile bucket, and the missing (and unseen category) counts."""
    if isinstance(profile, NumericFeatureProfile):
        cur_sorted, n_missing = _finite_sorted(current, label, "current")
        return _sorted_bucket_counts(profile, cur_sorted), _missing(n_missing, cur_sorted.size)
    keys, n_missing = _current_categories(current, label)
    counts, n_unseen = profile.count_keys(keys)
    return counts, {"n_unseen": n_unseen, **_missing(n_missing, keys.size)}


def _bucket_ref_counts(profile: FeatureProfile) -> np.ndarray:
    if isinstance(profile, CategoricalFeatureProfile):
        return profile.bucket_ref_counts
    return profile.ref_counts


def _chi2(profile: FeatureProfile, cur_counts: np.ndarray, threshold: float) -> dict[str, Any]:
    statistic, p_value, dof, method = chi2_homogeneity(_bucket_ref_counts(profile), cur_counts)
    return _p_value_result(
        "chi2", statistic, p_value, threshold,
        dof=dof,
        p_value_method=method,
        bucket_labels=profile.bucket_labels,
        current_counts=[int(c) for c in cur_counts],
        n_reference=int(profile.n),
        n_current=int(cur_counts.sum()),
    )  # fmt: skip


# --- the verdict --------------------------------------------------------------------------------


@dataclass(frozen=True)
class KsFigures:
    """The KS test as a reported figure (it does not vote)."""

    statistic: float
    p_value: float
    method: str


@dataclass(frozen=True)
class Chi2Figures:
    """The chi-squared test as a reported figure (it does not vote)."""

    statistic: float
    p_value: float
    dof: int
    method: str  # "asymptotic", "monte-carlo" (sparse table) or "none" (nothing to compare)


@dataclass(frozen=True)
class PsiFigures:
    """PSI as a reported figure (it does not vote)."""

    psi: float
    buckets: int
    epsilon: float


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's verdict and every figure behind it.

    ``distance`` is the KS distance (numeric) or the total variation (categorical) of the
    ``n_current`` values used; ``None`` when there were too few of them (``basis`` is then
    ``"none"``).  ``lower_bound`` and ``detectable_distance`` are taken at ``level``, the
    level in force for this feature after any correction: the feature is drifted by its
    distance when ``lower_bound >= tolerance``, i.e. when ``distance >=
    detectable_distance``.  Under ``basis == "significance"`` (tiny one-shot samples, where
    no bound can reach the tolerance) it is drifted when the classic test's p-value is
    below half the level and the observed distance is at least the tolerance.  The missing
    share is judged the same way on its rise, ``missing_rise``; each of the two judgements
    gets half the level, so ``p_value`` (the smallest level at which the feature would be
    flagged) is twice the smaller of their p-values.
    """

    name: str
    kind: str
    tolerance: float
    level: float
    n_reference: int
    n_current: int
    n_missing: int
    reference_missing_rate: float
    missing_rate: float
    n_unseen: int
    distance: float | None
    lower_bound: float | None
    detectable_distance: float | None
    basis: Basis
    distance_p_value: float
    distance_drifted: bool
    missing_rise: float
    missing_lower_bound: float | None
    missing_p_value: float
    missing_drifted: bool
    p_value: float
    drifted: bool
    reason: str
    ks: KsFigures | None = None
    chi2: Chi2Figures | None = None
    psi: PsiFigures | None = None
    skipped_tests: Mapping[str, str] = field(default_factory=dict)
    #: current counts per bucket of the profile (its ``bucket_labels``), and for a numeric
    #: feature how many current values lie below the reference's minimum / above its
    #: maximum: what a histogram of reference against current needs (the landing page)
    bucket_counts: tuple[int, ...] = ()
    below_min: int = 0
    above_max: int = 0

    def to_dict(self, thresholds: Mapping[str, float] | None = None) -> dict[str, Any]:
        """The JSON-compatible form of :func:`analyze_feature_drift`'s reports.

        Each reported test sits under its name with the keys it always had; its
        ``drift_detected`` compares it with ``thresholds`` but ``votes`` is ``False``: the
        verdict is ``drift_detected`` of the feature itself.
        """
        limits = dict(DEFAULT_THRESHOLDS, **(thresholds or {}))
        out = asdict(self)
        tests: list[str] = []
        for test in ("ks", "chi2", "psi"):
            figures = getattr(self, test)
            if figures is None:
                out.pop(test)
                continue
            tests.append(test)
            entry = {"test": test, **asdict(figures), "threshold": limits[test], "votes": False}
            if test == "psi":
                entry["statistic"] = figures.psi
                entry["drift_detected"] = bool(figures.psi >= limits["psi"])
            else:
                entry["drift_detected"] = bool(figures.p_value < limits[test])
            out[test] = entry
        out["tests"] = tests
        out["drift_detected"] = out.pop("drifted")
        out["skipped_tests"] = dict(self.skipped_tests)
        if not out["skipped_tests"]:
            out.pop("skipped_tests")
        return out


@dataclass(frozen=True)
class DriftReport:
    """Every feature's verdict of one call of :func:`evaluate_drift`."""

    features: Mapping[str, FeatureDrift]
    correction: str = "none"
    min_drift_share: float = 0.0

    @property
    def features_with_drift(self) -> list[str]:
        return [name for name, f in self.features.items() if f.drifted]

    @property
    def drift_share(self) -> float:
        return len(self.features_with_drift) / len(self.features) if self.features else 0.0

    @property
    def drift_alert(self) -> bool:
        return bool(self.features_with_drift) and self.drift_share >= self.min_drift_share

    def to_dict(self, thresholds: Mapping[str, float] | None = None) -> dict[str, Any]:
        drifted = self.features_with_drift
        return {
            "features": {n: f.to_dict(thresholds) for n, f in self.features.items()},
            "features_with_drift": drifted,
            "drift_share": self.drift_share,
            "drift_alert": self.drift_alert,
            "n_features": len(self.features),
            "n_drifted": len(drifted),
            "correction": self.correction,
        }


@dataclass(frozen=True)
class _Measured:
    """A feature's distances and p-values, before the level is known."""

    profile: FeatureProfile
    tolerance: float
    n_current: int
    n_missing: int
    n_unseen: int
    distance: float | None
    cells: int
    bound_p: float  # the distance bound's p-value (1.0 without a distance)
    significance_p: float  # the classic test's p-value (1.0 when not computed)
    missing_rise: float
    missing_n: tuple[int, int] | None  # (reference, current) rows, None: not judged
    missing_p: float
    ks: KsFigures | None
    chi2: Chi2Figures | None
    psi: PsiFigures | None
    skipped: Mapping[str, str]
    bucket_counts: tuple[int, ...] = ()
    below_min: int = 0
    above_max: int = 0


def evaluate_drift(
    reference: Mapping[str, Any] | ReferenceProfile,
    current: Mapping[str, Any],
    features: Sequence[str] | None = None,
    *,
    level: float | Mapping[str, float] = 0.05,
    correction: str = "none",
    tolerance_numeric: float = DEFAULT_TOLERANCE,
    tolerance_categorical: float = DEFAULT_TOLERANCE,
    tolerances: Mapping[str, float] | None = None,
    tests: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
    min_samples: int = 1,
    fallback: bool = True,
    missing_counts: Mapping[str, int] | None = None,
    ks_method: str = "auto",
    epsilon: float = DEFAULT_EPSILON,
    buckets: int = DEFAULT_BUCKETS,
    feature_types: Mapping[str, str] | None = None,
    min_drift_share: float = 0.0,
    workers: int = 1,
) -> DriftReport:
    """Judge each feature: drifted when a distance's lower confidence bound reaches its
    tolerance.  The one implementation of the verdict, typed.

    ``level`` is each feature's level before ``correction`` (a number, or one per kind:
    ``{"numeric": ..., "categorical": ...}``); ``"bonferroni"`` divides it by the number of
    features, ``"benjamini-hochberg"`` steps it up over the features' p-values.  The
    exporter passes the level its false-alarm budget gives and no correction, because
    that level already divides by the features.

    ``tolerances`` overrides ``tolerance_numeric`` / ``tolerance_categorical`` per feature.
    ``tests`` picks the reported figures (``ks``, ``chi2``, ``psi``), for every kind or per
    kind; a test that does not fit a kind is skipped and listed in ``skipped_tests``.

    ``min_samples``: with fewer non-missing current values a feature's distance is not
    judged (``basis: "none"``); its missing share is, once the feature has that many rows
    in all.  ``fallback``: where even a distance of 1 could not be shown (tiny samples) the
    classic significance test decides with the observed distance against the tolerance
    (``basis: "significance"``); the exporter turns this off and waits for
    ``min_samples`` instead.  ``missing_counts`` adds missing values that are not in the
    arrays (the exporter passes only the values present).
    """
    names = _check_features(features, reference, current)
    chosen = _check_tests_per_kind(tests)
    if correction not in _CORRECTIONS:
        raise DriftInputError(f"correction must be one of {_CORRECTIONS}, got {correction!r}")
    levels = _levels(level)
    tol = {
        "numeric": _tolerance(tolerance_numeric, "tolerance_numeric"),
        "categorical": _tolerance(tolerance_categorical, "tolerance_categorical"),
    }
    overrides = {k: _tolerance(v, f"tolerances[{k!r}]") for k, v in (tolerances or {}).items()}
    _check_epsilon(epsilon, "evaluate_drift")
    if ks_method not in _KS_METHODS:
        raise DriftInputError(f"ks_method must be one of {_KS_METHODS}, got {ks_method!r}")
    if not _is_real(min_drift_share) or not 0.0 <= float(min_drift_share) <= 1.0:
        raise DriftInputError(f"min_drift_share must be in [0, 1], got {min_drift_share!r}")
    for what, value in (("workers", workers), ("min_samples", min_samples)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise DriftInputError(f"{what} must be a positive integer, got {value!r}")
    types = dict(feature_types or {})
    extra_missing = dict(missing_counts or {})
    n_features = len(names)

    def nominal(profile: FeatureProfile) -> float:
        base = levels[profile.kind]
        return base if correction == "none" else base / n_features

    def one(name: str) -> _Measured:
        profile = _profile_for(reference, name, types.get(name), buckets)
        return _measure(
            profile, current[name], int(extra_missing.get(name, 0)),
            overrides.get(name, tol[profile.kind]), chosen[profile.kind], ks_method, epsilon,
            int(min_samples), nominal(profile) if fallback else None, _label(name),
        )  # fmt: skip

    if workers > 1 and len(names) > 1:
        # NumPy releases the GIL in sort and searchsorted, the bulk of the work per feature
        with ThreadPoolExecutor(min(int(workers), len(names))) as pool:
            measured = dict(zip(names, pool.map(one, names), strict=True))
    else:
        measured = {name: one(name) for name in names}

    p_values = {n: _feature_p_value(m) for n, m in measured.items()}
    effective = _effective_levels(
        {n: levels[m.profile.kind] for n, m in measured.items()}, p_values, correction
    )
    judged = {n: _judge(n, m, p_values[n], effective[n]) for n, m in measured.items()}
    return DriftReport(judged, correction, float(min_drift_share))


def _measure(
    profile: FeatureProfile,
    values: Any,
    extra_missing: int,
    tolerance: float,
    tests: tuple[str, ...],
    ks_method: str,
    epsilon: float,
    min_samples: int,
    fallback_level: float | None,
    label: str,
) -> _Measured:
    numeric = isinstance(profile, NumericFeatureProfile)
    applicable = APPLICABLE_TESTS[profile.kind]
    skipped = {
        t: f"does not apply to a {profile.kind} feature" for t in tests if t not in applicable
    }
    if extra_missing == 0:  # else the values present may be none at all: a null feature
        _nonempty(values, label, "current")
    cur_sorted = np.empty(0)
    if isinstance(profile, NumericFeatureProfile):
        finite, n_missing = to_float_array(f"{label} current", values, DriftInputError)
        cur_sorted = np.sort(finite)
        n_cur = int(cur_sorted.size)
        counts = _sorted_bucket_counts(profile, cur_sorted)
        out_of_range = profile.out_of_range(cur_sorted)
        n_unseen = 0
        cells = 0
    else:
        keys, n_missing = to_category_keys(values, f"{label} current", DriftInputError)
        n_cur = int(keys.size)
        counts, n_unseen = profile.count_keys(keys)
        out_of_range = (0, 0)
        cells = profile.n_buckets
    n_missing += extra_missing

    distance: float | None = None
    bound_p = significance_p = 1.0
    ks = chi2 = None
    if n_cur >= min_samples and n_cur > 0:
        if isinstance(profile, NumericFeatureProfile):
            distance = _ks_statistic(profile.sorted_values, cur_sorted)
            bound_p = bounds.ks_bound_p_value(distance, tolerance, profile.n, n_cur)
        else:
            distance = total_variation(profile.ref_proportions, counts)
            bound_p = bounds.tv_bound_p_value(distance, tolerance, profile.n, n_cur, cells)
        use_significance = (
            fallback_level is not None
            and _radius(numeric, profile.n, n_cur, cells, fallback_level / 2) > 1.0 - tolerance
        )
        if numeric and ("ks" in tests or use_significance):
            _, p, method = _ks_p_value(distance, profile.n, n_cur, ks_method)
            ks = KsFigures(distance, p, method)
        if "chi2" in tests or (not numeric and use_significance):
            statistic, p, dof, method = chi2_homogeneity(_bucket_ref_counts(profile), counts)
            chi2 = Chi2Figures(statistic, p, dof, method)
        if use_significance:
            figure = ks if numeric else chi2
            p = figure.p_value if figure is not None else 1.0
            significance_p = p if (distance >= tolerance and p == p) else 1.0
            bound_p = math.nan  # marks the significance basis
    psi = None
    if "psi" in tests and n_cur > 0:
        psi = PsiFigures(
            psi_value(profile.ref_proportions, counts / n_cur, epsilon), profile.n_buckets, epsilon
        )

    n_ref_rows = profile.n + profile.n_missing
    n_cur_rows = n_cur + n_missing
    rise = _rate(n_missing, n_cur) - _rate(profile.n_missing, profile.n)
    missing_n = (n_ref_rows, n_cur_rows) if n_cur_rows >= min_samples and n_cur_rows else None
    missing_p = bounds.missing_bound_p_value(rise, tolerance, *missing_n) if missing_n else 1.0
    return _Measured(
        profile, tolerance, n_cur, n_missing, n_unseen, distance, cells, bound_p,
        significance_p, rise, missing_n, missing_p, ks if "ks" in tests else None,
        chi2 if "chi2" in tests else None, psi, skipped,
        tuple(int(c) for c in counts), *out_of_range,
    )  # fmt: skip


def _radius(numeric: bool, n_ref: int, n_cur: int, cells: int, level: float) -> float:
    """Sum of both samples' radii for the distance, at ``level`` (split between them)."""
    if numeric:
        return bounds.ks_radius_pair(n_ref, n_cur, level)
    return bounds.tv_radius_pair(n_ref, n_cur, cells, level)


def reference_floor(profile: FeatureProfile, tolerance: float, level: float) -> float:
    """The smallest distance a verdict at ``level`` can flag with this reference, however
    large the window: the tolerance plus the reference's own radius.

    The detectable distance is ``tolerance + radius_ref + radius_window``; the window's
    radius shrinks as the window grows, the reference's does not, so a small reference caps
    the sensitivity (89 rows: about 0.4 at the exporter's usual level).  The level is split
    as the verdict splits it: half for the distance, half of that for each sample.
    """
    quarter = level / 4
    if isinstance(profile, NumericFeatureProfile):
        return tolerance + bounds.dkw_radius(profile.n, quarter)
    return tolerance + bounds.tv_radius(profile.n, profile.n_buckets, quarter)


def reference_rows_for(profile: FeatureProfile, radius: float, level: float) -> int:
    """Rows a reference of this feature needs for its own radius to be ``radius`` at
    ``level`` (the inverse of :func:`reference_floor`'s radius)."""
    quarter = level / 4
    if isinstance(profile, NumericFeatureProfile):
        need = math.log(2.0 / quarter) / (2.0 * radius**2)
    else:
        need = (profile.n_buckets * math.log(2.0) + math.log(1.0 / quarter)) / (2.0 * radius**2)
    return math.ceil(need)


def _feature_p_value(m: _Measured) -> float:
    distance_p = m.significance_p if math.isnan(m.bound_p) else m.bound_p
    return min(1.0, 2.0 * min(distance_p, m.missing_p))


def _effective_levels(
    levels: Mapping[str, float], p_values: Mapping[str, float], correction: str
) -> dict[str, float]:
    """Each feature's level after ``correction`` (Benjamini-Hochberg by step-up).

    Under Benjamini-Hochberg with per-feature levels a_j, the features are ranked by
    p_j / a_j and the largest k with (k-th smallest) <= k / m is found; every feature then
    runs at a_j * k / m (a_j / m when k is 0), so a feature is flagged exactly when BH
    rejects it, and its bounds are reported at the level that decided it.
    """
    m = len(levels)
    if correction == "none" or m == 0:
        return dict(levels)
    if correction == "bonferroni":
        return {n: a / m for n, a in levels.items()}
    ratios = sorted(p_values[n] / levels[n] for n in levels)
    k = max((i + 1 for i, r in enumerate(ratios) if r <= (i + 1) / m), default=0)
    return {n: a * max(k, 1) / m for n, a in levels.items()}


def _judge(name: str, m: _Measured, p_value: float, level: float) -> FeatureDrift:
    profile = m.profile
    numeric = isinstance(profile, NumericFeatureProfile)
    half = level / 2
    lower = detectable = None
    basis: Basis = "none"
    distance_drifted = False
    distance_p = 1.0
    if m.distance is not None:
        if math.isnan(m.bound_p):
            basis = "significance"
            distance_p = m.significance_p
            distance_drifted = m.significance_p <= half
        else:
            basis = "bound"
            radius = _radius(numeric, profile.n, m.n_current, m.cells, half)
            lower = m.distance - radius
            detectable = m.tolerance + radius
            distance_p = m.bound_p
            distance_drifted = lower >= m.tolerance
    missing_lower = None
    missing_drifted = False
    if m.missing_n is not None:
        missing_lower = m.missing_rise - bounds.missing_radius_pair(*m.missing_n, half)
        missing_drifted = missing_lower >= m.tolerance
    drifted = distance_drifted or missing_drifted
    return FeatureDrift(
        name=name,
        kind=profile.kind,
        tolerance=m.tolerance,
        level=level,
        n_reference=profile.n,
        n_current=m.n_current,
        n_missing=m.n_missing,
        reference_missing_rate=_rate(profile.n_missing, profile.n),
        missing_rate=_rate(m.n_missing, m.n_current),
        n_unseen=m.n_unseen,
        distance=m.distance,
        lower_bound=lower,
        detectable_distance=detectable,
        basis=basis,
        distance_p_value=distance_p,
        distance_drifted=distance_drifted,
        missing_rise=m.missing_rise,
        missing_lower_bound=missing_lower,
        missing_p_value=m.missing_p,
        missing_drifted=missing_drifted,
        p_value=p_value,
        drifted=drifted,
        reason=_reason(m, basis, lower, detectable, missing_lower, level, drifted),
        ks=m.ks,
        chi2=m.chi2,
        psi=m.psi,
        skipped_tests=m.skipped,
        bucket_counts=m.bucket_counts,
        below_min=m.below_min,
        above_max=m.above_max,
    )


def _reason(
    m: _Measured,
    basis: Basis,
    lower: float | None,
    detectable: float | None,
    missing_lower: float | None,
    level: float,
    drifted: bool,
) -> str:
    what = "KS distance" if m.profile.kind == "numeric" else "total variation"
    parts: list[str] = []
    if basis == "bound" and m.distance is not None and detectable is not None:
        verb = ">=" if lower is not None and lower >= m.tolerance else "<"
        parts.append(
            f"{what} {m.distance:.4g} {verb} detectable {detectable:.4g} (tolerance "
            f"{m.tolerance:g} + radius {detectable - m.tolerance:.4g} at level {level:.3g})"
        )
    elif basis == "significance" and m.distance is not None:
        parts.append(
            f"too few values for a bound: significance test p={m.significance_p:.3g} "
            f"against {level / 2:.3g}, {what} {m.distance:.4g} against tolerance "
            f"{m.tolerance:g}"
        )
    else:
        parts.append(f"{what} not judged: {m.n_current} values present")
    if missing_lower is not None and m.missing_rise > 0:
        verb = ">=" if missing_lower >= m.tolerance else "<"
        parts.append(f"missing share rose {m.missing_rise:+.4g}, lower bound {missing_lower:.4g} "
                     f"{verb} tolerance")  # fmt: skip
    return ("drift: " if drifted else "no drift: ") + "; ".join(parts)


def analyze_feature_drift(
    reference_data: Mapping[str, Any] | ReferenceProfile,
    current_data: Mapping[str, Any],
    features: Sequence[str],
    tests: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
    *,
    thresholds: Mapping[str, float] | None = None,
    correction: str = "none",
    tolerance_numeric: float = DEFAULT_TOLERANCE,
    tolerance_categorical: float = DEFAULT_TOLERANCE,
    tolerances: Mapping[str, float] | None = None,
    epsilon: float = DEFAULT_EPSILON,
    buckets: int = DEFAULT_BUCKETS,
    feature_types: Mapping[str, str] | None = None,
    ks_method: str = "auto",
    min_drift_share: float = 0.0,
    workers: int = 1,
) -> dict[str, Any]:
    """Test each feature of ``current_data`` against the reference: the verdict of
    :func:`evaluate_drift`, as a JSON-compatible dict.

    The level of each feature's verdict is its ``threshold`` (``thresholds["ks"]`` for
    numeric features, ``thresholds["chi2"]`` for categorical ones, 0.05 by default) after
    ``correction`` over the features (``"none"``, ``"bonferroni"`` or
    ``"benjamini-hochberg"``).  A feature is drifted when the lower confidence bound of its
    distance (KS distance or total variation) is at least its tolerance
    (``tolerance_numeric`` / ``tolerance_categorical``, 0.05 by default, or
    ``tolerances[name]``), or when its missing share rose by more than the tolerance with
    the same confidence.  So a statistically significant but negligible shift on a huge
    sample is not flagged, and any shift larger than the tolerance is, once the sample can
    see it.

    Tiny samples: where no bound could reach the tolerance at that level, the exact KS or
    chi-squared significance test decides, with the observed distance against the
    tolerance; such a feature says ``basis: "significance"`` (otherwise ``"bound"``).

    Reported figures (``tests``, default: ``ks`` and ``psi`` for numeric features, ``chi2``
    and ``psi`` for categorical ones, or a mapping per kind): each sits under its name with
    its own ``drift_detected`` against ``thresholds``, and ``votes: False``.  Named tests
    that do not fit a feature's kind are skipped for it and listed under ``skipped_tests``.

    Returns ``features`` (name -> dict with ``kind``, ``drift_detected``, ``reason``,
    ``distance``, ``lower_bound``, ``detectable_distance``, ``tolerance``, ``level``,
    ``basis``, the missing counts and one dict per reported test), ``features_with_drift``
    (in the order given), ``drift_share`` and ``drift_alert`` (at least one feature drifted
    and ``drift_share >= min_drift_share``).

    Example (the product brief's): with 8 and 6 values no bound can reach a tolerance, so
    the exact KS test decides: its p-value is 0.0022 for ``income`` (the two samples do not
    overlap, distance 1) and 0.99 for ``age``, so ``income`` drifted and ``age`` did not::

        reference = {"age": np.array([25, 30, 35, 28, 32, 29, 31, 27]),
                     "income": np.array([45000, 52000, 38000, 61000, 48000, 55000])}
        production = {"age": np.array([26, 31, 34, 29, 33, 28]),
                      "income": np.array([75000, 82000, 68000, 91000, 78000, 85000])}
        analyze_feature_drift(reference, production, ["age", "income"])["features_with_drift"]
        # ['income']
    """
    limits = _thresholds(thresholds)
    report = evaluate_drift(
        reference_data, current_data, features,
        level={"numeric": limits["ks"], "categorical": limits["chi2"]},
        correction=correction,
        tolerance_numeric=tolerance_numeric,
        tolerance_categorical=tolerance_categorical,
        tolerances=tolerances,
        tests=tests,
        ks_method=ks_method,
        epsilon=epsilon,
        buckets=buckets,
        feature_types=feature_types,
        min_drift_share=min_drift_share,
        workers=workers,
    )  # fmt: skip
    out = report.to_dict(limits)
    out["thresholds"] = limits
    out["tolerance"] = {"numeric": tolerance_numeric, "categorical": tolerance_categorical}
    out["epsilon"] = float(epsilon)
    if isinstance(reference_data, ReferenceProfile):
        out["profile_hash"] = reference_data.hash
    return out


def drift_against_profile(
    profile: ReferenceProfile,
    current_data: Mapping[str, Any],
    features: Sequence[str] | None = None,
    tests: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """A window's arrays against a loaded profile.

    Same result and options as :func:`analyze_feature_drift`; ``features`` defaults to every
    profile feature present in ``current_data``.  Nothing of the reference is re-sorted or
    re-bucketed, so 50 features x 10k window values take a few tens of milliseconds.
    """
    if not isinstance(profile, ReferenceProfile):
        raise DriftInputError("drift_against_profile needs a ReferenceProfile")
    if features is None:
        features = [f for f in profile.feature_names if f in current_data]
        if not features:
            raise DriftInputError("no profile feature is present in the current data")
    return analyze_feature_drift(profile, current_data, features, tests, **options)


def _levels(level: float | Mapping[str, float]) -> dict[str, float]:
    given = level if isinstance(level, Mapping) else {"numeric": level, "categorical": level}
    out = {}
    for kind in ("numeric", "categorical"):
        value = given.get(kind, 0.05)
        _check_probability(value, f"level of {kind} features", "evaluate_drift")
        out[kind] = float(value)
    return out


def _tolerance(value: Any, what: str) -> float:
    if not _is_real(value) or not 0.0 <= float(value) < 1.0:
        raise DriftInputError(f"{what} must be a number in [0, 1), got {value!r}")
    return float(value)


def _check_tests_per_kind(
    tests: Sequence[str] | Mapping[str, Sequence[str]] | None,
) -> dict[str, tuple[str, ...]]:
    if tests is None:
        return dict(DEFAULT_TESTS)
    if isinstance(tests, Mapping):
        unknown = [k for k in tests if k not in APPLICABLE_TESTS]
        if unknown:
            raise DriftInputError(
                f"tests: unknown feature kind {unknown[0]!r}; use 'numeric' or 'categorical'"
            )
        return {
            kind: tuple(_check_tests(tests[kind]) or ()) if kind in tests else default
            for kind, default in DEFAULT_TESTS.items()
        }
    if not isinstance(tests, str) and len(tests) == 0:  # the verdict alone, no figures
        return {kind: () for kind in APPLICABLE_TESTS}
    chosen = tuple(_check_tests(tests) or ())
    return {kind: chosen for kind in APPLICABLE_TESTS}


# --- input checks and conversion --------------------------------------------------------------


def _label(name: str | None) -> str:
    return f"feature {name!r}" if name is not None else "drift test"


def _check_probability(value: Any, what: str, label: str) -> None:
    if not _is_real(value) or not 0.0 < float(value) < 1.0:
        raise DriftInputError(f"{label}: {what} must be a number in (0, 1), got {value!r}")


def _check_positive(value: Any, what: str, label: str) -> None:
    if not _is_real(value) or not float(value) > 0.0 or not math.isfinite(float(value)):
        raise DriftInputError(f"{label}: {what} must be a positive number, got {value!r}")


def _check_epsilon(value: Any, label: str) -> None:
    if not _is_real(value) or not 0.0 < float(value) < 0.5:
        raise DriftInputError(f"{label}: epsilon must be a number in (0, 0.5), got {value!r}")


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_features(features: Any, reference: Any, current: Any) -> list[str]:
    if isinstance(features, str) or not isinstance(features, Sequence):
        raise DriftInputError(f"features must be a list of names, got {features!r}")
    names = list(features)
    if not names:
        raise DriftInputError("features is empty: name at least one feature to test")
    if not isinstance(reference, (Mapping, ReferenceProfile)):
        raise DriftInputError("reference_data must be a dict of arrays or a ReferenceProfile")
    if not isinstance(current, Mapping):
        raise DriftInputError("current_data must be a dict of feature name -> values")
    seen: set[str] = set()
    for name in names:
        if not isinstance(name, str):
            raise DriftInputError(f"feature names must be strings, got {name!r}")
        if name in seen:
            raise DriftInputError(f"feature {name!r} is listed twice")
        seen.add(name)
        if name not in reference:
            where = (
                "the reference profile"
                if isinstance(reference, ReferenceProfile)
                else ("the reference data")
            )
            hint = _did_you_mean(name, reference)
            raise DriftInputError(f"feature {name!r} is missing from {where}{hint}")
        if name not in current:
            hint = _did_you_mean(name, current)
            raise DriftInputError(f"feature {name!r} is missing from the current data{hint}")
    return names


def _check_tests(tests: Any) -> list[str] | None:
    if tests is None:
        return None
    if isinstance(tests, str):
        tests = [t.strip() for t in tests.split(",") if t.strip()]
    chosen = list(tests)
    unknown = [t for t in chosen if t not in TESTS]
    if unknown or not chosen:
        raise DriftInputError(
            f"unknown test {unknown[0] if unknown else ''!r}; choose from {TESTS}"
        )
    return list(dict.fromkeys(chosen))


def _thresholds(overrides: Mapping[str, float] | None) -> dict[str, float]:
    limits = dict(DEFAULT_THRESHOLDS)
    for test, value in (overrides or {}).items():
        if test not in TESTS:
            raise DriftInputError(f"thresholds: unknown test {test!r}; choose from {TESTS}")
        if test == "psi":
            _check_positive(value, "psi threshold", "thresholds")
        else:
            _check_probability(value, f"{test} threshold", "thresholds")
        limits[test] = float(value)
    return limits


def _profile_for(
    reference: Mapping[str, Any] | ReferenceProfile, name: str, kind: str | None, buckets: int
) -> FeatureProfile:
    if isinstance(reference, ReferenceProfile):
        profile = reference[name]
        if kind is not None and kind != profile.kind:
            raise DriftInputError(
                f"feature {name!r}: feature_types says {kind!r}, the profile {profile.kind!r}"
            )
        return profile
    return _feature_profile(reference[name], _label(name), buckets=buckets, kind=kind)


def _feature_profile(
    reference: Any, label: str, *, buckets: int = DEFAULT_BUCKETS, kind: str | None = None
) -> FeatureProfile:
    if isinstance(reference, (NumericFeatureProfile, CategoricalFeatureProfile)):
        return reference
    if isinstance(reference, ReferenceProfile):
        raise DriftInputError(f"{label}: pass the feature's profile (profile[name]), not all")
    kind = kind or infer_kind(reference)
    if kind == "numeric":
        values = _nonempty(reference, label, "reference")
        return NumericFeatureProfile.from_values(
            _name_of(label), values, buckets, error=DriftInputError, label=f"{label} reference"
        )
    if kind == "categorical":
        return _categorical_profile(reference, label, DEFAULT_MAX_CATEGORIES)
    raise DriftInputError(f"{label}: type must be 'numeric' or 'categorical', got {kind!r}")


def _categorical_profile(reference: Any, label: str, max_categories: int) -> FeatureProfile:
    if isinstance(reference, (NumericFeatureProfile, CategoricalFeatureProfile)):
        return reference
    return CategoricalFeatureProfile.from_values(
        _name_of(label), _nonempty(reference, label, "reference"), max_categories,
        error=DriftInputError, label=f"{label} reference",
    )  # fmt: skip


def _name_of(label: str) -> str:
    """The feature name inside a ``feature 'x'`` label (profiles need one), else ``value``."""
    return label[len("feature ") :][1:-1] if label.startswith("feature ") else "value"


def _nonempty(values: Any, label: str, which: str) -> Any:
    if values is None:
        raise DriftInputError(f"{label}: {which} data is None")
    if np.size(values) == 0:
        raise DriftInputError(f"{label}: {which} data is empty")
    return values


def _reference_sorted(reference: Any, label: str) -> tuple[np.ndarray, int]:
    if isinstance(reference, NumericFeatureProfile):
        return reference.sorted_values, reference.n_missing
    if isinstance(reference, (CategoricalFeatureProfile, ReferenceProfile)):
        raise DriftInputError(f"{label}: the KS test needs a numeric feature or its profile")
    return _finite_sorted(reference, label, "reference")


def _finite_sorted(values: Any, label: str, which: str) -> tuple[np.ndarray, int]:
    """The finite values sorted, and how many NaN/inf/None were dropped (none left: error)."""
    finite, n_missing = to_float_array(
        f"{label} {which}", _nonempty(values, label, which), DriftInputError
    )
    if finite.size == 0:
        raise DriftInputError(f"{label}: {which} data has no finite values ({n_missing} NaN/inf)")
    return np.sort(finite), n_missing


def _current_categories(current: Any, label: str) -> tuple[np.ndarray, int]:
    keys, n_missing = to_category_keys(_nonempty(current, label, "current"))
    if keys.size == 0:
        raise DriftInputError(f"{label}: current data has no non-missing values ({n_missing})")
    return keys, n_missing


def _missing(n_missing: int, n_used: int) -> dict[str, Any]:
    return {"n_missing": int(n_missing), "missing_rate": _rate(n_missing, n_used)}


def _rate(n_missing: int, n_used: int) -> float:
    total = n_missing + n_used
    return float(n_missing / total) if total else 0.0
