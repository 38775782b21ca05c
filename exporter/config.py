"""The exporter's configuration: YAML file plus ``MLOPS_EXPORTER_*`` environment variables.

Loading is pure: :func:`load_config` reads one file and a mapping of environment variables
and returns a frozen dataclass tree, or raises :class:`ConfigError` with one line naming the
file or the key at fault (``drift.interval: bad duration '3x' ...``).  Nothing here starts a
thread or opens a log.  :func:`load_reference` is the one step that reads the reference
data; it is separate because it is the slow part and because a reference that cannot be
read, or lacks a configured feature, is also a configuration error.

Environment variables: every key ``a.b.c`` may be set as ``MLOPS_EXPORTER_A_B_C`` (the
dotted path upper-cased, dots replaced by ``_``), which overrides the file.  Values are
read as YAML scalars, so ``10s``, ``5000`` and ``true`` mean what they would in the file;
lists accept a YAML flow sequence (``[ks, psi]``) or comma-separated text (``ks,psi``);
the free-form sections ``features`` and ``alerts`` accept a YAML flow mapping.
"""

from __future__ import annotations

import difflib
import itertools
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from exporter.errors import ConfigError
from mlops_core import durations
from mlops_core.constants import (
    DEFAULT_FALSE_ALARM_BUDGET,
    DEFAULT_LATENCY_BUCKETS,
    DEFAULT_TOLERANCE,
    DRIFT_TESTS,
    KS_METHODS,
)
from mlops_core.constants import FEATURE_KINDS as FEATURE_TYPES
from mlops_core.errors import DurationError, MlopsError
from mlops_core.suggest import closest

ENV_PREFIX = "MLOPS_EXPORTER_"

CHECKPOINT_INTERVAL = 1.0
"""Default ``logs.checkpoint_interval``: the staleness of the served counters, and at most
how much a crash makes the next process read again (see :mod:`exporter.ingest`; its
``CHECKPOINT_INTERVAL`` is the same value, and a test keeps them equal)."""

DEFAULT_MAX_FILES = 256
"""Default ``logs.max_files`` (why 256: ``exporter.tail.DEFAULT_MAX_FILES``, kept equal by a
test; not imported, so loading a config does not import the follower and numpy)."""

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


# --- the frozen tree ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureConfig:
    name: str
    type: str | None = None  # None: inferred from the reference
    tolerance: float | None = None  # None: drift.tolerance of its kind
    monitor: bool = True  # False: read by nobody, excluded from the drift pass


@dataclass(frozen=True)
class LogsConfig:
    paths: tuple[str, ...]
    start_position: str = "end"
    state_file: str | None = None
    max_line_bytes: int = 1 << 20
    poll_interval: float = 0.25
    max_files: int = DEFAULT_MAX_FILES
    checkpoint_interval: float = CHECKPOINT_INTERVAL


@dataclass(frozen=True)
class WindowConfig:
    max_samples: int = 10_000
    max_age: float = 3600.0


@dataclass(frozen=True)
class KsConfig:
    method: str = "asymp"


@dataclass(frozen=True)
class PsiConfig:
    buckets: int = 10


@dataclass(frozen=True)
class ToleranceConfig:
    numeric: float = DEFAULT_TOLERANCE
    categorical: float = DEFAULT_TOLERANCE


@dataclass(frozen=True)
class DriftConfig:
    interval: float = 30.0
    window: WindowConfig = field(default_factory=WindowConfig)
    min_samples: int = 100
    tests: tuple[str, ...] = ("ks", "psi")  # reported figures; the verdict needs none
    ks: KsConfig = field(default_factory=KsConfig)
    psi: PsiConfig = field(default_factory=PsiConfig)
    tolerance: ToleranceConfig = field(default_factory=ToleranceConfig)
    false_alarm_budget: float = DEFAULT_FALSE_ALARM_BUDGET


@dataclass(frozen=True)
class LatencyConfig:
    field: str = "latency_ms"
    buckets: tuple[float, ...] = DEFAULT_LATENCY_BUCKETS


@dataclass(frozen=True)
class PredictionConfig:
    class_field: str = "class"
    max_classes: int = 20


@dataclass(frozen=True)
class ExporterConfig:
    model_name: str
    logs: LogsConfig
    reference_path: str
    features: tuple[FeatureConfig, ...] | None = None  # None: every reference column
    drift: DriftConfig = field(default_factory=DriftConfig)
    latency: LatencyConfig = field(default_factory=LatencyConfig)
    prediction: PredictionConfig = field(default_factory=PredictionConfig)
    alerts: Mapping[str, Any] | None = None
    source: str = "<config>"


# --- value parsers: each takes (key, raw) and returns the value or raises ConfigError --------

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


def _describe(raw: Any) -> str:
    return f"{raw!r} ({type(raw).__name__})"


def _did_you_mean(word: str, choices: Iterable[str], show: Callable[[str], str] = repr) -> str:
    """`` (did you mean 'x'?)`` naming the closest of ``choices``, or ``""`` if none is close."""
    hint = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {show(hint[0])}?)" if hint else ""


def parse_duration(raw: Any, key: str = "duration") -> float:
    """Seconds from ``500ms``, ``30s``, ``5m``, ``1h``, ``1h30m`` or a bare number of seconds."""
    try:
        seconds = durations.parse_duration(raw)
    except DurationError as exc:
        raise ConfigError(f"{key}: {exc}") from None
    if seconds <= 0:
        raise ConfigError(f"{key}: duration must be positive, got {raw!r}")
    return seconds


def _size(key: str, raw: Any) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif isinstance(raw, str) and (match := _SIZE.fullmatch(raw.strip())):
        value = int(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()]
    else:
        raise ConfigError(f"{key}: expected a size in bytes like 1048576 or 1MiB, got {raw!r}")
    if value <= 0:
        raise ConfigError(f"{key}: must be positive, got {raw!r}")
    return value


def _string(key: str, raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigError(f"{key}: expected a non-empty string, got {_describe(raw)}")
    return raw


def _field_name(key: str, raw: Any) -> str:
    """A log record's field name: the fast JSON decoder cannot match one with quotes etc."""
    name = _string(key, raw)
    if any(c in '"\\' or c < " " for c in name):
        raise ConfigError(
            f"{key}: {name!r} cannot be a log field name (no quotes, backslashes or control "
            "characters)"
        )
    return name


def _positive_int(key: str, raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise ConfigError(f"{key}: expected a positive integer, got {_describe(raw)}")
    if raw <= 0:
        raise ConfigError(f"{key}: expected a positive integer, got {raw}")
    return raw




def _tolerance(key: str, raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 <= raw < 1:
        raise ConfigError(
            f"{key}: expected a distance between 0 and 1 (0.05 = a 5% shift), got "
            f"{_describe(raw)}"
        )
    return float(raw)


def _positive_float(key: str, raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not (0 < raw < math.inf):
        raise ConfigError(f"{key}: expected a positive number, got {_describe(raw)}")
    return float(raw)


def _duration(key: str, raw: Any) -> float:
    return parse_duration(raw, key)


def _choice(*choices: str) -> Callable[[str, Any], str]:
    def parse(key: str, raw: Any) -> str:
        if raw not in choices:
            extra = _did_you_mean(str(raw), choices)
            raise ConfigError(f"{key}: expected one of {', '.join(choices)}, got {raw!r}{extra}")
        return raw

    return parse


def _string_list(key: str, raw: Any) -> tuple[str, ...]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{key}: expected a non-empty list of strings, got {_describe(raw)}")
    return tuple(_string(f"{key}[{i}]", item) for i, item in enumerate(raw))


def _tests(key: str, raw: Any) -> tuple[str, ...]:
    names = _string_list(key, raw)
    pick = _choice(*DRIFT_TESTS)
    return tuple(dict.fromkeys(pick(f"{key}[{i}]", n) for i, n in enumerate(names)))


def _buckets(key: str, raw: Any) -> tuple[float, ...]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{key}: expected a non-empty list of bucket bounds in seconds")
    bounds = tuple(parse_duration(item, f"{key}[{i}]") for i, item in enumerate(raw))
    if any(b <= a for a, b in itertools.pairwise(bounds)):
        raise ConfigError(f"{key}: bucket bounds must be strictly increasing, got {raw}")
    return bounds


def _optional_path(key: str, raw: Any) -> str | None:
    return None if raw is None else _string(key, raw)


def _mapping_or_none(key: str, raw: Any) -> Mapping[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ConfigError(f"{key}: expected a mapping, got {_describe(raw)}")
    return raw


# --- schema: nested dict of key -> (parser, default) or sub-schema --------------------------

_REQUIRED = object()


@dataclass(frozen=True)
class _Leaf:
    parse: Callable[[str, Any], Any]
    default: Any = _REQUIRED
    is_list: bool = False


_SCHEMA: dict[str, Any] = {
    "model": {"name": _Leaf(_string)},
    "logs": {
        "paths": _Leaf(_string_list, is_list=True),
        "start_position": _Leaf(_choice("end", "beginning"), "end"),
        "state_file": _Leaf(_optional_path, None),
        "max_line_bytes": _Leaf(_size, 1 << 20),
        "poll_interval": _Leaf(_duration, 0.25),
        "max_files": _Leaf(_positive_int, DEFAULT_MAX_FILES),
        "checkpoint_interval": _Leaf(_duration, CHECKPOINT_INTERVAL),
    },
    "reference": {"path": _Leaf(_string)},
    "features": _Leaf(lambda k, v: v, None),  # free-form: checked by _features()
    "drift": {
        "interval": _Leaf(_duration, 30.0),
        "window": {
            "max_samples": _Leaf(_positive_int, 10_000),
            "max_age": _Leaf(_duration, 3600.0),
        },
        "min_samples": _Leaf(_positive_int, 100),
        "tests": _Leaf(_tests, ("ks", "psi"), is_list=True),
        "ks": {"method": _Leaf(_choice(*KS_METHODS), "asymp")},
        "psi": {"buckets": _Leaf(_positive_int, 10)},
        "tolerance": {
            "numeric": _Leaf(_tolerance, DEFAULT_TOLERANCE),
            "categorical": _Leaf(_tolerance, DEFAULT_TOLERANCE),
        },
        "false_alarm_budget": _Leaf(_duration, DEFAULT_FALSE_ALARM_BUDGET),
    },
    "latency": {
        "field": _Leaf(_field_name, "latency_ms"),
        "buckets": _Leaf(_buckets, DEFAULT_LATENCY_BUCKETS, is_list=True),
    },
    "prediction": {
        "class_field": _Leaf(_field_name, "class"),
        "max_classes": _Leaf(_positive_int, 20),
    },
    "alerts": _Leaf(_mapping_or_none, None),  # free-form: passed through
}


def _leaves(schema: Mapping[str, Any], prefix: str = "") -> dict[str, _Leaf]:
    out: dict[str, _Leaf] = {}
    for name, node in schema.items():
        path = f"{prefix}{name}"
        if isinstance(node, _Leaf):
            out[path] = node
        else:
            out.update(_leaves(node, path + "."))
    return out


def env_var_name(key: str) -> str:
    """The environment variable that sets the dotted ``key``: ``drift.interval`` ->
    ``MLOPS_EXPORTER_DRIFT_INTERVAL``."""
    return ENV_PREFIX + key.replace(".", "_").upper()


_LEAVES = _leaves(_SCHEMA)
_ENV_NAMES = {env_var_name(path): path for path in _LEAVES}
_REMOVED_ENV_NAMES = {env_var_name(path): path for path in REMOVED_KEYS}


# --- reading ---------------------------------------------------------------------------------


def parse_yaml(text: str, source: str) -> Any:
    """``yaml.safe_load``; a syntax error is one :class:`ConfigError` line,
    ``<source>:LINE:COLUMN: invalid YAML: <problem>`` (the config and the web config file)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{source}{where}: invalid YAML: {problem}") from None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc.__class__.__name__
        raise ConfigError(f"{path}: cannot read config file: {reason}") from None
    data = parse_yaml(text, str(path))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a YAML mapping at the top level")
    return data


def _check_unknown(data: Mapping[str, Any], schema: Mapping[str, Any], prefix: str = "") -> None:
    for key, value in data.items():
        path = f"{prefix}{key}"
        if path in REMOVED_KEYS:
            raise ConfigError(f"{path}: {REMOVED_KEYS[path]}")
        if not isinstance(key, str) or key not in schema:
            extra = _did_you_mean(str(key), schema, lambda hint: repr(prefix + hint))
            raise ConfigError(f"{path}: unknown key{extra}")
        node = schema[key]
        if isinstance(node, _Leaf):
            continue
        if value is None:
            continue
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {_describe(value)}")
        _check_unknown(value, node, path + ".")


def _get(data: Mapping[str, Any], path: str) -> Any:
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node or node[part] is None:
            return _REQUIRED
        node = node[part]
    return node


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = value


def _env_value(name: str, leaf: _Leaf, text: str) -> Any:
    stripped = text.strip()
    if leaf.is_list and not stripped.startswith("["):
        return [item.strip() for item in stripped.split(",") if item.strip()]
    try:
        return yaml.safe_load(stripped) if stripped else None
    except yaml.YAMLError:
        raise ConfigError(f"{name}: invalid value {text!r}") from None


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """Overlay ``MLOPS_EXPORTER_*`` variables on ``data``; returns key -> variable name used."""
    used: dict[str, str] = {}
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX):
            continue
        path = _ENV_NAMES.get(name)
        removed = _REMOVED_ENV_NAMES.get(name)
        if removed is not None:
            raise ConfigError(f"{name}: {REMOVED_KEYS[removed]}")
        if path is None:
            extra = _did_you_mean(name, _ENV_NAMES, str)
            raise ConfigError(f"{name}: unknown environment variable{extra}")
        _set(data, path, _env_value(name, _LEAVES[path], env[name]))
        used[path] = name
    return used


def _features(key: str, raw: Any) -> tuple[FeatureConfig, ...] | None:
    if raw is None:
        return None
    if isinstance(raw, list):  # a plain list of names: types inferred
        raw = {name: None for name in _string_list(key, raw)}
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{key}: expected a mapping of feature name to {{type: ...}}")
    out = []
    for name, spec in raw.items():
        fkey = f"{key}.{name}"
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{fkey}: feature names must be non-empty strings")
        if spec is None:
            out.append(FeatureConfig(name))
            continue
        if isinstance(spec, str):  # shorthand: age: numeric
            spec = {"type": spec}
        if not isinstance(spec, dict):
            raise ConfigError(
                f"{fkey}: expected a mapping such as {{type: numeric, tolerance: 0.1}}"
            )
        for extra in spec:
            if extra not in _FEATURE_KEYS:
                hint = _did_you_mean(str(extra), _FEATURE_KEYS)
                raise ConfigError(f"{fkey}.{extra}: unknown key{hint}")
        ftype = spec.get("type")
        tolerance = spec.get("tolerance")
        monitor = spec.get("monitor", True)
        if not isinstance(monitor, bool):
            raise ConfigError(f"{fkey}.monitor: expected true or false, got {_describe(monitor)}")
        out.append(
            FeatureConfig(
                name,
                None if ftype is None else _choice(*FEATURE_TYPES)(f"{fkey}.type", ftype),
                None if tolerance is None else _tolerance(f"{fkey}.tolerance", tolerance),
                monitor,
            )
        )
    return tuple(out)


_FEATURE_KEYS = ("type", "tolerance", "monitor")


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
    _check_unknown(data, _SCHEMA)
    from_env = _apply_env(data, env)
    _check_unknown(data, _SCHEMA)

    values: dict[str, Any] = {}
    for key, leaf in _LEAVES.items():
        raw = _get(data, key)
        label = from_env.get(key, key)
        if raw is _REQUIRED:
            if leaf.default is _REQUIRED:
                raise ConfigError(
                    f"{key}: required key missing in {cfg_path} (or set {env_var_name(key)})"
                )
            values[key] = leaf.default
        else:
            values[key] = leaf.parse(label, raw)
    features = _features(from_env.get("features", "features"), values["features"])

    base = cfg_path.resolve().parent

    def rel(p: str) -> str:
        return p if os.path.isabs(p) else str(base / p)

    interval = values["drift.interval"]
    if values["drift.window.max_age"] < interval:
        raise ConfigError(
            "drift.window.max_age: must be at least drift.interval "
            f"({values['drift.window.max_age']}s < {interval}s)"
        )
    if values["drift.false_alarm_budget"] < interval:
        raise ConfigError(
            "drift.false_alarm_budget: must be at least drift.interval "
            f"({values['drift.false_alarm_budget']}s < {interval}s): it is the period in "
            "which one false drift verdict is expected"
        )
    return ExporterConfig(
        model_name=values["model.name"],
        logs=LogsConfig(
            paths=tuple(rel(p) for p in values["logs.paths"]),
            start_position=values["logs.start_position"],
            state_file=_maybe(rel, values["logs.state_file"]),
            max_line_bytes=values["logs.max_line_bytes"],
            poll_interval=values["logs.poll_interval"],
            max_files=values["logs.max_files"],
            checkpoint_interval=values["logs.checkpoint_interval"],
        ),
        reference_path=rel(values["reference.path"]),
        features=features,
        drift=DriftConfig(
            interval=interval,
            window=WindowConfig(
                max_samples=values["drift.window.max_samples"],
                max_age=values["drift.window.max_age"],
            ),
            min_samples=values["drift.min_samples"],
            tests=values["drift.tests"],
            ks=KsConfig(values["drift.ks.method"]),
            psi=PsiConfig(values["drift.psi.buckets"]),
            tolerance=ToleranceConfig(
                values["drift.tolerance.numeric"], values["drift.tolerance.categorical"]
            ),
            false_alarm_budget=values["drift.false_alarm_budget"],
        ),
        latency=LatencyConfig(values["latency.field"], values["latency.buckets"]),
        prediction=PredictionConfig(
            values["prediction.class_field"], values["prediction.max_classes"]
        ),
        alerts=values["alerts"],
        source=str(cfg_path),
    )


def _maybe(fn: Callable[[str], str], value: str | None) -> str | None:
    return None if value is None else fn(value)


def load_reference(config: ExporterConfig) -> tuple[Any, dict[str, str]]:
    """Load the reference profile and resolve the monitored features.

    Returns ``(profile, {feature: "numeric" | "categorical"})`` in config order (or the
    reference's column order when ``features`` is not set).  A reference that cannot be
    read, or a configured feature it lacks, raises :class:`ConfigError`.
    """
    from mlops_core.profile import ReferenceProfile

    path = config.reference_path
    if not os.path.exists(path):
        raise ConfigError(f"reference.path: file not found: {path}")
    types = {f.name: f.type for f in config.features or () if f.type is not None and f.monitor}
    names = (
        None if config.features is None else [f.name for f in config.features if f.monitor]
    )
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
        raise ConfigError(f"reference.path: {exc}") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"reference.path: cannot read {path}: {exc}") from None
    return profile, resolve_features(config, profile)


def resolve_features(config: ExporterConfig, profile: Any) -> dict[str, str]:
    """Feature name -> kind, checking each configured feature against the profile."""
    available = list(profile.feature_names)
    if config.features is None:
        return {name: profile[name].kind for name in available}
    out: dict[str, str] = {}
    for feat in config.features:
        if not feat.monitor:
            continue
        if feat.name not in profile:
            hint = closest(feat.name, available)  # only close matches: a wrong hint misleads
            extra = f" (did you mean {hint!r}?)" if hint else ""
            raise ConfigError(
                f"features.{feat.name}: not a column of the reference {config.reference_path}"
                f"{extra}"
            )
        kind = profile[feat.name].kind
        if feat.type is not None and feat.type != kind:
            raise ConfigError(
                f"features.{feat.name}.type: configured {feat.type} but the reference profile "
                f"holds it as {kind}"
            )
        out[feat.name] = kind
    return out
