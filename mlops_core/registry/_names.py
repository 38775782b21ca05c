"""Model names and versions: which strings are safe, and the order versions sort in."""

from __future__ import annotations

import os
import re
from typing import Any

from mlops_core.errors import InvalidNameError

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")


def validate_name(value: object, what: str = "model name") -> str:
    """Return ``value`` if it is a safe single path component, else ``InvalidNameError``.

    Names become directory names, so anything that could leave the registry directory
    (``..``, a separator, an absolute path, NUL, an empty string) is refused, as are names
    starting with ``.`` (the registry's own hidden files) and odd characters.
    """
    if not isinstance(value, str):
        raise InvalidNameError(f"{what} must be a string, got {type(value).__name__}")
    if not value:
        raise InvalidNameError(f"{what} is empty")
    if "\x00" in value:
        raise InvalidNameError(f"{what} {value!r} contains a NUL character")
    if "/" in value or "\\" in value or os.path.isabs(value):
        raise InvalidNameError(f"{what} {value!r} contains a path separator")
    if ".." in value:
        raise InvalidNameError(f"{what} {value!r} contains '..'")
    if not NAME_RE.fullmatch(value):
        raise InvalidNameError(
            f"{what} {value!r} is invalid: use at most 128 letters, digits, '.', '_', '+', '-',"
            " starting with a letter or digit"
        )
    return value


_PEP440 = re.compile(
    r"v?(?P<release>\d+(?:\.\d+)*)"
    r"(?:[-_.]?(?P<pre>alpha|beta|preview|pre|rc|a|b|c)[-_.]?(?P<pren>\d*))?"
    r"(?:[-_.]?(?:post|rev|r)[-_.]?(?P<post>\d*))?"
    r"(?:[-_.]?dev[-_.]?(?P<dev>\d*))?"
    r"(?:\+(?P<local>[A-Za-z0-9.]+))?",
    re.IGNORECASE,
)
_PRE_RANK = {"a": 0, "alpha": 0, "b": 1, "beta": 1, "c": 2, "rc": 2, "pre": 2, "preview": 2}


def _natural(text: str) -> list[tuple[int, int | str]]:
    return [(0, int(t)) if t.isdigit() else (1, t.lower()) for t in re.split(r"(\d+)", text) if t]


def version_sort_key(version: str) -> tuple[Any, ...]:
    """Sort key: PEP 440-like order for versions that look like it, natural order otherwise.

    ``1.0.dev1 < 1.0a1 < 1.0rc1 < 1.0 == 1.0.0 < 1.0.post1 < 1.2 < 1.10``; strings that are
    not PEP 440-like (``2024-06-01-nightly``) come after, ordered with numbers compared as
    numbers.
    """
    m = _PEP440.fullmatch(version)
    if m is None:
        return (1, _natural(version))
    release = [int(x) for x in m["release"].split(".")]
    while len(release) > 1 and release[-1] == 0:
        release.pop()
    if m["pre"]:
        pre: tuple[int, int] = (_PRE_RANK[m["pre"].lower()], int(m["pren"] or 0))
    elif m["dev"] is not None and m["post"] is None:
        pre = (-1, 0)  # 1.0.dev1 comes before 1.0a1
    else:
        pre = (3, 0)  # a final release
    post = -1 if m["post"] is None else int(m["post"] or 0)
    dev = (1, 0) if m["dev"] is None else (0, int(m["dev"] or 0))
    return (0, tuple(release), pre, post, dev, _natural(m["local"] or ""))
