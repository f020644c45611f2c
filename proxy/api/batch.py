"""The batch mbox API: ``POST /rest/v2/batchmbox``.

Notifications sent alone are taken over and delivered by the gateway; views the rules artifact can decide
are decided on device (with ``decisioning_method`` on-device or hybrid); anything else goes upstream as
it is, on the visitor's edge, with the edge and tntId learned from the answer.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from proxy.api import validation
from proxy.api.replies import CLICKED, answer, client_ids, take_over
from proxy.content import translate
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
        if self.content.on_device is not None and decidable(body):
            decided = await self.content.on_device.decide(incoming, record, client, batch_to_delivery(body))
            if decided is not None:
                incoming.cache = "on-device"
                incoming.visitor = record.visitor
                return answer(batch_answer(body, record, client, decided))
        restore_ids(body.get("id"), record)
        query = f"?{incoming.query_string}" if incoming.query_string else ""
        document = await self.content.call(incoming, record, client, f"/rest/v2/batchmbox{query}", body)
        self.content.learn(document, document.get("id"), record, client)
        return answer(document)


def decidable(body: dict[str, Any]) -> bool:
    """Whether the artifact may decide a batch: views only (no clicks, no notifications, no profile
    writes, orders or products, which only the edge takes)."""
    if body.get("notifications") or body.get("profileParameters"):
        return False
    entries = [*(body.get("mboxes") or ()), *(body.get("prefetch") or ())]
    return bool(entries) and not any(
        entry["mbox"].endswith(CLICKED) or entry.get("order") or entry.get("product") for entry in entries
    )


def batch_to_delivery(body: dict[str, Any]) -> dict[str, Any]:
    """The Delivery API request of a batch of views: its mboxes executed, its prefetch prefetched."""

    def entries(key: str) -> list[dict[str, Any]]:
        found = []
        for entry in body.get(key) or ():
            mbox: dict[str, Any] = {"index": entry["indexId"], "name": entry["mbox"]}
            if entry.get("parameters"):
                mbox["parameters"] = {str(k): str(v) for k, v in entry["parameters"].items()}
            found.append(mbox)
        return found

    request: dict[str, Any] = {"context": {"channel": "web"}}
    if body.get("id"):
        request["id"] = body["id"]
    if body.get("mboxes"):
        request["execute"] = {"mboxes": entries("mboxes")}
    if body.get("prefetch"):
        request["prefetch"] = {"mboxes": entries("prefetch")}
    return request


def batch_answer(body: dict[str, Any], record: Any, client: str, decided: dict[str, Any]) -> dict[str, Any]:
    """A Delivery answer decided on device, as the batch mbox API answers: each mbox's content (JSON
    offers as their text unless ``contentAsJson``), prefetched ones with their event tokens."""
    as_json = bool(body.get("contentAsJson"))
    result: dict[str, Any] = {
        "requestId": decided.get("requestId") or str(uuid.uuid4()),
        "client": client,
        "id": client_ids(record, body.get("id")),
        "contentAsJson": as_json,
    }

    def response(mbox: dict[str, Any], prefetched: bool) -> dict[str, Any]:
        options = mbox.get("options") or []
        found = {
            "indexId": mbox.get("index"),
            "mbox": mbox.get("name"),
            "content": translate.option_content(options, as_json),
        }
        tokens = [option["eventToken"] for option in options if option.get("eventToken")] if prefetched else []
        if tokens:
            found["eventTokens"] = tokens
        return found

    for mode, key in (("execute", "mboxResponses"), ("prefetch", "prefetchResponses")):
        mboxes = (decided.get(mode) or {}).get("mboxes") or []
        if mboxes:
            result[key] = [response(mbox, mode == "prefetch") for mbox in mboxes]
    return result


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
