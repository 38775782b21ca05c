"""``mlops registry`` through the ``mlops`` entry point, ``mlops_core.cli:main``.

``test_entry_point_in_a_subprocess`` runs it as a separate process, exactly as the console
script does (and needs no ``pip install``); the other tests call the same ``main(argv)``
in-process, because every interpreter start costs ~0.6 s here and CI time is shared.
Checks exit codes (0 on success, non-zero on failure), that a failure is one line on stderr
without a traceback, and that ``--json`` output agrees with the files on disk.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_core.cli import build_parser, main
from tests.conftest import as_ordinary_user

REPO_ROOT = Path(__file__).resolve().parent.parent
_ENTRY_POINT = "import sys; from mlops_core.cli import main; sys.exit(main(sys.argv[1:]))"

Result = subprocess.CompletedProcess[str]
Runner = Callable[..., Result]


def mlops_subprocess(*args: str, cwd: Path) -> Result:
    env = {k: v for k, v in os.environ.items() if k != "MLOPS_REGISTRY"}
    env["PYTHONPATH"] = str(REPO_ROOT)
    return subprocess.run(
        [sys.executable, "-c", _ENTRY_POINT, "registry", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def mlops(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Runner:
    def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Result:
        monkeypatch.chdir(cwd)
        monkeypatch.delenv("MLOPS_REGISTRY", raising=False)
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        capsys.readouterr()
        try:
            code = main(["registry", *args])
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(["mlops", "registry", *args], code, out, err)

    return run


def ok(result: Result) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def one_line_error(result: Result) -> str:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "model_v1.pkl").write_bytes(b"first model")
    (tmp_path / "model_v2.pkl").write_bytes(b"second model")
    return tmp_path


def test_register_promote_path_rollback_history(mlops: Runner, workdir: Path) -> None:
    reg = ["--registry", "reg"]
    out = ok(mlops(*reg, "--json", "register", "churn", "1.2.0", "model_v1.pkl",
                   "--metric", "accuracy=0.85", "--metric", "rows=1000",
                   "--tag", "owner=data-team", cwd=workdir))  # fmt: skip
    record = json.loads(out)
    assert record["sha256"] == hashlib.sha256(b"first model").hexdigest()
    assert record["metrics"] == {"accuracy": 0.85, "rows": 1000}
    assert record["tags"] == {"owner": "data-team"}
    ok(mlops(*reg, "register", "churn", "1.10.0", "model_v2.pkl", cwd=workdir))

    ok(mlops(*reg, "promote", "churn", "1.2.0", "staging", cwd=workdir))
    ok(mlops(*reg, "promote", "churn", "1.2.0", "production", cwd=workdir))
    ok(mlops(*reg, "promote", "churn", "1.10.0", "production", "--reason", "better", cwd=workdir))
    path = ok(mlops(*reg, "path", "churn", cwd=workdir)).strip()
    assert Path(path).read_bytes() == b"second model"

    # the options may also follow the action
    rolled = json.loads(ok(mlops("rollback", "churn", *reg, "--json", cwd=workdir)))
    assert rolled == {"name": "churn", "production": "1.2.0"}
    assert (
        Path(ok(mlops(*reg, "path", "churn", cwd=workdir)).strip()).read_bytes() == b"first model"
    )

    history = json.loads(ok(mlops(*reg, "--json", "history", "churn", cwd=workdir)))
    assert [h["seq"] for h in history] == list(range(1, len(history) + 1))
    assert [(h["action"], h["version"], h["to_stage"]) for h in history][-2:] == [
        ("rollback", "1.2.0", "production"),
        ("rollback", "1.10.0", "archived"),
    ]
    assert any(h["reason"] == "better" for h in history)

    table = ok(mlops(*reg, "list", "churn", cwd=workdir)).splitlines()
    assert table[0].split()[:2] == ["VERSION", "STAGE"]
    assert [line.split()[0] for line in table[1:]] == ["1.2.0", "1.10.0"]  # 1.2 before 1.10
    assert table[1].split()[1] == "production"
    models = ok(mlops(*reg, "list", cwd=workdir)).splitlines()
    assert models[1].split() == ["churn", "2", "1.10.0", "-", "1.2.0"]
    shown = json.loads(ok(mlops(*reg, "--json", "show", "churn", "1.10.0", cwd=workdir)))
    assert shown["stage"] == "archived"


def test_env_var_and_default_registry_directory(mlops: Runner, workdir: Path) -> None:
    env = {"MLOPS_REGISTRY": str(workdir / "from-env")}
    ok(mlops("register", "churn", "1", "model_v1.pkl", cwd=workdir, env=env))
    assert (workdir / "from-env" / "churn" / "model.json").is_file()
    ok(mlops("register", "churn", "1", "model_v1.pkl", cwd=workdir))
    assert (workdir / "mlops_registry" / "churn" / "model.json").is_file()


def test_failures_exit_non_zero_with_one_line(mlops: Runner, workdir: Path) -> None:
    reg = ["--registry", "reg"]
    ok(mlops(*reg, "register", "churn", "1.0", "model_v1.pkl", cwd=workdir))

    assert "no previous production" in one_line_error(mlops(*reg, "rollback", "churn", cwd=workdir))
    assert "'9.9'" in one_line_error(
        mlops(*reg, "promote", "churn", "9.9", "production", cwd=workdir)
    )
    assert "missing.pkl" in one_line_error(
        mlops(*reg, "register", "churn", "2.0", "missing.pkl", cwd=workdir)
    )
    assert "already registered" in one_line_error(
        mlops(*reg, "register", "churn", "1.0", "model_v2.pkl", cwd=workdir)
    )
    assert "path separator" in one_line_error(
        mlops(*reg, "register", "../evil", "1.0", "model_v1.pkl", cwd=workdir)
    )
    assert "'fraud'" in one_line_error(mlops(*reg, "history", "fraud", cwd=workdir))
    assert "no production version" in one_line_error(mlops(*reg, "path", "churn", cwd=workdir))
    assert "metrics file not found: nope.json" in one_line_error(
        mlops(*reg, "register", "churn", "3.0", "model_v1.pkl", "--metrics-file", "nope.json",
              cwd=workdir)
    )  # fmt: skip
    (workdir / "bad.json").write_text("[1,")
    assert "bad.json: not valid JSON" in one_line_error(
        mlops(*reg, "register", "churn", "3.0", "model_v1.pkl", "--metrics-file", "bad.json",
              cwd=workdir)
    )  # fmt: skip
    assert not (workdir / "evil").exists()
    assert [v.split()[0] for v in ok(mlops(*reg, "list", "churn", cwd=workdir)).splitlines()] == [
        "VERSION",
        "1.0",
    ]


def test_archive_and_metrics_file(mlops: Runner, workdir: Path) -> None:
    reg = ["--registry", "reg"]
    (workdir / "metrics.json").write_text('{"auc": 0.91, "rows": 5000}')
    args = ["register", "churn", "1.0", "model_v1.pkl", "--metrics-file", "metrics.json"]
    out = ok(mlops(*reg, "--json", *args, "--metric", "auc=0.92", cwd=workdir))
    assert json.loads(out)["metrics"] == {"auc": 0.92, "rows": 5000}  # --metric wins
    ok(mlops(*reg, "promote", "churn", "1.0", "staging", cwd=workdir))
    archived = json.loads(
        ok(mlops(*reg, "--json", "archive", "churn", "1.0", "--reason", "stale", cwd=workdir))
    )
    assert archived["stage"] == "archived"
    history = json.loads(ok(mlops(*reg, "--json", "history", "churn", cwd=workdir)))
    assert (history[-1]["action"], history[-1]["from_stage"], history[-1]["reason"]) == (
        "archive",
        "staging",
        "stale",
    )
    assert "already archived" in one_line_error(mlops(*reg, "archive", "churn", "1.0", cwd=workdir))
    shown = ok(mlops(*reg, "show", "churn", cwd=workdir)).splitlines()
    assert shown[0].split() == ["FIELD", "VALUE"]
    assert ["archived", "1.0"] in [line.split() for line in shown]


def test_tampered_model_fails_verify_and_path(mlops: Runner, workdir: Path) -> None:
    reg = ["--registry", "reg"]
    ok(mlops(*reg, "register", "churn", "1.0", "model_v1.pkl", cwd=workdir))
    ok(mlops(*reg, "register", "churn", "2.0", "model_v2.pkl", cwd=workdir))
    ok(mlops(*reg, "promote", "churn", "1.0", "production", cwd=workdir))
    assert "ok" in ok(mlops(*reg, "verify", cwd=workdir))

    (workdir / "reg" / "churn" / "versions" / "1.0" / "model_v1.pkl").write_bytes(b"evil")
    result = mlops(*reg, "verify", cwd=workdir)
    assert "1.0" in one_line_error(result)
    rows = {line.split()[1]: line.split()[3] for line in result.stdout.splitlines()[1:]}
    assert rows == {"1.0": "FAILED", "2.0": "ok"}
    assert ok(mlops(*reg, "verify", "churn", "2.0", cwd=workdir))
    assert "sha256" in one_line_error(mlops(*reg, "path", "churn", cwd=workdir))


def test_corrupt_metadata_is_one_line_naming_the_file(mlops: Runner, workdir: Path) -> None:
    reg = ["--registry", "reg"]
    ok(mlops(*reg, "register", "churn", "1.0", "model_v1.pkl", cwd=workdir))
    (workdir / "reg" / "churn" / "model.json").write_text('{"format": 1, "name": ')
    line = one_line_error(mlops(*reg, "show", "churn", cwd=workdir))
    assert "model.json" in line and "not valid JSON" in line


def test_missing_action_is_a_usage_error(mlops: Runner, workdir: Path) -> None:
    result = mlops(cwd=workdir)
    assert result.returncode == 2
    assert "ACTION" in result.stderr or "required" in result.stderr


def test_entry_point_in_a_subprocess(workdir: Path) -> None:
    reg = ["--registry", "reg"]
    record = json.loads(
        ok(
            mlops_subprocess(
                *reg, "--json", "register", "churn", "1.0", "model_v1.pkl", cwd=workdir
            )
        )
    )
    assert record["sha256"] == hashlib.sha256(b"first model").hexdigest()
    ok(mlops_subprocess(*reg, "promote", "churn", "1.0", "production", cwd=workdir))
    path = Path(ok(mlops_subprocess(*reg, "path", "churn", cwd=workdir)).strip())
    assert path.read_bytes() == b"first model"
    assert "no previous production" in one_line_error(
        mlops_subprocess(*reg, "rollback", "churn", cwd=workdir)
    )
    path.write_bytes(b"tampered")
    result = mlops_subprocess(*reg, "verify", cwd=workdir)
    assert "1 of 1 versions failed" in one_line_error(result)
    assert "FAILED" in result.stdout


def _positionals(parser: argparse.ArgumentParser, prog: str) -> list[tuple[str, argparse.Action]]:
    """Every positional argument of ``parser`` and of its sub-commands, with its command."""
    found = []
    for act in parser._actions:
        if isinstance(act, argparse._SubParsersAction):
            for name, sub in act.choices.items():
                found += _positionals(sub, f"{prog} {name}")
        elif not act.option_strings:
            found.append((prog, act))
    return found


def test_register_help_explains_its_positional_arguments(mlops: Runner, workdir: Path) -> None:
    result = mlops("register", "--help", cwd=workdir)
    assert result.returncode == 0
    positional = result.stdout.split("positional arguments:")[1].split("options:")[0]
    first_words = {line.split()[0]: line.split()[1:] for line in positional.splitlines() if line}
    for name in ("name", "version", "path"):
        assert first_words.get(name), f"no help text for {name!r}:\n{positional}"


def test_every_positional_argument_of_the_mlops_cli_has_help() -> None:
    undocumented = [
        f"{prog} {act.metavar or act.dest}"
        for prog, act in _positionals(build_parser(), "mlops")
        if not act.help
    ]
    assert undocumented == []


def test_register_with_a_reference_and_read_it_back(mlops: Runner, workdir: Path) -> None:
    from mlops_core.profile import ReferenceProfile
    from mlops_core.registry import ModelRegistry

    ref = workdir / "training.csv"
    ref.write_text("age,plan\n" + "".join(f"{20 + i % 50},{'ab'[i % 2]}\n" for i in range(200)))
    registered = json.loads(ok(mlops(
        "--registry", "reg", "register", "churn", "1.0", "model_v1.pkl", "--reference", str(ref),
        "--json", cwd=workdir,
    )))  # fmt: skip
    stored = workdir / "reg" / "churn" / "versions" / "1.0" / "reference.json"
    assert registered["reference_sha256"] == hashlib.sha256(stored.read_bytes()).hexdigest()
    ok(mlops("--registry", "reg", "promote", "churn", "1.0", "production", cwd=workdir))
    out = ok(mlops("--registry", "reg", "reference", "churn", "-o", "p.json", cwd=workdir))
    assert "features  age, plan" in out
    expected = ReferenceProfile.from_file(ref).hash
    assert ReferenceProfile.load(workdir / "p.json").hash == expected
    assert ModelRegistry(workdir / "reg").get_reference_profile("churn", "1.0").hash == expected

    # no reference for a version registered without one; a tampered one: one line each
    ok(mlops("--registry", "reg", "register", "churn", "2.0", "model_v2.pkl", cwd=workdir))
    line = one_line_error(mlops("--registry", "reg", "reference", "churn", "2.0", cwd=workdir))
    assert line == (
        "mlops registry: error: model 'churn' version '2.0' was registered without a"
        " reference profile"
    )
    stored.write_text(stored.read_text().replace('"n_rows": 200', '"n_rows": 201'))
    line = one_line_error(mlops("--registry", "reg", "reference", "churn", cwd=workdir))
    assert f"{stored}: sha256 " in line and "recorded at registration" in line
    assert "reference.json" in one_line_error(mlops("--registry", "reg", "verify", cwd=workdir))


def test_a_reference_file_that_cannot_be_profiled_registers_nothing(
    mlops: Runner, workdir: Path
) -> None:
    (workdir / "bad.csv").write_text("age\n")
    line = one_line_error(mlops(
        "--registry", "reg", "register", "churn", "1.0", "model_v1.pkl", "--reference",
        "bad.csv", cwd=workdir,
    ))  # fmt: skip
    assert line == "mlops registry: error: bad.csv: CSV has a header but no rows"
    assert not (workdir / "reg" / "churn").exists()


# --- what one unreadable model or line may cost: itself, never the rest ------------------------
#
# Real processes (``python -m mlops_core.cli``), real files, real permission bits.  As root the
# bits do not apply, so the process runs with CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH dropped
# (setpriv): it reads what an ordinary user could, exactly as the reported repro ran as 65534.


def mlops_process(*args: str, cwd: Path, unprivileged: bool = False) -> Result:
    """``python -m mlops_core.cli registry ARGS`` as its own process (this worktree's code)."""
    env = {k: v for k, v in os.environ.items() if k != "MLOPS_REGISTRY"}
    env["PYTHONPATH"] = str(REPO_ROOT)
    argv = [sys.executable, "-m", "mlops_core.cli", "registry", *args]
    return subprocess.run(
        as_ordinary_user(argv) if unprivileged else argv,
        cwd=cwd, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def _table(stdout: str) -> dict[tuple[str, str], list[str]]:
    """``verify`` rows by (name, version): the cells after them."""
    rows = [line.split(maxsplit=4) for line in stdout.splitlines()[1:]]
    return {(r[0], r[1]): r[2:] for r in rows}


@pytest.fixture
def two_models(workdir: Path) -> Path:
    """A registry ``reg`` holding churn 1.0 (in production) and fraud 1.0."""
    reg = ["--registry", "reg"]
    for name in ("churn", "fraud"):
        ok(mlops_process(*reg, "register", name, "1.0", "model_v1.pkl", cwd=workdir))
    ok(mlops_process(*reg, "promote", "churn", "1.0", "production", cwd=workdir))
    return workdir / "reg"


@pytest.fixture
def unreadable(request: pytest.FixtureRequest) -> Callable[[Path], None]:
    """``chmod 000`` a directory, restored after the test so tmp_path can be removed."""

    def lock(path: Path) -> None:
        path.chmod(0)
        request.addfinalizer(lambda: path.chmod(0o755))

    return lock


def test_an_unreadable_model_directory_fails_verify_naming_the_path(
    workdir: Path, two_models: Path, unreadable: Callable[[Path], None]
) -> None:
    unreadable(two_models / "churn")
    result = mlops_process("--registry", "reg", "verify", cwd=workdir, unprivileged=True)
    line = one_line_error(result)
    assert "1 of 2" in line and "churn" in line, line
    rows = _table(result.stdout)
    assert rows[("fraud", "1.0")][1] == "ok"
    assert rows[("churn", "-")][1] == "FAILED", result.stdout
    assert f"{two_models / 'churn' / 'model.json'}: Permission denied" in result.stdout

    result = mlops_process("--registry", "reg", "--json", "verify", cwd=workdir, unprivileged=True)
    failed = [r for r in json.loads(result.stdout) if not r["ok"]]
    assert result.returncode == 1 and [r["name"] for r in failed] == ["churn"]
    assert "Permission denied" in failed[0]["problem"]


def test_an_unreadable_model_directory_is_reported_by_list(
    workdir: Path, two_models: Path, unreadable: Callable[[Path], None]
) -> None:
    unreadable(two_models / "churn")
    result = mlops_process("--registry", "reg", "list", cwd=workdir, unprivileged=True)
    line = one_line_error(result)
    assert "1 of 2 models could not be read" in line and "churn" in line, line
    lines = result.stdout.splitlines()
    assert lines[0].split()[-1] == "PROBLEM"
    assert lines[1].startswith("churn ") and "Permission denied" in lines[1]
    assert lines[2].split()[:3] == ["fraud", "1", "1.0"]

    result = mlops_process("--registry", "reg", "--json", "list", cwd=workdir, unprivileged=True)
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert result.returncode == 1 and rows["fraud"]["problem"] is None
    assert "Permission denied" in rows["churn"]["problem"] and rows["churn"]["versions"] is None


def test_unreadable_version_directories_fail_verify_and_the_rest_is_checked(
    workdir: Path, two_models: Path, unreadable: Callable[[Path], None]
) -> None:
    unreadable(two_models / "churn" / "versions")
    result = mlops_process("--registry", "reg", "verify", cwd=workdir, unprivileged=True)
    assert "1 of 2 versions failed" in one_line_error(result)
    rows = _table(result.stdout)
    _stage, status, problem = rows[("churn", "1.0")]
    assert status == "FAILED" and "Permission denied" in problem, result.stdout
    assert rows[("fraud", "1.0")][1] == "ok"


def test_a_corrupt_model_json_is_one_failed_row_the_others_are_verified(
    workdir: Path, two_models: Path
) -> None:
    (two_models / "churn" / "model.json").write_text("{garbage\n")
    result = mlops_process("--registry", "reg", "verify", cwd=workdir)
    assert "1 of 2" in one_line_error(result)
    rows = _table(result.stdout)
    assert rows[("fraud", "1.0")][1] == "ok"
    assert rows[("churn", "-")][1] == "FAILED"
    assert f"{two_models / 'churn' / 'model.json'}: not valid JSON" in rows[("churn", "-")][2]

    result = mlops_process("--registry", "reg", "list", cwd=workdir)
    assert "1 of 2 models could not be read" in one_line_error(result)
    assert "fraud" in result.stdout and "model.json: not valid JSON" in result.stdout
    # naming the model keeps the one-line error: there is nothing else to show
    line = one_line_error(mlops_process("--registry", "reg", "list", "churn", cwd=workdir))
    assert "model.json: not valid JSON" in line


def test_one_unreadable_version_is_one_row_of_list_name_the_others_are_listed(
    workdir: Path, two_models: Path
) -> None:
    reg = ["--registry", "reg"]
    ok(mlops_process(*reg, "register", "churn", "2.0", "model_v2.pkl", cwd=workdir))
    record = two_models / "churn" / "versions" / "1.0" / "version.json"
    record.write_text("{garbage\n")
    result = mlops_process(*reg, "list", "churn", cwd=workdir)
    assert "1 of 2 versions could not be read (first: churn 1.0: " in one_line_error(result)
    lines = result.stdout.splitlines()
    assert lines[0].split()[-1] == "PROBLEM"
    row_1, row_2 = (next(line for line in lines if line.startswith(v)) for v in ("1.0", "2.0"))
    assert f"{record}: not valid JSON" in row_1
    assert "none" in row_2.split()  # 2.0's stage: listed as before
    listed = json.loads(mlops_process(*reg, "--json", "list", "churn", cwd=workdir).stdout)
    assert [v["version"] for v in listed] == ["1.0", "2.0"]
    assert "problem" in listed[0] and listed[1]["sha256"]


def _history_file(registry: Path) -> Path:
    return registry / "churn" / "history.jsonl"


def test_a_torn_last_history_line_is_skipped_with_a_note(workdir: Path, two_models: Path) -> None:
    history = _history_file(two_models)
    with history.open("ab") as fh:
        fh.write(b'{"seq": 3, "timestamp": "2026-')  # a crash in the middle of an append
    result = mlops_process("--registry", "reg", "--json", "history", "churn", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert [e["seq"] for e in json.loads(result.stdout)] == [1, 2]
    note = one_line_error(subprocess.CompletedProcess([], 1, "", result.stderr))
    assert f"{history}: line 3:" in note and "skipped" in note, note

    # the next change rewrites the file whole, without the torn line
    ok(mlops_process("--registry", "reg", "register", "churn", "2.0", "model_v2.pkl", cwd=workdir))
    lines = history.read_text().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [1, 2, 3]
    result = mlops_process("--registry", "reg", "history", "churn", cwd=workdir)
    assert result.returncode == 0 and result.stderr == ""


def test_a_corrupt_middle_history_line_is_an_error_naming_file_and_line(
    workdir: Path, two_models: Path
) -> None:
    history = _history_file(two_models)
    lines = history.read_text().splitlines(keepends=True)
    history.write_text(lines[0] + "{garbage\n" + "".join(lines[1:]))
    line = one_line_error(mlops_process("--registry", "reg", "history", "churn", cwd=workdir))
    assert f"{history}: line 2: not valid JSON" in line


def test_a_non_numeric_metric_is_refused_naming_it(workdir: Path) -> None:
    args = ["--registry", "reg", "register", "churn", "1.0", "model_v1.pkl"]
    line = one_line_error(mlops_process(*args, "--metric", "accuracy=abc", cwd=workdir))
    assert "metric 'accuracy'" in line and "'abc'" in line and "number" in line, line
    (workdir / "m.json").write_text('{"auc": "high"}')
    line = one_line_error(mlops_process(*args, "--metrics-file", "m.json", cwd=workdir))
    assert "metric 'auc'" in line, line
    line = one_line_error(mlops_process(*args, "--metric", "auc=inf", cwd=workdir))
    assert "metric 'auc'" in line and "finite" in line, line
    assert not (workdir / "reg" / "churn" / "versions" / "1.0").exists()
    record = json.loads(ok(mlops_process(*args, "--json", "--metric", "rows=10", cwd=workdir)))
    assert record["metrics"] == {"rows": 10}


def test_a_registry_path_that_does_not_exist_is_said_and_verify_fails(
    mlops: Runner, workdir: Path
) -> None:
    # a mistyped --registry listed an empty table and verified nothing, both with exit 0
    result = mlops("--registry", "no-such-dir", "list", cwd=workdir)
    assert result.returncode == 0
    assert result.stderr.strip() == (
        f"note: registry {workdir / 'no-such-dir'} holds no model (the directory does not exist)"
    )
    line = one_line_error(mlops("--registry", "no-such-dir", "verify", cwd=workdir))
    assert line.endswith(
        "nothing to verify: registry "
        f"{workdir / 'no-such-dir'} holds no model (the directory does not exist)"
    )
    (workdir / "empty").mkdir()
    result = mlops("--registry", "empty", "--json", "list", cwd=workdir)
    assert (result.returncode, json.loads(result.stdout)) == (0, [])
    assert result.stderr.strip() == f"note: registry {workdir / 'empty'} holds no model"
    assert "nothing to verify" in one_line_error(
        mlops("--registry", "empty", "verify", cwd=workdir)
    )
