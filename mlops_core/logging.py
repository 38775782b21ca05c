"""Prediction logging: one JSON object per line, written through structlog, PII redacted.

The line format is the contract read by the exporter (docs/log-format.md, "Record format")::

    {"timestamp": "2026-11-26T03:44:27.123456Z", "level": "info", "event": "prediction",
     "service": "churn-api", "model_version": "1.0.0", "request_id": "req-123",
     "input_data": {...}, "prediction": {...}, "latency_ms": 45.2, ...extra keys}

and, for the ground truth that arrives later (often from another process, such as a
labelling job), an outcome record joined to its prediction by ``request_id``::

    {"timestamp": "...", "level": "info", "event": "outcome", "service": "churn-api",
     "model_version": "1.0.0", "request_id": "req-123", "actual": "churn", ...extra keys}

Probabilities in ``prediction`` follow one schema, checked when the record is made (see
:meth:`PredictionLogger.log_prediction`): ``probabilities`` is a mapping from class to
probability, never a bare list whose class order would be implicit, and a scalar
``probability`` is the probability of the predicted ``class``.

How a line reaches the file, and why:

* :class:`PredictionLogger` owns a private structlog ``BoundLogger`` with its own processor
  chain (stamp -> PII redactor -> your processors -> orjson renderer).  structlog's global
  configuration is never touched, so an application's own structlog setup is unaffected.
* Each rendered line is handed to the file with ONE ``write()`` call under a lock, on a file
  descriptor opened with ``O_APPEND``: threads of one process are serialised by the lock, and
  separate processes appending to the same file do not interleave (the kernel positions every
  ``O_APPEND`` write at the current end, atomically, on local file systems).
* Rotation: after a logrotate *rename* the path's inode changes; the writer notices with a
  cheap ``os.stat`` at most every ``check_interval`` seconds (or at once on :meth:`reopen`,
  e.g. from a SIGHUP handler) and reopens the path.  After *copytruncate* ``O_APPEND`` makes
  the next write land at the new end of the truncated file, leaving no hole.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging as _stdlib_logging  # absolute import: the stdlib, not this module
import math
import numbers
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import orjson
import structlog

from mlops_core._common import utc_timestamp
from mlops_core.errors import LogOutputError, PredictionLogError
from mlops_core.pii import PIIRedactor, redact_pii

__all__ = [
    "OUTCOME_RESERVED_KEYS",
    "PROBABILITY_SUM_TOLERANCE",
    "RESERVED_KEYS",
    "PredictionLogger",
    "utc_timestamp",
]

#: Keys set by the logger itself; passing one of them as an extra is an error.
RESERVED_KEYS: frozenset[str] = frozenset(
    {"timestamp", "level", "event", "service", "request_id", "input_data", "prediction",
     "latency_ms"}
)  # fmt: skip

#: The same for outcome records (``timestamp`` is an argument of :meth:`~PredictionLogger.
#: log_outcome`, not an extra).
OUTCOME_RESERVED_KEYS: frozenset[str] = frozenset(
    {"timestamp", "level", "event", "service", "request_id", "actual"}
)

#: Largest ``|sum - 1|`` accepted for a prediction's ``probabilities``.  Loose enough for a
#: float32 softmax over thousands of classes and for probabilities rounded to 6 decimals over
#: up to a hundred classes; tight enough to reject logits, percentages, and a mapping that
#: leaves out a class worth more than 1e-4.  An error this small moves log loss and Brier
#: score by about as much, far below their sampling noise.
PROBABILITY_SUM_TOLERANCE = 1e-4

_LEVEL_NAMES = {"warn": "warning", "exception": "error", "err": "error", "msg": "info",
                "fatal": "critical"}  # fmt: skip

_ORJSON_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def _dumps(obj: Any, default: Callable[[Any], Any] | None = None, **_: Any) -> bytes:
    """orjson with a newline appended; falls back to the stdlib for what orjson refuses
    (integers beyond 64 bits), so a log call never fails on rendering."""
    try:
        return orjson.dumps(obj, default=default, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        text = json.dumps(obj, default=default or repr, ensure_ascii=False)
        return (text + "\n").encode("utf-8")


# --- the line writer (structlog's "logger") -----------------------------------------------------

_WRITERS: weakref.WeakSet[_LineWriter] = weakref.WeakSet()


def _reset_locks_after_fork() -> None:
    # A lock held by another thread at fork() time would never be released in the child.
    for writer in list(_WRITERS):
        writer._lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_locks_after_fork)


class _LineWriter:
    """Writes whole lines: one ``os.write`` per line on an ``O_APPEND`` descriptor, or one
    ``write`` + ``flush`` per line on a stream.  Every structlog method name writes."""

    def __init__(
        self, output: str | os.PathLike[str] | TextIO | Any | None, check_interval: float | None
    ) -> None:
        self._lock = threading.Lock()
        self._check_interval = check_interval
        self._next_check = 0.0
        self._fd: int | None = None
        self._file_id: tuple[int, int] | None = None
        self.path: Path | None = None
        self._stream: Any = None
        self._text = False
        if output is None:
            output = sys.stdout
        if isinstance(output, str | os.PathLike):
            self.path = Path(output)
            self._open()
        elif callable(getattr(output, "write", None)):
            self._stream = output
            self._text = isinstance(output, io.TextIOBase) or not isinstance(
                output, io.RawIOBase | io.BufferedIOBase
            )
        else:
            raise PredictionLogError(
                f"output must be a file path or a writable stream, got {type(output).__name__}"
            )
        _WRITERS.add(self)

    def _open(self) -> None:
        assert self.path is not None
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(self.path, flags, 0o644)
            st = os.fstat(fd)
        except OSError as exc:
            raise LogOutputError(
                f"cannot open prediction log {self.path}: {exc.strerror or exc}"
            ) from None
        old, self._fd = self._fd, fd
        self._file_id = (st.st_dev, st.st_ino)
        self._next_check = time.monotonic() + (self._check_interval or 0.0)
        if old is not None:
            os.close(old)

    def _rotated(self) -> bool:
        try:
            st = os.stat(self.path)  # type: ignore[arg-type]
        except FileNotFoundError:
            return True  # renamed away and not yet re-created: create it
        except OSError:
            return False
        return (st.st_dev, st.st_ino) != self._file_id

    def reopen(self) -> None:
        """Reopen the path now (after a rotation by rename); a no-op for streams."""
        if self.path is None:
            return
        with self._lock:
            self._open()

    def write_line(self, line: bytes | str) -> None:
        if self.path is None:
            self._write_stream(line)
            return
        data = line.encode("utf-8") if isinstance(line, str) else line
        if not data.endswith(b"\n"):
            data += b"\n"
        with self._lock:
            if self._fd is None:
                raise LogOutputError(f"prediction log {self.path} is closed")
            if self._check_interval is not None:
                now = time.monotonic()
                if now >= self._next_check:
                    self._next_check = now + self._check_interval
                    if self._rotated():
                        self._open()
            try:
                written = os.write(self._fd, data)
                while written < len(data):  # only on a nearly full disk or a signal
                    written += os.write(self._fd, data[written:])
            except OSError as exc:
                raise LogOutputError(
                    f"cannot write prediction log {self.path}: {exc.strerror or exc}"
                ) from None

    def _write_stream(self, line: bytes | str) -> None:
        if self._text:
            text = line.decode("utf-8") if isinstance(line, bytes) else line
            if not text.endswith("\n"):
                text += "\n"
            payload: bytes | str = text
        else:
            payload = line.encode("utf-8") if isinstance(line, str) else line
            if not payload.endswith(b"\n"):
                payload += b"\n"
        stream = self._stream
        with self._lock:
            stream.write(payload)
            flush = getattr(stream, "flush", None)
            if flush is not None:
                flush()

    # structlog calls the method named like the level
    msg = log = debug = info = warning = warn = error = err = critical = fatal = exception = (
        write_line
    )

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


class _Stamped(str):
    """A timestamp a record method has validated and formatted: :meth:`PredictionLogger._stamp`
    keeps it instead of stamping "now".  Any other ``timestamp`` key is overwritten, as it
    always was, so a free-form event cannot write an unchecked time."""

    __slots__ = ()


def _request_id(request_id: Any) -> str:
    """The request id as text: strings as they are, integers converted, anything else refused."""
    if type(request_id) is str:
        return request_id
    if isinstance(request_id, str) or (
        isinstance(request_id, int) and not isinstance(request_id, bool)
    ):
        return str(request_id)
    raise PredictionLogError(f"request_id must be a string, got {type(request_id).__name__}")


def _class_text(label: Any) -> str | None:
    """A class label as the text it has as a JSON object key (how ``probabilities`` keys reach
    the file): strings as they are, integers in decimal, booleans ``true``/``false``; ``None``
    for anything else, which is not a class label."""
    if type(label) is str:  # the common cases, before the slower ABC checks
        return label
    if type(label) is int:
        return str(label)
    if isinstance(label, str):
        return str(label)
    if isinstance(label, bool):
        return "true" if label else "false"
    if isinstance(label, numbers.Integral):
        return str(int(label))
    return None


def _probability(value: Any) -> float | None:
    """``value`` as a float when it is a finite number in [0, 1] (booleans are not), else None."""
    if type(value) is float:  # the common case, before the slower ABC checks
        return value if 0.0 <= value <= 1.0 else None  # NaN fails both comparisons
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    try:
        p = float(value)
    except (OverflowError, ValueError, TypeError):
        return None
    return p if 0.0 <= p <= 1.0 else None  # NaN fails both comparisons


def _check_probabilities(prediction: Mapping[str, Any], request_id: str) -> None:
    """Enforce the probability schema on a prediction that carries probabilities.

    Why so strict: quality metrics (log loss, Brier score, ROC AUC) and the estimated accuracy
    are computed from these numbers long after the model that wrote them is gone.  A bare list
    only makes sense with the model's class order, which the log does not hold, and a scalar
    whose class is unclear (the predicted class? the positive class?) silently turns a log loss
    into nonsense.  So the mistake is refused where it is made, naming the request.
    """
    rid = request_id
    given_class = prediction.get("class")
    class_text = None
    by_class: dict[str, float] = {}
    if "probabilities" in prediction:
        class_text = None if given_class is None else _class_text(given_class)
        probs = prediction["probabilities"]
        if not isinstance(probs, Mapping):
            if isinstance(probs, list | tuple) or hasattr(probs, "__array__"):
                raise PredictionLogError(
                    f"prediction.probabilities of request {rid!r} is a {type(probs).__name__}: "
                    "give a mapping of class -> probability, a list leaves the class order "
                    "implicit"
                )
            raise PredictionLogError(
                f"prediction.probabilities of request {rid!r} must be a mapping of class -> "
                f"probability, got {type(probs).__name__}"
            )
        if not probs:
            raise PredictionLogError(f"prediction.probabilities of request {rid!r} is empty")
        for key, value in probs.items():
            text = _class_text(key)
            if text is None:
                raise PredictionLogError(
                    f"class {key!r} in prediction.probabilities of request {rid!r} must be a "
                    "string, an integer or a boolean"
                )
            if text in by_class:
                raise PredictionLogError(
                    f"prediction.probabilities of request {rid!r} names class {text!r} twice"
                )
            p = _probability(value)
            if p is None:
                raise PredictionLogError(
                    f"prediction.probabilities[{key!r}] of request {rid!r} must be a finite "
                    f"number in [0, 1], got {value!r}"
                )
            by_class[text] = p
        total = math.fsum(by_class.values())
        if not abs(total - 1.0) <= PROBABILITY_SUM_TOLERANCE:
            raise PredictionLogError(
                f"prediction.probabilities of request {rid!r} sum to {total:.9g}, not 1 "
                f"(tolerance {PROBABILITY_SUM_TOLERANCE:g})"
            )
        if given_class is not None and class_text not in by_class:
            raise PredictionLogError(
                f"prediction.class {given_class!r} of request {rid!r} is not a key of "
                "prediction.probabilities"
            )
    if "probability" in prediction:
        if given_class is None:
            raise PredictionLogError(
                f"prediction.probability of request {rid!r} needs prediction.class: it is the "
                "probability of the predicted class"
            )
        p = _probability(prediction["probability"])
        if p is None:
            raise PredictionLogError(
                f"prediction.probability of request {rid!r} must be a finite number in "
                f"[0, 1], got {prediction['probability']!r}"
            )
        if by_class and class_text is not None:
            q = by_class[class_text]
            if not abs(p - q) <= PROBABILITY_SUM_TOLERANCE:
                raise PredictionLogError(
                    f"prediction.probability of request {rid!r} is {p!r} but "
                    f"prediction.probabilities gives {q!r} to its class {given_class!r}"
                )


def _outcome_timestamp(timestamp: Any, request_id: str) -> _Stamped | None:
    """An outcome's ``timestamp`` argument (datetime, naive = UTC, or unix seconds) formatted
    like every record's; ``None`` stays ``None`` (stamped "now" by the chain)."""
    if timestamp is None:
        return None
    if isinstance(timestamp, datetime):
        return _Stamped(utc_timestamp(timestamp))
    if isinstance(timestamp, bool) or not isinstance(timestamp, numbers.Real):
        raise PredictionLogError(
            f"timestamp of the outcome of request {request_id!r} must be a datetime or unix "
            f"seconds, got {type(timestamp).__name__}"
        )
    try:
        seconds = float(timestamp)
        if not math.isfinite(seconds):
            raise ValueError
        return _Stamped(utc_timestamp(seconds))
    except (OverflowError, OSError, ValueError):
        raise PredictionLogError(
            f"timestamp of the outcome of request {request_id!r} is not a usable time: "
            f"{timestamp!r}"
        ) from None


def _actual(actual: Any, request_id: str) -> Any:
    """The ground truth as the record holds it: a class (string, integer, boolean) or a finite
    number (a regression target); anything else cannot be joined to a prediction's class or
    value, so it is refused rather than written."""
    if isinstance(actual, str | bool):
        return actual
    if isinstance(actual, numbers.Integral):
        return int(actual)
    if isinstance(actual, numbers.Real):
        try:
            value = float(actual)
        except (OverflowError, ValueError):
            value = math.nan
        if math.isfinite(value):
            return value
        raise PredictionLogError(f"actual of request {request_id!r} must be finite, got {actual!r}")
    raise PredictionLogError(
        f"actual of request {request_id!r} must be a class (string, integer, boolean) or a "
        f"finite number, got {type(actual).__name__}"
    )


def _check_processors(processors: Any) -> list[Callable[..., Any]]:
    """The user's extra processors as a list; a wrong value fails now, not at the first log."""
    if processors is None:
        return []
    if isinstance(processors, Iterable) and not callable(processors):
        items = list(processors)
        if all(callable(p) for p in items):
            return items
    raise PredictionLogError(
        f"processors must be a list of structlog processors (callables), got {processors!r}"
    )


# --- the public logger --------------------------------------------------------------------------


class PredictionLogger:
    """Writes prediction records as JSON lines (see the module docstring for the format).

    Args:
        service: name of the serving application; goes into every record.
        model_version: written as ``model_version`` when given.
        output: a file path (appended to, created if missing) or a writable text or binary
            stream; ``None`` means ``sys.stdout``.
        processors: extra structlog processors run after the PII redactor, before the JSON
            renderer (for example one that adds a ``host`` key).
        redactor: the PII processor; default :data:`mlops_core.pii.redact_pii`.  Pass a
            configured :class:`~mlops_core.pii.PIIRedactor` to change the rules.
        check_interval: seconds between checks of the path for a rotation by rename
            (``0`` checks before every write, ``None`` never; call :meth:`reopen` then).

    Example::

        logger = PredictionLogger("churn-api", model_version="1.0.0", output="/logs/p.jsonl")
        logger.log_prediction("req-123", {"age": 35},
                              {"class": "churn", "probabilities": {"churn": 0.7, "stay": 0.3}},
                              latency_ms=45.2)
        logger.log_outcome("req-123", "stay")   # later, maybe from a labelling job

    Use :attr:`logger` to write other events (``logger.logger.info("model_loaded")``) into the
    same file with the same stamping and redaction.
    """

    def __init__(
        self,
        service: str,
        *,
        model_version: str | None = None,
        output: str | os.PathLike[str] | TextIO | Any | None = None,
        processors: Iterable[Callable[..., Any]] | None = None,
        redactor: PIIRedactor | Callable[..., Any] | None = None,
        check_interval: float | None = 1.0,
    ) -> None:
        if not isinstance(service, str) or not service:
            raise PredictionLogError(f"service must be a non-empty string, got {service!r}")
        if model_version is not None and not isinstance(model_version, str):
            raise PredictionLogError(
                f"model_version must be a string, got {type(model_version).__name__}"
            )
        if check_interval is not None and (
            isinstance(check_interval, bool)
            or not isinstance(check_interval, numbers.Real)
            or not check_interval >= 0
        ):
            raise PredictionLogError(
                f"check_interval must be a number >= 0 or None, got {check_interval!r}"
            )
        extra_processors = _check_processors(processors)
        if redactor is not None and not callable(redactor):
            raise PredictionLogError(f"redactor must be a callable processor, got {redactor!r}")
        self.service = service
        self.model_version = model_version
        self.redactor = redact_pii if redactor is None else redactor
        self._writer = _LineWriter(output, check_interval)
        self.renderer = structlog.processors.JSONRenderer(serializer=_dumps)
        self._processors: list[Callable[..., Any]] = [
            self._stamp,
            self.redactor,
            *extra_processors,
            self.renderer,
        ]
        wrapper = structlog.make_filtering_bound_logger(_stdlib_logging.DEBUG)
        # structlog types the class it makes as its FilteringBoundLogger protocol, which has
        # no constructor; the class is a BoundLoggerBase, built from (logger, processors,
        # context), and building it directly skips wrap_logger's lazy proxy on every call.
        self._log = wrapper(self._writer, self._processors, {})  # type: ignore[call-arg]

    # -- structlog

    @property
    def logger(self) -> Any:
        """The private structlog BoundLogger writing to this logger's output."""
        return self._log

    @property
    def path(self) -> Path | None:
        """The log file, or ``None`` when writing to a stream."""
        return self._writer.path

    def _stamp(self, logger: Any, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        """First processor: the record's fixed fields, in the contract's order.

        ``timestamp`` is "now", except an outcome's own ``timestamp=`` (when the ground truth
        became known), which :meth:`log_outcome` has already checked and formatted.
        """
        stamped = event_dict.get("timestamp")
        out: dict[str, Any] = {
            "timestamp": str(stamped) if type(stamped) is _Stamped else utc_timestamp(),
            "level": _LEVEL_NAMES.get(method_name, method_name),
            "event": event_dict.get("event"),
            "service": self.service,
        }
        version = event_dict.get("model_version", self.model_version)
        if version is not None:
            out["model_version"] = version
        for key, value in event_dict.items():
            if key not in out and key != "model_version":
                out[key] = value
        return out

    # -- records

    def _fields(
        self,
        request_id: Any,
        input_data: Any,
        prediction: Any,
        latency_ms: Any,
        extra: dict[str, Any],
    ) -> dict[str, Any]:
        request_id = _request_id(request_id)
        if not isinstance(input_data, Mapping):
            raise PredictionLogError(
                "input_data must be a mapping of feature name -> value, "
                f"got {type(input_data).__name__}"
            )
        t = type(latency_ms)
        if t is not float and t is not int:
            if isinstance(latency_ms, bool) or not isinstance(latency_ms, numbers.Real):
                raise PredictionLogError(
                    f"latency_ms must be a number, got {type(latency_ms).__name__}"
                )
            latency_ms = float(latency_ms)
        if not (latency_ms >= 0 and math.isfinite(latency_ms)):
            raise PredictionLogError(f"latency_ms must be a finite number >= 0, got {latency_ms}")
        if extra and not RESERVED_KEYS.isdisjoint(extra):
            clash = sorted(RESERVED_KEYS.intersection(extra))
            raise PredictionLogError(f"extra key {clash[0]!r} is reserved by the record format")
        if (type(prediction) is dict or isinstance(prediction, Mapping)) and (
            "probability" in prediction or "probabilities" in prediction
        ):
            _check_probabilities(prediction, request_id)
        fields = {
            "request_id": request_id,
            "input_data": input_data,
            "prediction": prediction,
            "latency_ms": latency_ms,
        }
        if extra:
            fields.update(extra)
        return fields

    def create_log_entry(
        self,
        request_id: str,
        input_data: Mapping[str, Any],
        prediction: Any,
        latency_ms: float,
        **extra: Any,
    ) -> dict[str, Any]:
        """The record as a dict, exactly as :meth:`log_prediction` would write it.

        It is the output of the same processor chain minus the renderer, so it is
        JSON-serialisable and already redacted; nothing is written.
        """
        fields = self._fields(request_id, input_data, prediction, latency_ms, extra)
        return self._entry("prediction", fields)

    def log_prediction(
        self,
        request_id: str,
        input_data: Mapping[str, Any],
        prediction: Any,
        latency_ms: float,
        **extra: Any,
    ) -> None:
        """Write one prediction record as one JSON line (thread- and process-safe appends).

        ``prediction`` is ``{"class": ...}`` for a classifier, ``{"value": ...}`` for a
        regressor, or a bare scalar.  A classifier may add its probabilities, in one schema:

        * ``"probabilities"``: a mapping from class to probability, for example
          ``{"class": "churn", "probabilities": {"churn": 0.7, "stay": 0.3}}``.  Never a bare
          list: the log does not hold the model's class order, so a list could not be read
          back.  Classes are strings, integers or booleans (written as JSON object keys:
          ``3`` as ``"3"``, ``True`` as ``"true"``); every value is a finite number in
          [0, 1] and they sum to 1 within :data:`PROBABILITY_SUM_TOLERANCE`.  When ``class``
          is given it must be one of the keys (it need not be the most probable one: a
          decision threshold may pick another).
        * ``"probability"``: a scalar, the probability of the predicted ``class`` (so
          ``class`` is required), for example ``{"class": "stay", "probability": 0.6}``.  For
          a binary model it is *not* the probability of the positive class unless the
          positive class was predicted.  Given with ``probabilities``, it must match
          ``probabilities[class]``.

        A prediction breaking the schema raises :class:`PredictionLogError` (a ValueError)
        naming the request id; nothing is written.
        """
        self._log.info(
            "prediction", **self._fields(request_id, input_data, prediction, latency_ms, extra)
        )

    # -- outcomes (ground truth)

    def _outcome_fields(
        self, request_id: Any, actual: Any, timestamp: Any, extra: dict[str, Any]
    ) -> dict[str, Any]:
        request_id = _request_id(request_id)
        if extra and not OUTCOME_RESERVED_KEYS.isdisjoint(extra):
            clash = sorted(OUTCOME_RESERVED_KEYS.intersection(extra))
            raise PredictionLogError(
                f"extra key {clash[0]!r} is reserved by the outcome record format"
            )
        fields: dict[str, Any] = {"request_id": request_id, "actual": _actual(actual, request_id)}
        stamped = _outcome_timestamp(timestamp, request_id)
        if stamped is not None:
            fields["timestamp"] = stamped
        if extra:
            fields.update(extra)
        return fields

    def create_outcome_entry(
        self,
        request_id: str,
        actual: Any,
        *,
        timestamp: datetime | float | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """The outcome record as a dict, exactly as :meth:`log_outcome` would write it.

        Same processor chain minus the renderer (so redacted and JSON-serialisable); nothing
        is written.
        """
        return self._entry("outcome", self._outcome_fields(request_id, actual, timestamp, extra))

    def log_outcome(
        self,
        request_id: str,
        actual: Any,
        *,
        timestamp: datetime | float | None = None,
        **extra: Any,
    ) -> None:
        """Write the ground truth of an earlier prediction as one JSON line.

        The exporter joins it to the prediction with the same ``request_id`` (it may be
        written by another process, in the same file or another one, seconds to weeks
        later).  ``actual`` is the true class (string, integer, boolean) or the true value
        (a finite number).  ``timestamp`` is when the ground truth became known, a datetime
        (naive ones are UTC) or unix seconds, so a labelling job that runs later can say so;
        it defaults to now.  The record goes through the same chain as a prediction: the
        logger's ``service`` and ``model_version`` (an extra ``model_version=`` overrides
        it), then the PII redactor (``actual`` and extras are redacted like ``prediction``),
        your processors and the renderer; one ``write()`` per line.
        """
        self._log.info("outcome", **self._outcome_fields(request_id, actual, timestamp, extra))

    def _entry(self, event: str, fields: dict[str, Any]) -> dict[str, Any]:
        """``fields`` of an ``event`` record through the processor chain minus the renderer:
        what ``self._log.info(event, **fields)`` would render and write."""
        event_dict: Any = {**fields, "event": event}
        for proc in self._processors[:-1]:
            event_dict = proc(self._writer, "info", event_dict)
        return event_dict

    def render(self, entry: Mapping[str, Any]) -> bytes:
        """The JSON line (with its newline) for an entry from :meth:`create_log_entry`."""
        line = self.renderer(self._writer, "info", dict(entry))
        return line if isinstance(line, bytes) else line.encode("utf-8")  # _dumps gives bytes

    # -- file handling

    def reopen(self) -> None:
        """Reopen the log path now; call it from a SIGHUP handler after logrotate's rename."""
        self._writer.reopen()

    def close(self) -> None:
        """Close the log file (streams are left open: they belong to the caller)."""
        self._writer.close()

    def __enter__(self) -> PredictionLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        target = self.path if self.path is not None else "stream"
        return (
            f"PredictionLogger({self.service!r}, model_version={self.model_version!r}, "
            f"output={str(target)!r})"
        )
