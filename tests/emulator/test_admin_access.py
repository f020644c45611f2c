"""Target Admin API access: credentials, the calls-a-minute limit (also on the bulk profile API), media
type versions, unknown paths and methods, and the record of what arrived."""

from __future__ import annotations

import httpx
import pytest

from tests.emulator.support import (
    CLIENT,
    CLIENT_ID,
    TENANT,
    access_token,
    admin_headers,
    advance,
    assert_admin_error,
    ok,
)

OFFERS = f"/{TENANT}/target/offers"


@pytest.mark.parametrize(
    ("headers", "status", "message"),
    [
        ({}, 401, "Oauth token is missing."),
        ({"Authorization": "Basic dXNlcjpwYXNz", "x-api-key": CLIENT_ID}, 401, "Oauth token is missing."),
        ({"Authorization": "Bearer not-a-token", "x-api-key": CLIENT_ID}, 401, "Oauth token is not valid"),
        ({"Authorization": "Bearer {token}"}, 403, "Api Key is required"),
        ({"Authorization": "Bearer {token}", "x-api-key": "another-key"}, 403, "Api Key is invalid"),
    ],
    ids=["nothing", "basic-auth", "unknown-token", "no-api-key", "wrong-api-key"],
)
def test_calls_without_the_right_credentials_are_refused(
    emulator: httpx.Client, headers: dict[str, str], status: int, message: str
) -> None:
    token = access_token(emulator)
    headers = {name: value.format(token=token) for name, value in headers.items()}

    error = assert_admin_error(emulator.get(OFFERS, headers=headers), status)

    assert error["message"] == message
    assert error["errorCode"] == ("Unauthorized" if status == 401 else "Forbidden")


def test_the_last_request_shows_the_credentials_that_arrived(emulator: httpx.Client) -> None:
    headers = admin_headers(emulator)
    ok(emulator.get(OFFERS, params={"limit": "1"}, headers=headers))
    emulator.post(f"/rest/v1/delivery?client={CLIENT}&sessionId=s", json={"context": {"channel": "web"}})

    admin = ok(emulator.get("/_emulator/last-request", params={"route": "admin"}))
    latest = ok(emulator.get("/_emulator/last-request"))

    assert admin["method"] == "GET" and admin["path"] == OFFERS and admin["query"] == "limit=1"
    assert admin["headers"]["authorization"] == headers["Authorization"]
    assert admin["headers"]["x-api-key"] == CLIENT_ID
    assert latest["route"] == "delivery"
    assert emulator.get("/_emulator/last-request", params={"route": "activation"}).status_code == 404


def test_fifty_calls_a_minute_then_503_until_the_window_moves(emulator: httpx.Client) -> None:
    headers = admin_headers(emulator)
    for _ in range(50):
        assert emulator.get(OFFERS, params={"limit": "1"}, headers=headers).status_code == 200

    throttled = emulator.get(OFFERS, headers=headers)
    other_tenant = emulator.get("/other/target/offers", headers=headers)
    advance(emulator, 60)

    error = assert_admin_error(throttled, 503, "Throttled")
    assert "50 a minute" in error["message"]
    assert 1 <= int(throttled.headers["retry-after"]) <= 60
    assert other_tenant.status_code == 200, "the limit is per client"
    assert emulator.get(OFFERS, headers=headers).status_code == 200


def test_refused_credentials_do_not_use_the_rate(emulator: httpx.Client) -> None:
    ok(emulator.post("/_emulator/limits", json={"admin_rate_per_minute": 1}))
    for _ in range(3):
        assert emulator.get(OFFERS).status_code == 401

    assert emulator.get(OFFERS, headers=admin_headers(emulator)).status_code == 200


def test_the_rate_is_configurable_and_a_reset_restores_it(emulator: httpx.Client) -> None:
    assert ok(emulator.post("/_emulator/limits", json={"admin_rate_per_minute": 2})) == {"admin_rate_per_minute": 2}
    headers = admin_headers(emulator)
    answers = [emulator.get(OFFERS, headers=headers).status_code for _ in range(3)]

    ok(emulator.post("/_emulator/reset"))

    assert answers == [200, 200, 503]
    assert ok(emulator.get("/_emulator/limits")) == {"admin_rate_per_minute": 50}
    assert emulator.post("/_emulator/limits", json={"admin_rate_per_minute": 0}).status_code == 400


def test_the_bulk_profile_api_has_the_same_limit(emulator: httpx.Client) -> None:
    ok(emulator.post("/_emulator/limits", json={"admin_rate_per_minute": 2}))
    update = f"/m2/{CLIENT}/v2/profile/batchUpdate"

    submitted = emulator.post(update, content=b"batch=pcId,color\nlimit-1,red\n")
    status = emulator.get(f"/m2/{CLIENT}/v2/profile/batchStatus", params={"batchId": "none"})
    throttled = emulator.post(update, content=b"batch=pcId,color\nlimit-2,red\n")
    other_client = emulator.post("/m2/other/v2/profile/batchUpdate", content=b"batch=pcId,color\nlimit-3,red\n")

    assert submitted.status_code == 200 and status.status_code == 404
    assert throttled.status_code == 503
    assert throttled.json()["status"] == 503 and "a minute" in throttled.json()["message"]
    assert int(throttled.headers["retry-after"]) >= 1
    assert other_client.status_code == 200


@pytest.mark.parametrize(
    ("method", "header", "status"),
    [
        ("GET", {"Accept": "application/vnd.adobe.target.v2+json"}, 200),
        ("GET", {"Accept": "application/vnd.adobe.target.v3+json"}, 406),
        ("POST", {"Content-Type": "application/vnd.adobe.target.v2+json"}, 200),
        ("POST", {"Content-Type": "application/vnd.adobe.target.v9+json"}, 406),
        ("POST", {"Content-Type": "text/plain"}, 415),
    ],
    ids=["get-v2", "get-v3", "post-v2", "post-v9", "post-text"],
)
def test_media_type_versions_are_negotiated(
    emulator: httpx.Client, method: str, header: dict[str, str], status: int
) -> None:
    body = b'{"name": "versioned", "content": "<p>v</p>"}' if method == "POST" else None
    path = f"{OFFERS}/content" if method == "POST" else OFFERS

    response = emulator.request(method, path, content=body, headers={**admin_headers(emulator), **header})

    if status == 200:
        assert response.status_code == 200, response.text
    else:
        error = assert_admin_error(response, status)
        if status == 406:
            assert error == {"errorCode": "Unsupported.Feature", "message": "Unsupported features detected"}


def test_unknown_paths_methods_and_bodies_answer_in_the_admin_shape(emulator: httpx.Client) -> None:
    headers = admin_headers(emulator)

    assert_admin_error(emulator.get(f"/{TENANT}/target/nothing/here", headers=headers), 404, "NotFound")
    assert_admin_error(emulator.patch(f"{OFFERS}/content/400001", json={}, headers=headers), 405)
    malformed = emulator.post(
        f"{OFFERS}/content", content=b"{nope", headers={**headers, "Content-Type": "application/json"}
    )
    assert assert_admin_error(malformed, 400)["meta"] == {"field": "body"}
