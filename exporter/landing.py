"""The ``/`` landing page: what the exporter sees, in one screen, refreshed every pass.

The page reads what a scrape reads and computes no statistic: the drift
:class:`~exporter.pipeline.Snapshot` (verdicts, distances, and the window's counts per
reference bucket, which the histograms draw), the quality
:class:`~exporter.quality.QualitySnapshot` with an ``outcomes:`` section, the ingest counters
and the warnings of :mod:`exporter.diagnostics`.  The feature sections, the heavy part (one
inline SVG per feature), are rendered once per snapshot and cached
(:class:`LandingRenderer`); only the header and the quality table, a few lines, are built
per view, so a page view costs about what a scrape costs.

No JavaScript and nothing fetched from elsewhere: the exporter often runs where nothing
outside is reachable.  The page refreshes itself with a meta refresh at the drift
interval.  Every name and value from the config, the reference or the logs goes through an
escape: a feature or category name is data, never markup.
"""

from __future__ import annotations

import datetime as _dt
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from exporter import DEFAULT_TELEMETRY_PATH
from exporter.pipeline import FeatureResult, Snapshot
from exporter.quality import METRIC_ORDER, QualitySnapshot
from mlops_core.profile import NumericFeatureProfile
from mlops_core.report_svg import escape, feature_histogram_svg, numeric_bucket_labels

WARM_FOR = 600.0
"""Seconds after a view during which each pass pre-draws the page (:meth:`LandingRenderer.warm`)."""


@dataclass(frozen=True)
class FeatureChart:
    """The fixed part of one feature's histogram: its buckets and the reference's shares."""

    labels: tuple[str, ...]
    reference: tuple[float, ...]
    reference_range: tuple[float, float] | None  # numeric: the reference's min and max

    @classmethod
    def from_profile(cls, feature: Any) -> FeatureChart:
        if isinstance(feature, NumericFeatureProfile):
            lo, hi = float(feature.sorted_values[0]), float(feature.sorted_values[-1])
            labels = tuple(numeric_bucket_labels(feature.edges, lo, hi))
            return cls(labels, tuple(float(r) for r in feature.ref_proportions), (lo, hi))
        return cls(
            tuple(feature.bucket_labels), tuple(float(r) for r in feature.ref_proportions), None
        )


@dataclass(frozen=True)
class LandingPage:
    """What the ``/`` page shows besides the live figures; fixed at start-up."""

    model: str
    version: str  # the exporter's version (not the model's)
    config_summary: Sequence[tuple[str, str]]
    metrics_path: str = DEFAULT_TELEMETRY_PATH
    refresh_seconds: float = 30.0
    model_version: str | None = None  # the model's, when known (the registry issue)
    charts: Mapping[str, FeatureChart] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelPage:
    """One model as the page shows it, read at view time: which version, its last pass."""

    name: str
    version: str
    stage: str
    source: str  # where its reference comes from
    snapshot: Snapshot
    charts: Mapping[str, FeatureChart] = field(default_factory=dict)
    predictions: int | None = None  # of the monitored version, as the counters serve it
    other_versions: Mapping[str, int] = field(default_factory=dict)
    reference_hash: str = ""
    reference_rows: int = 0


@dataclass(frozen=True)
class LiveFigures:
    """The header's live figures, read from the ingest counters at view time."""

    lines_total: int = 0
    predictions_total: int = 0
    lines_per_second: float | None = None  # over the last drift interval
    invalid_by_reason: Mapping[str, int] = field(default_factory=dict)
    files_watched: int = 0
    warnings: Sequence[str] = ()
    unrouted_total: int = 0


_STYLE = (
    "body{font-family:sans-serif;margin:1.5em;max-width:72em}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .6em;"
    "text-align:left;vertical-align:top}.warn{color:#a40}.drift{color:#b00;font-weight:bold}"
    ".feature{display:flex;gap:1.5em;align-items:flex-start;border-top:1px solid #ddd;"
    "padding:.6em 0}.figures td,.figures th{border:none;padding:.05em .5em}"
    "header dl{display:grid;grid-template-columns:max-content auto;gap:.1em 1em}"
    "header dt{color:#555}"
)


def render_landing(
    page: LandingPage,
    snapshot: Snapshot,
    live: LiveFigures | None = None,
    *,
    now: float | None = None,
    features_html: str | None = None,
    models: Sequence[ModelPage] = (),
    quality: Sequence[tuple[str, QualitySnapshot]] | None = None,
) -> str:
    """The whole page; ``features_html`` is :func:`render_features`' output when cached.

    ``models``: every model with its version; with several, the header lists them and the
    drift part has one section per model (``features_html`` is then all of them).
    ``quality``: each model's last quality pass, with an ``outcomes:`` section (the tables
    come before the drift part; with several models, one section per model).
    """
    if features_html is not None:
        body = features_html
    elif len(models) > 1:
        body = "".join(render_model(page, m) for m in models)
    else:
        body = render_features(page, snapshot)
    head, tail = _around_features(page, snapshot, live, now, models, quality)
    return head + body + tail


def _around_features(
    page: LandingPage,
    snapshot: Snapshot,
    live: LiveFigures | None,
    now: float | None,
    models: Sequence[ModelPage],
    quality: Sequence[tuple[str, QualitySnapshot]] | None,
) -> tuple[str, str]:
    """The page before the feature sections and after them: what a view builds."""
    live = live or LiveFigures()
    refresh = max(1, round(page.refresh_seconds))
    quality_html = "" if not quality else f"<h2>Quality</h2>{_quality_sections(quality)}"
    head = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='refresh' content='{refresh}'>"
        f"<title>mlops-exporter: {escape(page.model)}</title><style>{_STYLE}</style>"
        f"</head><body>{_header(page, snapshot, live, now, models)}"
        f"{quality_html}<h2>Drift</h2>"
    )
    return head, f"<h2>Configuration</h2><table>{_summary(page)}</table></body></html>"


def render_model(page: LandingPage, m: ModelPage) -> str:
    """One model's drift section on a page of several."""
    name = escape(m.name)
    return (
        f"<section class='model' data-model='{name}'><h3>{name} <small>version "
        f"{escape(m.version)}</small></h3>"
        f"{render_features(page, m.snapshot, m.charts)}</section>"
    )


def _models_table(models: Sequence[ModelPage]) -> str:
    """Each model, the version it monitors and where that version's reference comes from."""
    rows = []
    for m in models:
        snap = m.snapshot
        others = ", ".join(f"{escape(v)}: {n}" for v, n in sorted(m.other_versions.items()))
        drifted = f"{snap.features_drifted} of {len(snap.features)}" if snap.features else "-"
        cells = [
            f"<b>{escape(m.name)}</b>", escape(m.version), escape(m.stage), escape(m.source),
            escape(m.reference_hash), str(snap.window_samples), drifted,
            "" if m.predictions is None else str(m.predictions), others or "none",
        ]  # fmt: skip
        rows.append(
            f"<tr data-model='{escape(m.name)}' data-version='{escape(m.version)}'>"
            + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"
        )  # fmt: skip
    return (
        "<table id='models'><tr><th>model</th><th>version</th><th>stage</th><th>reference"
        "</th><th>hash</th><th>window</th><th>drifted</th><th>predictions</th><th>other "
        "versions</th></tr>" + "".join(rows) + "</table>"
    )


def _summary(page: LandingPage) -> str:
    rows = page.config_summary
    return "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)


def _header(
    page: LandingPage,
    snap: Snapshot,
    live: LiveFigures,
    now: float | None,
    models: Sequence[ModelPage] = (),
) -> str:
    now = time.time() if now is None else now
    model = f"<b>{escape(page.model)}</b>"
    version = models[0].version if len(models) == 1 else page.model_version
    if version and version != "unknown":
        model += f", model version <b id='model-version'>{escape(version)}</b>"
    if len(models) == 1:
        only = models[0]
        model += (
            f" (reference: {escape(only.source)}, {only.reference_rows} rows, hash "
            f"{escape(only.reference_hash)})"
        )
        if only.other_versions:
            listed = ", ".join(f"{escape(v)}: {n}" for v, n in sorted(only.other_versions.items()))
            model += f"; predictions of other versions, not judged: {listed}"
    if snap.computed_at is None:
        last = "no pass yet"
    else:
        stamp = _dt.datetime.fromtimestamp(snap.computed_at, _dt.UTC).strftime("%H:%M:%S UTC")
        last = f"<span id='last-pass'>{stamp}</span> ({max(0.0, now - snap.computed_at):.0f} s ago)"
    rate = "" if live.lines_per_second is None else f" ({live.lines_per_second:.1f} lines/s)"
    invalid = ", ".join(f"{escape(r)} {n}" for r, n in sorted(live.invalid_by_reason.items()) if n)
    quantiles = ", ".join(
        f"p{round(q * 100)} <span id='latency-p{round(q * 100)}'>{v * 1000:.1f}</span> ms"
        for q, v in snap.latency_quantiles.items()
    )
    if len(models) > 1:
        model = _models_table(models)
    rows = [
        ("models" if len(models) > 1 else "model", model),
        ("last drift pass", last),
        ("window", f"<span id='window-samples'>{snap.window_samples}</span> predictions"),
        ("features drifted", f"<span id='features-drifted'>{snap.features_drifted}</span> of "
                             f"{len(snap.features)} with a verdict ({snap.monitored} monitored)"),
        ("lines read", f"<span id='lines-total'>{live.lines_total}</span>{rate}; "
                       f"{live.predictions_total} predictions"),
        ("invalid lines", invalid or "none"),
        *([("unrouted predictions", f"<span id='unrouted'>{live.unrouted_total}</span> "
            "(matched no model)")] if len(models) > 1 else []),
        ("files watched", f"<span id='files-watched'>{live.files_watched}</span>"),
        ("latency over the window", quantiles or "no latency yet"),
    ]  # fmt: skip
    warnings = "".join(f"<li class='warn'>{escape(w)}</li>" for w in live.warnings)
    links = (
        f"<a href='{escape(page.metrics_path.lstrip('/'))}'>Metrics</a> · "
        "<a href='-/healthy'>Health</a> · <a href='-/ready'>Readiness</a>"
    )
    return (
        f"<header><h1>mlops-exporter</h1><p>{links} · mlops-exporter {escape(page.version)}</p>"
        "<dl>" + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>"
        + (f"<ul id='warnings'>{warnings}</ul>" if warnings else "")
        + "</header>"
    )  # fmt: skip


def render_features(
    page: LandingPage, snap: Snapshot, charts: Mapping[str, FeatureChart] | None = None
) -> str:
    """Every feature with a verdict, drifted first: its histogram and its figures.

    ``charts``: the model's (a page of several models); by default the page's.
    """
    charts = page.charts if charts is None else charts
    if not snap.features:
        if snap.computed_at is None:
            return "<p>No drift computation yet.</p>"
        if snap.window_samples >= 1 and snap.monitored:
            return (
                f"<p class='warn'>No monitored feature has a verdict yet: the window holds "
                f"{snap.window_samples} predictions, and a feature needs drift.min_samples "
                "values present (see the warnings above if a feature is never in the "
                "records).</p>"
            )
        return (
            f"<p>Not enough samples yet ({snap.window_samples} in the window); drift "
            "verdicts appear once drift.min_samples is reached.</p>"
        )
    ordered = sorted(snap.features, key=lambda f: (not f.drifted, -(f.distance or 0.0), f.name))
    blind = [f.name for f in snap.features if (f.detectable_distance or 0.0) > 1.0]
    level = "" if snap.level is None else f" Each verdict runs at level {snap.level:.3g}."
    note = ""
    if blind:
        note = (
            f"<p class='warn'>Too few samples to flag any shift of {escape(', '.join(blind))}: "
            "the detectable distance is above 1.</p>"
        )
    sections = "".join(_feature_section(charts.get(f.name), f) for f in ordered)
    return (
        f"<p>{snap.features_drifted} of {len(snap.features)} features drifted.{level}</p>"
        f"{note}<div id='features'>{sections}</div>"
    )


def _feature_section(chart: FeatureChart | None, f: FeatureResult) -> str:
    name = escape(f.name)
    svg = ""
    if chart is not None and len(f.bucket_counts) == len(chart.labels):
        svg = feature_histogram_svg(
            chart.labels, chart.reference, f.bucket_counts, f.below_min, f.above_max,
            f.name, reference_range=chart.reference_range, show_title=False,
        )  # fmt: skip
    by = escape(", ".join(t for t, flag in f.detected.items() if flag))
    verdict = f"<span class='drift'>drift</span> ({by})" if f.drifted else "ok"
    if f.kind == "numeric":
        p_value = "" if f.ks_p_value is None else f"KS {_fmt(f.ks_p_value)}"
    else:
        p_value = "" if f.chi2_p_value is None else f"&chi;&sup2; {_fmt(f.chi2_p_value)}"
    distance = "KS distance" if f.kind == "numeric" else "total variation"
    rows = [
        ("verdict", verdict),
        (distance, f"{_fmt(f.distance)} (tolerance {_fmt(f.tolerance)})"),
        ("lower bound", _fmt(f.lower_bound)),
        ("detectable", _fmt(f.detectable_distance)),
        ("missing", f"{f.missing_ratio:.1%} (reference {f.reference_missing_ratio:.1%})"),
        ("p-value", p_value or "not computed"),
        ("PSI", _fmt(f.psi) or "not computed"),
        ("samples", str(f.samples)),
    ]
    table = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    state = "drifted" if f.drifted else "ok"
    return (
        f"<section class='feature' data-feature='{name}' data-verdict='{state}'>"
        f"<div><h3>{name} <small>({f.kind})</small></h3><table class='figures'>{table}"
        f"</table></div>{svg}</section>"
    )


def _quality_sections(quality: Sequence[tuple[str, QualitySnapshot]]) -> str:
    """One model's table as it is; several: one section each, its ids suffixed with
    ``-<model>``."""
    if len(quality) == 1:
        return render_quality(quality[0][1])
    return "".join(
        f"<section class='model-quality' data-model='{escape(name)}'><h3>{escape(name)}</h3>"
        f"{render_quality(q, suffix='-' + escape(name))}</section>"
        for name, q in quality
    )


def render_quality(q: QualitySnapshot, *, suffix: str = "") -> str:
    """The quality table: each metric realised, estimated, its reference and its verdict.

    ``suffix`` follows each element id (one table per model on one page)."""
    stats = q.stats
    ratio = q.labelled_ratio
    facts = [
        f"<span id='quality-window{suffix}'>{q.window_samples}</span> joined predictions in the "
        f"window (quality.min_samples {q.min_samples})",
        "labelled: " + ("no prediction stored yet" if ratio is None else f"{ratio:.1%}"),
        f"<span id='awaiting{suffix}'>{0 if stats is None else stats.pending}</span> predictions "
        "awaiting an outcome",
        # outcome lines no join can use (actual an object or array, no request_id): counted
        # by the store, logged as outcome_rejected; shown so "labelled" is not a mystery
        f"<span id='outcomes-invalid{suffix}'>"
        f"{0 if stats is None else stats.unmatched.get('invalid', 0)}</span> invalid outcome "
        "records (not joinable)",
    ]
    if stats is not None and stats.held:  # early, or for no prediction: said after the grace
        facts.append(
            f"<span id='outcomes-held{suffix}'>{stats.held}</span> outcome records waiting for "
            "their prediction (up to outcomes.early_grace, then counted unknown_request)"
        )
    if stats is not None and (stats.predictions_duplicate or stats.predictions_invalid):
        facts.append(  # counted by the store; the labelled ratio leaves them out
            f"<span id='predictions-unjoinable{suffix}'>"
            f"{stats.predictions_duplicate + stats.predictions_invalid}</span> prediction "
            f"records no outcome can join ({stats.predictions_duplicate} with a duplicate "
            f"request_id, {stats.predictions_invalid} invalid)"
        )
    if stats is not None and stats.predictions_probability_dropped:
        facts.append(  # logged as prediction_probability_dropped
            f"<span id='probabilities-dropped{suffix}'>{stats.predictions_probability_dropped}"
            "</span> predictions whose logged probability was unusable and left out"
        )
    if q.level is not None:
        facts.append(f"verdicts at level {q.level:.3g}")
    head = f"<p>{'; '.join(facts)}.</p>"
    if q.computed_at is None:
        return head + "<p>No quality pass yet.</p>"
    shown = [m for m in METRIC_ORDER if m in q.metrics or m in q.reference or m in q.estimated]
    if not shown:
        why = (
            "no outcome joined yet"
            if not q.window_samples
            else f"fewer than quality.min_samples ({q.min_samples}) joined predictions"
        )
        return head + f"<p>No quality figure yet: {why}.</p>"
    rows = []
    for metric in shown:
        estimated = q.estimated.get(metric)
        if estimated is not None:
            how = "calibrated" if q.calibrated else "raw confidence, no calibrator"
            est = f"{estimated:.4g} <small>({how}, {q.estimate_samples} predictions)</small>"
        else:
            est = ""
        verdict = q.verdicts.get(metric)
        if verdict is not None:
            state = "<span class='drift'>degraded</span>" if verdict.degraded else "no"
            title = escape(verdict.reason)
            judged = f"<span title='{title}'>{state}</span>"
        elif metric in q.notes:
            judged = f"<small>{escape(q.notes[metric])}</small>"
        else:
            judged = ""
        cells = [
            escape(metric), _fmt(q.metrics.get(metric)), est,
            _fmt(q.reference.get(metric)), judged,
        ]  # fmt: skip
        rows.append(
            f"<tr data-metric='{escape(metric)}'>" + "".join(f"<td>{c}</td>" for c in cells)
            + "</tr>"
        )  # fmt: skip
    table = (
        f"<table id='quality{suffix}'><tr><th>metric</th><th>realised</th><th>estimated</th>"
        "<th>reference</th><th>degraded</th></tr>" + "".join(rows) + "</table>"
    )
    return head + table


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


class LandingRenderer:
    """Renders the page, with the feature sections cached per snapshot object.

    ``models`` gives every model at view time (:class:`ModelPage`); the features of each
    are rendered once per snapshot, and the cached part is reused while no model has a new
    one.  ``page`` may be replaced (a reload) by one assignment.

    The page refreshes itself every ``drift.interval``, so someone watching it views it
    once per pass: without help each of those views would be the first after a new
    snapshot and draw every histogram (about 450 ms at 1,000 features).  :meth:`warm`,
    called by the scheduler after each pass, draws them on its thread instead while the
    page has been viewed within :data:`WARM_FOR` seconds, and costs nothing otherwise.
    """

    def __init__(
        self,
        page: LandingPage,
        snapshot: Callable[[], Snapshot],
        live: Callable[[], LiveFigures],
        models: Callable[[], Sequence[ModelPage]] | None = None,
        quality: Callable[[], Sequence[tuple[str, QualitySnapshot]]] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.page = page
        self._snapshot = snapshot
        self._live = live
        self._models = models
        self._quality = quality
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[Any, bytes] | None = None
        self._viewed = -math.inf  # clock time of the last view

    def render(self) -> bytes:
        self._viewed = self._clock()
        page, snap, models, sections = self._sections()
        quality = None if self._quality is None else self._quality()
        head, tail = _around_features(page, snap, self._live(), None, models, quality)
        return b"".join((head.encode(), sections, tail.encode()))

    def warm(self) -> bool:
        """Draw the feature sections of the current snapshots now, if the page was viewed
        within :data:`WARM_FOR` seconds; whether it did."""
        if self._clock() - self._viewed > WARM_FOR:
            return False
        self._sections()
        return True

    def _sections(self) -> tuple[LandingPage, Snapshot, tuple[ModelPage, ...], bytes]:
        """The page, snapshot and models of this moment, and their feature sections
        (from the cache while the same objects are current)."""
        page = self.page
        models = tuple(self._models()) if self._models is not None else ()
        if len(models) == 1:  # its charts and snapshot, read together with its version
            page = _with_charts(page, models[0].charts)
            snap = models[0].snapshot
        else:
            snap = self._snapshot()
        # the very same objects: the page (replaced by a reload), each model's charts and
        # snapshot (replaced by a version switch and by each pass)
        key = (self.page, snap, *(x for m in models for x in (m.charts, m.snapshot)))
        with self._lock:
            cached = self._cached
        if cached is None or not _same_objects(cached[0], key):
            if len(models) > 1:
                html = "".join(render_model(page, m) for m in models)
            else:
                html = render_features(page, snap)
            # kept encoded: the sections hold non-ASCII text (arrows, names), and encoding
            # megabytes of it to UTF-8 on every view would cost more than the scrape
            cached = (key, html.encode())
            with self._lock:
                self._cached = cached
        return page, snap, models, cached[1]


def _with_charts(page: LandingPage, charts: Mapping[str, FeatureChart]) -> LandingPage:
    if page.charts is charts:
        return page
    return LandingPage(
        page.model, page.version, page.config_summary, page.metrics_path,
        page.refresh_seconds, page.model_version, charts,
    )  # fmt: skip


def _same_objects(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))
