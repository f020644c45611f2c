"""Which requests are decided on device, and deciding them: the decisioning method's rule over the artifact
in use. ``on-device`` decides every request from the artifact (what only the edge can decide is named in
the answer, ``remoteMboxes`` / ``remoteViews``, with status 206, as Adobe's SDKs answer on device);
``hybrid`` decides a request on device when the artifact can decide all of it, and leaves the rest to the
edge; ``server-side`` decides nothing here."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from proxy.decisioning.engine import Decided, decide
from proxy.decisioning.source import ArtifactSource
from proxy.failures import ArtifactMissing

ON_DEVICE = "on-device"
HYBRID = "hybrid"


class LocalDecisions:
    def __init__(self, method: str, source: ArtifactSource, wall_clock: Callable[[], float] = time.time) -> None:
        self.method = method
        self.source = source
        self.wall_clock = wall_clock
        self.decided = 0
        self.left_to_edge = 0

    def geo_wanted(self, request: dict[str, Any]) -> bool:
        """Whether the artifact targets by geo and would decide this request (so its place matters)."""
        artifact = self.source.current
        if artifact is None or not artifact.geo_targeting:
            return False
        return self.method == ON_DEVICE or not any(artifact.remote_needs(request))

    def decide(self, client: str, request: dict[str, Any], session_id: str | None = None) -> Decided | None:
        """The request decided from the artifact, or None when the edge decides it (raises
        ArtifactMissing on device only, with no artifact yet)."""
        artifact = self.source.current
        if artifact is None:
            if self.method == ON_DEVICE:
                raise ArtifactMissing("Unable to fulfill request; decisioning engine not ready (no rules artifact yet)")
            self.left_to_edge += 1
            return None
        if self.method == HYBRID:
            remote_mboxes, remote_views = artifact.remote_needs(request)
            if remote_mboxes or remote_views:
                self.left_to_edge += 1
                return None
        self.decided += 1
        now_ms = int(self.wall_clock() * 1000)
        about = self.source.trace() if request.get("trace") is not None else None
        return decide(artifact, client, request, now_ms, session_id, about)
