"""Target Admin API under ``/{tenant}/target/...``: credentials, the 50-calls-a-minute limit, and
dispatch to activities, offers, audiences, locations and batch.

Every call needs ``Authorization: Bearer <token from /ims/token/v3>`` (401 when missing, unknown or
expired) and ``x-api-key`` equal to the IMS client id (403). Beyond ``emulator_admin_rate_per_minute``
calls in any 60 s per tenant (``POST /_emulator/limits`` changes it) the answer is 503 ``Throttled`` with
``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from proxy.emulator.admin_activities import Activities
from proxy.emulator.admin_batch import Batch
from proxy.emulator.admin_catalog import Audiences, Locations, Offers
from proxy.emulator.admin_core import (
    BODY_METHODS,
    AdminRequest,
    AdminResponse,
    Router,
    admin_error,
    negotiate,
)
from proxy.emulator.catalog import Catalog
from proxy.emulator.errors import EdgeError
from proxy.emulator.ims import GATEWAY_ERRORS, check_credentials
from proxy.emulator.profiles import ProfileStore
from proxy.emulator.rules import RuleError
from proxy.emulator.shaped import ShapedError, json_answer
from proxy.emulator.stats import Stats

MAX_BODY_BYTES = 10 * 1024 * 1024


class AdminApi:
    def __init__(self, catalog: Catalog, stats: Stats, profiles: ProfileStore, clock: Callable[[], float]) -> None:
        self.router = Router()
        self.activities = Activities(catalog, stats, clock)
        for part in (
            self.activities,
            Offers(catalog, clock),
            Audiences(catalog, clock),
            Locations(catalog, stats, profiles),
            Batch(self.handle),
        ):
            self.router.add(part.routes())

    def handle(self, request: AdminRequest) -> AdminResponse:
        """One call, as data; every failure becomes the Admin API's error body."""
        try:
            negotiate(request)
            handler, arguments = self.router.resolve(request.method, request.path)
            return handler(request, **arguments)
        except ShapedError as exc:
            return AdminResponse(exc.status, exc.body, exc.headers)
        except EdgeError as exc:  # the shared validation helpers name the field
            error = admin_error(exc.status, exc.message, exc.field)
            return AdminResponse(error.status, error.body)
        except RuleError as exc:
            error = admin_error(400, str(exc))
            return AdminResponse(error.status, error.body)


async def _body(request: Request) -> Any:
    if request.method not in BODY_METHODS:
        return None
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise admin_error(413, "request body exceeds 10 MB")
    raw = await request.body()
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise admin_error(400, "body: malformed JSON", "body") from None


async def endpoint(request: Request) -> Response:
    emulator = request.app.state.emulator
    failure = check_credentials(request.headers, request.app.state.ims, emulator.settings.ims_client_id)
    if failure is not None:
        status, _, message = GATEWAY_ERRORS[failure]
        raise admin_error(status, message)
    key = ("admin", request.path_params["tenant"])
    wait = emulator.limiter.hit(key)
    if wait is not None:
        rate = emulator.limiter.rate
        raise admin_error(
            503, f"too many calls: at most {rate} a minute per client", headers={"Retry-After": str(wait)}
        )
    answer = emulator.admin.handle(
        AdminRequest(
            request.method,
            "/" + request.path_params["rest"],
            request.query_params.multi_items(),
            request.headers,
            await _body(request),
            lambda: emulator.limiter.hit(key),
        )
    )
    return json_answer(answer.body, answer.status, answer.headers)
