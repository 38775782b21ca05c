"""The exporter's collectors, one per area, as node_exporter has one per file.

Each area collector reads one immutable source (the reference, the drift
:class:`~exporter.pipeline.Snapshot`, the ingest counters) and builds fresh families from
the metric catalog (:mod:`exporter.metrics`) on every collect; none computes anything.
:class:`ExporterCollector` puts them together, in the order the exposition shows them, and
yields each area's families with a cache key (:meth:`ExporterCollector.sections`) so that
:class:`~exporter.exposition.MetricsRenderer` re-encodes an area only when its source
objects changed.  With several models, each family holds every model's samples (a name
appears once in an exposition): the area collectors run per model and their families are
merged (:func:`~exporter.collectors.figures.merged`).  Label values come only from the
config (model, feature names), the reference profile (bucket labels) and bounded counters
(top classes and versions plus ``__other__``, a fixed set of invalid-line and poll-failure
reasons); the quality area's class labels are the outcome store's first
``prediction.max_classes`` classes plus ``__other__``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from exporter import metrics
from exporter.collectors.alerting import AlertingCollector
from exporter.collectors.drift import DriftCollector
from exporter.collectors.figures import ModelFigures, merged
from exporter.collectors.files import FilesCollector
from exporter.collectors.models import ModelsCollector
from exporter.collectors.quality import QualityCollector
from exporter.collectors.reference import ReferenceCollector, ReferenceInfo, build_info
from exporter.collectors.traffic import TrafficCollector
from exporter.exposition import Section
from exporter.ingest import IngestSnapshot
from exporter.outcomes import OutcomeStats
from exporter.pipeline import Snapshot
from exporter.quality import QualitySnapshot

__all__ = ["ExporterCollector", "MlopsCollector", "ModelFigures", "ReferenceInfo"]


class ExporterCollector(Collector):
    """Yields every ``mlops_*`` metric of the exporter: each model's, then the files'.

    ``scrape`` gives, once per scrape, each model's :class:`ModelFigures` and the line
    counters (which belong to the exporter, not to one model), copied together so that a
    scrape never sees a line counted before its prediction; ``lines_model`` is the
    ``model`` label of the line counters that carry one: the model's name when there is
    one model, empty with several (a line that is not a prediction belongs to none).
    """

    def __init__(
        self,
        scrape: Callable[[], tuple[Sequence[ModelFigures], IngestSnapshot]],
        *,
        version: str = "unknown",
        lines_model: Callable[[], str] = lambda: "",
    ) -> None:
        self._scrape = scrape
        self._version = version
        self._lines_model = lines_model
        self._models_area = ModelsCollector()
        self._traffic_collectors: dict[str, TrafficCollector] = {}

    def describe(self) -> list[Metric]:
        """The catalog, so ``restricted_registry`` can find every name (``?name[]=``)."""
        return list(metrics.describe())

    def collect(self) -> Iterator[Metric]:
        for _, build in self.sections():
            yield from build()

    def sections(self) -> list[Section]:
        """The families in parts, each with the objects it derives from.

        The reference part changes when a model's version (or reference) does, the drift
        part when the scheduler swaps in a new snapshot, the live parts (counters) on every
        scrape.  A key is a tuple of those objects: the part is re-encoded when any differs.
        """
        models, lines = self._scrape()
        figs = tuple(models)
        if len(self._traffic_collectors) > len(figs):  # models removed by a reload
            names = {f.name for f in figs}
            self._traffic_collectors = {
                n: c for n, c in self._traffic_collectors.items() if n in names
            }
        reference_key = tuple(x for f in figs for x in (f.reference, f.info_key))
        snapshots = tuple(f.snapshot for f in figs)
        sections: list[Section] = [
            (reference_key, lambda: self._reference(figs)),
            (snapshots, lambda: merged(DriftCollector(f.name).collect(f.snapshot) for f in figs)),
            (None, lambda: merged(_alerting(f) for f in figs)),
            (None, lambda: self._models_area.collect(figs, lines)),
            (None, lambda: merged(self._traffic(f) for f in figs)),
            (None, lambda: FilesCollector(self._lines_model()).collect(lines)),
        ]
        judged = tuple(f for f in figs if f.quality is not None and f.outcome_stats is not None)
        if judged:  # with outcomes: the pass's snapshot and the store's counters
            passes = tuple(f.quality for f in judged)
            stats = tuple(f.outcome_stats for f in judged)
            sections += [
                (passes, lambda: merged(_quality_pass(f) for f in judged)),
                (stats, lambda: merged(_quality_counters(f) for f in judged)),
            ]
        return sections

    def _traffic(self, f: ModelFigures) -> Iterator[Metric]:
        if f.counters is None:
            return iter(())
        collector = self._traffic_collectors.get(f.name)
        if collector is None:  # one per model: it keeps the text of the model's series
            collector = self._traffic_collectors[f.name] = TrafficCollector(f.name)
        return collector.collect(f.counters)

    def _reference(self, figs: Sequence[ModelFigures]) -> Iterator[Metric]:
        yield from merged(ReferenceCollector(f.name, f.reference).collect() for f in figs)
        yield from self._models_area.info(figs)
        yield from build_info(self._version)


def _alerting(f: ModelFigures) -> Iterator[Metric]:
    failures = f.alert_failures
    return AlertingCollector(
        f.name, lambda: f.drift_errors, None if failures is None else (lambda: failures)
    ).collect()


def _quality_pass(f: ModelFigures) -> Iterator[Metric]:
    assert f.quality is not None
    return QualityCollector(f.name).collect_pass(f.quality)


def _quality_counters(f: ModelFigures) -> Iterator[Metric]:
    assert f.outcome_stats is not None
    return QualityCollector(f.name).collect_counters(f.outcome_stats)


class MlopsCollector(ExporterCollector):
    """One model whose counters take every line too (no routing): the exporter before it
    served several models, and what the library's users and the tests build."""

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
        def figures() -> tuple[ModelFigures, ...]:
            return (
                ModelFigures(
                    model,
                    reference,
                    "unknown",
                    "none",
                    snapshot(),
                    counters(),
                    drift_errors=errors(),
                    alert_failures=None if alert_failures is None else alert_failures(),
                    quality=None if quality is None else quality(),
                    outcome_stats=None if outcome_stats is None else outcome_stats(),
                ),
            )

        super().__init__(
            lambda: (figures(), counters()), version=version, lines_model=lambda: model
        )
