"""Drop-in delivery routes: single mbox, batch mbox and the Delivery API, forwarded upstream with the
visitor's session and edge."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

import orjson

from proxy import validation
from proxy.affinity import edge_host_for, learn_and_hide, restore_ids
from proxy.bodies import forwarded_headers, parse_json
from proxy.errors import ApiError
from proxy.hotpath import HotPaths, Incoming, Outgoing
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


def answer(document: dict[str, Any]) -> Outgoing:
    return Outgoing(200, orjson.dumps(document))


class DeliveryRoutes:
    def __init__(
        self, settings: Settings, upstream: Upstream, sessions: SessionStore, limiter: SessionLimiter
    ) -> None:
        self.settings = settings
        self.upstream = upstream
        self.sessions = sessions
        self.limiter = limiter

    async def call(
        self,
        incoming: Incoming,
        record: SessionRecord,
        client: str,
        path_and_query: str,
        body: dict[str, Any],
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
                headers=forwarded_headers(incoming.headers, incoming.client_host),
            )
        finally:
            self.limiter.release(record.session_id)
        if response.status >= 400:
            raise upstream_error(response)
        try:
            document = response.json()
        except orjson.JSONDecodeError:
            raise ApiError(502, "upstream answered malformed JSON") from None
        if not isinstance(document, dict):
            raise ApiError(502, "upstream answered an unexpected document")
        return document

    # POST /rest/v1/mbox/{sessionId}?client=C and POST /rest/v1/mbox?client=C
    async def single_mbox(self, incoming: Incoming) -> Outgoing:
        client = validation.client_code(incoming.query.get("client"))
        supplied = incoming.path_param
        if supplied is not None:
            validation.session_id(supplied)
        body = validation.single_mbox(parse_json(incoming.body))
        record = self.sessions.resolve(VisitorIds.parse(body).keys(client), supplied)
        restore_ids(body, record)
        path = f"/rest/v1/mbox/{quote(record.session_id, safe='')}?{incoming.query_string}"
        document = await self.call(incoming, record, client, path, body)
        learn_and_hide(document, document, record, self.sessions, client)
        return answer(document)

    # POST /rest/v2/batchmbox
    async def batch_mbox(self, incoming: Incoming) -> Outgoing:
        body = validation.batch_mbox(parse_json(incoming.body))
        client = body["client"]
        record = self.sessions.resolve(VisitorIds.parse(body.get("id")).keys(client), None)
        restore_ids(body.get("id"), record)
        query = f"?{incoming.query_string}" if incoming.query_string else ""
        document = await self.call(incoming, record, client, f"/rest/v2/batchmbox{query}", body)
        learn_and_hide(document, document.get("id"), record, self.sessions, client)
        return answer(document)

    # POST /rest/v1/delivery?client=C|imsOrgId=O[&sessionId=S][&version=V]
    async def delivery(self, incoming: Incoming) -> Outgoing:
        params = incoming.query
        if params.get("client") is None and params.get("imsOrgId") is None:
            raise validation.fail("client", "client or imsOrgId is required")
        client = validation.client_code(params["client"]) if "client" in params else self.settings.client
        supplied = params.get("sessionId")
        if supplied is not None:
            validation.session_id(supplied)
        body = validation.delivery(parse_json(incoming.body))
        record = self.sessions.resolve(VisitorIds.parse(body.get("id")).keys(client), supplied)
        restore_ids(body.get("id"), record)
        query = {k: v for k, v in params.items() if k != "sessionId"}
        query["sessionId"] = record.session_id
        document = await self.call(incoming, record, client, f"/rest/v1/delivery?{urlencode(query)}", body)
        learn_and_hide(document, document.get("id"), record, self.sessions, client)
        return answer(document)

    def mount(self, paths: HotPaths) -> None:
        paths.prefix("/rest/v1/mbox/", self.single_mbox)
        paths.exact("/rest/v1/mbox", self.single_mbox)
        paths.exact("/rest/v2/batchmbox", self.batch_mbox)
        paths.exact("/rest/v2/batchmbox/", self.batch_mbox)
        paths.exact("/rest/v1/delivery", self.delivery)
