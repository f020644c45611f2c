"""The Target Admin API through the gateway (client → gateway → emulator over loopback sockets): every
endpoint group, the gateway's credentials upstream, client keys, the allowlist of paths, batch with
dependencies and skips, and the cached content a change clears."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.admin.support import (
    AS_ACTIVATION,
    AS_ADMIN,
    AS_PROFILE,
    CLIENT_ID,
    TARGET,
    assert_error,
    calls,
    last_request,
    ok,
    raw_get,
)
from tests.gateways import OwnGateway, own_gateway

KIOSK_DEFAULT = "<h1>Welcome to the store</h1>"
HEROES = {
    '<div class="hero">Spring sale: 10% off everything</div>',
    '<div class="hero">Free shipping on orders over $50</div>',
}

# One GET per endpoint group, and a key its answer holds.
READS = [
    ("/activities", "activities"),
    ("/activities/ab/200001", "experiences"),
    ("/activities/xt/200002", "experiences"),
    ("/activities/200001/changelog", "activityChangelogs"),
    ("/activities/ab/200001/report/performance", "report"),
    ("/activities/ab/200001/report/orders", "orders"),
    ("/activities/ab/200001/orders/performance", "orders"),
    ("/offers", "offers"),
    ("/offers/content/400001", "content"),
    ("/offers/json/400020", "content"),
    ("/audiences", "audiences"),
    ("/audiences/1000001", "targetRule"),
    ("/mboxes", "mboxes"),
    ("/mbox/home-hero", "mboxParameters"),
    ("/profileattributes/mbox", "mboxProfileAttributes"),
    ("/environments", "environments"),
    ("/environments/8818", "name"),
]


def visitor() -> str:
    return f"admin-{uuid.uuid4().hex[:10]}"


def view(gw: OwnGateway, who: str, mbox: str) -> str:
    """One view of ``mbox`` by ``who`` through the gateway (cached after the visitor's first miss)."""
    answer = ok(gw.client.post("/rest/v1/mbox?client=demo", json={"mbox": mbox, "thirdPartyId": who}))
    return str(answer["content"])


def editable(document: dict[str, Any]) -> dict[str, Any]:
    """An item as answered, without the fields the API sets itself."""
    return {k: v for k, v in document.items() if k not in ("id", "type", "modifiedAt", "thirdPartyId")}


# --- every endpoint group ------------------------------------------------------------------------------------


def test_every_read_endpoint_is_passed_through(admin_gateway: OwnGateway, emulator: httpx.Client) -> None:
    for path, key in READS:
        answer = ok(admin_gateway.client.get(f"{TARGET}{path}", headers=AS_ADMIN))
        assert key in answer, (path, answer)
        assert last_request(emulator, "admin")["path"] == f"{TARGET}{path}"
    listed = admin_gateway.client.get(f"{TARGET}/offers", params={"type": "json", "limit": "1"}, headers=AS_ADMIN)
    assert [o["type"] for o in ok(listed)["offers"]] == ["json"]
    assert last_request(emulator, "admin")["query"] == "type=json&limit=1"
    assert calls(emulator)["admin"] == len(READS) + 1


def test_offers_are_created_read_updated_and_deleted(admin_gateway: OwnGateway) -> None:
    gw = admin_gateway.client
    created = ok(
        gw.post(f"{TARGET}/offers/content", json={"name": "gw offer", "content": "<p>v1</p>"}, headers=AS_ADMIN)
    )
    one = f"{TARGET}/offers/content/{created['id']}"

    updated = ok(gw.put(one, json={"name": "gw offer", "content": "<p>v2</p>"}, headers=AS_ADMIN))
    read = ok(gw.get(one, headers=AS_ADMIN))
    deleted = ok(gw.delete(one, headers=AS_ADMIN))
    gone = gw.get(one, headers=AS_ADMIN)
    json_offer = ok(gw.post(f"{TARGET}/offers/json", json={"name": "gw json", "content": {"a": 1}}, headers=AS_ADMIN))

    assert updated["content"] == read["content"] == "<p>v2</p>"
    assert deleted["id"] == created["id"]
    assert gone.status_code == 404, "upstream's answer, status and body, reaches the client"
    assert gone.json()["errors"][0]["errorCode"] == "NotFound"
    assert ok(gw.get(f"{TARGET}/offers/json/{json_offer['id']}", headers=AS_ADMIN))["content"] == {"a": 1}


def test_audiences_are_created_updated_and_deleted(admin_gateway: OwnGateway) -> None:
    gw = admin_gateway.client
    rule = {"profile": "plan", "equals": ["family"]}
    created = ok(gw.post(f"{TARGET}/audiences", json={"name": "Family plans", "targetRule": rule}, headers=AS_ADMIN))
    one = f"{TARGET}/audiences/{created['id']}"

    renamed = ok(gw.put(one, json={"name": "Family plan", "targetRule": rule}, headers=AS_ADMIN))
    refused = gw.post(f"{TARGET}/audiences", json={"name": "No rule"}, headers=AS_ADMIN)
    deleted = ok(gw.delete(one, headers=AS_ADMIN))

    assert renamed["name"] == "Family plan" and deleted["id"] == created["id"]
    assert refused.status_code == 400 and refused.json()["errors"][0]["errorCode"] == "BadRequest"
    assert gw.get(one, headers=AS_ADMIN).status_code == 404


def test_activities_are_created_changed_logged_reported_and_deleted(admin_gateway: OwnGateway) -> None:
    gw = admin_gateway.client
    activity = {
        "name": "Gateway promo",
        "state": "saved",
        "locations": {"mboxes": [{"locationLocalId": 0, "name": "gateway-promo"}]},
        "experiences": [
            {
                "experienceLocalId": 0,
                "name": "Only",
                "visitorPercentage": 100,
                "offerLocations": [{"locationLocalId": 0, "offerId": 400050}],
            }
        ],
    }
    created = gw.post(f"{TARGET}/activities/ab", json=activity, headers=AS_ADMIN)
    assert created.status_code == 201, created.text
    activity_id = created.json()["id"]

    renamed = ok(gw.put(f"{TARGET}/activities/ab/{activity_id}/name", json={"name": "Promo"}, headers=AS_ADMIN))
    approved = ok(gw.put(f"{TARGET}/activities/{activity_id}/state", json={"state": "approved"}, headers=AS_ADMIN))
    priority = ok(gw.put(f"{TARGET}/activities/ab/{activity_id}/priority", json={"priority": 7}, headers=AS_ADMIN))
    schedule = ok(
        gw.put(
            f"{TARGET}/activities/ab/{activity_id}/schedule",
            json={"startsAt": "2020-01-01T00:00:00Z", "endsAt": "2099-01-01T00:00:00Z"},
            headers=AS_ADMIN,
        )
    )
    changelog = ok(gw.get(f"{TARGET}/activities/{activity_id}/changelog", headers=AS_ADMIN))
    report = ok(gw.get(f"{TARGET}/activities/ab/{activity_id}/report/performance", headers=AS_ADMIN))
    deleted = ok(gw.delete(f"{TARGET}/activities/ab/{activity_id}", headers=AS_ADMIN))

    assert (renamed["name"], approved["state"], priority["priority"]) == ("Promo", "approved", 7)
    assert schedule["endsAt"] == "2099-01-01T00:00:00Z"
    assert changelog["total"] >= 4
    assert report["reportParameters"]["activityId"] == activity_id
    assert deleted["state"] == "deleted"
    assert gw.get(f"{TARGET}/activities/ab/{activity_id}", headers=AS_ADMIN).status_code == 404


# --- credentials and client keys -----------------------------------------------------------------------------


def test_upstream_gets_the_gateways_credentials_and_none_of_the_clients(
    admin_gateway: OwnGateway, emulator: httpx.Client
) -> None:
    client_headers = {**AS_ADMIN, "x-api-key": "client-supplied-key", "x-gw-ims-org-id": "CLIENT@AdobeOrg"}

    ok(admin_gateway.client.get(f"{TARGET}/offers", headers={**client_headers, "Host": "evil.example"}))

    received = last_request(emulator, "admin")["headers"]
    assert received["host"] == "mc.adobe.io", "the upstream host is the configured one, never the client's"
    assert received["x-api-key"] == CLIENT_ID
    assert received["authorization"].startswith("Bearer ") and AS_ADMIN["Authorization"] != received["authorization"]
    assert "x-gw-ims-org-id" not in received, "Target's Admin API takes no IMS org header"


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Basic YWRtaW46YWRtaW4="}, 401),
        ({"Authorization": "Bearer unknown-key-000000000000"}, 401),
        ({"Authorization": "Bearer"}, 401),
        (AS_PROFILE, 403),
        (AS_ACTIVATION, 403),
    ],
    ids=["no-key", "basic", "unknown-key", "empty-key", "profile-scope", "activation-scope"],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_client_without_the_admin_scope_is_refused_before_any_upstream_call(
    shared_admin_gateway: OwnGateway, emulator: httpx.Client, headers: dict[str, str], status: int, method: str
) -> None:
    response = shared_admin_gateway.client.request(
        method, f"{TARGET}/offers/content", json={"name": "x", "content": "y"}, headers=headers
    )

    assert_error(response, status)
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert calls(emulator) == {}, "neither IMS nor the Admin API was called"


def test_without_any_client_keys_configured_admin_calls_are_refused(
    admin_settings: dict[str, Any], emulator: httpx.Client
) -> None:
    with own_gateway(admin_settings, client_keys={}) as gw:
        assert_error(gw.client.get(f"{TARGET}/offers", headers=AS_ADMIN), 401, "unknown client key")
        assert_error(gw.client.get(f"{TARGET}/offers"), 401)
    assert calls(emulator) == {}


# --- only known paths, to the configured host ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "status"),
    [
        (f"{TARGET}/users", 404),
        (f"{TARGET}/activities/ab/abc", 404),
        (f"{TARGET}/offers/html/1", 404),
        ("/bad.tenant/target/offers", 400),
        (f"{TARGET}/offers/../activities", 400),
        (f"{TARGET}/offers/%2e%2e/activities", 400),
        (f"{TARGET}/offers%2Fcontent", 400),
        (f"{TARGET}/mbox/a%5Cb", 400),
        (f"{TARGET}/mbox/a\\b", 400),
        (f"{TARGET}//offers", 400),
        (f"{TARGET}/./offers", 400),
    ],
    ids=[
        "unknown-resource",
        "non-numeric-id",
        "unknown-offer-kind",
        "bad-tenant",
        "dot-dot",
        "encoded-dot-dot",
        "encoded-slash",
        "encoded-backslash",
        "backslash",
        "empty-segment",
        "dot",
    ],
)
def test_paths_outside_the_allowlist_are_refused_without_an_upstream_call(
    shared_admin_gateway: OwnGateway, emulator: httpx.Client, target: str, status: int
) -> None:
    answered, body = raw_get(shared_admin_gateway.url, target, AS_ADMIN)

    assert (answered, body["status"]) == (status, status), body
    assert calls(emulator) == {}


def test_an_absolute_request_target_still_goes_to_the_configured_host(
    admin_gateway: OwnGateway, emulator: httpx.Client
) -> None:
    answered, _ = raw_get(admin_gateway.url, f"http://evil.example:8443{TARGET}/environments", AS_ADMIN)

    assert answered == 200
    received = last_request(emulator, "admin")
    assert received["headers"]["host"] == "mc.adobe.io" and received["path"] == f"{TARGET}/environments"


@pytest.mark.parametrize(
    ("sent", "name"),
    [("..%252F..%252Foffers", "..%2F..%2Foffers"), ("x%2541%20y%3Fz%23w", "x%41 y?z#w"), ("caf%C3%A9", "café")],
    ids=["double-encoded-slash", "percent-space-query-fragment", "utf-8"],
)
def test_an_mbox_name_reaches_upstream_exactly_as_the_client_named_it(
    admin_gateway: OwnGateway, emulator: httpx.Client, sent: str, name: str
) -> None:
    answered, body = raw_get(admin_gateway.url, f"{TARGET}/mbox/{sent}", AS_ADMIN)

    assert answered == 404
    assert body["errors"][0]["message"] == f"mbox {name} not found"
    assert last_request(emulator, "admin")["path"] == f"{TARGET}/mbox/{name}"


# --- batch ---------------------------------------------------------------------------------------------------


def op(operation_id: int, method: str, url: str, body: Any = None, **extra: Any) -> dict[str, Any]:
    operation = {"operationId": operation_id, "method": method, "relativeUrl": url, **extra}
    if body is not None:
        operation["body"] = body
    return operation


def test_a_batch_runs_dependent_operations_and_skips_those_whose_prerequisite_failed(
    admin_gateway: OwnGateway, emulator: httpx.Client
) -> None:
    operations = [
        op(1, "POST", "/target/offers/content", {"name": "batch offer", "content": "<p>batched</p>"}),
        op(2, "GET", "/target/offers/content/{operationIdResponse:1}", dependsOnOperationIds=[1]),
        op(3, "PUT", "/target/offers/content/999999", {"name": "missing", "content": "x"}),
        op(4, "GET", "/target/offers/content/400001", dependsOnOperationIds=[3]),
        op(5, "DELETE", "/target/offers/content/400001", dependsOnOperationIds=[4]),
        op(6, "GET", "/target/environments"),
    ]

    answer = ok(admin_gateway.client.post(f"{TARGET}/batch", json={"operations": operations}, headers=AS_ADMIN))

    results = {r["operationId"]: r for r in answer["results"]}
    assert results[1]["statusCode"] == 200 and not results[1]["skipped"]
    assert results[2]["statusCode"] == 200 and results[2]["body"]["content"] == "<p>batched</p>"
    assert results[3]["statusCode"] == 404
    assert results[4] == {"operationId": 4, "skipped": True}
    assert results[5] == {"operationId": 5, "skipped": True}, "skips reach the dependants of a skipped one"
    assert results[6]["statusCode"] == 200
    assert ok(admin_gateway.client.get(f"{TARGET}/offers/content/400001", headers=AS_ADMIN))["id"] == 400001
    assert calls(emulator)["admin"] == 2


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"operations": []},
        {"operations": "all"},
        {"operations": [op(n, "GET", "/target/offers") for n in range(257)]},
    ],
    ids=["no-operations", "empty", "not-a-list", "257-operations"],
)
def test_a_malformed_batch_is_refused_before_any_upstream_call(
    admin_gateway: OwnGateway, emulator: httpx.Client, body: dict[str, Any]
) -> None:
    assert_error(admin_gateway.client.post(f"{TARGET}/batch", json=body, headers=AS_ADMIN), 400)
    assert_error(admin_gateway.client.post(f"{TARGET}/batch", content=b"operations", headers=AS_ADMIN), 400, "batch")
    assert calls(emulator) == {}


# --- cached content --------------------------------------------------------------------------------------------


def test_after_an_offer_update_the_next_view_shows_the_new_content(
    admin_gateway: OwnGateway, emulator: httpx.Client
) -> None:
    who = visitor()
    assert view(admin_gateway, who, "kiosk-welcome") == KIOSK_DEFAULT
    assert view(admin_gateway, who, "kiosk-welcome") == KIOSK_DEFAULT
    assert admin_gateway.parts.cache.counters.hits == 1 and calls(emulator)["delivery"] == 1, "served from cache"

    new = "<h1>Welcome back</h1>"
    offer = f"{TARGET}/offers/content/400030"
    ok(admin_gateway.client.put(offer, json={"name": "kiosk-welcome", "content": new}, headers=AS_ADMIN))

    assert view(admin_gateway, who, "kiosk-welcome") == new
    assert view(admin_gateway, who, "kiosk-welcome") == new
    assert calls(emulator)["delivery"] == 2, "one miss after the change, then the cache again"


def test_a_failed_change_keeps_the_cache(admin_gateway: OwnGateway, emulator: httpx.Client) -> None:
    who = visitor()
    view(admin_gateway, who, "kiosk-welcome")

    missing = admin_gateway.client.put(
        f"{TARGET}/offers/content/999999", json={"name": "x", "content": "y"}, headers=AS_ADMIN
    )

    assert missing.status_code == 404
    assert view(admin_gateway, who, "kiosk-welcome") == KIOSK_DEFAULT
    assert calls(emulator)["delivery"] == 1


def test_an_activity_moved_to_another_mbox_no_longer_shows_on_the_old_one(
    admin_gateway: OwnGateway, emulator: httpx.Client
) -> None:
    who = visitor()
    assert view(admin_gateway, who, "home-hero") in HEROES
    assert view(admin_gateway, who, "home-hero") in HEROES
    activity = editable(ok(admin_gateway.client.get(f"{TARGET}/activities/ab/200001", headers=AS_ADMIN)))
    activity["locations"]["mboxes"][0]["name"] = "home-hero-next"

    ok(admin_gateway.client.put(f"{TARGET}/activities/ab/200001", json=activity, headers=AS_ADMIN))

    assert view(admin_gateway, who, "home-hero") == ""
    assert view(admin_gateway, who, "home-hero-next") in HEROES


def test_a_new_activity_clears_only_its_own_mboxes(admin_gateway: OwnGateway, emulator: httpx.Client) -> None:
    who = visitor()
    view(admin_gateway, who, "kiosk-welcome")
    view(admin_gateway, who, "checkout-promo")
    activity = {
        "name": "Kiosk takeover",
        "state": "approved",
        "priority": 999,
        "locations": {"mboxes": [{"locationLocalId": 0, "name": "kiosk-welcome"}]},
        "experiences": [
            {
                "experienceLocalId": 0,
                "name": "Only",
                "visitorPercentage": 100,
                "offerLocations": [{"locationLocalId": 0, "offerId": 400060}],
            }
        ],
    }
    hits = admin_gateway.parts.cache.counters.hits

    assert admin_gateway.client.post(f"{TARGET}/activities/ab", json=activity, headers=AS_ADMIN).status_code == 201

    view(admin_gateway, who, "checkout-promo")
    assert admin_gateway.parts.cache.counters.hits == hits + 1, "the other mbox is still served from cache"
    assert view(admin_gateway, who, "kiosk-welcome") == "<div>Sale pages get a sale ribbon</div>"


def test_a_batch_that_changes_an_offer_clears_the_cache(admin_gateway: OwnGateway) -> None:
    who = visitor()
    view(admin_gateway, who, "kiosk-welcome")
    change = op(0, "PUT", "/target/offers/content/400030", {"name": "kiosk-welcome", "content": "<h1>Batched</h1>"})

    ok(admin_gateway.client.post(f"{TARGET}/batch", json={"operations": [change]}, headers=AS_ADMIN))

    assert view(admin_gateway, who, "kiosk-welcome") == "<h1>Batched</h1>"


def test_a_change_left_unanswered_clears_the_cache_all_the_same(
    admin_settings: dict[str, Any], emulator: httpx.Client
) -> None:
    """Upstream may have made a change whose answer never came (a timeout): the cache cannot trust itself."""
    with own_gateway(admin_settings, upstream_timeout_ms=300, upstream_retries=0) as gw:
        who = visitor()
        view(gw, who, "kiosk-welcome")
        ok(gw.client.get(f"{TARGET}/environments", headers=AS_ADMIN))  # the token is in hand
        ok(emulator.post("/_emulator/faults", json={"latency_ms": 600}))
        change = gw.client.put(
            f"{TARGET}/offers/content/400030", json={"name": "kiosk-welcome", "content": "<h1>?</h1>"}, headers=AS_ADMIN
        )
        ok(emulator.post("/_emulator/faults", json={}))
        hits = gw.parts.cache.counters.hits

        view(gw, who, "kiosk-welcome")

        assert_error(change, 504, "did not answer within 300 ms")
        assert gw.parts.cache.counters.hits == hits, "the view went upstream"
