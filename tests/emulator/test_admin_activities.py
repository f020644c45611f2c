"""Target Admin API activities: lists, AB/XT create/get/update/delete, name/state/priority/schedule with
their changelog, and the performance and orders reports, each change visible to the delivery API."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.emulator.support import (
    TENANT,
    WEB,
    admin_headers,
    assert_admin_error,
    delivery,
    mbox,
    ok,
    stats,
)

ACTIVITIES = f"/{TENANT}/target/activities"
COUPON = "<p>Use 5OFF for $5 off</p>"


@pytest.fixture
def headers(emulator: httpx.Client) -> dict[str, str]:
    return admin_headers(emulator)


def listed(client: httpx.Client, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    return ok(client.get(ACTIVITIES, params=params, headers=headers))


def ids(answer: dict[str, Any]) -> list[int]:
    return [item["id"] for item in answer["activities"]]


def shown(client: httpx.Client, name: str, visitor: str = "admin-visitor") -> list[Any]:
    answer = delivery(client, {"id": {"tntId": visitor}, "execute": {"mboxes": [{"index": 0, "name": name}]}})
    return [option["content"] for option in answer["execute"]["mboxes"][0]["options"]]


def new_activity(**overrides: Any) -> dict[str, Any]:
    activity: dict[str, Any] = {
        "name": "Spring banner",
        "state": "approved",
        "priority": 100,
        "locations": {"mboxes": [{"locationLocalId": 0, "name": "spring-banner"}]},
        "experiences": [
            {
                "experienceLocalId": 0,
                "name": "Coupon",
                "visitorPercentage": 100,
                "offerLocations": [{"locationLocalId": 0, "offerId": 400050}],
            }
        ],
        "metrics": [
            {
                "metricLocalId": 32767,
                "name": "clicks",
                "conversion": True,
                "mboxes": [{"name": "spring-banner", "successEvent": "mbox_clicked"}],
            }
        ],
    }
    activity.update(overrides)
    return activity


# --- lists ------------------------------------------------------------------------------------------------


def test_the_list_has_every_activity_in_the_documented_envelope(emulator: httpx.Client, headers: dict) -> None:
    answer = listed(emulator, headers)

    assert (answer["total"], answer["offset"], answer["limit"]) == (8, 0, 2147483647)
    assert ids(answer) == sorted(ids(answer))
    first = answer["activities"][0]
    assert set(first) == {"id", "thirdPartyId", "type", "state", "name", "priority", "modifiedAt"}
    assert first["modifiedAt"].endswith("Z")


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"limit": "2", "offset": "1"}, [200002, 200003]),
        ({"sortBy": "-priority", "limit": "3"}, [200008, 200002, 200001]),
        ({"sortBy": "type,-id", "limit": "2"}, [200008, 200006]),
        ({"sortBy": ["state", "-name"], "limit": "2"}, [200005, 200007]),
        ({"id": ["200004", "200002"]}, [200002, 200004]),
        ({"name": "HERO"}, [200001, 200008]),
        ({"type": "xt", "priority": "!5"}, [200002]),
        ({"state": "!approved"}, [200008]),
        ({"modifiedAt": "2000-01-01T00:00Z/2999-01-01T00:00:00.000-07:00", "type": "xt", "limit": "1"}, [200002]),
        ({"modifiedAt": "1800-01-01T00:00Z/1900-01-01T00:00Z"}, []),
    ],
    ids=[
        "limit-offset",
        "sort-desc",
        "sort-comma",
        "sort-repeated",
        "ids-or",
        "name-contains",
        "and-negation",
        "negated-state",
        "date-range",
        "empty-range",
    ],
)
def test_lists_filter_sort_and_page(emulator: httpx.Client, headers: dict, params: dict, expected: list) -> None:
    assert ids(listed(emulator, headers, **params)) == expected


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "-1"}, "limit"),
        ({"offset": "x"}, "offset"),
        ({"sortBy": "colour"}, "sortBy"),
        ({"colour": "red"}, "colour"),
        ({"modifiedAt": "yesterday"}, "modifiedAt"),
    ],
)
def test_bad_list_parameters_are_refused(emulator: httpx.Client, headers: dict, params: dict, field: str) -> None:
    error = assert_admin_error(emulator.get(ACTIVITIES, params=params, headers=headers), 400, "BadRequest")

    assert error["meta"] == {"field": field}


# --- create / get / update / delete -----------------------------------------------------------------------


def test_a_created_activity_is_stored_and_delivered(emulator: httpx.Client, headers: dict) -> None:
    created = emulator.post(f"{ACTIVITIES}/ab", json=new_activity(), headers=headers)

    assert created.status_code == 201, created.text
    activity = created.json()
    assert activity["id"] == 200009 and activity["type"] == "ab" and activity["thirdPartyId"]
    assert ok(emulator.get(f"{ACTIVITIES}/ab/200009", headers=headers)) == activity
    assert 200009 in ids(listed(emulator, headers))
    assert shown(emulator, "spring-banner") == [COUPON]
    changelog = ok(emulator.get(f"{ACTIVITIES}/200009/changelog", headers=headers))
    assert changelog["activityChangelogs"][0]["activityParameters"]["activityName"] == {"changedValue": "Spring banner"}


def test_an_xt_activity_with_an_audience_rule_audience_targets_its_visitors(
    emulator: httpx.Client, headers: dict
) -> None:
    either = ok(
        emulator.post(
            f"/{TENANT}/target/audiences",
            json={"name": "Gold or Californian", "audienceRule": {"or": [1000001, 1000002]}},
            headers=headers,
        )
    )
    experiences = [
        {
            "experienceLocalId": 0,
            "name": "Them",
            "audienceIds": [either["id"]],
            "offerLocations": [{"locationLocalId": 0, "offerId": 400010}],
        },
        {
            "experienceLocalId": 1,
            "name": "Others",
            "audienceIds": [],
            "offerLocations": [{"locationLocalId": 0, "offerId": 400012}],
        },
    ]
    created = emulator.post(f"{ACTIVITIES}/xt", json=new_activity(experiences=experiences), headers=headers)
    assert created.status_code == 201, created.text

    mbox(emulator, {"mbox": "spring-banner", "tntId": "golden", "profileParameters": {"memberLevel": "gold"}})

    assert shown(emulator, "spring-banner", "golden") == ['<div class="banner">Gold members: early access</div>']
    assert shown(emulator, "spring-banner", "plain") == ['<div class="banner">Welcome!</div>']


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": None}, "name"),
        ({"priority": 1000}, "priority"),
        ({"priority": "high"}, "priority"),
        ({"state": "running"}, "state"),
        ({"startsAt": "2030-01-01T00:00Z", "endsAt": "2029-01-01T00:00Z"}, "endsAt"),
        ({"startsAt": "soon"}, "startsAt"),
        ({"locations": {"mboxes": []}}, "locations.mboxes"),
        ({"locations": {"mboxes": [{"locationLocalId": 0, "name": "bad<mbox>"}]}}, "locations.mboxes[0].name"),
        ({"experiences": []}, "experiences"),
        ({"thirdPartyId": "x" * 251}, "thirdPartyId"),
    ],
)
def test_invalid_activities_are_refused(emulator: httpx.Client, headers: dict, change: dict, field: str) -> None:
    error = assert_admin_error(emulator.post(f"{ACTIVITIES}/ab", json=new_activity(**change), headers=headers), 400)

    assert error["meta"] == {"field": field}
    assert listed(emulator, headers)["total"] == 8


@pytest.mark.parametrize(
    ("experience", "field"),
    [
        ({"offerLocations": [{"locationLocalId": 0, "offerId": 999}]}, "experiences[0].offerLocations[0].offerId"),
        (
            {"offerLocations": [{"locationLocalId": 7, "offerId": 400050}]},
            "experiences[0].offerLocations[0].locationLocalId",
        ),
        ({"audienceIds": [42]}, "experiences[0].audienceIds[0]"),
        ({"visitorPercentage": 101}, "experiences[0].visitorPercentage"),
    ],
)
def test_experiences_must_name_real_offers_locations_and_audiences(
    emulator: httpx.Client, headers: dict, experience: dict, field: str
) -> None:
    base = new_activity()["experiences"][0]
    error = assert_admin_error(
        emulator.post(f"{ACTIVITIES}/ab", json=new_activity(experiences=[{**base, **experience}]), headers=headers), 400
    )

    assert error["meta"] == {"field": field}


def test_ab_shares_add_up_to_at_most_one_hundred_and_third_party_ids_are_unique(
    emulator: httpx.Client, headers: dict
) -> None:
    base = new_activity()["experiences"][0]
    halves = [{**base, "visitorPercentage": 60}, {**base, "experienceLocalId": 1, "visitorPercentage": 60}]
    taken = ok(emulator.get(f"{ACTIVITIES}/ab/200001", headers=headers))["thirdPartyId"]

    too_much = emulator.post(f"{ACTIVITIES}/ab", json=new_activity(experiences=halves), headers=headers)
    duplicate = emulator.post(f"{ACTIVITIES}/ab", json=new_activity(thirdPartyId=taken), headers=headers)

    assert assert_admin_error(too_much, 400)["meta"] == {"field": "experiences"}
    assert assert_admin_error(duplicate, 400)["meta"] == {"field": "thirdPartyId"}


def test_a_full_update_changes_delivery_and_logs_the_offer_change(emulator: httpx.Client, headers: dict) -> None:
    coupon = ok(emulator.get(f"{ACTIVITIES}/ab/200006", headers=headers))
    coupon["experiences"][0]["offerLocations"][0]["offerId"] = 400030

    updated = ok(emulator.put(f"{ACTIVITIES}/ab/200006", json=coupon, headers=headers))

    assert updated["id"] == 200006 and updated["state"] == "approved"
    assert shown(emulator, "checkout-promo") == ["<h1>Welcome to the store</h1>"]
    (entry,) = ok(emulator.get(f"{ACTIVITIES}/ab/200006/changelog", headers=headers))["activityChangelogs"]
    assert entry["activityLocationOfferChange"] == {
        "changedValue": {"id": 400030, "name": "kiosk-welcome"},
        "previousValue": {"id": 400050, "name": "checkout-coupon"},
        "mbox": {"name": "checkout-promo", "locationLocalId": 0},
        "experience": {"name": "Coupon", "experienceLocalId": 0},
    }


def test_the_type_in_the_path_must_match(emulator: httpx.Client, headers: dict) -> None:
    assert_admin_error(emulator.get(f"{ACTIVITIES}/xt/200001", headers=headers), 404, "NotFound")
    assert_admin_error(emulator.get(f"{ACTIVITIES}/ab/1", headers=headers), 404)
    assert_admin_error(emulator.put(f"{ACTIVITIES}/ab/200002", json=new_activity(), headers=headers), 404)
    assert_admin_error(emulator.put(f"{ACTIVITIES}/xt/200001/state", json={"state": "saved"}, headers=headers), 404)


def test_a_deleted_activity_is_gone_from_the_api_and_delivery(emulator: httpx.Client, headers: dict) -> None:
    deleted = ok(emulator.delete(f"{ACTIVITIES}/ab/200006", headers=headers))

    assert deleted["id"] == 200006 and deleted["state"] == "deleted"
    assert_admin_error(emulator.get(f"{ACTIVITIES}/ab/200006", headers=headers), 404)
    assert listed(emulator, headers)["total"] == 7
    assert shown(emulator, "checkout-promo") == []


# --- name, state, priority, schedule and the changelog ----------------------------------------------------


def test_each_change_answers_its_field_and_is_logged_newest_first(emulator: httpx.Client, headers: dict) -> None:
    renamed = ok(emulator.put(f"{ACTIVITIES}/200006/name", json={"name": "Coupon 2"}, headers=headers))
    state = ok(emulator.put(f"{ACTIVITIES}/ab/200006/state", json={"state": "saved"}, headers=headers))
    priority = ok(emulator.put(f"{ACTIVITIES}/200006/priority", json={"priority": "100"}, headers=headers))
    schedule = ok(
        emulator.put(
            f"{ACTIVITIES}/200006/schedule",
            json={"startsAt": "2017-05-01T08:00Z", "endsAt": "2017-09-01T07:59:59Z"},
            headers=headers,
        )
    )

    assert set(renamed) == {"id", "name", "modifiedAt"} and renamed["name"] == "Coupon 2"
    assert (state["state"], priority["priority"]) == ("saved", 100)
    assert (schedule["startsAt"], schedule["endsAt"]) == ("2017-05-01T08:00Z", "2017-09-01T07:59:59Z")
    log = ok(emulator.get(f"{ACTIVITIES}/200006/changelog", headers=headers))
    assert (log["offset"], log["limit"], log["total"]) == (0, 2147483647, 4)
    assert [entry["activityParameters"] for entry in log["activityChangelogs"]] == [
        {
            "startsAt": {"changedValue": "2017-05-01T08:00Z"},
            "endsAt": {"changedValue": "2017-09-01T07:59:59Z"},
        },
        {"priority": {"previousValue": 5, "changedValue": 100}},
        {"state": {"previousValue": "approved", "changedValue": "saved"}},
        {"activityName": {"previousValue": "Checkout coupon", "changedValue": "Coupon 2"}},
    ]
    assert (
        len(ok(emulator.get(f"{ACTIVITIES}/200006/changelog?limit=1&offset=1", headers=headers))["activityChangelogs"])
        == 1
    )


def test_state_priority_and_schedule_decide_what_is_delivered(emulator: httpx.Client, headers: dict) -> None:
    hero_before = shown(emulator, "home-hero")

    ok(emulator.put(f"{ACTIVITIES}/200008/state", json={"state": "approved"}, headers=headers))
    old_hero_wins = shown(emulator, "home-hero")
    ok(emulator.put(f"{ACTIVITIES}/200008/priority", json={"priority": 0}, headers=headers))
    by_priority = shown(emulator, "home-hero")
    ok(
        emulator.put(
            f"{ACTIVITIES}/200006/schedule",
            json={"startsAt": "2001-01-01T00:00Z", "endsAt": "2002-01-01T00:00Z"},
            headers=headers,
        )
    )

    assert old_hero_wins == [COUPON] != hero_before
    assert by_priority == hero_before
    assert shown(emulator, "checkout-promo") == [], "an ended schedule delivers nothing"


@pytest.mark.parametrize(
    ("endpoint", "body", "field"),
    [
        ("name", {"name": "  "}, "name"),
        ("name", {}, "name"),
        ("state", {"state": "paused"}, "state"),
        ("state", {"state": "live"}, "state"),
        ("priority", {"priority": -1}, "priority"),
        ("priority", {"priority": 1000}, "priority"),
        ("priority", {"priority": True}, "priority"),
        ("schedule", {"startsAt": "2017-05-01T08:00Z"}, "endsAt"),
        ("schedule", {"startsAt": "2017-05-01T08:00Z", "endsAt": "2017-05-01T07:00Z"}, "endsAt"),
        ("schedule", {"startsAt": "May 1st", "endsAt": "2017-05-01T07:00Z"}, "startsAt"),
    ],
)
def test_invalid_changes_are_refused_and_not_logged(
    emulator: httpx.Client, headers: dict, endpoint: str, body: dict, field: str
) -> None:
    error = assert_admin_error(emulator.put(f"{ACTIVITIES}/200006/{endpoint}", json=body, headers=headers), 400)

    assert error["meta"] == {"field": field}
    assert ok(emulator.get(f"{ACTIVITIES}/200006/changelog", headers=headers))["total"] == 0


# --- reports ----------------------------------------------------------------------------------------------


def test_the_performance_report_counts_what_the_edge_counted(emulator: httpx.Client, headers: dict) -> None:
    for n in range(6):
        mbox(emulator, {"mbox": "home-hero", "tntId": f"reader-{n}"})
    mbox(emulator, {"mbox": "home-hero", "tntId": "reader-0", "clicked": True})

    report = ok(emulator.get(f"{ACTIVITIES}/ab/200001/report/performance", headers=headers))

    counted = stats(emulator)["activities"]["200001"]
    statistics = report["report"]["statistics"]
    assert set(statistics["totals"]) == {"visitor", "visit", "impression", "landing"}
    assert statistics["totals"]["impression"]["totals"] == {"entries": 6, "conversions": 1}
    by_experience = {e["experienceLocalId"]: e["totals"]["impression"]["totals"] for e in statistics["experiences"]}
    assert set(by_experience) == {0, 1}
    assert {str(k): v["entries"] for k, v in by_experience.items() if v["entries"]} == counted["experiences"]
    assert sum(v["conversions"] for v in by_experience.values()) == 1
    assert report["reportParameters"]["activityId"] == 200001
    assert report["reportParameters"]["environmentId"] == 8818
    assert report["reportParameters"]["conversionMetricLocalIds"] == [32767]
    assert report["activity"]["experiences"] == [
        {"name": "Experience A", "experienceLocalId": 0},
        {"name": "Experience B", "experienceLocalId": 1},
    ]


def test_xt_reports_orders_and_report_errors(emulator: httpx.Client, headers: dict) -> None:
    delivery(
        emulator,
        {"context": WEB, "id": {"tntId": "xt-reader"}, "execute": {"mboxes": [{"index": 0, "name": "home-banner"}]}},
    )

    xt = ok(
        emulator.get(f"{ACTIVITIES}/xt/200002/report/performance", params={"environmentId": "8820"}, headers=headers)
    )
    orders = ok(emulator.get(f"{ACTIVITIES}/xt/200002/report/orders", headers=headers))
    sample_path = ok(emulator.get(f"{ACTIVITIES}/ab/200001/orders/performance", headers=headers))

    assert xt["report"]["statistics"]["totals"]["visitor"]["totals"]["entries"] == 1
    assert xt["reportParameters"]["environmentId"] == 8820
    assert orders["orders"] == [] and orders["activity"]["type"] == "xt"
    assert sample_path["orders"] == []
    assert_admin_error(emulator.get(f"{ACTIVITIES}/ab/200002/report/performance", headers=headers), 404)
    bad_environment = emulator.get(f"{ACTIVITIES}/ab/200001/report/performance?environmentId=1", headers=headers)
    assert assert_admin_error(bad_environment, 400)["meta"] == {"field": "environmentId"}
