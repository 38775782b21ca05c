"""Which model a prediction belongs to, and whether its version is the one being judged.

One exporter may watch several models.  Each lists a ``match: {field: value}``; a record goes
to the **first listed** model whose every field equals the record's (a model without
``match`` takes every record).  A record no model matches is *unrouted*: counted, and kept
out of every window.

Two models that could both match one record are allowed, the first listed winning, so a
catch-all model can come last.  A model that can never receive a record, because an earlier
one matches everything it matches (its ``match`` holds all of the earlier's fields and
values), is a configuration error: :class:`Router` refuses it with one line naming both.
:meth:`Router.overlaps` lists the pairs that only may collide, for a warning at start-up.

Values are compared as text: the parser hands over each match field as the record's string,
or ``None`` when it is absent or not a string, so ``shard: "3"`` in a record matches
``match: {shard: "3"}`` (and ``3`` in the config, read as text) but ``"shard": 3`` does not.

**Version gating.**  Each model's window holds only the predictions of the version whose
reference drift is judged against (:mod:`exporter.references`).  A record whose
``model_version`` equals it goes to the window; a record without ``model_version`` is taken
as that version (a model server that does not log its version keeps working as before); a
model with no known version (a file reference) takes every version.  Predictions of other
versions (a canary, the old version draining after a promotion) are counted per version
(:class:`VersionCounts`: the first ``max_versions`` versions seen keep their label, later
ones are added to ``__other__``) and kept out of the window.

**Cost.**  Ingest parses about 760,000 lines a second (1.3 us a line), so routing works on a
batch's columns, never a line at a time in Python.  The usual batch (one model server per
file, one version) is recognised by ``list.count`` on each column, with no key built; any
other batch numbers each row's key (its match values and version) in one pass in C (``map``
over a dict that numbers a new key on first sight), counts them with ``numpy.bincount``, and
resolves each *distinct* key once.  ``python bench/bench_routing.py`` measures it: 15 ns a
line for the usual batch, 70-100 ns interleaved (see docs/registry.md).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from exporter.errors import ConfigError
from mlops_core.constants import OTHER_BUCKET

__all__ = [
    "ALL_ROWS",
    "DEFAULT_MAX_VERSIONS",
    "MAX_VERSION_LABEL",
    "OTHER_VERSION",
    "ModelRows",
    "Route",
    "RoutedBatch",
    "Router",
    "VersionCounts",
]

DEFAULT_MAX_VERSIONS = 10
"""Versions per model counted under their own label; later ones go to ``__other__``."""
OTHER_VERSION = OTHER_BUCKET
"""The label of every version seen after the first ``max_versions`` (``__other__``)."""
MAX_VERSION_LABEL = 128
"""Longer versions are cut to this many characters: a label value must stay small."""
ALL_ROWS = slice(None)
"""``ModelRows.rows`` when every row of the batch goes to that model's window."""
_NO_ROWS = slice(0, 0)
_CACHE_MAX = 4096
"""Distinct keys remembered; past this (hostile logs) a table starts again empty between
batches, so memory stays bounded (by this plus one batch)."""
_EMPTY: Mapping[str, int] = MappingProxyType({})


@dataclass(frozen=True)
class Route:
    """One model's routing rule: its name and the fields a record must carry to be its."""

    model: str
    match: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ModelRows:
    """What one batch holds for one model.

    ``rows`` selects the predictions for its window: :data:`ALL_ROWS`, an empty slice, or
    an index array (``column[rows]`` either way).  ``other_versions`` counts its
    predictions of other versions by the version as logged (fold them with
    :class:`VersionCounts`).
    """

    rows: slice | np.ndarray
    n_window: int = 0
    other_versions: Mapping[str, int] = field(default_factory=lambda: _EMPTY)

    @property
    def n_predictions(self) -> int:
        """The model's predictions in the batch, whatever their version."""
        return self.n_window + sum(self.other_versions.values())


@dataclass(frozen=True, slots=True)
class RoutedBatch:
    """A batch's predictions split by model (in the order the routes were listed)."""

    models: tuple[ModelRows, ...]
    unrouted: int = 0


class Router:
    """Routes parsed predictions to models; built once from the config, then pure.

    ``routes`` in the config's order (first match wins).  ``fields`` are the record fields
    the parser must hand over as columns, in a fixed order.  The one piece of state is a
    bounded cache of resolved keys, which changes no result.
    """

    def __init__(self, routes: Sequence[Route], *, key: str = "models") -> None:
        if not routes:
            raise ConfigError(f"{key}: at least one model is needed")
        seen: dict[str, int] = {}
        for i, route in enumerate(routes):
            if route.model in seen:
                raise ConfigError(
                    f"{key}[{i}]: model {route.model!r} is listed twice"
                    f" (also {key}[{seen[route.model]}])"
                )
            seen[route.model] = i
            for j, earlier in enumerate(routes[:i]):
                if earlier.match.items() <= route.match.items():
                    raise ConfigError(
                        f"{key}[{i}] ({route.model}): never receives a record: every record its"
                        f" match selects goes to {key}[{j}] ({earlier.model}), listed first;"
                        " list the narrower match first"
                    )
        self.routes = tuple(routes)
        self.fields: tuple[str, ...] = tuple(dict.fromkeys(f for r in self.routes for f in r.match))
        position = {f: i for i, f in enumerate(self.fields)}
        # each route as (position, value) pairs over the key's match values
        self._rules = tuple(
            tuple((position[f], v) for f, v in r.match.items()) for r in self.routes
        )
        self._cache: dict[tuple[Any, ...], int | None] = {}
        self._ids = _KeyIds()

    def __len__(self) -> int:
        return len(self.routes)

    def overlaps(self) -> list[tuple[str, str]]:
        """(earlier, later) model pairs one record could match both of; the earlier wins."""
        out = []
        for i, later in enumerate(self.routes):
            for earlier in self.routes[:i]:
                common = earlier.match.keys() & later.match.keys()
                if all(earlier.match[f] == later.match[f] for f in common):
                    out.append((earlier.model, later.model))
        return out

    def model_of(self, record: Mapping[str, Any]) -> int | None:
        """The index of the model a record (a mapping of its fields) goes to, or ``None``."""
        values = tuple(_text(record.get(f)) for f in self.fields)
        return self._resolve(values)

    def route(
        self,
        n: int,
        columns: Mapping[str, Sequence[str | None]],
        versions: Sequence[str | None] | None,
        monitored: Sequence[str | None],
    ) -> RoutedBatch:
        """Split ``n`` predictions by model and version.

        ``columns`` holds the values of each of :attr:`fields` (``None``: absent); a field
        missing from it is absent from every row.  ``versions`` is the rows'
        ``model_version`` (``None`` for all: none logged one).  ``monitored[i]`` is the
        version model ``i`` judges (``None``: every version goes to its window).
        """
        n_models = len(self.routes)
        if len(monitored) != n_models:
            raise ValueError(f"monitored has {len(monitored)} versions for {n_models} models")
        if n == 0:
            return RoutedBatch(tuple(ModelRows(_NO_ROWS) for _ in range(n_models)))
        if not self.fields and versions is None:  # one model, nothing to tell apart
            return RoutedBatch((ModelRows(ALL_ROWS, n),))
        cols = self._columns(n, columns, versions)
        ids: np.ndarray | None = None  # each row's key id; None: one key for the batch
        if all(_constant(c, n) for c in cols):  # the usual batch: found by a count per column
            keys: Sequence[Hashable] = [_key(cols, 0)]
            counts: Sequence[int] = [n]
        else:  # one pass in C: a key's id is its place in the table, added on first sight
            if len(self._ids) > _CACHE_MAX:
                self._ids = _KeyIds()
            table = self._ids
            ids = np.fromiter(map(table.__getitem__, _keys(cols)), np.intp, count=n)
            per_id = np.bincount(ids)
            present = np.flatnonzero(per_id)
            keys = [table.keys_[i] for i in present]
            counts = per_id[present].tolist()
        window = [0] * n_models
        others: list[Counter[str]] = [Counter() for _ in range(n_models)]
        dest = [-1] * len(keys)  # the model whose window takes the key's rows, else -1
        unrouted = 0
        for j, (k, count) in enumerate(zip(keys, counts, strict=True)):
            values, version = self._split(k, versions is not None)
            m = self._resolve(values)
            if m is None:
                unrouted += count
            elif version is None or monitored[m] is None or version == monitored[m]:
                window[m] += count
                dest[j] = m
            else:
                others[m][version] += count
        filled = [m for m in range(n_models) if window[m]]
        rows: list[slice | np.ndarray] = [_NO_ROWS] * n_models
        if len(filled) == 1 and window[filled[0]] == n:
            rows[filled[0]] = ALL_ROWS  # every row to one window: no index needed
        elif filled:
            assert ids is not None  # one key sends its rows to one window or none
            lut = np.full(len(self._ids.keys_), -1, np.intp)
            lut[present] = dest
            codes = lut[ids]
            for m in filled:
                rows[m] = np.flatnonzero(codes == m)
        frozen = [MappingProxyType(dict(o)) if o else _EMPTY for o in others]
        return RoutedBatch(
            tuple(ModelRows(rows[m], window[m], frozen[m]) for m in range(n_models)), unrouted
        )

    # --- internals ------------------------------------------------------------------------

    def _columns(
        self,
        n: int,
        columns: Mapping[str, Sequence[str | None]],
        versions: Sequence[str | None] | None,
    ) -> list[Sequence[Any]]:
        """The key's columns: each match field (absent: all ``None``), then the version."""
        cols: list[Sequence[Any]] = [
            [None] * n if (c := columns.get(f)) is None else c for f in self.fields
        ]
        if versions is not None:
            cols.append(versions)
        for c in cols:
            if len(c) != n:
                raise ValueError(f"a column has {len(c)} values for {n} predictions")
        return cols

    def _split(self, k: Any, has_versions: bool) -> tuple[tuple[Any, ...], Any]:
        """(match values, version) of a key made by :func:`_keys`."""
        n_fields = len(self.fields)
        if not has_versions:
            return ((k,) if n_fields == 1 else k), None
        if n_fields == 0:
            return (), k
        return k[:-1], k[-1]

    def _resolve(self, values: tuple[Any, ...]) -> int | None:
        cache = self._cache
        if values in cache:
            return cache[values]
        found = next(
            (i for i, rule in enumerate(self._rules) if all(values[p] == v for p, v in rule)),
            None,
        )
        if len(cache) >= _CACHE_MAX:
            cache.clear()
        cache[values] = found
        return found


class _KeyIds(dict[Hashable, int]):
    """Row key -> a small integer, its place in ``keys_``; a new key is added on lookup."""

    def __init__(self) -> None:
        super().__init__()
        self.keys_: list[Hashable] = []

    def __missing__(self, key: Hashable) -> int:  # called from C, only for a new key
        i = self[key] = len(self.keys_)
        self.keys_.append(key)
        return i


def _constant(column: Sequence[Any], n: int) -> bool:
    """Whether every value equals the first; checked in C for a list (a few ns a value)."""
    return type(column) is list and column.count(column[0]) == n


def _keys(cols: list[Sequence[Any]]) -> Iterator[Hashable]:
    """One key per row (made as :func:`_key` makes it): one column's value, else a tuple."""
    return iter(cols[0]) if len(cols) == 1 else zip(*cols, strict=True)


def _key(cols: list[Sequence[Any]], row: int) -> Hashable:
    return cols[0][row] if len(cols) == 1 else tuple(c[row] for c in cols)


def _text(value: Any) -> str | None:
    """A record's field as the parser hands it over: its string, else absent."""
    return value if isinstance(value, str) else None


class VersionCounts:
    """Predictions of versions other than the monitored one, as counters with bounded labels.

    The first ``max_versions`` versions seen keep their own label for the life of the
    process; later ones are added to ``__other__``, so a label never changes meaning and the
    series are bounded.  Versions longer than :data:`MAX_VERSION_LABEL` are cut.  Not
    locked: the caller adds under its own lock (ingest's counters hold one).
    """

    def __init__(self, max_versions: int = DEFAULT_MAX_VERSIONS) -> None:
        if max_versions < 1:
            raise ConfigError(f"max_versions must be at least 1, not {max_versions}")
        self.max_versions = max_versions
        self._totals: dict[str, int] = {}
        self._labelled = 0

    def add(self, counts: Mapping[str, int]) -> None:
        totals = self._totals
        for version, count in counts.items():
            label = version[:MAX_VERSION_LABEL]
            if label not in totals:
                if self._labelled < self.max_versions:
                    self._labelled += 1
                    totals[label] = 0
                else:  # fold into the overflow series: labels never change meaning
                    label = OTHER_VERSION
                    totals.setdefault(label, 0)
            totals[label] += count

    def totals(self) -> Mapping[str, int]:
        """Label -> predictions so far (a copy)."""
        return MappingProxyType(dict(self._totals))

    def restore(self, pairs: Sequence[tuple[str, int]]) -> None:
        """Start again from saved ``(label, count)`` pairs, in the order first seen.

        A saved ``__other__`` stays the overflow; labels beyond ``max_versions`` (a smaller
        limit than the one they were saved with) are added to it.
        """
        self._totals, self._labelled = {}, 0
        for label, count in pairs:
            if label == OTHER_VERSION:
                self._totals[OTHER_VERSION] = self._totals.get(OTHER_VERSION, 0) + count
            else:
                self.add({label: count})
