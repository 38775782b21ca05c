"""The ``/`` landing page: what the exporter sees, in one screen, from the last snapshot.

Rendering reads the :class:`~exporter.pipeline.Snapshot` as a scrape does and computes no
statistic.  Every name and value from the config, the reference or the logs goes through
:func:`html.escape`: a feature or category name is data, never markup.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

from exporter import DEFAULT_TELEMETRY_PATH
from exporter.pipeline import FeatureResult, Snapshot


@dataclass(frozen=True)
class LandingPage:
    """What the ``/`` page shows besides the live drift table."""

    model: str
    version: str  # the exporter's version (not the model's)
    config_summary: Sequence[tuple[str, str]]
    metrics_path: str = DEFAULT_TELEMETRY_PATH


_COLUMNS = (
    "feature", "type", "samples", "verdict", "distance", "lower bound", "tolerance",
    "detectable", "missing", "p-value", "PSI",
)  # fmt: skip


def render_landing(page: LandingPage, snapshot: Snapshot) -> str:
    esc = html.escape
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in page.config_summary)
    if snapshot.features:
        ordered = sorted(snapshot.features, key=lambda f: (not f.drifted, f.name))
        header = "".join(f"<th>{c}</th>" for c in _COLUMNS)
        body = "".join(_feature_row(f) for f in ordered)
        blind = [f.name for f in snapshot.features if (f.detectable_distance or 0.0) > 1.0]
        note = ""
        if blind:
            note = (
                "<p class='warn'>Too few samples to flag any shift of "
                f"{esc(', '.join(blind))}: the detectable distance is above 1.</p>"
            )
        level = ""
        if snapshot.level is not None:
            level = f" Each verdict runs at level {snapshot.level:.3g}."
        drift = (
            f"<table><tr>{header}</tr>{body}</table>"
            f"<p>{snapshot.features_drifted} of {len(snapshot.features)} features drifted."
            f"{level}</p>{note}"
        )
    elif snapshot.computed_at is None:
        drift = "<p>No drift computation yet.</p>"
    else:
        drift = (
            f"<p>Not enough samples yet ({snapshot.window_samples} in the window); drift "
            "verdicts appear once drift.min_samples is reached.</p>"
        )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>mlops-exporter: {esc(page.model)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}"
        ".warn{color:#a40}</style></head><body>"
        f"<h1>mlops-exporter</h1><p>Model <b>{esc(page.model)}</b> "
        f"(mlops-exporter {esc(page.version)}).</p>"
        f"<ul><li><a href='{esc(page.metrics_path.lstrip('/'))}'>Metrics</a></li>"
        "<li><a href='-/healthy'>Health</a></li><li><a href='-/ready'>Readiness</a></li></ul>"
        f"<h2>Drift</h2>{drift}<h2>Configuration</h2><table>{rows}</table></body></html>"
    )


def _feature_row(f: FeatureResult) -> str:
    if f.kind == "numeric":
        p_value = "" if f.ks_p_value is None else f"KS {_fmt(f.ks_p_value)}"
    else:
        p_value = "" if f.chi2_p_value is None else f"&chi;&sup2; {_fmt(f.chi2_p_value)}"
    by = html.escape(", ".join(t for t, flag in f.detected.items() if flag))
    verdict = f"<b>drift</b> ({by})" if f.drifted else "ok"
    cells = (
        html.escape(f.name), f.kind, str(f.samples), verdict, _fmt(f.distance),
        _fmt(f.lower_bound), _fmt(f.tolerance), _fmt(f.detectable_distance),
        f"{f.missing_ratio:.1%}", p_value, _fmt(f.psi),
    )  # fmt: skip
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"
