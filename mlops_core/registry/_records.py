"""The records the registry hands to callers: frozen, with ``to_dict()`` for JSON output.

They are the same whichever backend stores the registry, so code written against the
filesystem registry works unchanged against object storage.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ModelVersion:
    """One registered version: its record plus the stage it is in now.

    ``path`` is where :meth:`ModelRegistry.get_model_path` hands the artifact out: the stored
    file itself on the filesystem backend, the verified local copy (which may not exist yet)
    on object storage.  ``location`` is where the artifact is stored (a path or an ``s3://``
    URL).  ``reference_sha256`` is the SHA-256 of the reference profile registered with the
    version, ``None`` when it has none.
    """

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
    reference_sha256: str | None = None
    location: str | None = None

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
    """Outcome of checking one stored version (artifact and reference profile) against the
    checksums recorded when it was registered."""

    name: str
    version: str
    stage: str
    ok: bool
    expected_sha256: str
    actual_sha256: str | None
    problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
