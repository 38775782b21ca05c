"""Turn prediction-log lines into columns: one numpy array per feature, plus latency and class.

A line is either a *prediction* (``"event": "prediction"``, see ``docs/architecture.md``), an
*other event* (any other ``event``; a model server's own log lines may share the file) or
*invalid*, counted by reason and skipped as a whole: no field of an invalid line reaches the
window or a counter.  Reasons:

``invalid_json``   not JSON (includes a line cut short, and binary garbage that is valid UTF-8)
``encoding``       not UTF-8, anywhere in the line: in a field the exporter reads or not (a JSON
                   text must be UTF-8; the check is one pass over the block, free for ASCII)
``too_deep``       nested more deeply than the JSON decoder follows (about 1,000 levels, set by
                   Python's recursion limit), wherever the nesting is, whatever the ``event``
``not_an_object``  JSON, but not an object
``missing_field``  no ``event``, or a prediction without ``input_data``
``wrong_type``     a field the exporter reads has the wrong type: a numeric feature that is a
                   string or a boolean, a categorical feature that is an object, ``input_data``
                   that is not an object, a non-number ``latency_ms``, a timestamp that is an
                   object or array, a ``prediction`` class that is an object
``non_finite``     ``NaN`` or ``Infinity`` anywhere in the line (they are not JSON, so the line
                   cannot be decoded at all), or a number too large for a float (``1e400``, or
                   an integer past ``1.8e308``) in a field the exporter reads.  In a field it
                   does not read, ``1e400`` is skipped unconverted like every other unread
                   value, and the line counts.
``out_of_range``   a negative latency
``too_long``       longer than ``max_line_bytes``
``internal_error`` parsing this line raised an unexpected exception (a bug, logged with its
                   traceback).  Only that line is lost: the rest of its block is parsed again
                   in halves until the line that raises is alone.

No line ever costs more than itself: every exception met while parsing a block is confined to
the one line that caused it.

A feature absent from ``input_data`` or ``null`` is *missing*: the record still counts.

The feature ``__prediction__`` (the model's outputs, when the reference profiles them) is
read from ``prediction`` instead of ``input_data``: a categorical one from the predicted
class (``class_field``, or a bare class), a numeric one from a bare number, ``value``, or a
numeric class.  A record without it is missing for ``__prediction__`` only.

Speed: the lines are decoded together by ``msgspec`` into typed structs that hold only the
fields read here (everything else is skipped without being materialised, and the type checks
run in C); columns are then gathered with C-level ``map``/``attrgetter`` and converted by numpy.
Only a batch that contains a bad line falls back to decoding line by line.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from itertools import chain
from operator import attrgetter
from typing import Any, Literal

import msgspec
import numpy as np
import structlog

from mlops_core.constants import PREDICTION_FEATURE
from mlops_core.errors import ConfigError
from mlops_core.profile import category_key

INVALID_REASONS = (
    "invalid_json",
    "encoding",
    "too_deep",
    "not_an_object",
    "missing_field",
    "wrong_type",
    "non_finite",
    "out_of_range",
    "too_long",
    "internal_error",
)
"""Every reason an invalid line can be counted under (all exist from the start, at 0)."""

_log = structlog.get_logger(__name__)

DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError)
"""What decoding a bad line may raise; ``RecursionError`` is msgspec's answer to deep nesting."""

FEATURE_KINDS = ("numeric", "categorical")
_RETRY_PREDICTIONS_ONLY_EVERY = 32
MAX_CLASS_LABEL = 128
"""Longer predicted classes are cut: a label value must stay small."""


class ParsedBatch:
    """The result of parsing a list of lines; every array has one entry per prediction.

    ``features``: numeric -> float64 (NaN = missing), categorical -> object array of str or
    None.  ``timestamps`` are unix seconds (the record's own, else the ingest time); they are
    converted on first use, and :meth:`timestamps_of` converts only the rows asked for (the
    window keeps only the newest ``max_samples`` of a large batch).  Likewise ``classes`` is
    built on first use; the counters only need :meth:`class_counts`.
    """

    def __init__(
        self,
        n_lines: int = 0,
        n_predictions: int = 0,
        n_other_events: int = 0,
        invalid: dict[str, int] | None = None,
        timestamps: np.ndarray | None = None,
        latency_seconds: np.ndarray | None = None,
        features: dict[str, np.ndarray] | None = None,
        classes: list[str | None] | None = None,
        *,
        raw_classes: list[Any] | None = None,
        raw_timestamps: list[Any] | None = None,
        ingest_time: float | None = None,
        class_counts: dict[str, int] | None = None,
        category_counts: dict[str, Counter[Any]] | None = None,
        routes: dict[str, list[str | None]] | None = None,
        versions: list[str | None] | None = None,
    ) -> None:
        self.n_lines = n_lines
        self.n_predictions = n_predictions
        self.n_other_events = n_other_events
        self.invalid: dict[str, int] = dict(invalid or {})
        self.latency_seconds = np.empty(0) if latency_seconds is None else latency_seconds
        self.features: dict[str, np.ndarray] = dict(features or {})
        self._classes = None if classes is None and raw_classes is not None else list(classes or [])
        self._raw_classes = raw_classes
        self._class_counts = class_counts
        self._category_counts = category_counts
        self._raw_timestamps = raw_timestamps
        self._ingest_time = time.time() if ingest_time is None else ingest_time
        if timestamps is None and raw_timestamps is None:
            timestamps = np.empty(0)
        self._timestamps = timestamps
        # the routing fields and model_version of each prediction, as text (None: absent or
        # not a string); only those the parser was asked for
        self.routes: dict[str, list[str | None]] = dict(routes or {})
        self.versions = versions

    @property
    def timestamps(self) -> np.ndarray:
        if self._timestamps is None:
            self._timestamps = timestamps_from(self._raw_timestamps or [], self._ingest_time)
        return self._timestamps

    def timestamps_of(self, rows: slice) -> np.ndarray:
        """``timestamps[rows]``, converting only those rows when not converted yet."""
        if self._timestamps is not None or self._raw_timestamps is None:
            return self.timestamps[rows]
        return timestamps_from(self._raw_timestamps[rows], self._ingest_time)

    @property
    def classes(self) -> list[str | None]:
        """The predicted class of each prediction as label text, None where there is none."""
        if self._classes is None:
            self._classes = class_labels(self._raw_classes or [])
        return self._classes

    def class_counts(self) -> dict[str, int]:
        """Predictions per class label (what the class counter adds), cheaper than ``classes``."""
        if self._class_counts is not None:
            return dict(self._class_counts)
        if self._classes is None and self._raw_classes is not None:
            return class_counts(self._raw_classes)
        counts = Counter(self.classes)
        return {label: n for label, n in counts.items() if label is not None}

    def value_counts(self, feature: str) -> dict[Any, int]:
        """Occurrences of each present value of a categorical feature (None left out)."""
        counts = (self._category_counts or {}).get(feature)
        if counts is None:
            counts = Counter(self.features[feature].tolist())
        return {value: n for value, n in counts.items() if value is not None}

    @property
    def n_invalid(self) -> int:
        return sum(self.invalid.values())

    def lines_only(self) -> ParsedBatch:
        """The batch's line figures alone (lines, invalid, other events), no prediction."""
        return ParsedBatch(
            n_lines=self.n_lines,
            n_other_events=self.n_other_events,
            invalid=self.invalid,
            ingest_time=self._ingest_time,
        )

    def select(self, rows: slice | np.ndarray) -> ParsedBatch:
        """The predictions at ``rows`` (a slice or an index array), without line figures.

        What one model's window and counters take (:mod:`exporter.routing`).  Every row
        (``slice(None)``) shares this batch's arrays and its lazy columns: no copy, nothing
        converted that was not already.  An index array copies only those rows.
        """
        if isinstance(rows, slice):
            if rows == slice(None):
                return ParsedBatch(
                    n_predictions=self.n_predictions,
                    timestamps=self._timestamps,
                    latency_seconds=self.latency_seconds,
                    features=self.features,
                    classes=self._classes,
                    raw_classes=self._raw_classes,
                    raw_timestamps=self._raw_timestamps,
                    ingest_time=self._ingest_time,
                    class_counts=self._class_counts,
                    category_counts=self._category_counts,
                    routes=self.routes,
                    versions=self.versions,
                )
            rows = np.arange(self.n_predictions)[rows]
        index = np.asarray(rows, dtype=np.intp)
        picks = index.tolist()

        def pick(values: list[Any] | None) -> list[Any] | None:
            return None if values is None else list(map(values.__getitem__, picks))

        timestamps = None if self._timestamps is None else self._timestamps[index]
        return ParsedBatch(
            n_predictions=len(picks),
            timestamps=timestamps,
            latency_seconds=self.latency_seconds[index],
            features={name: column[index] for name, column in self.features.items()},
            classes=None if self._classes is None else pick(self._classes),
            raw_classes=pick(self._raw_classes) if self._classes is None else None,
            raw_timestamps=pick(self._raw_timestamps) if timestamps is None else None,
            ingest_time=self._ingest_time,
            routes={name: pick(column) or [] for name, column in self.routes.items()},
            versions=pick(self.versions),
        )

    @classmethod
    def concat(cls, batches: list[ParsedBatch]) -> ParsedBatch:
        """One batch holding all rows of ``batches``, in order.

        Parsing goes best in blocks of about 1 MiB (the decoded objects stay in the CPU
        cache); the window and the counters go best once per poll.  Raw timestamps and
        classes stay raw, so nothing is converted that nobody reads.  Built through the
        constructor from the parts: no batch's state is written from outside it.
        """
        if len(batches) == 1:
            return batches[0]
        invalid: Counter[str] = Counter()
        for batch in batches:
            invalid.update(batch.invalid)
        rows = [b for b in batches if b.n_predictions]
        timestamps, raw_timestamps = None, None
        if all(b._timestamps is None for b in rows):
            raw_timestamps = [t for b in rows for t in b._raw_timestamps or []]
        else:
            timestamps = _concat([b.timestamps for b in rows])
        classes, raw_classes = None, None
        if all(b._classes is None for b in rows):
            raw_classes = [c for b in rows for c in b._raw_classes or []]
        else:
            classes = [c for b in rows for c in b.classes]
        class_total: Counter[str] = Counter()
        for b in rows:
            class_total.update(b.class_counts())
        category_counts: dict[str, Counter[Any]] | None = None
        if rows and all(b._category_counts is not None for b in rows):
            category_counts = {}
            for name in rows[0]._category_counts or {}:
                total: Counter[Any] = Counter()
                for b in rows:
                    total.update(b.value_counts(name))
                category_counts[name] = total
        routes = {
            name: list(chain.from_iterable(b.routes[name] for b in rows))
            for name in (rows[0].routes if rows else {})
        }
        versions = None
        if rows and all(b.versions is not None for b in rows):
            versions = list(chain.from_iterable(b.versions or () for b in rows))
        return cls(
            n_lines=sum(b.n_lines for b in batches),
            n_predictions=sum(b.n_predictions for b in rows),
            n_other_events=sum(b.n_other_events for b in batches),
            invalid=dict(invalid),
            timestamps=timestamps,
            latency_seconds=_concat([b.latency_seconds for b in rows]),
            features={
                name: _concat([b.features[name] for b in rows])
                for name in (rows[0].features if rows else {})
                if all(name in b.features for b in rows)
            },
            classes=classes,
            raw_classes=raw_classes,
            raw_timestamps=raw_timestamps,
            ingest_time=max((b._ingest_time for b in batches), default=None),
            class_counts=dict(class_total),
            category_counts=category_counts,
            routes=routes,
            versions=versions,
        )

    def __repr__(self) -> str:
        return (
            f"ParsedBatch(n_lines={self.n_lines}, n_predictions={self.n_predictions}, "
            f"n_other_events={self.n_other_events}, invalid={self.invalid})"
        )


def _concat(arrays: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(arrays) if arrays else np.empty(0)


def has_line_longer_than(block: bytes, limit: int) -> bool:
    """Whether some line of ``block`` is longer than ``limit`` bytes, without splitting it.

    Every stretch of ``limit + 1`` bytes must contain a newline; jumping from the last
    newline of one stretch to the next costs a few ``rfind`` calls per block.
    """
    start, end = 0, len(block)
    while end - start > limit:
        newline = block.rfind(b"\n", start, start + limit + 1)
        if newline < 0:
            return True
        start = newline + 1
    return False


def count_lines(block: bytes) -> int:
    """Lines in ``block``, a final newline being optional (empty lines included).

    Counts newlines about twice as fast as ``bytes.count`` (a vectorised compare).
    """
    if not block:
        return 0
    newlines = int(np.count_nonzero(np.frombuffer(block, dtype=np.uint8) == 10))
    return newlines if block[-1:] == b"\n" else newlines + 1


def is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class _NonFinite(ValueError):
    pass


def _reject_constant(name: str) -> float:
    raise _NonFinite(name)


def _has_non_finite_number(line: bytes) -> bool:
    """Whether the JSON line holds a number that is not finite as a float (``1e400``,
    ``NaN``, an integer past ``1.8e308``)."""
    try:
        json.loads(
            line,
            parse_constant=_reject_constant,
            parse_float=_checked_float,
            parse_int=_checked_int,
        )
    except _NonFinite:
        return True
    except ValueError:
        return False
    return False


def _is_non_finite(value: Any) -> bool:
    if type(value) is int:  # msgspec keeps big integers exact: 10**400 is no float either
        try:
            float(value)
        except OverflowError:
            return True
        return False
    return isinstance(value, float) and not math.isfinite(value)


def _checked_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NonFinite(text)
    return value


def _checked_int(text: str) -> int:
    """An integer too large for a float is as non-finite as ``1e400``.  Only judged, never
    kept: returns 0, so no digit string meets Python's int conversion limit."""
    if not math.isfinite(float(text)):
        raise _NonFinite(text)
    return 0


def _not_an_object_or_invalid(line: bytes) -> str:
    """``not_an_object`` for a JSON text that is not an object (``[1, 2]``, ``"text"``), but
    ``invalid_json`` for a line that only starts like one (a plain-text log line)."""
    try:
        msgspec.json.decode(line)
    except RecursionError:
        return "too_deep"
    except (msgspec.DecodeError, UnicodeDecodeError):
        return "invalid_json"
    return "not_an_object"


class RecordParser:
    """Parse ``PredictionLogger`` lines for the configured features.

    ``features`` maps each feature name to ``"numeric"`` or ``"categorical"``.  Numeric values
    are JSON numbers (integers are widened to float; booleans and strings are wrong types).
    Categorical values are strings; integers and booleans are accepted and turned into the
    text the reference profile counts them under (``mlops_core.profile.category_key``:
    ``3`` -> ``"3"``, ``true`` -> ``"true"``).
    """

    def __init__(
        self,
        features: Mapping[str, str],
        *,
        latency_field: str = "latency_ms",
        class_field: str = "class",
        max_line_bytes: int = 1 << 20,
        clock: Callable[[], float] = time.time,
        route_fields: Sequence[str] = (),
        version_field: str | None = None,
    ) -> None:
        for name, kind in features.items():
            if kind not in FEATURE_KINDS:
                raise ConfigError(
                    f"feature {name!r}: type must be 'numeric' or 'categorical', not {kind!r}"
                )
        self.features = dict(features)
        self.latency_field = latency_field
        self.class_field = class_field
        self.max_line_bytes = max_line_bytes
        self._clock = clock
        # Record fields handed over as text for routing (exporter.routing): any JSON value
        # decodes (a number is not a wrong type: it just matches no model), and only a
        # string is kept.  model_version may be a match field too: one attribute reads it.
        self.route_fields = tuple(route_fields)
        self.version_field = version_field
        text_fields = [*self.route_fields, *(() if version_field is None else (version_field,))]
        for name in text_fields:
            if name in ("event", "timestamp", "input_data", "prediction", latency_field):
                raise ConfigError(f"{name!r} is read by the parser itself: it cannot route")
            if not _renamable(name):
                raise ConfigError(f"{name!r} cannot be a log field name to route on")
        self._text_attr = {name: f"t{i}" for i, name in enumerate(dict.fromkeys(text_fields))}
        # the model's outputs come from `prediction`, every other feature from `input_data`
        self._prediction_kind = self.features.get(PREDICTION_FEATURE)
        inputs = {n: k for n, k in self.features.items() if n != PREDICTION_FEATURE}
        self._numeric = [n for n, k in inputs.items() if k == "numeric"]
        self._categorical = [n for n, k in inputs.items() if k == "categorical"]
        attr = {name: f"f{i}" for i, name in enumerate(inputs)}
        self._attr = attr
        # msgspec cannot match a field renamed to a name with a quote, a backslash or a control
        # character; with such a feature name, input_data is decoded as a dict and converted
        # to the same struct line by line (same verdicts).
        renamable = all(map(_renamable, inputs))
        input_struct = msgspec.defstruct(
            "InputData",
            [
                (attr[n], float | None if k == "numeric" else str | int | bool | None, None)
                for n, k in inputs.items()
            ],
            rename={a: n for n, a in attr.items()} if renamable else None,
            gc=False,
        )
        self._convert_to: type | None = None if renamable else input_struct
        # what input_data is decoded as: the struct, or a dict converted to it line by line
        decoded_as: Any = input_struct if renamable else dict[str, Any]
        prediction_fields: list[Any] = [("cls", str | int | float | bool | None, None)]
        if self._prediction_kind == "numeric":  # read only then, typed like a numeric feature
            prediction_fields.append(("value", float | None, None))
        self._prediction_struct = msgspec.defstruct(
            "Prediction", prediction_fields, rename={"cls": class_field}, gc=False
        )
        self._decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(
            self._record_struct(decoded_as, str | None)
        )
        # Fast path for files that hold only predictions: a literal event is matched, not
        # allocated (about 10% less decoding).  Any other event makes it fail; then the
        # general decoder is used, and the literal one is retried only now and then.
        literal = Literal["prediction"] | None
        self._predictions_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(
            self._record_struct(decoded_as, literal)
        )
        self._predictions_only = True
        self._blocks_since_retry = 0
        event_struct = msgspec.defstruct("EventOnly", [("event", Any, None)], gc=False)
        self._event_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(event_struct)

    def _record_struct(self, input_struct: Any, event_type: Any) -> type:
        text = self._text_attr
        return msgspec.defstruct(
            "Record",
            [
                ("event", event_type, None),
                ("timestamp", str | float | None, None),
                ("input_data", input_struct | None, None),
                ("latency", float | None, None),
                (
                    "prediction",
                    self._prediction_struct | list | str | int | float | bool | None,
                    None,
                ),
                *((attr, Any, None) for attr in text.values()),
            ],
            rename={"latency": self.latency_field, **{a: n for n, a in text.items()}},
            gc=False,
        )

    # --- public -----------------------------------------------------------------------------

    def parse(self, lines: list[bytes]) -> ParsedBatch:
        """Parse ``lines`` (without their newlines).  Never raises for bad data.

        Blank lines, empty or of only whitespace, are ignored (not counted anywhere): they
        hold no record, and a writer that ends its lines with ``\r\n`` or pads them must not
        turn them into rejected lines.
        """
        try:
            return self._parse_lines(lines)
        except Exception:  # a parser bug: confine it to the line(s) that trigger it
            return self._isolate([line for line in lines if line and not line.isspace()])

    def parse_block(self, block: bytes) -> ParsedBatch:
        """Parse a block of lines, each ended by ``b"\\n"`` (the last one may lack it).

        What ``LogFollower.poll_blocks`` returns.  Same result as ``parse(block.split(b"\\n"))``
        without splitting the block on the fast path.  Never raises: an unexpected exception
        costs the line that raised it (``internal_error``) and nothing else.
        """
        try:
            if len(block) > self.max_line_bytes and has_line_longer_than(
                block, self.max_line_bytes
            ):
                return self._parse_lines(block.split(b"\n"))  # rare: count the long ones
            n = count_lines(block)
            return self._parse(block, None, n, n, Counter())
        except Exception:
            return self._isolate([x for x in block.split(b"\n") if x and not x.isspace()])

    def _parse_lines(self, lines: list[bytes]) -> ParsedBatch:
        if not all(lines) or any(map(bytes.isspace, lines)):
            lines = [line for line in lines if line and not line.isspace()]
        n_lines = len(lines)
        invalid: Counter[str] = Counter()
        if lines and max(map(len, lines)) > self.max_line_bytes:
            kept = [line for line in lines if len(line) <= self.max_line_bytes]
            invalid["too_long"] += len(lines) - len(kept)
            lines = kept
        return self._parse(b"\n".join(lines), lines, len(lines), n_lines, invalid)

    def _isolate(self, lines: list[bytes]) -> ParsedBatch:
        """Parse ``lines`` (none empty) after parsing them together raised: halve until alone.

        Bisection finds one bad line among ``n`` with about ``2n`` line-parses and keeps
        the good lines' batches whole (the window and counters still get every valid
        prediction, in order).  A single line that still raises is ``internal_error``.
        """
        if len(lines) == 1:
            try:
                return self._parse_lines(lines)
            except Exception:
                _log.exception("parse_line_failed", line_bytes=len(lines[0]))
                return ParsedBatch(n_lines=1, invalid={"internal_error": 1})
        half = len(lines) // 2
        parts = []
        for part in (lines[:half], lines[half:]):
            try:
                parts.append(self._parse_lines(part))
            except Exception:
                parts.append(self._isolate(part))
        return ParsedBatch.concat(parts)

    def _parse(
        self,
        blob: bytes,
        lines: list[bytes] | None,
        expected: int,
        n_lines: int,
        invalid: Counter[str],
    ) -> ParsedBatch:
        records, other = self._decode(blob, lines, expected, invalid)
        if records is None:  # the block held empty lines: go through parse() to drop them
            return self._parse_lines(blob.split(b"\n"))
        good, inputs, more_other = self._select_predictions(records, invalid)
        if self._convert_to is not None:
            good, inputs = self._convert_inputs(good, inputs, invalid)
        batch = self._columns(good, inputs, invalid)
        batch.n_lines = n_lines
        batch.n_other_events = other + more_other
        batch.invalid = dict(invalid)
        return batch

    # --- decoding ---------------------------------------------------------------------------

    def _decode(
        self, blob: bytes, lines: list[bytes] | None, expected: int, invalid: Counter[str]
    ) -> tuple[list[Any] | None, int]:
        """Decode all lines at once; on any failure, line by line to find the bad ones.

        ``decode_lines`` skips blank lines and accepts several values on one line, so its
        result is trusted only when it has exactly one record per line.
        """
        if expected == 0:
            return [], 0
        # A JSON text is UTF-8 through and through, unread fields included, but msgspec only
        # checks the strings it materialises: check every byte here (about 30 us per MiB of
        # ASCII) so that a line's verdict never depends on which fields are configured.
        valid_utf8 = blob.isascii() or is_utf8(blob)
        if valid_utf8:
            records = self._decode_predictions_only(blob, expected)
            if records is not None:
                return records, 0
            try:
                records = self._decoder.decode_lines(blob)
                if len(records) == expected:
                    return records, 0
            except DECODE_ERRORS:
                pass
        if lines is None:
            lines = blob.split(b"\n")
            if lines[-1] == b"":
                lines.pop()  # after the final newline
            if not all(lines) or any(map(bytes.isspace, lines)):
                return None, 0  # blank lines: parse() drops them
        records = []
        other = 0
        decode = self._decoder.decode
        for line in lines:
            if not valid_utf8 and not (line.isascii() or is_utf8(line)):
                invalid["encoding"] += 1
                continue
            try:
                records.append(decode(line))
            except DECODE_ERRORS as exc:
                reason = self._classify(line, exc)
                if reason is None:
                    other += 1
                else:
                    invalid[reason] += 1
        return records, other

    def _decode_predictions_only(self, blob: bytes, expected: int) -> list[Any] | None:
        if not self._predictions_only:
            self._blocks_since_retry += 1
            if self._blocks_since_retry < _RETRY_PREDICTIONS_ONLY_EVERY:
                return None
            self._blocks_since_retry = 0
        try:
            records = self._predictions_decoder.decode_lines(blob)
        except DECODE_ERRORS:
            self._predictions_only = False
            return None
        self._predictions_only = True
        return records if len(records) == expected else None

    def _classify(self, line: bytes, exc: Exception) -> str | None:
        """Why ``line`` failed to decode; ``None`` when it is simply another kind of event."""
        if isinstance(exc, UnicodeDecodeError):
            return "encoding"
        if isinstance(exc, RecursionError):
            return "too_deep"
        if isinstance(exc, msgspec.ValidationError):
            try:
                event = self._event_decoder.decode(line).event
            except msgspec.ValidationError:
                # "2026-12-01 INFO ..." fails as a number before its trailing text is seen
                return _not_an_object_or_invalid(line)
            except RecursionError:  # the nesting is past the field that failed validation
                return "too_deep"
            except (msgspec.DecodeError, UnicodeDecodeError):
                return "invalid_json"
            if event != "prediction" and event is not None:
                return None  # other events may carry fields of any shape
            # decided from the value, not from msgspec's wording of the error
            return "non_finite" if _has_non_finite_number(line) else "wrong_type"
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            return "encoding"
        try:
            json.loads(line, parse_constant=_reject_constant, parse_float=_checked_float)
        except _NonFinite:
            return "non_finite"
        except RecursionError:
            return "too_deep"
        except ValueError:
            return "invalid_json"
        return "invalid_json"  # stdlib accepts something msgspec does not (e.g. huge ints)

    def _select_predictions(
        self, records: list[Any], invalid: Counter[str]
    ) -> tuple[list[Any], list[Any], int]:
        """Keep prediction records; count other events and predictions without input_data.

        Returns the predictions, their ``input_data`` and the number of other events.
        """
        if not records:
            return [], [], 0
        events = [r.event for r in records]
        if events.count("prediction") == len(records):
            inputs = [r.input_data for r in records]
            if inputs.count(None) == 0:
                return records, inputs, 0
        good = []
        other = 0
        for record, event in zip(records, events, strict=True):
            if event is None:
                invalid["missing_field"] += 1
            elif event != "prediction":
                other += 1
            elif record.input_data is None:
                invalid["missing_field"] += 1
            else:
                good.append(record)
        return good, [r.input_data for r in good], other

    def _convert_inputs(
        self, good: list[Any], inputs: list[Any], invalid: Counter[str]
    ) -> tuple[list[Any], list[Any]]:
        """``input_data`` dicts -> input structs, dropping (and counting) the ill-typed ones."""
        attr, struct = self._attr, self._convert_to
        kept, converted = [], []
        for record, data in zip(good, inputs, strict=True):
            try:
                value = msgspec.convert({attr[k]: v for k, v in data.items() if k in attr}, struct)
            except msgspec.ValidationError:
                bad = any(_is_non_finite(v) for k, v in data.items() if k in attr)
                invalid["non_finite" if bad else "wrong_type"] += 1
                continue
            kept.append(record)
            converted.append(value)
        return kept, converted

    # --- columns ----------------------------------------------------------------------------

    def _columns(self, good: list[Any], inputs: list[Any], invalid: Counter[str]) -> ParsedBatch:
        n = len(good)
        features: dict[str, np.ndarray] = {}
        for name in self._numeric:
            features[name] = _float_column(inputs, attrgetter(self._attr[name]), n)
        counted: dict[str, Counter[Any]] = {}
        for name in self._categorical:
            values = _category_strings(list(map(attrgetter(self._attr[name]), inputs)))
            counted[name] = Counter(values)  # counted while the strings are in cache
            column = np.empty(n, dtype=object)
            column[:] = values
            features[name] = column
        latency_ms = np.array([r.latency for r in good], dtype=np.float64)
        raw_timestamps = [r.timestamp for r in good]
        category_counts: dict[str, Counter[Any]] | None = counted
        classes = _raw_classes([r.prediction for r in good], self._prediction_struct)
        texts = {
            name: _texts(list(map(attrgetter(attr), good)))
            for name, attr in self._text_attr.items()
        }
        if self._prediction_kind == "numeric":
            features[PREDICTION_FEATURE] = _predicted_values(good, self._prediction_struct)
        elif self._prediction_kind == "categorical":
            keys, counted[PREDICTION_FEATURE] = _predicted_keys(classes)
            features[PREDICTION_FEATURE] = np.empty(n, dtype=object)
            features[PREDICTION_FEATURE][:] = keys
        negative = drop = latency_ms < 0
        if self._prediction_kind == "numeric":
            # an integer class or value too large for a float: as non-finite as 1e400
            huge = np.isinf(features[PREDICTION_FEATURE])
            if huge.any():
                invalid["non_finite"] += int(huge.sum())
                negative = negative & ~huge
                drop = negative | huge
        if negative.any():
            invalid["out_of_range"] += int(negative.sum())
        if drop.any():
            keep = ~drop
            features = {name: col[keep] for name, col in features.items()}
            latency_ms = latency_ms[keep]
            flags = keep.tolist()
            raw_timestamps = [t for t, k in zip(raw_timestamps, flags, strict=True) if k]
            classes = [c for c, k in zip(classes, flags, strict=True) if k]
            texts = {
                name: [v for v, k in zip(column, flags, strict=True) if k]
                for name, column in texts.items()
            }
            category_counts = None
        return ParsedBatch(
            n_predictions=len(latency_ms),
            latency_seconds=latency_ms / 1000.0,
            features=features,
            raw_classes=classes,
            class_counts=class_counts(classes),
            category_counts=category_counts,
            raw_timestamps=raw_timestamps,
            ingest_time=self._clock(),
            routes={name: texts[name] for name in self.route_fields},
            versions=None if self.version_field is None else texts[self.version_field],
        )


def _texts(values: list[Any]) -> list[str | None]:
    """A routing field's values as text: a string stays, anything else is absent (None).

    The usual column (one service, one version: the same string in every row) is
    recognised by one ``list.count`` in C and handed over as that one string object
    repeated, which the router's own count then compares by identity.
    """
    if not values:
        return values
    first = values[0]
    if type(first) is str and values.count(first) == len(values):
        return [first] * len(values)
    if set(map(type, values)) <= {str, type(None)}:
        return values
    return [v if type(v) is str else None for v in values]


def _renamable(name: str) -> bool:
    return not any(c in '"\\' or c < " " for c in name)


def _float_column(inputs: list[Any], getter: attrgetter, n: int) -> np.ndarray:
    """One numeric feature as float64; None (null or absent) becomes NaN."""
    try:
        return np.fromiter(map(getter, inputs), dtype=np.float64, count=n)
    except TypeError:  # some None: numpy's list conversion turns them into NaN
        return np.array(list(map(getter, inputs)), dtype=np.float64)


def timestamps_from(raw: list[Any], now: float) -> np.ndarray:
    """Unix seconds of each raw timestamp; ``now`` where the timestamp is unusable."""
    if not raw:
        return np.empty(0)
    try:
        # The common case, ISO 8601 with "Z": numpy parses it in C once the Z is off.
        stripped = [s[:-1] if s[-1:] == "Z" else "!" for s in raw]
        micros = np.array(stripped, dtype="datetime64[us]").astype(np.int64)
        return micros / 1e6
    except (TypeError, ValueError):
        return np.fromiter((_timestamp(v, now) for v in raw), dtype=np.float64, count=len(raw))


def _timestamp(value: Any, now: float) -> float:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return now
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
    if isinstance(value, float) and math.isfinite(value):
        return value  # unix seconds
    return now


def _category_strings(values: list[Any]) -> list[str | None]:
    """Turn int/bool categories into the profile's text keys; str and None stay as they are."""
    if set(map(type, values)) <= {str, type(None)}:
        return values
    return [v if v is None or type(v) is str else category_key(v) for v in values]


def _predicted_keys(raw: list[Any]) -> tuple[list[str | None], Counter[Any]]:
    """The categorical ``__prediction__``: each raw class as the profile's key (``1`` ->
    ``"1"``, ``True`` -> ``"true"``), and their counts; each distinct class converted once."""
    if _collide(set(map(type, raw))):  # True == 1 == 1.0 as dict keys: one by one
        keys = _category_strings(raw)
        return keys, Counter(keys)
    mapping = {v: v if v is None or type(v) is str else category_key(v) for v in set(raw)}
    counts: Counter[Any] = Counter()
    for value, count in Counter(raw).items():
        counts[mapping[value]] += count
    return list(map(mapping.__getitem__, raw)), counts


def _predicted_values(records: list[Any], prediction_struct: type[Any]) -> np.ndarray:
    """The numeric ``__prediction__`` of each record: a bare number, ``value``, or a numeric
    class, in that order; NaN (missing) for anything else; inf for an integer too large for
    a float (msgspec keeps integers exact; no JSON float decodes to inf)."""
    out = np.full(len(records), np.nan)
    for i, record in enumerate(records):
        value: Any = record.prediction
        if type(value) is prediction_struct:
            value = value.cls if value.value is None else value.value
        if type(value) is float:
            out[i] = value
        elif type(value) is int:  # not bool, not a class name
            try:
                out[i] = value
            except OverflowError:  # past 1.8e308: counted non_finite by the caller
                out[i] = math.inf
    return out


def class_label(value: Any) -> str | None:
    """A predicted or actual class as label text: as JSON writes it, so ``true`` is the
    label of the class ``True`` (the key ``PredictionLogger`` gives it in ``probabilities``,
    and the drift test's ``__prediction__`` key: a ``"True"`` label matched neither)."""
    if value is None:
        return None
    if value is True or value is False:
        return "true" if value else "false"
    text = value if isinstance(value, str) else str(value)
    return text[:MAX_CLASS_LABEL]


def _raw_class(prediction: Any, prediction_struct: type[Any]) -> Any:
    if type(prediction) is prediction_struct:
        return prediction.cls
    if isinstance(prediction, float | list):
        return None  # a bare float is a regression value; a list holds probabilities
    return prediction


def _raw_classes(predictions: list[Any], prediction_struct: type) -> list[Any]:
    """The predicted class of each record as decoded (None for regressors and absent ones)."""
    if set(map(type, predictions)) == {prediction_struct}:
        return list(map(attrgetter("cls"), predictions))
    return [_raw_class(p, prediction_struct) for p in predictions]


def _collide(kinds: set[type]) -> bool:
    """True == 1 == 1.0 as dict keys: such classes must be converted one by one."""
    return bool in kinds or float in kinds


def class_labels(raw: list[Any]) -> list[str | None]:
    """Raw classes as label text; each distinct value is converted once."""
    if _collide(set(map(type, raw))):
        return [class_label(v) for v in raw]
    mapping = {v: class_label(v) for v in set(raw)}
    return list(map(mapping.__getitem__, raw))


def class_counts(raw: list[Any]) -> dict[str, int]:
    """Predictions per class label, None left out; counted before converting to text."""
    counts: Counter[str | None]
    if _collide(set(map(type, raw))):
        counts = Counter(class_labels(raw))
    else:
        counts = Counter()
        for value, count in Counter(raw).items():
            counts[class_label(value)] += count
    return {label: n for label, n in counts.items() if label is not None}
