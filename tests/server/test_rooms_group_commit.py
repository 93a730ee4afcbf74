"""Group commit of application messages (:mod:`server.rooms.hub`): concurrent sends share
a transaction yet each answer is for a committed event, retries of a queued txn id get the
same answer, a failed batch fails every request in it and stores nothing of them, and the
room goes on from its last committed state."""

from __future__ import annotations

import asyncio

from crypto.mls import MLSMessage
from protocol.events import EventKind, SignedEvent
from server.appkeys import AUDIT, HUB
from server.rooms import storage
from tests.harness import joined_pair, protect, send, send_text


async def _events(hs, room):
    async with hs.db.read() as conn:
        async with conn.execute("SELECT seq, prev, event_id FROM room_events WHERE room_id = ? "
                                "ORDER BY seq", (room,)) as cur:
            rows = await cur.fetchall()
        async with conn.execute("SELECT last_seq, last_event_id FROM rooms WHERE room_id = ?",
                                (room,)) as cur:
            head = await cur.fetchone()
    return [(r[0], bytes(r[1]), bytes(r[2])) for r in rows], (head[0], bytes(head[1]))


async def test_concurrent_sends_are_committed_as_one_chain_with_every_answer(hs):
    alice, bob, room = await joined_pair(hs)
    texts = [f"m{i}" for i in range(20)]
    messages = [protect(alice.groups[room], t.encode()) for t in texts]
    answers = await asyncio.gather(*(send(alice, room, m, f"t{i}") for i, m in enumerate(messages)))
    assert all(status == 200 for status, _ in answers), answers
    seqs = sorted(body["seq"] for _, body in answers)
    assert seqs == list(range(2, 22))
    rows, head = await _events(hs, room)
    assert [r[0] for r in rows] == list(range(22))
    for before, after in zip(rows, rows[1:], strict=False):
        assert after[1] == before[2]  # each event's prev is the one before it
    assert head == (21, rows[-1][2])
    by_seq = {body["seq"]: body["event_id"] for _, body in answers}
    assert all(bytes.fromhex(by_seq[s]) == rows[s][2] for s in seqs)
    await hs.app[AUDIT].flush()
    # Bob receives them all, in order, and a commit after them continues the chain.
    got = []
    status, page = await bob.call("GET", f"/rooms/{room}/events?from=2")
    for e in page["events"]:
        ev = SignedEvent.from_wire(e)
        processed = bob.groups[room].process_message(MLSMessage.from_bytes(ev.content.message))
        got.append(processed.application_data.decode())
    assert sorted(got) == sorted(texts)
    staged = alice.groups[room].stage_commit(force_path=True)
    status, body = await send(alice, room, staged.commit.to_bytes(), "c")
    assert status == 200 and body["seq"] == 22


async def test_a_retry_while_queued_waits_for_the_same_answer(hs):
    alice, _, room = await joined_pair(hs)
    message = protect(alice.groups[room], b"once")
    answers = await asyncio.gather(*(send(alice, room, message, "same") for _ in range(5)))
    assert [a for a in answers] == [answers[0]] * 5 and answers[0][0] == 200
    rows, _ = await _events(hs, room)
    assert len(rows) == 3  # create, invite, the one message


async def test_a_failed_batch_fails_every_request_in_it_and_stores_nothing(hs, monkeypatch):
    alice, bob, room = await joined_pair(hs)
    rows_before, head_before = await _events(hs, room)
    real = storage.store_txns
    calls = []

    async def failing(tx, rows):
        calls.append(len(list(rows)))
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(storage, "store_txns", failing)
    messages = [protect(alice.groups[room], f"x{i}".encode()) for i in range(6)]
    answers = await asyncio.gather(*(send(alice, room, m, f"f{i}") for i, m in enumerate(messages)))
    assert calls and all(status == 500 for status, _ in answers), answers
    assert await _events(hs, room) == (rows_before, head_before)
    assert hs.app[HUB]._inflight == {}
    # The room goes on from its committed head; the failed txn ids can be sent again.
    monkeypatch.setattr(storage, "store_txns", real)
    status, body = await send(alice, room, messages[0], "f0")
    assert status == 200 and body["seq"] == head_before[0] + 1
    body = await send_text(alice, room, "after", "f-after")
    rows, head = await _events(hs, room)
    assert head == (head_before[0] + 2, rows[-1][2]) and rows[-2][2] == rows[-1][1]
    assert [r[0] for r in rows] == list(range(head[0] + 1))
    assert body["seq"] == head[0]
    status, page = await bob.call("GET", f"/rooms/{room}/events?from={head_before[0] + 1}")
    got = [SignedEvent.from_wire(e) for e in page["events"]]
    assert [e.content.seq for e in got] == [head[0] - 1, head[0]]
    assert all(e.content.kind == EventKind.APPLICATION for e in got)


async def test_a_room_event_appended_before_a_crash_is_not_appended_again(hs):
    """A crash between the log's append and the outbox delete leaves the entry queued; the
    next process's first pass does not append it a second time."""
    from server.services.audit import AuditTrail
    from server.storage import outbox

    alice, _, room = await joined_pair(hs)
    await send_text(alice, room, "logged once", "l1")
    await hs.app[AUDIT].flush()
    size = hs.log.size
    [last] = await hs.log.storage.read_opened_range(size - 1, 1)
    async with hs.db.transaction() as tx:  # as if its delete had not happened
        await outbox.push(tx, last)
    assert await AuditTrail(hs.db, hs.log).flush() == 0
    assert hs.log.size == size
    async with hs.db.read() as conn:
        assert await outbox.peek(conn) == []
