"""Choosing content: stable AB allocation, its proportions over real sockets, priorities and offers."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest

from proxy.emulator.catalog import Catalog
from proxy.emulator.decisioning import Decider, allocation_bucket
from proxy.emulator.rules import RuleContext
from proxy.emulator.tokens import TokenCodec
from tests.emulator.support import (
    CLIENT,
    HERO_A,
    HERO_B,
    batch,
    delivery,
    mbox,
    stats,
)
from tests.support import Call, post_concurrently

VISITORS = 10_000


def hero_option(answer: dict[str, Any]) -> str:
    return answer["execute"]["mboxes"][0]["options"][0]["content"]


def hero_by_every_api(client: httpx.Client, tnt_id: str, session: str) -> list[str]:
    """The home-hero content one visitor gets from the single mbox, batch and Delivery APIs."""
    single = mbox(client, {"mbox": "home-hero", "tntId": tnt_id}, session=session)
    batched = batch(client, {"id": {"tntId": tnt_id}, "mboxes": [{"indexId": 0, "mbox": "home-hero"}]})
    delivered = delivery(
        client, {"id": {"tntId": tnt_id}, "execute": {"mboxes": [{"index": 0, "name": "home-hero"}]}}, session
    )
    return [single["content"], batched["mboxResponses"][0]["content"], hero_option(delivered)]


def test_a_visitor_sees_the_same_experience_on_every_call_and_api(emulator: httpx.Client) -> None:
    for number in range(12):
        tnt_id = f"stable-{number}"
        seen = {content for i in range(3) for content in hero_by_every_api(emulator, tnt_id, f"s-{number}-{i}")}
        assert len(seen) == 1, (tnt_id, seen)


def test_both_experiences_are_served(emulator: httpx.Client) -> None:
    seen = {mbox(emulator, {"mbox": "home-hero", "tntId": f"both-{n}"})["content"] for n in range(40)}

    assert seen == {HERO_A, HERO_B}


def test_an_even_split_over_ten_thousand_visitors_is_within_two_percent(emulator_url: str) -> None:
    calls = [
        Call(
            "/rest/v1/delivery",
            {
                "context": {"channel": "web"},
                "id": {"tntId": f"visitor-{n}"},
                "execute": {"mboxes": [{"index": 0, "name": "home-hero"}]},
            },
            params={"client": CLIENT, "sessionId": f"split-{n}"},
        )
        for n in range(VISITORS)
    ]

    answers = post_concurrently(emulator_url, calls, concurrency=50)

    assert {a.status for a in answers} == {200}
    shown = Counter(hero_option(a.body) for a in answers)
    assert set(shown) == {HERO_A, HERO_B}
    assert abs(shown[HERO_A] / VISITORS - 0.5) <= 0.02, shown
    with httpx.Client(base_url=emulator_url) as client:
        counted = stats(client)
    assert counted["requests"]["delivery"] == VISITORS
    assert counted["activities"]["200001"]["experiences"] == {"0": shown[HERO_A], "1": shown[HERO_B]}


def test_locations_of_one_activity_follow_one_experience(emulator: httpx.Client) -> None:
    orders = set()
    for n in range(20):
        answer = batch(
            emulator,
            {
                "id": {"tntId": f"tv-{n}"},
                "contentAsJson": True,
                "mboxes": [{"indexId": 0, "mbox": "tv-rail-1"}, {"indexId": 1, "mbox": "tv-rail-2"}],
            },
        )
        rails = tuple(r["content"]["rail"] for r in answer["mboxResponses"])
        assert rails in {("movies", "series"), ("series", "movies")}
        orders.add(rails)

    assert len(orders) == 2


def test_a_deactivated_activity_is_never_served(emulator: httpx.Client) -> None:
    # "Old hero test" (priority 999, deactivated) would serve the checkout coupon on home-hero
    served = {mbox(emulator, {"mbox": "home-hero", "tntId": f"old-{n}"})["content"] for n in range(30)}

    assert served <= {HERO_A, HERO_B}
    assert "200008" not in stats(emulator)["activities"]


def test_the_highest_priority_activity_wins() -> None:
    catalog = Catalog(
        {
            "offers": [{"id": 1, "content": "low"}, {"id": 2, "content": "high"}],
            "activities": [
                {
                    "id": 10,
                    "priority": 1,
                    "locations": {"mboxes": [{"locationLocalId": 0, "name": "m"}]},
                    "experiences": [{"experienceLocalId": 0, "offerLocations": [{"locationLocalId": 0, "offerId": 1}]}],
                },
                {
                    "id": 11,
                    "priority": 9,
                    "locations": {"mboxes": [{"locationLocalId": 0, "name": "m"}]},
                    "experiences": [{"experienceLocalId": 0, "offerLocations": [{"locationLocalId": 0, "offerId": 2}]}],
                },
            ],
        }
    )

    decision = Decider(catalog, TokenCodec("k")).decide("m", "visitor", RuleContext())

    assert decision.activity_id == 11
    assert Decider.text_content(decision) == "high"


def test_the_allocation_bucket_is_stable_and_spread() -> None:
    buckets = [allocation_bucket("demo", 200001, f"visitor-{n}") for n in range(20_000)]

    assert buckets[:50] == [allocation_bucket("demo", 200001, f"visitor-{n}") for n in range(50)]
    assert all(0 <= b < 100 for b in buckets)
    for low in range(0, 100, 10):
        share = sum(low <= b < low + 10 for b in buckets) / len(buckets)
        assert share == pytest.approx(0.1, abs=0.01)
    other_activity = [allocation_bucket("demo", 200002, f"visitor-{n}") for n in range(50)]
    assert other_activity != buckets[:50]  # each activity splits visitors on its own


def test_uneven_visitor_percentages_are_respected() -> None:
    catalog = Catalog(
        {
            "offers": [{"id": 1, "content": "seventy"}, {"id": 2, "content": "thirty"}],
            "activities": [
                {
                    "id": 7,
                    "locations": {"mboxes": [{"locationLocalId": 0, "name": "m"}]},
                    "experiences": [
                        {
                            "experienceLocalId": 0,
                            "visitorPercentage": 70,
                            "offerLocations": [{"locationLocalId": 0, "offerId": 1}],
                        },
                        {
                            "experienceLocalId": 1,
                            "visitorPercentage": 30,
                            "offerLocations": [{"locationLocalId": 0, "offerId": 2}],
                        },
                    ],
                }
            ],
        }
    )
    decider = Decider(catalog, TokenCodec("k"))

    served = Counter(Decider.text_content(decider.decide("m", f"v{n}", RuleContext())) for n in range(20_000))

    assert served["seventy"] / 20_000 == pytest.approx(0.7, abs=0.015)
    assert served["thirty"] / 20_000 == pytest.approx(0.3, abs=0.015)
