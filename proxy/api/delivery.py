"""The Delivery API: ``POST /rest/v1/delivery?client=C|imsOrgId=O[&sessionId=S][&version=V]``.

Notifications are taken over for delivery; executed mboxes that the cache may answer are a view of the
content service; anything else goes upstream as one call (with the visitor's prefetch when it is cacheable).
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from proxy.api import checks, validation
from proxy.api.replies import CLICKED, answer, client_ids, take_over
from proxy.content import translate
from proxy.content.affinity import upstream_ids
from proxy.content.service import ContentService, Decision, Miss, View
from proxy.content.sessions import SessionRecord
from proxy.content.visitors import VisitorIds
from proxy.http.bodies import parse_json
from proxy.http.hotpath import HotPaths, Incoming, Outgoing
from proxy.notifications import telemetry

# SDK telemetry (timings of earlier calls) is not among them: it cannot change content, and rides upstream
# on the visitor's notifications (proxy.notifications.telemetry).
UNCACHEABLE_PREFETCH_KEYS = ("trace", "qaMode", "preview")
UNCACHEABLE_DELIVERY_KEYS = ("prefetch", *UNCACHEABLE_PREFETCH_KEYS)
UNCACHEABLE_MBOX_KEYS = ("profileParameters", "order", "product")


class DeliveryApi:
    def __init__(self, content: ContentService, default_client: str) -> None:
        self.content = content
        self.default_client = default_client

    def mount(self, paths: HotPaths) -> None:
        paths.exact("/rest/v1/delivery", self.deliver, "/rest/v1/delivery")

    async def deliver(self, incoming: Incoming) -> Outgoing:
        params = incoming.query
        if params.get("client") is None and params.get("imsOrgId") is None:
            raise checks.fail("client", "client or imsOrgId is required")
        client = checks.client_code(params["client"]) if "client" in params else self.default_client
        supplied = incoming.query_value("sessionId")  # decoded as the path form is: one rule for both
        if supplied is not None:
            checks.session_id(supplied)
        body = validation.delivery(parse_json(incoming.body))
        record = await self.content.visitor(client, VisitorIds.parse(body.get("id")), supplied)
        incoming.visitor = record.visitor
        accepted: list[dict[str, Any]] = []
        if body.get("notifications") and record.visitor:
            accepted = list(body["notifications"])
            telemetry.ride_on_first(accepted, body)  # on the notifications the gateway takes over
            await take_over(self.content, record, client, body.get("id"), accepted)
            body = {k: v for k, v in body.items() if k not in ("notifications", "telemetry")}
            if not body.get("execute") and not body.get("prefetch"):
                incoming.cache = "accepted"
                return answer(envelope(body, record, client, accepted))
        context = delivery_context(body)
        cacheable = context is not None and record.visitor is not None
        mboxes = (body.get("execute") or {}).get("mboxes") or []
        view = View(
            client,
            record,
            [mbox["name"] for mbox in mboxes],
            context,
            given_ids=body.get("id"),
            impression_id=body.get("impressionId"),
            telemetry=telemetry.entries_of(body),
            answerable=context is not None,
            falls_back=cacheable,
            needs_tnt_id=True,
        )
        if cacheable:
            self.content.asked(client, view.names)
            decision = await self.content.from_cache(view)
            if decision is not None:
                incoming.cache = "hit"
                return self.render(body, record, client, accepted, decision)
        # What the request prefetches, decided on device, fills the visitor's cache.
        decided = None
        if self.content.on_device is not None:
            prefetched = delivery_context(body, "prefetch")
            decided = await self.content.on_device.decide(incoming, record, client, body, prefetched)
        if decided is not None:
            incoming.cache = "on-device"
            incoming.visitor = record.visitor
            return self.render(body, record, client, accepted, Decision("on-device", [], decided))
        incoming.cache = "miss" if context is not None else "bypass"
        request = self.upstream_request(body, record, client, cacheable)
        query = {k: v for k, v in params.items() if k != "sessionId"}
        miss = Miss(client, record, request, context if cacheable else None, query)
        decision = await self.content.from_upstream(incoming, view, miss)
        if decision.source != "miss":
            incoming.cache = decision.source
        elif cacheable and decision.document is not None:
            decision.document.pop("prefetch", None)
        return self.render(body, record, client, accepted, decision)

    def upstream_request(
        self, body: dict[str, Any], record: SessionRecord, client: str, prefetch: bool
    ) -> dict[str, Any]:
        """The request a miss sends upstream: the client's, with the visitor's ids and telemetry, and the
        visitor's other known mboxes prefetched when the answer fills the cache."""
        request = dict(body)
        riding = telemetry.entries_of(body)
        if riding:
            request["telemetry"] = {**body["telemetry"], "entries": telemetry.bounded(riding)}
            telemetry.forwarded(request["telemetry"]["entries"])
        request["id"] = upstream_ids(record, body.get("id")) if (body.get("id") or record.tnt_id) else {}
        if not request["id"]:
            del request["id"]
        if prefetch:
            executed = body["execute"]["mboxes"]
            planned = self.content.plan(client, [m["name"] for m in executed])
            request["prefetch"] = {"mboxes": translate.prefetch_entries(planned, executed[0].get("parameters"))}
        return request

    def render(
        self,
        body: dict[str, Any],
        record: SessionRecord,
        client: str,
        accepted: list[dict[str, Any]],
        decision: Decision,
    ) -> Outgoing:
        if decision.document is not None:
            document = decision.document
            if accepted:
                document["notifications"] = [{"id": note["id"]} for note in accepted]
            return answer(document)
        document = envelope(body, record, client, accepted)
        document["execute"] = {
            "mboxes": [
                {
                    "index": mbox["index"],
                    "name": mbox["name"],
                    "options": orjson.Fragment(shown.options_json),
                    "metrics": orjson.Fragment(shown.metrics_json),
                }
                for mbox, shown in zip(body["execute"]["mboxes"], decision.shown, strict=True)
            ]
        }
        return answer(document)


def envelope(
    body: dict[str, Any], record: SessionRecord, client: str, accepted: list[dict[str, Any]]
) -> dict[str, Any]:
    """A Delivery API answer with nothing executed: its request id, the client and the visitor's ids, and
    the notifications taken over."""
    document: dict[str, Any] = {
        "status": 200,
        "requestId": body.get("requestId") or str(uuid.uuid4()),
        "client": client,
        "id": client_ids(record, body.get("id")),
    }
    if accepted:
        document["notifications"] = [{"id": note["id"]} for note in accepted]
    return document


def delivery_context(body: dict[str, Any], section: str = "execute") -> str | None:
    """The cache context of a Delivery request that the cache may answer; None if it may not: only
    executed mboxes, no page load, no profile writes, orders or products, no trace, one set of mbox
    parameters for all. Of its ``prefetch`` section: the context its prefetched mboxes may fill the
    cache under, by the same rules."""
    part = body.get(section) or {}
    mboxes = part.get("mboxes") or []
    if not mboxes or (section == "execute" and part.get("pageLoad") is not None):
        return None
    skipped = UNCACHEABLE_DELIVERY_KEYS if section == "execute" else UNCACHEABLE_PREFETCH_KEYS
    if any(body.get(key) for key in skipped):
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
