"""exporter.config: the YAML file, env overrides, and one-line errors naming the key."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from exporter.config import (
    DEFAULT_LATENCY_BUCKETS,
    env_var_name,
    load_config,
    load_reference,
    parse_duration,
)
from mlops_core.errors import ConfigError
from tests.conftest import config_error, write_yaml

ISSUE_EXAMPLE = """\
model:
  name: churn
logs:
  paths: ["/var/log/model/*.jsonl"]      # globs; new files matching are picked up
  start_position: end                     # or beginning
  state_file: /var/lib/mlops-exporter/positions.json   # optional checkpoint of read offsets
reference:
  path: reference.csv                     # CSV, JSON lines, .npz, or a saved ReferenceProfile
features:                                 # optional; default: every column of the reference
  age: {type: numeric}
  plan: {type: categorical}
drift:
  interval: 30s                           # how often drift is recomputed (APScheduler job)
  window: {max_samples: 10000, max_age: 1h}
  min_samples: 100                        # below this no drift verdict is published
  tests: [ks, psi]
  psi: {buckets: 10}
  tolerance: {numeric: 0.05, categorical: 0.05}
  false_alarm_budget: 30d
latency:
  field: latency_ms
"""

MINIMAL = """\
model: {name: m}
logs: {paths: [logs/*.jsonl]}
reference: {path: ref.csv}
"""


def test_issue_example_loads_with_its_values(tmp_path: Path) -> None:
    cfg = load_config(write_yaml(tmp_path, ISSUE_EXAMPLE), {})
    assert cfg.model_name == "churn"
    assert cfg.logs.paths == ("/var/log/model/*.jsonl",)
    assert cfg.logs.start_position == "end"
    assert cfg.logs.state_file == "/var/lib/mlops-exporter/positions.json"
    assert cfg.reference_path == str(tmp_path / "reference.csv")  # relative to the config
    assert [(f.name, f.type) for f in cfg.features] == [
        ("age", "numeric"),
        ("plan", "categorical"),
    ]
    assert cfg.drift.interval == 30.0
    assert cfg.drift.window.max_samples == 10_000
    assert cfg.drift.window.max_age == 3600.0
    assert cfg.drift.min_samples == 100
    assert cfg.drift.tests == ("ks", "psi")
    assert cfg.drift.psi.buckets == 10
    assert (cfg.drift.tolerance.numeric, cfg.drift.tolerance.categorical) == (0.05, 0.05)
    assert cfg.drift.false_alarm_budget == 30 * 86400.0
    assert cfg.latency.field == "latency_ms"


def test_defaults_of_a_minimal_file(tmp_path: Path) -> None:
    cfg = load_config(write_yaml(tmp_path, MINIMAL), {})
    assert cfg.logs.paths == (str(tmp_path / "logs/*.jsonl"),)
    assert cfg.logs.start_position == "end"
    assert cfg.logs.state_file is None
    assert cfg.logs.max_line_bytes == 1 << 20
    assert cfg.logs.poll_interval == 0.25
    assert cfg.logs.max_files == 256
    assert cfg.logs.checkpoint_interval == 1.0
    assert cfg.features is None
    assert cfg.drift.interval == 30.0
    assert cfg.drift.false_alarm_budget == 30 * 86400.0
    assert cfg.drift.tolerance.numeric == cfg.drift.tolerance.categorical == 0.05
    assert cfg.latency.buckets == DEFAULT_LATENCY_BUCKETS
    assert cfg.prediction.class_field == "class"
    assert cfg.prediction.max_classes == 20
    assert cfg.alerts is None


def test_defaults_declared_twice_are_equal() -> None:
    """The config keeps its own copies so loading it imports neither follower nor numpy."""
    import exporter.config as config
    import exporter.ingest as ingest
    import exporter.tail as tail

    assert config.DEFAULT_MAX_FILES == tail.DEFAULT_MAX_FILES
    assert config.CHECKPOINT_INTERVAL == ingest.CHECKPOINT_INTERVAL


def test_logs_max_files_and_checkpoint_interval_are_read_and_checked(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        "[logs/*.jsonl]}", "[logs/*.jsonl], max_files: 8, checkpoint_interval: 250ms}"
    )
    cfg = load_config(write_yaml(tmp_path, text), {})
    assert (cfg.logs.max_files, cfg.logs.checkpoint_interval) == (8, 0.25)
    with pytest.raises(ConfigError, match="LOGS_MAX_FILES: expected a positive integer"):
        load_config(write_yaml(tmp_path, MINIMAL), {"MLOPS_EXPORTER_LOGS_MAX_FILES": "0"})


def test_config_is_frozen(tmp_path: Path) -> None:
    """Frozen msgspec Structs (an AttributeError, as a frozen dataclass's error is too)."""
    cfg = load_config(write_yaml(tmp_path, MINIMAL), {})
    with pytest.raises(AttributeError):
        cfg.drift.interval = 1.0  # type: ignore[misc]
    with pytest.raises(AttributeError):
        cfg.model_name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("30s", 30), ("5m", 300), ("1h", 3600), ("1h30m", 5400), (2, 2.0)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["3x", "", "10", "-5s", "s", "1.5.2s", True, [1]])
def test_bad_durations_name_the_key(bad: object) -> None:
    with pytest.raises(ConfigError, match=r"drift\.interval"):
        parse_duration(bad if bad != "10" else "10 parsecs", "drift.interval")


@pytest.mark.parametrize("value", ["500ms", "90s", "1h30m", "2d", "1w", 600, 0.25])
def test_exporter_and_alert_system_read_durations_alike(value: object) -> None:
    from mlops_core.alerts import parse_duration as alerts_parse_duration

    assert parse_duration(value) == alerts_parse_duration(value)


@pytest.mark.parametrize("bad", ["1h 30m", "-5m", ".5s", 10**400, float("nan"), None])
def test_durations_both_reject(bad: object) -> None:
    from mlops_core.alerts import parse_duration as alerts_parse_duration
    from mlops_core.errors import AlertConfigError

    with pytest.raises(ConfigError, match=r"^drift\.interval: "):
        parse_duration(bad, "drift.interval")
    with pytest.raises(AlertConfigError, match=r"^alerts\.cooldown "):
        alerts_parse_duration(bad, "alerts.cooldown")


def test_env_overrides_file_values(tmp_path: Path) -> None:
    env = {
        "MLOPS_EXPORTER_DRIFT_INTERVAL": "10s",
        "MLOPS_EXPORTER_DRIFT_WINDOW_MAX_SAMPLES": "5000",
        "MLOPS_EXPORTER_DRIFT_TESTS": "ks,psi,chi2",
        "MLOPS_EXPORTER_LOGS_PATHS": "[/a/*.jsonl, /b/*.jsonl]",
        "MLOPS_EXPORTER_MODEL_NAME": "from-env",
        "MLOPS_EXPORTER_FEATURES": "{age: numeric}",
        "MLOPS_EXPORTER_LATENCY_BUCKETS": "5ms, 50ms, 1s",
        "UNRELATED": "ignored",
    }
    cfg = load_config(write_yaml(tmp_path, ISSUE_EXAMPLE), env)
    assert cfg.drift.interval == 10.0
    assert cfg.drift.window.max_samples == 5000
    assert cfg.drift.tests == ("ks", "psi", "chi2")
    assert cfg.logs.paths == ("/a/*.jsonl", "/b/*.jsonl")
    assert cfg.model_name == "from-env"
    assert [(f.name, f.type) for f in cfg.features] == [("age", "numeric")]
    assert cfg.latency.buckets == (0.005, 0.05, 1.0)


def test_env_can_supply_a_required_key(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "logs: {paths: [x]}\nreference: {path: r.csv}\n")
    assert "model.name" in config_error(path)
    cfg = load_config(path, {"MLOPS_EXPORTER_MODEL_NAME": "m"})
    assert cfg.model_name == "m"


def test_env_var_name_rule() -> None:
    assert env_var_name("drift.window.max_samples") == "MLOPS_EXPORTER_DRIFT_WINDOW_MAX_SAMPLES"


def test_unknown_env_var_is_an_error_with_a_suggestion(tmp_path: Path) -> None:
    message = config_error(write_yaml(tmp_path, MINIMAL), {"MLOPS_EXPORTER_DRIFT_INTERVALL": "5s"})
    assert "MLOPS_EXPORTER_DRIFT_INTERVALL" in message
    assert "MLOPS_EXPORTER_DRIFT_INTERVAL?" in message


def test_env_value_is_validated_and_named(tmp_path: Path) -> None:
    message = config_error(write_yaml(tmp_path, MINIMAL), {"MLOPS_EXPORTER_DRIFT_INTERVAL": "soon"})
    assert message.startswith("MLOPS_EXPORTER_DRIFT_INTERVAL: bad duration 'soon'")


def test_missing_file(tmp_path: Path) -> None:
    message = config_error(tmp_path / "nope.yml")
    assert "nope.yml" in message and "not found" in message


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    message = config_error(write_yaml(tmp_path, "model:\n  name: [unclosed\nlogs: {}\n"))
    assert "config.yml:" in message and "invalid YAML" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            MINIMAL + "drift: {intervall: 5s}\n",
            "drift.intervall: unknown key (did you mean 'drift.interval'?)",
        ),
        (MINIMAL + "lgos: {}\n", "lgos: unknown key (did you mean 'logs'?)"),
        (MINIMAL + "drift: {interval: 3x}\n", "drift.interval: bad duration '3x'"),
        (
            MINIMAL + "drift: {min_samples: many}\n",
            "drift.min_samples: expected a positive integer",
        ),
        (MINIMAL + "drift: {min_samples: 0}\n", "drift.min_samples: expected a positive integer"),
        (MINIMAL + "drift: {tests: [ks, kolmogorov]}\n", "drift.tests[1]: expected one of"),
        (
            MINIMAL + "drift: {tolerance: {numeric: 5}}\n",
            "drift.tolerance.numeric: expected a distance between 0 and 1",
        ),
        (MINIMAL + "drift: {ks: {method: exakt}}\n", "did you mean 'exact'?"),
        (MINIMAL + "drift: {combine: any}\n", "drift.combine: removed: the verdict is now"),
        (MINIMAL + "drift: {correction: bonferroni}\n", "drift.correction: removed"),
        (MINIMAL + "drift: {ks: {threshold: 0.01}}\n", "drift.ks.threshold: removed"),
        (MINIMAL + "drift: {psi: {threshold: 0.2}}\n", "drift.psi.threshold: removed"),
        (
            MINIMAL + "drift: {interval: 1h, false_alarm_budget: 10m}\n",
            "drift.false_alarm_budget: must be at least drift.interval",
        ),
        (
            MINIMAL + "features: {age: {tolerance: 2}}\n",
            "features.age.tolerance: expected a distance between 0 and 1",
        ),
        (
            MINIMAL + "features: {age: {monitor: no_thanks}}\n",
            "features.age.monitor: expected true or false",
        ),
        (MINIMAL + "drift: {window: 5}\n", "drift.window: expected a mapping"),
        (MINIMAL + "drift: {interval: 10m, window: {max_age: 1m}}\n", "drift.window.max_age"),
        (
            MINIMAL + "latency: {buckets: [1s, 500ms]}\n",
            "latency.buckets: bucket bounds must be strictly increasing",
        ),
        (
            MINIMAL.replace("[logs/*.jsonl]}", "[], start_position: end}"),
            "logs.paths: expected a non-empty list",
        ),
        (
            MINIMAL.replace(
                "logs: {paths: [logs/*.jsonl]}", "logs: {paths: [a], start_position: middle}"
            ),
            "logs.start_position: expected one of end, beginning",
        ),
        (MINIMAL.replace("]}", "], max_line_bytes: lots}"), "logs.max_line_bytes"),
        (
            MINIMAL + "features: {age: {type: number}}\n",
            "features.age.type: expected one of numeric, categorical",
        ),
        (MINIMAL + "features: {age: {kind: numeric}}\n", "features.age.kind: unknown key"),
        (MINIMAL + "features: {age: {tolerence: 0.1}}\n", "did you mean 'tolerance'?"),
        (MINIMAL + "alerts: [1, 2]\n", "alerts: expected a mapping"),
        (MINIMAL + "drift: {interval: .inf}\n", "drift.interval: duration must be a finite"),
        (MINIMAL + "drift: {interval: 0s}\n", "drift.interval: duration must be positive"),
        (MINIMAL + 'latency: {field: "a\\"b"}\n', "latency.field: 'a\"b' cannot be a log field"),
        (MINIMAL + 'prediction: {class_field: "a\\nb"}\n', "prediction.class_field: 'a\\nb'"),
        ("model: {name: m}\nreference: {path: r.csv}\n", "logs.paths: required key missing"),
        ("- just\n- a list\n", "expected a YAML mapping at the top level"),
    ],
)
def test_errors_are_one_line_naming_the_key(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in config_error(write_yaml(tmp_path, text))


def test_drift_options_beyond_the_issue(tmp_path: Path) -> None:
    text = MINIMAL + "drift: {ks: {method: exact}, false_alarm_budget: 1w}\n"
    text += "features: {age: {tolerance: 0.2}, plan: {monitor: false}}\n"
    cfg = load_config(write_yaml(tmp_path, text), {})
    assert cfg.drift.ks.method == "exact"
    assert cfg.drift.false_alarm_budget == 7 * 86400.0
    assert [(f.name, f.tolerance, f.monitor) for f in cfg.features] == [
        ("age", 0.2, True),
        ("plan", None, False),
    ]
    assert load_config(write_yaml(tmp_path, MINIMAL), {}).drift.ks.method == "asymp"


def test_alerts_section_is_passed_through(tmp_path: Path) -> None:
    text = MINIMAL + "alerts:\n  thresholds: {psi: 0.3}\n  notifiers: [{type: webhook}]\n"
    cfg = load_config(write_yaml(tmp_path, text), {})
    assert cfg.alerts == {"thresholds": {"psi": 0.3}, "notifiers": [{"type": "webhook"}]}


def test_max_line_bytes_accepts_units(tmp_path: Path) -> None:
    cfg = load_config(write_yaml(tmp_path, MINIMAL.replace("]}", "], max_line_bytes: 64KiB}")), {})
    assert cfg.logs.max_line_bytes == 65536


# --- the reference ---------------------------------------------------------------------------


def _reference_csv(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "ref.csv"
    lines = ["age,plan,income"] + [
        f"{rng.integers(18, 80)},{rng.choice(['a', 'b', 'c'])},{rng.normal(50, 10):.2f}"
        for _ in range(300)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_reference_features_default_to_every_column_with_inferred_types(tmp_path: Path) -> None:
    _reference_csv(tmp_path)
    profile, features = load_reference(load_config(write_yaml(tmp_path, MINIMAL), {}))
    assert features == {"age": "numeric", "plan": "categorical", "income": "numeric"}
    assert profile.n_rows == 300


def test_configured_features_restrict_and_type(tmp_path: Path) -> None:
    _reference_csv(tmp_path)
    text = MINIMAL + "features: {plan: {type: categorical}, age: {type: categorical}}\n"
    profile, features = load_reference(load_config(write_yaml(tmp_path, text), {}))
    assert features == {"plan": "categorical", "age": "categorical"}
    assert profile["age"].kind == "categorical"


def test_feature_missing_from_reference_is_named(tmp_path: Path) -> None:
    _reference_csv(tmp_path)
    cfg = load_config(write_yaml(tmp_path, MINIMAL + "features: {agee: {type: numeric}}\n"), {})
    with pytest.raises(ConfigError) as info:
        load_reference(cfg)
    message = str(info.value)
    assert "features.agee" in message and "did you mean 'age'?" in message
    assert "\n" not in message


def test_missing_reference_file_is_named(tmp_path: Path) -> None:
    cfg = load_config(write_yaml(tmp_path, MINIMAL), {})
    with pytest.raises(ConfigError, match=r"reference.path: file not found: .*ref.csv"):
        load_reference(cfg)


def test_unreadable_reference_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "ref.csv").write_bytes(b"\x00\xff\xfe garbage\n\x00")
    cfg = load_config(write_yaml(tmp_path, MINIMAL), {})
    with pytest.raises(ConfigError) as info:
        load_reference(cfg)
    assert str(info.value).startswith("reference.path:")
    assert "\n" not in str(info.value)


# --- bounds: a value the process cannot survive is a config error, not a traceback later -----


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "drift: {window: {max_samples: 100000000000000}}\n",
            "drift.window.max_samples: must be at most 10,000,000, got 100000000000000",
        ),
        (
            "drift: {window: {max_samples: 100000000000000000000000}}\n",
            "drift.window.max_samples: must be at most 10,000,000",
        ),
        (
            "drift: {interval: 10000000y, window: {max_age: 10000000y},"
            " false_alarm_budget: 10000000y}\n",
            "drift.interval: duration must be at most 100y, got '10000000y'",
        ),
        ("drift: {window: {max_age: 101y}}\n", "drift.window.max_age: duration must be at most"),
        ("logs: {paths: [a], poll_interval: 300y}\n", "logs.poll_interval: duration must be at"),
        ("logs: {paths: [a], poll_interval: 2h}\n", "logs.poll_interval: must be at most 1h"),
        ("drift: {psi: {buckets: 100000000}}\n", "drift.psi.buckets: must be at most 1,000"),
        ("prediction: {max_classes: 1000000000}\n", "prediction.max_classes: must be at most"),
        ("logs: {paths: [a], max_line_bytes: 100GiB}\n", "logs.max_line_bytes: must be at most"),
        (
            "logs: {paths: [a], state_file: s.json}\noutcomes: {max_pending: 10000000000000}\n",
            "outcomes.max_pending: must be at most 1,000,000,000",
        ),
        (
            "logs: {paths: [a], state_file: s.json}\noutcomes: {}\n"
            "quality: {window: {max_samples: 100000000000000}}\n",
            "quality.window.max_samples: must be at most 10,000,000",
        ),
    ],
)
def test_values_beyond_the_documented_bounds_are_one_line(
    tmp_path: Path, text: str, expected: str
) -> None:
    if text.startswith("logs:"):
        text = MINIMAL.replace("logs: {paths: [logs/*.jsonl]}\n", "") + text
    else:
        text = MINIMAL + text
    assert expected in config_error(write_yaml(tmp_path, text))


def test_the_bounds_themselves_are_accepted(tmp_path: Path) -> None:
    text = MINIMAL.replace("logs: {paths: [logs/*.jsonl]}", "logs: {paths: [a], poll_interval: 1h}")
    text += (
        "drift: {interval: 100y, window: {max_samples: 10000000, max_age: 100y},"
        " false_alarm_budget: 100y, psi: {buckets: 1000}, min_samples: 10000000}\n"
    )
    cfg = load_config(write_yaml(tmp_path, text), {})
    assert cfg.drift.window.max_samples == 10_000_000
    assert cfg.drift.interval == 100 * 365 * 86400.0
    assert cfg.logs.poll_interval == 3600.0
    assert cfg.drift.psi.buckets == 1000


def test_the_bound_of_an_env_var_names_the_variable(tmp_path: Path) -> None:
    message = config_error(
        write_yaml(tmp_path, MINIMAL), {"MLOPS_EXPORTER_DRIFT_PSI_BUCKETS": "5000"}
    )
    assert message.startswith("MLOPS_EXPORTER_DRIFT_PSI_BUCKETS: must be at most 1,000")


def test_the_psi_bound_is_the_shared_constant() -> None:
    from exporter.config import KEYS
    from mlops_core.constants import MAX_BUCKETS
    from mlops_core.schema import AtMost, unwrap

    (bound,) = [e for e in unwrap(KEYS["drift.psi.buckets"].type)[1] if isinstance(e, AtMost)]
    assert bound.limit == MAX_BUCKETS


# --- rules across keys -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "drift: {min_samples: 500, window: {max_samples: 200}}\n",
            "drift.min_samples: must be at most drift.window.max_samples (500 > 200)",
        ),
        (
            "drift: {window: {max_samples: 50}}\n",  # the default min_samples, 100
            "drift.min_samples: must be at most drift.window.max_samples (100 > 50)",
        ),
        (
            "logs: {paths: [a], state_file: s.json}\noutcomes: {}\n"
            "quality: {min_samples: 300, window: {max_samples: 200}}\n",
            "quality.min_samples: must be at most quality.window.max_samples (300 > 200)",
        ),
    ],
)
def test_min_samples_above_the_window_is_refused(tmp_path: Path, text: str, expected: str) -> None:
    if text.startswith("logs:"):
        text = MINIMAL.replace("logs: {paths: [logs/*.jsonl]}\n", "") + text
    else:
        text = MINIMAL + text
    assert expected in config_error(write_yaml(tmp_path, text))


def test_min_samples_equal_to_the_window_is_accepted(tmp_path: Path) -> None:
    text = MINIMAL + "drift: {min_samples: 200, window: {max_samples: 200}}\n"
    assert load_config(write_yaml(tmp_path, text), {}).drift.min_samples == 200


# --- reading the file -------------------------------------------------------------------------


def test_a_duplicate_key_is_refused_with_its_place(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, MINIMAL + "model: {name: other}\n")
    assert config_error(path) == f"{path}:4:1: duplicate key 'model'"
    nested = write_yaml(tmp_path, MINIMAL + "drift:\n  interval: 5s\n  interval: 10s\n")
    assert config_error(nested) == f"{nested}:6:3: duplicate key 'interval'"


def test_the_web_config_refuses_duplicate_keys_too(tmp_path: Path) -> None:
    from exporter.config import parse_yaml

    with pytest.raises(ConfigError, match=r"^web\.yml:2:1: duplicate key 'a'$"):
        parse_yaml("a: 1\na: 2\n", "web.yml")


def test_merge_keys_and_equal_values_elsewhere_still_load(tmp_path: Path) -> None:
    text = MINIMAL + "x-base: &base {interval: 5s}\n"
    assert "x-base: unknown key" in config_error(write_yaml(tmp_path, text))
    from exporter.config import parse_yaml

    assert parse_yaml("a: &b {x: 1}\nc:\n  <<: *b\n  y: 2\n", "f") == {
        "a": {"x": 1},
        "c": {"x": 1, "y": 2},
    }


def test_a_non_utf8_file_names_the_byte_and_line(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_bytes(MINIMAL.encode() + b"# caf\xe9\n")
    message = config_error(path)
    offset = len(MINIMAL.encode()) + 5
    assert message == f"{path}:4: not UTF-8 text (byte {offset}: 0xe9); save the file as UTF-8"


def test_an_empty_env_var_is_named_as_empty(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, MINIMAL, name="base.yml")
    message = config_error(path, {"MLOPS_EXPORTER_MODEL_NAME": ""})
    assert message.startswith("MLOPS_EXPORTER_MODEL_NAME: set but empty")
    assert "required key missing" not in message


# --- models[i].match ---------------------------------------------------------------------------

MODELS = """\
logs: {paths: [logs/*.jsonl]}
models:
  - name: churn
    reference: {path: ref.csv}
    match: %s
"""


@pytest.mark.parametrize(
    ("match", "expected"),
    [
        (
            "{service: [churn-api, fraud-api]}",
            "models[0].match.service: expected a string, got ['churn-api', 'fraud-api'] (list)",
        ),
        ("{service: null}", "models[0].match.service: expected a string, got None"),
        ("{service: {a: b}}", "models[0].match.service: expected a string"),
        ("{flag: true}", "models[0].match.flag: expected a string, got True (bool); quote it"),
        ("{version: 1.10}", "models[0].match.version: expected a string, got 1.1 (float)"),
    ],
)
def test_a_match_value_that_is_not_text_is_refused(
    tmp_path: Path, match: str, expected: str
) -> None:
    assert expected in config_error(write_yaml(tmp_path, MODELS % match))


def test_a_match_on_a_string_or_an_integer_is_its_text(tmp_path: Path) -> None:
    cfg = load_config(write_yaml(tmp_path, MODELS % "{service: churn-api, shard: 3}"), {})
    assert cfg.models[0].match == {"service": "churn-api", "shard": "3"}


def test_too_many_latency_buckets_is_one_short_line(tmp_path: Path) -> None:
    """Each bound is a series per model: more than MAX_LATENCY_BUCKETS is refused, and the
    error line shows the start of the list and its length, not all of it."""
    from exporter.config import MAX_LATENCY_BUCKETS

    bounds = ", ".join(str(0.001 * i) for i in range(1, MAX_LATENCY_BUCKETS + 2))
    error = config_error(write_yaml(tmp_path, MINIMAL + f"latency: {{buckets: [{bounds}]}}\n"))
    assert error.startswith("latency.buckets: expected a list of 1 to 100 bucket bounds")
    assert f"(list of {MAX_LATENCY_BUCKETS + 1})" in error and len(error) < 200
    ok = ", ".join(str(0.001 * i) for i in range(1, MAX_LATENCY_BUCKETS + 1))
    cfg = load_config(write_yaml(tmp_path, MINIMAL + f"latency: {{buckets: [{ok}]}}\n"), {})
    assert len(cfg.latency.buckets) == MAX_LATENCY_BUCKETS
