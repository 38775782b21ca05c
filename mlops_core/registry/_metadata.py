"""The registry's metadata, whichever backend stores it: its documents, their checks, events.

A model has one **model document** (``model.json``): the registered versions with their
checksums, the stages, the rollback stack, a change counter ``seq`` and the events of the
change that produced it (``last_events``).  It is the single source of truth and the commit
point of every change, on the filesystem as in object storage.  Each version also has an
immutable **version record** (``version.json``), and every stage change is one **event** of
the history, numbered 1, 2, 3, ...

The checks here turn a hand-edit or a damaged file into one line naming the file (or object)
and the key at fault, instead of a ``KeyError`` deep in the registry: the documents are
declared as Structs and read with the shared config schema (:mod:`mlops_core.schema`), so
the line looks like every config error (``model.json: seq: expected a non-negative
integer, got -1 (int)``).
"""

from __future__ import annotations

import getpass
import math
import numbers
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, cast, get_args

import msgspec
from msgspec import Meta

from mlops_core._common import utc_timestamp
from mlops_core.errors import (
    CorruptMetadataError,
    RegistryInputError,
    VersionExistsError,
)
from mlops_core.registry._names import validate_name
from mlops_core.schema import Parse, convert, did_you_mean

FORMAT = 1
Stage = Literal["none", "staging", "production", "archived"]
STAGES: tuple[str, ...] = get_args(Stage)
MODEL_FILE = "model.json"
HISTORY_FILE = "history.jsonl"
LOCK_FILE = ".lock"
VERSIONS_DIR = "versions"
VERSION_FILE = "version.json"
#: the reference profile stored beside the artifact (``ReferenceProfile`` JSON)
REFERENCE_FILE = "reference.json"

Doc = dict[str, Any]
Event = dict[str, Any]
Where = str | Path  # a file path or an s3:// URL, for messages


def os_user() -> str:
    """The OS user recorded in history; never fails (containers may have no passwd entry)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):
        return f"uid:{os.getuid()}" if hasattr(os, "getuid") else "unknown"


def clean_metrics(metrics: Mapping[str, Any] | None) -> dict[str, Any]:
    """The metrics as stored: finite numbers only.

    Their reader (the exporter's quality baseline) compares numbers; a string, bool or null
    stored as ``accuracy`` would be dropped there without a word, so it is refused here,
    naming the metric.  Text belongs in the tags or the description.
    """
    if metrics is None:
        return {}
    if not isinstance(metrics, Mapping):
        raise RegistryInputError(f"metrics must be a mapping, got {type(metrics).__name__}")
    clean: dict[str, Any] = {}
    for key, value in metrics.items():
        if not isinstance(key, str) or not key:
            raise RegistryInputError(f"metric name {key!r} must be a non-empty string")
        clean[key] = _metric_number(key, value)
    return clean


def _metric_number(key: str, value: Any) -> int | float:
    """``value`` as an int or a finite float; ``RegistryInputError`` naming ``key`` if not."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if math.isfinite(float(value)):
            return float(value)
        raise RegistryInputError(f"metric {key!r} is {value}; metrics must be finite numbers")
    raise RegistryInputError(
        f"metric {key!r} is {value!r} ({type(value).__name__}); metrics must be finite numbers"
        " (put text in a tag or the description)"
    )


def clean_tags(tags: Mapping[str, str] | None) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, Mapping) or not all(
        isinstance(k, str) and k and isinstance(v, str) for k, v in tags.items()
    ):
        raise RegistryInputError("tags must map non-empty strings to strings")
    return dict(tags)


# --- checks -----------------------------------------------------------------------------------
#
# The documents' keys and types are declared once, as Structs read with the shared config
# schema (mlops_core.schema.convert): one line naming the file (or object), the dotted key,
# what was expected and what was found.  What a type cannot say (a stage naming a version
# that is not registered, events numbered up to 'seq') is checked after, in the same style.


class _Stored(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """Base of the metadata documents: keys this version does not know are let through.

    Unlike a config, these are written by the registry and read back, possibly by another
    version of it (a serving pod reading the registry that CI wrote to): a key a later
    version adds must not make the registry unreadable.  ``FORMAT`` changes when it should.
    """


def _version_name(raw: Any) -> Any:
    """A version, as safe as the directory named after it (``InvalidNameError``)."""
    return validate_name(raw, "version") if isinstance(raw, str) else raw


def _file_name(raw: Any) -> Any:
    """The artifact's name in its version directory: one plain path component."""
    if isinstance(raw, str) and (
        not raw or "/" in raw or "\x00" in raw or raw in (".", "..", VERSION_FILE)
    ):
        raise ValueError(f"expected a plain file name, got {raw!r}")
    return raw


_OBJECT = Meta(description="a JSON object")
_FORMAT_WORDS = f"{FORMAT} (the only format this version of mlops reads)"
_VersionName = Annotated[str, Parse(_version_name)]


class VersionEntry(_Stored, frozen=True):
    """A registered version as ``model.json`` lists it."""

    version: _VersionName
    sha256: str
    reference_sha256: str | None = None
    upload: str = ""  # the S3 backend's upload key; the filesystem's entries have none


class EventRecord(_Stored, frozen=True):
    """One stage change: a line of ``history.jsonl``, an S3 history object, a last event."""

    seq: int
    timestamp: str
    user: str
    action: str
    version: str
    to_stage: Stage
    from_stage: Stage | None = None
    reason: str | None = None


class ModelDoc(_Stored, frozen=True):
    """``model.json``; ``staging`` and ``production`` must be written, null when empty."""

    format: Annotated[int, Meta(ge=FORMAT, le=FORMAT, description=_FORMAT_WORDS)]
    name: str
    created_at: str
    versions: list[Annotated[VersionEntry, _OBJECT]]
    staging: str | None
    production: str | None
    archived: list[str]
    previous_production: list[str]
    seq: Annotated[int, Meta(ge=0, description="a non-negative integer")]
    last_events: list[Annotated[EventRecord, _OBJECT]]


class ReferenceEntry(_Stored, frozen=True):
    """The reference profile stored beside the artifact, as the version record names it."""

    sha256: str
    size: int


class VersionRecord(_Stored, frozen=True):
    """``version.json``: what was registered, immutable once written."""

    name: str
    version: str
    sha256: str
    size: int
    source_name: Annotated[str, Parse(_file_name)]
    kind: Literal["file", "directory"]
    registered_at: str
    registered_by: str
    metrics: dict[str, Any]
    tags: dict[str, Any]
    reference: Annotated[ReferenceEntry, _OBJECT] | None = None


_S = TypeVar("_S", bound=_Stored)


def _read(data: Any, struct: type[_S], where: Where) -> _S:
    """``data`` checked as ``struct``; ``CorruptMetadataError`` naming ``where`` and the key."""

    def missing(key: str) -> str:
        if key in ("staging", "production"):
            return f"required key missing (null when no version is in {key})"
        return "required key missing"

    read: _S = convert(
        data,
        Annotated[struct, _OBJECT],
        error=CorruptMetadataError,
        source=str(where),
        missing=missing,
    )
    return read


def _bad(where: Where, key: str, problem: str) -> CorruptMetadataError:
    """A problem the types cannot see, in the schema's style: ``where: key: problem``."""
    return CorruptMetadataError(f"{where}: {key}: {problem}")


def check_event(ev: Any, where: str) -> Event:
    _read(ev, EventRecord, where)
    return cast(Event, ev)


def check_doc(doc: Any, name: str, path: Where) -> Doc:
    """Validate model.json, so a hand-edit is reported by file and key, not as a KeyError."""
    read = _read(doc, ModelDoc, path)
    if read.name != name:
        raise _bad(path, "name", f"expected {name!r} (the model's name), got {read.name!r}")
    ids = [v.version for v in read.versions]
    twice = next((v for i, v in enumerate(ids) if v in ids[:i]), None)
    if twice is not None:
        raise _bad(path, "versions", f"lists version {twice!r} twice")
    known = set(ids)
    for key in ("staging", "production"):
        value = getattr(read, key)
        if value is not None and value not in known:
            hint = did_you_mean(value, ids)
            raise _bad(path, key, f"expected a registered version or null, got {value!r}{hint}")
    for key in ("archived", "previous_production"):
        for i, value in enumerate(getattr(read, key)):
            if value not in known:
                hint = did_you_mean(value, ids)
                raise _bad(
                    path, f"{key}[{i}]", f"expected a registered version, got {value!r}{hint}"
                )
    if read.production is not None and read.production in (read.staging, *read.archived):
        other = "staging" if read.production == read.staging else "archived"
        raise _bad(path, "production", f"version {read.production!r} is in {other} too")
    for i, ev in enumerate(read.last_events):
        expected = read.seq - len(read.last_events) + 1 + i
        if ev.seq != expected:
            raise _bad(
                path,
                f"last_events[{i}].seq",
                f"expected {expected} (the last events are numbered up to 'seq'), got {ev.seq}",
            )
    return cast(Doc, doc)


def check_record(rec: Any, name: str, version: str, path: Where) -> dict[str, Any]:
    """Validate version.json: the version it names, its artifact's name and checksums."""
    read = _read(rec, VersionRecord, path)
    for key, value, wanted in (("name", read.name, name), ("version", read.version, version)):
        if value != wanted:
            raise _bad(path, key, f"expected {wanted!r}, got {value!r}")
    if read.reference is not None and read.source_name == REFERENCE_FILE:
        raise _bad(
            path, "source_name", f"{read.source_name!r} is the reference profile's file name"
        )
    return cast(dict[str, Any], rec)


def check_reference_bytes(
    data: bytes, rec: Mapping[str, Any], entry: Mapping[str, Any], where: Where
) -> str | None:
    """Why the stored reference profile ``data`` is not the one registered, or ``None``.

    Checked against both copies of its checksum, the version record's and the model
    document's, as the artifact is: editing one file cannot make a changed profile pass.
    """
    import hashlib

    expected = rec["reference"]["sha256"]
    if entry.get("reference_sha256") not in (None, expected):
        return (
            f"{VERSION_FILE} records reference sha256 {expected},"
            f" {MODEL_FILE} {entry.get('reference_sha256')}"
        )
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        return f"{where}: sha256 {actual} does not match {expected} recorded at registration"
    return None


def artifact_problem(
    where: Where, actual: str, size: int, expected: str, recorded_size: int
) -> str | None:
    """Why a hashed artifact is not the one registered, or ``None``."""
    if actual != expected:
        return f"{where}: sha256 {actual} does not match {expected} recorded at registration"
    if size != recorded_size:
        return f"{where}: size {size} bytes, recorded {recorded_size}"
    return None


# --- documents and events ---------------------------------------------------------------------


def stage(doc: Mapping[str, Any], version: str) -> str:
    if doc["production"] == version:
        return "production"
    if doc["staging"] == version:
        return "staging"
    return "archived" if version in doc["archived"] else "none"


def ids(doc: Mapping[str, Any]) -> list[str]:
    return [v["version"] for v in doc["versions"]]


def entry(doc: Mapping[str, Any], version: str) -> dict[str, Any]:
    return next(v for v in doc["versions"] if v["version"] == version)


def discard(items: list[str], value: str) -> None:
    while value in items:
        items.remove(value)


def new_doc(name: str) -> Doc:
    return {
        "format": FORMAT, "name": name, "created_at": utc_timestamp(), "versions": [],
        "staging": None, "production": None, "archived": [], "previous_production": [],
        "seq": 0, "last_events": [],
    }  # fmt: skip


def make_event(
    action: str,
    version: str,
    from_stage: str | None,
    to_stage: str,
    reason: str | None = None,
) -> Event:
    return {
        "seq": 0, "timestamp": utc_timestamp(), "user": os_user(), "action": action,
        "version": version, "from_stage": from_stage, "to_stage": to_stage,
        "reason": reason,
    }  # fmt: skip


def number_events(doc: Doc, events: list[Event]) -> None:
    """Give ``events`` the next sequence numbers and make them the document's last change."""
    for i, ev in enumerate(events, 1):
        ev["seq"] = doc["seq"] + i
    doc["seq"] += len(events)
    doc["last_events"] = events


def event_fields(ev: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("seq", "timestamp", "user", "action", "version", "from_stage", "to_stage", "reason")
    return {k: ev.get(k) for k in keys}


def version_exists(name: str, version: str) -> VersionExistsError:
    return VersionExistsError(
        f"model {name!r} version {version!r} is already registered; register a new version instead"
    )


def merge_history(
    history: list[Event], doc: Mapping[str, Any], history_path: Where
) -> list[Event] | None:
    """History plus the events model.json committed but the stored history does not have yet.

    ``None`` means a gap: for a reader, a writer committed between its two reads (retry);
    under the lock it means events were removed by hand.
    """
    last, seq = len(history), doc["seq"]
    if last > seq:
        raise CorruptMetadataError(
            f"{history_path}: holds {last} events but model.json records only {seq}"
        )
    if last == seq:
        return history
    pending = [ev for ev in doc["last_events"] if ev["seq"] > last]
    if pending and pending[0]["seq"] == last + 1:
        return history + pending
    return None
