"""Delivery: long-poll sync woken by new events, the WebSocket stream, inbox at-least-once with
acknowledgement by token, sendToDevice, token and parameter errors."""

from __future__ import annotations

import asyncio

import msgpack
import pytest
from aiohttp import WSMsgType

from protocol.events import SignedEvent
from server.appkeys import WAKEUPS
from server.delivery.wakeups import device_key
from tests.harness import P, box, joined_pair, new_member, send_text, sync, txn

pytestmark = pytest.mark.timeout(60)


async def _inbox_rows(hs) -> int:
    async with hs.db.read() as conn, conn.execute("SELECT COUNT(*) FROM inbox") as cur:
        return (await cur.fetchone())[0]


async def _watching(hs, member) -> None:
    """Until a sync of ``member``'s device watches for wake-ups (it has started)."""
    while not hs.app[WAKEUPS].watched(device_key(member.user, member.device)):
        await asyncio.sleep(0)


async def test_long_poll_wakes_on_a_new_event(hs):
    alice, bob, room = await joined_pair(hs, alice_synced=True)
    waiting = asyncio.create_task(sync(bob, timeout=20000))
    await _watching(hs, bob)  # the clock does not move: only the event can answer it
    await send_text(alice, room, "wake up", "m1")
    body = await waiting
    [ev] = [SignedEvent.from_wire(e) for e in body["events"]]
    assert ev.content.sender_user == alice.user
    # Nothing new: a zero timeout answers at once with the same token.
    again = await sync(bob)
    assert (again["events"], again["inbox"], again["next"]) == ([], [], body["next"])


async def test_long_poll_answers_empty_once_the_clock_passes_its_deadline(hs, clock):
    alice, bob, room = await joined_pair(hs, alice_synced=True)
    waiting = asyncio.create_task(sync(bob, timeout=20000))
    key = device_key(bob.user, bob.device)
    await _watching(hs, bob)
    clock.advance(19.9)
    hs.app[WAKEUPS].notify([key])  # woken before its deadline with nothing: it waits on
    await _watching(hs, bob)
    assert not waiting.done()
    clock.advance(0.1)
    hs.app[WAKEUPS].notify([key])
    body = await waiting
    assert body["events"] == [] and body["inbox"] == []


async def test_long_poll_answers_empty_when_its_timer_runs_out(hs):
    alice, bob, room = await joined_pair(hs, alice_synced=True)
    body = await sync(bob, timeout=300)  # the fake clock stands still: the timer answers
    assert body["events"] == [] and body["inbox"] == []


async def test_events_reach_only_members_and_the_stream_is_ordered(hs):
    alice, bob, room = await joined_pair(hs, alice_synced=True)
    carol = await new_member(hs, "carol")
    await sync(carol)
    for i in range(5):
        await send_text(alice, room, f"m{i}", f"t{i}")
    assert (await sync(carol))["events"] == []
    got = []
    while True:
        body = await sync(bob, limit=2)
        if not body["events"]:
            break
        assert len(body["events"]) <= 2
        got += [SignedEvent.from_wire(e).content.seq for e in body["events"]]
    assert got == sorted(got) and len(got) == 5


async def test_inbox_is_at_least_once_until_acknowledged(hs):
    alice = await new_member(hs, "alice")
    bob = await new_member(hs, "bob")
    status, _ = await alice.call("POST", "/sendToDevice", {"txn_id": txn("d1"), "messages": [
        {"user_id": bob.user, "device_id": bob.device, "payload": box(b"key share 1")},
        {"user_id": bob.user, "device_id": bob.device, "payload": box(b"key share 2")}]})
    assert status == 200
    first = await sync(bob)
    assert [i["payload"] for i in first["inbox"]] == [box(b"key share 1"), box(b"key share 2")]
    assert all(i["kind"] == "to_device" and i["sender_user"] == alice.user
               and i["sender_device"] == alice.device and "room_id" not in i for i in first["inbox"])
    # Not acknowledged (the client crashed before storing next): delivered again.
    bob.since = None
    assert [i["id"] for i in (await sync(bob))["inbox"]] == [i["id"] for i in first["inbox"]]
    # Acknowledging the first item only.
    bob.since = str(first["inbox"][0]["id"])
    assert [i["payload"] for i in (await sync(bob))["inbox"]] == [box(b"key share 2")]
    assert (await sync(bob))["inbox"] == []
    assert await _inbox_rows(hs) == 0
    # The same txn id again stores nothing.
    status, _ = await alice.call("POST", "/sendToDevice", {"txn_id": txn("d1"), "messages": [
        {"user_id": bob.user, "device_id": bob.device, "payload": box(b"key share 1")}]})
    assert status == 200 and (await sync(bob))["inbox"] == []


async def test_send_to_device_errors(hs):
    alice = await new_member(hs, "alice")
    status, err = await alice.call("POST", "/sendToDevice", {"txn_id": txn("x"), "messages": [
        {"user_id": alice.user, "device_id": "NOSUCH", "payload": box(b"p")}]})
    assert (status, err["error"]["code"]) == (404, "not_found")
    status, err = await alice.call("POST", "/sendToDevice", {"txn_id": txn("y"), "messages": [
        {"user_id": "@bob:other.example", "device_id": "D", "payload": box(b"p")}]})
    assert status == 200  # a device of another server: queued for it over federation
    status, err = await alice.call("POST", "/sendToDevice", {"txn_id": txn("z"), "messages": []})
    assert (status, err["error"]["code"]) == (400, "malformed_body")


async def test_bad_tokens_and_parameters(hs):
    alice = await new_member(hs, "alice")
    for query, code in [("since=01", "invalid_since_token"), ("since=-1", "invalid_since_token"),
                        ("since=abc", "invalid_since_token"), ("timeout=30001", "invalid_query"),
                        ("limit=0", "invalid_query"), ("limit=1001", "invalid_query")]:
        status, err = await alice.call("GET", f"/sync?{query}")
        assert (status, err["error"]["code"]) == (400, code), query
    status, err = await alice.call("GET", "/rooms/!x:test.example/events?from=x")
    assert (status, err["error"]["code"]) == (400, "invalid_query")
    status, err = await hs.call("GET", "/sync")
    assert (status, err["error"]["code"]) == (401, "unauthorized")
    # A token past the end counts as the end.
    body = await alice.call("GET", "/sync?since=999999")
    assert body[0] == 200 and int(body[1]["next"]) < 999999


async def test_websocket_pushes_events_and_takes_acks(hs):
    alice, bob, room = await joined_pair(hs, alice_synced=True)
    url = f"{P}/sync/ws?since={bob.since}"
    async with hs.client.ws_connect(url, headers={"Authorization": f"Bearer {bob.token}"}) as ws:
        await send_text(alice, room, "pushed", "w1")
        msg = await asyncio.wait_for(ws.receive(), 5)
        assert msg.type == WSMsgType.BINARY
        frame = msgpack.unpackb(msg.data)
        [ev] = [SignedEvent.from_wire(e) for e in frame["events"]]
        assert ev.content.sender_user == alice.user
        status, _ = await alice.call("POST", "/sendToDevice", {"txn_id": txn("d"), "messages": [
            {"user_id": bob.user, "device_id": bob.device, "payload": box(b"over the socket")}]})
        frame = msgpack.unpackb((await asyncio.wait_for(ws.receive(), 5)).data)
        assert [i["payload"] for i in frame["inbox"]] == [box(b"over the socket")]
        await ws.send_bytes(msgpack.packb({"ack": frame["next"]}))
        while await _inbox_rows(hs) != 0:  # the ack is processed asynchronously
            await asyncio.sleep(0.01)
        await ws.send_str("not binary")
        closing = await asyncio.wait_for(ws.receive(), 5)
        assert closing.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING)
        assert ws.close_code == 4400


async def test_websocket_requires_a_token(hs):
    resp = await hs.client.get(f"{P}/sync/ws")
    assert resp.status == 401
    assert msgpack.unpackb(await resp.read())["error"]["code"] == "unauthorized"
