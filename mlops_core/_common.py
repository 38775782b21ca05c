"""Small helpers shared by several modules, so each exists once.

Standard library only: the prediction logger imports this, and model servers must be able
to import the logger cheaply.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any


def utc_timestamp(when: datetime | float | None = None) -> str:
    """ISO 8601 UTC with microseconds and a ``Z``: ``2026-11-26T03:44:27.123456Z``.

    ``when`` is a datetime (naive ones are taken as UTC), unix seconds, or ``None`` for now.
    The one timestamp format of every record the library writes (prediction logs, registry
    metadata, alerts).
    """
    if when is None:
        return datetime.now(UTC).isoformat(timespec="microseconds")[:-6] + "Z"
    if not isinstance(when, datetime):
        when = datetime.fromtimestamp(when, UTC)
    elif when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def is_finite_number(value: Any) -> bool:
    """An int or float that is finite as a float; booleans are not numbers here.

    An int too large for a float is not one either, so callers may ``float()`` the value.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False
