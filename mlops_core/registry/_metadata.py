"""The registry's metadata, whichever backend stores it: its documents, their checks, events.

A model has one **model document** (``model.json``): the registered versions with their
checksums, the stages, the rollback stack, a change counter ``seq`` and the events of the
change that produced it (``last_events``).  It is the single source of truth and the commit
point of every change, on the filesystem as in object storage.  Each version also has an
immutable **version record** (``version.json``), and every stage change is one **event** of
the history, numbered 1, 2, 3, ...

The checks here turn a hand-edit or a damaged file into one line naming the file (or object)
and the key at fault, instead of a ``KeyError`` deep in the registry.
"""

from __future__ import annotations

import getpass
import math
import numbers
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops_core._common import utc_timestamp
from mlops_core.errors import (
    CorruptMetadataError,
    InvalidNameError,
    RegistryInputError,
    VersionExistsError,
)
from mlops_core.registry._names import validate_name

FORMAT = 1
STAGES = ("none", "staging", "production", "archived")
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
    if metrics is None:
        return {}
    if not isinstance(metrics, Mapping):
        raise RegistryInputError(f"metrics must be a mapping, got {type(metrics).__name__}")
    clean: dict[str, Any] = {}
    for key, value in metrics.items():
        if not isinstance(key, str) or not key:
            raise RegistryInputError(f"metric name {key!r} must be a non-empty string")
        if value is None or isinstance(value, (bool, str)):
            clean[key] = value
        elif isinstance(value, numbers.Integral):
            clean[key] = int(value)
        elif isinstance(value, numbers.Real):
            if not math.isfinite(float(value)):
                raise RegistryInputError(f"metric {key!r} is {value}; metrics must be finite")
            clean[key] = float(value)
        else:
            raise RegistryInputError(
                f"metric {key!r} has type {type(value).__name__}; use a number, string or bool"
            )
    return clean


def clean_tags(tags: Mapping[str, str] | None) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, Mapping) or not all(
        isinstance(k, str) and k and isinstance(v, str) for k, v in tags.items()
    ):
        raise RegistryInputError("tags must map non-empty strings to strings")
    return dict(tags)


# --- checks -----------------------------------------------------------------------------------


def check_event(ev: Any, where: str) -> Event:
    required = {"seq": int, "timestamp": str, "user": str, "action": str, "version": str}
    if not isinstance(ev, dict):
        raise CorruptMetadataError(f"{where}: an event must be a JSON object")
    for key, typ in required.items():
        if not isinstance(ev.get(key), typ) or isinstance(ev.get(key), bool):
            raise CorruptMetadataError(
                f"{where}: event field {key!r} is missing or not {typ.__name__}"
            )
    if ev.get("to_stage") not in STAGES or ev.get("from_stage") not in (None, *STAGES):
        raise CorruptMetadataError(f"{where}: event has an unknown stage")
    if not isinstance(ev.get("reason"), (str, type(None))):
        raise CorruptMetadataError(f"{where}: event field 'reason' must be a string or null")
    return ev


def check_doc(doc: Any, name: str, path: Where) -> Doc:
    """Validate model.json, so a hand-edit is reported by file and key, not as a KeyError."""

    def bad(msg: str) -> CorruptMetadataError:
        return CorruptMetadataError(f"{path}: {msg}")

    if not isinstance(doc, dict):
        raise bad("expected a JSON object")
    if doc.get("format") != FORMAT:
        raise bad(f"unsupported format {doc.get('format')!r} (expected {FORMAT})")
    if doc.get("name") != name:
        raise bad(f"'name' is {doc.get('name')!r}, expected {name!r}")
    versions = doc.get("versions")
    if not isinstance(versions, list) or not all(
        isinstance(v, dict)
        and isinstance(v.get("version"), str)
        and isinstance(v.get("sha256"), str)
        and isinstance(v.get("reference_sha256", ""), (str, type(None)))
        and isinstance(v.get("upload", ""), str)
        for v in versions
    ):
        raise bad("'versions' must be a list of {version, sha256} objects")
    ids = [v["version"] for v in versions]
    for v in ids:
        try:
            validate_name(v, "version")
        except InvalidNameError as exc:
            raise bad(str(exc)) from None
    if len(set(ids)) != len(ids):
        raise bad("'versions' lists a version twice")
    known = set(ids)
    for key in ("staging", "production"):
        if key not in doc:
            raise bad(f"{key!r} is missing (null when no version is in {key})")
        value = doc[key]
        if value is not None and (not isinstance(value, str) or value not in known):
            raise bad(f"{key!r} is {value!r}, which is not a registered version")
    for key in ("archived", "previous_production"):
        value = doc.get(key)
        if not isinstance(value, list) or any(
            not isinstance(v, str) or v not in known for v in value
        ):
            raise bad(f"{key!r} must be a list of registered versions")
    if doc["production"] is not None and (
        doc["production"] == doc["staging"] or doc["production"] in doc["archived"]
    ):
        raise bad(f"version {doc['production']!r} is in production and in another stage")
    seq, events = doc.get("seq"), doc.get("last_events")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise bad("'seq' must be a non-negative integer")
    if not isinstance(events, list) or not isinstance(doc.get("created_at"), str):
        raise bad("'last_events' must be a list and 'created_at' a string")
    for i, ev in enumerate(events):
        check_event(ev, f"{path}: last_events[{i}]")
        if ev["seq"] != seq - len(events) + 1 + i:
            raise bad("'last_events' are not numbered up to 'seq'")
    return doc


def check_record(rec: Any, name: str, version: str, path: Where) -> dict[str, Any]:
    def bad(msg: str) -> CorruptMetadataError:
        return CorruptMetadataError(f"{path}: {msg}")

    if not isinstance(rec, dict):
        raise bad("expected a JSON object")
    if rec.get("name") != name or rec.get("version") != version:
        raise bad(
            f"records {rec.get('name')!r} {rec.get('version')!r}, expected {name!r} {version!r}"
        )
    for key, typ in (("sha256", str), ("size", int), ("source_name", str), ("kind", str),
                     ("registered_at", str), ("registered_by", str), ("metrics", dict),
                     ("tags", dict)):  # fmt: skip
        if not isinstance(rec.get(key), typ):
            raise bad(f"{key!r} is missing or not a {typ.__name__}")
    src = rec["source_name"]
    if not src or "/" in src or "\x00" in src or src in (".", "..", VERSION_FILE):
        raise bad(f"'source_name' {src!r} is not a plain file name")
    if rec["kind"] not in ("file", "directory"):
        raise bad(f"'kind' is {rec['kind']!r}, expected 'file' or 'directory'")
    ref = rec.get("reference")
    if ref is not None:
        if not isinstance(ref, dict) or not all(
            isinstance(ref.get(k), t) for k, t in (("sha256", str), ("size", int))
        ):
            raise bad("'reference' must be null or an object with 'sha256' and 'size'")
        if src == REFERENCE_FILE:
            raise bad(f"'source_name' {src!r} is the reference profile's file name")
    return rec


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
        f"model {name!r} version {version!r} is already registered;"
        " register a new version instead"
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
