"""The object-storage backend: the registry in an S3-compatible bucket, shared by many nodes.

``ModelRegistry("s3://bucket/prefix")`` selects it.  The endpoint and credentials come from
the standard AWS variables (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``), so one URL works against AWS S3, MinIO,
Ceph or any S3-compatible server.  boto3 is imported only here, and this module only when an
``s3://`` URL is used.

Layout (every key under ``<prefix>/``)::

    <model>/model.json                                   the commit point, as on the filesystem
    <model>/history/<seq, 12 digits>.json                one event per object, never replaced
    <model>/versions/<version>/<upload>/version.json     the version's immutable record
    <model>/versions/<version>/<upload>/reference.json   its reference profile, when given
    <model>/versions/<version>/<upload>/artifact/<source name>[/<path in the directory>]
    .mlops-probe/<random>                                the start-up probe (deleted after it)

There are no locks: `flock` does not exist on object storage, and nodes cannot share one.
Every guarantee of the filesystem backend is made with **conditional writes** instead:

* **One commit point, changed atomically.**  A change reads ``model.json`` and its ETag,
  edits a copy and writes it back with ``If-Match: <ETag>`` (a new model with
  ``If-None-Match: *``).  When another writer committed in between, S3 answers 412 and the
  change is re-applied to the new document, so no update is ever lost; the stage rules run
  again on the fresh state, so two racing promotions still leave one production version.
  Each document carries a fresh ``commit`` token, so its ETag is never reused (no ABA) and a
  writer can tell its own retried write from someone else's.
* **Immutable versions.**  A version's objects are uploaded under a random ``<upload>`` key
  with ``If-None-Match: *`` *before* the commit that names them, with their SHA-256 sent as
  ``x-amz-checksum-sha256`` so the server rejects bytes that differ from what was hashed.  A
  registration killed midway leaves only objects no document names; once the version is
  committed, the next registration of any writer removes the others of that version.
* **History.**  ``model.json`` carries the events of its change (``last_events``); events
  are also written as ``history/<seq>.json`` with ``If-None-Match: *``.  Before committing,
  a writer first writes the previous change's events (412: already there), so when change
  *N* commits, the objects of every change before it exist.  A reader therefore needs no
  retry: the objects up to the document's previous change, then ``last_events``.
* **The probe.**  Some S3-compatible servers accept ``If-Match`` and ignore it, and then
  racing writers silently lose updates.  Before its first write the backend checks that a
  stale ``If-Match`` and an ``If-None-Match: *`` on an existing object both get 412; where
  they do not, it refuses to write (:class:`ConditionalWritesUnsupportedError`, naming the
  endpoint).  Reading needs no conditional writes and is never refused.

Artifacts are handed out as a local copy: :meth:`S3Store.fetch_artifact` downloads into a
content-addressed cache (``$MLOPS_REGISTRY_CACHE``, else ``~/.cache/mlops/registry``),
hashing while it writes, and re-hashes a cached copy on every call, as the filesystem backend
re-hashes its stored file.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import copy
import hashlib
import os
import random
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from mlops_core import _fsutil as fs
from mlops_core._common import utc_timestamp
from mlops_core.errors import (
    ConditionalWritesUnsupportedError,
    CorruptMetadataError,
    IntegrityError,
    LockTimeoutError,
    ModelNotFoundError,
    RegistryInputError,
    StorageError,
    VersionExistsError,
)
from mlops_core.registry._metadata import (
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
    new_doc,
    number_events,
    version_exists,
)
from mlops_core.registry._names import NAME_RE, validate_name

HISTORY_DIR = "history"
ARTIFACT_DIR = "artifact"
PROBE_DIR = ".mlops-probe"
_CONFLICT = ("PreconditionFailed", "ConditionalRequestConflict")  # 412, and 409 on AWS
_MISSING = ("NoSuchKey", "404", "NotFound")
#: what a server that does not implement If-Match/If-None-Match on PUT may answer
_UNSUPPORTED = ("NotImplemented", "501", "InvalidArgument", "InvalidRequest")
#: endpoints whose conditional writes were checked in this process: (endpoint, bucket)
_PROBED: set[tuple[str, str]] = set()


def default_cache_dir() -> Path:
    """``$MLOPS_REGISTRY_CACHE``, else ``$XDG_CACHE_HOME/mlops/registry`` (``~/.cache``)."""
    if os.environ.get("MLOPS_REGISTRY_CACHE"):
        return Path(os.environ["MLOPS_REGISTRY_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mlops" / "registry"


class _Conflict(Exception):
    """A conditional write lost: the object changed (412) or is being changed (409)."""


def _dump(value: Any) -> bytes:
    return fs.dump_json(value)


class S3Store:
    """A registry under ``s3://bucket/prefix``; see the module docstring for how it holds up."""

    def __init__(
        self, url: str, *, timeout: float, cache_dir: str | os.PathLike[str] | None = None
    ) -> None:
        bucket, _, prefix = url[len("s3://") :].partition("/")
        if not bucket:
            raise RegistryInputError(f"registry URL {url!r} names no bucket (s3://bucket/prefix)")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.location = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self.timeout = timeout
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        config = Config(
            retries={"mode": "standard", "max_attempts": 4},
            connect_timeout=10,
            read_timeout=60,
            max_pool_connections=16,
        )
        try:
            self.client = boto3.session.Session().client("s3", config=config)
        except BotoCoreError as exc:
            raise StorageError(f"{self.location}: cannot set up an S3 client: {exc}") from None
        self.endpoint = str(self.client.meta.endpoint_url)
        put = self.client.meta.service_model.operation_model("PutObject").input_shape.members
        if "IfMatch" not in put or "IfNoneMatch" not in put:
            raise RegistryInputError(
                f"{self.location}: boto3 {boto3.__version__} cannot send conditional writes"
                " (If-Match); upgrade it: pip install -U 'boto3>=1.36'"
            )

    # --- writes ---------------------------------------------------------------------------

    def register(
        self,
        name: str,
        version: str,
        src: Path,
        record: dict[str, Any],
        reference: bytes | None,
    ) -> tuple[Doc, dict[str, Any]]:
        """Upload the version under a fresh key, then commit it to model.json."""
        self._check_conditional_writes()
        current = self._load(name)
        if current is not None and version in ids(current[0]):
            raise version_exists(name, version)
        upload = secrets.token_hex(8)
        base = self._upload_prefix(name, version, upload)
        committing = False
        try:
            sha, size, kind, manifest = self._upload_artifact(src, f"{base}{ARTIFACT_DIR}/")
            record = {**record, "kind": kind, "sha256": sha, "size": size, "upload": upload}
            if manifest is not None:
                record["manifest"] = manifest
            if reference is not None:
                self._create(f"{base}{REFERENCE_FILE}", reference, unique=True)
            record["registered_at"] = utc_timestamp()
            self._create(f"{base}{VERSION_FILE}", _dump(record), unique=True)
            entry: dict[str, Any] = {"version": version, "sha256": sha, "upload": upload}
            if record.get("reference") is not None:
                entry["reference_sha256"] = record["reference"]["sha256"]

            def add(doc: Doc, events: list[Event]) -> None:
                if version in ids(doc):
                    raise version_exists(name, version)
                doc["versions"].append(entry)
                events.append(make_event("register", version, None, "none"))

            committing = True
            doc = self._change(name, add, create=True)
        except BaseException as exc:
            # nothing names these objects, unless a commit whose answer was lost went through
            if not committing or isinstance(exc, VersionExistsError):
                with contextlib.suppress(Exception):
                    self._delete_prefix(base)
            raise
        # registrations of this version that were killed, or lost the race, are garbage now
        with contextlib.suppress(StorageError):
            self._delete_prefix(self._version_prefix(name, version), keep=base)
        return doc, record

    def mutate(self, name: str, change: Callable[[Doc, list[Event]], None]) -> None:
        """Apply ``change`` to a copy of model.json and commit it with ``If-Match``.

        On 412 (another writer committed first) ``change`` runs again on the new document.
        Nothing is written when it raises or adds no event.
        """
        self._check_conditional_writes()
        self._change(name, change, create=False)

    # --- reads ----------------------------------------------------------------------------

    def list_models(self) -> list[str]:
        root = f"{self.prefix}/" if self.prefix else ""
        names: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        with self._errors(self.location):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=root, Delimiter="/"):
                for common in page.get("CommonPrefixes", []):
                    names.append(common["Prefix"][len(root) :].rstrip("/"))
        found = []
        for name in sorted(names):
            if NAME_RE.fullmatch(name) and self._exists(self._model_key(name)):
                found.append(name)
        return found

    def load_doc(self, name: str) -> Doc | None:
        got = self._load(name)
        return None if got is None else got[0]

    def history(self, name: str) -> list[Event]:
        """Every event: the objects of the changes before the last one, then ``last_events``.

        The committer of a change made sure the objects of every earlier change exist, so
        one read of model.json tells exactly which objects to read: no retry, no listing.
        """
        doc = self._require_doc(name)
        stored = doc["seq"] - len(doc["last_events"])
        keys = [self._history_key(name, seq) for seq in range(1, stored + 1)]
        if len(keys) < 4:
            blobs = [self._get_or_none(k) for k in keys]
        else:  # one round trip each: overlap them (the client is thread-safe)
            with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
                blobs = list(pool.map(self._get_or_none, keys))
        events: list[Event] = []
        for seq, (key, blob) in enumerate(zip(keys, blobs, strict=True), 1):
            where = self._url(key)
            if blob is None:
                raise CorruptMetadataError(f"{where}: is missing (event {seq} of the history)")
            ev = check_event(fs.parse_json(blob[0], where), where)
            if ev["seq"] != seq:
                raise CorruptMetadataError(f"{where}: holds event seq {ev['seq']}, expected {seq}")
            events.append(ev)
        return events + doc["last_events"]

    def read_record(self, name: str, entry: dict[str, Any]) -> dict[str, Any]:
        version = entry["version"]
        upload = entry.get("upload")
        if not upload:
            raise CorruptMetadataError(
                f"{self._url(self._model_key(name))}: version {version!r} has no 'upload'"
            )
        key = f"{self._upload_prefix(name, version, upload)}{VERSION_FILE}"
        where = self._url(key)
        got = self._get_or_none(key)
        if got is None:
            raise CorruptMetadataError(f"{where}: is missing")
        rec = check_record(fs.parse_json(got[0], where), name, version, where)
        if rec.get("upload") != upload:
            raise CorruptMetadataError(
                f"{where}: 'upload' is {rec.get('upload')!r}, not {upload!r}"
            )
        return rec

    def artifact_path(self, name: str, record: dict[str, Any]) -> Path:
        """Where :meth:`fetch_artifact` puts the verified local copy (content-addressed)."""
        return self.cache_dir / record["sha256"] / record["source_name"]

    def artifact_location(self, name: str, record: dict[str, Any]) -> str:
        key = self._artifact_key(name, record)
        return self._url(key + ("/" if record["kind"] == "directory" else ""))

    def hash_artifact(self, name: str, record: dict[str, Any]) -> tuple[str, int]:
        """(sha256, size) of the stored objects, streamed; nothing is written locally."""
        return self._stream_artifact(name, record, None)

    def fetch_artifact(self, name: str, record: dict[str, Any]) -> Path:
        """A verified local copy: the cached one if it still hashes right, else downloaded."""
        target = self.artifact_path(name, record)
        expected, recorded = record["sha256"], record["size"]
        with contextlib.suppress(OSError, IntegrityError):
            actual, size = fs.hash_artifact(target)
            if artifact_problem(target, actual, size, expected, recorded) is None:
                return target
        target.parent.mkdir(parents=True, exist_ok=True)
        incoming = fs.temp_name(target, "incoming")
        try:
            actual, size = self._stream_artifact(name, record, incoming)
            problem = artifact_problem(
                self.artifact_location(name, record), actual, size, expected, recorded
            )
            if problem:
                raise IntegrityError(problem)
            self._install(incoming, target, record)
        finally:
            if incoming.is_dir():
                shutil.rmtree(incoming, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    incoming.unlink()
        return target

    def read_reference(self, name: str, record: dict[str, Any]) -> tuple[bytes, str]:
        key = f"{self._upload_prefix(name, record['version'], record['upload'])}{REFERENCE_FILE}"
        got = self._get_or_none(key)
        if got is None:
            raise IntegrityError(f"{self._url(key)}: is missing")
        return got[0], self._url(key)

    # --- the probe ------------------------------------------------------------------------

    def _check_conditional_writes(self) -> None:
        """Refuse to write where a stale ``If-Match`` or ``If-None-Match: *`` is not a 412.

        Checked once per endpoint and bucket in a process, on a scratch object under the
        registry's prefix (the credentials that write the registry can write there).
        """
        if (self.endpoint, self.bucket) in _PROBED:
            return
        key = self._key(PROBE_DIR, secrets.token_hex(8))
        ignored: str | None = None
        try:
            first = self._put(key, b"1", if_none_match=True)
            try:
                self._put(key, b"2", if_none_match=True)
                ignored = "If-None-Match: * on an existing object was accepted"
            except _Conflict:
                self._put(key, b"3", if_match=first)
                try:
                    self._put(key, b"4", if_match=first)
                    ignored = "a stale If-Match was accepted"
                except _Conflict:
                    pass
        except _Conflict:
            ignored = "a write that should have succeeded got 412"
        except StorageError as exc:
            if getattr(exc, "code", "") not in _UNSUPPORTED:
                raise  # no bucket, no access, no connection: not about conditional writes
            raise ConditionalWritesUnsupportedError(
                f"S3 endpoint {self.endpoint} rejects conditional writes ({exc.code});"
                f" refusing to write to {self.location}"
            ) from None
        finally:
            with contextlib.suppress(Exception):
                self.client.delete_object(Bucket=self.bucket, Key=key)
        if ignored:
            raise ConditionalWritesUnsupportedError(
                f"S3 endpoint {self.endpoint} ignores conditional writes ({ignored});"
                f" refusing to write to {self.location}, where racing writers could lose updates"
            )
        _PROBED.add((self.endpoint, self.bucket))
        with contextlib.suppress(Exception):  # probes of killed writers; not one in progress
            self._delete_stale_probes()

    def _delete_stale_probes(self, age: float = 3600.0) -> None:
        paginator = self.client.get_paginator("list_objects_v2")
        cutoff = time.time() - age
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(PROBE_DIR) + "/"):
            for obj in page.get("Contents", []):
                if obj["LastModified"].timestamp() < cutoff:
                    self.client.delete_object(Bucket=self.bucket, Key=obj["Key"])

    # --- committing -----------------------------------------------------------------------

    def _change(
        self, name: str, change: Callable[[Doc, list[Event]], None], *, create: bool
    ) -> Doc:
        """Read, apply ``change`` to a copy, commit with If-Match; again after each 412."""
        deadline = time.monotonic() + self.timeout
        for attempt in range(1_000_000):
            current = self._load(name)
            if current is None and not create:
                raise ModelNotFoundError(f"model {name!r} not found in registry {self.location}")
            old, etag = current if current is not None else (None, None)
            new = copy.deepcopy(old) if old is not None else new_doc(name)
            events: list[Event] = []
            change(new, events)
            if not events:
                return new
            if self._commit(name, old, etag, new, events):
                return new
            if time.monotonic() >= deadline:
                raise LockTimeoutError(
                    f"model {name!r}: {attempt + 1} conditional writes to"
                    f" {self._url(self._model_key(name))} lost to other writers in"
                    f" {self.timeout:g} s"
                )
            # full jitter: racing writers spread out instead of colliding again in step
            time.sleep(random.uniform(0, min(0.25, 0.004 * 2 ** min(attempt, 10))))
        raise AssertionError("unreachable")  # pragma: no cover

    def _commit(
        self, name: str, old: Doc | None, etag: str | None, new: Doc, events: list[Event]
    ) -> bool:
        """Write ``new`` over ``old`` (ETag ``etag``); False when another writer came first."""
        if old is not None:  # the previous change's events first: see "History" above
            self._backfill(name, old["last_events"])
        number_events(new, events)
        token = secrets.token_hex(8)
        new["commit"] = token
        key = self._model_key(name)
        check_doc(new, name, self._url(key))  # never write what we would reject
        try:
            if etag is None:
                self._put(key, _dump(new), if_none_match=True)
            else:
                self._put(key, _dump(new), if_match=etag)
        except _Conflict:
            # a retried request whose first attempt did commit also gets 412: look
            now = self._load(name)
            if now is None or now[0].get("commit") != token:
                return False
        # best effort: should this fail, the next writer writes them before its commit
        with contextlib.suppress(StorageError, _Conflict):
            self._write_events(name, events)
        return True

    def _backfill(self, name: str, events: list[Event]) -> None:
        """Make sure the objects of ``events`` (a committed change) exist.

        Their committer writes them in order right after committing, so when the last one
        exists all do: one request in the usual case, the writes only after a crash.
        """
        if events and not self._exists(self._history_key(name, events[-1]["seq"])):
            self._write_events(name, events)

    def _write_events(self, name: str, events: list[Event]) -> None:
        for ev in events:  # in order: an event object exists only after its predecessors
            with contextlib.suppress(_Conflict):  # 412: already written, by us or another
                self._put(self._history_key(name, ev["seq"]), _dump(ev), if_none_match=True)

    # --- artifacts ------------------------------------------------------------------------

    def _upload_artifact(
        self, src: Path, prefix: str
    ) -> tuple[str, int, str, list[list[Any]] | None]:
        """Upload a file or directory; (sha256, size, kind, manifest of a directory).

        The checksum has the filesystem backend's definition (``_fsutil.hash_artifact``), so
        a model has the same SHA-256 in either backend.  Each file is hashed, then uploaded
        with its SHA-256, which the server checks against the bytes it receives.
        """
        if src.is_file():
            digest, size = _hash_file(src, None)
            self._upload_file(src, f"{prefix}{src.name}", digest)
            return digest.hex(), size, "file", None
        if not src.is_dir():
            raise RegistryInputError(f"{src}: not a regular file or directory")
        try:
            entries = list(fs._walk(src))  # sorted, refuses symlinks and special files
        except IntegrityError as exc:
            raise RegistryInputError(f"cannot register {src}: {exc}") from None
        tree = hashlib.sha256()
        manifest: list[list[Any]] = []
        total = 0
        for rel, kind, abspath in entries:
            if kind == "dir":
                fs._tree_header(tree, rel, kind)
                manifest.append([rel, "dir", 0])
                continue
            expected = abspath.stat().st_size
            fs._tree_header(tree, rel, kind, expected)
            digest, size = _hash_file(abspath, tree)
            if size != expected:  # the header already promised ``expected`` bytes
                raise RegistryInputError(f"{abspath}: changed size while being registered")
            self._upload_file(abspath, f"{prefix}{src.name}/{rel}", digest)
            manifest.append([rel, "file", size])
            total += size
        return tree.hexdigest(), total, "directory", manifest

    def _upload_file(self, path: Path, key: str, digest: bytes) -> None:
        with open(path, "rb") as fh:
            self._create(key, fh, unique=True, sha256=digest)

    def _stream_artifact(
        self, name: str, record: dict[str, Any], dest: Path | None
    ) -> tuple[str, int]:
        """Hash the stored artifact (and write it to ``dest`` when given) in one pass."""
        key = self._artifact_key(name, record)
        hasher = hashlib.sha256()
        if record["kind"] == "file":
            return self._download(key, hasher, dest)
        manifest = _check_manifest(record.get("manifest"), self._url(key))
        listed = set(self._list_keys(f"{key}/"))
        wanted = {f"{key}/{rel}" for rel, kind, _ in manifest if kind == "file"}
        for extra in sorted(listed - wanted):
            raise IntegrityError(f"{self._url(extra)}: is not part of the registered directory")
        if dest is not None:
            dest.mkdir()
        total = 0
        for rel, kind, size in manifest:
            fs._tree_header(hasher, rel, kind, size)
            if kind == "dir":
                if dest is not None:
                    (dest / rel).mkdir()
                continue
            _, n = self._download(f"{key}/{rel}", hasher, dest / rel if dest else None)
            total += n
        return hasher.hexdigest(), total

    def _download(self, key: str, hasher: Any, dest: Path | None) -> tuple[str, int]:
        """Stream one object into ``hasher`` (and a new file ``dest``); (hexdigest, bytes)."""
        where = self._url(key)
        with self._errors(where):
            try:
                body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            except ClientError as exc:
                if _code(exc) in _MISSING:
                    raise IntegrityError(f"{where}: is missing") from None
                raise
            size = 0
            out: IO[bytes] | None = None
            try:
                if dest is not None:
                    out = open(dest, "xb")  # noqa: SIM115 - closed below, fsynced first
                for chunk in body.iter_chunks(fs.CHUNK):
                    hasher.update(chunk)
                    size += len(chunk)
                    if out is not None:
                        out.write(chunk)
                if out is not None:
                    out.flush()
                    os.fsync(out.fileno())
            finally:
                if out is not None:
                    out.close()
                body.close()
        return hasher.hexdigest(), size

    def _install(self, incoming: Path, target: Path, record: dict[str, Any]) -> None:
        """Move a verified download into the cache, replacing a damaged copy.

        A file is swapped in with ``os.replace`` (a reader of the old copy keeps its open
        file).  A directory cannot be swapped atomically, so a good copy that a racing
        fetch installed first is kept, and only a damaged one is removed.
        """
        if not incoming.is_dir():
            os.replace(incoming, target)
        else:
            if target.exists():
                try:
                    actual, size = fs.hash_artifact(target)
                    good = not artifact_problem(
                        target, actual, size, record["sha256"], record["size"]
                    )
                except (OSError, IntegrityError):
                    good = False
                if good:
                    return
                with contextlib.suppress(FileNotFoundError):
                    fs.remove_tree(target)
            try:
                os.rename(incoming, target)
            except OSError:
                if not target.is_dir():  # not a racing fetch that installed its copy first
                    raise
        fs.fsync_dir(target.parent)

    # --- keys and requests ----------------------------------------------------------------

    def _key(self, *parts: str) -> str:
        return "/".join([self.prefix, *parts] if self.prefix else parts)

    def _url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _model_key(self, name: str) -> str:
        return self._key(validate_name(name, "model name"), MODEL_FILE)

    def _history_key(self, name: str, seq: int) -> str:
        return self._key(name, HISTORY_DIR, f"{seq:012d}.json")

    def _version_prefix(self, name: str, version: str) -> str:
        return self._key(name, VERSIONS_DIR, version) + "/"

    def _upload_prefix(self, name: str, version: str, upload: str) -> str:
        if not upload or not all(c in "0123456789abcdef" for c in upload):
            raise CorruptMetadataError(
                f"{self._url(self._model_key(name))}: version {version!r} has upload {upload!r}"
            )
        return f"{self._version_prefix(name, version)}{upload}/"

    def _artifact_key(self, name: str, record: dict[str, Any]) -> str:
        base = self._upload_prefix(name, record["version"], record["upload"])
        return f"{base}{ARTIFACT_DIR}/{record['source_name']}"

    def _require_doc(self, name: str) -> Doc:
        doc = self.load_doc(name)
        if doc is None:
            raise ModelNotFoundError(f"model {name!r} not found in registry {self.location}")
        return doc

    def _load(self, name: str) -> tuple[Doc, str] | None:
        key = self._model_key(name)
        got = self._get_or_none(key)
        if got is None:
            return None
        data, etag = got
        return check_doc(fs.parse_json(data, self._url(key)), name, self._url(key)), etag

    def _get_or_none(self, key: str) -> tuple[bytes, str] | None:
        with self._errors(self._url(key)):
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if _code(exc) in _MISSING:
                    return None
                raise
            with contextlib.closing(response["Body"]) as body:
                return body.read(), response["ETag"]

    def _exists(self, key: str) -> bool:
        with self._errors(self._url(key)):
            try:
                self.client.head_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if _code(exc) in _MISSING:
                    return False
                raise
        return True

    def _put(
        self,
        key: str,
        body: bytes | IO[bytes],
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
        sha256: bytes | None = None,
    ) -> str:
        """PUT one object; its new ETag, or ``_Conflict`` when a condition did not hold."""
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "Body": body}
        if if_match is not None:
            args["IfMatch"] = if_match
        if if_none_match:
            args["IfNoneMatch"] = "*"
        if sha256 is not None:
            args["ChecksumSHA256"] = base64.b64encode(sha256).decode("ascii")
        with self._errors(self._url(key)):
            try:
                return str(self.client.put_object(**args)["ETag"])
            except ClientError as exc:
                if _code(exc) in _CONFLICT:
                    raise _Conflict(key) from None
                raise

    def _create(
        self, key: str, body: bytes | IO[bytes], *, unique: bool, sha256: bytes | None = None
    ) -> None:
        """Create an object that must not exist yet.

        ``unique`` keys hold a random upload id, so a 412 there means the first attempt of
        a retried request succeeded: the object is ours.
        """
        try:
            self._put(key, body, if_none_match=True, sha256=sha256)
        except _Conflict:
            if not unique:
                raise

    def _list_keys(self, prefix: str) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        with self._errors(self._url(prefix)):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    yield obj["Key"]

    def _delete_prefix(self, prefix: str, *, keep: str | None = None) -> None:
        doomed = [k for k in self._list_keys(prefix) if keep is None or not k.startswith(keep)]
        for i in range(0, len(doomed), 1000):
            batch = [{"Key": k} for k in doomed[i : i + 1000]]
            with self._errors(self._url(prefix)):
                self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                )

    @contextlib.contextmanager
    def _errors(self, where: str) -> Iterator[None]:
        """Turn the client's exceptions into one line naming the object and the endpoint."""
        try:
            yield
        except ClientError as exc:
            code = _code(exc)
            message = exc.response.get("Error", {}).get("Message") or ""
            if code == "NoSuchBucket":
                text = f"s3://{self.bucket}: no such bucket at {self.endpoint}"
            else:
                hint = ""
                if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                    hint = " (check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
                text = f"{where}: {code} from {self.endpoint}: {message}".rstrip(": ") + hint
            error = StorageError(" ".join(text.split()))
            error.code = code
            raise error from None
        except NoCredentialsError:
            raise StorageError(
                f"{where}: no AWS credentials found; set AWS_ACCESS_KEY_ID and"
                " AWS_SECRET_ACCESS_KEY"
            ) from None
        except BotoCoreError as exc:
            raise StorageError(f"{where}: {exc}") from None


# --- helpers ----------------------------------------------------------------------------------


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _hash_file(path: Path, also: Any) -> tuple[bytes, int]:
    """SHA-256 digest and size of a file, also feeding the bytes to ``also`` when given."""
    hasher = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(fs.CHUNK):
            hasher.update(chunk)
            if also is not None:
                also.update(chunk)
            size += len(chunk)
    return hasher.digest(), size


def _check_manifest(manifest: Any, where: str) -> list[tuple[str, str, int]]:
    """A directory's manifest from its record, refusing any path that could leave the copy."""
    if not isinstance(manifest, list):
        raise IntegrityError(f"{where}: the version record has no directory manifest")
    checked: list[tuple[str, str, int]] = []
    for item in manifest:
        ok = (
            isinstance(item, list)
            and len(item) == 3
            and isinstance(item[0], str)
            and item[1] in ("dir", "file")
            and isinstance(item[2], int)
            and item[2] >= 0
        )
        parts = item[0].split("/") if ok else []
        if not ok or any(p in ("", ".", "..") or "\x00" in p or "\\" in p for p in parts):
            raise IntegrityError(f"{where}: the version record's manifest has a bad entry {item!r}")
        checked.append((item[0], item[1], item[2]))
    return checked
