"""Content negotiation for ``/metrics``: which exposition format, and whether to gzip.

The exporter can write two formats: the Prometheus text format 0.0.4 and OpenMetrics
1.0.0.  prometheus_client's ``choose_encoder`` copies whatever OpenMetrics version the
client names into the ``Content-Type``, so ``Accept: application/openmetrics-text;
version=2.0.0`` got a 1.0 body labelled 2.0.0, and a parser for 2.0 would misread it.  Like
Go's ``expfmt.Negotiate``, an OpenMetrics range is only taken when it names no version or
1.0.0; anything else falls through to the next range, and finally to text 0.0.4 (every
Prometheus accepts it, so a scrape never fails on negotiation).

Both headers are read with their ``q`` weights (RFC 9110 §12.4.2): ``q=0`` means "not
acceptable", so ``Accept-Encoding: gzip;q=0`` gets an uncompressed body.  The response
always carries ``Vary: Accept-Encoding`` (see :data:`VARY`), so a shared cache never hands a
gzip body to a client that cannot read it.
"""

from __future__ import annotations

from dataclasses import dataclass

TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
VARY = "Accept-Encoding"

_OPENMETRICS_VERSIONS = ("", "1.0.0")
_TEXT_VERSIONS = ("", "0.0.4")


@dataclass(frozen=True, slots=True)
class Format:
    """A negotiated exposition format: OpenMetrics or not, and the Content-Type to send."""

    openmetrics: bool
    content_type: str


TEXT = Format(False, TEXT_CONTENT_TYPE)
OPENMETRICS = Format(True, OPENMETRICS_CONTENT_TYPE)


def _elements(header: str) -> list[tuple[str, dict[str, str], float]]:
    """``(value, params, q)`` of each comma-separated element, highest ``q`` first.

    Among equal weights the client's order is kept.  An unreadable or out-of-range weight
    counts as 0: never guess that a client wants what it did not ask for clearly.
    """
    out = []
    for element in header.split(","):
        value, *raw_params = element.split(";")
        value = value.strip().lower()
        if not value:
            continue
        params: dict[str, str] = {}
        for raw in raw_params:
            key, _, param = raw.partition("=")
            params[key.strip().lower()] = param.strip().strip('"')
        try:
            q = float(params.pop("q", "1"))
        except ValueError:
            q = 0.0
        out.append((value, params, q if 0.0 <= q <= 1.0 else 0.0))
    out.sort(key=lambda element: -element[2])  # stable: equal weights keep their order
    return out


def choose_format(accept: str | None) -> Format:
    """The format to answer ``Accept: accept`` with; text 0.0.4 when nothing else fits."""
    if not accept:
        return TEXT
    for media, params, q in _elements(accept):
        if q == 0:
            break  # sorted: every range from here on is "not acceptable"
        version = params.get("version", "")
        if media == "application/openmetrics-text" and version in _OPENMETRICS_VERSIONS:
            return OPENMETRICS
        if media == "text/plain" and version in _TEXT_VERSIONS:
            return TEXT
        if media in ("*/*", "text/*"):
            return TEXT
    return TEXT


def accepts_gzip(accept_encoding: str | None) -> bool:
    """True when ``Accept-Encoding`` allows gzip with a weight above 0 (``*`` counts)."""
    if not accept_encoding:
        return False
    weights: dict[str, float] = {}
    for coding, _, q in _elements(accept_encoding):
        weights.setdefault(coding, q)
    for coding in ("gzip", "x-gzip"):
        if coding in weights:
            return weights[coding] > 0
    return weights.get("*", 0.0) > 0


__all__ = [
    "OPENMETRICS",
    "OPENMETRICS_CONTENT_TYPE",
    "TEXT",
    "TEXT_CONTENT_TYPE",
    "VARY",
    "Format",
    "accepts_gzip",
    "choose_format",
]
