"""Shared by the notification tests: demo views through a gateway, what the emulator and the store
hold, and a stream of views that keeps going while a gateway is stopped or killed under it."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson

from proxy.notifications.log import stored
from proxy.notifications.model import Group
from proxy.notifications.store import NotificationStore
from tests.conftest import OPERATOR_KEY
from tests.support import Call

DEMO_MBOXES = ["home-hero", "home-banner", "product-reco", "kiosk-welcome", "tv-rail-1", "tv-rail-2", "checkout-promo"]
# Every miss prefetches the whole demo catalog, so a visitor's later views of any of it hit the cache.
PREFETCH_ALL = {"demo": DEMO_MBOXES}
OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}


@dataclass(frozen=True)
class Note:
    """A notification to write straight into a store, and whose it is."""

    client: str
    visitor: str
    session_id: str
    edge_host: str | None
    ids: dict[str, Any]
    payload: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.payload["id"])


async def put(store: NotificationStore, notes: Sequence[Note]) -> None:
    """Write notes as the queue writes a view's: each run of one visitor's notes under its group, in one
    turn of the loop; returns once they are written."""

    def key(note: Note) -> tuple[Group, str | None, bytes]:
        return Group(note.client, note.visitor, note.session_id), note.edge_host, orjson.dumps(note.ids)

    written = []
    for (group, edge, _), run in itertools.groupby(notes, key):
        run_notes = list(run)
        written.append(store.add_group(group, edge, run_notes[0].ids, [note.payload for note in run_notes]))
    await asyncio.gather(*written)


def new_visitor() -> str:
    return f"n-{uuid.uuid4().hex[:12]}"


def view(gateway: httpx.Client, visitor: str, mbox: str = "home-hero", **extra: Any) -> httpx.Response:
    return gateway.post("/rest/v1/mbox?client=demo", json={"mbox": mbox, "thirdPartyId": visitor, **extra})


def view_call(visitor: str, mbox: str = "home-hero") -> Call:
    """A view, for ``tests.support.post_concurrently``."""
    return Call("/rest/v1/mbox", {"mbox": mbox, "thirdPartyId": visitor}, params={"client": "demo"})


def stats(emulator: httpx.Client) -> dict[str, Any]:
    return emulator.get("/_emulator/stats").json()


def deliveries(emulator: httpx.Client) -> int:
    """Delivery API calls the emulator received (misses and notification flushes alike)."""
    return int(stats(emulator)["requests"].get("delivery", 0))


def queue_status(gateway: httpx.Client) -> dict[str, Any]:
    answer = gateway.get("/_proxy/queue", headers=OPERATOR)
    answer.raise_for_status()
    return answer.json()


def faults(emulator: httpx.Client, **settings: Any) -> None:
    emulator.post("/_emulator/faults", json=settings).raise_for_status()


def stored_ids(root: Path) -> list[str]:
    """Ids of the notifications waiting in a store's files, every process's under its root (read
    beside the processes that write them)."""
    return [str(record["p"]["id"]) for record in stored(root)]


def log_directories(root: Path) -> list[Path]:
    """The processes' log directories under a store's root: one per process that runs, or that is gone
    leaving notifications no other has adopted yet."""
    return sorted(path for path in root.glob("*-*") if path.is_dir()) if root.exists() else []


def dead_letters(path: Path) -> list[dict[str, Any]]:
    """The dead letters written so far: whole lines only (the gateway may be writing the next ones)."""
    if not path.exists():
        return []
    written = path.read_bytes()
    return [orjson.loads(line) for line in written[: written.rfind(b"\n") + 1].splitlines()]


def display_note(token: str, mbox: str = "home-hero", note_id: str | None = None) -> dict[str, Any]:
    """A Delivery API display notification, as a client would send it."""
    return {
        "id": note_id or uuid.uuid4().hex,
        "type": "display",
        "timestamp": int(time.time() * 1000),
        "tokens": [token],
        "mbox": {"name": mbox},
    }


def notifications_only(visitor: str, notes: list[dict[str, Any]]) -> dict[str, Any]:
    """A Delivery API request that carries notifications and nothing else."""
    return {"id": {"thirdPartyId": visitor}, "context": {"channel": "web"}, "notifications": notes}


class ViewStream:
    """Cache-served views (single mbox API) from a thread, ``concurrency`` at a time, round-robin over
    ``visitors`` x ``mboxes``, until ``total`` views or the first failure: a refused or broken
    connection ends the stream, as when the gateway goes away under it."""

    def __init__(
        self, base_url: str, visitors: Sequence[str], mboxes: Sequence[str], total: int, concurrency: int = 8
    ) -> None:
        self.base_url = base_url
        self.calls = [(visitors[i % len(visitors)], mboxes[(i // len(visitors)) % len(mboxes)]) for i in range(total)]
        self.concurrency = concurrency
        self.acknowledged = 0  # answered 200
        self.refused: list[int] = []  # answered another status
        self.broken = 0  # no answer: connection refused or cut (may or may not have been committed)
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def start(self) -> ViewStream:
        self._thread.start()
        return self

    def join(self, timeout: float = 30) -> ViewStream:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the stream of views did not end"
        return self

    async def _run(self) -> None:
        calls = iter(self.calls)
        stop = asyncio.Event()
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(self.base_url, timeout=timeout) as session:

            async def worker() -> None:
                for visitor, mbox in calls:
                    if stop.is_set():
                        return
                    try:
                        async with session.post(
                            "/rest/v1/mbox", params={"client": "demo"}, json={"mbox": mbox, "thirdPartyId": visitor}
                        ) as response:
                            await response.read()
                    except (TimeoutError, aiohttp.ClientError):
                        self.broken += 1
                        stop.set()
                        return
                    if response.status == 200:
                        self.acknowledged += 1
                    else:
                        self.refused.append(response.status)

            await asyncio.gather(*(worker() for _ in range(self.concurrency)))
