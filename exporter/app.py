"""Wiring: the ingest thread, the scheduled drift pass, the collector and the HTTP server.

Threads and what they own:

- ``ingest``: the only user of the log follower; loops ``Ingestor.run_once()`` and sleeps
  ``logs.poll_interval`` when there was nothing new.  With ``logs.state_file`` it saves the
  checkpoint (offsets and every counter, one atomic record) at start, then every
  ``logs.checkpoint_interval`` or 64 MiB read, the start-up catch-up included; /metrics
  serves the counters as last saved (see :mod:`exporter.ingest`).
- APScheduler's worker: every ``drift.interval`` copies the window under the window's own lock
  (:func:`exporter.pipeline.capture`), computes a new Snapshot outside it and swaps it in
  with one assignment (atomic in CPython), so a scrape sees the old or the new snapshot,
  never half of one.  ``max_instances=1`` and ``coalesce=True``: a slow pass is never run
  twice at once and missed runs collapse into one.
- With an ``outcomes:`` section, the ingest thread also applies each poll's prediction and
  outcome rows to each model's outcome store in one transaction per store, before the
  checkpoint that covers them (:mod:`exporter.model_outcomes`), and a scheduler job of its
  own (``quality``, same interval) sweeps each store, reads it and swaps in that model's new
  :class:`~exporter.quality.QualitySnapshot`; the stores' lock keeps a pass and closing
  them apart.
- APScheduler's worker also runs one ``poll:<model>`` job per model that follows a registry
  stage (every ``reference.poll_interval``): a new version's reference is loaded outside any
  lock, then the model's monitor is switched under the ingest lock
  (:meth:`exporter.models.ModelState.switch`).
- HTTP threads: only read the snapshots, ``IngestCounters.snapshot()`` and the outcome
  store's counters as last read (an immutable object, replaced after every write).

Several models share the follower, the parser and the line counters; each has its own
reference, window, counters and drift snapshot (:mod:`exporter.models`), and every batch is
routed to them once (:class:`exporter.routing.Router`).

SIGTERM/SIGINT set an event; the main thread then stops the scheduler and the ingest
thread, writes the checkpoint and returns exit status 0.  SIGKILL loses nothing either: the
next start resumes offsets and counters from the last record, and counts what came after it
exactly once.  SIGHUP, and ``POST /-/reload`` with ``--web.enable-lifecycle``, reload the
config and the references (:meth:`Exporter.reload`): models whose settings did not change
keep their window and counters; a config that cannot be used is refused with one log line
and the running one stays.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC
from typing import Any

import structlog
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from prometheus_client import CollectorRegistry

from exporter import __version__
from exporter.alerting import ExporterAlerts
from exporter.checkpoint import Checkpoint, hold_state_file, load_checkpoint
from exporter.collectors import ExporterCollector, ModelFigures
from exporter.config import ExporterConfig, PathSpec, load_config
from exporter.config_summary import config_summary
from exporter.diagnostics import Diagnostics
from exporter.errors import ConfigError
from exporter.exposition import MetricsRenderer
from exporter.ingest import IngestCounters, Ingestor, IngestSnapshot, restore_counters
from exporter.landing import LandingPage, LandingRenderer, LiveFigures, ModelPage
from exporter.linesource import IdentifyingFollower
from exporter.model_outcomes import (
    ModelOutcomes,
    open_stores,
    quality_settings,
    store_path,
)
from exporter.models import (
    ModelState,
    ModelsView,
    Monitor,
    check_feature_kinds,
    is_registry,
    parse_features,
    parser_for,
    router_for,
)
from exporter.outcome_feed import OutcomeFeed
from exporter.outcomes import OutcomeStore
from exporter.pipeline import Snapshot
from exporter.quality import QualitySettings, QualitySnapshot
from exporter.references import (
    FileReference,
    Reference,
    ReferenceSource,
    VersionChange,
    log_poll_result,
    open_reference,
)
from exporter.routing import Router
from exporter.runtime import RuntimeMetrics
from exporter.server import ExporterServer, Listener, ServerApp, ServerOptions, bind
from exporter.tail import LogFollower
from exporter.typing import FeatureKind, FeatureKinds
from exporter.webconfig import WebConfig, load_web_config
from mlops_core.drift import reference_floor, reference_rows_for
from mlops_core.errors import MlopsError
from mlops_core.profile import ReferenceProfile

log = structlog.get_logger("exporter")

#: Upper bound on the start-up catch-up before /-/ready says yes anyway.
FIRST_PASS_BUDGET = 30.0


class Exporter:
    """One running exporter; ``start()`` then ``wait()``/``stop()``, or ``run()``.

    ``profile`` and ``features`` give the one model's reference directly (a file reference
    already loaded); without them, every model's reference is opened from the config
    (:func:`open_references`), or taken from ``sources``.
    """

    def __init__(
        self,
        config: ExporterConfig,
        profile: ReferenceProfile | None = None,
        features: FeatureKinds | None = None,
        *,
        sources: Sequence[ReferenceSource] | None = None,
        web_config: WebConfig | None = None,
        listen_address: str = ":9874",
        version: str = "unknown",
        web: ServerOptions | None = None,
        exporter_metrics: bool = True,
        enable_lifecycle: bool = False,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        self._env = dict(os.environ if env is None else env)  # what a reload reads again
        if sources is None:
            if profile is not None:
                assert features is not None
                first = config.model_list()[0]
                ref = Reference(profile, dict(features), source=config.reference_path)
                sources = [FileReference(first.name, ref)]
            else:
                sources = open_references(config)
        self._stop = threading.Event()
        self._wake = threading.Event()  # the main loop: a stop or a reload request
        self._reload_requested = False
        self._reload_lock = threading.Lock()
        self._ready = threading.Event()
        self._stopped = False
        self._failed = False
        self._exporter_version = version
        # Built first: a bad alerts: section is a config error before anything starts.
        states = [
            ModelState(
                config.for_model(model),
                source,
                alerts=_alerts_for(config.for_model(model), source),
            )
            for model, source in zip(config.model_list(), sources, strict=True)
        ]
        check_feature_kinds(states)
        router = router_for(states)

        # Listen before any log file is opened: the listener's descriptors come first.
        listener = bind(listen_address)
        self._state_lock: int | None = None  # flock on <logs.state_file>.lock (hold_state_file)
        self._stores: list[OutcomeStore] = []  # opened by _assemble (closed if it fails)
        try:
            self._assemble(
                states, router, listener, web or ServerOptions(), web_config, version,
                exporter_metrics=exporter_metrics, enable_lifecycle=enable_lifecycle,
            )  # fmt: skip
        except BaseException:  # closed now, not by the collector at interpreter exit
            listener.close()
            for store in self._stores:  # and their locks released: a retry may open them
                store.close()
            self._release_state_file()
            raise

    def _assemble(
        self,
        states: list[ModelState],
        router: Router,
        listener: Listener,
        web: ServerOptions,
        web_config: WebConfig | None,
        version: str,
        *,
        exporter_metrics: bool,
        enable_lifecycle: bool,
    ) -> None:
        """Everything that opens files, after the listener: the store, the follower, the
        ingestor, the collector and the server."""
        config = self.config
        logs = config.logs
        # First: a second exporter on this state file (or store) stops here, touching nothing.
        self._state_lock = hold_state_file(logs.state_file) if logs.state_file else None
        # Opened before any log file: a store that cannot be used is a one-line error at once.
        stores = open_stores(config, states) if config.outcomes is not None else []
        self._stores = stores
        saved = self._open_logs(states)
        self._models = ModelsView.of(states)
        self.diagnostics = Diagnostics(
            parse_features(states),
            patterns=self.follower.patterns,
            features_configured=all(m.features is not None for m in config.model_list()),
        )
        self.outcomes: ModelOutcomes | None = self._join_outcomes(states, stores)
        self.diagnostics.skipped_at_start(
            self.follower.skipped_at_start, self.follower.files_skipped_at_start, logs.state_file
        )
        if saved is not None:
            _log_resumed(logs.state_file, len(saved.files), logs.start_position)
        self.ingestor = Ingestor(
            self.follower,
            self.parser,
            None,
            self.counters,
            state_file=logs.state_file,
            checkpoint_interval=logs.checkpoint_interval,
            diagnostics=self.diagnostics,
            router=router,
            models=states,
            outcomes=self.outcomes,
        )
        self._rate: tuple[float, int] | None = None  # (monotonic time, lines) at the last pass
        self._lines_per_second: float | None = None
        self._unrouted_seen = 0
        self._unrouted_logged = -float("inf")
        self._serve(listener, web, web_config, version, exporter_metrics, enable_lifecycle)
        self.scheduler = BackgroundScheduler(timezone="UTC")
        self._ingest_thread = threading.Thread(target=self._ingest_loop, name="ingest")
        self._ingest_thread.daemon = True

    def _open_logs(self, states: list[ModelState]) -> Checkpoint | None:
        """The follower (prediction and outcome files, one checkpoint), the parser and the
        line counters, resumed from the checkpoint; returns the checkpoint read, if any."""
        config = self.config
        logs = config.logs
        outcomes = config.outcomes
        patterns = list(logs.paths)
        if outcomes is not None:  # one follower, one checkpoint for both kinds of file
            patterns += [p for p in outcomes.paths if p not in patterns]
        # Offsets and counters come from the same record: one cannot resume without the other.
        saved = load_checkpoint(logs.state_file) if logs.state_file else None
        follower_type = LogFollower if outcomes is None else IdentifyingFollower
        self.follower = follower_type(
            patterns,
            start_position=logs.start_position,
            resume=saved,
            max_line_bytes=logs.max_line_bytes,
            max_files=logs.max_files,
        )
        self.parser = parser_for(states, config)
        self.counters = self._line_counters(states)  # lines, invalid, other events, unrouted
        restored = False
        if saved is not None and saved.counters is not None:
            try:
                per_model = {m.name: m.counters for m in states}
                restore_counters(saved.counters, self.counters, per_model)
                restored = True
            except ValueError as exc:  # offsets resume, counters start again at 0
                log.warning(
                    "checkpoint_counters_unusable", state_file=logs.state_file, error=str(exc)
                )
                self.counters = self._line_counters(states)
                for state in states:
                    state.monitor = Monitor(state.config, state.source.current, state.monitor.info)
        if not restored:
            self.counters.align_follower(self.follower.stats)
        return saved

    def _join_outcomes(
        self, states: list[ModelState], stores: list[OutcomeStore]
    ) -> ModelOutcomes | None:
        """With outcomes: each model's store, the rows the ingest loop gives it, its quality
        pass; a model's reference metrics and calibrator are its monitored version's."""
        config = self.config
        if config.outcomes is None:
            return None
        assert isinstance(self.follower, IdentifyingFollower)
        joined = ModelOutcomes(
            # the current parser's verdicts: a new version may decode other features
            config, states, stores, self.follower,
            lambda lines: self.ingestor.parser.parse(lines), self.counters,
            lambda: self.ingestor.router, diagnostics=self.diagnostics,
        )  # fmt: skip
        resumed = self.follower.resumed_offsets
        for state, store in zip(states, stores, strict=True):
            if store.created and resumed:  # the checkpoint read lines this store never saw
                log.warning(
                    "outcome_store_created_anew",
                    model=state.name,
                    store=str(store.path),
                    state_file=config.logs.state_file,
                    hint="the checkpoint resumes past lines read before, but the outcome "
                    "store is new: if outcomes: was just added, the predictions read before "
                    "are not in it; if the store was deleted or moved, its pending "
                    "predictions and counters are gone and counting starts again from 0 "
                    "(restore the file, or delete the state file too to read the logs again)",
                )
        if config.logs.state_file is None:
            log.warning(
                "outcomes_without_state_file",
                store=str(store_path(config, states[0].name)),
                hint="without logs.state_file a restart reads the logs again from "
                "logs.start_position: with 'beginning', every line is applied again and "
                "counted as a duplicate; set logs.state_file for exact counts",
            )
        return joined

    def _serve(
        self,
        listener: Listener,
        web: ServerOptions,
        web_config: WebConfig | None,
        version: str,
        exporter_metrics: bool,
        enable_lifecycle: bool,
    ) -> None:
        """The collector, the encoder of its families, the landing page and the server."""
        self.collector = ExporterCollector(
            self._scrape,
            version=version,
            lines_model=lambda: self.config.model_name if len(self._models.states) == 1 else "",
        )
        # process_* and python_* (--web.disable-exporter-metrics leaves them out)
        runtime = RuntimeMetrics() if exporter_metrics else None
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.collector)
        if runtime is not None:
            self.registry.register(runtime)
        renderer = self.renderer = MetricsRenderer(
            lambda: [*self.collector.sections(), *([runtime.section()] if runtime else [])]
        )
        self._telemetry_path = web.telemetry_path
        self.landing = LandingRenderer(
            self._landing_page(),
            snapshot=lambda: self.snapshot,
            live=self._live_figures,
            models=self._model_pages,
            quality=None if self.outcomes is None else self._quality_pages,
        )
        self.server = ExporterServer(
            listener,
            ServerApp(
                registry=self.registry,
                render=renderer.render,
                web_config=web_config or WebConfig(),
                page=self.landing.render,
                ready=self._ready.is_set,
                warnings=self._warnings,
                reload=self.reload if enable_lifecycle else None,
            ),
            web,
        )

    # --- the parts --------------------------------------------------------------------------

    @property
    def models(self) -> tuple[ModelState, ...]:
        """The models, in the configured order (replaced whole by a reload)."""
        return self._models.states

    def model(self, name: str) -> ModelState:
        return self._models.by_name[name]

    @property
    def snapshot(self) -> Snapshot:
        """The first model's last drift snapshot (the one model's, as before)."""
        return self._models.states[0].monitor.snapshot

    @property
    def profile(self) -> ReferenceProfile:
        return self._models.states[0].monitor.reference.profile

    @property
    def features(self) -> dict[str, FeatureKind]:
        return self._models.states[0].features

    @property
    def feed(self) -> OutcomeFeed | None:
        """The first model's outcome feed (the one model's), with outcomes."""
        return None if self.outcomes is None else self.outcomes.parts[0].feed

    @property
    def store(self) -> OutcomeStore | None:
        """The first model's outcome store (the one model's), with outcomes."""
        return None if self.outcomes is None else self.outcomes.parts[0].store

    @property
    def quality(self) -> QualitySnapshot:
        """The first model's last quality pass (the one model's)."""
        return self.quality_of(self._models.states[0].name)

    def quality_of(self, model: str) -> QualitySnapshot:
        if self.outcomes is None:
            return QualitySnapshot.empty(self.quality_settings)
        return self.outcomes.by_name[model].snapshot

    @property
    def quality_settings(self) -> QualitySettings:
        """The first model's quality settings (:func:`exporter.model_outcomes.quality_settings`)."""
        return quality_settings(self.config, self._models.states[0])

    def _quality_pages(self) -> list[tuple[str, QualitySnapshot]]:
        parts = () if self.outcomes is None else self.outcomes.parts
        return [(p.name, p.snapshot) for p in parts]

    def _predictions_read(self) -> int:
        """Every prediction record read: each model's, of any version, and the unrouted."""
        total = self.counters.snapshot().unrouted_total
        return total + sum(_predictions_of(m) for m in self._models.states)

    def _line_counters(self, states: Sequence[ModelState]) -> IngestCounters:
        return IngestCounters(
            states[0].monitor.reference.profile,
            [],  # the line figures only: each model counts its own predictions
            latency_buckets=self.config.latency.buckets,
            max_classes=self.config.prediction.max_classes,
        )

    def _scrape(self) -> tuple[list[ModelFigures], IngestSnapshot]:
        """One scrape's figures: every model's, and the line counters of the same poll."""
        served = self.ingestor.served()
        return self._figures(served.models), served.lines

    def _figures(self, counted: Mapping[str, IngestSnapshot]) -> list[ModelFigures]:
        out = []
        for m in self._models.states:
            mon = m.monitor  # one read: this version's reference, info and snapshot
            alerts = m.alerts
            out.append(
                ModelFigures(
                    m.name,
                    mon.reference_info,
                    mon.info.version,
                    mon.info.stage,
                    mon.snapshot,
                    counted.get(m.name),
                    drift_errors=m.drift_errors,
                    alert_failures=None if alerts is None else alerts.notify_failures,
                    version_changes=m.version_changes,
                    poll_errors=None if m.poll_errors is None else dict(m.poll_errors),
                    info_key=mon.info,
                    **self._quality_figures(m),
                )
            )
        return out

    def _quality_figures(self, model: ModelState) -> dict[str, Any]:
        """The model's last quality pass and its store's counters, with outcomes."""
        part = None if self.outcomes is None else self.outcomes.by_name.get(model.name)
        if part is None:
            return {}
        return {"quality": part.snapshot, "outcome_stats": part.feed.stats}

    def _model_pages(self) -> list[ModelPage]:
        out = []
        for m in self._models.states:
            mon = m.monitor
            counters = self.ingestor.model_snapshot(m.name)
            out.append(
                ModelPage(
                    name=m.name,
                    version=mon.info.version,
                    stage=mon.info.stage,
                    source=mon.info.source,
                    snapshot=mon.snapshot,
                    charts=mon.charts,
                    predictions=None if counters is None else counters.predictions_total,
                    other_versions={} if counters is None else dict(counters.other_versions),
                    reference_hash=str(mon.reference.profile.hash)[:12],
                    reference_rows=int(mon.reference.profile.n_rows),
                )
            )
        return out

    def _landing_page(self) -> LandingPage:
        c = self.config
        names = [m.name for m in c.model_list()]
        return LandingPage(
            ", ".join(names),
            self._exporter_version,
            config_summary(self.config, self._models.states),
            self._telemetry_path,
            refresh_seconds=c.drift.interval,
        )

    def _live_figures(self) -> LiveFigures:
        served = self.ingestor.served()
        c = served.lines
        predictions = 0
        for m in self._models.states:
            counted = served.models.get(m.name)
            predictions += 0 if counted is None else counted.predictions_total
        return LiveFigures(
            lines_total=c.lines_total,
            predictions_total=predictions,
            lines_per_second=self._lines_per_second,
            invalid_by_reason=dict(c.invalid_total),
            files_watched=c.files_watched,
            warnings=self._warnings(),
            unrouted_total=c.unrouted_total,
        )

    def _warnings(self) -> tuple[str, ...]:
        """The diagnostics' warnings, and predictions that no model took."""
        out = self.diagnostics.warnings()
        if self.outcomes is not None:
            out += tuple(self.outcomes.problems())
        unrouted = self.ingestor.snapshot().unrouted_total
        if unrouted and len(self._models.states) > 1:
            fields = ", ".join(self.ingestor.router.fields if self.ingestor.router else ())
            out += (
                f"{unrouted} records matched no model's match ({fields}): counted in "
                "mlops_log_lines_unrouted_total, judged by no model",
            )
        return out

    def _diagnose(self) -> None:
        """Per pass: the no-silent-failure checks and the header's lines per second."""
        c = self.ingestor.snapshot()
        self.diagnostics.files_watched(c.files_watched)
        self.diagnostics.early_fields()
        self.diagnostics.timestamps()
        self.diagnostics.predictions_read(
            lines=c.lines_total,
            # the line counters count lines; predictions are each model's, of any version
            predictions=sum(_predictions_of(m) for m in self._models.states) + c.unrouted_total,
            invalid=c.invalid_total,
            other_events=c.other_events_total,
        )
        self.diagnostics.summarise()
        now = time.monotonic()
        if self._rate is not None and now > self._rate[0]:
            self._lines_per_second = (c.lines_total - self._rate[1]) / (now - self._rate[0])
        self._rate = (now, c.lines_total)
        self._diagnose_models()
        if c.unrouted_total > self._unrouted_seen and now - self._unrouted_logged >= 60.0:
            router = self.ingestor.router
            log.warning(
                "predictions_unrouted",
                predictions=c.unrouted_total - self._unrouted_seen,
                total=c.unrouted_total,
                match_fields=list(router.fields) if router else [],
                hint="no model's match: selected these records; they are counted in "
                "mlops_log_lines_unrouted_total and judged by no model",
            )
            self._unrouted_seen, self._unrouted_logged = c.unrouted_total, now

    def _diagnose_models(self) -> None:
        """Per pass and model: predictions read that none of its judgements can use (all
        already older than drift.window.max_age when read, or all of versions it does not
        monitor)."""
        states = self._models.states
        self.diagnostics.forget_models(m.name for m in states)
        for m in states:
            window = m.window
            self.diagnostics.window(
                m.name,
                too_old=window.too_old,
                samples=window.samples(),
                newest=window.newest_too_old,
                max_age=window.max_age,
            )
            self.diagnostics.reference_size(m.name, reference_floors(m))
            predictions, other_versions = m.counters.version_totals()
            self.diagnostics.versions(
                m.name,
                monitored=m.monitored_version,
                predictions=predictions,
                other_versions=other_versions,
                registry=is_registry(m),
            )

    def drift_pass(self) -> None:
        """One scheduled pass over every model; a failure is logged and counted, the old
        snapshot stays."""
        try:
            self._diagnose()
        except Exception as exc:  # the checks must never stop a pass
            log.error("diagnostics_failed", error=str(exc), exc_info=True)
        for model in self._models.states:
            previous = model.monitor.snapshot
            snap = model.drift_pass()
            if snap is None:
                continue
            log.debug(
                "drift_computed",
                model=model.name,
                window_samples=snap.window_samples,
                features_drifted=snap.features_drifted,
                duration_seconds=round(snap.duration_seconds, 4),
            )
            _log_verdict_changes(previous, snap, model.name)
        self._warm()

    def _warm(self) -> None:
        """Encode the new snapshots' metrics here, on the scheduler's thread, not in the
        next scrape (20 models of 50 features: 10,000 series, ~25 ms); and the landing
        page's histograms, while someone is watching it."""
        try:
            self.renderer.warm()
        except Exception as exc:  # the scrape encodes them itself then
            log.error("metrics_encoding_failed", error=str(exc), exc_info=True)
        try:
            self.landing.warm()
        except Exception as exc:  # the next view draws them itself then
            log.error("landing_page_rendering_failed", error=str(exc), exc_info=True)

    def quality_pass(self) -> None:
        """Each model's quality pass (:meth:`exporter.model_outcomes.ModelOutcomes.
        quality_pass`), then the "no outcome matched" check on all the stores' counters."""
        outcomes = self.outcomes
        if outcomes is None or not outcomes.quality_pass(self._models.by_name, self.config):
            return
        spec = self.config.outcomes
        assert spec is not None
        grace = max(
            (m.config.outcomes.early_grace for m in self._models.states if m.config.outcomes),
            default=spec.early_grace,
        )
        try:
            wait = max(grace, self.config.drift.interval)
            if len(outcomes.parts) == 1:
                self.diagnostics.outcomes(
                    outcomes.parts[0].feed.stats,
                    predictions_read=self._predictions_read(),
                    wait=wait,
                    patterns=spec.paths,
                )
            else:  # each model on its own store: one's joins must not hide another's misses
                for part in outcomes.parts:
                    model = self._models.by_name.get(part.name)
                    self.diagnostics.outcomes(
                        part.feed.stats,
                        predictions_read=0 if model is None else _predictions_of(model),
                        wait=wait,
                        patterns=spec.paths,
                        model=part.name,
                    )
        except Exception as exc:  # the checks must never stop a pass
            log.error("diagnostics_failed", error=str(exc), exc_info=True)

    def alert_pass(self) -> None:
        """In-process alerting on each model's latest snapshot; its own job, so a slow
        receiver never delays the drift pass."""
        for model in self._models.states:
            if model.alerts is not None:
                model.alerts.evaluate(model.monitor.snapshot)

    def poll_model(self, name: str) -> None:
        """One poll of a model's registry stage; a new version is switched to at once."""
        model = self._models.by_name.get(name)
        if model is None:  # removed by a reload meanwhile
            return
        result = model.poll()
        log_poll_result(result, log)
        if isinstance(result, VersionChange):
            self._switch(model, result)
            self._warm()  # the new reference's series

    def _switch(self, model: ModelState, change: VersionChange | Reference) -> None:
        """``model`` monitors the new reference from the next batch on."""
        with self.ingestor.lock:
            model.switch(change)
            states = self._models.states
            features = parse_features(states)
            gating = self.parser.version_field is not None
            if features != self.parser.features or gating != any(
                m.monitored_version is not None for m in states
            ):
                try:  # the new version monitors other features: decode them from now on
                    check_feature_kinds(states)
                except ConfigError as exc:  # decoded as the first model has it
                    log.error("feature_kind_conflict", model=model.name, error=str(exc))
                self.parser = parser_for(states, self.config)
                self.ingestor.set_models(states, parser=self.parser)

    def _ingest_once(self) -> int:
        processed = int(self.ingestor.run_once())
        self.ingestor.maybe_checkpoint()
        return processed

    def _ingest_loop(self) -> None:
        poll = self.config.logs.poll_interval
        try:
            # Saved before anything is read: with start_position "end", a crash before the
            # first timed checkpoint must not move "the end" past lines written meanwhile.
            self._checkpoint()
            deadline = time.monotonic() + FIRST_PASS_BUDGET
            while not self._stop.is_set() and self._ingest_once() > 0:
                if time.monotonic() > deadline:
                    break
            self.drift_pass()
            self.quality_pass()
            self._ready.set()
            log.info(
                "ready",
                window_samples={m.name: m.monitor.snapshot.window_samples for m in self.models},
            )
            while not self._stop.is_set():
                if self._ingest_once() == 0:
                    self._stop.wait(poll)
        except Exception as exc:  # a bug in ingest must not kill the process silently
            log.error("ingest_failed", error=str(exc), exc_info=True)
            self._failed = True
            self._stop.set()
            self._wake.set()

    def _checkpoint(self) -> None:
        try:
            self.ingestor.checkpoint()
        except Exception as exc:
            log.warning("checkpoint_failed", state_file=self.config.logs.state_file, error=str(exc))

    # --- reload -------------------------------------------------------------------------------

    def request_reload(self) -> None:
        """Ask the main loop of :meth:`run` to reload (safe from a signal handler)."""
        self._reload_requested = True
        self._wake.set()

    def reload(self) -> str | None:
        """Read the config file and the references again; ``None`` when applied, else why not.

        A model whose settings (its entry, ``drift``, ``latency``, ``prediction``,
        ``alerts``) and reference are unchanged keeps its window, counters and snapshot (a
        change of the entry's ``quality`` alone too: the quality pass reads it afresh); a
        file reference is read again and a registry stage polled.  A changed model gets a
        new window, its counters carrying on where they fit; a new model starts at zero; a
        removed one is dropped with its series.  Anything that cannot be used (a bad key, an
        unreadable reference, a change to ``logs``) refuses the whole reload with one log
        line (``reload_failed``), and the running config stays.
        """
        with self._reload_lock:
            try:
                new = load_config(self.config.source, self._env)
                if new.logs != self.config.logs:
                    raise ConfigError(
                        "logs: a change needs a restart (the files followed and the checkpoint"
                        " belong to the running process); nothing reloaded"
                    )
                if self.outcomes is not None:
                    self.outcomes.check_reload(new)
                elif new.outcomes is not None:
                    raise ConfigError(
                        "outcomes: adding the section needs a restart (the outcome stores and"
                        " the outcome follower are opened at start); nothing reloaded"
                    )
                plan = self._plan(new)
            except MlopsError as exc:
                log.error("reload_failed", config_file=self.config.source, error=str(exc))
                return str(exc)
            except MemoryError:  # a reference or window too big for what is left
                error = "out of memory while reading the new config and references"
                log.error("reload_failed", config_file=self.config.source, error=error)
                return error
            except Exception as exc:  # a bug: the running config must survive it
                log.error("reload_failed", config_file=self.config.source, error=str(exc),
                          exc_info=True)  # fmt: skip
                return f"{type(exc).__name__}: {exc}"
            self._apply(new, plan)
            return None

    def _plan(self, new: ExporterConfig) -> _ReloadPlan:
        """The models of ``new``: each one kept, or built with its reference opened."""
        old = self._models.by_name
        states: list[ModelState] = []
        replaced: list[tuple[ModelState, ModelState]] = []  # (new state, the one it replaces)
        kept: list[str] = []
        adopted: list[tuple[ModelState, ExporterConfig]] = []  # kept, with the new config
        for spec in new.model_list():
            view = new.for_model(spec)
            prev = old.get(spec.name)
            if prev is not None and prev.same_settings(view):
                if isinstance(spec.reference, PathSpec):  # the file may have changed
                    source = open_reference(
                        spec.name, spec.reference, view, key=f"{spec.at}reference"
                    )
                    same = source.current.profile.hash == prev.monitor.reference.profile.hash
                    if not same or dict(source.current.features) != prev.features:
                        state = ModelState(view, source, alerts=prev.alerts)
                        states.append(state)
                        replaced.append((state, prev))
                        continue
                states.append(prev)
                kept.append(prev.name)
                adopted.append((prev, view))
                continue
            source = open_reference(spec.name, spec.reference, view, key=f"{spec.at}reference")
            state = ModelState(view, source, alerts=_alerts_for(view, source))
            states.append(state)
            if prev is not None:
                replaced.append((state, prev))
        check_feature_kinds(states)
        router = router_for(states)
        parser = parser_for(states, new)
        removed = [name for name in old if name not in {s.name for s in states}]
        return _ReloadPlan(states, replaced, kept, removed, router, parser, adopted)

    def _apply(self, new: ExporterConfig, plan: _ReloadPlan) -> None:
        with self.ingestor.lock:  # between two batches: nothing counted twice or lost
            for state, prev in plan.replaced:
                state.carry_from(prev)
            for state, view in plan.adopted:
                state.adopt(view)
            self.ingestor.set_models(plan.states, router=plan.router, parser=plan.parser)
            self.parser = plan.parser
            self._models = ModelsView.of(plan.states)
            self.config = new
            if self.outcomes is not None:
                self.outcomes.apply_limits(plan.states)
        self.landing.page = self._landing_page()
        self._warm()
        if self.scheduler.running:
            self._schedule_jobs()
        replaced = {s.name for s, _ in plan.replaced}
        log.info(
            "config_reloaded",
            config_file=new.source,
            models=[s.name for s in plan.states],
            kept=plan.kept,
            changed=sorted(replaced),
            added=[s.name for s in plan.states if s.name not in {*plan.kept, *replaced}],
            removed=plan.removed,
        )
        for name in plan.kept:  # a kept registry model: the reload reads its stage now
            if self._models.by_name[name].poll_errors is not None:
                self.poll_model(name)

    # --- life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Serve HTTP, then start ingesting and scheduling."""
        self.server.start()
        self.start_background()

    def _schedule_jobs(self) -> None:
        """The drift pass, the alert pass and one poll per registry model, (re)scheduled."""
        interval = self.config.drift.interval
        jobs: dict[str, tuple[Any, float, tuple[Any, ...]]] = {
            "drift": (self.drift_pass, interval, ())
        }
        if self.outcomes is not None:  # its own job: a slow store never delays the drift pass
            jobs["quality"] = (self.quality_pass, interval, ())
        if any(m.alerts is not None for m in self.models):
            jobs["alerts"] = (self.alert_pass, interval, ())
        for m in self.models:
            if m.source.poll_interval is not None:
                jobs[f"poll:{m.name}"] = (self.poll_model, m.source.poll_interval, (m.name,))
        for job in self.scheduler.get_jobs():
            if job.id not in jobs:
                job.remove()
        for job_id, (func, seconds, args) in jobs.items():
            existing = self.scheduler.get_job(job_id)
            if existing is not None and existing.trigger.interval.total_seconds() == seconds:
                continue  # unchanged: its next run stays where it was
            self.scheduler.add_job(
                func,
                # A trigger object, not "interval": that name is looked up through package
                # metadata, which needs free descriptors the log files may all have taken.
                IntervalTrigger(seconds=seconds, timezone=UTC),
                args=args,
                id=job_id,
                replace_existing=True,
                max_instances=1,  # a slow pass never runs twice at once
                coalesce=True,  # missed runs collapse into one
                misfire_grace_time=None,
            )

    def start_background(self) -> None:
        """Start the ingest thread and the scheduler (the server may already be serving)."""
        self._ingest_thread.start()
        self._schedule_jobs()
        self.scheduler.start()
        log.info(
            "started",
            model=self.config.model_name,
            models=[m.name for m in self.models],
            port=self.server.port,
            tls=self.server.tls,
            features=len(self.features),
            reference_hash=str(self.profile.hash)[:12],
            versions={m.name: m.monitor.info.version for m in self.models},
        )

    def stop(self) -> None:
        """Stop scheduling and ingest, write the checkpoint, close the server; idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._stop.set()
        self._wake.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self._ingest_thread.is_alive():
            self._ingest_thread.join(timeout=5)
        self._checkpoint()  # under the Ingestor's lock: consistent even if the join timed out
        try:
            self.follower.close()
        except Exception as exc:
            log.warning("close_failed", error=str(exc))
        if self.outcomes is not None:  # after a running quality pass
            self.outcomes.close()
        self.server.shutdown()
        self._release_state_file()  # after the last checkpoint
        log.info("stopped")

    def _release_state_file(self) -> None:
        fd, self._state_lock = self._state_lock, None
        if fd is not None:
            os.close(fd)

    def run(self) -> int:
        """Start, wait for SIGTERM/SIGINT (or a fatal ingest error), stop; the exit status.

        SIGHUP reloads the config (:meth:`reload`), on this thread.
        """
        received: list[int] = []

        def on_signal(signum: int, _frame: Any) -> None:
            # Only set flags here: logging from a signal handler can deadlock on the log
            # writer's lock if the main thread was interrupted while holding it.
            received.append(signum)
            self._stop.set()
            self._wake.set()

        def on_hangup(_signum: int, _frame: Any) -> None:
            self.request_reload()  # flags only, as above

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, on_hangup)
        try:
            self.start()
            while not self._stop.is_set():
                self._wake.wait(0.5)
                self._wake.clear()
                if self._reload_requested and not self._stop.is_set():
                    self._reload_requested = False
                    log.info("signal_received", signal="SIGHUP")
                    self.reload()
            if received:
                log.info("signal_received", signal=signal.Signals(received[0]).name)
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 1 if self._failed else 0


class _ReloadPlan:
    """What a reload puts in place, built before anything is changed."""

    def __init__(
        self,
        states: list[ModelState],
        replaced: list[tuple[ModelState, ModelState]],
        kept: list[str],
        removed: list[str],
        router: Any,
        parser: Any,
        adopted: list[tuple[ModelState, ExporterConfig]],
    ) -> None:
        self.states, self.replaced, self.kept, self.removed = states, replaced, kept, removed
        self.router, self.parser = router, parser
        self.adopted = adopted  # kept models and the config each takes (ModelState.adopt)


def open_references(config: ExporterConfig) -> list[ReferenceSource]:
    """Every model's reference source with its first reference loaded, in config order;
    the first that cannot be opened is a :class:`ConfigError` naming the model."""
    return [
        open_reference(m.name, m.reference, config.for_model(m), key=f"{m.at}reference")
        for m in config.model_list()
    ]


def _alerts_for(config: ExporterConfig, source: ReferenceSource) -> ExporterAlerts | None:
    """The model's in-process alerts (``alerts:`` applies to every model), or ``None``."""
    if not config.alerts:
        return None
    own = config.model_list()[0].alerts is not None  # models[i].alerts: its key names it
    try:
        return ExporterAlerts.from_config(
            config.alerts,
            model=config.model_name,
            features=source.current.features,
            at=f"{config.at}alerts" if own else "alerts",
        )
    except ConfigError as exc:
        if own or (len(config.model_list()) == 1 and not config.at):
            raise
        raise ConfigError(f"{exc} (model {config.model_name!r})") from None


def _log_resumed(state_file: str | None, files: int, start_position: str) -> None:
    """A start that continues from a checkpoint says so: ``logs.start_position`` does not
    apply then, which is not obvious to whoever just changed it to ``beginning``."""
    log.info(
        "resumed_from_checkpoint",
        state_file=state_file,
        files=files,
        hint=f"logs.start_position ({start_position}) applies only to a start without a "
        f"checkpoint; to read the logs again from their start, stop the exporter, delete "
        f"{state_file} and start it with logs.start_position: beginning",
    )


def _log_verdict_changes(before: Snapshot, after: Snapshot, model: str | None = None) -> None:
    """A feature that starts or stops drifting is news: say so at info level, once."""
    was, now = set(before.drifted_names), set(after.drifted_names)
    results = {f.name: f for f in after.features}
    for name in sorted(now - was):
        f = results[name]
        log.info(
            "drift_detected",
            model=model,
            feature=name,
            distance=None if f.distance is None else round(f.distance, 4),
            lower_bound=None if f.lower_bound is None else round(f.lower_bound, 4),
            tolerance=f.tolerance,
            missing_ratio=round(f.missing_ratio, 4),
            by=",".join(t for t, flag in f.detected.items() if flag),
        )
    for name in sorted(was - now):
        log.info("drift_cleared", model=model, feature=name, judged=name in results)


def build_exporter(
    config_file: str | os.PathLike[str],
    listen_address: str,
    web_config_file: str | None,
    env: Mapping[str, str],
    version: str = __version__,
    *,
    web: ServerOptions | None = None,
    exporter_metrics: bool = True,
    enable_lifecycle: bool = False,
) -> Exporter:
    """Load everything that can be wrong, then bind the port; the exporter is not started.

    Used by the command line and by the demo (which writes its own config first), so neither
    imports the other.  The config and the web config are read before the references, the
    slow part, so a typo is reported without waiting for them.
    """
    config = load_config(config_file, env)
    web_config = load_web_config(web_config_file)
    web_config.ssl_context()  # a bad cert or key fails here, as one line
    sources = open_references(config)
    return Exporter(
        config,
        sources=sources,
        web_config=web_config,
        listen_address=listen_address,
        version=version,
        web=web,
        exporter_metrics=exporter_metrics,
        enable_lifecycle=enable_lifecycle,
        env=env,
    )


def _predictions_of(model: ModelState) -> int:
    """The prediction records a model read, of any version."""
    predictions, other_versions = model.counters.version_totals()
    return predictions + sum(other_versions.values())


def reference_floors(model: ModelState) -> list[tuple[str, float, float, int, int]]:
    """Each monitored feature's ``(name, floor, tolerance, reference rows, rows for a floor
    of twice the tolerance)``: the smallest distance its verdict can flag however large the
    window (:func:`mlops_core.drift.reference_floor`)."""
    profile = model.monitor.reference.profile
    settings = model.monitor.settings
    level = settings.level(len(model.features))
    out = []
    for name, kind in model.features.items():
        feature = profile.features.get(name)
        if feature is None:
            continue
        tolerance = settings.tolerance_of(name, kind)
        floor = reference_floor(feature, tolerance, level)
        need = reference_rows_for(feature, tolerance, level) if tolerance > 0 else 0
        out.append((name, floor, tolerance, feature.n, need))
    return out
