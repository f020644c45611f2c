"""IMS OAuth server-to-server: POST /ims/token/v3, the tokens it issues, their expiry and revocation."""

from __future__ import annotations

import httpx
import pytest

from tests.emulator.support import (
    CLIENT_ID,
    IMS_FORM,
    TENANT,
    access_token,
    advance,
    assert_admin_error,
    ok,
    stats,
)

ACTIVITIES = f"/{TENANT}/target/activities"


def with_token(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "x-api-key": CLIENT_ID}


def test_client_credentials_in_a_form_body_get_a_bearer_token(emulator: httpx.Client) -> None:
    answer = ok(emulator.post("/ims/token/v3", data=IMS_FORM))

    assert set(answer) == {"access_token", "token_type", "expires_in"}
    assert answer["token_type"] == "bearer" and answer["expires_in"] == 86399
    assert len(answer["access_token"]) >= 32
    assert stats(emulator)["tokens_issued"] == 1
    assert stats(emulator)["requests"] == {"ims_token": 1}


def test_the_query_string_also_carries_credentials_and_each_token_is_new(emulator: httpx.Client) -> None:
    first = ok(emulator.post("/ims/token/v3", params=IMS_FORM))["access_token"]
    second = access_token(emulator)

    assert first != second
    assert stats(emulator)["tokens_issued"] == 2
    assert emulator.get(ACTIVITIES, headers=with_token(first)).status_code == 200


@pytest.mark.parametrize(
    ("change", "error", "description"),
    [
        ({"client_secret": "wrong"}, "invalid_client", "invalid client_secret parameter"),
        ({"client_secret": None}, "invalid_client", "invalid client_secret parameter"),
        ({"client_id": "someone-else"}, "invalid_client", "invalid client_id parameter"),
        ({"client_id": None}, "invalid_request", "missing client_id parameter"),
        ({"grant_type": "password"}, "unsupported_grant_type", "unsupported grant_type password"),
        ({"grant_type": None}, "invalid_request", "missing grant_type parameter"),
        ({"scope": None}, "invalid_scope", "missing scope parameter"),
    ],
    ids=["bad-secret", "no-secret", "bad-client", "no-client", "password-grant", "no-grant", "no-scope"],
)
def test_bad_requests_get_oauth_errors_and_no_token(
    emulator: httpx.Client, change: dict[str, str | None], error: str, description: str
) -> None:
    form = {key: value for key, value in {**IMS_FORM, **change}.items() if value is not None}

    response = emulator.post("/ims/token/v3", data=form)

    assert response.status_code == 400
    assert response.json() == {"error": error, "error_description": description}
    assert stats(emulator)["tokens_issued"] == 0


def test_a_json_body_is_not_a_form(emulator: httpx.Client) -> None:
    response = emulator.post("/ims/token/v3", json=IMS_FORM)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_a_token_expires_after_its_lifetime(emulator: httpx.Client) -> None:
    token = access_token(emulator)
    advance(emulator, 86398)
    assert emulator.get(ACTIVITIES, headers=with_token(token)).status_code == 200

    advance(emulator, 1)

    error = assert_admin_error(emulator.get(ACTIVITIES, headers=with_token(token)), 401, "Unauthorized")
    assert error["message"] == "Oauth token is not valid"
    assert emulator.get(ACTIVITIES, headers=with_token(access_token(emulator))).status_code == 200


def test_tokens_outlive_a_reset_until_revoked(emulator: httpx.Client) -> None:
    token = access_token(emulator)

    ok(emulator.post("/_emulator/reset"))
    assert emulator.get(ACTIVITIES, headers=with_token(token)).status_code == 200
    assert ok(emulator.post("/_emulator/ims/revoke"))["revoked"] >= 1  # earlier tests' tokens too

    assert_admin_error(emulator.get(ACTIVITIES, headers=with_token(token)), 401)


def test_the_token_request_is_recorded_like_any_call(emulator: httpx.Client) -> None:
    access_token(emulator)

    recorded = ok(emulator.get("/_emulator/last-request", params={"route": "ims_token"}))

    assert recorded["method"] == "POST" and recorded["path"] == "/ims/token/v3"
    assert recorded["headers"]["content-type"] == "application/x-www-form-urlencoded"


def test_only_post_is_allowed(emulator: httpx.Client) -> None:
    assert emulator.get("/ims/token/v3", params=IMS_FORM).status_code == 405
