"""Where a model's reference profile comes from: a file, or the registry stage it follows.

A model's ``reference:`` section names one of two sources:

* ``{path: reference.csv}`` (or a saved profile ``.json``): read once at start-up by
  :func:`exporter.config.load_reference`, exactly as before; :meth:`poll` never changes it;
* ``{registry: DIR | s3://bucket/prefix, stage: production}`` (or ``staging``): the profile
  registered with the version the stage holds, re-read when a promotion or a rollback moves
  the stage.

:func:`open_reference` builds either and loads the first profile, or raises
:class:`~exporter.errors.ConfigError` with one line naming the model and the registry: the
exporter does not start without a reference.  After that, :meth:`StageReference.poll`
runs on a timer:

* it reads the stage pointer only (one small read of ``model.json``: 0.05 ms on disk, one
  ``GET`` on S3); the profile is downloaded only when the version changed;
* a change returns a :class:`VersionChange` (old version, new version, stage, the new
  :class:`Reference`); the caller counts it (``mlops_model_version_changes_total``) and
  logs it (:func:`log_poll_result`);
* a failure returns a :class:`PollFailure` with a reason from :data:`POLL_FAILURES` and
  keeps the last good reference: a profile that fails verification, a version registered
  without one, a registry that cannot be reached.  ``poll`` never raises.

A version's profile never changes once registered, so a version whose profile failed is not
downloaded again on every poll: it is tried again when the stage moves to another version
and back (or at the next start).  What may heal by itself (the registry unreachable, a
read refused) is tried again at the next poll.

``current`` is one immutable :class:`Reference`, swapped whole, so a thread that reads it
while another polls sees the old reference or the new one, never half of each.

The registry's S3 backend (and boto3) is imported only for an ``s3://`` location:
:class:`~mlops_core.registry.ModelRegistry` does that, and this module imports nothing of it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias

import msgspec
import structlog

from exporter.config import (
    DEFAULT_POLL_INTERVAL,
    STAGES,
    ExporterConfig,
    PathSpec,
    ReferenceSection,
    ReferenceSpec,
    RegistrySpec,
    Stage,
    load_reference,
    parse_reference,
    reference_spec,
    resolve_features,
)
from exporter.errors import ConfigError
from exporter.typing import FeatureKinds
from mlops_core.errors import (
    CorruptMetadataError,
    IntegrityError,
    MlopsError,
    ModelNotFoundError,
    ProfileError,
    StorageError,
)

if TYPE_CHECKING:
    from mlops_core.profile import ReferenceProfile
    from mlops_core.registry import ModelRegistry

__all__ = [
    "DEFAULT_POLL_INTERVAL",
    "POLL_FAILURES",
    "STAGES",
    "FileReference",
    "PathSpec",
    "PollFailure",
    "PollResult",
    "Reference",
    "ReferenceSection",
    "ReferenceSource",
    "ReferenceSpec",
    "RegistrySpec",
    "Stage",
    "StageReference",
    "VersionChange",
    "log_poll_result",
    "open_reference",
    "parse_reference",
    "reference_spec",
]

_log = structlog.get_logger("exporter.references")

PollFailureReason = Literal[
    "registry_unreadable",
    "no_version",
    "no_reference",
    "invalid_reference",
    "unusable_reference",
    "internal_error",
]
POLL_FAILURES: tuple[PollFailureReason, ...] = (
    "registry_unreadable",
    "no_version",
    "no_reference",
    "invalid_reference",
    "unusable_reference",
    "internal_error",
)
"""Why a poll kept the last good reference (a bounded label set, all present from the start):

``registry_unreadable``  the stage pointer could not be read: the registry is unreachable,
                         refused the read, its ``model.json`` is damaged, or the model is gone;
                         tried again at the next poll
``no_version``           the stage holds no version (staging after its version was promoted)
``no_reference``         the new version was registered without a reference profile
``invalid_reference``    the new version's profile (or its record) fails verification, or is a
                         format this release cannot read
``unusable_reference``   the profile is sound but lacks a configured feature or holds one as
                         another kind
``internal_error``       anything else (a bug: logged with its traceback)

``no_reference``, ``invalid_reference`` and ``unusable_reference`` concern one version, whose
profile cannot change: they are not retried until the stage moves away and back.  A profile
that could not be *read* at all (a storage error) counts as ``registry_unreadable`` and is
retried at the next poll, as is an ``internal_error``.
"""


# --- what the exporter holds: the current reference -------------------------------------------


@dataclass(frozen=True)
class Reference:
    """One model's reference as the exporter uses it; replaced whole, never changed.

    ``version`` and ``stage`` are ``None`` for a file reference.  ``metrics`` are those the
    registry stored with the version (``mlops validate --register`` stores the gate's), the
    baseline of a quality monitor; empty for a file.  ``source`` says where it came from, for
    logs and the landing page.
    """

    profile: ReferenceProfile
    features: FeatureKinds
    version: str | None = None
    stage: Stage | None = None
    metrics: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    source: str = ""


@dataclass(frozen=True)
class VersionChange:
    """The followed stage moved (a promotion or a rollback) and the new profile is loaded."""

    model: str
    old_version: str
    new_version: str
    stage: Stage
    reference: Reference

    def message(self) -> str:
        return (
            f"model {self.model!r}: {self.stage} moved from version {self.old_version!r} to"
            f" {self.new_version!r}; drift is now judged against its reference"
        )


@dataclass(frozen=True)
class PollFailure:
    """A poll kept the last good reference; ``error`` is the one line that says why.

    ``version`` is the version whose reference could not be used (``None`` when the stage
    itself could not be read or holds none).  ``repeated`` is true when the previous poll
    failed the same way: count it, but its line was already logged.  ``exception`` is kept
    for an ``internal_error``, whose traceback the log line carries.
    """

    model: str
    reason: PollFailureReason
    error: str
    version: str | None = None
    kept_version: str | None = None
    repeated: bool = False
    exception: BaseException | None = field(default=None, compare=False, repr=False)

    def message(self) -> str:
        which = "" if self.version is None else f" version {self.version!r}"
        return (
            f"model {self.model!r}{which}: {self.error}; keeping the reference of version"
            f" {self.kept_version!r}"
        )


#: what a poll found: nothing new (``None``), a change, or a failure (last good kept)
PollResult: TypeAlias = VersionChange | PollFailure | None


class ReferenceSource(Protocol):
    """One model's reference and where it comes from."""

    @property
    def model(self) -> str: ...

    @property
    def current(self) -> Reference:
        """The reference to judge drift against now."""
        ...

    @property
    def poll_interval(self) -> float | None:
        """Seconds between polls; ``None``: nothing to poll (a file)."""
        ...

    def describe(self) -> str:
        """Where the reference comes from, for logs and the landing page."""
        ...

    def poll(self) -> PollResult:
        """Look for a new version; never raises."""
        ...


def log_poll_result(result: PollResult, log: Any = _log) -> None:
    """The one log line a poll result deserves: a change at info, a new failure at warning.

    A repeated failure is logged at debug only, so a registry down for an hour gives one
    warning, not one per poll; an internal error comes with its traceback (once).
    """
    if result is None:
        return
    if isinstance(result, VersionChange):
        log.info(
            "model_version_changed",
            model=result.model,
            stage=result.stage,
            old_version=result.old_version,
            new_version=result.new_version,
            reference_hash=str(result.reference.profile.hash)[:12],
        )
        return
    fields = {
        "model": result.model,
        "version": result.version,
        "reason": result.reason,
        "kept_version": result.kept_version,
        "error": result.error,
    }
    if result.repeated:
        log.debug("reference_poll_failed", **fields)
    else:
        log.warning("reference_poll_failed", **fields, exc_info=result.exception or False)


# --- the two sources --------------------------------------------------------------------------


class FileReference:
    """A reference read once from a file; :meth:`poll` never changes it."""

    poll_interval: float | None = None

    def __init__(self, model: str, reference: Reference) -> None:
        self._model = model
        self._current = reference

    @property
    def model(self) -> str:
        return self._model

    @property
    def current(self) -> Reference:
        return self._current

    def describe(self) -> str:
        return f"file {self._current.source}"

    def poll(self) -> PollResult:
        return None


class _Unusable(Exception):
    """A version's reference cannot be used: (reason, one line, retry at the next poll?)."""

    def __init__(self, reason: PollFailureReason, error: str, retry: bool) -> None:
        super().__init__(error)
        self.reason, self.error, self.retry = reason, error, retry


class StageReference:
    """The reference of the version a registry stage holds, followed by :meth:`poll`.

    Built by :func:`open_reference`, which loads the first one.  ``poll`` is meant to run
    on one thread (the exporter's scheduler); ``current`` may be read from any.
    """

    def __init__(
        self,
        model: str,
        registry: ModelRegistry,
        spec: RegistrySpec,
        resolve: Callable[[ReferenceProfile, str], FeatureKinds],
        key: str = "reference",
    ) -> None:
        self._model = model
        self._registry = registry
        self.spec = spec
        self._resolve = resolve
        self._key = key
        self._current: Reference | None = None
        self._given_up: str | None = None  # the version whose reference failed for good
        self._last_failure: tuple[str, str | None] | None = None  # (reason, version)

    @property
    def model(self) -> str:
        return self._model

    @property
    def stage(self) -> Stage:
        return self.spec.stage

    @property
    def poll_interval(self) -> float | None:
        return self.spec.poll_interval

    @property
    def current(self) -> Reference:
        if self._current is None:
            raise RuntimeError("StageReference.start() was not called")  # open_reference does
        return self._current

    def describe(self) -> str:
        return f"registry {self._registry.location}, stage {self.stage}"

    def start(self) -> Reference:
        """Load the stage's version's reference, or ``ConfigError`` naming model and registry."""
        where = f"model {self._model!r} in registry {self._registry.location}"
        try:
            version = self._pointer()
        except ModelNotFoundError:
            raise ConfigError(
                f"{self._key}.registry: {where}: no such model"
                f" (registered: {', '.join(self._list_models()) or 'none'})"
            ) from None
        except (MlopsError, OSError) as exc:
            raise ConfigError(
                f"{self._key}.registry: {where}: cannot be read: {_line(exc)}"
            ) from None
        if version is None:
            raise ConfigError(
                f"{self._key}.registry: {where} has no {self.stage} version (promote one:"
                f" mlops registry promote {self._model} VERSION {self.stage})"
            )
        try:
            self._current = self._load(version)
        except _Unusable as exc:
            raise ConfigError(
                f"{self._key}.registry: {where}, {self.stage} version {version!r}: {exc.error}"
            ) from None
        return self._current

    def poll(self) -> PollResult:
        """Read the stage pointer; load the new version's reference if it moved.  Never raises."""
        current = self.current
        version: str | None = None
        try:
            try:
                version = self._pointer()
            except (MlopsError, OSError) as exc:
                return self._failed("registry_unreadable", _line(exc), None)
            if version is None:
                return self._failed("no_version", f"stage {self.stage} holds no version", None)
            if version == current.version:
                self._given_up = None  # moved back: a later move to it tries it again
                self._last_failure = None
                return None
            if version == self._given_up:
                return None  # already counted and logged; its profile cannot change
            try:
                new = self._load(version)
            except _Unusable as exc:
                if not exc.retry:
                    self._given_up = version
                return self._failed(exc.reason, exc.error, version)
        except Exception as exc:  # the contract: a poll never raises
            return self._failed("internal_error", f"{type(exc).__name__}: {exc}", version, exc)
        self._current = new
        self._given_up = None
        self._last_failure = None
        assert current.version is not None
        return VersionChange(self._model, current.version, version, self.stage, new)

    # --- internals ------------------------------------------------------------------------

    def _pointer(self) -> str | None:
        if self.stage == "production":
            return self._registry.get_production_version(self._model)
        return self._registry.get_staging_version(self._model)

    def _list_models(self) -> list[str]:
        try:
            return self._registry.list_models()
        except (MlopsError, OSError):
            return []

    def _load(self, version: str) -> Reference:
        """``version``'s reference, resolved against the configured features, or _Unusable."""
        try:
            profile = self._registry.get_reference_profile(self._model, version)
            metrics = self._registry.get_version_metrics(self._model, version)
        except ModelNotFoundError as exc:  # registered without a reference (or gone)
            raise _Unusable("no_reference", _line(exc), retry=False) from None
        except StorageError as exc:  # unreachable or refused: may heal
            raise _Unusable("registry_unreadable", _line(exc), retry=True) from None
        except (IntegrityError, CorruptMetadataError, ProfileError) as exc:
            raise _Unusable("invalid_reference", _line(exc), retry=False) from None
        except OSError as exc:  # a local read error (permissions, I/O): may heal
            raise _Unusable("registry_unreadable", _line(exc), retry=True) from None
        where = f"{self._registry.location} (model {self._model!r} version {version!r})"
        try:
            features = self._resolve(profile, where)
        except MlopsError as exc:
            raise _Unusable("unusable_reference", _line(exc), retry=False) from None
        return Reference(
            profile=profile,
            features=MappingProxyType(dict(features)),
            version=version,
            stage=self.stage,
            metrics=MappingProxyType(metrics),
            source=self.describe(),
        )

    def _failed(
        self,
        reason: PollFailureReason,
        error: str,
        version: str | None,
        exception: BaseException | None = None,
    ) -> PollFailure:
        repeated = self._last_failure == (reason, version)
        self._last_failure = (reason, version)
        return PollFailure(
            self._model, reason, error, version, self.current.version, repeated, exception
        )


def _line(exc: BaseException) -> str:
    """An exception as one line (a message from a server may hold newlines)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def open_reference(
    model: str,
    spec: ReferenceSpec,
    config: ExporterConfig,
    *,
    key: str = "reference",
    registry_factory: Callable[[str], ModelRegistry] | None = None,
) -> ReferenceSource:
    """The model's reference source with its first reference loaded.

    A file is read by :func:`exporter.config.load_reference` (``config`` with
    ``reference_path`` set to the spec's), so every rule and message of that function holds.
    A registry stage's profile is checked against ``config.features`` with
    :func:`exporter.config.resolve_features`.  Nothing to judge against raises
    :class:`ConfigError` in one line naming the model and the registry: no such model, no
    version in the stage, a version without a (valid) reference, an unreachable registry.
    ``registry_factory`` (tests) builds the registry from the location.
    """
    if isinstance(spec, PathSpec):
        file_config = msgspec.structs.replace(config, reference_path=spec.path)
        profile, features = load_reference(file_config)
        return FileReference(
            model, Reference(profile, MappingProxyType(dict(features)), source=spec.path)
        )
    if registry_factory is None:
        from mlops_core.registry import ModelRegistry  # the registry only when one is used

        registry_factory = ModelRegistry
    try:
        registry = registry_factory(spec.location)
    except (MlopsError, OSError) as exc:
        raise ConfigError(f"{key}.registry: {_line(exc)}") from None

    def resolve(profile: ReferenceProfile, where: str) -> FeatureKinds:
        return resolve_features(msgspec.structs.replace(config, reference_path=where), profile)

    source = StageReference(model, registry, spec, resolve, key)
    source.start()
    return source
