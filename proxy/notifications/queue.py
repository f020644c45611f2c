"""What the gateway does with notifications: accept them, let them ride along, settle them."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any

from proxy.notifications.model import Group, Pending
from proxy.notifications.store import NotificationStore

RIDE_LEASE_S = 30.0


@dataclass(slots=True)
class Counters:
    accepted: int = 0
    flushed: int = 0
    ridden: int = 0
    failed: int = 0
    retried: int = 0
    dead_lettered: int = 0


class NotificationQueue:
    def __init__(self, store: NotificationStore, batch_size: int, counters: Counters | None = None) -> None:
        self.store = store
        self.batch_size = batch_size
        self.counters = counters if counters is not None else Counters()

    def add(
        self, group: Group, edge_host: str | None, ids: dict[str, Any], notes: Sequence[dict[str, Any]]
    ) -> Awaitable[None]:
        """Durably accept notifications for one visitor: done once they are written (raises BacklogFull
        when the store is full, taking none of them)."""
        written = self.store.add_group(group, edge_host, ids, notes)
        self.counters.accepted += len(notes)
        return written

    def ride(self, client: str, visitor: str, session_id: str) -> list[Pending]:
        """Lease the visitor's waiting notifications to a delivery call about to go upstream."""
        return self.store.claim(Group(client, visitor, session_id), self.batch_size, RIDE_LEASE_S, due_only=False)

    def settle_ride(self, riders: Sequence[Pending], answer: dict[str, Any] | None) -> None:
        """Acknowledge what the edge acknowledged; free the rest for the flusher."""
        if not riders:
            return
        acknowledged = {n.get("id") for n in (answer or {}).get("notifications") or []}
        done = [p for p in riders if p.id in acknowledged]
        self.store.ack(done)
        self.counters.ridden += len(done)
        rest = [p for p in riders if p.id not in acknowledged]
        if rest:
            self.store.release(rest)
