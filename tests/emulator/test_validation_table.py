"""The documents' validation tables, row by row: each bad value is a 400 naming its field, and the
neighbouring valid value passes.

Single mbox API ("Length < N"), batch mbox API ("max size N"), Delivery API limits, single profile update."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.emulator.support import (
    CLIENT,
    assert_bad_request,
    attributes,
    batch,
    edge,
    mbox,
    profile,
    stats,
)
from tests.validation_rows import (
    BATCH_ROWS,
    DELIVERY_ROWS,
    ENTRY_ROWS,
    SINGLE_ROWS,
    UPDATE_ROWS,
    D,
    E,
    M,
    U,
    post_delivery,
    rows,
    s,
)


@rows(*SINGLE_ROWS)
def test_single_mbox_table(emulator: httpx.Client, bad: dict[str, Any], field: str, good: dict[str, Any]) -> None:
    assert_bad_request(emulator.post("/rest/v1/mbox/s1", params={"client": CLIENT}, json=bad), field)
    assert stats(emulator)["impressions"] == 0

    mbox(emulator, good)


@pytest.mark.parametrize(
    ("bad", "good"),
    [(s(129), s(128)), ("a%20b", "a-b"), ("a%3Fb", "a-b"), ("a%09b", "a_b")],
    ids=["129-chars", "space", "question-mark", "tab"],
)
def test_single_mbox_session_id(emulator: httpx.Client, bad: str, good: str) -> None:
    assert_bad_request(emulator.post(f"/rest/v1/mbox/{bad}", params={"client": CLIENT}, json=M), "sessionId")

    assert mbox(emulator, M, session=good)["sessionId"] == good


@pytest.mark.parametrize("bad", [None, "", "bad_client", "bad client", "-demo"])
def test_single_mbox_client_code(emulator: httpx.Client, bad: str | None) -> None:
    params = {} if bad is None else {"client": bad}

    assert_bad_request(emulator.post("/rest/v1/mbox/s1", params=params, json=M), "client")
    assert emulator.post("/rest/v1/mbox/s1", params={"client": "my-client-2"}, json=M).status_code == 200


@rows(*BATCH_ROWS)
def test_batch_table(emulator: httpx.Client, bad: dict[str, Any], field: str, good: dict[str, Any]) -> None:
    assert_bad_request(emulator.post("/rest/v2/batchmbox", json=bad), field)
    assert stats(emulator)["impressions"] == 0

    assert emulator.post("/rest/v2/batchmbox", json=good).status_code == 200


@pytest.mark.parametrize("key", ["mboxes", "prefetch"])
@rows(*ENTRY_ROWS)
def test_batch_entry_table(
    emulator: httpx.Client, key: str, bad: dict[str, Any], field: str, good: dict[str, Any]
) -> None:
    body = {"client": CLIENT, key: [bad]}

    assert_bad_request(emulator.post("/rest/v2/batchmbox", json=body), f"{key}[0].{field}")

    assert emulator.post("/rest/v2/batchmbox", json={"client": CLIENT, key: [good]}).status_code == 200


@pytest.mark.parametrize("key", ["mboxes", "prefetch"])
def test_batch_fifty_mbox_limit(emulator: httpx.Client, key: str) -> None:
    entries = [{"indexId": i, "mbox": "home-hero"} for i in range(51)]

    refused = assert_bad_request(emulator.post("/rest/v2/batchmbox", json={"client": CLIENT, key: entries}), key)

    assert refused["message"] == f"{key}: size must be between 0 and 50"
    assert emulator.post("/rest/v2/batchmbox", json={"client": CLIENT, key: entries[:50]}).status_code == 200


@pytest.mark.parametrize("key", ["mboxes", "prefetch"])
def test_batch_null_entries(emulator: httpx.Client, key: str) -> None:
    assert_bad_request(emulator.post("/rest/v2/batchmbox", json={"client": CLIENT, key: [E, None]}), key)


def test_batch_clicked_suffix_only_in_prefetch(emulator: httpx.Client) -> None:
    clicked = {"indexId": 0, "mbox": "home-hero-clicked"}

    assert_bad_request(
        emulator.post("/rest/v2/batchmbox", json={"client": CLIENT, "prefetch": [clicked]}),
        "prefetch[0].mbox",
    )
    assert emulator.post("/rest/v2/batchmbox", json={"client": CLIENT, "mboxes": [clicked]}).status_code == 200


@rows(*DELIVERY_ROWS)
def test_delivery_table(emulator: httpx.Client, bad: dict[str, Any], field: str, good: dict[str, Any]) -> None:
    assert_bad_request(post_delivery(emulator, bad), field)
    assert stats(emulator)["impressions"] == 0

    assert post_delivery(emulator, good).status_code == 200


@pytest.mark.parametrize(
    ("bad", "good", "field"),
    [
        ({"sessionId": "s1"}, {"imsOrgId": "ORG@AdobeOrg", "sessionId": "s1"}, "client"),
        ({"client": CLIENT}, {"client": CLIENT, "sessionId": "x"}, "sessionId"),
        ({"client": CLIENT, "sessionId": ""}, {"client": CLIENT, "sessionId": "x"}, "sessionId"),
        ({"client": CLIENT, "sessionId": s(129)}, {"client": CLIENT, "sessionId": s(128)}, "sessionId"),
        ({"client": CLIENT, "sessionId": "a b"}, {"client": CLIENT, "sessionId": "a-b"}, "sessionId"),
        ({"client": CLIENT, "sessionId": "a/b"}, {"client": CLIENT, "sessionId": "a.b"}, "sessionId"),
        ({"client": "no such!", "sessionId": "x"}, {"client": "no-such", "sessionId": "x"}, "client"),
    ],
    ids=[
        "no-client",
        "no-session",
        "empty-session",
        "session-129",
        "session-space",
        "session-slash",
        "bad-client",
    ],
)
def test_delivery_query(emulator: httpx.Client, bad: dict[str, str], good: dict[str, str], field: str) -> None:
    assert_bad_request(emulator.post("/rest/v1/delivery", params=bad, json=D), field)

    assert emulator.post("/rest/v1/delivery", params=good, json=D).status_code == 200


@pytest.mark.parametrize("raw", [b"{", b"[]", b"null", b'"text"'])
def test_delivery_body_must_be_a_json_object(emulator: httpx.Client, raw: bytes) -> None:
    response = emulator.post(
        "/rest/v1/delivery",
        params={"client": CLIENT, "sessionId": "s1"},
        content=raw,
        headers={"content-type": "application/json"},
    )

    assert_bad_request(response, "body")


@rows(*UPDATE_ROWS)
def test_profile_update_table(emulator: httpx.Client, bad: dict[str, str], field: str, good: dict[str, str]) -> None:
    visitor = good.get("mboxPC")
    ids = {"tntId": visitor} if visitor else {"thirdPartyId": good["mbox3rdPartyId"]}
    batch(emulator, {"id": ids}, cluster=28)  # the batch API takes ids of up to 128 characters

    assert_bad_request(emulator.get(f"/m2/{CLIENT}/profile/update", params=bad), field)
    if visitor:
        assert attributes(profile(emulator, visitor, cluster=28)) == {}

    response = emulator.get(f"/m2/{CLIENT}/profile/update", params=good, headers=edge(28))
    assert response.status_code == 200
    assert "<success>true</success>" in response.text
    if visitor:
        written = {
            f"profile.{name}": value for name, value in attributes(profile(emulator, visitor, cluster=28)).items()
        }
        assert written == {k: v for k, v in good.items() if k.startswith("profile.")}


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_profile_update_client_code(emulator: httpx.Client, method: str) -> None:
    assert_bad_request(emulator.request(method, "/m2/bad_client/profile/update", params=U), "client")


def test_profile_update_post_body_is_validated_too(emulator: httpx.Client) -> None:
    response = emulator.post(f"/m2/{CLIENT}/profile/update", data={"mboxPC": "upd-1", "profile.a": s(257)})

    assert_bad_request(response, "profile.a")
