"""The exporter's own errors, on top of :mod:`mlops_core.errors`.

The library (``mlops_core``) knows nothing of the daemon, so the errors that only the
exporter raises live here.  They still derive from :class:`~mlops_core.errors.MlopsError`,
so the exporter's command line shows every error alike (one line, exit status 1).

``mlops_core.errors.ConfigError`` and ``mlops_core.ConfigError`` still resolve to the class
defined here, for code that imported it from there before it moved.
"""

from __future__ import annotations

from mlops_core.errors import MlopsError

__all__ = ["ConfigError"]


class ConfigError(MlopsError, ValueError):
    """The exporter's configuration is wrong; the message names the key or file."""
