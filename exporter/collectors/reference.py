"""The reference the exporter compares against, and the exporter's build: fixed at start."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import Metric

from exporter import metrics


@dataclass(frozen=True)
class ReferenceInfo:
    """What the collector publishes about the reference profile (fixed at start-up)."""

    hash: str
    samples: int
    bucket_labels: Mapping[str, tuple[str, ...]]  # feature -> bucket labels
    bucket_ratios: Mapping[str, tuple[float, ...]]  # feature -> reference proportions
    missing_ratios: Mapping[str, float] = field(default_factory=dict)  # feature -> share

    @classmethod
    def from_profile(cls, profile: Any, features: Sequence[str]) -> ReferenceInfo:
        return cls(
            hash=str(profile.hash),
            samples=int(profile.n_rows),
            bucket_labels={f: tuple(str(b) for b in profile[f].bucket_labels) for f in features},
            bucket_ratios={
                f: tuple(float(r) for r in profile[f].ref_proportions) for f in features
            },
            missing_ratios={f: _missing_share(profile[f]) for f in features},
        )


class ReferenceCollector:
    def __init__(self, model: str, info: ReferenceInfo) -> None:
        self.model = model
        self.info = info

    def collect(self) -> Iterator[Metric]:
        m, ref = self.model, self.info
        info = metrics.gauge("mlops_reference_info")
        info.add_metric([m, ref.hash], 1.0)
        samples = metrics.gauge("mlops_reference_samples")
        samples.add_metric([m], float(ref.samples))
        ratio = metrics.gauge("mlops_feature_reference_bucket_ratio")
        for feature, labels in ref.bucket_labels.items():
            for bucket, value in zip(labels, ref.bucket_ratios[feature], strict=True):
                ratio.add_metric([m, feature, bucket], value)
        missing = metrics.gauge("mlops_feature_reference_missing_ratio")
        for feature, value in ref.missing_ratios.items():
            missing.add_metric([m, feature], value)
        yield from (info, samples, ratio, missing)


def build_info(version: str) -> Iterator[Metric]:
    """The exporter's own build: one series, whatever the models."""
    build = metrics.gauge("mlops_exporter_build_info")
    build.add_metric([version], 1.0)
    yield build


def _missing_share(feature: Any) -> float:
    rows = int(feature.n) + int(feature.n_missing)
    return float(feature.n_missing) / rows if rows else 0.0
