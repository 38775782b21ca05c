"""The reference profile that travels with a model version: what is stored, and how it is read.

The exporter judges drift against the reference of the version it monitors, so the profile
is stored with the version at registration, checksummed like the artifact, and never
changed afterwards.  It is stored as the profile's own JSON document
(:meth:`ReferenceProfile.to_json_dict`), so ``mlops profile`` and the exporter read a copy
of it as they read any saved profile.  ``mlops_core.profile`` (and numpy) are imported only
when a reference is given or read.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

from mlops_core.errors import IntegrityError, ProfileError, RegistryInputError
from mlops_core.registry._metadata import REFERENCE_FILE

if TYPE_CHECKING:
    from mlops_core.profile import ReferenceProfile

#: what ``register_model(reference=...)`` takes: a profile, raw columns, or a file
ReferenceInput: TypeAlias = "ReferenceProfile | Mapping[str, Any] | str | os.PathLike[str]"


def encode(reference: Any) -> tuple[bytes, dict[str, Any]]:
    """The bytes to store and the summary kept in the version record.

    ``reference`` is a :class:`ReferenceProfile`, a mapping of feature name to values (raw
    reference data, profiled with the defaults), or a path: raw data (``.csv``, ``.jsonl``,
    ``.npz``) or a saved profile (``.json``).  A bad one raises before anything is written.
    """
    from mlops_core.profile import ReferenceProfile

    if isinstance(reference, ReferenceProfile):
        profile = reference
    elif isinstance(reference, Mapping):
        profile = ReferenceProfile.from_data(reference)
    elif isinstance(reference, (str, os.PathLike)):
        profile = ReferenceProfile.from_file(os.fspath(reference))
    else:
        raise RegistryInputError(
            "reference must be a ReferenceProfile, a mapping of feature -> values or a path,"
            f" got {type(reference).__name__}"
        )
    doc = profile.to_json_dict()  # the caller's profile is not changed
    try:
        data = (json.dumps(doc, indent=1, allow_nan=False) + "\n").encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise RegistryInputError(f"reference profile metadata is not JSON: {exc}") from None
    summary = {
        "file": REFERENCE_FILE,
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "profile_hash": profile.hash,
        "n_rows": profile.n_rows,
        "features": profile.feature_names,
    }
    return data, summary


def decode(data: bytes, where: str, name: str, version: str) -> ReferenceProfile:
    """The profile from bytes whose checksum was already verified.

    The profile's own content hash is checked again by ``from_json_dict``; a failure here
    means a profile format this release cannot read, named with the file it came from.
    """
    from mlops_core.profile import ReferenceProfile

    try:
        doc = json.loads(data.decode("utf-8"))
        profile = ReferenceProfile.from_json_dict(doc)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntegrityError(f"{where}: not a reference profile ({exc})") from None
    except ProfileError as exc:
        raise ProfileError(f"{where}: {exc}") from None
    # which version this profile belongs to, for a caller that asked for "production"
    profile.metadata["model_name"] = name
    profile.metadata["model_version"] = version
    return profile
