"""The shared parts (``proxy.redis_parts``) in this process, on a real redis-server, for what the gateways'
tests cannot aim at: when the stream flusher acknowledges (only after the edge did; refused ones once
dead-lettered), entries deleted or doubled in the stream, a purge after Redis lost its data, an activation
guard freeing ended runs, and Redis's refusals and absence never reaching a request."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.requests import Request

from proxy.content.cache import CachedMbox, CacheLimits
from proxy.content.redis_cache import SharedContentCache
from proxy.http.errors import ApiError
from proxy.management.redis_activation import SharedActivationGuard
from proxy.management.redis_ratelimit import SharedClientKeys
from proxy.notifications.model import Group
from proxy.notifications.policy import Backoff
from proxy.notifications.refusals import RefusalPolicy
from proxy.notifications.store import NotificationStore
from proxy.notifications.stream import GROUP_NAME, SharedNotificationQueue
from proxy.notifications.stream_flusher import StreamFlusher
from proxy.settings import Settings
from proxy.shared.connection import SharedRedis, Unavailable
from proxy.upstream import UpstreamResponse
from tests.scaleout.conftest import RedisServer

STREAM = "target-proxy:notifications"


def connect(server: RedisServer) -> SharedRedis:
    # A generous command timeout: the machine running the tests may be busy.
    return SharedRedis(Settings(redis_url=server.url, redis_timeout_ms=2000, redis_retry_ms=50).redis)


async def until(condition: Callable[[], bool | Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        met = condition()
        if not isinstance(met, bool):
            met = await met
        if met:
            return
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


class Edge:
    """The edge's notification endpoint: answers each call with ``statuses`` in turn (the last one for every
    call after), acknowledging every id of a 2xx; with ``held``, each call waits for a ``release()``."""

    def __init__(self, *statuses: int, held: bool = False) -> None:
        self.statuses = list(statuses) or [200]
        self.calls: list[list[str]] = []
        self.held = held
        self._released = asyncio.Semaphore(0)

    def release(self) -> None:
        self._released.release()

    async def request(self, method: str, host: str, path: str, **kwargs: Any) -> UpstreamResponse:
        ids = [n["id"] for n in orjson.loads(kwargs["body"])["notifications"]]
        self.calls.append(ids)
        if self.held:
            await self._released.acquire()
        status = self.statuses[min(len(self.calls), len(self.statuses)) - 1]
        acknowledged = [{"id": i} for i in ids] if status < 300 else []
        return UpstreamResponse(status, {}, orjson.dumps({"notifications": acknowledged, "message": "refused"}))


class Flushing:
    """A stream flusher of this process on the test's Redis."""

    def __init__(self, server: RedisServer, directory: Path, edge: Edge, claim_idle_s: float = 60.0) -> None:
        self.redis = connect(server)
        self.store = NotificationStore(directory / "store", 10_000, dead_letter_path=directory / "dead.jsonl")
        self.queue = SharedNotificationQueue(self.store, 50, self.redis)
        self.flusher = StreamFlusher(
            self.queue,
            edge,  # type: ignore[arg-type]
            RefusalPolicy(per_visitor=12, per_minute=120),
            Backoff(base_s=0.01, cap_s=0.02, max_attempts=5),
            max_delay_s=0.0,
            claim_idle_s=claim_idle_s,  # nothing is claimed by its idle time unless a test wants it
            max_held=1000,
            tick_s=0.01,
        )

    async def __aenter__(self) -> Flushing:
        await self.redis.start()
        self.flusher.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.flusher.stop(1.0)
        await self.queue.close()
        await self.redis.close()

    async def add(self, notes: Sequence[dict[str, Any]]) -> None:
        await self.queue.add(Group("demo", "visitor-1", "session-1"), None, {"thirdPartyId": "visitor-1"}, notes)

    async def left(self) -> tuple[int, int]:
        """Entries in the stream, and those delivered and not acknowledged."""
        client = self.redis.client
        return int(await client.xlen(STREAM)), int((await client.xpending(STREAM, GROUP_NAME))["pending"])


def notes(*ids: str) -> list[dict[str, Any]]:
    return [{"id": i, "type": "display", "timestamp": 1, "tokens": ["t"], "mbox": {"name": "home-hero"}} for i in ids]


def test_the_stream_is_acknowledged_only_once_the_edge_acknowledged(redis_server: RedisServer, tmp_path: Path) -> None:
    async def scenario() -> None:
        edge = Edge(503, 200, held=True)
        async with Flushing(redis_server, tmp_path, edge) as part:
            await part.add(notes("a", "b", "c"))
            await until(lambda: len(edge.calls) == 1)
            assert await part.left() == (3, 3), "sent, not answered yet: still pending"
            edge.release()  # a 503
            await until(lambda: len(edge.calls) == 2)
            assert await part.left() == (3, 3), "a 503 settles nothing"
            edge.release()  # a 200
            await until(lambda: _settled(part))
            assert edge.calls == [["a", "b", "c"], ["a", "b", "c"]]
            assert part.queue.counters.flushed == 3 and part.queue.counters.retried == 3

    asyncio.run(scenario())


async def _settled(part: Flushing) -> bool:
    return await part.left() == (0, 0)


def test_a_refused_notification_is_dead_lettered_then_acknowledged(redis_server: RedisServer, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Flushing(redis_server, tmp_path, Edge(403)) as part:
            await part.add(notes("refused-1", "refused-2"))
            await until(lambda: _settled(part))
        dead = [orjson.loads(line) for line in (tmp_path / "dead.jsonl").read_bytes().splitlines()]
        assert [(d["status"], d["notification"]["id"]) for d in dead] == [(403, "refused-1"), (403, "refused-2")]

    asyncio.run(scenario())


class RefusingEdge(Edge):
    """Refuses (400) a call carrying a made-up token, naming the first such notification as the emulator does."""

    async def request(self, method: str, host: str, path: str, **kwargs: Any) -> UpstreamResponse:
        sent = orjson.loads(kwargs["body"])["notifications"]
        self.calls.append([n["id"] for n in sent])
        for i, note in enumerate(sent):
            if note["tokens"] == ["made-up"]:
                message = f"notifications[{i}].tokens[0]: invalid event token"
                return UpstreamResponse(400, {}, orjson.dumps({"status": 400, "message": message}))
        return UpstreamResponse(200, {}, orjson.dumps({"notifications": [{"id": n["id"]} for n in sent]}))


def test_refused_notifications_cost_at_most_the_refusal_budget(redis_server: RedisServer, tmp_path: Path) -> None:
    """The stream flusher narrows a refused batch with the local flusher's policy: the named one is
    dead-lettered and the rest sent again, until the visitor's budget (12 calls) is spent; then what is
    still refused is dead-lettered whole, in one write."""

    async def scenario() -> None:
        edge = RefusingEdge()
        async with Flushing(redis_server, tmp_path, edge) as part:
            part.flusher.max_delay_s = 0.5  # all in one batch
            made_up = [{**note, "tokens": ["made-up"]} for note in notes(*(f"bad-{i}" for i in range(30)))]
            await part.add(notes("good-1") + made_up + notes("good-2"))
            await until(lambda: _settled(part))
        assert len(edge.calls) == 1 + 12
        dead = [orjson.loads(line) for line in (tmp_path / "dead.jsonl").read_bytes().splitlines()]
        # Twelve found alone; the thirteenth refusal finds the budget spent: the rest of the batch, good
        # ones too, goes to the dead-letter file together (each notification once).
        assert [d["notification"]["id"] for d in dead[:12]] == [f"bad-{i}" for i in range(12)]
        rest = [f"bad-{i}" for i in range(12, 30)] + ["good-1", "good-2"]
        assert sorted(d["notification"]["id"] for d in dead[12:]) == sorted(rest)
        assert all("budget" in d["reason"] for d in dead[12:])
        assert part.flusher.refusals.counters.calls == 12

    asyncio.run(scenario())


class ScriptedEdge(Edge):
    """Answers each call with the next of ``answers``: (status, headers, ids it acknowledges or None for all)."""

    def __init__(self, *answers: tuple[int, dict[str, str], set[str] | None]) -> None:
        super().__init__()
        self.answers = list(answers)
        self.at: list[float] = []

    async def request(self, method: str, host: str, path: str, **kwargs: Any) -> UpstreamResponse:
        ids = [n["id"] for n in orjson.loads(kwargs["body"])["notifications"]]
        self.calls.append(ids)
        self.at.append(time.monotonic())
        status, headers, acknowledged = self.answers[min(len(self.calls), len(self.answers)) - 1]
        chosen = ids if acknowledged is None else [i for i in ids if i in acknowledged]
        body = {"notifications": [{"id": i} for i in chosen]} if status < 300 else {"message": "busy"}
        return UpstreamResponse(status, headers, orjson.dumps(body))


def test_an_id_missing_from_the_answer_is_sent_again(redis_server: RedisServer, tmp_path: Path) -> None:
    async def scenario() -> None:
        edge = ScriptedEdge((200, {}, {"a", "c"}), (200, {}, None))
        async with Flushing(redis_server, tmp_path, edge) as part:
            part.flusher.max_delay_s = 0.5  # all in one batch
            await part.add(notes("a", "b", "c"))
            await until(lambda: _settled(part))
        assert edge.calls == [["a", "b", "c"], ["b"]]
        assert (part.queue.counters.flushed, part.queue.counters.retried) == (3, 1)

    asyncio.run(scenario())


def test_429_waits_at_least_its_retry_after(redis_server: RedisServer, tmp_path: Path) -> None:
    async def scenario() -> None:
        edge = ScriptedEdge((429, {"retry-after": "1"}, None), (200, {}, None))
        async with Flushing(redis_server, tmp_path, edge) as part:
            await part.add(notes("a"))
            await until(lambda: _settled(part))
        assert edge.calls == [["a"], ["a"]]
        assert edge.at[1] - edge.at[0] >= 1.0, "the backoff (0.01 s here) never goes below Retry-After"

    asyncio.run(scenario())


def test_one_notification_in_two_entries_is_sent_once_and_both_settled(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    async def scenario() -> None:
        edge = Edge(200)
        async with Flushing(redis_server, tmp_path, edge) as part:
            part.flusher.max_delay_s = 0.5  # both entries in one batch
            await part.add(notes("twice"))
            await part.add(notes("twice", "once"))
            await until(lambda: _settled(part))
        assert sorted(id_ for call in edge.calls for id_ in call) == ["once", "twice"]

    asyncio.run(scenario())


def test_an_entry_deleted_while_delivered_to_a_gateway_is_settled_quietly(
    redis_server: RedisServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        part = Flushing(redis_server, tmp_path, Edge(200))
        client = part.redis.client
        await client.xgroup_create(STREAM, GROUP_NAME, id="0", mkstream=True)
        entry = await client.xadd(STREAM, {"g": "x"})
        # Delivered to this gateway's consumer (as a read whose answer was lost), then deleted.
        await client.xreadgroup(GROUP_NAME, part.flusher.consumer, {STREAM: ">"})
        await client.xdel(STREAM, entry)
        async with part:
            await until(lambda: _settled(part))

    asyncio.run(scenario())
    assert not [r for r in caplog.records if "unreadable" in r.getMessage()], "a deleted entry is no broken one"


def test_a_refusing_redis_fails_the_command_and_stays_up(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        redis = connect(redis_server)
        await redis.start()
        try:
            await redis.client.set("target-proxy:not-a-stream", "x")
            with pytest.raises(Unavailable):
                await redis.run(lambda: redis.client.xlen("target-proxy:not-a-stream"))
            assert redis.up, "a WRONGTYPE answer is no outage"
        finally:
            await redis.close()

    asyncio.run(scenario())


def entry(name: str) -> CachedMbox:
    return CachedMbox(name, b'{"content":"x"}', b"[]", ("token",), (), None)


def test_a_purge_counts_on_every_gateway_after_redis_lost_its_generations(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        first, second = connect(redis_server), connect(redis_server)
        caches = [
            SharedContentCache(redis, CacheLimits(ttl_seconds=600, max_entries=100, max_bytes=1 << 20))
            for redis in (first, second)
        ]
        for redis in (first, second):
            await redis.start()
        try:
            a, b = caches
            for _ in range(3):
                b.purge_all()
                await b.published()
            await until(lambda: a._all_generation == 3)
            a.fill("demo", "v", "ctx", [entry("home-hero")])
            assert a.lookup("demo", "v", "ctx", "home-hero") is not None

            await first.client.flushall()  # Redis lost its data: its generations count from 0 again
            b.purge_all()
            await b.published()
            await until(lambda: a.counters.purges_received == 4)
            assert a.lookup("demo", "v", "ctx", "home-hero") is None, "the purge was not ignored"

            # A gateway catching up gives Redis the generations it is ahead by, for the gateways to come.
            await a.load_generations()
            assert int(await first.client.hget("target-proxy:generations", "all")) == a._all_generation
        finally:
            for cache in caches:
                await cache.close()
            for redis in (first, second):
                await redis.close()

    asyncio.run(scenario())


def test_an_activation_job_takes_every_audience_whose_runs_ended(redis_server: RedisServer) -> None:
    async def fetch(path: str) -> Any:
        return {"records": []} if "export/jobs" in path else {"status": "success"}

    async def scenario() -> None:
        redis = connect(redis_server)
        await redis.start()
        guard = SharedActivationGuard(redis, job_timeout_s=3600)
        try:
            for audience in ("a1", "a2"):  # both held by runs (of other gateways) that have ended since
                run = {"order": "o", "run": f"r-{audience}", "status": f"/runs/{audience}"}
                await redis.client.set(f"target-proxy:audience-job:{audience}", orjson.dumps(run))
            body = orjson.dumps({"activationInfo": {"destination": ["a1", "a2"]}})
            job = await guard.admit(body, "application/json", fetch)
            for audience in ("a1", "a2"):
                held = orjson.loads(await redis.client.get(f"target-proxy:audience-job:{audience}"))
                assert held.get("starting") == redis.instance, "the job holds the audience while it starts"
            guard.abandon(job)
            await guard.close()
            assert await redis.client.exists("target-proxy:audience-job:a1", "target-proxy:audience-job:a2") == 0
        finally:
            await redis.close()

    asyncio.run(scenario())


def authorized(key: str) -> Request:
    return Request({"type": "http", "headers": [(b"authorization", f"Bearer {key}".encode())]})


def test_a_client_keys_rate_is_one_for_all_gateways_and_its_own_without_redis(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        first, second = connect(redis_server), connect(redis_server)
        keys = [SharedClientKeys({"the-key": ["operator"]}, "3/minute", redis) for redis in (first, second)]
        for redis in (first, second):
            await redis.start()
        try:
            for n in range(3):
                await keys[n % 2].admit(authorized("the-key"), "operator")
            with pytest.raises(ApiError) as refused:
                await keys[1].admit(authorized("the-key"), "operator")
            assert refused.value.status == 429 and 0 < int(refused.value.headers["Retry-After"]) <= 60

            redis_server.stop()  # each gateway counts in its own memory, and answers
            for _ in range(3):
                await keys[0].admit(authorized("the-key"), "operator")
            assert not first.up
        finally:
            for redis in (first, second):
                await redis.close()

    asyncio.run(scenario())
