"""The work queue behind --web.max-requests: the limit, 503 at once, and who waits."""

from __future__ import annotations

import asyncio

from exporter.httpserver import Deferred, Request, Response
from exporter.server import _WorkQueue


def _request(pause: float) -> Request:
    return Request("GET", "/metrics", (1, 1), {}, pause=pause)


def _ok(name: str, served: list[str]):
    def build() -> Response:
        served.append(name)
        return Response(200, name.encode())

    return build


def run(coro):
    return asyncio.run(coro)


def test_over_the_limit_the_shortest_pause_is_turned_away_at_once() -> None:
    async def scenario() -> None:
        served: list[str] = []
        queue = _WorkQueue(2, lambda r: r)
        a = queue.submit(_request(1.0), _ok("a", served))
        b = queue.submit(_request(0.0), _ok("b", served))  # asks again the moment answered
        c = queue.submit(_request(5.0), _ok("c", served))  # full: takes b's place
        d = queue.submit(_request(0.5), _ok("d", served))  # full, and pauses least: 503 now
        assert isinstance(d, Response) and d.status == 503
        assert b"Limit of concurrent requests reached (2)" in d.body
        assert isinstance(b, Deferred) and b.done and (await b).status == 503
        results = [await a, await c]
        assert served == ["c", "a"]  # the longest pause first
        assert [r.body for r in results] == [b"a", b"c"]
        assert queue.active == 2  # until their responses are delivered
        e = queue.submit(_request(9.0), _ok("e", served))
        assert isinstance(e, Response) and e.status == 503  # both slots still held
        for r in results:
            assert r.on_done is not None
            r.on_done()
        assert queue.active == 0
        f = queue.submit(_request(0.0), _ok("f", served))
        assert (await f).body == b"f"

    run(scenario())


def test_equal_pauses_are_served_in_arrival_order_and_zero_means_no_limit() -> None:
    async def scenario() -> None:
        served: list[str] = []
        queue = _WorkQueue(0, lambda r: r)
        futures = [queue.submit(_request(1.0), _ok(str(i), served)) for i in range(100)]
        await asyncio.gather(*futures)
        assert served == [str(i) for i in range(100)]

    run(scenario())


def test_a_failing_build_answers_500_and_takes_no_slot() -> None:
    async def scenario() -> None:
        queue = _WorkQueue(1, lambda r: r)

        def boom() -> Response:
            raise RuntimeError("boom")

        answer = queue.submit(_request(1.0), boom)
        assert (await answer).status == 500
        assert queue.active == 0

    run(scenario())
