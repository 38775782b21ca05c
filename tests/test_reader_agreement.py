"""``mlops drift``'s lenient read of a prediction log and the exporter skip the same lines.

mlops_core/datafiles.py (``SKIP_REASONS``, ``_refused``) restates exporter/records.py's type
rules for prediction lines: the library cannot import the daemon's msgspec parser.  One
corpus of odd and hostile lines goes through both; the accepted lines must be the same, and
so must the reason wherever both refuse a line.  The differences that are deliberate are
listed in ``DELIBERATE`` with why, so a new one fails here instead of drifting in silently.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from exporter.records import RecordParser
from mlops_core.datafiles import read_data

FEATURES = {"x": "numeric", "plan": "categorical"}
_GOOD = b'{"event": "prediction", "input_data": {"x": 1.5, "plan": "a"}, "latency_ms": 3}'


def _p(input_data: str, extra: str = "") -> bytes:
    return f'{{"event": "prediction", "input_data": {input_data}{extra}}}'.encode()


#: (id, line); the first line of the file is always _GOOD, so the file is a prediction log
CORPUS: list[tuple[str, bytes]] = [
    ("good", _GOOD),
    ("bad_json", b"{bad json"),
    ("cut_short", b'{"event": "prediction", "input_data": {"x": 1'),
    ("not_utf8_in_a_feature", b'{"event": "prediction", "input_data": {"plan": "\xff"}}'),
    ("not_utf8_unread", b'{"event": "prediction", "input_data": {"x": 1}, "note": "\xfe"}'),
    ("not_an_object_list", b"[1, 2]"),
    ("not_an_object_string", b'"text"'),
    ("not_an_object_null", b"null"),
    ("plain_text_starting_with_a_number", b"2026-12-01 INFO predicted class 1"),
    ("two_numbers", b"12 34"),
    ("a_number", b"12"),
    ("string_number", _p('{"x": "1.5"}')),
    ("bool_for_numeric", _p('{"x": true}')),
    ("object_for_numeric", _p('{"x": {"v": 1}}')),
    ("null_numeric", _p('{"x": null}')),
    ("int_numeric", _p('{"x": 3}')),
    ("feature_absent", _p('{"other": 1}')),
    ("nested_unread_key", _p('{"x": 1, "blob": {"a": [1, 2]}}')),
    ("int_category", _p('{"plan": 3}')),
    ("bool_category", _p('{"plan": false}')),
    ("float_category", _p('{"plan": 1.5}')),
    ("list_category", _p('{"plan": ["a"]}')),
    ("nan_feature", _p('{"x": NaN}')),
    ("infinity_unread", _p('{"x": 1}', ', "score": Infinity')),
    ("1e400_feature", _p('{"x": 1e400}')),
    ("1e400_unread", _p('{"x": 1}', ', "score": 1e400')),
    ("huge_int_unread", _p('{"x": 1}', ', "n": 1' + "0" * 5000)),
    ("huge_int_numeric_past_the_digit_limit", _p('{"x": 1' + "0" * 5000 + "}")),
    ("duplicate_key", _p('{"x": "a", "x": 1}')),
    ("huge_int_feature", _p('{"x": 1' + "0" * 400 + "}")),
    ("too_deep", _p('{"x": 1}', ', "deep": ' + "[" * 5000 + "]" * 5000)),
    ("no_input_data", b'{"event": "prediction", "latency_ms": 3}'),
    ("input_data_list", _p("[1, 2]")),
    ("input_data_number", _p("5")),
    ("empty_object", b"{}"),
    ("input_data_null_no_event", b'{"input_data": null}'),
    ("other_event", b'{"event": "health_check", "input_data": {"x": "up"}}'),
    ("non_string_event", b'{"event": 5, "input_data": {"x": 1}}'),
    ("no_event", b'{"input_data": {"x": 2.0, "plan": "b"}}'),
    ("null_event", b'{"event": null, "input_data": {"x": 2.0}}'),
    ("string_latency", _p('{"x": 1}', ', "latency_ms": "fast"')),
    ("negative_latency", _p('{"x": 1}', ', "latency_ms": -1')),
    ("object_timestamp", _p('{"x": 1}', ', "timestamp": {}')),
    ("object_class", _p('{"x": 1}', ', "prediction": {"class": {}}')),
    ("crlf", _GOOD + b"\r"),
]

#: lines the two read differently on purpose: id -> why (both verdicts are asserted below)
DELIBERATE = {
    # mlops drift reads files a person wrote: a line of input_data without an event is data
    # there (as it is in a reference); the exporter follows a model server's log, whose
    # predictions say what they are, and counts it missing_field (docs/drift.md)
    "no_event": ("prediction", "missing_field"),
    "null_event": ("prediction", "missing_field"),
    # only the reference's features are judged by mlops drift: the fields outside
    # input_data feed the exporter's latency and class metrics, which a drift test has not
    "string_latency": ("prediction", "wrong_type"),
    "negative_latency": ("prediction", "out_of_range"),
    "object_timestamp": ("prediction", "wrong_type"),
    "object_class": ("prediction", "wrong_type"),
    # JSON leaves duplicate keys undefined (RFC 8259: SHOULD be unique) and no logger of
    # this project writes them: Python's json keeps the last value, msgspec checks each
    "duplicate_key": ("prediction", "wrong_type"),
}


def _exporter_verdict(parser: RecordParser, line: bytes) -> str:
    batch = parser.parse([line])
    if batch.n_predictions:
        return "prediction"
    if batch.n_other_events:
        return "other"
    [(reason, _)] = batch.invalid.items()
    return reason


def _drift_verdicts(tmp_path: Path) -> dict[str, str]:
    """Each corpus line's verdict in one file (line n + 2 is CORPUS[n]): read together, as
    ``mlops drift`` reads a log, so one line's verdict cannot lean on its neighbours."""
    path = tmp_path / "current.jsonl"
    path.write_bytes(b"\n".join([_GOOD, *(line for _, line in CORPUS)]) + b"\n")
    data = read_data(path, kinds=FEATURES, skip_bad_lines=True)
    accepted = set(data.lines or [])
    verdicts = {}
    for number, (name, line) in enumerate(CORPUS, 2):
        if number in accepted:
            verdicts[name] = "prediction"
            continue
        single = tmp_path / f"{name}.jsonl"  # the reason: alone with a good line
        single.write_bytes(_GOOD + b"\n" + line + b"\n")
        skipped = read_data(single, kinds=FEATURES, skip_bad_lines=True).skipped
        verdicts[name] = next(iter(skipped), "other")
    return verdicts


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, str]]:
    drift = _drift_verdicts(tmp_path_factory.mktemp("agreement"))
    parser = RecordParser(FEATURES)
    return {name: (drift[name], _exporter_verdict(parser, line)) for name, line in CORPUS}


def test_both_readers_accept_the_same_lines(verdicts: dict[str, tuple[str, str]]) -> None:
    def accepted(side: int) -> set[str]:
        return {n for n, v in verdicts.items() if v[side] == "prediction" and n not in DELIBERATE}

    assert accepted(0) == accepted(1)


def test_both_readers_name_the_same_reason(verdicts: dict[str, tuple[str, str]]) -> None:
    named = ("prediction", "other")
    differ = {
        name: pair
        for name, pair in verdicts.items()
        if name not in DELIBERATE
        and pair[0] not in named
        and pair[1] not in named
        and pair[0] != pair[1]
    }
    assert differ == {}
    skipped_vs_other = {
        n: v
        for n, v in verdicts.items()
        if n not in DELIBERATE and (v[0] == "other") != (v[1] == "other")
    }
    assert skipped_vs_other == {}


def test_the_deliberate_differences_are_still_what_they_say(
    verdicts: dict[str, tuple[str, str]],
) -> None:
    """If one of them goes away (one reader changed), its entry must go too."""
    assert {name: verdicts[name] for name in DELIBERATE} == DELIBERATE


def test_the_corpus_covers_every_reason_the_drift_reader_names(
    verdicts: dict[str, tuple[str, str]],
) -> None:
    from mlops_core.datafiles import SKIP_REASONS

    assert set(SKIP_REASONS) <= {v[0] for v in verdicts.values()}
    assert Counter(v[0] for v in verdicts.values())["prediction"] > 5
    json.dumps(verdicts)  # plain strings only
