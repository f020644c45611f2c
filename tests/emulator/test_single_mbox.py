"""POST /rest/v1/mbox/{sessionId}?client=C: content, visitor ids, counting, profile writes, trace."""

from __future__ import annotations

import re

import httpx
import orjson

from tests.emulator.support import (
    BANNER_GOLD,
    CLIENT,
    HERO_A,
    HERO_B,
    RECO,
    activity_counts,
    assert_bad_request,
    attributes,
    mbox,
    profile,
    stats,
)

MINTED_ON_31 = re.compile(r"^\d{15}-\d{6}\.31_0$")


def test_answers_content_with_a_minted_located_tnt_id(emulator: httpx.Client) -> None:
    answer = mbox(emulator, {"mbox": "home-hero"}, session="kiosk-7", cluster=31)

    assert answer["content"] in (HERO_A, HERO_B)
    assert MINTED_ON_31.match(answer["tntId"]), answer
    assert answer["edgeHost"] == "mboxedge31.tt.omtrdc.net"
    assert answer["sessionId"] == "kiosk-7"
    assert "thirdPartyId" not in answer


def test_a_returning_visitor_keeps_tnt_id_and_experience(emulator: httpx.Client) -> None:
    first = mbox(emulator, {"mbox": "home-hero"}, cluster=31)
    again = [mbox(emulator, {"mbox": "home-hero", "tntId": first["tntId"]}, cluster=31) for _ in range(5)]

    assert {a["tntId"] for a in again} == {first["tntId"]}
    assert {a["content"] for a in again} == {first["content"]}


def test_third_party_id_visitors_get_no_tnt_id(emulator: httpx.Client) -> None:
    answer = mbox(emulator, {"mbox": "home-hero", "thirdPartyId": "crm-42"})

    assert answer["thirdPartyId"] == "crm-42"
    assert "tntId" not in answer
    fetched = emulator.get("/rest/v1/profiles/thirdPartyId/crm-42", params={"client": CLIENT})
    assert fetched.status_code == 200
    assert fetched.json()["visitorId"] == "crm-42"


def test_marketing_cloud_visitor_id_is_echoed(emulator: httpx.Client) -> None:
    answer = mbox(emulator, {"mbox": "home-hero", "marketingCloudVisitorId": "0123456789"})

    assert answer["marketingCloudVisitorId"] == "0123456789"


def test_an_executed_mbox_counts_one_impression(emulator: httpx.Client) -> None:
    mbox(emulator, {"mbox": "home-hero"})

    counted = stats(emulator)
    assert counted["impressions"] == 1
    assert activity_counts(emulator, 200001)["impressions"] == 1


def test_an_mbox_without_activity_answers_empty_content_and_counts_nothing(emulator: httpx.Client) -> None:
    answer = mbox(emulator, {"mbox": "nobody-targets-this"})

    assert answer["content"] == ""
    assert stats(emulator)["impressions"] == 0


def test_a_repeated_impression_id_is_a_duplicate(emulator: httpx.Client) -> None:
    visitor = mbox(emulator, {"mbox": "checkout-promo"})["tntId"]
    page = {"mbox": "checkout-promo", "tntId": visitor, "requestLocation": {"impressionId": "page-1"}}
    mbox(emulator, page)
    mbox(emulator, page)
    mbox(emulator, {**page, "requestLocation": {"impressionId": "page-2"}})

    counted = stats(emulator)
    assert counted["impressions"] == 3  # first call, page-1 once, page-2
    assert counted["notifications"]["duplicates"] == 1


def test_clicked_counts_a_click_and_no_impression(emulator: httpx.Client) -> None:
    answer = mbox(emulator, {"mbox": "home-hero", "clicked": "true"})

    assert answer["content"] in (HERO_A, HERO_B)
    counts = activity_counts(emulator, 200001)
    assert counts["clicks"] == 1
    assert counts["conversions"] == 1  # the hero click metric is a conversion
    assert stats(emulator)["impressions"] == 0


def test_clicked_suffix_is_the_same_as_the_clicked_flag(emulator: httpx.Client) -> None:
    mbox(emulator, {"mbox": "home-hero-clicked"})

    counts = activity_counts(emulator, 200001)
    assert counts["clicks"] == 1
    assert stats(emulator)["impressions"] == 0


def test_profile_parameters_are_written_and_used_in_the_same_call(emulator: httpx.Client) -> None:
    answer = mbox(emulator, {"mbox": "home-banner", "profileParameters": {"memberLevel": "gold"}}, cluster=28)

    assert answer["content"] == BANNER_GOLD
    assert attributes(profile(emulator, answer["tntId"], cluster=28)) == {"memberLevel": "gold"}


def test_json_offers_come_back_as_json_text(emulator: httpx.Client) -> None:
    answer = mbox(emulator, {"mbox": "product-reco"})

    assert isinstance(answer["content"], str)
    assert orjson.loads(answer["content"]) == RECO


def test_mbox_trace_shows_cluster_profile_and_decision(emulator: httpx.Client) -> None:
    answer = mbox(
        emulator,
        {"mbox": "product-reco", "mboxTrace": True, "profileParameters": {"tier": "2"}},
        cluster=34,
    )

    trace = answer["mboxTrace"]
    assert trace["cluster"] == 34
    assert trace["profile"] == {"tier": "2"}
    assert trace["decision"]["activity.id"] == "200003"
    assert trace["decision"]["offer.name"] == "reco-json"
    assert "mboxTrace" not in mbox(emulator, {"mbox": "product-reco"})


def test_malformed_json_is_a_400_on_body(emulator: httpx.Client) -> None:
    response = emulator.post(
        "/rest/v1/mbox/s1",
        params={"client": CLIENT},
        content=b"{not json",
        headers={"content-type": "application/json"},
    )

    assert_bad_request(response, "body")
    assert stats(emulator)["impressions"] == 0


def test_a_body_that_is_not_an_object_is_a_400_on_body(emulator: httpx.Client) -> None:
    assert_bad_request(emulator.post("/rest/v1/mbox/s1", params={"client": CLIENT}, json=["home-hero"]), "body")
