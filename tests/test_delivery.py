"""Client -> gateway -> emulator for the single mbox, batch mbox and Delivery APIs."""

from __future__ import annotations

import uuid

import httpx
import pytest


def visitor() -> str:
    return f"v-{uuid.uuid4().hex[:12]}"


def requests_seen(emulator: httpx.Client) -> dict[str, int]:
    return emulator.get("/_emulator/stats").json()["requests"]


def test_single_mbox_with_supplied_session(gateway: httpx.Client, emulator: httpx.Client) -> None:
    answer = gateway.post("/rest/v1/mbox/my-session-1?client=demo", json={"mbox": "home-hero"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["sessionId"] == "my-session-1"
    assert "hero" in body["content"]
    assert "edgeHost" not in body
    assert "." not in body["tntId"], "the location suffix must not reach the client"
    # Upstream, the miss became one Delivery API call that also prefetched the visitor's other mboxes.
    assert requests_seen(emulator) == {"delivery": 1}


def test_single_mbox_gateway_supplies_and_keeps_the_session(gateway: httpx.Client) -> None:
    third_party = visitor()
    first = gateway.post("/rest/v1/mbox?client=demo", json={"mbox": "home-hero", "thirdPartyId": third_party})
    second = gateway.post("/rest/v1/mbox?client=demo", json={"mbox": "home-banner", "thirdPartyId": third_party})
    other = gateway.post("/rest/v1/mbox?client=demo", json={"mbox": "home-hero", "thirdPartyId": visitor()})
    assert first.status_code == second.status_code == other.status_code == 200
    assert first.json()["sessionId"] == second.json()["sessionId"]
    assert other.json()["sessionId"] != first.json()["sessionId"], "two visitors never share a session"


def test_anonymous_visitor_keeps_its_session_once_it_sends_the_minted_tnt_id(gateway: httpx.Client) -> None:
    first = gateway.post("/rest/v1/mbox?client=demo", json={"mbox": "home-hero"}).json()
    second = gateway.post("/rest/v1/mbox?client=demo", json={"mbox": "home-hero", "tntId": first["tntId"]}).json()
    assert second["sessionId"] == first["sessionId"]
    assert second["content"] == first["content"], "the same visitor keeps its experience"


def test_batch_mbox_is_forwarded_and_rewritten(gateway: httpx.Client, emulator: httpx.Client) -> None:
    body = {
        "client": "demo",
        "id": {"thirdPartyId": visitor()},
        "mboxes": [{"indexId": 0, "mbox": "home-hero"}],
        "prefetch": [{"indexId": 0, "mbox": "tv-rail-1"}],
    }
    answer = gateway.post("/rest/v2/batchmbox", json=body)
    assert answer.status_code == 200
    data = answer.json()
    assert "edgeHost" not in data
    assert "." not in data["id"]["tntId"]
    assert data["mboxResponses"][0]["mbox"] == "home-hero"
    assert data["prefetchResponses"][0]["eventTokens"]
    assert requests_seen(emulator) == {"batchmbox": 1}


def test_delivery_api_with_client_or_ims_org(gateway: httpx.Client, emulator: httpx.Client) -> None:
    request = {
        "id": {"thirdPartyId": visitor()},
        "context": {"channel": "web"},
        "execute": {"mboxes": [{"index": 0, "name": "home-hero"}]},
        "prefetch": {"mboxes": [{"index": 0, "name": "product-reco"}]},
    }
    by_client = gateway.post("/rest/v1/delivery?client=demo&sessionId=abc-1", json=request)
    by_org = gateway.post("/rest/v1/delivery?imsOrgId=ORG%40AdobeOrg&sessionId=abc-1", json=request)
    for answer in (by_client, by_org):
        assert answer.status_code == 200, answer.text
        data = answer.json()
        assert "edgeHost" not in data
        assert "." not in data["id"]["tntId"]
        assert data["execute"]["mboxes"][0]["options"][0]["content"]
        assert data["prefetch"]["mboxes"][0]["options"][0]["eventToken"]
    assert by_client.json()["id"]["tntId"] == by_org.json()["id"]["tntId"]
    assert requests_seen(emulator) == {"delivery": 2}


def test_delivery_without_session_gets_one_from_the_gateway(gateway: httpx.Client) -> None:
    request = {"id": {"thirdPartyId": visitor()}, "context": {"channel": "web"}, "execute": {"mboxes": []}}
    first = gateway.post("/rest/v1/delivery?client=demo", json=request)
    second = gateway.post("/rest/v1/delivery?client=demo", json=request)
    assert first.status_code == second.status_code == 200
    assert first.json()["id"]["tntId"] == second.json()["id"]["tntId"]


def test_affinity_makes_a_profile_write_visible_on_the_next_request(
    gateway: httpx.Client, emulator: httpx.Client
) -> None:
    """The emulator replicates profile writes between clusters only after a delay. Through the gateway
    every request of the visitor goes to the cluster that holds its profile, so the write is seen at
    once, even when the client changes its session ID (which would land it on another cluster)."""
    third_party = visitor()
    write = {"mbox": "home-banner", "thirdPartyId": third_party, "profileParameters": {"memberLevel": "gold"}}
    assert gateway.post("/rest/v1/mbox/s-one?client=demo", json=write).status_code == 200
    for session in ("s-two", "s-three", "s-four", "s-five"):
        read = gateway.post(
            f"/rest/v1/mbox/{session}?client=demo", json={"mbox": "home-banner", "thirdPartyId": third_party}
        )
        assert "Gold members" in read.json()["content"], f"lost affinity with session {session}"


def test_without_affinity_the_write_is_not_seen_at_once(emulator: httpx.Client) -> None:
    """Control for the test above: straight to the emulator, a new session lands on another cluster."""
    third_party = visitor()
    write = {"mbox": "home-banner", "thirdPartyId": third_party, "profileParameters": {"memberLevel": "gold"}}
    assert emulator.post("/rest/v1/mbox/s-one?client=demo", json=write).status_code == 200
    misses = 0
    for session in ("s-two", "s-three", "s-four", "s-five", "s-six", "s-seven"):
        read = emulator.post(
            f"/rest/v1/mbox/{session}?client=demo", json={"mbox": "home-banner", "thirdPartyId": third_party}
        )
        misses += "Gold members" not in read.json()["content"]
    assert misses > 0


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/rest/v1/mbox/s1?client=demo", {"mbox": "a<b"}, "mbox"),
        ("/rest/v1/mbox/s1?client=demo", {}, "mbox"),
        ("/rest/v1/mbox/s1", {"mbox": "home-hero"}, "client"),
        ("/rest/v1/mbox/s%20x?client=demo", {"mbox": "home-hero"}, "sessionId"),
        ("/rest/v2/batchmbox", {"client": "demo", "mboxes": [{"indexId": 0, "mbox": "m"}] * 51}, "mboxes"),
        ("/rest/v1/delivery?client=demo&sessionId=s1", {"execute": {}}, "context"),
    ],
)
def test_bad_input_is_refused_before_any_upstream_call(
    gateway: httpx.Client, emulator: httpx.Client, path: str, body: dict[str, object], field: str
) -> None:
    answer = gateway.post(path, json=body)
    assert answer.status_code == 400
    assert answer.json()["field"] == field
    assert answer.json()["status"] == 400
    assert requests_seen(emulator) == {}


def test_malformed_json_and_oversized_bodies(gateway: httpx.Client, emulator: httpx.Client) -> None:
    broken = gateway.post(
        "/rest/v1/mbox/s1?client=demo", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert broken.status_code == 400 and broken.json()["field"] == "body"
    huge = gateway.post("/rest/v1/mbox/s1?client=demo", content=b"x" * (2 * 1024 * 1024))
    assert huge.status_code == 413 and huge.json()["field"] == "body"
    assert requests_seen(emulator) == {}


def test_upstream_errors_pass_through_with_their_status(gateway: httpx.Client, emulator: httpx.Client) -> None:
    emulator.post("/_emulator/faults", json={"status": 503, "retry_after": 7}).raise_for_status()
    answer = gateway.post("/rest/v1/mbox/s1?client=demo", json={"mbox": "home-hero"})
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "7"
    assert answer.json()["status"] == 503


def test_outage_becomes_502_json(gateway: httpx.Client, emulator: httpx.Client) -> None:
    emulator.post("/_emulator/faults", json={"outage": True}).raise_for_status()
    answer = gateway.post("/rest/v1/mbox/s1?client=demo", json={"mbox": "home-hero"})
    assert answer.status_code == 502
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["status"] == 502
