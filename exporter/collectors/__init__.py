"""The exporter's collectors, one per area, as node_exporter has one per file.

Each area collector reads one immutable source (the reference, the drift
:class:`~exporter.pipeline.Snapshot`, the ingest counters) and builds fresh families from
the metric catalog (:mod:`exporter.metrics`) on every collect; none computes anything.
:class:`MlopsCollector` puts them together, in the order the exposition shows them, and
yields each area's families with a cache key (:meth:`MlopsCollector.sections`) so that
:class:`~exporter.exposition.MetricsRenderer` re-encodes an area only when its source
object changed.  Label values come only from the config (model, feature names), the
reference profile (bucket labels) and bounded counters (top classes plus ``__other__``, a
fixed set of invalid-line reasons); the quality area's class labels are the outcome store's
first ``prediction.max_classes`` classes plus ``__other__``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from exporter import metrics
from exporter.collectors.alerting import AlertingCollector
from exporter.collectors.drift import DriftCollector
from exporter.collectors.files import FilesCollector
from exporter.collectors.quality import QualityCollector
from exporter.collectors.reference import ReferenceCollector, ReferenceInfo
from exporter.collectors.traffic import TrafficCollector
from exporter.exposition import Section
from exporter.ingest import IngestSnapshot
from exporter.outcomes import OutcomeStats
from exporter.pipeline import Snapshot
from exporter.quality import QualitySnapshot

__all__ = ["MlopsCollector", "ReferenceInfo"]


class MlopsCollector(Collector):
    """Yields every ``mlops_*`` metric of the exporter from the current snapshots."""

    def __init__(
        self,
        model: str,
        reference: ReferenceInfo,
        snapshot: Callable[[], Snapshot],
        counters: Callable[[], IngestSnapshot],
        *,
        errors: Callable[[], int] = lambda: 0,
        alert_failures: Callable[[], int] | None = None,
        version: str = "unknown",
        quality: Callable[[], QualitySnapshot] | None = None,
        outcome_stats: Callable[[], OutcomeStats] | None = None,
    ) -> None:
        self._reference = ReferenceCollector(model, reference, version)
        self._drift = DriftCollector(model)
        self._traffic = TrafficCollector(model)
        self._files = FilesCollector(model)
        self._alerting = AlertingCollector(model, errors, alert_failures)
        self._snapshot = snapshot
        self._counters = counters
        self._quality_collector = QualityCollector(model)
        self._quality = quality  # both None without an outcomes: section
        self._outcome_stats = outcome_stats

    def describe(self) -> list[Metric]:
        """The catalog, so ``restricted_registry`` can find every name (``?name[]=``)."""
        return list(metrics.describe())

    def collect(self) -> Iterator[Metric]:
        for _, build in self.sections():
            yield from build()

    def sections(self) -> list[Section]:
        """The families in parts, each with the object it derives from.

        The reference never changes, the drift part changes when the scheduler swaps in a
        new snapshot, the live parts (counters) on every scrape.
        """
        snap = self._snapshot()
        counters = self._counters()
        sections: list[Section] = [
            (self._reference.info, self._reference.collect),
            (snap, lambda: self._drift.collect(snap)),
            (None, self._alerting.collect),
            (None, lambda: self._traffic.collect(counters)),
            (None, lambda: self._files.collect(counters)),
        ]
        if self._quality is not None and self._outcome_stats is not None:
            # the pass's snapshot and the store's counters: each a new object when it changed
            quality, stats = self._quality(), self._outcome_stats()
            sections += [
                (quality, lambda: self._quality_collector.collect_pass(quality)),
                (stats, lambda: self._quality_collector.collect_counters(stats)),
            ]
        return sections
