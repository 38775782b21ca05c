"""``mlops profile build|show`` and ``mlops drift`` on the example data shipped in the repo."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_core.cli import profile as profile_cli
from mlops_core.errors import MlopsError

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


def run(argv: list[str]) -> int:
    """Parse with a parser holding only this module's commands, then run like ``mlops``."""
    parser = argparse.ArgumentParser(prog="mlops")
    profile_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture
def saved_profile(tmp_path: Path) -> Path:
    out = tmp_path / "reference.profile.json"
    assert run(["profile", "build", str(EXAMPLES / "reference.csv"), "-o", str(out)]) == 0
    return out


def test_build_writes_a_loadable_profile(tmp_path: Path, capsys) -> None:
    saved_profile = tmp_path / "p.json"
    assert run(["profile", "build", str(EXAMPLES / "reference.csv"), "-o", str(saved_profile)]) == 0
    out = capsys.readouterr().out
    doc = json.loads(saved_profile.read_text())
    assert f"wrote {saved_profile}: 4 features, 2000 rows, hash {doc['hash'][:16]}" in out
    assert list(doc["features"]) == ["age", "income", "tenure_months", "plan"]
    assert doc["features"]["plan"]["kind"] == "categorical"


def test_build_options(tmp_path: Path) -> None:
    out = tmp_path / "p.json"
    argv = ["profile", "build", str(EXAMPLES / "reference.csv"), "-o", str(out)]
    run([*argv, "--buckets", "4", "--categorical", "age", "--features", "age,income"])
    doc = json.loads(out.read_text())
    assert list(doc["features"]) == ["age", "income"]
    assert doc["features"]["age"]["kind"] == "categorical"
    assert len(doc["features"]["income"]["edges"]) == 3


@pytest.mark.parametrize(
    "options",
    [
        ["--categorical", "tenure_months"],  # before DATA: it must not take the file name
        ["--categorical", "tenure_months,age"],
        ["--categorical", "tenure_months", "--categorical", "age"],
    ],
)
def test_categorical_takes_one_word_and_leaves_data_alone(tmp_path: Path, options) -> None:
    out = tmp_path / "x.json"
    assert run(["profile", "build", *options, str(EXAMPLES / "reference.csv"), "-o", str(out)]) == 0
    kinds = {name: f["kind"] for name, f in json.loads(out.read_text())["features"].items()}
    expected = {c for o in options[1::2] for c in o.split(",")}
    assert {name for name, kind in kinds.items() if kind == "categorical"} == expected | {"plan"}


def test_column_list_with_an_empty_name_is_a_usage_error(tmp_path: Path, capsys) -> None:
    argv = ["profile", "build", str(EXAMPLES / "reference.csv"), "-o", str(tmp_path / "x.json")]
    with pytest.raises(SystemExit) as exc:
        run([*argv, "--features", "age,,income"])
    assert exc.value.code == 2
    assert "empty column name in 'age,,income'" in capsys.readouterr().err


def test_drift_on_a_prediction_log_counts_only_predictions(tmp_path: Path, capsys) -> None:
    from mlops_core import PredictionLogger

    log = tmp_path / "predictions.jsonl"
    logger = PredictionLogger("churn-api", output=str(log))
    logger.logger.info("model_loaded", path="/models/churn.pkl")
    for i in range(201):
        row = {"age": 30 + i % 20, "income": 50000 + i, "tenure_months": i % 30, "plan": "pro"}
        logger.log_prediction(f"r{i}", row, {"class": 1}, 5.0)
        logger.logger.info("health_check", status="ok")
    logger.close()
    capsys.readouterr()
    assert run(["drift", str(EXAMPLES / "reference.csv"), str(log), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    for name, result in report["features"].items():
        assert (result["n_current"], result["missing_rate"]) == (201, 0.0), name


def test_show_table_and_json(saved_profile: Path, capsys) -> None:
    capsys.readouterr()
    assert run(["profile", "show", str(saved_profile)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["FEATURE", "KIND", "N", "MISSING", "BUCKETS", "RANGE"]
    tenure = next(line for line in lines if line.startswith("tenure_months"))
    assert tenure.split()[1:5] == ["numeric", "1958", "42", "10"]
    assert run(["profile", "show", str(saved_profile), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    plan = next(f for f in doc["features"] if f["feature"] == "plan")
    assert plan["bucket_labels"] == ["basic", "pro", "team", "__other__", "__unseen__"]


def test_drift_table_flags_the_drifted_features(saved_profile: Path, capsys) -> None:
    capsys.readouterr()
    assert run(["drift", str(saved_profile), str(EXAMPLES / "current.csv")]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:5]}
    assert rows["income"][2] == "DRIFT" and rows["plan"][2] == "DRIFT"
    assert rows["age"][2] == "ok" and rows["tenure_months"][2] == "ok"
    assert "drift in 2 of 4 features (50%): income, plan" in out


def test_drift_json_from_raw_reference(capsys) -> None:
    ref, cur = EXAMPLES / "reference.csv", EXAMPLES / "current.csv"
    assert run(["drift", str(ref), str(cur), "--json", "--correction", "bonferroni"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["features_with_drift"] == ["income", "plan"]
    assert report["correction"] == "bonferroni"
    assert report["features"]["plan"]["n_unseen"] > 0
    assert report["features"]["tenure_months"]["n_missing"] > 0


def test_drift_tests_option_and_fail_on_drift(saved_profile: Path, capsys) -> None:
    argv = ["drift", str(saved_profile), str(EXAMPLES / "current.csv"), "--json"]
    assert run([*argv, "--tests", "ks,chi2", "--fail-on-drift"]) == profile_cli.DRIFT_EXIT_CODE
    report = json.loads(capsys.readouterr().out)
    assert report["features"]["age"]["tests"] == ["ks", "chi2"]  # chi2 over the PSI buckets
    assert report["features"]["plan"]["tests"] == ["chi2"]
    assert report["features"]["plan"]["skipped_tests"] == {
        "ks": "does not apply to a categorical feature"
    }
    assert run([*argv, "--features", "age", "--fail-on-drift"]) == 0
    capsys.readouterr()
    assert run([*argv, "--tests", "ks"]) == 0  # ks skipped for plan, whose verdict still runs
    plan = json.loads(capsys.readouterr().out)["features"]["plan"]
    assert "ks" in plan["skipped_tests"] and plan["drift_detected"] is True


def test_drift_tolerance_option(saved_profile: Path, capsys) -> None:
    argv = ["drift", str(saved_profile), str(EXAMPLES / "current.csv"), "--json"]
    assert run([*argv, "--tolerance", "0.9"]) == 0
    loose = json.loads(capsys.readouterr().out)
    assert loose["features_with_drift"] == []  # nothing in the example moved by 90%
    assert {f["tolerance"] for f in loose["features"].values()} == {0.9}
    assert run([*argv]) == 0
    assert json.loads(capsys.readouterr().out)["features_with_drift"] == ["income", "plan"]


@pytest.mark.parametrize("value", ["1.5", "-0.1", "nan", "five"])
def test_drift_tolerance_outside_zero_one_is_a_usage_error(
    saved_profile: Path, value: str, capsys
) -> None:
    with pytest.raises(SystemExit) as exc:
        run(["drift", str(saved_profile), str(EXAMPLES / "current.csv"), "--tolerance", value])
    assert exc.value.code == 2
    assert "argument --tolerance: expected a distance in [0, 1) such as 0.05" in (
        capsys.readouterr().err
    )


def test_drift_with_unknown_test_is_one_error(saved_profile: Path) -> None:
    with pytest.raises(MlopsError, match="unknown test 'kss'"):
        run(["drift", str(saved_profile), str(EXAMPLES / "current.csv"), "--tests", "kss"])


def test_corrupted_profile_is_one_error_naming_the_file(saved_profile: Path) -> None:
    saved_profile.write_text(saved_profile.read_text().replace('"n_rows": 2000', '"n_rows": 1'))
    with pytest.raises(MlopsError, match=r"reference\.profile\.json.*hash mismatch"):
        run(["profile", "show", str(saved_profile)])


def test_missing_data_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        run(["profile", "build", str(tmp_path / "nope.csv"), "-o", str(tmp_path / "p.json")])


def test_examples_are_reproducible(tmp_path: Path) -> None:
    script = tmp_path / "make_examples.py"
    shutil.copy(EXAMPLES / "make_examples.py", script)
    subprocess.run([sys.executable, str(script)], check=True, capture_output=True)
    for name in ("reference.csv", "current.csv"):
        assert (tmp_path / name).read_bytes() == (EXAMPLES / name).read_bytes(), name


def _bad_files(tmp: Path) -> dict[str, Path]:
    files = {
        "ragged.csv": b"age,income\n30,1\n31\n",
        "empty_column.csv": b"age,income\n30,\n31,\n",
        "not_utf8.jsonl": b'\xff\xfe{"age": 1}\n',
        "garbage.npz": b"garbage",
        "quoted.csv": '"na\u00efve ""q""",b\'s\n1,x\n2,3\n'.encode(),
    }
    for name, data in files.items():
        (tmp / name).write_bytes(data)
    files_paths = {name: tmp / name for name in files}
    files_paths["missing.csv"] = tmp / "missing.csv"
    return files_paths


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing.csv", "missing.csv: no such file"),
        ("ragged.csv", "ragged.csv:3: 1 fields, header has 2"),
        ("not_utf8.jsonl", "not_utf8.jsonl: not UTF-8 text"),
        ("garbage.npz", "garbage.npz: not a .npz file"),
        ("quoted.csv", "feature \"b's\" current: non-numeric value 'x'"),
    ],
)
def test_bad_current_file_is_one_line_from_the_real_command(
    tmp_path: Path, name: str, message: str
) -> None:
    """The installed entry point's path: one line on stderr, status 1, no traceback."""
    reference = tmp_path / "ref.csv"
    reference.write_text('age,income,"na\u00efve ""q""",b\'s\n' + "1,2,3,4\n5,6,7,8\n")
    bad = _bad_files(tmp_path)[name]
    proc = subprocess.run(
        [sys.executable, "-m", "mlops_core.cli", "drift", str(reference), str(bad)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if not line.startswith("note:")]
    assert len(errors) == 1, proc.stderr
    assert errors[0].startswith("mlops drift: error: ") and message in errors[0]


def test_csv_with_a_byte_order_mark_keeps_its_first_column(tmp_path: Path, capsys) -> None:
    data = tmp_path / "excel.csv"
    data.write_bytes("\ufeffage,plan\n30,a\n40,b\n".encode())
    out = tmp_path / "p.json"
    assert run(["profile", "build", str(data), "-o", str(out)]) == 0
    assert list(json.loads(out.read_text())["features"]) == ["age", "plan"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["profile", "build", "{data}", "--categorical", "zip_cod", "-o", "{out}"],
         "data.csv: no column 'zip_cod' to type (did you mean 'zip_code'?)"),
        (["profile", "build", "{data}", "--numeric", "nothing", "-o", "{out}"],
         "data.csv: no column 'nothing' to type"),
        (["profile", "build", "{data}", "--features", "zip code", "-o", "{out}"],
         "data.csv: no column 'zip code' (did you mean 'zip_code'?)"),
        (["drift", "{data}", "{data}", "--features", "plann"],
         "feature 'plann' is missing from the reference profile (did you mean 'plan'?)"),
        (["drift", "{data}", "{tmp}/nope.jsonl"], "nope.jsonl: no such file"),
    ],
)  # fmt: skip
def test_a_column_that_is_not_there_is_named_with_the_closest_one(
    tmp_path: Path, argv: list[str], message: str
) -> None:
    """The column a flag names, the way the user typed it, and the closest real one."""
    data = tmp_path / "data.csv"
    data.write_text("zip_code,plan\n" + "".join(f"{i},p{i % 3}\n" for i in range(20)))
    where = {"data": str(data), "out": str(tmp_path / "p.json"), "tmp": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "mlops_core.cli", *(a.format(**where) for a in argv)],
        capture_output=True, text=True, cwd=REPO, check=False,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and message in proc.stderr, proc.stderr
    assert not (tmp_path / "p.json").exists()
