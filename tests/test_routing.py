"""Routing predictions to models by ``match`` and gating them by version."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest

from exporter.errors import ConfigError
from exporter.routing import (
    ALL_ROWS,
    MAX_VERSION_LABEL,
    OTHER_VERSION,
    Route,
    Router,
    VersionCounts,
)
from tests.test_bench_smoke import NUMBER, figure, run_bench

CHURN = Route("churn", {"service": "churn-api"})
FRAUD = Route("fraud", {"service": "fraud-api"})


def rows_of(rows: Any, n: int) -> list[int]:
    """The row numbers a ``ModelRows.rows`` selects out of ``n``."""
    return np.arange(n)[rows].tolist()


# --- match ------------------------------------------------------------------------------------


def test_a_record_goes_to_the_model_whose_every_match_field_equals_its_own() -> None:
    router = Router([Route("eu", {"service": "churn-api", "region": "eu"}), FRAUD])
    assert router.fields == ("service", "region")
    assert router.model_of({"service": "churn-api", "region": "eu", "x": 1}) == 0
    assert router.model_of({"service": "fraud-api", "region": "eu"}) == 1
    assert router.model_of({"service": "churn-api", "region": "us"}) is None  # one field differs
    assert router.model_of({"service": "churn-api"}) is None  # a field absent


def test_a_model_without_match_takes_every_record() -> None:
    router = Router([Route("churn")])
    assert router.fields == ()
    assert router.model_of({}) == 0
    routed = router.route(3, {}, None, [None])
    assert (routed.models[0].rows, routed.models[0].n_window, routed.unrouted) == (ALL_ROWS, 3, 0)


def test_values_are_compared_as_text_and_a_non_string_never_matches() -> None:
    router = Router([Route("shard-3", {"shard": "3"})])
    assert router.model_of({"shard": "3"}) == 0
    assert router.model_of({"shard": 3}) is None
    assert router.model_of({"shard": None}) is None


def test_records_no_model_matches_are_counted_as_unrouted_and_reach_no_window() -> None:
    router = Router([CHURN, FRAUD])
    services = ["churn-api", "other", None, "fraud-api", "other"]
    routed = router.route(5, {"service": services}, None, [None, None])
    assert routed.unrouted == 3
    assert rows_of(routed.models[0].rows, 5) == [0]
    assert rows_of(routed.models[1].rows, 5) == [3]


def test_a_match_field_missing_from_the_columns_is_absent_from_every_row() -> None:
    routed = Router([CHURN]).route(4, {}, None, [None])
    assert (routed.unrouted, routed.models[0].n_window) == (4, 0)
    assert rows_of(routed.models[0].rows, 4) == []


def test_when_two_models_match_a_record_the_first_listed_wins() -> None:
    # a catch-all listed last takes what the narrower models before it do not
    router = Router([Route("eu", {"region": "eu"}), CHURN, Route("default")])
    assert router.overlaps() == [("eu", "churn"), ("eu", "default"), ("churn", "default")]
    assert router.model_of({"region": "eu", "service": "churn-api"}) == 0
    assert router.model_of({"region": "us", "service": "churn-api"}) == 1
    assert router.model_of({"region": "us", "service": "fraud-api"}) == 2
    routed = router.route(
        3, {"region": ["eu", "us", "us"], "service": ["churn-api"] * 3}, None, [None] * 3
    )
    assert [m.n_window for m in routed.models] == [1, 2, 0]


def test_models_that_can_never_share_a_record_do_not_overlap() -> None:
    assert Router([CHURN, FRAUD]).overlaps() == []
    assert Router([CHURN, Route("x", {"service": "fraud-api", "region": "eu"})]).overlaps() == []


@pytest.mark.parametrize(
    ("routes", "line"),
    [
        (
            [Route("default"), CHURN],
            "models[1] (churn): never receives a record: every record its match selects goes"
            " to models[0] (default), listed first; list the narrower match first",
        ),
        (
            [CHURN, Route("eu", {"service": "churn-api", "region": "eu"})],
            "models[1] (eu): never receives a record: every record its match selects goes to"
            " models[0] (churn), listed first; list the narrower match first",
        ),
        ([CHURN, Route("churn", {"service": "x"})], "models[1]: model 'churn' is listed twice"),
        ([], "models: at least one model is needed"),
    ],
)
def test_a_model_that_can_never_receive_a_record_is_a_config_error(
    routes: list[Route], line: str
) -> None:
    with pytest.raises(ConfigError) as err:
        Router(routes)
    assert str(err.value).startswith(line)


# --- version gating ---------------------------------------------------------------------------


def test_only_the_monitored_version_goes_to_the_window_and_others_are_counted() -> None:
    router = Router([Route("churn")])
    versions = ["1.1", "1.0", "1.0", "0.9", "1.0", "0.9"]
    model = router.route(6, {}, versions, ["1.0"]).models[0]
    assert rows_of(model.rows, 6) == [1, 2, 4]
    assert (model.n_window, dict(model.other_versions), model.n_predictions) == (
        3, {"1.1": 1, "0.9": 2}, 6,
    )  # fmt: skip


def test_a_record_without_a_version_is_taken_as_the_monitored_version() -> None:
    model = Router([Route("churn")]).route(3, {}, [None, "1.0", None], ["1.0"]).models[0]
    assert (model.rows, model.n_window, dict(model.other_versions)) == (ALL_ROWS, 3, {})


def test_a_model_with_no_known_version_takes_every_version() -> None:
    # a file reference knows no version: everything is judged, as before the registry
    model = Router([Route("churn")]).route(3, {}, ["1.0", "2.0", None], [None]).models[0]
    assert (model.rows, model.n_window) == (ALL_ROWS, 3)


def test_each_model_is_gated_by_its_own_version() -> None:
    router = Router([CHURN, FRAUD])
    services = ["churn-api", "fraud-api", "churn-api", "fraud-api", "other"]
    versions = ["2", "2", "1", "7", "2"]
    routed = router.route(5, {"service": services}, versions, ["2", "7"])
    churn, fraud = routed.models
    assert (rows_of(churn.rows, 5), dict(churn.other_versions)) == ([0], {"1": 1})
    assert (rows_of(fraud.rows, 5), dict(fraud.other_versions)) == ([3], {"2": 1})
    assert routed.unrouted == 1  # unrouted whatever its version


def test_a_promotion_changes_which_rows_go_to_the_window_on_the_next_batch() -> None:
    router = Router([CHURN])
    cols = {"service": ["churn-api"] * 4}
    versions = ["1", "2", "2", "1"]
    before = router.route(4, cols, versions, ["1"]).models[0]
    after = router.route(4, cols, versions, ["2"]).models[0]  # the cache keeps no verdict
    assert rows_of(before.rows, 4) == [0, 3] and rows_of(after.rows, 4) == [1, 2]


def test_a_uniform_batch_needs_no_row_index() -> None:
    routed = Router([CHURN, FRAUD]).route(
        3, {"service": ["fraud-api"] * 3}, ["1", "1", "1"], ["1", "1"]
    )
    assert routed.models[1].rows == ALL_ROWS
    assert rows_of(routed.models[0].rows, 3) == []


def test_an_empty_batch_routes_nothing() -> None:
    routed = Router([CHURN, FRAUD]).route(0, {"service": []}, [], ["1", "1"])
    assert [m.n_window for m in routed.models] == [0, 0] and routed.unrouted == 0


def test_columns_of_the_wrong_length_or_monitored_of_the_wrong_size_are_refused() -> None:
    router = Router([CHURN])
    with pytest.raises(ValueError, match="a column has 2 values for 3 predictions"):
        router.route(3, {"service": ["a", "b"]}, None, [None])
    with pytest.raises(ValueError, match="monitored has 2 versions for 1 models"):
        router.route(1, {"service": ["a"]}, None, [None, None])


def test_the_columnar_route_agrees_with_routing_each_record_alone() -> None:
    router = Router(
        [
            Route("eu-0", {"service": "churn-api", "region": "eu", "shard": "0"}),
            CHURN,
            Route("eu", {"region": "eu"}),
        ]
    )
    rng = random.Random(7)
    monitored = ["1", "2", None]
    for n in (1, 2, 17, 500):
        records = [
            {
                "service": rng.choice(["churn-api", "fraud-api", None]),
                "region": rng.choice(["eu", "us"]),
                "shard": rng.choice(["0", "1", 0]),  # 0: not a string, never matches
                "model_version": rng.choice(["1", "2", "3", None]),
            }
            for _ in range(n)
        ]
        cols = {
            f: [r[f] if isinstance(r[f], str) else None for r in records] for f in router.fields
        }
        routed = router.route(n, cols, [r["model_version"] for r in records], monitored)
        expected_rows: list[list[int]] = [[], [], []]
        expected_other: list[dict[str, int]] = [{}, {}, {}]
        unrouted = 0
        for i, rec in enumerate(records):
            m = router.model_of(rec)
            if m is None:
                unrouted += 1
            elif rec["model_version"] in (None, monitored[m]) or monitored[m] is None:
                expected_rows[m].append(i)
            else:
                other = expected_other[m]
                other[rec["model_version"]] = other.get(rec["model_version"], 0) + 1
        assert routed.unrouted == unrouted
        for m, got in enumerate(routed.models):
            assert rows_of(got.rows, n) == expected_rows[m]
            assert got.n_window == len(expected_rows[m])
            assert dict(got.other_versions) == expected_other[m]


def test_many_distinct_keys_keep_memory_bounded_and_results_right() -> None:
    router = Router([CHURN])
    for start in range(0, 20_000, 5_000):  # 20,000 distinct services, hostile logs
        services = [f"svc-{i}" for i in range(start, start + 5_000)]
        services[0] = "churn-api"
        routed = router.route(5_000, {"service": services}, None, [None])
        assert (routed.models[0].n_window, routed.unrouted) == (1, 4_999)
        assert len(router._ids) <= 10_000 and len(router._cache) <= 4_096


# --- bounded version labels -------------------------------------------------------------------


def test_the_first_versions_seen_keep_their_label_and_later_ones_are_folded() -> None:
    counts = VersionCounts(max_versions=2)
    counts.add({"0.9": 3, "1.1": 1})
    counts.add({"1.2": 5, "0.9": 1, "1.3": 2})
    assert dict(counts.totals()) == {"0.9": 4, "1.1": 1, OTHER_VERSION: 7}
    counts.add({"1.1": 1})  # a labelled version keeps its own label
    assert dict(counts.totals()) == {"0.9": 4, "1.1": 2, OTHER_VERSION: 7}


def test_a_long_version_is_cut_to_a_bounded_label() -> None:
    counts = VersionCounts()
    counts.add({"v" * 1000: 1})
    assert list(counts.totals()) == ["v" * MAX_VERSION_LABEL]


def test_max_versions_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="max_versions must be at least 1, not 0"):
        VersionCounts(0)


# --- the benchmark ----------------------------------------------------------------------------


def test_bench_routing_prints_the_cost_of_each_scenario() -> None:
    out = run_bench("bench_routing.py", "--rows", "500", "--repeats", "2")
    for scenario in (
        "one model, version gating only",
        "two models, one per file",
        "two models interleaved, 10% canary",
        "three fields, interleaved",
        "decoding added by the routed fields",
    ):
        figure(out, rf"^  {scenario}\s+-?{NUMBER} ns$")
