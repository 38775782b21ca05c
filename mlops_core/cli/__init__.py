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
from collections.abc import Sequence

from mlops_core import __version__
from mlops_core.errors import MlopsError

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
        return int(func(args) or 0)
    except BrokenPipeError:
        # The reader went away (`mlops registry list | head -1`): stop quietly, as a shell
        # tool killed by SIGPIPE would, and keep Python from complaining at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (MlopsError, OSError) as exc:
        print(f"mlops {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _one_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, FileNotFoundError) and exc.filename:  # as MissingFileError says it
        text = f"{exc.filename}: no such file"
    elif isinstance(exc, OSError) and exc.strerror and exc.filename:  # not "[Errno 2] ..."
        text = f"{exc.filename}: {exc.strerror}"
    return " ".join(text.split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
