"""Distribution-free confidence bounds behind the drift verdict, and the level they run at.

A drift verdict is a claim: *the distance between the live data and the reference is at
least the tolerance the user set*.  It is made only when a lower confidence bound of the
distance reaches the tolerance, so its false-alarm rate is the bound's level, whatever the
sample size and whatever the distribution.  Nothing here is asymptotic: every bound is a
finite-sample inequality that stays valid at the levels near 1e-7 that a budget of one
false alarm a month, spread over every pass and feature, asks for.  (A nominal 1e-7
chi-squared p-value is really about 2.7e-7 at ten expected counts per cell, and a Monte
Carlo p-value cannot go below 1/(B+1): neither can carry such a level.)

The three distances, all in probability units so one tolerance reads the same everywhere:

* numeric features: the Kolmogorov-Smirnov distance ``D = sup |F_ref - F_cur|``;
* categorical features: the total variation distance ``TV = 1/2 sum |p_i - q_i|`` over the
  reference's kept categories, ``__other__`` and the unseen-category bucket;
* missing values: the rise of the missing share, ``m_cur - m_ref``.

Each lower bound is ``observed - radius_ref - radius_cur``: by the triangle inequality the
true distance is below it only if one of the two samples strays from its own distribution
by more than its radius, and each radius is set so that happens with probability at most
half the level:

* Dvoretzky-Kiefer-Wolfowitz with Massart's constant:
  ``P(sup |F_n - F| > e) <= 2 exp(-2 n e^2)``, so at half the level
  ``e = sqrt(ln(4 / level) / (2 n))``;
* Bretagnolle-Huber-Carol for ``k`` cells:
  ``P(sum |p_n - p| >= l) <= 2^k exp(-n l^2 / 2)``, so at half the level the
  total-variation radius is ``sqrt((k ln 2 + ln(2 / level)) / (2 n))``;
* Hoeffding, one-sided, for the missing share: at half the level
  ``e = sqrt(ln(2 / level) / (2 n))``.

Each bound also has a p-value (:func:`ks_bound_p_value` and friends): the smallest level at
which it would flag.  It is what a multiple-testing correction adjusts, and ``p <= level``
holds exactly when ``lower bound >= tolerance``.

The level itself comes from a budget (:func:`level_from_budget`): with one verdict per
feature and pass, the union bound over ``budget / interval`` passes and ``features``
verdicts keeps the expected number of false verdicts in the budget's period at one.
"""

from __future__ import annotations

import math

__all__ = [
    "dkw_radius",
    "ks_bound_p_value",
    "ks_radius_pair",
    "level_from_budget",
    "missing_bound_p_value",
    "missing_radius",
    "missing_radius_pair",
    "tv_bound_p_value",
    "tv_radius",
    "tv_radius_pair",
]


def level_from_budget(interval: float, budget: float, tests: int) -> float:
    """Per-verdict level that keeps false verdicts at one per ``budget`` seconds.

    The exporter re-judges ``tests`` features every ``interval`` seconds, so a period of
    ``budget`` seconds holds ``budget / interval`` passes and ``tests * budget / interval``
    verdicts.  If each verdict is falsely positive with probability at most ``level``, the
    expected number of false verdicts in the period is at most
    ``level * tests * budget / interval``, which is 1 for the level returned.  The passes
    share most of their window, so their verdicts are far from independent; the union bound
    needs no independence, which is why it is used (it is conservative for the same
    reason).  Each exporter replica spends its own budget.
    """
    if not (interval > 0 and budget > 0 and tests >= 1):
        raise ValueError(
            f"level_from_budget needs interval > 0, budget > 0 and tests >= 1, "
            f"got {interval!r}, {budget!r}, {tests!r}"
        )
    return min(1.0, interval / budget / tests)


def dkw_radius(n: int, level: float) -> float:
    """KS radius of one sample of ``n``: ``P(sup |F_n - F| > radius) <= level`` (Massart)."""
    _check(n, level)
    return math.sqrt(math.log(2.0 / level) / (2.0 * n))


def tv_radius(n: int, cells: int, level: float) -> float:
    """Total-variation radius of one sample of ``n`` over ``cells`` cells (Bretagnolle-
    Huber-Carol): ``P(TV(p_n, p) >= radius) <= level``."""
    _check(n, level)
    if cells < 1:
        raise ValueError(f"cells must be >= 1, got {cells!r}")
    return math.sqrt((cells * math.log(2.0) + math.log(1.0 / level)) / (2.0 * n))


def missing_radius(n: int, level: float) -> float:
    """One-sided Hoeffding radius of a share estimated from ``n`` Bernoulli draws."""
    _check(n, level)
    return math.sqrt(math.log(1.0 / level) / (2.0 * n))


def ks_bound_p_value(distance: float, tolerance: float, n_ref: int, n_cur: int) -> float:
    """Smallest level at which ``distance - radius_ref - radius_cur >= tolerance``.

    With the level split in two halves, one per sample, the radii sum to
    ``sqrt(ln(4 / level) / 2) * s`` with ``s = 1/sqrt(n_ref) + 1/sqrt(n_cur)``; solving for
    the level at a gap ``g = distance - tolerance`` gives ``4 exp(-2 g^2 / s^2)``.
    """
    return _p_value(distance - tolerance, _spread(n_ref, n_cur), 4.0)


def tv_bound_p_value(
    distance: float, tolerance: float, n_ref: int, n_cur: int, cells: int
) -> float:
    """Smallest level at which the total-variation lower bound reaches ``tolerance``
    (``2^(cells + 1) exp(-2 g^2 / s^2)``, the level split between the two samples)."""
    return _p_value(distance - tolerance, _spread(n_ref, n_cur), 2.0 ** (cells + 1))


def missing_bound_p_value(rise: float, tolerance: float, n_ref: int, n_cur: int) -> float:
    """Smallest level at which the missing share's rise is shown to exceed ``tolerance``."""
    return _p_value(rise - tolerance, _spread(n_ref, n_cur), 2.0)


def ks_radius_pair(n_ref: int, n_cur: int, level: float) -> float:
    """Sum of the two samples' KS radii, each at half of ``level``."""
    return dkw_radius(n_ref, level / 2) + dkw_radius(n_cur, level / 2)


def tv_radius_pair(n_ref: int, n_cur: int, cells: int, level: float) -> float:
    """Sum of the two samples' total-variation radii, each at half of ``level``."""
    return tv_radius(n_ref, cells, level / 2) + tv_radius(n_cur, cells, level / 2)


def missing_radius_pair(n_ref: int, n_cur: int, level: float) -> float:
    """Sum of the two one-sided radii of the missing shares, each at half of ``level``."""
    return missing_radius(n_ref, level / 2) + missing_radius(n_cur, level / 2)


def _spread(n_ref: int, n_cur: int) -> float:
    if n_ref < 1 or n_cur < 1:
        raise ValueError(f"both samples need at least one value, got {n_ref} and {n_cur}")
    return 1.0 / math.sqrt(n_ref) + 1.0 / math.sqrt(n_cur)


def _p_value(gap: float, spread: float, factor: float) -> float:
    if not gap > 0:
        return 1.0
    return min(1.0, factor * math.exp(-2.0 * (gap / spread) ** 2))


def _check(n: int, level: float) -> None:
    if n < 1:
        raise ValueError(f"a radius needs a sample of at least one value, got {n}")
    if not 0.0 < level <= 1.0:
        raise ValueError(f"level must be in (0, 1], got {level!r}")
