"""The local log's format: one JSON line per notification written (``Entry.line``), acknowledgement lines
after them, and reading back what still waits in a process's log directory (``replay``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from proxy.notifications.model import Group, Pending


@dataclass(slots=True)
class Entry:
    """A waiting notification, kept serialized (a call sends it as it is), with its retry state."""

    group: Group
    id: str
    edge_host: str | None
    ids_json: bytes
    payload_json: bytes
    created: float
    segment: int
    attempts: int = 0
    next_attempt: float = 0.0

    def pending(self, seq: int) -> Pending:
        group = self.group
        return Pending(
            seq,
            self.id,
            group.client,
            group.visitor,
            group.session_id,
            self.edge_host,
            self.ids_json,
            self.payload_json,
            self.created,
            self.attempts,
        )

    def line(self, seq: int) -> bytes:
        group = self.group
        record = {
            "k": "n",
            "s": seq,
            "g": [group.client, group.visitor, group.session_id],
            "e": self.edge_host,
            "i": orjson.Fragment(self.ids_json),
            "p": orjson.Fragment(self.payload_json),
            "t": self.created,
        }
        return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)


def compact(data: bytes) -> bytes:
    """A copy of its own size: orjson's results hold a 4 KB allocation each."""
    return bytes(memoryview(data))


def replay(directory: Path) -> Iterator[dict[str, Any]]:
    """The records still waiting in a process's log directory, oldest first. A line cut short by a
    crash (only the last one can be) is skipped."""
    waiting: dict[int, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.log")):
        with path.open("rb") as handle:
            for line in handle:
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if record.get("k") == "n":
                    waiting[record["s"]] = record
                elif record.get("k") == "a":
                    for seq in record.get("s", ()):
                        waiting.pop(seq, None)
    for seq in sorted(waiting):
        yield waiting[seq]


def stored(root: Path) -> list[dict[str, Any]]:
    """Every notification waiting under a store's root, whichever process wrote it (for operators and
    tests; reads the files only)."""
    return [record for directory in sorted(root.glob("*-*")) if directory.is_dir() for record in replay(directory)]
