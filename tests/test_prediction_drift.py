"""Prediction drift: the model's outputs, ``__prediction__``, as one more monitored series.

The parser fills the column from each record's ``prediction``; the config adds it to the
monitored features whenever the reference profile has it.  The real process over HTTP is
tests/e2e/test_exporter_prediction_drift.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from exporter.config import load_config, load_reference
from exporter.diagnostics import FIELD_SAMPLE, Diagnostics
from exporter.records import ParsedBatch, RecordParser
from mlops_core.constants import PREDICTION_FEATURE
from mlops_core.profile import ReferenceProfile


def line(prediction: object, **input_data: object) -> bytes:
    record = {
        "timestamp": "2026-11-26T03:44:27.123456Z",
        "event": "prediction",
        "request_id": "req-1",
        "input_data": {"x": 1.0, **input_data},
        "prediction": prediction,
        "latency_ms": 12.0,
    }
    return json.dumps(record).encode()


# --- the parser -------------------------------------------------------------------------------


def test_a_categorical_prediction_is_the_predicted_class_as_a_category_key() -> None:
    parser = RecordParser({"x": "numeric", PREDICTION_FEATURE: "categorical"})
    predictions = [
        {"class": "churn", "probability": 0.7},
        {"class": 1},
        {"class": True},
        {"class": 1.0},
        "stay",  # a bare class
        0.25,  # a bare float is a regressor's value: no class
        {"value": 3.0},
        None,
    ]
    batch = parser.parse([line(p) for p in predictions])
    column = batch.features[PREDICTION_FEATURE]
    assert column.tolist() == ["churn", "1", "true", "1", "stay", None, None, None]
    assert batch.value_counts(PREDICTION_FEATURE) == {"churn": 1, "1": 2, "true": 1, "stay": 1}
    assert batch.invalid == {} and batch.n_predictions == len(predictions)


def test_the_class_field_setting_names_the_predicted_class() -> None:
    parser = RecordParser({PREDICTION_FEATURE: "categorical"}, class_field="label")
    batch = parser.parse([line({"label": "a", "class": "b"})])
    assert batch.features[PREDICTION_FEATURE].tolist() == ["a"]


def test_a_numeric_prediction_is_a_bare_number_value_or_numeric_class() -> None:
    parser = RecordParser({"x": "numeric", PREDICTION_FEATURE: "numeric"})
    predictions = [0.25, 3, {"value": 41.5}, {"class": 1}, {"class": 0, "value": 0.8},
                   {"class": "churn"}, {"class": True}, True, None]  # fmt: skip
    batch = parser.parse([line(p) for p in predictions])
    expected = [0.25, 3.0, 41.5, 1.0, 0.8, np.nan, np.nan, np.nan, np.nan]
    np.testing.assert_array_equal(batch.features[PREDICTION_FEATURE], expected)
    assert batch.invalid == {}


def test_a_numeric_value_of_the_wrong_type_is_a_wrong_type_line() -> None:
    """``value`` is read only for a numeric ``__prediction__``, and then typed like a numeric
    feature; without prediction drift the exporter does not read it and the line counts."""
    bad = line({"value": "high"})
    with_value = RecordParser({"x": "numeric", PREDICTION_FEATURE: "numeric"}).parse([bad])
    assert with_value.invalid == {"wrong_type": 1} and with_value.n_predictions == 0
    for features in ({"x": "numeric"}, {"x": "numeric", PREDICTION_FEATURE: "categorical"}):
        assert RecordParser(features).parse([bad]).n_predictions == 1


def test_a_numeric_prediction_too_large_for_a_float_costs_its_line_as_non_finite() -> None:
    """An integer past 1.8e308 as a bare prediction or a class (msgspec keeps it exact) used
    to raise OverflowError while building the column: the line went to ``internal_error``,
    logged as a parser bug.  It is ``non_finite``, as ``1e400`` there is, on both paths, and
    with a negative latency too it is still counted once."""
    parser = RecordParser({"x": "numeric", PREDICTION_FEATURE: "numeric"})
    huge = int("1" + "0" * 400)
    past_msgspec = line({"class": 7}).replace(b'"class": 7', b'"class": ' + b"9" * 5000)
    bad = [line(huge), line(-huge), line({"class": huge}), past_msgspec]
    with_negative_latency = line(huge).replace(b'"latency_ms": 12.0', b'"latency_ms": -1')
    good = line(0.5)
    for lines in ([*bad, with_negative_latency], [good, *bad, good, with_negative_latency]):
        batch = parser.parse_block(b"\n".join(lines) + b"\n")
        assert batch.invalid == {"non_finite": 5}
        assert batch.n_predictions == len(lines) - 5
        assert batch.features[PREDICTION_FEATURE].tolist() == [0.5] * batch.n_predictions
        assert parser.parse(lines).invalid == {"non_finite": 5}
    mixed = parser.parse([good, line(huge), line(0.5).replace(b"12.0", b"-3")])
    assert mixed.invalid == {"non_finite": 1, "out_of_range": 1} and mixed.n_predictions == 1


def test_input_data_never_fills_the_prediction_column() -> None:
    parser = RecordParser({"x": "numeric", PREDICTION_FEATURE: "categorical"})
    batch = parser.parse([line({"class": "a"}, __prediction__="from inputs")])
    assert batch.features[PREDICTION_FEATURE].tolist() == ["a"]


def test_batches_concatenate_with_their_prediction_counts() -> None:
    parser = RecordParser({"x": "numeric", PREDICTION_FEATURE: "categorical"})
    first = parser.parse_block(line({"class": "a"}) + b"\n" + line({"class": "b"}) + b"\n")
    second = parser.parse_block(line({"class": "a"}) + b"\n")
    merged = ParsedBatch.concat([first, second])
    assert merged.features[PREDICTION_FEATURE].tolist() == ["a", "b", "a"]
    assert merged.value_counts(PREDICTION_FEATURE) == {"a": 2, "b": 1}


def test_without_prediction_drift_the_parser_reads_what_it_did() -> None:
    parser = RecordParser({"x": "numeric"})
    batch = parser.parse([line({"class": "a", "value": [1, 2]})])
    assert list(batch.features) == ["x"] and batch.class_counts() == {"a": 1}


# --- the config -------------------------------------------------------------------------------


def _profile(tmp_path: Path, *, with_predictions: bool = True) -> Path:
    rng = np.random.default_rng(3)
    x = rng.normal(size=500)
    plan = rng.choice(["a", "b"], 500)
    predictions = np.where(x > 0, "churn", "stay") if with_predictions else None
    profile = ReferenceProfile.from_data({"x": x, "plan": plan}, predictions=predictions)
    return profile.save(tmp_path / "ref.json")


def _config(tmp_path: Path, features: str = "") -> Path:
    (tmp_path / "config.yml").write_text(
        "model: {name: m}\nlogs: {paths: [logs/*.jsonl]}\nreference: {path: ref.json}\n" + features,
        encoding="utf-8",
    )
    return tmp_path / "config.yml"


@pytest.mark.parametrize(
    ("features", "expected"),
    [
        ("", {"x": "numeric", "plan": "categorical", PREDICTION_FEATURE: "categorical"}),
        ("features: [plan]\n", {"plan": "categorical", PREDICTION_FEATURE: "categorical"}),
        (
            "features: {__prediction__: {tolerance: 0.1}, x: numeric}\n",
            {PREDICTION_FEATURE: "categorical", "x": "numeric"},
        ),
        ("features: {x: numeric, __prediction__: {monitor: false}}\n", {"x": "numeric"}),
    ],
)
def test_the_reference_prediction_is_monitored_unless_switched_off(
    tmp_path: Path, features: str, expected: dict[str, str]
) -> None:
    _profile(tmp_path)
    _, monitored = load_reference(load_config(_config(tmp_path, features), env={}))
    assert monitored == expected
    assert list(monitored) == list(expected)  # __prediction__ last unless placed


def test_a_profile_without_predictions_monitors_only_features(tmp_path: Path) -> None:
    _profile(tmp_path, with_predictions=False)
    _, monitored = load_reference(load_config(_config(tmp_path, "features: [x]\n"), env={}))
    assert monitored == {"x": "numeric"}


def test_the_missing_field_warning_never_names_the_prediction() -> None:
    """``__prediction__`` is never in ``input_data``: that is not a misnamed feature."""
    diagnostics = Diagnostics(
        {"x": "numeric", PREDICTION_FEATURE: "categorical"}, patterns=["*.jsonl"],
        features_configured=True,
    )  # fmt: skip
    diagnostics.observe_block(b"\n".join(line({"class": "a"}) for _ in range(FIELD_SAMPLE)))
    assert diagnostics.warnings() == ()
