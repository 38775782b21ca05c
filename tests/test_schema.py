"""mlops_core.schema: typed config sections and the one error style every config shares."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
import pytest
from msgspec import Meta

from mlops_core import schema
from mlops_core.schema import Duration, FiniteNumber, Parse, PositiveDuration, Schema, StrMap


class Oops(ValueError):
    """The caller's own error class: convert raises it, never msgspec's."""


class Window(Schema, frozen=True):
    max_samples: Annotated[int, Meta(ge=1, description="a positive integer")] = 100
    max_age: PositiveDuration = 3600.0


class Entry(Schema, frozen=True):
    level: FiniteNumber
    direction: Literal["above", "below"] = "above"


class Section(Schema, frozen=True):
    name: schema.Text
    window: Window = msgspec.field(default_factory=Window)
    interval: Duration = 30.0
    tests: tuple[Literal["ks", "psi"], ...] = ("ks",)
    entries: dict[str, Entry] = msgspec.field(default_factory=dict)
    labels: StrMap = msgspec.field(default_factory=dict)
    password: Annotated[str, Meta(pattern="^[$]2", extra={"secret": True})] | None = None
    extra: Any = None


def error(data: Any, **kwargs: Any) -> str:
    with pytest.raises(Oops) as info:
        schema.convert(data, Section, error=Oops, **kwargs)
    message = str(info.value)
    assert "\n" not in message and "`" not in message, message  # no msgspec wording
    return message


def test_a_good_mapping_becomes_a_frozen_struct_with_defaults() -> None:
    read = schema.convert({"name": "m", "window": {"max_age": "5m"}}, Section, error=Oops)
    assert read == Section(name="m", window=Window(max_age=300.0))
    assert read.window.max_samples == 100 and read.interval == 30.0
    with pytest.raises(AttributeError):
        read.name = "other"  # type: ignore[misc]


def test_null_means_not_set_so_the_default_applies() -> None:
    read = schema.convert({"name": "m", "window": None, "interval": None}, Section, error=Oops)
    assert read.window == Window() and read.interval == 30.0


def test_an_unknown_key_gets_the_closest_known_key_by_its_dotted_path() -> None:
    assert error({"name": "m", "window": {"max_samles": 5}}) == (
        "window.max_samles: unknown key (did you mean 'window.max_samples'?)"
    )


def test_a_far_fetched_key_is_not_suggested_the_known_keys_are_listed() -> None:
    assert error({"name": "m", "colour": "red"}) == (
        "colour: unknown key (expected one of: name, window, interval, tests, entries, labels, "
        "password, extra)"
    )


def test_inside_a_free_form_mapping_the_suggestion_starts_at_the_entry() -> None:
    message = error({"name": "m", "entries": {"lat": {"levl": 1}}})
    assert message == "entries.lat.levl: unknown key (did you mean 'level'?)"


def test_a_wrong_value_says_what_was_expected_and_what_was_given() -> None:
    assert error({"name": "m", "window": {"max_samples": 0}}) == (
        "window.max_samples: expected a positive integer, got 0 (int)"
    )
    assert error({"name": "m", "window": {"max_samples": True}}) == (
        "window.max_samples: expected a positive integer, got True (bool)"
    )
    assert error({"name": ""}) == "name: expected a non-empty string, got '' (str)"
    assert error({"name": "m", "window": 5}) == "window: expected a mapping, got 5 (int)"
    assert error({"name": "m", "entries": {"a": {"level": "x"}}}) == (
        "entries.a.level: expected a finite number, got 'x' (str)"
    )


def test_a_choice_lists_the_choices_and_suggests_a_close_one() -> None:
    assert error({"name": "m", "tests": ["ks", "pssi"]}) == (
        "tests[1]: expected one of ks, psi, got 'pssi' (did you mean 'psi'?)"
    )
    assert error({"name": "m", "tests": ["pis"]}) == "tests[0]: expected one of ks, psi, got 'pis'"
    assert error({"name": "m", "entries": {"a": {"level": 1, "direction": "up"}}}) == (
        "entries.a.direction: expected one of above, below, got 'up'"
    )


def test_parse_functions_run_first_and_their_message_follows_the_key() -> None:
    assert error({"name": "m", "interval": "3x"}).startswith("interval: bad duration '3x'")
    assert error({"name": "m", "window": {"max_age": "0s"}}) == (
        "window.max_age: duration must be positive, got '0s'"
    )
    read = schema.convert({"name": "m", "labels": {"retries": 5}}, Section, error=Oops)
    assert read.labels == {"retries": "5"}


def test_a_missing_required_key_and_a_missing_section_name_the_key() -> None:
    assert error({}) == "name: required key missing"
    message = error({}, missing=lambda key: f"required key missing (or set ENV_{key.upper()})")
    assert message == "name: required key missing (or set ENV_NAME)"

    class Outer(Schema, frozen=True):
        inner: Entry

    with pytest.raises(Oops, match=r"^inner\.level: required key missing$"):
        schema.convert({}, Outer, error=Oops)


class Stored(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """A document the program writes and reads back (the registry's metadata)."""

    staging: str | None  # required, may be null
    seq: int = 0


def test_a_required_key_that_may_be_null_must_be_written_and_null_is_its_value() -> None:
    assert schema.convert({"staging": None}, Stored, error=Oops) == Stored(staging=None)
    with pytest.raises(Oops, match=r"^staging: required key missing$"):
        schema.convert({"seq": 1}, Stored, error=Oops)


def test_a_struct_that_allows_unknown_keys_lets_them_pass_a_schema_does_not() -> None:
    read = schema.convert({"staging": "1", "added_later": 1}, Stored, error=Oops)
    assert read == Stored(staging="1")
    assert error({"name": "m", "added_later": 1}).startswith("added_later: unknown key")


def test_at_source_labels_and_removed_keys() -> None:
    assert error({"name": 5}, at="alerts", source="a.yml") == (
        "a.yml: alerts.name: expected a non-empty string, got 5 (int)"
    )
    labels = {"tests": "ENV_TESTS"}
    assert error({"name": "m", "tests": ["ks", "x"]}, labels=labels).startswith(
        "ENV_TESTS[1]: expected one of ks, psi"
    )
    removed = {"window.combine": "removed: use window.max_age"}
    assert error({"name": "m", "window": {"combine": 1}}, removed=removed) == (
        "window.combine: removed: use window.max_age"
    )


def test_a_value_marked_secret_is_never_echoed() -> None:
    message = error({"name": "m", "password": "hunter2"})
    assert message == "password: expected a string, got a str (not shown)"


def test_a_struct_read_already_passes_through() -> None:
    read = schema.convert({"name": "m"}, Section, error=Oops)
    assert schema.convert(read, Section, error=Oops) is read
    entries = {"a": Entry(level=1.0)}
    assert schema.convert(entries, dict[str, Entry], error=Oops) == entries


def test_top_level_that_is_not_a_mapping() -> None:
    assert error([1], source="f.yml") == "f.yml: expected a mapping, got [1] (list)"


def test_leaves_are_every_dotted_key_in_declaration_order() -> None:
    assert list(schema.leaves(Section)) == [
        "name", "window.max_samples", "window.max_age", "interval", "tests", "entries",
        "labels", "password", "extra",
    ]  # fmt: skip


def test_unwrap_collects_parse_and_meta_of_nested_annotations() -> None:
    base, extras = schema.unwrap(Annotated[PositiveDuration, Meta(description="d")])
    assert base is float
    assert [type(e) for e in extras] == [Parse, Meta]


@pytest.mark.parametrize(
    ("word", "choices", "hint"),
    [("intervall", ["interval", "window"], " (did you mean 'interval'?)"), ("zzz", ["a"], "")],
)
def test_did_you_mean_suggests_close_matches_only(word: str, choices: list[str], hint: str) -> None:
    assert schema.did_you_mean(word, choices) == hint
