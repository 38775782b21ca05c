"""exporter.collector: every metric of the issue, from real snapshots, in both formats."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families

from exporter import metrics
from exporter.collector import MlopsCollector, ReferenceInfo
from exporter.ingest import IngestCounters
from exporter.pipeline import DriftSettings, Snapshot, capture, compute_snapshot
from exporter.records import RecordParser
from exporter.window import Window
from mlops_core.profile import ReferenceProfile

FEATURES = {"age": "numeric", "plan": "categorical"}

# name -> (type, label names), from the one catalog; the alerting family needs an alerts:
# section, which the harness does not configure
EXPECTED = {
    spec.name: (spec.kind, set(spec.labels))
    for spec in metrics.CATALOG
    # served only with an alerts: section / with outcomes: tested in their own files
    if spec.area not in ("alerting", "quality", "models")
}
#: the drift pass's per-feature figures: absent until a feature has drift.min_samples values
DRIFT_ONLY = {
    spec.name
    for spec in metrics.CATALOG
    if spec.area == "drift"
    and "feature" in spec.labels
    and spec.name != "mlops_feature_missing_ratio"
} | {"mlops_features_drifted", "mlops_features_drifted_ratio"}


@pytest.fixture(scope="module")
def profile() -> ReferenceProfile:
    rng = np.random.default_rng(0)
    return ReferenceProfile.from_data(
        {"age": rng.normal(40, 10, 3000), "plan": rng.choice(["a", "b", "c"], 3000)}
    )


def lines(n: int, shift: float = 0.0, seed: int = 1) -> list[bytes]:
    rng = np.random.default_rng(seed)
    return [
        orjson.dumps(
            {
                "event": "prediction",
                "request_id": f"req-{i}",
                "input_data": {
                    "age": float(rng.normal(40 + shift, 10)),
                    "plan": str(rng.choice(["a", "b", "c"])),
                },
                "prediction": {"class": f"k{i % 30}"},
                "latency_ms": float(rng.lognormal(3, 0.5)),
            }
        )
        for i in range(n)
    ]


class Harness:
    def __init__(self, profile: ReferenceProfile, *, max_classes: int = 20) -> None:
        self.profile = profile
        self.parser = RecordParser(FEATURES)
        self.window = Window(profile, list(FEATURES), max_samples=5000)
        self.counters = IngestCounters(profile, list(FEATURES), max_classes=max_classes)
        self.snapshot = Snapshot.empty(len(FEATURES))
        self.errors = 0
        self.collector = MlopsCollector(
            "churn",
            ReferenceInfo.from_profile(profile, list(FEATURES)),
            snapshot=lambda: self.snapshot,
            counters=self.counters.snapshot,
            errors=lambda: self.errors,
            version="9.9.9",
        )
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.collector)

    def feed(self, batch_lines: list[bytes]) -> None:
        batch = self.parser.parse(batch_lines)
        self.window.add(batch)
        self.counters.add_batch(batch)

    def compute(self, min_samples: int = 100) -> None:
        data = capture(self.window, FEATURES)
        self.snapshot = compute_snapshot(
            data, self.profile, FEATURES, DriftSettings(min_samples=min_samples)
        )

    def families(self) -> dict:
        text = generate_latest(self.registry).decode()
        return {f.name: f for f in text_string_to_metric_families(text)}


def samples(family) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples}


def test_every_metric_of_the_issue_with_its_type_and_labels(profile) -> None:
    h = Harness(profile)
    h.feed(lines(500, shift=15))
    h.compute()
    fams = h.families()
    assert len(EXPECTED) >= 30
    for name, (mtype, labels) in EXPECTED.items():
        assert name in fams, name
        assert fams[name].type == mtype, name
        assert fams[name].samples, f"{name} has no sample"
        for s in fams[name].samples:
            extra = {"le"} if mtype == "histogram" else set()
            if mtype == "summary" and s.name == name:
                extra = {"quantile"}  # the quantile samples; _count and _sum have none
            assert set(s.labels) - extra == labels, (name, s.labels)
    for name in (*DRIFT_ONLY, "mlops_prediction_latency_window_seconds"):
        if name == "mlops_feature_drift_tolerance":
            continue  # a setting, not computed
        help_text = fams[name].documentation.lower()
        assert "computed in the background every drift.interval" in help_text, name
    for name, family in fams.items():  # every HELP says something beyond the name
        assert len(family.documentation.split()) >= 4, name


def test_drift_gauges_absent_before_min_samples(profile) -> None:
    h = Harness(profile)
    fams = h.families()
    for name in DRIFT_ONLY | {"mlops_drift_window_samples"}:
        assert name not in fams or not fams[name].samples, name
    h.feed(lines(50))
    h.compute(min_samples=100)
    fams = h.families()
    for name in DRIFT_ONLY:
        assert name not in fams or not fams[name].samples, name
    assert samples(fams["mlops_drift_window_samples"]) == {
        ("mlops_drift_window_samples", (("model", "churn"),)): 50.0
    }
    assert (
        samples(fams["mlops_predictions"])[("mlops_predictions_total", (("model", "churn"),))] == 50
    )


def test_values_come_from_the_snapshot_and_counters(profile) -> None:
    h = Harness(profile)
    h.feed(lines(400, shift=15))
    h.compute()
    h.errors = 3
    fams = h.families()
    drift = {f.name: f for f in h.snapshot.features}
    psi = samples(fams["mlops_feature_drift_psi"])
    assert psi[("mlops_feature_drift_psi", (("feature", "age"), ("model", "churn")))] == (
        pytest.approx(drift["age"].psi)
    )
    detected = samples(fams["mlops_feature_drift_detected"])
    assert (
        detected[
            (
                "mlops_feature_drift_detected",
                (("feature", "age"), ("model", "churn"), ("test", "distance")),
            )
        ]
        == 1
    )
    assert (
        detected[
            (
                "mlops_feature_drift_detected",
                (("feature", "plan"), ("model", "churn"), ("test", "distance")),
            )
        ]
        == 0
    )
    # the verdict's figures: distance, its bound, tolerance, detectable distance, level
    for family, attribute in (
        ("mlops_feature_drift_distance", "distance"),
        ("mlops_feature_drift_distance_lower_bound", "lower_bound"),
        ("mlops_feature_drift_tolerance", "tolerance"),
        ("mlops_feature_drift_detectable_distance", "detectable_distance"),
    ):
        got = samples(fams[family])
        for name in ("age", "plan"):
            key = (family, (("feature", name), ("model", "churn")))
            assert got[key] == pytest.approx(getattr(drift[name], attribute)), family
    assert drift["age"].lower_bound >= drift["age"].tolerance  # the age verdict above
    level = samples(fams["mlops_drift_test_level"])
    assert level[("mlops_drift_test_level", (("model", "churn"),))] == h.snapshot.level
    errors = samples(fams["mlops_drift_computation_errors"])
    assert errors[("mlops_drift_computation_errors_total", (("model", "churn"),))] == 3
    # Histogram: cumulative counts equal to numpy's over the same latencies.
    lat = np.array([orjson.loads(x)["latency_ms"] for x in lines(400, shift=15)]) / 1000
    hist = samples(fams["mlops_prediction_latency_seconds"])
    for (name, labels), value in hist.items():
        if name.endswith("_bucket"):
            le = float(dict(labels)["le"])
            assert value == np.sum(lat <= le), le
    assert hist[("mlops_prediction_latency_seconds_count", (("model", "churn"),))] == 400
    assert hist[("mlops_prediction_latency_seconds_sum", (("model", "churn"),))] == (
        pytest.approx(lat.sum())
    )


def test_labels_are_bounded(profile) -> None:
    h = Harness(profile, max_classes=5)
    h.feed(lines(300))
    fams = h.families()
    classes = {dict(s.labels)["class"] for s in fams["mlops_prediction_class"].samples}
    assert classes == {"k0", "k1", "k2", "k3", "k4", "__other__"}
    text = generate_latest(h.registry).decode()
    assert "req-" not in text  # request ids never become labels
    buckets = {
        dict(s.labels)["bucket"]
        for s in fams["mlops_feature_bucket_observations"].samples
        if dict(s.labels)["feature"] == "plan"
    }
    assert buckets == {"a", "b", "c", "__other__", "__unseen__"}


def test_collect_yields_fresh_families_each_time(profile) -> None:
    h = Harness(profile)
    first = list(h.collector.collect())
    h.feed(lines(10))
    second = list(h.collector.collect())
    assert not {id(f) for f in first} & {id(f) for f in second}

    def total(fams):
        return next(f for f in fams if f.name == "mlops_predictions").samples[0].value

    assert (total(first), total(second)) == (0, 10)


def test_openmetrics_output_parses(profile) -> None:
    h = Harness(profile)
    h.feed(lines(300, shift=15))
    h.compute()
    text = generate_openmetrics(h.registry).decode()
    assert text.endswith("# EOF\n")
    names = {f.name for f in parse_om(text)}
    assert {
        "mlops_predictions",
        "mlops_prediction_latency_seconds",
        "mlops_reference_info",
    } <= names


def test_fast_encoding_is_byte_identical_to_prometheus_client(profile) -> None:
    from exporter.exposition import MetricsRenderer

    h = Harness(profile)
    h.feed(lines(400, shift=15))
    h.compute()
    renderer = MetricsRenderer(h.collector.sections)
    assert renderer.render(False) == generate_latest(h.registry)
    assert renderer.render(True) == generate_openmetrics(h.registry)
    # Cached sections are reused while their snapshot is the same; live counters are not.
    h.feed(lines(10, seed=5))
    assert renderer.render(False) == generate_latest(h.registry)
    h.compute()
    assert renderer.render(True) == generate_openmetrics(h.registry)


def test_fast_encoding_escapes_like_prometheus_client() -> None:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    from exporter.exposition import MetricsRenderer

    class Odd:
        def collect(self):
            g = GaugeMetricFamily("odd", 'help with "quotes", a \\ and a\nnewline', labels=["v"])
            g.add_metric(['a "b" \\ c\nd'], float("nan"))
            g.add_metric(["inf"], float("inf"))
            g.add_metric(["big"], 1.5e12)
            yield g
            c = CounterMetricFamily("odd_events", "x", labels=[])
            c.add_metric([], 3)
            yield c

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Odd())
    renderer = MetricsRenderer(lambda: [(None, Odd().collect)])
    assert renderer.render(False) == generate_latest(registry)
    assert renderer.render(True) == generate_openmetrics(registry)


def test_files_that_could_not_be_opened_are_counted(profile) -> None:
    from exporter.tail import FollowerStats

    h = Harness(profile)
    h.counters.update_follower(FollowerStats(open_errors=3, files_watched=1))
    fams = h.families()
    assert samples(fams["mlops_log_open_errors"]) == {("mlops_log_open_errors_total", ()): 3.0}


def test_reference_missing_ratio_is_the_profiles_missing_share() -> None:
    """mlops_feature_reference_missing_ratio: missing rows / all rows of the reference, the
    share the missing-value verdict compares the window's with."""
    rng = np.random.default_rng(5)
    age = rng.normal(40, 10, 1000)
    age[:150] = np.nan
    plan = rng.choice(["a", "b", "c"], 1000).astype(object)
    plan[:40] = None
    ref = ReferenceProfile.from_data({"age": age, "plan": plan})
    h = Harness(ref)
    got = samples(h.families()["mlops_feature_reference_missing_ratio"])
    key = "mlops_feature_reference_missing_ratio"
    assert got[(key, (("feature", "age"), ("model", "churn")))] == pytest.approx(0.15)
    assert got[(key, (("feature", "plan"), ("model", "churn")))] == pytest.approx(0.04)
    # the verdict reads the same share
    h.feed(lines(300))
    h.compute()
    drift = {f.name: f for f in h.snapshot.features}
    assert drift["age"].reference_missing_ratio == pytest.approx(0.15)
    assert drift["plan"].reference_missing_ratio == pytest.approx(0.04)
