"""``mlops registry``: register, promote, roll back and inspect models from a shell or CI job.

Every action prints a table by default and JSON with ``--json``; the registry is
``--registry DIR|URL``, else ``$MLOPS_REGISTRY``, else ``./mlops_registry``: a directory, or
``s3://bucket/prefix`` for a registry in S3-compatible object storage (endpoint and
credentials from the standard ``AWS_*`` variables).  Failures exit
non-zero with one line on stderr (the dispatcher in ``mlops_core.cli`` prints errors this
project raises), so a deployment pipeline can gate on the exit code.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from typing import Any

from mlops_core.cli._output import print_json, print_table
from mlops_core.errors import (
    CorruptMetadataError,
    IntegrityError,
    RegistryInputError,
    one_line,
)
from mlops_core.registry import ModelRegistry, ModelVersion, version_sort_key

DEFAULT_REGISTRY = "./mlops_registry"
_NAME_HELP = "model name: letters, digits, '.', '_', '+', '-' (for example churn)"
_VERSION_HELP = "for example 1.2.0 (versions sort PEP 440-like)"
_INT = re.compile(r"[+-]?\d+")
#: what makes one stored model unreadable: reported as its row, the others still shown
_UNREADABLE = (CorruptMetadataError, IntegrityError, OSError)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``registry`` command group to the ``mlops`` parser."""
    # the two options are accepted before or after the action: ``registry --json list`` and
    # ``registry list --json``; SUPPRESS keeps an action's default from hiding the group's
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--registry",
        metavar="DIR|URL",
        default=argparse.SUPPRESS,
        help=(
            "registry directory or s3://bucket/prefix"
            f" (default: $MLOPS_REGISTRY or {DEFAULT_REGISTRY})"
        ),
    )
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    parser = subparsers.add_parser(
        "registry",
        parents=[common],
        help="register, promote, roll back and verify model versions",
        description=(
            "A model registry, in a directory or in S3, with checksums, atomic changes and"
            " stage history."
        ),
    )
    actions = parser.add_subparsers(dest="registry_action", metavar="ACTION", required=True)

    def action(name: str, func: Any, help_text: str) -> argparse.ArgumentParser:
        sub = actions.add_parser(name, parents=[common], help=help_text, description=help_text)
        sub.set_defaults(func=func)
        return sub

    p = action("register", _register, "copy a model file or directory in as a new version")
    p.add_argument("name", help=_NAME_HELP)
    p.add_argument("version", help=f"the new version, {_VERSION_HELP}")
    p.add_argument("path", help="model file or directory to copy into the registry")
    p.add_argument(
        "--metric", action="append", default=[], type=_key_value, metavar="KEY=VALUE",
        help="a metric such as accuracy=0.85 (repeatable)",
    )  # fmt: skip
    p.add_argument("--metrics-file", metavar="FILE", help="JSON object of metrics")
    p.add_argument("--description", help="free text stored with the version")
    p.add_argument(
        "--tag", action="append", default=[], type=_key_value, metavar="KEY=VALUE",
        help="a string tag such as owner=data-team (repeatable)",
    )  # fmt: skip
    p.add_argument(
        "--reference", metavar="FILE",
        help="reference data (.csv, .jsonl, .npz) or a saved profile (.json), stored with the"
        " version as the profile drift is judged against",
    )  # fmt: skip

    p = action("promote", _promote, "move a version to staging or production")
    p.add_argument("name", help=_NAME_HELP)
    p.add_argument("version", help="the registered version to promote")
    p.add_argument("stage", choices=("staging", "production"), help="the stage it moves to")
    p.add_argument("--reason", help="recorded in the history")

    p = action("rollback", _rollback, "restore the previous production version")
    p.add_argument("name", help=_NAME_HELP)
    p.add_argument("--reason", help="recorded in the history")

    p = action("archive", _archive, "retire a version that is not in production")
    p.add_argument("name", help=_NAME_HELP)
    p.add_argument("version", help="the registered version to archive")
    p.add_argument("--reason", help="recorded in the history")

    p = action("list", _list, "list models, or the versions of one model")
    p.add_argument("name", nargs="?", help="list this model's versions (default: every model)")
    p.add_argument(
        "--order", choices=("version", "registration"), default="version",
        help="order of versions (default: version, PEP 440-like)",
    )  # fmt: skip

    p = action("show", _show, "show a model, or one version's record")
    p.add_argument("name", help=_NAME_HELP)
    p.add_argument("version", nargs="?", help="show this version's record (default: the model)")

    p = action("history", _history, "show a model's stage changes, oldest first")
    p.add_argument("name", help=_NAME_HELP)

    p = action("verify", _verify, "re-hash stored models against their recorded SHA-256")
    p.add_argument("name", nargs="?", help="the model to verify (default: every model)")
    p.add_argument("version", nargs="?", help="the version to verify (default: every version)")

    p = action("path", _path, "print the verified path of the production (or given) version")
    p.add_argument("name", help=_NAME_HELP)
    p.add_argument("version", nargs="?", help="a registered version (default: production)")

    p = action(
        "reference", _reference, "show or save the reference profile of the production (or"
        " given) version",
    )  # fmt: skip
    p.add_argument("name", help=_NAME_HELP)
    p.add_argument("version", nargs="?", help="a registered version (default: production)")
    p.add_argument("-o", "--output", metavar="FILE", help="save the verified profile as JSON")
    return parser


# --- helpers ----------------------------------------------------------------------------------


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _metric_value(text: str) -> int | float | str:
    """``--metric`` text as a number; text that is none is passed on as is, for the
    registry's own check to refuse naming the metric (the same line as from the API or a
    ``--metrics-file``)."""
    if _INT.fullmatch(text.strip()):
        return int(text)
    try:
        return float(text)
    except ValueError:
        return text


def _registry(args: argparse.Namespace) -> ModelRegistry:
    root = getattr(args, "registry", None) or os.environ.get("MLOPS_REGISTRY") or DEFAULT_REGISTRY
    return ModelRegistry(root)


def _as_json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False))


def _print_record(args: argparse.Namespace, version: ModelVersion) -> None:
    data = version.to_dict()
    if _as_json(args):
        print_json(data)
        return
    print_table(({"field": k, "value": v} for k, v in data.items()), ("field", "value"))


# --- actions ----------------------------------------------------------------------------------


def _register(args: argparse.Namespace) -> int:
    metrics: dict[str, Any] = {}
    if args.metrics_file:
        try:
            with open(args.metrics_file, encoding="utf-8") as fh:
                loaded = json.load(fh)
        except FileNotFoundError:
            raise RegistryInputError(f"metrics file not found: {args.metrics_file}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RegistryInputError(f"{args.metrics_file}: not valid JSON ({exc})") from None
        if not isinstance(loaded, dict):
            raise RegistryInputError(f"{args.metrics_file}: expected a JSON object of metrics")
        metrics.update(loaded)
    metrics.update({k: _metric_value(v) for k, v in args.metric})
    version = _registry(args).register_model(
        args.name,
        args.version,
        args.path,
        metrics,
        description=args.description,
        tags=dict(args.tag),
        reference=args.reference,
    )
    _print_record(args, version)
    return 0


def _promote(args: argparse.Namespace) -> int:
    registry = _registry(args)
    if args.stage == "production":
        version = registry.promote_to_production(args.name, args.version, reason=args.reason)
    else:
        version = registry.promote_to_staging(args.name, args.version, reason=args.reason)
    _print_record(args, version)
    return 0


def _rollback(args: argparse.Namespace) -> int:
    restored = _registry(args).rollback(args.name, reason=args.reason)
    if _as_json(args):
        print_json({"name": args.name, "production": restored})
    else:
        print(f"{args.name}: rolled back, production is now {restored}")
    return 0


def _archive(args: argparse.Namespace) -> int:
    _print_record(
        args, _registry(args).archive_version(args.name, args.version, reason=args.reason)
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    """Every model, or one model's versions.

    A model that cannot be read (a damaged model.json, no permission) is a row with its
    problem, the others are listed, and the exit code is 1: a script enumerating models
    must not take a partial list for the whole registry.
    """
    registry = _registry(args)
    if args.name is not None:
        return _list_versions(args, registry)
    names = registry.list_models()
    if not names:  # a mistyped --registry lists nothing, like an empty one: say which
        print(f"note: {_holds_no_model(registry)}", file=sys.stderr)
    rows = [_model_row(registry, name) for name in names]
    columns = ["name", "versions", "latest", "staging", "production"]
    unread = [r for r in rows if r["problem"] is not None]
    if _as_json(args):
        print_json(rows)
    else:
        print_table(rows, [*columns, "problem"] if unread else columns)
    if unread:
        _error(f"{_unread_summary(unread, len(rows))} (first: {_first(unread)})")
        return 1
    return 0


def _model_row(registry: ModelRegistry, name: str) -> dict[str, Any]:
    """One model's ``list`` row; a model that cannot be read is a row saying why."""
    row: dict[str, Any] = dict.fromkeys(("versions", "latest", "staging", "production"))
    try:
        info = registry.get_model(name)
    except _UNREADABLE as exc:
        return {"name": name, **row, "problem": one_line(exc)}
    latest = max(info.versions, key=version_sort_key) if info.versions else None
    return {
        "name": name, "versions": len(info.versions), "latest": latest,
        "staging": info.staging, "production": info.production, "problem": None,
    }  # fmt: skip


def _list_versions(args: argparse.Namespace, registry: ModelRegistry) -> int:
    """One model's versions.  A version whose record cannot be read (a damaged
    version.json, no permission) is a row with its problem, the others are listed, and the
    exit code is 1, as for the list of models.  A model that cannot be read at all stays
    one error line: there is nothing else to show."""
    ids = list(registry.get_model(args.name).versions)
    if args.order == "version":
        ids.sort(key=version_sort_key)
    found: list[dict[str, Any]] = []
    unread: list[dict[str, Any]] = []
    for version in ids:
        try:
            found.append(registry.get_version(args.name, version).to_dict())
        except _UNREADABLE as exc:
            found.append({"name": args.name, "version": version, "problem": one_line(exc)})
            unread.append(found[-1])
    if _as_json(args):
        print_json(found)
    else:
        rows = [{**v, "sha256": v["sha256"][:12]} if "sha256" in v else v for v in found]
        columns = ("version", "stage", "size", "sha256", "registered_at", "metrics")
        print_table(rows, (*columns, "problem") if unread else columns)
    if unread:
        _error(f"{len(unread)} of {len(ids)} versions could not be read (first: {_first(unread)})")
        return 1
    return 0


def _show(args: argparse.Namespace) -> int:
    registry = _registry(args)
    if args.version is not None:
        _print_record(args, registry.get_version(args.name, args.version))
        return 0
    data = registry.get_model(args.name).to_dict()
    if _as_json(args):
        print_json(data)
    else:
        print_table(({"field": k, "value": v} for k, v in data.items()), ("field", "value"))
    return 0


def _history(args: argparse.Namespace) -> int:
    events = [e.to_dict() for e in _registry(args).get_history(args.name)]
    if _as_json(args):
        print_json(events)
    else:
        columns = ("seq", "timestamp", "user", "action", "version", "from_stage", "to_stage")
        print_table(events, (*columns, "reason"))
    return 0


def _verify(args: argparse.Namespace) -> int:
    """Re-hash every stored version; exit 1 when any fails or any model cannot be read.

    A model that cannot be read is a FAILED row of its own, so a CI check can never pass
    having checked nothing.
    """
    registry = _registry(args)
    names = [args.name] if args.name else registry.list_models()
    if not names:  # a check that checked nothing must not pass (a mistyped --registry)
        _error(f"nothing to verify: {_holds_no_model(registry)}")
        return 1
    rows = [row for name in names for row in _verify_rows(registry, name, args.version)]
    if _as_json(args):
        print_json(rows)
    else:
        shown = [{**r, "ok": "ok" if r["ok"] else "FAILED"} for r in rows]
        print_table(shown, ("name", "version", "stage", "ok", "problem"))
    failed = [r for r in rows if not r["ok"]]
    if failed:
        _error(f"{_verify_summary(rows, len(names))} (first: {_first(failed)})")
        return 1
    return 0


def _verify_rows(registry: ModelRegistry, name: str, version: str | None) -> list[dict[str, Any]]:
    """The model's results, or one FAILED row (version null) when it cannot be read."""
    try:
        return [r.to_dict() for r in registry.verify(name, version)]
    except _UNREADABLE as exc:
        return [{
            "name": name, "version": None, "stage": None, "ok": False,
            "expected_sha256": None, "actual_sha256": None, "problem": one_line(exc),
        }]  # fmt: skip


def _verify_summary(rows: list[dict[str, Any]], n_models: int) -> str:
    """``1 of 3 models could not be read, 1 of 4 versions failed verification``."""
    unread = [r for r in rows if r["version"] is None]
    versions = [r for r in rows if r["version"] is not None]
    parts = [_unread_summary(unread, n_models)] if unread else []
    failed = sum(not r["ok"] for r in versions)
    if failed or not unread:
        parts.append(f"{failed} of {len(versions)} versions failed verification")
    return ", ".join(parts)


def _unread_summary(unread: list[dict[str, Any]], n_models: int) -> str:
    return f"{len(unread)} of {n_models} models could not be read"


def _first(rows: list[dict[str, Any]]) -> str:
    """The first failure, named: ``churn 1.0: problem`` or ``churn: problem``."""
    row = rows[0]
    version = row.get("version")
    what = row["name"] if version is None else f"{row['name']} {version}"
    return f"{what}: {row['problem']}"


def _holds_no_model(registry: ModelRegistry) -> str:
    """``registry ./reg holds no model (the directory does not exist)``."""
    why = ""
    if not registry.location.startswith("s3://") and not registry.root.is_dir():
        why = (
            " (the directory does not exist)"
            if not registry.root.exists()
            else " (not a directory)"
        )
    return f"registry {registry.location} holds no model{why}"


def _error(text: str) -> None:
    print(f"mlops registry: error: {text}", file=sys.stderr)


def _path(args: argparse.Namespace) -> int:
    registry = _registry(args)
    if args.version is None:
        version = registry.get_production_version(args.name)
        path = registry.get_production_model_path(args.name)
    else:
        version, path = args.version, registry.get_model_path(args.name, args.version)
    if _as_json(args):
        print_json({"name": args.name, "version": version, "path": str(path)})
    else:
        print(path)
    return 0


def _reference(args: argparse.Namespace) -> int:
    registry = _registry(args)
    if args.version is None:
        profile = registry.get_production_reference_profile(args.name)
    else:
        profile = registry.get_reference_profile(args.name, args.version)
    if args.output:
        profile.save(args.output)
    data = {
        "name": args.name, "version": profile.metadata["model_version"], "hash": profile.hash,
        "n_rows": profile.n_rows, "features": profile.feature_names, "output": args.output,
    }  # fmt: skip
    if _as_json(args):
        print_json(data)
    else:
        print_table(({"field": k, "value": v} for k, v in data.items()), ("field", "value"))
    return 0
