"""Did-you-mean suggestions that only suggest what is really close.

difflib's default cutoff (0.6) suggested ``mean_radius`` for ``mean_area``: a suggestion
that misleads is worse than none.  A candidate is suggested when it is the same name up to
case, spaces, dashes and underscores (``mean radius`` / ``mean_radius`` / ``MeanRadius``),
or failing that when difflib rates it at least ``CUTOFF`` against the name.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

CUTOFF = 0.8
_SEPARATORS = re.compile(r"[\s_\-.]+")


def normalized(name: str) -> str:
    """``name`` lower-cased without spaces, dashes, dots and underscores."""
    return _SEPARATORS.sub("", name).lower()


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate ``name`` most likely means, or ``None`` when none is close enough."""
    choices = [c for c in candidates if c != name]
    key = normalized(name)
    for candidate in choices:
        if normalized(candidate) == key:
            return candidate
    found = difflib.get_close_matches(name, choices, n=1, cutoff=CUTOFF)
    return found[0] if found else None
