"""Moving content between the delivery APIs and the cache (``proxy.content.translate``), in this process."""

from __future__ import annotations

import orjson

from proxy.content import translate


def test_a_view_with_only_an_identity_has_the_cheap_context_and_the_rest_a_digest() -> None:
    assert translate.single_context({"mbox": "home-hero", "thirdPartyId": "v1"}) == translate.NO_CONTEXT
    located = translate.single_context({"mbox": "m", "requestLocation": {"pageURL": "https://a.example/x"}})
    assert located != translate.NO_CONTEXT
    assert located == translate.single_context({"mbox": "other", "requestLocation": {"pageURL": "https://a.example/x"}})
    assert located != translate.single_context({"mbox": "m", "requestLocation": {"pageURL": "https://a.example/y"}})


def test_a_fingerprint_does_not_depend_on_key_order() -> None:
    assert translate.fingerprint({"a": 1, "b": 2}, "web") == translate.fingerprint({"b": 2, "a": 1}, "web")
    assert translate.fingerprint({"a": 1}, "web") != translate.fingerprint({"a": 1}, "mobile")


def test_a_single_mbox_view_becomes_one_delivery_request_that_prefetches_beside_it() -> None:
    body = {
        "mbox": "home-hero",
        "mboxParameters": {"size": 3, "flag": True},
        "profileParameters": {"age": 40},
        "order": {"id": 7, "total": "12.50", "purchasedProductIds": ["p1", "p2"]},
        "requestLocation": {
            "pageURL": "https://shop.example/",
            "referrerURL": "https://search.example/",
            "ipAddress": "192.0.2.1",
            "impressionId": "imp-1",
        },
    }
    request = translate.single_to_delivery(body, {"tntId": "t.28_0"}, ["home-banner"])
    assert request["id"] == {"tntId": "t.28_0"}
    assert request["context"] == {
        "channel": "web",
        "address": {"url": "https://shop.example/", "referringUrl": "https://search.example/"},
        "geo": {"ipAddress": "192.0.2.1"},
    }
    assert request["execute"]["mboxes"] == [
        {
            "index": 0,
            "name": "home-hero",
            "parameters": {"size": "3", "flag": "True"},
            "profileParameters": {"age": "40"},
            "order": {"id": "7", "total": 12.5, "purchasedProductIds": "p1,p2"},
        }
    ]
    assert request["impressionId"] == "imp-1"
    assert request["prefetch"] == {
        "mboxes": [{"index": 0, "name": "home-banner", "parameters": {"size": "3", "flag": "True"}}]
    }
    assert "prefetch" not in translate.single_to_delivery({"mbox": "m"}, {}, [])


def test_the_single_mbox_content_is_the_first_options_content_and_json_offers_as_text() -> None:
    assert translate.option_content([{"type": "html", "content": "<b>hi</b>"}, {"content": "second"}]) == "<b>hi</b>"
    assert translate.option_content([{"type": "json", "content": {"a": [1, 2]}}]) == '{"a":[1,2]}'
    assert translate.option_content([{"type": "html"}, {"content": "found"}]) == "found"
    assert translate.option_content([]) == ""


def test_a_prefetched_mbox_becomes_a_cache_entry_with_its_tokens_apart_from_its_options() -> None:
    answer = {
        "prefetch": {
            "mboxes": [
                {
                    "index": 0,
                    "name": "home-hero",
                    "state": "s-1",
                    "options": [{"type": "html", "content": "<p>A</p>", "eventToken": "display-1"}],
                    "metrics": [
                        {"type": "click", "eventToken": "click-1"},
                        {"type": "display", "eventToken": "not-a-click"},
                    ],
                },
                {"index": 1},  # no name: nothing to cache
            ]
        }
    }
    (entry,) = translate.cached_mboxes(answer)
    assert entry.name == "home-hero"
    assert orjson.loads(entry.options_json) == [{"type": "html", "content": "<p>A</p>"}]
    assert entry.tokens("display") == (["display-1"], "s-1")
    assert entry.tokens("click") == (["click-1"], "s-1")
    assert entry.has_display and entry.has_click
    assert translate.cached_mboxes({}) == []


def test_executed_options_are_found_by_index() -> None:
    answer = {"execute": {"mboxes": [{"index": 1, "options": [{"content": "b"}]}, {"index": 0, "options": []}]}}
    assert translate.executed_options(answer, 1) == [{"content": "b"}]
    assert translate.executed_options(answer, 0) == []
    assert translate.executed_options({}, 0) == []
