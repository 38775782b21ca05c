"""The landing page of a running demo, rendered by headless Chromium before and after the
injected drift: drifted features first with their histogram, header figures as /metrics.

Screenshots are kept under ``MLOPS_TEST_ARTIFACTS`` when it is set.
"""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.conftest import require_binary
from tests.e2e._exporter import start_exporter

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


class _Page(HTMLParser):
    """Feature sections (attributes, SVGs and bars inside) and the header's id'd figures."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.sections: list[dict] = []
        self.figures: dict[str, str] = {}
        self._depth = 0  # inside a feature section while > 0
        self._figure: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section" and "data-feature" in a:
            self.sections.append({**a, "svgs": 0, "bars": 0})
            self._depth = 1
        elif self._depth and tag == "section":
            self._depth += 1
        if self._depth and tag == "svg":
            self.sections[-1]["svgs"] += 1
        if self._depth and tag == "rect":
            self.sections[-1]["bars"] += 1
        if tag == "span" and a.get("id"):
            self._figure = a["id"]

    def handle_endtag(self, tag: str) -> None:
        if self._depth and tag == "section":
            self._depth -= 1

    def handle_data(self, data: str) -> None:
        if self._figure is not None:
            self.figures[self._figure] = data.strip()
            self._figure = None


def _dom(chromium: str, profile: Path, url: str) -> str:
    proc = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={profile}", "--dump-dom", url],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return proc.stdout


def _screenshot(chromium: str, profile: Path, url: str, path: Path) -> None:
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={profile}", f"--screenshot={path}", "--window-size=1280,2400", url],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    target = os.environ.get("MLOPS_TEST_ARTIFACTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, Path(target) / path.name)


def _stable(exp, chromium: str, profile: Path) -> tuple[_Page, object, object]:
    """A page between two scrapes of the same snapshot (a pass may land between them)."""
    for _ in range(10):
        before = exp.scrape()
        page = _Page(_dom(chromium, profile, exp.url + "/"))
        after = exp.scrape()
        stamp = "mlops_drift_last_computed_timestamp_seconds"
        if before.get(stamp, model="churn") == after.get(stamp, model="churn"):
            return page, before, after
        time.sleep(0.2)
    raise AssertionError("the snapshot changed during every page view")


def _header_matches_metrics(page: _Page, before, after) -> None:
    """Each header figure against /metrics: the snapshot's exactly, the live counters within
    the two scrapes around the view (the demo keeps writing lines)."""
    m = {"model": "churn"}
    assert page.figures["features-drifted"] == str(int(after.get("mlops_features_drifted", **m)))
    window = after.get("mlops_drift_window_samples", **m)
    assert page.figures["window-samples"] == str(int(window))
    stamp = after.get("mlops_drift_last_computed_timestamp_seconds", **m)
    expected = datetime.datetime.fromtimestamp(stamp, datetime.UTC).strftime("%H:%M:%S UTC")
    assert page.figures["last-pass"] == expected
    lines = int(page.figures["lines-total"])
    lines_before = before.get("mlops_log_lines_total", **m)
    assert lines_before <= lines <= after.get("mlops_log_lines_total", **m)
    assert int(page.figures["files-watched"]) == after.get("mlops_log_files_watched")
    for q in ("0.5", "0.9", "0.99"):
        seconds = after.get("mlops_prediction_latency_window_seconds", quantile=q, **m)
        shown = page.figures[f"latency-p{round(float(q) * 100)}"]
        assert shown == f"{seconds * 1000:.1f}", (q, shown, seconds)


def test_demo_landing_page_before_and_after_the_drift(tmp_path: Path) -> None:
    chromium = require_binary("chromium")
    exp = start_exporter(None, args=["--demo", "--demo.drift-after=8", "--demo.interval=2s"])
    try:
        exp.wait_for(
            lambda s: s.get("mlops_features_drifted", model="churn") == 0, what="a first verdict"
        )
        page, before, after = _stable(exp, chromium, tmp_path / "chrome")
        assert len(page.sections) == 7  # six features and the model's outputs
        assert all(s["data-verdict"] == "ok" for s in page.sections)
        assert all(s["svgs"] == 1 and s["bars"] >= 4 for s in page.sections), page.sections
        assert page.figures["features-drifted"] == "0"
        _header_matches_metrics(page, before, after)
        _screenshot(chromium, tmp_path / "chrome", exp.url + "/", tmp_path / "landing-before.png")

        exp.wait_for(
            lambda s: s.get("mlops_features_drifted", model="churn") == 3,
            timeout=60,
            what="drift in monthly_charges, plan and __prediction__",
        )
        page, before, after = _stable(exp, chromium, tmp_path / "chrome")
        verdicts = [(s["data-feature"], s["data-verdict"]) for s in page.sections]
        drifted = {"monthly_charges", "plan", "__prediction__"}
        assert {name for name, v in verdicts[:3]} == drifted
        assert [v for _, v in verdicts] == ["drifted"] * 3 + ["ok"] * 4
        assert all(s["svgs"] == 1 for s in page.sections[:3])
        _header_matches_metrics(page, before, after)
        _screenshot(chromium, tmp_path / "chrome", exp.url + "/", tmp_path / "landing-after.png")
    finally:
        assert exp.stop() == 0
