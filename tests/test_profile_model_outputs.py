"""Reference profiles that carry the model: its outputs as the feature ``__prediction__`` and
a confidence calibrator fitted on the reference's labels (library and ``mlops profile``)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mlops_core.cli import profile as profile_cli
from mlops_core.constants import PREDICTION_FEATURE
from mlops_core.errors import ProfileError
from mlops_core.profile import (
    CategoricalFeatureProfile,
    NumericFeatureProfile,
    ReferenceProfile,
)
from mlops_core.quality import ConfidenceCalibrator

REPO = Path(__file__).resolve().parent.parent

#: written by the profile code before model outputs existed (commit e521fb3), verbatim
OLD_PROFILE = (
    '{"format": "mlops-reference-profile", "format_version": 1, "hash": '
    '"2f52bf423ae992989f7116faf8fd81bc36f8b79e21795e94d7d3024a01360732", "n_rows": 4, '
    '"buckets": 2, "max_categories": 20, "metadata": {}, "features": {"age": {"kind": '
    '"numeric", "n": 4, "n_missing": 0, "edges": [30.0], "ref_counts": [2, 2], '
    '"sorted_values_sha256": '
    '"0a60f2195d6dad362e71ca0921b4836b91648bca2619ee535a3a6d7d56b5b2a5", "sorted_values": '
    '{"encoding": "zlib+base64 float64 little-endian", "data": '
    '"eJxjYAABGwcwxWAHoQ+4QPleDgAjEALJ"}}, "plan": {"kind": "categorical", "n": 4, '
    '"n_missing": 0, "categories": ["basic", "pro", "team"], "ref_counts": [2, 1, 1, 0], '
    '"other_categories": []}}}'
)


def _model_on_reference(n: int = 3000, seed: int = 0) -> dict[str, np.ndarray]:
    """A binary classifier's outputs on a reference: class, its probability, true label."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    p_churn = 1.0 / (1.0 + np.exp(-2.0 * x))
    predicted = np.where(p_churn >= 0.5, "churn", "stay")
    confidence = np.maximum(p_churn, 1.0 - p_churn)
    label = np.where(rng.random(n) < p_churn, "churn", "stay")
    return {"x": x, "predicted": predicted, "confidence": confidence, "label": label}


@pytest.fixture
def outputs() -> dict[str, np.ndarray]:
    return _model_on_reference()


def _with_model(outputs: dict[str, np.ndarray], **kwargs: object) -> ReferenceProfile:
    return ReferenceProfile.from_data(
        {"x": outputs["x"]},
        predictions=outputs["predicted"],
        probabilities=outputs["confidence"],
        labels=outputs["label"],
        **kwargs,  # type: ignore[arg-type]
    )


# --- the library -------------------------------------------------------------------------------


def test_predictions_are_profiled_like_a_feature_named_prediction(outputs) -> None:
    profile = _with_model(outputs)
    assert profile.feature_names == ["x", PREDICTION_FEATURE]
    prediction = profile[PREDICTION_FEATURE]
    assert profile.prediction is prediction
    same = CategoricalFeatureProfile.from_values(PREDICTION_FEATURE, outputs["predicted"])
    assert prediction.kind == "categorical"
    assert prediction.bucket_labels == same.bucket_labels
    assert np.array_equal(prediction.ref_counts, same.ref_counts)


def test_a_score_is_a_numeric_prediction_and_integer_classes_can_be_typed(outputs) -> None:
    scores = ReferenceProfile.from_data({"x": outputs["x"]}, predictions=outputs["x"] * 2)
    assert isinstance(scores.prediction, NumericFeatureProfile)
    assert np.array_equal(scores.prediction.sorted_values, np.sort(outputs["x"] * 2))
    classes = (outputs["predicted"] == "churn").astype(int)
    inferred = ReferenceProfile.from_data({"x": outputs["x"]}, predictions=classes)
    assert inferred.prediction is not None and inferred.prediction.kind == "numeric"
    typed = ReferenceProfile.from_data(
        {"x": outputs["x"]}, {PREDICTION_FEATURE: "categorical"}, predictions=classes
    )
    assert typed.prediction is not None and typed.prediction.bucket_labels[:2] == ["0", "1"]
    assert typed.calibrator is None  # no labels, no calibrator


def test_the_calibrator_is_fitted_on_prediction_equals_label(outputs) -> None:
    profile = _with_model(outputs)
    expected = ConfidenceCalibrator.fit(
        outputs["confidence"], outputs["predicted"] == outputs["label"]
    )
    assert profile.calibrator == expected
    # calibrated model: about the identity
    grid = np.linspace(0.55, 0.95, 5)
    assert np.abs(profile.calibrator.calibrate(grid) - grid).max() < 0.08


def test_labels_compare_with_predictions_as_category_keys() -> None:
    """The CSV reader gives ``1.0`` where the labelling job wrote ``"1"``: one class."""
    profile = ReferenceProfile.from_data(
        {"x": [1.0, 2.0, 3.0, 4.0]},
        predictions=[1, 0, True, "a"],
        probabilities=[0.9, 0.8, 0.7, 0.6],
        labels=["1", 0.0, "true", "b"],
    )
    assert profile.calibrator == ConfidenceCalibrator.fit(
        [0.9, 0.8, 0.7, 0.6], [True, True, True, False]
    )


def test_rows_missing_a_prediction_a_probability_or_a_label_are_left_out_of_the_fit() -> None:
    profile = ReferenceProfile.from_data(
        {"x": [1.0, 2.0, 3.0, 4.0, 5.0]},
        predictions=["a", None, "a", "b", "a"],
        probabilities=[0.9, 0.8, float("nan"), 0.6, 0.7],
        labels=["a", "a", "a", "a", None],
    )
    assert profile.calibrator == ConfidenceCalibrator.fit([0.9, 0.6], [True, False])
    assert profile[PREDICTION_FEATURE].n_missing == 1


def test_round_trip_keeps_the_prediction_profile_and_the_calibrator(outputs, tmp_path) -> None:
    profile = _with_model(outputs)
    path = profile.save(tmp_path / "ref.json")
    doc = json.loads(path.read_text())
    assert set(doc["calibrator"]) == {"thresholds", "values"}
    assert doc["features"][PREDICTION_FEATURE]["kind"] == "categorical"
    loaded = ReferenceProfile.load(path)
    assert loaded.hash == profile.hash
    assert loaded.calibrator == profile.calibrator
    assert loaded.calibrator is not None and profile.calibrator is not None
    assert np.array_equal(loaded.calibrator.values, profile.calibrator.values)  # exact floats
    assert loaded.feature_names == profile.feature_names
    assert loaded[PREDICTION_FEATURE].bucket_labels == profile[PREDICTION_FEATURE].bucket_labels
    assert np.array_equal(
        loaded[PREDICTION_FEATURE].ref_counts, profile[PREDICTION_FEATURE].ref_counts
    )


def test_the_hash_covers_the_prediction_and_the_calibrator(outputs) -> None:
    plain = ReferenceProfile.from_data({"x": outputs["x"]})
    with_predictions = ReferenceProfile.from_data(
        {"x": outputs["x"]}, predictions=outputs["predicted"]
    )
    with_model = _with_model(outputs)
    other_labels = outputs["label"].copy()
    other_labels[:300] = np.where(other_labels[:300] == "churn", "stay", "churn")
    relabelled = ReferenceProfile.from_data(
        {"x": outputs["x"]},
        predictions=outputs["predicted"],
        probabilities=outputs["confidence"],
        labels=other_labels,
    )
    hashes = {p.hash for p in (plain, with_predictions, with_model, relabelled)}
    assert len(hashes) == 4
    assert _with_model(outputs).hash == with_model.hash  # and it is stable


def test_an_edited_calibrator_fails_the_hash_check(outputs, tmp_path) -> None:
    path = _with_model(outputs).save(tmp_path / "ref.json")
    doc = json.loads(path.read_text())
    doc["calibrator"]["values"][-1] = 1.0 if doc["calibrator"]["values"][-1] < 1 else 0.99
    doc["calibrator"]["values"].sort()
    path.write_text(json.dumps(doc))
    with pytest.raises(ProfileError, match=r"ref\.json.*hash mismatch"):
        ReferenceProfile.load(path)


def test_a_broken_calibrator_is_one_line_naming_it(outputs, tmp_path) -> None:
    path = _with_model(outputs).save(tmp_path / "ref.json")
    doc = json.loads(path.read_text())
    doc["calibrator"] = {"thresholds": [0.5, 0.6]}
    path.write_text(json.dumps(doc))
    with pytest.raises(ProfileError, match=r"ref\.json: calibrator: unreadable.*'values'"):
        ReferenceProfile.load(path)


def test_a_profile_written_before_model_outputs_still_loads_with_its_hash(tmp_path) -> None:
    path = tmp_path / "old.json"
    path.write_text(OLD_PROFILE)
    old = ReferenceProfile.load(path)
    assert old.hash == json.loads(OLD_PROFILE)["hash"]
    assert old.prediction is None and old.calibrator is None
    assert "calibrator" not in old.to_json_dict()
    rebuilt = ReferenceProfile.from_data(
        {"age": [30.0, 41.5, 52.0, 28.0], "plan": ["basic", "pro", "basic", "team"]}, buckets=2
    )
    assert rebuilt.hash == old.hash  # a profile without model outputs hashes as it did


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"probabilities": [0.9, 0.8]}, "probabilities need labels too"),
        ({"labels": ["a", "b"]}, "labels need probabilities too"),
        (
            {"probabilities": [0.9, 0.8], "labels": ["a", "b"], "predictions": None},
            "probabilities and labels need the predictions",
        ),
        (
            {"predictions": ["a", "b"], "probabilities": [0.9], "labels": ["a", "b"]},
            "must have one length, got 2, 1 and 2",
        ),
        (
            {"predictions": ["a", "b"], "probabilities": [0.9, 1.5], "labels": ["a", "b"]},
            r"probabilities: 1\.5 is not a probability in \[0, 1\]",
        ),
        (
            {"predictions": ["a", "b"], "probabilities": [0.9, "high"], "labels": ["a", "b"]},
            "probabilities: 'high' is not a probability",
        ),
        (
            {"predictions": ["a", "b"], "probabilities": [0.9, 0.8], "labels": [None, None]},
            "no row has a prediction, a probability and a label",
        ),
    ],
)
def test_bad_model_outputs_are_one_line(kwargs: dict, message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        ReferenceProfile.from_data({"x": [1.0, 2.0]}, **kwargs)


def test_predictions_and_a_prediction_column_are_one_too_many() -> None:
    with pytest.raises(ProfileError, match="has a column '__prediction__' and predictions"):
        ReferenceProfile.from_data({"x": [1.0], PREDICTION_FEATURE: ["a"]}, predictions=["a"])


def test_from_file_takes_the_model_columns_out_of_the_features(outputs, tmp_path) -> None:
    csv = _write_csv(tmp_path / "ref.csv", outputs)
    profile = ReferenceProfile.from_file(
        csv, prediction_column="predicted", probability_column="confidence", label_column="label"
    )
    assert profile.feature_names == ["x", PREDICTION_FEATURE]
    assert profile.calibrator == _with_model(outputs).calibrator
    with pytest.raises(
        ProfileError, match=r"ref\.csv: no column 'lable' \(did you mean 'label'\?\)"
    ):
        ReferenceProfile.from_file(csv, prediction_column="predicted", label_column="lable")


def _write_csv(path: Path, outputs: dict[str, np.ndarray]) -> Path:
    lines = ["x,predicted,confidence,label"]
    for row in zip(*(outputs[k] for k in ("x", "predicted", "confidence", "label")), strict=True):
        lines.append(",".join(repr(float(v)) if isinstance(v, float) else str(v) for v in row))
    path.write_text("\n".join(lines) + "\n")
    return path


# --- mlops profile build / show / drift -------------------------------------------------------


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="mlops")
    profile_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


_MODEL_FLAGS = [
    "--prediction-column", "predicted", "--probability-column", "confidence",
    "--label-column", "label",
]  # fmt: skip


def test_build_with_model_columns(outputs, tmp_path, capsys) -> None:
    csv = _write_csv(tmp_path / "ref.csv", outputs)
    out = tmp_path / "p.json"
    assert run(["profile", "build", str(csv), "-o", str(out), *_MODEL_FLAGS]) == 0
    loaded = ReferenceProfile.load(out)
    printed = capsys.readouterr().out
    points = loaded.calibrator.thresholds.size if loaded.calibrator else 0
    assert (
        f"wrote {out}: 1 features, 3000 rows, with __prediction__ (categorical) and "
        f"calibrator ({points} points), hash {loaded.hash[:16]}"
    ) in printed
    assert loaded.hash == _with_model(outputs).hash  # the same profile as the library's
    assert run(["profile", "show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "__prediction__" in shown and f"calibrator: {points} points" in shown
    assert run(["profile", "show", str(out), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["calibrator"] == loaded.calibrator.to_dict()  # type: ignore[union-attr]


def test_build_types_the_prediction_column_with_categorical(tmp_path) -> None:
    csv = tmp_path / "ref.csv"
    csv.write_text("x,pred\n1.5,0\n2.5,1\n3.5,1\n")
    out = tmp_path / "p.json"
    run(["profile", "build", str(csv), "-o", str(out), "--prediction-column", "pred"])
    assert ReferenceProfile.load(out)[PREDICTION_FEATURE].kind == "numeric"
    run(["profile", "build", str(csv), "-o", str(out), "--prediction-column=pred",
         "--categorical", "pred"])  # fmt: skip
    assert ReferenceProfile.load(out)[PREDICTION_FEATURE].kind == "categorical"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--prediction-column", "predicted", "--probability-column", "confidence",
          "--label-column", "labels"], "no column 'labels' (did you mean 'label'?)"),
        (["--prediction-column", "pred"], "no column 'pred'"),
        (["--probability-column", "confidence", "--label-column", "label"],
         "--probability-column needs --prediction-column"),
        (["--prediction-column", "predicted", "--probability-column", "confidence"],
         "--probability-column needs --label-column"),
        (["--prediction-column", "predicted", "--label-column", "label"],
         "--label-column needs --probability-column"),
    ],
)  # fmt: skip
def test_build_errors_are_one_line_from_the_real_command(
    outputs, tmp_path, flags: list[str], message: str
) -> None:
    csv = _write_csv(tmp_path / "ref.csv", outputs)
    proc = subprocess.run(
        [sys.executable, "-m", "mlops_core.cli", "profile", "build", str(csv),
         "-o", str(tmp_path / "p.json"), *flags],
        capture_output=True, text=True, cwd=REPO, check=False,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("mlops profile: error: ") and message in proc.stderr
    assert not (tmp_path / "p.json").exists()


def test_drift_tests_the_current_predictions_against_the_reference(outputs, tmp_path, capsys):
    csv = _write_csv(tmp_path / "ref.csv", outputs)
    out = tmp_path / "p.json"
    run(["profile", "build", str(csv), "-o", str(out), *_MODEL_FLAGS])
    capsys.readouterr()
    current = _model_on_reference(2000, seed=1)
    current["predicted"][:600] = "churn"  # the model says churn far more often
    current_csv = _write_csv(tmp_path / "cur.csv", current)
    run(["drift", str(out), str(current_csv), "--prediction-column", "predicted", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert report["features_with_drift"] == [PREDICTION_FEATURE]
    with pytest.raises(ProfileError, match=r"cur\.csv: no column 'pred'"):
        run(["drift", str(out), str(current_csv), "--prediction-column", "pred"])
