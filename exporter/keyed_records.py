"""Prediction and outcome lines as rows for the outcome store (with an ``outcomes:`` section).

:class:`KeyedParser` reads what the join by ``request_id`` needs from the lines the
:class:`~exporter.records.RecordParser` judged: a line it rejected gives no row.  Without an
``outcomes:`` section nothing here runs.  :meth:`KeyedParser.rows` is the reference (one
typed row per line, with the routing fields of several models); :meth:`KeyedParser.block`
the ingest loop's columnar path, the same records several times faster.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Annotated, Any, TypeVar

import msgspec
import orjson
import structlog

from exporter.outcomes import (
    KeyedBlock,
    OutcomeRow,
    PredictionRow,
    outcome_record,
    prediction_record,
)
from exporter.records import (
    DECODE_ERRORS,
    MAX_CLASS_LABEL,
    ParsedBatch,
    class_label,
    has_line_longer_than,
    is_utf8,
    timestamps_from,
)
from mlops_core.logging import PROBABILITY_SUM_TOLERANCE

# --- rows for the outcome store (the outcomes: section) -----------------------------------------
#
# Only built when outcomes are joined: without an outcomes: section nothing below runs, and
# exporter.records' parser does exactly what it did before.  A second, small decode of each block
# (msgspec skips input_data, the bulk of a line, without materialising it) reads what the
# join needs; the verdicts stay that parser's: a line it rejected gives no row.

OUTCOME_EVENT = "outcome"
_T = TypeVar("_T")

_log = structlog.get_logger("exporter.outcomes")


@dataclass(frozen=True, slots=True)
class KeyedRows:
    """What one block gives the outcome store, in line order.

    ``confidence`` holds, for every accepted prediction that logged the probability of its
    predicted class (with a ``request_id`` or not), ``(timestamp, probability)``: the input
    of the estimated accuracy.

    With ``route_fields`` (several models), ``*_routes[i]`` holds the values of those fields
    in the record of ``predictions[i]`` (``outcomes[i]``, ``confidence[i]``), each its text or
    ``None`` as :class:`~exporter.routing.Router` compares them; without, they are empty.
    """

    predictions: list[PredictionRow]
    outcomes: list[OutcomeRow]
    confidence: list[tuple[float, float]]
    prediction_routes: list[tuple[str | None, ...]] = dataclasses.field(default_factory=list)
    outcome_routes: list[tuple[str | None, ...]] = dataclasses.field(default_factory=list)
    confidence_routes: list[tuple[str | None, ...]] = dataclasses.field(default_factory=list)


class KeyedParser:
    """Prediction lines with a ``request_id`` -> :class:`~exporter.outcomes.PredictionRow`,
    ``outcome`` lines -> :class:`~exporter.outcomes.OutcomeRow`, each with its line identity.

    What a row holds:

    - a prediction: the record's timestamp (the ingest time when it has none that is
      usable, as for the window), ``model_version``, the predicted class as the exporter
      labels classes (``prediction.<class_field>``, or a bare string, integer or boolean)
      or the value of a regressor (``prediction.value``, or a bare float), and the
      probability of the predicted class (``probability``, else ``probabilities[class]``)
      and the ``probabilities`` mapping when they are finite numbers in [0, 1], the
      mapping's summing to 1 (a bad one is left out, the prediction kept);
    - an outcome: its timestamp, and ``actual`` as a class label and, when it is a number,
      as a value; an ``actual`` that is an object or a list makes the row ``invalid``.

    A ``request_id`` is text; an integer is taken as its digits, as ``PredictionLogger``
    writes it; anything else makes the row invalid (counted by the store).  A prediction
    without ``request_id`` gives no row: nothing could ever join it.

    :meth:`rows` is the reference; the ingest loop uses :meth:`block`, the same records as
    plain tuples in columns, several times faster on the usual lines.  With several models
    the ingest loop uses :meth:`rows`, whose ``route_fields`` (the
    :class:`~exporter.routing.Router`'s fields) are read into :class:`KeyedRows`'
    ``*_routes``.
    """

    def __init__(
        self,
        *,
        class_field: str = "class",
        max_line_bytes: int = 1 << 20,
        clock: Callable[[], float] = time.time,
        route_fields: Sequence[str] = (),
    ) -> None:
        self.class_field = class_field
        self.max_line_bytes = max_line_bytes
        self._clock = clock
        self.route_fields = tuple(route_fields)
        fields: list[tuple[str, Any, Any]] = [
            (name, Any, None)
            for name in ("event", "timestamp", "request_id", "model_version", "prediction")
        ]
        # each match field under an attribute of its own, so any name (or a clash) decodes
        routes = [(f"route_{i}", Any, None) for i in range(len(self.route_fields))]
        rename = {f"route_{i}": name for i, name in enumerate(self.route_fields)}
        self._routes = len(routes)
        names = [name for name, _, _ in routes]
        self._route_getter = attrgetter(*names) if len(names) > 1 else None
        self._route_name = names[0] if len(names) == 1 else None
        self._decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(
            msgspec.defstruct(
                "KeyedRecord", [*fields, ("actual", Any, None), *routes], gc=False, rename=rename
            )
        )
        self._typed, self._prediction_type = _typed_decoder(class_field)
        # for a line the full decoder refuses (1e400 in `actual`): is it an outcome, of whom?
        self._event_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(
            msgspec.defstruct(
                "KeyedEvent", fields[:1] + fields[2:3] + routes, gc=False, rename=rename
            )
        )

    def rows(
        self,
        block: bytes,
        source: str,
        start: int,
        batch: ParsedBatch,
        verdicts: Callable[[list[bytes]], ParsedBatch],
    ) -> KeyedRows:
        """The rows of ``block``, whose first line starts at byte ``start`` of ``source``.

        ``batch`` is :meth:`RecordParser.parse_block`'s result for the same block and
        ``verdicts`` that parser's :meth:`RecordParser.parse`: when the block held a line
        the parser rejected, the candidate lines are re-judged by it (in halves, so a few
        bad lines cost a few parses), and a rejected line gives no row.
        """
        now = self._clock()
        lines, offsets, records = self._decode(block, start)
        candidates = [i for i, r in enumerate(records) if r is not None and _keyed(r.event)]
        if batch.invalid and candidates:
            kept = _accepted([lines[i] for i in candidates], verdicts)
            candidates = [i for i, ok in zip(candidates, kept, strict=True) if ok]
        predictions: list[PredictionRow] = []
        outcomes: list[OutcomeRow] = []
        confidence: list[tuple[float, float]] = []
        n_routes = self._routes
        p_routes: list[tuple[str | None, ...]] = []
        o_routes: list[tuple[str | None, ...]] = []
        c_routes: list[tuple[str | None, ...]] = []
        # converted together, as the window converts them (ISO 8601 with Z in one numpy call)
        raw = [records[i].timestamp for i in candidates]
        times = timestamps_from([_number(t) if type(t) is int else t for t in raw], now).tolist()
        for i, t in zip(candidates, times, strict=True):
            record = records[i]
            route = self._route_of(record) if n_routes else None
            if record.event == "prediction":
                row = self._prediction(record, t, source, offsets[i])
                if row.probability is not None:
                    confidence.append((t, row.probability))
                    if route is not None:
                        c_routes.append(route)
                if record.request_id is not None:
                    predictions.append(row)
                    if route is not None:
                        p_routes.append(route)
            else:
                outcomes.append(_outcome(record, t, source, offsets[i]))
                if route is not None:
                    o_routes.append(route)
        return KeyedRows(predictions, outcomes, confidence, p_routes, o_routes, c_routes)

    def block(
        self,
        block: bytes,
        source: str,
        start: int,
        batch: ParsedBatch,
        verdicts: Callable[[list[bytes]], ParsedBatch],
    ) -> tuple[KeyedBlock, list[tuple[float, float]]]:
        """:meth:`rows` as the store's :class:`~exporter.outcomes.KeyedBlock`, with the
        ``confidence`` pairs: the ingest loop's path, the same records (tested).

        A block whose every line fits the usual shapes (see :func:`_typed_decoder`) is
        decoded with the checks done by ``msgspec`` in C and its columns gathered without a
        Python object per line; any other block goes through :meth:`rows`.
        """
        lines, records = self._whole(block, self._typed)
        if records is None:
            return self._block_of_rows(block, source, start, batch, verdicts)
        now = self._clock()
        offsets = list(itertools.accumulate((len(line) + 1 for line in lines[:-1]), initial=start))
        events = list(map(_EVENT, records))
        candidates = [i for i, e in enumerate(events) if e == "prediction" or e == OUTCOME_EVENT]
        if batch.invalid and candidates:
            kept = _accepted([lines[i] for i in candidates], verdicts)
            candidates = [i for i, ok in zip(candidates, kept, strict=True) if ok]
        keyed = [records[i] for i in candidates]
        raw = list(map(_TIMESTAMP, keyed))
        if set(map(type, raw)) != {str}:
            raw = [_number(t) if type(t) is int else t for t in raw]
        times: list[float] = timestamps_from(raw, now).tolist()
        p_idx = [k for k, i in enumerate(candidates) if events[i] == "prediction"]
        o_idx = [k for k, i in enumerate(candidates) if events[i] != "prediction"]
        out = KeyedBlock(source, [], [], [], [])
        confidence: list[tuple[float, float]] = []
        if p_idx:
            confidence = self._typed_predictions(keyed, times, candidates, offsets, p_idx, out)
        if o_idx:
            _typed_outcomes(keyed, times, candidates, offsets, o_idx, out)
        return out, confidence

    def block_line_by_line(
        self,
        block: bytes,
        source: str,
        start: int,
        verdicts: Callable[[list[bytes]], ParsedBatch],
        path: str,
    ) -> tuple[KeyedBlock, list[tuple[float, float]]]:
        """:meth:`block` one line at a time, after it raised for the whole block (a bug a
        hostile line triggers): each line that raises alone is logged and costs itself only,
        never the other lines of its block (they were all lost before)."""
        out = KeyedBlock(source, [], [], [], [])
        confidence: list[tuple[float, float]] = []
        for part, pairs in _line_by_line(block, start, path, verdicts, self.block, source):
            for name in _KEYED_BLOCK_COLUMNS:
                getattr(out, name).extend(getattr(part, name))
            confidence += pairs
        return out, confidence

    def rows_line_by_line(
        self,
        block: bytes,
        source: str,
        start: int,
        verdicts: Callable[[list[bytes]], ParsedBatch],
        path: str,
    ) -> KeyedRows:
        """:meth:`rows` one line at a time, as :meth:`block_line_by_line`."""
        out = KeyedRows([], [], [])
        for part in _line_by_line(block, start, path, verdicts, self.rows, source):
            for name in (f.name for f in dataclasses.fields(KeyedRows)):
                getattr(out, name).extend(getattr(part, name))
        return out

    def _typed_predictions(
        self,
        keyed: list[Any],
        times: list[float],
        candidates: list[int],
        offsets: list[int],
        p_idx: list[int],
        out: KeyedBlock,
    ) -> list[tuple[float, float]]:
        """The prediction records of a typed block into ``out``; returns the confidence."""
        recs = [keyed[k] for k in p_idx]
        t: list[Any] = [times[k] for k in p_idx]
        shaped: list[Any] = list(map(_PREDICTION, recs))
        n = len(recs)
        label: list[Any]
        value: list[Any]
        probability: list[Any]
        mapping: list[Any]
        if set(map(type, shaped)) == {self._prediction_type}:
            label = _labels(list(map(_CLS, shaped)))
            value = list(map(_VALUE, shaped))
            probability = list(map(_PROBABILITY, shaped))
            mapping = list(map(_PROBABILITIES, shaped))
        else:  # bare predictions: a float is a value, anything else a class
            label, value, probability, mapping = [], [], [None] * n, [None] * n
            for p in shaped:
                if type(p) is self._prediction_type:
                    label.append(_label_of(p.cls))
                    value.append(p.value)
                else:
                    label.append(None if type(p) is float else _label_of(p))
                    value.append(p if type(p) is float else None)
            for i, p in enumerate(shaped):
                if type(p) is self._prediction_type:
                    probability[i], mapping[i] = p.probability, p.probabilities
        dropped: list[int] = []  # positions whose mapping does not sum to 1: left out
        if any(m is not None and not _sums_to_one(m) for m in mapping):
            dropped = [i for i, m in enumerate(mapping) if m is not None and not _sums_to_one(m)]
            for i in dropped:
                mapping[i] = None
        for i in [i for i, p in enumerate(probability) if p is None and mapping[i] is not None]:
            if label[i] is not None:
                probability[i] = mapping[i].get(label[i])
        confidence = [(ti, p) for ti, p in zip(t, probability, strict=True) if p is not None]
        rids: list[Any] = list(map(_REQUEST_ID, recs))
        if dropped:  # counted among the predictions that get a row (with a request_id)
            out.dropped_offsets = [
                offsets[candidates[p_idx[i]]] for i in dropped if rids[i] is not None
            ]
        if None in rids:  # a prediction without request_id: no row, nothing could join it
            keep = [i for i, rid in enumerate(rids) if rid is not None]
            recs, rids, t, label, value, probability, mapping = (
                [column[i] for i in keep]
                for column in (recs, rids, t, label, value, probability, mapping)
            )
            p_idx = [p_idx[i] for i in keep]
        if set(map(type, rids)) != {str}:
            rids = [_request_id(r) for r in rids]
        versions = list(map(_MODEL_VERSION, recs))
        texts = [None if m is None else _dumps(m).decode() for m in mapping]
        out.prediction_offsets = [offsets[candidates[k]] for k in p_idx]
        out.predictions = [
            r if r[0] and (r[3] is not None or r[4] is not None) else None
            for r in zip(rids, t, versions, label, value, probability, texts, strict=True)
        ]
        return confidence

    def _block_of_rows(
        self,
        block: bytes,
        source: str,
        start: int,
        batch: ParsedBatch,
        verdicts: Callable[[list[bytes]], ParsedBatch],
    ) -> tuple[KeyedBlock, list[tuple[float, float]]]:
        """:meth:`block` for a block with an unusual line: through :meth:`rows`."""
        rows = self.rows(block, source, start, batch, verdicts)
        return (
            KeyedBlock(
                source,
                [row.offset for row in rows.predictions],
                [prediction_record(row) for row in rows.predictions],
                [row.offset for row in rows.outcomes],
                [outcome_record(row) for row in rows.outcomes],
                [row.offset for row in rows.predictions if row.probability_dropped],
            ),
            rows.confidence,
        )

    def _decode(self, block: bytes, start: int) -> tuple[list[bytes], list[int], list[Any]]:
        """The block's lines, their offsets and their records (None: not decodable)."""
        lines, records = self._whole(block, self._decoder)
        offsets = list(itertools.accumulate((len(line) + 1 for line in lines[:-1]), initial=start))
        if records is None:
            records = [self._decode_line(line) for line in lines]
        return lines, offsets, records

    def _whole(
        self, block: bytes, decoder: msgspec.json.Decoder[Any]
    ) -> tuple[list[bytes], list[Any] | None]:
        """The block's lines, and their records decoded all at once by ``decoder``; None
        when a line is empty, too long, not UTF-8 or not decodable, or the count differs
        (then the caller goes line by line)."""
        lines = block.split(b"\n")
        if lines[-1] == b"":
            lines.pop()  # after the final newline
        if not all(lines) or not (block.isascii() or is_utf8(block)):
            return lines, None
        if len(block) > self.max_line_bytes and has_line_longer_than(block, self.max_line_bytes):
            return lines, None
        try:
            records = decoder.decode_lines(block)
        except DECODE_ERRORS:
            return lines, None
        return lines, records if len(records) == len(lines) else None

    def _decode_line(self, line: bytes) -> Any:
        if not line or len(line) > self.max_line_bytes or not (line.isascii() or is_utf8(line)):
            return None
        try:
            return self._decoder.decode(line)
        except DECODE_ERRORS:
            pass
        try:
            event = self._event_decoder.decode(line)
        except DECODE_ERRORS:
            return None
        if event.event != OUTCOME_EVENT:
            return None
        # an outcome whose actual (or timestamp) is a number no float holds: invalid
        routes = tuple(getattr(event, f"route_{i}") for i in range(self._routes))
        return _UnusableOutcome(event.request_id, routes=routes)

    def _route_of(self, record: Any) -> tuple[str | None, ...]:
        """The record's match fields as :class:`~exporter.routing.Router` compares them:
        each its text, else ``None``."""
        if isinstance(record, _UnusableOutcome):
            raw: Sequence[Any] = record.routes
        elif self._route_name is not None:
            v = getattr(record, self._route_name)
            return (v if type(v) is str else None,)
        else:
            assert self._route_getter is not None
            raw = self._route_getter(record)
        return tuple(v if type(v) is str else None for v in raw)

    def _prediction(self, record: Any, t: float, source: str, offset: int) -> PredictionRow:
        prediction = record.prediction
        predicted: str | None = None
        value: float | None = None
        probability: Any = None
        probabilities: Any = None
        if type(prediction) is dict:
            predicted = _label_of(prediction.get(self.class_field))
            value = _number(prediction.get("value"))
            probability = prediction.get("probability")
            probabilities = prediction.get("probabilities")
        elif type(prediction) is float:
            value = _number(prediction)  # a bare float is a regressor's value
        elif prediction is not None and type(prediction) is not list:
            predicted = _label_of(prediction)  # a bare string, integer or boolean: a class
        scalar, mapping = _probability(probability), _probability_map(probabilities)
        # a probability logged but unusable (outside 0..1, not a number, a list, a mapping
        # that does not sum to 1) is left out and the prediction kept: counted, not silent
        dropped = (scalar is None and probability is not None) or (
            mapping is None and probabilities is not None
        )
        probability = scalar
        if probability is None and mapping is not None and predicted is not None:
            probability = mapping.get(predicted)
        return PredictionRow(
            request_id=_request_id(record.request_id),
            time=t,
            source=source,
            offset=offset,
            predicted=predicted,
            value=value,
            probability=probability,
            probabilities=mapping,
            model_version=record.model_version if type(record.model_version) is str else None,
            probability_dropped=dropped,
        )


_KEYED_BLOCK_COLUMNS = tuple(f.name for f in dataclasses.fields(KeyedBlock) if f.name != "source")


def _line_by_line(
    block: bytes,
    start: int,
    path: str,
    verdicts: Callable[[list[bytes]], ParsedBatch],
    parse: Callable[[bytes, str, int, ParsedBatch, Callable[[list[bytes]], ParsedBatch]], _T],
    source: str,
) -> Iterator[_T]:
    """``parse`` of each non-blank line of ``block`` alone, at the offset where it starts;
    a line for which it raises is logged (``outcome_line_failed``) and skipped."""
    offset = start
    for line in block.split(b"\n"):
        if line and not line.isspace():
            try:
                part = parse(line + b"\n", source, offset, verdicts([line]), verdicts)
            except Exception:
                _log.exception("outcome_line_failed", file=path, offset=offset)
            else:
                yield part
        offset += len(line) + 1


def _keyed(event: Any) -> bool:
    return type(event) is str and (event == "prediction" or event == OUTCOME_EVENT)


@dataclass(frozen=True, slots=True)
class _UnusableOutcome:
    """An outcome line that decodes only in part: counted as an invalid outcome."""

    request_id: Any
    event: str = OUTCOME_EVENT
    timestamp: Any = None
    model_version: Any = None
    prediction: Any = None
    actual: Any = None
    routes: tuple[Any, ...] = ()  # the match fields' values, as KeyedRecord's route_<i>


def _accepted(lines: list[bytes], verdicts: Callable[[list[bytes]], ParsedBatch]) -> list[bool]:
    """Whether the parser took each line (a prediction, or another event) without
    rejecting it: all at once, then in halves where some were rejected."""
    if not lines:
        return []
    if verdicts(lines).n_invalid == 0:
        return [True] * len(lines)
    if len(lines) == 1:
        return [False]
    half = len(lines) // 2
    return _accepted(lines[:half], verdicts) + _accepted(lines[half:], verdicts)


def _request_id(raw: Any) -> str:
    """Text as it is, an integer as its digits (as the logger writes it); else "" (invalid)."""
    if type(raw) is str:
        return raw
    if type(raw) is int:
        return str(raw)
    return ""


def _label_of(raw: Any) -> str | None:
    if raw is None or type(raw) in (dict, list):
        return None
    return class_label(raw)


def _number(raw: Any) -> float | None:
    """A finite float from a JSON number (not a boolean); None otherwise."""
    if type(raw) not in (int, float):
        return None
    try:
        value = float(raw)
    except OverflowError:  # an integer too large for a float
        return None
    return value if math.isfinite(value) else None


def _probability(raw: Any) -> float | None:
    value = _number(raw)
    return value if value is not None and 0.0 <= value <= 1.0 else None


def _probability_map(raw: Any) -> dict[str, float] | None:
    """``probabilities`` as label -> probability, or None unless every value is one and
    they sum to 1 (:func:`_sums_to_one`)."""
    if type(raw) is not dict or not raw:
        return None
    out: dict[str, float] = {}
    for key, value in raw.items():
        p = _probability(value)
        if p is None:
            return None
        out[str(key)[:MAX_CLASS_LABEL]] = p
    return out if _sums_to_one(out) else None


def _sums_to_one(mapping: dict[str, float]) -> bool:
    """The log contract's rule (``PredictionLogger`` enforces it on writing): the values
    sum to 1 within :data:`~mlops_core.logging.PROBABILITY_SUM_TOLERANCE`.  A mapping that
    does not (logits, percentages, a class left out) would make log loss, the Brier score
    and ROC AUC wrong, so it is left out like any bad probability, the prediction kept."""
    return abs(math.fsum(mapping.values()) - 1.0) <= PROBABILITY_SUM_TOLERANCE


def probability_problem(line: bytes) -> str:
    """Why a prediction's logged probability was left out, in a few words, by the rules
    above (:func:`_probability`, :func:`_probability_map`): for the lines logged as
    ``prediction_probability_dropped``."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return "not decodable"
    prediction = record.get("prediction") if isinstance(record, dict) else None
    if not isinstance(prediction, dict):
        return "no prediction object"
    scalar = prediction.get("probability")
    if scalar is not None and _probability(scalar) is None:
        return "probability is not a number in [0, 1]"
    mapping = prediction.get("probabilities")
    if mapping is None:
        return "probability unusable"
    if not isinstance(mapping, dict):
        return "probabilities is not a mapping from class to probability"
    if not mapping:
        return "probabilities is empty"
    if any(_probability(p) is None for p in mapping.values()):
        return "a value of probabilities is not a number in [0, 1]"
    return f"probabilities sum to {sum(mapping.values()):.6g}, not 1"


def _outcome(record: Any, t: float, source: str, offset: int) -> OutcomeRow:
    actual = record.actual
    kind = type(actual)
    value = _number(actual) if kind in (int, float) else None
    # an object or a list, an integer no float holds, an empty label: no actual to compare
    unusable = (
        isinstance(record, _UnusableOutcome)
        or kind in (dict, list)
        or (kind is int and value is None)
        or actual == ""
    )
    return OutcomeRow(
        request_id=_request_id(record.request_id),
        time=t,
        source=source,
        offset=offset,
        actual=None if unusable else _label_of(actual),
        actual_value=None if unusable else value,
        invalid=unusable,
    )


# --- the typed fast path of KeyedParser.block --------------------------------------------------

_EVENT = attrgetter("event")
_TIMESTAMP = attrgetter("timestamp")
_PREDICTION = attrgetter("prediction")
_REQUEST_ID = attrgetter("request_id")
_MODEL_VERSION = attrgetter("model_version")
_ACTUAL = attrgetter("actual")
_CLS = attrgetter("cls")
_VALUE = attrgetter("value")
_PROBABILITY = attrgetter("probability")
_PROBABILITIES = attrgetter("probabilities")
_dumps = orjson.dumps

_Probability = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]


def _typed_decoder(class_field: str) -> tuple[msgspec.json.Decoder[Any], type[Any]]:
    """A decoder for the usual keyed lines, whose types ``msgspec`` checks in C.

    A line it refuses is not a bad line: the block then goes through the lenient
    :meth:`KeyedParser.rows` (a probability outside [0, 1] is left out there, a label too
    long is cut, an actual that is an object is counted invalid), so that every field
    typed here gives what the lenient path would: a probability is a number in [0, 1], a
    ``probabilities`` mapping non-empty with such values and labels of at most
    :data:`MAX_CLASS_LABEL` characters, a value a finite number (1e400 is refused).
    """
    label = str | int | bool | None
    prediction = msgspec.defstruct(
        "TypedPrediction",
        [
            ("cls", label, None),
            ("value", float | None, None),
            ("probability", _Probability | None, None),
            (
                "probabilities",
                Annotated[
                    dict[Annotated[str, msgspec.Meta(max_length=MAX_CLASS_LABEL)], _Probability],
                    msgspec.Meta(min_length=1),
                ]
                | None,
                None,
            ),
        ],
        rename={"cls": class_field},
        gc=False,
    )
    record = msgspec.defstruct(
        "TypedKeyedRecord",
        [
            ("event", str | None, None),
            ("timestamp", Any, None),
            ("request_id", str | int | None, None),
            ("model_version", str | None, None),
            ("prediction", prediction | str | int | float | bool | None, None),
            ("actual", str | int | float | bool | None, None),
        ],
        gc=False,
    )
    return msgspec.json.Decoder(record), prediction


def _labels(raw: list[Any]) -> list[str | None]:
    """Class labels of a column, as :func:`_label_of` gives them one by one."""
    kinds = set(map(type, raw))
    if kinds <= {str, type(None)}:
        if max(map(len, filter(None, raw)), default=0) <= MAX_CLASS_LABEL:
            return raw
    elif kinds == {int}:
        return [text[:MAX_CLASS_LABEL] for text in map(str, raw)]
    return [_label_of(r) for r in raw]


def _typed_outcomes(
    keyed: list[Any],
    times: list[float],
    candidates: list[int],
    offsets: list[int],
    o_idx: list[int],
    out: KeyedBlock,
) -> None:
    """The outcome records of a typed block into ``out`` (see :func:`outcome_record`)."""
    recs = [keyed[k] for k in o_idx]
    actual = list(map(_ACTUAL, recs))
    label = _labels(actual)
    value = [
        float(a) if type(a) is float else _number(a) if type(a) is int else None for a in actual
    ]
    if "" in label or any(type(a) is int and v is None for a, v in zip(actual, value, strict=True)):
        # an empty label, or an integer no float holds: no actual (counted invalid), as in rows()
        label = [
            None if lab == "" or (type(a) is int and v is None) else lab
            for lab, a, v in zip(label, actual, value, strict=True)
        ]
    rids = list(map(_REQUEST_ID, recs))
    if set(map(type, rids)) != {str}:
        rids = [_request_id(r) for r in rids]
    out.outcome_offsets = [offsets[candidates[k]] for k in o_idx]
    out.outcomes = [
        r if r[0] and (r[2] is not None or r[3] is not None) else None
        for r in zip(rids, (times[k] for k in o_idx), label, value, strict=True)
    ]
