"""Request helpers shared by the emulator tests: every call goes over a loopback socket."""

from __future__ import annotations

import time
from typing import Any, TypeVar

import httpx

from tests.conftest import REPLICATION_DELAY_MS

CLIENT = "demo"
REPLICATION_DELAY_S = REPLICATION_DELAY_MS / 1000
WEB = {"channel": "web"}

HERO_A = '<div class="hero">Spring sale: 10% off everything</div>'
HERO_B = '<div class="hero">Free shipping on orders over $50</div>'
BANNER_GOLD = '<div class="banner">Gold members: early access</div>'
BANNER_CALIFORNIA = '<div class="banner">Same-day delivery in California</div>'
BANNER_DEFAULT = '<div class="banner">Welcome!</div>'
KIOSK_DEFAULT = "<h1>Welcome to the store</h1>"
KIOSK_MOBILE = "<h1>Scan to get the app</h1>"
RECO = {"layout": "grid", "items": ["sku-1", "sku-2", "sku-3"]}
SALE_RIBBON = "<div>Sale pages get a sale ribbon</div>"

T = TypeVar("T")


def edge(cluster: int) -> dict[str, str]:
    """Headers that send a request to edge cluster ``cluster``."""
    return {"Host": f"mboxedge{cluster}.tt.omtrdc.net"}


def now_ms() -> int:
    return int(time.time() * 1000)


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def mbox(
    client: httpx.Client, body: dict[str, Any], session: str = "session-1", cluster: int | None = None
) -> dict[str, Any]:
    """POST /rest/v1/mbox/{session}?client=demo, expecting success."""
    headers = edge(cluster) if cluster is not None else None
    return ok(client.post(f"/rest/v1/mbox/{session}", params={"client": CLIENT}, json=body, headers=headers))


def batch(client: httpx.Client, body: dict[str, Any], cluster: int | None = None) -> dict[str, Any]:
    headers = edge(cluster) if cluster is not None else None
    return ok(client.post("/rest/v2/batchmbox", json={"client": CLIENT, **body}, headers=headers))


def deliver(
    client: httpx.Client, body: dict[str, Any], session: str = "session-1", cluster: int | None = None
) -> httpx.Response:
    """POST /rest/v1/delivery?client=demo&sessionId=..., with ``context`` defaulted to the web channel."""
    headers = edge(cluster) if cluster is not None else None
    return client.post(
        "/rest/v1/delivery",
        params={"client": CLIENT, "sessionId": session},
        json={"context": WEB, **body},
        headers=headers,
    )


def delivery(
    client: httpx.Client, body: dict[str, Any], session: str = "session-1", cluster: int | None = None
) -> dict[str, Any]:
    return ok(deliver(client, body, session, cluster))


def stats(client: httpx.Client) -> dict[str, Any]:
    return ok(client.get("/_emulator/stats"))


def activity_counts(client: httpx.Client, activity_id: int) -> dict[str, Any]:
    return stats(client)["activities"].get(str(activity_id), {})


def profile(client: httpx.Client, tnt_id: str, cluster: int | None = None) -> dict[str, Any]:
    headers = edge(cluster) if cluster is not None else None
    return ok(client.get(f"/rest/v1/profiles/{tnt_id}", params={"client": CLIENT}, headers=headers))


def attributes(document: dict[str, Any]) -> dict[str, str]:
    """A profile document's attributes as ``{name: value}``."""
    return {name: entry["value"] for name, entry in document["profileAttributes"].items()}


def assert_bad_request(response: httpx.Response, field: str) -> dict[str, Any]:
    """A 400 whose JSON body names ``field``: ``{"status": 400, "message": "<field>: ...", "field": ...}``."""
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"status", "message", "field"}, body
    assert body["status"] == 400
    assert body["field"] == field, body
    assert body["message"].startswith(f"{field}: "), body
    return body
