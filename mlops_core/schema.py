"""Typed config sections and their one error style.

Every configuration the project reads (the exporter's file, its web config, the ``alerts:``
section, the validation gate's ``gate.yml``, the rules' ``thresholds.yml``) is declared as
frozen msgspec Structs deriving from :class:`Schema`, and read with :func:`convert`.  A wrong
value raises the caller's own error class with one line: the dotted path, what was expected,
what was given and, for an unknown key, the closest known key::

    drift.intervall: unknown key (did you mean 'drift.interval'?)
    drift.min_samples: expected a positive integer, got 'many' (str)
    drift.ks.method: expected one of asymp, auto, exact, got 'exakt' (did you mean 'exact'?)
    logs.paths: required key missing

msgspec checks the types and constraints (``Annotated[int, Meta(ge=1)]``).  What it does not
do is done here, while walking the data along the declared types: name an unknown key with a
suggestion (difflib's close matches only: a far-fetched suggestion misleads more than none),
point at the exact entry of a mapping (msgspec says ``$.thresholds[...]``), say what was
expected in words (``Meta(description=...)``) rather than as ``Expected `int` >= 1`` (and
never echo a value marked ``Meta(extra={"secret": True})``), apply
:class:`Parse` functions (durations, sizes) before the type check, and read a YAML ``null``
as "not set", so the default applies, as the configs always have.

Two rules serve documents the project writes itself and reads back (the registry's
metadata) rather than configs: a required field that admits ``None`` (``str | None`` without
a default) must be present, and a ``null`` written there is its value; a Struct declared
with ``forbid_unknown_fields=False`` lets keys it does not know pass (a later version may add
some), where a :class:`Schema` names them as errors.

Error lines are built from the walk's own path, never by reading msgspec's message text, so a
change of wording in msgspec cannot move an error to the wrong key.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin, overload

import msgspec
from msgspec import Meta

from mlops_core import durations
from mlops_core._common import is_finite_number
from mlops_core.errors import DurationError
from mlops_core.suggest import closest

__all__ = [
    "AtMost",
    "Duration",
    "FiniteNumber",
    "Parse",
    "PositiveDuration",
    "Schema",
    "StrMap",
    "Text",
    "convert",
    "describe",
    "did_you_mean",
    "leaves",
    "positive_duration",
    "unwrap",
]

T = TypeVar("T")


class Schema(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Base of every config section: immutable, and an unknown key is an error.

    Subclasses repeat ``frozen=True``: msgspec inherits it anyway, but mypy's dataclass
    model of Structs takes a subclass without it for a mutable one.
    """


class Parse:
    """``Annotated`` marker: ``func`` turns the raw value into the declared type first.

    ``func`` raises ``ValueError`` or ``TypeError`` with a message that describes the value
    (``bad duration '3x'; ...``); :func:`convert` puts the key in front of it.  Markers stack
    in order, before msgspec checks the result against the declared type and constraints.
    """

    __slots__ = ("func",)

    def __init__(self, func: Callable[[Any], Any]) -> None:
        self.func = func

    def __repr__(self) -> str:
        return f"Parse({getattr(self.func, '__name__', self.func)!r})"


class AtMost(Parse):
    """``Annotated`` marker: a number above ``limit`` is refused, naming the bound.

    An upper bound keeps a value the process cannot survive (a window of 10**14 samples, a
    century-long poll) from being read and failing later in numpy, the scheduler or the
    follower, with a traceback.  A marker of its own rather than ``Meta(le=...)``: msgspec's
    failure would be reported as the type's description, without the bound; and the docs'
    key table reads ``limit`` from here, so the bound is written once.  ``show`` writes a
    number as the user would (``1h`` for a duration); by default the bound is ``10,000,000``
    and the given value as written.  Place it after the :class:`Parse` that makes the number
    (a duration, a size); anything that is not a number passes to the type check.
    """

    __slots__ = ("limit", "show")

    def __init__(self, limit: float, show: Callable[[float], str] | None = None) -> None:
        super().__init__(self._check)
        self.limit = limit
        self.show = show

    def _check(self, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool) and value > self.limit:
            shown = repr(value) if self.show is None else self.show(value)
            raise ValueError(f"must be at most {self.shown_limit()}, got {shown}")
        return value

    def shown_limit(self) -> str:
        """The bound as an error line and the docs write it."""
        return f"{self.limit:,}" if self.show is None else self.show(self.limit)

    def __repr__(self) -> str:
        return f"AtMost({self.limit!r})"


class _Problem(Exception):
    """Raised inside the walk: where (the full dotted path) and what."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


class _Walk:
    """One conversion's settings, so the recursive functions take only (value, type, path)."""

    def __init__(
        self,
        at: str,
        removed: Mapping[str, str],
        missing: Callable[[str], str],
    ) -> None:
        self.at = at
        self.removed = removed
        self.missing = missing

    def full(self, path: str) -> str:
        """The path as the user sees it: the document's place (``at``) then its own path."""
        if not self.at:
            return path
        if not path:
            return self.at
        return self.at + path if path.startswith("[") else f"{self.at}.{path}"


@overload
def convert(
    data: Any,
    type_: type[T],
    *,
    error: Callable[[str], Exception],
    at: str = ...,
    source: str | None = ...,
    labels: Mapping[str, str] | None = ...,
    removed: Mapping[str, str] | None = ...,
    missing: str | Callable[[str], str] = ...,
) -> T: ...
@overload
def convert(
    data: Any,
    type_: Any,
    *,
    error: Callable[[str], Exception],
    at: str = ...,
    source: str | None = ...,
    labels: Mapping[str, str] | None = ...,
    removed: Mapping[str, str] | None = ...,
    missing: str | Callable[[str], str] = ...,
) -> Any: ...
def convert(
    data: Any,
    type_: Any,
    *,
    error: Callable[[str], Exception],
    at: str = "",
    source: str | None = None,
    labels: Mapping[str, str] | None = None,
    removed: Mapping[str, str] | None = None,
    missing: str | Callable[[str], str] = "required key missing",
) -> Any:
    """``data`` (plain YAML/JSON values) as an instance of ``type_`` (a Struct, usually).

    On the first problem raises ``error(line)``, the line being ``[source: ]path: problem``.
    ``at`` is where ``data`` sits in a larger document (``features.age``): it starts every
    path.  A did-you-mean names the key by its path inside ``data`` (``'drift.interval'``),
    or inside the entry of a free-form mapping it is in (``thresholds.lat.warn`` suggests
    ``'warning'``): the part of the path the user's own names do not make.  ``labels``
    shows a key under another name (the environment variable that set it); a path below a
    labelled key keeps its tail (``MLOPS_EXPORTER_DRIFT_TESTS[1]``).  ``removed`` maps a key
    that no longer exists (its path inside ``data``) to the line that says what replaced it.
    ``missing`` is the problem of a required key, or a function of its full path giving it.
    """
    if isinstance(missing, str):
        text = missing

        def missing(_key: str) -> str:
            return text

    walk = _Walk(at, removed or {}, missing)
    try:
        result = _value(walk, data, type_, "")
    except _Problem as problem:
        where = _relabel(problem.path, labels or {})
        parts = [p for p in (source, where) if p]
        raise error(": ".join([*parts, problem.message])) from None
    return result


def describe(value: Any) -> str:
    """A given value for an error line: ``'many' (str)``, ``[] (list)``; a long one cut, with
    its length (``[0.001, 0.002, ...… (list of 199)``): one line must stay readable."""
    text = repr(value)
    kind = type(value).__name__
    if len(text) <= _SHOWN_CHARS:
        return f"{text} ({kind})"
    size = f" of {len(value)}" if isinstance(value, list | tuple | dict | str) else ""
    return f"{text[: _SHOWN_CHARS - 20]}… ({kind}{size})"


_SHOWN_CHARS = 80
"""Longest given value an error line shows whole."""


def did_you_mean(word: str, choices: Iterable[str], show: Callable[[str], str] = repr) -> str:
    """`` (did you mean 'x'?)`` naming the closest of ``choices``, or ``""`` if none is
    close (:func:`mlops_core.suggest.closest`: a suggestion that misleads is worse than none)."""
    hint = closest(word, choices)
    return f" (did you mean {show(hint)}?)" if hint is not None else ""


def unwrap(annotation: Any) -> tuple[Any, list[Any]]:
    """The type inside ``Annotated[...]`` and its metadata (``Meta``, :class:`Parse`)."""
    extras: list[Any] = []
    while get_origin(annotation) is Annotated:
        annotation, *more = get_args(annotation)
        extras[:0] = more
    return annotation, extras


def leaves(struct: type[msgspec.Struct], prefix: str = "") -> dict[str, msgspec.structs.FieldInfo]:
    """Every dotted key of a Struct tree whose value is not itself a section, in order.

    The exporter derives its environment variables and the docs' key table from these.
    """
    out: dict[str, msgspec.structs.FieldInfo] = {}
    for info in msgspec.structs.fields(struct):
        key = f"{prefix}{info.encode_name}"
        section = _struct_of(info.type)
        if section is None:
            out[key] = info
        else:
            out.update(leaves(section, key + "."))
    return out


# --- value types the configs share --------------------------------------------------------


def _finite(raw: Any) -> float:
    if not is_finite_number(raw):
        raise ValueError(f"expected a finite number, got {describe(raw)}")
    return float(raw)


def positive_duration(raw: Any) -> float:
    """Seconds > 0 from a duration (:mod:`mlops_core.durations`), else ``DurationError``."""
    seconds = durations.parse_duration(raw)
    if seconds <= 0:
        raise DurationError(f"duration must be positive, got {raw!r}")
    return seconds


def _text_map(raw: Any) -> Any:
    """Labels and headers: names and values sent as text, so ``retries: 5`` needs no quotes."""
    if not isinstance(raw, Mapping):
        return raw  # msgspec says "expected a mapping"
    return {str(k): v if isinstance(v, str) else str(v) for k, v in raw.items()}


#: a string with something in it
Text = Annotated[str, Meta(pattern=r"\S", description="a non-empty string")]
#: an int or float, finite (never a boolean)
FiniteNumber = Annotated[float, Parse(_finite)]
#: seconds >= 0: Prometheus's duration grammar, or a bare YAML number of seconds
Duration = Annotated[float, Parse(durations.parse_duration)]
#: seconds > 0, written as :data:`Duration`
PositiveDuration = Annotated[float, Parse(positive_duration)]
#: names to values, both kept as text
StrMap = Annotated[
    dict[str, str], Parse(_text_map), Meta(description="a mapping of names to values")
]


# --- the walk ---------------------------------------------------------------------------------


def _value(walk: _Walk, value: Any, annotation: Any, path: str, root: str = "") -> Any:
    """``value`` converted to ``annotation``; ``root`` is where suggestions start from."""
    base, extras = unwrap(annotation)
    given = value  # what the user wrote: the error shows it, not what Parse made of it
    for parse in (e for e in extras if isinstance(e, Parse)):
        if value is None:
            break
        try:
            value = parse.func(value)
        except (ValueError, TypeError) as exc:
            raise _Problem(walk.full(path), str(exc)) from None
    if value is None and _is_optional(base):
        return None
    if (inner := _without_none(base)) is not base:  # X | None, and the value is not None
        return _value(walk, value, inner, path, root)
    if isinstance(base, type) and issubclass(base, msgspec.Struct):
        return _struct(walk, value, base, path, root, extras)
    origin = get_origin(base)
    if origin in (dict, Mapping) and isinstance(value, Mapping):
        key_type, item_type = get_args(base) or (Any, Any)
        for key in value:
            if key_type is str and not isinstance(key, str):
                raise _Problem(walk.full(_join(path, str(key))), "keys must be strings")
        # an entry of a free-form mapping (a feature, a metric) starts its own suggestions
        items = {
            k: _value(walk, v, item_type, _join(path, k), _join(path, k)) for k, v in value.items()
        }
        return _leaf(walk, items, annotation, path, shown=value)
    if origin in (tuple, list) and isinstance(value, list | tuple):
        args = get_args(base)
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            return _leaf(walk, value, annotation, path)  # fixed-length tuple: msgspec alone
        item_type = args[0] if args else Any
        converted = [_value(walk, v, item_type, f"{path}[{i}]", root) for i, v in enumerate(value)]
        return _leaf(walk, converted, annotation, path, shown=value)
    return _leaf(walk, value, annotation, path, shown=given)


def _struct(
    walk: _Walk,
    value: Any,
    struct: type[msgspec.Struct],
    path: str,
    root: str,
    extras: list[Any],
) -> msgspec.Struct:
    if isinstance(value, struct):  # read already
        return value
    if not isinstance(value, Mapping):
        what = _description(extras) or "a mapping"
        raise _Problem(walk.full(path), f"expected {what}, got {describe(value)}")
    fields = {info.encode_name: info for info in msgspec.structs.fields(struct)}
    strict = struct.__struct_config__.forbid_unknown_fields
    for key in value:
        key_path = _join(path, str(key))
        if key_path in walk.removed:
            raise _Problem(walk.full(key_path), walk.removed[key_path])
        if key not in fields and strict:
            hint = did_you_mean(str(key), fields, lambda name: repr(_below(root, path, name)))
            known = hint or f" (expected one of: {', '.join(fields)})"
            raise _Problem(walk.full(key_path), f"unknown key{known}")
    out: dict[str, Any] = {}
    for name, info in fields.items():
        raw = value.get(name)
        field_path = _join(path, name)
        if raw is None:
            if not info.required:
                continue
            if name in value and _is_optional(unwrap(info.type)[0]):
                out[name] = None  # required, and may be null: written as null
                continue
            if _struct_of(info.type) is None or _is_optional(unwrap(info.type)[0]):
                raise _Problem(walk.full(field_path), walk.missing(walk.full(field_path)))
            raw = {}  # a missing section: name its first missing key
        out[name] = _value(walk, raw, info.type, field_path, root)
    return _leaf(walk, out, struct, path, shown=value)


_SAME = object()


def _leaf(walk: _Walk, value: Any, annotation: Any, path: str, shown: Any = _SAME) -> Any:
    """msgspec's conversion of one value, its error said in words at ``path``."""
    try:
        return msgspec.convert(value, annotation, strict=True)
    except msgspec.ValidationError:
        given = value if shown is _SAME else shown
        raise _Problem(walk.full(path), _expected(annotation, given)) from None


def _expected(annotation: Any, given: Any) -> str:
    base, extras = unwrap(annotation)
    description = _description(extras)
    if any(isinstance(e, msgspec.Meta) and (e.extra or {}).get("secret") for e in extras):
        # a password hash, say: what was written may be the password itself
        return (
            f"expected {description or _in_words(base)}, got a {type(given).__name__} (not shown)"
        )
    if description is None and get_origin(base) is Literal:
        choices = [str(c) for c in get_args(base)]
        hint = did_you_mean(str(given), choices) if isinstance(given, str) else ""
        return f"expected one of {', '.join(choices)}, got {given!r}{hint}"
    if description is None:
        description = _in_words(base)
    return f"expected {description}, got {describe(given)}"


def _description(extras: list[Any]) -> str | None:
    for extra in reversed(extras):
        if isinstance(extra, msgspec.Meta) and extra.description:
            return str(extra.description)
    return None


_WORDS: dict[Any, str] = {
    int: "an integer",
    float: "a number",
    str: "a string",
    bool: "true or false",
}


def _in_words(base: Any) -> str:
    arms = [a for a in _arms(base) if a is not type(None)]
    words = []
    for arm in arms:
        origin = get_origin(arm) or arm
        if origin in _WORDS:
            words.append(_WORDS[origin])
        elif origin in (list, tuple):
            words.append("a list")
        elif origin in (dict, Mapping) or _struct_of(arm) is not None:
            words.append("a mapping")
        else:
            words.append(getattr(arm, "__name__", str(arm)))
    return " or ".join(words) if words else "nothing"


# --- type helpers -----------------------------------------------------------------------------


def _arms(annotation: Any) -> tuple[Any, ...]:
    if get_origin(annotation) in (Union, types.UnionType):
        return get_args(annotation)
    return (annotation,)


def _is_optional(annotation: Any) -> bool:
    return annotation is Any or type(None) in _arms(annotation)


def _without_none(annotation: Any) -> Any:
    arms = [a for a in _arms(annotation) if a is not type(None)]
    return arms[0] if len(arms) == 1 else annotation


def _struct_of(annotation: Any) -> type[msgspec.Struct] | None:
    """The Struct a field holds (``Section`` or ``Section | None``), else None."""
    base = _without_none(unwrap(annotation)[0])
    return base if isinstance(base, type) and issubclass(base, msgspec.Struct) else None


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _below(root: str, path: str, key: str) -> str:
    """``path.key`` as written from ``root``: the name a suggestion shows."""
    full = _join(path, key)
    return full[len(root) + 1 :] if root else full


def _relabel(path: str, labels: Mapping[str, str]) -> str:
    for key, label in labels.items():
        if path == key or path.startswith((key + ".", key + "[")):
            return label + path[len(key) :]
    return path
