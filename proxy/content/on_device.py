"""A Delivery API request decided on device, from Target's rules artifact: one more source of the content
service (``proxy.content.service``), beside the cache and the edge."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from proxy.content import translate
from proxy.content.cache import ContentCache
from proxy.content.origin import Origin, visitor_address
from proxy.content.sessions import SessionRecord, SessionStore
from proxy.content.visitors import VisitorIds
from proxy.decisioning.geo import GeoLookup
from proxy.decisioning.local import LocalDecisions
from proxy.notifications import telemetry

# Takes a visitor's notifications over durably: (record, client, the ids it gave, notifications).
Accept = Callable[[SessionRecord, str, "dict[str, Any] | None", "list[dict[str, Any]]"], Awaitable[None]]


@dataclass
class OnDevice:
    """Decisions from the artifact, with the visitor's session, cache and notifications."""

    local: LocalDecisions
    geo: GeoLookup | None
    sessions: SessionStore
    cache: ContentCache
    accept: Accept

    async def decide(
        self,
        origin: Origin,
        record: SessionRecord,
        client: str,
        request: dict[str, Any],
        prefetch_context: str | None = None,
    ) -> dict[str, Any] | None:
        """The request's Delivery API answer (None: the edge decides it). What it executed is counted by
        its display notifications, queued durably before the answer, the first carrying the decision's
        telemetry; what it prefetched fills the visitor's cache under ``prefetch_context``, when there is
        one, as a miss's prefetch does."""
        plan = self.local.plan(request)
        if plan is None:
            return None
        if plan.artifact.geo_targeting and self.geo is not None and self.geo.needed(request):
            request = await self.geo.resolve(request, visitor_address(origin))
        given = request.get("id") or ({"tntId": record.tnt_id} if record.tnt_id else {})
        decided = self.local.decide(plan, client, {**request, "id": given}, record.session_id)
        answer = decided.response
        if record.visitor is None:  # a visitor first seen here: known from now on by the id decided for it
            tnt_id = VisitorIds.parse(answer["id"]).tnt_id
            if tnt_id:
                record.tnt_id = tnt_id
                self.sessions.link(record, VisitorIds(tnt_id=tnt_id).keys(client))
        if decided.notifications and record.visitor is not None:
            notes = decided.notifications
            telemetry.carry(notes, [telemetry.on_device_entry(answer, request)])
            await self.accept(record, client, given, notes)
        if prefetch_context is not None and record.visitor is not None and answer.get("prefetch"):
            self.cache.fill(client, record.visitor, prefetch_context, translate.cached_mboxes(answer))
            await self.cache.published()
        return answer
