"""One protocol-neutral service for what a visitor sees: resolve the visitor, answer from its prefetched
content, else one upstream Delivery API call (shared by identical concurrent misses, carrying the visitor's
waiting notifications), else its last content or the mbox's default when upstream fails.

It knows no wire API: the adapters in ``proxy.api`` turn their requests into a ``View`` (and, on a miss,
the upstream request) and their answers out of a ``Decision``. Every view answered without upstream queues
its display (or click) notifications durably before it is answered.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import InitVar, dataclass, field
from typing import Any, Protocol
from urllib.parse import urlencode

import orjson

from proxy.content import translate
from proxy.content.affinity import edge_host_for, learn_and_hide, upstream_ids
from proxy.content.cache import CachedMbox, ContentCache
from proxy.content.coalesce import SingleFlight
from proxy.content.on_device import OnDevice
from proxy.content.origin import Origin
from proxy.content.prefetch import PrefetchPlanner
from proxy.content.sessions import SessionLimiter, SessionRecord, SessionStore
from proxy.content.visitors import VisitorIds
from proxy.decisioning.geo import GeoLookup
from proxy.decisioning.local import LocalDecisions
from proxy.failures import SessionBusy
from proxy.notifications import telemetry
from proxy.notifications.model import BacklogFull, Group
from proxy.notifications.queue import NotificationQueue
from proxy.upstream import Upstream, UpstreamMalformed, UpstreamRefused, UpstreamUnavailable, forwarded_headers

# Notification ids: unique per process start (a random prefix) and cheap (a counter, no system call).
_ID_PREFIX = secrets.token_hex(8)
_ID_COUNTER = itertools.count(1)
# Answers that mean "upstream is not serving now", as opposed to "this request is wrong".
UNAVAILABLE = frozenset({420, 429, 500, 502, 503, 504})
# Failures that a view may be answered through (stale-if-error).
Failure = UpstreamUnavailable | UpstreamRefused | SessionBusy
FAILURES = (UpstreamUnavailable, UpstreamRefused, SessionBusy)


def unavailable(failure: Exception) -> bool:
    """Whether a failure means that upstream is not serving now (rather than that the request is wrong)."""
    if isinstance(failure, UpstreamRefused):
        return failure.response.status in UNAVAILABLE
    return isinstance(failure, UpstreamUnavailable | SessionBusy)


def view_notification(kind: str, entry: CachedMbox, impression_id: str | None = None) -> dict[str, Any]:
    """The notification that counts one display (or click) of a cached mbox."""
    tokens, state = entry.tokens(kind)
    mbox: dict[str, str] = {"name": entry.name}
    if state:
        mbox["state"] = state
    note: dict[str, Any] = {
        "id": f"{_ID_PREFIX}-{next(_ID_COUNTER):x}",
        "type": kind,
        "timestamp": int(time.time() * 1000),
        "tokens": tokens,
        "mbox": mbox,
    }
    if impression_id:
        note["impressionId"] = impression_id
    return note


@dataclass(slots=True)
class View:
    """Executed mboxes one visitor asks to see, in one cache context.

    ``answerable``: the cache may answer it (no profile writes, orders or traces), and identical misses
    share one call. ``falls_back``: when upstream is unavailable, the last content or the defaults serve.
    ``needs_tnt_id``: the wire API answers the visitor's tntId, so the cache answers only when it is known.
    """

    client: str
    record: SessionRecord
    names: list[str]
    context: str | None
    given_ids: dict[str, Any] | None = None
    impression_id: str | None = None
    telemetry: Sequence[Any] = ()  # entries riding on the view's first notification
    answerable: bool = True
    falls_back: bool = True
    needs_tnt_id: bool = False


class Shown(Protocol):
    """One mbox's content as shown: its options and metrics as Delivery API JSON (a cache entry is one)."""

    @property
    def options_json(self) -> bytes: ...

    @property
    def metrics_json(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Default:
    """An mbox's configured default content, shown when upstream fails and nothing is cached."""

    options_json: bytes
    metrics_json: bytes = b"[]"

    @classmethod
    def of(cls, content: str) -> Default:
        return cls(orjson.dumps([{"type": "html", "content": content}]))


@dataclass(slots=True)
class Decision:
    """How a view was answered. ``source``: hit, coalesced (a hit on what an identical miss fetched), miss,
    stale or default. ``shown``: one per name, unless upstream answered (``document``, its Delivery answer)."""

    source: str
    shown: Sequence[Shown]
    document: dict[str, Any] | None = None


@dataclass(slots=True)
class Miss:
    """One upstream Delivery API call on behalf of a visitor, and the cache context it fills."""

    client: str
    record: SessionRecord
    request: dict[str, Any]
    context: str | None
    query: dict[str, str]

    @property
    def path(self) -> str:
        return "/rest/v1/delivery?" + urlencode({**self.query, "sessionId": self.record.session_id})


@dataclass
class ContentService:
    """Over the gateway's parts (chosen in ``proxy.gateway``): sessions, cache, queue, upstream."""

    upstream: Upstream
    sessions: SessionStore
    limiter: SessionLimiter
    cache: ContentCache
    planner: PrefetchPlanner
    queue: NotificationQueue
    default_content: Mapping[str, str]
    flight: SingleFlight = field(default_factory=SingleFlight)
    # Deciding on device (``decisioning_method``), when not server-side, and the place of a request's
    # address for an artifact that targets by geo: held by the on-device source made of them.
    local: InitVar[LocalDecisions | None] = None
    geo: InitVar[GeoLookup | None] = None
    # The on-device source: None when the edge decides everything.
    on_device: OnDevice | None = field(init=False, default=None)

    def __post_init__(self, local: LocalDecisions | None, geo: GeoLookup | None) -> None:
        if local is not None:
            self.on_device = OnDevice(local, geo, self.sessions, self.cache, self.accept)

    # --- visitors --------------------------------------------------------------------------------------

    async def visitor(self, client: str, ids: VisitorIds, supplied_session: str | None) -> SessionRecord:
        """The visitor's session record, found by any of its ids or made (brought in from Redis first when
        gateways share it); an explicit tntId is kept on it."""
        keys = ids.keys(client)
        if self.sessions.remote:
            await self.sessions.prepare(keys, supplied_session)
        record = self.sessions.resolve(keys, supplied_session)
        if ids.tnt_id:
            record.tnt_id = ids.tnt_id
        return record

    def learn(self, document: dict[str, Any], ids: dict[str, Any] | None, record: SessionRecord, client: str) -> None:
        """Learn the visitor's edge and tntId from an upstream answer, and hide them from the client."""
        learn_and_hide(document, ids, record, self.sessions, client)

    def asked(self, client: str, names: list[str]) -> None:
        """Remember the mboxes a visitor asked for, for the prefetches of later misses."""
        for name in names:
            self.planner.asked(client, name)

    def plan(self, client: str, names: list[str]) -> list[str]:
        """The mboxes a miss asking for ``names`` prefetches."""
        return self.planner.plan(client, names)

    # --- notifications ---------------------------------------------------------------------------------

    def accept(
        self, record: SessionRecord, client: str, given_ids: dict[str, Any] | None, notes: list[dict[str, Any]]
    ) -> Awaitable[None]:
        """Take a visitor's notifications over, durably: done once written (raises BacklogFull when there is
        no room)."""
        assert record.visitor is not None
        group = Group(client, record.visitor, record.session_id)
        return self.queue.add(group, record.edge_host, upstream_ids(record, given_ids), notes)

    # --- the cache ---------------------------------------------------------------------------------------

    async def from_cache(self, view: View, kind: str = "display", source: str = "hit") -> Decision | None:
        """The view answered from the visitor's cached content, its notifications queued; None when some
        mbox is not cached (or, for a click, has no click to count) or the queue has no room."""
        record = view.record
        visitor, context, client = record.visitor, view.context, view.client
        if visitor is None or context is None:
            return None
        cache = self.cache
        if cache.remote:
            await cache.prepare(client, visitor, context)
        click = kind == "click"
        entries: list[CachedMbox] = []
        for name in view.names:
            entry = cache.lookup(client, visitor, context, name)
            if entry is None or (click and not entry.has_click):
                return None
            entries.append(entry)
        if view.needs_tnt_id and record.tnt_id is None:
            return None
        # Each shown entry with a display (a click) to count gets its notification.
        notes = [
            view_notification(kind, entry, view.impression_id)
            for entry in entries
            if (entry.has_click if click else entry.has_display)
        ]
        if notes:
            if view.telemetry:
                telemetry.carry(notes, list(view.telemetry))
            try:
                await self.accept(record, client, view.given_ids, notes)
            except BacklogFull:
                return None  # upstream counts the view instead
        elif view.telemetry:
            return None  # nothing queued to carry the telemetry: the view goes upstream with it
        return Decision(source, entries)

    # --- upstream ----------------------------------------------------------------------------------------

    async def call(
        self, origin: Origin, record: SessionRecord, client: str, path_and_query: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """One upstream call for the visitor, within its session's concurrency limit; an answer of 400 or
        more is ``UpstreamRefused``."""
        if not self.limiter.acquire(record.session_id):
            raise SessionBusy("Too many requests with same session ID")
        try:
            response = await self.upstream.request(
                "POST",
                edge_host_for(record, client),
                path_and_query,
                body=orjson.dumps(body),
                headers=forwarded_headers(origin.headers, origin.client_host),
            )
        finally:
            self.limiter.release(record.session_id)
        if response.status >= 400:
            raise UpstreamRefused(response)
        try:
            document = response.json()
        except orjson.JSONDecodeError:
            raise UpstreamMalformed("upstream answered malformed JSON") from None
        if not isinstance(document, dict):
            raise UpstreamMalformed("upstream answered an unexpected document")
        return document

    async def from_upstream(self, origin: Origin, view: View, miss: Miss) -> Decision:
        """The view answered by the miss's upstream call (or by what an identical miss in flight fetched);
        when upstream is unavailable, by the visitor's last content or the defaults, if the view falls back."""
        try:
            document = await self.fetch_once(origin, miss) if view.answerable else await self.fetch(origin, miss)
            if document is None:  # an identical miss in flight filled the cache
                coalesced = await self.from_cache(view, source="coalesced")
                if coalesced is not None:
                    return coalesced
                document = await self.fetch(origin, miss)
        except FAILURES as exc:
            if not (view.falls_back and unavailable(exc)):
                raise
            return await self.fallback(view, exc)
        return Decision("miss", [], document)

    async def fetch(self, origin: Origin, miss: Miss) -> dict[str, Any]:
        """The Delivery API call of a miss, with the visitor's waiting notifications riding along."""
        record, client, path = miss.record, miss.client, miss.path
        visitor = record.visitor
        riders = self.queue.ride(client, visitor, record.session_id) if visitor else []
        request = miss.request
        if riders:
            request = telemetry.with_notifications(request, [r.payload_json for r in riders])
        try:
            document = await self.call(origin, record, client, path, request)
        except FAILURES as exc:
            self.queue.settle_ride(riders, None)
            if not (riders and isinstance(exc, UpstreamRefused) and exc.response.status == 400):
                raise
            # A bad notification spoils the whole call upstream: leave them to the flusher, which
            # finds the bad one, and ask again without them.
            document = await self.call(origin, record, client, path, miss.request)
        else:
            self.queue.settle_ride(riders, document)
        self.learn(document, document.get("id"), record, client)
        if record.visitor and miss.context is not None:
            self.cache.fill(client, record.visitor, miss.context, translate.cached_mboxes(document))
        # Shared on Redis: what the miss taught (edge, tntId, content) is written before the answer.
        await self.sessions.published()
        await self.cache.published()
        return document

    async def fetch_once(self, origin: Origin, miss: Miss) -> dict[str, Any] | None:
        """``fetch``, unless the same miss is already in flight: then wait for it and return None (the
        cache now has what it fetched)."""
        if miss.context is None or miss.record.visitor is None:
            return await self.fetch(origin, miss)
        key = (miss.client, miss.record.visitor, miss.context)
        if self.flight.in_flight(key) is not None and await self.flight.wait(key):
            return None
        return await self.flight.run(key, lambda: self.fetch(origin, miss))

    async def fallback(self, view: View, failure: Failure) -> Decision:
        """Stale-if-error: each mbox's last content for the visitor, else its configured default; the
        failure itself when some mbox has neither. When the queue has no room for the stale views'
        notifications, only the defaults serve."""
        visitor = view.record.visitor
        if visitor is not None and view.context is not None:
            await self.cache.prepare(view.client, visitor, view.context)
        stale = [self.cache.stale(view.client, visitor, name) if visitor else None for name in view.names]
        shown: list[Shown] = []
        notes = []
        for name, entry in zip(view.names, stale, strict=True):
            if entry is not None:
                shown.append(entry)
                if entry.has_display:
                    notes.append(view_notification("display", entry, view.impression_id))
            else:
                shown.append(self.default(name, failure))
        telemetry.carry(notes, list(view.telemetry))  # upstream did not take them with the view: on its notification
        try:
            if notes:
                await self.accept(view.record, view.client, view.given_ids, notes)
        except BacklogFull:
            return Decision("default", [self.default(name, failure) for name in view.names])
        return Decision("stale" if any(stale) else "default", shown)

    def default(self, name: str, failure: Failure) -> Shown:
        content = self.default_content.get(name)
        if content is None:
            raise failure
        return Default.of(content)
