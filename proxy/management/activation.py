"""Experience Platform ad-hoc activation guardrails, checked before a call is spent:

- at most 80 audiences per job (20 with the beta's export ids);
- one job per audience at a time: the gateway remembers the jobs it started until their run ends
  (asking the run's status link when a new job wants the same audience);
- not while a scheduled export of the audience is running.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import urlsplit

import orjson

from proxy.http.errors import ApiError
from proxy.upstream import UpstreamResponse

DATASET_MEDIA_TYPE = "application/vnd.adobe.adhoc.dataset.activation+json"
V2_MAX_AUDIENCES = 80
BETA_MAX_AUDIENCES = 20
RUNNING_EXPORTS = ("NEW", "PROCESSING")
FINISHED_RUNS = frozenset({"success", "succeeded", "failed", "cancelled", "canceled"})

Fetch = Callable[[str], Awaitable[Any]]
# A run the gateway started: (order, run id, status path, started at)
Running = tuple[str, str, str, float]


@dataclass(slots=True)
class Job:
    """The audiences of a job being started: no other job may start for them meanwhile."""

    audiences: set[str]


class ActivationGuard:
    def __init__(self, job_timeout_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.job_timeout_s = job_timeout_s
        self.clock = clock
        # audience -> the run started for it; forgotten once it ends, or after job_timeout_s.
        self._running: dict[str, Running] = {}
        self._admitting: set[str] = set()
        self.refused = 0

    async def admit(self, body: bytes | None, accept: str, fetch: Fetch) -> Job:
        try:
            document = orjson.loads(body or b"")
        except orjson.JSONDecodeError:
            raise ApiError(400, "body: malformed JSON", "body") from None
        info = document.get("activationInfo") if isinstance(document, dict) else None
        if DATASET_MEDIA_TYPE in accept.lower().replace(" ", ""):
            check_dataset_export(info)
            return Job(set())  # datasets, not audiences: none of the audience checks apply
        if not isinstance(info, dict) or not info or not all(isinstance(v, list) for v in info.values()):
            raise ApiError(400, "activationInfo: a map of destination ids to lists of audience ids", "activationInfo")
        audiences = {str(a) for ids in info.values() for a in ids}
        limit = audience_limit(document, accept)
        if not audiences or (limit is not None and len(audiences) > limit):
            self.refused += 1
            raise ApiError(
                400,
                f"activationInfo: an ad-hoc activation job takes 1 to {limit} audiences, not {len(audiences)}",
                "activationInfo",
            )
        await self._refuse_running(audiences, fetch)
        await self._refuse_exporting(audiences, fetch)
        # Nothing is awaited from here on: a job started for one of these audiences meanwhile shows now.
        busy = audiences & self._admitting
        if busy:
            self.refused += 1
            raise ApiError(409, f"an ad-hoc activation job for audience {sorted(busy)[0]} is being started")
        for audience in sorted(audiences & self._running.keys()):
            self._refuse(audience, self._running[audience])
        self._admitting |= audiences
        return Job(audiences)

    async def _refuse_running(self, audiences: set[str], fetch: Fetch) -> None:
        """Refuse an audience whose run goes on; forget the runs that have ended."""
        now = self.clock()
        for audience in sorted(audiences):
            running = self._running.get(audience)
            if running is None:
                continue
            _, _, status_path, started = running
            if now - started > self.job_timeout_s or await self._finished(status_path, fetch):
                if self._running.get(audience) == running:  # another caller may have forgotten it, or replaced it
                    del self._running[audience]
                continue
            self._refuse(audience, running)

    def _refuse(self, audience: str, running: Running) -> NoReturn:
        order, run, _, _ = running
        self.refused += 1
        raise ApiError(409, f"Run already going on for audience {audience} for order {order} with run id {run}")

    @staticmethod
    async def _finished(status_path: str, fetch: Fetch) -> bool:
        if not status_path:
            return False
        document = await fetch(status_path)
        if not isinstance(document, dict):
            return False
        listed = document.get("items")
        items: list[Any] = listed if isinstance(listed, list) else [document]
        statuses = []
        for item in items:
            status = item.get("status") if isinstance(item, dict) else None
            statuses.append(str(status.get("value") if isinstance(status, dict) else status).lower())
        return bool(statuses) and all(status in FINISHED_RUNS for status in statuses)

    async def _refuse_exporting(self, audiences: set[str], fetch: Fetch) -> None:
        for status in RUNNING_EXPORTS:
            for job in records(await fetch(f"/data/core/ups/export/jobs?status={status}")):
                segments = (job.get("filter") or {}).get("segments") or []
                exporting = audiences & {str(s.get("segmentId")) for s in segments if isinstance(s, dict)}
                if exporting:
                    self.refused += 1
                    raise ApiError(
                        409,
                        f"Audience {sorted(exporting)[0]} is being exported by a scheduled export job "
                        f"({job.get('id')}); ad-hoc activation waits until it has finished",
                    )

    def abandon(self, job: Job) -> None:
        self._admitting -= job.audiences

    def started(self, job: Job, response: UpstreamResponse) -> None:
        """Remember the runs upstream started for the job's audiences."""
        self._admitting -= job.audiences
        if response.status != 200:
            return
        try:
            orders = orjson.loads(response.body).get("order") or []
        except (orjson.JSONDecodeError, AttributeError):
            return
        now = self.clock()
        for order in orders:
            if not isinstance(order, dict) or not order.get("segment"):
                continue
            status_url = str(order.get("statusURL") or "")
            parts = urlsplit(status_url)
            run_id = parts.path.rstrip("/").rsplit("/", 1)[-1] if parts.path else ""
            self._running[str(order["segment"])] = (str(order.get("order", "")), run_id, parts.path, now)

    def running(self) -> int:
        return len(self._running)


def records(document: Any) -> list[dict[str, Any]]:
    """The jobs of an export job list answer."""
    found = document.get("records") if isinstance(document, dict) else None
    return [job for job in found or [] if isinstance(job, dict)]


def audience_limit(document: dict[str, Any], accept: str) -> int | None:
    """Audiences one ad-hoc activation job may take, by the API version the request speaks, each as its
    own document says: v2 (``Accept: ...; version=2``), 80; the beta's ``exportIds``, 20; the older flow's
    single ``exportId``, any number (None)."""
    if "version=2" in accept:
        return V2_MAX_AUDIENCES
    if document.get("exportIds"):
        return BETA_MAX_AUDIENCES
    if document.get("exportId"):
        return None
    return V2_MAX_AUDIENCES


def check_dataset_export(info: Any) -> None:
    """An ad-hoc dataset export (``Accept: application/vnd.adobe.adhoc.dataset.activation+json; version=1``):
    ``activationInfo.destinations``, each a ``flowId`` with the ``datasets`` (by ``id``) to export now."""
    destinations = info.get("destinations") if isinstance(info, dict) else None
    if not isinstance(destinations, list) or not destinations:
        raise ApiError(400, "activationInfo.destinations: a list of dataflows and their datasets", "activationInfo")
    for n, destination in enumerate(destinations):
        where = f"activationInfo.destinations[{n}]"
        if not isinstance(destination, dict) or not isinstance(destination.get("flowId"), str):
            raise ApiError(400, f"{where}.flowId: a dataflow id is required", f"{where}.flowId")
        datasets = destination.get("datasets")
        if not isinstance(datasets, list) or not datasets:
            raise ApiError(400, f"{where}.datasets: a list of datasets is required", f"{where}.datasets")
        for m, dataset in enumerate(datasets):
            if not isinstance(dataset, dict) or not isinstance(dataset.get("id"), str) or not dataset["id"]:
                raise ApiError(400, f"{where}.datasets[{m}].id: a dataset id is required", f"{where}.datasets[{m}].id")
