"""One ad-hoc activation job per audience across every gateway, on Redis.

On top of the local guard (``proxy.management.activation.ActivationGuard``: audience count, runs this gateway
started, scheduled exports), a job takes a key per audience, ``<prefix>audience-job:<id>``, all or none
(a Lua script; SET NX semantics with a TTL): first while it is being started (a short TTL, in case the
gateway dies meanwhile), then for the run upstream started, with its status link, until the run ends
or ``activation_job_timeout_seconds`` pass. Another gateway wanting the audience meanwhile reads the
run's status link: a run that ended frees the audience, one still going is refused with 409. With
Redis down the local guard alone decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any, NoReturn
from urllib.parse import urlsplit

import orjson

from proxy.http.errors import ApiError
from proxy.management.activation import ActivationGuard, Fetch, Job
from proxy.shared.connection import Background, SharedRedis, Unavailable
from proxy.upstream import UpstreamResponse

STARTING_TTL_MS = 60_000

# All or none: returns 0 when every key was free (all taken now), else the index of a taken one and its value.
TAKE = """
for i = 1, #KEYS do
  local value = redis.call('GET', KEYS[i])
  if value then return {i, value} end
end
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], ARGV[1], 'PX', ARGV[2])
end
return 0
"""
# Deletes the keys that still hold this value.
RELEASE = """
local released = 0
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    redis.call('DEL', KEYS[i])
    released = released + 1
  end
end
return released
"""


class SharedActivationGuard(ActivationGuard):
    def __init__(self, redis: SharedRedis, job_timeout_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(job_timeout_s, clock)
        self.redis = redis
        self._take = redis.client.register_script(TAKE)
        self._release = redis.client.register_script(RELEASE)
        self._holds: dict[int, tuple[list[str], str]] = {}
        self._background = Background()

    def _key(self, audience: str) -> str:
        return self.redis.key("audience-job", audience)

    async def admit(self, body: bytes | None, accept: str, fetch: Fetch) -> Job:
        job = await super().admit(body, accept, fetch)
        if not self.redis.up:
            return job
        audiences = sorted(job.audiences)
        keys = [self._key(a) for a in audiences]
        value = orjson.dumps({"starting": self.redis.instance, "at": time.time(), "nonce": id(job)}).decode()
        try:
            # Each pass frees the key of one run that has ended; all of them ended, one more pass takes them.
            for _ in range(len(keys) + 1):
                taken = await self.redis.run(lambda: self._take(keys=keys, args=[value, STARTING_TTL_MS]))
                if taken == 0:
                    self._holds[id(job)] = (keys, value)
                    return job
                index, holder = int(taken[0]), taken[1]
                if not await self._ended(keys[index - 1], holder, fetch):
                    self._refuse_shared(audiences[index - 1], holder)
            # Another gateway took a freed audience meanwhile: refused, never started without the keys.
            self._refuse_shared(audiences[index - 1], holder)
        except Unavailable:
            return job
        except BaseException:
            super().abandon(job)
            raise

    async def _ended(self, key: str, holder: bytes, fetch: Fetch) -> bool:
        """Whether the run holding ``key`` has ended (then the key is freed)."""
        try:
            run = orjson.loads(holder)
        except orjson.JSONDecodeError:
            return False
        status_path = run.get("status") if isinstance(run, dict) else None
        if not status_path or not await self._finished(status_path, fetch):
            return False
        await self.redis.run(lambda: self._release(keys=[key], args=[holder]))
        return True

    def _refuse_shared(self, audience: str, holder: bytes) -> NoReturn:
        self.refused += 1
        try:
            run = orjson.loads(holder)
        except orjson.JSONDecodeError:
            run = {}
        if run.get("starting"):
            raise ApiError(409, f"an ad-hoc activation job for audience {audience} is being started")
        raise ApiError(
            409,
            f"Run already going on for audience {audience} for order {run.get('order', '')} "
            f"with run id {run.get('run', '')}",
        )

    def abandon(self, job: Job) -> None:
        super().abandon(job)
        hold = self._holds.pop(id(job), None)
        if hold is not None:
            keys, value = hold
            self._spawn(self._free(keys, value))

    def started(self, job: Job, response: UpstreamResponse) -> None:
        super().started(job, response)
        hold = self._holds.pop(id(job), None)
        if hold is None:
            return
        keys, value = hold
        runs: dict[str, str] = {}
        if response.status == 200:
            with contextlib.suppress(orjson.JSONDecodeError, AttributeError):
                for order in orjson.loads(response.body).get("order") or []:
                    if not isinstance(order, dict) or not order.get("segment"):
                        continue
                    parts = urlsplit(str(order.get("statusURL") or ""))
                    run_id = parts.path.rstrip("/").rsplit("/", 1)[-1] if parts.path else ""
                    runs[self._key(str(order["segment"]))] = orjson.dumps(
                        {"order": str(order.get("order", "")), "run": run_id, "status": parts.path}
                    ).decode()
        self._spawn(self._record(keys, value, runs))

    async def _record(self, keys: list[str], value: str, runs: dict[str, str]) -> None:
        """The audiences of runs upstream started keep their key for the run; the others are freed."""

        async def write() -> None:
            pipe = self.redis.client.pipeline(transaction=False)
            ttl_ms = int(self.job_timeout_s * 1000)
            for key, run in runs.items():
                pipe.set(key, run, px=ttl_ms)
            await pipe.execute()
            free = [k for k in keys if k not in runs]
            if free:
                await self._release(keys=free, args=[value])

        with contextlib.suppress(Unavailable):
            await self.redis.run(write)

    async def _free(self, keys: list[str], value: str) -> None:
        with contextlib.suppress(Unavailable):
            await self.redis.run(lambda: self._release(keys=keys, args=[value]))

    def _spawn(self, coroutine: Any) -> None:
        self._background.spawn(coroutine)

    async def close(self, within_s: float = 1.0) -> None:
        """Let the key writes and releases still going finish (a moment at most), then stop them."""
        if len(self._background):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._background.wait(), within_s)
        await self._background.cancel()
