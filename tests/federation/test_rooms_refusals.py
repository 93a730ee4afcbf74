"""Room federation refuses bad input with its documented code, and stores nothing.

Items are sent as real signed transactions (``PUT /send/{txn_id}``) by a node's own
key, with events signed by the hub's real key, then altered: a broken chain, a bad
signature, an unknown key, a malformed envelope, a room event from a server that is
not the hub, a follower ordering events for a room it does not host; and a
transaction delivered twice is applied once.
"""

from __future__ import annotations

from dataclasses import replace

import msgpack
import pytest

from client.sdk import ServerError
from crypto.mls import MLSMessage
from crypto.mls.framing import ContentType, PrivateMessage
from federation import FEDERATION_KEYRING
from protocol.events import EventContent, EventKind, sign_event
from protocol.federation import FEDERATION_PREFIX
from protocol.federation_rooms import encode_room_event
from server.rooms import storage
from tests.harness import (
    consult,
    put_items,
    raw_request,
    room_seqs,
    signed_call,
    signed_headers,
    txn,
)


async def last_event(node, room):
    async with node.db.read() as conn, conn.execute(
            f"SELECT {storage.EVENT_COLUMNS} FROM room_events WHERE room_id = ? ORDER BY seq DESC LIMIT 1",
            (room,)) as cur:
        return storage.event_from_row(tuple(await cur.fetchone()))[1]


def _application(ciphertext_len: int = 256, authenticated_data: bytes = b"") -> bytes:
    """An application PrivateMessage of the right shape (its ciphertext opens for nobody):
    what a follower can check of it is all there is (finding 9)."""
    return MLSMessage(PrivateMessage(b"g" * 32, 0, ContentType.APPLICATION, authenticated_data,
                                     bytes(28), bytes(ciphertext_len))).to_bytes()


def next_event(hub, head, **changes):
    key = hub.app[FEDERATION_KEYRING].current()
    c = head.content
    content = EventContent(c.room_id, c.seq + 1, head.event_id, c.epoch, EventKind.APPLICATION,
                           c.sender_user, c.sender_device, c.ts + 1, _application())
    content = replace(content, **changes)
    return sign_event(key.seed, content, key.key_id)


async def test_bad_room_events_are_refused_and_nothing_stored(people):
    a, b, alice, bob, _ = people
    room = await consult(a, b, alice, bob)
    before = await room_seqs(b, room)
    head = await last_event(a, room)
    good = next_event(a, head)
    broken_chain = next_event(a, head, prev=bytes(32))
    bad_sig = replace(good, hub_signature=bytes(64))
    unknown_key = replace(good, key_id="ed25519:nosuchkey")
    cases = [
        (encode_room_event(broken_chain), "room_event_chain_broken"),
        (encode_room_event(bad_sig), "room_event_bad_signature"),
        (encode_room_event(unknown_key), "room_event_bad_signature"),
        (b"\x93\x01\x02\x03", "room_event_malformed"),
        (msgpack.packb({**good.to_wire(), "seq": 99}), "room_event_malformed"),  # id mismatch
        # hub-signed, but channels the hub itself refuses (finding 9): a follower refuses them too
        (encode_room_event(next_event(a, head, message=_application(300))), "room_event_rejected"),
        (encode_room_event(next_event(a, head, message=_application(authenticated_data=b"Q"))),
         "room_event_rejected"),
        (encode_room_event(next_event(a, head, message=b"\x00\x01\x00\x02not-really-mls")),
         "room_event_rejected"),
    ]
    status, body = await put_items(a, b, [("room_event", d) for d, _ in cases])
    assert status == 200
    assert [r["code"] for r in body["results"]] == [code for _, code in cases]
    assert await room_seqs(b, room) == before
    # a follower (b) trying to order an event for a's room: refused by a as not_hub
    b_key = b.app[FEDERATION_KEYRING].current()
    forged = sign_event(b_key.seed, good.content, b_key.key_id)
    status, body = await put_items(b, a, [("room_event", encode_room_event(forged))])
    assert status == 200 and body["results"][0]["code"] == "not_hub"
    # ... and the real hub's event is accepted once, a second delivery of the same
    # transaction is a duplicate, and the same event in a new transaction changes nothing
    status, first = await put_items(a, b, [("room_event", encode_room_event(good))], txn_id="once")
    assert first["results"][0]["ok"] is True
    status, again = await put_items(a, b, [("room_event", encode_room_event(good))], txn_id="once")
    assert again["duplicate"] is True
    status, other = await put_items(a, b, [("room_event", encode_room_event(good))])
    assert other["results"][0]["ok"] is True
    assert await room_seqs(b, room) == [*before, (good.content.seq, good.event_id)]


async def test_a_follower_cannot_order_or_read_rooms_it_does_not_host(people):
    a, b, alice, bob, _ = people
    room = await consult(a, b, alice, bob)
    send = {"user_id": bob.user_id, "device_id": bob.device_id, "txn_id": txn("x"), "message": b"\x00"}
    # a does not host a room of b.test: not_hub
    status, body = await signed_call(a, b, "POST", f"{FEDERATION_PREFIX}/rooms/!abc:a.test/send",
                                     {**send, "user_id": alice.user_id, "device_id": alice.device_id})
    assert (status, body["error"]["code"]) == (409, "not_hub")
    # b may submit only for its own users
    status, body = await signed_call(b, a, "POST", f"{FEDERATION_PREFIX}/rooms/{room}/send",
                                     {**send, "user_id": alice.user_id, "device_id": alice.device_id})
    assert (status, body["error"]["code"]) == (403, "not_your_user")
    status, body = await signed_call(b, a, "GET", f"{FEDERATION_PREFIX}/rooms/!zz:b.test/events?from=0")
    assert (status, body["error"]["code"]) == (409, "not_hub")
    before = await room_seqs(a, room)
    status, body = await signed_call(b, a, "POST", f"{FEDERATION_PREFIX}/rooms/{room}/send", send)
    assert (status, body["error"]["code"]) == (400, "not_mls")
    assert await room_seqs(a, room) == before
    # the follower's history view is the hub's, signed
    status, body = await signed_call(b, a, "GET", f"{FEDERATION_PREFIX}/rooms/{room}/events?from=0")
    assert status == 200 and [e["seq"] for e in body["events"]] == [s for s, _ in before]


async def test_an_unknown_room_is_unknown_room_over_federation_as_at_the_hub(people):
    """One membership check, one code: history and GroupInfo of a room the hub does not have
    answer ``unknown_room`` (404), as the hub's own clients get."""
    a, b, alice, bob, _ = people
    await consult(a, b, alice, bob)
    missing = "!nosuchroom:a.test"
    status, body = await signed_call(b, a, "GET", f"{FEDERATION_PREFIX}/rooms/{missing}/events?from=0")
    assert (status, body["error"]["code"]) == (404, "unknown_room")
    status, body = await signed_call(b, a, "POST", f"{FEDERATION_PREFIX}/rooms/{missing}/group_info",
                                     {"user_id": bob.user_id})
    assert (status, body["error"]["code"]) == (404, "unknown_room")
    for path in (f"/rooms/{missing}/group_info", f"/rooms/{missing}/events"):
        with pytest.raises(ServerError) as err:
            await alice.http.call("GET", path)
        assert err.value.code == "unknown_room"


async def test_unsigned_and_oversize_room_transactions(people):
    a, b, alice, bob, _ = people
    room = await consult(a, b, alice, bob)
    before = await room_seqs(b, room)
    target = f"{FEDERATION_PREFIX}/send/unsigned-1"
    data = msgpack.packb({"items": [{"kind": "room_event", "data": b"x"}]})
    status, body = await raw_request(b, "PUT", target, signed_headers(None), data)
    assert (status, body["error"]["code"]) == (401, "unsigned")
    big = [("room_event", b"\x00" * 400_000)] * 3
    status, body = await put_items(a, b, big)
    assert (status, body["error"]["code"]) == (413, "transaction_too_large")
    assert await room_seqs(b, room) == before
