"""The one exception hierarchy, and how the ``mlops`` command shows errors to a user."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

import mlops_core
from mlops_core import errors
from mlops_core.cli import main


def test_every_error_class_derives_from_mlops_error_and_is_exported() -> None:
    classes = [
        obj
        for _, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, Exception) and obj.__module__ == errors.__name__
    ]
    assert len(classes) > 10
    for cls in classes:
        assert issubclass(cls, mlops_core.MlopsError), cls
        assert getattr(mlops_core, cls.__name__) is cls


def test_the_exporters_config_error_moved_but_keeps_its_old_names() -> None:
    """exporter.errors.ConfigError is the class; the library's old names still reach it."""
    from exporter.errors import ConfigError

    assert issubclass(ConfigError, mlops_core.MlopsError) and issubclass(ConfigError, ValueError)
    assert errors.ConfigError is ConfigError
    assert mlops_core.ConfigError is ConfigError
    assert "ConfigError" not in mlops_core.__all__  # star-imports do not load the exporter
    with pytest.raises(AttributeError, match="NoSuchError"):
        errors.NoSuchError  # noqa: B018


def test_missing_files_raise_one_class_that_is_also_the_builtin(tmp_path: Path) -> None:
    with pytest.raises(mlops_core.MissingFileError, match=r"nope\.csv"):
        mlops_core.ReferenceProfile.from_file(tmp_path / "nope.csv")
    with pytest.raises(FileNotFoundError, match=r"model\.pkl"):
        mlops_core.ModelRegistry(tmp_path / "reg").register_model("m", "1", tmp_path / "model.pkl")


def test_a_missing_file_is_one_line_without_errno_noise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["profile", "show", str(tmp_path / "nope.csv")]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"mlops profile: error: {tmp_path / 'nope.csv'}: no such file"


def test_a_reader_closing_the_pipe_ends_the_command_quietly(tmp_path: Path) -> None:
    model = tmp_path / "model.pkl"
    model.write_bytes(b"x")
    registry = mlops_core.ModelRegistry(tmp_path / "reg")
    for i in range(200):
        registry.register_model("m", f"1.0.{i}", model, {"accuracy": 0.9})
    env = {**os.environ, "MLOPS_REGISTRY": str(tmp_path / "reg")}
    reader_closes = subprocess.run(
        f"{sys.executable} -m mlops_core.cli registry --json history m | head -c 1",
        shell=True,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert reader_closes.stdout == "["
    assert reader_closes.stderr == ""
