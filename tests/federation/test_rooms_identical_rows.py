"""The same sequence of events gives identical room rows at the hub and at a follower
(issue 9, "must show"), because both decide through :mod:`protocol.room_rules` and store
through the one writer :func:`server.rooms.storage.write_event`.

Hub a.test and follower b.test with SDK clients on each: a room is created, members of both
servers are added, talk, rotate keys, and one is removed. Then the room's rows are compared
table by table: ``room_events`` (every column but the server's own delivery-stream
position), ``rooms`` (the head: group, suite, epoch, last seq, last event id, public view)
and ``room_members`` (every membership interval).
"""

from __future__ import annotations

from collections import Counter

from server.rooms import storage
from tests.harness import consult, eventually, texts, user_on

#: Columns of the room's head (``rooms``). ``group_info`` is the latest GroupInfo a member
#: uploaded with a commit: it travels with the submission to the hub, not in the event, so a
#: follower asks the hub for it (``spec/server-server.md`` 11.5); ``created_at`` is local time.
HEAD = "group_id, cipher_suite, epoch, last_seq, last_event_id, view"
EVENTS = ", ".join(c for c in storage.EVENT_COLUMNS.split(", ") if c != "stream_pos")
MEMBERS = "user_id, device_id, first_seq, last_seq"


async def room_rows(node, room: str) -> dict[str, list[tuple]]:
    async with node.db.read() as conn:
        out = {}
        for table, columns, order in (("rooms", HEAD, "room_id"), ("room_events", EVENTS, "seq"),
                                      ("room_members", MEMBERS, "user_id, device_id, first_seq")):
            rows = await conn.execute_fetchall(
                f"SELECT {columns} FROM {table} WHERE room_id = ? ORDER BY {order}", (room,))
            out[table] = [tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in rows]
        return out


async def test_hub_and_follower_store_identical_room_rows(people, monkeypatch):
    a, b, alice, bob, clients = people
    written: Counter[bytes] = Counter()
    real = storage.write_event

    async def counting(tx, *applied, now_ms):
        written.update(x.event.event_id for x in applied)
        return await real(tx, *applied, now_ms=now_ms)

    monkeypatch.setattr(storage, "write_event", counting)  # still the real writer, counted
    carol = await user_on(a, "carol", role="client", clients=clients)
    dave = await user_on(b, "dave", clients=clients)
    room = await consult(a, b, alice, bob)
    await alice.send_text(room, "one")
    await bob.invite(room, carol.user_id)
    await bob.send_text(room, "two")
    await alice.invite(room, dave.user_id)
    await alice.sync()
    await alice.rotate_keys(room)
    await alice.send_text(room, "three")
    await alice.remove_member(room, carol.user_id)
    await alice.send_text(room, "four")

    async def same_head():
        hub, follower = await room_rows(a, room), await room_rows(b, room)
        return hub["rooms"] and hub["rooms"] == follower["rooms"]
    await eventually(same_head)
    await eventually(lambda: _reads(bob, room, ["one", "two", "three", "four"]))
    hub, follower = await room_rows(a, room), await room_rows(b, room)
    assert hub == follower
    kinds = Counter(r[EVENTS.split(", ").index("kind")] for r in hub["room_events"])
    assert kinds["commit"] >= 4 and kinds["application"] == 4 and kinds["create"] == 1
    # removed carol's interval is closed at the removing commit; everyone else's is open
    closed = [r for r in hub["room_members"] if r[3] is not None]
    assert [r[0] for r in closed] == [carol.user_id]
    # every event went through the one writer exactly twice: once at the hub, once at the follower
    assert set(written.values()) == {2} and len(written) == len(hub["room_events"])


async def _reads(client, room, expected):
    await client.sync()
    return texts(client, room) == expected
