"""Traffic and latency: what the model server logged, counted as it was read."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client.core import Metric
from prometheus_client.utils import floatToGoString

from exporter import metrics
from exporter.exposition import PrefixedFamily, SeriesPrefixes
from exporter.ingest import IngestSnapshot


class TrafficCollector:
    """One model's traffic; the bucket observations' series text is built once per set of
    bucket labels (fixed for the life of the counters that count them)."""

    def __init__(self, model: str) -> None:
        self.model = model
        self._prefixes: tuple[Mapping[str, tuple[str, ...]], SeriesPrefixes] | None = None

    def _bucket_prefixes(self, labels: Mapping[str, tuple[str, ...]]) -> SeriesPrefixes:
        cached = self._prefixes
        if cached is not None and cached[0] is labels:
            return cached[1]
        spec = metrics.spec("mlops_feature_bucket_observations")
        pairs = [
            (("model", self.model), ("feature", feature), ("bucket", bucket))
            for feature, buckets in labels.items()
            for bucket in buckets
        ]
        prefixes = SeriesPrefixes(spec.exposed_name, pairs)
        self._prefixes = (labels, prefixes)
        return prefixes

    def collect(self, c: IngestSnapshot) -> Iterator[Metric]:
        m = self.model
        spec = metrics.spec("mlops_feature_bucket_observations")
        buckets = PrefixedFamily(spec.name, spec.help, spec.kind, spec.unit)
        values: list[int] = []
        for feature in c.bucket_labels:
            values += c.bucket_observations[feature].tolist()
        buckets.add_chunk(self._bucket_prefixes(c.bucket_labels), values)
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
