"""The single mbox API: ``POST /rest/v1/mbox/{sessionId}?client=C`` and ``POST /rest/v1/mbox?client=C``.

A view is answered from the content service in the API's own shape (``content``, ``sessionId``, the
visitor's ids); traces, and clicks on content not cached, go to the single mbox API upstream as they are.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson

from proxy.api import checks, validation
from proxy.api.checks import FLAG
from proxy.api.replies import CLICKED, answer
from proxy.content import translate
from proxy.content.affinity import restore_ids, upstream_ids
from proxy.content.service import ContentService, Decision, Miss, View
from proxy.content.sessions import SessionRecord
from proxy.content.visitors import VisitorIds
from proxy.http.bodies import parse_json
from proxy.http.hotpath import HotPaths, Incoming, Outgoing


class SingleMbox:
    def __init__(self, content: ContentService) -> None:
        self.content = content

    def mount(self, paths: HotPaths) -> None:
        paths.prefix("/rest/v1/mbox/", self.view, "/rest/v1/mbox/{sessionId}")
        paths.exact("/rest/v1/mbox", self.view, "/rest/v1/mbox")

    async def view(self, incoming: Incoming) -> Outgoing:
        client = checks.client_code(incoming.query.get("client"))
        supplied = incoming.path_param
        if supplied is not None:
            checks.session_id(supplied)
        body = validation.single_mbox(parse_json(incoming.body))
        record = await self.content.visitor(client, VisitorIds.parse(body), supplied)
        incoming.visitor = record.visitor
        asked: str = body["mbox"]
        # Both flags are valid: the body was checked (an absent one is false).
        clicked = FLAG.check(body.get("clicked")) or asked.endswith(CLICKED)
        if FLAG.check(body.get("mboxTrace")):
            incoming.cache = "bypass"
            return await self.forward(incoming, body, record, client)
        name = asked.removesuffix(CLICKED)
        plain = not (body.get("profileParameters") or body.get("order"))
        view = View(
            client,
            record,
            [name],
            translate.single_context(body),
            given_ids=body,
            impression_id=(body.get("requestLocation") or {}).get("impressionId"),
            answerable=plain,
        )
        if clicked:
            decision = await self.content.from_cache(view, "click")
            incoming.cache = "hit" if decision else "bypass"
            return (
                self.render(body, record, decision) if decision else await self.forward(incoming, body, record, client)
            )
        self.content.asked(client, view.names)
        if plain:
            decision = await self.content.from_cache(view)
            if decision is not None:
                incoming.cache = "hit"
                return self.render(body, record, decision)
        if self.content.on_device is not None:
            # Decided on device when the artifact can: the view as a Delivery API request of its one mbox.
            request = translate.single_to_delivery(body, upstream_ids(record, body), [])
            decided = await self.content.on_device.decide(incoming, record, client, request)
            if decided is not None:
                incoming.cache = "on-device"
                incoming.visitor = record.visitor
                return self.render(body, record, Decision("on-device", [], decided))
        incoming.cache = "miss" if plain else "bypass"
        request = translate.single_to_delivery(body, upstream_ids(record, body), self.content.plan(client, [name]))
        miss = Miss(client, record, request, view.context, {"client": client})
        decision = await self.content.from_upstream(incoming, view, miss)
        if decision.source != "miss":
            incoming.cache = decision.source
        incoming.visitor = record.visitor
        return self.render(body, record, decision)

    async def forward(self, incoming: Incoming, body: dict[str, Any], record: SessionRecord, client: str) -> Outgoing:
        """The single mbox API itself, for what only it answers (traces, clicks on content not cached)."""
        restore_ids(body, record)
        path = f"/rest/v1/mbox/{quote(record.session_id, safe='')}?{incoming.query_string}"
        document = await self.content.call(incoming, record, client, path, body)
        self.content.learn(document, document, record, client)
        return answer(document)

    def render(self, body: dict[str, Any], record: SessionRecord, decision: Decision) -> Outgoing:
        if decision.document is not None:
            options = translate.executed_options(decision.document)
        else:
            options = orjson.loads(decision.shown[0].options_json)
        document: dict[str, Any] = {}
        # As upstream: a tntId is returned unless the view names a thirdPartyId (and no tntId).
        if record.tnt_id and (body.get("tntId") or not body.get("thirdPartyId")):
            document["tntId"] = record.tnt_id
        for key in ("thirdPartyId", "marketingCloudVisitorId"):
            if body.get(key):
                document[key] = body[key]
        document["content"] = translate.option_content(options)
        document["sessionId"] = record.session_id
        return answer(document)
