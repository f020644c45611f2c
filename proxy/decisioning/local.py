"""Which requests are decided on device, and deciding them: the decisioning method's rule over the artifact
in use. ``on-device`` decides every request from the artifact (what only the edge can decide is named in
the answer, ``remoteMboxes`` / ``remoteViews``, with status 206, as Adobe's SDKs answer on device);
``hybrid`` decides a request on device when the artifact can decide all of it, and leaves the rest to the
edge; ``server-side`` decides nothing here."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from proxy.decisioning.artifact import Artifact
from proxy.decisioning.engine import Decided, decide
from proxy.decisioning.source import ArtifactSource
from proxy.failures import ArtifactMissing

ON_DEVICE = "on-device"
HYBRID = "hybrid"


@dataclass(frozen=True, slots=True)
class Plan:
    """A request the artifact will decide: the artifact, and the mboxes and views only the edge can."""

    artifact: Artifact
    remote: tuple[list[str], list[str]]


class LocalDecisions:
    def __init__(self, method: str, source: ArtifactSource, wall_clock: Callable[[], float] = time.time) -> None:
        self.method = method
        self.source = source
        self.wall_clock = wall_clock
        self.decided = 0
        self.left_to_edge = 0

    def plan(self, request: dict[str, Any]) -> Plan | None:
        """The artifact that decides the request and what of it only the edge can decide; None when the
        edge decides all of it (raises ArtifactMissing on device only, with no artifact yet)."""
        artifact = self.source.current
        if artifact is None:
            if self.method == ON_DEVICE:
                raise ArtifactMissing("Unable to fulfill request; decisioning engine not ready (no rules artifact yet)")
            self.left_to_edge += 1
            return None
        remote = artifact.remote_needs(request)
        if self.method == HYBRID and any(remote):
            self.left_to_edge += 1
            return None
        return Plan(artifact, remote)

    def decide(self, plan: Plan, client: str, request: dict[str, Any], session_id: str | None = None) -> Decided:
        """The request decided by its plan's artifact (the one in use when it was planned)."""
        self.decided += 1
        now_ms = int(self.wall_clock() * 1000)
        about = self.source.trace() if request.get("trace") is not None else None
        return decide(plan.artifact, client, request, now_ms, session_id, about, plan.remote)
