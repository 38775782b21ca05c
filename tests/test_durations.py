"""One duration grammar, Prometheus's, at every entry point that takes a duration.

The entry points are the parser itself (``mlops_core.durations``), the exporter's config
(``drift.interval`` and the other duration keys), the in-process alerts (``cooldown`` and
the Alertmanager notifier's ``ends_after``) and the ``for:`` values of
``rules/thresholds.yml`` (and ``rules/generate.py --for``).  Each case below runs through
all of them, so they cannot disagree again: before, ``1h1h``, ``5s1h`` and ``1.5h`` passed
the config and the alerts but not the rules, and ``1y`` passed the rules only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.config import load_config
from exporter.errors import ConfigError
from mlops_core.alerts import AlertSystem
from mlops_core.durations import parse_duration
from mlops_core.errors import AlertConfigError, DurationError
from tests.test_rules import RULES, load_generator

ACCEPTED = [
    ("500ms", 0.5),
    ("30s", 30.0),
    ("5m", 300.0),
    ("1h", 3600.0),
    ("1h30m", 5400.0),
    ("2d", 2 * 86400.0),
    ("1w", 7 * 86400.0),
    ("1y", 365 * 86400.0),  # as in Prometheus: 365 days
    ("1y2w3d4h5m6s7ms", 365 * 86400 + 17 * 86400 + 4 * 3600 + 5 * 60 + 6.007),
    ("90m", 5400.0),  # a unit may exceed the next larger one
    ("5ms", 0.005),  # not "5m" and a stray "s"
]
REJECTED = [
    "1h1h",  # a unit twice
    "5s1h",  # smaller unit first
    "30m1h",
    "1ms1s",
    "1.5h",  # no fractions: write 1h30m
    ".5s",
    "1h 30m",  # no spaces
    " 30s",
    "-5m",  # no signs
    "+5m",
    "10",  # a string needs a unit
    "1H",  # units are lower case
    "1sec",
    "h",
    "",
]
GEN = load_generator()  # one copy: its ThresholdsError is the class the checks below expect
MINIMAL = "model: {name: m}\nlogs: {paths: [logs/*.jsonl]}\nreference: {path: ref.csv}\n"


# --- the entry points, each returning seconds or raising its own error type ----------------


def _parser(value: Any) -> float:
    return parse_duration(value)


def _exporter_config(value: Any, tmp_path: Path) -> float:
    """``drift.interval``; the window and the budget are raised so any interval is valid."""
    config = tmp_path / "config.yml"
    drift = {"interval": value, "window": {"max_age": "520w"}, "false_alarm_budget": "520w"}
    config.write_text(MINIMAL + yaml.safe_dump({"drift": drift}), encoding="utf-8")
    return load_config(config, {}).drift.interval


def _alerts_cooldown(value: Any) -> float:
    return AlertSystem.from_config(
        {"thresholds": {"m": {"warning": 1}}, "cooldown": value}
    ).cooldown_seconds


def _alertmanager_ends_after(value: Any) -> float:
    section = {
        "thresholds": {"m": {"warning": 1}},
        "alertmanager": {"url": "http://127.0.0.1:9093", "ends_after": value},
    }
    return AlertSystem.from_config(section).notifiers[0].ends_after


def _rules_for(value: Any, tmp_path: Path) -> str:
    """Loads thresholds.yml with one alert's ``for`` replaced; returns the rendered ``for``."""
    config = yaml.safe_load((RULES / "thresholds.yml").read_text(encoding="utf-8"))
    config["alerts"]["MlopsExporterDown"]["for"] = value
    path = tmp_path / "thresholds.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    rendered = yaml.safe_load(GEN.render(GEN.load_thresholds(path))["alerts.yml"])
    (rule,) = [r for r in rendered["groups"][0]["rules"] if r["alert"] == "MlopsExporterDown"]
    return rule["for"]


# --- accepted everywhere, with the same value ----------------------------------------------


@pytest.mark.parametrize(("text", "seconds"), ACCEPTED)
def test_accepted_durations_mean_the_same_everywhere(
    text: str, seconds: float, tmp_path: Path
) -> None:
    assert _parser(text) == pytest.approx(seconds, rel=1e-12)
    assert _exporter_config(text, tmp_path) == pytest.approx(seconds, rel=1e-12)
    assert _alerts_cooldown(text) == pytest.approx(seconds, rel=1e-12)
    assert _alertmanager_ends_after(text) == pytest.approx(seconds, rel=1e-12)
    assert _rules_for(text, tmp_path) == text  # written into the rule file as given


def test_sums_of_whole_milliseconds_are_exact() -> None:
    """Parts are added as integers, so 1h30m is 5400.0 itself, not 5400.000000000001."""
    assert parse_duration("1h30m") == 5400.0
    assert parse_duration("100ms") == 0.1
    assert parse_duration("1m1ms") == 60.001


# --- rejected everywhere, each in its own error style --------------------------------------


@pytest.mark.parametrize("text", REJECTED)
def test_rejected_durations_are_rejected_everywhere(text: str, tmp_path: Path) -> None:
    with pytest.raises(DurationError, match="bad duration"):
        _parser(text)
    with pytest.raises(ConfigError, match=r"^drift\.interval: bad duration"):
        _exporter_config(text, tmp_path)
    with pytest.raises(AlertConfigError, match=r"^alerts\.cooldown: bad duration"):
        _alerts_cooldown(text)
    with pytest.raises(AlertConfigError, match=r"^alerts\.alertmanager\.ends_after: bad duration"):
        _alertmanager_ends_after(text)
    with pytest.raises(GEN.ThresholdsError, match=r"alerts\.MlopsExporterDown\.for: expected"):
        _rules_for(text, tmp_path)


@pytest.mark.parametrize("bad", ["1h1h", "1.5h", "soon"])
def test_generate_for_option_takes_the_same_grammar(
    bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        GEN.main(["--for", bad, "--check"])
    assert exit_info.value.code == 2
    assert f"argument --for: expected a duration like 15m or 0s, got {bad!r}" in (
        capsys.readouterr().err
    )


def test_huge_durations_are_an_error_not_a_crash() -> None:
    for text in ("9" * 400 + "s", "9" * 5000 + "ms", "9" * 305 + "y"):
        with pytest.raises(DurationError, match="at most 100y"):
            parse_duration(text)


# --- a bare number: seconds where it always was, nowhere else ------------------------------


@pytest.mark.parametrize(("number", "seconds"), [(30, 30.0), (0.25, 0.25), (600, 600.0)])
def test_a_bare_number_is_seconds_in_the_config_and_the_alerts(
    number: float, seconds: float, tmp_path: Path
) -> None:
    assert _parser(number) == seconds
    assert _exporter_config(number, tmp_path) == seconds
    assert _alerts_cooldown(number) == seconds
    assert _alertmanager_ends_after(number) == seconds


@pytest.mark.parametrize("number", [30, 0, 1.5])
def test_a_bare_number_is_no_duration_in_a_rule_file(number: float, tmp_path: Path) -> None:
    """Prometheus would not load ``for: 30`` written back as a number; it never passed."""
    with pytest.raises(DurationError, match="with a unit"):
        parse_duration(number, allow_number=False)
    with pytest.raises(GEN.ThresholdsError, match=r"\.for: expected a duration like 15m"):
        _rules_for(number, tmp_path)


def test_a_number_as_text_needs_a_unit_everywhere(tmp_path: Path) -> None:
    """``"30"`` (a quoted YAML string) was never seconds; only an actual number is."""
    with pytest.raises(ConfigError, match="bad duration '30'"):
        _exporter_config("30", tmp_path)
    with pytest.raises(AlertConfigError, match=r"^alerts\.cooldown: bad duration '30'"):
        _alerts_cooldown("30")


@pytest.mark.parametrize("bad", [True, None, [1], -1, float("nan"), float("inf")])
def test_not_a_duration_at_all(bad: object) -> None:
    with pytest.raises(DurationError):
        parse_duration(bad)
    if bad is None:  # a YAML null is "not set" in every config section: the default applies
        assert _alerts_cooldown(bad) == 3600.0
        return
    with pytest.raises(AlertConfigError, match=r"^alerts\.cooldown: "):
        _alerts_cooldown(bad)


@pytest.mark.parametrize("value", ["101y", "10000000y", 4e9, 10**30])
def test_durations_beyond_100_years_are_refused_everywhere(value: Any, tmp_path: Path) -> None:
    """No caller can sleep, schedule or add that long (APScheduler, ``time_t``, timedelta)."""
    with pytest.raises(DurationError, match=r"duration must be at most 100y, got"):
        _parser(value)
    with pytest.raises(ConfigError, match=r"^drift\.interval: duration must be at most 100y"):
        _exporter_config(value, tmp_path)
    with pytest.raises(AlertConfigError, match=r"^alerts\.cooldown: duration must be at most"):
        _alerts_cooldown(value)


def test_100_years_itself_is_a_duration() -> None:
    assert parse_duration("100y") == 100 * 365 * 86400.0
    assert parse_duration("99y51w6d23h59m59s999ms") < parse_duration("100y")
