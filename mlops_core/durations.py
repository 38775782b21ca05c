"""Durations in Prometheus's grammar: ``500ms``, ``30s``, ``5m``, ``1h30m``, ``2d``, ``1w``, ``1y``.

One parser for every place that takes a duration: the exporter's config (``drift.interval``,
``logs.poll_interval``, ``latency.buckets`` ...), the in-process alerts (``cooldown``,
``alertmanager.ends_after``) and the ``for:`` values of ``rules/thresholds.yml``.  The
grammar is the one Prometheus users already know from rule files and flags, so a value
that works in one place works in all of them, and in Prometheus:

* one or more parts, each a whole number and a unit: ``ms s m h d w y``;
* parts written largest unit first, each unit at most once (``1h30m``, not ``30m1h`` or
  ``1h1h``); no fractions (``1.5h`` is ``1h30m``), no signs, no spaces;
* ``y`` is 365 days and ``w`` 7 days, as in Prometheus;
* at most :data:`MAX_DURATION` (``100y``).  Prometheus takes up to 292 years, but no
  caller can wait that long: ``threading``'s waits stop at ``TIMEOUT_MAX`` (292 years),
  ``datetime`` at year 9999, APScheduler converts to a C ``int`` and ``time.time()`` plus the
  duration must fit a ``time_t``.  ``10000000y`` used to be read, and the exporter died
  later in its scheduler or its follower; a century is beyond any real interval or age and
  safely within all of them.

A bare number (an ``int`` or ``float``, not a string) is a number of seconds wherever the
caller passes ``allow_number=True`` (the default): the exporter's config and the alerts
section have always taken ``interval: 30`` and bucket bounds like ``0.005``.  The rules'
``for:`` values do not (``allow_number=False``), since Prometheus would not take them.
Prometheus also accepts the string ``"0"``; this parser does not, as no caller ever did.

It is pure and knows no key names: it raises :class:`~mlops_core.errors.DurationError`
describing the value, and each caller turns that into its own error type, prefixed with the
key at fault.  Whether zero is allowed is the caller's decision too.
"""

from __future__ import annotations

import math
import re
from typing import Any

from mlops_core.errors import DurationError

#: seconds per unit, largest first: the order in which parts must be written
UNIT_SECONDS: dict[str, float] = {
    "y": 365 * 86400.0,
    "w": 7 * 86400.0,
    "d": 86400.0,
    "h": 3600.0,
    "m": 60.0,
    "s": 1.0,
    "ms": 0.001,
}
#: the longest duration any caller takes: 100 years, in seconds (module doc: why)
MAX_DURATION = 100 * UNIT_SECONDS["y"]
_UNIT_MILLISECONDS = {unit: round(seconds * 1000) for unit, seconds in UNIT_SECONDS.items()}
# beyond this a part overflows a float anyway (and int() refuses 4300 digits)
_MAX_DIGITS = 320
# Prometheus's own expression (prometheus/common model.ParseDuration): each unit optional,
# in this order, at most once.  "5ms" still parses: the engine backtracks out of "5m".
_GRAMMAR = re.compile("".join(rf"(?:(?P<{unit}>[0-9]+){unit})?" for unit in UNIT_SECONDS))


def parse_duration(value: Any, *, allow_number: bool = True) -> float:
    """Seconds (0 or more) from a duration string, or from a plain number of seconds.

    Strings follow Prometheus's grammar (module doc).  With ``allow_number`` an ``int`` or
    ``float`` is taken as seconds; without it, only a string is a duration.  Booleans,
    negative or non-finite numbers and anything else raise :class:`DurationError`.
    """
    if isinstance(value, str):
        return _parse_text(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not allow_number:
        example = "30s" if allow_number else "30s (with a unit)"
        raise DurationError(
            f"expected a duration like {example}, got {value!r} ({type(value).__name__})"
        )
    seconds = float(value) if isinstance(value, float) or abs(value) < 2**1000 else math.inf
    if not math.isfinite(seconds) or seconds < 0:
        raise DurationError(f"duration must be a finite number of seconds >= 0, got {value!r}")
    return _at_most_max(seconds, value)


def _at_most_max(seconds: float, given: Any) -> float:
    if seconds > MAX_DURATION:
        raise DurationError(
            f"duration must be at most {format_duration(MAX_DURATION)}, got {given!r}"
        )
    return seconds


def _parse_text(text: str) -> float:
    match = _GRAMMAR.fullmatch(text)
    if not text or match is None:
        raise DurationError(
            f"bad duration {text!r}; use whole numbers with units, largest first: "
            "500ms, 30s, 5m, 1h30m, 7d"
        )
    parts = {unit: n for unit, n in match.groupdict().items() if n}
    try:
        if any(len(n) > _MAX_DIGITS for n in parts.values()):
            raise OverflowError
        # whole milliseconds summed as integers: "1h30m" is exactly 5400.0, "100ms" 0.1
        seconds = sum(int(n) * _UNIT_MILLISECONDS[unit] for unit, n in parts.items()) / 1000
    except OverflowError:  # more than a float holds
        seconds = math.inf
    return _at_most_max(seconds, text)


def format_duration(seconds: float) -> str:
    """The shortest text :func:`parse_duration` reads back as ``seconds`` (whole ms).

    Prometheus's own rendering (``model.Duration.String``): years and weeks only when they
    divide the value, so 30 days is ``30d``, not ``4w2d``; ``0`` is ``0s``.  The docs' key
    table prints the config's defaults with it.
    """
    total = round(seconds * 1000)
    if total < 0 or not math.isclose(total, seconds * 1000, abs_tol=1e-6):
        raise ValueError(f"{seconds!r} is not a whole number of milliseconds >= 0")
    if total == 0:
        return "0s"
    parts = []
    for unit, ms in _UNIT_MILLISECONDS.items():
        if unit in ("y", "w") and total % ms:
            continue
        count, total = divmod(total, ms)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
