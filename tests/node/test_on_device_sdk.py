"""Adobe's Node.js SDK (``@adobe/target-nodejs-sdk`` 2.4.3, with Adobe's own decisioning engine) deciding on
device from the emulator's rules artifact, fetched at Adobe's path, its notifications sent through the
gateway: it takes the artifact, shows each visitor what the emulator's edge shows it, asks the edge for
no decision, and the edge counts each display it notifies once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests.node.test_node_clients import node
from tests.servers import ServerProcess
from tests.support import wait_for

VISITORS = 40


def requests() -> list[dict[str, Any]]:
    made = []
    for n in range(VISITORS):
        page = "https://shop.example/sale/spring" if n % 2 else "https://shop.example/home"
        device = {"device": "mobile"} if n % 3 == 0 else {"screenWidth": "1280"}
        mboxes = [
            {"name": "home-hero", "index": 1},
            {"name": "kiosk-welcome", "index": 2, "parameters": device},
            {"name": "product-reco", "index": 3},
        ]
        made.append(
            {
                "id": {"tntId": f"sdk-visitor-{n}"},
                "context": {"channel": "web", "address": {"url": page}},
                "execute": {"pageLoad": {}, "mboxes": mboxes},
            }
        )
    return made


def shown(decision: dict[str, Any]) -> list[Any]:
    return [option["content"] for option in decision.get("options", [])]


def test_adobes_engine_decides_from_the_emulators_artifact_as_the_edge_does(
    served: ServerProcess, tmp_path: Path
) -> None:
    asked = requests()
    (tmp_path / "requests.json").write_text(json.dumps(asked))
    gateway, edge_url = served.url.removeprefix("http://"), served.urls["emulator"]
    artifact = f"{edge_url}/demo/production/v1/rules.json"
    out = node("on_device.js", gateway, artifact, str(tmp_path / "requests.json"))
    emulator = httpx.Client(base_url=edge_url)

    assert emulator.get("/_emulator/stats").json()["requests"]["rules_artifact"] == 1
    assert {call.split("/", 1)[0] for call in out["calls"]} == {gateway}, "its notifications through the gateway"
    decided = out["visitors"]
    assert all(each["status"] == 200 and each["method"] == "on-device" for each in decided)
    executed = sum(len(each["mboxes"]) for each in decided) + sum(bool(each["pageLoad"]) for each in decided)
    counted = wait_for(lambda: (s := emulator.get("/_emulator/stats").json())["impressions"] >= executed and s)
    assert counted["decisions"] == 0, "decided on device: no decision asked of the edge"
    assert counted["notifications"]["duplicates"] == 0
    seen = set()
    for n, (request, on_device) in enumerate(zip(asked, decided, strict=True)):
        query = {"client": "demo", "sessionId": f"edge-{n}"}
        edge = emulator.post("/rest/v1/delivery", params=query, json=request).json()["execute"]
        assert on_device["mboxes"] == [shown(each) for each in edge["mboxes"]], request
        assert on_device["pageLoad"] == shown(edge["pageLoad"]), request
        seen.update(json.dumps(content) for each in on_device["mboxes"] for content in each)
    assert len(seen) >= 5, "both heroes, both kiosk screens and the recommendations"
