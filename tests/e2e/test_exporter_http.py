"""HTTP details of the real exporter process, over raw sockets (issue 13, section 4).

What a client sends that urllib would not: bodies on a GET, pipelined requests, malformed
heads, weighted Accept and Accept-Encoding headers; and the ``--web.*`` flags every
Prometheus user knows.
"""

from __future__ import annotations

import gzip
import urllib.parse
from pathlib import Path

import pytest

from tests.e2e._exporter import ExporterProcess, parse_metrics, run_exporter, running_exporter
from tests.e2e._exporter import write_config as _write_config
from tests.e2e._http import RawConnection, request

pytestmark = pytest.mark.e2e


def port_of(exp: ExporterProcess) -> int:
    port = urllib.parse.urlsplit(exp.url).port
    assert port is not None
    return port


@pytest.fixture(scope="module")
def exporter(tmp_path_factory: pytest.TempPathFactory):
    """One exporter for the tests that do not need flags of their own."""
    tmp_path = tmp_path_factory.mktemp("http")
    config = _write_config(tmp_path)
    (tmp_path / "logs" / "a.jsonl").touch()  # a matching file: /-/ready says no warning
    with running_exporter(config) as exp:
        yield exp


def test_get_with_a_body_is_read_not_answered_as_a_second_request(exporter) -> None:
    # Behind a shared proxy, a body the server took for a request is request smuggling.
    smuggled = request("/-/healthy")
    with RawConnection(port_of(exporter)) as conn:
        conn.send(request("/metrics", {"Content-Length": str(len(smuggled))}, body=smuggled))
        conn.send(request("/-/ready"))
        first, second = conn.response(), conn.response()
        assert first.status == 200 and b"mlops_reference_samples" in first.body
        assert (second.status, second.body) == (200, b"Ready.\n")
        assert conn.quiet_for(0.5), "a third response: the body was answered as a request"


def test_expect_100_continue_body_is_read_then_answered(exporter) -> None:
    with RawConnection(port_of(exporter)) as conn:
        conn.send(request("/-/healthy", {"Content-Length": "5", "Expect": "100-continue"}))
        interim = conn.response(head_only=True)
        assert interim.status == 100
        conn.send(b"hello")
        assert conn.response().body == b"Healthy.\n"


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Transfer-Encoding": "chunked"}, 411),
        ({"Transfer-Encoding": "chunked", "Content-Length": "5"}, 400),
        ({"Content-Length": "5, 6"}, 400),
        ({"Content-Length": "-1"}, 400),
        ({"Content-Length": str(10 << 20)}, 413),
    ],
)  # fmt: skip
def test_bodies_that_could_be_framed_two_ways_are_refused_and_the_connection_closed(
    exporter, headers: dict[str, str], status: int
) -> None:
    with RawConnection(port_of(exporter)) as conn:
        conn.send(request("/metrics", headers) + b"0\r\n\r\n" + request("/-/healthy"))
        response = conn.response()
        assert response.status == status
        assert response.headers["connection"] == "close"
        assert conn.closed_by_server(within=5)
        assert b"Healthy" not in conn.buf


@pytest.mark.parametrize(
    "head",
    [
        b"GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n",  # whitespace before the colon
        b"GET /metrics HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",  # obsolete line folding
        b"GET /metrics HTTP/1.1\r\nX: a\rb\r\n\r\n",  # a bare CR
        b"GET /metrics\r\n\r\n",  # HTTP/0.9
        b"GET  /metrics HTTP/1.1\r\n\r\n",  # two spaces
        b"GET /metrics HTTP/2.0\r\n\r\n",
    ],
)
def test_malformed_request_heads_are_refused_and_the_connection_closed(
    exporter, head: bytes
) -> None:
    with RawConnection(port_of(exporter)) as conn:
        conn.send(head)
        response = conn.response()
        assert response.status in (400, 505), response
        assert conn.closed_by_server(within=5)


def test_pipelined_requests_are_answered_in_order(exporter) -> None:
    with RawConnection(port_of(exporter)) as conn:
        conn.send(request("/-/healthy") + request("/-/ready") + request("/nope"))
        bodies = [conn.response().body for _ in range(3)]
        assert bodies == [b"Healthy.\n", b"Ready.\n", b"Not found.\n"]


def test_http_1_0_closes_unless_asked_to_keep_alive(exporter) -> None:
    with RawConnection(port_of(exporter)) as conn:
        conn.send(b"GET /-/healthy HTTP/1.0\r\n\r\n")
        assert conn.response().headers["connection"] == "close"
        assert conn.closed_by_server(within=5)
    with RawConnection(port_of(exporter)) as conn:
        conn.send(b"GET /-/healthy HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        assert conn.response().headers["connection"] == "keep-alive"
        conn.send(b"GET /-/ready HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        assert conn.response().body == b"Ready.\n"


def test_head_gets_the_headers_of_get_without_a_body(exporter) -> None:
    with RawConnection(port_of(exporter)) as conn:
        conn.send(request("/metrics"))
        get = conn.response()
        conn.send(request("/metrics", method="HEAD") + request("/-/healthy"))
        head = conn.response(head_only=True)
        assert head.headers["content-length"] == get.headers["content-length"]
        assert conn.response().body == b"Healthy.\n"  # nothing of a body came in between


def test_other_methods_get_405_with_allow(exporter) -> None:
    with RawConnection(port_of(exporter)) as conn:
        conn.send(request("/metrics", {"Content-Length": "2"}, method="POST", body=b"{}"))
        response = conn.response()
        assert response.status == 405 and response.headers["allow"] == "GET, HEAD"


@pytest.mark.parametrize(
    ("accept_encoding", "gzipped"),
    [
        ("gzip", True),
        ("gzip;q=0.5, identity", True),
        ("gzip;q=0", False),
        ("gzip; q=0.0, *;q=1", False),  # named with weight 0: "*" does not bring it back
        ("*", True),
        ("br", False),
        ("identity", False),
        ("", False),
    ],
)  # fmt: skip
def test_gzip_only_when_the_client_accepts_it_and_vary_always(
    exporter, accept_encoding: str, gzipped: bool
) -> None:
    with RawConnection(port_of(exporter)) as conn:
        conn.send(request("/metrics", {"Accept-Encoding": accept_encoding}))
        response = conn.response()
    assert response.headers["vary"] == "Accept-Encoding"
    assert ("content-encoding" in response.headers) is gzipped
    body = gzip.decompress(response.body) if gzipped else response.body
    assert b"mlops_reference_samples" in body


PROMETHEUS_2 = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
PROMETHEUS_3 = (
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
    "application/openmetrics-text;version=0.0.1;q=0.5,"
    "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)


@pytest.mark.parametrize(
    ("accept", "openmetrics"),
    [
        ("application/openmetrics-text; version=2.0.0", False),
        ("application/openmetrics-text; version=2.0.0, application/openmetrics-text;"
         " version=1.0.0; q=0.5", True),
        ("application/openmetrics-text; version=1.0.0", True),
        ("application/openmetrics-text", True),
        ("application/openmetrics-text;q=0, text/plain", False),
        ("text/plain;q=0.9, application/openmetrics-text;version=1.0.0;q=0.8", False),
        (PROMETHEUS_2, True),
        (PROMETHEUS_3, True),
        ("", False),
    ],
)  # fmt: skip
def test_content_type_names_the_format_the_body_is_in(
    exporter, accept: str, openmetrics: bool
) -> None:
    with RawConnection(port_of(exporter)) as conn:
        conn.send(request("/metrics", {"Accept": accept} if accept else {}))
        response = conn.response()
    content_type = response.headers["content-type"]
    if openmetrics:
        assert content_type == "application/openmetrics-text; version=1.0.0; charset=utf-8"
        assert response.body.endswith(b"# EOF\n")
    else:
        assert content_type == "text/plain; version=0.0.4; charset=utf-8"
        assert b"# EOF" not in response.body
        parse_metrics(response.body.decode())  # and it is the text format indeed


def test_no_response_reveals_the_python_version(exporter) -> None:
    heads = [
        request("/metrics"),
        request("/"),
        request("/nope"),
        request("/metrics", method="DELETE"),
        b"GET /metrics HTTP/1.1\r\nBad Header: x\r\n\r\n",
    ]
    for head in heads:
        with RawConnection(port_of(exporter)) as conn:
            conn.send(head)
            response = conn.response()
        assert "server" not in response.headers, response.headers
        assert not any("python" in v.lower() for v in response.headers.values()), head


def test_telemetry_path_moves_the_metrics_and_the_landing_page_link(tmp_path: Path) -> None:
    config = _write_config(tmp_path)
    with running_exporter(config, args=["--web.telemetry-path=/prom/metrics"]) as exp:
        status, _, body = exp.get("/prom/metrics")
        assert status == 200 and b"mlops_reference_samples" in body
        assert exp.get("/metrics")[0] == 404
        status, _, page = exp.get("/")
        assert status == 200 and b"href='prom/metrics'" in page
        assert exp.get("/-/healthy")[0] == 200


def test_disable_exporter_metrics_drops_the_process_and_python_families(tmp_path: Path) -> None:
    config = _write_config(tmp_path)

    def runtime_names(exp: ExporterProcess) -> set[str]:
        return {n for n in exp.scrape().names() if n.startswith(("process_", "python_"))}

    with running_exporter(config) as exp:
        default = runtime_names(exp)
    assert {"process_open_fds", "process_resident_memory_bytes", "python_info"} <= default
    with running_exporter(config, args=["--web.disable-exporter-metrics"]) as exp:
        assert runtime_names(exp) == set()
        assert exp.scrape().get("mlops_reference_samples", model="e2e") == 2000


@pytest.mark.parametrize(
    ("flag", "needle"),
    [
        ("--web.telemetry-path=metrics", "--web.telemetry-path 'metrics'"),
        ("--web.telemetry-path=/-/healthy", "--web.telemetry-path /-/healthy"),
        ("--web.max-requests=-1", "--web.max-requests -1"),
    ],
)
def test_bad_web_flags_are_one_line_errors_naming_the_flag(
    tmp_path: Path, flag: str, needle: str
) -> None:
    config = _write_config(tmp_path)
    result = run_exporter(f"--config.file={config}", "--web.listen-address=127.0.0.1:0", flag)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.stderr
