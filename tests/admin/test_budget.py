"""The 50-calls-a-minute limit of the Target Admin and bulk profile APIs, kept by the gateway: calls over the
budget wait their turn (never long enough for upstream to answer 503), past the queue bound they get 429
with Retry-After, and a batch counts each of its operations. Time is moved on by hand, for the gateway's
budget and the emulator's rate window alike."""

from __future__ import annotations

from typing import Any

import httpx

from tests.admin.support import (
    AS_ADMIN,
    AS_PROFILE,
    TARGET,
    ShiftedClock,
    advance_both,
    assert_error,
    calls,
    ok,
    send_concurrently,
    set_admin_rate,
)
from tests.gateways import own_gateway

ENVIRONMENTS = f"{TARGET}/environments"


def batch(size: int) -> dict[str, Any]:
    return {
        "operations": [{"operationId": n, "method": "GET", "relativeUrl": "/target/environments"} for n in range(size)]
    }


def test_fifty_calls_a_minute_pass_and_the_rest_get_429_with_retry_after(
    admin_settings: dict[str, Any], emulator: httpx.Client
) -> None:
    with own_gateway(admin_settings, admin_queue_seconds=0) as gw:
        answers = send_concurrently(gw.url, "GET", ENVIRONMENTS, AS_ADMIN, 55)

    assert sorted(a.status for a in answers) == [200] * 50 + [429] * 5
    for refused in (a for a in answers if a.status == 429):
        assert refused.body["status"] == 429 and "50 calls a minute" in refused.body["message"]
        assert 59 <= int(refused.headers["Retry-After"]) <= 61
    assert calls(emulator)["admin"] == 50, "the emulator (50 a minute too) never throttled"


def test_calls_over_the_budget_wait_for_a_slot_so_upstream_never_throttles(
    admin_settings: dict[str, Any], emulator: httpx.Client
) -> None:
    set_admin_rate(emulator, 3)
    clock = ShiftedClock()
    with own_gateway(admin_settings, admin_calls_per_minute=3, admin_queue_seconds=3) as gw:
        gw.parts.admin_budget.clock = clock
        burst = send_concurrently(gw.url, "GET", ENVIRONMENTS, AS_ADMIN, 5)
        # The burst's slots free a minute (and the arrival margin) after it: two seconds from now.
        advance_both(emulator, clock, 59)
        queued = send_concurrently(gw.url, "GET", ENVIRONMENTS, AS_ADMIN, 4)
        waited = gw.parts.admin_budget.waited

    assert sorted(a.status for a in burst) == [200, 200, 200, 429, 429]
    assert sorted(a.status for a in queued) == [200, 200, 200, 429], "three waited their turn, one was too far"
    assert waited == 3
    (late,) = (a for a in queued if a.status == 429)
    assert 61 <= int(late.headers["Retry-After"]) <= 64, "its slot is a minute after the queued ones"
    assert calls(emulator)["admin"] == 6 and all(a.status != 503 for a in burst + queued)


def test_no_caller_waits_longer_than_the_queue_bound(admin_settings: dict[str, Any], emulator: httpx.Client) -> None:
    set_admin_rate(emulator, 2)
    clock = ShiftedClock()
    with own_gateway(admin_settings, admin_calls_per_minute=2, admin_queue_seconds=3) as gw:
        gw.parts.admin_budget.clock = clock
        ok(gw.client.get(ENVIRONMENTS, headers=AS_ADMIN))
        advance_both(emulator, clock, 2.5)
        ok(gw.client.get(ENVIRONMENTS, headers=AS_ADMIN))
        advance_both(emulator, clock, 57)
        # Slots free in 1.5 s (the first call's) and in 4 s (the second's): only the first is within the bound.
        answers = send_concurrently(gw.url, "GET", ENVIRONMENTS, AS_ADMIN, 2)

    assert sorted(a.status for a in answers) == [200, 429]
    (refused,) = (a for a in answers if a.status == 429)
    assert int(refused.headers["Retry-After"]) == 4
    assert calls(emulator)["admin"] == 3


def test_a_batch_counts_each_of_its_operations(admin_settings: dict[str, Any], emulator: httpx.Client) -> None:
    set_admin_rate(emulator, 5)
    with own_gateway(admin_settings, admin_calls_per_minute=5, admin_queue_seconds=0) as gw:
        four = ok(gw.client.post(f"{TARGET}/batch", json=batch(4), headers=AS_ADMIN))
        two = gw.client.post(f"{TARGET}/batch", json=batch(2), headers=AS_ADMIN)
        one = gw.client.get(ENVIRONMENTS, headers=AS_ADMIN)
        six = gw.client.post(f"{TARGET}/batch", json=batch(6), headers=AS_ADMIN)

    assert [r["statusCode"] for r in four["results"]] == [200] * 4, "upstream ran every operation"
    assert_error(two, 429, "5 calls a minute")
    assert two.headers["Retry-After"]
    assert one.status_code == 200
    assert_error(six, 429, "this request makes 6")
    assert calls(emulator)["admin"] == 2


def test_a_batch_over_a_minutes_budget_goes_when_the_window_is_free_and_later_calls_wait_until_it_is_paid(
    admin_settings: dict[str, Any], emulator: httpx.Client
) -> None:
    with own_gateway(admin_settings, admin_calls_per_minute=50, admin_queue_seconds=0) as gw:
        biggest = gw.client.post(f"{TARGET}/batch", json=batch(256), headers=AS_ADMIN)
        after = gw.client.get(ENVIRONMENTS, headers=AS_ADMIN)

    assert biggest.status_code == 200, "the documented maximum is not refused for the gateway's bookkeeping"
    assert len(biggest.json()["results"]) == 256
    assert_error(after, 429, "50 calls a minute")
    # 256 calls at 50 a minute: the window is held for five more minutes and a bit.
    assert 5 * 61 <= int(after.headers["Retry-After"]) <= 6 * 61
    assert calls(emulator)["admin"] == 1


def bulk(gw_client: httpx.Client, client: str) -> httpx.Response:
    return gw_client.post(
        f"/m2/{client}/v2/profile/batchUpdate",
        content=b"batch=pcId%2Ccolor%0Abudget-1%2Cred%0A",
        headers={**AS_PROFILE, "Content-Type": "application/x-www-form-urlencoded"},
    )


def test_the_bulk_profile_api_has_a_budget_per_client(admin_settings: dict[str, Any], emulator: httpx.Client) -> None:
    set_admin_rate(emulator, 2)
    with own_gateway(admin_settings, admin_calls_per_minute=2, admin_queue_seconds=0) as gw:
        submitted = bulk(gw.client, "demo")
        batch_id = submitted.text.split("<batchId>")[1].split("</batchId>")[0]
        status = gw.client.get("/m2/demo/v2/profile/batchStatus", params={"batchId": batch_id}, headers=AS_PROFILE)
        over = bulk(gw.client, "demo")
        other_client = bulk(gw.client, "other")

    assert submitted.status_code == status.status_code == 200
    assert_error(over, 429, "2 calls a minute")
    assert 59 <= int(over.headers["Retry-After"]) <= 61
    assert other_client.status_code == 200, "each client code has its own minute"
    assert calls(emulator) == {"profile_batch_update": 2, "profile_batch_status": 1}
