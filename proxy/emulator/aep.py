"""Experience Platform's common ground: the checks Adobe's gateway makes before a service sees a call,
the error bodies, and the world activation needs (destinations, their dataflows, audiences), seeded with
a small demo set and extended by tests through ``POST /_emulator/aep``.

Checks, in order: ``Authorization: Bearer <token>`` (401 ``{"error_code": "403010"|"401013", "message"}``),
``x-api-key`` equal to the IMS client id (403 ``403000``/``403003``), then per service the IMS org
(activation and ``/data/core/ups``: missing 400 ``400003`` "Missing header", another org 403 ``403025``
"Profile is not valid"; external audiences answer their own 401 codes, see external_audiences.py), and on
POST/PUT/PATCH a JSON content type (400 ``BadRequestError``, "A valid content-type must be specified").
Service errors are RFC 7807-style ``{"type", "status", "title", "detail"}``.

Jobs and runs progress on the emulator's clock (``Timings``); ``POST /_emulator/clock`` moves it on and
``POST /_emulator/aep {"finish": true | [ids]}`` ends chosen ones at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, fields
from functools import wraps
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from proxy.emulator import checks
from proxy.emulator.errors import EdgeError
from proxy.emulator.ims import GATEWAY_ERRORS, check_credentials
from proxy.emulator.shaped import ShapedError

MAX_BODY_BYTES = 10 * 1024 * 1024
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
TITLES = {
    400: "BadRequestError",
    404: "NotFoundError",
    409: "ConflictError",
    422: "UnprocessableEntityError",
    429: "TooManyRequestsError",
}
DAY_S = 24 * 3600.0

# The demo world; ids shaped like Platform's (two come from Adobe's documentation samples).
US_WORKERS = "4afe34ae-8c98-4513-8a1d-67ccaa54bc05"
GOLD_MEMBERS = "db8961e9-d52f-45bc-b3fb-76d0382a6851"
CART_ABANDONERS = "7c1a7e52-3b0f-4d5e-9a61-2f8d1c0b5e03"
NOT_ACTIVATED = "9e0d4c3b-2a19-4f08-8e7d-6c5b4a392804"
SFTP_DESTINATION = "5d3f2e1a-6b7c-4d8e-9f01-a2b3c4d5e601"
STREAMING_DESTINATION = "5d3f2e1a-6b7c-4d8e-9f01-a2b3c4d5e602"
SFTP_DATAFLOW = "ef2dcbd6-36fc-49a3-afed-d7b8e8f724eb"
STREAMING_DATAFLOW = "0a9b8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c02"


def problem(status: int, detail: str, title: str | None = None, type_: str = "/placeholder/type/uri") -> ShapedError:
    return ShapedError(
        status, {"type": type_, "status": status, "title": title or TITLES.get(status, "Error"), "detail": detail}
    )


@dataclass(slots=True)
class Destination:
    id: str
    name: str
    type: str = "batch"  # ad-hoc activation serves batch (file-based) destinations only


@dataclass(slots=True)
class Dataflow:
    """An activation flow of a destination; camelCase as in the control document."""

    id: str
    destinationId: str
    audienceIds: list[str]
    processing: bool = False  # a scheduled export is running
    scheduledAt: float = 0.0  # first scheduled activation, epoch seconds


@dataclass(slots=True)
class PlatformAudience:
    id: str
    name: str
    expression: str = 'workAddress.country = "US"'


@dataclass(slots=True)
class Timings:
    """Seconds, on the emulator's clock, that work takes."""

    adhoc_run_s: float = 30.0
    job_processing_after_s: float = 1.0
    job_succeeded_after_s: float = 10.0
    operation_s: float = 2.0
    ingestion_s: float = 10.0


def progress(created_at: float, now: float, timings: Timings, done: bool = False) -> str:
    """A segment or export job's status: NEW, then PROCESSING, then SUCCEEDED."""
    if done or now >= created_at + timings.job_succeeded_after_s:
        return "SUCCEEDED"
    return "PROCESSING" if now >= created_at + timings.job_processing_after_s else "NEW"


@dataclass
class AepWorld:
    clock: Callable[[], float]
    destinations: dict[str, Destination] = field(default_factory=dict)
    dataflows: dict[str, Dataflow] = field(default_factory=dict)
    audiences: dict[str, PlatformAudience] = field(default_factory=dict)
    timings: Timings = field(default_factory=Timings)

    def __post_init__(self) -> None:
        long_ago = self.clock() - 2 * DAY_S
        for audience in (
            PlatformAudience(US_WORKERS, "US workers"),
            PlatformAudience(GOLD_MEMBERS, "Gold members", 'loyalty.tier = "gold"'),
            PlatformAudience(CART_ABANDONERS, "Cart abandoners", "commerce.cartAbandons.value > 0"),
            PlatformAudience(NOT_ACTIVATED, "Not activated anywhere", "person.age > 120"),
        ):
            self.audiences[audience.id] = audience
        for destination in (
            Destination(SFTP_DESTINATION, "Demo SFTP export"),
            Destination(STREAMING_DESTINATION, "Demo streaming destination", "streaming"),
        ):
            self.destinations[destination.id] = destination
        for dataflow in (
            Dataflow(SFTP_DATAFLOW, SFTP_DESTINATION, [US_WORKERS, GOLD_MEMBERS, CART_ABANDONERS], False, long_ago),
            Dataflow(STREAMING_DATAFLOW, STREAMING_DESTINATION, [GOLD_MEMBERS], False, long_ago),
        ):
            self.dataflows[dataflow.id] = dataflow

    def audience_name(self, audience_id: str) -> str:
        audience = self.audiences.get(audience_id)
        return audience.name if audience else audience_id

    def configure(self, body: Any) -> None:
        """Control input: upsert audiences, destinations and dataflows (by id), change timings."""
        body = checks.require_object(body)
        unknown = set(body) - {"audiences", "destinations", "dataflows", "timings", "finish"}
        if unknown:
            raise checks.fail(sorted(unknown)[0], "is not an AEP control setting")
        for index, raw in enumerate(checks.optional_array(body.get("audiences"), "audiences")):
            item = self._item(raw, f"audiences[{index}]", PlatformAudience, self.audiences)
            self.audiences[item.id] = item
        for index, raw in enumerate(checks.optional_array(body.get("destinations"), "destinations")):
            item = self._item(raw, f"destinations[{index}]", Destination, self.destinations)
            if item.type not in ("batch", "streaming"):
                raise checks.fail(f"destinations[{index}].type", "must be batch or streaming")
            self.destinations[item.id] = item
        for index, raw in enumerate(checks.optional_array(body.get("dataflows"), "dataflows")):
            where = f"dataflows[{index}]"
            item = self._item(raw, where, Dataflow, self.dataflows, {"scheduledAt": self.clock() - 2 * DAY_S})
            if item.destinationId not in self.destinations:
                raise checks.fail(f"{where}.destinationId", f"destination {item.destinationId} does not exist")
            if not isinstance(item.audienceIds, list) or not all(isinstance(a, str) for a in item.audienceIds):
                raise checks.fail(f"{where}.audienceIds", "must be an array of audience ids")
            if not isinstance(item.processing, bool):
                raise checks.fail(f"{where}.processing", "must be true or false")
            if isinstance(item.scheduledAt, bool) or not isinstance(item.scheduledAt, int | float):
                raise checks.fail(f"{where}.scheduledAt", "must be epoch seconds")
            self.dataflows[item.id] = item
        timings = checks.optional_object(body.get("timings"), "timings") or {}
        for name, value in timings.items():
            if name not in Timings.__dataclass_fields__:
                raise checks.fail(f"timings.{name}", "is not a timing")
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise checks.fail(f"timings.{name}", "must be a number of seconds >= 0")
            setattr(self.timings, name, float(value))

    @staticmethod
    def _item(
        raw: Any, where: str, kind: type, existing: dict[str, Any], defaults: dict[str, Any] | None = None
    ) -> Any:
        """A control item merged over the stored one with its id (or the defaults for a new one)."""
        raw = checks.require_object(raw, where)
        names = {f.name for f in fields(kind)}
        unknown = set(raw) - names
        if unknown:
            raise checks.fail(f"{where}.{sorted(unknown)[0]}", "is not a field")
        item_id = checks.text(raw.get("id"), f"{where}.id", 128, required=True)
        merged = {**(defaults or {}), **(asdict(existing[item_id]) if item_id in existing else {}), **raw}
        try:
            item = kind(**merged)
        except TypeError:
            missing = sorted(names - set(merged))
            raise checks.fail(f"{where}.{missing[0] if missing else 'id'}", "is required") from None
        for name in ("name", "type", "expression", "destinationId"):
            if name in names and not isinstance(getattr(item, name), str):
                raise checks.fail(f"{where}.{name}", "must be a string")
        return item

    def document(self) -> dict[str, Any]:
        return {
            "destinations": [asdict(d) for d in self.destinations.values()],
            "dataflows": [asdict(d) for d in self.dataflows.values()],
            "audiences": [asdict(a) for a in self.audiences.values()],
            "timings": asdict(self.timings),
        }


# --- the gateway's checks and request bodies ------------------------------------------------------------


def authenticate(request: Request) -> None:
    settings = request.app.state.emulator.settings
    failure = check_credentials(request.headers, request.app.state.ims, settings.ims_client_id)
    if failure is not None:
        status, code, message = GATEWAY_ERRORS[failure]
        raise ShapedError(status, {"error_code": code, "message": message})


def check_org(request: Request) -> None:
    org = request.headers.get("x-gw-ims-org-id")
    if not org:
        raise ShapedError(400, {"error_code": "400003", "message": "Missing header"})
    if org != request.app.state.emulator.settings.ims_org_id:
        raise ShapedError(403, {"error_code": "403025", "message": "Profile is not valid"})


async def json_body(request: Request) -> Any:
    if request.method not in BODY_METHODS:
        return None
    if "json" not in request.headers.get("content-type", "").lower():
        raise problem(400, "A valid content-type must be specified")
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise problem(413, "request body exceeds 10 MB", "PayloadTooLargeError")
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise problem(400, "the request body is not valid JSON") from None


Endpoint = Callable[[Request, Any], Awaitable[Response]]


def platform_endpoint(
    org_check: Callable[[Request], None] = check_org,
) -> Callable[[Endpoint], Callable[[Request], Awaitable[Response]]]:
    """A Starlette endpoint behind the gateway's checks; it receives the parsed JSON body (None without one).
    The shared validation helpers' 400s become the service's problem body."""

    def wrap(handler: Endpoint) -> Callable[[Request], Awaitable[Response]]:
        @wraps(handler)
        async def endpoint(request: Request) -> Response:
            authenticate(request)
            org_check(request)
            body = await json_body(request)
            try:
                return await handler(request, body)
            except EdgeError as exc:
                raise problem(exc.status, exc.message) from None

        return endpoint

    return wrap
