"""A filesystem model registry that survives crashes, concurrent writers and tampering.

Data engineers register a trained model file (or directory) with its metrics, promote it to
staging and production, roll back, and the serving side asks for the production path::

    registry = ModelRegistry("./my_registry")
    registry.register_model("churn", "1.0.0", "model.pkl", {"accuracy": 0.85})
    registry.promote_to_staging("churn", "1.0.0")
    registry.promote_to_production("churn", "1.0.0")
    path = registry.get_production_model_path("churn")   # checksum verified first

On disk it is a plain directory a person can read::

    <root>/<model>/model.json            stages, registered versions + checksums (commit point)
    <root>/<model>/history.jsonl         one stage change per line, seq 1, 2, 3, ...
    <root>/<model>/.lock                 flock target serialising writers of this model
    <root>/<model>/versions/<version>/version.json     the version's immutable record
    <root>/<model>/versions/<version>/<source name>    the copied file or directory

Why it holds up:

* ``model.json`` is the single source of truth for stages, so there is at most one
  production version by construction, and it is replaced atomically (temp file, fsync,
  ``os.replace``, directory fsync).  A version directory is built under a hidden name and
  renamed into place before ``model.json`` names it, so a listed version is always complete.
* ``model.json`` also carries the events of the change that produced it; ``history.jsonl`` is
  rewritten after it.  If a writer dies in between, readers merge the missing events and the
  next writer repairs the file, so the history is never missing a change.
* Writers of one model hold ``flock`` on ``<model>/.lock``; readers take no lock and never see
  a half-written state because every file they read is swapped in whole.

Versions are strings.  ``list_versions`` returns them in registration order (the order in
``model.json``); ``order="version"`` sorts them with :func:`version_sort_key`, a PEP 440-like
natural order (``1.0.0rc1 < 1.0.0 < 1.2.0 < 1.10.0``; non-PEP 440 strings sort after, naturally).
"""

from __future__ import annotations

import contextlib
import copy
import getpass
import json
import math
import numbers
import os
import re
import shutil
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlops_core import _fsutil as fs
from mlops_core._common import utc_timestamp
from mlops_core.errors import (
    CorruptMetadataError,
    IntegrityError,
    InvalidNameError,
    MissingFileError,
    ModelNotFoundError,
    RegistryInputError,
    StageError,
    VersionExistsError,
)

__all__ = [
    "STAGES",
    "ModelInfo",
    "ModelRegistry",
    "ModelVersion",
    "StageChange",
    "VerifyResult",
    "validate_name",
    "version_sort_key",
]

FORMAT = 1
STAGES = ("none", "staging", "production", "archived")
MODEL_FILE = "model.json"
HISTORY_FILE = "history.jsonl"
LOCK_FILE = ".lock"
VERSIONS_DIR = "versions"
VERSION_FILE = "version.json"

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")


# --- names and version order ------------------------------------------------------------------


def validate_name(value: object, what: str = "model name") -> str:
    """Return ``value`` if it is a safe single path component, else ``InvalidNameError``.

    Names become directory names, so anything that could leave the registry directory
    (``..``, a separator, an absolute path, NUL, an empty string) is refused, as are names
    starting with ``.`` (the registry's own hidden files) and odd characters.
    """
    if not isinstance(value, str):
        raise InvalidNameError(f"{what} must be a string, got {type(value).__name__}")
    if not value:
        raise InvalidNameError(f"{what} is empty")
    if "\x00" in value:
        raise InvalidNameError(f"{what} {value!r} contains a NUL character")
    if "/" in value or "\\" in value or os.path.isabs(value):
        raise InvalidNameError(f"{what} {value!r} contains a path separator")
    if ".." in value:
        raise InvalidNameError(f"{what} {value!r} contains '..'")
    if not _NAME_RE.fullmatch(value):
        raise InvalidNameError(
            f"{what} {value!r} is invalid: use at most 128 letters, digits, '.', '_', '+', '-',"
            " starting with a letter or digit"
        )
    return value


_PEP440 = re.compile(
    r"v?(?P<release>\d+(?:\.\d+)*)"
    r"(?:[-_.]?(?P<pre>alpha|beta|preview|pre|rc|a|b|c)[-_.]?(?P<pren>\d*))?"
    r"(?:[-_.]?(?:post|rev|r)[-_.]?(?P<post>\d*))?"
    r"(?:[-_.]?dev[-_.]?(?P<dev>\d*))?"
    r"(?:\+(?P<local>[A-Za-z0-9.]+))?",
    re.IGNORECASE,
)
_PRE_RANK = {"a": 0, "alpha": 0, "b": 1, "beta": 1, "c": 2, "rc": 2, "pre": 2, "preview": 2}


def _natural(text: str) -> list[tuple[int, int | str]]:
    return [(0, int(t)) if t.isdigit() else (1, t.lower()) for t in re.split(r"(\d+)", text) if t]


def version_sort_key(version: str) -> tuple[Any, ...]:
    """Sort key: PEP 440-like order for versions that look like it, natural order otherwise.

    ``1.0.dev1 < 1.0a1 < 1.0rc1 < 1.0 == 1.0.0 < 1.0.post1 < 1.2 < 1.10``; strings that are
    not PEP 440-like (``2024-06-01-nightly``) come after, ordered with numbers compared as
    numbers.
    """
    m = _PEP440.fullmatch(version)
    if m is None:
        return (1, _natural(version))
    release = [int(x) for x in m["release"].split(".")]
    while len(release) > 1 and release[-1] == 0:
        release.pop()
    if m["pre"]:
        pre: tuple[int, int] = (_PRE_RANK[m["pre"].lower()], int(m["pren"] or 0))
    elif m["dev"] is not None and m["post"] is None:
        pre = (-1, 0)  # 1.0.dev1 comes before 1.0a1
    else:
        pre = (3, 0)  # a final release
    post = -1 if m["post"] is None else int(m["post"] or 0)
    dev = (1, 0) if m["dev"] is None else (0, int(m["dev"] or 0))
    return (0, tuple(release), pre, post, dev, _natural(m["local"] or ""))


# --- records returned to callers --------------------------------------------------------------


@dataclass(frozen=True)
class ModelVersion:
    """One registered version: its record plus the stage it is in now."""

    name: str
    version: str
    stage: str
    metrics: dict[str, Any]
    sha256: str
    size: int
    source_name: str
    kind: str  # "file" or "directory"
    registered_at: str
    registered_by: str
    path: Path
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = str(self.path)
        return data


@dataclass(frozen=True)
class StageChange:
    """One line of a model's history: who changed which version from what stage to what."""

    seq: int
    timestamp: str
    user: str
    action: str  # register, promote, demote, archive, rollback
    version: str
    from_stage: str | None
    to_stage: str
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ModelInfo:
    """A model's current state: versions in registration order, staging, production."""

    name: str
    created_at: str
    versions: tuple[str, ...]
    staging: str | None
    production: str | None
    archived: tuple[str, ...]
    rollback_targets: tuple[str, ...]  # previous production versions, most recent last

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("versions", "archived", "rollback_targets"):
            data[key] = list(data[key])
        return data


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of checking one stored version against the checksum recorded for it."""

    name: str
    version: str
    stage: str
    ok: bool
    expected_sha256: str
    actual_sha256: str | None
    problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- metadata validation ----------------------------------------------------------------------


def _os_user() -> str:
    """The OS user recorded in history; never fails (containers may have no passwd entry)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):
        return f"uid:{os.getuid()}" if hasattr(os, "getuid") else "unknown"


def _clean_metrics(metrics: Mapping[str, Any] | None) -> dict[str, Any]:
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


def _clean_tags(tags: Mapping[str, str] | None) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, Mapping) or not all(
        isinstance(k, str) and k and isinstance(v, str) for k, v in tags.items()
    ):
        raise RegistryInputError("tags must map non-empty strings to strings")
    return dict(tags)


def _check_event(ev: Any, where: str) -> dict[str, Any]:
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


def _check_doc(doc: Any, name: str, path: Path) -> dict[str, Any]:
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
        _check_event(ev, f"{path}: last_events[{i}]")
        if ev["seq"] != seq - len(events) + 1 + i:
            raise bad("'last_events' are not numbered up to 'seq'")
    return doc


def _check_record(rec: Any, name: str, version: str, path: Path) -> dict[str, Any]:
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
    return rec


def _stage(doc: Mapping[str, Any], version: str) -> str:
    if doc["production"] == version:
        return "production"
    if doc["staging"] == version:
        return "staging"
    return "archived" if version in doc["archived"] else "none"


def _merge_history(
    history: list[dict[str, Any]], doc: Mapping[str, Any], history_path: Path
) -> list[dict[str, Any]] | None:
    """History plus the events model.json committed but history.jsonl does not have yet.

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


# --- the registry -----------------------------------------------------------------------------


class ModelRegistry:
    """Models and their versions in a directory; see the module docstring for the layout."""

    def __init__(self, root: str | os.PathLike[str], *, lock_timeout: float = 30.0) -> None:
        self.root = Path(os.path.abspath(os.fspath(root)))
        self.lock_timeout = lock_timeout

    def __repr__(self) -> str:
        return f"ModelRegistry({str(self.root)!r})"

    # --- writes ---------------------------------------------------------------------------

    def register_model(
        self,
        name: str,
        version: str,
        model_path: str | os.PathLike[str],
        metrics: Mapping[str, Any] | None = None,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> ModelVersion:
        """Copy a model file or directory in, checksum it, and record it in stage ``none``.

        Raises ``FileNotFoundError`` for a missing source and ``VersionExistsError`` (changing
        nothing) when the version is already registered.
        """
        validate_name(name, "model name")
        validate_name(version, "version")
        src = Path(os.path.abspath(os.fspath(model_path)))
        if not src.exists():
            raise MissingFileError(f"model file not found: {os.fspath(model_path)}")
        if src.name in ("", VERSION_FILE):
            raise RegistryInputError(f"{src}: cannot register a file or directory with this name")
        if description is not None and not isinstance(description, str):
            raise RegistryInputError("description must be a string")
        clean_metrics, clean_tags = _clean_metrics(metrics), _clean_tags(tags)
        mdir = self._ensure_model_dir(name)
        vroot = self._versions_dir(name)
        with self._lock(name):
            doc, history = self._recover(name)
            if doc is not None and version in _ids(doc):
                raise VersionExistsError(
                    f"model {name!r} version {version!r} is already registered;"
                    " register a new version instead"
                )
            incoming = fs.temp_name(vroot / version, "incoming")
            os.mkdir(incoming)
            try:
                sha, size, kind = fs.copy_artifact(src, incoming / src.name)
                record = {
                    "format": FORMAT, "name": name, "version": version, "kind": kind,
                    "source_name": src.name, "source_path": str(src), "sha256": sha,
                    "size": size, "metrics": clean_metrics, "tags": clean_tags,
                    "description": description, "registered_at": utc_timestamp(),
                    "registered_by": _os_user(),
                }  # fmt: skip
                fs.atomic_write_json(incoming / VERSION_FILE, record)
                if doc is None:  # model.json exists before any version directory does
                    doc = self._new_doc(name)
                    fs.atomic_write_json(mdir / MODEL_FILE, doc)
                os.rename(incoming, vroot / version)
            except BaseException:
                with contextlib.suppress(OSError):
                    fs.remove_tree(incoming)
                raise
            fs.fsync_dir(vroot)
            new = copy.deepcopy(doc)
            new["versions"].append({"version": version, "sha256": sha})
            self._commit(name, new, history, [self._event("register", version, None, "none")])
            return self._version_from(name, new, version, record)

    def promote_to_staging(
        self, name: str, version: str, *, reason: str | None = None
    ) -> ModelVersion:
        """Put ``version`` in staging; the previous staging version goes back to ``none``."""
        validate_name(version, "version")
        with self._mutate(name) as (doc, events):
            current = self._stage_of(doc, name, version)
            if current in ("staging", "production"):
                raise StageError(f"model {name!r} version {version!r} is already in {current}")
            old = doc["staging"]
            if old is not None:
                events.append(
                    self._event("demote", old, "staging", "none", f"replaced by {version}")
                )
            _discard(doc["archived"], version)
            doc["staging"] = version
            events.insert(0, self._event("promote", version, current, "staging", reason))
        return self.get_version(name, version)

    def promote_to_production(
        self, name: str, version: str, *, reason: str | None = None
    ) -> ModelVersion:
        """Put ``version`` in production; the previous one is archived and kept for rollback."""
        validate_name(version, "version")
        with self._mutate(name) as (doc, events):
            current = self._stage_of(doc, name, version)
            if current == "production":
                raise StageError(f"model {name!r} version {version!r} is already in production")
            events.append(self._event("promote", version, current, "production", reason))
            old = doc["production"]
            if old is not None:
                doc["archived"].append(old)
                doc["previous_production"].append(old)
                events.append(
                    self._event("archive", old, "production", "archived", f"replaced by {version}")
                )
            if doc["staging"] == version:
                doc["staging"] = None
            _discard(doc["archived"], version)
            doc["production"] = version
        return self.get_version(name, version)

    def rollback(self, name: str, *, reason: str | None = None) -> str:
        """Restore the previous production version and return it.

        The version rolled back from is archived (and not offered for rollback again);
        rolling back repeatedly walks further back.  ``StageError`` when there is nothing to
        roll back to.
        """
        with self._mutate(name) as (doc, events):
            stack, current = doc["previous_production"], doc["production"]
            while stack and stack[-1] == current:
                stack.pop()
            if not stack:
                raise StageError(
                    f"model {name!r} has no previous production version to roll back to"
                )
            target = stack.pop()
            events.append(
                self._event("rollback", target, _stage(doc, target), "production", reason)
            )
            if current is not None:
                doc["archived"].append(current)
                events.append(self._event("rollback", current, "production", "archived", reason))
            if doc["staging"] == target:
                doc["staging"] = None
            _discard(doc["archived"], target)
            doc["production"] = target
        return target

    def archive_version(
        self, name: str, version: str, *, reason: str | None = None
    ) -> ModelVersion:
        """Retire a version that is not in production (its files stay, for rollback/audit)."""
        validate_name(version, "version")
        with self._mutate(name) as (doc, events):
            current = self._stage_of(doc, name, version)
            if current == "production":
                raise StageError(
                    f"model {name!r} version {version!r} is in production; promote another"
                    " version or roll back before archiving it"
                )
            if current == "archived":
                raise StageError(f"model {name!r} version {version!r} is already archived")
            if current == "staging":
                doc["staging"] = None
            doc["archived"].append(version)
            events.append(self._event("archive", version, current, "archived", reason))
        return self.get_version(name, version)

    # --- reads ----------------------------------------------------------------------------

    def list_models(self) -> list[str]:
        """Names of the models in the registry, sorted; an absent root holds none."""
        try:
            entries = sorted(os.scandir(self.root), key=lambda e: e.name)
        except FileNotFoundError:
            return []
        names = []
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
                continue
            if _NAME_RE.fullmatch(entry.name) and os.path.isfile(Path(entry.path) / MODEL_FILE):
                names.append(entry.name)
        return names

    def get_model(self, name: str) -> ModelInfo:
        doc = self._require_doc(name)
        return ModelInfo(
            name=name,
            created_at=doc["created_at"],
            versions=tuple(_ids(doc)),
            staging=doc["staging"],
            production=doc["production"],
            archived=tuple(doc["archived"]),
            rollback_targets=tuple(doc["previous_production"]),
        )

    def list_versions(self, name: str, *, order: str = "registration") -> list[ModelVersion]:
        """All versions of a model, in registration order or (``order="version"``) sorted."""
        if order not in ("registration", "version"):
            raise ValueError(f"order must be 'registration' or 'version', not {order!r}")
        doc = self._require_doc(name)
        ids = _ids(doc)
        if order == "version":
            ids = sorted(ids, key=version_sort_key)
        return [self._version_from(name, doc, v, self._read_record(name, v)) for v in ids]

    def get_version(self, name: str, version: str) -> ModelVersion:
        validate_name(version, "version")
        doc = self._require_doc(name)
        self._stage_of(doc, name, version)
        return self._version_from(name, doc, version, self._read_record(name, version))

    def get_staging_version(self, name: str) -> str | None:
        return self._require_doc(name)["staging"]

    def get_production_version(self, name: str) -> str | None:
        return self._require_doc(name)["production"]

    def get_history(self, name: str) -> list[StageChange]:
        """Every stage change of the model, oldest first, numbered 1, 2, 3, ... without gaps."""
        history_path = self._model_dir(name) / HISTORY_FILE
        for _ in range(50):
            history = self._read_history(name)  # history first: model.json is never behind it
            merged = _merge_history(history, self._require_doc(name), history_path)
            if merged is not None:
                return [StageChange(**_event_fields(ev)) for ev in merged]
            time.sleep(0.005)  # a writer committed between the two reads
        with self._lock(name):
            _, merged = self._recover(name)
        return [StageChange(**_event_fields(ev)) for ev in merged]

    def get_model_path(self, name: str, version: str) -> Path:
        """The stored artifact of ``version``, after checking it against its checksum."""
        validate_name(version, "version")
        doc = self._require_doc(name)
        self._stage_of(doc, name, version)
        result = self._verify_one(name, doc, version)
        if not result.ok:
            raise IntegrityError(
                f"model {name!r} version {version!r} failed verification, refusing to use it:"
                f" {result.problem}"
            )
        return self._artifact_path(name, version, self._read_record(name, version))

    def get_production_model_path(self, name: str) -> Path:
        """Path of the production artifact; its SHA-256 is re-checked (streamed) first."""
        version = self._require_doc(name)["production"]
        if version is None:
            raise ModelNotFoundError(f"model {name!r} has no production version")
        return self.get_model_path(name, version)

    def verify(self, name: str, version: str | None = None) -> list[VerifyResult]:
        """Re-hash stored artifacts and compare with the checksums recorded at registration.

        Problems are reported in the results, not raised, so one bad version does not hide
        the state of the others.
        """
        if version is not None:
            validate_name(version, "version")
        doc = self._require_doc(name)
        if version is not None:
            self._stage_of(doc, name, version)
            return [self._verify_one(name, doc, version)]
        return [self._verify_one(name, doc, v) for v in _ids(doc)]

    # --- internals ------------------------------------------------------------------------

    def _model_dir(self, name: str) -> Path:
        mdir = self.root / validate_name(name, "model name")
        if mdir.is_symlink():
            raise CorruptMetadataError(
                f"{mdir}: is a symlink; the registry does not follow symlinks"
            )
        return mdir

    def _versions_dir(self, name: str) -> Path:
        vroot = self._model_dir(name) / VERSIONS_DIR
        if vroot.is_symlink():
            raise IntegrityError(f"{vroot}: is a symlink; the registry does not follow symlinks")
        return vroot

    def _ensure_model_dir(self, name: str) -> Path:
        mdir = self._model_dir(name)
        if not mdir.is_dir():
            if not self.root.is_dir():
                self.root.mkdir(parents=True, exist_ok=True)
                fs.fsync_dir(self.root.parent)
            with contextlib.suppress(FileExistsError):
                mdir.mkdir()
            fs.fsync_dir(self.root)
        vroot = self._versions_dir(name)
        if not vroot.is_dir():
            with contextlib.suppress(FileExistsError):
                vroot.mkdir()
            fs.fsync_dir(mdir)
        return mdir

    def _lock(self, name: str) -> contextlib.AbstractContextManager[None]:
        return fs.exclusive_lock(
            self._model_dir(name) / LOCK_FILE, self.lock_timeout, f"model {name!r}"
        )

    def _new_doc(self, name: str) -> dict[str, Any]:
        return {
            "format": FORMAT, "name": name, "created_at": utc_timestamp(), "versions": [],
            "staging": None, "production": None, "archived": [], "previous_production": [],
            "seq": 0, "last_events": [],
        }  # fmt: skip

    def _load_doc(self, name: str) -> dict[str, Any] | None:
        path = self._model_dir(name) / MODEL_FILE
        try:
            raw = fs.read_json(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return _check_doc(raw, name, path)

    def _require_doc(self, name: str) -> dict[str, Any]:
        doc = self._load_doc(name)
        if doc is None:
            raise ModelNotFoundError(f"model {name!r} not found in registry {self.root}")
        return doc

    def _read_history(self, name: str) -> list[dict[str, Any]]:
        path = self._model_dir(name) / HISTORY_FILE
        try:
            raw = fs.read_bytes_nofollow(path)
        except FileNotFoundError:
            return []
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CorruptMetadataError(f"{path}: not UTF-8 text (byte {exc.start})") from None
        events: list[dict[str, Any]] = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                ev = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CorruptMetadataError(
                    f"{path}: line {lineno}: not valid JSON ({exc.msg})"
                ) from None
            _check_event(ev, f"{path}: line {lineno}")
            if ev["seq"] != len(events) + 1:
                raise CorruptMetadataError(
                    f"{path}: line {lineno}: event seq {ev['seq']}, expected {len(events) + 1}"
                    " (a line was removed, added or reordered)"
                )
            events.append(ev)
        return events

    def _write_history(self, name: str, events: list[dict[str, Any]]) -> None:
        lines = "".join(json.dumps(ev, sort_keys=True) + "\n" for ev in events)
        fs.atomic_write_bytes(self._model_dir(name) / HISTORY_FILE, lines.encode())

    def _recover(self, name: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """Under the lock: finish what a killed writer left half done.

        Appends events committed to model.json but missing from history.jsonl, and removes
        hidden leftovers and version directories model.json does not list (a registration
        killed between renaming its directory in and committing model.json).
        """
        mdir = self._model_dir(name)
        doc = self._load_doc(name)
        history = self._read_history(name)
        if doc is None and history:
            raise CorruptMetadataError(f"{mdir / HISTORY_FILE}: exists but {MODEL_FILE} is missing")
        if doc is not None:
            merged = _merge_history(history, doc, mdir / HISTORY_FILE)
            if merged is None:
                raise CorruptMetadataError(
                    f"{mdir / HISTORY_FILE}: events {len(history) + 1}.."
                    f"{doc['seq'] - len(doc['last_events'])} are missing"
                )
            if len(merged) != len(history):
                self._write_history(name, merged)
                history = merged
        for entry in os.scandir(mdir):  # temp files of a killed atomic write (we hold the lock)
            if entry.name.startswith(".") and entry.name.endswith(".tmp"):
                os.unlink(entry.path)
        known = set(_ids(doc)) if doc else set()
        leftovers: list[os.DirEntry[str]] = []
        with contextlib.suppress(FileNotFoundError), os.scandir(self._versions_dir(name)) as it:
            leftovers = [e for e in it if e.name not in known]
        for entry in leftovers:
            if doc is None and not entry.name.startswith("."):
                raise CorruptMetadataError(
                    f"{mdir / MODEL_FILE}: is missing but {entry.path} exists"
                )
            if entry.name.endswith(".trash"):  # a removal that was itself interrupted
                shutil.rmtree(entry.path, ignore_errors=True)
            elif entry.is_dir(follow_symlinks=False):
                fs.remove_tree(Path(entry.path))
            else:
                os.unlink(entry.path)
        return doc, history

    @contextlib.contextmanager
    def _mutate(self, name: str) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
        """Lock, recover, hand out a copy of model.json and an event list, then commit both."""
        if not self._model_dir(name).is_dir():
            raise ModelNotFoundError(f"model {name!r} not found in registry {self.root}")
        with self._lock(name):
            doc, history = self._recover(name)
            if doc is None:
                raise ModelNotFoundError(f"model {name!r} not found in registry {self.root}")
            new = copy.deepcopy(doc)
            events: list[dict[str, Any]] = []
            yield new, events
            if events:
                self._commit(name, new, history, events)

    def _commit(
        self,
        name: str,
        doc: dict[str, Any],
        history: list[dict[str, Any]],
        events: list[dict[str, Any]],
    ) -> None:
        for i, ev in enumerate(events, 1):
            ev["seq"] = doc["seq"] + i
        doc["seq"] += len(events)
        doc["last_events"] = events
        _check_doc(doc, name, self._model_dir(name) / MODEL_FILE)  # never write what we'd reject
        fs.atomic_write_json(self._model_dir(name) / MODEL_FILE, doc)  # the commit point
        self._write_history(name, history + events)

    def _event(
        self,
        action: str,
        version: str,
        from_stage: str | None,
        to_stage: str,
        reason: str | None = None,
    ) -> dict[str, Any]:
        return {
            "seq": 0, "timestamp": utc_timestamp(), "user": _os_user(), "action": action,
            "version": version, "from_stage": from_stage, "to_stage": to_stage,
            "reason": reason,
        }  # fmt: skip

    def _stage_of(self, doc: Mapping[str, Any], name: str, version: str) -> str:
        validate_name(version, "version")
        if version not in _ids(doc):
            known = ", ".join(_ids(doc)) or "none"
            raise ModelNotFoundError(
                f"model {name!r} has no version {version!r} (registered: {known})"
            )
        return _stage(doc, version)

    def _read_record(self, name: str, version: str) -> dict[str, Any]:
        vdir = self._versions_dir(name) / version
        if vdir.is_symlink():
            raise IntegrityError(f"{vdir}: is a symlink; the registry does not follow symlinks")
        path = vdir / VERSION_FILE
        try:
            raw = fs.read_json(path)
        except FileNotFoundError:
            raise CorruptMetadataError(f"{path}: is missing") from None
        return _check_record(raw, name, version, path)

    def _artifact_path(self, name: str, version: str, record: Mapping[str, Any]) -> Path:
        return self._versions_dir(name) / version / record["source_name"]

    def _version_from(
        self, name: str, doc: Mapping[str, Any], version: str, rec: Mapping[str, Any]
    ) -> ModelVersion:
        return ModelVersion(
            name=name,
            version=version,
            stage=_stage(doc, version),
            metrics=dict(rec["metrics"]),
            sha256=rec["sha256"],
            size=rec["size"],
            source_name=rec["source_name"],
            kind=rec["kind"],
            registered_at=rec["registered_at"],
            registered_by=rec["registered_by"],
            path=self._artifact_path(name, version, rec),
            description=rec.get("description"),
            tags=dict(rec["tags"]),
        )

    def _verify_one(self, name: str, doc: Mapping[str, Any], version: str) -> VerifyResult:
        expected = next(v["sha256"] for v in doc["versions"] if v["version"] == version)
        stage = _stage(doc, version)

        def result(actual: str | None, problem: str | None) -> VerifyResult:
            return VerifyResult(name, version, stage, problem is None, expected, actual, problem)

        try:
            rec = self._read_record(name, version)
        except (CorruptMetadataError, IntegrityError) as exc:
            return result(None, str(exc))
        if rec["sha256"] != expected:
            return result(
                None, f"{VERSION_FILE} records sha256 {rec['sha256']}, model.json {expected}"
            )
        path = self._artifact_path(name, version, rec)
        try:
            actual, size = fs.hash_artifact(path)
        except FileNotFoundError:
            return result(None, f"{path}: is missing")
        except IntegrityError as exc:
            return result(None, str(exc))
        if actual != expected:
            return result(
                actual,
                f"{path}: sha256 {actual} does not match {expected} recorded at registration",
            )
        if size != rec["size"]:
            return result(actual, f"{path}: size {size} bytes, recorded {rec['size']}")
        return result(actual, None)


def _ids(doc: Mapping[str, Any]) -> list[str]:
    return [v["version"] for v in doc["versions"]]


def _discard(items: list[str], value: str) -> None:
    while value in items:
        items.remove(value)


def _event_fields(ev: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("seq", "timestamp", "user", "action", "version", "from_stage", "to_stage", "reason")
    return {k: ev.get(k) for k in keys}
