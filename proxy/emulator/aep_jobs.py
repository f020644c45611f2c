"""Experience Platform segment jobs and segment export jobs under ``/data/core/ups``.

A job is NEW when created, PROCESSING after ``Timings.job_processing_after_s`` and SUCCEEDED after
``job_succeeded_after_s`` on the emulator's clock (or at once through ``POST /_emulator/aep {"finish"}``);
DELETE cancels one that has not finished (CANCELLED), and answers 200 with the documented message.
An export job that is NEW or PROCESSING for an audience blocks ad-hoc activation of that audience.
One finished export job (id 12345, schema ``_xdm.context.profile``) is there from the start, for the
beta activation flow that needs an export id.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from proxy.emulator import checks
from proxy.emulator.aep import DAY_S, AepWorld, platform_endpoint, problem, progress
from proxy.emulator.catalog import parse_time
from proxy.emulator.shaped import json_answer

SEGMENT_STATUSES = ("NEW", "QUEUED", "PROCESSING", "SUCCEEDED", "FAILED", "CANCELLING", "CANCELLED")
EXPORT_STATUSES = ("NEW", "PROCESSING", "SUCCEEDED", "FAILED", "CANCELLED")
SEGMENT_STATES = frozenset({"realized", "existing", "exited"})
SEED_EXPORT_ID = 12345
MERGE_POLICY = "e161dae9-52f0-4c7f-b264-dc43dd903d56"
DEFAULT_PAGE = 100


@dataclass(slots=True)
class Job:
    id: Any
    created_at: float
    request: dict[str, Any]  # what the creating call asked for, as the documents echo it
    sandbox: str = "prod"
    done: bool = False
    cancelled: bool = False
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def status(self, now: float, world: AepWorld) -> str:
        return "CANCELLED" if self.cancelled else progress(self.created_at, now, world.timings, self.done)


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def _rfc3339(value: Any, field_name: str) -> None:
    if value is None:
        return
    try:
        if not isinstance(value, str) or parse_time(value) is None:
            raise ValueError
    except ValueError:
        raise checks.fail(field_name, "must be an RFC 3339 timestamp") from None


def _bool(value: Any, field_name: str) -> None:
    if value is not None and not isinstance(value, bool):
        raise checks.fail(field_name, "must be true or false")


def _page(request: Request, offset_name: str) -> tuple[int, int]:
    def number(name: str, default: int) -> int:
        raw = request.query_params.get(name)
        if raw is None or raw == "":
            return default
        if not raw.isdigit():
            raise problem(400, f"{name} must be a whole number >= 0")
        return int(raw)

    return number(offset_name, 0), number("limit", DEFAULT_PAGE)


class ProfileJobs:
    def __init__(self, world: AepWorld, clock: Callable[[], float], org_id: str) -> None:
        self.world = world
        self.clock = clock
        self.org_id = org_id
        self.segment_jobs: dict[str, Job] = {}
        self.export_jobs: dict[int, Job] = {}
        seed = {
            "fields": "",
            "destination": {"datasetId": "5b7c86968f7b6501e21ba9df", "segmentPerBatch": False},
            "schema": {"name": "_xdm.context.profile"},
            "filter": {},
        }
        self.export_jobs[SEED_EXPORT_ID] = Job(SEED_EXPORT_ID, clock() - DAY_S, seed, done=True)

    def finish(self, ids: Iterable[str] | None) -> int:
        """End matching jobs (all when ids is None) as if their time had passed."""
        wanted = None if ids is None else set(ids)
        count = 0
        for job in [*self.segment_jobs.values(), *self.export_jobs.values()]:
            if not job.cancelled and (wanted is None or str(job.id) in wanted):
                job.done, count = True, count + 1
        return count

    def running_export_for(self, audience_id: str) -> Job | None:
        now = self.clock()
        for job in self.export_jobs.values():
            segments = (job.request.get("filter") or {}).get("segments") or []
            if any(s.get("segmentId") == audience_id for s in segments) and job.status(now, self.world) in (
                "NEW",
                "PROCESSING",
            ):
                return job
        return None

    def summary(self) -> dict[str, Any]:
        now = self.clock()
        return {
            "segmentJobs": [{"id": j.id, "status": j.status(now, self.world)} for j in self.segment_jobs.values()],
            "exportJobs": [{"id": j.id, "status": j.status(now, self.world)} for j in self.export_jobs.values()],
        }

    # --- segment jobs ----------------------------------------------------------------------------------

    def segment_document(self, job: Job) -> dict[str, Any]:
        now = self.clock()
        status = job.status(now, self.world)
        updated = min(now, job.created_at + self.world.timings.job_succeeded_after_s)
        segments = []
        for item in job.request["segments"]:
            audience = self.world.audiences[item["segmentId"]]
            segment = {
                "id": audience.id,
                "expression": {"type": "PQL", "format": "pql/text", "value": audience.expression},
                "mergePolicyId": MERGE_POLICY,
                "mergePolicy": {"id": MERGE_POLICY, "version": 1},
            }
            segments.append({"segmentId": audience.id, "segment": segment})
        link = f"/segment/jobs/{job.id}"
        document: dict[str, Any] = {
            "id": job.id,
            "imsOrgId": self.org_id,
            "sandbox": {
                "sandboxId": str(uuid.uuid5(uuid.NAMESPACE_URL, job.sandbox)),
                "sandboxName": job.sandbox,
                "type": "production" if job.sandbox == "prod" else "development",
                "default": job.sandbox == "prod",
            },
            "profileInstanceId": "ups",
            "source": "api",
            "status": status,
            "segments": segments,
            "requestId": job.request_id,
            "schema": {"name": "_xdm.context.profile"},
            "_links": {"cancel": {"href": link, "method": "DELETE"}, "checkStatus": {"href": link, "method": "GET"}},
            "updateTime": _ms(updated if status != "NEW" else job.created_at),
            "creationTime": _ms(job.created_at),
            "updateEpoch": int(updated if status != "NEW" else job.created_at),
        }
        if status == "SUCCEEDED":
            document["metrics"] = {
                "totalTime": {
                    "startTimeInMs": _ms(job.created_at),
                    "endTimeInMs": _ms(updated),
                    "totalTimeInMs": _ms(updated - job.created_at),
                },
                "totalProfiles": 0,
                "segmentedProfileCounter": {item["segmentId"]: 0 for item in job.request["segments"]},
            }
            document["batchId"] = uuid.uuid5(uuid.NAMESPACE_URL, f"segment-job:{job.id}").hex
        return document

    def create_segment_job(self, body: Any, sandbox: str) -> dict[str, Any]:
        if not isinstance(body, list) or not body:
            raise checks.fail("body", "must be a non-empty array of {segmentId}")
        for index, item in enumerate(body):
            checks.require_object(item, f"[{index}]")
            segment_id = checks.text(item.get("segmentId"), f"[{index}].segmentId", 128, required=True)
            if segment_id not in self.world.audiences:
                raise checks.fail(f"[{index}].segmentId", f"segment definition {segment_id} does not exist")
        job = Job(str(uuid.uuid4()), self.clock(), {"segments": [{"segmentId": i["segmentId"]} for i in body]}, sandbox)
        self.segment_jobs[job.id] = job
        return self.segment_document(job)

    def segment_list(self, request: Request) -> dict[str, Any]:
        start, limit = _page(request, "start")
        now = self.clock()
        wanted = [s for v in request.query_params.getlist("status") for s in v.split(",") if s]
        for status in wanted:
            if status not in SEGMENT_STATUSES:
                raise problem(400, f"status must be one of {', '.join(SEGMENT_STATUSES)}")
        prop = request.query_params.get("property")
        segment = prop.removeprefix("segments~segmentId==") if prop else None
        if prop and segment == prop:
            raise problem(400, "property supports segments~segmentId==<id>")
        jobs = [
            j
            for j in self.segment_jobs.values()
            if (not wanted or j.status(now, self.world) in wanted)
            and (segment is None or any(s["segmentId"] == segment for s in j.request["segments"]))
        ]
        sort = request.query_params.get("sort", "creationTime:desc")
        if sort not in ("creationTime:desc", "creationTime:asc"):
            raise problem(400, "sort must be creationTime:desc or creationTime:asc")
        jobs.sort(key=lambda j: j.created_at, reverse=sort.endswith("desc"))
        page = jobs[start : start + limit]
        following = {"href": f"/segment/jobs?start={start + limit}&limit={limit}"} if start + limit < len(jobs) else {}
        return {
            "_page": {"totalCount": len(jobs), "pageSize": len(page)},
            "children": [self.segment_document(j) for j in page],
            "_links": {"next": following},
        }

    def segment_job(self, job_id: str) -> Job:
        job = self.segment_jobs.get(job_id)
        if job is None:
            raise problem(404, f"segment job {job_id} not found")
        return job

    def cancel_segment_job(self, job_id: str) -> dict[str, Any]:
        job = self.segment_job(job_id)
        status = job.status(self.clock(), self.world)
        if status not in ("NEW", "PROCESSING"):
            raise problem(400, f"segment job {job_id} is {status} and cannot be cancelled")
        job.cancelled = True
        return {"status": True, "message": f"Segment job with id '{job_id}' has been marked for cancelling"}

    # --- export jobs -----------------------------------------------------------------------------------

    @staticmethod
    def _check_export(body: Any) -> dict[str, Any]:
        body = checks.require_object(body)
        checks.text(body.get("fields"), "fields", 100_000, blank_ok=True)
        policy = checks.optional_object(body.get("mergePolicy"), "mergePolicy")
        if policy is not None:
            checks.text(policy.get("id"), "mergePolicy.id", 256, required=True)
        chosen = checks.optional_object(body.get("filter"), "filter") or {}
        for index, segment in enumerate(checks.optional_array(chosen.get("segments"), "filter.segments")):
            where = f"filter.segments[{index}]"
            checks.require_object(segment, where)
            checks.text(segment.get("segmentId"), f"{where}.segmentId", 128, required=True)
            checks.text(segment.get("segmentNs"), f"{where}.segmentNs", 128)
            states = checks.optional_array(segment.get("status"), f"{where}.status")
            if any(state not in SEGMENT_STATES for state in states):
                raise checks.fail(f"{where}.status", "values must be realized, existing or exited")
        window = checks.optional_object(chosen.get("segmentQualificationTime"), "filter.segmentQualificationTime")
        for edge in ("startTime", "endTime"):
            _rfc3339((window or {}).get(edge), f"filter.segmentQualificationTime.{edge}")
        _rfc3339(chosen.get("fromIngestTimestamp"), "filter.fromIngestTimestamp")
        _bool(chosen.get("emptyProfiles"), "filter.emptyProfiles")
        checks.optional_object(body.get("additionalFields"), "additionalFields")
        destination = checks.optional_object(body.get("destination"), "destination")
        if destination is None:
            raise checks.fail("destination", "is required")
        checks.text(destination.get("datasetId"), "destination.datasetId", 128, required=True)
        _bool(destination.get("segmentPerBatch"), "destination.segmentPerBatch")
        schema = checks.optional_object(body.get("schema"), "schema")
        if schema is None:
            raise checks.fail("schema", "is required")
        checks.text(schema.get("name"), "schema.name", 256, required=True)
        _bool(
            (checks.optional_object(body.get("evaluationInfo"), "evaluationInfo") or {}).get("segmentation"),
            "evaluationInfo.segmentation",
        )
        return body

    def export_document(self, job: Job) -> dict[str, Any]:
        now = self.clock()
        asked = job.request
        status = job.status(now, self.world)
        chosen = asked.get("filter") or {}
        destination = dict(asked["destination"])
        destination.setdefault("segmentPerBatch", False)
        batch = uuid.uuid5(uuid.NAMESPACE_URL, f"export-job:{job.id}").hex
        if destination["segmentPerBatch"]:
            destination["batches"] = [
                {
                    "segmentId": s["segmentId"],
                    "segmentNs": s.get("segmentNs", "ups"),
                    "status": s.get("status", ["realized", "existing"]),
                    "batchId": f"{batch}{n}",
                }
                for n, s in enumerate(chosen.get("segments") or [])
            ]
        else:
            destination["batchId"] = batch
        updated = min(now, job.created_at + self.world.timings.job_succeeded_after_s)
        metrics: dict[str, Any] = {"totalTime": {"startTimeInMs": _ms(job.created_at)}}
        if status == "SUCCEEDED":
            metrics["totalTime"].update(endTimeInMs=_ms(updated), totalTimeInMs=_ms(updated - job.created_at))
            metrics["totalExportedProfileCounter"] = 0
        return {
            "id": job.id,
            "jobType": "BATCH",
            "destination": destination,
            "fields": asked.get("fields", ""),
            "schema": asked["schema"],
            "imsOrgId": self.org_id,
            "status": status,
            "filter": chosen,
            "additionalFields": asked.get("additionalFields", {}),
            "mergePolicy": asked.get("mergePolicy", {"id": MERGE_POLICY, "version": 1}),
            "profileInstanceId": "ups",
            "metrics": metrics,
            "computeGatewayJobId": {"exportJob": ""},
            "creationTime": _ms(job.created_at),
            "updateTime": _ms(updated if status != "NEW" else job.created_at),
            "requestId": job.request_id,
        }

    def create_export_job(self, body: Any, sandbox: str) -> dict[str, Any]:
        asked = self._check_export(body)
        job = Job(max(self.export_jobs, default=SEED_EXPORT_ID) + 1, self.clock(), asked, sandbox)
        self.export_jobs[job.id] = job
        return self.export_document(job)

    def export_list(self, request: Request) -> dict[str, Any]:
        offset, limit = _page(request, "offset")
        now = self.clock()
        status = request.query_params.get("status")
        if status is not None and status not in EXPORT_STATUSES:
            raise problem(400, f"status must be one of {', '.join(EXPORT_STATUSES)}")
        jobs = sorted(
            (j for j in self.export_jobs.values() if status is None or j.status(now, self.world) == status),
            key=lambda j: (j.created_at, j.id),
            reverse=True,
        )
        page = jobs[offset : offset + limit]
        following = (
            {"next": f"/export/jobs?offset={offset + limit}&limit={limit}"} if offset + limit < len(jobs) else {}
        )
        return {
            "records": [self.export_document(j) for j in page],
            "page": {"sortField": "createdTime", "sort": "desc", "pageOffset": offset, "pageSize": len(page)},
            "link": following,
        }

    def export_job(self, job_id: str) -> Job:
        job = self.export_jobs.get(int(job_id)) if job_id.isdigit() else None
        if job is None:
            raise problem(404, f"export job {job_id} not found")
        return job

    def cancel_export_job(self, job_id: str) -> dict[str, Any]:
        job = self.export_job(job_id)
        status = job.status(self.clock(), self.world)
        if status not in ("NEW", "PROCESSING"):
            raise problem(400, f"export job {job_id} is {status} and cannot be cancelled")
        job.cancelled = True
        return {"status": True, "message": "Export job has been marked for cancelling"}


# --- HTTP ---------------------------------------------------------------------------------------------


def _jobs(request: Request) -> ProfileJobs:
    return request.app.state.emulator.jobs


def _sandbox(request: Request) -> str:
    return request.headers.get("x-sandbox-name") or "prod"


def job_endpoints(kind: str) -> tuple[Callable[[Request], Any], Callable[[Request], Any]]:
    """The endpoints of one kind of job (``segment`` or ``export``): its list (GET, and POST to create
    one), and one job (GET, DELETE to cancel it)."""

    @platform_endpoint()
    async def listed(request: Request, body: Any) -> Response:
        jobs = _jobs(request)
        if request.method == "POST":
            return json_answer(getattr(jobs, f"create_{kind}_job")(body, _sandbox(request)))
        return json_answer(getattr(jobs, f"{kind}_list")(request))

    @platform_endpoint()
    async def one(request: Request, body: Any) -> Response:
        jobs, job_id = _jobs(request), request.path_params["job_id"]
        if request.method == "DELETE":
            return json_answer(getattr(jobs, f"cancel_{kind}_job")(job_id))
        return json_answer(getattr(jobs, f"{kind}_document")(getattr(jobs, f"{kind}_job")(job_id)))

    return listed, one


def routes() -> list[Route]:
    base = "/data/core/ups"
    table = []
    for kind in ("segment", "export"):
        listed, one = job_endpoints(kind)
        table += [
            (f"{base}/{kind}/jobs", listed, ["GET", "POST"]),
            (f"{base}/{kind}/jobs/{{job_id}}", one, ["GET", "DELETE"]),
        ]
    return [Route(p, endpoint, methods=methods) for path, endpoint, methods in table for p in (path, path + "/")]
