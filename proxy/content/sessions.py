"""Sessions and edge affinity, per visitor.

A visitor keeps one session ID for as long as it keeps calling (30 minutes after its last request,
sliding) and is never given another visitor's session. The record also holds the visitor's edge:
the ``edgeHost`` upstream answered and the location suffix of its tntId, so that every later request
goes to the cluster that holds the profile.

A record is stored under every id the visitor is known by (tntId, thirdPartyId, marketing cloud id),
so a visitor that first calls with a thirdPartyId and later adds its tntId stays on the same session.
"""

from __future__ import annotations

import re
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Protocol

from cachetools import LRUCache

EDGE_HOST = re.compile(r"^mboxedge\d{1,3}\.tt\.omtrdc\.net$")


class SessionRecord:
    __slots__ = ("edge_host", "keys", "last_seen", "location", "session_id", "tnt_id")

    def __init__(self, session_id: str, now: float) -> None:
        self.session_id = session_id
        self.edge_host: str | None = None
        self.location: str | None = None
        self.tnt_id: str | None = None  # without its location suffix
        self.last_seen = now
        self.keys: list[str] = []

    @property
    def visitor(self) -> str | None:
        """The visitor's key for the cache and the notification queue: the first id it was known by."""
        return self.keys[0] if self.keys else None


def new_session_id() -> str:
    return secrets.token_hex(16)


class SessionStore(Protocol):
    """Visitors' sessions: in this process's memory, or shared on Redis (``prepare`` brings a visitor's
    records in before ``resolve``; ``published`` waits until what changed is written). ``remote``: whether
    ``prepare`` has anything to bring in (False in memory, where the hot path skips the call)."""

    remote: bool

    async def prepare(self, keys: list[str], supplied_session: str | None, create: bool = True) -> None: ...

    async def published(self) -> None: ...

    def resolve(self, keys: list[str], supplied_session: str | None) -> SessionRecord: ...

    def find(self, keys: list[str]) -> SessionRecord | None: ...

    def link(self, record: SessionRecord, keys: Iterable[str]) -> None: ...

    def learn_edge(self, record: SessionRecord, edge_host: str | None, location: str | None) -> None: ...

    def forget(self, keys: Iterable[str]) -> int: ...

    def __len__(self) -> int: ...


class _Records(LRUCache[str, SessionRecord]):
    """Records by primary id; evicting one also drops the aliases that point at it."""

    def __init__(self, maxsize: int, aliases: dict[str, str]) -> None:
        super().__init__(maxsize)
        self.aliases = aliases
        self.evicted = 0

    def popitem(self) -> tuple[str, SessionRecord]:
        primary, record = super().popitem()
        self.evicted += 1
        drop_aliases(self.aliases, primary, record)
        return primary, record


def drop_aliases(aliases: dict[str, str], primary: str, record: SessionRecord) -> None:
    for key in record.keys:
        if aliases.get(key) == primary:
            del aliases[key]


class InMemorySessionStore:
    """Bounded by visitors (least recently used out first), expired by time on access and by sweep."""

    # Records shared with other gateways (proxy.content.redis_sessions) are brought into memory by prepare().
    record_type: type[SessionRecord] = SessionRecord
    remote = False

    def __init__(self, ttl_seconds: float, max_visitors: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl_seconds
        self.clock = clock
        self._aliases: dict[str, str] = {}
        self._records = _Records(max_visitors, self._aliases)
        self.created = 0

    def __len__(self) -> int:
        """Visitors with a session."""
        return len(self._records)

    @property
    def evicted(self) -> int:
        return self._records.evicted

    def _live(self, key: str, now: float) -> SessionRecord | None:
        primary = self._aliases.get(key)
        if primary is None:
            return None
        try:
            record = self._records[primary]  # (one call less than .get, on every view)
        except KeyError:
            self._aliases.pop(key, None)
            return None
        if now - record.last_seen > self.ttl:
            self._drop(primary, record)
            return None
        return record

    def _drop(self, primary: str, record: SessionRecord) -> None:
        self._records.pop(primary, None)
        drop_aliases(self._aliases, primary, record)

    def find(self, keys: list[str]) -> SessionRecord | None:
        """The visitor's live record, if any, without counting this as a visit."""
        return self._find(keys, self.clock())

    def _find(self, keys: list[str], now: float) -> SessionRecord | None:
        for key in keys:
            record = self._live(key, now)
            if record is not None:
                return record
        return None

    async def prepare(self, keys: list[str], supplied_session: str | None, create: bool = True) -> None:
        """Nothing to bring in: every record is in this process's memory."""

    async def published(self) -> None:
        """Nothing to write out."""

    def resolve(self, keys: list[str], supplied_session: str | None) -> SessionRecord:
        """The visitor's record, created with a new (or the supplied) session ID if there is none."""
        now = self.clock()
        record = self._find(keys, now)
        if record is None:
            record = self.record_type(supplied_session or new_session_id(), now)
            self.created += 1
        elif supplied_session and supplied_session != record.session_id:
            # The client manages its own session: honour it.
            record.session_id = supplied_session
        record.last_seen = now
        self.link(record, keys)
        return record

    def link(self, record: SessionRecord, keys: Iterable[str]) -> None:
        """Store the record under more ids (say the tntId upstream minted for an anonymous visitor)."""
        for key in keys:
            if key not in record.keys:
                record.keys.append(key)
        if not record.keys:
            return
        primary = record.keys[0]
        if primary not in self._records:
            self._records[primary] = record
        for key in record.keys:
            self._aliases[key] = primary

    def learn_edge(self, record: SessionRecord, edge_host: str | None, location: str | None) -> None:
        """Remember where upstream placed the visitor; only real edge host names are accepted."""
        if edge_host and EDGE_HOST.match(edge_host):
            record.edge_host = edge_host
        if location:
            record.location = location
            if record.edge_host is None:
                cluster = location.partition("_")[0]
                if cluster.isdigit():
                    record.edge_host = f"mboxedge{cluster}.tt.omtrdc.net"

    def forget(self, keys: Iterable[str]) -> int:
        """Drop the visitors known by any of these ids; returns how many were dropped."""
        forgotten = 0
        for key in keys:
            primary = self._aliases.get(key)
            record = self._records.get(primary) if primary else None
            if primary and record is not None:
                self._drop(primary, record)
                forgotten += 1
        return forgotten

    def sweep(self) -> int:
        """Drop expired records; returns how many visitors were dropped."""
        now = self.clock()
        expired = [(p, r) for p, r in list(self._records.items()) if now - r.last_seen > self.ttl]
        for primary, record in expired:
            self._drop(primary, record)
        return len(expired)


class SessionLimiter:
    """At most N requests of one session in flight upstream; Target answers 420 beyond 100."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._in_flight: Counter[str] = Counter()

    def acquire(self, session_id: str) -> bool:
        if self._in_flight[session_id] >= self.limit:
            return False
        self._in_flight[session_id] += 1
        return True

    def release(self, session_id: str) -> None:
        self._in_flight[session_id] -= 1
        if self._in_flight[session_id] <= 0:
            del self._in_flight[session_id]
