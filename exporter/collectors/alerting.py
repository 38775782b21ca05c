"""The exporter's own health: failed drift passes and undelivered in-process alerts."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import Metric

from exporter import metrics


class AlertingCollector:
    def __init__(
        self, model: str, errors: Callable[[], int], alert_failures: Callable[[], int] | None
    ) -> None:
        self.model = model
        self._errors = errors
        self._alert_failures = alert_failures

    def collect(self) -> Iterator[Metric]:
        errors = metrics.counter("mlops_drift_computation_errors")
        errors.add_metric([self.model], float(self._errors()))
        yield errors
        if self._alert_failures is not None:  # served only with an alerts: section
            failures = metrics.counter("mlops_alert_notification_failures")
            failures.add_metric([self.model], float(self._alert_failures()))
            yield failures
