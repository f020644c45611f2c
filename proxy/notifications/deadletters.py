"""The dead-letter file: notifications the edge refused for good (or that ran out of attempts), one JSON
line each with ``at``, ``status``, ``reason``, ``client``, ``visitor``, ``sessionId``, ``ids``,
``notification`` and ``attempts``; appended and synced, one write per settlement."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import orjson

from proxy.notifications.model import Pending


class DeadLetters:
    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock

    def write(self, pending: Sequence[Pending], reason: str, status: int | None) -> None:
        now = self.clock()
        lines = b"".join(
            orjson.dumps(
                {
                    "at": now,
                    "status": status,
                    "reason": reason,
                    "client": p.client,
                    "visitor": p.visitor,
                    "sessionId": p.session_id,
                    "ids": orjson.Fragment(p.ids_json),
                    "notification": orjson.Fragment(p.payload_json),
                    "attempts": p.attempts,
                },
                option=orjson.OPT_APPEND_NEWLINE,
            )
            for p in pending
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, lines)
            os.fsync(fd)
        finally:
            os.close(fd)
