"""mlops_core.statistics: the kernels the exporter runs without scipy.stats, against scipy."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from mlops_core import statistics
from tests.conftest import REPO_ROOT


@pytest.mark.parametrize("dof", [1, 2, 3, 4, 7, 10, 21, 40])
def test_chi2_sf_equals_scipy(dof: int) -> None:
    for x in np.concatenate([np.linspace(0, 5, 40), np.linspace(5, 300, 80)]):
        ours, theirs = statistics.chi2_sf(float(x), dof), float(stats.chi2.sf(x, dof))
        assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-300), (dof, x)


def test_chi2_sf_rejects_a_table_without_degrees_of_freedom() -> None:
    with pytest.raises(ValueError, match="dof must be a positive integer"):
        statistics.chi2_sf(1.0, 0)


@pytest.mark.parametrize("n", [100, 141, 500, 10_000, 100_000, 2_000_000])
def test_pelz_good_series_equals_scipys_own(n: int) -> None:
    """scipy's kstwo uses the same expansion beyond n = 100,000 (a private function)."""
    from scipy.stats._ksstats import _kolmogn_PelzGood

    for d in np.linspace(0.001, 0.49, 120):
        if d * np.sqrt(n) > 0.05:
            assert statistics._pelz_good_cdf(n, float(d)) == pytest.approx(
                _kolmogn_PelzGood(n, float(d), cdf=True), abs=1e-11
            ), d


@pytest.mark.parametrize(("n", "tolerance"), [(5, 1e-12), (60, 1e-12), (100, 1e-5), (500, 3e-7),
                                              (10_000, 3e-8)])  # fmt: skip
def test_kolmogorov_sf_equals_kstwo_including_the_edges(n: int, tolerance: float) -> None:
    grid = np.concatenate(
        [
            np.linspace(0.25 / n, 1.0 / n, 15),  # n d <= 1: closed forms
            np.linspace(1.0 / n, 0.5, 80),
            np.linspace(0.5, 1.0, 30),  # large d: kstwo itself, or 2 (1 - d)^n
        ]
    )
    for d in grid:
        assert statistics._kolmogorov_sf(float(d), n) == pytest.approx(
            float(stats.kstwo.sf(d, n)), abs=tolerance
        ), d


def test_the_exporters_pass_never_imports_scipy() -> None:
    """scipy.stats alone costs ~46 MB: the sidecar's default path runs without scipy."""
    code = (
        "import sys, numpy as np\n"
        "from exporter.pipeline import DriftSettings, WindowData, compute_snapshot\n"
        "from mlops_core.profile import ReferenceProfile\n"
        "rng = np.random.default_rng(0)\n"
        "ref = {'x': rng.normal(size=2000), 'c': rng.choice(['a', 'b', 'z'], 2000)}\n"
        "profile = ReferenceProfile.from_data(ref)\n"
        "data = WindowData(500, {'x': rng.normal(size=500), 'c': rng.choice(['a', 'q'], 500)},"
        " {'x': 0.0, 'c': 0.0}, np.array([0.01]))\n"
        "snap = compute_snapshot(data, profile, {'x': 'numeric', 'c': 'categorical'},"
        " DriftSettings(tests=('ks', 'psi')))\n"
        "assert snap.features[0].ks_p_value is not None and snap.features[1].chi2_p_value\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'scipy'))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
