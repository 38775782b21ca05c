"""The reference-against-current histograms (mlops_core.report_svg) and the HTML drift report
(mlops_core.report, ``mlops drift --html``).

What is proved: the SVG parses as XML and its bar lengths are the inputs' proportions; a
point mass that leaves the reference range shows in the below-minimum / above-maximum bars
rather than as two identical bars; hostile feature and category names are text, never
markup, in the SVG and in the report; the report is well-formed (tags balance under
``html.parser``), says what drifted and with which settings, and stays small at 100 features;
and headless Chromium renders it with the drifted features first, each with its histogram
(a screenshot is kept, under ``MLOPS_TEST_ARTIFACTS`` when that is set).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlops_core.cli import profile as profile_cli
from mlops_core.drift import analyze_feature_drift, evaluate_drift
from mlops_core.profile import NumericFeatureProfile, ReferenceProfile, read_data_file
from mlops_core.report import drift_report_html, ordered_features
from mlops_core.report_svg import (
    escape,
    feature_histogram_svg,
    numeric_bucket_labels,
    profile_histogram_svg,
)
from tests.conftest import REPO_ROOT, require_binary

EXAMPLES = REPO_ROOT / "examples"
SVG = "{http://www.w3.org/2000/svg}"
FIXED_TIME = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

# The exporter's hostile names (tests/e2e/test_exporter_metrics.py), plus attribute breakers,
# a closing tag, control and bidi characters, and a lone surrogate (JSON can carry one).
HOSTILE_NAMES = (
    'q"uote',
    "new\nline",
    "back\\slash",
    "ünï€ode",
    "<script>x</script>",
    "' onmouseover='alert(1)",
    '" onload="alert(1)',
    "</svg><script>alert(1)</script>",
    "nul\x00and\x1besc",
    "rtl\u202eoverride",
)
HOSTILE_CATEGORIES = ('b"x', "<i>c</i>", "<img src=x onerror=alert(1)>", "&amp;", "\ud800lone")


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="mlops")
    profile_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def rows_of(svg: str) -> list[dict[str, Any]]:
    """Each bucket row of a histogram: label, tooltip, bar widths, out-of-range or not."""
    root = ET.fromstring(svg)
    rows = []
    for g in root.iter(f"{SVG}g"):
        classes = g.get("class", "").split()
        if "bucket" not in classes:
            continue
        rects = {r.get("class"): float(r.get("width", "nan")) for r in g.iter(f"{SVG}rect")}
        label = next(t for t in g.iter(f"{SVG}text"))
        rows.append(
            {
                "label": label.text,
                "title": g.find(f"{SVG}title").text,
                "ref": rects["ref"],
                "cur": rects["cur"],
                "outside": "out-of-range" in classes,
            }
        )
    return rows


# --- the SVG -------------------------------------------------------------------------------


def test_histogram_is_well_formed_svg_with_an_accessible_name() -> None:
    svg = feature_histogram_svg(["a", "b"], [0.5, 0.5], [3, 1], title="plan")
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img" and "plan" in root.get("aria-label")
    assert root[0].tag == f"{SVG}title"  # the chart's name, first child as SVG wants it
    assert [r["title"] for r in rows_of(svg)] == [
        "a: reference 50%, current 75% (3 of 4)",
        "b: reference 50%, current 25% (1 of 4)",
    ]
    assert not list(root.iter(f"{SVG}script")) and "<script" not in svg


def test_bar_lengths_are_proportional_to_the_proportions() -> None:
    ref = [0.5, 0.3, 0.2, 0.0]
    counts = [10, 30, 60, 0]  # current 0.1, 0.3, 0.6, 0
    rows = rows_of(feature_histogram_svg(["a", "b", "c", "d"], ref, counts))
    cur = [c / sum(counts) for c in counts]
    widths = [(r["ref"], r["cur"]) for r in rows]
    largest = max(w for pair in widths for w in pair)
    for (ref_w, cur_w), p, q in zip(widths, ref, cur, strict=True):
        assert ref_w == pytest.approx(p / 0.6 * largest, abs=0.01)
        assert cur_w == pytest.approx(q / 0.6 * largest, abs=0.01)
    assert widths[3] == (0.0, 0.0)


def test_numeric_histogram_has_interval_labels_and_both_out_of_range_bars() -> None:
    profile = NumericFeatureProfile.from_values("x", np.arange(1, 11, dtype=float), buckets=2)
    rows = rows_of(profile_histogram_svg(profile, np.array([0.0, 3.0, 7.0, 12.0, 13.0])))
    assert [r["label"] for r in rows] == [
        "< 1 (below min)",
        "[1, 5]",
        "(5, 10]",
        "> 10 (above max)",
    ]
    assert [r["outside"] for r in rows] == [True, False, False, True]
    assert rows[0]["title"].endswith("(1 of 5)") and rows[3]["title"].endswith("(2 of 5)")
    assert rows[1]["title"].endswith("(1 of 5)") and rows[2]["title"].endswith("(1 of 5)")
    assert numeric_bucket_labels([5.0], 1.0, 10.0) == ["[1, 5]", "(5, 10]"]


def test_point_mass_moving_below_the_minimum_shows_as_the_shift_it_is() -> None:
    """A reference of zeros against a window of -1: the bucket counts alone cannot tell them
    apart (both are all in the open-ended first bucket), the out-of-range bar can."""
    profile = NumericFeatureProfile.from_values("x", np.zeros(500), buckets=10)
    current = np.full(200, -1.0)
    counts, _ = profile.bucket_counts(current)
    assert counts.tolist()[0] == 200 and profile.ref_proportions[0] == 1.0  # identical bars
    rows = rows_of(profile_histogram_svg(profile, current))
    below, first = rows[0], rows[1]
    assert below["outside"] and below["ref"] == 0.0 and below["cur"] > 0
    assert first["ref"] == below["cur"] and first["cur"] == 0.0
    assert sum(r["cur"] for r in rows[1:]) == 0.0


def test_point_mass_moving_above_the_maximum_shows_in_the_last_bar() -> None:
    profile = NumericFeatureProfile.from_values("x", np.zeros(500), buckets=10)
    rows = rows_of(profile_histogram_svg(profile, np.full(50, 3.0)))
    assert rows[-1]["outside"] and rows[-1]["cur"] > 0 and rows[-1]["ref"] == 0.0
    assert all(r["cur"] == 0.0 for r in rows[:-1])


def test_unseen_categories_get_their_bar() -> None:
    reference = {"plan": np.array(["basic"] * 60 + ["pro"] * 40)}
    profile = ReferenceProfile.from_data(reference)
    rows = rows_of(profile_histogram_svg(profile["plan"], ["basic", "pro", "enterprise", "x"]))
    assert [r["label"] for r in rows] == ["basic", "pro", "__other__", "__unseen__"]
    assert rows[-1]["ref"] == 0.0 and rows[-1]["cur"] > 0
    assert rows[-1]["title"] == "__unseen__: reference 0%, current 50% (2 of 4)"


def test_missing_values_are_left_out_as_the_distance_leaves_them_out() -> None:
    profile = NumericFeatureProfile.from_values("x", np.arange(10, dtype=float), buckets=2)
    rows = rows_of(profile_histogram_svg(profile, [1.0, np.nan, None, np.inf, 8.0]))
    assert rows[1]["title"].endswith("(1 of 2)") and rows[2]["title"].endswith("(1 of 2)")


def test_no_current_values_draws_no_current_bar() -> None:
    svg = feature_histogram_svg(["a", "b"], [0.5, 0.5], [0, 0])
    assert "no current values" in svg
    assert all(r["cur"] == 0.0 for r in rows_of(svg))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cur_counts": [1]}, "one of each per bucket"),
        ({"ref_proportions": [0.5, -0.1]}, "must be >= 0"),
        ({"below_min": 1}, "need reference_range"),
        ({"below_min": 3, "reference_range": (0.0, 1.0)}, "exceed the first/last"),
        ({"above_max": 3, "reference_range": (0.0, 1.0)}, "exceed the first/last"),
        ({"cur_counts": [1, -1]}, "counts must be >= 0"),
    ],
)
def test_inconsistent_inputs_are_refused(kwargs: dict[str, Any], message: str) -> None:
    args = {"labels": ["a", "b"], "ref_proportions": [0.5, 0.5], "cur_counts": [2, 2], **kwargs}
    with pytest.raises(ValueError, match=message):
        feature_histogram_svg(**args)


def test_hostile_names_in_the_svg_are_text_not_markup() -> None:
    labels = list(HOSTILE_NAMES)
    for title in HOSTILE_NAMES:
        svg = feature_histogram_svg(labels, [0.1] * len(labels), [1] * len(labels), title=title)
        svg.encode("utf-8")  # a lone surrogate would make it unwritable
        root = ET.fromstring(svg)  # a NUL or an unescaped quote would make it unparsable
        tags = {el.tag.removeprefix(SVG) for el in root.iter()}
        assert tags <= {"svg", "title", "text", "g", "rect", "line"}, tags
        attributes = {name for el in root.iter() for name in el.attrib}
        assert not any(a.lower().startswith("on") for a in attributes), attributes
        titles = [r["title"] for r in rows_of(svg)]
        for name, tooltip in zip(HOSTILE_NAMES, titles, strict=True):
            shown = tooltip.split(": reference")[0]
            if name.isprintable() and "\u202e" not in name:
                assert shown == name  # exactly the name, as text
        assert "new\\nline" in titles[1] and "nul\\x00and\\x1besc" in titles[8]
        assert "rtl\\u202eoverride" in titles[9]


def test_escape_covers_quotes_controls_and_cuts_before_escaping() -> None:
    assert escape('<a href="x">\'') == "&lt;a href=&quot;x&quot;&gt;&#x27;"
    assert escape("a\nb\x00\u2028\ud800") == "a\\nb\\x00\\u2028\\ud800"
    assert escape("&&&&&&", limit=4) == "&amp;&amp;&amp;…"  # no half entity


# --- the HTML report ---------------------------------------------------------------------------

VOID = {"meta", "br", "img", "hr", "input", "link"}
# boundaries that separate words in the rendered text (cells, paragraphs, headings, labels)
BLOCKS = {"td", "th", "tr", "p", "h1", "h2", "h3", "section", "div", "title", "style", "text"}
REPORT_TAGS = {
    "html", "head", "meta", "title", "style", "body", "header", "main", "footer", "h1", "h2",
    "h3", "p", "b", "a", "bdi", "span", "code", "table", "thead", "tbody", "tr", "th", "td",
    "section", "div", "svg", "g", "rect", "text", "line",
}  # fmt: skip


class Document(HTMLParser):
    """Checks that tags balance (void elements aside, ``<x/>`` allowed) and records the
    tags, attributes, text and feature sections of a document."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self.text: list[str] = []
        self.sections: list[dict[str, Any]] = []
        self.feed(text)
        self.close()
        if self.stack:
            self.errors.append(f"unclosed at the end: {self.stack}")

    def plain_text(self) -> str:
        """The text with whitespace collapsed, a space between cells and paragraphs."""
        return " ".join("".join(self.text).split())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in BLOCKS:
            self.text.append(" ")
        self._element(tag, attrs)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._element(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in BLOCKS:
            self.text.append(" ")
        if tag in VOID:
            self.errors.append(f"end tag of void element {tag}")
        elif not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def _element(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes.update(name for name, _ in attrs)
        values = dict(attrs)
        if tag == "section" and "feature" in (values.get("class") or "").split():
            self.sections.append({**values, "svgs": 0, "bars": 0})
        elif self.sections and "section" in self.stack:
            if tag == "svg":
                self.sections[-1]["svgs"] += 1
            elif tag == "rect" and values.get("class") == "cur":
                self.sections[-1]["bars"] += 1


@pytest.fixture(scope="module")
def example_report() -> tuple[str, dict[str, Any]]:
    profile = ReferenceProfile.from_file(EXAMPLES / "reference.csv")
    current = read_data_file(EXAMPLES / "current.csv")
    result = analyze_feature_drift(profile, current, profile.feature_names)
    sources = {"reference": "reference.csv", "current": "current.csv"}
    return drift_report_html(
        profile, current, result, sources=sources, generated_at=FIXED_TIME
    ), result


def test_report_is_well_formed_html_and_xml(example_report: tuple[str, dict[str, Any]]) -> None:
    html, _ = example_report
    doc = Document(html)
    assert doc.errors == []
    assert doc.tags <= REPORT_TAGS, doc.tags - REPORT_TAGS
    ET.fromstring(html.split("\n", 1)[1])  # without the doctype: well-formed XML too
    assert "<script" not in html and "http://" not in html.replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )  # nothing to run, nothing to fetch


def test_report_summary_says_what_drifted_and_the_settings(
    example_report: tuple[str, dict[str, Any]],
) -> None:
    html, result = example_report
    text = Document(html).plain_text()
    assert "Drift in 2 of 4 features (50%): income, plan." in text
    for fact in (
        "reference.csv: 2000 rows, profile hash 663a741060ec3605",
        "current.csv: 500 rows",
        "Tolerance 0.05 for every feature",
        "Level 0.05 for every feature",
        "Correction none",
        "numeric: ks, psi; categorical: chi2, psi",
        "4 compared (3 numeric, 1 categorical)",
        "2026-12-01T12:00:00+00:00",
    ):
        assert fact in text, fact
    income = result["features"]["income"]
    for fact in (
        f"{income['distance']:.4g} (KS distance) ≥ tolerance 0.05",
        f"Lower bound {income['lower_bound']:.4g}",
        f"Detectable distance {income['detectable_distance']:.4g}",
        "Basis bound: DKW confidence bound at level 0.05",
        f"KS p = {income['ks']['p_value']:.3g} (exact)",
        f"PSI {income['psi']['psi']:.4g} over 10 buckets",
        "2000 reference, 500 current values",
        "χ² p = ",
        "Unseen categories 59 current values (11.8%)",
    ):
        assert fact in text, fact


def test_report_sections_put_drifted_features_first_each_with_a_histogram(
    example_report: tuple[str, dict[str, Any]],
) -> None:
    doc = Document(example_report[0])
    verdicts = [(s["data-feature"], s["data-verdict"]) for s in doc.sections]
    assert verdicts == [("income", "drift"), ("plan", "drift"), ("tenure_months", "ok"),
                        ("age", "ok")]  # fmt: skip
    assert all(s["svgs"] == 1 and s["bars"] >= 5 for s in doc.sections)


def test_ordered_features_drifted_first_then_largest_distance() -> None:
    features = {
        "a": {"drift_detected": False, "distance": 0.01},
        "b": {"drift_detected": True, "distance": 0.2},
        "c": {"drift_detected": False, "distance": None},
        "d": {"drift_detected": False, "distance": 0.04},
        "e": {"drift_detected": True, "distance": 0.5},
    }
    assert ordered_features(features) == ["e", "b", "d", "a", "c"]


def test_typed_drift_report_gives_the_same_sections_as_the_dict() -> None:
    profile = ReferenceProfile.from_file(EXAMPLES / "reference.csv")
    current = read_data_file(EXAMPLES / "current.csv")
    typed = evaluate_drift(profile, current, profile.feature_names)
    as_dict = analyze_feature_drift(profile, current, profile.feature_names)
    one = Document(drift_report_html(profile, current, typed, generated_at=FIXED_TIME))
    two = Document(drift_report_html(profile, current, as_dict, generated_at=FIXED_TIME))
    assert one.errors == [] and one.sections == two.sections


def test_report_refuses_a_result_for_another_profile() -> None:
    profile = ReferenceProfile.from_data({"a": np.arange(50.0)})
    result = analyze_feature_drift({"b": np.arange(50.0)}, {"b": np.arange(50.0)}, ["b"])
    with pytest.raises(ValueError, match="'b' is not in the reference profile"):
        drift_report_html(profile, {"b": np.arange(50.0)}, result)


def _hostile_csvs(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(5)
    paths = []
    for name, shift, n in (("ref.csv", 0.0, 400), ("cur.csv", 3.0, 200)):
        path = tmp_path / name
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow([*HOSTILE_NAMES[:8], "cat<b>"])
            for _ in range(n):
                cats = HOSTILE_CATEGORIES[:4] if shift == 0 else HOSTILE_CATEGORIES[2:4]
                writer.writerow([*(rng.normal(shift, 1, size=8)), rng.choice(cats)])
        paths.append(path)
    return paths[0], paths[1]


def test_hostile_feature_and_category_names_inject_no_markup(tmp_path: Path) -> None:
    """Names from a CSV header and categories from its cells, through ``mlops drift --html``."""
    reference, current = _hostile_csvs(tmp_path)
    out = tmp_path / "report.html"
    assert run_cli(["drift", str(reference), str(current), "--html", str(out)]) == 0
    html = out.read_text(encoding="utf-8")
    doc = Document(html)
    assert doc.errors == []
    assert doc.tags <= REPORT_TAGS, doc.tags - REPORT_TAGS  # no script, img, i, b from data
    assert not any(a.startswith("on") for a in doc.attributes), doc.attributes
    ET.fromstring(html.split("\n", 1)[1])
    names = {s["data-feature"] for s in doc.sections}
    assert names == {*HOSTILE_NAMES[:8], "cat<b>"} - {"new\nline"} | {"new\\nline"}
    text = "".join(doc.text)
    for shown in ("<script>x</script>", "</svg><script>alert(1)</script>", "cat<b>",
                  "<img src=x onerror=alert(1)>", "<i>c</i>", 'b"x'):  # fmt: skip
        assert shown in text, shown  # shown as text, after the parser unescaped it
    # every feature drifted (a shift of 3 sigma; the categorical one lost a category)
    assert {s["data-verdict"] for s in doc.sections} == {"drift"}


def test_report_of_a_null_bidi_and_surrogate_name_is_writable(tmp_path: Path) -> None:
    names = HOSTILE_NAMES[8:]  # NUL/ESC, U+202E; plus a category with a lone surrogate
    rng = np.random.default_rng(1)
    reference = {n: rng.normal(size=300) for n in names}
    reference["c"] = np.array(list(HOSTILE_CATEGORIES) * 60, dtype=object)
    current = {n: rng.normal(size=100) for n in names}
    current["c"] = np.array(list(HOSTILE_CATEGORIES[::-1]) * 20, dtype=object)
    profile = ReferenceProfile.from_data(reference)
    result = analyze_feature_drift(profile, current, list(reference))
    html = drift_report_html(profile, current, result)
    html.encode("utf-8")
    ET.fromstring(html.split("\n", 1)[1])
    assert "\x00" not in html and "\u202e" not in html and "nul\\x00and\\x1besc" in html


def test_100_feature_report_stays_small() -> None:
    """50 numeric features of 10 buckets and 50 categorical ones of 20 kept categories (the
    largest charts a default profile draws): the whole file stays well under 2 MB."""
    rng = np.random.default_rng(7)
    categories = np.array([f"category-{i:02d}" for i in range(30)])
    reference: dict[str, Any] = {}
    current: dict[str, Any] = {}
    for i in range(50):
        reference[f"numeric_{i:02d}"] = rng.normal(size=5000)
        current[f"numeric_{i:02d}"] = rng.normal(0.3 * (i % 2), size=2000)
        reference[f"categorical_{i:02d}"] = rng.choice(categories, size=5000)
        current[f"categorical_{i:02d}"] = rng.choice(categories[: 25 + i % 6], size=2000)
    profile = ReferenceProfile.from_data(reference)
    result = analyze_feature_drift(profile, current, list(reference))
    html = drift_report_html(profile, current, result)
    size = len(html.encode("utf-8"))
    assert Document(html).errors == []
    assert len(Document(html).sections) == 100
    assert size < 2_000_000, f"{size} bytes"
    print(f"100-feature report: {size} bytes")


# --- the command line -------------------------------------------------------------------------


def test_drift_json_and_html_together_keep_stdout_one_json_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.html"
    argv = ["drift", str(EXAMPLES / "reference.csv"), str(EXAMPLES / "current.csv")]
    assert run_cli([*argv, "--json", "--html", str(out), "--tolerance", "0.1",
                    "--correction", "bonferroni"]) == 0  # fmt: skip
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert captured.err.strip() == f"wrote {out}: {report['n_drifted']} of 4 features drifted"
    text = Document(out.read_text(encoding="utf-8")).plain_text()
    assert "Tolerance 0.1 for every feature" in text
    assert "Level 0.0125 for every feature, after the bonferroni correction" in text
    assert "Correction bonferroni" in text


def test_drift_html_notes_features_the_current_data_lacks(tmp_path: Path) -> None:
    current = tmp_path / "cur.csv"
    rows = list(csv.reader((EXAMPLES / "current.csv").open(encoding="utf-8")))
    keep = [rows[0].index(c) for c in ("age", "plan")]
    with current.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([[r[i] for i in keep] for r in rows])
    out = tmp_path / "r.html"
    assert run_cli(["drift", str(EXAMPLES / "reference.csv"), str(current), "--html",
                    str(out)]) == 0  # fmt: skip
    text = Document(out.read_text(encoding="utf-8")).plain_text()
    assert f"not in {current}: income, tenure_months" in text


def test_unwritable_html_path_is_a_one_line_error(tmp_path: Path) -> None:
    out = tmp_path / "missing-dir" / "r.html"
    proc = subprocess.run(
        [sys.executable, "-m", "mlops_core.cli", "drift", str(EXAMPLES / "reference.csv"),
         str(EXAMPLES / "current.csv"), "--html", str(out)],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.startswith("mlops drift: error: ") and len(proc.stderr.splitlines()) == 1


# --- headless Chromium ------------------------------------------------------------------------


def _keep_artifact(path: Path) -> None:
    """Copy a test artifact (a screenshot) to ``$MLOPS_TEST_ARTIFACTS`` when it is set."""
    target = os.environ.get("MLOPS_TEST_ARTIFACTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, Path(target) / path.name)


def _chromium(binary: str, profile_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={profile_dir}", *args],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip


@pytest.mark.slow
def test_chromium_renders_the_report_drifted_features_first_with_their_svg(
    tmp_path: Path,
) -> None:
    chromium = require_binary("chromium")
    out = tmp_path / "drift-report.html"
    subprocess.run(
        [sys.executable, "-m", "mlops_core.cli", "drift", str(EXAMPLES / "reference.csv"),
         str(EXAMPLES / "current.csv"), "--html", str(out)],
        check=True, capture_output=True, cwd=REPO_ROOT, timeout=120,
    )  # fmt: skip
    url = out.resolve().as_uri()
    dom = _chromium(chromium, tmp_path / "chrome", "--dump-dom", url).stdout
    doc = Document(dom)
    assert [s["data-verdict"] for s in doc.sections] == ["drift", "drift", "ok", "ok"]
    assert [s["data-feature"] for s in doc.sections[:2]] == ["income", "plan"]
    for section in doc.sections:  # parsed by the browser: one chart per feature, with its bars
        assert section["svgs"] == 1 and section["bars"] >= 5, section
    assert re.search(r"Drift in\s*<b>2 of 4</b>", dom)
    shot = tmp_path / "drift-report.png"
    _chromium(chromium, tmp_path / "chrome", f"--screenshot={shot}", "--window-size=1280,2000",
              url)  # fmt: skip
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    _keep_artifact(shot)
