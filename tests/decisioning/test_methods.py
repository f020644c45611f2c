"""The decisioning methods on a real gateway: ``hybrid`` decides on device what the artifact can decide whole
and leaves the rest to the edge; ``on-device`` without an artifact answers 503 and is not ready; the
artifact is read again as it changes (a file by its size and time, an address with If-None-Match), a new
major version is refused and the one in use kept; /readyz and /metrics show the artifact in use."""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from proxy.notifications import telemetry
from proxy.notifications.log import stored
from tests.decisioning.adobe_cases import SCHEMA
from tests.inprocess import serve_in_thread
from tests.support import wait_for

ARTIFACT = json.loads((SCHEMA / "artifacts" / "TEST_ARTIFACT_AB_SIMPLE.json").read_text())
VISITOR = {"tntId": "338e3c1e51f7416a8e1ccba4f81acea0.28_0"}
LOCAL = {"id": VISITOR, "context": {"channel": "web"}, "execute": {"mboxes": [{"name": "mbox-magician", "index": 1}]}}
# another visitor: nothing of the first one's waits to ride on its call
EDGE_ONLY = {
    "id": {"tntId": "a9f3c1e51f7416a8e1ccba4f81acea1"},
    "context": {"channel": "web"},
    "execute": {"mboxes": [{"name": "home-hero", "index": 1}]},
}


@contextmanager
def gateway(upstream: str, root: Path, **settings: Any) -> Iterator[httpx.Client]:
    from proxy.app import create_app
    from proxy.settings import Settings

    settings = {"notification_max_delay_ms": 3_600_000, **settings}
    app = create_app(
        Settings(
            upstream=upstream,
            notification_store=root / "notifications",
            shutdown_grace_seconds=0,
            access_log=False,
            **settings,
        )
    )
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client


def deliver(client: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    return client.post("/rest/v1/delivery", params={"client": "demo"}, json=body)


def requests_made(emulator: httpx.Client) -> dict[str, int]:
    return dict(emulator.get("/_emulator/stats").json()["requests"])


@contextmanager
def deciding(
    method: str, upstream: str, root: Path, document: dict[str, Any] = ARTIFACT, **settings: Any
) -> Iterator[tuple[httpx.Client, Path]]:
    """A gateway deciding by ``method`` from one of Adobe's artifacts (the AB one unless told), written to
    a file of its own."""
    artifact = root / "rules.json"
    artifact.write_text(json.dumps(document))
    with gateway(upstream, root, decisioning_method=method, decisioning_artifact=str(artifact), **settings) as client:
        yield client, artifact


def metric(client: httpx.Client, series: str) -> float:
    """A series' value on /metrics (the registry is the test process's: compare before and after)."""
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{series} not on /metrics")


def options(answer: dict[str, Any]) -> list[Any]:
    return [option["content"] for option in answer.get("options", [])]


def readiness(client: httpx.Client) -> dict[str, Any]:
    return dict(client.get("/readyz").json()["checks"]["decisioning"])


def test_hybrid_decides_what_the_artifact_can_and_leaves_the_rest_to_the_edge(
    emulator: httpx.Client, emulator_url: str, tmp_path: Path
) -> None:
    with deciding("hybrid", emulator_url, tmp_path) as (client, _):
        before = requests_made(emulator)
        local = deliver(client, LOCAL)
        assert local.status_code == 200, local.text
        option = local.json()["execute"]["mboxes"][0]["options"][0]
        assert option["responseTokens"]["activity.decisioningMethod"] == "on-device"
        assert requests_made(emulator) == before, "decided on device"
        edge = deliver(client, EDGE_ONLY)
        assert edge.status_code == 200, edge.text
        assert "on-device" not in edge.text
        assert requests_made(emulator).get("delivery", 0) == before.get("delivery", 0) + 1, "the edge decided it"
        check = readiness(client)
        assert check["ok"] and check["method"] == "hybrid" and check["version"] == "1.0.0"


def test_on_device_only_answers_the_edge_only_mboxes_as_adobes_engine_does(
    emulator: httpx.Client, emulator_url: str, tmp_path: Path
) -> None:
    with deciding("on-device", emulator_url, tmp_path) as (client, _):
        before = requests_made(emulator)
        answer = deliver(client, EDGE_ONLY)
        assert answer.status_code == 200, answer.text
        document = answer.json()
        assert document["status"] == 206 and document["remoteMboxes"] == ["home-hero"]
        assert document["execute"]["mboxes"] == [{"name": "home-hero", "index": 1}]
        assert requests_made(emulator) == before


def test_the_single_mbox_api_is_decided_on_device_and_counted(
    emulator: httpx.Client, emulator_url: str, tmp_path: Path
) -> None:
    with deciding("hybrid", emulator_url, tmp_path) as (client, _):
        before = requests_made(emulator)
        view = client.post("/rest/v1/mbox", params={"client": "demo"}, json={"mbox": "mbox-magician", **VISITOR})
        assert view.status_code == 200, view.text
        answer = view.json()
        assert json.loads(answer["content"]) == {"doMagic": True, "importantValue": 150}
        assert answer["tntId"] == "338e3c1e51f7416a8e1ccba4f81acea0" and answer["sessionId"]
        assert requests_made(emulator) == before, "decided on device"
        queued = [record["p"] for record in stored(tmp_path / "notifications")]
        assert [(note["type"], note["mbox"]["name"]) for note in queued] == [("display", "mbox-magician")]
        assert queued[0][telemetry.RIDING][0]["features"]["decisioningMethod"] == "on-device"
        other = client.post("/rest/v1/mbox", params={"client": "demo"}, json={"mbox": "home-hero", "tntId": "b2"})
        assert other.status_code == 200 and requests_made(emulator).get("delivery", 0) == 1, "the edge's mbox"


def test_an_artifact_that_targets_by_geo_gets_the_place_of_the_address_once(
    emulator: httpx.Client, emulator_url: str, tmp_path: Path
) -> None:
    """The emulator's geo lookup (``/v1/geo``, as Adobe's CDN answers it) knows 203.0.113.10 as San
    Francisco, California, US; Adobe's geo artifact shows ``geo: true`` content there only."""
    geo_artifact = json.loads((SCHEMA / "artifacts" / "TEST_ARTIFACT_GEO.json").read_text())

    def view(visitor: str, address: str) -> dict[str, Any]:
        body = {
            "id": {"thirdPartyId": visitor},
            "context": {"channel": "web", "geo": {"ipAddress": address}},
            "execute": {"mboxes": [{"name": "mbox-geography", "index": 1}]},
        }
        answer = deliver(client, body)
        assert answer.status_code == 200, answer.text
        return dict(answer.json()["execute"]["mboxes"][0])

    with deciding("on-device", emulator_url, tmp_path, geo_artifact) as (client, _):
        placed = view("geo-visitor-1", "203.0.113.10")
        assert placed["options"][0]["content"]["geo"] is True
        assert placed["options"][0]["responseTokens"]["geo.city"] == "SAN FRANCISCO"
        assert view("geo-visitor-2", "203.0.113.10")["options"][0]["content"]["geo"] is True
        assert readiness(client)["geoLookups"] == 1, "an address is looked up once"
        elsewhere = view("geo-visitor-3", "192.0.2.44")  # an address the lookup places nowhere
        assert all(option["content"].get("geo") is not True for option in elsewhere.get("options", []))
        assert readiness(client)["geoLookups"] == 2


def test_the_batch_mbox_api_is_decided_on_device_and_counted(
    emulator: httpx.Client, emulator_url: str, tmp_path: Path
) -> None:
    with deciding("on-device", emulator_url, tmp_path) as (client, _):
        before = requests_made(emulator)
        body = {
            "client": "demo",
            "id": VISITOR,
            "mboxes": [{"indexId": 0, "mbox": "mbox-magician"}],
            "prefetch": [{"indexId": 1, "mbox": "mbox-magician"}],
        }
        batch = client.post("/rest/v2/batchmbox", json=body)
        assert batch.status_code == 200, batch.text
        answer = batch.json()
        assert answer["client"] == "demo" and answer["contentAsJson"] is False
        assert json.loads(answer["mboxResponses"][0]["content"]) == {"doMagic": True, "importantValue": 150}
        assert answer["mboxResponses"][0]["indexId"] == 0
        prefetched = answer["prefetchResponses"][0]
        assert prefetched["indexId"] == 1 and prefetched["eventTokens"], "prefetched: its event token"
        as_json = client.post("/rest/v2/batchmbox", json={**body, "contentAsJson": True}).json()
        assert as_json["mboxResponses"][0]["content"] == {"doMagic": True, "importantValue": 150}
        assert requests_made(emulator) == before, "decided on device"
        queued = [record["p"] for record in stored(tmp_path / "notifications")]
        assert [note["mbox"]["name"] for note in queued] == ["mbox-magician", "mbox-magician"], "each view counted"
        clicked = {**body, "mboxes": [{"indexId": 0, "mbox": "mbox-magician-clicked"}], "prefetch": []}
        assert client.post("/rest/v2/batchmbox", json=clicked).status_code == 200
        assert requests_made(emulator).get("batchmbox", 0) == 1, "a click goes to the edge"


def test_on_device_without_an_artifact_is_not_ready_and_answers_503(
    emulator: httpx.Client, emulator_url: str, tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere" / "rules.json"
    with gateway(emulator_url, tmp_path, decisioning_method="on-device", decisioning_artifact=str(missing)) as client:
        answer = deliver(client, LOCAL)
        assert answer.status_code == 503 and answer.headers["retry-after"]
        assert "artifact" in answer.json()["message"]
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert not ready.json()["checks"]["decisioning"]["ok"]
        assert "no artifact" in ready.json()["checks"]["decisioning"]["detail"]
    with gateway(emulator_url, tmp_path, decisioning_method="hybrid", decisioning_artifact=str(missing)) as client:
        assert deliver(client, LOCAL).status_code == 200, "hybrid: the edge decides meanwhile"
        assert readiness(client)["ok"]


def test_a_changed_file_is_read_again_and_a_new_major_version_refused(
    emulator: httpx.Client, emulator_url: str, tmp_path: Path
) -> None:
    with deciding("on-device", emulator_url, tmp_path, decisioning_polling_seconds=0.1) as (client, artifact):
        assert readiness(client)["version"] == "1.0.0"
        changed = copy.deepcopy(ARTIFACT)
        changed["version"] = "1.1.0"
        for rule in changed["rules"]["mboxes"]["mbox-magician"]:
            rule["consequence"]["options"][0]["content"] = {"changed": True}
        artifact.write_text(json.dumps(changed))
        wait_for(lambda: readiness(client)["version"] == "1.1.0", timeout=10)
        decided = metric(client, 'target_proxy_decisioning_requests_total{outcome="decided"}')
        option = deliver(client, LOCAL).json()["execute"]["mboxes"][0]["options"][0]
        assert option["content"] == {"changed": True}
        assert metric(client, 'target_proxy_decisioning_requests_total{outcome="decided"}') == decided + 1
        artifact.write_text(json.dumps({**changed, "version": "2.0.0"}))
        wait_for(lambda: readiness(client)["error"] is not None, timeout=10)
        check = readiness(client)
        assert check["version"] == "1.1.0" and "2.0.0" in check["error"] and check["ok"]
        metrics = client.get("/metrics").text
        assert 'target_proxy_decisioning_artifact_info{version="1.1.0"} 1.0' in metrics
        assert 'target_proxy_decisioning_artifact_info{version="1.0.0"} 0.0' in metrics
        assert 0 <= metric(client, "target_proxy_decisioning_artifact_age_seconds") < 5


class ScriptedCdn:
    """Adobe's artifact location played on loopback: the artifact with its ETag, 304 to a request that
    names it; what it was asked is kept."""

    def __init__(self) -> None:
        self.document = json.dumps(ARTIFACT).encode()
        self.tag = '"v1"'
        self.asked: list[tuple[str, str | None, str | None]] = []
        self.url = ""

    async def serve(self, request: web.Request) -> web.Response:
        self.asked.append((request.path, request.headers.get("if-none-match"), request.headers.get("host")))
        if request.headers.get("if-none-match") == self.tag:
            return web.Response(status=304)
        return web.Response(body=self.document, content_type="application/json", headers={"ETag": self.tag})


@pytest.fixture
def cdn() -> Iterator[ScriptedCdn]:
    import asyncio

    scripted = ScriptedCdn()
    ready = threading.Event()
    loop = asyncio.new_event_loop()

    async def start() -> web.AppRunner:
        app = web.Application()
        app.router.add_get("/{tail:.*}", scripted.serve)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        scripted.url = f"http://127.0.0.1:{port}"
        ready.set()
        return runner

    runner = loop.run_until_complete(start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    ready.wait(5)
    yield scripted
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def test_adobes_location_is_polled_with_if_none_match(cdn: ScriptedCdn, tmp_path: Path) -> None:
    """Unset, the artifact is Adobe's: assets.adobetarget.com/<client>/<environment>/v1/rules.json, reached
    as every Adobe host is (here a scripted one on loopback standing in for all of them)."""
    with gateway(cdn.url, tmp_path, decisioning_method="on-device", decisioning_polling_seconds=0.1) as client:
        assert deliver(client, LOCAL).status_code == 200
        # (the artifact targets by geo: the visitor's address is looked up at /v1/geo on the same host)
        artifact_reads = lambda: [asked for asked in cdn.asked if asked[0].endswith("rules.json")]  # noqa: E731
        wait_for(lambda: len(artifact_reads()) >= 3, timeout=10)
        path, first_tag, host = artifact_reads()[0]
        assert (path, first_tag, host) == ("/demo/production/v1/rules.json", None, "assets.adobetarget.com")
        assert all(tag == '"v1"' for _, tag, _ in artifact_reads()[1:]), "asked again with If-None-Match"
        check = readiness(client)
        assert check["version"] == "1.0.0" and check["ageSeconds"] < 5
        time.sleep(0.3)
        assert readiness(client)["ageSeconds"] < 5, "an unchanged artifact counts as read again"


def test_on_the_emulators_own_artifact_new_visitors_cost_no_decision_upstream_and_count_once(
    emulator: httpx.Client, emulator_url: str, tmp_path: Path
) -> None:
    """``on-device`` at Adobe's location, which the emulator serves from its catalog: new visitors through
    the three wire APIs are decided without a decision call upstream, each executed decision's display
    notification reaches the edge and is counted once, and the edge shows each visitor the same content."""
    with gateway(emulator_url, tmp_path, decisioning_method="on-device", notification_max_delay_ms=20) as client:
        assert readiness(client)["location"] == "https://assets.adobetarget.com/demo/production/v1/rules.json"
        shown: list[tuple[dict[str, Any], list[Any]]] = []  # (the visitor's Delivery request, what it showed)
        for n in range(90):
            device = {"device": "mobile"} if n % 2 else {}
            mboxes = [{"index": 1, "name": "home-hero"}, {"index": 2, "name": "kiosk-welcome", "parameters": device}]
            if n % 3 == 0:  # no id at all: the gateway gives one
                answer = deliver(client, {"context": {"channel": "web"}, "execute": {"mboxes": mboxes}}).json()
                seen = [options(each) for each in answer["execute"]["mboxes"]]
                ids = answer["id"]
            elif n % 3 == 1:
                ids = {"tntId": f"first-visit-{n}"}
                single = {"mbox": "kiosk-welcome", "mboxParameters": device, **ids}
                answer = client.post("/rest/v1/mbox", params={"client": "demo"}, json=single).json()
                mboxes, seen = mboxes[1:], [[answer["content"]]]
            else:
                ids = {"tntId": f"first-visit-{n}"}
                batch = {"client": "demo", "id": ids, "mboxes": [{"indexId": 0, "mbox": "home-hero"}]}
                answer = client.post("/rest/v2/batchmbox", json=batch).json()
                mboxes, seen = mboxes[:1], [[answer["mboxResponses"][0]["content"]]]
            shown.append(({"id": ids, "context": {"channel": "web"}, "execute": {"mboxes": mboxes}}, seen))
        executed = sum(len(seen) for _, seen in shown)
        counted = wait_for(lambda: (s := emulator.get("/_emulator/stats").json())["impressions"] == executed and s)
        assert counted["decisions"] == 0, "no new visitor cost a decision upstream"
        assert counted["notifications"]["display"] >= 1 and counted["notifications"]["duplicates"] == 0
        assert sum(a["impressions"] for a in counted["activities"].values()) == executed, "each counted once"
        assert requests_made(emulator)["rules_artifact"] == 1
    for n, (request, seen) in enumerate(shown):
        asked = {"client": "demo", "sessionId": f"server-side-{n}"}
        edge = emulator.post("/rest/v1/delivery", params=asked, json=request).json()
        assert [options(each) for each in edge["execute"]["mboxes"]] == seen, request["id"]


def test_what_is_prefetched_on_device_fills_the_cache_and_a_later_view_of_it_is_a_hit(
    emulator: httpx.Client, emulator_url: str, tmp_path: Path
) -> None:
    """A visitor's prefetched decisions are kept with their event tokens, as a miss's prefetch is: the
    view that shows one later is answered from the cache, and its display notification counts it."""
    visitor = {"id": {"tntId": "prefetching-visitor"}, "context": {"channel": "web"}}
    hero = [{"index": 1, "name": "home-hero", "parameters": {"screen": "wide"}}]
    with gateway(emulator_url, tmp_path, decisioning_method="on-device", notification_max_delay_ms=20) as client:
        hits = 'target_proxy_cache_lookups_total{outcome="hit"}'
        before = metric(client, hits)
        prefetched = deliver(client, {**visitor, "prefetch": {"mboxes": hero}}).json()["prefetch"]["mboxes"][0]
        assert prefetched["options"][0]["eventToken"]
        shown = deliver(client, {**visitor, "execute": {"mboxes": hero}}).json()["execute"]["mboxes"][0]
        other_context = deliver(client, {**visitor, "execute": {"mboxes": [{"index": 1, "name": "home-hero"}]}})
        assert metric(client, hits) == before + 1, "the view with the prefetch's context only"
        counted = wait_for(lambda: (s := emulator.get("/_emulator/stats").json())["impressions"] == 2 and s)
    assert options(shown) == options(prefetched) == options(other_context.json()["execute"]["mboxes"][0])
    assert counted["decisions"] == 0 and counted["notifications"]["duplicates"] == 0
