"""exporter.keyed_records.KeyedParser: prediction and outcome lines as outcome-store rows.

Each row carries the identity of its line (source, byte offset); a line the record parser
rejects gives no row, whatever the keyed decode makes of it.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from structlog.testing import capture_logs

from exporter.keyed_records import KeyedParser
from exporter.records import RecordParser

PARSER = RecordParser({"x": "numeric", "plan": "categorical"})
KEYED = KeyedParser(clock=lambda: 1234.5)
TS = "2026-01-01T00:00:00.000000Z"
T0 = 1767225600.0


def line(**fields: object) -> bytes:
    return orjson.dumps(fields)


def prediction(rid: object = "r1", prediction: object = None, **extra: object) -> bytes:
    record = {
        "timestamp": TS,
        "event": "prediction",
        "request_id": rid,
        "input_data": {"x": 1.5, "plan": "a"},
        "prediction": {"class": "yes", "probability": 0.75} if prediction is None else prediction,
        "latency_ms": 3,
        **extra,
    }
    if rid is None:
        del record["request_id"]
    return orjson.dumps(record)


def outcome(rid: object = "r1", actual: object = "yes", **extra: object) -> bytes:
    return line(timestamp=TS, event="outcome", request_id=rid, actual=actual, **extra)


def rows(*lines: bytes, start: int = 0):
    block = b"".join(x + b"\n" for x in lines)
    return KEYED.rows(block, "src", start, PARSER.parse_block(block), PARSER.parse), block


def test_rows_carry_what_the_join_needs_and_the_line_identity() -> None:
    lines = [
        prediction("r1", model_version="2.0"),
        b'{"event": "model_loaded"}',
        outcome("r1", "yes"),
        prediction("r2", {"class": 3, "probabilities": {"3": 0.6, "4": 0.4}}),
    ]
    got, block = rows(*lines, start=1000)
    p1, p2 = got.predictions
    assert (p1.request_id, p1.predicted, p1.probability, p1.model_version) == (
        "r1", "yes", 0.75, "2.0",
    )  # fmt: skip
    assert p1.time == T0 and p1.value is None and p1.probabilities is None
    assert (p2.predicted, p2.probability, p2.probabilities) == ("3", 0.6, {"3": 0.6, "4": 0.4})
    (o,) = got.outcomes
    assert (o.request_id, o.actual, o.actual_value, o.invalid, o.time) == (
        "r1", "yes", None, False, T0,
    )  # fmt: skip
    for row, text in ((p1, lines[0]), (o, lines[2]), (p2, lines[3])):
        assert row.source == "src"
        assert block[row.offset - 1000 :].startswith(text)  # the byte offset of its line
    assert got.confidence == [(T0, 0.75), (T0, 0.6)]


@pytest.mark.parametrize(
    ("logged", "predicted", "value"),
    [
        ({"class": "a"}, "a", None),
        ({"class": 1}, "1", None),
        ({"class": True}, "true", None),  # as the class counter labels it
        ("churn", "churn", None),  # a bare class
        (2, "2", None),
        (41.5, None, 41.5),  # a bare float: a regressor's value
        ({"value": 7}, None, 7.0),
        ({"value": 7, "class": "a"}, "a", 7.0),
        ([0.2, 0.8], None, None),  # a list holds probabilities, no prediction
        ({"score": 1}, None, None),  # neither: the store counts it invalid
    ],
)
def test_what_a_prediction_predicted(logged: object, predicted: str | None, value: float) -> None:
    got, _ = rows(prediction("r", logged))
    (row,) = got.predictions
    assert (row.predicted, row.value) == (predicted, value)


def test_request_ids_text_or_digits_anything_else_is_left_for_the_store_to_count() -> None:
    got, _ = rows(prediction("a"), prediction(7), prediction([1]), prediction(None))
    assert [r.request_id for r in got.predictions] == ["a", "7", ""]  # the last has none
    assert len(got.confidence) == 4  # the estimate takes every prediction


@pytest.mark.parametrize(
    ("actual", "label", "value", "invalid"),
    [
        ("churn", "churn", None, False),
        (1, "1", 1.0, False),
        (41.5, "41.5", 41.5, False),
        (True, "true", None, False),
        ({"a": 1}, None, None, True),
        ([1, 2], None, None, True),
        (None, None, None, False),  # no actual: the store counts it invalid
    ],
)
def test_what_an_outcome_says(actual: object, label: str, value: float, invalid: bool) -> None:
    got, _ = rows(outcome("r", actual))
    (row,) = got.outcomes
    assert (row.actual, row.actual_value, row.invalid) == (label, value, invalid)


def test_an_outcome_whose_number_no_float_holds_is_an_invalid_outcome() -> None:
    got, _ = rows(b'{"event": "outcome", "request_id": "r", "actual": 1e400}', outcome("s"))
    first, second = got.outcomes
    assert first.request_id == "r" and first.invalid
    assert second.request_id == "s" and not second.invalid


def test_bad_probabilities_are_left_out_and_the_prediction_kept() -> None:
    got, _ = rows(
        prediction("a", {"class": "x", "probability": 1.5}),
        prediction("b", {"class": "x", "probabilities": {"x": "high"}}),
        prediction("c", {"class": "x", "probability": True}),
        # not summing to 1 (logits, percentages, a class left out): left out, as in the log
        # contract (PROBABILITY_SUM_TOLERANCE); within the tolerance it is kept
        prediction("d", {"class": "x", "probabilities": {"x": 0.9, "y": 0.9}}),
        prediction("e", {"class": "x", "probabilities": {"x": 0.6}}),
        prediction("f", {"class": "x", "probabilities": {"x": 0.70004, "y": 0.3}}),
    )
    assert [(r.request_id, r.probability, r.probabilities) for r in got.predictions] == [
        ("a", None, None), ("b", None, None), ("c", None, None), ("d", None, None),
        ("e", None, None), ("f", 0.70004, {"x": 0.70004, "y": 0.3}),
    ]  # fmt: skip
    assert [p for _, p in got.confidence] == [0.70004]
    # each left-out probability is flagged, so the store counts it (not silent); f's is kept
    assert [r.probability_dropped for r in got.predictions] == [True] * 5 + [False]


def test_a_line_the_record_parser_rejects_gives_no_row() -> None:
    lines = [
        prediction("ok1"),
        prediction("bad-type", input_data={"x": "1.5"}),  # wrong_type for the drift parser
        b'{"event": "prediction", "request_id": "bad-utf8", "input_data": {"x": 1}, '
        b'"note": "\xff"}',  # encoding: judged on the whole line
        prediction("neg", latency_ms=-1),  # out_of_range
        prediction("obj", {"class": {"nested": 1}}),  # wrong_type: a class that is an object
        b'{"event": "outcome", "request_id": "bad-json", "actual": 1',  # cut short
        outcome("ok2"),
        b'{"event": "outcome", "request_id": "o-utf8", "actual": "y", "x": "\xfe"}',
        prediction("ok3"),
    ]
    block = b"".join(x + b"\n" for x in lines)
    batch = PARSER.parse_block(block)
    assert batch.n_predictions == 2 and batch.n_invalid == 6
    got = KEYED.rows(block, "src", 0, batch, PARSER.parse)
    assert [r.request_id for r in got.predictions] == ["ok1", "ok3"]
    assert [r.request_id for r in got.outcomes] == ["ok2"]
    for row in (*got.predictions, *got.outcomes):
        assert block[row.offset :].startswith(b'{"timestamp"')


def test_blank_lines_and_other_events_keep_the_offsets_right() -> None:
    lines = [b"", outcome("a"), b"   ", b'{"event": "x", "prediction": [1]}', prediction("b")]
    block = b"".join(x + b"\n" for x in lines)
    got = KEYED.rows(block, "s", 10, PARSER.parse_block(block), PARSER.parse)
    assert block[got.outcomes[0].offset - 10 :].startswith(lines[1])
    assert block[got.predictions[0].offset - 10 :].startswith(lines[4])


def test_a_missing_or_unusable_timestamp_is_the_ingest_time() -> None:
    got, _ = rows(
        line(event="outcome", request_id="a", actual=1),
        line(event="outcome", request_id="b", actual=1, timestamp="yesterday"),
        line(event="outcome", request_id="c", actual=1, timestamp=1700000000),
        b'{"event": "outcome", "request_id": "d", "actual": 1, "timestamp": 1' + b"0" * 400 + b"}",
    )
    assert [r.time for r in got.outcomes] == [1234.5, 1234.5, 1700000000.0, 1234.5]


def test_the_class_field_is_the_configured_one() -> None:
    keyed = KeyedParser(class_field="label")
    parser = RecordParser({"x": "numeric"}, class_field="label")
    block = prediction("r", {"label": "z", "class": "no"}) + b"\n"
    got = keyed.rows(block, "s", 0, parser.parse_block(block), parser.parse)
    assert got.predictions[0].predicted == "z"


# --- block(): the ingest loop's columnar path gives what rows() gives ------------------------

_SHAPES = [
    prediction("p1"),
    prediction("p2", {"class": "no", "probabilities": {"no": 0.6, "yes": 0.4}}),
    prediction("p3", {"class": 1, "probability": 1, "probabilities": {"0": 0, "1": 1}}),
    prediction("p4", {"class": True}),
    prediction("p5", {"value": 41.5}),
    prediction("p6", {"value": 3, "probability": 0.5}),
    prediction("p7", "bare-class"),
    prediction("p8", 7),
    prediction("p9", 2.5),
    prediction("p10", False),
    prediction("p11", {"probability": 0.9}),  # no class, no value: invalid, confidence kept
    prediction(12, {"class": "x"}, model_version="3"),
    prediction(None, {"class": "x", "probability": 0.3}),  # no row, but confidence
    prediction("", {"class": "x"}),
    prediction("p15", {"class": "y" * 200}),  # a label cut to MAX_CLASS_LABEL
    prediction("p16", {"class": "x", "probabilities": {"x": 0.5, "y" * 200: 0.5}}),
    prediction("p17", {"class": "x", "probability": 1.5}),
    prediction("p18", {"class": "x", "probabilities": {}}),
    prediction("p19", {"class": "x", "probabilities": {"x": True}}),
    prediction("p20", {"class": [1]}),
    prediction("p21", [0.2, 0.8]),
    prediction("p22", {"class": "x"}, model_version=2),
    prediction("p23", {"class": "x"}, timestamp=1700000000),
    prediction("p24", {"class": "x"}, timestamp="yesterday"),
    prediction("p25", {"value": 1e400}),
    prediction("p26", {"class": "x", "probabilities": {"x": 0.9, "y": 0.9}}),  # sums to 1.8
    prediction("p27", {"class": "x", "probability": 0.9, "probabilities": {"x": 0.9}}),
    prediction("p28", {"class": "x", "probabilities": [0.2, 0.8]}),  # a list: left out
    prediction("p29", {"class": "x", "probability": "high"}),
    prediction(None, {"class": "x", "probabilities": {"x": 0.9, "y": 0.9}}),  # no row: uncounted
    outcome("o1", "yes"),
    outcome("o2", 1),
    outcome("o3", 2.5),
    outcome("o4", True),
    outcome("o5", None),
    outcome("o6", {"a": 1}),
    outcome("o7", [1]),
    outcome(7, "yes"),
    outcome(None, "yes"),
    outcome("", "yes"),
    outcome("o11", "z" * 300),
    b'{"event": "outcome", "request_id": "o12", "actual": 1e400}',
    b'{"event": "outcome", "request_id": "o13", "actual": 1' + b"0" * 400 + b"}",  # no float
    outcome("o14", ""),  # an empty label: no actual
    line(event="model_loaded", version=3),
    line(event=7),
    line(level="info"),
]


def _records_of_rows(block: bytes, start: int) -> tuple[object, ...]:
    from exporter.outcomes import outcome_record, prediction_record

    got = KEYED.rows(block, "src", start, PARSER.parse_block(block), PARSER.parse)
    return (
        [r.offset for r in got.predictions],
        [prediction_record(r) for r in got.predictions],
        [r.offset for r in got.outcomes],
        [outcome_record(r) for r in got.outcomes],
        got.confidence,
        [r.offset for r in got.predictions if r.probability_dropped],
    )


def _records_of_block(block: bytes, start: int) -> tuple[object, ...]:
    got, confidence = KEYED.block(block, "src", start, PARSER.parse_block(block), PARSER.parse)
    assert got.source == "src"
    return (
        got.prediction_offsets, got.predictions, got.outcome_offsets, got.outcomes, confidence,
        got.dropped_offsets,
    )  # fmt: skip


@pytest.mark.parametrize("index", range(len(_SHAPES)))
def test_block_gives_the_records_rows_gives_for_each_shape(index: int) -> None:
    block = _SHAPES[index] + b"\n"
    assert _records_of_block(block, 7) == _records_of_rows(block, 7)


def test_block_gives_the_records_rows_gives_for_blocks_of_mixed_shapes() -> None:
    typed = [s for s in _SHAPES if _typed_ok(s + b"\n")]
    assert len(typed) >= 20  # most shapes take the fast path
    for lines in (typed, typed[::-1], _SHAPES, _SHAPES[::-1]):
        block = b"".join(x + b"\n" for x in lines)
        assert _records_of_block(block, 100) == _records_of_rows(block, 100)
    # with a line the record parser rejects among them: no record for it either way
    block = b"".join(x + b"\n" for x in [*typed, prediction("bad", input_data={"x": "1"})])
    assert _typed_ok(block)
    assert _records_of_block(block, 0) == _records_of_rows(block, 0)


def _typed_ok(block: bytes) -> bool:
    try:
        KEYED._typed.decode_lines(block)
    except Exception:
        return False
    return True


# --- several models: the match fields of each row -----------------------------------------------


def test_the_match_fields_of_each_row_are_read_for_routing() -> None:
    keyed = KeyedParser(clock=lambda: 1234.5, route_fields=("service", "shard"))
    block = b"\n".join([
        prediction("r1", service="churn-api", shard="3"),
        prediction(None, service="fraud-api"),  # no request id: its confidence only
        outcome("r1", service="churn-api", shard=3),  # a number is no text: absent
        outcome("r2"),
        b'{"event": "outcome", "request_id": "r3", "actual": 1e400, "service": "fraud-api"}',
    ]) + b"\n"  # fmt: skip
    got = keyed.rows(block, "f", 0, PARSER.parse_block(block), PARSER.parse)
    assert [r.request_id for r in got.predictions] == ["r1"]
    assert got.prediction_routes == [("churn-api", "3")]
    assert got.confidence_routes == [("churn-api", "3"), ("fraud-api", None)]
    assert [r.request_id for r in got.outcomes] == ["r1", "r2", "r3"]
    assert got.outcome_routes == [("churn-api", None), (None, None), ("fraud-api", None)]
    assert got.outcomes[2].invalid  # decoded in part, still routed


def test_without_match_fields_no_route_is_kept() -> None:
    block = prediction("r1", service="churn-api") + b"\n" + outcome("r1") + b"\n"
    got = KEYED.rows(block, "f", 0, PARSER.parse_block(block), PARSER.parse)
    assert len(got.predictions) == len(got.outcomes) == 1
    assert got.prediction_routes == got.outcome_routes == got.confidence_routes == []


def test_an_integer_actual_no_float_holds_and_an_empty_one_are_invalid_outcomes() -> None:
    # the typed path raised OverflowError on the first, and the block's every row was lost
    block = b"\n".join([
        prediction("r1", {"class": "a"}),
        b'{"event": "outcome", "request_id": "r1", "actual": 1' + b"0" * 400 + b"}",
        outcome("r1", ""),
        outcome("r1", "a"),
    ]) + b"\n"  # fmt: skip
    got, _ = KEYED.block(block, "src", 0, PARSER.parse_block(block), PARSER.parse)
    assert len(got.predictions) == 1 and got.predictions[0] is not None
    assert got.outcomes[:2] == [None, None] and got.outcomes[2] is not None
    assert _records_of_block(block, 0) == _records_of_rows(block, 0)


def test_a_line_that_makes_the_parser_raise_costs_that_line_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import exporter.keyed_records as kr

    real_typed, real_outcome = kr._typed_outcomes, kr._outcome

    def typed(keyed: list[Any], *args: Any) -> None:
        if any(r.request_id == "boom" for r in keyed):
            raise RuntimeError("a bug")
        real_typed(keyed, *args)

    def lenient(record: Any, *args: Any) -> Any:
        if record.request_id == "boom":
            raise RuntimeError("a bug")
        return real_outcome(record, *args)

    monkeypatch.setattr(kr, "_typed_outcomes", typed)
    monkeypatch.setattr(kr, "_outcome", lenient)
    lines = [prediction("r1", {"class": "a"}), outcome("boom", "a"), outcome("r1", "a")]
    block = b"\n".join(lines) + b"\n"
    with pytest.raises(RuntimeError):
        KEYED.block(block, "src", 5, PARSER.parse_block(block), PARSER.parse)
    with capture_logs() as logs:
        got, _ = KEYED.block_line_by_line(block, "src", 5, PARSER.parse, "app.jsonl")
        rows = KEYED.rows_line_by_line(block, "src", 5, PARSER.parse, "app.jsonl")
    assert got.prediction_offsets == [5] and got.outcome_offsets == [
        5 + len(lines[0]) + len(lines[1]) + 2
    ]
    assert [r.request_id for r in rows.predictions] == ["r1"]
    assert [(r.request_id, r.offset) for r in rows.outcomes] == [("r1", got.outcome_offsets[0])]
    failed = [e for e in logs if e["event"] == "outcome_line_failed"]
    assert [(e["file"], e["offset"]) for e in failed] == [("app.jsonl", 5 + len(lines[0]) + 1)] * 2


def test_a_boolean_class_finds_its_probability_under_the_json_key() -> None:
    # PredictionLogger writes {"class": true, "probabilities": {"true": 0.8, "false": 0.2}};
    # the label was "True", which no key matched: no estimate, no AUC, log loss or Brier
    block = b"\n".join([
        prediction("r1", {"class": True, "probabilities": {"true": 0.8, "false": 0.2}}),
        outcome("r1", True),
    ]) + b"\n"  # fmt: skip
    for got, confidence in (
        KEYED.block(block, "src", 0, PARSER.parse_block(block), PARSER.parse),
        _as_block(KEYED.rows(block, "src", 0, PARSER.parse_block(block), PARSER.parse)),
    ):
        ((rid, _, _, label, _, probability, _),) = got.predictions
        assert (rid, label, probability) == ("r1", "true", 0.8)
        assert [p for _, p in confidence] == [0.8]
        assert got.outcomes[0] is not None and got.outcomes[0][2] == "true"


def _as_block(rows: Any) -> tuple[Any, list[tuple[float, float]]]:
    from exporter.outcomes import KeyedBlock, outcome_record, prediction_record

    preds, outs = rows.predictions, rows.outcomes
    block = KeyedBlock(
        "src", [r.offset for r in preds], [prediction_record(r) for r in preds],
        [r.offset for r in outs], [outcome_record(r) for r in outs],
    )  # fmt: skip
    return block, rows.confidence
