"""The outcomes: and quality: sections: defaults, resolved paths, and one-line errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from exporter import config_docs
from exporter.config import DEFAULT_MAX_PENDING, KEYS, QUALITY_METRICS, env_var_name, load_config
from mlops_core import quality
from tests.conftest import config_error, write_yaml

WITH_STATE = """\
model: {name: m}
logs: {paths: [logs/*.jsonl], state_file: state/checkpoint.json}
reference: {path: ref.csv}
"""


def test_without_an_outcomes_section_nothing_is_joined(tmp_path: Path) -> None:
    cfg = load_config(write_yaml(tmp_path, WITH_STATE), {})
    assert cfg.outcomes is None
    assert cfg.quality.reference == {} and cfg.quality.min_samples == 100


@pytest.mark.parametrize("section", ["outcomes:\n", "outcomes: {}\n"])
def test_the_section_alone_turns_joining_on_with_its_defaults(tmp_path: Path, section: str) -> None:
    cfg = load_config(write_yaml(tmp_path, WITH_STATE + section), {})
    out = cfg.outcomes
    assert out is not None
    assert out.paths == (str(tmp_path / "logs/*.jsonl"),)  # logs.paths
    assert out.store == str(tmp_path / "state" / "checkpoint.outcomes.db")  # beside the state
    assert (out.max_delay, out.max_pending, out.early_grace) == (
        30 * 86400.0,
        DEFAULT_MAX_PENDING,
        600.0,
    )
    q = cfg.quality
    assert (q.window.max_samples, q.window.max_age, q.min_samples) == (10_000, None, 100)
    assert (q.max_drop, q.false_alarm_budget, q.reference) == (0.05, 30 * 86400.0, {})


def test_every_key_reads_durations_and_paths_like_the_rest(tmp_path: Path) -> None:
    text = WITH_STATE + textwrap.dedent("""\
        outcomes:
          paths: [labels/*.jsonl]
          store: /var/lib/store.db
          max_delay: 7d
          max_pending: 1000
          early_grace: 0s
        quality:
          window: {max_samples: 500, max_age: 2w}
          min_samples: 30
          reference: {accuracy: 0.87, f1_macro: 0.84, rmse: 12}
          max_drop: 0.1
          false_alarm_budget: 1w
        """)
    cfg = load_config(write_yaml(tmp_path, text), {})
    out, q = cfg.outcomes, cfg.quality
    assert out is not None
    assert out.paths == (str(tmp_path / "labels/*.jsonl"),) and out.store == "/var/lib/store.db"
    assert (out.max_delay, out.max_pending, out.early_grace) == (7 * 86400.0, 1000, 0.0)
    assert (q.window.max_samples, q.window.max_age, q.min_samples) == (500, 14 * 86400.0, 30)
    assert q.reference == {"accuracy": 0.87, "f1_macro": 0.84, "rmse": 12.0}
    assert (q.max_drop, q.false_alarm_budget) == (0.1, 7 * 86400.0)


def test_environment_variables_set_the_new_keys(tmp_path: Path) -> None:
    env = {
        env_var_name("outcomes.paths"): "a.jsonl,b.jsonl",
        env_var_name("quality.reference"): "{accuracy: 0.9}",
        env_var_name("quality.window.max_age"): "1d",
    }
    cfg = load_config(write_yaml(tmp_path, WITH_STATE), env)  # a variable turns the section on
    assert cfg.outcomes is not None
    assert cfg.outcomes.paths == (str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl"))
    assert cfg.quality.reference == {"accuracy": 0.9}
    assert cfg.quality.window.max_age == 86400.0


def test_the_known_metrics_are_the_librarys() -> None:
    assert tuple(QUALITY_METRICS) == (
        *quality.CLASSIFICATION_METRICS,
        *quality.PROBABILITY_METRICS,
        *quality.REGRESSION_METRICS,
    )


def test_the_docs_table_names_the_defaults() -> None:
    assert config_docs.default_text("outcomes.paths") == "`logs.paths`"
    assert config_docs.default_text("outcomes.max_delay") == "`30d`"
    assert config_docs.default_text("outcomes.early_grace") == "`10m`"
    assert config_docs.default_text("outcomes.max_pending") == f"`{DEFAULT_MAX_PENDING}`"
    assert config_docs.default_text("quality.false_alarm_budget") == "`30d`"
    assert config_docs.default_text("quality.window.max_age") == "none"
    assert {k for k in KEYS if k.startswith(("outcomes.", "quality."))} == {
        "outcomes.paths", "outcomes.store", "outcomes.max_delay", "outcomes.max_pending",
        "outcomes.early_grace", "quality.window.max_samples", "quality.window.max_age",
        "quality.min_samples", "quality.reference", "quality.max_drop",
        "quality.false_alarm_budget",
    }  # fmt: skip


NO_STATE = WITH_STATE.replace(", state_file: state/checkpoint.json", "")


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        (WITH_STATE + "quality: {min_samples: 10}\n", {}, "quality: needs an outcomes: section"),
        (NO_STATE + "outcomes:\n", {}, "outcomes.store: required without logs.state_file"),
        (
            WITH_STATE + "outcomes:\nquality: {reference: {acuracy: 0.9}}\n",
            {},
            "quality.reference.acuracy: unknown quality metric (did you mean 'accuracy'?)",
        ),
        (
            WITH_STATE + "outcomes:\nquality: {reference: {zzz: 0.9}}\n",
            {},
            "quality.reference.zzz: unknown quality metric (one of: accuracy, ",
        ),
        (
            WITH_STATE + "outcomes:\nquality: {reference: {accuracy: 87}}\n",
            {},
            "quality.reference.accuracy: must lie in [0, 1], got 87 (a share: 0.87, not 87)",
        ),
        (
            WITH_STATE + "outcomes:\nquality: {reference: {rmse: -1}}\n",
            {},
            "quality.reference.rmse: must be at least 0, got -1",
        ),
        (
            WITH_STATE + "outcomes:\nquality: {reference: {accuracy: high}}\n",
            {},
            "quality.reference.accuracy: expected a finite number, got 'high' (str)",
        ),
        (
            WITH_STATE + "outcomes:\nquality: {reference: [accuracy]}\n",
            {},
            "quality.reference: expected a mapping of quality metric to its reference value",
        ),
        (
            WITH_STATE + "outcomes:\nquality: {max_drop: -0.1}\n",
            {},
            "quality.max_drop: expected a number >= 0, got -0.1 (float)",
        ),
        (
            WITH_STATE + "outcomes: {max_delay: 30days}\n",
            {},
            "outcomes.max_delay: bad duration '30days'",
        ),
        (WITH_STATE + "outcomes: {max_delay: 0s}\n", {}, "outcomes.max_delay: duration must be"),
        (
            WITH_STATE + "outcomes: {max_pending: 0}\n",
            {},
            "outcomes.max_pending: expected a positive integer",
        ),
        (WITH_STATE + "outcomes: {max_pendng: 5}\n", {}, "did you mean 'outcomes.max_pending'?"),
        (WITH_STATE + "outcomes: {paths: []}\n", {}, "outcomes.paths: expected a non-empty list"),
        (
            WITH_STATE + "drift: {interval: 1h}\noutcomes:\nquality: {false_alarm_budget: 1m}\n",
            {},
            "quality.false_alarm_budget: must be at least drift.interval",
        ),
        (
            WITH_STATE + "outcomes:\nquality: {window: {max_age: 1s}}\n",
            {},
            "quality.window.max_age: must be at least drift.interval",
        ),
        (
            WITH_STATE + "outcomes:\nquality: {windw: {}}\n",
            {},
            "quality.windw: unknown key (did you mean 'quality.window'?)",
        ),
        (
            WITH_STATE + "outcomes:\n",
            {env_var_name("quality.reference"): "{acuracy: 0.9}"},
            "MLOPS_EXPORTER_QUALITY_REFERENCE.acuracy: unknown quality metric",
        ),
        (
            WITH_STATE,
            {env_var_name("quality.min_samples"): "10"},
            "MLOPS_EXPORTER_QUALITY_MIN_SAMPLES: needs an outcomes: section",
        ),
        (
            NO_STATE,
            {env_var_name("outcomes.max_delay"): "1d"},
            "outcomes.store: required without logs.state_file",
        ),
    ],
)
def test_errors_are_one_line_naming_the_key(
    tmp_path: Path, text: str, env: dict[str, str], expected: str
) -> None:
    assert expected in config_error(write_yaml(tmp_path, text), env)


def test_a_store_without_a_state_file_is_allowed(tmp_path: Path) -> None:
    cfg = load_config(write_yaml(tmp_path, NO_STATE + "outcomes: {store: o.db}\n"), {})
    assert cfg.outcomes is not None and cfg.outcomes.store == str(tmp_path / "o.db")


TWO_MODELS = """\
logs: {paths: [logs/*.jsonl], state_file: state/checkpoint.json}
models:
  - {name: churn, reference: {path: ref.csv}, match: {service: churn-api}}
  - {name: fraud-v2.eu, reference: {path: ref.csv}, match: {service: fraud-api}}
outcomes: {}
"""


def test_several_models_each_get_a_store_named_after_them(tmp_path: Path) -> None:
    from exporter.model_outcomes import store_path

    cfg = load_config(write_yaml(tmp_path, TWO_MODELS), {})
    state = tmp_path / "state"
    assert [store_path(cfg, m.name) for m in cfg.model_list()] == [
        state / "checkpoint.outcomes.churn.db",
        state / "checkpoint.outcomes.fraud-v2.eu.db",
    ]
    one = load_config(write_yaml(tmp_path, WITH_STATE + "outcomes: {store: labels}\n"), {})
    assert store_path(one, "m") == tmp_path / "labels"  # one model: the path as written
    two = load_config(write_yaml(tmp_path, TWO_MODELS.replace("{}", "{store: o/labels}")), {})
    assert store_path(two, "churn") == tmp_path / "o" / "labels.churn.db"


@pytest.mark.parametrize("name", ["fraud/eu", "../x", ".hidden", "a b"])
def test_a_model_name_that_cannot_name_its_store_is_refused(tmp_path: Path, name: str) -> None:
    text = TWO_MODELS.replace("fraud-v2.eu", repr(name) if " " in name else name)
    error = config_error(write_yaml(tmp_path, text))
    assert f"models[1].name: {name!r}: with outcomes: and several models" in error


def test_a_model_entry_may_carry_its_own_quality_reference_and_max_drop(tmp_path: Path) -> None:
    text = TWO_MODELS.replace(
        "match: {service: churn-api}}",
        "match: {service: churn-api}, quality: {reference: {accuracy: 0.87}, max_drop: 0.02}}",
    )
    cfg = load_config(write_yaml(tmp_path, text + "quality: {reference: {accuracy: 0.5}}\n"), {})
    churn, fraud = cfg.model_list()
    assert (churn.quality_reference, churn.quality_max_drop) == ({"accuracy": 0.87}, 0.02)
    assert (fraud.quality_reference, fraud.quality_max_drop) == (None, None)
    assert cfg.quality.reference == {"accuracy": 0.5}  # the shared one, for fraud


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            "quality: {reference: {acuracy: 0.9}}",
            "models[1].quality.reference.acuracy: unknown quality metric (did you mean "
            "'accuracy'?)",
        ),
        (
            "quality: {reference: {accuracy: 87}}",
            "models[1].quality.reference.accuracy: must lie in [0, 1], got 87",
        ),
        ("quality: {max_drop: -1}", "models[1].quality.max_drop: expected a number >= 0"),
        ("quality: {min_samples: 5}", "models[1].quality.min_samples: unknown key"),
    ],
)
def test_a_model_entrys_quality_errors_name_the_entry(
    tmp_path: Path, entry: str, expected: str
) -> None:
    text = TWO_MODELS.replace(
        "match: {service: fraud-api}}", f"match: {{service: fraud-api}}, {entry}}}"
    )
    assert expected in config_error(write_yaml(tmp_path, text))


def test_a_model_entrys_quality_needs_the_outcomes_section(tmp_path: Path) -> None:
    text = TWO_MODELS.replace("outcomes: {}\n", "").replace(
        "match: {service: fraud-api}}", "match: {service: fraud-api}, quality: {max_drop: 0.1}}"
    )
    assert "models[1].quality: needs an outcomes: section" in config_error(
        write_yaml(tmp_path, text)
    )


def test_a_model_entry_may_carry_its_own_outcome_bounds(tmp_path: Path) -> None:
    text = TWO_MODELS.replace(
        "match: {service: fraud-api}}",
        "match: {service: fraud-api}, outcomes: {max_delay: 90d, max_pending: 500}}",
    ).replace("outcomes: {}\n", "outcomes: {max_delay: 2d, early_grace: 1m}\n")
    cfg = load_config(write_yaml(tmp_path, text), {})
    churn, fraud = (cfg.for_model(m).outcomes for m in cfg.model_list())
    assert churn is not None and fraud is not None
    assert (churn.max_delay, churn.max_pending, churn.early_grace) == (
        2 * 86400.0, DEFAULT_MAX_PENDING, 60.0,
    )  # fmt: skip
    # its own max_delay and max_pending; early_grace, paths and the store stay shared
    assert (fraud.max_delay, fraud.max_pending, fraud.early_grace) == (90 * 86400.0, 500, 60.0)
    assert (fraud.paths, fraud.store) == (churn.paths, churn.store)
    assert cfg.outcomes is not None and cfg.outcomes.max_delay == 2 * 86400.0


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("outcomes: {max_delay: 3weeks}", "models[1].outcomes.max_delay: bad duration '3weeks'"),
        ("outcomes: {max_pending: 0}", "models[1].outcomes.max_pending: expected a positive"),
        (
            "outcomes: {early_grace: 10mn}",
            "models[1].outcomes.early_grace: bad duration '10mn'",
        ),
        (
            "outcomes: {max_dealy: 1d}",
            "models[1].outcomes.max_dealy: unknown key (did you mean 'models[1].outcomes."
            "max_delay'?)",
        ),
        # where outcomes are read and stored is the shared section's
        ("outcomes: {store: f.db}", "models[1].outcomes.store: unknown key"),
        ("outcomes: {paths: [x]}", "models[1].outcomes.paths: unknown key"),
    ],
)
def test_a_model_entrys_outcome_bounds_errors_name_the_entry(
    tmp_path: Path, entry: str, expected: str
) -> None:
    text = TWO_MODELS.replace(
        "match: {service: fraud-api}}", f"match: {{service: fraud-api}}, {entry}}}"
    )
    assert expected in config_error(write_yaml(tmp_path, text))


def test_a_model_entrys_outcome_bounds_need_the_outcomes_section(tmp_path: Path) -> None:
    text = TWO_MODELS.replace("outcomes: {}\n", "").replace(
        "match: {service: fraud-api}}", "match: {service: fraud-api}, outcomes: {max_delay: 1d}}"
    )
    assert "models[1].outcomes: needs the shared outcomes: section" in config_error(
        write_yaml(tmp_path, text)
    )


@pytest.mark.parametrize(
    ("quality_section", "expected"),
    [
        (
            "{reference: {accuracy: 0.9}, max_drop: 0.95}",
            "quality.max_drop: 0.95 with reference accuracy 0.9: degraded would mean below "
            "-0.05, and accuracy is never below 0, so the verdict could never fire",
        ),
        (
            "{reference: {balanced_accuracy: 0.5}, max_drop: 0.5}",
            "quality.max_drop: 0.5 with reference balanced_accuracy 0.5: degraded would mean "
            "below 0",
        ),
        (
            "{reference: {brier: 0.1}, max_drop: 1.9}",
            "quality.max_drop: 1.9 with reference brier 0.1: degraded would mean above 2, "
            "and brier is never above 2",
        ),
    ],
)
def test_a_max_drop_no_value_of_the_metric_could_exceed_is_refused(
    tmp_path: Path, quality_section: str, expected: str
) -> None:
    # accepted before: the degradation alert looked armed and could never fire
    text = WITH_STATE + f"outcomes: {{}}\nquality: {quality_section}\n"
    assert expected in config_error(write_yaml(tmp_path, text))


def test_a_model_entrys_max_drop_is_checked_against_the_reference_it_is_judged_by(
    tmp_path: Path,
) -> None:
    shared = "quality: {reference: {accuracy: 0.3}}\n"
    text = TWO_MODELS.replace(
        "match: {service: fraud-api}}", "match: {service: fraud-api}, quality: {max_drop: 0.4}}"
    )
    assert "models[1].quality.max_drop: 0.4 with reference accuracy 0.3" in config_error(
        write_yaml(tmp_path, text + shared)
    )
    fine = text.replace("max_drop: 0.4", "max_drop: 0.2")
    load_config(write_yaml(tmp_path, fine + shared), {})  # 0.3 - 0.2 > 0: it can fire
