"""POST /rest/v2/batchmbox: executed and prefetched mboxes, notifications, clicks and ids."""

from __future__ import annotations

import re
import uuid

import httpx

from tests.emulator.support import (
    CLIENT,
    HERO_A,
    HERO_B,
    RECO,
    activity_counts,
    assert_bad_request,
    attributes,
    batch,
    profile,
    stats,
)


def test_answers_every_executed_mbox_by_index(emulator: httpx.Client) -> None:
    answer = batch(
        emulator,
        {
            "id": {"tntId": "batch-visitor-1"},
            "mboxes": [{"indexId": 0, "mbox": "home-hero"}, {"indexId": 1, "mbox": "checkout-promo"}],
        },
        cluster=35,
    )

    assert answer["client"] == CLIENT
    assert uuid.UUID(answer["requestId"])
    assert answer["id"] == {"tntId": "batch-visitor-1.35_0"}
    assert answer["edgeHost"] == "mboxedge35.tt.omtrdc.net"
    assert answer["contentAsJson"] is False
    responses = answer["mboxResponses"]
    assert [(r["indexId"], r["mbox"]) for r in responses] == [(0, "home-hero"), (1, "checkout-promo")]
    assert responses[0]["content"] in (HERO_A, HERO_B)
    assert responses[1]["content"] == "<p>Use 5OFF for $5 off</p>"
    assert "prefetchResponses" not in answer


def test_the_trailing_slash_path_is_the_same_route(emulator: httpx.Client) -> None:
    response = emulator.post(
        "/rest/v2/batchmbox/", json={"client": CLIENT, "mboxes": [{"indexId": 0, "mbox": "home-hero"}]}
    )

    assert response.status_code == 200
    assert response.json()["mboxResponses"][0]["content"] in (HERO_A, HERO_B)
    assert stats(emulator)["requests"]["batchmbox"] == 1


def test_executed_mboxes_count_and_prefetched_ones_wait_for_a_notification(emulator: httpx.Client) -> None:
    answer = batch(
        emulator,
        {
            "id": {"tntId": "batch-visitor-2"},
            "mboxes": [{"indexId": 0, "mbox": "home-hero"}],
            "prefetch": [{"indexId": 0, "mbox": "checkout-promo"}],
        },
    )

    prefetched = answer["prefetchResponses"][0]
    assert prefetched["mbox"] == "checkout-promo"
    assert prefetched["content"] == "<p>Use 5OFF for $5 off</p>"
    assert len(prefetched["eventTokens"]) == 1
    assert stats(emulator)["impressions"] == 1
    assert activity_counts(emulator, 200006) == {}

    batch(
        emulator,
        {
            "id": {"tntId": "batch-visitor-2"},
            "notifications": [
                {"timestamp": 1485216216, "mbox": "checkout-promo", "eventTokens": prefetched["eventTokens"]}
            ],
        },
    )

    counted = stats(emulator)
    assert counted["impressions"] == 2
    assert counted["notifications"]["display"] == 1
    assert activity_counts(emulator, 200006)["impressions"] == 1


def test_a_clicked_mbox_counts_a_click(emulator: httpx.Client) -> None:
    answer = batch(emulator, {"mboxes": [{"indexId": 0, "mbox": "kiosk-welcome-clicked"}]})

    assert answer["mboxResponses"] == [{"indexId": 0, "mbox": "kiosk-welcome-clicked", "content": ""}]
    counts = activity_counts(emulator, 200004)
    assert counts["clicks"] == 1
    assert counts["conversions"] == 1
    assert stats(emulator)["impressions"] == 0


def test_a_notification_on_a_clicked_mbox_counts_a_click(emulator: httpx.Client) -> None:
    prefetched = batch(emulator, {"id": {"tntId": "clicker"}, "prefetch": [{"indexId": 0, "mbox": "home-hero"}]})
    tokens = prefetched["prefetchResponses"][0]["eventTokens"]

    batch(
        emulator,
        {
            "id": {"tntId": "clicker"},
            "notifications": [{"timestamp": 1485216216, "mbox": "home-hero-clicked", "eventTokens": tokens}],
        },
    )

    counted = stats(emulator)
    assert counted["notifications"] == {"display": 0, "click": 1, "duplicates": 0}
    assert counted["impressions"] == 0
    assert activity_counts(emulator, 200001)["clicks"] == 1


def test_content_as_json_answers_json_offers_as_objects(emulator: httpx.Client) -> None:
    as_json = batch(emulator, {"contentAsJson": True, "mboxes": [{"indexId": 0, "mbox": "product-reco"}]})
    as_text = batch(emulator, {"mboxes": [{"indexId": 0, "mbox": "product-reco"}]})

    assert as_json["contentAsJson"] is True
    assert as_json["mboxResponses"][0]["content"] == RECO
    assert isinstance(as_text["mboxResponses"][0]["content"], str)


def test_fifty_mboxes_are_all_answered(emulator: httpx.Client) -> None:
    mboxes = [{"indexId": i, "mbox": "home-hero"} for i in range(50)]

    answer = batch(emulator, {"id": {"tntId": "fifty"}, "mboxes": mboxes})

    assert [r["indexId"] for r in answer["mboxResponses"]] == list(range(50))
    assert len({r["content"] for r in answer["mboxResponses"]}) == 1


def test_profile_parameters_are_written(emulator: httpx.Client) -> None:
    answer = batch(
        emulator,
        {"id": {"tntId": "batch-visitor-3"}, "profileParameters": {"age": "18"}, "mboxes": []},
        cluster=28,
    )

    assert answer["id"]["tntId"] == "batch-visitor-3.28_0"
    assert attributes(profile(emulator, "batch-visitor-3", cluster=28)) == {"age": "18"}


def test_third_party_visitors_are_answered_with_both_ids(emulator: httpx.Client) -> None:
    answer = batch(emulator, {"id": {"thirdPartyId": "crm-7"}, "mboxes": [{"indexId": 0, "mbox": "home-hero"}]})

    assert answer["id"]["thirdPartyId"] == "crm-7"
    assert re.match(r"^\d{15}-\d{6}\.\d{1,2}_0$", answer["id"]["tntId"])


def test_an_invalid_event_token_refuses_the_whole_request(emulator: httpx.Client) -> None:
    response = emulator.post(
        "/rest/v2/batchmbox",
        json={
            "client": CLIENT,
            "mboxes": [{"indexId": 0, "mbox": "home-hero"}],
            "notifications": [{"timestamp": 1485216216, "mbox": "checkout-promo", "eventTokens": ["forged"]}],
        },
    )

    assert_bad_request(response, "notifications[0].eventTokens[0]")
    counted = stats(emulator)
    assert counted["impressions"] == 0
    assert counted["notifications"]["display"] == 0
