"""Rooms across two in-process servers: hub a.test, follower b.test, SDK clients on each.

The conversation both ways, a third member added later, remote KeyPackage claims and
device lists, hub signatures checked by clients through the published key document,
sendToDevice across servers, and the faults: the follower down while the hub's members
keep sending (every message once, in order), the hub down while the follower's member
sends (``hub_unreachable``, nothing stored, delivered when sent again), and a follower
that lost queued items catching up by sequence number from the hub's signed history.
"""

from __future__ import annotations

import pytest

from client.sdk import ServerError
from federation import FEDERATION_SENDER
from protocol.events import SignedEvent
from protocol.schema import unpack_body
from tests.harness import box, consult, eventually, joined, reads, room_seqs, texts, txn, user_on


async def test_clinicians_of_two_servers_converse_and_a_client_joins(people):
    a, b, alice, bob, clients = people
    room = await consult(a, b, alice, bob)
    await alice.send_text(room, "hello from a")
    await eventually(lambda: reads(bob, room, ["hello from a"]))
    await bob.send_text(room, "hello from b")
    await eventually(lambda: reads(alice, room, ["hello from a", "hello from b"]))
    carol = await user_on(a, "carol", role="client", clients=clients)
    await bob.invite(room, carol.user_id)  # the follower's member adds a client of the hub
    await eventually(lambda: joined(carol, room))
    await carol.send_text(room, "hi both")
    await alice.sync()
    await alice.send_text(room, "welcome carol")
    everyone = ["hello from a", "hello from b", "hi both", "welcome carol"]
    await eventually(lambda: reads(bob, room, everyone))
    await eventually(lambda: reads(alice, room, everyone))
    await eventually(lambda: reads(carol, room, ["hi both", "welcome carol"]))
    assert await room_seqs(a, room) == await room_seqs(b, room)
    for c in (alice, bob, carol):
        assert c.room(room).warnings == ()


async def test_clients_verify_hub_signatures_with_the_published_keys(people):
    a, b, alice, bob, _ = people
    room = await consult(a, b, alice, bob)
    # bob's server relays the remote hub's self-signed key document; bob verifies with it
    doc = await bob.sync_engine.hub_keys.fetch("a.test")
    status_doc = await bob.http.call("GET", "/hub_key", params={"server": "a.test"})
    assert status_doc["key_id"] in doc.keys
    await alice.send_text(room, "signed")
    await eventually(lambda: reads(bob, room, ["signed"]))
    events = await bob.sync_engine.history(room, 0)
    assert events and all(isinstance(e, SignedEvent) and e.key_id in doc.keys for e in events)
    assert bob.room(room).refused == ()


async def test_remote_device_list_and_to_device(people):
    a, b, alice, bob, _ = people
    with pytest.raises(ServerError) as err:  # no contact yet (spec/security.md, finding 12)
        await alice.http.call("GET", f"/users/{bob.user_id}/devices")
    assert err.value.code == "not_found"
    await alice.http.call("POST", "/keys/claim", {"user": bob.user_id})  # now she may
    out = await alice.http.call("GET", f"/users/{bob.user_id}/devices")
    assert [d["device_id"] for d in out["devices"]] == [bob.device_id]
    await alice.keys.verify_device(bob.user_id, bob.device_id, out["devices"][0]["signature_key"])
    await alice.http.call("POST", "/sendToDevice", {"txn_id": txn("t1"), "messages": [
        {"user_id": bob.user_id, "device_id": bob.device_id, "payload": box(b"ping")}]})

    async def got():
        body = await bob.sync_engine.fetch()
        return [i for i in body["inbox"] if i["kind"] == "to_device" and i["payload"] == box(b"ping")]
    await eventually(got)
    with pytest.raises(ServerError) as err:
        await alice.http.call("POST", "/keys/claim", {"user": "@nobody:b.test"})
    assert err.value.code == "not_found"


async def test_follower_down_receives_everything_once_in_order(people):
    a, b, alice, bob, _ = people
    room = await consult(a, b, alice, bob)
    await b.stop()
    sent = [f"m{i}" for i in range(12)]
    for text in sent:
        await alice.send_text(room, text)
    await b.start()
    a.app[FEDERATION_SENDER].peer_alive("b.test")
    await eventually(lambda: reads(bob, room, sent), timeout=20)
    assert await room_seqs(a, room) == await room_seqs(b, room)
    await bob.sync()
    assert texts(bob, room) == sent


async def test_hub_down_the_follower_answers_hub_unreachable_and_stores_nothing(people):
    a, b, alice, bob, _ = people
    room = await consult(a, b, alice, bob)
    before = await room_seqs(b, room)
    await a.stop()
    with pytest.raises(ServerError) as err:
        await bob.send_text(room, "while the hub is down")
    assert (err.value.status, err.value.code) == (503, "hub_unreachable")
    assert err.value.details.get("queued") is False
    assert await room_seqs(b, room) == before
    await a.start()
    await bob.send_text(room, "while the hub is down")
    await eventually(lambda: reads(alice, room, ["while the hub is down"]))
    await eventually(lambda: _seq_count(b, room, len(before) + 1))


async def _seq_count(node, room, n):
    return len(await room_seqs(node, room)) == n


async def test_follower_that_lost_its_queue_catches_up_from_signed_history(people):
    a, b, alice, bob, _ = people
    room = await consult(a, b, alice, bob)
    await b.stop()
    for text in ("lost 1", "lost 2"):
        await alice.send_text(room, text)
    async with a.db.transaction() as tx:  # the queue for b loses its items
        await tx.execute("DELETE FROM federation_outbox WHERE destination = 'b.test'")
    await b.start()
    await alice.send_text(room, "after the gap")  # b sees a gap and fetches the history
    await eventually(lambda: reads(bob, room, ["lost 1", "lost 2", "after the gap"]), timeout=20)
    assert await room_seqs(a, room) == await room_seqs(b, room)


async def test_hub_answers_follower_with_stale_epoch(people):
    a, b, alice, bob, _ = people
    room = await consult(a, b, alice, bob)
    await bob.sync()
    # alice commits; bob, not yet synced, commits on the old epoch: the hub's stale_epoch
    # reaches him through b, the SDK catches up and re-commits.
    await alice.rotate_keys(room)
    epoch = await bob.rotate_keys(room)
    await eventually(lambda: _epoch(alice, room, epoch))
    assert unpack_body  # (imported for other tests)


async def _epoch(client, room, epoch):
    await client.sync()
    return client.room(room).epoch == epoch
