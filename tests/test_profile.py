"""Reference profiles: buckets, categories, type inference, files, hashing and corruption."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from mlops_core import (
    CategoricalFeatureProfile,
    NumericFeatureProfile,
    ProfileError,
    ReferenceProfile,
    detect_drift_psi,
)
from mlops_core.errors import DataFileWarning
from mlops_core.profile import FORMAT_VERSION, OTHER_BUCKET, UNSEEN_BUCKET, category_key


def _bucket_of(edges: list[float], v: float) -> int:
    """The documented rule, written out: bucket i holds edges[i-1] < v <= edges[i]."""
    for i, edge in enumerate(edges):
        if v <= edge:
            return i
    return len(edges)


# --- numeric features ----------------------------------------------------------------------


def test_numeric_profile_keeps_sorted_finite_float64_values() -> None:
    values = np.array([5, 3, np.nan, 1, np.inf, 4, -np.inf, 2], dtype=float)
    f = ReferenceProfile.from_data({"x": values}, buckets=2)["x"]
    assert isinstance(f, NumericFeatureProfile)
    assert f.kind == "numeric"
    assert f.sorted_values.dtype == np.float64
    assert f.sorted_values.tolist() == [1, 2, 3, 4, 5]
    assert (f.n, f.n_missing) == (5, 3)


def test_edges_are_reference_quantiles() -> None:
    f = NumericFeatureProfile.from_values("x", np.arange(1, 101), buckets=10)
    # 1..100: the smallest value with F(v) >= k/10 is 10k
    assert f.edges.tolist() == [10, 20, 30, 40, 50, 60, 70, 80, 90]
    assert f.ref_proportions.tolist() == [0.1] * 10
    assert f.bucket_labels == [f"{10 * k}.0" for k in range(1, 10)] + ["+Inf"]


def test_bucketize_follows_le_semantics_and_open_ends() -> None:
    rng = np.random.default_rng(3)
    f = NumericFeatureProfile.from_values("x", rng.normal(size=500), buckets=8)
    probe = np.concatenate([f.edges, f.edges + 1e-9, [-1e9, 1e9], rng.normal(size=50)])
    expected = [_bucket_of(f.edges.tolist(), v) for v in probe]
    assert f.bucketize(probe).tolist() == expected
    assert f.bucketize(np.array([-1e9]))[0] == 0
    assert f.bucketize(np.array([1e9]))[0] == f.n_buckets - 1
    assert len(f.bucket_labels) == f.n_buckets == len(f.ref_proportions)
    assert f.bucket_labels[-1] == "+Inf"
    assert np.all(np.diff(f.edges) > 0)
    assert f.ref_proportions.sum() == pytest.approx(1.0)


def test_reference_proportions_match_a_brute_force_count() -> None:
    rng = np.random.default_rng(4)
    values = rng.integers(0, 7, size=300).astype(float)
    f = NumericFeatureProfile.from_values("x", values, buckets=5)
    counts = np.zeros(f.n_buckets)
    for v in values:
        counts[_bucket_of(f.edges.tolist(), v)] += 1
    assert f.ref_counts.tolist() == counts.tolist()


def test_tied_quantiles_collapse_to_fewer_buckets() -> None:
    values = np.array([0.0] * 90 + [1.0] * 10)
    f = NumericFeatureProfile.from_values("x", values, buckets=10)
    assert f.edges.tolist() == [0.0]
    assert f.ref_proportions.tolist() == [0.9, 0.1]
    constant = NumericFeatureProfile.from_values("c", np.full(50, 7.0), buckets=10)
    # one edge at the value itself; the open-ended upper bucket is empty in the reference
    assert constant.edges.tolist() == [7.0]
    assert constant.ref_proportions.tolist() == [1.0, 0.0]


def test_tied_maximum_gets_its_own_bucket() -> None:
    # 5 % zeros: every quantile is 1; an edge at 1 would put all values in one bucket
    f = NumericFeatureProfile.from_values("x", np.array([0.0] * 5 + [1.0] * 95), buckets=10)
    assert f.edges.tolist() == [0.0]
    assert f.ref_proportions.tolist() == [0.05, 0.95]
    ref = np.array([0.0] * 5 + [1.0] * 95)
    shifted = detect_drift_psi(ref, np.array([0.0] * 50 + [1.0] * 50))
    assert shifted["psi"] == pytest.approx(
        (0.5 - 0.05) * math.log(0.5 / 0.05) + (0.5 - 0.95) * math.log(0.5 / 0.95), rel=1e-12
    )


def test_bucket_counts_drop_and_count_missing() -> None:
    f = NumericFeatureProfile.from_values("x", np.arange(10.0), buckets=2)
    counts, missing = f.bucket_counts([0.0, 9.0, 100.0, np.nan, None])
    assert counts.tolist() == [1, 2]
    assert missing == 2


# --- categorical features ------------------------------------------------------------------


def test_categorical_keeps_top_categories_and_other_bucket() -> None:
    values = ["a"] * 5 + ["b"] * 3 + ["c"] * 2 + ["d"] + [None]
    f = CategoricalFeatureProfile.from_values("plan", values, max_categories=2)
    assert f.kind == "categorical"
    assert f.categories == ["a", "b"]
    assert f.bucket_labels == ["a", "b", OTHER_BUCKET, UNSEEN_BUCKET]
    assert f.ref_counts.tolist() == [5, 3, 3]  # as stored: no count for the unseen bucket
    assert f.bucket_ref_counts.tolist() == [5, 3, 3, 0]
    assert f.ref_proportions.tolist() == pytest.approx([5 / 11, 3 / 11, 3 / 11, 0.0])
    assert (f.n, f.n_missing) == (11, 1)
    assert f.other_categories == ["c", "d"]


def test_categorical_bucketize_keeps_unseen_apart_from_other() -> None:
    f = CategoricalFeatureProfile.from_values("plan", ["a", "a", "b", "c"], max_categories=2)
    assert f.bucketize(["b", "a", "zzz", "c"]).tolist() == [1, 0, 3, 2]
    # "c" was in the reference (folded into __other__); "zzz" never was
    assert f.count_unseen(["b", "zzz", "c", "zzz", None]) == 2


def test_category_ties_are_broken_by_name() -> None:
    f = CategoricalFeatureProfile.from_values("x", ["b", "a", "c", "b", "a", "c"], max_categories=2)
    assert f.categories == ["a", "b"]


def test_category_keys_normalise_booleans_and_integral_floats() -> None:
    assert category_key(True) == "true"
    assert category_key(np.bool_(False)) == "false"
    assert category_key(3.0) == "3"
    assert category_key(2.5) == "2.5"
    assert category_key(7) == "7"


# --- type inference and overrides ----------------------------------------------------------


def test_type_inference_and_override() -> None:
    data = {
        "age": np.array([30, 40, 50]),
        "plan": np.array(["a", "b", "a"]),
        "flag": np.array([True, False, True]),
        "zip": np.array([10001, 10002, 10001]),
        "mixed": np.array([1, None, 2.5], dtype=object),
    }
    p = ReferenceProfile.from_data(data, feature_types={"zip": "categorical"}, buckets=2)
    kinds = {name: p[name].kind for name in p.feature_names}
    assert kinds == {
        "age": "numeric",
        "plan": "categorical",
        "flag": "categorical",
        "zip": "categorical",
        "mixed": "numeric",
    }
    assert p["zip"].categories == ["10001", "10002"]
    assert p["mixed"].n_missing == 1


def test_unknown_type_override_names_the_feature() -> None:
    with pytest.raises(ProfileError, match=r"'age'.*'numeric' or 'categorical'"):
        ReferenceProfile.from_data({"age": [1, 2]}, feature_types={"age": "ordinal"})


def test_type_override_for_an_unknown_feature() -> None:
    with pytest.raises(ProfileError, match="'agee'"):
        ReferenceProfile.from_data({"age": [1, 2]}, feature_types={"agee": "numeric"})


def test_strings_forced_numeric_name_the_feature() -> None:
    with pytest.raises(ProfileError, match=r"feature 'plan'.*non-numeric"):
        ReferenceProfile.from_data({"plan": ["a", "b"]}, feature_types={"plan": "numeric"})


def test_feature_without_finite_values_is_rejected() -> None:
    with pytest.raises(ProfileError, match="feature 'x': no finite values"):
        ReferenceProfile.from_data({"x": [np.nan, np.inf]})


def test_empty_feature_is_rejected() -> None:
    with pytest.raises(ProfileError, match="feature 'x': no values"):
        ReferenceProfile.from_data({"x": np.array([], dtype=float)})


def test_bad_bucket_count_is_rejected() -> None:
    with pytest.raises(ProfileError, match="buckets"):
        ReferenceProfile.from_data({"x": [1.0, 2.0]}, buckets=1)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"buckets": 10**8}, "buckets must be an integer from 2 to 1000, got 100000000"),
        ({"buckets": 1001}, "buckets must be an integer from 2 to 1000, got 1001"),
        ({"max_categories": 0}, "max_categories must be an integer from 1 to 1000, got 0"),
        ({"max_categories": 10**6}, "max_categories must be an integer from 1 to 1000, got 10"),
    ],
)
def test_bucket_and_category_counts_have_an_upper_bound(options: dict, message: str) -> None:
    """A count past the bound is one line, not a numpy memory error (checked up front, so
    also when no feature is of the kind that uses it)."""
    with pytest.raises(ProfileError, match=f"^{message}"):
        ReferenceProfile.from_data({"x": [1.0, 2.0, 3.0]}, **options)


def test_the_largest_bucket_count_is_accepted() -> None:
    p = ReferenceProfile.from_data({"x": np.arange(5000.0), "c": ["a"] * 5000}, buckets=1000,
                                   max_categories=1000)  # fmt: skip
    assert p["x"].n_buckets == 1000


def test_save_into_a_missing_directory_names_the_target(tmp_path) -> None:
    """The atomic write's temporary file is an implementation detail: the error names the
    path asked for (``OSError.filename``) and its missing directory."""
    p = ReferenceProfile.from_data({"x": [1.0, 2.0]})
    target = tmp_path / "no" / "dir" / "p.json"
    with pytest.raises(FileNotFoundError) as exc:
        p.save(target)
    assert exc.value.filename == str(target)
    assert exc.value.strerror == f"directory {tmp_path / 'no' / 'dir'} does not exist"
    with pytest.raises(IsADirectoryError) as exc:
        p.save(tmp_path)
    assert exc.value.filename == str(tmp_path) and not list(tmp_path.iterdir())


def test_mapping_access_and_n_rows() -> None:
    p = ReferenceProfile.from_data({"a": [1.0, 2.0, 3.0], "b": ["x", "y"]}, buckets=2)
    assert p.feature_names == ["a", "b"]
    assert "a" in p and "zzz" not in p
    assert len(p) == 2 and list(p) == ["a", "b"]
    assert p.n_rows == 3
    assert p["a"] is p.features["a"]


# --- hashing, save and load ----------------------------------------------------------------


@pytest.fixture
def profile() -> ReferenceProfile:
    rng = np.random.default_rng(7)
    data = {
        "age": rng.normal(40, 10, 2000),
        "income": np.where(rng.random(2000) < 0.05, np.nan, rng.lognormal(10, 0.5, 2000)),
        "plan": rng.choice(["basic", "pro", "team"], 2000),
    }
    return ReferenceProfile.from_data(data)


def test_save_load_round_trip_is_exact(profile: ReferenceProfile, tmp_path) -> None:
    path = profile.save(tmp_path / "ref.json")
    loaded = ReferenceProfile.load(path)
    assert loaded.hash == profile.hash
    for name in profile.feature_names:
        a, b = profile[name], loaded[name]
        assert a.kind == b.kind
        assert a.bucket_labels == b.bucket_labels
        assert np.array_equal(a.ref_counts, b.ref_counts)
        assert a.n_missing == b.n_missing
        if a.kind == "numeric":
            assert np.array_equal(a.sorted_values, b.sorted_values)
            assert np.array_equal(a.edges, b.edges)
    doc = json.loads(path.read_text())
    assert doc["format_version"] == FORMAT_VERSION
    assert doc["hash"] == profile.hash


def test_hash_depends_on_content_not_metadata(profile: ReferenceProfile) -> None:
    rng = np.random.default_rng(7)
    same = ReferenceProfile.from_data({name: _raw(profile, name) for name in profile.feature_names})
    same.metadata["source"] = "elsewhere.csv"
    assert same.hash == profile.hash
    changed = ReferenceProfile.from_data({"age": rng.normal(40, 10, 2000)})
    assert changed.hash != profile.hash
    assert len(profile.hash) == 64


def _raw(profile: ReferenceProfile, name: str) -> object:
    f = profile[name]
    if f.kind == "numeric":
        return np.concatenate([f.sorted_values, np.full(f.n_missing, np.nan)])
    return np.repeat(np.array(f.bucket_labels, dtype=object), f.bucket_ref_counts)


def test_edited_profile_fails_the_hash_check(profile: ReferenceProfile, tmp_path) -> None:
    path = profile.save(tmp_path / "ref.json")
    doc = json.loads(path.read_text())
    counts = doc["features"]["plan"]["ref_counts"]
    counts[0] += 1  # still sums to n, so only the hash can catch it
    counts[-1] -= 1
    path.write_text(json.dumps(doc))
    with pytest.raises(ProfileError, match=r"ref\.json.*hash mismatch"):
        ReferenceProfile.load(path)


def test_truncated_profile_names_the_file(profile: ReferenceProfile, tmp_path) -> None:
    path = profile.save(tmp_path / "ref.json")
    path.write_text(path.read_text()[:500])
    with pytest.raises(ProfileError, match=r"ref\.json.*invalid JSON"):
        ReferenceProfile.load(path)


def test_corrupted_sorted_values_are_rejected(profile: ReferenceProfile, tmp_path) -> None:
    path = profile.save(tmp_path / "ref.json")
    doc = json.loads(path.read_text())
    doc["features"]["age"]["sorted_values"]["data"] = "!!!not base64!!!"
    path.write_text(json.dumps(doc))
    with pytest.raises(ProfileError, match=r"ref\.json.*'age'.*unreadable"):
        ReferenceProfile.load(path)


def test_future_format_version_is_refused(profile: ReferenceProfile, tmp_path) -> None:
    path = profile.save(tmp_path / "ref.json")
    doc = json.loads(path.read_text())
    doc["format_version"] = FORMAT_VERSION + 1
    path.write_text(json.dumps(doc))
    with pytest.raises(ProfileError, match="format_version"):
        ReferenceProfile.load(path)


def test_json_that_is_not_a_profile(tmp_path) -> None:
    path = tmp_path / "other.json"
    path.write_text('{"hello": 1}')
    with pytest.raises(ProfileError, match=r"other\.json: not a profile"):
        ReferenceProfile.load(path)


# --- raw data files ------------------------------------------------------------------------


def test_from_csv_infers_types_and_counts_empty_cells(tmp_path) -> None:
    path = tmp_path / "train.csv"
    path.write_text("age,plan,score\n30,basic,1.5\n40,pro,\n50,basic,2.5\n,pro,3.5\n")
    p = ReferenceProfile.from_file(path, buckets=2)
    assert p["age"].kind == "numeric" and p["age"].n_missing == 1
    assert p["score"].sorted_values.tolist() == [1.5, 2.5, 3.5]
    assert p["plan"].kind == "categorical"
    assert p["plan"].ref_counts.tolist() == [2, 2, 0]
    assert p.n_rows == 4
    assert p.metadata["source"] == "train.csv"


def test_csv_categorical_override(tmp_path) -> None:
    path = tmp_path / "train.csv"
    path.write_text("zip\n10001\n10002\n10001\n")
    p = ReferenceProfile.from_file(path, feature_types={"zip": "categorical"})
    assert p["zip"].categories == ["10001", "10002"]


def test_csv_ragged_row_names_the_line(tmp_path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("a,b\n1,2\n3\n")
    with pytest.raises(ProfileError, match=r"bad\.csv:3: 1 fields"):
        ReferenceProfile.from_file(path)


def test_formats_agree_on_the_same_data(tmp_path) -> None:
    rng = np.random.default_rng(11)
    age = rng.integers(18, 80, 300).astype(float)
    plan = rng.choice(["a", "b", "c"], 300)
    (tmp_path / "d.csv").write_text(
        "age,plan\n" + "".join(f"{a:.0f},{p}\n" for a, p in zip(age, plan, strict=True))
    )
    (tmp_path / "d.jsonl").write_text(
        "".join(
            json.dumps({"age": a, "plan": str(p)}) + "\n" for a, p in zip(age, plan, strict=True)
        )
    )
    (tmp_path / "d.ndjson").write_text(
        "".join(
            json.dumps({"event": "prediction", "input_data": {"age": a, "plan": str(p)}}) + "\n"
            for a, p in zip(age, plan, strict=True)
        )
        + json.dumps({"event": "startup", "input_data": {"age": 1e9}})
        + "\n"
    )
    np.savez(tmp_path / "d.npz", age=age, plan=plan)
    expected = ReferenceProfile.from_data({"age": age, "plan": plan}).hash
    for name in ("d.csv", "d.jsonl", "d.ndjson", "d.npz"):
        assert ReferenceProfile.from_file(tmp_path / name).hash == expected, name


def test_jsonl_bad_line_names_file_and_line(tmp_path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(ProfileError, match=r"d\.jsonl:2: invalid JSON"):
        ReferenceProfile.from_file(path)


def _prediction_log(path, predictions: int) -> None:
    """A model server's log: predictions between its own events, as PredictionLogger writes."""
    from mlops_core import PredictionLogger

    logger = PredictionLogger("churn-api", model_version="1.0.0", output=str(path))
    logger.logger.info("model_loaded", path="/models/churn/1.0.0")
    for i in range(predictions):
        logger.log_prediction(f"r{i}", {"age": 20 + i % 50, "plan": "ab"[i % 2]}, {"class": 1}, 5.0)
        if i % 2:
            logger.logger.info("health_check", status="ok")
    logger.close()


def test_prediction_log_skips_the_model_servers_other_events(tmp_path) -> None:
    path = tmp_path / "predictions.jsonl"
    _prediction_log(path, 201)
    p = ReferenceProfile.from_file(path)
    assert p.feature_names == ["age", "plan"]  # no "path" or "status" from the other events
    assert p.n_rows == 201
    assert p["age"].n_missing == 0 and p["plan"].n_missing == 0


def test_prediction_without_input_data_in_a_log_names_its_line(tmp_path) -> None:
    path = tmp_path / "predictions.jsonl"
    path.write_text(
        '{"event": "prediction", "input_data": {"age": 1}}\n'
        '{"event": "model_loaded"}\n'
        '{"event": "prediction", "prediction": 1}\n'
    )
    with pytest.raises(ProfileError, match=r"predictions\.jsonl:3: a prediction without an input"):
        ReferenceProfile.from_file(path)


def test_prediction_log_with_only_other_events_is_refused(tmp_path) -> None:
    path = tmp_path / "predictions.jsonl"
    path.write_text('{"event": "model_loaded"}\n{"event": "startup", "input_data": {"a": 1}}\n')
    with pytest.raises(ProfileError, match=r"predictions\.jsonl: no predictions, only other"):
        ReferenceProfile.from_file(path)


def test_flat_json_lines_keep_a_column_named_event(tmp_path) -> None:
    path = tmp_path / "clicks.jsonl"
    path.write_text('{"event": "click", "x": 1}\n{"event": "view", "x": 2}\n')
    p = ReferenceProfile.from_file(path)
    assert p.feature_names == ["event", "x"] and p.n_rows == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('a,b\n1,2\n3,"4\n5,6\n', r"bad\.csv:3: unclosed quote: .* end of the file, line 4"),
        ('"a,b\n1,2\n', r"bad\.csv:1: unclosed quote"),
        ('a,b\n1,"x\n2,3\n4,"5\n', r"bad\.csv:2: unreadable CSV .* is a quote unclosed\?"),
        ('a,b\n"x\ny"\n', r"bad\.csv:2: 1 fields, header has 2 \(a quoted field runs to line 3"),
    ],
)
def test_csv_with_an_unclosed_quote_names_the_quote_and_its_line(tmp_path, text, message) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ProfileError, match=message):
        ReferenceProfile.from_file(path)


def test_csv_blank_lines_and_quoted_line_breaks_are_data(tmp_path) -> None:
    path = tmp_path / "ok.csv"
    path.write_text('a,b\n1,"x\ny"\n\n2,z\n')
    p = ReferenceProfile.from_file(path)
    assert p.n_rows == 2 and p["b"].categories == ["x\ny", "z"]


def test_npz_with_object_arrays_is_refused(tmp_path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, a=np.array([1, "x", None], dtype=object))
    with pytest.raises(ProfileError, match=r"d\.npz: unreadable"):
        ReferenceProfile.from_file(path)


def test_unknown_suffix_is_refused(tmp_path) -> None:
    path = tmp_path / "d.parquet"
    path.write_bytes(b"PAR1")
    with pytest.raises(ProfileError, match=r"unknown data format '\.parquet'"):
        ReferenceProfile.from_file(path)


def test_read_data_file_is_still_importable_from_profile(tmp_path) -> None:
    """It moved to mlops_core.datafiles (the one reader); its old import keeps working."""
    from mlops_core import datafiles, profile

    assert profile.read_data_file is datafiles.read_data_file
    path = tmp_path / "d.csv"
    path.write_bytes("\ufeff x ,y\n1,a\n".encode())
    with pytest.warns(DataFileWarning, match=r"' x ' as 'x'; a logged input_data key must"):
        data = profile.read_data_file(path)
    assert list(data) == ["x", "y"]  # the mark and the spaces are no part of the name


def test_missing_file_is_an_os_error(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        ReferenceProfile.from_file(tmp_path / "nope.csv")


def test_from_file_loads_a_saved_profile(profile: ReferenceProfile, tmp_path) -> None:
    path = profile.save(tmp_path / "ref.json")
    assert ReferenceProfile.from_file(path).hash == profile.hash


def test_from_file_selects_features(tmp_path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("a,b\n1,2\n3,4\n")
    assert ReferenceProfile.from_file(path, features=["b"]).feature_names == ["b"]
    with pytest.raises(ProfileError, match="no column 'c'"):
        ReferenceProfile.from_file(path, features=["c"])


@pytest.mark.parametrize("reader", ["read_data_file", "read_data"])
def test_the_header_warning_points_at_the_caller_of_the_reader(tmp_path, reader: str) -> None:
    """A warning's file and line are for the user to find the call: a fixed stacklevel named
    a line of datafiles.py itself (read_data_file calls read_data calls _read_csv)."""
    from mlops_core import datafiles

    path = tmp_path / "d.csv"
    path.write_text("x, y\n1,2\n", encoding="utf-8")
    with pytest.warns(DataFileWarning) as caught:
        getattr(datafiles, reader)(path)
    assert [Path(w.filename).name for w in caught] == [Path(__file__).name]
