"""A self-contained HTML drift report: what ``mlops drift --html`` writes.

The report is what a data scientist attaches to a ticket or a CI job keeps as an artifact,
so it is one file that opens offline: inline CSS, the histograms as inline SVG
(:mod:`mlops_core.report_svg`), no script, no font, no image, nothing fetched.

At the top a summary (how many features drifted, which) and the settings the verdict used
(tolerance, level, correction, reported tests, sample sizes); then one section per feature,
drifted first, each with its histogram of reference against current, the verdict, the
distance against the tolerance, the lower bound, the detectable distance, the basis, the
p-value with its test named, PSI and the sample counts.

Building it computes no statistic: the verdicts come in as the result of
:func:`~mlops_core.drift.analyze_feature_drift` (a dict) or
:func:`~mlops_core.drift.evaluate_drift` (a :class:`~mlops_core.drift.DriftReport`); only the
histograms' bucket counts are taken from the current data, one binary search per value.
Every name and value goes through :func:`mlops_core.report_svg.escape`: a hostile feature
or category name is shown as text and injects no markup.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops_core._fsutil import atomic_write_bytes
from mlops_core.drift import DriftReport
from mlops_core.profile import ReferenceProfile
from mlops_core.report_svg import CURRENT_COLOUR, REFERENCE_COLOUR, escape, profile_histogram_svg

__all__ = ["drift_report_html", "ordered_features", "write_report"]

FeatureResult = Mapping[str, Any]  # one feature of analyze_feature_drift's "features"

_DISTANCE_NAME = {"numeric": "KS distance", "categorical": "total variation"}
_TEST_NAME = {"ks": "KS", "chi2": "χ²"}

# No "<" or "&" in here, so the document stays well-formed XML as well as HTML.
_CSS = f"""
body{{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:72em;padding:0 1em;
color:#222;line-height:1.35}}
h1{{margin-bottom:.2em}} h2{{margin-top:1.4em;font-size:1.15em}}
table{{border-collapse:collapse}} td,th{{padding:.15em .6em;text-align:left;
vertical-align:top;border-bottom:1px solid #e4e4e4}}
th{{font-weight:600;color:#444;white-space:nowrap}}
td.num{{text-align:right;font-variant-numeric:tabular-nums}}
.summary{{font-size:1.15em}} .note{{color:#a40}}
.badge{{display:inline-block;padding:0 .45em;border-radius:.3em;font-size:.8em;
font-weight:600;vertical-align:middle;color:#fff;background:#2e7d32}}
.badge.drift{{background:#c62828}} .badge.none{{background:#777}}
.kind{{color:#666;font-size:.8em;font-weight:normal}}
section.feature{{border-top:2px solid #ddd;margin-top:1.2em;padding-top:.4em}}
section.feature.drifted{{border-top-color:#c62828}}
section.feature h3{{margin:.2em 0 .4em;overflow-wrap:anywhere}}
.body{{display:flex;flex-wrap:wrap;gap:1.5em;align-items:flex-start}}
.chart{{flex:none}} .chart svg{{width:525px;max-width:100%;height:auto}}
table.figures{{flex:1 1 24em;max-width:38em}}
.reason{{color:#555;font-size:.9em;overflow-wrap:anywhere}}
.key-ref{{color:{REFERENCE_COLOUR}}} .key-cur{{color:{CURRENT_COLOUR}}}
footer{{margin-top:2em;color:#777;font-size:.85em}}
"""


def ordered_features(features: Mapping[str, FeatureResult]) -> list[str]:
    """Drifted features first; within each group the largest distance first.

    Features without a distance (too few values) come last in their group; ties keep the
    order given.  The order a reader scans for "what moved most".
    """
    position = {name: i for i, name in enumerate(features)}

    def key(name: str) -> tuple[bool, bool, float, int]:
        f = features[name]
        distance = f.get("distance")
        return (
            not f["drift_detected"],
            distance is None,
            -(distance or 0.0),
            position[name],
        )

    return sorted(features, key=key)


def drift_report_html(
    profile: ReferenceProfile,
    current: Mapping[str, Any],
    result: Mapping[str, Any] | DriftReport,
    *,
    sources: Mapping[str, str] | None = None,
    notes: Sequence[str] = (),
    generated_at: datetime | None = None,
) -> str:
    """The whole report as one HTML document (a string).

    ``profile`` is the reference the verdicts were computed against, ``current`` the
    current data (feature name -> values, as given to the drift call) and ``result`` that
    call's result: :func:`~mlops_core.drift.analyze_feature_drift`'s dict or
    :func:`~mlops_core.drift.evaluate_drift`'s :class:`~mlops_core.drift.DriftReport`.
    ``sources`` names where the reference and current data came from (keys
    ``"reference"``, ``"current"``), ``notes`` are warnings shown under the summary (for
    example features the current data lacks), ``generated_at`` defaults to now.

    The document is also well-formed XML, so both an HTML parser and an XML parser accept
    it.  Raises ``ValueError`` when ``result`` names a feature that ``profile`` or
    ``current`` lacks.
    """
    report = result.to_dict() if isinstance(result, DriftReport) else result
    features: Mapping[str, FeatureResult] = report["features"]
    for name in features:
        if name not in profile:
            raise ValueError(f"drift report: feature {name!r} is not in the reference profile")
        if name not in current:
            raise ValueError(f"drift report: feature {name!r} is not in the current data")
    order = ordered_features(features)
    anchors = {name: f"feature-{i + 1}" for i, name in enumerate(order)}
    drifted = [n for n in order if features[n]["drift_detected"]]
    when = (generated_at or datetime.now(UTC)).isoformat(timespec="seconds")

    headline = f"{len(drifted)} of {len(features)} features drifted"
    if drifted:
        links = ", ".join(_link(anchors[n], n) for n in drifted)
        summary = (
            f"Drift in <b>{len(drifted)} of {len(features)}</b> features "
            f"({len(drifted) / len(features):.0%}): {links}."
        )
    else:
        summary = f"No drift in any of the <b>{len(features)}</b> features."
    note_html = "".join(f'<p class="note">{escape(n)}</p>' for n in notes)
    sections = "".join(
        _feature_section(name, features[name], profile, current[name], anchors[name])
        for name in order
    )
    from mlops_core import __version__

    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"/>'
        '<meta name="viewport" content="width=device-width, initial-scale=1"/>'
        f"<title>Drift report: {headline}</title><style>{_CSS}</style></head><body>"
        f'<header><h1>Drift report</h1><p class="summary">{summary}</p>{note_html}'
        f"<h2>Settings</h2>{_settings_table(profile, report, sources or {})}"
        f"<h2>Features</h2>{_overview_table(order, features, anchors)}</header>"
        f"<main>{sections}</main>"
        f"<footer>Written by mlops {escape(__version__)} (<code>mlops drift --html</code>) "
        f"at {escape(when)}. Bars: <span class='key-ref'>reference</span> and "
        "<span class='key-cur'>current</span> proportions per reference bucket.</footer>"
        "</body></html>\n"
    )


def write_report(path: str | Path, document: str) -> Path:
    """Write ``document`` to ``path`` atomically (UTF-8): a reader never sees half a report."""
    target = Path(path)
    atomic_write_bytes(target, document.encode("utf-8"))
    return target


# --- the summary --------------------------------------------------------------------------------


def _link(anchor: str, name: str) -> str:
    return f'<a href="#{anchor}"><bdi>{escape(name)}</bdi></a>'


def _per_kind(features: Mapping[str, FeatureResult], key: str, fmt: str = "g") -> str:
    """One setting that is per feature (tolerance, level), said once when it is the same."""
    by_kind: dict[str, set[float]] = {}
    for f in features.values():
        by_kind.setdefault(f["kind"], set()).add(float(f[key]))
    every = set().union(*by_kind.values()) if by_kind else set()
    if len(every) == 1:
        return f"{format(next(iter(every)), fmt)} for every feature"
    parts = []
    for kind, values in by_kind.items():
        shown = ", ".join(format(v, fmt) for v in sorted(values))
        parts.append(f"{kind}: {shown}")
    return "; ".join(parts)


def _tests_reported(features: Mapping[str, FeatureResult]) -> str:
    by_kind: dict[str, list[str]] = {}
    for f in features.values():
        tests = by_kind.setdefault(f["kind"], [])
        tests.extend(t for t in f.get("tests", ()) if t not in tests)
    if not by_kind:
        return "none"
    return "; ".join(f"{kind}: {', '.join(t) or 'none'}" for kind, t in by_kind.items())


def _settings_table(
    profile: ReferenceProfile, report: Mapping[str, Any], sources: Mapping[str, str]
) -> str:
    features: Mapping[str, FeatureResult] = report["features"]
    kinds = [f["kind"] for f in features.values()]
    current_rows = max((f["n_current"] + f["n_missing"] for f in features.values()), default=0)
    reference = f"{profile.n_rows} rows, profile hash {profile.hash[:16]}"
    current = f"{current_rows} rows"
    if "reference" in sources:
        reference = f"{sources['reference']}: {reference}"
    if "current" in sources:
        current = f"{sources['current']}: {current}"
    correction = str(report.get("correction", "none"))
    rows = [
        ("Reference", reference),
        ("Current", current),
        (
            "Features",
            f"{len(kinds)} compared ({kinds.count('numeric')} numeric, "
            f"{kinds.count('categorical')} categorical)",
        ),
        ("Tolerance", _per_kind(features, "tolerance")),
        (
            "Level",
            _per_kind(features, "level", ".3g")
            + ("" if correction == "none" else f", after the {correction} correction"),
        ),
        ("Correction", correction),
        ("Reported tests", _tests_reported(features) + " (reported figures; they do not vote)"),
        (
            "Verdict",
            "drifted when the lower confidence bound of the distance (KS distance for "
            "numeric features, total variation for categorical ones), or of the rise of "
            "the missing share, reaches the tolerance at the level",
        ),
    ]
    if "epsilon" in report:
        rows.append(("PSI floor (epsilon)", f"{float(report['epsilon']):g}"))
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    return f'<table class="settings">{body}</table>'


def _overview_table(
    order: Sequence[str], features: Mapping[str, FeatureResult], anchors: Mapping[str, str]
) -> str:
    head = "".join(
        f"<th>{c}</th>"
        for c in ("feature", "kind", "verdict", "distance", "tolerance", "detectable", "PSI", "n")
    )
    rows = []
    for name in order:
        f = features[name]
        psi = f.get("psi")
        cells = (
            f"<td>{_link(anchors[name], name)}</td><td>{escape(f['kind'])}</td>"
            f"<td>{_badge(f)}</td><td class='num'>{_fmt(f.get('distance'))}</td>"
            f"<td class='num'>{_fmt(f['tolerance'])}</td>"
            f"<td class='num'>{_fmt(f.get('detectable_distance'))}</td>"
            f"<td class='num'>{_fmt(psi['psi'] if psi else None)}</td>"
            f"<td class='num'>{int(f['n_current'])}</td>"
        )
        rows.append(f"<tr>{cells}</tr>")
    return (
        f'<table class="overview"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


# --- one feature --------------------------------------------------------------------------------


def _badge(f: FeatureResult) -> str:
    if f["drift_detected"]:
        return '<span class="badge drift">drift</span>'
    if f.get("basis") == "none" and f.get("missing_lower_bound") is None:
        return '<span class="badge none">not judged</span>'
    return '<span class="badge">ok</span>'


def _fmt(value: float | None, spec: str = ".4g") -> str:
    return "–" if value is None else format(float(value), spec)


def _fmt_p(p: float) -> str:
    if p != p:  # NaN: KS "asymp" with one value a side
        return "n/a"
    return "≈ 0" if p == 0 else format(p, ".3g")


def _verdict(f: FeatureResult) -> str:
    if not f["drift_detected"]:
        if f.get("basis") == "none":
            return "not judged: too few current values for a distance"
        return "no drift"
    why = []
    if f.get("distance_drifted"):
        why.append("by its distance")
    if f.get("missing_drifted"):
        why.append("by the rise of its missing share")
    return "drift " + " and ".join(why) if why else "drift"


def _basis(f: FeatureResult) -> str:
    basis = f.get("basis", "none")
    if basis == "bound":
        inequality = "DKW" if f["kind"] == "numeric" else "Bretagnolle-Huber-Carol"
        return f"bound: {inequality} confidence bound at level {f['level']:.3g}"
    if basis == "significance":
        return (
            "significance: too few values for a bound, the exact test decides at half the "
            "level, with the observed distance against the tolerance"
        )
    return "none: no distance judged"


def _p_values(f: FeatureResult) -> str:
    shown = []
    for test in ("ks", "chi2"):
        entry = f.get(test)
        if not entry:
            continue
        detail = [str(entry.get("method", ""))]
        if test == "chi2" and "dof" in entry:
            detail.append(f"{entry['dof']} dof")
        extra = ", ".join(d for d in detail if d)
        shown.append(
            f"{_TEST_NAME[test]} p = {_fmt_p(float(entry['p_value']))}"
            + (f" ({extra})" if extra else "")
        )
    return "; ".join(shown) if shown else "not reported"


def _missing(f: FeatureResult) -> str:
    text = f"{f['missing_rate']:.1%} of {f['n_current'] + f['n_missing']} rows"
    text += f" (reference {f['reference_missing_rate']:.1%})"
    lower = f.get("missing_lower_bound")
    if lower is not None and f.get("missing_rise", 0.0) > 0:
        text += f"; rise {f['missing_rise']:+.4g}, lower bound {lower:.4g}"
    return text


def _figures(f: FeatureResult) -> list[tuple[str, str]]:
    tolerance = float(f["tolerance"])
    distance = f.get("distance")
    detectable = f.get("detectable_distance")
    rows = [("Verdict", _verdict(f))]
    if distance is not None:
        verb = "≥" if distance >= tolerance else "<"
        rows.append(
            (
                "Distance",
                f"{distance:.4g} ({_DISTANCE_NAME[f['kind']]}) {verb} tolerance {tolerance:g}",
            )
        )
    else:
        rows.append(("Distance", f"– (tolerance {tolerance:g})"))
    rows.append(("Lower bound", _fmt(f.get("lower_bound"))))
    det = _fmt(detectable)
    if detectable is not None and detectable > 1:
        det += " (above 1: no shift can be flagged with this many values)"
    rows.append(("Detectable distance", det))
    rows.append(("Basis", _basis(f)))
    rows.append(("p-value", _p_values(f)))
    psi = f.get("psi")
    rows.append(
        ("PSI", f"{psi['psi']:.4g} over {psi['buckets']} buckets" if psi else "not reported")
    )
    rows.append(("Samples", f"{f['n_reference']} reference, {f['n_current']} current values"))
    rows.append(("Missing", _missing(f)))
    if f["kind"] == "categorical":
        share = f["n_unseen"] / f["n_current"] if f["n_current"] else 0.0
        rows.append(("Unseen categories", f"{f['n_unseen']} current values ({share:.1%})"))
    return rows


def _feature_section(
    name: str, f: FeatureResult, profile: ReferenceProfile, values: Any, anchor: str
) -> str:
    verdict = "drift" if f["drift_detected"] else "ok"
    chart = profile_histogram_svg(profile[name], values, name, show_title=False)
    figures = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in _figures(f))
    classes = "feature drifted" if f["drift_detected"] else "feature"
    return (
        f'<section class="{classes}" id="{anchor}" data-feature="{escape(name)}" '
        f'data-verdict="{verdict}">'
        f"<h3><bdi>{escape(name)}</bdi> {_badge(f)} "
        f'<span class="kind">{escape(f["kind"])}</span></h3>'
        f'<div class="body"><div class="chart">{chart}</div>'
        f'<table class="figures">{figures}</table></div>'
        f'<p class="reason">{escape(f["reason"])}</p></section>'
    )
