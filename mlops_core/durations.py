"""Prometheus-style durations (``500ms``, ``30s``, ``5m``, ``1h30m``, ``2d``, ``1w``).

One parser for every config that takes a duration (the exporter's ``drift.interval``, the
alert system's ``cooldown``).  It is pure and knows no key names: it raises
:class:`~mlops_core.errors.DurationError` describing the value, and each caller turns that
into its own error type, prefixed with the key at fault.  Whether zero is allowed is the
caller's decision too.
"""

from __future__ import annotations

import math
import re
from typing import Any

from mlops_core.errors import DurationError

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(value: Any) -> float:
    """Seconds (0 or more) from a duration string, or from a plain number of seconds.

    Parts are written largest first without spaces, each a number and a unit of
    ``UNIT_SECONDS``; booleans, negative or non-finite numbers and anything else raise
    :class:`DurationError`.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise DurationError(f"expected a duration like 30s, got {value!r} ({type(value).__name__})")
    if isinstance(value, str):
        text = value.strip()
        pos, seconds = 0, 0.0
        for match in _PART.finditer(text):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * UNIT_SECONDS[match.group(2)]
            pos = match.end()
        if not text or pos != len(text):
            raise DurationError(
                f"bad duration {value!r}; use a number with a unit: 500ms, 30s, 5m, 1h"
            )
    else:
        seconds = float(value) if isinstance(value, float) or abs(value) < 2**1000 else math.inf
    if not math.isfinite(seconds) or seconds < 0:
        raise DurationError(f"duration must be a finite number of seconds >= 0, got {value!r}")
    return seconds
