"""Experience Platform ad-hoc activation: ``POST /data/core/activation/disflowprovider/adhocrun``.

Variants, by the request: with ``Accept: application/vnd.adobe.adhoc.activation+json; version=2`` (v2)
at most 80 distinct audiences per job and export ids are ignored; without it an ``exportIds`` (beta, at
most 20 audiences) or ``exportId`` (older flow, at most 20 jobs in any 24 h, 429 beyond) array naming
known export jobs is required.

Each (destination, audience) pair starts a run on the audience's dataflow for that destination and
answers ``{"segment": audienceId, "order": dataflowId, "statusURL": ".../flowservice/runs/{runId}"}``;
``GET /data/foundation/flowservice/runs/{runId}`` reports it ``inProgress`` until ``Timings.adhoc_run_s``
pass on the emulator's clock (or ``POST /_emulator/aep {"finish": ...}``), then ``success``.
A job is refused as a whole, with nothing started:
- 400 ``Segments <names> are not part of this dataflow or out of schedule range!`` when an audience is in
  no dataflow of that destination, or its first scheduled activation is less than an hour old;
- 400 for an unknown or a streaming (not file-based) destination;
- 409 while a scheduled export runs for the audience (its dataflow is ``processing``, or an export job
  naming it is NEW or PROCESSING);
- 409 ``Run already going on for audience <id> for order <dataflow> with run id <run>`` while an earlier
  job's run for the audience is in progress (one concurrent job per audience).
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from proxy.emulator import checks
from proxy.emulator.aep import DAY_S, AepWorld, Dataflow, platform_endpoint, problem
from proxy.emulator.aep_jobs import ProfileJobs
from proxy.emulator.shaped import json_answer

V2_MEDIA_TYPE = "application/vnd.adobe.adhoc.activation+json"
MAX_AUDIENCES_V2 = 80
MAX_AUDIENCES_BETA = 20
MAX_OLD_FLOW_JOBS_PER_DAY = 20
FIRST_ACTIVATION_WAIT_S = 3600.0
RUNS_URL = "https://platform.adobe.io/data/foundation/flowservice/runs"


@dataclass(slots=True)
class AdhocRun:
    run_id: str
    dataflow_id: str
    destination_id: str
    audience_id: str
    started_at: float
    ends_at: float
    done: bool = False

    def running(self, now: float) -> bool:
        return not self.done and now < self.ends_at


DATASET_MEDIA_TYPE = "application/vnd.adobe.adhoc.dataset.activation+json"


def is_v2(accept: str) -> bool:
    lowered = accept.lower().replace(" ", "")
    return V2_MEDIA_TYPE in lowered and "version=2" in lowered


def _activation_info(body: Any) -> dict[str, list[str]]:
    body = checks.require_object(body)
    info = checks.optional_object(body.get("activationInfo"), "activationInfo")
    if not info:
        raise checks.fail("activationInfo", "must map destination ids to arrays of audience ids")
    for destination, audiences in info.items():
        where = f"activationInfo.{destination}"
        if not isinstance(audiences, list) or not audiences or not all(isinstance(a, str) and a for a in audiences):
            raise checks.fail(where, "must be a non-empty array of audience ids")
    return info


class Activation:
    def __init__(self, world: AepWorld, jobs: ProfileJobs, clock: Callable[[], float]) -> None:
        self.world = world
        self.jobs = jobs
        self.clock = clock
        self.runs: dict[str, AdhocRun] = {}
        self._old_flow_jobs: deque[float] = deque()

    def _running_for(self, audience_id: str, now: float) -> AdhocRun | None:
        return next((r for r in self.runs.values() if r.audience_id == audience_id and r.running(now)), None)

    def _export_ids(self, body: dict[str, Any]) -> str:
        """Which pre-v2 flow the body uses ("exportIds" beta, "exportId" older), after checking its ids."""
        key = "exportIds" if "exportIds" in body else "exportId"
        ids = body.get(key)
        if not isinstance(ids, list) or not ids:
            raise checks.fail("exportIds", "an export job id is required without the version 2 Accept header")
        for index, export_id in enumerate(ids):
            text = str(export_id)
            if isinstance(export_id, bool) or not text.isdigit() or int(text) not in self.jobs.export_jobs:
                raise checks.fail(f"{key}[{index}]", f"export job {export_id} does not exist")
        return key

    def start(self, body: Any, *, v2: bool) -> dict[str, Any]:
        info = _activation_info(body)
        audiences = list(dict.fromkeys(a for ids in info.values() for a in ids))
        now = self.clock()
        old_flow = False
        if v2:
            if len(audiences) > MAX_AUDIENCES_V2:
                raise problem(
                    400,
                    f"An ad-hoc activation job can activate at most {MAX_AUDIENCES_V2} audiences; "
                    f"this one has {len(audiences)}",
                )
        elif self._export_ids(body) == "exportIds":
            if len(audiences) > MAX_AUDIENCES_BETA:
                raise problem(
                    400,
                    f"An ad-hoc activation job can activate at most {MAX_AUDIENCES_BETA} segments; "
                    f"this one has {len(audiences)}",
                )
        else:
            old_flow = True
            while self._old_flow_jobs and self._old_flow_jobs[0] <= now - DAY_S:
                self._old_flow_jobs.popleft()
            if len(self._old_flow_jobs) >= MAX_OLD_FLOW_JOBS_PER_DAY:
                raise problem(429, f"At most {MAX_OLD_FLOW_JOBS_PER_DAY} ad-hoc activation jobs can run per day")

        planned: list[tuple[Dataflow, str]] = []
        outside: list[str] = []
        for destination_id, audience_ids in info.items():
            destination = self.world.destinations.get(destination_id)
            if destination is None:
                raise problem(400, f"Destination {destination_id} does not exist")
            if destination.type != "batch":
                raise problem(
                    400,
                    f"Destination {destination.name} is not a batch file-based destination; "
                    "ad-hoc activation supports only those",
                )
            for audience_id in audience_ids:
                flow = next(
                    (
                        f
                        for f in self.world.dataflows.values()
                        if f.destinationId == destination_id and audience_id in f.audienceIds
                    ),
                    None,
                )
                if flow is None or now < flow.scheduledAt + FIRST_ACTIVATION_WAIT_S:
                    outside.append(audience_id)
                else:
                    planned.append((flow, audience_id))
        if outside:
            names = ", ".join(self.world.audience_name(a) for a in dict.fromkeys(outside))
            raise problem(400, f"Segments {names} are not part of this dataflow or out of schedule range!")
        for flow, audience_id in planned:
            export = self.jobs.running_export_for(audience_id)
            running = f"dataflow {flow.id}" if flow.processing else f"export job {export.id}" if export else None
            if running is not None:
                raise problem(
                    409,
                    f"A scheduled export is running for audience {audience_id} ({running}); "
                    "wait for it to finish before an ad-hoc activation",
                )
            run = self._running_for(audience_id, now)
            if run is not None:
                raise problem(
                    409,
                    f"Run already going on for audience {audience_id} for order {run.dataflow_id} "
                    f"with run id {run.run_id}",
                )

        if old_flow:
            self._old_flow_jobs.append(now)
        order = []
        for flow, audience_id in planned:
            run = AdhocRun(
                str(uuid.uuid4()), flow.id, flow.destinationId, audience_id, now, now + self.world.timings.adhoc_run_s
            )
            self.runs[run.run_id] = run
            order.append({"segment": audience_id, "order": flow.id, "statusURL": f"{RUNS_URL}/{run.run_id}"})
        return {"order": order}

    def export_datasets(self, body: Any) -> dict[str, Any]:
        """An ad-hoc dataset export: a run per dataset of each named dataflow, now."""
        info = body.get("activationInfo") if isinstance(body, dict) else None
        destinations = info.get("destinations") if isinstance(info, dict) else None
        if not isinstance(destinations, list) or not destinations:
            raise problem(400, "activationInfo.destinations must list dataflows and their datasets")
        now = self.clock()
        answered = []
        for destination in destinations:
            flow_id = destination.get("flowId") if isinstance(destination, dict) else None
            flow = self.world.dataflows.get(flow_id) if isinstance(flow_id, str) else None
            if flow is None:
                raise problem(400, f"Dataflow {flow_id} does not exist")
            datasets = destination.get("datasets")
            if not isinstance(datasets, list) or not datasets:
                raise problem(400, f"Dataflow {flow_id}: datasets must list the datasets to export")
            exported = []
            for dataset in datasets:
                dataset_id = dataset.get("id") if isinstance(dataset, dict) else None
                if not isinstance(dataset_id, str) or not dataset_id:
                    raise problem(400, f"Dataflow {flow_id}: each dataset needs an id")
                run = AdhocRun(
                    str(uuid.uuid4()),
                    flow.id,
                    flow.destinationId,
                    dataset_id,
                    now,
                    now + self.world.timings.adhoc_run_s,
                )
                self.runs[run.run_id] = run
                exported.append({"id": dataset_id, "flowId": flow.id, "statusURL": f"{RUNS_URL}/{run.run_id}"})
            answered.append({"flowId": flow.id, "datasets": exported})
        return {"destinations": answered}

    def run_document(self, run_id: str) -> dict[str, Any]:
        run = self.runs.get(run_id)
        if run is None:
            raise problem(404, f"flow run {run_id} not found")
        now = self.clock()
        running = run.running(now)
        summary: dict[str, Any] = {"startedAtUTC": int(run.started_at * 1000)}
        if not running:
            summary["completedAtUTC"] = int(min(now, run.ends_at) * 1000)
        item = {
            "id": run.run_id,
            "flowId": run.dataflow_id,
            "createdAt": int(run.started_at * 1000),
            "status": {"value": "inProgress" if running else "success"},
            "metrics": {"durationSummary": summary},
            "activities": [{"segmentId": run.audience_id, "destinationId": run.destination_id, "type": "adhoc"}],
        }
        return {"items": [item]}

    def finish(self, ids: Iterable[str] | None) -> int:
        wanted = None if ids is None else set(ids)
        now = self.clock()
        ended = [r for r in self.runs.values() if r.running(now) and (wanted is None or r.run_id in wanted)]
        for run in ended:
            run.done = True
        return len(ended)

    def summary(self) -> list[dict[str, Any]]:
        now = self.clock()
        return [
            {
                "runId": r.run_id,
                "dataflowId": r.dataflow_id,
                "destinationId": r.destination_id,
                "audienceId": r.audience_id,
                "running": r.running(now),
            }
            for r in self.runs.values()
        ]


@platform_endpoint()
async def adhoc_run(request: Request, body: Any) -> Response:
    activation: Activation = request.app.state.emulator.activation
    accept = request.headers.get("accept", "")
    if DATASET_MEDIA_TYPE in accept.lower().replace(" ", ""):
        return json_answer(activation.export_datasets(body))
    return json_answer(activation.start(body, v2=is_v2(accept)))


@platform_endpoint()
async def flow_run(request: Request, body: Any) -> Response:
    activation: Activation = request.app.state.emulator.activation
    return json_answer(activation.run_document(request.path_params["run_id"]))


def routes() -> list[Route]:
    adhoc = "/data/core/activation/disflowprovider/adhocrun"
    runs = "/data/foundation/flowservice/runs/{run_id}"
    return [
        Route(adhoc, adhoc_run, methods=["POST"]),
        Route(adhoc + "/", adhoc_run, methods=["POST"]),
        Route(runs, flow_run, methods=["GET"]),
    ]
