"""mlops_core.statistics' use of a private scipy routine, pinned to what was tested.

``_attempt_exact_2kssamp`` (the exact two-sample KS distribution, what
``ks_2samp(method="exact")`` calls) is not public API: a scipy release may rename, move or
change it without notice.  These tests fail when the installed scipy is outside the versions
the private path was tested against, or when the routine is gone or its signature changed,
so a scipy upgrade fails CI instead of giving users a TypeError or a silently different
p-value.  The KS oracles themselves run on both paths (``ks_exact`` in tests/conftest.py).
(The Pelz-Good series is implemented in mlops_core.statistics itself and checked against
scipy's in tests/test_statistics.py.)
"""

from __future__ import annotations

import inspect
import tomllib

import scipy
from packaging.requirements import Requirement
from packaging.version import Version

from mlops_core import statistics
from tests.conftest import REPO_ROOT

#: the signatures mlops_core.statistics calls them with
EXPECTED_SIGNATURES = {"_attempt_exact_2kssamp": "(n1, n2, g, d, alternative)"}


def test_installed_scipy_is_one_the_private_path_was_tested_against() -> None:
    lowest, first_untested = map(Version, statistics.SCIPY_PRIVATE_TESTED)
    installed = Version(scipy.__version__)
    assert lowest <= installed < first_untested, (
        f"scipy {installed} is outside the versions mlops_core.statistics' private KS "
        f"routines were tested against ({lowest} <= v < {first_untested}): check that "
        "tests/test_drift.py passes and their source is unchanged, then widen "
        "SCIPY_PRIVATE_TESTED"
    )


def test_the_tested_range_starts_at_the_lowest_scipy_the_package_allows() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (scipy_req,) = [
        Requirement(r) for r in pyproject["project"]["dependencies"] if r.startswith("scipy")
    ]
    lowest = Version(statistics.SCIPY_PRIVATE_TESTED[0])
    assert lowest in scipy_req.specifier
    assert not any(Version(s.version) < lowest for s in scipy_req.specifier if ">" in s.operator)


def test_the_private_routines_are_present_with_the_signatures_called() -> None:
    routines = {"_attempt_exact_2kssamp": statistics._exact_2kssamp()}
    for name, signature in EXPECTED_SIGNATURES.items():
        routine = routines[name]
        assert routine is not None, f"scipy {scipy.__version__} no longer has {name}"
        assert str(inspect.signature(routine)) == signature, (
            f"scipy {scipy.__version__} changed {name}{inspect.signature(routine)}; "
            f"mlops_core.statistics calls it as {name}{signature}"
        )
