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
from collections.abc import Sequence
from typing import TextIO

from mlops_core import __version__
from mlops_core.errors import DataFileWarning, MlopsError

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
        with warnings.catch_warnings():
            warnings.showwarning = _print_note
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


def _print_note(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """A :class:`~mlops_core.errors.DataFileWarning` is one ``note:`` line on stderr, as
    the commands' own notes are; any other warning is shown as Python shows it."""
    if issubclass(category, DataFileWarning):
        print(f"note: {' '.join(str(message).split())}", file=sys.stderr)
    else:
        _SHOW_WARNING(message, category, filename, lineno, file, line)


_SHOW_WARNING = warnings.showwarning


def _one_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, FileNotFoundError) and exc.filename and _default_reason(exc):
        text = f"{exc.filename}: no such file"  # as MissingFileError says it
    elif isinstance(exc, OSError) and exc.strerror and exc.filename:  # not "[Errno 2] ..."
        text = f"{exc.filename}: {exc.strerror}"
    return " ".join(text.split())


def _default_reason(exc: OSError) -> bool:
    """The C library's words for the errno, not a reason written for the user (such as
    ``_fsutil``'s "directory ... does not exist")."""
    return exc.errno is None or exc.strerror in (None, os.strerror(exc.errno))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
