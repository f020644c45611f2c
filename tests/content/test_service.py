"""The content service (``proxy.content.service``) in this process, over a real emulator: views answered
from the cache, from one upstream call, and from what is left when upstream fails; no wire API involved."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import orjson
import pytest

from proxy.content.service import ContentService, Decision, Miss, View
from proxy.content.visitors import VisitorIds
from proxy.gateway import Gateway, build_gateway
from proxy.settings import Settings
from proxy.upstream import UpstreamRefused

T = TypeVar("T")


class Origin:
    headers: dict[str, str] = {"user-agent": "content-service-test"}
    client_host: str | None = "127.0.0.1"


ORIGIN = Origin()


def run(settings: dict[str, Any], scenario: Callable[[Gateway], Awaitable[T]]) -> T:
    async def started() -> T:
        gateway = build_gateway(Settings(**settings))
        await gateway.start()
        try:
            return await scenario(gateway)
        finally:
            await gateway.stop()

    return asyncio.run(started())


@pytest.fixture
def settings(gateway_settings: dict[str, Any]) -> dict[str, Any]:
    # Notifications stay queued, so that the test reads them in the store.
    return {**gateway_settings, "notification_max_delay_ms": 600_000, "shutdown_grace_seconds": 0}


def delivery_calls(emulator: httpx.Client) -> int:
    return int(emulator.get("/_emulator/stats").json()["requests"].get("delivery", 0))


async def view_of(content: ContentService, names: list[str], **options: Any) -> View:
    visitor = f"v-{uuid.uuid4().hex[:12]}"
    record = await content.visitor("demo", VisitorIds.parse({"thirdPartyId": visitor}), None)
    return View("demo", record, names, "-", given_ids={"thirdPartyId": visitor}, **options)


def miss_of(content: ContentService, view: View) -> Miss:
    request = {
        "context": {"channel": "web"},
        "execute": {"mboxes": [{"index": i, "name": name} for i, name in enumerate(view.names)]},
        "prefetch": {"mboxes": [{"index": i, "name": name} for i, name in enumerate(content.plan("demo", view.names))]},
    }
    return Miss("demo", view.record, request, view.context, {"client": "demo"})


async def shown(content: ContentService, view: View) -> Decision:
    decision = await content.from_cache(view)
    if decision is None:
        decision = await content.from_upstream(ORIGIN, view, miss_of(content, view))
    return decision


def html(decision: Decision) -> list[Any]:
    return [orjson.loads(s.options_json) for s in decision.shown]


def test_a_miss_fills_the_cache_and_the_next_view_is_a_hit_with_one_display_queued(
    settings: dict[str, Any], emulator: httpx.Client
) -> None:
    async def scenario(gateway: Gateway) -> tuple[Decision, Decision, int]:
        view = await view_of(gateway.content, ["home-hero", "home-banner"])
        first = await shown(gateway.content, view)
        queued = gateway.store.depth()
        second = await shown(gateway.content, view)
        return first, second, gateway.store.depth() - queued

    first, second, queued = run(settings, scenario)
    assert first.source == "miss" and first.document is not None and not first.shown
    assert second.source == "hit" and len(second.shown) == 2
    executed = {m["name"]: m["options"] for m in first.document["execute"]["mboxes"]}
    assert [options[0]["content"] for options in html(second)] == [
        executed["home-hero"][0]["content"],
        executed["home-banner"][0]["content"],
    ], "the cache shows what upstream decided"
    assert queued == 2, "one display notification per mbox shown from the cache"
    assert delivery_calls(emulator) == 1


def test_the_cache_answers_only_whole_views(settings: dict[str, Any], emulator: httpx.Client) -> None:
    async def scenario(gateway: Gateway) -> tuple[Decision | None, Decision | None, Decision | None]:
        view = await view_of(gateway.content, ["home-hero"])
        await shown(gateway.content, view)
        wider = View("demo", view.record, ["home-hero", "not-an-mbox-anyone-asked-for"], view.context)
        elsewhere = View("demo", view.record, ["home-hero"], "another-context")
        same = View("demo", view.record, ["home-hero"], view.context)
        content = gateway.content
        return await content.from_cache(wider), await content.from_cache(elsewhere), await content.from_cache(same)

    wider, elsewhere, same = run(settings, scenario)
    assert wider is None, "one mbox not cached: the whole view goes upstream"
    assert elsewhere is None, "content decided in one context does not answer another"
    assert same is not None and same.source == "hit"


def test_telemetry_rides_on_the_display_notification_of_a_hit(settings: dict[str, Any], emulator: httpx.Client) -> None:
    entries = [{"requestId": "r-1", "execution": 3.5}]

    async def scenario(gateway: Gateway) -> tuple[Decision | None, list[dict[str, Any]]]:
        view = await view_of(gateway.content, ["home-hero"])
        await shown(gateway.content, view)
        view.telemetry = entries
        hit = await gateway.content.from_cache(view)
        assert view.record.visitor is not None
        riders = gateway.queue.ride("demo", view.record.visitor, view.record.session_id)
        return hit, [orjson.loads(rider.payload_json) for rider in riders]

    hit, queued = run(settings, scenario)
    assert hit is not None and hit.source == "hit"
    assert [note.get("_telemetry") for note in queued] == [entries], "on the one notification the hit queued"


def test_clicks_are_answered_only_for_content_with_a_click_to_count(
    settings: dict[str, Any], emulator: httpx.Client
) -> None:
    async def scenario(gateway: Gateway) -> tuple[Decision | None, Decision | None, int]:
        view = await view_of(gateway.content, ["home-hero", "home-banner"])
        await shown(gateway.content, view)
        queued = gateway.store.depth()
        measured = View("demo", view.record, ["home-hero"], view.context)  # its activity counts clicks
        unmeasured = View("demo", view.record, ["home-banner"], view.context)
        clicked = await gateway.content.from_cache(measured, "click")
        not_counted = await gateway.content.from_cache(unmeasured, "click")
        return clicked, not_counted, gateway.store.depth() - queued

    clicked, not_counted, queued = run(settings, scenario)
    assert clicked is not None and not_counted is None, "no click metric: the click goes upstream"
    assert queued == 1, "a click on cached content is counted once"


def test_a_known_tnt_id_is_required_where_the_wire_api_answers_it(
    settings: dict[str, Any], emulator: httpx.Client
) -> None:
    async def scenario(gateway: Gateway) -> tuple[Decision | None, Decision | None]:
        view = await view_of(gateway.content, ["home-hero"], needs_tnt_id=True)
        await shown(gateway.content, view)
        with_id = await gateway.content.from_cache(view)
        view.record.tnt_id = None
        return with_id, await gateway.content.from_cache(view)

    with_id, without = run(settings, scenario)
    assert with_id is not None and without is None


def test_upstream_unavailable_serves_the_last_content_then_defaults_then_fails(
    settings: dict[str, Any], emulator: httpx.Client
) -> None:
    settings = {**settings, "default_content": {"home-banner": "<p>banner default</p>"}}

    async def scenario(gateway: Gateway) -> tuple[Decision, Decision, UpstreamRefused, int]:
        seen = await view_of(gateway.content, ["home-hero"])
        await shown(gateway.content, seen)
        emulator.post("/_emulator/faults", json={"status": 503}).raise_for_status()
        queued = gateway.store.depth()
        stale = await gateway.content.from_upstream(ORIGIN, seen, miss_of(gateway.content, seen))
        stale_queued = gateway.store.depth() - queued
        new = await view_of(gateway.content, ["home-banner"])
        default = await gateway.content.from_upstream(ORIGIN, new, miss_of(gateway.content, new))
        neither = await view_of(gateway.content, ["home-banner", "home-hero"])
        with pytest.raises(UpstreamRefused) as failed:
            await gateway.content.from_upstream(ORIGIN, neither, miss_of(gateway.content, neither))
        refused = View("demo", neither.record, ["home-banner"], "-", falls_back=False)
        with pytest.raises(UpstreamRefused):
            await gateway.content.from_upstream(ORIGIN, refused, miss_of(gateway.content, refused))
        return stale, default, failed.value, stale_queued

    stale, default, failure, stale_queued = run(settings, scenario)
    assert stale.source == "stale" and stale_queued == 1, "the stale view is counted as the hit it is"
    assert default.source == "default" and html(default) == [[{"type": "html", "content": "<p>banner default</p>"}]]
    assert failure.response.status == 503, "an mbox with neither content nor default: upstream's failure"


def test_identical_misses_in_flight_cost_one_call(settings: dict[str, Any], emulator: httpx.Client) -> None:
    emulator.post("/_emulator/faults", json={"latency_ms": 200}).raise_for_status()

    async def scenario(gateway: Gateway) -> list[str]:
        view = await view_of(gateway.content, ["home-hero"])
        decisions = await asyncio.gather(
            *(gateway.content.from_upstream(ORIGIN, view, miss_of(gateway.content, view)) for _ in range(4))
        )
        return sorted(d.source for d in decisions)

    assert run(settings, scenario) == ["coalesced", "coalesced", "coalesced", "miss"]
    assert delivery_calls(emulator) == 1


def test_a_view_that_the_cache_may_not_answer_goes_upstream_each_time(
    settings: dict[str, Any], emulator: httpx.Client
) -> None:
    async def scenario(gateway: Gateway) -> list[str]:
        view = await view_of(gateway.content, ["home-hero"], answerable=False)
        return [
            (await gateway.content.from_upstream(ORIGIN, view, miss_of(gateway.content, view))).source for _ in range(2)
        ]

    assert run(settings, scenario) == ["miss", "miss"]
    assert delivery_calls(emulator) == 2
