"""Compatibility: the collectors live in :mod:`exporter.collectors`, one file per area."""

from exporter.collectors import MlopsCollector, ReferenceInfo

__all__ = ["MlopsCollector", "ReferenceInfo"]
