"""GET /_emulator/stats and POST /_emulator/reset: what is counted per route, and what a reset clears."""

from __future__ import annotations

import httpx
import pytest

from proxy.emulator.stats import BoundedSet, Stats
from tests.emulator.support import CLIENT, WEB, edge, mbox, now_ms, stats

M2 = f"/m2/{CLIENT}"


def call_every_route(client: httpx.Client) -> None:
    mbox(client, {"mbox": "home-hero", "thirdPartyId": "crm-s"}, cluster=28)
    client.post("/rest/v2/batchmbox", json={"client": CLIENT, "mboxes": [{"indexId": 0, "mbox": "home-hero"}]})
    client.post("/rest/v1/delivery", params={"client": CLIENT, "sessionId": "s"}, json={"context": WEB})
    client.post("/rest/v1/delivery", params={"imsOrgId": "O@AdobeOrg", "sessionId": "s"}, json={"context": WEB})
    client.get("/rest/v1/profiles/123-456", params={"client": CLIENT})
    client.get("/rest/v1/profiles/thirdPartyId/crm-s", params={"client": CLIENT}, headers=edge(28))
    client.get(f"{M2}/profile/update", params={"mbox3rdPartyId": "crm-s", "profile.a": "1"})
    client.post(f"{M2}/profile/update", data={"mbox3rdPartyId": "crm-s", "profile.a": "2"})
    batch = client.post(f"{M2}/v2/profile/batchUpdate", content="batch=pcId,a\n1-1,x\n")
    client.get(f"{M2}/v2/profile/batchStatus", params={"batchId": batch.text.split("<batchId>")[1].split("<")[0]})


def test_every_target_route_is_counted_by_name(emulator: httpx.Client) -> None:
    call_every_route(emulator)

    assert stats(emulator)["requests"] == {
        "mbox": 1,
        "batchmbox": 1,
        "delivery": 2,
        "profile": 1,
        "profile_third_party": 1,
        "profile_update": 2,
        "profile_batch_update": 1,
        "profile_batch_status": 1,
    }


def test_refused_requests_are_counted_too(emulator: httpx.Client) -> None:
    emulator.post("/rest/v1/mbox/s", params={"client": CLIENT}, json={})
    emulator.post("/rest/v1/delivery", params={"client": CLIENT}, json={"context": WEB})

    assert stats(emulator)["requests"] == {"mbox": 1, "delivery": 1}


def test_control_and_unknown_paths_are_not_counted(emulator: httpx.Client) -> None:
    emulator.get("/_emulator/stats")
    emulator.get("/_emulator/faults")
    emulator.post("/_emulator/faults", json={})
    assert emulator.get("/nowhere").status_code == 404

    assert stats(emulator)["requests"] == {}


def test_the_stats_document(emulator: httpx.Client) -> None:
    mbox(emulator, {"mbox": "home-hero", "tntId": "doc-visitor"})
    mbox(emulator, {"mbox": "home-hero", "tntId": "doc-visitor", "clicked": True})

    document = stats(emulator)

    assert set(document) == {
        "requests",
        "impressions",
        "decisions",
        "notifications",
        "tokens_issued",
        "telemetry",
        "activities",
    }
    assert document["telemetry"] == {"entries": 0}
    assert document["decisions"] == 2
    assert document["impressions"] == 1
    assert document["notifications"] == {"display": 0, "click": 0, "duplicates": 0}
    hero = document["activities"]["200001"]
    assert hero["impressions"] == 1 and hero["clicks"] == 1 and hero["conversions"] == 1
    assert sum(hero["experiences"].values()) == 1
    assert set(hero["experiences"]) <= {"0", "1"}


def test_a_reset_clears_counts_profiles_faults_and_seen_notifications(emulator: httpx.Client) -> None:
    answer = emulator.post(
        "/rest/v1/delivery",
        params={"client": CLIENT, "sessionId": "s"},
        json={
            "context": WEB,
            "id": {"tntId": "to-forget"},
            "prefetch": {"mboxes": [{"index": 0, "name": "home-hero"}]},
        },
    ).json()
    token = answer["prefetch"]["mboxes"][0]["options"][0]["eventToken"]
    note = {"id": "once", "type": "display", "timestamp": now_ms(), "tokens": [token]}
    send = {"context": WEB, "notifications": [note]}
    emulator.post("/rest/v1/delivery", params={"client": CLIENT, "sessionId": "s"}, json=send)
    emulator.post("/_emulator/faults", json={"latency_ms": 2000})

    assert emulator.post("/_emulator/reset").json() == {"reset": True}

    assert emulator.get("/_emulator/faults").json()["latency_ms"] == 0
    assert stats(emulator) == {
        "requests": {},
        "impressions": 0,
        "decisions": 0,
        "notifications": {"display": 0, "click": 0, "duplicates": 0},
        "tokens_issued": 0,
        "telemetry": {"entries": 0},
        "activities": {},
    }
    assert emulator.get("/rest/v1/profiles/to-forget", params={"client": CLIENT}).status_code == 404
    emulator.post("/rest/v1/delivery", params={"client": CLIENT, "sessionId": "s"}, json=send)
    assert stats(emulator)["notifications"] == {"display": 1, "click": 0, "duplicates": 0}


def test_the_bounded_set_forgets_the_oldest_keys() -> None:
    seen = BoundedSet(2)

    assert seen.add("a") and seen.add("b")
    assert not seen.add("a")
    assert seen.add("c")  # forgets "a"
    assert seen.add("a")
    assert not seen.add("c")


@pytest.mark.parametrize("impression_id", [None, ""])
def test_impressions_without_an_impression_id_always_count(impression_id: str | None) -> None:
    counted = Stats()

    for _ in range(3):
        assert counted.impression(1, 0, "v", impression_id)

    assert counted.impressions == 3
    assert counted.duplicates == 0


def test_impression_ids_are_per_visitor_and_activity() -> None:
    counted = Stats()

    assert counted.impression(1, 0, "v", "page")
    assert counted.impression(2, 0, "v", "page")
    assert counted.impression(1, 0, "w", "page")
    assert not counted.impression(1, 1, "v", "page")

    assert counted.impressions == 3
    assert counted.duplicates == 1
    assert counted.document()["activities"]["1"]["experiences"] == {"0": 2}
