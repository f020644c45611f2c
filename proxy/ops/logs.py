"""Structured JSON logs: one object per line, for the gateway's own messages and one per request.

The request log is written by a background thread: a request only puts a small tuple on a bounded
queue (dropped, and counted, if the writer falls behind). Visitors appear as a keyed hash, never by
their ids; no header, query or body is logged, so neither are secrets.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, TextIO

import orjson

from proxy.http.observed import Observed

ACCESS_QUEUE_BOUND = 100_000
WRITE_INTERVAL_S = 0.25
HASHES_KEPT = 10_000  # visitors whose hash is remembered (recomputing one costs a few microseconds)


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            document["error"] = self.formatException(record.exc_info)
        return orjson.dumps(document).decode()


def configure(level: str, stream: TextIO = sys.stderr) -> None:
    """JSON for every logger, uvicorn's included."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # The gateway writes its own request log (AccessLog); uvicorn's would repeat it without the details.
    access = logging.getLogger("uvicorn.access")
    access.handlers[:] = []
    access.propagate = False


def stored_salt(path: Path) -> str:
    """A secret kept beside the gateway's state, so every worker and restart hashes a visitor alike."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        salt = secrets.token_hex(16)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another worker was first
            return path.read_text().strip()
        with os.fdopen(fd, "w") as handle:
            handle.write(salt)
        return salt


class AccessLog:
    """One JSON line per request: route, status, latency, cache outcome, a hash of the visitor.

    A request appends a tuple to a deque (no lock, no wake-up); the writer thread wakes a few times a
    second and writes all that came meanwhile, so requests and the writer rarely contend for the GIL.
    """

    def __init__(self, enabled: bool, salt: str | None = None, stream: TextIO = sys.stdout) -> None:
        self.enabled = enabled
        self.dropped = 0
        self._key = (salt or secrets.token_hex(16)).encode()
        self._stream = stream
        self._lines: deque[tuple[Any, ...]] = deque()
        self._second = -1
        self._stamp = ""
        self._hashes: dict[str, str] = {}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.enabled and self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._write_forever, name="access-log", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._stopping.set()
            self._thread.join(5)
            self._thread = None

    def record(self, request: Observed) -> None:
        if not self.enabled:
            return
        if len(self._lines) >= ACCESS_QUEUE_BOUND:
            self.dropped += 1
            return
        self._lines.append((time.time(), request))

    def visitor_hash(self, visitor: str) -> str:
        known = self._hashes.get(visitor)
        if known is None:
            if len(self._hashes) >= HASHES_KEPT:
                self._hashes.clear()
            known = self._hashes[visitor] = hmac.new(self._key, visitor.encode(), hashlib.sha256).hexdigest()[:16]
        return known

    def _write_forever(self) -> None:
        while not self._stopping.wait(WRITE_INTERVAL_S):
            self._write_all()
        self._write_all()

    def _write_all(self) -> None:
        lines = []
        while self._lines:
            lines.append(self._line(*self._lines.popleft()))
        if not lines:
            return
        try:
            self._stream.write("".join(lines))
            self._stream.flush()
        except (OSError, ValueError):
            self.dropped += len(lines)

    def _line(self, at: float, request: Observed) -> str:
        if int(at) != self._second:
            self._second = int(at)
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at))
        line: dict[str, Any] = {
            "time": f"{self._stamp}.{int(at * 1000) % 1000:03d}Z",
            "kind": "request",
            "method": request.method,
            "route": request.route,
            "status": request.status,
            "ms": round(request.seconds * 1000, 3),
        }
        if request.cache:
            line["cache"] = request.cache
        if request.visitor:
            line["visitor"] = self.visitor_hash(request.visitor)
        if request.request_id:
            line["request_id"] = request.request_id
        return orjson.dumps(line).decode() + "\n"
