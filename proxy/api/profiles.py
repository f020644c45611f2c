"""Profile API passthrough: fetch, single update and bulk update v2 with its batch status.

Fetches and single updates go to the edge of the visitor when the gateway knows it, so a profile is
read and written where it lives. Bulk status links, which upstream gives on an ``mboxedgeNN`` host,
are rewritten to point at the gateway.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import quote, urlencode

from cachetools import LRUCache
from starlette.requests import Request
from starlette.responses import Response

from proxy.api import checks, validation
from proxy.content.affinity import edge_host_for, located_tnt_id
from proxy.content.sessions import EDGE_HOST, SessionRecord, SessionStore
from proxy.content.visitors import VisitorIds, split_location
from proxy.http.bodies import JSONAnswer, read_bytes, read_form, request_headers
from proxy.http.errors import upstream_error
from proxy.management import batch_files
from proxy.management.auth import ClientKeys
from proxy.management.ratelimit import CallBudget
from proxy.settings import Settings
from proxy.upstream import Upstream, UpstreamResponse, client_host

MAX_BATCH_BYTES = 50 * 1024 * 1024
BATCH_STATUS_LINK = re.compile(r"https?://[^/<\s]+(/m2/[^/<\s]+/v2/profile/batchStatus\?[^<\s]*)")
BATCH_ID = re.compile(r"batchId=([^&<\s]+)")


def passthrough(response: UpstreamResponse, body: bytes | None = None) -> Response:
    if response.status >= 400:
        raise upstream_error(response)
    content_type = response.headers.get("Content-Type", "application/octet-stream")
    return Response(response.body if body is None else body, response.status, media_type=content_type)


class ProfileRoutes:
    def __init__(
        self,
        settings: Settings,
        upstream: Upstream,
        sessions: SessionStore,
        keys: ClientKeys,
        budget_for: Callable[[str], CallBudget],
    ) -> None:
        self.settings = settings
        self.upstream = upstream
        self.sessions = sessions
        self.keys = keys
        # Which edge answered a bulk batch, so its status is asked there.
        self._batch_edges: LRUCache[str, str] = LRUCache(maxsize=10_000)
        # The bulk profile API takes 50 calls a minute per client (one for all gateways sharing Redis).
        self.budget_for = budget_for
        self._budgets: dict[str, CallBudget] = {}

    def budget(self, client: str) -> CallBudget:
        budget = self._budgets.get(client)
        if budget is None:
            budget = self._budgets[client] = self.budget_for(client)
        return budget

    # GET /rest/v1/profiles/{tnt_id}?client=C
    async def fetch_by_tnt_id(self, request: Request) -> Response:
        if self.settings.profile_read_requires_key:
            await self.keys.admit(request, "profile")
        client = checks.client_code(request.query_params.get("client"))
        tnt_id = checks.tnt_id(request.path_params["tnt_id"], "tntId", 128)
        assert tnt_id is not None
        record = await self._find(VisitorIds.parse({"tntId": tnt_id}).keys(client))
        path = f"/rest/v1/profiles/{quote(located_tnt_id(tnt_id, record), safe='')}?{request.url.query}"
        return await self._fetch(request, edge_host_for(record, client), path)

    # GET /rest/v1/profiles/thirdPartyId/{third_party_id}?client=C
    async def fetch_by_third_party_id(self, request: Request) -> Response:
        if self.settings.profile_read_requires_key:
            await self.keys.admit(request, "profile")
        client = checks.client_code(request.query_params.get("client"))
        third_party_id = checks.text(request.path_params["third_party_id"], "thirdPartyId", 128, required=True)
        assert third_party_id is not None
        record = await self._find(VisitorIds(third_party_id=third_party_id).keys(client))
        path = f"/rest/v1/profiles/thirdPartyId/{quote(third_party_id, safe='')}?{request.url.query}"
        return await self._fetch(request, edge_host_for(record, client), path)

    async def _find(self, keys: list[str]) -> SessionRecord | None:
        """The visitor's record (brought from Redis first when gateways share their sessions)."""
        await self.sessions.prepare(keys, None, create=False)
        return self.sessions.find(keys)

    async def _fetch(self, request: Request, host: str, path: str) -> Response:
        response = await self.upstream.request("GET", host, path, headers=request_headers(request, None))
        if response.status >= 400:
            raise upstream_error(response)
        document = response.json()
        if isinstance(document, dict) and isinstance(document.get("tntId"), str):
            document["tntId"] = split_location(document["tntId"])[0]
        return JSONAnswer(document)

    # GET|POST /m2/{client}/profile/update?mboxPC=...&profile.name=value
    async def update(self, request: Request) -> Response:
        await self.keys.admit(request, "profile")
        client = checks.client_code(request.path_params["client"])
        query = dict(request.query_params)
        if request.method == "POST":
            query.update(await read_form(request, self.settings.max_body_bytes))
        kind, identity, _ = validation.profile_update(query)
        if kind == "mboxPC":
            record = await self._find(VisitorIds.parse({"tntId": identity}).keys(client))
            query["mboxPC"] = located_tnt_id(identity, record)
        else:
            record = await self._find(VisitorIds(third_party_id=identity).keys(client))
        path = f"/m2/{quote(client, safe='')}/profile/update?{urlencode(query)}"
        response = await self.upstream.request(
            "GET", edge_host_for(record, client), path, headers=request_headers(request, None)
        )
        return passthrough(response)

    # POST /m2/{client}/v2/profile/batchUpdate, and v1's /m2/{client}/profile/batchUpdate (which only updates
    # profiles that exist and answers an overall status)
    async def batch_update(self, request: Request) -> Response:
        await self.keys.admit(request, "profile")
        client = checks.client_code(request.path_params["client"])
        body = await read_bytes(request, MAX_BATCH_BYTES)
        # A file upstream would refuse costs a call of the client's budget: its head is checked here.
        batch_files.read_head(batch_files.rows(batch_files.batch_text(body)))
        content_type = request.headers.get("content-type", "application/x-www-form-urlencoded")
        await self.budget(client).spend()
        response = await self.upstream.request(
            "POST",
            client_host(client),
            f"/m2/{quote(client, safe='')}/{'v2/' if '/v2/' in request.url.path else ''}profile/batchUpdate",
            body=body,
            headers=request_headers(request, content_type),
            timeout_ms=self.settings.upstream_bulk_timeout_ms,
        )
        if response.status >= 400:
            raise upstream_error(response)
        text = response.body.decode("utf-8", "replace")
        gateway = str(request.base_url).rstrip("/")

        def to_gateway(match: re.Match[str]) -> str:
            host = match.group(0).split("/")[2]
            batch = BATCH_ID.search(match.group(1))
            if batch and EDGE_HOST.match(host):
                self._batch_edges[batch.group(1)] = host
            return gateway + match.group(1)

        return passthrough(response, BATCH_STATUS_LINK.sub(to_gateway, text).encode())

    # GET /m2/{client}/v2/profile/batchStatus?batchId=...
    async def batch_status(self, request: Request) -> Response:
        await self.keys.admit(request, "profile")
        client = checks.client_code(request.path_params["client"])
        batch_id = checks.text(request.query_params.get("batchId"), "batchId", 256, required=True)
        assert batch_id is not None
        host = self._batch_edges.get(batch_id) or client_host(client)
        await self.budget(client).spend()
        path = f"/m2/{quote(client, safe='')}/v2/profile/batchStatus?{request.url.query}"
        response = await self.upstream.request(
            "GET", host, path, headers=request_headers(request, None), timeout_ms=self.settings.upstream_bulk_timeout_ms
        )
        return passthrough(response)
