"""The one reader of data files: CSV (with or without a byte-order mark), JSON lines, ``.npz``.

Reference profiles (``ReferenceProfile.from_file``), ``mlops profile``, ``mlops drift`` and
``mlops validate`` all read their input through this module, so a file reads the same
everywhere.  There were two CSV readers before, and they disagreed: ``mlops validate``
decoded plain UTF-8, so the byte-order mark a spreadsheet writes became part of the first
column's name, and a first column called ``target`` was silently not the target.

Two levels:

* :func:`read_data_file` returns named columns as arrays (what profiles and drift need):
  CSV cells parsed as numbers where a whole column is numeric, JSON lines as objects (a
  prediction log's ``input_data``), ``.npz`` arrays flattened;
* :func:`read_csv_table` and :func:`read_npz_arrays` return the file's content before that
  interpretation (the CSV header and raw cells, the ``.npz`` arrays as stored), for a
  caller with rules of its own, such as ``mlops validate`` picking its target column and
  keeping a 2-D ``X``.

Every error is one line naming the file (and the line, for text files), raised as the
caller's error type (``error=``, :class:`~mlops_core.errors.ProfileError` by default).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
import numbers
import sys
import warnings
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlops_core.constants import PREDICTION_FEATURE
from mlops_core.errors import DataFileWarning, MlopsError, ProfileError

__all__ = [
    "CsvTable",
    "DataFile",
    "read_csv_table",
    "read_data",
    "read_data_file",
    "read_npz_arrays",
]

#: the suffixes :func:`read_data_file` reads, by format
CSV_SUFFIXES = (".csv",)
JSONL_SUFFIXES = (".jsonl", ".ndjson")
NPZ_SUFFIXES = (".npz",)
DATA_SUFFIXES = (*CSV_SUFFIXES, *JSONL_SUFFIXES, *NPZ_SUFFIXES)


@dataclass(frozen=True)
class CsvTable:
    """A CSV file's header (names stripped of spaces) and its cells, column by column."""

    header: list[str]
    columns: list[list[str]]  # one list of raw cells per header name, blank lines left out
    #: the line each row starts on (1-based), for errors that name a row's line
    lines: list[int] = field(default_factory=list)
    #: (as written, as read) for each header name that lost surrounding whitespace
    renamed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def n_rows(self) -> int:
        return len(self.columns[0]) if self.columns else 0


@dataclass(frozen=True)
class DataFile:
    """A data file's columns, the line each row came from, and the lines a lenient read of
    a prediction log skipped (reason -> count, with the first such line)."""

    path: Path
    columns: dict[str, np.ndarray]
    lines: list[int] | None  # None for .npz, which has no lines
    skipped: dict[str, int] = field(default_factory=dict)
    first_skipped: int | None = None

    def skip_note(self) -> str | None:
        """One line saying how many lines were skipped and why, or None when none was."""
        if self.first_skipped is None:
            return None
        return f"{self.path}: {_skip_text(self.skipped, self.first_skipped)}"


#: why a prediction log's line is skipped, keyed by the exporter's reason
#: (``mlops_log_lines_invalid_total{reason}``, exporter/records.py), as a note says it
SKIP_REASONS = {
    "invalid_json": "invalid JSON",
    "encoding": "not UTF-8",
    "too_deep": "nested too deeply",
    "not_an_object": "not a JSON object",
    "wrong_type": "wrong type: a value the exporter refuses for its feature, such as a "
    "string or a boolean for a numeric one",
    "non_finite": "NaN or Infinity",
    "missing_field": "without input_data",
}


def read_data_file(
    path: str | Path, error: type[MlopsError] = ProfileError
) -> dict[str, np.ndarray]:
    """Columns of a ``.csv``, ``.jsonl``/``.ndjson`` or ``.npz`` file as 1-D arrays.

    CSV columns whose non-empty cells all parse as numbers become float64 (empty cells NaN);
    other columns stay strings with empty cells as None.  A CSV needs unique, non-empty
    column names and at least one row.  Missing files raise ``OSError``.
    """
    return read_data(path, error).columns


def read_data(
    path: str | Path,
    error: type[MlopsError] = ProfileError,
    *,
    kinds: Mapping[str, str] | None = None,
    skip_bad_lines: bool = False,
    class_field: str = "class",
) -> DataFile:
    """:func:`read_data_file`, with the line of each row and two options for current data.

    ``class_field`` names the field of a logged ``prediction`` that holds the class (the
    exporter's ``prediction.class_field``), read as ``__prediction__`` when ``kinds`` has it.

    ``kinds`` (column -> ``"numeric"``/``"categorical"``, a reference's kinds) checks the
    columns against them: a non-numeric value in a numeric column is an error naming the
    file and its line (the array element, for ``.npz``), where the drift test could only
    name the feature.  ``skip_bad_lines`` reads a prediction log (see :func:`_read_jsonl`)
    as the exporter does: a line it would refuse is skipped and counted by reason
    (:attr:`DataFile.skipped`), a value ``kinds`` refuses included; a file without a usable
    prediction is still an error.  Other files fail on their first bad line either way.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return _read_csv(path, error, kinds or {})
    if suffix in JSONL_SUFFIXES:
        return _read_jsonl(path, error, kinds or {}, skip_bad_lines, class_field)
    if suffix in NPZ_SUFFIXES:
        arrays = {name: arr.reshape(-1) for name, arr in read_npz_arrays(path, error).items()}
        _check_npz_kinds(path, arrays, kinds or {}, error)
        return DataFile(path, arrays, None)
    raise error(f"{path}: unknown data format {suffix!r} (use .csv, .jsonl, .ndjson, .npz)")


def read_csv_table(
    path: str | Path, error: type[MlopsError] = ProfileError, *, unique_names: bool = False
) -> CsvTable:
    """The header and raw cells of a CSV file, whatever its suffix.

    UTF-8 with or without a byte-order mark (spreadsheet exports write one); header names
    stripped of surrounding whitespace (``age, income`` is a common way to write a header;
    :attr:`CsvTable.renamed` says which names changed); blank lines skipped, before the
    header too.  Bytes that are not UTF-8 are an error naming their line (the file is
    decoded at once: decoding while reading named the line where the read block began,
    line 0 for a small file).  Parsing is strict: a quote left open is an error at the line
    its row starts on, not a last field that silently swallowed every line after it, and a
    row with another number of fields than the header is an error naming its line.  A
    header without rows is a table without rows.  With ``unique_names`` the names must be
    unique and non-empty (checked before any row is read); without, a caller that picks
    columns by position may take an unnamed one.
    """
    path = Path(path)
    reader = csv.reader(io.StringIO(_utf8_text(path, error), newline=""), strict=True)
    try:
        written = next((row for row in reader if row), None)
    except csv.Error as exc:
        raise _csv_error(error, path, 1, reader.line_num, exc) from None
    if written is None:
        raise error(f"{path}: empty CSV file")
    header = [h.strip() for h in written]
    renamed = [(w, h) for w, h in zip(written, header, strict=True) if w != h]
    if unique_names and (not header or not all(header) or len(set(header)) != len(header)):
        raise error(f"{path}: CSV header needs unique, non-empty column names")
    columns: list[list[str]] = [[] for _ in header]
    lines: list[int] = []
    start = reader.line_num + 1  # the line the next row starts on
    try:
        for row in reader:
            if row and len(row) != len(header):
                message = f"{len(row)} fields, header has {len(header)}"
                if reader.line_num > start:  # a quoted field with line breaks
                    message += f" (a quoted field runs to line {reader.line_num})"
                raise error(f"{path}:{start}: {message}")
            if row:  # not a blank line
                lines.append(start)
                for col, cell in zip(columns, row, strict=True):
                    col.append(cell)
            start = reader.line_num + 1
    except csv.Error as exc:
        raise _csv_error(error, path, start, reader.line_num, exc) from None
    return CsvTable(header, columns, lines, renamed)


def read_npz_arrays(
    path: str | Path, error: type[MlopsError] = ProfileError
) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` file as stored (shapes kept), never unpickling anything."""
    path = Path(path)
    with path.open("rb") as fh:  # np.load would take anything else for a pickle or a .npy
        if fh.read(4) != b"PK\x03\x04":
            raise error(f"{path}: not a .npz file (no zip archive header)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {name: np.asarray(npz[name]) for name in npz.files}
    except ValueError as exc:
        raise error(f"{path}: unreadable .npz ({exc})") from None
    except (OSError, EOFError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise error(f"{path}: unreadable .npz ({exc})") from None
    if not data:
        raise error(f"{path}: .npz holds no arrays")
    return data


def _csv_error(
    error: type[MlopsError], path: Path, start: int, line: int, exc: Exception
) -> MlopsError:
    if isinstance(exc, csv.Error) and "unexpected end of data" in str(exc):
        return error(
            f'{path}:{start}: unclosed quote: a " in the row starting on this line is never '
            f"closed (the field runs to the end of the file, line {line})"
        )
    if isinstance(exc, csv.Error) and line > start:
        return error(
            f"{path}:{start}: unreadable CSV ({exc}) in a quoted field that runs from this "
            f"line to line {line}: is a quote unclosed?"
        )
    return error(f"{path}:{line}: unreadable CSV ({exc})")


def _csv_column(cells: list[str]) -> np.ndarray:
    stripped = [c.strip() for c in cells]
    try:
        return np.array([float(c) if c else np.nan for c in stripped], dtype=np.float64)
    except ValueError:
        return np.array([c if c else None for c in stripped], dtype=object)


def _utf8_text(path: Path, error: type[MlopsError]) -> str:
    """The file as text (a byte-order mark dropped); bytes that are not UTF-8 are an error
    naming their line."""
    raw = path.read_bytes().removeprefix(codecs.BOM_UTF8)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise error(f"{path}:{line}: {_not_utf8(exc)}") from None


def _not_utf8(exc: UnicodeDecodeError) -> str:
    return f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x})"


def _read_csv(path: Path, error: type[MlopsError], kinds: Mapping[str, str]) -> DataFile:
    """A CSV's columns (see :func:`read_data_file`); a header name that lost surrounding
    whitespace is a :class:`~mlops_core.errors.DataFileWarning`: the feature is the
    stripped name, and a logged key written as in the file would never match it."""
    table = read_csv_table(path, error, unique_names=True)
    if not table.n_rows:
        raise error(f"{path}: CSV has a header but no rows")
    if table.renamed:
        names = ", ".join(f"{w!r} as {h!r}" for w, h in table.renamed)
        warnings.warn(
            DataFileWarning(
                f"{path}: header names are read without their surrounding whitespace: "
                f"{names}; a logged input_data key must be the stripped name to match"
            ),
            stacklevel=_caller_stacklevel(),
        )
    columns = {}
    for name, cells in zip(table.header, table.columns, strict=True):
        columns[name] = _csv_column(cells)
        if kinds.get(name) == "numeric" and columns[name].dtype.kind == "O":
            column = columns[name]
            row = next(i for i, v in enumerate(column) if v is not None and not _numeric_text(v))
            raise error(f"{path}:{table.lines[row]}: {_non_numeric(name, column[row])}")
    return DataFile(path, columns, table.lines)


def _caller_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning issued by this helper's caller name the code
    that called into this module (a profile built from the file, ``mlops drift``), not a
    line of it: the public functions call each other (``read_data_file`` -> ``read_data``
    -> ``_read_csv``), so no fixed number is right for every entry point.  (Python 3.12's
    ``skip_file_prefixes`` says the same, but 3.11 is supported.)"""
    frame = sys._getframe(1)  # the function that calls warnings.warn: stacklevel 1
    level = 1
    while frame.f_back is not None and frame.f_code.co_filename == __file__:
        frame = frame.f_back
        level += 1
    return level


def _non_numeric(name: str, value: Any) -> str:
    return f"column {name!r}: non-numeric value {value!r} (numeric in the reference)"


def is_number_or_missing(value: Any) -> bool:
    """What a numeric feature's value may be for the drift test: a real number (a boolean
    is 0/1), or None."""
    if value is None:
        return True
    return isinstance(value, numbers.Real) and not isinstance(value, (str, bytes))


def _check_npz_kinds(
    path: Path, arrays: Mapping[str, np.ndarray], kinds: Mapping[str, str], error: type[MlopsError]
) -> None:
    """A numeric reference feature's array holds numbers (an array of strings is refused
    by the drift test whatever the strings say; the first that is no number is quoted)."""
    for name, arr in arrays.items():
        if kinds.get(name) != "numeric" or arr.dtype.kind in "biuf" or not arr.size:
            continue
        index = next((i for i, v in enumerate(arr.tolist()) if not _numeric_text(v)), 0)
        if arr.dtype.kind == "O":
            index = next((i for i, v in enumerate(arr) if not is_number_or_missing(v)), -1)
            if index < 0:
                continue
        raise error(
            f"{path}: array {name!r}, element {index + 1}: non-numeric value "
            f"{arr[index].item()!r} (numeric in the reference)"
        )


def _numeric_text(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


# --- JSON lines -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Line:
    """One non-blank line of a JSON-lines file: its object, or why it has none."""

    number: int
    obj: dict[str, Any] | None = None
    reason: str = ""  # a key of SKIP_REASONS when obj is None
    problem: str = ""  # the error line's text, after "path:line: "
    non_finite: bool = False  # NaN or Infinity in it: not JSON, the exporter refuses it


class _Skips:
    """The lines a lenient read skipped: a count per reason, and the first line."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.first: int | None = None

    def add(self, reason: str, line: int) -> None:
        self.counts[reason] += 1
        self.first = line if self.first is None else min(self.first, line)


def _read_jsonl(
    path: Path,
    error: type[MlopsError],
    kinds: Mapping[str, str],
    skip_bad_lines: bool,
    class_field: str = "class",
) -> DataFile:
    """Rows of a JSON-lines file: flat objects, or a prediction log's ``input_data``.

    A file in which any line has an ``input_data`` object is read as a prediction log, as
    the exporter reads it: lines whose ``event`` is something else (``model_loaded``,
    ``health_check``: a model server's own log lines) are left out.  Read strictly (the
    default, for reference data), its first bad line is an error naming it, and so is a
    prediction without ``input_data`` (a line with ``input_data`` and no ``event`` counts).
    With ``skip_bad_lines`` (current data) every line the exporter would refuse is skipped
    and counted under the exporter's reason instead: not UTF-8, not JSON, nested too
    deeply, not an object, NaN or Infinity, a prediction without ``input_data``, a value of
    the wrong type for its feature in ``kinds``.  (A line with ``input_data`` and no
    ``event`` is a prediction in both reads; the exporter, which counts it
    ``missing_field``, is stricter here on purpose: see :func:`_prediction_inputs`.)  A
    plain file always fails on its first bad line.
    """
    lines = [_decode_line(number, raw) for number, raw in _raw_lines(path)]
    is_log = any(
        line.obj is not None and isinstance(line.obj.get("input_data"), dict) for line in lines
    )
    skips = _Skips() if is_log and skip_bad_lines else None
    rows: list[tuple[int, dict[str, Any]]] = []
    for line in lines:
        reason = line.reason or ("non_finite" if line.non_finite and skips else "")
        if reason and skips is None:
            raise error(f"{path}:{line.number}: {line.problem}")
        if reason and skips is not None:
            skips.add(reason, line.number)
        elif line.obj is not None:
            rows.append((line.number, line.obj))
    if is_log:
        output = kinds.get(PREDICTION_FEATURE)
        rows = _prediction_inputs(path, rows, error, skips, output, class_field)
    rows = _checked_kinds(path, rows, kinds, error, skips)
    if not rows and skips is not None and skips.first is not None:
        raise error(f"{path}: no usable prediction: {_skip_text(skips.counts, skips.first)}")
    if not rows:
        raise error(f"{path}: no records")
    columns = _jsonl_columns(path, [row for _, row in rows], error, lenient=skips is not None)
    if skips is None:
        return DataFile(path, columns, [n for n, _ in rows])
    return DataFile(path, columns, [n for n, _ in rows], dict(skips.counts), skips.first)


def _raw_lines(path: Path) -> list[tuple[int, bytes]]:
    """(1-based number, bytes) of each non-blank line; a byte-order mark dropped.

    Split on ``\\n`` only (``str.splitlines`` would also split at U+2028); decoding is each
    line's own business, so one binary line is one bad line, not a bad file.
    """
    raw = path.read_bytes().removeprefix(codecs.BOM_UTF8)
    return [(n, chunk) for n, chunk in enumerate(raw.split(b"\n"), 1) if chunk.strip()]


def _decode_line(number: int, raw: bytes) -> _Line:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _Line(number, reason="encoding", problem=_not_utf8(exc))
    constants: list[str] = []

    def constant(name: str) -> float:  # NaN, Infinity, -Infinity: Python's JSON extension
        constants.append(name)
        return float(name)

    try:
        obj = json.loads(text, parse_constant=constant, parse_int=_parse_int)
    except json.JSONDecodeError as exc:
        return _Line(number, reason="invalid_json", problem=f"invalid JSON ({exc.msg})")
    except ValueError as exc:  # a refusal that is no JSONDecodeError
        return _Line(number, reason="invalid_json", problem=f"invalid JSON ({exc})")
    except RecursionError:
        return _Line(number, reason="too_deep", problem="JSON nested too deeply")
    if not isinstance(obj, dict):
        return _Line(number, reason="not_an_object", problem="expected a JSON object")
    return _Line(number, obj, non_finite=bool(constants))


def _parse_int(text: str) -> int | float:
    """An integer of more digits than Python converts (4,300) is past 1.8e308: infinity, so
    a feature holding it is ``non_finite`` and an unread field holding it costs nothing, as
    in the exporter (whose decoder skips unread values unconverted).  Raising here, as
    ``json`` does, made the whole line invalid JSON."""
    try:
        return int(text)
    except ValueError:
        return math.inf


def _prediction_inputs(
    path: Path,
    objects: list[tuple[int, dict[str, Any]]],
    error: type[MlopsError],
    skips: _Skips | None,
    output_kind: str | None = None,
    class_field: str = "class",
) -> list[tuple[int, dict[str, Any]]]:
    """The ``input_data`` of a prediction log's predictions; other events are left out.

    With ``output_kind`` (the reference profiles the model's outputs), each row also gets
    ``__prediction__``, the logged ``prediction`` read as the exporter reads it
    (:func:`_model_output`), unless ``input_data`` has a field of that name, or no
    prediction gives one (then it is absent, as in a file without the outputs).

    A line without ``event`` is a prediction, in both reads: a hand-built current file of
    ``{"input_data": {...}}`` lines is data, as it is as a reference.  (The exporter counts
    such a line ``missing_field``: it follows a model server's log, whose predictions say
    what they are; ``mlops drift`` also reads files a person wrote.)  Only an ``event``
    that is present and not ``"prediction"`` makes another event.  A prediction without
    an ``input_data`` object is, with ``skips`` (a lenient read), counted there as the
    exporter counts it (``missing_field``; ``input_data`` that is no object is
    ``wrong_type``); without, it is an error.
    """
    rows = []
    for lineno, obj in objects:
        event = obj.get("event")
        if event is not None and event != "prediction":
            continue
        data = obj.get("input_data")
        if skips is not None and not isinstance(data, dict):
            skips.add("missing_field" if data is None else "wrong_type", lineno)
            continue
        if not isinstance(data, dict):
            what = "a line with no event" if event is None else "a prediction"
            raise error(
                f"{path}:{lineno}: {what} without an input_data object, "
                "in a prediction log whose other lines have one"
            )
        if output_kind is not None and PREDICTION_FEATURE not in data:
            output = _model_output(obj.get("prediction"), output_kind, class_field)
            data = {**data, PREDICTION_FEATURE: output}
        rows.append((lineno, data))
    if output_kind is not None and all(row.get(PREDICTION_FEATURE) is None for _, row in rows):
        rows = [(n, {k: v for k, v in row.items() if k != PREDICTION_FEATURE}) for n, row in rows]
    if not rows and (skips is None or skips.first is None):
        raise error(f"{path}: no predictions, only other events")
    return rows


def _model_output(prediction: Any, kind: str, class_field: str = "class") -> Any:
    """A logged ``prediction`` as the exporter's ``__prediction__`` (exporter/records.py):
    a classifier's class (``{class_field: ...}``, which may be a float such as ``1.0``, or
    a bare text, integer or boolean), or a regressor's value (``{"value": ...}``, a bare
    number, or a numeric class); None when the prediction has none (a list of
    probabilities, say)."""
    if kind == "numeric":
        if isinstance(prediction, dict):
            value = prediction.get("value")
            prediction = prediction.get(class_field) if value is None else value
        ok = isinstance(prediction, int | float) and not isinstance(prediction, bool)
        return prediction if ok else None
    if isinstance(prediction, dict):
        cls = prediction.get(class_field)
        return None if isinstance(cls, list | dict) else cls
    return None if isinstance(prediction, float | list | dict) else prediction


def _checked_kinds(
    path: Path,
    rows: list[tuple[int, dict[str, Any]]],
    kinds: Mapping[str, str],
    error: type[MlopsError],
    skips: _Skips | None,
) -> list[tuple[int, dict[str, Any]]]:
    """The rows whose values fit ``kinds``.  Read leniently, a row that does not is
    skipped under the exporter's reason (:func:`_refused`); read strictly, a non-numeric
    value of a numeric column is an error naming the line."""
    if not kinds:
        return rows
    kept = []
    for lineno, row in rows:
        for name, kind in kinds.items():
            value = row.get(name)
            if skips is None:
                if kind == "numeric" and not is_number_or_missing(value):
                    raise error(f"{path}:{lineno}: {_non_numeric(name, value)}")
            elif reason := _refused(value, kind, output=name == PREDICTION_FEATURE):
                skips.add(reason, lineno)
                break
        else:
            kept.append((lineno, row))
    return kept


def _refused(value: Any, kind: str, *, output: bool = False) -> str | None:
    """The exporter's reason for refusing a feature's logged value, or None if it takes it.

    Numeric: a JSON number (a boolean or a string is ``wrong_type``; a number too large
    for a float is ``non_finite``).  Categorical: a string, an integer or a boolean; for
    the model's output (``output``), a float class too (``1.0``, counted as ``"1"``).
    """
    if output and kind == "categorical" and isinstance(value, float):
        return None
    if value is None:
        return None
    if kind == "numeric":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "wrong_type"
        try:
            return None if math.isfinite(float(value)) else "non_finite"
        except OverflowError:  # an integer past 1.8e308
            return "non_finite"
    return None if isinstance(value, str | int) else "wrong_type"  # bool is an int


def _jsonl_columns(
    path: Path, rows: list[dict[str, Any]], error: type[MlopsError], *, lenient: bool
) -> dict[str, np.ndarray]:
    """One object array per key.  A key with nested values is an error; in a lenient read,
    whose values were checked for the reference's features only, such a key is left out
    instead (no drift test could use it)."""
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    data: dict[str, np.ndarray] = {}
    for name in names:
        values = [row.get(name) for row in rows]
        if any(isinstance(v, (dict, list)) for v in values):
            if lenient:
                continue
            raise error(f"{path}: feature {name!r} has nested values")
        data[name] = np.array(values, dtype=object)
    return data


def _skip_text(skipped: Mapping[str, int], first: int) -> str:
    """``N lines skipped, as the exporter skips them (1 invalid JSON, ...; first at line L)``."""
    total = sum(skipped.values())
    parts = [f"{skipped[r]} {label}" for r, label in SKIP_REASONS.items() if skipped.get(r)]
    return (
        f"{total} {'line' if total == 1 else 'lines'} skipped, as the exporter skips them "
        f"({', '.join(parts)}; first at line {first})"
    )
