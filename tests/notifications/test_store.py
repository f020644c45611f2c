"""The write-ahead store of notifications: a log of JSON lines per process, in a directory of its own
under the store's root, on a real file system."""

from __future__ import annotations

import asyncio
import fcntl
import multiprocessing
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from proxy.notifications.log import replay, stored
from proxy.notifications.model import BacklogFull, Group
from proxy.notifications.store import NotificationStore
from tests.inprocess import FakeClock
from tests.notifications.helpers import Note, dead_letters, log_directories, put, stored_ids

GROUP = Group("demo", "visitor-1", "session-1")


def note(visitor: str = "visitor-1", session: str = "session-1", note_id: str | None = None) -> Note:
    payload = {"id": note_id or uuid.uuid4().hex, "type": "display", "timestamp": 1, "tokens": ["t"]}
    return Note("demo", visitor, session, "mboxedge31.tt.omtrdc.net", {"thirdPartyId": visitor}, payload)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "notifications"


@pytest.fixture
def store(root: Path, clock: FakeClock) -> Iterator[NotificationStore]:
    store = NotificationStore(root, max_backlog=1000, clock=clock)
    store.open()
    yield store
    store.close()


def add(store: NotificationStore, *notes: Note) -> None:
    asyncio.run(put(store, notes))


def replayed_ids(directory: Path) -> list[str]:
    return [str(record["p"]["id"]) for record in replay(directory)]


def segments(store: NotificationStore) -> list[str]:
    return sorted(path.name for path in store.directory.glob("*.log"))


def log_lines(store: NotificationStore) -> list[dict[str, Any]]:
    paths = sorted(store.directory.glob("*.log"))
    return [orjson.loads(line) for path in paths for line in path.read_bytes().splitlines()]


def into(directory: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> list[bytes]:
    """What the process hands to ``os.write`` or ``os.fsync`` for files in ``directory``, in order."""
    calls: list[bytes] = []
    real = getattr(os, name)

    def recording(fd: int, *args: Any) -> Any:
        if os.readlink(f"/proc/self/fd/{fd}").startswith(str(directory)):
            calls.append(args[0] if args else b"")
        return real(fd, *args)

    monkeypatch.setattr(os, name, recording)
    return calls


# --- writing ---------------------------------------------------------------------------------------------


def test_adds_that_arrive_together_share_one_write(store: NotificationStore, monkeypatch: pytest.MonkeyPatch) -> None:
    writes = into(store.directory, monkeypatch, "write")

    async def twenty_requests() -> None:
        await asyncio.gather(*(put(store, [note(visitor=f"v{i}")]) for i in range(20)))

    asyncio.run(twenty_requests())
    assert len(writes) == 1
    assert writes[0].count(b"\n") == 20, "one line each"
    assert len(stored(store.root)) == 20, "on disk, for any reader of the files"
    assert store.depth() == 20


def test_a_notification_is_on_disk_before_add_returns(store: NotificationStore) -> None:
    async def one() -> tuple[list[str], list[str]]:
        first = note()
        await put(store, [first])
        return [first.id], stored_ids(store.root)  # read from the files before anything else runs

    written, on_disk = asyncio.run(one())
    assert on_disk == written
    assert replayed_ids(store.directory) == written


def test_full_sync_adds_one_fsync_per_write(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = NotificationStore(root, max_backlog=1000, fsync=True)
    store.open()
    syncs = into(store.directory, monkeypatch, "fsync")

    async def ten_requests() -> None:
        await asyncio.gather(*(put(store, [note()]) for _ in range(10)))

    asyncio.run(ten_requests())
    assert len(syncs) == 1
    store.close()


def test_records_hold_what_the_flusher_needs(store: NotificationStore, clock: FakeClock) -> None:
    add(store, note(note_id="n1"))
    (record,) = stored(store.root)
    assert record["g"] == ["demo", "visitor-1", "session-1"]
    assert record["e"] == "mboxedge31.tt.omtrdc.net"
    assert record["i"] == {"thirdPartyId": "visitor-1"}
    assert record["p"] == {"id": "n1", "type": "display", "timestamp": 1, "tokens": ["t"]}
    assert record["t"] == clock.now
    (pending,) = store.claim(GROUP, 10, lease_s=60)
    assert (pending.ids, pending.payload, pending.edge_host) == (record["i"], record["p"], record["e"])


def test_a_repeated_notification_id_is_stored_twice(store: NotificationStore) -> None:
    """No index of ids: a repeat is kept and sent again, and the edge counts the id once."""
    first = note(note_id="same-id")
    again = note(note_id="same-id")
    again.payload["tokens"] = ["other"]
    add(store, first, again)
    assert store.depth() == 2
    assert stored_ids(store.root) == ["same-id", "same-id"]
    pending = store.claim(GROUP, 10, lease_s=60)
    assert [(p.id, p.payload["tokens"]) for p in pending] == [("same-id", ["t"]), ("same-id", ["other"])]


# --- claims, leases and outcomes ---------------------------------------------------------------------------


def test_claim_hands_out_a_groups_oldest_first_and_leases_the_group(store: NotificationStore, clock: FakeClock) -> None:
    notes = [note() for _ in range(5)]
    for n in notes:
        add(store, n)
    first = store.claim(GROUP, 3, lease_s=60)
    assert [p.id for p in first] == [n.id for n in notes[:3]]
    assert store.claim(GROUP, 3, lease_s=60) == [], "the group belongs to the first call until it is settled"
    assert store.claim(GROUP, 3, lease_s=60, due_only=False) == [], "a call going upstream anyway waits too"
    assert store.due_groups(batch_size=1, max_delay_s=0) == []
    other = Group("demo", "visitor-2", "session-1")
    add(store, note(visitor="visitor-2"))
    assert len(store.claim(other, 3, lease_s=60)) == 1, "leases are per visitor session"
    clock.advance(59)
    assert store.claim(GROUP, 10, lease_s=60) == []
    clock.advance(2)  # the holder never came back: the group is free again, all of it
    again = store.claim(GROUP, 10, lease_s=60)
    assert [p.id for p in again] == [n.id for n in notes]
    assert all(p.attempts == 0 for p in again), "a lost lease is not a failed attempt"


def test_ack_writes_an_acknowledgement_line_and_frees_the_group(store: NotificationStore) -> None:
    add(store, note(), note(), note())
    pending = store.claim(GROUP, 2, lease_s=60)
    assert store.ack(pending) == 2
    assert log_lines(store)[-1] == {"k": "a", "s": [p.seq for p in pending]}
    assert store.ack(pending) == 0, "a second ack of the same notifications settles nothing"
    assert store.depth() == store.depth() == 1
    (rest,) = store.claim(GROUP, 10, lease_s=60)
    assert replayed_ids(store.directory) == [rest.id], "the files no longer hold the acknowledged"
    assert rest.id not in {p.id for p in pending}


def test_an_ack_on_the_loop_shares_the_write_of_its_turn(
    store: NotificationStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(store, note())
    pending = store.claim(GROUP, 10, lease_s=60)
    writes = into(store.directory, monkeypatch, "write")
    second = note(visitor="visitor-2")

    async def ack_and_add() -> None:
        store.ack(pending)
        await put(store, [second])

    asyncio.run(ack_and_add())
    assert len(writes) == 1 and writes[0].count(b"\n") == 2
    assert stored_ids(store.root) == [second.id]


def test_retry_counts_an_attempt_and_waits_its_delay(store: NotificationStore, clock: FakeClock) -> None:
    add(store, note(), note())
    pending = store.claim(GROUP, 10, lease_s=60)
    store.retry(pending, delay_s=10)
    assert store.due_groups(batch_size=1, max_delay_s=0) == [], "not due before its retry time"
    assert store.claim(GROUP, 10, lease_s=60) == []
    clock.advance(9.9)
    assert store.due_groups(batch_size=1, max_delay_s=0) == []
    clock.advance(0.2)
    assert store.due_groups(batch_size=1, max_delay_s=0) == [GROUP], "and the call's lease is over"
    again = store.claim(GROUP, 10, lease_s=60)
    assert [p.attempts for p in again] == [1, 1]
    store.retry(again, delay_s=1)
    clock.advance(1.1)
    assert [p.attempts for p in store.claim(GROUP, 10, lease_s=60)] == [2, 2]


def test_a_call_going_upstream_anyway_takes_notifications_whose_retry_is_not_due(
    store: NotificationStore, clock: FakeClock
) -> None:
    add(store, note())
    store.retry(store.claim(GROUP, 10, lease_s=60), delay_s=300)
    assert store.claim(GROUP, 10, lease_s=30) == []
    (ridden,) = store.claim(GROUP, 10, lease_s=30, due_only=False)
    assert ridden.attempts == 1
    assert store.claim(GROUP, 10, lease_s=30, due_only=False) == [], "and leases them like any claim"


def test_a_ride_given_back_waits_for_the_retry_time_it_had(store: NotificationStore, clock: FakeClock) -> None:
    add(store, note())
    store.retry(store.claim(GROUP, 10, lease_s=60), delay_s=300)
    store.release(store.claim(GROUP, 10, lease_s=30, due_only=False))  # the visitor's miss failed
    assert store.due_groups(batch_size=1, max_delay_s=0) == []
    assert store.claim(GROUP, 10, lease_s=60) == []
    assert len(store.claim(GROUP, 10, lease_s=30, due_only=False)) == 1, "free for the next ride"
    clock.advance(300)
    assert store.due_groups(batch_size=1, max_delay_s=0) == [GROUP]
    assert [p.attempts for p in store.claim(GROUP, 10, lease_s=60)] == [1]


def test_a_group_whose_notifications_all_wait_for_their_retry_is_not_due(
    store: NotificationStore, clock: FakeClock
) -> None:
    """A call cut in two (a 400 is halved) may retry its halves with different delays: once the one
    retried sooner is settled, the group waits for the other's retry time, and a flusher pass that
    found nothing to send does not find the group due again and again."""
    add(store, note(), note())
    first, second = store.claim(GROUP, 10, lease_s=60)
    store.retry([first], delay_s=100)
    store.retry([second], delay_s=10)
    clock.advance(10)
    assert [p.id for p in store.claim(GROUP, 10, lease_s=60)] == [second.id]
    store.ack([second])
    assert store.claim(GROUP, 10, lease_s=60) == []
    assert store.due_groups(batch_size=1, max_delay_s=0) == []
    clock.advance(90)
    assert store.due_groups(batch_size=1, max_delay_s=0) == [GROUP]
    assert [p.id for p in store.claim(GROUP, 10, lease_s=60)] == [first.id]


def test_release_frees_the_group_without_counting_an_attempt(store: NotificationStore) -> None:
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
    store.claim(quiet, 10, lease_s=60)
    assert store.due_groups(batch_size=50, max_delay_s=30) == [busy, Group("demo", "quiet", "other-session")]


def test_dead_letters_are_json_lines_with_their_reason(store: NotificationStore, clock: FakeClock) -> None:
    add(store, note(), note(), note())
    first, second, third = store.claim(GROUP, 10, lease_s=60)
    store.retry([first, second, third], delay_s=0)
    first, second, third = store.claim(GROUP, 10, lease_s=60)
    store.dead_letter([first], "notifications[0].tokens[0]: invalid event token", 400)
    store.dead_letter([second, third], "gave up after 100 attempts: upstream answered 503", None)
    lines = dead_letters(store.dead_letter_path)
    assert store.dead_letter_path == store.root / "dead-letters.jsonl"
    assert [line["notification"]["id"] for line in lines] == [first.id, second.id, third.id]
    assert lines[0]["reason"] == "notifications[0].tokens[0]: invalid event token"
    assert lines[0]["status"] == 400
    assert lines[0]["attempts"] == 1
    assert lines[0]["at"] == clock.now
    assert lines[0]["client"] == "demo"
    assert lines[0]["visitor"] == "visitor-1"
    assert lines[0]["sessionId"] == "session-1"
    assert lines[0]["ids"] == {"thirdPartyId": "visitor-1"}
    assert lines[0]["notification"]["tokens"] == ["t"]
    assert lines[1]["status"] is None and lines[1]["reason"].startswith("gave up")
    assert store.depth() == 0 and store.depth() == 0, "a dead letter leaves the store"
    assert stored(store.root) == [], "and its log"


def test_dead_letters_go_where_they_are_told(root: Path, tmp_path: Path) -> None:
    store = NotificationStore(root, max_backlog=10, dead_letter_path=tmp_path / "elsewhere" / "letters.jsonl")
    store.open()
    add(store, note())
    store.dead_letter(store.claim(GROUP, 10, lease_s=60), "refused", 403)
    assert [line["status"] for line in dead_letters(tmp_path / "elsewhere" / "letters.jsonl")] == [403]
    store.close()


def test_a_full_backlog_refuses_new_notifications(root: Path, clock: FakeClock) -> None:
    store = NotificationStore(root, max_backlog=3, clock=clock)
    store.open()
    add(store, note(), note())
    with pytest.raises(BacklogFull):
        add(store, note(), note())
    add(store, note())
    with pytest.raises(BacklogFull):
        add(store, note())
    assert store.depth() == 3
    assert len(stored(root)) == 3, "nothing refused was written"
    store.ack(store.claim(GROUP, 1, lease_s=60))
    add(store, note())
    assert store.depth() == 3
    store.close()


def test_the_backlog_bound_holds_for_adds_of_the_same_loop_turn(root: Path) -> None:
    store = NotificationStore(root, max_backlog=5)
    store.open()

    async def eight_requests() -> list[BaseException | None]:
        return await asyncio.gather(*(put(store, [note()]) for _ in range(8)), return_exceptions=True)

    outcomes = asyncio.run(eight_requests())
    assert outcomes.count(None) == 5
    assert sum(isinstance(o, BacklogFull) for o in outcomes) == 3
    assert store.depth() == 5
    assert len(stored(root)) == 5
    store.close()


# --- segments ----------------------------------------------------------------------------------------------


def test_segments_rotate_and_settled_ones_are_deleted(root: Path, clock: FakeClock) -> None:
    store = NotificationStore(root, max_backlog=1000, clock=clock, segment_bytes=1)  # a segment a write
    store.open()
    visitors = [Group("demo", f"v{i}", "session-1") for i in range(3)]
    for group in visitors:
        add(store, note(visitor=group.visitor), note(visitor=group.visitor))
    assert segments(store) == ["00000001.log", "00000002.log", "00000003.log", "00000004.log"]
    store.ack(store.claim(visitors[0], 10, lease_s=60))  # the acknowledgement line opens segment 5
    assert segments(store) == ["00000002.log", "00000003.log", "00000004.log", "00000005.log"]
    store.ack(store.claim(visitors[1], 10, lease_s=60))
    assert segments(store) == ["00000003.log", "00000004.log", "00000005.log", "00000006.log"]
    assert [record["g"][1] for record in replay(store.directory)] == ["v2", "v2"]
    store.ack(store.claim(visitors[2], 10, lease_s=60))
    assert segments(store) == ["00000007.log"], "every settled segment but the one being written"
    assert stored(root) == []
    store.close()
    assert not store.directory.exists(), "a store closed with nothing waiting leaves nothing behind"


def test_a_segment_with_acknowledgements_of_an_older_one_stays_as_long_as_it(root: Path) -> None:
    """Segment 2 holds the acknowledgement of a1 (in segment 1) and b's notification: once b is
    settled, deleting segment 2 would bring a1 back from segment 1."""
    store = NotificationStore(root, max_backlog=1000, segment_bytes=1)
    store.open()
    a, b = Group("demo", "a", "session-1"), Group("demo", "b", "session-1")
    add(store, note(visitor="a", note_id="a1"), note(visitor="a", note_id="a2"))
    a1 = store.claim(a, 1, lease_s=60)

    async def ack_and_add() -> None:
        store.ack(a1)
        await put(store, [note(visitor="b", note_id="b1")])

    asyncio.run(ack_and_add())
    store.ack(store.claim(b, 10, lease_s=60))
    assert replayed_ids(store.directory) == ["a2"]
    assert "00000002.log" in segments(store)
    store.ack(store.claim(a, 10, lease_s=60))
    assert segments(store) == ["00000005.log"], "then all of them go"
    assert replayed_ids(store.directory) == []
    store.close()


def test_tidy_copies_the_few_still_waiting_forward_and_deletes_old_segments(root: Path, clock: FakeClock) -> None:
    store = NotificationStore(root, max_backlog=1000, clock=clock, segment_bytes=1)
    store.open()
    mostly = Group("demo", "mostly-settled", "session-1")
    add(store, *(note(visitor="mostly-settled", note_id=f"m{i}") for i in range(20)))  # segment 1
    add(store, *(note(visitor="half", note_id=f"h{i}") for i in range(4)))  # segment 2
    add(store, note(visitor="late", note_id="late"))  # segment 3
    pending = store.claim(mostly, 19, lease_s=60)
    store.ack(pending)  # segment 4: one of segment 1's twenty still waits
    half = store.claim(Group("demo", "half", "session-1"), 2, lease_s=60)
    store.ack(half)  # segment 5: half of segment 2's still wait
    assert segments(store) == [f"{n:08d}.log" for n in range(1, 7)]
    store.tidy()
    # Segment 1 copied forward and deleted; segment 2 is kept (half of it waits), and so is every
    # later one, which may hold acknowledgements of its notifications.
    assert segments(store)[:5] == [f"{n:08d}.log" for n in range(2, 7)]
    assert sorted(replayed_ids(store.directory)) == sorted(["m19", "h2", "h3", "late"])
    assert log_lines(store)[-1]["p"]["id"] == "m19", "copied into the newest segment"
    (m19,) = store.claim(mostly, 10, lease_s=60)
    assert (m19.id, m19.seq) == ("m19", pending[-1].seq + 1)
    store.ack([m19])
    assert sorted(replayed_ids(store.directory)) == ["h2", "h3", "late"], "the copy's acknowledgement settles it"
    store.ack(store.claim(Group("demo", "half", "session-1"), 10, lease_s=60))
    store.tidy()
    assert segments(store)[0] == "00000003.log", "segment 2 gone"
    assert replayed_ids(store.directory) == ["late"]
    store.ack(store.claim(Group("demo", "late", "session-1"), 10, lease_s=60))
    assert segments(store) == ["00000010.log"], "and with segment 3, every later one"
    store.close()


def test_a_line_cut_short_by_a_crash_is_skipped(root: Path) -> None:
    store = NotificationStore(root, max_backlog=1000)
    store.open()
    add(store, note(note_id="n1"), note(note_id="n2"), note(note_id="n3"))
    store.close()  # with notifications waiting: the directory stays
    (segment,) = store.directory.glob("*.log")
    data = segment.read_bytes()
    segment.write_bytes(data[:-20])  # the write of the last line was torn
    assert replayed_ids(store.directory) == ["n1", "n2"]
    successor = NotificationStore(root, max_backlog=1000)
    successor.open()
    assert successor.adopted == 2
    assert [p.id for p in successor.claim(GROUP, 10, lease_s=60)] == ["n1", "n2"]
    successor.close()


def test_an_acknowledgement_cut_short_sends_its_notifications_again(store: NotificationStore) -> None:
    add(store, note(note_id="n1"))
    store.ack(store.claim(GROUP, 10, lease_s=60))
    (segment,) = store.directory.glob("*.log")
    segment.write_bytes(segment.read_bytes()[:-3])
    assert replayed_ids(store.directory) == ["n1"], "at least once: the edge counts the id once"


# --- processes ---------------------------------------------------------------------------------------------


def test_a_store_closed_with_notifications_left_is_adopted(root: Path, clock: FakeClock) -> None:
    gone = NotificationStore(root, max_backlog=1000, clock=clock)
    gone.open()
    add(gone, *(note(note_id=f"n{i}") for i in range(5)))
    clock.advance(5)
    add(gone, note(visitor="other", note_id="o1"))
    gone.ack(gone.claim(GROUP, 2, lease_s=60))
    gone.retry(gone.claim(GROUP, 10, lease_s=60), delay_s=300)
    gone.close()
    assert log_directories(root) == [gone.directory]

    clock.advance(5)
    store = NotificationStore(root, max_backlog=1000, clock=clock)
    store.open()
    assert store.adopted == 4, "exactly what was waiting"
    assert not gone.directory.exists()
    assert log_directories(root) == [store.directory]
    assert stored_ids(root) == ["n2", "n3", "n4", "o1"], "now in the new store's own log"
    assert store.oldest_age() == pytest.approx(10), "it keeps its age"
    assert store.due_groups(batch_size=50, max_delay_s=6) == [GROUP]
    assert store.due_groups(batch_size=50, max_delay_s=4) == [GROUP, Group("demo", "other", "session-1")]
    pending = store.claim(GROUP, 10, lease_s=60)
    assert [p.id for p in pending] == ["n2", "n3", "n4"]
    assert [p.attempts for p in pending] == [0, 0, 0], "retry state is not kept across processes"
    assert pending[0].edge_host == "mboxedge31.tt.omtrdc.net"
    assert pending[0].ids == {"thirdPartyId": "visitor-1"}
    store.close()


def test_a_store_being_opened_is_not_adopted(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process may look at the root while a store sets up its directory, before it holds its lock."""
    running = NotificationStore(root, max_backlog=1000)
    running.open()
    opening = NotificationStore(root, max_backlog=1000)
    real_flock = fcntl.flock
    adopted: list[int] = []

    def flock(fd: int, operation: int) -> None:
        if not adopted:
            adopted.append(-1)
            adopted[0] = running.adopt()  # just before the opening store takes its lock
        real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", flock)
    opening.open()
    monkeypatch.undo()
    assert adopted == [0]
    add(opening, note())
    assert sorted(log_directories(root)) == sorted([running.directory, opening.directory])
    assert len(stored(root)) == 1
    opening.ack(opening.claim(GROUP, 10, lease_s=60))
    opening.close()
    running.close()
    assert log_directories(root) == []


ADD_THEN_DIE = """
import asyncio, os, signal, sys
from pathlib import Path
from proxy.notifications.model import Group
from proxy.notifications.store import NotificationStore

store = NotificationStore(Path(sys.argv[1]), max_backlog=1000)
store.open()


async def main():
    for start in range(0, 25, 5):
        ids = {"thirdPartyId": "v"}
        await store.add_group(Group("demo", "v", "s"), None, ids, [{"id": f"n{i}"} for i in range(start, start + 5)])


asyncio.run(main())
store.ack(store.claim(Group("demo", "v", "s"), 5, 60))
print(store.directory, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_what_a_killed_process_wrote_survives_and_is_adopted(root: Path) -> None:
    died = subprocess.run([sys.executable, "-c", ADD_THEN_DIE, str(root)], capture_output=True, text=True, timeout=30)
    assert died.returncode == -signal.SIGKILL, died.stderr
    left = Path(died.stdout.strip())
    waiting = [f"n{i}" for i in range(5, 25)]
    assert log_directories(root) == [left]
    assert replayed_ids(left) == waiting, "every line written before the kill, less the acknowledged"
    store = NotificationStore(root, max_backlog=1000)
    store.open()
    try:
        assert store.adopted == 20 and store.depth() == 20
        assert not left.exists()
        assert log_directories(root) == [store.directory]
        pending = store.claim(Group("demo", "v", "s"), 50, lease_s=60)
        assert [p.id for p in pending] == waiting
        assert pending[0].ids == {"thirdPartyId": "v"}
        assert store.adopt() == 0, "adopted once"
    finally:
        store.close()


LIVE = """
import asyncio, sys
from pathlib import Path
from proxy.notifications.model import Group
from proxy.notifications.store import NotificationStore

store = NotificationStore(Path(sys.argv[1]), max_backlog=1000)
store.open()


async def main():
    await store.add_group(Group("demo", "live", "s"), None, {}, [{"id": f"live{i}"} for i in range(10)])


asyncio.run(main())
print(store.directory, flush=True)
sys.stdin.readline()
store.close()
"""


def test_the_directory_of_a_live_process_is_not_adopted(root: Path) -> None:
    live = subprocess.Popen(
        [sys.executable, "-c", LIVE, str(root)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert live.stdout is not None and live.stdin is not None
        theirs = Path(live.stdout.readline().strip())
        store = NotificationStore(root, max_backlog=1000)
        store.open()
        try:
            assert store.adopted == 0
            assert store.adopt() == 0
            assert replayed_ids(theirs) == [f"live{i}" for i in range(10)], "left as it was"
            assert store.depth() == 0
            live.stdin.close()  # it stops, with its notifications left
            assert live.wait(30) == 0
            assert store.adopt() == 10
            assert not theirs.exists()
            pending = store.claim(Group("demo", "live", "s"), 50, lease_s=60)
            assert [p.id for p in pending] == [f"live{i}" for i in range(10)]
        finally:
            store.close()
    finally:
        if live.poll() is None:
            live.kill()
            live.wait(10)


def _worker(root: str, name: str, count: int, start: Any, out: Any) -> None:
    """One worker process: fill its own log beside the other's, look for directories to adopt while
    the other runs, then settle its own notifications."""
    store = NotificationStore(Path(root), max_backlog=100_000)
    store.open()
    start.wait()

    async def fill() -> None:
        await asyncio.gather(*(put(store, [note(note_id=f"{name}-{i}")]) for i in range(count)))

    asyncio.run(fill())
    start.wait()
    adopted = store.adopted + store.adopt()
    seen = len(stored(Path(root)))
    start.wait()
    acknowledged: list[str] = []
    while pending := store.claim(GROUP, 7, lease_s=60):
        store.ack(pending)
        acknowledged.extend(p.id for p in pending)
    start.wait()
    store.close()
    out.put((name, adopted, seen, acknowledged, store.depth()))


def test_two_worker_processes_under_one_root_keep_to_their_own(root: Path) -> None:
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2, timeout=30)
    out = context.Queue()
    workers = [context.Process(target=_worker, args=(str(root), name, 300, start, out)) for name in ("a", "b")]
    for worker in workers:
        worker.start()
    try:
        results = {name: rest for name, *rest in (out.get(timeout=30) for _ in workers)}
    finally:
        for worker in workers:
            worker.join(10)
            if worker.is_alive():
                worker.kill()
                worker.join(5)
    assert [worker.exitcode for worker in workers] == [0, 0]
    for name, (adopted, seen, acknowledged, left) in results.items():
        assert adopted == 0, "neither takes over the other's while it runs"
        assert seen == 600, "both logs are readable while they are written"
        assert acknowledged == [f"{name}-{i}" for i in range(300)], "its own, each once, in order"
        assert left == 0
    assert stored(root) == []
    assert log_directories(root) == []
