"""Drop-in delivery routes: single mbox, batch mbox and the Delivery API.

A visitor's plain views (no profile writes, orders or traces) are answered from its prefetched
content when the cache has it, each answer queueing exactly one display notification. A miss costs
one upstream Delivery API call, which executes what was asked, prefetches the visitor's other known
mboxes into the cache and carries the visitor's waiting notifications along. Concurrent identical
misses share that call. When upstream fails, the visitor's last content (or the mbox's configured
default) is served instead of an error.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import orjson

from proxy import translate, validation
from proxy.affinity import edge_host_for, learn_and_hide, restore_ids, upstream_ids
from proxy.bodies import forwarded_headers, parse_json
from proxy.cache import CachedMbox, ContentCache
from proxy.coalesce import SingleFlight
from proxy.errors import ApiError
from proxy.hotpath import HotPaths, Incoming, Outgoing
from proxy.notifications import telemetry
from proxy.notifications.model import BacklogFull, Group
from proxy.notifications.queue import NotificationQueue, view_notification
from proxy.prefetch import PrefetchPlanner
from proxy.sessions import SessionLimiter, SessionRecord, SessionStore
from proxy.settings import Settings
from proxy.upstream import Upstream, UpstreamResponse
from proxy.visitors import VisitorIds

CLICKED = "-clicked"
# Answers that mean "upstream is not serving now", as opposed to "this request is wrong".
UNAVAILABLE = frozenset({420, 429, 500, 502, 503, 504})
PASSED_THROUGH_5XX = frozenset({502, 503, 504})
# SDK telemetry (timings of earlier calls) is not among them: it cannot change content, and rides upstream
# on the visitor's notifications (proxy.notifications.telemetry).
UNCACHEABLE_DELIVERY_KEYS = ("prefetch", "trace", "qaMode", "preview")
UNCACHEABLE_MBOX_KEYS = ("profileParameters", "order", "product")


UPSTREAM_FIELD = re.compile(r"^([A-Za-z_][\w.\[\]]*): ")


def upstream_error(response: UpstreamResponse) -> ApiError:
    """An upstream failure passed through with its status, as the gateway's JSON error; an upstream's own
    failure (500 and the like) is the gateway's 502, so that a 500 always means the gateway failed."""
    message, field = f"upstream answered {response.status}", None
    try:
        payload = orjson.loads(response.body)
        if isinstance(payload, dict) and isinstance(payload.get("message"), str):
            message = payload["message"]
            # Upstream's refusals name the field at the start of the message ("context.channel: ...").
            named = UPSTREAM_FIELD.match(message)
            field = payload.get("field") if isinstance(payload.get("field"), str) else named and named[1]
    except orjson.JSONDecodeError:
        pass
    status = response.status
    if status >= 500 and status not in PASSED_THROUGH_5XX:
        status, message, field = 502, f"upstream answered {response.status}: {message}", None
    retry_after = response.headers.get("retry-after")
    return ApiError(status, message, field, headers={"Retry-After": retry_after} if retry_after else None)


def answer(document: dict[str, Any]) -> Outgoing:
    return Outgoing(200, orjson.dumps(document))


def client_ids(record: SessionRecord, given: dict[str, Any] | None) -> dict[str, Any]:
    """The ``id`` object a client sees: its own ids, with the bare tntId the gateway knows."""
    ids = {k: v for k, v in (given or {}).items() if k != "tntId"}
    if record.tnt_id:
        ids = {"tntId": record.tnt_id, **ids}
    return ids


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


class DeliveryRoutes:
    def __init__(
        self,
        settings: Settings,
        upstream: Upstream,
        sessions: SessionStore,
        limiter: SessionLimiter,
        cache: ContentCache,
        planner: PrefetchPlanner,
        queue: NotificationQueue,
    ) -> None:
        self.settings = settings
        self.upstream = upstream
        self.sessions = sessions
        self.limiter = limiter
        self.cache = cache
        self.planner = planner
        self.queue = queue
        self.flight = SingleFlight()

    def mount(self, paths: HotPaths) -> None:
        paths.prefix("/rest/v1/mbox/", self.single_mbox, "/rest/v1/mbox/{sessionId}")
        paths.exact("/rest/v1/mbox", self.single_mbox, "/rest/v1/mbox")
        paths.exact("/rest/v2/batchmbox", self.batch_mbox, "/rest/v2/batchmbox")
        paths.exact("/rest/v2/batchmbox/", self.batch_mbox, "/rest/v2/batchmbox")
        paths.exact("/rest/v1/delivery", self.delivery, "/rest/v1/delivery")

    # --- upstream ------------------------------------------------------------------------------------

    async def call(
        self,
        incoming: Incoming,
        record: SessionRecord,
        client: str,
        path_and_query: str,
        body: dict[str, Any],
    ) -> dict[str, Any]:
        """One upstream call for the visitor, within its session's concurrency limit."""
        if not self.limiter.acquire(record.session_id):
            raise ApiError(420, "Too many requests with same session ID")
        try:
            response = await self.upstream.request(
                "POST",
                edge_host_for(record, client),
                path_and_query,
                body=orjson.dumps(body),
                headers=forwarded_headers(incoming.headers, incoming.client_host),
            )
        finally:
            self.limiter.release(record.session_id)
        if response.status >= 400:
            raise upstream_error(response)
        try:
            document = response.json()
        except orjson.JSONDecodeError:
            raise ApiError(502, "upstream answered malformed JSON") from None
        if not isinstance(document, dict):
            raise ApiError(502, "upstream answered an unexpected document")
        return document

    async def fetch(self, incoming: Incoming, miss: Miss) -> dict[str, Any]:
        """The Delivery API call of a miss, with the visitor's waiting notifications riding along."""
        record, client, path = miss.record, miss.client, miss.path
        visitor = record.visitor
        riders = self.queue.ride(client, visitor, record.session_id) if visitor else []
        request = miss.request
        if riders:
            request = telemetry.with_notifications(request, [r.payload_json for r in riders])
        try:
            document = await self.call(incoming, record, client, path, request)
        except ApiError as exc:
            self.queue.settle_ride(riders, None)
            if not (riders and exc.status == 400):
                raise
            # A bad notification spoils the whole call upstream: leave them to the flusher, which
            # finds the bad one, and ask again without them.
            document = await self.call(incoming, record, client, path, miss.request)
        else:
            self.queue.settle_ride(riders, document)
        learn_and_hide(document, document.get("id"), record, self.sessions, client)
        if record.visitor and miss.context is not None:
            self.cache.fill(client, record.visitor, miss.context, translate.cached_mboxes(document))
        # Shared on Redis: what the miss taught (edge, tntId, content) is written before the answer.
        await self.sessions.published()
        await self.cache.published()
        return document

    async def fetch_once(self, incoming: Incoming, miss: Miss) -> dict[str, Any] | None:
        """``fetch``, unless the same miss is already in flight: then wait for it and return None (the
        cache now has what it fetched)."""
        if miss.context is None or miss.record.visitor is None:
            return await self.fetch(incoming, miss)
        key = (miss.client, miss.record.visitor, miss.context)
        if self.flight.in_flight(key) is not None and await self.flight.wait(key):
            return None
        return await self.flight.run(key, lambda: self.fetch(incoming, miss))

    # --- notifications -------------------------------------------------------------------------------

    async def notify_views(
        self,
        record: SessionRecord,
        client: str,
        given_ids: dict[str, Any] | None,
        notes: list[dict[str, Any]],
    ) -> None:
        assert record.visitor is not None
        group = Group(client, record.visitor, record.session_id)
        await self.queue.add(group, record.edge_host, upstream_ids(record, given_ids), notes)

    async def visitor(
        self, incoming: Incoming, client: str, ids: VisitorIds, supplied_session: str | None
    ) -> SessionRecord:
        """The visitor's session record, found by any of its ids or made (brought in from Redis first when
        gateways share it); an explicit tntId is kept on it."""
        keys = ids.keys(client)
        await self.sessions.prepare(keys, supplied_session)
        record = self.sessions.resolve(keys, supplied_session)
        if ids.tnt_id:
            record.tnt_id = ids.tnt_id
        incoming.visitor = record.visitor
        return record

    # --- POST /rest/v1/mbox/{sessionId}?client=C and POST /rest/v1/mbox?client=C ------------------------

    async def single_mbox(self, incoming: Incoming) -> Outgoing:
        client = validation.client_code(incoming.query.get("client"))
        supplied = incoming.path_param
        if supplied is not None:
            validation.session_id(supplied)
        body = validation.single_mbox(parse_json(incoming.body))
        record = await self.visitor(incoming, client, VisitorIds.parse(body), supplied)
        asked: str = body["mbox"]
        clicked = validation.boolean_flag(body.get("clicked"), "clicked") or asked.endswith(CLICKED)
        name = asked.removesuffix(CLICKED)
        if validation.boolean_flag(body.get("mboxTrace"), "mboxTrace"):
            incoming.cache = "bypass"
            return await self.forward_single(incoming, body, record, client)
        context = translate.single_context(body)
        visitor = record.visitor
        if visitor:
            await self.cache.prepare(client, visitor, context)
        impression_id = (body.get("requestLocation") or {}).get("impressionId")
        if clicked:
            entry = self.cache.lookup(client, visitor, context, name) if visitor else None
            served: Outgoing | None = None
            if entry is not None and entry.has_click:
                served = await self.serve_cached(body, record, client, entry, "click", impression_id)
            incoming.cache = "hit" if served else "bypass"
            return served or await self.forward_single(incoming, body, record, client)
        self.planner.asked(client, name)
        plain = not (body.get("profileParameters") or body.get("order"))
        if plain and visitor:
            entry = self.cache.lookup(client, visitor, context, name)
            served = await self.serve_cached(body, record, client, entry, "display", impression_id) if entry else None
            if served:
                incoming.cache = "hit"
                return served
        incoming.cache = "miss" if plain else "bypass"
        request = translate.single_to_delivery(body, upstream_ids(record, body), self.planner.plan(client, [name]))
        miss = Miss(client, record, request, context, {"client": client})
        try:
            document = await self.fetch_once(incoming, miss) if plain else await self.fetch(incoming, miss)
            if document is None:  # an identical miss in flight filled the cache
                entry = self.cache.lookup(client, record.visitor or "", context, name)
                served = (
                    await self.serve_cached(body, record, client, entry, "display", impression_id) if entry else None
                )
                if served:
                    incoming.cache = "coalesced"
                    return served
                document = await self.fetch(incoming, miss)
        except ApiError as exc:
            if exc.status not in UNAVAILABLE:
                raise
            return await self.single_fallback(incoming, body, record, client, name, impression_id, exc)
        incoming.visitor = record.visitor
        content = translate.option_content(translate.executed_options(document))
        return answer(self.single_document(body, record, content))

    async def forward_single(
        self, incoming: Incoming, body: dict[str, Any], record: SessionRecord, client: str
    ) -> Outgoing:
        """The single mbox API itself, for what only it answers (traces, clicks on content not cached)."""
        restore_ids(body, record)
        path = f"/rest/v1/mbox/{quote(record.session_id, safe='')}?{incoming.query_string}"
        document = await self.call(incoming, record, client, path, body)
        learn_and_hide(document, document, record, self.sessions, client)
        return answer(document)

    def single_document(self, body: dict[str, Any], record: SessionRecord, content: str) -> dict[str, Any]:
        document: dict[str, Any] = {}
        # As upstream: a tntId is returned unless the view names a thirdPartyId (and no tntId).
        if record.tnt_id and (body.get("tntId") or not body.get("thirdPartyId")):
            document["tntId"] = record.tnt_id
        for key in ("thirdPartyId", "marketingCloudVisitorId"):
            if body.get(key):
                document[key] = body[key]
        document["content"] = content
        document["sessionId"] = record.session_id
        return document

    def single_answer(self, body: dict[str, Any], record: SessionRecord, entry: CachedMbox) -> Outgoing:
        content = translate.option_content(orjson.loads(entry.options_json))
        return answer(self.single_document(body, record, content))

    async def serve_cached(
        self,
        body: dict[str, Any],
        record: SessionRecord,
        client: str,
        entry: CachedMbox,
        kind: str,
        impression_id: str | None,
    ) -> Outgoing | None:
        """Answer from a cache entry once the view (or click) it shows is queued for upstream; None
        when the queue has no room, so that the caller lets upstream count it instead."""
        try:
            if entry.has_click if kind == "click" else entry.has_display:
                await self.notify_views(record, client, body, [view_notification(kind, entry, impression_id)])
        except BacklogFull:
            return None
        return self.single_answer(body, record, entry)

    async def single_fallback(
        self,
        incoming: Incoming,
        body: dict[str, Any],
        record: SessionRecord,
        client: str,
        name: str,
        impression_id: str | None,
        failure: ApiError,
    ) -> Outgoing:
        """Stale-if-error: the visitor's last content for the mbox, else its configured default. The request
        log says which was served: ``stale``, ``default``, or (the failure itself) the miss it was."""
        entry = self.cache.stale(client, record.visitor, name) if record.visitor else None
        served = entry and await self.serve_cached(body, record, client, entry, "display", impression_id)
        if served:
            incoming.cache = "stale"
            return served
        default = self.settings.default_content.get(name)
        if default is not None:
            incoming.cache = "default"
            return answer(self.single_document(body, record, default))
        raise failure

    # --- POST /rest/v2/batchmbox ---------------------------------------------------------------------

    async def batch_mbox(self, incoming: Incoming) -> Outgoing:
        body = validation.batch_mbox(parse_json(incoming.body), validation.MAX_NOTIFICATIONS)
        client = body["client"]
        record = await self.visitor(incoming, client, VisitorIds.parse(body.get("id")), None)
        notes = body.get("notifications") or []
        if notes and record.visitor and not body.get("mboxes") and not body.get("prefetch"):
            # Notifications alone: the gateway takes them over and delivers them.
            await self.accept(record, client, body.get("id"), [batch_notification(n) for n in notes])
            return answer({"requestId": str(uuid.uuid4()), "client": client, "id": client_ids(record, body.get("id"))})
        restore_ids(body.get("id"), record)
        query = f"?{incoming.query_string}" if incoming.query_string else ""
        document = await self.call(incoming, record, client, f"/rest/v2/batchmbox{query}", body)
        learn_and_hide(document, document.get("id"), record, self.sessions, client)
        return answer(document)

    async def accept(
        self,
        record: SessionRecord,
        client: str,
        given_ids: dict[str, Any] | None,
        notes: list[dict[str, Any]],
    ) -> None:
        try:
            await self.notify_views(record, client, given_ids, notes)
        except BacklogFull:
            raise ApiError(
                503,
                "too many notifications are waiting; send them again later",
                headers={"Retry-After": "30"},
            ) from None

    # --- POST /rest/v1/delivery?client=C|imsOrgId=O[&sessionId=S][&version=V] ----------------------------

    async def delivery(self, incoming: Incoming) -> Outgoing:
        params = incoming.query
        if params.get("client") is None and params.get("imsOrgId") is None:
            raise validation.fail("client", "client or imsOrgId is required")
        client = validation.client_code(params["client"]) if "client" in params else self.settings.client
        supplied = incoming.query_value("sessionId")  # decoded as the path form is: one rule for both
        if supplied is not None:
            validation.session_id(supplied)
        body = validation.delivery(parse_json(incoming.body), validation.MAX_NOTIFICATIONS)
        record = await self.visitor(incoming, client, VisitorIds.parse(body.get("id")), supplied)
        notes: list[dict[str, Any]] = body.get("notifications") or []
        accepted = bool(notes and record.visitor)
        if accepted:
            notes = list(notes)
            telemetry.ride_on_first(notes, body)  # on the notifications the gateway takes over
            await self.accept(record, client, body.get("id"), notes)
            body = {k: v for k, v in body.items() if k not in ("notifications", "telemetry")}
            if not body.get("execute") and not body.get("prefetch"):
                incoming.cache = "accepted"
                return answer(self.delivery_document(body, record, client, notes))
        context = delivery_context(body)
        if context is not None and record.visitor:
            await self.cache.prepare(client, record.visitor, context)
            hit = await self.delivery_from_cache(body, record, client, context, notes if accepted else [])
            if hit is not None:
                incoming.cache = "hit"
                return hit
        incoming.cache = "miss" if context is not None else "bypass"
        return await self.delivery_miss(incoming, body, record, client, params, context, notes if accepted else [])

    def delivery_document(
        self, body: dict[str, Any], record: SessionRecord, client: str, accepted: list[dict[str, Any]]
    ) -> dict[str, Any]:
        document: dict[str, Any] = {
            "status": 200,
            "requestId": body.get("requestId") or str(uuid.uuid4()),
            "client": client,
            "id": client_ids(record, body.get("id")),
        }
        if accepted:
            document["notifications"] = [{"id": note["id"]} for note in accepted]
        return document

    async def delivery_from_cache(
        self,
        body: dict[str, Any],
        record: SessionRecord,
        client: str,
        context: str,
        accepted: list[dict[str, Any]],
    ) -> Outgoing | None:
        mboxes = body["execute"]["mboxes"]
        visitor = record.visitor
        assert visitor is not None
        entries = []
        for mbox in mboxes:
            self.planner.asked(client, mbox["name"])
            entry = self.cache.lookup(client, visitor, context, mbox["name"])
            if entry is None:
                return None
            entries.append(entry)
        if record.tnt_id is None:
            return None
        views = [view_notification("display", e, body.get("impressionId")) for e in entries if e.has_display]
        if not telemetry.ride_on_first(views, body):
            return None  # nothing queued to carry the entries: the view goes upstream with them
        try:
            await self.notify_views(record, client, body.get("id"), views)
        except BacklogFull:
            return None
        document = self.delivery_document(body, record, client, accepted)
        document["execute"] = {
            "mboxes": [
                {
                    "index": mbox["index"],
                    "name": mbox["name"],
                    "options": orjson.Fragment(entry.options_json),
                    "metrics": orjson.Fragment(entry.metrics_json),
                }
                for mbox, entry in zip(mboxes, entries, strict=True)
            ]
        }
        return answer(document)

    async def delivery_miss(
        self,
        incoming: Incoming,
        body: dict[str, Any],
        record: SessionRecord,
        client: str,
        params: dict[str, str],
        context: str | None,
        accepted: list[dict[str, Any]],
    ) -> Outgoing:
        request = dict(body)
        riding = telemetry.entries_of(body)
        if riding:
            request["telemetry"] = {**body["telemetry"], "entries": telemetry.bounded(riding)}
            telemetry.forwarded(request["telemetry"]["entries"])
        request["id"] = upstream_ids(record, body.get("id")) if (body.get("id") or record.tnt_id) else {}
        if not request["id"]:
            del request["id"]
        prefetched_for_cache = context is not None and record.visitor is not None
        if prefetched_for_cache:
            asked = [m["name"] for m in body["execute"]["mboxes"]]
            parameters = body["execute"]["mboxes"][0].get("parameters")
            request["prefetch"] = {"mboxes": translate.prefetch_entries(self.planner.plan(client, asked), parameters)}
        query = {k: v for k, v in params.items() if k != "sessionId"}
        miss = Miss(client, record, request, context if prefetched_for_cache else None, query)
        try:
            document = await self.fetch_once(incoming, miss)
            if document is None:  # an identical miss in flight filled the cache
                assert context is not None
                served = await self.delivery_from_cache(body, record, client, context, accepted)
                if served is not None:
                    incoming.cache = "coalesced"
                    return served
                document = await self.fetch(incoming, miss)
        except ApiError as exc:
            if exc.status not in UNAVAILABLE or not prefetched_for_cache:
                raise
            return await self.delivery_fallback(incoming, body, record, client, accepted, exc)
        if prefetched_for_cache:
            document.pop("prefetch", None)
        if accepted:
            document["notifications"] = [{"id": note["id"]} for note in accepted]
        return answer(document)

    async def delivery_fallback(
        self,
        incoming: Incoming,
        body: dict[str, Any],
        record: SessionRecord,
        client: str,
        accepted: list[dict[str, Any]],
        failure: ApiError,
    ) -> Outgoing:
        """Stale-if-error for a page of mboxes: each one's last content for the visitor, else its configured
        default; the failure itself when some mbox has neither."""
        mboxes = body["execute"]["mboxes"]
        answered: list[tuple[bytes, bytes]] = []
        views = []
        any_stale = False
        for mbox in mboxes:
            entry = self.cache.stale(client, record.visitor, mbox["name"]) if record.visitor else None
            default = self.settings.default_content.get(mbox["name"])
            if entry is not None:
                any_stale = True
                answered.append((entry.options_json, entry.metrics_json))
                if entry.has_display:
                    views.append(view_notification("display", entry, body.get("impressionId")))
            elif default is not None:
                answered.append((orjson.dumps([{"type": "html", "content": default}]), b"[]"))
            else:
                raise failure
        telemetry.ride_on_first(views, body)  # upstream did not take them with the view: on its notification
        try:
            if views:
                await self.notify_views(record, client, body.get("id"), views)
        except BacklogFull:
            raise failure from None
        incoming.cache = "stale" if any_stale else "default"
        document = self.delivery_document(body, record, client, accepted)
        document["execute"] = {
            "mboxes": [
                {
                    "index": mbox["index"],
                    "name": mbox["name"],
                    "options": orjson.Fragment(options),
                    "metrics": orjson.Fragment(metrics),
                }
                for mbox, (options, metrics) in zip(mboxes, answered, strict=True)
            ]
        }
        return answer(document)


def delivery_context(body: dict[str, Any]) -> str | None:
    """The cache context of a Delivery request that the cache may answer; None if it may not: only
    executed mboxes, no page load, no profile writes, orders or products, no trace, one set of mbox
    parameters for all."""
    execute = body.get("execute") or {}
    mboxes = execute.get("mboxes") or []
    if not mboxes or execute.get("pageLoad") is not None:
        return None
    if any(body.get(key) for key in UNCACHEABLE_DELIVERY_KEYS):
        return None
    parameters = mboxes[0].get("parameters") or {}
    for mbox in mboxes:
        if mbox["name"].endswith(CLICKED) or any(mbox.get(key) for key in UNCACHEABLE_MBOX_KEYS):
            return None
        if (mbox.get("parameters") or {}) != parameters or mbox.get("address"):
            return None
    context = body.get("context") or {}
    return translate.fingerprint(
        parameters,
        context.get("channel"),
        context.get("address"),
        context.get("geo"),
        (body.get("property") or {}).get("token"),
        body.get("environmentId"),
    )


def batch_notification(note: dict[str, Any]) -> dict[str, Any]:
    """A batch mbox API notification in the Delivery API's shape (an id, a timestamp in ms)."""
    stamp = note.get("timestamp") or time.time()
    name = str(note.get("mbox", ""))
    converted: dict[str, Any] = {
        "id": str(note.get("id") or uuid.uuid4().hex),
        "type": "click" if name.endswith(CLICKED) else "display",
        # The batch API's examples give seconds; the Delivery API takes milliseconds.
        "timestamp": int(stamp * 1000) if stamp < 10**11 else int(stamp),
        "tokens": list(note.get("eventTokens") or []),
        "mbox": {"name": name.removesuffix(CLICKED)},
    }
    for key in ("parameters", "order", "product"):
        if note.get(key):
            converted[key] = note[key]
    return converted
