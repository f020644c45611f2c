"""The notifications' vocabulary, shared by the routes, the local log and the Redis stream: a new
notification, one handed to a call, the group one call may carry, and a full backlog."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson


class BacklogFull(Exception):
    """The store holds as many notifications as it may; new ones must wait."""


class Group(NamedTuple):
    """The notifications one upstream call may carry: one visitor, one session. (A tuple: it keys the
    store's index on every view, where a tuple's hash and equality cost least.)"""

    client: str
    visitor: str
    session_id: str


@dataclass(slots=True)
class Pending:
    """A notification handed to a call: what the call sends, and how to settle it."""

    seq: int
    id: str
    client: str
    visitor: str
    session_id: str
    edge_host: str | None
    ids_json: bytes
    payload_json: bytes
    created: float
    attempts: int

    @property
    def group(self) -> Group:
        return Group(self.client, self.visitor, self.session_id)

    @property
    def ids(self) -> dict[str, Any]:
        return orjson.loads(self.ids_json)

    @property
    def payload(self) -> dict[str, Any]:
        return orjson.loads(self.payload_json)
