"""What the collectors read of one model at one scrape: :class:`ModelFigures`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client.core import Metric

from exporter.collectors.reference import ReferenceInfo
from exporter.exposition import PrefixedFamily
from exporter.ingest import IngestSnapshot
from exporter.outcomes import OutcomeStats
from exporter.pipeline import Snapshot
from exporter.quality import QualitySnapshot


@dataclass(frozen=True)
class ModelFigures:
    """One model's sources for one scrape, each an immutable object.

    ``counters`` is ``None`` for a model the ingest loop does not feed yet (just added by a
    reload, before the next checkpoint).  ``poll_errors`` is ``None`` for a file reference
    (the series are served only with a registry reference).  ``alert_failures`` is
    ``None`` without an ``alerts:`` section.
    """

    name: str
    reference: ReferenceInfo
    version: str  # mlops_model_info's labels
    stage: str
    snapshot: Snapshot
    counters: IngestSnapshot | None
    drift_errors: int = 0
    alert_failures: int | None = None
    version_changes: int = 0
    poll_errors: Mapping[str, int] | None = None
    info_key: object = None  # an object that changes with version and stage (cache key)
    quality: QualitySnapshot | None = None  # with outcomes: the last quality pass
    outcome_stats: OutcomeStats | None = None  # and the outcome store's counters


def merged(per_model: Iterable[Iterable[Metric]]) -> Iterator[Metric]:
    """Families of the same name from several models as one family each, in first-seen
    order: a name may appear only once in an exposition, with every model's samples."""
    out: dict[str, Metric] = {}
    for families in per_model:
        for family in families:
            seen = out.get(family.name)
            if seen is None:
                out[family.name] = family
            elif isinstance(seen, PrefixedFamily) and isinstance(family, PrefixedFamily):
                seen.extend(family)
            else:
                seen.samples.extend(family.samples)
    yield from out.values()
