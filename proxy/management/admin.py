"""Passthrough of the management APIs with the gateway's own credentials.

- Target Admin API: ``/{tenant}/target/...`` to ``mc.adobe.io``;
- Experience Platform: ``/data/core/activation/...``, ``/data/core/ups/...``, ``/data/core/ais/...`` (and
  the flow-service run behind an activation's status link) to ``platform.adobe.io``.

Only the paths of those APIs are forwarded (an allowlist; never a host or scheme from the request, no
dot segments or encoded slashes). Clients present their own gateway key with the ``admin`` or
``activation`` scope; the gateway adds its IMS token, API key, org and sandbox, refreshing the token
once when upstream refuses it. Target's 50 calls a minute are spent here, a batch counting each of
its operations. A successful change to activities, offers or audiences clears the cached content it
can affect.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from proxy.content.cache import ContentCache
from proxy.http.bodies import read_bytes
from proxy.http.errors import ANSWERED, ApiError, answer_for, error_body, problem
from proxy.management.activation import ActivationGuard
from proxy.management.auth import ClientKeys
from proxy.management.credentials import TokenProvider
from proxy.management.ratelimit import CallBudget
from proxy.settings import Settings
from proxy.upstream import Upstream, UpstreamResponse, UpstreamUnavailable

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
NUMBER = r"\d{1,19}"
NAME = r"[^/]{1,250}"
TARGET_PATHS = [
    re.compile(rf"^/{pattern}/?$")
    for pattern in (
        "activities",
        "activities/(ab|xt)",
        rf"activities/(ab|xt)/{NUMBER}",
        rf"activities/((ab|xt)/)?{NUMBER}/(name|state|priority|schedule)",
        rf"activities/{NUMBER}/changelog",
        rf"activities/(ab|xt|abt)/{NUMBER}/report/(performance|orders)",
        rf"activities/(ab|xt)/{NUMBER}/orders/performance",
        "offers",
        "offers/(content|json)",
        rf"offers/(content|json)/{NUMBER}",
        "audiences",
        rf"audiences/{NUMBER}",
        "mboxes",
        f"mbox/{NAME}",
        "profileattributes/mbox",
        "environments",
        rf"environments/{NUMBER}",
        "properties",
        rf"properties/{NUMBER}",
        "batch",
    )
]
ID = r"[A-Za-z0-9._:-]{1,128}"
PLATFORM_PATHS = [
    re.compile(rf"^{pattern}/?$")
    for pattern in (
        "/data/core/activation/disflowprovider/adhocrun",
        "/data/core/ups/segment/jobs",
        f"/data/core/ups/segment/jobs/{ID}",
        "/data/core/ups/export/jobs",
        f"/data/core/ups/export/jobs/{ID}",
        "/data/core/ais/external-audience",
        f"/data/core/ais/external-audiences?/operations/{ID}",
        f"/data/core/ais/external-audience/{ID}",
        f"/data/core/ais/external-audience/{ID}/runs",
        f"/data/core/ais/external-audience/{ID}/runs/{ID}",
        f"/data/foundation/flowservice/runs/{ID}",
    )
]
CLIENT_HEADERS = ("content-type", "accept")
SANDBOX_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}")
SANDBOX_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
ANSWER_HEADERS = ("content-type", "retry-after", "location")
RUN_LINK = re.compile(rb"https?://[A-Za-z0-9.-]+(?::\d+)?(/data/foundation/flowservice/runs/[A-Za-z0-9._:-]+)")
CATALOG_CHANGES = re.compile(r"^/(activities|offers|audiences|batch)\b")
# What a path segment may carry unencoded (RFC 3986 pchar); the rest goes upstream %-encoded again.
PATH_SAFE = "/:@!$&'()*+,;="


def check_path(request: Request) -> str:
    """The decoded path, refused if it could point anywhere but where it says."""
    raw = request.scope.get("raw_path", b"").lower()
    path: str = request.scope["path"]
    if b"%2f" in raw or b"%5c" in raw or b"%2e" in raw or "\\" in path:
        raise ApiError(400, "path: encoded slashes and dots are not allowed", "path")
    segments = path.split("/")[1:]
    if any(segment in ("", ".", "..") for segment in segments[:-1]) or segments[-1] in (".", ".."):
        raise ApiError(400, "path: empty and dot segments are not allowed", "path")
    return path


def passthrough(response: UpstreamResponse, body: bytes | None = None) -> Response:
    headers = {name: value for name in ANSWER_HEADERS[1:] if (value := response.headers.get(name)) is not None}
    content_type = response.headers.get("content-type") or "application/json"
    if response.status >= 400 and "json" not in content_type:
        # Upstream's error page (an HTML one, say) becomes the gateway's JSON error.
        return Response(
            error_body(response.status, f"upstream answered {response.status}"),
            response.status,
            headers,
            media_type="application/json",
        )
    return Response(response.body if body is None else body, response.status, headers, media_type=content_type)


@dataclass
class AdminRoutes:
    settings: Settings
    upstream: Upstream
    tokens: TokenProvider
    keys: ClientKeys
    cache: ContentCache
    guard: ActivationGuard
    budget: CallBudget

    def routes(self) -> list[Route]:
        return [
            Route("/{tenant}/target/{rest:path}", self.target, methods=METHODS),
            Route("/data/{rest:path}", self.platform, methods=METHODS),
        ]

    async def body(self, request: Request) -> bytes | None:
        if request.method not in ("POST", "PUT", "PATCH"):
            return None
        return await read_bytes(request, self.settings.max_body_bytes)

    async def forward(
        self, request: Request, host: str, path: str, body: bytes | None, *, platform: bool
    ) -> UpstreamResponse:
        """The client's call, to ``host`` with the gateway's credentials (and, on Experience Platform, the
        sandbox the client names)."""
        headers = {name: value for name in CLIENT_HEADERS if (value := request.headers.get(name)) is not None}
        if platform:
            headers.update(self.sandbox_headers(request))
        query = f"?{request.url.query}" if request.url.query else ""
        # Encoded once more, so that upstream decodes the very path checked here (%252F stays a "%2F").
        target = quote(path, safe=PATH_SAFE) + query
        return await self.send(request.method, host, target, body, headers, platform=platform)

    def sandbox_headers(self, request: Request) -> dict[str, str]:
        """The client's ``x-sandbox-name`` (and ``x-sandbox-id``), checked against ``sandbox_allowlist``;
        none: the gateway's ``sandbox_name`` (credentials.headers)."""
        headers: dict[str, str] = {}
        name = request.headers.get("x-sandbox-name")
        if name is not None:
            if not SANDBOX_NAME.fullmatch(name):
                raise ApiError(400, "x-sandbox-name: must be a sandbox name (letters, digits, -)", "x-sandbox-name")
            allowed = self.settings.sandbox_allowlist
            if allowed and name not in allowed:
                raise ApiError(
                    403, f"x-sandbox-name: sandbox {name!r} is not one this gateway lets clients use", "x-sandbox-name"
                )
            headers["x-sandbox-name"] = name
        sandbox_id = request.headers.get("x-sandbox-id")
        if sandbox_id is not None:
            if not SANDBOX_ID.fullmatch(sandbox_id):
                raise ApiError(400, "x-sandbox-id: must be a sandbox id", "x-sandbox-id")
            headers["x-sandbox-id"] = sandbox_id
        return headers

    async def send(
        self,
        method: str,
        host: str,
        path_and_query: str,
        body: bytes | None,
        headers: dict[str, str],
        *,
        platform: bool,
    ) -> UpstreamResponse:
        """Send with the gateway's credentials; once more with a fresh token if upstream refused it."""
        for attempt in range(2):
            credentials = await self.tokens.headers(platform=platform)
            response = await self.upstream.request(
                method, host, path_and_query, body=body, headers={**credentials, **headers}
            )
            if response.status != 401 or attempt:
                return response
            self.tokens.invalidate(credentials["authorization"].removeprefix("Bearer "))
        raise AssertionError("unreachable")  # pragma: no cover

    # /{tenant}/target/...
    async def target(self, request: Request) -> Response:
        await self.keys.admit(request, "admin")
        path = check_path(request)
        tenant, rest = request.path_params["tenant"], "/" + request.path_params["rest"]
        if not TENANT.fullmatch(tenant):
            raise ApiError(400, "tenant: must be a tenant name", "tenant")
        if not any(pattern.match(rest) for pattern in TARGET_PATHS):
            raise ApiError(404, f"{rest} is not a Target Admin API path this gateway forwards", "path")
        body = await self.body(request)
        await self.budget.spend(batch_size(body) if rest.rstrip("/") == "/batch" else 1)
        change = request.method != "GET" and CATALOG_CHANGES.match(rest) is not None
        try:
            response = await self.forward(request, self.settings.admin_host, path, body, platform=False)
        except UpstreamUnavailable:
            if change:  # no answer (a timeout, a lost connection): the change may have been made all the same
                self.cache.purge_all()
            raise
        if change and 200 <= response.status < 300:
            self.invalidate(request.method, rest, response)
            await self.cache.published()  # gateways sharing the cache have dropped it too
        return passthrough(response)

    def invalidate(self, method: str, rest: str, response: UpstreamResponse) -> None:
        """Clear what a change can affect: the mboxes of an activity created or deleted, as the answer names
        them; else all (an update may have moved an activity off mboxes that only upstream still knows)."""
        mboxes: list[str] = []
        if rest.startswith("/activities") and method in ("POST", "DELETE"):
            try:
                document = orjson.loads(response.body)
                mboxes = [m["name"] for m in document.get("locations", {}).get("mboxes", [])]
            except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError):
                mboxes = []
        if mboxes:
            for mbox in mboxes:
                self.cache.purge_mbox(None, mbox)
        else:
            self.cache.purge_all()

    # /data/...
    async def platform(self, request: Request) -> Response:
        """Experience Platform's calls; the gateway's own refusals carry Platform's error fields too."""
        try:
            return await self._platform(request)
        except ANSWERED as exc:
            raise problem(answer_for(exc)) from None

    async def _platform(self, request: Request) -> Response:
        await self.keys.admit(request, "activation")
        path = check_path(request)
        if not any(pattern.match(path) for pattern in PLATFORM_PATHS):
            raise ApiError(404, f"{path} is not an Experience Platform path this gateway forwards", "path")
        body = await self.body(request)
        adhoc = path.rstrip("/").endswith("/adhocrun") and request.method == "POST"
        if adhoc:
            job = await self.guard.admit(body, request.headers.get("accept", ""), self.check_exports)
            try:
                response = await self.forward(request, self.settings.platform_host, path, body, platform=True)
            except BaseException:
                self.guard.abandon(job)
                raise
            self.guard.started(job, response)
            return passthrough(response, self.to_gateway(request, response.body))
        response = await self.forward(request, self.settings.platform_host, path, body, platform=True)
        return passthrough(response)

    def to_gateway(self, request: Request, body: bytes) -> bytes:
        """Status links of the runs an activation started, pointed at the gateway (which forwards them with
        its credentials), as batchStatus links are."""
        gateway = str(request.base_url).rstrip("/").encode()
        return RUN_LINK.sub(lambda match: gateway + match.group(1), body)

    async def check_exports(self, path_and_query: str) -> Any:
        """A GET on the platform with the gateway's credentials, for the activation guard."""
        response = await self.send("GET", self.settings.platform_host, path_and_query, None, {}, platform=True)
        if response.status != 200:
            return None
        try:
            return orjson.loads(response.body)
        except orjson.JSONDecodeError:
            return None


def batch_size(body: bytes | None) -> int:
    """How many calls a Target batch request makes: one per operation (1 to 256)."""
    try:
        operations = orjson.loads(body or b"").get("operations")
    except (orjson.JSONDecodeError, AttributeError):
        raise ApiError(400, "body: a batch is a JSON object with operations", "body") from None
    if not isinstance(operations, list) or not 1 <= len(operations) <= 256:
        raise ApiError(400, "operations: a batch has 1 to 256 operations", "operations")
    return len(operations)
