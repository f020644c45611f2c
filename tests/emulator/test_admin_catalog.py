"""Target Admin API offers, audiences, mboxes, mbox parameters, profile attributes and environments; offer
and audience changes change what delivery answers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.emulator.support import (
    RECO,
    TENANT,
    admin_headers,
    assert_admin_error,
    delivery,
    mbox,
    ok,
)

TARGET = f"/{TENANT}/target"
COUPON_OFFER = f"{TARGET}/offers/content/400050"
GOLD_BANNER = '<div class="banner">Gold members: early access</div>'
DEFAULT_BANNER = '<div class="banner">Welcome!</div>'


@pytest.fixture
def headers(emulator: httpx.Client) -> dict[str, str]:
    return admin_headers(emulator)


def shown(client: httpx.Client, name: str, visitor: str = "catalog-visitor") -> list[Any]:
    answer = delivery(client, {"id": {"tntId": visitor}, "execute": {"mboxes": [{"index": 0, "name": name}]}})
    return [option["content"] for option in answer["execute"]["mboxes"][0]["options"]]


# --- offers -----------------------------------------------------------------------------------------------


def test_an_updated_offer_is_what_the_next_delivery_shows(emulator: httpx.Client, headers: dict) -> None:
    assert shown(emulator, "checkout-promo") == ["<p>Use 5OFF for $5 off</p>"]

    updated = ok(
        emulator.put(COUPON_OFFER, json={"name": "checkout-coupon", "content": "<p>10OFF</p>"}, headers=headers)
    )

    assert set(updated) == {"id", "name", "content", "modifiedAt"}
    assert updated["content"] == "<p>10OFF</p>"
    assert shown(emulator, "checkout-promo") == ["<p>10OFF</p>"]
    assert ok(emulator.get(COUPON_OFFER, headers=headers)) == updated


def test_a_json_offer_update_reaches_delivery_as_json(emulator: httpx.Client, headers: dict) -> None:
    assert shown(emulator, "product-reco") == [RECO]
    content = {"layout": "carousel", "items": ["sku-9"]}

    ok(emulator.put(f"{TARGET}/offers/json/400020", json={"name": "reco-json", "content": content}, headers=headers))

    assert shown(emulator, "product-reco") == [content]


def test_offers_are_listed_created_and_deleted(emulator: httpx.Client, headers: dict) -> None:
    created = ok(
        emulator.post(f"{TARGET}/offers/content", json={"name": "fresh", "content": "<i>new</i>"}, headers=headers)
    )
    json_offer = ok(emulator.post(f"{TARGET}/offers/json", json={"name": "data", "content": {"a": 1}}, headers=headers))

    listed = ok(emulator.get(f"{TARGET}/offers", params={"sortBy": "-id", "limit": "2"}, headers=headers))
    only_json = ok(emulator.get(f"{TARGET}/offers", params={"type": "json"}, headers=headers))
    deleted = ok(emulator.delete(f"{TARGET}/offers/content/{created['id']}", headers=headers))

    assert (created["id"], json_offer["id"]) == (400061, 400062)
    assert listed["total"] == 14 and [o["id"] for o in listed["offers"]] == [400062, 400061]
    assert listed["offers"][0] == {"id": 400062, "name": "data", "type": "json", "modifiedAt": json_offer["modifiedAt"]}
    assert [o["id"] for o in only_json["offers"]] == [400020, 400040, 400041, 400062]
    assert deleted == created
    assert_admin_error(emulator.get(f"{TARGET}/offers/content/{created['id']}", headers=headers), 404)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("content", {"content": "<p/>"}, "name"),
        ("content", {"name": "x", "content": {"not": "text"}}, "content"),
        ("content", {"name": "x"}, "content"),
        ("json", {"name": "x", "content": "text"}, "content"),
        ("json", {"name": "x", "content": [1, 2]}, "content"),
        ("content", {"name": "x" * 251, "content": ""}, "name"),
    ],
)
def test_invalid_offers_are_refused(emulator: httpx.Client, headers: dict, path: str, body: dict, field: str) -> None:
    error = assert_admin_error(emulator.post(f"{TARGET}/offers/{path}", json=body, headers=headers), 400)

    assert error["meta"] == {"field": field}


def test_offer_kinds_and_use_are_respected(emulator: httpx.Client, headers: dict) -> None:
    assert_admin_error(emulator.get(f"{TARGET}/offers/content/400020", headers=headers), 404)
    assert_admin_error(
        emulator.put(f"{TARGET}/offers/json/400001", json={"name": "x", "content": {}}, headers=headers), 404
    )
    in_use = assert_admin_error(emulator.delete(COUPON_OFFER, headers=headers), 400)
    assert "used by activity 200006" in in_use["message"]


# --- audiences --------------------------------------------------------------------------------------------


def test_the_audience_list_puts_offset_first(emulator: httpx.Client, headers: dict) -> None:
    answer = ok(emulator.get(f"{TARGET}/audiences", params={"name": "gold"}, headers=headers))

    assert list(answer) == ["offset", "total", "limit", "audiences"]
    assert answer["audiences"] == [
        {
            "id": 1000001,
            "name": "Gold members",
            "description": "",
            "origin": "target",
            "modifiedAt": answer["audiences"][0]["modifiedAt"],
        }
    ]


def test_an_audience_is_created_read_and_deleted(emulator: httpx.Client, headers: dict) -> None:
    rule = {
        "and": [{"page": "url", "equals": ["http://www.myhomepage.com/"]}, {"geo": "region", "matches": ["california"]}]
    }
    created = ok(
        emulator.post(
            f"{TARGET}/audiences",
            json={"name": "Homepage visitors from California", "description": "mine", "targetRule": rule},
            headers=headers,
        )
    )

    assert created["id"] == 1000006 and created["origin"] == "target" and created["targetRule"] == rule
    assert ok(emulator.get(f"{TARGET}/audiences/1000006", headers=headers)) == created
    assert ok(emulator.delete(f"{TARGET}/audiences/1000006", headers=headers)) == created
    assert_admin_error(emulator.get(f"{TARGET}/audiences/1000006", headers=headers), 404)


def test_an_audience_rule_change_retargets_delivery(emulator: httpx.Client, headers: dict) -> None:
    mbox(emulator, {"mbox": "home-banner", "tntId": "member", "profileParameters": {"memberLevel": "gold"}})
    before = shown(emulator, "home-banner", "member")
    platinum = {"name": "Gold members", "targetRule": {"profile": "memberLevel", "equals": ["platinum"]}}

    ok(emulator.put(f"{TARGET}/audiences/1000001", json=platinum, headers=headers))

    assert before == [GOLD_BANNER]
    assert shown(emulator, "home-banner", "member") == [DEFAULT_BANNER]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"name": "California", "targetRule": {"geo": "city", "equals": ["x"]}}, "name", "already has the name"),
        ({"name": "california", "targetRule": {"geo": "city", "equals": ["x"]}}, "name", "already has the name"),
        (
            {"name": "Both", "targetRule": {"geo": "city", "equals": ["x"]}, "audienceRule": [1000001]},
            "targetRule",
            "cannot be combined",
        ),
        ({"name": "Neither"}, "targetRule", "needs a targetRule or an audienceRule"),
        ({"name": "Odd", "targetRule": {"weather": "sky", "equals": ["blue"]}}, "targetRule", "exactly one of"),
        ({"name": "Odd", "targetRule": {"profile": "x", "resembles": ["y"]}}, "targetRule", "exactly one operator"),
        ({"name": "Odd", "targetRule": {"and": []}}, "targetRule", "non-empty array"),
        ({"name": "Ghost", "audienceRule": {"or": [1000001, 42]}}, "audienceRule", "audience 42 does not exist"),
        ({"name": "Odd", "audienceRule": {"xor": [1000001]}}, "audienceRule", "and, or, not"),
        ({"targetRule": {"geo": "city", "equals": ["x"]}}, "name", "may not be null"),
    ],
    ids=[
        "duplicate",
        "duplicate-case",
        "both",
        "neither",
        "source",
        "operator",
        "empty-and",
        "unknown-id",
        "combinator",
        "no-name",
    ],
)
def test_invalid_audiences_are_refused(
    emulator: httpx.Client, headers: dict, body: dict, field: str, words: str
) -> None:
    error = assert_admin_error(emulator.post(f"{TARGET}/audiences", json=body, headers=headers), 400)

    assert error["meta"] == {"field": field}
    assert words in error["message"]
    assert ok(emulator.get(f"{TARGET}/audiences", headers=headers))["total"] == 5


def test_audiences_in_use_stay_and_rules_cannot_loop(emulator: httpx.Client, headers: dict) -> None:
    outer = ok(
        emulator.post(
            f"{TARGET}/audiences", json={"name": "Not gold", "audienceRule": {"not": 1000005}}, headers=headers
        )
    )

    by_activity = assert_admin_error(emulator.delete(f"{TARGET}/audiences/1000001", headers=headers), 400)
    by_audience = assert_admin_error(emulator.delete(f"{TARGET}/audiences/1000005", headers=headers), 400)
    loop = emulator.put(
        f"{TARGET}/audiences/1000005", json={"name": "Everyone", "audienceRule": [outer["id"]]}, headers=headers
    )

    assert "used by activity 200002" in by_activity["message"]
    assert f"used by audience {outer['id']}" in by_audience["message"]
    assert "cannot include itself" in assert_admin_error(loop, 400)["message"]


# --- mboxes, parameters, profile attributes, environments -------------------------------------------------


def test_mboxes_are_the_catalogs_and_those_asked_for(emulator: httpx.Client, headers: dict) -> None:
    mbox(emulator, {"mbox": "brand-new-mbox", "tntId": "asker", "mboxParameters": {"screen": "tv", "a.AppID": "x"}})

    listed = ok(emulator.get(f"{TARGET}/mboxes", headers=headers))
    named = ok(emulator.get(f"{TARGET}/mboxes", params={"name": "brand", "sortBy": "-name"}, headers=headers))
    parameters = ok(emulator.get(f"{TARGET}/mbox/brand-new-mbox", headers=headers))
    first = ok(emulator.get(f"{TARGET}/mbox/brand-new-mbox", params={"limit": "1"}, headers=headers))

    names = [m["name"] for m in listed["mboxes"]]
    assert listed["total"] == 9 and names == sorted(names)
    assert {"home-hero", "target-global-mbox", "brand-new-mbox"} <= set(names)
    (new,) = named["mboxes"]
    assert new["status"] == "active" and new["lastRequestedAt"].endswith("Z")
    assert parameters == {
        "name": "brand-new-mbox",
        "mboxParameters": [{"name": "a.AppID", "parameterType": "MBOX"}, {"name": "screen", "parameterType": "MBOX"}],
    }
    assert len(first["mboxParameters"]) == 1
    assert ok(emulator.get(f"{TARGET}/mbox/home-hero", headers=headers))["mboxParameters"] == []
    assert_admin_error(emulator.get(f"{TARGET}/mbox/never-seen", headers=headers), 404)


def test_profile_attributes_are_those_written_and_those_targeted(emulator: httpx.Client, headers: dict) -> None:
    mbox(emulator, {"mbox": "home-hero", "tntId": "writer", "profileParameters": {"favouriteColour": "teal"}})

    names = ok(emulator.get(f"{TARGET}/profileattributes/mbox", headers=headers))["mboxProfileAttributes"]

    assert {"favouriteColour", "memberLevel", "optOut"} <= set(names)
    assert names == sorted(names)


def test_environments_are_listed_and_found(emulator: httpx.Client, headers: dict) -> None:
    listed = ok(emulator.get(f"{TARGET}/environments", headers=headers))

    assert listed == {
        "total": 3,
        "offset": 0,
        "limit": 2147483647,
        "environments": [
            {"id": 8820, "name": "Development"},
            {"id": 8818, "name": "Production"},
            {"id": 8819, "name": "Staging"},
        ],
    }
    assert ok(emulator.get(f"{TARGET}/environments/8818", headers=headers)) == {"id": 8818, "name": "Production"}
    assert [e["id"] for e in ok(emulator.get(f"{TARGET}/environments?sortBy=id", headers=headers))["environments"]] == [
        8818,
        8819,
        8820,
    ]
    assert_admin_error(emulator.get(f"{TARGET}/environments/1", headers=headers), 404)
