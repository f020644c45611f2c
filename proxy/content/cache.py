"""Per-visitor cache of prefetched content with its event tokens.

One visitor's entry holds every mbox prefetched for it in one upstream call, under the request context
they were decided for (mbox parameters, page, geo): a view in another context is a miss. Entries keep
their content as the JSON bytes upstream sent, so an entry for 300 bytes of content stays near 1 KB.

Bounded by visitor-mbox entries and by bytes (least recently used visitors leave first); expiring
with the visitor's session (sliding), but kept a while longer for stale-if-error. Invalidation is by
generation: bumping a client's or an mbox's generation makes every older entry a miss at once.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import orjson
from cachetools import LRUCache

from proxy.settings import Settings

# Fixed costs of the Python objects around each entry, measured with sys.getsizeof and tracemalloc.
ENTRY_OVERHEAD = 200
VISITOR_OVERHEAD = 400


class CachedMbox:
    """One prefetched mbox: its options (without event tokens), and the tokens to notify with.

    Everything is kept as a few compact bytes objects: an entry lives for a whole session among many
    others, and small objects scattered through memory cost more than their size.
    """

    __slots__ = ("events", "has_click", "has_display", "metrics_json", "name", "options_json")

    def __init__(
        self,
        name: str,
        options_json: bytes,
        metrics_json: bytes,
        display_tokens: tuple[str, ...],
        click_tokens: tuple[str, ...],
        state: str | None,
    ) -> None:
        self.name = sys.intern(name)
        self.options_json = options_json
        self.metrics_json = metrics_json
        self.events = bytes(memoryview(orjson.dumps([display_tokens, click_tokens, state])))
        self.has_display = bool(display_tokens)
        self.has_click = bool(click_tokens)

    def tokens(self, kind: str) -> tuple[list[str], str | None]:
        """The event tokens of a display or a click, and the mbox's state token."""
        display, click, state = orjson.loads(self.events)
        return (click if kind == "click" else display), state

    @property
    def display_tokens(self) -> tuple[str, ...]:
        return tuple(self.tokens("display")[0])

    @property
    def click_tokens(self) -> tuple[str, ...]:
        return tuple(self.tokens("click")[0])

    def size(self) -> int:
        return ENTRY_OVERHEAD + len(self.options_json) + len(self.metrics_json) + len(self.events)


@dataclass(slots=True)
class VisitorContent:
    context: str
    mboxes: dict[str, CachedMbox]
    expires_at: float
    generation: tuple[int, int]
    mbox_generations: dict[str, tuple[int, int]]
    size: int = field(default=0)

    def __post_init__(self) -> None:
        self.size = VISITOR_OVERHEAD + sum(entry.size() for entry in self.mboxes.values())


class ContentCache(Protocol):
    """Visitors' prefetched content: in this process's memory, or shared on Redis (``prepare`` brings a
    visitor's content in before ``lookup``; ``published`` waits until what changed is written). ``remote``:
    whether ``prepare`` has anything to bring in (False in memory, where the hot path skips the call)."""

    remote: bool

    async def prepare(self, client: str, visitor: str, context: str) -> None: ...

    async def published(self) -> None: ...

    def lookup(self, client: str, visitor: str, context: str, mbox: str) -> CachedMbox | None: ...

    def stale(self, client: str, visitor: str, mbox: str) -> CachedMbox | None: ...

    def fill(self, client: str, visitor: str, context: str, mboxes: Iterable[CachedMbox]) -> None: ...

    def purge_visitor(self, client: str, visitor: str) -> bool: ...

    def purge_mbox(self, client: str | None, mbox: str) -> None: ...

    def purge_client(self, client: str) -> None: ...

    def purge_all(self) -> None: ...


@dataclass(slots=True)
class CacheCounters:
    hits: int = 0
    misses: int = 0
    stale_served: int = 0
    evictions: int = 0
    purges_received: int = 0  # from the gateways sharing a Redis, this one's own included
    fills: int = 0


class _Visitors(LRUCache[tuple[str, str], VisitorContent]):
    def __init__(self, max_bytes: int, counters: CacheCounters, on_evict: Callable[[VisitorContent], None]) -> None:
        super().__init__(maxsize=max_bytes, getsizeof=lambda content: content.size)
        self.counters = counters
        self.on_evict = on_evict

    def popitem(self) -> tuple[tuple[str, str], VisitorContent]:
        key, content = super().popitem()
        self.counters.evictions += 1
        self.on_evict(content)
        return key, content


@dataclass(frozen=True, slots=True)
class CacheLimits:
    """How long content is fresh, how long it may serve while upstream fails, and how much is kept."""

    ttl_seconds: float
    max_entries: int
    max_bytes: int
    stale_seconds: float = 3600.0

    @classmethod
    def of(cls, settings: Settings) -> CacheLimits:
        return cls(
            ttl_seconds=settings.cache_ttl_seconds or settings.session_ttl_seconds,
            max_entries=settings.cache_max_entries,
            max_bytes=settings.cache_max_bytes,
            stale_seconds=settings.cache_stale_seconds,
        )


class InMemoryContentCache:
    # Content shared with other gateways (proxy.content.redis_cache) is brought into memory by prepare().
    remote = False

    def __init__(self, limits: CacheLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = limits.ttl_seconds
        self.stale_seconds = limits.stale_seconds
        self.max_entries = limits.max_entries
        self.clock = clock
        self.counters = CacheCounters()
        self.entries = 0
        self._visitors = _Visitors(limits.max_bytes, self.counters, self._forget)
        self._all_generation = 0
        self._generations: dict[str, int] = {}
        self._mbox_generations: dict[tuple[str | None, str], int] = {}

    def _forget(self, content: VisitorContent) -> None:
        self.entries -= len(content.mboxes)

    @property
    def bytes(self) -> int:
        return int(self._visitors.currsize)

    @property
    def visitors(self) -> int:
        return len(self._visitors)

    def _generation(self, client: str) -> tuple[int, int]:
        return self._all_generation, self._generations.get(client, 0)

    def _mbox_generation(self, client: str, mbox: str) -> tuple[int, int]:
        return self._mbox_generations.get((client, mbox), 0), self._mbox_generations.get((None, mbox), 0)

    def _current(self, client: str, content: VisitorContent, mbox: str) -> bool:
        """Whether no purge came since the content was cached: its generations are the current ones (those
        of ``_generation`` and ``_mbox_generation``, read here directly, as every view asks)."""
        if content.generation != (self._all_generation, self._generations.get(client, 0)):
            return False
        generations = self._mbox_generations
        current = (generations.get((client, mbox), 0), generations.get((None, mbox), 0))
        return content.mbox_generations.get(mbox) == current

    async def prepare(self, client: str, visitor: str, context: str) -> None:
        """Nothing to bring in: all content is in this process's memory."""

    async def published(self) -> None:
        """Purges take effect here at once: nothing to wait for."""

    def lookup(self, client: str, visitor: str, context: str, mbox: str) -> CachedMbox | None:
        """A fresh entry for this view, sliding the visitor's expiry; None is a miss."""
        try:
            content = self._visitors[(client, visitor)]  # (one call less than .get, on every view)
        except KeyError:
            content = None
        now = self.clock()
        if content is None or content.context != context or now > content.expires_at:
            self.counters.misses += 1
            return None
        entry = content.mboxes.get(mbox)
        if entry is None or not self._current(client, content, mbox):
            self.counters.misses += 1
            return None
        content.expires_at = now + self.ttl
        self.counters.hits += 1
        return entry

    def stale(self, client: str, visitor: str, mbox: str) -> CachedMbox | None:
        """Whatever the visitor last had for this mbox, in any context, for answering while upstream fails;
        never what a purge took away (purged content may be wrong, not only old)."""
        content = self._visitors.get((client, visitor))
        if content is None or self.clock() > content.expires_at + self.stale_seconds:
            return None
        entry = content.mboxes.get(mbox)
        if entry is not None and not self._current(client, content, mbox):
            return None
        if entry is not None:
            self.counters.stale_served += 1
        return entry

    def fill(self, client: str, visitor: str, context: str, mboxes: Iterable[CachedMbox]) -> None:
        entries = {entry.name: entry for entry in mboxes}
        if not entries:
            return
        content = VisitorContent(
            context=context,
            mboxes=entries,
            expires_at=self.clock() + self.ttl,
            generation=self._generation(client),
            mbox_generations={name: self._mbox_generation(client, name) for name in entries},
        )
        if self._store(client, visitor, content):
            self.counters.fills += 1

    def _store(self, client: str, visitor: str, content: VisitorContent) -> bool:
        """The visitor's content replaced, within the bounds; False if it is larger than the cache."""
        key = (client, visitor)
        previous = self._visitors.pop(key, None)
        if previous is not None:
            self._forget(previous)
        if content.size > self._visitors.maxsize:
            return False
        self._visitors[key] = content
        self.entries += len(content.mboxes)
        while self.entries > self.max_entries and len(self._visitors) > 1:
            self._visitors.popitem()
        return True

    def purge_visitor(self, client: str, visitor: str) -> bool:
        content = self._visitors.pop((client, visitor), None)
        if content is not None:
            self._forget(content)
        return content is not None

    def purge_mbox(self, client: str | None, mbox: str) -> None:
        """Make the mbox's entries misses, for one client or (None) for every client."""
        self._mbox_generations[(client, mbox)] = self._mbox_generations.get((client, mbox), 0) + 1

    def purge_client(self, client: str) -> None:
        self._generations[client] = self._generations.get(client, 0) + 1

    def purge_all(self) -> None:
        self._all_generation += 1

    def sweep(self) -> int:
        """Drop visitors whose content is past even its stale window; returns how many."""
        now = self.clock()
        dead = [key for key, c in list(self._visitors.items()) if now > c.expires_at + self.stale_seconds]
        for key in dead:
            content = self._visitors.pop(key, None)
            if content is not None:
                self._forget(content)
        return len(dead)
