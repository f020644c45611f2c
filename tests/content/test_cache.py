"""The content cache on its own: hits and misses, sliding expiry, bounds, purges, stale content."""

from __future__ import annotations

import orjson

from proxy.content.cache import CachedMbox, CacheLimits, InMemoryContentCache
from tests.inprocess import FakeClock

CONTENT = "x" * 300


def entry(name: str, content: str = CONTENT) -> CachedMbox:
    options = orjson.dumps([{"type": "html", "content": content}])
    return CachedMbox(name, options, b"[]", ("display-token-" + name,), ("click-token-" + name,), "state-" + name)


def cache(clock: FakeClock, **limits: float) -> InMemoryContentCache:
    settings = {"ttl_seconds": 1800, "max_entries": 1000, "max_bytes": 10_000_000, "stale_seconds": 600, **limits}
    return InMemoryContentCache(CacheLimits(**settings), clock=clock)  # type: ignore[arg-type]


def test_hits_only_in_the_context_the_content_was_decided_for() -> None:
    content = cache(FakeClock())
    content.fill("demo", "visitor-1", "context-a", [entry("hero"), entry("banner")])
    assert content.lookup("demo", "visitor-1", "context-a", "hero") is not None
    assert content.lookup("demo", "visitor-1", "context-a", "banner") is not None
    assert content.lookup("demo", "visitor-1", "context-b", "hero") is None
    assert content.lookup("demo", "visitor-1", "context-a", "unknown") is None
    assert content.lookup("demo", "visitor-2", "context-a", "hero") is None
    assert content.lookup("other", "visitor-1", "context-a", "hero") is None
    assert (content.counters.hits, content.counters.misses) == (2, 4)


def test_expiry_slides_with_every_hit() -> None:
    clock = FakeClock()
    content = cache(clock)
    content.fill("demo", "v", "c", [entry("hero")])
    for _ in range(3):
        clock.advance(1700)
        assert content.lookup("demo", "v", "c", "hero") is not None
    clock.advance(1801)
    assert content.lookup("demo", "v", "c", "hero") is None


def test_stale_content_outlives_expiry_for_a_while() -> None:
    clock = FakeClock()
    content = cache(clock)
    content.fill("demo", "v", "c", [entry("hero")])
    clock.advance(1800 + 300)
    assert content.lookup("demo", "v", "c", "hero") is None
    stale = content.stale("demo", "v", "hero")
    assert stale is not None and stale.display_tokens == ("display-token-hero",)
    clock.advance(301)
    assert content.stale("demo", "v", "hero") is None
    assert content.sweep() == 1
    assert content.visitors == 0 and content.entries == 0


def test_bounded_by_entries_when_100000_visitors_pass_through() -> None:
    content = cache(FakeClock(), max_entries=10_000, max_bytes=1 << 40)
    for n in range(100_000):
        content.fill("demo", f"visitor-{n}", "c", [entry("hero")])
    assert content.entries <= 10_000
    assert content.visitors <= 10_000
    assert content.counters.evictions >= 90_000
    # The most recent visitors stay, the oldest left first.
    assert content.lookup("demo", "visitor-99999", "c", "hero") is not None
    assert content.lookup("demo", "visitor-0", "c", "hero") is None


def test_bounded_by_bytes() -> None:
    content = cache(FakeClock(), max_entries=1_000_000, max_bytes=200_000)
    for n in range(2_000):
        content.fill("demo", f"visitor-{n}", "c", [entry("hero"), entry("banner")])
    assert 0 < content.bytes <= 200_000
    assert content.entries == 2 * content.visitors


def test_a_refill_replaces_the_visitors_content_and_its_accounting() -> None:
    content = cache(FakeClock())
    content.fill("demo", "v", "c1", [entry("hero"), entry("banner"), entry("reco")])
    content.fill("demo", "v", "c2", [entry("hero")])
    assert content.entries == 1
    assert content.lookup("demo", "v", "c1", "banner") is None
    assert content.lookup("demo", "v", "c2", "hero") is not None


def test_purges_by_visitor_mbox_client_and_all() -> None:
    content = cache(FakeClock())
    for visitor in ("a", "b"):
        content.fill("demo", visitor, "c", [entry("hero"), entry("banner")])
    content.fill("other", "a", "c", [entry("hero")])

    assert content.purge_visitor("demo", "a")
    assert content.lookup("demo", "a", "c", "hero") is None
    assert content.lookup("demo", "b", "c", "hero") is not None

    content.purge_mbox("demo", "hero")
    assert content.lookup("demo", "b", "c", "hero") is None
    assert content.lookup("demo", "b", "c", "banner") is not None
    assert content.lookup("other", "a", "c", "hero") is not None

    content.fill("demo", "b", "c", [entry("hero")])
    assert content.lookup("demo", "b", "c", "hero") is not None, "content fetched after a purge is fresh"

    content.purge_client("demo")
    assert content.lookup("demo", "b", "c", "hero") is None
    assert content.lookup("other", "a", "c", "hero") is not None

    content.purge_all()
    assert content.lookup("other", "a", "c", "hero") is None


def test_purged_content_is_not_served_stale_either() -> None:
    content = cache(FakeClock())
    content.fill("demo", "v", "c", [entry("hero"), entry("banner")])
    content.purge_mbox("demo", "hero")
    assert content.stale("demo", "v", "hero") is None
    assert content.stale("demo", "v", "banner") is not None
    content.purge_client("demo")
    assert content.stale("demo", "v", "banner") is None


def test_entry_size_accounts_for_content_and_tokens() -> None:
    small, large = entry("hero", "x"), entry("hero", "x" * 3000)
    assert large.size() - small.size() == 2999
