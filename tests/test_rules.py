"""The shipped Prometheus rules (rules/) and the Alertmanager example.

What is checked, and why:
- the committed rule files, and the threshold colours of the dashboard, are exactly what
  ``rules/generate.py`` renders from ``rules/thresholds.yml``, so a threshold has one home;
- ``promtool check rules`` and the ``promtool test rules`` unit tests pass, and those unit
  tests fail when a threshold changes (they can catch a broken rule); every alert is tested
  firing and not firing, every recorded series queried with exact samples whose labels are
  the ones its ``level`` names;
- every alert carries severity, summary, description and a runbook_url whose anchor exists;
- every metric named in the rules and dashboards is one the exporter exposes (the list of the
  exporter issue, below) or a series recorded by the rules, so they cannot go stale silently;
- ``amtool check-config`` passes on rules/alertmanager.yml, also with the commented Slack and
  PagerDuty receivers enabled.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from exporter import metrics
from tests.conftest import REPO_ROOT, require_binary

RULES = REPO_ROOT / "rules"
RUNBOOK = REPO_ROOT / "docs" / "runbook.md"
DASHBOARDS = REPO_ROOT / "grafana" / "dashboards"
RULE_FILES = ("alerts.yml", "recording.yml")
SEVERITIES = {"critical", "warning", "info"}

#: Every mlops_* series the exporter exposes: the metric catalog (exporter/metrics.py), the
#: one list rules and dashboards are written against.  tests/e2e/test_stack.py checks that a
#: live scrape of the real exporter exposes exactly these, no more and no fewer.
EXPORTER_METRICS: frozenset[str] = metrics.exposed_names()
#: Exposed only when the exporter is configured so (the e2e stack configures one that way).
OPTIONAL_METRICS: frozenset[str] = frozenset({"mlops_alert_notification_failures_total"})

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"' + r"|'(?:[^'\\]|\\.)*'")
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


# --- helpers shared with tests/test_dashboards.py and tests/e2e/test_stack.py -----------------


def load_generator() -> ModuleType:
    """rules/generate.py as a module (rules/ is not a package)."""
    spec = importlib.util.spec_from_file_location("mlops_rules_generate", RULES / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def metric_names(expr: str) -> tuple[set[str], set[str]]:
    """(exporter metric names, recorded series names) named in one PromQL expression."""
    bare = _STRING.sub('""', expr)
    idents = set(_IDENT.findall(bare))
    recorded = {i for i in idents if i.count(":") == 2 and not i.startswith(":")}
    exported = {i for i in idents - recorded if i.startswith("mlops_")}
    return exported, recorded


def rule_groups(name: str) -> list[dict[str, Any]]:
    return yaml.safe_load((RULES / name).read_text(encoding="utf-8"))["groups"]


def all_rules() -> list[dict[str, Any]]:
    return [rule for name in RULE_FILES for group in rule_groups(name) for rule in group["rules"]]


def alert_rules() -> list[dict[str, Any]]:
    return [rule for rule in all_rules() if "alert" in rule]


def recorded_names() -> set[str]:
    return {rule["record"] for rule in all_rules() if "record" in rule}


def dashboard_exprs() -> list[tuple[str, str]]:
    """(where, expr) of every query of every shipped dashboard, variables and annotations
    included."""
    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text(encoding="utf-8"))
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                found.append((f"{path.name}: panel {panel['title']!r}", target["expr"]))
        for note in board.get("annotations", {}).get("list", []):
            if "expr" in note:
                found.append((f"{path.name}: annotation {note['name']!r}", note["expr"]))
        for var in board["templating"]["list"]:
            if var["type"] == "query":
                query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
                found.append((f"{path.name}: variable ${var['name']}", query))
    return found


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown file."""
    anchors = set()
    for line in markdown.splitlines():
        match = re.match(r"^#{1,6}\s+(.*)$", line)
        if match:
            text = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower())
            anchors.add(text.replace(" ", "-"))
    return anchors


def _run(cmd: list[str], cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)


# --- the generator and the one place for thresholds ------------------------------------------


def test_committed_rule_files_equal_the_generators_output() -> None:
    gen = load_generator()
    rendered = gen.render(gen.load_thresholds())
    for name in RULE_FILES:
        committed = (RULES / name).read_text(encoding="utf-8")
        assert committed == rendered[name], f"rules/{name} is stale: run python rules/generate.py"


def test_dashboard_colours_follow_thresholds_yml() -> None:
    """The committed dashboard's threshold colours are the ones thresholds.yml renders."""
    gen = load_generator()
    shipped = gen.DASHBOARD_FILE.read_text(encoding="utf-8")
    assert gen.sync_dashboard(gen.load_thresholds(), shipped) == shipped, (
        "grafana/dashboards/mlops-overview.json colours are stale: run python rules/generate.py"
    )


def test_changing_a_threshold_moves_the_dashboard_colours(tmp_path: Path) -> None:
    gen = load_generator()
    config = yaml.safe_load((RULES / "thresholds.yml").read_text(encoding="utf-8"))
    config["alerts"]["MlopsFeatureDriftHigh"]["critical"] = 0.3
    config["alerts"]["MlopsLogLinesInvalidHigh"]["warning"] = 0.02
    edited = tmp_path / "thresholds.yml"
    edited.write_text(yaml.safe_dump(config), encoding="utf-8")
    board = tmp_path / "board.json"
    shutil.copy(gen.DASHBOARD_FILE, board)
    args = ["--thresholds", str(edited), "--out-dir", str(tmp_path), "--dashboard", str(board)]
    assert gen.main(["--check", *args]) == 1
    assert gen.main(args) == 0
    assert gen.main(["--check", *args]) == 0
    panels = {p["title"]: p for p in json.loads(board.read_text(encoding="utf-8"))["panels"]}

    def steps(title: str, column: str | None = None) -> list[tuple[Any, str]]:
        field_config = panels[title]["fieldConfig"]
        if column is None:
            found = field_config["defaults"]["thresholds"]
        else:
            (override,) = [
                o for o in field_config["overrides"] if o["matcher"]["options"] == column
            ]
            (found,) = [p["value"] for p in override["properties"] if p["id"] == "thresholds"]
        return [(s["value"], s["color"]) for s in found["steps"]]

    bound = [(None, "green"), (0.1, "orange"), (0.3, "red")]
    assert steps("Distance against tolerance") == bound
    assert steps("Current drift", "Lower bound") == bound
    # PSI is a reported figure: no alert colours it
    assert steps("PSI per feature") == [(None, "green")]
    assert steps("Invalid line ratio") == [(None, "green"), (0.02, "orange")]
    assert steps("p99 latency (all replicas)") == [(None, "green"), (0.1, "orange"), (0.2, "red")]


def test_a_dashboard_without_a_coloured_panel_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gen = load_generator()
    board = json.loads(gen.DASHBOARD_FILE.read_text(encoding="utf-8"))
    board["panels"] = [p for p in board["panels"] if p.get("title") != "Invalid line ratio"]
    path = tmp_path / "board.json"
    path.write_text(json.dumps(board), encoding="utf-8")
    assert gen.main(["--out-dir", str(tmp_path), "--dashboard", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err.count("\n") == 0 and "'Invalid line ratio'" in err and "MlopsLogLinesInvalidHigh" in err
    )


def test_generator_check_mode_reports_stale_files(tmp_path: Path) -> None:
    gen = load_generator()
    assert gen.main(["--check", "--out-dir", str(tmp_path)]) == 1
    assert gen.main(["--out-dir", str(tmp_path)]) == 0
    assert gen.main(["--check", "--out-dir", str(tmp_path)]) == 0
    (tmp_path / "alerts.yml").write_text("groups: []\n", encoding="utf-8")
    assert gen.main(["--check", "--out-dir", str(tmp_path)]) == 1


def test_changing_a_threshold_is_one_edit(tmp_path: Path) -> None:
    gen = load_generator()
    config = yaml.safe_load((RULES / "thresholds.yml").read_text(encoding="utf-8"))
    config["alerts"]["MlopsPredictionLatencyHigh"]["critical"] = 0.35
    edited = tmp_path / "thresholds.yml"
    edited.write_text(yaml.safe_dump(config), encoding="utf-8")
    assert gen.main(["--thresholds", str(edited), "--out-dir", str(tmp_path)]) == 0
    rules = yaml.safe_load((tmp_path / "alerts.yml").read_text(encoding="utf-8"))["groups"][0]
    latency = {
        r["labels"]["severity"]: r
        for r in rules["rules"]
        if r["alert"] == "MlopsPredictionLatencyHigh"
    }
    assert latency["critical"]["expr"].endswith("> 0.35")
    assert "above 0.35s" in latency["critical"]["annotations"]["description"]
    assert latency["warning"]["expr"].endswith("> 0.1")


def test_for_override_renders_the_test_copy() -> None:
    gen = load_generator()
    rendered = yaml.safe_load(gen.render(gen.load_thresholds(), for_override="0s")["alerts.yml"])
    durations = {rule["for"] for rule in rendered["groups"][0]["rules"]}
    assert durations == {"0s"}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda c: c["alerts"].update(MlopsNoSuchAlert={"for": "5m"}),
            "alerts.MlopsNoSuchAlert: unknown key (expected one of: MlopsFeatureDriftDetected,",
        ),
        (
            lambda c: c["alerts"].update(MlopsExporterDwn={"for": "5m"}),
            "alerts.MlopsExporterDwn: unknown key (did you mean 'alerts.MlopsExporterDown'?)",
        ),
        (
            lambda c: c["alerts"]["MlopsFeatureDriftHigh"].update(warning="high"),
            "alerts.MlopsFeatureDriftHigh.warning: expected a finite number, got 'high' (str)",
        ),
        (
            lambda c: c["alerts"]["MlopsExporterDown"].update({"for": "soon"}),
            "alerts.MlopsExporterDown.for",
        ),
        (
            lambda c: c["alerts"]["MlopsNoPredictions"].update(severity="page"),
            "alerts.MlopsNoPredictions.severity: expected one of critical, warning, info, got "
            "'page'",
        ),
        (
            lambda c: c["alerts"]["MlopsExporterDown"].update(critical=1),
            "alerts.MlopsExporterDown.critical: unknown key",
        ),
        (
            lambda c: c["alerts"].pop("MlopsDriftResultsStale"),
            "alerts.MlopsDriftResultsStale.for: required key missing",
        ),
        (
            lambda c: (
                c["alerts"]["MlopsFeatureDriftHigh"].pop("critical")
                and c["alerts"]["MlopsFeatureDriftHigh"].pop("warning")
            ),
            "alerts.MlopsFeatureDriftHigh: needs a threshold for one of critical, warning, info",
        ),
        (lambda c: c.update(treshold=1), "treshold: unknown key (expected one of: runbook_url,"),
    ],
)
def test_bad_thresholds_give_one_line_naming_the_key(
    tmp_path: Path, edit: Any, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    gen = load_generator()
    config = yaml.safe_load((RULES / "thresholds.yml").read_text(encoding="utf-8"))
    edit(config)
    bad = tmp_path / "thresholds.yml"
    bad.write_text(yaml.safe_dump(config), encoding="utf-8")
    with pytest.raises(gen.ThresholdsError, match=re.escape(message)):
        gen.load_thresholds(bad)
    assert gen.main(["--thresholds", str(bad), "--out-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err
    assert not (tmp_path / "alerts.yml").exists()


# --- promtool ------------------------------------------------------------------------------


def test_promtool_check_rules() -> None:
    promtool = require_binary("promtool")
    result = _run([promtool, "check", "rules", *(f"rules/{n}" for n in RULE_FILES)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    promtool = require_binary("promtool")
    tests = sorted(str(p.relative_to(REPO_ROOT)) for p in (RULES / "tests").glob("*.yml"))
    assert tests, "no promtool unit tests in rules/tests/"
    result = _run([promtool, "test", "rules", *tests])
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_catch_a_changed_threshold(tmp_path: Path) -> None:
    """The unit tests can fail: with the critical PSI threshold moved they do."""
    promtool = require_binary("promtool")
    gen = load_generator()
    config = gen.load_thresholds()
    config["alerts"]["MlopsFeatureDriftHigh"]["critical"] = 0.5
    (tmp_path / "tests").mkdir()
    for name, text in gen.render(config).items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    shutil.copy(RULES / "tests" / "alerts_test.yml", tmp_path / "tests")
    result = _run([promtool, "test", "rules", "tests/alerts_test.yml"], cwd=tmp_path)
    assert result.returncode != 0
    assert "MlopsFeatureDriftHigh" in result.stdout + result.stderr


def _unit_tests() -> list[dict[str, Any]]:
    tests = []
    for path in sorted((RULES / "tests").glob("*.yml")):
        tests += yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]
    return tests


def test_every_alert_is_unit_tested_firing_and_not_firing() -> None:
    firing: dict[str, set[str]] = {}
    quiet: set[str] = set()
    for test in _unit_tests():
        for case in test.get("alert_rule_test", []):
            if case.get("exp_alerts"):
                for alert in case["exp_alerts"]:
                    firing.setdefault(case["alertname"], set()).add(alert["exp_labels"]["severity"])
            else:
                quiet.add(case["alertname"])
    for rule in alert_rules():
        name, severity = rule["alert"], rule["labels"]["severity"]
        assert severity in firing.get(name, set()), f"{name} ({severity}) never tested firing"
        assert name in quiet, f"{name} never tested not firing"


def _recording_cases() -> dict[str, list[dict[str, Any]]]:
    """Recorded name -> the promql_expr_test cases that query it directly (a bare selector)."""
    cases: dict[str, list[dict[str, Any]]] = {}
    for test in _unit_tests():
        for case in test.get("promql_expr_test", []):
            match = re.fullmatch(r"([a-z_]+:[a-z_]+:[a-z0-9_]+)(\{[^}]*\})?", case["expr"].strip())
            if match:
                cases.setdefault(match.group(1), []).append(case)
    return cases


def test_every_recording_rule_is_unit_tested_with_exact_samples() -> None:
    cases = _recording_cases()
    for name in recorded_names():
        assert cases.get(name), f"{name}: no promtool test queries it directly"
        assert any(c.get("exp_samples") for c in cases[name]), f"{name}: no expected samples"
        for case in cases[name]:
            for sample in case.get("exp_samples", []):
                assert isinstance(sample["value"], int | float), (name, sample)


def test_recorded_series_carry_exactly_the_labels_their_level_names() -> None:
    """``job_instance_model:...`` samples have labels job, instance and model, nothing else."""
    cases = _recording_cases()
    for name, found in cases.items():
        level = set(name.split(":")[0].split("_"))
        for case in found:
            for sample in case.get("exp_samples", []):
                labels = set(re.findall(r'(\w+)="', sample["labels"]))
                assert labels == level, f"{name}: labels {sorted(labels)} vs level {sorted(level)}"


# --- alert content -------------------------------------------------------------------------


def test_alert_names_are_camel_case_with_the_shared_prefix() -> None:
    for rule in alert_rules():
        assert re.fullmatch(r"Mlops(?:[A-Z][a-z0-9]+)+", rule["alert"]), rule["alert"]


def test_every_alert_has_severity_summary_description_and_runbook() -> None:
    anchors = github_anchors(RUNBOOK.read_text(encoding="utf-8"))
    prefix = "https://github.com/mlops-exporter/mlops-exporter/blob/main/docs/runbook.md#"
    for rule in alert_rules():
        name = rule["alert"]
        assert rule["labels"]["severity"] in SEVERITIES, name
        notes = rule["annotations"]
        assert set(notes) >= {"summary", "description", "runbook_url"}, name
        # up{} has no model label: the down exporter is named by its instance; nor has an
        # unrouted record, which belongs to no model.
        assert "{{ $labels.model }}" in notes["description"] or name in {
            "MlopsExporterDown",
            "MlopsLogLinesUnroutedHigh",
        }
        assert "{{ $labels.instance }}" in notes["description"], name
        assert "$value" in notes["description"] or name in {
            "MlopsExporterDown",
            "MlopsNoPredictions",
        }, name
        if name.startswith("MlopsFeatureDrift"):
            assert "{{ $labels.feature }}" in notes["description"], name
        assert notes["runbook_url"].startswith(prefix), name
        anchor = notes["runbook_url"].removeprefix(prefix)
        assert anchor == name.lower() and anchor in anchors, f"{name}: no runbook section"
        assert re.fullmatch(r"\d+[smh]", rule["for"]), name


def test_the_issues_alerts_exist_with_their_thresholds() -> None:
    by_name: dict[str, dict[str, str]] = {}
    for rule in alert_rules():
        by_name.setdefault(rule["alert"], {})[rule["labels"]["severity"]] = rule["expr"]
    # a severity on top of the verdict: never fires on a feature its own tolerance spares
    verdict = 'and ignoring (test)\n(mlops_feature_drift_detected{test="distance"} == 1)'
    assert by_name["MlopsFeatureDriftHigh"] == {
        "warning": f"(mlops_feature_drift_distance_lower_bound > 0.1)\n{verdict}",
        "critical": f"(mlops_feature_drift_distance_lower_bound > 0.25)\n{verdict}",
    }
    # the verdict, not a raw statistic: no shipped alert fires on PSI or a p-value alone
    detected = by_name["MlopsFeatureDriftDetected"]["warning"]
    assert 'mlops_feature_drift_detected{test="distance"} == 1' in detected
    assert 'mlops_feature_drift_detected{test="missing"} == 1' in detected
    for rule in alert_rules():
        for raw in ("mlops_feature_drift_psi", "_p_value", "mlops_feature_drift_ks_statistic"):
            assert raw not in rule["expr"], (rule["alert"], raw)
    latency = by_name["MlopsPredictionLatencyHigh"]
    assert latency["warning"].endswith('{quantile="0.99"} > 0.1')
    assert latency["critical"].endswith('{quantile="0.99"} > 0.2')
    assert by_name["MlopsExporterDown"]["critical"] == 'up{job="mlops-exporter"} == 0'
    for name in (
        "MlopsFeatureDriftDetected",
        "MlopsFeaturesDriftedShareHigh",
        "MlopsDriftResultsStale",
        "MlopsLogLinesInvalidHigh",
        "MlopsNoPredictions",
        "MlopsDriftWindowTooSmall",
    ):
        assert name in by_name


def test_the_quality_alerts_fire_on_the_verdict_and_on_outcomes_that_once_arrived() -> None:
    """Issue 15: the degradation alert is the exporter's verdict (its value the realised
    metric), never a comparison of a noisy figure with the reference; the missing-labels
    alert selects mlops_outcomes_total, so a model without outcomes has nothing to fire on."""
    by_name = {rule["alert"]: rule for rule in alert_rules()}
    degraded = by_name["MlopsModelQualityDegraded"]
    assert degraded["expr"].startswith("mlops_model_quality\n")
    assert "(mlops_model_quality_degraded == 1)" in degraded["expr"]
    assert "mlops_model_quality_reference" not in degraded["expr"]
    assert degraded["labels"]["severity"] == "critical"
    # the reference is looked up for the text, at the alerting series' own labels
    lookup = "mlops_model_quality_reference{job=%q,instance=%q,model=%q,metric=%q}"
    assert lookup in degraded["annotations"]["description"]
    missing = by_name["MlopsOutcomesMissing"]
    for part in (
        "(mlops_predictions_awaiting_outcome > 0)",
        "increase(mlops_outcomes_total[5m]) == 0 and mlops_outcomes_total > 0",
        "(increase(mlops_predictions_total[1h]) > 0)",
    ):
        assert part in missing["expr"], part
    assert "absent(" not in missing["expr"], "absent() would fire for models without outcomes"
    assert missing["for"] == "1h"


def test_the_version_alerts_judge_the_fleet_and_leave_normal_states_alone() -> None:
    """Issue 16: the mismatch alert is labelled with the monitored and the logged version,
    and is guarded fleet-wide (a rolling update, where each old sidecar sees only the old
    version, stays quiet); an empty staging stage is no poll failure; the unrouted share
    counts every prediction record, other versions included."""
    by_name = {rule["alert"]: rule for rule in alert_rules()}
    mismatch = by_name["MlopsModelVersionMismatch"]
    expr = mismatch["expr"]
    assert expr.startswith("sum by (job, instance, model, logged_version) (")
    assert "increase(mlops_predictions_other_version_total[5m]) > 0" in expr
    assert '"logged_version", "$1", "version", "(.*)"' in expr
    assert "group_left (version, stage)\n  mlops_model_info\n" in expr
    # the guard: no replica of the job logged the monitored version (not this one alone)
    guard = expr.split("unless on (job, model, version)")[1]
    assert "sum by (job, model, version) (" in guard and "instance" not in guard.split("*")[0]
    assert "increase(mlops_predictions_total[5m])" in guard
    assert guard.rstrip().endswith(") > 0\n  )")
    assert "topk" not in expr, "a changing top version would restart `for`"
    assert mismatch["for"] == "5m"  # plus the 5m range: 10 minutes
    notes = mismatch["annotations"]
    for label in ("version", "logged_version", "stage", "job"):
        assert f"{{{{ $labels.{label} }}}}" in notes["description"], label
    polls = by_name["MlopsReferencePollFailing"]
    assert polls["expr"].startswith("increase(mlops_reference_poll_errors_total[5m]) > 0\n")
    assert 'mlops_model_info{stage="staging"}, "reason", "no_version"' in polls["expr"]
    assert 'label "version"' in polls["annotations"]["description"]
    assert polls["for"] == "15m"
    # predictions of other versions are read: not "no predictions" (mlops_predictions_total
    # counts the monitored version only), so an old replica draining does not fire it
    silent = by_name["MlopsNoPredictions"]["expr"]
    assert silent.startswith("job_instance_model:mlops_predictions:rate5m == 0\n")
    assert "unless on (job, instance, model)" in silent
    assert "rate(mlops_predictions_other_version_total[5m]) > 0" in silent
    unrouted = by_name["MlopsLogLinesUnroutedHigh"]
    assert unrouted["expr"] == "job_instance:mlops_log_lines_unrouted:ratio_rate5m > 0.05"
    (ratio,) = [r["expr"] for r in all_rules() if r.get("record", "").startswith("job_instance:")]
    for counter in (
        "mlops_log_lines_unrouted_total",
        "mlops_predictions_total",
        "mlops_predictions_other_version_total",
    ):
        assert f"rate({counter}[5m])" in ratio.split("/")[1], counter


def test_runbook_has_a_section_for_every_alert_and_no_other() -> None:
    sections = set(re.findall(r"^## (\w+)$", RUNBOOK.read_text(encoding="utf-8"), re.M))
    assert sections == {rule["alert"] for rule in alert_rules()}


# --- metric names: rules and dashboards against the exporter's list -------------------------


def test_rules_and_dashboards_name_only_exported_or_recorded_metrics() -> None:
    recorded = recorded_names()
    places = [(f"rules: {r.get('alert') or r.get('record')}", r["expr"]) for r in all_rules()]
    places += dashboard_exprs()
    for where, expr in places:
        exported, used_records = metric_names(expr)
        assert exported <= EXPORTER_METRICS, f"{where}: unknown {exported - EXPORTER_METRICS}"
        assert used_records <= recorded, f"{where}: not recorded {used_records - recorded}"


def test_recorded_names_follow_level_metric_operations() -> None:
    for name in recorded_names():
        level, metric, operations = name.split(":")
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", level), name
        assert metric.startswith("mlops_") and not metric.endswith("_total"), name
        assert operations, name


def test_metric_name_extraction() -> None:
    exported, recorded = metric_names(
        'sum by (le) (rate(mlops_x_bucket{job=~"$job", a="mlops_not_a_metric"}[5m]))'
        " / job_model:mlops_y:rate5m"
    )
    assert exported == {"mlops_x_bucket"}
    assert recorded == {"job_model:mlops_y:rate5m"}


# --- Alertmanager example ------------------------------------------------------------------


def test_amtool_check_config_passes() -> None:
    amtool = require_binary("amtool")
    result = _run([amtool, "check-config", "rules/alertmanager.yml"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_commented_slack_and_pagerduty_receivers_are_valid(tmp_path: Path) -> None:
    amtool = require_binary("amtool")
    lines = (RULES / "alertmanager.yml").read_text(encoding="utf-8").splitlines()
    start = lines.index("receivers:")
    enabled = [re.sub(r"^(\s*)# (slack_api_url_file)", r"\1\2", line) for line in lines[:start]]
    enabled += [re.sub(r"^(\s+)# ", r"\1", line) for line in lines[start:]]
    text = "\n".join(enabled) + "\n"
    assert "slack_configs:" in text and "pagerduty_configs:" in text
    (tmp_path / "am.yml").write_text(text, encoding="utf-8")
    result = _run([amtool, "check-config", str(tmp_path / "am.yml")])
    assert result.returncode == 0, result.stdout + result.stderr


def test_alertmanager_routes_every_severity_and_inhibits_warnings() -> None:
    config = yaml.safe_load((RULES / "alertmanager.yml").read_text(encoding="utf-8"))
    route = config["route"]
    for key in ("group_wait", "group_interval", "repeat_interval"):
        assert key in route
    routed = {m for sub in route["routes"] for m in sub["matchers"]}
    for severity in {rule["labels"]["severity"] for rule in alert_rules()}:
        assert f'severity="{severity}"' in routed
    receivers = {r["name"] for r in config["receivers"]}
    assert {sub["receiver"] for sub in route["routes"]} <= receivers
    inhibit = config["inhibit_rules"][0]
    assert inhibit["source_matchers"] == ['severity="critical"']
    assert inhibit["target_matchers"] == ['severity="warning"']
    assert "alertname" in inhibit["equal"]
