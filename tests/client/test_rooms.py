"""SDK room flows against the in-process homeserver: the conversation end to end."""

from __future__ import annotations

import asyncio

import pytest

from client.sdk import (
    AttachmentMessage,
    MembershipMessage,
    NotAMember,
    ServerError,
    TextMessage,
    TransportError,
)
from client.sdk.rooms import Rooms
from client.sdk.store import RoomStatus
from crypto.mls import Group


def texts(client, room):
    return [m.body for m in client.messages(room) if isinstance(m, TextMessage)]


def group(client, room) -> Group:
    return Group.from_bytes(client.store.room(room).group)


async def converse(hs):
    alice = await hs.user("alice")
    bob = await hs.user("bob")
    room = await alice.create_room("therapy")
    assert room.startswith("!") and room.endswith(":test.example")
    assert await alice.invite(room, bob.user_id) == [f"{bob.user_id}/{bob.device_id}"]
    result = await bob.sync()
    assert result.joined == [room]
    await alice.send_text(room, "hello bob")
    await bob.sync()
    await bob.send_text(room, "hi alice")
    await alice.sync()
    return alice, bob, room


async def test_two_users_converse_both_ways(hs):
    alice, bob, room = await converse(hs)
    assert texts(alice, room) == ["hello bob", "hi alice"]
    assert texts(bob, room) == ["hello bob", "hi alice"]
    assert group(alice, room).epoch_authenticator == group(bob, room).epoch_authenticator
    assert alice.room(room).warnings == () and bob.room(room).warnings == ()
    # own echoes are not shown twice, and a second sync changes nothing
    await alice.sync()
    assert texts(alice, room) == ["hello bob", "hi alice"]
    assert alice.room(room).name == "therapy"


async def test_a_member_added_later_reads_only_what_follows(hs):
    alice, bob, room = await converse(hs)
    carol = await hs.user("carol")
    await bob.invite(room, carol.user_id)
    await carol.sync()
    await alice.sync()
    await alice.send_text(room, "welcome carol")
    await carol.sync()
    await bob.sync()
    assert texts(carol, room) == ["welcome carol"]
    assert texts(bob, room) == ["hello bob", "hi alice", "welcome carol"]
    assert group(carol, room).epoch_authenticator == group(alice, room).epoch_authenticator
    assert carol.room(room).warnings == ()


async def test_a_removed_member_reads_nothing_after_removal(hs):
    alice, bob, room = await converse(hs)
    assert await alice.remove_member(room, bob.user_id) == 1
    await alice.send_text(room, "after bob left")
    await bob.sync()
    assert "after bob left" not in texts(bob, room)
    assert bob.room(room).status is RoomStatus.REMOVED
    with pytest.raises(NotAMember):
        await bob.send_text(room, "let me in")


async def test_leave_is_completed_by_another_members_commit(hs):
    alice, bob, room = await converse(hs)
    await bob.leave(room)
    assert bob.room(room).status is RoomStatus.LEFT
    await alice.sync()  # sees the proposal and commits it
    members = alice.room(room).members
    assert not any(m.startswith(bob.user_id) for m in members)
    await alice.send_text(room, "bye")
    await bob.sync()
    assert "bye" not in texts(bob, room)


async def test_concurrent_commits_one_wins_the_other_retries_and_all_converge(hs):
    alice, bob, room = await converse(hs)
    epoch = group(alice, room).epoch
    e1, e2 = await asyncio.gather(alice.rotate_keys(room), bob.rotate_keys(room))
    assert sorted([e1, e2]) == [epoch + 1, epoch + 2]
    await alice.sync()
    await bob.sync()
    assert group(alice, room).epoch == group(bob, room).epoch == epoch + 2
    assert group(alice, room).epoch_authenticator == group(bob, room).epoch_authenticator
    await bob.send_text(room, "still here")
    await alice.sync()
    assert texts(alice, room)[-1] == "still here"


async def test_a_stale_inviter_catches_up_and_retries(hs):
    alice, bob, room = await converse(hs)
    carol = await hs.user("carol")
    await bob.rotate_keys(room)  # alice has not seen this commit
    await alice.invite(room, carol.user_id)
    await carol.sync()
    await bob.sync()
    await carol.send_text(room, "carol here")
    await alice.sync()
    await bob.sync()
    assert texts(alice, room)[-1] == texts(bob, room)[-1] == "carol here"


async def test_second_device_is_added_by_the_first_and_reads_new_messages(hs):
    alice, bob, room = await converse(hs)
    laptop = await hs.device("alice", "laptop")
    added = await alice.add_own_devices()
    assert added == {room: [f"{alice.user_id}/{laptop.device_id}"]}
    await laptop.sync()
    await bob.sync()
    await bob.send_text(room, "to both of alice's devices")
    await laptop.sync()
    assert texts(laptop, room) == ["to both of alice's devices"]
    await laptop.send_text(room, "from the laptop")
    await alice.sync()
    assert texts(alice, room)[-1] == "from the laptop"


async def test_attachments_are_encrypted_and_readable_by_members(hs):
    alice, bob, room = await converse(hs)
    data = b"scan of a form " * 1000
    await alice.send_attachment(room, data, "form.pdf")
    await bob.sync()
    [m] = [m for m in bob.messages(room) if isinstance(m, AttachmentMessage)]
    assert (m.name, m.size) == ("form.pdf", len(data))
    assert await bob.download_attachment(m) == data
    blobs = [p.read_bytes() for p in hs.data_dir.rglob("*") if p.is_file()]
    assert not any(b"scan of a form" in b for b in blobs)


async def test_a_lost_answer_is_settled_with_the_same_transaction(hs, monkeypatch):
    alice, bob, room = await converse(hs)
    real = Rooms._post

    async def lost(self, room_id, body):
        await real(self, room_id, body)
        raise TransportError("connection reset after the hub accepted")

    monkeypatch.setattr(Rooms, "_post", lost)
    epoch = group(alice, room).epoch
    with pytest.raises(TransportError):
        await alice.rotate_keys(room)
    assert alice.store.room(room).pending is not None
    assert group(alice, room).epoch == epoch  # not merged without an answer
    monkeypatch.setattr(Rooms, "_post", real)
    await alice.sync()  # re-sends the same txn_id: the hub answers as before
    assert alice.store.room(room).pending is None
    assert group(alice, room).epoch == epoch + 1
    await bob.sync()
    await alice.send_text(room, "after the hiccup")
    await bob.sync()
    assert texts(bob, room)[-1] == "after the hiccup"


async def test_inviting_a_user_without_devices_is_a_server_error(hs):
    alice = await hs.user("alice")
    room = await alice.create_room()
    with pytest.raises(ServerError) as e:
        await alice.invite(room, "@nobody:test.example")
    assert e.value.code == "not_found"


async def test_the_server_stores_no_plaintext(hs):
    alice, bob, room = await converse(hs)
    await alice.send_text(room, "a very private sentence 4711")
    await bob.sync()
    for p in hs.data_dir.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            for needle in (b"hello bob", b"hi alice", b"private sentence 4711", b"therapy"):
                assert needle not in data, (p, needle)


async def test_second_device_joins_by_itself_with_an_external_commit(hs):
    alice, bob, room = await converse(hs)
    tablet = await hs.device("alice", "tablet", auto_add_own_devices=False)
    epoch = await tablet.join_external(room)
    assert epoch == group(alice, room).epoch + 1
    await alice.sync()
    await bob.sync()
    assert group(bob, room).epoch_authenticator == group(tablet, room).epoch_authenticator
    [m] = [m for m in bob.messages(room) if isinstance(m, MembershipMessage) and m.added][-1:]
    assert m.added == (f"{alice.user_id}/{tablet.device_id}",)
    await bob.send_text(room, "hello tablet")
    await tablet.sync()
    assert texts(tablet, room) == ["hello tablet"]
    assert bob.room(room).warnings == ()


async def test_an_external_join_by_another_user_is_refused(hs):
    alice, bob, room = await converse(hs)
    mallory = await hs.user("mallory")
    with pytest.raises(ServerError) as e:
        await mallory.join_external(room)
    assert e.value.code == "not_member"


async def test_profiles_hold_no_plaintext_secrets_or_messages(hs):
    alice, bob, room = await converse(hs)
    acct = alice.store.account()
    kp = next(iter(alice.store.key_packages().values()))
    needles = [b"hello bob", b"hi alice", b"therapy", acct.access_token.encode(), acct.signature_seed,
               kp.init_priv, kp.encryption_priv, room.encode(), acct.user_id.encode(),
               acct.device_id.encode()]
    files = [p for p in alice.profile.directory.rglob("*") if p.is_file()]
    assert len(files) > 3
    for p in files:
        data = p.read_bytes()
        for needle in needles:
            assert needle not in data, (p.name, needle)
