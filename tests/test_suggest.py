"""Did-you-mean that only suggests what is really close (mlops_core.suggest)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_core.suggest import closest


@pytest.mark.parametrize(
    ("name", "candidates", "expected"),
    [
        ("mean radius", ["mean_radius", "mean_texture"], "mean_radius"),  # same up to spaces
        ("MeanRadius", ["mean_radius"], "mean_radius"),
        ("incme", ["income", "age"], "income"),  # a typo
        ("mean_area", ["mean_radius", "mean_texture"], None),  # once suggested: misleading
        ("zip", ["age", "income"], None),
        ("lgos", ["logs", "drift"], "logs"),  # two neighbours swapped: difflib rates it 0.75
        ("tolerence", ["tolerance"], "tolerance"),  # one letter changed
        ("windw", ["window"], "window"),  # one left out
        ("pis", ["psi", "ks"], None),  # a slip in three letters is too much of the name
        ("warn", ["warning", "critical"], None),  # three letters short: not a slip
    ],
)
def test_closest_suggests_only_close_names(name: str, candidates, expected) -> None:
    assert closest(name, candidates) == expected


def test_a_feature_missing_from_the_reference_gets_no_misleading_hint(tmp_path: Path) -> None:
    from exporter.config import load_config, load_reference
    from mlops_core.errors import MlopsError

    (tmp_path / "ref.csv").write_text("mean_radius,mean_texture\n1,2\n3,4\n")
    path = tmp_path / "c.yml"
    path.write_text(
        "model: {name: m}\nlogs: {paths: [x]}\nreference: {path: ref.csv}\nfeatures: [mean_area]\n"
    )
    with pytest.raises(MlopsError) as info:
        load_reference(load_config(path, {}))
    assert "features.mean_area: not a column" in str(info.value)
    assert "did you mean" not in str(info.value)
    path.write_text(path.read_text().replace("mean_area", "mean radius"))
    with pytest.raises(MlopsError, match="did you mean 'mean_radius'"):
        load_reference(load_config(path, {}))
