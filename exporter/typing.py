"""Named types at the seams between the exporter's parts, as structlog's ``typing.py`` names
``EventDict`` and ``Processor``.

What crosses the seams of log -> window -> pass -> snapshot (see :mod:`exporter.app`):

- the reference profile, :class:`mlops_core.profile.ReferenceProfile`: loaded once by
  :func:`exporter.config.load_reference`, read by the window, the counters and the pass;
- :data:`FeatureKinds`: the monitored features with their kinds, which the same function
  resolves and every part takes;
- the window's copy, :class:`exporter.pipeline.WindowData`, and the pass's result,
  :class:`exporter.pipeline.Snapshot`.

For annotations only: it imports no part of the exporter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeAlias

from mlops_core.constants import FeatureKind

__all__ = ["FeatureKind", "FeatureKinds"]

#: monitored feature name -> its kind, in config order (or the reference's column order)
FeatureKinds: TypeAlias = Mapping[str, FeatureKind]
