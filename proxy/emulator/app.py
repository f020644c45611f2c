"""The emulator's HTTP surface: Target's edge paths plus the ``/_emulator/*`` control endpoints."""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from proxy import validation
from proxy.bodies import read_form
from proxy.emulator.bulk_profiles import BulkUpdates
from proxy.emulator.catalog import Catalog
from proxy.emulator.edge import Call, Edge
from proxy.emulator.faults import EdgeFrontDoor, Faults
from proxy.emulator.profiles import ProfileStore, edge_host
from proxy.emulator.tokens import TokenCodec
from proxy.errors import EXCEPTION_HANDLERS, ApiError
from proxy.settings import Settings

MAX_BODY_BYTES = 60 * 1024 * 1024


def json_response(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status, media_type="application/json")


def xml_response(elements: list[tuple[str, str]] | str) -> Response:
    inner = elements if isinstance(elements, str) else "".join(f"<{k}>{escape(v)}</{k}>" for k, v in elements)
    return Response(f"<response>{inner}</response>", media_type="application/xml")


async def read_json(request: Request) -> Any:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise ApiError(413, "request body exceeds 60 MB", "body")
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, "request body exceeds 60 MB", "body")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(400, "body: malformed JSON", "body") from None


def client_param(request: Request, edge: Edge, required: bool = True) -> str:
    client = request.query_params.get("client")
    if client is None and not required:
        return edge.catalog.client
    return validation.client_code(client, "client")


class EmulatorState:
    """Everything the emulator knows, rebuilt by ``/_emulator/reset``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.catalog = Catalog.load(settings.emulator_catalog)
        self.profiles = ProfileStore(settings.emulator_replication_delay_ms / 1000)
        self.edge = Edge(
            self.catalog,
            self.profiles,
            TokenCodec(settings.emulator_token_secret),
            settings.emulator_clusters,
        )
        self.bulk = BulkUpdates(self.profiles)

    def call(self, request: Request, session_id: str | None = None, routing_key: str | None = None) -> Call:
        return Call(self.edge.cluster_for(request.headers.get("host"), session_id or routing_key), session_id)


def create_emulator_app(settings: Settings | None = None) -> Starlette:
    state = EmulatorState(settings or Settings())

    async def single_mbox(request: Request) -> Response:
        session_id = validation.session_id(request.path_params["session_id"])
        client_param(request, state.edge)
        body = await read_json(request)
        return json_response(state.edge.single_mbox(state.call(request, session_id), body))

    async def batch_mbox(request: Request) -> Response:
        body = await read_json(request)
        ids = (body.get("id") or {}) if isinstance(body, dict) and isinstance(body.get("id"), dict) else {}
        routing = ids.get("tntId") or ids.get("thirdPartyId") or ids.get("marketingCloudVisitorId")
        return json_response(state.edge.batch_mbox(state.call(request, routing_key=routing), body))

    async def delivery(request: Request) -> Response:
        params = request.query_params
        if params.get("client") is None and params.get("imsOrgId") is None:
            raise validation.fail("client", "client or imsOrgId is required")
        client = client_param(request, state.edge, required=False)
        session_id = validation.session_id(params.get("sessionId"))
        body = await read_json(request)
        return json_response(state.edge.delivery(state.call(request, session_id), client, body))

    async def profile_by_tnt(request: Request) -> Response:
        client = client_param(request, state.edge)
        tnt_id = request.path_params["tnt_id"]
        call = state.call(request, routing_key=tnt_id)
        return json_response(state.edge.fetch_profile(call, client, tnt_id=tnt_id))

    async def profile_by_third_party(request: Request) -> Response:
        client = client_param(request, state.edge)
        third_party_id = request.path_params["third_party_id"]
        call = state.call(request, routing_key=third_party_id)
        return json_response(state.edge.fetch_profile(call, client, third_party_id=third_party_id))

    async def profile_update(request: Request) -> Response:
        validation.client_code(request.path_params["client"])
        query = dict(request.query_params)
        if request.method == "POST":
            query.update(await read_form(request))
        routing = query.get("mboxPC") or query.get("mbox3rdPartyId")
        state.edge.update_profile(state.call(request, routing_key=routing), query)
        return xml_response([("success", "true"), ("message", "Request successfully submitted")])

    async def profile_batch_update(request: Request) -> Response:
        client = validation.client_code(request.path_params["client"])
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > 50 * 1024 * 1024:
            raise ApiError(413, "batch file exceeds 50 MB", "batch")
        call = state.call(request)
        batch = state.bulk.submit(client, call.cluster, await request.body())
        status_url = (
            f"http://{edge_host(call.cluster)}/m2/{client}/v2/profile/batchStatus?batchId={batch.batch_id}&m2Node=00"
        )
        return xml_response(
            [
                ("success", "true"),
                ("batchId", batch.batch_id),
                ("batchStatus", status_url),
                ("message", "Batch submitted for processing"),
            ]
        )

    async def profile_batch_status(request: Request) -> Response:
        validation.client_code(request.path_params["client"])
        batch_id = request.query_params.get("batchId")
        if not batch_id:
            raise validation.fail("batchId", "is required")
        batch = state.bulk.get(batch_id)
        if batch is None:
            raise ApiError(404, f"No batch found with id={batch_id}", "batchId")
        rows = "".join(
            f"<profile><id>{escape(identity)}</id><status>{escape(status)}</status></profile>"
            for identity, status in batch.rows
        )
        summary = (
            f"<batchId>{escape(batch.batch_id)}</batchId><status>complete</status>"
            f"<batchSize>{len(batch.rows)}</batchSize>"
        )
        return xml_response(summary + rows)

    async def stats(request: Request) -> Response:
        return json_response(state.edge.stats.document())

    async def faults(request: Request) -> Response:
        if request.method == "POST":
            front_door.set_faults(Faults.parse(await read_json(request)))
        return json_response(front_door.faults.document())

    async def reset(request: Request) -> Response:
        nonlocal state
        state = EmulatorState(state.settings)
        front_door.set_requests(state.edge.stats.requests)
        front_door.set_faults(Faults())
        return json_response({"reset": True})

    routes = [
        Route("/rest/v1/mbox/{session_id}", single_mbox, methods=["POST"]),
        Route("/rest/v2/batchmbox", batch_mbox, methods=["POST"]),
        Route("/rest/v2/batchmbox/", batch_mbox, methods=["POST"]),
        Route("/rest/v1/delivery", delivery, methods=["POST"]),
        Route("/rest/v1/profiles/thirdPartyId/{third_party_id}", profile_by_third_party, methods=["GET"]),
        Route("/rest/v1/profiles/{tnt_id}", profile_by_tnt, methods=["GET"]),
        Route("/m2/{client}/profile/update", profile_update, methods=["GET", "POST"]),
        Route("/m2/{client}/v2/profile/batchUpdate", profile_batch_update, methods=["POST"]),
        Route("/m2/{client}/v2/profile/batchStatus", profile_batch_status, methods=["GET"]),
        Route("/_emulator/stats", stats, methods=["GET"]),
        Route("/_emulator/faults", faults, methods=["GET", "POST"]),
        Route("/_emulator/reset", reset, methods=["POST"]),
    ]
    app = Starlette(routes=routes, exception_handlers=EXCEPTION_HANDLERS)  # type: ignore[arg-type]
    front_door = EdgeFrontDoor(app, state.edge.stats.requests, Faults())
    return front_door  # type: ignore[return-value]
