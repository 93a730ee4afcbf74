"""Follower duties beyond fan-out: the hub's current GroupInfo for a further device's external
join, catch-up of a missed tail with no later event, stuck rooms made visible and recoverable,
and no hub key fetch while the receiver holds the database transaction.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

from client.profile import MINIMUM, Profile
from client.sdk import Client, ServerError
from federation import FEDERATION_RECEIVER
from federation.appkeys import FEDERATION_PEER_KEYS, FEDERATION_ROOMS
from federation.stuck_rooms import list_stuck
from protocol.federation import PeerUnreachable, Transaction, TransactionItem
from protocol.federation_rooms import HubKeysUnavailable, encode_room_event
from server.rooms import storage
from tests.harness import (
    PASSWORD,
    consult,
    eventually,
    reads,
    room_seqs,
    signed_call,
    texts,
    user_on,
)

REPO = Path(__file__).resolve().parents[2]


async def stored_group_info_epoch(node, room):
    async with node.db.read() as conn:
        return (await storage.get_room(conn, room)).group_info_epoch


async def synced_epoch(client, room, epoch):
    await client.sync()
    return client.room(room).epoch == epoch


async def test_a_further_device_on_the_follower_joins_by_external_commit(people):
    a, b, alice, bob, clients = people
    room = await consult(a, b, alice, bob)
    # a commit submitted through the follower leaves its GroupInfo at the hub
    epoch = await bob.rotate_keys(room)
    assert await stored_group_info_epoch(a, room) == epoch
    await eventually(lambda: synced_epoch(alice, room, epoch))
    epoch = await alice.rotate_keys(room)
    await eventually(lambda: synced_epoch(bob, room, epoch))
    assert await stored_group_info_epoch(b, room) == 0  # the follower has only event 0's

    profile = Profile.create(b.data.parent / "profile-b-bob-tablet", "pp", MINIMUM)
    tablet = await Client.login(profile, b.url, "bob", PASSWORD, device_name="tablet",
                                anchor=bob.anchor, auto_add_own_devices=False)
    clients.append(tablet)
    await bob.approve_device(tablet.device_id, tablet.own_code)  # a login device is pending until then
    info = await tablet.http.call("GET", f"/rooms/{room}/group_info")
    assert info["epoch"] == epoch  # the hub's current GroupInfo, not event 0's
    assert b.app[FEDERATION_ROOMS]._group_infos[room][0] == epoch  # cached for this epoch
    joined = await tablet.join_external(room)
    assert joined == epoch + 1
    await eventually(lambda: synced_epoch(alice, room, joined))
    await alice.send_text(room, "hello tablet")
    await eventually(lambda: reads(tablet, room, ["hello tablet"]))
    await eventually(lambda: reads(bob, room, ["hello tablet"]))
    assert await room_seqs(a, room) == await room_seqs(b, room)
    # Alice checks the tablet's approval chain in b's log, through a's relay.
    assert await alice.verify_room_members(room) == []
    assert alice.store.verified()[f"root:{bob.user_id}"] == bob.store.verified()[f"root:{bob.user_id}"]

    # a user of the follower without a member device gets the hub's refusal, relayed
    dave = await user_on(b, "dave", clients=clients)
    with pytest.raises(ServerError) as err:
        await dave.join_external(room)
    assert err.value.code == "not_member"


async def test_hub_refuses_group_info_for_another_servers_user(people):
    a, b, alice, bob, _ = people
    room = await consult(a, b, alice, bob)
    target = f"/_confide/federation/v1/rooms/{room}/group_info"
    status, body = await signed_call(b, a, "POST", target, {"user_id": alice.user_id})
    assert (status, body["error"]["code"]) == (403, "not_your_user")
    status, body = await signed_call(b, a, "POST", target, {"user_id": "@nobody:b.test"})
    assert (status, body["error"]["code"]) == (403, "not_member")
    status, body = await signed_call(b, a, "POST", target, {"user_id": bob.user_id})
    assert status == 200 and body["epoch"] == 1
    status, body = await signed_call(a, b, "POST", target, {"user_id": alice.user_id})
    assert (status, body["error"]["code"]) == (409, "not_hub")


async def test_follower_restarted_catches_up_a_tail_with_no_later_event(people):
    a, b, alice, bob, _ = people
    room = await consult(a, b, alice, bob)
    await alice.send_text(room, "before")
    await eventually(lambda: reads(bob, room, ["before"]))
    await b.stop()
    tail = ["tail 1", "tail 2", "tail 3"]
    for text in tail:
        await alice.send_text(room, text)
    async with a.db.transaction() as tx:  # the queue for b loses them: only catch-up is left
        await tx.execute("DELETE FROM federation_outbox WHERE destination = 'b.test'")
    await b.start()  # no new event follows
    await eventually(lambda: reads(bob, room, ["before", *tail]), timeout=20)
    assert await room_seqs(a, room) == await room_seqs(b, room)
    await bob.sync()
    assert texts(bob, room) == ["before", *tail]


async def test_periodic_passes_are_bounded_and_round_robin(people, monkeypatch):
    a, b, alice, bob, _ = people
    rooms = sorted([await consult(a, b, alice, bob) for _ in range(3)])
    fed = b.app[FEDERATION_ROOMS]
    assert await fed.followed_rooms() == rooms
    asked: list[str] = []

    async def fake_catch_up(room_id):
        asked.append(room_id)
        return 0
    monkeypatch.setattr(fed, "catch_up", fake_catch_up)
    for _ in range(4):
        await fed.catch_up_pass(2)
    assert asked == [rooms[0], rooms[1], rooms[2], rooms[0], rooms[1], rooms[2], rooms[0], rooms[1]]
    asked.clear()
    await fed.catch_up_pass()
    assert asked == rooms


async def admin_federation(node) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server.cli", "admin", "federation", "--data", str(node.data), cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_a_follower_whose_view_disagrees_lists_the_room_as_stuck_and_recovers(people):
    a, b, alice, bob, _ = people
    room = await consult(a, b, alice, bob)
    async with b.db.read() as conn:
        old_view = (await storage.get_room(conn, room)).view
    epoch = await alice.rotate_keys(room)
    await eventually(lambda: synced_epoch(bob, room, epoch))
    async with b.db.read() as conn:
        good_view = (await storage.get_room(conn, room)).view
    async with b.db.transaction() as tx:  # b's public view goes wrong (as a bug would make it)
        await tx.execute("UPDATE rooms SET view = ? WHERE room_id = ?", (old_view, room))
    await alice.rotate_keys(room)
    seq = (await room_seqs(a, room))[-1][0]

    async def stuck():
        async with b.db.read() as conn:
            return await list_stuck(conn)
    await eventually(stuck)
    [row] = await stuck()
    assert (row.room_id, row.seq, row.code) == (room, seq, "room_event_rejected")
    assert row.event_id == (await room_seqs(a, room))[-1][1]
    out = await admin_federation(b)
    assert room in out and "room_event_rejected" in out and "stuck room" in out
    await alice.send_text(room, "after the fork")  # a gap for b: it tries the history again
    await eventually(lambda: _attempts_at_least(b, 2))
    fed = b.app[FEDERATION_ROOMS]
    await asyncio.gather(*fed._catching.values(), return_exceptions=True)
    assert len(await room_seqs(b, room)) == seq  # nothing past the refused event is stored

    # the cause is fixed (here: the right view back); the next pass moves the room on
    async with b.db.transaction() as tx:
        await tx.execute("UPDATE rooms SET view = ? WHERE room_id = ?", (good_view, room))
    assert await fed.catch_up_pass() == 2
    assert await stuck() == []
    assert await room_seqs(a, room) == await room_seqs(b, room)
    await eventually(lambda: reads(bob, room, ["after the fork"]))
    assert "stuck room" not in await admin_federation(b)


async def _attempts_at_least(node, n):
    async with node.db.read() as conn:
        return any(r.attempts >= n for r in await list_stuck(conn))


async def test_no_hub_key_fetch_inside_the_receivers_transaction(people, monkeypatch):
    a, b, alice, bob, _ = people
    room = await consult(a, b, alice, bob)
    await alice.send_text(room, "x")
    await eventually(lambda: reads(bob, room, ["x"]))
    async with a.db.read() as conn:
        event = (await storage.events_in_range(conn, room, alice.user_id, alice.device_id, 0, 100))[-1]
    peer_keys = b.app[FEDERATION_PEER_KEYS]
    real_fetch = peer_keys._fetch
    held: list[bool] = []

    async def fetch(server):
        held.append(b.db.lock._owner is asyncio.current_task())
        return await real_fetch(server)
    monkeypatch.setattr(peer_keys, "_fetch", fetch)
    peer_keys._entries.clear()
    receiver = b.app[FEDERATION_RECEIVER]
    txn = Transaction((TransactionItem("room_event", encode_room_event(event)),))
    out = await receiver.apply("a.test", f"prefetch-{time.time_ns()}", txn)
    assert [r.ok for r in out.results] == [True]  # a duplicate of the stored event
    assert held == [False]

    # keys that cannot be fetched at all: the whole transaction is refused, nothing recorded
    async def unreachable(server):
        raise PeerUnreachable("down")
    monkeypatch.setattr(peer_keys, "_fetch", unreachable)
    peer_keys._entries.clear()
    before = await b.inbound_txns()
    with pytest.raises(HubKeysUnavailable):
        await receiver.apply("a.test", f"nokeys-{time.time_ns()}", txn)
    assert await b.inbound_txns() == before
