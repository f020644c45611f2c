"""The write-ahead store of notifications: an append-only log of JSON lines (its format: ``log``), and the
index of what waits, in memory.

A notification is written to the log before the client that caused it is answered: requests that
arrive in the same turn of the event loop share one ``write`` (group commit), so the hot path pays
no system call of its own, no thread hand-off and no database. An acknowledged notification is
followed in the log by an acknowledgement line. ``notification_sync = "full"`` adds an ``fsync`` to
each write: written lines then survive a power loss too, not only a crash of the process.

What waits is also kept in memory (bounded by ``max_backlog``), indexed by visitor and session, so
the flusher never reads the disk. The log is cut into segments; a segment whose notifications are
all settled is deleted, and the few notifications still waiting in an old segment are copied
forward so that it can be.

Each process writes in a directory of its own, which it holds locked while it runs. At start, and
now and then, a process adopts the directories of processes that are gone (crashed, or stopped
with notifications left): it copies what was still waiting there into its own log, then deletes
them. Nothing is lost, and what was in flight when a process died is sent again (the edge counts
a repeated notification id once).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from proxy.notifications.deadletters import DeadLetters
from proxy.notifications.log import Entry, compact, replay
from proxy.notifications.model import BacklogFull, Group, Pending

SEGMENT_BYTES = 16 * 1024 * 1024
# An old segment whose waiting notifications are at most this share of what it held is copied
# forward and deleted.
COPY_FORWARD_SHARE = 0.05


@dataclass(slots=True)
class Waiting:
    """What waits for one group: its notifications in order, not before when to try them again (after
    a failed call), and until when a call holds them (its lease)."""

    seqs: dict[int, None] = field(default_factory=dict)
    not_before: float = 0.0
    lease_until: float = 0.0
    ids_json: bytes = b""


class NotificationStore:
    def __init__(
        self,
        path: Path,
        max_backlog: int,
        fsync: bool = False,
        dead_letter_path: Path | None = None,
        clock: Callable[[], float] = time.time,
        segment_bytes: int = SEGMENT_BYTES,
    ) -> None:
        self.root = Path(path)
        self.max_backlog = max_backlog
        self.fsync = fsync  # each write reaches the disk before it is acknowledged (notification_sync = "full")
        self.dead_letter_path = dead_letter_path or self.root / "dead-letters.jsonl"
        self.dead_letters = DeadLetters(self.dead_letter_path, clock)
        self.clock = clock
        self.segment_bytes = segment_bytes
        self.directory = self.root / f"{os.getpid()}-{secrets.token_hex(4)}"
        self._lock_fd: int | None = None
        self._fd: int | None = None
        self._segment = 0
        self._segment_size = 0
        self._segment_live: dict[int, int] = {}
        self._segment_total: dict[int, int] = {}
        self._entries: dict[int, Entry] = {}
        self._groups: dict[Group, Waiting] = {}
        self._seq = 0
        self._buffer: list[bytes] = []
        self._waiting: list[asyncio.Future[None]] = []
        self._write_scheduled = False
        self.adopted = 0

    # --- lifecycle -----------------------------------------------------------------------------------

    def open(self) -> None:
        # The directory takes its name (one that adopt() looks at) only once it is locked: no other
        # process can take it over while it is being set up.
        setting_up = self.root / self.directory.name.replace("-", ".")
        setting_up.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(setting_up / "lock", os.O_WRONLY | os.O_CREAT, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        setting_up.rename(self.directory)
        self._start_segment()
        self.adopt()

    def close(self) -> None:
        """Write what is buffered and let go of the directory; what still waits stays in it, for the
        next process to adopt."""
        if self._fd is None:
            return
        self._write_now()
        os.close(self._fd)
        self._fd = None
        if not self._entries:
            shutil.rmtree(self.directory, ignore_errors=True)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    @property
    def opened(self) -> bool:
        return self._fd is not None

    def _segment_path(self, segment: int, directory: Path | None = None) -> Path:
        return (directory or self.directory) / f"{segment:08d}.log"

    def _start_segment(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self._segment += 1
        self._segment_size = 0
        self._segment_live[self._segment] = 0
        self._segment_total[self._segment] = 0
        path = self._segment_path(self._segment)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    # --- writing -------------------------------------------------------------------------------------

    def _append(self, line: bytes) -> None:
        self._buffer.append(line)

    def _record(self, group: Group, edge: str | None, ids: Any, payload: Any, created: float) -> int:
        """Log a waiting notification (buffered until the next write) and index it."""
        self._seq += 1
        seq = self._seq
        waiting = self._groups.get(group)
        if waiting is None:
            waiting = self._groups[group] = Waiting()
        ids_json = orjson.dumps(ids)
        if ids_json != waiting.ids_json:  # a visitor's notifications mostly share their ids: keep one copy
            waiting.ids_json = compact(ids_json)
        entry = Entry(
            group, str(payload["id"]), edge, waiting.ids_json, compact(orjson.dumps(payload)), created, self._segment
        )
        self._append(entry.line(seq))
        self._entries[seq] = entry
        self._segment_live[self._segment] += 1
        self._segment_total[self._segment] += 1
        waiting.seqs[seq] = None
        return seq

    def add_group(self, group: Group, edge: str | None, ids: Any, payloads: Sequence[Any]) -> asyncio.Future[None]:
        """Log one visitor's notifications (a view's); done once they are written, with the others of this
        turn of the loop. Raises BacklogFull, writing none of them, when they do not fit."""
        if len(self._entries) + len(payloads) > self.max_backlog:
            raise BacklogFull(f"{self.max_backlog} notifications are waiting")
        now = self.clock()
        for payload in payloads:
            self._record(group, edge, ids, payload, now)
        return self._written()

    def _written(self) -> asyncio.Future[None]:
        """Done when what is buffered now is written (awaited as it is: no coroutine more per view)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(done)
        self._schedule_write()
        return done

    def _write_now(self) -> OSError | None:
        """Write what is buffered (all of it: a short write is continued); the error, if any."""
        self._write_scheduled = False
        buffer, self._buffer = self._buffer, []
        waiting, self._waiting = self._waiting, []
        error: OSError | None = None
        if buffer:
            data = b"".join(buffer)
            try:
                assert self._fd is not None
                written = os.write(self._fd, data)
                while written < len(data):
                    written += os.write(self._fd, data[written:])
                if self.fsync:
                    os.fsync(self._fd)
                self._segment_size += len(data)
            except OSError as exc:
                error = exc
        for done in waiting:
            if done.done():
                continue
            if error is None:
                done.set_result(None)
            else:
                done.set_exception(error)
        if self._segment_size >= self.segment_bytes:
            self._start_segment()
            self._delete_settled()
        return error

    # --- what waits ----------------------------------------------------------------------------------

    def waiting(self, group: Group) -> bool:
        return group in self._groups

    def depth(self) -> int:
        return len(self._entries)

    def oldest_age(self) -> float:
        oldest = next(iter(self._entries.values()), None)  # entries are kept in the order they came
        return 0.0 if oldest is None else max(0.0, self.clock() - oldest.created)

    def due_groups(self, batch_size: int, max_delay_s: float, limit: int = 64) -> list[Group]:
        """Visitors whose waiting notifications fill a batch or have waited long enough, about oldest
        first: groups are kept in the order their first waiting notification came."""
        now = self.clock()
        old_enough = now - max_delay_s
        due = []
        for group, waiting in self._groups.items():
            if waiting.not_before > now or waiting.lease_until > now:
                continue
            if len(waiting.seqs) >= batch_size or self._entries[next(iter(waiting.seqs))].created <= old_enough:
                due.append(group)
                if len(due) >= limit:
                    break
        return due

    def claim(self, group: Group, limit: int, lease_s: float, *, due_only: bool = True) -> list[Pending]:
        """Hand up to ``limit`` of a visitor's notifications, oldest first, to one call; nobody else
        gets that visitor's until they are settled or the lease runs out. A call going to the edge
        anyway takes them whether or not their retry is due (``due_only=False``)."""
        now = self.clock()
        waiting = self._groups.get(group)
        if waiting is None or waiting.lease_until > now or (due_only and waiting.not_before > now):
            return []
        taken = []
        for seq in waiting.seqs:
            entry = self._entries[seq]
            if due_only and entry.next_attempt > now:
                continue
            taken.append(entry.pending(seq))
            if len(taken) >= limit:
                break
        if taken:
            waiting.lease_until = now + lease_s
        elif waiting.seqs:
            # Each waits for its own retry time (halves of a call retried apart): not due before the first.
            waiting.not_before = min(self._entries[seq].next_attempt for seq in waiting.seqs)
        return taken

    # --- outcomes ------------------------------------------------------------------------------------

    def ack(self, pending: Sequence[Pending]) -> int:
        """Forget what the edge acknowledged (an acknowledgement line follows in the log)."""
        done = [p.seq for p in pending if p.seq in self._entries]
        if done:
            self._append(orjson.dumps({"k": "a", "s": done}, option=orjson.OPT_APPEND_NEWLINE))
            self._forget(done)
            self._schedule_write()
        return len(done)

    def _schedule_write(self) -> None:
        if self._write_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._write_now()
            return
        self._write_scheduled = True
        loop.call_soon(self._write_now)

    def _forget(self, seqs: Iterable[int]) -> None:
        for seq in seqs:
            entry = self._entries.pop(seq, None)
            if entry is None:
                continue
            waiting = self._groups.get(entry.group)
            if waiting is not None:
                waiting.seqs.pop(seq, None)
                waiting.lease_until = 0.0
                if not waiting.seqs:
                    del self._groups[entry.group]
            self._segment_live[entry.segment] -= 1
        self._delete_settled()

    def _delete_settled(self) -> None:
        """Delete the segments whose notifications are all settled, oldest first: a segment may hold the
        acknowledgements of an older one's notifications, so it goes only once that one has."""
        while self._segment_live:
            segment = next(iter(self._segment_live))  # the oldest
            if self._segment_live[segment] or segment == self._segment:
                break
            self._delete_segment(segment)

    def _delete_segment(self, segment: int) -> None:
        self._segment_live.pop(segment, None)
        self._segment_total.pop(segment, None)
        with contextlib.suppress(FileNotFoundError):
            self._segment_path(segment).unlink()

    def retry(self, pending: Sequence[Pending], delay_s: float) -> None:
        """Count a failed attempt; the notifications wait ``delay_s`` before the next."""
        due = self.clock() + delay_s
        for p in pending:
            entry = self._entries.get(p.seq)
            if entry is not None:
                entry.attempts += 1
                entry.next_attempt = due
        self._hold({p.group for p in pending}, due)

    def release(self, pending: Sequence[Pending]) -> None:
        """Give notifications back without counting an attempt (their call never went out); a retry
        time they had still holds."""
        for group in {p.group for p in pending}:
            waiting = self._groups.get(group)
            if waiting is not None:
                waiting.lease_until = 0.0

    def _hold(self, groups: Iterable[Group], until: float) -> None:
        for group in groups:
            waiting = self._groups.get(group)
            if waiting is not None:
                waiting.not_before = until
                waiting.lease_until = 0.0

    def dead_letter(self, pending: Sequence[Pending], reason: str, status: int | None) -> None:
        """Move notifications the edge refused for good to the dead-letter file, with the reason."""
        if pending:
            self.dead_letters.write(pending, reason, status)
            self.ack(pending)

    # --- keeping the log small, and adopting what others left ----------------------------------------

    def tidy(self) -> None:
        """Copy forward what still waits in the oldest, mostly settled segments, so they can be deleted
        (oldest first, as settled segments are)."""
        for segment in [s for s in self._segment_live if s != self._segment]:
            if segment not in self._segment_live:
                continue  # settled, and deleted with the one before it
            live, total = self._segment_live[segment], self._segment_total[segment]
            if live > total * COPY_FORWARD_SHARE:
                break
            for seq, entry in list(self._entries.items()):
                if entry.segment == segment:
                    self._copy_forward(seq, entry)
            if (error := self._write_now()) is not None:
                raise error  # the copies' source is deleted only once they are on disk
            self._delete_segment(segment)

    def _copy_forward(self, seq: int, entry: Entry) -> None:
        self._append(entry.line(seq))
        self._segment_live[entry.segment] -= 1
        entry.segment = self._segment
        self._segment_live[self._segment] += 1
        self._segment_total[self._segment] += 1

    def adopt(self) -> int:
        """Take over what processes that are gone left waiting; returns how many notifications."""
        adopted = 0
        for directory in sorted(self.root.glob("*-*")):
            if directory == self.directory or not directory.is_dir():
                continue
            try:
                # Not created here: a directory without its lock is being deleted by the process that
                # adopted it.
                fd = os.open(directory / "lock", os.O_WRONLY)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue  # its process is alive
            try:
                for record in replay(directory):
                    group = Group(*record["g"])
                    self._record(group, record.get("e"), record.get("i") or {}, record["p"], record.get("t", 0.0))
                    adopted += 1
                if (error := self._write_now()) is not None:
                    raise error  # as in tidy(): the source goes only once the copies are on disk
                shutil.rmtree(directory, ignore_errors=True)
            finally:
                os.close(fd)
        self.adopted += adopted
        return adopted
