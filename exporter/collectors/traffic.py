"""Traffic and latency: what the model server logged, counted as it was read."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import Metric
from prometheus_client.utils import floatToGoString

from exporter import metrics
from exporter.ingest import IngestSnapshot


class TrafficCollector:
    def __init__(self, model: str) -> None:
        self.model = model

    def collect(self, c: IngestSnapshot) -> Iterator[Metric]:
        m = self.model
        buckets = metrics.counter("mlops_feature_bucket_observations")
        for feature, labels in c.bucket_labels.items():
            for bucket, value in zip(labels, c.bucket_observations[feature].tolist(), strict=True):
                buckets.add_metric([m, feature, bucket], float(value))
        yield buckets

        hist = metrics.histogram("mlops_prediction_latency_seconds")
        cumulative = c.latency_bucket_counts.tolist()
        pairs = [
            (_le(b), float(v))
            for b, v in zip(c.latency_bucket_bounds, cumulative[:-1], strict=True)
        ]
        pairs.append(("+Inf", float(cumulative[-1])))
        hist.add_metric([m], pairs, float(c.latency_sum))
        yield hist

        predictions = metrics.counter("mlops_predictions")
        predictions.add_metric([m], float(c.predictions_total))
        classes = metrics.counter("mlops_prediction_class")
        for cls, value in sorted(c.class_counts.items()):
            classes.add_metric([m, cls], float(value))
        yield from (predictions, classes)


def _le(bound: Any) -> str:
    return floatToGoString(float(bound))
