"""Experience Platform external audiences under ``/data/core/ais``.

Create (``POST /external-audience/``) answers 202 with an ``operationId``; the operation is PROCESSING for
``Timings.operation_s`` on the emulator's clock (or until ``POST /_emulator/aep {"finish"}``), then
SUCCESS with the ``audienceId`` that every later call uses (before that the audience answers 404).
PATCH changes description, labels, fields (only those listed; a field must exist) and ttlInDays.
An ingestion run (``POST .../runs``) is PROCESSING for ``Timings.ingestion_s``, then SUCCESS; no new run
while one is in progress. DELETE answers 204.

Every call needs the gateway's credentials (aep.py), ``x-gw-ims-org-id`` and ``x-sandbox-name``. Errors
carry the documented platform codes: ``{"type": "<code>", "status", "title": "<documented message>",
"detail"}``, e.g. ``{"type": "100910-400", "status": 400, "title": "BAD_REQUEST", "detail": "..."}``;
a missing org or sandbox header is 100920-401, another org 100921-401.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from proxy.emulator import checks
from proxy.emulator import external_audience_bodies as bodies
from proxy.emulator.aep import AepWorld, platform_endpoint
from proxy.emulator.errors import EdgeError
from proxy.emulator.shaped import ShapedError, json_answer

# platform code -> (HTTP status, documented message)
CODES = {
    "100910-400": (400, "BAD_REQUEST"),
    "100911-400": (400, "BAD_REQUEST"),
    "100920-401": (401, "UNAUTHORIZED"),
    "100921-401": (401, "UNAUTHORIZED"),
    "100922-401": (401, "UNAUTHORIZED"),
    "100940-404": (404, "NOT_FOUND"),
    "100950-409": (409, "DUPLICATE_RESOURCE"),
    "100960-422": (422, "UNPROCESSABLE_ENTITY"),
}
PATCHABLE = frozenset({"description", "labels", "fields", "ttlInDays"})


def ais_error(code: str, detail: str) -> ShapedError:
    status, title = CODES[code]
    return ShapedError(status, {"type": code, "status": status, "title": title, "detail": detail})


def check_headers(request: Request) -> None:
    org = request.headers.get("x-gw-ims-org-id")
    if not org or not request.headers.get("x-sandbox-name"):
        missing = "x-gw-ims-org-id" if not org else "x-sandbox-name"
        raise ais_error("100920-401", f"header {missing} is missing")
    if org != request.app.state.emulator.settings.ims_org_id:
        raise ais_error("100921-401", "invalid imsOrgId")


@dataclass(slots=True)
class Run:
    run_id: str
    started_at: float
    start: int
    end: int | None
    differential: bool
    created_by: str
    done: bool = False


@dataclass(slots=True)
class Audience:
    audience_id: str
    operation_id: str
    request: dict[str, Any]  # the validated create body, ttlInDays an int
    created_at: float
    created_by: str
    ready: bool = False
    updated_at: float = 0.0
    runs: dict[str, Run] = field(default_factory=dict)


class ExternalAudiences:
    def __init__(self, world: AepWorld, clock: Callable[[], float]) -> None:
        self.world = world
        self.clock = clock
        self.audiences: dict[str, Audience] = {}
        self.operations: dict[str, Audience] = {}

    def _settle(self, audience: Audience) -> Audience:
        """An operation succeeds once its time has passed on the emulator's clock."""
        if not audience.ready and self.clock() >= audience.created_at + self.world.timings.operation_s:
            audience.ready = True
        return audience

    def _audience(self, audience_id: str) -> Audience:
        audience = self.audiences.get(audience_id)
        if audience is None or not self._settle(audience).ready:
            raise ais_error("100940-404", f"audience {audience_id} not found")
        return audience

    def _run_status(self, run: Run) -> str:
        done = run.done or self.clock() >= run.started_at + self.world.timings.ingestion_s
        return "SUCCESS" if done else "PROCESSING"

    @staticmethod
    def _operation_details(asked: dict[str, Any]) -> dict[str, Any]:
        details = copy.deepcopy(asked)
        details["sourceSpec"] = {"params": details["sourceSpec"]}
        return details

    def create(self, body: Any, created_by: str) -> dict[str, Any]:
        asked = bodies.audience(body)
        for other in self.audiences.values():
            same_id = (
                asked.get("customAudienceId") and other.request.get("customAudienceId") == asked["customAudienceId"]
            )
            if other.request["name"].lower() == asked["name"].lower() or same_id:
                raise ais_error("100950-409", f"an external audience named {other.request['name']!r} already exists")
        now = self.clock()
        audience = Audience(str(uuid.uuid4()), str(uuid.uuid4()), asked, now, created_by, updated_at=now)
        self.audiences[audience.audience_id] = audience
        self.operations[audience.operation_id] = audience
        self._settle(audience)
        return {"operationId": audience.operation_id, "operationDetails": self._operation_details(asked)}

    def operation(self, operation_id: str) -> dict[str, Any]:
        audience = self.operations.get(operation_id)
        if audience is None:
            raise ais_error("100940-404", f"operation {operation_id} not found")
        self._settle(audience)
        document: dict[str, Any] = {
            "operationId": operation_id,
            "status": "SUCCESS" if audience.ready else "PROCESSING",
            "operationDetails": self._operation_details(audience.request),
            "audienceName": audience.request["name"],
            "createdBy": audience.created_by,
            "createdAt": int(audience.created_at),
            "updatedBy": audience.created_by,
            "updatedAt": int(audience.updated_at),
        }
        if audience.ready:
            document["audienceId"] = audience.audience_id
        return document

    def document(self, audience: Audience) -> dict[str, Any]:
        asked = audience.request
        return {
            "audienceId": audience.audience_id,
            "audienceName": asked["name"],
            "description": asked.get("description", ""),
            "fields": asked["fields"],
            "sourceSpec": asked["sourceSpec"],
            "ttlInDays": asked["ttlInDays"],
            "labels": asked.get("labels", []),
            "audienceType": asked["audienceType"],
            "originName": asked["originName"],
            "createdBy": audience.created_by,
            "createdAt": int(audience.created_at),
            "updatedBy": audience.created_by,
            "updatedAt": int(audience.updated_at),
        }

    def get(self, audience_id: str) -> dict[str, Any]:
        return self.document(self._audience(audience_id))

    def patch(self, audience_id: str, body: Any) -> dict[str, Any]:
        audience = self._audience(audience_id)
        body = checks.require_object(body)
        refused = sorted(set(body) - PATCHABLE)
        if refused:
            raise checks.fail(refused[0], f"cannot be changed; patchable: {', '.join(sorted(PATCHABLE))}")
        changed = copy.deepcopy(audience.request)
        if "description" in body:
            changed["description"] = checks.text(body["description"], "description", 4096, blank_ok=True) or ""
        if "labels" in body:
            changed["labels"] = bodies.strings(body["labels"], "labels")
        if "ttlInDays" in body:
            changed["ttlInDays"] = bodies.ttl(body["ttlInDays"])
        if "fields" in body:
            known = {f["name"]: f for f in changed["fields"]}
            for index, item in enumerate(checks.optional_array(body["fields"], "fields")):
                checks.require_object(item, f"fields[{index}]")
                name = item.get("name")
                if name not in known:
                    raise ais_error("100960-422", f"fields[{index}]: the audience has no field {name!r}")
                known[name]["labels"] = bodies.strings(item.get("labels"), f"fields[{index}].labels")
        audience.request = changed
        audience.updated_at = self.clock()
        return self.document(audience)

    def delete(self, audience_id: str) -> None:
        audience = self._audience(audience_id)
        del self.audiences[audience.audience_id]
        self.operations.pop(audience.operation_id, None)

    def _run_document(self, audience: Audience, run: Run, details: bool) -> dict[str, Any]:
        status = self._run_status(run)
        document: dict[str, Any] = {
            "audienceName": audience.request["name"],
            "audienceId": audience.audience_id,
            "runId": run.run_id,
            "status": status,
            "differentialIngestion": run.differential,
            "dataFilterStartTime": run.start,
            "dataFilterEndTime": run.end,
            "createdAt": int(run.started_at),
            "createdBy": run.created_by,
        }
        if details:
            flow_run = str(uuid.uuid5(uuid.NAMESPACE_URL, run.run_id))
            document["details"] = [
                {"stage": stage, "status": status, "flowRunId": flow_run}
                for stage in ("DATASET_INGEST", "PROFILE_STORE_INGEST")
            ]
        return document

    def start_run(self, audience_id: str, body: Any, created_by: str) -> dict[str, Any]:
        audience = self._audience(audience_id)
        body = checks.require_object(body)
        start, end = body.get("dataFilterStartTime"), body.get("dataFilterEndTime")
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise checks.fail("dataFilterStartTime", "is required: an epoch timestamp")
        if end is not None and (isinstance(end, bool) or not isinstance(end, int) or end < start):
            raise checks.fail("dataFilterEndTime", "must be an epoch timestamp after dataFilterStartTime")
        differential = body.get("differentialIngestion", True)
        if not isinstance(differential, bool):
            raise checks.fail("differentialIngestion", "must be true or false")
        for run in audience.runs.values():
            if self._run_status(run) == "PROCESSING":
                raise ais_error("100960-422", f"ingestion run {run.run_id} is still in progress for this audience")
        run = Run(str(uuid.uuid4()), self.clock(), start, end, differential, created_by)
        audience.runs[run.run_id] = run
        document = self._run_document(audience, run, details=False)
        del document["status"]
        return document

    def runs(self, audience_id: str) -> dict[str, Any]:
        audience = self._audience(audience_id)
        newest_first = sorted(audience.runs.values(), key=lambda r: r.started_at, reverse=True)
        return {"runs": [self._run_document(audience, run, details=False) for run in newest_first]}

    def run(self, audience_id: str, run_id: str) -> dict[str, Any]:
        audience = self._audience(audience_id)
        run = audience.runs.get(run_id)
        if run is None:
            raise ais_error("100940-404", f"ingestion run {run_id} not found")
        return self._run_document(audience, run, details=True)

    def finish(self, ids: Iterable[str] | None) -> int:
        wanted = None if ids is None else set(ids)
        count = 0
        for audience in self.audiences.values():
            if not audience.ready and (wanted is None or wanted & {audience.operation_id, audience.audience_id}):
                audience.ready, count = True, count + 1
            for run in audience.runs.values():
                if not run.done and (wanted is None or run.run_id in wanted):
                    run.done, count = True, count + 1
        return count

    def summary(self) -> list[dict[str, Any]]:
        return [
            {
                "audienceId": a.audience_id,
                "operationId": a.operation_id,
                "name": a.request["name"],
                "ready": self._settle(a).ready,
                "runs": [{"runId": r.run_id, "status": self._run_status(r)} for r in a.runs.values()],
            }
            for a in self.audiences.values()
        ]


# --- HTTP ---------------------------------------------------------------------------------------------


def _store(request: Request) -> ExternalAudiences:
    return request.app.state.emulator.external


def _caller(request: Request) -> str:
    return f"{request.headers.get('x-api-key', 'unknown')}@AdobeID"


def _ais(handler: Callable[[Request, Any], Any]) -> Callable[[Request], Any]:
    """Behind the gateway's checks; validation failures answer 100910-400."""

    async def wrapped(request: Request, body: Any) -> Response:
        try:
            return await handler(request, body)
        except EdgeError as exc:
            raise ais_error("100910-400", exc.message) from None

    wrapped.__name__ = handler.__name__
    return platform_endpoint(check_headers)(wrapped)


@_ais
async def create(request: Request, body: Any) -> Response:
    return json_answer(_store(request).create(body, _caller(request)), 202)


@_ais
async def operation(request: Request, body: Any) -> Response:
    return json_answer(_store(request).operation(request.path_params["operation_id"]))


@_ais
async def audience(request: Request, body: Any) -> Response:
    audience_id = request.path_params["audience_id"]
    if request.method == "PATCH":
        return json_answer(_store(request).patch(audience_id, body))
    if request.method == "DELETE":
        _store(request).delete(audience_id)
        return Response(status_code=204)
    return json_answer(_store(request).get(audience_id))


@_ais
async def runs(request: Request, body: Any) -> Response:
    audience_id = request.path_params["audience_id"]
    if request.method == "POST":
        return json_answer(_store(request).start_run(audience_id, body, _caller(request)))
    return json_answer(_store(request).runs(audience_id))


@_ais
async def run(request: Request, body: Any) -> Response:
    return json_answer(_store(request).run(request.path_params["audience_id"], request.path_params["run_id"]))


def routes() -> list[Route]:
    base = "/data/core/ais"
    table = [
        (f"{base}/external-audience", create, ["POST"]),
        (f"{base}/external-audiences/operations/{{operation_id}}", operation, ["GET"]),
        (f"{base}/external-audience/operations/{{operation_id}}", operation, ["GET"]),
        (f"{base}/external-audience/{{audience_id}}", audience, ["GET", "PATCH", "DELETE"]),
        (f"{base}/external-audience/{{audience_id}}/runs", runs, ["GET", "POST"]),
        (f"{base}/external-audience/{{audience_id}}/run", runs, ["POST"]),
        (f"{base}/external-audience/{{audience_id}}/runs/{{run_id}}", run, ["GET"]),
    ]
    return [Route(p, endpoint, methods=methods) for path, endpoint, methods in table for p in (path, path + "/")]
