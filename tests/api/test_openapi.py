"""/openapi.json is a valid OpenAPI document describing the drop-in and the gateway's own endpoints."""

from __future__ import annotations

import re
from typing import Any

import httpx
from openapi_spec_validator import validate
from starlette.routing import Route

from proxy.api import openapi
from proxy.app import create_app, post_only
from proxy.settings import Settings
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
        "/data/{path}",
        "/healthz",
        "/readyz",
        "/metrics",
        "/_proxy/",
        "/_proxy/status",
        "/_proxy/cache",
        "/_proxy/queue",
    } <= paths


def shape(template: str) -> str:
    """A path template with its parameters unnamed: ``/m2/{client}/x`` and ``/m2/{c}/x`` are one route."""
    return re.sub(r"\{[^}]*\}", "{}", template)


def test_every_served_route_and_method_is_documented(gateway_settings: dict[str, Any]) -> None:
    """The document is checked against the application's own route table: the hot path's POST routes and
    every Starlette route, each method (but HEAD, and the 405s that name the delivery paths' one method)."""
    app = create_app(Settings(**gateway_settings))
    served = {("post", shape(template)) for template in app.routes()}
    for route in app.fallback.app.routes:  # type: ignore[attr-defined]
        assert isinstance(route, Route)
        if route.endpoint is post_only:
            continue
        served |= {(method.lower(), shape(route.path)) for method in route.methods or () if method != "HEAD"}
    document = openapi.document()
    documented = {(method, shape(path)) for path, operations in document["paths"].items() for method in operations}
    assert served - documented == set()
    assert documented - served == set(), "documented but not served"


def test_every_operation_has_a_unique_id() -> None:
    ids = [op["operationId"] for ops in openapi.document()["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids)) and all(re.fullmatch(r"[A-Za-z0-9]+", i) for i in ids), ids


def test_the_documented_client_code_is_the_one_the_gateway_checks() -> None:
    from proxy.api import checks
    from proxy.http.errors import ApiError

    documented = openapi.document()["paths"]["/rest/v1/mbox"]["post"]["parameters"][0]["schema"]["pattern"]

    def accepted(code: str) -> bool:
        try:
            checks.client_code(code)
        except ApiError:
            return False
        return True

    for code in ("demo", "a", "a-b", "A9", "-a", "a-", "a b", "a_b", "x" * 63, "x" * 64, ""):
        assert bool(re.fullmatch(documented, code)) == accepted(code), code
