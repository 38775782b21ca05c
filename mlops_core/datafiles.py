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

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlops_core.errors import MlopsError, ProfileError

__all__ = ["CsvTable", "read_csv_table", "read_data_file", "read_npz_arrays"]

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

    @property
    def n_rows(self) -> int:
        return len(self.columns[0]) if self.columns else 0


def read_data_file(
    path: str | Path, error: type[MlopsError] = ProfileError
) -> dict[str, np.ndarray]:
    """Columns of a ``.csv``, ``.jsonl``/``.ndjson`` or ``.npz`` file as 1-D arrays.

    CSV columns whose non-empty cells all parse as numbers become float64 (empty cells NaN);
    other columns stay strings with empty cells as None.  A CSV needs unique, non-empty
    column names and at least one row.  Missing files raise ``OSError``.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        table = read_csv_table(path, error, unique_names=True)
        if not table.n_rows:
            raise error(f"{path}: CSV has a header but no rows")
        pairs = zip(table.header, table.columns, strict=True)
        return {name: _csv_column(cells) for name, cells in pairs}
    if suffix in JSONL_SUFFIXES:
        return _read_jsonl(path, error)
    if suffix in NPZ_SUFFIXES:
        return {name: arr.reshape(-1) for name, arr in read_npz_arrays(path, error).items()}
    raise error(f"{path}: unknown data format {suffix!r} (use .csv, .jsonl, .ndjson, .npz)")


def read_csv_table(
    path: str | Path, error: type[MlopsError] = ProfileError, *, unique_names: bool = False
) -> CsvTable:
    """The header and raw cells of a CSV file, whatever its suffix.

    UTF-8 with or without a byte-order mark (spreadsheet exports write one); header names
    stripped of surrounding spaces; blank lines skipped.  Parsing is strict: a quote left
    open is an error at the line its row starts on, not a last field that silently swallowed
    every line after it, and a row with another number of fields than the header is an
    error naming its line.  A header without rows is a table without rows.  With
    ``unique_names`` the names must be unique and non-empty (checked before any row is
    read); without, a caller that picks columns by position may take an unnamed one.
    """
    path = Path(path)
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh, strict=True)
        try:
            header = next(reader)
        except StopIteration:
            raise error(f"{path}: empty CSV file") from None
        except (csv.Error, UnicodeDecodeError) as exc:
            raise _csv_error(error, path, 1, reader.line_num, exc) from None
        header = [h.strip() for h in header]
        if unique_names and (not header or not all(header) or len(set(header)) != len(header)):
            raise error(f"{path}: CSV header needs unique, non-empty column names")
        columns: list[list[str]] = [[] for _ in header]
        start = reader.line_num + 1  # the line the next row starts on
        try:
            for row in reader:
                if row and len(row) != len(header):
                    message = f"{len(row)} fields, header has {len(header)}"
                    if reader.line_num > start:  # a quoted field with line breaks
                        message += f" (a quoted field runs to line {reader.line_num})"
                    raise error(f"{path}:{start}: {message}")
                start = reader.line_num + 1
                if not row:  # a blank line
                    continue
                for col, cell in zip(columns, row, strict=True):
                    col.append(cell)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise _csv_error(error, path, start, reader.line_num, exc) from None
    return CsvTable(header, columns)


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


def _read_jsonl(path: Path, error: type[MlopsError]) -> dict[str, np.ndarray]:
    """Rows of a JSON-lines file: flat objects, or a prediction log's ``input_data``.

    A file in which any line has an ``input_data`` object is read as a prediction log, as
    the exporter reads it: lines whose ``event`` is something else (``model_loaded``,
    ``health_check``: a model server's own log lines) are skipped, and a prediction without
    ``input_data`` is an error naming its line.
    """
    objects: list[tuple[int, dict[str, Any]]] = []
    try:
        lines = path.read_text(encoding="utf-8-sig").split("\n")  # not splitlines: U+2028
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text ({exc})") from None
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise error(f"{path}:{lineno}: invalid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise error(f"{path}:{lineno}: expected a JSON object")
        objects.append((lineno, obj))
    if any(isinstance(obj.get("input_data"), dict) for _, obj in objects):
        rows = _prediction_inputs(path, objects, error)
    else:
        rows = [obj for _, obj in objects]
    if not rows:
        raise error(f"{path}: no records")
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    data: dict[str, np.ndarray] = {}
    for name in names:
        values = [row.get(name) for row in rows]
        if any(isinstance(v, (dict, list)) for v in values):
            raise error(f"{path}: feature {name!r} has nested values")
        data[name] = np.array(values, dtype=object)
    return data


def _prediction_inputs(
    path: Path, objects: list[tuple[int, dict[str, Any]]], error: type[MlopsError]
) -> list[dict[str, Any]]:
    """The ``input_data`` of a prediction log's predictions; other events are skipped."""
    rows = []
    for lineno, obj in objects:
        event = obj.get("event")
        if event is not None and event != "prediction":
            continue
        data = obj.get("input_data")
        if not isinstance(data, dict):
            what = "a line with no event" if event is None else "a prediction"
            raise error(
                f"{path}:{lineno}: {what} without an input_data object, "
                "in a prediction log whose other lines have one"
            )
        rows.append(data)
    if not rows:
        raise error(f"{path}: no predictions, only other events")
    return rows
