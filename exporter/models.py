"""The models an exporter monitors: each one's reference, window, counters and drift pass.

One :class:`ModelState` per configured model, for the life of the process (or until a
reload changes its settings).  It holds what outlives a version:

- the :class:`~exporter.references.ReferenceSource` it judges against (a file, or a
  registry stage that :meth:`ModelState.poll` follows);
- the counts of its drift-pass failures, version changes and poll failures;
- its in-process alerts, when an ``alerts:`` section is configured;

and one :class:`Monitor`, what belongs to the version being monitored: the reference, the
window of that version's predictions, the prediction counters and the last drift snapshot.
A promotion or a rollback (:meth:`ModelState.switch`) puts a new :class:`Monitor` in place:
a fresh window, new counters whose values carry on from the old ones where the buckets
are the same (:meth:`exporter.ingest.IngestCounters.restore`), no snapshot until the next
pass.  Readers take ``state.monitor`` once and use that object, so a scrape or a pass sees
one version's reference with that version's window, never a mix.

The ingest thread feeds ``window`` and ``counters`` (:class:`exporter.ingest.ModelSink`)
under the :class:`~exporter.ingest.Ingestor`'s lock, and :meth:`ModelState.switch` must be
called under that lock too: a batch routed by the old version goes to the old window.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import structlog

from exporter.alerting import ExporterAlerts
from exporter.collectors import ReferenceInfo
from exporter.config import VERSION_FIELD, ExporterConfig, ModelConfig, RegistrySpec
from exporter.errors import ConfigError
from exporter.ingest import IngestCounters
from exporter.landing import FeatureChart
from exporter.pipeline import DriftSettings, Snapshot, capture, compute_snapshot
from exporter.records import RecordParser
from exporter.references import (
    POLL_FAILURES,
    PollFailure,
    PollResult,
    Reference,
    ReferenceSource,
    VersionChange,
)
from exporter.routing import Route, Router
from exporter.typing import FeatureKind
from exporter.window import Window

log = structlog.get_logger("exporter")

UNKNOWN_VERSION = "unknown"
"""``mlops_model_info``'s version for a file reference without ``model.version``."""
NO_STAGE = "none"
"""``mlops_model_info``'s stage for a file reference."""


@dataclass(frozen=True)
class ModelInfo:
    """What ``mlops_model_info`` says of a model; a new object when the version changes."""

    version: str
    stage: str
    source: str  # where its reference comes from, for the landing page


class Monitor:
    """One model version's monitoring: reference, window, counters and the last pass.

    Built whole for each version; only ``snapshot`` is replaced afterwards (one
    assignment: a reader sees the old one or the new one).
    """

    def __init__(self, config: ExporterConfig, reference: Reference, info: ModelInfo) -> None:
        profile = reference.profile
        self.reference = reference
        self.info = info
        self.features = dict(reference.features)
        names = list(self.features)
        self.settings = DriftSettings.from_config(config.drift, config.features)
        self.window = Window(
            profile,
            names,
            max_samples=config.drift.window.max_samples,
            max_age=config.drift.window.max_age,
        )
        self.counters = IngestCounters(
            profile,
            names,
            latency_buckets=config.latency.buckets,
            max_classes=config.prediction.max_classes,
        )
        self.reference_info = ReferenceInfo.from_profile(profile, names)
        self.charts = {n: FeatureChart.from_profile(profile[n]) for n in names}
        self.snapshot = Snapshot.empty(len(names))


class ModelState:
    """One monitored model: its reference source, the current :class:`Monitor`, its counts."""

    def __init__(
        self,
        config: ExporterConfig,
        source: ReferenceSource,
        *,
        alerts: ExporterAlerts | None = None,
    ) -> None:
        self.config = config  # as this model sees it (ExporterConfig.for_model)
        self.spec: ModelConfig = config.model_list()[0]
        self.source = source
        self.alerts = alerts
        self.monitor = Monitor(config, source.current, self._info(source.current))
        self.drift_errors = 0
        self.version_changes = 0
        self.poll_errors: dict[str, int] | None = (
            dict.fromkeys(POLL_FAILURES, 0) if source.poll_interval is not None else None
        )
        self._lock = threading.Lock()  # one poll or switch at a time

    # --- what the ingest loop feeds (exporter.ingest.ModelSink) ------------------------------

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def window(self) -> Window:
        return self.monitor.window

    @property
    def counters(self) -> IngestCounters:
        return self.monitor.counters

    @property
    def monitored_version(self) -> str | None:
        """The version whose predictions the window takes; ``None``: every version.

        A registry reference's version; a file's ``version`` setting when given.
        """
        ref = self.monitor.reference
        return ref.version if ref.version is not None else self.spec.version

    @property
    def features(self) -> dict[str, FeatureKind]:
        return self.monitor.features

    # --- the reference ----------------------------------------------------------------------

    def _info(self, reference: Reference) -> ModelInfo:
        version = reference.version or self.spec.version or UNKNOWN_VERSION
        return ModelInfo(version, reference.stage or NO_STAGE, self.source.describe())

    def poll(self) -> PollResult:
        """Ask the source for a new version; count a failure.  Never raises.

        A :class:`VersionChange` is returned for the caller to :meth:`switch` under the
        ingest lock; the source already holds the new reference.
        """
        result = self.source.poll()
        if isinstance(result, PollFailure) and self.poll_errors is not None:
            self.poll_errors[result.reason] = self.poll_errors.get(result.reason, 0) + 1
        return result

    def switch(self, change: VersionChange | Reference) -> Monitor:
        """Monitor another reference from now on (a new version, or a reloaded file).

        A fresh window; counters carried over where they still fit (the buckets of a
        feature whose reference buckets changed start again at 0); no snapshot until the
        next pass.  Call under the ingest lock.  Returns the old monitor.
        """
        reference = change.reference if isinstance(change, VersionChange) else change
        with self._lock:
            old = self.monitor
            new = Monitor(self.config, reference, self._info(reference))
            new.counters.restore(old.counters.state(), lines=False, log=False)
            self.monitor = new
            if isinstance(change, VersionChange):
                self.version_changes += 1
            return old

    def carry_from(self, previous: ModelState) -> None:
        """Carry a replaced model's counters on (a reload that changed its settings).

        The counts that only grow keep growing: prediction counters where they fit, drift
        errors, version changes, poll failures.  Call before the state is fed.
        """
        self.monitor.counters.restore(previous.counters.state(), lines=False, log=False)
        self.drift_errors += previous.drift_errors
        self.version_changes += previous.version_changes
        if self.poll_errors is not None and previous.poll_errors is not None:
            for reason, count in previous.poll_errors.items():
                self.poll_errors[reason] = self.poll_errors.get(reason, 0) + count

    def adopt(self, config: ExporterConfig) -> None:
        """Take a reloaded config that :meth:`same_settings` found changes nothing here: the
        window and counters stay, and what is read per pass (the entry's ``quality``, its
        place in the list) is the new one's."""
        self.config = config
        self.spec = config.model_list()[0]

    # --- the drift pass ---------------------------------------------------------------------

    def drift_pass(self) -> Snapshot | None:
        """Judge the window against the reference; the new snapshot, or ``None`` on failure.

        A failure is logged and counted; the last good snapshot stays.  A version switch
        during the pass leaves the result on the old monitor, which nobody reads any more.
        """
        monitor = self.monitor
        try:
            data = capture(monitor.window, monitor.features)  # under the window's own lock
            snap = compute_snapshot(
                data, monitor.reference.profile, monitor.features, monitor.settings
            )
        except Exception as exc:
            self.drift_errors += 1
            log.error("drift_computation_failed", model=self.name, error=str(exc), exc_info=True)
            return None
        monitor.snapshot = snap  # the atomic swap
        return snap

    def same_settings(self, other: ExporterConfig) -> bool:
        """Whether ``other`` (a reloaded config, as this model sees it) changes nothing here."""
        mine, theirs = self.config, other
        # where the entry sits in the list (its error lines' prefix) is not a setting here,
        # nor its quality (the quality pass reads it afresh each time, see adopt) nor its
        # outcomes' bounds (the reload sets them on its store)
        ours, new = (
            dataclasses.replace(
                c.model_list()[0],
                at="",
                quality_reference=None,
                quality_max_drop=None,
                outcomes=None,
            )
            for c in (mine, theirs)
        )
        return (
            ours == new
            and mine.drift == theirs.drift
            and mine.latency == theirs.latency
            and mine.prediction == theirs.prediction
            and mine.alerts == theirs.alerts
        )


# --- what every model shares: the router and the parser ---------------------------------------


def router_for(models: Sequence[ModelState]) -> Router:
    """The routing table of ``models``, in their order (first match wins)."""
    return Router([Route(m.name, dict(m.spec.match)) for m in models])


def parse_features(models: Sequence[ModelState]) -> dict[str, FeatureKind]:
    """Every model's features, the kind the first model that has one gives it.

    The records are decoded once for all models, so one field has one type; a feature two
    models hold as different kinds is refused by :func:`check_feature_kinds`.
    """
    out: dict[str, FeatureKind] = {}
    for model in models:
        for name, kind in model.features.items():
            out.setdefault(name, kind)
    return out


def check_feature_kinds(models: Sequence[ModelState]) -> None:
    """``ConfigError`` naming both models when a feature is numeric in one, categorical in
    another (the records are decoded once, with one type per field)."""
    seen: dict[str, tuple[str, ModelState]] = {}
    for model in models:
        for name, kind in model.features.items():
            if name in seen and seen[name][0] != kind:
                other = seen[name][1]
                raise ConfigError(
                    f"{model.spec.at}features.{name}: {kind} in model {model.name!r} but"
                    f" {seen[name][0]} in model {other.name!r}: one record field has one type"
                    " for every model (rename one of them in the logs)"
                )
            seen.setdefault(name, (kind, model))


def parser_for(models: Sequence[ModelState], config: ExporterConfig) -> RecordParser:
    """The parser that reads every model's features, routing fields and, when a model
    judges a known version, ``model_version``."""
    router = router_for(models)
    gating = any(m.monitored_version is not None for m in models)
    return RecordParser(
        parse_features(models),
        latency_field=config.latency.field,
        class_field=config.prediction.class_field,
        max_line_bytes=config.logs.max_line_bytes,
        route_fields=router.fields,
        version_field=VERSION_FIELD if gating else None,
    )


@dataclass(frozen=True)
class ModelsView:
    """The models as a scrape or a page sees them: the states, in order, swapped whole."""

    states: tuple[ModelState, ...] = ()
    by_name: Mapping[str, ModelState] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def of(cls, states: Sequence[ModelState]) -> ModelsView:
        return cls(tuple(states), MappingProxyType({s.name: s for s in states}))


def is_registry(model: ModelState) -> bool:
    return isinstance(model.spec.reference, RegistrySpec)
