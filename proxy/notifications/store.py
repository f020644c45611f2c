"""The write-ahead store of notifications: SQLite in WAL mode.

A notification is committed before the client that caused it is answered, and deleted only when the
edge acknowledged its id. Requests that arrive together share one commit (group commit), so the hot
path pays one insert each and a commit now and then. Rows are leased to whoever sends them (a flusher
or a visitor's next delivery call); a lease that runs out, because its holder crashed, frees the row
for another attempt. Several worker processes may share one file.

``synchronous=NORMAL`` keeps every committed notification across a crash of the process; ``FULL``
also across a power loss, at the cost of an fsync per commit.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

SCHEMA = """
CREATE TABLE IF NOT EXISTS notifications (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    client TEXT NOT NULL,
    visitor TEXT NOT NULL,
    session_id TEXT NOT NULL,
    edge_host TEXT,
    ids BLOB NOT NULL,
    payload BLOB NOT NULL,
    created REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL DEFAULT 0,
    lease_until REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS notifications_by_visitor ON notifications (client, visitor, session_id);
"""
COLUMNS = "seq, id, client, visitor, session_id, edge_host, ids, payload, created, attempts"


class BacklogFull(Exception):
    """The store holds as many notifications as it may; new ones must wait."""


@dataclass(slots=True)
class NewNotification:
    client: str
    visitor: str
    session_id: str
    edge_host: str | None
    ids: dict[str, Any]
    payload: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.payload["id"])


@dataclass(slots=True)
class Pending:
    seq: int
    id: str
    client: str
    visitor: str
    session_id: str
    edge_host: str | None
    ids: dict[str, Any]
    payload: dict[str, Any]
    created: float
    attempts: int

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Pending:
        seq, nid, client, visitor, session, edge, ids, payload, created, attempts = row
        return cls(
            seq,
            nid,
            client,
            visitor,
            session,
            edge,
            orjson.loads(ids),
            orjson.loads(payload),
            created,
            attempts,
        )


@dataclass(slots=True, frozen=True)
class Group:
    """The notifications one upstream call may carry: one visitor, one session."""

    client: str
    visitor: str
    session_id: str


class NotificationStore:
    def __init__(
        self,
        path: Path,
        max_backlog: int,
        synchronous: str = "NORMAL",
        dead_letter_path: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.max_backlog = max_backlog
        self.synchronous = synchronous
        self.dead_letter_path = dead_letter_path or self.path.with_suffix(".dead-letters.jsonl")
        self.clock = clock
        self._db: sqlite3.Connection | None = None
        self._waiting: list[tuple[list[NewNotification], asyncio.Future[None]]] = []
        self._queued = 0  # notifications in ``_waiting``, which the backlog bound counts too
        self._commit_scheduled = False
        self._depth = 0
        self._depth_counted_at = float("-inf")

    # --- lifecycle -----------------------------------------------------------------------------------

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={self.synchronous}")
        db.executescript(SCHEMA)
        self._db = db
        self.count()

    def close(self) -> None:
        if self._db is not None:
            self._commit_now()
            self._db.close()
            self._db = None

    @property
    def opened(self) -> bool:
        return self._db is not None

    @property
    def db(self) -> sqlite3.Connection:
        assert self._db is not None, "notification store is not open"
        return self._db

    # --- writing -------------------------------------------------------------------------------------

    async def add(self, notifications: list[NewNotification]) -> None:
        """Return once the notifications are committed; with others that arrive meanwhile."""
        if self.depth() + self._queued + len(notifications) > self.max_backlog:
            raise BacklogFull(f"{self.max_backlog} notifications are waiting")
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._waiting.append((notifications, done))
        self._queued += len(notifications)
        if not self._commit_scheduled:
            self._commit_scheduled = True
            loop.call_soon(self._commit_now)
        await done

    def _commit_now(self) -> None:
        self._commit_scheduled = False
        waiting, self._waiting = self._waiting, []
        self._queued = 0
        if not waiting:
            return
        now = self.clock()
        rows = [
            (
                n.id,
                n.client,
                n.visitor,
                n.session_id,
                n.edge_host,
                orjson.dumps(n.ids),
                orjson.dumps(n.payload),
                now,
            )
            for batch, _ in waiting
            for n in batch
        ]
        try:
            with self._transaction() as db:
                before = db.total_changes
                db.executemany(
                    "INSERT OR IGNORE INTO notifications (id, client, visitor, session_id, edge_host, ids, payload, "
                    "created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
                self._depth += db.total_changes - before
        except sqlite3.Error as exc:
            for _, done in waiting:
                if not done.done():
                    done.set_exception(exc)
            return
        for _, done in waiting:
            if not done.done():
                done.set_result(None)

    def _transaction(self) -> _Transaction:
        return _Transaction(self.db)

    # --- reading and leasing -----------------------------------------------------------------------

    def count(self) -> int:
        (self._depth,) = self.db.execute("SELECT COUNT(*) FROM notifications").fetchone()
        self._depth_counted_at = time.monotonic()
        return self._depth

    def depth(self) -> int:
        """Notifications waiting (recounted every few seconds: other processes may share the file)."""
        if time.monotonic() - self._depth_counted_at > 5:
            return self.count()
        return self._depth

    def oldest_age(self) -> float:
        (oldest,) = self.db.execute("SELECT MIN(created) FROM notifications").fetchone()
        return 0.0 if oldest is None else max(0.0, self.clock() - oldest)

    def due_groups(self, batch_size: int, max_delay_s: float, limit: int = 64) -> list[Group]:
        """Visitors whose waiting notifications fill a batch or have waited long enough."""
        now = self.clock()
        rows = self.db.execute(
            "SELECT client, visitor, session_id FROM notifications WHERE lease_until < ? AND next_attempt <= ? "
            "GROUP BY client, visitor, session_id HAVING COUNT(*) >= ? OR MIN(created) <= ? "
            "ORDER BY MIN(seq) LIMIT ?",
            (now, now, batch_size, now - max_delay_s, limit),
        ).fetchall()
        return [Group(*row) for row in rows]

    def claim(self, group: Group, limit: int, lease_s: float, *, due_only: bool = True) -> list[Pending]:
        """Lease up to ``limit`` of a visitor's notifications, oldest first. A call going to the edge
        anyway takes them whether or not their retry is due (``due_only=False``)."""
        now = self.clock()
        not_after = now if due_only else float("inf")
        with self._transaction() as db:
            rows = db.execute(
                "UPDATE notifications SET lease_until = ? WHERE seq IN (SELECT seq FROM notifications "
                "WHERE client = ? AND visitor = ? AND session_id = ? AND lease_until < ? AND next_attempt <= ? "
                f"ORDER BY seq LIMIT ?) RETURNING {COLUMNS}",
                (now + lease_s, group.client, group.visitor, group.session_id, now, not_after, limit),
            ).fetchall()
        return sorted((Pending.from_row(row) for row in rows), key=lambda p: p.seq)

    # --- outcomes ------------------------------------------------------------------------------------

    def ack(self, pending: Iterable[Pending]) -> int:
        seqs = [(p.seq,) for p in pending]
        if not seqs:
            return 0
        with self._transaction() as db:
            before = db.total_changes
            db.executemany("DELETE FROM notifications WHERE seq = ?", seqs)
            removed = db.total_changes - before
        self._depth = max(0, self._depth - removed)
        return removed

    def retry(self, pending: Iterable[Pending], delay_s: float) -> None:
        """Count a failed attempt and free the rows for another one after ``delay_s``."""
        rows = [(self.clock() + delay_s, p.seq) for p in pending]
        with self._transaction() as db:
            db.executemany(
                "UPDATE notifications SET attempts = attempts + 1, next_attempt = ?, lease_until = 0 WHERE seq = ?",
                rows,
            )

    def release(self, pending: Iterable[Pending]) -> None:
        """Give rows back without counting an attempt (the call carrying them never went out)."""
        with self._transaction() as db:
            db.executemany("UPDATE notifications SET lease_until = 0 WHERE seq = ?", [(p.seq,) for p in pending])

    def dead_letter(self, pending: Sequence[Pending], reason: str, status: int | None) -> None:
        """Move rows the edge refused for good to the dead-letter file, with the reason."""
        if not pending:
            return
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
                    "ids": p.ids,
                    "notification": p.payload,
                    "attempts": p.attempts,
                }
            )
            + b"\n"
            for p in pending
        )
        self.dead_letter_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.dead_letter_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, lines)
            os.fsync(fd)
        finally:
            os.close(fd)
        self.ack(pending)


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``: take the write lock up front, so writers never deadlock."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        self.db.execute("ROLLBACK" if kind is not None else "COMMIT")
