"""The gateway's IMS credentials (OAuth server-to-server): one token for every caller, fetched once for
concurrent callers, replaced once when upstream refuses it, refreshed before it expires."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from proxy.management.credentials import TokenProvider
from proxy.settings import Settings
from proxy.upstream import Upstream
from tests.admin.support import (
    AS_ACTIVATION,
    AS_ADMIN,
    CLIENT_ID,
    CLIENT_SECRET,
    KEYS,
    SEGMENT_JOBS,
    TARGET,
    ShiftedClock,
    advance_both,
    assert_error,
    calls,
    last_request,
    ok,
    send_concurrently,
    tokens_issued,
)
from tests.gateways import OwnGateway, own_gateway
from tests.inprocess import FakeClock
from tests.support import wait_for

OFFERS = f"{TARGET}/offers"
TOKEN_LIFE_S = 86399  # the emulator's default, answered as expires_in


def token_upstream_saw(emulator: httpx.Client, route: str = "admin") -> str:
    return str(last_request(emulator, route)["headers"]["authorization"]).removeprefix("Bearer ")


def revoke(emulator: httpx.Client) -> None:
    ok(emulator.post("/_emulator/ims/revoke"))


def slow_upstream(emulator: httpx.Client, latency_ms: int) -> None:
    """Every Target, AEP and IMS call of the emulator takes this long, so that concurrent calls overlap."""
    ok(emulator.post("/_emulator/faults", json={"latency_ms": latency_ms}))


def test_one_token_serves_every_admin_and_platform_call(admin_gateway: OwnGateway, emulator: httpx.Client) -> None:
    for _ in range(3):
        ok(admin_gateway.client.get(OFFERS, headers=AS_ADMIN))
        ok(admin_gateway.client.get(SEGMENT_JOBS, headers=AS_ACTIVATION))

    assert tokens_issued(emulator) == 1 and calls(emulator)["ims_token"] == 1
    assert token_upstream_saw(emulator, "admin") == token_upstream_saw(emulator, "ups")
    fetch = last_request(emulator, "ims_token")
    assert fetch["method"] == "POST" and fetch["headers"]["content-type"] == "application/x-www-form-urlencoded"
    assert CLIENT_SECRET not in fetch["query"], "the secret travels in the form body only"


def test_concurrent_first_callers_share_one_token_fetch(admin_gateway: OwnGateway, emulator: httpx.Client) -> None:
    slow_upstream(emulator, 200)

    answers = send_concurrently(admin_gateway.url, "GET", OFFERS, AS_ADMIN, 12)

    assert [a.status for a in answers] == [200] * 12
    assert tokens_issued(emulator) == 1
    assert admin_gateway.parts.tokens.fetched == 1


def test_a_revoked_token_is_replaced_once_and_the_call_succeeds(
    admin_gateway: OwnGateway, emulator: httpx.Client
) -> None:
    ok(admin_gateway.client.get(OFFERS, headers=AS_ADMIN))
    first = token_upstream_saw(emulator)
    revoke(emulator)

    answer = admin_gateway.client.get(OFFERS, headers=AS_ADMIN)

    assert answer.status_code == 200, answer.text
    assert tokens_issued(emulator) == 2
    assert calls(emulator)["admin"] == 3, "the refused call, then the same call once more with the new token"
    assert token_upstream_saw(emulator) != first
    ok(admin_gateway.client.get(OFFERS, headers=AS_ADMIN))
    assert tokens_issued(emulator) == 2 and calls(emulator)["admin"] == 4


def test_concurrent_callers_refused_with_a_revoked_token_share_one_new_token(
    admin_gateway: OwnGateway, emulator: httpx.Client
) -> None:
    ok(admin_gateway.client.get(SEGMENT_JOBS, headers=AS_ACTIVATION))
    revoke(emulator)
    slow_upstream(emulator, 150)

    answers = send_concurrently(admin_gateway.url, "GET", SEGMENT_JOBS, AS_ACTIVATION, 10)

    assert [a.status for a in answers] == [200] * 10
    assert tokens_issued(emulator) == 2, "ten refusals, one new token"


def test_the_token_is_refreshed_before_it_expires(admin_gateway: OwnGateway, emulator: httpx.Client) -> None:
    clock = ShiftedClock()
    admin_gateway.parts.tokens.clock = clock
    ok(admin_gateway.client.get(OFFERS, headers=AS_ADMIN))
    first = token_upstream_saw(emulator)

    advance_both(emulator, clock, TOKEN_LIFE_S - 600)  # still well within its life
    ok(admin_gateway.client.get(OFFERS, headers=AS_ADMIN))
    assert token_upstream_saw(emulator) == first and tokens_issued(emulator) == 1

    advance_both(emulator, clock, 500)  # 100 s left: inside the refresh margin, upstream would still take it
    ok(admin_gateway.client.get(OFFERS, headers=AS_ADMIN))
    second = token_upstream_saw(emulator)
    assert second != first and tokens_issued(emulator) == 2

    advance_both(emulator, clock, 2 * TOKEN_LIFE_S)  # long past the second token's life
    ok(admin_gateway.client.get(OFFERS, headers=AS_ADMIN))
    assert token_upstream_saw(emulator) not in (first, second) and tokens_issued(emulator) == 3
    assert calls(emulator)["admin"] == 4, "no call ever went upstream with an expired token"


def test_credentials_ims_refuses_answer_502_without_repeating_them(
    admin_settings: dict[str, Any], emulator: httpx.Client
) -> None:
    wrong = "not-the-secret-4f1c2b9a"
    with own_gateway(admin_settings, ims_client_secret=wrong) as gw:
        answer = gw.client.get(OFFERS, headers=AS_ADMIN)
        platform = gw.client.get(SEGMENT_JOBS, headers=AS_ACTIVATION)

    body = assert_error(answer, 502, "IMS refused the gateway's credentials (400: invalid_client)")
    assert_error(platform, 502, "IMS refused")
    assert wrong not in answer.text and CLIENT_ID not in answer.text and wrong not in platform.text
    assert set(body) == {"status", "message"}
    assert calls(emulator) == {"ims_token": 2}, "nothing reached the Admin API or the platform"


def test_without_ims_credentials_management_calls_answer_503(
    gateway_settings: dict[str, Any], emulator: httpx.Client
) -> None:
    with own_gateway(gateway_settings, client_keys=KEYS) as gw:
        assert_error(gw.client.get(OFFERS, headers=AS_ADMIN), 503, "no IMS credentials")
        assert_error(gw.client.get(SEGMENT_JOBS, headers=AS_ACTIVATION), 503, "no IMS credentials")
    assert calls(emulator) == {}


def test_a_fetch_whose_callers_went_away_is_not_reused_once_its_token_is_due(
    admin_settings: dict[str, Any], emulator: httpx.Client
) -> None:
    """A caller cancelled while the token is fetched (its client went away) leaves the fetch to finish; when
    that token is due for a refresh, the next caller gets a new token, not the finished fetch's old one."""
    settings = Settings(**admin_settings)
    clock = FakeClock()

    async def scenario() -> tuple[str, str]:
        upstream = Upstream(settings.upstream_client)
        await upstream.start()
        try:
            tokens = TokenProvider(settings.ims, upstream, clock)
            slow_upstream(emulator, 300)
            caller = asyncio.ensure_future(tokens.token())
            await asyncio.sleep(0.05)
            caller.cancel()
            while tokens.fetched == 0:
                await asyncio.sleep(0.01)
            first = await tokens.token()
            clock.advance(TOKEN_LIFE_S)
            return first, await tokens.token()
        finally:
            await upstream.close()

    first, second = asyncio.run(scenario())

    assert second != first
    wait_for(lambda: tokens_issued(emulator) == 2)
