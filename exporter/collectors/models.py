"""Which version each model is monitoring, its version changes and registry polls, and the
records routed to no model or to another version."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client.core import Metric

from exporter import metrics
from exporter.collectors.figures import ModelFigures
from exporter.ingest import IngestSnapshot


class ModelsCollector:
    """The ``models`` area; ``info`` is fixed per monitored version, ``collect`` live."""

    def info(self, models: Sequence[ModelFigures]) -> Iterator[Metric]:
        family = metrics.gauge("mlops_model_info")
        for m in models:
            family.add_metric([m.name, m.version, m.stage], 1.0)
        yield family

    def collect(self, models: Sequence[ModelFigures], lines: IngestSnapshot) -> Iterator[Metric]:
        changes = metrics.counter("mlops_model_version_changes")
        polls = metrics.counter("mlops_reference_poll_errors")
        other = metrics.counter("mlops_predictions_other_version")
        for m in models:
            changes.add_metric([m.name], float(m.version_changes))
            for reason, count in (m.poll_errors or {}).items():
                polls.add_metric([m.name, reason], float(count))
            if m.counters is not None:
                for version, count in sorted(m.counters.other_versions.items()):
                    other.add_metric([m.name, version], float(count))
        unrouted = metrics.counter("mlops_log_lines_unrouted")
        unrouted.add_metric([], float(lines.unrouted_total))
        yield from (changes, polls, other, unrouted)
