"""Keys, settings and request helpers shared by the admin passthrough tests (client → gateway → emulator)."""

from __future__ import annotations

import asyncio
import http.client
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import httpx
import orjson

from proxy.emulator import aep
from tests.conftest import CLIENT_KEYS, PROFILE_KEY
from tests.support import Answer

TENANT = "demo"
CLIENT_ID = "emulator-client-id"
CLIENT_SECRET = "emulator-client-secret"
ORG_ID = "EMULATOR@AdobeOrg"
SANDBOX = "prod"

ADMIN_KEY = "admin-key-for-tests-000001"
ACTIVATION_KEY = "activation-key-for-tests-01"
KEYS = {**CLIENT_KEYS, ADMIN_KEY: ["admin"], ACTIVATION_KEY: ["activation"]}
AS_ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
AS_ACTIVATION = {"Authorization": f"Bearer {ACTIVATION_KEY}"}
AS_PROFILE = {"Authorization": f"Bearer {PROFILE_KEY}"}
# The gateway's own credentials for the management APIs: the emulator's IMS integration.
CREDENTIALS = {
    "ims_client_id": CLIENT_ID,
    "ims_client_secret": CLIENT_SECRET,
    "ims_org_id": ORG_ID,
    "sandbox_name": SANDBOX,
}

TARGET = f"/{TENANT}/target"
ADHOC = "/data/core/activation/disflowprovider/adhocrun"
SEGMENT_JOBS = "/data/core/ups/segment/jobs"
EXPORT_JOBS = "/data/core/ups/export/jobs"
EXTERNAL = "/data/core/ais"
V2_ACCEPT = "application/vnd.adobe.adhoc.activation+json; version=2"
RUNS_HOST = "https://platform.adobe.io"


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def stats(emulator: httpx.Client) -> dict[str, Any]:
    return ok(emulator.get("/_emulator/stats"))


def calls(emulator: httpx.Client) -> dict[str, int]:
    """Target and AEP API calls the emulator received since its last reset, by route."""
    return stats(emulator)["requests"]


def tokens_issued(emulator: httpx.Client) -> int:
    return int(stats(emulator)["tokens_issued"])


def last_request(emulator: httpx.Client, route: str) -> dict[str, Any]:
    """Method, path, query and headers of the last call upstream received on ``route``."""
    return ok(emulator.get("/_emulator/last-request", params={"route": route}))


def advance(emulator: httpx.Client, seconds: float) -> None:
    ok(emulator.post("/_emulator/clock", json={"advance_seconds": seconds}))


def set_admin_rate(emulator: httpx.Client, per_minute: int) -> None:
    ok(emulator.post("/_emulator/limits", json={"admin_rate_per_minute": per_minute}))


def configure_aep(emulator: httpx.Client, **world: Any) -> dict[str, Any]:
    return ok(emulator.post("/_emulator/aep", json=world))


def raw_get(base_url: str, target: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """A GET whose request target goes on the wire exactly as written (no client-side normalization)."""
    address = urlsplit(base_url)
    connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=10)
    try:
        connection.request("GET", target, headers=headers)
        response = connection.getresponse()
        return response.status, orjson.loads(response.read() or b"{}")
    finally:
        connection.close()


def assert_error(response: httpx.Response, status: int, words: str = "") -> dict[str, Any]:
    """The gateway's own JSON error: ``{"status", "message"[, "field"]}``; on Experience Platform's paths
    with Platform's ``type``, ``title`` and ``detail`` (the message) too."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    platform = {"type", "title", "detail"}
    assert body["status"] == status and set(body) - platform <= {"status", "message", "field"}, body
    if response.request.url.path.startswith("/data/"):
        assert platform <= set(body) and body["detail"] == body["message"], body
    else:
        assert not platform & set(body), body
    assert words in body["message"], body
    return body


def activation_info(*audiences: str, destination: str = aep.SFTP_DESTINATION) -> dict[str, Any]:
    return {"activationInfo": {destination: list(audiences)}}


def export_body(*segments: str) -> dict[str, Any]:
    """A segment export job of ``segments``: NEW, then PROCESSING, until it succeeds on the emulator's clock."""
    return {
        "fields": "identities.id",
        "filter": {"segments": [{"segmentId": s, "status": ["realized"]} for s in segments]},
        "destination": {"datasetId": "5b7c86968f7b6501e21ba9df", "segmentPerBatch": False},
        "schema": {"name": "_xdm.context.profile"},
    }


class ShiftedClock:
    """The gateway's monotonic clock, moved on by hand in step with the emulator's ``/_emulator/clock``."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def advance_both(emulator: httpx.Client, clock: ShiftedClock, seconds: float) -> None:
    """Time passes for the emulator and the gateway alike."""
    advance(emulator, seconds)
    clock.advance(seconds)


async def _send_all(
    base_url: str, method: str, path: str, headers: dict[str, str], count: int, json: Any
) -> list[Answer]:
    async with aiohttp.ClientSession(base_url, timeout=aiohttp.ClientTimeout(total=60)) as session:

        async def one() -> Answer:
            async with session.request(method, path, headers=headers, json=json) as response:
                raw = await response.read()
                body = await response.json(content_type=None) if raw else None
                return Answer(response.status, body, dict(response.headers))

        return list(await asyncio.gather(*(one() for _ in range(count))))


def send_concurrently(
    base_url: str, method: str, path: str, headers: dict[str, str], count: int, json: Any = None
) -> list[Answer]:
    """``count`` identical requests in flight at once, over as many connections; answers in no order."""
    return asyncio.run(_send_all(base_url, method, path, headers, count, json))
