"""Guardrails that hold across gateways sharing Redis: the Admin API's calls a minute, a client key's rate,
and one ad-hoc activation job per audience."""

from __future__ import annotations

from typing import Any

import httpx

from proxy.emulator import aep
from tests.admin.support import (
    ADHOC,
    AS_ACTIVATION,
    AS_ADMIN,
    CREDENTIALS,
    KEYS,
    TARGET,
    V2_ACCEPT,
    activation_info,
    assert_error,
    calls,
    configure_aep,
    set_admin_rate,
)
from tests.notifications.helpers import OPERATOR
from tests.scaleout.conftest import StartGateways

V2 = {**AS_ACTIVATION, "Accept": V2_ACCEPT}


def admin_gateways(gateways: StartGateways, count: int, **settings: Any) -> list[httpx.Client]:
    servers = gateways(count, client_keys=KEYS, **CREDENTIALS, **settings)
    return [httpx.Client(base_url=server.url, timeout=10) for server in servers]


def test_the_calls_a_minute_are_one_budget_for_all_gateways(gateways: StartGateways, emulator: httpx.Client) -> None:
    set_admin_rate(emulator, 5)  # the emulator answers 503 past 5 calls a minute
    pool = admin_gateways(gateways, 2, admin_calls_per_minute=5, admin_queue_seconds=0)
    answers = [pool[n % 2].get(f"{TARGET}/environments", headers=AS_ADMIN) for n in range(12)]

    statuses = [a.status_code for a in answers]
    assert sorted(statuses) == [200] * 5 + [429] * 7, statuses
    assert all(0 < int(a.headers["retry-after"]) <= 62 for a in answers if a.status_code == 429)
    assert calls(emulator)["admin"] == 5, "upstream saw the budget, never more"
    for client in pool:
        client.close()


def test_a_client_keys_rate_is_one_for_all_gateways(gateways: StartGateways) -> None:
    servers = gateways(3, client_key_rate="5/minute")
    pool = [httpx.Client(base_url=server.url, timeout=10) for server in servers]
    answers = [pool[n % 3].get("/_proxy/cache", headers=OPERATOR) for n in range(9)]

    statuses = [a.status_code for a in answers]
    assert statuses == [200] * 5 + [429] * 4, statuses  # each gateway alone would have let 9 through
    assert all(0 < int(a.headers["retry-after"]) <= 60 for a in answers[5:])
    for client in pool:
        client.close()


def test_one_activation_job_per_audience_whichever_gateway_starts_it(
    gateways: StartGateways, emulator: httpx.Client
) -> None:
    first, second = admin_gateways(gateways, 2)
    started = first.post(ADHOC, json=activation_info(aep.GOLD_MEMBERS), headers=V2)
    assert started.status_code == 200, started.text
    (order,) = started.json()["order"]
    run_id = order["statusURL"].rstrip("/").rsplit("/", 1)[1]

    again = second.post(ADHOC, json=activation_info(aep.CART_ABANDONERS, aep.GOLD_MEMBERS), headers=V2)
    assert_error(again, 409, f"Run already going on for audience {aep.GOLD_MEMBERS}")
    other = second.post(ADHOC, json=activation_info(aep.CART_ABANDONERS), headers=V2)
    assert other.status_code == 200, "a refused job held nothing"

    # Once the run has finished upstream, the audience is free again, on either gateway.
    configure_aep(emulator, finish=[run_id])
    after = second.post(ADHOC, json=activation_info(aep.GOLD_MEMBERS), headers=V2)
    assert after.status_code == 200, after.text
    assert calls(emulator)["activation"] == 3
    first.close()
    second.close()
