"""The log files and their reading: lines by outcome, bytes, rotations, files followed."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import Metric

from exporter import metrics
from exporter.ingest import IngestSnapshot


class FilesCollector:
    def __init__(self, model: str) -> None:
        self.model = model

    def collect(self, c: IngestSnapshot) -> Iterator[Metric]:
        m = self.model
        lines = metrics.counter("mlops_log_lines")
        lines.add_metric([m], float(c.lines_total))
        invalid = metrics.counter("mlops_log_lines_invalid")
        for reason, value in sorted(c.invalid_total.items()):
            invalid.add_metric([m, reason], float(value))
        other = metrics.counter("mlops_log_lines_other_events")
        other.add_metric([m], float(c.other_events_total))
        yield from (lines, invalid, other)

        for name, value in (
            ("mlops_log_bytes_read", c.bytes_read),
            ("mlops_log_rotations", c.rotations),
            ("mlops_log_truncations", c.truncations),
            ("mlops_log_open_errors", c.open_errors),
        ):
            family = metrics.counter(name)
            family.add_metric([], float(value))
            yield family
        watched = metrics.gauge("mlops_log_files_watched")
        watched.add_metric([], float(c.files_watched))
        over_limit = metrics.gauge("mlops_log_files_over_limit")
        over_limit.add_metric([], float(c.files_over_limit))
        yield from (watched, over_limit)
