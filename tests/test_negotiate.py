"""Content negotiation for /metrics: the format named in Content-Type is the body's, and
gzip only when the client gives it a weight above zero."""

from __future__ import annotations

import pytest

from exporter.negotiate import OPENMETRICS, TEXT, accepts_gzip, choose_format


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, TEXT),
        ("", TEXT),
        ("application/openmetrics-text", OPENMETRICS),
        ("application/openmetrics-text; version=1.0.0", OPENMETRICS),
        ('application/openmetrics-text; version="1.0.0"', OPENMETRICS),
        ("APPLICATION/OpenMetrics-Text;Version=1.0.0", OPENMETRICS),
        # a version this exporter does not write is never claimed
        ("application/openmetrics-text; version=2.0.0", TEXT),
        ("application/openmetrics-text; version=0.0.1", TEXT),
        ("application/openmetrics-text; version=2.0.0, text/plain; version=0.0.4", TEXT),
        ("application/openmetrics-text; version=2.0.0,"
         " application/openmetrics-text; version=1.0.0; q=0.1", OPENMETRICS),
        # weights decide, not the order
        ("text/plain; q=0.5, application/openmetrics-text; q=0.9", OPENMETRICS),
        ("application/openmetrics-text; q=0.5, text/plain; q=0.9", TEXT),
        # equal weights: the client's order
        ("application/openmetrics-text, text/plain", OPENMETRICS),
        ("text/plain, application/openmetrics-text", TEXT),
        # q=0 is "not acceptable"; a weight that does not parse counts as 0
        ("application/openmetrics-text; q=0", TEXT),
        ("application/openmetrics-text; q=zero", TEXT),
        ("application/openmetrics-text; q=1.5", TEXT),
        ("text/plain; version=1.0.0", TEXT),  # falls back to what every Prometheus reads
        ("*/*", TEXT),
        ("application/json", TEXT),
    ],
)  # fmt: skip
def test_choose_format(accept: str | None, expected) -> None:
    assert choose_format(accept) is expected


def test_content_types_name_the_version_written() -> None:
    assert OPENMETRICS.content_type == "application/openmetrics-text; version=1.0.0; charset=utf-8"
    assert TEXT.content_type == "text/plain; version=0.0.4; charset=utf-8"


@pytest.mark.parametrize(
    ("header", "gzip"),
    [
        (None, False),
        ("", False),
        ("gzip", True),
        ("GZIP", True),
        ("x-gzip", True),
        ("deflate, gzip;q=1.0, *;q=0.5", True),
        ("gzip;q=0", False),
        ("gzip; q=0.000", False),
        ("gzip;q=0, *", False),  # named with weight 0: the wildcard does not override it
        ("*", True),
        ("*;q=0", False),
        ("identity", False),
        ("br, deflate", False),
        ("gzip;q=nonsense", False),
    ],
)  # fmt: skip
def test_accepts_gzip(header: str | None, gzip: bool) -> None:
    assert accepts_gzip(header) is gzip
