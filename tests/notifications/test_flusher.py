"""The flusher: gateways built in the test process send their visitors' notifications to the real
emulator over loopback; a scripted loopback edge (aiohttp) plays what the emulator never does."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web

from proxy.notifications import flusher as flusher_module
from proxy.notifications.flusher import Flusher
from proxy.notifications.model import Group
from proxy.notifications.policy import Backoff
from proxy.notifications.queue import NotificationQueue
from proxy.notifications.refusals import RefusalPolicy
from proxy.notifications.store import NotificationStore
from proxy.settings import Settings
from proxy.upstream import Upstream
from tests.conftest import InProcessGateway
from tests.inprocess import FakeClock
from tests.notifications.helpers import (
    DEMO_MBOXES,
    Note,
    dead_letters,
    deliveries,
    display_note,
    faults,
    log_directories,
    new_visitor,
    notifications_only,
    put,
    queue_status,
    stats,
    stored_ids,
    view,
    view_call,
)
from tests.support import Call, post_concurrently, wait_for

BAD_TOKEN = "bm90IGEgdG9rZW4gYXQgYWxsLCBqdXN0IGJ5dGVz"  # base64, but no signature the edge knows


def store_root(tmp_path: Path) -> Path:
    """Where the gateways of ``make_gateway`` keep their notifications (``gateway_settings``)."""
    return tmp_path / "notifications"


def views(visitor: str, count: int, mbox: str = "home-hero") -> list[Call]:
    return [view_call(visitor, mbox)] * count


def all_answered(gateway: InProcessGateway, calls: list[Call], concurrency: int = 10) -> None:
    answers = post_concurrently(gateway.url, calls, concurrency)
    assert [a.status for a in answers] == [200] * len(calls)


def settled(gateway: InProcessGateway, emulator: httpx.Client, displays: int) -> dict[str, Any]:
    """Wait until the emulator counted ``displays`` display notifications and the queue is empty."""
    wait_for(lambda: stats(emulator)["notifications"]["display"] >= displays, timeout=10)
    wait_for(lambda: queue_status(gateway.client)["depth"] == 0, timeout=10)
    return stats(emulator)


def test_a_visitors_displays_go_upstream_fifty_to_a_call(make_gateway: Any, emulator: httpx.Client) -> None:
    gateway = make_gateway(notification_max_delay_ms=1500)
    visitor = new_visitor()
    assert view(gateway.client, visitor).status_code == 200  # the miss: one call, which prefetches
    all_answered(gateway, views(visitor, 120))
    counted = settled(gateway, emulator, 120)
    assert counted["notifications"] == {"display": 120, "click": 0, "duplicates": 0}
    assert counted["impressions"] == 1 + 120
    assert counted["requests"] == {"delivery": 1 + 3}, "120 displays in 3 notification calls"
    assert queue_status(gateway.client)["flushed"] == 120


def test_a_few_displays_go_once_the_oldest_has_waited_the_delay(make_gateway: Any, emulator: httpx.Client) -> None:
    gateway = make_gateway(notification_max_delay_ms=400)
    visitor = new_visitor()
    assert view(gateway.client, visitor).status_code == 200
    started = time.monotonic()
    for mbox in DEMO_MBOXES[:3]:
        assert view(gateway.client, visitor, mbox).status_code == 200
    settled(gateway, emulator, 3)
    assert time.monotonic() - started >= 0.4, "sent before the oldest had waited"
    assert deliveries(emulator) == 1 + 1


def test_every_waiting_visitor_is_flushed_on_the_interval(make_gateway: Any, emulator: httpx.Client) -> None:
    """Many visitors with a display each: all of them go within about one delay and tick, not a
    handful of visitors per tick."""
    gateway = make_gateway(notification_max_delay_ms=200)
    visitors = [new_visitor() for _ in range(160)]
    all_answered(gateway, [call for v in visitors for call in views(v, 1)], concurrency=20)  # the misses
    all_answered(gateway, [call for v in visitors for call in views(v, 1)], concurrency=20)
    viewed = time.monotonic()
    wait_for(lambda: stats(emulator)["notifications"]["display"] == 160, timeout=10)
    assert time.monotonic() - viewed < 2.5
    assert deliveries(emulator) == 160 + 160, "one notification call per visitor"


def test_a_5xx_burst_is_retried_and_every_display_counted_once(make_gateway: Any, emulator: httpx.Client) -> None:
    gateway = make_gateway(notification_retry_base_ms=50, notification_retry_cap_ms=400)
    visitor = new_visitor()
    assert view(gateway.client, visitor).status_code == 200
    faults(emulator, status=503)
    for mbox in DEMO_MBOXES[:5]:
        assert view(gateway.client, visitor, mbox).status_code == 200, "a cache hit needs no upstream"
    wait_for(lambda: queue_status(gateway.client)["failed"] >= 10, timeout=10)  # two failed attempts at least
    assert queue_status(gateway.client)["depth"] == 5
    faults(emulator)
    counted = settled(gateway, emulator, 5)
    assert counted["notifications"] == {"display": 5, "click": 0, "duplicates": 0}
    assert counted["impressions"] == 1 + 5
    status = queue_status(gateway.client)
    assert status["flushed"] == 5 and status["deadLettered"] == 0
    assert status["retried"] == status["failed"] >= 10


def test_429_waits_at_least_its_retry_after(make_gateway: Any, emulator: httpx.Client, tmp_path: Path) -> None:
    gateway = make_gateway(notification_retry_base_ms=50)
    visitor = new_visitor()
    assert view(gateway.client, visitor).status_code == 200
    faults(emulator, status=429, retry_after=1)
    refused_from = time.time()
    for mbox in DEMO_MBOXES[:3]:
        assert view(gateway.client, visitor, mbox).status_code == 200
    wait_for(lambda: queue_status(gateway.client)["failed"] >= 3)
    # Retry times live in the store's memory only (they start again after a restart).
    retry_at = [entry.next_attempt for entry in list(gateway.parts.store._entries.values())]
    assert len(retry_at) == 3
    assert min(retry_at) >= refused_from + 1.0, "a 50 ms backoff must not beat the edge's Retry-After"
    faults(emulator)
    counted = settled(gateway, emulator, 3)
    assert time.time() >= min(retry_at)
    assert counted["notifications"]["display"] == 3
    assert counted["requests"]["delivery"] == 1 + 2, "the refused call and one more, after the wait"


def test_a_timed_out_call_is_sent_again_and_the_edge_counts_it_once(make_gateway: Any, emulator: httpx.Client) -> None:
    gateway = make_gateway(upstream_timeout_ms=300, notification_retry_base_ms=50, notification_retry_cap_ms=400)
    visitor = new_visitor()
    assert view(gateway.client, visitor).status_code == 200
    faults(emulator, slow_body_ms=300)  # the edge counts, then answers too slowly
    for mbox in DEMO_MBOXES[:3]:
        assert view(gateway.client, visitor, mbox).status_code == 200
    wait_for(lambda: queue_status(gateway.client)["failed"] >= 3)
    faults(emulator)
    counted = settled(gateway, emulator, 3)
    assert counted["notifications"]["display"] == 3
    # The call that timed out had been counted: what the gateway sent again was a repeat of known ids.
    assert counted["notifications"]["duplicates"] >= 3
    assert counted["notifications"]["duplicates"] % 3 == 0
    assert counted["impressions"] == 1 + 3


def test_a_bad_event_token_is_dead_lettered_alone(make_gateway: Any, emulator: httpx.Client, tmp_path: Path) -> None:
    gateway = make_gateway()
    visitor = new_visitor()
    prefetch = {"mboxes": [{"index": i, "name": name} for i, name in enumerate(DEMO_MBOXES)]}
    fetched = gateway.client.post(
        "/rest/v1/delivery?client=demo",
        json={"id": {"thirdPartyId": visitor}, "context": {"channel": "web"}, "prefetch": prefetch},
    )
    assert fetched.status_code == 200, fetched.text
    good = [display_note(m["options"][0]["eventToken"], m["name"]) for m in fetched.json()["prefetch"]["mboxes"]]
    bad = display_note(BAD_TOKEN)
    notes = [*good[:3], bad, *good[3:]]
    accepted = gateway.client.post("/rest/v1/delivery?client=demo", json=notifications_only(visitor, notes))
    assert accepted.status_code == 200
    assert [n["id"] for n in accepted.json()["notifications"]] == [n["id"] for n in notes]
    counted = settled(gateway, emulator, len(good))
    assert counted["notifications"] == {"display": len(good), "click": 0, "duplicates": 0}
    assert counted["impressions"] == len(good)
    (letter,) = dead_letters(store_root(tmp_path) / "dead-letters.jsonl")
    assert letter["notification"]["id"] == bad["id"]
    assert letter["status"] == 400
    assert "invalid event token" in letter["reason"]
    assert letter["ids"]["thirdPartyId"] == visitor
    assert queue_status(gateway.client)["deadLettered"] == 1


def test_another_4xx_dead_letters_the_batch(make_gateway: Any, emulator: httpx.Client, tmp_path: Path) -> None:
    gateway = make_gateway()
    visitor = new_visitor()
    assert view(gateway.client, visitor).status_code == 200
    faults(emulator, status=403)
    for mbox in DEMO_MBOXES[:2]:
        assert view(gateway.client, visitor, mbox).status_code == 200
    wait_for(lambda: queue_status(gateway.client)["deadLettered"] == 2)
    letters = dead_letters(store_root(tmp_path) / "dead-letters.jsonl")
    assert [(line["status"], line["reason"]) for line in letters] == [(403, "injected fault")] * 2
    assert [line["notification"]["mbox"]["name"] for line in letters] == DEMO_MBOXES[:2]
    assert queue_status(gateway.client)["depth"] == 0
    assert stats(emulator)["requests"]["delivery"] == 2, "refused for good: never sent again"


def test_a_repeated_notification_id_is_sent_once_and_settles_both_rows(
    make_gateway: Any, emulator: httpx.Client, tmp_path: Path
) -> None:
    """The store keeps no index of ids: a notification a client sends twice is stored twice; held in one
    batch, it goes upstream once and the edge's answer settles both rows."""
    gateway = make_gateway()
    visitor = new_visitor()
    prefetch = {"mboxes": [{"index": 0, "name": "home-hero"}]}
    fetched = gateway.client.post(
        "/rest/v1/delivery?client=demo",
        json={"id": {"thirdPartyId": visitor}, "context": {"channel": "web"}, "prefetch": prefetch},
    )
    assert fetched.status_code == 200, fetched.text
    (mbox,) = fetched.json()["prefetch"]["mboxes"]
    repeated = display_note(mbox["options"][0]["eventToken"], mbox["name"])
    for _ in range(2):
        answer = gateway.client.post("/rest/v1/delivery?client=demo", json=notifications_only(visitor, [repeated]))
        assert answer.status_code == 200
    assert stored_ids(store_root(tmp_path)) == [repeated["id"]] * 2
    counted = settled(gateway, emulator, 1)
    assert counted["notifications"] == {"display": 1, "click": 0, "duplicates": 0}
    assert counted["impressions"] == 1
    status = queue_status(gateway.client)
    assert (status["accepted"], status["flushed"], status["deadLettered"]) == (2, 2, 0)


def test_waiting_notifications_ride_on_the_visitors_next_miss(make_gateway: Any, emulator: httpx.Client) -> None:
    gateway = make_gateway(notification_max_delay_ms=600_000)
    visitor = new_visitor()
    assert view(gateway.client, visitor).status_code == 200
    for mbox in DEMO_MBOXES[:3]:
        assert view(gateway.client, visitor, mbox).status_code == 200
    assert deliveries(emulator) == 1
    other_context = view(gateway.client, visitor, mboxParameters={"page": "2"})  # a miss
    assert other_context.status_code == 200
    counted = stats(emulator)
    assert counted["requests"] == {"delivery": 2}, "no notification call of their own"
    assert counted["notifications"]["display"] == 3
    assert counted["impressions"] == 1 + 3 + 1
    status = queue_status(gateway.client)
    assert status["ridden"] == 3 and status["depth"] == 0 and status["flushed"] == 0


def test_a_miss_that_fails_gives_its_riders_back(make_gateway: Any, emulator: httpx.Client, tmp_path: Path) -> None:
    gateway = make_gateway(notification_max_delay_ms=600_000)
    visitor = new_visitor()
    assert view(gateway.client, visitor).status_code == 200
    for mbox in DEMO_MBOXES[:2]:
        assert view(gateway.client, visitor, mbox).status_code == 200
    faults(emulator, status=503)
    stale = view(gateway.client, visitor, mboxParameters={"page": "2"})
    assert stale.status_code == 200, "stale-if-error"
    faults(emulator)
    status = queue_status(gateway.client)
    assert status["depth"] == 3, "two riders given back, and the stale view's own display"
    assert (status["failed"], status["retried"], status["ridden"]) == (0, 0, 0), "no attempt counted"
    assert len(stored_ids(store_root(tmp_path))) == 3
    # Not held by a lease either: the next miss (within the 30 s a ride holds them) takes all three.
    assert view(gateway.client, visitor, mboxParameters={"page": "3"}).status_code == 200
    assert stats(emulator)["notifications"]["display"] == 3
    status = queue_status(gateway.client)
    assert status["depth"] == 0 and status["ridden"] == 3
    assert stored_ids(store_root(tmp_path)) == []


def test_a_bad_rider_does_not_spoil_the_visitors_miss(
    make_gateway: Any, emulator: httpx.Client, tmp_path: Path
) -> None:
    gateway = make_gateway(notification_max_delay_ms=600_000)
    visitor = new_visitor()
    assert view(gateway.client, visitor).status_code == 200
    only = notifications_only(visitor, [display_note(BAD_TOKEN)])
    bad = gateway.client.post("/rest/v1/delivery?client=demo", json=only)
    assert bad.status_code == 200, "taken over by the gateway"
    miss = view(gateway.client, visitor, mboxParameters={"page": "2"})
    assert miss.status_code == 200
    assert "hero" in miss.json()["content"]
    assert deliveries(emulator) == 1 + 2, "refused with its rider, answered without it"
    status = queue_status(gateway.client)
    assert (status["depth"], status["failed"], status["deadLettered"]) == (1, 0, 0)
    assert len(stored_ids(store_root(tmp_path))) == 1, "left to the flusher, which finds the bad one"
    # Given back, not held: the next miss takes it along again.
    assert view(gateway.client, visitor, mboxParameters={"page": "3"}).status_code == 200
    assert deliveries(emulator) == 1 + 2 + 2


# --- against a scripted edge -------------------------------------------------------------------------

Answer = Callable[[list[dict[str, Any]]], Awaitable[tuple[int, Any]]]


class ScriptedEdge:
    """A loopback Delivery API whose answers the test writes; it records each call's notification ids."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.calls: list[list[str]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        notes = (await request.json())["notifications"]
        self.calls.append([n["id"] for n in notes])
        status, document = await self.answer(notes)
        body = document if isinstance(document, bytes) else orjson.dumps(document)
        return web.Response(status=status, body=body, content_type="application/json")

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[ScriptedEdge]:
        app = web.Application()
        app.router.add_post("/rest/v1/delivery", self.handle)
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        try:
            yield self
        finally:
            await runner.cleanup()


def acknowledge_all(notes: list[dict[str, Any]]) -> dict[str, Any]:
    return {"status": 200, "notifications": [{"id": n["id"]} for n in notes]}


def new_notes(count: int, tokens: dict[int, str] | None = None) -> list[Note]:
    return [
        Note(
            "demo", "v", "s", None, {"thirdPartyId": "v"}, display_note((tokens or {}).get(i, "good"), note_id=f"n{i}")
        )
        for i in range(count)
    ]


@contextlib.asynccontextmanager
async def flushing(
    edge: ScriptedEdge, tmp_path: Path, clock: Callable[[], float] = time.time, **options: Any
) -> AsyncIterator[Flusher]:
    """A store, queue, upstream client and flusher aimed at the scripted edge."""
    store = NotificationStore(store_root(tmp_path), max_backlog=1000, clock=clock)
    store.open()
    upstream = Upstream(Settings(upstream=edge.url).upstream_client)
    await upstream.start()
    try:
        refusals = RefusalPolicy(options.pop("per_visitor", 12), options.pop("per_minute", 120))
        backoff = Backoff(base_s=options.pop("retry_base_s", 0.5))
        yield Flusher(NotificationQueue(store, 50), upstream, refusals, backoff, **{"max_delay_s": 0.0, **options})
    finally:
        await upstream.close()
        store.close()


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """``tests.support.wait_for`` for code running on the event loop."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"condition not met within {timeout} s"
        await asyncio.sleep(0.01)


def test_an_id_missing_from_the_answer_is_sent_again(tmp_path: Path) -> None:
    clock = FakeClock(time.time())

    async def answer(notes: list[dict[str, Any]]) -> tuple[int, Any]:
        if len(edge.calls) == 1:
            return 200, acknowledge_all([n for n in notes if n["id"] != "n1"])
        return 200, acknowledge_all(notes)

    edge = ScriptedEdge(answer)

    async def scenario() -> None:
        async with edge.serving(), flushing(edge, tmp_path, clock, retry_base_s=1.0) as flusher:
            await put(flusher.store, new_notes(3))
            assert await flusher.flush(max_delay_s=0) == 1
            assert flusher.store.depth() == 1
            assert await flusher.flush(max_delay_s=0) == 0, "not before its retry time"
            clock.advance(1.0)
            (pending,) = flusher.store.claim(Group("demo", "v", "s"), 50, lease_s=60)
            assert (pending.id, pending.attempts) == ("n1", 1)
            flusher.store.release([pending])
            assert await flusher.flush(max_delay_s=0) == 1
            assert flusher.store.depth() == 0
            counters = flusher.counters
            assert (counters.flushed, counters.failed, counters.retried) == (3, 1, 1)

    asyncio.run(scenario())
    assert edge.calls == [["n0", "n1", "n2"], ["n1"]]


def test_a_2xx_without_an_answer_acknowledges_nothing(tmp_path: Path) -> None:
    async def answer(notes: list[dict[str, Any]]) -> tuple[int, Any]:
        return 200, b"<html>maintenance</html>"

    edge = ScriptedEdge(answer)

    async def scenario() -> None:
        async with edge.serving(), flushing(edge, tmp_path) as flusher:
            await put(flusher.store, new_notes(2))
            await flusher.flush(max_delay_s=0)
            assert flusher.store.depth() == 2
            assert flusher.counters.retried == 2 and flusher.counters.flushed == 0

    asyncio.run(scenario())


def refusing(bad: str, named: bool) -> Answer:
    """An edge that refuses a call carrying a ``bad`` token with 400, naming it (as the emulator does) or not."""

    async def answer(notes: list[dict[str, Any]]) -> tuple[int, Any]:
        for i, note in enumerate(notes):
            if note["tokens"] == [bad]:
                message = f"notifications[{i}].tokens[0]: invalid event token" if named else "invalid request"
                return 400, {"status": 400, "message": message}
        return 200, acknowledge_all(notes)

    return answer


EIGHT = [f"n{i}" for i in range(8)]


@pytest.mark.parametrize(
    ("named", "calls", "reason"),
    [
        # Named (as the emulator does): one more call, without it.
        (True, [EIGHT, EIGHT[:5] + EIGHT[6:]], "notifications[5].tokens[0]: invalid event token"),
        # Not named: halved until it stands alone.
        (False, [EIGHT, EIGHT[:4], EIGHT[4:], EIGHT[4:6], ["n4"], ["n5"], EIGHT[6:]], "invalid request"),
    ],
    ids=["named", "unnamed"],
)
def test_a_400_finds_the_bad_notification_and_delivers_the_rest(
    tmp_path: Path, named: bool, calls: list[list[str]], reason: str
) -> None:
    edge = ScriptedEdge(refusing("bad", named=named))

    async def scenario() -> None:
        async with edge.serving(), flushing(edge, tmp_path) as flusher:
            await put(flusher.store, new_notes(8, tokens={5: "bad"}))
            await flusher.flush(max_delay_s=0)
            assert flusher.store.depth() == 0
            assert (flusher.counters.flushed, flusher.counters.dead_lettered) == (7, 1)

    asyncio.run(scenario())
    assert edge.calls == calls
    (letter,) = dead_letters(store_root(tmp_path) / "dead-letters.jsonl")
    assert letter["notification"]["id"] == "n5"
    assert (letter["status"], letter["reason"]) == (400, reason)


def test_the_backlog_of_an_earlier_run_goes_first_and_new_ones_wait_their_delay(tmp_path: Path) -> None:
    clock = FakeClock(time.time())

    async def answer(notes: list[dict[str, Any]]) -> tuple[int, Any]:
        return 200, acknowledge_all(notes)

    edge = ScriptedEdge(answer)

    async def scenario() -> None:
        async with edge.serving(), flushing(edge, tmp_path, clock, max_delay_s=30.0, tick_s=0.02) as flusher:
            await put(flusher.store, new_notes(120))  # left by an earlier run, a moment ago
            clock.advance(1)
            passes: list[float] = []
            flush = flusher.flush

            async def counted(max_delay_s: float) -> int:
                passes.append(max_delay_s)
                return await flush(max_delay_s)

            flusher.flush = counted  # type: ignore[method-assign]
            flusher.start()
            clock.advance(1)
            fresh = [
                Note("demo", "w", "s", None, {"thirdPartyId": "w"}, display_note("t", note_id=f"w{i}"))
                for i in range(3)
            ]
            await put(flusher.store, fresh)
            await until(lambda: flusher.store.depth() <= 3)
            seen = len(passes)
            await until(lambda: len(passes) >= seen + 3)  # a few more passes: the fresh ones are not due yet
            assert flusher.store.depth() == 3
            clock.advance(30)
            await until(lambda: flusher.store.depth() == 0)
            await flusher.stop(grace_s=1)

    asyncio.run(scenario())
    assert [len(call) for call in edge.calls] == [50, 50, 20, 3]
    assert edge.calls[-1] == ["w0", "w1", "w2"]


def test_stop_lets_the_call_in_flight_finish_then_drains(tmp_path: Path) -> None:
    arrived = asyncio.Event()
    release = asyncio.Event()

    async def answer(notes: list[dict[str, Any]]) -> tuple[int, Any]:
        if len(edge.calls) == 1:
            arrived.set()
            await release.wait()
        return 200, acknowledge_all(notes)

    edge = ScriptedEdge(answer)

    async def scenario() -> None:
        async with edge.serving(), flushing(edge, tmp_path, tick_s=0.05) as flusher:
            await put(flusher.store, new_notes(3))
            flusher.start()
            await asyncio.wait_for(arrived.wait(), 5)
            await put(flusher.store, new_notes(5)[3:])  # n3, n4 arrive while the first call is out
            stopping = asyncio.create_task(flusher.stop(grace_s=5))
            for _ in range(5):  # let stop begin before the edge answers
                await asyncio.sleep(0)
            release.set()
            assert await stopping == 0
            assert flusher.store.depth() == 0

    asyncio.run(scenario())
    assert edge.calls == [["n0", "n1", "n2"], ["n3", "n4"]], "each sent once"


def test_stop_keeps_within_its_grace_and_gives_back_what_it_could_not_send(tmp_path: Path) -> None:
    async def answer(notes: list[dict[str, Any]]) -> tuple[int, Any]:
        await asyncio.Event().wait()  # an edge that never answers
        raise AssertionError("unreachable")

    edge = ScriptedEdge(answer)

    async def scenario() -> None:
        async with edge.serving(), flushing(edge, tmp_path, tick_s=0.05) as flusher:
            await put(flusher.store, new_notes(3))
            flusher.start()
            await until(lambda: bool(edge.calls))
            started = time.monotonic()
            assert await flusher.stop(grace_s=0.5) == 3
            assert time.monotonic() - started < 1.5, "the upstream timeout is not the shutdown's"
            pending = flusher.store.claim(Group("demo", "v", "s"), 50, lease_s=60)
            assert [p.id for p in pending] == ["n0", "n1", "n2"], "free for the next start, not leased"

    asyncio.run(scenario())


def test_the_flusher_adopts_what_a_process_that_is_gone_left(tmp_path: Path, monkeypatch: Any) -> None:
    """Worker processes under one root: what one stops with (or crashes with) is taken over by a live
    one as it looks again, and sent."""
    monkeypatch.setattr(flusher_module, "RESCAN_S", 0.0)  # look on every pass, not once a minute

    async def answer(notes: list[dict[str, Any]]) -> tuple[int, Any]:
        return 200, acknowledge_all(notes)

    edge = ScriptedEdge(answer)

    async def scenario() -> None:
        async with edge.serving(), flushing(edge, tmp_path, tick_s=0.02) as flusher:
            flusher.start()
            gone = NotificationStore(store_root(tmp_path), max_backlog=1000)
            gone.open()
            await put(gone, new_notes(3))
            assert flusher.store.depth() == 0, "not while the other holds its directory"
            gone.close()  # its worker stops with notifications left
            await until(lambda: len(edge.calls) == 1 and flusher.store.depth() == 0)
            assert flusher.store.adopted == 3
            assert log_directories(store_root(tmp_path)) == [flusher.store.directory]
            await flusher.stop(grace_s=1)

    asyncio.run(scenario())
    assert edge.calls == [["n0", "n1", "n2"]]
