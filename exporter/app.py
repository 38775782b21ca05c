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
  outcome rows to the outcome store in one transaction, before the checkpoint that covers
  them (:mod:`exporter.outcome_feed`), and a scheduler job of its own (``quality``, same
  interval and settings) sweeps the store, reads it and swaps in a new
  :class:`~exporter.quality.QualitySnapshot`; ``_quality_lock`` keeps a pass and closing the
  store apart.
- HTTP threads: only read the snapshots, ``IngestCounters.snapshot()`` and the outcome
  store's counters as last read (an immutable object, replaced after every write).

SIGTERM/SIGINT set an event; the main thread then stops the scheduler and the ingest
thread, writes the checkpoint and returns exit status 0.  SIGKILL loses nothing either: the
next start resumes offsets and counters from the last record, and counts what came after it
exactly once.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Mapping
from datetime import UTC
from pathlib import Path
from typing import Any

import structlog
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from prometheus_client import CollectorRegistry

from exporter import __version__
from exporter.alerting import ExporterAlerts
from exporter.checkpoint import load_checkpoint
from exporter.collector import MlopsCollector, ReferenceInfo
from exporter.config import ExporterConfig, load_config, load_reference
from exporter.diagnostics import Diagnostics
from exporter.exposition import MetricsRenderer
from exporter.ingest import IngestCounters, Ingestor
from exporter.landing import FeatureChart, LandingPage, LandingRenderer, LiveFigures
from exporter.linesource import IdentifyingFollower
from exporter.outcome_feed import OutcomeFeed
from exporter.outcomes import OutcomeStore
from exporter.pipeline import DriftSettings, Snapshot, capture, compute_snapshot
from exporter.quality import ConfidenceWindow, QualitySettings, QualitySnapshot, compute_quality
from exporter.records import KeyedParser, RecordParser
from exporter.runtime import RuntimeMetrics
from exporter.server import ExporterServer, ServerApp, ServerOptions, bind
from exporter.tail import LogFollower
from exporter.typing import FeatureKinds
from exporter.webconfig import WebConfig, load_web_config
from exporter.window import Window
from mlops_core.profile import ReferenceProfile
from mlops_core.quality import ConfidenceCalibrator

log = structlog.get_logger("exporter")

#: Upper bound on the start-up catch-up before /-/ready says yes anyway.
FIRST_PASS_BUDGET = 30.0


class Exporter:
    """One running exporter; ``start()`` then ``wait()``/``stop()``, or ``run()``."""

    def __init__(
        self,
        config: ExporterConfig,
        profile: ReferenceProfile,
        features: FeatureKinds,
        *,
        web_config: WebConfig | None = None,
        listen_address: str = ":9874",
        version: str = "unknown",
        web: ServerOptions | None = None,
        exporter_metrics: bool = True,
    ) -> None:
        self.config = config
        self.profile = profile
        self.features = dict(features)
        self.settings = DriftSettings.from_config(config.drift, config.features)
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._snapshot = Snapshot.empty(len(self.features))
        self._errors = 0
        self._stopped = False
        self._failed = False
        # Built first: a bad alerts: section is a config error before anything starts.
        self.alerts = (
            ExporterAlerts.from_config(config.alerts, model=config.model_name, features=features)
            if config.alerts
            else None
        )

        # Listen before any log file is opened: the listener's descriptors come first.
        listener = bind(listen_address)
        web = web or ServerOptions()

        logs = config.logs
        outcomes = config.outcomes
        # Opened before any log file: a store that cannot be used is a one-line error at once.
        self.store = open_store(config) if outcomes is not None else None
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
        self.parser = RecordParser(
            self.features,
            latency_field=config.latency.field,
            class_field=config.prediction.class_field,
            max_line_bytes=logs.max_line_bytes,
        )
        self.window = Window(
            profile,
            list(self.features),
            max_samples=config.drift.window.max_samples,
            max_age=config.drift.window.max_age,
        )
        self.counters = IngestCounters(
            profile,
            list(self.features),
            latency_buckets=config.latency.buckets,
            max_classes=config.prediction.max_classes,
        )
        restored = False
        if saved is not None and saved.counters is not None:
            try:
                self.counters.restore(saved.counters)
                restored = True
            except ValueError as exc:  # offsets resume, counters start again at 0
                log.warning(
                    "checkpoint_counters_unusable", state_file=logs.state_file, error=str(exc)
                )
        if not restored:
            self.counters.align_follower(self.follower.stats)
        self.diagnostics = Diagnostics(
            self.features,
            patterns=patterns,
            features_configured=config.features is not None,
        )
        # With outcomes: the rows the ingest loop gives the store, and the quality pass.
        self.feed: OutcomeFeed | None = None
        self.confidence: ConfidenceWindow | None = None
        self.quality_settings = QualitySettings.from_config(config)
        self._quality = QualitySnapshot.empty(self.quality_settings)
        self._quality_lock = threading.Lock()  # a pass and closing the store, never both
        calibrator = getattr(profile, "calibrator", None)  # a profile may carry one
        self._calibrator = calibrator if isinstance(calibrator, ConfidenceCalibrator) else None
        if self.store is not None:
            assert isinstance(self.follower, IdentifyingFollower)
            self.confidence = ConfidenceWindow(
                config.drift.window.max_samples, config.drift.window.max_age
            )
            keyed = KeyedParser(
                class_field=config.prediction.class_field, max_line_bytes=logs.max_line_bytes
            )
            self.feed = OutcomeFeed(
                self.store, keyed, self.parser.parse, self.follower, self.confidence
            )
            if logs.state_file is None:
                log.warning(
                    "outcomes_without_state_file",
                    store=str(self.store.path),
                    hint="without logs.state_file a restart reads the logs again from "
                    "logs.start_position: with 'beginning', every line is applied again and "
                    "counted as a duplicate; set logs.state_file for exact counts",
                )
        self.diagnostics.skipped_at_start(
            self.follower.skipped_at_start, self.follower.files_skipped_at_start
        )
        self.ingestor = Ingestor(
            self.follower,
            self.parser,
            self.window,
            self.counters,
            state_file=logs.state_file,
            checkpoint_interval=logs.checkpoint_interval,
            diagnostics=self.diagnostics,
            outcomes=self.feed,
        )
        self._rate: tuple[float, int] | None = None  # (monotonic time, lines) at the last pass
        self._lines_per_second: float | None = None

        alerts = self.alerts  # a local, so the lambda below sees it is not None
        feed = self.feed
        self.collector = MlopsCollector(
            config.model_name,
            ReferenceInfo.from_profile(profile, list(self.features)),
            snapshot=lambda: self._snapshot,
            counters=self.ingestor.snapshot,
            errors=lambda: self._errors,
            alert_failures=None if alerts is None else (lambda: alerts.notify_failures),
            version=version,
            quality=None if feed is None else (lambda: self._quality),
            outcome_stats=None if feed is None else (lambda: feed.stats),
        )
        # process_* and python_* (--web.disable-exporter-metrics leaves them out)
        runtime = RuntimeMetrics() if exporter_metrics else None
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.collector)
        if runtime is not None:
            self.registry.register(runtime)
        renderer = MetricsRenderer(
            lambda: [*self.collector.sections(), *([runtime.section()] if runtime else [])]
        )
        landing = LandingRenderer(
            LandingPage(
                config.model_name,
                version,
                self._summary(profile),
                web.telemetry_path,
                refresh_seconds=config.drift.interval,
                charts={n: FeatureChart.from_profile(profile[n]) for n in self.features},
            ),
            snapshot=lambda: self._snapshot,
            live=self._live_figures,
            quality=None if feed is None else (lambda: self._quality),
        )
        self.server = ExporterServer(
            listener,
            ServerApp(
                registry=self.registry,
                render=renderer.render,
                web_config=web_config or WebConfig(),
                page=landing.render,
                ready=self._ready.is_set,
                warnings=self.diagnostics.warnings,
            ),
            web,
        )
        self.scheduler = BackgroundScheduler(timezone="UTC")
        self._ingest_thread = threading.Thread(target=self._ingest_loop, name="ingest")
        self._ingest_thread.daemon = True

    # --- the parts --------------------------------------------------------------------------

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    @property
    def quality(self) -> QualitySnapshot:
        return self._quality

    def _summary(self, profile: ReferenceProfile) -> list[tuple[str, str]]:
        c = self.config
        rows = [
            ("config file", c.source),
            ("logs.paths", ", ".join(c.logs.paths)),
            ("logs.start_position", c.logs.start_position),
            ("logs.state_file", c.logs.state_file or "(none)"),
            ("reference.path", c.reference_path),
            ("reference rows / hash", f"{profile.n_rows} / {str(profile.hash)[:12]}"),
            ("features", ", ".join(f"{n} ({k})" for n, k in self.features.items())),
            ("drift.interval", f"{c.drift.interval:g}s"),
            ("drift.window", f"{c.drift.window.max_samples} samples, {c.drift.window.max_age:g}s"),
            ("drift.min_samples", str(c.drift.min_samples)),
            ("drift.tolerance", f"numeric {c.drift.tolerance.numeric:g}, categorical "
             f"{c.drift.tolerance.categorical:g}"),
            ("drift.false_alarm_budget", f"{c.drift.false_alarm_budget:g}s (level "
             f"{self.settings.level(len(self.features)):.3g} per feature and pass)"),
            ("drift.tests (reported)", ", ".join(c.drift.tests)),
        ]  # fmt: skip
        if c.outcomes is not None:
            q = c.quality
            reference = ", ".join(f"{k} {v:g}" for k, v in q.reference.items()) or "(none)"
            level = self.quality_settings.level()
            rows += [
                ("outcomes.paths", ", ".join(c.outcomes.paths)),
                ("outcomes.store", str(c.outcomes.store)),
                ("outcomes.max_delay / early_grace", f"{c.outcomes.max_delay:g}s / "
                 f"{c.outcomes.early_grace:g}s"),
                ("outcomes.max_pending", str(c.outcomes.max_pending)),
                ("quality.window", f"{q.window.max_samples} joined predictions"
                 + ("" if q.window.max_age is None else f", {q.window.max_age:g}s")),
                ("quality.min_samples", str(q.min_samples)),
                ("quality.reference", reference),
                ("quality.max_drop", f"{q.max_drop:g}"),
                ("quality.false_alarm_budget", f"{q.false_alarm_budget:g}s"
                 + ("" if level is None else f" (level {level:.3g} per judged metric and pass)")),
                ("estimated accuracy", "calibrated by the reference profile's calibrator"
                 if self._calibrator is not None else "raw confidence (the profile has no "
                 "calibrator)"),
            ]  # fmt: skip
        return rows

    def _live_figures(self) -> LiveFigures:
        c = self.ingestor.snapshot()
        return LiveFigures(
            lines_total=c.lines_total,
            predictions_total=c.predictions_total,
            lines_per_second=self._lines_per_second,
            invalid_by_reason=dict(c.invalid_total),
            files_watched=c.files_watched,
            warnings=self.diagnostics.warnings(),
        )

    def _diagnose(self) -> None:
        """Per pass: the no-silent-failure checks and the header's lines per second."""
        c = self.ingestor.snapshot()
        self.diagnostics.files_watched(c.files_watched)
        self.diagnostics.summarise()
        now = time.monotonic()
        if self._rate is not None and now > self._rate[0]:
            self._lines_per_second = (c.lines_total - self._rate[1]) / (now - self._rate[0])
        self._rate = (now, c.lines_total)

    def drift_pass(self) -> None:
        """One scheduled pass; a failure is logged and counted, the old snapshot stays."""
        try:
            self._diagnose()
        except Exception as exc:  # the checks must never stop a pass
            log.error("diagnostics_failed", error=str(exc), exc_info=True)
        try:
            data = capture(self.window, self.features)  # under the window's own lock
            snap = compute_snapshot(data, self.profile, self.features, self.settings)
        except Exception as exc:
            self._errors += 1
            log.error("drift_computation_failed", error=str(exc), exc_info=True)
            return
        previous, self._snapshot = self._snapshot, snap  # the atomic swap
        log.debug(
            "drift_computed",
            window_samples=snap.window_samples,
            features_drifted=snap.features_drifted,
            duration_seconds=round(snap.duration_seconds, 4),
        )
        _log_verdict_changes(previous, snap)

    def quality_pass(self) -> None:
        """Sweep the outcome store, read it, compute a new QualitySnapshot and swap it in.

        A failure is logged and the old snapshot stays; the store's counters are served
        from the store either way.
        """
        feed, store = self.feed, self.store
        if feed is None or store is None:
            return
        with self._quality_lock:
            if self._stopped:
                return
            try:
                store.sweep()
                stats = feed.refresh()
                window = store.quality_window()
                confidence = None if self.confidence is None else self.confidence.values()
                snap = compute_quality(
                    window,
                    stats,
                    self.quality_settings,
                    confidence=confidence,
                    calibrator=self._calibrator,
                )
            except Exception as exc:
                log.error("quality_computation_failed", error=str(exc), exc_info=True)
                return
            previous, self._quality = self._quality, snap  # the atomic swap
        log.debug(
            "quality_computed",
            window_samples=snap.window_samples,
            degraded=list(snap.degraded_names),
            duration_seconds=round(snap.duration_seconds, 4),
        )
        _log_quality_changes(previous, snap)
        outcomes = self.config.outcomes
        assert outcomes is not None
        try:
            self.diagnostics.outcomes(
                stats,
                predictions_read=self.counters.snapshot().predictions_total,
                wait=max(outcomes.early_grace, self.config.drift.interval),
                patterns=outcomes.paths,
            )
        except Exception as exc:  # the checks must never stop a pass
            log.error("diagnostics_failed", error=str(exc), exc_info=True)

    def alert_pass(self) -> None:
        """In-process alerting on the latest snapshot; its own job, so a slow receiver never
        delays the drift pass."""
        if self.alerts is not None:
            self.alerts.evaluate(self._snapshot)

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
            log.info("ready", window_samples=self._snapshot.window_samples)
            while not self._stop.is_set():
                if self._ingest_once() == 0:
                    self._stop.wait(poll)
        except Exception as exc:  # a bug in ingest must not kill the process silently
            log.error("ingest_failed", error=str(exc), exc_info=True)
            self._failed = True
            self._stop.set()

    def _checkpoint(self) -> None:
        try:
            self.ingestor.checkpoint()
        except Exception as exc:
            log.warning("checkpoint_failed", state_file=self.config.logs.state_file, error=str(exc))

    # --- life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Serve HTTP, then start ingesting and scheduling."""
        self.server.start()
        self.start_background()

    def start_background(self) -> None:
        """Start the ingest thread and the scheduler (the server may already be serving)."""
        self._ingest_thread.start()
        jobs = {"drift": self.drift_pass}
        if self.feed is not None:  # its own job: a slow store never delays the drift pass
            jobs["quality"] = self.quality_pass
        if self.alerts is not None:
            jobs["alerts"] = self.alert_pass
        for job_id, job in jobs.items():
            self.scheduler.add_job(
                job,
                # A trigger object, not "interval": that name is looked up through package
                # metadata, which needs free descriptors the log files may all have taken.
                IntervalTrigger(seconds=self.config.drift.interval, timezone=UTC),
                id=job_id,
                max_instances=1,  # a slow pass never runs twice at once
                coalesce=True,  # missed runs collapse into one
                misfire_grace_time=None,
            )
        self.scheduler.start()
        log.info(
            "started",
            model=self.config.model_name,
            port=self.server.port,
            tls=self.server.tls,
            features=len(self.features),
            reference_hash=str(self.profile.hash)[:12],
        )

    def stop(self) -> None:
        """Stop scheduling and ingest, write the checkpoint, close the server; idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._stop.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self._ingest_thread.is_alive():
            self._ingest_thread.join(timeout=5)
        self._checkpoint()  # under the Ingestor's lock: consistent even if the join timed out
        try:
            self.follower.close()
        except Exception as exc:
            log.warning("close_failed", error=str(exc))
        if self.store is not None:
            # after a running quality pass: its connection is closed with the store
            locked = self._quality_lock.acquire(timeout=5)
            try:
                self.store.close()
            except Exception as exc:
                log.warning("close_failed", store=str(self.store.path), error=str(exc))
            finally:
                if locked:
                    self._quality_lock.release()
        self.server.shutdown()
        log.info("stopped")

    def run(self) -> int:
        """Start, wait for SIGTERM/SIGINT (or a fatal ingest error), stop; the exit status."""
        received: list[int] = []

        def on_signal(signum: int, _frame: Any) -> None:
            # Only set flags here: logging from a signal handler can deadlock on the log
            # writer's lock if the main thread was interrupted while holding it.
            received.append(signum)
            self._stop.set()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            while not self._stop.wait(0.5):
                pass
            if received:
                log.info("signal_received", signal=signal.Signals(received[0]).name)
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 1 if self._failed else 0


def _log_verdict_changes(before: Snapshot, after: Snapshot) -> None:
    """A feature that starts or stops drifting is news: say so at info level, once."""
    was, now = set(before.drifted_names), set(after.drifted_names)
    results = {f.name: f for f in after.features}
    for name in sorted(now - was):
        f = results[name]
        log.info(
            "drift_detected",
            feature=name,
            distance=None if f.distance is None else round(f.distance, 4),
            lower_bound=None if f.lower_bound is None else round(f.lower_bound, 4),
            tolerance=f.tolerance,
            missing_ratio=round(f.missing_ratio, 4),
            by=",".join(t for t, flag in f.detected.items() if flag),
        )
    for name in sorted(was - now):
        log.info("drift_cleared", feature=name, judged=name in results)


def _log_quality_changes(before: QualitySnapshot, after: QualitySnapshot) -> None:
    """A metric that becomes degraded, or recovers, is news: said at info level, once."""
    was, now = set(before.degraded_names), set(after.degraded_names)
    for metric in sorted(now - was):
        v = after.verdicts[metric]
        log.info(
            "quality_degraded",
            metric=metric,
            value=round(v.value, 4),
            bound=None if v.bound is None else round(v.bound, 4),
            threshold=v.threshold,
            reference=v.reference,
            labels=v.n,
            level=v.level,
        )
    for metric in sorted(was - now):
        still = after.verdicts.get(metric)
        log.info(
            "quality_recovered",
            metric=metric,
            judged=still is not None,
            value=None if still is None else round(still.value, 4),
        )
    for metric, note in after.notes.items():
        if note.startswith("no verdict") and before.notes.get(metric) != note:
            log.warning("quality_verdict_impossible", metric=metric, reason=note)


def open_store(config: ExporterConfig) -> OutcomeStore:
    """The outcome store of ``config.outcomes``; the directory of the default one (beside
    the state file) is created, as the state file's is."""
    outcomes, logs = config.outcomes, config.logs
    assert outcomes is not None
    path = Path(outcomes.store)
    if logs.state_file is not None and path.parent == Path(logs.state_file).parent:
        path.parent.mkdir(parents=True, exist_ok=True)
    return OutcomeStore(
        path,
        max_delay=outcomes.max_delay,
        max_pending=outcomes.max_pending,
        early_grace=outcomes.early_grace,
        window_max_samples=config.quality.window.max_samples,
        window_max_age=config.quality.window.max_age,
        max_classes=config.prediction.max_classes,
    )


def build_exporter(
    config_file: str | os.PathLike[str],
    listen_address: str,
    web_config_file: str | None,
    env: Mapping[str, str],
    version: str = __version__,
    *,
    web: ServerOptions | None = None,
    exporter_metrics: bool = True,
) -> Exporter:
    """Load everything that can be wrong, then bind the port; the exporter is not started.

    Used by the command line and by the demo (which writes its own config first), so neither
    imports the other.  The config and the web config are read before the reference, the
    slow part, so a typo is reported without waiting for it.
    """
    config = load_config(config_file, env)
    web_config = load_web_config(web_config_file)
    web_config.ssl_context()  # a bad cert or key fails here, as one line
    profile, features = load_reference(config)
    return Exporter(
        config,
        profile,
        features,
        web_config=web_config,
        listen_address=listen_address,
        version=version,
        web=web,
        exporter_metrics=exporter_metrics,
    )
