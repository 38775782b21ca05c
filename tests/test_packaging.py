"""pyproject.toml's package data names files that exist (a stale pattern ships nothing and
hides that the directory it meant is gone)."""

from __future__ import annotations

import tomllib

from tests.conftest import REPO_ROOT


def test_every_package_data_pattern_matches_a_file() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    package_data = pyproject["tool"]["setuptools"]["package-data"]
    assert package_data, "no package data declared: is the table still there?"
    for package, patterns in package_data.items():
        for pattern in patterns:
            matches = [p for p in (REPO_ROOT / package).glob(pattern) if p.is_file()]
            assert matches, f"pyproject.toml: package data {package}/{pattern} matches no file"
