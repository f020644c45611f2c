"""What notifications the edge refuses may cost: the refusal policy by itself, then the local flusher against
a loopback edge that refuses every made-up token (naming it, or not), then a gateway process on the
emulator taking one unauthenticated request after another full of made-up tokens."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from proxy.notifications.policy import settle
from proxy.notifications.refusals import RefusalPolicy
from proxy.upstream import UpstreamResponse
from tests.conftest import gateway_env
from tests.notifications.helpers import dead_letters, put, stats
from tests.notifications.test_flusher import ScriptedEdge, flushing, new_notes, refusing, store_root
from tests.servers import ServerProcess
from tests.support import wait_for

NAMING = orjson.dumps({"status": 400, "message": "notifications[2].tokens[0]: invalid event token"})
SILENT = orjson.dumps({"status": 400, "message": "invalid request"})


def narrow(policy: RefusalPolicy, sent: list[str], body: bytes, visitor: str = "demo:v") -> Any:
    """Narrow a batch the edge refused with ``body``, as the flushers do with what ``policy.settle`` read."""
    refused = settle(UpstreamResponse(400, {}, body))
    return asyncio.run(policy.narrow(sent, refused.reason, refused.named, visitor))


# --- the policy ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (NAMING, ("notifications[2].tokens[0]: invalid event token", 2)),
        (orjson.dumps({"message": "bad", "field": "notifications[7].timestamp"}), ("bad", 7)),
        (SILENT, ("invalid request", None)),
        (b"<html>oops</html>", ("upstream answered 400", None)),
        (b"[1]", ("upstream answered 400", None)),
        (orjson.dumps({"message": 5}), ("upstream answered 400", None)),
    ],
)
def test_the_edges_reason_and_the_notification_it_names(body: bytes, expected: tuple[str, int | None]) -> None:
    refused = settle(UpstreamResponse(400, {}, body))
    assert (refused.reason, refused.named) == expected


def test_a_named_notification_is_dropped_and_the_rest_sent_again() -> None:
    policy = RefusalPolicy(per_visitor=12, per_minute=120)
    narrowed = narrow(policy, ["a", "b", "c", "d"], NAMING)
    assert (narrowed.dead, narrowed.resend) == (["c"], [["a", "b", "d"]])
    assert (policy.counters.calls, policy.counters.isolated) == (1, 1)


def test_a_name_outside_the_call_is_no_name() -> None:
    narrowed = narrow(RefusalPolicy(12, 120), ["a", "b"], NAMING)
    assert (narrowed.dead, narrowed.resend) == ([], [["a"], ["b"]])


def test_an_unnamed_refusal_halves_and_a_single_one_is_dead_lettered() -> None:
    policy = RefusalPolicy(12, 120)
    assert narrow(policy, list("abcde"), SILENT).resend == [["a", "b"], ["c", "d", "e"]]
    single = narrow(policy, ["e"], SILENT)
    assert (single.dead, single.resend, single.reason) == (["e"], [], "invalid request")
    assert policy.counters.calls == 2


def test_past_the_visitors_budget_a_refused_batch_is_dead_lettered_whole() -> None:
    policy = RefusalPolicy(per_visitor=3, per_minute=120)
    assert narrow(policy, list("abcd"), SILENT).resend  # 2 calls
    assert narrow(policy, list("abcd"), NAMING).resend  # 1 call: 3 spent
    spent = narrow(policy, list("abcd"), NAMING)
    assert (spent.dead, spent.resend) == (list("abcd"), [])
    assert "budget" in spent.reason and spent.reason.startswith("notifications[2]")
    assert narrow(policy, list("abcd"), NAMING, visitor="demo:other").resend, "another visitor has its own"
    assert (policy.counters.calls, policy.counters.unnarrowed) == (4, 4)


def test_past_the_gateways_budget_every_visitor_is_dead_lettered_whole() -> None:
    policy = RefusalPolicy(per_visitor=12, per_minute=5)
    spent = [narrow(policy, list("abcd"), NAMING, visitor=f"demo:{i}").resend == [] for i in range(8)]
    assert spent == [False] * 5 + [True] * 3


def test_no_budget_means_no_narrowing() -> None:
    for policy in (RefusalPolicy(0, 120), RefusalPolicy(12, 0)):
        assert narrow(policy, list("ab"), NAMING).dead == ["a", "b"]


# --- the local flusher against a loopback edge -------------------------------------------------------------


@pytest.mark.parametrize("named", [True, False], ids=["named", "unnamed"])
def test_a_batch_of_made_up_tokens_costs_at_most_the_visitors_budget(tmp_path: Path, named: bool) -> None:
    """Every notification of the batch refused: 1 call, 12 spent narrowing, then the rest dead-lettered whole;
    every notification in the dead-letter file once, none lost."""
    edge = ScriptedEdge(refusing("made-up", named=named))

    async def scenario() -> None:
        async with edge.serving(), flushing(edge, tmp_path, per_visitor=12) as flusher:
            await put(flusher.store, new_notes(50, tokens={i: "made-up" for i in range(50)}))
            await flusher.flush(max_delay_s=0)
            assert flusher.store.depth() == 0
            assert flusher.counters.dead_lettered == 50
            assert flusher.refusals.counters.calls <= 12

    asyncio.run(scenario())
    assert len(edge.calls) <= 1 + 12
    letters = dead_letters(store_root(tmp_path) / "dead-letters.jsonl")
    assert sorted(letter["notification"]["id"] for letter in letters) == sorted(f"n{i}" for i in range(50))
    assert any("budget" in letter["reason"] for letter in letters)


def test_good_notifications_with_a_bad_one_are_all_delivered_within_the_budget(tmp_path: Path) -> None:
    edge = ScriptedEdge(refusing("bad", named=False))

    async def scenario() -> None:
        async with edge.serving(), flushing(edge, tmp_path, per_visitor=12) as flusher:
            await put(flusher.store, new_notes(50, tokens={37: "bad"}))
            await flusher.flush(max_delay_s=0)
            assert (flusher.counters.flushed, flusher.counters.dead_lettered) == (49, 1)

    asyncio.run(scenario())
    (letter,) = dead_letters(store_root(tmp_path) / "dead-letters.jsonl")
    assert letter["notification"]["id"] == "n37"


# --- a gateway process on the emulator ---------------------------------------------------------------------

PER_VISITOR = 12
PER_MINUTE = 40


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path]]:
    state = tmp_path_factory.mktemp("refusals")
    env = gateway_env(
        state,
        notification_max_delay_ms=200,
        notification_refusal_calls_per_visitor=PER_VISITOR,
        notification_refusal_calls_per_minute=PER_MINUTE,
        access_log=False,
    )
    server = ServerProcess(["serve", "--port", "0", "--emulator-port", "0"], env=env, cwd=state)
    server.start(expect=["gateway", "emulator"])
    yield server, state
    server.stop()


def made_up(count: int, visitor: str) -> dict[str, Any]:
    notes = [
        {"id": f"{visitor}-{i}", "type": "display", "timestamp": 1_700_000_000_000, "tokens": [f"made-up-{i}"]}
        for i in range(count)
    ]
    return {"id": {"thirdPartyId": visitor}, "context": {"channel": "web"}, "notifications": notes}


def test_made_up_tokens_cost_the_gateway_a_bounded_number_of_calls(gateway: tuple[ServerProcess, Path]) -> None:
    server, state = gateway
    with httpx.Client(base_url=server.urls["gateway"], timeout=10) as client:
        emulator = httpx.Client(base_url=server.urls["emulator"], timeout=10)
        emulator.post("/_emulator/reset")
        refused = client.post("/rest/v1/delivery?client=demo", json=made_up(101, "too-many"))
        assert refused.status_code == 400 and refused.json()["field"] == "notifications", refused.text
        requests = 6
        for _ in range(requests):
            answer = client.post("/rest/v1/delivery?client=demo", json=made_up(100, uuid.uuid4().hex))
            assert answer.status_code == 200, answer.text
            assert len(answer.json()["notifications"]) == 100  # acknowledged at once
        letters = state / "notifications" / "dead-letters.jsonl"
        wait_for(lambda: letters.exists() and len(dead_letters(letters)) == requests * 100, timeout=30)
        calls = stats(emulator)["requests"].get("delivery", 0)
        metrics = client.get("/metrics").text
        emulator.close()
    # Two calls carry each request's 100; narrowing spends at most the gateway's budget on all of them.
    assert calls <= requests * 2 + PER_MINUTE, calls
    assert 'target_proxy_notification_refusals_total{outcome="unnarrowed"}' in metrics
    ids = sorted(letter["notification"]["id"] for letter in dead_letters(letters))
    assert len(ids) == len(set(ids)) == requests * 100, "each refused notification dead-lettered once"
