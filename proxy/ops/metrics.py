"""Prometheus metrics (prometheus-client), in the text format at ``/metrics``.

Requests and upstream calls (``UpstreamMetrics``, the upstream client's observer) are observed as they
happen, SDK telemetry entries where they are carried (``proxy.notifications.telemetry``); everything the
gateway already counts (cache, sessions, notifications, call budgets, token) is copied into the registry
every couple of seconds and before each scrape, so the hot path pays nothing for it. With several workers each
process writes its own files under ``PROMETHEUS_MULTIPROC_DIR`` and a scrape adds them up.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from starlette.requests import Request
from starlette.responses import Response

from proxy.http.observed import Observed

# No `_created` series beside each counter and histogram: nothing here reads them, and they double the scrape.
disable_created_metrics()

# Sub-millisecond buckets: a cached answer takes a fraction of one.
BUCKETS = (0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

REQUESTS = Counter("target_proxy_requests_total", "Requests answered, by route and status.", ["route", "status"])
REQUEST_SECONDS = Histogram(
    "target_proxy_request_duration_seconds", "Time to answer a request, by route.", ["route"], buckets=BUCKETS
)
UPSTREAM_SECONDS = Histogram(
    "target_proxy_upstream_duration_seconds", "Time of upstream calls, by host kind.", ["upstream"], buckets=BUCKETS
)
UPSTREAM_CALLS = Counter(
    "target_proxy_upstream_requests_total",
    "Upstream calls, by host kind and outcome: ok, error (an answer of 4xx or 5xx), failed (no answer), probe "
    "(the readiness check, whatever it got).",
    ["upstream", "outcome"],
)
CACHE_LOOKUPS = Counter("target_proxy_cache_lookups_total", "Cache lookups, by outcome.", ["outcome"])
CACHE_EVICTIONS = Counter("target_proxy_cache_evictions_total", "Visitors evicted from the cache by its bounds.")
CACHE_ENTRIES = Gauge("target_proxy_cache_entries", "Cached visitor-mbox entries.", multiprocess_mode="livesum")
CACHE_BYTES = Gauge("target_proxy_cache_bytes", "Bytes held by the cache.", multiprocess_mode="livesum")
SESSIONS = Gauge("target_proxy_sessions", "Visitors with a live session.", multiprocess_mode="livesum")
BACKLOG = Gauge("target_proxy_notification_backlog", "Notifications waiting to be sent.", multiprocess_mode="livemax")
BACKLOG_AGE = Gauge(
    "target_proxy_notification_oldest_age_seconds",
    "Age of the oldest waiting notification.",
    multiprocess_mode="livemax",
)
NOTIFICATIONS = Counter(
    "target_proxy_notifications_total",
    "Notifications by outcome: accepted, flushed, ridden (acknowledged on a delivery call), failed, retried, "
    "dead_lettered.",
    ["outcome"],
)
REFUSALS = Counter(
    "target_proxy_notification_refusals_total",
    "Notifications the edge refused with 400, by what it cost: calls (upstream calls spent finding the bad "
    "notification of a refused batch), isolated (refused notifications dead-lettered alone), unnarrowed "
    "(dead-lettered with their batch: a refusal budget was spent).",
    ["outcome"],
)
RATE_LIMITED = Counter("target_proxy_rate_limited_total", "Requests refused by a call budget or rate limit.", ["limit"])
CIRCUIT_OPEN = Gauge(
    "target_proxy_upstream_circuit_open", "1 while the circuit to upstream is open.", multiprocess_mode="livemax"
)
TOKEN_AVAILABLE = Gauge(
    "target_proxy_ims_token_available", "1 while an unexpired IMS token is held.", multiprocess_mode="livemax"
)
ARTIFACT_AGE = Gauge(
    "target_proxy_decisioning_artifact_age_seconds",
    "Seconds since the rules artifact in use was last read (its source polled); -1 while none is.",
    multiprocess_mode="livemax",
)
ARTIFACT_VERSION = Gauge(
    "target_proxy_decisioning_artifact_info",
    "1 for the version of the rules artifact in use, 0 for those used before it.",
    ["version"],
    multiprocess_mode="livemax",
)
ON_DEVICE = Counter(
    "target_proxy_decisioning_requests_total",
    "Delivery requests by where they were decided: decided (on device) or edge (left to the edge).",
    ["outcome"],
)


class RequestObserver:
    """Counts and times every answered request, by route; hands each to the access log."""

    def __init__(self, access_log: Any) -> None:
        self.access_log = access_log
        self._counters: dict[tuple[str, int], Any] = {}
        self._timers: dict[str, Any] = {}

    def __call__(self, request: Observed) -> None:
        route, status = request.route, request.status
        counter = self._counters.get((route, status))
        if counter is None:
            counter = self._counters[(route, status)] = REQUESTS.labels(route, str(status))
        counter.inc()
        timer = self._timers.get(route)
        if timer is None:
            timer = self._timers[route] = REQUEST_SECONDS.labels(route)
        timer.observe(request.seconds)
        self.access_log.record(request)


class UpstreamMetrics:
    """Times and counts upstream calls by host kind and outcome (the upstream client's ``observe``)."""

    def __init__(self) -> None:
        self._children: dict[tuple[str, str], tuple[Any, Any]] = {}

    def __call__(self, kind: str, seconds: float, outcome: str) -> None:
        children = self._children.get((kind, outcome))
        if children is None:
            children = self._children[(kind, outcome)] = (
                UPSTREAM_SECONDS.labels(kind),
                UPSTREAM_CALLS.labels(kind, outcome),
            )
        children[0].observe(seconds)
        children[1].inc()


class CounterSync:
    """Copies counts kept elsewhere into Prometheus counters, adding only what grew since last time."""

    def __init__(self) -> None:
        self._seen: dict[tuple[int, str], float] = {}

    def add(self, metric: Any, key: str, value: float) -> None:
        previous = self._seen.get((id(metric), key), 0.0)
        if value > previous:
            metric.inc(value - previous)
        self._seen[(id(metric), key)] = value


def metrics_response(refresh: Callable[[], None]) -> Callable[[Request], Any]:
    async def metrics(request: Request) -> Response:
        refresh()
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if directory:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=directory)
            data = generate_latest(registry)
        else:
            data = generate_latest()
        return Response(data, media_type=CONTENT_TYPE_LATEST)

    return metrics
