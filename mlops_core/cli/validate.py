"""``mlops validate``: the pre-deployment gate as a CI/CD step.

Loads a pickled (or joblib) model and a validation set (CSV or ``.npz``), runs
:func:`mlops_core.validation.validate_model_for_deployment` with a YAML/JSON config, prints
every check as a table and exits 1 when the gate fails, so the pipeline stops the
deployment.  With ``--register`` a model that passes is added to the model registry, with
the gate's metrics and (``--reference``) the reference profile the exporter will judge its
drift against.

Unpickling runs code from the file: only validate model files you would also deploy.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from mlops_core.cli._output import print_json, print_table
from mlops_core.datafiles import read_csv_table, read_npz_arrays
from mlops_core.errors import (
    ModelNotFoundError,
    ValidationConfigError,
    ValidationInputError,
    VersionExistsError,
)

_JOBLIB_SUFFIXES = {".joblib", ".jbl", ".jl"}


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``validate`` sub-command to the ``mlops`` parser."""
    parser = subparsers.add_parser(
        "validate",
        help="run the pre-deployment validation gate on a model (exit 1 when it fails)",
        description=(
            "Run the pre-deployment validation gate: accuracy, F1, ROC AUC, single-row "
            "latency, model size and a comparison with a baseline model. Exits 1 when any "
            "check fails."
        ),
    )
    parser.add_argument("model", metavar="MODEL", help="model file (.pkl pickle or .joblib)")
    parser.add_argument(
        "data",
        metavar="DATA",
        help="validation set: CSV with a header row, or .npz with arrays X and y",
    )
    parser.add_argument(
        "--config", required=True, metavar="CONFIG", help="gate thresholds, YAML or JSON"
    )
    parser.add_argument(
        "--target",
        metavar="COLUMN",
        help="CSV target column (default: 'target' if present, else the last column)",
    )
    parser.add_argument(
        "--baseline", metavar="MODEL", help="the production model to compare against"
    )
    parser.add_argument("--json", action="store_true", help="print the full result as JSON")
    parser.add_argument(
        "--register",
        nargs=2,
        metavar=("NAME", "VERSION"),
        help="register the model under NAME VERSION when the gate passes (needs --registry)",
    )
    parser.add_argument(
        "--registry", metavar="DIR|URL", help="model registry directory or s3://bucket/prefix"
    )
    parser.add_argument(
        "--reference",
        metavar="FILE",
        help="with --register: reference data (.csv, .jsonl, .npz) or a saved profile (.json)"
        " stored with the version",
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Execute ``mlops validate``; 0 when the gate passes, 1 when it fails."""
    from mlops_core.validation import (
        check_config,
        check_configures_a_check,
        validate_model_for_deployment,
    )

    if args.register and not args.registry:
        raise ValidationConfigError("--register needs --registry DIR")
    if args.reference and not args.register:
        raise ValidationConfigError("--reference needs --register NAME VERSION")
    config = load_config(args.config)
    # cheap checks first: a typo should not wait for a large model
    check_config(config, source=args.config)
    check_configures_a_check(config, source=args.config)
    if args.register:
        _check_not_registered(args)
    reference = _load_reference(args.reference) if args.reference else None
    X, y, names = load_named_data(args.data, args.target)
    model = load_model(args.model)
    baseline = load_model(args.baseline) if args.baseline else None
    config.setdefault("model_path", args.model)
    X, unnamed = as_fitted(X, names, model, args.data)
    if baseline is not None:
        baseline = _baseline_for(baseline, X, args.data)
    with warnings.catch_warnings():
        if unnamed:  # said once above, not once per predict call of the latency check
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
        # a baseline fitted on an array, handed the model's DataFrame: it works, and would
        # warn once per predict call
        warnings.filterwarnings("ignore", message="X has feature names, but")
        result = validate_model_for_deployment(
            model, X, y, config, baseline_model=baseline, baseline_model_path=args.baseline
        )

    if args.json:
        if result["passed"] and args.register:
            result["registered"] = _register(args, result, reference)
        print_json(result)
    else:
        _print_human(result)
        if result["passed"] and args.register:
            print(f"registered: {_register(args, result, reference)}")
    return 0 if result["passed"] else 1


def _print_human(result: dict[str, Any]) -> None:
    print_table(result["checks"], ("check", "value", "threshold", "outcome"))
    base = result.get("baseline_metrics") or {}
    names = [k for k in {**result["metrics"], **base} if k != "unavailable"]
    rows = [
        {"metric": k, "value": result["metrics"].get(k), "baseline": base.get(k)} for k in names
    ]
    print()
    print_table(rows, ("metric", "value", "baseline") if base else ("metric", "value"))
    print()
    if result["passed"]:
        print("PASSED: all checks passed")
    else:
        print(f"FAILED: {len(result['errors'])} problem(s)")
        for line in result["errors"]:
            print(f"  - {line}")


def _check_not_registered(args: argparse.Namespace) -> None:
    """Fail before the gate runs when ``--register`` names a version that already exists."""
    from mlops_core.registry import ModelRegistry  # imported only when used

    name, version = args.register
    try:
        ModelRegistry(args.registry).get_version(name, version)
    except ModelNotFoundError:
        return
    raise VersionExistsError(
        f"model {name!r} version {version!r} is already in registry {args.registry};"
        " choose a new version"
    )


def _load_reference(path: str) -> Any:
    """The ``--reference`` profile, built before the gate runs so a bad file fails first."""
    from mlops_core.profile import ReferenceProfile

    return ReferenceProfile.from_file(path)


def _register(args: argparse.Namespace, result: dict[str, Any], reference: Any = None) -> str:
    """Add the validated model to the registry (stage ``none``) with the gate's metrics.

    They are the version's metrics (``ModelRegistry.get_version_metrics``): what the model
    scored on the validation set, the baseline a quality monitor compares live quality to.
    """
    from mlops_core.registry import ModelRegistry  # imported only when used

    name, version = args.register
    metrics = {
        k: v
        for k, v in result["metrics"].items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    entry = ModelRegistry(args.registry).register_model(
        name,
        version,
        args.model,
        metrics=metrics,
        tags={"validated_by": "mlops validate"},
        reference=reference,
    )
    with_reference = " with its reference profile" if reference is not None else ""
    return f"{entry.name} {entry.version} (stage {entry.stage}){with_reference}"


# --- loading ----------------------------------------------------------------------------------


def load_config(path: str) -> dict[str, Any]:
    """The gate config from a YAML or JSON file (a mapping at the top level)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValidationInputError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationInputError(f"cannot read config file {path}: {_line(exc)}") from None
    try:
        if path.endswith(".json"):
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:  # json.JSONDecodeError, yaml.YAMLError
        raise ValidationConfigError(f"{path}: not valid YAML/JSON: {_line(exc)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValidationConfigError(f"{path}: the config must be a mapping of keys to thresholds")
    return data


def load_model(path: str) -> Any:
    """Unpickle a model; ``.joblib`` files (and pickles that fail) go through joblib if present."""
    file = Path(path)
    if not file.is_file():
        raise ValidationInputError(f"model file not found: {path}")
    if file.suffix.lower() in _JOBLIB_SUFFIXES:
        return _joblib_load(file)
    try:
        with file.open("rb") as fh:
            return pickle.load(fh)
    except Exception as exc:
        try:
            return _joblib_load(file)
        except ValidationInputError:
            pass
        raise ValidationInputError(f"cannot load model {path}: {_line(exc)}") from None


def _joblib_load(file: Path) -> Any:
    try:
        import joblib
    except ImportError:
        raise ValidationInputError(
            f"cannot load model {file}: joblib is not installed (pip install joblib)"
        ) from None
    try:
        return joblib.load(file)
    except Exception as exc:
        raise ValidationInputError(f"cannot load model {file}: {_line(exc)}") from None


def load_data(path: str, target: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)`` from a CSV (header row; target column) or an ``.npz`` with X and y.

    Both are read by :mod:`mlops_core.datafiles`, the reader of every other ``mlops``
    command (a CSV with a byte-order mark included); the choice of the target is this
    command's own (see :func:`_target_column`).
    """
    X, y, _ = load_named_data(path, target)
    return X, y


def load_named_data(
    path: str, target: str | None = None
) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """:func:`load_data` with the feature columns' names (a CSV's header; None for .npz)."""
    file = Path(path)
    if not file.is_file():
        raise ValidationInputError(f"validation data file not found: {path}")
    if file.suffix.lower() == ".npz":
        return (*_load_npz(file), None)
    return _load_csv(file, target)


def as_fitted(X: np.ndarray, names: list[str] | None, model: Any, data: str) -> tuple[Any, bool]:
    """``X`` as the model was fitted: for a model fitted on a DataFrame (scikit-learn's
    ``feature_names_in_``), the CSV's columns in the model's order, as a pandas DataFrame
    when pandas is installed; and whether it goes without the names (said in one note).

    Passing the bare array lost the header: a ``ColumnTransformer`` selecting columns by
    name raised, and every other model warned once per predict call.
    """
    fitted = getattr(model, "feature_names_in_", None)
    if fitted is None or names is None or not len(X):
        return X, False
    fitted = [str(f) for f in fitted]
    missing = [f for f in fitted if f not in names]
    if missing:
        raise ValidationInputError(
            f"{data}: no column {', '.join(map(repr, missing))} of the {len(fitted)} the model "
            f"was fitted with (feature_names_in_); columns: {', '.join(names)}"
        )
    ordered = X[:, [names.index(f) for f in fitted]]
    try:
        import pandas as pd
    except ImportError:
        print(
            f"note: the model was fitted on a DataFrame ({len(fitted)} named columns); pandas "
            "is not installed, so it gets an array of the CSV's columns in that order "
            "(pip install pandas if it selects columns by name)",
            file=sys.stderr,
        )
        return ordered, True
    frame = pd.DataFrame({f: _typed(ordered[:, j]) for j, f in enumerate(fitted)}, columns=fitted)
    return frame, False


def _baseline_for(baseline: Any, X: Any, data: str) -> Any:
    """The baseline, given the model's ``X``: as it is, unless it was fitted on named
    columns other than the DataFrame's (another order, a subset), then wrapped to select
    its own (a bare ``X[cols]`` would refuse the model's order)."""
    fitted = getattr(baseline, "feature_names_in_", None)
    columns = getattr(X, "columns", None)
    if fitted is None or columns is None:
        return baseline
    fitted = [str(f) for f in fitted]
    if fitted == [str(c) for c in columns]:
        return baseline
    missing = [f for f in fitted if f not in set(map(str, columns))]
    if missing:
        raise ValidationInputError(
            f"{data}: no column {', '.join(map(repr, missing))} the baseline model was fitted "
            "with (feature_names_in_)"
        )
    return _OwnColumns(baseline, fitted)


class _OwnColumns:
    """A model handed a DataFrame with more or reordered columns: it predicts on its own."""

    def __init__(self, model: Any, columns: list[str]) -> None:
        self._model, self._columns = model, columns
        if callable(getattr(model, "predict_proba", None)):
            self.predict_proba = lambda X: model.predict_proba(X[columns])

    def predict(self, X: Any) -> Any:
        return self._model.predict(X[self._columns])

    def __getattr__(self, name: str) -> Any:  # classes_, and whatever the gate reads
        return getattr(self._model, name)


def _typed(column: np.ndarray) -> np.ndarray:
    """A column of the object array back to float when every value is a number."""
    if column.dtype.kind == "f":
        return column
    try:
        return column.astype(float)
    except (TypeError, ValueError):
        return column


def _load_npz(file: Path) -> tuple[np.ndarray, np.ndarray]:
    arrays = read_npz_arrays(file, ValidationInputError)
    missing = [k for k in ("X", "y") if k not in arrays]
    if missing:
        raise ValidationInputError(
            f"{file}: missing array(s) {', '.join(missing)}; found {', '.join(arrays)}"
        )
    return arrays["X"], arrays["y"]


def _load_csv(file: Path, target: str | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    table = read_csv_table(file, ValidationInputError)
    header = table.header
    if len(header) < 2:
        raise ValidationInputError(f"{file}: needs at least one feature and a target column")
    t = header.index(_target_column(file, header, target))
    features = [_column(c) for i, c in enumerate(table.columns) if i != t]
    names = [h for i, h in enumerate(header) if i != t]
    y = _column(table.columns[t], integral=True)
    if not table.n_rows:
        return np.empty((0, len(header) - 1)), y, names
    if all(c.dtype.kind == "f" for c in features):
        X = np.column_stack(features)
    else:
        X = np.column_stack([c.astype(object) for c in features])
    return X, y, names


def _target_column(file: Path, header: list[str], target: str | None) -> str:
    """The target column: ``--target``, else ``target`` if there is one, else the last column.

    The header names are the reader's: without a byte-order mark or surrounding spaces, so
    a first column written ``\ufefftarget`` by a spreadsheet is ``target``.
    """
    if target is None:
        return "target" if "target" in header else header[-1]
    if target not in header:
        raise ValidationInputError(
            f"{file}: no target column {target!r}; columns: {', '.join(header)}"
        )
    return target


def _column(values: Any, *, integral: bool = False) -> np.ndarray:
    """Numbers as float (int for an integral target); anything else stays as strings."""
    try:
        arr = np.array([float(v) if v.strip() else np.nan for v in values], dtype=float)
    except ValueError:
        return np.array(values, dtype=object)
    if integral and arr.size and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
        return arr.astype(np.int64)
    return arr


def _line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
