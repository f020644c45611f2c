"""Audience rules: every operator and combinator, as functions and through a running emulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from proxy.emulator.rules import OPERATORS, RuleContext, RuleError, check_rule, evaluate
from tests.emulator.support import (
    BANNER_CALIFORNIA,
    BANNER_DEFAULT,
    BANNER_GOLD,
    CLIENT,
    KIOSK_DEFAULT,
    KIOSK_MOBILE,
    WEB,
    delivery,
    mbox,
)
from tests.servers import ServerProcess

# (operator, expected values, actual value or None when absent, matches)
OPERATOR_CASES: list[tuple[str, list[Any], str | None, bool]] = [
    ("equals", ["gold", "platinum"], "Gold", True),
    ("equals", ["gold"], "golden", False),
    ("notEquals", ["gold"], "silver", True),
    ("notEquals", ["gold"], "GOLD", False),
    ("contains", ["GOLD"], "platinum-gold", True),
    ("contains", ["gold"], "silver", False),
    ("notContains", ["gold"], "silver", True),
    ("notContains", ["gold"], "goldish", False),
    ("startsWith", ["gold"], "Gold-member", True),
    ("startsWith", ["gold"], "member-gold", False),
    ("endsWith", ["gold"], "member-GOLD", True),
    ("endsWith", ["gold"], "gold-member", False),
    ("matches", ["[a-z]+\\d+"], "AB12", True),
    ("matches", ["[a-z]+\\d+"], "ab12x", False),
    ("lessThan", [10], "9.5", True),
    ("lessThan", [10], "10", False),
    ("lessThan", [10], "ten", False),
    ("lessThanOrEquals", [10], "10", True),
    ("lessThanOrEquals", [10], "10.01", False),
    ("greaterThan", [10], "11", True),
    ("greaterThan", [10], "10", False),
    ("greaterThanOrEquals", [10], "10", True),
    ("greaterThanOrEquals", [10], "9", False),
    ("between", [1, 10], "1", True),
    ("between", [1, 10], "10", True),
    ("between", [1, 10], "10.5", False),
    ("exists", [], "anything", True),
    ("exists", [], None, False),
    ("notExists", [], None, True),
    ("notExists", [], "anything", False),
    ("equals", ["gold"], None, False),
    ("notEquals", ["gold"], None, False),
]
CASE_IDS = [f"{op}-{actual}-{'hit' if hit else 'miss'}" for op, _, actual, hit in OPERATOR_CASES]


def condition(operator: str, expected: list[Any], source: str = "mbox", name: str = "v") -> dict[str, Any]:
    return {source: name, operator: expected}


# --- the evaluator as a function -----------------------------------------------------------------------


@pytest.mark.parametrize(("operator", "expected", "actual", "hit"), OPERATOR_CASES, ids=CASE_IDS)
def test_each_operator(operator: str, expected: list[Any], actual: str | None, hit: bool) -> None:
    context = RuleContext(mbox={} if actual is None else {"v": actual})

    assert evaluate(condition(operator, expected), context) is hit


def test_every_operator_is_covered() -> None:
    assert {op for op, *_ in OPERATOR_CASES} == {*OPERATORS, "notExists"}


def test_and_or_not() -> None:
    gold = condition("equals", ["gold"], "profile", "level")
    us = condition("equals", ["us"], "geo", "country")
    context = RuleContext(profile={"level": "gold"}, geo={"country": "fr"})

    assert evaluate({"and": [gold]}, context)
    assert not evaluate({"and": [gold, us]}, context)
    assert evaluate({"or": [us, gold]}, context)
    assert not evaluate({"or": [us, {"not": gold}]}, context)
    assert evaluate({"not": us}, context)
    assert evaluate({"and": [gold, {"not": {"or": [us, condition("exists", [], "mbox", "x")]}}]}, context)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("url", "https://Shop.example.com/sale/shoes?promo=1"),
        ("domain", "shop.example.com"),
        ("path", "/sale/shoes"),
        ("query", "promo=1"),
    ],
)
def test_page_parts(name: str, value: str) -> None:
    context = RuleContext(page_url="https://Shop.example.com/sale/shoes?promo=1")

    assert evaluate(condition("equals", [value], "page", name), context)
    assert not evaluate(condition("equals", [value + "x"], "page", name), context)
    assert not evaluate(condition("exists", [], "page", name), RuleContext())


def test_numbers_from_mbox_parameters_compare_as_numbers() -> None:
    context = RuleContext(mbox={"screenWidth": 640})  # type: ignore[dict-item]

    assert evaluate(condition("lessThan", [800], "mbox", "screenWidth"), context)
    assert evaluate(condition("equals", ["640"], "mbox", "screenWidth"), context)


@pytest.mark.parametrize(
    ("rule", "where"),
    [
        ({}, "targetRule"),
        ([], "targetRule"),
        ({"and": []}, "targetRule.and"),
        ({"or": [{"profile": "x"}]}, "targetRule.or[0]"),
        ({"not": {"and": [{"geo": "city", "near": ["x"]}]}}, "targetRule.not.and[0]"),
        ({"profile": "x", "mbox": "y", "equals": ["z"]}, "targetRule"),
        ({"profile": "x", "equals": "gold"}, "targetRule.equals"),
        ({"cookie": "x", "equals": ["y"]}, "targetRule"),
    ],
)
def test_check_rule_names_what_it_does_not_understand(rule: Any, where: str) -> None:
    with pytest.raises(RuleError) as raised:
        check_rule(rule)

    assert str(raised.value).startswith(f"{where}:")


def test_check_rule_accepts_the_demo_catalog_rules() -> None:
    demo = json.loads((Path(__file__).parents[2] / "proxy" / "emulator" / "demo_catalog.json").read_text())

    for audience in demo["audiences"]:
        check_rule(audience["targetRule"])


# --- the demo catalog over HTTP ------------------------------------------------------------------------


def test_experience_targeting_by_profile_attribute(emulator: httpx.Client) -> None:
    gold = mbox(emulator, {"mbox": "home-banner", "profileParameters": {"memberLevel": "GOLD"}})
    plain = mbox(emulator, {"mbox": "home-banner", "profileParameters": {"memberLevel": "silver"}})

    assert gold["content"] == BANNER_GOLD
    assert plain["content"] == BANNER_DEFAULT


@pytest.mark.parametrize(("ip", "banner"), [("203.0.113.10", BANNER_CALIFORNIA), ("198.51.100.7", BANNER_DEFAULT)])
def test_geo_from_the_catalog_ip_table(emulator: httpx.Client, ip: str, banner: str) -> None:
    single = mbox(emulator, {"mbox": "home-banner", "requestLocation": {"ipAddress": ip}})
    delivered = delivery(
        emulator,
        {
            "context": {**WEB, "geo": {"ipAddress": ip}},
            "execute": {"mboxes": [{"index": 0, "name": "home-banner"}]},
        },
    )

    assert single["content"] == banner
    assert delivered["execute"]["mboxes"][0]["options"][0]["content"] == banner


@pytest.mark.parametrize(
    ("geo", "banner"),
    [
        ({"stateCode": "California"}, BANNER_CALIFORNIA),
        ({"ipAddress": "203.0.113.10", "stateCode": "nevada"}, BANNER_DEFAULT),
        ({"countryCode": "US"}, BANNER_DEFAULT),
    ],
)
def test_geo_given_in_the_delivery_context(emulator: httpx.Client, geo: dict[str, str], banner: str) -> None:
    answer = delivery(
        emulator,
        {"context": {**WEB, "geo": geo}, "execute": {"mboxes": [{"index": 0, "name": "home-banner"}]}},
    )

    assert answer["execute"]["mboxes"][0]["options"][0]["content"] == banner


def test_the_first_matching_experience_wins(emulator: httpx.Client) -> None:
    answer = mbox(
        emulator,
        {
            "mbox": "home-banner",
            "profileParameters": {"memberLevel": "gold"},
            "requestLocation": {"ipAddress": "203.0.113.10"},
        },
    )

    assert answer["content"] == BANNER_GOLD


@pytest.mark.parametrize(
    ("parameters", "content"),
    [
        ({"device": "mobile"}, KIOSK_MOBILE),
        ({"screenWidth": "640"}, KIOSK_MOBILE),
        ({"device": "kiosk", "screenWidth": "1920"}, KIOSK_DEFAULT),
        ({}, KIOSK_DEFAULT),
    ],
)
def test_mbox_parameters(emulator: httpx.Client, parameters: dict[str, str], content: str) -> None:
    single = mbox(emulator, {"mbox": "kiosk-welcome", "mboxParameters": parameters})
    delivered = delivery(
        emulator, {"execute": {"mboxes": [{"index": 0, "name": "kiosk-welcome", "parameters": parameters}]}}
    )

    assert single["content"] == content
    assert delivered["execute"]["mboxes"][0]["options"][0]["content"] == content


# --- a catalog made of rules, over HTTP ----------------------------------------------------------------


def xt_activity(activity_id: int, mbox_name: str, audiences: list[tuple[int, int]]) -> dict[str, Any]:
    """An XT activity on one mbox; one experience per (audience, offer), in order."""
    return {
        "id": activity_id,
        "type": "xt",
        "locations": {"mboxes": [{"locationLocalId": 0, "name": mbox_name}]},
        "experiences": [
            {
                "experienceLocalId": index,
                "audienceIds": [audience],
                "offerLocations": [{"locationLocalId": 0, "offerId": offer}],
            }
            for index, (audience, offer) in enumerate(audiences)
        ],
    }


COMBO_RULES = {
    "gold-us": {
        "and": [{"profile": "tier", "equals": ["gold"]}, {"geo": "country", "equals": ["us"]}],
    },
    "foreign-site": {"not": {"page": "domain", "endsWith": ["example.com"]}},
    "sale-or-promo": {
        "or": [{"page": "path", "startsWith": ["/sale"]}, {"page": "query", "contains": ["promo=1"]}],
    },
}


def rules_catalog() -> dict[str, Any]:
    offers = [{"id": 1, "content": "hit"}]
    audiences, activities = [], []
    for number, (operator, expected, _, _) in enumerate(OPERATOR_CASES, start=1):
        audiences.append({"id": number, "targetRule": condition(operator, expected)})
        activities.append(xt_activity(number, f"case-{number}", [(number, 1)]))
    combo = []
    for number, (name, rule) in enumerate(COMBO_RULES.items(), start=1000):
        audiences.append({"id": number, "targetRule": rule})
        offers.append({"id": number, "content": name})
        combo.append((number, number))
    activities.append(xt_activity(1000, "combo", combo))
    return {
        "client": CLIENT,
        "geo": {"203.0.113.10": {"country": "us"}, "198.51.100.7": {"country": "fr"}},
        "offers": offers,
        "audiences": audiences,
        "activities": activities,
    }


@pytest.fixture(scope="module")
def rules_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    catalog = tmp_path_factory.mktemp("rules") / "catalog.json"
    catalog.write_text(json.dumps(rules_catalog()))
    server = ServerProcess(["emulator", "--port", "0", "--catalog", str(catalog)]).start(expect=["emulator"])
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            yield client
    finally:
        server.stop()


@pytest.mark.parametrize(("number", "case"), list(enumerate(OPERATOR_CASES, start=1)), ids=CASE_IDS)
def test_each_operator_over_http(
    rules_emulator: httpx.Client, number: int, case: tuple[str, list[Any], str | None, bool]
) -> None:
    _, _, actual, hit = case
    parameters = {} if actual is None else {"v": actual}

    answer = mbox(rules_emulator, {"mbox": f"case-{number}", "mboxParameters": parameters})

    assert answer["content"] == ("hit" if hit else "")


@pytest.mark.parametrize(
    ("tier", "geo", "url", "content"),
    [
        ("gold", {"ipAddress": "203.0.113.10"}, "https://shop.example.com/", "gold-us"),
        ("gold", {"countryCode": "US"}, "https://shop.example.com/", "gold-us"),
        ("gold", {"ipAddress": "198.51.100.7"}, "https://shop.example.com/", None),
        ("silver", {"ipAddress": "203.0.113.10"}, "https://shop.example.com/", None),
        ("silver", {}, "https://elsewhere.test/", "foreign-site"),
        ("silver", {}, "https://shop.example.com/sale/shoes", "sale-or-promo"),
        ("silver", {}, "https://shop.example.com/home?promo=1", "sale-or-promo"),
    ],
)
def test_and_or_not_over_http(
    rules_emulator: httpx.Client, tier: str, geo: dict[str, str], url: str, content: str | None
) -> None:
    answer = delivery(
        rules_emulator,
        {
            "context": {**WEB, "geo": geo, "address": {"url": url}},
            "execute": {"mboxes": [{"index": 0, "name": "combo", "profileParameters": {"tier": tier}}]},
        },
    )

    options = answer["execute"]["mboxes"][0]["options"]
    assert [o["content"] for o in options] == ([content] if content else [])
