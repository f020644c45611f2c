"""POST /rest/v1/delivery: execute, prefetch, notifications, duplicates and request-wide refusal."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.emulator.support import (
    CLIENT,
    HERO_A,
    HERO_B,
    SALE_RIBBON,
    WEB,
    activity_counts,
    assert_bad_request,
    attributes,
    deliver,
    delivery,
    now_ms,
    profile,
    stats,
)

DAY_MS = 24 * 3600 * 1000


def prefetch_hero(client: httpx.Client, tnt_id: str = "delivery-visitor") -> dict[str, Any]:
    """Prefetch home-hero for a visitor; the prefetched mbox answer."""
    answer = delivery(client, {"id": {"tntId": tnt_id}, "prefetch": {"mboxes": [{"index": 0, "name": "home-hero"}]}})
    return answer["prefetch"]["mboxes"][0]


def display(tokens: list[str], note_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": note_id, "type": "display", "timestamp": now_ms(), "tokens": tokens, **extra}


def test_execute_answers_options_without_event_tokens(emulator: httpx.Client) -> None:
    answer = delivery(
        emulator,
        {"requestId": "req-1", "execute": {"mboxes": [{"index": 3, "name": "home-hero"}]}},
        cluster=38,
    )

    assert answer["status"] == 200
    assert answer["requestId"] == "req-1"
    assert answer["client"] == CLIENT
    assert answer["id"]["tntId"].endswith(".38_0")
    assert answer["edgeHost"] == "mboxedge38.tt.omtrdc.net"
    (executed,) = answer["execute"]["mboxes"]
    assert (executed["index"], executed["name"]) == (3, "home-hero")
    (option,) = executed["options"]
    assert option["type"] == "html"
    assert option["content"] in (HERO_A, HERO_B)
    assert "eventToken" not in option
    assert option["responseTokens"]["activity.id"] == "200001"
    assert [m["type"] for m in executed["metrics"]] == ["click"]
    assert stats(emulator)["impressions"] == 1


def test_ims_org_id_stands_in_for_the_client_code(emulator: httpx.Client) -> None:
    response = emulator.post(
        "/rest/v1/delivery",
        params={"imsOrgId": "ORG@AdobeOrg", "sessionId": "s-ims"},
        json={"context": WEB, "execute": {"mboxes": [{"index": 0, "name": "home-hero"}]}},
    )

    assert response.status_code == 200
    assert response.json()["client"] == CLIENT
    assert response.json()["execute"]["mboxes"][0]["options"][0]["content"] in (HERO_A, HERO_B)


def test_the_client_parameter_is_answered(emulator: httpx.Client) -> None:
    response = emulator.post("/rest/v1/delivery", params={"client": "acme", "sessionId": "s"}, json={"context": WEB})

    assert response.status_code == 200
    assert response.json()["client"] == "acme"


def test_prefetch_counts_nothing_until_a_display_notification(emulator: httpx.Client) -> None:
    prefetched = prefetch_hero(emulator)

    assert prefetched["state"]
    (option,) = prefetched["options"]
    assert option["eventToken"]
    assert stats(emulator)["impressions"] == 0

    answer = delivery(
        emulator,
        {"id": {"tntId": "delivery-visitor"}, "notifications": [display([option["eventToken"]], "n-1")]},
    )

    assert answer["notifications"] == [{"id": "n-1"}]
    counted = stats(emulator)
    assert counted["impressions"] == 1
    assert counted["notifications"] == {"display": 1, "click": 0, "duplicates": 0}
    assert activity_counts(emulator, 200001)["impressions"] == 1


def test_a_state_token_among_the_tokens_counts_nothing(emulator: httpx.Client) -> None:
    prefetched = prefetch_hero(emulator)

    delivery(
        emulator,
        {"id": {"tntId": "delivery-visitor"}, "notifications": [display([prefetched["state"]], "n-s")]},
    )

    assert stats(emulator)["impressions"] == 0


def test_a_repeated_notification_id_is_a_duplicate(emulator: httpx.Client) -> None:
    token = prefetch_hero(emulator)["options"][0]["eventToken"]
    note = display([token], "n-same")

    first = delivery(emulator, {"notifications": [note]})
    again = delivery(emulator, {"notifications": [note, note]})

    assert first["notifications"] == [{"id": "n-same"}]
    assert again["notifications"] == [{"id": "n-same"}, {"id": "n-same"}]
    counted = stats(emulator)
    assert counted["impressions"] == 1
    assert counted["notifications"] == {"display": 1, "click": 0, "duplicates": 2}


def test_a_repeated_impression_id_counts_one_impression(emulator: httpx.Client) -> None:
    token = prefetch_hero(emulator)["options"][0]["eventToken"]

    delivery(
        emulator,
        {
            "notifications": [
                display([token], "n-a", impressionId="page-view-1"),
                display([token], "n-b", impressionId="page-view-1"),
            ]
        },
    )
    delivery(emulator, {"notifications": [display([token], "n-c", impressionId="page-view-2")]})

    counted = stats(emulator)
    assert counted["impressions"] == 2
    assert counted["notifications"]["duplicates"] == 1


def test_a_repeated_impression_id_on_execute_counts_once(emulator: httpx.Client) -> None:
    page = {
        "id": {"tntId": "page-viewer"},
        "impressionId": "view-9",
        "execute": {"mboxes": [{"index": 0, "name": "home-hero"}]},
    }
    delivery(emulator, page)
    delivery(emulator, page)

    counted = stats(emulator)
    assert counted["impressions"] == 1
    assert counted["notifications"]["duplicates"] == 1


def test_a_click_notification_counts_a_click(emulator: httpx.Client) -> None:
    (metric,) = prefetch_hero(emulator)["metrics"]
    assert metric["type"] == "click"

    note = {"id": "c-1", "type": "click", "timestamp": now_ms(), "tokens": [metric["eventToken"]]}
    delivery(emulator, {"notifications": [note]})

    counted = stats(emulator)
    assert counted["notifications"] == {"display": 0, "click": 1, "duplicates": 0}
    assert counted["impressions"] == 0
    assert activity_counts(emulator, 200001)["clicks"] == 1
    assert activity_counts(emulator, 200001)["conversions"] == 1


def test_an_executed_clicked_mbox_counts_a_click(emulator: httpx.Client) -> None:
    answer = delivery(emulator, {"execute": {"mboxes": [{"index": 0, "name": "product-reco-clicked"}]}})

    assert answer["execute"]["mboxes"] == [{"index": 0, "name": "product-reco-clicked"}]
    counts = activity_counts(emulator, 200003)
    assert counts["clicks"] == 1
    assert "conversions" not in counts  # the reco click metric is no conversion
    assert stats(emulator)["impressions"] == 0


def test_a_conversion_mbox_counts_a_conversion_for_the_visitors_activity(emulator: httpx.Client) -> None:
    visitor = {"tntId": "buyer"}
    delivery(emulator, {"id": visitor, "execute": {"mboxes": [{"index": 0, "name": "checkout-promo"}]}})
    delivery(emulator, {"id": visitor, "execute": {"mboxes": [{"index": 0, "name": "order-confirmation"}]}})

    counts = activity_counts(emulator, 200006)
    assert counts["impressions"] == 1
    assert counts["conversions"] == 1
    assert stats(emulator)["impressions"] == 1


def forged(token: str) -> str:
    """The same token with one payload byte changed: still base64, no longer signed."""
    raw = bytearray(base64.b64decode(token))
    raw[2] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


@pytest.mark.parametrize("bad_token", ["not-a-token", "", forged], ids=["garbage", "empty", "tampered"])
def test_one_bad_token_refuses_the_whole_request_and_counts_nothing(
    emulator: httpx.Client, bad_token: str | Callable[[str], str]
) -> None:
    token = prefetch_hero(emulator)["options"][0]["eventToken"]
    bad = bad_token(token) if callable(bad_token) else bad_token
    field = "notifications[1].tokens[0]"

    response = deliver(
        emulator,
        {
            "execute": {"mboxes": [{"index": 0, "name": "checkout-promo"}]},
            "notifications": [display([token], "good-1"), display([bad], "bad-1")],
        },
    )

    assert response.status_code == 400
    assert response.json()["field"] == field
    counted = stats(emulator)
    assert counted["impressions"] == 0
    assert counted["notifications"] == {"display": 0, "click": 0, "duplicates": 0}
    # the good notification was not remembered either: sent again it counts
    delivery(emulator, {"notifications": [display([token], "good-1")]})
    assert stats(emulator)["notifications"]["display"] == 1


def test_a_far_future_timestamp_refuses_the_whole_request(emulator: httpx.Client) -> None:
    token = prefetch_hero(emulator)["options"][0]["eventToken"]
    future = {**display([token], "future"), "timestamp": now_ms() + 10 * DAY_MS}

    response = deliver(emulator, {"notifications": [display([token], "now"), future]})

    assert_bad_request(response, "notifications[1].timestamp")
    assert stats(emulator)["notifications"]["display"] == 0
    assert stats(emulator)["impressions"] == 0


def test_recent_and_slightly_skewed_timestamps_are_accepted(emulator: httpx.Client) -> None:
    token = prefetch_hero(emulator)["options"][0]["eventToken"]
    notes = [
        {**display([token], "yesterday"), "timestamp": now_ms() - DAY_MS},
        {**display([token], "skewed"), "timestamp": now_ms() + 60_000},
    ]

    assert delivery(emulator, {"notifications": notes})["notifications"] == [
        {"id": "yesterday"},
        {"id": "skewed"},
    ]
    assert stats(emulator)["notifications"]["display"] == 2


def test_page_load_follows_the_page_url(emulator: httpx.Client) -> None:
    on_sale = delivery(
        emulator,
        {
            "context": {**WEB, "address": {"url": "https://shop.example.com/sale/shoes"}},
            "execute": {"pageLoad": {}},
            "prefetch": {"pageLoad": {}},
        },
    )
    elsewhere = delivery(
        emulator,
        {"context": {**WEB, "address": {"url": "https://shop.example.com/new"}}, "execute": {"pageLoad": {}}},
    )

    assert [o["content"] for o in on_sale["execute"]["pageLoad"]["options"]] == [SALE_RIBBON]
    assert "eventToken" not in on_sale["execute"]["pageLoad"]["options"][0]
    assert on_sale["prefetch"]["pageLoad"]["options"][0]["eventToken"]
    assert elsewhere["execute"]["pageLoad"]["options"] == []
    assert activity_counts(emulator, 200007)["impressions"] == 1


def test_prefetched_views_are_answered_empty(emulator: httpx.Client) -> None:
    answer = delivery(emulator, {"prefetch": {"views": [{}]}})

    assert answer["prefetch"] == {"views": []}


def test_profile_parameters_of_an_mbox_are_written(emulator: httpx.Client) -> None:
    delivery(
        emulator,
        {
            "id": {"tntId": "writer"},
            "execute": {"mboxes": [{"index": 0, "name": "home-hero", "profileParameters": {"tier": "3"}}]},
        },
        cluster=31,
    )

    assert attributes(profile(emulator, "writer", cluster=31)) == {"tier": "3"}


def test_other_ids_are_answered_beside_the_tnt_id(emulator: httpx.Client) -> None:
    answer = delivery(emulator, {"id": {"thirdPartyId": "crm-9", "marketingCloudVisitorId": "mc-9"}})

    assert answer["id"]["thirdPartyId"] == "crm-9"
    assert answer["id"]["marketingCloudVisitorId"] == "mc-9"
    assert answer["id"]["tntId"]
