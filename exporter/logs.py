"""The exporter's own logs: structlog, one JSON object per line on stderr by default.

``--log.format=console`` gives coloured key=value lines for a terminal.  Libraries that log
through the standard library (APScheduler) are routed through the same renderer, so a log
shipper sees one format.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson
import structlog

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
