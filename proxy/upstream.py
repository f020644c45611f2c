"""The one long-lived upstream client (aiohttp: it holds its throughput under concurrency, where httpx
falls, see loadtests/bench_miss.py).

Connections go to ``settings.upstream`` when set, carrying the edge host in the Host header (like
curl's ``--connect-to``); otherwise to the edge host itself over HTTPS. Timeouts become 504 and
connection failures 502, as JSON. A call is retried only when that is safe: any request whose
connection could not be opened (nothing was sent), and idempotent ones on any transport failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from multidict import CIMultiDict, CIMultiDictProxy
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter
from yarl import URL

from proxy.errors import ApiError
from proxy.settings import Settings

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


@dataclass(slots=True)
class UpstreamResponse:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


class Upstream:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.base = settings.upstream
        self.timeout_ms = settings.upstream_timeout_ms
        self.retries = settings.upstream_retries
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=self.settings.upstream_pool_size,
            ttl_dns_cache=300,
            keepalive_timeout=15,
        )
        timeout = aiohttp.ClientTimeout(
            total=self.timeout_ms / 1000, sock_connect=self.settings.upstream_connect_timeout_ms / 1000
        )
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=timeout, auto_decompress=True, skip_auto_headers=("User-Agent",)
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def url(self, host: str, path_and_query: str) -> tuple[URL, dict[str, str]]:
        """Where to connect, and the Host header that names the edge when connecting elsewhere."""
        if self.base:
            return URL(self.base + path_and_query, encoded=True), {"Host": host}
        return URL(f"https://{host}{path_and_query}", encoded=True), {}

    async def request(
        self,
        method: str,
        host: str,
        path_and_query: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_ms: int | None = None,
    ) -> UpstreamResponse:
        try:
            return await self._send(method, host, path_and_query, body, headers, timeout_ms)
        except (TimeoutError, aiohttp.ClientError) as first:
            if not self.retries or not self._retryable(method, first):
                raise self._as_api_error(first, timeout_ms) from None
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(lambda exc: self._retryable(method, exc)),
                stop=stop_after_attempt(self.retries),
                wait=wait_exponential_jitter(multiplier=0.05, max=0.5, jitter=0.05),
                reraise=True,
            ):
                with attempt:
                    return await self._send(method, host, path_and_query, body, headers, timeout_ms)
        except (TimeoutError, aiohttp.ClientError) as last:
            raise self._as_api_error(last, timeout_ms) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(
        self,
        method: str,
        host: str,
        path_and_query: str,
        body: bytes | None,
        headers: Mapping[str, str] | None,
        timeout_ms: int | None,
    ) -> UpstreamResponse:
        assert self._session is not None, "upstream client not started"
        url, routing = self.url(host, path_and_query)
        all_headers = CIMultiDict(headers or {})
        all_headers.update(routing)
        extra: dict[str, Any] = (
            {"timeout": aiohttp.ClientTimeout(total=timeout_ms / 1000)} if timeout_ms else {}
        )
        async with self._session.request(
            method, url, data=body, headers=all_headers, allow_redirects=False, **extra
        ) as response:
            payload = await response.read()
            return UpstreamResponse(response.status, response.headers, payload)

    @staticmethod
    def _retryable(method: str, exc: BaseException) -> bool:
        if isinstance(exc, aiohttp.ClientConnectorError):
            return True  # the connection never opened: nothing reached upstream
        return method in IDEMPOTENT and isinstance(exc, aiohttp.ClientError | asyncio.TimeoutError)

    def _as_api_error(self, exc: BaseException, timeout_ms: int | None) -> ApiError:
        if isinstance(exc, asyncio.TimeoutError):
            return ApiError(504, f"upstream did not answer within {timeout_ms or self.timeout_ms} ms")
        if isinstance(exc, aiohttp.ClientConnectorError):
            return ApiError(502, "cannot connect to upstream")
        return ApiError(502, f"upstream connection failed ({type(exc).__name__})")
