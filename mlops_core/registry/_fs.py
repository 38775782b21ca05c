"""The filesystem backend: a directory that survives crashes, concurrent writers and tampering.

On disk it is a directory a person can read::

    <root>/<model>/model.json            stages, registered versions + checksums (commit point)
    <root>/<model>/history.jsonl         one stage change per line, seq 1, 2, 3, ...
    <root>/<model>/.lock                 flock target serialising writers of this model
    <root>/<model>/versions/<version>/version.json     the version's immutable record
    <root>/<model>/versions/<version>/reference.json   its reference profile, when given
    <root>/<model>/versions/<version>/<source name>    the copied file or directory

Why it holds up:

* ``model.json`` is the single source of truth for stages, so there is at most one
  production version by construction, and it is replaced atomically (temp file, fsync,
  ``os.replace``, directory fsync).  A version directory is built under a hidden name and
  renamed into place before ``model.json`` names it, so a listed version is always complete,
  reference profile included.
* ``model.json`` also carries the events of the change that produced it; ``history.jsonl`` is
  rewritten after it.  If a writer dies in between, readers merge the missing events and the
  next writer repairs the file, so the history is never missing a change.
* Writers of one model hold ``flock`` on ``<model>/.lock``; readers take no lock and never see
  a half-written state because every file they read is swapped in whole.

``flock`` is a lock between processes of one machine: several nodes sharing a directory over
NFS need the object-storage backend (``_s3.py``) instead.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import stat
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlops_core import _fsutil as fs
from mlops_core._common import utc_timestamp
from mlops_core.errors import (
    CorruptMetadataError,
    IntegrityError,
    ModelNotFoundError,
    RegistryWarning,
)
from mlops_core.registry._metadata import (
    HISTORY_FILE,
    LOCK_FILE,
    MODEL_FILE,
    REFERENCE_FILE,
    VERSION_FILE,
    VERSIONS_DIR,
    Doc,
    Event,
    artifact_problem,
    check_doc,
    check_event,
    check_record,
    ids,
    make_event,
    merge_history,
    new_doc,
    number_events,
    version_exists,
)
from mlops_core.registry._names import NAME_RE, validate_name


class FilesystemStore:
    """A registry in the directory ``root``; see the module docstring for the layout."""

    def __init__(self, root: Path, lock_timeout: float) -> None:
        self.root = root
        self.lock_timeout = lock_timeout

    @property
    def location(self) -> str:
        return str(self.root)

    # --- writes ---------------------------------------------------------------------------

    def register(
        self,
        name: str,
        version: str,
        src: Path,
        record: dict[str, Any],
        reference: bytes | None,
    ) -> tuple[Doc, dict[str, Any]]:
        """Copy ``src`` in under the lock; the record gets the checksum of the bytes copied."""
        mdir = self._ensure_model_dir(name)
        vroot = self._versions_dir(name)
        with self._lock(name):
            doc, history = self._recover(name)
            if doc is not None and version in ids(doc):
                raise version_exists(name, version)
            incoming = fs.temp_name(vroot / version, "incoming")
            os.mkdir(incoming)
            try:
                sha, size, kind = fs.copy_artifact(src, incoming / src.name)
                record = {
                    **record, "kind": kind, "sha256": sha, "size": size,
                    "registered_at": utc_timestamp(),
                }  # fmt: skip
                if reference is not None:
                    fs.atomic_write_bytes(incoming / REFERENCE_FILE, reference)
                fs.atomic_write_json(incoming / VERSION_FILE, record)
                if doc is None:  # model.json exists before any version directory does
                    doc = new_doc(name)
                    fs.atomic_write_json(mdir / MODEL_FILE, doc)
                os.rename(incoming, vroot / version)
            except BaseException:
                with contextlib.suppress(OSError):
                    fs.remove_tree(incoming)
                raise
            fs.fsync_dir(vroot)
            new = copy.deepcopy(doc)
            entry: dict[str, Any] = {"version": version, "sha256": sha}
            if record.get("reference") is not None:
                entry["reference_sha256"] = record["reference"]["sha256"]
            new["versions"].append(entry)
            self._commit(name, new, history, [make_event("register", version, None, "none")])
            return new, record

    def mutate(self, name: str, change: Callable[[Doc, list[Event]], None]) -> None:
        """Lock, recover, let ``change`` edit a copy of model.json and add events, commit both.

        Nothing is written when ``change`` raises or adds no event.
        """
        if not self._model_dir(name).is_dir():
            raise ModelNotFoundError(f"model {name!r} not found in registry {self.root}")
        with self._lock(name):
            doc, history = self._recover(name)
            if doc is None:
                raise ModelNotFoundError(f"model {name!r} not found in registry {self.root}")
            new = copy.deepcopy(doc)
            events: list[Event] = []
            change(new, events)
            if events:
                self._commit(name, new, history, events)

    # --- reads ----------------------------------------------------------------------------

    def list_models(self) -> list[str]:
        try:
            entries = sorted(os.scandir(self.root), key=lambda e: e.name)
        except FileNotFoundError:
            return []
        names = []
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
                continue
            if NAME_RE.fullmatch(entry.name) and _may_hold_model(Path(entry.path)):
                names.append(entry.name)
        return names

    def load_doc(self, name: str) -> Doc | None:
        path = self._model_dir(name) / MODEL_FILE
        try:
            raw = fs.read_json(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return check_doc(raw, name, path)

    def history(self, name: str) -> list[Event]:
        """The complete history: history.jsonl plus what model.json committed after it."""
        history_path = self._model_dir(name) / HISTORY_FILE
        for _ in range(50):
            # history first: model.json is never behind it
            history, torn = self._read_history(name)
            merged = merge_history(history, self._require_doc(name), history_path)
            if merged is not None:
                _warn_torn(torn)
                return merged
            time.sleep(0.005)  # a writer committed between the two reads
        with self._lock(name):
            _, merged = self._recover(name)
        return merged

    def read_record(self, name: str, entry: dict[str, Any]) -> dict[str, Any]:
        version = entry["version"]
        vdir = self._versions_dir(name) / version
        if vdir.is_symlink():
            raise IntegrityError(f"{vdir}: is a symlink; the registry does not follow symlinks")
        path = vdir / VERSION_FILE
        try:
            raw = fs.read_json(path)
        except FileNotFoundError:
            raise CorruptMetadataError(f"{path}: is missing") from None
        return check_record(raw, name, version, path)

    def artifact_path(self, name: str, record: dict[str, Any]) -> Path:
        return self._versions_dir(name) / record["version"] / record["source_name"]

    def artifact_location(self, name: str, record: dict[str, Any]) -> str:
        return str(self.artifact_path(name, record))

    def hash_artifact(self, name: str, record: dict[str, Any]) -> tuple[str, int]:
        """(sha256, size) of the stored artifact; ``FileNotFoundError`` when it is gone."""
        return fs.hash_artifact(self.artifact_path(name, record))

    def fetch_artifact(self, name: str, record: dict[str, Any]) -> Path:
        """The stored artifact itself, after re-hashing it (``IntegrityError`` naming it)."""
        path = self.artifact_path(name, record)
        try:
            actual, size = fs.hash_artifact(path)
        except FileNotFoundError:
            raise IntegrityError(f"{path}: is missing") from None
        problem = artifact_problem(path, actual, size, record["sha256"], record["size"])
        if problem:
            raise IntegrityError(problem)
        return path

    def read_reference(self, name: str, record: dict[str, Any]) -> tuple[bytes, str]:
        """The stored reference profile's bytes and the file they came from."""
        path = self._versions_dir(name) / record["version"] / REFERENCE_FILE
        try:
            return fs.read_bytes_nofollow(path), str(path)
        except FileNotFoundError:
            raise IntegrityError(f"{path}: is missing") from None
        except CorruptMetadataError as exc:  # a symlink planted in its place
            raise IntegrityError(str(exc)) from None

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

    def _require_doc(self, name: str) -> Doc:
        doc = self.load_doc(name)
        if doc is None:
            raise ModelNotFoundError(f"model {name!r} not found in registry {self.root}")
        return doc

    def _read_history(self, name: str) -> tuple[list[Event], str | None]:
        """The events of history.jsonl, and a note when its torn last line was skipped."""
        path = self._model_dir(name) / HISTORY_FILE
        try:
            raw = fs.read_bytes_nofollow(path)
        except FileNotFoundError:
            return [], None
        return _parse_history(raw, path)

    def _write_history(self, name: str, events: list[Event]) -> None:
        lines = "".join(json.dumps(ev, sort_keys=True) + "\n" for ev in events)
        fs.atomic_write_bytes(self._model_dir(name) / HISTORY_FILE, lines.encode())

    def _recover(self, name: str) -> tuple[Doc | None, list[Event]]:
        """Under the lock: finish what a killed writer left half done.

        Appends events committed to model.json but missing from history.jsonl, and removes
        hidden leftovers and version directories model.json does not list (a registration
        killed between renaming its directory in and committing model.json).
        """
        mdir = self._model_dir(name)
        doc = self.load_doc(name)
        history, torn = self._read_history(name)
        _warn_torn(torn)  # the commit rewrites the file whole, without that line
        if doc is None and history:
            raise CorruptMetadataError(f"{mdir / HISTORY_FILE}: exists but {MODEL_FILE} is missing")
        if doc is not None:
            merged = merge_history(history, doc, mdir / HISTORY_FILE)
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
        known = set(ids(doc)) if doc else set()
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

    def _commit(self, name: str, doc: Doc, history: list[Event], events: list[Event]) -> None:
        number_events(doc, events)
        check_doc(doc, name, self._model_dir(name) / MODEL_FILE)  # never write what we'd reject
        fs.atomic_write_json(self._model_dir(name) / MODEL_FILE, doc)  # the commit point
        self._write_history(name, history + events)


# --- helpers ----------------------------------------------------------------------------------


def _may_hold_model(mdir: Path) -> bool:
    """Whether ``mdir`` holds a model.json, or may: one that cannot be looked into (no
    permission) is listed, so reading it reports why, instead of the model silently
    missing from ``list`` and ``verify``."""
    try:
        return stat.S_ISREG(os.stat(mdir / MODEL_FILE).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError:
        return True


def _parse_history(raw: bytes, path: Path) -> tuple[list[Event], str | None]:
    """The events of history.jsonl's bytes, checked and numbered 1, 2, 3, ...

    A last line that is not JSON is what an append cut short leaves (no complete JSON object
    is a prefix of another): it is skipped with a note, since model.json still holds the
    events of the last change.  Any other bad line is an error naming ``path`` and the line.
    """
    lines = raw.split(b"\n")
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    events: list[Event] = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        where = f"{path}: line {i + 1}"
        try:
            ev = fs.parse_json(line, where)
        except CorruptMetadataError as exc:
            if i != last:
                raise
            return events, f"{exc}; skipped this torn last line (a write cut short)"
        check_event(ev, where)
        if ev["seq"] != len(events) + 1:
            raise CorruptMetadataError(
                f"{where}: event seq {ev['seq']}, expected {len(events) + 1}"
                " (a line was removed, added or reordered)"
            )
        events.append(ev)
    return events, None


def _warn_torn(note: str | None) -> None:
    """Say that a torn last line was skipped: a reader must not lose it silently."""
    if note is not None:
        warnings.warn(note, RegistryWarning, stacklevel=3)
