"""Where the rules artifact comes from: a file, or an address read through the upstream client (Adobe's
CDN, or the embedded emulator standing in for it), taken at start and read again every polling interval
(an address with ``If-None-Match``, a file when it changed). A new artifact replaces the one in use only
once it has been read whole and is of the supported major version; until then, and when it cannot be
read, the one in use stays."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from proxy.decisioning.artifact import Artifact, UnsupportedArtifact
from proxy.upstream import Upstream, UpstreamUnavailable

logger = logging.getLogger("proxy.decisioning")


class ArtifactSource:
    def __init__(
        self,
        location: str,
        polling_s: float,
        upstream: Upstream,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.location = location
        self.polling_s = polling_s
        self.upstream = upstream
        self.clock = clock
        self.current: Artifact | None = None
        self.loaded_at: float | None = None
        self.last_error: str | None = None
        self.reads = 0
        self.read_at: str | None = None  # when it was last read, ISO 8601 (for traces)
        self.versions_seen: list[str] = []  # each version taken, once (the metrics' labels)
        self._tag: str | None = None  # the address's ETag, or the file's size and time
        self._task: asyncio.Task[None] | None = None

    @property
    def remote(self) -> bool:
        return self.location.startswith(("http://", "https://"))

    def status(self) -> dict[str, Any]:
        """What ``/readyz`` shows of it."""
        return {
            "ok": self.current is not None,
            "location": self.location,
            "version": self.current.version if self.current else None,
            "ageSeconds": round(self.age(), 1) if self.loaded_at is not None else None,
            "error": self.last_error,
        }

    def trace(self) -> dict[str, Any]:
        """What a decision's trace says of the artifact, as Adobe's engine says it."""
        artifact = self.current
        return {
            "artifactLocation": self.location,
            "pollingInterval": int(self.polling_s * 1000),
            "pollingHalted": False,
            "artifactVersion": artifact.version if artifact else "unknown",
            "artifactRetrievalCount": self.reads,
            "artifactLastRetrieved": self.read_at,
            **(artifact.meta if artifact else {}),
        }

    def age(self) -> float:
        return self.clock() - self.loaded_at if self.loaded_at is not None else 0.0

    async def refresh(self) -> bool:
        """Read the artifact again; whether a new one was taken."""
        self.reads += 1
        try:
            document = await (self._fetch() if self.remote else asyncio.to_thread(self._read_file))
        except (OSError, UpstreamUnavailable, orjson.JSONDecodeError, UnsupportedArtifact) as exc:
            self.last_error = str(exc) or type(exc).__name__
            logger.warning("rules artifact %s not taken: %s", self.location, self.last_error)
            return False
        self.read_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if document is None:  # unchanged
            self.loaded_at = self.clock()
            return False
        artifact, tag = document
        self.current, self._tag, self.loaded_at, self.last_error = artifact, tag, self.clock(), None
        if artifact.version not in self.versions_seen:
            self.versions_seen.append(artifact.version)
        logger.info("rules artifact %s version %s taken", self.location, artifact.version)
        return True

    async def _fetch(self) -> tuple[Artifact, str | None] | None:
        parts = urlsplit(self.location)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {"accept": "application/json"}
        if self._tag and self.current is not None:
            headers["if-none-match"] = self._tag
        response = await self.upstream.request("GET", parts.netloc, path, headers=headers)
        if response.status == 304:
            return None
        if response.status != 200:
            raise OSError(f"answered {response.status}")
        return Artifact.parse(orjson.loads(response.body)), response.headers.get("etag")

    def _read_file(self) -> tuple[Artifact, str | None] | None:
        path = Path(self.location)
        stat = path.stat()
        tag = f"{stat.st_size}-{stat.st_mtime_ns}"
        if tag == self._tag and self.current is not None:
            return None
        return Artifact.parse(orjson.loads(path.read_bytes())), tag

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._poll())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.polling_s)
            await self.refresh()
