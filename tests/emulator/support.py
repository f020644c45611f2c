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


# --- management APIs: IMS, Target Admin, Experience Platform ---------------------------------------------

CLIENT_ID = "emulator-client-id"
CLIENT_SECRET = "emulator-client-secret"
ORG_ID = "EMULATOR@AdobeOrg"
TENANT = "demo"
IMS_FORM = {
    "grant_type": "client_credentials",
    "client_id": CLIENT_ID,
    "client_secret": CLIENT_SECRET,
    "scope": "openid,AdobeID,target_sdk",
}
V2_ACCEPT = "application/vnd.adobe.adhoc.activation+json; version=2"


def access_token(client: httpx.Client) -> str:
    return ok(client.post("/ims/token/v3", data=IMS_FORM))["access_token"]


def admin_headers(client: httpx.Client) -> dict[str, str]:
    """What the Target Admin API needs: a fresh IMS token and the API key."""
    return {"Authorization": f"Bearer {access_token(client)}", "x-api-key": CLIENT_ID}


def platform_headers(client: httpx.Client, **extra: str) -> dict[str, str]:
    """What Experience Platform needs: token, API key, IMS org and sandbox."""
    return {**admin_headers(client), "x-gw-ims-org-id": ORG_ID, "x-sandbox-name": "prod", **extra}


def advance(client: httpx.Client, seconds: float) -> None:
    """Move the emulator's clock on: tokens expire, rate windows pass, AEP jobs progress."""
    ok(client.post("/_emulator/clock", json={"advance_seconds": seconds}))


def assert_admin_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The Target Admin API's error body; returns its single error."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"httpStatus", "requestId", "requestTime", "errors"}, body
    assert body["httpStatus"] == status and body["requestId"] and body["requestTime"].endswith("Z")
    (error,) = body["errors"]
    if code is not None:
        assert error["errorCode"] == code, error
    return error


def assert_problem(response: httpx.Response, status: int, detail: str | None = None) -> dict[str, Any]:
    """Experience Platform's RFC 7807-style body; ``detail`` must appear in its detail."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"type", "status", "title", "detail"} and body["status"] == status, body
    if detail is not None:
        assert detail in body["detail"], body
    return body
