"""Client keys, their scopes and their rate (``proxy.management.auth``), in this process."""

from __future__ import annotations

import asyncio

import pytest
from starlette.requests import Request

from proxy.http.errors import ApiError
from proxy.management.auth import ClientKeys

KEYS = {"operator-key-0001": ["operator"], "profile-key-0001": ["profile", "admin"]}


def request(authorization: str | None) -> Request:
    headers = [(b"authorization", authorization.encode())] if authorization is not None else []
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers})


def refused(keys: ClientKeys, authorization: str | None, scope: str) -> ApiError:
    with pytest.raises(ApiError) as refusal:
        keys.require(request(authorization), scope)
    return refusal.value


@pytest.mark.parametrize("authorization", [None, "", "Bearer", "Bearer   ", "Basic b3BlcmF0b3I=", "operator-key-0001"])
def test_no_bearer_key_is_401_with_a_challenge(authorization: str | None) -> None:
    error = refused(ClientKeys(KEYS), authorization, "operator")
    assert (error.status, error.field) == (401, "Authorization")
    assert error.headers is not None and error.headers["WWW-Authenticate"].startswith("Bearer")


def test_an_unknown_key_is_401_and_a_key_without_the_scope_403() -> None:
    keys = ClientKeys(KEYS)
    assert refused(keys, "Bearer not-a-key", "operator").status == 401
    lacking = refused(keys, "Bearer profile-key-0001", "operator")
    assert lacking.status == 403 and "'operator'" in lacking.message


def test_a_known_key_with_the_scope_passes_whatever_the_schemes_case() -> None:
    keys = ClientKeys(KEYS)
    assert keys.require(request("Bearer operator-key-0001"), "operator") == keys.require(
        request("bearer  operator-key-0001 "), "operator"
    )


def test_no_keys_configured_refuses_everyone() -> None:
    assert refused(ClientKeys({}), "Bearer operator-key-0001", "operator").status == 401


def test_past_its_rate_a_key_gets_429_with_when_to_retry_and_other_keys_do_not() -> None:
    keys = ClientKeys(KEYS, rate="2/minute")

    async def scenario() -> ApiError:
        for _ in range(2):
            await keys.admit(request("Bearer operator-key-0001"), "operator")
        await keys.admit(request("Bearer profile-key-0001"), "profile")  # a rate of its own
        with pytest.raises(ApiError) as limited:
            await keys.admit(request("Bearer operator-key-0001"), "operator")
        return limited.value

    error = asyncio.run(scenario())
    assert (error.status, error.field) == (429, "Authorization")
    assert error.headers is not None and 1 <= int(error.headers["Retry-After"]) <= 60
    assert keys.limited == 1
