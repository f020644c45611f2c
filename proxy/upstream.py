"""The one long-lived upstream client (pyreqwest, a Rust HTTP client: it forwards two to three times
as many requests per core as aiohttp and holds up under concurrency, where httpx falls; see
loadtests/bench_clients.py).

Connections go to the ``upstream`` setting when set, carrying the edge host in the Host header (like
curl's ``--connect-to``); otherwise to the edge host itself over HTTPS. A call is retried only when that
is safe: any request whose connection could not be opened (nothing was sent), and idempotent ones on any
transport failure.

No answer is ``UpstreamUnavailable`` (a timeout, a connection that failed, an open circuit); an answer is
returned whatever its status. What they mean to a client is decided at the edge (``proxy.http.errors``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState
from pyreqwest.client import Client, ClientBuilder
from pyreqwest.exceptions import ConnectError, RequestError, RequestTimeoutError
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from proxy.settings import UpstreamClientSettings

logger = logging.getLogger("proxy.upstream")
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# What of a client's request travels upstream with the calls made on its behalf.
FORWARDED_HEADERS = (
    "user-agent",
    "accept-language",
    "x-request-id",
    "x-exc-sdk",
    "x-exc-sdk-version",
)


class UpstreamUnavailable(Exception):
    """No answer from upstream."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UpstreamTimeout(UpstreamUnavailable):
    """Upstream did not answer in time (the request may have been carried out)."""


class CircuitOpen(UpstreamUnavailable):
    """Upstream failed too often lately: it is not called until ``retry_after_s`` has passed."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class UpstreamRefused(Exception):
    """An answer of 400 or more that the caller does not pass on as it is (the edge turns it into the
    gateway's JSON error, with upstream's status, message and field)."""

    def __init__(self, response: UpstreamResponse) -> None:
        super().__init__(f"upstream answered {response.status}")
        self.response = response


class UpstreamMalformed(UpstreamUnavailable):
    """An answer that is not the JSON document the call expects."""


class _Failing(Exception):
    """An answer that counts as a failure for the circuit breaker, carried out of it."""

    def __init__(self, response: UpstreamResponse) -> None:
        self.response = response


@dataclass(slots=True)
class Call:
    """One upstream call, as it is sent (again, when it is retried)."""

    method: str
    host: str
    path_and_query: str
    body: bytes | None
    headers: Mapping[str, str] | None
    timeout_ms: int | None
    probe: bool


@dataclass(slots=True)
class UpstreamResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


def forwarded_headers(
    headers: Mapping[str, str], client_host: str | None, content_type: str | None = "application/json"
) -> dict[str, str]:
    """The client's headers that travel upstream, and the client's address in X-Forwarded-For."""
    forwarded = {name: value for name in FORWARDED_HEADERS if (value := headers.get(name)) is not None}
    if content_type:
        forwarded["content-type"] = content_type
    if client_host is not None:
        prior = headers.get("x-forwarded-for")
        forwarded["x-forwarded-for"] = f"{prior}, {client_host}" if prior else client_host
    return forwarded


def client_host(client: str) -> str:
    """The edge host of a client code, before the edge has placed the visitor."""
    return f"{client}.tt.omtrdc.net"


class ThrottledWarnings:
    """A warning line per kind of trouble (an upstream host failing, say) at most once per ``interval_s``;
    the next line says how many more came meanwhile, so an outage is visible without a line per request."""

    def __init__(self, logger: logging.Logger, interval_s: float = 10.0, clock: Any = time.monotonic) -> None:
        self.logger = logger
        self.interval_s = interval_s
        self.clock = clock
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def warn(self, key: str, message: str, *args: object) -> None:
        now = self.clock()
        if now - self._last.get(key, float("-inf")) < self.interval_s:
            self._held[key] = self._held.get(key, 0) + 1
            return
        if len(self._last) > 1000:  # keys are hosts and kinds: few, but never unbounded
            self._last.clear()
            self._held.clear()
        self._last[key] = now
        held = self._held.pop(key, 0)
        if held:
            message += f" (and {held} more like it in the last {self.interval_s:.0f} s)"
        self.logger.warning(message, *args)


# (host kind, seconds, outcome) of each call: edge, admin, platform, ims or other; ok, error, failed or probe
CallObserver = Callable[[str, float, str], None]


def unobserved(kind: str, seconds: float, outcome: str) -> None:
    """Calls observed by nobody (a client built without metrics)."""


class Upstream:
    def __init__(self, settings: UpstreamClientSettings, observe: CallObserver = unobserved) -> None:
        self.settings = settings
        self.observe = observe
        self.base = settings.url
        self.timeout_ms = settings.timeout_ms
        self.retries = settings.retries
        self._client: Client | None = None
        self._breakers = AsyncCircuitBreakerFactory(
            default_threshold=settings.circuit_failures, default_ttl=settings.circuit_reset_seconds
        )
        self.open_circuits: set[str] = set()
        self._kinds: dict[str, str] = {}
        self.warnings = ThrottledWarnings(logger)

    async def start(self) -> None:
        settings = self.settings
        self._client = (
            ClientBuilder()
            .max_connections(settings.pool_size)
            .timeout(timedelta(milliseconds=self.timeout_ms))
            .connect_timeout(timedelta(milliseconds=settings.connect_timeout_ms))
            .pool_idle_timeout(timedelta(seconds=settings.idle_seconds))
            .follow_redirects(False)
            .http1_only()
            .build()
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    def url(self, host: str, path_and_query: str) -> tuple[str, dict[str, str]]:
        """Where to connect, and the Host header that names the edge when connecting elsewhere."""
        if self.base:
            return self.base + path_and_query, {"host": host}
        return f"https://{host}{path_and_query}", {}

    async def request(
        self,
        method: str,
        host: str,
        path_and_query: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_ms: int | None = None,
        probe: bool = False,
    ) -> UpstreamResponse:
        """One call, through the host's circuit breaker: after enough failures in a row (5xx answers,
        timeouts, lost connections) the host is not called for a while and calls answer 503 at once; then
        calls probe it again, and the first success closes the circuit (a failure opens it again).

        Failures and the circuit's changes are logged as warnings (a line per host at most every 10 s);
        a ``probe`` (the readiness check) is counted apart from the calls in the metrics."""
        breaker = await self._breakers.get_breaker(host)
        try:
            async with breaker:
                try:
                    call = Call(method, host, path_and_query, body, headers, timeout_ms, probe)
                    response = await self._attempts(call)
                except UpstreamUnavailable as failed:
                    self.warnings.warn(f"failed {host}", "upstream %s %s failed: %s", method, host, failed.message)
                    raise
                if response.status >= 500:
                    self.warnings.warn(f"failed {host}", "upstream %s %s answered %d", method, host, response.status)
                    raise _Failing(response)
        except OpenedState as opened:
            # The breaker raises one instance for as long as it is open, and each raise adds this call's
            # frames (its body, its headers) to that instance's traceback: drop them, or every call refused
            # while the circuit is open stays in memory until it closes.
            opened.__traceback__ = None
            if host not in self.open_circuits:
                self.open_circuits.add(host)
                logger.warning(
                    "circuit to upstream %s opened after %d failures in a row: calls answer 503 for %.0f s",
                    host,
                    self.settings.circuit_failures,
                    self.settings.circuit_reset_seconds,
                )
            reopens_at = opened.opened_at + self.settings.circuit_reset_seconds
            retry = max(1, math.ceil(reopens_at - time.time()))
            raise CircuitOpen(f"upstream {host} is failing; it is tried again in {retry} s", retry) from None
        except _Failing as failing:
            return failing.response
        if host in self.open_circuits:
            self.open_circuits.discard(host)
            logger.warning("circuit to upstream %s closed: it answers again", host)
        return response

    async def _attempts(self, call: Call) -> UpstreamResponse:
        try:
            return await self._send(call)
        except RequestError as first:
            if not self.retries or not self._retryable(call.method, first):
                raise self._unavailable(first, call.timeout_ms) from None
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(lambda exc: self._retryable(call.method, exc)),
                stop=stop_after_attempt(self.retries),
                wait=wait_exponential_jitter(multiplier=0.05, max=0.5, jitter=0.05),
                reraise=True,
            ):
                with attempt:
                    return await self._send(call)
        except RequestError as last:
            raise self._unavailable(last, call.timeout_ms) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(self, call: Call) -> UpstreamResponse:
        assert self._client is not None, "upstream client not started"
        url, routing = self.url(call.host, call.path_and_query)
        builder = self._client.request(call.method, url).headers({**(call.headers or {}), **routing})
        if call.body is not None:
            builder = builder.body_bytes(call.body)
        if call.timeout_ms:
            builder = builder.timeout(timedelta(milliseconds=call.timeout_ms))
        started = time.perf_counter()
        try:
            response = await builder.build().send()
            payload = await response.bytes()
        except BaseException:
            self._observe(call.host, time.perf_counter() - started, "probe" if call.probe else "failed")
            raise
        outcome = "probe" if call.probe else "ok" if response.status < 400 else "error"
        self._observe(call.host, time.perf_counter() - started, outcome)
        return UpstreamResponse(response.status, response.headers, payload.to_bytes())

    def _observe(self, host: str, seconds: float, outcome: str) -> None:
        kind = self._kinds.get(host)
        if kind is None:
            kind = self._kinds[host] = self._kind_of(host)
        self.observe(kind, seconds, outcome)

    def _kind_of(self, host: str) -> str:
        """A metric label that stays bounded whatever the host: edge, admin, platform or ims."""
        if host.endswith(".tt.omtrdc.net"):
            return "edge"
        if host == self.settings.admin_host:
            return "admin"
        if host == self.settings.platform_host:
            return "platform"
        return "ims" if "adobelogin" in host or host in self.settings.ims_url else "other"

    @staticmethod
    def _retryable(method: str, exc: BaseException) -> bool:
        if isinstance(exc, ConnectError):
            return True  # the connection never opened: nothing reached upstream
        return method in IDEMPOTENT and isinstance(exc, RequestError)

    def _unavailable(self, exc: BaseException, timeout_ms: int | None) -> UpstreamUnavailable:
        if isinstance(exc, RequestTimeoutError):
            return UpstreamTimeout(f"upstream did not answer within {timeout_ms or self.timeout_ms} ms")
        if isinstance(exc, ConnectError):
            return UpstreamUnavailable("cannot connect to upstream")
        return UpstreamUnavailable(f"upstream connection failed ({type(exc).__name__})")
