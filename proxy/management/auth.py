"""Client keys of the gateway and their scopes.

Clients present ``Authorization: Bearer <key>``. Routes that write profiles, reach the admin or
activation APIs, or operate the gateway need a key with the matching scope: 401 without a known key
(also when no keys are configured at all), 403 with a key that lacks the scope, 429 with Retry-After
past the key's rate (a moving window, from ``limits``).
"""

from __future__ import annotations

import hashlib
import math
import time

import limits
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter
from starlette.requests import Request

from proxy.http.errors import ApiError

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="target-proxy"'}


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class ClientKeys:
    def __init__(self, keys: dict[str, list[str]], rate: str = "600/minute") -> None:
        # Looked up by digest, so the comparison time says nothing about the stored keys.
        self._scopes = {_digest(key): frozenset(scopes) for key, scopes in keys.items()}
        self._rate = limits.parse(rate)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self.limited = 0

    async def admit(self, request: Request, scope: str) -> None:
        """``require``, then the key's rate: past it, 429 with the Retry-After at which a call fits."""
        digest = self.require(request, scope)
        if await self._limiter.hit(self._rate, digest):
            return
        self.limited += 1
        stats = await self._limiter.get_window_stats(self._rate, digest)
        retry = max(1, math.ceil(stats.reset_time - time.time()))
        raise ApiError(
            429,
            f"this client key is over its rate ({self._rate}); try again in {retry} s",
            "Authorization",
            headers={"Retry-After": str(retry)},
        )

    def require(self, request: Request, scope: str) -> str:
        """The key's digest (hex), if it is known and has the scope."""
        header = request.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise ApiError(401, "a client key is required (Authorization: Bearer <key>)", "Authorization", CHALLENGE)
        scopes = self._scopes.get(_digest(key.strip()))
        if scopes is None:
            raise ApiError(401, "unknown client key", "Authorization", CHALLENGE)
        if scope not in scopes:
            raise ApiError(403, f"this client key lacks the '{scope}' scope", "Authorization")
        return _digest(key.strip()).hex()
