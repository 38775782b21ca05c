"""A model registry that survives crashes, concurrent writers and tampering, on disk or in S3.

Data engineers register a trained model file (or directory) with its metrics and the
reference profile drift is judged against, promote it to staging and production, roll back,
and the serving and monitoring side asks for what is in production::

    registry = ModelRegistry("./my_registry")          # or ModelRegistry("s3://bucket/prefix")
    registry.register_model("churn", "1.0.0", "model.pkl", {"accuracy": 0.85},
                            reference="training.csv")
    registry.promote_to_staging("churn", "1.0.0")
    registry.promote_to_production("churn", "1.0.0")
    path = registry.get_production_model_path("churn")   # checksum verified first
    profile = registry.get_production_reference_profile("churn")   # without the model

This module holds the registry's rules: stages, rollback, what a checksum must match.
Where the models are kept is a storage backend (``_store.Store``):

* a directory (``_fs.py``, the default): writers of a model serialised by ``flock``, every
  file swapped in atomically; see that module for the layout and why it holds up;
* an S3-compatible bucket (``_s3.py``, for ``s3://`` URLs) that nodes of a cluster can share:
  writers serialised by conditional writes instead of locks, with the same guarantees.

Both keep one model document per model (``model.json``) as the single source of truth and
commit point, so there is at most one production version by construction, versions are
immutable once registered, and the history is complete: see ``_metadata.py``.

Versions are strings.  ``list_versions`` returns them in registration order (the order in
``model.json``); ``order="version"`` sorts them with :func:`version_sort_key`, a PEP 440-like
natural order (``1.0.0rc1 < 1.0.0 < 1.2.0 < 1.10.0``; non-PEP 440 strings sort after, naturally).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_core.errors import (
    CorruptMetadataError,
    IntegrityError,
    MissingFileError,
    ModelNotFoundError,
    RegistryInputError,
    StageError,
    one_line,
)
from mlops_core.registry import _metadata as md
from mlops_core.registry import _reference
from mlops_core.registry._fs import FilesystemStore
from mlops_core.registry._metadata import (
    FORMAT,
    HISTORY_FILE,
    LOCK_FILE,
    MODEL_FILE,
    REFERENCE_FILE,
    STAGES,
    VERSION_FILE,
    VERSIONS_DIR,
    Doc,
    Event,
)
from mlops_core.registry._names import validate_name, version_sort_key
from mlops_core.registry._records import ModelInfo, ModelVersion, StageChange, VerifyResult
from mlops_core.registry._store import Store

if TYPE_CHECKING:
    from mlops_core.profile import ReferenceProfile
    from mlops_core.registry._reference import ReferenceInput

__all__ = [
    "FORMAT",
    "HISTORY_FILE",
    "LOCK_FILE",
    "MODEL_FILE",
    "REFERENCE_FILE",
    "STAGES",
    "VERSIONS_DIR",
    "VERSION_FILE",
    "ModelInfo",
    "ModelRegistry",
    "ModelVersion",
    "StageChange",
    "VerifyResult",
    "validate_name",
    "version_sort_key",
]

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


class ModelRegistry:
    """Models and their versions in a directory or under an ``s3://bucket/prefix`` URL.

    ``lock_timeout`` bounds how long a write waits for other writers of the same model: for
    the model's lock on the filesystem, for a conditional write that keeps losing to other
    writers on S3 (``LockTimeoutError`` either way).  ``cache_dir`` is where an S3 registry
    keeps the verified local copies of artifacts it hands out (default
    ``$MLOPS_REGISTRY_CACHE``, else ``~/.cache/mlops/registry``).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        lock_timeout: float = 30.0,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        location = os.fspath(root)
        self.lock_timeout = lock_timeout
        self._store: Store
        if location.startswith("s3://"):
            try:
                from mlops_core.registry._s3 import S3Store  # boto3 only for s3:// URLs
            except ImportError as exc:
                raise RegistryInputError(
                    f"registry {location}: the S3 backend needs {exc.name or 'boto3'}"
                    " (pip install 'mlops-exporter[s3]')"
                ) from None
            self._store = S3Store(location, timeout=lock_timeout, cache_dir=cache_dir)
        elif _URL.match(location):
            raise RegistryInputError(
                f"registry {location!r}: unsupported URL; use a directory or s3://bucket/prefix"
            )
        else:
            self._store = FilesystemStore(Path(os.path.abspath(location)), lock_timeout)

    @property
    def location(self) -> str:
        """The registry's directory or ``s3://`` URL."""
        return self._store.location

    @property
    def root(self) -> Path:
        """The registry directory (filesystem registries only)."""
        if isinstance(self._store, FilesystemStore):
            return self._store.root
        raise AttributeError(f"{self.location} is not a directory registry; it has no root")

    def __repr__(self) -> str:
        return f"ModelRegistry({self.location!r})"

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
        reference: ReferenceInput | None = None,
    ) -> ModelVersion:
        """Copy a model file or directory in, checksum it, and record it in stage ``none``.

        ``reference`` is stored with the version as its reference profile: a
        :class:`~mlops_core.profile.ReferenceProfile`, raw reference data (a mapping of
        feature name to values), or a path to raw data (``.csv``, ``.jsonl``, ``.npz``) or
        to a saved profile (``.json``).  It is checksummed like the artifact and never
        changes afterwards; read it back with :meth:`get_reference_profile`.

        Raises ``FileNotFoundError`` for a missing source and ``VersionExistsError`` (changing
        nothing) when the version is already registered.  A reference that cannot be
        profiled raises before anything is written.
        """
        validate_name(name, "model name")
        validate_name(version, "version")
        src = Path(os.path.abspath(os.fspath(model_path)))
        if not src.exists():
            raise MissingFileError(f"model file not found: {os.fspath(model_path)}")
        if src.name in ("", VERSION_FILE, REFERENCE_FILE):
            raise RegistryInputError(f"{src}: cannot register a file or directory with this name")
        if description is not None and not isinstance(description, str):
            raise RegistryInputError("description must be a string")
        record: dict[str, Any] = {
            "format": FORMAT, "name": name, "version": version, "source_name": src.name,
            "source_path": str(src), "metrics": md.clean_metrics(metrics),
            "tags": md.clean_tags(tags), "description": description,
            "registered_by": md.os_user(),
        }  # fmt: skip
        data: bytes | None = None
        if reference is not None:
            data, record["reference"] = _reference.encode(reference)
        doc, record = self._store.register(name, version, src, record, data)
        return self._version_from(name, doc, version, record)

    def promote_to_staging(
        self, name: str, version: str, *, reason: str | None = None
    ) -> ModelVersion:
        """Put ``version`` in staging; the previous staging version goes back to ``none``."""

        def change(doc: Doc, events: list[Event], current: str) -> None:
            if current in ("staging", "production"):
                raise StageError(f"model {name!r} version {version!r} is already in {current}")
            old = doc["staging"]
            events.append(md.make_event("promote", version, current, "staging", reason))
            if old is not None:
                events.append(
                    md.make_event("demote", old, "staging", "none", f"replaced by {version}")
                )
            md.discard(doc["archived"], version)
            doc["staging"] = version

        return self._change_stage(name, version, change)

    def promote_to_production(
        self, name: str, version: str, *, reason: str | None = None
    ) -> ModelVersion:
        """Put ``version`` in production; the previous one is archived and kept for rollback."""

        def change(doc: Doc, events: list[Event], current: str) -> None:
            if current == "production":
                raise StageError(f"model {name!r} version {version!r} is already in production")
            events.append(md.make_event("promote", version, current, "production", reason))
            old = doc["production"]
            if old is not None:
                doc["archived"].append(old)
                doc["previous_production"].append(old)
                events.append(
                    md.make_event(
                        "archive", old, "production", "archived", f"replaced by {version}"
                    )
                )
            _put_in_production(doc, version)

        return self._change_stage(name, version, change)

    def rollback(self, name: str, *, reason: str | None = None) -> str:
        """Restore the previous production version and return it.

        The version rolled back from is archived (and not offered for rollback again);
        rolling back repeatedly walks further back.  ``StageError`` when there is nothing to
        roll back to.
        """
        restored: list[str] = []

        def change(doc: Doc, events: list[Event]) -> None:
            restored.clear()  # the change may run again on a newer document
            stack, current = doc["previous_production"], doc["production"]
            while stack and stack[-1] == current:
                stack.pop()
            if not stack:
                raise StageError(
                    f"model {name!r} has no previous production version to roll back to"
                )
            target = stack.pop()
            events.append(
                md.make_event("rollback", target, md.stage(doc, target), "production", reason)
            )
            if current is not None:
                doc["archived"].append(current)
                events.append(md.make_event("rollback", current, "production", "archived", reason))
            _put_in_production(doc, target)
            restored.append(target)

        self._store.mutate(name, change)
        return restored[0]

    def archive_version(
        self, name: str, version: str, *, reason: str | None = None
    ) -> ModelVersion:
        """Retire a version that is not in production (its files stay, for rollback/audit)."""

        def change(doc: Doc, events: list[Event], current: str) -> None:
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
            events.append(md.make_event("archive", version, current, "archived", reason))

        return self._change_stage(name, version, change)

    # --- reads ----------------------------------------------------------------------------

    def list_models(self) -> list[str]:
        """Names of the models in the registry, sorted; an absent root holds none."""
        return self._store.list_models()

    def get_model(self, name: str) -> ModelInfo:
        doc = self._require_doc(name)
        return ModelInfo(
            name=name,
            created_at=doc["created_at"],
            versions=tuple(md.ids(doc)),
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
        ids = md.ids(doc)
        if order == "version":
            ids = sorted(ids, key=version_sort_key)
        return [self._version_from(name, doc, v, self._record(name, doc, v)) for v in ids]

    def get_version(self, name: str, version: str) -> ModelVersion:
        validate_name(version, "version")
        doc = self._require_doc(name)
        self._stage_of(doc, name, version)
        return self._version_from(name, doc, version, self._record(name, doc, version))

    def get_version_metrics(self, name: str, version: str) -> dict[str, Any]:
        """The metrics stored with ``version`` (``mlops validate --register`` stores the gate's:
        accuracy, f1, roc_auc, latency_p50_ms, ...), without touching the artifact."""
        return dict(self.get_version(name, version).metrics)

    def get_staging_version(self, name: str) -> str | None:
        return self._require_doc(name)["staging"]

    def get_production_version(self, name: str) -> str | None:
        return self._require_doc(name)["production"]

    def get_history(self, name: str) -> list[StageChange]:
        """Every stage change of the model, oldest first, numbered 1, 2, 3, ... without gaps."""
        validate_name(name, "model name")
        return [StageChange(**md.event_fields(ev)) for ev in self._store.history(name)]

    def get_model_path(self, name: str, version: str) -> Path:
        """The artifact of ``version`` as a local path, after checking it against its checksum.

        On the filesystem it is the stored file itself; from S3 a verified local copy.
        """
        validate_name(version, "version")
        doc = self._require_doc(name)
        self._stage_of(doc, name, version)
        rec, problem = self._checked_record(name, doc, version)
        if rec is not None:
            try:
                return self._store.fetch_artifact(name, rec)
            except IntegrityError as exc:
                problem = str(exc)
        raise IntegrityError(
            f"model {name!r} version {version!r} failed verification, refusing to use it: {problem}"
        )

    def get_production_model_path(self, name: str) -> Path:
        """Path of the production artifact; its SHA-256 is re-checked (streamed) first."""
        version = self._require_doc(name)["production"]
        if version is None:
            raise ModelNotFoundError(f"model {name!r} has no production version")
        return self.get_model_path(name, version)

    def get_reference_profile(self, name: str, version: str) -> ReferenceProfile:
        """The reference profile registered with ``version``, verified; the model is not read.

        ``IntegrityError`` naming the file when it no longer matches its checksum;
        ``ModelNotFoundError`` when the version was registered without one.  The profile's
        ``metadata`` names the model and version it belongs to.
        """
        validate_name(version, "version")
        doc = self._require_doc(name)
        self._stage_of(doc, name, version)
        return self._reference(name, doc, version)

    def get_production_reference_profile(self, name: str) -> ReferenceProfile:
        """The production version's reference profile; ``metadata["model_version"]`` says
        which version that was (read from one model document, so the two agree)."""
        doc = self._require_doc(name)
        version = doc["production"]
        if version is None:
            raise ModelNotFoundError(f"model {name!r} has no production version")
        return self._reference(name, doc, version)

    def verify(self, name: str, version: str | None = None) -> list[VerifyResult]:
        """Re-hash stored artifacts and reference profiles against the checksums recorded at
        registration.

        Problems are reported in the results, not raised, so one bad version does not hide
        the state of the others.
        """
        if version is not None:
            validate_name(version, "version")
        doc = self._require_doc(name)
        if version is not None:
            self._stage_of(doc, name, version)
            return [self._verify_one(name, doc, version)]
        return [self._verify_one(name, doc, v) for v in md.ids(doc)]

    # --- internals ------------------------------------------------------------------------

    def _change_stage(
        self, name: str, version: str, change: Callable[[Doc, list[Event], str], None]
    ) -> ModelVersion:
        """Run ``change(doc, events, current stage of version)`` as one write of the model
        document, and return the version as it then stands.

        The stage is read inside the write, from the document the change is applied to (it
        may run again on a newer one), never from an earlier read.
        """
        validate_name(version, "version")

        def apply(doc: Doc, events: list[Event]) -> None:
            change(doc, events, self._stage_of(doc, name, version))

        self._store.mutate(name, apply)
        return self.get_version(name, version)

    def _require_doc(self, name: str) -> Doc:
        doc = self._store.load_doc(validate_name(name, "model name"))
        if doc is None:
            raise ModelNotFoundError(f"model {name!r} not found in registry {self.location}")
        return doc

    def _stage_of(self, doc: Mapping[str, Any], name: str, version: str) -> str:
        validate_name(version, "version")
        if version not in md.ids(doc):
            known = ", ".join(md.ids(doc)) or "none"
            raise ModelNotFoundError(
                f"model {name!r} has no version {version!r} (registered: {known})"
            )
        return md.stage(doc, version)

    def _record(self, name: str, doc: Doc, version: str) -> dict[str, Any]:
        return self._store.read_record(name, md.entry(doc, version))

    def _checked_record(
        self, name: str, doc: Doc, version: str
    ) -> tuple[dict[str, Any] | None, str | None]:
        """The version record if it agrees with model.json, else why not."""
        expected = md.entry(doc, version)["sha256"]
        try:
            rec = self._record(name, doc, version)
        except (CorruptMetadataError, IntegrityError) as exc:
            return None, str(exc)
        if rec["sha256"] != expected:
            return None, f"{VERSION_FILE} records sha256 {rec['sha256']}, {MODEL_FILE} {expected}"
        return rec, None

    def _reference(self, name: str, doc: Doc, version: str) -> ReferenceProfile:
        entry = md.entry(doc, version)
        rec = self._store.read_record(name, entry)
        if rec.get("reference") is None:
            raise ModelNotFoundError(
                f"model {name!r} version {version!r} was registered without a reference profile"
            )
        data, where = self._store.read_reference(name, rec)
        problem = md.check_reference_bytes(data, rec, entry, where)
        if problem:
            raise IntegrityError(
                f"reference profile of model {name!r} version {version!r} failed verification,"
                f" refusing to use it: {problem}"
            )
        return _reference.decode(data, where, name, version)

    def _version_from(
        self, name: str, doc: Mapping[str, Any], version: str, rec: Mapping[str, Any]
    ) -> ModelVersion:
        record = dict(rec)
        return ModelVersion(
            name=name,
            version=version,
            stage=md.stage(doc, version),
            metrics=dict(rec["metrics"]),
            sha256=rec["sha256"],
            size=rec["size"],
            source_name=rec["source_name"],
            kind=rec["kind"],
            registered_at=rec["registered_at"],
            registered_by=rec["registered_by"],
            path=self._store.artifact_path(name, record),
            description=rec.get("description"),
            tags=dict(rec["tags"]),
            reference_sha256=(rec.get("reference") or {}).get("sha256"),
            location=self._store.artifact_location(name, record),
        )

    def _verify_one(self, name: str, doc: Doc, version: str) -> VerifyResult:
        """One version's result; a file it cannot read (no permission, an I/O error, an
        unreachable object) fails this version, not the whole verification."""
        try:
            return self._verify_version(name, doc, version)
        except OSError as exc:
            entry = md.entry(doc, version)
            stage = md.stage(doc, version)
            return VerifyResult(name, version, stage, False, entry["sha256"], None, one_line(exc))

    def _verify_version(self, name: str, doc: Doc, version: str) -> VerifyResult:
        expected = md.entry(doc, version)["sha256"]
        stage = md.stage(doc, version)

        def result(actual: str | None, problem: str | None) -> VerifyResult:
            return VerifyResult(name, version, stage, problem is None, expected, actual, problem)

        rec, problem = self._checked_record(name, doc, version)
        if rec is None:
            return result(None, problem)
        where = self._store.artifact_location(name, rec)
        try:
            actual, size = self._store.hash_artifact(name, rec)
        except FileNotFoundError:
            return result(None, f"{where}: is missing")
        except IntegrityError as exc:
            return result(None, str(exc))
        problem = md.artifact_problem(where, actual, size, expected, rec["size"])
        if problem is None and rec.get("reference") is not None:
            try:
                data, ref_where = self._store.read_reference(name, rec)
                problem = md.check_reference_bytes(data, rec, md.entry(doc, version), ref_where)
            except IntegrityError as exc:
                problem = str(exc)
        return result(actual, problem)


def _put_in_production(doc: Doc, version: str) -> None:
    """Make ``version`` the production version, out of staging and the archive (whoever held
    production before is the caller's to archive, with its event)."""
    if doc["staging"] == version:
        doc["staging"] = None
    md.discard(doc["archived"], version)
    doc["production"] = version
