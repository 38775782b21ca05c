"""The exporter's own logs: structlog, one JSON object per line on stderr by default.

``--log.format=console`` gives coloured key=value lines for a terminal.  Libraries that log
through the standard library (APScheduler) are routed through the same renderer, so a log
shipper sees one format.  So are the warnings the library issues (a reference CSV whose
header names lost their whitespace, a registry history line skipped): one ``library_warning``
event each, not Python's two-line warning text in the middle of the JSON stream.
"""

from __future__ import annotations

import logging
import sys
import warnings
from typing import Any

import orjson
import structlog

from mlops_core.errors import DataFileWarning, MlopsError, RegistryWarning

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("json", "console")


def _orjson_dumps(obj: Any, default: Any = None, **_: Any) -> str:
    return orjson.dumps(obj, default=default).decode()


def configure_logging(level: str = "info", fmt: str = "json") -> None:
    """Configure structlog and the stdlib root logger; safe to call more than once."""
    numeric = logging.getLevelName(level.upper())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_orjson_dumps)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # Libraries' debug output is noise even at --log.level=debug; the exporter's is not.
    root.setLevel(max(numeric, logging.INFO))
    # APScheduler logs every job run at INFO; keep only its warnings (missed runs, errors).
    logging.getLogger("apscheduler").setLevel(max(numeric, logging.WARNING))
    route_library_warnings()


_python_showwarning = warnings.showwarning


def route_library_warnings() -> None:
    """Log each warning the library issues (an :class:`~mlops_core.errors.MlopsError` that
    is a ``Warning``) as one ``library_warning`` event: ``message`` (whitespace folded; it
    begins with the file it is about) and ``category``.  ``--log.format=json`` promises one
    JSON object per line, and Python prints a warning as two lines of plain text.

    Shown every time, not once per code location as Python's default filter would: a reload
    that reads the same reference again must say it again, or the note of the first read is
    the only one.  Any other warning (a third-party deprecation) is left to Python as it was.
    """
    for category in (DataFileWarning, RegistryWarning):
        warnings.filterwarnings("always", category=category)
    warnings.showwarning = _show_warning


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    if issubclass(category, MlopsError):
        structlog.get_logger("exporter").warning(
            "library_warning", message=" ".join(str(message).split()), category=category.__name__
        )
    else:
        _python_showwarning(message, category, filename, lineno, file, line)
