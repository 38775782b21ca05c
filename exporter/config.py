"""The exporter's configuration: YAML file plus ``MLOPS_EXPORTER_*`` environment variables.

Loading is pure: :func:`load_config` reads one file and a mapping of environment variables
and returns a frozen tree of msgspec Structs, or raises :class:`ConfigError` with one line
naming the file or the key at fault (``drift.interval: bad duration '3x' ...``).  The
sections below are that tree and the schema of the file at once: each key is declared once,
with its type, its default and how its value is read, and :mod:`mlops_core.schema` turns a
wrong value into that line.  Nothing here starts a thread or opens a log.
:func:`load_reference` is the one step that reads the reference data; it is separate because
it is the slow part and because a reference that cannot be read, or lacks a configured
feature, is also a configuration error.

Environment variables: every key ``a.b.c`` may be set as ``MLOPS_EXPORTER_A_B_C`` (the
dotted path upper-cased, dots replaced by ``_``), which overrides the file.  Values are
read as YAML scalars, so ``10s``, ``5000`` and ``true`` mean what they would in the file;
lists accept a YAML flow sequence (``[ks, psi]``) or comma-separated text (``ks,psi``);
the free-form sections ``features`` and ``alerts`` accept a YAML flow mapping.

``python -m exporter.config`` regenerates the key table of docs/configuration.md from the
sections and :data:`KEY_DOCS` (``--check``: exit 1 when it is stale).
"""

from __future__ import annotations

import itertools
import math
import os
import re
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias, Union, get_args, get_origin

import msgspec
import yaml
from msgspec import Meta, field

from exporter.errors import ConfigError
from mlops_core import schema
from mlops_core.constants import (
    DEFAULT_FALSE_ALARM_BUDGET,
    DEFAULT_LATENCY_BUCKETS,
    DEFAULT_TOLERANCE,
    DRIFT_TESTS,
    JUDGED_METRICS,
    KS_METHODS,
    MAX_BUCKETS,
    PREDICTION_FEATURE,
    DriftTest,
    FeatureKind,
    KsMethod,
)
from mlops_core.constants import FEATURE_KINDS as FEATURE_TYPES
from mlops_core.durations import format_duration
from mlops_core.errors import DurationError, MlopsError
from mlops_core.schema import AtMost, Parse, PositiveDuration, Schema, Text

if TYPE_CHECKING:
    from mlops_core.profile import ReferenceProfile

__all__ = [
    "DEFAULT_LATENCY_BUCKETS",
    "DEFAULT_POLL_INTERVAL",
    "DRIFT_TESTS",
    "FEATURE_TYPES",
    "KS_METHODS",
    "STAGES",
    "VERSION_FIELD",
    "DriftConfig",
    "ExporterConfig",
    "FeatureConfig",
    "LatencyConfig",
    "LogsConfig",
    "ModelConfig",
    "OutcomesConfig",
    "PathSpec",
    "PredictionConfig",
    "QualityConfig",
    "ReferenceSection",
    "ReferenceSpec",
    "RegistrySpec",
    "Stage",
    "env_var_name",
    "load_config",
    "load_reference",
    "parse_duration",
    "parse_reference",
    "reference_spec",
    "resolve_features",
]

ENV_PREFIX = "MLOPS_EXPORTER_"

CHECKPOINT_INTERVAL = 1.0
"""Default ``logs.checkpoint_interval``: the staleness of the served counters, and at most
how much a crash makes the next process read again (see :mod:`exporter.ingest`; its
``CHECKPOINT_INTERVAL`` is the same value, and a test keeps them equal)."""

DEFAULT_MAX_FILES = 256
"""Default ``logs.max_files`` (why 256: ``exporter.tail.DEFAULT_MAX_FILES``, kept equal by a
test; not imported, so loading a config does not import the follower and numpy)."""

VERSION_FIELD = "model_version"
"""The record field that names the version of the model that made a prediction
(``PredictionLogger(model_version=...)`` writes it)."""

Stage = Literal["production", "staging"]
#: the stages a reference can follow (``none`` and ``archived`` hold no single version)
STAGES: tuple[Stage, ...] = ("production", "staging")

DEFAULT_POLL_INTERVAL = 30.0
"""Default ``reference.poll_interval``: how stale the followed version may be.  One poll is
one small read per model (a ``GET`` on S3), so 30 s costs under 3,000 requests a day."""
QUALITY_METRICS: dict[str, tuple[float, float]] = {
    # classifiers (mlops_core.quality.CLASSIFICATION_METRICS, then PROBABILITY_METRICS)
    "accuracy": (0.0, 1.0),
    "balanced_accuracy": (0.0, 1.0),
    "precision_macro": (0.0, 1.0),
    "recall_macro": (0.0, 1.0),
    "f1_macro": (0.0, 1.0),
    "roc_auc": (0.0, 1.0),
    "log_loss": (0.0, math.inf),
    "brier": (0.0, 2.0),
    # regressors (mlops_core.quality.REGRESSION_METRICS)
    "mae": (0.0, math.inf),
    "rmse": (0.0, math.inf),
    "mape": (0.0, math.inf),
    "r2": (-math.inf, 1.0),
    "mean_error": (-math.inf, math.inf),
}
"""Every metric ``quality.reference`` may name, with the range of its values: the metrics of
:mod:`mlops_core.quality`, kept equal to its tuples by a test (not imported: loading a config
does not import numpy)."""

DEFAULT_MAX_PENDING = 5_000_000
"""Default ``outcomes.max_pending``: about 0.7 GB of store at 145 MB per million pending
predictions (docs/outcomes-store.md), a day of 50 predictions/s waiting for their labels."""

# Upper bounds of the keys that size an allocation or a wait.  Each is far beyond any real
# use and keeps the process safe; the docs' key table prints them (config_docs reads the
# AtMost markers), so they are written here only.  Durations have one global bound as
# well, 100y (mlops_core.durations.MAX_DURATION).
MAX_WINDOW_SAMPLES = 10_000_000
"""``drift.window.max_samples`` and ``quality.window.max_samples``: the drift window holds 8
bytes per sample per feature, plus timestamps and latency (exporter/window.py), so 80 MB per
feature at the bound, and as much again while a pass copies it; 10**14 used to be taken and
failed in numpy at start."""
MAX_PENDING_BOUND = 1_000_000_000
"""``outcomes.max_pending``: 145 GB of store at the bound (docs/outcomes-store.md), months of
1,000 predictions/s; beyond SQLite's integers a bound in the billions cannot even be kept."""
MAX_CLASSES = 10_000
"""``prediction.max_classes``: each class is a series, and the confusion counts one per pair
of classes; more classes than this are no longer a label a dashboard can show."""
MAX_LINE_BYTES = 64 << 20
"""``logs.max_line_bytes``: a partial line of up to this many bytes is held per open file
(``logs.max_files`` of them), so 64 MiB, 64 times the default, bounds it at 16 GiB."""
MAX_LATENCY_BUCKETS = 100
"""``latency.buckets``: each bound is a series per model, summed by every histogram_quantile;
Prometheus' own client libraries default to 11-15, native histograms to 160 at most."""
MAX_POLL_INTERVAL = 3600.0
"""``logs.poll_interval``: the reader's sleep when the logs had nothing new; longer would
delay every line and every checkpoint by as much."""

#: keys that existed once, with what replaced them: a config that still sets one gets this
#: line instead of a bare "unknown key", so an upgrade tells the user what to change.
REMOVED_KEYS = {
    "drift.combine": "removed: the verdict is now one rule, the distance's lower confidence "
    "bound against drift.tolerance (see docs/drift.md)",
    "drift.correction": "removed: the level of each test now comes from "
    "drift.false_alarm_budget, which already divides by the features (see docs/drift.md)",
    "drift.ks.threshold": "removed: the level of each test now comes from "
    "drift.false_alarm_budget (see docs/drift.md)",
    "drift.chi2.threshold": "removed: the level of each test now comes from "
    "drift.false_alarm_budget (see docs/drift.md)",
    "drift.chi2": "removed: the level of each test now comes from drift.false_alarm_budget "
    "(see docs/drift.md)",
    "drift.psi.threshold": "removed: PSI is reported but no longer votes; set the size of "
    "shift that matters with drift.tolerance (see docs/drift.md)",
}


# --- how values are read: each raises ValueError describing the value ---------------------

_SIZE = re.compile(r"(\d+)\s*(B|KB|KiB|MB|MiB|GB|GiB)?", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 1000**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "gib": 1024**3,
}


def parse_duration(raw: Any, key: str = "duration") -> float:
    """Seconds from ``500ms``, ``30s``, ``5m``, ``1h``, ``1h30m`` or a bare number of seconds."""
    try:
        return schema.positive_duration(raw)
    except DurationError as exc:
        raise ConfigError(f"{key}: {exc}") from None


def _size(raw: Any) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif isinstance(raw, str) and (match := _SIZE.fullmatch(raw.strip())):
        value = int(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()]
    else:
        raise ValueError(f"expected a size in bytes like 1048576 or 1MiB, got {raw!r}")
    if value <= 0:
        raise ValueError(f"must be positive, got {raw!r}")
    return value


def _size_text(size: float) -> str:
    """A size as one writes it: ``64MiB`` when whole, else the bytes."""
    for unit in ("GiB", "MiB", "KiB"):
        if size >= _SIZE_UNITS[unit.lower()] and size % _SIZE_UNITS[unit.lower()] == 0:
            return f"{int(size) // _SIZE_UNITS[unit.lower()]}{unit}"
    return f"{int(size)}"


def _field_name(raw: Any) -> str:
    """A log record's field name: the fast JSON decoder cannot match one with quotes etc."""
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError(f"expected a non-empty string, got {schema.describe(raw)}")
    if any(c in '"\\' or c < " " for c in raw):
        raise ValueError(
            f"{raw!r} cannot be a log field name (no quotes, backslashes or control characters)"
        )
    return raw


def _match_value(raw: Any) -> Any:
    """A ``models[i].match`` value: compared as text with the record's field, so it must be
    text.  A list or mapping used to become its Python repr (``"['a', 'b']"``) and ``null``
    ``"None"``, which no record holds: the model silently received nothing.  An integer is
    its own text; a float or a boolean is not what was written (``1.10`` is ``1.1``, ``yes``
    is ``True``), so it must be quoted.  ``null`` is refused by the type check."""
    if isinstance(raw, str) or raw is None:
        return raw
    if isinstance(raw, int) and not isinstance(raw, bool):
        return str(raw)
    hint = ""
    if isinstance(raw, bool | float):
        hint = "; quote it: YAML read the value as a number or boolean, whose text may differ"
    raise ValueError(f"expected a string, got {schema.describe(raw)}{hint}")


def _one_or_more(raw: Any) -> Any:
    """A list key also takes one string: ``tests: ks`` is ``tests: [ks]``."""
    return [raw] if isinstance(raw, str) else raw


# --- value types --------------------------------------------------------------------------

Seconds = schema.PositiveDuration
PositiveInt = Annotated[int, Meta(ge=1, description="a positive integer")]
WindowSamples = Annotated[PositiveInt, AtMost(MAX_WINDOW_SAMPLES)]
Distance = Annotated[
    float, Meta(ge=0, lt=1, description="a distance between 0 and 1 (0.05 = a 5% shift)")
]
Flag = Annotated[bool, Meta(description="true or false")]
FieldName = Annotated[str, Parse(_field_name)]
Texts = Annotated[
    tuple[Text, ...],
    Parse(_one_or_more),
    Meta(min_length=1, description="a non-empty list of strings"),
]


# --- the sections: the file's schema and the frozen tree the exporter reads ----------------


class LogsConfig(Schema, frozen=True):
    paths: Texts
    start_position: Literal["end", "beginning"] = "end"
    state_file: Text | None = None
    max_line_bytes: Annotated[int, Parse(_size), AtMost(MAX_LINE_BYTES, _size_text)] = 1 << 20
    poll_interval: Annotated[Seconds, AtMost(MAX_POLL_INTERVAL, format_duration)] = 0.25
    max_files: PositiveInt = DEFAULT_MAX_FILES
    checkpoint_interval: Seconds = CHECKPOINT_INTERVAL


class WindowConfig(Schema, frozen=True):
    max_samples: WindowSamples = 10_000
    max_age: Seconds = 3600.0


class KsConfig(Schema, frozen=True):
    method: KsMethod = KS_METHODS[0]


class PsiConfig(Schema, frozen=True):
    buckets: Annotated[PositiveInt, AtMost(MAX_BUCKETS)] = 10


class ToleranceConfig(Schema, frozen=True):
    numeric: Distance = DEFAULT_TOLERANCE
    categorical: Distance = DEFAULT_TOLERANCE


class DriftConfig(Schema, frozen=True):
    interval: Seconds = 30.0
    window: WindowConfig = field(default_factory=WindowConfig)
    min_samples: PositiveInt = 100
    # reported figures; the verdict needs none
    tests: Annotated[
        tuple[DriftTest, ...],
        Parse(_one_or_more),
        Meta(min_length=1, description=f"a non-empty list of {', '.join(DRIFT_TESTS)}"),
    ] = ("ks", "psi")
    ks: KsConfig = field(default_factory=KsConfig)
    psi: PsiConfig = field(default_factory=PsiConfig)
    tolerance: ToleranceConfig = field(default_factory=ToleranceConfig)
    false_alarm_budget: Seconds = DEFAULT_FALSE_ALARM_BUDGET


class LatencyConfig(Schema, frozen=True):
    field: FieldName = "latency_ms"
    buckets: Annotated[
        tuple[Seconds, ...],
        Meta(
            min_length=1,
            max_length=MAX_LATENCY_BUCKETS,
            description=f"a list of 1 to {MAX_LATENCY_BUCKETS} bucket bounds in seconds",
        ),
    ] = DEFAULT_LATENCY_BUCKETS


class PredictionConfig(Schema, frozen=True):
    class_field: FieldName = "class"
    max_classes: Annotated[PositiveInt, AtMost(MAX_CLASSES)] = 20


class FeatureSpec(Schema, frozen=True):
    """One entry of ``features:`` as written (its name is the key)."""

    type: FeatureKind | None = None  # None: inferred from the reference
    tolerance: Distance | None = None  # None: drift.tolerance of its kind
    monitor: Flag = True  # False: read by nobody, excluded from the drift pass


class FeatureConfig(msgspec.Struct, frozen=True):
    """A configured feature, resolved: :class:`FeatureSpec` with its name."""

    name: str
    type: FeatureKind | None = None
    tolerance: float | None = None
    monitor: bool = True


class OutcomesSpec(Schema, frozen=True):
    """``outcomes:`` as written; its presence turns on joining outcomes to predictions."""

    paths: Texts | None = None  # None: logs.paths
    store: Text | None = None  # None: beside logs.state_file
    max_delay: Seconds = 30 * 86400.0
    max_pending: Annotated[PositiveInt, AtMost(MAX_PENDING_BOUND)] = DEFAULT_MAX_PENDING
    early_grace: schema.Duration = 600.0


class OutcomesConfig(msgspec.Struct, frozen=True):
    """The ``outcomes`` section resolved: :class:`OutcomesSpec` with its defaults filled in
    (``paths``: ``logs.paths`` when not set; ``store``: beside the state file) and relative
    paths made absolute."""

    paths: tuple[str, ...]
    store: str
    max_delay: float = 30 * 86400.0
    max_pending: int = DEFAULT_MAX_PENDING
    early_grace: float = 600.0


class QualityWindowConfig(Schema, frozen=True):
    max_samples: WindowSamples = 10_000
    max_age: Seconds | None = None  # None: by count only


class QualityConfig(Schema, frozen=True):
    window: QualityWindowConfig = field(default_factory=QualityWindowConfig)
    min_samples: PositiveInt = 100
    reference: Annotated[
        dict[str, schema.FiniteNumber],
        Meta(description="a mapping of quality metric to its reference value"),
    ] = field(default_factory=dict)
    max_drop: Annotated[schema.FiniteNumber, Meta(ge=0, description="a number >= 0")] = 0.05
    false_alarm_budget: Seconds = DEFAULT_FALSE_ALARM_BUDGET


# --- a model's reference: a file, or the registry stage it follows ------------------------


class RegistryConfig(Schema, frozen=True):
    """``registry:``: what every model that follows a registry stage shares."""

    poll_interval: PositiveDuration = DEFAULT_POLL_INTERVAL


class ReferenceSection(Schema, frozen=True):
    """A model's ``reference:`` as written: ``path``, or ``registry`` with ``stage``."""

    path: Text | None = None
    registry: Text | None = None
    stage: Stage | None = None  # only with registry; None: production
    poll_interval: PositiveDuration | None = None  # only with registry; None: registry.*


@dataclass(frozen=True)
class PathSpec:
    """A reference read from a file (``.csv``, ``.jsonl``, ``.npz`` data or a ``.json`` profile)."""

    path: str


@dataclass(frozen=True)
class RegistrySpec:
    """A reference that follows ``stage`` of the model in the registry at ``location``."""

    location: str  # a directory or s3://bucket/prefix
    stage: Stage = "production"
    poll_interval: float = DEFAULT_POLL_INTERVAL


ReferenceSpec: TypeAlias = PathSpec | RegistrySpec


def reference_spec(
    section: ReferenceSection,
    key: str = "reference",
    rel: Callable[[str], str] = lambda p: p,
    default_poll_interval: float = DEFAULT_POLL_INTERVAL,
) -> ReferenceSpec:
    """The source a section names, checking what the schema cannot say alone.

    ``rel`` resolves a relative path or registry directory (against the config file's
    directory, as :func:`load_config` does for ``reference.path``); an ``s3://`` location is
    left as written.  ``key`` starts every error line.
    """
    if section.path is not None and section.registry is not None:
        raise ConfigError(f"{key}: set path or registry, not both")
    if section.path is None and section.registry is None:
        raise ConfigError(
            f"{key}: set path (a reference file) or registry (a directory or"
            " s3://bucket/prefix to follow)"
        )
    if section.path is not None:
        for extra in ("stage", "poll_interval"):
            if getattr(section, extra) is not None:
                raise ConfigError(f"{key}.{extra}: only with {key}.registry, not with a path")
        return PathSpec(rel(section.path))
    assert section.registry is not None
    location = section.registry
    if "://" not in location:
        location = rel(location)
    return RegistrySpec(
        location,
        section.stage or "production",
        default_poll_interval if section.poll_interval is None else section.poll_interval,
    )


def parse_reference(
    raw: Any, key: str = "reference", rel: Callable[[str], str] = lambda p: p
) -> ReferenceSpec:
    """The spec from the section's plain YAML value, or ``ConfigError`` with one line."""
    section = schema.convert(raw, ReferenceSection, error=ConfigError, at=key)
    return reference_spec(section, key, rel)


# --- the models ---------------------------------------------------------------------------


class _Model(Schema, frozen=True):
    name: Text
    version: Text | None = None  # a file reference's version (registry: the stage's)


class _ModelQuality(Schema, frozen=True):
    """``models[i].quality``: what differs from model to model (their reference metrics and
    how far each may fall); the window and the budget stay the shared ``quality:``'s."""

    reference: (
        Annotated[
            dict[str, schema.FiniteNumber],
            Meta(description="a mapping of quality metric to its reference value"),
        ]
        | None
    ) = None
    max_drop: Annotated[schema.FiniteNumber, Meta(ge=0, description="a number >= 0")] | None = None


class _ModelOutcomes(Schema, frozen=True):
    """``models[i].outcomes``: the limits that differ from model to model (one model's labels
    come within hours, another's take weeks); where outcomes are read (``paths``) and stored
    (``store``) stay the shared ``outcomes:``'s: one feed of outcome lines, one store per
    model beside ``outcomes.store``."""

    max_delay: Seconds | None = None
    max_pending: Annotated[PositiveInt, AtMost(MAX_PENDING_BOUND)] | None = None
    early_grace: schema.Duration | None = None


class _ModelEntry(Schema, frozen=True):
    """One entry of ``models:`` as written."""

    name: Text
    reference: ReferenceSection
    match: Annotated[
        dict[str, Annotated[str, Parse(_match_value), Meta(description="a string")]],
        Meta(description="a mapping of record field to value"),
    ] = field(default_factory=dict)
    version: Text | None = None
    features: Any = None  # free-form: read by _features()
    quality: _ModelQuality | None = None
    outcomes: _ModelOutcomes | None = None
    # free-form like the top level's alerts: (read once the model's features are known)
    alerts: Annotated[dict[str, Any], Meta(description="a mapping")] | None = None


@dataclass(frozen=True)
class ModelConfig:
    """One model the exporter monitors, resolved (paths absolute, features read).

    ``match`` selects its records (:mod:`exporter.routing`); ``version`` is the version a
    file reference belongs to (``None``: unknown; a registry reference's comes from the
    stage).  ``at`` is where the model is configured, the start of its error lines:
    ``""`` for the one-model form (``reference.path: ...``), ``"models[1]."`` in a list.
    """

    name: str
    reference: ReferenceSpec
    match: Mapping[str, str]
    features: tuple[FeatureConfig, ...] | None = None
    version: str | None = None
    at: str = ""
    quality_reference: Mapping[str, float] | None = None  # models[i].quality.reference
    quality_max_drop: float | None = None  # models[i].quality.max_drop
    alerts: Mapping[str, Any] | None = None  # models[i].alerts: instead of the shared alerts:
    outcomes: _ModelOutcomes | None = None  # models[i].outcomes: its own limits, else the shared


class _File(Schema, frozen=True, kw_only=True):
    """The config file's top level."""

    model: _Model | None = None  # with reference: one model (models: is the list form)
    logs: LogsConfig
    reference: ReferenceSection | None = None
    registry: RegistryConfig = field(default_factory=RegistryConfig)
    models: (
        Annotated[
            tuple[_ModelEntry, ...],
            Meta(min_length=1, description="a non-empty list of models"),
        ]
        | None
    ) = None
    features: Any = None  # free-form: read by _features()
    drift: DriftConfig = field(default_factory=DriftConfig)
    latency: LatencyConfig = field(default_factory=LatencyConfig)
    prediction: PredictionConfig = field(default_factory=PredictionConfig)
    # free-form: read by mlops_core.alerts (via exporter.alerting) once the features are known
    alerts: Annotated[dict[str, Any], Meta(description="a mapping")] | None = None
    outcomes: OutcomesSpec | None = None  # present (even empty): outcomes are joined
    quality: QualityConfig | None = None  # needs outcomes


class ExporterConfig(msgspec.Struct, frozen=True):
    """What the exporter runs with: the file's sections, paths resolved, features read.

    ``models`` lists every model (the one-model form is a list of one).  ``model_name``,
    ``reference_path``, ``features`` and ``model_version`` are the first model's, as they
    were when the exporter served one: :meth:`for_model` gives the config one model sees,
    with them set to that model's.  A config built by hand with ``models`` empty is the
    one-model form.
    """

    model_name: str
    logs: LogsConfig
    reference_path: str  # a file; for a registry reference, the registry's location
    features: tuple[FeatureConfig, ...] | None = None  # None: every reference column
    drift: DriftConfig = field(default_factory=DriftConfig)
    latency: LatencyConfig = field(default_factory=LatencyConfig)
    prediction: PredictionConfig = field(default_factory=PredictionConfig)
    alerts: Mapping[str, Any] | None = None
    outcomes: OutcomesConfig | None = None  # None: outcomes are not joined; else resolved
    quality: QualityConfig = field(default_factory=QualityConfig)
    source: str = "<config>"
    models: tuple[ModelConfig, ...] = ()
    model_version: str | None = None
    at: str = ""  # where the first model is configured ("models[0]." in a list)

    def model_list(self) -> tuple[ModelConfig, ...]:
        """Every model, in the order configured (routing's order: first match wins)."""
        if self.models:
            return self.models
        only = ModelConfig(
            self.model_name,
            PathSpec(self.reference_path),
            {},
            self.features,
            self.model_version,
            self.at,
        )
        return (only,)

    def for_model(self, model: ModelConfig) -> ExporterConfig:
        """The config as ``model`` sees it: its name, reference, features and version, its
        own ``alerts`` when its entry has them (else the shared section), and ``outcomes``
        with the entry's own limits (``models[i].outcomes``) over the shared ones."""
        ref = model.reference
        outcomes, own = self.outcomes, model.outcomes
        if outcomes is not None and own is not None:
            outcomes = msgspec.structs.replace(
                outcomes,
                **{k: v for k, v in msgspec.structs.asdict(own).items() if v is not None},
            )
        return msgspec.structs.replace(
            self,
            model_name=model.name,
            reference_path=ref.path if isinstance(ref, PathSpec) else ref.location,
            features=model.features,
            model_version=model.version,
            at=model.at,
            models=(model,),
            alerts=self.alerts if model.alerts is None else model.alerts,
            outcomes=outcomes,
        )


#: every key of the file, dotted (``drift.window.max_age``), with its declaration
KEYS = schema.leaves(_File)


def env_var_name(key: str) -> str:
    """The environment variable that sets the dotted ``key``: ``drift.interval`` ->
    ``MLOPS_EXPORTER_DRIFT_INTERVAL``."""
    return ENV_PREFIX + key.replace(".", "_").upper()


_ENV_NAMES = {env_var_name(key): key for key in KEYS}
_REMOVED_ENV_NAMES = {env_var_name(key): key for key in REMOVED_KEYS}


# --- reading ---------------------------------------------------------------------------------


class _DuplicateKey(yaml.MarkedYAMLError):
    """A key given twice in one mapping (``problem``: which key)."""


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping.

    PyYAML keeps the last value silently, so a second ``model:`` pasted below the first
    replaced it without a word.  Keys merged in with ``<<:`` may be overridden, as YAML
    intends; only keys written twice are refused.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: construct_mapping says so itself
                break
            if duplicate:
                raise _DuplicateKey(
                    problem=f"duplicate key {key!r}", problem_mark=key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, source: str) -> Any:
    """YAML's safe subset, a key given twice refused; a syntax error or a duplicate key is
    one :class:`ConfigError` line, ``<source>:LINE:COLUMN: invalid YAML: <problem>`` or
    ``<source>:LINE:COLUMN: duplicate key 'model'`` (the config and the web config file)."""
    try:
        return yaml.load(text, Loader=_Loader)
    except _DuplicateKey as exc:
        mark = exc.problem_mark
        assert mark is not None
        raise ConfigError(f"{source}:{mark.line + 1}:{mark.column + 1}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{source}{where}: invalid YAML: {problem}") from None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        raise ConfigError(f"{path}: cannot read config file: {reason}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:  # where, so the user can find it (a Latin-1 'é', say)
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{path}:{line}: not UTF-8 text (byte {exc.start}: 0x{raw[exc.start]:02x}); "
            "save the file as UTF-8"
        ) from None
    data = parse_yaml(text, str(path))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a YAML mapping at the top level")
    return data


def _is_list(key: str) -> bool:
    base, _ = schema.unwrap(KEYS[key].type)
    arms = get_args(base) if get_origin(base) in (Union, types.UnionType) else (base,)
    return any(get_origin(schema.unwrap(arm)[0]) in (tuple, list) for arm in arms)


def _env_value(name: str, key: str, text: str) -> Any:
    stripped = text.strip()
    if _is_list(key) and not stripped.startswith("["):
        return [item.strip() for item in stripped.split(",") if item.strip()]
    try:
        return yaml.load(stripped, Loader=_Loader) if stripped else None
    except yaml.YAMLError:
        raise ConfigError(f"{name}: invalid value {text!r}") from None


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """Overlay ``MLOPS_EXPORTER_*`` variables on ``data``; returns key -> variable name used."""
    used: dict[str, str] = {}
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX):
            continue
        removed = _REMOVED_ENV_NAMES.get(name)
        if removed is not None:
            raise ConfigError(f"{name}: {REMOVED_KEYS[removed]}")
        key = _ENV_NAMES.get(name)
        if key is None:
            extra = schema.did_you_mean(name, _ENV_NAMES, str)
            raise ConfigError(f"{name}: unknown environment variable{extra}")
        *parents, last = key.split(".")
        node = data
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[last] = _env_value(name, key, env[name])
        used[key] = name
    return used


def _features(label: str, raw: Any) -> tuple[FeatureConfig, ...] | None:
    """The free-form ``features:`` section: a mapping of name to :class:`FeatureSpec`, the
    shorthand ``name: numeric``, or a plain list of names (types inferred)."""
    if raw is None:
        return None
    if isinstance(raw, list):  # a plain list of names: types inferred
        raw = dict.fromkeys(schema.convert(raw, Texts, error=ConfigError, at=label))
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{label}: expected a mapping of feature name to {{type: ...}}")
    out = []
    for name, spec in raw.items():
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{label}.{name}: feature names must be non-empty strings")
        if isinstance(spec, str):  # shorthand: age: numeric
            spec = {"type": spec}
        if spec is not None and not isinstance(spec, dict):
            raise ConfigError(
                f"{label}.{name}: expected a mapping such as {{type: numeric, tolerance: 0.1}}"
            )
        read = schema.convert(spec or {}, FeatureSpec, error=ConfigError, at=f"{label}.{name}")
        out.append(FeatureConfig(name, read.type, read.tolerance, read.monitor))
    return tuple(out)


def load_config(
    path: str | os.PathLike[str], env: Mapping[str, str] | None = None
) -> ExporterConfig:
    """Read and validate the config file, overlaid with ``MLOPS_EXPORTER_*`` variables.

    Relative paths in the file (``logs.paths``, ``logs.state_file``, ``reference.path``) are
    resolved against the config file's directory, as Prometheus does, so a config and its
    reference can be moved together.
    """
    cfg_path = Path(path)
    env = os.environ if env is None else env
    data = _read_yaml(cfg_path)
    for section in ("outcomes", "quality"):  # `outcomes:` alone turns it on, with defaults
        if section in data and data[section] is None:
            data[section] = {}
    from_env = _apply_env(data, env)
    read = schema.convert(
        data,
        _File,
        error=ConfigError,
        labels=from_env,
        removed=REMOVED_KEYS,
        missing=lambda key: _missing(key, from_env, cfg_path),
    )
    _check_together(read, from_env)
    base = cfg_path.resolve().parent

    def rel(p: str) -> str:
        return p if os.path.isabs(p) else str(base / p)

    logs = msgspec.structs.replace(
        read.logs,
        paths=tuple(rel(p) for p in read.logs.paths),
        state_file=None if read.logs.state_file is None else rel(read.logs.state_file),
    )
    drift = msgspec.structs.replace(read.drift, tests=tuple(dict.fromkeys(read.drift.tests)))
    models = _models(read, from_env, cfg_path, rel)
    first = models[0]
    outcomes = None
    if read.outcomes is not None:
        if read.outcomes.store is not None:
            store = rel(read.outcomes.store)
        else:  # _check_together made sure there is a state file
            assert logs.state_file is not None
            store = default_store(logs.state_file)
        if len(models) > 1:  # each model's store is a file named after it
            for m in models:
                if not _STORE_NAME.fullmatch(m.name):
                    raise ConfigError(
                        f"{m.at}name: {m.name!r}: with outcomes: and several models each model's"
                        " outcome store is a file named after it; use letters, digits, '.',"
                        " '_' and '-' only"
                    )
        paths = read.outcomes.paths
        outcomes = OutcomesConfig(
            paths=logs.paths if paths is None else tuple(map(rel, paths)),
            store=store,
            max_delay=read.outcomes.max_delay,
            max_pending=read.outcomes.max_pending,
            early_grace=read.outcomes.early_grace,
        )
    return ExporterConfig(
        model_name=first.name,
        logs=logs,
        reference_path=_location(first.reference),
        features=first.features,
        drift=drift,
        latency=read.latency,
        prediction=read.prediction,
        alerts=read.alerts,
        outcomes=outcomes,
        quality=read.quality or QualityConfig(),
        source=str(cfg_path),
        models=models,
        model_version=first.version,
        at=first.at,
    )


def _missing(key: str, from_env: Mapping[str, str], cfg_path: Path) -> str:
    """The problem of a required ``key`` with no value.  Set by an empty variable, which
    overrides the file's value with none: saying "missing in base.yml" of a key base.yml
    sets sent the user to the wrong place."""
    if key in from_env:
        return (
            f"set but empty, which overrides {key} of {cfg_path} with no value; give it a value"
            " or unset the variable"
        )
    return f"required key missing in {cfg_path} (or set {env_var_name(key)})"


def _location(spec: ReferenceSpec) -> str:
    return spec.path if isinstance(spec, PathSpec) else spec.location


#: record fields the parser reads for itself: a ``match`` on one of them cannot work
_RESERVED_FIELDS = ("event", "timestamp", "input_data", "prediction")


def _models(
    read: _File, from_env: Mapping[str, str], cfg_path: Path, rel: Callable[[str], str]
) -> tuple[ModelConfig, ...]:
    """``models:``, or ``model:`` with ``reference:`` (and ``features:``) as a list of one."""
    poll = read.registry.poll_interval  # a model's reference.poll_interval overrides it
    if read.models is None:
        missing = [k for k in ("model", "reference") if getattr(read, k) is None]
        if missing:
            key = "model.name" if missing[0] == "model" else "reference.path"
            raise ConfigError(
                f"{key}: required key missing in {cfg_path} (or set {env_var_name(key)}),"
                " or list the models under models:"
            )
        assert read.model is not None and read.reference is not None
        return (
            ModelConfig(
                read.model.name,
                reference_spec(read.reference, "reference", rel, poll),
                {},
                _features(from_env.get("features", "features"), read.features),
                read.model.version,
            ),
        )
    extra = [k for k in ("model", "reference", "features") if getattr(read, k) is not None]
    if extra:
        raise ConfigError(
            f"{extra[0]}: set inside each entry of models:, not beside it (models: lists every"
            " model with its own name, reference, match and features)"
        )
    out = []
    latency_field = read.latency.field
    for i, entry in enumerate(read.models):
        at = f"models[{i}]."
        for name in entry.match:
            try:
                _field_name(name)
            except ValueError as exc:
                raise ConfigError(f"{at}match.{name}: {exc}") from None
            if name in (*_RESERVED_FIELDS, latency_field):
                raise ConfigError(
                    f"{at}match.{name}: the exporter reads this field itself; match on a field"
                    " such as service"
                )
        out.append(
            ModelConfig(
                entry.name,
                reference_spec(entry.reference, f"{at}reference", rel, poll),
                dict(entry.match),
                _features(f"{at}features", entry.features),
                entry.version,
                at,
                None if entry.quality is None else entry.quality.reference,
                None if entry.quality is None else entry.quality.max_drop,
                entry.alerts,
                entry.outcomes,
            )
        )
    return tuple(out)


_STORE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
"""A model name that can name its outcome store (several models: :func:`model_store`)."""


def model_store(store: str, model: str) -> str:
    """A model's outcome store when several models share ``outcomes.store``: one file each,
    beside it, named after the model (``state/checkpoint.outcomes.db`` ->
    ``state/checkpoint.outcomes.churn.db``; ``.db`` when the path has no suffix)."""
    path = Path(store)
    return str(path.with_name(f"{path.stem}.{model}{path.suffix or '.db'}"))


def default_store(state_file: str) -> str:
    """``outcomes.store`` when not set: beside the checkpoint, named after it
    (``state/checkpoint.json`` -> ``state/checkpoint.outcomes.db``), so two exporters with
    their own state files never share a store."""
    return str(Path(state_file).with_suffix(".outcomes.db"))


def _check_together(read: _File, from_env: Mapping[str, str]) -> None:
    """The rules that span keys, which no single key's type can state."""

    def key(name: str) -> str:
        return from_env.get(name, name)

    bounds = read.latency.buckets
    if any(b <= a for a, b in itertools.pairwise(bounds)):
        shown = ", ".join(f"{b:g}" for b in bounds)
        raise ConfigError(
            f"{key('latency.buckets')}: bucket bounds must be strictly increasing, got "
            f"[{shown}] (seconds)"
        )
    drift = read.drift
    _check_min_samples(
        key("drift.min_samples"), drift.min_samples, "drift.window.max_samples",
        drift.window.max_samples, "verdict",
    )  # fmt: skip
    if drift.window.max_age < drift.interval:
        raise ConfigError(
            "drift.window.max_age: must be at least drift.interval "
            f"({drift.window.max_age}s < {drift.interval}s)"
        )
    if drift.false_alarm_budget < drift.interval:
        raise ConfigError(
            "drift.false_alarm_budget: must be at least drift.interval "
            f"({drift.false_alarm_budget}s < {drift.interval}s): it is the period in "
            "which one false drift verdict is expected"
        )
    _check_outcomes(read, from_env)


def _check_outcomes(read: _File, from_env: Mapping[str, str]) -> None:
    """The outcomes: and quality: sections: what they need of each other and of logs."""

    def key(name: str) -> str:
        return from_env.get(name, name)

    per_model = [
        (f"models[{i}].quality", entry.quality)
        for i, entry in enumerate(read.models or ())
        if entry.quality is not None
    ]
    if (read.quality is not None or per_model) and read.outcomes is None:
        at = next((v for k, v in from_env.items() if k.startswith("quality.")), None)
        at = at or ("quality" if read.quality is not None else per_model[0][0])
        raise ConfigError(
            f"{at}: needs an outcomes: section (quality is computed from outcome records "
            "joined to their predictions; `outcomes: {}` turns it on with its defaults)"
        )
    own_limits = [i for i, entry in enumerate(read.models or ()) if entry.outcomes is not None]
    if own_limits and read.outcomes is None:
        raise ConfigError(
            f"models[{own_limits[0]}].outcomes: needs the shared outcomes: section (it says "
            "where outcomes are read and stored; `outcomes: {}` turns it on with its defaults)"
        )
    if read.outcomes is None:
        return
    if read.outcomes.store is None and read.logs.state_file is None:
        raise ConfigError(
            f"{key('outcomes.store')}: required without logs.state_file (the SQLite store of "
            "the predictions awaiting their outcome; by default it sits beside the state file)"
        )
    quality = read.quality or QualityConfig()
    _check_min_samples(
        key("quality.min_samples"), quality.min_samples, "quality.window.max_samples",
        quality.window.max_samples, "quality metric",
    )  # fmt: skip
    interval = read.drift.interval
    if quality.false_alarm_budget < interval:
        raise ConfigError(
            f"{key('quality.false_alarm_budget')}: must be at least drift.interval "
            f"({quality.false_alarm_budget}s < {interval}s): it is the period in which one "
            "false degradation verdict is expected"
        )
    if quality.window.max_age is not None and quality.window.max_age < interval:
        raise ConfigError(
            f"{key('quality.window.max_age')}: must be at least drift.interval "
            f"({quality.window.max_age}s < {interval}s)"
        )
    _check_quality_reference(key("quality.reference"), quality.reference)
    _check_max_drop(key("quality"), quality.reference, quality.max_drop)
    for at, entry in per_model:
        _check_quality_reference(f"{at}.reference", entry.reference or {})
        reference = entry.reference or quality.reference  # {} falls back, as at run time
        drop = quality.max_drop if entry.max_drop is None else entry.max_drop
        if entry.reference is not None or entry.max_drop is not None:
            _check_max_drop(at, reference, drop)


def _check_min_samples(at: str, low: int, window_key: str, window: int, what: str) -> None:
    """A window that can never hold ``min_samples`` can never give a verdict: a config that
    looked fine and served nothing, silently, forever."""
    if low > window:
        raise ConfigError(
            f"{at}: must be at most {window_key} ({low} > {window}): the window never holds "
            f"enough samples for a {what}"
        )


def _check_max_drop(at: str, reference: Mapping[str, float], max_drop: float) -> None:
    """Refuse a ``max_drop`` no value of a judged metric could exceed (``at``: the quality
    section's key): an alert that looked armed and never fired, silently."""
    problem = max_drop_problem(reference, max_drop)
    if problem is not None:
        raise ConfigError(f"{at}.max_drop: {problem}")


def max_drop_problem(reference: Mapping[str, float], max_drop: float) -> str | None:
    """Why ``max_drop`` can never be exceeded by a judged metric of ``reference`` (its
    reference minus ``max_drop``, plus for a lower-is-better one, lies past the end of its
    range), or None.  Also asked at run time of a reference the registry stored."""
    for metric, value in reference.items():
        direction = JUDGED_METRICS.get(metric)
        if direction is None:
            continue
        low, high = QUALITY_METRICS[metric]
        if direction == "higher_is_better" and value - max_drop <= low:
            where = f"below {value - max_drop:g}, and {metric} is never below {low:g}"
        elif direction == "lower_is_better" and value + max_drop >= high:
            where = f"above {value + max_drop:g}, and {metric} is never above {high:g}"
        else:
            continue
        return (
            f"{max_drop:g} with reference {metric} {value:g}: degraded would mean {where}, "
            "so the verdict could never fire; use a smaller max_drop"
        )
    return None


def _check_quality_reference(at: str, reference: Mapping[str, float]) -> None:
    """Every metric of a ``reference:`` mapping known and within its range (``at``: its key)."""
    for metric, value in reference.items():
        if metric not in QUALITY_METRICS:
            hint = schema.did_you_mean(metric, QUALITY_METRICS)
            known = hint or f" (one of: {', '.join(QUALITY_METRICS)})"
            raise ConfigError(f"{at}.{metric}: unknown quality metric{known}")
        low, high = QUALITY_METRICS[metric]
        if not low <= value <= high:
            if math.isinf(low):
                rule = f"must be at most {high:g}"
            elif math.isinf(high):
                rule = f"must be at least {low:g}"
            else:
                rule = f"must lie in [{low:g}, {high:g}]"
            share = " (a share: 0.87, not 87)" if (low, high) == (0.0, 1.0) else ""
            raise ConfigError(f"{at}.{metric}: {rule}, got {value:g}{share}")


def load_reference(config: ExporterConfig) -> tuple[ReferenceProfile, dict[str, FeatureKind]]:
    """Load the reference profile and resolve the monitored features.

    Returns ``(profile, {feature: "numeric" | "categorical"})`` in config order (or the
    reference's column order when ``features`` is not set).  A reference that cannot be
    read, or a configured feature it lacks, raises :class:`ConfigError`.  The model's
    outputs, ``__prediction__``, are monitored whenever the profile has them (see
    :func:`resolve_features`).
    """
    from mlops_core.profile import ReferenceProfile

    path = config.reference_path
    key = f"{config.at}reference.path"
    if not os.path.exists(path):
        raise ConfigError(f"{key}: file not found: {path}")
    types = {f.name: f.type for f in config.features or () if f.type is not None and f.monitor}
    names = None if config.features is None else [f.name for f in config.features if f.monitor]
    try:
        try:
            profile = ReferenceProfile.from_file(
                path, types or None, config.drift.psi.buckets, features=names
            )
        except MlopsError:
            # Load it plainly to tell "a configured feature is missing" (named below, with a
            # suggestion) from "the file itself is bad" (re-raised from this second load).
            profile = ReferenceProfile.from_file(path, buckets=config.drift.psi.buckets)
    except MlopsError as exc:
        raise ConfigError(f"{key}: {exc}") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{key}: cannot read {path}: {exc}") from None
    return profile, resolve_features(config, profile)


def resolve_features(config: ExporterConfig, profile: ReferenceProfile) -> dict[str, FeatureKind]:
    """Feature name -> kind, checking each configured feature against the profile.

    A profile with the model's outputs adds ``__prediction__`` (last) to the configured
    features, unless ``features:`` names it itself (for a tolerance, or ``monitor: false``):
    prediction drift needs no key of its own.
    """
    available = list(profile.feature_names)
    if config.features is None:
        return {name: profile[name].kind for name in available}
    out: dict[str, FeatureKind] = {}
    for feat in config.features:
        if not feat.monitor:
            continue
        if feat.name not in profile:
            extra = schema.did_you_mean(feat.name, available)  # close matches only
            raise ConfigError(
                f"{config.at}features.{feat.name}: not a column of the reference"
                f" {config.reference_path}{extra}"
            )
        kind = profile[feat.name].kind
        if feat.type is not None and feat.type != kind:
            raise ConfigError(
                f"{config.at}features.{feat.name}.type: configured {feat.type} but the"
                f" reference profile holds it as {kind}"
            )
        out[feat.name] = kind
    named = any(feat.name == PREDICTION_FEATURE for feat in config.features)
    if PREDICTION_FEATURE in profile and not named:
        out[PREDICTION_FEATURE] = profile[PREDICTION_FEATURE].kind
    return out
