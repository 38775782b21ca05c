"""Numerical kernels of the drift statistics: KS distance and p-values, PSI, total variation.

Pure functions on sorted arrays and bucket counts, with no input checking (that is
:mod:`mlops_core.drift`'s job) and no knowledge of features or verdicts.  They are kept
apart so the public API reads as what a user calls and this file as the mathematics.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# scipy is imported only where it is needed (the exact KS distribution, KS p-values of
# samples under PELZ_GOOD_MIN_N): scipy.stats costs ~46 MB and ~0.3 s to import, and the
# exporter, whose default KS method is the asymptotic one, needs neither it nor
# scipy.special (the chi-squared tail below is exact for the integer degrees of freedom
# a contingency table has).

#: scipy's ks_2samp(method="auto") is exact while both samples have at most this many values
KS_MAX_EXACT_N = 10_000
#: grid steps of the pruned KS statistic search, each a multiple of the next (_ks_statistic)
KS_GRID_STEPS = (1024, 64, 8)
#: from this effective sample size on, the KS asymptotic p-value is the Pelz-Good series
#: (within 1e-5 of scipy.stats.kstwo at n = 100, 3e-8 from 500; checked in the tests)
PELZ_GOOD_MIN_N = 100
#: chi-squared's asymptotic p-value is trusted when every expected count is at least this
CHI2_MIN_EXPECTED = 5.0
#: tables drawn for a Monte Carlo chi-squared p-value (sparse tables only)
CHI2_MONTE_CARLO_DRAWS = 4999


def _ks_statistic(ref: np.ndarray, cur: np.ndarray) -> float:
    """sup |F_ref - F_cur| of two sorted samples, exactly, searching few current values.

    With n reference and m current values, L_j / R_j the number of reference values below /
    up to the j-th current value u_j, the supremum is reached next to a current value:

        n*m * D = max(0, max_j (L_j*m - j*n), max_j ((j+1)*n - R_j*m))

    (F_ref - F_cur just before u_j, and F_cur - F_ref at u_j; within a tie group the first
    and last index give the extremes).  The terms are integers, divided once, so the
    result is within one rounding of scipy's.  Rather than a binary search for every
    current value (1.6 ms for 100k values into 100k), the search is pruned: L and R are
    nondecreasing in j, so over a block of indices a..c both terms are bounded by
    L_c*m - a*n and (c+1)*n - R_a*m.  The ranks are computed at the corners of a coarse
    grid (``KS_GRID_STEPS``), blocks whose bounds cannot beat the best exact term so far
    are dropped, the survivors are refined on a finer grid, and only the values inside
    the last survivors are searched (2-4 % of 100k values in the benchmark).  A current
    sample with few distinct values is handled per tie group (one search per value).
    """
    n, m = int(ref.size), int(cur.size)
    new_value = cur[1:] != cur[:-1]
    if 8 * int(np.count_nonzero(new_value)) < m:  # heavy ties: one point per distinct value
        first = np.flatnonzero(np.concatenate(([True], new_value)))
        below, upto = _ranks(ref, cur, first)
        last = np.append(first[1:], m) - 1
        best = max(int(np.max(below * m - first * n)), int(np.max((last + 1) * n - upto * m)))
        return min(max(best, 0) / (n * m), 1.0)
    best = 0
    starts: np.ndarray | None = None  # first index of each block still in play
    step = m
    for finer in KS_GRID_STEPS:
        if finer >= m - 1:
            continue
        if starts is None:
            starts = np.arange(0, m - 1, finer)
        else:
            starts = (starts[:, None] + np.arange(0, step, finer)).ravel()
            starts = starts[starts < m - 1]
        step = finer
        ends = np.minimum(starts + step, m - 1)
        # a block's end is searched as the next block's start, unless that one was dropped
        own_end = np.append(ends[:-1] != starts[1:], True)
        corners = np.concatenate((starts, ends[own_end]))
        below, upto = _ranks(ref, cur, corners)
        best = max(best, _ks_extreme(corners, below, upto, n, m))
        end_at = np.arange(1, starts.size + 1)  # where each end is in corners
        end_at[own_end] = np.arange(starts.size, corners.size)
        bound_plus = below[end_at] * m - starts * n  # L_c*m - a*n
        bound_minus = (ends + 1) * n - upto[: starts.size] * m  # (c+1)*n - R_a*m
        starts = starts[(bound_plus > best) | (bound_minus > best)]
        if not starts.size:
            return min(best / (n * m), 1.0)
    if starts is None:  # too few values for a grid: search them all
        points = np.arange(m)
        below, upto = _ranks(ref, cur, None)
    else:  # the values strictly inside the surviving blocks (corners are done)
        points = (starts[:, None] + np.arange(1, step)).ravel()
        points = points[points < m - 1]
        below, upto = _ranks(ref, cur, points)
    best = max(best, _ks_extreme(points, below, upto, n, m))
    return min(best / (n * m), 1.0)


def _ks_extreme(points: np.ndarray, below: np.ndarray, upto: np.ndarray, n: int, m: int) -> int:
    """max over the given current indices j of L_j*m - j*n and (j+1)*n - R_j*m (or 0)."""
    if not points.size:
        return 0
    return max(int(np.max(below * m - points * n)), int(np.max((points + 1) * n - upto * m)))


def _ranks(
    ref: np.ndarray, cur: np.ndarray, points: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Reference values below and up to ``cur[points]`` (all of ``cur`` for None).

    One right-side binary search each; a value is tied with the reference iff the last
    reference value up to it equals it (``upto - 1`` wraps to the largest reference value
    when ``upto`` is 0, which is then greater than the value), and only tied values get
    the left-side search.
    """
    values = cur if points is None else cur.take(points)
    upto = np.searchsorted(ref, values, side="right")
    tied = ref.take(upto - 1, mode="wrap") == values
    if not tied.any():
        return upto, upto
    below = upto.copy()
    below[tied] = np.searchsorted(ref, values[tied], side="left")
    return below, upto


def _ks_p_value(d: float, n1: int, n2: int, method: str) -> tuple[float, float, str]:
    """(statistic, two-sided p-value, method used), as ``scipy.stats.ks_2samp`` computes them."""
    if method == "auto":
        method = "exact" if max(n1, n2) <= KS_MAX_EXACT_N else "asymp"
    exact = _exact_2kssamp() if method == "exact" else None
    if exact is not None:
        g = math.gcd(n1, n2)
        if n1 // g < np.iinfo(np.int32).max / (n2 // g):
            with np.errstate(all="ignore"):
                ok, d_exact, prob = exact(n1, n2, g, d, "two-sided")
            if ok:
                return float(d_exact), float(np.clip(prob, 0.0, 1.0)), "exact"
    m, n = max(n1, n2), min(n1, n2)
    en = m * n / (m + n)
    prob = _kolmogorov_sf(d, int(np.round(en)))
    return d, float(np.clip(prob, 0.0, 1.0)), "asymp"


def _exact_2kssamp() -> Any:
    """scipy's exact two-sample KS routine (what ``ks_2samp(method="exact")`` calls), a
    private function used for speed; ``None`` if it ever moves (then the asymptotic
    p-value is used, as ``ks_2samp`` itself does when the exact one fails)."""
    try:
        from scipy.stats._stats_py import _attempt_exact_2kssamp
    except ImportError:
        return None
    return _attempt_exact_2kssamp


def _kolmogorov_sf(d: float, n: int) -> float:
    """``scipy.stats.kstwo.sf(d, n)``: P(D_n >= d) of the one-sample KS statistic.

    kstwo evaluates a Durbin matrix or Smirnov's finite sum for 140 < n <= 100 000, which
    cost 5 ms at n = 10k and up to 90 ms at n = 100k, and needs scipy.stats.  Here:

    * the trivial edges exactly: P = 1 for n*d <= 1/2, n! (2d - 1/n)^n below for
      n*d <= 1, and 2 (1 - d)^n for d >= 1 - 1/n;
    * n >= ``PELZ_GOOD_MIN_N`` and d < 1/2: the Pelz-Good asymptotic expansion
      (:func:`_pelz_good_cdf`, about 0.1 ms), which is what kstwo itself uses beyond
      n = 100 000;
    * anything else (small n, large d): kstwo itself, imported then.

    The precision is absolute: a p-value below about 1e-7 may be reported as 0.
    """
    if n * d <= 0.5:
        return 1.0
    if n * d <= 1.0:
        return 1.0 - math.exp(math.lgamma(n + 1) + n * math.log(2 * d - 1 / n))
    if d >= 1.0 - 1.0 / n:
        return min(1.0, 2.0 * (1.0 - d) ** n)
    if n >= PELZ_GOOD_MIN_N and d < 0.5:
        return max(0.0, 1.0 - _pelz_good_cdf(n, d))
    from scipy import stats

    return float(stats.kstwo.sf(d, n))


_SQRT_2PI = math.sqrt(2 * math.pi)
_PI2 = math.pi**2


def _pelz_good_cdf(n: int, x: float) -> float:
    """P(D_n <= x) by the Pelz-Good (1976) expansion in powers of 1/sqrt(n).

    With z = x sqrt(n): K0(z) + K1(z)/sqrt(n) + K2(z)/n + K3(z)/n^(3/2), each K_j written
    as a theta-function series that converges fast for the z of interest: sums over odd m
    of polynomials in m^2 times exp(-pi^2 m^2 / (8 z^2)), plus, in K2 and K3, sums over all
    k of k^2 exp(-pi^2 k^2 / (2 z^2)) (see Simard and L'Ecuyer, J. Stat. Software 39(11),
    2011, section 2.1).  Both sums are evaluated as vectors; terms past 16 z / pi are below
    double precision.
    """
    z = x * math.sqrt(n)
    if z <= 0.04:  # exp(-pi^2 / (8 z^2)) underflows: the CDF is 0
        return 0.0
    z2 = z * z
    terms = max(1, math.ceil(16 * z / math.pi))
    m = 2.0 * np.arange(1, terms + 1) - 1.0  # odd integers
    m2 = m * m
    odd = np.exp(-_PI2 * m2 / (8 * z2))
    c1 = -z2 + _PI2 / 4 * m2
    c2 = (6 * z2**3 + 2 * z2**2) + (2 * z2**2 - 5 * z2) * _PI2 / 4 * m2
    c2 += _PI2**2 * (1 - 2 * z2) / 16 * m2**2
    c3 = -30 * z2**3 - 90 * z2**4 + _PI2 * (135 * z2**2 - 96 * z2**3) / 4 * m2
    c3 += _PI2**2 * (-60 * z2 + 212 * z2**2) / 16 * m2**2
    c3 += _PI2**3 * (5 - 30 * z2) / 64 * m2**3
    k0 = _SQRT_2PI * float(odd.sum()) / z
    k1 = _SQRT_2PI * float((c1 * odd).sum()) / (6 * z2**2)
    k2 = _SQRT_2PI * float((c2 * odd).sum()) / (72 * z**7)
    k3 = _SQRT_2PI * float((c3 * odd).sum()) / (6480 * z2**5)
    k = np.arange(1, terms + 1, dtype=np.float64)
    k2_ = k * k
    every = k2_ * np.exp(-_PI2 * k2_ / (2 * z2))
    k2 -= _PI2 * _SQRT_2PI / (36 * z**3) * float(every.sum())
    k3 += _PI2 * _SQRT_2PI / (216 * z2**3) * float(((3 * z2 - _PI2 * k2_) * every).sum())
    root = math.sqrt(n)
    return k0 + k1 / root + k2 / n + k3 / (n * root)


def chi2_sf(x: float, dof: int) -> float:
    """P(X >= x) for X chi-squared with an integer ``dof`` (scipy's ``chi2.sf``), in closed form.

    Even dof: exp(-x/2) * sum_{r < dof/2} (x/2)^r / r!.  Odd dof: 2 Q(sqrt x) plus
    2 phi(sqrt x) * sum_{r=1}^{(dof-1)/2} x^(r - 1/2) / (1 * 3 * ... * (2r - 1)), with Q and
    phi the standard normal tail and density.  Every term is positive, so there is no
    cancellation; checked against scipy to 1e-13 in the tests.
    """
    if dof < 1:
        raise ValueError(f"dof must be a positive integer, got {dof!r}")
    if x <= 0.0:
        return 1.0
    if dof % 2 == 0:
        term = total = 1.0
        for r in range(1, dof // 2):
            term *= (x / 2) / r
            total += term
        return min(1.0, math.exp(-x / 2) * total)
    root = math.sqrt(x)
    tail = math.erfc(root / math.sqrt(2))  # 2 Q(sqrt x)
    if dof == 1:
        return tail
    term = root  # x^(1/2) / 1
    total = term
    for r in range(2, (dof - 1) // 2 + 1):
        term *= x / (2 * r - 1)
        total += term
    density = math.exp(-x / 2) / math.sqrt(2 * math.pi)
    return min(1.0, tail + 2 * density * total)


def total_variation(ref_proportions: np.ndarray, cur_counts: np.ndarray) -> float:
    """Half the L1 distance between the reference shares and the current counts' shares."""
    n = int(cur_counts.sum())
    if n == 0:
        return 0.0
    return float(0.5 * np.abs(cur_counts / n - ref_proportions).sum())


def psi_value(ref_proportions: np.ndarray, cur_proportions: np.ndarray, epsilon: float) -> float:
    """sum (c - r) ln(c / r) with both shares floored at ``epsilon``."""
    r = np.maximum(ref_proportions, epsilon)
    c = np.maximum(cur_proportions, epsilon)
    return float(np.sum((c - r) * np.log(c / r)))


def chi2_homogeneity(
    ref_counts: np.ndarray, cur_counts: np.ndarray
) -> tuple[float, float, int, str]:
    """Pearson's chi-squared test of homogeneity of a 2 x k table: (statistic, p, dof, method).

    Columns empty in both rows are dropped.  When every expected count is at least
    ``CHI2_MIN_EXPECTED`` the p-value is the asymptotic one (``chi2_contingency`` without
    Yates' correction).  Below that the asymptotic p-value is unreliable (one measured case
    gave 5.9e-4 where a permutation test gives 0.014), so it is a Monte Carlo p-value
    instead: ``CHI2_MONTE_CARLO_DRAWS`` tables with the same margins drawn from the
    multivariate hypergeometric distribution, with a fixed seed so a report is repeatable.
    Such a p-value cannot go below 1/(draws + 1); it is a reported figure, and the drift
    verdict never rests on it.  No column is merged, so a category that only one side has
    keeps its own column.
    """
    table = np.vstack([ref_counts, cur_counts]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    dof = table.shape[1] - 1
    if dof < 1 or table[0].sum() == 0 or table[1].sum() == 0:
        return 0.0, 1.0, max(dof, 0), "none"
    rows, cols = table.sum(axis=1), table.sum(axis=0)
    expected = np.outer(rows, cols) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    if expected.min() >= CHI2_MIN_EXPECTED:
        return statistic, chi2_sf(statistic, dof), dof, "asymptotic"
    rng = np.random.default_rng(20_240_601)
    draws = rng.multivariate_hypergeometric(
        cols.astype(np.int64), int(rows[1]), size=CHI2_MONTE_CARLO_DRAWS
    ).astype(np.float64)
    sim_cur = draws
    sim_ref = cols - draws
    sim = ((sim_ref - expected[0]) ** 2 / expected[0]).sum(axis=1) + (
        (sim_cur - expected[1]) ** 2 / expected[1]
    ).sum(axis=1)
    # a relative tolerance so that floating-point ties with the observed table count as ties
    at_least = int(np.count_nonzero(sim >= statistic * (1 - 1e-12)))
    return statistic, (1 + at_least) / (CHI2_MONTE_CARLO_DRAWS + 1), dof, "monte-carlo"
