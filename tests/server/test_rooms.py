"""Rooms at the hub with real MLS groups: creation, invites with routed Welcomes, signed and
chained events, the transparency log, history, GroupInfo, a second device's external join."""

from __future__ import annotations

from crypto import merkle
from crypto.checkpoint import open_checkpoint
from crypto.mls import Group, MLSMessage
from crypto.primitives import sha256
from protocol.audit import RoomEvent
from protocol.events import EventKind, SignedEvent, verify_chain
from tests.harness import (
    accept_welcome,
    create_room,
    invite,
    joined_pair,
    new_group,
    new_member,
    protect,
    send_text,
    sync,
    txn,
)


async def _hub_key(m) -> bytes:
    status, body = await m.call("GET", "/hub_key")
    assert status == 200 and body["server_name"] == "test.example"
    return body["signing_key"]


async def _history(m, room, start=0, limit=100) -> list[SignedEvent]:
    status, body = await m.call("GET", f"/rooms/{room}/events?from={start}&limit={limit}")
    assert status == 200, body
    return [SignedEvent.from_wire(e) for e in body["events"]]


async def _read(m, room, events) -> list[bytes]:
    """Process events in order with the member's group; return the application plaintexts."""
    out = []
    group: Group = m.groups[room]
    for e in events:
        c = e.content
        if c.kind == EventKind.CREATE:
            continue
        if c.sender_user == m.user and c.sender_device == m.device:
            continue  # own messages: already applied when sent
        processed = group.process_message(MLSMessage.from_bytes(c.message))
        if processed.staged_commit is not None:
            group.merge_staged_commit(processed.staged_commit)
        elif processed.application_data is not None:
            out.append(processed.application_data)
    return out


async def test_create_room_gives_seq_0_and_a_signed_create_event(hs):
    alice = await new_member(hs, "alice")
    room = await create_room(alice)
    assert room.startswith("!") and room.endswith(":test.example")
    status, body = await alice.call("GET", "/rooms")
    assert (status, body) == (200, {"rooms": [{"room_id": room, "epoch": 0, "last_seq": 0}]})
    [create] = await _history(alice, room)
    create.verify(await _hub_key(alice))
    assert (create.content.seq, create.content.kind, create.content.prev) == (0, EventKind.CREATE,
                                                                               bytes(32))
    assert create.content.sender_user == alice.user
    status, gi = await alice.call("GET", f"/rooms/{room}/group_info")
    assert status == 200 and gi["epoch"] == 0 and gi["group_info"] == create.content.message


async def test_create_room_is_idempotent_and_checks_the_group_info(hs):
    alice = await new_member(hs, "alice")
    bob = await new_member(hs, "bob")
    kp, priv = alice.key_package()
    group = new_group(kp, priv)
    body = {"txn_id": txn("t1"), "group_info": MLSMessage(group.group_info()).to_bytes()}
    first = await alice.call("POST", "/rooms", body)
    assert first[0] == 200
    assert await alice.call("POST", "/rooms", body) == first
    status, rooms = await alice.call("GET", "/rooms")
    assert len(rooms["rooms"]) == 1
    # The same group under another txn id: the group already has a room.
    status, err = await alice.call("POST", "/rooms", {**body, "txn_id": txn("t2")})
    assert (status, err["error"]["code"]) == (409, "conflict")
    # Bob may not create a room whose only member is Alice's device.
    status, err = await bob.call("POST", "/rooms", {**body, "txn_id": txn("t3")})
    assert (status, err["error"]["code"]) == (400, "group_info_invalid")
    status, err = await alice.call("POST", "/rooms", {"txn_id": txn("t4"), "group_info": b"\x00\x01zz"})
    assert (status, err["error"]["code"]) == (400, "not_mls")
    status, err = await alice.call("POST", "/rooms", {"txn_id": txn("t5"),
                                                      "group_info": MLSMessage(kp).to_bytes()})
    assert (status, err["error"]["code"]) == (400, "wrong_wire_format")
    forged = group.group_info()
    from dataclasses import replace
    bad = MLSMessage(replace(forged, signature=bytes(64))).to_bytes()
    status, err = await alice.call("POST", "/rooms", {"txn_id": txn("t6"), "group_info": bad})
    assert (status, err["error"]["code"], err["error"]["mls_code"]) == (400, "mls_rejected",
                                                                       "invalid_signature")


async def test_invite_routes_the_welcome_and_the_invitee_reads_later_messages(hs):
    alice = await new_member(hs, "alice")
    bob = await new_member(hs, "bob")
    await bob.upload_key_packages()
    room = await create_room(alice)
    await send_text(alice, room, "before bob", "m0")
    added = await invite(alice, room, bob.user, "inv-1")
    assert added["seq"] == 2 and added["epoch"] == 1
    first = await sync(bob)
    [item] = first["inbox"]
    assert item["kind"] == "welcome" and item["room_id"] == room
    assert (item["sender_user"], item["sender_device"]) == (alice.user, alice.device)
    assert first["events"] == []  # bob sees nothing from before his membership
    assert accept_welcome(bob, item) == room
    assert bob.groups[room].epoch == 1
    await send_text(alice, room, "hello bob", "m1")
    await send_text(bob, room, "hi alice", "m2")
    bob_view = await sync(bob)
    assert bob_view["inbox"] == []  # acknowledged by the since-token
    assert await _read(bob, room, [SignedEvent.from_wire(e) for e in bob_view["events"]]) == [
        b"hello bob"]
    alice_view = await sync(alice)
    texts = await _read(alice, room, [SignedEvent.from_wire(e) for e in alice_view["events"]])
    assert texts == [b"hi alice"]
    status, rooms = await bob.call("GET", "/rooms")
    assert rooms["rooms"] == [{"room_id": room, "epoch": 1, "last_seq": 4}]
    # History: bob reads only from his membership on; alice reads the whole chain.
    bob_hist = await _history(bob, room)
    assert [e.content.seq for e in bob_hist] == [3, 4]
    everything = await _history(alice, room)
    assert [e.content.seq for e in everything] == [0, 1, 2, 3, 4]
    key = await _hub_key(alice)
    for e in everything:
        e.verify(key)
    verify_chain(everything)
    page = await _history(alice, room, start=1, limit=2)
    assert [e.content.seq for e in page] == [1, 2]


async def test_every_accepted_event_is_in_the_transparency_log(hs):
    alice = await new_member(hs, "alice")
    bob = await new_member(hs, "bob")
    await bob.upload_key_packages()
    room = await create_room(alice)
    await invite(alice, room, bob.user, "inv")
    await send_text(alice, room, "logged", "m")
    events = await _history(alice, room)
    log = hs.log
    cp, _ = open_checkpoint(await log.checkpoint(), [log.verifier])
    for e in events:
        proof = await log.inclusion_proof_for_event(e.event_id)
        entry = (await log.opening(proof.index)).verify(proof.entry)
        assert isinstance(entry, RoomEvent)
        assert str(room).encode() not in proof.entry  # the public entry names no room
        c = e.content
        assert (entry.room, entry.seq, entry.event_hash, entry.event_type, entry.epoch) == (
            room, c.seq, e.event_id, c.kind.value, c.epoch)
        assert (entry.ciphertext_hash, entry.ciphertext_size) == (sha256(c.message), len(c.message))
        assert (entry.sender, entry.sender_device, entry.time) == (c.sender_user, c.sender_device, c.ts)
        merkle.verify_inclusion(proof.index, cp.size, merkle.leaf_hash(proof.entry), proof.proof,
                                cp.root_hash)


async def test_group_info_is_kept_per_commit_and_a_second_device_joins_externally(hs):
    alice, bob, room = await joined_pair(hs)
    status, gi = await bob.call("GET", f"/rooms/{room}/group_info")
    assert status == 200 and gi["epoch"] == 1
    # Alice's second device joins by an external commit from the stored GroupInfo.
    laptop = await new_member(hs, "alice", device_of=alice)
    status, gi = await laptop.call("GET", f"/rooms/{room}/group_info")
    assert status == 200
    kp, priv = laptop.key_package()
    group, commit = Group.external_join(MLSMessage.from_bytes(gi["group_info"]), kp, priv)
    status, body = await laptop.call("POST", f"/rooms/{room}/send", {
        "txn_id": txn("join"), "message": commit.to_bytes(),
        "group_info": MLSMessage(group.group_info()).to_bytes()})
    assert status == 200, body
    assert body["epoch"] == 2
    laptop.groups[room] = group
    await send_text(laptop, room, "from the laptop", "l1")
    bob_events = [SignedEvent.from_wire(e) for e in (await sync(bob))["events"]]
    assert await _read(bob, room, bob_events) == [b"from the laptop"]
    # A user with no device in the room may neither fetch the GroupInfo nor join externally.
    carol = await new_member(hs, "carol")
    status, err = await carol.call("GET", f"/rooms/{room}/group_info")
    assert (status, err["error"]["code"]) == (403, "not_member")
    status, gi = await laptop.call("GET", f"/rooms/{room}/group_info")
    kp, priv = carol.key_package()
    _, commit = Group.external_join(MLSMessage.from_bytes(gi["group_info"]), kp, priv)
    status, err = await carol.call("POST", f"/rooms/{room}/send",
                                   {"txn_id": txn("x"), "message": commit.to_bytes()})
    assert (status, err["error"]["code"]) == (403, "not_member")


async def test_removed_member_stops_receiving(hs):
    alice, bob, room = await joined_pair(hs)
    group = alice.groups[room]
    bob_leaf = group.find_member(bob.identity)
    staged = group.remove_members([bob_leaf])
    status, body = await alice.call("POST", f"/rooms/{room}/send", {
        "txn_id": txn("rm"), "message": staged.commit.to_bytes(),
        "group_info": MLSMessage(staged.group_info).to_bytes()})
    assert status == 200, body
    group.merge_staged_commit(staged)
    await send_text(alice, room, "after removal", "m")
    seen = [SignedEvent.from_wire(e) for e in (await sync(bob))["events"]]
    assert [e.content.kind for e in seen] == [EventKind.COMMIT]  # the removal, nothing after
    assert (await bob.call("GET", "/rooms"))[1] == {"rooms": []}
    status, err = await bob.call("POST", f"/rooms/{room}/send", {
        "txn_id": txn("late"), "message": protect(bob.groups[room], b"x")})
    assert (status, err["error"]["code"]) == (403, "not_member")
    # Bob's history stops at the commit that removed him.
    assert [e.content.seq for e in await _history(bob, room)] == [2]


async def test_info_logs_name_no_room_user_or_content(hs):
    from structlog.testing import capture_logs

    alice = await new_member(hs, "alice")
    bob = await new_member(hs, "bob")
    await bob.upload_key_packages()
    with capture_logs() as logs:
        room = await create_room(alice)
        await invite(alice, room, bob.user, "inv")
        await send_text(alice, room, "very private words", "m")
        await sync(bob)
    text = repr([e for e in logs if e.get("log_level") == "info"])
    assert "room_event_accepted" in text
    for secret in (room, room.split(":")[0], alice.user, bob.user, alice.device, "very private"):
        assert secret not in text, secret


async def test_the_hub_continues_after_a_restart(tmp_path, clock):
    from tests.harness import start

    hs = await start(tmp_path, clock)
    alice = await new_member(hs, "alice")
    room = await create_room(alice)
    await send_text(alice, room, "before", "m1")
    await hs.client.close()
    hs2 = await start(tmp_path, clock)
    try:
        alice.hs = hs2
        body = await send_text(alice, room, "after", "m2")
        assert body["seq"] == 2
        assert (await alice.call("POST", f"/rooms/{room}/send", {
            "txn_id": txn("m1"), "message": protect(alice.groups[room], b"x")}))[1]["seq"] == 1
        events = await _history(alice, room)
        key = await _hub_key(alice)
        for e in events:
            e.verify(key)
        verify_chain(events)
        assert [e.content.seq for e in events] == [0, 1, 2]
    finally:
        await hs2.client.close()
