"""Each model's outcomes: its own outcome store, its feed and its quality pass.

With an ``outcomes:`` section every model has one :class:`ModelQuality`: an
:class:`~exporter.outcomes.OutcomeStore` (one SQLite file), the
:class:`~exporter.outcome_feed.OutcomeFeed` that fills it, the window of confidences behind
its estimated accuracy, and the last :class:`~exporter.quality.QualitySnapshot`.
:class:`ModelOutcomes` holds them all and is what the ingest loop calls
(:class:`exporter.ingest.Ingestor`'s ``outcomes``).

**Which store.**  With one model, ``outcomes.store`` itself, as always.  With several, one
file per model named after it beside that path (:func:`store_path`):
``state/checkpoint.outcomes.db`` -> ``state/checkpoint.outcomes.churn.db``.  A request id
is only unique within one model, and two models never share a join.

**Which rows.**  With several models, prediction and outcome records are routed by the
models' ``match:`` fields, exactly as the drift path routes predictions
(:class:`~exporter.routing.Router`, first match wins): outcome records must carry the match
fields (``PredictionLogger`` writes ``service`` and ``model_version`` on them too).  A
prediction no model takes is already counted in ``mlops_log_lines_unrouted_total``; an
outcome no model takes is added to it too, and stored nowhere.  Every version of a model's
predictions is stored, as with one model: the quality window spans the versions (the outcome
of a prediction of the version that is draining after a promotion still joins).  With one
model nothing is routed: every row goes to its store, as before.

**Crashes.**  Each poll's rows go to each store in one transaction of its own, every one
committed before the offsets checkpoint that covers them, with each source's high-water
offset in the same transaction; after the checkpoint each store forgets the sources the
checkpoint no longer lists.  A line goes to one store only, so
replaying a poll after a SIGKILL between two stores' commits leaves both right: the store
that had committed skips its lines as known, the other applies them for the first time.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import structlog

from exporter.checkpoint import FilePosition
from exporter.config import QUALITY_METRICS, ExporterConfig, max_drop_problem, model_store
from exporter.diagnostics import (
    Diagnostics,
    sample_dropped_probabilities,
    sample_invalid_outcomes,
)
from exporter.errors import ConfigError
from exporter.ingest import IngestCounters
from exporter.keyed_records import KeyedParser
from exporter.linesource import IdentifyingFollower
from exporter.models import ModelState
from exporter.outcome_feed import OutcomeFeed
from exporter.outcomes import (
    OutcomeRow,
    OutcomeStore,
    OutcomeStoreError,
    PredictionRow,
    StoreLimits,
    outcome_record,
)
from exporter.quality import ConfidenceWindow, QualitySettings, QualitySnapshot, compute_quality
from exporter.records import ParsedBatch
from exporter.routing import Router
from mlops_core.profile import ReferenceProfile
from mlops_core.quality import ConfidenceCalibrator

log = structlog.get_logger("exporter")

Verdicts = Callable[[list[bytes]], ParsedBatch]


def store_path(config: ExporterConfig, model: str) -> Path:
    """The outcome store of ``model``: ``outcomes.store`` with one model; with several,
    one file per model beside it (:func:`exporter.config.model_store`)."""
    assert config.outcomes is not None
    store = config.outcomes.store
    return Path(store if len(config.model_list()) == 1 else model_store(store, model))


def store_limits(view: ExporterConfig) -> StoreLimits:
    """The store bounds of the model ``view`` is for (:meth:`ExporterConfig.for_model`:
    its ``models[i].outcomes`` over the shared ``outcomes:``), as
    :meth:`~exporter.outcomes.OutcomeStore.set_limits` takes them."""
    outcomes = view.outcomes
    assert outcomes is not None
    return StoreLimits(
        max_delay=outcomes.max_delay,
        max_pending=outcomes.max_pending,
        early_grace=outcomes.early_grace,
        window_max_samples=view.quality.window.max_samples,
        window_max_age=view.quality.window.max_age,
        max_classes=view.prediction.max_classes,
    )


def open_store(
    config: ExporterConfig, path: Path, view: ExporterConfig | None = None
) -> OutcomeStore:
    """One model's outcome store, with the bounds of ``view`` (the model's view of
    ``config``; default ``config`` itself); the directory of the default one (beside the
    state file) is created, as the state file's is."""
    logs = config.logs
    if logs.state_file is not None and path.parent == Path(logs.state_file).parent:
        path.parent.mkdir(parents=True, exist_ok=True)
    return OutcomeStore(path, **store_limits(config if view is None else view))


def open_stores(config: ExporterConfig, models: Sequence[ModelState]) -> list[OutcomeStore]:
    """Every model's outcome store, in order, each with its model's bounds; if one cannot
    be opened, those opened before it are closed and its error is raised."""
    stores: list[OutcomeStore] = []
    try:
        for model in models:
            stores.append(open_store(config, store_path(config, model.name), model.config))
    except BaseException:
        for store in stores:
            store.close()
        raise
    return stores


def quality_settings(config: ExporterConfig, model: ModelState | None) -> QualitySettings:
    """The quality pass's settings for ``model``.  Its reference metrics: the model's own
    ``models[i].quality.reference``, else ``quality.reference`` (shared by every model), else
    the metrics the registry stored with its monitored version (``mlops validate
    --register``); ``max_drop`` likewise its own, else the shared one."""
    settings = QualitySettings.from_config(config)
    spec = None if model is None else model.spec
    if spec is not None and spec.quality_max_drop is not None:
        settings = dataclasses.replace(settings, max_drop=spec.quality_max_drop)
    if spec is not None and spec.quality_reference:
        return dataclasses.replace(
            settings, reference=MappingProxyType(dict(spec.quality_reference))
        )
    stored = None if model is None else model.monitor.reference.metrics
    if settings.reference or not stored:
        return settings
    usable = {
        k: float(v) for k, v in stored.items()
        if k in QUALITY_METRICS and isinstance(v, int | float) and not isinstance(v, bool)
        and math.isfinite(v)
    }  # fmt: skip
    return dataclasses.replace(settings, reference=MappingProxyType(usable))


def calibrator(profile: ReferenceProfile) -> ConfidenceCalibrator | None:
    """The monitored version's profile's calibrator, when it carries one."""
    found = getattr(profile, "calibrator", None)
    return found if isinstance(found, ConfidenceCalibrator) else None


@dataclass
class ModelQuality:
    """One model's outcome store, its feed, its confidences and its last quality pass."""

    name: str
    store: OutcomeStore
    feed: OutcomeFeed
    confidence: ConfidenceWindow
    snapshot: QualitySnapshot  # replaced whole by each pass (one assignment)
    problem: str | None = None  # why the last pass failed, shown until one succeeds


class ModelOutcomes:
    """Every model's :class:`ModelQuality`, fed from the ingest loop under its lock.

    ``router`` returns the ingest loop's current router (a reload replaces it), so outcome
    records are routed by the same table as the predictions.  ``counters`` are the line
    counters, whose unrouted count takes the outcomes no model's match selects.
    """

    def __init__(
        self,
        config: ExporterConfig,
        models: Sequence[ModelState],
        stores: Sequence[OutcomeStore],
        follower: IdentifyingFollower,
        verdicts: Verdicts,
        counters: IngestCounters,
        router: Callable[[], Router | None],
        *,
        diagnostics: Diagnostics | None = None,
    ) -> None:
        self.counters = counters
        self.diagnostics = diagnostics  # logs the first invalid outcome records
        self.outcomes = config.outcomes  # paths and store: fixed for the process's life
        self._router = router
        self._follower = follower
        self._verdicts = verdicts
        self._keyed = self._parser(config, ())
        self._routed_by: tuple[Router | None, dict[tuple[str | None, ...], str | None]] = (
            None,
            {},
        )
        self.lock = threading.Lock()  # a quality pass and closing the stores, never both
        self.closed = False
        parts: list[ModelQuality] = []
        for model, store in zip(models, stores, strict=True):
            window = ConfidenceWindow(config.drift.window.max_samples, config.drift.window.max_age)
            feed = OutcomeFeed(
                store, self._keyed, verdicts, follower, window, diagnostics=diagnostics
            )
            empty = QualitySnapshot.empty(quality_settings(config, model))
            parts.append(ModelQuality(model.name, store, feed, window, empty))
        self.parts = tuple(parts)
        self.by_name = {p.name: p for p in self.parts}

    @staticmethod
    def _parser(config: ExporterConfig, fields: Sequence[str]) -> KeyedParser:
        return KeyedParser(
            class_field=config.prediction.class_field,
            max_line_bytes=config.logs.max_line_bytes,
            route_fields=fields,
        )

    # --- what the ingest loop calls (under its lock) ------------------------------------------

    @property
    def failing(self) -> bool:
        """Whether some store's last write failed (its rows are waiting)."""
        return any(p.feed.failing for p in self.parts)

    def problems(self) -> list[str]:
        """What the pages say about the stores: a quality pass that failed (the file
        deleted or replaced), and a store that cannot be written (rows wait in memory)."""
        out = []
        for part in self.parts:
            who = f"{part.name}: " if len(self.parts) > 1 else ""
            if part.problem is not None:
                out.append(f"{who}{part.problem}")
            if part.feed.failing:
                out.append(f"{who}{part.feed.failure}")
        return out

    def retry(self) -> None:
        for part in self.parts:
            if part.feed.failing:
                part.feed.retry()

    def checkpointed(self, positions: Sequence[FilePosition]) -> None:
        for part in self.parts:
            part.feed.checkpointed(positions)

    def feed(self, blocks: Sequence[bytes], batches: Sequence[ParsedBatch]) -> None:
        """One poll's rows, each to its model's store (one transaction per store)."""
        if len(self.parts) == 1:  # nothing to route: every row is the one model's
            self.parts[0].feed.feed(blocks, batches)
            return
        router = self._router()
        fields = () if router is None else router.fields
        if self._keyed.route_fields != fields:  # a reload changed the match fields
            keyed = self._keyed
            self._keyed = KeyedParser(
                class_field=keyed.class_field, max_line_bytes=keyed.max_line_bytes,
                route_fields=fields,
            )  # fmt: skip
        n = len(self.parts)
        predictions: list[list[PredictionRow]] = [[] for _ in range(n)]
        outcomes: list[list[OutcomeRow]] = [[] for _ in range(n)]
        confidence: list[list[tuple[float, float]]] = [[] for _ in range(n)]
        unrouted = 0
        model_of = self._model_of(router)
        follower = self._follower
        sources, files = follower.block_sources, follower.block_files
        for block, batch, (path, start), name in zip(blocks, batches, sources, files, strict=True):
            try:
                rows = self._keyed.rows(block, name, start, batch, self._verdicts)
            except Exception:  # a bug a line triggers: it costs that line, never the block
                log.exception("outcome_rows_failed", file=path, offset=start)
                rows = self._keyed.rows_line_by_line(block, name, start, self._verdicts, path)
            dropped: list[int] = []
            for p_row, key in zip(rows.predictions, rows.prediction_routes, strict=True):
                if (i := model_of(key)) is not None:  # else counted by the drift path
                    predictions[i].append(p_row)
                    if p_row.probability_dropped:
                        dropped.append(p_row.offset)
            routed: list[OutcomeRow] = []
            for o_row, key in zip(rows.outcomes, rows.outcome_routes, strict=True):
                if (i := model_of(key)) is None:
                    unrouted += 1
                else:
                    outcomes[i].append(o_row)
                    routed.append(o_row)
            if self.diagnostics is not None:  # as the stores will judge them (feed_rows)
                records = ((r.offset, outcome_record(r)) for r in routed)
                sample_invalid_outcomes(self.diagnostics, path, start, block, records)
                sample_dropped_probabilities(self.diagnostics, path, start, block, dropped)
            for pair, key in zip(rows.confidence, rows.confidence_routes, strict=True):
                if (i := model_of(key)) is not None:
                    confidence[i].append(pair)
        if unrouted:  # saved with the offsets: exact across restarts
            self.counters.add_unrouted(unrouted)
        for i, part in enumerate(self.parts):
            part.feed.feed_rows(predictions[i], outcomes[i], confidence[i])

    def _model_of(self, router: Router | None) -> Callable[[tuple[str | None, ...]], int | None]:
        """Row key (its match values) -> index in :attr:`parts`, each distinct key resolved
        once per router."""
        if self._routed_by[0] is not router:
            self._routed_by = (router, {})
        cache = self._routed_by[1]
        place = {p.name: i for i, p in enumerate(self.parts)}
        fields = () if router is None else router.fields

        def model_of(key: tuple[str | None, ...]) -> int | None:
            if key not in cache:
                if len(cache) > 4096:  # hostile logs: bounded
                    cache.clear()
                m = None if router is None else router.model_of(dict(zip(fields, key, strict=True)))
                cache[key] = None if m is None or router is None else router.routes[m].model
            name = cache[key]
            return None if name is None else place.get(name)

        return model_of

    # --- the quality pass -----------------------------------------------------------------

    def quality_pass(self, models: Mapping[str, ModelState], config: ExporterConfig) -> bool:
        """Sweep each store, read it, compute its model's new QualitySnapshot and swap it in.

        A model's failure is logged and its old snapshot stays; the others go on.  Returns
        whether the pass ran (not after :meth:`close`).
        """
        with self.lock:
            if self.closed:
                return False
            for part in self.parts:
                model = models.get(part.name)
                settings = quality_settings(config, model)
                # the registry's stored reference is not checked at load: say it here
                unjudgeable = max_drop_problem(settings.reference, settings.max_drop)
                try:
                    part.store.check_file()
                    part.store.sweep()
                    stats = part.feed.refresh()
                    window = part.store.quality_window()
                    snap = compute_quality(
                        window,
                        stats,
                        settings,
                        confidence=part.confidence.values(),
                        calibrator=None
                        if model is None
                        else calibrator(model.monitor.reference.profile),
                    )
                except OutcomeStoreError as exc:  # the store's file: one line, said once
                    if part.problem != str(exc):
                        log.error("quality_computation_failed", model=part.name, error=str(exc))
                    part.problem = str(exc)
                    continue
                except Exception as exc:
                    log.error(
                        "quality_computation_failed", model=part.name, error=str(exc),
                        exc_info=True,
                    )  # fmt: skip
                    part.problem = f"quality pass failed: {exc}"
                    continue
                problem = None if unjudgeable is None else f"quality.max_drop {unjudgeable}"
                if problem is not None and problem != part.problem:
                    log.warning("quality_max_drop_unjudgeable", model=part.name, message=problem)
                part.problem = problem
                previous, part.snapshot = part.snapshot, snap  # the atomic swap
                log.debug(
                    "quality_computed",
                    model=part.name,
                    window_samples=snap.window_samples,
                    degraded=list(snap.degraded_names),
                    duration_seconds=round(snap.duration_seconds, 4),
                )
                log_quality_changes(previous, snap, part.name)
        return True

    def close(self) -> None:
        """Close every store, after a running quality pass (its connections go with them)."""
        locked = self.lock.acquire(timeout=5)
        try:
            self.closed = True
            for part in self.parts:
                try:
                    part.store.close()
                except Exception as exc:
                    log.warning("close_failed", store=str(part.store.path), error=str(exc))
        finally:
            if locked:
                self.lock.release()

    def check_reload(self, config: ExporterConfig) -> None:
        """``ConfigError`` when a reloaded config cannot be applied to the running stores:
        it adds or removes a model or drops ``outcomes:`` (each model's store is opened at
        start), or changes ``outcomes.paths`` or ``outcomes.store`` (the files followed and
        the stores belong to the running process).  Everything else of ``outcomes:`` and
        the models' own ``outcomes:`` is applied (:meth:`apply_limits`)."""
        names = [m.name for m in config.model_list()]
        if sorted(names) != sorted(self.by_name):
            raise ConfigError(
                "models: with outcomes: adding or removing a model needs a restart (each "
                "model's outcome store is opened at start); nothing reloaded"
            )
        if config.outcomes is None:
            raise ConfigError(
                "outcomes: removing the section needs a restart (the outcome stores are open);"
                " nothing reloaded"
            )
        for key in ("paths", "store"):
            if getattr(config.outcomes, key) != getattr(self.outcomes, key):
                raise ConfigError(
                    f"outcomes.{key}: a change needs a restart (the files followed and the "
                    "stores belong to the running process); nothing reloaded"
                )

    def apply_limits(self, models: Sequence[ModelState]) -> None:
        """Each store's bounds from its model's config (after a reload): in force from the
        next batch and sweep (:meth:`~exporter.outcomes.OutcomeStore.set_limits`)."""
        for model in models:
            part = self.by_name.get(model.name)
            if part is not None:
                part.store.set_limits(**store_limits(model.config))


def log_quality_changes(
    before: QualitySnapshot, after: QualitySnapshot, model: str | None = None
) -> None:
    """A metric that becomes degraded, or recovers, is news: said at info level, once."""
    was, now = set(before.degraded_names), set(after.degraded_names)
    for metric in sorted(now - was):
        v = after.verdicts[metric]
        log.info(
            "quality_degraded",
            model=model,
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
            model=model,
            metric=metric,
            judged=still is not None,
            value=None if still is None else round(still.value, 4),
        )
    for metric, note in after.notes.items():
        if note.startswith("no verdict") and before.notes.get(metric) != note:
            log.warning("quality_verdict_impossible", model=model, metric=metric, reason=note)
