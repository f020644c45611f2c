"""``/_proxy/...``: operating the gateway: the status page, cache and queue status, cache purges.
Everything but the page itself needs a key with the operator scope."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from proxy.api import checks
from proxy.content.cache import InMemoryContentCache
from proxy.content.sessions import InMemorySessionStore
from proxy.content.visitors import VisitorIds
from proxy.http.bodies import JSONAnswer
from proxy.management.auth import ClientKeys
from proxy.notifications.queue import NotificationQueue
from proxy.notifications.refusals import RefusalPolicy
from proxy.ops.health import Health
from proxy.ops.status_page import HEADERS, PAGE

NO_STORE = {"Cache-Control": "no-store"}
HOST = socket.gethostname()


@dataclass
class OperationRoutes:
    keys: ClientKeys
    sessions: InMemorySessionStore
    cache: InMemoryContentCache
    queue: NotificationQueue
    refusals: RefusalPolicy
    health: Health
    shared: Callable[[], dict[str, Any] | None]  # the Redis stream's figures, when gateways share one

    def routes(self) -> list[Route]:
        return [
            Route("/_proxy/", self.page, methods=["GET"]),
            Route("/_proxy/status", self.status, methods=["GET"]),
            Route("/_proxy/cache", self.cache_status, methods=["GET"]),
            Route("/_proxy/cache", self.purge_all, methods=["DELETE"]),
            Route("/_proxy/cache/visitors", self.purge_visitor, methods=["DELETE"]),
            Route("/_proxy/cache/mboxes/{mbox}", self.purge_mbox, methods=["DELETE"]),
            Route("/_proxy/queue", self.queue_status, methods=["GET"]),
        ]

    def cache_document(self) -> dict[str, object]:
        counters = self.cache.counters
        lookups = counters.hits + counters.misses
        return {
            "visitors": self.cache.visitors,
            "entries": self.cache.entries,
            "bytes": self.cache.bytes,
            "maxEntries": self.cache.max_entries,
            "hits": counters.hits,
            "misses": counters.misses,
            "hitRate": round(counters.hits / lookups, 4) if lookups else None,
            "staleServed": counters.stale_served,
            "evictions": counters.evictions,
            "purgesReceived": counters.purges_received,
            "sessions": len(self.sessions),
        }

    def queue_document(self) -> dict[str, object]:
        store, counters = self.queue.store, self.queue.counters
        document: dict[str, object] = {
            "depth": store.depth(),
            "oldestAgeSeconds": round(store.oldest_age(), 3),
            "maxBacklog": store.max_backlog,
            "accepted": counters.accepted,
            "flushed": counters.flushed,
            "ridden": counters.ridden,
            "failed": counters.failed,
            "retried": counters.retried,
            "deadLettered": counters.dead_lettered,
            "refusals": asdict(self.refusals.counters),
        }
        shared = self.shared()
        if shared is not None:
            document["shared"] = shared
        return document

    async def page(self, request: Request) -> Response:
        return HTMLResponse(PAGE, headers=HEADERS)

    async def status(self, request: Request) -> Response:
        """Everything the status page shows."""
        await self.keys.admit(request, "operator")
        checks = await self.health.checks()
        return JSONAnswer(
            {
                "ready": all(check["ok"] for check in checks.values()),
                "checks": checks,
                "cache": self.cache_document(),
                "queue": self.queue_document(),
                # Which process answered: with several workers each keeps its own figures.
                "worker": {"pid": os.getpid(), "host": HOST},
                "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            },
            headers=NO_STORE,
        )

    async def cache_status(self, request: Request) -> Response:
        await self.keys.admit(request, "operator")
        return JSONAnswer(self.cache_document(), headers=NO_STORE)

    async def queue_status(self, request: Request) -> Response:
        await self.keys.admit(request, "operator")
        return JSONAnswer(self.queue_document(), headers=NO_STORE)

    # DELETE /_proxy/cache[?client=C]
    async def purge_all(self, request: Request) -> Response:
        await self.keys.admit(request, "operator")
        client = request.query_params.get("client")
        if client is None:
            self.cache.purge_all()
        else:
            self.cache.purge_client(checks.client_code(client))
        await self.cache.published()  # other gateways sharing the cache have it too
        return JSONAnswer({"purged": "all", "client": client})

    # DELETE /_proxy/cache/visitors?client=C&tntId=...|thirdPartyId=...|marketingCloudVisitorId=...
    async def purge_visitor(self, request: Request) -> Response:
        await self.keys.admit(request, "operator")
        params = request.query_params
        client = checks.client_code(params.get("client"))
        checks.visitor_id(dict(params))
        ids = VisitorIds.parse(dict(params))
        if not ids:
            raise checks.fail("tntId", "one of tntId, thirdPartyId or marketingCloudVisitorId is required")
        await self.sessions.prepare(ids.keys(client), None, create=False)  # a visitor another gateway saw
        record = self.sessions.find(ids.keys(client))
        purged = bool(record and record.visitor and self.cache.purge_visitor(client, record.visitor))
        await self.cache.published()
        return JSONAnswer({"purged": purged})

    # DELETE /_proxy/cache/mboxes/{mbox}?client=C
    async def purge_mbox(self, request: Request) -> Response:
        await self.keys.admit(request, "operator")
        client = checks.client_code(request.query_params.get("client"))
        mbox = checks.mbox_name(request.path_params["mbox"], "mbox", 250)
        self.cache.purge_mbox(client, mbox)
        await self.cache.published()
        return JSONAnswer({"purged": mbox, "client": client})
