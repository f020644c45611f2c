"""Profile fetch and single update APIs, edge clusters chosen by Host header, and replication delay."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from proxy.emulator.profiles import ProfileStore
from tests.emulator.support import (
    BANNER_DEFAULT,
    BANNER_GOLD,
    CLIENT,
    REPLICATION_DELAY_S,
    assert_bad_request,
    attributes,
    edge,
    mbox,
    profile,
)
from tests.support import wait_for

CLUSTERS = (28, 31, 34, 35, 38)


def update(client: httpx.Client, params: dict[str, str], cluster: int | None = None) -> httpx.Response:
    headers = edge(cluster) if cluster is not None else None
    return client.get(f"/m2/{CLIENT}/profile/update", params=params, headers=headers)


def assert_submitted(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    assert "<success>true</success>" in response.text


# --- fetch ------------------------------------------------------------------------------------------


def test_fetch_by_tnt_id_with_or_without_location_suffix(emulator: httpx.Client) -> None:
    tnt_id = mbox(emulator, {"mbox": "home-hero", "profileParameters": {"city": "lyon"}}, cluster=28)["tntId"]
    base = tnt_id.split(".")[0]

    for asked in (tnt_id, base):
        document = profile(emulator, asked, cluster=28)
        assert document["client"] == CLIENT
        assert document["visitorId"] == base
        assert document["tntId"] == tnt_id
        assert document["profileAttributes"]["city"]["value"] == "lyon"
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", document["profileAttributes"]["city"]["modifiedAt"])


def test_fetch_by_third_party_id(emulator: httpx.Client) -> None:
    mbox(emulator, {"mbox": "home-hero", "thirdPartyId": "crm-1", "profileParameters": {"a": "1"}}, cluster=34)

    response = emulator.get("/rest/v1/profiles/thirdPartyId/crm-1", params={"client": CLIENT}, headers=edge(34))

    assert response.status_code == 200
    assert response.json()["visitorId"] == "crm-1"
    assert attributes(response.json()) == {"a": "1"}


@pytest.mark.parametrize("client_code", ["demo", "acme"])
def test_an_unknown_tnt_id_is_a_404_naming_the_client(emulator: httpx.Client, client_code: str) -> None:
    response = emulator.get("/rest/v1/profiles/111-222", params={"client": client_code})

    assert response.status_code == 404
    assert response.json() == {
        "status": 404,
        "message": f"No profile found for client {client_code} with mboxPC=111-222",
    }


def test_an_unknown_third_party_id_is_a_404(emulator: httpx.Client) -> None:
    response = emulator.get("/rest/v1/profiles/thirdPartyId/nobody", params={"client": CLIENT})

    assert response.status_code == 404
    assert response.json() == {
        "status": 404,
        "message": f"No profile found for client {CLIENT} with third party id=nobody",
    }


@pytest.mark.parametrize("path", ["/rest/v1/profiles/111-222", "/rest/v1/profiles/thirdPartyId/x"])
def test_fetch_requires_the_client_code(emulator: httpx.Client, path: str) -> None:
    assert_bad_request(emulator.get(path), "client")


# --- single update ----------------------------------------------------------------------------------


def test_update_by_mbox_pc(emulator: httpx.Client) -> None:
    tnt_id = mbox(emulator, {"mbox": "home-hero"}, cluster=31)["tntId"]

    assert_submitted(update(emulator, {"mboxPC": tnt_id, "profile.memberLevel": "gold", "profile.x": "1"}, 31))

    assert attributes(profile(emulator, tnt_id, cluster=31)) == {"memberLevel": "gold", "x": "1"}
    assert mbox(emulator, {"mbox": "home-banner", "tntId": tnt_id}, cluster=31)["content"] == BANNER_GOLD


def test_update_by_third_party_id(emulator: httpx.Client) -> None:
    mbox(emulator, {"mbox": "home-hero", "thirdPartyId": "crm-2"}, cluster=31)

    assert_submitted(update(emulator, {"mbox3rdPartyId": "crm-2", "profile.plan": "family"}, 31))

    fetched = emulator.get("/rest/v1/profiles/thirdPartyId/crm-2", params={"client": CLIENT}, headers=edge(31))
    assert attributes(fetched.json()) == {"plan": "family"}


def test_update_by_form_post(emulator: httpx.Client) -> None:
    tnt_id = mbox(emulator, {"mbox": "home-hero"}, cluster=31)["tntId"]

    response = emulator.post(
        f"/m2/{CLIENT}/profile/update",
        params={"mboxPC": tnt_id},
        data={"profile.memberLevel": "silver", "profile.note": "a b&c"},
        headers=edge(31),
    )

    assert_submitted(response)
    assert attributes(profile(emulator, tnt_id, cluster=31)) == {"memberLevel": "silver", "note": "a b&c"}


def test_a_post_that_is_not_a_form_is_refused(emulator: httpx.Client) -> None:
    response = emulator.post(f"/m2/{CLIENT}/profile/update", params={"mboxPC": "1-2"}, json={"profile.x": "1"})

    assert response.status_code == 415
    assert response.json()["field"] == "body"


@pytest.mark.parametrize(
    ("params", "fetch"),
    [
        ({"mboxPC": "999-999", "profile.x": "1"}, "/rest/v1/profiles/999-999"),
        ({"mbox3rdPartyId": "ghost", "profile.x": "1"}, "/rest/v1/profiles/thirdPartyId/ghost"),
    ],
)
def test_update_never_creates_a_profile(emulator: httpx.Client, params: dict[str, str], fetch: str) -> None:
    assert_submitted(update(emulator, params))

    assert emulator.get(fetch, params={"client": CLIENT}).status_code == 404


# --- edge clusters ----------------------------------------------------------------------------------


@pytest.mark.parametrize("cluster", [28, 35, 7])
def test_the_host_header_selects_the_cluster_that_mints_the_tnt_id(emulator: httpx.Client, cluster: int) -> None:
    answer = mbox(emulator, {"mbox": "home-hero"}, cluster=cluster)

    assert answer["tntId"].endswith(f".{cluster}_0")
    assert answer["edgeHost"] == f"mboxedge{cluster}.tt.omtrdc.net"


@pytest.mark.parametrize("host", ["mboxedge34.tt.omtrdc.net:443", "MBOXEDGE34.TT.OMTRDC.NET"])
def test_edge_host_names_with_a_port_or_in_capitals(emulator: httpx.Client, host: str) -> None:
    response = emulator.post("/rest/v1/mbox/s1", params={"client": CLIENT}, json={"mbox": "x"}, headers={"Host": host})

    assert response.json()["tntId"].endswith(".34_0")


def test_the_edge_host_is_the_home_cluster_whichever_cluster_answers(emulator: httpx.Client) -> None:
    tnt_id = mbox(emulator, {"mbox": "home-hero"}, cluster=28)["tntId"]

    for cluster in (31, 38):
        answer = mbox(emulator, {"mbox": "home-hero", "tntId": tnt_id}, cluster=cluster)
        assert answer["edgeHost"] == "mboxedge28.tt.omtrdc.net"
        assert answer["tntId"] == tnt_id


def test_a_location_suffix_names_the_home_of_a_new_profile(emulator: httpx.Client) -> None:
    answer = mbox(emulator, {"mbox": "home-hero", "tntId": "555-666.35_0"}, cluster=28)

    assert answer["tntId"] == "555-666.35_0"
    assert answer["edgeHost"] == "mboxedge35.tt.omtrdc.net"


def test_the_client_host_lands_on_a_configured_cluster_chosen_by_session(emulator: httpx.Client) -> None:
    homes = set()
    for session in ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"):
        first = mbox(emulator, {"mbox": "home-hero"}, session=session)["tntId"]
        again = mbox(emulator, {"mbox": "home-hero"}, session=session)["tntId"]
        home = int(first.rsplit(".", 1)[1].split("_")[0])
        assert again.endswith(f".{home}_0")
        homes.add(home)

    assert homes <= set(CLUSTERS)
    assert len(homes) > 1


def test_a_write_reaches_other_clusters_after_the_replication_delay(emulator: httpx.Client) -> None:
    tnt_id = mbox(emulator, {"mbox": "home-hero"}, cluster=28)["tntId"]

    written_at = time.monotonic()
    mbox(
        emulator,
        {"mbox": "home-hero", "tntId": tnt_id, "profileParameters": {"memberLevel": "gold"}},
        cluster=28,
    )
    elsewhere = attributes(profile(emulator, tnt_id, cluster=31))
    checked_at = time.monotonic()

    assert checked_at - written_at < REPLICATION_DELAY_S, "the check came too late to see the delay"
    assert elsewhere == {}
    assert attributes(profile(emulator, tnt_id, cluster=28)) == {"memberLevel": "gold"}

    wait_for(lambda: attributes(profile(emulator, tnt_id, cluster=31)) == {"memberLevel": "gold"})
    assert time.monotonic() - written_at >= REPLICATION_DELAY_S


def test_another_cluster_decides_on_the_previous_value_until_replicated(emulator: httpx.Client) -> None:
    tnt_id = mbox(emulator, {"mbox": "home-hero", "profileParameters": {"memberLevel": "gold"}}, cluster=28)["tntId"]
    banner = {"mbox": "home-banner", "tntId": tnt_id}
    wait_for(lambda: mbox(emulator, banner, cluster=31)["content"] == BANNER_GOLD)

    written_at = time.monotonic()
    mbox(emulator, {**banner, "profileParameters": {"memberLevel": "bronze"}}, cluster=28)
    seen_elsewhere = mbox(emulator, banner, cluster=31)["content"]
    checked_at = time.monotonic()

    assert checked_at - written_at < REPLICATION_DELAY_S, "the check came too late to see the delay"
    assert seen_elsewhere == BANNER_GOLD
    assert mbox(emulator, banner, cluster=28)["content"] == BANNER_DEFAULT
    wait_for(lambda: mbox(emulator, banner, cluster=31)["content"] == BANNER_DEFAULT)
    assert time.monotonic() - written_at >= REPLICATION_DELAY_S


def test_no_value_of_a_quick_rewrite_reaches_another_cluster_early(emulator: httpx.Client) -> None:
    tnt_id = mbox(emulator, {"mbox": "home-hero"}, cluster=28)["tntId"]

    written_at = time.monotonic()
    for level in ("gold", "silver"):
        mbox(
            emulator,
            {"mbox": "home-hero", "tntId": tnt_id, "profileParameters": {"level": level}},
            cluster=28,
        )
    elsewhere = attributes(profile(emulator, tnt_id, cluster=31))
    checked_at = time.monotonic()

    assert checked_at - written_at < REPLICATION_DELAY_S, "the check came too late to see the delay"
    assert elsewhere == {}
    wait_for(lambda: attributes(profile(emulator, tnt_id, cluster=31)) == {"level": "silver"})


# --- the replication model, on a controlled clock ----------------------------------------------------


DELAY, STEP = 0.5, 0.125  # binary fractions: the clock arithmetic is exact


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> ProfileStore:
    return ProfileStore(DELAY, clock=clock)


def test_a_write_is_seen_at_once_by_its_cluster_and_after_the_delay_elsewhere(
    store: ProfileStore, clock: Clock
) -> None:
    visitor, _ = store.resolve(28, tnt_id="1-1")
    store.write(visitor, {"level": "gold"}, 28)

    assert store.view(visitor, 28) == {"level": "gold"}
    assert store.view(visitor, 31) == {}
    clock.now += DELAY - STEP
    assert store.view(visitor, 31) == {}
    clock.now += STEP
    assert store.view(visitor, 31) == {"level": "gold"}


def test_each_value_of_a_rewrite_replicates_on_its_own_schedule(store: ProfileStore, clock: Clock) -> None:
    visitor, _ = store.resolve(28, tnt_id="1-1")
    store.write(visitor, {"level": "gold"}, 28)
    clock.now += STEP
    store.write(visitor, {"level": "silver"}, 28)

    assert store.view(visitor, 31) == {}
    clock.now += DELAY - STEP
    assert store.view(visitor, 31) == {"level": "gold"}
    clock.now += STEP
    assert store.view(visitor, 31) == {"level": "silver"}
    assert store.view(visitor, 28) == {"level": "silver"}


def test_a_cluster_keeps_its_own_write_until_another_clusters_write_arrives(store: ProfileStore, clock: Clock) -> None:
    visitor, _ = store.resolve(28, tnt_id="1-1")
    store.write(visitor, {"level": "gold"}, 28)
    clock.now += STEP
    store.write(visitor, {"level": "silver"}, 31)

    assert store.view(visitor, 28) == {"level": "gold"}
    assert store.view(visitor, 31) == {"level": "silver"}
    assert store.view(visitor, 34) == {}
    clock.now += DELAY - STEP
    assert store.view(visitor, 34) == {"level": "gold"}
    clock.now += STEP
    assert store.view(visitor, 28) == {"level": "silver"}
    assert store.view(visitor, 34) == {"level": "silver"}


def test_values_every_cluster_has_moved_past_are_dropped(store: ProfileStore, clock: Clock) -> None:
    visitor, _ = store.resolve(28, tnt_id="1-1")
    for n in range(10):
        store.write(visitor, {"level": str(n)}, 28 + n % 2)
        clock.now += DELAY

    assert [v.value for v in visitor.attributes["level"]] == ["8", "9"]
    assert store.view(visitor, 34) == {"level": "9"}


def test_the_document_shows_what_the_cluster_sees(store: ProfileStore, clock: Clock) -> None:
    visitor, _ = store.resolve(28, tnt_id="1-1")
    store.write(visitor, {"level": "gold"}, 28)
    shown = store.document(visitor, "demo", 28)["profileAttributes"]

    assert shown == {"level": {"value": "gold", "modifiedAt": visitor.modified_at}}
    assert store.document(visitor, "demo", 31)["profileAttributes"] == {}
