"""``mlops validate`` as a CI job runs it: real model and data files, real exit codes.

The tests of the exit code and of one-line errors run the ``mlops`` entry point in a separate
process, exactly as a CI job does.  The others call the same ``mlops_core.cli.main(argv)``
in-process: each interpreter start that unpickles a scikit-learn model costs ~0.8 s here and
the CI machine is shared.
"""

from __future__ import annotations

import json
import pickle
import re
import subprocess
import sys

import joblib
import numpy as np
import pytest
import yaml
from sklearn.datasets import make_classification
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.svm import SVC

from mlops_core.cli import main
from mlops_core.registry import ModelRegistry
from tests import s3_server as _s3
from tests.conftest import REPO_ROOT

# the S3 test server (a moto process), its AWS variables and a new bucket per test
s3_server, s3_env, s3_url = _s3.s3_server, _s3.s3_env, _s3.s3_url

# the real dispatcher (``mlops_core.cli.main``), which the ``mlops`` console script runs
_ENTRY = "import sys, mlops_core.cli as c; sys.exit(c.main(sys.argv[1:]))"
# where the gate's config and an example session are documented
VALIDATION_DOC = REPO_ROOT / "docs" / "validation.md"
CONFIG = {"min_accuracy": 0.8, "max_latency_ms": 100, "required_methods": ["predict"]}


def mlops(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _ENTRY, "validate", *map(str, args)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def mlops_main(capsys, monkeypatch):
    """``mlops validate ARGS`` through ``main(argv)`` in this process."""
    monkeypatch.chdir(REPO_ROOT)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        argv = ["validate", *map(str, args)]
        capsys.readouterr()
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(["mlops", *argv], code, out, err)

    return run


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("validate")
    X, y = make_classification(n_samples=600, n_features=4, class_sep=2.0, random_state=3)
    good = LogisticRegression().fit(X[:400], y[:400])
    dummy = DummyClassifier(strategy="constant", constant=0).fit(X[:400], y[:400])
    (d / "good.pkl").write_bytes(pickle.dumps(good))
    joblib.dump(dummy, d / "dummy.joblib")
    Xv, yv = X[400:], y[400:]
    np.savez(d / "val.npz", X=Xv, y=yv)
    # CSV with the target in the middle, named "label"
    lines = ["f0,f1,label,f2,f3"]
    lines += [f"{r[0]},{r[1]},{t},{r[2]},{r[3]}" for r, t in zip(Xv, yv, strict=True)]
    (d / "val.csv").write_text("\n".join(lines) + "\n")
    (d / "gate.yml").write_text(
        "min_accuracy: 0.8\nmax_latency_ms: 100\nrequired_methods: [predict]\n"
    )
    (d / "gate.json").write_text(json.dumps(CONFIG))
    return {
        "dir": d,
        "good_accuracy": float(np.mean(good.predict(Xv) == yv)),
        "dummy_accuracy": float(np.mean(yv == 0)),
    }


def test_passing_model_prints_table_and_exits_0(files):
    d = files["dir"]
    proc = mlops(d / "good.pkl", d / "val.csv", "--config", d / "gate.yml", "--target", "label")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["CHECK", "VALUE", "THRESHOLD", "OUTCOME"]
    row = next(line.split() for line in lines if line.startswith("min_accuracy"))
    assert float(row[1]) == pytest.approx(files["good_accuracy"], abs=1e-6)
    assert row[2:] == ["0.8", "pass"]
    assert "PASSED: all checks passed" in proc.stdout


def test_failing_gate_exits_1_with_the_reason(files):
    d = files["dir"]
    proc = mlops(d / "dummy.joblib", d / "val.npz", "--config", d / "gate.json")
    assert proc.returncode == 1
    assert "FAILED: 1 problem(s)" in proc.stdout
    acc = files["dummy_accuracy"]
    assert f"accuracy {acc:.4g} is below the minimum 0.8 (min_accuracy)" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_json_output(files, mlops_main):
    d = files["dir"]
    proc = mlops_main(d / "good.pkl", d / "val.npz", "--config", d / "gate.json", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["passed"] is True
    assert result["metrics"]["accuracy"] == pytest.approx(files["good_accuracy"])
    assert result["metrics"]["model_size_mb"] == pytest.approx(
        (d / "good.pkl").stat().st_size / 2**20
    )
    assert [c["check"] for c in result["checks"]] == [
        "required_methods",
        "min_accuracy",
        "max_latency_ms",
    ]


def test_default_target_is_the_last_column(files, tmp_path, mlops_main):
    d = files["dir"]
    with np.load(d / "val.npz") as data:
        X, y = data["X"], data["y"]
    rows = ["a,b,c,d,y"] + [",".join(map(str, [*r, t])) for r, t in zip(X, y, strict=True)]
    (tmp_path / "v.csv").write_text("\n".join(rows) + "\n")
    proc = mlops_main(d / "good.pkl", tmp_path / "v.csv", "--config", d / "gate.yml", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["metrics"]["accuracy"] == pytest.approx(files["good_accuracy"])


def test_baseline_comparison(files, tmp_path, mlops_main):
    d = files["dir"]
    cfg = tmp_path / "cmp.yml"
    cfg.write_text("metric_thresholds:\n  accuracy:\n    min_absolute_change: 0.0\n")
    worse = mlops_main(
        d / "dummy.joblib", d / "val.npz", "--config", cfg, "--baseline", d / "good.pkl"
    )
    assert worse.returncode == 1
    assert "accuracy vs baseline (absolute)" in worse.stdout
    assert ["METRIC", "VALUE", "BASELINE"] in [ln.split() for ln in worse.stdout.splitlines()]
    better = mlops_main(
        d / "good.pkl", d / "val.npz", "--config", cfg, "--baseline", d / "dummy.joblib"
    )
    assert better.returncode == 0, better.stdout


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("unknown_key", "c.yml: min_acc: unknown key (expected one of: min_accuracy, min_f1,"),
        ("missing_model", "model file not found:"),
        ("corrupt_model", "cannot load model"),
        ("npz_without_y", "missing array(s) y; found X"),
        ("bad_target", "no target column 'nope'; columns: f0, f1, label, f2, f3"),
        ("bad_yaml", "not valid YAML/JSON"),
        ("register_without_registry", "--register needs --registry DIR"),
        ("missing_config", "config file not found:"),
    ],
)
def test_bad_input_is_one_line_on_stderr(files, tmp_path, setup, expected):
    d = files["dir"]
    model, data, config, extra = d / "good.pkl", d / "val.npz", d / "gate.yml", []
    if setup == "unknown_key":
        config = tmp_path / "c.yml"
        config.write_text("min_acc: 0.8\n")
    elif setup == "missing_model":
        model = tmp_path / "absent.pkl"
    elif setup == "corrupt_model":
        model = tmp_path / "corrupt.pkl"
        model.write_bytes(b"not a pickle at all")
    elif setup == "npz_without_y":
        data = tmp_path / "x.npz"
        np.savez(data, X=np.zeros((3, 4)))
    elif setup == "bad_target":
        data, extra = d / "val.csv", ["--target", "nope"]
    elif setup == "bad_yaml":
        config = tmp_path / "c.yml"
        config.write_text("min_accuracy: [0.8\n")
    elif setup == "register_without_registry":
        extra = ["--register", "churn", "1.0.0"]
    elif setup == "missing_config":
        config = tmp_path / "absent.yml"
    proc = mlops(model, data, "--config", config, *extra)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("mlops validate: error: ")
    assert expected in lines[0]


def test_register_only_when_the_gate_passes(files, tmp_path, mlops_main):
    d = files["dir"]
    reg = tmp_path / "registry"
    failed = mlops_main(
        d / "dummy.joblib", d / "val.npz", "--config", d / "gate.yml",
        "--register", "churn", "0.9.0", "--registry", reg,
    )  # fmt: skip
    assert failed.returncode == 1
    registry = ModelRegistry(reg)
    assert "churn" not in registry.list_models()

    passed = mlops_main(
        d / "good.pkl", d / "val.npz", "--config", d / "gate.yml",
        "--register", "churn", "1.0.0", "--registry", reg,
    )  # fmt: skip
    assert passed.returncode == 0, passed.stderr
    assert "registered: churn 1.0.0" in passed.stdout
    version = registry.get_version("churn", "1.0.0")
    assert version.metrics["accuracy"] == pytest.approx(files["good_accuracy"])
    assert version.tags == {"validated_by": "mlops validate"}
    assert version.path.read_bytes() == (d / "good.pkl").read_bytes()

    # the same version again is refused before the gate runs: no table, one line, exit 1
    again = mlops_main(
        d / "good.pkl", d / "val.npz", "--config", d / "gate.yml",
        "--register", "churn", "1.0.0", "--registry", reg,
    )  # fmt: skip
    assert again.returncode == 1
    assert again.stdout == ""
    assert again.stderr.strip() == (
        f"mlops validate: error: model 'churn' version '1.0.0' is already in registry {reg};"
        " choose a new version"
    )
    assert [v.version for v in registry.list_versions("churn")] == ["1.0.0"]


def test_missing_target_values_in_csv_fail_the_gate(files, tmp_path, mlops_main):
    d = files["dir"]
    lines = (d / "val.csv").read_text().splitlines()
    fields = lines[1].split(",")
    fields[2] = ""  # the label of the first row is missing
    lines[1] = ",".join(fields)
    (tmp_path / "holes.csv").write_text("\n".join(lines) + "\n")
    proc = mlops_main(
        d / "good.pkl", tmp_path / "holes.csv", "--config", d / "gate.yml", "--target", "label"
    )
    assert proc.returncode == 1
    assert f"y_val has 1 missing (NaN or infinite) label(s) of {len(lines) - 1}" in proc.stdout


@pytest.mark.parametrize("bom", [False, True], ids=["utf-8", "utf-8 with a byte-order mark"])
def test_spreadsheet_csv_with_a_byte_order_mark_keeps_its_target_column(
    files, tmp_path, mlops_main, bom
):
    """A first column named ``target``, as Excel saves "CSV UTF-8": the mark is no part of
    its name, so it is the target (before, the last feature silently was)."""
    d = files["dir"]
    with np.load(d / "val.npz") as data:
        X, y = data["X"], data["y"]
    rows = ["target,a,b,c,d"] + [",".join(map(str, [t, *r])) for r, t in zip(X, y, strict=True)]
    (tmp_path / "v.csv").write_text(
        "\n".join(rows) + "\n", encoding="utf-8-sig" if bom else "utf-8"
    )
    proc = mlops_main(d / "good.pkl", tmp_path / "v.csv", "--config", d / "gate.yml", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["metrics"]["accuracy"] == pytest.approx(files["good_accuracy"])


def test_validate_reads_a_csv_as_profiles_do(tmp_path):
    """One reader (mlops_core.datafiles): the same quoting errors, with the line, as a profile."""
    from mlops_core.cli.validate import load_data
    from mlops_core.errors import ValidationInputError

    bad = tmp_path / "bad.csv"
    bad.write_text('a,b,target\n1,2,0\n3,"4,1\n5,6,1\n', encoding="utf-8")
    with pytest.raises(ValidationInputError, match=r"bad\.csv:3: unclosed quote"):
        load_data(str(bad))
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b,target\n1,2,0\n3,1\n", encoding="utf-8")
    with pytest.raises(ValidationInputError, match=r"ragged\.csv:3: 2 fields, header has 3"):
        load_data(str(ragged))


def _table(lines: list[str], header: str) -> dict[str, list[str]]:
    """Rows (by first column) of the console table that starts at the line ``header``."""
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = {}
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        name, *cells = re.split(r"\s{2,}", line.strip())
        rows[name] = cells
    return rows


def test_documented_session_is_what_its_gate_yml_produces(files, tmp_path, mlops_main):
    """The doc's ``gate.yml`` and its ``$ mlops validate`` session agree with each other."""
    blocks = re.findall(r"```\w*\n(.*?)```", VALIDATION_DOC.read_text("utf-8"), re.DOTALL)
    (gate,) = [b for b in blocks if b.startswith("# gate.yml")]
    (session,) = [b for b in blocks if b.startswith("$ mlops validate")]
    config = yaml.safe_load(gate)
    lines = session.splitlines()
    checks, metrics = _table(lines, "CHECK "), _table(lines, "METRIC ")

    # The real gate, run with that gate.yml on a model without predict_proba, makes the
    # same checks (a comparison is named "absolute" or "relative" after the gate's key).
    d = files["dir"]
    with np.load(d / "val.npz") as data:
        (tmp_path / "svc.pkl").write_bytes(pickle.dumps(SVC().fit(data["X"], data["y"])))
    (tmp_path / "gate.yml").write_text(gate)
    proc = mlops_main(
        tmp_path / "svc.pkl", d / "val.npz", "--config", tmp_path / "gate.yml",
        "--baseline", d / "good.pkl",
    )  # fmt: skip
    assert list(_table(proc.stdout.splitlines(), "CHECK ")) == list(checks)

    # Each documented comparison threshold follows from its baseline and the gate's change.
    compared = [name for name in checks if " vs baseline " in name]
    assert compared, "the documented session shows no comparison with the baseline"
    for name in compared:
        metric, kind = re.fullmatch(r"(\w+) vs baseline \((absolute|relative)\)", name).groups()
        spec = config["metric_thresholds"][metric]
        change = spec[f"min_{kind}_change"]
        smaller_is_better = metric == "model_size_mb" or metric.startswith("latency")
        greater = spec.get("greater_is_better", not smaller_is_better)
        baseline = float(metrics[metric][1])
        delta = change if kind == "absolute" else abs(baseline) * change
        value, threshold, outcome = checks[name]
        assert float(threshold) == pytest.approx(
            baseline + delta if greater else baseline - delta, rel=1e-4
        ), name
        passed = float(value) >= float(threshold) if greater else float(value) <= float(threshold)
        assert outcome == ("pass" if passed else "fail"), name


# --- --register --reference: the profile and the gate's metrics travel with the version ------


def _reference_csv(path, files):
    with np.load(files["dir"] / "val.npz") as data:
        X = data["X"]
    path.write_text("f0,f1,f2,f3\n" + "".join(",".join(map(str, r)) + "\n" for r in X))
    return path


def test_register_with_reference_stores_the_profile_and_the_gate_metrics(
    files, tmp_path, mlops_main
):
    from mlops_core.profile import ReferenceProfile

    d = files["dir"]
    ref = _reference_csv(tmp_path / "train.csv", files)
    reg = tmp_path / "registry"
    proc = mlops_main(
        d / "good.pkl", d / "val.npz", "--config", d / "gate.yml",
        "--register", "churn", "1.0.0", "--registry", reg, "--reference", ref,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "registered: churn 1.0.0 (stage none) with its reference profile" in proc.stdout
    registry = ModelRegistry(reg)
    profile = registry.get_reference_profile("churn", "1.0.0")
    assert profile.hash == ReferenceProfile.from_file(ref).hash
    metrics = registry.get_version_metrics("churn", "1.0.0")
    assert metrics["accuracy"] == pytest.approx(files["good_accuracy"])
    assert {"f1", "roc_auc", "latency_p95_ms", "n_samples"} <= set(metrics)


def test_a_bad_reference_fails_before_the_gate_and_registers_nothing(files, tmp_path, mlops_main):
    d = files["dir"]
    (tmp_path / "bad.csv").write_text("f0,f1\n1\n")
    reg = tmp_path / "registry"
    proc = mlops_main(
        d / "good.pkl", d / "val.npz", "--config", d / "gate.yml",
        "--register", "churn", "1.0.0", "--registry", reg, "--reference", tmp_path / "bad.csv",
    )  # fmt: skip
    assert proc.returncode == 1 and proc.stdout == ""  # no gate table: it never ran
    assert proc.stderr.strip() == (
        f"mlops validate: error: {tmp_path / 'bad.csv'}:2: 1 fields, header has 2"
    )
    assert not reg.exists()
    proc = mlops_main(d / "good.pkl", d / "val.npz", "--config", d / "gate.yml",
                      "--reference", tmp_path / "bad.csv")  # fmt: skip
    assert proc.stderr.strip() == (
        "mlops validate: error: --reference needs --register NAME VERSION"
    )


def test_register_with_reference_into_an_s3_registry(files, tmp_path, mlops_main, s3_url):
    d = files["dir"]
    ref = _reference_csv(tmp_path / "train.csv", files)
    proc = mlops_main(
        d / "good.pkl", d / "val.npz", "--config", d / "gate.yml",
        "--register", "churn", "1.0.0", "--registry", s3_url, "--reference", ref,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    registry = ModelRegistry(s3_url, cache_dir=tmp_path / "cache")
    assert registry.get_reference_profile("churn", "1.0.0").feature_names == [
        "f0", "f1", "f2", "f3",
    ]  # fmt: skip
    assert registry.get_version("churn", "1.0.0").tags == {"validated_by": "mlops validate"}
    assert registry.get_model_path("churn", "1.0.0").read_bytes() == (d / "good.pkl").read_bytes()


@pytest.mark.parametrize(
    ("gate", "expected"),
    [
        ("", "g.yml: configures no check: set at least one of min_accuracy, min_f1, "
         "min_roc_auc, max_latency_ms, max_model_size_mb, metric_thresholds, required_methods"),
        ("# thresholds to come\n\n", "g.yml: configures no check"),
        ("latency_samples: 20\n", "g.yml: configures no check"),
        ("min_accuracy: 5\n", "g.yml: min_accuracy: must lie in [0, 1], got 5 (a share: 0.87, "
         "not 87)"),
        ("max_latency_ms: -5\n", "g.yml: max_latency_ms: must be positive, got -5"),
    ],
)  # fmt: skip
def test_a_gate_config_that_cannot_pass_or_checks_nothing_is_refused(
    files, tmp_path, gate, expected
):
    """A gate that always fails, or passes having checked nothing, is a bug in the pipeline:
    one line and status 1 before the model is loaded (an absent model file is not reached)."""
    config = tmp_path / "g.yml"
    config.write_text(gate)
    proc = mlops(tmp_path / "absent.pkl", files["dir"] / "val.npz", "--config", config)
    assert proc.returncode == 1, proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], proc.stderr
    assert "PASSED" not in proc.stdout


def test_a_gate_of_required_methods_alone_is_a_check(files, tmp_path, mlops_main):
    config = tmp_path / "g.yml"
    config.write_text("required_methods: [predict, predict_proba]\n")
    proc = mlops_main(files["dir"] / "good.pkl", files["dir"] / "val.npz", "--config", config)
    assert proc.returncode == 0, proc.stderr
    assert "PASSED: all checks passed" in proc.stdout


def _dataframe_model(tmp_path):
    """A pipeline fitted on a DataFrame that selects its columns by name, and a CSV with
    its columns in another order (and one more)."""
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(5)
    n = 400
    frame = pd.DataFrame({"age": rng.normal(40, 10, n), "plan": rng.choice(["a", "b"], n)})
    y = ((frame["age"] - 40) / 10 + 2 * (frame["plan"] == "b") > 1).astype(int)
    select = ColumnTransformer([("num", StandardScaler(), ["age"]),
                                ("cat", OneHotEncoder(), ["plan"])])  # fmt: skip
    model = make_pipeline(select, LogisticRegression()).fit(frame, y)
    joblib.dump(model, tmp_path / "model.joblib")
    rows = ["plan,extra,age,target"] + [
        f"{p},1,{a},{t}" for a, p, t in zip(frame["age"], frame["plan"], y, strict=True)
    ]
    (tmp_path / "val.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "gate.yml").write_text("min_accuracy: 0.5\nmax_latency_ms: 500\n")
    return model


def test_a_model_fitted_on_a_dataframe_gets_the_csv_columns_by_name(tmp_path, mlops_main):
    # the header was dropped: a ColumnTransformer selecting columns by name raised, and
    # every other such model warned "X does not have valid feature names" per predict call
    _dataframe_model(tmp_path)
    result = mlops_main(tmp_path / "model.joblib", tmp_path / "val.csv",
                        "--config", tmp_path / "gate.yml", "--json")  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["passed"] and report["metrics"]["accuracy"] > 0.9
    assert "feature names" not in result.stderr


def test_without_pandas_a_dataframe_model_gets_its_columns_in_order_and_one_note(
    tmp_path, mlops_main, monkeypatch
):
    import builtins

    model = _dataframe_model(tmp_path)
    numeric = tmp_path / "numeric.joblib"  # a model that takes an array in its column order
    import pandas as pd

    rng = np.random.default_rng(6)
    frame = pd.DataFrame({"b": rng.normal(0, 1, 300), "a": rng.normal(0, 1, 300)})
    yy = (frame["a"] > 0).astype(int)
    joblib.dump(LogisticRegression().fit(frame, yy), numeric)
    rows = ["a,b,target"] + [f"{a},{b},{t}" for a, b, t in zip(frame["a"], frame["b"], yy,
                                                                 strict=True)]  # fmt: skip
    (tmp_path / "ab.csv").write_text("\n".join(rows) + "\n")
    real_import = builtins.__import__

    def no_pandas(name, *args, **kwargs):
        if name == "pandas":
            raise ImportError("No module named 'pandas'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pandas)
    result = mlops_main(numeric, tmp_path / "ab.csv", "--config", tmp_path / "gate.yml",
                        "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["metrics"]["accuracy"] > 0.95  # b, a: the model's order
    (note,) = result.stderr.strip().splitlines()
    assert note.startswith("note: the model was fitted on a DataFrame (2 named columns)")
    del model


def test_a_csv_without_a_column_the_model_was_fitted_with_is_one_error(tmp_path, mlops_main):
    _dataframe_model(tmp_path)
    text = (tmp_path / "val.csv").read_text().replace("plan,extra,age", "plan,extra,years")
    (tmp_path / "val.csv").write_text(text)
    result = mlops_main(tmp_path / "model.joblib", tmp_path / "val.csv",
                        "--config", tmp_path / "gate.yml")  # fmt: skip
    assert result.returncode == 1
    assert "no column 'age' of the 2 the model was fitted with (feature_names_in_)" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr


def test_a_baseline_fitted_on_other_named_columns_is_judged_on_its_own(tmp_path, mlops_main):
    # the baseline got the model's DataFrame: one fitted on a subset of its columns (or on
    # them in another order) raised "Feature names unseen at fit time"
    import pandas as pd

    _dataframe_model(tmp_path)
    frame = pd.read_csv(tmp_path / "val.csv")
    y = frame.pop("target")
    joblib.dump(LogisticRegression().fit(frame[["age"]], y), tmp_path / "subset.joblib")
    result = mlops_main(tmp_path / "model.joblib", tmp_path / "val.csv", "--config",
                        tmp_path / "gate.yml", "--baseline", tmp_path / "subset.joblib",
                        "--json")  # fmt: skip
    report = json.loads(result.stdout)
    want = float(np.mean(LogisticRegression().fit(frame[["age"]], y).predict(frame[["age"]]) == y))
    assert report["baseline_metrics"]["accuracy"] == pytest.approx(want), report
    assert "feature names" not in result.stderr, result.stderr
