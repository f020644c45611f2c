"""/openapi.json is a valid OpenAPI document describing the drop-in and the gateway's own endpoints."""

from __future__ import annotations

import httpx
from openapi_spec_validator import validate

from tests.servers import ServerProcess


def test_openapi_validates_and_describes_every_route(gateway_process: ServerProcess) -> None:
    document = httpx.get(f"{gateway_process.url}/openapi.json").json()
    validate(document)
    paths = set(document["paths"])
    assert {
        "/rest/v1/mbox/{sessionId}",
        "/rest/v1/mbox",
        "/rest/v2/batchmbox",
        "/rest/v1/delivery",
        "/rest/v1/profiles/{tntId}",
        "/rest/v1/profiles/thirdPartyId/{thirdPartyId}",
        "/m2/{client}/profile/update",
        "/m2/{client}/v2/profile/batchUpdate",
        "/m2/{client}/v2/profile/batchStatus",
        "/{tenant}/target/{path}",
        "/data/core/{path}",
        "/healthz",
        "/readyz",
        "/metrics",
        "/_proxy/",
        "/_proxy/status",
        "/_proxy/cache",
        "/_proxy/queue",
    } <= paths
