"""``mlops profile build|show`` and ``mlops drift``: reference profiles and drift reports.

``mlops profile build DATA -o OUT`` computes a profile from training data once;
``mlops drift REFERENCE CURRENT`` compares current data with it (REFERENCE may also be raw
data, which is then profiled on the fly) and prints one line per feature.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mlops_core.cli._output import print_json, print_table
from mlops_core.constants import (
    CORRECTIONS,
    DEFAULT_BUCKETS,
    DEFAULT_MAX_CATEGORIES,
    DEFAULT_TOLERANCE,
    DRIFT_TESTS,
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
        type=int,
        default=DEFAULT_BUCKETS,
        metavar="N",
        help=f"PSI buckets (default {DEFAULT_BUCKETS})",
    )
    build.add_argument(
        "--max-categories",
        type=int,
        default=DEFAULT_MAX_CATEGORIES,
        metavar="N",
        help="categories kept per categorical feature; the rest go to __other__ "
        f"(default {DEFAULT_MAX_CATEGORIES})",
    )
    _columns_option(
        build, "--categorical", default=[],
        help="treat these columns as categorical (for example numeric codes)",
    )  # fmt: skip
    _columns_option(build, "--numeric", default=[], help="treat these columns as numeric")
    _columns_option(build, "--features", help="profile only these columns (default: all)")
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
        "--correction",
        choices=CORRECTIONS,
        default="none",
        help="multiple-testing correction of the level over the features (default none)",
    )
    drift.add_argument(
        "--tolerance",
        type=float,
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
    profile = ReferenceProfile.from_file(
        args.data, types, args.buckets, args.max_categories, features=args.features
    )
    if not profile.metadata.get("source"):
        raise ProfileError(f"{args.data}: is already a saved profile, nothing to build")
    path = profile.save(args.output)
    print(f"wrote {path}: {len(profile)} features, {profile.n_rows} rows, hash {profile.hash[:16]}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from mlops_core.profile import ReferenceProfile

    profile = ReferenceProfile.from_file(args.profile)
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
            }
        )
        return 0
    print(f"profile {args.profile}: {profile.n_rows} rows, hash {profile.hash[:16]}")
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
    from mlops_core.datafiles import read_data_file
    from mlops_core.drift import analyze_feature_drift
    from mlops_core.profile import ReferenceProfile

    reference = ReferenceProfile.from_file(args.reference)
    current = read_data_file(args.current)
    notes: list[str] = []
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
