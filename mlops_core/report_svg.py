"""Reference-against-current histograms as inline SVG: pure functions, strings out.

One renderer for every place that shows *how* a feature moved: the ``mlops drift --html``
report (:mod:`mlops_core.report`) and the exporter's landing page.  The output is a plain
``<svg>`` element with presentation attributes, so it works inline in HTML and as a
standalone ``.svg`` file, with no script, no stylesheet and nothing fetched: the exporter
often runs where nothing outside is reachable, and a report is opened offline.

What it draws is what the distance sees: for every reference bucket (numeric quantile
buckets; categorical kept categories, ``__other__`` and ``__unseen__``) a reference bar and a
current bar, as proportions.  A numeric feature also gets one bar for current values below
the reference's minimum and one above its maximum.  The first and last quantile buckets are
open-ended, so without these bars a reference of zeros against a window of -1 would show two
identical bars (everything in the first bucket) although the KS distance is 1.

Bars are horizontal, one row per bucket, so long category names never collide; a name is
cut for display and given in full in the row's ``<title>`` (the tooltip, and what a screen
reader announces).  Every name and label goes through :func:`escape`: a feature or category
is data, never markup.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from mlops_core.profile import (
    CategoricalFeatureProfile,
    FeatureProfile,
    NumericFeatureProfile,
    to_category_keys,
    to_float_array,
)

__all__ = [
    "CURRENT_COLOUR",
    "REFERENCE_COLOUR",
    "escape",
    "feature_histogram_svg",
    "numeric_bucket_labels",
    "profile_histogram_svg",
]

#: Per-bucket numbers as callers hold them: a profile's arrays or the exporter's tuples.
Numbers = Sequence[float] | np.ndarray
Counts = Sequence[int] | np.ndarray

#: Blue against orange: a pair that colour-blind readers tell apart too.  The reference bar
#: is also always the upper one of a row, so position tells them apart without colour.
REFERENCE_COLOUR = "#4472c4"
CURRENT_COLOUR = "#ed7d31"

# Layout, in px.  A row holds the two bars of one bucket.
_WIDTH = 420
_LABEL_RIGHT = 136  # labels end here (text-anchor="end")
_BAR_LEFT = 142
_BAR_WIDTH = 180
_VALUE_LEFT = 330  # "10% → 3.2%" after the bars
_ROW = 18
_BAR = 6
_LABEL_CHARS = 22  # longer names are cut for display; the row's <title> has them in full
_TITLE_CHARS = 64

# Characters that are not allowed in XML 1.0 even as references (C0 controls but tab, newline
# and carriage return; lone surrogates; U+FFFE/U+FFFF), plus the ones that change how text
# around them reads: the other line breaks and controls, and the bidirectional overrides
# (a name with U+202E would display the following text reversed).  They are shown as
# escapes, so a reader sees that the name holds them.
_VISIBLE_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _is_shown_escaped(code: int) -> bool:
    return (
        code < 0x20
        or 0x7F <= code <= 0x9F
        or 0xD800 <= code <= 0xDFFF
        or code in (0xFFFE, 0xFFFF, 0x2028, 0x2029)
        or 0x202A <= code <= 0x202E
        or 0x2066 <= code <= 0x2069
    )


def _printable(value: object) -> str:
    """``str(value)`` with control, bidi-override and non-XML characters as ``\\xNN`` escapes."""
    text = str(value)
    if all(not _is_shown_escaped(ord(c)) for c in text):
        return text
    out = []
    for c in text:
        code = ord(c)
        if not _is_shown_escaped(code):
            out.append(c)
        elif c in _VISIBLE_ESCAPES:
            out.append(_VISIBLE_ESCAPES[c])
        else:
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    return "".join(out)


def escape(value: object, limit: int | None = None) -> str:
    """Text safe in HTML and XML, in element content and in quoted attributes alike.

    ``html.escape`` with ``quote=True`` (``&``, ``<``, ``>``, ``"`` and ``'``), after control,
    bidi-override and non-XML characters became visible escapes (see ``_printable``): a
    name with a NUL or a lone surrogate would otherwise make the SVG unparsable as XML, or
    the file unwritable as UTF-8.  ``limit`` cuts the text to that many characters (with
    ``…``) before escaping, so a cut never splits an entity.
    """
    text = _printable(value)
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 1, 1)] + "…"
    return html.escape(text, quote=True)


def _number(x: float) -> str:
    """Short and exact enough for a bucket bound: ``20600``, ``0.3125``, ``1.5e+09``."""
    if 1000 <= abs(x) < 1e9:
        return f"{x:.0f}" if x == round(x) or abs(x) >= 1e5 else f"{x:.1f}"
    return f"{x:.4g}"


def numeric_bucket_labels(edges: Numbers, minimum: float, maximum: float) -> list[str]:
    """Interval labels of numeric buckets within the reference range, in ``le`` semantics.

    Bucket i holds ``edges[i-1] < v <= edges[i]``; the first starts at the reference minimum
    (``[18, 26]``) and the last ends at its maximum (``(64, 68]``), because values outside the
    range get bars of their own (see :func:`feature_histogram_svg`).
    """
    bounds = [float(minimum), *(float(e) for e in edges), float(maximum)]
    labels = []
    for i in range(len(bounds) - 1):
        opening = "[" if i == 0 else "("
        labels.append(f"{opening}{_number(bounds[i])}, {_number(bounds[i + 1])}]")
    return labels


def _pct(p: float) -> str:
    if p == 0:
        return "0%"
    if p < 0.0005:
        return "<0.1%"
    return f"{p:.1%}" if round(p * 100, 1) < 10 else f"{p:.0%}"


def _check_inputs(
    labels: Sequence[str],
    ref_proportions: Numbers,
    cur_counts: Counts,
    below_min: int,
    above_max: int,
    reference_range: tuple[float, float] | None,
) -> tuple[list[float], list[int]]:
    if not labels:
        raise ValueError("feature_histogram_svg: no buckets")
    if not len(labels) == len(ref_proportions) == len(cur_counts):
        raise ValueError(
            f"feature_histogram_svg: {len(labels)} labels, {len(ref_proportions)} reference "
            f"proportions and {len(cur_counts)} current counts; give one of each per bucket"
        )
    ref = [float(p) for p in ref_proportions]
    if any(not math.isfinite(p) or p < 0 for p in ref):
        raise ValueError(f"feature_histogram_svg: reference proportions must be >= 0: {ref}")
    cur = [int(c) for c in cur_counts]
    if any(c < 0 for c in cur) or below_min < 0 or above_max < 0:
        raise ValueError("feature_histogram_svg: counts must be >= 0")
    if reference_range is None and (below_min or above_max):
        raise ValueError(
            "feature_histogram_svg: below_min/above_max need reference_range (their labels)"
        )
    # The out-of-range values are inside the open-ended first and last buckets' counts.
    cur[0] -= below_min
    cur[-1] -= above_max
    if cur[0] < 0 or cur[-1] < 0:
        raise ValueError(
            "feature_histogram_svg: below_min/above_max exceed the first/last bucket's count; "
            "cur_counts must include the out-of-range values, as bucket counts do"
        )
    return ref, cur


def feature_histogram_svg(
    labels: Sequence[str],
    ref_proportions: Numbers,
    cur_counts: Counts,
    below_min: int = 0,
    above_max: int = 0,
    title: str = "",
    *,
    reference_range: tuple[float, float] | None = None,
    show_title: bool = True,
) -> str:
    """An ``<svg>`` of reference against current proportions, one row per bucket.

    ``labels``, ``ref_proportions`` and ``cur_counts`` have one entry per reference bucket,
    in bucket order.  ``cur_counts`` are counts as a profile's ``bucket_counts`` or the
    exporter's bucket counters hold them: the open-ended first and last numeric buckets
    include the current values outside the reference range.  ``below_min`` and
    ``above_max`` say how many of those lie below the reference minimum and above its
    maximum; they are moved out of the first and last bucket into two bars of their own,
    labelled from ``reference_range`` = (minimum, maximum).  Give ``reference_range`` for a
    numeric feature (the two bars are then drawn even when empty, so a reader sees there
    is nothing out of range) and leave it ``None`` for a categorical one, whose unseen
    categories already have a bucket.

    Current proportions are the counts over their total; bar lengths are proportional to
    the proportions, on a scale where the largest bar of the chart fills the width.
    ``title`` (a feature name, say) names the chart for screen readers and is shown above
    the bars unless ``show_title`` is false (where a heading already says it).
    Raises ``ValueError`` for inconsistent inputs.
    """
    below_min, above_max = int(below_min), int(above_max)
    ref, cur = _check_inputs(
        labels, ref_proportions, cur_counts, below_min, above_max, reference_range
    )
    total = sum(cur) + below_min + above_max
    rows: list[tuple[str, float, int, bool]] = []  # label, reference share, count, out of range
    if reference_range is not None:
        lo, hi = (float(v) for v in reference_range)
        rows.append((f"< {_number(lo)} (below min)", 0.0, below_min, True))
    rows += [(str(label), r, c, False) for label, r, c in zip(labels, ref, cur, strict=True)]
    if reference_range is not None:
        rows.append((f"> {_number(hi)} (above max)", 0.0, above_max, True))

    shares = [(r, c / total if total else 0.0) for _, r, c, _ in rows]
    largest = max((max(pair) for pair in shares), default=0.0)
    scale = _BAR_WIDTH / largest if largest > 0 else 0.0

    name = _printable(title) if title else "feature"
    summary = (
        f"Histogram of {name}: reference against current proportions over {len(rows)} "
        f"buckets, {total} current values"
    )
    shown = bool(title) and show_title
    top = 20 if shown else 4
    legend_y = top
    first_row = legend_y + 14
    height = first_row + _ROW * len(rows) + 4
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="histogram" width="{_WIDTH}" '
        f'height="{height}" viewBox="0 0 {_WIDTH} {height}" role="img" '
        f'aria-label="{escape(summary)}" font-family="sans-serif" font-size="10">',
        f"<title>{escape(summary)}</title>",
    ]
    if shown:
        parts.append(
            f'<text x="0" y="13" font-size="12" font-weight="bold">'
            f"{escape(title, _TITLE_CHARS)}</text>"
        )
    parts.append(
        f'<g class="legend" aria-hidden="true">'
        f'<rect x="{_BAR_LEFT}" y="{legend_y}" width="10" height="8" fill="{REFERENCE_COLOUR}"/>'
        f'<text x="{_BAR_LEFT + 14}" y="{legend_y + 8}">reference</text>'
        f'<rect x="{_BAR_LEFT + 74}" y="{legend_y}" width="10" height="8" '
        f'fill="{CURRENT_COLOUR}"/>'
        f'<text x="{_BAR_LEFT + 88}" y="{legend_y + 8}">current</text></g>'
    )
    if total == 0:
        parts.append(
            f'<text x="{_VALUE_LEFT}" y="{legend_y + 8}" fill="#a40">no current values</text>'
        )
    for i, ((label, _, count, outside), (r, c)) in enumerate(zip(rows, shares, strict=True)):
        y = first_row + i * _ROW
        tooltip = (
            f"{_printable(label)}: reference {_pct(r)}, current {_pct(c)} ({count} of {total})"
        )
        kind = "bucket out-of-range" if outside else "bucket"
        style = ' font-style="italic"' if outside else ""
        parts.append(
            f'<g class="{kind}"><title>{escape(tooltip)}</title>'
            f'<text x="{_LABEL_RIGHT}" y="{y + 11}" text-anchor="end"{style}>'
            f"{escape(label, _LABEL_CHARS)}</text>"
            f'<rect class="ref" x="{_BAR_LEFT}" y="{y + 2}" width="{r * scale:.2f}" '
            f'height="{_BAR}" fill="{REFERENCE_COLOUR}"/>'
            f'<rect class="cur" x="{_BAR_LEFT}" y="{y + 2 + _BAR + 1}" width="{c * scale:.2f}" '
            f'height="{_BAR}" fill="{CURRENT_COLOUR}"/>'
            f'<text x="{_VALUE_LEFT}" y="{y + 11}" fill="#444">{_pct(r)} → {_pct(c)}</text></g>'
        )
    parts.append(
        f'<line x1="{_BAR_LEFT}" y1="{first_row}" x2="{_BAR_LEFT}" y2="{height - 4}" '
        'stroke="#888" stroke-width="1"/></svg>'
    )
    return "".join(parts)


def profile_histogram_svg(
    profile: FeatureProfile, current_values: Any, title: str = "", *, show_title: bool = True
) -> str:
    """:func:`feature_histogram_svg` of raw current values against a feature's profile.

    Missing values (NaN, inf, None) are left out, as the distance leaves them out.  Numeric
    buckets are labelled as intervals of the reference range and get the below-minimum and
    above-maximum bars; categorical ones are labelled by category (``__other__``,
    ``__unseen__`` included).
    """
    if isinstance(profile, NumericFeatureProfile):
        finite, _ = to_float_array(f"feature {profile.name!r}", current_values)
        counts = np.bincount(profile.bucketize(finite), minlength=profile.n_buckets)
        lo, hi = float(profile.sorted_values[0]), float(profile.sorted_values[-1])
        below, above = profile.out_of_range(finite)
        return feature_histogram_svg(
            numeric_bucket_labels(profile.edges, lo, hi),
            profile.ref_proportions,
            counts.tolist(),
            below,
            above,
            title,
            reference_range=(lo, hi),
            show_title=show_title,
        )
    if isinstance(profile, CategoricalFeatureProfile):
        keys, _ = to_category_keys(current_values)
        counts, _ = profile.count_keys(keys)
        return feature_histogram_svg(
            profile.bucket_labels,
            profile.ref_proportions,
            counts.tolist(),
            title=title,
            show_title=show_title,
        )
    raise TypeError(f"profile_histogram_svg: not a feature profile: {type(profile).__name__}")
