"""Reference profiles: everything drift detection needs from the training data, computed once.

A :class:`ReferenceProfile` holds, per feature, what the drift tests and the exporter need
without ever touching the raw training data again:

* numeric features (:class:`NumericFeatureProfile`): the finite values sorted once as float64
  (the KS test looks current values up in them with ``searchsorted``, never re-sorting), the
  PSI bucket edges (quantiles of the reference, fixed once) and the reference count per bucket;
* categorical features (:class:`CategoricalFeatureProfile`): the ``max_categories`` most
  frequent categories, one ``__other__`` bucket that takes the rarer reference categories,
  and one ``__unseen__`` bucket (reference share 0) for every category never seen in the
  reference.  The unseen bucket is never merged with another: a category that appears
  only in production is the plainest drift there is, and merging it away would hide it.

Two optional parts describe the model rather than its inputs:

* the model's outputs on the reference, as one more feature profile named
  ``__prediction__`` (:data:`~mlops_core.constants.PREDICTION_FEATURE`), built by the same
  code as a feature: categorical for a predicted class, numeric for a score or value.  The
  exporter tests the live outputs against it like one more feature (prediction drift);
* a :class:`~mlops_core.quality.ConfidenceCalibrator` fitted on the reference's labels
  (:attr:`ReferenceProfile.calibrator`), from which the exporter estimates accuracy before
  any label arrives.  Both are part of the content hash.

Profiles are saved as one JSON document with a format version and a SHA-256 hash of the
canonical content; :meth:`ReferenceProfile.load` recomputes the hash and refuses a file that
was corrupted or edited.  The sorted values are stored as zlib-compressed little-endian
float64 (base64), so a 100k-row feature costs about 1 MB instead of 2.5 MB of decimal text.

Bucket semantics (shared with the exporter's ``mlops_feature_bucket_observations_total`` and
the Prometheus recording rules, see docs/architecture.md): with inner cut points
``edges`` a value ``v`` goes to bucket ``i`` when ``edges[i-1] < v <= edges[i]``, that is
``np.searchsorted(edges, v, side="left")``.  The first and last buckets are open-ended, so a
current value outside the reference range still lands in a bucket.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import json
import math
import numbers
import os
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from mlops_core._fsutil import atomic_write_bytes
from mlops_core.constants import (
    DEFAULT_BUCKETS,
    DEFAULT_MAX_CATEGORIES,
    FEATURE_KINDS,
    MAX_BUCKETS,
    MAX_CATEGORIES,
    OTHER_BUCKET,
    PREDICTION_FEATURE,
    UNSEEN_BUCKET,
)
from mlops_core.datafiles import (
    DATA_SUFFIXES,
    read_data_file,  # re-exported: its home before datafiles.py
)
from mlops_core.datafiles import is_number_or_missing as _is_number_or_missing
from mlops_core.errors import MissingFileError, MlopsError, ProfileError
from mlops_core.quality import ConfidenceCalibrator
from mlops_core.schema import did_you_mean as _did_you_mean

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "OTHER_BUCKET",
    "PREDICTION_FEATURE",
    "UNSEEN_BUCKET",
    "CategoricalFeatureProfile",
    "FeatureProfile",
    "NumericFeatureProfile",
    "ReferenceProfile",
    "category_key",
    "infer_kind",
    "quantile_edges",
    "read_data_file",
    "to_category_keys",
    "to_float_array",
]

FORMAT_NAME = "mlops-reference-profile"
FORMAT_VERSION = 1
#: category keys of a boolean feature; current values 0/1 count under them (see _as_boolean)
BOOLEAN_KEYS = frozenset({"true", "false"})


# --- value conversion (shared with mlops_core.drift) -------------------------------------------


def to_float_array(
    label: str, values: Any, error: type[MlopsError] = ProfileError
) -> tuple[np.ndarray, int]:
    """Finite float64 values of a numeric feature and the number of NaN/inf/None dropped.

    Raises ``error`` for non-numeric values (strings, dates, objects); its message starts
    with ``label`` (for example ``"feature 'age'"``).
    Booleans count as numbers (0/1) when the caller declared the feature numeric.
    An empty result is not an error here; callers decide what "no finite values" means.
    """
    arr = np.asarray(values)
    _check_1d(arr, label, error)
    kind = arr.dtype.kind
    if kind in "iub":
        floats = arr.astype(np.float64)
    elif kind == "f":
        floats = arr.astype(np.float64, copy=False)
    elif kind == "O":
        bad = next((v for v in arr if not _is_number_or_missing(v)), _NOTHING)
        if bad is not _NOTHING:
            raise error(f"{label}: non-numeric value {bad!r} in a numeric feature")
        floats = np.array([np.nan if v is None else float(v) for v in arr], dtype=np.float64)
    else:
        raise error(f"{label}: non-numeric value {_first_non_number(arr)!r} in a numeric feature")
    finite = np.isfinite(floats)
    if finite.all():
        return floats, 0
    return floats[finite], int(floats.size - np.count_nonzero(finite))


_NOTHING = object()


def _check_1d(arr: np.ndarray, label: str, error: type[MlopsError]) -> None:
    """One feature is one column: a scalar or a 2-D array is a caller's mistake, and
    flattening a table silently would judge its columns as one feature."""
    if arr.ndim == 0:
        raise error(f"{label}: expected a 1-D array of values, got a scalar")
    if arr.ndim > 1:
        raise error(
            f"{label}: expected a 1-D array of values, got shape {arr.shape}; pass one "
            "column per feature"
        )


def _first_non_number(arr: np.ndarray) -> Any:
    """The value to quote when an array is not numeric (``[1.0, "old"]`` becomes strings)."""
    if arr.dtype.kind not in "US":
        return arr[0].item() if arr.size else str(arr.dtype)
    for v in arr.reshape(-1):
        try:
            float(v)
        except ValueError:
            return str(v)
    return str(arr.reshape(-1)[0]) if arr.size else str(arr.dtype)


def _is_missing(value: Any) -> bool:
    """None, or a non-finite float (Python's or NumPy's, of any width)."""
    if value is None:
        return True
    return isinstance(value, float | np.floating) and not math.isfinite(value)


def category_key(value: Any) -> str:
    """The string a categorical value is counted under (booleans as ``true``/``false``).

    The exporter and the profile both go through this function, so ``True`` read from a JSON
    log and ``True`` in a NumPy array of training data land in the same bucket.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def to_category_keys(
    values: Any, label: str = "categorical feature", error: type[MlopsError] = ProfileError
) -> tuple[np.ndarray, int]:
    """Non-missing values as an array of str keys, and how many missing (None/NaN) were dropped."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "U":
        _check_1d(values, label, error)
        return values, 0
    arr = np.asarray(values, dtype=object)
    _check_1d(arr, label, error)
    if all(type(v) is str for v in arr):  # the common case, 3x faster than the loop below
        return (arr.astype(str) if arr.size else np.array([], dtype="<U1")), 0
    keys = [category_key(v) for v in arr if not _is_missing(v)]
    return np.array(keys, dtype=str if keys else "<U1"), int(arr.size - len(keys))


# --- per-feature profiles ----------------------------------------------------------------------


def quantile_edges(sorted_values: np.ndarray, buckets: int) -> np.ndarray:
    """Inner cut points: the reference's i/buckets quantiles, tied quantiles collapsed.

    The quantiles are reference values themselves (``method="inverted_cdf"``: the smallest
    value whose empirical CDF reaches i/buckets), so no edge falls between two neighbouring
    values and creates an empty bucket; ``np.unique`` collapses tied quantiles, so a feature
    with few distinct values gets fewer buckets instead of empty duplicates.

    An edge at the maximum would leave the open-ended last bucket empty and lump the maximum
    together with the values below it: 5 % zeros and 95 % ones would give the single edge 1,
    and PSI could not see the share of zeros change.  Such an edge moves down to the largest
    value below the maximum, so the last bucket holds the tied maximum and every bucket
    holds reference values.  Only a constant feature keeps its edge at the value (values
    above it still get their own bucket).
    """
    if buckets < 2:
        return np.empty(0, dtype=np.float64)
    probs = np.arange(1, buckets) / buckets
    edges = np.unique(np.quantile(sorted_values, probs, method="inverted_cdf"))
    top = sorted_values[-1]
    if edges[-1] == top:
        below = int(np.searchsorted(sorted_values, top, side="left"))
        if below > 0:
            edges = np.unique(np.append(edges[:-1], sorted_values[below - 1]))
    return edges


def _format_edge(edge: float) -> str:
    return repr(float(edge))


@dataclass(frozen=True, eq=False)
class NumericFeatureProfile:
    """The reference distribution of one numeric feature.

    ``sorted_values`` are the finite reference values, sorted (float64); ``edges`` the inner
    bucket cut points (strictly increasing, ``len == n_buckets - 1``); ``ref_counts`` the
    number of reference values per bucket.  Build one with :meth:`from_values`.
    """

    kind: ClassVar[Literal["numeric"]] = "numeric"

    name: str
    sorted_values: np.ndarray
    edges: np.ndarray
    ref_counts: np.ndarray
    n_missing: int = 0

    @classmethod
    def from_values(
        cls,
        name: str,
        values: Any,
        buckets: int = DEFAULT_BUCKETS,
        *,
        error: type[MlopsError] = ProfileError,
        label: str | None = None,
    ) -> NumericFeatureProfile:
        """Profile raw values: drop and count NaN/inf, sort once, cut at reference quantiles.

        Errors are ``error`` (default :class:`ProfileError`) with messages starting with
        ``label`` (default ``feature '<name>'``).
        """
        label = label or f"feature {name!r}"
        _check_buckets(buckets, error)
        finite, n_missing = to_float_array(label, values, error)
        if finite.size == 0:
            what = "no values" if n_missing == 0 else f"no finite values ({n_missing} NaN/inf)"
            raise error(f"{label}: {what}")
        return cls.from_sorted(name, np.sort(finite), buckets, n_missing=n_missing)

    @classmethod
    def from_sorted(
        cls, name: str, sorted_values: np.ndarray, buckets: int, *, n_missing: int = 0
    ) -> NumericFeatureProfile:
        edges = quantile_edges(sorted_values, buckets)
        upper = np.searchsorted(sorted_values, edges, side="right")
        counts = np.diff(np.concatenate(([0], upper, [sorted_values.size]))).astype(np.int64)
        return cls(name, sorted_values, edges, counts, n_missing)

    @property
    def n(self) -> int:
        """Number of finite reference values."""
        return int(self.sorted_values.size)

    @property
    def n_buckets(self) -> int:
        return int(self.edges.size + 1)

    @property
    def ref_proportions(self) -> np.ndarray:
        """Share of the reference values in each bucket (sums to 1)."""
        return self.ref_counts / self.n

    @property
    def bucket_labels(self) -> list[str]:
        """Prometheus ``le``-style upper bound of each bucket; the last is ``"+Inf"``."""
        return [_format_edge(e) for e in self.edges] + ["+Inf"]

    def bucketize(self, values: np.ndarray) -> np.ndarray:
        """Bucket index of each value (``edges[i-1] < v <= edges[i]``); pass finite values."""
        return np.searchsorted(self.edges, values, side="left")

    def bucket_counts(self, values: Any) -> tuple[np.ndarray, int]:
        """Count of the finite values per bucket, and the number of NaN/inf/None dropped."""
        finite, n_missing = to_float_array(f"feature {self.name!r}", values, ProfileError)
        counts = np.bincount(self.bucketize(finite), minlength=self.n_buckets)
        return counts.astype(np.int64), n_missing

    def out_of_range(self, finite_values: np.ndarray) -> tuple[int, int]:
        """How many of ``finite_values`` (any order) lie below the reference minimum and above
        its maximum: the first and last buckets are open-ended, so the counts say what they
        hide (a reference of zeros against a window of -1 has everything in the first)."""
        if finite_values.size == 0:
            return 0, 0
        low, high = self.sorted_values[0], self.sorted_values[-1]
        return (
            int(np.count_nonzero(finite_values < low)),
            int(np.count_nonzero(finite_values > high)),
        )

    def _content(self) -> dict[str, Any]:
        raw = _float_bytes(self.sorted_values)
        return {
            "kind": self.kind,
            "n": self.n,
            "n_missing": self.n_missing,
            "edges": [float(e) for e in self.edges],
            "ref_counts": [int(c) for c in self.ref_counts],
            "sorted_values_sha256": hashlib.sha256(raw).hexdigest(),
        }

    def _to_json(self) -> dict[str, Any]:
        doc = self._content()
        doc["sorted_values"] = {
            "encoding": "zlib+base64 float64 little-endian",
            "data": base64.b64encode(zlib.compress(_float_bytes(self.sorted_values), 6)).decode(),
        }
        return doc

    @classmethod
    def _from_json(cls, name: str, doc: Mapping[str, Any]) -> NumericFeatureProfile:
        try:
            raw = zlib.decompress(base64.b64decode(doc["sorted_values"]["data"], validate=True))
            values = np.frombuffer(raw, dtype="<f8").astype(np.float64)
            edges = np.asarray(doc["edges"], dtype=np.float64).reshape(-1)
            counts = np.asarray(doc["ref_counts"], dtype=np.int64).reshape(-1)
            n_missing = int(doc["n_missing"])
        except (KeyError, TypeError, ValueError, zlib.error) as exc:
            raise ProfileError(f"feature {name!r}: unreadable numeric profile ({exc})") from None
        profile = cls(name, values, edges, counts, n_missing)
        _check_numeric(profile, int(doc.get("n", -1)))
        return profile


def _check_numeric(p: NumericFeatureProfile, n_declared: int) -> None:
    problems = []
    if p.n == 0 or p.n != n_declared:
        problems.append(f"{p.n} stored values but n={n_declared}")
    elif not np.isfinite(p.sorted_values).all() or np.any(np.diff(p.sorted_values) < 0):
        problems.append("sorted_values are not finite and sorted")
    if p.edges.size and np.any(np.diff(p.edges) <= 0):
        problems.append("edges are not strictly increasing")
    if p.ref_counts.size != p.edges.size + 1 or p.ref_counts.sum() != p.n:
        problems.append("ref_counts do not match edges and n")
    if problems:
        raise ProfileError(f"feature {p.name!r}: inconsistent profile: {'; '.join(problems)}")


@dataclass(frozen=True, eq=False)
class CategoricalFeatureProfile:
    """The reference distribution of one categorical feature.

    ``categories`` are the kept categories (the ``max_categories`` most frequent, ties broken
    by name); ``bucket_labels`` is ``categories + ["__other__", "__unseen__"]``.
    ``__other__`` holds the rarer reference categories (listed in ``other_categories``);
    ``__unseen__`` every category never seen in the reference, so its reference share is 0.
    ``ref_counts`` (as stored in the profile file) has one count per kept category plus
    ``__other__``; :attr:`bucket_ref_counts` appends the unseen bucket's 0.

    A boolean feature (reference keys ``true``/``false`` only) also takes the integers 0 and
    1 of a current sample as ``false``/``true``: JSON logs and NumPy arrays spell booleans
    both ways, and counting every 0/1 as an unseen category would be a false alarm.
    """

    kind: ClassVar[Literal["categorical"]] = "categorical"

    name: str
    categories: list[str]
    ref_counts: np.ndarray
    n_missing: int = 0
    other_categories: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        index = {c: i for i, c in enumerate(self.categories)}
        seen = set(self.categories) | set(self.other_categories)
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_seen", seen)
        object.__setattr__(self, "_boolean", bool(seen) and seen <= BOOLEAN_KEYS)

    @classmethod
    def from_values(
        cls,
        name: str,
        values: Any,
        max_categories: int = DEFAULT_MAX_CATEGORIES,
        *,
        error: type[MlopsError] = ProfileError,
        label: str | None = None,
    ) -> CategoricalFeatureProfile:
        """Count categories (None/NaN are missing), keep the most frequent ``max_categories``."""
        label = label or f"feature {name!r}"
        _check_max_categories(max_categories, error)
        keys, n_missing = to_category_keys(values)
        if keys.size == 0:
            what = "no values" if n_missing == 0 else f"no non-missing values ({n_missing} missing)"
            raise error(f"{label}: {what}")
        labels, counts = np.unique(keys, return_counts=True)
        order = sorted(range(labels.size), key=lambda i: (-int(counts[i]), str(labels[i])))
        ranked = [(str(labels[i]), int(counts[i])) for i in order if labels[i] != OTHER_BUCKET]
        kept = ranked[:max_categories]
        rest = [label for label, _ in ranked[max_categories:]]
        if OTHER_BUCKET in labels:
            rest.append(OTHER_BUCKET)
        other = int(keys.size) - sum(c for _, c in kept)
        ref_counts = np.array([c for _, c in kept] + [other], dtype=np.int64)
        return cls(name, [c for c, _ in kept], ref_counts, n_missing, sorted(rest))

    @property
    def n(self) -> int:
        """Number of non-missing reference values."""
        return int(self.ref_counts.sum())

    @property
    def n_buckets(self) -> int:
        return len(self.categories) + 2

    @property
    def bucket_labels(self) -> list[str]:
        return [*self.categories, OTHER_BUCKET, UNSEEN_BUCKET]

    @property
    def bucket_ref_counts(self) -> np.ndarray:
        """Reference count per bucket of :attr:`bucket_labels` (the unseen bucket's is 0)."""
        return np.append(self.ref_counts, 0).astype(np.int64)

    @property
    def ref_proportions(self) -> np.ndarray:
        """Share of the reference in each bucket of :attr:`bucket_labels` (sums to 1)."""
        return self.bucket_ref_counts / self.n

    def _bucket_of(self, key: str) -> int:
        index: dict[str, int] = self._index  # type: ignore[attr-defined]
        found = index.get(key)
        if found is not None:
            return found
        if key in self._seen:  # type: ignore[attr-defined]
            return len(self.categories)  # a rarer reference category: __other__
        return len(self.categories) + 1  # never seen in the reference: __unseen__

    def _as_boolean(self, key: str) -> str:
        return _BOOLEAN_SPELLINGS.get(key, key) if self._boolean else key  # type: ignore[attr-defined]

    def bucketize(self, values: Any) -> np.ndarray:
        """Bucket index of each (non-missing) value: its kept category, ``__other__`` for a
        rarer reference category, ``__unseen__`` for a category the reference never had."""
        if isinstance(values, np.ndarray) and values.dtype.kind == "U":
            keys = values.reshape(-1)
        else:
            flat = np.asarray(values, dtype=object).reshape(-1)
            keys = np.asarray([category_key(v) for v in flat], dtype=str)
        if keys.size == 0:
            return np.empty(0, dtype=np.intp)
        uniques, inverse = np.unique(keys, return_inverse=True)
        mapped = np.array(
            [self._bucket_of(self._as_boolean(str(u))) for u in uniques], dtype=np.intp
        )
        return mapped[inverse.reshape(-1)]

    def bucket_counts(self, values: Any) -> tuple[np.ndarray, int]:
        """Count of the non-missing values per bucket, and the number of None/NaN dropped."""
        keys, n_missing = to_category_keys(values)
        counts = np.bincount(self.bucketize(keys), minlength=self.n_buckets)
        return counts.astype(np.int64), n_missing

    def count_keys(self, keys: np.ndarray) -> tuple[np.ndarray, int]:
        """Bucket counts and number of unseen values of keys from :func:`to_category_keys`.

        One ``np.unique`` serves both, which is what a drift pass needs per window.
        """
        if keys.size == 0:
            return np.zeros(self.n_buckets, dtype=np.int64), 0
        uniques, counts = np.unique(keys, return_counts=True)
        buckets = np.array(
            [self._bucket_of(self._as_boolean(str(u))) for u in uniques], dtype=np.intp
        )
        totals = np.bincount(buckets, weights=counts, minlength=self.n_buckets)
        return totals.astype(np.int64), int(totals[-1])

    def count_unseen(self, values: Any) -> int:
        """How many (non-missing) values are categories the reference never contained."""
        return self.count_keys(to_category_keys(values)[0])[1]

    def _content(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "n": self.n,
            "n_missing": self.n_missing,
            "categories": list(self.categories),
            "ref_counts": [int(c) for c in self.ref_counts],
            "other_categories": list(self.other_categories),
        }

    def _to_json(self) -> dict[str, Any]:
        return self._content()

    @classmethod
    def _from_json(cls, name: str, doc: Mapping[str, Any]) -> CategoricalFeatureProfile:
        try:
            categories = [str(c) for c in doc["categories"]]
            counts = np.asarray(doc["ref_counts"], dtype=np.int64).reshape(-1)
            other = [str(c) for c in doc.get("other_categories", [])]
            profile = cls(name, categories, counts, int(doc["n_missing"]), other)
        except (KeyError, TypeError, ValueError) as exc:
            raise ProfileError(
                f"feature {name!r}: unreadable categorical profile ({exc})"
            ) from None
        if counts.size != len(categories) + 1 or profile.n != int(doc.get("n", -1)):
            raise ProfileError(f"feature {name!r}: inconsistent profile: counts do not match")
        return profile


FeatureProfile = NumericFeatureProfile | CategoricalFeatureProfile

# How a boolean feature's current values may be spelled (category_key turns True into "true",
# 1 into "1" and 1.0 into "1").
_BOOLEAN_SPELLINGS = {"1": "true", "0": "false", "True": "true", "False": "false"}


def _check_buckets(buckets: Any, error: type[MlopsError]) -> None:
    """At most :data:`~mlops_core.constants.MAX_BUCKETS`: every bucket gets a quantile and
    an exporter series, so 10^8 of them was a numpy memory error, not a profile."""
    _check_count("buckets", buckets, 2, MAX_BUCKETS, error)


def _check_max_categories(max_categories: Any, error: type[MlopsError]) -> None:
    """At most :data:`~mlops_core.constants.MAX_CATEGORIES`: each kept category is one
    exporter series per categorical feature."""
    _check_count("max_categories", max_categories, 1, MAX_CATEGORIES, error)


def _check_count(name: str, value: Any, low: int, high: int, error: type[MlopsError]) -> None:
    integral = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not integral or not low <= value <= high:
        raise error(f"{name} must be an integer from {low} to {high}, got {value!r}")


def _float_bytes(values: np.ndarray) -> bytes:
    return np.ascontiguousarray(values, dtype="<f8").tobytes()


# --- the whole profile ------------------------------------------------------------------------


class ReferenceProfile:
    """Per-feature reference profiles of one training data set, with a stable content hash.

    ``profile[name]`` gives a feature's profile, ``name in profile`` tests for one, and
    ``feature_names`` lists them in the order of the source data.  The model's outputs,
    when profiled, are the feature ``__prediction__`` (:attr:`prediction`, last); the
    confidence calibrator fitted on the reference's labels is :attr:`calibrator`.
    """

    def __init__(
        self,
        features: Mapping[str, FeatureProfile],
        n_rows: int,
        *,
        buckets: int = DEFAULT_BUCKETS,
        max_categories: int = DEFAULT_MAX_CATEGORIES,
        metadata: Mapping[str, Any] | None = None,
        calibrator: ConfidenceCalibrator | None = None,
    ) -> None:
        self.features: dict[str, FeatureProfile] = dict(features)
        self.n_rows = int(n_rows)
        self.buckets = int(buckets)
        self.max_categories = int(max_categories)
        #: free-form information (source file, creation time); not part of the hash
        self.metadata: dict[str, Any] = dict(metadata or {})
        #: P(prediction right | probability of the predicted class), fitted on the
        #: reference's labels; None when the profile was built without them
        self.calibrator = calibrator
        self._hash: str | None = None

    # -- construction

    @classmethod
    def from_data(
        cls,
        data: Mapping[str, Any],
        feature_types: Mapping[str, str] | None = None,
        buckets: int = DEFAULT_BUCKETS,
        max_categories: int = DEFAULT_MAX_CATEGORIES,
        *,
        predictions: Any = None,
        probabilities: Any = None,
        labels: Any = None,
    ) -> ReferenceProfile:
        """Profile a dict of feature name -> values, and optionally the model's outputs.

        Types are inferred (numbers -> ``"numeric"``; strings, booleans and mixed values ->
        ``"categorical"``) unless ``feature_types`` names them.  Columns may differ in
        length; ``n_rows`` is the longest.

        ``predictions`` (the model's output on each reference row: a class, or a score or
        value) becomes the feature ``__prediction__``, typed like a feature
        (``feature_types["__prediction__"]`` overrides the inference: integer classes infer
        as numeric).  ``probabilities`` (the probability the model gave its predicted class)
        and ``labels`` (the true class) go together and need ``predictions``: they fit the
        :attr:`calibrator` on "prediction == label" (compared as category keys, so ``1``,
        ``1.0`` and ``"1"`` are one class).  Rows missing any of the three are left out of
        the fit.
        """
        if not isinstance(data, Mapping) or not data:
            raise ProfileError("reference data must be a non-empty mapping of feature -> values")
        _check_buckets(buckets, ProfileError)
        _check_max_categories(max_categories, ProfileError)  # even without a categorical one
        if predictions is not None:
            if PREDICTION_FEATURE in data:
                raise ProfileError(
                    f"the data has a column {PREDICTION_FEATURE!r} and predictions are given "
                    "too: pass one of them"
                )
            data = {**data, PREDICTION_FEATURE: predictions}
        calibrator = _fit_calibrator(data.get(PREDICTION_FEATURE), probabilities, labels)
        overrides = dict(feature_types or {})
        unknown = sorted(set(overrides) - set(data))
        if unknown:
            raise ProfileError(f"feature_types names unknown feature {unknown[0]!r}")
        features: dict[str, FeatureProfile] = {}
        n_rows = 0
        for name, values in data.items():
            kind = overrides.get(name) or infer_kind(values)
            if kind not in FEATURE_KINDS:
                raise ProfileError(
                    f"feature {name!r}: type must be 'numeric' or 'categorical', got {kind!r}"
                )
            if kind == "numeric":
                features[name] = NumericFeatureProfile.from_values(name, values, buckets)
            else:
                features[name] = CategoricalFeatureProfile.from_values(name, values, max_categories)
            n_rows = max(n_rows, int(np.size(values)))
        return cls(
            features, n_rows, buckets=buckets, max_categories=max_categories,
            calibrator=calibrator,
        )  # fmt: skip

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        feature_types: Mapping[str, str] | None = None,
        buckets: int = DEFAULT_BUCKETS,
        max_categories: int = DEFAULT_MAX_CATEGORIES,
        *,
        features: Iterable[str] | None = None,
        prediction_column: str | None = None,
        probability_column: str | None = None,
        label_column: str | None = None,
    ) -> ReferenceProfile:
        """Profile raw data (``.csv``, ``.jsonl``/``.ndjson``, ``.npz``) or load a saved profile.

        A ``.json`` file (or anything that starts with ``{"format": "mlops-reference-profile"``)
        is loaded as a saved profile; the other arguments are then ignored.  JSON lines may be
        flat objects or prediction-log records, whose ``input_data`` is used.  ``features``
        restricts which columns are profiled.

        ``prediction_column``, ``probability_column`` and ``label_column`` name the columns
        holding the model's output, the probability of its predicted class and the true
        label (see :meth:`from_data`); they are never profiled as features.  A type in
        ``feature_types`` under the prediction column's name types ``__prediction__``.
        """
        path = _existing_file(path)
        if _looks_like_profile(path):
            return cls.load(path)
        data = read_data_file(path)
        model_columns = {
            "prediction": prediction_column,
            "probability": probability_column,
            "label": label_column,
        }
        taken = {c: data.pop(c) for c in model_columns.values() if c is not None and c in data}
        absent = [c for c in model_columns.values() if c is not None and c not in taken]
        if absent:
            raise ProfileError(f"{path}: no column {absent[0]!r}{_did_you_mean(absent[0], data)}")
        if features is not None:
            wanted = list(features)
            missing = [f for f in wanted if f not in data]
            if missing:
                raise ProfileError(
                    f"{path}: no column {missing[0]!r}{_did_you_mean(missing[0], data)}"
                )
            data = {f: data[f] for f in wanted}
        types = dict(feature_types or {})
        untyped = [c for c in types if c not in data and c not in taken]
        if untyped:  # named as a column by whoever typed it (--categorical COLUMN)
            raise ProfileError(
                f"{path}: no column {untyped[0]!r} to type{_did_you_mean(untyped[0], data)}"
            )
        if prediction_column is not None and prediction_column in types:
            types[PREDICTION_FEATURE] = types.pop(prediction_column)
        for column in (probability_column, label_column):
            types.pop(column, None)  # type: ignore[arg-type]
        try:
            profile = cls.from_data(
                data,
                types or None,
                buckets,
                max_categories,
                predictions=taken.get(prediction_column) if prediction_column else None,
                probabilities=taken.get(probability_column) if probability_column else None,
                labels=taken.get(label_column) if label_column else None,
            )
        except ProfileError as exc:
            raise ProfileError(f"{path}: {exc}") from None
        profile.metadata["source"] = path.name
        return profile

    # -- mapping-like access

    @property
    def feature_names(self) -> list[str]:
        return list(self.features)

    def __getitem__(self, name: str) -> FeatureProfile:
        return self.features[name]

    def __contains__(self, name: object) -> bool:
        return name in self.features

    def __iter__(self) -> Iterator[str]:
        return iter(self.features)

    def __len__(self) -> int:
        return len(self.features)

    @property
    def prediction(self) -> FeatureProfile | None:
        """The profile of the model's outputs (feature ``__prediction__``), if it has one."""
        return self.features.get(PREDICTION_FEATURE)

    def __repr__(self) -> str:
        return (
            f"ReferenceProfile({len(self.features)} features, n_rows={self.n_rows}, "
            f"hash={self.hash[:12]})"
        )

    # -- hashing and files

    def _content(self) -> dict[str, Any]:
        content = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "n_rows": self.n_rows,
            "buckets": self.buckets,
            "max_categories": self.max_categories,
            "features": {name: f._content() for name, f in self.features.items()},
        }
        # absent, not null, without one: the hash of a profile without it stays what it was
        if self.calibrator is not None:
            content["calibrator"] = self.calibrator.to_dict()
        return content

    @property
    def hash(self) -> str:
        """SHA-256 (hex) of the canonical JSON content; metadata is not part of it."""
        if self._hash is None:
            canonical = json.dumps(self._content(), sort_keys=True, separators=(",", ":"))
            self._hash = hashlib.sha256(canonical.encode()).hexdigest()
        return self._hash

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "hash": self.hash,
            "n_rows": self.n_rows,
            "buckets": self.buckets,
            "max_categories": self.max_categories,
            "metadata": self.metadata,
            "features": {name: f._to_json() for name, f in self.features.items()},
            **({"calibrator": self.calibrator.to_dict()} if self.calibrator is not None else {}),
        }

    def save(self, path: str | Path) -> Path:
        """Write the profile as JSON, atomically and durably (``_fsutil.atomic_write_bytes``)."""
        path = Path(path)
        self.metadata.setdefault(
            "created_at", _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
        )
        text = json.dumps(self.to_json_dict(), indent=1, sort_keys=False)
        atomic_write_bytes(path, (text + "\n").encode("utf-8"))
        return path

    @classmethod
    def load(cls, path: str | Path) -> ReferenceProfile:
        """Read a saved profile, check its format version and content hash."""
        path = _existing_file(path)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ProfileError(f"{path}: not a profile file (invalid JSON: {exc})") from None
        try:
            return cls.from_json_dict(doc)
        except ProfileError as exc:
            raise ProfileError(f"{path}: {exc}") from None

    @classmethod
    def from_json_dict(cls, doc: Any) -> ReferenceProfile:
        if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
            raise ProfileError(f'not a profile file (no "format": "{FORMAT_NAME}")')
        version = doc.get("format_version")
        if version != FORMAT_VERSION:
            raise ProfileError(
                f"unsupported profile format_version {version!r} (this version reads "
                f"{FORMAT_VERSION}); rebuild it with 'mlops profile build'"
            )
        feats = doc.get("features")
        if not isinstance(feats, dict) or not feats:
            raise ProfileError("profile has no features")
        features: dict[str, FeatureProfile] = {}
        for name, fdoc in feats.items():
            kind = fdoc.get("kind") if isinstance(fdoc, dict) else None
            if kind == "numeric":
                features[name] = NumericFeatureProfile._from_json(name, fdoc)
            elif kind == "categorical":
                features[name] = CategoricalFeatureProfile._from_json(name, fdoc)
            else:
                raise ProfileError(f"feature {name!r}: unknown kind {kind!r}")
        calibrator = None
        if doc.get("calibrator") is not None:
            try:
                calibrator = ConfidenceCalibrator.from_dict(doc["calibrator"])
            except (TypeError, ValueError) as exc:
                raise ProfileError(f"calibrator: unreadable ({exc})") from None
        try:
            profile = cls(
                features,
                int(doc["n_rows"]),
                buckets=int(doc.get("buckets", DEFAULT_BUCKETS)),
                max_categories=int(doc.get("max_categories", DEFAULT_MAX_CATEGORIES)),
                metadata=doc.get("metadata") or {},
                calibrator=calibrator,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProfileError(f"profile header is unreadable ({exc})") from None
        if profile.hash != doc.get("hash"):
            raise ProfileError(
                f"content hash mismatch: file says {str(doc.get('hash'))[:16]}..., "
                f"content is {profile.hash[:16]}... (corrupted or edited)"
            )
        return profile


def _fit_calibrator(
    predictions: Any, probabilities: Any, labels: Any
) -> ConfidenceCalibrator | None:
    """The calibrator of ``probabilities`` on "prediction == label", or None without them.

    Rows where the prediction, the probability or the label is missing are left out; a
    probability outside [0, 1] or columns of different lengths are a :class:`ProfileError`.
    """
    if probabilities is None and labels is None:
        return None
    if probabilities is None or labels is None:
        given, needed = (
            ("labels", "probabilities") if probabilities is None else ("probabilities", "labels")
        )
        raise ProfileError(
            f"{given} need {needed} too: the calibrator is fitted on the probability of each "
            "predicted class and whether the prediction equals the label"
        )
    if predictions is None:
        raise ProfileError(
            "probabilities and labels need the predictions: a prediction is right when it "
            "equals its label"
        )
    probs = np.asarray(_column(probabilities, "probabilities"), dtype=object)
    preds = _column(predictions, "predictions")
    truth = _column(labels, "labels")
    if not preds.size == probs.size == truth.size:
        raise ProfileError(
            f"predictions, probabilities and labels must have one length, got {preds.size}, "
            f"{probs.size} and {truth.size}"
        )
    kept_p, right = [], []
    for pred, prob, label in zip(preds.tolist(), probs.tolist(), truth.tolist(), strict=True):
        if _is_missing(pred) or _is_missing(label) or _is_missing(prob):
            continue
        if not _is_number_or_missing(prob) or isinstance(prob, bool) or not 0 <= prob <= 1:
            raise ProfileError(
                f"probabilities: {prob!r} is not a probability in [0, 1] (the probability "
                "of the predicted class)"
            )
        kept_p.append(float(prob))
        right.append(category_key(pred) == category_key(label))
    if not kept_p:
        raise ProfileError(
            "no row has a prediction, a probability and a label: nothing to fit the calibrator on"
        )
    return ConfidenceCalibrator.fit(np.array(kept_p), np.array(right, dtype=bool))


def _column(values: Any, label: str) -> np.ndarray:
    arr = np.asarray(values, dtype=object)
    _check_1d(arr, label, ProfileError)
    return arr


# --- raw data files (read by mlops_core.datafiles) ----------------------------------------------


def infer_kind(values: Any) -> str:
    """``"numeric"`` for numbers (None/NaN allowed), ``"categorical"`` for anything else."""
    arr = np.asarray(values) if not isinstance(values, np.ndarray) else values
    kind = arr.dtype.kind
    if kind in "iuf":
        return "numeric"
    if kind == "O":
        items = [v for v in arr.reshape(-1) if v is not None]
        if items and all(
            isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) for v in items
        ):
            return "numeric"
    return "categorical"


def _looks_like_profile(path: Path) -> bool:
    if path.suffix.lower() == ".json":
        return True
    if path.suffix.lower() in DATA_SUFFIXES:
        return False
    try:
        with path.open("rb") as fh:
            head = fh.read(200)
    except OSError:
        return False
    return FORMAT_NAME.encode() in head


def _existing_file(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"{path}: no such file")
    if path.is_dir():
        raise ProfileError(f"{path}: is a directory, not a data or profile file")
    return path
