"""The one exception hierarchy of mlops_core (and, on top of it, of the exporter).

Every error raised on purpose derives from :class:`MlopsError`, so a caller can
catch everything this project raises with one ``except``.  The exporter's own errors
(:class:`exporter.errors.ConfigError`) derive from it too, but live in the exporter: the
library knows nothing of the daemon.  Errors about bad
input also derive from the builtin a Python programmer would reach for
(``ValueError``, ``LookupError``), so code written against the builtins keeps
working.  Messages name the thing at fault (feature, file, key, model) because
they are shown to users as one line, without a traceback.
"""

from __future__ import annotations

import os


class MlopsError(Exception):
    """Base class of every error raised by mlops_core and the exporter."""


class MissingFileError(MlopsError, FileNotFoundError):
    """An input file (reference data, profile, model) does not exist; the message names it.

    Also a ``FileNotFoundError``, so callers written against the builtin keep working.
    """


# --- drift and reference profiles -------------------------------------------------------------


class DriftInputError(MlopsError, ValueError):
    """Input to a drift test is unusable (empty, no finite values, wrong type, missing feature)."""


class ProfileError(MlopsError, ValueError):
    """A reference profile or reference data file cannot be read or is inconsistent."""


class DataFileWarning(MlopsError, UserWarning):
    """A data file was read, but not exactly as written (a header name lost its surrounding
    whitespace); the message names the file and says what a user must know.

    A warning (``warnings.warn``), which ``mlops`` prints as one ``note:`` line on stderr.
    It is an :class:`MlopsError` too, so that under ``-W error`` it is still one line.
    """


# --- model registry ---------------------------------------------------------------------------


class RegistryError(MlopsError):
    """Base class of the model registry's errors."""


class InvalidNameError(RegistryError, ValueError):
    """A model name or version could escape the registry directory or is otherwise invalid."""


class RegistryInputError(RegistryError, ValueError):
    """Metrics, tags or a source given to the registry cannot be stored (NaN, symlink, ...)."""


class ModelNotFoundError(RegistryError, LookupError):
    """The named model, or the named version of it, is not in the registry."""


class VersionExistsError(RegistryError):
    """The version is already registered; registering it again would change history."""


class StageError(RegistryError):
    """A stage change is not possible (for example a rollback with no previous production)."""


class IntegrityError(RegistryError):
    """A stored model file no longer matches the checksum recorded when it was registered."""


class CorruptMetadataError(RegistryError):
    """A registry metadata file is unreadable or was edited into an invalid state."""


class LockTimeoutError(RegistryError, TimeoutError):
    """The per-model lock could not be taken in time (on object storage: a change kept losing
    its conditional write to other writers until the timeout)."""


class StorageError(RegistryError, OSError):
    """Object storage refused a request or cannot be reached; names the endpoint and object."""

    code: str = ""  # the S3 error code ("AccessDenied", "NoSuchBucket"), when there is one


class ConditionalWritesUnsupportedError(StorageError):
    """The S3 endpoint ignores ``If-Match``/``If-None-Match``: writing there could lose updates."""


class RegistryWarning(MlopsError, UserWarning):
    """A registry read skipped what it could not use and carried on (a torn last line of
    ``history.jsonl``); the message names the file and line.  A warning, not an error,
    because the rest is intact and refusing it all would cost more than the one line.  An
    :class:`MlopsError` too (as :class:`DataFileWarning`), so under ``-W error`` it is one line."""


# --- prediction logging -----------------------------------------------------------------------


class PredictionLogError(MlopsError, ValueError):
    """A prediction log call got an unusable argument (the message names it)."""


class LogOutputError(MlopsError, OSError):
    """The prediction log file cannot be opened or written; the message names the path."""


# --- validation gate and alerting -------------------------------------------------------------


class ValidationConfigError(MlopsError, ValueError):
    """The validation gate's configuration is wrong (unknown key, wrong type)."""


class ValidationInputError(MlopsError, ValueError):
    """A model or validation data file given to the gate cannot be loaded (names the file)."""


class AlertConfigError(MlopsError, ValueError):
    """The alert thresholds are wrong (unknown severity, non-numeric bound)."""


# --- values shared by every config ------------------------------------------------------------


class DurationError(MlopsError, ValueError):
    """Not a duration (``mlops_core.durations``); callers re-raise it naming their key."""


# --- one line for the user ---------------------------------------------------------------


def one_line(exc: BaseException) -> str:
    """An error as the one line a user sees: ``path: reason`` for an OS error (not
    ``[Errno 13] ...``), whitespace folded so a message never spans lines.

    Here, in the library, because the registry (a verification that could not read a file)
    says it the way the ``mlops`` CLI does, and the library must not import the CLI.
    """
    text = str(exc) or type(exc).__name__
    if isinstance(exc, FileNotFoundError) and exc.filename and _default_reason(exc):
        text = f"{exc.filename}: no such file"  # as MissingFileError says it
    elif isinstance(exc, OSError) and exc.strerror and exc.filename:
        text = f"{exc.filename}: {exc.strerror}"
    return " ".join(text.split())


def _default_reason(exc: OSError) -> bool:
    """The C library's words for the errno, not a reason written for the user (such as
    ``_fsutil``'s "directory ... does not exist")."""
    return exc.errno is None or exc.strerror in (None, os.strerror(exc.errno))


# Moved to the exporter (exporter/errors.py); still importable from here so that code
# written against the old home keeps working.  Resolved on first use only: importing the
# library never imports the daemon.
_MOVED = {"ConfigError": "exporter.errors"}


def __getattr__(name: str) -> type[MlopsError]:
    module = _MOVED.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value: type[MlopsError] = getattr(importlib.import_module(module), name)
    return value
