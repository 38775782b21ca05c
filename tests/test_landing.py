"""exporter.landing in-process: the header's figures, the refresh, the histograms (out-of-range
bars, the unseen bucket), well-formed HTML with hostile names, and the cache per snapshot."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from html.parser import HTMLParser
from types import MappingProxyType

import numpy as np
import pytest

from exporter import landing
from exporter.landing import (
    FeatureChart,
    LandingPage,
    LandingRenderer,
    LiveFigures,
    ModelPage,
    render_landing,
)
from exporter.pipeline import FeatureResult, Snapshot
from mlops_core.profile import ReferenceProfile

HOSTILE = ("<script>alert(1)</script>", 'q"uote', "a'pos", "</svg><b>x</b>", "amp&lt;")
VOID = {"meta", "br", "hr", "img", "input", "link"}
# SVG children written self-closed (<rect .../>) are complete elements; HTMLParser reports them
# through handle_startendtag, so they never reach the open-tag stack
PASS_AT = dt.datetime(2026, 12, 1, 12, 0, 0, tzinfo=dt.UTC).timestamp()


class _Tree(HTMLParser):
    """Open/close balance (well-formedness), the tags used, the id'd figures, the sections."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: set[str] = set()
        self.ids: dict[str, str] = {}
        self.sections: list[dict[str, str | None]] = []
        self.bars: list[str] = []  # each <g class=...> of the histograms
        self._id: str | None = None
        self.feed(html)
        self.close()
        if self.stack:
            self.errors.append(f"unclosed: {self.stack}")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.add(tag)
        if tag == "section" and "data-feature" in a:
            self.sections.append(a)
        if tag == "g" and a.get("class", "").startswith("bucket"):
            self.bars.append(a["class"] or "")
        if a.get("id"):
            self._id = a["id"]
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self._id is not None:
            self.ids[self._id] = data.strip()
            self._id = None


def _charts_and_snapshot(
    names: tuple[str, str] = ("income", "plan"),
) -> tuple[dict[str, FeatureChart], Snapshot]:
    """A numeric feature whose values moved above the reference maximum, and a categorical
    one with unseen categories; counts as the pass computes them."""
    rng = np.random.default_rng(4)
    numeric, categorical = names
    profile = ReferenceProfile.from_data(
        {
            numeric: rng.normal(size=2000),
            categorical: np.array(["a", "b", HOSTILE[0], HOSTILE[3]] * 500, dtype=object),
        }
    )
    charts = {n: FeatureChart.from_profile(profile.features[n]) for n in names}
    num = profile.features[numeric]
    values = np.concatenate([rng.normal(size=300), np.full(200, 50.0)])
    counts = np.bincount(num.bucketize(values), minlength=num.n_buckets)
    below, above = num.out_of_range(values)
    cat = profile.features[categorical]
    keys = np.array(["a"] * 100 + ["never-seen", "<i>new</i>"] * 50, dtype=object)
    cat_counts, _ = cat.count_keys(keys)
    drifted = FeatureResult(
        numeric, "numeric", 500, distance=0.4, lower_bound=0.33, detectable_distance=0.07,
        ks_statistic=0.4, ks_p_value=1e-30, psi=2.1, detected=MappingProxyType({"distance": True}),
        drifted=True, bucket_counts=tuple(int(c) for c in counts), below_min=below,
        above_max=above,
    )  # fmt: skip
    quiet = FeatureResult(
        categorical, "categorical", 200, distance=0.04, lower_bound=-0.05,
        detectable_distance=0.12, chi2_p_value=0.3, psi=0.01,
        detected=MappingProxyType({"distance": False}),
        bucket_counts=tuple(int(c) for c in cat_counts),
    )  # fmt: skip
    snap = Snapshot(
        PASS_AT, 0.01, 500, (quiet, drifted), MappingProxyType({}),
        MappingProxyType({0.5: 0.0123, 0.9: 0.0456, 0.99: 0.0789}), 2, 1e-3,
    )  # fmt: skip
    assert above == 200 and below == 0
    return charts, snap


LIVE = LiveFigures(
    lines_total=1234, predictions_total=1200, lines_per_second=56.78,
    invalid_by_reason=MappingProxyType({"invalid_json": 3, "wrong_type": 2, "never": 0}),
    files_watched=4, warnings=("logs.paths matches no file: <nowhere>/*.jsonl", "second one"),
)  # fmt: skip


def _page(charts: dict[str, FeatureChart]) -> LandingPage:
    return LandingPage("churn", "0.1.0", [("drift.interval", "15s")], refresh_seconds=15.0,
                       charts=charts)  # fmt: skip


def test_header_has_every_figure_the_issue_lists() -> None:
    charts, snap = _charts_and_snapshot()
    model = ModelPage("churn", "7", "Production", "registry", snap, charts, reference_rows=2000,
                      reference_hash="abc123")  # fmt: skip
    html = render_landing(_page(charts), snap, LIVE, now=PASS_AT + 42, models=[model])
    tree = _Tree(html)
    assert tree.errors == []
    assert "<meta http-equiv='refresh' content='15'>" in html  # refresh at the drift interval
    assert tree.ids["model-version"] == "7"  # the model's version, named as such
    assert "model version <b id='model-version'>" in html and "mlops-exporter 0.1.0" in html
    assert tree.ids["last-pass"] == "12:00:00 UTC" and "(42 s ago)" in html
    assert tree.ids["window-samples"] == "500"
    assert tree.ids["features-drifted"] == "1"
    assert tree.ids["lines-total"] == "1234" and "(56.8 lines/s)" in html
    assert "invalid_json 3, wrong_type 2" in html and "never 0" not in html
    assert tree.ids["files-watched"] == "4"
    assert (tree.ids["latency-p50"], tree.ids["latency-p90"], tree.ids["latency-p99"]) == (
        "12.3", "45.6", "78.9",
    )  # fmt: skip
    assert "<li class='warn'>logs.paths matches no file: &lt;nowhere&gt;/*.jsonl</li>" in html
    assert "<li class='warn'>second one</li>" in html
    assert "<script" not in html  # nothing to run, nothing fetched
    assert "src=" not in html and "<link" not in html


def test_no_pass_yet_says_so() -> None:
    html = render_landing(_page({}), Snapshot.empty(3), LIVE, now=PASS_AT)
    assert "no pass yet" in html and "No drift computation yet." in html
    assert _Tree(html).errors == []


def test_histograms_show_what_the_distance_sees() -> None:
    charts, snap = _charts_and_snapshot()
    tree = _Tree(render_landing(_page(charts), snap, LIVE, now=PASS_AT))
    assert [(s["data-feature"], s["data-verdict"]) for s in tree.sections] == [
        ("income", "drifted"), ("plan", "ok"),
    ]  # fmt: skip
    html = render_landing(_page(charts), snap, LIVE, now=PASS_AT)
    numeric, categorical = html.split("data-feature='plan'")
    # the numeric chart: a bar below the minimum and one above the maximum, where the
    # 200 values at 50 are (40% of the window), not in the last quantile bucket
    assert "(below min)" in numeric and "(above max)" in numeric
    assert "above max): reference 0%, current 40% (200 of 500)" in numeric
    assert "__unseen__: reference 0%, current 50% (100 of 200)" in categorical
    assert "(below min)" not in categorical
    for label, figure in (
        ("KS distance", "0.4 (tolerance 0.05)"),
        ("detectable", "0.07"),
        ("p-value", "KS 1e-30"),
        ("PSI", "2.1"),
        ("samples", "500"),
    ):
        assert f"<th>{label}</th><td>{figure}</td>" in numeric, label  # fmt: skip
    assert "<th>p-value</th><td>&chi;&sup2; 0.3</td>" in categorical
    assert tree.bars.count("bucket out-of-range") == 2


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_feature_and_category_names_are_text(hostile: str) -> None:
    charts, snap = _charts_and_snapshot((hostile, hostile + "-cat"))
    page = LandingPage(hostile, "0.1.0", [(hostile, hostile)], charts=charts)
    live = LiveFigures(invalid_by_reason={hostile: 1}, warnings=(hostile,))
    html = render_landing(page, snap, live, now=PASS_AT)
    tree = _Tree(html)
    assert tree.errors == []
    assert tree.tags <= {"html", "head", "meta", "title", "style", "body", "header", "h1", "p",
                         "a", "dl", "dt", "dd", "b", "span", "ul", "li", "h2", "div", "section",
                         "h3", "small", "table", "tr", "th", "td", "svg", "g", "text",
                         "rect", "line"}, tree.tags  # fmt: skip
    assert {s["data-feature"] for s in tree.sections} == {hostile, hostile + "-cat"}
    assert "<script>" not in html and "<b>x" not in html and "<i>new" not in html


def _count_drawn(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The features whose histogram is drawn from now on, in order."""
    drawn: list[str] = []
    real = landing.feature_histogram_svg

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        drawn.append(args[5])
        return real(*args, **kwargs)

    monkeypatch.setattr(landing, "feature_histogram_svg", counting)
    return drawn


def test_a_view_renders_the_histograms_once_per_snapshot(monkeypatch: pytest.MonkeyPatch) -> None:
    charts, snap = _charts_and_snapshot()
    drawn = _count_drawn(monkeypatch)
    current = {"snap": snap}
    lines = iter(range(100, 200))
    renderer = LandingRenderer(
        _page(charts), lambda: current["snap"], lambda: LiveFigures(lines_total=next(lines))
    )
    first = renderer.render().decode()
    second = renderer.render().decode()
    assert sorted(drawn) == ["income", "plan"]  # the second view drew nothing
    assert "id='lines-total'>100<" in first and "id='lines-total'>101<" in second  # live
    assert first.split("<h2>Drift</h2>")[1] == second.split("<h2>Drift</h2>")[1]
    assert _Tree(second).errors == []

    current["snap"] = replace(snap, computed_at=PASS_AT + 15)  # a new pass: drawn again
    third = renderer.render().decode()
    assert len(drawn) == 4 and "12:00:15 UTC" in third
    renderer.page = _page(charts)  # a reload: a new page object, drawn again
    renderer.render()
    assert len(drawn) == 6


def test_a_pass_draws_the_histograms_while_someone_watches_the_page(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The page refreshes itself once per pass, so each view would be the first after a new
    snapshot: warm() (called after each pass) draws them on the scheduler's thread, but only
    while the page has been viewed lately."""
    charts, snap = _charts_and_snapshot()
    drawn = _count_drawn(monkeypatch)
    now = {"t": 0.0}
    current = {"snap": snap}
    renderer = LandingRenderer(
        _page(charts), lambda: current["snap"], lambda: LiveFigures(), clock=lambda: now["t"]
    )
    assert renderer.warm() is False and drawn == []  # nobody has looked: nothing drawn
    renderer.render()
    assert len(drawn) == 2
    current["snap"] = replace(snap, computed_at=PASS_AT + 15)
    now["t"] = 15.0
    assert renderer.warm() is True and len(drawn) == 4  # drawn by the pass...
    assert "12:00:15 UTC" in renderer.render().decode() and len(drawn) == 4  # ...not the view
    current["snap"] = replace(snap, computed_at=PASS_AT + 30)
    now["t"] = 15.0 + landing.WARM_FOR + 1  # no view for longer than WARM_FOR
    assert renderer.warm() is False and len(drawn) == 4
    renderer.render()
    assert len(drawn) == 6
