"""Did-you-mean suggestions that only suggest what is really close.

difflib's default cutoff (0.6) suggested ``mean_radius`` for ``mean_area``: a suggestion
that misleads is worse than none.  A candidate is suggested when it is the same name up to
case, spaces, dashes and underscores (``mean radius`` / ``mean_radius`` / ``MeanRadius``),
or one typing slip away (one letter left out, added, changed, or two neighbours swapped:
``lgos`` for ``logs``, which difflib rates only 0.75), or failing that when difflib rates it
at least ``CUTOFF`` against the name.  A slip counts only in names of ``MIN_SLIP_LENGTH``
letters or more: in shorter ones one letter is too much of the name.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

CUTOFF = 0.8
MIN_SLIP_LENGTH = 4
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
    if len(name) >= MIN_SLIP_LENGTH:
        for candidate in choices:
            if _one_slip(name, candidate):
                return candidate
    found = difflib.get_close_matches(name, choices, n=1, cutoff=CUTOFF)
    return found[0] if found else None


def _one_slip(a: str, b: str) -> bool:
    """``a`` and ``b`` differ by one insertion, deletion, substitution or adjacent swap."""
    if abs(len(a) - len(b)) > 1 or a == b:
        return False
    start = 0
    while start < min(len(a), len(b)) and a[start] == b[start]:
        start += 1
    a, b = a[start:], b[start:]
    if len(a) == len(b):  # a substitution, or two neighbours swapped
        return a[1:] == b[1:] or (len(a) >= 2 and a[0] == b[1] and a[1] == b[0] and a[2:] == b[2:])
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return short == long_[1:]
