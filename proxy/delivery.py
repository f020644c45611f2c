"""Drop-in delivery routes: single mbox, batch mbox and the Delivery API, forwarded upstream with the
visitor's session and edge."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

import orjson
from starlette.requests import Request
from starlette.responses import Response

from proxy import validation
from proxy.affinity import edge_host_for, learn_and_hide, restore_ids
from proxy.bodies import JSONAnswer, forwarded_headers, read_json
from proxy.errors import ApiError
from proxy.sessions import SessionLimiter, SessionRecord, SessionStore
from proxy.settings import Settings
from proxy.upstream import Upstream, UpstreamResponse
from proxy.visitors import VisitorIds


def upstream_error(response: UpstreamResponse) -> ApiError:
    """An upstream failure passed through with its status, as the gateway's JSON error."""
    message = f"upstream answered {response.status}"
    try:
        payload = orjson.loads(response.body)
        if isinstance(payload, dict) and isinstance(payload.get("message"), str):
            message = payload["message"]
    except orjson.JSONDecodeError:
        pass
    retry_after = response.headers.get("Retry-After")
    return ApiError(response.status, message, headers={"Retry-After": retry_after} if retry_after else None)


class DeliveryRoutes:
    def __init__(
        self, settings: Settings, upstream: Upstream, sessions: SessionStore, limiter: SessionLimiter
    ) -> None:
        self.settings = settings
        self.upstream = upstream
        self.sessions = sessions
        self.limiter = limiter

    async def call(
        self, request: Request, record: SessionRecord, client: str, path_and_query: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """One upstream call for the visitor, within its session's concurrency limit."""
        if not self.limiter.acquire(record.session_id):
            raise ApiError(420, "Too many requests with same session ID")
        try:
            response = await self.upstream.request(
                "POST",
                edge_host_for(record, client),
                path_and_query,
                body=orjson.dumps(body),
                headers=forwarded_headers(request),
            )
        finally:
            self.limiter.release(record.session_id)
        if response.status >= 400:
            raise upstream_error(response)
        try:
            answer = response.json()
        except orjson.JSONDecodeError:
            raise ApiError(502, "upstream answered malformed JSON") from None
        if not isinstance(answer, dict):
            raise ApiError(502, "upstream answered an unexpected document")
        return answer

    # POST /rest/v1/mbox/{session_id}?client=C and POST /rest/v1/mbox?client=C
    async def single_mbox(self, request: Request) -> Response:
        client = validation.client_code(request.query_params.get("client"))
        supplied = request.path_params.get("session_id")
        if supplied is not None:
            validation.session_id(supplied)
        body = validation.single_mbox(await read_json(request, self.settings.max_body_bytes))
        record = self.sessions.resolve(VisitorIds.parse(body).keys(client), supplied)
        restore_ids(body, record)
        path = f"/rest/v1/mbox/{quote(record.session_id, safe='')}?{request.url.query}"
        answer = await self.call(request, record, client, path, body)
        learn_and_hide(answer, answer, record, self.sessions, client)
        return JSONAnswer(answer)

    # POST /rest/v2/batchmbox
    async def batch_mbox(self, request: Request) -> Response:
        body = validation.batch_mbox(await read_json(request, self.settings.max_body_bytes))
        client = body["client"]
        record = self.sessions.resolve(VisitorIds.parse(body.get("id")).keys(client), None)
        restore_ids(body.get("id"), record)
        query = f"?{request.url.query}" if request.url.query else ""
        answer = await self.call(request, record, client, f"/rest/v2/batchmbox{query}", body)
        learn_and_hide(answer, answer.get("id"), record, self.sessions, client)
        return JSONAnswer(answer)

    # POST /rest/v1/delivery?client=C|imsOrgId=O[&sessionId=S][&version=V]
    async def delivery(self, request: Request) -> Response:
        params = request.query_params
        if params.get("client") is None and params.get("imsOrgId") is None:
            raise validation.fail("client", "client or imsOrgId is required")
        client = validation.client_code(params["client"]) if "client" in params else self.settings.client
        supplied = params.get("sessionId")
        if supplied is not None:
            validation.session_id(supplied)
        body = validation.delivery(await read_json(request, self.settings.max_body_bytes))
        record = self.sessions.resolve(VisitorIds.parse(body.get("id")).keys(client), supplied)
        restore_ids(body.get("id"), record)
        query = {k: v for k, v in params.items() if k != "sessionId"}
        query["sessionId"] = record.session_id
        answer = await self.call(request, record, client, f"/rest/v1/delivery?{urlencode(query)}", body)
        learn_and_hide(answer, answer.get("id"), record, self.sessions, client)
        return JSONAnswer(answer)
