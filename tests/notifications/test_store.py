"""The write-ahead store of notifications on a real SQLite file."""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from proxy.notifications.store import BacklogFull, Group, NewNotification, NotificationStore
from tests.inprocess import FakeClock
from tests.notifications.helpers import dead_letters, read_store, stored_rows

GROUP = Group("demo", "visitor-1", "session-1")


def note(visitor: str = "visitor-1", session: str = "session-1", note_id: str | None = None) -> NewNotification:
    payload = {"id": note_id or uuid.uuid4().hex, "type": "display", "timestamp": 1, "tokens": ["t"]}
    return NewNotification("demo", visitor, session, "mboxedge31.tt.omtrdc.net", {"thirdPartyId": visitor}, payload)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[NotificationStore]:
    store = NotificationStore(tmp_path / "notifications.db", max_backlog=1000, clock=clock)
    store.open()
    yield store
    store.close()


def add(store: NotificationStore, *notes: NewNotification) -> None:
    asyncio.run(store.add(list(notes)))


def test_adds_that_arrive_together_share_one_commit(store: NotificationStore) -> None:
    statements: list[str] = []
    store.db.set_trace_callback(statements.append)

    async def twenty_requests() -> None:
        await asyncio.gather(*(store.add([note(visitor=f"v{i}")]) for i in range(20)))

    asyncio.run(twenty_requests())
    store.db.set_trace_callback(None)
    assert statements.count("BEGIN IMMEDIATE") == 1
    assert statements.count("COMMIT") == 1
    assert stored_rows(store.path) == 20, "committed, and visible to another connection"
    assert store.depth() == 20


def test_a_notification_is_committed_before_add_returns(store: NotificationStore) -> None:
    async def one() -> int:
        await store.add([note()])
        return stored_rows(store.path)  # another connection, before anything else runs

    assert asyncio.run(one()) == 1


def test_a_notification_id_is_stored_once(store: NotificationStore) -> None:
    first = note(note_id="same-id")
    again = note(note_id="same-id")
    again.payload["tokens"] = ["other"]
    add(store, first, again)
    add(store, note(note_id="same-id"))
    assert store.depth() == 1, "ignored repeats do not count in the backlog"
    assert store.count() == 1
    (pending,) = store.claim(GROUP, 10, 60)
    assert pending.id == "same-id"
    assert pending.payload["tokens"] == ["t"], "the first one stored is kept"


def test_claim_leases_oldest_first_until_the_lease_runs_out(store: NotificationStore, clock: FakeClock) -> None:
    notes = [note() for _ in range(5)]
    for n in notes:  # one commit each, so the order of arrival is the order of the rows
        add(store, n)
    first = store.claim(GROUP, 3, lease_s=60)
    assert [p.id for p in first] == [n.id for n in notes[:3]]
    second = store.claim(GROUP, 3, lease_s=60)
    assert [p.id for p in second] == [n.id for n in notes[3:]]
    assert store.claim(GROUP, 10, lease_s=60) == [], "leased rows belong to their holder"
    assert store.due_groups(batch_size=1, max_delay_s=0) == []
    clock.advance(59)
    assert store.claim(GROUP, 10, lease_s=60) == []
    clock.advance(2)  # the holder never came back (it crashed): the rows are free again
    again = store.claim(GROUP, 10, lease_s=60)
    assert [p.id for p in again] == [n.id for n in notes]
    assert all(p.attempts == 0 for p in again), "a lost lease is not a failed attempt"


def test_ack_deletes_only_what_was_acknowledged(store: NotificationStore, clock: FakeClock) -> None:
    add(store, note(), note(), note())
    pending = store.claim(GROUP, 10, lease_s=60)
    assert store.ack(pending[:2]) == 2
    assert store.ack(pending[:2]) == 0, "a second ack of the same rows removes nothing"
    assert store.count() == 1 and store.depth() == 1
    clock.advance(61)
    assert [p.id for p in store.claim(GROUP, 10, lease_s=60)] == [pending[2].id]


def test_retry_counts_an_attempt_and_waits_its_delay(store: NotificationStore, clock: FakeClock) -> None:
    add(store, note(), note())
    pending = store.claim(GROUP, 10, lease_s=60)
    store.retry(pending, delay_s=10)
    assert store.due_groups(batch_size=1, max_delay_s=0) == [], "not due before its retry time"
    assert store.claim(GROUP, 10, lease_s=60) == []
    clock.advance(9.9)
    assert store.due_groups(batch_size=1, max_delay_s=0) == []
    clock.advance(0.2)
    assert store.due_groups(batch_size=1, max_delay_s=0) == [GROUP]
    again = store.claim(GROUP, 10, lease_s=60)
    assert [p.attempts for p in again] == [1, 1]
    store.retry(again, delay_s=1)
    clock.advance(1.1)
    assert [p.attempts for p in store.claim(GROUP, 10, lease_s=60)] == [2, 2]


def test_a_call_going_upstream_anyway_takes_rows_whose_retry_is_not_due(
    store: NotificationStore, clock: FakeClock
) -> None:
    add(store, note())
    store.retry(store.claim(GROUP, 10, lease_s=60), delay_s=300)
    assert store.claim(GROUP, 10, lease_s=30) == []
    (ridden,) = store.claim(GROUP, 10, lease_s=30, due_only=False)
    assert ridden.attempts == 1
    assert store.claim(GROUP, 10, lease_s=30, due_only=False) == [], "and leases them like any claim"


def test_release_frees_rows_without_counting_an_attempt(store: NotificationStore) -> None:
    add(store, note(), note())
    pending = store.claim(GROUP, 10, lease_s=60)
    store.release(pending)
    again = store.claim(GROUP, 10, lease_s=60)
    assert [p.id for p in again] == [p.id for p in pending]
    assert [p.attempts for p in again] == [0, 0]


def test_due_groups_are_full_batches_or_old_enough(store: NotificationStore, clock: FakeClock) -> None:
    add(store, *(note(visitor="busy") for _ in range(3)))
    clock.advance(1)
    add(store, note(visitor="quiet"))
    add(store, note(visitor="quiet", session="other-session"))
    busy, quiet = Group("demo", "busy", "session-1"), Group("demo", "quiet", "session-1")
    assert store.due_groups(batch_size=3, max_delay_s=30) == [busy], "a full batch goes at once"
    assert store.due_groups(batch_size=50, max_delay_s=30) == []
    clock.advance(29.5)
    assert store.due_groups(batch_size=50, max_delay_s=30) == [busy], "its oldest has waited 30 s"
    clock.advance(1)
    due = store.due_groups(batch_size=50, max_delay_s=30)
    assert due == [busy, quiet, Group("demo", "quiet", "other-session")], "oldest first, one per visitor session"
    assert store.due_groups(batch_size=50, max_delay_s=30, limit=2) == [busy, quiet]
    assert store.oldest_age() == pytest.approx(31.5)


def test_dead_letters_are_json_lines_with_their_reason(store: NotificationStore, clock: FakeClock) -> None:
    add(store, note(), note(), note())
    first, second, third = store.claim(GROUP, 10, lease_s=60)
    store.retry([first], delay_s=0)
    (first,) = store.claim(GROUP, 1, lease_s=60)
    store.dead_letter([first], "notifications[0].tokens[0]: invalid event token", 400)
    store.dead_letter([second, third], "gave up after 100 attempts: upstream answered 503", None)
    lines = dead_letters(store.dead_letter_path)
    assert store.dead_letter_path == store.path.with_suffix(".dead-letters.jsonl")
    assert [line["notification"]["id"] for line in lines] == [first.id, second.id, third.id]
    assert lines[0]["reason"] == "notifications[0].tokens[0]: invalid event token"
    assert lines[0]["status"] == 400
    assert lines[0]["attempts"] == 1
    assert lines[0]["at"] == clock.now
    assert lines[0]["client"] == "demo"
    assert lines[0]["visitor"] == "visitor-1"
    assert lines[0]["sessionId"] == "session-1"
    assert lines[0]["ids"] == {"thirdPartyId": "visitor-1"}
    assert lines[1]["status"] is None and lines[1]["reason"].startswith("gave up")
    assert store.count() == 0 and store.depth() == 0, "a dead letter leaves the store"


def test_a_full_backlog_refuses_new_notifications(tmp_path: Path, clock: FakeClock) -> None:
    store = NotificationStore(tmp_path / "n.db", max_backlog=3, clock=clock)
    store.open()
    add(store, note(), note())
    with pytest.raises(BacklogFull):
        add(store, note(), note())
    add(store, note())
    with pytest.raises(BacklogFull):
        add(store, note())
    assert store.count() == 3
    store.ack(store.claim(GROUP, 1, lease_s=60))
    add(store, note())
    assert store.count() == 3
    store.close()


def test_the_backlog_bound_holds_for_adds_waiting_for_the_same_commit(tmp_path: Path) -> None:
    store = NotificationStore(tmp_path / "n.db", max_backlog=5)
    store.open()

    async def eight_requests() -> list[BaseException | None]:
        return await asyncio.gather(*(store.add([note()]) for _ in range(8)), return_exceptions=True)

    outcomes = asyncio.run(eight_requests())
    assert outcomes.count(None) == 5
    assert sum(isinstance(o, BacklogFull) for o in outcomes) == 3
    assert store.count() == 5
    store.close()


def test_two_store_objects_on_one_file_share_rows_and_leases(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "shared.db"
    first = NotificationStore(path, max_backlog=1000, clock=clock)
    second = NotificationStore(path, max_backlog=1000, clock=clock)
    first.open()
    second.open()
    add(first, note(), note())
    add(second, note())
    assert first.count() == second.count() == 3
    taken = second.claim(GROUP, 2, lease_s=60)
    assert len(taken) == 2
    (rest,) = first.claim(GROUP, 10, lease_s=60)
    assert rest.id not in {p.id for p in taken}
    assert first.claim(GROUP, 10, lease_s=60) == second.claim(GROUP, 10, lease_s=60) == []
    second.ack(taken)
    first.ack([rest])
    assert first.count() == second.count() == 0
    first.close()
    second.close()


def _worker(path: str, name: str, count: int, start: Any, out: Any) -> None:
    """One worker process: add ``count`` notifications for the shared visitor, then take turns with
    the other worker claiming and acknowledging whatever is free until the store is empty."""
    store = NotificationStore(Path(path), max_backlog=100_000)
    store.open()
    start.wait()

    async def fill() -> None:
        await asyncio.gather(*(store.add([note(note_id=f"{name}-{i}")]) for i in range(count)))

    asyncio.run(fill())
    start.wait()
    acknowledged: list[str] = []
    while True:
        pending = store.claim(GROUP, 7, lease_s=60)
        if pending:
            store.ack(pending)
            acknowledged.extend(p.id for p in pending)
        elif store.count() == 0:
            break
    store.close()
    out.put((name, acknowledged))


def test_two_worker_processes_on_one_file(tmp_path: Path) -> None:
    path = tmp_path / "workers.db"
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    out = context.Queue()
    workers = [context.Process(target=_worker, args=(str(path), name, 300, start, out)) for name in ("a", "b")]
    for worker in workers:
        worker.start()
    results = dict(out.get(timeout=30) for _ in workers)
    for worker in workers:
        worker.join(10)
        assert worker.exitcode == 0
    everything = results["a"] + results["b"]
    assert len(everything) == 600, "every row acknowledged exactly once: leases never overlap"
    assert set(everything) == {f"{name}-{i}" for name in ("a", "b") for i in range(300)}
    assert stored_rows(path) == 0


ADD_THEN_DIE = """
import asyncio, os, signal, sys
from pathlib import Path
from proxy.notifications.store import NewNotification, NotificationStore
store = NotificationStore(Path(sys.argv[1]), max_backlog=1000)
store.open()
notes = [NewNotification("demo", "v", "s", None, {}, {"id": f"n{i}", "type": "display"}) for i in range(25)]
asyncio.run(store.add(notes))
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_committed_notifications_survive_a_killed_process(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    died = subprocess.run([sys.executable, "-c", ADD_THEN_DIE, str(path)], capture_output=True, timeout=30)
    assert died.returncode == -signal.SIGKILL, died.stderr.decode()
    store = NotificationStore(path, max_backlog=1000)
    store.open()
    assert store.count() == 25
    pending = store.claim(Group("demo", "v", "s"), 50, lease_s=60)
    assert sorted(p.id for p in pending) == sorted(f"n{i}" for i in range(25))
    store.close()


def test_rows_hold_what_the_flusher_needs(store: NotificationStore) -> None:
    add(store, note())
    with read_store(store.path) as db:
        (ids, payload, edge) = db.execute("SELECT ids, payload, edge_host FROM notifications").fetchone()
    assert orjson.loads(ids) == {"thirdPartyId": "visitor-1"}
    assert orjson.loads(payload)["tokens"] == ["t"]
    assert edge == "mboxedge31.tt.omtrdc.net"
