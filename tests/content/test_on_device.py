"""The content service's on-device source (``proxy.content.on_device``) in this process, deciding from the
emulator's rules artifact: what it decides is counted by notifications queued before the answer, what it
prefetches fills the visitor's cache, and what only the edge knows is left to it (hybrid) or named
as the edge's (on-device)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest

from proxy.content.on_device import OnDevice
from proxy.content.visitors import VisitorIds
from proxy.gateway import Gateway, build_gateway
from proxy.settings import Settings

T = TypeVar("T")


class Origin:
    headers: dict[str, str] = {"user-agent": "on-device-test"}
    client_host: str | None = "127.0.0.1"


ORIGIN = Origin()


@pytest.fixture
def settings(gateway_settings: dict[str, Any], emulator_url: str) -> dict[str, Any]:
    return {
        **gateway_settings,
        "decisioning_method": "on-device",
        "decisioning_artifact": f"{emulator_url}/demo/production/v1/rules.json",
        "notification_max_delay_ms": 600_000,  # notifications stay queued, to be counted in the store
        "shutdown_grace_seconds": 0,
    }


def run(settings: dict[str, Any], scenario: Callable[[Gateway, OnDevice], Awaitable[T]]) -> T:
    async def started() -> T:
        gateway = build_gateway(Settings(**settings))
        await gateway.start()
        try:
            assert gateway.content.on_device is not None
            return await scenario(gateway, gateway.content.on_device)
        finally:
            await gateway.stop()

    return asyncio.run(started())


def request(visitor: str, kind: str, *names: str) -> dict[str, Any]:
    mboxes = [{"index": index, "name": name} for index, name in enumerate(names)]
    return {"id": {"tntId": visitor}, "context": {"channel": "web"}, kind: {"mboxes": mboxes}}


def decided(settings: dict[str, Any], kind: str, name: str) -> tuple[dict[str, Any] | None, int, Gateway]:
    """A new visitor's request of one mbox decided on device: the answer, how many notifications it queued,
    and the gateway (stopped), whose cache holds what it filled under the context ``ctx``."""

    async def scenario(gateway: Gateway, on_device: OnDevice) -> tuple[dict[str, Any] | None, int, Gateway]:
        visitor = uuid.uuid4().hex
        record = await gateway.content.visitor("demo", VisitorIds(tnt_id=visitor), None)
        queued = gateway.store.depth()
        answer = await on_device.decide(ORIGIN, record, "demo", request(visitor, kind, name), "ctx")
        return answer, gateway.store.depth() - queued, gateway

    return run(settings, scenario)


def decisions(emulator: httpx.Client) -> int:
    return int(emulator.get("/_emulator/stats").json()["decisions"])


def test_an_executed_mbox_is_decided_here_and_its_display_queued_before_the_answer(
    settings: dict[str, Any], emulator: httpx.Client
) -> None:
    asked_before = decisions(emulator)
    answer, queued, _ = decided(settings, "execute", "home-hero")
    assert answer is not None
    executed = answer["execute"]["mboxes"]
    assert [mbox["name"] for mbox in executed] == ["home-hero"] and executed[0]["options"]
    assert queued == 1, "the display of the executed mbox, queued durably"
    assert decisions(emulator) == asked_before, "the edge was not asked"


def test_what_is_prefetched_on_device_fills_the_visitors_cache(settings: dict[str, Any]) -> None:
    answer, queued, gateway = decided(settings, "prefetch", "home-hero")
    assert answer is not None and [mbox["name"] for mbox in answer["prefetch"]["mboxes"]] == ["home-hero"]
    visitor = f"demo|t|{answer['id']['tntId']}"
    assert gateway.cache.lookup("demo", visitor, "ctx", "home-hero") is not None
    assert gateway.cache.lookup("demo", visitor, "other", "home-hero") is None, "only under its context"
    assert queued == 0, "a prefetch is counted when it is shown, not when it is fetched"


def test_an_mbox_only_the_edge_can_decide_is_left_to_it_when_hybrid(settings: dict[str, Any]) -> None:
    assert decided({**settings, "decisioning_method": "hybrid"}, "execute", "home-banner")[:2] == (None, 0)
    # Deciding on device only, the answer is Adobe's engine's: partial, naming what only the edge decides.
    answer, queued, _ = decided(settings, "execute", "home-banner")
    assert answer is not None and answer["status"] == 206 and answer["remoteMboxes"] == ["home-banner"]
    assert queued == 0


def test_deciding_server_side_has_no_on_device_source(gateway_settings: dict[str, Any]) -> None:
    gateway = build_gateway(Settings(**gateway_settings))
    assert gateway.content.on_device is None
