"""Structure of the shipped Grafana dashboard and provisioning files.

The dashboard is code: a stable uid (links and provisioning depend on it), the six
variables, a title, description and unit on every panel, ``$__rate_interval`` in every
``rate``/``increase`` (``$__range`` in instant queries over the dashboard's range), every
query filtered by the variables and parsed by promtool, and the panels the issue asks for.
Whether each query runs and returns data is checked against a real Prometheus in
tests/e2e/test_stack.py, with the helpers below.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter import metrics
from tests.conftest import REPO_ROOT, require_binary

GRAFANA = REPO_ROOT / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "mlops-overview.json"
UID = "mlops-exporter-overview"
VARIABLES = ("datasource", "job", "instance", "model", "version", "feature")
DASHBOARD_DIR_IN_CONTAINER = "/var/lib/grafana/dashboards"

_RANGE = re.compile(r"\[([^\]]*)\]")
_RANGE_FUNCS = re.compile(r"\b(rate|irate|increase|delta|idelta|\w+_over_time)\s*\(")


def load_dashboard(path: Path = DASHBOARD) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def data_panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in board["panels"] if p["type"] != "row"]


def panel_queries(board: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(panel title, refId, target) of every query of every panel."""
    return [(p["title"], t["refId"], t) for p in data_panels(board) for t in p["targets"]]


def annotation_queries(board: dict[str, Any]) -> list[dict[str, Any]]:
    """The Prometheus annotation queries (each with its ``expr``), the built-in one left out."""
    return [a for a in board["annotations"]["list"] if "expr" in a]


def variable_queries(board: dict[str, Any]) -> dict[str, str]:
    """Variable name -> its label_values(...) query."""
    found = {}
    for var in board["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]
            found[var["name"]] = query["query"] if isinstance(query, dict) else query
    return found


def substitute(expr: str, values: dict[str, str]) -> str:
    """Grafana's variable expansion for these queries: ``$name`` / ``${name}`` -> value."""
    out = expr
    for name in sorted(values, key=len, reverse=True):
        out = out.replace("${" + name + "}", values[name]).replace("$" + name, values[name])
    leftover = re.findall(r"\$\{?\w+", out)
    assert not leftover, f"unsubstituted variables {leftover} in {expr}"
    return out


def label_values_as_promql(query: str) -> tuple[str, str]:
    """``label_values(selector, label)`` -> (``group by (label) (selector)``, label)."""
    match = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", query.strip())
    assert match, f"not a label_values(metric, label) query: {query}"
    return f"group by ({match.group(2)}) ({match.group(1)})", match.group(2)


# --- the dashboard -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def board() -> dict[str, Any]:
    return load_dashboard()


def test_stable_uid_title_and_schema(board: dict[str, Any]) -> None:
    assert board["uid"] == UID
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", board["uid"])
    assert board["title"] and board["description"]
    assert board["schemaVersion"] >= 36
    assert "id" not in board or board["id"] is None, "an exported id breaks provisioning"


def test_variables(board: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert tuple(variables) == VARIABLES
    ds = variables["datasource"]
    assert ds["type"] == "datasource" and ds["query"] == "prometheus"
    queries = variable_queries(board)
    for name in VARIABLES[1:]:
        var = variables[name]
        assert var["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, name
        assert var["multi"] and var["includeAll"] and var["allValue"] == ".+", name
        label_values_as_promql(queries[name])
    # each variable narrows the next: instance by job, model by both, version and feature by
    # all three (version: the versions the chosen models are judged against)
    assert '$job"' in queries["instance"]
    assert '$job"' in queries["model"] and '$instance"' in queries["model"]
    for name in ("version", "feature"):
        assert all(f'${v}"' in queries[name] for v in ("job", "instance", "model")), name
    assert label_values_as_promql(queries["version"]) == (
        'group by (version) (mlops_model_info{job=~"$job", instance=~"$instance", '
        'model=~"$model"})',
        "version",
    )


def test_every_panel_has_title_description_unit_and_the_datasource_variable(
    board: dict[str, Any],
) -> None:
    panels = data_panels(board)
    assert len(panels) >= 15
    for panel in panels:
        title = panel.get("title", "")
        assert title.strip(), panel["id"]
        assert len(panel.get("description", "")) >= 20, title
        assert panel["fieldConfig"]["defaults"].get("unit"), title
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, title
        assert panel["targets"], title
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", title
            assert target["expr"].strip(), title
    titles = [p["title"] for p in panels]
    assert len(titles) == len(set(titles)), "duplicate panel titles"


def test_panel_ids_unique_and_layout_without_overlap(board: dict[str, Any]) -> None:
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], str] = {}
    for panel in board["panels"]:
        g = panel["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, panel["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_every_range_function_uses_rate_interval_or_the_dashboard_range(
    board: dict[str, Any],
) -> None:
    """``$__rate_interval`` everywhere, except ``$__range`` in an instant query: there it
    means "over the dashboard's time range"; in a range query every point would look back
    over the whole range, which is never what a graph means."""
    for title, ref, target in panel_queries(board):
        expr = target["expr"]
        ranges = _RANGE.findall(expr)
        assert len(ranges) == len(_RANGE_FUNCS.findall(expr)), f"{title}/{ref}: {expr}"
        allowed = {"$__rate_interval", "$__range"} if target["instant"] else {"$__rate_interval"}
        assert set(ranges) <= allowed, f"{title}/{ref}: {expr}"


def test_every_selector_is_filtered_by_the_variables(board: dict[str, Any]) -> None:
    """Each series selector of a query carries the job matcher (and instance/model if used)."""
    selectors = re.compile(r"\b((?:mlops_|job_)[\w:]*|up|ALERTS)\{([^}]*)\}")
    queries = panel_queries(board)
    queries += [(a["name"], "annotation", a) for a in annotation_queries(board)]
    for title, ref, target in queries:
        expr = target["expr"]
        found = selectors.findall(expr)
        bare = re.sub(selectors, "", expr)
        assert not re.search(r"\bmlops_\w+", bare), f"{title}/{ref}: unfiltered selector"
        assert found, f"{title}/{ref}"
        for metric, matchers in found:
            assert 'job=~"$job"' in matchers, f"{title}/{ref}: {metric}"
            if ":" not in metric or "instance" in metric.split(":")[0]:
                assert 'instance=~"$instance"' in matchers, f"{title}/{ref}: {metric}"


def _exprs_of(board: dict[str, Any], kind: str | None = None) -> list[str]:
    return [
        t["expr"]
        for p in data_panels(board)
        if kind is None or p["type"] == kind
        for t in p["targets"]
    ]


@pytest.mark.parametrize(
    ("what", "kind", "needle"),
    [
        ("PSI per feature over time", "timeseries", "mlops_feature_drift_psi{"),
        ("distance per feature over time", "timeseries", "mlops_feature_drift_distance{"),
        ("lower bound over time", "timeseries", "mlops_feature_drift_distance_lower_bound{"),
        ("tolerance over time", "timeseries", "mlops_feature_drift_tolerance{"),
        ("detectable distance", "timeseries", "mlops_feature_drift_detectable_distance{"),
        ("current drift table", "table", "mlops_feature_drift_psi{"),
        ("current verdict in the table", "table", "mlops_feature_drift_detected{"),
        ("current distance in the table", "table", "mlops_feature_drift_distance{"),
        ("current KS statistic in the table", "table", "mlops_feature_drift_ks_statistic{"),
        ("share of drifted features", None, "mlops_features_drifted_ratio{"),
        ("missing ratio", None, "mlops_feature_missing_ratio{"),
        ("window size", None, "mlops_drift_window_samples{"),
        ("latency quantiles from the histogram", None, "histogram_quantile(0.99"),
        ("latency heatmap", "heatmap", "mlops_prediction_latency_seconds_bucket{"),
        ("throughput", "timeseries", "rate(mlops_predictions_total{"),
        ("class distribution", None, "mlops_prediction_class_total{"),
        ("invalid lines", None, "mlops_log_lines_invalid_total{"),
        ("other events beside predictions", None, "mlops_log_lines_other_events_total{"),
        (
            "the invalid-lines alert's ratio",
            "timeseries",
            "job_instance_model:mlops_log_lines_invalid:ratio_rate5m{",
        ),
        ("in-process alert failures", None, "mlops_alert_notification_failures_total{"),
        ("exporter health", None, "up{"),
        ("firing alerts", "table", 'ALERTS{alertstate="firing"'),
        ("reference proportions per bucket", "barchart", "mlops_feature_reference_bucket_ratio{"),
        (
            "current proportions per bucket",
            "barchart",
            "sum by (bucket) (rate(mlops_feature_bucket_observations_total{",
        ),
        ("features sorted by distance", "table", "(mlops_feature_drift_distance{"),
        ("fleet-wide PSI", None, "job_model_feature:mlops_feature_drift_psi:increase1h{"),
        (
            "fleet-wide total variation",
            None,
            "job_model_feature:mlops_feature_drift_total_variation:increase1h{",
        ),
        ("realised quality by metric", "timeseries", "mlops_model_quality{"),
        ("estimated quality", "timeseries", "mlops_model_quality_estimated{"),
        ("reference quality", "timeseries", "mlops_model_quality_reference{"),
        ("fleet-wide quality", "timeseries", "job_model_metric:mlops_model_quality:increase1h{"),
        ("degraded verdicts over time", "state-timeline", "mlops_model_quality_degraded{"),
        ("current degraded verdict in the table", "table", "mlops_model_quality_degraded{"),
        ("quality per class", "table", "mlops_model_class_quality{"),
        ("label delay quantiles", "timeseries", "rate(mlops_outcome_delay_seconds_bucket{"),
        ("labelled ratio", "timeseries", "mlops_labelled_ratio{"),
        ("predictions awaiting an outcome", "timeseries", "mlops_predictions_awaiting_outcome{"),
        ("unmatched outcomes by reason", "timeseries", "mlops_outcomes_unmatched_total{"),
        ("evicted predictions by reason", "timeseries", "mlops_predictions_evicted_total{"),
        ("monitored version, stage and version changes", "table", "mlops_model_info{"),
        ("version changes over the range", "table", "mlops_model_version_changes_total{"),
        ("monitored version over time", "state-timeline", "mlops_model_info{"),
        (
            "other versions' predictions",
            "timeseries",
            "rate(mlops_predictions_other_version_total{",
        ),
        (
            "the unrouted-records alert's ratio",
            "timeseries",
            "job_instance:mlops_log_lines_unrouted:ratio_rate5m{",
        ),
        ("registry poll errors by reason", "timeseries", "mlops_reference_poll_errors_total{"),
    ],
)
def test_the_issues_panels_exist(
    board: dict[str, Any], what: str, kind: str | None, needle: str
) -> None:
    assert any(needle in expr for expr in _exprs_of(board, kind)), what


def _row_panels(board: dict[str, Any], title: str) -> list[dict[str, Any]]:
    """The panels under the row ``title``, down to the next row."""
    rows = sorted((p["gridPos"]["y"], p["title"]) for p in board["panels"] if p["type"] == "row")
    top = next(y for y, t in rows if t == title)
    bottom = min((y for y, _ in rows if y > top), default=10**6)
    return [p for p in data_panels(board) if top < p["gridPos"]["y"] < bottom]


def _area_missing_from_row(board: dict[str, Any], area: metrics.Area, row: str) -> list[str]:
    """The metrics of the catalog's ``area`` that no panel of the row ``row`` shows, directly
    or through a recording rule it queries."""
    from tests.test_rules import all_rules, metric_names

    recording: dict[str, set[str]] = {}  # one recorded name may have several rules
    for rule in all_rules():
        if "record" in rule:
            recording.setdefault(rule["record"], set()).update(metric_names(rule["expr"])[0])
    used: set[str] = set()
    for panel in _row_panels(board, row):
        for target in panel["targets"]:
            exported, recorded = metric_names(target["expr"])
            used |= exported
            for name in recorded:
                used |= recording[name]
    return [spec.name for spec in metrics.of_area(area) if not used & set(spec.series_names)]


def test_the_quality_row_shows_every_quality_metric_of_the_catalog(board: dict[str, Any]) -> None:
    """Every metric of the catalog's "quality" area is on the "Model quality" row, directly
    or through a recording rule the row shows (the fleet-wide accuracy, MAE and RMSE)."""
    missing = _area_missing_from_row(board, "quality", "Model quality")
    assert missing == [], f"quality metrics not on the Model quality row: {missing}"


def test_the_models_row_shows_every_models_metric_of_the_catalog(board: dict[str, Any]) -> None:
    """Issue 16: which version each exporter judges against, its changes, other versions'
    predictions, unrouted records (through the alert's recorded ratio) and poll errors."""
    missing = _area_missing_from_row(board, "models", "Models")
    assert missing == [], f"models metrics not on the Models row: {missing}"


def test_models_panels_name_the_versions_and_follow_the_version_variable(
    board: dict[str, Any],
) -> None:
    panels = {p["title"]: p for p in _row_panels(board, "Models")}
    table = panels["Monitored versions"]
    targets = {t["refId"]: t for t in table["targets"]}
    assert all(t["instant"] and t["format"] == "table" for t in targets.values())
    assert 'version=~"$version"' in targets["INFO"]["expr"]
    # the changes of the models whose version is chosen, over the dashboard's range
    changes = targets["CHANGES"]["expr"]
    assert "[$__range]" in changes and "mlops_model_info{" in changes.split("and on")[1]
    renamed = table["transformations"][1]["options"]["renameByName"]
    assert set(renamed.values()) == {"Monitored version", "Stage", "Version changes"}
    timeline = panels["Monitored version over time"]
    assert 'version=~"$version"' in timeline["targets"][0]["expr"]
    assert "{{version}}" in timeline["targets"][0]["legendFormat"]
    # both lines named by version: the monitored one through mlops_model_info's label
    monitored, other = panels["Predictions by version"]["targets"]
    assert "group_left (version)" in monitored["expr"]
    assert "(monitored)" in monitored["legendFormat"]
    assert "mlops_predictions_other_version_total{" in other["expr"]
    assert "(other)" in other["legendFormat"]
    # the logged version is no monitored version: $version does not filter it
    assert "$version" not in other["expr"]
    # an unrouted record has no model: per exporter, whatever $model
    (unrouted,) = panels["Unrouted record ratio"]["targets"]
    assert "$model" not in unrouted["expr"]
    assert panels["Unrouted record ratio"]["fieldConfig"]["defaults"]["unit"] == "percentunit"


def test_version_changes_are_annotated_with_the_new_version(board: dict[str, Any]) -> None:
    """A promotion or rollback the exporter switched to marks every panel, named by the
    version it now judges against."""
    (note,) = annotation_queries(board)
    assert note["name"] == "Model version changes" and note["enable"]
    assert note["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    expr = note["expr"]
    assert expr.startswith("(increase(mlops_model_version_changes_total{")
    assert "[$__rate_interval]) > 0)" in expr
    assert "group_left (version, stage)" in expr and "mlops_model_info{" in expr
    assert "{{version}}" in note["textFormat"] and "{{model}}" in note["textFormat"]


def test_firing_alerts_follow_the_model_variable_and_keep_exporter_wide_ones(
    board: dict[str, Any],
) -> None:
    """Alerts without a model label (MlopsExporterDown, MlopsLogLinesUnroutedHigh) stay
    listed whichever models are chosen."""
    (target,) = next(p for p in data_panels(board) if p["title"] == "Firing alerts")["targets"]
    assert 'model=~"$model|"' in target["expr"]


def test_quality_panels_mark_reference_and_estimate_and_colour_the_verdict(
    board: dict[str, Any],
) -> None:
    panels = {p["title"]: p for p in _row_panels(board, "Model quality")}
    over_time = panels["Realised, estimated and reference quality"]
    styles = {
        o["matcher"]["options"]: o["properties"][0]["value"]["fill"]
        for o in over_time["fieldConfig"]["overrides"]
    }
    assert styles == {"estimated .*": "dot", "reference .*": "dash"}
    legends = [t["legendFormat"] for t in over_time["targets"]]
    assert [bool(re.match(r"estimated |reference ", x)) for x in legends] == [False, True, True]
    # one reference per model and metric, however many replicas load it
    assert over_time["targets"][2]["expr"].startswith("max by (model, metric) (")
    table = panels["Current quality"]
    (degraded,) = table["fieldConfig"]["overrides"]
    assert degraded["matcher"]["options"] == "Degraded"
    (steps,) = [p["value"]["steps"] for p in degraded["properties"] if p["id"] == "thresholds"]
    assert [(s["value"], s["color"]) for s in steps] == [(None, "green"), (1, "red")]
    renamed = table["transformations"][1]["options"]["renameByName"]
    assert set(renamed.values()) == {"Degraded", "Realised", "Reference", "Estimated"}
    assert all(t["instant"] and t["format"] == "table" for t in table["targets"])
    timeline = panels["Degraded verdicts"]
    texts = {
        value: option["text"]
        for mapping in timeline["fieldConfig"]["defaults"]["mappings"]
        for value, option in mapping["options"].items()
    }
    assert texts == {"0": "ok", "1": "degraded"}
    delay = panels["Label delay"]
    assert delay["fieldConfig"]["defaults"]["unit"] == "s"
    assert [t["expr"].split(",")[0] for t in delay["targets"]] == [
        "histogram_quantile(0.5",
        "histogram_quantile(0.9",
        "histogram_quantile(0.99",
    ]
    assert panels["Labelled ratio"]["fieldConfig"]["defaults"]["unit"] == "percentunit"


def test_drift_table_colours_thresholds(board: dict[str, Any]) -> None:
    """Lower-bound cells turn red at MlopsFeatureDriftHigh's threshold of thresholds.yml;
    the verdict column is red when drifted; PSI and p-values are plain reported figures."""
    table = next(p for p in data_panels(board) if p["title"] == "Current drift")
    overrides = {
        o["matcher"]["options"]: o["properties"] for o in table["fieldConfig"]["overrides"]
    }
    lower = {prop["id"]: prop["value"] for prop in overrides["Lower bound"]}
    assert lower["custom.cellOptions"] == {"type": "color-background"}
    steps = [(s["value"], s["color"]) for s in lower["thresholds"]["steps"]]
    drift = yaml.safe_load((REPO_ROOT / "rules" / "thresholds.yml").read_text(encoding="utf-8"))
    high = drift["alerts"]["MlopsFeatureDriftHigh"]
    assert steps == [(None, "green"), (high["warning"], "orange"), (high["critical"], "red")]
    drifted = {prop["id"]: prop["value"] for prop in overrides["Drifted"]}
    assert [(s["value"], s["color"]) for s in drifted["thresholds"]["steps"]] == [
        (None, "green"),
        (1, "red"),
    ]
    assert "PSI" not in overrides and "KS p-value" not in overrides
    renamed = table["transformations"][1]["options"]["renameByName"]
    for column in ("Distance", "Lower bound", "Tolerance", "Detectable", "PSI", "KS p-value"):
        assert column in renamed.values()
    assert "Missing" in overrides


def test_reference_against_current_panel(board: dict[str, Any]) -> None:
    """One bar chart per chosen feature: reference shares against the shares observed over
    the dashboard's range, summed across the selected replicas, over the same buckets."""
    panel = next(p for p in data_panels(board) if p["type"] == "barchart")
    assert panel["title"] == "Reference against current: $feature"
    assert panel["repeat"] == "feature"
    assert panel["fieldConfig"]["defaults"]["unit"] == "percentunit"
    targets = {t["refId"]: t for t in panel["targets"]}
    assert all(t["instant"] and t["format"] == "table" for t in targets.values())
    ref, cur = targets["REF"]["expr"], targets["CUR"]["expr"]
    assert ref.startswith("max by (bucket) (mlops_feature_reference_bucket_ratio{")
    numerator, denominator = cur.split("/ ignoring (bucket) group_left ()")
    assert numerator.strip().startswith("sum by (bucket) (rate(")
    assert denominator.strip().startswith("sum (rate(")  # every bucket: shares sum to 1
    assert cur.count("mlops_feature_bucket_observations_total{") == 2
    assert cur.count("[$__range]") == 2
    assert "instance" not in cur.replace('instance=~"$instance"', "")  # summed over replicas
    organize = next(t for t in panel["transformations"] if t["id"] == "organize")["options"]
    assert organize["renameByName"]["bucket"] == panel["options"]["xField"]
    names = {o["matcher"]["options"] for o in panel["fieldConfig"]["overrides"]}
    assert names == {organize["renameByName"]["Value #REF"], organize["renameByName"]["Value #CUR"]}


def test_features_by_distance_table_sorts_by_distance(board: dict[str, Any]) -> None:
    table = next(p for p in data_panels(board) if p["title"] == "Features by distance")
    organize = next(t for t in table["transformations"] if t["id"] == "organize")["options"]
    distance = organize["renameByName"]["Value #DIST"]
    assert table["options"]["sortBy"] == [{"displayName": distance, "desc": True}]
    dist = next(t for t in table["targets"] if t["refId"] == "DIST")
    assert "mlops_feature_drift_distance{" in dist["expr"] and dist["instant"]


def test_every_dashboard_query_parses_as_promql(board: dict[str, Any], tmp_path: Path) -> None:
    """Each query, variables substituted as Grafana would, goes through promtool's PromQL
    parser as a recording rule: a syntax error fails here, without starting Prometheus
    (tests/e2e/test_stack.py then runs every query against real data)."""
    promtool = require_binary("promtool")
    values = {
        "job": "mlops-exporter", "instance": ".+", "model": ".+", "version": ".+",
        "feature": ".+", "datasource": "prometheus", "__rate_interval": "1m", "__range": "3h",
    }  # fmt: skip
    targets = [target for _, _, target in panel_queries(board)] + annotation_queries(board)
    rules = [
        {"record": f"dashboard:query_{i}:check", "expr": substitute(target["expr"], values)}
        for i, target in enumerate(targets)
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    proc = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_log_lines_panel_splits_every_line_by_outcome(board: dict[str, Any]) -> None:
    """Predictions + other events + invalid = every line read: stacked, nothing counted twice."""
    panel = next(p for p in data_panels(board) if p["title"] == "Log lines by outcome")
    assert panel["fieldConfig"]["defaults"]["custom"]["stacking"]["mode"] == "normal"
    exprs = [t["expr"] for t in panel["targets"]]
    counters = sorted(re.findall(r"rate\((mlops_\w+)\{", " ".join(exprs)))
    assert counters == [
        "mlops_log_lines_invalid_total",
        "mlops_log_lines_other_events_total",
        "mlops_predictions_total",
    ]
    assert "mlops_log_lines_total" not in " ".join(exprs), "all lines would count twice"


def test_heatmap_has_an_axis_unit(board: dict[str, Any]) -> None:
    heatmap = next(p for p in data_panels(board) if p["type"] == "heatmap")
    assert heatmap["options"]["yAxis"]["unit"] == "s"
    assert heatmap["targets"][0]["format"] == "heatmap"


def test_substitute_expands_every_variable() -> None:
    values = {"job": "j", "instance": ".+", "__rate_interval": "15s", "__range": "3h"}
    assert substitute('rate(x{job=~"$job",instance=~"${instance}"}[$__rate_interval])', values) == (
        'rate(x{job=~"j",instance=~".+"}[15s])'
    )
    assert substitute("rate(x[$__range]) / rate(x[$__rate_interval])", values) == (
        "rate(x[3h]) / rate(x[15s])"
    )
    with pytest.raises(AssertionError, match="unsubstituted"):
        substitute('x{model=~"$model"}', values)


# --- provisioning --------------------------------------------------------------------------


def test_datasource_provisioning() -> None:
    config = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text(encoding="utf-8")
    )
    assert config["apiVersion"] == 1
    (ds,) = config["datasources"]
    assert ds["type"] == "prometheus" and ds["isDefault"] is True
    assert ds["url"].startswith("http")


def test_dashboard_provisioning_points_at_the_mounted_dashboards() -> None:
    config = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "mlops.yml").read_text(encoding="utf-8")
    )
    assert config["apiVersion"] == 1
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == DASHBOARD_DIR_IN_CONTAINER
    docs = (REPO_ROOT / "docs" / "rules-and-dashboards.md").read_text(encoding="utf-8")
    assert f"grafana/dashboards:{DASHBOARD_DIR_IN_CONTAINER}" in docs
    assert "grafana/provisioning:/etc/grafana/provisioning" in docs
