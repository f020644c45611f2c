"""The catalog's rules artifact: served at Adobe's path with an ETag that follows the catalog; every targeting
rule an on-device engine can evaluate becomes a condition that holds exactly when the edge's rule does;
what only the edge knows leaves its mbox to the edge; and for any visitor an engine deciding from the
artifact shows what the edge shows."""

from __future__ import annotations

import itertools
import time
from typing import Any

import httpx
import pytest
from json_logic import jsonLogic

from proxy.decisioning.artifact import Artifact
from proxy.decisioning.context import geo_context, mbox_context, page_context
from proxy.decisioning.engine import decide, truthy
from proxy.emulator.artifact import Conditions, EdgeOnly, Publisher
from proxy.emulator.catalog import GLOBAL_MBOX, Catalog
from proxy.emulator.decisioning import Decider
from proxy.emulator.rules import RuleContext, evaluate
from proxy.emulator.tokens import TokenCodec
from tests.emulator.support import admin_headers, ok

RULES = "/demo/production/v1/rules.json"


def test_the_artifact_is_served_at_adobes_path_and_tagged_by_the_catalog(emulator: httpx.Client) -> None:
    first = emulator.get(RULES)
    tag = first.headers["etag"]
    unchanged = emulator.get(RULES, headers={"if-none-match": tag})
    for_a_property = emulator.get("/demo/staging/v1/0a1b2c3d-property/rules.json")
    ok(emulator.put("/demo/target/activities/200006/priority", json={"priority": 1}, headers=admin_headers(emulator)))
    changed = emulator.get(RULES, headers={"if-none-match": tag})

    assert first.status_code == 200 and first.headers["content-type"] == "application/json"
    artifact = Artifact.parse(first.json())
    assert artifact.version == "1.0.0" and artifact.meta == {"clientCode": "demo", "environment": "production"}
    assert artifact.remote_mboxes == ("home-banner",), "its audiences read the profile"
    assert {"home-hero", "kiosk-welcome", GLOBAL_MBOX} <= artifact.local_mboxes
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert for_a_property.json()["meta"]["environment"] == "staging"
    assert changed.status_code == 200 and changed.headers["etag"] != tag
    assert emulator.get("/other/production/v1/rules.json").status_code == 404
    assert emulator.get("/_emulator/stats").json()["requests"]["rules_artifact"] == 5


VALUES = ["mobile", "Mobile", "MOBILE", "mob", "", "640", "800", "1200.5", "-3", "abc", None]
EXPECTED: list[list[Any]] = [["mobile"], ["Mob", "tv"], ["800"], ["640", "1000"], [800, "x"], [""], []]
OPERATORS = [
    "equals",
    "notEquals",
    "contains",
    "notContains",
    "startsWith",
    "endsWith",
    "lessThan",
    "lessThanOrEquals",
    "greaterThan",
    "greaterThanOrEquals",
    "between",
    "exists",
    "notExists",
]


def on_device_context(source: str, value: str | None) -> dict[str, Any]:
    """What an on-device engine knows of a visitor whose ``source`` value is ``value``."""
    context: dict[str, Any] = {"mbox": {}, "page": page_context(None), "geo": geo_context({})}
    if value is not None and source == "mbox":
        context["mbox"] = mbox_context({"parameters": {"device": value}})
    if value is not None and source == "page":
        context["page"] = page_context({"url": f"https://shop.example/{value}"})
    if value is not None and source == "geo":
        context["geo"] = geo_context({"city": value})
    return context


def edge_context(source: str, value: str | None) -> RuleContext:
    if value is None:
        return RuleContext()
    if source == "mbox":
        return RuleContext(mbox={"device": value})
    if source == "page":
        return RuleContext(page_url=f"https://shop.example/{value}")
    return RuleContext(geo={"city": value})


@pytest.mark.parametrize("source", ["mbox", "page", "geo"])
def test_every_operator_holds_on_device_exactly_when_it_holds_on_the_edge(source: str) -> None:
    name = {"mbox": "device", "page": "path", "geo": "city"}[source]
    conditions = Conditions(Catalog({}))
    compared = 0
    # geo is compared as written, in lower and in upper case (an engine's geo has no lower-cased twin; the
    # edge's geo lookup answers in upper case): a place written in mixed case is the one thing left out
    values = [
        value for value in VALUES if source != "geo" or value in (None, (value or "").lower(), (value or "").upper())
    ]
    for operator, expected, value in itertools.product(OPERATORS, EXPECTED, values):
        if source == "page" and value is not None:
            expected = [f"/{each}" if operator in ("equals", "notEquals", "startsWith") else each for each in expected]
        rule = {source: name, operator: expected}
        converted = conditions.rule(rule)
        on_device = truthy(jsonLogic(converted, on_device_context(source, value)))
        assert on_device == evaluate(rule, edge_context(source, value)), (rule, value, converted)
        compared += 1
    assert compared == len(OPERATORS) * len(EXPECTED) * len(values) >= 800


def test_combinations_and_literal_patterns_convert_and_the_rest_is_left_to_the_edge() -> None:
    catalog = Catalog(
        {
            "audiences": [
                {"id": 1, "targetRule": {"mbox": "device", "matches": ["mobile"]}},
                {"id": 2, "targetRule": {"geo": "region", "equals": ["california"]}},
                {"id": 3, "audienceRule": {"or": [1, {"not": 2}]}},
            ]
        }
    )
    conditions = Conditions(catalog)
    either = conditions.audiences([3])
    cases = [({"device": "Mobile"}, "CALIFORNIA", True), ({"device": "tv"}, "CALIFORNIA", False), ({}, "TEXAS", True)]

    for parameters, region, holds in cases:
        context = {"mbox": mbox_context({"parameters": parameters}), "geo": geo_context({"stateCode": region})}
        assert truthy(jsonLogic(either, context)) is holds
    assert conditions.uses_geo
    for edge_only in (
        {"profile": "memberLevel", "equals": ["gold"]},
        {"mbox": "device", "matches": ["mob.*"]},
        {"page": "domain", "equals": ["shop.example"]},
        {"geo": "latitude", "greaterThan": [3]},
    ):
        with pytest.raises(EdgeOnly):
            conditions.rule(edge_only)


CATALOG = {
    "client": "demo",
    "offers": [{"id": n, "content": f"offer-{n}"} for n in range(1, 9)],
    "audiences": [
        {"id": 10, "targetRule": {"mbox": "device", "equals": ["tv"]}},
        {"id": 11, "targetRule": {"page": "url", "contains": ["/sale"]}},
        {"id": 12, "targetRule": {"geo": "country", "equals": ["us"]}},
    ],
    "activities": [
        {
            "id": 901,
            "priority": 9,
            "startsAt": "2001-01-01T00:00:00Z",
            "endsAt": "2002-01-01T00:00:00Z",
            "locations": {"mboxes": [{"locationLocalId": 0, "name": "hero"}]},
            "experiences": [{"experienceLocalId": 0, "offerLocations": [{"locationLocalId": 0, "offerId": 8}]}],
        },
        {
            "id": 902,
            "type": "xt",
            "priority": 8,
            "locations": {
                "mboxes": [
                    {"locationLocalId": 0, "name": "hero", "audienceIds": [10]},
                    {"locationLocalId": 1, "name": "hero", "audienceIds": [11]},
                ]
            },
            "experiences": [
                {
                    "experienceLocalId": 0,
                    "audienceIds": [12],
                    "offerLocations": [{"locationLocalId": 0, "offerId": 1}, {"locationLocalId": 1, "offerId": 2}],
                },
                {
                    "experienceLocalId": 1,
                    "audienceIds": [11],
                    "offerLocations": [{"locationLocalId": 0, "offerId": 3}, {"locationLocalId": 1, "offerId": 4}],
                },
            ],
        },
        {
            "id": 903,
            "priority": 1,
            "locations": {
                "mboxes": [{"locationLocalId": 0, "name": "hero"}, {"locationLocalId": 0, "name": GLOBAL_MBOX}]
            },
            "experiences": [
                {
                    "experienceLocalId": n,
                    "visitorPercentage": share,
                    "offerLocations": [{"locationLocalId": 0, "offerId": 5 + n}],
                }
                for n, share in enumerate([20, 33.3, 40])
            ],
        },
    ],
}
PLACES = [
    ({}, None, {}),
    ({"device": "TV"}, "https://shop.example/sale/1", {"country": "us"}),
    ({"device": "tv"}, "https://shop.example/sale/2", {"country": "fr"}),
    ({"device": "radio"}, "https://shop.example/sale/3", {"country": "FR"}),
    ({"device": "tv"}, None, {"country": "fr"}),
    ({"device": "radio"}, "https://shop.example/Sale", {"country": "US"}),
    ({}, "https://shop.example/home", {"country": "us"}),
]


def test_for_any_visitor_the_artifact_decides_what_the_edge_does() -> None:
    """Priorities, dates, XT locations and experiences by audience, AB shares that leave some visitors out,
    the global mbox: 2,000 visitors in seven places, each decided by Adobe's semantics from the artifact and
    by the emulator's edge."""
    catalog, codec = Catalog(CATALOG), TokenCodec("k")
    artifact = Artifact.parse(Publisher(catalog, codec).document("production"))
    edge = Decider(catalog, codec)
    now_ms = int(time.time() * 1000)
    shown: dict[str, int] = {}
    for visitor, mbox in itertools.product(range(2_000), ["hero", GLOBAL_MBOX]):
        parameters, url, geo = PLACES[visitor % len(PLACES)]
        context: dict[str, Any] = {"channel": "web", "geo": {"countryCode": geo.get("country")}}
        if url:
            context["address"] = {"url": url}
        asked = {"index": 1, "name": mbox, "parameters": parameters}
        section = {"pageLoad": {"parameters": parameters}} if mbox == GLOBAL_MBOX else {"mboxes": [asked]}
        request = {"id": {"tntId": f"v{visitor}.28_0"}, "context": context, "execute": section}
        executed = decide(artifact, "demo", request, now_ms).response["execute"]
        options = executed["pageLoad"]["options"] if mbox == GLOBAL_MBOX else executed["mboxes"][0].get("options", [])
        decision = edge.decide(mbox, f"v{visitor}", RuleContext(mbox=parameters, page_url=url, geo=geo))
        content = decision.offer["content"] if decision.offer else None
        assert [option["content"] for option in options] == ([content] if content else []), (visitor, mbox)
        shown[str(content)] = shown.get(str(content), 0) + 1
    assert set(shown) == {"None", *(f"offer-{n}" for n in range(1, 8))}, "every path is taken, the ended one never"
