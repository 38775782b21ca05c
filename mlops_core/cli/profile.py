"""``mlops profile build|show`` and ``mlops drift``: reference profiles and drift reports.

``mlops profile build DATA -o OUT`` computes a profile from training data once (with
``--prediction-column``, ``--probability-column`` and ``--label-column``, also the model's
outputs as the feature ``__prediction__`` and a confidence calibrator);
``mlops drift REFERENCE CURRENT`` compares current data with it (REFERENCE may also be raw
data, which is then profiled on the fly) and prints one line per feature.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from mlops_core.cli._output import print_json, print_table
from mlops_core.constants import (
    CORRECTIONS,
    DEFAULT_BUCKETS,
    DEFAULT_MAX_CATEGORIES,
    DEFAULT_TOLERANCE,
    DRIFT_TESTS,
    MAX_BUCKETS,
    MAX_CATEGORIES,
    PREDICTION_FEATURE,
)
from mlops_core.errors import ProfileError

DRIFT_EXIT_CODE = 3


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    profile = subparsers.add_parser(
        "profile",
        help="build or show a reference profile",
        description="Reference profiles: sorted values, PSI buckets and category frequencies "
        "computed once from training data.",
    )
    actions = profile.add_subparsers(dest="profile_command", metavar="ACTION")
    profile.set_defaults(func=lambda _args: _usage(profile))

    build = actions.add_parser(
        "build",
        help="profile a .csv/.jsonl/.ndjson/.npz data file",
        description="Profile training data and save it as a versioned, hashed JSON file.",
    )
    build.add_argument("data", metavar="DATA", help="training data (.csv, .jsonl, .ndjson, .npz)")
    build.add_argument("-o", "--output", required=True, metavar="OUT", help="profile file to write")
    build.add_argument(
        "--buckets",
        type=_count(2, MAX_BUCKETS),
        default=DEFAULT_BUCKETS,
        metavar="N",
        help=f"PSI buckets, 2 to {MAX_BUCKETS} (default {DEFAULT_BUCKETS})",
    )
    build.add_argument(
        "--max-categories",
        type=_count(1, MAX_CATEGORIES),
        default=DEFAULT_MAX_CATEGORIES,
        metavar="N",
        help=f"categories kept per categorical feature, 1 to {MAX_CATEGORIES}; the rest go to "
        f"__other__ (default {DEFAULT_MAX_CATEGORIES})",
    )
    _columns_option(
        build, "--categorical", default=[],
        help="treat these columns as categorical (for example numeric codes)",
    )  # fmt: skip
    _columns_option(build, "--numeric", default=[], help="treat these columns as numeric")
    _columns_option(build, "--features", help="profile only these columns (default: all)")
    model = build.add_argument_group(
        "model outputs",
        "Columns holding the model's outputs on the reference rows; they are not profiled as "
        "features.",
    )
    model.add_argument(
        "--prediction-column",
        metavar="COL",
        help=f"the model's prediction (class, or score/value), profiled as {PREDICTION_FEATURE} "
        "for prediction drift; type it with --categorical COL or --numeric COL (integer "
        "classes infer as numeric)",
    )
    model.add_argument(
        "--probability-column",
        metavar="COL",
        help="probability of the predicted class; with --label-column, fits the confidence "
        "calibrator of the estimated accuracy",
    )
    model.add_argument(
        "--label-column",
        metavar="COL",
        help="true label; a prediction is right when it equals it",
    )
    build.set_defaults(func=_build)

    show = actions.add_parser(
        "show",
        help="summarize a profile",
        description="Print a profile's features, counts and buckets.",
    )
    show.add_argument("profile", metavar="PROFILE", help="saved profile (or raw data to profile)")
    show.add_argument("--json", action="store_true", help="print JSON instead of a table")
    show.set_defaults(func=_show)

    drift = subparsers.add_parser(
        "drift",
        help="compare current data with a reference",
        description="Judge each feature of CURRENT against REFERENCE (a saved profile or raw "
        "data): drifted when the lower confidence bound of its distance (KS distance for "
        "numeric features, total variation for categorical ones) reaches the tolerance. KS, "
        "chi-square and PSI are reported alongside; they do not vote.",
    )
    drift.add_argument("reference", metavar="REFERENCE", help="saved profile or raw data file")
    drift.add_argument("current", metavar="CURRENT", help="current data (.csv, .jsonl, .npz)")
    drift.add_argument("--json", action="store_true", help="print the full report as JSON")
    drift.add_argument(
        "--html",
        metavar="OUT",
        help="also write a self-contained HTML report (histograms, verdicts, settings) to OUT",
    )
    drift.add_argument(
        "--tests",
        metavar="LIST",
        help=f"reported statistics among {','.join(DRIFT_TESTS)} (default: by feature type)",
    )
    _columns_option(drift, "--features", help="features to test (default: all in both)")
    drift.add_argument(
        "--prediction-column",
        metavar="COL",
        help=f"CURRENT's column of model outputs, tested against the reference's "
        f"{PREDICTION_FEATURE}",
    )
    drift.add_argument(
        "--class-field",
        metavar="NAME",
        default="class",
        help=f"in a prediction log, the field of prediction that holds the class, read as "
        f"{PREDICTION_FEATURE} (the exporter's prediction.class_field; default: class)",
    )
    drift.add_argument(
        "--correction",
        choices=CORRECTIONS,
        default="none",
        help="multiple-testing correction of the level over the features (default none)",
    )
    drift.add_argument(
        "--tolerance",
        type=_tolerance,
        default=DEFAULT_TOLERANCE,
        metavar="D",
        help="smallest distance that matters, in probability units (default "
        f"{DEFAULT_TOLERANCE:g}: a {DEFAULT_TOLERANCE * 100:g}%% shift)",
    )
    drift.add_argument(
        "--fail-on-drift",
        action="store_true",
        help=f"exit with status {DRIFT_EXIT_CODE} when drift is detected",
    )
    drift.set_defaults(func=_drift)


def _columns_option(parser: argparse.ArgumentParser, flag: str, **kwargs: Any) -> None:
    """``FLAG COL[,COL...]``, repeatable: one word per use, so it never takes a positional.

    (``nargs="+"`` took every word after it: ``--categorical plan reference.csv`` left
    ``mlops profile build`` without its DATA.)
    """
    kwargs["help"] += "; repeat the option or separate names with commas"
    parser.add_argument(flag, action="extend", type=_column_names, metavar="COL[,COL...]", **kwargs)


def _tolerance(text: str) -> float:
    """``--tolerance``: a distance in probability units, in [0, 1)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value < 1.0:  # NaN fails too
        raise argparse.ArgumentTypeError(
            f"expected a distance in [0, 1) such as 0.05 (a 5% shift), got {text!r}"
        )
    return value


def _count(low: int, high: int) -> Callable[[str], int]:
    """An option's integer from ``low`` to ``high``: refused while parsing, in one line,
    rather than deep in numpy (``--buckets 100000000`` was a memory error)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"expected an integer from {low} to {high}, got {text!r}"
            )
        return value

    return parse


def _column_names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"empty column name in {text!r}")
    return names


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _build(args: argparse.Namespace) -> int:
    from mlops_core.profile import ReferenceProfile

    both = sorted(set(args.categorical) & set(args.numeric))
    if both:
        raise ProfileError(f"column {both[0]!r} is given as both --categorical and --numeric")
    types = {c: "categorical" for c in args.categorical}
    types.update({c: "numeric" for c in args.numeric})
    if (args.probability_column or args.label_column) and not args.prediction_column:
        given, why = (
            ("--probability-column", "the class it is the probability of")
            if args.probability_column
            else ("--label-column", "a prediction is right when it equals the label")
        )
        raise ProfileError(f"{given} needs --prediction-column ({why})")
    if bool(args.probability_column) != bool(args.label_column):
        given, needed = (
            ("--probability-column", "--label-column")
            if args.probability_column
            else ("--label-column", "--probability-column")
        )
        raise ProfileError(f"{given} needs {needed}: the calibrator is fitted on both")
    profile = ReferenceProfile.from_file(
        args.data,
        types,
        args.buckets,
        args.max_categories,
        features=args.features,
        prediction_column=args.prediction_column,
        probability_column=args.probability_column,
        label_column=args.label_column,
    )
    if not profile.metadata.get("source"):
        raise ProfileError(f"{args.data}: is already a saved profile, nothing to build")
    path = profile.save(args.output)
    extras = []
    if profile.prediction is not None:
        extras.append(f"{PREDICTION_FEATURE} ({profile.prediction.kind})")
    if profile.calibrator is not None:
        extras.append(f"calibrator ({profile.calibrator.thresholds.size} points)")
    n_features = len(profile) - (profile.prediction is not None)
    print(
        f"wrote {path}: {n_features} features, {profile.n_rows} rows, "
        + (f"with {' and '.join(extras)}, " if extras else "")
        + f"hash {profile.hash[:16]}"
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    from mlops_core.profile import ReferenceProfile

    profile = ReferenceProfile.from_file(args.profile)
    calibrator = profile.calibrator
    rows = [_feature_summary(name, f) for name, f in profile.features.items()]
    if args.json:
        print_json(
            {
                "hash": profile.hash,
                "n_rows": profile.n_rows,
                "buckets": profile.buckets,
                "max_categories": profile.max_categories,
                "metadata": profile.metadata,
                "features": rows,
                "calibrator": None if calibrator is None else calibrator.to_dict(),
            }
        )
        return 0
    print(f"profile {args.profile}: {profile.n_rows} rows, hash {profile.hash[:16]}")
    if calibrator is not None:
        print(f"calibrator: {calibrator.thresholds.size} points (estimated accuracy)")
    print_table(rows, ("feature", "kind", "n", "missing", "buckets", "range"))
    return 0


def _feature_summary(name: str, feature: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "feature": name,
        "kind": feature.kind,
        "n": feature.n,
        "missing": feature.n_missing,
        "buckets": feature.n_buckets,
        "bucket_labels": feature.bucket_labels,
        "ref_proportions": [round(float(p), 6) for p in feature.ref_proportions],
    }
    if feature.kind == "numeric":
        values = feature.sorted_values
        row["range"] = f"{values[0]:.6g} .. {values[-1]:.6g}"
    else:
        shown = ", ".join(feature.categories[:4])
        more = len(feature.categories) - 4
        row["range"] = shown + (f", +{more} more" if more > 0 else "")
    return row


def _drift(args: argparse.Namespace) -> int:
    from mlops_core.drift import analyze_feature_drift
    from mlops_core.profile import ReferenceProfile

    reference = ReferenceProfile.from_file(args.reference)
    current, skipped = _read_current(args, reference)
    if args.prediction_column:
        if args.prediction_column not in current:
            raise ProfileError(f"{args.current}: no column {args.prediction_column!r}")
        current[PREDICTION_FEATURE] = current.pop(args.prediction_column)
    notes: list[str] = []
    if skipped:  # on stderr under --json too: stdout stays one JSON document
        notes.append(skipped)
        print(f"note: {skipped}", file=sys.stderr)
    if args.features:
        features = list(args.features)
    else:
        features = [f for f in reference.feature_names if f in current]
        absent = [f for f in reference.feature_names if f not in current]
        if not features:
            raise ProfileError(f"{args.current}: has none of the reference's features")
        if absent:
            notes.append(f"not in {args.current}: {', '.join(absent)}")
            if not args.json:
                print(f"note: {notes[-1]}", file=sys.stderr)
    report = analyze_feature_drift(
        reference,
        current,
        features,
        args.tests.split(",") if args.tests else None,
        correction=args.correction,
        tolerance_numeric=args.tolerance,
        tolerance_categorical=args.tolerance,
    )
    if args.json:
        print_json(report)
    else:
        print_table([_drift_row(n, r) for n, r in report["features"].items()], _DRIFT_COLUMNS)
        drifted = report["features_with_drift"]
        print(
            f"\ndrift in {len(drifted)} of {report['n_features']} features "
            f"({report['drift_share']:.0%})" + (f": {', '.join(drifted)}" if drifted else "")
        )
    if args.html:
        _write_html(args, reference, current, report, notes)
    return DRIFT_EXIT_CODE if args.fail_on_drift and report["drift_alert"] else 0


def _read_current(args: argparse.Namespace, reference: Any) -> tuple[dict[str, Any], str | None]:
    """CURRENT's columns, checked against the reference's feature kinds, and the note on
    the lines skipped, if any.

    A prediction log is read as the exporter reads it (docs/drift.md): a line the exporter
    would refuse, a non-numeric value of a numeric feature included, is skipped and
    counted rather than the end of the command.  Other files fail on their first bad line,
    which the error names.
    """
    from mlops_core.datafiles import read_data

    kinds = {name: feature.kind for name, feature in reference.features.items()}
    if args.prediction_column and reference.prediction is not None:
        kinds[args.prediction_column] = kinds.pop(PREDICTION_FEATURE)
    data = read_data(args.current, kinds=kinds, skip_bad_lines=True, class_field=args.class_field)
    return data.columns, data.skip_note()


def _write_html(
    args: argparse.Namespace,
    reference: Any,
    current: dict[str, Any],
    report: dict[str, Any],
    notes: list[str],
) -> None:
    """``--html OUT``: the report file; its one-line receipt goes to stderr under ``--json``,
    so that stdout stays one JSON document."""
    from mlops_core.report import drift_report_html, write_report

    sources = {"reference": args.reference, "current": args.current}
    path = write_report(
        args.html, drift_report_html(reference, current, report, sources=sources, notes=notes)
    )
    print(
        f"wrote {path}: {report['n_drifted']} of {report['n_features']} features drifted",
        file=sys.stderr if args.json else sys.stdout,
    )


_DRIFT_COLUMNS = (
    "feature", "kind", "drift", "distance", "detectable", "ks_p", "chi2_p", "psi", "n",
    "missing", "reason",
)  # fmt: skip


def _drift_row(name: str, result: dict[str, Any]) -> dict[str, Any]:
    def test_value(test: str, key: str) -> float | None:
        entry = result.get(test)
        return entry[key] if entry else None

    return {
        "feature": name,
        "kind": result["kind"],
        "drift": "DRIFT" if result["drift_detected"] else "ok",
        "distance": result["distance"],
        "detectable": result["detectable_distance"],
        "ks_p": test_value("ks", "p_value"),
        "chi2_p": test_value("chi2", "p_value"),
        "psi": test_value("psi", "psi"),
        "n": result["n_current"],
        "missing": f"{result['missing_rate']:.1%}",
        "reason": result["reason"],
    }
