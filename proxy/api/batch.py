"""The batch mbox API: ``POST /rest/v2/batchmbox``.

Notifications sent alone are taken over and delivered by the gateway; anything else goes upstream as it
is, on the visitor's edge, with the edge and tntId learned from the answer.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from proxy.api import validation
from proxy.api.replies import CLICKED, answer, client_ids, take_over
from proxy.content.affinity import restore_ids
from proxy.content.service import ContentService
from proxy.content.visitors import VisitorIds
from proxy.http.bodies import parse_json
from proxy.http.hotpath import HotPaths, Incoming, Outgoing


class BatchMbox:
    def __init__(self, content: ContentService) -> None:
        self.content = content

    def mount(self, paths: HotPaths) -> None:
        paths.exact("/rest/v2/batchmbox", self.batch, "/rest/v2/batchmbox")
        paths.exact("/rest/v2/batchmbox/", self.batch, "/rest/v2/batchmbox")

    async def batch(self, incoming: Incoming) -> Outgoing:
        body = validation.batch_mbox(parse_json(incoming.body))
        client = body["client"]
        record = await self.content.visitor(client, VisitorIds.parse(body.get("id")), None)
        incoming.visitor = record.visitor
        notes = body.get("notifications") or []
        if notes and record.visitor and not body.get("mboxes") and not body.get("prefetch"):
            # Notifications alone: the gateway takes them over and delivers them.
            await take_over(self.content, record, client, body.get("id"), [batch_notification(n) for n in notes])
            return answer({"requestId": str(uuid.uuid4()), "client": client, "id": client_ids(record, body.get("id"))})
        restore_ids(body.get("id"), record)
        query = f"?{incoming.query_string}" if incoming.query_string else ""
        document = await self.content.call(incoming, record, client, f"/rest/v2/batchmbox{query}", body)
        self.content.learn(document, document.get("id"), record, client)
        return answer(document)


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
