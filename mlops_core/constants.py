"""Defaults and vocabularies shared by the library, the ``mlops`` command and the exporter.

Each value here used to be written in three to five places, and some of the copies had
already drifted apart (the exporter's ingest counted latency in other buckets than the ones
its config documents).  Define a shared default or a list of allowed names here, once, and
import it; a module that needs its own copy for a reason says so next to it.

Standard library only and no imports of the rest of the package, so any module (the
prediction logger on a model server's import path included) can import it for nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal, get_args

# --- features and their buckets ----------------------------------------------------------------

# Each vocabulary is a Literal type (for the config schemas and mypy) and the tuple of its
# values (for membership tests and messages), the tuple read from the type: written once.

#: a kind of feature: what a reference profile holds, and what a config may declare
FeatureKind = Literal["numeric", "categorical"]
FEATURE_KINDS: tuple[FeatureKind, ...] = get_args(FeatureKind)
#: bucket of a categorical feature that takes the rarer reference categories (beyond the
#: ``max_categories`` most frequent), and label of the prediction classes beyond the counted
#: ones: a metric label never changes and the number of series stays bounded
OTHER_BUCKET = "__other__"
#: bucket of every category the reference never had (reference share 0); never merged
#: into another, since a category seen only in production is the plainest drift there is
UNSEEN_BUCKET = "__unseen__"
#: the model's outputs as one more feature profile of a reference, and one more monitored
#: series of the exporter (``feature="__prediction__"``): the predicted class of a classifier
#: (categorical) or the predicted value of a regressor (numeric), profiled like a feature
PREDICTION_FEATURE = "__prediction__"
#: PSI buckets of a numeric feature (quantiles of the reference)
DEFAULT_BUCKETS = 10
#: categories kept per categorical feature; the rest go to ``OTHER_BUCKET``
DEFAULT_MAX_CATEGORIES = 20
#: upper bounds of both (``drift.psi.buckets``, ``mlops profile build --buckets`` and
#: ``--max-categories``): each bucket and kept category is one series per feature in the
#: exporter's /metrics and a term of every PSI; past a thousand the buckets of a
#: 10,000-sample window hold ten values each, too few to estimate a share, and those of a
#: reference collapse into ties.  10**8 used to be taken: a numpy memory error, or a pass
#: that never ended
MAX_BUCKETS = 1000
MAX_CATEGORIES = 1000

# --- drift -------------------------------------------------------------------------------------

#: a reported drift statistic, by the name configs and the command line use
DriftTest = Literal["ks", "psi", "chi2"]
DRIFT_TESTS: tuple[DriftTest, ...] = get_args(DriftTest)
#: how the KS p-value is computed, the exporter's default first (see mlops_core.statistics)
KsMethod = Literal["asymp", "auto", "exact"]
KS_METHODS: tuple[KsMethod, ...] = get_args(KsMethod)
#: multiple-testing corrections of the library's and ``mlops drift``'s level
CORRECTIONS = ("none", "bonferroni", "benjamini-hochberg")
#: smallest distance that matters, in probability units (0.05: a 5% shift), of numeric and
#: categorical features alike
DEFAULT_TOLERANCE = 0.05
#: the exporter's drift.false_alarm_budget: one false drift verdict expected per 30 days
DEFAULT_FALSE_ALARM_BUDGET = 30 * 86400.0
#: per-test limits of the significance rule (KS and chi-squared p-values, PSI value);
#: read-only, copy it to change a limit
DEFAULT_THRESHOLDS: Mapping[str, float] = MappingProxyType({"ks": 0.05, "psi": 0.2, "chi2": 0.05})
#: floor of both shares in PSI (the recording rules use the same, see rules/generate.py)
DEFAULT_EPSILON = 1e-4

# --- model quality -----------------------------------------------------------------------------

#: the metrics the degradation verdict judges, and which way is worse (mlops_core.quality
#: computes the verdict; the exporter's config refuses a quality.max_drop no value of the
#: metric could exceed, without importing numpy)
JUDGED_METRICS: Mapping[str, Literal["higher_is_better", "lower_is_better"]] = MappingProxyType({
    "accuracy": "higher_is_better",
    "balanced_accuracy": "higher_is_better",
    "brier": "lower_is_better",
})  # fmt: skip

# --- latency -----------------------------------------------------------------------------------

#: histogram bounds (seconds) of mlops_prediction_latency_seconds for online inference,
#: 1 ms to 10 s; the exporter's latency.buckets default (docs/configuration.md)
DEFAULT_LATENCY_BUCKETS: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    10.0,
)
