"""``mlops profile build|show`` and ``mlops drift`` on the example data shipped in the repo."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
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
        ("not_utf8.jsonl", "not_utf8.jsonl:1: not UTF-8 text (byte 0xff"),
        ("garbage.npz", "garbage.npz: not a .npz file"),
        ("quoted.csv", "quoted.csv:2: column \"b's\": non-numeric value 'x'"),
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


# --- robustness review: bad lines, bad bounds, bad paths --------------------------------------


def mlops(*argv: str) -> subprocess.CompletedProcess[str]:
    """The real ``mlops`` command in its own process, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "mlops_core.cli", *argv],
        capture_output=True, text=True, cwd=REPO, check=False,
    )  # fmt: skip


def _one_error(proc: subprocess.CompletedProcess[str], command: str) -> str:
    """The one error line of a failed command (no traceback, status 1)."""
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"mlops {command}: error: "), proc.stderr
    return lines[0]


def _prediction_line(age: object, plan: object = "pro") -> bytes:
    record = {"event": "prediction", "input_data": {"age": age, "plan": plan}, "latency_ms": 3}
    return json.dumps(record).encode()


@pytest.fixture
def age_plan_reference(tmp_path: Path) -> Path:
    path = tmp_path / "ref.csv"
    path.write_text("age,plan\n" + "".join(f"{20 + i % 40},p{i % 3}\n" for i in range(200)))
    return path


def test_drift_skips_a_prediction_logs_unusable_lines_like_the_exporter(
    tmp_path: Path, age_plan_reference: Path
) -> None:
    """Each unusable line of a prediction log is skipped and counted by reason, in one note;
    a non-numeric value of a numeric feature is a wrong type, as the exporter counts it."""
    lines = [_prediction_line(20 + i % 40, f"p{i % 3}") for i in range(40)]
    lines[10] = b"{bad json"  # line 11
    lines[14] = b'{"event": "prediction", "input_data": {"age": 3\xff}}'  # not UTF-8
    lines[20] = _prediction_line("abc")  # a string for the numeric feature age
    lines[25] = _prediction_line(True)  # a boolean: a wrong type too
    lines[30] = b'{"event": "prediction", "input_data": {"age": NaN, "plan": "p1"}}'
    lines[33] = b'{"event": "prediction", "latency_ms": 3}'  # no input_data
    lines[35] = b'{"event": "health_check", "status": "ok"}'  # another event: not a skip
    log = tmp_path / "pl.jsonl"
    log.write_bytes(b"\n".join(lines) + b"\n")
    proc = mlops("drift", str(age_plan_reference), str(log), "--json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [
        f"note: {log}: 6 lines skipped, as the exporter skips them (1 invalid JSON, "
        "1 not UTF-8, 2 wrong type: a value the exporter refuses for its feature, such as "
        "a string or a boolean for a numeric one, 1 NaN or Infinity, 1 without "
        "input_data; first at line 11)"
    ]
    report = json.loads(proc.stdout)
    assert report["features"]["age"]["n_current"] == 33
    assert report["features"]["plan"]["n_current"] == 33


def test_drift_on_a_prediction_log_without_a_usable_line_is_one_error(
    tmp_path: Path, age_plan_reference: Path
) -> None:
    log = tmp_path / "pl.jsonl"
    log.write_bytes(b"\n".join([_prediction_line("old"), b"{bad", _prediction_line("x")]))
    line = _one_error(mlops("drift", str(age_plan_reference), str(log)), "drift")
    assert line == (
        f"mlops drift: error: {log}: no usable prediction: 3 lines skipped, as the exporter "
        "skips them (1 invalid JSON, 2 wrong type: a value the exporter refuses for its "
        "feature, such as a string or a boolean for a numeric one; first at line 1)"
    )


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("cur.csv", b"age,plan\n30,p1\n\n31,p2\nabc,p1\n", "cur.csv:5: column 'age': "
         "non-numeric value 'abc' (numeric in the reference)"),
        ("cur.jsonl", b'{"age": 30, "plan": "p1"}\n{"age": "abc", "plan": "p1"}\n',
         "cur.jsonl:2: column 'age': non-numeric value 'abc' (numeric in the reference)"),
        ("cur.jsonl", b'{"age": 30}\n{bad\n{"age": "abc"}\n', "cur.jsonl:2: invalid JSON"),
        ("cur.jsonl", b'{"age": 30}\n{"age": "\xff"}\n', "cur.jsonl:2: not UTF-8 text"),
    ],
)  # fmt: skip
def test_a_plain_current_file_fails_at_its_first_bad_line_naming_it(
    tmp_path: Path, age_plan_reference: Path, name: str, content: bytes, message: str
) -> None:
    """A file that is not a prediction log is data as given: its first bad line is an error."""
    current = tmp_path / name
    current.write_bytes(content)
    line = _one_error(mlops("drift", str(age_plan_reference), str(current)), "drift")
    assert f"{tmp_path}/{message}" in line, line


def test_a_non_numeric_npz_array_names_the_file_and_the_element(
    tmp_path: Path, age_plan_reference: Path
) -> None:
    current = tmp_path / "cur.npz"
    np.savez(current, age=np.array(["30", "old"]), plan=np.array(["p1", "p2"]))
    line = _one_error(mlops("drift", str(age_plan_reference), str(current)), "drift")
    assert f"{current}: array 'age', element 2: non-numeric value 'old'" in line, line


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--buckets", "100000000"], "argument --buckets: expected an integer from 2 to 1000, "
         "got '100000000'"),
        (["--buckets", "1"], "argument --buckets: expected an integer from 2 to 1000, got '1'"),
        (["--max-categories", "0"], "argument --max-categories: expected an integer from 1 to "
         "1000, got '0'"),
        (["--max-categories", "5000"], "argument --max-categories: expected an integer from 1 "
         "to 1000, got '5000'"),
    ],
)  # fmt: skip
def test_build_refuses_bucket_and_category_counts_out_of_bounds(
    tmp_path: Path, age_plan_reference: Path, options: list[str], message: str
) -> None:
    out = tmp_path / "p.json"
    proc = mlops("profile", "build", str(age_plan_reference), "-o", str(out), *options)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.splitlines()[-1].endswith(message)
    assert not out.exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["profile", "build", "{ref}", "-o", "{tmp}/no/such/dir/p.json"],
         "{tmp}/no/such/dir/p.json: directory {tmp}/no/such/dir does not exist"),
        (["profile", "build", "{ref}", "-o", "{tmp}"], "{tmp}: Is a directory"),
        (["drift", "{ref}", "{ref}", "--html", "{tmp}/gone/r.html"],
         "{tmp}/gone/r.html: directory {tmp}/gone does not exist"),
    ],
)  # fmt: skip
def test_a_file_that_cannot_be_written_is_named_as_the_user_gave_it(
    tmp_path: Path, age_plan_reference: Path, argv: list[str], message: str
) -> None:
    """Never the hidden temporary file of the atomic write."""
    where = {"ref": str(age_plan_reference), "tmp": str(tmp_path)}
    proc = mlops(*(a.format(**where) for a in argv))
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().endswith(f"error: {message.format(**where)}"), proc.stderr
    assert ".tmp" not in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ref.csv"]


def test_label_column_without_prediction_column_gives_its_own_reason(
    tmp_path: Path, age_plan_reference: Path
) -> None:
    out = str(tmp_path / "p.json")
    proc = mlops("profile", "build", str(age_plan_reference), "-o", out, "--label-column", "age")
    assert _one_error(proc, "profile").endswith(
        "--label-column needs --prediction-column (a prediction is right when it equals the label)"
    )
    proc = mlops("profile", "build", str(age_plan_reference), "-o", out, "--probability-column",
                 "age")  # fmt: skip
    assert _one_error(proc, "profile").endswith(
        "--probability-column needs --prediction-column (the class it is the probability of)"
    )


@pytest.mark.parametrize(
    ("content", "line"),
    [
        (b"\xff\xfea,b\n1,2\n", 1),  # binary in the header
        (b"\n\n\xffa,b\n1,2\n", 3),  # after blank lines
        (b"a,b\n" + b"1,2\n" * 5000 + b"3,\xff\n", 5002),  # far beyond the first read block
    ],
)
def test_a_non_utf8_csv_names_the_line_of_the_bad_byte(
    tmp_path: Path, content: bytes, line: int
) -> None:
    data = tmp_path / "bin.csv"
    data.write_bytes(content)
    proc = mlops("profile", "build", str(data), "-o", str(tmp_path / "p.json"))
    assert f"error: {data}:{line}: not UTF-8 text (byte 0xff" in _one_error(proc, "profile")


def test_leading_blank_lines_before_the_csv_header_are_skipped(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("\n\nage,plan\n1,a\n2,b\n")
    out = tmp_path / "p.json"
    proc = mlops("profile", "build", str(data), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert list(json.loads(out.read_text())["features"]) == ["age", "plan"]


def test_whitespace_stripped_from_a_header_name_is_one_note(tmp_path: Path) -> None:
    """The feature is the stripped name, so a logged key must be too: the user is told."""
    data = tmp_path / "d.csv"
    data.write_text('"\t tab", plan,age\n1,a,3\n2,b,4\n')
    out = tmp_path / "p.json"
    proc = mlops("profile", "build", str(data), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [
        f"note: {data}: header names are read without their surrounding whitespace: "
        "'\\t tab' as 'tab', ' plan' as 'plan'; a logged input_data key must be the "
        "stripped name to match"
    ]
    assert list(json.loads(out.read_text())["features"]) == ["tab", "plan", "age"]


def test_drift_takes_input_data_lines_without_an_event_as_predictions(
    tmp_path: Path, age_plan_reference: Path
) -> None:
    """A hand-built current file of ``{"input_data": {...}}`` lines is data, as it is as a
    reference: the lenient read had begun to skip every such line as ``missing_field`` and
    call the file "no usable prediction".  Only a present event other than "prediction" is
    another event."""
    lines = [
        json.dumps({"input_data": {"age": 20 + i % 40, "plan": f"p{i % 3}"}}).encode()
        for i in range(40)
    ]
    lines[5] = b'{"event": "model_loaded", "input_data": {"age": "x"}}'  # another event
    log = tmp_path / "hand.jsonl"
    log.write_bytes(b"\n".join(lines) + b"\n")
    proc = mlops("drift", str(age_plan_reference), str(log), "--json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # nothing skipped
    report = json.loads(proc.stdout)
    assert report["features"]["age"]["n_current"] == 39
    assert report["features"]["plan"]["n_current"] == 39
    # and as a reference (the strict read) it is the same data
    proc = mlops("drift", str(log), str(log), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["features"]["age"]["n_reference"] == 39


@pytest.mark.parametrize("logged_as", ["mapping", "bare"])
def test_drift_on_a_prediction_log_judges_the_models_outputs_as_the_exporter(
    tmp_path: Path, capsys, logged_as: str
) -> None:
    # the profile carries the outputs (__prediction__); the log's prediction.class was
    # never read, so `mlops drift` said "not in ...: __prediction__" where the exporter judges it
    from mlops_core import PredictionLogger

    rng = np.random.default_rng(3)
    ref = tmp_path / "ref.csv"
    rows = ["x,predicted"] + [
        f"{v:.3f},{c}"
        for v, c in zip(rng.normal(0, 1, 2000), rng.choice(["a", "b"], 2000), strict=True)
    ]
    ref.write_text("\n".join(rows) + "\n")
    profile = tmp_path / "ref.profile.json"
    assert run(["profile", "build", str(ref), "-o", str(profile), "--categorical", "predicted",
                "--prediction-column", "predicted"]) == 0  # fmt: skip
    log = tmp_path / "predictions.jsonl"
    logger = PredictionLogger("m", output=str(log))
    for i in range(2000):  # the inputs as in the reference, the outputs all "a"
        out = {"class": "a"} if logged_as == "mapping" else "a"
        logger.log_prediction(f"r{i}", {"x": float(rng.normal(0, 1))}, out, 1.0)
    logger.close()
    capsys.readouterr()
    assert run(["drift", str(profile), str(log), "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert "__prediction__" not in captured.err
    judged = report["features"]["__prediction__"]
    assert judged["n_current"] == 2000 and judged["drift_detected"] is True
    assert report["features"]["x"]["drift_detected"] is False


def test_drift_reads_a_float_class_and_the_class_field_as_the_exporter(
    tmp_path: Path, capsys
) -> None:
    # {"class": 1.0} (sklearn's classes when y was float) was missing for mlops drift while
    # the exporter counts it as "1"; a class under another field needs --class-field, and
    # without it __prediction__ is absent, not 100% missing (a drift)
    rng = np.random.default_rng(4)
    ref = tmp_path / "ref.csv"
    rows = ["x,predicted"] + [
        f"{v:.3f},{c}"
        for v, c in zip(rng.normal(0, 1, 1000), rng.choice([0, 1], 1000), strict=True)
    ]
    ref.write_text("\n".join(rows) + "\n")
    profile = tmp_path / "ref.profile.json"
    assert run(["profile", "build", str(ref), "-o", str(profile), "--categorical", "predicted",
                "--prediction-column", "predicted"]) == 0  # fmt: skip
    floats = tmp_path / "floats.jsonl"
    labels = tmp_path / "labels.jsonl"
    with floats.open("w") as a, labels.open("w") as b:
        for i in range(600):
            x, c = float(rng.normal(0, 1)), float(i % 2)
            a.write(
                json.dumps(
                    {"event": "prediction", "input_data": {"x": x}, "prediction": {"class": c}}
                )
                + "\n"
            )
            b.write(json.dumps({"event": "prediction", "input_data": {"x": x},
                                "prediction": {"label": int(c)}}) + "\n")  # fmt: skip
    capsys.readouterr()
    assert run(["drift", str(profile), str(floats), "--json"]) == 0
    judged = json.loads(capsys.readouterr().out)["features"]["__prediction__"]
    assert judged["n_current"] == 600 and judged["drift_detected"] is False
    assert run(["drift", str(profile), str(labels), "--json"]) == 0
    assert "__prediction__" not in json.loads(capsys.readouterr().out)["features"]
    assert run(["drift", str(profile), str(labels)]) == 0
    assert f"note: not in {labels}: __prediction__" in capsys.readouterr().err
    assert run(["drift", str(profile), str(labels), "--json", "--class-field", "label"]) == 0
    judged = json.loads(capsys.readouterr().out)["features"]["__prediction__"]
    assert judged["n_current"] == 600
