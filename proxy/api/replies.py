"""What the three wire APIs answer alike: JSON documents, the visitor's ids, notifications taken over."""

from __future__ import annotations

from typing import Any

import orjson

from proxy.content.service import ContentService
from proxy.content.sessions import SessionRecord
from proxy.http.errors import ApiError
from proxy.http.hotpath import Outgoing
from proxy.notifications.model import BacklogFull

CLICKED = "-clicked"


def answer(document: dict[str, Any]) -> Outgoing:
    return Outgoing(200, orjson.dumps(document))


def client_ids(record: SessionRecord, given: dict[str, Any] | None) -> dict[str, Any]:
    """The ``id`` object a client sees: its own ids, with the bare tntId the gateway knows."""
    ids = {k: v for k, v in (given or {}).items() if k != "tntId"}
    if record.tnt_id:
        ids = {"tntId": record.tnt_id, **ids}
    return ids


async def take_over(
    content: ContentService,
    record: SessionRecord,
    client: str,
    given_ids: dict[str, Any] | None,
    notes: list[dict[str, Any]],
) -> None:
    """The client's notifications, taken over for delivery; a 503 to send them again when there is no room."""
    try:
        await content.accept(record, client, given_ids, notes)
    except BacklogFull:
        raise ApiError(
            503,
            "too many notifications are waiting; send them again later",
            headers={"Retry-After": "30"},
        ) from None
