"""The HTTP/1.1 request reader: what it accepts, and what it refuses so that a front proxy
and this server can never disagree about where a request ends."""

from __future__ import annotations

import pytest

from exporter.httpserver import HttpError, Request, body_length, keep_alive, parse_head


def test_a_plain_request_head() -> None:
    request = parse_head(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept:  text/plain ")
    assert (request.method, request.target, request.version) == ("GET", "/metrics?x=1", (1, 1))
    assert request.headers == {"host": "a", "accept": "text/plain"}


def test_lone_lf_line_ends_and_repeated_fields() -> None:
    request = parse_head(b"GET / HTTP/1.0\nAccept: a\nACCEPT: b")
    assert request.version == (1, 0)
    assert request.header("accept") == "a, b"


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"GET /metrics", 400),
        (b"GET /metrics HTTP/1.1 extra", 400),
        (b"GET  /metrics HTTP/1.1", 400),
        (b"G(T /metrics HTTP/1.1", 400),
        (b"GET /me trics HTTP/1.1", 400),
        (b"GET /\x7f HTTP/1.1", 400),
        (b"GET / HTTP/1", 400),
        (b"GET / HTTPS/1.1", 400),
        (b"GET / HTTP/2.0", 505),
        (b"GET / HTTP/1.1\r\nHost : a", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\n b", 400),
        (b"GET / HTTP/1.1\r\n\tb", 400),
        (b"GET / HTTP/1.1\r\nNoColon", 400),
        (b"GET / HTTP/1.1\r\nX: a\rb", 400),
        (b"GET / HTTP/1.1\r\nX: a\x00b", 400),
        (b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 101, 431),
    ],
)  # fmt: skip
def test_malformed_heads_are_refused(head: bytes, status: int) -> None:
    with pytest.raises(HttpError) as info:
        parse_head(head)
    assert info.value.status == status


def _request(**headers: str) -> Request:
    return Request("GET", "/", (1, 1), {k.replace("_", "-"): v for k, v in headers.items()})


@pytest.mark.parametrize(
    ("headers", "length"),
    [({}, 0), ({"content_length": "0"}, 0), ({"content_length": "12"}, 12),
     ({"content_length": "7, 7"}, 7)],
)  # fmt: skip
def test_body_length(headers: dict[str, str], length: int) -> None:
    assert body_length(_request(**headers)) == length


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"transfer_encoding": "chunked"}, 411),
        ({"transfer_encoding": "gzip, chunked"}, 411),
        ({"transfer_encoding": "chunked", "content_length": "3"}, 400),
        ({"content_length": "3, 4"}, 400),
        ({"content_length": "-3"}, 400),
        ({"content_length": "+3"}, 400),
        ({"content_length": "0x10"}, 400),
        ({"content_length": "３"}, 400),  # a digit, but not an ASCII one
        ({"content_length": "9" * 19}, 400),
    ],
)  # fmt: skip
def test_lengths_that_could_be_read_two_ways_are_refused(
    headers: dict[str, str], status: int
) -> None:
    with pytest.raises(HttpError) as info:
        body_length(_request(**headers))
    assert info.value.status == status


@pytest.mark.parametrize(
    ("version", "connection", "keep"),
    [
        ((1, 1), None, True),
        ((1, 1), "close", False),
        ((1, 1), "Keep-Alive, Close", False),
        ((1, 0), None, False),
        ((1, 0), "keep-alive", True),
        ((1, 0), "Keep-Alive", True),
    ],
)
def test_keep_alive(version: tuple[int, int], connection: str | None, keep: bool) -> None:
    headers = {} if connection is None else {"connection": connection}
    assert keep_alive(Request("GET", "/", version, headers)) is keep
