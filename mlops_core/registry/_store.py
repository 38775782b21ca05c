"""The storage backend interface: what :class:`ModelRegistry` needs from where models are kept.

The registry's rules (stages, rollback, what may change, what a checksum must match) live in
``mlops_core.registry``; a backend only stores and reads the documents and artifacts and
makes each change atomic.  Two implement it:

* ``_fs.FilesystemStore``: a local directory, writers serialised by ``flock``;
* ``_s3.S3Store``: an S3-compatible bucket, writers serialised by conditional writes.

A change is handed to :meth:`Store.mutate` as a function, not done in a ``with`` block,
because a backend without locks may have to run it again on a newer document.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from mlops_core.registry._metadata import Doc, Event

#: edits a copy of the model document and appends the events of the change; may raise
Change = Callable[[Doc, list[Event]], None]


class Store(Protocol):
    @property
    def location(self) -> str:
        """The registry's directory or ``s3://`` URL, for messages."""
        ...

    def register(
        self,
        name: str,
        version: str,
        src: Path,
        record: dict[str, Any],
        reference: bytes | None,
    ) -> tuple[Doc, dict[str, Any]]:
        """Store ``src`` and ``reference`` as ``version``, committed with a ``register`` event.

        ``record`` is completed with the artifact's ``kind``, ``sha256``, ``size`` and
        ``registered_at``; returns the committed document and the record.
        ``VersionExistsError`` (nothing changed) when the version is already registered.
        """
        ...

    def mutate(self, name: str, change: Change) -> None:
        """Commit what ``change`` does to the model document, atomically, losing no update."""
        ...

    def list_models(self) -> list[str]: ...

    def load_doc(self, name: str) -> Doc | None:
        """The validated model document, ``None`` when the model does not exist."""
        ...

    def history(self, name: str) -> list[Event]:
        """Every event of the model, seq 1, 2, 3, ... without gaps."""
        ...

    def read_record(self, name: str, entry: dict[str, Any]) -> dict[str, Any]:
        """The version record of the document's version ``entry``."""
        ...

    def artifact_path(self, name: str, record: dict[str, Any]) -> Path:
        """The local path :meth:`fetch_artifact` returns for this version."""
        ...

    def artifact_location(self, name: str, record: dict[str, Any]) -> str:
        """Where the artifact is stored (a path or a URL), for records and messages."""
        ...

    def hash_artifact(self, name: str, record: dict[str, Any]) -> tuple[str, int]:
        """(sha256, size) of the stored artifact; ``FileNotFoundError`` or
        ``IntegrityError`` (naming it) when it is missing or unreadable."""
        ...

    def fetch_artifact(self, name: str, record: dict[str, Any]) -> Path:
        """A local path to the artifact, verified against the record's checksum."""
        ...

    def read_reference(self, name: str, record: dict[str, Any]) -> tuple[bytes, str]:
        """The stored reference profile's bytes (not yet verified) and where they are."""
        ...
