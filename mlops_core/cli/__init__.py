"""The ``mlops`` command: registry, validation gate, reference profiles and drift reports.

Each sub-command lives in its own module exposing ``add_parser(subparsers)``; the module
sets ``func`` on its parser, a callable ``(args) -> int`` returning the exit code.
Errors this project raises on purpose, and OS errors such as a missing file, are printed
as one line on stderr with exit code 1, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from mlops_core import __version__
from mlops_core.errors import DataFileWarning, MlopsError, RegistryWarning, one_line

# sub-command modules, in the order they appear in --help
_COMMANDS = (
    "mlops_core.cli.registry",
    "mlops_core.cli.validate",
    "mlops_core.cli.profile",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlops",
        description="Model registry, validation gate, reference profiles and drift reports.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMANDS:
        importlib.import_module(name).add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return _run(func, args)
    except BrokenPipeError:
        # The reader went away (`mlops registry list | head -1`): stop quietly, as a shell
        # tool killed by SIGPIPE would, and keep Python from complaining at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (MlopsError, OSError) as exc:
        print(f"mlops {args.command}: error: {one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _run(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run an action with the warnings this project issues shown as one line each, like
    its errors, not as Python's two-line format: ``mlops registry: warning: ...`` for a
    :class:`RegistryWarning`, ``note: ...`` (as the commands' own notes) for a
    :class:`DataFileWarning`; any other warning as Python shows it."""
    shown = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], *rest: Any, **kw: Any) -> None:
        text = " ".join(str(message).split())
        if issubclass(category, RegistryWarning):
            print(f"mlops {args.command}: warning: {text}", file=sys.stderr)
        elif issubclass(category, DataFileWarning):
            print(f"note: {text}", file=sys.stderr)
        else:
            shown(message, category, *rest, **kw)

    with warnings.catch_warnings():
        warnings.simplefilter("always", RegistryWarning)
        warnings.simplefilter("always", DataFileWarning)
        warnings.showwarning = show
        return int(func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
