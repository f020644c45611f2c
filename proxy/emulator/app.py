"""The emulator's HTTP surface: Target's edge paths, the CDN's (rules artifact, geo lookup), IMS, the Target
Admin API, Experience Platform's activation / segment / export / external-audience APIs, and the
``/_emulator/*`` control endpoints.

Control endpoints (never counted, never faulted):
- ``GET /_emulator/stats``, ``GET|POST /_emulator/faults``, ``POST /_emulator/reset``;
- ``GET /_emulator/last-request[?route=NAME]``: method, path, query and headers of the last Target API call
  (of that route: admin, activation, ups, external_audiences, ims_token, delivery...), 404 before any;
- ``GET|POST /_emulator/clock`` ``{"advance_seconds": n}``: move the emulator's clock on (token expiry,
  rate windows, AEP jobs); a reset puts it back;
- ``POST /_emulator/ims/revoke``: forget every issued token (they otherwise outlive resets);
- ``GET|POST /_emulator/limits`` ``{"admin_rate_per_minute": n}``: the Admin and bulk profile API rate;
- ``GET|POST /_emulator/aep``: the AEP world (see aep.py) and its jobs; POST upserts ``audiences``,
  ``destinations``, ``dataflows``, sets ``timings`` and ``finish``es runs and jobs (``true`` or ids).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from proxy.emulator import activation, admin, aep_jobs, checks, external_audiences, ims
from proxy.emulator.activation import Activation
from proxy.emulator.admin import AdminApi
from proxy.emulator.aep import AepWorld
from proxy.emulator.aep_jobs import ProfileJobs
from proxy.emulator.artifact import Publisher
from proxy.emulator.bulk_profiles import BulkUpdates
from proxy.emulator.catalog import Catalog
from proxy.emulator.clock import Clock
from proxy.emulator.edge import Call, Edge
from proxy.emulator.errors import HANDLERS, EdgeError
from proxy.emulator.external_audiences import ExternalAudiences
from proxy.emulator.faults import EdgeFrontDoor, Faults
from proxy.emulator.profiles import ProfileStore, edge_host
from proxy.emulator.ratelimit import SlidingWindow
from proxy.emulator.settings import EmulatorSettings
from proxy.emulator.shaped import ShapedError, shaped_error_handler
from proxy.emulator.tokens import TokenCodec

MAX_BODY_BYTES = 60 * 1024 * 1024


def json_response(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status, media_type="application/json")


def xml_response(elements: list[tuple[str, str]] | str) -> Response:
    inner = elements if isinstance(elements, str) else "".join(f"<{k}>{escape(v)}</{k}>" for k, v in elements)
    return Response(f"<response>{inner}</response>", media_type="application/xml")


async def read_json(request: Request) -> Any:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise EdgeError(413, "request body exceeds 60 MB", "body")
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise EdgeError(413, "request body exceeds 60 MB", "body")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise EdgeError(400, "body: malformed JSON", "body") from None


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type not in ("", "application/x-www-form-urlencoded"):
        raise EdgeError(415, "body: must be application/x-www-form-urlencoded", "body")
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise EdgeError(413, "request body exceeds 60 MB", "body")
    try:
        return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        raise EdgeError(400, "body: must be UTF-8 text", "body") from None


def client_param(request: Request, edge: Edge, required: bool = True) -> str:
    client = request.query_params.get("client")
    if client is None and not required:
        return edge.catalog.client
    return checks.client_code(client, "client")


class EmulatorState:
    """Everything the emulator knows, rebuilt by ``/_emulator/reset`` (the clock and IMS tokens outlive it)."""

    def __init__(self, settings: EmulatorSettings, clock: Clock) -> None:
        self.settings = settings
        self.catalog = Catalog.load(settings.catalog)
        self.profiles = ProfileStore(settings.replication_delay_ms / 1000)
        codec = TokenCodec(settings.token_secret)
        self.edge = Edge(self.catalog, self.profiles, codec, settings.clusters)
        self.artifacts = Publisher(self.catalog, codec)
        self.bulk = BulkUpdates(self.profiles)
        # Admin and bulk profile calls a minute, per tenant / client code
        self.limiter = SlidingWindow(settings.admin_rate_per_minute, clock.now)
        self.admin = AdminApi(self.catalog, self.edge.stats, self.profiles, clock.now)
        self.aep = AepWorld(clock.now)
        self.jobs = ProfileJobs(self.aep, clock.now, settings.ims_org_id)
        self.activation = Activation(self.aep, self.jobs, clock.now)
        self.external = ExternalAudiences(self.aep, clock.now)

    def throttle_profiles(self, client: str) -> None:
        """The bulk profile API's 50 calls a minute, then 503."""
        wait = self.limiter.hit(("profile", client))
        if wait is not None:
            message = f"too many calls: at most {self.limiter.rate} a minute per client"
            raise EdgeError(503, message, headers={"Retry-After": str(wait)})

    def aep_document(self) -> dict[str, Any]:
        return {
            **self.aep.document(),
            "adhocRuns": self.activation.summary(),
            **self.jobs.summary(),
            "externalAudiences": self.external.summary(),
        }

    def call(self, request: Request, session_id: str | None = None, routing_key: str | None = None) -> Call:
        return Call(self.edge.cluster_for(request.headers.get("host"), session_id or routing_key), session_id)


def create_emulator_app(settings: EmulatorSettings | None = None) -> Starlette:
    clock = Clock()
    state = EmulatorState(settings or EmulatorSettings(), clock)

    async def single_mbox(request: Request) -> Response:
        session_id = checks.session_id(request.path_params["session_id"])
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
            raise checks.fail("client", "client or imsOrgId is required")
        client = client_param(request, state.edge, required=False)
        session_id = checks.session_id(params.get("sessionId"))
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
        checks.client_code(request.path_params["client"])
        query = dict(request.query_params)
        if request.method == "POST":
            query.update(await read_form(request))
        routing = query.get("mboxPC") or query.get("mbox3rdPartyId")
        state.edge.update_profile(state.call(request, routing_key=routing), query)
        return xml_response([("success", "true"), ("message", "Request successfully submitted")])

    async def profile_batch_update(request: Request) -> Response:
        client = checks.client_code(request.path_params["client"])
        state.throttle_profiles(client)
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > 50 * 1024 * 1024:
            raise EdgeError(413, "batch file exceeds 50 MB", "batch")
        call = state.call(request)
        if "/v2/" not in request.url.path:
            # v1: updates the profiles that exist, and answers only an overall status
            batch = state.bulk.submit(client, call.cluster, await request.body(), create=False)
            return xml_response(
                [
                    ("success", "true"),
                    ("batchId", batch.batch_id),
                    ("message", f"Batch processed: {batch.updated} of {len(batch.rows)} profiles updated"),
                ]
            )
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
        state.throttle_profiles(checks.client_code(request.path_params["client"]))
        batch_id = request.query_params.get("batchId")
        if not batch_id:
            raise checks.fail("batchId", "is required")
        batch = state.bulk.get(batch_id)
        if batch is None:
            raise EdgeError(404, f"No batch found with id={batch_id}", "batchId")
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
        clock.reset()
        state = app.state.emulator = EmulatorState(state.settings, clock)
        front_door.set_requests(state.edge.stats.requests)
        front_door.set_faults(Faults())
        front_door.last_requests.clear()
        return json_response({"reset": True})

    async def last_request(request: Request) -> Response:
        route = request.query_params.get("route", "")
        recorded = front_door.last_requests.get(route)
        if recorded is None:
            raise EdgeError(404, f"no Target API call{' to ' + route if route else ''} since the last reset", "route")
        return json_response(recorded.document())

    async def geo_lookup(request: Request) -> Response:
        """The CDN's geo lookup that Adobe's on-device engines call (``GET /v1/geo``): the place of the
        address in X-Forwarded-For (else the caller's), from the catalog's geo table, in x-geo-* headers."""
        forwarded = request.headers.get("x-forwarded-for", "")
        address = forwarded.split(",", 1)[0].strip() or (request.client.host if request.client else "")
        place = state.edge.catalog.geo.get(address, {})
        headers = {
            header: str(place[key]).upper()
            for key, header in (
                ("country", "x-geo-country-code"),
                ("region", "x-geo-region-code"),
                ("city", "x-geo-city"),
                ("latitude", "x-geo-latitude"),
                ("longitude", "x-geo-longitude"),
            )
            if place.get(key) is not None
        }
        return Response(b"{}", media_type="application/json", headers=headers)

    async def rules_artifact(request: Request) -> Response:
        """The catalog's rules artifact where Adobe's CDN publishes one, with an ETag that changes with the
        catalog (If-None-Match answers 304 while it has not); every environment and property token gets
        the same rules."""
        client = request.path_params["client"]
        if client != state.catalog.client:
            raise EdgeError(404, f"no rules artifact for client {client}", "client")
        headers = {"etag": state.artifacts.etag(), "cache-control": "max-age=300"}
        if request.headers.get("if-none-match") == headers["etag"]:
            return Response(status_code=304, headers=headers)
        body = state.artifacts.body(request.path_params["environment"])
        return Response(body, media_type="application/json", headers=headers)

    async def clock_control(request: Request) -> Response:
        if request.method == "POST":
            body = checks.require_object(await read_json(request))
            seconds = body.get("advance_seconds")
            if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
                raise checks.fail("advance_seconds", "must be a number of seconds >= 0")
            clock.advance(float(seconds))
        return json_response({"offset_seconds": clock.offset, "now": clock.now()})

    async def revoke_tokens(request: Request) -> Response:
        return json_response({"revoked": tokens.revoke_all()})

    async def limits(request: Request) -> Response:
        if request.method == "POST":
            body = checks.require_object(await read_json(request))
            rate = body.get("admin_rate_per_minute")
            if isinstance(rate, bool) or not isinstance(rate, int) or rate < 1:
                raise checks.fail("admin_rate_per_minute", "must be a whole number >= 1")
            state.limiter.rate = rate
        return json_response({"admin_rate_per_minute": state.limiter.rate})

    async def aep_control(request: Request) -> Response:
        if request.method == "POST":
            body = await read_json(request)
            state.aep.configure(body)
            finish = body.get("finish")
            if finish is not None and finish is not False:
                if finish is not True and not (isinstance(finish, list) and all(isinstance(i, str) for i in finish)):
                    raise checks.fail("finish", "must be true or an array of run, job or operation ids")
                ids = None if finish is True else finish
                state.activation.finish(ids)
                state.jobs.finish(ids)
                state.external.finish(ids)
        return json_response(state.aep_document())

    routes = [
        Route("/rest/v1/mbox/{session_id}", single_mbox, methods=["POST"]),
        Route("/rest/v2/batchmbox", batch_mbox, methods=["POST"]),
        Route("/rest/v2/batchmbox/", batch_mbox, methods=["POST"]),
        Route("/rest/v1/delivery", delivery, methods=["POST"]),
        Route("/rest/v1/profiles/thirdPartyId/{third_party_id}", profile_by_third_party, methods=["GET"]),
        Route("/rest/v1/profiles/{tnt_id}", profile_by_tnt, methods=["GET"]),
        Route("/m2/{client}/profile/update", profile_update, methods=["GET", "POST"]),
        Route("/m2/{client}/v2/profile/batchUpdate", profile_batch_update, methods=["POST"]),
        Route("/m2/{client}/profile/batchUpdate", profile_batch_update, methods=["POST"]),
        Route("/m2/{client}/v2/profile/batchStatus", profile_batch_status, methods=["GET"]),
        Route("/v1/geo", geo_lookup, methods=["GET"]),
        Route("/{client}/{environment}/v1/rules.json", rules_artifact, methods=["GET"]),
        Route("/{client}/{environment}/v1/{property_token}/rules.json", rules_artifact, methods=["GET"]),
        Route("/_emulator/stats", stats, methods=["GET"]),
        Route("/_emulator/faults", faults, methods=["GET", "POST"]),
        Route("/_emulator/reset", reset, methods=["POST"]),
        Route("/_emulator/last-request", last_request, methods=["GET"]),
        Route("/_emulator/clock", clock_control, methods=["GET", "POST"]),
        Route("/_emulator/ims/revoke", revoke_tokens, methods=["POST"]),
        Route("/_emulator/limits", limits, methods=["GET", "POST"]),
        Route("/_emulator/aep", aep_control, methods=["GET", "POST"]),
        Route("/ims/token/v3", ims.token_endpoint, methods=["POST"]),
        *activation.routes(),
        *aep_jobs.routes(),
        *external_audiences.routes(),
        # Last: any /{tenant}/target/... path
        Route("/{tenant}/target/{rest:path}", admin.endpoint, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ]
    handlers = {ShapedError: shaped_error_handler, **HANDLERS}
    app = Starlette(routes=routes, exception_handlers=handlers)
    tokens = ims.TokenStore(clock.now)
    # Handlers in the API modules find the current state here; a reset replaces it.
    app.state.emulator = state
    app.state.ims = tokens
    front_door = EdgeFrontDoor(app, state.edge.stats.requests, Faults())
    return front_door  # type: ignore[return-value]
